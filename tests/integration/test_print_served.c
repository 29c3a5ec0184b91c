/* F3_TEST: backends
 * test_print_served.c - the print service in the running binary: `f3connect serve` on a
 * fresh database with SIMPLYPRINT_* pointing at the SimplyPrint simulator (in this test
 * process), whose webhooks go back to the served /api/v1/webhooks/simplyprint. An
 * order.created published by (a bus standing in for) the orders service becomes print jobs
 * that are queued, printed and completed; POST /internal/print-jobs behind the gateway's
 * X-Internal-Key check requeues without duplicates. With SimplyPrint answering 503 at first,
 * the served print service's own retry queue takes the order (one PRINT_JOB_CREATION entry)
 * and submits every job exactly once when SimplyPrint answers again.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"
#include "support/f3test_http.h"
#include "support/f3test_proc.h"

#include "bus/bus.h"
#include "core/buf.h"
#include "core/clock.h"
#include "sim/simplyprint/sim.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TENANT       "t-served-print"
#define API_KEY      "sp-served-key"
#define SECRET       "whsec-served"
#define INTERNAL_KEY "served-internal-key-0123456789"
#define WAIT_MS      20000

static const char *backend;

static struct {
    f3test_bus tb;
    bus *orders;
    char *dir;
    f3test_proc serve;
    int port;
    sp_sim *sim;
} env;

static int64_t count(const char *sql, const char *param)
{
    return f3test_bus_count(env.tb.d, sql, param);
}

static void wait_count(const char *sql, const char *param, int64_t want)
{
    int64_t end = clock_mono_ms() + WAIT_MS;
    int64_t n;
    while ((n = count(sql, param)) != want) {
        if (clock_mono_ms() > end) {
            char *log = f3test_slurp(env.serve.err_path);
            fail_msg("%s: %lld, want %lld; server log:\n%s", sql, (long long)n, (long long)want,
                     log);
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
                              " VALUES ('" TENANT "', 'Default', 'default', 0, 0)");
    f3test_bus_exec(env.tb.d, "INSERT INTO product_mappings (id, tenant_id, sku, name, created_at,"
                              " updated_at) VALUES ('pm-cat', '" TENANT "', 'CAT', 'Cat', 0, 0)");
    f3test_bus_exec(env.tb.d,
                    "INSERT INTO assembly_parts (id, tenant_id, product_mapping_id, part_number,"
                    " part_name, simplyprint_file_id, quantity_per_unit, created_at,"
                    " updated_at) VALUES ('ap-cat', '" TENANT "', 'pm-cat', 1, 'Cat',"
                    " 'cafe0123', 2, 0, 0)");
    f3test_bus_exec(env.tb.d,
                    "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number,"
                    " customer_name, created_at, updated_at) VALUES ('o-cat', '" TENANT "',"
                    " '7001', '#7001', 'Ann', 0, 0)");
    f3test_bus_exec(env.tb.d,
                    "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, sku,"
                    " title, quantity, created_at, updated_at) VALUES ('li-cat', '" TENANT "',"
                    " 'o-cat', '1', 'CAT', 'Cat', 2, 0, 0)");
    err e = {0};
    env.orders = bus_new(env.tb.d, env.tb.s, BUS_SVC_ORDER, &e);
    if (!env.orders)
        fail_msg("bus_new: %s", e.msg);
    env.port = f3test_free_port();
    char hook[160];
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/api/v1/webhooks/simplyprint?tenant=" TENANT,
             env.port);
    sp_sim_opts so = {.api_key = API_KEY,
                      .webhook_url = hook,
                      .webhook_secret = SECRET,
                      .printers = 2,
                      .print_ms = 100,
                      .seed = 11};
    env.sim = sp_sim_start(&so, &e);
    if (!env.sim)
        fail_msg("sim: %s", e.msg);
    env.dir = f3test_tmpdir();
    char port_env[32], url_env[600], sp_url[96];
    snprintf(port_env, sizeof port_env, "PORT=%d", env.port);
    snprintf(url_env, sizeof url_env, "DATABASE_URL=%s", env.tb.url);
    snprintf(sp_url, sizeof sp_url, "SIMPLYPRINT_API_URL=http://127.0.0.1:%d",
             sp_sim_port(env.sim));
    const char *argv[] = {"serve", NULL};
    const char *vars[] = {port_env,
                          url_env,
                          "HOST=127.0.0.1",
                          "LOG_LEVEL=info",
                          "DATA_DIR=./data",
                          "INTERNAL_API_KEY=" INTERNAL_KEY,
                          "SIMPLYPRINT_COMPANY_ID=" SP_SIM_DEFAULT_COMPANY,
                          "SIMPLYPRINT_API_KEY=" API_KEY,
                          sp_url,
                          "SIMPLYPRINT_WEBHOOK_SECRET=" SECRET,
                          NULL};
    assert_int_equal(f3test_proc_start(&env.serve, env.dir, argv, vars), 0);
    assert_int_equal(f3test_wait_http_ok(env.port, "/health", &env.serve, 15000), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    f3test_proc_signal(&env.serve, SIGTERM);
    if (!f3test_proc_wait(&env.serve, 10000))
        f3test_proc_kill(&env.serve);
    sp_sim_stop(env.sim);
    bus_free(env.orders);
    f3test_bus_drop(&env.tb);
    f3test_rmtree(env.dir);
    free(env.dir);
    return 0;
}

static int post_internal(const char *key, const char *body, char **answer)
{
    buf raw;
    buf_init(&raw, 0);
    buf_printf(&raw,
               "POST /internal/print-jobs?tenantId=" TENANT " HTTP/1.1\r\nHost: t\r\n"
               "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n"
               "X-Internal-Key: %s\r\n\r\n%s",
               strlen(body), key, body);
    f3test_http_response r = {0};
    assert_int_equal(f3test_http_request(env.port, buf_cstr(&raw), &r), 0);
    int status = r.status;
    if (answer)
        *answer = strdup(r.body ? r.body : "");
    f3test_http_response_free(&r);
    buf_free(&raw);
    return status;
}

static void test_served_order_is_printed(void **state)
{
    (void)state;
    json_t *ev = json_pack("{s:s,s:[{s:s,s:s,s:i}]}", "orderId", "o-cat", "lineItems", "lineItemId",
                           "li-cat", "productSku", "CAT", "quantity", 2);
    err e = {0};
    assert_int_equal(bus_publish(env.orders, NULL, BUS_EV_ORDER_CREATED, TENANT, ev, &e), 0);
    json_decref(ev);
    /* 2 units x 2 copies, each queued in SimplyPrint, printed, reported by webhook. */
    wait_count("SELECT COUNT(*) FROM print_jobs WHERE order_id = $1 AND status = 'COMPLETED'",
               "o-cat", 4);
    wait_count("SELECT COUNT(*) FROM bus_jobs WHERE queue = 'print-job.completed@order-service'"
               " AND data LIKE $1",
               "%o-cat%", 4);
    assert_true(
        count("SELECT COUNT(*) FROM webhook_deliveries WHERE provider = 'simplyprint'", NULL) >= 8);
    assert_int_equal(count("SELECT COUNT(*) FROM simplyprint_connections WHERE status ="
                           " 'CONNECTED' AND tenant_id = $1",
                           TENANT),
                     1);

    /* The internal API behind the gateway: the key is checked, and a requeue of a finished
     * order adds nothing. */
    assert_int_equal(post_internal("wrong", "{\"orderId\":\"o-cat\"}", NULL), 401);
    char *answer = NULL;
    assert_int_equal(post_internal(INTERNAL_KEY, "{\"orderId\":\"o-cat\"}", &answer), 201);
    assert_non_null(strstr(answer, "\"created\":0"));
    assert_non_null(strstr(answer, "\"existing\":4"));
    free(answer);
    assert_int_equal(count("SELECT COUNT(*) FROM print_jobs", NULL), 4);
}

/* Items SimplyPrint holds: queued plus done. */
static size_t sim_items(void)
{
    json_t *st = sp_sim_state(env.sim);
    size_t n = json_array_size(json_object_get(st, "queue")) +
               json_array_size(json_object_get(st, "done_items"));
    json_decref(st);
    return n;
}

static void test_served_submission_heals_through_the_retry_queue(void **state)
{
    (void)state;
    /* The delivery's try and the entry's first attempt meet a 503. */
    assert_int_equal(sp_sim_fault(env.sim, 503, 2, -1, 0), 0);
    json_t *ev = json_pack("{s:s,s:[{s:s,s:s,s:i}]}", "orderId", "o-cat", "lineItems", "lineItemId",
                           "li-cat", "productSku", "CAT", "quantity", 2);
    err e = {0};
    assert_int_equal(bus_publish(env.orders, NULL, BUS_EV_ORDER_CREATED, TENANT, ev, &e), 0);
    json_decref(ev);
    wait_count("SELECT COUNT(*) FROM print_jobs WHERE order_id = $1 AND status = 'COMPLETED'",
               "o-cat", 4);
    wait_count("SELECT COUNT(*) FROM retry_queue WHERE job_type = 'PRINT_JOB_CREATION' AND"
               " status = 'COMPLETED' AND payload LIKE $1",
               "%o-cat%", 1);
    assert_int_equal(count("SELECT COUNT(*) FROM retry_queue WHERE job_type ="
                           " 'PRINT_JOB_CREATION'",
                           NULL),
                     1);
    assert_int_equal(count("SELECT COUNT(*) FROM bus_jobs WHERE queue ="
                           " 'order.created@print-service' AND state = 'completed'",
                           NULL),
                     1);
    assert_int_equal(sim_items(), 4);
    assert_int_equal(count("SELECT COUNT(*) FROM print_jobs", NULL), 4);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_served_order_is_printed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_served_submission_heals_through_the_retry_queue, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
