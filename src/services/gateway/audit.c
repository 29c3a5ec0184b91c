/*
 * audit.c - the security audit log in the database (see audit.h).
 */
#include "services/gateway/audit.h"

#include "core/log.h"
#include "core/uuid.h"

#include <stdio.h>

int audit_record(db *d, const audit_entry *a, int64_t now_ms, err *e)
{
    char id[UUID_STR_LEN];
    uuid_v7(id);
    int rc;
    db_conn *c = db_acquire(d, e);
    db_stmt *st = c ? db_prepare(c,
                                 "INSERT INTO security_audit (id, tenant_id, user_id, email, event,"
                                 " ip, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                                 e)
                    : NULL;
    if (!st) {
        rc = e && e->code ? e->code : F3_EIO;
    } else {
        db_bind_text(st, 1, id);
        db_bind_text(st, 2, a->tenant_id);
        db_bind_text(st, 3, a->user_id);
        db_bind_text(st, 4, a->email);
        db_bind_text(st, 5, a->event);
        db_bind_text(st, 6, a->ip);
        db_bind_text(st, 7, a->detail);
        db_bind_int64(st, 8, now_ms);
        rc = db_step(st, e);
        rc = rc < 0 ? rc : 0;
    }
    if (rc)
        log_error("security audit entry not written", "event", a->event, "error", err_name(rc));
    db_finalize(st);
    db_release(c);
    return rc;
}

int audit_list(db *d, const char *tenant_id, const char *event, int limit, json_t **out, err *e)
{
    *out = NULL;
    db_conn *c = db_acquire(d, e);
    if (!c)
        return e && e->code ? e->code : F3_EIO;
    db_stmt *st = db_prepare(c,
                             "SELECT id, event, user_id, email, ip, detail, created_at"
                             " FROM security_audit WHERE tenant_id = $1"
                             " AND (CAST($2 AS TEXT) IS NULL OR event = CAST($2 AS TEXT))"
                             " ORDER BY created_at DESC, id DESC LIMIT $3",
                             e);
    json_t *arr = json_array();
    int rc = st && arr ? 0 : st ? F3_ENOMEM : (e && e->code ? e->code : F3_EIO);
    if (rc == 0) {
        db_bind_text(st, 1, tenant_id);
        db_bind_text(st, 2, event);
        db_bind_int64(st, 3, limit);
    }
    while (rc == 0 && (rc = db_step(st, e)) == DB_ROW) {
        json_t *j = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:I}", "id", db_col_text(st, 0),
                              "event", db_col_text(st, 1), "userId", db_col_text(st, 2), "email",
                              db_col_text(st, 3), "ip", db_col_text(st, 4), "detail",
                              db_col_text(st, 5), "createdAt", (json_int_t)db_col_int64(st, 6));
        rc = j && json_array_append_new(arr, j) == 0 ? 0 : F3_ENOMEM;
    }
    if (rc == DB_DONE) {
        *out = arr;
        arr = NULL;
        rc = 0;
    }
    json_decref(arr);
    db_finalize(st);
    db_release(c);
    return rc;
}
