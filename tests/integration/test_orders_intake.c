/* F3_TEST: backends
 * test_orders_intake.c - the orders service's Shopify intake end to end: an in-process
 * HTTP server with the intake's routes, a bus of the orders service with its worker, a
 * fresh database, and the Shopify simulator as its own process delivering real signed
 * webhooks. Covered: an order created once with its order.created job and event log;
 * wrong or missing signatures, unknown shops and malformed bodies refused with nothing
 * stored; one delivery sent five times at once handled once; orders/updated before
 * orders/create; cancellation fanned out to both subscribers; unmapped SKUs; refunds;
 * the topic in the path; backfill through the simulator's paginated order list twice
 * (over HTTP) and through the CLI binary; a reconciliation tick importing a missed order;
 * 413 for an oversized body; app/uninstalled disconnecting the shop.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"
#include "support/f3test_http.h"
#include "support/f3test_proc.h"

#include "bus/bus.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "http/client.h"
#include "http/server.h"
#include "integrations/shopify/webhook.h"
#include "services/orders/intake.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET  "shpss_intake_secret"
#define TOKEN   "shpat_intake_token"
#define SHOP    "f3connect-sim.myshopify.com"
#define KEY_HEX "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define WAIT_MS 15000

#define PRINT_CREATED_Q   "order.created@print-service"
#define PRINT_CANCELLED_Q "order.cancelled@print-service"
#define SHIP_CANCELLED_Q  "order.cancelled@shipping-service"

static const char *backend;

static struct {
    f3test_bus tb;
    config *cfg;
    bus *b;
    orders_intake *in;
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

/* Waits until sql (one optional parameter) counts want; returns the last count. */
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

static int64_t jobs(const char *queue)
{
    return count("SELECT COUNT(*) FROM bus_jobs WHERE queue = $1", queue);
}

static int64_t deliveries(void)
{
    return count("SELECT COUNT(*) FROM webhook_deliveries", NULL);
}

/* Waits until the webhook queue has nothing waiting or active. */
static void wait_idle(void)
{
    const char *sql = "SELECT COUNT(*) FROM bus_jobs WHERE queue = $1 AND"
                      " state IN ('waiting', 'active', 'delayed', 'prioritized')";
    assert_int_equal(wait_count(sql, ORDERS_WEBHOOK_QUEUE, 0), 0);
    assert_int_equal(count("SELECT COUNT(*) FROM bus_jobs WHERE queue = $1 AND state = 'failed'",
                           ORDERS_WEBHOOK_QUEUE),
                     0);
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

/* Creates an order in the simulator (VASE-1 x qty, and a coaster without SKU);
 * returns its id (caller frees). */
static char *sim_order(int quantity, bool deliver, int duplicates)
{
    json_t *body = json_pack(
        "{s:{s:s,s:s,s:{s:s,s:s},s:{s:s,s:s,s:s,s:s},s:[{s:s,s:s,s:i,s:s},{s:s,s:n,s:i,s:s}]},"
        "s:b,s:i}",
        "order", "email", "ann@example.org", "financial_status", "pending", "customer",
        "first_name", "Ann", "last_name", "Lee", "shipping_address", "address1", "Main St 1",
        "city", "Gent", "zip", "9000", "country_code", "BE", "line_items", "title", "Vase", "sku",
        "VASE-1", "quantity", quantity, "price", "10.00", "title", "Coaster", "sku", "quantity", 1,
        "price", "3.50", "deliver", deliver, "duplicates", duplicates);
    json_t *answer = control("POST", "/_sim/orders", body);
    json_int_t id = json_integer_value(json_object_get(json_object_get(answer, "order"), "id"));
    assert_true(id > 0);
    char *text = malloc(SHOPIFY_ID_LEN);
    snprintf(text, SHOPIFY_ID_LEN, "%lld", (long long)id);
    json_decref(answer);
    return text;
}

static void sim_event(const char *id, const char *topic)
{
    char path[128];
    snprintf(path, sizeof path, "/_sim/orders/%s/events", id);
    json_decref(
        control("POST", path, json_pack("{s:s,s:s}", "topic", topic, "reason", "customer")));
}

/* The simulator's current JSON of an order (caller frees). */
static char *sim_order_json(const char *id)
{
    char url[256];
    snprintf(url, sizeof url, "%s/admin/api/2025-10/orders/%s.json", env.sim_base, id);
    const char *headers[] = {"X-Shopify-Access-Token: " TOKEN, NULL};
    json_t *out = NULL;
    http_client_response rs;
    err e;
    if (http_client_json("GET", url, headers, NULL, 5000, &out, &rs, &e))
        fail_msg("GET order: %s", e.msg);
    http_client_response_free(&rs);
    char *text = json_dumps(json_object_get(out, "order"), JSON_COMPACT);
    json_decref(out);
    return text;
}

/* Posts a webhook as Shopify would; hmac NULL = sign with SECRET, "" = no header;
 * topic NULL = no topic header; event_id NULL = no X-Shopify-Event-Id (webhook_id is
 * always sent). Returns the status; *body_out (may be NULL) the body. */
static int post_webhook_ex(const char *path, const char *topic, const char *shop,
                           const char *event_id, const char *webhook_id, const char *hmac,
                           const char *body, char **body_out)
{
    buf sig, raw;
    buf_init(&sig, 0);
    buf_init(&raw, 0);
    if (!hmac)
        assert_int_equal(shopify_webhook_sign(SECRET, body, strlen(body), &sig), 0);
    buf_printf(&raw,
               "POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               "Content-Length: %zu\r\nConnection: close\r\nX-Shopify-Shop-Domain: %s\r\n"
               "X-Shopify-Webhook-Id: %s\r\nX-Shopify-API-Version: 2025-10\r\n",
               path, strlen(body), shop, webhook_id);
    if (event_id)
        buf_printf(&raw, "X-Shopify-Event-Id: %s\r\n", event_id);
    if (topic)
        buf_printf(&raw, "X-Shopify-Topic: %s\r\n", topic);
    if (!hmac || *hmac)
        buf_printf(&raw, "X-Shopify-Hmac-Sha256: %s\r\n", hmac ? hmac : buf_cstr(&sig));
    buf_printf(&raw, "\r\n%s", body);
    f3test_http_response r = {0};
    assert_int_equal(f3test_http_request(env.port, buf_cstr(&raw), &r), 0);
    int status = r.status;
    if (body_out)
        *body_out = strdup(r.body);
    f3test_http_response_free(&r);
    buf_free(&sig);
    buf_free(&raw);
    return status;
}

static int post_webhook(const char *path, const char *topic, const char *shop, const char *event_id,
                        const char *hmac, const char *body, char **body_out)
{
    char webhook_id[128];
    snprintf(webhook_id, sizeof webhook_id, "w-%s", event_id);
    return post_webhook_ex(path, topic, shop, event_id, webhook_id, hmac, body, body_out);
}

/* ---- environment -------------------------------------------------------------------- */

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
    char sim_url[64];
    env.sim_port = f3test_free_port();
    while (env.sim_port == env.port)
        env.sim_port = f3test_free_port();
    snprintf(sim_url, sizeof sim_url, "http://127.0.0.1:%d", env.sim_port);
    set("data-dir", env.dir);
    set("encryption-key", KEY_HEX);
    set("shopify-shop-domain", SHOP);
    set("shopify-api-secret", SECRET);
    set("shopify-access-token", TOKEN);
    set("shopify-api-url", sim_url);
    err e;
    env.b = bus_new_with(env.tb.d, env.tb.s, BUS_SVC_ORDER, &fast, &e);
    env.router = http_router_new();
    orders_intake_deps deps = {.db = env.tb.d,
                               .bus = env.b,
                               .store = env.tb.s,
                               .config = env.cfg,
                               .backfill_page_limit = 2};
    if (!env.b || !env.router || orders_intake_start(&env.in, &deps, env.router, &e) ||
        bus_start(env.b, &e)) {
        fprintf(stderr, "intake: %s\n", e.msg);
        return -1;
    }
    snprintf(env.tenant, sizeof env.tenant, "%s", orders_intake_tenant(env.in));
    http_server_opts so = {
        .host = "127.0.0.1", .port = env.port, .threads = 8, .max_body = 256 * 1024};
    env.server = http_server_start(env.router, &so, &e);
    if (!env.server) {
        fprintf(stderr, "server: %s\n", e.msg);
        return -1;
    }
    env.port = http_server_port(env.server);
    if (start_sim())
        return -1;
    f3test_bus_exec(env.tb.d, "INSERT INTO product_mappings (id, tenant_id, sku, name,"
                              " created_at, updated_at) SELECT 'pm-vase', id, 'VASE-1', 'Vase',"
                              " 0, 0 FROM tenants WHERE slug = 'default'");
    return 0;
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
    bus_free(env.b);
    orders_intake_free(env.in);
    http_router_free(env.router);
    config_free(env.cfg);
    f3test_bus_drop(&env.tb);
    if (env.dir)
        f3test_rmtree(env.dir);
    free(env.dir);
    return rc;
}

/* ---- tests -------------------------------------------------------------------------- */

static const char *ORDER_BY_SHOPIFY_ID = "SELECT COUNT(*) FROM orders WHERE shopify_order_id = $1";

/* Our id of the order with Shopify id shopify_id (caller frees). */
static char *our_id(const char *shopify_id)
{
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

static void test_order_created_once_with_event_and_log(void **state)
{
    (void)state;
    char *id = sim_order(2, true, 0);
    assert_int_equal(wait_count(ORDER_BY_SHOPIFY_ID, id, 1), 1);
    wait_idle();
    char *order_id = our_id(id);
    /* One order.created for it in the print service's queue, with the catalog payload. */
    bus_job **list = NULL;
    size_t n = 0;
    err e;
    assert_int_equal(bus_store_list(env.tb.s, PRINT_CREATED_Q, BUS_STATE_WAITING, 0, 100,
                                    clock_now_ms(), &list, &n, &e),
                     0);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_loads(list[i]->data, 0, NULL);
        if (strcmp(json_string_value(json_object_get(ev, "orderId")), order_id) == 0) {
            found++;
            json_t *items = json_object_get(ev, "lineItems");
            assert_int_equal(json_array_size(items), 2);
            json_t *vase = json_array_get(items, 0);
            assert_string_equal(json_string_value(json_object_get(vase, "productSku")), "VASE-1");
            assert_int_equal(json_integer_value(json_object_get(vase, "quantity")), 2);
            assert_string_equal(json_string_value(json_object_get(ev, "eventType")),
                                "order.created");
            assert_string_equal(json_string_value(json_object_get(ev, "source")), "order-service");
            assert_string_equal(json_string_value(json_object_get(ev, "tenantId")), env.tenant);
        }
        json_decref(ev);
    }
    free(order_id);
    char sql[256];
    bus_jobs_free(list, n);
    assert_int_equal(found, 1);
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM event_log e JOIN orders o ON o.id = e.order_id WHERE"
             " o.shopify_order_id = '%s' AND e.event_type = $1",
             id);
    assert_int_equal(count(sql, "order.created"), 1);
    assert_int_equal(count("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'PROCESSED'"
                           " AND topic = $1",
                           "orders/create"),
                     1);
    free(id);
}

static void test_bad_signatures_unknown_shops_and_bad_bodies_store_nothing(void **state)
{
    (void)state;
    int64_t before = deliveries(), orders = count("SELECT COUNT(*) FROM orders", NULL);
    const char *path = "/api/v1/webhooks/shopify";
    const char *order = "{\"id\":4242,\"name\":\"#9\",\"order_number\":9,\"currency\":\"EUR\","
                        "\"total_price\":\"1.00\",\"created_at\":\"2026-01-01T00:00:00Z\","
                        "\"updated_at\":\"2026-01-01T00:00:00Z\",\"line_items\":[]}";
    char *answer = NULL;
    assert_int_equal(post_webhook(path, "orders/create", SHOP, "bad-1",
                                  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", order, NULL),
                     401);
    assert_int_equal(post_webhook(path, "orders/create", SHOP, "bad-2", "", order, NULL), 401);
    assert_int_equal(post_webhook(path, "orders/create", "someone-else.myshopify.com", "bad-3",
                                  NULL, order, &answer),
                     401);
    assert_non_null(strstr(answer, "Unknown shop"));
    free(answer);
    assert_int_equal(post_webhook(path, "orders/create", SHOP, "bad-4", NULL, "{not json", &answer),
                     400);
    assert_non_null(strstr(answer, "not JSON"));
    free(answer);
    assert_int_equal(post_webhook(path, "orders/create", SHOP, "bad-5", NULL,
                                  "{\"id\":1,\"line_items\":[]}", &answer),
                     400);
    assert_non_null(strstr(answer, "Invalid orders/create payload"));
    free(answer);
    assert_int_equal(post_webhook(path, "products/create", SHOP, "bad-6", NULL, "{}", NULL), 400);
    assert_int_equal(deliveries(), before);
    assert_int_equal(count("SELECT COUNT(*) FROM orders", NULL), orders);
}

typedef struct racer {
    const char *body;
    int status;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    r->status = post_webhook("/api/v1/webhooks/shopify", "orders/create", SHOP, "evt-race", NULL,
                             r->body, NULL);
    return NULL;
}

static void test_same_delivery_five_times_at_once(void **state)
{
    (void)state;
    char *id = sim_order(1, false, 0);
    char *body = sim_order_json(id);
    int64_t created_before = jobs(PRINT_CREATED_Q);
    pthread_t t[5];
    racer r[5];
    for (int i = 0; i < 5; i++) {
        r[i] = (racer){body, 0};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < 5; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].status, 200);
    }
    assert_int_equal(wait_count(ORDER_BY_SHOPIFY_ID, id, 1), 1);
    wait_idle();
    assert_int_equal(
        count("SELECT COUNT(*) FROM webhook_deliveries WHERE delivery_id = $1", "evt-race"), 1);
    assert_int_equal(jobs(PRINT_CREATED_Q), created_before + 1);
    /* The simulator's own duplicates (one event id, several deliveries) too. */
    char *dup = sim_order(1, true, 3);
    assert_int_equal(wait_count(ORDER_BY_SHOPIFY_ID, dup, 1), 1);
    f3test_sleep_ms(300);
    wait_idle();
    assert_int_equal(jobs(PRINT_CREATED_Q), created_before + 2);
    free(dup);
    free(body);
    free(id);
}

/* One merchant action fans out to several topics under one event id: each is handled.
 * Without an event id, the webhook id is the key. */
static void test_event_ids_are_scoped_by_topic(void **state)
{
    (void)state;
    char *id = sim_order(1, false, 0);
    char *body = sim_order_json(id);
    const char *path = "/api/v1/webhooks/shopify";
    int64_t before = deliveries();
    assert_int_equal(post_webhook(path, "orders/create", SHOP, "fan-out", NULL, body, NULL), 200);
    assert_int_equal(post_webhook(path, "orders/paid", SHOP, "fan-out", NULL, body, NULL), 200);
    assert_int_equal(post_webhook(path, "orders/paid", SHOP, "fan-out", NULL, body, NULL), 200);
    for (int i = 0; i < 2; i++)
        assert_int_equal(post_webhook_ex(path, "orders/updated", SHOP, NULL, "only-webhook-id",
                                         NULL, body, NULL),
                         200);
    assert_int_equal(deliveries(), before + 3);
    assert_int_equal(
        count("SELECT COUNT(*) FROM webhook_deliveries WHERE delivery_id = $1", "only-webhook-id"),
        1);
    wait_idle();
    assert_int_equal(count("SELECT COUNT(*) FROM webhook_deliveries WHERE delivery_id = $1 AND"
                           " status = 'PROCESSED'",
                           "fan-out"),
                     2);
    assert_int_equal(count(ORDER_BY_SHOPIFY_ID, id), 1);
    free(body);
    free(id);
}

static void test_updated_before_created(void **state)
{
    (void)state;
    char *id = sim_order(3, false, 0);
    char *create_body = sim_order_json(id);
    int64_t created_before = jobs(PRINT_CREATED_Q);
    sim_event(id, "orders/updated");
    assert_int_equal(wait_count(ORDER_BY_SHOPIFY_ID, id, 1), 1);
    wait_idle();
    assert_int_equal(jobs(PRINT_CREATED_Q), created_before + 1);
    /* The late create (signed as Shopify would) is accepted and changes nothing. */
    assert_int_equal(post_webhook("/api/v1/webhooks/shopify", "orders/create", SHOP, "late-create",
                                  NULL, create_body, NULL),
                     200);
    f3test_sleep_ms(200);
    wait_idle();
    assert_int_equal(count(ORDER_BY_SHOPIFY_ID, id), 1);
    assert_int_equal(jobs(PRINT_CREATED_Q), created_before + 1);
    free(create_body);
    free(id);
}

static void test_cancelled_reaches_both_subscribers(void **state)
{
    (void)state;
    char *id = sim_order(1, true, 0);
    assert_int_equal(wait_count(ORDER_BY_SHOPIFY_ID, id, 1), 1);
    wait_idle();
    int64_t print_before = jobs(PRINT_CANCELLED_Q), ship_before = jobs(SHIP_CANCELLED_Q);
    sim_event(id, "orders/cancelled");
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM orders WHERE shopify_order_id = $1 AND status = 'CANCELLED'");
    assert_int_equal(wait_count(sql, id, 1), 1);
    wait_idle();
    assert_int_equal(jobs(PRINT_CANCELLED_Q), print_before + 1);
    assert_int_equal(jobs(SHIP_CANCELLED_Q), ship_before + 1);
    free(id);
}

static void test_unmapped_sku_needs_mapping(void **state)
{
    (void)state;
    char *id = sim_order(1, true, 0);
    assert_int_equal(wait_count(ORDER_BY_SHOPIFY_ID, id, 1), 1);
    wait_idle();
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM line_items l JOIN orders o ON o.id = l.order_id WHERE"
             " o.shopify_order_id = '%s' AND l.needs_mapping = TRUE AND l.sku IS NULL",
             id);
    assert_int_equal(count(sql, NULL), 1);
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM line_items l JOIN orders o ON o.id = l.order_id WHERE"
             " o.shopify_order_id = '%s' AND l.needs_mapping = FALSE AND"
             " l.product_mapping_id = 'pm-vase'",
             id);
    assert_int_equal(count(sql, NULL), 1);
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM event_log e JOIN orders o ON o.id = e.order_id WHERE"
             " o.shopify_order_id = '%s' AND e.event_type = $1",
             id);
    assert_int_equal(count(sql, "order.needs-mapping"), 1);
    assert_int_equal(count(sql, "operator.alert"), 1);
    free(id);
}

static void test_refund_and_topic_in_the_path(void **state)
{
    (void)state;
    char *id = sim_order(1, true, 0);
    assert_int_equal(wait_count(ORDER_BY_SHOPIFY_ID, id, 1), 1);
    char body[160];
    snprintf(body, sizeof body, "{\"id\":880011,\"order_id\":%s,\"note\":\"broken\"}", id);
    /* No topic header: the path names it. */
    assert_int_equal(post_webhook("/api/v1/webhooks/shopify/refunds/create", NULL, SHOP, "refund-1",
                                  NULL, body, NULL),
                     200);
    assert_int_equal(
        wait_count("SELECT COUNT(*) FROM event_log WHERE event_type = $1", "order.refunded", 1), 1);
    /* A path that contradicts the header is refused. */
    assert_int_equal(post_webhook("/api/v1/webhooks/shopify/orders/paid", "refunds/create", SHOP,
                                  "refund-2", NULL, body, NULL),
                     400);
    wait_idle();
    free(id);
}

static json_t *backfill_http(const char *since)
{
    char body[96], raw[512];
    snprintf(body, sizeof body, "{\"since\":\"%s\"}", since);
    snprintf(
        raw, sizeof raw,
        "POST /api/v1/orders/backfill HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
        strlen(body), body);
    f3test_http_response r = {0};
    assert_int_equal(f3test_http_request(env.port, raw, &r), 0);
    if (r.status != 200)
        fail_msg("backfill: %d %s", r.status, r.body);
    json_t *out = json_loads(r.body, 0, NULL);
    f3test_http_response_free(&r);
    return out;
}

static int64_t field(const json_t *o, const char *name)
{
    return (int64_t)json_integer_value(json_object_get(o, name));
}

static void test_backfill_twice_is_idempotent(void **state)
{
    (void)state;
    /* Shopify's times have whole seconds: start at the next full second, so every order
     * made before it is older and every order made below is not. */
    char since[32];
    int64_t boundary = (clock_now_ms() / 1000 + 1) * 1000;
    while (clock_now_ms() < boundary + 20)
        f3test_sleep_ms(20);
    clock_format_iso(boundary, since);
    char *ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = sim_order(1, false, 0);
    int64_t created_before = jobs(PRINT_CREATED_Q);
    json_t *first = backfill_http(since);
    assert_int_equal(field(first, "fetched"), 3);
    assert_int_equal(field(first, "created"), 3);
    assert_int_equal(field(first, "updated") + field(first, "unchanged"), 0);
    json_t *second = backfill_http(since);
    assert_int_equal(field(second, "fetched"), 3);
    assert_int_equal(field(second, "created"), 0);
    assert_int_equal(field(second, "unchanged"), 3);
    assert_int_equal(jobs(PRINT_CREATED_Q), created_before + 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(count(ORDER_BY_SHOPIFY_ID, ids[i]), 1);
        free(ids[i]);
    }
    json_decref(first);
    json_decref(second);
    /* Bad requests. */
    f3test_http_response r = {0};
    const char *bad = "POST /api/v1/orders/backfill HTTP/1.1\r\nHost: t\r\nContent-Type: "
                      "application/json\r\nContent-Length: 17\r\nConnection: close\r\n\r\n"
                      "{\"since\":\"later\"}";
    assert_int_equal(f3test_http_request(env.port, bad, &r), 0);
    assert_int_equal(r.status, 400);
    f3test_http_response_free(&r);
}

static void test_cli_backfill_through_the_binary(void **state)
{
    (void)state;
    char *id = sim_order(1, false, 0);
    char since[32];
    clock_format_iso(clock_now_ms() - 60000, since);
    char db_env[600], url_env[96];
    snprintf(db_env, sizeof db_env, "DATABASE_URL=%s", env.tb.url);
    snprintf(url_env, sizeof url_env, "SHOPIFY_API_URL=%s", env.sim_base);
    const char *argv[] = {"shopify", "backfill", "--since", since, NULL};
    const char *envp[] = {db_env,
                          url_env,
                          "ENCRYPTION_KEY=" KEY_HEX,
                          "SHOPIFY_SHOP_DOMAIN=" SHOP,
                          "SHOPIFY_API_SECRET=" SECRET,
                          "SHOPIFY_ACCESS_TOKEN=" TOKEN,
                          "LOG_LEVEL=warn",
                          NULL};
    f3test_proc p;
    int status = f3test_run(env.dir, argv, envp, 20000, &p);
    char *out = f3test_slurp(p.out_path);
    char *errs = f3test_slurp(p.err_path);
    if (status != 0)
        fail_msg("exit %d: %s %s", status, out, errs);
    assert_non_null(strstr(out, "created 1,"));
    assert_null(strstr(errs, "backfill: page")); /* stderr is not a terminal: no progress */
    assert_int_equal(count(ORDER_BY_SHOPIFY_ID, id), 1);
    free(out);
    free(errs);
    /* Misuse. */
    const char *no_since[] = {"shopify", "backfill", NULL};
    assert_int_equal(f3test_run(env.dir, no_since, envp, 20000, &p), 2);
    free(id);
}

static void expect_access(const char *path, const char *access)
{
    http_match m;
    assert_int_equal(http_router_match(env.router, "POST", path, &m), 200);
    assert_string_equal(m.route->access, access);
    http_match_free(&m);
}

/* Webhooks are open to anyone and not limited per address (their signature is the
 * check); backfill needs orders.write. */
static void test_routes_declare_their_access(void **state)
{
    (void)state;
    expect_access("/api/v1/webhooks/shopify", HTTP_ACCESS_WEBHOOK);
    expect_access("/api/v1/webhooks/shopify/orders/create", HTTP_ACCESS_WEBHOOK);
    expect_access("/api/v1/orders/backfill", "orders.write");
}

static void test_reconciliation_job_imports_missed_orders(void **state)
{
    (void)state;
    bus_repeatable_info *reps = NULL;
    size_t n = 0;
    err e;
    assert_int_equal(bus_store_repeatables_list(env.tb.s, ORDERS_RECONCILE_QUEUE, &reps, &n, &e),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(reps[0].repeat_id, ORDERS_RECONCILE_REPEAT_ID);
    assert_int_equal(reps[0].every_ms, 3600 * 1000);
    bus_repeatables_free(reps, n);
    char *id = sim_order(1, false, 0); /* a webhook that never arrived */
    int64_t created_before = jobs(PRINT_CREATED_Q);
    /* One tick of the repeatable, as the scheduler would enqueue it. */
    bus_job_opts o = {.job_id = "shopify-reconcile:manual"};
    assert_int_equal(bus_store_add(env.tb.s, NULL, ORDERS_RECONCILE_QUEUE, ORDERS_RECONCILE_JOB,
                                   "{}", &o, clock_now_ms(), NULL, &e),
                     0);
    assert_true(f3test_bus_wait_state(env.tb.s, ORDERS_RECONCILE_QUEUE, "shopify-reconcile:manual",
                                      BUS_STATE_COMPLETED, WAIT_MS));
    assert_int_equal(count(ORDER_BY_SHOPIFY_ID, id), 1);
    assert_int_equal(jobs(PRINT_CREATED_Q), created_before + 1);
    assert_int_equal(
        count("SELECT COUNT(*) FROM shop_connections WHERE last_reconciled_at > 0", NULL), 1);
    free(id);
}

static void test_oversized_body_is_413(void **state)
{
    (void)state;
    int64_t before = deliveries();
    f3test_http_response r = {0};
    const char *raw = "POST /api/v1/webhooks/shopify HTTP/1.1\r\nHost: t\r\n"
                      "Content-Type: application/json\r\nContent-Length: 300000\r\n"
                      "X-Shopify-Topic: orders/create\r\nConnection: close\r\n\r\n";
    assert_int_equal(f3test_http_request(env.port, raw, &r), 0);
    assert_int_equal(r.status, 413);
    f3test_http_response_free(&r);
    assert_int_equal(deliveries(), before);
}

static void test_app_uninstalled_disconnects_the_shop(void **state)
{
    (void)state;
    assert_int_equal(post_webhook("/api/v1/webhooks/shopify", "app/uninstalled", SHOP,
                                  "uninstall-1", NULL, "{\"id\":1,\"domain\":\"" SHOP "\"}", NULL),
                     200);
    assert_int_equal(
        wait_count("SELECT COUNT(*) FROM shop_connections WHERE status = $1", "DISCONNECTED", 1),
        1);
    wait_idle();
    assert_int_equal(count("SELECT COUNT(*) FROM event_log WHERE event_type = $1",
                           "integration.shopify-disconnected"),
                     1);
    /* A disconnected shop's deliveries are refused. */
    int64_t before = deliveries();
    assert_int_equal(post_webhook("/api/v1/webhooks/shopify", "orders/create", SHOP,
                                  "after-uninstall", NULL, "{}", NULL),
                     401);
    assert_int_equal(deliveries(), before);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    if (sodium_init() < 0 || http_client_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_created_once_with_event_and_log),
        cmocka_unit_test(test_bad_signatures_unknown_shops_and_bad_bodies_store_nothing),
        cmocka_unit_test(test_same_delivery_five_times_at_once),
        cmocka_unit_test(test_event_ids_are_scoped_by_topic),
        cmocka_unit_test(test_updated_before_created),
        cmocka_unit_test(test_cancelled_reaches_both_subscribers),
        cmocka_unit_test(test_unmapped_sku_needs_mapping),
        cmocka_unit_test(test_refund_and_topic_in_the_path),
        cmocka_unit_test(test_backfill_twice_is_idempotent),
        cmocka_unit_test(test_cli_backfill_through_the_binary),
        cmocka_unit_test(test_routes_declare_their_access),
        cmocka_unit_test(test_reconciliation_job_imports_missed_orders),
        cmocka_unit_test(test_oversized_body_is_413),
        cmocka_unit_test(test_app_uninstalled_disconnects_the_shop),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    http_client_cleanup();
    return rc;
}
