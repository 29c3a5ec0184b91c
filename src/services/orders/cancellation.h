/*
 * cancellation.h - order cancellation (seed 001 F3.2), from the orders/cancelled webhook
 * (through the intake's order upsert, ingest.h) and from POST /api/v1/orders/:id/cancel
 * (permission orders.write, optional body {"reason": "..."}).
 *
 * Cancelling moves the order to CANCELLED (cancelled_at set) and publishes order.cancelled
 * in the same transaction: the print service cancels the order's PENDING/QUEUED/ASSIGNED
 * jobs and the shipping service its shipment when they consume it; this module never
 * touches their tables. It reads the jobs' states through print_client_order_tally and
 * answers what the cancellation means for them: jobs to be cancelled, PRINTING jobs
 * flagged for operator review (orders.review_reason set, an operator alert), COMPLETED
 * jobs reported. The result is logged (event log "order.cancelled") and stored; a repeated
 * cancellation answers the stored result with alreadyCancelled true and publishes nothing.
 * An order COMPLETED, or whose Shopify fulfilment is done or under way, is not cancelled
 * (F3_ECONFLICT); a cancelled order is never fulfilled (fulfillment.h checks).
 *
 * The result:
 *   {"orderId","orderNumber","status":"CANCELLED","cancelledAt","alreadyCancelled","source",
 *    "reason","jobs":{"total","toCancel","flaggedForReview","alreadyCompleted",
 *    "alreadyEnded"},"needsReview"}
 */
#ifndef F3_ORDERS_CANCELLATION_H
#define F3_ORDERS_CANCELLATION_H

#include "bus/bus.h"
#include "core/err.h"
#include "db/db.h"
#include "http/router.h"

#include <jansson.h>
#include <stdint.h>

#define ORDERS_LOG_CANCELLATION_REVIEW "order.cancellation-needs-review"

typedef struct orders_cancel_opts {
    const char *source;      /* "webhook", "api", ...; NULL = "api" */
    const char *reason;      /* may be NULL */
    const char *user_id;     /* the operator, for the log; may be NULL */
    int64_t cancelled_at_ms; /* < 0 or 0 = now */
} orders_cancel_opts;

/* Cancels order_id of tenant_id inside tx (the caller's open transaction) and publishes
 * through b (the orders service's bus). 0 with *result set (caller frees with json_decref);
 * F3_ENOTFOUND (no such order for the tenant), F3_ECONFLICT (it cannot be cancelled any
 * more; e says why), or a db / bus error (the caller rolls back). */
int orders_cancel_in_tx(db_conn *tx, bus *b, const char *tenant_id, const char *order_id,
                        const orders_cancel_opts *o, json_t **result, err *e);

/* orders_cancel_in_tx in a transaction of its own on d. */
int orders_cancel(db *d, bus *b, const char *tenant_id, const char *order_id,
                  const orders_cancel_opts *o, json_t **result, err *e);

typedef struct orders_cancellation_deps {
    db *db;   /* borrowed; must outlive the routes */
    bus *bus; /* the orders service's bus */
} orders_cancellation_deps;

/* Adds POST /api/v1/orders/:id/cancel to r; deps is borrowed by the route and must outlive
 * the router. 0 or F3_EINVAL / F3_ENOMEM. */
int orders_cancellation_add_routes(http_router *r, const orders_cancellation_deps *deps, err *e);

#endif
