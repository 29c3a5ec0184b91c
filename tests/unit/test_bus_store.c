/* F3_TEST: backends
 * test_bus_store.c - the SQL job queue store (src/bus/queue_sql.c) on SQLite and PostgreSQL
 * (argv[1]): transactional adds, claim order, leases, retries with backoff, the dead-letter
 * set, stalled jobs, retention, operations, repeatables, concurrency and wakeups.
 */
#include "support/f3test_db.h"

#include "bus/queue.h"
#include "core/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

#define T0 1700000000000LL /* a fixed "now" the tests move by hand */
#define Q  "order.created@print-service"

static bool is_pg(void)
{
    return strcmp(backend, "postgres") == 0;
}

typedef struct fx {
    char *url;
    db *d;
    bus_store *s;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->url = f3test_db_url(backend);
    err e = {0};
    if (db_open(f->url, NULL, &f->d, &e) != 0 || db_migrate(f->d, NULL, &e) != 0)
        fail_msg("%s: %s", f->url, e.msg);
    if (bus_store_open_sql(f->d, &f->s, &e) != 0)
        fail_msg("bus_store_open_sql: %s", e.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    bus_store_close(f->s);
    db_close(f->d);
    f3test_db_drop(f->url);
    free(f->url);
    free(f);
    return 0;
}

/* ---- helpers -------------------------------------------------------------------------- */

static void add_ok(bus_store *s, const char *id, const bus_job_opts *base, int64_t now)
{
    bus_job_opts o = base ? *base : (bus_job_opts){0};
    o.job_id = id;
    err e = {0};
    bool added = false;
    if (bus_store_add(s, NULL, Q, "order.created", "{\"n\":1}", &o, now, &added, &e) != 0)
        fail_msg("add %s: %s", id ? id : "(generated)", e.msg);
    assert_true(added);
}

/* Claims up to max jobs; returns how many, ids copied into ids[] (may be NULL). */
static size_t claim(bus_store *s, int max, const char *token, int64_t now, bus_job ***jobs)
{
    err e = {0};
    bus_job **got = NULL;
    size_t n = 0;
    if (bus_store_claim(s, Q, max, token, 30000, now, &got, &n, &e) != 0)
        fail_msg("claim: %s", e.msg);
    if (jobs)
        *jobs = got;
    else
        bus_jobs_free(got, n);
    return n;
}

/* Claims exactly one job and checks its id. */
static void claim_one(bus_store *s, const char *want_id, const char *token, int64_t now)
{
    bus_job **jobs = NULL;
    size_t n = claim(s, 1, token, now, &jobs);
    if (n != 1)
        fail_msg("expected to claim %s, claimed %zu jobs", want_id, n);
    assert_string_equal(jobs[0]->id, want_id);
    bus_jobs_free(jobs, n);
}

static bus_job *get_ok(bus_store *s, const char *id, int64_t now)
{
    bus_job *j = NULL;
    err e = {0};
    if (bus_store_get(s, Q, id, now, &j, &e) != 0)
        fail_msg("get %s: %s", id, e.msg);
    return j;
}

static bus_counts counts_ok(bus_store *s, int64_t now)
{
    bus_counts c;
    err e = {0};
    if (bus_store_counts(s, Q, now, &c, &e) != 0)
        fail_msg("counts: %s", e.msg);
    return c;
}

/* ---- adding --------------------------------------------------------------------------- */

static void test_add_joins_the_callers_transaction(void **state)
{
    fx *f = *state;
    err e = {0};
    db_conn *c = db_acquire(f->d, &e);
    assert_non_null(c);

    assert_int_equal(db_begin(c, &e), 0);
    bool added = false;
    bus_job_opts o = {.job_id = "ev-1"};
    assert_int_equal(bus_store_add(f->s, c, Q, "order.created", "{}", &o, T0, &added, &e), 0);
    assert_true(added);
    assert_int_equal(db_rollback(c, &e), 0);
    assert_int_equal(claim(f->s, 10, "w1", T0, NULL), 0);
    assert_int_equal(bus_store_get(f->s, Q, "ev-1", T0, &(bus_job *){NULL}, &e), F3_ENOTFOUND);

    assert_int_equal(db_begin(c, &e), 0);
    assert_int_equal(bus_store_add(f->s, c, Q, "order.created", "{}", &o, T0, &added, &e), 0);
    assert_int_equal(db_commit(c, &e), 0);
    db_release(c);
    claim_one(f->s, "ev-1", "w1", T0);
}

static void test_duplicate_id_is_ignored(void **state)
{
    fx *f = *state;
    err e = {0};
    add_ok(f->s, "ev-1", NULL, T0);
    bool added = true;
    bus_job_opts o = {.job_id = "ev-1"};
    assert_int_equal(
        bus_store_add(f->s, NULL, Q, "order.created", "{\"other\":2}", &o, T0 + 5, &added, &e), 0);
    assert_false(added);
    bus_job *j = get_ok(f->s, "ev-1", T0);
    assert_string_equal(j->data, "{\"n\":1}"); /* the first add's data stays */
    bus_job_free(j);
    /* Also once it is finished: a redelivered event is not run twice. */
    claim_one(f->s, "ev-1", "w1", T0);
    assert_int_equal(bus_store_complete(f->s, NULL, Q, "ev-1", "w1", NULL, T0, &e), 0);
    assert_int_equal(bus_store_add(f->s, NULL, Q, "order.created", "{}", &o, T0 + 9, &added, &e),
                     0);
    assert_false(added);
    /* The same id in another queue is another job (fan-out: one queue per subscriber). */
    assert_int_equal(bus_store_add(f->s, NULL, "order.created@shipping-service", "order.created",
                                   "{}", &o, T0, &added, &e),
                     0);
    assert_true(added);
}

static void test_add_rejects_bad_input(void **state)
{
    fx *f = *state;
    err e = {0};
    assert_int_equal(bus_store_add(f->s, NULL, "", "n", "{}", NULL, T0, NULL, &e), F3_EINVAL);
    assert_int_equal(bus_store_add(f->s, NULL, Q, "n", "{not json", NULL, T0, NULL, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "JSON"));
    assert_int_equal(bus_store_add(f->s, NULL, Q, "", "{}", NULL, T0, NULL, &e), F3_EINVAL);
    bus_job_opts o = {.priority = BUS_PRIORITY_MAX + 1};
    assert_int_equal(bus_store_add(f->s, NULL, Q, "n", "{}", &o, T0, NULL, &e), F3_EINVAL);
    o = (bus_job_opts){.delay_ms = -1};
    assert_int_equal(bus_store_add(f->s, NULL, Q, "n", "{}", &o, T0, NULL, &e), F3_EINVAL);
    /* A generated id is a UUID. */
    bool added = false;
    assert_int_equal(bus_store_add(f->s, NULL, Q, "n", "{}", NULL, T0, &added, &e), 0);
    assert_true(added);
    bus_job **jobs = NULL;
    assert_int_equal(claim(f->s, 5, "w", T0, &jobs), 1);
    assert_int_equal(strlen(jobs[0]->id), 36);
    bus_jobs_free(jobs, 1);
}

/* ---- claim order ---------------------------------------------------------------------- */

static void test_fifo(void **state)
{
    fx *f = *state;
    char id[16];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "j%02d", i);
        add_ok(f->s, id, NULL, T0); /* same millisecond: the order of adding decides */
    }
    bus_job **jobs = NULL;
    assert_int_equal(claim(f->s, 5, "w", T0, &jobs), 5);
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "j%02d", i);
        assert_string_equal(jobs[i]->id, id);
    }
    bus_jobs_free(jobs, 5);
    for (int i = 5; i < 20; i++) {
        snprintf(id, sizeof id, "j%02d", i);
        claim_one(f->s, id, "w", T0);
    }
    assert_int_equal(claim(f->s, 5, "w", T0, NULL), 0);
}

static void test_priorities_follow_bullmq(void **state)
{
    fx *f = *state;
    add_ok(f->s, "p5", &(bus_job_opts){.priority = 5}, T0);
    add_ok(f->s, "none-a", NULL, T0);
    add_ok(f->s, "p1", &(bus_job_opts){.priority = 1}, T0);
    add_ok(f->s, "p5-later", &(bus_job_opts){.priority = 5}, T0);
    add_ok(f->s, "none-b", NULL, T0);
    bus_counts c = counts_ok(f->s, T0);
    assert_int_equal(c.n[BUS_STATE_WAITING], 2);
    assert_int_equal(c.n[BUS_STATE_PRIORITIZED], 3);
    /* BullMQ fetches its wait list (priority 0) before the prioritized set; within that
     * set 1 is highest, and equal priorities run in order of adding. */
    const char *want[] = {"none-a", "none-b", "p1", "p5", "p5-later"};
    bus_job **jobs = NULL;
    assert_int_equal(claim(f->s, 10, "w", T0, &jobs), 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(jobs[i]->id, want[i]);
    bus_jobs_free(jobs, 5);
}

static void test_delayed_jobs_wait_for_their_time(void **state)
{
    fx *f = *state;
    add_ok(f->s, "later", &(bus_job_opts){.delay_ms = 5000}, T0);
    add_ok(f->s, "now", NULL, T0 + 1);
    bus_counts c = counts_ok(f->s, T0 + 1);
    assert_int_equal(c.n[BUS_STATE_DELAYED], 1);
    assert_int_equal(c.n[BUS_STATE_WAITING], 1);
    claim_one(f->s, "now", "w", T0 + 1);
    assert_int_equal(claim(f->s, 10, "w", T0 + 4999, NULL), 0);
    bus_job *j = get_ok(f->s, "later", T0 + 4999);
    assert_int_equal(j->state, BUS_STATE_DELAYED);
    assert_int_equal(j->run_at, T0 + 5000);
    bus_job_free(j);
    claim_one(f->s, "later", "w", T0 + 5000);
}

/* ---- leases, completion, failure ------------------------------------------------------ */

static void test_claim_takes_a_lease(void **state)
{
    fx *f = *state;
    err e = {0};
    add_ok(f->s, "a", NULL, T0);
    bus_job **jobs = NULL;
    size_t n = 0;
    assert_int_equal(bus_store_claim(f->s, Q, 3, "tok-1", 1500, T0 + 10, &jobs, &n, &e), 0);
    assert_int_equal(n, 1);
    bus_job *j = jobs[0];
    assert_int_equal(j->state, BUS_STATE_ACTIVE);
    assert_string_equal(j->queue, Q);
    assert_string_equal(j->name, "order.created");
    assert_string_equal(j->data, "{\"n\":1}");
    assert_string_equal(j->lock_token, "tok-1");
    assert_int_equal(j->lock_until, T0 + 1510);
    assert_int_equal(j->attempts_started, 1);
    assert_int_equal(j->attempts_made, 0);
    assert_int_equal(j->max_attempts, BUS_DEFAULT_ATTEMPTS);
    assert_int_equal(j->processed_at, T0 + 10);
    assert_string_equal(j->errors, "[]");
    bus_jobs_free(jobs, n);
    assert_int_equal(claim(f->s, 3, "tok-2", T0 + 20, NULL), 0); /* held */

    assert_int_equal(bus_store_extend(f->s, Q, "a", "tok-1", 5000, T0 + 1000, &e), 0);
    j = get_ok(f->s, "a", T0);
    assert_int_equal(j->lock_until, T0 + 6000);
    bus_job_free(j);
    assert_int_equal(bus_store_extend(f->s, Q, "a", "wrong", 5000, T0 + 1000, &e), F3_ENOTFOUND);
    assert_int_equal(bus_store_extend(f->s, Q, "nope", "tok-1", 5000, T0, &e), F3_ENOTFOUND);
    assert_int_equal(bus_store_claim(f->s, Q, 0, "t", 1000, T0, &jobs, &n, &e), F3_EINVAL);
    assert_int_equal(bus_store_claim(f->s, Q, 1, "", 1000, T0, &jobs, &n, &e), F3_EINVAL);
}

static void test_complete(void **state)
{
    fx *f = *state;
    err e = {0};
    add_ok(f->s, "a", NULL, T0);
    claim_one(f->s, "a", "tok", T0);
    assert_int_equal(bus_store_complete(f->s, NULL, Q, "a", "wrong", NULL, T0 + 5, &e),
                     F3_ENOTFOUND);
    assert_int_equal(bus_store_complete(f->s, NULL, Q, "a", "tok", "{\"ok\":true}", T0 + 5, &e), 0);
    bus_job *j = get_ok(f->s, "a", T0 + 5);
    assert_int_equal(j->state, BUS_STATE_COMPLETED);
    assert_int_equal(j->finished_at, T0 + 5);
    assert_int_equal(j->attempts_made, 1);
    assert_string_equal(j->return_value, "{\"ok\":true}");
    assert_null(j->lock_token);
    bus_job_free(j);
    /* Completing twice: the lock is gone. */
    assert_int_equal(bus_store_complete(f->s, NULL, Q, "a", "tok", NULL, T0 + 6, &e), F3_ENOTFOUND);
    bus_counts c = counts_ok(f->s, T0 + 6);
    assert_int_equal(c.n[BUS_STATE_COMPLETED], 1);
    assert_int_equal(c.n[BUS_STATE_ACTIVE], 0);
}

static void test_completions_batch_in_one_transaction(void **state)
{
    fx *f = *state;
    err e = {0};
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "b%d", i);
        add_ok(f->s, id, NULL, T0);
    }
    assert_int_equal(claim(f->s, 3, "tok", T0, NULL), 3);
    db_conn *c = db_acquire(f->d, &e);
    assert_int_equal(db_begin(c, &e), 0);
    assert_int_equal(bus_store_complete(f->s, c, Q, "b0", "tok", NULL, T0, &e), 0);
    assert_int_equal(bus_store_complete(f->s, c, Q, "b1", "tok", NULL, T0, &e), 0);
    assert_int_equal(db_rollback(c, &e), 0); /* nothing happened */
    assert_int_equal(counts_ok(f->s, T0).n[BUS_STATE_ACTIVE], 3);
    assert_int_equal(db_begin(c, &e), 0);
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "b%d", i);
        assert_int_equal(bus_store_complete(f->s, c, Q, id, "tok", NULL, T0, &e), 0);
    }
    assert_int_equal(db_commit(c, &e), 0);
    db_release(c);
    assert_int_equal(counts_ok(f->s, T0).n[BUS_STATE_COMPLETED], 3);
}

static void test_retries_back_off_then_dead_letter(void **state)
{
    fx *f = *state;
    err e = {0};
    add_ok(f->s, "a", NULL, T0);
    int64_t now = T0;
    const int64_t want_delay[] = {1000, 2000};
    for (int attempt = 1; attempt <= 3; attempt++) {
        claim_one(f->s, "a", "tok", now);
        char reason[32];
        snprintf(reason, sizeof reason, "boom %d", attempt);
        bus_fail_result r;
        assert_int_equal(
            bus_store_fail(f->s, NULL, Q, "a", "tok", reason, BUS_FAIL_RETRY, now, &r, &e), 0);
        bus_job *j = get_ok(f->s, "a", now);
        assert_int_equal(j->attempts_made, attempt);
        assert_string_equal(j->failed_reason, reason);
        if (attempt < 3) {
            assert_int_equal(r, BUS_RETRY_SCHEDULED);
            assert_int_equal(j->state, BUS_STATE_DELAYED);
            assert_int_equal(j->run_at, now + want_delay[attempt - 1]);
            assert_int_equal(claim(f->s, 1, "tok", j->run_at - 1, NULL), 0);
            now = j->run_at;
        } else {
            assert_int_equal(r, BUS_DEAD_LETTERED);
            assert_int_equal(j->state, BUS_STATE_FAILED);
            assert_int_equal(j->finished_at, now);
            json_error_t je;
            json_t *errors = json_loads(j->errors, 0, &je);
            assert_non_null(errors);
            assert_int_equal(json_array_size(errors), 3);
            for (size_t i = 0; i < 3; i++) {
                json_t *x = json_array_get(errors, i);
                assert_int_equal(json_integer_value(json_object_get(x, "attempt")), i + 1);
                char want[32];
                snprintf(want, sizeof want, "boom %zu", i + 1);
                assert_string_equal(json_string_value(json_object_get(x, "error")), want);
                assert_true(json_integer_value(json_object_get(x, "at")) >= T0);
            }
            json_decref(errors);
        }
        bus_job_free(j);
    }
    assert_int_equal(counts_ok(f->s, now).n[BUS_STATE_FAILED], 1);
    /* The third delay of the default backoff, for a job allowed more attempts. */
    bus_backoff b = {BUS_BACKOFF_EXPONENTIAL, 0};
    assert_int_equal(bus_backoff_delay(&b, 1), 1000);
    assert_int_equal(bus_backoff_delay(&b, 2), 2000);
    assert_int_equal(bus_backoff_delay(&b, 3), 4000);
}

static void test_four_attempts_wait_one_two_four_seconds(void **state)
{
    fx *f = *state;
    err e = {0};
    add_ok(f->s, "a", &(bus_job_opts){.attempts = 4}, T0);
    int64_t now = T0;
    const int64_t want[] = {1000, 2000, 4000};
    for (int i = 0; i < 3; i++) {
        claim_one(f->s, "a", "tok", now);
        assert_int_equal(
            bus_store_fail(f->s, NULL, Q, "a", "tok", "x", BUS_FAIL_RETRY, now, NULL, &e), 0);
        bus_job *j = get_ok(f->s, "a", now);
        assert_int_equal(j->run_at - now, want[i]);
        now = j->run_at;
        bus_job_free(j);
    }
}

static void test_fixed_backoff_and_permanent_failure(void **state)
{
    fx *f = *state;
    err e = {0};
    bus_job_opts o = {.attempts = 5, .backoff = {BUS_BACKOFF_FIXED, 250}};
    add_ok(f->s, "fixed", &o, T0);
    int64_t now = T0;
    for (int i = 0; i < 3; i++) {
        claim_one(f->s, "fixed", "tok", now);
        assert_int_equal(
            bus_store_fail(f->s, NULL, Q, "fixed", "tok", "x", BUS_FAIL_RETRY, now, NULL, &e), 0);
        bus_job *j = get_ok(f->s, "fixed", now);
        assert_int_equal(j->run_at, now + 250);
        assert_int_equal(j->backoff.type, BUS_BACKOFF_FIXED);
        now = j->run_at;
        bus_job_free(j);
    }
    claim_one(f->s, "fixed", "tok", now);
    bus_fail_result r = BUS_RETRY_SCHEDULED;
    assert_int_equal(bus_store_fail(f->s, NULL, Q, "fixed", "tok", "HTTP 422: bad address",
                                    BUS_FAIL_PERMANENT, now, &r, &e),
                     0);
    assert_int_equal(r, BUS_DEAD_LETTERED);
    bus_job *j = get_ok(f->s, "fixed", now);
    assert_int_equal(j->state, BUS_STATE_FAILED);
    assert_int_equal(j->attempts_made, 4);
    assert_string_equal(j->failed_reason, "HTTP 422: bad address");
    bus_job_free(j);
    /* A failure of a job not held with the token changes nothing. */
    assert_int_equal(
        bus_store_fail(f->s, NULL, Q, "fixed", "tok", "x", BUS_FAIL_RETRY, now, NULL, &e),
        F3_ENOTFOUND);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    log_set_level(LOG_ERROR);
    (void)is_pg;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_joins_the_callers_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_id_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_rejects_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priorities_follow_bullmq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delayed_jobs_wait_for_their_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_takes_a_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_completions_batch_in_one_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_back_off_then_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_four_attempts_wait_one_two_four_seconds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fixed_backoff_and_permanent_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
