/*
 * order_view.c - the JSON views of orders the public and internal order routes answer
 * with: the list summary and the detail (line items with their mapping state, print jobs,
 * shipment, fulfilment fields, the order's event log).
 *
 * Reads only, and only rows of the tenant it is given; it decides no access.
 */
#include "services/orders/api_internal.h"

#include <string.h>

/* shipmentStatus is the order's shipment's own status as soon as the shipping service
 * made one (an order has at most one): shipment.status-changed only follows changes after
 * the shipment was created, so orders.shipment_status alone stays NULL while the shipment
 * is READY_TO_SEND, and lags behind the shipment while the event is on its way. */
const char orders_api_order_columns[] =
    "o.id, o.shopify_order_id, o.shopify_order_number, o.status, o.customer_name, "
    "o.customer_email, o.total_minor, o.currency, o.financial_status, "
    "o.shopify_fulfillment_id, o.tracking_number, o.tracking_url, o.tracking_carrier, "
    "COALESCE((SELECT sh.status FROM shipments sh WHERE sh.tenant_id = o.tenant_id AND "
    "sh.order_id = o.id), o.shipment_status), o.review_reason, o.cancelled_at, o.completed_at, "
    "o.created_at, "
    "o.updated_at, o.shipping_address, "
    "(SELECT COUNT(*) FROM line_items li WHERE li.tenant_id = o.tenant_id AND "
    "li.order_id = o.id), "
    "(SELECT COUNT(*) FROM line_items li WHERE li.tenant_id = o.tenant_id AND "
    "li.order_id = o.id AND li.product_mapping_id IS NULL)";

const char orders_api_event_columns[] =
    "id, order_id, line_item_id, print_job_id, user_id, event_type, severity, message, "
    "metadata, correlation_id, created_at";

json_t *orders_api_order_summary(db_stmt *s)
{
    return json_pack(
        "{s:o s:o s:o s:o s:o s:o s:I s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o "
        "s:o s:o s:I s:I}",
        "id", orders_api_col_str(s, 0), "shopifyOrderId", orders_api_col_str(s, 1), "orderNumber",
        orders_api_col_str(s, 2), "status", orders_api_col_str(s, 3), "customerName",
        orders_api_col_str(s, 4), "customerEmail", orders_api_col_str(s, 5), "totalMinor",
        (json_int_t)db_col_int64(s, 6), "currency", orders_api_col_str(s, 7), "financialStatus",
        orders_api_col_str(s, 8), "shopifyFulfillmentId", orders_api_col_str(s, 9),
        "trackingNumber", orders_api_col_str(s, 10), "trackingUrl", orders_api_col_str(s, 11),
        "trackingCarrier", orders_api_col_str(s, 12), "shipmentStatus", orders_api_col_str(s, 13),
        "reviewReason", orders_api_col_str(s, 14), "cancelledAt", orders_api_col_time(s, 15),
        "completedAt", orders_api_col_time(s, 16), "createdAt", orders_api_col_time(s, 17),
        "updatedAt", orders_api_col_time(s, 18), "lineItemCount", (json_int_t)db_col_int64(s, 20),
        "needsMappingCount", (json_int_t)db_col_int64(s, 21));
}

json_t *orders_api_event_json(db_stmt *s)
{
    return json_pack("{s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o}", "id",
                     orders_api_col_str(s, 0), "orderId", orders_api_col_str(s, 1), "lineItemId",
                     orders_api_col_str(s, 2), "printJobId", orders_api_col_str(s, 3), "userId",
                     orders_api_col_str(s, 4), "eventType", orders_api_col_str(s, 5), "severity",
                     orders_api_col_str(s, 6), "message", orders_api_col_str(s, 7), "metadata",
                     orders_api_col_json(s, 8), "correlationId", orders_api_col_str(s, 9),
                     "createdAt", orders_api_col_time(s, 10));
}

/* ---- nested parts of the detail --------------------------------------------------------- */

typedef json_t *(*row_view)(db_stmt *s);

/* Runs sql with ($1 tenant, $2 order) and collects row_view of each row into an array. */
static int collect(db_conn *c, const char *sql, const char *tenant_id, const char *order_id,
                   row_view view, json_t **out, err *e)
{
    int rc = 0;
    json_t *arr = json_array();
    db_stmt *s = db_prepare(c, sql, e);
    if (!arr || !s) {
        rc = arr ? (e ? e->code : F3_EIO) : F3_ENOMEM;
        goto out;
    }
    db_bind_text(s, 1, tenant_id);
    db_bind_text(s, 2, order_id);
    while ((rc = db_step(s, e)) == DB_ROW) {
        json_t *row = view(s);
        if (!row || json_array_append_new(arr, row) != 0) {
            rc = err_set(e, F3_ENOMEM, "out of memory");
            goto out;
        }
    }
out:
    db_finalize(s);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

static json_t *line_item_view(db_stmt *s)
{
    json_t *mapping = json_null();
    bool needs = db_col_is_null(s, 8);
    if (!needs)
        mapping = json_pack("{s:o s:o s:o}", "id", orders_api_col_str(s, 8), "sku",
                            orders_api_col_str(s, 11), "name", orders_api_col_str(s, 12));
    return json_pack(
        "{s:o s:o s:o s:o s:I s:I s:o s:o s:o s:b s:o s:o}", "id", orders_api_col_str(s, 0),
        "shopifyLineItemId", orders_api_col_str(s, 1), "sku", orders_api_col_str(s, 2), "title",
        orders_api_col_str(s, 3), "quantity", (json_int_t)db_col_int64(s, 4), "unitPriceMinor",
        (json_int_t)db_col_int64(s, 5), "status", orders_api_col_str(s, 6), "errorMessage",
        orders_api_col_str(s, 7), "productMappingId", orders_api_col_str(s, 8), "needsMapping",
        needs, "mapping", mapping ? mapping : json_null(), "createdAt", orders_api_col_time(s, 9));
}

static const char line_items_sql[] =
    "SELECT li.id, li.shopify_line_item_id, li.sku, li.title, li.quantity, "
    "li.unit_price_minor, li.status, li.error_message, li.product_mapping_id, li.created_at, "
    "li.updated_at, pm.sku, pm.name FROM line_items li "
    "LEFT JOIN product_mappings pm ON pm.id = li.product_mapping_id "
    "AND pm.tenant_id = li.tenant_id "
    "WHERE li.tenant_id = $1 AND li.order_id = $2 ORDER BY li.created_at, li.id";

static json_t *print_job_view(db_stmt *s)
{
    return json_pack(
        "{s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o s:I s:o s:o s:o s:o s:o}", "id",
        orders_api_col_str(s, 0), "lineItemId", orders_api_col_str(s, 1), "assemblyPartId",
        orders_api_col_str(s, 2), "simplyPrintJobId", orders_api_col_str(s, 3),
        "simplyPrintQueueItemId", orders_api_col_str(s, 4), "status", orders_api_col_str(s, 5),
        "printerId", orders_api_col_str(s, 6), "printerName", orders_api_col_str(s, 7), "fileId",
        orders_api_col_str(s, 8), "fileName", orders_api_col_str(s, 9), "retryCount",
        (json_int_t)db_col_int64(s, 10), "errorMessage", orders_api_col_str(s, 11), "startedAt",
        orders_api_col_time(s, 12), "completedAt", orders_api_col_time(s, 13), "createdAt",
        orders_api_col_time(s, 14), "updatedAt", orders_api_col_time(s, 15));
}

static const char print_jobs_sql[] =
    "SELECT id, line_item_id, assembly_part_id, simplyprint_job_id, simplyprint_queue_item_id, "
    "status, printer_id, printer_name, file_id, file_name, retry_count, error_message, "
    "started_at, completed_at, created_at, updated_at FROM print_jobs "
    "WHERE tenant_id = $1 AND order_id = $2 ORDER BY created_at, id";

static json_t *shipment_view(db_stmt *s)
{
    return json_pack(
        "{s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o}", "id", orders_api_col_str(s, 0),
        "provider", orders_api_col_str(s, 1), "providerShipmentId", orders_api_col_str(s, 2),
        "status", orders_api_col_str(s, 3), "statusMessage", orders_api_col_str(s, 4), "carrier",
        orders_api_col_str(s, 5), "shippingMethod", orders_api_col_str(s, 6), "trackingNumber",
        orders_api_col_str(s, 7), "trackingUrl", orders_api_col_str(s, 8), "labelUrl",
        orders_api_col_str(s, 9), "errorMessage", orders_api_col_str(s, 10), "shippedAt",
        orders_api_col_time(s, 11), "deliveredAt", orders_api_col_time(s, 12), "createdAt",
        orders_api_col_time(s, 13));
}

static const char shipment_sql[] =
    "SELECT id, provider, provider_shipment_id, status, status_message, carrier, "
    "shipping_method, tracking_number, tracking_url, label_url, error_message, shipped_at, "
    "delivered_at, created_at FROM shipments WHERE tenant_id = $1 AND order_id = $2";

static const char events_sql_fmt[] = "SELECT %s FROM event_log WHERE tenant_id = $1 AND "
                                     "order_id = $2 ORDER BY created_at, id";

/* The order row itself; F3_ENOTFOUND when the tenant has no such order. */
static int order_row(db_conn *c, const char *tenant_id, const char *order_id, json_t **out, err *e)
{
    buf sql;
    buf_init(&sql, 0);
    buf_printf(&sql, "SELECT %s FROM orders o WHERE o.tenant_id = $1 AND o.id = $2",
               orders_api_order_columns);
    int rc;
    db_stmt *s = db_prepare(c, buf_cstr(&sql), e);
    if (!s) {
        rc = e ? e->code : F3_EIO;
        goto out;
    }
    db_bind_text(s, 1, tenant_id);
    db_bind_text(s, 2, order_id);
    rc = db_step(s, e);
    if (rc == DB_DONE) {
        rc = err_set(e, F3_ENOTFOUND, "Order not found: %s", order_id);
        goto out;
    }
    if (rc < 0)
        goto out;
    json_t *o = orders_api_order_summary(s);
    if (!o || json_object_set_new(o, "shippingAddress", orders_api_col_json(s, 19)) != 0) {
        json_decref(o);
        rc = err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    *out = o;
    rc = 0;
out:
    db_finalize(s);
    buf_free(&sql);
    return rc;
}

int orders_api_order_detail(db_conn *c, const char *tenant_id, const char *order_id, json_t **out,
                            err *e)
{
    json_t *o = NULL, *items = NULL, *jobs = NULL, *ships = NULL, *events = NULL;
    buf ev;
    buf_init(&ev, 0);
    int rc = order_row(c, tenant_id, order_id, &o, e);
    if (rc)
        goto out;
    buf_printf(&ev, events_sql_fmt, orders_api_event_columns);
    if ((rc = collect(c, line_items_sql, tenant_id, order_id, line_item_view, &items, e)) ||
        (rc = collect(c, print_jobs_sql, tenant_id, order_id, print_job_view, &jobs, e)) ||
        (rc = collect(c, shipment_sql, tenant_id, order_id, shipment_view, &ships, e)) ||
        (rc = collect(c, buf_cstr(&ev), tenant_id, order_id, orders_api_event_json, &events, e)))
        goto out;
    json_t *ship = json_array_size(ships) ? json_incref(json_array_get(ships, 0)) : json_null();
    if (json_object_set_new(o, "lineItems", json_incref(items)) ||
        json_object_set_new(o, "printJobs", json_incref(jobs)) ||
        json_object_set_new(o, "shipment", ship) ||
        json_object_set_new(o, "events", json_incref(events))) {
        rc = err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    *out = o;
    o = NULL;
out:
    json_decref(o);
    json_decref(items);
    json_decref(jobs);
    json_decref(ships);
    json_decref(events);
    buf_free(&ev);
    return rc;
}
