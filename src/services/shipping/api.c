/*
 * api.c - the shipping service's HTTP API: the Sendcloud integration settings
 * (PUT/GET/DELETE /api/v1/integrations/sendcloud), the shipment list, detail and label,
 * and the internal routes other services call (/internal/shipments). The routes declare
 * their access; the guard has checked it before a handler runs. Every query filters on
 * the tenant. Keys are never echoed back or logged: the settings show whether they are set.
 */
#include "services/shipping/shipping_internal.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "http/request.h"
#include "http/response.h"
#include "services/access/user_context.h"
#include "services/common/page_cursor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 50
#define LIST_MAX     200
#define KEY_MAX      512
#define SHIP_COLS                                                                                  \
    "id, order_id, provider, provider_shipment_id, provider_parcel_id, status, status_message,"    \
    " carrier, shipping_method, tracking_number, tracking_url, label_url, weight_grams,"           \
    " error_message, api_version, shipped_at, delivered_at, cancelled_at, created_at,"             \
    " updated_at"

/* ---- helpers ------------------------------------------------------------------------- */

static const char *user_tenant(http_request *req, http_response *res)
{
    const user_ctx *u = user_ctx_of(req);
    if (!u || !u->tenant_id[0]) {
        http_res_error(res, 401, "Authentication required");
        return NULL;
    }
    return u->tenant_id;
}

static const char *tenant_param(http_request *req, http_response *res)
{
    const char *t = http_req_query_param(req, "tenantId");
    if (!t || !*t || strlen(t) > SHIPPING_TENANT_MAX) {
        http_res_error(res, 400, "tenantId: query parameter is required");
        return NULL;
    }
    return t;
}

static int db_failed(http_response *res, const char *what, const err *e)
{
    log_error("shipping API: database failure", "what", what, "reason", e->msg);
    return http_res_error(res, 503, "Service unavailable, try again");
}

static json_t *col_str(db_stmt *st, int col)
{
    const char *t = db_col_text(st, col);
    return t ? json_string(t) : json_null();
}

static json_t *col_time(db_stmt *st, int col)
{
    if (db_col_is_null(st, col))
        return json_null();
    char iso[CLOCK_ISO_LEN];
    clock_format_iso(db_col_int64(st, col), iso);
    return json_string(iso);
}

static json_t *shipment_json(db_stmt *st)
{
    json_t *o = json_object();
    static const char *const names[] = {
        "id",          "orderId",       "provider", "providerShipmentId", "providerParcelId",
        "status",      "statusMessage", "carrier",  "shippingMethod",     "trackingNumber",
        "trackingUrl", "labelUrl"};
    for (int i = 0; o && i < 12; i++)
        json_object_set_new(o, names[i], col_str(st, i));
    json_object_set_new(o, "weightGrams",
                        db_col_is_null(st, 12) ? json_null() : json_integer(db_col_int64(st, 12)));
    json_object_set_new(o, "errorMessage", col_str(st, 13));
    json_object_set_new(o, "apiVersion", col_str(st, 14));
    json_object_set_new(o, "shippedAt", col_time(st, 15));
    json_object_set_new(o, "deliveredAt", col_time(st, 16));
    json_object_set_new(o, "cancelledAt", col_time(st, 17));
    json_object_set_new(o, "createdAt", col_time(st, 18));
    json_object_set_new(o, "updatedAt", col_time(st, 19));
    return o;
}

/* Answers the shipment `by` = id (column "id" or "order_id") of the tenant, or 404. */
static int answer_shipment(http_response *res, db_conn *c, const char *tenant, const char *column,
                           const char *value, int status)
{
    err e;
    err_clear(&e);
    const char *t[] = {tenant, value};
    buf sql;
    buf_init(&sql, 4096);
    buf_printf(&sql, "SELECT " SHIP_COLS " FROM shipments WHERE tenant_id = $1 AND %s = $2",
               column);
    db_stmt *st = db_prepare_texts(c, buf_cstr(&sql), t, 2, &e);
    buf_free(&sql);
    if (!st)
        return db_failed(res, "shipment", &e);
    int rc = db_step(st, &e);
    if (rc == DB_ROW)
        rc = http_res_json(res, status, shipment_json(st));
    else if (rc == DB_DONE)
        rc = http_res_error(res, 404, "Shipment not found: %s", value);
    else
        rc = db_failed(res, "shipment", &e);
    db_finalize(st);
    return rc;
}

/* ---- shipments ----------------------------------------------------------------------- */

static int h_list(http_request *req, http_response *res, void *ctx)
{
    shipping_service *s = ctx;
    const char *tenant = user_tenant(req, res);
    if (!tenant)
        return 0;
    const char *status = http_req_query_param(req, "status");
    const char *order = http_req_query_param(req, "orderId");
    const char *carrier = http_req_query_param(req, "carrier");
    const char *limit_text = http_req_query_param(req, "limit");
    const char *cursor = http_req_query_param(req, "cursor");
    int64_t limit = LIST_DEFAULT;
    if (limit_text && (str_to_int64(limit_text, &limit) || limit < 1 || limit > LIST_MAX))
        return http_res_error(res, 400, "limit: must be an integer between 1 and %d", LIST_MAX);
    char c_at[24] = "", c_id[UUID_STR_LEN] = "";
    int64_t c_ms = 0;
    err ce;
    if (cursor && *cursor) {
        if (page_cursor_decode(cursor, &c_ms, c_id, sizeof c_id, &ce) != 0)
            return http_res_error(res, 400, "cursor: not a cursor of this list");
        db_ms_text(c_ms, c_at);
    }
    buf sql;
    buf_init(&sql, 8192);
    const char *params[8];
    int n = 0;
    params[n++] = tenant;
    buf_puts(&sql, "SELECT " SHIP_COLS " FROM shipments WHERE tenant_id = $1");
    if (status && *status) {
        params[n++] = status;
        buf_printf(&sql, " AND status = $%d", n);
    }
    if (order && *order) {
        params[n++] = order;
        buf_printf(&sql, " AND order_id = $%d", n);
    }
    if (carrier && *carrier) {
        params[n++] = carrier;
        buf_printf(&sql, " AND carrier = $%d", n);
    }
    if (c_at[0]) {
        params[n++] = c_at;
        params[n++] = c_id;
        buf_printf(&sql,
                   " AND (created_at < CAST($%d AS BIGINT) OR (created_at = CAST($%d AS BIGINT)"
                   " AND id < $%d))",
                   n - 1, n - 1, n);
    }
    buf_printf(&sql, " ORDER BY created_at DESC, id DESC LIMIT %" PRId64, limit + 1);
    err e;
    err_clear(&e);
    db_conn *c = db_acquire(s->db, &e);
    db_stmt *st = c ? db_prepare_texts(c, buf_cstr(&sql), params, n, &e) : NULL;
    buf_free(&sql);
    if (!st) {
        db_release(c);
        return db_failed(res, "shipments list", &e);
    }
    json_t *data = json_array();
    buf next;
    buf_init(&next, 512);
    int rc;
    int64_t rows = 0;
    while ((rc = db_step(st, &e)) == DB_ROW) {
        if (++rows > limit) {
            json_t *last = json_array_get(data, json_array_size(data) - 1);
            int64_t at = 0;
            clock_parse_iso(json_string_value(json_object_get(last, "createdAt")), &at);
            page_cursor_encode(at, json_string_value(json_object_get(last, "id")), &next);
            break;
        }
        json_array_append_new(data, shipment_json(st));
    }
    db_finalize(st);
    db_release(c);
    if (rc < 0) {
        json_decref(data);
        buf_free(&next);
        return db_failed(res, "shipments list", &e);
    }
    json_t *body = json_pack("{s:o,s:o}", "data", data, "nextCursor",
                             next.len ? json_string(buf_cstr(&next)) : json_null());
    buf_free(&next);
    return http_res_json(res, 200, body);
}

static int h_get(http_request *req, http_response *res, void *ctx)
{
    shipping_service *s = ctx;
    const char *tenant = user_tenant(req, res);
    if (!tenant)
        return 0;
    err e;
    err_clear(&e);
    db_conn *c = db_acquire(s->db, &e);
    if (!c)
        return db_failed(res, "acquire", &e);
    answer_shipment(res, c, tenant, "id", http_req_param(req, "id"), 200);
    db_release(c);
    return 0;
}

static int h_label(http_request *req, http_response *res, void *ctx)
{
    shipping_service *s = ctx;
    const char *tenant = user_tenant(req, res);
    if (!tenant)
        return 0;
    const char *id = http_req_param(req, "id");
    err e;
    err_clear(&e);
    const char *t[] = {tenant, id};
    db_conn *c = db_acquire(s->db, &e);
    db_stmt *st = c ? db_prepare_texts(c,
                                       "SELECT data_base64, content_type FROM shipment_labels"
                                       " WHERE tenant_id = $1 AND shipment_id = $2",
                                       t, 2, &e)
                    : NULL;
    if (!st) {
        db_release(c);
        return db_failed(res, "label", &e);
    }
    buf pdf;
    buf_init(&pdf, 0);
    int rc = db_step(st, &e);
    if (rc == DB_ROW) {
        const char *b64 = db_col_text(st, 0);
        char type[64];
        db_col_copy(st, 1, type, sizeof type);
        if (crypto_base64_decode(b64, strlen(b64), &pdf, &e) == 0) {
            char disposition[128];
            snprintf(disposition, sizeof disposition, "inline; filename=\"label-%.40s.pdf\"", id);
            http_res_header(res, "Content-Disposition", disposition);
            rc = http_res_bytes(res, 200, type, pdf.data, pdf.len);
        } else {
            rc = db_failed(res, "label decode", &e);
        }
    } else if (rc == DB_DONE) {
        rc = http_res_error(res, 404, "Label not found for shipment: %s", id);
    } else {
        rc = db_failed(res, "label", &e);
    }
    buf_free(&pdf);
    db_finalize(st);
    db_release(c);
    return rc;
}

/* ---- internal ------------------------------------------------------------------------ */

typedef struct request_ctx {
    shipping_service *s;
    const char *tenant, *order;
    bool created, found;
    char shipment_id[UUID_STR_LEN];
} request_ctx;

static int request_tx(db_conn *c, void *ctx, err *e)
{
    request_ctx *r = ctx;
    return shipping_request(r->s, c, r->tenant, r->order, &r->created, r->shipment_id, e);
}

static int cancel_tx(db_conn *c, void *ctx, err *e)
{
    request_ctx *r = ctx;
    return shipping_request_cancel(r->s, c, r->tenant, r->order, &r->found, e);
}

static int h_internal_create(http_request *req, http_response *res, void *ctx)
{
    shipping_service *s = ctx;
    const char *tenant = tenant_param(req, res);
    if (!tenant)
        return 0;
    json_t *body = NULL;
    if (http_req_json(req, &body, res))
        return 0;
    const char *order = json_string_value(json_object_get(body, "orderId"));
    int rc;
    if (!order || !*order) {
        rc = http_res_error(res, 400, "orderId: required string");
        goto out;
    }
    request_ctx r = {.s = s, .tenant = tenant, .order = order};
    err e;
    err_clear(&e);
    db_conn *c = db_acquire(s->db, &e);
    rc = c ? db_tx(c, request_tx, &r, &e) : db_err_code(&e);
    if (rc == F3_ENOTFOUND)
        rc = http_res_error(res, 404, "Order not found: %s", order);
    else if (rc)
        rc = db_failed(res, "shipment request", &e);
    else if (!r.shipment_id[0])
        rc = http_res_error(res, 409,
                            "No shipment: Sendcloud is not connected or the order is cancelled");
    else
        rc = answer_shipment(res, c, tenant, "id", r.shipment_id, r.created ? 202 : 200);
    db_release(c);
out:
    json_decref(body);
    return rc;
}

static int h_internal_cancel(http_request *req, http_response *res, void *ctx)
{
    shipping_service *s = ctx;
    const char *tenant = tenant_param(req, res);
    if (!tenant)
        return 0;
    request_ctx r = {.s = s, .tenant = tenant, .order = http_req_param(req, "orderId")};
    err e;
    err_clear(&e);
    db_conn *c = db_acquire(s->db, &e);
    int rc = c ? db_tx(c, cancel_tx, &r, &e) : db_err_code(&e);
    if (rc)
        rc = db_failed(res, "shipment cancel", &e);
    else if (!r.found)
        rc = http_res_error(res, 404, "No shipment for order: %s", r.order);
    else
        rc = answer_shipment(res, c, tenant, "order_id", r.order, 202);
    db_release(c);
    return rc;
}

/* ---- integration settings ------------------------------------------------------------ */

static json_t *settings_json(const shipping_conn *conn, bool found)
{
    if (!found)
        return json_pack("{s:b}", "connected", 0);
    char masked[16] = "";
    if (conn->public_key)
        snprintf(masked, sizeof masked, "%.4s...", conn->public_key);
    char iso[CLOCK_ISO_LEN];
    clock_format_iso(conn->updated_at, iso);
    return json_pack(
        "{s:b,s:s,s:s?,s:b,s:o,s:s?,s:o,s:s}", "connected", conn->connected, "apiVersion",
        conn->api_version, "publicKey", conn->public_key ? masked : NULL, "webhookSecretSet",
        conn->webhook_secret != NULL, "senderAddressId",
        conn->sender_address_id > 0 ? json_integer(conn->sender_address_id) : json_null(),
        "shippingOptionCode", conn->shipping_option_code, "shippingMethodId",
        conn->shipping_method_id > 0 ? json_integer(conn->shipping_method_id) : json_null(),
        "updatedAt", iso);
}

static int answer_settings(shipping_service *s, http_response *res, const char *tenant)
{
    err e;
    err_clear(&e);
    shipping_conn conn;
    memset(&conn, 0, sizeof conn);
    db_conn *c = db_acquire(s->db, &e);
    int rc = c ? shipping_conn_load(s, c, tenant, &conn, &e) : db_err_code(&e);
    db_release(c);
    if (rc && rc != F3_ENOTFOUND)
        return db_failed(res, "sendcloud settings", &e);
    rc = http_res_json(res, 200, settings_json(&conn, rc == 0));
    shipping_conn_clear(&conn);
    return rc;
}

static int h_settings_get(http_request *req, http_response *res, void *ctx)
{
    const char *tenant = user_tenant(req, res);
    return tenant ? answer_settings(ctx, res, tenant) : 0;
}

typedef struct save_ctx {
    shipping_service *s;
    const shipping_conn *conn;
    const char *user_id;
    const char *action;
    bool changed;
} save_ctx;

static int publish_change(save_ctx *sc, db_conn *tx, err *e)
{
    json_t *fields = json_pack("{s:s}", "action", sc->action);
    int rc = fields ? bus_publish(sc->s->bus, tx, BUS_EV_INTEGRATION_SENDCLOUD_CHANGED,
                                  sc->conn->tenant_id, fields, e)
                    : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(fields);
    eventlog_entry en = {.tenant_id = sc->conn->tenant_id,
                         .event_type = BUS_EV_INTEGRATION_SENDCLOUD_CHANGED,
                         .severity = EVENTLOG_INFO,
                         .message = str_eq(sc->action, "connected") ? "Sendcloud connected"
                                                                    : "Sendcloud disconnected",
                         .user_id = sc->user_id};
    return rc ? rc : eventlog_write(tx, &en, NULL, e);
}

static int save_tx(db_conn *c, void *ctx, err *e)
{
    save_ctx *sc = ctx;
    int rc = shipping_conn_save(sc->s, c, sc->conn, NULL, e);
    return rc ? rc : publish_change(sc, c, e);
}

static int disconnect_tx(db_conn *c, void *ctx, err *e)
{
    save_ctx *sc = ctx;
    int rc = shipping_conn_disconnect(c, sc->conn->tenant_id, &sc->changed, e);
    return rc || !sc->changed ? rc : publish_change(sc, c, e);
}

/* Reads the PUT body into conn (keys borrowed from body). 0, or the 400 answered. */
static int read_settings(const json_t *body, shipping_conn *conn, http_response *res)
{
    err e;
    const char *pub = NULL, *sec = NULL, *hook = NULL, *version = NULL, *option = NULL;
    int64_t sender = 0, method = 0;
    if (!json_is_object(body) || json_get_string(body, "publicKey", &pub, &e) ||
        json_get_string(body, "secretKey", &sec, &e) ||
        json_opt_string(body, "webhookSecret", &hook, NULL, &e) ||
        json_opt_string(body, "apiVersion", &version, "v3", &e) ||
        json_opt_string(body, "shippingOptionCode", &option, NULL, &e) ||
        json_opt_int(body, "senderAddressId", &sender, 0, &e) ||
        json_opt_int(body, "shippingMethodId", &method, 0, &e)) {
        http_res_error(res, 400, "%s", e.msg);
        return F3_EINVAL;
    }
    int v = sendcloud_api_version_parse(version);
    if (!*pub || !*sec || strlen(pub) > KEY_MAX || strlen(sec) > KEY_MAX ||
        (hook && strlen(hook) > KEY_MAX) || strchr(pub, ':')) {
        http_res_error(res, 400, "publicKey and secretKey: required, at most %d characters",
                       KEY_MAX);
        return F3_EINVAL;
    }
    if (v < 0 || sender < 0 || method < 0 || (option && strlen(option) > 100)) {
        http_res_error(res, 400,
                       "apiVersion must be v3 or v2; ids must be positive; shippingOptionCode "
                       "at most 100 characters");
        return F3_EINVAL;
    }
    conn->connected = true;
    conn->public_key = (char *)pub;
    conn->secret_key = (char *)sec;
    conn->webhook_secret = hook && *hook ? (char *)hook : NULL;
    snprintf(conn->api_version, sizeof conn->api_version, "%s",
             v == SENDCLOUD_API_V2 ? "v2" : "v3");
    conn->sender_address_id = sender;
    conn->shipping_option_code = option && *option ? (char *)option : NULL;
    conn->shipping_method_id = method;
    return 0;
}

static int h_settings_put(http_request *req, http_response *res, void *ctx)
{
    shipping_service *s = ctx;
    const char *tenant = user_tenant(req, res);
    if (!tenant)
        return 0;
    json_t *body = NULL;
    if (http_req_json(req, &body, res))
        return 0;
    shipping_conn conn;
    memset(&conn, 0, sizeof conn);
    snprintf(conn.tenant_id, sizeof conn.tenant_id, "%s", tenant);
    int rc = 0;
    if (read_settings(body, &conn, res))
        goto out;
    /* Checked against Sendcloud before anything is stored. */
    err e;
    err_clear(&e);
    sendcloud_call call = {.retry_after_ms = -1};
    sendcloud_client *client = shipping_conn_client(s, &conn, NULL, &e);
    int vrc = client ? sendcloud_check_credentials(client, NULL, &call, &e) : F3_EINVAL;
    sendcloud_client_free(client);
    if (vrc == F3_ETRANSIENT) {
        rc = http_res_error(res, 502, "Sendcloud could not be reached; try again");
        goto out;
    }
    if (vrc) {
        log_warn("Sendcloud credentials refused", "tenantId", tenant, "status",
                 call.status == 401 || call.status == 403 ? "rejected" : "unusable");
        rc = http_res_error(res, 422, "Sendcloud did not accept these credentials");
        goto out;
    }
    const user_ctx *u = user_ctx_of(req);
    save_ctx sc = {.s = s, .conn = &conn, .user_id = u ? u->user_id : NULL, .action = "connected"};
    db_conn *c = db_acquire(s->db, &e);
    int src = c ? db_tx(c, save_tx, &sc, &e) : db_err_code(&e);
    db_release(c);
    if (src) {
        rc = db_failed(res, "sendcloud connect", &e);
        goto out;
    }
    log_info("Sendcloud connected", "tenantId", tenant, "apiVersion", conn.api_version);
    rc = answer_settings(s, res, tenant);
out:
    json_decref(body); /* the borrowed keys go with it; conn holds no copies */
    return rc;
}

static int h_settings_delete(http_request *req, http_response *res, void *ctx)
{
    shipping_service *s = ctx;
    const char *tenant = user_tenant(req, res);
    if (!tenant)
        return 0;
    shipping_conn conn;
    memset(&conn, 0, sizeof conn);
    snprintf(conn.tenant_id, sizeof conn.tenant_id, "%s", tenant);
    const user_ctx *u = user_ctx_of(req);
    save_ctx sc = {
        .s = s, .conn = &conn, .user_id = u ? u->user_id : NULL, .action = "disconnected"};
    err e;
    err_clear(&e);
    db_conn *c = db_acquire(s->db, &e);
    int rc = c ? db_tx(c, disconnect_tx, &sc, &e) : db_err_code(&e);
    db_release(c);
    if (rc)
        return db_failed(res, "sendcloud disconnect", &e);
    if (sc.changed)
        log_info("Sendcloud disconnected", "tenantId", tenant);
    return answer_settings(s, res, tenant);
}

int shipping_api_add_routes(shipping_service *s, http_router *r, err *e)
{
    const http_route routes[] = {
        {"PUT", "/api/v1/integrations/sendcloud", h_settings_put, s, PERM_INTEGRATIONS_MANAGE},
        {"GET", "/api/v1/integrations/sendcloud", h_settings_get, s, PERM_INTEGRATIONS_MANAGE},
        {"DELETE", "/api/v1/integrations/sendcloud", h_settings_delete, s,
         PERM_INTEGRATIONS_MANAGE},
        {"POST", "/api/v1/webhooks/sendcloud", shipping_webhook_route, s, HTTP_ACCESS_WEBHOOK},
        {"GET", "/api/v1/shipments", h_list, s, PERM_SHIPMENTS_READ},
        {"GET", "/api/v1/shipments/:id", h_get, s, PERM_SHIPMENTS_READ},
        {"GET", "/api/v1/shipments/:id/label", h_label, s, PERM_SHIPMENTS_READ},
        {"POST", "/internal/shipments", h_internal_create, s, HTTP_ACCESS_INTERNAL},
        {"DELETE", "/internal/shipments/:orderId", h_internal_cancel, s, HTTP_ACCESS_INTERNAL},
    };
    return http_router_add(r, routes, sizeof routes / sizeof routes[0], e);
}
