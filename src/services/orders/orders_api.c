/*
 * orders_api.c - GET /api/v1/orders (filters, search, sorting, keyset paging with an
 * opaque cursor) and GET /api/v1/orders/:id (the detail of order_view.c).
 *
 * Reads only the caller's tenant's rows; an order of another tenant is a 404 like a
 * missing one. Orders are written by the intake, never here.
 */
#include "services/orders/api_internal.h"

#include "core/str.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define ORDERS_LIMIT_DEFAULT 25
#define ORDERS_LIMIT_MAX     100

static const char *const order_statuses[] = {"PENDING",   "PROCESSING", "PARTIALLY_COMPLETED",
                                             "COMPLETED", "FAILED",     "CANCELLED"};

/* The sort keys a client may ask for: the column and its place in the summary row. */
typedef struct order_sort {
    const char *name;
    const char *column;
    int col;
    bool text;
} order_sort;

static const order_sort order_sorts[] = {
    {"createdAt", "o.created_at", 17, false},
    {"updatedAt", "o.updated_at", 18, false},
    {"orderNumber", "o.shopify_order_number", 2, true},
};

static const order_sort *sort_named(const char *name)
{
    for (size_t i = 0; i < sizeof order_sorts / sizeof order_sorts[0]; i++)
        if (strcmp(order_sorts[i].name, name) == 0)
            return &order_sorts[i];
    return NULL;
}

static bool status_valid(const char *s)
{
    for (size_t i = 0; i < sizeof order_statuses / sizeof order_statuses[0]; i++)
        if (strcmp(order_statuses[i], s) == 0)
            return true;
    return false;
}

/* The parsed query of a list request; strings are borrowed from the request or owned
 * (like, key, id). */
typedef struct order_filter {
    const char *status;
    int needs_mapping; /* -1: either; 0: every line item mapped; 1: some unmapped */
    int64_t from, to;
    char *like;
    const order_sort *sort;
    bool asc;
    int64_t limit;
    char *key, *id; /* from the cursor */
} order_filter;

static void filter_free(order_filter *f)
{
    free(f->like);
    free(f->key);
    free(f->id);
}

static int parse_filter(http_request *req, order_filter *f, err *e)
{
    memset(f, 0, sizeof *f);
    f->status = http_req_query_param(req, "status");
    if (f->status && !status_valid(f->status))
        return err_set(e, F3_EINVAL,
                       "status: must be one of PENDING, PROCESSING, PARTIALLY_COMPLETED, "
                       "COMPLETED, FAILED, CANCELLED");
    f->needs_mapping = -1;
    const char *nm = http_req_query_param(req, "needsMapping");
    if (nm && strcmp(nm, "true") != 0 && strcmp(nm, "false") != 0)
        return err_set(e, F3_EINVAL, "needsMapping: must be true or false");
    if (nm)
        f->needs_mapping = strcmp(nm, "true") == 0;
    int rc;
    if ((rc = orders_api_time_param(req, "from", false, INT64_MIN, &f->from, e)) ||
        (rc = orders_api_time_param(req, "to", true, INT64_MAX, &f->to, e)) ||
        (rc = orders_api_int_param(req, "limit", 1, ORDERS_LIMIT_MAX, ORDERS_LIMIT_DEFAULT,
                                   &f->limit, e)))
        return rc;
    const char *sort = http_req_query_param(req, "sort");
    f->sort = sort_named(sort ? sort : "createdAt");
    if (!f->sort)
        return err_set(e, F3_EINVAL, "sort: must be createdAt, updatedAt or orderNumber");
    const char *order = http_req_query_param(req, "order");
    if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
        return err_set(e, F3_EINVAL, "order: must be asc or desc");
    f->asc = order && strcmp(order, "asc") == 0;
    const char *q = http_req_query_param(req, "q");
    if (q && *q && !(f->like = orders_api_like_pattern(q)))
        return err_set(e, F3_ENOMEM, "out of memory");
    const char *cursor = http_req_query_param(req, "cursor");
    if (cursor && *cursor) {
        if ((rc = orders_api_cursor_decode(cursor, f->sort->name, &f->key, &f->id, e)))
            return rc;
        int64_t n;
        if (!f->sort->text && str_to_int64(f->key, &n) != 0)
            return err_set(e, F3_EINVAL, "cursor: not a cursor of this list");
    }
    return 0;
}

static void build_query(const order_filter *f, const char *tenant, orders_api_query *q)
{
    const order_sort *sort = f->sort ? f->sort : &order_sorts[0];
    buf *b = &q->sql;
    buf_printf(b, "SELECT %s FROM orders o WHERE o.tenant_id = $%d", orders_api_order_columns,
               orders_api_query_text(q, tenant));
    if (f->status)
        buf_printf(b, " AND o.status = $%d", orders_api_query_text(q, f->status));
    if (f->needs_mapping >= 0)
        buf_printf(b,
                   " AND %sEXISTS (SELECT 1 FROM line_items li WHERE li.tenant_id = o.tenant_id"
                   " AND li.order_id = o.id AND li.product_mapping_id IS NULL)",
                   f->needs_mapping ? "" : "NOT ");
    if (f->from != INT64_MIN)
        buf_printf(b, " AND o.created_at >= $%d", orders_api_query_int(q, f->from));
    if (f->to != INT64_MAX)
        buf_printf(b, " AND o.created_at < $%d", orders_api_query_int(q, f->to));
    if (f->like) {
        int p = orders_api_query_text(q, f->like);
        buf_printf(b,
                   " AND (LOWER(o.shopify_order_number) LIKE $%d ESCAPE '\\'"
                   " OR LOWER(o.customer_name) LIKE $%d ESCAPE '\\'"
                   " OR LOWER(COALESCE(o.customer_email, '')) LIKE $%d ESCAPE '\\'"
                   " OR EXISTS (SELECT 1 FROM line_items li WHERE li.tenant_id = o.tenant_id"
                   " AND li.order_id = o.id AND LOWER(li.sku) LIKE $%d ESCAPE '\\'))",
                   p, p, p, p);
    }
    const char *cmp = f->asc ? ">" : "<";
    const char *dir = f->asc ? "ASC" : "DESC";
    if (f->key) {
        int64_t n = 0;
        int k = sort->text ? orders_api_query_text(q, f->key)
                           : (str_to_int64(f->key, &n), orders_api_query_int(q, n));
        int i = orders_api_query_text(q, f->id);
        buf_printf(b, " AND (%s %s $%d OR (%s = $%d AND o.id %s $%d))", sort->column, cmp, k,
                   sort->column, k, cmp, i);
    }
    buf_printf(b, " ORDER BY %s %s, o.id %s LIMIT $%d", sort->column, dir, dir,
               orders_api_query_int(q, f->limit + 1));
}

/* The cursor after the current row. */
static json_t *cursor_after(db_stmt *s, const void *arg)
{
    const order_sort *sort = arg;
    char num[32];
    const char *key = db_col_text(s, sort->col);
    if (!sort->text) {
        snprintf(num, sizeof num, "%" PRId64, db_col_int64(s, sort->col));
        key = num;
    }
    buf b;
    buf_init(&b, 0);
    json_t *j = NULL;
    if (orders_api_cursor_encode(sort->name, key ? key : "", db_col_text(s, 0), &b) == 0)
        j = json_string(buf_cstr(&b));
    buf_free(&b);
    return j;
}

static json_t *order_row(db_stmt *s, const void *arg)
{
    (void)arg;
    return orders_api_order_summary(s);
}

int orders_api_orders_list(http_request *req, http_response *res, void *ctx)
{
    const orders_api_deps *deps = ctx;
    const char *tenant = orders_api_tenant(req, res);
    if (!tenant)
        return 0;
    err e;
    err_clear(&e);
    order_filter f;
    orders_api_query q;
    orders_api_query_init(&q);
    int rc = parse_filter(req, &f, &e);
    if (rc) {
        http_res_error(res, rc == F3_EINVAL ? 400 : 500, "%s", e.msg);
    } else {
        build_query(&f, tenant, &q);
        orders_api_page(res, deps->db, &q, f.limit, "order list", order_row, cursor_after, f.sort);
    }
    orders_api_query_free(&q);
    filter_free(&f);
    return 0;
}

int orders_api_orders_get(http_request *req, http_response *res, void *ctx)
{
    const orders_api_deps *deps = ctx;
    const char *tenant = orders_api_tenant(req, res);
    if (!tenant)
        return 0;
    err e;
    err_clear(&e);
    json_t *o = NULL;
    db_conn *c = db_acquire(deps->db, &e);
    if (!c)
        return orders_api_db_failed(res, "acquire", &e);
    const char *id = http_req_param(req, "id");
    int rc = orders_api_order_detail(c, tenant, id, &o, &e);
    db_release(c);
    if (rc == F3_ENOTFOUND)
        return http_res_error(res, 404, "Order not found: %s", id);
    if (rc)
        return orders_api_db_failed(res, "order detail", &e);
    return http_res_json(res, 200, o);
}
