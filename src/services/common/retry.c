/*
 * retry.c - the retry queue: enqueueing, claiming, running handlers, recording outcomes,
 * cleanup and the repeatable jobs that drive it (see retry.h). The HTTP API is in
 * retry_api.c. Knows no job type's meaning.
 */
#include "services/common/retry.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "core/uuid.h"
#include "services/common/eventlog.h"
#include "services/common/notify.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_DEFAULT_BATCH 20
#define RETRY_MAX_ATTEMPTS  100
#define RETRY_QUEUE_NAME    96

static const char *const type_names[RETRY_TYPE_COUNT] = {
    [RETRY_FULFILLMENT] = "FULFILLMENT",
    [RETRY_PRINT_JOB_CREATION] = "PRINT_JOB_CREATION",
    [RETRY_CANCELLATION] = "CANCELLATION",
    [RETRY_NOTIFICATION] = "NOTIFICATION",
};

static const char *const status_names[] = {"PENDING", "PROCESSING", "COMPLETED", "FAILED"};

const char *retry_type_name(retry_type t)
{
    return (unsigned)t < RETRY_TYPE_COUNT ? type_names[t] : "UNKNOWN";
}

int retry_type_parse(const char *name)
{
    for (int i = 0; name && i < RETRY_TYPE_COUNT; i++)
        if (strcmp(name, type_names[i]) == 0)
            return i;
    return -1;
}

bool retry_status_valid(const char *s)
{
    for (size_t i = 0; s && i < sizeof status_names / sizeof status_names[0]; i++)
        if (strcmp(s, status_names[i]) == 0)
            return true;
    return false;
}

int64_t retry_backoff_ms(int attempt, double u)
{
    if (attempt < 1)
        attempt = 1;
    int64_t delay = RETRY_MAX_DELAY_MS;
    /* 2^12 s already passes the cap; avoid shifting further. */
    if (attempt <= 12) {
        delay = RETRY_BASE_DELAY_MS << (attempt - 1);
        if (delay > RETRY_MAX_DELAY_MS)
            delay = RETRY_MAX_DELAY_MS;
    }
    if (!(u >= 0.0)) /* also catches NaN */
        u = 0.0;
    if (u > 1.0)
        u = 1.0;
    double factor = 1.0 + (double)RETRY_JITTER_PERCENT / 100.0 * (2.0 * u - 1.0);
    return (int64_t)((double)delay * factor + 0.5);
}

/* ---- enqueueing ------------------------------------------------------------------------- */

/* What this thread enqueued since its last commit: a bit per type and, per type, the
 * earliest due time. The commit hooks of this process's processors read and clear their
 * own types (see wake_hook); a type no processor of this process handles stays set, so its
 * due time must not stand for another type's. A rolled back enqueue leaves its bit set
 * until the next commit, which then wakes a processor for nothing: harmless. */
static _Thread_local unsigned pending_types;
static _Thread_local int64_t pending_due[RETRY_TYPE_COUNT];

static const char *const status_by_bit[] = {"PENDING", "PROCESSING", "COMPLETED", "FAILED"};

/* The id of tenant_id's entry of type with payload text `payload` in one of `statuses`,
 * into id (UUID_STR_LEN); "" when there is none. */
static int find_entry(db_conn *c, const char *tenant_id, retry_type type, const char *payload,
                      unsigned statuses, char *id, err *e)
{
    id[0] = '\0';
    buf sql;
    buf_init(&sql, 0);
    buf_puts(&sql, "SELECT id FROM retry_queue WHERE tenant_id = $1 AND job_type = $2"
                   " AND payload = $3 AND status IN (");
    int n = 0;
    for (unsigned i = 0; i < 4; i++)
        if (statuses & (1u << i))
            buf_printf(&sql, "%s'%s'", n++ ? ", " : "", status_by_bit[i]);
    buf_puts(&sql, ") ORDER BY created_at LIMIT 1");
    int rc = 0;
    if (n > 0) {
        const char *p[] = {tenant_id, type_names[type], payload};
        db_stmt *s = db_prepare_texts(c, buf_cstr(&sql), p, 3, e);
        rc = s ? db_step(s, e) : db_err_code(e);
        if (rc == DB_ROW)
            db_col_copy(s, 0, id, UUID_STR_LEN);
        db_finalize(s);
    }
    buf_free(&sql);
    return rc < 0 ? rc : 0;
}

int retry_exists(db_conn *c, const char *tenant_id, retry_type type, const json_t *payload,
                 unsigned statuses, bool *found, err *e)
{
    *found = false;
    if (!c || !tenant_id || (unsigned)type >= RETRY_TYPE_COUNT || !json_is_object(payload))
        return err_set(e, F3_EINVAL, "retry queue: connection, tenant, type and payload needed");
    buf text;
    buf_init(&text, 0);
    char id[UUID_STR_LEN] = "";
    int rc = json_dump_buf(payload, &text);
    rc = rc ? err_set(e, rc, "retry queue: payload cannot be encoded")
            : find_entry(c, tenant_id, type, buf_cstr(&text), statuses, id, e);
    *found = rc == 0 && id[0];
    buf_free(&text);
    return rc;
}

int retry_enqueue_with(db_conn *tx, const retry_enqueue_opts *o, char *id_out, err *e)
{
    if (!tx || !o)
        return err_set(e, F3_EINVAL, "retry queue: a connection and options are required");
    if (!o->tenant_id || !*o->tenant_id)
        return err_set(e, F3_EINVAL, "retry queue: tenant_id is required");
    if ((unsigned)o->type >= RETRY_TYPE_COUNT)
        return err_set(e, F3_EINVAL, "retry queue: unknown job type %d", (int)o->type);
    if (!json_is_object(o->payload))
        return err_set(e, F3_EINVAL, "retry queue: payload must be a JSON object");
    int max = o->max_attempts ? o->max_attempts : RETRY_DEFAULT_MAX_ATTEMPTS;
    if (max < 1 || max > RETRY_MAX_ATTEMPTS)
        return err_set(e, F3_EINVAL, "retry queue: max_attempts must be 1..%d, got %d",
                       RETRY_MAX_ATTEMPTS, max);
    int64_t now = o->now_ms ? o->now_ms : clock_now_ms();
    int64_t due = now + (o->delay_ms < 0 ? RETRY_BASE_DELAY_MS : o->delay_ms);
    buf payload;
    buf_init(&payload, 0);
    int rc = json_dump_buf(o->payload, &payload);
    if (rc) {
        buf_free(&payload);
        return err_set(e, rc, "retry queue: payload cannot be stored (%s)", err_name(rc));
    }
    char id[UUID_STR_LEN];
    db_stmt *s = NULL;
    if (o->dedupe) {
        rc = find_entry(tx, o->tenant_id, o->type, buf_cstr(&payload), RETRY_ST_PENDING, id, e);
        if (rc || id[0]) {
            if (rc == 0 && id_out)
                memcpy(id_out, id, UUID_STR_LEN);
            if (rc == 0)
                log_debug("retry entry already pending", "id", id, "type", type_names[o->type]);
            goto out;
        }
    }
    uuid_v7(id);
    s = db_prepare(tx,
                   "INSERT INTO retry_queue (id, tenant_id, job_type, payload, attempts, "
                   "max_attempts, next_attempt_at, status, created_at, updated_at) "
                   "VALUES ($1, $2, $3, $4, 0, $5, $6, 'PENDING', $7, $7)",
                   e);
    if (!s) {
        rc = db_err_code(e);
        goto out;
    }
    db_bind_text(s, 1, id);
    db_bind_text(s, 2, o->tenant_id);
    db_bind_text(s, 3, type_names[o->type]);
    db_bind_text(s, 4, buf_cstr(&payload));
    db_bind_int64(s, 5, max);
    db_bind_int64(s, 6, due);
    db_bind_int64(s, 7, now);
    rc = db_step(s, e);
    rc = rc < 0 ? rc : 0;
    db_finalize(s);
    s = NULL;
    if (rc == 0) {
        if (!(pending_types & (1u << o->type)) || due < pending_due[o->type])
            pending_due[o->type] = due;
        pending_types |= 1u << o->type;
        if (id_out)
            memcpy(id_out, id, UUID_STR_LEN);
        log_debug("retry entry queued", "id", id, "type", type_names[o->type], "tenantId",
                  o->tenant_id);
    }
out:
    buf_free(&payload);
    return rc;
}

int retry_enqueue(db_conn *tx, const char *tenant_id, retry_type type, const json_t *payload,
                  err *e)
{
    retry_enqueue_opts o = {
        .tenant_id = tenant_id, .type = type, .payload = payload, .delay_ms = -1};
    return retry_enqueue_with(tx, &o, NULL, e);
}

/* ---- the processor ---------------------------------------------------------------------- */

typedef struct retry_slot {
    retry_handler fn;
    void *ctx;
} retry_slot;

struct retry_queue {
    db *db;
    int batch;
    int64_t lease_ms;
    double (*random)(void *ctx);
    void *random_ctx;
    retry_slot handlers[RETRY_TYPE_COUNT];
    atomic_bool stopping;
    char process_queue[RETRY_QUEUE_NAME];
    char cleanup_queue[RETRY_QUEUE_NAME];

    /* The wake-up of retry_schedule: a thread that runs the processor when an entry of a
     * type handled here was committed by this process, at the entry's due time. */
    bool waker_started, hook_added;
    pthread_t waker;
    pthread_mutex_t wake_mu;
    pthread_cond_t wake_cv; /* CLOCK_MONOTONIC */
    int64_t wake_at;        /* epoch ms; 0 = nothing to do */
    bool waker_stop;
};

static double sodium_random(void *ctx)
{
    (void)ctx;
    return (double)randombytes_uniform(1000001) / 1000000.0;
}

retry_queue *retry_new(db *d, const retry_opts *o)
{
    retry_queue *rq = calloc(1, sizeof *rq);
    if (!rq)
        return NULL;
    rq->db = d;
    rq->batch = o && o->batch > 0 ? o->batch : RETRY_DEFAULT_BATCH;
    rq->lease_ms = o && o->lease_ms > 0 ? o->lease_ms : RETRY_DEFAULT_LEASE_MS;
    rq->random = o && o->random ? o->random : sodium_random;
    rq->random_ctx = o && o->random ? o->random_ctx : NULL;
    atomic_init(&rq->stopping, false);
    pthread_mutex_init(&rq->wake_mu, NULL);
    clock_cond_init(&rq->wake_cv);
    return rq;
}

void retry_stop(retry_queue *rq)
{
    if (!rq)
        return;
    atomic_store(&rq->stopping, true);
    pthread_mutex_lock(&rq->wake_mu);
    rq->waker_stop = true;
    pthread_cond_broadcast(&rq->wake_cv);
    pthread_mutex_unlock(&rq->wake_mu);
}

static void wake_hook(void *ctx);

void retry_free(retry_queue *rq)
{
    if (!rq)
        return;
    if (rq->hook_added)
        db_on_commit_remove(rq->db, wake_hook, rq);
    retry_stop(rq);
    if (rq->waker_started)
        pthread_join(rq->waker, NULL);
    pthread_mutex_destroy(&rq->wake_mu);
    pthread_cond_destroy(&rq->wake_cv);
    free(rq);
}

int retry_register(retry_queue *rq, retry_type type, retry_handler fn, void *ctx, err *e)
{
    if ((unsigned)type >= RETRY_TYPE_COUNT || !fn)
        return err_set(e, F3_EINVAL, "retry queue: a known type and a handler are required");
    if (rq->handlers[type].fn)
        return err_set(e, F3_EINVAL, "retry queue: %s already has a handler", type_names[type]);
    rq->handlers[type] = (retry_slot){fn, ctx};
    return 0;
}

bool retry_handles(const retry_queue *rq, retry_type type)
{
    return rq && (unsigned)type < RETRY_TYPE_COUNT && rq->handlers[type].fn != NULL;
}

/* One claimed entry, copied out of the claim transaction. */
typedef struct claimed {
    char id[UUID_STR_LEN];
    char *tenant_id;
    retry_type type;
    char *payload;
    int attempt;
    int max_attempts;
    bool manual;
} claimed;

typedef struct claim_tx {
    retry_queue *rq;
    int64_t now;
    int max;
    claimed *items;
    int n;
} claim_tx;

static void claimed_clear(claimed *items, int n)
{
    for (int i = 0; i < n; i++) {
        free(items[i].tenant_id);
        free(items[i].payload);
    }
}

static int claim_select(claim_tx *t, db_conn *c, buf *sql, err *e)
{
    db_stmt *s = db_prepare(c, buf_cstr(sql), e);
    if (!s)
        return db_err_code(e);
    db_bind_int64(s, 1, t->now);
    db_bind_int64(s, 2, t->now - t->rq->lease_ms);
    db_bind_int64(s, 3, t->max);
    int p = 4;
    for (int i = 0; i < RETRY_TYPE_COUNT; i++)
        if (t->rq->handlers[i].fn)
            db_bind_text(s, p++, type_names[i]);
    int rc;
    while ((rc = db_step(s, e)) == DB_ROW && t->n < t->max) {
        claimed *it = &t->items[t->n];
        memset(it, 0, sizeof *it);
        db_col_copy(s, 0, it->id, sizeof it->id);
        it->tenant_id = str_dup(db_col_text(s, 1));
        it->type = (retry_type)retry_type_parse(db_col_text(s, 2));
        it->payload = str_dup(db_col_text(s, 3));
        it->attempt = (int)db_col_int64(s, 4) + 1;
        it->max_attempts = (int)db_col_int64(s, 5);
        /* Only retry_manual sets attempts back to 0 on an entry that failed before. */
        it->manual = it->attempt == 1 && db_col_text(s, 6) != NULL;
        t->n++;
        if (!it->tenant_id || !it->payload) {
            rc = err_set(e, F3_ENOMEM, "out of memory");
            break;
        }
    }
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

static int claim_fn(db_conn *c, void *ctx, err *e)
{
    claim_tx *t = ctx;
    claimed_clear(t->items, t->n);
    t->n = 0;
    buf sql;
    buf_init(&sql, 0);
    buf_puts(&sql,
             "SELECT id, tenant_id, job_type, payload, attempts, max_attempts, "
             "last_error FROM retry_queue WHERE ((status = 'PENDING' AND next_attempt_at <= $1) OR "
             "(status = 'PROCESSING' AND updated_at <= $2)) AND job_type IN (");
    for (int i = 0, p = 4; i < RETRY_TYPE_COUNT; i++) {
        if (!t->rq->handlers[i].fn)
            continue;
        buf_printf(&sql, "%s$%d", p > 4 ? ", " : "", p);
        p++;
    }
    buf_printf(&sql, ") ORDER BY next_attempt_at, id LIMIT $3%s",
               db_sql_skip_locked(db_conn_db(c)));
    int rc = claim_select(t, c, &sql, e);
    buf_free(&sql);
    for (int i = 0; rc == 0 && i < t->n; i++) {
        char attempts[24], now[24];
        snprintf(attempts, sizeof attempts, "%d", t->items[i].attempt);
        db_ms_text(t->now, now);
        const char *args[] = {t->items[i].id, t->items[i].tenant_id, attempts, now};
        rc = db_exec_texts(c,
                           "UPDATE retry_queue SET status = 'PROCESSING', "
                           "attempts = CAST($3 AS INTEGER), updated_at = CAST($4 AS BIGINT) "
                           "WHERE id = $1 AND tenant_id = $2",
                           args, 4, NULL, e);
    }
    return rc;
}

/* What one finished attempt records. */
typedef struct outcome_tx {
    const claimed *it;
    int64_t now;
    int rc;            /* the handler's result */
    const char *error; /* its message */
    int64_t next_at;   /* for a retry */
    bool fail;         /* FAILED rather than PENDING */
    bool alerted;      /* the handler raised its own alert (retry_advice.alerted) */
    bool changed;      /* the entry was still ours */
} outcome_tx;

static int exhausted_record(db_conn *c, const outcome_tx *t, err *e)
{
    const claimed *it = t->it;
    json_t *payload = NULL;
    json_parse(it->payload, strlen(it->payload), &payload, NULL);
    json_t *meta =
        json_pack("{s:s, s:s, s:o, s:s, s:i, s:i, s:b, s:b, s:b}", "jobId", it->id, "jobType",
                  type_names[it->type], "payload", payload ? payload : json_null(), "lastError",
                  t->error, "attempts", it->attempt, "maxAttempts", it->max_attempts, "permanent",
                  t->rc == F3_EPERMANENT || t->rc == F3_EINVAL, "requiresAttention", 1,
                  "alertedByHandler", t->alerted);
    if (!meta)
        return err_set(e, F3_ENOMEM, "out of memory");
    char msg[256];
    snprintf(msg, sizeof msg, "Retry job %s (%s) failed after %d of %d attempts", it->id,
             type_names[it->type], it->attempt, it->max_attempts);
    eventlog_entry en = {.tenant_id = it->tenant_id,
                         .event_type = RETRY_EXHAUSTED_EVENT,
                         .severity = EVENTLOG_ERROR,
                         .message = msg,
                         .metadata = meta};
    int rc = eventlog_write(c, &en, NULL, e);
    /* An alert about a failed alert could fail the same way, forever: log it only. A
     * handler that alerted about this failure itself has told the operator already. */
    if (rc == 0 && it->type != RETRY_NOTIFICATION && !t->alerted) {
        json_t *fields =
            json_pack("{s:s, s:s, s:s, s:i, s:s}", "message", msg, "jobId", it->id, "jobType",
                      type_names[it->type], "attempts", it->attempt, "lastError", t->error);
        rc = fields ? notify_alert(c, it->tenant_id, NOTIFY_RETRY_EXHAUSTED, fields, e)
                    : err_set(e, F3_ENOMEM, "out of memory");
        json_decref(fields);
    }
    json_decref(meta);
    return rc;
}

static int outcome_fn(db_conn *c, void *ctx, err *e)
{
    outcome_tx *t = ctx;
    const claimed *it = t->it;
    db_stmt *s;
    if (t->rc == 0)
        s = db_prepare(c,
                       "UPDATE retry_queue SET status = 'COMPLETED', updated_at = $1 "
                       "WHERE id = $2 AND tenant_id = $3 AND status = 'PROCESSING' "
                       "AND attempts = $4",
                       e);
    else if (t->fail)
        s = db_prepare(c,
                       "UPDATE retry_queue SET status = 'FAILED', updated_at = $1, "
                       "last_error = $5 WHERE id = $2 AND tenant_id = $3 "
                       "AND status = 'PROCESSING' AND attempts = $4",
                       e);
    else
        s = db_prepare(c,
                       "UPDATE retry_queue SET status = 'PENDING', updated_at = $1, "
                       "last_error = $5, next_attempt_at = $6 WHERE id = $2 AND tenant_id = $3 "
                       "AND status = 'PROCESSING' AND attempts = $4",
                       e);
    if (!s)
        return db_err_code(e);
    db_bind_int64(s, 1, t->now);
    db_bind_text(s, 2, it->id);
    db_bind_text(s, 3, it->tenant_id);
    db_bind_int64(s, 4, it->attempt);
    if (t->rc != 0)
        db_bind_text(s, 5, t->error);
    if (t->rc != 0 && !t->fail)
        db_bind_int64(s, 6, t->next_at);
    int rc = db_step(s, e);
    t->changed = rc == DB_DONE && db_changes(s) == 1;
    db_finalize(s);
    if (rc < 0)
        return rc;
    if (t->changed && t->rc != 0 && t->fail)
        return exhausted_record(c, t, e);
    return 0;
}

/* Runs one claimed entry's handler. Returns its result; msg receives its message. */
static int run_handler(retry_queue *rq, const claimed *it, retry_advice *adv, char *msg,
                       size_t msg_size)
{
    memset(adv, 0, sizeof *adv);
    err he = {0};
    int rc;
    json_t *payload = NULL;
    if (it->attempt > it->max_attempts) {
        rc = err_set(&he, F3_ETRANSIENT,
                     "attempt %d was interrupted (its process stopped) and no attempts remain",
                     it->max_attempts);
    } else if ((unsigned)it->type >= RETRY_TYPE_COUNT || !rq->handlers[it->type].fn) {
        rc = err_set(&he, F3_EINVAL, "no handler for this job type");
    } else if (json_parse(it->payload, strlen(it->payload), &payload, &he) != 0 ||
               !json_is_object(payload)) {
        rc = err_set(&he, F3_EINVAL, "stored payload is not a JSON object");
    } else {
        retry_entry en = {.id = it->id,
                          .tenant_id = it->tenant_id,
                          .type = it->type,
                          .payload = payload,
                          .attempt = it->attempt,
                          .max_attempts = it->max_attempts,
                          .manual = it->manual,
                          .advice = adv};
        rc = rq->handlers[it->type].fn(&en, rq->handlers[it->type].ctx, &he);
        if (rc > 0)
            rc = 0;
    }
    json_decref(payload);
    snprintf(msg, msg_size, "%s", he.msg[0] ? he.msg : (rc ? err_name(rc) : ""));
    return rc;
}

/* Makes the wake-up (when running) run the processor at at_ms, unless it will earlier. */
static void wake_at_least(retry_queue *rq, int64_t at_ms)
{
    pthread_mutex_lock(&rq->wake_mu);
    if (rq->wake_at == 0 || at_ms < rq->wake_at)
        rq->wake_at = at_ms;
    pthread_cond_broadcast(&rq->wake_cv);
    pthread_mutex_unlock(&rq->wake_mu);
}

static int record_outcome(retry_queue *rq, db_conn *c, const claimed *it, int hrc,
                          const retry_advice *adv, const char *msg, err *e)
{
    outcome_tx t = {.it = it, .now = clock_now_ms(), .rc = hrc, .error = msg};
    bool permanent = hrc == F3_EPERMANENT || hrc == F3_EINVAL;
    t.fail = hrc != 0 && (permanent || it->attempt >= it->max_attempts);
    t.alerted = hrc != 0 && adv->alerted;
    if (hrc != 0 && !t.fail) {
        int64_t delay = retry_backoff_ms(it->attempt, rq->random(rq->random_ctx));
        int64_t after =
            adv->retry_after_ms < RETRY_MAX_DELAY_MS ? adv->retry_after_ms : RETRY_MAX_DELAY_MS;
        t.next_at = t.now + (after > delay ? after : delay);
    }
    int rc = db_tx(c, outcome_fn, &t, e);
    if (rc)
        return rc;
    /* The next attempt runs at its backoff here, not only at the next tick (which any
     * process may take first: claims stay exclusive). */
    if (t.changed && hrc != 0 && !t.fail)
        wake_at_least(rq, t.next_at);
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", it->attempt);
    if (!t.changed)
        log_warn("retry entry was taken over by another processor; outcome dropped", "id", it->id,
                 "type", type_names[it->type]);
    else if (hrc == 0)
        log_info("retry entry completed", "id", it->id, "type", type_names[it->type], "attempt",
                 attempt);
    else if (t.fail)
        log_error("retry entry failed for good", "id", it->id, "type", type_names[it->type],
                  "tenantId", it->tenant_id, "attempt", attempt, "error", msg);
    else {
        char in_ms[24];
        snprintf(in_ms, sizeof in_ms, "%lld", (long long)(t.next_at - t.now));
        log_warn("retry entry failed, will retry", "id", it->id, "type", type_names[it->type],
                 "attempt", attempt, "retryInMs", in_ms, "error", msg);
    }
    return 0;
}

/* Starts the entry's lease again (updated_at = now) if this processor still holds it: just
 * before its handler runs, so that entries claimed in one batch are not taken over while
 * they wait for the ones before them, and every lease/3 while it runs (heartbeat). 1 when
 * renewed, 0 when the entry is no longer ours (another processor took it over), -1 when
 * the database failed; `when` names the moment in the log line. */
static int renew_claim(db_conn *c, const claimed *it, const char *when)
{
    char attempts[16], now[24];
    snprintf(attempts, sizeof attempts, "%d", it->attempt);
    db_ms_text(clock_now_ms(), now);
    const char *args[] = {it->id, it->tenant_id, attempts, now};
    err e = {0};
    int64_t changed = 0;
    int rc = db_exec_texts(c,
                           "UPDATE retry_queue SET updated_at = CAST($4 AS BIGINT) WHERE id = $1 "
                           "AND tenant_id = $2 AND status = 'PROCESSING' "
                           "AND attempts = CAST($3 AS INTEGER)",
                           args, 4, &changed, &e);
    if (rc)
        log_warn("retry entry lease not renewed", "id", it->id, "when", when, "reason", e.msg);
    else if (changed != 1)
        log_warn("retry entry no longer held by this processor", "id", it->id, "when", when,
                 "reason", "taken over");
    return rc ? -1 : changed == 1;
}

/* The heartbeat of one running entry: a thread that renews the entry's lease every
 * lease/3 on a connection of its own until the handler returns. A handler may make many
 * slow calls (a PRINT_JOB_CREATION entry submits every PENDING job of its order), so no
 * lease could be long enough for all of them; renewed, the lease only has to outlast the
 * process that holds it, and an entry whose process died is claimed again after
 * rq->lease_ms instead of after the longest imaginable handler. */
typedef struct heartbeat {
    retry_queue *rq;
    const claimed *it;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    bool done;
    bool started;
} heartbeat;

static void *heartbeat_main(void *arg)
{
    heartbeat *hb = arg;
    int64_t every = hb->rq->lease_ms / 3 > 0 ? hb->rq->lease_ms / 3 : 1;
    pthread_mutex_lock(&hb->mu);
    while (!hb->done) {
        struct timespec ts = clock_mono_after(every);
        if (pthread_cond_timedwait(&hb->cv, &hb->mu, &ts) == 0 || hb->done)
            continue;
        pthread_mutex_unlock(&hb->mu);
        err e = {0};
        db_conn *c = db_acquire(hb->rq->db, &e);
        int held = c ? renew_claim(c, hb->it, "while its handler runs") : -1;
        if (!c)
            log_warn("retry entry lease not renewed", "id", hb->it->id, "reason", e.msg);
        db_release(c);
        pthread_mutex_lock(&hb->mu);
        if (held == 0)
            break; /* taken over: renewing again would not give it back (a failed renewal
                      is tried again at the next beat) */
    }
    pthread_mutex_unlock(&hb->mu);
    return NULL;
}

static void heartbeat_start(heartbeat *hb, retry_queue *rq, const claimed *it)
{
    memset(hb, 0, sizeof *hb);
    hb->rq = rq;
    hb->it = it;
    pthread_mutex_init(&hb->mu, NULL);
    clock_cond_init(&hb->cv);
    hb->started = pthread_create(&hb->thread, NULL, heartbeat_main, hb) == 0;
    if (!hb->started)
        log_warn("retry entry runs without lease renewal; a slow handler may be taken over", "id",
                 it->id);
}

static void heartbeat_stop(heartbeat *hb)
{
    pthread_mutex_lock(&hb->mu);
    hb->done = true;
    pthread_cond_broadcast(&hb->cv);
    pthread_mutex_unlock(&hb->mu);
    if (hb->started)
        pthread_join(hb->thread, NULL);
    pthread_mutex_destroy(&hb->mu);
    pthread_cond_destroy(&hb->cv);
}

/* Gives back a claimed entry that was not run (the attempt is not counted). */
static void release_claim(db_conn *c, const claimed *it)
{
    char attempts[16], now[24];
    snprintf(attempts, sizeof attempts, "%d", it->attempt);
    db_ms_text(clock_now_ms(), now);
    const char *args[] = {it->id, it->tenant_id, attempts, now};
    err e = {0};
    if (db_exec_texts(c,
                      "UPDATE retry_queue SET status = 'PENDING', attempts = attempts - 1, "
                      "updated_at = CAST($4 AS BIGINT) WHERE id = $1 AND tenant_id = $2 "
                      "AND status = 'PROCESSING' AND attempts = CAST($3 AS INTEGER)",
                      args, 4, NULL, &e) != 0)
        log_warn("retry entry not handed back; it is retried after its lease", "id", it->id,
                 "reason", e.msg);
}

static int process_batch(retry_queue *rq, db_conn *c, int64_t now, int max, int *ran, err *e)
{
    claim_tx t = {.rq = rq, .now = now, .max = max};
    t.items = calloc((size_t)max, sizeof *t.items);
    if (!t.items)
        return err_set(e, F3_ENOMEM, "out of memory");
    int rc = db_tx(c, claim_fn, &t, e);
    int i = 0;
    for (; rc == 0 && i < t.n && !atomic_load(&rq->stopping); i++) {
        char msg[ERR_MSG_MAX];
        retry_advice adv;
        if (renew_claim(c, &t.items[i], "before its handler runs") != 1)
            continue;
        heartbeat hb;
        heartbeat_start(&hb, rq, &t.items[i]);
        int hrc = run_handler(rq, &t.items[i], &adv, msg, sizeof msg);
        heartbeat_stop(&hb);
        rc = record_outcome(rq, c, &t.items[i], hrc, &adv, msg, e);
        (*ran)++;
    }
    /* Stopping: hand the rest back at once. After a db error they wait for their lease. */
    for (; rc == 0 && i < t.n; i++)
        release_claim(c, &t.items[i]);
    int claimed_n = t.n;
    claimed_clear(t.items, t.n);
    free(t.items);
    return rc ? rc : claimed_n;
}

int retry_process_due(retry_queue *rq, int64_t now_ms, int limit, int *ran, err *e)
{
    int count = 0;
    bool any = false;
    for (int i = 0; i < RETRY_TYPE_COUNT; i++)
        any = any || rq->handlers[i].fn;
    if (ran)
        *ran = 0;
    if (!any)
        return 0;
    db_conn *c = db_acquire(rq->db, e);
    if (!c)
        return db_err_code(e);
    int rc = 0;
    while (!atomic_load(&rq->stopping) && (limit <= 0 || count < limit)) {
        int max = rq->batch;
        if (limit > 0 && limit - count < max)
            max = limit - count;
        int64_t now = now_ms ? now_ms : clock_now_ms();
        rc = process_batch(rq, c, now, max, &count, e);
        if (rc <= 0)
            break;
        rc = 0;
    }
    db_release(c);
    if (ran)
        *ran = count;
    return rc < 0 ? rc : 0;
}

int retry_cleanup(db *d, int64_t now_ms, int64_t keep_ms, int64_t *removed, err *e)
{
    if (removed)
        *removed = 0;
    db_conn *c = db_acquire(d, e);
    if (!c)
        return db_err_code(e);
    char before[24];
    db_ms_text(now_ms - (keep_ms > 0 ? keep_ms : RETRY_KEEP_COMPLETED_MS), before);
    const char *args[] = {before};
    int rc = db_exec_texts(c,
                           "DELETE FROM retry_queue WHERE status = 'COMPLETED' "
                           "AND updated_at < CAST($1 AS BIGINT)",
                           args, 1, removed, e);
    db_release(c);
    return rc;
}

typedef struct manual_tx {
    const char *tenant_id, *id;
    int64_t now;
} manual_tx;

static int manual_fn(db_conn *c, void *ctx, err *e)
{
    manual_tx *t = ctx;
    const char *args[] = {t->id, t->tenant_id};
    char status[16];
    int rc = db_query_text(c, "SELECT status FROM retry_queue WHERE id = $1 AND tenant_id = $2",
                           args, 2, status, sizeof status, e);
    if (rc < 0)
        return rc;
    if (rc == DB_DONE)
        return err_set(e, F3_ENOTFOUND, "Retry entry not found: %s", t->id);
    if (strcmp(status, "FAILED") != 0)
        return err_set(e, F3_ECONFLICT, "Retry entry %s is %s; only FAILED entries can be retried",
                       t->id, status);
    char now[24];
    db_ms_text(t->now, now);
    const char *up[] = {t->id, t->tenant_id, now};
    return db_exec_texts(c,
                         "UPDATE retry_queue SET status = 'PENDING', attempts = 0, "
                         "next_attempt_at = CAST($3 AS BIGINT), updated_at = CAST($3 AS BIGINT) "
                         "WHERE id = $1 AND tenant_id = $2 AND status = 'FAILED'",
                         up, 3, NULL, e);
}

int retry_manual(db_conn *c, const char *tenant_id, const char *id, int64_t now_ms, err *e)
{
    if (!tenant_id || !*tenant_id || !id || !*id)
        return err_set(e, F3_EINVAL, "retry queue: tenant and entry id are required");
    manual_tx t = {tenant_id, id, now_ms ? now_ms : clock_now_ms()};
    if (db_in_transaction(c))
        return manual_fn(c, &t, e);
    return db_tx(c, manual_fn, &t, e);
}

/* ---- the wake-up after a local enqueue ------------------------------------------------ */

/* Runs on the committing thread after every commit on the database: must be quick and must
 * not touch the database. */
static void wake_hook(void *ctx)
{
    retry_queue *rq = ctx;
    unsigned mine = 0;
    for (int i = 0; i < RETRY_TYPE_COUNT; i++)
        if (rq->handlers[i].fn)
            mine |= 1u << i;
    if (!(pending_types & mine))
        return;
    int64_t due = 0;
    for (int i = 0; i < RETRY_TYPE_COUNT; i++)
        if ((pending_types & mine & (1u << i)) && (due == 0 || pending_due[i] < due))
            due = pending_due[i];
    pending_types &= ~mine;
    wake_at_least(rq, due);
}

static void wait_until(retry_queue *rq, int64_t at_ms)
{
    int64_t left = at_ms - clock_now_ms();
    if (left > 1000)
        left = 1000; /* look again: an earlier entry may come, or a stop */
    struct timespec ts = clock_mono_after(left);
    pthread_cond_timedwait(&rq->wake_cv, &rq->wake_mu, &ts);
}

/* The earliest next attempt of a PENDING entry of the types handled here (any process's);
 * 0 when there is none or the database cannot say (the next tick covers that). */
static int64_t next_due(retry_queue *rq)
{
    buf sql;
    buf_init(&sql, 0);
    buf_puts(&sql, "SELECT MIN(next_attempt_at) FROM retry_queue WHERE status = 'PENDING'"
                   " AND job_type IN (");
    for (int i = 0, n = 0; i < RETRY_TYPE_COUNT; i++)
        if (rq->handlers[i].fn)
            buf_printf(&sql, "%s'%s'", n++ ? ", " : "", type_names[i]);
    buf_puts(&sql, ")");
    err e = {0};
    int64_t due = 0;
    db_conn *c = db_acquire(rq->db, &e);
    db_stmt *s = c ? db_prepare(c, buf_cstr(&sql), &e) : NULL;
    if (s && db_step(s, &e) == DB_ROW && !db_col_is_null(s, 0))
        due = db_col_int64(s, 0);
    db_finalize(s);
    db_release(c);
    buf_free(&sql);
    return due;
}

static void *waker_main(void *arg)
{
    retry_queue *rq = arg;
    pthread_mutex_lock(&rq->wake_mu);
    while (!rq->waker_stop) {
        if (rq->wake_at == 0) {
            pthread_cond_wait(&rq->wake_cv, &rq->wake_mu);
            continue;
        }
        if (rq->wake_at > clock_now_ms()) {
            wait_until(rq, rq->wake_at);
            continue;
        }
        rq->wake_at = 0;
        pthread_mutex_unlock(&rq->wake_mu);
        err e = {0};
        int ran = 0;
        if (retry_process_due(rq, 0, 0, &ran, &e) != 0)
            log_warn("retry queue wake-up run failed; the next tick retries", "reason", e.msg);
        /* One slot keeps only the earliest due time: look again for the next one, so an
         * entry due later than the one just run is not left to the tick. Never sooner than
         * 100 ms, so entries another process holds cannot make this spin. */
        int64_t next = atomic_load(&rq->stopping) ? 0 : next_due(rq);
        if (next > 0) {
            int64_t soon = clock_now_ms() + 100;
            wake_at_least(rq, next > soon ? next : soon);
        }
        pthread_mutex_lock(&rq->wake_mu);
    }
    pthread_mutex_unlock(&rq->wake_mu);
    return NULL;
}

/* Starts the wake-up; without it (hooks exhausted) entries still run at the next tick. */
static void start_waker(retry_queue *rq)
{
    err e = {0};
    if (pthread_create(&rq->waker, NULL, waker_main, rq) != 0) {
        log_warn("retry queue: no wake-up thread; entries run at the next tick");
        return;
    }
    rq->waker_started = true;
    if (db_on_commit(rq->db, wake_hook, rq, &e) == 0)
        rq->hook_added = true;
    else
        log_warn("retry queue: no commit hook for the wake-up; entries run at the next tick",
                 "reason", e.msg);
}

/* ---- repeatable jobs ---------------------------------------------------------------- */

static int process_job(bus_delivery *dl, void *ctx, err *e)
{
    (void)dl;
    retry_queue *rq = ctx;
    int ran = 0;
    int rc = retry_process_due(rq, 0, 0, &ran, e);
    if (rc)
        log_error("retry queue processing failed", "reason", e ? e->msg : "");
    return rc;
}

static int cleanup_job(bus_delivery *dl, void *ctx, err *e)
{
    (void)dl;
    retry_queue *rq = ctx;
    int64_t removed = 0;
    int rc = retry_cleanup(rq->db, clock_now_ms(), RETRY_KEEP_COMPLETED_MS, &removed, e);
    if (rc == 0) {
        char n[24];
        snprintf(n, sizeof n, "%lld", (long long)removed);
        log_info("old completed retry entries removed", "count", n);
    }
    return rc;
}

int retry_schedule(retry_queue *rq, bus *b, bus_store *s, int64_t interval_ms, err *e)
{
    const char *svc = bus_service_name(bus_self(b));
    snprintf(rq->process_queue, sizeof rq->process_queue, "%s@%s", RETRY_PROCESS_JOB, svc);
    snprintf(rq->cleanup_queue, sizeof rq->cleanup_queue, "%s@%s", RETRY_CLEANUP_JOB, svc);
    bus_worker *w = bus_worker_of(b);
    /* The bus default lease (30 s): the bus renews it every lease/3 while a run goes on, so
     * a long run keeps it and a killed process's run is taken over within 30 s. */
    bus_queue_opts one = {.concurrency = 1};
    int rc = bus_worker_register(w, rq->process_queue, process_job, rq, &one, e);
    rc = rc ? rc : bus_worker_register(w, rq->cleanup_queue, cleanup_job, rq, &one, e);
    if (rc)
        return rc;
    int64_t now = clock_now_ms();
    bus_repeatable proc = {.queue = rq->process_queue,
                           .repeat_id = "retry-process",
                           .name = RETRY_PROCESS_JOB,
                           .data = "{}",
                           .every_ms = interval_ms > 0 ? interval_ms : RETRY_DEFAULT_INTERVAL_MS};
    bus_repeatable clean = {.queue = rq->cleanup_queue,
                            .repeat_id = "retry-cleanup",
                            .name = RETRY_CLEANUP_JOB,
                            .data = "{}",
                            .every_ms = RETRY_CLEANUP_INTERVAL_MS};
    rc = bus_store_repeatable_upsert(s, &proc, now, e);
    rc = rc ? rc : bus_store_repeatable_upsert(s, &clean, now, e);
    if (rc == 0 && !rq->waker_started)
        start_waker(rq);
    return rc;
}
