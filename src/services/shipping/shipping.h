/*
 * shipping.h - the shipping service (Sendcloud), wired in one call.
 *
 * On order.ready-for-fulfillment (its own queue on the shipping bus) it records a PENDING
 * shipment for the order (UNIQUE per tenant and order: one shipment whatever the number of
 * deliveries) and queues the work; the job calls Sendcloud outside any transaction (the
 * order id is the provider's idempotency key), then stores tracking, carrier, status and
 * the label PDF and publishes shipment.created in one transaction. Transient failures
 * (timeouts, 429 with Retry-After, 5xx) are retried with backoff up to
 * SENDCLOUD_MAX_ATTEMPTS; permanent ones mark the shipment FAILED with an ERROR in the
 * event log and an operator alert. On order.cancelled it cancels the shipment while it is
 * not with the carrier (else a WARNING and an alert).
 *
 * Status changes come from the Sendcloud webhook and from the reconciliation poller (the
 * repeatable job SHIPPING_RECONCILE_QUEUE every SENDCLOUD_RECONCILE_INTERVAL); both apply
 * them the same way (sendcloud.shipment.status_changed: the row updated, stale updates
 * dropped) and publish shipment.status-changed.
 *
 * Routes (added to the caller's router):
 *   PUT/GET/DELETE /api/v1/integrations/sendcloud   integrations.manage
 *   POST   /api/v1/webhooks/sendcloud               public; Sendcloud-Signature checked
 *   GET    /api/v1/shipments                        shipments.read; status, orderId,
 *                                                   carrier filters; limit, cursor paging
 *   GET    /api/v1/shipments/:id                    shipments.read
 *   GET    /api/v1/shipments/:id/label              shipments.read; application/pdf
 *   POST   /internal/shipments        {orderId}     internal; ?tenantId=
 *   DELETE /internal/shipments/:orderId             internal; ?tenantId=
 *
 * Credentials live per tenant in sendcloud_connections, sealed (secret_key_load); a
 * client is built from the stored row for every call, so a change made through the API
 * takes effect at once, without a restart. Nothing here logs a key.
 */
#ifndef F3_SHIPPING_SHIPPING_H
#define F3_SHIPPING_SHIPPING_H

#include "bus/bus.h"
#include "core/config.h"
#include "core/err.h"
#include "db/db.h"
#include "http/router.h"

#define SHIPPING_CREATE_QUEUE     "sendcloud.shipment.create@shipping-service"
#define SHIPPING_CANCEL_QUEUE     "sendcloud.shipment.cancel@shipping-service"
#define SHIPPING_WEBHOOK_QUEUE    "sendcloud.webhook@shipping-service"
#define SHIPPING_RECONCILE_QUEUE  "sendcloud.reconcile@shipping-service"
#define SHIPPING_RECONCILE_REPEAT "sendcloud-reconcile"

typedef struct shipping_service shipping_service;

typedef struct shipping_deps {
    db *db;                /* borrowed; must outlive the service */
    bus *bus;              /* a bus of the shipping service (BUS_SVC_SHIPPING), not started */
    bus_store *store;      /* the store under that bus */
    const config *config;  /* read at start only */
    const char *tenant_id; /* the tenant SENDCLOUD_PUBLIC_KEY/SECRET_KEY connect; required
                              when they are set */
} shipping_deps;

/* Loads the sealing key, connects the configured account (SENDCLOUD_PUBLIC_KEY, ...) for
 * deps->tenant_id when set, adds the routes to r (when not NULL), subscribes to
 * order.ready-for-fulfillment and order.cancelled, registers the job queues and declares
 * the reconciliation repeatable. Call before bus_start. 0 with *out set (caller frees with
 * shipping_service_free after the HTTP server and the bus are stopped), or an error. */
int shipping_service_start(shipping_service **out, const shipping_deps *deps, http_router *r,
                           err *e);

/* Stops a reconciliation run between shipments. */
void shipping_service_stop(shipping_service *s);

/* Frees the service (and wipes the key). NULL is ignored. */
void shipping_service_free(shipping_service *s);

#endif
