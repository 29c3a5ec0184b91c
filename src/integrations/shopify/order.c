/*
 * order.c - reads a Shopify order document into a shopify_order.
 *
 * Strict about what f3connect relies on (ids, currency, money, quantities,
 * times), lenient about what Shopify may redact or omit (customer data,
 * addresses). Reads only: no storage, no network, no logging of customer data.
 */
#include "integrations/shopify/order.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/str.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ISO 4217 currencies whose minor unit is not the cent. */
static const struct {
    const char *code;
    int exponent;
} currency_exponents[] = {
    {"BIF", 0}, {"CLP", 0}, {"DJF", 0}, {"GNF", 0}, {"ISK", 0}, {"JPY", 0}, {"KMF", 0}, {"KRW", 0},
    {"PYG", 0}, {"RWF", 0}, {"UGX", 0}, {"UYI", 0}, {"VND", 0}, {"VUV", 0}, {"XAF", 0}, {"XOF", 0},
    {"XPF", 0}, {"BHD", 3}, {"IQD", 3}, {"JOD", 3}, {"KWD", 3}, {"LYD", 3}, {"OMR", 3}, {"TND", 3},
};

int shopify_currency_exponent(const char *code)
{
    if (!code || strlen(code) != 3)
        return -1;
    for (int i = 0; i < 3; i++)
        if (code[i] < 'A' || code[i] > 'Z')
            return -1;
    for (size_t i = 0; i < sizeof currency_exponents / sizeof currency_exponents[0]; i++)
        if (strcmp(currency_exponents[i].code, code) == 0)
            return currency_exponents[i].exponent;
    return 2;
}

/* value = value * 10 + digit, false on overflow. */
static bool push_digit(int64_t *value, int digit)
{
    if (*value > (INT64_MAX - digit) / 10)
        return false;
    *value = *value * 10 + digit;
    return true;
}

int shopify_money_parse(const char *text, int exponent, int64_t *out)
{
    if (!text || exponent < 0 || exponent > 6)
        return -1;
    const char *p = text;
    bool negative = *p == '-';
    if (negative)
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    int64_t v = 0;
    while (*p >= '0' && *p <= '9')
        if (!push_digit(&v, *p++ - '0'))
            return -1;
    int decimals = 0;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (decimals < exponent) {
                if (!push_digit(&v, *p - '0'))
                    return -1;
                decimals++;
            } else if (*p != '0') {
                return -1; /* a fraction of the smallest unit */
            }
        }
    }
    if (*p != '\0')
        return -1;
    for (; decimals < exponent; decimals++)
        if (!push_digit(&v, 0))
            return -1;
    *out = negative ? -v : v;
    return 0;
}

/* Re-states a getter's "field 'x' ..." message with the path of the object the
 * field was read from: "field 'line_items[2].x' ...". */
static int prefixed(err *e, const char *prefix, const err *inner)
{
    static const char head[] = "field '";
    if (strncmp(inner->msg, head, sizeof head - 1) == 0)
        return err_set(e, inner->code, "field '%s.%s", prefix, inner->msg + sizeof head - 1);
    return err_set(e, inner->code, "%s: %s", prefix, inner->msg);
}

int shopify_json_id(const json_t *obj, const char *field, bool nullable, char out[SHOPIFY_ID_LEN],
                    err *e)
{
    int64_t id = 0;
    int rc = nullable ? json_opt_int(obj, field, &id, -1, e) : json_get_int(obj, field, &id, e);
    if (rc)
        return rc;
    if (nullable && id == -1) {
        out[0] = '\0';
        return 0;
    }
    if (id <= 0)
        return err_set(e, F3_EINVAL, "field '%s' must be a positive id", field);
    snprintf(out, SHOPIFY_ID_LEN, "%" PRId64, id);
    return 0;
}

static int read_money(const json_t *obj, const char *field, bool required, int exponent,
                      int64_t *out, err *e)
{
    const char *text = NULL;
    int rc = required ? json_get_string(obj, field, &text, e)
                      : json_opt_string(obj, field, &text, NULL, e);
    if (rc)
        return rc;
    if (!text) {
        *out = 0;
        return 0;
    }
    if (shopify_money_parse(text, exponent, out) != 0)
        return err_set(e, F3_EINVAL, "field '%s' is not a decimal amount with at most %d decimals",
                       field, exponent);
    return 0;
}

static int read_time(const json_t *obj, const char *field, bool required, int64_t *out, err *e)
{
    const char *text = NULL;
    int rc = required ? json_get_string(obj, field, &text, e)
                      : json_opt_string(obj, field, &text, NULL, e);
    if (rc)
        return rc;
    if (!text) {
        *out = -1;
        return 0;
    }
    if (clock_parse_iso(text, out) != 0)
        return err_set(e, F3_EINVAL, "field '%s' is not an ISO-8601 time", field);
    return 0;
}

/* An optional string whose empty value means "none". */
static int read_text(const json_t *obj, const char *field, const char **out, err *e)
{
    const char *v = NULL;
    if (json_opt_string(obj, field, &v, NULL, e))
        return F3_EINVAL;
    *out = v && *v ? v : NULL;
    return 0;
}

static int read_address(const json_t *obj, shopify_address *a, err *e)
{
    struct {
        const char *field;
        const char **slot;
    } fields[] = {
        {"first_name", &a->first_name},
        {"last_name", &a->last_name},
        {"name", &a->name},
        {"company", &a->company},
        {"address1", &a->address1},
        {"address2", &a->address2},
        {"city", &a->city},
        {"province", &a->province},
        {"province_code", &a->province_code},
        {"zip", &a->zip},
        {"country", &a->country},
        {"country_code", &a->country_code},
        {"phone", &a->phone},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (read_text(obj, fields[i].field, fields[i].slot, e))
            return F3_EINVAL;
    return 0;
}

static int read_line_item(const json_t *item, int exponent, shopify_line_item *li, err *e)
{
    if (!json_is_object(item))
        return err_set(e, F3_EINVAL, "must be an object");
    if (shopify_json_id(item, "id", false, li->id, e) ||
        shopify_json_id(item, "product_id", true, li->product_id, e) ||
        shopify_json_id(item, "variant_id", true, li->variant_id, e) ||
        read_text(item, "sku", &li->sku, e) || json_get_string(item, "title", &li->title, e) ||
        read_text(item, "variant_title", &li->variant_title, e) ||
        json_get_int(item, "quantity", &li->quantity, e) ||
        json_opt_int(item, "fulfillable_quantity", &li->fulfillable_quantity, li->quantity, e) ||
        read_money(item, "price", true, exponent, &li->price_minor, e) ||
        json_opt_bool(item, "requires_shipping", &li->requires_shipping, true, e))
        return F3_EINVAL;
    if (li->quantity < 1 || li->quantity > SHOPIFY_MAX_QUANTITY)
        return err_set(e, F3_EINVAL, "field 'quantity' must be between 1 and %d",
                       SHOPIFY_MAX_QUANTITY);
    if (li->fulfillable_quantity < 0 || li->fulfillable_quantity > li->quantity)
        return err_set(e, F3_EINVAL, "field 'fulfillable_quantity' must be between 0 and quantity");
    return 0;
}

static int read_line_items(const json_t *doc, shopify_order *o, err *e)
{
    json_t *items = NULL;
    if (json_get_array(doc, "line_items", &items, e))
        return F3_EINVAL;
    size_t n = json_array_size(items);
    if (n == 0)
        return err_set(e, F3_EINVAL, "field 'line_items' must not be empty");
    o->line_items = calloc(n, sizeof *o->line_items);
    if (!o->line_items)
        return err_set(e, F3_ENOMEM, "out of memory");
    o->line_item_count = n;
    for (size_t i = 0; i < n; i++) {
        err inner;
        err_clear(&inner);
        if (read_line_item(json_array_get(items, i), o->currency_exponent, &o->line_items[i],
                           &inner)) {
            char path[40];
            snprintf(path, sizeof path, "line_items[%zu]", i);
            return prefixed(e, path, &inner);
        }
    }
    return 0;
}

static int read_currency(const json_t *doc, shopify_order *o, err *e)
{
    const char *cur = NULL;
    if (json_get_string(doc, "currency", &cur, e))
        return F3_EINVAL;
    o->currency_exponent = shopify_currency_exponent(cur);
    if (o->currency_exponent < 0)
        return err_set(e, F3_EINVAL, "field 'currency' is not an ISO 4217 code like 'EUR'");
    memcpy(o->currency, cur, 4);
    return 0;
}

static int read_customer(const json_t *doc, shopify_order *o, err *e)
{
    json_t *customer = NULL;
    if (json_opt_object(doc, "customer", &customer, NULL, e))
        return F3_EINVAL;
    if (!customer)
        return 0;
    err inner;
    err_clear(&inner);
    if (read_text(customer, "first_name", &o->customer_first_name, &inner) ||
        read_text(customer, "last_name", &o->customer_last_name, &inner))
        return prefixed(e, "customer", &inner);
    if (!o->email && read_text(customer, "email", &o->email, &inner))
        return prefixed(e, "customer", &inner);
    return 0;
}

static int read_order(const json_t *doc, shopify_order *o, err *e)
{
    if (!json_is_object(doc))
        return err_set(e, F3_EINVAL, "an order must be a JSON object");
    json_t *ship = NULL;
    if (shopify_json_id(doc, "id", false, o->id, e) || json_get_string(doc, "name", &o->name, e) ||
        json_get_int(doc, "order_number", &o->order_number, e) ||
        read_text(doc, "email", &o->email, e) || read_customer(doc, o, e) ||
        read_text(doc, "financial_status", &o->financial_status, e) ||
        read_text(doc, "fulfillment_status", &o->fulfillment_status, e) ||
        read_text(doc, "cancel_reason", &o->cancel_reason, e) ||
        read_time(doc, "cancelled_at", false, &o->cancelled_at_ms, e) || read_currency(doc, o, e) ||
        read_money(doc, "total_price", true, o->currency_exponent, &o->total_price_minor, e) ||
        read_money(doc, "subtotal_price", false, o->currency_exponent, &o->subtotal_price_minor,
                   e) ||
        read_money(doc, "total_tax", false, o->currency_exponent, &o->total_tax_minor, e) ||
        json_opt_object(doc, "shipping_address", &ship, NULL, e) ||
        read_time(doc, "created_at", true, &o->created_at_ms, e) ||
        read_time(doc, "updated_at", true, &o->updated_at_ms, e) ||
        json_opt_bool(doc, "test", &o->test, false, e))
        return F3_EINVAL;
    if (o->order_number < 1)
        return err_set(e, F3_EINVAL, "field 'order_number' must be positive");
    if (ship) {
        err inner;
        err_clear(&inner);
        if (read_address(ship, &o->shipping_address, &inner))
            return prefixed(e, "shipping_address", &inner);
        o->has_shipping_address = true;
    }
    return read_line_items(doc, o, e);
}

int shopify_order_from_json(json_t *obj, shopify_order *out, err *e)
{
    memset(out, 0, sizeof *out);
    out->cancelled_at_ms = -1;
    int rc = read_order(obj, out, e);
    if (rc) {
        free(out->line_items);
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->doc_ = json_incref(obj);
    return 0;
}

int shopify_order_parse(const char *json_text, size_t len, shopify_order *out, err *e)
{
    memset(out, 0, sizeof *out);
    json_t *doc = NULL;
    int rc = json_parse(json_text, len, &doc, e);
    if (rc == 0)
        rc = shopify_order_from_json(doc, out, e);
    json_decref(doc);
    return rc;
}

void shopify_order_free(shopify_order *o)
{
    if (!o)
        return;
    free(o->line_items);
    json_decref(o->doc_);
    memset(o, 0, sizeof *o);
}
