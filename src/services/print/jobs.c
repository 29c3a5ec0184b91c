/*
 * jobs.c - creating print jobs and changing their status (see jobs.h). Every write here
 * runs in the caller's transaction together with its event-log entry and events; nothing
 * here calls SimplyPrint.
 */
#include "services/print/jobs.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/uuid.h"
#include "services/common/eventlog.h"
#include "services/print/alert.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* More copies than this for one line item is a data error, not an order to print. */
#define PRINT_QUEUE_ITEM_LOCK        "1886547572" /* advisory lock class of queue items ("prnt") */
#define PRINT_JOBS_PER_LINE_ITEM_MAX 2000

const char print_jobs_columns[] =
    "id, order_id, line_item_id, status, error_message, retry_count, updated_at,"
    " simplyprint_queue_item_id, simplyprint_job_id, file_id, file_name, queue_group_id,"
    " printer_name, provider_reported_at, created_at, submit_lease_until";

int print_jobs_select(db_conn *c, const char *sql, const char *const *texts, int n,
                      print_job_row **rows, size_t *count, err *e)
{
    *rows = NULL;
    *count = 0;
    db_stmt *st = db_prepare_texts(c, sql, texts, n, e);
    int rc = st ? 0 : db_err_code(e);
    size_t cap = 0;
    while (rc == 0 && (rc = db_step(st, e)) == DB_ROW) {
        rc = 0;
        if (*count == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            print_job_row *r = realloc(*rows, ncap * sizeof *r);
            if (!r) {
                rc = err_set(e, F3_ENOMEM, "out of memory");
                break;
            }
            *rows = r;
            cap = ncap;
        }
        print_jobs_read_row(st, &(*rows)[(*count)++]);
    }
    db_finalize(st);
    if (rc < 0) {
        free(*rows);
        *rows = NULL;
        *count = 0;
        return rc;
    }
    return 0;
}

void print_jobs_read_row(db_stmt *s, print_job_row *out)
{
    memset(out, 0, sizeof *out);
    db_col_copy(s, 0, out->info.id, sizeof out->info.id);
    db_col_copy(s, 1, out->info.order_id, sizeof out->info.order_id);
    db_col_copy(s, 2, out->info.line_item_id, sizeof out->info.line_item_id);
    int st = print_job_status_parse(db_col_text(s, 3));
    out->info.status = st < 0 ? PRINT_JOB_PENDING : (print_job_status)st;
    db_col_copy(s, 4, out->info.error_message, sizeof out->info.error_message);
    out->info.retry_count = (int)db_col_int64(s, 5);
    out->info.updated_at = db_col_int64(s, 6);
    const char *q = db_col_text(s, 7);
    out->queue_item_id = q ? strtoll(q, NULL, 10) : 0;
    db_col_copy(s, 8, out->sp_job_id, sizeof out->sp_job_id);
    db_col_copy(s, 9, out->file_id, sizeof out->file_id);
    db_col_copy(s, 10, out->file_name, sizeof out->file_name);
    db_col_copy(s, 11, out->queue_group_id, sizeof out->queue_group_id);
    db_col_copy(s, 12, out->printer_name, sizeof out->printer_name);
    out->provider_reported_at = db_col_int64(s, 13);
    out->created_at = db_col_int64(s, 14);
    out->submit_lease_until = db_col_int64(s, 15);
}

static int load_where(db_conn *c, const char *where, const char *tenant_id, const char *key,
                      print_job_row *out, err *e)
{
    memset(out, 0, sizeof *out);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM print_jobs WHERE tenant_id = $1 AND %s",
             print_jobs_columns, where);
    const char *p[] = {tenant_id, key};
    db_stmt *s = db_prepare_texts(c, sql, p, 2, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    if (rc == DB_ROW)
        print_jobs_read_row(s, out);
    db_finalize(s);
    if (rc == DB_DONE)
        return err_set(e, F3_ENOTFOUND, "Print job not found: %s", key);
    return rc < 0 ? rc : 0;
}

int print_jobs_load(db_conn *c, const char *tenant_id, const char *job_id, print_job_row *out,
                    err *e)
{
    return load_where(c, "id = $2", tenant_id, job_id, out, e);
}

int print_jobs_by_queue_item(db_conn *c, const char *tenant_id, int64_t qid, print_job_row *out,
                             err *e)
{
    char key[24];
    snprintf(key, sizeof key, "%" PRId64, qid);
    return load_where(c, "simplyprint_queue_item_id = $2", tenant_id, key, out, e);
}

/* Serialises the transactions that may record queue item qid on a job: PostgreSQL
 * (READ COMMITTED) would let two of them each see it unheld; this transaction-scoped
 * advisory lock makes the second wait and then read the first's row. SQLite runs one
 * writing transaction at a time (BEGIN IMMEDIATE) already. Outside a transaction it is
 * released at once, harmlessly. */
static int lock_queue_item(db_conn *c, int64_t qid, err *e)
{
    if (strcmp(db_backend(db_conn_db(c)), "postgres") != 0)
        return 0;
    char key[24];
    snprintf(key, sizeof key, "%" PRId64, qid % 2147483647);
    const char *p[] = {key};
    db_stmt *st = db_prepare_texts(
        c, "SELECT pg_advisory_xact_lock(" PRINT_QUEUE_ITEM_LOCK ", CAST($1 AS INTEGER))", p, 1, e);
    int rc = st ? db_step(st, e) : db_err_code(e);
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

int print_jobs_queue_item_held(db_conn *c, const char *tenant_id, int64_t qid,
                               const char *except_job_id, bool *held, err *e)
{
    *held = false;
    int lrc = lock_queue_item(c, qid, e);
    if (lrc)
        return lrc;
    char key[24];
    snprintf(key, sizeof key, "%" PRId64, qid);
    const char *p[] = {tenant_id, key, except_job_id ? except_job_id : ""};
    db_stmt *st = db_prepare_texts(c,
                                   "SELECT id FROM print_jobs WHERE tenant_id = $1 AND"
                                   " simplyprint_queue_item_id = $2 AND id <> $3 LIMIT 1",
                                   p, 3, e);
    if (!st)
        return db_err_code(e);
    int rc = db_step(st, e);
    db_finalize(st);
    *held = rc == DB_ROW;
    return rc < 0 ? rc : 0;
}

/* The oldest interrupted submission of file_id into job_id ("" when none). */
static int interrupted_of_file(db_conn *tx, const char *tenant_id, const char *file_id,
                               char job_id[PRINT_JOB_ID_MAX + 1], err *e)
{
    job_id[0] = '\0';
    const char *p[] = {tenant_id, file_id};
    db_stmt *st = db_prepare_texts(tx,
                                   "SELECT id FROM print_jobs WHERE tenant_id = $1 AND"
                                   " status = 'PENDING' AND simplyprint_queue_item_id IS NULL AND"
                                   " submit_lease_until IS NOT NULL AND file_id = $2"
                                   " ORDER BY submit_lease_until, created_at, id LIMIT 1",
                                   p, 2, e);
    if (!st)
        return db_err_code(e);
    int rc = db_step(st, e);
    if (rc == DB_ROW)
        db_col_copy(st, 0, job_id, PRINT_JOB_ID_MAX + 1);
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

int print_jobs_adopt(db_conn *tx, bus *b, const char *tenant_id, int64_t qid, const char *file_id,
                     char job_id[PRINT_JOB_ID_MAX + 1], bool *adopted, err *e)
{
    *adopted = false;
    job_id[0] = '\0';
    bool held = false;
    int rc = qid > 0 && file_id && *file_id
                 ? print_jobs_queue_item_held(tx, tenant_id, qid, NULL, &held, e)
                 : err_set(e, F3_EINVAL, "adopting needs a queue item id and a file id");
    if (rc == 0 && !held)
        rc = interrupted_of_file(tx, tenant_id, file_id, job_id, e);
    if (rc || held || !job_id[0]) {
        job_id[0] = '\0';
        return rc;
    }
    print_change ch = {.to = PRINT_JOB_QUEUED, .cause = PRINT_CAUSE_SUBMIT, .queue_item_id = qid};
    print_change_outcome oc = PRINT_NOT_ALLOWED;
    rc = print_jobs_change(tx, b, tenant_id, job_id, &ch, &oc, NULL, e);
    *adopted = rc == 0 && oc == PRINT_CHANGED;
    if (rc == 0 && *adopted) {
        char q[24];
        snprintf(q, sizeof q, "%" PRId64, qid);
        log_info("queue item of an interrupted submission adopted", "printJobId", job_id,
                 "queueItemId", q);
    } else {
        job_id[0] = '\0';
    }
    return rc;
}

/* ---- creation --------------------------------------------------------------------------- */

static int log_unmapped(db_conn *tx, const char *tenant_id, const char *order_id,
                        const orders_client_line_item *li, const char *why, err *e)
{
    char msg[400];
    snprintf(msg, sizeof msg, "No print job for line item (SKU %.200s): %s",
             li->sku[0] ? li->sku : "none", why);
    json_t *meta =
        json_pack("{s:s,s:s,s:i}", "lineItemId", li->id, "sku", li->sku, "quantity", li->quantity);
    eventlog_entry en = {.tenant_id = tenant_id,
                         .event_type = PRINT_LOG_UNMAPPED,
                         .severity = EVENTLOG_WARNING,
                         .message = msg,
                         .order_id = order_id,
                         .line_item_id = li->id,
                         .metadata = meta};
    int rc = meta ? eventlog_write(tx, &en, NULL, e) : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(meta);
    return rc;
}

static int log_created(db_conn *tx, const char *tenant_id, const char *order_id,
                       const char *line_item_id, const char *job_id, const orders_client_part *p,
                       int unit, int copy, err *e)
{
    char msg[400];
    snprintf(msg, sizeof msg, "Print job created for part %d (%.200s), unit %d, copy %d",
             p->part_number, p->file_name[0] ? p->file_name : p->file_id, unit + 1, copy + 1);
    json_t *meta =
        json_pack("{s:s,s:s,s:i,s:i,s:i}", "assemblyPartId", p->part_id, "fileId", p->file_id,
                  "partNumber", p->part_number, "unitIndex", unit, "copyIndex", copy);
    eventlog_entry en = {.tenant_id = tenant_id,
                         .event_type = PRINT_LOG_CREATED,
                         .severity = EVENTLOG_INFO,
                         .message = msg,
                         .order_id = order_id,
                         .line_item_id = line_item_id,
                         .print_job_id = job_id,
                         .metadata = meta};
    int rc = meta ? eventlog_write(tx, &en, NULL, e) : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(meta);
    return rc;
}

static int insert_job(db_stmt *ins, db_conn *tx, const char *tenant_id, const char *order_id,
                      const char *line_item_id, const orders_client_part *p, int unit, int copy,
                      print_jobs_created *acc, err *e)
{
    char id[UUID_STR_LEN];
    uuid_v7(id);
    int64_t now = clock_now_ms();
    db_reset(ins);
    db_bind_text(ins, 1, id);
    db_bind_text(ins, 2, tenant_id);
    db_bind_text(ins, 3, order_id);
    db_bind_text(ins, 4, line_item_id);
    db_bind_text(ins, 5, p->part_id);
    db_bind_int64(ins, 6, unit);
    db_bind_int64(ins, 7, copy);
    db_bind_text(ins, 8, p->file_id);
    db_bind_text(ins, 9, p->file_name[0] ? p->file_name : NULL);
    db_bind_text(ins, 10, p->queue_group_id[0] ? p->queue_group_id : NULL);
    db_bind_int64(ins, 11, now);
    int rc = db_step(ins, e);
    if (rc < 0)
        return rc;
    if (db_changes(ins) == 0) {
        acc->existing++;
        return 0;
    }
    acc->created++;
    return log_created(tx, tenant_id, order_id, line_item_id, id, p, unit, copy, e);
}

static int create_line_item(db_conn *tx, db_stmt *ins, const char *tenant_id, const char *order_id,
                            const orders_client_line_item *li, print_jobs_created *acc, err *e)
{
    if (!li->sku[0]) {
        acc->unmapped++;
        return log_unmapped(tx, tenant_id, order_id, li, "the line item has no SKU", e);
    }
    orders_client_part *parts = NULL;
    size_t n = 0;
    int rc = orders_client_sku_parts(tx, tenant_id, li->sku, &parts, &n, e);
    if (rc)
        return rc;
    int64_t copies = 0;
    for (size_t i = 0; i < n; i++)
        copies += (int64_t)li->quantity * parts[i].quantity_per_unit;
    if (n == 0) {
        acc->unmapped++;
        rc = log_unmapped(tx, tenant_id, order_id, li,
                          "no active product mapping with a print file", e);
    } else if (li->quantity < 1 || copies > PRINT_JOBS_PER_LINE_ITEM_MAX) {
        acc->unmapped++;
        rc = log_unmapped(tx, tenant_id, order_id, li,
                          "the quantity times the copies per unit is out of range", e);
    }
    for (int unit = 0; rc == 0 && copies <= PRINT_JOBS_PER_LINE_ITEM_MAX && unit < li->quantity;
         unit++)
        for (size_t i = 0; rc == 0 && i < n; i++)
            for (int copy = 0; rc == 0 && copy < parts[i].quantity_per_unit; copy++)
                rc =
                    insert_job(ins, tx, tenant_id, order_id, li->id, &parts[i], unit, copy, acc, e);
    free(parts);
    return rc;
}

int print_jobs_create(db_conn *tx, const char *tenant_id, const char *order_id,
                      const orders_client_line_item *items, size_t n, print_jobs_created *acc,
                      err *e)
{
    db_stmt *ins = db_prepare(
        tx,
        "INSERT INTO print_jobs (id, tenant_id, order_id, line_item_id, assembly_part_id,"
        " part_key, unit_index, copy_index, status, file_id, file_name, queue_group_id,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5, $6, $7, 'PENDING', $8, $9,"
        " $10, $11, $11) ON CONFLICT (tenant_id, line_item_id, part_key, unit_index, copy_index)"
        " DO NOTHING",
        e);
    if (!ins)
        return db_err_code(e);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = create_line_item(tx, ins, tenant_id, order_id, &items[i], acc, e);
    db_finalize(ins);
    return rc;
}

/* ---- status changes --------------------------------------------------------------------- */

static eventlog_severity change_severity(print_job_status to)
{
    return to == PRINT_JOB_FAILED      ? EVENTLOG_ERROR
           : to == PRINT_JOB_CANCELLED ? EVENTLOG_WARNING
                                       : EVENTLOG_INFO;
}

static int update_row(db_conn *tx, const char *tenant_id, const print_job_row *row,
                      const print_change *ch, bool retry, err *e)
{
    db_stmt *s = db_prepare(
        tx,
        "UPDATE print_jobs SET status = $3, updated_at = CAST($4 AS BIGINT),"
        " error_message = CASE WHEN CAST($5 AS BIGINT) = 1 THEN NULL"
        " WHEN CAST($6 AS TEXT) IS NOT NULL THEN CAST($6 AS TEXT)"
        " ELSE error_message END,"
        " retry_count = retry_count + CAST($7 AS INTEGER),"
        " simplyprint_queue_item_id = CASE WHEN $3 = 'PENDING' THEN NULL"
        " WHEN CAST($8 AS TEXT) IS NOT NULL THEN CAST($8 AS TEXT) ELSE simplyprint_queue_item_id "
        "END,"
        " simplyprint_job_id = CASE WHEN $3 = 'PENDING' THEN NULL"
        " WHEN CAST($9 AS TEXT) IS NOT NULL THEN CAST($9 AS TEXT) ELSE simplyprint_job_id END,"
        " printer_id = COALESCE(CAST($10 AS TEXT), printer_id),"
        " printer_name = COALESCE(CAST($11 AS TEXT), printer_name),"
        " started_at = CASE WHEN $3 = 'PRINTING' AND started_at IS NULL"
        " THEN CAST($4 AS BIGINT) ELSE started_at END,"
        " completed_at = CASE WHEN $3 = 'COMPLETED' THEN CAST($4 AS BIGINT)"
        " ELSE completed_at END,"
        " provider_reported_at = CASE WHEN CAST($12 AS BIGINT) > 0 THEN CAST($12 AS BIGINT)"
        " ELSE provider_reported_at END,"
        " submit_lease_until = NULL"
        " WHERE tenant_id = $1 AND id = $2 AND status = $13",
        e);
    if (!s)
        return db_err_code(e);
    char qid[24] = "";
    if (ch->queue_item_id > 0)
        snprintf(qid, sizeof qid, "%" PRId64, ch->queue_item_id);
    bool clear = ch->to == PRINT_JOB_PENDING && !ch->keep_message_on_clear;
    db_bind_text(s, 1, tenant_id);
    db_bind_text(s, 2, row->info.id);
    db_bind_text(s, 3, print_job_status_name(ch->to));
    db_bind_int64(s, 4, clock_now_ms());
    db_bind_int64(s, 5, clear ? 1 : 0);
    db_bind_text(s, 6, ch->message);
    db_bind_int64(s, 7, retry ? 1 : 0);
    db_bind_text(s, 8, qid[0] ? qid : NULL);
    db_bind_text(s, 9, ch->sp_job_id);
    db_bind_text(s, 10, ch->printer_id);
    db_bind_text(s, 11, ch->printer_name);
    db_bind_int64(s, 12, ch->reported_at);
    db_bind_text(s, 13, print_job_status_name(row->info.status));
    int rc = db_step(s, e);
    int64_t n = rc < 0 ? 0 : db_changes(s);
    db_finalize(s);
    if (rc < 0)
        return rc;
    return n == 1 ? 0 : err_set(e, F3_EBUSY, "print job %s changed concurrently", row->info.id);
}

static int log_change(db_conn *tx, const char *tenant_id, const print_job_row *row,
                      const print_change *ch, err *e)
{
    const char *from = print_job_status_name(row->info.status);
    const char *to = print_job_status_name(ch->to);
    char msg[700];
    snprintf(msg, sizeof msg, "Print job %s -> %s%s%.500s", from, to, ch->message ? ": " : "",
             ch->message ? ch->message : "");
    json_t *meta = json_pack("{s:s,s:s,s:s}", "previousStatus", from, "newStatus", to, "cause",
                             print_cause_name(ch->cause));
    if (meta && ch->queue_item_id > 0)
        json_object_set_new(meta, "queueItemId", json_integer(ch->queue_item_id));
    if (meta && ch->sp_job_id)
        json_object_set_new(meta, "simplyPrintJobId", json_string(ch->sp_job_id));
    eventlog_entry en = {.tenant_id = tenant_id,
                         .event_type = PRINT_LOG_STATUS_CHANGED,
                         .severity = change_severity(ch->to),
                         .message = msg,
                         .order_id = row->info.order_id,
                         .line_item_id = row->info.line_item_id,
                         .print_job_id = row->info.id,
                         .user_id = ch->user_id,
                         .metadata = meta};
    int rc = meta ? eventlog_write(tx, &en, NULL, e) : err_set(e, F3_ENOMEM, "out of memory");
    if (rc == 0 && ch->to == PRINT_JOB_FAILED) {
        char alert[700];
        snprintf(alert, sizeof alert, "Print job failed: %.600s",
                 ch->message ? ch->message : "no reason given");
        rc = print_alert(tx, tenant_id, alert, row->info.order_id, row->info.id, meta, e);
    }
    json_decref(meta);
    return rc;
}

static int publish_change(db_conn *tx, bus *b, const char *tenant_id, const print_job_row *row,
                          const print_change *ch, err *e)
{
    json_t *f = json_pack("{s:s,s:s,s:s,s:s,s:s}", "printJobId", row->info.id, "orderId",
                          row->info.order_id, "lineItemId", row->info.line_item_id,
                          "previousStatus", print_job_status_name(row->info.status), "newStatus",
                          print_job_status_name(ch->to));
    if (!f)
        return err_set(e, F3_ENOMEM, "out of memory");
    int rc = bus_publish(b, tx, BUS_EV_PRINT_JOB_STATUS_CHANGED, tenant_id, f, e);
    json_object_del(f, "previousStatus");
    json_object_del(f, "newStatus");
    const char *outcome = ch->to == PRINT_JOB_COMPLETED   ? BUS_EV_PRINT_JOB_COMPLETED
                          : ch->to == PRINT_JOB_FAILED    ? BUS_EV_PRINT_JOB_FAILED
                          : ch->to == PRINT_JOB_CANCELLED ? BUS_EV_PRINT_JOB_CANCELLED
                                                          : NULL;
    if (rc == 0 && ch->to == PRINT_JOB_FAILED)
        json_object_set_new(
            f, "errorMessage",
            json_string(ch->message && *ch->message ? ch->message : "Print job failed"));
    if (rc == 0 && outcome)
        rc = bus_publish(b, tx, outcome, tenant_id, f, e);
    json_decref(f);
    return rc;
}

int print_jobs_change(db_conn *tx, bus *b, const char *tenant_id, const char *job_id,
                      const print_change *ch, print_change_outcome *outcome, print_job_row *before,
                      err *e)
{
    print_job_row row;
    *outcome = PRINT_NOT_ALLOWED;
    int rc = print_jobs_load(tx, tenant_id, job_id, &row, e);
    if (rc)
        return rc;
    if (before)
        *before = row;
    if (ch->reported_at > 0 && row.provider_reported_at > ch->reported_at) {
        *outcome = PRINT_STALE;
        log_info("stale print job report ignored", "printJobId", job_id, "status",
                 print_job_status_name(ch->to));
        return 0;
    }
    print_verdict v = print_transition(row.info.status, ch->to, ch->cause);
    if (v != PRINT_MOVE) {
        *outcome = v == PRINT_SAME ? PRINT_UNCHANGED : PRINT_NOT_ALLOWED;
        if (v == PRINT_REFUSED)
            log_info("print job transition refused", "printJobId", job_id, "from",
                     print_job_status_name(row.info.status), "to", print_job_status_name(ch->to),
                     "cause", print_cause_name(ch->cause));
        return 0;
    }
    bool retry = ch->to == PRINT_JOB_PENDING && print_job_status_is_terminal(row.info.status);
    rc = update_row(tx, tenant_id, &row, ch, retry, e);
    rc = rc ? rc : log_change(tx, tenant_id, &row, ch, e);
    rc = rc ? rc : publish_change(tx, b, tenant_id, &row, ch, e);
    if (rc == 0) {
        *outcome = PRINT_CHANGED;
        log_info("print job status changed", "printJobId", job_id, "from",
                 print_job_status_name(row.info.status), "to", print_job_status_name(ch->to));
    }
    return rc;
}
