/*
 * client_shipping.c - the orders service's read calls for the shipping service (see
 * client.h). Reads only; every query filters on the tenant.
 */
#include "services/orders/client.h"

#include "core/buf.h"
#include "core/str.h"
#include "integrations/shopify/order.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void orders_client_shipping_view_clear(orders_shipping_view *v)
{
    if (!v)
        return;
    char **fields[] = {
        &v->id,   &v->number,        &v->status,       &v->customer_name, &v->customer_email,
        &v->name, &v->company,       &v->address1,     &v->address2,      &v->city,
        &v->zip,  &v->province_code, &v->country_code, &v->phone};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        free(*fields[i]);
    memset(v, 0, sizeof *v);
}

static char *dup_col(db_stmt *s, int col)
{
    const char *t = db_col_text(s, col);
    return t ? str_dup(t) : NULL;
}

static char *dup_field(const json_t *obj, const char *key)
{
    const char *t = json_string_value(json_object_get(obj, key));
    return t && *t ? str_dup(t) : NULL;
}

static int read_address(const char *text, orders_shipping_view *v, err *e)
{
    json_t *a = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(a)) {
        json_decref(a);
        return err_set(e, F3_EINVAL, "order %s: stored shipping address is not an object", v->id);
    }
    v->name = dup_field(a, "name");
    if (!v->name) {
        const char *first = json_string_value(json_object_get(a, "firstName"));
        const char *last = json_string_value(json_object_get(a, "lastName"));
        buf full;
        buf_init(&full, 1024);
        buf_puts(&full, first ? first : "");
        if (first && *first && last && *last)
            buf_putc(&full, ' ');
        buf_puts(&full, last ? last : "");
        v->name = full.len ? buf_detach(&full) : NULL;
        buf_free(&full);
    }
    v->company = dup_field(a, "company");
    v->address1 = dup_field(a, "address1");
    v->address2 = dup_field(a, "address2");
    v->city = dup_field(a, "city");
    v->zip = dup_field(a, "zip");
    v->province_code = dup_field(a, "provinceCode");
    v->country_code = dup_field(a, "countryCode");
    v->phone = dup_field(a, "phone");
    json_decref(a);
    return 0;
}

/* Sum of quantity x parts x part weight; 0 when any part's weight is unknown. */
static int read_weight(db_conn *c, const char *tenant_id, const char *order_id, int64_t *grams,
                       err *e)
{
    const char *t[] = {tenant_id, order_id};
    db_stmt *s = db_prepare_texts(c,
                                  "SELECT li.quantity, ap.quantity_per_unit, ap.weight_grams"
                                  " FROM line_items li LEFT JOIN assembly_parts ap"
                                  " ON ap.tenant_id = li.tenant_id"
                                  " AND ap.product_mapping_id = li.product_mapping_id"
                                  " WHERE li.tenant_id = $1 AND li.order_id = $2",
                                  t, 2, e);
    if (!s)
        return db_err_code(e);
    int64_t sum = 0;
    bool known = true, any = false;
    int rc;
    while ((rc = db_step(s, e)) == DB_ROW) {
        any = true;
        if (db_col_is_null(s, 2) || db_col_is_null(s, 1))
            known = false;
        else
            sum += db_col_int64(s, 0) * db_col_int64(s, 1) * db_col_int64(s, 2);
    }
    db_finalize(s);
    *grams = rc == DB_DONE && known && any ? sum : 0;
    return rc < 0 ? rc : 0;
}

int orders_client_shipping_view(db_conn *c, const char *tenant_id, const char *order_id,
                                orders_shipping_view *out, err *e)
{
    memset(out, 0, sizeof *out);
    const char *t[] = {tenant_id, order_id};
    db_stmt *s = db_prepare_texts(c,
                                  "SELECT id, shopify_order_number, status, customer_name,"
                                  " customer_email, shipping_address, total_minor, currency"
                                  " FROM orders WHERE tenant_id = $1 AND id = $2",
                                  t, 2, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    if (rc == DB_DONE)
        rc = err_set(e, F3_ENOTFOUND, "order not found: %s", order_id);
    if (rc == DB_ROW) {
        out->id = dup_col(s, 0);
        out->number = dup_col(s, 1);
        out->status = dup_col(s, 2);
        out->customer_name = dup_col(s, 3);
        out->customer_email = dup_col(s, 4);
        out->total_minor = db_col_int64(s, 6);
        db_col_copy(s, 7, out->currency, sizeof out->currency);
        int exp = shopify_currency_exponent(out->currency);
        out->currency_exponent = exp < 0 ? 2 : exp;
        rc = !out->id || !out->number || !out->status ? err_set(e, F3_ENOMEM, "out of memory")
                                                      : read_address(db_col_text(s, 5), out, e);
    }
    db_finalize(s);
    if (rc == 0)
        rc = read_weight(c, tenant_id, order_id, &out->weight_grams, e);
    return rc;
}
