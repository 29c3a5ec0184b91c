/*
 * db_text.c - conveniences over the statement interface for callers that bind text
 * parameters (see db.h, "conveniences for text parameters"). Backend-neutral: only the
 * public db.h calls are used here.
 */
#include "db/db.h"

#include <stdio.h>

int db_err_code(const err *e)
{
    return e && e->code ? e->code : F3_EIO;
}

db_stmt *db_prepare_texts(db_conn *c, const char *sql, const char *const *texts, int n, err *e)
{
    db_stmt *s = db_prepare(c, sql, e);
    if (!s)
        return NULL;
    for (int i = 0; i < n; i++) {
        if (db_bind_text(s, i + 1, texts[i]) != 0) {
            err_set(e, F3_ENOMEM, "cannot bind parameter %d", i + 1);
            db_finalize(s);
            return NULL;
        }
    }
    return s;
}

int db_exec_texts(db_conn *c, const char *sql, const char *const *texts, int n, int64_t *changes,
                  err *e)
{
    db_stmt *s = db_prepare_texts(c, sql, texts, n, e);
    if (!s)
        return db_err_code(e);
    int rc;
    while ((rc = db_step(s, e)) == DB_ROW) {
    }
    if (rc == DB_DONE && changes)
        *changes = db_changes(s);
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

int db_query_text(db_conn *c, const char *sql, const char *const *texts, int n, char *out,
                  size_t size, err *e)
{
    if (size)
        out[0] = '\0';
    db_stmt *s = db_prepare_texts(c, sql, texts, n, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    if (rc == DB_ROW)
        db_col_copy(s, 0, out, size);
    db_finalize(s);
    return rc;
}

void db_col_copy(db_stmt *s, int col, char *out, size_t size)
{
    const char *v = db_col_text(s, col);
    snprintf(out, size, "%s", v ? v : "");
}

void db_ms_text(int64_t ms, char out[24])
{
    snprintf(out, 24, "%lld", (long long)ms);
}
