/* F3_TEST: backends
 * test_shipping_service.c - the shipping service in-process against the Sendcloud
 * simulator, on both databases: order.ready-for-fulfillment to a label and
 * shipment.created; duplicates make one shipment; the provider's 409 idempotency;
 * 429 / 5xx / timeouts healed by retries; 4xx failing at once (FAILED, alert, no retry);
 * webhook signatures (good, bad, missing), deduplication and stale updates; status
 * changes by webhook and by the poller when webhooks are dropped; cancellation before and
 * after handover; the v2 API; credentials changed at runtime through the API.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"

#include "bus/bus.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/json.h"
#include "http/client.h"
#include "http/request.h"
#include "http/server.h"
#include "integrations/sendcloud/client.h"
#include "services/access/user_context.h"
#include "services/common/notify.h"
#include "services/shipping/shipping.h"
#include "sim/sendcloud/sim.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;
static f3test_bus shared; /* one database for the whole suite: each test has its own tenant */
static char tenant[32];   /* the running test's tenant */
static int test_no;

#define TENANT    tenant
#define CREATED_Q "shipment.created@order-service"
#define STATUS_Q  "shipment.status-changed@order-service"
#define CHANGED_Q "integration.sendcloud-changed@order-service"
#define KEY_HEX   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define WAIT_MS   10000

typedef struct fx {
    f3test_bus *tbp;
    sendcloud_sim *sim;
    char sim_url[64];
    char url[64]; /* our server */
    config *cfg;
    bus *orders, *ship;
    shipping_service *svc;
    http_router *router;
    http_server *server;
} fx;

/* Every request is an admin of TENANT (the gateway's guard is tested elsewhere). */
static int test_guard(http_request *req, const http_route *route, http_response *res, void *ctx)
{
    (void)route;
    (void)res;
    (void)ctx;
    http_req_set_user(req, user_ctx_new("u-1", TENANT, "admin@example.com", "admin", false),
                      user_ctx_free);
    return 0;
}

static void add_order(fx *f, const char *id)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number, status,"
             " customer_name, customer_email, shipping_address, total_minor, currency,"
             " created_at, updated_at) VALUES ('%s-%s', '%s', 'sh-%s', '#%s', 'COMPLETED',"
             " 'Ada Lovelace', 'ada@example.com', '{\"address1\":\"Keizersgracht 1\","
             "\"city\":\"Amsterdam\",\"countryCode\":\"NL\",\"firstName\":\"Ada\","
             "\"lastName\":\"Lovelace\",\"zip\":\"1015 CJ\"}', 5490, 'EUR', 0, 0)",
             tenant, id, tenant, id, id);
    f3test_bus_exec(f->tbp->d, sql);
}

static void set(fx *f, const char *flag, const char *value)
{
    err e = {0};
    if (config_set_flag(f->cfg, flag, value, &e))
        fail_msg("%s: %s", flag, e.msg);
}

static json_t *sim_control(fx *f, const char *path, const char *body_json)
{
    char url[160];
    snprintf(url, sizeof url, "%s%s", f->sim_url, path);
    json_t *body = body_json ? json_loads(body_json, 0, NULL) : NULL, *out = NULL;
    http_client_response rs;
    err e = {0};
    int rc = http_client_json(body ? "POST" : "GET", url, NULL, body, 5000, &out, &rs, &e);
    http_client_response_free(&rs);
    json_decref(body);
    if (rc)
        fail_msg("sim %s: %s", path, e.msg);
    return out;
}

static void sim_do(fx *f, const char *path, const char *body_json)
{
    json_decref(sim_control(f, path, body_json));
}

static int64_t sim_stat(fx *f, const char *name)
{
    json_t *st = sim_control(f, "/_sim/stats", NULL);
    int64_t n = json_integer_value(json_object_get(json_object_get(st, "requests"), name));
    json_decref(st);
    return n;
}

/* Starts everything; the poller runs every `interval` (long by default, so that it does not
 * take injected faults meant for other calls). */
static void start_with(fx *f, const char *version, const char *interval)
{
    f->tbp = &shared;
    snprintf(tenant, sizeof tenant, "t-ship-%02d", ++test_no);
    err e = {0};
    sendcloud_sim_opts so = {.public_key = "pub",
                             .secret_key = "sec",
                             .step_ms = -1,
                             .retry_base_ms = 100,
                             .max_retries = 3};
    f->sim = sendcloud_sim_start(&so, &e);
    if (!f->sim)
        fail_msg("sim: %s", e.msg);
    snprintf(f->sim_url, sizeof f->sim_url, "http://127.0.0.1:%d", sendcloud_sim_port(f->sim));
    char sql[200];
    snprintf(sql, sizeof sql,
             "INSERT INTO tenants (id, name, slug, created_at, updated_at)"
             " VALUES ('%s', 'Shop', '%s', 0, 0)",
             tenant, tenant);
    f3test_bus_exec(f->tbp->d, sql);
    f->cfg = config_new();
    set(f, "encryption-key", KEY_HEX);
    set(f, "sendcloud-public-key", "pub");
    set(f, "sendcloud-secret-key", "sec");
    set(f, "sendcloud-api-url", f->sim_url);
    set(f, "sendcloud-api-version", version);
    set(f, "sendcloud-shipping-option-code", "dhl:parcel");
    set(f, "sendcloud-retry-base", "50");
    set(f, "sendcloud-max-attempts", "4");
    set(f, "sendcloud-timeout", "400");
    set(f, "sendcloud-reconcile-interval", interval);
    if (config_validate(f->cfg, &e))
        fail_msg("config: %s", e.msg);
    f->orders = bus_new(f->tbp->d, f->tbp->s, BUS_SVC_ORDER, &e);
    bus_worker_opts wo = {.poll_ms = 50, .repeat_interval_ms = 200};
    f->ship = bus_new_with(f->tbp->d, f->tbp->s, BUS_SVC_SHIPPING, &wo, &e);
    f->router = http_router_new();
    assert_non_null(f->orders);
    assert_non_null(f->ship);
    shipping_deps d = {
        .db = f->tbp->d, .bus = f->ship, .store = f->tbp->s, .config = f->cfg, .tenant_id = TENANT};
    if (shipping_service_start(&f->svc, &d, f->router, &e) || bus_start(f->ship, &e))
        fail_msg("shipping: %s", e.msg);
    http_server_opts ho = {.host = "127.0.0.1", .threads = 4, .guard = test_guard};
    f->server = http_server_start(f->router, &ho, &e);
    if (!f->server)
        fail_msg("server: %s", e.msg);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", http_server_port(f->server));
    char body[160];
    snprintf(body, sizeof body, "{\"webhook_url\": \"%s/api/v1/webhooks/sendcloud\"}", f->url);
    sim_do(f, "/_sim/config", body);
}

static void start(fx *f, const char *version)
{
    start_with(f, version, "1h");
}

static int group_setup(void **state)
{
    (void)state;
    f3test_bus_new(&shared, backend);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    f3test_bus_drop(&shared);
    return 0;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    *state = f;
    return f ? 0 : -1;
}

static int teardown(void **state)
{
    fx *f = *state;
    http_server_stop(f->server);
    shipping_service_stop(f->svc);
    bus_free(f->ship);
    shipping_service_free(f->svc);
    bus_free(f->orders);
    http_router_free(f->router);
    sendcloud_sim_stop(f->sim);
    config_free(f->cfg);
    if (f->tbp) {
        /* Nothing of this test may run in the next one. */
        f3test_bus_exec(f->tbp->d, "UPDATE sendcloud_connections SET status = 'DISCONNECTED'");
        f3test_bus_exec(f->tbp->d, "DELETE FROM bus_jobs WHERE queue LIKE '%@shipping-service'");
    }
    free(f);
    return 0;
}

/* The order id of short id `id` in this test's tenant (one of 4 rotating buffers). */
static const char *oid(const char *id)
{
    static char ids[4][96];
    static int next;
    char *out = ids[next++ % 4];
    snprintf(out, 96, "%s-%s", tenant, id);
    return out;
}

static void publish(fx *f, const char *type, const char *order_id)
{
    err e = {0};
    json_t *fields = json_pack("{s:s}", "orderId", oid(order_id));
    if (bus_publish(f->orders, NULL, type, TENANT, fields, &e))
        fail_msg("publish: %s", e.msg);
    json_decref(fields);
}

static int64_t count(fx *f, const char *sql, const char *param)
{
    return f3test_bus_count(f->tbp->d, sql, param);
}

/* The first column of sql with two text parameters, as int64. */
static int64_t count2(fx *f, const char *sql, const char *p1, const char *p2)
{
    err e = {0};
    db_conn *c = db_acquire(f->tbp->d, &e);
    assert_non_null(c);
    db_stmt *st = db_prepare(c, sql, &e);
    if (!st)
        fail_msg("%s: %s", sql, e.msg);
    db_bind_text(st, 1, p1);
    db_bind_text(st, 2, p2);
    assert_int_equal(db_step(st, &e), DB_ROW);
    int64_t v = db_col_int64(st, 0);
    db_finalize(st);
    db_release(c);
    return v;
}

/* Jobs of this test's tenant on queue (the tenant id is in every job's data). */
static int64_t jobs(fx *f, const char *queue)
{
    char like[48];
    snprintf(like, sizeof like, "%%\"%s\"%%", tenant);
    return count2(f, "SELECT COUNT(*) FROM bus_jobs WHERE queue = $1 AND data LIKE $2", queue,
                  like);
}

static int64_t log_count(fx *f, const char *type)
{
    return count2(f, "SELECT COUNT(*) FROM event_log WHERE tenant_id = $1 AND event_type = $2",
                  tenant, type);
}

/* Column col of the order's shipment, or "" when it has none. */
static void shipment_col(fx *f, const char *order_id, const char *col, char *out, size_t size)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT %s FROM shipments WHERE tenant_id = '%s' AND order_id = $1",
             col, tenant);
    err e = {0};
    db_conn *c = db_acquire(f->tbp->d, &e);
    assert_non_null(c);
    db_stmt *st = db_prepare(c, sql, &e);
    assert_non_null(st);
    char full[96];
    snprintf(full, sizeof full, "%s-%s", tenant, order_id);
    db_bind_text(st, 1, full);
    out[0] = '\0';
    if (db_step(st, &e) == DB_ROW)
        db_col_copy(st, 0, out, size);
    db_finalize(st);
    db_release(c);
}

static bool wait_status(fx *f, const char *order_id, const char *status)
{
    char now[64];
    for (int waited = 0; waited < WAIT_MS; waited += 50) {
        shipment_col(f, order_id, "status", now, sizeof now);
        if (strcmp(now, status) == 0)
            return true;
        f3test_sleep_ms(50);
    }
    fail_msg("order %s: shipment status '%s', expected '%s'", order_id, now, status);
    return false;
}

static bool wait_log(fx *f, const char *type, int64_t n)
{
    for (int waited = 0; waited < WAIT_MS; waited += 50) {
        if (log_count(f, type) >= n)
            return true;
        f3test_sleep_ms(50);
    }
    fail_msg("event log: fewer than %lld '%s'", (long long)n, type);
    return false;
}

/* A request to our server: its HTTP status; the body is appended to out (may be NULL). */
static long call(fx *f, const char *method, const char *path, const char *const *headers,
                 const char *body, buf *out)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->url, path);
    http_client_request rq = {.method = method,
                              .url = url,
                              .headers = headers,
                              .body = body,
                              .body_len = body ? strlen(body) : 0,
                              .content_type = body ? "application/json" : NULL};
    http_client_response rs;
    err e = {0};
    http_client_send(&rq, &rs, &e);
    long status = rs.status;
    if (out)
        buf_append(out, rs.body.data ? rs.body.data : "", rs.body.len);
    http_client_response_free(&rs);
    return status;
}

static void test_label_and_duplicates(void **state)
{
    fx *f = *state;
    start(f, "v3");
    add_order(f, "o-1");
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-1");
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-1");
    wait_status(f, "o-1", "READY_TO_SEND");
    f3test_sleep_ms(300); /* let the duplicate be handled */
    assert_int_equal(count(f, "SELECT COUNT(*) FROM shipments WHERE tenant_id = $1", tenant), 1);
    assert_int_equal(sim_stat(f, "v3.announce"), 1);
    assert_int_equal(jobs(f, CREATED_Q), 1);
    assert_int_equal(log_count(f, BUS_EV_SHIPMENT_CREATED), 1);
    char tn[64], carrier[32], id[64];
    shipment_col(f, "o-1", "tracking_number", tn, sizeof tn);
    shipment_col(f, "o-1", "carrier", carrier, sizeof carrier);
    shipment_col(f, "o-1", "id", id, sizeof id);
    assert_true(strncmp(tn, "3SSIM", 5) == 0);
    assert_string_equal(carrier, "dhl"); /* from SENDCLOUD_SHIPPING_OPTION_CODE */

    /* The event carries the tracking details. */
    bus_job **list = NULL;
    size_t n = 0;
    err e = {0};
    assert_int_equal(bus_store_list(f->tbp->s, CREATED_Q, BUS_STATE_WAITING, 0, 10, clock_now_ms(),
                                    &list, &n, &e),
                     0);
    assert_int_equal(n, 1);
    json_t *ev = json_loads(list[0]->data, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(ev, "trackingNumber")), tn);
    assert_string_equal(json_string_value(json_object_get(ev, "orderId")), oid("o-1"));
    json_decref(ev);
    bus_jobs_free(list, n);

    /* The label is a PDF behind the API. */
    char path[128];
    snprintf(path, sizeof path, "/api/v1/shipments/%s/label", id);
    buf pdf;
    buf_init(&pdf, 0);
    assert_int_equal(call(f, "GET", path, NULL, NULL, &pdf), 200);
    assert_true(pdf.len > 100 && memcmp(pdf.data, "%PDF-1.4", 8) == 0);
    assert_non_null(strstr(pdf.data, tn));
    buf_free(&pdf);

    buf body;
    buf_init(&body, 0);
    assert_int_equal(call(f, "GET", "/api/v1/shipments?status=READY_TO_SEND", NULL, NULL, &body),
                     200);
    json_t *page = json_loads(buf_cstr(&body), 0, NULL);
    assert_int_equal(json_array_size(json_object_get(page, "data")), 1);
    assert_true(json_is_null(json_object_get(page, "nextCursor")));
    json_decref(page);
    buf_reset(&body);
    assert_int_equal(call(f, "GET", "/api/v1/shipments/nope", NULL, NULL, &body), 404);
    buf_free(&body);
}

static void test_provider_idempotency_409(void **state)
{
    fx *f = *state;
    start(f, "v3");
    add_order(f, "o-2");
    /* An earlier attempt reached Sendcloud but its answer was lost. */
    err e = {0};
    sendcloud_client_opts o = {.base_url = f->sim_url, .public_key = "pub", .secret_key = "sec"};
    sendcloud_client *c = sendcloud_client_new(&o, &e);
    sendcloud_shipment_request rq = {.external_reference = oid("o-2"),
                                     .to = {.name = "A",
                                            .address_line_1 = "B",
                                            .postal_code = "1",
                                            .city = "C",
                                            .country_code = "NL"},
                                     .weight_grams = 100,
                                     .total_minor = -1};
    sendcloud_shipment first;
    assert_int_equal(sendcloud_create_shipment(c, &rq, &first, NULL, &e), 0);
    sendcloud_client_free(c);

    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-2");
    wait_status(f, "o-2", "READY_TO_SEND");
    char parcel[32], expect[32];
    shipment_col(f, "o-2", "provider_parcel_id", parcel, sizeof parcel);
    snprintf(expect, sizeof expect, "%lld", (long long)first.parcel_id);
    assert_string_equal(parcel, expect);
    json_t *parcels = sim_control(f, "/_sim/parcels", NULL);
    assert_int_equal(json_array_size(json_object_get(parcels, "parcels")), 1);
    json_decref(parcels);
    assert_int_equal(jobs(f, CREATED_Q), 1);
    sendcloud_shipment_free(&first);
}

static void test_transient_failures_heal(void **state)
{
    fx *f = *state;
    start(f, "v3");
    add_order(f, "o-429");
    add_order(f, "o-5xx");
    add_order(f, "o-slow");

    sim_do(f, "/_sim/faults", "{\"kind\": \"429\", \"count\": 1, \"retry_after\": 0}");
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-429");
    wait_status(f, "o-429", "READY_TO_SEND");
    assert_int_equal(sim_stat(f, "v3.announce"), 2);

    sim_do(f, "/_sim/faults", "{\"kind\": \"503\", \"count\": 2, \"retry_after\": 0}");
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-5xx");
    wait_status(f, "o-5xx", "READY_TO_SEND");
    assert_int_equal(sim_stat(f, "v3.announce"), 5);
    char attempts[16];
    shipment_col(f, "o-5xx", "attempts", attempts, sizeof attempts);
    assert_string_equal(attempts, "3");

    /* The first call times out at 400 ms, though Sendcloud made the shipment: the retry
     * gets 409 with it, and nothing is made twice. */
    sim_do(f, "/_sim/faults", "{\"kind\": \"timeout\", \"count\": 1, \"delay_ms\": 1200}");
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-slow");
    wait_status(f, "o-slow", "READY_TO_SEND");
    json_t *parcels = sim_control(f, "/_sim/parcels", NULL);
    assert_int_equal(json_array_size(json_object_get(parcels, "parcels")), 3);
    json_decref(parcels);
    assert_int_equal(jobs(f, CREATED_Q), 3);
    assert_int_equal(log_count(f, "shipment.failed"), 0);
}

/* The mail of the tenant's one queued operator alert: its fields must name the order by its
 * Shopify order number (want), and so must the rendered subject and body. */
static void expect_alert_names_order(fx *f, const char *kind, const char *want)
{
    err e = {0};
    db_conn *c = db_acquire(f->tbp->d, &e);
    assert_non_null(c);
    db_stmt *st = db_prepare(c,
                             "SELECT payload FROM retry_queue WHERE tenant_id = $1 AND"
                             " job_type = 'NOTIFICATION'",
                             &e);
    assert_non_null(st);
    db_bind_text(st, 1, tenant);
    assert_int_equal(db_step(st, &e), DB_ROW);
    json_error_t je;
    json_t *payload = json_loads(db_col_text(st, 0), 0, &je);
    assert_int_equal(db_step(st, &e), DB_DONE);
    db_finalize(st);
    db_release(c);
    assert_non_null(payload);
    assert_string_equal(json_string_value(json_object_get(payload, "kind")), kind);
    const json_t *fields = json_object_get(payload, "fields");
    assert_string_equal(json_string_value(json_object_get(fields, "orderNumber")), want);
    notify_rendered mail;
    assert_int_equal(notify_render_alert(notify_kind_parse(kind), fields, NULL, 0, &mail, &e), 0);
    if (!strstr(mail.subject, want) || !strstr(mail.text, want))
        fail_msg("alert mail does not name order %s: %s", want, mail.subject);
    notify_rendered_free(&mail);
    json_decref(payload);
}

static void test_permanent_failure_is_not_retried(void **state)
{
    fx *f = *state;
    start(f, "v3");
    add_order(f, "o-bad");
    sim_do(f, "/_sim/faults", "{\"kind\": \"422\", \"count\": 5}");
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-bad");
    wait_status(f, "o-bad", "FAILED");
    f3test_sleep_ms(400);
    assert_int_equal(sim_stat(f, "v3.announce"), 1);
    char why[256];
    shipment_col(f, "o-bad", "error_message", why, sizeof why);
    assert_non_null(strstr(why, "postal_code is invalid"));
    assert_int_equal(count2(f,
                            "SELECT COUNT(*) FROM event_log WHERE event_type = $1 AND"
                            " severity = 'ERROR' AND tenant_id = $2",
                            "shipment.failed", tenant),
                     1);
    assert_int_equal(log_count(f, "operator.alert"), 1);
    expect_alert_names_order(f, "SHIPMENT_FAILED", "#o-bad");
    assert_int_equal(jobs(f, CREATED_Q), 0);
}

/* A webhook body for a parcel; signed with key when key is not NULL. */
static long send_webhook(fx *f, const char *parcel_id, int status_id, long long ts, const char *key,
                         const char *bad_sig, buf *answer)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"action\": \"parcel_status_changed\", \"timestamp\": %lld, \"parcel\": "
             "{\"id\": %s, \"status\": {\"id\": %d, \"message\": \"x\"}}}",
             ts, parcel_id, status_id);
    buf sig, header;
    buf_init(&sig, 0);
    buf_init(&header, 0);
    if (key)
        sendcloud_webhook_sign(key, body, strlen(body), &sig);
    buf_printf(&header, "Sendcloud-Signature: %s", bad_sig ? bad_sig : buf_cstr(&sig));
    const char *headers[] = {buf_cstr(&header), NULL};
    long st = call(f, "POST", "/api/v1/webhooks/sendcloud", key || bad_sig ? headers : NULL, body,
                   answer);
    buf_free(&sig);
    buf_free(&header);
    return st;
}

static void test_webhooks(void **state)
{
    fx *f = *state;
    start(f, "v3");
    add_order(f, "o-wh");
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-wh");
    wait_status(f, "o-wh", "READY_TO_SEND");
    char parcel[32];
    shipment_col(f, "o-wh", "provider_parcel_id", parcel, sizeof parcel);
    long long ts = 4102444800000LL; /* far ahead of the creation time */

    f3test_sleep_ms(200); /* the simulator's own "Ready to send" webhook */
    int64_t before = jobs(f, SHIPPING_WEBHOOK_QUEUE);
    assert_int_equal(send_webhook(f, parcel, 3, ts, NULL, NULL, NULL), 401);
    assert_int_equal(send_webhook(f, parcel, 3, ts, NULL, "00ff", NULL), 401);
    assert_int_equal(send_webhook(f, parcel, 3, ts, "wrong-key", NULL, NULL), 401);
    assert_int_equal(jobs(f, SHIPPING_WEBHOOK_QUEUE), before);

    buf answer;
    buf_init(&answer, 0);
    assert_int_equal(send_webhook(f, parcel, 3, ts, "sec", NULL, &answer), 200);
    assert_non_null(strstr(buf_cstr(&answer), "\"duplicate\":false"));
    wait_status(f, "o-wh", "IN_TRANSIT");
    buf_reset(&answer);
    assert_int_equal(send_webhook(f, parcel, 3, ts, "sec", NULL, &answer), 200);
    assert_non_null(strstr(buf_cstr(&answer), "\"duplicate\":true"));
    buf_free(&answer);
    assert_int_equal(jobs(f, STATUS_Q), 1);

    /* An older delivery arriving late changes nothing. */
    assert_int_equal(send_webhook(f, parcel, 1000, ts - 60000, "sec", NULL, NULL), 200);
    f3test_sleep_ms(300);
    char status[32];
    shipment_col(f, "o-wh", "status", status, sizeof status);
    assert_string_equal(status, "IN_TRANSIT");
}

static void test_webhook_from_simulator(void **state)
{
    fx *f = *state;
    start(f, "v3");
    add_order(f, "o-sim");
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-sim");
    wait_status(f, "o-sim", "READY_TO_SEND");
    sim_do(f, "/_sim/advance", "{}");
    wait_status(f, "o-sim", "IN_TRANSIT");
    sim_do(f, "/_sim/advance", "{}");
    sim_do(f, "/_sim/advance", "{}");
    wait_status(f, "o-sim", "DELIVERED");
    char delivered[32];
    shipment_col(f, "o-sim", "delivered_at", delivered, sizeof delivered);
    assert_true(delivered[0] != '\0');
    assert_true(jobs(f, STATUS_Q) >= 2);
}

static void test_poller_catches_dropped_webhooks(void **state)
{
    fx *f = *state;
    start_with(f, "v3", "1s");
    add_order(f, "o-poll");
    sim_do(f, "/_sim/config", "{\"drop_webhooks\": -1}");
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-poll");
    wait_status(f, "o-poll", "READY_TO_SEND");
    sim_do(f, "/_sim/advance", "{}");
    sim_do(f, "/_sim/advance", "{}");
    wait_status(f, "o-poll", "OUT_FOR_DELIVERY");
    json_t *d = sim_control(f, "/_sim/deliveries", NULL);
    json_t *first = json_array_get(json_object_get(d, "deliveries"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "state")), "dropped");
    json_decref(d);
    assert_int_equal(jobs(f, SHIPPING_WEBHOOK_QUEUE), 0);
    assert_true(jobs(f, STATUS_Q) >= 1);
    assert_true(sim_stat(f, "v3.get") >= 1);
}

static void test_cancel_before_and_after_handover(void **state)
{
    fx *f = *state;
    start(f, "v3");
    add_order(f, "o-early");
    add_order(f, "o-late");
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-early");
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-late");
    wait_status(f, "o-early", "READY_TO_SEND");
    wait_status(f, "o-late", "READY_TO_SEND");

    publish(f, BUS_EV_ORDER_CANCELLED, "o-early");
    wait_status(f, "o-early", "CANCELLED");
    char parcel[32];
    shipment_col(f, "o-early", "provider_parcel_id", parcel, sizeof parcel);
    json_t *parcels = sim_control(f, "/_sim/parcels", NULL);
    size_t i;
    json_t *p;
    bool cancelled_there = false;
    json_array_foreach(json_object_get(parcels, "parcels"), i, p)
    {
        json_t *obj = json_object_get(p, "parcel");
        if (json_integer_value(json_object_get(obj, "id")) == strtoll(parcel, NULL, 10))
            cancelled_there =
                json_integer_value(json_object_get(json_object_get(obj, "status"), "id")) == 2000;
    }
    json_decref(parcels);
    assert_true(cancelled_there);

    char late_parcel[32], body[64];
    shipment_col(f, "o-late", "provider_parcel_id", late_parcel, sizeof late_parcel);
    snprintf(body, sizeof body, "{\"parcel_id\": %s}", late_parcel);
    sim_do(f, "/_sim/advance", body);
    wait_status(f, "o-late", "IN_TRANSIT");
    publish(f, BUS_EV_ORDER_CANCELLED, "o-late");
    wait_log(f, "shipment.cancel-refused", 1);
    assert_int_equal(log_count(f, "operator.alert"), 1);
    char status[32];
    shipment_col(f, "o-late", "status", status, sizeof status);
    assert_string_equal(status, "IN_TRANSIT");
    assert_int_equal(sim_stat(f, "v3.cancel"), 1);

    /* The internal API: unknown orders are 404. */
    char path[160];
    snprintf(path, sizeof path, "/internal/shipments/o-none?tenantId=%s", tenant);
    assert_int_equal(call(f, "DELETE", path, NULL, NULL, NULL), 404);
}

static void test_v2_and_internal_api(void **state)
{
    fx *f = *state;
    start(f, "v2");
    add_order(f, "o-v2");
    buf out;
    buf_init(&out, 0);
    char path[160], body[160];
    snprintf(path, sizeof path, "/internal/shipments?tenantId=%s", tenant);
    snprintf(body, sizeof body, "{\"orderId\": \"%s\"}", oid("o-v2"));
    assert_int_equal(call(f, "POST", "/internal/shipments", NULL, body, &out),
                     400); /* no tenantId */
    buf_reset(&out);
    assert_int_equal(call(f, "POST", path, NULL, body, &out), 202);
    assert_non_null(strstr(buf_cstr(&out), "\"status\":\"PENDING\""));
    buf_reset(&out);
    assert_int_equal(call(f, "POST", path, NULL, "{\"orderId\": \"o-missing\"}", &out), 404);
    buf_free(&out);
    wait_status(f, "o-v2", "READY_TO_SEND");
    assert_int_equal(sim_stat(f, "v2.create"), 1);
    assert_int_equal(sim_stat(f, "v3.announce"), 0);
    char sid[32], pid[32];
    shipment_col(f, "o-v2", "provider_shipment_id", sid, sizeof sid);
    shipment_col(f, "o-v2", "provider_parcel_id", pid, sizeof pid);
    assert_string_equal(sid, pid);
    snprintf(path, sizeof path, "/internal/shipments/%s?tenantId=%s", oid("o-v2"), tenant);
    assert_int_equal(call(f, "DELETE", path, NULL, NULL, NULL), 202);
    wait_status(f, "o-v2", "CANCELLED");
    assert_int_equal(sim_stat(f, "v2.cancel"), 1);
}

/* What a restart does with the settings: another instance of the service starts (and
 * bootstraps from f's settings, still pub / sec) and stops again. */
static void restart_instance(fx *f)
{
    err e = {0};
    bus *b = bus_new(f->tbp->d, f->tbp->s, BUS_SVC_SHIPPING, &e);
    assert_non_null(b);
    shipping_service *svc = NULL;
    shipping_deps d = {
        .db = f->tbp->d, .bus = b, .store = f->tbp->s, .config = f->cfg, .tenant_id = TENANT};
    if (shipping_service_start(&svc, &d, NULL, &e))
        fail_msg("restart: %s", e.msg);
    shipping_service_free(svc);
    bus_free(b);
}

static void test_credentials_changed_at_runtime(void **state)
{
    fx *f = *state;
    start(f, "v3");
    assert_int_equal(jobs(f, CHANGED_Q), 1); /* the configured account connected at start */
    sim_do(f, "/_sim/config", "{\"public_key\": \"pub2\", \"secret_key\": \"sec2\"}");
    buf out;
    buf_init(&out, 0);
    assert_int_equal(call(f, "PUT", "/api/v1/integrations/sendcloud", NULL,
                          "{\"publicKey\": \"pub\", \"secretKey\": \"old\"}", &out),
                     422);
    buf_reset(&out);
    assert_int_equal(
        call(f, "PUT", "/api/v1/integrations/sendcloud", NULL, "{\"publicKey\": 1}", &out), 400);
    buf_reset(&out);
    assert_int_equal(call(f, "PUT", "/api/v1/integrations/sendcloud", NULL,
                          "{\"publicKey\": \"pub2\", \"secretKey\": \"sec2\","
                          " \"shippingOptionCode\": \"postnl:standard\"}",
                          &out),
                     200);
    assert_null(strstr(buf_cstr(&out), "sec2"));
    assert_non_null(strstr(buf_cstr(&out), "\"connected\":true"));
    assert_int_equal(jobs(f, CHANGED_Q), 2);
    buf_reset(&out);
    assert_int_equal(call(f, "GET", "/api/v1/integrations/sendcloud", NULL, NULL, &out), 200);
    assert_non_null(strstr(buf_cstr(&out), "postnl:standard"));
    assert_null(strstr(buf_cstr(&out), "sec2"));

    /* A restart keeps what the API set: the settings only seed a tenant without one. */
    restart_instance(f);
    assert_int_equal(jobs(f, CHANGED_Q), 2);
    buf_reset(&out);
    assert_int_equal(call(f, "GET", "/api/v1/integrations/sendcloud", NULL, NULL, &out), 200);
    assert_non_null(strstr(buf_cstr(&out), "postnl:standard"));

    /* The new keys are used at once, and sign the webhooks. */
    add_order(f, "o-new");
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-new");
    wait_status(f, "o-new", "READY_TO_SEND");
    sim_do(f, "/_sim/advance", "{}");
    wait_status(f, "o-new", "IN_TRANSIT");

    buf_reset(&out);
    assert_int_equal(call(f, "DELETE", "/api/v1/integrations/sendcloud", NULL, NULL, &out), 200);
    assert_non_null(strstr(buf_cstr(&out), "\"connected\":false"));
    assert_int_equal(jobs(f, CHANGED_Q), 3);
    /* Disconnected through the API: a restart does not connect it again. */
    restart_instance(f);
    assert_int_equal(jobs(f, CHANGED_Q), 3);
    buf_reset(&out);
    assert_int_equal(call(f, "GET", "/api/v1/integrations/sendcloud", NULL, NULL, &out), 200);
    assert_non_null(strstr(buf_cstr(&out), "\"connected\":false"));
    buf_free(&out);
    add_order(f, "o-after");
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-after");
    f3test_sleep_ms(500);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM shipments WHERE order_id = $1", oid("o-after")),
                     0);
}

/* The sim's parcel weight ("0.600") of the shipment of order id. */
static void parcel_weight(fx *f, const char *id, char *out, size_t size)
{
    char parcel[32];
    shipment_col(f, id, "provider_parcel_id", parcel, sizeof parcel);
    json_t *parcels = sim_control(f, "/_sim/parcels", NULL);
    size_t i;
    json_t *p;
    out[0] = '\0';
    json_array_foreach(json_object_get(parcels, "parcels"), i, p)
    {
        json_t *obj = json_object_get(p, "parcel");
        if (json_integer_value(json_object_get(obj, "id")) == strtoll(parcel, NULL, 10))
            snprintf(out, size, "%s", json_string_value(json_object_get(obj, "weight")));
    }
    json_decref(parcels);
}

static void test_weight_and_paging(void **state)
{
    fx *f = *state;
    start(f, "v3");
    add_order(f, "o-w");
    add_order(f, "o-d");
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO product_mappings (id, tenant_id, sku, name, created_at, updated_at)"
             " VALUES ('%s-pm', '%s', 'VASE', 'Vase', 0, 0)",
             tenant, tenant);
    f3test_bus_exec(f->tbp->d, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO assembly_parts (id, tenant_id, product_mapping_id, part_number,"
             " part_name, simplyprint_file_id, quantity_per_unit, weight_grams, created_at,"
             " updated_at) VALUES ('%s-ap', '%s', '%s-pm', 1, 'Body', 'f1', 2, 150, 0, 0)",
             tenant, tenant, tenant);
    f3test_bus_exec(f->tbp->d, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, sku, title,"
             " quantity, product_mapping_id, created_at, updated_at) VALUES ('%s-li', '%s',"
             " '%s', '1', 'VASE', 'Vase', 2, '%s-pm', 0, 0)",
             tenant, tenant, oid("o-w"), tenant);
    f3test_bus_exec(f->tbp->d, sql);
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-w");
    wait_status(f, "o-w", "READY_TO_SEND");
    publish(f, BUS_EV_ORDER_READY_FOR_FULFILLMENT, "o-d");
    wait_status(f, "o-d", "READY_TO_SEND");
    char w[32];
    parcel_weight(f, "o-w", w, sizeof w);
    assert_string_equal(w, "0.600"); /* 2 units x 2 parts x 150 g */
    parcel_weight(f, "o-d", w, sizeof w);
    assert_string_equal(w, "0.500"); /* no mapped files: SHIPPING_DEFAULT_WEIGHT_GRAMS */

    /* Keyset paging, newest first. */
    buf body;
    buf_init(&body, 0);
    assert_int_equal(call(f, "GET", "/api/v1/shipments?limit=1", NULL, NULL, &body), 200);
    json_t *page = json_loads(buf_cstr(&body), 0, NULL);
    assert_int_equal(json_array_size(json_object_get(page, "data")), 1);
    const char *first = json_string_value(
        json_object_get(json_array_get(json_object_get(page, "data"), 0), "orderId"));
    assert_string_equal(first, oid("o-d"));
    const char *cursor = json_string_value(json_object_get(page, "nextCursor"));
    assert_non_null(cursor);
    char path[256];
    snprintf(path, sizeof path, "/api/v1/shipments?limit=1&cursor=%s", cursor);
    json_decref(page);
    buf_reset(&body);
    assert_int_equal(call(f, "GET", path, NULL, NULL, &body), 200);
    page = json_loads(buf_cstr(&body), 0, NULL);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(page, "data"), 0), "orderId")),
                        oid("o-w"));
    assert_true(json_is_null(json_object_get(page, "nextCursor")));
    json_decref(page);
    buf_reset(&body);
    assert_int_equal(call(f, "GET", "/api/v1/shipments?cursor=garbage", NULL, NULL, &body), 400);
    buf_reset(&body);
    /* "1:" and bytes that are not UTF-8; "-5:abc" */
    assert_int_equal(call(f, "GET", "/api/v1/shipments?cursor=MTr__g", NULL, NULL, &body), 400);
    buf_reset(&body);
    assert_int_equal(call(f, "GET", "/api/v1/shipments?cursor=LTU6YWJj", NULL, NULL, &body), 400);
    buf_reset(&body);
    assert_int_equal(call(f, "GET", "/api/v1/shipments?limit=0", NULL, NULL, &body), 400);
    buf_reset(&body);
    snprintf(path, sizeof path, "/api/v1/shipments?orderId=%s", oid("o-w"));
    assert_int_equal(call(f, "GET", path, NULL, NULL, &body), 200);
    page = json_loads(buf_cstr(&body), 0, NULL);
    assert_int_equal(json_array_size(json_object_get(page, "data")), 1);
    json_decref(page);
    buf_free(&body);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_label_and_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provider_idempotency_409, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_failures_heal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_failure_is_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_from_simulator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poller_catches_dropped_webhooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_before_and_after_handover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_and_internal_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credentials_changed_at_runtime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weight_and_paging, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
