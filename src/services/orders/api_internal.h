/*
 * api_internal.h - helpers shared by the files of the orders HTTP API (orders_api.h):
 * dynamic SQL with numbered parameters, query-parameter parsing, cursors, JSON columns,
 * and the order views both the public and the internal routes answer with.
 *
 * Private to the files of src/services/orders that serve HTTP (routes.c, mappings.c,
 * orders_api.c, events_api.c, internal_api.c, analytics.c, order_view.c); nothing outside
 * the orders service includes it.
 */
#ifndef F3_ORDERS_API_INTERNAL_H
#define F3_ORDERS_API_INTERNAL_H

#include "core/buf.h"
#include "core/err.h"
#include "db/db.h"
#include "http/request.h"
#include "http/response.h"
#include "services/orders/orders_api.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define ORDERS_API_DAY_MS INT64_C(86400000)

/* ---- dynamic SQL ------------------------------------------------------------------------ */

#define ORDERS_API_PARAMS_MAX 24

/* SQL text assembled piece by piece with its parameters; text parameters are borrowed
 * until orders_api_query_prepare has bound them. */
typedef struct orders_api_query {
    buf sql;
    int n;
    bool overflow;
    struct {
        bool is_int;
        const char *text;
        int64_t i;
    } p[ORDERS_API_PARAMS_MAX];
} orders_api_query;

void orders_api_query_init(orders_api_query *q);
void orders_api_query_free(orders_api_query *q);

/* Adds a parameter and returns its number (for "$%d"); 0 when there are too many (the
 * prepare then fails with F3_EINVAL). */
int orders_api_query_text(orders_api_query *q, const char *v);
int orders_api_query_int(orders_api_query *q, int64_t v);

/* Prepares the text and binds every parameter; NULL on error (e filled). The statement is
 * the caller's (db_finalize). */
db_stmt *orders_api_query_prepare(orders_api_query *q, db_conn *c, err *e);

/* "%<q lower-cased, with % _ \ escaped>%" for `LOWER(col) LIKE $n ESCAPE '\'`.
 * Caller frees; NULL when out of memory. */
char *orders_api_like_pattern(const char *q);

/* The JSON of one row of a page query, and the cursor that resumes after that row; arg is
 * the list's own context. NULL when out of memory. */
typedef json_t *(*orders_api_row_fn)(db_stmt *s, const void *arg);

/* Runs a keyset-paged query q that asks for limit + 1 rows and answers 200
 * {"data": [rows...], "nextCursor": cursor after the last row, or null on the last page},
 * or the error (`what` names the list in the log). Returns 0: the response is written. */
int orders_api_page(http_response *res, db *d, orders_api_query *q, int64_t limit, const char *what,
                    orders_api_row_fn row, orders_api_row_fn cursor, const void *arg);

/* ---- requests --------------------------------------------------------------------------- */

/* The caller's tenant from the guard's user context; NULL after answering 401 when the
 * request carries none (a route reached without the guard). Borrowed for the request. */
const char *orders_api_tenant(http_request *req, http_response *res);

/* Answers a database failure: logged with `what`, 503 to the client. Returns 0 (the
 * handler's return value: the response is written). */
int orders_api_db_failed(http_response *res, const char *what, const err *e);

/* Query parameter `name` as a time: ISO-8601 or a bare date. A bare date read as an
 * end (`end`) means the start of the next day. Absent: *out = def. 0, or F3_EINVAL with e
 * naming the parameter. */
int orders_api_time_param(http_request *req, const char *name, bool end, int64_t def, int64_t *out,
                          err *e);

/* Query parameter `name` as an integer in [min, max]; absent: def. 0 or F3_EINVAL. */
int orders_api_int_param(http_request *req, const char *name, int64_t min, int64_t max, int64_t def,
                         int64_t *out, err *e);

/* ---- cursors ---------------------------------------------------------------------------- */

/* An opaque cursor for keyset paging: base64url of ["<sort>","<key>","<id>"]. Appends it
 * to out. 0 or F3_ENOMEM. */
int orders_api_cursor_encode(const char *sort, const char *key, const char *id, buf *out);

/* Reads a cursor back; it must have been made for `sort`. *key and *id are the caller's
 * (free). 0, or F3_EINVAL ("cursor: ...") / F3_ENOMEM. */
int orders_api_cursor_decode(const char *cursor, const char *sort, char **key, char **id, err *e);

/* ---- JSON from columns ------------------------------------------------------------------ */

/* The column as a JSON string, or null for SQL NULL. New reference. */
json_t *orders_api_col_str(db_stmt *s, int col);

/* An epoch-ms column as ISO-8601 text, or null for SQL NULL. New reference. */
json_t *orders_api_col_time(db_stmt *s, int col);

/* A JSON-text column parsed, or null (SQL NULL or unparsable text). New reference. */
json_t *orders_api_col_json(db_stmt *s, int col);

/* ---- order views (order_view.c) --------------------------------------------------------- */

/* The columns orders_api_order_summary reads, to SELECT from "orders o". */
extern const char orders_api_order_columns[];

/* The list view of the current row of a statement selecting orders_api_order_columns
 * first: the order's own fields plus lineItemCount and needsMappingCount (line items
 * without a mapping). New reference, NULL when out of memory. */
json_t *orders_api_order_summary(db_stmt *s);

/* The detail of one order of the tenant: the summary plus shipping address, line items
 * (mapping and needsMapping), print jobs, shipment (or null) and events (oldest first).
 * *out is the caller's (json_decref). 0, F3_ENOTFOUND (no such order for this tenant),
 * or a database error. */
int orders_api_order_detail(db_conn *c, const char *tenant_id, const char *order_id, json_t **out,
                            err *e);

/* An event log row of a statement selecting orders_api_event_columns first. */
extern const char orders_api_event_columns[];
json_t *orders_api_event_json(db_stmt *s);

/* ---- handlers (one file each) ----------------------------------------------------------- */

int orders_api_mappings_list(http_request *req, http_response *res, void *ctx);
int orders_api_mappings_get(http_request *req, http_response *res, void *ctx);
int orders_api_mappings_create(http_request *req, http_response *res, void *ctx);
int orders_api_mappings_replace(http_request *req, http_response *res, void *ctx);
int orders_api_mappings_patch(http_request *req, http_response *res, void *ctx);
int orders_api_mappings_delete(http_request *req, http_response *res, void *ctx);
int orders_api_orders_list(http_request *req, http_response *res, void *ctx);
int orders_api_orders_get(http_request *req, http_response *res, void *ctx);
int orders_api_events_list(http_request *req, http_response *res, void *ctx);
int orders_api_analytics_summary(http_request *req, http_response *res, void *ctx);
int orders_api_internal_get(http_request *req, http_response *res, void *ctx);
int orders_api_internal_get_shopify(http_request *req, http_response *res, void *ctx);
int orders_api_internal_tracking(http_request *req, http_response *res, void *ctx);

#endif
