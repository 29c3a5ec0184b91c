/*
 * connections.c - shop connections and the sealing key (see connections.h).
 */
#include "services/orders/connections.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "core/uuid.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void shop_conn_clear(shop_conn *c)
{
    if (!c)
        return;
    char *secrets[] = {c->api_secret, c->access_token};
    for (size_t i = 0; i < 2; i++)
        if (secrets[i])
            crypto_wipe(secrets[i], strlen(secrets[i]));
    free(c->api_secret);
    free(c->access_token);
    free(c->api_version);
    free(c->api_url);
    memset(c, 0, sizeof *c);
}

/* ---- tenants ------------------------------------------------------------------------ */

static int first_id(db_conn *c, const char *sql, const char *param, char out[65], err *e)
{
    const char *t[] = {param};
    db_stmt *s = db_prepare_texts(c, sql, t, param ? 1 : 0, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    if (rc == DB_ROW)
        db_col_copy(s, 0, out, 65);
    db_finalize(s);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? F3_ENOTFOUND : rc;
}

int shop_default_tenant(db *d, char tenant_id[SHOP_TENANT_ID_MAX + 1], err *e)
{
    db_conn *c = db_acquire(d, e);
    if (!c)
        return db_err_code(e);
    int rc = first_id(c, "SELECT id FROM tenants WHERE slug = $1", "default", tenant_id, e);
    if (rc == F3_ENOTFOUND)
        rc = first_id(c, "SELECT id FROM tenants ORDER BY created_at, id LIMIT 1", NULL, tenant_id,
                      e);
    if (rc == F3_ENOTFOUND) {
        char id[UUID_STR_LEN], now[24];
        uuid_v4(id);
        db_ms_text(clock_now_ms(), now);
        const char *t[] = {id, now};
        rc = db_exec_texts(c,
                           "INSERT INTO tenants (id, name, slug, created_at, updated_at)"
                           " VALUES ($1, 'Default', 'default', CAST($2 AS BIGINT),"
                           " CAST($2 AS BIGINT)) ON CONFLICT (slug) DO NOTHING",
                           t, 2, NULL, e);
        if (rc == 0)
            rc = first_id(c, "SELECT id FROM tenants WHERE slug = $1", "default", tenant_id, e);
    }
    db_release(c);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------ */

static char *open_sealed(const uint8_t key[CRYPTO_KEY_LEN], const char *sealed, int *rc, err *e)
{
    if (!sealed || !*sealed)
        return NULL;
    buf plain;
    buf_init(&plain, 0);
    if (crypto_open(key, sealed, &plain, e) != 0) {
        *rc = err_set(e, F3_EINVAL,
                      "a stored Shopify secret does not open under the configured "
                      "encryption key");
        buf_free(&plain);
        return NULL;
    }
    char *out = str_ndup(plain.data ? plain.data : "", plain.len);
    if (plain.data)
        crypto_wipe(plain.data, plain.len);
    buf_free(&plain);
    if (!out)
        *rc = err_set(e, F3_ENOMEM, "out of memory");
    return out;
}

#define CONN_COLUMNS                                                                               \
    "SELECT tenant_id, shop_domain, status, api_secret_sealed, access_token_sealed,"               \
    " api_version, api_url, last_reconciled_at FROM shop_connections"

static int conn_read_row(db_stmt *s, const uint8_t key[CRYPTO_KEY_LEN], shop_conn *out, err *e)
{
    int rc = 0;
    db_col_copy(s, 0, out->tenant_id, sizeof out->tenant_id);
    db_col_copy(s, 1, out->shop_domain, sizeof out->shop_domain);
    out->connected = str_eq(db_col_text(s, 2), "CONNECTED");
    out->api_secret = open_sealed(key, db_col_text(s, 3), &rc, e);
    if (rc == 0)
        out->access_token = open_sealed(key, db_col_text(s, 4), &rc, e);
    if (rc == 0 && !out->api_secret)
        rc = err_set(e, F3_EINVAL, "the connection of %s has no API secret", out->shop_domain);
    if (rc == 0 && !db_col_is_null(s, 5) && !(out->api_version = str_dup(db_col_text(s, 5))))
        rc = err_set(e, F3_ENOMEM, "out of memory");
    if (rc == 0 && !db_col_is_null(s, 6) && !(out->api_url = str_dup(db_col_text(s, 6))))
        rc = err_set(e, F3_ENOMEM, "out of memory");
    out->last_reconciled_at = db_col_int64(s, 7);
    return rc;
}

static int conn_query(db_conn *c, const uint8_t key[CRYPTO_KEY_LEN], const char *sql,
                      const char *param, shop_conn *out, err *e)
{
    memset(out, 0, sizeof *out);
    const char *t[] = {param};
    db_stmt *s = db_prepare_texts(c, sql, t, 1, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    if (rc == DB_ROW)
        rc = conn_read_row(s, key, out, e);
    else if (rc == DB_DONE)
        rc = err_set(e, F3_ENOTFOUND, "no Shopify connection");
    db_finalize(s);
    if (rc)
        shop_conn_clear(out);
    return rc;
}

int shop_conn_find(db_conn *c, const uint8_t key[CRYPTO_KEY_LEN], const char *shop_domain,
                   shop_conn *out, err *e)
{
    char domain[SHOPIFY_DOMAIN_MAX + 1];
    if (!shop_domain || strlen(shop_domain) > SHOPIFY_DOMAIN_MAX) {
        memset(out, 0, sizeof *out);
        return err_set(e, F3_ENOTFOUND, "unknown shop");
    }
    snprintf(domain, sizeof domain, "%s", shop_domain);
    str_lower(domain);
    return conn_query(c, key, CONN_COLUMNS " WHERE shop_domain = $1", domain, out, e);
}

int shop_conn_of_tenant(db *d, const uint8_t key[CRYPTO_KEY_LEN], const char *tenant_id,
                        shop_conn *out, err *e)
{
    db_conn *c = db_acquire(d, e);
    if (!c) {
        memset(out, 0, sizeof *out);
        return db_err_code(e);
    }
    int rc = conn_query(c, key,
                        CONN_COLUMNS " WHERE tenant_id = $1 AND provider = 'shopify' AND"
                                     " status = 'CONNECTED' ORDER BY created_at LIMIT 1",
                        tenant_id, out, e);
    db_release(c);
    return rc;
}

int shop_conn_connected_domains(db *d, char ***domains, size_t *n, err *e)
{
    *domains = NULL;
    *n = 0;
    db_conn *c = db_acquire(d, e);
    if (!c)
        return db_err_code(e);
    db_stmt *s = db_prepare_texts(c,
                                  "SELECT shop_domain FROM shop_connections WHERE"
                                  " status = 'CONNECTED' ORDER BY shop_domain",
                                  NULL, 0, e);
    int rc = s ? 0 : db_err_code(e);
    while (rc == 0 && (rc = db_step(s, e)) == DB_ROW) {
        char **grown = realloc(*domains, (*n + 1) * sizeof *grown);
        char *one = grown ? str_dup(db_col_text(s, 0)) : NULL;
        if (grown)
            *domains = grown;
        if (!one) {
            rc = err_set(e, F3_ENOMEM, "out of memory");
            break;
        }
        (*domains)[(*n)++] = one;
        rc = 0;
    }
    if (rc == DB_DONE)
        rc = 0;
    db_finalize(s);
    db_release(c);
    if (rc) {
        shop_domains_free(*domains, *n);
        *domains = NULL;
        *n = 0;
    }
    return rc;
}

void shop_domains_free(char **domains, size_t n)
{
    for (size_t i = 0; domains && i < n; i++)
        free(domains[i]);
    free(domains);
}

/* ---- writing ------------------------------------------------------------------------ */

static int seal_text(const uint8_t key[CRYPTO_KEY_LEN], const char *plain, buf *out, err *e)
{
    if (!plain)
        return 0;
    return crypto_seal(key, plain, strlen(plain), out) ? err_set(e, F3_ENOMEM, "out of memory") : 0;
}

typedef struct bootstrap_ctx {
    const uint8_t *key;
    const char *tenant_id, *domain, *secret, *token, *version, *url;
} bootstrap_ctx;

/* Whether the stored access token differs from the configured one. */
static bool token_changed(db_conn *c, const bootstrap_ctx *b)
{
    shop_conn old;
    err ignored;
    if (shop_conn_find(c, b->key, b->domain, &old, &ignored) != 0)
        return true;
    bool changed = !str_eq(old.access_token, b->token);
    shop_conn_clear(&old);
    return changed;
}

static int bootstrap_tx(db_conn *c, void *ctx, err *e)
{
    const bootstrap_ctx *b = ctx;
    char owner[65] = "";
    int rc = first_id(c, "SELECT tenant_id FROM shop_connections WHERE shop_domain = $1", b->domain,
                      owner, e);
    if (rc && rc != F3_ENOTFOUND)
        return rc;
    if (rc == 0 && !str_eq(owner, b->tenant_id))
        return err_set(e, F3_ECONFLICT, "shop %s is connected to another tenant", b->domain);
    bool reconnect = rc == F3_ENOTFOUND || token_changed(c, b);
    buf secret, token;
    buf_init(&secret, 0);
    buf_init(&token, 0);
    rc = seal_text(b->key, b->secret, &secret, e);
    rc = rc ? rc : seal_text(b->key, b->token, &token, e);
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *t[] = {b->domain,
                       b->tenant_id,
                       buf_cstr(&secret),
                       b->token ? buf_cstr(&token) : NULL,
                       b->version,
                       b->url,
                       now,
                       reconnect ? "1" : "0"};
    if (rc == 0)
        rc = db_exec_texts(
            c,
            "INSERT INTO shop_connections (shop_domain, tenant_id, provider, api_secret_sealed,"
            " access_token_sealed, api_version, api_url, status, created_at, updated_at)"
            " VALUES ($1, $2, 'shopify', $3, $4, $5, $6, 'CONNECTED', CAST($7 AS BIGINT),"
            " CAST($7 AS BIGINT))"
            " ON CONFLICT (shop_domain) DO UPDATE SET api_secret_sealed = "
            "excluded.api_secret_sealed,"
            " access_token_sealed = excluded.access_token_sealed, api_version = "
            "excluded.api_version,"
            " api_url = excluded.api_url, updated_at = excluded.updated_at,"
            " status = CASE WHEN $8 = '1' THEN 'CONNECTED' ELSE shop_connections.status END,"
            " disconnected_at = CASE WHEN $8 = '1' THEN NULL"
            " ELSE shop_connections.disconnected_at END",
            t, 8, NULL, e);
    buf_free(&secret);
    buf_free(&token);
    return rc;
}

int shop_conn_bootstrap(db *d, const uint8_t key[CRYPTO_KEY_LEN], const config *c,
                        const char *tenant_id, bool *configured, err *e)
{
    *configured = false;
    const char *domain = config_get(c, "SHOPIFY_SHOP_DOMAIN");
    const char *secret = config_get(c, "SHOPIFY_API_SECRET");
    if (!domain || !secret)
        return 0;
    if (!shopify_shop_domain_valid(domain))
        return err_set(e, F3_EINVAL, "SHOPIFY_SHOP_DOMAIN: expected <name>.myshopify.com");
    char lower[SHOPIFY_DOMAIN_MAX + 1];
    snprintf(lower, sizeof lower, "%s", domain);
    str_lower(lower);
    bootstrap_ctx b = {.key = key,
                       .tenant_id = tenant_id,
                       .domain = lower,
                       .secret = secret,
                       .token = config_get(c, "SHOPIFY_ACCESS_TOKEN"),
                       .version = config_get(c, "SHOPIFY_API_VERSION"),
                       .url = config_get(c, "SHOPIFY_API_URL")};
    db_conn *conn = db_acquire(d, e);
    if (!conn)
        return db_err_code(e);
    int rc = db_tx(conn, bootstrap_tx, &b, e);
    db_release(conn);
    if (rc == 0) {
        *configured = true;
        log_info("Shopify connection configured", "shop", lower, "tenantId", tenant_id);
    }
    return rc;
}

int shop_conn_disconnect(db_conn *tx, const char *tenant_id, const char *shop_domain, bool *changed,
                         err *e)
{
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *t[] = {tenant_id, shop_domain, now};
    int64_t n = 0;
    int rc = db_exec_texts(tx,
                           "UPDATE shop_connections SET status = 'DISCONNECTED',"
                           " disconnected_at = CAST($3 AS BIGINT), updated_at = CAST($3 AS BIGINT)"
                           " WHERE tenant_id = $1 AND shop_domain = $2 AND status = 'CONNECTED'",
                           t, 3, &n, e);
    if (changed)
        *changed = n > 0;
    return rc;
}

int shop_conn_mark_reconciled(db *d, const char *shop_domain, int64_t at_ms, err *e)
{
    db_conn *c = db_acquire(d, e);
    if (!c)
        return db_err_code(e);
    char at[24];
    db_ms_text(at_ms, at);
    const char *t[] = {shop_domain, at};
    int rc = db_exec_texts(c,
                           "UPDATE shop_connections SET last_reconciled_at = CAST($2 AS BIGINT)"
                           " WHERE shop_domain = $1",
                           t, 2, NULL, e);
    db_release(c);
    return rc;
}

shopify_client *shop_conn_client(const shop_conn *c, err *e)
{
    if (!c->access_token) {
        err_set(e, F3_EINVAL, "the connection of %s has no access token", c->shop_domain);
        return NULL;
    }
    shopify_client_opts o = {.shop_domain = c->shop_domain,
                             .api_version = c->api_version,
                             .access_token = c->access_token,
                             .base_url = c->api_url,
                             .timeout_ms = 30000};
    return shopify_client_new(&o, e);
}
