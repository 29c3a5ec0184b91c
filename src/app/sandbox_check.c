/*
 * sandbox_check.c - the invariant checker of the sandbox and the end-to-end tests (see
 * sandbox.h).
 *
 * It reads what the platform stored and what the simulated providers hold, and says
 * where they disagree with what the demo orders were meant to do. It changes nothing.
 * Run it once the platform is quiet: while work is still flowing every in-flight order
 * looks like a violation.
 */
#include "app/sandbox.h"

#include "core/clock.h"
#include "core/json.h"
#include "http/client.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void sandbox_report_init(sandbox_report *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->problems, 0);
}

void sandbox_report_free(sandbox_report *r)
{
    buf_free(&r->problems);
    free(r->latency);
    r->latency = NULL;
    r->nlatency = r->latency_cap = 0;
}

static void violation(sandbox_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void violation(sandbox_report *r, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->violations++;
    buf_printf(&r->problems, "  - %s\n", line);
}

/* One count from sql with text parameters. */
static int count(db_conn *c, const char *sql, const char *const *p, int n, int64_t *out, err *e)
{
    db_stmt *s = db_prepare_texts(c, sql, p, n, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    *out = rc == DB_ROW ? db_col_int64(s, 0) : 0;
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

typedef struct order_row order_row;
static int note_latency(db_conn *c, const char *tenant, const sandbox_order *so, const order_row *o,
                        sandbox_report *r, err *e);

/* ---- one order ----------------------------------------------------------------------- */

struct order_row {
    char id[65];
    char status[32];
    char fulfillment_id[64];
    char review[8];
    int64_t unmapped;
    int64_t created_at;
};

static int order_load(db_conn *c, const char *tenant, const char *shopify_id, order_row *o, err *e)
{
    memset(o, 0, sizeof *o);
    const char *p[] = {tenant, shopify_id};
    db_stmt *s =
        db_prepare_texts(c,
                         "SELECT o.id, o.status, o.shopify_fulfillment_id,"
                         " CASE WHEN o.review_reason IS NULL THEN '' ELSE 'review' END,"
                         " (SELECT COUNT(*) FROM line_items li WHERE li.tenant_id = o.tenant_id"
                         "  AND li.order_id = o.id AND li.needs_mapping = TRUE), o.created_at"
                         " FROM orders o WHERE o.tenant_id = $1 AND o.shopify_order_id = $2",
                         p, 2, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    if (rc == DB_ROW) {
        db_col_copy(s, 0, o->id, sizeof o->id);
        db_col_copy(s, 1, o->status, sizeof o->status);
        db_col_copy(s, 2, o->fulfillment_id, sizeof o->fulfillment_id);
        db_col_copy(s, 3, o->review, sizeof o->review);
        o->unmapped = db_col_int64(s, 4);
        o->created_at = db_col_int64(s, 5);
    }
    db_finalize(s);
    return rc < 0 ? rc : rc == DB_ROW ? 0 : F3_ENOTFOUND;
}

/* The print jobs an order should have: per mapped line item, quantity x the copies of
 * every part of its mapping. */
static int jobs_expected(db_conn *c, const char *tenant, const char *order_id, int64_t *out, err *e)
{
    const char *p[] = {tenant, order_id};
    return count(c,
                 "SELECT COALESCE(SUM(li.quantity * (SELECT COALESCE(SUM(ap.quantity_per_unit), 0)"
                 " FROM assembly_parts ap WHERE ap.tenant_id = li.tenant_id"
                 " AND ap.product_mapping_id = li.product_mapping_id)), 0)"
                 " FROM line_items li WHERE li.tenant_id = $1 AND li.order_id = $2"
                 " AND li.product_mapping_id IS NOT NULL",
                 p, 2, out, e);
}

static int jobs_in(db_conn *c, const char *tenant, const char *order_id, const char *statuses,
                   int64_t *out, err *e)
{
    char sql[320];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM print_jobs WHERE tenant_id = $1 AND order_id = $2%s%s%s",
             statuses ? " AND status IN (" : "", statuses ? statuses : "", statuses ? ")" : "");
    const char *p[] = {tenant, order_id};
    return count(c, sql, p, 2, out, e);
}

/* Fulfilments Shopify (the simulator) holds for the order, read from its control API: the
 * Admin API may be answering injected faults. */
static int shopify_fulfilments(const sandbox_sims *sims, const char *shopify_id, int *out, err *e)
{
    char url[512];
    snprintf(url, sizeof url, "%s/_sim/fulfillments?order_id=%s", sims->shopify_url, shopify_id);
    json_t *body = NULL;
    http_client_response rs;
    int rc = http_client_json("GET", url, NULL, NULL, 10000, &body, &rs, e);
    http_client_response_free(&rs);
    json_t *list = json_object_get(body, "fulfillments");
    *out = rc == 0 && json_is_array(list) ? (int)json_array_size(list) : -1;
    json_decref(body);
    if (rc == 0 && *out < 0)
        rc =
            err_set(e, F3_EPERMANENT, "Shopify simulator: no fulfillments list for %s", shopify_id);
    return rc;
}

static int check_jobs(db_conn *c, const char *tenant, const sandbox_order *so, const order_row *o,
                      sandbox_report *r, err *e)
{
    int64_t want = 0, all = 0, done = 0, open = 0;
    int rc = jobs_expected(c, tenant, o->id, &want, e);
    rc = rc ? rc : jobs_in(c, tenant, o->id, NULL, &all, e);
    rc = rc ? rc : jobs_in(c, tenant, o->id, "'COMPLETED'", &done, e);
    rc = rc ? rc : jobs_in(c, tenant, o->id, "'PENDING','QUEUED','ASSIGNED'", &open, e);
    if (rc)
        return rc;
    r->print_jobs += (int)all;
    if (all > want)
        violation(r, "order %s: %lld print jobs, %lld expected (duplicates)", so->shopify_id,
                  (long long)all, (long long)want);
    if (strcmp(o->status, "COMPLETED") == 0 && (all != want || done != all))
        violation(r, "order %s: COMPLETED with %lld of %lld print jobs done", so->shopify_id,
                  (long long)done, (long long)want);
    if (strcmp(o->status, "CANCELLED") == 0 && open > 0)
        violation(r, "order %s: CANCELLED but %lld print jobs still waiting to print",
                  so->shopify_id, (long long)open);
    return 0;
}

static int check_shipment(db_conn *c, const char *tenant, const sandbox_order *so,
                          const order_row *o, sandbox_report *r, err *e)
{
    const char *p[] = {tenant, o->id};
    int64_t n = 0;
    int rc = count(c, "SELECT COUNT(*) FROM shipments WHERE tenant_id = $1 AND order_id = $2", p, 2,
                   &n, e);
    if (rc)
        return rc;
    r->shipments += (int)n;
    if (n > 1)
        violation(r, "order %s: %lld shipments", so->shopify_id, (long long)n);
    return 0;
}

/* The final state this order should be in, given its intent. */
static void check_state(const sandbox_order *so, const order_row *o, int fulfilments,
                        sandbox_report *r)
{
    bool fulfilled = strcmp(o->status, "COMPLETED") == 0 && o->fulfillment_id[0];
    bool cancelled = strcmp(o->status, "CANCELLED") == 0;
    bool waiting = strcmp(o->status, "PENDING") == 0 && o->unmapped > 0;
    r->fulfilled += fulfilled;
    r->cancelled += cancelled;
    r->waiting_mapping += waiting;
    r->other += !fulfilled && !cancelled && !waiting;
    if (fulfilments > 1)
        violation(r, "order %s: %d fulfilments in Shopify", so->shopify_id, fulfilments);
    if (fulfilled && fulfilments == 0)
        violation(r, "order %s: marked fulfilled but Shopify has no fulfilment", so->shopify_id);
    if (!fulfilled && fulfilments > 0)
        violation(r, "order %s: %s in f3connect but fulfilled in Shopify", so->shopify_id,
                  o->status);
    switch (so->intent) {
    case SANDBOX_FULFIL:
        if (!fulfilled)
            violation(r, "order %s: should be fulfilled, is %s", so->shopify_id, o->status);
        break;
    case SANDBOX_UNMAPPED:
        if (!waiting)
            violation(r, "order %s: should wait for a mapping, is %s", so->shopify_id, o->status);
        break;
    case SANDBOX_CANCEL:
        /* A cancellation that arrives after the order was fulfilled cannot undo it. */
        if (!cancelled && !fulfilled)
            violation(r, "order %s: should be cancelled, is %s", so->shopify_id, o->status);
        break;
    }
}

static int check_eventlog(db_conn *c, const char *tenant, const sandbox_order *so,
                          const order_row *o, sandbox_report *r, err *e)
{
    const char *p[] = {tenant, o->id};
    int64_t n = 0;
    int rc = count(c,
                   "SELECT COUNT(*) FROM event_log WHERE tenant_id = $1 AND order_id = $2"
                   " AND event_type = 'order.created'",
                   p, 2, &n, e);
    if (rc == 0 && n != 1)
        violation(r, "order %s: %lld order.created entries in the event log", so->shopify_id,
                  (long long)n);
    return rc;
}

static int check_order(db_conn *c, const char *tenant, const sandbox_sims *sims,
                       const sandbox_order *so, sandbox_report *r, err *e)
{
    order_row o;
    int rc = order_load(c, tenant, so->shopify_id, &o, e);
    if (rc == F3_ENOTFOUND) {
        violation(r, "order %s: never arrived (lost)", so->shopify_id);
        return 0;
    }
    int fulfilments = 0;
    rc = rc ? rc : shopify_fulfilments(sims, so->shopify_id, &fulfilments, e);
    if (rc)
        return rc;
    check_state(so, &o, fulfilments, r);
    rc = o.fulfillment_id[0] ? note_latency(c, tenant, so, &o, r, e) : 0;
    rc = rc ? rc : check_jobs(c, tenant, so, &o, r, e);
    rc = rc ? rc : check_shipment(c, tenant, so, &o, r, e);
    return rc ? rc : check_eventlog(c, tenant, so, &o, r, e);
}

/* ---- the platform as a whole ------------------------------------------------------------ */

static int check_queues(db_conn *c, sandbox_report *r, err *e)
{
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *p[] = {now};
    int64_t due = 0, active = 0, dead = 0, retries = 0;
    /* Event queues are named <eventType>@<service>; internal ones (pollers) too, but their
     * repeatable jobs wait in the future, so only jobs already due count. */
    int rc = count(c,
                   "SELECT COUNT(*) FROM bus_jobs WHERE state = 'waiting'"
                   " AND run_at <= CAST($1 AS BIGINT)",
                   p, 1, &due, e);
    rc = rc ? rc
            : count(c, "SELECT COUNT(*) FROM bus_jobs WHERE state = 'active'", NULL, 0, &active, e);
    rc = rc ? rc
            : count(c, "SELECT COUNT(*) FROM bus_jobs WHERE state = 'failed'", NULL, 0, &dead, e);
    rc = rc ? rc
            : count(c,
                    "SELECT COUNT(*) FROM retry_queue WHERE status IN"
                    " ('PENDING', 'PROCESSING')",
                    NULL, 0, &retries, e);
    if (rc)
        return rc;
    if (due)
        violation(r, "%lld queued jobs still waiting", (long long)due);
    if (active)
        violation(r, "%lld queued jobs stuck active", (long long)active);
    if (dead)
        violation(r, "%lld queued jobs dead-lettered", (long long)dead);
    if (retries)
        violation(r, "%lld retry-queue entries not finished", (long long)retries);
    return 0;
}

static int cmp_ms(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Remembers how long a fulfilled order took from being placed in Shopify (its webhook
 * follows within milliseconds) to its fulfilment, as the event log dates it. */
static int note_latency(db_conn *c, const char *tenant, const sandbox_order *so, const order_row *o,
                        sandbox_report *r, err *e)
{
    const char *p[] = {tenant, o->id};
    int64_t at = 0;
    int rc = count(c,
                   "SELECT MIN(created_at) FROM event_log WHERE tenant_id = $1 AND order_id = $2"
                   " AND event_type = 'order.fulfilled'",
                   p, 2, &at, e);
    if (rc || at <= 0)
        return rc;
    if (r->nlatency == r->latency_cap) {
        size_t ncap = r->latency_cap ? 2 * r->latency_cap : 256;
        int64_t *nv = realloc(r->latency, ncap * sizeof *nv);
        if (!nv)
            return err_set(e, F3_ENOMEM, "out of memory");
        r->latency = nv;
        r->latency_cap = ncap;
    }
    r->latency[r->nlatency++] = at - so->placed_ms;
    return 0;
}

static void percentiles(sandbox_report *r)
{
    size_t n = r->nlatency;
    if (n == 0)
        return;
    qsort(r->latency, n, sizeof *r->latency, cmp_ms);
    r->p50_ms = r->latency[(n - 1) / 2];
    r->p99_ms = r->latency[(n * 99 - 1) / 100];
}

int sandbox_check(db *d, const char *tenant_id, const sandbox_sims *sims,
                  const sandbox_order *orders, size_t n, sandbox_report *r, err *e)
{
    db_conn *c = db_acquire(d, e);
    if (!c)
        return db_err_code(e);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        r->orders++;
        rc = check_order(c, tenant_id, sims, &orders[i], r, e);
    }
    rc = rc ? rc : check_queues(c, r, e);
    if (rc == 0)
        percentiles(r);
    db_release(c);
    return rc;
}

void sandbox_report_print(const sandbox_report *r, FILE *out)
{
    fprintf(out,
            "orders: %d  fulfilled: %d  cancelled: %d  waiting for a mapping: %d  other: %d\n"
            "print jobs: %d  shipments: %d\n"
            "placed to fulfilled: p50 %lld ms, p99 %lld ms\n",
            r->orders, r->fulfilled, r->cancelled, r->waiting_mapping, r->other, r->print_jobs,
            r->shipments, (long long)r->p50_ms, (long long)r->p99_ms);
    if (r->window_ms > 0)
        fprintf(out,
                "throughput: %.2f fulfilled orders/s (%d in %.3f s, first placed to last"
                " fulfilled)\n",
                r->orders_per_s, r->fulfilled, (double)r->window_ms / 1000.0);
    if (r->platform_rss_kb > 0 || r->sandbox_rss_kb > 0)
        fprintf(out, "peak RSS: platform %.1f MB, sandbox and simulators %.1f MB\n",
                (double)r->platform_rss_kb / 1024.0, (double)r->sandbox_rss_kb / 1024.0);
    if (r->violations == 0) {
        fputs("invariants: all hold\n", out);
        return;
    }
    fprintf(out, "invariants: %d violated\n%s", r->violations, buf_cstr(&r->problems));
}
