/*
 * connection.c - Sendcloud connections per tenant (table sendcloud_connections): keys
 * sealed with crypto_seal under the service's key, opened only in memory and wiped after
 * use, never logged; and the client built from a connection.
 */
#include "services/shipping/shipping_internal.h"

#include "core/clock.h"
#include "core/str.h"

#include <stdlib.h>
#include <string.h>

static void wipe_free(char *s)
{
    if (s)
        crypto_wipe(s, strlen(s));
    free(s);
}

void shipping_conn_clear(shipping_conn *c)
{
    if (!c)
        return;
    wipe_free(c->public_key);
    wipe_free(c->secret_key);
    wipe_free(c->webhook_secret);
    free(c->api_url);
    free(c->shipping_option_code);
    memset(c, 0, sizeof *c);
}

/* Opens a sealed column; NULL for SQL NULL (rc untouched) or on error (*rc set). */
static char *open_sealed(const uint8_t key[CRYPTO_KEY_LEN], const char *sealed, int *rc, err *e)
{
    if (!sealed || !*sealed)
        return NULL;
    buf plain;
    buf_init(&plain, 0);
    if (crypto_open(key, sealed, &plain, e) != 0) {
        buf_free(&plain);
        *rc = err_set(e, F3_EINVAL,
                      "a stored Sendcloud key does not open with the configured ENCRYPTION_KEY");
        return NULL;
    }
    char *out = buf_detach(&plain);
    if (!out)
        *rc = err_set(e, F3_ENOMEM, "out of memory");
    return out;
}

static char *dup_col(db_stmt *st, int col)
{
    const char *t = db_col_text(st, col);
    return t ? str_dup(t) : NULL;
}

int shipping_conn_load(shipping_service *s, db_conn *c, const char *tenant_id, shipping_conn *out,
                       err *e)
{
    memset(out, 0, sizeof *out);
    const char *t[] = {tenant_id};
    db_stmt *st = db_prepare_texts(
        c,
        "SELECT tenant_id, status, public_key_sealed, secret_key_sealed, webhook_secret_sealed,"
        " api_version, api_url, sender_address_id, shipping_option_code, shipping_method_id,"
        " updated_at FROM sendcloud_connections WHERE tenant_id = $1",
        t, 1, e);
    if (!st)
        return db_err_code(e);
    int rc = db_step(st, e);
    if (rc == DB_DONE)
        rc = F3_ENOTFOUND;
    if (rc == DB_ROW) {
        rc = 0;
        db_col_copy(st, 0, out->tenant_id, sizeof out->tenant_id);
        out->connected = str_eq(db_col_text(st, 1), "CONNECTED");
        out->public_key = open_sealed(s->key, db_col_text(st, 2), &rc, e);
        out->secret_key = rc ? NULL : open_sealed(s->key, db_col_text(st, 3), &rc, e);
        out->webhook_secret = rc ? NULL : open_sealed(s->key, db_col_text(st, 4), &rc, e);
        db_col_copy(st, 5, out->api_version, sizeof out->api_version);
        out->api_url = dup_col(st, 6);
        out->sender_address_id = db_col_int64(st, 7);
        out->shipping_option_code = dup_col(st, 8);
        out->shipping_method_id = db_col_int64(st, 9);
        out->updated_at = db_col_int64(st, 10);
        if (rc == 0 && out->connected && (!out->public_key || !out->secret_key))
            out->connected = false;
    }
    db_finalize(st);
    if (rc)
        shipping_conn_clear(out);
    return rc;
}

static int seal_text(shipping_service *s, const char *plain, buf *out, err *e)
{
    if (!plain || !*plain)
        return 0;
    return crypto_seal(s->key, plain, strlen(plain), out) ? err_set(e, F3_ENOMEM, "out of memory")
                                                          : 0;
}

static int was_connected(db_conn *tx, const char *tenant_id, bool *connected, err *e)
{
    *connected = false;
    const char *t[] = {tenant_id};
    db_stmt *st = db_prepare_texts(
        tx, "SELECT status FROM sendcloud_connections WHERE tenant_id = $1", t, 1, e);
    if (!st)
        return db_err_code(e);
    int rc = db_step(st, e);
    if (rc == DB_ROW)
        *connected = str_eq(db_col_text(st, 0), "CONNECTED");
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

int shipping_conn_save(shipping_service *s, db_conn *tx, const shipping_conn *in,
                       bool *was_connected_out, err *e)
{
    buf pub, sec, hook;
    buf_init(&pub, 0);
    buf_init(&sec, 0);
    buf_init(&hook, 0);
    bool before = false;
    int rc = was_connected(tx, in->tenant_id, &before, e);
    rc = rc ? rc : seal_text(s, in->public_key, &pub, e);
    rc = rc ? rc : seal_text(s, in->secret_key, &sec, e);
    rc = rc ? rc : seal_text(s, in->webhook_secret, &hook, e);
    if (rc)
        goto out;
    char now[24], sender[24], method[24];
    db_ms_text(clock_now_ms(), now);
    db_ms_text(in->sender_address_id, sender);
    db_ms_text(in->shipping_method_id, method);
    const char *t[] = {in->tenant_id,
                       buf_cstr(&pub),
                       buf_cstr(&sec),
                       hook.len ? buf_cstr(&hook) : NULL,
                       in->api_version[0] ? in->api_version : "v3",
                       in->api_url,
                       in->sender_address_id > 0 ? sender : NULL,
                       in->shipping_option_code,
                       in->shipping_method_id > 0 ? method : NULL,
                       now};
    rc = db_exec_texts(
        tx,
        "INSERT INTO sendcloud_connections (tenant_id, public_key_sealed, secret_key_sealed,"
        " webhook_secret_sealed, api_version, api_url, sender_address_id, shipping_option_code,"
        " shipping_method_id, status, connected_at, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS BIGINT), $8, CAST($9 AS BIGINT),"
        " 'CONNECTED', CAST($10 AS BIGINT), CAST($10 AS BIGINT), CAST($10 AS BIGINT))"
        " ON CONFLICT (tenant_id) DO UPDATE SET public_key_sealed = excluded.public_key_sealed,"
        " secret_key_sealed = excluded.secret_key_sealed,"
        " webhook_secret_sealed = excluded.webhook_secret_sealed,"
        " api_version = excluded.api_version, api_url = excluded.api_url,"
        " sender_address_id = excluded.sender_address_id,"
        " shipping_option_code = excluded.shipping_option_code,"
        " shipping_method_id = excluded.shipping_method_id, status = 'CONNECTED',"
        " connected_at = excluded.connected_at, disconnected_at = NULL,"
        " updated_at = excluded.updated_at",
        t, 10, NULL, e);
    if (rc == 0 && was_connected_out)
        *was_connected_out = before;
out:
    buf_free(&pub);
    buf_free(&sec);
    buf_free(&hook);
    return rc;
}

int shipping_conn_disconnect(db_conn *tx, const char *tenant_id, bool *changed, err *e)
{
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *t[] = {tenant_id, now};
    int64_t n = 0;
    int rc = db_exec_texts(tx,
                           "UPDATE sendcloud_connections SET status = 'DISCONNECTED',"
                           " public_key_sealed = NULL, secret_key_sealed = NULL,"
                           " webhook_secret_sealed = NULL, disconnected_at = CAST($2 AS BIGINT),"
                           " updated_at = CAST($2 AS BIGINT)"
                           " WHERE tenant_id = $1 AND status = 'CONNECTED'",
                           t, 2, &n, e);
    *changed = rc == 0 && n > 0;
    return rc;
}

void shipping_tenants_free(char **tenants, size_t n)
{
    for (size_t i = 0; tenants && i < n; i++)
        free(tenants[i]);
    free(tenants);
}

int shipping_conn_tenants(db_conn *c, char ***tenants, size_t *n, err *e)
{
    *tenants = NULL;
    *n = 0;
    db_stmt *st = db_prepare(c,
                             "SELECT tenant_id FROM sendcloud_connections"
                             " WHERE status = 'CONNECTED' ORDER BY tenant_id",
                             e);
    if (!st)
        return db_err_code(e);
    size_t cap = 0;
    int rc;
    while ((rc = db_step(st, e)) == DB_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **grown = realloc(*tenants, ncap * sizeof *grown);
            if (!grown) {
                rc = err_set(e, F3_ENOMEM, "out of memory");
                break;
            }
            *tenants = grown;
            cap = ncap;
        }
        if (!((*tenants)[*n] = str_dup(db_col_text(st, 0)))) {
            rc = err_set(e, F3_ENOMEM, "out of memory");
            break;
        }
        (*n)++;
    }
    db_finalize(st);
    if (rc < 0) {
        shipping_tenants_free(*tenants, *n);
        *tenants = NULL;
        *n = 0;
        return rc;
    }
    return 0;
}

sendcloud_client *shipping_conn_client(shipping_service *s, const shipping_conn *conn,
                                       const char *version, err *e)
{
    if (!conn->connected) {
        err_set(e, F3_EPERMANENT, "Sendcloud is not connected for this tenant");
        return NULL;
    }
    sendcloud_client_opts o = {.base_url = conn->api_url ? conn->api_url : s->api_url,
                               .public_key = conn->public_key,
                               .secret_key = conn->secret_key,
                               .api_version = version && *version ? version : conn->api_version,
                               .timeout_ms = s->timeout_ms};
    return sendcloud_client_new(&o, e);
}
