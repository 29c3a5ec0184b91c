/*
 * client.c - the print service's read calls for other services and its status names
 * (see client.h). Reads only; every change of a print job is made by the print service.
 */
#include "services/print/client.h"

#include <stdio.h>
#include <string.h>

static const char *const status_names[PRINT_JOB_STATUS_COUNT] = {
    "PENDING", "QUEUED", "ASSIGNED", "PRINTING", "COMPLETED", "FAILED", "CANCELLED",
};

const char *print_job_status_name(print_job_status s)
{
    return (unsigned)s < PRINT_JOB_STATUS_COUNT ? status_names[s] : "UNKNOWN";
}

int print_job_status_parse(const char *name)
{
    for (int i = 0; name && i < PRINT_JOB_STATUS_COUNT; i++)
        if (strcmp(name, status_names[i]) == 0)
            return i;
    return -1;
}

bool print_job_status_is_terminal(print_job_status s)
{
    return s == PRINT_JOB_COMPLETED || s == PRINT_JOB_FAILED || s == PRINT_JOB_CANCELLED;
}

int print_client_order_tally(db_conn *c, const char *tenant_id, const char *order_id,
                             print_job_tally *out, err *e)
{
    memset(out, 0, sizeof *out);
    const char *p[] = {tenant_id, order_id};
    db_stmt *s = db_prepare_texts(c,
                                  "SELECT status, COUNT(*) FROM print_jobs"
                                  " WHERE tenant_id = $1 AND order_id = $2 GROUP BY status",
                                  p, 2, e);
    if (!s)
        return db_err_code(e);
    int rc;
    while ((rc = db_step(s, e)) == DB_ROW) {
        int st = print_job_status_parse(db_col_text(s, 0));
        int count = (int)db_col_int64(s, 1);
        if (st < 0) {
            rc = err_set(e, F3_EINVAL, "print job with unknown status for order %s", order_id);
            break;
        }
        out->n[st] += count;
        out->total += count;
    }
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

int print_client_job_get(db_conn *c, const char *tenant_id, const char *job_id, print_job_info *out,
                         err *e)
{
    memset(out, 0, sizeof *out);
    const char *p[] = {tenant_id, job_id};
    db_stmt *s = db_prepare_texts(c,
                                  "SELECT id, order_id, line_item_id, status, error_message,"
                                  " retry_count, updated_at FROM print_jobs"
                                  " WHERE tenant_id = $1 AND id = $2",
                                  p, 2, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    if (rc == DB_DONE)
        rc = err_set(e, F3_ENOTFOUND, "print job %s not found", job_id);
    if (rc == DB_ROW) {
        db_col_copy(s, 0, out->id, sizeof out->id);
        db_col_copy(s, 1, out->order_id, sizeof out->order_id);
        db_col_copy(s, 2, out->line_item_id, sizeof out->line_item_id);
        int st = print_job_status_parse(db_col_text(s, 3));
        db_col_copy(s, 4, out->error_message, sizeof out->error_message);
        out->retry_count = (int)db_col_int64(s, 5);
        out->updated_at = db_col_int64(s, 6);
        out->status = st < 0 ? PRINT_JOB_PENDING : (print_job_status)st;
        rc = st < 0 ? err_set(e, F3_EINVAL, "print job %s has an unknown status", job_id) : 0;
    }
    db_finalize(s);
    return rc;
}
