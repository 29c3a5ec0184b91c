/*
 * orders_api.h - the orders service's HTTP API: product mappings, orders, the event log,
 * analytics (public, behind the gateway's guard) and the internal order API of seed 004.
 *
 *   GET    /api/v1/product-mappings          ?q= (SKU or name) &page=1 &pageSize=20 (1..100)
 *   GET    /api/v1/product-mappings/:id
 *   POST   /api/v1/product-mappings          201; 409 when the tenant has the SKU already
 *   PUT    /api/v1/product-mappings/:id      full replacement (files replace every part)
 *   PATCH  /api/v1/product-mappings/:id      the fields given replace the stored ones
 *   DELETE /api/v1/product-mappings/:id      204; the line items linked to it need a mapping again
 *   GET    /api/v1/orders                    ?status= &from= &to= &q= &needsMapping=true|false
 *                                            &sort=createdAt|updatedAt|orderNumber
 *                                            &order=asc|desc &limit=(1..100, default 25) &cursor=
 *   GET    /api/v1/orders/:id                line items (with mapping state), print jobs,
 *                                            shipment, fulfilment fields and the order's events
 *   GET    /api/v1/events                    ?orderId= &severity= &eventType= &from= &to=
 *                                            &limit= &cursor=
 *   GET    /api/v1/analytics/summary         ?from= &to= (default: the last 30 days)
 *   GET    /internal/orders/:id              ?tenantId= (required)
 *   GET    /internal/orders/shopify/:shopifyOrderId  ?tenantId= (required)
 *   PATCH  /internal/orders/:id/tracking     ?tenantId= ;
 * {"trackingNumber","trackingUrl","carrier"?}
 *
 * Lists answer {"data":[...],"nextCursor":"..."|null}; the cursor is opaque. Times are
 * ISO-8601 UTC; `from` is inclusive and `to` exclusive (a bare date as `to` means the end
 * of that day). Errors are the one error body of http/response.h; a 400 names the field
 * or parameter ("files[0].copies: must be at least 1").
 *
 * ACCESS: public routes declare their permission (mappings.read / mappings.write /
 * orders.read / events.read / analytics.read) and read the caller's tenant from the user
 * context the guard attached (user_ctx_of); every query filters on that tenant, and a row
 * of another tenant is answered 404 exactly like a missing one. internal routes declare
 * HTTP_ACCESS_INTERNAL (the guard checks X-Internal-Key) and take the tenant from the
 * tenantId query parameter. The handlers themselves check no permission.
 */
#ifndef F3_ORDERS_ORDERS_API_H
#define F3_ORDERS_ORDERS_API_H

#include "core/err.h"
#include "db/db.h"
#include "http/router.h"

/* What the routes work on. Borrowed by the routes: it (and the database) must outlive
 * the router and any server serving it. */
typedef struct orders_api_deps {
    db *db;
} orders_api_deps;

/* Adds every route above to r. 0, or F3_EINVAL (deps or its db missing, or a route the
 * router refuses) / F3_ENOMEM. */
int orders_api_add_routes(http_router *r, const orders_api_deps *deps, err *e);

#endif
