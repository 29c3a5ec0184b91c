/* F3_TEST: backends
 * test_orders_fulfil.c - Shopify fulfilment against the Shopify simulator: the happy path
 * with tracking (one fulfillment in the simulator, stored on the order, logged, order.fulfilled
 * emitted); duplicates - sequential, concurrent, and as duplicate shipment.created and
 * order.ready-for-fulfillment events through the queues - make one fulfillment; a dead
 * worker's claim is looked at again when stale and taken over; 429 with
 * Retry-After and 5xx heal through FULFILLMENT entries of the retry queue (Retry-After
 * respected by the entry too); a 4xx is not retried and alerts once; retries that never heal
 * end in RETRY_EXHAUSTED with one alert, and a manual retry of the entry fulfils; cancelled
 * orders are never fulfilled, orders not COMPLETED are skipped unless forced (logged as a
 * WARNING with the user); shipment.status-changed keeps the shipment status current.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"
#include "support/f3test_http.h"

#include "bus/bus.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/secret_key.h"
#include "services/common/notify.h"
#include "services/common/retry.h"
#include "services/orders/connections.h"
#include "services/orders/fulfillment.h"
#include "services/orders/integrations_state.h"
#include "sim/shopify/sim.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

#define TENANT             "t-fulfil"
#define SECRET             "sim-secret"
#define TOKEN              "shpat_sim_token"
#define SHOP               "f3connect-sim.myshopify.com"
#define KEY_HEX            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define SHIPMENT_CREATED_Q "shipment.created@order-service"

typedef struct fx {
    f3test_bus tb;
    shopify_sim *sim;
    int port;
    char *dir;
    config *cfg;
    bus *b;
    bus_emitter *em;
    retry_queue *rq;
    orders_fulfillment *ff;
    atomic_int fulfilled_emits;
    atomic_int failed_emits;
} fx;

static void set(fx *f, const char *flag, const char *value)
{
    err e;
    if (config_set_flag(f->cfg, flag, value, &e))
        fail_msg("%s: %s", flag, e.msg);
}

static int on_fulfilled(const char *event, const json_t *payload, void *ctx, err *e)
{
    (void)event;
    (void)e;
    fx *f = ctx;
    if (json_string_value(json_object_get(payload, "fulfillmentId")))
        atomic_fetch_add(&f->fulfilled_emits, 1);
    return 0;
}

static int on_failed(const char *event, const json_t *payload, void *ctx, err *e)
{
    (void)event;
    (void)e;
    fx *f = ctx;
    if (json_is_false(json_object_get(payload, "willRetry")))
        atomic_fetch_add(&f->failed_emits, 1);
    return 0;
}

static double no_jitter(void *ctx)
{
    (void)ctx;
    return 0.5;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    err e = {0};
    f3test_bus_new(&f->tb, backend);
    f3test_bus_exec(f->tb.d, "INSERT INTO tenants (id, name, slug, created_at, updated_at)"
                             " VALUES ('" TENANT "', 'Shop', 'shop', 0, 0)");
    shopify_sim_opts so = {
        .secret = SECRET, .token = TOKEN, .bucket_size = 1000, .leak_per_s = 1000};
    f->sim = shopify_sim_start(&so, &e);
    if (!f->sim)
        fail_msg("sim: %s", e.msg);
    f->port = shopify_sim_port(f->sim);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    f->dir = f3test_tmpdir();
    f->cfg = config_new();
    set(f, "data-dir", f->dir);
    set(f, "encryption-key", KEY_HEX);
    set(f, "shopify-shop-domain", SHOP);
    set(f, "shopify-api-secret", SECRET);
    set(f, "shopify-access-token", TOKEN);
    set(f, "shopify-api-url", url);
    uint8_t key[CRYPTO_KEY_LEN];
    bool configured = false;
    if (secret_key_load(f->cfg, key, &e) ||
        shop_conn_bootstrap(f->tb.d, key, f->cfg, TENANT, &configured, &e))
        fail_msg("shop: %s", e.msg);
    assert_true(configured);
    bus_worker_opts fast = {
        .poll_ms = 50, .stalled_interval_ms = -1, .repeat_interval_ms = -1, .trim_interval_ms = -1};
    f->b = bus_new_with(f->tb.d, f->tb.s, BUS_SVC_ORDER, &fast, &e);
    f->em = bus_emitter_new();
    assert_non_null(f->b);
    assert_int_equal(bus_emitter_on(f->em, BUS_IEV_ORDER_FULFILLED, on_fulfilled, f), 0);
    assert_int_equal(bus_emitter_on(f->em, BUS_IEV_FULFILLMENT_FAILED, on_failed, f), 0);
    retry_opts ro = {.random = no_jitter};
    f->rq = retry_new(f->tb.d, &ro);
    assert_non_null(f->rq);
    orders_fulfillment_deps d = {.db = f->tb.d,
                                 .bus = f->b,
                                 .store = f->tb.s,
                                 .config = f->cfg,
                                 .emitter = f->em,
                                 .retry = f->rq,
                                 .max_attempts = 3,
                                 .retry_base_ms = 50};
    if (orders_fulfillment_start(&f->ff, &d, NULL, &e) || orders_integrations_subscribe(f->b, &e))
        fail_msg("fulfillment: %s", e.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    bus_free(f->b);
    retry_free(f->rq);
    orders_fulfillment_free(f->ff);
    bus_emitter_free(f->em);
    shopify_sim_stop(f->sim);
    config_free(f->cfg);
    f3test_bus_drop(&f->tb);
    f3test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- the simulator ------------------------------------------------------------------------ */

/* One request to the simulator; the JSON answer (caller frees). */
static json_t *sim_call(fx *f, const char *method, const char *path, const char *body)
{
    char raw[4096];
    snprintf(raw, sizeof raw,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             method, path, body ? strlen(body) : 0, body ? body : "");
    f3test_http_response r;
    if (f3test_http_request(f->port, raw, &r) != 0)
        fail_msg("sim %s %s: no answer", method, path);
    if (r.status >= 300)
        fail_msg("sim %s %s: %d %s", method, path, r.status, r.body);
    json_error_t je;
    json_t *doc = json_loads(r.body, 0, &je);
    f3test_http_response_free(&r);
    assert_non_null(doc);
    return doc;
}

static void sim_fault(fx *f, const char *kind, int count, int retry_after, const char *match)
{
    char body[256];
    snprintf(body, sizeof body, "{\"kind\":\"%s\",\"count\":%d,\"retry_after\":%d%s%s%s}", kind,
             count, retry_after, match ? ",\"match\":\"" : "", match ? match : "",
             match ? "\"" : "");
    json_decref(sim_call(f, "POST", "/_sim/faults", body));
}

/* The fulfillments the simulator holds for Shopify order `shopify_id`. */
static json_t *sim_fulfillments(fx *f, const char *shopify_id)
{
    char path[96];
    snprintf(path, sizeof path, "/_sim/fulfillments?order_id=%s", shopify_id);
    json_t *doc = sim_call(f, "GET", path, NULL);
    json_t *list = json_incref(json_object_get(doc, "fulfillments"));
    json_decref(doc);
    assert_true(json_is_array(list));
    return list;
}

static size_t sim_fulfillment_count(fx *f, const char *shopify_id)
{
    json_t *list = sim_fulfillments(f, shopify_id);
    size_t n = json_array_size(list);
    json_decref(list);
    return n;
}

/* An order in the simulator (two line items) and here, in `status`; order_id gets our id,
 * shopify_id Shopify's. */
static void make_order(fx *f, const char *order_id, const char *status, bool per_line,
                       char shopify_id[32])
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"deliver\":false,\"fulfillment_orders\":\"%s\",\"order\":{\"email\":"
             "\"ann@example.org\",\"line_items\":[{\"title\":\"Vase\",\"sku\":\"VASE-1\","
             "\"quantity\":2,\"price\":\"10.00\"},{\"title\":\"Lamp\",\"sku\":\"LAMP-1\","
             "\"quantity\":1,\"price\":\"5.00\"}]}}",
             per_line ? "per_line" : "single");
    json_t *doc = sim_call(f, "POST", "/_sim/orders", body);
    snprintf(shopify_id, 32, "%lld",
             (long long)json_integer_value(json_object_get(json_object_get(doc, "order"), "id")));
    json_decref(doc);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number, status,"
             " customer_name, created_at, updated_at) VALUES ('%s', '" TENANT "', '%s', '#%s',"
             " '%s', 'Ann', 0, 0)",
             order_id, shopify_id, order_id, status);
    f3test_bus_exec(f->tb.d, sql);
}

/* ---- helpers ------------------------------------------------------------------------------- */

static int64_t count(fx *f, const char *sql, const char *param)
{
    return f3test_bus_count(f->tb.d, sql, param);
}

static int64_t log_count(fx *f, const char *type)
{
    return count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", type);
}

static int64_t alert_count(fx *f)
{
    return count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", NOTIFY_ALERT_EVENT);
}

static void expect_state(fx *f, const char *order_id, const char *state)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM order_fulfillments WHERE order_id = $1 AND state = '%s'", state);
    if (count(f, sql, order_id) != 1)
        fail_msg("order %s: fulfilment state is not %s", order_id, state);
}

static orders_fulfil_outcome fulfil(fx *f, const char *order_id, const orders_fulfil_opts *o,
                                    orders_fulfil_result *r)
{
    err e = {0};
    if (orders_fulfil(f->ff, TENANT, order_id, o, r, &e))
        fail_msg("fulfil %s: %s", order_id, e.msg);
    return r->outcome;
}

static void request(fx *f, const char *order_id, const orders_tracking *t)
{
    err e = {0};
    db_conn *c = db_acquire(f->tb.d, &e);
    assert_non_null(c);
    assert_int_equal(db_begin(c, &e), 0);
    if (orders_fulfillment_request(f->ff, c, TENANT, order_id, t, &e))
        fail_msg("request: %s", e.msg);
    assert_int_equal(db_commit(c, &e), 0);
    db_release(c);
}

/* Waits (generously) until the order's fulfilment state is `state`. */
static bool wait_state(fx *f, const char *order_id, const char *state, int timeout_ms)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM order_fulfillments WHERE order_id = $1 AND state = '%s'", state);
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (count(f, sql, order_id) == 1)
            return true;
        f3test_sleep_ms(50);
    }
    return false;
}

/* Waits (generously) until no job of `queue` waits or runs; true if none does. */
/* Waits until the queue has no job running or due; a job due later (a follow-up of a claim
 * held elsewhere, due when that claim would be stale) does not count. */
static bool wait_queue_idle(fx *f, const char *queue, int timeout_ms)
{
    const char *sql = "SELECT COUNT(*) FROM bus_jobs WHERE queue = $1 AND (state = 'active' OR"
                      " (state = 'waiting' AND run_at <= CAST($2 AS BIGINT)))";
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        char now[24];
        db_ms_text(clock_now_ms(), now);
        const char *p[] = {queue, now};
        if (f3test_bus_count_texts(f->tb.d, sql, p, 2) == 0)
            return true;
        f3test_sleep_ms(50);
    }
    return false;
}

static void start_bus(fx *f)
{
    err e = {0};
    if (bus_start(f->b, &e))
        fail_msg("bus_start: %s", e.msg);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void happy_path_with_tracking(fx *f)
{
    char sid[32];
    make_order(f, "o1", "COMPLETED", false, sid);
    orders_tracking t = {"3SYZXG132912330", "https://tracking.example.com/3SYZXG132912330",
                         "postnl", "shp-1"};
    request(f, "o1", &t);
    orders_fulfil_result r;
    assert_int_equal(fulfil(f, "o1", NULL, &r), ORDERS_FULFIL_DONE);
    assert_true(r.fulfillment_id[0]);

    json_t *list = sim_fulfillments(f, sid);
    assert_int_equal(json_array_size(list), 1);
    json_t *sf = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(sf, "tracking_number")),
                        "3SYZXG132912330");
    assert_string_equal(json_string_value(json_object_get(sf, "tracking_company")), "PostNL");
    assert_string_equal(json_string_value(json_object_get(sf, "tracking_url")),
                        "https://tracking.example.com/3SYZXG132912330");
    assert_true(json_is_true(json_object_get(sf, "notify_customer")));
    assert_int_equal(json_array_size(json_object_get(sf, "line_items")), 2);
    char id[64];
    snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(sf, "id")));
    assert_string_equal(r.fulfillment_id, id);
    json_decref(list);

    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM orders WHERE shopify_fulfillment_id = $1 AND"
                           " tracking_number = '3SYZXG132912330' AND fulfilled_at IS NOT NULL"
                           " AND status = 'COMPLETED'",
                           id),
                     1);
    expect_state(f, "o1", "DONE");
    assert_int_equal(log_count(f, ORDERS_LOG_FULFILLED), 1);
    assert_int_equal(atomic_load(&f->fulfilled_emits), 1);

    /* Asked again: nothing more in Shopify, nothing more here. */
    assert_int_equal(fulfil(f, "o1", NULL, &r), ORDERS_FULFIL_ALREADY);
    request(f, "o1", &t);
    assert_int_equal(fulfil(f, "o1", NULL, &r), ORDERS_FULFIL_ALREADY);
    assert_int_equal(sim_fulfillment_count(f, sid), 1);
    assert_int_equal(log_count(f, ORDERS_LOG_FULFILLED), 1);
    assert_int_equal(atomic_load(&f->fulfilled_emits), 1);
}

static void fulfillment_orders_per_line(fx *f)
{
    char sid[32];
    make_order(f, "o2", "COMPLETED", true, sid);
    orders_fulfil_result r;
    assert_int_equal(fulfil(f, "o2", NULL, &r), ORDERS_FULFIL_DONE);
    json_t *list = sim_fulfillments(f, sid);
    assert_int_equal(json_array_size(list), 1);
    assert_int_equal(json_array_size(json_object_get(json_array_get(list, 0), "line_items")), 2);
    json_t *made = json_object_get(json_array_get(list, 0), "id");
    char made_id[32];
    snprintf(made_id, sizeof made_id, "%" JSON_INTEGER_FORMAT, json_integer_value(made));
    json_decref(list);
    /* An order Shopify fulfilled already (e.g. our worker died after the call, before it
     * recorded anything) is recorded with the fulfillment's id read back, not fulfilled
     * again. */
    f3test_bus_exec(f->tb.d, "UPDATE order_fulfillments SET state = 'PENDING',"
                             " shopify_fulfillment_id = NULL WHERE order_id = 'o2'");
    f3test_bus_exec(f->tb.d, "UPDATE orders SET shopify_fulfillment_id = NULL WHERE id = 'o2'");
    assert_int_equal(fulfil(f, "o2", NULL, &r), ORDERS_FULFIL_ALREADY);
    assert_int_equal(sim_fulfillment_count(f, sid), 1);
    expect_state(f, "o2", "DONE");
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM order_fulfillments WHERE order_id = 'o2'"
                           " AND shopify_fulfillment_id = $1",
                           made_id),
                     1);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM orders WHERE id = 'o2'"
                           " AND shopify_fulfillment_id = $1",
                           made_id),
                     1);
}

typedef struct racer {
    orders_fulfillment *ff;
    orders_fulfil_outcome outcome;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    orders_fulfil_result res;
    err e = {0};
    if (orders_fulfil(r->ff, TENANT, "o3", NULL, &res, &e) == 0)
        r->outcome = res.outcome;
    else
        r->outcome = (orders_fulfil_outcome)-1;
    return NULL;
}

/* Two instances, each with its own database handle, pool and bus (as two processes would
 * have), two racing threads each. */
static void test_concurrent_duplicates_fulfil_once(void **state)
{
    fx *f = *state;
    char sid[32];
    make_order(f, "o3", "COMPLETED", false, sid);
    f3test_bus other;
    f3test_bus_open(&other, f->tb.url, 0);
    err e = {0};
    bus *b2 = bus_new(other.d, other.s, BUS_SVC_ORDER, &e);
    assert_non_null(b2);
    orders_fulfillment *ff2 = NULL;
    orders_fulfillment_deps d = {
        .db = other.d, .bus = b2, .store = other.s, .config = f->cfg, .max_attempts = 3};
    if (orders_fulfillment_start(&ff2, &d, NULL, &e))
        fail_msg("second instance: %s", e.msg);
    enum { N = 4 };
    pthread_t th[N];
    racer rs[N];
    for (int i = 0; i < N; i++) {
        rs[i] = (racer){i % 2 ? ff2 : f->ff, ORDERS_FULFIL_FAILED};
        assert_int_equal(pthread_create(&th[i], NULL, race, &rs[i]), 0);
    }
    int done = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_true(rs[i].outcome == ORDERS_FULFIL_DONE || rs[i].outcome == ORDERS_FULFIL_ALREADY ||
                    rs[i].outcome == ORDERS_FULFIL_IN_PROGRESS);
        done += rs[i].outcome == ORDERS_FULFIL_DONE;
    }
    assert_int_equal(done, 1);
    assert_int_equal(sim_fulfillment_count(f, sid), 1);
    assert_int_equal(log_count(f, ORDERS_LOG_FULFILLED), 1);
    bus_free(b2);
    orders_fulfillment_free(ff2);
    f3test_bus_close(&other);
}

/* A worker that claimed the order and died (its claim never renewed again): the next try
 * leaves the claim alone but adds a job due when it is stale; once stale it is taken over
 * and the order fulfilled once. */
static void test_dead_claim_followed_then_taken_over(void **state)
{
    fx *f = *state;
    char sid[32], sql[512], at[24];
    make_order(f, "o7", "COMPLETED", false, sid);
    int64_t claimed = clock_now_ms();
    snprintf(sql, sizeof sql,
             "INSERT INTO order_fulfillments (tenant_id, order_id, state, claim_token, claimed_at,"
             " attempts, created_at, updated_at) VALUES ('" TENANT "', 'o7', 'CLAIMED', 'dead',"
             " %lld, 1, 0, 0)",
             (long long)claimed);
    f3test_bus_exec(f->tb.d, sql);

    orders_fulfil_result r;
    assert_int_equal(fulfil(f, "o7", NULL, &r), ORDERS_FULFIL_IN_PROGRESS);
    assert_int_equal(sim_fulfillment_count(f, sid), 0);
    expect_state(f, "o7", "CLAIMED");
    snprintf(at, sizeof at, "%lld", (long long)(claimed + ORDERS_FULFILLMENT_STALE_MS));
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM bus_jobs WHERE queue = '" ORDERS_FULFILLMENT_QUEUE
                           "' AND state = 'waiting' AND run_at >= CAST($1 AS BIGINT)"
                           " AND data LIKE '%\"o7\"%'",
                           at),
                     1);

    /* Stale now: taken over, fulfilled once, the follow-up will find it done. */
    snprintf(sql, sizeof sql,
             "UPDATE order_fulfillments SET claimed_at = %lld WHERE order_id = 'o7'",
             (long long)(claimed - ORDERS_FULFILLMENT_STALE_MS - 1000));
    f3test_bus_exec(f->tb.d, sql);
    assert_int_equal(fulfil(f, "o7", NULL, &r), ORDERS_FULFIL_DONE);
    assert_int_equal(sim_fulfillment_count(f, sid), 1);
    expect_state(f, "o7", "DONE");
    assert_int_equal(fulfil(f, "o7", NULL, &r), ORDERS_FULFIL_ALREADY);
    assert_int_equal(sim_fulfillment_count(f, sid), 1);
}

static void publish_shipment_created(bus *ship, const char *order_id)
{
    json_t *fields = json_pack("{s:s,s:s,s:s,s:s,s:s}", "shipmentId", "shp-9", "orderId", order_id,
                               "trackingNumber", "TRACK-9", "trackingUrl",
                               "https://tracking.example.com/TRACK-9", "carrier", "dhl");
    err e = {0};
    if (bus_publish(ship, NULL, BUS_EV_SHIPMENT_CREATED, TENANT, fields, &e))
        fail_msg("publish: %s", e.msg);
    json_decref(fields);
}

static void test_duplicate_events_through_the_queues(void **state)
{
    fx *f = *state;
    char sid_a[32], sid_b[32], sid_c[32];
    make_order(f, "oa", "COMPLETED", false, sid_a);
    make_order(f, "ob", "COMPLETED", false, sid_b);
    make_order(f, "oc", "COMPLETED", false, sid_c);
    err e = {0};
    bus *ship = bus_new(f->tb.d, f->tb.s, BUS_SVC_SHIPPING, &e);
    assert_non_null(ship);
    /* Two shipment.created for oa (distinct events, as a re-sent one would be). */
    publish_shipment_created(ship, "oa");
    publish_shipment_created(ship, "oa");
    /* ob: order.ready-for-fulfillment twice, no shipping integration connected. */
    json_t *ready = json_pack("{s:s,s:s}", "orderId", "ob", "tenantId", TENANT);
    assert_int_equal(bus_emitter_emit(f->em, BUS_IEV_ORDER_READY_FOR_FULFILLMENT, ready), 0);
    assert_int_equal(bus_emitter_emit(f->em, BUS_IEV_ORDER_READY_FOR_FULFILLMENT, ready), 0);
    json_decref(ready);
    /* oc: ready, but Sendcloud is connected - its shipment.created will fulfil it. */
    db_conn *c = db_acquire(f->tb.d, &e);
    assert_int_equal(orders_integration_set(c, TENANT, ORDERS_INTEGRATION_SENDCLOUD, true,
                                            clock_now_ms(), NULL, &e),
                     0);
    db_release(c);
    ready = json_pack("{s:s,s:s}", "orderId", "oc", "tenantId", TENANT);
    assert_int_equal(bus_emitter_emit(f->em, BUS_IEV_ORDER_READY_FOR_FULFILLMENT, ready), 0);
    json_decref(ready);

    start_bus(f);
    assert_true(wait_state(f, "oa", "DONE", 15000));
    assert_true(wait_state(f, "ob", "DONE", 15000));
    /* ob's two requests each added a job before the bus started. oa's second shipment.created
     * adds one only when it is handled before oa's first job fulfilled the order (a request
     * for a fulfilled order adds nothing): 3 or 4 jobs, depending on how the workers' threads
     * interleave. Wait for both events, then for every job they added. */
    assert_true(f3test_bus_wait_count(f->tb.s, SHIPMENT_CREATED_Q, BUS_STATE_COMPLETED, 2, 15000));
    assert_true(wait_queue_idle(f, ORDERS_FULFILLMENT_QUEUE, 15000));
    int64_t ran = count(f, "SELECT COUNT(*) FROM bus_jobs WHERE queue = $1 AND state = 'completed'",
                        ORDERS_FULFILLMENT_QUEUE);
    assert_true(ran == 3 || ran == 4);
    /* Any other job is a follow-up due later (a request that found the order claimed). */
    int64_t later = count(f, "SELECT COUNT(*) FROM bus_jobs WHERE queue = $1 AND state = 'waiting'",
                          ORDERS_FULFILLMENT_QUEUE);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM bus_jobs WHERE queue = $1", ORDERS_FULFILLMENT_QUEUE),
        ran + later);
    assert_int_equal(sim_fulfillment_count(f, sid_a), 1);
    assert_int_equal(sim_fulfillment_count(f, sid_b), 1);
    assert_int_equal(sim_fulfillment_count(f, sid_c), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM order_fulfillments WHERE order_id = $1", "oc"),
                     0);
    json_t *list = sim_fulfillments(f, sid_a);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(list, 0), "tracking_company")),
        "DHL Express");
    json_decref(list);

    /* The shipment moves on: the order's shipment status follows. */
    json_t *fields =
        json_pack("{s:s,s:s,s:s,s:s}", "shipmentId", "shp-9", "orderId", "oa", "previousStatus",
                  "En route to sorting center", "newStatus", "Delivered");
    assert_int_equal(bus_publish(ship, NULL, BUS_EV_SHIPMENT_STATUS_CHANGED, TENANT, fields, &e),
                     0);
    json_decref(fields);
    bool delivered = false;
    for (int waited = 0; waited < 15000 && !delivered; waited += 50) {
        delivered = count(f,
                          "SELECT COUNT(*) FROM orders WHERE id = $1 AND shipment_status ="
                          " 'Delivered' AND shipment_delivered_at IS NOT NULL",
                          "oa") == 1;
        if (!delivered)
            f3test_sleep_ms(50);
    }
    assert_true(delivered);
    bus_free(ship);
}

/* Entries of the retry queue for order_id in status. */
static int64_t entries(fx *f, const char *order_id, const char *status)
{
    char sql[256], like[64];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM retry_queue WHERE job_type = 'FULFILLMENT' AND status = '%s'"
             " AND payload LIKE $1",
             status);
    snprintf(like, sizeof like, "%%\"%s\"%%", order_id);
    return count(f, sql, like);
}

/* Operator alerts of one kind. */
static int64_t alerts_of(fx *f, const char *kind)
{
    char like[64];
    snprintf(like, sizeof like, "Operator alert %s:%%", kind);
    return count(f,
                 "SELECT COUNT(*) FROM event_log WHERE event_type = 'operator.alert' AND"
                 " message LIKE $1",
                 like);
}

/* Runs one entry due within the next two hours (the backoff is not waited for). */
static int process(fx *f)
{
    int ran = 0;
    err e = {0};
    if (retry_process_due(f->rq, clock_now_ms() + 2 * 3600 * 1000, 1, &ran, &e))
        fail_msg("retry_process_due: %s", e.msg);
    return ran;
}

/* ms from the entry's last update to its next attempt. */
static int64_t entry_wait_ms(fx *f, const char *order_id)
{
    char like[64];
    snprintf(like, sizeof like, "%%\"%s\"%%", order_id);
    return count(f,
                 "SELECT next_attempt_at - updated_at FROM retry_queue WHERE job_type ="
                 " 'FULFILLMENT' AND status = 'PENDING' AND payload LIKE $1",
                 like);
}

static void test_429_and_5xx_heal(void **state)
{
    fx *f = *state;
    char sid[32], sid2[32], sid3[32];
    make_order(f, "o4", "COMPLETED", false, sid);
    make_order(f, "o5", "COMPLETED", false, sid2);
    make_order(f, "o8", "COMPLETED", false, sid3);
    orders_fulfil_result r;
    /* 429 with Retry-After: 1 -> an entry due no earlier than a second later. */
    sim_fault(f, "429", 1, 1, NULL);
    assert_int_equal(fulfil(f, "o4", NULL, &r), ORDERS_FULFIL_RETRYING);
    assert_true(r.retry_in_ms >= 1000);
    expect_state(f, "o4", "RETRY");
    assert_int_equal(entries(f, "o4", "PENDING"), 1);
    assert_true(count(f,
                      "SELECT COUNT(*) FROM retry_queue WHERE next_attempt_at >= created_at + 1000"
                      " AND payload LIKE $1",
                      "%\"o4\"%") == 1);
    assert_int_equal(log_count(f, ORDERS_LOG_FULFILLMENT_RETRY), 1);
    /* A duplicate request failing the same way adds no second entry. */
    sim_fault(f, "503", 1, 0, NULL);
    assert_int_equal(fulfil(f, "o4", NULL, &r), ORDERS_FULFIL_RETRYING);
    assert_int_equal(entries(f, "o4", "PENDING"), 1);
    /* Nothing left in the bus queue: the retry queue holds the retry. */
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM bus_jobs WHERE queue = $1", ORDERS_FULFILLMENT_QUEUE), 0);
    assert_int_equal(process(f), 1);
    expect_state(f, "o4", "DONE");
    assert_int_equal(entries(f, "o4", "COMPLETED"), 1);
    assert_int_equal(sim_fulfillment_count(f, sid), 1);

    /* 5xx twice on the create call: the first try and the entry's first attempt fail, its
     * second attempt succeeds. */
    sim_fault(f, "502", 2, 0, "fulfillments.json");
    assert_int_equal(fulfil(f, "o5", NULL, &r), ORDERS_FULFIL_RETRYING);
    assert_int_equal(r.retry_in_ms, 50);
    assert_int_equal(process(f), 1);
    expect_state(f, "o5", "RETRY");
    assert_int_equal(entries(f, "o5", "PENDING"), 1);
    assert_int_equal(process(f), 1);
    expect_state(f, "o5", "DONE");
    assert_int_equal(entries(f, "o5", "COMPLETED"), 1);
    assert_int_equal(sim_fulfillment_count(f, sid2), 1);
    assert_int_equal(count(f, "SELECT attempts FROM order_fulfillments WHERE order_id = $1", "o5"),
                     3);
    assert_int_equal(log_count(f, ORDERS_LOG_FULFILLMENT_RETRY), 4);

    /* A 429 met by an entry: its next attempt waits for Retry-After (30 s), not for the
     * backoff (1 s). */
    sim_fault(f, "503", 1, 0, NULL);
    assert_int_equal(fulfil(f, "o8", NULL, &r), ORDERS_FULFIL_RETRYING);
    sim_fault(f, "429", 1, 30, NULL);
    assert_int_equal(process(f), 1);
    int64_t wait = entry_wait_ms(f, "o8");
    assert_true(wait >= 30000 && wait < 60000);
    assert_int_equal(process(f), 1);
    expect_state(f, "o8", "DONE");
    assert_int_equal(sim_fulfillment_count(f, sid3), 1);
    assert_int_equal(sim_fulfillment_count(f, sid), 1);
    assert_int_equal(sim_fulfillment_count(f, sid2), 1);
    assert_int_equal(alert_count(f), 0);
    assert_int_equal(log_count(f, RETRY_EXHAUSTED_EVENT), 0);
}

static void test_4xx_not_retried_alert_once(void **state)
{
    fx *f = *state;
    char sid[32];
    make_order(f, "o6", "COMPLETED", false, sid);
    sim_fault(f, "422", 1, 0, "fulfillments.json");
    orders_fulfil_result r;
    assert_int_equal(fulfil(f, "o6", NULL, &r), ORDERS_FULFIL_FAILED);
    assert_true(r.error[0]);
    assert_true(r.alerted);
    expect_state(f, "o6", "FAILED");
    assert_int_equal(alert_count(f), 1);
    assert_int_equal(atomic_load(&f->failed_emits), 1);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM event_log WHERE event_type = $1 AND"
                           " severity = 'ERROR'",
                           ORDERS_LOG_FULFILLMENT_FAILED),
                     1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM orders WHERE id = $1 AND status = 'COMPLETED'", "o6"), 1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM bus_jobs WHERE queue = $1", ORDERS_FULFILLMENT_QUEUE), 0);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM retry_queue WHERE job_type = 'FULFILLMENT'", NULL), 0);
    /* A duplicate event later does not try again, nor alert again. */
    request(f, "o6", NULL);
    assert_int_equal(fulfil(f, "o6", NULL, &r), ORDERS_FULFIL_FAILED);
    assert_int_equal(alert_count(f), 1);
    assert_int_equal(sim_fulfillment_count(f, sid), 0);

    /* Retries that never heal: the entry's attempts (3 here) run out -> the fulfilment
     * FAILED, RETRY_EXHAUSTED and exactly one alert (the retry queue's). */
    char sid7[32];
    make_order(f, "o7", "COMPLETED", false, sid7);
    sim_fault(f, "503", 100, 0, "fulfillment_orders");
    assert_int_equal(fulfil(f, "o7", NULL, &r), ORDERS_FULFIL_RETRYING);
    assert_int_equal(process(f), 1);
    assert_int_equal(process(f), 1);
    assert_int_equal(entries(f, "o7", "PENDING"), 1);
    assert_int_equal(alert_count(f), 1);
    assert_int_equal(process(f), 1);
    assert_int_equal(entries(f, "o7", "FAILED"), 1);
    expect_state(f, "o7", "FAILED");
    assert_int_equal(log_count(f, RETRY_EXHAUSTED_EVENT), 1);
    assert_int_equal(alert_count(f), 2);
    assert_int_equal(alerts_of(f, "RETRY_EXHAUSTED"), 1);
    assert_int_equal(alerts_of(f, "FULFILLMENT_FAILED"), 1);
    assert_int_equal(atomic_load(&f->failed_emits), 2);
    assert_int_equal(process(f), 0);
    sim_fault(f, "503", 0, 0, NULL);

    /* The operator sends the entry back: it is their request, so the FAILED fulfilment is
     * tried again - once. */
    char id[64] = "";
    err e = {0};
    db_conn *c = db_acquire(f->tb.d, &e);
    db_stmt *st = db_prepare(
        c, "SELECT id FROM retry_queue WHERE status = 'FAILED' AND job_type = 'FULFILLMENT'", &e);
    assert_int_equal(db_step(st, &e), DB_ROW);
    db_col_copy(st, 0, id, sizeof id);
    db_finalize(st);
    assert_int_equal(retry_manual(c, TENANT, id, 0, &e), 0);
    db_release(c);
    assert_int_equal(process(f), 1);
    expect_state(f, "o7", "DONE");
    assert_int_equal(entries(f, "o7", "COMPLETED"), 1);
    assert_int_equal(sim_fulfillment_count(f, sid7), 1);
    assert_int_equal(alert_count(f), 2);

    /* A permanent failure met by an entry: the fulfilment's own alert, the entry FAILED
     * at once, RETRY_EXHAUSTED logged - and no second alert. */
    char sid9[32];
    make_order(f, "o9", "COMPLETED", false, sid9);
    sim_fault(f, "503", 1, 0, NULL);
    assert_int_equal(fulfil(f, "o9", NULL, &r), ORDERS_FULFIL_RETRYING);
    sim_fault(f, "422", 1, 0, "fulfillments.json");
    assert_int_equal(process(f), 1);
    expect_state(f, "o9", "FAILED");
    assert_int_equal(entries(f, "o9", "FAILED"), 1);
    assert_int_equal(log_count(f, RETRY_EXHAUSTED_EVENT), 2);
    assert_int_equal(alert_count(f), 3);
    assert_int_equal(alerts_of(f, "FULFILLMENT_FAILED"), 2);
    assert_int_equal(sim_fulfillment_count(f, sid9), 0);

    /* An operator asks: tried again, and it works now. */
    orders_fulfil_opts op = {.operator= true, .user_id = "u-op"};
    assert_int_equal(fulfil(f, "o6", &op, &r), ORDERS_FULFIL_DONE);
    assert_int_equal(sim_fulfillment_count(f, sid), 1);
}

static void cancelled_and_not_completed(fx *f)
{
    char sid[32], sid2[32];
    make_order(f, "oc1", "CANCELLED", false, sid);
    make_order(f, "op1", "PROCESSING", false, sid2);
    orders_fulfil_result r;
    orders_fulfil_opts force = {.force = true, .operator= true, .user_id = "u-op"};
    assert_int_equal(fulfil(f, "oc1", NULL, &r), ORDERS_FULFIL_CANCELLED);
    assert_int_equal(fulfil(f, "oc1", &force, &r), ORDERS_FULFIL_CANCELLED);
    assert_int_equal(fulfil(f, "op1", NULL, &r), ORDERS_FULFIL_NOT_COMPLETED);
    assert_string_equal(r.order_status, "PROCESSING");
    assert_int_equal(sim_fulfillment_count(f, sid), 0);
    assert_int_equal(sim_fulfillment_count(f, sid2), 0);
    assert_int_equal(log_count(f, ORDERS_LOG_FULFILLMENT_FORCED), 0);
    /* Forced by an operator: fulfilled, logged as a WARNING with the user; still once. */
    assert_int_equal(fulfil(f, "op1", &force, &r), ORDERS_FULFIL_DONE);
    assert_int_equal(fulfil(f, "op1", &force, &r), ORDERS_FULFIL_ALREADY);
    assert_int_equal(sim_fulfillment_count(f, sid2), 1);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM event_log WHERE event_type = $1 AND"
                           " severity = 'WARNING' AND user_id = 'u-op'",
                           ORDERS_LOG_FULFILLMENT_FORCED),
                     1);
    err e = {0};
    assert_int_equal(orders_fulfil(f->ff, TENANT, "missing", NULL, &r, &e), F3_ENOTFOUND);
}

static void publish_sendcloud(bus *ship, const char *action)
{
    json_t *fields = json_pack("{s:s}", "action", action);
    err e = {0};
    if (bus_publish(ship, NULL, BUS_EV_INTEGRATION_SENDCLOUD_CHANGED, TENANT, fields, &e))
        fail_msg("publish: %s", e.msg);
    json_decref(fields);
}

static void emit_ready(fx *f, const char *order_id)
{
    json_t *ready = json_pack("{s:s,s:s}", "orderId", order_id, "tenantId", TENANT);
    assert_int_equal(bus_emitter_emit(f->em, BUS_IEV_ORDER_READY_FOR_FULFILLMENT, ready), 0);
    json_decref(ready);
}

static void integration_events_decide_the_trigger(fx *f)
{
    char sid[32];
    make_order(f, "oi", "COMPLETED", false, sid);
    err e = {0};
    bus *ship = bus_new(f->tb.d, f->tb.s, BUS_SVC_SHIPPING, &e);
    assert_non_null(ship);
    publish_sendcloud(ship, "connected");
    start_bus(f);
    const char *connected = "SELECT COUNT(*) FROM tenant_integrations WHERE provider ="
                            " 'sendcloud' AND status = $1";
    for (int waited = 0; waited < 15000 && count(f, connected, "CONNECTED") != 1; waited += 50)
        f3test_sleep_ms(50);
    assert_int_equal(count(f, connected, "CONNECTED"), 1);
    /* An older change arriving late changes nothing. */
    db_conn *c = db_acquire(f->tb.d, &e);
    bool applied = true, on = false;
    assert_int_equal(
        orders_integration_set(c, TENANT, ORDERS_INTEGRATION_SENDCLOUD, false, 1000, &applied, &e),
        0);
    assert_false(applied);
    assert_int_equal(orders_integration_connected(c, TENANT, ORDERS_INTEGRATION_SENDCLOUD, &on, &e),
                     0);
    assert_true(on);
    db_release(c);
    /* Shipping connected: ready-for-fulfillment waits for the shipment. */
    emit_ready(f, "oi");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM order_fulfillments WHERE order_id = $1", "oi"),
                     0);
    /* Disconnected: the order is fulfilled without tracking. */
    publish_sendcloud(ship, "disconnected");
    for (int waited = 0; waited < 15000 && count(f, connected, "DISCONNECTED") != 1; waited += 50)
        f3test_sleep_ms(50);
    emit_ready(f, "oi");
    assert_true(wait_state(f, "oi", "DONE", 15000));
    assert_int_equal(sim_fulfillment_count(f, sid), 1);
    bus_free(ship);
}

/* Pairs of scenarios share one fixture (a fresh database costs a second on PostgreSQL). */
static void test_happy_path_and_fulfillment_orders_per_line(void **state)
{
    happy_path_with_tracking(*state);
    fulfillment_orders_per_line(*state);
}

static void test_skips_force_and_integration_events(void **state)
{
    cancelled_and_not_completed(*state);
    integration_events_decide_the_trigger(*state);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_happy_path_and_fulfillment_orders_per_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_duplicates_fulfil_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_claim_followed_then_taken_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_events_through_the_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_and_5xx_heal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_4xx_not_retried_alert_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skips_force_and_integration_events, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
