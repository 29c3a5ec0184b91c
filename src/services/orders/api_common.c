/*
 * api_common.c - the helpers of api_internal.h: parameterised SQL assembly, query
 * parameters, opaque cursors and JSON values from columns, for the orders HTTP API.
 *
 * No business rule lives here, and nothing here answers a request except the two
 * error helpers (401 without a user context, 503 on a database failure).
 */
#include "services/orders/api_internal.h"

#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/str.h"
#include "services/access/user_context.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define CURSOR_TEXT_MAX 1024

/* ---- dynamic SQL ------------------------------------------------------------------------ */

void orders_api_query_init(orders_api_query *q)
{
    memset(q, 0, sizeof *q);
    buf_init(&q->sql, 0);
}

void orders_api_query_free(orders_api_query *q)
{
    buf_free(&q->sql);
}

static int add_param(orders_api_query *q, bool is_int, const char *text, int64_t i)
{
    if (q->n >= ORDERS_API_PARAMS_MAX) {
        q->overflow = true;
        return 0;
    }
    q->p[q->n].is_int = is_int;
    q->p[q->n].text = text;
    q->p[q->n].i = i;
    return ++q->n;
}

int orders_api_query_text(orders_api_query *q, const char *v)
{
    return add_param(q, false, v, 0);
}

int orders_api_query_int(orders_api_query *q, int64_t v)
{
    return add_param(q, true, NULL, v);
}

db_stmt *orders_api_query_prepare(orders_api_query *q, db_conn *c, err *e)
{
    if (q->overflow) {
        err_set(e, F3_EINVAL, "query has more than %d parameters", ORDERS_API_PARAMS_MAX);
        return NULL;
    }
    db_stmt *s = db_prepare(c, buf_cstr(&q->sql), e);
    if (!s)
        return NULL;
    for (int i = 0; i < q->n; i++) {
        if (q->p[i].is_int)
            db_bind_int64(s, i + 1, q->p[i].i);
        else
            db_bind_text(s, i + 1, q->p[i].text);
    }
    return s;
}

char *orders_api_like_pattern(const char *q)
{
    buf b;
    buf_init(&b, 0);
    int rc = buf_putc(&b, '%');
    for (const char *p = q; *p && rc == 0; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            rc = buf_putc(&b, '\\');
        if (rc == 0)
            rc = buf_putc(&b, (char)tolower((unsigned char)*p));
    }
    if (rc == 0)
        rc = buf_putc(&b, '%');
    if (rc) {
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b);
}

/* ---- requests --------------------------------------------------------------------------- */

const char *orders_api_tenant(http_request *req, http_response *res)
{
    const user_ctx *u = user_ctx_of(req);
    if (!u || !u->tenant_id[0]) {
        http_res_error(res, 401, "Authentication required");
        return NULL;
    }
    return u->tenant_id;
}

int orders_api_db_failed(http_response *res, const char *what, const err *e)
{
    log_error("orders api: database failure", "operation", what, "error", e ? e->msg : "");
    http_res_error(res, 503, "Database unavailable, try again");
    return 0;
}

static bool is_bare_date(const char *v)
{
    return strlen(v) == 10 && v[4] == '-' && v[7] == '-';
}

int orders_api_time_param(http_request *req, const char *name, bool end, int64_t def, int64_t *out,
                          err *e)
{
    const char *v = http_req_query_param(req, name);
    if (!v) {
        *out = def;
        return 0;
    }
    int64_t ms = 0;
    if (!*v || clock_parse_iso(v, &ms) != 0)
        return err_set(e, F3_EINVAL, "%s: must be an ISO-8601 date or time", name);
    if (end && is_bare_date(v))
        ms += ORDERS_API_DAY_MS;
    *out = ms;
    return 0;
}

int orders_api_int_param(http_request *req, const char *name, int64_t min, int64_t max, int64_t def,
                         int64_t *out, err *e)
{
    const char *v = http_req_query_param(req, name);
    if (!v) {
        *out = def;
        return 0;
    }
    int64_t n = 0;
    if (str_to_int64(v, &n) != 0 || n < min || n > max)
        return err_set(e, F3_EINVAL, "%s: must be an integer from %lld to %lld", name,
                       (long long)min, (long long)max);
    *out = n;
    return 0;
}

/* ---- cursors ---------------------------------------------------------------------------- */

int orders_api_cursor_encode(const char *sort, const char *key, const char *id, buf *out)
{
    json_t *a = json_pack("[sss]", sort, key, id);
    if (!a)
        return F3_ENOMEM;
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (!text)
        return F3_ENOMEM;
    int rc = crypto_base64_encode(text, strlen(text), true, out);
    free(text);
    return rc;
}

int orders_api_cursor_decode(const char *cursor, const char *sort, char **key, char **id, err *e)
{
    *key = NULL;
    *id = NULL;
    int rc = F3_EINVAL;
    buf raw;
    buf_init(&raw, CURSOR_TEXT_MAX);
    json_t *a = NULL;
    err ignored;
    const char *s = NULL, *k = NULL, *i = NULL;
    if (strlen(cursor) > CURSOR_TEXT_MAX * 2 ||
        crypto_base64_decode(cursor, strlen(cursor), &raw, &ignored) != 0 ||
        !(a = json_loadb(buf_cstr(&raw), raw.len, 0, NULL)) ||
        json_unpack(a, "[sss!]", &s, &k, &i) != 0) {
        err_set(e, F3_EINVAL, "cursor: not a cursor of this list");
        goto out;
    }
    if (strcmp(s, sort) != 0) {
        err_set(e, F3_EINVAL, "cursor: made for sort '%s', not '%s'", s, sort);
        goto out;
    }
    *key = str_dup(k);
    *id = str_dup(i);
    if (!*key || !*id) {
        free(*key);
        free(*id);
        *key = *id = NULL;
        rc = err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    rc = 0;
out:
    json_decref(a);
    buf_free(&raw);
    return rc;
}

/* ---- JSON from columns ------------------------------------------------------------------ */

json_t *orders_api_col_str(db_stmt *s, int col)
{
    const char *v = db_col_text(s, col);
    return v ? json_string(v) : json_null();
}

json_t *orders_api_col_time(db_stmt *s, int col)
{
    if (db_col_is_null(s, col))
        return json_null();
    char iso[CLOCK_ISO_LEN];
    clock_format_iso(db_col_int64(s, col), iso);
    return json_string(iso);
}

json_t *orders_api_col_json(db_stmt *s, int col)
{
    const char *v = db_col_text(s, col);
    json_t *j = v ? json_loads(v, JSON_DECODE_ANY, NULL) : NULL;
    return j ? j : json_null();
}

int orders_api_page(http_response *res, db *d, orders_api_query *q, int64_t limit, const char *what,
                    orders_api_row_fn row, orders_api_row_fn cursor, const void *arg)
{
    err e;
    err_clear(&e);
    db_conn *c = NULL;
    db_stmt *s = NULL;
    json_t *data = json_array(), *next = NULL;
    int rc = 0;
    if (!data)
        goto oom;
    if (!(c = db_acquire(d, &e)) || !(s = orders_api_query_prepare(q, c, &e))) {
        orders_api_db_failed(res, what, &e);
        goto out;
    }
    int64_t n = 0;
    while ((rc = db_step(s, &e)) == DB_ROW) {
        if (n++ == limit)
            break;
        json_t *j = row(s, arg);
        if (!j || json_array_append_new(data, j))
            goto oom;
        json_decref(next);
        if (!(next = cursor(s, arg)))
            goto oom;
    }
    if (rc < 0) {
        orders_api_db_failed(res, what, &e);
        goto out;
    }
    if (n <= limit) { /* no row past the page: this is the last one */
        json_decref(next);
        next = NULL;
    }
    json_t *body = json_pack("{s:O s:O}", "data", data, "nextCursor", next ? next : json_null());
    if (!body)
        goto oom;
    http_res_json(res, 200, body);
    goto out;
oom:
    http_res_error(res, 500, "Internal server error");
out:
    db_finalize(s);
    db_release(c);
    json_decref(data);
    json_decref(next);
    return 0;
}
