/*
 * order.h - a Shopify order (REST representation, also the body of orders/...
 * webhooks; integrations spec §1.7) read into a C struct with validation.
 *
 * Every rejection names the field ("field 'line_items[1].price' is not a decimal
 * amount"). Money becomes integer minor units of the order's currency (parsed
 * from Shopify's decimal strings exactly, never through floating point); ids
 * (64-bit integers in JSON) become decimal text; times become epoch ms.
 * This module only reads: it neither stores nor fetches orders.
 */
#ifndef F3_INTEGRATIONS_SHOPIFY_ORDER_H
#define F3_INTEGRATIONS_SHOPIFY_ORDER_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for any int64 in decimal plus the NUL. */
#define SHOPIFY_ID_LEN 21

/* A shipping address; every field may be NULL (absent, null or redacted). */
typedef struct shopify_address {
    const char *first_name, *last_name, *name, *company;
    const char *address1, *address2, *city, *province, *province_code, *zip;
    const char *country, *country_code, *phone;
} shopify_address;

/* Most units one order line may ask for: far beyond any print farm's order, well within
 * the 32-bit quantity columns. */
#define SHOPIFY_MAX_QUANTITY 1000000

typedef struct shopify_line_item {
    char id[SHOPIFY_ID_LEN];
    char product_id[SHOPIFY_ID_LEN]; /* "" when null (custom item or deleted product) */
    char variant_id[SHOPIFY_ID_LEN]; /* "" when null */
    const char *sku;                 /* NULL when absent, null or empty */
    const char *title;
    const char *variant_title;    /* may be NULL */
    int64_t quantity;             /* 1..SHOPIFY_MAX_QUANTITY */
    int64_t fulfillable_quantity; /* quantity when absent */
    int64_t price_minor;          /* unit price in minor units */
    bool requires_shipping;       /* true when absent */
} shopify_line_item;

typedef struct shopify_order {
    char id[SHOPIFY_ID_LEN];
    const char *name;                                     /* "#1001" */
    int64_t order_number;                                 /* 1001 */
    const char *email;                                    /* may be NULL */
    const char *customer_first_name, *customer_last_name; /* may be NULL */
    const char *financial_status;                         /* may be NULL (redacted payloads) */
    const char *fulfillment_status;                       /* NULL = unfulfilled */
    const char *cancel_reason;                            /* may be NULL */
    int64_t cancelled_at_ms;                              /* -1 when not cancelled */
    char currency[4];                                     /* ISO 4217, e.g. "EUR" */
    int currency_exponent;                                /* decimals of the currency: 0, 2 or 3 */
    int64_t total_price_minor;
    int64_t subtotal_price_minor; /* 0 when absent */
    int64_t total_tax_minor;      /* 0 when absent */
    bool has_shipping_address;
    shopify_address shipping_address; /* all NULL without one */
    shopify_line_item *line_items;
    size_t line_item_count;
    int64_t created_at_ms, updated_at_ms;
    bool test;
    json_t *doc_; /* private: the document the strings above are borrowed from */
} shopify_order;

/*
 * Parses and validates len bytes of order JSON. On success *out holds the order
 * (its strings are borrowed from a copy of the document kept inside it); caller
 * frees with shopify_order_free(). F3_EINVAL with e naming the field, or
 * F3_ENOMEM; *out is then empty (and safe to free).
 */
int shopify_order_parse(const char *json_text, size_t len, shopify_order *out, err *e);

/* As shopify_order_parse, from a parsed object (a new reference is taken). */
int shopify_order_from_json(json_t *obj, shopify_order *out, err *e);

/* Reads field (a positive JSON integer) as decimal text into out; with nullable,
 * an absent or null field gives "". 0 or F3_EINVAL naming the field. For every
 * Shopify id (orders, line items, fulfillment orders, ...). */
int shopify_json_id(const json_t *obj, const char *field, bool nullable, char out[SHOPIFY_ID_LEN],
                    err *e);

/* Frees what an order holds and empties it; NULL and empty orders are fine. */
void shopify_order_free(shopify_order *o);

/* Decimals of an ISO 4217 currency: 0 (JPY, KRW, ...), 3 (BHD, KWD, ...) or 2
 * for every other three-letter code; -1 when code is not three uppercase letters. */
int shopify_currency_exponent(const char *code);

/*
 * Parses a decimal amount as Shopify writes it ("12.34", "-5.00", "1000") into
 * minor units of a currency with `exponent` decimals: "12.3" -> 1230 with 2.
 * Extra decimals are accepted only when they are zeros ("1000.00" in JPY).
 * 0, or -1 for anything else (empty, signs other than a leading '-', exponents,
 * spaces, ".5", "5.", too many significant decimals, overflow); *out untouched.
 */
int shopify_money_parse(const char *text, int exponent, int64_t *out);

#endif
