/*
 * fulfillment.h - Shopify fulfilment of the orders service (seed 001 F3.1): an order whose
 * prints are done is fulfilled in Shopify through the fulfillment-order flow, with the
 * tracking of its shipment and notify_customer, exactly once.
 *
 * Triggers:
 *   shipment.created (bus)                      -> a fulfilment request with its tracking
 *   order.ready-for-fulfillment (the service's own emitter, internal event), when the
 *     tenant has no shipping integration connected (integrations_state.h)
 *                                               -> a fulfilment request without tracking
 *   POST /api/v1/fulfillments/order/:orderId          (orders.write) fulfils now
 *   POST /api/v1/fulfillments/order/:orderId/force    (orders.write) also for an order that
 *     is not COMPLETED (never a CANCELLED one); logged as WARNING with the user id
 * A request is recorded (order_fulfillments, with its tracking) and a job is added to
 * ORDERS_FULFILLMENT_QUEUE in the same transaction; the job calls Shopify.
 *
 * Never twice: before calling Shopify, a worker claims the order's order_fulfillments row
 * in a transaction (PENDING/RETRY -> CLAIMED); a concurrent duplicate finds it claimed and
 * does nothing (but adds a job that looks again once the claim would be stale), a later one
 * finds it DONE. The holder renews the claim (claimed_at) before every Shopify call; a claim
 * older than ORDERS_FULFILLMENT_STALE_MS (its worker died) may be taken over; the new
 * worker then first reads the fulfillment orders, so an order Shopify already fulfilled is
 * recorded, not fulfilled again.
 * Never for a CANCELLED order; an order not COMPLETED is skipped unless forced.
 *
 * Failures: transient (429 with Retry-After, 5xx, timeouts) -> state RETRY and, in the same
 * transaction, a FULFILLMENT entry {orderId} in the retry queue (services/common/retry.h;
 * none when a PENDING one exists), first due after retry_base_ms or the provider's
 * Retry-After, whichever is later. Its handler (registered on deps->retry) fulfils again;
 * a transient failure there leaves the entry to the queue's backoff (respecting
 * Retry-After), and on the entry's last attempt fails the fulfilment (state FAILED, an
 * ERROR "fulfillment.failed") while the queue writes RETRY_EXHAUSTED and raises the one
 * operator alert. Permanent (other 4xx, no shop, nothing to fulfil) -> state FAILED, an
 * ERROR event-log entry "fulfillment.failed" and one operator alert FULFILLMENT_FAILED
 * (a retry entry that meets it ends FAILED without a second alert); the order stays
 * COMPLETED. Only an operator's request (the route, or a manual retry of the entry) tries
 * a FAILED order again.
 * Success -> orders.shopify_fulfillment_id, tracking and fulfilled_at set, event log
 * "order.fulfilled", and the internal order.fulfilled emitted on the service's emitter
 * (fulfillment.retrying / fulfillment.failed on failures, with the error and willRetry).
 * shipment.status-changed keeps orders.shipment_status and shipment_delivered_at current.
 */
#ifndef F3_ORDERS_FULFILLMENT_H
#define F3_ORDERS_FULFILLMENT_H

#include "bus/bus.h"
#include "core/config.h"
#include "core/err.h"
#include "db/db.h"
#include "http/router.h"
#include "integrations/shopify/order.h"
#include "services/common/retry.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define ORDERS_FULFILLMENT_QUEUE "shopify.fulfillment@order-service"
#define ORDERS_FULFILLMENT_JOB   "shopify.fulfillment"
/* The claim is renewed before every Shopify call and one call takes at most 30 s (the
 * client timeout of orders/connections.c, connecting included): a live worker's claim is
 * never older than one call plus a short transaction. Three calls' time tells a dead
 * worker from a slow one with room for a slow database. */
#define ORDERS_FULFILLMENT_STALE_MS (90 * 1000LL)

/* Event log types written here (besides the catalog's event names). */
#define ORDERS_LOG_FULFILLED          BUS_IEV_ORDER_FULFILLED
#define ORDERS_LOG_FULFILLMENT_FAILED BUS_IEV_FULFILLMENT_FAILED
#define ORDERS_LOG_FULFILLMENT_RETRY  BUS_IEV_FULFILLMENT_RETRYING
#define ORDERS_LOG_FULFILLMENT_FORCED "fulfillment.forced"
#define ORDERS_LOG_SHIPMENT_STATUS    BUS_IEV_SHIPMENT_STATUS_CHANGED

typedef struct orders_fulfillment orders_fulfillment;

typedef struct orders_fulfillment_deps {
    db *db;               /* borrowed; must outlive the module */
    bus *bus;             /* the orders service's bus, not started yet */
    bus_store *store;     /* the store under that bus */
    const config *config; /* read at start only (the sealing key) */
    bus_emitter *emitter; /* the orders service's emitter; NULL = no internal events */
    /* The orders service's retry queue (borrowed; must outlive the module): the FULFILLMENT
     * handler is registered on it. NULL in a process that does not run those entries
     * (they are still enqueued). */
    retry_queue *retry;
    int max_attempts;      /* attempts of a FULFILLMENT entry; 0 = RETRY_DEFAULT_MAX_ATTEMPTS */
    int64_t retry_base_ms; /* delay of an entry's first attempt; 0 = RETRY_BASE_DELAY_MS */
} orders_fulfillment_deps;

/* Loads the sealing key, subscribes to shipment.created and shipment.status-changed,
 * listens for order.ready-for-fulfillment on deps->emitter (when given), registers
 * ORDERS_FULFILLMENT_QUEUE and the FULFILLMENT retry handler (on deps->retry, when given:
 * call before retry_schedule) and adds the two routes to r (when not NULL). Call before
 * bus_start. 0 with *out set (caller frees with orders_fulfillment_free after the HTTP
 * server and the bus are stopped), or an error with e set. */
int orders_fulfillment_start(orders_fulfillment **out, const orders_fulfillment_deps *deps,
                             http_router *r, err *e);

/* Frees the module (and wipes the key). NULL is ignored. */
void orders_fulfillment_free(orders_fulfillment *f);

/* Tracking of a shipment; every field may be NULL. */
typedef struct orders_tracking {
    const char *number, *url, *carrier, *shipment_id;
} orders_tracking;

/* Records a fulfilment request for order_id of tenant_id inside tx (tracking, when given,
 * replaces the stored one unless the order is fulfilled already) and adds a job to
 * ORDERS_FULFILLMENT_QUEUE. 0 or a db error. */
int orders_fulfillment_request(orders_fulfillment *f, db_conn *tx, const char *tenant_id,
                               const char *order_id, const orders_tracking *t, err *e);

typedef enum orders_fulfil_outcome {
    ORDERS_FULFIL_DONE,          /* fulfilled in Shopify by this call */
    ORDERS_FULFIL_ALREADY,       /* fulfilled before (here or, found by this call, in Shopify) */
    ORDERS_FULFIL_IN_PROGRESS,   /* another worker holds the claim */
    ORDERS_FULFIL_CANCELLED,     /* the order is cancelled: never fulfilled */
    ORDERS_FULFIL_NOT_COMPLETED, /* skipped: not COMPLETED and not forced */
    ORDERS_FULFIL_RETRYING,      /* transient failure; the retry queue tries again */
    ORDERS_FULFIL_FAILED,        /* permanent failure (now, or earlier and not retried) */
} orders_fulfil_outcome;

/* "fulfilled", "already-fulfilled", "in-progress", "cancelled", "not-completed",
 * "retry-scheduled", "failed". */
const char *orders_fulfil_outcome_name(orders_fulfil_outcome o);

typedef struct orders_fulfil_opts {
    bool force;          /* also when not COMPLETED (never when CANCELLED) */
    bool operator;       /* an operator asked: a FAILED order is tried again */
    const char *user_id; /* the operator, for the log; may be NULL */
    /* Run by a FULFILLMENT retry entry: a transient failure adds no entry (that one is
     * retried); on its last attempt (last_attempt) it fails the fulfilment without an
     * alert of its own (the retry queue raises RETRY_EXHAUSTED's). */
    bool by_retry_queue;
    bool last_attempt;
} orders_fulfil_opts;

typedef struct orders_fulfil_result {
    orders_fulfil_outcome outcome;
    char order_status[24];
    char fulfillment_id[SHOPIFY_ID_LEN * 4]; /* ids joined by ',' (one per location) */
    char tracking_number[128];
    char error[ERR_MSG_MAX]; /* why it failed or is retried; "" otherwise */
    /* RETRYING: the least wait before the next attempt - the new entry's delay, or (when
     * by_retry_queue) the provider's Retry-After, 0 without one. */
    int64_t retry_in_ms;
    bool alerted; /* this call raised an operator alert (a permanent failure) */
} orders_fulfil_result;

/* Fulfils order_id of tenant_id now (claim, Shopify, outcome), as described above.
 * 0 with *r filled for every outcome; F3_ENOTFOUND when the tenant has no such order;
 * a db error otherwise (nothing was sent to Shopify unless r->outcome says so). */
int orders_fulfil(orders_fulfillment *f, const char *tenant_id, const char *order_id,
                  const orders_fulfil_opts *o, orders_fulfil_result *r, err *e);

/* An order became ready for fulfilment inside tx (the transaction that completed it):
 * requests a fulfilment in that same transaction unless the tenant has a shipping
 * integration connected (then the shipment's shipment.created does). The orchestration's
 * on_ready hook. 0 or a db error. */
int orders_fulfillment_ready_tx(orders_fulfillment *f, db_conn *tx, const char *tenant_id,
                                const char *order_id, err *e);

/* The listener of the internal order.ready-for-fulfillment (payload {orderId, tenantId}):
 * requests a fulfilment unless the tenant has a shipping integration connected (then the
 * shipment's shipment.created does). ctx is the orders_fulfillment. */
int orders_fulfillment_on_ready(const char *event, const json_t *payload, void *ctx, err *e);

/* Raises an operator alert of `type` (a notify_kind name, e.g. "FULFILLMENT_FAILED",
 * "CANCELLATION_NEEDS_REVIEW") inside tx through services/common/notify.h: an
 * operator.alert event-log entry and an e-mail queued in the same transaction. metadata
 * (borrowed, may be NULL) becomes the alert's details. F3_EINVAL for an unknown type. */
int orders_alert(db_conn *tx, const char *tenant_id, const char *order_id, const char *type,
                 bool warning, const char *message, const json_t *metadata, err *e);

#endif
