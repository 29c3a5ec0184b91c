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

#include "bus/catalog.h"
#include "core/clock.h"
#include "core/json.h"
#include "http/client.h"
#include "services/common/notify.h"
#include "services/common/retry.h"
#include "services/orders/fulfillment.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* An active job whose lease ran out this long ago should have been recovered by the
 * stalled-job check (every few seconds) of a living instance. */
#define STUCK_GRACE_MS 30000

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
    int64_t fulfilled_at; /* 0 = no fulfilment recorded */
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
                         "  AND li.order_id = o.id AND li.needs_mapping = TRUE), o.created_at,"
                         " COALESCE(o.fulfilled_at, 0)"
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
        o->fulfilled_at = db_col_int64(s, 6);
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

/* Fulfilments Shopify (the simulator) holds for the order; -1 when it cannot say. Read
 * through the simulator's control endpoint, which neither the rate limit nor injected
 * faults touch: the checker must see the truth while the platform is being tested. */
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

/* Where an order ended, as the checker classifies it. */
typedef struct order_end {
    bool fulfilled; /* COMPLETED with a Shopify fulfilment recorded: its id, or - when a
                       worker killed after creating it left it unrecorded, the next one
                       found it done in Shopify and could not read the ids back - the time
                       it was recorded without them */
    bool cancelled; /* CANCELLED */
    bool waiting;   /* PENDING with unmapped line items */
    bool review;    /* meant to be cancelled, but the cancellation came after the order
                       was COMPLETED: not fulfilled, flagged for review */
} order_end;

static order_end end_of(const sandbox_order *so, const order_row *o)
{
    order_end x;
    bool recorded = o->fulfillment_id[0] || o->fulfilled_at > 0;
    x.fulfilled = strcmp(o->status, "COMPLETED") == 0 && recorded;
    x.cancelled = strcmp(o->status, "CANCELLED") == 0;
    x.waiting = strcmp(o->status, "PENDING") == 0 && o->unmapped > 0;
    x.review = so->intent == SANDBOX_CANCEL && strcmp(o->status, "COMPLETED") == 0 && !recorded &&
               o->review[0];
    return x;
}

/* The final state this order should be in, given its intent. */
static void check_state(const sandbox_order *so, const order_row *o, int fulfilments,
                        sandbox_report *r)
{
    order_end x = end_of(so, o);
    r->fulfilled += x.fulfilled;
    r->cancelled += x.cancelled;
    r->waiting_mapping += x.waiting;
    r->review += x.review;
    r->other += !x.fulfilled && !x.cancelled && !x.waiting && !x.review;
    if (fulfilments > 1)
        violation(r, "order %s: %d fulfilments in Shopify", so->shopify_id, fulfilments);
    if (x.fulfilled && fulfilments == 0)
        violation(r, "order %s: marked fulfilled but Shopify has no fulfilment", so->shopify_id);
    if (!x.fulfilled && fulfilments > 0)
        violation(r, "order %s: %s in f3connect but fulfilled in Shopify", so->shopify_id,
                  o->status);
    switch (so->intent) {
    case SANDBOX_FULFIL:
        if (!x.fulfilled)
            violation(r, "order %s: should be fulfilled, is %s", so->shopify_id, o->status);
        break;
    case SANDBOX_UNMAPPED:
        if (!x.waiting)
            violation(r, "order %s: should wait for a mapping, is %s", so->shopify_id, o->status);
        break;
    case SANDBOX_CANCEL:
        /* A cancellation that arrives after the order was fulfilled cannot undo it; one
         * that arrives after it was completed stops the fulfilment and asks for review. */
        if (!x.cancelled && !x.fulfilled && !x.review)
            violation(r, "order %s: should be cancelled, is %s", so->shopify_id, o->status);
        break;
    }
}

/* Entries of one type in the order's event log. */
static int logged(db_conn *c, const char *tenant, const char *order_id, const char *type,
                  int64_t *out, err *e)
{
    const char *p[] = {tenant, order_id, type};
    return count(c,
                 "SELECT COUNT(*) FROM event_log WHERE tenant_id = $1 AND order_id = $2"
                 " AND event_type = $3",
                 p, 3, out, e);
}

/* The event log tells the order's story, each step once: received; every print job
 * created; its shipment created; then fulfilled, cancelled, waiting for a mapping or
 * flagged for review, as the order ended. */
static int check_eventlog(db_conn *c, const char *tenant, const sandbox_order *so,
                          const order_row *o, sandbox_report *r, err *e)
{
    order_end x = end_of(so, o);
    const char *p[] = {tenant, o->id};
    int64_t created = 0, jobs = 0, jobs_logged = 0, ships = 0, ships_logged = 0;
    int64_t fulfilled = 0, ready = 0, cancelled = 0, mapping = 0, alerts = 0;
    int rc = logged(c, tenant, o->id, BUS_EV_ORDER_CREATED, &created, e);
    rc = rc ? rc : jobs_in(c, tenant, o->id, NULL, &jobs, e);
    rc = rc ? rc : logged(c, tenant, o->id, BUS_IEV_PRINTJOB_CREATED, &jobs_logged, e);
    rc = rc ? rc
            : count(c, "SELECT COUNT(*) FROM shipments WHERE tenant_id = $1 AND order_id = $2", p,
                    2, &ships, e);
    rc = rc ? rc : logged(c, tenant, o->id, BUS_EV_SHIPMENT_CREATED, &ships_logged, e);
    rc = rc ? rc : logged(c, tenant, o->id, BUS_IEV_ORDER_FULFILLED, &fulfilled, e);
    rc = rc ? rc : logged(c, tenant, o->id, BUS_EV_ORDER_READY_FOR_FULFILLMENT, &ready, e);
    rc = rc ? rc : logged(c, tenant, o->id, BUS_EV_ORDER_CANCELLED, &cancelled, e);
    rc = rc ? rc : logged(c, tenant, o->id, "order.needs-mapping", &mapping, e);
    rc = rc ? rc : logged(c, tenant, o->id, NOTIFY_ALERT_EVENT, &alerts, e);
    if (rc)
        return rc;
    if (created != 1)
        violation(r, "order %s: %lld order.created entries in the event log", so->shopify_id,
                  (long long)created);
    if (jobs_logged != jobs)
        violation(r, "order %s: %lld print jobs but %lld printjob.created entries in the event log",
                  so->shopify_id, (long long)jobs, (long long)jobs_logged);
    if (ships_logged != ships)
        violation(r, "order %s: %lld shipments but %lld shipment.created entries in the event log",
                  so->shopify_id, (long long)ships, (long long)ships_logged);
    if (fulfilled != (x.fulfilled ? 1 : 0))
        violation(r, "order %s: %s with %lld order.fulfilled entries in the event log",
                  so->shopify_id, x.fulfilled ? "fulfilled" : o->status, (long long)fulfilled);
    if (x.fulfilled && ready == 0)
        violation(r, "order %s: fulfilled without order.ready-for-fulfillment in the event log",
                  so->shopify_id);
    /* An order whose orders/create was lost arrives with the cancellation already made
     * (its order.created entry says so); one that was live before is logged cancelled. */
    if (x.cancelled && (cancelled > 1 || (cancelled == 0 && jobs > 0)))
        violation(r, "order %s: cancelled with %lld order.cancelled entries in the event log",
                  so->shopify_id, (long long)cancelled);
    if (x.waiting && mapping == 0)
        violation(r, "order %s: waits for a mapping without order.needs-mapping in the event log",
                  so->shopify_id);
    if (x.review && alerts == 0)
        violation(r, "order %s: cancelled after completion without an operator alert",
                  so->shopify_id);
    return 0;
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

/* Active jobs: one whose lease ran out long ago was never recovered (stuck); one under a
 * live lease is in flight. In flight is fine only for the ticks of repeatable jobs (the
 * pollers: their next tick runs regardless); work on any other queue - an event, a
 * webhook, a shipment, a fulfilment - is not finished yet. */
static int check_active(db_conn *c, sandbox_report *r, err *e)
{
    char stale[24];
    db_ms_text(clock_now_ms() - STUCK_GRACE_MS, stale);
    const char *p[] = {stale};
    int64_t stuck = 0, busy = 0, ticks = 0;
    int rc = count(c,
                   "SELECT COUNT(*) FROM bus_jobs WHERE state = 'active'"
                   " AND lock_until < CAST($1 AS BIGINT)",
                   p, 1, &stuck, e);
    rc = rc ? rc
            : count(c,
                    "SELECT COUNT(*) FROM bus_jobs j WHERE j.state = 'active'"
                    " AND (j.lock_until IS NULL OR j.lock_until >= CAST($1 AS BIGINT))"
                    " AND NOT EXISTS (SELECT 1 FROM bus_repeatables r WHERE r.queue = j.queue)",
                    p, 1, &busy, e);
    rc = rc ? rc
            : count(c,
                    "SELECT COUNT(*) FROM bus_jobs j WHERE j.state = 'active'"
                    " AND (j.lock_until IS NULL OR j.lock_until >= CAST($1 AS BIGINT))"
                    " AND EXISTS (SELECT 1 FROM bus_repeatables r WHERE r.queue = j.queue)",
                    p, 1, &ticks, e);
    if (rc)
        return rc;
    if (stuck)
        violation(r, "%lld queued jobs stuck active (lease ran out, never recovered)",
                  (long long)stuck);
    if (busy)
        violation(r, "%lld queued jobs still being handled", (long long)busy);
    r->in_flight += (int)ticks;
    return 0;
}

/* Retry entries: pending ones are work not done; a PROCESSING one is held by a handler
 * until its lease (RETRY_DEFAULT_LEASE_MS) ends, after which another claim takes it. */
static int check_retries(db_conn *c, sandbox_report *r, err *e)
{
    char stale[24];
    db_ms_text(clock_now_ms() - RETRY_DEFAULT_LEASE_MS - STUCK_GRACE_MS, stale);
    const char *p[] = {stale};
    int64_t pending = 0, abandoned = 0, held = 0;
    int rc =
        count(c, "SELECT COUNT(*) FROM retry_queue WHERE status = 'PENDING'", NULL, 0, &pending, e);
    rc = rc ? rc
            : count(c,
                    "SELECT COUNT(*) FROM retry_queue WHERE status = 'PROCESSING'"
                    " AND updated_at < CAST($1 AS BIGINT)",
                    p, 1, &abandoned, e);
    rc = rc ? rc
            : count(c,
                    "SELECT COUNT(*) FROM retry_queue WHERE status = 'PROCESSING'"
                    " AND updated_at >= CAST($1 AS BIGINT)",
                    p, 1, &held, e);
    if (rc)
        return rc;
    if (pending)
        violation(r, "%lld retry-queue entries not finished", (long long)pending);
    if (abandoned)
        violation(r, "%lld retry-queue entries abandoned in PROCESSING", (long long)abandoned);
    r->in_flight += (int)held;
    return 0;
}

/* Fulfilment claims: a worker renews its claim before every Shopify call, and a claim older
 * than ORDERS_FULFILLMENT_STALE_MS is taken over by the job that looks at it then. One
 * older still was abandoned; a younger one is in flight. */
static int check_claims(db_conn *c, sandbox_report *r, err *e)
{
    char stale[24];
    db_ms_text(clock_now_ms() - ORDERS_FULFILLMENT_STALE_MS - STUCK_GRACE_MS, stale);
    const char *p[] = {stale};
    int64_t abandoned = 0, held = 0;
    int rc = count(c,
                   "SELECT COUNT(*) FROM order_fulfillments WHERE state = 'CLAIMED'"
                   " AND claimed_at < CAST($1 AS BIGINT)",
                   p, 1, &abandoned, e);
    rc = rc ? rc
            : count(c,
                    "SELECT COUNT(*) FROM order_fulfillments WHERE state = 'CLAIMED'"
                    " AND claimed_at >= CAST($1 AS BIGINT)",
                    p, 1, &held, e);
    if (rc)
        return rc;
    if (abandoned)
        violation(r, "%lld fulfilment claims abandoned", (long long)abandoned);
    r->in_flight += (int)held;
    return 0;
}

static int check_queues(db_conn *c, sandbox_report *r, err *e)
{
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *p[] = {now};
    int64_t due = 0, dead = 0;
    /* Event queues are named <eventType>@<service>; internal ones (pollers) too, but their
     * repeatable jobs wait in the future, so only jobs already due count. */
    int rc = count(c,
                   "SELECT COUNT(*) FROM bus_jobs WHERE state = 'waiting'"
                   " AND run_at <= CAST($1 AS BIGINT)",
                   p, 1, &due, e);
    rc = rc ? rc
            : count(c, "SELECT COUNT(*) FROM bus_jobs WHERE state = 'failed'", NULL, 0, &dead, e);
    if (rc)
        return rc;
    if (due)
        violation(r, "%lld queued jobs still waiting", (long long)due);
    if (dead)
        violation(r, "%lld queued jobs dead-lettered", (long long)dead);
    rc = check_active(c, r, e);
    rc = rc ? rc : check_retries(c, r, e);
    return rc ? rc : check_claims(c, r, e);
}

/* ---- the providers ------------------------------------------------------------------ */

static int sim_get(const char *base, const char *path, json_t **out, err *e)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    http_client_response rs;
    int rc = http_client_json("GET", url, NULL, NULL, 10000, out, &rs, e);
    http_client_response_free(&rs);
    return rc;
}

/* The print job (its status into status) that holds this SimplyPrint queue item: 0, or
 * F3_ENOTFOUND; *holders says how many do. */
static int item_holder(db_conn *c, const char *tenant, const char *item, char status[32],
                       int64_t *holders, err *e)
{
    const char *p[] = {tenant, item};
    db_stmt *s = db_prepare_texts(c,
                                  "SELECT status FROM print_jobs WHERE tenant_id = $1"
                                  " AND simplyprint_queue_item_id = $2",
                                  p, 2, e);
    if (!s)
        return db_err_code(e);
    int rc;
    *holders = 0;
    status[0] = '\0';
    while ((rc = db_step(s, e)) == DB_ROW) {
        if ((*holders)++ == 0)
            db_col_copy(s, 0, status, 32);
    }
    db_finalize(s);
    return rc < 0 ? rc : *holders ? 0 : F3_ENOTFOUND;
}

/* SimplyPrint holds no print twice: every queue item belongs to one print job (items left
 * behind by a reprint aside: a reprint queues the copy again), and nothing is still queued
 * for a cancelled print job or for no print job at all (it would be printed for nobody). */
static int check_simplyprint(db_conn *c, const char *tenant, const sandbox_sims *sims,
                             sandbox_report *r, err *e)
{
    json_t *state = NULL;
    int rc = sim_get(sims->simplyprint_url, "/_sim/state", &state, e);
    int64_t reprints = 0, orphans = 0;
    const char *p[] = {tenant};
    rc = rc ? rc
            : count(c, "SELECT COALESCE(SUM(retry_count), 0) FROM print_jobs WHERE tenant_id = $1",
                    p, 1, &reprints, e);
    static const char *const lists[] = {"queue", "done_items"};
    for (size_t l = 0; rc == 0 && l < 2; l++) {
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(state, lists[l]), i, item)
        {
            char id[32], status[32];
            snprintf(id, sizeof id, "%lld",
                     (long long)json_integer_value(json_object_get(item, "id")));
            int64_t holders = 0;
            int hr = item_holder(c, tenant, id, status, &holders, e);
            if (hr && hr != F3_ENOTFOUND) {
                rc = hr;
                break;
            }
            if (holders > 1)
                violation(r, "SimplyPrint queue item %s belongs to %lld print jobs", id,
                          (long long)holders);
            if (l == 0 && hr == F3_ENOTFOUND)
                violation(r, "SimplyPrint queue item %s is queued for no print job", id);
            else if (l == 0 && strcmp(status, "CANCELLED") == 0)
                violation(r, "SimplyPrint queue item %s is still queued for a cancelled job", id);
            orphans += hr == F3_ENOTFOUND;
        }
    }
    if (rc == 0 && orphans > reprints)
        violation(r,
                  "%lld SimplyPrint queue items belong to no print job, %lld reprints explain"
                  " only some (submitted twice)",
                  (long long)orphans, (long long)reprints);
    json_decref(state);
    return rc;
}

/* Sendcloud holds one parcel per order (its external reference is our order id) and
 * none for an order without a shipment here. */
static int check_sendcloud(db_conn *c, const char *tenant, const sandbox_sims *sims,
                           sandbox_report *r, err *e)
{
    json_t *doc = NULL;
    int rc = sim_get(sims->sendcloud_url, "/_sim/parcels", &doc, e);
    json_t *parcels = json_object_get(doc, "parcels");
    size_t i;
    json_t *row;
    json_array_foreach(parcels, i, row)
    {
        if (rc)
            break;
        const char *ref = json_string_value(
            json_object_get(json_object_get(row, "parcel"), "external_reference"));
        if (!ref || !*ref) {
            violation(r, "a Sendcloud parcel without an external reference");
            continue;
        }
        const char *p[] = {tenant, ref};
        int64_t known = 0;
        rc = count(c, "SELECT COUNT(*) FROM shipments WHERE tenant_id = $1 AND order_id = $2", p, 2,
                   &known, e);
        if (rc == 0 && known == 0)
            violation(r, "Sendcloud parcel for order %s, which has no shipment in f3connect", ref);
        /* Reported once, at the second parcel of the order. */
        size_t before = 0;
        for (size_t k = 0; k < i; k++) {
            const char *o = json_string_value(json_object_get(
                json_object_get(json_array_get(parcels, k), "parcel"), "external_reference"));
            before += o && strcmp(o, ref) == 0;
        }
        if (before == 1)
            violation(r, "order %s: more than one parcel at Sendcloud", ref);
    }
    json_decref(doc);
    return rc;
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
                   " AND event_type = '" BUS_IEV_ORDER_FULFILLED "'",
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
    rc = rc || !sims->simplyprint_url ? rc : check_simplyprint(c, tenant_id, sims, r, e);
    rc = rc || !sims->sendcloud_url ? rc : check_sendcloud(c, tenant_id, sims, r, e);
    if (rc == 0)
        percentiles(r);
    r->incomplete = rc != 0;
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
    if (r->review)
        fprintf(out, "cancelled after completion (not fulfilled, flagged for review): %d\n",
                r->review);
    if (r->in_flight)
        fprintf(out, "held under a live lease when checked (poller ticks, retry entries): %d\n",
                r->in_flight);
    if (r->incomplete) {
        fprintf(out, "invariants: not all checked (the check stopped on an error)%s%s",
                r->violations ? "; violated so far:\n" : "\n", buf_cstr(&r->problems));
        return;
    }
    if (r->violations == 0) {
        fputs("invariants: all hold\n", out);
        return;
    }
    fprintf(out, "invariants: %d violated\n%s", r->violations, buf_cstr(&r->problems));
}
