/* F3_TEST: backends
 * test_retry.c - the retry queue: backoff schedule and jitter bounds, claiming only the
 * registered types, outcomes (success, transient with backoff, permanent, exhaustion with
 * RETRY_EXHAUSTED and an alert queued, no alert about a failing alert), a handler's advice
 * (Retry-After, its own alert), dedupe and retry_exists, the manual flag, the lease of a
 * dead processor, cleanup of old entries, the manual retry and its HTTP API, tenant
 * isolation, and claim exclusivity between two database handles.
 */
#include "support/f3test.h"
#include "support/f3test_db.h"
#include "support/f3test_http.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/uuid.h"
#include "http/request.h"
#include "http/server.h"
#include "services/access/user_context.h"
#include "services/common/notify.h"
#include "services/common/retry.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

typedef f3test_dbfx fx;

static double half(void *ctx)
{
    (void)ctx;
    return 0.5;
}

static int setup(void **state)
{
    fx *f = f3test_dbfx_open(backend, true);
    err e = {0};
    assert_int_equal(db_exec(f->c,
                             "INSERT INTO tenants (id, name, slug, created_at, updated_at) VALUES "
                             "('t1', 'Shop', 'shop', 0, 0), ('t2', 'Other', 'other', 0, 0)",
                             &e),
                     0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    f3test_dbfx_close(*state);
    return 0;
}

static int64_t count(fx *f, const char *sql, const char *param)
{
    err e = {0};
    db_stmt *s = db_prepare_texts(f->c, sql, &param, param ? 1 : 0, &e);
    assert_non_null(s);
    assert_int_equal(db_step(s, &e), DB_ROW);
    int64_t n = db_col_int64(s, 0);
    db_finalize(s);
    return n;
}

/* Text column `col` of the entry (caller frees). */
static char *entry_col(fx *f, const char *id, const char *col)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT %s FROM retry_queue WHERE id = $1", col);
    err e = {0};
    db_stmt *s = db_prepare_texts(f->c, sql, &id, 1, &e);
    assert_non_null(s);
    assert_int_equal(db_step(s, &e), DB_ROW);
    const char *v = db_col_text(s, 0);
    char *out = v ? strdup(v) : NULL;
    db_finalize(s);
    return out;
}

static void expect_col(fx *f, const char *id, const char *col, const char *want)
{
    char *v = entry_col(f, id, col);
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
}

static int64_t entry_int(fx *f, const char *id, const char *col)
{
    char *v = entry_col(f, id, col);
    int64_t n = v ? strtoll(v, NULL, 10) : -1;
    free(v);
    return n;
}

static void enqueue(fx *f, const char *tenant, retry_type type, int max, int64_t now, char *id,
                    int n)
{
    json_t *p = json_pack("{s:s, s:i}", "orderId", "o-1", "n", n);
    retry_enqueue_opts o = {.tenant_id = tenant,
                            .type = type,
                            .payload = p,
                            .max_attempts = max,
                            .delay_ms = 0,
                            .now_ms = now};
    err e = {0};
    assert_int_equal(db_begin(f->c, &e), 0);
    assert_int_equal(retry_enqueue_with(f->c, &o, id, &e), 0);
    assert_int_equal(db_commit(f->c, &e), 0);
    json_decref(p);
}

/* A handler that returns a scripted result and remembers what it saw. */
typedef struct script {
    int result;
    atomic_int calls;
    int last_attempt;
    char tenant[16];
    int64_t n;
} script;

static int scripted(const retry_entry *en, void *ctx, err *e)
{
    script *s = ctx;
    atomic_fetch_add(&s->calls, 1);
    s->last_attempt = en->attempt;
    snprintf(s->tenant, sizeof s->tenant, "%s", en->tenant_id);
    json_get_int(en->payload, "n", &s->n, NULL);
    if (s->result)
        return err_set(e, s->result, "provider said no (%d)", en->attempt);
    return 0;
}

static retry_queue *queue_with(fx *f, retry_type type, script *s)
{
    retry_opts o = {.random = half};
    retry_queue *rq = retry_new(f->d, &o);
    assert_non_null(rq);
    err e = {0};
    assert_int_equal(retry_register(rq, type, scripted, s, &e), 0);
    return rq;
}

/* ---- backoff ---------------------------------------------------------------------------- */

static void test_backoff_schedule_and_jitter(void **state)
{
    (void)state;
    assert_int_equal(retry_backoff_ms(1, 0.5), 1000);
    assert_int_equal(retry_backoff_ms(2, 0.5), 2000);
    assert_int_equal(retry_backoff_ms(3, 0.5), 4000);
    assert_int_equal(retry_backoff_ms(5, 0.5), 16000);
    assert_int_equal(retry_backoff_ms(12, 0.5), 2048000);
    assert_int_equal(retry_backoff_ms(13, 0.5), 3600000); /* capped at 1 h */
    assert_int_equal(retry_backoff_ms(1000, 0.5), 3600000);
    assert_int_equal(retry_backoff_ms(0, 0.5), 1000);
    assert_int_equal(retry_backoff_ms(1, 0.0), 900);
    assert_int_equal(retry_backoff_ms(1, 1.0), 1100);
    assert_int_equal(retry_backoff_ms(13, 0.0), 3240000);
    assert_int_equal(retry_backoff_ms(13, 1.0), 3960000);
    assert_int_equal(retry_backoff_ms(4, -3.0), 7200); /* clamped */
    assert_int_equal(retry_backoff_ms(4, 7.0), 8800);
    for (int a = 1; a <= 20; a++)
        for (int i = 0; i <= 100; i++) {
            int64_t base = a >= 13 ? 3600000 : (int64_t)1000 << (a - 1);
            int64_t d = retry_backoff_ms(a, i / 100.0);
            assert_true(d * 10 >= base * 9 && d * 10 <= base * 11);
        }
}

/* ---- enqueue and outcomes --------------------------------------------------------------- */

static void test_enqueue_validates(void **state)
{
    fx *f = *state;
    err e = {0};
    json_t *p = json_object();
    assert_int_equal(retry_enqueue(f->c, NULL, RETRY_FULFILLMENT, p, &e), F3_EINVAL);
    assert_int_equal(retry_enqueue(f->c, "t1", (retry_type)42, p, &e), F3_EINVAL);
    assert_int_equal(retry_enqueue(f->c, "t1", RETRY_FULFILLMENT, NULL, &e), F3_EINVAL);
    retry_enqueue_opts o = {
        .tenant_id = "t1", .type = RETRY_FULFILLMENT, .payload = p, .max_attempts = 1000};
    assert_int_equal(retry_enqueue_with(f->c, &o, NULL, &e), F3_EINVAL);
    assert_int_equal(retry_type_parse("NOTIFICATION"), RETRY_NOTIFICATION);
    assert_int_equal(retry_type_parse("nope"), -1);
    /* Defaults: 5 attempts, due in 1 s. */
    char id[UUID_STR_LEN];
    o = (retry_enqueue_opts){
        .tenant_id = "t1", .type = RETRY_FULFILLMENT, .payload = p, .delay_ms = -1, .now_ms = 5000};
    assert_int_equal(retry_enqueue_with(f->c, &o, id, &e), 0);
    assert_int_equal(entry_int(f, id, "max_attempts"), 5);
    assert_int_equal(entry_int(f, id, "next_attempt_at"), 6000);
    expect_col(f, id, "status", "PENDING");
    json_decref(p);
}

static void test_success_runs_only_registered_due_types(void **state)
{
    fx *f = *state;
    int64_t t0 = clock_now_ms();
    char ful[UUID_STR_LEN], note[UUID_STR_LEN], later[UUID_STR_LEN];
    enqueue(f, "t1", RETRY_FULFILLMENT, 5, t0, ful, 7);
    enqueue(f, "t1", RETRY_NOTIFICATION, 5, t0, note, 8);
    json_t *p = json_pack("{s:i}", "n", 9);
    retry_enqueue_opts o = {.tenant_id = "t2",
                            .type = RETRY_FULFILLMENT,
                            .payload = p,
                            .delay_ms = 60000,
                            .now_ms = t0};
    err e = {0};
    assert_int_equal(retry_enqueue_with(f->c, &o, later, &e), 0);
    json_decref(p);
    script s = {0};
    retry_queue *rq = queue_with(f, RETRY_FULFILLMENT, &s);
    int ran = -1;
    assert_int_equal(retry_process_due(rq, t0, 0, &ran, &e), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(atomic_load(&s.calls), 1);
    assert_int_equal(s.last_attempt, 1);
    assert_int_equal(s.n, 7);
    assert_string_equal(s.tenant, "t1");
    expect_col(f, ful, "status", "COMPLETED");
    assert_int_equal(entry_int(f, ful, "attempts"), 1);
    expect_col(f, note, "status", "PENDING");  /* not this processor's type */
    expect_col(f, later, "status", "PENDING"); /* not due yet */
    assert_int_equal(retry_process_due(rq, t0 + 60000, 0, &ran, &e), 0);
    assert_int_equal(ran, 1);
    assert_string_equal(s.tenant, "t2");
    expect_col(f, later, "status", "COMPLETED");
    retry_free(rq);
}

static void test_transient_failures_back_off_then_exhaust(void **state)
{
    fx *f = *state;
    int64_t t0 = clock_now_ms();
    char id[UUID_STR_LEN];
    enqueue(f, "t1", RETRY_FULFILLMENT, 3, t0, id, 1);
    script s = {.result = F3_ETRANSIENT};
    retry_queue *rq = queue_with(f, RETRY_FULFILLMENT, &s);
    err e = {0};
    int ran = 0;
    assert_int_equal(retry_process_due(rq, t0, 0, &ran, &e), 0);
    assert_int_equal(ran, 1);
    expect_col(f, id, "status", "PENDING");
    expect_col(f, id, "last_error", "provider said no (1)");
    int64_t delay = entry_int(f, id, "next_attempt_at") - entry_int(f, id, "updated_at");
    assert_int_equal(delay, 1000);
    /* Not due again before the backoff has passed. */
    assert_int_equal(retry_process_due(rq, t0, 0, &ran, &e), 0);
    assert_int_equal(ran, 0);
    int64_t far = t0 + 2 * 3600 * 1000;
    assert_int_equal(retry_process_due(rq, far, 1, &ran, &e), 0);
    assert_int_equal(ran, 1);
    delay = entry_int(f, id, "next_attempt_at") - entry_int(f, id, "updated_at");
    assert_int_equal(delay, 2000);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", RETRY_EXHAUSTED_EVENT), 0);
    assert_int_equal(retry_process_due(rq, far, 1, &ran, &e), 0);
    assert_int_equal(atomic_load(&s.calls), 3);
    expect_col(f, id, "status", "FAILED");
    assert_int_equal(entry_int(f, id, "attempts"), 3);
    /* Exhausted: RETRY_EXHAUSTED with payload and last error, and an alert queued. */
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM event_log WHERE event_type = $1 "
                           "AND severity = 'ERROR' AND tenant_id = 't1'",
                           RETRY_EXHAUSTED_EVENT),
                     1);
    const char *sql = "SELECT metadata FROM event_log WHERE event_type = $1";
    const char *arg = RETRY_EXHAUSTED_EVENT;
    db_stmt *st = db_prepare_texts(f->c, sql, &arg, 1, &e);
    assert_int_equal(db_step(st, &e), DB_ROW);
    json_t *meta = NULL;
    assert_int_equal(json_parse(db_col_text(st, 0), strlen(db_col_text(st, 0)), &meta, &e), 0);
    db_finalize(st);
    const char *last = NULL, *order = NULL;
    assert_int_equal(json_get_string(meta, "lastError", &last, &e), 0);
    assert_string_equal(last, "provider said no (3)");
    assert_int_equal(json_get_string(meta, "payload.orderId", &order, &e), 0);
    assert_string_equal(order, "o-1");
    json_decref(meta);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM retry_queue WHERE job_type = 'NOTIFICATION' "
                           "AND tenant_id = 't1' AND payload LIKE $1",
                           "%RETRY_EXHAUSTED%"),
                     1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", NOTIFY_ALERT_EVENT), 1);
    retry_free(rq);
}

static void test_permanent_failure_fails_at_once(void **state)
{
    fx *f = *state;
    int64_t t0 = clock_now_ms();
    char id[UUID_STR_LEN];
    enqueue(f, "t1", RETRY_PRINT_JOB_CREATION, 5, t0, id, 1);
    script s = {.result = F3_EPERMANENT};
    retry_queue *rq = queue_with(f, RETRY_PRINT_JOB_CREATION, &s);
    err e = {0};
    int ran = 0;
    assert_int_equal(retry_process_due(rq, t0, 0, &ran, &e), 0);
    expect_col(f, id, "status", "FAILED");
    assert_int_equal(entry_int(f, id, "attempts"), 1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", RETRY_EXHAUSTED_EVENT), 1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM retry_queue WHERE job_type = $1", "NOTIFICATION"), 1);
    retry_free(rq);
}

/* A handler that advises: a Retry-After, or that it alerted itself; remembers `manual`. */
typedef struct advising {
    int result;
    int64_t retry_after_ms;
    bool alerted;
    bool saw_manual;
    int calls;
} advising;

static int advise(const retry_entry *en, void *ctx, err *e)
{
    advising *a = ctx;
    a->calls++;
    a->saw_manual = en->manual;
    en->advice->retry_after_ms = a->retry_after_ms;
    en->advice->alerted = a->alerted;
    return a->result ? err_set(e, a->result, "provider busy") : 0;
}

static void test_advice_dedupe_and_manual(void **state)
{
    fx *f = *state;
    err e = {0};
    advising a = {.result = F3_ETRANSIENT, .retry_after_ms = 45000};
    retry_opts o = {.random = half};
    retry_queue *rq = retry_new(f->d, &o);
    assert_non_null(rq);
    assert_int_equal(retry_register(rq, RETRY_CANCELLATION, advise, &a, &e), 0);
    int64_t t0 = clock_now_ms();
    /* dedupe: a second enqueue of an equal payload while one is PENDING adds nothing. */
    json_t *p = json_pack("{s:s,s:I}", "printJobId", "pj-1", "queueItemId", (json_int_t)77);
    retry_enqueue_opts eo = {.tenant_id = "t1",
                             .type = RETRY_CANCELLATION,
                             .payload = p,
                             .max_attempts = 2,
                             .delay_ms = 0,
                             .now_ms = t0,
                             .dedupe = true};
    char id[UUID_STR_LEN], id2[UUID_STR_LEN];
    assert_int_equal(db_begin(f->c, &e), 0);
    assert_int_equal(retry_enqueue_with(f->c, &eo, id, &e), 0);
    assert_int_equal(retry_enqueue_with(f->c, &eo, id2, &e), 0);
    assert_int_equal(db_commit(f->c, &e), 0);
    assert_string_equal(id, id2);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue", NULL), 1);
    /* Another tenant's or another payload's entry is not a duplicate. */
    eo.tenant_id = "t2";
    assert_int_equal(retry_enqueue_with(f->c, &eo, NULL, &e), 0);
    eo.tenant_id = "t1";
    json_t *other = json_pack("{s:s,s:I}", "printJobId", "pj-2", "queueItemId", (json_int_t)78);
    eo.payload = other;
    assert_int_equal(retry_enqueue_with(f->c, &eo, NULL, &e), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue", NULL), 3);
    bool found = false;
    assert_int_equal(retry_exists(f->c, "t1", RETRY_CANCELLATION, p, RETRY_ST_PENDING, &found, &e),
                     0);
    assert_true(found);
    assert_int_equal(retry_exists(f->c, "t1", RETRY_CANCELLATION, p, RETRY_ST_FAILED, &found, &e),
                     0);
    assert_false(found);
    assert_int_equal(retry_exists(f->c, "t1", RETRY_FULFILLMENT, p, RETRY_ST_PENDING, &found, &e),
                     0);
    assert_false(found);
    /* Only entry `id` from here on. */
    assert_int_equal(db_exec(f->c,
                             "DELETE FROM retry_queue WHERE tenant_id = 't2' OR payload"
                             " LIKE '%pj-2%'",
                             &e),
                     0);

    /* Retry-After longer than the backoff (1 s) sets the next attempt. */
    int ran = 0;
    assert_int_equal(retry_process_due(rq, t0, 0, &ran, &e), 0);
    assert_int_equal(ran, 1);
    int64_t wait = entry_int(f, id, "next_attempt_at") - entry_int(f, id, "updated_at");
    assert_int_equal(wait, 45000);
    assert_false(a.saw_manual);
    /* Shorter than the backoff: the backoff (2 s at attempt 2 - but 2 is the last) wins;
     * here the last attempt fails with the handler's own alert: RETRY_EXHAUSTED is logged,
     * no alert is queued. */
    a.retry_after_ms = 10;
    a.alerted = true;
    assert_int_equal(retry_process_due(rq, t0 + 3600000, 1, &ran, &e), 0);
    assert_int_equal(ran, 1);
    expect_col(f, id, "status", "FAILED");
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", RETRY_EXHAUSTED_EVENT), 1);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM event_log WHERE event_type = $1 AND metadata"
                           " LIKE '%\"alertedByHandler\":true%'",
                           RETRY_EXHAUSTED_EVENT),
                     1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", NOTIFY_ALERT_EVENT), 0);
    assert_int_equal(retry_exists(f->c, "t1", RETRY_CANCELLATION, p, RETRY_ST_FAILED, &found, &e),
                     0);
    assert_true(found);

    /* A manual retry: the handler is told; a short Retry-After never shortens the backoff. */
    assert_int_equal(retry_manual(f->c, "t1", id, t0, &e), 0);
    a.alerted = false;
    a.retry_after_ms = 10;
    assert_int_equal(retry_process_due(rq, t0 + 3600000, 1, &ran, &e), 0);
    assert_int_equal(ran, 1);
    assert_true(a.saw_manual);
    wait = entry_int(f, id, "next_attempt_at") - entry_int(f, id, "updated_at");
    assert_int_equal(wait, 1000);
    /* A later attempt of it is not manual any more; failing without advice alerts. */
    assert_int_equal(retry_process_due(rq, t0 + 3600000, 1, &ran, &e), 0);
    assert_false(a.saw_manual);
    expect_col(f, id, "status", "FAILED");
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", NOTIFY_ALERT_EVENT), 1);
    assert_int_equal(a.calls, 4);
    retry_free(rq);
    json_decref(p);
    json_decref(other);
}

static void test_failing_notification_raises_no_alert(void **state)
{
    fx *f = *state;
    int64_t t0 = clock_now_ms();
    char id[UUID_STR_LEN];
    enqueue(f, "t1", RETRY_NOTIFICATION, 1, t0, id, 1);
    script s = {.result = F3_ETRANSIENT};
    retry_queue *rq = queue_with(f, RETRY_NOTIFICATION, &s);
    err e = {0};
    int ran = 0;
    assert_int_equal(retry_process_due(rq, t0, 0, &ran, &e), 0);
    assert_int_equal(ran, 1);
    expect_col(f, id, "status", "FAILED");
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", RETRY_EXHAUSTED_EVENT), 1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM retry_queue WHERE job_type = $1", "NOTIFICATION"), 1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", NOTIFY_ALERT_EVENT), 0);
    retry_free(rq);
}

static void test_dead_processor_entry_is_claimed_after_lease(void **state)
{
    fx *f = *state;
    int64_t t0 = clock_now_ms();
    char id[UUID_STR_LEN];
    enqueue(f, "t1", RETRY_FULFILLMENT, 5, t0, id, 1);
    err e = {0};
    char sql[200];
    snprintf(sql, sizeof sql,
             "UPDATE retry_queue SET status = 'PROCESSING', attempts = 1, updated_at = %lld",
             (long long)t0);
    assert_int_equal(db_exec(f->c, sql, &e), 0);
    script s = {0};
    retry_queue *rq = queue_with(f, RETRY_FULFILLMENT, &s);
    int ran = 0;
    assert_int_equal(retry_process_due(rq, t0 + 1000, 0, &ran, &e), 0);
    assert_int_equal(ran, 0); /* its lease (5 min) still runs */
    assert_int_equal(retry_process_due(rq, t0 + RETRY_DEFAULT_LEASE_MS, 0, &ran, &e), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(s.last_attempt, 2);
    expect_col(f, id, "status", "COMPLETED");
    retry_free(rq);
}

static void test_cleanup_removes_old_completed_only(void **state)
{
    fx *f = *state;
    int64_t now = clock_now_ms(), old = now - RETRY_KEEP_COMPLETED_MS - 1000;
    char a[UUID_STR_LEN], b[UUID_STR_LEN], c[UUID_STR_LEN];
    enqueue(f, "t1", RETRY_FULFILLMENT, 5, now, a, 1);
    enqueue(f, "t2", RETRY_FULFILLMENT, 5, now, b, 2);
    enqueue(f, "t1", RETRY_FULFILLMENT, 5, now, c, 3);
    char sql[300];
    snprintf(sql, sizeof sql,
             "UPDATE retry_queue SET status = 'COMPLETED', updated_at = %lld WHERE id IN "
             "('%s', '%s'); UPDATE retry_queue SET status = 'FAILED', updated_at = %lld "
             "WHERE id = '%s'",
             (long long)old, a, b, (long long)old, c);
    err e = {0};
    assert_int_equal(db_exec(f->c, sql, &e), 0);
    enqueue(f, "t1", RETRY_FULFILLMENT, 5, now, c, 4);
    snprintf(sql, sizeof sql, "UPDATE retry_queue SET status = 'COMPLETED' WHERE id = '%s'", c);
    assert_int_equal(db_exec(f->c, sql, &e), 0);
    int64_t removed = 0;
    assert_int_equal(retry_cleanup(f->d, now, 0, &removed, &e), 0);
    assert_int_equal(removed, 2);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE status = $1", "FAILED"), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE status = $1", "COMPLETED"),
                     1);
}

static void test_manual_retry(void **state)
{
    fx *f = *state;
    int64_t t0 = clock_now_ms();
    char id[UUID_STR_LEN];
    enqueue(f, "t1", RETRY_FULFILLMENT, 1, t0, id, 1);
    err e = {0};
    assert_int_equal(retry_manual(f->c, "t1", id, t0, &e), F3_ECONFLICT);
    script s = {.result = F3_ETRANSIENT};
    retry_queue *rq = queue_with(f, RETRY_FULFILLMENT, &s);
    int ran = 0;
    assert_int_equal(retry_process_due(rq, t0, 0, &ran, &e), 0);
    expect_col(f, id, "status", "FAILED");
    assert_int_equal(retry_manual(f->c, "t2", id, t0, &e), F3_ENOTFOUND);
    assert_int_equal(retry_manual(f->c, "t1", id, t0 + 5, &e), 0);
    expect_col(f, id, "status", "PENDING");
    assert_int_equal(entry_int(f, id, "attempts"), 0);
    assert_int_equal(entry_int(f, id, "next_attempt_at"), t0 + 5);
    s.result = 0;
    assert_int_equal(retry_process_due(rq, t0 + 5, 0, &ran, &e), 0);
    expect_col(f, id, "status", "COMPLETED");
    retry_free(rq);
}

static int stop_after_first(const retry_entry *en, void *ctx, err *e)
{
    (void)en;
    (void)e;
    retry_stop(ctx);
    return 0;
}

static void test_stop_hands_unrun_claims_back(void **state)
{
    fx *f = *state;
    int64_t t0 = clock_now_ms();
    for (int i = 0; i < 3; i++)
        enqueue(f, "t1", RETRY_CANCELLATION, 5, t0, NULL, i);
    retry_opts o = {.batch = 3};
    retry_queue *rq = retry_new(f->d, &o);
    err e = {0};
    assert_int_equal(retry_register(rq, RETRY_CANCELLATION, stop_after_first, rq, &e), 0);
    int ran = 0;
    assert_int_equal(retry_process_due(rq, t0, 0, &ran, &e), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE status = $1", "COMPLETED"),
                     1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM retry_queue WHERE status = $1 AND attempts = 0", "PENDING"),
        2);
    retry_free(rq);
}

/* ---- claim exclusivity ------------------------------------------------------------------ */

#define RACE_ENTRIES 40

typedef struct race {
    atomic_int runs[RACE_ENTRIES];
} race;

static int race_handler(const retry_entry *en, void *ctx, err *e)
{
    (void)e;
    race *r = ctx;
    int64_t n = -1;
    json_get_int(en->payload, "n", &n, NULL);
    if (n >= 0 && n < RACE_ENTRIES)
        atomic_fetch_add(&r->runs[n], 1);
    return 0;
}

typedef struct racer {
    db *d;
    race *r;
    int ran;
    int rc;
} racer;

static void *race_thread(void *arg)
{
    racer *x = arg;
    retry_opts o = {.batch = 3};
    retry_queue *rq = retry_new(x->d, &o);
    err e = {0};
    retry_register(rq, RETRY_FULFILLMENT, race_handler, x->r, &e);
    x->rc = retry_process_due(rq, 0, 0, &x->ran, &e);
    retry_free(rq);
    return NULL;
}

static void test_two_handles_never_run_one_entry_twice(void **state)
{
    fx *f = *state;
    int64_t t0 = clock_now_ms();
    for (int i = 0; i < RACE_ENTRIES; i++)
        enqueue(f, i % 2 ? "t1" : "t2", RETRY_FULFILLMENT, 5, t0, NULL, i);
    race r;
    for (int i = 0; i < RACE_ENTRIES; i++)
        atomic_init(&r.runs[i], 0);
    err e = {0};
    db *d2 = NULL;
    assert_int_equal(db_open(f->url, NULL, &d2, &e), 0);
    racer a = {.d = f->d, .r = &r}, b = {.d = d2, .r = &r};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, race_thread, &a);
    pthread_create(&tb, NULL, race_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    db_close(d2);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    assert_int_equal(a.ran + b.ran, RACE_ENTRIES);
    for (int i = 0; i < RACE_ENTRIES; i++)
        assert_int_equal(atomic_load(&r.runs[i]), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE status = $1", "COMPLETED"),
                     RACE_ENTRIES);
}

/* ---- lease renewal ---------------------------------------------------------------------- */

#define SHORT_LEASE_MS 300

typedef struct slow {
    atomic_int runs;
    atomic_bool done;
} slow;

static int slow_handler(const retry_entry *en, void *ctx, err *e)
{
    (void)en;
    (void)e;
    slow *s = ctx;
    atomic_fetch_add(&s->runs, 1);
    f3test_sleep_ms(4 * SHORT_LEASE_MS); /* four leases long */
    return 0;
}

typedef struct slow_run {
    db *d;
    slow *s;
    int ran, rc;
} slow_run;

static void *slow_thread(void *arg)
{
    slow_run *x = arg;
    retry_opts o = {.lease_ms = SHORT_LEASE_MS};
    retry_queue *rq = retry_new(x->d, &o);
    err e = {0};
    retry_register(rq, RETRY_FULFILLMENT, slow_handler, x->s, &e);
    x->rc = retry_process_due(rq, clock_now_ms(), 0, &x->ran, &e);
    retry_free(rq);
    atomic_store(&x->s->done, true);
    return NULL;
}

/* A handler that runs longer than the lease keeps its entry: the heartbeat renews the
 * lease while it runs, so a second processor polling all along never takes it over. */
static void test_running_entry_lease_is_renewed(void **state)
{
    fx *f = *state;
    char id[UUID_STR_LEN];
    enqueue(f, "t1", RETRY_FULFILLMENT, 5, clock_now_ms(), id, 1);
    slow s;
    atomic_init(&s.runs, 0);
    atomic_init(&s.done, false);
    slow_run a = {.d = f->d, .s = &s};
    pthread_t ta;
    assert_int_equal(pthread_create(&ta, NULL, slow_thread, &a), 0);
    while (atomic_load(&s.runs) == 0)
        f3test_sleep_ms(5);
    retry_opts o = {.lease_ms = SHORT_LEASE_MS};
    retry_queue *other = retry_new(f->d, &o);
    assert_non_null(other);
    err e = {0};
    assert_int_equal(retry_register(other, RETRY_FULFILLMENT, slow_handler, &s, &e), 0);
    int polls = 0, taken = 0;
    while (!atomic_load(&s.done)) {
        int ran = 0;
        assert_int_equal(retry_process_due(other, clock_now_ms(), 0, &ran, &e), 0);
        taken += ran;
        polls++;
        f3test_sleep_ms(SHORT_LEASE_MS / 6);
    }
    pthread_join(ta, NULL);
    retry_free(other);
    assert_int_equal(taken, 0);
    assert_true(polls >= 8); /* it looked throughout the four leases */
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.ran, 1);
    assert_int_equal(atomic_load(&s.runs), 1);
    expect_col(f, id, "status", "COMPLETED");
}

/* ---- the HTTP API ----------------------------------------------------------------------- */

/* Stands in for the gateway: the caller's tenant and permissions come from headers. */
static int test_guard(http_request *req, const http_route *route, http_response *res, void *ctx)
{
    (void)ctx;
    const char *tenant = http_req_header(req, "x-test-tenant");
    const char *role = http_req_header(req, "x-test-role");
    if (!tenant)
        return http_res_error(res, 401, "Authentication required") == 0 ? 1 : -1;
    user_ctx *u = user_ctx_new("u1", tenant, "op@example.com", role ? role : "viewer", false);
    http_req_set_user(req, u, user_ctx_free);
    if (!user_ctx_can(u, route->access))
        return http_res_error(res, 403, "Forbidden") == 0 ? 1 : -1;
    return 0;
}

static json_t *call(int port, const char *method, const char *path, const char *tenant,
                    const char *role, int want_status)
{
    char raw[512];
    snprintf(raw, sizeof raw,
             "%s %s HTTP/1.1\r\nHost: x\r\nx-test-tenant: %s\r\nx-test-role: %s\r\n"
             "Content-Length: 0\r\nConnection: close\r\n\r\n",
             method, path, tenant, role);
    f3test_http_response r = {0};
    assert_int_equal(f3test_http_request(port, raw, &r), 0);
    if (r.status != want_status)
        fail_msg("%s %s: %d %s", method, path, r.status, r.body);
    json_t *out = NULL;
    err e = {0};
    assert_int_equal(json_parse(r.body, r.body_len, &out, &e), 0);
    f3test_http_response_free(&r);
    return out;
}

static void test_api_lists_and_retries_within_tenant(void **state)
{
    fx *f = *state;
    int64_t t0 = clock_now_ms();
    char failed[UUID_STR_LEN], other[UUID_STR_LEN];
    enqueue(f, "t1", RETRY_FULFILLMENT, 1, t0, failed, 1);
    enqueue(f, "t1", RETRY_CANCELLATION, 5, t0 + 10, NULL, 2);
    enqueue(f, "t2", RETRY_FULFILLMENT, 1, t0, other, 3);
    err e = {0};
    assert_int_equal(db_exec(f->c,
                             "UPDATE retry_queue SET status = 'FAILED', attempts = 1 "
                             "WHERE job_type = 'FULFILLMENT'",
                             &e),
                     0);
    http_router *router = http_router_new();
    assert_int_equal(retry_api_add_routes(router, f->d, &e), 0);
    http_server_opts so = {.host = "127.0.0.1", .threads = 2, .guard = test_guard};
    http_server *srv = http_server_start(router, &so, &e);
    assert_non_null(srv);
    int port = http_server_port(srv);

    json_t *page = call(port, "GET", "/api/v1/retry-queue", "t1", "viewer", 200);
    assert_int_equal(json_integer_value(json_object_get(page, "total")), 2);
    assert_int_equal(json_array_size(json_object_get(page, "data")), 2);
    json_decref(page);
    page = call(port, "GET", "/api/v1/retry-queue?status=FAILED&type=FULFILLMENT", "t1", "viewer",
                200);
    json_t *data = json_object_get(page, "data");
    assert_int_equal(json_array_size(data), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 0), "id")), failed);
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 0), "jobType")),
                        "FULFILLMENT");
    json_decref(page);
    page = call(port, "GET", "/api/v1/retry-queue?limit=1&offset=1", "t1", "viewer", 200);
    assert_int_equal(json_array_size(json_object_get(page, "data")), 1);
    assert_int_equal(json_integer_value(json_object_get(page, "total")), 2);
    json_decref(page);
    json_decref(call(port, "GET", "/api/v1/retry-queue?status=DONE", "t1", "viewer", 400));
    json_decref(call(port, "GET", "/api/v1/retry-queue?limit=0", "t1", "viewer", 400));

    char path[128];
    snprintf(path, sizeof path, "/api/v1/retry-queue/%s/retry", failed);
    json_decref(call(port, "POST", path, "t1", "viewer", 403));   /* needs orders.write */
    json_decref(call(port, "POST", path, "t2", "operator", 404)); /* another tenant's */
    json_t *entry = call(port, "POST", path, "t1", "operator", 200);
    assert_string_equal(json_string_value(json_object_get(entry, "status")), "PENDING");
    assert_int_equal(json_integer_value(json_object_get(entry, "attempts")), 0);
    json_decref(entry);
    json_decref(call(port, "POST", path, "t1", "operator", 409)); /* not FAILED any more */
    json_decref(call(port, "POST", "/api/v1/retry-queue/nope/retry", "t1", "operator", 404));
    snprintf(path, sizeof path, "/api/v1/retry-queue/%s/retry", other);
    json_decref(call(port, "POST", path, "t2", "operator", 200));

    http_server_stop(srv);
    http_router_free(router);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_schedule_and_jitter),
        cmocka_unit_test_setup_teardown(test_enqueue_validates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_runs_only_registered_due_types, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_transient_failures_back_off_then_exhaust, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_permanent_failure_fails_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_notification_raises_no_alert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_advice_dedupe_and_manual, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_processor_entry_is_claimed_after_lease, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cleanup_removes_old_completed_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manual_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_hands_unrun_claims_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_running_entry_lease_is_renewed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_handles_never_run_one_entry_twice, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_api_lists_and_retries_within_tenant, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
