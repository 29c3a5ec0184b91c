/*
 * fulfillment.h - Shopify's fulfillment-order flow as data (integrations spec
 * §1.9): the fulfillment orders of an order, the body of POST /fulfillments.json
 * and the fulfillment it returns.
 *
 * Shopify splits an order into fulfillment orders (one per location) whose line
 * items have their own ids; a fulfillment names those, never the order's line
 * items. This module builds and reads JSON only; client.h sends it.
 */
#ifndef F3_INTEGRATIONS_SHOPIFY_FULFILLMENT_H
#define F3_INTEGRATIONS_SHOPIFY_FULFILLMENT_H

#include "core/err.h"
#include "integrations/shopify/order.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct shopify_fo_line_item {
    char id[SHOPIFY_ID_LEN];           /* the fulfillment-order line item */
    char line_item_id[SHOPIFY_ID_LEN]; /* the order's line item it stands for */
    char variant_id[SHOPIFY_ID_LEN];   /* "" when null */
    int64_t quantity;
    int64_t fulfillable_quantity;
} shopify_fo_line_item;

typedef struct shopify_fulfillment_order {
    char id[SHOPIFY_ID_LEN];
    char order_id[SHOPIFY_ID_LEN];
    char assigned_location_id[SHOPIFY_ID_LEN]; /* "" when null */
    const char *status;          /* open, in_progress, scheduled, on_hold, incomplete, closed,
                                    cancelled */
    const char *request_status;  /* may be NULL */
    bool can_create_fulfillment; /* supported_actions contains "create_fulfillment" */
    shopify_fo_line_item *line_items;
    size_t line_item_count;
} shopify_fulfillment_order;

typedef struct shopify_fulfillment_orders {
    shopify_fulfillment_order *items;
    size_t count;
    json_t *doc_; /* private: the strings above are borrowed from it */
} shopify_fulfillment_orders;

/* Reads {"fulfillment_orders":[...]} (a new reference to doc is kept).
 * 0, F3_EINVAL naming the field ("fulfillment_orders[0].line_items[1].id"), or
 * F3_ENOMEM; on error *out is empty. Caller frees with shopify_fulfillment_orders_free(). */
int shopify_fulfillment_orders_from_json(json_t *doc, shopify_fulfillment_orders *out, err *e);

/* Frees and empties; NULL and empty values are fine. */
void shopify_fulfillment_orders_free(shopify_fulfillment_orders *fos);

/* True when a fulfillment may be created for fo now: status open or in_progress
 * and create_fulfillment among its supported actions. */
bool shopify_fulfillment_order_fulfillable(const shopify_fulfillment_order *fo);

/* One fulfillment-order line item and how many of it to fulfil. */
typedef struct shopify_fo_line_selection {
    const char *id; /* shopify_fo_line_item.id */
    int64_t quantity;
} shopify_fo_line_selection;

/* A fulfillment order to fulfil: the given lines, or (line_count 0) all that remains. */
typedef struct shopify_fo_selection {
    const char *fulfillment_order_id;
    const shopify_fo_line_selection *lines;
    size_t line_count;
} shopify_fo_selection;

typedef struct shopify_fulfillment_request {
    const shopify_fo_selection *orders; /* all of one order and one location */
    size_t order_count;                 /* >= 1 */
    const char *tracking_number;        /* may be NULL */
    const char *tracking_company; /* a carrier name Shopify knows, e.g. "PostNL"; may be NULL */
    const char *tracking_url;     /* needs tracking_number; may be NULL */
    bool notify_customer;
    const char *message; /* may be NULL */
} shopify_fulfillment_request;

/* Builds the body of POST /fulfillments.json ({"fulfillment":{...}}) with the
 * ids as JSON integers. 0 with *out set (caller frees with json_decref), or
 * F3_EINVAL for ids that are not positive integers, quantities below 1, no
 * fulfillment order, or a tracking URL without a number; F3_ENOMEM. */
int shopify_fulfillment_request_json(const shopify_fulfillment_request *rq, json_t **out, err *e);

/* A created fulfillment as Shopify returns it. */
typedef struct shopify_fulfillment {
    char id[SHOPIFY_ID_LEN];
    char order_id[SHOPIFY_ID_LEN];
    const char *status;                                            /* "success", "pending", ... */
    const char *tracking_company, *tracking_number, *tracking_url; /* may be NULL */
    json_t *doc_;                                                  /* private */
} shopify_fulfillment;

/* Reads {"fulfillment":{...}} (a new reference to doc is kept). 0 or F3_EINVAL
 * naming the field; caller frees with shopify_fulfillment_free(). */
int shopify_fulfillment_from_json(json_t *doc, shopify_fulfillment *out, err *e);

/* Frees and empties; NULL is fine. */
void shopify_fulfillment_free(shopify_fulfillment *f);

#endif
