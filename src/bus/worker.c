/*
 * worker.c - the worker runtime (see worker.h): five kinds of threads around one store.
 *
 *   dispatcher   claims into the queues' ready lists, recording the outcomes waiting
 *                meanwhile in the same commit (complete-and-claim)
 *   handlers     the pool: prepare hook, inbox check, handler; commit tx jobs themselves;
 *                the last handler of a queue to finish claims that queue's next jobs
 *                itself (no hand-off to the dispatcher and back)
 *   completer    commits the outcomes nobody claimed with, many per transaction
 *   maintenance  renews leases of held jobs; stalled recovery, trim, repeatables, inbox
 *   listener     sits in bus_store_wait and turns its wake-ups into a counter the
 *                dispatcher waits on, so no wake-up is lost between two waits
 *
 * A claimed job is a bus_delivery on the `held` list from claim until its outcome is
 * committed (or given up); the maintenance thread renews exactly those leases. A queue
 * may hold jobs beyond its concurrency in its ready list (graphile-worker's local
 * queue), so one claim commit serves many jobs even at concurrency 1: as many as its
 * handlers start within BUS_WORKER_PREFETCH_HORIZON_MS at their recent pace, at most
 * `prefetch`. They run in claim order, never more than `concurrency` at once, and a
 * drain gives back those not started (bus_store_release) rather than start them. All
 * shared state is under one mutex, which is never held across a store or db call. On
 * SQLite, writers take turns on the database's writer lock (db/sqlite.c), not in
 * SQLite's busy handler, and claims and outcomes go through the database's group commit
 * (db_tx_group), sharing fsyncs with concurrent publishers.
 * This file must not know about event envelopes or the catalog (bus.c does).
 */
#include "bus/worker.h"

#include "bus/inbox.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/uuid.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_THREADS_MAX   16
#define DEFAULT_POLL_MS       1000
#define DEFAULT_STALLED_MS    5000
#define DEFAULT_REPEAT_MS     1000
#define DEFAULT_TRIM_MS       60000
#define DEFAULT_INBOX_KEEP_MS (7LL * 24 * 3600 * 1000)
#define DEFAULT_BATCH_MAX     512
#define PENDING_PER_BATCH     4    /* outcomes waiting for the completer: at most 4 batches */
#define LINGER_MS             5    /* the completer waits this long for more outcomes */
#define CLAIM_LINGER_MS       2    /* the dispatcher, for more free slots */
#define CLAIM_MAX             1000 /* bus_store_claim takes at most this many */
#define ERROR_BACKOFF_MS      100  /* after a failed claim or outcome commit */
#define REQUEUE_MAX           600  /* outcome commits tried before giving up on a job */
#define REQUEUE_MAX_STOPPING  20
#define LISTENER_STOP_POLL_MS 10
#define TOKEN_MAX             (UUID_STR_LEN + 24)

typedef enum dl_outcome {
    DL_COMPLETE, /* handled: complete (and record in the inbox) */
    DL_ACK,      /* already handled by this consumer: complete without effect */
    DL_FAIL,     /* failed attempt: bus_store_fail with fail_kind */
    DL_DONE,     /* nothing left to record (committed with its tx, or lease lost) */
} dl_outcome;

typedef struct dl_list {
    bus_delivery *head, *tail;
    size_t n;
} dl_list;

typedef struct wq {
    char *name;
    char *consumer;
    bus_handler fn;
    void *ctx;
    bus_prepare_fn prepare;
    void *prepare_ctx;
    int concurrency;
    int64_t lease_ms;
    unsigned flags;
    int64_t pace_us;      /* recent handler time per job (moving average); 0 = none yet */
    int running;          /* claimed here, outcome not yet decided */
    int executing;        /* of those, in a handler now */
    dl_list ready;        /* claimed, waiting for a handler, in claim order */
    bool drained;         /* the last claim got fewer jobs than asked for */
    uint64_t drained_gen; /* store_gen seen before that claim */
    int64_t drained_at;   /* monotonic ms of that claim */
} wq;

/* One bus_delivery_after_commit registration. */
typedef struct after_commit {
    void (*fn)(void *ctx);
    void (*drop)(void *ctx);
    void *ctx;
    struct after_commit *next;
} after_commit;

struct bus_delivery {
    bus_worker *w;
    wq *q;
    bus_job *job;
    char *token;
    char *event_id; /* set by the prepare hook; NULL = job id */
    void *decoded;
    void (*decoded_free)(void *);
    char *return_value;
    db_conn *tx;
    bool duplicate; /* the inbox said another delivery of the event handled it */
    bool lost;      /* the lease was taken back (renewal said so) */
    bool gone;      /* the store said the job is no longer held when recording the outcome */
    bool dead;      /* the failure dead-lettered the job */
    dl_outcome outcome;
    bus_fail_kind fail_kind;
    int fail_rc; /* the code of the failure (F3_EBUSY: run again at once) */
    char *reason;
    int commit_rc;
    int requeues;
    int64_t extended_at;       /* monotonic ms of the last renewal (or the claim) */
    after_commit *after;       /* bus_delivery_after_commit, in order */
    bus_delivery *prev, *next; /* held list */
    bus_delivery *link;        /* ready or pending list */
};

struct bus_worker {
    bus_store *s;
    db *d;
    char instance[UUID_STR_LEN];
    uint64_t claims;
    int threads, poll_ms, stalled_ms, repeat_ms, trim_ms, batch_max;
    int prefetch; /* most jobs a queue holds beyond its concurrency (prefetch_now) */
    int64_t inbox_keep_ms;
    bool group; /* SQLite: write through db_tx_group, sharing commits with publishers */
    wq **queues;
    size_t nq;

    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* handlers: a ready job they may run, or stop */
    pthread_cond_t disp_cv;  /* dispatcher: gen changed */
    pthread_cond_t comp_cv;  /* completer: pending list or stop */
    bool comp_idle;          /* the completer waits for a first outcome (not lingering) */
    pthread_cond_t idle_cv;  /* drain: inflight/pending went down; listener stopped */
    pthread_cond_t maint_cv; /* maintenance: stop */
    dl_list pending;
    size_t next_ready; /* handlers look at the queues round robin from here */
    int idle_handlers; /* handler threads waiting for a job */
    bus_delivery *held;
    int inflight;       /* claimed, outcome not yet decided */
    int npending;       /* handed to the completer, not yet committed */
    uint64_t gen;       /* bumped by anything that may let the dispatcher claim more */
    uint64_t store_gen; /* bumped when the store may have new claimable jobs */
    bool slots_freed;   /* handlers finished without waking the dispatcher */
    bool started, draining, listener_done, handlers_stop, completer_stop, maint_stop;
    bool claim_joined, all_joined;

    pthread_t dispatcher, listener, completer, maint;
    pthread_t *pool;
    int pool_n;
    bus_delivery **batch_items; /* the completer's batch, batch_max long */
    bus_delivery **disp_items;  /* outcomes the dispatcher records with a claim, as long */
};

/* ---- small helpers --------------------------------------------------------------------- */

static void cv_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    struct timespec ts = clock_mono_after(ms);
    pthread_cond_timedwait(cv, mu, &ts);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void list_push(dl_list *l, bus_delivery *dl)
{
    dl->link = NULL;
    if (l->tail)
        l->tail->link = dl;
    else
        l->head = dl;
    l->tail = dl;
    l->n++;
}

static bus_delivery *list_pop(dl_list *l)
{
    bus_delivery *dl = l->head;
    if (!dl)
        return NULL;
    l->head = dl->link;
    if (!l->head)
        l->tail = NULL;
    l->n--;
    dl->link = NULL;
    return dl;
}

static void held_add(bus_worker *w, bus_delivery *dl)
{
    dl->prev = NULL;
    dl->next = w->held;
    if (w->held)
        w->held->prev = dl;
    w->held = dl;
}

static void held_remove(bus_worker *w, bus_delivery *dl)
{
    if (dl->prev)
        dl->prev->next = dl->next;
    else if (w->held == dl)
        w->held = dl->next;
    if (dl->next)
        dl->next->prev = dl->prev;
    dl->prev = dl->next = NULL;
}

/* Runs (committed) or only drops the delivery's after-commit registrations, then forgets
 * them. */
static void end_after_commit(bus_delivery *dl, bool committed)
{
    after_commit *a = dl->after;
    dl->after = NULL;
    while (a) {
        after_commit *next = a->next;
        if (committed)
            a->fn(a->ctx);
        if (a->drop)
            a->drop(a->ctx);
        free(a);
        a = next;
    }
}

static void delivery_free(bus_delivery *dl)
{
    if (!dl)
        return;
    end_after_commit(dl, false);
    if (dl->decoded && dl->decoded_free)
        dl->decoded_free(dl->decoded);
    bus_job_free(dl->job);
    free(dl->token);
    free(dl->event_id);
    free(dl->return_value);
    free(dl->reason);
    free(dl);
}

static const char *delivery_event(const bus_delivery *dl)
{
    return dl->event_id ? dl->event_id : dl->job->id;
}

/* Wakes the dispatcher: something changed that may let it claim more. Under w->mu. */
static void poke_dispatcher(bus_worker *w)
{
    w->gen++;
    pthread_cond_signal(&w->disp_cv);
}

/* Outcomes the completer may have waiting before the dispatcher stops claiming. */
static int pending_cap(const bus_worker *w)
{
    return w->batch_max * PENDING_PER_BATCH;
}

/* How many jobs q may hold beyond its concurrency now: as many as its handlers start
 * within the horizon at their recent pace (none before the first job has run), at most
 * w->prefetch. Under w->mu. */
static int prefetch_now(const bus_worker *w, const wq *q)
{
    if (w->prefetch == 0 || q->pace_us <= 0)
        return 0;
    int64_t n = (int64_t)q->concurrency * BUS_WORKER_PREFETCH_HORIZON_MS * 1000 / q->pace_us;
    return n < w->prefetch ? (int)n : w->prefetch;
}

/* Folds one handler time into q's pace (a moving average over about 8 jobs). */
static void pace_add(wq *q, int64_t us)
{
    if (us < 1)
        us = 1;
    q->pace_us = q->pace_us > 0 ? q->pace_us + (us - q->pace_us) / 8 : us;
}

/* A handler of q finished. Claiming one job per finished handler would cost one claim
 * transaction (one fsync on SQLite) per job, so the dispatcher is woken at once only
 * when no handler of the queue is left running, or when half its prefetched jobs are
 * gone; otherwise it comes round within CLAIM_LINGER_MS and claims for every slot freed
 * meanwhile. Under w->mu. */
static void slot_freed(bus_worker *w, const wq *q)
{
    int ahead = prefetch_now(w, q);
    if (q->running == 0 || (ahead > 0 && (int)q->ready.n <= ahead / 2))
        poke_dispatcher(w);
    else
        w->slots_freed = true;
}

/* The next job a handler may run: the first ready one of a queue below its concurrency,
 * looking at the queues round robin; NULL if none (or draining: what is ready goes back).
 * Under w->mu. */
static bus_delivery *take_ready(bus_worker *w)
{
    if (w->draining)
        return NULL;
    for (size_t k = 0; k < w->nq; k++) {
        wq *q = w->queues[(w->next_ready + k) % w->nq];
        if (q->ready.head && q->executing < q->concurrency) {
            w->next_ready = (w->next_ready + k + 1) % w->nq;
            q->executing++;
            return list_pop(&q->ready);
        }
    }
    return NULL;
}

/* ---- creating and registering ---------------------------------------------------------- */

static int opt_or(int v, int def)
{
    return v == 0 ? def : v;
}

bus_worker *bus_worker_new(bus_store *s, db *d, const bus_worker_opts *o, err *e)
{
    if (!s || !d) {
        err_set(e, F3_EINVAL, "bus worker: store and database are required");
        return NULL;
    }
    bus_worker_opts def = {0};
    if (!o)
        o = &def;
    if (o->threads < 0 || o->threads > BUS_WORKER_MAX_THREADS) {
        err_set(e, F3_EINVAL, "bus worker: threads %d out of range (1..%d)", o->threads,
                BUS_WORKER_MAX_THREADS);
        return NULL;
    }
    if (o->prefetch > BUS_WORKER_MAX_PREFETCH) {
        err_set(e, F3_EINVAL, "bus worker: prefetch %d above %d", o->prefetch,
                BUS_WORKER_MAX_PREFETCH);
        return NULL;
    }
    if (o->poll_ms < 0 || o->batch_max < 0 || o->inbox_keep_ms < 0) {
        err_set(e, F3_EINVAL, "bus worker: poll_ms, batch_max and inbox_keep_ms must be >= 0");
        return NULL;
    }
    bus_worker *w = calloc(1, sizeof *w);
    if (!w) {
        err_set(e, F3_ENOMEM, "out of memory creating a bus worker");
        return NULL;
    }
    w->s = s;
    w->d = d;
    w->group = strcmp(db_backend(d), "sqlite") == 0;
    uuid_v4(w->instance);
    w->threads = o->threads;
    w->poll_ms = opt_or(o->poll_ms, DEFAULT_POLL_MS);
    w->stalled_ms = opt_or(o->stalled_interval_ms, DEFAULT_STALLED_MS);
    w->repeat_ms = opt_or(o->repeat_interval_ms, DEFAULT_REPEAT_MS);
    w->trim_ms = opt_or(o->trim_interval_ms, DEFAULT_TRIM_MS);
    w->batch_max = opt_or(o->batch_max, DEFAULT_BATCH_MAX);
    w->prefetch = o->prefetch < 0 ? 0 : opt_or(o->prefetch, BUS_WORKER_PREFETCH);
    w->inbox_keep_ms = o->inbox_keep_ms ? o->inbox_keep_ms : DEFAULT_INBOX_KEEP_MS;
    pthread_cond_t *cvs[] = {&w->work_cv, &w->disp_cv, &w->comp_cv, &w->idle_cv, &w->maint_cv};
    size_t ncv = sizeof cvs / sizeof cvs[0], made = 0;
    while (made < ncv && clock_cond_init(cvs[made]) == 0)
        made++;
    if (made < ncv) {
        while (made > 0)
            pthread_cond_destroy(cvs[--made]);
        free(w);
        err_set(e, F3_ENOMEM, "bus worker: cannot create condition variables");
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    return w;
}

const char *bus_worker_instance(const bus_worker *w)
{
    return w->instance;
}

static int queue_opts_check(const char *queue, bus_handler fn, const bus_queue_opts *o, err *e)
{
    if (!queue || !*queue)
        return err_set(e, F3_EINVAL, "bus worker: queue name is empty");
    if (strlen(queue) > BUS_QUEUE_NAME_MAX)
        return err_set(e, F3_EINVAL, "bus worker: queue name longer than %d bytes",
                       BUS_QUEUE_NAME_MAX);
    if (!fn)
        return err_set(e, F3_EINVAL, "bus worker: queue '%s' has no handler", queue);
    if (o->concurrency < 0 || o->concurrency > BUS_WORKER_MAX_CONCURRENCY)
        return err_set(e, F3_EINVAL, "bus worker: queue '%s': concurrency %d out of range (1..%d)",
                       queue, o->concurrency, BUS_WORKER_MAX_CONCURRENCY);
    if (o->lease_ms != 0 && o->lease_ms < BUS_WORKER_MIN_LEASE_MS)
        return err_set(e, F3_EINVAL, "bus worker: queue '%s': lease %lld ms is below %d ms", queue,
                       (long long)o->lease_ms, BUS_WORKER_MIN_LEASE_MS);
    if (o->flags & ~BUS_QUEUE_INBOX)
        return err_set(e, F3_EINVAL, "bus worker: queue '%s': unknown flags 0x%x", queue,
                       o->flags & ~BUS_QUEUE_INBOX);
    if (o->consumer && !*o->consumer)
        return err_set(e, F3_EINVAL, "bus worker: queue '%s': consumer name is empty", queue);
    return 0;
}

int bus_worker_register(bus_worker *w, const char *queue, bus_handler fn, void *ctx,
                        const bus_queue_opts *o, err *e)
{
    bus_queue_opts def = {0};
    if (!o)
        o = &def;
    int rc = queue_opts_check(queue, fn, o, e);
    if (rc)
        return rc;
    if (w->started)
        return err_set(e, F3_EINVAL, "bus worker: queue '%s' registered after start", queue);
    for (size_t i = 0; i < w->nq; i++)
        if (strcmp(w->queues[i]->name, queue) == 0)
            return err_set(e, F3_EINVAL, "bus worker: queue '%s' is already registered", queue);
    wq **grown = realloc(w->queues, (w->nq + 1) * sizeof(wq *));
    if (!grown)
        return err_set(e, F3_ENOMEM, "out of memory registering queue '%s'", queue);
    w->queues = grown;
    wq *q = calloc(1, sizeof *q);
    if (q) {
        q->name = strdup(queue);
        q->consumer = strdup(o->consumer ? o->consumer : queue);
    }
    if (!q || !q->name || !q->consumer) {
        if (q) {
            free(q->name);
            free(q->consumer);
        }
        free(q);
        return err_set(e, F3_ENOMEM, "out of memory registering queue '%s'", queue);
    }
    q->fn = fn;
    q->ctx = ctx;
    q->prepare = o->prepare;
    q->prepare_ctx = o->prepare_ctx;
    q->concurrency = o->concurrency ? o->concurrency : BUS_DEFAULT_CONCURRENCY;
    q->lease_ms = o->lease_ms ? o->lease_ms : BUS_DEFAULT_LEASE_MS;
    q->flags = o->flags;
    w->queues[w->nq++] = q;
    return 0;
}

/* ---- the delivery, as seen by handlers -------------------------------------------------- */

const bus_job *bus_delivery_job(const bus_delivery *dl)
{
    return dl->job;
}

const char *bus_delivery_event_id(const bus_delivery *dl)
{
    return delivery_event(dl);
}

void *bus_delivery_decoded(const bus_delivery *dl)
{
    return dl->decoded;
}

int bus_delivery_set_return_value(bus_delivery *dl, const char *json, err *e)
{
    char *copy = NULL;
    if (json && !(copy = strdup(json)))
        return err_set(e, F3_ENOMEM, "out of memory keeping a job's return value");
    free(dl->return_value);
    dl->return_value = copy;
    return 0;
}

int bus_delivery_set_event(bus_delivery *dl, const char *event_id, void *decoded,
                           void (*free_fn)(void *), err *e)
{
    char *copy = NULL;
    if (event_id && !*event_id)
        return err_set(e, F3_EINVAL, "bus worker: empty event id");
    if (event_id && !(copy = strdup(event_id)))
        return err_set(e, F3_ENOMEM, "out of memory keeping an event id");
    free(dl->event_id);
    dl->event_id = copy;
    if (dl->decoded && dl->decoded_free && dl->decoded != decoded)
        dl->decoded_free(dl->decoded);
    dl->decoded = decoded;
    dl->decoded_free = free_fn;
    return 0;
}

/* Ends the delivery transaction: commits (returning the commit's result) or rolls back,
 * releases the connection. */
static int end_tx(bus_delivery *dl, bool commit, err *e)
{
    db_conn *c = dl->tx;
    dl->tx = NULL;
    int rc = 0;
    if (commit && db_in_transaction(c))
        rc = db_commit(c, e);
    if (!commit || rc != 0)
        db_rollback(c, NULL); /* harmless when COMMIT already ended it */
    db_release(c);
    end_after_commit(dl, commit && rc == 0);
    return rc;
}

int bus_delivery_after_commit(bus_delivery *dl, void (*fn)(void *ctx), void (*drop)(void *ctx),
                              void *ctx, err *e)
{
    after_commit *a = dl->tx && fn ? calloc(1, sizeof *a) : NULL;
    if (!a) {
        if (drop)
            drop(ctx);
        if (!dl->tx || !fn)
            return err_set(e, F3_EINVAL, "bus_delivery_after_commit: no delivery transaction");
        return err_set(e, F3_ENOMEM, "out of memory");
    }
    a->fn = fn;
    a->drop = drop;
    a->ctx = ctx;
    after_commit **tail = &dl->after;
    while (*tail)
        tail = &(*tail)->next;
    *tail = a;
    return 0;
}

db_conn *bus_delivery_tx(bus_delivery *dl, err *e)
{
    if (dl->duplicate) {
        err_set(e, F3_ECONFLICT, "event %s was already handled by consumer '%s'",
                delivery_event(dl), dl->q->consumer);
        return NULL;
    }
    if (dl->tx)
        return dl->tx;
    db_conn *c = db_acquire(dl->w->d, e);
    if (!c)
        return NULL;
    if (db_in_transaction(c)) {
        /* SQLite hands one connection per thread: the handler opened its own transaction. */
        err_set(e, F3_EINVAL, "bus_delivery_tx: this thread already has a transaction open");
        db_release(c);
        return NULL;
    }
    dl->tx = c;
    if (db_begin(c, e) != 0) {
        end_tx(dl, false, NULL);
        return NULL;
    }
    if (dl->q->flags & BUS_QUEUE_INBOX) {
        bool recorded = false;
        if (bus_inbox_record(c, dl->q->consumer, delivery_event(dl), clock_now_ms(), &recorded,
                             e) != 0) {
            end_tx(dl, false, NULL);
            return NULL;
        }
        if (!recorded) {
            dl->duplicate = true;
            end_tx(dl, false, NULL);
            err_set(e, F3_ECONFLICT, "event %s was already handled by consumer '%s'",
                    delivery_event(dl), dl->q->consumer);
            return NULL;
        }
    }
    return c;
}

/* ---- running one job (handler threads) -------------------------------------------------- */

static bus_fail_kind classify(int rc)
{
    return rc == F3_EPERMANENT || rc == F3_EINVAL ? BUS_FAIL_PERMANENT : BUS_FAIL_RETRY;
}

static void set_fail(bus_delivery *dl, bus_fail_kind kind, int rc, const err *e, const char *ctx)
{
    char why[ERR_MSG_MAX + 64];
    const char *msg = e && e->msg[0] ? e->msg : err_name(rc);
    snprintf(why, sizeof why, "%s%s", ctx ? ctx : "", msg);
    free(dl->reason);
    dl->reason = strdup(why);
    dl->outcome = DL_FAIL;
    dl->fail_kind = kind;
    dl->fail_rc = rc;
}

/* The handler used the delivery transaction: complete the job in it and commit, or roll
 * everything back. */
static void finish_with_tx(bus_worker *w, bus_delivery *dl, int hrc, const err *he)
{
    err e = {0};
    if (!db_in_transaction(dl->tx)) {
        log_error("handler ended the delivery transaction itself; its writes were not atomic "
                  "with the job's completion",
                  "queue", dl->q->name, "jobId", dl->job->id);
        end_tx(dl, false, NULL);
        if (hrc == 0)
            dl->outcome = DL_COMPLETE;
        else
            set_fail(dl, classify(hrc), hrc, he, NULL);
        return;
    }
    pthread_mutex_lock(&w->mu);
    bool lost = dl->lost; /* set by the maintenance thread */
    pthread_mutex_unlock(&w->mu);
    if (hrc != 0 || lost) {
        end_tx(dl, false, NULL);
        if (hrc != 0)
            set_fail(dl, classify(hrc), hrc, he, NULL);
        else
            dl->outcome = DL_DONE; /* lease lost: another claimer has the job now */
        return;
    }
    int rc = bus_store_complete(w->s, dl->tx, dl->q->name, dl->job->id, dl->token, dl->return_value,
                                clock_now_ms(), &e);
    if (rc == 0)
        rc = end_tx(dl, true, &e);
    else
        end_tx(dl, false, NULL);
    if (rc == 0) {
        dl->outcome = DL_DONE;
    } else if (rc == F3_ENOTFOUND) {
        log_warn("job lease lost before its transaction committed; its writes were rolled back",
                 "queue", dl->q->name, "jobId", dl->job->id);
        dl->outcome = DL_DONE;
    } else {
        set_fail(dl, BUS_FAIL_RETRY, rc, &e, "committing the handler's transaction failed: ");
    }
}

static void run_delivery(bus_worker *w, bus_delivery *dl)
{
    wq *q = dl->q;
    err e = {0};
    int rc = 0;
    if (q->prepare && (rc = q->prepare(dl, q->prepare_ctx, &e)) != 0) {
        set_fail(dl, classify(rc), rc, &e, NULL);
        goto out;
    }
    if (q->flags & BUS_QUEUE_INBOX) {
        bool seen = dl->job->inbox_seen;
        /* The claim answered for the job id; an event id of its own needs a lookup. */
        if (!dl->job->inbox_checked || strcmp(delivery_event(dl), dl->job->id) != 0)
            rc = bus_inbox_seen(w->d, q->consumer, delivery_event(dl), &seen, &e);
        if (rc) {
            set_fail(dl, BUS_FAIL_RETRY, rc, &e, "inbox lookup failed: ");
            goto out;
        }
        if (seen) {
            log_debug("event already handled; acknowledged", "queue", q->name, "jobId", dl->job->id,
                      "eventId", delivery_event(dl));
            dl->outcome = DL_ACK;
            goto out;
        }
    }
    rc = q->fn(dl, q->ctx, &e);
    if (dl->tx)
        finish_with_tx(w, dl, rc, &e);
    else if (rc == 0)
        dl->outcome = DL_COMPLETE;
    else if (dl->duplicate)
        dl->outcome = DL_ACK;
    else
        set_fail(dl, classify(rc), rc, &e, NULL);
out:
    if (dl->decoded && dl->decoded_free)
        dl->decoded_free(dl->decoded);
    dl->decoded = NULL;
    log_set_correlation_id(NULL);
}

/* Runs dl, and again at once (after a short random pause) while it fails with F3_EBUSY,
 * up to BUS_WORKER_BUSY_RERUNS times, unless its lease was lost meanwhile. Each run starts
 * afresh: the failed run's transaction was rolled back. */
static void run_delivery_rerunning(bus_worker *w, bus_delivery *dl)
{
    static _Thread_local unsigned int seed;
    if (!seed)
        seed = (unsigned int)clock_mono_us() ^ (unsigned int)(uintptr_t)&seed;
    run_delivery(w, dl);
    for (int rerun = 0; rerun < BUS_WORKER_BUSY_RERUNS; rerun++) {
        if (dl->outcome != DL_FAIL || dl->fail_rc != F3_EBUSY)
            return;
        pthread_mutex_lock(&w->mu);
        bool lost = dl->lost;
        pthread_mutex_unlock(&w->mu);
        if (lost)
            return;
        log_debug("handler lost a race; running it again at once", "queue", dl->q->name, "jobId",
                  dl->job->id, "reason", dl->reason);
        sleep_ms(1 + (int)(rand_r(&seed) % 4));
        dl->fail_rc = 0;
        run_delivery(w, dl);
    }
}

static int claim_room(const bus_worker *w, const wq *q, int64_t mono);
static int claim_queue(bus_worker *w, wq *q, int n, int64_t mono, bus_delivery **items,
                       bool self_runs);

/* The last running handler of q finished: rather than wake the dispatcher (two thread
 * hand-offs per job, which is what a queue at concurrency 1 pays for every job), this
 * handler thread records the waiting outcomes and claims q's next jobs itself, in one
 * commit, and runs the first of them. False if there was nothing to claim for. Under
 * w->mu. */
static bool claim_next_here(bus_worker *w, wq *q, bus_delivery **items)
{
    if (w->draining || !items || q->running != 0)
        return false;
    int64_t mono = clock_mono_ms();
    int n = claim_room(w, q, mono);
    if (n <= 0)
        return false;
    if (claim_queue(w, q, n, mono, items, true) < 0)
        poke_dispatcher(w); /* it retries after its error backoff */
    return true;
}

static void *handler_main(void *arg)
{
    bus_worker *w = arg;
    /* Outcomes this thread records with a claim of its own (claim_next_here). */
    bus_delivery **items = calloc((size_t)w->batch_max, sizeof(bus_delivery *));
    pthread_mutex_lock(&w->mu);
    for (;;) {
        bus_delivery *dl;
        while (!(dl = take_ready(w)) && !w->handlers_stop) {
            w->idle_handlers++;
            pthread_cond_wait(&w->work_cv, &w->mu);
            w->idle_handlers--;
        }
        if (!dl)
            break;
        pthread_mutex_unlock(&w->mu);
        int64_t t0 = clock_mono_us();
        run_delivery_rerunning(w, dl);
        int64_t took = clock_mono_us() - t0;
        pthread_mutex_lock(&w->mu);
        wq *q = dl->q;
        pace_add(q, took);
        q->running--;
        q->executing--;
        /* A job of q waiting for this slot: this thread takes it next, unless its round
         * robin turns to another queue first; then an idle thread must. */
        if (q->ready.head && w->nq > 1 && w->idle_handlers > 0)
            pthread_cond_signal(&w->work_cv);
        w->inflight--;
        bool done = dl->outcome == DL_DONE;
        if (done) {
            held_remove(w, dl);
        } else {
            list_push(&w->pending, dl);
            w->npending++;
            /* A lingering completer wakes by itself, or when a batch is worth a commit. */
            if (w->comp_idle || w->pending.n >= (size_t)w->batch_max / 4)
                pthread_cond_signal(&w->comp_cv);
        }
        pthread_cond_broadcast(&w->idle_cv);
        if (done) {
            pthread_mutex_unlock(&w->mu);
            delivery_free(dl);
            pthread_mutex_lock(&w->mu);
        }
        /* dl may be gone from here on: the completer owns an outcome once it is pending. */
        if (!claim_next_here(w, q, items))
            slot_freed(w, q);
    }
    pthread_mutex_unlock(&w->mu);
    free(items);
    return NULL;
}

/* ---- recording outcomes (completer) ---------------------------------------------------- */

typedef struct batch {
    bus_worker *w;
    bus_delivery **items;
    size_t n;
    int64_t now;
    bus_completion *done; /* n entries: the completions among items */
} batch;

/* Writes a transaction with the worker's own commit discipline: on SQLite through the
 * database's group commit, so claims, outcomes and concurrent publishes share one fsync;
 * on PostgreSQL (which groups commits itself) on a connection of the pool. */
static int worker_tx(bus_worker *w, db_tx_fn fn, void *ctx, err *e)
{
    if (w->group)
        return db_tx_group(w->d, fn, ctx, e);
    db_conn *c = db_acquire(w->d, e);
    if (!c)
        return db_err_code(e);
    int rc = db_tx(c, fn, ctx, e);
    db_release(c);
    return rc;
}

/* The completion of a job handled (with its inbox entry) or acknowledged without effect
 * (no inbox entry then: it is there already). Borrows dl's strings. */
static bus_completion completion_of(const bus_delivery *dl)
{
    bool record = dl->outcome == DL_COMPLETE && (dl->q->flags & BUS_QUEUE_INBOX);
    return (bus_completion){
        .queue = dl->q->name,
        .id = dl->job->id,
        .token = dl->token,
        .return_value = dl->outcome == DL_COMPLETE ? dl->return_value : NULL,
        .consumer = record ? dl->q->consumer : NULL,
        .event_id = delivery_event(dl),
    };
}

/* Records the outcomes of b's items in c's transaction: every completion (with its
 * inbox entry) in a few multi-row statements, failures one by one. */
static int apply_batch(db_conn *c, void *ctx, err *e)
{
    batch *b = ctx;
    size_t nd = 0;
    for (size_t i = 0; i < b->n; i++) {
        bus_delivery *dl = b->items[i];
        dl->gone = false;
        dl->dead = false;
        if (dl->outcome == DL_FAIL) {
            bus_fail_result res = BUS_RETRY_SCHEDULED;
            const char *reason =
                dl->reason ? dl->reason : "handler failed (reason lost: no memory)";
            int rc = bus_store_fail(b->w->s, c, dl->q->name, dl->job->id, dl->token, reason,
                                    dl->fail_kind, b->now, &res, e);
            if (rc == F3_ENOTFOUND) {
                dl->gone = true; /* the lease ran out and the job was taken back */
                err_clear(e);
                continue;
            }
            if (rc)
                return rc;
            dl->dead = res == BUS_DEAD_LETTERED;
            continue;
        }
        b->done[nd++] = completion_of(dl);
    }
    if (nd == 0)
        return 0;
    int rc = bus_store_complete_many(b->w->s, c, b->done, nd, b->now, e);
    for (size_t i = 0, k = 0; rc == 0 && i < b->n; i++)
        if (b->items[i]->outcome != DL_FAIL)
            b->items[i]->gone = b->done[k++].gone;
    return rc;
}

static void report_outcome(const bus_delivery *dl)
{
    if (dl->gone) {
        log_warn("job lease lost before its outcome was recorded; it runs again", "queue",
                 dl->q->name, "jobId", dl->job->id);
    } else if (dl->outcome == DL_FAIL && dl->dead) {
        log_warn("job failed for good (dead-lettered)", "queue", dl->q->name, "jobId", dl->job->id,
                 "reason", dl->reason);
    } else if (dl->outcome == DL_FAIL) {
        log_info("job failed; retry scheduled", "queue", dl->q->name, "jobId", dl->job->id,
                 "reason", dl->reason);
    }
}

/* Records the outcomes of items: all in one transaction, or, if that fails, one by one so
 * one bad outcome cannot hold back the others. Sets each item's commit_rc. */
static void commit_batch(bus_worker *w, bus_delivery **items, size_t n)
{
    err e = {0};
    bus_completion *done = calloc(n, sizeof *done);
    if (!done) {
        for (size_t i = 0; i < n; i++)
            items[i]->commit_rc = F3_ENOMEM;
        log_warn("cannot record job outcomes", "error", "out of memory");
        return;
    }
    batch b = {w, items, n, clock_now_ms(), done};
    int rc = worker_tx(w, apply_batch, &b, &e);
    if (rc == 0 || n == 1) {
        for (size_t i = 0; i < n; i++)
            items[i]->commit_rc = rc;
        if (rc)
            log_warn("cannot record a job outcome", "queue", items[0]->q->name, "jobId",
                     items[0]->job->id, "error", e.msg);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        batch one = {w, &items[i], 1, clock_now_ms(), done};
        err_clear(&e);
        items[i]->commit_rc = worker_tx(w, apply_batch, &one, &e);
        if (items[i]->commit_rc)
            log_warn("cannot record a job outcome", "queue", items[i]->q->name, "jobId",
                     items[i]->job->id, "error", e.msg);
    }
out:
    free(done);
}

/* After commit_batch: reports the outcomes, puts those worth another try back on the
 * pending list and frees the rest. True if something was put back (back off a little).
 * Takes w->mu. */
static bool settle_batch(bus_worker *w, bus_delivery **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (items[i]->commit_rc == 0)
            report_outcome(items[i]);
    pthread_mutex_lock(&w->mu);
    bool was_capped = w->npending >= pending_cap(w);
    bool backoff = false;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        bus_delivery *dl = items[i];
        int limit = w->completer_stop ? REQUEUE_MAX_STOPPING : REQUEUE_MAX;
        bool retry =
            dl->commit_rc == F3_EBUSY || dl->commit_rc == F3_EIO || dl->commit_rc == F3_ENOMEM;
        if (dl->commit_rc != 0 && retry && ++dl->requeues < limit) {
            list_push(&w->pending, dl);
            pthread_cond_signal(&w->comp_cv);
            backoff = true;
            continue;
        }
        if (dl->commit_rc != 0)
            log_error("giving up recording a job outcome; the job returns to its queue when "
                      "its lease ends",
                      "queue", dl->q->name, "jobId", dl->job->id);
        held_remove(w, dl);
        w->npending--;
        items[kept++] = dl;
    }
    if (was_capped)
        poke_dispatcher(w);
    pthread_cond_broadcast(&w->idle_cv);
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < kept; i++)
        delivery_free(items[i]);
    return backoff;
}

/* Takes up to cap outcomes off the pending list. Under w->mu. */
static size_t take_pending(bus_worker *w, bus_delivery **items, size_t cap)
{
    size_t n = 0;
    while (n < cap && w->pending.head)
        items[n++] = list_pop(&w->pending);
    return n;
}

static void *completer_main(void *arg)
{
    bus_worker *w = arg;
    size_t cap = (size_t)w->batch_max;
    bus_delivery **items = w->batch_items;
    bool backoff = false;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (backoff)
            cv_wait_ms(&w->comp_cv, &w->mu, ERROR_BACKOFF_MS);
        while (!w->pending.head && !w->completer_stop) {
            w->comp_idle = true;
            pthread_cond_wait(&w->comp_cv, &w->mu);
        }
        w->comp_idle = false;
        if (!w->pending.head)
            break;
        /* Linger a moment for more outcomes: one commit (one fsync on SQLite) for many.
         * The dispatcher may take them meanwhile, into its claim's transaction. */
        int64_t linger_end = clock_mono_ms() + LINGER_MS;
        while (!w->completer_stop && w->pending.n < cap / 4 && clock_mono_ms() < linger_end)
            cv_wait_ms(&w->comp_cv, &w->mu, linger_end - clock_mono_ms());
        size_t n = take_pending(w, items, cap);
        backoff = false;
        if (n == 0)
            continue;
        pthread_mutex_unlock(&w->mu);
        commit_batch(w, items, n);
        backoff = settle_batch(w, items, n);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- claiming (dispatcher) --------------------------------------------------------------- */

/* How many jobs of q to claim now: free slots of the queue, bounded by idle handler
 * threads; 0 while the completer is far behind, or while the queue was found empty and
 * nothing (no wake-up, no poll timeout) suggests it has changed. Under w->mu. */
static int claim_room(const bus_worker *w, const wq *q, int64_t mono)
{
    if (w->npending >= pending_cap(w))
        return 0;
    if (q->drained && q->drained_gen == w->store_gen && mono - q->drained_at < w->poll_ms)
        return 0;
    int room = q->concurrency + prefetch_now(w, q) - q->running;
    return room < CLAIM_MAX ? room : CLAIM_MAX;
}

typedef struct claim_tx {
    bus_worker *w;
    wq *q;
    int n;
    const char *token;
    int64_t now;
    batch outcomes; /* recorded first, in the same transaction; n may be 0 */
    bus_job **jobs;
    size_t got;
} claim_tx;

/* The dispatcher's transaction: the outcomes waiting to be recorded, then the claim (whose
 * inbox column then already sees the events just recorded). */
static int claim_body(db_conn *c, void *ctx, err *e)
{
    claim_tx *t = ctx;
    bus_jobs_free(t->jobs, t->got); /* a retried transaction starts over */
    t->jobs = NULL;
    t->got = 0;
    if (t->outcomes.n) {
        t->outcomes.now = t->now;
        int rc = apply_batch(c, &t->outcomes, e);
        if (rc)
            return rc;
    }
    wq *q = t->q;
    return bus_store_claim_tx(t->w->s, c, q->name, t->n, t->token, q->lease_ms, t->now,
                              (q->flags & BUS_QUEUE_INBOX) ? q->consumer : NULL, &t->jobs, &t->got,
                              e);
}

/* Claims up to n jobs of q (outside w->mu) as deliveries appended to out, recording the
 * nout outcomes taken off the pending list in the same transaction (complete-and-claim);
 * should that transaction fail, they are recorded on their own and the claim tried alone. */
static int claim_jobs(bus_worker *w, wq *q, int n, uint64_t seq, bus_delivery **outcomes,
                      size_t nout, dl_list *out, err *e)
{
    char token[TOKEN_MAX];
    snprintf(token, sizeof token, "%s:%llu", w->instance, (unsigned long long)seq);
    bus_completion *done = nout ? calloc(nout, sizeof *done) : NULL;
    claim_tx t = {w, q, n, token, clock_now_ms(), {w, outcomes, done ? nout : 0, 0, done}, NULL, 0};
    bool completions_only = nout == 0 || done;
    for (size_t i = 0; i < nout && completions_only; i++)
        completions_only = outcomes[i]->outcome != DL_FAIL;
    int rc;
    if (completions_only) {
        /* The common case, in the one commit the store shapes best (PostgreSQL: one
         * statement; SQLite: one group-committed transaction). */
        for (size_t i = 0; i < nout; i++)
            done[i] = completion_of(outcomes[i]);
        rc = bus_store_complete_and_claim(w->s, done, nout, q->name, n, token, q->lease_ms, t.now,
                                          (q->flags & BUS_QUEUE_INBOX) ? q->consumer : NULL,
                                          &t.jobs, &t.got, e);
        for (size_t i = 0; rc == 0 && i < nout; i++) {
            outcomes[i]->gone = done[i].gone;
            outcomes[i]->dead = false;
        }
    } else {
        rc = worker_tx(w, claim_body, &t, e);
    }
    if (nout) {
        if (rc || !done)
            commit_batch(w, outcomes, nout);
        else
            for (size_t i = 0; i < nout; i++)
                outcomes[i]->commit_rc = 0;
        settle_batch(w, outcomes, nout);
        free(done);
        if (rc) {
            err_clear(e);
            t.outcomes.n = 0;
            t.now = clock_now_ms();
            rc = worker_tx(w, claim_body, &t, e);
        }
    }
    if (rc) {
        bus_jobs_free(t.jobs, t.got);
        return rc;
    }
    bus_job **jobs = t.jobs;
    size_t got = t.got;
    int64_t mono = clock_mono_ms();
    for (size_t i = 0; i < got; i++) {
        bus_delivery *dl = calloc(1, sizeof *dl);
        char *tok = strdup(token);
        if (!dl || !tok) {
            free(dl);
            free(tok);
            log_error("out of memory taking a claimed job; it returns to its queue when its "
                      "lease ends",
                      "queue", q->name, "jobId", jobs[i]->id);
            continue;
        }
        dl->w = w;
        dl->q = q;
        dl->job = jobs[i];
        jobs[i] = NULL;
        dl->token = tok;
        dl->extended_at = mono;
        list_push(out, dl);
    }
    bus_jobs_free(jobs, got);
    return 0;
}

/* Claims up to n jobs of q, recording the outcomes waiting meanwhile in the same commit,
 * and puts the jobs on q's ready list, waking a handler thread for each (but one when the
 * caller is a handler thread that will take one itself). Under w->mu, released around the
 * store calls. The number of jobs claimed, or -1 if the claim failed. */
static int claim_queue(bus_worker *w, wq *q, int n, int64_t mono, bus_delivery **items,
                       bool self_runs)
{
    q->running += n; /* reserved, so handlers finishing meanwhile cannot confuse us */
    w->inflight += n;
    uint64_t store_gen = w->store_gen;
    uint64_t seq = ++w->claims;
    size_t nout = take_pending(w, items, (size_t)w->batch_max);
    pthread_mutex_unlock(&w->mu);
    err e = {0};
    dl_list got = {0};
    int rc = claim_jobs(w, q, n, seq, items, nout, &got, &e);
    pthread_mutex_lock(&w->mu);
    q->running -= n - (int)got.n;
    w->inflight -= n - (int)got.n;
    if (rc) {
        log_warn("claiming jobs failed", "queue", q->name, "error", e.msg);
        return -1;
    }
    q->drained = (int)got.n < n;
    q->drained_gen = store_gen;
    q->drained_at = mono;
    /* A wake-up during a handler thread's claim may have found no room (it was reserved
     * here) and been used up by the dispatcher: look again rather than wait a poll. */
    if (q->drained && w->store_gen != store_gen)
        poke_dispatcher(w);
    if (got.n == 0)
        return 0;
    for (bus_delivery *dl = got.head; dl; dl = dl->link)
        held_add(w, dl);
    if (q->ready.tail)
        q->ready.tail->link = got.head;
    else
        q->ready.head = got.head;
    q->ready.tail = got.tail;
    q->ready.n += got.n;
    /* One thread per job it may start now, not a stampede. */
    size_t startable = (size_t)(q->concurrency - q->executing);
    for (size_t i = self_runs ? 1 : 0; i < got.n && i < startable && i < (size_t)w->threads; i++)
        pthread_cond_signal(&w->work_cv);
    return (int)got.n;
}

/* One pass over the queues (round robin from `start`); true if anything was claimed,
 * *failed if a claim failed. Under w->mu, released around the store calls. */
static bool claim_pass(bus_worker *w, size_t start, bool *failed)
{
    bool claimed = false;
    for (size_t k = 0; k < w->nq && !w->draining; k++) {
        wq *q = w->queues[(start + k) % w->nq];
        int64_t mono = clock_mono_ms();
        int n = claim_room(w, q, mono);
        if (n <= 0)
            continue;
        int got = claim_queue(w, q, n, mono, w->disp_items, false);
        if (got < 0)
            *failed = true;
        else if (got > 0)
            claimed = true;
    }
    return claimed;
}

static void *dispatcher_main(void *arg)
{
    bus_worker *w = arg;
    size_t rr = 0;
    pthread_mutex_lock(&w->mu);
    while (!w->draining) {
        uint64_t seen = w->gen;
        w->slots_freed = false;
        bool failed = false;
        bool claimed = claim_pass(w, rr++, &failed);
        if (claimed || w->draining)
            continue;
        if (failed)
            cv_wait_ms(&w->disp_cv, &w->mu, ERROR_BACKOFF_MS);
        else if (w->gen == seen)
            cv_wait_ms(&w->disp_cv, &w->mu, w->slots_freed ? CLAIM_LINGER_MS : w->poll_ms);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- wake-ups from the store (listener) -------------------------------------------------- */

static void *listener_main(void *arg)
{
    bus_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->draining) {
        pthread_mutex_unlock(&w->mu);
        int64_t t0 = clock_mono_ms();
        int rc = bus_store_wait(w->s, w->poll_ms);
        /* A store whose wait fails fast must not turn this loop into a spin. */
        if (rc < 0 && clock_mono_ms() - t0 < ERROR_BACKOFF_MS)
            sleep_ms(ERROR_BACKOFF_MS);
        pthread_mutex_lock(&w->mu);
        w->store_gen++;
        poke_dispatcher(w);
    }
    w->listener_done = true;
    pthread_cond_broadcast(&w->idle_cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- maintenance ---------------------------------------------------------------------------- */

typedef struct renewal {
    bus_delivery *dl; /* identity only: compared, never dereferenced unless still held */
    wq *q;
    char *id;
    char *token;
    int64_t prev_extended_at;
} renewal;

/* The held delivery `r` was made for, or NULL if it is no longer held. Under w->mu. */
static bus_delivery *held_find(bus_worker *w, const renewal *r)
{
    for (bus_delivery *dl = w->held; dl; dl = dl->next)
        if (dl == r->dl && strcmp(dl->token, r->token) == 0 && strcmp(dl->job->id, r->id) == 0)
            return dl;
    return NULL;
}

/* Renews the lease of every held job not renewed for lease/3. */
static void renew_leases(bus_worker *w)
{
    int64_t mono = clock_mono_ms();
    size_t n = 0;
    renewal *rs = NULL;
    pthread_mutex_lock(&w->mu);
    for (bus_delivery *dl = w->held; dl; dl = dl->next)
        if (!dl->lost && mono - dl->extended_at >= dl->q->lease_ms / 3)
            n++;
    if (n)
        rs = calloc(n, sizeof *rs);
    size_t k = 0;
    for (bus_delivery *dl = w->held; rs && dl && k < n; dl = dl->next) {
        if (dl->lost || mono - dl->extended_at < dl->q->lease_ms / 3)
            continue;
        renewal *r = &rs[k];
        r->id = strdup(dl->job->id);
        r->token = strdup(dl->token);
        if (!r->id || !r->token) {
            free(r->id);
            free(r->token);
            continue;
        }
        r->dl = dl;
        r->q = dl->q;
        r->prev_extended_at = dl->extended_at;
        dl->extended_at = mono;
        k++;
    }
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < k; i++) {
        err e = {0};
        renewal *r = &rs[i];
        int rc =
            bus_store_extend(w->s, r->q->name, r->id, r->token, r->q->lease_ms, clock_now_ms(), &e);
        if (rc) {
            pthread_mutex_lock(&w->mu);
            bus_delivery *dl = held_find(w, r);
            if (dl && rc == F3_ENOTFOUND)
                dl->lost = true;
            else if (dl)
                dl->extended_at = r->prev_extended_at; /* try again on the next tick */
            pthread_mutex_unlock(&w->mu);
            if (dl && rc == F3_ENOTFOUND)
                log_warn("job lease lost while its handler runs", "queue", r->q->name, "jobId",
                         r->id);
            else if (dl)
                log_warn("renewing a job lease failed", "queue", r->q->name, "jobId", r->id,
                         "error", e.msg);
        }
        free(r->id);
        free(r->token);
    }
    free(rs);
}

typedef struct maint_clock {
    int64_t next_stalled, next_repeat, next_trim;
} maint_clock;

/* New jobs may be claimable (recovered, or enqueued by a tick): look again now. */
static void store_changed(bus_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->store_gen++;
    poke_dispatcher(w);
    pthread_mutex_unlock(&w->mu);
}

static void recover_stalled(bus_worker *w)
{
    err e = {0};
    int recovered = 0, failed = 0;
    int rc = bus_store_recover_stalled(w->s, clock_now_ms(), &recovered, &failed, &e);
    if (rc) {
        log_warn("stalled job recovery failed", "error", e.msg);
    } else if (recovered || failed) {
        char r[16], f[16];
        snprintf(r, sizeof r, "%d", recovered);
        snprintf(f, sizeof f, "%d", failed);
        log_warn("stalled jobs taken back from dead owners", "recovered", r, "failed", f);
        store_changed(w);
    }
}

static void tick_repeatables(bus_worker *w)
{
    err e = {0};
    int enqueued = 0;
    int rc = bus_store_repeatables_tick(w->s, clock_now_ms(), &enqueued, &e);
    if (rc)
        log_warn("repeatable jobs tick failed", "error", e.msg);
    else if (enqueued)
        store_changed(w);
}

static void trim(bus_worker *w)
{
    err e = {0};
    for (size_t i = 0; i < w->nq; i++) {
        err_clear(&e);
        int rc = bus_store_trim(w->s, w->queues[i]->name, &e);
        if (rc)
            log_warn("trimming finished jobs failed", "queue", w->queues[i]->name, "error", e.msg);
    }
    err_clear(&e);
    int rc = bus_inbox_trim(w->d, clock_now_ms() - w->inbox_keep_ms, NULL, &e);
    if (rc)
        log_warn("pruning the inbox failed", "error", e.msg);
}

static void maintain_queues(bus_worker *w, maint_clock *mc)
{
    int64_t mono = clock_mono_ms();
    if (w->stalled_ms > 0 && mono >= mc->next_stalled) {
        mc->next_stalled = mono + w->stalled_ms;
        recover_stalled(w);
    }
    if (w->repeat_ms > 0 && mono >= mc->next_repeat) {
        mc->next_repeat = mono + w->repeat_ms;
        tick_repeatables(w);
    }
    if (w->trim_ms > 0 && mono >= mc->next_trim) {
        mc->next_trim = mono + w->trim_ms;
        trim(w);
    }
}

/* How often the maintenance thread wakes: often enough for the shortest lease/3 and
 * every enabled interval, at most once a second. */
static int64_t maint_tick_ms(const bus_worker *w)
{
    int64_t tick = 1000;
    for (size_t i = 0; i < w->nq; i++)
        if (w->queues[i]->lease_ms / 6 < tick)
            tick = w->queues[i]->lease_ms / 6;
    const int intervals[] = {w->stalled_ms, w->repeat_ms, w->trim_ms};
    for (size_t i = 0; i < sizeof intervals / sizeof intervals[0]; i++)
        if (intervals[i] > 0 && intervals[i] < tick)
            tick = intervals[i];
    return tick < 5 ? 5 : tick;
}

static void *maint_main(void *arg)
{
    bus_worker *w = arg;
    int64_t tick = maint_tick_ms(w);
    int64_t now = clock_mono_ms();
    /* Stalled recovery runs at once, so jobs of a crashed predecessor come back early. */
    maint_clock mc = {now, now, now + w->trim_ms};
    pthread_mutex_lock(&w->mu);
    while (!w->maint_stop) {
        bool draining = w->draining;
        pthread_mutex_unlock(&w->mu);
        renew_leases(w);
        if (!draining)
            maintain_queues(w, &mc);
        pthread_mutex_lock(&w->mu);
        if (!w->maint_stop)
            cv_wait_ms(&w->maint_cv, &w->mu, tick);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- starting and stopping ------------------------------------------------------------------ */

/* After stop_claiming: gives every claimed job no handler has started back to its queue,
 * so a drain starts nothing new. A job that cannot be given back keeps its lease until it
 * ends, and then stalled recovery returns it. */
static void release_ready(bus_worker *w)
{
    dl_list back = {0};
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->nq; i++) {
        wq *q = w->queues[i];
        bus_delivery *dl;
        while ((dl = list_pop(&q->ready)) != NULL) {
            q->running--;
            w->inflight--;
            list_push(&back, dl);
        }
    }
    pthread_mutex_unlock(&w->mu);
    for (bus_delivery *dl = back.head; dl; dl = dl->link) {
        err e = {0};
        if (bus_store_release(w->s, dl->q->name, dl->job->id, dl->token, &e) != 0)
            log_warn("cannot give an unstarted job back to its queue; it returns when its "
                     "lease ends",
                     "queue", dl->q->name, "jobId", dl->job->id, "error", e.msg);
    }
    pthread_mutex_lock(&w->mu);
    for (bus_delivery *dl = back.head; dl; dl = dl->link)
        held_remove(w, dl);
    pthread_cond_broadcast(&w->idle_cv);
    pthread_mutex_unlock(&w->mu);
    bus_delivery *dl;
    while ((dl = list_pop(&back)) != NULL)
        delivery_free(dl);
}

static int default_threads(const bus_worker *w)
{
    int sum = 0;
    for (size_t i = 0; i < w->nq && sum < DEFAULT_THREADS_MAX; i++)
        sum += w->queues[i]->concurrency;
    return sum < DEFAULT_THREADS_MAX ? sum : DEFAULT_THREADS_MAX;
}

static void stop_claiming(bus_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->draining = true;
    pthread_cond_signal(&w->disp_cv);
    bool join = !w->claim_joined;
    w->claim_joined = true;
    while (join && !w->listener_done) {
        pthread_mutex_unlock(&w->mu);
        bus_store_wake(w->s); /* the listener may be just entering its wait: wake again */
        pthread_mutex_lock(&w->mu);
        if (!w->listener_done)
            cv_wait_ms(&w->idle_cv, &w->mu, LISTENER_STOP_POLL_MS);
    }
    pthread_mutex_unlock(&w->mu);
    if (join) {
        pthread_join(w->dispatcher, NULL);
        pthread_join(w->listener, NULL);
    }
}

static void stop_rest(bus_worker *w)
{
    pthread_mutex_lock(&w->mu);
    bool join = !w->all_joined;
    w->all_joined = true;
    w->handlers_stop = true;
    pthread_cond_broadcast(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    if (!join)
        return;
    for (int i = 0; i < w->pool_n; i++)
        pthread_join(w->pool[i], NULL);
    pthread_mutex_lock(&w->mu);
    w->completer_stop = true;
    pthread_cond_signal(&w->comp_cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->completer, NULL);
    pthread_mutex_lock(&w->mu);
    w->maint_stop = true;
    pthread_cond_signal(&w->maint_cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->maint, NULL);
}

int bus_worker_start(bus_worker *w, err *e)
{
    if (w->started)
        return err_set(e, F3_EINVAL, "bus worker: already started");
    if (w->nq == 0)
        return err_set(e, F3_EINVAL, "bus worker: no queue registered");
    if (w->threads == 0)
        w->threads = default_threads(w);
    free(w->pool);
    free(w->batch_items);
    free(w->disp_items);
    w->pool = calloc((size_t)w->threads, sizeof *w->pool);
    w->batch_items = calloc((size_t)w->batch_max, sizeof(bus_delivery *));
    w->disp_items = calloc((size_t)w->batch_max, sizeof(bus_delivery *));
    if (!w->pool || !w->batch_items || !w->disp_items)
        return err_set(e, F3_ENOMEM, "out of memory starting the bus worker");
    /* Threads are created in the order stop_rest/stop_claiming joins them back; a failure
     * part-way stops those already running. */
    w->started = true;
    int rc = pthread_create(&w->maint, NULL, maint_main, w);
    bool maint = rc == 0, completer = false;
    if (rc == 0)
        completer = (rc = pthread_create(&w->completer, NULL, completer_main, w)) == 0;
    while (rc == 0 && w->pool_n < w->threads) {
        rc = pthread_create(&w->pool[w->pool_n], NULL, handler_main, w);
        if (rc == 0)
            w->pool_n++;
    }
    bool listener = false;
    if (rc == 0)
        listener = (rc = pthread_create(&w->listener, NULL, listener_main, w)) == 0;
    if (rc == 0)
        rc = pthread_create(&w->dispatcher, NULL, dispatcher_main, w);
    if (rc == 0) {
        log_info("bus worker started", "instance", w->instance);
        return 0;
    }
    /* Unwind by hand: only the threads that exist may be joined. */
    pthread_mutex_lock(&w->mu);
    w->draining = w->handlers_stop = w->completer_stop = w->maint_stop = true;
    w->claim_joined = w->all_joined = true;
    pthread_cond_broadcast(&w->work_cv);
    pthread_cond_broadcast(&w->comp_cv);
    pthread_cond_broadcast(&w->maint_cv);
    while (listener && !w->listener_done) {
        pthread_mutex_unlock(&w->mu);
        bus_store_wake(w->s);
        pthread_mutex_lock(&w->mu);
        if (!w->listener_done)
            cv_wait_ms(&w->idle_cv, &w->mu, LISTENER_STOP_POLL_MS);
    }
    pthread_mutex_unlock(&w->mu);
    if (listener)
        pthread_join(w->listener, NULL);
    for (int i = 0; i < w->pool_n; i++)
        pthread_join(w->pool[i], NULL);
    if (completer)
        pthread_join(w->completer, NULL);
    if (maint)
        pthread_join(w->maint, NULL);
    return err_set(e, F3_ENOMEM, "bus worker: cannot start threads");
}

int bus_worker_drain(bus_worker *w, int timeout_ms)
{
    if (!w || !w->started)
        return 0;
    int64_t deadline = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    stop_claiming(w);
    release_ready(w);
    pthread_mutex_lock(&w->mu);
    while ((w->inflight > 0 || w->npending > 0) && clock_mono_ms() < deadline)
        cv_wait_ms(&w->idle_cv, &w->mu, deadline - clock_mono_ms());
    bool idle = w->inflight == 0 && w->npending == 0;
    pthread_mutex_unlock(&w->mu);
    if (!idle)
        return F3_EBUSY;
    stop_rest(w);
    return 0;
}

void bus_worker_free(bus_worker *w)
{
    if (!w)
        return;
    if (w->started) {
        stop_claiming(w);
        release_ready(w);
        stop_rest(w);
    }
    for (bus_delivery *dl = w->held, *next; dl; dl = next) {
        next = dl->next;
        delivery_free(dl);
    }
    for (size_t i = 0; i < w->nq; i++) {
        free(w->queues[i]->name);
        free(w->queues[i]->consumer);
        free(w->queues[i]);
    }
    free(w->queues);
    free(w->pool);
    free(w->batch_items);
    free(w->disp_items);
    pthread_cond_destroy(&w->work_cv);
    pthread_cond_destroy(&w->disp_cv);
    pthread_cond_destroy(&w->comp_cv);
    pthread_cond_destroy(&w->idle_cv);
    pthread_cond_destroy(&w->maint_cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
