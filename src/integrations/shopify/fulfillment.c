/*
 * fulfillment.c - reads fulfillment orders and fulfillments, builds the body
 * that creates a fulfillment. JSON in and out only: no network, no logging.
 */
#include "integrations/shopify/fulfillment.h"

#include "core/json.h"
#include "core/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "field 'x' ..." read from the object at `prefix` becomes "field 'prefix.x' ...". */
static int prefixed(err *e, const char *prefix, const err *inner)
{
    static const char head[] = "field '";
    if (strncmp(inner->msg, head, sizeof head - 1) == 0)
        return err_set(e, inner->code, "field '%s.%s", prefix, inner->msg + sizeof head - 1);
    return err_set(e, inner->code, "%s: %s", prefix, inner->msg);
}

static int read_fo_line(const json_t *item, shopify_fo_line_item *li, err *e)
{
    if (!json_is_object(item))
        return err_set(e, F3_EINVAL, "must be an object");
    if (shopify_json_id(item, "id", false, li->id, e) ||
        shopify_json_id(item, "line_item_id", false, li->line_item_id, e) ||
        shopify_json_id(item, "variant_id", true, li->variant_id, e) ||
        json_get_int(item, "quantity", &li->quantity, e) ||
        json_opt_int(item, "fulfillable_quantity", &li->fulfillable_quantity, li->quantity, e))
        return F3_EINVAL;
    if (li->quantity < 0 || li->fulfillable_quantity < 0)
        return err_set(e, F3_EINVAL, "field 'quantity' must not be negative");
    return 0;
}

static bool has_action(const json_t *actions, const char *name)
{
    size_t i;
    json_t *a;
    json_array_foreach(actions, i, a)
    {
        if (str_eq(json_string_value(a), name))
            return true;
    }
    return false;
}

static int read_fo(const json_t *obj, shopify_fulfillment_order *fo, err *e)
{
    if (!json_is_object(obj))
        return err_set(e, F3_EINVAL, "must be an object");
    json_t *actions = NULL, *lines = NULL;
    if (shopify_json_id(obj, "id", false, fo->id, e) ||
        shopify_json_id(obj, "order_id", false, fo->order_id, e) ||
        shopify_json_id(obj, "assigned_location_id", true, fo->assigned_location_id, e) ||
        json_get_string(obj, "status", &fo->status, e) ||
        json_opt_string(obj, "request_status", &fo->request_status, NULL, e) ||
        json_opt_array(obj, "supported_actions", &actions, NULL, e) ||
        json_get_array(obj, "line_items", &lines, e))
        return F3_EINVAL;
    fo->can_create_fulfillment = actions && has_action(actions, "create_fulfillment");
    size_t n = json_array_size(lines);
    if (n) {
        fo->line_items = calloc(n, sizeof *fo->line_items);
        if (!fo->line_items)
            return err_set(e, F3_ENOMEM, "out of memory");
    }
    fo->line_item_count = n;
    for (size_t i = 0; i < n; i++) {
        err inner;
        err_clear(&inner);
        if (read_fo_line(json_array_get(lines, i), &fo->line_items[i], &inner)) {
            char path[40];
            snprintf(path, sizeof path, "line_items[%zu]", i);
            return prefixed(e, path, &inner);
        }
    }
    return 0;
}

int shopify_fulfillment_orders_from_json(json_t *doc, shopify_fulfillment_orders *out, err *e)
{
    memset(out, 0, sizeof *out);
    json_t *list = NULL;
    int rc = json_get_array(doc, "fulfillment_orders", &list, e);
    if (rc)
        return rc;
    size_t n = json_array_size(list);
    if (n) {
        out->items = calloc(n, sizeof *out->items);
        if (!out->items)
            return err_set(e, F3_ENOMEM, "out of memory");
    }
    out->count = n;
    for (size_t i = 0; i < n; i++) {
        err inner;
        err_clear(&inner);
        if (read_fo(json_array_get(list, i), &out->items[i], &inner)) {
            char path[48];
            snprintf(path, sizeof path, "fulfillment_orders[%zu]", i);
            rc = prefixed(e, path, &inner);
            shopify_fulfillment_orders_free(out);
            return rc;
        }
    }
    out->doc_ = json_incref(doc);
    return 0;
}

void shopify_fulfillment_orders_free(shopify_fulfillment_orders *fos)
{
    if (!fos)
        return;
    for (size_t i = 0; i < fos->count; i++)
        free(fos->items[i].line_items);
    free(fos->items);
    json_decref(fos->doc_);
    memset(fos, 0, sizeof *fos);
}

bool shopify_fulfillment_order_fulfillable(const shopify_fulfillment_order *fo)
{
    return fo && fo->can_create_fulfillment &&
           (str_eq(fo->status, "open") || str_eq(fo->status, "in_progress"));
}

/* A decimal id as a JSON integer; NULL unless it is a positive int64. */
static json_t *id_value(const char *id)
{
    int64_t v = 0;
    if (!id || str_to_int64(id, &v) != 0 || v <= 0 || id[0] == '+')
        return NULL;
    return json_integer((json_int_t)v);
}

static int selection_json(const shopify_fo_selection *s, json_t *pairs, size_t index, err *e)
{
    json_t *fo_id = id_value(s->fulfillment_order_id);
    if (!fo_id)
        return err_set(e, F3_EINVAL, "fulfillment order %zu: id is not a positive integer", index);
    json_t *pair = json_object();
    if (!pair)
        json_decref(fo_id);
    if (!pair || json_object_set_new(pair, "fulfillment_order_id", fo_id) ||
        json_array_append_new(pairs, pair))
        return err_set(e, F3_ENOMEM, "out of memory");
    if (s->line_count == 0)
        return 0; /* Shopify fulfils everything that remains */
    json_t *lines = json_array();
    if (!lines || json_object_set_new(pair, "fulfillment_order_line_items", lines))
        return err_set(e, F3_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->line_count; i++) {
        json_t *lid = id_value(s->lines[i].id);
        if (!lid || s->lines[i].quantity < 1) {
            json_decref(lid);
            return err_set(e, F3_EINVAL,
                           "fulfillment order %zu, line %zu: needs a positive id and quantity",
                           index, i);
        }
        if (json_array_append_new(lines, json_pack("{s:o,s:I}", "id", lid, "quantity",
                                                   (json_int_t)s->lines[i].quantity)))
            return err_set(e, F3_ENOMEM, "out of memory");
    }
    return 0;
}

static int tracking_json(const shopify_fulfillment_request *rq, json_t *f, err *e)
{
    if (rq->tracking_url && !rq->tracking_number)
        return err_set(e, F3_EINVAL, "a tracking URL needs a tracking number");
    if (!rq->tracking_number && !rq->tracking_company)
        return 0;
    json_t *t = json_object();
    if (!t || json_object_set_new(f, "tracking_info", t))
        return err_set(e, F3_ENOMEM, "out of memory");
    const char *fields[][2] = {{"number", rq->tracking_number},
                               {"company", rq->tracking_company},
                               {"url", rq->tracking_url}};
    for (size_t i = 0; i < 3; i++)
        if (fields[i][1] && json_object_set_new(t, fields[i][0], json_string(fields[i][1])))
            return err_set(e, F3_EINVAL, "tracking %s is not UTF-8 text", fields[i][0]);
    return 0;
}

int shopify_fulfillment_request_json(const shopify_fulfillment_request *rq, json_t **out, err *e)
{
    *out = NULL;
    if (!rq || !rq->orders || rq->order_count == 0)
        return err_set(e, F3_EINVAL, "a fulfillment needs at least one fulfillment order");
    int rc = 0;
    json_t *body = json_object(), *f = json_object(), *pairs = json_array();
    if (!body || json_object_set_new(body, "fulfillment", f) ||
        json_object_set_new(f, "line_items_by_fulfillment_order", pairs)) {
        if (!body) {
            json_decref(f);
            json_decref(pairs);
        }
        rc = err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < rq->order_count && rc == 0; i++)
        rc = selection_json(&rq->orders[i], pairs, i, e);
    if (rc == 0)
        rc = tracking_json(rq, f, e);
    if (rc == 0 && json_object_set_new(f, "notify_customer", json_boolean(rq->notify_customer)))
        rc = err_set(e, F3_ENOMEM, "out of memory");
    if (rc == 0 && rq->message && json_object_set_new(f, "message", json_string(rq->message)))
        rc = err_set(e, F3_EINVAL, "message is not UTF-8 text");
out:
    if (rc == 0)
        *out = body;
    else
        json_decref(body);
    return rc;
}

int shopify_fulfillment_from_json(json_t *doc, shopify_fulfillment *out, err *e)
{
    memset(out, 0, sizeof *out);
    json_t *f = NULL;
    if (json_get_object(doc, "fulfillment", &f, e))
        return F3_EINVAL;
    err inner;
    err_clear(&inner);
    if (shopify_json_id(f, "id", false, out->id, &inner) ||
        shopify_json_id(f, "order_id", false, out->order_id, &inner) ||
        json_opt_string(f, "status", &out->status, NULL, &inner) ||
        json_opt_string(f, "tracking_company", &out->tracking_company, NULL, &inner) ||
        json_opt_string(f, "tracking_number", &out->tracking_number, NULL, &inner) ||
        json_opt_string(f, "tracking_url", &out->tracking_url, NULL, &inner)) {
        int rc = prefixed(e, "fulfillment", &inner);
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->doc_ = json_incref(doc);
    return 0;
}

void shopify_fulfillment_free(shopify_fulfillment *f)
{
    if (!f)
        return;
    json_decref(f->doc_);
    memset(f, 0, sizeof *f);
}
