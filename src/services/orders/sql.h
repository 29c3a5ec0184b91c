/*
 * sql.h - small statement helpers shared by the orders service's intake files: prepare
 * with text parameters, run to completion, read one text column.
 *
 * Only the orders service includes this; it holds no business logic.
 */
#ifndef F3_ORDERS_SQL_H
#define F3_ORDERS_SQL_H

#include "core/err.h"
#include "db/db.h"

#include <stddef.h>

/* The code an err carries, F3_EIO when it carries none (e may be NULL). */
#define ORDERS_ERRCODE(e) orders_err_code(e)
int orders_err_code(const err *e);

/* Prepares sql on c and binds texts[0..n-1] to $1..$n (NULL binds SQL NULL).
 * NULL on error with e set. Caller finalizes with db_finalize. */
db_stmt *orders_sql_prepare(db_conn *c, const char *sql, const char *const *texts, int n, err *e);

/* Prepares, binds and steps sql to the end. *changes (may be NULL) = rows changed.
 * 0 or the db error. */
int orders_sql_exec(db_conn *c, const char *sql, const char *const *texts, int n, int64_t *changes,
                    err *e);

/* Copies column col of the current row into out (size bytes, truncated; "" for NULL). */
void orders_sql_col_copy(db_stmt *s, int col, char *out, size_t size);

/* The epoch-ms value as decimal text, for binding through CAST($n AS BIGINT). */
void orders_sql_ms(int64_t ms, char out[24]);

#endif
