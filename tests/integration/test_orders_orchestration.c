/* F3_TEST: backends
 * test_orders_orchestration.c - orchestration in the running binary: `f3connect serve`
 * on a fresh database, this test standing in for the print service (print jobs written
 * with SQL, print-job.* events published through a bus of the print service into the same
 * database). The served orders service moves the order to PROCESSING, then COMPLETED with
 * one order.ready-for-fulfillment; a failed job then leaves another order PARTIALLY_COMPLETED.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"
#include "support/f3test_proc.h"

#include "bus/bus.h"
#include "core/clock.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TENANT  "t-served"
#define READY_Q "order.ready-for-fulfillment@shipping-service"
#define WAIT_MS 20000

static const char *backend;

static struct {
    f3test_bus tb;
    bus *print;
    char *dir;
    f3test_proc serve;
    int64_t tick;
} env;

static void exec_texts(const char *sql, int n, const char *const *p)
{
    err e = {0};
    db_conn *c = db_acquire(env.tb.d, &e);
    assert_non_null(c);
    if (db_exec_texts(c, sql, p, n, NULL, &e) != 0)
        fail_msg("%s: %s", sql, e.msg);
    db_release(c);
}

static void add_order(const char *id, const char *item, int jobs)
{
    const char *o[] = {TENANT, id, item};
    exec_texts("INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number,"
               " customer_name, created_at, updated_at) VALUES ($2, $1, $2, $2, 'Ann', 0, 0)",
               2, o);
    exec_texts("INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, title,"
               " quantity, created_at, updated_at) VALUES ($3, $1, $2, $3, 'Vase', 1, 0, 0)",
               3, o);
    for (int i = 0; i < jobs; i++) {
        char id_job[64];
        snprintf(id_job, sizeof id_job, "%s-job%d", id, i);
        const char *j[] = {TENANT, id, item, id_job};
        exec_texts("INSERT INTO print_jobs (id, tenant_id, order_id, line_item_id, part_key,"
                   " created_at, updated_at) VALUES ($4, $1, $2, $3, $4, 0, 0)",
                   4, j);
    }
}

/* Job `i` of order `id` moves to `to` (stored, then announced as the print service does). */
static void move(const char *id, const char *item, int i, const char *from, const char *to)
{
    char job[64], at[24];
    snprintf(job, sizeof job, "%s-job%d", id, i);
    db_ms_text(++env.tick, at);
    const char *p[] = {job, to, at};
    exec_texts("UPDATE print_jobs SET status = $2, updated_at = CAST($3 AS BIGINT) WHERE id = $1",
               3, p);
    json_t *f = json_pack("{s:s,s:s,s:s,s:s,s:s}", "printJobId", job, "orderId", id, "lineItemId",
                          item, "previousStatus", from, "newStatus", to);
    err e = {0};
    if (bus_publish(env.print, NULL, BUS_EV_PRINT_JOB_STATUS_CHANGED, TENANT, f, &e) != 0)
        fail_msg("publish: %s", e.msg);
    json_object_del(f, "previousStatus");
    json_object_del(f, "newStatus");
    const char *type = strcmp(to, "COMPLETED") == 0 ? BUS_EV_PRINT_JOB_COMPLETED
                       : strcmp(to, "FAILED") == 0  ? BUS_EV_PRINT_JOB_FAILED
                                                    : NULL;
    if (type && strcmp(type, BUS_EV_PRINT_JOB_FAILED) == 0)
        json_object_set_new(f, "errorMessage", json_string("Bed adhesion lost"));
    if (type && bus_publish(env.print, NULL, type, TENANT, f, &e) != 0)
        fail_msg("publish: %s", e.msg);
    json_decref(f);
}

/* Waits until the order has `status`; fails the test (with the server's log) if not. */
static void wait_status(const char *id, const char *status)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM orders WHERE id = $1 AND status = '%s'",
             status);
    int64_t end = clock_mono_ms() + WAIT_MS;
    while (f3test_bus_count(env.tb.d, sql, id) != 1) {
        if (clock_mono_ms() > end) {
            char *log = f3test_slurp(env.serve.err_path);
            fail_msg("order %s never became %s; server log:\n%s", id, status, log);
        }
        f3test_sleep_ms(50);
    }
}

static int setup(void **state)
{
    (void)state;
    memset(&env, 0, sizeof env);
    f3test_bus_new(&env.tb, backend);
    f3test_bus_exec(env.tb.d, "INSERT INTO tenants (id, name, slug, created_at, updated_at)"
                              " VALUES ('" TENANT "', 'Served', 'served', 0, 0)");
    err e = {0};
    env.print = bus_new(env.tb.d, env.tb.s, BUS_SVC_PRINT, &e);
    if (!env.print)
        fail_msg("bus_new: %s", e.msg);
    env.dir = f3test_tmpdir();
    int port = f3test_free_port();
    char port_env[32], url_env[600];
    snprintf(port_env, sizeof port_env, "PORT=%d", port);
    snprintf(url_env, sizeof url_env, "DATABASE_URL=%s", env.tb.url);
    const char *argv[] = {"serve", NULL};
    const char *vars[] = {port_env,         url_env,           "HOST=127.0.0.1",
                          "LOG_LEVEL=info", "DATA_DIR=./data", NULL};
    assert_int_equal(f3test_proc_start(&env.serve, env.dir, argv, vars), 0);
    assert_int_equal(f3test_wait_http_ok(port, "/health", &env.serve, 15000), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    f3test_proc_signal(&env.serve, SIGTERM);
    if (!f3test_proc_wait(&env.serve, 10000))
        f3test_proc_kill(&env.serve);
    bus_free(env.print);
    f3test_bus_drop(&env.tb);
    f3test_rmtree(env.dir);
    free(env.dir);
    return 0;
}

static void test_served_orders_follow_their_print_jobs(void **state)
{
    (void)state;
    add_order("o-served", "li-served", 2);
    move("o-served", "li-served", 0, "PENDING", "QUEUED");
    wait_status("o-served", "PROCESSING");
    move("o-served", "li-served", 1, "PENDING", "QUEUED");
    move("o-served", "li-served", 0, "QUEUED", "COMPLETED");
    move("o-served", "li-served", 1, "QUEUED", "COMPLETED");
    wait_status("o-served", "COMPLETED");
    /* Duplicates after the fact change nothing. */
    move("o-served", "li-served", 1, "QUEUED", "COMPLETED");
    add_order("o-part", "li-part", 2);
    move("o-part", "li-part", 0, "PENDING", "COMPLETED");
    move("o-part", "li-part", 1, "PENDING", "FAILED");
    wait_status("o-part", "PARTIALLY_COMPLETED");
    assert_int_equal(f3test_bus_count(env.tb.d,
                                      "SELECT COUNT(*) FROM bus_jobs WHERE queue = '" READY_Q "'"
                                      " AND data LIKE '%o-served%'",
                                      NULL),
                     1);
    assert_int_equal(f3test_bus_count(env.tb.d,
                                      "SELECT COUNT(*) FROM bus_jobs WHERE queue = '" READY_Q "'",
                                      NULL),
                     1);
    assert_int_equal(f3test_bus_count(env.tb.d,
                                      "SELECT COUNT(*) FROM line_items WHERE id = $1"
                                      " AND status = 'COMPLETED'",
                                      "li-served"),
                     1);
    assert_int_equal(f3test_bus_count(env.tb.d,
                                      "SELECT COUNT(*) FROM event_log WHERE order_id = $1"
                                      " AND event_type = 'order.partially-completed'",
                                      "o-part"),
                     1);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_served_orders_follow_their_print_jobs, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
