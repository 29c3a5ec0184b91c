/*
 * connection.c - SimplyPrint connections per tenant (table simplyprint_connections), the
 * per-tenant client cache, and PUT/GET/DELETE /api/v1/integrations/simplyprint.
 *
 * The API key and webhook secret are sealed at rest (crypto_seal), opened only in memory,
 * wiped after use, and never logged or answered (the webhook secret is shown once, in the
 * answer to the PUT that set it, so the operator can paste it into SimplyPrint). A client
 * is cached per tenant and per stored version of the row (updated_at, strictly increasing),
 * so a change made by this process or another is picked up on the next call: no restart.
 */
#include "services/print/print_internal.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/secret_key.h"
#include "core/str.h"
#include "services/access/user_context.h"
#include "services/common/eventlog.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRINT_LOG_CONNECTED    "integration.simplyprint-connected"
#define PRINT_LOG_DISCONNECTED "integration.simplyprint-disconnected"
#define API_KEY_MAX            256
#define WEBHOOK_SECRET_MAX     128
#define API_URL_MAX            512

/* ---- sealed values ------------------------------------------------------------------- */

/* Opens sealed into a new string; NULL for NULL/empty input (rc untouched) or on error
 * (*rc set). Caller wipes and frees. */
static char *open_sealed(const print_service *s, const char *sealed, int *rc, err *e)
{
    if (!sealed || !*sealed)
        return NULL;
    buf plain;
    buf_init(&plain, 0);
    if (crypto_open(s->key, sealed, &plain, e) != 0) {
        *rc = err_set(e, F3_EINVAL,
                      "a stored SimplyPrint secret does not open under the configured "
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

static void wipe_free(char *p)
{
    if (p) {
        crypto_wipe(p, strlen(p));
        free(p);
    }
}

static int seal(const print_service *s, const char *plain, buf *out, err *e)
{
    if (!plain)
        return err_set(e, F3_EINVAL, "nothing to seal");
    return crypto_seal(s->key, plain, strlen(plain), out) ? err_set(e, F3_ENOMEM, "out of memory")
                                                          : 0;
}

/* ---- the stored row ------------------------------------------------------------------- */

typedef struct conn_row {
    bool found, connected;
    int64_t version;
    char company_id[32];
    char api_url[API_URL_MAX + 1];
    char *api_key;        /* opened; NULL unless asked for */
    char *webhook_secret; /* opened; NULL unless asked for or none stored */
} conn_row;

static void conn_row_clear(conn_row *r)
{
    wipe_free(r->api_key);
    wipe_free(r->webhook_secret);
    memset(r, 0, sizeof *r);
}

static int conn_read(print_service *s, db_conn *c, const char *tenant_id, bool secrets,
                     conn_row *out, err *e)
{
    memset(out, 0, sizeof *out);
    const char *p[] = {tenant_id};
    db_stmt *st = db_prepare_texts(c,
                                   "SELECT status, updated_at, company_id, api_url,"
                                   " api_key_sealed, webhook_secret_sealed"
                                   " FROM simplyprint_connections WHERE tenant_id = $1",
                                   p, 1, e);
    if (!st)
        return db_err_code(e);
    int rc = db_step(st, e);
    if (rc == DB_ROW) {
        out->found = true;
        out->connected = str_eq(db_col_text(st, 0), "CONNECTED");
        out->version = db_col_int64(st, 1);
        db_col_copy(st, 2, out->company_id, sizeof out->company_id);
        db_col_copy(st, 3, out->api_url, sizeof out->api_url);
        rc = 0;
        if (secrets) {
            out->api_key = open_sealed(s, db_col_text(st, 4), &rc, e);
            if (rc == 0)
                out->webhook_secret = open_sealed(s, db_col_text(st, 5), &rc, e);
        }
    }
    db_finalize(st);
    if (rc < 0)
        conn_row_clear(out);
    return rc < 0 ? rc : 0;
}

static int conn_read_own(print_service *s, const char *tenant_id, bool secrets, conn_row *out,
                         err *e)
{
    memset(out, 0, sizeof *out);
    db_conn *c = db_acquire(s->db, e);
    if (!c)
        return db_err_code(e);
    int rc = conn_read(s, c, tenant_id, secrets, out, e);
    db_release(c);
    return rc;
}

/* ---- the client cache ----------------------------------------------------------------- */

static void retire_locked(print_service *s, void *client)
{
    if (!client)
        return;
    if (s->nretired == s->capretired) {
        size_t ncap = s->capretired ? s->capretired * 2 : 4;
        void **p = realloc(s->retired, ncap * sizeof *p);
        if (!p) {
            /* Nowhere to park it: leaking one client beats freeing one in use. */
            log_error("print service: out of memory retiring a SimplyPrint client");
            return;
        }
        s->retired = p;
        s->capretired = ncap;
    }
    s->retired[s->nretired++] = client;
}

static print_cached_client *cache_find_locked(print_service *s, const char *tenant_id)
{
    for (size_t i = 0; i < s->ncache; i++)
        if (strcmp(s->cache[i].tenant_id, tenant_id) == 0)
            return &s->cache[i];
    return NULL;
}

static void cache_drop(print_service *s, const char *tenant_id)
{
    pthread_mutex_lock(&s->lock);
    print_cached_client *c = cache_find_locked(s, tenant_id);
    if (c) {
        retire_locked(s, c->client);
        *c = s->cache[--s->ncache];
    }
    pthread_mutex_unlock(&s->lock);
}

/* Installs client for (tenant, version); the caller's client is adopted, or freed when a
 * client of this version is there already (*use receives the one to use). */
static int cache_put(print_service *s, const char *tenant_id, int64_t version, void *client,
                     void **use, err *e)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    print_cached_client *c = cache_find_locked(s, tenant_id);
    if (c && c->version == version) {
        *use = c->client;
        pthread_mutex_unlock(&s->lock);
        s->provider->client_free(client);
        return 0;
    }
    if (!c && s->ncache == s->capcache) {
        size_t ncap = s->capcache ? s->capcache * 2 : 4;
        print_cached_client *p = realloc(s->cache, ncap * sizeof *p);
        if (!p) {
            rc = err_set(e, F3_ENOMEM, "out of memory");
            goto out;
        }
        s->cache = p;
        s->capcache = ncap;
    }
    if (!c) {
        c = &s->cache[s->ncache++];
        memset(c, 0, sizeof *c);
        snprintf(c->tenant_id, sizeof c->tenant_id, "%s", tenant_id);
    }
    retire_locked(s, c->client);
    c->client = client;
    c->version = version;
    *use = client;
    client = NULL;
out:
    pthread_mutex_unlock(&s->lock);
    if (client)
        s->provider->client_free(client);
    return rc;
}

void print_conn_cache_free(print_service *s)
{
    for (size_t i = 0; i < s->ncache; i++)
        s->provider->client_free(s->cache[i].client);
    for (size_t i = 0; i < s->nretired; i++)
        s->provider->client_free(s->retired[i]);
    free(s->cache);
    free(s->retired);
    s->cache = NULL;
    s->retired = NULL;
    s->ncache = s->capcache = s->nretired = s->capretired = 0;
}

/* A provider client for the opened row (the client copies what it keeps). */
static void *new_client(print_service *s, const conn_row *row, err *e)
{
    sp_client_opts o = {.api_url = row->api_url[0] ? row->api_url : NULL,
                        .company_id = row->company_id,
                        .api_key = row->api_key};
    /* client_new copies the options (provider.h): nothing points into o afterwards. */
    // cppcheck-suppress returnDanglingLifetime
    return s->provider->client_new(&o, e);
}

int print_service_client(print_service *s, const char *tenant_id, void **client, err *e)
{
    *client = NULL;
    conn_row row;
    int rc = conn_read_own(s, tenant_id, false, &row, e);
    if (rc)
        return rc;
    if (!row.connected) {
        cache_drop(s, tenant_id);
        return err_set(e, F3_ENOTFOUND, "SimplyPrint is not connected for this tenant");
    }
    pthread_mutex_lock(&s->lock);
    print_cached_client *c = cache_find_locked(s, tenant_id);
    if (c && c->version == row.version)
        *client = c->client;
    pthread_mutex_unlock(&s->lock);
    if (*client)
        return 0;
    rc = conn_read_own(s, tenant_id, true, &row, e);
    if (rc == 0 && (!row.connected || !row.api_key))
        rc = err_set(e, F3_ENOTFOUND, "SimplyPrint is not connected for this tenant");
    void *fresh = rc == 0 ? new_client(s, &row, e) : NULL;
    if (rc == 0 && !fresh)
        rc = e && e->code ? e->code : F3_EINVAL;
    if (rc == 0) {
        rc = cache_put(s, tenant_id, row.version, fresh, client, e);
        if (rc == 0)
            log_info("SimplyPrint client initialised", "tenantId", tenant_id, "companyId",
                     row.company_id);
    }
    conn_row_clear(&row);
    return rc;
}

/* ---- connect / disconnect ------------------------------------------------------------ */

static bool digits(const char *s)
{
    if (!s || !*s || strlen(s) > 20)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

static int check_rq(const print_connect_rq *rq, err *e)
{
    if (!digits(rq->company_id))
        return err_set(e, F3_EINVAL, "companyId: must be the SimplyPrint company id (digits)");
    if (!rq->api_key || !*rq->api_key || strlen(rq->api_key) > API_KEY_MAX ||
        strpbrk(rq->api_key, " \t\r\n"))
        return err_set(e, F3_EINVAL,
                       "apiKey: must be a SimplyPrint API key (1-%d characters, no "
                       "spaces)",
                       API_KEY_MAX);
    if (rq->api_url &&
        (strlen(rq->api_url) > API_URL_MAX ||
         !(str_starts_with(rq->api_url, "https://") || str_starts_with(rq->api_url, "http://")) ||
         strpbrk(rq->api_url, " \t\r\n\"<>")))
        return err_set(e, F3_EINVAL, "apiUrl: must be an http(s) URL");
    if (rq->webhook_secret &&
        (!*rq->webhook_secret || strlen(rq->webhook_secret) > WEBHOOK_SECRET_MAX))
        return err_set(e, F3_EINVAL, "webhookSecret: must be 1-%d characters", WEBHOOK_SECRET_MAX);
    return 0;
}

/* Asks SimplyPrint whether the key is valid for the company (no transaction is open). */
static int test_credentials(print_service *s, const print_connect_rq *rq, err *e)
{
    sp_client_opts o = {
        .api_url = rq->api_url, .company_id = rq->company_id, .api_key = rq->api_key};
    void *c = s->provider->client_new(&o, e);
    if (!c)
        return err_set(e, F3_EINVAL, "SimplyPrint settings are unusable: %s", e ? e->msg : "");
    sp_call call;
    memset(&call, 0, sizeof call);
    int rc = s->provider->account_test(c, &call, e);
    s->provider->client_free(c);
    if (rc == F3_EPERMANENT || (rc && call.failure == HTTP_PERMANENT))
        return err_set(e, F3_EPERMANENT, "SimplyPrint refused the credentials%s%s",
                       call.message[0] ? ": " : "", call.message);
    if (rc)
        return err_set(e, F3_ETRANSIENT,
                       "SimplyPrint could not be reached to check the "
                       "credentials; try again");
    return 0;
}

static int publish_changed(print_service *s, db_conn *tx, const char *tenant_id, const char *action,
                           err *e)
{
    json_t *f = json_pack("{s:s}", "action", action);
    int rc = f ? bus_publish(s->bus, tx, BUS_EV_INTEGRATION_SIMPLYPRINT_CHANGED, tenant_id, f, e)
               : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(f);
    return rc;
}

typedef struct tx_ctx {
    print_service *s;
    const char *tenant_id;
    const char *user_id;
    const print_connect_rq *rq;
    const char *key_sealed, *secret_sealed;
    bool changed;
} tx_ctx;

static int connect_body(db_conn *c, void *ctx, err *e)
{
    tx_ctx *t = ctx;
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *p[] = {t->tenant_id,   t->rq->company_id, t->key_sealed,
                       t->rq->api_url, t->secret_sealed,  now};
    int rc = db_exec_texts(
        c,
        "INSERT INTO simplyprint_connections (tenant_id, company_id, api_key_sealed, api_url,"
        " webhook_secret_sealed, status, connected_at, created_at, updated_at) VALUES ($1, $2,"
        " $3, $4, $5, 'CONNECTED', CAST($6 AS BIGINT), CAST($6 AS BIGINT), CAST($6 AS BIGINT))"
        " ON CONFLICT (tenant_id) DO UPDATE SET company_id = excluded.company_id,"
        " api_key_sealed = excluded.api_key_sealed, api_url = excluded.api_url,"
        " webhook_secret_sealed = excluded.webhook_secret_sealed, status = 'CONNECTED',"
        " connected_at = excluded.connected_at, disconnected_at = NULL,"
        " updated_at = CASE WHEN excluded.updated_at > simplyprint_connections.updated_at"
        " THEN excluded.updated_at ELSE simplyprint_connections.updated_at + 1 END",
        p, 6, NULL, e);
    if (rc)
        return rc;
    json_t *meta =
        json_pack("{s:s,s:s?}", "companyId", t->rq->company_id, "apiUrl", t->rq->api_url);
    eventlog_entry en = {.tenant_id = t->tenant_id,
                         .event_type = PRINT_LOG_CONNECTED,
                         .severity = EVENTLOG_INFO,
                         .message = "SimplyPrint connected",
                         .user_id = t->user_id,
                         .metadata = meta};
    rc = meta ? eventlog_write(c, &en, NULL, e) : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(meta);
    return rc ? rc : publish_changed(t->s, c, t->tenant_id, "connected", e);
}

int print_in_tx(print_service *s, db_tx_fn fn, void *ctx, err *e)
{
    db_conn *c = db_acquire(s->db, e);
    if (!c)
        return db_err_code(e);
    int rc = db_tx(c, fn, ctx, e);
    db_release(c);
    return rc;
}

int print_service_connect(print_service *s, const char *tenant_id, const print_connect_rq *rq,
                          char *secret_out, err *e)
{
    int rc = check_rq(rq, e);
    if (rc == 0 && !rq->skip_test)
        rc = test_credentials(s, rq, e);
    if (rc)
        return rc;
    conn_row old;
    char *secret = NULL;
    rc = conn_read_own(s, tenant_id, true, &old, e);
    if (rc)
        return rc;
    if (rq->webhook_secret) {
        secret = str_dup(rq->webhook_secret);
    } else if (old.webhook_secret) {
        secret = old.webhook_secret;
        old.webhook_secret = NULL;
    } else {
        buf hex;
        buf_init(&hex, 0);
        uint8_t raw[32];
        crypto_random(raw, sizeof raw);
        if (crypto_hex_encode(raw, sizeof raw, &hex) == 0)
            secret = buf_detach(&hex);
        crypto_wipe(raw, sizeof raw);
        buf_free(&hex);
    }
    conn_row_clear(&old);
    buf ks, ss;
    buf_init(&ks, 0);
    buf_init(&ss, 0);
    if (!secret)
        rc = err_set(e, F3_ENOMEM, "out of memory");
    rc = rc ? rc : seal(s, rq->api_key, &ks, e);
    rc = rc ? rc : seal(s, secret, &ss, e);
    if (rc == 0) {
        tx_ctx t = {.s = s,
                    .tenant_id = tenant_id,
                    .user_id = rq->user_id,
                    .rq = rq,
                    .key_sealed = buf_cstr(&ks),
                    .secret_sealed = buf_cstr(&ss)};
        rc = print_in_tx(s, connect_body, &t, e);
    }
    if (rc == 0) {
        cache_drop(s, tenant_id);
        log_info("SimplyPrint connected", "tenantId", tenant_id, "companyId", rq->company_id);
        if (secret_out)
            snprintf(secret_out, 65, "%s", secret);
    }
    buf_free(&ks);
    buf_free(&ss);
    wipe_free(secret);
    return rc;
}

static int disconnect_body(db_conn *c, void *ctx, err *e)
{
    tx_ctx *t = ctx;
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *p[] = {t->tenant_id, now};
    int64_t n = 0;
    int rc = db_exec_texts(c,
                           "UPDATE simplyprint_connections SET status = 'DISCONNECTED',"
                           " disconnected_at = CAST($2 AS BIGINT), updated_at = CASE WHEN"
                           " CAST($2 AS BIGINT) > updated_at THEN CAST($2 AS BIGINT)"
                           " ELSE updated_at + 1 END"
                           " WHERE tenant_id = $1 AND status = 'CONNECTED'",
                           p, 2, &n, e);
    if (rc)
        return rc;
    if (n == 0)
        return err_set(e, F3_ENOTFOUND, "SimplyPrint is not connected");
    eventlog_entry en = {.tenant_id = t->tenant_id,
                         .event_type = PRINT_LOG_DISCONNECTED,
                         .severity = EVENTLOG_WARNING,
                         .message = "SimplyPrint disconnected: print jobs are not submitted "
                                    "until it is connected again",
                         .user_id = t->user_id};
    rc = eventlog_write(c, &en, NULL, e);
    return rc ? rc : publish_changed(t->s, c, t->tenant_id, "disconnected", e);
}

int print_service_disconnect(print_service *s, const char *tenant_id, const char *user_id, err *e)
{
    tx_ctx t = {.s = s, .tenant_id = tenant_id, .user_id = user_id};
    int rc = print_in_tx(s, disconnect_body, &t, e);
    if (rc == 0) {
        cache_drop(s, tenant_id);
        log_info("SimplyPrint disconnected", "tenantId", tenant_id);
    }
    return rc;
}

/* Settings seed a tenant's connection only when it has none: once stored, the connection
 * is the operator's (changed or disconnected through the API) and a restart must not put
 * the settings back over it. */
int print_conn_bootstrap(print_service *s, const config *c, const char *tenant_id, err *e)
{
    print_connect_rq rq = {.company_id = config_get(c, "SIMPLYPRINT_COMPANY_ID"),
                           .api_key = config_get(c, "SIMPLYPRINT_API_KEY"),
                           .api_url = config_get(c, "SIMPLYPRINT_API_URL"),
                           .webhook_secret = config_get(c, "SIMPLYPRINT_WEBHOOK_SECRET"),
                           .skip_test = true};
    if (!tenant_id || !rq.company_id || !rq.api_key)
        return 0;
    conn_row old;
    int rc = conn_read_own(s, tenant_id, true, &old, e);
    if (rc)
        return rc;
    bool found = old.found, connected = old.connected;
    bool same = str_eq(old.company_id, rq.company_id) && old.api_key &&
                str_eq(old.api_key, rq.api_key) &&
                str_eq(old.api_url, rq.api_url ? rq.api_url : "") &&
                (!rq.webhook_secret ||
                 (old.webhook_secret && str_eq(old.webhook_secret, rq.webhook_secret)));
    conn_row_clear(&old);
    if (found) {
        log_info("SimplyPrint connection kept: the tenant has one, SIMPLYPRINT_* settings not "
                 "applied (change it through the API)",
                 "tenantId", tenant_id, "status", connected ? "CONNECTED" : "DISCONNECTED",
                 "settingsDiffer", same ? "false" : "true");
        return 0;
    }
    rc = print_service_connect(s, tenant_id, &rq, NULL, e);
    if (rc == 0)
        log_info("SimplyPrint connection seeded from SIMPLYPRINT_* settings", "tenantId",
                 tenant_id);
    return rc;
}

int print_conn_webhook_secret(print_service *s, const char *tenant_id, char out[129], err *e)
{
    out[0] = '\0';
    conn_row row;
    int rc = conn_read_own(s, tenant_id, true, &row, e);
    if (rc == 0 && (!row.connected || !row.webhook_secret))
        rc = err_set(e, F3_ENOTFOUND, "SimplyPrint is not connected for this tenant");
    if (rc == 0)
        snprintf(out, 129, "%s", row.webhook_secret);
    conn_row_clear(&row);
    return rc;
}

int print_conn_tenants(print_service *s, char ***ids, size_t *n, err *e)
{
    *ids = NULL;
    *n = 0;
    db_conn *c = db_acquire(s->db, e);
    if (!c)
        return db_err_code(e);
    db_stmt *st = db_prepare(c,
                             "SELECT tenant_id FROM simplyprint_connections"
                             " WHERE status = 'CONNECTED' ORDER BY tenant_id",
                             e);
    int rc = st ? 0 : db_err_code(e);
    size_t cap = 0;
    while (rc == 0 && (rc = db_step(st, e)) == DB_ROW) {
        rc = 0;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **p = realloc(*ids, ncap * sizeof *p);
            if (!p) {
                rc = err_set(e, F3_ENOMEM, "out of memory");
                break;
            }
            *ids = p;
            cap = ncap;
        }
        if (!((*ids)[*n] = str_dup(db_col_text(st, 0))))
            rc = err_set(e, F3_ENOMEM, "out of memory");
        else
            (*n)++;
    }
    db_finalize(st);
    db_release(c);
    if (rc < 0) {
        print_conn_tenants_free(*ids, *n);
        *ids = NULL;
        *n = 0;
        return rc;
    }
    return 0;
}

void print_conn_tenants_free(char **ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}

int print_conn_only_tenant(print_service *s, char out[PRINT_TENANT_MAX + 1], err *e)
{
    char **ids = NULL;
    size_t n = 0;
    int rc = print_conn_tenants(s, &ids, &n, e);
    if (rc == 0 && n == 0)
        rc = err_set(e, F3_ENOTFOUND, "no tenant has SimplyPrint connected");
    else if (rc == 0 && n > 1)
        rc = err_set(e, F3_ECONFLICT, "several tenants have SimplyPrint connected: add ?tenant=");
    else if (rc == 0)
        snprintf(out, PRINT_TENANT_MAX + 1, "%s", ids[0]);
    print_conn_tenants_free(ids, n);
    return rc;
}

/* ---- HTTP ---------------------------------------------------------------------------- */

static const char *req_tenant(http_request *req, http_response *res, const char **user_id)
{
    const user_ctx *u = user_ctx_of(req);
    if (!u || !u->tenant_id[0]) {
        http_res_error(res, 401, "Authentication required");
        return NULL;
    }
    if (user_id)
        *user_id = u->user_id[0] ? u->user_id : NULL;
    return u->tenant_id;
}

/* A string field, or a number given for a string (companyId). */
static const char *text_field(const json_t *body, const char *name, char tmp[32])
{
    json_t *v = json_object_get(body, name);
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        snprintf(tmp, 32, "%lld", (long long)json_integer_value(v));
        return tmp;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

static int connect_status(int rc)
{
    switch (rc) {
    case F3_EINVAL:
        return 400;
    case F3_EPERMANENT:
        return 422;
    case F3_ETRANSIENT:
        return 502;
    default:
        return 503;
    }
}

int print_h_integration_put(http_request *req, http_response *res, void *ctx)
{
    print_service *s = ctx;
    const char *user = NULL;
    const char *tenant = req_tenant(req, res, &user);
    if (!tenant)
        return 0;
    json_t *body = NULL;
    int rc = http_req_json(req, &body, res);
    if (rc)
        return rc == F3_EINVAL ? 0 : rc;
    char tmp[32];
    err e;
    err_clear(&e);
    print_connect_rq rq = {.company_id = text_field(body, "companyId", tmp),
                           .api_key = json_string_value(json_object_get(body, "apiKey")),
                           .api_url = json_string_value(json_object_get(body, "apiUrl")),
                           .webhook_secret =
                               json_string_value(json_object_get(body, "webhookSecret")),
                           .user_id = user};
    char secret[65] = "";
    const char *bad = NULL;
    const char *optional[] = {"apiUrl", "webhookSecret"};
    for (size_t i = 0; json_is_object(body) && i < 2; i++) {
        json_t *v = json_object_get(body, optional[i]);
        if (v && !json_is_null(v) &&
            (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)))
            bad = optional[i];
    }
    if (!json_is_object(body))
        rc = http_res_error(res, 400, "body: must be a JSON object");
    else if (bad)
        rc = http_res_error(res, 400, "%s: must be a string", bad);
    else if ((rc = print_service_connect(s, tenant, &rq, secret, &e)) != 0) {
        log_warn("SimplyPrint connection refused", "tenantId", tenant, "reason", e.msg);
        rc = http_res_error(res, connect_status(rc), "%s", e.msg);
    } else
        rc = http_res_json(res, 200,
                           json_pack("{s:b,s:s,s:s?,s:s}", "connected", 1, "companyId",
                                     rq.company_id, "apiUrl", rq.api_url, "webhookSecret", secret));
    crypto_wipe(secret, sizeof secret);
    json_decref(body);
    return rc;
}

int print_h_integration_get(http_request *req, http_response *res, void *ctx)
{
    print_service *s = ctx;
    const char *tenant = req_tenant(req, res, NULL);
    if (!tenant)
        return 0;
    err e;
    err_clear(&e);
    conn_row row;
    if (conn_read_own(s, tenant, true, &row, &e) != 0) {
        log_error("SimplyPrint connection read failed", "reason", e.msg);
        return http_res_error(res, 503, "The database is unavailable");
    }
    json_t *o = json_pack("{s:b,s:s,s:s?,s:s?,s:b}", "connected", row.connected, "status",
                          !row.found      ? "NOT_CONFIGURED"
                          : row.connected ? "CONNECTED"
                                          : "DISCONNECTED",
                          "companyId", row.found ? row.company_id : NULL, "apiUrl",
                          row.api_url[0] ? row.api_url : NULL, "webhookSecretSet",
                          row.webhook_secret != NULL);
    conn_row_clear(&row);
    return http_res_json(res, 200, o);
}

int print_h_integration_delete(http_request *req, http_response *res, void *ctx)
{
    print_service *s = ctx;
    const char *user = NULL;
    const char *tenant = req_tenant(req, res, &user);
    if (!tenant)
        return 0;
    err e;
    err_clear(&e);
    int rc = print_service_disconnect(s, tenant, user, &e);
    if (rc == F3_ENOTFOUND)
        return http_res_error(res, 404, "SimplyPrint is not connected");
    if (rc) {
        log_error("SimplyPrint disconnect failed", "reason", e.msg);
        return http_res_error(res, 503, "The database is unavailable");
    }
    return http_res_json(res, 200, json_pack("{s:b}", "connected", 0));
}
