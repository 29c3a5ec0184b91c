/*
 * internal_api.c - the orders service's internal API (seed 004), for other services:
 *   GET   /internal/orders/:id                      ?tenantId=
 *   GET   /internal/orders/shopify/:shopifyOrderId  ?tenantId=
 *   PATCH /internal/orders/:id/tracking             ?tenantId=  {trackingNumber, trackingUrl,
 *                                                                carrier?}
 * The routes declare HTTP_ACCESS_INTERNAL: the guard has checked X-Internal-Key before any
 * handler runs. There is no user here, so the tenant comes from the query and is required;
 * every query still filters on it.
 */
#include "services/orders/api_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "services/common/eventlog.h"

#include <stdlib.h>
#include <string.h>

#define TRACKING_NUMBER_MAX  200
#define TRACKING_URL_MAX     2000
#define TRACKING_CARRIER_MAX 100
#define EVENT_TRACKING       "order.tracking-updated"

/* The tenantId query parameter, or NULL after answering 400. */
static const char *tenant_param(http_request *req, http_response *res)
{
    const char *t = http_req_query_param(req, "tenantId");
    if (!t || !*t) {
        http_res_error(res, 400, "tenantId: query parameter is required");
        return NULL;
    }
    return t;
}

/* Answers the detail of order `id` of the tenant (404 when it has none). */
static int answer_detail(http_response *res, db_conn *c, const char *tenant, const char *id)
{
    err e;
    err_clear(&e);
    json_t *o = NULL;
    int rc = orders_api_order_detail(c, tenant, id, &o, &e);
    if (rc == F3_ENOTFOUND)
        return http_res_error(res, 404, "Order not found: %s", id);
    if (rc)
        return orders_api_db_failed(res, "order detail", &e);
    return http_res_json(res, 200, o);
}

int orders_api_internal_get(http_request *req, http_response *res, void *ctx)
{
    const orders_api_deps *deps = ctx;
    const char *tenant = tenant_param(req, res);
    if (!tenant)
        return 0;
    err e;
    err_clear(&e);
    db_conn *c = db_acquire(deps->db, &e);
    if (!c)
        return orders_api_db_failed(res, "acquire", &e);
    answer_detail(res, c, tenant, http_req_param(req, "id"));
    db_release(c);
    return 0;
}

int orders_api_internal_get_shopify(http_request *req, http_response *res, void *ctx)
{
    const orders_api_deps *deps = ctx;
    const char *tenant = tenant_param(req, res);
    if (!tenant)
        return 0;
    const char *shopify_id = http_req_param(req, "shopifyOrderId");
    err e;
    err_clear(&e);
    char *id = NULL;
    db_stmt *s = NULL;
    db_conn *c = db_acquire(deps->db, &e);
    if (!c)
        return orders_api_db_failed(res, "acquire", &e);
    s = db_prepare(c, "SELECT id FROM orders WHERE tenant_id = $1 AND shopify_order_id = $2", &e);
    int rc = s ? 0 : e.code;
    if (s) {
        db_bind_text(s, 1, tenant);
        db_bind_text(s, 2, shopify_id);
        rc = db_step(s, &e);
        if (rc == DB_ROW && !(id = str_dup(db_col_text(s, 0))))
            rc = err_set(&e, F3_ENOMEM, "out of memory");
    }
    db_finalize(s);
    if (rc == DB_DONE)
        http_res_error(res, 404, "Order not found for Shopify order: %s", shopify_id);
    else if (rc < 0)
        orders_api_db_failed(res, "order by shopify id", &e);
    else
        answer_detail(res, c, tenant, id);
    free(id);
    db_release(c);
    return 0;
}

typedef struct tracking_tx {
    const char *tenant_id;
    const char *order_id;
    const char *number;
    const char *url;
    const char *carrier;
} tracking_tx;

static int tracking_field(const json_t *body, const char *name, bool required, size_t max,
                          const char **out, err *e)
{
    json_t *v = json_object_get(body, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return required ? err_set(e, F3_EINVAL, "%s: is required", name) : 0;
    if (!json_is_string(v))
        return err_set(e, F3_EINVAL, "%s: must be a string", name);
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return err_set(e, F3_EINVAL, "%s: must not contain NUL characters", name);
    if (s[strspn(s, " \t\r\n")] == '\0')
        return err_set(e, F3_EINVAL, "%s: must not be empty", name);
    if (strlen(s) > max)
        return err_set(e, F3_EINVAL, "%s: must be at most %zu characters", name, max);
    *out = s;
    return 0;
}

static int validate_tracking(const json_t *body, tracking_tx *t, err *e)
{
    if (!json_is_object(body))
        return err_set(e, F3_EINVAL, "body: must be a JSON object");
    int rc;
    if ((rc = tracking_field(body, "trackingNumber", true, TRACKING_NUMBER_MAX, &t->number, e)) ||
        (rc = tracking_field(body, "trackingUrl", true, TRACKING_URL_MAX, &t->url, e)) ||
        (rc = tracking_field(body, "carrier", false, TRACKING_CARRIER_MAX, &t->carrier, e)))
        return rc;
    if (!t->url || (!str_starts_with(t->url, "https://") && !str_starts_with(t->url, "http://")) ||
        strpbrk(t->url, " \t\r\n\"<>"))
        return err_set(e, F3_EINVAL, "trackingUrl: must be an http(s) URL");
    return 0;
}

static int tracking_update(db_conn *c, void *ctx, err *e)
{
    tracking_tx *t = ctx;
    db_stmt *s =
        db_prepare(c,
                   "UPDATE orders SET tracking_number = $3, tracking_url = $4, "
                   "tracking_carrier = $5, updated_at = $6 WHERE tenant_id = $1 AND id = $2",
                   e);
    if (!s)
        return e->code;
    db_bind_text(s, 1, t->tenant_id);
    db_bind_text(s, 2, t->order_id);
    db_bind_text(s, 3, t->number);
    db_bind_text(s, 4, t->url);
    db_bind_text(s, 5, t->carrier);
    db_bind_int64(s, 6, clock_now_ms());
    int rc = db_step(s, e);
    int64_t changed = db_changes(s);
    db_finalize(s);
    if (rc < 0)
        return rc;
    if (changed == 0)
        return err_set(e, F3_ENOTFOUND, "Order not found: %s", t->order_id);
    json_t *meta = json_pack("{s:s s:s s:s?}", "trackingNumber", t->number, "trackingUrl", t->url,
                             "carrier", t->carrier);
    char msg[300];
    snprintf(msg, sizeof msg, "Tracking number %.200s recorded", t->number);
    eventlog_entry en = {.tenant_id = t->tenant_id,
                         .event_type = EVENT_TRACKING,
                         .severity = EVENTLOG_INFO,
                         .message = msg,
                         .order_id = t->order_id,
                         .metadata = meta};
    rc = meta ? eventlog_write(c, &en, NULL, e) : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(meta);
    return rc;
}

int orders_api_internal_tracking(http_request *req, http_response *res, void *ctx)
{
    const orders_api_deps *deps = ctx;
    const char *tenant = tenant_param(req, res);
    if (!tenant)
        return 0;
    json_t *body = NULL;
    int rc = http_req_json(req, &body, res);
    if (rc == F3_EINVAL)
        return 0;
    if (rc)
        return rc;
    tracking_tx t = {.tenant_id = tenant, .order_id = http_req_param(req, "id")};
    err e;
    err_clear(&e);
    db_conn *c = NULL;
    if (validate_tracking(body, &t, &e)) {
        http_res_error(res, 400, "%s", e.msg);
        goto out;
    }
    if (!(c = db_acquire(deps->db, &e))) {
        orders_api_db_failed(res, "acquire", &e);
        goto out;
    }
    rc = db_tx(c, tracking_update, &t, &e);
    if (rc == F3_ENOTFOUND)
        http_res_error(res, 404, "%s", e.msg);
    else if (rc)
        orders_api_db_failed(res, "tracking update", &e);
    else {
        log_info("order tracking recorded", "tenantId", tenant, "orderId", t.order_id);
        answer_detail(res, c, tenant, t.order_id);
    }
out:
    db_release(c);
    json_decref(body);
    return 0;
}
