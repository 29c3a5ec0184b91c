/*
 * sim.c - the Shopify simulator's life cycle, its in-memory shop and the
 * control endpoints under /_sim/ that tests and the sandbox drive it with.
 *
 * The Admin API itself lives in admin.c and webhook delivery in delivery.c.
 * Nothing here talks to the real Shopify.
 */
#include "sim/shopify/sim_internal.h"

#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "integrations/shopify/order.h"
#include "integrations/shopify/webhook.h"
#include "sim/common/control.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_ID           6100000000001LL
#define FIRST_ORDER_NUMBER 1001

int64_t sim_new_id(shopify_sim *s)
{
    return s->next_id++;
}

int sim_errors(http_response *res, int status, const char *message)
{
    return http_res_json(res, status, json_pack("{s:s}", "errors", message));
}

json_t *sim_find_order(const shopify_sim *s, int64_t id)
{
    size_t i;
    json_t *o;
    json_array_foreach(s->orders, i, o)
    {
        if (json_integer_value(json_object_get(o, "id")) == id)
            return o;
    }
    return NULL;
}

static json_t *now_iso(void)
{
    char iso[CLOCK_ISO_LEN];
    clock_now_iso(iso);
    return json_string(iso);
}

void sim_touch(json_t *order)
{
    json_object_set_new(order, "updated_at", now_iso());
}

/* minor units -> "12.34" with exp (0..3) decimals. */
static void money_format(int64_t minor, int exp, char out[32])
{
    const char *sign = minor < 0 ? "-" : "";
    uint64_t v = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    char frac[4] = "";
    if (exp > 3)
        exp = 3;
    for (int i = exp - 1; i >= 0; i--) {
        frac[i] = (char)('0' + v % 10);
        v /= 10;
    }
    frac[exp] = '\0';
    snprintf(out, 32, "%s%" PRIu64 "%s%s", sign, v, exp ? "." : "", frac);
}

/* Sets key to a new id unless the template gave one (an integer or null). */
static void default_id(shopify_sim *s, json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v || !(json_is_integer(v) || json_is_null(v)))
        json_object_set_new(obj, key, json_integer(sim_new_id(s)));
}

static void default_value(json_t *obj, const char *key, json_t *value)
{
    if (!json_object_get(obj, key))
        json_object_set_new(obj, key, value);
    else
        json_decref(value);
}

/* Completes one line item of a new order; adds its price * quantity to *total. */
static int complete_line_item(shopify_sim *s, json_t *li, int exp, int64_t *total, buf *why)
{
    if (!json_is_object(li))
        return buf_puts(why, "line items must be objects"), -1;
    json_object_set_new(li, "id", json_integer(sim_new_id(s)));
    default_id(s, li, "product_id");
    default_id(s, li, "variant_id");
    json_t *q = json_object_get(li, "quantity");
    if (!json_is_integer(q) || json_integer_value(q) < 1)
        return buf_puts(why, "line item quantity must be a positive integer"), -1;
    const char *price = json_string_value(json_object_get(li, "price"));
    int64_t minor = 0;
    if (!price)
        json_object_set_new(li, "price", json_string(exp == 0 ? "0" : exp == 3 ? "0.000" : "0.00"));
    else if (shopify_money_parse(price, exp, &minor) != 0)
        return buf_printf(why, "line item price '%s' is not an amount", price), -1;
    *total += minor * json_integer_value(q);
    default_value(li, "title", json_string("Simulated item"));
    default_value(li, "sku", json_null());
    default_value(li, "variant_title", json_null());
    default_value(li, "requires_shipping", json_true());
    default_value(li, "grams", json_integer(0));
    default_value(li, "properties", json_array());
    json_object_set_new(li, "fulfillable_quantity", json_integer(json_integer_value(q)));
    json_object_set_new(li, "fulfillment_status", json_null());
    return 0;
}

/* A fulfillment order (at the one location) for the shippable items of order among
 * `items` (an array of line items). NULL when none of them ships. */
static json_t *make_fulfillment_order(shopify_sim *s, const json_t *order, const json_t *items)
{
    int64_t fo_id = sim_new_id(s);
    json_t *lines = json_array();
    size_t i;
    json_t *li;
    json_array_foreach(items, i, li)
    {
        if (!json_is_true(json_object_get(li, "requires_shipping")))
            continue;
        json_int_t qty = json_integer_value(json_object_get(li, "quantity"));
        json_array_append_new(lines, json_pack("{s:I,s:I,s:O,s:O,s:I,s:I,s:I}", "id",
                                               (json_int_t)sim_new_id(s), "fulfillment_order_id",
                                               (json_int_t)fo_id, "line_item_id",
                                               json_object_get(li, "id"), "variant_id",
                                               json_object_get(li, "variant_id"),
                                               "inventory_item_id", (json_int_t)sim_new_id(s),
                                               "quantity", qty, "fulfillable_quantity", qty));
    }
    if (json_array_size(lines) == 0) {
        json_decref(lines);
        return NULL;
    }
    json_t *dest = json_object_get(order, "shipping_address");
    return json_pack("{s:I,s:O,s:I,s:s,s:s,s:[sss],s:O,s:o}", "id", (json_int_t)fo_id, "order_id",
                     json_object_get(order, "id"), "assigned_location_id",
                     (json_int_t)70000000001LL, "status", "open", "request_status", "unsubmitted",
                     "supported_actions", "create_fulfillment", "hold", "move", "destination",
                     dest ? dest : json_null(), "line_items", lines);
}

/* The fulfillment orders Shopify would create: one for all shippable items, or (per_line,
 * as when items are split by the merchant) one per shippable line item. Lock held. */
static json_t *make_fulfillment_orders(shopify_sim *s, const json_t *order, bool per_line)
{
    json_t *list = json_array(), *items = json_object_get(order, "line_items");
    if (!per_line) {
        json_t *fo = make_fulfillment_order(s, order, items);
        if (fo)
            json_array_append_new(list, fo);
        return list;
    }
    size_t i;
    json_t *li;
    json_array_foreach(items, i, li)
    {
        json_t *one = json_pack("[O]", li);
        json_t *fo = make_fulfillment_order(s, order, one);
        json_decref(one);
        if (fo)
            json_array_append_new(list, fo);
    }
    return list;
}

json_t *sim_fulfillments_of(const shopify_sim *s, int64_t order_id)
{
    json_t *list = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(s->fulfillments, i, f)
    {
        if (json_integer_value(json_object_get(f, "order_id")) == order_id)
            json_array_append_new(list, json_deep_copy(f));
    }
    return list;
}

/* Makes a stored order from a template (a fixture or a few fields). Lock held.
 * NULL with why filled when the template is unusable. */
static json_t *build_order(shopify_sim *s, const json_t *tmpl, buf *why)
{
    json_t *o = json_deep_copy(tmpl);
    if (!o)
        return buf_puts(why, "out of memory"), NULL;
    default_value(o, "currency", json_string("EUR"));
    int exp = shopify_currency_exponent(json_string_value(json_object_get(o, "currency")));
    json_t *items = json_object_get(o, "line_items");
    int64_t total = 0;
    if (exp < 0) {
        buf_puts(why, "currency must be an ISO 4217 code");
        goto fail;
    }
    if (!json_is_array(items) || json_array_size(items) == 0) {
        buf_puts(why, "line_items must be a non-empty array");
        goto fail;
    }
    int64_t id = sim_new_id(s);
    json_int_t number = (json_int_t)s->next_order_number++;
    char text[64];
    json_object_set_new(o, "id", json_integer(id));
    snprintf(text, sizeof text, "gid://shopify/Order/%" PRId64, id);
    json_object_set_new(o, "admin_graphql_api_id", json_string(text));
    json_object_set_new(o, "order_number", json_integer(number));
    json_object_set_new(o, "number", json_integer(number - 1000));
    snprintf(text, sizeof text, "#%" PRId64, (int64_t)number);
    json_object_set_new(o, "name", json_string(text));
    size_t i;
    json_t *li;
    json_array_foreach(items, i, li)
    {
        if (complete_line_item(s, li, exp, &total, why))
            goto fail;
    }
    char money[32];
    money_format(total, exp, money);
    default_value(o, "subtotal_price", json_string(money));
    default_value(o, "total_price", json_string(money));
    default_value(o, "total_tax", json_string(exp == 0 ? "0" : exp == 3 ? "0.000" : "0.00"));
    int64_t ignored;
    const char *created = json_string_value(json_object_get(o, "created_at"));
    if (created && clock_parse_iso(created, &ignored) != 0) {
        buf_puts(why, "created_at must be an ISO-8601 time");
        goto fail;
    }
    if (!created)
        json_object_set_new(o, "created_at", now_iso());
    default_value(o, "updated_at", json_deep_copy(json_object_get(o, "created_at")));
    default_value(o, "email", json_null());
    default_value(o, "customer", json_null());
    default_value(o, "shipping_address", json_null());
    default_value(o, "financial_status", json_string("pending"));
    default_value(o, "test", json_false());
    json_object_set_new(o, "fulfillment_status", json_null());
    json_object_set_new(o, "cancelled_at", json_null());
    json_object_set_new(o, "cancel_reason", json_null());
    json_object_set_new(o, "closed_at", json_null());
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* "duplicates" of a control request: extra deliveries of the same event (0..10). */
static int read_duplicates(const json_t *body, int *dup)
{
    int64_t n = 0;
    err e;
    if (json_opt_int(body, "duplicates", &n, 0, &e) || n < 0 || n > 10)
        return -1;
    *dup = (int)n;
    return 0;
}

/* POST /_sim/orders: {"order": {...}} or the order's fields at the top level,
 * plus "duplicates" (extra deliveries) and "deliver" (false = store only).
 * Fires orders/create, and orders/paid when created paid. */
static int h_create_order(http_request *req, http_response *res, void *ctx)
{
    shopify_sim *s = ctx;
    json_t *body = NULL;
    if (http_req_json(req, &body, res))
        return 0;
    buf why;
    buf_init(&why, 1024);
    int dup = 0, rc = 0;
    bool deliver = true;
    err e;
    json_t *tmpl = json_object_get(body, "order");
    const char *split = json_string_value(json_object_get(body, "fulfillment_orders"));
    if (!json_is_object(body) || (tmpl && !json_is_object(tmpl)) || read_duplicates(body, &dup) ||
        json_opt_bool(body, "deliver", &deliver, true, &e) ||
        (json_object_get(body, "fulfillment_orders") && !str_eq(split, "single") &&
         !str_eq(split, "per_line"))) {
        rc = http_res_error(res, 400,
                            "expected {\"order\": {...}, \"duplicates\": 0..10, "
                            "\"fulfillment_orders\": \"single|per_line\"}");
        goto out;
    }
    bool per_line = str_eq(split, "per_line");
    if (!tmpl) {
        tmpl = body;
        json_object_del(body, "duplicates");
        json_object_del(body, "deliver");
        json_object_del(body, "fulfillment_orders");
    }
    pthread_mutex_lock(&s->lock);
    json_t *order = build_order(s, tmpl, &why);
    json_t *seqs = json_array();
    if (order) {
        json_array_append_new(s->orders, order);
        char key[24];
        snprintf(key, sizeof key, "%" PRId64,
                 (int64_t)json_integer_value(json_object_get(order, "id")));
        json_object_set_new(s->fulfillment_orders, key,
                            make_fulfillment_orders(s, order, per_line));
        if (deliver) {
            sim_deliver_event(s, "orders/create", order, dup, seqs);
            if (str_eq(json_string_value(json_object_get(order, "financial_status")), "paid"))
                sim_deliver_event(s, "orders/paid", order, dup, seqs);
        }
    }
    json_t *answer = order ? json_pack("{s:O,s:o}", "order", order, "deliveries", seqs) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!order) {
        json_decref(seqs);
        rc = http_res_error(res, 422, "%s", buf_cstr(&why));
        goto out;
    }
    log_info("sim order created", "name",
             json_string_value(json_object_get(json_object_get(answer, "order"), "name")));
    rc = http_res_json(res, 201, answer);
out:
    buf_free(&why);
    json_decref(body);
    return rc;
}

/* Applies a topic's change to an order: paid, cancelled, fulfilled or plain updated. */
static int apply_topic(shopify_sim *s, json_t *order, const char *topic, const json_t *body)
{
    if (str_eq(topic, "orders/paid")) {
        json_object_set_new(order, "financial_status", json_string("paid"));
    } else if (str_eq(topic, "orders/cancelled")) {
        const char *reason = json_string_value(json_object_get(body, "reason"));
        json_object_set_new(order, "cancelled_at", now_iso());
        json_object_set_new(order, "cancel_reason", json_string(reason ? reason : "customer"));
        char key[24];
        snprintf(key, sizeof key, "%" PRId64,
                 (int64_t)json_integer_value(json_object_get(order, "id")));
        size_t i;
        json_t *fo;
        json_array_foreach(json_object_get(s->fulfillment_orders, key), i, fo)
        {
            json_object_set_new(fo, "status", json_string("cancelled"));
            json_object_set_new(fo, "supported_actions", json_array());
        }
    } else if (str_eq(topic, "orders/fulfilled")) {
        json_object_set_new(order, "fulfillment_status", json_string("fulfilled"));
    } else if (!str_eq(topic, "orders/updated")) {
        return -1;
    }
    if (json_is_object(json_object_get(body, "changes")))
        json_object_update(order, json_object_get(body, "changes"));
    sim_touch(order);
    return 0;
}

/* POST /_sim/orders/:id/events {"topic": "orders/paid", "duplicates": 0,
 * "reason": "...", "changes": {...}}: changes the order and delivers the topic. */
static int h_order_event(http_request *req, http_response *res, void *ctx)
{
    shopify_sim *s = ctx;
    json_t *body = NULL;
    if (http_req_json(req, &body, res))
        return 0;
    int64_t id = 0;
    int dup = 0, rc;
    const char *topic = json_string_value(json_object_get(body, "topic"));
    if (str_to_int64(http_req_param(req, "id"), &id) || !topic || read_duplicates(body, &dup)) {
        rc = http_res_error(res, 400, "expected an order id and {\"topic\": \"orders/paid\"}");
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    json_t *order = sim_find_order(s, id), *answer = NULL;
    int applied = order ? apply_topic(s, order, topic, body) : 0;
    if (order && applied == 0) {
        json_t *seqs = json_array();
        sim_deliver_event(s, topic, order, dup, seqs);
        answer = json_pack("{s:O,s:o}", "order", order, "deliveries", seqs);
    }
    pthread_mutex_unlock(&s->lock);
    if (!order)
        rc = http_res_error(res, 404, "Order not found: %s", http_req_param(req, "id"));
    else if (applied)
        rc = http_res_error(res, 400,
                            "topic must be orders/updated, orders/paid, orders/cancelled or "
                            "orders/fulfilled");
    else
        rc = http_res_json(res, 200, answer);
out:
    json_decref(body);
    return rc;
}

static const int fault_statuses[] = {429, 500, 501, 502, 503, 504, 400, 403, 404, 422};

static const sim_fault_kinds fault_kinds = {
    .statuses = fault_statuses,
    .nstatuses = sizeof fault_statuses / sizeof fault_statuses[0],
    .retry_after = 2,
    .match = true,
    .usage = "expected {\"kind\": \"429|500|502|503|504|400|403|404|422|timeout\", \"count\": N, "
             "\"match\": \"path part\"}",
};

/* POST /_sim/faults {"kind": "429"|"500"|...|"timeout", "count": N, "retry_after": seconds,
 * "delay_ms": ms, "match": "path part"}: the next N Admin API requests fail so. */
static int h_faults(http_request *req, http_response *res, void *ctx)
{
    shopify_sim *s = ctx;
    return sim_fault_handle(req, res, &s->lock, &s->fault, NULL, &fault_kinds);
}

/* POST /_sim/webhooks {"url": "http://..."|null, "retry_base_ms": ms, "max_retries": n}. */
static int h_webhooks(http_request *req, http_response *res, void *ctx)
{
    shopify_sim *s = ctx;
    json_t *body = NULL;
    if (http_req_json(req, &body, res))
        return 0;
    json_t *url = json_object_get(body, "url");
    int64_t base = -1, retries = -1;
    err e;
    int rc;
    if (!json_is_object(body) || (url && !json_is_string(url) && !json_is_null(url)) ||
        !sim_url_ok(url) || json_opt_int(body, "retry_base_ms", &base, -1, &e) ||
        json_opt_int(body, "max_retries", &retries, -1, &e) || base > 3600000 || retries > 30) {
        rc = http_res_error(res, 400,
                            "expected {\"url\": \"http://...\", \"retry_base_ms\": ms, "
                            "\"max_retries\": n}");
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    if (url) {
        free(s->webhook_url);
        s->webhook_url = json_is_string(url) ? str_dup(json_string_value(url)) : NULL;
    }
    if (base >= 0)
        s->courier.retry_base_ms = (long)base;
    if (retries >= 0)
        s->courier.max_retries = (int)retries;
    json_t *answer =
        json_pack("{s:s?,s:I,s:i}", "url", s->webhook_url, "retry_base_ms",
                  (json_int_t)s->courier.retry_base_ms, "max_retries", s->courier.max_retries);
    pthread_mutex_unlock(&s->lock);
    rc = http_res_json(res, 200, answer);
out:
    json_decref(body);
    return rc;
}

/* GET /_sim/fulfillments[?order_id=N]: every fulfillment created (of one order). */
static int h_fulfillments(http_request *req, http_response *res, void *ctx)
{
    shopify_sim *s = ctx;
    const char *order = http_req_query_param(req, "order_id");
    int64_t id = 0;
    if (order && (str_to_int64(order, &id) || id <= 0))
        return http_res_error(res, 400, "order_id must be a positive integer");
    pthread_mutex_lock(&s->lock);
    json_t *list = order ? sim_fulfillments_of(s, id) : json_deep_copy(s->fulfillments);
    pthread_mutex_unlock(&s->lock);
    return http_res_json(res, 200, json_pack("{s:o}", "fulfillments", list));
}

/* POST /_sim/reset: forgets orders, fulfillments, deliveries, faults and the bucket. */
static int h_reset(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    shopify_sim *s = ctx;
    pthread_mutex_lock(&s->lock);
    json_array_clear(s->orders);
    json_object_clear(s->fulfillment_orders);
    json_array_clear(s->fulfillments);
    sim_courier_clear(&s->courier);
    s->fault = (sim_fault){0};
    s->bucket_level = 0;
    pthread_mutex_unlock(&s->lock);
    return http_res_json(res, 200, json_pack("{s:b}", "reset", 1));
}

static int h_health(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    shopify_sim *s = ctx;
    return http_res_json(res, 200, json_pack("{s:s,s:s}", "status", "ok", "shop", s->shop_domain));
}

static int add_control_routes(shopify_sim *s, err *e)
{
    const http_route routes[] = {
        {"GET", "/_sim/health", h_health, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/orders", h_create_order, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/orders/:id/events", h_order_event, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/faults", h_faults, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/webhooks", h_webhooks, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/_sim/deliveries", sim_courier_h_deliveries, &s->courier, HTTP_ACCESS_PUBLIC},
        {"GET", "/_sim/fulfillments", h_fulfillments, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/reset", h_reset, s, HTTP_ACCESS_PUBLIC},
    };
    return http_router_add(s->srv.router, routes, sizeof routes / sizeof routes[0], e);
}

shopify_sim *shopify_sim_start(const shopify_sim_opts *o, err *e)
{
    if (!o->secret || !*o->secret || !o->token || !*o->token) {
        err_set(e, F3_EINVAL, "the Shopify simulator needs an app secret and an access token");
        return NULL;
    }
    if (o->webhook_url && *o->webhook_url && !sim_is_http_url(o->webhook_url)) {
        err_set(e, F3_EINVAL, "webhook URL must be http:// or https://");
        return NULL;
    }
    shopify_sim *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, F3_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    s->secret = str_dup(o->secret);
    s->token = str_dup(o->token);
    s->client_id = sim_dup_or(o->client_id, "f3connect-sim");
    s->shop_domain = sim_dup_or(o->shop_domain, "f3connect-sim.myshopify.com");
    s->api_version = sim_dup_or(o->api_version, "2025-10");
    s->webhook_url = o->webhook_url && *o->webhook_url ? str_dup(o->webhook_url) : NULL;
    s->bucket_size = o->bucket_size > 0 ? o->bucket_size : 40;
    s->leak_per_s = o->leak_per_s > 0 ? o->leak_per_s : 2;
    s->courier = (sim_courier){
        .lock = &s->lock,
        .wake = &s->wake,
        .stopping = &s->stopping,
        .timeout_ms = o->delivery_timeout_ms > 0 ? o->delivery_timeout_ms : 5000,
        .max_wait_ms = 1000,
        .retry_base_ms = o->retry_base_ms > 0 ? o->retry_base_ms : 60000,
        .max_retries = o->max_retries > 0 ? o->max_retries : 8,
    };
    s->next_id = FIRST_ID;
    s->next_order_number = FIRST_ORDER_NUMBER;
    s->bucket_ms = clock_mono_ms();
    s->orders = json_array();
    s->fulfillment_orders = json_object();
    s->fulfillments = json_array();
    if (sim_server_init(&s->srv, &s->lock, &s->stopping, e))
        goto fail;
    if (!s->secret || !s->token || !s->client_id || !s->shop_domain || !s->api_version ||
        !s->orders || !s->fulfillment_orders || !s->fulfillments ||
        (o->webhook_url && *o->webhook_url && !s->webhook_url)) {
        err_set(e, F3_ENOMEM, "out of memory");
        goto fail;
    }
    if (add_control_routes(s, e) || sim_admin_add_routes(s, e) ||
        sim_server_spawn(&s->srv, sim_courier_worker, &s->courier, &s->wake,
                         "the webhook delivery thread", e) ||
        sim_server_listen(&s->srv, o->host, o->port, 4, e))
        goto fail;
    return s;
fail:
    shopify_sim_stop(s);
    return NULL;
}

int shopify_sim_port(const shopify_sim *s)
{
    return sim_server_port(&s->srv);
}

void shopify_sim_stop(shopify_sim *s)
{
    if (!s)
        return;
    sim_server_stop(&s->srv);
    sim_courier_free(&s->courier);
    json_decref(s->orders);
    json_decref(s->fulfillment_orders);
    json_decref(s->fulfillments);
    free(s->secret);
    free(s->token);
    free(s->client_id);
    free(s->shop_domain);
    free(s->api_version);
    free(s->webhook_url);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
