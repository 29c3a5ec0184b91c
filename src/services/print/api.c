/*
 * api.c - the print service's HTTP API:
 *   GET  /api/v1/print-jobs            ?status= &orderId= &limit= &cursor=  (newest first,
 *                                      keyset paging with an opaque cursor)
 *   GET  /api/v1/print-jobs/:id
 *   POST /api/v1/print-jobs/:id/retry  FAILED/CANCELLED -> PENDING, resubmitted
 *   POST /api/v1/print-jobs/:id/cancel
 *   POST   /internal/print-jobs?tenantId=     {orderId[, lineItemId]}: requeue the order
 *   DELETE /internal/print-jobs/:id?tenantId= cancel one job
 * Public routes take the tenant from the guard's user context, internal ones from the
 * query (the guard checked X-Internal-Key). Every query filters on the tenant; a job of
 * another tenant is a 404 like a missing one.
 */
#include "services/print/print_internal.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "services/access/user_context.h"
#include "services/common/page_cursor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_LIMIT_DEFAULT 25
#define LIST_LIMIT_MAX     100
#define ID_PARAM_MAX       64

json_t *print_job_json(const print_job_row *r)
{
    char created[CLOCK_ISO_LEN], updated[CLOCK_ISO_LEN];
    clock_format_iso(r->created_at, created);
    clock_format_iso(r->info.updated_at, updated);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:i,s:s,s:s}", "id",
                          r->info.id, "orderId", r->info.order_id, "lineItemId",
                          r->info.line_item_id, "status", print_job_status_name(r->info.status),
                          "fileId", r->file_id[0] ? r->file_id : NULL, "fileName",
                          r->file_name[0] ? r->file_name : NULL, "simplyPrintJobId",
                          r->sp_job_id[0] ? r->sp_job_id : NULL, "printerName",
                          r->printer_name[0] ? r->printer_name : NULL, "errorMessage",
                          r->info.error_message[0] ? r->info.error_message : NULL, "retryCount",
                          r->info.retry_count, "createdAt", created, "updatedAt", updated);
    if (o)
        json_object_set_new(o, "simplyPrintQueueItemId",
                            r->queue_item_id > 0 ? json_integer(r->queue_item_id) : json_null());
    return o;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static const char *user_tenant(http_request *req, http_response *res, const char **user_id)
{
    const user_ctx *u = user_ctx_of(req);
    if (!u || !u->tenant_id[0]) {
        http_res_error(res, 401, "Authentication required");
        return NULL;
    }
    if (user_id)
        *user_id = u->user_id[0] ? u->user_id : NULL;
    return u->tenant_id;
}

static const char *internal_tenant(http_request *req, http_response *res)
{
    const char *t = http_req_query_param(req, "tenantId");
    if (!t || !*t || strlen(t) > ID_PARAM_MAX) {
        http_res_error(res, 400, "tenantId: query parameter is required");
        return NULL;
    }
    return t;
}

static int db_failed(http_response *res, const char *what, const err *e)
{
    log_error("print service: database failure", "what", what, "reason", e->msg);
    return http_res_error(res, 503, "The database is unavailable; try again");
}

/* Answers an operation's error: 404, 409, 400, else 503. */
static int op_failed(http_response *res, int rc, const char *what, const err *e)
{
    switch (rc) {
    case F3_ENOTFOUND:
        return http_res_error(res, 404, "%s", e->msg);
    case F3_ECONFLICT:
        return http_res_error(res, 409, "%s", e->msg);
    case F3_EINVAL:
        return http_res_error(res, 400, "%s", e->msg);
    default:
        return db_failed(res, what, e);
    }
}

static int answer_job(print_service *s, http_response *res, const char *tenant, const char *id)
{
    err e;
    err_clear(&e);
    db_conn *c = db_acquire(s->db, &e);
    if (!c)
        return db_failed(res, "acquire", &e);
    print_job_row r;
    int rc = print_jobs_load(c, tenant, id, &r, &e);
    db_release(c);
    if (rc == F3_ENOTFOUND)
        return http_res_error(res, 404, "Print job not found: %.64s", id);
    if (rc)
        return db_failed(res, "print job", &e);
    return http_res_json(res, 200, print_job_json(&r));
}

/* ---- list --------------------------------------------------------------------------------- */

typedef struct list_query {
    const char *tenant, *status, *order_id, *cursor_id;
    int64_t cursor_at, limit;
    bool has_cursor;
} list_query;

static int parse_list(http_request *req, list_query *q, err *e)
{
    q->status = http_req_query_param(req, "status");
    if (q->status && print_job_status_parse(q->status) < 0)
        return err_set(e, F3_EINVAL,
                       "status: must be one of PENDING, QUEUED, ASSIGNED, "
                       "PRINTING, COMPLETED, FAILED, CANCELLED");
    q->order_id = http_req_query_param(req, "orderId");
    if (q->order_id && (!*q->order_id || strlen(q->order_id) > ID_PARAM_MAX))
        return err_set(e, F3_EINVAL, "orderId: must be an order id");
    const char *limit = http_req_query_param(req, "limit");
    q->limit = LIST_LIMIT_DEFAULT;
    if (limit && (str_to_int64(limit, &q->limit) != 0 || q->limit < 1 || q->limit > LIST_LIMIT_MAX))
        return err_set(e, F3_EINVAL, "limit: must be a number from 1 to %d", LIST_LIMIT_MAX);
    return 0;
}

static int run_list(db_conn *c, const list_query *q, char cursor_id[ID_PARAM_MAX + 1], json_t *data,
                    buf *next, err *e)
{
    char sql[1024], lim[24], at[24];
    snprintf(lim, sizeof lim, "%" PRId64, q->limit + 1);
    db_ms_text(q->cursor_at, at);
    snprintf(sql, sizeof sql,
             "SELECT %s FROM print_jobs WHERE tenant_id = $1"
             " AND (CAST($2 AS TEXT) IS NULL OR status = CAST($2 AS TEXT))"
             " AND (CAST($3 AS TEXT) IS NULL OR order_id = CAST($3 AS TEXT))"
             " AND (CAST($4 AS TEXT) IS NULL OR created_at < CAST($5 AS BIGINT)"
             " OR (created_at = CAST($5 AS BIGINT) AND id < CAST($4 AS TEXT)))"
             " ORDER BY created_at DESC, id DESC LIMIT CAST($6 AS BIGINT)",
             print_jobs_columns);
    const char *p[] = {q->tenant, q->status, q->order_id, q->has_cursor ? cursor_id : NULL,
                       at,        lim};
    db_stmt *st = db_prepare_texts(c, sql, p, 6, e);
    if (!st)
        return db_err_code(e);
    int rc;
    int64_t rows = 0;
    print_job_row last;
    memset(&last, 0, sizeof last);
    while ((rc = db_step(st, e)) == DB_ROW) {
        print_job_row r;
        print_jobs_read_row(st, &r);
        if (++rows > q->limit)
            break;
        json_array_append_new(data, print_job_json(&r));
        last = r;
    }
    db_finalize(st);
    if (rc < 0)
        return rc;
    if (rows > q->limit && page_cursor_encode(last.created_at, last.info.id, next) != 0)
        return err_set(e, F3_ENOMEM, "out of memory");
    return 0;
}

int print_h_jobs_list(http_request *req, http_response *res, void *ctx)
{
    print_service *s = ctx;
    list_query q = {0};
    if (!(q.tenant = user_tenant(req, res, NULL)))
        return 0;
    err e;
    err_clear(&e);
    char cursor_id[ID_PARAM_MAX + 1] = "";
    const char *cursor = http_req_query_param(req, "cursor");
    if (parse_list(req, &q, &e) != 0 ||
        (cursor && page_cursor_decode(cursor, &q.cursor_at, cursor_id, sizeof cursor_id, &e) != 0))
        return http_res_error(res, 400, "%s", e.msg);
    q.has_cursor = cursor != NULL;
    db_conn *c = db_acquire(s->db, &e);
    if (!c)
        return db_failed(res, "acquire", &e);
    json_t *data = json_array();
    buf next;
    buf_init(&next, 0);
    int rc = data ? run_list(c, &q, cursor_id, data, &next, &e)
                  : err_set(&e, F3_ENOMEM, "out of memory");
    db_release(c);
    if (rc) {
        json_decref(data);
        buf_free(&next);
        return db_failed(res, "print job list", &e);
    }
    json_t *body =
        json_pack("{s:o,s:s?}", "data", data, "nextCursor", next.len ? buf_cstr(&next) : NULL);
    buf_free(&next);
    return http_res_json(res, 200, body);
}

int print_h_job_get(http_request *req, http_response *res, void *ctx)
{
    const char *tenant = user_tenant(req, res, NULL);
    return tenant ? answer_job(ctx, res, tenant, http_req_param(req, "id")) : 0;
}

int print_h_job_retry(http_request *req, http_response *res, void *ctx)
{
    print_service *s = ctx;
    const char *user = NULL;
    const char *tenant = user_tenant(req, res, &user);
    if (!tenant)
        return 0;
    err e;
    err_clear(&e);
    print_job_row after;
    int rc = print_service_retry(s, tenant, http_req_param(req, "id"), user, &after, &e);
    return rc ? op_failed(res, rc, "retry", &e) : http_res_json(res, 200, print_job_json(&after));
}

int print_h_job_cancel(http_request *req, http_response *res, void *ctx)
{
    print_service *s = ctx;
    const char *user = NULL;
    const char *tenant = user_tenant(req, res, &user);
    if (!tenant)
        return 0;
    err e;
    err_clear(&e);
    print_job_row after;
    int rc = print_service_cancel(s, tenant, http_req_param(req, "id"), user, &after, &e);
    return rc ? op_failed(res, rc, "cancel", &e) : http_res_json(res, 200, print_job_json(&after));
}

/* ---- internal ------------------------------------------------------------------------------ */

static const char *id_field(const json_t *body, const char *name, bool required, err *e)
{
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v)) {
        if (required)
            err_set(e, F3_EINVAL, "%s: is required", name);
        return NULL;
    }
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) != json_string_length(v) || strlen(s) > ID_PARAM_MAX) {
        err_set(e, F3_EINVAL, "%s: must be an id", name);
        return NULL;
    }
    return s;
}

int print_h_internal_create(http_request *req, http_response *res, void *ctx)
{
    print_service *s = ctx;
    const char *tenant = internal_tenant(req, res);
    if (!tenant)
        return 0;
    json_t *body = NULL;
    int rc = http_req_json(req, &body, res);
    if (rc)
        return rc == F3_EINVAL ? 0 : rc;
    err e;
    err_clear(&e);
    const char *order_id = json_is_object(body) ? id_field(body, "orderId", true, &e) : NULL;
    const char *line_item_id = order_id ? id_field(body, "lineItemId", false, &e) : NULL;
    print_run_counts n;
    memset(&n, 0, sizeof n);
    if (!json_is_object(body))
        rc = http_res_error(res, 400, "body: must be a JSON object");
    else if (!order_id || e.code)
        rc = http_res_error(res, 400, "%s", e.msg);
    else if ((rc = print_service_requeue(s, tenant, order_id, line_item_id, &n, &e)) != 0 &&
             rc != F3_ETRANSIENT)
        rc = op_failed(res, rc, "requeue", &e);
    else
        rc = http_res_json(res, rc ? 202 : 201,
                           json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:i}", "orderId", order_id,
                                     "created", n.created.created, "existing", n.created.existing,
                                     "unmapped", n.created.unmapped, "submitted", n.submitted,
                                     "failed", n.failed, "deferred", n.deferred));
    json_decref(body);
    return rc;
}

int print_h_internal_delete(http_request *req, http_response *res, void *ctx)
{
    print_service *s = ctx;
    const char *tenant = internal_tenant(req, res);
    if (!tenant)
        return 0;
    err e;
    err_clear(&e);
    print_job_row after;
    int rc = print_service_cancel(s, tenant, http_req_param(req, "id"), NULL, &after, &e);
    return rc ? op_failed(res, rc, "cancel", &e) : http_res_json(res, 200, print_job_json(&after));
}
