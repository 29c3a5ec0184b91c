/*
 * orchestration.c - the orders service's print-job event handlers (see orchestration.h):
 * lock the order, read the job and its order's jobs as stored, apply orch_decide, keep
 * the line item in step. Writes only orders-service tables (orders, line_items,
 * order_job_progress, the event log) and publishes only the orders service's events; it
 * never changes a print job.
 */
#include "services/orders/orchestration.h"

#include "bus/catalog.h"
#include "core/clock.h"
#include "core/log.h"
#include "services/common/eventlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct orders_orchestration {
    bus *bus;
    bus_emitter *em;
    orders_orchestration_deps deps;
};

/* The order as locked for this event. */
typedef struct locked_order {
    order_status status;
    char number[64];
    int unmapped_items; /* line items waiting for a product mapping */
} locked_order;

/* What one handling works on. */
typedef struct orch_run {
    db_conn *tx;
    bus *bus;
    bus_emitter *em;  /* NULL = announce nothing */
    bus_delivery *dl; /* the delivery whose transaction tx is; NULL = the caller's */
    const orders_orchestration_deps *hooks; /* on_ready; NULL = none */
    const char *tenant_id;
    const char *event_type;
    const print_job_info *job;
    const locked_order *order;
    const print_job_tally *tally;
    int64_t now;
} orch_run;

/* ---- reading ------------------------------------------------------------------------ */

/* Locks the order row for the rest of the transaction (a no-op UPDATE takes the row lock
 * on PostgreSQL; on SQLite the transaction holds the database's write lock already), so
 * two instances handling events of one order take turns and each decides on what the
 * other committed. Then reads it. F3_ENOTFOUND when there is no such order. */
static int lock_order(db_conn *tx, const char *tenant_id, const char *order_id, locked_order *out,
                      err *e)
{
    memset(out, 0, sizeof *out);
    const char *t[] = {tenant_id, order_id};
    int64_t n = 0;
    int rc = db_exec_texts(tx,
                           "UPDATE orders SET updated_at = updated_at"
                           " WHERE tenant_id = $1 AND id = $2",
                           t, 2, &n, e);
    if (rc)
        return rc;
    if (n == 0)
        return err_set(e, F3_ENOTFOUND, "order %s not found", order_id);
    db_stmt *s = db_prepare_texts(tx,
                                  "SELECT o.status, o.shopify_order_number,"
                                  " (SELECT COUNT(*) FROM line_items li"
                                  "  WHERE li.tenant_id = o.tenant_id AND li.order_id = o.id"
                                  "  AND li.needs_mapping = TRUE)"
                                  " FROM orders o WHERE o.tenant_id = $1 AND o.id = $2",
                                  t, 2, e);
    if (!s)
        return db_err_code(e);
    rc = db_step(s, e);
    if (rc == DB_DONE)
        rc = err_set(e, F3_ENOTFOUND, "order %s not found", order_id);
    if (rc == DB_ROW) {
        int st = order_status_parse(db_col_text(s, 0));
        db_col_copy(s, 1, out->number, sizeof out->number);
        out->unmapped_items = (int)db_col_int64(s, 2);
        out->status = st < 0 ? ORDER_PENDING : (order_status)st;
        rc = st < 0 ? err_set(e, F3_EINVAL, "order %s has an unknown status", order_id) : 0;
    }
    db_finalize(s);
    return rc;
}

/* ---- writing the order ---------------------------------------------------------------- */

static int log_order(const orch_run *r, const char *type, eventlog_severity sev, json_t *metadata,
                     err *e, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* One event-log entry about the order (and the job that caused it); takes metadata. */
static int log_order(const orch_run *r, const char *type, eventlog_severity sev, json_t *metadata,
                     err *e, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    eventlog_entry en = {.tenant_id = r->tenant_id,
                         .event_type = type,
                         .severity = sev,
                         .message = message,
                         .order_id = r->job->order_id,
                         .line_item_id = r->job->line_item_id,
                         .print_job_id = r->job->id,
                         .metadata = metadata};
    int rc = eventlog_write(r->tx, &en, NULL, e);
    json_decref(metadata);
    return rc;
}

static json_t *jobs_json(const print_job_tally *t)
{
    json_t *o = json_object();
    for (int i = 0; o && i < PRINT_JOB_STATUS_COUNT; i++)
        if (t->n[i] > 0)
            json_object_set_new(o, print_job_status_name((print_job_status)i),
                                json_integer(t->n[i]));
    return o;
}

static int set_status(const orch_run *r, const orch_decision *d, err *e)
{
    char now[24];
    db_ms_text(r->now, now);
    const char *t[] = {r->tenant_id, r->job->order_id, order_status_name(d->to),
                       order_status_name(r->order->status), now};
    int64_t n = 0;
    int rc = db_exec_texts(r->tx,
                           "UPDATE orders SET status = $3, updated_at = CAST($5 AS BIGINT),"
                           " completed_at = CASE WHEN $3 = 'COMPLETED' THEN CAST($5 AS BIGINT)"
                           " ELSE completed_at END"
                           " WHERE tenant_id = $1 AND id = $2 AND status = $4",
                           t, 5, &n, e);
    if (rc == 0 && n == 0)
        rc = err_set(e, F3_EBUSY, "order %s left status %s meanwhile", r->job->order_id,
                     order_status_name(r->order->status));
    return rc;
}

static const char *why_text(orch_reason why)
{
    switch (why) {
    case ORCH_WHY_STARTED:
        return "printing started";
    case ORCH_WHY_REVIVED:
        return "a print job is active again";
    case ORCH_WHY_ALL_COMPLETED:
        return "every print job completed";
    case ORCH_WHY_PARTIAL:
        return "some print jobs completed, the others failed or were cancelled";
    case ORCH_WHY_ALL_FAILED:
        return "no print job completed";
    case ORCH_WHY_ALL_CANCELLED:
        return "every print job was cancelled";
    case ORCH_WHY_UNMAPPED:
        return "every print job completed, but some line items wait for a product mapping";
    default:
        return orch_reason_name(why);
    }
}

/* The entries the decision's ORCH_ACT_LOG_* ask for. */
static int log_outcome(const orch_run *r, const orch_decision *d, err *e)
{
    const char *num = r->order->number;
    const print_job_tally *t = r->tally;
    int rc = 0;
    if (d->actions & ORCH_ACT_LOG_PARTIAL)
        rc = log_order(r, ORCH_LOG_PARTIAL, EVENTLOG_WARNING, jobs_json(t), e,
                       "Order %s partially completed: %d of %d print jobs completed, %d failed,"
                       " %d cancelled",
                       num, t->n[PRINT_JOB_COMPLETED], t->total, t->n[PRINT_JOB_FAILED],
                       t->n[PRINT_JOB_CANCELLED]);
    if (rc == 0 && (d->actions & ORCH_ACT_LOG_ALL_FAIL))
        rc = log_order(r, ORCH_LOG_ALL_FAILED, EVENTLOG_ERROR, jobs_json(t), e,
                       "Order %s failed: none of its %d print jobs completed (%d failed)", num,
                       t->total, t->n[PRINT_JOB_FAILED]);
    if (rc == 0 && (d->actions & ORCH_ACT_LOG_FAILED))
        rc = log_order(r, ORCH_LOG_FAILED, EVENTLOG_ERROR,
                       json_pack("{s:s,s:o}", "reason", "ALL_JOBS_CANCELLED", "jobs", jobs_json(t)),
                       e,
                       "Order %s failed: all %d print jobs were cancelled while the order was"
                       " not; retry a job to revive it or cancel the order",
                       num, t->total);
    if (rc == 0 && (d->actions & ORCH_ACT_LOG_REVIVED))
        rc = log_order(
            r, ORCH_LOG_REVIVED, EVENTLOG_INFO,
            json_pack("{s:s,s:s,s:s}", "previousStatus", order_status_name(r->order->status),
                      "printJobId", r->job->id, "jobStatus", print_job_status_name(r->job->status)),
            e, "Order %s revived from %s: print job %s is %s", num,
            order_status_name(r->order->status), r->job->id, print_job_status_name(r->job->status));
    return rc;
}

static int publish_ready(const orch_run *r, err *e)
{
    json_t *fields = json_pack("{s:s}", "orderId", r->job->order_id);
    if (!fields)
        return err_set(e, F3_ENOMEM, "out of memory");
    int rc =
        bus_publish(r->bus, r->tx, BUS_EV_ORDER_READY_FOR_FULFILLMENT, r->tenant_id, fields, e);
    json_decref(fields);
    rc = rc ? rc
            : log_order(r, ORCH_LOG_READY, EVENTLOG_INFO, NULL, e,
                        "Order %s is ready for fulfillment", r->order->number);
    if (rc == 0 && r->hooks && r->hooks->on_ready)
        rc = r->hooks->on_ready(r->hooks->on_ready_ctx, r->tx, r->tenant_id, r->job->order_id, e);
    return rc;
}

/* An order status change to announce in-process once it is committed. */
typedef struct announcement {
    bus_emitter *em;
    json_t *payload;
    bool failed;
} announcement;

static void announce(void *ctx)
{
    announcement *a = ctx;
    (void)bus_emitter_emit(a->em, BUS_IEV_ORDER_STATUS_CHANGED, a->payload);
    if (a->failed)
        (void)bus_emitter_emit(a->em, BUS_IEV_ORDER_FAILED, a->payload);
}

static void announcement_free(void *ctx)
{
    announcement *a = ctx;
    json_decref(a->payload);
    free(a);
}

/* order.status_changed (and order.failed) on the emitter, after the delivery's commit:
 * a listener never hears of a change that was rolled back. */
static int announce_change(const orch_run *r, const orch_decision *d, err *e)
{
    if (!r->em || !r->dl)
        return 0;
    announcement *a = calloc(1, sizeof *a);
    if (a)
        a->payload =
            json_pack("{s:s,s:s,s:s,s:s,s:s}", "tenantId", r->tenant_id, "orderId",
                      r->job->order_id, "previousStatus", order_status_name(r->order->status),
                      "newStatus", order_status_name(d->to), "reason", orch_reason_name(d->why));
    if (!a || !a->payload) {
        free(a);
        return err_set(e, F3_ENOMEM, "out of memory announcing an order status change");
    }
    a->em = r->em;
    a->failed = d->to == ORDER_FAILED;
    return bus_delivery_after_commit(r->dl, announce, announcement_free, a, e);
}

static int apply(const orch_run *r, const orch_decision *d, err *e)
{
    int rc = set_status(r, d, e);
    if (rc == 0)
        rc = log_order(
            r, ORCH_LOG_STATUS_CHANGED, d->to == ORDER_FAILED ? EVENTLOG_ERROR : EVENTLOG_INFO,
            json_pack("{s:s,s:s,s:s,s:s,s:o}", "previousStatus",
                      order_status_name(r->order->status), "newStatus", order_status_name(d->to),
                      "reason", orch_reason_name(d->why), "event", r->event_type, "jobs",
                      jobs_json(r->tally)),
            e, "Order %s: %s -> %s (%s)", r->order->number, order_status_name(r->order->status),
            order_status_name(d->to), why_text(d->why));
    if (rc == 0)
        rc = log_outcome(r, d, e);
    if (rc == 0 && (d->actions & ORCH_ACT_READY))
        rc = publish_ready(r, e);
    if (rc == 0)
        rc = announce_change(r, d, e);
    if (rc == 0)
        log_info("order status changed", "orderId", r->job->order_id, "from",
                 order_status_name(r->order->status), "to", order_status_name(d->to), "reason",
                 orch_reason_name(d->why), "printJobId", r->job->id);
    return rc;
}

/* ---- line items ------------------------------------------------------------------------ */

/* Records the job as read now (with its error when it failed), unless a newer reading is
 * recorded already. */
static int remember_job(const orch_run *r, err *e)
{
    char job_at[24], now[24];
    db_ms_text(r->job->updated_at, job_at);
    db_ms_text(r->now, now);
    const char *error = r->job->status == PRINT_JOB_FAILED && r->job->error_message[0]
                            ? r->job->error_message
                            : NULL;
    const char *t[] = {r->tenant_id,
                       r->job->id,
                       r->job->order_id,
                       r->job->line_item_id,
                       print_job_status_name(r->job->status),
                       job_at,
                       now,
                       error};
    return db_exec_texts(
        r->tx,
        "INSERT INTO order_job_progress (tenant_id, print_job_id, order_id, line_item_id, status,"
        " job_updated_at, updated_at, error_message) VALUES ($1, $2, $3, $4, $5,"
        " CAST($6 AS BIGINT), CAST($7 AS BIGINT), $8)"
        " ON CONFLICT (tenant_id, print_job_id) DO UPDATE SET status = excluded.status,"
        " job_updated_at = excluded.job_updated_at, updated_at = excluded.updated_at,"
        " error_message = excluded.error_message"
        " WHERE order_job_progress.job_updated_at <= excluded.job_updated_at",
        t, 8, NULL, e);
}

/* One line item's jobs as recorded. */
typedef struct item_record {
    char id[PRINT_JOB_ID_MAX + 1];
    print_job_tally jobs;
    char error[512]; /* the newest failed job's error; "" when none */
} item_record;

/* The recorded jobs of the order, per line item (*items, *count; the caller frees); a
 * FAILED item's error is that of its most recently updated failed job. */
static int recorded_items(const orch_run *r, item_record **items, int *count, err *e)
{
    *items = NULL;
    *count = 0;
    const char *t[] = {r->tenant_id, r->job->order_id};
    db_stmt *s = db_prepare_texts(r->tx,
                                  "SELECT line_item_id, status, error_message"
                                  " FROM order_job_progress WHERE tenant_id = $1 AND order_id = $2"
                                  " ORDER BY line_item_id, job_updated_at",
                                  t, 2, e);
    if (!s)
        return db_err_code(e);
    int rc, cap = 0;
    while ((rc = db_step(s, e)) == DB_ROW) {
        const char *id = db_col_text(s, 0);
        int st = print_job_status_parse(db_col_text(s, 1));
        if (!id || st < 0)
            continue;
        item_record *it = *count > 0 ? &(*items)[*count - 1] : NULL;
        if (!it || strcmp(it->id, id) != 0) {
            if (*count == cap) {
                cap = cap ? cap * 2 : 8;
                item_record *grown = realloc(*items, (size_t)cap * sizeof **items);
                if (!grown) {
                    rc = err_set(e, F3_ENOMEM, "out of memory");
                    break;
                }
                *items = grown;
            }
            it = &(*items)[(*count)++];
            memset(it, 0, sizeof *it);
            snprintf(it->id, sizeof it->id, "%s", id);
        }
        it->jobs.n[st]++;
        it->jobs.total++;
        if (st == PRINT_JOB_FAILED && db_col_text(s, 2)) /* the newest failure's error */
            db_col_copy(s, 2, it->error, sizeof it->error);
    }
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

/* Writes the item's status when it changed; a FAILED item keeps the error it has when no
 * recorded failed job carries one (a reading from before 0014). */
static int write_item(const orch_run *r, const item_record *it, orch_item_status status, err *e)
{
    char now[24];
    db_ms_text(r->now, now);
    const char *why = status == ORCH_ITEM_FAILED && it->error[0] ? it->error : NULL;
    const char *t[] = {r->tenant_id, it->id, orch_item_status_name(status),
                       why,          now,    r->job->order_id};
    return db_exec_texts(r->tx,
                         "UPDATE line_items SET status = $3, updated_at = CAST($5 AS BIGINT),"
                         " error_message = CASE WHEN $3 = 'FAILED'"
                         " THEN COALESCE($4, error_message) ELSE NULL END"
                         " WHERE tenant_id = $1 AND id = $2 AND order_id = $6"
                         " AND (status <> $3 OR COALESCE(error_message, '') <> COALESCE($4,"
                         " error_message, ''))",
                         t, 6, NULL, e);
}

/* Records the job, then gives every line item of the order its status from the recorded
 * jobs: not only the job's own item, since the items of an order settle only once every
 * job of the order is recorded, which another item's job may be the last to complete.
 * *out is the status of the job's own line item. */
static int update_line_items(const orch_run *r, orch_item_status *out, err *e)
{
    item_record *items = NULL;
    int count = 0, order_jobs = 0;
    int rc = remember_job(r, e);
    rc = rc ? rc : recorded_items(r, &items, &count, e);
    for (int i = 0; rc == 0 && i < count; i++)
        order_jobs += items[i].jobs.total;
    bool complete = order_jobs >= r->tally->total;
    for (int i = 0; rc == 0 && i < count; i++) {
        orch_item_status st = orch_item_decide(&items[i].jobs, complete);
        if (strcmp(items[i].id, r->job->line_item_id) == 0)
            *out = st;
        rc = write_item(r, &items[i], st, e);
    }
    free(items);
    return rc;
}

/* ---- one event ------------------------------------------------------------------------- */

static int ignore(orch_outcome *out, const char *why, const char *event_type, const char *tenant_id,
                  const char *job_id)
{
    log_warn("print-job event ignored", "reason", why, "event", event_type, "tenantId", tenant_id,
             "printJobId", job_id);
    out->ignored = true;
    return 0;
}

static int decide_and_apply(orch_run *r, int previous, orch_outcome *out, err *e)
{
    orch_input in = {.order = r->order->status,
                     .tally = *r->tally,
                     .event = (orch_event)orch_event_parse(r->event_type),
                     .previous = previous,
                     .job = r->job->status,
                     .unmapped_items = r->order->unmapped_items};
    orch_decision d = orch_decide(&in);
    out->from = r->order->status;
    out->to = d.to;
    out->decision = d;
    if (d.actions & ORCH_ACT_SET_STATUS)
        return apply(r, &d, e);
    if (d.why == ORCH_WHY_FINAL && !print_job_status_is_terminal(r->job->status))
        log_info("order is final: an active print job does not revive it", "orderId",
                 r->job->order_id, "status", order_status_name(r->order->status), "printJobId",
                 r->job->id, "jobStatus", print_job_status_name(r->job->status));
    else if (d.why == ORCH_WHY_REFUSED)
        log_warn("order status move refused by the status table", "orderId", r->job->order_id,
                 "status", order_status_name(r->order->status));
    return 0;
}

static int orchestrate(db_conn *tx, bus *b, bus_delivery *dl, bus_emitter *em,
                       const orders_orchestration_deps *hooks, const char *event_type,
                       const char *tenant_id, const json_t *fields, orch_outcome *out, err *e)
{
    orch_outcome local = {.ignored = false};
    out = out ? out : &local;
    memset(out, 0, sizeof *out);
    if (orch_event_parse(event_type) < 0)
        return err_set(e, F3_EINVAL, "not a print-job event: %.80s",
                       event_type ? event_type : "(none)");
    const char *job_id = json_string_value(json_object_get(fields, "printJobId"));
    const char *event_order = json_string_value(json_object_get(fields, "orderId"));
    if (!tenant_id || !*tenant_id || !job_id || !*job_id)
        return err_set(e, F3_EINVAL, "%s: tenantId and printJobId are required", event_type);
    print_job_info job;
    int rc = print_client_job_get(tx, tenant_id, job_id, &job, e);
    if (rc == F3_ENOTFOUND)
        return ignore(out, "no such print job for this tenant", event_type, tenant_id, job_id);
    if (rc)
        return rc;
    if (event_order && strcmp(event_order, job.order_id) != 0)
        return ignore(out, "the event names another order than the job's", event_type, tenant_id,
                      job_id);
    locked_order order;
    rc = lock_order(tx, tenant_id, job.order_id, &order, e);
    if (rc == F3_ENOTFOUND)
        return ignore(out, "the job's order is not stored", event_type, tenant_id, job_id);
    /* Read the job again under the order's lock: a reading taken before it may be older
     * than one another event's transaction recorded while we waited (remember_job keeps
     * the newer of two readings only by the job's updated_at, which can tie). */
    rc = rc ? rc : print_client_job_get(tx, tenant_id, job_id, &job, e);
    if (rc == F3_ENOTFOUND)
        return ignore(out, "no such print job for this tenant", event_type, tenant_id, job_id);
    print_job_tally tally;
    rc = rc ? rc : print_client_order_tally(tx, tenant_id, job.order_id, &tally, e);
    if (rc)
        return rc;
    orch_run r = {.tx = tx,
                  .bus = b,
                  .em = em,
                  .dl = dl,
                  .hooks = hooks,
                  .tenant_id = tenant_id,
                  .event_type = event_type,
                  .job = &job,
                  .order = &order,
                  .tally = &tally,
                  .now = clock_now_ms()};
    const char *prev = json_string_value(json_object_get(fields, "previousStatus"));
    rc = decide_and_apply(&r, print_job_status_parse(prev), out, e);
    return rc ? rc : update_line_items(&r, &out->item, e);
}

int orders_orchestrate(db_conn *tx, bus *b, const char *event_type, const char *tenant_id,
                       const json_t *fields, orch_outcome *out, err *e)
{
    return orchestrate(tx, b, NULL, NULL, NULL, event_type, tenant_id, fields, out, e);
}

/* ---- subscriptions ---------------------------------------------------------------------- */

static int on_print_job_event(bus_delivery *dl, void *ctx, err *e)
{
    orders_orchestration *o = ctx;
    const bus_envelope *env = bus_delivery_envelope(dl);
    if (!env)
        return err_set(e, F3_EINVAL, "print-job delivery without an event");
    db_conn *tx = bus_delivery_tx(dl, e);
    if (!tx)
        return db_err_code(e);
    return orchestrate(tx, o->bus, dl, o->em, &o->deps, env->event_type, env->tenant_id, env->root,
                       NULL, e);
}

int orders_orchestration_start(orders_orchestration **out, const orders_orchestration_deps *deps,
                               err *e)
{
    *out = NULL;
    if (!deps || !deps->bus)
        return err_set(e, F3_EINVAL, "orders orchestration: a bus is required");
    if (bus_self(deps->bus) != BUS_SVC_ORDER)
        return err_set(e, F3_EINVAL, "orders orchestration: the bus must be the orders service's");
    orders_orchestration *o = calloc(1, sizeof *o);
    if (!o)
        return err_set(e, F3_ENOMEM, "out of memory");
    o->bus = deps->bus;
    o->em = deps->emitter;
    o->deps = *deps;
    bus_sub_opts so = {.concurrency = deps->concurrency};
    int rc = 0;
    for (int i = 0; rc == 0 && i < ORCH_EV_COUNT; i++)
        rc =
            bus_subscribe(deps->bus, orch_event_type((orch_event)i), on_print_job_event, o, &so, e);
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    return 0;
}

void orders_orchestration_free(orders_orchestration *o)
{
    free(o);
}
