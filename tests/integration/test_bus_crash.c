/* F3_TEST: backends
 * test_bus_crash.c - a consumer process killed with SIGKILL in the middle of a handler
 * loses nothing and doubles nothing, on a SQLite file and on PostgreSQL (argv[1]).
 *
 * The test re-executes its own binary with the argument "child" to play the consumer: a
 * print-service bus subscribed to order.created whose handler writes a side-table row in
 * the delivery transaction. The parent publishes one event, kills the first child while
 * its handler sleeps (before the write, or after it with the transaction still open),
 * starts a second child and checks that, once the lease ran out, the job was taken back,
 * handled, and its effect is there exactly once.
 */
#include "support/f3test_bus.h"
#include "support/f3test_child.h"

#include "bus/bus.h"
#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *backend;

#define LEASE_MS       600
#define CHILD_WAIT_MS  20000
#define HANDLER_SLEEP  60 /* seconds: far longer than the test waits before killing */
#define MODE_BEFORE_TX "sleep-before-tx"
#define MODE_IN_TX     "sleep-in-tx"
#define MODE_FAST      "fast"

/* ---- the child: one consumer process ---------------------------------------------------- */

typedef struct child {
    const char *mode;
    const char *dir;
} child;

static int crash_handler(bus_delivery *dl, void *ctx, err *e)
{
    child *c = ctx;
    const bus_envelope *env = bus_delivery_envelope(dl);
    char who[32];
    snprintf(who, sizeof who, "%d", (int)getpid());
    if (strcmp(c->mode, MODE_BEFORE_TX) == 0) {
        f3test_touch(c->dir, "in-handler");
        sleep(HANDLER_SLEEP); /* killed here: nothing written yet */
    }
    db_conn *tx = bus_delivery_tx(dl, e);
    if (!tx)
        return e->code;
    int rc = f3test_bus_side_write(tx, env->event_id, who, e);
    if (rc)
        return rc;
    if (strcmp(c->mode, MODE_IN_TX) == 0) {
        f3test_touch(c->dir, "in-handler");
        sleep(HANDLER_SLEEP); /* killed here: written, not committed */
    }
    return 0;
}

static int job_state(bus_store *s, const char *queue, const char *id)
{
    bus_job *j = NULL;
    err e = {0};
    int state = bus_store_get(s, queue, id, clock_now_ms(), &j, &e) == 0 ? (int)j->state : -1;
    bus_job_free(j);
    return state;
}

/* argv: child URL MODE DIR EVENT_ID. Runs until the event's job is completed (exit 0), or
 * for CHILD_WAIT_MS (exit 1). */
static int child_main(int argc, char **argv)
{
    if (argc != 6)
        return 2;
    log_set_level(LOG_WARN);
    child c = {argv[3], argv[4]};
    const char *event_id = argv[5];
    err e = {0};
    db *d = NULL;
    bus_store *s = NULL;
    bus *b = NULL;
    int rc = 1;
    db_opts o = {.pool_size = 20};
    if (db_open(argv[2], &o, &d, &e) != 0 || bus_store_open_sql(d, &s, &e) != 0)
        goto out;
    bus_worker_opts wo = {.poll_ms = 50, .stalled_interval_ms = 100, .repeat_interval_ms = -1};
    b = bus_new_with(d, s, BUS_SVC_PRINT, &wo, &e);
    bus_sub_opts so = {.lease_ms = LEASE_MS};
    if (!b || bus_subscribe(b, BUS_EV_ORDER_CREATED, crash_handler, &c, &so, &e) != 0 ||
        bus_start(b, &e) != 0)
        goto out;
    char queue[BUS_QUEUE_NAME_MAX + 1];
    bus_queue_name(BUS_EV_ORDER_CREATED, BUS_SVC_PRINT, queue, sizeof queue);
    int64_t end = clock_mono_ms() + CHILD_WAIT_MS;
    while (clock_mono_ms() < end && job_state(s, queue, event_id) != BUS_STATE_COMPLETED)
        f3test_sleep_ms(20);
    rc = job_state(s, queue, event_id) == BUS_STATE_COMPLETED ? 0 : 1;
    if (bus_drain(b, 10000) != 0)
        rc = 1;
out:
    if (rc && e.msg[0])
        fprintf(stderr, "child: %s\n", e.msg);
    bus_free(b);
    bus_store_close(s);
    db_close(d);
    return rc;
}

/* ---- the parent ----------------------------------------------------------------------------- */

/* Starts a consumer process in `mode` for event_id; its log is dir/child-<mode>.log. */
static void spawn_child(f3test_child *p, const char *url, const char *mode, const char *dir,
                        const char *event_id)
{
    char log[1024];
    snprintf(log, sizeof log, "%s/child-%s.log", dir, mode);
    const char *args[] = {url, mode, dir, event_id, NULL};
    assert_int_equal(f3test_child_spawn(p, log, args), 0);
}

static void kill_mid_handler_then_recover(const char *mode)
{
    f3test_bus f;
    f3test_bus_new(&f, backend);
    char *dir = f3test_tmpdir();
    assert_non_null(dir);
    err e = {0};
    bus *orders = bus_new(f.d, f.s, BUS_SVC_ORDER, &e);
    assert_non_null(orders);
    json_t *fields = json_pack("{s:s, s:[{s:s, s:s, s:i}]}", "orderId", "order-1", "lineItems",
                               "lineItemId", "li-1", "productSku", "SKU-1", "quantity", 1);
    char id[UUID_STR_LEN];
    assert_int_equal(bus_publish_id(orders, NULL, BUS_EV_ORDER_CREATED, "t1", fields, id, &e), 0);
    json_decref(fields);
    bus_free(orders);
    char queue[BUS_QUEUE_NAME_MAX + 1];
    assert_int_equal(bus_queue_name(BUS_EV_ORDER_CREATED, BUS_SVC_PRINT, queue, sizeof queue), 0);

    f3test_child first = {0}, second = {0};
    spawn_child(&first, f.url, mode, dir, id);
    if (!f3test_wait_file(dir, "in-handler", CHILD_WAIT_MS)) {
        f3test_child_print_log(&first);
        f3test_child_reap(&first, 0);
        fail_msg("the first consumer never reached its handler");
    }
    assert_int_equal(kill(first.pid, SIGKILL), 0);
    assert_int_equal(f3test_child_reap(&first, CHILD_WAIT_MS), 128 + SIGKILL);
    bus_job *j = f3test_bus_get(f.s, queue, id);
    assert_int_equal(j->state, BUS_STATE_ACTIVE); /* held by a dead owner */
    bus_job_free(j);
    assert_int_equal(f3test_bus_count(f.d, "SELECT COUNT(*) FROM side", NULL), 0);

    spawn_child(&second, f.url, MODE_FAST, dir, id);
    int status = f3test_child_reap(&second, CHILD_WAIT_MS + 15000);
    if (status != 0) {
        f3test_child_print_log(&second);
        fail_msg("the second consumer exited with %d", status);
    }
    j = f3test_bus_get(f.s, queue, id);
    assert_int_equal(j->state, BUS_STATE_COMPLETED);
    assert_int_equal(j->stalled_count, 1);
    assert_int_equal(j->attempts_started, 2);
    bus_job_free(j);
    char who[32];
    snprintf(who, sizeof who, "%d", (int)second.pid);
    assert_int_equal(f3test_bus_count(f.d, "SELECT COUNT(*) FROM side WHERE event_id = $1", id), 1);
    assert_int_equal(f3test_bus_count(f.d, "SELECT COUNT(*) FROM side WHERE who = $1", who), 1);
    assert_int_equal(
        f3test_bus_count(f.d, "SELECT COUNT(*) FROM bus_inbox WHERE event_id = $1", id), 1);
    f3test_rmtree(dir);
    free(dir);
    f3test_bus_drop(&f);
}

static void test_killed_while_handler_sleeps_before_writing(void **state)
{
    (void)state;
    kill_mid_handler_then_recover(MODE_BEFORE_TX);
}

static void test_killed_with_its_transaction_open(void **state)
{
    (void)state;
    kill_mid_handler_then_recover(MODE_IN_TX);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return child_main(argc, argv);
    backend = f3test_backend_arg(argc, argv);
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_while_handler_sleeps_before_writing),
        cmocka_unit_test(test_killed_with_its_transaction_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
