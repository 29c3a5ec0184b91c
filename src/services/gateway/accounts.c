/*
 * accounts.c - users, tenants and memberships in the database (see accounts.h).
 *
 * Each function acquires a connection, runs its statements and releases it;
 * changes spanning several rows run in one transaction (db_tx). Every query of
 * a tenant's members filters on tenant_id.
 */
#include "services/gateway/accounts.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/str.h"
#include "core/uuid.h"
#include "services/access/permissions.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERRCODE(e) ((e) && (e)->code ? (e)->code : F3_EIO)

static void col_copy(db_stmt *st, int col, char *dst, size_t size)
{
    const char *v = db_col_text(st, col);
    snprintf(dst, size, "%s", v ? v : "");
}

/* Prepares sql and binds the NULL-terminated text parameters $1..$n. */
static db_stmt *prep(db_conn *c, const char *sql, const char *const *texts, int n, err *e)
{
    db_stmt *st = db_prepare(c, sql, e);
    for (int i = 0; st && i < n; i++)
        db_bind_text(st, i + 1, texts[i]);
    return st;
}

/* Runs a statement that returns no rows on c. *changes may be NULL. */
static int exec_on(db_conn *c, const char *sql, const char *const *texts, int n, int64_t *changes,
                   err *e)
{
    db_stmt *st = prep(c, sql, texts, n, e);
    if (!st)
        return ERRCODE(e);
    int rc = db_step(st, e);
    if (rc == DB_DONE && changes)
        *changes = db_changes(st);
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

/* Runs a query whose first row's first column is copied to out (size bytes).
 * 0, F3_ENOTFOUND (no row) or an error. */
static int scalar_on(db_conn *c, const char *sql, const char *const *texts, int n, char *out,
                     size_t size, err *e)
{
    db_stmt *st = prep(c, sql, texts, n, e);
    if (!st)
        return ERRCODE(e);
    int rc = db_step(st, e);
    if (rc == DB_ROW) {
        col_copy(st, 0, out, size);
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = F3_ENOTFOUND;
    }
    db_finalize(st);
    return rc;
}

static int tenant_insert(db_conn *c, const char *name, const char *slug, char id[65], err *e)
{
    char uuid[UUID_STR_LEN], now[24];
    uuid_v4(uuid);
    snprintf(now, sizeof now, "%lld", (long long)clock_now_ms());
    const char *t[] = {uuid, name, slug, now};
    int rc = exec_on(c,
                     "INSERT INTO tenants (id, name, slug, created_at, updated_at)"
                     " VALUES ($1, $2, $3, CAST($4 AS BIGINT), CAST($4 AS BIGINT))",
                     t, 4, NULL, e);
    if (rc == 0)
        snprintf(id, 65, "%s", uuid);
    return rc;
}

int account_default_tenant(db *d, char tenant_id[65], err *e)
{
    db_conn *c = db_acquire(d, e);
    if (!c)
        return ERRCODE(e);
    const char *t[] = {"default"};
    int rc = scalar_on(c, "SELECT id FROM tenants WHERE slug = $1", t, 1, tenant_id, 65, e);
    if (rc == F3_ENOTFOUND)
        rc = scalar_on(c, "SELECT id FROM tenants ORDER BY created_at, id LIMIT 1", NULL, 0,
                       tenant_id, 65, e);
    if (rc == F3_ENOTFOUND)
        rc = tenant_insert(c, "Default", "default", tenant_id, e);
    db_release(c);
    return rc;
}

int account_tenant_resolve(db *d, const char *ref, bool create, char tenant_id[65], err *e)
{
    if (!ref || !*ref || strlen(ref) > 64)
        return err_set(e, F3_EINVAL, "tenant: expected an id or a slug of 1 to 64 characters");
    db_conn *c = db_acquire(d, e);
    if (!c)
        return ERRCODE(e);
    const char *t[] = {ref};
    int rc =
        scalar_on(c, "SELECT id FROM tenants WHERE id = $1 OR slug = $1", t, 1, tenant_id, 65, e);
    if (rc == F3_ENOTFOUND && create)
        rc = tenant_insert(c, ref, ref, tenant_id, e);
    else if (rc == F3_ENOTFOUND)
        err_set(e, rc, "no tenant with id or slug '%s'", ref);
    db_release(c);
    return rc;
}

int account_count(db *d, int64_t *n, err *e)
{
    db_conn *c = db_acquire(d, e);
    if (!c)
        return ERRCODE(e);
    char v[24] = "0";
    int rc = scalar_on(c, "SELECT COUNT(*) FROM users", NULL, 0, v, sizeof v, e);
    *n = strtoll(v, NULL, 10);
    db_release(c);
    return rc;
}

int account_password_check(const char *password, err *e)
{
    size_t n = password ? strlen(password) : 0;
    if (n < ACCOUNT_PASSWORD_MIN || n > ACCOUNT_PASSWORD_MAX)
        return err_set(e, F3_EINVAL, "password must have %d to %d characters", ACCOUNT_PASSWORD_MIN,
                       ACCOUNT_PASSWORD_MAX);
    return 0;
}

/* local@domain.tld, no spaces or control characters, at most 320 bytes. */
static bool email_valid(const char *s)
{
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    if (n == 0 || n > 320 || !at || at == s || strchr(at + 1, '@'))
        return false;
    const char *dot = strrchr(at, '.');
    if (!dot || dot == at + 1 || dot[1] == '\0')
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

typedef struct create_tx {
    const char *tenant_id, *email, *role, *hash;
    bool super_admin;
    account *out;
} create_tx;

static int create_body(db_conn *c, void *ctx, err *e)
{
    create_tx *t = ctx;
    char id[UUID_STR_LEN], now[24];
    uuid_v4(id);
    snprintf(now, sizeof now, "%lld", (long long)clock_now_ms());
    const char *u[] = {id, t->email, t->hash, t->super_admin ? "1" : "0", now};
    int rc = exec_on(c,
                     "INSERT INTO users (id, email, password_hash, is_super_admin, created_at,"
                     " updated_at) VALUES ($1, $2, $3, CAST($4 AS INTEGER) = 1,"
                     " CAST($5 AS BIGINT), CAST($5 AS BIGINT))",
                     u, 5, NULL, e);
    const char *m[] = {t->tenant_id, id, t->role, now};
    rc = rc ? rc
            : exec_on(c,
                      "INSERT INTO tenant_memberships (tenant_id, user_id, role, created_at,"
                      " updated_at) VALUES ($1, $2, $3, CAST($4 AS BIGINT), CAST($4 AS BIGINT))",
                      m, 4, NULL, e);
    if (rc == 0 && t->out) {
        memset(t->out, 0, sizeof *t->out);
        snprintf(t->out->id, sizeof t->out->id, "%s", id);
        snprintf(t->out->email, sizeof t->out->email, "%s", t->email);
        snprintf(t->out->tenant_id, sizeof t->out->tenant_id, "%s", t->tenant_id);
        snprintf(t->out->role, sizeof t->out->role, "%s", t->role);
        t->out->super_admin = t->super_admin;
    }
    return rc;
}

int account_create(db *d, const char *tenant_id, const char *email, const char *role,
                   const char *password, bool super_admin, account *out, err *e)
{
    if (!email || !email_valid(email))
        return err_set(e, F3_EINVAL, "email: expected an address like name@example.com");
    if (!rbac_role_valid(role))
        return err_set(e, F3_EINVAL, "role: expected admin, operator or viewer");
    int rc = account_password_check(password, e);
    if (rc)
        return rc;
    char *lower = str_lower(str_dup(email));
    buf hash;
    buf_init(&hash, 0);
    db_conn *c = NULL;
    if (!lower || crypto_password_hash(password, &hash) != 0) {
        rc = err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    c = db_acquire(d, e);
    if (!c) {
        rc = ERRCODE(e);
        goto out;
    }
    create_tx t = {tenant_id, lower, role, buf_cstr(&hash), super_admin, out};
    rc = db_tx(c, create_body, &t, e);
    if (rc == F3_ECONFLICT)
        err_set(e, rc, "a user with this email address already exists");
out:
    db_release(c);
    buf_free(&hash);
    free(lower);
    return rc;
}

#define ACCOUNT_COLS "u.id, u.email, m.tenant_id, m.role, u.is_super_admin, u.disabled"

static void read_account(db_stmt *st, account *a)
{
    memset(a, 0, sizeof *a);
    col_copy(st, 0, a->id, sizeof a->id);
    col_copy(st, 1, a->email, sizeof a->email);
    col_copy(st, 2, a->tenant_id, sizeof a->tenant_id);
    col_copy(st, 3, a->role, sizeof a->role);
    a->super_admin = db_col_bool(st, 4);
    a->disabled = db_col_bool(st, 5);
}

/* Runs a query of ACCOUNT_COLS (+ extra) and reads its first row into out. */
static int account_query(db *d, const char *sql, const char *const *texts, int n, account *out,
                         bool with_hash, err *e)
{
    db_conn *c = db_acquire(d, e);
    if (!c)
        return ERRCODE(e);
    db_stmt *st = prep(c, sql, texts, n, e);
    int rc = st ? db_step(st, e) : ERRCODE(e);
    if (rc == DB_ROW) {
        read_account(st, out);
        if (with_hash)
            col_copy(st, 6, out->password_hash, sizeof out->password_hash);
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_set(e, F3_ENOTFOUND, "user not found");
    }
    db_finalize(st);
    db_release(c);
    return rc;
}

int account_find_login(db *d, const char *email, const char *tenant_id, account *out, err *e)
{
    char *lower = str_lower(str_dup(email ? email : ""));
    if (!lower)
        return err_set(e, F3_ENOMEM, "out of memory");
    const char *t[] = {lower, tenant_id};
    int rc = account_query(d,
                           "SELECT " ACCOUNT_COLS ", u.password_hash FROM users u"
                           " LEFT JOIN tenant_memberships m ON m.user_id = u.id"
                           " AND (CAST($2 AS TEXT) IS NULL OR m.tenant_id = CAST($2 AS TEXT))"
                           " WHERE u.email = $1 ORDER BY m.created_at, m.tenant_id LIMIT 1",
                           t, 2, out, true, e);
    free(lower);
    return rc;
}

int account_get(db *d, const char *tenant_id, const char *user_id, account *out, err *e)
{
    const char *t[] = {tenant_id, user_id};
    return account_query(d,
                         "SELECT " ACCOUNT_COLS " FROM users u JOIN tenant_memberships m"
                         " ON m.user_id = u.id WHERE m.tenant_id = $1 AND u.id = $2",
                         t, 2, out, false, e);
}

int account_list(db *d, const char *tenant_id, json_t **out, err *e)
{
    *out = NULL;
    db_conn *c = db_acquire(d, e);
    if (!c)
        return ERRCODE(e);
    const char *t[] = {tenant_id};
    db_stmt *st = prep(c,
                       "SELECT " ACCOUNT_COLS ", u.last_login_at, u.created_at FROM users u"
                       " JOIN tenant_memberships m ON m.user_id = u.id"
                       " WHERE (CAST($1 AS TEXT) IS NULL OR m.tenant_id = CAST($1 AS TEXT)) ORDER "
                       "BY u.email, m.tenant_id",
                       t, 1, e);
    json_t *arr = json_array();
    int rc = st && arr ? 0 : st ? F3_ENOMEM : ERRCODE(e);
    while (rc == 0 && (rc = db_step(st, e)) == DB_ROW) {
        account a;
        read_account(st, &a);
        json_t *j = account_to_json(&a);
        if (j && !db_col_is_null(st, 6))
            json_object_set_new(j, "lastLoginAt", json_integer(db_col_int64(st, 6)));
        else if (j)
            json_object_set_new(j, "lastLoginAt", json_null());
        if (j)
            json_object_set_new(j, "createdAt", json_integer(db_col_int64(st, 7)));
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

/* Runs one change on its own connection; F3_ENOTFOUND when it changed nothing. */
static int change(db *d, const char *sql, const char *const *texts, int n, err *e)
{
    db_conn *c = db_acquire(d, e);
    if (!c)
        return ERRCODE(e);
    int64_t changed = 0;
    int rc = exec_on(c, sql, texts, n, &changed, e);
    if (rc == 0 && changed == 0)
        rc = err_set(e, F3_ENOTFOUND, "user not found");
    db_release(c);
    return rc;
}

int account_set_role(db *d, const char *tenant_id, const char *user_id, const char *role, err *e)
{
    if (!rbac_role_valid(role))
        return err_set(e, F3_EINVAL, "role: expected admin, operator or viewer");
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)clock_now_ms());
    const char *t[] = {tenant_id, user_id, role, now};
    return change(d,
                  "UPDATE tenant_memberships SET role = $3, updated_at = CAST($4 AS BIGINT)"
                  " WHERE tenant_id = $1 AND user_id = $2",
                  t, 4, e);
}

int account_set_password(db *d, const char *user_id, const char *password, err *e)
{
    int rc = account_password_check(password, e);
    if (rc)
        return rc;
    buf hash;
    buf_init(&hash, 0);
    if (crypto_password_hash(password, &hash) != 0) {
        buf_free(&hash);
        return err_set(e, F3_ENOMEM, "out of memory");
    }
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)clock_now_ms());
    const char *t[] = {user_id, buf_cstr(&hash), now};
    rc = change(d,
                "UPDATE users SET password_hash = $2, updated_at = CAST($3 AS BIGINT)"
                " WHERE id = $1",
                t, 3, e);
    buf_free(&hash);
    return rc;
}

int account_touch_login(db *d, const char *user_id, int64_t now_ms, err *e)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *t[] = {user_id, now};
    return change(d, "UPDATE users SET last_login_at = CAST($2 AS BIGINT) WHERE id = $1", t, 2, e);
}

typedef struct remove_tx {
    const char *tenant_id, *user_id;
} remove_tx;

static int remove_body(db_conn *c, void *ctx, err *e)
{
    remove_tx *t = ctx;
    int64_t changed = 0;
    int rc;
    if (t->tenant_id) {
        const char *m[] = {t->tenant_id, t->user_id};
        rc = exec_on(c, "DELETE FROM tenant_memberships WHERE tenant_id = $1 AND user_id = $2", m,
                     2, &changed, e);
        if (rc == 0 && changed == 0)
            return err_set(e, F3_ENOTFOUND, "user not found");
        const char *u[] = {t->user_id};
        return rc ? rc
                  : exec_on(c,
                            "DELETE FROM users WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM"
                            " tenant_memberships WHERE user_id = $1)",
                            u, 1, NULL, e);
    }
    const char *u[] = {t->user_id};
    rc = exec_on(c, "DELETE FROM users WHERE id = $1", u, 1, &changed, e);
    if (rc == 0 && changed == 0)
        rc = err_set(e, F3_ENOTFOUND, "user not found");
    return rc;
}

int account_remove(db *d, const char *tenant_id, const char *user_id, err *e)
{
    db_conn *c = db_acquire(d, e);
    if (!c)
        return ERRCODE(e);
    remove_tx t = {tenant_id, user_id};
    int rc = db_tx(c, remove_body, &t, e);
    db_release(c);
    return rc;
}

json_t *account_to_json(const account *a)
{
    return json_pack("{s:s, s:s, s:s?, s:s?, s:b, s:b}", "id", a->id, "email", a->email, "tenantId",
                     *a->tenant_id ? a->tenant_id : NULL, "role", *a->role ? a->role : NULL,
                     "isSuperAdmin", a->super_admin, "disabled", a->disabled);
}
