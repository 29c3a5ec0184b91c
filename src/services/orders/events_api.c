/*
 * events_api.c - GET /api/v1/events: the tenant's business event log, newest first, with
 * filters (orderId, severity, eventType, from/to) and keyset paging by (created_at, id).
 *
 * Reads only; entries are written by eventlog.c in the transactions of the actions.
 */
#include "services/orders/api_internal.h"

#include "core/str.h"
#include "services/common/eventlog.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_LIMIT_DEFAULT 50
#define EVENTS_LIMIT_MAX     100
#define EVENTS_SORT          "createdAt"

typedef struct event_filter {
    const char *order_id;
    const char *severity;
    const char *event_type;
    int64_t from, to, limit;
    char *key, *id;
} event_filter;

static int parse_filter(http_request *req, event_filter *f, err *e)
{
    memset(f, 0, sizeof *f);
    f->order_id = http_req_query_param(req, "orderId");
    f->severity = http_req_query_param(req, "severity");
    f->event_type = http_req_query_param(req, "eventType");
    if (f->severity && eventlog_severity_parse(f->severity) < 0)
        return err_set(e, F3_EINVAL, "severity: must be INFO, WARNING or ERROR");
    if (f->order_id && !*f->order_id)
        return err_set(e, F3_EINVAL, "orderId: must not be empty");
    if (f->event_type && !*f->event_type)
        return err_set(e, F3_EINVAL, "eventType: must not be empty");
    int rc;
    if ((rc = orders_api_time_param(req, "from", false, INT64_MIN, &f->from, e)) ||
        (rc = orders_api_time_param(req, "to", true, INT64_MAX, &f->to, e)) ||
        (rc = orders_api_int_param(req, "limit", 1, EVENTS_LIMIT_MAX, EVENTS_LIMIT_DEFAULT,
                                   &f->limit, e)))
        return rc;
    const char *cursor = http_req_query_param(req, "cursor");
    if (cursor && *cursor) {
        int64_t n;
        if ((rc = orders_api_cursor_decode(cursor, EVENTS_SORT, &f->key, &f->id, e)))
            return rc;
        if (str_to_int64(f->key, &n) != 0)
            return err_set(e, F3_EINVAL, "cursor: not a cursor of this list");
    }
    return 0;
}

static void build_query(const event_filter *f, const char *tenant, orders_api_query *q)
{
    buf *b = &q->sql;
    buf_printf(b, "SELECT %s FROM event_log WHERE tenant_id = $%d", orders_api_event_columns,
               orders_api_query_text(q, tenant));
    if (f->order_id)
        buf_printf(b, " AND order_id = $%d", orders_api_query_text(q, f->order_id));
    if (f->severity)
        buf_printf(b, " AND severity = $%d", orders_api_query_text(q, f->severity));
    if (f->event_type)
        buf_printf(b, " AND event_type = $%d", orders_api_query_text(q, f->event_type));
    if (f->from != INT64_MIN)
        buf_printf(b, " AND created_at >= $%d", orders_api_query_int(q, f->from));
    if (f->to != INT64_MAX)
        buf_printf(b, " AND created_at < $%d", orders_api_query_int(q, f->to));
    if (f->key) {
        int64_t n = 0;
        str_to_int64(f->key, &n);
        int k = orders_api_query_int(q, n);
        int i = orders_api_query_text(q, f->id);
        buf_printf(b, " AND (created_at < $%d OR (created_at = $%d AND id < $%d))", k, k, i);
    }
    buf_printf(b, " ORDER BY created_at DESC, id DESC LIMIT $%d",
               orders_api_query_int(q, f->limit + 1));
}

static json_t *cursor_after(db_stmt *s, const void *arg)
{
    (void)arg;
    char key[32];
    snprintf(key, sizeof key, "%" PRId64, db_col_int64(s, 10));
    buf b;
    buf_init(&b, 0);
    json_t *j = NULL;
    if (orders_api_cursor_encode(EVENTS_SORT, key, db_col_text(s, 0), &b) == 0)
        j = json_string(buf_cstr(&b));
    buf_free(&b);
    return j;
}

static json_t *event_row(db_stmt *s, const void *arg)
{
    (void)arg;
    return orders_api_event_json(s);
}

int orders_api_events_list(http_request *req, http_response *res, void *ctx)
{
    const orders_api_deps *deps = ctx;
    const char *tenant = orders_api_tenant(req, res);
    if (!tenant)
        return 0;
    err e;
    err_clear(&e);
    event_filter f;
    orders_api_query q;
    orders_api_query_init(&q);
    int rc = parse_filter(req, &f, &e);
    if (rc) {
        http_res_error(res, rc == F3_EINVAL ? 400 : 500, "%s", e.msg);
    } else {
        build_query(&f, tenant, &q);
        orders_api_page(res, deps->db, &q, f.limit, "event list", event_row, cursor_after, NULL);
    }
    orders_api_query_free(&q);
    free(f.key);
    free(f.id);
    return 0;
}
