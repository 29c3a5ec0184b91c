/*
 * ingest.c - the order upsert shared by webhooks, backfill and reconciliation (see
 * ingest.h).
 */
#include "services/orders/ingest.h"

#include "bus/catalog.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "services/common/eventlog.h"
#include "services/common/notify.h"
#include "services/orders/cancellation.h"
#include "services/orders/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What is stored of an order before this call. */
typedef struct stored_order {
    bool found;
    char id[UUID_STR_LEN];
    int status; /* order_status */
    int64_t shopify_updated_at;
    char number[64];
} stored_order;

static int find_order(db_conn *tx, const char *tenant_id, const char *shopify_id, stored_order *out,
                      err *e)
{
    memset(out, 0, sizeof *out);
    const char *t[] = {tenant_id, shopify_id};
    db_stmt *s = db_prepare_texts(tx,
                                  "SELECT id, status, shopify_updated_at, shopify_order_number"
                                  " FROM orders WHERE tenant_id = $1 AND shopify_order_id = $2",
                                  t, 2, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    if (rc == DB_ROW) {
        out->found = true;
        db_col_copy(s, 0, out->id, sizeof out->id);
        out->status = order_status_parse(db_col_text(s, 1));
        out->shopify_updated_at = db_col_int64(s, 2);
        db_col_copy(s, 3, out->number, sizeof out->number);
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = 0;
    }
    db_finalize(s);
    return rc;
}

/* ---- what an order looks like in our tables ----------------------------------------- */

static void customer_name(const shopify_order *o, buf *out)
{
    const char *first = o->customer_first_name, *last = o->customer_last_name;
    if (!first && !last && o->has_shipping_address) {
        if (o->shipping_address.name) {
            (void)buf_puts(out, o->shipping_address.name);
            return;
        }
        first = o->shipping_address.first_name;
        last = o->shipping_address.last_name;
    }
    if (first)
        (void)buf_puts(out, first);
    if (first && last)
        (void)buf_putc(out, ' ');
    if (last)
        (void)buf_puts(out, last);
    if (out->len == 0 && o->email)
        (void)buf_puts(out, o->email);
}

static int address_json(const shopify_order *o, buf *out)
{
    json_t *a = json_object();
    if (!a)
        return F3_ENOMEM;
    const shopify_address *s = &o->shipping_address;
    const struct {
        const char *name, *value;
    } fields[] = {
        {"firstName", s->first_name},
        {"lastName", s->last_name},
        {"name", s->name},
        {"company", s->company},
        {"address1", s->address1},
        {"address2", s->address2},
        {"city", s->city},
        {"province", s->province},
        {"provinceCode", s->province_code},
        {"zip", s->zip},
        {"country", s->country},
        {"countryCode", s->country_code},
        {"phone", s->phone},
    };
    int rc = 0;
    for (size_t i = 0; o->has_shipping_address && i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].value && json_object_set_new(a, fields[i].name, json_string(fields[i].value)))
            rc = F3_ENOMEM;
    char *text = rc ? NULL : json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text || buf_puts(out, text))
        rc = F3_ENOMEM;
    free(text);
    json_decref(a);
    return rc;
}

static const char *order_number(const shopify_order *o, char tmp[24])
{
    if (o->name && *o->name)
        return o->name;
    snprintf(tmp, 24, "%lld", (long long)o->order_number);
    return tmp;
}

static int log_entry(db_conn *tx, const char *tenant_id, const char *type, eventlog_severity sev,
                     const char *order_id, const char *line_item_id, json_t *metadata, err *e,
                     const char *fmt, ...) __attribute__((format(printf, 9, 10)));

/* Writes one event log entry; takes the metadata reference. */
static int log_entry(db_conn *tx, const char *tenant_id, const char *type, eventlog_severity sev,
                     const char *order_id, const char *line_item_id, json_t *metadata, err *e,
                     const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    eventlog_entry en = {.tenant_id = tenant_id,
                         .event_type = type,
                         .severity = sev,
                         .message = message,
                         .order_id = order_id,
                         .line_item_id = line_item_id,
                         .metadata = metadata};
    int rc = eventlog_write(tx, &en, NULL, e);
    json_decref(metadata);
    return rc;
}

/* ---- line items ----------------------------------------------------------------------- */

static int mapping_of(db_conn *tx, const char *tenant_id, const char *sku, char id[UUID_STR_LEN],
                      err *e)
{
    id[0] = '\0';
    if (!sku)
        return 0;
    const char *t[] = {tenant_id, sku};
    db_stmt *s = db_prepare_texts(tx,
                                  "SELECT id FROM product_mappings WHERE tenant_id = $1 AND"
                                  " sku = $2 AND active = TRUE",
                                  t, 2, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    if (rc == DB_ROW)
        db_col_copy(s, 0, id, UUID_STR_LEN);
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

/* Inserts one line item unless it is stored already; *inserted says which, id gets its id
 * (the new or the stored one), *needs whether it lacks a mapping. */
static int put_line_item(db_conn *tx, const char *tenant_id, const char *order_id,
                         const shopify_line_item *li, const char *now, char id[UUID_STR_LEN],
                         bool *inserted, bool *needs, err *e)
{
    char mapping[UUID_STR_LEN], qty[24], price[24];
    int rc = mapping_of(tx, tenant_id, li->sku, mapping, e);
    if (rc)
        return rc;
    *needs = mapping[0] == '\0';
    uuid_v7(id);
    db_ms_text(li->quantity, qty);
    db_ms_text(li->price_minor, price);
    const char *t[] = {id,
                       tenant_id,
                       order_id,
                       li->id,
                       li->sku,
                       li->product_id[0] ? li->product_id : NULL,
                       li->variant_id[0] ? li->variant_id : NULL,
                       li->title ? li->title : "",
                       qty,
                       price,
                       mapping[0] ? mapping : NULL,
                       now};
    db_stmt *s = db_prepare_texts(
        tx,
        "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, sku, product_id,"
        " variant_id, title, quantity, unit_price_minor, product_mapping_id, needs_mapping,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CAST($9 AS INTEGER),"
        " CAST($10 AS BIGINT), $11, $13, CAST($12 AS BIGINT), CAST($12 AS BIGINT))"
        " ON CONFLICT (tenant_id, order_id, shopify_line_item_id) DO NOTHING",
        t, 12, e);
    if (!s)
        return db_err_code(e);
    db_bind_bool(s, 13, *needs);
    rc = db_step(s, e);
    *inserted = rc == DB_DONE && db_changes(s) > 0;
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

static int report_unmapped(db_conn *tx, const char *tenant_id, const char *order_id,
                           const char *number, const shopify_line_item *li,
                           const char *line_item_id, err *e)
{
    json_t *meta = json_pack("{s:s?,s:s?,s:s}", "sku", li->sku, "title", li->title,
                             "shopifyLineItemId", li->id);
    if (li->sku)
        return log_entry(tx, tenant_id, ORDERS_LOG_NEEDS_MAPPING, EVENTLOG_WARNING, order_id,
                         line_item_id, meta, e,
                         "Order %s: SKU %s has no product mapping; the line item needs mapping",
                         number, li->sku);
    return log_entry(tx, tenant_id, ORDERS_LOG_NEEDS_MAPPING, EVENTLOG_WARNING, order_id,
                     line_item_id, meta, e,
                     "Order %s: line item '%s' has no SKU; the line item needs mapping", number,
                     li->title ? li->title : li->id);
}

/* Stores the line items not stored yet; appends {lineItemId, productSku, quantity} of each
 * new one to items (may be NULL) and reports the unmapped ones. */
static int put_line_items(db_conn *tx, const char *tenant_id, const char *order_id,
                          const char *number, const shopify_order *o, json_t *items,
                          int *needs_count, err *e)
{
    char now[24];
    db_ms_text(clock_now_ms(), now);
    json_t *unmapped = json_array();
    int rc = unmapped ? 0 : err_set(e, F3_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < o->line_item_count; i++) {
        const shopify_line_item *li = &o->line_items[i];
        char id[UUID_STR_LEN];
        bool inserted = false, needs = false;
        rc = put_line_item(tx, tenant_id, order_id, li, now, id, &inserted, &needs, e);
        if (rc || !inserted)
            continue;
        if (items && json_array_append_new(items, json_pack("{s:s,s:s,s:I}", "lineItemId", id,
                                                            "productSku", li->sku ? li->sku : "",
                                                            "quantity", (json_int_t)li->quantity)))
            rc = err_set(e, F3_ENOMEM, "out of memory");
        if (rc == 0 && needs) {
            (*needs_count)++;
            json_array_append_new(unmapped,
                                  json_pack("{s:s,s:s?}", "lineItemId", id, "sku", li->sku));
            rc = report_unmapped(tx, tenant_id, order_id, number, li, id, e);
        }
    }
    if (rc == 0 && json_array_size(unmapped) > 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "Order %s has %zu line item(s) without a product mapping", number,
                 json_array_size(unmapped));
        json_t *fields = json_pack("{s:s,s:s,s:s,s:O}", "message", msg, "orderId", order_id,
                                   "orderNumber", number, "lineItems", unmapped);
        rc = fields ? notify_alert(tx, tenant_id, NOTIFY_UNMAPPED_SKU, fields, e)
                    : err_set(e, F3_ENOMEM, "out of memory");
        json_decref(fields);
    }
    json_decref(unmapped);
    return rc;
}

/* ---- insert and update ------------------------------------------------------------------ */

static int insert_order(db_conn *tx, const char *tenant_id, const shopify_order *o, const char *id,
                        bool *inserted, err *e)
{
    buf name, address;
    buf_init(&name, 0);
    buf_init(&address, 0);
    customer_name(o, &name);
    int rc = address_json(o, &address) ? err_set(e, F3_ENOMEM, "out of memory") : 0;
    char num[24], total[24], now[24], updated[24], cancelled[24];
    db_ms_text(o->total_price_minor, total);
    db_ms_text(clock_now_ms(), now);
    db_ms_text(o->updated_at_ms, updated);
    db_ms_text(o->cancelled_at_ms, cancelled);
    bool is_cancelled = o->cancelled_at_ms >= 0;
    const char *t[] = {id,
                       tenant_id,
                       o->id,
                       order_number(o, num),
                       is_cancelled ? "CANCELLED" : "PENDING",
                       buf_cstr(&name),
                       o->email,
                       buf_cstr(&address),
                       total,
                       o->currency,
                       o->financial_status,
                       now,
                       updated,
                       is_cancelled ? cancelled : NULL};
    int64_t changes = 0;
    if (rc == 0)
        rc = db_exec_texts(
            tx,
            "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number, status,"
            " customer_name, customer_email, shipping_address, total_minor, currency,"
            " financial_status, created_at, updated_at, shopify_updated_at, cancelled_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CAST($9 AS BIGINT), $10, $11,"
            " CAST($12 AS BIGINT), CAST($12 AS BIGINT), CAST($13 AS BIGINT),"
            " CAST($14 AS BIGINT))"
            " ON CONFLICT (tenant_id, shopify_order_id) DO NOTHING",
            t, 14, &changes, e);
    *inserted = changes > 0;
    buf_free(&name);
    buf_free(&address);
    return rc;
}

static int update_order(db_conn *tx, const char *tenant_id, const stored_order *st,
                        const shopify_order *o, err *e)
{
    buf name, address;
    buf_init(&name, 0);
    buf_init(&address, 0);
    customer_name(o, &name);
    int rc = address_json(o, &address) ? err_set(e, F3_ENOMEM, "out of memory") : 0;
    char total[24], now[24], updated[24];
    db_ms_text(o->total_price_minor, total);
    db_ms_text(clock_now_ms(), now);
    db_ms_text(o->updated_at_ms, updated);
    const char *t[] = {tenant_id, st->id,      buf_cstr(&name),     o->email, buf_cstr(&address),
                       total,     o->currency, o->financial_status, now,      updated};
    if (rc == 0)
        rc = db_exec_texts(tx,
                           "UPDATE orders SET customer_name = $3, customer_email = $4,"
                           " shipping_address = $5, total_minor = CAST($6 AS BIGINT),"
                           " currency = $7, financial_status = $8,"
                           " updated_at = CAST($9 AS BIGINT),"
                           " shopify_updated_at = CAST($10 AS BIGINT)"
                           " WHERE tenant_id = $1 AND id = $2",
                           t, 10, NULL, e);
    buf_free(&name);
    buf_free(&address);
    return rc;
}

static int publish_created(db_conn *tx, bus *b, const char *tenant_id, const char *order_id,
                           json_t *items, err *e)
{
    json_t *fields = json_pack("{s:s,s:O}", "orderId", order_id, "lineItems", items);
    if (!fields)
        return err_set(e, F3_ENOMEM, "out of memory");
    int rc = bus_publish(b, tx, BUS_EV_ORDER_CREATED, tenant_id, fields, e);
    json_decref(fields);
    return rc;
}

static int created(db_conn *tx, bus *b, const char *tenant_id, const shopify_order *o,
                   const char *source, order_ingest_result *out, err *e)
{
    char num[24];
    const char *number = order_number(o, num);
    json_t *items = json_array();
    if (!items)
        return err_set(e, F3_ENOMEM, "out of memory");
    int rc = put_line_items(tx, tenant_id, out->order_id, number, o, items, &out->needs_mapping, e);
    bool cancelled = o->cancelled_at_ms >= 0;
    if (rc == 0 && !cancelled)
        rc = publish_created(tx, b, tenant_id, out->order_id, items, e);
    if (rc == 0)
        rc = log_entry(tx, tenant_id, ORDERS_LOG_CREATED, EVENTLOG_INFO, out->order_id, NULL,
                       json_pack("{s:s,s:s,s:I,s:I,s:s,s:s?}", "shopifyOrderId", o->id, "source",
                                 source, "lineItems", (json_int_t)o->line_item_count, "totalMinor",
                                 (json_int_t)o->total_price_minor, "currency", o->currency,
                                 "financialStatus", o->financial_status),
                       e, "Order %s received from Shopify (%s)%s", number, source,
                       cancelled ? ", already cancelled" : "");
    json_decref(items);
    out->outcome = ORDER_INGEST_CREATED;
    return rc;
}

/* ---- cancellation ----------------------------------------------------------------------- */

/* A cancellation this side cannot carry out (the order is completed or fulfilled): kept
 * for an operator, once. */
static int cancel_requested(db_conn *tx, const char *tenant_id, const stored_order *st,
                            const char *reason, const char *why, order_ingest_result *out, err *e)
{
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *t[] = {tenant_id, st->id, now};
    int64_t n = 0;
    int rc = db_exec_texts(tx,
                           "UPDATE orders SET cancel_requested_at = CAST($3 AS BIGINT),"
                           " review_reason = 'cancelled in Shopify after it was completed',"
                           " updated_at = CAST($3 AS BIGINT)"
                           " WHERE tenant_id = $1 AND id = $2 AND cancel_requested_at IS NULL",
                           t, 3, &n, e);
    if (rc || n == 0)
        return rc;
    out->outcome = ORDER_INGEST_UPDATED;
    rc = log_entry(tx, tenant_id, ORDERS_LOG_CANCEL_REQUESTED, EVENTLOG_WARNING, st->id, NULL,
                   json_pack("{s:s,s:s,s:s}", "reason", reason, "status",
                             order_status_name((order_status)st->status), "why", why),
                   e, "Order %s was cancelled in Shopify but is %s here", st->number,
                   order_status_name((order_status)st->status));
    if (rc)
        return rc;
    char msg[160];
    snprintf(msg, sizeof msg, "Order %s cancelled in Shopify after completion: needs review",
             st->number);
    json_t *fields =
        json_pack("{s:s,s:s,s:s,s:s}", "message", msg, "orderId", st->id, "orderNumber", st->number,
                  "status", order_status_name((order_status)st->status));
    rc = fields ? notify_alert(tx, tenant_id, NOTIFY_CANCEL_AFTER_DONE, fields, e)
                : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(fields);
    return rc;
}

static int cancel_order(db_conn *tx, bus *b, const char *tenant_id, const stored_order *st,
                        const shopify_order *o, order_ingest_result *out, err *e)
{
    if (st->status == ORDER_CANCELLED)
        return 0;
    const char *reason = o->cancel_reason ? o->cancel_reason : "no reason given";
    if (!order_status_can_move((order_status)st->status, ORDER_CANCELLED))
        return cancel_requested(tx, tenant_id, st, reason, "completed", out, e);
    /* The one cancellation path (cancellation.h): status, order.cancelled, the print
     * jobs' result, review flags and alerts. It refuses before writing anything. */
    orders_cancel_opts co = {
        .source = "webhook", .reason = reason, .cancelled_at_ms = o->cancelled_at_ms};
    json_t *result = NULL;
    err why;
    err_clear(&why);
    int rc = orders_cancel_in_tx(tx, b, tenant_id, st->id, &co, &result, &why);
    json_decref(result);
    if (rc == F3_ECONFLICT)
        return cancel_requested(tx, tenant_id, st, reason, why.msg, out, e);
    if (rc)
        return err_set(e, rc, "%s", why.msg);
    out->cancelled = true;
    out->outcome = ORDER_INGEST_UPDATED;
    return 0;
}

/* ---- the upsert ------------------------------------------------------------------------- */

static int updated(db_conn *tx, bus *b, const char *tenant_id, const stored_order *st,
                   const shopify_order *o, const char *source, order_ingest_result *out, err *e)
{
    int rc = 0;
    if (o->updated_at_ms > st->shopify_updated_at) {
        rc = update_order(tx, tenant_id, st, o, e);
        rc =
            rc ? rc
               : put_line_items(tx, tenant_id, st->id, st->number, o, NULL, &out->needs_mapping, e);
        rc = rc ? rc
                : log_entry(tx, tenant_id, ORDERS_LOG_UPDATED, EVENTLOG_INFO, st->id, NULL,
                            json_pack("{s:s,s:s?}", "source", source, "financialStatus",
                                      o->financial_status),
                            e, "Order %s updated from Shopify (%s)", st->number, source);
        out->outcome = ORDER_INGEST_UPDATED;
    }
    if (rc == 0 && o->cancelled_at_ms >= 0)
        rc = cancel_order(tx, b, tenant_id, st, o, out, e);
    return rc;
}

int order_ingest(db_conn *tx, bus *b, const char *tenant_id, const shopify_order *o,
                 order_ingest_mode mode, const char *source, order_ingest_result *out, err *e)
{
    memset(out, 0, sizeof *out);
    stored_order st;
    int rc = find_order(tx, tenant_id, o->id, &st, e);
    if (rc == 0 && !st.found) {
        bool inserted = false;
        uuid_v7(out->order_id);
        rc = insert_order(tx, tenant_id, o, out->order_id, &inserted, e);
        if (rc == 0 && inserted)
            return created(tx, b, tenant_id, o, source, out, e);
        /* Another transaction inserted it meanwhile: go on as with a stored order. */
        rc = rc ? rc : find_order(tx, tenant_id, o->id, &st, e);
        if (rc == 0 && !st.found)
            rc = err_set(e, F3_EBUSY, "order %s vanished while being stored", o->id);
    }
    if (rc)
        return rc;
    snprintf(out->order_id, sizeof out->order_id, "%s", st.id);
    out->outcome = ORDER_INGEST_UNCHANGED;
    if (mode == ORDER_INGEST_CREATE_ONLY)
        return 0;
    return updated(tx, b, tenant_id, &st, o, source, out, e);
}

int order_ingest_paid(db_conn *tx, bus *b, const char *tenant_id, const shopify_order *o,
                      order_ingest_result *out, err *e)
{
    int rc = order_ingest(tx, b, tenant_id, o, ORDER_INGEST_UPSERT, "webhook", out, e);
    if (rc || out->outcome == ORDER_INGEST_UNCHANGED)
        return rc;
    char num[24];
    return log_entry(tx, tenant_id, ORDERS_LOG_PAID, EVENTLOG_INFO, out->order_id, NULL,
                     json_pack("{s:s?}", "financialStatus", o->financial_status), e,
                     "Order %s paid (%s)", order_number(o, num),
                     o->financial_status ? o->financial_status : "unknown");
}

int order_ingest_refund(db_conn *tx, const char *tenant_id, const json_t *refund, err *e)
{
    char refund_id[SHOPIFY_ID_LEN], order_id[SHOPIFY_ID_LEN];
    if (!json_is_object(refund))
        return err_set(e, F3_EINVAL, "refund: expected a JSON object");
    int rc = shopify_json_id(refund, "id", false, refund_id, e);
    rc = rc ? rc : shopify_json_id(refund, "order_id", false, order_id, e);
    if (rc)
        return rc;
    stored_order st;
    rc = find_order(tx, tenant_id, order_id, &st, e);
    if (rc)
        return rc;
    const char *note = json_string_value(json_object_get(refund, "note"));
    return log_entry(tx, tenant_id, ORDERS_LOG_REFUNDED, EVENTLOG_INFO, st.found ? st.id : NULL,
                     NULL,
                     json_pack("{s:s,s:s,s:s?}", "refundId", refund_id, "shopifyOrderId", order_id,
                               "note", note),
                     e, "Refund %s created in Shopify for order %s%s", refund_id,
                     st.found ? st.number : order_id, st.found ? "" : " (not stored here)");
}
