/*
 * retry_api.c - the retry queue over HTTP (see retry.h): list the caller's tenant's entries
 * and retry a FAILED one by hand. Only reads and the manual retry; processing is retry.c's.
 */
#include "services/common/retry.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "core/uuid.h"
#include "http/request.h"
#include "http/response.h"
#include "services/access/permissions.h"
#include "services/access/user_context.h"

#include <stdlib.h>
#include <string.h>

#define RETRY_API_LIMIT_DEFAULT 20
#define RETRY_API_LIMIT_MAX     100

static const char entry_columns[] = "id, job_type, status, attempts, max_attempts, "
                                    "next_attempt_at, last_error, payload, created_at, updated_at";

static json_t *time_json(db_stmt *s, int col)
{
    char iso[CLOCK_ISO_LEN];
    clock_format_iso(db_col_int64(s, col), iso);
    return json_string(iso);
}

static json_t *entry_json(db_stmt *s)
{
    json_t *payload = NULL;
    const char *text = db_col_text(s, 7);
    if (!text || json_parse(text, strlen(text), &payload, NULL) != 0)
        payload = json_null();
    const char *last = db_col_text(s, 6);
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:o, s:o}", "id", db_col_text(s, 0),
                     "jobType", db_col_text(s, 1), "status", db_col_text(s, 2), "attempts",
                     (json_int_t)db_col_int64(s, 3), "maxAttempts", (json_int_t)db_col_int64(s, 4),
                     "nextAttemptAt", time_json(s, 5), "lastError",
                     last ? json_string(last) : json_null(), "payload", payload, "createdAt",
                     time_json(s, 8), "updatedAt", time_json(s, 9));
}

static const char *caller_tenant(http_request *req, http_response *res)
{
    const user_ctx *u = user_ctx_of(req);
    if (!u || !u->tenant_id[0]) {
        http_res_error(res, 401, "Authentication required");
        return NULL;
    }
    return u->tenant_id;
}

static int db_failed(http_response *res, const char *what, const err *e)
{
    log_error("retry api: database failure", "operation", what, "error", e->msg);
    return http_res_error(res, 503, "Database unavailable, try again");
}

/* The list's filters from the query; 0 or answers 400 and returns 1. */
typedef struct list_query {
    const char *status, *type;
    int64_t limit, offset;
} list_query;

static int int_param(http_request *req, const char *name, int64_t min, int64_t max, int64_t def,
                     int64_t *out, http_response *res)
{
    const char *v = http_req_query_param(req, name);
    *out = def;
    if (!v)
        return 0;
    if (str_to_int64(v, out) != 0 || *out < min || *out > max) {
        http_res_error(res, 400, "%s must be an integer between %lld and %lld", name,
                       (long long)min, (long long)max);
        return 1;
    }
    return 0;
}

static int read_query(http_request *req, http_response *res, list_query *q)
{
    q->status = http_req_query_param(req, "status");
    q->type = http_req_query_param(req, "type");
    if (q->status && *q->status && !retry_status_valid(q->status)) {
        http_res_error(res, 400, "status must be PENDING, PROCESSING, COMPLETED or FAILED");
        return 1;
    }
    if (q->type && *q->type && retry_type_parse(q->type) < 0) {
        http_res_error(res, 400,
                       "type must be FULFILLMENT, PRINT_JOB_CREATION, CANCELLATION or "
                       "NOTIFICATION");
        return 1;
    }
    if (q->status && !*q->status)
        q->status = NULL;
    if (q->type && !*q->type)
        q->type = NULL;
    return int_param(req, "limit", 1, RETRY_API_LIMIT_MAX, RETRY_API_LIMIT_DEFAULT, &q->limit,
                     res) ||
           int_param(req, "offset", 0, INT32_MAX, 0, &q->offset, res);
}

/* WHERE text shared by the count and the page: $1 tenant, $2 status or NULL, $3 type or NULL. */
#define LIST_WHERE                                                                                 \
    " FROM retry_queue WHERE tenant_id = $1 AND (CAST($2 AS TEXT) IS NULL OR status = $2) "        \
    "AND (CAST($3 AS TEXT) IS NULL OR job_type = $3)"

static db_stmt *list_stmt(db_conn *c, const char *sql, const char *tenant, const list_query *q,
                          err *e)
{
    db_stmt *s = db_prepare(c, sql, e);
    if (!s)
        return NULL;
    db_bind_text(s, 1, tenant);
    db_bind_text(s, 2, q->status);
    db_bind_text(s, 3, q->type);
    return s;
}

static int list_page(db_conn *c, const char *tenant, const list_query *q, json_t *data,
                     int64_t *total, err *e)
{
    db_stmt *s = list_stmt(c, "SELECT COUNT(*)" LIST_WHERE, tenant, q, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    *total = rc == DB_ROW ? db_col_int64(s, 0) : 0;
    db_finalize(s);
    if (rc < 0)
        return rc;
    buf sql;
    buf_init(&sql, 0);
    buf_printf(&sql, "SELECT %s" LIST_WHERE " ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5",
               entry_columns);
    s = list_stmt(c, buf_cstr(&sql), tenant, q, e);
    buf_free(&sql);
    if (!s)
        return db_err_code(e);
    db_bind_int64(s, 4, q->limit);
    db_bind_int64(s, 5, q->offset);
    while ((rc = db_step(s, e)) == DB_ROW) {
        json_t *row = entry_json(s);
        if (!row || json_array_append_new(data, row) != 0) {
            rc = err_set(e, F3_ENOMEM, "out of memory");
            break;
        }
    }
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

static int h_list(http_request *req, http_response *res, void *ctx)
{
    db *d = ctx;
    const char *tenant = caller_tenant(req, res);
    list_query q;
    if (!tenant || read_query(req, res, &q))
        return 0;
    err e = {0};
    json_t *data = json_array();
    int64_t total = 0;
    db_conn *c = db_acquire(d, &e);
    int rc = !data ? err_set(&e, F3_ENOMEM, "out of memory")
             : c   ? list_page(c, tenant, &q, data, &total, &e)
                   : db_err_code(&e);
    db_release(c);
    if (rc) {
        json_decref(data);
        return db_failed(res, "retry queue list", &e);
    }
    return http_res_json(res, 200,
                         json_pack("{s:o, s:I, s:I, s:I}", "data", data, "total", (json_int_t)total,
                                   "limit", (json_int_t)q.limit, "offset", (json_int_t)q.offset));
}

static int read_entry(db_conn *c, const char *tenant, const char *id, json_t **out, err *e)
{
    buf sql;
    buf_init(&sql, 0);
    buf_printf(&sql, "SELECT %s FROM retry_queue WHERE id = $1 AND tenant_id = $2", entry_columns);
    const char *args[] = {id, tenant};
    db_stmt *s = db_prepare_texts(c, buf_cstr(&sql), args, 2, e);
    buf_free(&sql);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    if (rc == DB_ROW) {
        *out = entry_json(s);
        rc = *out ? 0 : err_set(e, F3_ENOMEM, "out of memory");
    } else if (rc == DB_DONE) {
        rc = err_set(e, F3_ENOTFOUND, "Retry entry not found: %s", id);
    }
    db_finalize(s);
    return rc;
}

static int h_retry(http_request *req, http_response *res, void *ctx)
{
    db *d = ctx;
    const char *tenant = caller_tenant(req, res);
    if (!tenant)
        return 0;
    const char *id = http_req_param(req, "id");
    if (!id || !uuid_valid(id))
        return http_res_error(res, 404, "Retry entry not found: %s", id ? id : "");
    err e = {0};
    json_t *entry = NULL;
    db_conn *c = db_acquire(d, &e);
    int rc = c ? retry_manual(c, tenant, id, 0, &e) : db_err_code(&e);
    rc = rc ? rc : read_entry(c, tenant, id, &entry, &e);
    db_release(c);
    if (rc == F3_ENOTFOUND)
        return http_res_error(res, 404, "%s", e.msg);
    if (rc == F3_ECONFLICT)
        return http_res_error(res, 409, "%s", e.msg);
    if (rc)
        return db_failed(res, "retry queue manual retry", &e);
    const user_ctx *u = user_ctx_of(req);
    log_info("retry entry retried by an operator", "id", id, "tenantId", tenant, "userId",
             u ? u->user_id : NULL);
    return http_res_json(res, 200, entry);
}

int retry_api_add_routes(http_router *r, db *d, err *e)
{
    const http_route routes[] = {
        {"GET", "/api/v1/retry-queue", h_list, d, PERM_ORDERS_READ},
        {"POST", "/api/v1/retry-queue/:id/retry", h_retry, d, PERM_ORDERS_WRITE},
    };
    return http_router_add(r, routes, sizeof routes / sizeof routes[0], e);
}
