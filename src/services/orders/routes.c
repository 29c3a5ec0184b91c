/*
 * routes.c - the orders service's route table (see orders_api.h): one row per route with
 * the permission or access marker the gateway's guard enforces.
 *
 * Must not hold handler logic: each handler lives in the file of its resource.
 */
#include "services/orders/api_internal.h"

#include "services/access/permissions.h"

int orders_api_add_routes(http_router *r, const orders_api_deps *deps, err *e)
{
    if (!r || !deps || !deps->db)
        return err_set(e, F3_EINVAL, "orders api: router and database are required");
    /* The routes borrow deps as their context; handlers only read through it. */
    union {
        const orders_api_deps *in;
        void *ctx;
    } borrowed = {.in = deps};
    void *ctx = borrowed.ctx;
    const http_route routes[] = {
        {"GET", "/api/v1/product-mappings", orders_api_mappings_list, ctx, PERM_MAPPINGS_READ},
        {"POST", "/api/v1/product-mappings", orders_api_mappings_create, ctx, PERM_MAPPINGS_WRITE},
        {"GET", "/api/v1/product-mappings/:id", orders_api_mappings_get, ctx, PERM_MAPPINGS_READ},
        {"PUT", "/api/v1/product-mappings/:id", orders_api_mappings_replace, ctx,
         PERM_MAPPINGS_WRITE},
        {"PATCH", "/api/v1/product-mappings/:id", orders_api_mappings_patch, ctx,
         PERM_MAPPINGS_WRITE},
        {"DELETE", "/api/v1/product-mappings/:id", orders_api_mappings_delete, ctx,
         PERM_MAPPINGS_WRITE},
        {"GET", "/api/v1/orders", orders_api_orders_list, ctx, PERM_ORDERS_READ},
        {"GET", "/api/v1/orders/:id", orders_api_orders_get, ctx, PERM_ORDERS_READ},
        {"GET", "/api/v1/events", orders_api_events_list, ctx, PERM_EVENTS_READ},
        {"GET", "/api/v1/analytics/summary", orders_api_analytics_summary, ctx,
         PERM_ANALYTICS_READ},
        {"GET", "/internal/orders/:id", orders_api_internal_get, ctx, HTTP_ACCESS_INTERNAL},
        {"GET", "/internal/orders/shopify/:shopifyOrderId", orders_api_internal_get_shopify, ctx,
         HTTP_ACCESS_INTERNAL},
        {"PATCH", "/internal/orders/:id/tracking", orders_api_internal_tracking, ctx,
         HTTP_ACCESS_INTERNAL},
    };
    return http_router_add(r, routes, sizeof routes / sizeof routes[0], e);
}
