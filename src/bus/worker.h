/*
 * worker.h - the worker runtime: runs handlers for the jobs of a bus_store's queues.
 *
 * One bus_worker is one consuming instance. It claims due jobs of its registered
 * queues, never holding more than a queue's concurrency of them at once (BullMQ's
 * meaning of concurrency: jobs in progress on this instance), runs their handlers on a
 * small thread pool shared by all queues (a claimed job waits for a free thread if the
 * pool is smaller than the sum of the concurrencies), renews the lease of every held
 * job every lease/3 until its outcome is recorded, and records each outcome in the
 * store. To claim many jobs per transaction rather than one per finished handler, a
 * queue with handlers still running is claimed for at most every 2 ms; when its last
 * handler finishes, that handler's thread claims the next jobs itself. A claim also
 * records the outcomes waiting to be recorded, in the same commit (complete-and-claim,
 * as BullMQ's moveToFinished fetching the next job). Idle, it blocks in
 * bus_store_wait, woken by committed adds, with a bounded timeout (poll_ms) because delayed jobs
 * and retries become due without an add. One maintenance thread per instance returns stalled jobs
 * (owner died) to their queues, trims retention, ticks repeatable jobs and prunes the
 * inbox. Lock tokens are "<instance uuid>:<claim counter>".
 *
 * Outcomes and transactions. A handler gets a bus_delivery. If it never calls
 * bus_delivery_tx, its outcome is handed to a completer thread that commits the
 * outcomes of many jobs in ONE transaction (so on SQLite with synchronous=FULL a burst
 * of N jobs costs one fsync, not N). If it calls bus_delivery_tx, it gets a connection
 * with an open transaction; the runtime records the event in the inbox (queues with
 * BUS_QUEUE_INBOX) at its start and completes the job inside it when the handler returns
 * 0, and commits it on the handler's thread: such a job commits in its own transaction,
 * never in a batch, so a failing job can only roll back its own writes (we chose this
 * over a batch with SAVEPOINTs: it needs no savepoint support from the store, and a
 * handler that writes pays for its own durability, which it needs anyway).
 * A handler that returns an error has its transaction rolled back.
 *
 * Handlers MUST do slow external I/O (HTTP calls to providers) BEFORE asking for the
 * transaction: on SQLite the transaction holds the database's single write lock from
 * bus_delivery_tx until the handler returns, and every other writer (claims,
 * completions, other handlers, HTTP requests) waits for it meanwhile. On SQLite all
 * writers of the bus workers of one database take turns on an in-process mutex rather
 * than in SQLite's sleeping busy handler; a handler that writes still costs one commit
 * (one fsync) per job. For the same reason a handler must never wait, with its
 * transaction open, for other bus work of this process (another job, a drain).
 *
 * Exactly once in effect (BUS_QUEUE_INBOX): before the handler runs, the runtime looks
 * the event up in the inbox under the queue's consumer name (the claim answers that for
 * the job id; an event id set by the prepare hook that differs is looked up); an event
 * already handled is completed without calling the handler. When two deliveries of one event race,
 * the inbox row written at the start of the second one's transaction conflicts:
 * bus_delivery_tx fails with F3_ECONFLICT, everything the handler wrote is rolled back
 * and the job is completed without effect, whatever the handler returned.
 *
 * Handler result: 0 = handled; F3_EPERMANENT or F3_EINVAL = no point retrying, the job
 * is dead-lettered at once; any other negative code = transient, retried with the
 * job's backoff while attempts remain. The handler's err message becomes the job's
 * failure reason. F3_EBUSY (a lost race for a row or lock: a compare-and-set that failed,
 * a serialization failure) is first run again at once, up to BUS_WORKER_BUSY_RERUNS times,
 * before it counts as a failed attempt: such a race is over in milliseconds, not in the
 * backoff's seconds.
 *
 * This file knows nothing of the event catalog: bus/bus.h layers catalog envelopes on
 * top through the per-queue prepare hook.
 */
#ifndef F3_BUS_WORKER_H
#define F3_BUS_WORKER_H

#include "bus/queue.h"
#include "core/err.h"
#include "db/db.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct bus_worker bus_worker;
typedef struct bus_delivery bus_delivery;

/* Runs one job; see "Handler result" above. Called on a handler thread. */
typedef int (*bus_handler)(bus_delivery *dl, void *ctx, err *e);

/* Runs before the inbox check and the handler, on the handler thread: decodes and
 * checks the job (bus_delivery_set_event), or rejects it with the handler's result
 * convention (F3_EINVAL: dead-lettered at once with e's message; the handler is not
 * called). */
typedef int (*bus_prepare_fn)(bus_delivery *dl, void *ctx, err *e);

#define BUS_QUEUE_INBOX (1u << 0) /* exactly once in effect through bus_inbox (see above) */

#define BUS_WORKER_MAX_CONCURRENCY     1000
#define BUS_WORKER_MIN_LEASE_MS        50
#define BUS_WORKER_MAX_THREADS         256
#define BUS_WORKER_MAX_PREFETCH        1000
#define BUS_WORKER_PREFETCH            64
#define BUS_WORKER_PREFETCH_HORIZON_MS 20
#define BUS_WORKER_BUSY_RERUNS         3

/* Options of one registered queue. Zero-initialised means the defaults. */
typedef struct bus_queue_opts {
    int concurrency;        /* handlers of this queue at once here; 0 = BUS_DEFAULT_CONCURRENCY */
    int64_t lease_ms;       /* lock duration, renewed every lease/3; 0 = BUS_DEFAULT_LEASE_MS */
    unsigned flags;         /* BUS_QUEUE_* */
    const char *consumer;   /* inbox consumer name (copied); NULL = the queue name */
    bus_prepare_fn prepare; /* NULL = none */
    void *prepare_ctx;
} bus_queue_opts;

/* Options of a worker instance. Zero-initialised means the defaults; a negative
 * interval turns that maintenance task off in this instance. */
typedef struct bus_worker_opts {
    int threads;             /* handler threads; 0 = sum of the queues' concurrency, at most 16 */
    int poll_ms;             /* longest idle wait for due delayed jobs; 0 = 1000 */
    int stalled_interval_ms; /* bus_store_recover_stalled; 0 = 5000 */
    int repeat_interval_ms;  /* bus_store_repeatables_tick; 0 = 1000 */
    int trim_interval_ms;    /* bus_store_trim of each queue, inbox pruning; 0 = 60000 */
    int64_t inbox_keep_ms;   /* inbox entries kept this long; 0 = 7 days */
    int batch_max;           /* outcomes committed in one transaction; 0 = 512 */
    int prefetch;            /* most jobs a queue claims beyond its concurrency, to run
                                next; 0 = BUS_WORKER_PREFETCH, < 0 = none. Only as many as
                                its handlers start within BUS_WORKER_PREFETCH_HORIZON_MS
                                at their recent pace are taken: slow handlers prefetch
                                nothing, so other instances still share their jobs.
                                Pausing a queue stops its claims; jobs taken ahead
                                already (at most that horizon's worth) still run. */
} bus_worker_opts;

/* A worker over store s, whose database is d (the same one the store was opened on).
 * o may be NULL. NULL on error (e says why). Caller frees with bus_worker_free(), before
 * closing the store. On PostgreSQL give d a pool of at least threads + 4 connections. */
bus_worker *bus_worker_new(bus_store *s, db *d, const bus_worker_opts *o, err *e);

/* Registers a queue and its handler (before bus_worker_start; ctx is borrowed until
 * bus_worker_free). o may be NULL. F3_EINVAL for a bad name or option, a queue already
 * registered, or a worker already started. */
int bus_worker_register(bus_worker *w, const char *queue, bus_handler fn, void *ctx,
                        const bus_queue_opts *o, err *e);

/* Starts the threads. F3_EINVAL if no queue is registered or already started. */
int bus_worker_start(bus_worker *w, err *e);

/* Stops claiming, gives the claimed jobs no handler has started back to their queues
 * (bus_store_release), lets the running handlers finish and their outcomes commit, then
 * stops the threads. 0 when all that happened within timeout_ms; F3_EBUSY if the
 * bound was hit: handlers are still running (their leases still renewed), and
 * bus_worker_free will wait for them. 0 at once for a worker never started. */
int bus_worker_drain(bus_worker *w, int timeout_ms);

/* Drains without a bound (if started) and frees the worker. NULL is ignored. */
void bus_worker_free(bus_worker *w);

/* The instance id ("uuid"), the prefix of this worker's lock tokens; borrowed. */
const char *bus_worker_instance(const bus_worker *w);

/* ---- inside a handler --------------------------------------------------------------- */

/* The job being handled (as claimed); borrowed for the duration of the handler. */
const bus_job *bus_delivery_job(const bus_delivery *dl);

/* The event id the inbox uses: the one set by the prepare hook, else the job id. */
const char *bus_delivery_event_id(const bus_delivery *dl);

/* The connection of this delivery's transaction, begun on the first call (later calls
 * return the same connection), with the inbox entry already written in it. Do not
 * commit, roll back or release it: the runtime does, together with the job's
 * completion. NULL on error: F3_ECONFLICT when another delivery of the same event
 * already handled it (return any error; the job is then completed without effect),
 * F3_EBUSY when the database stayed locked (return it: the job is retried). */
db_conn *bus_delivery_tx(bus_delivery *dl, err *e);

/* Runs fn(ctx) on the handler's thread once the delivery transaction has committed
 * (with the job's completion), in the order registered. When the transaction is rolled
 * back instead (the handler failed, its lease was lost, the commit failed) fn is not run.
 * drop(ctx), when given, is called afterwards either way, and also when this call fails.
 * For effects outside the database that must follow only committed writes, such as
 * in-process announcements. F3_EINVAL without an open delivery transaction
 * (bus_delivery_tx). */
int bus_delivery_after_commit(bus_delivery *dl, void (*fn)(void *ctx), void (*drop)(void *ctx),
                              void *ctx, err *e);

/* Sets the job's return value (JSON text, copied; NULL clears). */
int bus_delivery_set_return_value(bus_delivery *dl, const char *json, err *e);

/* For prepare hooks: the event id for the inbox (copied; NULL = job id) and a decoded
 * form of the job (owned by the delivery from now on, freed with free_fn after the
 * handler; NULL frees nothing). */
int bus_delivery_set_event(bus_delivery *dl, const char *event_id, void *decoded,
                           void (*free_fn)(void *), err *e);

/* The decoded form set by the prepare hook; NULL if none. Borrowed. */
void *bus_delivery_decoded(const bus_delivery *dl);

#endif
