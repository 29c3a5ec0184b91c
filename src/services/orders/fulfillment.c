/*
 * fulfillment.c - Shopify fulfilment of completed orders (see fulfillment.h): requests,
 * the claim, the fulfillment-order flow, outcomes, the FULFILLMENT retry entries and their
 * handler, the shipment events and the two routes. Must not call Shopify while holding a
 * database transaction, and must not schedule retries of its own (the retry queue does).
 */
#include "services/orders/fulfillment.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/secret_key.h"
#include "core/str.h"
#include "core/uuid.h"
#include "http/request.h"
#include "http/response.h"
#include "integrations/shopify/client.h"
#include "services/access/permissions.h"
#include "services/access/user_context.h"
#include "services/common/eventlog.h"
#include "services/common/notify.h"
#include "services/orders/connections.h"
#include "services/orders/integrations_state.h"
#include "services/orders/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct orders_fulfillment {
    db *db;
    bus *bus;
    bus_store *store;
    bus_emitter *emitter;
    uint8_t key[CRYPTO_KEY_LEN];
    int max_attempts;
    int64_t retry_base_ms;
};

static const char *const outcome_names[] = {
    [ORDERS_FULFIL_DONE] = "fulfilled",
    [ORDERS_FULFIL_ALREADY] = "already-fulfilled",
    [ORDERS_FULFIL_IN_PROGRESS] = "in-progress",
    [ORDERS_FULFIL_CANCELLED] = "cancelled",
    [ORDERS_FULFIL_NOT_COMPLETED] = "not-completed",
    [ORDERS_FULFIL_RETRYING] = "retry-scheduled",
    [ORDERS_FULFIL_FAILED] = "failed",
};

const char *orders_fulfil_outcome_name(orders_fulfil_outcome o)
{
    return (unsigned)o < sizeof outcome_names / sizeof outcome_names[0] ? outcome_names[o]
                                                                        : "unknown";
}

/* Carrier codes (Sendcloud's) and the names Shopify knows them by; others are sent as
 * they are. */
static const struct {
    const char *code, *shopify_name;
} carriers[] = {
    {"postnl", "PostNL"},
    {"dhl", "DHL Express"},
    {"dhl_express", "DHL Express"},
    {"dpd", "DPD"},
    {"ups", "UPS"},
    {"gls", "GLS"},
    {"bpost", "Bpost"},
    {"fedex", "FedEx"},
    {"usps", "USPS"},
    {"colissimo", "Colissimo"},
};

static const char *carrier_name(const char *code)
{
    for (size_t i = 0; code && i < sizeof carriers / sizeof carriers[0]; i++)
        if (str_case_eq(code, carriers[i].code))
            return carriers[i].shopify_name;
    return code;
}

int orders_alert(db_conn *tx, const char *tenant_id, const char *order_id, const char *type,
                 bool warning, const char *message, const json_t *metadata, err *e)
{
    int kind = notify_kind_parse(type);
    if (kind < 0)
        return err_set(e, F3_EINVAL, "unknown operator alert type %s", type);
    json_t *fields = metadata ? json_deep_copy(metadata) : json_object();
    if (!fields || json_object_set_new(fields, "message", json_string(message)) ||
        (order_id && json_object_set_new(fields, "orderId", json_string(order_id)))) {
        json_decref(fields);
        return err_set(e, F3_ENOMEM, "out of memory");
    }
    int rc = notify_alert(tx, tenant_id, (notify_kind)kind, fields, e);
    json_decref(fields);
    if (rc == 0)
        log_warn(warning ? "operator alert (warning)" : "operator alert", "type", type, "orderId",
                 order_id ? order_id : "");
    return rc;
}

/* ---- requests ------------------------------------------------------------------------- */

/* A first try of a request (delay_ms 0), or a look at a claim another worker holds once
 * it would be stale (see orders_fulfil). Duplicate events each add one: the claim, not the
 * job, keeps Shopify to one call. Its transient failures go to the retry queue, not to
 * this job. */
static int add_job(orders_fulfillment *f, db_conn *tx, const char *tenant_id, const char *order_id,
                   int64_t delay_ms, err *e)
{
    json_t *data = json_pack("{s:s,s:s}", "tenantId", tenant_id, "orderId", order_id);
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    if (!text)
        return err_set(e, F3_ENOMEM, "out of memory");
    bus_job_opts o = {.attempts = 3, .delay_ms = delay_ms};
    int rc = bus_store_add(f->store, tx, ORDERS_FULFILLMENT_QUEUE, ORDERS_FULFILLMENT_JOB, text, &o,
                           clock_now_ms(), NULL, e);
    free(text);
    return rc;
}

int orders_fulfillment_request(orders_fulfillment *f, db_conn *tx, const char *tenant_id,
                               const char *order_id, const orders_tracking *t, err *e)
{
    orders_tracking none = {0};
    if (!t)
        t = &none;
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *p[] = {tenant_id, order_id, t->number, t->url, t->carrier, t->shipment_id, now};
    int64_t n = 0;
    int rc = db_exec_texts(
        tx,
        "INSERT INTO order_fulfillments (tenant_id, order_id, state, tracking_number,"
        " tracking_url, tracking_company, shipment_id, created_at, updated_at)"
        " SELECT $1, $2, 'PENDING', $3, $4, $5, $6, CAST($7 AS BIGINT), CAST($7 AS BIGINT)"
        " FROM orders WHERE tenant_id = $1 AND id = $2"
        " ON CONFLICT (tenant_id, order_id) DO UPDATE SET"
        " tracking_number = COALESCE(excluded.tracking_number, order_fulfillments.tracking_number),"
        " tracking_url = COALESCE(excluded.tracking_url, order_fulfillments.tracking_url),"
        " tracking_company = COALESCE(excluded.tracking_company,"
        " order_fulfillments.tracking_company),"
        " shipment_id = COALESCE(excluded.shipment_id, order_fulfillments.shipment_id),"
        " updated_at = excluded.updated_at WHERE order_fulfillments.state <> 'DONE'",
        p, 7, &n, e);
    /* Nothing changed: no such order, or it is fulfilled already. */
    return rc || n == 0 ? rc : add_job(f, tx, tenant_id, order_id, 0, e);
}

/* ---- the claim -------------------------------------------------------------------------- */

/* What the claim transaction read and decided. */
typedef struct claim {
    const char *tenant_id, *order_id;
    const orders_fulfil_opts *o;
    char token[UUID_STR_LEN];
    /* out */
    bool found, claimed;
    orders_fulfil_outcome outcome; /* when not claimed */
    int64_t held_until;            /* not claimed, another worker's claim: when it becomes stale */
    order_status status;
    int attempts;
    char shopify_order_id[SHOPIFY_ID_LEN];
    char number[64];
    char fulfillment_id[SHOPIFY_ID_LEN * 4];
    char tracking_number[128], tracking_url[512], carrier[64];
} claim;

static int read_order(db_conn *tx, claim *k, char state[16], int64_t *claimed_at, err *e)
{
    const char *p[] = {k->tenant_id, k->order_id};
    /* Lock the order row first (a no-op write): a cancellation running at the same time
     * (cancellation.c locks it the same way) either finishes before we read the status, or
     * waits and then finds our claim. */
    int rc = db_exec_texts(tx,
                           "UPDATE orders SET updated_at = updated_at WHERE tenant_id = $1 AND"
                           " id = $2",
                           p, 2, NULL, e);
    if (rc)
        return rc;
    db_stmt *s = db_prepare_texts(
        tx,
        "SELECT o.status, o.shopify_order_id, o.shopify_order_number, f.state, f.claimed_at,"
        " COALESCE(f.shopify_fulfillment_id, o.shopify_fulfillment_id),"
        " COALESCE(f.tracking_number, o.tracking_number), COALESCE(f.tracking_url,"
        " o.tracking_url), COALESCE(f.tracking_company, o.tracking_carrier)"
        " FROM orders o LEFT JOIN order_fulfillments f ON f.tenant_id = o.tenant_id AND"
        " f.order_id = o.id WHERE o.tenant_id = $1 AND o.id = $2",
        p, 2, e);
    if (!s)
        return db_err_code(e);
    rc = db_step(s, e);
    if (rc == DB_ROW) {
        k->found = true;
        int st = order_status_parse(db_col_text(s, 0));
        k->status = st < 0 ? ORDER_PENDING : (order_status)st;
        db_col_copy(s, 1, k->shopify_order_id, sizeof k->shopify_order_id);
        db_col_copy(s, 2, k->number, sizeof k->number);
        db_col_copy(s, 3, state, 16);
        *claimed_at = db_col_int64(s, 4);
        db_col_copy(s, 5, k->fulfillment_id, sizeof k->fulfillment_id);
        db_col_copy(s, 6, k->tracking_number, sizeof k->tracking_number);
        db_col_copy(s, 7, k->tracking_url, sizeof k->tracking_url);
        db_col_copy(s, 8, k->carrier, sizeof k->carrier);
        rc = 0;
    }
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

static int take_claim(db_conn *tx, claim *k, int64_t now, err *e)
{
    char now_s[24], stale[24];
    db_ms_text(now, now_s);
    db_ms_text(now - ORDERS_FULFILLMENT_STALE_MS, stale);
    const char *p[] = {k->tenant_id,
                       k->order_id,
                       now_s,
                       k->token,
                       stale,
                       k->o->operator? "1" : "0",
                       k->o->force ? k->o->user_id : NULL};
    int rc = db_exec_texts(tx,
                           "INSERT INTO order_fulfillments (tenant_id, order_id, state, created_at,"
                           " updated_at) VALUES ($1, $2, 'PENDING', CAST($3 AS BIGINT),"
                           " CAST($3 AS BIGINT)) ON CONFLICT (tenant_id, order_id) DO NOTHING",
                           p, 3, NULL, e);
    db_stmt *s =
        rc ? NULL
           : db_prepare_texts(tx,
                              "UPDATE order_fulfillments SET state = 'CLAIMED', claim_token = $4,"
                              " claimed_at = CAST($3 AS BIGINT), updated_at = CAST($3 AS BIGINT),"
                              " attempts = CASE WHEN state = 'FAILED' THEN 1 ELSE attempts + 1 END,"
                              " forced_by = COALESCE($7, forced_by)"
                              " WHERE tenant_id = $1 AND order_id = $2 AND (state IN ('PENDING',"
                              " 'RETRY') OR (state = 'CLAIMED' AND claimed_at < CAST($5 AS BIGINT))"
                              " OR (state = 'FAILED' AND $6 = '1')) RETURNING attempts",
                              p, 7, e);
    if (rc || !s)
        return rc ? rc : db_err_code(e);
    rc = db_step(s, e);
    if (rc == DB_ROW) {
        k->claimed = true;
        k->attempts = (int)db_col_int64(s, 0);
    }
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

static int claim_tx(db_conn *tx, void *ctx, err *e)
{
    claim *k = ctx;
    k->found = k->claimed = false;
    k->held_until = 0;
    char state[16] = "";
    int64_t claimed_at = 0;
    int rc = read_order(tx, k, state, &claimed_at, e);
    if (rc || !k->found)
        return rc;
    if (str_eq(state, "DONE"))
        k->outcome = ORDERS_FULFIL_ALREADY;
    else if (k->status == ORDER_CANCELLED)
        k->outcome = ORDERS_FULFIL_CANCELLED;
    else if (k->status != ORDER_COMPLETED && !k->o->force)
        k->outcome = ORDERS_FULFIL_NOT_COMPLETED;
    else if (str_eq(state, "FAILED") && !k->o->operator)
        k->outcome = ORDERS_FULFIL_FAILED;
    else
        k->outcome = ORDERS_FULFIL_IN_PROGRESS;
    if (k->outcome != ORDERS_FULFIL_IN_PROGRESS)
        return 0;
    rc = take_claim(tx, k, clock_now_ms(), e);
    if (rc == 0 && !k->claimed && str_eq(state, "CLAIMED"))
        k->held_until = claimed_at + ORDERS_FULFILLMENT_STALE_MS;
    if (rc || !k->claimed || !k->o->force)
        return rc;
    json_t *meta =
        json_pack("{s:s?,s:s}", "userId", k->o->user_id, "status", order_status_name(k->status));
    char msg[256];
    snprintf(msg, sizeof msg, "Order %s force-fulfilled by an operator (status %s)", k->number,
             order_status_name(k->status));
    eventlog_entry en = {.tenant_id = k->tenant_id,
                         .event_type = ORDERS_LOG_FULFILLMENT_FORCED,
                         .severity = EVENTLOG_WARNING,
                         .message = msg,
                         .order_id = k->order_id,
                         .user_id = k->o->user_id,
                         .metadata = meta};
    rc = meta ? eventlog_write(tx, &en, NULL, e) : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(meta);
    return rc;
}

/* ---- Shopify -------------------------------------------------------------------------- */

/* What the Shopify side of one attempt came to. */
typedef struct shop_outcome {
    int rc;            /* 0, F3_ETRANSIENT or a permanent code */
    bool found_closed; /* nothing left to fulfil: Shopify has it fulfilled already */
    long retry_after_ms;
    char ids[SHOPIFY_ID_LEN * 4];
    char error[ERR_MSG_MAX];
} shop_outcome;

static void note_error(shop_outcome *so, int rc, const shopify_call *call, const err *e)
{
    so->rc = rc == F3_ETRANSIENT ? F3_ETRANSIENT : (rc ? rc : F3_EPERMANENT);
    if (call && call->retry_after_ms > so->retry_after_ms)
        so->retry_after_ms = call->retry_after_ms;
    snprintf(so->error, sizeof so->error, "%s", e->msg[0] ? e->msg : "Shopify call failed");
}

/* Starts the claim's stale clock again before a Shopify call (see ORDERS_FULFILLMENT_STALE_MS):
 * false, noted in so as transient, when the claim is no longer ours (taken over) - the
 * caller then stops calling - or the database failed. */
static bool renew_claim(db_conn *c, const claim *k, shop_outcome *so)
{
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *p[] = {k->tenant_id, k->order_id, k->token, now};
    int64_t n = 0;
    err e;
    err_clear(&e);
    int rc = db_exec_texts(c,
                           "UPDATE order_fulfillments SET claimed_at = CAST($4 AS BIGINT)"
                           " WHERE tenant_id = $1 AND order_id = $2 AND claim_token = $3 AND"
                           " state = 'CLAIMED'",
                           p, 4, &n, &e);
    if (rc == 0 && n == 0)
        rc = err_set(&e, F3_ETRANSIENT, "the fulfilment claim of order %s was taken over",
                     k->order_id);
    if (rc)
        note_error(so, F3_ETRANSIENT, NULL, &e);
    return rc == 0;
}

/* Fulfils the fulfillable fulfillment orders of one location (the first found still
 * open), all remaining quantities, in one request. 1 when a fulfillment was created, 0
 * when nothing is left to fulfil, or the failing call's code (noted in so). */
static int fulfil_location(db_conn *dbc, shopify_client *c, const shopify_fulfillment_orders *fos,
                           const claim *k, bool *done_any, shop_outcome *so)
{
    const char *location = NULL;
    shopify_fo_selection sel[16];
    shopify_fo_line_selection lines[16][32];
    size_t n = 0;
    for (size_t i = 0; i < fos->count && n < 16; i++) {
        const shopify_fulfillment_order *fo = &fos->items[i];
        if (!shopify_fulfillment_order_fulfillable(fo))
            continue;
        if (location && !str_eq(location, fo->assigned_location_id))
            continue;
        size_t m = 0;
        for (size_t j = 0; j < fo->line_item_count && m < 32; j++)
            if (fo->line_items[j].fulfillable_quantity > 0)
                lines[n][m++] = (shopify_fo_line_selection){fo->line_items[j].id,
                                                            fo->line_items[j].fulfillable_quantity};
        if (m == 0)
            continue;
        location = fo->assigned_location_id;
        sel[n] = (shopify_fo_selection){fo->id, lines[n], m};
        n++;
    }
    if (n == 0)
        return 0;
    shopify_fulfillment_request rq = {
        .orders = sel,
        .order_count = n,
        .tracking_number = k->tracking_number[0] ? k->tracking_number : NULL,
        .tracking_company = k->carrier[0] ? carrier_name(k->carrier) : NULL,
        .tracking_url = k->tracking_number[0] && k->tracking_url[0] ? k->tracking_url : NULL,
        .notify_customer = true};
    if (!renew_claim(dbc, k, so))
        return so->rc;
    shopify_fulfillment out;
    shopify_call call;
    err e;
    err_clear(&e);
    int rc = shopify_create_fulfillment(c, &rq, &out, &call, &e);
    if (rc == 0) {
        size_t len = strlen(so->ids);
        snprintf(so->ids + len, sizeof so->ids - len, "%s%s", len ? "," : "", out.id);
        *done_any = true;
    } else {
        note_error(so, rc, &call, &e);
    }
    shopify_fulfillment_free(&out);
    return rc ? rc : 1;
}

/* Shopify has the order fulfilled already (most likely by a worker killed after its call
 * and before recording it): reads the ids of its fulfillments into so->ids, so the order is
 * recorded with them. A failed read leaves them empty; the order is recorded fulfilled all
 * the same. */
static void found_ids(shopify_client *c, const claim *k, shop_outcome *so)
{
    shopify_call call;
    err e;
    err_clear(&e);
    if (shopify_list_fulfillment_ids(c, k->shopify_order_id, so->ids, sizeof so->ids, &call, &e))
        log_warn("cannot read the fulfillments of an order found fulfilled in Shopify", "orderId",
                 k->order_id, "reason", e.msg);
}

static void call_shopify(orders_fulfillment *f, db_conn *dbc, const claim *k, shop_outcome *so)
{
    memset(so, 0, sizeof *so);
    so->retry_after_ms = -1;
    err e;
    err_clear(&e);
    shop_conn conn;
    int rc = shop_conn_of_tenant(f->db, f->key, k->tenant_id, &conn, &e);
    shopify_client *c = rc == 0 ? shop_conn_client(&conn, &e) : NULL;
    if (rc == F3_ENOTFOUND)
        err_set(&e, F3_EPERMANENT, "the tenant has no connected Shopify shop");
    if (!c) {
        note_error(so, rc == F3_EIO || rc == F3_EBUSY ? F3_ETRANSIENT : F3_EPERMANENT, NULL, &e);
        shop_conn_clear(&conn);
        return;
    }
    bool done_any = false;
    /* One fulfillment per location: read the fulfillment orders again after each. */
    for (int round = 0; round < 8; round++) {
        shopify_fulfillment_orders fos;
        shopify_call call;
        if (!renew_claim(dbc, k, so))
            break;
        rc = shopify_get_fulfillment_orders(c, k->shopify_order_id, &fos, &call, &e);
        if (rc) {
            note_error(so, rc, &call, &e);
            break;
        }
        bool closed = false;
        for (size_t i = 0; i < fos.count; i++)
            closed |= str_eq(fos.items[i].status, "closed");
        rc = fulfil_location(dbc, c, &fos, k, &done_any, so);
        shopify_fulfillment_orders_free(&fos);
        if (rc < 0)
            break;
        if (rc == 0) { /* nothing left to fulfil */
            if (!done_any && closed) {
                so->found_closed = true;
                found_ids(c, k, so);
            } else if (!done_any) {
                err_set(&e, F3_EPERMANENT,
                        "Shopify has no fulfillable fulfillment order for this order");
                note_error(so, F3_EPERMANENT, NULL, &e);
            }
            break;
        }
    }
    shopify_client_free(c);
    shop_conn_clear(&conn);
}

/* ---- outcomes ------------------------------------------------------------------------- */

typedef struct finish {
    orders_fulfillment *f;
    const claim *k;
    const shop_outcome *so;
    orders_fulfil_result *r;
} finish;

static int log_entry(db_conn *tx, const claim *k, const char *type, eventlog_severity sev,
                     const char *msg, json_t *meta, err *e)
{
    eventlog_entry en = {.tenant_id = k->tenant_id,
                         .event_type = type,
                         .severity = sev,
                         .message = msg,
                         .order_id = k->order_id,
                         .user_id = k->o->user_id,
                         .metadata = meta};
    int rc = meta ? eventlog_write(tx, &en, NULL, e) : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(meta);
    return rc;
}

static int finish_done(db_conn *tx, const finish *fi, err *e)
{
    const claim *k = fi->k;
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *ids = fi->so->ids[0] ? fi->so->ids : NULL;
    const char *p[] = {k->tenant_id,
                       k->order_id,
                       k->token,
                       ids,
                       now,
                       k->tracking_number[0] ? k->tracking_number : NULL,
                       k->tracking_url[0] ? k->tracking_url : NULL,
                       k->carrier[0] ? k->carrier : NULL};
    int64_t n = 0;
    int rc = db_exec_texts(tx,
                           "UPDATE order_fulfillments SET state = 'DONE', claim_token = NULL,"
                           " shopify_fulfillment_id = $4, last_error = NULL,"
                           " updated_at = CAST($5 AS BIGINT) WHERE tenant_id = $1 AND"
                           " order_id = $2 AND claim_token = $3",
                           p, 5, &n, e);
    if (rc == 0 && n == 0)
        return err_set(e, F3_ECONFLICT, "the fulfilment claim of order %s was taken over",
                       k->order_id);
    const char *q[] = {k->tenant_id, k->order_id, ids, now, p[5], p[6], p[7]};
    rc = rc ? rc
            : db_exec_texts(tx,
                            "UPDATE orders SET shopify_fulfillment_id = COALESCE($3,"
                            " shopify_fulfillment_id), tracking_number = COALESCE($5,"
                            " tracking_number), tracking_url = COALESCE($6, tracking_url),"
                            " tracking_carrier = COALESCE($7, tracking_carrier),"
                            " fulfilled_at = CAST($4 AS BIGINT), updated_at = CAST($4 AS BIGINT)"
                            " WHERE tenant_id = $1 AND id = $2",
                            q, 7, NULL, e);
    if (rc)
        return rc;
    /* Shopify had it fulfilled already (found_ids): recorded with the ids read back, or,
     * when they could not be read, fulfilled (fulfilled_at, the event) without them. */
    if (fi->so->found_closed && !ids)
        log_warn("order found fulfilled in Shopify; recorded without its fulfillment id", "orderId",
                 k->order_id);
    char msg[256];
    snprintf(msg, sizeof msg,
             fi->so->found_closed ? "Order %s was already fulfilled in Shopify; recorded"
                                  : "Order %s fulfilled in Shopify",
             k->number);
    return log_entry(tx, k, ORDERS_LOG_FULFILLED, EVENTLOG_INFO, msg,
                     json_pack("{s:s?,s:s?,s:s?,s:b,s:b,s:b}", "fulfillmentId", ids,
                               "trackingNumber", p[5], "trackingUrl", p[6], "notifyCustomer", 1,
                               "forced", k->o->force, "foundInShopify", fi->so->found_closed),
                     e);
}

/* The FULFILLMENT entry of a first try that failed transiently, unless one is pending;
 * due after the base delay or the provider's Retry-After, whichever is later. */
static int enqueue_retry(db_conn *tx, const finish *fi, err *e)
{
    const claim *k = fi->k;
    int64_t delay = fi->f->retry_base_ms;
    int64_t after = fi->so->retry_after_ms;
    if (after > delay)
        delay = after < RETRY_MAX_DELAY_MS ? after : RETRY_MAX_DELAY_MS;
    fi->r->retry_in_ms = delay;
    json_t *payload = json_pack("{s:s}", "orderId", k->order_id);
    if (!payload)
        return err_set(e, F3_ENOMEM, "out of memory");
    retry_enqueue_opts o = {.tenant_id = k->tenant_id,
                            .type = RETRY_FULFILLMENT,
                            .payload = payload,
                            .max_attempts = fi->f->max_attempts,
                            .delay_ms = delay,
                            .dedupe = true};
    int rc = retry_enqueue_with(tx, &o, NULL, e);
    json_decref(payload);
    return rc;
}

static int set_state(db_conn *tx, const claim *k, const char *state, const char *error, err *e)
{
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *p[] = {k->tenant_id, k->order_id, k->token, state, error, now};
    int64_t n = 0;
    int rc = db_exec_texts(tx,
                           "UPDATE order_fulfillments SET state = $4, claim_token = NULL,"
                           " last_error = $5, updated_at = CAST($6 AS BIGINT) WHERE"
                           " tenant_id = $1 AND order_id = $2 AND claim_token = $3",
                           p, 6, &n, e);
    if (rc == 0 && n == 0)
        return err_set(e, F3_ECONFLICT, "the fulfilment claim of order %s was taken over",
                       k->order_id);
    return rc;
}

/* A transient failure the retry queue will try again. */
static int finish_retrying(db_conn *tx, const finish *fi, err *e)
{
    const claim *k = fi->k;
    int rc = set_state(tx, k, "RETRY", fi->so->error, e);
    if (rc == 0 && !k->o->by_retry_queue)
        rc = enqueue_retry(tx, fi, e);
    else if (rc == 0)
        fi->r->retry_in_ms = fi->so->retry_after_ms > 0 ? fi->so->retry_after_ms : 0;
    if (rc)
        return rc;
    char msg[ERR_MSG_MAX + 256];
    snprintf(msg, sizeof msg, "Fulfilment of order %s failed (attempt %d), retrying: %s", k->number,
             k->attempts, fi->so->error);
    return log_entry(tx, k, ORDERS_LOG_FULFILLMENT_RETRY, EVENTLOG_WARNING, msg,
                     json_pack("{s:s,s:i,s:I}", "error", fi->so->error, "attempt", k->attempts,
                               "retryInMs", (json_int_t)fi->r->retry_in_ms),
                     e);
}

/* A permanent failure (alerted here), or the last attempt of a retry entry failing
 * transiently (the retry queue alerts for its exhaustion: one alert, not two). */
static int finish_failed(db_conn *tx, const finish *fi, bool exhausted, err *e)
{
    const claim *k = fi->k;
    int rc = set_state(tx, k, "FAILED", fi->so->error, e);
    if (rc)
        return rc;
    char msg[ERR_MSG_MAX + 256];
    snprintf(msg, sizeof msg,
             exhausted ? "Fulfilment of order %s failed, retries exhausted: %s"
                       : "Fulfilment of order %s failed permanently: %s",
             k->number, fi->so->error);
    json_t *meta = json_pack("{s:s,s:i,s:b,s:b}", "error", fi->so->error, "attempts", k->attempts,
                             "requiresAttention", 1, "retriesExhausted", exhausted);
    if (!exhausted) {
        rc = orders_alert(tx, k->tenant_id, k->order_id, "FULFILLMENT_FAILED", false, msg, meta, e);
        fi->r->alerted = rc == 0;
    }
    if (rc == 0)
        rc = log_entry(tx, k, ORDERS_LOG_FULFILLMENT_FAILED, EVENTLOG_ERROR, msg, meta, e);
    else
        json_decref(meta);
    return rc;
}

static int finish_tx(db_conn *tx, void *ctx, err *e)
{
    const finish *fi = ctx;
    fi->r->alerted = false;
    fi->r->retry_in_ms = 0;
    if (fi->so->rc == 0)
        return finish_done(tx, fi, e);
    bool transient = fi->so->rc == F3_ETRANSIENT;
    bool exhausted = transient && fi->k->o->by_retry_queue && fi->k->o->last_attempt;
    if (transient && !exhausted) {
        fi->r->outcome = ORDERS_FULFIL_RETRYING;
        return finish_retrying(tx, fi, e);
    }
    fi->r->outcome = ORDERS_FULFIL_FAILED;
    return finish_failed(tx, fi, exhausted, e);
}

static void emit_fulfilled(orders_fulfillment *f, const claim *k, const char *ids)
{
    if (!f->emitter)
        return;
    json_t *payload = json_pack("{s:s,s:s,s:s?,s:s?}", "orderId", k->order_id, "tenantId",
                                k->tenant_id, "fulfillmentId", ids, "trackingNumber",
                                k->tracking_number[0] ? k->tracking_number : NULL);
    if (payload)
        bus_emitter_emit(f->emitter, BUS_IEV_ORDER_FULFILLED, payload);
    json_decref(payload);
}

/* fulfillment.retrying / fulfillment.failed (seed 001's FulfillmentFailedEvent), for
 * listeners such as notifications; after the commit. */
static void emit_failed(orders_fulfillment *f, const claim *k, const orders_fulfil_result *r)
{
    if (!f->emitter)
        return;
    bool retry = r->outcome == ORDERS_FULFIL_RETRYING;
    json_t *payload =
        json_pack("{s:s,s:s,s:s,s:b,s:I}", "orderId", k->order_id, "tenantId", k->tenant_id,
                  "error", r->error, "willRetry", retry, "retryInMs", (json_int_t)r->retry_in_ms);
    if (payload)
        bus_emitter_emit(
            f->emitter, retry ? BUS_IEV_FULFILLMENT_RETRYING : BUS_IEV_FULFILLMENT_FAILED, payload);
    json_decref(payload);
}

typedef struct follow_tx {
    orders_fulfillment *f;
    const claim *k;
} follow_tx;

static int follow_body(db_conn *tx, void *ctx, err *e)
{
    follow_tx *t = ctx;
    int64_t delay = t->k->held_until - clock_now_ms() + 1000;
    return add_job(t->f, tx, t->k->tenant_id, t->k->order_id, delay > 0 ? delay : 0, e);
}

/* Another worker holds the order's claim. It finishes the fulfilment, unless its process
 * died: then nothing would ever look at the order again (the job that found the claim
 * held completes). A job due when the claim would be stale looks again: it finds the
 * fulfilment done, or takes the claim over. */
static int follow_claim(orders_fulfillment *f, db_conn *c, const claim *k, err *e)
{
    follow_tx t = {f, k};
    return db_tx(c, follow_body, &t, e);
}

int orders_fulfil(orders_fulfillment *f, const char *tenant_id, const char *order_id,
                  const orders_fulfil_opts *o, orders_fulfil_result *r, err *e)
{
    orders_fulfil_opts none = {0};
    memset(r, 0, sizeof *r);
    claim k = {.tenant_id = tenant_id, .order_id = order_id, .o = o ? o : &none};
    uuid_v4(k.token);
    db_conn *c = db_acquire(f->db, e);
    if (!c)
        return db_err_code(e);
    int rc = db_tx(c, claim_tx, &k, e);
    if (rc == 0 && !k.found)
        rc = err_set(e, F3_ENOTFOUND, "Order not found: %s", order_id);
    if (rc)
        goto out;
    snprintf(r->order_status, sizeof r->order_status, "%s", order_status_name(k.status));
    snprintf(r->fulfillment_id, sizeof r->fulfillment_id, "%s", k.fulfillment_id);
    snprintf(r->tracking_number, sizeof r->tracking_number, "%s", k.tracking_number);
    r->outcome = k.outcome;
    if (!k.claimed) {
        log_info("fulfilment not attempted", "orderId", order_id, "outcome",
                 orders_fulfil_outcome_name(k.outcome));
        if (k.held_until > 0)
            rc = follow_claim(f, c, &k, e);
        goto out;
    }
    shop_outcome so;
    call_shopify(f, c, &k, &so);
    r->outcome = so.found_closed ? ORDERS_FULFIL_ALREADY : ORDERS_FULFIL_DONE;
    finish fi = {f, &k, &so, r};
    rc = db_tx(c, finish_tx, &fi, e);
    if (rc)
        goto out;
    snprintf(r->error, sizeof r->error, "%s", so.rc ? so.error : "");
    if (so.rc == 0) {
        snprintf(r->fulfillment_id, sizeof r->fulfillment_id, "%s", so.ids);
        log_info("order fulfilled in Shopify", "orderId", order_id, "fulfillmentId", so.ids);
        emit_fulfilled(f, &k, so.ids);
    } else {
        log_warn("fulfilment failed", "orderId", order_id, "outcome",
                 orders_fulfil_outcome_name(r->outcome), "reason", so.error);
        emit_failed(f, &k, r);
    }
out:
    db_release(c);
    return rc;
}

/* ---- bus: jobs and events -------------------------------------------------------------- */

static int fulfil_job(bus_delivery *dl, void *ctx, err *e)
{
    orders_fulfillment *f = ctx;
    const bus_job *job = bus_delivery_job(dl);
    json_error_t je;
    json_t *data = json_loads(job->data ? job->data : "", 0, &je);
    const char *tenant = json_string_value(json_object_get(data, "tenantId"));
    const char *order = json_string_value(json_object_get(data, "orderId"));
    int rc;
    if (!tenant || !order) {
        rc = err_set(e, F3_EINVAL, "fulfilment job without tenantId or orderId");
    } else {
        orders_fulfil_result r;
        rc = orders_fulfil(f, tenant, order, NULL, &r, e);
        if (rc == F3_ENOTFOUND)
            rc = err_set(e, F3_EINVAL, "fulfilment job for an unknown order %s", order);
    }
    json_decref(data);
    return rc;
}

/* A FULFILLMENT entry of the retry queue: fulfils again and maps the outcome. */
static int fulfil_retry_handler(const retry_entry *en, void *ctx, err *e)
{
    orders_fulfillment *f = ctx;
    const char *order = json_string_value(json_object_get(en->payload, "orderId"));
    if (!order || !*order)
        return err_set(e, F3_EINVAL, "FULFILLMENT entry without orderId");
    /* An operator's manual retry of a failed entry is an operator's request. */
    orders_fulfil_opts o = {.operator= en->manual,
                            .by_retry_queue = true,
                            .last_attempt = en->attempt >= en->max_attempts};
    orders_fulfil_result r;
    int rc = orders_fulfil(f, en->tenant_id, order, &o, &r, e);
    if (rc == F3_ENOTFOUND)
        return err_set(e, F3_EINVAL, "FULFILLMENT entry for an unknown order %s", order);
    if (rc)
        return rc; /* a database error: tried again */
    /* IN_PROGRESS: its holder finishes it (and queues its own retry entry if it fails), or -
     * when the holder died - the job orders_fulfil added for when the claim is stale. */
    switch (r.outcome) {
    case ORDERS_FULFIL_DONE:
    case ORDERS_FULFIL_ALREADY:
    case ORDERS_FULFIL_CANCELLED:
    case ORDERS_FULFIL_NOT_COMPLETED:
    case ORDERS_FULFIL_IN_PROGRESS:
        return 0;
    case ORDERS_FULFIL_RETRYING:
        en->advice->retry_after_ms = r.retry_in_ms;
        return err_set(e, F3_ETRANSIENT, "%s", r.error);
    case ORDERS_FULFIL_FAILED:
        break;
    }
    if (r.error[0] && !r.alerted) /* the last attempt failed transiently: exhausted */
        return err_set(e, F3_ETRANSIENT, "%s", r.error);
    /* Failed permanently now (alerted just now) or before (alerted then). */
    en->advice->alerted = true;
    return err_set(e, F3_EPERMANENT, "%s",
                   r.error[0] ? r.error : "the fulfilment had failed permanently before");
}

static const char *field(const bus_envelope *env, const char *name)
{
    return json_string_value(json_object_get(env->root, name));
}

static int on_shipment_created(bus_delivery *dl, void *ctx, err *e)
{
    orders_fulfillment *f = ctx;
    const bus_envelope *env = bus_delivery_envelope(dl);
    if (!env)
        return err_set(e, F3_EINVAL, "shipment.created without an envelope");
    orders_tracking t = {field(env, "trackingNumber"), field(env, "trackingUrl"),
                         field(env, "carrier"), field(env, "shipmentId")};
    db_conn *tx = bus_delivery_tx(dl, e);
    if (!tx)
        return db_err_code(e);
    return orders_fulfillment_request(f, tx, env->tenant_id, field(env, "orderId"), &t, e);
}

static int on_shipment_status(bus_delivery *dl, void *ctx, err *e)
{
    (void)ctx;
    const bus_envelope *env = bus_delivery_envelope(dl);
    if (!env)
        return err_set(e, F3_EINVAL, "shipment.status-changed without an envelope");
    const char *order_id = field(env, "orderId"), *status = field(env, "newStatus");
    db_conn *tx = bus_delivery_tx(dl, e);
    if (!tx)
        return db_err_code(e);
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *p[] = {env->tenant_id, order_id, status, now,
                       str_case_eq(status, "Delivered") ? "1" : "0"};
    int64_t n = 0;
    int rc =
        db_exec_texts(tx,
                      "UPDATE orders SET shipment_status = $3, updated_at = CAST($4 AS BIGINT),"
                      " shipment_delivered_at = CASE WHEN $5 = '1' THEN"
                      " COALESCE(shipment_delivered_at, CAST($4 AS BIGINT)) ELSE"
                      " shipment_delivered_at END WHERE tenant_id = $1 AND id = $2",
                      p, 5, &n, e);
    if (rc || n == 0)
        return rc; /* an order we do not know: nothing to keep current */
    char msg[256];
    snprintf(msg, sizeof msg, "Shipment status: %s", status);
    json_t *meta = json_pack("{s:s?,s:s?,s:s?}", "shipmentId", field(env, "shipmentId"),
                             "previousStatus", field(env, "previousStatus"), "newStatus", status);
    eventlog_entry en = {.tenant_id = env->tenant_id,
                         .event_type = ORDERS_LOG_SHIPMENT_STATUS,
                         .severity = EVENTLOG_INFO,
                         .message = msg,
                         .order_id = order_id,
                         .metadata = meta};
    rc = eventlog_write(tx, &en, NULL, e);
    json_decref(meta);
    return rc;
}

int orders_fulfillment_ready_tx(orders_fulfillment *f, db_conn *tx, const char *tenant_id,
                                const char *order_id, err *e)
{
    bool shipping = false;
    int rc =
        orders_integration_connected(tx, tenant_id, ORDERS_INTEGRATION_SENDCLOUD, &shipping, e);
    if (rc == 0 && !shipping)
        rc = orders_fulfillment_request(f, tx, tenant_id, order_id, NULL, e);
    if (rc == 0)
        log_info(shipping ? "ready for fulfilment: waiting for the shipment"
                          : "ready for fulfilment: no shipping integration, fulfilling",
                 "orderId", order_id);
    return rc;
}

int orders_fulfillment_on_ready(const char *event, const json_t *payload, void *ctx, err *e)
{
    (void)event;
    orders_fulfillment *f = ctx;
    const char *tenant = json_string_value(json_object_get(payload, "tenantId"));
    const char *order = json_string_value(json_object_get(payload, "orderId"));
    if (!tenant || !order)
        return err_set(e, F3_EINVAL, "order.ready-for-fulfillment without tenantId or orderId");
    db_conn *c = db_acquire(f->db, e);
    if (!c)
        return db_err_code(e);
    /* On SQLite the emitting thread's open transaction is joined (the same connection);
     * otherwise a short transaction of our own. */
    bool own = !db_in_transaction(c);
    int rc = own ? db_begin(c, e) : 0;
    rc = rc ? rc : orders_fulfillment_ready_tx(f, c, tenant, order, e);
    if (own)
        rc = rc ? (db_rollback(c, NULL), rc) : db_commit(c, e);
    db_release(c);
    return rc;
}

/* ---- routes ---------------------------------------------------------------------------- */

static int http_status_of(orders_fulfil_outcome o)
{
    switch (o) {
    case ORDERS_FULFIL_DONE:
    case ORDERS_FULFIL_ALREADY:
        return 200;
    case ORDERS_FULFIL_IN_PROGRESS:
    case ORDERS_FULFIL_RETRYING:
        return 202;
    case ORDERS_FULFIL_CANCELLED:
    case ORDERS_FULFIL_NOT_COMPLETED:
        return 409;
    case ORDERS_FULFIL_FAILED:
        return 502;
    }
    return 500;
}

static int fulfil_route(http_request *req, http_response *res, void *ctx, bool force)
{
    orders_fulfillment *f = ctx;
    const user_ctx *u = user_ctx_of(req);
    if (!u || !u->tenant_id[0])
        return http_res_error(res, 401, "Authentication required");
    const char *order_id = http_req_param(req, "orderId");
    orders_fulfil_opts o = {.force = force, .operator= true, .user_id = u->user_id};
    orders_fulfil_result r;
    err e;
    err_clear(&e);
    int rc = orders_fulfil(f, u->tenant_id, order_id, &o, &r, &e);
    if (rc == F3_ENOTFOUND)
        return http_res_error(res, 404, "Order not found: %s", order_id);
    if (rc) {
        log_error("fulfilment request failed", "orderId", order_id, "reason", e.msg);
        return http_res_error(res, 503, "Fulfilment could not be recorded; try again");
    }
    int status = http_status_of(r.outcome);
    if (status == 409 && r.outcome == ORDERS_FULFIL_CANCELLED)
        return http_res_error(res, 409, "Order %s is cancelled and is never fulfilled", order_id);
    if (status == 409)
        return http_res_error(res, 409,
                              "Order %s is %s, not COMPLETED; use the force route to override",
                              order_id, r.order_status);
    if (status == 502)
        return http_res_error(res, 502, "Fulfilment of order %s failed: %s", order_id,
                              r.error[0] ? r.error : "an earlier attempt failed permanently");
    bool ok = status < 300;
    return http_res_json(
        res, status,
        json_pack("{s:b,s:s,s:s,s:s,s:s?,s:s?,s:s?,s:b}", "success", ok, "orderId", order_id,
                  "outcome", orders_fulfil_outcome_name(r.outcome), "message",
                  ok           ? "Fulfillment created"
                  : r.error[0] ? r.error
                               : "Fulfillment not created",
                  "fulfillmentId", r.fulfillment_id[0] ? r.fulfillment_id : NULL, "trackingNumber",
                  r.tracking_number[0] ? r.tracking_number : NULL, "error",
                  r.error[0] ? r.error : NULL, "forced", force));
}

static int h_fulfil(http_request *req, http_response *res, void *ctx)
{
    return fulfil_route(req, res, ctx, false);
}

static int h_force(http_request *req, http_response *res, void *ctx)
{
    return fulfil_route(req, res, ctx, true);
}

/* ---- wiring ---------------------------------------------------------------------------- */

static int subscribe(orders_fulfillment *f, const orders_fulfillment_deps *d, http_router *r,
                     err *e)
{
    /* Bus default lease (30 s), renewed every lease/3 while the run goes on (bus/worker.c):
     * a slow Shopify call keeps its job, a killed process's run is taken over within 30 s. */
    bus_queue_opts q = {.concurrency = BUS_DEFAULT_CONCURRENCY};
    int rc =
        bus_worker_register(bus_worker_of(f->bus), ORDERS_FULFILLMENT_QUEUE, fulfil_job, f, &q, e);
    rc = rc ? rc : bus_subscribe(f->bus, BUS_EV_SHIPMENT_CREATED, on_shipment_created, f, NULL, e);
    rc = rc ? rc
            : bus_subscribe(f->bus, BUS_EV_SHIPMENT_STATUS_CHANGED, on_shipment_status, f, NULL, e);
    if (rc == 0 && d->retry)
        rc = retry_register(d->retry, RETRY_FULFILLMENT, fulfil_retry_handler, f, e);
    if (rc == 0 && d->emitter &&
        bus_emitter_on(d->emitter, BUS_IEV_ORDER_READY_FOR_FULFILLMENT, orders_fulfillment_on_ready,
                       f) != 0)
        rc = err_set(e, F3_ENOMEM, "out of memory");
    if (rc || !r)
        return rc;
    const http_route routes[] = {
        {"POST", "/api/v1/fulfillments/order/:orderId", h_fulfil, f, PERM_ORDERS_WRITE},
        {"POST", "/api/v1/fulfillments/order/:orderId/force", h_force, f, PERM_ORDERS_WRITE},
    };
    return http_router_add(r, routes, sizeof routes / sizeof routes[0], e);
}

int orders_fulfillment_start(orders_fulfillment **out, const orders_fulfillment_deps *deps,
                             http_router *r, err *e)
{
    *out = NULL;
    if (!deps || !deps->db || !deps->bus || !deps->store || !deps->config)
        return err_set(e, F3_EINVAL, "fulfillment: db, bus, store and config are required");
    if (bus_self(deps->bus) != BUS_SVC_ORDER)
        return err_set(e, F3_EINVAL, "fulfillment: the bus must be the orders service's");
    orders_fulfillment *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(e, F3_ENOMEM, "out of memory");
    f->db = deps->db;
    f->bus = deps->bus;
    f->store = deps->store;
    f->emitter = deps->emitter;
    f->max_attempts = deps->max_attempts > 0 ? deps->max_attempts : RETRY_DEFAULT_MAX_ATTEMPTS;
    f->retry_base_ms = deps->retry_base_ms > 0 ? deps->retry_base_ms : RETRY_BASE_DELAY_MS;
    int rc = secret_key_load(deps->config, f->key, e);
    rc = rc ? rc : subscribe(f, deps, r, e);
    if (rc) {
        orders_fulfillment_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void orders_fulfillment_free(orders_fulfillment *f)
{
    if (!f)
        return;
    crypto_wipe(f->key, sizeof f->key);
    free(f);
}
