/*
 * submit.c - print jobs from orders: creation (order.created, requeue), submission of
 * PENDING jobs to the SimplyPrint queue, operator retry and cancel, and order.cancelled.
 *
 * SimplyPrint is called outside any transaction; each outcome is then recorded in a short
 * transaction of its own with its event-log entry and events (jobs.c). A submission first
 * takes a lease on the job (submit_lease_until) so two workers never queue one job twice.
 * The lease stays set when the process dies before the outcome is recorded: such a job's
 * queue item may exist unrecorded, so its next submission (after the lease expired,
 * PRINT_SUBMIT_LEASE_MS) first lists the SimplyPrint queue and adopts that item instead of
 * adding another; a report about the item adopts it earlier (intake.c, print_jobs_adopt).
 * An AddItem that timed out or failed with a 5xx may have created the item all the same:
 * it is treated as interrupted too - the lease is kept as that marker, but expired, so the
 * next attempt may come at once and adopts the item if there is one. Adoption never takes
 * an item another job records. Its one blind spot: an item someone queued by hand in
 * SimplyPrint for the same file, unrecorded by any job, is taken like the lost one.
 * Transient failures leave the job PENDING and hand its order to the retry queue (one
 * PRINT_JOB_CREATION entry per order, see service.h); permanent ones fail the job. A queue
 * item whose removal fails on cancel gets a CANCELLATION entry (the handlers: retries.c).
 */
#include "services/print/print_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "services/common/eventlog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PENDING_BATCH_MAX 200

/* ---- changes in a transaction of their own --------------------------------------------- */

typedef struct change_tx {
    print_service *s;
    const char *tenant_id;
    const char *job_id;
    const print_change *ch;
    int64_t removal_retry; /* > 0: a CANCELLATION entry for this queue item once changed */
    print_change_outcome outcome;
    print_job_row before;
    bool held_elsewhere; /* ch's queue item is another job's: nothing changed */
} change_tx;

static int change_body(db_conn *c, void *ctx, err *e)
{
    change_tx *t = ctx;
    t->outcome = PRINT_NOT_ALLOWED;
    memset(&t->before, 0, sizeof t->before);
    /* One queue item is one job's: an interrupted submission may have adopted it. */
    int rc = t->ch->queue_item_id > 0
                 ? print_jobs_queue_item_held(c, t->tenant_id, t->ch->queue_item_id, t->job_id,
                                              &t->held_elsewhere, e)
                 : 0;
    if (rc || t->held_elsewhere)
        return rc;
    rc =
        print_jobs_change(c, t->s->bus, t->tenant_id, t->job_id, t->ch, &t->outcome, &t->before, e);
    if (rc == 0 && t->outcome == PRINT_CHANGED && t->removal_retry > 0)
        rc = print_enqueue_removal(c, t->tenant_id, t->job_id, t->removal_retry, e);
    return rc;
}

/* print_jobs_change in its own transaction (db_tx runs it again on F3_EBUSY), with a
 * CANCELLATION entry for queue item removal_retry (> 0) when it changed the job. */
static int change_own(print_service *s, const char *tenant_id, const char *job_id,
                      const print_change *ch, int64_t removal_retry, print_change_outcome *outcome,
                      err *e)
{
    change_tx t = {
        .s = s, .tenant_id = tenant_id, .job_id = job_id, .ch = ch, .removal_retry = removal_retry};
    int rc = print_in_tx(s, change_body, &t, e);
    if (outcome)
        *outcome = t.outcome;
    return rc;
}

/* ---- submission ------------------------------------------------------------------------ */

/* Takes the submission lease of a PENDING job; false when another worker holds it or the
 * job is no longer PENDING. */
static int take_lease(print_service *s, const char *tenant_id, const char *job_id, bool *taken,
                      err *e)
{
    int64_t now = clock_now_ms();
    char now_t[24], until[24];
    db_ms_text(now, now_t);
    db_ms_text(now + PRINT_SUBMIT_LEASE_MS, until);
    const char *p[] = {tenant_id, job_id, now_t, until};
    db_conn *c = db_acquire(s->db, e);
    if (!c)
        return db_err_code(e);
    int64_t n = 0;
    int rc =
        db_exec_texts(c,
                      "UPDATE print_jobs SET submit_lease_until = CAST($4 AS BIGINT)"
                      " WHERE tenant_id = $1 AND id = $2 AND status = 'PENDING' AND"
                      " (submit_lease_until IS NULL OR submit_lease_until < CAST($3 AS BIGINT))",
                      p, 4, &n, e);
    db_release(c);
    *taken = rc == 0 && n == 1;
    return rc;
}

typedef struct defer_tx {
    const char *tenant_id;
    const print_job_row *job;
    bool enqueue;
    bool interrupted; /* a queue item may exist unrecorded: keep the marker */
} defer_tx;

static int defer_body(db_conn *c, void *ctx, err *e)
{
    defer_tx *t = ctx;
    /* Interrupted: the lease set to just before now stays the marker of a submission that
     * may have left a queue item, and is expired already for the next attempt (take_lease
     * wants it strictly in the past, also within the same millisecond). Otherwise cleared. */
    char now[24];
    db_ms_text(clock_now_ms() - 1, now);
    const char *p[] = {t->tenant_id, t->job->info.id, t->interrupted ? now : NULL};
    int rc = db_exec_texts(c,
                           "UPDATE print_jobs SET submit_lease_until = CAST($3 AS BIGINT)"
                           " WHERE tenant_id = $1 AND id = $2 AND status = 'PENDING'",
                           p, 3, NULL, e);
    if (rc || !t->enqueue)
        return rc;
    json_t *payload = json_pack("{s:s}", "orderId", t->job->info.order_id);
    if (!payload)
        return err_set(e, F3_ENOMEM, "out of memory");
    retry_enqueue_opts o = {.tenant_id = t->tenant_id,
                            .type = RETRY_PRINT_JOB_CREATION,
                            .payload = payload,
                            .delay_ms = -1,
                            .dedupe = true};
    rc = retry_enqueue_with(c, &o, NULL, e);
    json_decref(payload);
    return rc;
}

/* A job SimplyPrint could not take now: its lease given back (or, interrupted, turned into
 * the marker of a possibly unrecorded queue item) and, unless a retry entry is running
 * this, its order handed to the retry queue - in one transaction. */
static int defer_job(print_service *s, const char *tenant_id, const print_job_row *job,
                     print_submit_mode mode, bool interrupted, print_run_counts *out, err *e)
{
    defer_tx t = {tenant_id, job, mode != PRINT_SUBMIT_RETRY, interrupted};
    int rc = print_in_tx(s, defer_body, &t, e);
    if (rc == 0 && t.enqueue)
        out->retry_queued = true;
    if (rc)
        log_error("print job left PENDING without a retry entry; reconciliation takes it",
                  "printJobId", job->info.id, "reason", e->msg);
    return rc;
}

/* The first queue item of job's file that no job of ours holds: the item of its
 * interrupted submission (or one interchangeable with it), waiting or - when it was
 * printed before we looked - done with a printed copy. *qid = 0 when none. */
static int find_unrecorded_item(print_service *s, void *client, const char *tenant_id,
                                const print_job_row *job, int64_t *qid, sp_call *call, err *e)
{
    *qid = 0;
    sp_queue_item *items = NULL;
    size_t n = 0;
    int rc = s->provider->queue_list(client, true, &items, &n, call, e);
    db_conn *c = rc == 0 ? db_acquire(s->db, e) : NULL;
    if (rc == 0 && !c)
        rc = db_err_code(e);
    for (size_t i = 0; rc == 0 && i < n && *qid == 0; i++) {
        bool held = true;
        bool waiting_or_printed = items[i].left > 0 || items[i].printed > 0;
        if (items[i].id > 0 && waiting_or_printed && str_eq(items[i].filesystem_id, job->file_id))
            rc = print_jobs_queue_item_held(c, tenant_id, items[i].id, NULL, &held, e);
        if (rc == 0 && !held)
            *qid = items[i].id;
    }
    db_release(c);
    free(items);
    return rc;
}

/* Whether a failed queue/AddItem may have created the item all the same: no answer came
 * (a timeout, a connection lost after sending) or the server failed (5xx) while handling
 * it. A 429 or another 4xx means it was not. */
static bool add_may_have_created(const sp_call *call)
{
    return call->status == 0 || call->status >= 500;
}

/* The queue item for job: one SimplyPrint holds already for its interrupted submission
 * (adopted), else a new one from queue/AddItem. Returns the provider call's code;
 * *interrupted tells a failure after which an unrecorded item of the job may exist (the
 * queue could not be read for an interrupted job, or AddItem may have created it). */
static int obtain_queue_item(print_service *s, void *client, const char *tenant_id,
                             const print_job_row *job, int64_t *qid, bool *interrupted,
                             sp_call *call, err *e)
{
    *qid = 0;
    *interrupted = false;
    /* The job was read before we took the lease: a lease set then is (almost always) an
     * expired one, a submission that never recorded its outcome. If it was a live one that
     * ended meanwhile, looking costs one call: an item we take that another submission
     * added is recorded on one job only (change_body), the other job is submitted again. */
    if (job->submit_lease_until > 0 && s->provider->queue_list) {
        int rc = find_unrecorded_item(s, client, tenant_id, job, qid, call, e);
        if (rc == 0 && *qid > 0) {
            char q[24];
            snprintf(q, sizeof q, "%" PRId64, *qid);
            log_info("queue item of an interrupted submission found, adopting it", "printJobId",
                     job->info.id, "queueItemId", q);
            return 0;
        }
        bool transient =
            rc && rc != F3_EPERMANENT && rc != F3_EINVAL && call->failure != HTTP_PERMANENT;
        if (transient) {
            *interrupted = true; /* the lost item is still unaccounted for */
            return rc;           /* without knowing the queue we must not add a second item */
        }
        if (rc)
            log_warn("SimplyPrint queue not readable; submitting the interrupted job anew",
                     "printJobId", job->info.id, "reason",
                     call->message[0] ? call->message : e->msg);
        memset(call, 0, sizeof *call);
        err_clear(e);
    }
    sp_queue_add rq = {.filesystem_id = job->file_id,
                       .amount = 1,
                       .group = job->queue_group_id[0] ? strtoll(job->queue_group_id, NULL, 10) : 0,
                       .custom_field_id = s->order_field_id,
                       .custom_field_value = s->order_field_id ? job->info.order_id : NULL};
    int rc = s->provider->queue_add_item(client, &rq, qid, call, e);
    *interrupted = rc != 0 && rc != F3_EPERMANENT && rc != F3_EINVAL &&
                   call->failure != HTTP_PERMANENT && add_may_have_created(call);
    if (rc == 0 && *qid <= 0)
        rc = err_set(e, F3_EPERMANENT, "SimplyPrint answered without a queue item id");
    return rc;
}

/* After a recorded outcome did not change the job: what to do with its queue item. */
static int settle_unrecorded(print_service *s, void *client, const char *tenant_id,
                             const print_job_row *job, const change_tx *t, int64_t created,
                             print_submit_mode mode, print_run_counts *out, err *e)
{
    if (t->held_elsewhere) {
        /* Another job's interrupted submission adopted this item meanwhile: it is that job's
         * now, and this one is submitted again later. */
        out->deferred++;
        return defer_job(s, tenant_id, job, mode, false, out, e);
    }
    if (t->before.queue_item_id == created) {
        out->submitted++; /* a report adopted it for this very job first */
        return 0;
    }
    /* Cancelled while we were submitting: the queue item belongs to nothing. */
    sp_call dc;
    memset(&dc, 0, sizeof dc);
    err de;
    err_clear(&de);
    if (s->provider->queue_delete_item(client, created, &dc, &de) != 0)
        log_warn("orphaned SimplyPrint queue item not removed", "printJobId", job->info.id,
                 "reason", dc.message[0] ? dc.message : de.msg);
    out->deferred++;
    return 0;
}

/* Submits one PENDING job with the tenant's client. Counts go to *out; F3_ETRANSIENT when
 * it stays PENDING because SimplyPrint could not take it now.
 *
 * A crash (SIGKILL) between SimplyPrint's answer and the recording transaction leaves the
 * job PENDING with its lease set and a queue item nobody records. That item is adopted,
 * never duplicated: a report about it (intake.c) gives it to the job, and so does the next
 * submission, which lists the queue before adding anything (obtain_queue_item). */
static int submit_one(print_service *s, void *client, const char *tenant_id,
                      const print_job_row *job, print_submit_mode mode, print_run_counts *out,
                      err *e)
{
    bool taken = false;
    int rc = take_lease(s, tenant_id, job->info.id, &taken, e);
    if (rc || !taken) {
        out->deferred++;
        return rc;
    }
    sp_call call;
    memset(&call, 0, sizeof call);
    int64_t created = 0;
    bool interrupted = false;
    err pe;
    err_clear(&pe);
    int prc = obtain_queue_item(s, client, tenant_id, job, &created, &interrupted, &call, &pe);
    bool permanent =
        prc == F3_EPERMANENT || prc == F3_EINVAL || (prc && call.failure == HTTP_PERMANENT);
    if (prc && !permanent) {
        out->deferred++;
        if (call.retry_after_ms > out->retry_after_ms)
            out->retry_after_ms = call.retry_after_ms;
        log_warn("SimplyPrint submission failed, will retry", "printJobId", job->info.id, "reason",
                 call.message[0] ? call.message : pe.msg, "queueItemMayExist",
                 interrupted ? "yes" : "no");
        rc = defer_job(s, tenant_id, job, mode, interrupted, out, e);
        return rc ? rc
                  : err_set(e, F3_ETRANSIENT, "SimplyPrint could not take print job %s now: %s",
                            job->info.id, call.message[0] ? call.message : pe.msg);
    }
    char msg[SP_MESSAGE_MAX + 64];
    snprintf(msg, sizeof msg, "SimplyPrint refused the print job: %s",
             call.message[0] ? call.message : pe.msg);
    print_change ch = {.to = prc ? PRINT_JOB_FAILED : PRINT_JOB_QUEUED,
                       .cause = PRINT_CAUSE_SUBMIT,
                       .message = prc ? msg : NULL,
                       .queue_item_id = prc ? 0 : created};
    change_tx t = {.s = s, .tenant_id = tenant_id, .job_id = job->info.id, .ch = &ch};
    rc = print_in_tx(s, change_body, &t, e);
    if (rc) {
        log_error("print job submitted but not recorded", "printJobId", job->info.id, "reason",
                  e->msg);
        return rc;
    }
    if (prc == 0 && t.outcome != PRINT_CHANGED)
        return settle_unrecorded(s, client, tenant_id, job, &t, created, mode, out, e);
    if (prc)
        out->failed++;
    else
        out->submitted++;
    return 0;
}

/* The PENDING jobs of tenant_id (order_id's when not NULL), oldest first. */
static int pending_jobs(print_service *s, const char *tenant_id, const char *order_id,
                        print_job_row **rows, size_t *n, err *e)
{
    *rows = NULL;
    *n = 0;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM print_jobs WHERE tenant_id = $1 AND status = 'PENDING'%s"
             " ORDER BY created_at, id LIMIT %d",
             print_jobs_columns, order_id ? " AND order_id = $2" : "", PENDING_BATCH_MAX);
    const char *p[] = {tenant_id, order_id};
    db_conn *c = db_acquire(s->db, e);
    if (!c)
        return db_err_code(e);
    int rc = print_jobs_select(c, sql, p, order_id ? 2 : 1, rows, n, e);
    db_release(c);
    return rc;
}

/* The sweep leaves an order to the retry queue while it has a PRINT_JOB_CREATION entry
 * that is PENDING, PROCESSING or FAILED (see service.h). */
static int owned_by_retry(print_service *s, const char *tenant_id, const char *order_id,
                          bool *owned, err *e)
{
    json_t *payload = json_pack("{s:s}", "orderId", order_id);
    if (!payload)
        return err_set(e, F3_ENOMEM, "out of memory");
    db_conn *c = db_acquire(s->db, e);
    int rc = c ? retry_exists(c, tenant_id, RETRY_PRINT_JOB_CREATION, payload,
                              RETRY_ST_PENDING | RETRY_ST_PROCESSING | RETRY_ST_FAILED, owned, e)
               : db_err_code(e);
    db_release(c);
    json_decref(payload);
    return rc;
}

/* Whether to leave job to someone else now: its order failed transiently in this run (one
 * failure per order is enough to know SimplyPrint is busy) or, for the sweep, belongs to
 * the retry queue. skip_order / checked_order remember the last decision (the jobs come
 * in creation order, so one order's jobs are mostly together). */
static int leave_alone(print_service *s, const char *tenant_id, const print_job_row *job,
                       print_submit_mode mode, const char *failed_order, char *checked_order,
                       bool *checked_owned, bool *skip, err *e)
{
    *skip = str_eq(job->info.order_id, failed_order);
    if (*skip || mode != PRINT_SUBMIT_SWEEP)
        return 0;
    if (!str_eq(job->info.order_id, checked_order)) {
        int rc = owned_by_retry(s, tenant_id, job->info.order_id, checked_owned, e);
        if (rc)
            return rc;
        snprintf(checked_order, PRINT_JOB_ID_MAX + 1, "%s", job->info.order_id);
    }
    *skip = *checked_owned;
    return 0;
}

static int submit_jobs(print_service *s, void *client, const char *tenant_id,
                       const print_job_row *rows, size_t n, print_submit_mode mode,
                       print_run_counts *out, err *e)
{
    char failed_order[PRINT_JOB_ID_MAX + 1] = "", checked_order[PRINT_JOB_ID_MAX + 1] = "";
    bool checked_owned = false;
    int rc = 0, transient = 0;
    for (size_t i = 0; rc == 0 && i < n && !atomic_load(&s->stopping); i++) {
        bool skip = false;
        rc = leave_alone(s, tenant_id, &rows[i], mode, failed_order, checked_order, &checked_owned,
                         &skip, e);
        if (rc || skip) {
            out->deferred += rc ? 0 : 1;
            continue;
        }
        err je;
        err_clear(&je);
        int jrc = submit_one(s, client, tenant_id, &rows[i], mode, out, &je);
        if (jrc == F3_ETRANSIENT) {
            snprintf(failed_order, sizeof failed_order, "%s", rows[i].info.order_id);
            if (!transient)
                transient = err_set(e, jrc, "%s", je.msg);
        } else if (jrc) {
            rc = err_set(e, jrc, "%s", je.msg);
        }
    }
    /* Stopped half-way: a retry entry is not done yet. */
    if (rc == 0 && !transient && mode == PRINT_SUBMIT_RETRY && atomic_load(&s->stopping))
        transient = err_set(e, F3_ETRANSIENT, "the print service is stopping");
    return rc ? rc : transient;
}

static int submit_tenant(print_service *s, const char *tenant_id, const char *order_id,
                         print_submit_mode mode, print_run_counts *out, err *e)
{
    print_job_row *rows = NULL;
    size_t n = 0;
    int rc = pending_jobs(s, tenant_id, order_id, &rows, &n, e);
    if (rc || n == 0)
        return rc;
    void *client = NULL;
    err ce;
    err_clear(&ce);
    rc = print_service_client(s, tenant_id, &client, &ce);
    if (rc == F3_ENOTFOUND) {
        out->deferred += (int)n;
        log_info("print jobs wait for a SimplyPrint connection", "tenantId", tenant_id);
        free(rows);
        /* A retry entry waits for the connection too; the others leave it to the sweep. */
        return mode == PRINT_SUBMIT_RETRY
                   ? err_set(e, F3_ETRANSIENT, "SimplyPrint is not connected for this tenant")
                   : 0;
    }
    if (rc) {
        free(rows);
        return err_set(e, rc, "%s", ce.msg);
    }
    rc = submit_jobs(s, client, tenant_id, rows, n, mode, out, e);
    free(rows);
    return rc;
}

/* Submits PENDING jobs, adding to *out (print_service_submit_pending's contract). */
static int submit_all(print_service *s, const char *tenant_id, const char *order_id,
                      print_submit_mode mode, print_run_counts *out, err *e)
{
    if (tenant_id)
        return submit_tenant(s, tenant_id, order_id, mode, out, e);
    char **ids = NULL;
    size_t n = 0;
    int rc = print_conn_tenants(s, &ids, &n, e);
    int transient = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int trc = submit_tenant(s, ids[i], NULL, mode, out, e);
        if (trc == F3_ETRANSIENT)
            transient = trc;
        else
            rc = trc;
    }
    print_conn_tenants_free(ids, n);
    return rc ? rc : transient;
}

int print_submit_pending_as(print_service *s, const char *tenant_id, const char *order_id,
                            print_submit_mode mode, print_run_counts *out, err *e)
{
    memset(out, 0, sizeof *out);
    return submit_all(s, tenant_id, order_id, mode, out, e);
}

int print_service_submit_pending(print_service *s, const char *tenant_id, const char *order_id,
                                 print_run_counts *out, err *e)
{
    return print_submit_pending_as(s, tenant_id, order_id, PRINT_SUBMIT_FIRST, out, e);
}

/* ---- creation ---------------------------------------------------------------------------- */

typedef struct create_tx {
    const char *tenant_id, *order_id;
    const orders_client_line_item *items;
    size_t n;
    print_jobs_created created;
} create_tx;

static int create_body(db_conn *c, void *ctx, err *e)
{
    create_tx *t = ctx;
    memset(&t->created, 0, sizeof t->created);
    return print_jobs_create(c, t->tenant_id, t->order_id, t->items, t->n, &t->created, e);
}

/* Creates the missing jobs of the items, then submits the order's PENDING jobs. */
static int create_and_submit(print_service *s, const char *tenant_id, const char *order_id,
                             const orders_client_line_item *items, size_t n, print_run_counts *out,
                             err *e)
{
    create_tx t = {.tenant_id = tenant_id, .order_id = order_id, .items = items, .n = n};
    int rc = print_in_tx(s, create_body, &t, e);
    if (rc)
        return rc;
    out->created.created += t.created.created;
    out->created.existing += t.created.existing;
    out->created.unmapped += t.created.unmapped;
    if (t.created.created > 0) {
        char count[16];
        snprintf(count, sizeof count, "%d", t.created.created);
        log_info("print jobs created", "tenantId", tenant_id, "orderId", order_id, "count", count);
    }
    return submit_all(s, tenant_id, order_id, PRINT_SUBMIT_FIRST, out, e);
}

int print_service_requeue(print_service *s, const char *tenant_id, const char *order_id,
                          const char *line_item_id, print_run_counts *out, err *e)
{
    memset(out, 0, sizeof *out);
    orders_client_line_item *items = NULL;
    size_t n = 0;
    char status[32] = "";
    db_conn *c = db_acquire(s->db, e);
    if (!c)
        return db_err_code(e);
    int rc = orders_client_order_status(c, tenant_id, order_id, status, e);
    rc = rc ? rc : orders_client_line_items(c, tenant_id, order_id, &items, &n, e);
    db_release(c);
    if (rc == 0 && str_eq(status, "CANCELLED"))
        rc = err_set(e, F3_ECONFLICT, "Order %s is cancelled: nothing is printed for it", order_id);
    if (rc == 0 && line_item_id) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (str_eq(items[i].id, line_item_id))
                items[k++] = items[i];
        n = k;
        if (n == 0)
            rc = err_set(e, F3_ENOTFOUND, "Line item not found in order %s: %s", order_id,
                         line_item_id);
    }
    if (rc == 0)
        rc = create_and_submit(s, tenant_id, order_id, items, n, out, e);
    free(items);
    return rc;
}

/* order.created@print-service: the event's own line items. */
int print_order_created_job(bus_delivery *dl, void *ctx, err *e)
{
    print_service *s = ctx;
    const bus_envelope *env = bus_delivery_envelope(dl);
    const char *order_id = json_string_value(json_object_get(env->root, "orderId"));
    json_t *lines = json_object_get(env->root, "lineItems");
    size_t n = json_array_size(lines);
    orders_client_line_item *items = calloc(n ? n : 1, sizeof *items);
    if (!items)
        return err_set(e, F3_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *li = json_array_get(lines, i);
        snprintf(items[i].id, sizeof items[i].id, "%s",
                 json_string_value(json_object_get(li, "lineItemId")));
        const char *sku = json_string_value(json_object_get(li, "productSku"));
        snprintf(items[i].sku, sizeof items[i].sku, "%s", sku ? sku : "");
        json_int_t q = json_integer_value(json_object_get(li, "quantity"));
        if (q < 1 || q > INT32_MAX) {
            int rc =
                err_set(e, F3_EINVAL,
                        "order %s: line item %s: quantity %" JSON_INTEGER_FORMAT " out of range",
                        order_id ? order_id : "?", items[i].id, q);
            free(items);
            return rc;
        }
        items[i].quantity = (int)q;
    }
    /* Cross-service queues do not keep order: the order may have been cancelled (and its
     * order.cancelled handled, finding no jobs) before this event arrived. */
    char status[32] = "";
    db_conn *c = db_acquire(s->db, e);
    int rc =
        c ? orders_client_order_status(c, env->tenant_id, order_id, status, e) : db_err_code(e);
    db_release(c);
    print_run_counts counts;
    memset(&counts, 0, sizeof counts);
    if (rc == 0 && str_eq(status, "CANCELLED"))
        log_info("order.created of a cancelled order: no print jobs", "orderId", order_id);
    else if (rc == 0)
        rc = create_and_submit(s, env->tenant_id, order_id, items, n, &counts, e);
    /* Jobs SimplyPrint could not take now are the retry queue's: the event is handled. */
    if (rc == F3_ETRANSIENT && counts.retry_queued)
        rc = 0;
    free(items);
    return rc;
}

/* ---- retry and cancel ---------------------------------------------------------------------- */

static int reload(print_service *s, const char *tenant_id, const char *job_id, print_job_row *r,
                  err *e)
{
    memset(r, 0, sizeof *r);
    db_conn *c = db_acquire(s->db, e);
    if (!c)
        return db_err_code(e);
    int rc = print_jobs_load(c, tenant_id, job_id, r, e);
    db_release(c);
    return rc;
}

int print_service_retry(print_service *s, const char *tenant_id, const char *job_id,
                        const char *user_id, print_job_row *after, err *e)
{
    print_job_row now;
    int rc = reload(s, tenant_id, job_id, &now, e);
    if (rc)
        return rc;
    if (now.info.status != PRINT_JOB_FAILED && now.info.status != PRINT_JOB_CANCELLED)
        return err_set(e, F3_ECONFLICT,
                       "Print job %s is %s: only FAILED or CANCELLED jobs can "
                       "be retried",
                       job_id, print_job_status_name(now.info.status));
    print_change ch = {.to = PRINT_JOB_PENDING, .cause = PRINT_CAUSE_OPERATOR, .user_id = user_id};
    print_change_outcome oc;
    rc = change_own(s, tenant_id, job_id, &ch, 0, &oc, e);
    if (rc == 0 && oc != PRINT_CHANGED)
        rc = err_set(e, F3_ECONFLICT, "Print job %s changed meanwhile; try again", job_id);
    if (rc)
        return rc;
    print_run_counts counts;
    memset(&counts, 0, sizeof counts);
    err se;
    err_clear(&se);
    if (print_service_submit_pending(s, tenant_id, now.info.order_id, &counts, &se) != 0)
        log_warn("retried print job not submitted yet", "printJobId", job_id, "reason", se.msg);
    return after ? reload(s, tenant_id, job_id, after, e) : 0;
}

/* Removes the job's queue item; "" in reason when it worked (or there was none). */
static void delete_queue_item(print_service *s, const char *tenant_id, const print_job_row *job,
                              char *reason, size_t size)
{
    reason[0] = '\0';
    if (job->queue_item_id <= 0)
        return;
    void *client = NULL;
    err e;
    err_clear(&e);
    int rc = print_service_client(s, tenant_id, &client, &e);
    sp_call call;
    memset(&call, 0, sizeof call);
    if (rc == 0)
        rc = s->provider->queue_delete_item(client, job->queue_item_id, &call, &e);
    if (rc)
        snprintf(reason, size, "Removing queue item %" PRId64 " from SimplyPrint failed: %s",
                 job->queue_item_id, call.message[0] ? call.message : e.msg);
}

int print_service_cancel(print_service *s, const char *tenant_id, const char *job_id,
                         const char *user_id, print_job_row *after, err *e)
{
    print_job_row now;
    int rc = reload(s, tenant_id, job_id, &now, e);
    if (rc)
        return rc;
    if (print_job_status_is_terminal(now.info.status))
        return err_set(e, F3_ECONFLICT, "Print job %s is %s already", job_id,
                       print_job_status_name(now.info.status));
    char reason[SP_MESSAGE_MAX + 96];
    delete_queue_item(s, tenant_id, &now, reason, sizeof reason);
    print_change ch = {.to = PRINT_JOB_CANCELLED,
                       .cause = PRINT_CAUSE_OPERATOR,
                       .message = reason[0] ? reason : "Cancelled by an operator",
                       .user_id = user_id};
    print_change_outcome oc;
    rc = change_own(s, tenant_id, job_id, &ch, reason[0] ? now.queue_item_id : 0, &oc, e);
    if (rc == 0 && oc != PRINT_CHANGED)
        rc = err_set(e, F3_ECONFLICT, "Print job %s changed meanwhile; try again", job_id);
    if (rc == 0 && reason[0])
        log_warn("print job cancelled locally; SimplyPrint removal failed", "printJobId", job_id,
                 "reason", reason);
    return rc == 0 && after ? reload(s, tenant_id, job_id, after, e) : rc;
}

/* ---- order.cancelled ------------------------------------------------------------------------ */

static int order_jobs(print_service *s, db_conn *c, const char *tenant_id, const char *order_id,
                      print_job_row **rows, size_t *n, err *e)
{
    *rows = NULL;
    *n = 0;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM print_jobs WHERE tenant_id = $1 AND order_id = $2"
             " ORDER BY created_at, id",
             print_jobs_columns);
    const char *p[] = {tenant_id, order_id};
    db_conn *own = c ? NULL : db_acquire(s->db, e);
    if (!c && !own)
        return db_err_code(e);
    int rc = print_jobs_select(c ? c : own, sql, p, 2, rows, n, e);
    db_release(own);
    return rc;
}

static bool cancellable_on_order_cancel(print_job_status st)
{
    return st == PRINT_JOB_PENDING || st == PRINT_JOB_QUEUED || st == PRINT_JOB_ASSIGNED;
}

typedef struct cancel_plan {
    print_job_row row;
    char reason[SP_MESSAGE_MAX + 96];
} cancel_plan;

static int log_needs_review(db_conn *tx, const char *tenant_id, const char *order_id,
                            const print_job_row *j, err *e)
{
    eventlog_entry en = {.tenant_id = tenant_id,
                         .event_type = PRINT_LOG_NEEDS_REVIEW,
                         .severity = EVENTLOG_WARNING,
                         .message = "Order cancelled but the print job is already printing: "
                                    "needs review by an operator",
                         .order_id = order_id,
                         .line_item_id = j->info.line_item_id,
                         .print_job_id = j->info.id};
    return eventlog_write(tx, &en, NULL, e);
}

static int apply_order_cancel(print_service *s, db_conn *tx, const char *tenant_id,
                              const char *order_id, const cancel_plan *plan, size_t n, err *e)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const print_job_row *j = &plan[i].row;
        if (j->info.status == PRINT_JOB_PRINTING) {
            rc = log_needs_review(tx, tenant_id, order_id, j, e);
            continue;
        }
        if (!cancellable_on_order_cancel(j->info.status))
            continue;
        print_change ch = {.to = PRINT_JOB_CANCELLED,
                           .cause = PRINT_CAUSE_ORDER,
                           .message =
                               plan[i].reason[0] ? plan[i].reason : "Cancelled with its order"};
        print_change_outcome oc;
        print_job_row now;
        rc = print_jobs_change(tx, s->bus, tenant_id, j->info.id, &ch, &oc, &now, e);
        if (rc == 0 && oc == PRINT_CHANGED && plan[i].reason[0])
            rc = print_enqueue_removal(tx, tenant_id, j->info.id, j->queue_item_id, e);
        /* It started printing since we looked: an operator decides. */
        if (rc == 0 && oc == PRINT_NOT_ALLOWED && now.info.status == PRINT_JOB_PRINTING)
            rc = log_needs_review(tx, tenant_id, order_id, &now, e);
    }
    return rc;
}

typedef struct order_cancel_tx {
    print_service *s;
    const char *tenant_id, *order_id;
    const cancel_plan *plan;
    size_t n;
} order_cancel_tx;

static int order_cancel_body(db_conn *c, void *ctx, err *e)
{
    order_cancel_tx *t = ctx;
    return apply_order_cancel(t->s, c, t->tenant_id, t->order_id, t->plan, t->n, e);
}

/* Reads the order's jobs and removes the queue items of those to cancel (no transaction
 * open). Caller frees *plan. */
static int plan_order_cancel(print_service *s, const char *tenant_id, const char *order_id,
                             cancel_plan **plan, size_t *n, err *e)
{
    print_job_row *rows = NULL;
    *plan = NULL;
    int rc = order_jobs(s, NULL, tenant_id, order_id, &rows, n, e);
    if (rc == 0 && !(*plan = calloc(*n ? *n : 1, sizeof **plan)))
        rc = err_set(e, F3_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && *plan && i < *n; i++) {
        (*plan)[i].row = rows[i];
        if (cancellable_on_order_cancel(rows[i].info.status))
            delete_queue_item(s, tenant_id, &rows[i], (*plan)[i].reason, sizeof(*plan)[i].reason);
    }
    free(rows);
    return rc;
}

int print_service_order_cancelled(print_service *s, db_conn *tx, const char *tenant_id,
                                  const char *order_id, err *e)
{
    cancel_plan *plan = NULL;
    size_t n = 0;
    int rc = plan_order_cancel(s, tenant_id, order_id, &plan, &n, e);
    if (rc == 0 && tx) {
        rc = apply_order_cancel(s, tx, tenant_id, order_id, plan, n, e);
    } else if (rc == 0) {
        order_cancel_tx t = {s, tenant_id, order_id, plan, n};
        rc = print_in_tx(s, order_cancel_body, &t, e);
    }
    free(plan);
    return rc;
}

/* order.cancelled@print-service: provider calls first, then every local change and warning
 * in the delivery's transaction (so a redelivery, caught by the inbox, changes nothing). */
int print_order_cancelled_job(bus_delivery *dl, void *ctx, err *e)
{
    print_service *s = ctx;
    const bus_envelope *env = bus_delivery_envelope(dl);
    const char *order_id = json_string_value(json_object_get(env->root, "orderId"));
    db_conn *tx = NULL;
    cancel_plan *plan = NULL;
    size_t n = 0;
    int rc = plan_order_cancel(s, env->tenant_id, order_id, &plan, &n, e);
    if (rc == 0 && !(tx = bus_delivery_tx(dl, e)))
        rc = db_err_code(e);
    if (rc == 0)
        rc = apply_order_cancel(s, tx, env->tenant_id, order_id, plan, n, e);
    free(plan);
    return rc;
}
