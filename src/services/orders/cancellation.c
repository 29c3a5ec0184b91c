/*
 * cancellation.c - cancelling an order and answering what it means for its print jobs
 * (see cancellation.h). Reads print jobs only through the print service's client; never
 * cancels a job itself.
 */
#include "services/orders/cancellation.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "http/request.h"
#include "http/response.h"
#include "services/access/permissions.h"
#include "services/access/user_context.h"
#include "services/common/eventlog.h"
#include "services/orders/fulfillment.h"
#include "services/orders/ingest.h"
#include "services/orders/status.h"
#include "services/print/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REVIEW_REASON "cancelled while print jobs were printing: decide what to do with them"

/* The order as this module needs it. */
typedef struct order_row {
    bool found;
    order_status status;
    char number[64];
    int64_t cancelled_at;
    char fulfillment_state[16]; /* "" when never requested */
} order_row;

static int read_order(db_conn *tx, const char *tenant_id, const char *order_id, order_row *out,
                      err *e)
{
    memset(out, 0, sizeof *out);
    const char *p[] = {tenant_id, order_id};
    /* Lock the order row first (a no-op write), as fulfillment.c does before its claim: of
     * a cancellation and a fulfilment running at once, the second sees the first's result. */
    int rc = db_exec_texts(tx,
                           "UPDATE orders SET updated_at = updated_at WHERE tenant_id = $1 AND"
                           " id = $2",
                           p, 2, NULL, e);
    if (rc)
        return rc;
    db_stmt *s = db_prepare_texts(tx,
                                  "SELECT o.status, o.shopify_order_number, o.cancelled_at,"
                                  " f.state FROM orders o LEFT JOIN order_fulfillments f ON"
                                  " f.tenant_id = o.tenant_id AND f.order_id = o.id"
                                  " WHERE o.tenant_id = $1 AND o.id = $2",
                                  p, 2, e);
    if (!s)
        return db_err_code(e);
    rc = db_step(s, e);
    if (rc == DB_ROW) {
        out->found = true;
        int st = order_status_parse(db_col_text(s, 0));
        out->status = st < 0 ? ORDER_PENDING : (order_status)st;
        db_col_copy(s, 1, out->number, sizeof out->number);
        out->cancelled_at = db_col_is_null(s, 2) ? -1 : db_col_int64(s, 2);
        db_col_copy(s, 3, out->fulfillment_state, sizeof out->fulfillment_state);
    }
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

/* The stored result of an earlier cancellation, with alreadyCancelled set; NULL if none. */
static int stored_result(db_conn *tx, const char *tenant_id, const char *order_id, json_t **out,
                         err *e)
{
    *out = NULL;
    const char *p[] = {tenant_id, order_id};
    db_stmt *s = db_prepare_texts(tx,
                                  "SELECT result FROM order_cancellations WHERE tenant_id = $1"
                                  " AND order_id = $2",
                                  p, 2, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    if (rc == DB_ROW) {
        json_error_t je;
        *out = json_loads(db_col_text(s, 0) ? db_col_text(s, 0) : "", 0, &je);
        if (!json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
        } else {
            json_object_set_new(*out, "alreadyCancelled", json_true());
        }
    }
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

static json_t *result_json(const char *order_id, const order_row *o, int64_t at,
                           const print_job_tally *t, const orders_cancel_opts *opt, bool already)
{
    char iso[CLOCK_ISO_LEN];
    clock_format_iso(at, iso);
    int to_cancel = t->n[PRINT_JOB_PENDING] + t->n[PRINT_JOB_QUEUED] + t->n[PRINT_JOB_ASSIGNED];
    int flagged = t->n[PRINT_JOB_PRINTING];
    return json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:s?,s:{s:i,s:i,s:i,s:i,s:i},s:b}", "orderId",
                     order_id, "orderNumber", o->number, "status", "CANCELLED", "cancelledAt", iso,
                     "alreadyCancelled", already, "source", opt->source, "reason", opt->reason,
                     "jobs", "total", t->total, "toCancel", to_cancel, "flaggedForReview", flagged,
                     "alreadyCompleted", t->n[PRINT_JOB_COMPLETED], "alreadyEnded",
                     t->n[PRINT_JOB_FAILED] + t->n[PRINT_JOB_CANCELLED], "needsReview",
                     flagged > 0);
}

static int store_result(db_conn *tx, const char *tenant_id, const char *order_id,
                        const char *source, const json_t *result, err *e)
{
    char *text = json_dumps(result, JSON_COMPACT);
    if (!text)
        return err_set(e, F3_ENOMEM, "out of memory");
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *p[] = {tenant_id, order_id, source, text, now};
    int rc = db_exec_texts(tx,
                           "INSERT INTO order_cancellations (tenant_id, order_id, source, result,"
                           " created_at) VALUES ($1, $2, $3, $4, CAST($5 AS BIGINT))"
                           " ON CONFLICT (tenant_id, order_id) DO NOTHING",
                           p, 5, NULL, e);
    free(text);
    return rc;
}

/* Moves the order to CANCELLED unless it moved meanwhile (F3_EBUSY: db_tx runs again). */
static int mark_cancelled(db_conn *tx, const char *tenant_id, const char *order_id,
                          const order_row *o, int64_t at, bool review, err *e)
{
    char now[24], at_s[24];
    db_ms_text(clock_now_ms(), now);
    db_ms_text(at, at_s);
    const char *p[] = {tenant_id,
                       order_id,
                       now,
                       at_s,
                       order_status_name(o->status),
                       review ? REVIEW_REASON : NULL};
    int64_t n = 0;
    int rc = db_exec_texts(tx,
                           "UPDATE orders SET status = 'CANCELLED', cancelled_at = CAST($4 AS"
                           " BIGINT), cancel_requested_at = COALESCE(cancel_requested_at,"
                           " CAST($3 AS BIGINT)), review_reason = COALESCE($6, review_reason),"
                           " updated_at = CAST($3 AS BIGINT)"
                           " WHERE tenant_id = $1 AND id = $2 AND status = $5",
                           p, 6, &n, e);
    if (rc == 0 && n == 0)
        rc = err_set(e, F3_EBUSY, "order %s changed while being cancelled", order_id);
    return rc;
}

static int announce(db_conn *tx, bus *b, const char *tenant_id, const char *order_id,
                    const order_row *o, const orders_cancel_opts *opt, json_t *result, err *e)
{
    json_t *fields = json_pack("{s:s}", "orderId", order_id);
    int rc = fields ? bus_publish(b, tx, BUS_EV_ORDER_CANCELLED, tenant_id, fields, e)
                    : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(fields);
    json_t *jobs = json_object_get(result, "jobs");
    int to_cancel = (int)json_integer_value(json_object_get(jobs, "toCancel"));
    int flagged = (int)json_integer_value(json_object_get(jobs, "flaggedForReview"));
    int done = (int)json_integer_value(json_object_get(jobs, "alreadyCompleted"));
    char msg[512];
    snprintf(msg, sizeof msg,
             "Order %s cancelled (%s%s%s): %d print job(s) to cancel, %d printing (flagged for "
             "review), %d already completed",
             o->number, opt->source, opt->reason ? ": " : "", opt->reason ? opt->reason : "",
             to_cancel, flagged, done);
    json_t *meta = json_deep_copy(result);
    if (meta)
        json_object_set_new(meta, "previousStatus", json_string(order_status_name(o->status)));
    eventlog_entry en = {.tenant_id = tenant_id,
                         .event_type = ORDERS_LOG_CANCELLED,
                         .severity = EVENTLOG_WARNING,
                         .message = msg,
                         .order_id = order_id,
                         .user_id = opt->user_id,
                         .metadata = meta};
    if (rc == 0)
        rc = meta ? eventlog_write(tx, &en, NULL, e) : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(meta);
    if (rc || flagged == 0)
        return rc;
    snprintf(msg, sizeof msg,
             "Order %s cancelled but %d print job(s) are already printing: review needed",
             o->number, flagged);
    /* The alert names the order by its Shopify number, as every order alert does. */
    json_t *alert = jobs ? json_deep_copy(jobs) : json_object();
    if (!alert || json_object_set_new(alert, "orderNumber", json_string(o->number))) {
        json_decref(alert);
        return err_set(e, F3_ENOMEM, "out of memory");
    }
    rc = orders_alert(tx, tenant_id, order_id, "CANCELLATION_NEEDS_REVIEW", false, msg, alert, e);
    json_decref(alert);
    return rc;
}

int orders_cancel_in_tx(db_conn *tx, bus *b, const char *tenant_id, const char *order_id,
                        const orders_cancel_opts *o, json_t **result, err *e)
{
    *result = NULL;
    orders_cancel_opts opt = o ? *o : (orders_cancel_opts){0};
    if (!opt.source)
        opt.source = "api";
    order_row row;
    int rc = read_order(tx, tenant_id, order_id, &row, e);
    if (rc)
        return rc;
    if (!row.found)
        return err_set(e, F3_ENOTFOUND, "Order not found: %s", order_id);
    rc = stored_result(tx, tenant_id, order_id, result, e);
    if (rc || *result)
        return rc;
    print_job_tally t;
    rc = print_client_order_tally(tx, tenant_id, order_id, &t, e);
    if (rc)
        return rc;
    int64_t at = opt.cancelled_at_ms > 0 ? opt.cancelled_at_ms : clock_now_ms();
    if (row.status == ORDER_CANCELLED) {
        /* Cancelled before any result was kept (e.g. it arrived cancelled): answer the
         * state as it is, announce nothing. */
        *result = result_json(order_id, &row, row.cancelled_at >= 0 ? row.cancelled_at : at, &t,
                              &opt, true);
        return *result ? 0 : err_set(e, F3_ENOMEM, "out of memory");
    }
    if (str_eq(row.fulfillment_state, "DONE") || str_eq(row.fulfillment_state, "CLAIMED"))
        return err_set(e, F3_ECONFLICT, "Order %s is %s in Shopify and cannot be cancelled here",
                       row.number,
                       str_eq(row.fulfillment_state, "DONE") ? "fulfilled" : "being fulfilled");
    if (!order_status_can_move(row.status, ORDER_CANCELLED))
        return err_set(e, F3_ECONFLICT, "Order %s is %s and cannot be cancelled", row.number,
                       order_status_name(row.status));
    bool review = t.n[PRINT_JOB_PRINTING] > 0;
    *result = result_json(order_id, &row, at, &t, &opt, false);
    if (!*result)
        return err_set(e, F3_ENOMEM, "out of memory");
    rc = mark_cancelled(tx, tenant_id, order_id, &row, at, review, e);
    rc = rc ? rc : store_result(tx, tenant_id, order_id, opt.source, *result, e);
    rc = rc ? rc : announce(tx, b, tenant_id, order_id, &row, &opt, *result, e);
    if (rc) {
        json_decref(*result);
        *result = NULL;
    }
    return rc;
}

typedef struct cancel_call {
    bus *b;
    const char *tenant_id, *order_id;
    const orders_cancel_opts *o;
    json_t *result;
} cancel_call;

static int cancel_tx(db_conn *tx, void *ctx, err *e)
{
    cancel_call *cc = ctx;
    json_decref(cc->result); /* from an attempt db_tx is running again */
    cc->result = NULL;
    return orders_cancel_in_tx(tx, cc->b, cc->tenant_id, cc->order_id, cc->o, &cc->result, e);
}

int orders_cancel(db *d, bus *b, const char *tenant_id, const char *order_id,
                  const orders_cancel_opts *o, json_t **result, err *e)
{
    *result = NULL;
    db_conn *c = db_acquire(d, e);
    if (!c)
        return db_err_code(e);
    cancel_call cc = {b, tenant_id, order_id, o, NULL};
    int rc = db_tx(c, cancel_tx, &cc, e);
    db_release(c);
    if (rc) {
        json_decref(cc.result);
        return rc;
    }
    *result = cc.result;
    return 0;
}

/* ---- POST /api/v1/orders/:id/cancel ----------------------------------------------------- */

static int h_cancel(http_request *req, http_response *res, void *ctx)
{
    const orders_cancellation_deps *d = ctx;
    const user_ctx *u = user_ctx_of(req);
    if (!u || !u->tenant_id[0])
        return http_res_error(res, 401, "Authentication required");
    const char *order_id = http_req_param(req, "id");
    size_t len = 0;
    http_req_body(req, &len);
    json_t *body = NULL;
    if (len > 0 && http_req_json(req, &body, res) != 0)
        return 0;
    json_t *reason = json_object_get(body, "reason");
    if (len > 0 && (!json_is_object(body) || (reason && !json_is_string(reason)))) {
        json_decref(body);
        return http_res_error(res, 400, "Field 'reason' must be a string");
    }
    orders_cancel_opts o = {.source = "api",
                            .reason = json_string_value(reason),
                            .user_id = u->user_id[0] ? u->user_id : NULL};
    json_t *result = NULL;
    err e;
    err_clear(&e);
    int rc = orders_cancel(d->db, d->bus, u->tenant_id, order_id, &o, &result, &e);
    json_decref(body);
    switch (rc) {
    case 0:
        log_info("order cancelled", "orderId", order_id, "by", u->user_id);
        return http_res_json(res, 200, result);
    case F3_ENOTFOUND:
        return http_res_error(res, 404, "Order not found: %s", order_id);
    case F3_ECONFLICT:
        return http_res_error(res, 409, "%s", e.msg);
    default:
        log_error("order cancellation failed", "orderId", order_id, "reason", e.msg);
        return http_res_error(res, 503, "The order could not be cancelled now; try again");
    }
}

int orders_cancellation_add_routes(http_router *r, const orders_cancellation_deps *deps, err *e)
{
    if (!r || !deps || !deps->db || !deps->bus)
        return err_set(e, F3_EINVAL, "cancellation: router, database and bus are required");
    union {
        const orders_cancellation_deps *in;
        void *ctx;
    } borrowed = {.in = deps};
    const http_route routes[] = {
        {"POST", "/api/v1/orders/:id/cancel", h_cancel, borrowed.ctx, PERM_ORDERS_WRITE},
    };
    return http_router_add(r, routes, sizeof routes / sizeof routes[0], e);
}
