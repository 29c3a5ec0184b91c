/*
 * intake.c - SimplyPrint status intake: the webhook route (secret checked in constant
 * time, delivery deduplicated and stored with its queue job in one transaction, answered
 * at once), the queue handler that applies a stored delivery, and the reconciliation
 * poller. Both paths end in one function, print_service_apply_report
 * (simplyprint.job-status-changed -> print job update -> events).
 *
 * The route does no business work, and nothing here calls SimplyPrint while a transaction
 * is open.
 */
#include "services/print/print_internal.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "core/uuid.h"
#include "integrations/simplyprint/webhook.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECONCILE_JOBS_MAX 500
/* Job-history pages (SP_PAGE_SIZE_MAX jobs each) one reconciliation run reads at most per
 * tenant: it reads on only while a job it waits for is not found and the history read is
 * not older than that job. */
#define HISTORY_PAGES_MAX 50
/* How far SimplyPrint's clock may be behind ours when the history's start times are
 * compared with our jobs' creation times. */
#define HISTORY_CLOCK_SKEW_S (15 * 60)
#define PRINT_WEBHOOK_SOURCE "simplyprint"

/* ---- reports from webhook bodies ------------------------------------------------------- */

/* What each job event means for our job; events not listed carry no job status. */
static const struct {
    const char *event;
    print_job_status status;
} job_events[] = {
    {"job.started", PRINT_JOB_PRINTING}, {"job.resumed", PRINT_JOB_PRINTING},
    {"job.paused", PRINT_JOB_PRINTING},  {"job.done", PRINT_JOB_COMPLETED},
    {"job.failed", PRINT_JOB_FAILED},    {"job.cancelled", PRINT_JOB_CANCELLED},
};

int print_sp_report_from_webhook(const char *body, size_t len, print_sp_report *out, bool *relevant,
                                 char event_out[64], err *e)
{
    memset(out, 0, sizeof *out);
    *relevant = false;
    event_out[0] = '\0';
    sp_webhook_event ev;
    int rc = sp_webhook_parse(body, len, &ev, e);
    if (rc)
        return rc;
    snprintf(event_out, 64, "%s", ev.event);
    for (size_t i = 0; i < sizeof job_events / sizeof job_events[0]; i++)
        if (strcmp(ev.event, job_events[i].event) == 0) {
            out->status = job_events[i].status;
            *relevant = ev.has_job;
        }
    if (!*relevant)
        return 0;
    out->reported_at = ev.timestamp > 0 ? ev.timestamp * 1000 : 0;
    out->queue_item_id = ev.queue_item_id;
    if (ev.job_id > 0)
        snprintf(out->sp_job_id, sizeof out->sp_job_id, "%" PRId64, ev.job_id);
    snprintf(out->sp_job_uid, sizeof out->sp_job_uid, "%s", ev.job_uid);
    if (ev.printer_id > 0)
        snprintf(out->printer_id, sizeof out->printer_id, "%" PRId64, ev.printer_id);
    snprintf(out->printer_name, sizeof out->printer_name, "%s", ev.printer_name);
    snprintf(out->message, sizeof out->message, "%s", ev.reason);
    return 0;
}

/* ---- applying a report --------------------------------------------------------------- */

static int find_by_sp_job(db_conn *c, const char *tenant_id, const char *sp_job_id,
                          char out[PRINT_JOB_ID_MAX + 1], err *e)
{
    const char *p[] = {tenant_id, sp_job_id};
    db_stmt *st = db_prepare_texts(
        c, "SELECT id FROM print_jobs WHERE tenant_id = $1 AND simplyprint_job_id = $2", p, 2, e);
    if (!st)
        return db_err_code(e);
    int rc = db_step(st, e);
    if (rc == DB_ROW)
        db_col_copy(st, 0, out, PRINT_JOB_ID_MAX + 1);
    db_finalize(st);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? F3_ENOTFOUND : rc;
}

typedef struct adopt_tx {
    print_service *s;
    const char *tenant_id;
    int64_t qid;
    const char *file_id;
    char job_id[PRINT_JOB_ID_MAX + 1];
    bool adopted;
} adopt_tx;

static int adopt_body(db_conn *c, void *ctx, err *e)
{
    adopt_tx *t = ctx;
    return print_jobs_adopt(c, t->s->bus, t->tenant_id, t->qid, t->file_id, t->job_id, &t->adopted,
                            e);
}

/* Done queue item qid as SimplyPrint still lists it; F3_ENOTFOUND when it does not. */
static int done_item(print_service *s, void *client, int64_t qid, sp_queue_item *out, err *e)
{
    sp_queue_item *items = NULL;
    size_t n = 0;
    sp_call call;
    memset(&call, 0, sizeof call);
    int rc = s->provider->queue_list(client, true, &items, &n, &call, e);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (items[i].id == qid) {
            *out = items[i];
            free(items);
            return 0;
        }
    free(items);
    return rc ? rc : err_set(e, F3_ENOTFOUND, "queue item %lld is not listed", (long long)qid);
}

/* A report about queue item qid that no job holds: the item of a submission interrupted
 * before it recorded it (a crash between queue/AddItem and its transaction). Asks
 * SimplyPrint for the item's file and gives the item to the oldest interrupted submission
 * of that file. F3_ENOTFOUND when the item is gone or no job fits. */
static int adopt_reported_item(print_service *s, const char *tenant_id, int64_t qid,
                               char job_id[PRINT_JOB_ID_MAX + 1], err *e)
{
    void *client = NULL;
    int rc = print_service_client(s, tenant_id, &client, e);
    sp_queue_item item;
    sp_call call;
    memset(&call, 0, sizeof call);
    memset(&item, 0, sizeof item);
    if (rc == 0)
        rc = s->provider->queue_get_item(client, qid, &item, &call, e);
    if (rc == F3_ENOTFOUND && s->provider->queue_list)
        rc = done_item(s, client, qid, &item, e); /* printed before the report came in */
    if (rc == 0 && !item.filesystem_id[0])
        rc = err_set(e, F3_ENOTFOUND, "queue item %lld names no file", (long long)qid);
    if (rc)
        return rc == F3_ENOTFOUND || rc == F3_EPERMANENT ? F3_ENOTFOUND : F3_ETRANSIENT;
    adopt_tx t = {.s = s, .tenant_id = tenant_id, .qid = qid, .file_id = item.filesystem_id};
    rc = print_in_tx(s, adopt_body, &t, e);
    if (rc == 0 && !t.adopted)
        return F3_ENOTFOUND;
    if (rc == 0)
        snprintf(job_id, PRINT_JOB_ID_MAX + 1, "%s", t.job_id);
    return rc;
}

/* Which of our jobs a report is about; may ask SimplyPrint (no transaction open). */
static int resolve_report(print_service *s, const char *tenant_id, print_sp_report *r,
                          char job_id[PRINT_JOB_ID_MAX + 1], err *e)
{
    db_conn *c = db_acquire(s->db, e);
    if (!c)
        return db_err_code(e);
    print_job_row row;
    int rc = F3_ENOTFOUND;
    if (r->queue_item_id > 0)
        rc = print_jobs_by_queue_item(c, tenant_id, r->queue_item_id, &row, e);
    if (rc == 0)
        snprintf(job_id, PRINT_JOB_ID_MAX + 1, "%s", row.info.id);
    if (rc == F3_ENOTFOUND && r->sp_job_id[0])
        rc = find_by_sp_job(c, tenant_id, r->sp_job_id, job_id, e);
    db_release(c);
    if (rc == F3_ENOTFOUND && r->queue_item_id > 0)
        rc = adopt_reported_item(s, tenant_id, r->queue_item_id, job_id, e);
    if (rc != F3_ENOTFOUND || !r->sp_job_uid[0] || r->queue_item_id > 0)
        return rc == F3_ENOTFOUND ? err_set(e, rc, "the report names no print job of ours") : rc;
    /* Webhook job objects may not name the queue item: ask SimplyPrint which it was. */
    void *client = NULL;
    rc = print_service_client(s, tenant_id, &client, e);
    sp_job job;
    sp_call call;
    memset(&call, 0, sizeof call);
    if (rc == 0)
        rc = s->provider->job_get(client, r->sp_job_uid, &job, &call, e);
    if (rc == 0 && job.queue_item_id > 0) {
        r->queue_item_id = job.queue_item_id;
        return resolve_report(s, tenant_id, r, job_id, e);
    }
    if (rc == 0 || rc == F3_ENOTFOUND)
        return err_set(e, F3_ENOTFOUND, "the report names no print job of ours");
    return rc == F3_EPERMANENT ? rc : F3_ETRANSIENT;
}

static void report_change(const print_sp_report *r, print_change *ch)
{
    memset(ch, 0, sizeof *ch);
    ch->to = r->status;
    ch->cause = PRINT_CAUSE_PROVIDER;
    ch->message = r->message[0] ? r->message : NULL;
    ch->reported_at = r->reported_at;
    ch->sp_job_id = r->sp_job_id[0] ? r->sp_job_id : NULL;
    ch->printer_id = r->printer_id[0] ? r->printer_id : NULL;
    ch->printer_name = r->printer_name[0] ? r->printer_name : NULL;
}

typedef struct apply_tx {
    print_service *s;
    const char *tenant_id;
    const char *job_id;
    const print_sp_report *r;
    print_change_outcome outcome;
} apply_tx;

static int apply_body(db_conn *c, void *ctx, err *e)
{
    apply_tx *t = ctx;
    print_change ch;
    report_change(t->r, &ch);
    return print_jobs_change(c, t->s->bus, t->tenant_id, t->job_id, &ch, &t->outcome, NULL, e);
}

int print_service_apply_report(print_service *s, const char *tenant_id, const print_sp_report *r,
                               print_change_outcome *outcome, err *e)
{
    print_sp_report copy = *r;
    char job_id[PRINT_JOB_ID_MAX + 1] = "";
    int rc = resolve_report(s, tenant_id, &copy, job_id, e);
    apply_tx t = {.s = s, .tenant_id = tenant_id, .job_id = job_id, .r = &copy};
    if (rc == 0)
        rc = print_in_tx(s, apply_body, &t, e);
    if (outcome)
        *outcome = t.outcome;
    return rc;
}

/* ---- the webhook route ------------------------------------------------------------------ */

typedef struct delivery_row {
    const char *tenant_id, *key, *event, *body;
    bool ignored;
    bus_store *store;
    bool stored;
} delivery_row;

static int store_delivery(db_conn *c, void *ctx, err *e)
{
    delivery_row *d = ctx;
    char id[UUID_STR_LEN], now[24];
    uuid_v7(id);
    db_ms_text(clock_now_ms(), now);
    const char *t[] = {
        id, d->tenant_id, d->key, d->event, now, d->body, d->ignored ? "IGNORED" : "RECEIVED"};
    int64_t n = 0;
    int rc = db_exec_texts(c,
                           "INSERT INTO webhook_deliveries (id, tenant_id, provider, delivery_id,"
                           " topic, shop_domain, received_at, body, status) VALUES ($1, $2,"
                           " '" PRINT_WEBHOOK_PROVIDER "', $3, $4, '" PRINT_WEBHOOK_SOURCE "',"
                           " CAST($5 AS BIGINT), $6, $7)"
                           " ON CONFLICT (tenant_id, provider, topic, delivery_id) DO NOTHING",
                           t, 7, &n, e);
    d->stored = rc == 0 && n > 0;
    if (rc || !d->stored || d->ignored)
        return rc;
    json_t *data = json_pack("{s:s,s:s}", "deliveryId", id, "tenantId", d->tenant_id);
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    if (!text)
        return err_set(e, F3_ENOMEM, "out of memory");
    bus_job_opts o = {.job_id = id};
    rc = bus_store_add(d->store, c, PRINT_WEBHOOK_QUEUE, d->event, text, &o, clock_now_ms(), NULL,
                       e);
    free(text);
    return rc;
}

/* The tenant a delivery is for: ?tenant=, else the only connected one. */
static int webhook_tenant(print_service *s, http_request *req, char out[PRINT_TENANT_MAX + 1],
                          err *e)
{
    const char *t = http_req_query_param(req, "tenant");
    if (t && *t) {
        if (strlen(t) > PRINT_TENANT_MAX)
            return err_set(e, F3_ENOTFOUND, "unknown tenant");
        snprintf(out, PRINT_TENANT_MAX + 1, "%s", t);
        return 0;
    }
    return print_conn_only_tenant(s, out, e);
}

int print_h_webhook(http_request *req, http_response *res, void *ctx)
{
    print_service *s = ctx;
    size_t len = 0;
    const char *body = http_req_body(req, &len);
    char tenant[PRINT_TENANT_MAX + 1] = "", secret[129] = "";
    err e;
    err_clear(&e);
    int rc = webhook_tenant(s, req, tenant, &e);
    if (rc == 0)
        rc = print_conn_webhook_secret(s, tenant, secret, &e);
    if (rc != 0 && rc != F3_ENOTFOUND && rc != F3_ECONFLICT) {
        log_error("SimplyPrint webhook: cannot look the tenant up", "reason", e.msg);
        return rc;
    }
    bool ok = rc == 0 && sp_webhook_verify_request(secret, req, &e) == 0;
    crypto_wipe(secret, sizeof secret);
    if (!ok) {
        log_warn("SimplyPrint webhook refused: unknown tenant or wrong secret");
        return http_res_error(res, 401, "Webhook secret missing or does not match");
    }
    sp_webhook_event ev;
    print_sp_report r;
    bool relevant = false;
    char event[64] = "";
    if (!body || strlen(body) != len)
        return http_res_error(res, 400, "Body is empty or contains a NUL byte");
    if (sp_webhook_parse(body, len, &ev, &e) != 0 ||
        print_sp_report_from_webhook(body, len, &r, &relevant, event, &e) != 0)
        return http_res_error(res, 400, "Invalid SimplyPrint webhook: %s", e.msg);
    delivery_row d = {.tenant_id = tenant,
                      .key = ev.dedupe_key,
                      .event = event,
                      .body = body,
                      .ignored = !relevant,
                      .store = s->store};
    rc = print_in_tx(s, store_delivery, &d, &e);
    if (rc) {
        log_error("SimplyPrint webhook: cannot store the delivery", "reason", e.msg);
        return rc;
    }
    log_info(d.stored ? "SimplyPrint webhook accepted" : "SimplyPrint webhook duplicate", "event",
             event, "tenantId", tenant);
    return http_res_json(res, 200, json_pack("{s:b,s:b}", "received", 1, "duplicate", !d.stored));
}

/* ---- the webhook queue ------------------------------------------------------------------ */

static int read_delivery(print_service *s, const char *id, char tenant[PRINT_TENANT_MAX + 1],
                         char **body, bool *pending, err *e)
{
    *body = NULL;
    *pending = false;
    db_conn *c = db_acquire(s->db, e);
    if (!c)
        return db_err_code(e);
    const char *p[] = {id};
    db_stmt *st = db_prepare_texts(c,
                                   "SELECT tenant_id, body, status FROM webhook_deliveries"
                                   " WHERE id = $1 AND provider = '" PRINT_WEBHOOK_PROVIDER "'",
                                   p, 1, e);
    int rc = st ? db_step(st, e) : db_err_code(e);
    if (rc == DB_ROW) {
        db_col_copy(st, 0, tenant, PRINT_TENANT_MAX + 1);
        *pending = str_eq(db_col_text(st, 2), "RECEIVED");
        *body = str_dup(db_col_text(st, 1) ? db_col_text(st, 1) : "");
        rc = *body ? 0 : err_set(e, F3_ENOMEM, "out of memory");
    } else if (rc == DB_DONE) {
        rc = F3_ENOTFOUND;
    }
    db_finalize(st);
    db_release(c);
    return rc;
}

static int mark_delivery(db_conn *tx, const char *id, const char *status, bool *claimed, err *e)
{
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *p[] = {id, now, status};
    int64_t n = 0;
    int rc = db_exec_texts(tx,
                           "UPDATE webhook_deliveries SET status = $3,"
                           " processed_at = CAST($2 AS BIGINT)"
                           " WHERE id = $1 AND status = 'RECEIVED'",
                           p, 3, &n, e);
    *claimed = rc == 0 && n == 1;
    return rc;
}

int print_webhook_job(bus_delivery *dl, void *ctx, err *e)
{
    print_service *s = ctx;
    const bus_job *job = bus_delivery_job(dl);
    json_t *data = json_loads(job->data ? job->data : "", 0, NULL);
    const char *id = json_string_value(json_object_get(data, "deliveryId"));
    char tenant[PRINT_TENANT_MAX + 1] = "", event[64], job_id[PRINT_JOB_ID_MAX + 1] = "";
    char *body = NULL;
    bool pending = false, relevant = false, claimed = false;
    print_sp_report r;
    int rc = id ? read_delivery(s, id, tenant, &body, &pending, e)
                : err_set(e, F3_EINVAL, "job data has no deliveryId");
    if (rc == F3_ENOTFOUND || (rc == 0 && !pending)) {
        rc = 0; /* gone, or handled by an earlier attempt that committed */
        goto out;
    }
    if (rc == 0 && print_sp_report_from_webhook(body, strlen(body), &r, &relevant, event, e) != 0)
        rc = F3_EINVAL;
    int found = rc == 0 && relevant ? resolve_report(s, tenant, &r, job_id, e) : F3_ENOTFOUND;
    if (rc == 0 && found != 0 && found != F3_ENOTFOUND)
        rc = found; /* SimplyPrint or the database could not say: retried */
    /* A printer can start a queue item before the submission that created it has recorded
     * its id (submit_one calls SimplyPrint outside any transaction): a report about a queue
     * item we do not know yet is retried with the queue's backoff, and only the last attempt
     * ignores it as someone else's print. */
    if (rc == 0 && found == F3_ENOTFOUND && relevant && r.queue_item_id > 0 &&
        job->attempts_made + 1 < job->max_attempts)
        rc = err_set(e, F3_ETRANSIENT, "queue item %lld is not recorded on any print job yet",
                     (long long)r.queue_item_id);
    if (rc)
        goto out;
    db_conn *tx = bus_delivery_tx(dl, e);
    if (!tx) {
        rc = db_err_code(e);
        goto out;
    }
    rc = mark_delivery(tx, id, found == 0 ? "PROCESSED" : "IGNORED", &claimed, e);
    if (rc == 0 && claimed && found == 0) {
        apply_tx t = {.s = s, .tenant_id = tenant, .job_id = job_id, .r = &r};
        rc = apply_body(tx, &t, e);
    } else if (rc == 0 && claimed && relevant) {
        log_info("SimplyPrint webhook about no print job of ours", "event", event, "tenantId",
                 tenant);
    }
out:
    free(body);
    json_decref(data);
    return rc;
}

/* ---- reconciliation ----------------------------------------------------------------------- */

/* The job history as far as one reconciliation run of one tenant has read it, newest
 * first: a page is read only when a job we wait for is not in the part read so far. */
typedef struct history {
    sp_job *jobs;
    size_t n;
    int pages_read;
    bool exhausted;   /* the last page was read, or HISTORY_PAGES_MAX were */
    int64_t oldest_s; /* the earliest start among the rows read; 0 = none known */
} history;

/* Reads the next page of the history into h. */
static int history_read_page(print_service *s, void *client, history *h, err *e)
{
    sp_jobs_query q = {.page = h->pages_read + 1, .page_size = SP_PAGE_SIZE_MAX};
    sp_job *rows = NULL;
    size_t n = 0;
    int pages = 0;
    sp_call call;
    memset(&call, 0, sizeof call);
    int rc = s->provider->jobs_list(client, &q, &rows, &n, &pages, &call, e);
    if (rc)
        return rc;
    sp_job *all = realloc(h->jobs, (h->n + n + 1) * sizeof *all);
    if (!all) {
        free(rows);
        return err_set(e, F3_ENOMEM, "out of memory");
    }
    h->jobs = all;
    for (size_t i = 0; i < n; i++) {
        h->jobs[h->n++] = rows[i];
        if (rows[i].started_s > 0 && (h->oldest_s == 0 || rows[i].started_s < h->oldest_s))
            h->oldest_s = rows[i].started_s;
    }
    free(rows);
    h->pages_read++;
    if (h->pages_read >= pages || n == 0 || h->pages_read >= HISTORY_PAGES_MAX)
        h->exhausted = true;
    return 0;
}

/* The newest history entry of queue item qid among the rows read; NULL when none. */
static const sp_job *history_find(const history *h, int64_t qid)
{
    const sp_job *best = NULL;
    for (size_t i = 0; i < h->n; i++)
        if (h->jobs[i].queue_item_id == qid && (!best || h->jobs[i].id > best->id))
            best = &h->jobs[i];
    return best;
}

/* The history entry of job's queue item into *out (NULL when the history does not show it),
 * reading older pages while it is not found, the history read so far is not older than
 * the job (no print of it can have started before it was made, give or take the clocks'
 * skew) and HISTORY_PAGES_MAX allows. A newer entry of the item would be on a page read
 * before, so the first found is the newest. */
static int history_lookup(print_service *s, void *client, history *h, const print_job_row *job,
                          const sp_job **out, err *e)
{
    int64_t since_s = job->created_at / 1000 - HISTORY_CLOCK_SKEW_S;
    *out = history_find(h, job->queue_item_id);
    while (!*out && !h->exhausted && !(h->oldest_s > 0 && h->oldest_s < since_s)) {
        int rc = history_read_page(s, client, h, e);
        if (rc)
            return rc;
        *out = history_find(h, job->queue_item_id);
    }
    return 0;
}

static bool report_from_history(const sp_job *j, print_sp_report *r)
{
    switch (j->state) {
    case SP_JOB_ONGOING:
        r->status = PRINT_JOB_PRINTING;
        break;
    case SP_JOB_DONE:
        r->status = PRINT_JOB_COMPLETED;
        break;
    case SP_JOB_FAILED:
        r->status = PRINT_JOB_FAILED;
        break;
    case SP_JOB_CANCELLED:
        r->status = PRINT_JOB_CANCELLED;
        break;
    default:
        return false;
    }
    r->queue_item_id = j->queue_item_id;
    snprintf(r->sp_job_id, sizeof r->sp_job_id, "%" PRId64, j->id);
    snprintf(r->sp_job_uid, sizeof r->sp_job_uid, "%s", j->uid);
    if (j->printer_id > 0)
        snprintf(r->printer_id, sizeof r->printer_id, "%" PRId64, j->printer_id);
    snprintf(r->printer_name, sizeof r->printer_name, "%s", j->printer_name);
    snprintf(r->message, sizeof r->message, "%s", j->reason);
    int64_t at = j->ended_s > 0 ? j->ended_s : j->started_s;
    r->reported_at = at > 0 ? at * 1000 : 0;
    return true;
}

/* What SimplyPrint says of one active job: a report to apply, or none (*has = false). */
static int ask_about(print_service *s, void *client, const print_job_row *job, history *h,
                     print_sp_report *r, bool *has, err *e)
{
    memset(r, 0, sizeof *r);
    *has = false;
    sp_queue_item item;
    sp_call call;
    memset(&call, 0, sizeof call);
    int rc = s->provider->queue_get_item(client, job->queue_item_id, &item, &call, e);
    if (rc && rc != F3_ENOTFOUND)
        return rc;
    if (rc == 0 && item.printed > 0 && item.left == 0) {
        r->status = PRINT_JOB_COMPLETED;
        r->queue_item_id = job->queue_item_id;
        *has = true;
        return 0;
    }
    /* Still waiting in the queue, or gone from it: the history says whether a printer has it
     * (ongoing) or what became of it (done, failed, cancelled). */
    const sp_job *j = NULL;
    int hrc = history_lookup(s, client, h, job, &j, e);
    if (hrc)
        return hrc;
    if (j && (rc == F3_ENOTFOUND || j->state == SP_JOB_ONGOING))
        *has = report_from_history(j, r);
    else if (rc == F3_ENOTFOUND)
        log_warn("print job's queue item vanished and is not in the job history read", "printJobId",
                 job->info.id);
    return 0;
}

static int active_jobs(print_service *s, const char *tenant_id, print_job_row **rows, size_t *n,
                       err *e)
{
    *rows = NULL;
    *n = 0;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM print_jobs WHERE tenant_id = $1 AND status IN ('QUEUED',"
             " 'ASSIGNED', 'PRINTING') AND simplyprint_queue_item_id IS NOT NULL"
             " ORDER BY updated_at, id LIMIT %d",
             print_jobs_columns, RECONCILE_JOBS_MAX);
    const char *p[] = {tenant_id};
    db_conn *c = db_acquire(s->db, e);
    if (!c)
        return db_err_code(e);
    int rc = print_jobs_select(c, sql, p, 1, rows, n, e);
    db_release(c);
    return rc;
}

static int reconcile_tenant(print_service *s, const char *tenant_id, int *applied, err *e)
{
    print_run_counts counts;
    memset(&counts, 0, sizeof counts);
    err se;
    err_clear(&se);
    if (print_submit_pending_as(s, tenant_id, NULL, PRINT_SUBMIT_SWEEP, &counts, &se) != 0)
        log_warn("reconciliation: pending print jobs not all submitted", "tenantId", tenant_id,
                 "reason", se.msg);
    print_job_row *rows = NULL;
    size_t n = 0;
    void *client = NULL;
    history h = {0};
    int rc = active_jobs(s, tenant_id, &rows, &n, e);
    if (rc == 0 && n > 0)
        rc = print_service_client(s, tenant_id, &client, e);
    for (size_t i = 0; rc == 0 && i < n && !atomic_load(&s->stopping); i++) {
        print_sp_report r;
        bool has = false;
        rc = ask_about(s, client, &rows[i], &h, &r, &has, e);
        print_change_outcome oc = PRINT_UNCHANGED;
        if (rc == 0 && has)
            rc = print_service_apply_report(s, tenant_id, &r, &oc, e);
        if (rc == 0 && oc == PRINT_CHANGED)
            (*applied)++;
    }
    free(h.jobs);
    free(rows);
    return rc == F3_ENOTFOUND ? 0 : rc;
}

int print_service_reconcile(print_service *s, int *applied, err *e)
{
    int count = 0;
    char **ids = NULL;
    size_t n = 0;
    int rc = print_conn_tenants(s, &ids, &n, e);
    int first = 0;
    for (size_t i = 0; rc == 0 && i < n && !atomic_load(&s->stopping); i++) {
        err te;
        err_clear(&te);
        int trc = reconcile_tenant(s, ids[i], &count, &te);
        if (trc) {
            log_warn("SimplyPrint reconciliation failed for a tenant", "tenantId", ids[i], "reason",
                     te.msg);
            if (!first) {
                first = trc;
                err_set(e, trc, "%s", te.msg);
            }
        }
    }
    print_conn_tenants_free(ids, n);
    if (applied)
        *applied = count;
    if (rc == 0 && count > 0) {
        char c[16];
        snprintf(c, sizeof c, "%d", count);
        log_info("SimplyPrint reconciliation applied changes", "count", c);
    }
    return rc ? rc : first;
}

int print_reconcile_job(bus_delivery *dl, void *ctx, err *e)
{
    (void)dl;
    return print_service_reconcile(ctx, NULL, e);
}
