/* F3_TEST: backends
 * test_shipping.c - the real binary (`f3connect serve`) with the shipping service wired
 * in, against the Sendcloud simulator as a process: the account configured by
 * SENDCLOUD_* connects the default tenant at start; POST /internal/shipments needs
 * X-Internal-Key and makes the shipment with its label; the simulator's signed webhook
 * reaches the public route and moves the status; bad signatures and anonymous API calls
 * are refused; cancelling after handover is refused and logged; SIGTERM stops cleanly.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"
#include "support/f3test_proc.h"

#include "core/log.h"
#include "http/client.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INTERNAL_KEY "internal-key-for-tests-0123456789"
#define KEY_HEX      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static const char *backend;

static struct {
    char *dir, *db_url;
    db *d;
    f3test_proc sim, serve;
    int sim_port, port;
    char sim_url[64], url[64];
    char tenant[80];
} env;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static long call(const char *base, const char *method, const char *path, const char *header,
                 const char *body, buf *out)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    const char *headers[] = {header, NULL};
    http_client_request rq = {.method = method,
                              .url = url,
                              .headers = header ? headers : NULL,
                              .body = body,
                              .body_len = body ? strlen(body) : 0,
                              .content_type = body ? "application/json" : NULL};
    http_client_response rs;
    err e;
    http_client_send(&rq, &rs, &e);
    long status = rs.status;
    if (out)
        buf_append(out, rs.body.data ? rs.body.data : "", rs.body.len);
    http_client_response_free(&rs);
    return status;
}

static void status_of(const char *order_id, char *out, size_t size)
{
    err e = {0};
    db_conn *c = db_acquire(env.d, &e);
    assert_non_null(c);
    db_stmt *st = db_prepare(c, "SELECT status FROM shipments WHERE order_id = $1", &e);
    assert_non_null(st);
    db_bind_text(st, 1, order_id);
    out[0] = '\0';
    if (db_step(st, &e) == DB_ROW)
        db_col_copy(st, 0, out, size);
    db_finalize(st);
    db_release(c);
}

static void wait_status(const char *order_id, const char *want)
{
    char now[64] = "";
    for (int i = 0; i < 300; i++) {
        status_of(order_id, now, sizeof now);
        if (strcmp(now, want) == 0)
            return;
        sleep_ms(50);
    }
    fail_msg("shipment of %s is '%s', expected '%s'", order_id, now, want);
}

static int start_sim(void)
{
    char port[16], hook[128];
    snprintf(port, sizeof port, "%d", env.sim_port);
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/api/v1/webhooks/sendcloud", env.port);
    const char *argv[] = {"sim",
                          "sendcloud",
                          "--port",
                          port,
                          "--public-key",
                          "pub",
                          "--secret-key",
                          "sec",
                          "--webhook-url",
                          hook,
                          "--step-ms",
                          "-1",
                          "--retry-base-ms",
                          "200",
                          "--max-retries",
                          "5",
                          NULL};
    const char *envp[] = {"LOG_LEVEL=warn", NULL};
    if (f3test_proc_start(&env.sim, env.dir, argv, envp))
        return -1;
    return f3test_wait_http_ok(env.sim_port, "/_sim/health", &env.sim, 15000);
}

static int start_serve(void)
{
    char port[32], db_url[1024], sim_url[96];
    snprintf(port, sizeof port, "PORT=%d", env.port);
    snprintf(db_url, sizeof db_url, "DATABASE_URL=%s", env.db_url);
    snprintf(sim_url, sizeof sim_url, "SENDCLOUD_API_URL=%s", env.sim_url);
    static const char key_env[] = "INTERNAL_API_KEY=" INTERNAL_KEY;
    static const char seal_env[] = "ENCRYPTION_KEY=" KEY_HEX;
    const char *argv[] = {"serve", NULL};
    const char *envp[] = {port,
                          "HOST=127.0.0.1",
                          db_url,
                          "DATA_DIR=./data",
                          "LOG_LEVEL=warn",
                          "SHUTDOWN_TIMEOUT=5s",
                          key_env,
                          seal_env,
                          "SENDCLOUD_PUBLIC_KEY=pub",
                          "SENDCLOUD_SECRET_KEY=sec",
                          sim_url,
                          "SENDCLOUD_RETRY_BASE=100ms",
                          NULL};
    if (f3test_proc_start(&env.serve, env.dir, argv, envp))
        return -1;
    return f3test_wait_http_ok(env.port, "/health", &env.serve, 20000);
}

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOG_WARN);
    http_client_init();
    env.dir = f3test_tmpdir();
    env.db_url = f3test_db_url(backend);
    env.port = f3test_free_port();
    env.sim_port = f3test_free_port();
    while (env.sim_port == env.port)
        env.sim_port = f3test_free_port();
    snprintf(env.sim_url, sizeof env.sim_url, "http://127.0.0.1:%d", env.sim_port);
    snprintf(env.url, sizeof env.url, "http://127.0.0.1:%d", env.port);
    if (start_sim() || start_serve())
        return -1;
    err e = {0};
    if (db_open(env.db_url, NULL, &env.d, &e)) {
        fprintf(stderr, "db: %s\n", e.msg);
        return -1;
    }
    db_conn *c = db_acquire(env.d, &e);
    db_stmt *st = c ? db_prepare(c, "SELECT id FROM tenants WHERE slug = 'default'", &e) : NULL;
    int rc = st && db_step(st, &e) == DB_ROW ? 0 : -1;
    if (rc == 0)
        db_col_copy(st, 0, env.tenant, sizeof env.tenant);
    db_finalize(st);
    db_release(c);
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (env.serve.pid > 0) {
        f3test_proc_signal(&env.serve, SIGTERM);
        if (!f3test_proc_wait(&env.serve, 15000) || env.serve.status != 0) {
            char *text = f3test_slurp(env.serve.err_path);
            fprintf(stderr, "serve did not stop cleanly:\n%s\n", text);
            free(text);
            rc = -1;
        }
        f3test_proc_kill(&env.serve);
    }
    if (env.sim.pid > 0) {
        f3test_proc_signal(&env.sim, SIGTERM);
        f3test_proc_wait(&env.sim, 10000);
        f3test_proc_kill(&env.sim);
    }
    db_close(env.d);
    f3test_db_drop(env.db_url);
    free(env.db_url);
    f3test_rmtree(env.dir);
    free(env.dir);
    http_client_cleanup();
    return rc;
}

static void add_order(const char *id)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number, status,"
             " customer_name, shipping_address, total_minor, currency, created_at, updated_at)"
             " VALUES ('%s', '%s', 'sh-%s', '#1001', 'COMPLETED', 'Ann Lee',"
             " '{\"address1\":\"Main St 1\",\"city\":\"Gent\",\"countryCode\":\"BE\","
             "\"name\":\"Ann Lee\",\"zip\":\"9000\"}', 2350, 'EUR', 0, 0)",
             id, env.tenant, id);
    f3test_bus_exec(env.d, sql);
}

static void test_shipment_through_the_binary(void **state)
{
    (void)state;
    add_order("ord-1");
    char path[256];
    snprintf(path, sizeof path, "/internal/shipments?tenantId=%s", env.tenant);
    const char *body = "{\"orderId\": \"ord-1\"}";
    assert_int_equal(call(env.url, "POST", path, NULL, body, NULL), 401);
    assert_int_equal(call(env.url, "POST", path, "X-Internal-Key: wrong", body, NULL), 401);
    buf out;
    buf_init(&out, 0);
    assert_int_equal(call(env.url, "POST", path, "X-Internal-Key: " INTERNAL_KEY, body, &out), 202);
    buf_free(&out);
    wait_status("ord-1", "READY_TO_SEND");
    assert_int_equal(f3test_bus_count(env.d,
                                      "SELECT COUNT(*) FROM shipment_labels l JOIN shipments s"
                                      " ON s.id = l.shipment_id WHERE s.order_id = $1",
                                      "ord-1"),
                     1);
    assert_int_equal(f3test_bus_count(env.d,
                                      "SELECT COUNT(*) FROM bus_jobs WHERE queue ="
                                      " 'shipment.created@order-service'",
                                      NULL),
                     1);

    /* The simulator's signed webhook passes the public route and the signature check. */
    assert_int_equal(call(env.url, "POST", "/api/v1/webhooks/sendcloud",
                          "Sendcloud-Signature: 0000", "{\"action\":\"x\"}", NULL),
                     401);
    buf answer;
    buf_init(&answer, 0);
    assert_int_equal(call(env.sim_url, "POST", "/_sim/advance", NULL, "{}", &answer), 200);
    buf_free(&answer);
    wait_status("ord-1", "IN_TRANSIT");

    /* The API is behind the gateway. */
    assert_int_equal(call(env.url, "GET", "/api/v1/shipments", NULL, NULL, NULL), 401);
    assert_int_equal(call(env.url, "GET", "/api/v1/integrations/sendcloud", NULL, NULL, NULL), 401);

    /* With the carrier already: refused and logged for an operator. */
    snprintf(path, sizeof path, "/internal/shipments/ord-1?tenantId=%s", env.tenant);
    assert_int_equal(call(env.url, "DELETE", path, "X-Internal-Key: " INTERNAL_KEY, NULL, NULL),
                     202);
    for (int i = 0; i < 200 && f3test_bus_count(env.d,
                                                "SELECT COUNT(*) FROM event_log WHERE"
                                                " event_type = $1",
                                                "shipment.cancel-refused") == 0;
         i++)
        sleep_ms(50);
    /* (The served platform also alerts that the order cannot be fulfilled: this test
     * connects no Shopify shop.) */
    assert_int_equal(f3test_bus_count(env.d,
                                      "SELECT COUNT(*) FROM event_log WHERE event_type ="
                                      " 'operator.alert' AND message LIKE $1",
                                      "%CANCELLATION_NEEDS_REVIEW%"),
                     1);
    char st[32];
    status_of("ord-1", st, sizeof st);
    assert_string_equal(st, "IN_TRANSIT");
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipment_through_the_binary),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
