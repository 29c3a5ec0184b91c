/*
 * admin.c - the simulated Shopify Admin REST API: orders (with cursor
 * pagination), one order, fulfillment orders, creating fulfillments, and the
 * client-credentials token exchange.
 *
 * Every Admin API request passes one gate, in Shopify's order: injected faults,
 * the access token (401), the API version in the path (404), the leaky bucket
 * (429 + Retry-After); answers carry X-Shopify-Shop-Api-Call-Limit and
 * X-Shopify-API-Version. Errors use Shopify's {"errors": ...} body.
 */
#include "sim/shopify/sim_internal.h"

#include "core/buf.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/str.h"
#include "integrations/shopify/webhook.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_DEFAULT 50
#define PAGE_MAX     250

/* The leaky bucket (spec §1.3): leaks leak_per_s requests per second; a request
 * that would overflow it is refused. Returns the level after this request, or
 * -1 when refused. Lock held. */
static int bucket_take(shopify_sim *s)
{
    int64_t now = clock_mono_ms();
    s->bucket_level -= (double)(now - s->bucket_ms) * s->leak_per_s / 1000.0;
    if (s->bucket_level < 0)
        s->bucket_level = 0;
    s->bucket_ms = now;
    if (s->bucket_level + 1 > s->bucket_size)
        return -1;
    s->bucket_level += 1;
    return (int)ceil(s->bucket_level);
}

/* The gate in front of every Admin API route. Returns true when the request may
 * proceed; otherwise res holds the answer. */
static bool admin_gate(shopify_sim *s, http_request *req, http_response *res)
{
    sim_fault f;
    pthread_mutex_lock(&s->lock);
    bool faulty = sim_fault_take(&s->fault, http_req_path(req), &f);
    pthread_mutex_unlock(&s->lock);
    if (faulty && sim_fault_act(&f, res)) {
        sim_errors(res, f.status,
                   f.status == 429   ? "Exceeded 2 calls per second for api client. Reduce request "
                                       "rates to resume uninterrupted service."
                   : f.status >= 500 ? "Internal Server Error"
                                     : "Injected failure: the request cannot be processed");
        return false;
    }
    if (!crypto_str_equal(http_req_header(req, "X-Shopify-Access-Token"), s->token)) {
        sim_errors(res, 401,
                   "[API] Invalid API key or access token (unrecognized login or wrong password)");
        return false;
    }
    const char *version = http_req_param(req, "version");
    if (!shopify_api_version_valid(version)) {
        sim_errors(res, 404, "Not Found");
        return false;
    }
    pthread_mutex_lock(&s->lock);
    int level = bucket_take(s);
    pthread_mutex_unlock(&s->lock);
    char limit[32];
    snprintf(limit, sizeof limit, "%d/%d", level < 0 ? s->bucket_size : level, s->bucket_size);
    http_res_header(res, "X-Shopify-Shop-Api-Call-Limit", limit);
    http_res_header(res, "X-Shopify-API-Version", version);
    if (level < 0) {
        http_res_header(res, "Retry-After", "1");
        sim_errors(res, 429,
                   "Exceeded 2 calls per second for api client. Reduce request rates to resume "
                   "uninterrupted service.");
        return false;
    }
    return true;
}

/* Builds the answer after the gate, which already set headers: the builders
 * keep headers, so the gate's headers survive. */

/* ---- orders ------------------------------------------------------------- */

/* A listing's filters, also what a page_info cursor carries. */
typedef struct order_filter {
    char status[12];
    int64_t created_min_ms, updated_min_ms; /* 0 = none */
    int64_t after_id;                       /* next pages: ids above; 0 = none */
    int64_t before_id;                      /* previous pages: ids below; 0 = none */
    int limit;
} order_filter;

static bool order_matches(const json_t *o, const order_filter *f)
{
    bool cancelled = !json_is_null(json_object_get(o, "cancelled_at"));
    bool closed = !json_is_null(json_object_get(o, "closed_at"));
    if ((str_eq(f->status, "open") && (cancelled || closed)) ||
        (str_eq(f->status, "cancelled") && !cancelled) || (str_eq(f->status, "closed") && !closed))
        return false;
    int64_t t = 0;
    if (f->created_min_ms &&
        (clock_parse_iso(json_string_value(json_object_get(o, "created_at")), &t) ||
         t < f->created_min_ms))
        return false;
    if (f->updated_min_ms &&
        (clock_parse_iso(json_string_value(json_object_get(o, "updated_at")), &t) ||
         t < f->updated_min_ms))
        return false;
    int64_t id = json_integer_value(json_object_get(o, "id"));
    return id > f->after_id && (f->before_id == 0 || id < f->before_id);
}

/* page_info = base64url("status|created|updated|after|before|limit"). */
static int cursor_encode(const order_filter *f, buf *out)
{
    char text[160];
    int n = snprintf(text, sizeof text, "%s|%" PRId64 "|%" PRId64 "|%" PRId64 "|%" PRId64 "|%d",
                     f->status, f->created_min_ms, f->updated_min_ms, f->after_id, f->before_id,
                     f->limit);
    return crypto_base64_encode(text, (size_t)n, true, out);
}

static int cursor_decode(const char *page_info, order_filter *f)
{
    buf raw;
    buf_init(&raw, 256);
    err e;
    int rc = -1;
    memset(f, 0, sizeof *f);
    if (strlen(page_info) > 300 || crypto_base64_decode(page_info, strlen(page_info), &raw, &e))
        goto out;
    if (!raw.data)
        goto out;
    char *fields[6], *save = NULL;
    int n = 0;
    for (char *t = strtok_r(raw.data, "|", &save); t && n < 6; t = strtok_r(NULL, "|", &save))
        fields[n++] = t;
    int64_t limit = 0;
    if (n != 6 || strlen(fields[0]) >= sizeof f->status ||
        str_to_int64(fields[1], &f->created_min_ms) ||
        str_to_int64(fields[2], &f->updated_min_ms) || str_to_int64(fields[3], &f->after_id) ||
        str_to_int64(fields[4], &f->before_id) || str_to_int64(fields[5], &limit) || limit < 1 ||
        limit > PAGE_MAX)
        goto out;
    snprintf(f->status, sizeof f->status, "%s", fields[0]);
    f->limit = (int)limit;
    rc = 0;
out:
    buf_free(&raw);
    return rc;
}

static int parse_time_param(http_request *req, const char *name, int64_t *out)
{
    const char *v = http_req_query_param(req, name);
    *out = 0;
    return v && clock_parse_iso(v, out) ? -1 : 0;
}

/* Reads the first page's filters from the query. */
static const char *first_page_filter(http_request *req, order_filter *f)
{
    memset(f, 0, sizeof *f);
    const char *status = http_req_query_param(req, "status");
    const char *limit = http_req_query_param(req, "limit");
    const char *since = http_req_query_param(req, "since_id");
    int64_t n = PAGE_DEFAULT;
    snprintf(f->status, sizeof f->status, "%s", status ? status : "open");
    if (!str_eq(f->status, "open") && !str_eq(f->status, "closed") &&
        !str_eq(f->status, "cancelled") && !str_eq(f->status, "any"))
        return "status must be open, closed, cancelled or any";
    if (limit && (str_to_int64(limit, &n) || n < 1 || n > PAGE_MAX))
        return "limit must be between 1 and 250";
    f->limit = (int)n;
    if (since && (str_to_int64(since, &f->after_id) || f->after_id < 0))
        return "since_id must be an id";
    if (parse_time_param(req, "created_at_min", &f->created_min_ms) ||
        parse_time_param(req, "updated_at_min", &f->updated_min_ms))
        return "created_at_min and updated_at_min must be ISO-8601 times";
    return NULL;
}

/* Adds the Link header for the neighbours of a page. */
static void add_link(http_request *req, http_response *res, const order_filter *f, int64_t first_id,
                     int64_t last_id, bool has_next, bool has_prev)
{
    const char *host = http_req_header(req, "Host");
    const char *version = http_req_param(req, "version");
    buf link, cur;
    buf_init(&link, 4096);
    buf_init(&cur, 512);
    order_filter n = *f;
    if (has_prev) {
        n.after_id = 0;
        n.before_id = first_id;
        cursor_encode(&n, &cur);
        buf_printf(&link,
                   "<http://%s/admin/api/%s/orders.json?limit=%d&page_info=%s>; "
                   "rel=\"previous\"",
                   host ? host : "localhost", version, f->limit, buf_cstr(&cur));
    }
    if (has_next) {
        buf_reset(&cur);
        n.after_id = last_id;
        n.before_id = 0;
        cursor_encode(&n, &cur);
        buf_printf(
            &link, "%s<http://%s/admin/api/%s/orders.json?limit=%d&page_info=%s>; rel=\"next\"",
            has_prev ? ", " : "", host ? host : "localhost", version, f->limit, buf_cstr(&cur));
    }
    if (link.len)
        http_res_header(res, "Link", buf_cstr(&link));
    buf_free(&link);
    buf_free(&cur);
}

/* GET /admin/api/:version/orders.json */
static int h_list_orders(http_request *req, http_response *res, void *ctx)
{
    shopify_sim *s = ctx;
    if (!admin_gate(s, req, res))
        return 0;
    order_filter f;
    const char *page_info = http_req_query_param(req, "page_info");
    if (page_info) {
        /* Filters are baked into the cursor; Shopify refuses them next to it. */
        static const char *const baked[] = {"status", "created_at_min", "updated_at_min",
                                            "since_id"};
        for (size_t i = 0; i < sizeof baked / sizeof baked[0]; i++)
            if (http_req_query_param(req, baked[i]))
                return sim_errors(res, 400, "page_info cannot be combined with other filters");
        if (cursor_decode(page_info, &f))
            return sim_errors(res, 400, "Invalid page_info");
        const char *limit = http_req_query_param(req, "limit");
        int64_t n;
        if (limit && (str_to_int64(limit, &n) || n < 1 || n > PAGE_MAX))
            return sim_errors(res, 400, "limit must be between 1 and 250");
        if (limit)
            f.limit = (int)n;
    } else {
        const char *why = first_page_filter(req, &f);
        if (why)
            return sim_errors(res, 400, why);
    }
    json_t *page = json_array();
    size_t matched = 0, skipped = 0;
    pthread_mutex_lock(&s->lock);
    size_t i;
    json_t *o;
    /* Count the matches first: a previous page is the last `limit` before the cursor. */
    json_array_foreach(s->orders, i, o)
    {
        if (order_matches(o, &f))
            matched++;
    }
    size_t skip = f.before_id && matched > (size_t)f.limit ? matched - (size_t)f.limit : 0;
    json_array_foreach(s->orders, i, o)
    {
        if (!order_matches(o, &f))
            continue;
        if (skipped < skip) {
            skipped++;
            continue;
        }
        if (json_array_size(page) == (size_t)f.limit)
            break;
        json_array_append(page, o);
    }
    int64_t first = 0, last = 0;
    bool has_next = false, has_prev = false;
    size_t n = json_array_size(page);
    if (n) {
        first = json_integer_value(json_object_get(json_array_get(page, 0), "id"));
        last = json_integer_value(json_object_get(json_array_get(page, n - 1), "id"));
        order_filter probe = f;
        probe.before_id = 0;
        probe.after_id = last;
        json_array_foreach(s->orders, i, o)
        {
            if (order_matches(o, &probe))
                has_next = true;
        }
        has_prev = f.after_id != 0 && page_info != NULL;
        if (f.before_id)
            has_prev = skip > 0;
    }
    json_t *answer = json_deep_copy(page);
    pthread_mutex_unlock(&s->lock);
    json_decref(page);
    add_link(req, res, &f, first, last, has_next, has_prev);
    return http_res_json(res, 200, json_pack("{s:o}", "orders", answer));
}

/* ":id" segments arrive as "123.json" (or "123"). */
static bool read_order_id(const char *param, bool with_json, int64_t *id)
{
    char text[32];
    if (!param || strlen(param) >= sizeof text)
        return false;
    snprintf(text, sizeof text, "%s", param);
    if (with_json) {
        if (!str_ends_with(text, ".json"))
            return false;
        text[strlen(text) - 5] = '\0';
    }
    return str_to_int64(text, id) == 0 && *id > 0;
}

/* GET /admin/api/:version/orders/:id (":id" is "123.json") */
static int h_get_order(http_request *req, http_response *res, void *ctx)
{
    shopify_sim *s = ctx;
    if (!admin_gate(s, req, res))
        return 0;
    int64_t id;
    if (!read_order_id(http_req_param(req, "id"), true, &id))
        return sim_errors(res, 404, "Not Found");
    pthread_mutex_lock(&s->lock);
    json_t *o = sim_find_order(s, id);
    json_t *copy = o ? json_deep_copy(o) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!copy)
        return sim_errors(res, 404, "Not Found");
    return http_res_json(res, 200, json_pack("{s:o}", "order", copy));
}

/* GET /admin/api/:version/orders/:id/fulfillment_orders.json */
static int h_fulfillment_orders(http_request *req, http_response *res, void *ctx)
{
    shopify_sim *s = ctx;
    if (!admin_gate(s, req, res))
        return 0;
    int64_t id;
    if (!read_order_id(http_req_param(req, "id"), false, &id))
        return sim_errors(res, 404, "Not Found");
    char key[24];
    snprintf(key, sizeof key, "%" PRId64, id);
    pthread_mutex_lock(&s->lock);
    json_t *list = sim_find_order(s, id) ? json_object_get(s->fulfillment_orders, key) : NULL;
    json_t *copy = list ? json_deep_copy(list) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!copy)
        return sim_errors(res, 404, "Not Found");
    return http_res_json(res, 200, json_pack("{s:o}", "fulfillment_orders", copy));
}

/* ---- fulfillments -------------------------------------------------------- */

/* Finds a fulfillment order by id over all orders; *order_key gets its order. Lock held. */
static json_t *find_fo(shopify_sim *s, int64_t id, const char **order_key)
{
    const char *key;
    json_t *list;
    json_object_foreach(s->fulfillment_orders, key, list)
    {
        size_t i;
        json_t *fo;
        json_array_foreach(list, i, fo)
        {
            if (json_integer_value(json_object_get(fo, "id")) == id) {
                *order_key = key;
                return fo;
            }
        }
    }
    return NULL;
}

static json_t *fo_line(json_t *fo, int64_t id)
{
    size_t i;
    json_t *li;
    json_array_foreach(json_object_get(fo, "line_items"), i, li)
    {
        if (json_integer_value(json_object_get(li, "id")) == id)
            return li;
    }
    return NULL;
}

/* A planned change: take qty from a fulfillment-order line. */
typedef struct take {
    json_t *fo, *line;
    json_int_t qty;
} take;

#define TAKES_MAX 256

/* Checks one line_items_by_fulfillment_order entry and plans its takes.
 * NULL when fine, else the 4xx message (and *status). Lock held. */
static const char *plan_entry(shopify_sim *s, const json_t *entry, const char **order_key,
                              take *takes, size_t *ntakes, int *status)
{
    *status = 422;
    json_t *fo_id = json_object_get(entry, "fulfillment_order_id");
    const char *key = NULL;
    json_t *fo = json_is_integer(fo_id) ? find_fo(s, json_integer_value(fo_id), &key) : NULL;
    if (!fo) {
        *status = 404;
        return "Fulfillment order not found";
    }
    if (*order_key && strcmp(*order_key, key) != 0)
        return "All fulfillment orders must belong to the same order";
    *order_key = key;
    const char *st = json_string_value(json_object_get(fo, "status"));
    if (!str_eq(st, "open") && !str_eq(st, "in_progress"))
        return "Fulfillment order has an unfulfillable status";
    json_t *wanted = json_object_get(entry, "fulfillment_order_line_items");
    size_t i;
    json_t *li;
    if (!wanted) { /* everything that remains */
        json_array_foreach(json_object_get(fo, "line_items"), i, li)
        {
            json_int_t q = json_integer_value(json_object_get(li, "fulfillable_quantity"));
            if (q > 0 && *ntakes < TAKES_MAX)
                takes[(*ntakes)++] = (take){fo, li, q};
        }
        return NULL;
    }
    if (!json_is_array(wanted))
        return "fulfillment_order_line_items must be an array";
    json_array_foreach(wanted, i, li)
    {
        json_t *id = json_object_get(li, "id"), *qty = json_object_get(li, "quantity");
        json_t *line = json_is_integer(id) ? fo_line(fo, json_integer_value(id)) : NULL;
        if (!line || !json_is_integer(qty) || json_integer_value(qty) < 1 || *ntakes >= TAKES_MAX)
            return "Invalid fulfillment order line item";
        if (json_integer_value(qty) >
            json_integer_value(json_object_get(line, "fulfillable_quantity")))
            return "Quantity exceeds the fulfillable quantity";
        takes[(*ntakes)++] = (take){fo, line, json_integer_value(qty)};
    }
    return NULL;
}

/* Applies planned takes to fulfillment orders and the order; returns the
 * fulfillment's line items. Lock held. */
static json_t *apply_takes(shopify_sim *s, json_t *order, take *takes, size_t n)
{
    json_t *lines = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *fl = takes[i].line;
        json_int_t left =
            json_integer_value(json_object_get(fl, "fulfillable_quantity")) - takes[i].qty;
        json_object_set_new(fl, "fulfillable_quantity", json_integer(left));
        json_t *oli = NULL, *li;
        size_t k;
        json_array_foreach(json_object_get(order, "line_items"), k, li)
        {
            if (json_equal(json_object_get(li, "id"), json_object_get(fl, "line_item_id")))
                oli = li;
        }
        if (oli) {
            json_int_t ol =
                json_integer_value(json_object_get(oli, "fulfillable_quantity")) - takes[i].qty;
            json_object_set_new(oli, "fulfillable_quantity", json_integer(ol < 0 ? 0 : ol));
            json_object_set_new(oli, "fulfillment_status",
                                json_string(ol <= 0 ? "fulfilled" : "partial"));
            json_array_append_new(lines,
                                  json_pack("{s:O,s:O,s:O,s:I}", "id", json_object_get(oli, "id"),
                                            "title", json_object_get(oli, "title"), "sku",
                                            json_object_get(oli, "sku"), "quantity", takes[i].qty));
        }
    }
    /* Statuses follow what remains. */
    for (size_t i = 0; i < n; i++) {
        json_int_t remaining = 0;
        size_t k;
        json_t *li;
        json_array_foreach(json_object_get(takes[i].fo, "line_items"), k, li)
        {
            remaining += json_integer_value(json_object_get(li, "fulfillable_quantity"));
        }
        json_object_set_new(takes[i].fo, "status",
                            json_string(remaining ? "in_progress" : "closed"));
        if (!remaining)
            json_object_set_new(takes[i].fo, "supported_actions", json_array());
    }
    json_int_t order_left = 0;
    size_t k;
    json_t *li;
    json_array_foreach(json_object_get(order, "line_items"), k, li)
    {
        if (json_is_true(json_object_get(li, "requires_shipping")))
            order_left += json_integer_value(json_object_get(li, "fulfillable_quantity"));
    }
    json_object_set_new(order, "fulfillment_status",
                        json_string(order_left ? "partial" : "fulfilled"));
    sim_touch(order);
    (void)s;
    return lines;
}

static json_t *make_fulfillment(shopify_sim *s, const json_t *order, const json_t *tracking,
                                bool notify, json_t *lines)
{
    char iso[CLOCK_ISO_LEN];
    clock_now_iso(iso);
    json_t *number = json_object_get(tracking, "number");
    json_t *url = json_object_get(tracking, "url");
    return json_pack(
        "{s:I,s:O,s:s,s:s,s:s,s:O,s:O,s:[O],s:O,s:[O],s:b,s:o}", "id", (json_int_t)sim_new_id(s),
        "order_id", json_object_get(order, "id"), "status", "success", "created_at", iso, "service",
        "manual", "tracking_company",
        json_object_get(tracking, "company") ? json_object_get(tracking, "company") : json_null(),
        "tracking_number", number ? number : json_null(), "tracking_numbers",
        number ? number : json_null(), "tracking_url", url ? url : json_null(), "tracking_urls",
        url ? url : json_null(), "notify_customer", notify, "line_items", lines);
}

/* POST /admin/api/:version/fulfillments.json */
static int h_create_fulfillment(http_request *req, http_response *res, void *ctx)
{
    shopify_sim *s = ctx;
    if (!admin_gate(s, req, res))
        return 0;
    size_t len = 0;
    const char *text = http_req_body(req, &len);
    json_t *body = NULL, *f = NULL, *entries = NULL, *tracking = NULL;
    err e;
    bool notify = false;
    if (json_parse(text, len, &body, &e) || json_get_object(body, "fulfillment", &f, &e) ||
        json_get_array(f, "line_items_by_fulfillment_order", &entries, &e) ||
        json_array_size(entries) == 0 || json_opt_object(f, "tracking_info", &tracking, NULL, &e) ||
        json_opt_bool(f, "notify_customer", &notify, false, &e)) {
        json_decref(body);
        return http_res_json(res, 400,
                             json_pack("{s:{s:[s]}}", "errors", "fulfillment",
                                       "Required parameter missing or invalid"));
    }
    take *takes = calloc(TAKES_MAX, sizeof *takes);
    if (!takes) {
        json_decref(body);
        return F3_ENOMEM;
    }
    size_t ntakes = 0, i;
    const char *order_key = NULL, *why = NULL;
    int status = 422;
    json_t *entry, *created = NULL, *order = NULL;
    pthread_mutex_lock(&s->lock);
    json_array_foreach(entries, i, entry)
    {
        if (!why)
            why = plan_entry(s, entry, &order_key, takes, &ntakes, &status);
    }
    int64_t oid = 0;
    if (!why && ntakes == 0)
        why = "Nothing left to fulfil";
    if (!why && (str_to_int64(order_key, &oid) || !(order = sim_find_order(s, oid))))
        why = "Order not found";
    if (!why) {
        json_t *lines = apply_takes(s, order, takes, ntakes);
        created = make_fulfillment(s, order, tracking, notify, lines);
        json_array_append(s->fulfillments, created);
        if (str_eq(json_string_value(json_object_get(order, "fulfillment_status")), "fulfilled"))
            sim_deliver_event(s, "orders/fulfilled", order, 0, NULL);
    }
    pthread_mutex_unlock(&s->lock);
    free(takes);
    json_decref(body);
    if (why)
        return http_res_json(res, status, json_pack("{s:[s]}", "errors", why));
    return http_res_json(res, 201, json_pack("{s:o}", "fulfillment", created));
}

/* GET /admin/api/:version/orders/:id/fulfillments.json: the order's fulfillments. */
static int h_order_fulfillments(http_request *req, http_response *res, void *ctx)
{
    shopify_sim *s = ctx;
    if (!admin_gate(s, req, res))
        return 0;
    int64_t id = 0;
    if (!read_order_id(http_req_param(req, "id"), false, &id))
        return sim_errors(res, 404, "Not Found");
    pthread_mutex_lock(&s->lock);
    json_t *list = sim_find_order(s, id) ? sim_fulfillments_of(s, id) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!list)
        return sim_errors(res, 404, "Not Found");
    return http_res_json(res, 200, json_pack("{s:o}", "fulfillments", list));
}

/* ---- client-credentials grant -------------------------------------------- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one application/x-www-form-urlencoded value in place. */
static bool form_decode(char *v)
{
    char *w = v;
    for (char *r = v; *r; r++) {
        if (*r == '+') {
            *w++ = ' ';
        } else if (*r == '%') {
            int hi = hex_digit(r[1]), lo = hi < 0 ? -1 : hex_digit(r[2]);
            if (lo < 0 || (hi | lo) == 0)
                return false;
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return true;
}

/* POST /admin/oauth/access_token (form): grant_type=client_credentials,
 * client_id, client_secret -> {"access_token","scope","expires_in"}. */
static int h_access_token(http_request *req, http_response *res, void *ctx)
{
    shopify_sim *s = ctx;
    size_t len = 0;
    const char *body = http_req_body(req, &len);
    char *form = str_ndup(body, len);
    if (!form)
        return F3_ENOMEM;
    const char *grant = NULL, *id = NULL, *secret = NULL;
    bool ok = true;
    for (char *save = NULL, *pair = strtok_r(form, "&", &save); pair;
         pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        if (!eq) {
            ok = false;
            break;
        }
        *eq = '\0';
        ok = ok && form_decode(eq + 1);
        if (strcmp(pair, "grant_type") == 0)
            grant = eq + 1;
        else if (strcmp(pair, "client_id") == 0)
            id = eq + 1;
        else if (strcmp(pair, "client_secret") == 0)
            secret = eq + 1;
    }
    int rc;
    if (!ok || !str_eq(grant, "client_credentials"))
        rc = http_res_json(res, 400,
                           json_pack("{s:s,s:s}", "error", "unsupported_grant_type",
                                     "error_description", "grant_type must be client_credentials"));
    else if (!str_eq(id, s->client_id) || !crypto_str_equal(secret, s->secret))
        rc = http_res_json(res, 400,
                           json_pack("{s:s,s:s}", "error", "invalid_client", "error_description",
                                     "Client credentials are invalid"));
    else
        rc = http_res_json(res, 200,
                           json_pack("{s:s,s:s,s:i}", "access_token", s->token, "scope",
                                     "read_orders,read_merchant_managed_fulfillment_orders,"
                                     "write_merchant_managed_fulfillment_orders",
                                     "expires_in", 86399));
    if (form)
        crypto_wipe(form, len);
    free(form);
    return rc;
}

int sim_admin_add_routes(shopify_sim *s, err *e)
{
    const http_route routes[] = {
        {"GET", "/admin/api/:version/orders.json", h_list_orders, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/admin/api/:version/orders/:id", h_get_order, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/admin/api/:version/orders/:id/fulfillment_orders.json", h_fulfillment_orders, s,
         HTTP_ACCESS_PUBLIC},
        {"GET", "/admin/api/:version/orders/:id/fulfillments.json", h_order_fulfillments, s,
         HTTP_ACCESS_PUBLIC},
        {"POST", "/admin/api/:version/fulfillments.json", h_create_fulfillment, s,
         HTTP_ACCESS_PUBLIC},
        {"POST", "/admin/oauth/access_token", h_access_token, s, HTTP_ACCESS_PUBLIC},
    };
    return http_router_add(s->srv.router, routes, sizeof routes / sizeof routes[0], e);
}
