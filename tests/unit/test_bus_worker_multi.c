/* F3_TEST: backends
 * test_bus_worker_multi.c - the worker runtime (src/bus/worker.c) with company, on SQLite
 * and PostgreSQL (argv[1]): two workers (two database handles) sharing one queue, a
 * repeatable job ticked by two instances, and a database another connection keeps
 * locked: every job completed, every effect exactly once, no job run twice at once.
 */
#include "support/f3test_bus.h"

#include "bus/worker.h"
#include "core/clock.h"
#include "core/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

#define Q "test.jobs"
#define FAST_OPT                                                                                   \
    {                                                                                              \
        .poll_ms = 50, .stalled_interval_ms = -1, .repeat_interval_ms = -1, .trim_interval_ms = -1 \
    }

static int setup(void **state)
{
    return f3test_bus_setup(state, backend);
}

static int teardown(void **state)
{
    return f3test_bus_teardown(state);
}

static bus_worker *worker_on(bus_store *s, db *d, const bus_worker_opts *wo, const char *queue,
                             bus_handler fn, void *ctx, const bus_queue_opts *qo)
{
    err e = {0};
    bus_worker *w = bus_worker_new(s, d, wo, &e);
    if (!w)
        fail_msg("bus_worker_new: %s", e.msg);
    if (bus_worker_register(w, queue, fn, ctx, qo, &e) != 0)
        fail_msg("bus_worker_register: %s", e.msg);
    if (bus_worker_start(w, &e) != 0)
        fail_msg("bus_worker_start: %s", e.msg);
    return w;
}

/* ---- several workers ---------------------------------------------------------------------- */

#define MANY 500

typedef struct tally {
    atomic_int per_job[MANY];
    atomic_int running[MANY];
    atomic_int overlap;
    atomic_int calls[2];
} tally;

typedef struct wctx {
    tally *t;
    int who;
    bool write_side;
} wctx;

static int tally_handler(bus_delivery *dl, void *ctx, err *e)
{
    wctx *c = ctx;
    long i = strtol(bus_delivery_job(dl)->id + 2, NULL, 10);
    if (i < 0 || i >= MANY)
        return err_set(e, F3_EPERMANENT, "unexpected job");
    if (atomic_fetch_add(&c->t->running[i], 1) != 0)
        atomic_fetch_add(&c->t->overlap, 1);
    atomic_fetch_add(&c->t->per_job[i], 1);
    atomic_fetch_add(&c->t->calls[c->who], 1);
    int rc = 0;
    if (c->write_side) {
        db_conn *tx = bus_delivery_tx(dl, e);
        rc = tx ? f3test_bus_side_write(tx, bus_delivery_event_id(dl), c->who ? "b" : "a", e)
                : e->code;
    }
    atomic_fetch_sub(&c->t->running[i], 1);
    return rc;
}

static void add_many(bus_store *s, const bus_job_opts *o)
{
    for (int i = 0; i < MANY; i++) {
        char id[16];
        snprintf(id, sizeof id, "e-%d", i);
        f3test_bus_add(s, Q, id, NULL, o);
    }
}

static void assert_each_once(f3test_bus *f, tally *t)
{
    assert_int_equal(atomic_load(&t->overlap), 0);
    assert_int_equal(f3test_bus_count(f->d, "SELECT COUNT(*) FROM side", NULL), MANY);
    assert_int_equal(f3test_bus_count(f->d, "SELECT COUNT(DISTINCT event_id) FROM side", NULL),
                     MANY);
    assert_int_equal(f3test_bus_count(f->d,
                                      "SELECT COUNT(*) FROM bus_jobs WHERE queue = $1 AND "
                                      "state = 'completed'",
                                      Q),
                     MANY);
}

static void test_two_workers_share_a_queue(void **state)
{
    f3test_bus *f = *state;
    f3test_bus other = {0};
    f3test_bus_open(&other, f->url, 0);
    tally *t = calloc(1, sizeof *t);
    assert_non_null(t);
    wctx a = {t, 0, true}, b = {t, 1, true};
    bus_worker_opts wo = FAST_OPT;
    bus_queue_opts qo = {.flags = BUS_QUEUE_INBOX};
    bus_worker *wa = worker_on(f->s, f->d, &wo, Q, tally_handler, &a, &qo);
    bus_worker *wb = worker_on(other.s, other.d, &wo, Q, tally_handler, &b, &qo);
    add_many(f->s, NULL);
    assert_true(f3test_bus_wait_count(f->s, Q, BUS_STATE_COMPLETED, MANY, 40000));
    assert_int_equal(bus_worker_drain(wa, 5000), 0);
    assert_int_equal(bus_worker_drain(wb, 5000), 0);
    bus_worker_free(wa);
    bus_worker_free(wb);
    assert_each_once(f, t);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(atomic_load(&t->per_job[i]), 1);
    assert_int_equal(atomic_load(&t->calls[0]) + atomic_load(&t->calls[1]), MANY);
    free(t);
    f3test_bus_close(&other);
}

typedef struct ticks {
    pthread_mutex_t mu;
    int64_t at[256];
    int n;
} ticks;

static int tick_handler(bus_delivery *dl, void *ctx, err *e)
{
    (void)e;
    ticks *t = ctx;
    const char *id = bus_delivery_job(dl)->id;
    const char *colon = strrchr(id, ':');
    pthread_mutex_lock(&t->mu);
    if (colon && t->n < 256)
        t->at[t->n++] = strtoll(colon + 1, NULL, 10);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_repeatable_fires_once_per_tick_across_instances(void **state)
{
    f3test_bus *f = *state;
    f3test_bus other = {0};
    f3test_bus_open(&other, f->url, 0);
    err e = {0};
    bus_repeatable r = {
        .queue = "recon", .repeat_id = "poll", .name = "reconcile", .data = "{}", .every_ms = 200};
    assert_int_equal(bus_store_repeatable_upsert(f->s, &r, clock_now_ms(), &e), 0);
    ticks t = {.n = 0};
    pthread_mutex_init(&t.mu, NULL);
    bus_worker_opts wo = FAST_OPT;
    wo.repeat_interval_ms = 20;
    bus_worker *wa = worker_on(f->s, f->d, &wo, "recon", tick_handler, &t, NULL);
    bus_worker *wb = worker_on(other.s, other.d, &wo, "recon", tick_handler, &t, NULL);
    f3test_sleep_ms(1500);
    assert_int_equal(bus_worker_drain(wa, 5000), 0);
    assert_int_equal(bus_worker_drain(wb, 5000), 0);
    bus_worker_free(wa);
    bus_worker_free(wb);
    pthread_mutex_destroy(&t.mu);
    assert_true(t.n >= 4);
    qsort(t.at, (size_t)t.n, sizeof t.at[0], cmp_i64);
    for (int i = 1; i < t.n; i++)
        assert_true(t.at[i] - t.at[i - 1] >= 200); /* one run per tick, none doubled */
    f3test_bus_close(&other);
}

/* ---- a locked database --------------------------------------------------------------------- */

#define LOCK_ROUNDS 3

/* Holds the database's write lock (SQLite) or an exclusive lock on bus_jobs (PostgreSQL)
 * for 600 ms, LOCK_ROUNDS times; a round PostgreSQL picks as a deadlock victim is tried
 * again, so the workers always meet every round. */
typedef struct locker {
    const char *url;
    atomic_int held;
} locker;

static void *locker_main(void *arg)
{
    locker *l = arg;
    err e = {0};
    db *d = NULL;
    if (db_open(l->url, NULL, &d, &e) != 0)
        return NULL;
    bool pg = strcmp(db_backend(d), "postgres") == 0;
    int64_t end = clock_mono_ms() + 30000;
    while (atomic_load(&l->held) < LOCK_ROUNDS && clock_mono_ms() < end) {
        db_conn *c = db_acquire(d, &e);
        if (!c)
            break;
        if (db_begin(c, &e) == 0 &&
            db_exec(c,
                    pg ? "LOCK TABLE bus_jobs IN EXCLUSIVE MODE"
                       : "INSERT INTO side (event_id, who) VALUES ('lock', 'locker')",
                    &e) == 0) {
            atomic_fetch_add(&l->held, 1);
            f3test_sleep_ms(600);
        }
        db_rollback(c, NULL);
        db_release(c);
        f3test_sleep_ms(150);
    }
    db_close(d);
    return NULL;
}

static void test_locked_database_loses_and_doubles_nothing(void **state)
{
    f3test_bus *f = *state;
    f3test_bus busy = {0};
    f3test_bus_open(&busy, f->url, 100); /* the workers' writers give up after 100 ms */
    tally *t = calloc(1, sizeof *t);
    assert_non_null(t);
    wctx a = {t, 0, true};
    bus_job_opts o = {.attempts = 25, .backoff = {BUS_BACKOFF_FIXED, 20}};
    add_many(f->s, &o);
    locker l = {.url = f->url};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, locker_main, &l), 0);
    int64_t until = clock_mono_ms() + 10000;
    while (atomic_load(&l.held) == 0 && clock_mono_ms() < until)
        f3test_sleep_ms(5);
    assert_true(atomic_load(&l.held) > 0); /* the workers start against a locked database */
    bus_worker_opts wo = FAST_OPT;
    wo.threads = 4;
    bus_queue_opts qo = {.flags = BUS_QUEUE_INBOX, .concurrency = 8};
    bus_worker *w = worker_on(busy.s, busy.d, &wo, Q, tally_handler, &a, &qo);
    bool done = f3test_bus_wait_count(f->s, Q, BUS_STATE_COMPLETED, MANY, 40000);
    pthread_join(th, NULL);
    assert_int_equal(bus_worker_drain(w, 10000), 0);
    bus_worker_free(w);
    assert_true(done);
    assert_int_equal(atomic_load(&l.held), LOCK_ROUNDS);
    assert_each_once(f, t);
    free(t);
    f3test_bus_close(&busy);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    log_set_level(getenv("F3_TEST_LOG") ? LOG_DEBUG : LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_workers_share_a_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeatable_fires_once_per_tick_across_instances, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_locked_database_loses_and_doubles_nothing, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
