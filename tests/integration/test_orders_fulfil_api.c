/* F3_TEST: backends
 * test_orders_fulfil_api.c - fulfilment and cancellation end to end: an in-process HTTP
 * server with the intake, fulfilment and cancellation routes behind a stand-in for the
 * gateway's guard, the orders bus with its worker, a fresh database, and the Shopify
 * simulator as its own process delivering real signed webhooks. Covered: an orders/cancelled
 * webhook through the intake cancels the order with the print jobs' result (printing jobs
 * flagged for review); POST /api/v1/orders/:id/cancel answers the result, again the same
 * without publishing, 409 for a completed order, 404 for an unknown one; POST
 * /api/v1/fulfillments/order/:id fulfils a COMPLETED order once (the simulator holds one
 * fulfillment), 409 for a cancelled or unfinished one; the force route fulfils an unfinished
 * order once and logs a WARNING with the user; a 4xx from Shopify answers 502 and alerts, and
 * the operator's next request tries again; a viewer is refused (403); a 503 from Shopify
 * answers 202, shows a FULFILLMENT entry in GET /api/v1/retry-queue, and the retry queue's
 * wake-up fulfils the order once.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"
#include "support/f3test_http.h"
#include "support/f3test_proc.h"

#include "bus/bus.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "http/client.h"
#include "http/server.h"
#include "services/access/user_context.h"
#include "services/common/retry.h"
#include "services/orders/cancellation.h"
#include "services/orders/fulfillment.h"
#include "services/orders/intake.h"

#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET  "shpss_fulfil_secret"
#define TOKEN   "shpat_fulfil_token"
#define SHOP    "f3connect-sim.myshopify.com"
#define KEY_HEX "1f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define WAIT_MS 15000

#define PRINT_CANCELLED_Q "order.cancelled@print-service"

static const char *backend;

static struct {
    f3test_bus tb;
    config *cfg;
    bus *b;
    bus_emitter *em;
    orders_intake *in;
    orders_fulfillment *ff;
    retry_queue *rq;
    orders_cancellation_deps cancel;
    http_router *router;
    http_server *server;
    int port;
    char *dir;
    f3test_proc sim;
    int sim_port;
    char sim_base[64];
    char tenant[80];
} env;

static const bus_worker_opts fast = {
    .poll_ms = 50, .stalled_interval_ms = -1, .repeat_interval_ms = -1, .trim_interval_ms = -1};

/* ---- helpers ------------------------------------------------------------------------ */

static int64_t count(const char *sql, const char *param)
{
    return f3test_bus_count(env.tb.d, sql, param);
}

static int64_t wait_count(const char *sql, const char *param, int64_t want)
{
    int64_t n = -1;
    for (int i = 0; i < WAIT_MS / 20; i++) {
        n = count(sql, param);
        if (n == want)
            break;
        f3test_sleep_ms(20);
    }
    return n;
}

static json_t *control(const char *method, const char *path, json_t *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", env.sim_base, path);
    json_t *out = NULL;
    http_client_response rs;
    err e;
    if (http_client_json(method, url, NULL, body, 5000, &out, &rs, &e))
        fail_msg("%s %s: %s", method, path, e.msg);
    http_client_response_free(&rs);
    json_decref(body);
    return out;
}

/* An order in the simulator, delivered as orders/create; its Shopify id (caller frees). */
static char *sim_order(void)
{
    json_t *body = json_pack(
        "{s:{s:s,s:s,s:{s:s,s:s},s:{s:s,s:s,s:s,s:s},s:[{s:s,s:s,s:i,s:s}]},s:b}", "order", "email",
        "ann@example.org", "financial_status", "paid", "customer", "first_name", "Ann", "last_name",
        "Lee", "shipping_address", "address1", "Main St 1", "city", "Gent", "zip", "9000",
        "country_code", "BE", "line_items", "title", "Vase", "sku", "VASE-1", "quantity", 2,
        "price", "10.00", "deliver", true);
    json_t *answer = control("POST", "/_sim/orders", body);
    json_int_t id = json_integer_value(json_object_get(json_object_get(answer, "order"), "id"));
    assert_true(id > 0);
    char *text = malloc(SHOPIFY_ID_LEN);
    snprintf(text, SHOPIFY_ID_LEN, "%lld", (long long)id);
    json_decref(answer);
    return text;
}

static size_t sim_fulfillment_count(const char *shopify_id)
{
    char path[96];
    snprintf(path, sizeof path, "/_sim/fulfillments?order_id=%s", shopify_id);
    json_t *doc = control("GET", path, NULL);
    size_t n = json_array_size(json_object_get(doc, "fulfillments"));
    json_decref(doc);
    return n;
}

/* Our id of a Shopify order once the intake stored it (caller frees). */
static char *stored_order(const char *shopify_id)
{
    assert_int_equal(
        wait_count("SELECT COUNT(*) FROM orders WHERE shopify_order_id = $1", shopify_id, 1), 1);
    err e;
    db_conn *c = db_acquire(env.tb.d, &e);
    assert_non_null(c);
    db_stmt *s = db_prepare(c, "SELECT id FROM orders WHERE shopify_order_id = $1", &e);
    assert_non_null(s);
    db_bind_text(s, 1, shopify_id);
    assert_int_equal(db_step(s, &e), DB_ROW);
    char *id = strdup(db_col_text(s, 0));
    db_finalize(s);
    db_release(c);
    return id;
}

static void set_status(const char *order_id, const char *status)
{
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE orders SET status = '%s' WHERE id = '%s'", status, order_id);
    f3test_bus_exec(env.tb.d, sql);
}

/* A print job of the order's first line item in `status`. */
static void add_job(const char *order_id, int n, const char *status)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO print_jobs (id, tenant_id, order_id, line_item_id, unit_index, status,"
             " created_at, updated_at) SELECT '%s-%d', tenant_id, order_id, id, %d, '%s', 0, 0"
             " FROM line_items WHERE order_id = '%s'",
             order_id, n, n, status, order_id);
    f3test_bus_exec(env.tb.d, sql);
}

/* Calls our server as a user of the tenant with `role`; the status, *out the JSON. */
static int call(const char *method, const char *path, const char *role, const char *body,
                json_t **out)
{
    buf raw;
    buf_init(&raw, 0);
    buf_printf(&raw,
               "%s %s HTTP/1.1\r\nHost: t\r\nX-Test-Tenant: %s\r\nX-Test-Role: %s\r\n"
               "Connection: close\r\n",
               method, path, env.tenant, role);
    if (body)
        buf_printf(&raw, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   strlen(body), body);
    else
        buf_puts(&raw, "Content-Length: 0\r\n\r\n");
    f3test_http_response r = {0};
    assert_int_equal(f3test_http_request(env.port, buf_cstr(&raw), &r), 0);
    int status = r.status;
    json_error_t je;
    if (out)
        *out = json_loads(r.body, 0, &je);
    f3test_http_response_free(&r);
    buf_free(&raw);
    return status;
}

static int post(const char *path, const char *role, const char *body, json_t **out)
{
    return call("POST", path, role, body, out);
}

static int jobs_field(const json_t *result, const char *name)
{
    return (int)json_integer_value(json_object_get(json_object_get(result, "jobs"), name));
}

/* ---- environment -------------------------------------------------------------------- */

static int test_guard(http_request *req, const http_route *route, http_response *res, void *ctx)
{
    (void)ctx;
    if (strcmp(route->access, HTTP_ACCESS_PUBLIC) == 0 ||
        strcmp(route->access, HTTP_ACCESS_WEBHOOK) == 0)
        return 0;
    const char *tenant = http_req_header(req, "X-Test-Tenant");
    const char *role = http_req_header(req, "X-Test-Role");
    if (!tenant) {
        http_res_error(res, 401, "Authentication required");
        return 1;
    }
    user_ctx *u = user_ctx_new("user-op", tenant, "op@example.com", role ? role : "admin", false);
    if (!u)
        return F3_ENOMEM;
    http_req_set_user(req, u, user_ctx_free);
    if (!user_ctx_can(u, route->access)) {
        http_res_error(res, 403, "Forbidden");
        return 1;
    }
    return 0;
}

static void set(const char *flag, const char *value)
{
    err e;
    if (config_set_flag(env.cfg, flag, value, &e))
        fail_msg("%s: %s", flag, e.msg);
}

static int start_sim(void)
{
    char port[16], hook[128];
    snprintf(port, sizeof port, "%d", env.sim_port);
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/api/v1/webhooks/shopify", env.port);
    snprintf(env.sim_base, sizeof env.sim_base, "http://127.0.0.1:%d", env.sim_port);
    const char *argv[] = {"sim",
                          "shopify",
                          "--port",
                          port,
                          "--secret",
                          SECRET,
                          "--token",
                          TOKEN,
                          "--webhook-url",
                          hook,
                          "--retry-base-ms",
                          "100",
                          "--max-retries",
                          "3",
                          "--shop",
                          SHOP,
                          NULL};
    const char *envp[] = {"LOG_LEVEL=warn", NULL};
    if (f3test_proc_start(&env.sim, env.dir, argv, envp))
        return -1;
    return f3test_wait_http_ok(env.sim_port, "/_sim/health", &env.sim, 15000);
}

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOG_WARN);
    f3test_bus_new(&env.tb, backend);
    env.dir = f3test_tmpdir();
    env.cfg = config_new();
    env.port = f3test_free_port();
    env.sim_port = f3test_free_port();
    while (env.sim_port == env.port)
        env.sim_port = f3test_free_port();
    char sim_url[64];
    snprintf(sim_url, sizeof sim_url, "http://127.0.0.1:%d", env.sim_port);
    set("data-dir", env.dir);
    set("encryption-key", KEY_HEX);
    set("shopify-shop-domain", SHOP);
    set("shopify-api-secret", SECRET);
    set("shopify-access-token", TOKEN);
    set("shopify-api-url", sim_url);
    err e = {0};
    env.b = bus_new_with(env.tb.d, env.tb.s, BUS_SVC_ORDER, &fast, &e);
    env.em = bus_emitter_new();
    env.router = http_router_new();
    env.rq = retry_new(env.tb.d, NULL);
    orders_intake_deps deps = {.db = env.tb.d, .bus = env.b, .store = env.tb.s, .config = env.cfg};
    orders_fulfillment_deps fd = {.db = env.tb.d,
                                  .bus = env.b,
                                  .store = env.tb.s,
                                  .config = env.cfg,
                                  .emitter = env.em,
                                  .retry = env.rq,
                                  .retry_base_ms = 50};
    env.cancel = (orders_cancellation_deps){.db = env.tb.d, .bus = env.b};
    if (!env.b || !env.em || !env.router || orders_intake_start(&env.in, &deps, env.router, &e) ||
        orders_fulfillment_start(&env.ff, &fd, env.router, &e) ||
        orders_cancellation_add_routes(env.router, &env.cancel, &e) ||
        retry_api_add_routes(env.router, env.tb.d, &e) ||
        retry_schedule(env.rq, env.b, env.tb.s, 60000, &e) || bus_start(env.b, &e)) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return -1;
    }
    snprintf(env.tenant, sizeof env.tenant, "%s", orders_intake_tenant(env.in));
    http_server_opts so = {.host = "127.0.0.1",
                           .port = env.port,
                           .threads = 8,
                           .max_body = 256 * 1024,
                           .guard = test_guard};
    env.server = http_server_start(env.router, &so, &e);
    if (!env.server) {
        fprintf(stderr, "server: %s\n", e.msg);
        return -1;
    }
    env.port = http_server_port(env.server);
    f3test_bus_exec(env.tb.d, "INSERT INTO product_mappings (id, tenant_id, sku, name,"
                              " created_at, updated_at) SELECT 'pm-vase', id, 'VASE-1', 'Vase',"
                              " 0, 0 FROM tenants WHERE slug = 'default'");
    return start_sim();
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (env.sim.pid > 0) {
        f3test_proc_signal(&env.sim, SIGTERM);
        if (!f3test_proc_wait(&env.sim, 10000))
            rc = -1;
        f3test_proc_kill(&env.sim);
    }
    http_server_stop(env.server);
    orders_intake_stop(env.in);
    retry_stop(env.rq);
    bus_free(env.b);
    retry_free(env.rq);
    orders_intake_free(env.in);
    orders_fulfillment_free(env.ff);
    bus_emitter_free(env.em);
    http_router_free(env.router);
    config_free(env.cfg);
    f3test_bus_drop(&env.tb);
    if (env.dir)
        f3test_rmtree(env.dir);
    free(env.dir);
    return rc;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_cancelled_webhook_end_to_end(void **state)
{
    (void)state;
    char *sid = sim_order();
    char *id = stored_order(sid);
    set_status(id, "PROCESSING");
    add_job(id, 0, "PRINTING");
    add_job(id, 1, "QUEUED");
    char path[128];
    snprintf(path, sizeof path, "/_sim/orders/%s/events", sid);
    json_decref(control("POST", path,
                        json_pack("{s:s,s:s}", "topic", "orders/cancelled", "reason", "customer")));
    assert_int_equal(wait_count("SELECT COUNT(*) FROM order_cancellations WHERE order_id = $1 AND"
                                " source = 'webhook'",
                                id, 1),
                     1);
    assert_int_equal(count("SELECT COUNT(*) FROM orders WHERE id = $1 AND status = 'CANCELLED'"
                           " AND review_reason IS NOT NULL AND cancelled_at IS NOT NULL",
                           id),
                     1);
    /* The result, as the API answers it for the order now. */
    char api[160];
    snprintf(api, sizeof api, "/api/v1/orders/%s/cancel", id);
    json_t *r = NULL;
    assert_int_equal(post(api, "operator", NULL, &r), 200);
    assert_true(json_is_true(json_object_get(r, "alreadyCancelled")));
    assert_string_equal(json_string_value(json_object_get(r, "source")), "webhook");
    assert_int_equal(jobs_field(r, "flaggedForReview"), 1);
    assert_int_equal(jobs_field(r, "toCancel"), 1);
    assert_true(json_is_true(json_object_get(r, "needsReview")));
    json_decref(r);
    assert_int_equal(count("SELECT COUNT(*) FROM event_log WHERE event_type = 'operator.alert'"
                           " AND order_id = $1",
                           id),
                     1);
    /* A cancelled order is never fulfilled. */
    snprintf(api, sizeof api, "/api/v1/fulfillments/order/%s/force", id);
    assert_int_equal(post(api, "operator", NULL, NULL), 409);
    assert_int_equal(sim_fulfillment_count(sid), 0);
    free(id);
    free(sid);
}

static void test_cancel_route(void **state)
{
    (void)state;
    char *sid = sim_order();
    char *id = stored_order(sid);
    set_status(id, "PROCESSING");
    add_job(id, 0, "COMPLETED");
    add_job(id, 1, "ASSIGNED");
    int64_t published = count("SELECT COUNT(*) FROM bus_jobs WHERE queue = $1", PRINT_CANCELLED_Q);
    char api[160];
    snprintf(api, sizeof api, "/api/v1/orders/%s/cancel", id);
    json_t *r = NULL;
    assert_int_equal(post(api, "viewer", NULL, NULL), 403);
    assert_int_equal(post(api, "operator", "{\"reason\": 42}", NULL), 400);
    assert_int_equal(post(api, "operator", "{\"reason\":\"out of stock\"}", &r), 200);
    assert_false(json_is_true(json_object_get(r, "alreadyCancelled")));
    assert_string_equal(json_string_value(json_object_get(r, "reason")), "out of stock");
    assert_int_equal(jobs_field(r, "toCancel"), 1);
    assert_int_equal(jobs_field(r, "alreadyCompleted"), 1);
    assert_false(json_is_true(json_object_get(r, "needsReview")));
    json_decref(r);
    assert_int_equal(post(api, "operator", NULL, &r), 200);
    assert_true(json_is_true(json_object_get(r, "alreadyCancelled")));
    json_decref(r);
    assert_int_equal(count("SELECT COUNT(*) FROM bus_jobs WHERE queue = $1", PRINT_CANCELLED_Q),
                     published + 1);
    assert_int_equal(post("/api/v1/orders/no-such-order/cancel", "operator", NULL, NULL), 404);
    /* A completed order is not cancelled here. */
    char *sid2 = sim_order();
    char *id2 = stored_order(sid2);
    set_status(id2, "COMPLETED");
    snprintf(api, sizeof api, "/api/v1/orders/%s/cancel", id2);
    assert_int_equal(post(api, "operator", NULL, NULL), 409);
    free(id2);
    free(sid2);
    free(id);
    free(sid);
}

static void test_fulfil_routes(void **state)
{
    (void)state;
    char *sid = sim_order();
    char *id = stored_order(sid);
    char api[160];
    snprintf(api, sizeof api, "/api/v1/fulfillments/order/%s", id);
    /* Not COMPLETED yet: refused, nothing sent to Shopify. */
    assert_int_equal(post(api, "operator", NULL, NULL), 409);
    assert_int_equal(post(api, "viewer", NULL, NULL), 403);
    set_status(id, "COMPLETED");
    json_t *r = NULL;
    assert_int_equal(post(api, "operator", NULL, &r), 200);
    assert_string_equal(json_string_value(json_object_get(r, "outcome")), "fulfilled");
    assert_non_null(json_string_value(json_object_get(r, "fulfillmentId")));
    json_decref(r);
    assert_int_equal(post(api, "operator", NULL, &r), 200);
    assert_string_equal(json_string_value(json_object_get(r, "outcome")), "already-fulfilled");
    json_decref(r);
    assert_int_equal(sim_fulfillment_count(sid), 1);
    assert_int_equal(post("/api/v1/fulfillments/order/nope", "operator", NULL, NULL), 404);

    /* Forced for an order still printing: once, logged with the user. */
    char *sid2 = sim_order();
    char *id2 = stored_order(sid2);
    set_status(id2, "PROCESSING");
    snprintf(api, sizeof api, "/api/v1/fulfillments/order/%s/force", id2);
    assert_int_equal(post(api, "operator", NULL, &r), 200);
    assert_true(json_is_true(json_object_get(r, "forced")));
    json_decref(r);
    assert_int_equal(post(api, "operator", NULL, NULL), 200);
    assert_int_equal(sim_fulfillment_count(sid2), 1);
    assert_int_equal(count("SELECT COUNT(*) FROM event_log WHERE event_type = $1 AND"
                           " severity = 'WARNING' AND user_id = 'user-op'",
                           ORDERS_LOG_FULFILLMENT_FORCED),
                     1);

    /* Shopify refuses (4xx): 502 with the reason, one alert; the operator's next request
     * tries again and succeeds. */
    char *sid3 = sim_order();
    char *id3 = stored_order(sid3);
    set_status(id3, "COMPLETED");
    json_decref(control(
        "POST", "/_sim/faults",
        json_pack("{s:s,s:i,s:s}", "kind", "422", "count", 1, "match", "fulfillments.json")));
    snprintf(api, sizeof api, "/api/v1/fulfillments/order/%s", id3);
    assert_int_equal(post(api, "operator", NULL, &r), 502);
    assert_int_equal(json_integer_value(json_object_get(r, "statusCode")), 502);
    json_decref(r);
    assert_int_equal(count("SELECT COUNT(*) FROM event_log WHERE event_type = 'operator.alert'"
                           " AND order_id = $1",
                           id3),
                     1);
    assert_int_equal(sim_fulfillment_count(sid3), 0);
    assert_int_equal(post(api, "operator", NULL, NULL), 200);
    assert_int_equal(sim_fulfillment_count(sid3), 1);
    free(id3);
    free(sid3);
    free(id2);
    free(sid2);
    free(id);
    free(sid);
}

/* The FULFILLMENT entries GET /api/v1/retry-queue lists in `status`. */
static size_t listed(const char *status)
{
    char path[96];
    snprintf(path, sizeof path, "/api/v1/retry-queue?type=FULFILLMENT&status=%s", status);
    json_t *r = NULL;
    assert_int_equal(call("GET", path, "operator", NULL, &r), 200);
    size_t n = json_array_size(json_object_get(r, "data"));
    json_decref(r);
    return n;
}

static void test_transient_failure_goes_through_the_retry_queue(void **state)
{
    (void)state;
    char *sid = sim_order();
    char *id = stored_order(sid);
    set_status(id, "COMPLETED");
    size_t done_before = listed("COMPLETED");
    /* Two 503s: the request's own try and the entry's first attempt. */
    json_decref(control(
        "POST", "/_sim/faults",
        json_pack("{s:s,s:i,s:s}", "kind", "503", "count", 2, "match", "fulfillment_orders")));
    char api[160];
    snprintf(api, sizeof api, "/api/v1/fulfillments/order/%s", id);
    json_t *r = NULL;
    assert_int_equal(post(api, "operator", NULL, &r), 202);
    assert_string_equal(json_string_value(json_object_get(r, "outcome")), "retry-scheduled");
    json_decref(r);
    /* The operator sees it waiting, and the retry queue heals it (wake-up, backoff 1 s). */
    assert_true(listed("PENDING") + listed("PROCESSING") >= 1);
    assert_int_equal(wait_count("SELECT COUNT(*) FROM orders WHERE id = $1 AND fulfilled_at IS NOT"
                                " NULL",
                                id, 1),
                     1);
    for (int waited = 0; waited < 15000 && listed("COMPLETED") != done_before + 1; waited += 100)
        f3test_sleep_ms(100);
    assert_int_equal(listed("COMPLETED"), done_before + 1);
    assert_int_equal(listed("PENDING"), 0);
    assert_int_equal(sim_fulfillment_count(sid), 1);
    free(id);
    free(sid);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    if (sodium_init() < 0 || http_client_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancelled_webhook_end_to_end),
        cmocka_unit_test(test_cancel_route),
        cmocka_unit_test(test_fulfil_routes),
        cmocka_unit_test(test_transient_failure_goes_through_the_retry_queue),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    http_client_cleanup();
    return rc;
}
