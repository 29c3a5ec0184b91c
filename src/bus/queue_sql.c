/*
 * queue_sql.c - the durable job queue store in the database (queue.h), over SQLite and
 * PostgreSQL with one SQL text (db.h).
 *
 * Jobs are rows of bus_jobs (migrations/0002_bus.sql). A job is waiting, active,
 * completed or failed; "delayed" (run_at > now) and "prioritized" (priority > 0) are
 * derived when read, so nothing has to move a job when its delay runs out. A claim is one
 * UPDATE over a sub-SELECT ordered as BullMQ fetches (unprioritized jobs first, then by
 * priority; each by run time, then order of adding), with FOR UPDATE SKIP LOCKED on
 * PostgreSQL so concurrent claimers take different rows. Functions given a caller's `tx`
 * run inside it and never BEGIN or COMMIT; the others use one short transaction.
 *
 * Idle workers sleep in bus_store_wait on a condition variable. A commit that made a job
 * claimable on this thread (tracked per thread, see note_pending) wakes them through the
 * database's commit hook; on PostgreSQL the same commit carries NOTIFY f3_bus, which a
 * listener thread of every process turns into the same wakeup.
 * This file must not run handlers, renew leases on its own or schedule anything: that is
 * the worker runtime's job.
 */
#include "bus/queue.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "core/uuid.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUS_CHANNEL        "f3_bus"
#define BUS_JOB_ID_MAX     512
#define BUS_CLAIM_MAX      1000
#define BUS_REASON_MAX     8192 /* longer failure reasons are cut */
#define BUS_STALLED_BATCH  500
#define BUS_TRIM_BATCH     10000
#define BUS_TRIM_EVERY     500 /* finished jobs (outside a caller's tx) between trims */
#define BUS_TICK_BATCH     100
#define BUS_LISTEN_WAIT_MS 5000
#define BUS_STALLED_REASON "job stalled more than allowable limit"
#define BUS_CLEAN_ALL      INT64_MAX

struct bus_store {
    db *d;
    char *claim_sql[2]; /* [0] plain, [1] also answering the inbox question */
    char *stalled_sql;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    uint64_t gen;        /* bumped by every wakeup */
    bool pg;             /* PostgreSQL: several processes, LISTEN/NOTIFY */
    db_listener *listener;
    pthread_t listen_thread;
    bool listening;
    atomic_bool stopping;
    atomic_uint finished; /* jobs completed/failed, for the opportunistic trim */
};

/* ---- wakeups -------------------------------------------------------------------------- */

/* The stores this thread made a job claimable in since its last commit. The commit hook
 * runs on the committing thread, so it can tell a commit that added jobs from the many
 * that did not, without any shared state. A rolled-back add leaves an entry behind,
 * which costs one spurious wakeup at the thread's next commit. */
#define BUS_PENDING_MAX 8
static _Thread_local bus_store *tls_pending[BUS_PENDING_MAX];
static _Thread_local bool tls_pending_overflow;

/* The wakeup generation this thread last saw, so a wakeup that happens between a claim
 * that found nothing and the following bus_store_wait is not lost. */
static _Thread_local const bus_store *tls_seen_store;
static _Thread_local uint64_t tls_seen_gen;

static void note_pending(bus_store *s)
{
    for (int i = 0; i < BUS_PENDING_MAX; i++)
        if (tls_pending[i] == s)
            return;
    for (int i = 0; i < BUS_PENDING_MAX; i++)
        if (!tls_pending[i]) {
            tls_pending[i] = s;
            return;
        }
    tls_pending_overflow = true; /* from then on every commit of this thread wakes */
}

static bool take_pending(bus_store *s)
{
    for (int i = 0; i < BUS_PENDING_MAX; i++)
        if (tls_pending[i] == s) {
            tls_pending[i] = NULL;
            return true;
        }
    return tls_pending_overflow;
}

static void wake_all(bus_store *s)
{
    pthread_mutex_lock(&s->lock);
    s->gen++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void on_commit(void *ctx)
{
    bus_store *s = ctx;
    if (take_pending(s))
        wake_all(s);
}

static void remember_gen(bus_store *s)
{
    pthread_mutex_lock(&s->lock);
    tls_seen_store = s;
    tls_seen_gen = s->gen;
    pthread_mutex_unlock(&s->lock);
}

/* A job became claimable in c's transaction: wake this process at commit (the hook) and,
 * on PostgreSQL, every other process (NOTIFY is delivered at commit). */
static int made_claimable(bus_store *s, db_conn *c, err *e)
{
    note_pending(s);
    return db_notify(c, BUS_CHANNEL, e);
}

int bus_store_wait(bus_store *s, int timeout_ms)
{
    struct timespec deadline = clock_mono_after(timeout_ms);
    pthread_mutex_lock(&s->lock);
    uint64_t seen = tls_seen_store == s ? tls_seen_gen : s->gen;
    int rc = 0;
    while (s->gen == seen && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->cond, &s->lock, &deadline);
    int woken = s->gen != seen;
    tls_seen_store = s;
    tls_seen_gen = s->gen;
    pthread_mutex_unlock(&s->lock);
    return woken;
}

void bus_store_wake(bus_store *s)
{
    wake_all(s);
}

/* PostgreSQL: turns NOTIFY f3_bus from any process into a wakeup of this one. */
static void *listen_main(void *arg)
{
    bus_store *s = arg;
    while (!atomic_load(&s->stopping)) {
        err e;
        err_clear(&e);
        int rc = db_listener_wait(s->listener, BUS_LISTEN_WAIT_MS, &e);
        if (rc == 1) {
            wake_all(s);
        } else if (rc < 0) {
            log_warn("queue listener cannot reach the database; retrying", "error", e.msg);
            for (int i = 0; i < 10 && !atomic_load(&s->stopping); i++) {
                struct timespec ts = {0, 100 * 1000000L};
                nanosleep(&ts, NULL);
            }
        }
    }
    return NULL;
}

/* ---- small SQL helpers ---------------------------------------------------------------- */

/* Binds values by a format: 't' const char * (NULL binds NULL), 'i' int64_t, 'b' bool
 * (passed as int). Bind errors surface at db_step. */
static void bind_va(db_stmt *st, const char *fmt, va_list ap)
{
    for (int i = 0; fmt && fmt[i]; i++) {
        switch (fmt[i]) {
        case 't':
            db_bind_text(st, i + 1, va_arg(ap, const char *));
            break;
        case 'i':
            db_bind_int64(st, i + 1, va_arg(ap, int64_t));
            break;
        default:
            db_bind_bool(st, i + 1, va_arg(ap, int) != 0);
        }
    }
}

static db_stmt *prep(db_conn *c, err *e, const char *sql, const char *fmt, ...)
{
    db_stmt *st = db_prepare(c, sql, e);
    if (!st)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    bind_va(st, fmt, ap);
    va_end(ap);
    return st;
}

/* Runs a statement that returns no rows; *changes (may be NULL) = rows it changed. */
static int run(db_conn *c, int64_t *changes, err *e, const char *sql, const char *fmt, ...)
{
    db_stmt *st = db_prepare(c, sql, e);
    if (!st)
        return e->code ? e->code : F3_EIO;
    va_list ap;
    va_start(ap, fmt);
    bind_va(st, fmt, ap);
    va_end(ap);
    int rc = db_step(st, e);
    if (rc == DB_ROW)
        rc = DB_DONE;
    if (rc == DB_DONE && changes)
        *changes = db_changes(st);
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

typedef int (*store_fn)(bus_store *s, db_conn *c, void *ctx, err *e);

typedef struct tx_call {
    bus_store *s;
    store_fn fn;
    void *ctx;
} tx_call;

static int tx_body(db_conn *c, void *ctx, err *e)
{
    tx_call *t = ctx;
    return t->fn(t->s, c, t->ctx, e);
}

/* Runs fn in the caller's transaction tx, or in a transaction of its own (retried when
 * busy, so fn must start from scratch each time). */
static int in_tx(bus_store *s, db_conn *tx, store_fn fn, void *ctx, err *e)
{
    if (tx)
        return fn(s, tx, ctx, e);
    db_conn *c = db_acquire(s->d, e);
    if (!c)
        return e->code ? e->code : F3_EIO;
    tx_call t = {s, fn, ctx};
    int rc = db_tx(c, tx_body, &t, e);
    db_release(c);
    return rc;
}

/* Runs fn on a connection without opening a transaction (single statements). */
static int on_conn(bus_store *s, db_conn *tx, store_fn fn, void *ctx, err *e)
{
    if (tx)
        return fn(s, tx, ctx, e);
    db_conn *c = db_acquire(s->d, e);
    if (!c)
        return e->code ? e->code : F3_EIO;
    int rc = fn(s, c, ctx, e);
    db_release(c);
    return rc;
}

#define ERR_LOCAL(e)                                                                               \
    err e##_local;                                                                                 \
    err_clear(&e##_local);                                                                         \
    if (!(e))                                                                                      \
    (e) = &e##_local

static int check_queue(const char *queue, err *e)
{
    if (!queue || !*queue)
        return err_set(e, F3_EINVAL, "queue name is empty");
    if (strlen(queue) > BUS_QUEUE_NAME_MAX)
        return err_set(e, F3_EINVAL, "queue name is longer than %d bytes", BUS_QUEUE_NAME_MAX);
    return 0;
}

static int check_id(const char *id, err *e)
{
    if (!id || !*id)
        return err_set(e, F3_EINVAL, "job id is empty");
    if (strlen(id) > BUS_JOB_ID_MAX)
        return err_set(e, F3_EINVAL, "job id is longer than %d bytes", BUS_JOB_ID_MAX);
    return 0;
}

static int check_json(const char *what, const char *text, err *e)
{
    if (!text)
        return err_set(e, F3_EINVAL, "%s is missing", what);
    json_t *v = NULL;
    err je;
    err_clear(&je);
    if (json_parse(text, strlen(text), &v, &je))
        return err_set(e, F3_EINVAL, "%s is not JSON: %s", what, je.msg);
    json_decref(v);
    return 0;
}

/* ---- reading jobs --------------------------------------------------------------------- */

#define JOB_COLS                                                                                   \
    "queue, id, name, data, state, priority, attempts_made, attempts_started, max_attempts,"       \
    " stalled_count, backoff_type, backoff_delay, created_at, run_at, processed_at, finished_at,"  \
    " failed_reason, errors, return_value, lock_token, lock_until, order_key"
#define JOB_COL_ORDER_KEY 21
#define JOB_COL_INBOX     22 /* claims with an inbox consumer only */

static char *dup_col(db_stmt *st, int col, bool *oom)
{
    const char *t = db_col_text(st, col);
    if (!t)
        return NULL;
    char *copy = strdup(t);
    if (!copy)
        *oom = true;
    return copy;
}

static bus_state derive_state(const char *state, int priority, int64_t run_at, int64_t now)
{
    int s = bus_state_parse(state);
    if (s == BUS_STATE_WAITING && run_at > now)
        return BUS_STATE_DELAYED;
    if (s == BUS_STATE_WAITING && priority > 0)
        return BUS_STATE_PRIORITIZED;
    return s < 0 ? BUS_STATE_FAILED : (bus_state)s;
}

/* The job in the current row (JOB_COLS); NULL when out of memory. */
static bus_job *read_job(db_stmt *st, int64_t now)
{
    bus_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    bool oom = false;
    j->queue = dup_col(st, 0, &oom);
    j->id = dup_col(st, 1, &oom);
    j->name = dup_col(st, 2, &oom);
    j->data = dup_col(st, 3, &oom);
    j->priority = (int)db_col_int64(st, 5);
    j->attempts_made = (int)db_col_int64(st, 6);
    j->attempts_started = (int)db_col_int64(st, 7);
    j->max_attempts = (int)db_col_int64(st, 8);
    j->stalled_count = (int)db_col_int64(st, 9);
    const char *bt = db_col_text(st, 10);
    j->backoff.type = bt && strcmp(bt, "fixed") == 0 ? BUS_BACKOFF_FIXED : BUS_BACKOFF_EXPONENTIAL;
    j->backoff.delay_ms = db_col_int64(st, 11);
    j->created_at = db_col_int64(st, 12);
    j->run_at = db_col_int64(st, 13);
    j->processed_at = db_col_int64(st, 14);
    j->finished_at = db_col_int64(st, 15);
    j->failed_reason = dup_col(st, 16, &oom);
    j->errors = dup_col(st, 17, &oom);
    j->return_value = dup_col(st, 18, &oom);
    j->lock_token = dup_col(st, 19, &oom);
    j->lock_until = db_col_int64(st, 20);
    j->state = derive_state(db_col_text(st, 4), j->priority, j->run_at, now);
    if (oom || !j->queue || !j->id || !j->name || !j->data) {
        bus_job_free(j);
        return NULL;
    }
    return j;
}

/* A growing list of jobs, each with its order key for sorting claims. */
typedef struct job_list {
    bus_job **jobs;
    char **keys;
    size_t n, cap;
} job_list;

static void job_list_clear(job_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        bus_job_free(l->jobs[i]);
        free(l->keys[i]);
    }
    free(l->jobs);
    free(l->keys);
    memset(l, 0, sizeof *l);
}

static int job_list_push(job_list *l, bus_job *j, char *key)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        bus_job **jobs = realloc(l->jobs, cap * sizeof(bus_job *));
        if (jobs)
            l->jobs = jobs;
        char **keys = realloc(l->keys, cap * sizeof *keys);
        if (keys)
            l->keys = keys;
        if (!jobs || !keys)
            return F3_ENOMEM;
        l->cap = cap;
    }
    l->jobs[l->n] = j;
    l->keys[l->n] = key;
    l->n++;
    return 0;
}

/* Steps st to the end, appending every row as a job. */
static int collect_jobs(db_stmt *st, int64_t now, job_list *out, err *e)
{
    int rc;
    while ((rc = db_step(st, e)) == DB_ROW) {
        bus_job *j = read_job(st, now);
        if (j && db_col_count(st) > JOB_COL_INBOX) {
            j->inbox_checked = true;
            j->inbox_seen = db_col_bool(st, JOB_COL_INBOX);
        }
        const char *k = db_col_text(st, JOB_COL_ORDER_KEY);
        char *key = k ? strdup(k) : NULL;
        if (!j || (k && !key) || job_list_push(out, j, key)) {
            bus_job_free(j);
            free(key);
            return err_set(e, F3_ENOMEM, "out of memory reading jobs");
        }
    }
    return rc < 0 ? rc : 0;
}

/* Hands the jobs to the caller and frees the keys. */
static void job_list_detach(job_list *l, bus_job ***out, size_t *n)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->keys[i]);
    free(l->keys);
    *out = l->jobs;
    *n = l->n;
    memset(l, 0, sizeof *l);
}

/* ---- open / close --------------------------------------------------------------------- */

/* The picked ids are a MATERIALIZED CTE so that the locking sub-SELECT runs exactly once:
 * as a plain "id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)" PostgreSQL may run it
 * again for each row, and each run skips the rows the previous ones took. One statement
 * serves BullMQ's order, since priority 0 (none) sorts before 1 (highest). With the inbox
 * column, $6 is the consumer whose inbox is asked about each claimed job's id. */
static char *claim_sql(const db *d, bool inbox)
{
    buf b;
    buf_init(&b, 0);
    buf_printf(&b,
               "WITH picked AS MATERIALIZED (SELECT id FROM bus_jobs"
               " WHERE queue = $1 AND state = 'waiting' AND run_at <= $5"
               " AND NOT EXISTS (SELECT 1 FROM bus_queues WHERE name = $1 AND paused)"
               " ORDER BY priority, run_at, order_key LIMIT $2%s)"
               " UPDATE bus_jobs SET state = 'active', lock_token = $3, lock_until = $4,"
               " processed_at = $5, attempts_started = attempts_started + 1"
               " WHERE queue = $1 AND id IN (SELECT id FROM picked) RETURNING " JOB_COLS "%s",
               db_sql_skip_locked(d),
               inbox ? ", EXISTS (SELECT 1 FROM bus_inbox WHERE consumer = $6"
                       " AND event_id = bus_jobs.id)"
                     : "");
    return buf_detach(&b);
}

int bus_store_open_sql(db *d, bus_store **out, err *e)
{
    ERR_LOCAL(e);
    *out = NULL;
    bus_store *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, F3_ENOMEM, "out of memory opening the queue store");
    s->d = d;
    pthread_mutex_init(&s->lock, NULL);
    clock_cond_init(&s->cond);
    atomic_init(&s->stopping, false);
    atomic_init(&s->finished, 0);
    int rc = 0;
    s->claim_sql[0] = claim_sql(d, false);
    s->claim_sql[1] = claim_sql(d, true);
    buf b;
    buf_init(&b, 0);
    buf_printf(&b,
               "SELECT queue, id, lock_token, stalled_count, attempts_made, errors,"
               " (SELECT max_stalled FROM bus_queues WHERE name = bus_jobs.queue)"
               " FROM bus_jobs WHERE state = 'active' AND lock_until < $1"
               " ORDER BY lock_until LIMIT $2%s",
               db_sql_skip_locked(d));
    s->stalled_sql = buf_detach(&b);
    if (!s->claim_sql[0] || !s->claim_sql[1] || !s->stalled_sql) {
        rc = err_set(e, F3_ENOMEM, "out of memory opening the queue store");
        goto out;
    }
    if ((rc = db_on_commit(d, on_commit, s, e)))
        goto out;
    s->pg = strcmp(db_backend(d), "postgres") == 0;
    if (s->pg) {
        if ((rc = db_listener_open(d, BUS_CHANNEL, &s->listener, e)))
            goto out;
        if (pthread_create(&s->listen_thread, NULL, listen_main, s) != 0) {
            rc = err_set(e, F3_EIO, "cannot start the queue listener thread");
            goto out;
        }
        s->listening = true;
    }
out:
    if (rc) {
        bus_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void bus_store_close(bus_store *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    if (s->listening) {
        db_listener_interrupt(s->listener);
        pthread_join(s->listen_thread, NULL);
    }
    db_listener_close(s->listener);
    db_on_commit_remove(s->d, on_commit, s);
    for (int i = 0; i < BUS_PENDING_MAX; i++)
        if (tls_pending[i] == s)
            tls_pending[i] = NULL;
    if (tls_seen_store == s)
        tls_seen_store = NULL;
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s->claim_sql[0]);
    free(s->claim_sql[1]);
    free(s->stalled_sql);
    free(s);
}

/* ---- add ------------------------------------------------------------------------------ */

typedef struct add_args {
    const char *queue, *name, *data;
    const bus_job_opts *o;
    int64_t now;
    bool added;
} add_args;

static int add_job(bus_store *s, db_conn *c, void *ctx, err *e)
{
    add_args *a = ctx;
    const bus_job_opts *o = a->o;
    char gen_id[UUID_STR_LEN], order_key[UUID_STR_LEN];
    uuid_v7(order_key);
    const char *id = o && o->job_id ? o->job_id : NULL;
    if (!id) {
        uuid_v7(gen_id);
        id = gen_id;
    }
    bool fixed = o && o->backoff.delay_ms > 0 && o->backoff.type == BUS_BACKOFF_FIXED;
    int64_t backoff = o && o->backoff.delay_ms > 0 ? o->backoff.delay_ms : BUS_DEFAULT_BACKOFF_MS;
    int attempts = o && o->attempts > 0 ? o->attempts : BUS_DEFAULT_ATTEMPTS;
    int64_t run_at = a->now + (o && o->delay_ms > 0 ? o->delay_ms : 0);
    int64_t changes = 0;
    a->added = false;
    int rc =
        run(c, &changes, e,
            "INSERT INTO bus_jobs (queue, id, name, data, state, priority, order_key, run_at,"
            " max_attempts, backoff_type, backoff_delay, created_at)"
            " VALUES ($1, $2, $3, $4, 'waiting', $5, $6, $7, $8, $9, $10, $11)"
            " ON CONFLICT (queue, id) DO NOTHING",
            "ttttitiitii", a->queue, id, a->name, a->data, (int64_t)(o ? o->priority : 0),
            order_key, run_at, (int64_t)attempts, fixed ? "fixed" : "exponential", backoff, a->now);
    if (rc)
        return rc;
    a->added = changes > 0;
    return a->added ? made_claimable(s, c, e) : 0;
}

/* The checks every add makes, apart from the queue name. */
static int check_add(const char *name, const char *data, const bus_job_opts *o, err *e)
{
    int rc;
    if ((o && o->job_id && (rc = check_id(o->job_id, e))) || (rc = check_json("job data", data, e)))
        return rc;
    if (!name || !*name)
        return err_set(e, F3_EINVAL, "job name is empty");
    if (o && (o->priority < 0 || o->priority > BUS_PRIORITY_MAX))
        return err_set(e, F3_EINVAL, "priority %d is out of range (0..%d)", o->priority,
                       BUS_PRIORITY_MAX);
    if (o && (o->attempts < 0 || o->delay_ms < 0 || o->backoff.delay_ms < 0))
        return err_set(e, F3_EINVAL, "job options: attempts, delay and backoff must be >= 0");
    return 0;
}

int bus_store_add(bus_store *s, db_conn *tx, const char *queue, const char *name, const char *data,
                  const bus_job_opts *o, int64_t now, bool *added, err *e)
{
    ERR_LOCAL(e);
    if (added)
        *added = false;
    int rc;
    if ((rc = check_queue(queue, e)) || (rc = check_add(name, data, o, e)))
        return rc;
    add_args a = {queue, name, data, o, now, false};
    rc = in_tx(s, tx, add_job, &a, e);
    if (rc == 0 && added)
        *added = a.added;
    return rc;
}

typedef struct add_many_args {
    bus_store *s;
    const char *const *queues;
    size_t n;
    const char *name, *data;
    const bus_job_opts *o;
    int64_t now;
    int added;
} add_many_args;

/* Adds to every queue in c's transaction (the caller's, or a shared group commit). */
static int add_many_in(db_conn *c, void *ctx, err *e)
{
    add_many_args *m = ctx;
    m->added = 0; /* a retried transaction starts over */
    for (size_t i = 0; i < m->n; i++) {
        add_args a = {m->queues[i], m->name, m->data, m->o, m->now, false};
        int rc = add_job(m->s, c, &a, e);
        if (rc)
            return rc;
        m->added += a.added;
    }
    return 0;
}

/* PostgreSQL: every row and the NOTIFY in one statement, instead of an INSERT per queue
 * and a NOTIFY. The NOTIFY is sent only when a row was added, and is delivered at commit
 * (several in one transaction are folded into one). */
static int add_many_pg_in(db_conn *c, void *ctx, err *e)
{
    add_many_args *m = ctx;
    const bus_job_opts *o = m->o;
    const char *id = o->job_id;
    bool fixed = o && o->backoff.delay_ms > 0 && o->backoff.type == BUS_BACKOFF_FIXED;
    int64_t backoff = o && o->backoff.delay_ms > 0 ? o->backoff.delay_ms : BUS_DEFAULT_BACKOFF_MS;
    int attempts = o && o->attempts > 0 ? o->attempts : BUS_DEFAULT_ATTEMPTS;
    int64_t run_at = m->now + (o && o->delay_ms > 0 ? o->delay_ms : 0);
    buf sql;
    buf_init(&sql, 0);
    buf_puts(&sql, "WITH ins AS (INSERT INTO bus_jobs (queue, id, name, data, state, priority,"
                   " order_key, run_at, max_attempts, backoff_type, backoff_delay, created_at)"
                   " VALUES ");
    for (size_t i = 0; i < m->n; i++)
        buf_printf(&sql, "%s($%zu, $1, $2, $3, 'waiting', $4, $%zu, $5, $6, $7, $8, $9)",
                   i ? ", " : "", 10 + 2 * i, 11 + 2 * i);
    buf_puts(&sql, " ON CONFLICT (queue, id) DO NOTHING RETURNING 1)"
                   " SELECT pg_notify('" BUS_CHANNEL "', '') FROM ins");
    int rc = 0;
    db_stmt *st = prep(c, e, buf_cstr(&sql), "tttiiitii", id, m->name, m->data,
                       (int64_t)(o ? o->priority : 0), run_at, (int64_t)attempts,
                       fixed ? "fixed" : "exponential", backoff, m->now);
    if (!st) {
        rc = db_err_code(e);
        goto out;
    }
    for (size_t i = 0; i < m->n; i++) {
        char order_key[UUID_STR_LEN];
        uuid_v7(order_key);
        db_bind_text(st, (int)(10 + 2 * i), m->queues[i]);
        db_bind_text(st, (int)(11 + 2 * i), order_key);
    }
    m->added = 0;
    while ((rc = db_step(st, e)) == DB_ROW)
        m->added++;
    rc = rc < 0 ? rc : 0;
    if (rc == 0 && m->added > 0)
        note_pending(m->s); /* wakes this process's workers at commit (the commit hook) */
out:
    db_finalize(st);
    buf_free(&sql);
    return rc;
}

int bus_store_add_many(bus_store *s, db_conn *tx, const char *const *queues, size_t n,
                       const char *name, const char *data, const bus_job_opts *o, int64_t now,
                       int *added, err *e)
{
    ERR_LOCAL(e);
    if (added)
        *added = 0;
    if (!queues || n < 1 || n > BUS_ADD_MANY_MAX)
        return err_set(e, F3_EINVAL, "add: 1..%d queues, got %zu", BUS_ADD_MANY_MAX, n);
    int rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = check_queue(queues[i], e)))
            return rc;
    if ((rc = check_add(name, data, o, e)))
        return rc;
    /* One job id for every queue, as a publish's eventId. */
    bus_job_opts with_id = o ? *o : (bus_job_opts){0};
    char gen_id[UUID_STR_LEN];
    if (!with_id.job_id) {
        uuid_v7(gen_id);
        with_id.job_id = gen_id;
    }
    add_many_args m = {s, queues, n, name, data, &with_id, now, 0};
    if (tx)
        rc = s->pg ? add_many_pg_in(tx, &m, e) : add_many_in(tx, &m, e);
    else if (s->pg)
        /* A transaction that NOTIFYs holds a database-wide lock through its commit, so
         * such commits do not share a WAL flush: concurrent publishers share one
         * transaction (one flush, one NOTIFY) instead; a lone publisher's statement is
         * autocommitted (one round trip). */
        rc = db_tx_group_stmt(s->d, add_many_pg_in, &m, e);
    else
        rc = db_tx_group(s->d, add_many_in, &m, e);
    if (rc == 0 && added)
        *added = m.added;
    return rc;
}

/* ---- claim ---------------------------------------------------------------------------- */

typedef struct claim_args {
    const char *queue, *token, *consumer;
    int max;
    int64_t lease_ms, now;
    job_list got;
} claim_args;

static int claim_jobs(bus_store *s, db_conn *c, void *ctx, err *e)
{
    claim_args *a = ctx;
    job_list_clear(&a->got); /* a retried transaction starts over */
    db_stmt *st = a->consumer ? prep(c, e, s->claim_sql[1], "titiit", a->queue, (int64_t)a->max,
                                     a->token, a->now + a->lease_ms, a->now, a->consumer)
                              : prep(c, e, s->claim_sql[0], "titii", a->queue, (int64_t)a->max,
                                     a->token, a->now + a->lease_ms, a->now);
    if (!st)
        return e->code ? e->code : F3_EIO;
    int rc = collect_jobs(st, a->now, &a->got, e);
    db_finalize(st);
    return rc;
}

/* Claim order: unprioritized before prioritized (BullMQ's wait list before its priority
 * set), then priority, run time and order of adding. RETURNING has no order. */
static int claim_cmp(const void *pa, const void *pb, void *ctx)
{
    const job_list *l = ctx;
    size_t ia = *(const size_t *)pa, ib = *(const size_t *)pb;
    const bus_job *a = l->jobs[ia], *b = l->jobs[ib];
    if ((a->priority > 0) != (b->priority > 0))
        return a->priority > 0 ? 1 : -1;
    if (a->priority != b->priority)
        return a->priority < b->priority ? -1 : 1;
    if (a->run_at != b->run_at)
        return a->run_at < b->run_at ? -1 : 1;
    return strcmp(l->keys[ia] ? l->keys[ia] : "", l->keys[ib] ? l->keys[ib] : "");
}

static int sort_claimed(job_list *l, err *e)
{
    if (l->n < 2)
        return 0;
    size_t *idx = malloc(l->n * sizeof *idx);
    bus_job **jobs = malloc(l->n * sizeof(bus_job *));
    char **keys = malloc(l->n * sizeof *keys);
    int rc = 0;
    if (!idx || !jobs || !keys) {
        rc = err_set(e, F3_ENOMEM, "out of memory sorting claimed jobs");
        goto out;
    }
    for (size_t i = 0; i < l->n; i++)
        idx[i] = i;
    qsort_r(idx, l->n, sizeof *idx, claim_cmp, l);
    for (size_t i = 0; i < l->n; i++) {
        jobs[i] = l->jobs[idx[i]];
        keys[i] = l->keys[idx[i]];
    }
    memcpy(l->jobs, jobs, l->n * sizeof(bus_job *));
    memcpy(l->keys, keys, l->n * sizeof *keys);
out:
    free(idx);
    free(jobs);
    free(keys);
    return rc;
}

static int check_claim(const char *queue, int max, const char *token, int64_t lease_ms, err *e)
{
    int rc = check_queue(queue, e);
    if (rc)
        return rc;
    if (max < 1 || max > BUS_CLAIM_MAX)
        return err_set(e, F3_EINVAL, "claim: max %d is out of range (1..%d)", max, BUS_CLAIM_MAX);
    if (!token || !*token)
        return err_set(e, F3_EINVAL, "claim: lock token is empty");
    if (lease_ms <= 0)
        return err_set(e, F3_EINVAL, "claim: lease must be > 0 ms");
    return 0;
}

/* Runs the claim in tx (or a transaction of its own) and hands out the sorted jobs. */
static int claim_into(bus_store *s, db_conn *tx, claim_args *a, bus_job ***out, size_t *n, err *e)
{
    remember_gen(s);
    int rc = in_tx(s, tx, claim_jobs, a, e);
    if (rc == 0)
        rc = sort_claimed(&a->got, e);
    if (rc) {
        job_list_clear(&a->got);
        return rc;
    }
    job_list_detach(&a->got, out, n);
    return 0;
}

int bus_store_claim(bus_store *s, const char *queue, int max, const char *token, int64_t lease_ms,
                    int64_t now, bus_job ***out, size_t *n, err *e)
{
    ERR_LOCAL(e);
    *out = NULL;
    *n = 0;
    int rc = check_claim(queue, max, token, lease_ms, e);
    if (rc)
        return rc;
    claim_args a = {queue, token, NULL, max, lease_ms, now, {0}};
    return claim_into(s, NULL, &a, out, n, e);
}

int bus_store_claim_tx(bus_store *s, db_conn *tx, const char *queue, int max, const char *token,
                       int64_t lease_ms, int64_t now, const char *inbox_consumer, bus_job ***out,
                       size_t *n, err *e)
{
    ERR_LOCAL(e);
    *out = NULL;
    *n = 0;
    int rc = check_claim(queue, max, token, lease_ms, e);
    if (rc)
        return rc;
    if (!tx || !db_in_transaction(tx))
        return err_set(e, F3_EINVAL, "claim: needs the caller's open transaction");
    if (inbox_consumer && !*inbox_consumer)
        return err_set(e, F3_EINVAL, "claim: inbox consumer name is empty");
    claim_args a = {queue, token, inbox_consumer, max, lease_ms, now, {0}};
    return claim_into(s, tx, &a, out, n, e);
}

/* ---- lease, complete, fail ------------------------------------------------------------ */

typedef struct held_args {
    const char *queue, *id, *token;
    const char *text; /* return value or failure reason */
    bus_fail_kind kind;
    int64_t lease_ms, now;
    bus_fail_result result;
} held_args;

static int extend_lease(bus_store *s, db_conn *c, void *ctx, err *e)
{
    (void)s;
    held_args *a = ctx;
    int64_t changes = 0;
    int rc = run(c, &changes, e,
                 "UPDATE bus_jobs SET lock_until = $4 WHERE queue = $1 AND id = $2"
                 " AND state = 'active' AND lock_token = $3",
                 "ttti", a->queue, a->id, a->token, a->now + a->lease_ms);
    if (rc == 0 && changes == 0)
        rc = err_set(e, F3_ENOTFOUND, "job %s of queue %s is no longer held with this lock", a->id,
                     a->queue);
    return rc;
}

int bus_store_extend(bus_store *s, const char *queue, const char *id, const char *token,
                     int64_t lease_ms, int64_t now, err *e)
{
    ERR_LOCAL(e);
    int rc;
    if ((rc = check_queue(queue, e)) || (rc = check_id(id, e)))
        return rc;
    if (!token || lease_ms <= 0)
        return err_set(e, F3_EINVAL, "extend: a lock token and a lease > 0 ms are needed");
    held_args a = {.queue = queue, .id = id, .token = token, .lease_ms = lease_ms, .now = now};
    return on_conn(s, NULL, extend_lease, &a, e);
}

/* run_at and order_key stay, so the job keeps its place in the queue. */
static int release_job(bus_store *s, db_conn *c, void *ctx, err *e)
{
    held_args *a = ctx;
    int64_t changes = 0;
    int rc = run(c, &changes, e,
                 "UPDATE bus_jobs SET state = 'waiting', lock_token = NULL, lock_until = NULL,"
                 " processed_at = NULL, attempts_started = attempts_started - 1"
                 " WHERE queue = $1 AND id = $2 AND state = 'active' AND lock_token = $3"
                 " AND attempts_started > 0",
                 "ttt", a->queue, a->id, a->token);
    if (rc == 0 && changes == 0)
        return err_set(e, F3_ENOTFOUND, "job %s of queue %s is no longer held with this lock",
                       a->id, a->queue);
    return rc ? rc : made_claimable(s, c, e);
}

int bus_store_release(bus_store *s, const char *queue, const char *id, const char *token, err *e)
{
    ERR_LOCAL(e);
    int rc;
    if ((rc = check_queue(queue, e)) || (rc = check_id(id, e)))
        return rc;
    if (!token)
        return err_set(e, F3_EINVAL, "release: a lock token is needed");
    held_args a = {.queue = queue, .id = id, .token = token};
    return in_tx(s, NULL, release_job, &a, e);
}

static int complete_job(bus_store *s, db_conn *c, void *ctx, err *e)
{
    (void)s;
    held_args *a = ctx;
    int64_t changes = 0;
    int rc = run(c, &changes, e,
                 "UPDATE bus_jobs SET state = 'completed', finished_at = $4,"
                 " attempts_made = attempts_made + 1, return_value = $5, lock_token = NULL,"
                 " lock_until = NULL WHERE queue = $1 AND id = $2 AND state = 'active'"
                 " AND lock_token = $3",
                 "tttit", a->queue, a->id, a->token, a->now, a->text);
    if (rc == 0 && changes == 0)
        rc = err_set(e, F3_ENOTFOUND, "job %s of queue %s is no longer held with this lock", a->id,
                     a->queue);
    return rc;
}

/* Trims now and then when the store owns the transaction; batched completions in a
 * caller's transaction leave it to the runtime's periodic bus_store_trim. */
static void maybe_trim(bus_store *s, const char *queue)
{
    if ((atomic_fetch_add(&s->finished, 1) + 1) % BUS_TRIM_EVERY != 0)
        return;
    err e;
    err_clear(&e);
    if (bus_store_trim(s, queue, &e))
        log_warn("queue retention trim failed", "queue", queue, "error", e.msg);
}

int bus_store_complete(bus_store *s, db_conn *tx, const char *queue, const char *id,
                       const char *token, const char *return_value, int64_t now, err *e)
{
    ERR_LOCAL(e);
    int rc;
    if ((rc = check_queue(queue, e)) || (rc = check_id(id, e)))
        return rc;
    if (!token)
        return err_set(e, F3_EINVAL, "complete: lock token is missing");
    if (return_value && (rc = check_json("return value", return_value, e)))
        return rc;
    held_args a = {.queue = queue, .id = id, .token = token, .text = return_value, .now = now};
    rc = on_conn(s, tx, complete_job, &a, e);
    if (rc == 0 && !tx)
        maybe_trim(s, queue);
    return rc;
}

/* Jobs per multi-row completion statement. Chunks are padded to a power of two (by
 * repeating the last job) so that only a handful of distinct SQL texts exist, and the
 * prepared-statement caches of both backends keep them all. */
#define COMPLETE_CHUNK 32

static size_t pad_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p *= 2;
    return p;
}

/* Records the handled events of items[0..n-1] (all with a consumer) in one INSERT. */
static int inbox_insert_many(db_conn *c, bus_completion **items, size_t n, int64_t now, err *e)
{
    size_t rows = pad_pow2(n);
    buf sql;
    buf_init(&sql, 0);
    buf_puts(&sql, "INSERT INTO bus_inbox (consumer, event_id, handled_at) VALUES ");
    for (size_t k = 0; k < rows; k++)
        buf_printf(&sql, "%s($%zu, $%zu, $1)", k ? ", " : "", 2 + 2 * k, 3 + 2 * k);
    buf_puts(&sql, " ON CONFLICT (consumer, event_id) DO NOTHING");
    db_stmt *st = db_prepare(c, buf_cstr(&sql), e);
    buf_free(&sql);
    if (!st)
        return db_err_code(e);
    db_bind_int64(st, 1, now);
    for (size_t k = 0; k < rows; k++) {
        const bus_completion *it = items[k < n ? k : n - 1];
        db_bind_text(st, (int)(2 + 2 * k), it->consumer);
        db_bind_text(st, (int)(3 + 2 * k), it->event_id ? it->event_id : it->id);
    }
    int rc = db_step(st, e);
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

/* Appends the UPDATE that completes `rows` active jobs of one queue, each held with its
 * token: finished_at is $at, the queue $queue, job k's id $(first + stride*k) and its token
 * the parameter after it. The redundant "id IN (...)" lets both backends find the rows
 * through the primary key; the row-value test then checks each job's own token. */
static void put_complete_update(buf *b, int at, int queue, size_t rows, size_t first, size_t stride)
{
    buf_printf(b,
               "UPDATE bus_jobs SET state = 'completed', finished_at = $%d,"
               " attempts_made = attempts_made + 1, return_value = NULL, lock_token = NULL,"
               " lock_until = NULL WHERE queue = $%d AND state = 'active' AND id IN (",
               at, queue);
    for (size_t k = 0; k < rows; k++)
        buf_printf(b, "%s$%zu", k ? ", " : "", first + stride * k);
    buf_puts(b, ") AND (id, lock_token) IN (VALUES ");
    for (size_t k = 0; k < rows; k++)
        buf_printf(b, "%s($%zu, $%zu)", k ? ", " : "", first + stride * k, first + stride * k + 1);
    buf_puts(b, ") RETURNING id");
}

/* Completes items[0..n-1] (one queue, distinct ids, no return values) in one UPDATE; the
 * ids it returns were held with their tokens, the others are gone. */
static int complete_chunk(db_conn *c, bus_completion **items, size_t n, int64_t now, err *e)
{
    size_t rows = pad_pow2(n);
    buf sql;
    buf_init(&sql, 0);
    put_complete_update(&sql, 1, 2, rows, 3, 2);
    db_stmt *st = db_prepare(c, buf_cstr(&sql), e);
    buf_free(&sql);
    if (!st)
        return db_err_code(e);
    db_bind_int64(st, 1, now);
    db_bind_text(st, 2, items[0]->queue);
    for (size_t k = 0; k < rows; k++) {
        const bus_completion *it = items[k < n ? k : n - 1];
        db_bind_text(st, (int)(3 + 2 * k), it->id);
        db_bind_text(st, (int)(4 + 2 * k), it->token);
    }
    for (size_t k = 0; k < n; k++)
        items[k]->gone = true;
    int rc;
    while ((rc = db_step(st, e)) == DB_ROW) {
        const char *id = db_col_text(st, 0);
        for (size_t k = 0; id && k < n; k++)
            if (strcmp(items[k]->id, id) == 0)
                items[k]->gone = false;
    }
    db_finalize(st);
    if (rc < 0)
        return rc;
    size_t m = 0; /* the completed ones with an inbox, moved to the front */
    for (size_t k = 0; k < n; k++)
        if (!items[k]->gone && items[k]->consumer) {
            bus_completion *t = items[m];
            items[m++] = items[k];
            items[k] = t;
        }
    return m ? inbox_insert_many(c, items, m, now, e) : 0;
}

/* One completion on its own (a return value, or an id twice in the batch). */
static int complete_single(bus_store *s, db_conn *c, bus_completion *it, int64_t now, err *e)
{
    held_args a = {
        .queue = it->queue, .id = it->id, .token = it->token, .text = it->return_value, .now = now};
    int rc = complete_job(s, c, &a, e);
    it->gone = rc == F3_ENOTFOUND;
    if (it->gone) {
        err_clear(e);
        return 0;
    }
    if (rc == 0 && it->consumer)
        rc = inbox_insert_many(c, &it, 1, now, e);
    return rc;
}

/* True if another item than k has k's queue and id. */
static bool id_repeats(const bus_completion *items, size_t n, size_t k)
{
    for (size_t i = 0; i < n; i++)
        if (i != k && strcmp(items[i].id, items[k].id) == 0 &&
            strcmp(items[i].queue, items[k].queue) == 0)
            return true;
    return false;
}

static int check_completions(const bus_completion *items, size_t n, err *e)
{
    for (size_t k = 0; k < n; k++) {
        int rc;
        if ((rc = check_queue(items[k].queue, e)) || (rc = check_id(items[k].id, e)))
            return rc;
        if (!items[k].token)
            return err_set(e, F3_EINVAL, "complete: lock token is missing");
        if (items[k].return_value && (rc = check_json("return value", items[k].return_value, e)))
            return rc;
    }
    return 0;
}

static int complete_many(bus_store *s, db_conn *tx, bus_completion *items, size_t n, int64_t now,
                         err *e);

int bus_store_complete_many(bus_store *s, db_conn *tx, bus_completion *items, size_t n, int64_t now,
                            err *e)
{
    ERR_LOCAL(e);
    if (!tx || !db_in_transaction(tx))
        return err_set(e, F3_EINVAL, "complete: needs the caller's open transaction");
    int rc = check_completions(items, n, e);
    if (rc)
        return rc;
    return complete_many(s, tx, items, n, now, e);
}

/* bus_store_complete_many without the checks. */
static int complete_many(bus_store *s, db_conn *tx, bus_completion *items, size_t n, int64_t now,
                         err *e)
{
    bool *done = calloc(n ? n : 1, sizeof *done);
    if (!done)
        return err_set(e, F3_ENOMEM, "out of memory completing jobs");
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < n; k++)
        if (items[k].return_value || id_repeats(items, n, k)) {
            done[k] = true;
            rc = complete_single(s, tx, &items[k], now, e);
        }
    bus_completion *chunk[COMPLETE_CHUNK];
    for (size_t k = 0; rc == 0 && k < n; k++) {
        if (done[k])
            continue;
        size_t m = 0;
        for (size_t i = k; i < n && m < COMPLETE_CHUNK; i++)
            if (!done[i] && strcmp(items[i].queue, items[k].queue) == 0) {
                done[i] = true;
                chunk[m++] = &items[i];
            }
        rc = complete_chunk(tx, chunk, m, now, e);
    }
    free(done);
    return rc;
}

/* ---- complete and claim ---------------------------------------------------------------- */

typedef struct cc_args {
    bus_completion *done;
    size_t ndone;
    claim_args claim;
} cc_args;

/* The transaction of bus_store_complete_and_claim where one statement will not do. */
static int cc_body(bus_store *s, db_conn *c, void *ctx, err *e)
{
    cc_args *a = ctx;
    int rc = a->ndone ? complete_many(s, c, a->done, a->ndone, a->claim.now, e) : 0;
    return rc ? rc : claim_jobs(s, c, &a->claim, e);
}

typedef struct cc_group {
    bus_store *s;
    cc_args *a;
} cc_group;

static int cc_group_body(db_conn *c, void *ctx, err *e)
{
    cc_group *g = ctx;
    return cc_body(g->s, c, g->a, e);
}

/* True when the PostgreSQL one-statement form applies: one queue, few enough completions,
 * no return values, each id once. */
static bool cc_simple(const bus_completion *done, size_t n)
{
    if (n > COMPLETE_CHUNK)
        return false;
    for (size_t k = 0; k < n; k++)
        if (done[k].return_value || strcmp(done[k].queue, done[0].queue) != 0 ||
            id_repeats(done, n, k))
            return false;
    return true;
}

/* The one statement: completions (done), their inbox entries (ins), the claim (claimed),
 * answering with the claimed jobs and the ids completed. Every part of a statement sees
 * the same snapshot; that is safe here, as the jobs completed are active and the claim
 * takes waiting ones, and a claimed job's id cannot be an id completed in this queue. */
static char *cc_sql(const bus_store *s, size_t rows, bool inbox)
{
    buf b;
    buf_init(&b, 0);
    buf_puts(&b, "WITH done AS (");
    put_complete_update(&b, 5, 7, rows, 8, 4);
    buf_puts(&b, "), ins AS (INSERT INTO bus_inbox (consumer, event_id, handled_at)"
                 " SELECT v.c, v.e, CAST($5 AS BIGINT) FROM (VALUES ");
    for (size_t k = 0; k < rows; k++)
        buf_printf(&b, "%s($%zu, $%zu, $%zu)", k ? ", " : "", 10 + 4 * k, 11 + 4 * k, 8 + 4 * k);
    buf_printf(&b,
               ") AS v (c, e, id) WHERE v.c IS NOT NULL AND v.id IN (SELECT id FROM done)"
               " ON CONFLICT (consumer, event_id) DO NOTHING),"
               " picked AS MATERIALIZED (SELECT id FROM bus_jobs"
               " WHERE queue = $1 AND state = 'waiting' AND run_at <= $5"
               " AND NOT EXISTS (SELECT 1 FROM bus_queues WHERE name = $1 AND paused)"
               " ORDER BY priority, run_at, order_key LIMIT $2%s),"
               " claimed AS (UPDATE bus_jobs SET state = 'active', lock_token = $3,"
               " lock_until = $4, processed_at = $5, attempts_started = attempts_started + 1"
               " WHERE queue = $1 AND id IN (SELECT id FROM picked) RETURNING " JOB_COLS
               ", %s AS inbox)"
               " SELECT claimed.*, 'claimed' FROM claimed UNION ALL SELECT NULL, id",
               db_sql_skip_locked(s->d),
               inbox ? "EXISTS (SELECT 1 FROM bus_inbox WHERE consumer = $6"
                       " AND event_id = bus_jobs.id)"
                     : "(FALSE AND CAST($6 AS TEXT) = '')"); /* $6 unused, but typed */
    for (int k = 2; k <= JOB_COL_INBOX; k++)
        buf_puts(&b, ", NULL");
    buf_puts(&b, ", 'done' FROM done");
    return buf_detach(&b);
}

/* PostgreSQL: completions and claim in one autocommitted statement. */
static int cc_pg_one(bus_store *s, db_conn *c, void *ctx, err *e)
{
    cc_args *a = ctx;
    claim_args *cl = &a->claim;
    size_t rows = a->ndone ? pad_pow2(a->ndone) : 0;
    char *sql = cc_sql(s, rows, cl->consumer != NULL);
    if (!sql)
        return err_set(e, F3_ENOMEM, "out of memory building a claim");
    db_stmt *st =
        prep(c, e, sql, "titiitt", cl->queue, (int64_t)cl->max, cl->token, cl->now + cl->lease_ms,
             cl->now, cl->consumer ? cl->consumer : "", a->done[0].queue);
    free(sql);
    if (!st)
        return db_err_code(e);
    for (size_t k = 0; k < rows; k++) {
        const bus_completion *it = &a->done[k < a->ndone ? k : a->ndone - 1];
        db_bind_text(st, (int)(8 + 4 * k), it->id);
        db_bind_text(st, (int)(9 + 4 * k), it->token);
        db_bind_text(st, (int)(10 + 4 * k), it->consumer);
        db_bind_text(st, (int)(11 + 4 * k), it->event_id ? it->event_id : it->id);
    }
    for (size_t k = 0; k < a->ndone; k++)
        a->done[k].gone = true;
    job_list_clear(&cl->got);
    int rc;
    while ((rc = db_step(st, e)) == DB_ROW) {
        const char *kind = db_col_text(st, JOB_COL_INBOX + 1);
        if (kind && strcmp(kind, "done") == 0) {
            const char *id = db_col_text(st, 1);
            for (size_t k = 0; id && k < a->ndone; k++)
                if (strcmp(a->done[k].id, id) == 0)
                    a->done[k].gone = false;
            continue;
        }
        bus_job *j = read_job(st, cl->now);
        const char *k = db_col_text(st, JOB_COL_ORDER_KEY);
        char *key = k ? strdup(k) : NULL;
        if (j && cl->consumer) {
            j->inbox_checked = true;
            j->inbox_seen = db_col_bool(st, JOB_COL_INBOX);
        }
        if (!j || (k && !key) || job_list_push(&cl->got, j, key)) {
            bus_job_free(j);
            free(key);
            rc = err_set(e, F3_ENOMEM, "out of memory reading jobs");
            break;
        }
    }
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

/* PostgreSQL, nothing to complete: the claim alone, autocommitted. */
static int cc_pg_claim(bus_store *s, db_conn *c, void *ctx, err *e)
{
    cc_args *a = ctx;
    return claim_jobs(s, c, &a->claim, e);
}

int bus_store_complete_and_claim(bus_store *s, bus_completion *done, size_t ndone,
                                 const char *queue, int max, const char *token, int64_t lease_ms,
                                 int64_t now, const char *inbox_consumer, bus_job ***out, size_t *n,
                                 err *e)
{
    ERR_LOCAL(e);
    *out = NULL;
    *n = 0;
    int rc = check_claim(queue, max, token, lease_ms, e);
    if (rc == 0 && inbox_consumer && !*inbox_consumer)
        rc = err_set(e, F3_EINVAL, "claim: inbox consumer name is empty");
    if (rc || (rc = check_completions(done, ndone, e)))
        return rc;
    cc_args a = {done, ndone, {queue, token, inbox_consumer, max, lease_ms, now, {0}}};
    remember_gen(s);
    if (!s->pg) {
        cc_group g = {s, &a};
        rc = db_tx_group(s->d, cc_group_body, &g, e);
    } else if (ndone == 0) {
        rc = on_conn(s, NULL, cc_pg_claim, &a, e);
    } else if (cc_simple(done, ndone)) {
        rc = on_conn(s, NULL, cc_pg_one, &a, e);
    } else {
        rc = in_tx(s, NULL, cc_body, &a, e);
    }
    if (rc == 0)
        rc = sort_claimed(&a.claim.got, e);
    if (rc) {
        job_list_clear(&a.claim.got);
        return rc;
    }
    job_list_detach(&a.claim.got, out, n);
    return 0;
}

/* errors (a JSON array; anything else starts a new one) plus one entry (reason: valid
 * UTF-8); caller frees. */
static char *append_error(const char *errors, int attempt, int64_t at, const char *reason)
{
    json_t *arr = NULL;
    if (errors) {
        err ignored;
        if (json_parse(errors, strlen(errors), &arr, &ignored) == 0 && !json_is_array(arr)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    if (!arr)
        arr = json_array();
    char *out = NULL;
    json_t *entry =
        json_pack("{s:i, s:I, s:s}", "attempt", attempt, "at", (json_int_t)at, "error", reason);
    if (arr && entry && json_array_append_new(arr, entry) == 0) {
        entry = NULL;
        buf b;
        buf_init(&b, 0);
        if (json_dump_buf(arr, &b) == 0)
            out = buf_detach(&b);
        buf_free(&b);
    }
    json_decref(entry);
    json_decref(arr);
    return out;
}

static int fail_job(bus_store *s, db_conn *c, void *ctx, err *e)
{
    (void)s;
    held_args *a = ctx;
    db_stmt *st = prep(c, e,
                       "SELECT attempts_made, max_attempts, backoff_type, backoff_delay, errors"
                       " FROM bus_jobs WHERE queue = $1 AND id = $2 AND state = 'active'"
                       " AND lock_token = $3",
                       "ttt", a->queue, a->id, a->token);
    if (!st)
        return e->code ? e->code : F3_EIO;
    int rc = db_step(st, e);
    if (rc != DB_ROW) {
        db_finalize(st);
        if (rc < 0)
            return rc;
        return err_set(e, F3_ENOTFOUND, "job %s of queue %s is no longer held with this lock",
                       a->id, a->queue);
    }
    int made = (int)db_col_int64(st, 0) + 1;
    int max_attempts = (int)db_col_int64(st, 1);
    const char *bt = db_col_text(st, 2);
    bus_backoff b = {bt && strcmp(bt, "fixed") == 0 ? BUS_BACKOFF_FIXED : BUS_BACKOFF_EXPONENTIAL,
                     db_col_int64(st, 3)};
    /* A handler's error may quote anything (a provider's reply): kept as valid UTF-8, cut
     * at a character boundary, so it can be stored as text and in the JSON errors. */
    char reason[BUS_REASON_MAX + 1];
    str_utf8_copy(reason, sizeof reason, a->text);
    char *errors = append_error(db_col_text(st, 4), made, a->now, reason);
    db_finalize(st);
    if (!errors)
        return err_set(e, F3_ENOMEM, "out of memory recording a failure");
    bool retry = a->kind == BUS_FAIL_RETRY && made < max_attempts;
    int64_t changes = 0;
    if (retry) {
        char order_key[UUID_STR_LEN];
        uuid_v7(order_key); /* a retry joins the back of the queue, as BullMQ's LPUSH */
        rc = run(c, &changes, e,
                 "UPDATE bus_jobs SET state = 'waiting', attempts_made = $4, run_at = $5,"
                 " order_key = $6, failed_reason = $7, errors = $8, lock_token = NULL,"
                 " lock_until = NULL WHERE queue = $1 AND id = $2 AND state = 'active'"
                 " AND lock_token = $3",
                 "tttiittt", a->queue, a->id, a->token, (int64_t)made,
                 a->now + bus_backoff_delay(&b, made), order_key, reason, errors);
    } else {
        rc = run(c, &changes, e,
                 "UPDATE bus_jobs SET state = 'failed', attempts_made = $4, finished_at = $5,"
                 " failed_reason = $6, errors = $7, lock_token = NULL, lock_until = NULL"
                 " WHERE queue = $1 AND id = $2 AND state = 'active' AND lock_token = $3",
                 "tttiitt", a->queue, a->id, a->token, (int64_t)made, a->now, reason, errors);
    }
    free(errors);
    if (rc == 0 && changes == 0)
        rc = err_set(e, F3_ENOTFOUND, "job %s of queue %s is no longer held with this lock", a->id,
                     a->queue);
    a->result = retry ? BUS_RETRY_SCHEDULED : BUS_DEAD_LETTERED;
    return rc;
}

int bus_store_fail(bus_store *s, db_conn *tx, const char *queue, const char *id, const char *token,
                   const char *reason, bus_fail_kind kind, int64_t now, bus_fail_result *result,
                   err *e)
{
    ERR_LOCAL(e);
    int rc;
    if ((rc = check_queue(queue, e)) || (rc = check_id(id, e)))
        return rc;
    if (!token)
        return err_set(e, F3_EINVAL, "fail: lock token is missing");
    held_args a = {.queue = queue,
                   .id = id,
                   .token = token,
                   .text = reason && *reason ? reason : "unknown error",
                   .kind = kind,
                   .now = now};
    rc = in_tx(s, tx, fail_job, &a, e);
    if (rc == 0 && result)
        *result = a.result;
    if (rc == 0 && !tx && a.result == BUS_DEAD_LETTERED)
        maybe_trim(s, queue);
    return rc;
}

/* ---- stalled jobs --------------------------------------------------------------------- */

typedef struct stalled_args {
    int64_t now;
    int recovered, failed;
    int batch; /* rows seen in this batch */
} stalled_args;

typedef struct stalled_row {
    char *queue, *id, *token, *errors;
    int stalled, made, max_stalled;
} stalled_row;

static void stalled_rows_free(stalled_row *rows, int n)
{
    for (int i = 0; i < n; i++) {
        free(rows[i].queue);
        free(rows[i].id);
        free(rows[i].token);
        free(rows[i].errors);
    }
    free(rows);
}

static int recover_row(bus_store *s, db_conn *c, const stalled_row *r, stalled_args *a, err *e)
{
    int stalled = r->stalled + 1;
    int max = r->max_stalled > 0 ? r->max_stalled : BUS_DEFAULT_MAX_STALLED;
    int64_t changes = 0;
    int rc;
    if (stalled > max) {
        char *errors = append_error(r->errors, r->made + 1, a->now, BUS_STALLED_REASON);
        if (!errors)
            return err_set(e, F3_ENOMEM, "out of memory recording a stalled job");
        rc = run(c, &changes, e,
                 "UPDATE bus_jobs SET state = 'failed', stalled_count = $4,"
                 " attempts_made = attempts_made + 1, finished_at = $5, failed_reason = $6,"
                 " errors = $7, lock_token = NULL, lock_until = NULL"
                 " WHERE queue = $1 AND id = $2 AND state = 'active' AND lock_token = $3"
                 " AND lock_until < $5",
                 "tttiitt", r->queue, r->id, r->token, (int64_t)stalled, a->now, BUS_STALLED_REASON,
                 errors);
        free(errors);
        if (rc == 0 && changes > 0) {
            a->failed++;
            log_warn("job failed: stalled too often", "queue", r->queue, "jobId", r->id);
        }
        return rc;
    }
    /* run_at and order_key stay, so the job runs next, as BullMQ's RPUSH to wait. */
    rc = run(c, &changes, e,
             "UPDATE bus_jobs SET state = 'waiting', stalled_count = $4, lock_token = NULL,"
             " lock_until = NULL WHERE queue = $1 AND id = $2 AND state = 'active'"
             " AND lock_token = $3 AND lock_until < $5",
             "tttii", r->queue, r->id, r->token, (int64_t)stalled, a->now);
    if (rc == 0 && changes > 0) {
        a->recovered++;
        log_warn("stalled job returned to its queue", "queue", r->queue, "jobId", r->id);
        rc = made_claimable(s, c, e);
    }
    return rc;
}

static int recover_batch(bus_store *s, db_conn *c, void *ctx, err *e)
{
    stalled_args *a = ctx;
    a->batch = 0;
    int rec = a->recovered, fld = a->failed; /* restored if the transaction is retried */
    stalled_row *rows = calloc(BUS_STALLED_BATCH, sizeof *rows);
    if (!rows)
        return err_set(e, F3_ENOMEM, "out of memory scanning for stalled jobs");
    db_stmt *st = prep(c, e, s->stalled_sql, "ii", a->now, (int64_t)BUS_STALLED_BATCH);
    int rc = st ? 0 : (e->code ? e->code : F3_EIO);
    int n = 0;
    while (rc == 0 && (rc = db_step(st, e)) == DB_ROW) {
        stalled_row *r = &rows[n++];
        bool oom = false;
        r->queue = dup_col(st, 0, &oom);
        r->id = dup_col(st, 1, &oom);
        r->token = dup_col(st, 2, &oom);
        r->stalled = (int)db_col_int64(st, 3);
        r->made = (int)db_col_int64(st, 4);
        r->errors = dup_col(st, 5, &oom);
        r->max_stalled = (int)db_col_int64(st, 6);
        if (oom || !r->queue || !r->id || !r->token)
            rc = err_set(e, F3_ENOMEM, "out of memory scanning for stalled jobs");
        if (n == BUS_STALLED_BATCH)
            break;
    }
    if (rc == DB_DONE || rc == DB_ROW)
        rc = 0;
    db_finalize(st);
    for (int i = 0; rc == 0 && i < n; i++)
        rc = recover_row(s, c, &rows[i], a, e);
    stalled_rows_free(rows, n);
    a->batch = n;
    if (rc) {
        a->recovered = rec;
        a->failed = fld;
    }
    return rc;
}

int bus_store_recover_stalled(bus_store *s, int64_t now, int *recovered, int *failed, err *e)
{
    ERR_LOCAL(e);
    stalled_args a = {.now = now};
    int rc = 0;
    do {
        int rec = a.recovered, fld = a.failed;
        rc = in_tx(s, NULL, recover_batch, &a, e);
        if (rc) {
            a.recovered = rec;
            a.failed = fld;
        }
    } while (rc == 0 && a.batch == BUS_STALLED_BATCH);
    if (recovered)
        *recovered = a.recovered;
    if (failed)
        *failed = a.failed;
    return rc;
}

/* ---- queue settings and retention ----------------------------------------------------- */

/* The effective settings of a queue (defaults where unset); *paused may be NULL. */
static int read_settings(db_conn *c, const char *queue, bus_queue_settings *out, bool *paused,
                         err *e)
{
    *out = (bus_queue_settings){BUS_DEFAULT_KEEP_COMPLETED, BUS_DEFAULT_KEEP_FAILED,
                                BUS_DEFAULT_MAX_STALLED};
    if (paused)
        *paused = false;
    db_stmt *st = prep(c, e,
                       "SELECT paused, keep_completed, keep_failed, max_stalled FROM bus_queues"
                       " WHERE name = $1",
                       "t", queue);
    if (!st)
        return e->code ? e->code : F3_EIO;
    int rc = db_step(st, e);
    if (rc == DB_ROW) {
        if (paused)
            *paused = db_col_bool(st, 0);
        if (db_col_int64(st, 1) > 0)
            out->keep_completed = (int)db_col_int64(st, 1);
        if (db_col_int64(st, 2) > 0)
            out->keep_failed = (int)db_col_int64(st, 2);
        if (db_col_int64(st, 3) > 0)
            out->max_stalled = (int)db_col_int64(st, 3);
    }
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

typedef struct trim_args {
    const char *queue;
    int64_t deleted;
} trim_args;

/* The state is spelled out in the SQL (not a parameter) so that the partial index of
 * that state serves the query. */
static int trim_state(db_conn *c, const char *queue, bool failed, int keep, int64_t *n, err *e)
{
    const char *sql = failed
                          ? "DELETE FROM bus_jobs WHERE queue = $1 AND state = 'failed' AND id IN"
                            " (SELECT id FROM bus_jobs WHERE queue = $1 AND state = 'failed'"
                            " ORDER BY finished_at DESC, id DESC LIMIT $2 OFFSET $3)"
                          : "DELETE FROM bus_jobs WHERE queue = $1 AND state = 'completed'"
                            " AND id IN (SELECT id FROM bus_jobs WHERE queue = $1"
                            " AND state = 'completed'"
                            " ORDER BY finished_at DESC, id DESC LIMIT $2 OFFSET $3)";
    for (;;) {
        int64_t changes = 0;
        int rc = run(c, &changes, e, sql, "tii", queue, (int64_t)BUS_TRIM_BATCH, (int64_t)keep);
        if (rc)
            return rc;
        *n += changes;
        if (changes < BUS_TRIM_BATCH)
            return 0;
    }
}

static int trim_queue(bus_store *s, db_conn *c, void *ctx, err *e)
{
    (void)s;
    trim_args *a = ctx;
    a->deleted = 0;
    bus_queue_settings set;
    int rc = read_settings(c, a->queue, &set, NULL, e);
    if (rc == 0)
        rc = trim_state(c, a->queue, false, set.keep_completed, &a->deleted, e);
    if (rc == 0)
        rc = trim_state(c, a->queue, true, set.keep_failed, &a->deleted, e);
    return rc;
}

int bus_store_trim(bus_store *s, const char *queue, err *e)
{
    ERR_LOCAL(e);
    int rc = check_queue(queue, e);
    if (rc)
        return rc;
    trim_args a = {queue, 0};
    return in_tx(s, NULL, trim_queue, &a, e);
}

int bus_store_settings_get(bus_store *s, const char *queue, bus_queue_settings *out, err *e)
{
    ERR_LOCAL(e);
    int rc = check_queue(queue, e);
    if (rc)
        return rc;
    db_conn *c = db_acquire(s->d, e);
    if (!c)
        return e->code ? e->code : F3_EIO;
    rc = read_settings(c, queue, out, NULL, e);
    db_release(c);
    return rc;
}

typedef struct queue_args {
    const char *queue;
    const char *id;
    const bus_queue_settings *set;
    bool paused;
    bus_state state;
    int64_t a, b, now; /* per use: offset/limit, older_than/limit */
    int64_t count;
    job_list got;
    bus_counts counts;
} queue_args;

static int write_settings(bus_store *s, db_conn *c, void *ctx, err *e)
{
    (void)s;
    queue_args *a = ctx;
    return run(c, NULL, e,
               "INSERT INTO bus_queues (name, keep_completed, keep_failed, max_stalled)"
               " VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET"
               " keep_completed = excluded.keep_completed, keep_failed = excluded.keep_failed,"
               " max_stalled = excluded.max_stalled",
               "tiii", a->queue, (int64_t)a->set->keep_completed, (int64_t)a->set->keep_failed,
               (int64_t)a->set->max_stalled);
}

int bus_store_settings(bus_store *s, const char *queue, const bus_queue_settings *set, err *e)
{
    ERR_LOCAL(e);
    int rc = check_queue(queue, e);
    if (rc)
        return rc;
    if (!set || set->keep_completed < 0 || set->keep_failed < 0 || set->max_stalled < 0)
        return err_set(e, F3_EINVAL, "queue settings must be >= 0 (0 = default)");
    queue_args a = {.queue = queue, .set = set};
    return on_conn(s, NULL, write_settings, &a, e);
}

static int write_paused(bus_store *s, db_conn *c, void *ctx, err *e)
{
    queue_args *a = ctx;
    int rc = run(c, NULL, e,
                 "INSERT INTO bus_queues (name, paused) VALUES ($1, $2)"
                 " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
                 "tb", a->queue, (int)a->paused);
    return rc == 0 && !a->paused ? made_claimable(s, c, e) : rc;
}

int bus_store_pause(bus_store *s, const char *queue, bool paused, err *e)
{
    ERR_LOCAL(e);
    int rc = check_queue(queue, e);
    if (rc)
        return rc;
    queue_args a = {.queue = queue, .paused = paused};
    return in_tx(s, NULL, write_paused, &a, e);
}

/* ---- operations ----------------------------------------------------------------------- */

int bus_store_queue_names(bus_store *s, char ***names, size_t *n, err *e)
{
    ERR_LOCAL(e);
    *names = NULL;
    *n = 0;
    db_conn *c = db_acquire(s->d, e);
    if (!c)
        return e->code ? e->code : F3_EIO;
    /* Distinct queues of bus_jobs by hopping through the primary key index (one probe per
     * queue instead of a scan of every job), plus queues known only by settings or
     * repeatables. */
    db_stmt *st = prep(c, e,
                       "WITH RECURSIVE q(name) AS ("
                       " SELECT MIN(queue) FROM bus_jobs"
                       " UNION ALL"
                       " SELECT (SELECT MIN(queue) FROM bus_jobs WHERE queue > q.name)"
                       " FROM q WHERE q.name IS NOT NULL)"
                       " SELECT name FROM q WHERE name IS NOT NULL"
                       " UNION SELECT name FROM bus_queues"
                       " UNION SELECT queue FROM bus_repeatables ORDER BY 1",
                       "");
    int rc = st ? 0 : (e->code ? e->code : F3_EIO);
    size_t cap = 0;
    char **v = NULL;
    while (rc == 0 && (rc = db_step(st, e)) == DB_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                rc = err_set(e, F3_ENOMEM, "out of memory listing queues");
                break;
            }
            v = nv;
            cap = ncap;
        }
        if (!(v[*n] = strdup(db_col_text(st, 0) ? db_col_text(st, 0) : ""))) {
            rc = err_set(e, F3_ENOMEM, "out of memory listing queues");
            break;
        }
        (*n)++;
        rc = 0;
    }
    if (rc == DB_DONE)
        rc = 0;
    db_finalize(st);
    db_release(c);
    if (rc) {
        bus_names_free(v, *n);
        *n = 0;
        return rc;
    }
    *names = v;
    return 0;
}

static int count_jobs(bus_store *s, db_conn *c, void *ctx, err *e)
{
    (void)s;
    queue_args *a = ctx;
    memset(&a->counts, 0, sizeof a->counts);
    bus_queue_settings set;
    int rc = read_settings(c, a->queue, &set, &a->counts.paused, e);
    if (rc)
        return rc;
    db_stmt *st = prep(c, e,
                       /* One SELECT per state, so each counts from its partial index. */
                       "SELECT CASE WHEN run_at > $2 THEN 'delayed' WHEN priority > 0"
                       " THEN 'prioritized' ELSE 'waiting' END, COUNT(*) FROM bus_jobs"
                       " WHERE queue = $1 AND state = 'waiting' GROUP BY 1"
                       " UNION ALL SELECT 'active', COUNT(*) FROM bus_jobs"
                       " WHERE queue = $1 AND state = 'active'"
                       " UNION ALL SELECT 'completed', COUNT(*) FROM bus_jobs"
                       " WHERE queue = $1 AND state = 'completed'"
                       " UNION ALL SELECT 'failed', COUNT(*) FROM bus_jobs"
                       " WHERE queue = $1 AND state = 'failed'",
                       "ti", a->queue, a->now);
    if (!st)
        return e->code ? e->code : F3_EIO;
    while ((rc = db_step(st, e)) == DB_ROW) {
        int i = bus_state_parse(db_col_text(st, 0));
        if (i >= 0)
            a->counts.n[i] = db_col_int64(st, 1);
    }
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

int bus_store_counts(bus_store *s, const char *queue, int64_t now, bus_counts *out, err *e)
{
    ERR_LOCAL(e);
    memset(out, 0, sizeof *out);
    int rc = check_queue(queue, e);
    if (rc)
        return rc;
    queue_args a = {.queue = queue, .now = now};
    rc = on_conn(s, NULL, count_jobs, &a, e);
    if (rc == 0)
        *out = a.counts;
    return rc;
}

/* WHERE clause and ORDER BY per derived state ($2 = now). */
static const struct {
    const char *where, *order;
} state_sql[BUS_STATE_COUNT] = {
    [BUS_STATE_WAITING] = {"state = 'waiting' AND priority = 0 AND run_at <= $2",
                           "run_at, order_key"},
    [BUS_STATE_PRIORITIZED] = {"state = 'waiting' AND priority > 0 AND run_at <= $2",
                               "priority, run_at, order_key"},
    [BUS_STATE_DELAYED] = {"state = 'waiting' AND run_at > $2", "run_at, order_key"},
    [BUS_STATE_ACTIVE] = {"state = 'active'", "processed_at, order_key"},
    [BUS_STATE_COMPLETED] = {"state = 'completed'", "finished_at DESC, id DESC"},
    [BUS_STATE_FAILED] = {"state = 'failed'", "finished_at DESC, id DESC"},
};

static int list_jobs(bus_store *s, db_conn *c, void *ctx, err *e)
{
    (void)s;
    queue_args *a = ctx;
    job_list_clear(&a->got);
    buf sql;
    buf_init(&sql, 0);
    buf_printf(&sql,
               "SELECT " JOB_COLS " FROM bus_jobs WHERE queue = $1 AND %s ORDER BY %s"
               " LIMIT $3 OFFSET $4",
               state_sql[a->state].where, state_sql[a->state].order);
    db_stmt *st = prep(c, e, buf_cstr(&sql), "tiii", a->queue, a->now, a->b, a->a);
    buf_free(&sql);
    if (!st)
        return e->code ? e->code : F3_EIO;
    int rc = collect_jobs(st, a->now, &a->got, e);
    db_finalize(st);
    return rc;
}

int bus_store_list(bus_store *s, const char *queue, bus_state state, int64_t offset, int64_t limit,
                   int64_t now, bus_job ***out, size_t *n, err *e)
{
    ERR_LOCAL(e);
    *out = NULL;
    *n = 0;
    int rc = check_queue(queue, e);
    if (rc)
        return rc;
    if ((int)state < 0 || state >= BUS_STATE_COUNT)
        return err_set(e, F3_EINVAL, "unknown job state %d", (int)state);
    if (offset < 0 || limit < 0)
        return err_set(e, F3_EINVAL, "offset and limit must be >= 0");
    queue_args a = {.queue = queue, .state = state, .a = offset, .b = limit, .now = now};
    rc = on_conn(s, NULL, list_jobs, &a, e);
    if (rc) {
        job_list_clear(&a.got);
        return rc;
    }
    job_list_detach(&a.got, out, n);
    return 0;
}

static int get_job(bus_store *s, db_conn *c, void *ctx, err *e)
{
    (void)s;
    queue_args *a = ctx;
    job_list_clear(&a->got);
    db_stmt *st = prep(c, e, "SELECT " JOB_COLS " FROM bus_jobs WHERE queue = $1 AND id = $2", "tt",
                       a->queue, a->id);
    if (!st)
        return e->code ? e->code : F3_EIO;
    int rc = collect_jobs(st, a->now, &a->got, e);
    db_finalize(st);
    if (rc == 0 && a->got.n == 0)
        rc = err_set(e, F3_ENOTFOUND, "job %s not found in queue %s", a->id, a->queue);
    return rc;
}

int bus_store_get(bus_store *s, const char *queue, const char *id, int64_t now, bus_job **out,
                  err *e)
{
    ERR_LOCAL(e);
    *out = NULL;
    int rc;
    if ((rc = check_queue(queue, e)) || (rc = check_id(id, e)))
        return rc;
    queue_args a = {.queue = queue, .id = id, .now = now};
    rc = on_conn(s, NULL, get_job, &a, e);
    if (rc == 0) {
        *out = a.got.jobs[0];
        a.got.jobs[0] = NULL;
        a.got.n = 1;
    }
    job_list_clear(&a.got);
    return rc;
}

/* The state of a job, for explaining why an operation did not apply; -1 if absent. */
static int job_state(db_conn *c, const char *queue, const char *id, err *e)
{
    db_stmt *st =
        prep(c, e, "SELECT state FROM bus_jobs WHERE queue = $1 AND id = $2", "tt", queue, id);
    if (!st)
        return e->code ? e->code : F3_EIO;
    int rc = db_step(st, e);
    int state = rc == DB_ROW ? bus_state_parse(db_col_text(st, 0)) : -1;
    db_finalize(st);
    return rc < 0 ? rc : state;
}

static int retry_jobs(bus_store *s, db_conn *c, void *ctx, err *e)
{
    queue_args *a = ctx;
    a->count = 0;
    /* Fresh attempts; the errors of earlier attempts stay, stalled_count too (as BullMQ's
     * stc). run_at = now puts the job behind what is already due; its order key stays. */
    static const char *const sql =
        "UPDATE bus_jobs SET state = 'waiting', attempts_made = 0, run_at = $2,"
        " processed_at = NULL, finished_at = NULL, failed_reason = NULL, return_value = NULL,"
        " lock_token = NULL, lock_until = NULL WHERE queue = $1 AND ";
    buf q;
    buf_init(&q, 0);
    buf_puts(&q, sql);
    buf_puts(&q, a->id ? "id = $3 AND state IN ('failed', 'completed')" : "state = 'failed'");
    int rc = a->id ? run(c, &a->count, e, buf_cstr(&q), "tit", a->queue, a->now, a->id)
                   : run(c, &a->count, e, buf_cstr(&q), "ti", a->queue, a->now);
    buf_free(&q);
    if (rc == 0 && a->id && a->count == 0) {
        int st = job_state(c, a->queue, a->id, e);
        if (st < 0)
            return st == -1
                       ? err_set(e, F3_ENOTFOUND, "job %s not found in queue %s", a->id, a->queue)
                       : st;
        return err_set(e, F3_ECONFLICT, "job %s is %s, not failed or completed", a->id,
                       bus_state_name((bus_state)st));
    }
    return rc == 0 && a->count > 0 ? made_claimable(s, c, e) : rc;
}

int bus_store_retry(bus_store *s, const char *queue, const char *id, int64_t now, int64_t *count,
                    err *e)
{
    ERR_LOCAL(e);
    if (count)
        *count = 0;
    int rc;
    if ((rc = check_queue(queue, e)) || (id && (rc = check_id(id, e))))
        return rc;
    queue_args a = {.queue = queue, .id = id, .now = now};
    rc = in_tx(s, NULL, retry_jobs, &a, e);
    if (rc == 0 && count)
        *count = a.count;
    return rc;
}

static int remove_job(bus_store *s, db_conn *c, void *ctx, err *e)
{
    (void)s;
    queue_args *a = ctx;
    int64_t changes = 0;
    int rc = run(c, &changes, e,
                 "DELETE FROM bus_jobs WHERE queue = $1 AND id = $2 AND state <> 'active'", "tt",
                 a->queue, a->id);
    if (rc || changes > 0)
        return rc;
    int st = job_state(c, a->queue, a->id, e);
    if (st == -1)
        return err_set(e, F3_ENOTFOUND, "job %s not found in queue %s", a->id, a->queue);
    if (st < -1)
        return st;
    return err_set(e, F3_ECONFLICT, "job %s is active: it cannot be removed while it runs", a->id);
}

int bus_store_remove(bus_store *s, const char *queue, const char *id, err *e)
{
    ERR_LOCAL(e);
    int rc;
    if ((rc = check_queue(queue, e)) || (rc = check_id(id, e)))
        return rc;
    queue_args a = {.queue = queue, .id = id};
    return in_tx(s, NULL, remove_job, &a, e);
}

static int clean_jobs(bus_store *s, db_conn *c, void *ctx, err *e)
{
    (void)s;
    queue_args *a = ctx;
    a->count = 0;
    bool finished = a->state == BUS_STATE_COMPLETED || a->state == BUS_STATE_FAILED;
    const char *age_col = finished ? "finished_at" : "created_at";
    buf sql;
    buf_init(&sql, 0);
    buf_printf(&sql,
               "DELETE FROM bus_jobs WHERE queue = $1 AND id IN (SELECT id FROM bus_jobs"
               " WHERE queue = $1 AND %s AND %s < $3 ORDER BY %s LIMIT $4)",
               state_sql[a->state].where, age_col, age_col);
    int rc = run(c, &a->count, e, buf_cstr(&sql), "tiii", a->queue, a->now, a->now - a->a,
                 a->b > 0 ? a->b : BUS_CLEAN_ALL);
    buf_free(&sql);
    return rc;
}

int bus_store_clean(bus_store *s, const char *queue, bus_state state, int64_t older_than_ms,
                    int64_t limit, int64_t now, int64_t *count, err *e)
{
    ERR_LOCAL(e);
    if (count)
        *count = 0;
    int rc = check_queue(queue, e);
    if (rc)
        return rc;
    if ((int)state < 0 || state >= BUS_STATE_COUNT || state == BUS_STATE_ACTIVE)
        return err_set(e, F3_EINVAL,
                       "clean: state must be completed, failed, waiting, prioritized or delayed");
    if (older_than_ms < 0 || limit < 0)
        return err_set(e, F3_EINVAL, "clean: age and limit must be >= 0");
    queue_args a = {.queue = queue, .state = state, .a = older_than_ms, .b = limit, .now = now};
    rc = in_tx(s, NULL, clean_jobs, &a, e);
    if (rc == 0 && count)
        *count = a.count;
    return rc;
}

/* ---- repeatable jobs ------------------------------------------------------------------ */

static int repeatables_due(bus_store *s, int64_t now, bus_repeatable_info **out, size_t *n, err *e);

/* The first tick at or after now. `every` ticks lie on a grid aligned to the epoch, so
 * every instance computes the same ticks (and job ids) whenever it starts. */
static int first_tick(int64_t every_ms, const char *cron, int64_t now, int64_t *out, err *e)
{
    if (cron)
        return bus_cron_next(cron, now - 1, out, e);
    *out = (now + every_ms - 1) / every_ms * every_ms;
    return 0;
}

/* The first tick strictly after now, skipping ticks missed while nobody was running. */
static int next_tick(int64_t every_ms, const char *cron, int64_t now, int64_t *out, err *e)
{
    if (cron)
        return bus_cron_next(cron, now, out, e);
    *out = (now / every_ms + 1) * every_ms;
    return 0;
}

typedef struct rep_args {
    const bus_repeatable *r;
    int64_t first, now;
} rep_args;

static int upsert_repeatable(bus_store *s, db_conn *c, void *ctx, err *e)
{
    (void)s;
    rep_args *a = ctx;
    const bus_repeatable *r = a->r;
    /* An unchanged schedule keeps its next tick, so instances upserting the same
     * repeatable at start-up do not move each other's ticks. */
    return run(c, NULL, e,
               "INSERT INTO bus_repeatables (queue, repeat_id, name, data, every_ms, cron,"
               " next_run_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
               " ON CONFLICT (queue, repeat_id) DO UPDATE SET name = excluded.name,"
               " data = excluded.data, updated_at = excluded.updated_at,"
               " next_run_at = CASE WHEN bus_repeatables.every_ms = excluded.every_ms"
               " AND COALESCE(bus_repeatables.cron, '') = COALESCE(excluded.cron, '')"
               " THEN bus_repeatables.next_run_at ELSE excluded.next_run_at END,"
               " every_ms = excluded.every_ms, cron = excluded.cron",
               "ttttitii", r->queue, r->repeat_id, r->name, r->data, r->every_ms, r->cron, a->first,
               a->now);
}

int bus_store_repeatable_upsert(bus_store *s, const bus_repeatable *r, int64_t now, err *e)
{
    ERR_LOCAL(e);
    if (!r)
        return err_set(e, F3_EINVAL, "repeatable is missing");
    int rc;
    if ((rc = check_queue(r->queue, e)) || (rc = check_json("repeatable data", r->data, e)))
        return rc;
    if (!r->repeat_id || !*r->repeat_id || strlen(r->repeat_id) > BUS_JOB_ID_MAX / 2)
        return err_set(e, F3_EINVAL, "repeatable id must be 1..%d bytes", BUS_JOB_ID_MAX / 2);
    if (!r->name || !*r->name)
        return err_set(e, F3_EINVAL, "repeatable %s: job name is empty", r->repeat_id);
    if ((r->every_ms > 0) == (r->cron != NULL) || r->every_ms < 0)
        return err_set(e, F3_EINVAL, "repeatable %s: give either every_ms > 0 or a cron expression",
                       r->repeat_id);
    rep_args a = {r, 0, now};
    if ((rc = first_tick(r->every_ms, r->cron, now, &a.first, e)))
        return rc;
    return on_conn(s, NULL, upsert_repeatable, &a, e);
}

static int delete_repeatable(bus_store *s, db_conn *c, void *ctx, err *e)
{
    (void)s;
    queue_args *a = ctx;
    int64_t changes = 0;
    int rc = run(c, &changes, e, "DELETE FROM bus_repeatables WHERE queue = $1 AND repeat_id = $2",
                 "tt", a->queue, a->id);
    if (rc == 0 && changes == 0)
        rc = err_set(e, F3_ENOTFOUND, "repeatable %s not found in queue %s", a->id, a->queue);
    return rc;
}

int bus_store_repeatable_remove(bus_store *s, const char *queue, const char *repeat_id, err *e)
{
    ERR_LOCAL(e);
    int rc;
    if ((rc = check_queue(queue, e)) || (rc = check_id(repeat_id, e)))
        return rc;
    queue_args a = {.queue = queue, .id = repeat_id};
    return on_conn(s, NULL, delete_repeatable, &a, e);
}

typedef struct tick_args {
    const bus_repeatable_info *r;
    int64_t next, now;
    bool added;
} tick_args;

/* Advances one repeatable from its due tick, and only if nobody did so first (the
 * UPDATE compares the tick read), then adds that tick's job, whose fixed id makes any
 * duplicate add a no-op as well. */
static int tick_one(bus_store *s, db_conn *c, void *ctx, err *e)
{
    tick_args *t = ctx;
    t->added = false;
    int64_t changes = 0;
    int rc = run(c, &changes, e,
                 "UPDATE bus_repeatables SET next_run_at = $3, updated_at = $4"
                 " WHERE queue = $1 AND repeat_id = $2 AND next_run_at = $5",
                 "ttiii", t->r->queue, t->r->repeat_id, t->next, t->now, t->r->next_run_at);
    if (rc || changes == 0)
        return rc;
    char id[BUS_JOB_ID_MAX + 32];
    snprintf(id, sizeof id, "%s:%" PRId64, t->r->repeat_id, t->r->next_run_at);
    bus_job_opts o = {.job_id = id};
    add_args a = {t->r->queue, t->r->name, t->r->data, &o, t->now, false};
    rc = add_job(s, c, &a, e);
    t->added = a.added;
    return rc;
}

int bus_store_repeatables_tick(bus_store *s, int64_t now, int *enqueued, err *e)
{
    ERR_LOCAL(e);
    if (enqueued)
        *enqueued = 0;
    bus_repeatable_info *due = NULL;
    size_t n = 0;
    int rc = repeatables_due(s, now, &due, &n, e);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        tick_args t = {&due[i], 0, now, false};
        err te;
        err_clear(&te);
        if (next_tick(due[i].every_ms, due[i].cron, now, &t.next, &te)) {
            log_error("repeatable has an invalid schedule; skipped", "queue", due[i].queue,
                      "repeatId", due[i].repeat_id, "error", te.msg);
            continue;
        }
        rc = in_tx(s, NULL, tick_one, &t, e);
        if (rc == 0 && t.added && enqueued)
            (*enqueued)++;
    }
    bus_repeatables_free(due, n);
    return rc;
}

static int list_repeatables(db_conn *c, const char *queue, int64_t due_at,
                            bus_repeatable_info **out, size_t *n, err *e)
{
    db_stmt *st = queue ? prep(c, e,
                               "SELECT queue, repeat_id, name, data, every_ms, cron, next_run_at"
                               " FROM bus_repeatables WHERE queue = $1 ORDER BY repeat_id",
                               "t", queue)
                        : prep(c, e,
                               "SELECT queue, repeat_id, name, data, every_ms, cron, next_run_at"
                               " FROM bus_repeatables WHERE next_run_at <= $1 ORDER BY next_run_at"
                               " LIMIT $2",
                               "ii", due_at, (int64_t)BUS_TICK_BATCH);
    if (!st)
        return e->code ? e->code : F3_EIO;
    bus_repeatable_info *v = NULL;
    size_t cap = 0;
    int rc;
    while ((rc = db_step(st, e)) == DB_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            bus_repeatable_info *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                rc = err_set(e, F3_ENOMEM, "out of memory listing repeatables");
                break;
            }
            v = nv;
            cap = ncap;
        }
        bus_repeatable_info *r = &v[(*n)++];
        bool oom = false;
        r->queue = dup_col(st, 0, &oom);
        r->repeat_id = dup_col(st, 1, &oom);
        r->name = dup_col(st, 2, &oom);
        r->data = dup_col(st, 3, &oom);
        r->every_ms = db_col_int64(st, 4);
        r->cron = dup_col(st, 5, &oom);
        r->next_run_at = db_col_int64(st, 6);
        if (oom || !r->queue || !r->repeat_id || !r->name || !r->data) {
            rc = err_set(e, F3_ENOMEM, "out of memory listing repeatables");
            break;
        }
    }
    db_finalize(st);
    if (rc < 0) {
        bus_repeatables_free(v, *n);
        *n = 0;
        return rc;
    }
    *out = v;
    return 0;
}

int bus_store_repeatables_list(bus_store *s, const char *queue, bus_repeatable_info **out,
                               size_t *n, err *e)
{
    ERR_LOCAL(e);
    *out = NULL;
    *n = 0;
    int rc = check_queue(queue, e);
    if (rc)
        return rc;
    db_conn *c = db_acquire(s->d, e);
    if (!c)
        return e->code ? e->code : F3_EIO;
    rc = list_repeatables(c, queue, 0, out, n, e);
    db_release(c);
    return rc;
}

static int repeatables_due(bus_store *s, int64_t now, bus_repeatable_info **out, size_t *n, err *e)
{
    *out = NULL;
    *n = 0;
    db_conn *c = db_acquire(s->d, e);
    if (!c)
        return e->code ? e->code : F3_EIO;
    int rc = list_repeatables(c, NULL, now, out, n, e);
    db_release(c);
    return rc;
}

void bus_repeatables_free(bus_repeatable_info *r, size_t n)
{
    if (!r)
        return;
    for (size_t i = 0; i < n; i++) {
        free(r[i].queue);
        free(r[i].repeat_id);
        free(r[i].name);
        free(r[i].data);
        free(r[i].cron);
    }
    free(r);
}
