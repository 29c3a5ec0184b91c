/*
 * webhooks.c - Shopify webhooks of the orders service: the route that checks, stores and
 * answers a delivery, and the queue handler that does its work.
 *
 * The route never trusts a byte of the body before its signature is checked with the
 * secret of the shop the delivery names; a delivery is stored once per delivery id and
 * its job is enqueued in the same transaction, so an accepted delivery is never lost and
 * a repeated one never handled twice. The route does no business work: that is the job's.
 */
#include "services/orders/intake_internal.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "core/uuid.h"
#include "integrations/shopify/order.h"
#include "integrations/shopify/webhook.h"
#include "services/common/eventlog.h"
#include "services/common/notify.h"
#include "services/orders/ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What each topic means to us. Topics Shopify may send that we do not act on are stored
 * (so a delivery is never refused for them) and marked IGNORED. */
typedef enum topic_kind {
    TOPIC_ORDER_CREATE,
    TOPIC_ORDER_UPDATED,
    TOPIC_ORDER_PAID,
    TOPIC_ORDER_CANCELLED,
    TOPIC_REFUND_CREATE,
    TOPIC_APP_UNINSTALLED,
    TOPIC_IGNORED,
} topic_kind;

static const struct {
    const char *topic;
    topic_kind kind;
} topics[] = {
    {"orders/create", TOPIC_ORDER_CREATE},   {"orders/updated", TOPIC_ORDER_UPDATED},
    {"orders/paid", TOPIC_ORDER_PAID},       {"orders/cancelled", TOPIC_ORDER_CANCELLED},
    {"refunds/create", TOPIC_REFUND_CREATE}, {"app/uninstalled", TOPIC_APP_UNINSTALLED},
    {"orders/fulfilled", TOPIC_IGNORED},
};

/* -1 for a topic we do not subscribe to. */
static int topic_kind_of(const char *topic)
{
    for (size_t i = 0; topic && i < sizeof topics / sizeof topics[0]; i++)
        if (strcmp(topic, topics[i].topic) == 0)
            return (int)topics[i].kind;
    return -1;
}

static bool is_order_topic(topic_kind k)
{
    return k <= TOPIC_ORDER_CANCELLED;
}

/* ---- checking a delivery ------------------------------------------------------------- */

/* Header lookup that lets the path name the topic when X-Shopify-Topic is absent. */
typedef struct header_src {
    const http_request *req;
    const char *path_topic;
} header_src;

static const char *lookup_header(const void *src, const char *name)
{
    const header_src *h = src;
    const char *v = http_req_header(h->req, name);
    if (!v && h->path_topic && str_case_eq(name, SHOPIFY_HEADER_TOPIC))
        return h->path_topic;
    return v;
}

/* The body's schema for its topic. 0 or F3_EINVAL with the reason. */
static int check_body(topic_kind k, const char *body, size_t len, err *e)
{
    json_error_t je;
    json_t *doc = json_loadb(body, len, 0, &je);
    if (!doc)
        return err_set(e, F3_EINVAL, "body is not JSON: %s (line %d, column %d)", je.text, je.line,
                       je.column);
    int rc = json_is_object(doc) ? 0 : err_set(e, F3_EINVAL, "body is not a JSON object");
    if (rc == 0 && is_order_topic(k)) {
        shopify_order o;
        rc = shopify_order_from_json(doc, &o, e);
        shopify_order_free(&o);
    } else if (rc == 0 && k == TOPIC_REFUND_CREATE) {
        char id[SHOPIFY_ID_LEN];
        rc = shopify_json_id(doc, "id", false, id, e);
        rc = rc ? rc : shopify_json_id(doc, "order_id", false, id, e);
    }
    json_decref(doc);
    return rc;
}

/* The connection of the shop a delivery names; 401 for unknown or disconnected shops. */
static int find_shop(orders_intake *in, const char *shop, shop_conn *conn, http_response *res)
{
    err e;
    err_clear(&e);
    memset(conn, 0, sizeof *conn);
    db_conn *c = db_acquire(in->db, &e);
    int rc = c ? shop_conn_find(c, in->key, shop, conn, &e) : db_err_code(&e);
    db_release(c);
    if (rc == 0 && conn->connected)
        return 0;
    if (rc == 0 || rc == F3_ENOTFOUND) {
        log_warn("Shopify webhook from an unknown or disconnected shop refused", "shop", shop);
        shop_conn_clear(conn);
        http_res_error(res, 401, "Unknown shop: %s", shop);
        return 1;
    }
    log_error("Shopify webhook: cannot look the shop up", "reason", e.msg);
    return rc;
}

/* ---- storing a delivery --------------------------------------------------------------- */

typedef struct delivery_row {
    const char *tenant_id, *delivery_id, *topic, *shop, *body;
    bool ignored;
    bus_store *store;
    bool stored; /* out: false for a duplicate */
} delivery_row;

static int store_delivery(db_conn *c, void *ctx, err *e)
{
    delivery_row *d = ctx;
    char id[UUID_STR_LEN], now[24];
    uuid_v7(id);
    db_ms_text(clock_now_ms(), now);
    const char *t[] = {id,      d->tenant_id, d->delivery_id, d->topic,
                       d->shop, now,          d->body,        d->ignored ? "IGNORED" : "RECEIVED"};
    int64_t n = 0;
    int rc = db_exec_texts(c,
                           "INSERT INTO webhook_deliveries (id, tenant_id, provider, delivery_id,"
                           " topic, shop_domain, received_at, body, status) VALUES ($1, $2,"
                           " 'shopify', $3, $4, $5, CAST($6 AS BIGINT), $7, $8)"
                           " ON CONFLICT (tenant_id, provider, topic, delivery_id) DO NOTHING",
                           t, 8, &n, e);
    d->stored = rc == 0 && n > 0;
    if (rc || !d->stored || d->ignored)
        return rc;
    json_t *data =
        json_pack("{s:s,s:s,s:s}", "deliveryId", id, "tenantId", d->tenant_id, "topic", d->topic);
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    if (!text)
        return err_set(e, F3_ENOMEM, "out of memory");
    /* The job id is the delivery's key too: "<topic>:<delivery id>". */
    buf job_id;
    buf_init(&job_id, 0);
    rc = buf_printf(&job_id, "%s:%s", d->topic, d->delivery_id)
             ? err_set(e, F3_ENOMEM, "out of memory")
             : 0;
    bus_job_opts o = {.job_id = buf_cstr(&job_id)};
    if (rc == 0)
        rc = bus_store_add(d->store, c, ORDERS_WEBHOOK_QUEUE, d->topic, text, &o, clock_now_ms(),
                           NULL, e);
    buf_free(&job_id);
    free(text);
    return rc;
}

static int accept_delivery(orders_intake *in, const shop_conn *conn,
                           const shopify_webhook_headers *wh, topic_kind k, const char *body,
                           http_response *res)
{
    delivery_row d = {.tenant_id = conn->tenant_id,
                      .delivery_id = wh->event_id,
                      .topic = wh->topic,
                      .shop = conn->shop_domain,
                      .body = body,
                      .ignored = k == TOPIC_IGNORED,
                      .store = in->store};
    err e;
    err_clear(&e);
    db_conn *c = db_acquire(in->db, &e);
    int rc = c ? db_tx(c, store_delivery, &d, &e) : db_err_code(&e);
    db_release(c);
    if (rc) {
        log_error("Shopify webhook: cannot store the delivery", "reason", e.msg, "topic",
                  wh->topic);
        return rc;
    }
    log_info(d.stored ? "Shopify webhook accepted" : "Shopify webhook duplicate ignored", "topic",
             wh->topic, "deliveryId", wh->event_id, "shop", conn->shop_domain);
    return http_res_json(res, 200, json_pack("{s:b,s:b}", "received", 1, "duplicate", !d.stored));
}

int orders_webhook_route(http_request *req, http_response *res, void *ctx)
{
    orders_intake *in = ctx;
    size_t len = 0;
    const char *body = http_req_body(req, &len);
    const char *hmac = http_req_header(req, SHOPIFY_HEADER_HMAC);
    const char *shop = http_req_header(req, SHOPIFY_HEADER_SHOP_DOMAIN);
    if (!hmac || !*hmac)
        return http_res_error(res, 401, "Missing %s header", SHOPIFY_HEADER_HMAC);
    if (!shop || !shopify_shop_domain_valid(shop))
        return http_res_error(res, 401, "Missing or malformed %s header",
                              SHOPIFY_HEADER_SHOP_DOMAIN);
    shop_conn conn;
    int rc = find_shop(in, shop, &conn, res);
    if (rc)
        return rc > 0 ? 0 : rc;
    err e;
    err_clear(&e);
    if (shopify_webhook_verify(conn.api_secret, body, len, hmac, &e) != 0) {
        log_warn("Shopify webhook with a bad signature refused", "shop", conn.shop_domain);
        shop_conn_clear(&conn);
        return http_res_error(res, 401, "Webhook signature does not match");
    }
    header_src src = {req, http_req_param(req, "*")};
    shopify_webhook_headers wh;
    int k = -1;
    if (shopify_webhook_headers_parse(lookup_header, &src, &wh, &e) != 0)
        rc = http_res_error(res, 400, "%s", e.msg);
    else if (src.path_topic && !str_eq(src.path_topic, wh.topic))
        rc = http_res_error(res, 400, "Topic in the path (%s) differs from %s (%s)", src.path_topic,
                            SHOPIFY_HEADER_TOPIC, wh.topic);
    else if ((k = topic_kind_of(wh.topic)) < 0)
        rc = http_res_error(res, 400, "Unsupported webhook topic: %s", wh.topic);
    else if (strlen(body) != len)
        rc = http_res_error(res, 400, "Body contains a NUL byte");
    else if (check_body((topic_kind)k, body, len, &e) != 0)
        rc = http_res_error(res, 400, "Invalid %s payload: %s", wh.topic, e.msg);
    else
        rc = accept_delivery(in, &conn, &wh, (topic_kind)k, body, res);
    shop_conn_clear(&conn);
    return rc;
}

/* ---- doing the work ------------------------------------------------------------------- */

typedef struct stored_delivery {
    char tenant_id[SHOP_TENANT_ID_MAX + 1];
    char topic[SHOPIFY_TOPIC_MAX + 1];
    char shop[SHOPIFY_DOMAIN_MAX + 1];
    char *body;
} stored_delivery;

/* Marks the delivery processed and reads it; F3_ENOTFOUND when it was processed already
 * (or is gone). */
static int claim_delivery(db_conn *tx, const char *id, stored_delivery *out, err *e)
{
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *t[] = {id, now};
    int64_t n = 0;
    int rc = db_exec_texts(tx,
                           "UPDATE webhook_deliveries SET status = 'PROCESSED',"
                           " processed_at = CAST($2 AS BIGINT)"
                           " WHERE id = $1 AND status = 'RECEIVED'",
                           t, 2, &n, e);
    if (rc || n == 0)
        return rc ? rc : F3_ENOTFOUND;
    db_stmt *s = db_prepare_texts(
        tx, "SELECT tenant_id, topic, shop_domain, body FROM webhook_deliveries WHERE id = $1", t,
        1, e);
    if (!s)
        return db_err_code(e);
    rc = db_step(s, e);
    if (rc == DB_ROW) {
        db_col_copy(s, 0, out->tenant_id, sizeof out->tenant_id);
        db_col_copy(s, 1, out->topic, sizeof out->topic);
        db_col_copy(s, 2, out->shop, sizeof out->shop);
        out->body = str_dup(db_col_text(s, 3) ? db_col_text(s, 3) : "");
        rc = out->body ? 0 : err_set(e, F3_ENOMEM, "out of memory");
    } else if (rc == DB_DONE) {
        rc = F3_ENOTFOUND;
    }
    db_finalize(s);
    return rc;
}

static int handle_order(orders_intake *in, db_conn *tx, const stored_delivery *d, topic_kind k,
                        err *e)
{
    shopify_order o;
    int rc = shopify_order_parse(d->body, strlen(d->body), &o, e);
    if (rc) {
        shopify_order_free(&o);
        return F3_EINVAL;
    }
    if (k == TOPIC_ORDER_CANCELLED && o.cancelled_at_ms < 0)
        o.cancelled_at_ms = clock_now_ms(); /* the topic itself says it was cancelled */
    order_ingest_result r;
    if (k == TOPIC_ORDER_PAID)
        rc = order_ingest_paid(tx, in->bus, d->tenant_id, &o, &r, e);
    else
        rc = order_ingest(tx, in->bus, d->tenant_id, &o,
                          k == TOPIC_ORDER_CREATE ? ORDER_INGEST_CREATE_ONLY : ORDER_INGEST_UPSERT,
                          "webhook", &r, e);
    shopify_order_free(&o);
    return rc;
}

static int handle_uninstalled(db_conn *tx, const stored_delivery *d, err *e)
{
    bool changed = false;
    int rc = shop_conn_disconnect(tx, d->tenant_id, d->shop, &changed, e);
    if (rc || !changed)
        return rc;
    log_warn("Shopify app uninstalled: shop disconnected", "shop", d->shop);
    json_t *meta = json_pack("{s:s}", "shop", d->shop);
    eventlog_entry en = {.tenant_id = d->tenant_id,
                         .event_type = ORDERS_LOG_SHOP_DISCONNECTED,
                         .severity = EVENTLOG_WARNING,
                         .message = "The f3connect app was uninstalled from the Shopify shop; "
                                    "the shop is disconnected",
                         .metadata = meta};
    rc = eventlog_write(tx, &en, NULL, e);
    json_decref(meta);
    json_t *fields = json_pack("{s:s,s:s}", "message",
                               "Shopify shop disconnected (app uninstalled): no new orders arrive "
                               "until it is connected again",
                               "shop", d->shop);
    rc = rc       ? rc
         : fields ? notify_alert(tx, d->tenant_id, NOTIFY_SHOP_DISCONNECTED, fields, e)
                  : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(fields);
    return rc;
}

/* The work of one stored delivery, by topic, inside tx. */
static int handle_delivery(orders_intake *in, db_conn *tx, const stored_delivery *d, err *e)
{
    int k = topic_kind_of(d->topic);
    if (k >= 0 && is_order_topic((topic_kind)k))
        return handle_order(in, tx, d, (topic_kind)k, e);
    if (k == TOPIC_APP_UNINSTALLED)
        return handle_uninstalled(tx, d, e);
    if (k != TOPIC_REFUND_CREATE)
        return 0;
    json_error_t je;
    json_t *refund = json_loads(d->body, 0, &je);
    if (!refund) {
        err_set(e, F3_EINVAL, "refund body is not JSON");
        return F3_EINVAL;
    }
    int rc = order_ingest_refund(tx, d->tenant_id, refund, e);
    json_decref(refund);
    return rc;
}

int orders_webhook_job(bus_delivery *dl, void *ctx, err *e)
{
    orders_intake *in = ctx;
    const bus_job *job = bus_delivery_job(dl);
    stored_delivery d = {0};
    json_error_t je;
    json_t *data = json_loads(job->data ? job->data : "", 0, &je);
    const char *id = json_string_value(json_object_get(data, "deliveryId"));
    int rc = F3_EINVAL;
    if (!id) {
        err_set(e, rc, "job data has no deliveryId");
        goto out;
    }
    db_conn *tx = bus_delivery_tx(dl, e);
    if (!tx) {
        rc = db_err_code(e);
        goto out;
    }
    rc = claim_delivery(tx, id, &d, e);
    if (rc == F3_ENOTFOUND) {
        rc = 0; /* handled before, by an earlier attempt that committed */
        goto out;
    }
    if (rc == 0 && !d.body) {
        rc = F3_EIO;
        err_set(e, rc, "delivery %s has no body", id);
    }
    if (rc == 0)
        rc = handle_delivery(in, tx, &d, e);
out:
    free(d.body);
    json_decref(data);
    return rc;
}
