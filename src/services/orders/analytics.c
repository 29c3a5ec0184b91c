/*
 * analytics.c - GET /api/v1/analytics/summary?from=&to=: for the tenant's orders created in
 * [from, to) (default: the last 30 days), the orders per status, orders and units per UTC
 * day, the time from order creation to fulfilment (average and p90 over the orders with
 * completed_at) and the top SKUs by units.
 *
 * Counting and summing run in SQL on both backends; the p90 is taken in C from the sorted
 * durations (nearest-rank: the ceil(0.9 n)-th smallest). Reads only.
 */
#include "services/orders/api_internal.h"

#include "core/clock.h"

#include <stdlib.h>
#include <string.h>

#define ANALYTICS_DEFAULT_DAYS 30
#define ANALYTICS_MAX_DAYS     366
#define ANALYTICS_TOP_SKUS     "10" /* spliced into the SQL text */
#define ANALYTICS_RANGE        " o.tenant_id = $1 AND o.created_at >= $2 AND o.created_at < $3"

static const char *const statuses[] = {"PENDING",   "PROCESSING", "PARTIALLY_COMPLETED",
                                       "COMPLETED", "FAILED",     "CANCELLED"};

typedef struct range {
    const char *tenant_id;
    int64_t from, to;
} range;

typedef int (*row_fn)(db_stmt *s, void *ctx);

/* Runs sql with ($1 tenant, $2 from, $3 to) and calls fn on every row. */
static int each_row(db_conn *c, const char *sql, const range *r, row_fn fn, void *ctx, err *e)
{
    db_stmt *s = db_prepare(c, sql, e);
    if (!s)
        return e->code;
    db_bind_text(s, 1, r->tenant_id);
    db_bind_int64(s, 2, r->from);
    db_bind_int64(s, 3, r->to);
    int rc;
    while ((rc = db_step(s, e)) == DB_ROW)
        if (fn(s, ctx) != 0) {
            rc = err_set(e, F3_ENOMEM, "out of memory");
            break;
        }
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

static int status_row(db_stmt *s, void *ctx)
{
    const char *st = db_col_text(s, 0);
    json_t *by = ctx;
    return st ? json_object_set_new(by, st, json_integer((json_int_t)db_col_int64(s, 1))) : 0;
}

/* The per-day series: day d of the range is days[d - first]. */
typedef struct daily {
    int64_t first;
    int64_t n;
    int64_t *orders;
    int64_t *units;
    int64_t total_orders, total_units;
    bool units_pass;
} daily;

static int day_row(db_stmt *s, void *ctx)
{
    daily *d = ctx;
    int64_t i = db_col_int64(s, 0) - d->first;
    int64_t v = db_col_int64(s, 1);
    if (i < 0 || i >= d->n)
        return 0;
    if (d->units_pass) {
        d->units[i] += v;
        d->total_units += v;
    } else {
        d->orders[i] += v;
        d->total_orders += v;
    }
    return 0;
}

typedef struct durations {
    int64_t *v;
    size_t n, cap;
} durations;

static int duration_row(db_stmt *s, void *ctx)
{
    durations *d = ctx;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        int64_t *v = realloc(d->v, cap * sizeof *v);
        if (!v)
            return -1;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = db_col_int64(s, 0);
    return 0;
}

static int sku_row(db_stmt *s, void *ctx)
{
    json_t *row =
        json_pack("{s:s? s:I s:I}", "sku", db_col_text(s, 0), "units",
                  (json_int_t)db_col_int64(s, 1), "orders", (json_int_t)db_col_int64(s, 2));
    return row ? json_array_append_new(ctx, row) : -1;
}

/* {"count","averageMs","p90Ms","averageHours","p90Hours"}; durations sorted ascending. */
static json_t *fulfilment_json(const durations *d)
{
    if (d->n == 0)
        return json_pack("{s:i s:n s:n s:n s:n}", "count", 0, "averageMs", "p90Ms", "averageHours",
                         "p90Hours");
    int64_t sum = 0;
    for (size_t i = 0; i < d->n; i++)
        sum += d->v[i];
    int64_t avg = sum / (int64_t)d->n;
    size_t rank = (9 * d->n + 9) / 10; /* ceil(0.9 n), 1-based */
    int64_t p90 = d->v[rank - 1];
    return json_pack("{s:I s:I s:I s:f s:f}", "count", (json_int_t)d->n, "averageMs",
                     (json_int_t)avg, "p90Ms", (json_int_t)p90, "averageHours",
                     (double)avg / 3600000.0, "p90Hours", (double)p90 / 3600000.0);
}

static json_t *daily_json(const daily *d)
{
    json_t *arr = json_array();
    for (int64_t i = 0; arr && i < d->n; i++) {
        char iso[CLOCK_ISO_LEN];
        clock_format_iso((d->first + i) * ORDERS_API_DAY_MS, iso);
        iso[10] = '\0';
        json_t *row = json_pack("{s:s s:I s:I}", "date", iso, "orders", (json_int_t)d->orders[i],
                                "units", (json_int_t)d->units[i]);
        if (!row || json_array_append_new(arr, row)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

static int parse_range(http_request *req, range *r, err *e)
{
    int64_t now = clock_now_ms();
    int rc;
    if ((rc = orders_api_time_param(req, "to", true, now, &r->to, e)) ||
        (rc = orders_api_time_param(
             req, "from", false, r->to - ANALYTICS_DEFAULT_DAYS * ORDERS_API_DAY_MS, &r->from, e)))
        return rc;
    if (r->from >= r->to)
        return err_set(e, F3_EINVAL, "from: must be before to");
    if (r->to - r->from > ANALYTICS_MAX_DAYS * ORDERS_API_DAY_MS)
        return err_set(e, F3_EINVAL, "to: the range may span at most %d days", ANALYTICS_MAX_DAYS);
    return 0;
}

static int64_t day_of(int64_t ms)
{
    return ms >= 0 ? ms / ORDERS_API_DAY_MS : -((-ms + ORDERS_API_DAY_MS - 1) / ORDERS_API_DAY_MS);
}

static int summarise(db_conn *c, const range *r, json_t **out, err *e)
{
    daily d = {.first = day_of(r->from)};
    d.n = day_of(r->to - 1) - d.first + 1;
    d.orders = calloc((size_t)d.n, sizeof *d.orders);
    d.units = calloc((size_t)d.n, sizeof *d.units);
    durations dur = {0};
    json_t *by = json_object(), *skus = json_array(), *days = NULL, *ful = NULL;
    int rc = 0;
    if (!d.orders || !d.units || !by || !skus) {
        rc = err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        json_object_set_new(by, statuses[i], json_integer(0));
    if ((rc = each_row(c,
                       "SELECT o.status, COUNT(*) FROM orders o WHERE" ANALYTICS_RANGE
                       " GROUP BY o.status",
                       r, status_row, by, e)) ||
        (rc = each_row(c,
                       "SELECT CAST(o.created_at / 86400000 AS BIGINT), COUNT(*) FROM orders o "
                       "WHERE" ANALYTICS_RANGE " GROUP BY 1",
                       r, day_row, &d, e)))
        goto out;
    d.units_pass = true;
    if ((rc = each_row(c,
                       "SELECT CAST(o.created_at / 86400000 AS BIGINT), SUM(li.quantity) "
                       "FROM orders o JOIN line_items li ON li.tenant_id = o.tenant_id AND "
                       "li.order_id = o.id WHERE" ANALYTICS_RANGE " GROUP BY 1",
                       r, day_row, &d, e)) ||
        (rc = each_row(c,
                       "SELECT o.completed_at - o.created_at FROM orders o WHERE" ANALYTICS_RANGE
                       " AND o.completed_at IS NOT NULL AND o.completed_at >= o.created_at "
                       "ORDER BY 1",
                       r, duration_row, &dur, e)) ||
        (rc = each_row(c,
                       "SELECT li.sku, SUM(li.quantity), COUNT(DISTINCT li.order_id) "
                       "FROM orders o JOIN line_items li ON li.tenant_id = o.tenant_id AND "
                       "li.order_id = o.id WHERE" ANALYTICS_RANGE " AND li.sku IS NOT NULL "
                       "GROUP BY li.sku ORDER BY 2 DESC, 1 ASC LIMIT " ANALYTICS_TOP_SKUS,
                       r, sku_row, skus, e)))
        goto out;
    char from[CLOCK_ISO_LEN], to[CLOCK_ISO_LEN];
    clock_format_iso(r->from, from);
    clock_format_iso(r->to, to);
    days = daily_json(&d);
    ful = fulfilment_json(&dur);
    *out = json_pack("{s:s s:s s:I s:I s:O s:O s:O s:O}", "from", from, "to", to, "totalOrders",
                     (json_int_t)d.total_orders, "totalUnits", (json_int_t)d.total_units,
                     "ordersByStatus", by, "daily", days, "fulfillment", ful, "topSkus", skus);
    if (!*out)
        rc = err_set(e, F3_ENOMEM, "out of memory");
out:
    free(d.orders);
    free(d.units);
    free(dur.v);
    json_decref(by);
    json_decref(skus);
    json_decref(days);
    json_decref(ful);
    return rc;
}

int orders_api_analytics_summary(http_request *req, http_response *res, void *ctx)
{
    const orders_api_deps *deps = ctx;
    const char *tenant = orders_api_tenant(req, res);
    if (!tenant)
        return 0;
    err e;
    err_clear(&e);
    range r = {.tenant_id = tenant};
    if (parse_range(req, &r, &e))
        return http_res_error(res, 400, "%s", e.msg);
    db_conn *c = db_acquire(deps->db, &e);
    if (!c)
        return orders_api_db_failed(res, "acquire", &e);
    json_t *out = NULL;
    int rc = summarise(c, &r, &out, &e);
    db_release(c);
    if (rc)
        return orders_api_db_failed(res, "analytics summary", &e);
    return http_res_json(res, 200, out);
}
