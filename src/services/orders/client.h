/*
 * client.h - what other services may read of the orders service (ARCHITECTURE.md §2: the
 * orders service owns orders, line items, product mappings and assembly parts; another
 * service reads them only through these calls, never with its own SQL).
 *
 * Reads only, always filtered on the tenant; c may be inside the caller's transaction. The
 * print service's reads are in client.c, the shipping service's in client_shipping.c.
 */
#ifndef F3_ORDERS_CLIENT_H
#define F3_ORDERS_CLIENT_H

#include "core/err.h"
#include "db/db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORDERS_CLIENT_ID_MAX 64

/* One print file of a mapped product: what one unit of the SKU needs printed. */
typedef struct orders_client_part {
    char mapping_id[ORDERS_CLIENT_ID_MAX + 1];
    char part_id[ORDERS_CLIENT_ID_MAX + 1]; /* assembly_parts.id */
    int part_number;
    char file_id[129];       /* SimplyPrint file (library) id */
    char file_name[256];     /* "" when unknown */
    int quantity_per_unit;   /* copies of this part per unit, >= 1 */
    char queue_group_id[32]; /* the mapping's SimplyPrint queue group; "" = none */
} orders_client_part;

/* The print files of the tenant's active mapping of sku, by part number. *n = 0 when the
 * SKU has no active mapping or the mapping has no parts. Caller frees *out with free().
 * 0 or a db error. */
int orders_client_sku_parts(db_conn *c, const char *tenant_id, const char *sku,
                            orders_client_part **out, size_t *n, err *e);

/* One line item of an order, as the print service needs it. */
typedef struct orders_client_line_item {
    char id[ORDERS_CLIENT_ID_MAX + 1];
    char sku[256]; /* "" when the line item has none */
    int quantity;
} orders_client_line_item;

/* The line items of order_id (tenant_id's), oldest first. F3_ENOTFOUND when the tenant has
 * no such order. Caller frees *out with free(). */
int orders_client_line_items(db_conn *c, const char *tenant_id, const char *order_id,
                             orders_client_line_item **out, size_t *n, err *e);

/* ---- for the shipping service (client_shipping.c) ---------------------------------------- */

/* One order as the shipping service sees it. Strings are owned; clear with
 * orders_client_shipping_view_clear. Address fields are NULL when the order has none. */
typedef struct orders_shipping_view {
    char *id, *number, *status;
    char *customer_name, *customer_email;
    char *name, *company, *address1, *address2, *city, *zip, *province_code, *country_code, *phone;
    int64_t total_minor;
    char currency[8];
    int currency_exponent; /* decimals of the currency (2 when unknown) */
    int64_t weight_grams;  /* sum over line items of quantity x parts x part weight; 0 when
                              any line item has no mapping or a part without a weight */
} orders_shipping_view;

/* Reads order_id of tenant_id on c (any transaction state). F3_ENOTFOUND when the tenant
 * has no such order; F3_EINVAL when its stored address is not a JSON object; a db error
 * otherwise. out is always initialised: clear it. */
int orders_client_shipping_view(db_conn *c, const char *tenant_id, const char *order_id,
                                orders_shipping_view *out, err *e);

void orders_client_shipping_view_clear(orders_shipping_view *v);

/* ---- for every service ------------------------------------------------------------------ */

/* The order's status ("PENDING", ..., "CANCELLED") into out. F3_ENOTFOUND when the tenant
 * has no such order. */
int orders_client_order_status(db_conn *c, const char *tenant_id, const char *order_id,
                               char out[32], err *e);

#endif
