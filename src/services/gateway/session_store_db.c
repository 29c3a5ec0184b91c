/*
 * session_store_db.c - sessions in the database's sessions table (embedded
 * mode, and distributed mode until Redis takes them over).
 *
 * A session is live while revoked_at is NULL, expires_at is in the future and
 * it was last seen within the idle timeout; the queries say so in SQL so that
 * the check and the read are one step. Ended sessions of a user are deleted
 * when that user next logs in, so the table does not grow without bound.
 */
#include "services/gateway/session_store.h"

#include "core/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct db_store {
    session_store base;
    db *d;
} db_store;

#define LIVE                                                                                       \
    " revoked_at IS NULL AND expires_at > $2 AND last_seen_at > CAST($2 AS BIGINT) - CAST($3 AS "  \
    "BIGINT)"

static void col_copy(db_stmt *st, int col, char *dst, size_t size)
{
    const char *v = db_col_text(st, col);
    snprintf(dst, size, "%s", v ? v : "");
}

static void read_row(db_stmt *st, session_record *r)
{
    col_copy(st, 0, r->id, sizeof r->id);
    col_copy(st, 1, r->user_id, sizeof r->user_id);
    col_copy(st, 2, r->tenant_id, sizeof r->tenant_id);
    r->created_at = db_col_int64(st, 3);
    r->last_seen_at = db_col_int64(st, 4);
    r->expires_at = db_col_int64(st, 5);
    col_copy(st, 6, r->ip, sizeof r->ip);
    /* Written by session_start as valid UTF-8; rows from before that are mended here. */
    str_utf8_copy(r->user_agent, sizeof r->user_agent, db_col_text(st, 7));
}

#define COLUMNS "id_hash, user_id, tenant_id, created_at, last_seen_at, expires_at, ip, user_agent"

/* Runs one statement that returns no rows; *changes (may be NULL) gets its count. */
static int run(db *d, const char *sql, const char *const *texts, const int64_t *ints, int ntexts,
               int nints, int64_t *changes, err *e)
{
    db_conn *c = db_acquire(d, e);
    if (!c)
        return e ? e->code : F3_EIO;
    int rc = 0;
    db_stmt *st = db_prepare(c, sql, e);
    if (!st) {
        rc = e ? e->code : F3_EIO;
        goto out;
    }
    for (int i = 0; i < ntexts; i++)
        db_bind_text(st, i + 1, texts[i]);
    for (int i = 0; i < nints; i++)
        db_bind_int64(st, ntexts + i + 1, ints[i]);
    rc = db_step(st, e);
    if (rc == DB_DONE && changes)
        *changes = db_changes(st);
    rc = rc < 0 ? rc : 0;
out:
    db_finalize(st);
    db_release(c);
    return rc;
}

static int dbs_create(session_store *s, const session_record *r, err *e)
{
    db_store *ds = (db_store *)s;
    /* Forget this user's ended sessions first. */
    const char *del_t[] = {r->user_id};
    int64_t del_i[] = {r->created_at, s->limits.idle_ms};
    int rc = run(ds->d,
                 "DELETE FROM sessions WHERE user_id = $1 AND (revoked_at IS NOT NULL"
                 " OR expires_at <= $2 OR last_seen_at <= CAST($2 AS BIGINT) - CAST($3 AS BIGINT))",
                 del_t, del_i, 1, 2, NULL, e);
    if (rc)
        return rc;
    const char *t[] = {r->id, r->tenant_id, r->user_id, r->ip, r->user_agent};
    int64_t i[] = {r->created_at, r->last_seen_at, r->expires_at};
    return run(ds->d,
               "INSERT INTO sessions (id_hash, tenant_id, user_id, ip, user_agent, created_at,"
               " last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
               t, i, 5, 3, NULL, e);
}

static int64_t touch_slack(const session_store *s)
{
    int64_t slack = s->limits.idle_ms / 20;
    return slack < 60000 ? slack : 60000;
}

static int dbs_find(session_store *s, const char *id, int64_t now_ms, session_record *out, err *e)
{
    db_store *ds = (db_store *)s;
    db_conn *c = db_acquire(ds->d, e);
    if (!c)
        return e ? e->code : F3_EIO;
    int rc;
    db_stmt *st = db_prepare(c, "SELECT " COLUMNS " FROM sessions WHERE id_hash = $1 AND" LIVE, e);
    if (!st) {
        rc = e ? e->code : F3_EIO;
        goto out;
    }
    db_bind_text(st, 1, id);
    db_bind_int64(st, 2, now_ms);
    db_bind_int64(st, 3, s->limits.idle_ms);
    rc = db_step(st, e);
    if (rc == DB_ROW) {
        read_row(st, out);
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = F3_ENOTFOUND;
    }
    db_finalize(st);
    st = NULL;
    if (rc == 0) {
        /* One write a minute at most per session, not one per request: the idle
         * timeout is then measured to within that slack. */
        st = db_prepare(c,
                        "UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1"
                        " AND last_seen_at < CAST($2 AS BIGINT) - CAST($3 AS BIGINT)",
                        e);
        if (!st) {
            rc = e ? e->code : F3_EIO;
            goto out;
        }
        db_bind_text(st, 1, id);
        db_bind_int64(st, 2, now_ms);
        db_bind_int64(st, 3, touch_slack(s));
        int u = db_step(st, e);
        rc = u < 0 ? u : 0;
        if (out->last_seen_at < now_ms - touch_slack(s))
            out->last_seen_at = now_ms;
    }
out:
    db_finalize(st);
    db_release(c);
    return rc;
}

static int dbs_revoke(session_store *s, const char *id, const char *user_id, int64_t now_ms, err *e)
{
    db_store *ds = (db_store *)s;
    const char *t[] = {id, user_id};
    int64_t i[] = {now_ms};
    int64_t n = 0;
    int rc =
        run(ds->d,
            "UPDATE sessions SET revoked_at = $3 WHERE id_hash = $1"
            " AND (CAST($2 AS TEXT) IS NULL OR user_id = CAST($2 AS TEXT)) AND revoked_at IS NULL",
            t, i, 2, 1, &n, e);
    if (rc == 0 && n == 0)
        rc = err_set(e, F3_ENOTFOUND, "session not found");
    return rc;
}

static int dbs_revoke_user(session_store *s, const char *user_id, const char *tenant_id,
                           int64_t now_ms, int *count, err *e)
{
    db_store *ds = (db_store *)s;
    const char *t[] = {user_id, tenant_id};
    int64_t i[] = {now_ms};
    int64_t n = 0;
    int rc = run(
        ds->d,
        "UPDATE sessions SET revoked_at = $3 WHERE user_id = $1"
        " AND (CAST($2 AS TEXT) IS NULL OR tenant_id = CAST($2 AS TEXT)) AND revoked_at IS NULL",
        t, i, 2, 1, &n, e);
    if (count)
        *count = (int)n;
    return rc;
}

static int dbs_list(session_store *s, const char *user_id, const char *tenant_id, int64_t now_ms,
                    session_record *out, size_t max, size_t *n, err *e)
{
    db_store *ds = (db_store *)s;
    *n = 0;
    db_conn *c = db_acquire(ds->d, e);
    if (!c)
        return e ? e->code : F3_EIO;
    int rc;
    db_stmt *st = db_prepare(c,
                             "SELECT " COLUMNS " FROM sessions WHERE user_id = $1 AND"
                             " tenant_id = $4 AND" LIVE " ORDER BY created_at DESC",
                             e);
    if (!st) {
        rc = e ? e->code : F3_EIO;
        goto out;
    }
    db_bind_text(st, 1, user_id);
    db_bind_int64(st, 2, now_ms);
    db_bind_int64(st, 3, s->limits.idle_ms);
    db_bind_text(st, 4, tenant_id);
    while ((rc = db_step(st, e)) == DB_ROW)
        if (*n < max)
            read_row(st, &out[(*n)++]);
    rc = rc < 0 ? rc : 0;
out:
    db_finalize(st);
    db_release(c);
    return rc;
}

static void dbs_free(session_store *s)
{
    free(s);
}

static const session_store_ops db_ops = {dbs_create,      dbs_find, dbs_revoke,
                                         dbs_revoke_user, dbs_list, dbs_free};

session_store *session_store_db_new(db *d, const session_limits *limits)
{
    db_store *ds = calloc(1, sizeof *ds);
    if (!ds)
        return NULL;
    ds->base.ops = &db_ops;
    ds->base.limits = *limits;
    ds->d = d;
    return &ds->base;
}
