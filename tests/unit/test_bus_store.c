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
#include <time.h>

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

/* One database for the whole suite (creating one per test costs most of the run on
 * PostgreSQL); each test starts from empty queue tables and a fresh store. */
static char *suite_url;

static int suite_setup(void **state)
{
    (void)state;
    suite_url = f3test_db_url(backend);
    err e = {0};
    db *d = NULL;
    if (db_open(suite_url, NULL, &d, &e) != 0 || db_migrate(d, NULL, &e) != 0)
        fail_msg("%s: %s", suite_url, e.msg);
    db_close(d);
    return 0;
}

static int suite_teardown(void **state)
{
    (void)state;
    f3test_db_drop(suite_url);
    free(suite_url);
    return 0;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->url = suite_url;
    err e = {0};
    if (db_open(f->url, NULL, &f->d, &e) != 0)
        fail_msg("%s: %s", f->url, e.msg);
    db_conn *c = db_acquire(f->d, &e);
    assert_non_null(c);
    if (db_exec(c,
                "DELETE FROM bus_jobs; DELETE FROM bus_queues; DELETE FROM bus_repeatables;"
                " DELETE FROM bus_inbox",
                &e) != 0)
        fail_msg("emptying the queue tables: %s", e.msg);
    db_release(c);
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

#define Q2 "order.created@shipping-service"

static void test_add_many_fans_out_once(void **state)
{
    fx *f = *state;
    err e = {0};
    const char *queues[] = {Q, Q2};
    bus_job_opts o = {.job_id = "ev-m"};
    int added = -1;
    assert_int_equal(
        bus_store_add_many(f->s, NULL, queues, 2, "order.created", "{\"n\":1}", &o, T0, &added, &e),
        0);
    assert_int_equal(added, 2);
    bus_job *j = NULL;
    assert_int_equal(bus_store_get(f->s, Q2, "ev-m", T0, &j, &e), 0);
    assert_string_equal(j->data, "{\"n\":1}");
    assert_int_equal(j->max_attempts, BUS_DEFAULT_ATTEMPTS);
    bus_job_free(j);
    claim_one(f->s, "ev-m", "w1", T0);
    /* A re-sent event adds nothing, whichever way it comes. */
    assert_int_equal(
        bus_store_add_many(f->s, NULL, queues, 2, "order.created", "{}", &o, T0, &added, &e), 0);
    assert_int_equal(added, 0);
    /* In a caller's transaction it commits or vanishes with it. */
    db_conn *c = db_acquire(f->d, &e);
    assert_non_null(c);
    bus_job_opts o2 = {.job_id = "ev-n", .delay_ms = 500, .priority = 3};
    assert_int_equal(db_begin(c, &e), 0);
    assert_int_equal(
        bus_store_add_many(f->s, c, queues, 2, "order.created", "{}", &o2, T0, &added, &e), 0);
    assert_int_equal(added, 2);
    assert_int_equal(db_rollback(c, &e), 0);
    assert_int_equal(bus_store_get(f->s, Q, "ev-n", T0, &j, &e), F3_ENOTFOUND);
    db_release(c);
    /* Options travel on the one-statement path too. */
    assert_int_equal(
        bus_store_add_many(f->s, NULL, queues, 2, "order.created", "{}", &o2, T0, &added, &e), 0);
    assert_int_equal(added, 2);
    assert_int_equal(bus_store_get(f->s, Q2, "ev-n", T0, &j, &e), 0);
    assert_int_equal(j->priority, 3);
    assert_int_equal(j->run_at, T0 + 500);
    assert_int_equal((int)j->state, (int)BUS_STATE_DELAYED);
    bus_job_free(j);
    /* Bad input is refused before anything is written. */
    assert_int_equal(
        bus_store_add_many(f->s, NULL, queues, 0, "order.created", "{}", NULL, T0, NULL, &e),
        F3_EINVAL);
    const char *bad[] = {Q, ""};
    assert_int_equal(
        bus_store_add_many(f->s, NULL, bad, 2, "order.created", "{}", NULL, T0, NULL, &e),
        F3_EINVAL);
    assert_int_equal(
        bus_store_add_many(f->s, NULL, queues, 2, "order.created", "not json", NULL, T0, NULL, &e),
        F3_EINVAL);
    bus_counts cn = counts_ok(f->s, T0);
    assert_int_equal(cn.n[BUS_STATE_WAITING] + cn.n[BUS_STATE_DELAYED] + cn.n[BUS_STATE_ACTIVE] +
                         cn.n[BUS_STATE_PRIORITIZED],
                     2); /* ev-m (active) and ev-n in Q */
}

#define PUBLISHERS         6
#define ADDS_PER_PUBLISHER 60

typedef struct publisher {
    bus_store *s;
    int id, failures;
    char msg[ERR_MSG_MAX + 32];
} publisher;

static void *publisher_main(void *arg)
{
    publisher *p = arg;
    const char *queues[] = {Q, Q2};
    for (int i = 0; i < ADDS_PER_PUBLISHER; i++) {
        char id[32];
        snprintf(id, sizeof id, "p%d-%d", p->id, i);
        bus_job_opts o = {.job_id = id};
        err e = {0};
        int added = 0;
        if (bus_store_add_many(p->s, NULL, queues, 2, "order.created", "{}", &o, T0, &added, &e) ||
            added != 2) {
            p->failures++;
            snprintf(p->msg, sizeof p->msg, "%s (added %d)", e.msg, added);
        }
    }
    return NULL;
}

/* Concurrent publishers without a transaction (group commit on SQLite): every job of
 * every publisher is there when its call returned, in both queues. */
static void test_concurrent_add_many_all_durable(void **state)
{
    fx *f = *state;
    pthread_t th[PUBLISHERS];
    publisher p[PUBLISHERS];
    for (int i = 0; i < PUBLISHERS; i++) {
        p[i] = (publisher){.s = f->s, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, publisher_main, &p[i]), 0);
    }
    for (int i = 0; i < PUBLISHERS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < PUBLISHERS; i++)
        if (p[i].failures)
            fail_msg("publisher %d: %d failures, last: %s", i, p[i].failures, p[i].msg);
    assert_int_equal(counts_ok(f->s, T0).n[BUS_STATE_WAITING], PUBLISHERS * ADDS_PER_PUBLISHER);
    bus_counts c2;
    err e = {0};
    assert_int_equal(bus_store_counts(f->s, Q2, T0, &c2, &e), 0);
    assert_int_equal(c2.n[BUS_STATE_WAITING], PUBLISHERS * ADDS_PER_PUBLISHER);
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

/* Complete-and-claim: outcomes recorded with multi-row statements and the next jobs
 * claimed in the same transaction, the claim answering the inbox question. */
static void test_complete_many_and_claim_in_one_transaction(void **state)
{
    fx *f = *state;
    err e = {0};
    char id[16];
    for (int i = 0; i < 45; i++) {
        snprintf(id, sizeof id, "c%02d", i);
        add_ok(f->s, id, NULL, T0);
    }
    bus_job **jobs = NULL;
    assert_int_equal(claim(f->s, 40, "w1", T0, &jobs), 40);
    bus_jobs_free(jobs, 40);
    /* c00 was taken back and is held by w2 now: w1's completion of it is stale. */
    db_conn *c = db_acquire(f->d, &e);
    assert_non_null(c);
    assert_int_equal(db_exec(c,
                             "UPDATE bus_jobs SET lock_token = 'w2' WHERE id = 'c00';"
                             " INSERT INTO bus_inbox (consumer, event_id, handled_at)"
                             " VALUES ('svc', 'c41', 1)",
                             &e),
                     0);
    bus_completion items[40];
    char ids[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(ids[i], sizeof ids[i], "c%02d", i);
        items[i] = (bus_completion){.queue = Q, .id = ids[i], .token = "w1", .consumer = "svc"};
    }
    items[7].return_value = "{\"ok\":true}";
    items[8].consumer = NULL;   /* acknowledged without effect: no inbox entry */
    items[9].event_id = "ev-9"; /* the inbox keeps the event id, not the job id */
    assert_int_equal(db_begin(c, &e), 0);
    assert_int_equal(bus_store_complete_many(f->s, c, items, 40, T0 + 1, &e), 0);
    bus_job **next = NULL;
    size_t got = 0;
    assert_int_equal(
        bus_store_claim_tx(f->s, c, Q, 10, "w3", 30000, T0 + 1, "svc", &next, &got, &e), 0);
    assert_int_equal(db_commit(c, &e), 0);
    assert_true(items[0].gone);
    for (int i = 1; i < 40; i++)
        assert_false(items[i].gone);
    assert_int_equal(got, 5);
    for (size_t i = 0; i < got; i++) {
        snprintf(id, sizeof id, "c%02zu", 40 + i);
        assert_string_equal(next[i]->id, id);
        assert_true(next[i]->inbox_checked);
        assert_int_equal(next[i]->inbox_seen, i == 1); /* c41 was recorded beforehand */
    }
    bus_jobs_free(next, got);
    bus_counts cn = counts_ok(f->s, T0 + 1);
    assert_int_equal(cn.n[BUS_STATE_COMPLETED], 39);
    assert_int_equal(cn.n[BUS_STATE_ACTIVE], 6); /* c00 (w2) and c40..c44 */
    bus_job *j = get_ok(f->s, "c07", T0);
    assert_string_equal(j->return_value, "{\"ok\":true}");
    assert_int_equal(j->attempts_made, 1);
    assert_null(j->lock_token);
    bus_job_free(j);
    db_stmt *st = db_prepare(c, "SELECT count(*) FROM bus_inbox WHERE consumer = 'svc'", &e);
    assert_non_null(st);
    assert_int_equal(db_step(st, &e), DB_ROW);
    assert_int_equal(db_col_int64(st, 0), 1 + 38); /* c41 + all completed but c08 */
    db_finalize(st);
    st = db_prepare(c, "SELECT count(*) FROM bus_inbox WHERE event_id IN ('ev-9', 'c00', 'c08')",
                    &e);
    assert_non_null(st);
    assert_int_equal(db_step(st, &e), DB_ROW);
    assert_int_equal(db_col_int64(st, 0), 1);
    db_finalize(st);
    /* A claim without a consumer does not ask; neither call works outside a transaction. */
    assert_int_equal(bus_store_claim_tx(f->s, c, Q, 1, "w4", 30000, T0, NULL, &next, &got, &e),
                     F3_EINVAL);
    assert_int_equal(bus_store_complete_many(f->s, c, items, 1, T0, &e), F3_EINVAL);
    db_release(c);
}

/* The worker's complete-and-claim without a caller transaction, in both of its forms
 * (PostgreSQL: one statement for plain completions; a transaction otherwise). */
static void test_complete_and_claim(void **state)
{
    fx *f = *state;
    err e = {0};
    char id[16];
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof id, "k%d", i);
        add_ok(f->s, id, NULL, T0);
    }
    bus_job **jobs = NULL;
    size_t got = 0;
    /* Nothing to complete: a plain claim, answering the inbox question. */
    assert_int_equal(
        bus_store_complete_and_claim(f->s, NULL, 0, Q, 3, "t1", 30000, T0, "svc", &jobs, &got, &e),
        0);
    assert_int_equal(got, 3);
    assert_string_equal(jobs[0]->id, "k0");
    assert_true(jobs[2]->inbox_checked);
    assert_false(jobs[2]->inbox_seen);
    bus_jobs_free(jobs, got);
    db_conn *c = db_acquire(f->d, &e);
    assert_non_null(c);
    assert_int_equal(db_exec(c,
                             "INSERT INTO bus_inbox (consumer, event_id, handled_at)"
                             " VALUES ('svc', 'k4', 1)",
                             &e),
                     0);
    db_release(c);
    /* Plain completions (one of them stale) and the next claim in one go. */
    bus_completion done[] = {
        {.queue = Q, .id = "k0", .token = "t1", .consumer = "svc"},
        {.queue = Q, .id = "k1", .token = "stale", .consumer = "svc"},
        {.queue = Q, .id = "k2", .token = "t1", .consumer = NULL},
    };
    assert_int_equal(bus_store_complete_and_claim(f->s, done, 3, Q, 2, "t2", 30000, T0 + 1, "svc",
                                                  &jobs, &got, &e),
                     0);
    assert_false(done[0].gone);
    assert_true(done[1].gone);
    assert_false(done[2].gone);
    assert_int_equal(got, 2);
    assert_string_equal(jobs[0]->id, "k3");
    assert_false(jobs[0]->inbox_seen);
    assert_string_equal(jobs[1]->id, "k4");
    assert_true(jobs[1]->inbox_seen);
    bus_jobs_free(jobs, got);
    bus_job *j = get_ok(f->s, "k1", T0);
    assert_int_equal((int)j->state, (int)BUS_STATE_ACTIVE); /* not completed with a stale token */
    bus_job_free(j);
    /* A return value takes the transaction form; the claim may find nothing. */
    bus_completion more[] = {
        {.queue = Q, .id = "k3", .token = "t2", .return_value = "[1]", .consumer = "svc"},
        {.queue = Q, .id = "k4", .token = "t2", .consumer = "svc", .event_id = "ev-k4"},
    };
    assert_int_equal(bus_store_complete_and_claim(f->s, more, 2, Q, 10, "t3", 30000, T0 + 2, NULL,
                                                  &jobs, &got, &e),
                     0);
    assert_int_equal(got, 3); /* k5..k7 */
    assert_false(jobs[0]->inbox_checked);
    bus_jobs_free(jobs, got);
    j = get_ok(f->s, "k3", T0);
    assert_string_equal(j->return_value, "[1]");
    bus_job_free(j);
    bus_counts cn = counts_ok(f->s, T0 + 2);
    assert_int_equal(cn.n[BUS_STATE_COMPLETED], 4);
    c = db_acquire(f->d, &e);
    assert_non_null(c);
    db_stmt *st = db_prepare(c,
                             "SELECT count(*) FROM bus_inbox WHERE consumer = 'svc'"
                             " AND event_id IN ('k0', 'k1', 'k2', 'k3', 'ev-k4', 'k4')",
                             &e);
    assert_non_null(st);
    assert_int_equal(db_step(st, &e), DB_ROW);
    assert_int_equal(db_col_int64(st, 0), 4); /* k0, k3, ev-k4 and the k4 put there by hand */
    db_finalize(st);
    db_release(c);
    /* Plain completions for a queue without an inbox take the one-statement form too. */
    add_ok(f->s, "k8", NULL, T0);
    bus_completion plain[] = {{.queue = Q, .id = "k5", .token = "t3"},
                              {.queue = Q, .id = "k6", .token = "t3"}};
    assert_int_equal(bus_store_complete_and_claim(f->s, plain, 2, Q, 5, "t4", 30000, T0 + 3, NULL,
                                                  &jobs, &got, &e),
                     0);
    assert_false(plain[0].gone);
    assert_false(plain[1].gone);
    assert_int_equal(got, 1);
    assert_string_equal(jobs[0]->id, "k8");
    assert_false(jobs[0]->inbox_checked);
    bus_jobs_free(jobs, got);
    assert_int_equal(counts_ok(f->s, T0 + 3).n[BUS_STATE_COMPLETED], 6);
    /* Bad arguments are refused. */
    bus_completion bad[] = {{.queue = Q, .id = "", .token = "t"}};
    assert_int_equal(
        bus_store_complete_and_claim(f->s, bad, 1, Q, 1, "t", 30000, T0, NULL, &jobs, &got, &e),
        F3_EINVAL);
    assert_int_equal(
        bus_store_complete_and_claim(f->s, NULL, 0, Q, 0, "t", 30000, T0, NULL, &jobs, &got, &e),
        F3_EINVAL);
}

/* One job id twice in a batch (a stalled job re-claimed by the same worker): only the
 * delivery that holds the lock completes it. */
static void test_complete_many_with_a_repeated_id(void **state)
{
    fx *f = *state;
    err e = {0};
    add_ok(f->s, "r1", NULL, T0);
    add_ok(f->s, "r2", NULL, T0);
    assert_int_equal(claim(f->s, 2, "old", T0, NULL), 2);
    db_conn *c = db_acquire(f->d, &e);
    assert_non_null(c);
    assert_int_equal(db_exec(c, "UPDATE bus_jobs SET lock_token = 'new' WHERE id = 'r1'", &e), 0);
    bus_completion items[] = {
        {.queue = Q, .id = "r1", .token = "old"},
        {.queue = Q, .id = "r2", .token = "old"},
        {.queue = Q, .id = "r1", .token = "new"},
    };
    assert_int_equal(db_begin(c, &e), 0);
    assert_int_equal(bus_store_complete_many(f->s, c, items, 3, T0, &e), 0);
    assert_int_equal(db_commit(c, &e), 0);
    db_release(c);
    assert_true(items[0].gone);
    assert_false(items[1].gone);
    assert_false(items[2].gone);
    assert_int_equal(counts_ok(f->s, T0).n[BUS_STATE_COMPLETED], 2);
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

/* A handler's error quoting bytes that are not UTF-8 (a provider's reply) is recorded, as
 * valid UTF-8, both as the reason and in the errors. */
static void test_failure_reason_is_kept_as_utf8(void **state)
{
    fx *f = *state;
    err e = {0};
    bus_job_opts o = {.attempts = 2};
    add_ok(f->s, "bytes", &o, T0);
    claim_one(f->s, "bytes", "tok", T0);
    assert_int_equal(bus_store_fail(f->s, NULL, Q, "bytes", "tok", "HTTP 502: \xff\xfe html",
                                    BUS_FAIL_RETRY, T0, NULL, &e),
                     0);
    bus_job *j = get_ok(f->s, "bytes", T0);
    assert_string_equal(j->failed_reason, "HTTP 502: ?? html");
    assert_non_null(strstr(j->errors, "HTTP 502: ?? html"));
    int64_t now = j->run_at;
    bus_job_free(j);
    claim_one(f->s, "bytes", "tok", now);
    assert_int_equal(bus_store_fail(f->s, NULL, Q, "bytes", "tok", "caf\xc3\xa9 closed",
                                    BUS_FAIL_RETRY, now, NULL, &e),
                     0);
    j = get_ok(f->s, "bytes", now);
    assert_int_equal(j->state, BUS_STATE_FAILED);
    assert_string_equal(j->failed_reason, "caf\xc3\xa9 closed");
    bus_job_free(j);
}

/* ---- stalled jobs --------------------------------------------------------------------- */

static void test_stalled_jobs_return_then_fail(void **state)
{
    fx *f = *state;
    err e = {0};
    add_ok(f->s, "a", NULL, T0);
    add_ok(f->s, "b", NULL, T0 + 1);
    bus_job **jobs = NULL;
    size_t n = 0;
    assert_int_equal(bus_store_claim(f->s, Q, 1, "dead-worker", 1000, T0, &jobs, &n, &e), 0);
    bus_jobs_free(jobs, n);
    int recovered = -1, failed = -1;
    /* The lease has not ended yet. */
    assert_int_equal(bus_store_recover_stalled(f->s, T0 + 999, &recovered, &failed, &e), 0);
    assert_int_equal(recovered, 0);
    assert_int_equal(failed, 0);
    assert_int_equal(bus_store_recover_stalled(f->s, T0 + 1001, &recovered, &failed, &e), 0);
    assert_int_equal(recovered, 1);
    assert_int_equal(failed, 0);
    bus_job *j = get_ok(f->s, "a", T0 + 1001);
    assert_int_equal(j->state, BUS_STATE_WAITING);
    assert_int_equal(j->stalled_count, 1);
    assert_null(j->lock_token);
    bus_job_free(j);
    /* The old owner lost its lock. */
    assert_int_equal(bus_store_complete(f->s, NULL, Q, "a", "dead-worker", NULL, T0 + 1002, &e),
                     F3_ENOTFOUND);
    /* It runs next, ahead of the job added after it. */
    assert_int_equal(bus_store_claim(f->s, Q, 1, "w2", 1000, T0 + 2000, &jobs, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0]->id, "a");
    assert_int_equal(jobs[0]->attempts_started, 2);
    bus_jobs_free(jobs, n);
    /* Stalled again: more than max_stalled (1), so it fails. */
    assert_int_equal(bus_store_recover_stalled(f->s, T0 + 3001, &recovered, &failed, &e), 0);
    assert_int_equal(recovered, 0);
    assert_int_equal(failed, 1);
    j = get_ok(f->s, "a", T0 + 3001);
    assert_int_equal(j->state, BUS_STATE_FAILED);
    assert_int_equal(j->stalled_count, 2);
    assert_int_equal(j->attempts_made, 1);
    assert_non_null(strstr(j->failed_reason, "stalled"));
    assert_non_null(strstr(j->errors, "stalled more than allowable limit"));
    bus_job_free(j);
}

static void test_max_stalled_setting(void **state)
{
    fx *f = *state;
    err e = {0};
    bus_queue_settings set = {.max_stalled = 2};
    assert_int_equal(bus_store_settings(f->s, Q, &set, &e), 0);
    add_ok(f->s, "a", NULL, T0);
    int64_t now = T0;
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(claim(f->s, 1, "w", now, NULL), 1);
        int recovered = 0, failed = 0;
        now += 31000;
        assert_int_equal(bus_store_recover_stalled(f->s, now, &recovered, &failed, &e), 0);
        assert_int_equal(recovered, i < 3 ? 1 : 0);
        assert_int_equal(failed, i < 3 ? 0 : 1);
    }
}

/* ---- retention ------------------------------------------------------------------------ */

static void finish(bus_store *s, const char *id, bool ok, int64_t now)
{
    err e = {0};
    claim_one(s, id, "w", now);
    int rc = ok ? bus_store_complete(s, NULL, Q, id, "w", NULL, now, &e)
                : bus_store_fail(s, NULL, Q, id, "w", "no", BUS_FAIL_PERMANENT, now, NULL, &e);
    if (rc)
        fail_msg("finish %s: %s", id, e.msg);
}

static void test_retention_keeps_the_newest(void **state)
{
    fx *f = *state;
    err e = {0};
    bus_queue_settings set = {.keep_completed = 3, .keep_failed = 2};
    assert_int_equal(bus_store_settings(f->s, Q, &set, &e), 0);
    bus_queue_settings got;
    assert_int_equal(bus_store_settings_get(f->s, Q, &got, &e), 0);
    assert_int_equal(got.keep_completed, 3);
    assert_int_equal(got.keep_failed, 2);
    assert_int_equal(got.max_stalled, BUS_DEFAULT_MAX_STALLED);
    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%d", i);
        add_ok(f->s, id, NULL, T0);
        finish(f->s, id, true, T0 + i);
        snprintf(id, sizeof id, "f%d", i);
        add_ok(f->s, id, NULL, T0);
        finish(f->s, id, false, T0 + i);
    }
    add_ok(f->s, "still-waiting", NULL, T0);
    assert_int_equal(bus_store_trim(f->s, Q, &e), 0);
    bus_counts c = counts_ok(f->s, T0 + 10);
    assert_int_equal(c.n[BUS_STATE_COMPLETED], 3);
    assert_int_equal(c.n[BUS_STATE_FAILED], 2);
    assert_int_equal(c.n[BUS_STATE_WAITING], 1);
    bus_job **jobs = NULL;
    size_t n = 0;
    assert_int_equal(bus_store_list(f->s, Q, BUS_STATE_COMPLETED, 0, 10, T0, &jobs, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_string_equal(jobs[0]->id, "c5"); /* newest first */
    assert_string_equal(jobs[2]->id, "c3");
    bus_jobs_free(jobs, n);
    assert_int_equal(bus_store_list(f->s, Q, BUS_STATE_FAILED, 0, 10, T0, &jobs, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(jobs[0]->id, "f5");
    assert_string_equal(jobs[1]->id, "f4");
    bus_jobs_free(jobs, n);
    /* Defaults when nothing is set. */
    assert_int_equal(bus_store_settings_get(f->s, "other", &got, &e), 0);
    assert_int_equal(got.keep_completed, BUS_DEFAULT_KEEP_COMPLETED);
    assert_int_equal(got.keep_failed, BUS_DEFAULT_KEEP_FAILED);
}

/* ---- operations ----------------------------------------------------------------------- */

static void test_counts_list_get(void **state)
{
    fx *f = *state;
    err e = {0};
    add_ok(f->s, "w1", NULL, T0);
    add_ok(f->s, "w2", NULL, T0);
    add_ok(f->s, "w3", NULL, T0);
    add_ok(f->s, "p1", &(bus_job_opts){.priority = 3}, T0);
    add_ok(f->s, "d1", &(bus_job_opts){.delay_ms = 60000}, T0);
    add_ok(f->s, "act", NULL, T0 - 10);
    claim_one(f->s, "act", "w", T0);
    bus_counts c = counts_ok(f->s, T0);
    assert_int_equal(c.n[BUS_STATE_WAITING], 3);
    assert_int_equal(c.n[BUS_STATE_PRIORITIZED], 1);
    assert_int_equal(c.n[BUS_STATE_DELAYED], 1);
    assert_int_equal(c.n[BUS_STATE_ACTIVE], 1);
    assert_int_equal(c.n[BUS_STATE_COMPLETED], 0);
    assert_false(c.paused);
    /* The delayed job counts as due once its time has come. */
    assert_int_equal(counts_ok(f->s, T0 + 60000).n[BUS_STATE_WAITING], 4);

    bus_job **jobs = NULL;
    size_t n = 0;
    assert_int_equal(bus_store_list(f->s, Q, BUS_STATE_WAITING, 1, 5, T0, &jobs, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(jobs[0]->id, "w2");
    assert_string_equal(jobs[1]->id, "w3");
    assert_int_equal(jobs[0]->state, BUS_STATE_WAITING);
    bus_jobs_free(jobs, n);
    assert_int_equal(bus_store_list(f->s, Q, BUS_STATE_DELAYED, 0, 5, T0, &jobs, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0]->id, "d1");
    assert_int_equal(jobs[0]->state, BUS_STATE_DELAYED);
    bus_jobs_free(jobs, n);
    assert_int_equal(bus_store_list(f->s, Q, BUS_STATE_PRIORITIZED, 0, 5, T0, &jobs, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0]->priority, 3);
    bus_jobs_free(jobs, n);
    assert_int_equal(bus_store_list(f->s, Q, BUS_STATE_ACTIVE, 0, 5, T0, &jobs, &n, &e), 0);
    assert_int_equal(n, 1);
    bus_jobs_free(jobs, n);
    assert_int_equal(bus_store_list(f->s, Q, BUS_STATE_WAITING, 0, 0, T0, &jobs, &n, &e), 0);
    assert_int_equal(n, 0);
    bus_jobs_free(jobs, n);
    assert_int_equal(bus_store_list(f->s, Q, BUS_STATE_WAITING, -1, 5, T0, &jobs, &n, &e),
                     F3_EINVAL);

    bus_job *j = get_ok(f->s, "d1", T0);
    assert_int_equal(j->state, BUS_STATE_DELAYED);
    assert_int_equal(j->created_at, T0);
    bus_job_free(j);
    assert_int_equal(bus_store_get(f->s, Q, "missing", T0, &j, &e), F3_ENOTFOUND);
    assert_null(j);

    char **names = NULL;
    assert_int_equal(bus_store_add(f->s, NULL, "a@first", "x", "{}", NULL, T0, NULL, &e), 0);
    assert_int_equal(bus_store_pause(f->s, "z@paused-only", true, &e), 0);
    assert_int_equal(bus_store_queue_names(f->s, &names, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "a@first");
    assert_string_equal(names[1], Q);
    assert_string_equal(names[2], "z@paused-only");
    bus_names_free(names, n);
}

static void test_retry_remove_clean(void **state)
{
    fx *f = *state;
    err e = {0};
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "f%d", i);
        add_ok(f->s, id, NULL, T0);
        finish(f->s, id, false, T0 + 100 * i);
    }
    add_ok(f->s, "done", NULL, T0);
    finish(f->s, "done", true, T0);
    add_ok(f->s, "act", NULL, T0);
    claim_one(f->s, "act", "w", T0);

    /* Retry one failed job: fresh attempts, claimable again, its error history kept. */
    int64_t count = -1;
    assert_int_equal(bus_store_retry(f->s, Q, "f0", T0 + 1000, &count, &e), 0);
    assert_int_equal(count, 1);
    bus_job *j = get_ok(f->s, "f0", T0 + 1000);
    assert_int_equal(j->state, BUS_STATE_WAITING);
    assert_int_equal(j->attempts_made, 0);
    assert_int_equal(j->finished_at, 0);
    assert_null(j->failed_reason);
    assert_non_null(strstr(j->errors, "\"no\""));
    bus_job_free(j);
    assert_int_equal(bus_store_retry(f->s, Q, "act", T0, NULL, &e), F3_ECONFLICT);
    assert_int_equal(bus_store_retry(f->s, Q, "nope", T0, NULL, &e), F3_ENOTFOUND);
    /* Retry all failed. */
    assert_int_equal(bus_store_retry(f->s, Q, NULL, T0 + 1000, &count, &e), 0);
    assert_int_equal(count, 2);
    bus_counts c = counts_ok(f->s, T0 + 1000);
    assert_int_equal(c.n[BUS_STATE_FAILED], 0);
    assert_int_equal(c.n[BUS_STATE_WAITING], 3);
    /* A completed job can be retried by id. */
    assert_int_equal(bus_store_retry(f->s, Q, "done", T0 + 1000, &count, &e), 0);
    assert_int_equal(count, 1);

    /* Remove. */
    assert_int_equal(bus_store_remove(f->s, Q, "act", &e), F3_ECONFLICT);
    assert_int_equal(bus_store_remove(f->s, Q, "nope", &e), F3_ENOTFOUND);
    assert_int_equal(bus_store_remove(f->s, Q, "f1", &e), 0);
    assert_int_equal(bus_store_remove(f->s, Q, "f1", &e), F3_ENOTFOUND);

    /* Clean by age: waiting jobs by creation time (retries kept created_at T0)... */
    int64_t now = T0 + 10000;
    assert_int_equal(bus_store_clean(f->s, Q, BUS_STATE_WAITING, 1, 0, now, &count, &e), 0);
    assert_int_equal(count, 3); /* f0, f2, done */
    assert_int_equal(counts_ok(f->s, now).n[BUS_STATE_WAITING], 0);
    /* ... finished ones by finish time. */
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "old%d", i);
        add_ok(f->s, id, NULL, now);
        finish(f->s, id, true, now + i * 1000);
    }
    add_ok(f->s, "new", NULL, now);
    finish(f->s, "new", true, now + 9000);
    /* Completed at now .. now+3000 and now+9000; at now+10000, older than 5000 = before
     * now+5000: the four old ones; limit 3 takes the three oldest. */
    assert_int_equal(
        bus_store_clean(f->s, Q, BUS_STATE_COMPLETED, 5000, 3, now + 10000, &count, &e), 0);
    assert_int_equal(count, 3);
    assert_int_equal(bus_store_get(f->s, Q, "old0", now, &j, &e), F3_ENOTFOUND);
    j = get_ok(f->s, "old3", now);
    bus_job_free(j);
    assert_int_equal(
        bus_store_clean(f->s, Q, BUS_STATE_COMPLETED, 5000, 0, now + 10000, &count, &e), 0);
    assert_int_equal(count, 1);
    assert_int_equal(counts_ok(f->s, now).n[BUS_STATE_COMPLETED], 1);
    assert_int_equal(bus_store_clean(f->s, Q, BUS_STATE_ACTIVE, 0, 0, now, &count, &e), F3_EINVAL);
}

static void test_pause_and_resume(void **state)
{
    fx *f = *state;
    err e = {0};
    add_ok(f->s, "a", NULL, T0);
    assert_int_equal(bus_store_pause(f->s, Q, true, &e), 0);
    assert_true(counts_ok(f->s, T0).paused);
    assert_int_equal(claim(f->s, 5, "w", T0, NULL), 0);
    /* Other queues run on. */
    assert_int_equal(bus_store_add(f->s, NULL, "other@svc", "x", "{}", NULL, T0, NULL, &e), 0);
    bus_job **jobs = NULL;
    size_t n = 0;
    assert_int_equal(bus_store_claim(f->s, "other@svc", 5, "w", 1000, T0, &jobs, &n, &e), 0);
    assert_int_equal(n, 1);
    bus_jobs_free(jobs, n);
    assert_int_equal(bus_store_pause(f->s, Q, false, &e), 0);
    assert_false(counts_ok(f->s, T0).paused);
    claim_one(f->s, "a", "w", T0);
}

/* ---- repeatables ---------------------------------------------------------------------- */

static void test_repeatable_every_enqueues_once_per_tick(void **state)
{
    fx *f = *state;
    err e = {0};
    bus_store *other = NULL; /* a second instance on the same database */
    assert_int_equal(bus_store_open_sql(f->d, &other, &e), 0);
    bus_repeatable r = {.queue = Q,
                        .repeat_id = "reconcile",
                        .name = "orders.reconcile",
                        .data = "{\"k\":1}",
                        .every_ms = 60000};
    /* Both instances declare it at start-up, at slightly different times. */
    int64_t start = 1700000040000LL; /* a multiple of 60000 plus 0 */
    assert_int_equal(bus_store_repeatable_upsert(f->s, &r, start + 10, &e), 0);
    assert_int_equal(bus_store_repeatable_upsert(other, &r, start + 20, &e), 0);
    bus_repeatable_info *list = NULL;
    size_t n = 0;
    assert_int_equal(bus_store_repeatables_list(f->s, Q, &list, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].repeat_id, "reconcile");
    assert_int_equal(list[0].every_ms, 60000);
    assert_null(list[0].cron);
    int64_t tick = list[0].next_run_at;
    assert_int_equal(tick, start + 60000); /* the epoch-aligned grid */
    bus_repeatables_free(list, n);

    int enq = -1;
    assert_int_equal(bus_store_repeatables_tick(f->s, tick - 1, &enq, &e), 0);
    assert_int_equal(enq, 0);
    for (int round = 0; round < 3; round++) {
        int64_t now = tick + round * 60000 + 5;
        int a = 0, b = 0;
        assert_int_equal(bus_store_repeatables_tick(f->s, now, &a, &e), 0);
        assert_int_equal(bus_store_repeatables_tick(other, now, &b, &e), 0);
        assert_int_equal(a + b, 1);
    }
    assert_int_equal(counts_ok(f->s, tick + 200000).n[BUS_STATE_WAITING], 3);
    char id[64];
    snprintf(id, sizeof id, "reconcile:%lld", (long long)tick);
    bus_job *j = get_ok(f->s, id, tick);
    assert_string_equal(j->name, "orders.reconcile");
    assert_string_equal(j->data, "{\"k\":1}");
    bus_job_free(j);
    /* Ticks missed while nobody ran are skipped, not replayed in a burst. */
    assert_int_equal(bus_store_repeatables_tick(f->s, tick + 100 * 60000, &enq, &e), 0);
    assert_int_equal(enq, 1);
    assert_int_equal(bus_store_repeatables_tick(f->s, tick + 100 * 60000 + 1, &enq, &e), 0);
    assert_int_equal(enq, 0);

    assert_int_equal(bus_store_repeatable_remove(f->s, Q, "reconcile", &e), 0);
    assert_int_equal(bus_store_repeatable_remove(f->s, Q, "reconcile", &e), F3_ENOTFOUND);
    bus_store_close(other);
}

static void test_repeatable_cron(void **state)
{
    fx *f = *state;
    err e = {0};
    bus_repeatable r = {
        .queue = Q, .repeat_id = "nightly", .name = "n", .data = "{}", .cron = "30 2 * * *"};
    int64_t now = 1700000000000LL; /* 2023-11-14T22:13:20Z */
    assert_int_equal(bus_store_repeatable_upsert(f->s, &r, now, &e), 0);
    bus_repeatable_info *list = NULL;
    size_t n = 0;
    assert_int_equal(bus_store_repeatables_list(f->s, Q, &list, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].cron, "30 2 * * *");
    int64_t first = list[0].next_run_at;
    bus_repeatables_free(list, n);
    assert_int_equal(first, 1700015400000LL); /* 2023-11-15T02:30:00Z */
    int enq = 0;
    assert_int_equal(bus_store_repeatables_tick(f->s, first, &enq, &e), 0);
    assert_int_equal(enq, 1);
    assert_int_equal(bus_store_repeatables_list(f->s, Q, &list, &n, &e), 0);
    assert_int_equal(list[0].next_run_at, first + 86400000LL);
    bus_repeatables_free(list, n);
    /* Re-declaring an unchanged schedule keeps its next tick; a new one replaces it. */
    assert_int_equal(bus_store_repeatable_upsert(f->s, &r, first + 10, &e), 0);
    assert_int_equal(bus_store_repeatables_list(f->s, Q, &list, &n, &e), 0);
    assert_int_equal(list[0].next_run_at, first + 86400000LL);
    bus_repeatables_free(list, n);
    r.cron = "0 * * * *";
    assert_int_equal(bus_store_repeatable_upsert(f->s, &r, first + 10, &e), 0);
    assert_int_equal(bus_store_repeatables_list(f->s, Q, &list, &n, &e), 0);
    assert_int_equal(list[0].next_run_at, first + 30 * 60000);
    bus_repeatables_free(list, n);

    r.cron = "61 * * * *";
    assert_int_equal(bus_store_repeatable_upsert(f->s, &r, now, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "minute"));
    r.cron = "* * * * *";
    r.every_ms = 1000;
    assert_int_equal(bus_store_repeatable_upsert(f->s, &r, now, &e), F3_EINVAL);
}

/* ---- concurrency ---------------------------------------------------------------------- */

#define CONC_JOBS    2000
#define CONC_THREADS 4

typedef struct claimer {
    bus_store *s;
    char token[16];
    atomic_int *seen; /* per job index: times claimed */
    int claimed;
    int errors;
} claimer;

static void *claimer_main(void *arg)
{
    claimer *c = arg;
    for (;;) {
        bus_job **jobs = NULL;
        size_t n = 0;
        err e = {0};
        if (bus_store_claim(c->s, Q, 25, c->token, 60000, T0, &jobs, &n, &e) != 0) {
            if (e.code == F3_EBUSY)
                continue;
            c->errors++;
            break;
        }
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            int idx = (int)strtol(jobs[i]->id + 1, NULL, 10);
            atomic_fetch_add(&c->seen[idx], 1);
            if (bus_store_complete(c->s, NULL, Q, jobs[i]->id, c->token, NULL, T0, &e) != 0)
                c->errors++;
        }
        c->claimed += (int)n;
        bus_jobs_free(jobs, n);
    }
    return NULL;
}

static void fill_queue(fx *f, int n)
{
    err e = {0};
    db_conn *c = db_acquire(f->d, &e);
    assert_non_null(c);
    assert_int_equal(db_begin(c, &e), 0);
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "j%d", i);
        bus_job_opts o = {.job_id = id};
        if (bus_store_add(f->s, c, Q, "x", "{}", &o, T0, NULL, &e) != 0)
            fail_msg("add: %s", e.msg);
    }
    assert_int_equal(db_commit(c, &e), 0);
    db_release(c);
}

static void run_claimers(bus_store **stores, int nstores)
{
    atomic_int *seen = calloc(CONC_JOBS, sizeof *seen);
    assert_non_null(seen);
    claimer cl[CONC_THREADS];
    pthread_t th[CONC_THREADS];
    for (int i = 0; i < CONC_THREADS; i++) {
        cl[i] = (claimer){.s = stores[i % nstores], .seen = seen};
        snprintf(cl[i].token, sizeof cl[i].token, "w%d", i);
        assert_int_equal(pthread_create(&th[i], NULL, claimer_main, &cl[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < CONC_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(cl[i].errors, 0);
        total += cl[i].claimed;
    }
    for (int i = 0; i < CONC_JOBS; i++)
        if (atomic_load(&seen[i]) != 1)
            fail_msg("job j%d was claimed %d times", i, atomic_load(&seen[i]));
    assert_int_equal(total, CONC_JOBS);
    free(seen);
}

static void test_concurrent_claimers_never_share_a_job(void **state)
{
    fx *f = *state;
    fill_queue(f, CONC_JOBS);
    bus_store *stores[] = {f->s};
    run_claimers(stores, 1);
    /* Completions outside a caller's transaction trim now and then: the default keeps the
     * newest 1000. */
    assert_int_equal(counts_ok(f->s, T0).n[BUS_STATE_COMPLETED], BUS_DEFAULT_KEEP_COMPLETED);
}

/* PostgreSQL: two database handles, each with its own pool, as two processes would be. */
static void test_concurrent_claimers_across_handles(void **state)
{
    fx *f = *state;
    if (!is_pg())
        skip(); /* SQLite is one process by design */
    err e = {0};
    db *d2 = NULL;
    bus_store *s2 = NULL;
    assert_int_equal(db_open(f->url, NULL, &d2, &e), 0);
    assert_int_equal(bus_store_open_sql(d2, &s2, &e), 0);
    fill_queue(f, CONC_JOBS);
    bus_store *stores[] = {f->s, s2};
    run_claimers(stores, 2);
    bus_store_close(s2);
    db_close(d2);
}

/* ---- wakeups -------------------------------------------------------------------------- */

typedef struct adder {
    bus_store *s;
    atomic_bool go;
    bool many; /* through bus_store_add_many, the publish path */
    int rc;
} adder;

static void *adder_main(void *arg)
{
    adder *a = arg;
    while (!atomic_load(&a->go)) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    struct timespec ts = {0, 50 * 1000000L}; /* let the waiter block first */
    nanosleep(&ts, NULL);
    err e = {0};
    const char *queues[] = {Q};
    a->rc = a->many ? bus_store_add_many(a->s, NULL, queues, 1, "x", "{}", NULL, T0, NULL, &e)
                    : bus_store_add(a->s, NULL, Q, "x", "{}", NULL, T0, NULL, &e);
    return NULL;
}

/* Waits while another thread (and store) adds a job: every wait must end because of a
 * wakeup, not its timeout (10 s, only there to bound a broken build), until the job can
 * be claimed. */
static void wait_for_add(bus_store *waiter, bus_store *producer, bool many)
{
    adder a = {.s = producer, .many = many};
    atomic_init(&a.go, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, adder_main, &a), 0);
    claim(waiter, 1, "w", T0, NULL); /* this thread has looked: only later wakeups count */
    atomic_store(&a.go, true);
    size_t got = 0;
    bool timed_out = false;
    for (int i = 0; i < 20 && !got && !timed_out; i++) {
        timed_out = bus_store_wait(waiter, 10000) == 0;
        got = claim(waiter, 5, "w", T0, NULL);
    }
    pthread_join(th, NULL);
    assert_int_equal(a.rc, 0);
    assert_false(timed_out);
    assert_int_equal(got, 1);
}

static void test_wait_wakes_on_a_committed_add(void **state)
{
    fx *f = *state;
    wait_for_add(f->s, f->s, false);
    wait_for_add(f->s, f->s, true);
}

static void test_wait_wakes_across_handles(void **state)
{
    fx *f = *state;
    if (!is_pg())
        skip();
    err e = {0};
    db *d2 = NULL;
    bus_store *s2 = NULL;
    assert_int_equal(db_open(f->url, NULL, &d2, &e), 0);
    assert_int_equal(bus_store_open_sql(d2, &s2, &e), 0);
    wait_for_add(f->s, s2, false); /* the add reaches f->s only through NOTIFY */
    wait_for_add(f->s, s2, true);  /* ... also the one-statement publish */
    bus_store_close(s2);
    db_close(d2);
}

static void test_wake_and_timeout(void **state)
{
    fx *f = *state;
    assert_int_equal(bus_store_wait(f->s, 1), 0); /* this thread has looked now */
    bus_store_wake(f->s);
    assert_int_equal(bus_store_wait(f->s, 10), 1); /* a wakeup since this thread last looked */
    assert_int_equal(bus_store_wait(f->s, 10), 0); /* nothing since: times out */
    /* A rolled back add wakes nobody for good: at most one spurious wakeup. */
    err e = {0};
    db_conn *c = db_acquire(f->d, &e);
    assert_int_equal(db_begin(c, &e), 0);
    assert_int_equal(bus_store_add(f->s, c, Q, "x", "{}", NULL, T0, NULL, &e), 0);
    assert_int_equal(db_rollback(c, &e), 0);
    db_release(c);
    assert_int_equal(claim(f->s, 1, "w", T0, NULL), 0);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_joins_the_callers_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_id_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_rejects_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_many_fans_out_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_add_many_all_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priorities_follow_bullmq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delayed_jobs_wait_for_their_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_takes_a_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_completions_batch_in_one_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_complete_many_and_claim_in_one_transaction, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_complete_many_with_a_repeated_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_complete_and_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_back_off_then_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_four_attempts_wait_one_two_four_seconds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fixed_backoff_and_permanent_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_reason_is_kept_as_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_jobs_return_then_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_stalled_setting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_keeps_the_newest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_list_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_remove_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeatable_every_enqueues_once_per_tick, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_repeatable_cron, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_claimers_never_share_a_job, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_claimers_across_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_wakes_on_a_committed_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_wakes_across_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wake_and_timeout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
