/*
 * test_shopify_sim.c - the Shopify client against the simulator run as its own
 * process (`f3connect sim shopify`): cursor pagination over three pages, 429 with
 * Retry-After (transient, with the delay), other injected failures, 401
 * (permanent), the client-credentials exchange, the fulfillment-order flow; and
 * webhooks delivered to an in-process receiver: signatures that verify, retries
 * after a 500, duplicates that share one event id.
 */
#include "support/f3test.h"
#include "support/f3test_http.h"
#include "support/f3test_proc.h"
#include "support/f3test_sim.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "http/client.h"
#include "http/request.h"
#include "http/response.h"
#include "http/server.h"
#include "integrations/shopify/client.h"
#include "integrations/shopify/webhook.h"
#include "sim/shopify/sim.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "shpss_sim_secret"
#define TOKEN  "shpat_sim_token"

/* ---- the webhook receiver (in-process) -------------------------------------- */

#define MAX_RECEIVED 32

typedef struct received {
    char topic[64], event_id[64], webhook_id[64], shop[128];
    int verify_rc;  /* shopify_webhook_verify */
    int headers_rc; /* shopify_webhook_headers_from_request */
    int order_rc;   /* shopify_order_parse of the body */
    char order_id[SHOPIFY_ID_LEN];
    int status; /* what the receiver answered */
} received;

static received got[MAX_RECEIVED]; /* kept by env.hook */

static f3test_sim_env env;

static int h_webhook(http_request *req, http_response *res, void *ctx)
{
    size_t len = 0;
    const char *body = http_req_body(req, &len);
    received r = {0};
    shopify_webhook_headers wh;
    err e;
    r.verify_rc =
        shopify_webhook_verify(SECRET, body, len, http_req_header(req, SHOPIFY_HEADER_HMAC), &e);
    r.headers_rc = shopify_webhook_headers_from_request(req, &wh, &e);
    if (r.headers_rc == 0) {
        snprintf(r.topic, sizeof r.topic, "%s", wh.topic);
        snprintf(r.event_id, sizeof r.event_id, "%s", wh.event_id);
        snprintf(r.webhook_id, sizeof r.webhook_id, "%s", wh.webhook_id ? wh.webhook_id : "");
        snprintf(r.shop, sizeof r.shop, "%s", wh.shop_domain);
    }
    shopify_order o;
    r.order_rc = shopify_order_parse(body, len, &o, &e);
    if (r.order_rc == 0)
        snprintf(r.order_id, sizeof r.order_id, "%s", o.id);
    shopify_order_free(&o);
    r.status = f3test_receiver_status(ctx);
    f3test_receiver_keep(ctx, &r);
    return f3test_receiver_reply(res, r.status);
}

/* ---- the simulator process -------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    if (f3test_receiver_start(&env.hook, "/webhooks/shopify", h_webhook, got, sizeof got[0],
                              MAX_RECEIVED))
        return -1;
    const char *args[] = {"shopify", "--secret",      SECRET,       "--token",
                          TOKEN,     "--webhook-url", env.hook.url, "--retry-base-ms",
                          "100",     "--max-retries", "3",          NULL};
    return f3test_sim_start(&env.sim, args, "/_sim/health");
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = f3test_sim_env_stop(&env);
    return rc;
}

/* Calls a control endpoint; returns the JSON answer (caller decrefs). */
static json_t *control(const char *method, const char *path, json_t *body)
{
    return f3test_sim_call(&env.sim, method, path, body, 0);
}

static int test_setup(void **state)
{
    (void)state;
    json_decref(control("POST", "/_sim/reset", json_object()));
    f3test_sleep_ms(50); /* a delivery of the previous test that was in flight lands first */
    f3test_receiver_reset(&env.hook, 0);
    return 0;
}

/* Creates an order in the simulator; returns its id as text (caller frees). */
static char *create_order(int quantity, const char *price, bool deliver, int duplicates)
{
    json_t *body = json_pack(
        "{s:{s:s,s:s,s:{s:s,s:s},s:{s:s,s:s,s:s,s:s},s:[{s:s,s:s,s:i,s:s},{s:s,s:n,s:i,s:s}]},"
        "s:b,s:i}",
        "order", "email", "ann@example.org", "financial_status", "pending", "customer",
        "first_name", "Ann", "last_name", "Lee", "shipping_address", "address1", "Main St 1",
        "city", "Gent", "zip", "9000", "country_code", "BE", "line_items", "title", "Vase", "sku",
        "VASE-1", "quantity", quantity, "price", price, "title", "Coaster", "sku", "quantity", 1,
        "price", "3.50", "deliver", deliver, "duplicates", duplicates);
    json_t *answer = control("POST", "/_sim/orders", body);
    json_int_t id = json_integer_value(json_object_get(json_object_get(answer, "order"), "id"));
    assert_true(id > 0);
    char *text = malloc(SHOPIFY_ID_LEN);
    snprintf(text, SHOPIFY_ID_LEN, "%lld", (long long)id);
    json_decref(answer);
    return text;
}

static shopify_client *client_with(const char *token)
{
    shopify_client_opts o = {.shop_domain = "f3connect-sim.myshopify.com",
                             .access_token = token,
                             .base_url = env.sim.base,
                             .timeout_ms = 5000};
    err e;
    shopify_client *c = shopify_client_new(&o, &e);
    if (!c)
        fail_msg("%s", e.msg);
    return c;
}

/* ---- Admin API ---------------------------------------------------------------- */

static void test_pagination_through_three_pages(void **state)
{
    (void)state;
    char *ids[7];
    for (int i = 0; i < 7; i++)
        ids[i] = create_order(1, "10.00", false, 0);
    shopify_client *c = client_with(TOKEN);
    shopify_order_query q = {.limit = 3, .created_at_min_ms = clock_now_ms() - 60000};
    char *next = NULL;
    int pages = 0, seen = 0;
    do {
        shopify_order_page page;
        shopify_call call;
        err e;
        int rc = shopify_list_orders(c, pages == 0 ? &q : NULL, next, &page, &call, &e);
        if (rc)
            fail_msg("page %d: %s", pages, e.msg);
        assert_int_equal(call.status, 200);
        assert_int_equal(call.limit_bucket, 40);
        assert_true(call.limit_used >= 1);
        assert_string_equal(call.api_version, "2025-10");
        assert_int_equal(page.count, pages < 2 ? 3 : 1);
        for (size_t i = 0; i < page.count; i++) {
            shopify_order o;
            assert_int_equal(shopify_order_from_json(json_array_get(page.orders, i), &o, &e), 0);
            assert_string_equal(o.id, ids[seen]); /* every order once, in id order */
            assert_int_equal(o.total_price_minor, 1350);
            seen++;
            shopify_order_free(&o);
        }
        free(next);
        next = page.next_url ? strdup(page.next_url) : NULL;
        if (pages < 2)
            assert_non_null(strstr(next, "page_info="));
        shopify_order_page_free(&page);
        pages++;
    } while (next && pages < 10);
    assert_int_equal(pages, 3);
    assert_int_equal(seen, 7);
    int used, bucket;
    shopify_client_call_limit(c, &used, &bucket);
    assert_int_equal(bucket, 40);
    assert_false(shopify_client_near_limit(c));
    shopify_client_free(c);
    for (int i = 0; i < 7; i++)
        free(ids[i]);
}

/* Shopify's cursor rules, seen from outside: filters go in the cursor and may not
 * be repeated next to it; a later page links back with rel="previous". */
static void test_sim_cursor_rules(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        free(create_order(1, "1.00", false, 0));
    char url[256];
    snprintf(url, sizeof url, "%s/admin/api/2025-10/orders.json?status=any&limit=2", env.sim.base);
    const char *headers[] = {"X-Shopify-Access-Token: " TOKEN, NULL};
    http_client_response rs;
    err e;
    json_t *out = NULL;
    assert_int_equal(http_client_json("GET", url, headers, NULL, 5000, &out, &rs, &e), 0);
    assert_int_equal(json_array_size(json_object_get(out, "orders")), 2);
    json_decref(out);
    buf next;
    buf_init(&next, 0);
    assert_int_equal(shopify_link_next(http_client_header(&rs, "Link"), &next), 0);
    assert_null(strstr(http_client_header(&rs, "Link"), "previous"));
    http_client_response_free(&rs);

    assert_int_equal(http_client_json("GET", buf_cstr(&next), headers, NULL, 5000, &out, &rs, &e),
                     0);
    assert_int_equal(json_array_size(json_object_get(out, "orders")), 1);
    assert_non_null(strstr(http_client_header(&rs, "Link"), "rel=\"previous\""));
    assert_null(strstr(http_client_header(&rs, "Link"), "rel=\"next\""));
    json_decref(out);
    http_client_response_free(&rs);

    buf_puts(&next, "&status=any");
    assert_int_equal(http_client_json("GET", buf_cstr(&next), headers, NULL, 5000, &out, &rs, &e),
                     F3_EPERMANENT);
    assert_int_equal(rs.status, 400);
    http_client_response_free(&rs);
    buf_free(&next);

    snprintf(url, sizeof url, "%s/admin/api/2025-10/orders.json?page_info=bm9wZQ", env.sim.base);
    assert_int_equal(http_client_json("GET", url, headers, NULL, 5000, &out, &rs, &e),
                     F3_EPERMANENT);
    assert_int_equal(rs.status, 400);
    http_client_response_free(&rs);
    snprintf(url, sizeof url, "%s/admin/api/2025-10/orders.json?limit=251", env.sim.base);
    assert_int_equal(http_client_json("GET", url, headers, NULL, 5000, &out, &rs, &e),
                     F3_EPERMANENT);
    http_client_response_free(&rs);
}

static void test_foreign_next_url_is_refused(void **state)
{
    (void)state;
    shopify_client *c = client_with(TOKEN);
    shopify_order_page page;
    err e;
    assert_int_equal(shopify_list_orders(
                         c, NULL, "https://evil.example/admin/api/2025-10/orders.json?page_info=x",
                         &page, NULL, &e),
                     F3_EINVAL);
    shopify_order_page_free(&page);
    shopify_client_free(c);
}

static void test_429_is_transient_with_retry_after(void **state)
{
    (void)state;
    char *id = create_order(1, "5.00", false, 0);
    json_decref(control("POST", "/_sim/faults",
                        json_pack("{s:s,s:i,s:i}", "kind", "429", "count", 1, "retry_after", 7)));
    shopify_client *c = client_with(TOKEN);
    shopify_order o;
    shopify_call call;
    err e;
    assert_int_equal(shopify_get_order(c, id, &o, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.status, 429);
    assert_int_equal(call.failure, HTTP_TRANSIENT);
    assert_int_equal(call.retry_after_ms, 7000);
    /* The fault is used up: the next call goes through. */
    assert_int_equal(shopify_get_order(c, id, &o, &call, &e), 0);
    assert_string_equal(o.id, id);
    assert_string_equal(o.customer_first_name, "Ann");
    shopify_order_free(&o);

    json_decref(control("POST", "/_sim/faults", json_pack("{s:s,s:i}", "kind", "502", "count", 1)));
    shopify_fulfillment_orders fos;
    assert_int_equal(shopify_get_fulfillment_orders(c, id, &fos, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.status, 502);
    shopify_fulfillment_orders_free(&fos);
    shopify_client_free(c);
    free(id);
}

static void test_timeout_is_transient(void **state)
{
    (void)state;
    char *id = create_order(1, "5.00", false, 0);
    json_decref(
        control("POST", "/_sim/faults",
                json_pack("{s:s,s:i,s:i}", "kind", "timeout", "count", 1, "delay_ms", 1500)));
    shopify_client_opts o = {.access_token = TOKEN, .base_url = env.sim.base, .timeout_ms = 300};
    err e;
    shopify_client *c = shopify_client_new(&o, &e);
    assert_non_null(c);
    shopify_order order;
    shopify_call call;
    assert_int_equal(shopify_get_order(c, id, &order, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.status, 0);
    assert_int_equal(call.failure, HTTP_TRANSIENT);
    shopify_client_free(c);
    free(id);
    f3test_sleep_ms(1300); /* let the stalled handler finish before the next test */
}

static void test_rate_limit_bucket_overflows(void **state)
{
    (void)state;
    char *id = create_order(1, "5.00", false, 0);
    shopify_client *c = client_with(TOKEN);
    int rc = 0, calls = 0;
    shopify_call call;
    err e;
    /* 40 fit in the bucket, leaking 2/s: well before 60 calls one is refused. */
    while (rc == 0 && calls < 60) {
        shopify_order o;
        rc = shopify_get_order(c, id, &o, &call, &e);
        shopify_order_free(&o);
        calls++;
        if (rc == 0 && shopify_client_near_limit(c))
            assert_true(call.limit_used >= 38);
    }
    assert_int_equal(rc, F3_ETRANSIENT);
    assert_int_equal(call.status, 429);
    assert_true(call.retry_after_ms >= 1000);
    assert_true(calls > 30);
    assert_true(shopify_client_near_limit(c));
    shopify_client_free(c);
    free(id);
}

static void test_wrong_token_is_permanent(void **state)
{
    (void)state;
    char *id = create_order(1, "5.00", false, 0);
    shopify_client *c = client_with("shpat_wrong");
    shopify_order o;
    shopify_call call;
    err e;
    assert_int_equal(shopify_get_order(c, id, &o, &call, &e), F3_EPERMANENT);
    assert_int_equal(call.status, 401);
    assert_int_equal(call.failure, HTTP_PERMANENT);
    assert_null(strstr(e.msg, "shpat_wrong"));
    shopify_client_free(c);

    c = client_with(TOKEN);
    assert_int_equal(shopify_get_order(c, "999999", &o, &call, &e), F3_ENOTFOUND);
    assert_int_equal(call.status, 404);
    assert_int_equal(shopify_get_order(c, "12a", &o, &call, &e), F3_EINVAL);
    shopify_client_free(c);
    free(id);
}

static void test_client_credentials_exchange(void **state)
{
    (void)state;
    char *id = create_order(1, "5.00", false, 0);
    shopify_client_opts o = {
        .client_id = "f3connect-sim", .client_secret = SECRET, .base_url = env.sim.base};
    err e;
    shopify_client *c = shopify_client_new(&o, &e);
    assert_non_null(c);
    shopify_order order;
    shopify_call call;
    assert_int_equal(shopify_get_order(c, id, &order, &call, &e), 0);
    shopify_order_free(&order);
    assert_int_equal(shopify_get_order(c, id, &order, &call, &e), 0); /* cached token */
    shopify_order_free(&order);
    shopify_client_free(c);

    o.client_secret = "not-the-secret";
    c = shopify_client_new(&o, &e);
    assert_int_equal(shopify_get_order(c, id, &order, &call, &e), F3_EPERMANENT);
    assert_null(strstr(e.msg, "not-the-secret"));
    shopify_client_free(c);
    free(id);
}

static void test_fulfillment_order_flow(void **state)
{
    (void)state;
    char *id = create_order(2, "12.45", false, 0);
    shopify_client *c = client_with(TOKEN);
    shopify_fulfillment_orders fos;
    shopify_call call;
    err e;
    assert_int_equal(shopify_get_fulfillment_orders(c, id, &fos, &call, &e), 0);
    assert_int_equal(fos.count, 1);
    shopify_fulfillment_order *fo = &fos.items[0];
    assert_string_equal(fo->order_id, id);
    assert_string_equal(fo->status, "open");
    assert_true(shopify_fulfillment_order_fulfillable(fo));
    assert_int_equal(fo->line_item_count, 2);
    assert_int_equal(fo->line_items[0].quantity, 2);

    /* First one of the two vases, then everything that remains. */
    shopify_fo_line_selection one = {fo->line_items[0].id, 1};
    shopify_fo_selection sel = {fo->id, &one, 1};
    shopify_fulfillment_request rq = {.orders = &sel,
                                      .order_count = 1,
                                      .tracking_number = "3SABCD0123456789",
                                      .tracking_company = "PostNL",
                                      .tracking_url = "https://tracking.example/3SABCD0123456789",
                                      .notify_customer = true};
    char ids[64];
    assert_int_equal(shopify_list_fulfillment_ids(c, id, ids, sizeof ids, &call, &e), 0);
    assert_string_equal(ids, ""); /* none yet */
    shopify_fulfillment f;
    if (shopify_create_fulfillment(c, &rq, &f, &call, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(call.status, 201);
    char first[SHOPIFY_ID_LEN];
    snprintf(first, sizeof first, "%s", f.id);
    assert_string_equal(f.order_id, id);
    assert_string_equal(f.status, "success");
    assert_string_equal(f.tracking_number, "3SABCD0123456789");
    assert_string_equal(f.tracking_company, "PostNL");
    shopify_fulfillment_free(&f);

    char fo_id[SHOPIFY_ID_LEN];
    snprintf(fo_id, sizeof fo_id, "%s", fo->id);
    shopify_fulfillment_orders_free(&fos);
    assert_int_equal(shopify_get_fulfillment_orders(c, id, &fos, &call, &e), 0);
    assert_string_equal(fos.items[0].status, "in_progress");
    assert_int_equal(fos.items[0].line_items[0].fulfillable_quantity, 1);
    shopify_fulfillment_orders_free(&fos);

    sel = (shopify_fo_selection){fo_id, NULL, 0};
    rq.tracking_url = NULL;
    assert_int_equal(shopify_create_fulfillment(c, &rq, &f, &call, &e), 0);
    char both[2 * SHOPIFY_ID_LEN + 2];
    snprintf(both, sizeof both, "%s,%s", first, f.id);
    shopify_fulfillment_free(&f);
    /* Both read back, in order; a buffer too small for them is an error, not a cut list. */
    assert_int_equal(shopify_list_fulfillment_ids(c, id, ids, sizeof ids, &call, &e), 0);
    assert_string_equal(ids, both);
    assert_int_equal(shopify_list_fulfillment_ids(c, id, ids, strlen(first) + 2, &call, &e),
                     F3_EINVAL);
    assert_int_equal(shopify_list_fulfillment_ids(c, "12ab", ids, sizeof ids, &call, &e),
                     F3_EINVAL);
    assert_int_equal(shopify_list_fulfillment_ids(c, "999999999", ids, sizeof ids, &call, &e),
                     F3_ENOTFOUND);
    assert_int_equal(shopify_get_fulfillment_orders(c, id, &fos, &call, &e), 0);
    assert_string_equal(fos.items[0].status, "closed");
    assert_false(shopify_fulfillment_order_fulfillable(&fos.items[0]));
    shopify_fulfillment_orders_free(&fos);
    shopify_order o;
    assert_int_equal(shopify_get_order(c, id, &o, &call, &e), 0);
    assert_string_equal(o.fulfillment_status, "fulfilled");
    shopify_order_free(&o);

    /* A closed fulfillment order cannot be fulfilled again: 422, permanent. */
    assert_int_equal(shopify_create_fulfillment(c, &rq, &f, &call, &e), F3_EPERMANENT);
    assert_int_equal(call.status, 422);
    /* Bad requests never leave the client. */
    sel.fulfillment_order_id = "abc";
    assert_int_equal(shopify_create_fulfillment(c, &rq, &f, &call, &e), F3_EINVAL);
    shopify_client_free(c);
    free(id);
}

/* ---- webhooks --------------------------------------------------------------- */

static void test_webhook_is_signed_and_verifies(void **state)
{
    (void)state;
    char *id = create_order(1, "7.00", true, 0);
    assert_int_equal(f3test_receiver_wait(&env.hook, 1, 10000), 1);
    received r = got[0];
    assert_int_equal(r.verify_rc, 0);
    assert_int_equal(r.headers_rc, 0);
    assert_int_equal(r.order_rc, 0);
    assert_string_equal(r.topic, "orders/create");
    assert_string_equal(r.shop, "f3connect-sim.myshopify.com");
    assert_string_equal(r.order_id, id);
    assert_int_equal(r.status, 200);
    assert_true(strlen(r.event_id) > 0 && strcmp(r.event_id, r.webhook_id) != 0);

    /* An event on demand: paid, delivered with its own event id. */
    char path[96];
    snprintf(path, sizeof path, "/_sim/orders/%s/events", id);
    json_decref(control("POST", path, json_pack("{s:s}", "topic", "orders/paid")));
    assert_int_equal(f3test_receiver_wait(&env.hook, 2, 10000), 2);
    assert_string_equal(got[1].topic, "orders/paid");
    assert_int_equal(got[1].verify_rc, 0);
    assert_string_not_equal(got[1].event_id, r.event_id);

    /* Cancelled: the body carries cancelled_at, and the fulfillment order closes for good. */
    json_decref(control("POST", path,
                        json_pack("{s:s,s:s}", "topic", "orders/cancelled", "reason", "fraud")));
    assert_int_equal(f3test_receiver_wait(&env.hook, 3, 10000), 3);
    assert_string_equal(got[2].topic, "orders/cancelled");
    assert_int_equal(got[2].order_rc, 0);
    shopify_client *c = client_with(TOKEN);
    shopify_order o;
    err e;
    assert_int_equal(shopify_get_order(c, id, &o, NULL, &e), 0);
    assert_true(o.cancelled_at_ms > 0);
    assert_string_equal(o.cancel_reason, "fraud");
    assert_string_equal(o.financial_status, "paid");
    shopify_order_free(&o);
    shopify_fulfillment_orders fos;
    assert_int_equal(shopify_get_fulfillment_orders(c, id, &fos, NULL, &e), 0);
    assert_string_equal(fos.items[0].status, "cancelled");
    assert_false(shopify_fulfillment_order_fulfillable(&fos.items[0]));
    shopify_fulfillment_orders_free(&fos);
    shopify_client_free(c);
    free(id);
}

static void test_webhook_retried_after_500(void **state)
{
    (void)state;
    f3test_receiver_reset(&env.hook, 2);
    char *id = create_order(1, "7.00", true, 0);
    assert_int_equal(f3test_receiver_wait(&env.hook, 3, 10000), 3);
    assert_int_equal(got[0].status, 500);
    assert_int_equal(got[1].status, 500);
    assert_int_equal(got[2].status, 200);
    for (int i = 1; i < 3; i++) {
        assert_string_equal(got[i].event_id, got[0].event_id);
        assert_string_equal(got[i].webhook_id, got[0].webhook_id);
        assert_int_equal(got[i].verify_rc, 0);
    }
    json_t *doc = NULL;
    for (int i = 0; i < 100; i++) { /* the sim records the last answer just after sending */
        doc = control("GET", "/_sim/deliveries", NULL);
        json_t *first = json_array_get(json_object_get(doc, "deliveries"), 0);
        if (str_eq(json_string_value(json_object_get(first, "state")), "delivered"))
            break;
        json_decref(doc);
        doc = NULL;
        f3test_sleep_ms(20);
    }
    json_t *log = json_object_get(doc, "deliveries");
    assert_non_null(log);
    json_t *d = json_array_get(log, 0);
    assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 3);
    json_t *responses = json_object_get(d, "responses");
    assert_int_equal(json_integer_value(json_array_get(responses, 0)), 500);
    assert_int_equal(json_integer_value(json_array_get(responses, 2)), 200);
    json_decref(doc);
    free(id);
}

static void test_webhook_gives_up_after_max_retries(void **state)
{
    (void)state;
    f3test_receiver_reset(&env.hook, 100);
    char *id = create_order(1, "7.00", true, 0);
    assert_int_equal(f3test_receiver_wait(&env.hook, 4, 10000), 4); /* first attempt + 3 retries */
    json_t *log = NULL;
    for (int i = 0; i < 100; i++) {
        json_t *doc = control("GET", "/_sim/deliveries", NULL);
        const char *st = json_string_value(
            json_object_get(json_array_get(json_object_get(doc, "deliveries"), 0), "state"));
        if (str_eq(st, "failed")) {
            log = doc;
            break;
        }
        json_decref(doc);
        f3test_sleep_ms(20);
    }
    assert_non_null(log);
    json_decref(log);
    f3test_sleep_ms(500); /* no fifth attempt */
    assert_int_equal(f3test_receiver_wait(&env.hook, 0, 10000), 4);
    free(id);
}

static void test_duplicates_share_the_event_id(void **state)
{
    (void)state;
    char *id = create_order(1, "7.00", true, 2);
    assert_int_equal(f3test_receiver_wait(&env.hook, 3, 10000), 3);
    f3test_sleep_ms(200);
    assert_int_equal(f3test_receiver_wait(&env.hook, 0, 10000), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(got[i].verify_rc, 0);
        assert_string_equal(got[i].topic, "orders/create");
        assert_string_equal(got[i].event_id, got[0].event_id);
        assert_string_equal(got[i].order_id, id);
    }
    /* Each delivery has its own webhook id; the event id is the dedupe key. */
    assert_string_not_equal(got[0].webhook_id, got[1].webhook_id);
    assert_string_not_equal(got[1].webhook_id, got[2].webhook_id);
    free(id);
}

/* ---- in-process (as the sandbox runs it) -------------------------------------- */

static void test_in_process_start_and_stop_with_pending_deliveries(void **state)
{
    (void)state;
    char hook[64];
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/nobody-listens", f3test_free_port());
    shopify_sim_opts o = {.secret = SECRET, .token = TOKEN, .webhook_url = hook};
    err e;
    shopify_sim *sim = shopify_sim_start(&o, &e);
    if (!sim)
        fail_msg("%s", e.msg);
    assert_true(shopify_sim_port(sim) > 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_sim/orders", shopify_sim_port(sim));
    json_t *out = NULL;
    http_client_response rs;
    json_t *body = json_pack("{s:[{s:i,s:s}]}", "line_items", "quantity", 1, "price", "2.00");
    assert_int_equal(http_client_json("POST", url, NULL, body, 5000, &out, &rs, &e), 0);
    assert_int_equal(rs.status, 201);
    json_decref(body);
    json_decref(out);
    http_client_response_free(&rs);
    f3test_sleep_ms(100); /* the first attempt fails; a retry is a minute away */
    shopify_sim_stop(sim);

    o.token = NULL;
    assert_null(shopify_sim_start(&o, &e));
    assert_int_equal(e.code, F3_EINVAL);
}

/* ---- the CLI ------------------------------------------------------------------- */

static void expect_misuse(const char *const *argv, const char *needle)
{
    f3test_proc p = {0};
    const char *envp[] = {NULL};
    int status = f3test_run(env.sim.dir, argv, envp, 20000, &p);
    char *text = f3test_slurp(p.err_path);
    if (status != 2 || !strstr(text, needle))
        fail_msg("exit %d, stderr '%s' (expected 2 and '%s')", status, text, needle);
    free(text);
}

static void test_cli_misuse(void **state)
{
    (void)state;
    expect_misuse((const char *[]){"sim", NULL}, "which simulator");
    expect_misuse((const char *[]){"sim", "nosuch", "--secret", "s", "--token", "t", NULL},
                  "which simulator");
    expect_misuse((const char *[]){"sim", "shopify", "--token", "t", NULL}, "--secret");
    expect_misuse((const char *[]){"sim", "shopify", "--secret", "s", "--token", "t", "--port",
                                   "70000", NULL},
                  "--port");
    expect_misuse((const char *[]){"sim", "shopify", "--secret", "s", "--token", "t",
                                   "--retry-base-ms", "soon", NULL},
                  "--retry-base-ms");
}

int main(void)
{
    if (sodium_init() < 0 || http_client_init() != 0)
        return 1;
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_pagination_through_three_pages, test_setup),
        cmocka_unit_test_setup(test_sim_cursor_rules, test_setup),
        cmocka_unit_test_setup(test_foreign_next_url_is_refused, test_setup),
        cmocka_unit_test_setup(test_429_is_transient_with_retry_after, test_setup),
        cmocka_unit_test_setup(test_timeout_is_transient, test_setup),
        cmocka_unit_test_setup(test_wrong_token_is_permanent, test_setup),
        cmocka_unit_test_setup(test_client_credentials_exchange, test_setup),
        cmocka_unit_test_setup(test_fulfillment_order_flow, test_setup),
        cmocka_unit_test_setup(test_rate_limit_bucket_overflows, test_setup),
        cmocka_unit_test_setup(test_webhook_is_signed_and_verifies, test_setup),
        cmocka_unit_test_setup(test_webhook_retried_after_500, test_setup),
        cmocka_unit_test_setup(test_webhook_gives_up_after_max_retries, test_setup),
        cmocka_unit_test_setup(test_duplicates_share_the_event_id, test_setup),
        cmocka_unit_test(test_in_process_start_and_stop_with_pending_deliveries),
        cmocka_unit_test(test_cli_misuse),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    http_client_cleanup();
    return rc;
}
