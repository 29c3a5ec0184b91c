/* F3_TEST: backends
 * test_bus_two_process.c - two real consumer processes on one database (PostgreSQL, and
 * a SQLite file) share one queue: every event handled exactly once in effect, none lost,
 * even when one of the processes is killed with SIGKILL half-way; and a repeatable job
 * declared by both processes fires once per tick.
 *
 * The test re-executes its own binary with the argument "child" to play a consumer: a
 * bus worker with the queue "two.jobs" (inbox consumer "two-consumer"; the event id
 * comes from the job's data, so the two jobs every event gets can race each other in the
 * two processes) whose handler writes a side-table row in the delivery transaction, and
 * the queue "two.ticks" fed by the repeatable "tick" (every TICK_MS), whose handler
 * writes a side-table row without any inbox protection, so a tick run twice would show.
 */
#include "support/f3test_bus.h"
#include "support/f3test_child.h"

#include "bus/worker.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"

#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *backend;

#define QJOBS         "two.jobs"
#define QTICKS        "two.ticks"
#define CONSUMER      "two-consumer"
#define EVENTS        150
#define TICK_MS       200
#define LEASE_MS      1000
#define CHILD_WAIT_MS 20000
#define ALL_DONE_MS   40000

/* ---- the child: one consumer process ---------------------------------------------------- */

static atomic_bool child_stop;

static void on_term(int sig)
{
    (void)sig;
    atomic_store(&child_stop, true);
}

/* The event id is the "eventId" of the job's data: two jobs carry each event. */
static int event_prepare(bus_delivery *dl, void *ctx, err *e)
{
    (void)ctx;
    const bus_job *job = bus_delivery_job(dl);
    json_t *v = NULL;
    if (json_parse(job->data, strlen(job->data), &v, e) != 0)
        return F3_EINVAL;
    const char *id = json_string_value(json_object_get(v, "eventId"));
    int rc = id ? bus_delivery_set_event(dl, id, NULL, NULL, e)
                : err_set(e, F3_EINVAL, "job %s has no eventId", job->id);
    json_decref(v);
    return rc;
}

static int job_handler(bus_delivery *dl, void *ctx, err *e)
{
    (void)ctx;
    char who[32];
    snprintf(who, sizeof who, "job:%d", (int)getpid());
    /* Stands for a provider call, made before the transaction. Long enough that neither
     * instance prefetches the whole queue before the other polls (worker.h, prefetch):
     * both take part, and the one killed holds jobs it has not started. */
    f3test_sleep_ms(10);
    db_conn *tx = bus_delivery_tx(dl, e);
    if (!tx)
        return e->code;
    return f3test_bus_side_write(tx, bus_delivery_event_id(dl), who, e);
}

static int tick_handler(bus_delivery *dl, void *ctx, err *e)
{
    (void)ctx;
    char who[32];
    snprintf(who, sizeof who, "tick:%d", (int)getpid());
    db_conn *tx = bus_delivery_tx(dl, e);
    if (!tx)
        return e->code;
    return f3test_bus_side_write(tx, bus_delivery_job(dl)->id, who, e);
}

/* argv: child URL DIR NAME. Consumes until SIGTERM, then drains and exits 0. */
static int child_main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    log_set_level(LOG_ERROR);
    signal(SIGTERM, on_term);
    const char *dir = argv[3], *name = argv[4];
    err e = {0};
    db *d = NULL;
    bus_store *s = NULL;
    bus_worker *w = NULL;
    int rc = 1;
    db_opts o = {.pool_size = 20};
    if (db_open(argv[2], &o, &d, &e) != 0 || bus_store_open_sql(d, &s, &e) != 0)
        goto out;
    bus_worker_opts wo = {.poll_ms = 50,
                          .stalled_interval_ms = 200,
                          .repeat_interval_ms = 50,
                          .trim_interval_ms = -1};
    w = bus_worker_new(s, d, &wo, &e);
    bus_queue_opts jobs = {.concurrency = 3,
                           .lease_ms = LEASE_MS,
                           .flags = BUS_QUEUE_INBOX,
                           .consumer = CONSUMER,
                           .prepare = event_prepare};
    bus_queue_opts ticks = {.concurrency = 1, .lease_ms = LEASE_MS};
    bus_repeatable r = {
        .queue = QTICKS, .repeat_id = "tick", .name = "tick", .data = "{}", .every_ms = TICK_MS};
    if (!w || bus_worker_register(w, QJOBS, job_handler, NULL, &jobs, &e) != 0 ||
        bus_worker_register(w, QTICKS, tick_handler, NULL, &ticks, &e) != 0 ||
        bus_store_repeatable_upsert(s, &r, clock_now_ms(), &e) != 0 || bus_worker_start(w, &e) != 0)
        goto out;
    f3test_touch(dir, name);
    int64_t end = clock_mono_ms() + ALL_DONE_MS + CHILD_WAIT_MS;
    while (!atomic_load(&child_stop) && clock_mono_ms() < end)
        f3test_sleep_ms(10);
    rc = atomic_load(&child_stop) && bus_worker_drain(w, 10000) == 0 ? 0 : 1;
out:
    if (rc && e.msg[0])
        fprintf(stderr, "child %s: %s\n", name, e.msg);
    bus_worker_free(w);
    bus_store_close(s);
    db_close(d);
    return rc;
}

/* ---- the parent ----------------------------------------------------------------------------- */

/* Starts a consumer process called `name`; its log is dir/<name>.log. */
static void spawn_child(f3test_child *p, const char *url, const char *dir, const char *name)
{
    char log[1024];
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    const char *args[] = {url, dir, name, NULL};
    assert_int_equal(f3test_child_spawn(p, log, args), 0);
}

/* Waits up to timeout_ms until sql (a count) reaches at least n; the last count. */
static int64_t wait_count(db *d, const char *sql, int64_t n, int timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;
    int64_t got = f3test_bus_count(d, sql, NULL);
    while (got < n && clock_mono_ms() < end) {
        f3test_sleep_ms(20);
        got = f3test_bus_count(d, sql, NULL);
    }
    return got;
}

/* Every event as two jobs ("<event>:a", "<event>:b"), all in one transaction. */
static void add_events(f3test_bus *f)
{
    err e = {0};
    db_conn *c = db_acquire(f->d, &e);
    assert_non_null(c);
    assert_int_equal(db_begin(c, &e), 0);
    for (int i = 0; i < EVENTS; i++) {
        char data[64], id[32];
        snprintf(data, sizeof data, "{\"eventId\":\"e%03d\"}", i);
        for (int k = 0; k < 2; k++) {
            snprintf(id, sizeof id, "e%03d:%c", i, k ? 'b' : 'a');
            bus_job_opts o = {.job_id = id};
            if (bus_store_add(f->s, c, QJOBS, "two", data, &o, clock_now_ms(), NULL, &e) != 0)
                fail_msg("add %s: %s", id, e.msg);
        }
    }
    assert_int_equal(db_commit(c, &e), 0);
    db_release(c);
}

#define JOB_ROWS   "SELECT COUNT(*) FROM side WHERE who LIKE 'job:%'"
#define JOB_EVENTS "SELECT COUNT(DISTINCT event_id) FROM side WHERE who LIKE 'job:%'"
#define TICK_ROWS  "SELECT COUNT(*) FROM side WHERE who LIKE 'tick:%'"

/* Checks the tick rows: each tick ran once, ticks lie on the TICK_MS grid, and there are
 * no more of them than grid points between the first and the last (a second instance
 * firing its own, shifted ticks would break that). */
static void check_ticks(db *d)
{
    err e = {0};
    db_conn *c = db_acquire(d, &e);
    assert_non_null(c);
    db_stmt *st = db_prepare(c,
                             "SELECT event_id, COUNT(*) FROM side WHERE who LIKE 'tick:%'"
                             " GROUP BY event_id ORDER BY event_id",
                             &e);
    assert_non_null(st);
    int64_t first = -1, last = -1, n = 0;
    int rc;
    while ((rc = db_step(st, &e)) == DB_ROW) {
        const char *id = db_col_text(st, 0);
        if (db_col_int64(st, 1) != 1)
            fail_msg("tick %s ran %" PRId64 " times", id, db_col_int64(st, 1));
        const char *colon = strrchr(id, ':');
        assert_non_null(colon);
        assert_true(strncmp(id, "tick:", 5) == 0);
        int64_t at = strtoll(colon + 1, NULL, 10);
        assert_int_equal(at % TICK_MS, 0);
        if (first < 0 || at < first)
            first = at;
        if (at > last)
            last = at;
        n++;
    }
    assert_int_equal(rc, DB_DONE);
    db_finalize(st);
    db_release(c);
    assert_true(n >= 3);
    assert_true(n <= (last - first) / TICK_MS + 1);
}

static void test_two_processes_share_one_queue(void **state)
{
    (void)state;
    f3test_bus f;
    f3test_bus_new(&f, backend);
    char *dir = f3test_tmpdir();
    assert_non_null(dir);
    f3test_child a = {0}, b = {0};
    spawn_child(&a, f.url, dir, "a");
    spawn_child(&b, f.url, dir, "b");
    if (!f3test_wait_file(dir, "a", CHILD_WAIT_MS) || !f3test_wait_file(dir, "b", CHILD_WAIT_MS)) {
        f3test_child_print_log(&a);
        f3test_child_print_log(&b);
        f3test_child_reap(&a, 0);
        f3test_child_reap(&b, 0);
        fail_msg("a consumer process did not start");
    }
    /* Both instances tick the repeatable for a while. */
    assert_true(wait_count(f.d, TICK_ROWS, 5, CHILD_WAIT_MS) >= 5);

    add_events(&f);
    /* Kill one consumer half-way: its held jobs come back after their lease. */
    wait_count(f.d, JOB_EVENTS, EVENTS / 3, ALL_DONE_MS);
    assert_int_equal(kill(a.pid, SIGKILL), 0);
    assert_int_equal(f3test_child_reap(&a, CHILD_WAIT_MS), 128 + SIGKILL);
    int64_t handled = wait_count(f.d, JOB_EVENTS, EVENTS, ALL_DONE_MS);
    bool all_done = f3test_bus_wait_count(f.s, QJOBS, BUS_STATE_COMPLETED, 2 * EVENTS, ALL_DONE_MS);
    assert_int_equal(kill(b.pid, SIGTERM), 0);
    int status = f3test_child_reap(&b, CHILD_WAIT_MS);
    if (handled != EVENTS || !all_done || status != 0) {
        f3test_child_print_log(&a);
        f3test_child_print_log(&b);
        fail_msg("events handled %" PRId64 "/%d, all jobs completed: %s, survivor exit %d", handled,
                 EVENTS, all_done ? "yes" : "no", status);
    }
    /* Exactly once in effect: one side row per event, though every event had two jobs and
     * a consumer died in the middle; both processes did some of the work. */
    assert_int_equal(f3test_bus_count(f.d, JOB_ROWS, NULL), EVENTS);
    assert_int_equal(
        f3test_bus_count(f.d, "SELECT COUNT(DISTINCT who) FROM side WHERE who LIKE 'job:%'", NULL),
        2);
    assert_int_equal(
        f3test_bus_count(f.d, "SELECT COUNT(*) FROM bus_inbox WHERE consumer = '" CONSUMER "'",
                         NULL),
        EVENTS);
    /* None lost, none failed: every job of the queue completed. */
    assert_int_equal(
        f3test_bus_count(f.d, "SELECT COUNT(*) FROM bus_jobs WHERE queue = '" QJOBS "'", NULL),
        2 * EVENTS);
    assert_int_equal(f3test_bus_count(f.d,
                                      "SELECT COUNT(*) FROM bus_jobs WHERE queue = '" QJOBS
                                      "' AND state <> 'completed'",
                                      NULL),
                     0);
    check_ticks(f.d);
    f3test_rmtree(dir);
    free(dir);
    f3test_bus_drop(&f);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return child_main(argc, argv);
    backend = f3test_backend_arg(argc, argv);
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_processes_share_one_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
