/*
 * client.c - Shopify Admin REST API calls over the shared HTTP client.
 *
 * Builds URLs, adds the access token (exchanging client credentials for one when
 * configured), reads the rate-limit and pagination headers, and turns answers
 * into the structs of order.h and fulfillment.h. It never retries or sleeps and
 * never logs a token or a customer's data.
 */
#include "integrations/shopify/client.h"

#include "core/clock.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "integrations/shopify/webhook.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Renew an exchanged token this long before it expires (or at 90% of a short life). */
#define TOKEN_RENEW_MARGIN_MS (5 * 60 * 1000L)
#define URL_MAX               8192

struct shopify_client {
    char *base;       /* "https://shop.myshopify.com", no trailing slash */
    char *api_prefix; /* base + "/admin/api/" + version */
    char *static_token;
    char *client_id;
    char *client_secret;
    long timeout_ms;
    pthread_mutex_t lock; /* guards everything below */
    char *token;          /* exchanged token; NULL until fetched */
    int64_t token_renew_ms;
    int limit_used, limit_bucket;
};

static void wipe_free(char *s)
{
    if (s)
        crypto_wipe(s, strlen(s));
    free(s);
}

void shopify_client_free(shopify_client *c)
{
    if (!c)
        return;
    free(c->base);
    free(c->api_prefix);
    wipe_free(c->static_token);
    free(c->client_id);
    wipe_free(c->client_secret);
    wipe_free(c->token);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static int make_base(const shopify_client_opts *o, buf *base, err *e)
{
    if (o->base_url && *o->base_url) {
        if (!str_starts_with(o->base_url, "http://") && !str_starts_with(o->base_url, "https://"))
            return err_set(e, F3_EINVAL, "SHOPIFY_API_URL: must be an http:// or https:// URL");
        if (buf_puts(base, o->base_url))
            return err_set(e, F3_ENOMEM, "out of memory");
        while (base->len && base->data[base->len - 1] == '/')
            base->data[--base->len] = '\0';
        return 0;
    }
    if (!o->shop_domain || !*o->shop_domain)
        return err_set(e, F3_EINVAL, "SHOPIFY_SHOP_DOMAIN: not set");
    if (!shopify_shop_domain_valid(o->shop_domain))
        return err_set(e, F3_EINVAL, "SHOPIFY_SHOP_DOMAIN: must look like 'example.myshopify.com'");
    if (buf_printf(base, "https://%s", o->shop_domain))
        return err_set(e, F3_ENOMEM, "out of memory");
    return 0;
}

shopify_client *shopify_client_new(const shopify_client_opts *o, err *e)
{
    const char *version =
        o->api_version && *o->api_version ? o->api_version : SHOPIFY_DEFAULT_API_VERSION;
    bool has_token = o->access_token && *o->access_token;
    bool has_credentials = o->client_id && *o->client_id && o->client_secret && *o->client_secret;
    if (!shopify_api_version_valid(version)) {
        err_set(e, F3_EINVAL, "SHOPIFY_API_VERSION: must look like '2025-10', got '%s'", version);
        return NULL;
    }
    if (!has_token && !has_credentials) {
        err_set(e, F3_EINVAL,
                "Shopify needs SHOPIFY_ACCESS_TOKEN, or SHOPIFY_CLIENT_ID and "
                "SHOPIFY_CLIENT_SECRET");
        return NULL;
    }
    buf base;
    buf_init(&base, URL_MAX);
    shopify_client *c = NULL;
    if (make_base(o, &base, e))
        goto out;
    c = calloc(1, sizeof *c);
    if (!c || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        c = NULL;
        err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    buf prefix;
    buf_init(&prefix, URL_MAX);
    buf_printf(&prefix, "%s/admin/api/%s", buf_cstr(&base), version);
    c->api_prefix = buf_detach(&prefix);
    c->base = buf_detach(&base);
    c->static_token = has_token ? str_dup(o->access_token) : NULL;
    c->client_id = has_credentials ? str_dup(o->client_id) : NULL;
    c->client_secret = has_credentials ? str_dup(o->client_secret) : NULL;
    c->timeout_ms = o->timeout_ms;
    c->limit_used = c->limit_bucket = -1;
    if (!c->api_prefix || !c->base || (has_token && !c->static_token) ||
        (has_credentials && (!c->client_id || !c->client_secret))) {
        shopify_client_free(c);
        c = NULL;
        err_set(e, F3_ENOMEM, "out of memory");
    }
out:
    buf_free(&base);
    return c;
}

shopify_client *shopify_client_from_config(const config *cfg, err *e)
{
    shopify_client_opts o = {
        .shop_domain = config_get(cfg, "SHOPIFY_SHOP_DOMAIN"),
        .api_version = config_get(cfg, "SHOPIFY_API_VERSION"),
        .access_token = config_get(cfg, "SHOPIFY_ACCESS_TOKEN"),
        .client_id = config_get(cfg, "SHOPIFY_CLIENT_ID"),
        .client_secret = config_get(cfg, "SHOPIFY_CLIENT_SECRET"),
        .base_url = config_get(cfg, "SHOPIFY_API_URL"),
    };
    return shopify_client_new(&o, e);
}

void shopify_client_call_limit(shopify_client *c, int *used, int *bucket)
{
    pthread_mutex_lock(&c->lock);
    *used = c->limit_used;
    *bucket = c->limit_bucket;
    pthread_mutex_unlock(&c->lock);
}

bool shopify_client_near_limit(shopify_client *c)
{
    int used, bucket;
    shopify_client_call_limit(c, &used, &bucket);
    return bucket > 0 && used >= bucket - 2;
}

int shopify_parse_call_limit(const char *value, int *used, int *bucket)
{
    if (!value)
        return -1;
    const char *slash = strchr(value, '/');
    if (!slash || slash == value || slash - value > 9 || strlen(slash + 1) > 9)
        return -1;
    char left[10];
    memcpy(left, value, (size_t)(slash - value));
    left[slash - value] = '\0';
    int64_t u, b;
    if (!isdigit((unsigned char)left[0]) || !isdigit((unsigned char)slash[1]) ||
        str_to_int64(left, &u) || str_to_int64(slash + 1, &b) || b < 1)
        return -1;
    *used = (int)u;
    *bucket = (int)b;
    return 0;
}

/* Skips spaces and tabs. */
static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

int shopify_link_next(const char *link, buf *out)
{
    if (!link)
        return F3_ENOTFOUND;
    const char *p = link;
    while (*(p = skip_ws(p))) {
        if (*p != '<')
            return F3_EINVAL;
        const char *url = p + 1, *end = strchr(url, '>');
        if (!end || end == url)
            return F3_EINVAL;
        /* The parameters up to the next entry: "; rel=\"next\"". */
        const char *params = end + 1, *next_entry = strchr(params, ',');
        size_t plen = next_entry ? (size_t)(next_entry - params) : strlen(params);
        bool is_next = false;
        for (const char *q = params; q < params + plen; q++) {
            if (strncmp(q, "rel=", 4) == 0) {
                const char *v = q + 4;
                is_next = strncmp(v, "\"next\"", 6) == 0 || strncmp(v, "next", 4) == 0;
                break;
            }
        }
        if (is_next) {
            int rc = buf_append(out, url, (size_t)(end - url));
            return rc == BUF_ERR_FULL ? F3_ETOOBIG : rc ? F3_ENOMEM : 0;
        }
        if (!next_entry)
            break;
        p = next_entry + 1;
    }
    return F3_ENOTFOUND;
}

/* Appends s percent-encoded for a form or query value. */
static int url_encode(buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~')
            rc = buf_putc(b, (char)*p);
        else
            rc = buf_printf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
    }
    return rc;
}

/* Exchanges the client credentials for a token (spec §1.1); called with the lock held. */
static int exchange_token(shopify_client *c, err *e)
{
    buf url, form;
    buf_init(&url, URL_MAX);
    buf_init(&form, 4096);
    http_client_response rs;
    memset(&rs, 0, sizeof rs);
    json_t *doc = NULL;
    int rc;
    if (buf_printf(&url, "%s/admin/oauth/access_token", c->base) ||
        buf_puts(&form, "grant_type=client_credentials&client_id=") ||
        url_encode(&form, c->client_id) || buf_puts(&form, "&client_secret=") ||
        url_encode(&form, c->client_secret)) {
        rc = err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    const char *headers[] = {"Accept: application/json", NULL};
    http_client_request rq = {.method = "POST",
                              .url = buf_cstr(&url),
                              .headers = headers,
                              .body = form.data,
                              .body_len = form.len,
                              .content_type = "application/x-www-form-urlencoded",
                              .timeout_ms = c->timeout_ms};
    rc = http_client_send(&rq, &rs, e);
    if (rc)
        goto out;
    const char *token = NULL;
    int64_t expires_in = 0;
    if (json_parse(buf_cstr(&rs.body), rs.body.len, &doc, e) ||
        json_get_string(doc, "access_token", &token, e) ||
        json_opt_int(doc, "expires_in", &expires_in, 0, e) || !*token) {
        rc = err_set(e, F3_EPERMANENT, "Shopify token exchange: unusable answer");
        goto out;
    }
    char *copy = str_dup(token);
    if (!copy) {
        rc = err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    wipe_free(c->token);
    c->token = copy;
    int64_t life_ms = expires_in > 0 ? expires_in * 1000 : INT64_MAX / 4;
    int64_t margin = life_ms / 10 < TOKEN_RENEW_MARGIN_MS ? life_ms / 10 : TOKEN_RENEW_MARGIN_MS;
    c->token_renew_ms = clock_now_ms() + life_ms - margin;
    log_info("shopify access token obtained", "expiresIn", expires_in > 0 ? "set" : "never");
out:
    if (form.data)
        crypto_wipe(form.data, form.len);
    buf_free(&form);
    buf_free(&url);
    json_decref(doc);
    if (rs.body.data)
        crypto_wipe(rs.body.data, rs.body.len);
    http_client_response_free(&rs);
    return rc;
}

/* Appends the access-token header line, exchanging credentials when needed. */
static int token_header(shopify_client *c, buf *line, err *e)
{
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    const char *token = c->static_token;
    if (!token) {
        if (!c->token || clock_now_ms() >= c->token_renew_ms)
            rc = exchange_token(c, e);
        token = c->token;
    }
    if (rc == 0 && buf_printf(line, "X-Shopify-Access-Token: %s", token))
        rc = err_set(e, F3_ENOMEM, "out of memory");
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void note_response(shopify_client *c, const http_client_response *rs, shopify_call *call)
{
    shopify_call seen = {.status = rs->status,
                         .failure = rs->failure,
                         .retry_after_ms = rs->retry_after_ms,
                         .limit_used = -1,
                         .limit_bucket = -1};
    if (rs->status == 429 && seen.retry_after_ms < 0)
        seen.retry_after_ms = SHOPIFY_DEFAULT_RETRY_MS;
    const char *v = http_client_header(rs, "X-Shopify-API-Version");
    if (v)
        snprintf(seen.api_version, sizeof seen.api_version, "%s", v);
    if (shopify_parse_call_limit(http_client_header(rs, "X-Shopify-Shop-Api-Call-Limit"),
                                 &seen.limit_used, &seen.limit_bucket) == 0) {
        pthread_mutex_lock(&c->lock);
        c->limit_used = seen.limit_used;
        c->limit_bucket = seen.limit_bucket;
        pthread_mutex_unlock(&c->lock);
    }
    /* An exchanged token that Shopify refuses is dropped, so the next call gets a new one. */
    if (rs->status == 401 && !c->static_token) {
        pthread_mutex_lock(&c->lock);
        c->token_renew_ms = 0;
        pthread_mutex_unlock(&c->lock);
    }
    if (call)
        *call = seen;
}

/* One JSON call to url; *out receives the parsed 2xx body. */
static int api_call(shopify_client *c, const char *method, const char *url, const json_t *body,
                    json_t **out, http_client_response *rs, shopify_call *call, err *e)
{
    buf auth;
    buf_init(&auth, 4096);
    memset(rs, 0, sizeof *rs);
    rs->retry_after_ms = -1;
    if (call) {
        memset(call, 0, sizeof *call);
        call->retry_after_ms = -1;
        call->limit_used = call->limit_bucket = -1;
        call->failure = HTTP_PERMANENT;
    }
    int rc = token_header(c, &auth, e);
    if (rc == 0) {
        const char *headers[] = {buf_cstr(&auth), NULL};
        rc = http_client_json(method, url, headers, body, c->timeout_ms, out, rs, e);
        note_response(c, rs, call);
    } else if (call) {
        call->failure = rc == F3_ETRANSIENT ? HTTP_TRANSIENT : HTTP_PERMANENT;
    }
    if (auth.data)
        crypto_wipe(auth.data, auth.len);
    buf_free(&auth);
    return rc;
}

static bool order_id_valid(const char *id)
{
    if (!id || !*id || strlen(id) >= SHOPIFY_ID_LEN)
        return false;
    for (const char *p = id; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    return true;
}

static int first_page_url(shopify_client *c, const shopify_order_query *q, buf *url, err *e)
{
    const char *status = q && q->status ? q->status : "any";
    int limit = q && q->limit ? q->limit : SHOPIFY_PAGE_LIMIT_MAX;
    if (!str_eq(status, "any") && !str_eq(status, "open") && !str_eq(status, "closed") &&
        !str_eq(status, "cancelled"))
        return err_set(e, F3_EINVAL, "order status must be open, closed, cancelled or any");
    if (limit < 1 || limit > SHOPIFY_PAGE_LIMIT_MAX)
        return err_set(e, F3_EINVAL, "page limit must be between 1 and %d", SHOPIFY_PAGE_LIMIT_MAX);
    if (q && q->since_id && !order_id_valid(q->since_id))
        return err_set(e, F3_EINVAL, "since_id must be a Shopify id");
    int rc = buf_printf(url, "%s/orders.json?status=%s&limit=%d", c->api_prefix, status, limit);
    char iso[CLOCK_ISO_LEN];
    if (rc == 0 && q && q->created_at_min_ms > 0) {
        clock_format_iso(q->created_at_min_ms, iso);
        rc = buf_printf(url, "&created_at_min=%s", iso);
    }
    if (rc == 0 && q && q->updated_at_min_ms > 0) {
        clock_format_iso(q->updated_at_min_ms, iso);
        rc = buf_printf(url, "&updated_at_min=%s", iso);
    }
    if (rc == 0 && q && q->since_id)
        rc = buf_printf(url, "&since_id=%s", q->since_id);
    return rc ? err_set(e, F3_ENOMEM, "out of memory") : 0;
}

int shopify_list_orders(shopify_client *c, const shopify_order_query *q, const char *page_url,
                        shopify_order_page *out, shopify_call *call, err *e)
{
    memset(out, 0, sizeof *out);
    buf url, next;
    buf_init(&url, URL_MAX);
    buf_init(&next, URL_MAX);
    http_client_response rs;
    memset(&rs, 0, sizeof rs);
    json_t *doc = NULL;
    int rc;
    if (page_url) {
        /* Only ever follow a cursor to our own Admin API: the token goes with it. */
        if (!str_starts_with(page_url, c->api_prefix) || page_url[strlen(c->api_prefix)] != '/') {
            rc = err_set(e, F3_EINVAL, "next-page URL does not belong to this shop's Admin API");
            goto out;
        }
        rc = buf_puts(&url, page_url) ? err_set(e, F3_ETOOBIG, "next-page URL is too long") : 0;
    } else {
        rc = first_page_url(c, q, &url, e);
    }
    if (rc)
        goto out;
    rc = api_call(c, "GET", buf_cstr(&url), NULL, &doc, &rs, call, e);
    if (rc)
        goto out;
    json_t *orders = NULL;
    if (json_get_array(doc, "orders", &orders, e)) {
        rc = err_set(e, F3_EPERMANENT, "GET orders.json: answer has no 'orders' array");
        goto out;
    }
    int lrc = shopify_link_next(http_client_header(&rs, "Link"), &next);
    if (lrc == F3_EINVAL) {
        rc = err_set(e, F3_EPERMANENT, "GET orders.json: malformed Link header");
        goto out;
    }
    if (lrc == 0 && !(out->next_url = buf_detach(&next))) {
        rc = err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    out->orders = json_incref(orders);
    out->count = json_array_size(orders);
out:
    json_decref(doc);
    http_client_response_free(&rs);
    buf_free(&url);
    buf_free(&next);
    return rc;
}

void shopify_order_page_free(shopify_order_page *p)
{
    if (!p)
        return;
    json_decref(p->orders);
    free(p->next_url);
    memset(p, 0, sizeof *p);
}

/* GET {api}/{path}; *doc receives the parsed body. 404 becomes F3_ENOTFOUND. */
static int get_json(shopify_client *c, const char *path, json_t **doc, shopify_call *call, err *e)
{
    buf url;
    buf_init(&url, URL_MAX);
    http_client_response rs;
    memset(&rs, 0, sizeof rs);
    int rc = buf_printf(&url, "%s%s", c->api_prefix, path)
                 ? err_set(e, F3_ENOMEM, "out of memory")
                 : api_call(c, "GET", buf_cstr(&url), NULL, doc, &rs, call, e);
    if (rc == F3_EPERMANENT && rs.status == 404)
        rc = F3_ENOTFOUND;
    if (rc == 0 && !*doc)
        rc = err_set(e, F3_EPERMANENT, "GET %s: empty answer", path);
    http_client_response_free(&rs);
    buf_free(&url);
    return rc;
}

int shopify_get_order(shopify_client *c, const char *order_id, shopify_order *out,
                      shopify_call *call, err *e)
{
    memset(out, 0, sizeof *out);
    if (!order_id_valid(order_id))
        return err_set(e, F3_EINVAL, "Shopify order id must be decimal digits");
    char path[64];
    snprintf(path, sizeof path, "/orders/%s.json", order_id);
    json_t *doc = NULL, *order = NULL;
    int rc = get_json(c, path, &doc, call, e);
    if (rc == 0 && json_get_object(doc, "order", &order, e))
        rc = F3_EPERMANENT;
    if (rc == 0)
        rc = shopify_order_from_json(order, out, e);
    json_decref(doc);
    return rc;
}

int shopify_get_fulfillment_orders(shopify_client *c, const char *order_id,
                                   shopify_fulfillment_orders *out, shopify_call *call, err *e)
{
    memset(out, 0, sizeof *out);
    if (!order_id_valid(order_id))
        return err_set(e, F3_EINVAL, "Shopify order id must be decimal digits");
    char path[80];
    snprintf(path, sizeof path, "/orders/%s/fulfillment_orders.json", order_id);
    json_t *doc = NULL;
    int rc = get_json(c, path, &doc, call, e);
    if (rc == 0 && shopify_fulfillment_orders_from_json(doc, out, e))
        rc = F3_EPERMANENT;
    json_decref(doc);
    return rc;
}

/* Appends the id of every fulfillment of {"fulfillments":[...]} that is not cancelled. */
static int fulfillment_ids_from_json(const json_t *doc, char *ids, size_t size, err *e)
{
    const json_t *list = json_object_get(doc, "fulfillments");
    if (!json_is_array(list))
        return err_set(e, F3_EPERMANENT, "GET fulfillments.json: no fulfillments array");
    size_t len = 0, i;
    const json_t *f;
    json_array_foreach(list, i, f)
    {
        char id[SHOPIFY_ID_LEN];
        if (!json_is_object(f) || shopify_json_id(f, "id", false, id, e))
            return err_set(e, F3_EPERMANENT, "GET fulfillments.json: a fulfillment without id");
        const char *status = json_string_value(json_object_get(f, "status"));
        if (status && strcmp(status, "cancelled") == 0)
            continue;
        int n = snprintf(ids + len, size - len, "%s%s", len ? "," : "", id);
        if (n < 0 || (size_t)n >= size - len)
            return err_set(e, F3_EINVAL, "the order's fulfillment ids do not fit");
        len += (size_t)n;
    }
    return 0;
}

int shopify_list_fulfillment_ids(shopify_client *c, const char *order_id, char *ids, size_t size,
                                 shopify_call *call, err *e)
{
    if (size)
        ids[0] = '\0';
    if (!order_id_valid(order_id))
        return err_set(e, F3_EINVAL, "Shopify order id must be decimal digits");
    if (size == 0)
        return err_set(e, F3_EINVAL, "no room for fulfillment ids");
    char path[80];
    snprintf(path, sizeof path, "/orders/%s/fulfillments.json", order_id);
    json_t *doc = NULL;
    int rc = get_json(c, path, &doc, call, e);
    if (rc == 0)
        rc = fulfillment_ids_from_json(doc, ids, size, e);
    json_decref(doc);
    return rc;
}

int shopify_create_fulfillment(shopify_client *c, const shopify_fulfillment_request *rq,
                               shopify_fulfillment *out, shopify_call *call, err *e)
{
    memset(out, 0, sizeof *out);
    json_t *body = NULL, *doc = NULL;
    buf url;
    buf_init(&url, URL_MAX);
    http_client_response rs;
    memset(&rs, 0, sizeof rs);
    int rc = shopify_fulfillment_request_json(rq, &body, e);
    if (rc)
        goto out;
    if (buf_printf(&url, "%s/fulfillments.json", c->api_prefix)) {
        rc = err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    rc = api_call(c, "POST", buf_cstr(&url), body, &doc, &rs, call, e);
    if (rc == 0 && (!doc || shopify_fulfillment_from_json(doc, out, e)))
        rc = err_set(e, F3_EPERMANENT, "POST fulfillments.json: unusable answer");
out:
    json_decref(body);
    json_decref(doc);
    http_client_response_free(&rs);
    buf_free(&url);
    return rc;
}
