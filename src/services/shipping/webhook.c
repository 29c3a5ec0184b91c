/*
 * webhook.c - Sendcloud webhooks: the public route checks Sendcloud-Signature (hex
 * HMAC-SHA256 of the raw body, constant time) with the key of each connected tenant until
 * one matches (the tenant is found that way: the body names none), deduplicates the
 * delivery by parcel id, status id and timestamp in webhook_deliveries (provider
 * 'sendcloud'), stores it with a job in one transaction and answers 200 at once; the job
 * applies the status (sendcloud.shipment.status_changed) to the shipment. The route never
 * logs a key, a signature or the body.
 */
#include "services/shipping/shipping_internal.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "http/request.h"
#include "http/response.h"
#include "integrations/sendcloud/webhook.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROVIDER "sendcloud"

/* The connected tenant whose key verifies the signature; "" when none does. */
static int find_tenant(shipping_service *s, const char *body, size_t len, const char *sig,
                       char tenant[SHIPPING_TENANT_MAX + 1], err *e)
{
    tenant[0] = '\0';
    char **tenants = NULL;
    size_t n = 0;
    db_conn *c = db_acquire(s->db, e);
    int rc = c ? shipping_conn_tenants(c, &tenants, &n, e) : db_err_code(e);
    for (size_t i = 0; rc == 0 && i < n && !tenant[0]; i++) {
        shipping_conn conn;
        if (shipping_conn_load(s, c, tenants[i], &conn, e) != 0)
            continue; /* a key that does not open: that tenant cannot sign anything */
        const char *key = conn.webhook_secret ? conn.webhook_secret : conn.secret_key;
        if (conn.connected && sendcloud_webhook_verify(key, body, len, sig) == 0)
            snprintf(tenant, SHIPPING_TENANT_MAX + 1, "%s", conn.tenant_id);
        shipping_conn_clear(&conn);
    }
    db_release(c);
    shipping_tenants_free(tenants, n);
    return rc;
}

typedef struct delivery_row {
    shipping_service *s;
    const char *tenant_id, *key, *body;
    bool stored; /* out: false for a duplicate */
} delivery_row;

static int store_delivery(db_conn *c, void *ctx, err *e)
{
    delivery_row *d = ctx;
    char id[UUID_STR_LEN], now[24];
    uuid_v7(id);
    db_ms_text(clock_now_ms(), now);
    const char *t[] = {id, d->tenant_id, d->key, now, d->body};
    int64_t n = 0;
    int rc = db_exec_texts(c,
                           "INSERT INTO webhook_deliveries (id, tenant_id, provider, delivery_id,"
                           " topic, shop_domain, received_at, body, status) VALUES ($1, $2,"
                           " '" PROVIDER "', $3, '" SENDCLOUD_ACTION_PARCEL "', '" PROVIDER "',"
                           " CAST($4 AS BIGINT), $5, 'RECEIVED')"
                           " ON CONFLICT (tenant_id, provider, topic, delivery_id) DO NOTHING",
                           t, 5, &n, e);
    d->stored = rc == 0 && n > 0;
    if (rc || !d->stored)
        return rc;
    json_t *data = json_pack("{s:s,s:s}", "deliveryId", id, "tenantId", d->tenant_id);
    char job_id[256];
    snprintf(job_id, sizeof job_id, "%s:%s", d->tenant_id, d->key);
    rc = data ? shipping_enqueue(d->s, c, SHIPPING_WEBHOOK_QUEUE, job_id, data, 0, e)
              : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(data);
    return rc;
}

int shipping_webhook_route(http_request *req, http_response *res, void *ctx)
{
    shipping_service *s = ctx;
    size_t len = 0;
    const char *body = http_req_body(req, &len);
    const char *sig = http_req_header(req, SENDCLOUD_HEADER_SIGNATURE);
    if (!sig || !*sig) {
        log_warn("Sendcloud webhook without signature refused");
        return http_res_error(res, 401, "Missing " SENDCLOUD_HEADER_SIGNATURE " header");
    }
    err e;
    err_clear(&e);
    char tenant[SHIPPING_TENANT_MAX + 1];
    if (find_tenant(s, body, len, sig, tenant, &e) != 0) {
        log_error("Sendcloud webhook: cannot read connections", "reason", e.msg);
        return http_res_error(res, 503, "Service unavailable, try again");
    }
    if (!tenant[0]) {
        log_warn("Sendcloud webhook with a bad signature refused");
        return http_res_error(res, 401, "Invalid " SENDCLOUD_HEADER_SIGNATURE);
    }
    sendcloud_status_event ev;
    if (sendcloud_webhook_parse(body, len, &ev, &e) != 0)
        return http_res_error(res, 400, "Invalid webhook payload: %s", e.msg);
    if (!str_eq(ev.action, SENDCLOUD_ACTION_PARCEL)) {
        log_info("Sendcloud webhook action ignored", "action", ev.action);
        return http_res_json(res, 200, json_pack("{s:b,s:b}", "received", 1, "ignored", 1));
    }
    char key[96];
    sendcloud_webhook_dedupe_key(&ev, key);
    delivery_row d = {.s = s, .tenant_id = tenant, .key = key, .body = body};
    db_conn *c = db_acquire(s->db, &e);
    int rc = c ? db_tx(c, store_delivery, &d, &e) : db_err_code(&e);
    db_release(c);
    if (rc) {
        log_error("Sendcloud webhook: cannot store the delivery", "reason", e.msg);
        return http_res_error(res, 503, "Service unavailable, try again");
    }
    log_info(d.stored ? "Sendcloud webhook accepted" : "Sendcloud webhook duplicate ignored",
             "deliveryKey", key, "status", ev.status);
    return http_res_json(res, 200, json_pack("{s:b,s:b}", "received", 1, "duplicate", !d.stored));
}

/* The delivery's body, or NULL (*rc set) when it is gone or unreadable. */
static char *load_delivery(db_conn *c, const char *tenant_id, const char *id, int *rc, err *e)
{
    const char *t[] = {tenant_id, id};
    db_stmt *st = db_prepare_texts(c,
                                   "SELECT body FROM webhook_deliveries WHERE tenant_id = $1"
                                   " AND id = $2 AND provider = '" PROVIDER "'",
                                   t, 2, e);
    if (!st) {
        *rc = db_err_code(e);
        return NULL;
    }
    char *body = NULL;
    int step = db_step(st, e);
    if (step == DB_ROW && !(body = str_dup(db_col_text(st, 0))))
        *rc = err_set(e, F3_ENOMEM, "out of memory");
    else if (step == DB_DONE)
        *rc = err_set(e, F3_EINVAL, "webhook delivery %s is gone", id);
    else if (step < 0)
        *rc = step;
    db_finalize(st);
    return body;
}

/* The shipment a parcel belongs to: by parcel id, else by our order id as reference. */
static int find_shipment(db_conn *c, const char *tenant_id, const sendcloud_status_event *ev,
                         char id[UUID_STR_LEN], err *e)
{
    char parcel[24];
    snprintf(parcel, sizeof parcel, "%" PRId64, ev->parcel_id);
    const char *t[] = {tenant_id, parcel, ev->external_reference};
    db_stmt *st = db_prepare_texts(c,
                                   "SELECT id FROM shipments WHERE tenant_id = $1 AND"
                                   " (provider_parcel_id = $2 OR (provider_reference = $3 AND"
                                   " $3 <> '')) ORDER BY created_at LIMIT 1",
                                   t, 3, e);
    if (!st)
        return db_err_code(e);
    int rc = db_step(st, e);
    if (rc == DB_ROW)
        db_col_copy(st, 0, id, UUID_STR_LEN);
    db_finalize(st);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? F3_ENOTFOUND : rc;
}

static int mark_delivery(db_conn *tx, const char *tenant_id, const char *id, const char *status,
                         err *e)
{
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *t[] = {tenant_id, id, status, now};
    return db_exec_texts(tx,
                         "UPDATE webhook_deliveries SET status = $3, processed_at ="
                         " CAST($4 AS BIGINT) WHERE tenant_id = $1 AND id = $2",
                         t, 4, NULL, e);
}

int shipping_webhook_job(bus_delivery *dl, void *ctx, err *e)
{
    shipping_service *s = ctx;
    const bus_job *j = bus_delivery_job(dl);
    json_t *doc = NULL;
    const char *tenant = NULL, *id = NULL;
    if (json_parse(j->data, strlen(j->data), &doc, e) ||
        json_get_string(doc, "tenantId", &tenant, e) ||
        json_get_string(doc, "deliveryId", &id, e)) {
        json_decref(doc);
        return F3_EINVAL;
    }
    int rc = 0;
    char *body = NULL;
    db_conn *tx = bus_delivery_tx(dl, e);
    if (!tx) {
        rc = db_err_code(e);
        goto out;
    }
    body = load_delivery(tx, tenant, id, &rc, e);
    sendcloud_status_event ev;
    if (rc == 0 && sendcloud_webhook_parse(body, strlen(body), &ev, e) != 0)
        rc = F3_EINVAL;
    char shipment[UUID_STR_LEN];
    int frc = rc ? rc : find_shipment(tx, tenant, &ev, shipment, e);
    if (rc == 0 && frc == F3_ENOTFOUND) {
        log_info("Sendcloud webhook for an unknown parcel ignored", "deliveryId", id);
        rc = mark_delivery(tx, tenant, id, "IGNORED", e);
        goto out;
    }
    rc = rc ? rc : frc;
    if (rc)
        goto out;
    shipping_status_report rep = {.status = ev.status,
                                  .status_message = ev.status_message[0] ? ev.status_message : NULL,
                                  .tracking_number = ev.tracking_number,
                                  .tracking_url = ev.tracking_url,
                                  .carrier = ev.carrier,
                                  .at_ms = ev.timestamp_ms > 0 ? ev.timestamp_ms : clock_now_ms(),
                                  .source = "webhook"};
    rc = shipping_apply_status(s, tx, tenant, shipment, &rep, NULL, e);
    rc = rc ? rc : mark_delivery(tx, tenant, id, "PROCESSED", e);
out:
    free(body);
    json_decref(doc);
    return rc;
}
