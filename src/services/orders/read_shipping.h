/*
 * read_shipping.h - the orders service's read calls for the shipping service: what a
 * shipment needs to know of an order (recipient, address, number, total, status, weight
 * of the printed parts). The orders service owns these tables; the shipping service reads
 * them only through these functions and never writes them.
 */
#ifndef F3_ORDERS_READ_SHIPPING_H
#define F3_ORDERS_READ_SHIPPING_H

#include "core/err.h"
#include "db/db.h"

#include <stdbool.h>
#include <stdint.h>

/* One order as the shipping service sees it. Strings are owned; clear with
 * orders_shipping_view_clear. Address fields are NULL when the order has none. */
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
int orders_read_for_shipping(db_conn *c, const char *tenant_id, const char *order_id,
                             orders_shipping_view *out, err *e);

void orders_shipping_view_clear(orders_shipping_view *v);

/* Whether the order's status is CANCELLED, for a quick check inside the shipping
 * service's own transactions. F3_ENOTFOUND when the tenant has no such order. */
int orders_read_is_cancelled(db_conn *c, const char *tenant_id, const char *order_id,
                             bool *cancelled, err *e);

#endif
