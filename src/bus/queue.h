/*
 * queue.h - the durable job queue: job model and the store interface.
 *
 * A queue holds jobs; a job carries one event (its `data` is the JSON envelope)
 * and moves through the states of BullMQ's model, so that a second store over
 * Redis in BullMQ's data layout implements this same interface:
 *
 *   add(delay>0) -> delayed --due--> waiting/prioritized --claim--> active
 *   active --complete--> completed       (newest keep_completed kept)
 *   active --fail, attempts left--> delayed (backoff) or waiting
 *   active --fail, no attempts left / not retryable--> failed (the dead-letter set)
 *   active --lease expired (owner died)--> waiting (stalled_count+1; past max -> failed)
 *   failed/completed --retry--> waiting
 *
 * Stores: queue_sql.c keeps jobs in the database (SQLite in embedded mode, where an
 * enqueue joins the caller's transaction; PostgreSQL for several processes).
 * This header declares only data and the store contract; the worker runtime that
 * claims, runs handlers, renews leases and recovers stalled jobs is bus/worker.h.
 */
#ifndef F3_BUS_QUEUE_H
#define F3_BUS_QUEUE_H

#include "core/buf.h"
#include "core/err.h"
#include "db/db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUS_QUEUE_NAME_MAX         200
#define BUS_DEFAULT_ATTEMPTS       3
#define BUS_DEFAULT_BACKOFF_MS     1000 /* exponential: 1 s, 2 s, 4 s, ... */
#define BUS_DEFAULT_CONCURRENCY    5
#define BUS_DEFAULT_KEEP_COMPLETED 1000
#define BUS_DEFAULT_KEEP_FAILED    5000
#define BUS_DEFAULT_LEASE_MS       30000
#define BUS_DEFAULT_MAX_STALLED    1
#define BUS_PRIORITY_MAX           2097151 /* as BullMQ: 0 = none, 1 = highest */

typedef enum bus_state {
    BUS_STATE_WAITING,
    BUS_STATE_PRIORITIZED, /* waiting, with a priority */
    BUS_STATE_DELAYED,     /* waiting for its run time (first delay or retry backoff) */
    BUS_STATE_ACTIVE,
    BUS_STATE_COMPLETED,
    BUS_STATE_FAILED,
    BUS_STATE_COUNT
} bus_state;

/* "waiting", "prioritized", "delayed", "active", "completed", "failed" (BullMQ's names). */
const char *bus_state_name(bus_state s);
/* Parses a state name; -1 if unknown. */
int bus_state_parse(const char *name);

typedef enum bus_backoff_type { BUS_BACKOFF_EXPONENTIAL, BUS_BACKOFF_FIXED } bus_backoff_type;

typedef struct bus_backoff {
    bus_backoff_type type;
    int64_t delay_ms; /* exponential: delay_ms * 2^(attempt-1); fixed: delay_ms */
} bus_backoff;

/* Delay before retry number `attempts_made` (1 = after the first failure). */
int64_t bus_backoff_delay(const bus_backoff *b, int attempts_made);

/* Options of one job. Zero-initialised means: generated id, queue defaults. */
typedef struct bus_job_opts {
    const char *job_id;  /* NULL: a new UUID v7. A publish passes the eventId. */
    int attempts;        /* total tries including the first; 0 = BUS_DEFAULT_ATTEMPTS */
    bus_backoff backoff; /* delay_ms 0 = exponential BUS_DEFAULT_BACKOFF_MS */
    int64_t delay_ms;    /* run no earlier than now + delay_ms */
    int priority;        /* 0 none, 1 (highest) .. BUS_PRIORITY_MAX */
} bus_job_opts;

/* A snapshot of one job as stored. Strings are owned by the job; free with bus_job_free(). */
typedef struct bus_job {
    char *queue;
    char *id;
    char *name; /* the event type, e.g. "order.created" */
    char *data; /* JSON text (the event envelope) */
    bus_state state;
    int priority;
    int attempts_made;    /* finished attempts (failed or completed) */
    int attempts_started; /* times claimed */
    int max_attempts;
    int stalled_count;
    bus_backoff backoff;
    int64_t created_at;   /* epoch ms */
    int64_t run_at;       /* epoch ms: when it may run (delayed until then) */
    int64_t processed_at; /* start of the current/last attempt; 0 if never */
    int64_t finished_at;  /* completed/failed; 0 otherwise */
    char *failed_reason;  /* last error text; NULL if none */
    char *errors;         /* JSON array of {"attempt":n,"at":ms,"error":"..."}; "[]" if none */
    char *return_value;   /* JSON text or NULL */
    char *lock_token;     /* owner of an active job; NULL otherwise */
    int64_t lock_until;   /* epoch ms the lease ends */
    bool inbox_checked;   /* claimed with an inbox consumer (bus_store_claim_tx) ... */
    bool inbox_seen;      /* ... whose inbox already held the job id as a handled event */
} bus_job;

void bus_job_free(bus_job *j);                /* frees the strings and the job; NULL ignored */
void bus_jobs_free(bus_job **jobs, size_t n); /* frees each job and the array */

typedef struct bus_counts {
    int64_t n[BUS_STATE_COUNT]; /* indexed by bus_state */
    bool paused;
} bus_counts;

/* What the store does when a handler fails. */
typedef enum bus_fail_kind {
    BUS_FAIL_RETRY,     /* transient: retry with backoff while attempts remain */
    BUS_FAIL_PERMANENT, /* no point retrying (malformed payload, permanent 4xx): failed at once */
} bus_fail_kind;

/* Result of bus_store_fail(). */
typedef enum bus_fail_result { BUS_RETRY_SCHEDULED, BUS_DEAD_LETTERED } bus_fail_result;

/* Queue-level settings, kept by the store. */
typedef struct bus_queue_settings {
    int keep_completed; /* newest N completed jobs kept; 0 = BUS_DEFAULT_KEEP_COMPLETED */
    int keep_failed;    /* newest N failed jobs kept; 0 = BUS_DEFAULT_KEEP_FAILED */
    int max_stalled;    /* stalls tolerated before a job is failed; 0 = BUS_DEFAULT_MAX_STALLED */
} bus_queue_settings;

/* A repeatable job: every_ms > 0 or a cron expression (5 fields, UTC). Each tick enqueues
 * one job with the fixed id "<repeat_id>:<tick epoch ms>", so when several instances
 * schedule the same repeatable, the duplicate adds are ignored and exactly one runs. */
typedef struct bus_repeatable {
    const char *queue;
    const char *repeat_id;
    const char *name;
    const char *data; /* JSON text */
    int64_t every_ms; /* 0 when cron is used */
    const char *cron; /* NULL when every_ms is used */
} bus_repeatable;

typedef struct bus_store bus_store;

/* ---- the store contract ------------------------------------------------------------------
 * Every function returns 0 or a negative F3_E* code with e set. `tx` arguments: a
 * connection with an open transaction owned by the caller, whose commit makes the
 * change durable (and whose rollback undoes it), or NULL to let the store use its own
 * short transaction. A store not inside the database (Redis) writes an outbox row in tx.
 * `now` arguments are epoch ms (passed in so tests control time). */

/* The SQL store over an open database (SQLite or PostgreSQL). Caller frees with
 * bus_store_close() before closing the db. */
int bus_store_open_sql(db *d, bus_store **out, err *e);
void bus_store_close(bus_store *s);

/* Adds a job. A job id already present in the queue (in any state) is not added again:
 * *added (may be NULL) says whether this call added it. */
int bus_store_add(bus_store *s, db_conn *tx, const char *queue, const char *name, const char *data,
                  const bus_job_opts *o, int64_t now, bool *added, err *e);

/* Adds one job - same name, data and options (o->job_id, e.g. an eventId) - to each of
 * the n queues (a publish's fan-out), as bus_store_add does for one; on PostgreSQL as
 * ONE statement that inserts every row and notifies listeners. With tx NULL the store
 * commits on its own, through the database's group commit (db_tx_group): concurrent
 * callers share one durable commit (on PostgreSQL also one NOTIFY, whose commits would
 * otherwise be serialised by the server). It returns once the jobs are durable. *added (may be
 * NULL) = jobs actually added (ids already present are ignored). n is 1..BUS_ADD_MANY_MAX. */
#define BUS_ADD_MANY_MAX 64
int bus_store_add_many(bus_store *s, db_conn *tx, const char *const *queues, size_t n,
                       const char *name, const char *data, const bus_job_opts *o, int64_t now,
                       int *added, err *e);

/* Claims up to max due jobs of `queue`, makes them active with lock `token` until
 * now + lease_ms, and returns them in claim order (caller frees with bus_jobs_free).
 * Order, as BullMQ fetches: jobs without a priority first (its wait list), then
 * prioritized ones by priority (1 first); within each, by run time (so a delayed job
 * queues up when it becomes due), then order of adding: FIFO per queue. A paused queue
 * yields none. No job is handed to two claimers at once, across threads and processes.
 * max is 1..1000. */
int bus_store_claim(bus_store *s, const char *queue, int max, const char *token, int64_t lease_ms,
                    int64_t now, bus_job ***out, size_t *n, err *e);

/* As bus_store_claim, in the caller's open transaction tx, so that a worker records
 * the outcomes of finished jobs and claims the next ones in one commit (as BullMQ's
 * moveToFinished fetches the next job). With inbox_consumer (may be NULL) every claimed
 * job also says whether that consumer's inbox already holds its id as a handled event
 * (inbox_checked, inbox_seen): the inbox question answered by the claim itself instead of
 * one lookup per job. Caller frees *out with bus_jobs_free. */
int bus_store_claim_tx(bus_store *s, db_conn *tx, const char *queue, int max, const char *token,
                       int64_t lease_ms, int64_t now, const char *inbox_consumer, bus_job ***out,
                       size_t *n, err *e);

/* Extends the lease of an active job held with token. F3_ENOTFOUND if the job is no
 * longer held with this token (it stalled and was taken back). */
int bus_store_extend(bus_store *s, const char *queue, const char *id, const char *token,
                     int64_t lease_ms, int64_t now, err *e);

/* Gives a job held with token back to its queue unstarted (claimed ahead of a free
 * handler, then not run: the worker is draining): waiting again, in its place, with the
 * attempt it was claimed for not counted. F3_ENOTFOUND if it is no longer held with this
 * token. */
int bus_store_release(bus_store *s, const char *queue, const char *id, const char *token, err *e);

/* Marks a job held with token completed (return_value JSON may be NULL), in tx when
 * given so the handler's writes and the completion commit together. F3_ENOTFOUND if
 * the lock was lost. */
int bus_store_complete(bus_store *s, db_conn *tx, const char *queue, const char *id,
                       const char *token, const char *return_value, int64_t now, err *e);

/* One completion for bus_store_complete_many. */
typedef struct bus_completion {
    const char *queue, *id, *token;
    const char *return_value; /* JSON text or NULL */
    const char *consumer;     /* record event_id in this consumer's inbox; NULL = no inbox */
    const char *event_id;
    bool gone; /* out: the job was no longer held with token (lease lost) */
} bus_completion;

/* Completes n jobs held with their tokens in the caller's open transaction tx, with
 * multi-row statements (per queue and up to 32 jobs: one UPDATE, one INSERT into the
 * inbox) instead of two statements per job; a job with a return value costs its own
 * UPDATE. A job no longer held with its token is not an error: its `gone` is set and its
 * inbox row is not written. 0 or the first database error (the transaction is then
 * doomed, see db_commit). */
int bus_store_complete_many(bus_store *s, db_conn *tx, bus_completion *items, size_t n, int64_t now,
                            err *e);

/* Records the completions done[0..ndone-1] (as bus_store_complete_many; ndone may be 0)
 * and claims up to max jobs of queue (as bus_store_claim_tx) in one commit of the store's
 * own: on SQLite one transaction through the group commit; on PostgreSQL, when the
 * completions are of one queue, at most 32, without return values, ONE autocommitted
 * statement (one round trip; otherwise one transaction). The worker's complete-and-claim,
 * as BullMQ's moveToFinished fetching the next job. Caller frees *out with bus_jobs_free. */
int bus_store_complete_and_claim(bus_store *s, bus_completion *done, size_t ndone,
                                 const char *queue, int max, const char *token, int64_t lease_ms,
                                 int64_t now, const char *inbox_consumer, bus_job ***out, size_t *n,
                                 err *e);

/* Records a failed attempt of a job held with token: the reason is appended to the
 * job's errors; it is retried after its backoff while attempts remain and kind is
 * BUS_FAIL_RETRY, else moved to failed. *result (may be NULL) says which. */
int bus_store_fail(bus_store *s, db_conn *tx, const char *queue, const char *id, const char *token,
                   const char *reason, bus_fail_kind kind, int64_t now, bus_fail_result *result,
                   err *e);

/* Returns active jobs whose lease ended before now to waiting (stalled_count + 1), or
 * fails them when stalled more than the queue's max_stalled. Across all queues. */
int bus_store_recover_stalled(bus_store *s, int64_t now, int *recovered, int *failed, err *e);

/* Deletes completed and failed jobs beyond the queue's retention counts. */
int bus_store_trim(bus_store *s, const char *queue, err *e);

/* ---- operations (admin API and CLI) ---- */

/* Names of every queue that has jobs, settings or repeatables, sorted; one per line in out. */
int bus_store_queue_names(bus_store *s, char ***names, size_t *n, err *e);
void bus_names_free(char **names, size_t n);
int bus_store_counts(bus_store *s, const char *queue, int64_t now, bus_counts *out, err *e);
/* Jobs of one state, newest first for completed/failed, run order otherwise. */
int bus_store_list(bus_store *s, const char *queue, bus_state state, int64_t offset, int64_t limit,
                   int64_t now, bus_job ***out, size_t *n, err *e);
/* One job; F3_ENOTFOUND if absent. Caller frees with bus_job_free. */
int bus_store_get(bus_store *s, const char *queue, const char *id, int64_t now, bus_job **out,
                  err *e);
/* Moves a failed (or completed) job back to waiting with fresh attempts (its errors
 * stay); id NULL = every failed job of the queue. *count (may be NULL) = jobs moved.
 * F3_ENOTFOUND, or F3_ECONFLICT for a job (given by id) that is not failed or completed. */
int bus_store_retry(bus_store *s, const char *queue, const char *id, int64_t now, int64_t *count,
                    err *e);
/* Deletes a job that is not active. F3_ENOTFOUND / F3_ECONFLICT (active). */
int bus_store_remove(bus_store *s, const char *queue, const char *id, err *e);
/* Deletes jobs in `state` (completed, failed, waiting, delayed) finished/created more than
 * older_than_ms ago, at most limit (0 = all). *count = jobs deleted. */
int bus_store_clean(bus_store *s, const char *queue, bus_state state, int64_t older_than_ms,
                    int64_t limit, int64_t now, int64_t *count, err *e);
int bus_store_pause(bus_store *s, const char *queue, bool paused, err *e);
int bus_store_settings(bus_store *s, const char *queue, const bus_queue_settings *set, err *e);
/* The effective settings of a queue (defaults filled in where unset). */
int bus_store_settings_get(bus_store *s, const char *queue, bus_queue_settings *out, err *e);

/* ---- repeatable jobs ---- */

/* Creates or replaces a repeatable (validates the cron expression). every_ms ticks are
 * multiples of every_ms since the epoch, the same in every instance (the first may be up
 * to every_ms away); re-declaring an unchanged schedule keeps its next tick. */
int bus_store_repeatable_upsert(bus_store *s, const bus_repeatable *r, int64_t now, err *e);
int bus_store_repeatable_remove(bus_store *s, const char *queue, const char *repeat_id, err *e);
/* A stored repeatable as listed; strings owned by the array (bus_repeatables_free). */
typedef struct bus_repeatable_info {
    char *queue;
    char *repeat_id;
    char *name;
    char *data;
    int64_t every_ms;
    char *cron; /* NULL when every_ms is used */
    int64_t next_run_at;
} bus_repeatable_info;

/* The repeatables of one queue, by repeat_id. Caller frees with bus_repeatables_free. */
int bus_store_repeatables_list(bus_store *s, const char *queue, bus_repeatable_info **out,
                               size_t *n, err *e);
void bus_repeatables_free(bus_repeatable_info *r, size_t n);

/* Enqueues one job for every repeatable whose next tick is due (id "<repeat_id>:<tick>")
 * and advances its next tick past now (ticks missed while nothing ran are skipped, not
 * replayed). Safe from several instances at once: one job per tick. */
int bus_store_repeatables_tick(bus_store *s, int64_t now, int *enqueued, err *e);

/* Next fire time strictly after `after_ms` of a 5-field cron expression (minute hour
 * day-of-month month day-of-week; *, lists, ranges, steps), UTC. F3_EINVAL if malformed. */
int bus_cron_next(const char *expr, int64_t after_ms, int64_t *next_ms, err *e);

/* ---- waking idle workers ---- */

/* Blocks until a job may be ready (an add, retry, resume or stalled-job recovery was
 * committed, by this process or, on PostgreSQL, by another one through LISTEN/NOTIFY) or
 * timeout_ms passed. Returns 1 when woken, 0 on timeout. A wakeup that came after this
 * thread's last bus_store_claim or bus_store_wait on s returns at once, so none is lost
 * between a claim that found nothing and the wait. Spurious wakeups are allowed. Delayed
 * jobs becoming due wake nobody: wait no longer than until the next run time. */
int bus_store_wait(bus_store *s, int timeout_ms);
/* Wakes every bus_store_wait of this process (used by drain/shutdown). */
void bus_store_wake(bus_store *s);

#endif
