/*
 * ingest.h - storing Shopify orders: the one upsert path shared by webhooks, backfill and
 * reconciliation, with its events and event log entries in the caller's transaction.
 *
 * An order is keyed by (tenant, Shopify order id). The first time it is seen it is
 * inserted with its line items and `order.created` is published (unless it arrives already
 * cancelled: nothing is to be printed then); later revisions update it only when their
 * Shopify updated_at is newer than the stored one, so an old delivery never overwrites a
 * new one and replaying the same order is a no-op. A line item without a SKU, or whose
 * SKU has no active product mapping, is flagged needs_mapping and reported (event log
 * "order.needs-mapping" and an "operator.alert" entry). A revision that says the order
 * was cancelled moves it to CANCELLED where the status table allows (publishing
 * `order.cancelled`), else records the request for an operator. Every function here
 * writes only inside the given transaction and never commits it.
 */
#ifndef F3_ORDERS_INGEST_H
#define F3_ORDERS_INGEST_H

#include "bus/bus.h"
#include "core/err.h"
#include "core/uuid.h"
#include "db/db.h"
#include "integrations/shopify/order.h"

#include <jansson.h>
#include <stdbool.h>

/* Event log types written here (besides the catalog's event names). */
#define ORDERS_LOG_CREATED           BUS_EV_ORDER_CREATED
#define ORDERS_LOG_UPDATED           "order.updated"
#define ORDERS_LOG_PAID              "order.paid"
#define ORDERS_LOG_CANCELLED         BUS_EV_ORDER_CANCELLED
#define ORDERS_LOG_CANCEL_REQUESTED  "order.cancel-requested"
#define ORDERS_LOG_REFUNDED          "order.refunded"
#define ORDERS_LOG_NEEDS_MAPPING     "order.needs-mapping"
#define ORDERS_LOG_SHOP_DISCONNECTED "integration.shopify-disconnected"

typedef enum order_ingest_outcome {
    ORDER_INGEST_UNCHANGED,
    ORDER_INGEST_CREATED,
    ORDER_INGEST_UPDATED,
} order_ingest_outcome;

typedef enum order_ingest_mode {
    ORDER_INGEST_UPSERT,      /* insert, or update when this revision is newer */
    ORDER_INGEST_CREATE_ONLY, /* orders/create: an order already stored stays as it is */
} order_ingest_mode;

typedef struct order_ingest_result {
    order_ingest_outcome outcome;
    char order_id[UUID_STR_LEN]; /* our id of the order */
    int needs_mapping;           /* line items flagged by this call */
    bool cancelled;              /* this call moved the order to CANCELLED */
} order_ingest_result;

/* Upserts order o for tenant_id inside tx and publishes through b (a bus of the orders
 * service). source says where the order came from ("webhook", "backfill") for the log.
 * 0 with *out filled, or the db / bus error (the caller rolls back). */
int order_ingest(db_conn *tx, bus *b, const char *tenant_id, const shopify_order *o,
                 order_ingest_mode mode, const char *source, order_ingest_result *out, err *e);

/* orders/paid: order_ingest, then an "order.paid" event log entry when something changed. */
int order_ingest_paid(db_conn *tx, bus *b, const char *tenant_id, const shopify_order *o,
                      order_ingest_result *out, err *e);

/* refunds/create: records the refund (a Shopify refund object with "id" and "order_id")
 * in the event log, against the order when it is stored. F3_EINVAL for a refund without
 * those ids. */
int order_ingest_refund(db_conn *tx, const char *tenant_id, const json_t *refund, err *e);

#endif
