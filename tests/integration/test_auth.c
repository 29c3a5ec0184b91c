/* F3_TEST: backends
 * test_auth.c - the gateway's guard, sessions, rate limits and admin API over a
 * real HTTP server in this process (port 0) and a fresh database: login and its
 * failures, cookies, /me, logout, rotation, idle and absolute expiry (a fake
 * clock), session list and revoke, the RBAC matrix, deny by default, CSRF,
 * 429s, login throttling without account enumeration, the internal key, tenant
 * isolation, the audit log, security headers, and no secret in any log line.
 */
#include "support/f3test.h"
#include "support/f3test_db.h"
#include "support/f3test_http.h"

#include "core/buf.h"
#include "core/log.h"
#include "db/db.h"
#include "http/request.h"
#include "http/response.h"
#include "http/server.h"
#include "services/gateway/accounts.h"
#include "services/gateway/auth.h"
#include "services/gateway/health.h"
#include "services/access/permissions.h"
#include "services/access/user_context.h"

#include <jansson.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE ((int64_t)60 * 1000)
#define HOUR   (60 * MINUTE)
#define PW     "correct horse battery staple"
#define IKEY   "internal-key-0123456789abcdef"
#define ORIGIN "http://app.test"

static const char *backend;
static _Atomic int64_t fake_now = 1800000000000;

static int64_t clock_fake(void)
{
    return atomic_load(&fake_now);
}

static void advance(int64_t ms)
{
    atomic_fetch_add(&fake_now, ms);
}

/* Every secret the tests handle, to look for in the log at the end. */
static char *secrets[256];
static size_t nsecrets;

static void remember_secret(const char *s)
{
    if (nsecrets < sizeof secrets / sizeof secrets[0])
        secrets[nsecrets++] = strdup(s);
}

typedef struct world {
    char *url;
    db *d;
    char tenant_a[65], tenant_b[65];
    account admin_a, op_a, viewer_a, admin_b;
    FILE *log;
} world;

static world W;

/* ---- the server of one test ----------------------------------------------- */

typedef struct fixture {
    session_store *sessions;
    ratelimit *limits;
    auth *a;
    http_router *router;
    http_server *server;
    health_ctx health;
    int port;
} fixture;

static int h_probe(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    const user_ctx *u = user_ctx_of(req);
    return http_res_json(res, 200,
                         json_pack("{s:s?, s:s?}", "userId", u ? u->user_id : NULL, "tenantId",
                                   u ? u->tenant_id : NULL));
}

/* What a service behind the distributed gateway would read. */
static int h_from_headers(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    user_ctx *u = user_ctx_from_headers(req);
    if (!u)
        return http_res_error(res, 400, "no user context");
    json_t *j = user_ctx_to_json(u);
    user_ctx_free(u);
    return http_res_json(res, 200, j);
}

/* One test route per route class. */
static const char *const matrix_perms[] = {
    PERM_ORDERS_READ,    PERM_ORDERS_WRITE, PERM_PRINT_JOBS_WRITE, PERM_SHIPMENTS_READ,
    PERM_MAPPINGS_WRITE, PERM_QUEUES_ADMIN, PERM_USERS_MANAGE,     PERM_INTEGRATIONS_MANAGE,
};
#define NMATRIX (sizeof matrix_perms / sizeof matrix_perms[0])

static void fixture_start(fixture *f, const auth_opts *custom)
{
    memset(f, 0, sizeof *f);
    session_limits sl = {30 * MINUTE, 24 * HOUR};
    f->sessions = session_store_db_new(W.d, &sl);
    f->limits = ratelimit_memory_new(0);
    auth_opts o = {
        .store = W.d,
        .sessions = f->sessions,
        .limits = f->limits,
        .app_url = ORIGIN,
        .internal_key = IKEY,
        .per_ip = {10000, MINUTE},
        .per_user = {10000, MINUTE},
        .login = {1000, MINUTE},
        .max_failures_account = 100,
        .max_failures_ip = 1000,
        .now_ms = clock_fake,
    };
    if (custom) {
        o.per_ip = custom->per_ip.burst ? custom->per_ip : o.per_ip;
        o.per_user = custom->per_user.burst ? custom->per_user : o.per_user;
        o.login = custom->login.burst ? custom->login : o.login;
        o.max_failures_account =
            custom->max_failures_account ? custom->max_failures_account : o.max_failures_account;
        o.max_failures_ip = custom->max_failures_ip ? custom->max_failures_ip : o.max_failures_ip;
        o.app_url = custom->app_url ? custom->app_url : o.app_url;
        o.internal_key = custom->internal_key ? custom->internal_key : o.internal_key;
    }
    err e = {0};
    f->a = auth_new(&o, &e);
    assert_non_null(f->a);
    f->router = http_router_new();
    f->health.store = W.d;
    assert_int_equal(health_add_routes(f->router, &f->health, &e), 0);
    assert_int_equal(auth_add_routes(f->router, f->a, &e), 0);
    assert_int_equal(auth_add_admin_routes(f->router, f->a, &e), 0);
    static char paths[NMATRIX][64];
    http_route rows[NMATRIX * 2];
    for (size_t i = 0; i < NMATRIX; i++) {
        snprintf(paths[i], sizeof paths[i], "/api/v1/test/%s", matrix_perms[i]);
        rows[2 * i] = (http_route){"GET", paths[i], h_probe, NULL, matrix_perms[i]};
        rows[2 * i + 1] = (http_route){"POST", paths[i], h_probe, NULL, matrix_perms[i]};
    }
    assert_int_equal(http_router_add(f->router, rows, NMATRIX * 2, &e), 0);
    const http_route extra[] = {
        {"GET", "/api/v1/test/undeclared", h_probe, NULL, NULL}, /* declares nothing */
        {"GET", "/api/v1/test/unknown-permission", h_probe, NULL, "orders.obliterate"},
        {"GET", "/api/v1/test/session", h_probe, NULL, HTTP_ACCESS_SESSION},
        {"GET", "/static/app.js", h_probe, NULL, HTTP_ACCESS_PUBLIC},
        {"POST", "/api/v1/webhooks/test", h_probe, NULL, HTTP_ACCESS_WEBHOOK},
        {"GET", "/internal/ping", h_probe, NULL, HTTP_ACCESS_INTERNAL},
        {"GET", "/internal/whoami", h_from_headers, NULL, HTTP_ACCESS_INTERNAL},
        {"GET", "/internal/public-by-mistake", h_probe, NULL, HTTP_ACCESS_PUBLIC},
        {"GET", "/api/v1/internal-elsewhere", h_probe, NULL, HTTP_ACCESS_INTERNAL},
    };
    assert_int_equal(http_router_add(f->router, extra, sizeof extra / sizeof extra[0], &e), 0);
    http_server_opts so = {.host = "127.0.0.1",
                           .port = 0,
                           .threads = 2,
                           .guard = auth_guard,
                           .guard_ctx = f->a,
                           .on_response = auth_security_headers,
                           .on_response_ctx = f->a};
    f->server = http_server_start(f->router, &so, &e);
    assert_non_null(f->server);
    f->port = http_server_port(f->server);
}

static void fixture_stop(fixture *f)
{
    http_server_stop(f->server);
    http_router_free(f->router);
    auth_free(f->a);
    ratelimit_free(f->limits);
    session_store_free(f->sessions);
}

/* ---- requests ------------------------------------------------------------- */

typedef struct call {
    const char *method;
    const char *path;
    const char *token;  /* session cookie value, or NULL */
    const char *origin; /* Origin header; NULL: ORIGIN for state-changing calls, "" for none */
    const char *body;   /* JSON, or NULL */
    const char *extra;  /* more header lines ("Name: v\r\n"), or NULL */
} call;

static void send_call(const fixture *f, const call *c, f3test_http_response *r)
{
    buf b;
    buf_init(&b, 0);
    bool changing = strcmp(c->method, "GET") != 0;
    const char *origin = c->origin ? c->origin : changing ? ORIGIN : "";
    buf_printf(&b, "%s %s HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n", c->method, c->path);
    if (c->token)
        buf_printf(&b, "Cookie: theme=dark; f3_session=%s\r\n", c->token);
    if (*origin)
        buf_printf(&b, "Origin: %s\r\n", origin);
    if (c->extra)
        buf_puts(&b, c->extra);
    if (c->body)
        buf_printf(&b, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   strlen(c->body), c->body);
    else
        buf_puts(&b, changing ? "Content-Length: 0\r\n\r\n" : "\r\n");
    memset(r, 0, sizeof *r);
    assert_int_equal(f3test_http_request(f->port, buf_cstr(&b), r), 0);
    buf_free(&b);
}

static int status_of(const fixture *f, const call *c)
{
    f3test_http_response r;
    send_call(f, c, &r);
    int st = r.status;
    f3test_http_response_free(&r);
    return st;
}

static int login_raw(const fixture *f, const char *email, const char *pw, const char *old_token,
                     f3test_http_response *r)
{
    char body[512];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, pw);
    call c = {"POST", "/api/v1/auth/login", old_token, NULL, body, NULL};
    send_call(f, &c, r);
    return r->status;
}

/* Logs in and returns the session token (caller frees). */
static char *login(const fixture *f, const char *email)
{
    f3test_http_response r;
    assert_int_equal(login_raw(f, email, PW, NULL, &r), 200);
    const char *sc = f3test_http_header_get(&r, "Set-Cookie");
    assert_non_null(sc);
    assert_true(strncmp(sc, "f3_session=", 11) == 0);
    size_t n = strcspn(sc + 11, ";");
    char *tok = strndup(sc + 11, n);
    remember_secret(tok);
    f3test_http_response_free(&r);
    return tok;
}

static json_t *call_json(const fixture *f, const call *c, int expect_status)
{
    f3test_http_response r;
    send_call(f, c, &r);
    if (r.status != expect_status)
        fail_msg("%s %s: status %d, expected %d: %s", c->method, c->path, r.status, expect_status,
                 r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    f3test_http_response_free(&r);
    assert_non_null(j);
    return j;
}

/* ---- the world: one database, two tenants, four users --------------------- */

static void make_user(const char *tenant, const char *email, const char *role, account *out)
{
    err e = {0};
    if (account_create(W.d, tenant, email, role, PW, false, out, &e) != 0)
        fail_msg("account_create %s: %s", email, e.msg);
}

static int world_setup(void **state)
{
    (void)state;
    W.log = tmpfile();
    log_set_stream(W.log);
    log_set_level(LOG_TRACE);
    remember_secret(PW);
    remember_secret(IKEY);
    W.url = f3test_db_url(backend);
    err e = {0};
    if (db_open(W.url, NULL, &W.d, &e) != 0 || db_migrate(W.d, NULL, &e) != 0)
        fail_msg("database: %s", e.msg);
    assert_int_equal(account_default_tenant(W.d, W.tenant_a, &e), 0);
    assert_int_equal(account_tenant_resolve(W.d, "tenant-b", true, W.tenant_b, &e), 0);
    make_user(W.tenant_a, "Admin@A.example", "admin", &W.admin_a);
    make_user(W.tenant_a, "op@a.example", "operator", &W.op_a);
    make_user(W.tenant_a, "viewer@a.example", "viewer", &W.viewer_a);
    make_user(W.tenant_b, "admin@b.example", "admin", &W.admin_b);
    return 0;
}

static int world_teardown(void **state)
{
    (void)state;
    db_close(W.d);
    f3test_db_drop(W.url);
    free(W.url);
    log_set_stream(NULL);
    fclose(W.log);
    for (size_t i = 0; i < nsecrets; i++)
        free(secrets[i]);
    return 0;
}

static void assert_security_headers(const f3test_http_response *r)
{
    assert_string_equal(f3test_http_header_get(r, "X-Content-Type-Options"), "nosniff");
    assert_string_equal(f3test_http_header_get(r, "X-Frame-Options"), "DENY");
    assert_non_null(f3test_http_header_get(r, "Content-Security-Policy"));
    assert_non_null(f3test_http_header_get(r, "Referrer-Policy"));
}

/* ---- login, cookies, me, logout ------------------------------------------- */

static void test_login_sets_a_hardened_cookie_and_me_answers(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    f3test_http_response r;
    assert_int_equal(login_raw(&f, "ADMIN@a.example", PW, NULL, &r), 200);
    const char *sc = f3test_http_header_get(&r, "Set-Cookie");
    assert_non_null(sc);
    assert_non_null(strstr(sc, "; HttpOnly"));
    assert_non_null(strstr(sc, "; SameSite=Lax"));
    assert_non_null(strstr(sc, "; Path=/"));
    assert_non_null(strstr(sc, "Max-Age=86400"));
    assert_null(strstr(sc, "Secure")); /* APP_URL is http here */
    assert_null(strstr(sc, "Domain"));
    size_t toklen = strcspn(sc + 11, ";");
    assert_true(toklen >= 43); /* >= 256 bits of base64url */
    assert_string_equal(f3test_http_header_get(&r, "Cache-Control"), "no-store");
    f3test_http_response_free(&r);

    char *tok = login(&f, "admin@a.example");
    call me = {"GET", "/api/v1/auth/me", tok, NULL, NULL, NULL};
    json_t *j = call_json(&f, &me, 200);
    json_t *u = json_object_get(j, "user");
    assert_string_equal(json_string_value(json_object_get(u, "userId")), W.admin_a.id);
    assert_string_equal(json_string_value(json_object_get(u, "tenantId")), W.tenant_a);
    assert_string_equal(json_string_value(json_object_get(u, "email")), "admin@a.example");
    assert_string_equal(json_string_value(json_array_get(json_object_get(u, "roles"), 0)), "admin");
    assert_true(json_array_size(json_object_get(u, "permissions")) == rbac_permission_count());
    json_decref(j);
    call anon = {"GET", "/api/v1/auth/me", NULL, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &anon), 401);
    call bogus = {"GET", "/api/v1/auth/me", "not-a-session", NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &bogus), 401);
    free(tok);
    fixture_stop(&f);
}

static void test_secure_cookie_with_https_app_url(void **state)
{
    (void)state;
    fixture f;
    auth_opts o = {.app_url = "https://app.test"};
    fixture_start(&f, &o);
    char body[200];
    snprintf(body, sizeof body, "{\"email\":\"op@a.example\",\"password\":\"%s\"}", PW);
    call c = {"POST", "/api/v1/auth/login", NULL, "https://app.test", body, NULL};
    f3test_http_response r;
    send_call(&f, &c, &r);
    assert_int_equal(r.status, 200);
    const char *sc = f3test_http_header_get(&r, "Set-Cookie");
    assert_true(strncmp(sc, "__Host-f3_session=", 18) == 0);
    assert_non_null(strstr(sc, "; Secure"));
    assert_non_null(strstr(sc, "; HttpOnly"));
    char *tok = strndup(sc + 18, strcspn(sc + 18, ";"));
    remember_secret(tok);
    free(tok);
    assert_non_null(f3test_http_header_get(&r, "Strict-Transport-Security"));
    f3test_http_response_free(&r);
    fixture_stop(&f);
}

static void test_failed_login_looks_the_same_for_unknown_accounts(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    f3test_http_response wrong, unknown;
    assert_int_equal(login_raw(&f, "op@a.example", "wrong password here", NULL, &wrong), 401);
    assert_int_equal(login_raw(&f, "nobody@a.example", "wrong password here", NULL, &unknown), 401);
    json_t *a = json_loads(wrong.body, 0, NULL), *b = json_loads(unknown.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(a, "message")),
                        json_string_value(json_object_get(b, "message")));
    assert_null(f3test_http_header_get(&wrong, "Set-Cookie"));
    json_decref(a);
    json_decref(b);
    f3test_http_response_free(&wrong);
    f3test_http_response_free(&unknown);
    call bad = {"POST", "/api/v1/auth/login", NULL, NULL, "{\"email\":1}", NULL};
    assert_int_equal(status_of(&f, &bad), 400);
    call evil = {"POST",
                 "/api/v1/auth/login",
                 NULL,
                 "https://evil.example",
                 "{\"email\":\"op@a.example\",\"password\":\"" PW "\"}",
                 NULL};
    assert_int_equal(status_of(&f, &evil), 403);
    fixture_stop(&f);
}

static void test_logout_revokes_and_login_rotates(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    char *t1 = login(&f, "op@a.example");
    call me1 = {"GET", "/api/v1/auth/me", t1, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &me1), 200);
    /* logging in again from the same browser ends the old session */
    f3test_http_response r;
    assert_int_equal(login_raw(&f, "op@a.example", PW, t1, &r), 200);
    const char *sc = f3test_http_header_get(&r, "Set-Cookie");
    char *t2 = strndup(sc + 11, strcspn(sc + 11, ";"));
    remember_secret(t2);
    f3test_http_response_free(&r);
    assert_string_not_equal(t1, t2);
    assert_int_equal(status_of(&f, &me1), 401);
    call me2 = {"GET", "/api/v1/auth/me", t2, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &me2), 200);
    call out = {"POST", "/api/v1/auth/logout", t2, NULL, NULL, NULL};
    f3test_http_response lr;
    send_call(&f, &out, &lr);
    assert_int_equal(lr.status, 200);
    assert_non_null(strstr(f3test_http_header_get(&lr, "Set-Cookie"), "Max-Age=0"));
    f3test_http_response_free(&lr);
    assert_int_equal(status_of(&f, &me2), 401);
    assert_int_equal(status_of(&f, &out), 401);
    free(t1);
    free(t2);
    fixture_stop(&f);
}

static void test_idle_and_absolute_expiry(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    char *t = login(&f, "viewer@a.example");
    call me = {"GET", "/api/v1/auth/me", t, NULL, NULL, NULL};
    advance(29 * MINUTE);
    assert_int_equal(status_of(&f, &me), 200); /* use resets the idle clock */
    advance(29 * MINUTE);
    assert_int_equal(status_of(&f, &me), 200);
    advance(31 * MINUTE);
    assert_int_equal(status_of(&f, &me), 401); /* idle too long */
    free(t);

    /* absolute: used every 20 minutes, it still ends 24 h after login */
    t = login(&f, "viewer@a.example");
    call me2 = {"GET", "/api/v1/auth/me", t, NULL, NULL, NULL};
    int64_t used = 0;
    while (used + 20 * MINUTE < 24 * HOUR) {
        advance(20 * MINUTE);
        used += 20 * MINUTE;
        assert_int_equal(status_of(&f, &me2), 200);
    }
    advance(24 * HOUR - used);
    assert_int_equal(status_of(&f, &me2), 401);
    free(t);
    fixture_stop(&f);
}

static void test_sessions_list_and_revoke(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    char *laptop = login(&f, "op@a.example");
    char *phone = login(&f, "op@a.example");
    char *other = login(&f, "viewer@a.example");
    call list = {"GET", "/api/v1/auth/sessions", laptop, NULL, NULL, NULL};
    json_t *j = call_json(&f, &list, 200);
    json_t *arr = json_object_get(j, "sessions");
    assert_true(json_array_size(arr) >= 2);
    const char *phone_id = NULL;
    size_t i, current = 0;
    json_t *s;
    json_array_foreach(arr, i, s)
    {
        if (json_is_true(json_object_get(s, "current")))
            current++;
        else if (!phone_id)
            phone_id = json_string_value(json_object_get(s, "id"));
        char *dump = json_dumps(s, 0);
        assert_null(strstr(dump, laptop)); /* ids are not tokens */
        free(dump);
    }
    assert_int_equal(current, 1);
    assert_non_null(phone_id);
    char path[200];
    snprintf(path, sizeof path, "/api/v1/auth/sessions/%s", phone_id);
    /* someone else cannot revoke it */
    call steal = {"DELETE", path, other, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &steal), 404);
    call phone_me = {"GET", "/api/v1/auth/me", phone, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &phone_me), 200);
    call rev = {"DELETE", path, laptop, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &rev), 200);
    assert_int_equal(status_of(&f, &phone_me), 401);
    call laptop_me = {"GET", "/api/v1/auth/me", laptop, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &laptop_me), 200);
    json_decref(j);
    free(laptop);
    free(phone);
    free(other);
    fixture_stop(&f);
}

/* A User-Agent with bytes that are not UTF-8 (allowed in a header) still logs in, and the
 * sessions list shows it as valid UTF-8. */
static void test_odd_user_agent_is_kept_as_utf8(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    char body[256];
    snprintf(body, sizeof body, "{\"email\":\"op@a.example\",\"password\":\"%s\"}", PW);
    call in = {"POST", "/api/v1/auth/login", NULL, NULL, body, "User-Agent: Probe/1 \xff\xfe\r\n"};
    f3test_http_response r;
    send_call(&f, &in, &r);
    assert_int_equal(r.status, 200);
    const char *sc = f3test_http_header_get(&r, "Set-Cookie");
    assert_non_null(sc);
    char *tok = strndup(sc + 11, strcspn(sc + 11, ";"));
    remember_secret(tok);
    f3test_http_response_free(&r);
    call list = {"GET", "/api/v1/auth/sessions", tok, NULL, NULL, NULL};
    json_t *j = call_json(&f, &list, 200);
    char *dump = json_dumps(j, 0);
    assert_non_null(strstr(dump, "Probe/1 ??"));
    free(dump);
    json_decref(j);
    free(tok);
    fixture_stop(&f);
}

static void test_password_change_revokes_every_session(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    account tmp;
    err e = {0};
    assert_int_equal(account_create(W.d, W.tenant_a, "pw@a.example", "viewer", PW, false, &tmp, &e),
                     0);
    char *t1 = login(&f, "pw@a.example");
    char *t2 = login(&f, "pw@a.example");
    const char *next = "another long passphrase";
    remember_secret(next);
    call bad = {"POST",
                "/api/v1/auth/password",
                t1,
                NULL,
                "{\"currentPassword\":\"nope nope nope\",\"newPassword\":\"another long "
                "passphrase\"}",
                NULL};
    assert_int_equal(status_of(&f, &bad), 403);
    call weak = {"POST",
                 "/api/v1/auth/password",
                 t1,
                 NULL,
                 "{\"currentPassword\":\"" PW "\",\"newPassword\":\"short\"}",
                 NULL};
    assert_int_equal(status_of(&f, &weak), 400);
    call ok = {"POST",
               "/api/v1/auth/password",
               t1,
               NULL,
               "{\"currentPassword\":\"" PW "\",\"newPassword\":\"another long passphrase\"}",
               NULL};
    assert_int_equal(status_of(&f, &ok), 200);
    call me1 = {"GET", "/api/v1/auth/me", t1, NULL, NULL, NULL};
    call me2 = {"GET", "/api/v1/auth/me", t2, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &me1), 401);
    assert_int_equal(status_of(&f, &me2), 401);
    f3test_http_response r;
    assert_int_equal(login_raw(&f, "pw@a.example", PW, NULL, &r), 401);
    f3test_http_response_free(&r);
    assert_int_equal(login_raw(&f, "pw@a.example", next, NULL, &r), 200);
    f3test_http_response_free(&r);
    free(t1);
    free(t2);
    fixture_stop(&f);
}

/* ---- the guard -------------------------------------------------------------- */

static void test_rbac_matrix(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    const struct {
        const char *email;
        const char *role;
    } who[] = {
        {"admin@a.example", "admin"}, {"op@a.example", "operator"}, {"viewer@a.example", "viewer"}};
    for (size_t w = 0; w < 3; w++) {
        char *tok = login(&f, who[w].email);
        rbac_set granted = rbac_role_permissions(who[w].role, false);
        for (size_t p = 0; p < NMATRIX; p++) {
            char path[128];
            snprintf(path, sizeof path, "/api/v1/test/%s", matrix_perms[p]);
            int expect = rbac_allows(granted, matrix_perms[p]) ? 200 : 403;
            call get = {"GET", path, tok, NULL, NULL, NULL};
            call post = {"POST", path, tok, NULL, NULL, NULL};
            call anon = {"GET", path, NULL, NULL, NULL, NULL};
            if (status_of(&f, &get) != expect || status_of(&f, &post) != expect)
                fail_msg("%s on %s: expected %d", who[w].role, matrix_perms[p], expect);
            assert_int_equal(status_of(&f, &anon), 401);
        }
        call sess = {"GET", "/api/v1/test/session", tok, NULL, NULL, NULL};
        assert_int_equal(status_of(&f, &sess), 200);
        free(tok);
    }
    /* exact expectations, independent of the table */
    char *viewer = login(&f, "viewer@a.example");
    call vw = {"POST", "/api/v1/test/orders.write", viewer, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &vw), 403);
    call vr = {"GET", "/api/v1/test/orders.read", viewer, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &vr), 200);
    free(viewer);
    char *op = login(&f, "op@a.example");
    call ou = {"GET", "/api/v1/users", op, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &ou), 403);
    call oq = {"GET", "/api/v1/test/queues.admin", op, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &oq), 403);
    free(op);
    fixture_stop(&f);
}

static void test_deny_by_default_and_public_routes(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    char *tok = login(&f, "admin@a.example");
    call undeclared = {"GET", "/api/v1/test/undeclared", tok, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &undeclared), 403);
    call unknown = {"GET", "/api/v1/test/unknown-permission", tok, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &unknown), 403);
    call health = {"GET", "/health", NULL, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &health), 200);
    call stat = {"GET", "/static/app.js", NULL, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &stat), 200);
    call hook = {"POST", "/api/v1/webhooks/test", NULL, "", "{}", NULL};
    assert_int_equal(status_of(&f, &hook), 200);
    free(tok);
    fixture_stop(&f);
}

static void test_csrf_origin_required_for_cookie_writes(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    char *tok = login(&f, "admin@a.example");
    const char *path = "/api/v1/test/orders.write";
    call none = {"POST", path, tok, "", NULL, NULL};
    assert_int_equal(status_of(&f, &none), 403);
    call evil = {"POST", path, tok, "https://evil.example", NULL, NULL};
    assert_int_equal(status_of(&f, &evil), 403);
    call null_origin = {"POST", path, tok, "null", NULL, NULL};
    assert_int_equal(status_of(&f, &null_origin), 403);
    call referer = {"POST", path, tok, "", NULL, "Referer: " ORIGIN "/orders/1\r\n"};
    assert_int_equal(status_of(&f, &referer), 200);
    call bad_referer = {"POST", path, tok, "", NULL, "Referer: https://evil.example/\r\n"};
    assert_int_equal(status_of(&f, &bad_referer), 403);
    call ok = {"POST", path, tok, ORIGIN, NULL, NULL};
    assert_int_equal(status_of(&f, &ok), 200);
    call del = {"DELETE", "/api/v1/auth/sessions/x", tok, "https://evil.example", NULL, NULL};
    assert_int_equal(status_of(&f, &del), 403);
    /* the session survived every refused attempt, and GET needs no origin */
    call me = {"GET", "/api/v1/auth/me", tok, "", NULL, NULL};
    assert_int_equal(status_of(&f, &me), 200);
    free(tok);
    fixture_stop(&f);
}

static void test_internal_key(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    char *tok = login(&f, "admin@a.example");
    call missing = {"GET", "/internal/ping", tok, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &missing), 401);
    call wrong = {"GET", "/internal/ping", NULL, NULL, NULL, "X-Internal-Key: internal-key-0\r\n"};
    assert_int_equal(status_of(&f, &wrong), 401);
    call longer = {"GET", "/internal/ping", NULL, NULL, NULL, "X-Internal-Key: " IKEY "x\r\n"};
    assert_int_equal(status_of(&f, &longer), 401);
    call right = {"GET", "/internal/ping", NULL, NULL, NULL, "X-Internal-Key: " IKEY "\r\n"};
    assert_int_equal(status_of(&f, &right), 200);
    /* an /internal/ path declared public is unreachable, with or without the key */
    call mis = {"GET", "/internal/public-by-mistake", NULL, NULL,
                NULL,  "X-Internal-Key: " IKEY "\r\n"};
    assert_int_equal(status_of(&f, &mis), 404);
    call mis_anon = {"GET", "/internal/public-by-mistake", NULL, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &mis_anon), 404);
    /* an internal route outside /internal/ is unreachable too */
    call elsewhere = {"GET", "/api/v1/internal-elsewhere",  NULL, NULL,
                      NULL,  "X-Internal-Key: " IKEY "\r\n"};
    assert_int_equal(status_of(&f, &elsewhere), 404);
    free(tok);
    fixture_stop(&f);

    /* no key configured: nothing internal is reachable, not even with an empty key */
    fixture g;
    auth_opts none = {.internal_key = ""};
    fixture_start(&g, &none);
    call any = {"GET", "/internal/ping", NULL, NULL, NULL, "X-Internal-Key: " IKEY "\r\n"};
    assert_int_equal(status_of(&g, &any), 401);
    call empty = {"GET", "/internal/ping", NULL, NULL, NULL, "X-Internal-Key: \r\n"};
    assert_int_equal(status_of(&g, &empty), 401);
    fixture_stop(&g);
}

/* The headers the distributed gateway sends carry the same context /me shows. */
static void test_user_context_headers_round_trip_through_a_service(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    user_ctx *u = user_ctx_new(W.op_a.id, W.tenant_a, "op@a.example", "operator", false);
    buf vals, extra;
    buf_init(&vals, 0);
    buf_init(&extra, 0);
    const char *v[USER_CTX_HEADER_COUNT];
    assert_int_equal(user_ctx_to_headers(u, &vals, v), 0);
    buf_puts(&extra, "X-Internal-Key: " IKEY "\r\n");
    for (size_t i = 0; i < USER_CTX_HEADER_COUNT; i++)
        buf_printf(&extra, "%s: %s\r\n", user_ctx_header_names[i], v[i]);
    call c = {"GET", "/internal/whoami", NULL, NULL, NULL, buf_cstr(&extra)};
    json_t *got = call_json(&f, &c, 200);
    json_t *want = user_ctx_to_json(u);
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    /* without the user id and tenant there is no context */
    call none = {"GET", "/internal/whoami", NULL, NULL, NULL, "X-Internal-Key: " IKEY "\r\n"};
    assert_int_equal(status_of(&f, &none), 400);
    buf_free(&vals);
    buf_free(&extra);
    user_ctx_free(u);
    fixture_stop(&f);
}

/* ---- rate limits -------------------------------------------------------------- */

static void test_rate_limits_answer_429_with_retry_after(void **state)
{
    (void)state;
    fixture f;
    auth_opts o = {.per_ip = {5, MINUTE}, .per_user = {3, MINUTE}};
    fixture_start(&f, &o);
    call health = {"GET", "/health", NULL, NULL, NULL, NULL};
    for (int i = 0; i < 5; i++)
        assert_int_equal(status_of(&f, &health), 200);
    f3test_http_response r;
    send_call(&f, &health, &r);
    assert_int_equal(r.status, 429);
    const char *ra = f3test_http_header_get(&r, "Retry-After");
    assert_non_null(ra);
    long secs = strtol(ra, NULL, 10);
    assert_true(secs >= 1 && secs <= 60);
    assert_security_headers(&r);
    f3test_http_response_free(&r);
    /* provider webhooks are not limited per address: the address above is out of room */
    call hook = {"POST", "/api/v1/webhooks/test", NULL, "", "{}", NULL};
    for (int i = 0; i < 20; i++)
        assert_int_equal(status_of(&f, &hook), 200);
    advance(MINUTE);
    /* per user: 3 per minute, then 429 while the address still has room */
    char *tok = login(&f, "viewer@a.example");
    call me = {"GET", "/api/v1/auth/me", tok, NULL, NULL, NULL};
    for (int i = 0; i < 3; i++)
        assert_int_equal(status_of(&f, &me), 200);
    assert_int_equal(status_of(&f, &me), 429);
    advance(MINUTE);
    assert_int_equal(status_of(&f, &me), 200);
    free(tok);
    fixture_stop(&f);
}

static void test_login_rate_is_stricter(void **state)
{
    (void)state;
    fixture f;
    auth_opts o = {.login = {3, MINUTE}};
    fixture_start(&f, &o);
    f3test_http_response r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(login_raw(&f, "nobody@x.example", "whatever it is", NULL, &r), 401);
        f3test_http_response_free(&r);
    }
    assert_int_equal(login_raw(&f, "op@a.example", PW, NULL, &r), 429);
    assert_non_null(f3test_http_header_get(&r, "Retry-After"));
    f3test_http_response_free(&r);
    call health = {"GET", "/health", NULL, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &health), 200);
    fixture_stop(&f);
}

static void test_failed_logins_throttled_per_account_without_enumeration(void **state)
{
    (void)state;
    fixture f;
    auth_opts o = {.max_failures_account = 4, .max_failures_ip = 1000};
    fixture_start(&f, &o);
    f3test_http_response r;
    /* burst = 2 failures per account, then even the right password is refused */
    const char *accounts[] = {"op@a.example", "ghost@a.example"};
    char msg[2][200];
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 2; i++) {
            assert_int_equal(login_raw(&f, accounts[k], "wrong wrong wrong", NULL, &r), 401);
            f3test_http_response_free(&r);
        }
        assert_int_equal(login_raw(&f, accounts[k], PW, NULL, &r), 429);
        assert_non_null(f3test_http_header_get(&r, "Retry-After"));
        json_t *j = json_loads(r.body, 0, NULL);
        snprintf(msg[k], sizeof msg[k], "%s", json_string_value(json_object_get(j, "message")));
        json_decref(j);
        f3test_http_response_free(&r);
    }
    /* an existing and a missing account are throttled alike */
    assert_string_equal(msg[0], msg[1]);
    /* another account from the same address is not affected */
    char *tok = login(&f, "viewer@a.example");
    free(tok);
    /* the bucket refills: half the hourly budget per hour */
    advance(HOUR / 2 + MINUTE);
    tok = login(&f, "op@a.example");
    free(tok);
    fixture_stop(&f);
}

static void test_failed_logins_throttled_per_address(void **state)
{
    (void)state;
    fixture f;
    auth_opts o = {.max_failures_account = 100, .max_failures_ip = 6};
    fixture_start(&f, &o);
    f3test_http_response r;
    char email[64];
    for (int i = 0; i < 3; i++) { /* spraying: a different account each time */
        snprintf(email, sizeof email, "spray%d@a.example", i);
        assert_int_equal(login_raw(&f, email, "wrong wrong wrong", NULL, &r), 401);
        f3test_http_response_free(&r);
    }
    assert_int_equal(login_raw(&f, "admin@a.example", PW, NULL, &r), 429);
    f3test_http_response_free(&r);
    fixture_stop(&f);
}

/* ---- tenant isolation and the admin API --------------------------------------- */

static void test_admin_api_is_tenant_scoped(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    char *a = login(&f, "admin@a.example");
    char *b = login(&f, "admin@b.example");
    call list_b = {"GET", "/api/v1/users", b, NULL, NULL, NULL};
    json_t *j = call_json(&f, &list_b, 200);
    json_t *users = json_object_get(j, "users");
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u)
    {
        assert_string_equal(json_string_value(json_object_get(u, "tenantId")), W.tenant_b);
        assert_null(json_object_get(u, "passwordHash"));
    }
    assert_int_equal(json_array_size(users), 1);
    json_decref(j);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/users/%s", W.op_a.id);
    call get = {"GET", path, b, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &get), 404);
    call patch = {"PATCH", path, b, NULL, "{\"role\":\"admin\"}", NULL};
    assert_int_equal(status_of(&f, &patch), 404);
    call del = {"DELETE", path, b, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &del), 404);
    call get_a = {"GET", path, a, NULL, NULL, NULL};
    json_t *op = call_json(&f, &get_a, 200);
    assert_string_equal(json_string_value(json_object_get(op, "role")), "operator");
    json_decref(op);
    /* the probe route sees the session's tenant, never one the client names */
    call probe = {"GET", "/api/v1/test/orders.read",
                  b,     NULL,
                  NULL,  "x-tenant-id: " /* a forged header changes nothing */ "forged\r\n"};
    json_t *p = call_json(&f, &probe, 200);
    assert_string_equal(json_string_value(json_object_get(p, "tenantId")), W.tenant_b);
    json_decref(p);
    /* B's audit log holds nothing of A */
    call audit_b = {"GET", "/api/v1/audit", b, NULL, NULL, NULL};
    j = call_json(&f, &audit_b, 200);
    json_array_foreach(json_object_get(j, "entries"), i, u)
    {
        const char *em = json_string_value(json_object_get(u, "email"));
        assert_true(em == NULL || strstr(em, "@a.example") == NULL);
    }
    json_decref(j);
    free(a);
    free(b);
    fixture_stop(&f);
}

static void test_admin_user_crud_and_audit(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    char *a = login(&f, "admin@a.example");
    call create = {
        "POST", "/api/v1/users", a, NULL, "{\"email\":\"New@A.example\",\"role\":\"viewer\"}",
        NULL};
    json_t *j = call_json(&f, &create, 201);
    const char *pw = json_string_value(json_object_get(j, "password"));
    assert_non_null(pw);
    remember_secret(pw);
    char *id = strdup(json_string_value(json_object_get(j, "id")));
    assert_string_equal(json_string_value(json_object_get(j, "tenantId")), W.tenant_a);
    json_decref(j);
    assert_int_equal(status_of(&f, &create), 409);
    call bad_role = {
        "POST", "/api/v1/users", a, NULL, "{\"email\":\"x@a.example\",\"role\":\"root\"}", NULL};
    assert_int_equal(status_of(&f, &bad_role), 400);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/users/%s", id);
    call patch = {"PATCH", path, a, NULL, "{\"role\":\"operator\"}", NULL};
    j = call_json(&f, &patch, 200);
    assert_string_equal(json_string_value(json_object_get(j, "role")), "operator");
    json_decref(j);
    call roles = {"GET", "/api/v1/roles", a, NULL, NULL, NULL};
    j = call_json(&f, &roles, 200);
    assert_int_equal(json_array_size(json_object_get(j, "roles")), 3);
    json_decref(j);
    call del = {"DELETE", path, a, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &del), 200);
    assert_int_equal(status_of(&f, &del), 404);
    snprintf(path, sizeof path, "/api/v1/users/%s", W.admin_a.id);
    call self = {"DELETE", path, a, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &self), 409);

    /* a denial and a failure, then the log */
    char *v = login(&f, "viewer@a.example");
    call denied = {"GET", "/api/v1/users", v, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &denied), 403);
    f3test_http_response r;
    login_raw(&f, "viewer@a.example", "not the password!", NULL, &r);
    f3test_http_response_free(&r);
    call audit = {"GET", "/api/v1/audit?limit=200", a, NULL, NULL, NULL};
    j = call_json(&f, &audit, 200);
    const char *want[] = {"login.success", "login.failure", "permission.denied",
                          "user.created",  "user.updated",  "user.removed"};
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        bool seen = false;
        size_t i;
        json_t *en;
        json_array_foreach(json_object_get(j, "entries"), i, en)
        {
            if (strcmp(json_string_value(json_object_get(en, "event")), want[w]) == 0)
                seen = true;
        }
        if (!seen)
            fail_msg("no %s in the audit log", want[w]);
    }
    json_decref(j);
    call filtered = {"GET", "/api/v1/audit?event=permission.denied", a, NULL, NULL, NULL};
    j = call_json(&f, &filtered, 200);
    assert_true(json_array_size(json_object_get(j, "entries")) >= 1);
    json_decref(j);
    call viewer_audit = {"GET", "/api/v1/audit", v, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &viewer_audit), 403);
    call bad_limit = {"GET", "/api/v1/audit?limit=0", a, NULL, NULL, NULL};
    assert_int_equal(status_of(&f, &bad_limit), 400);
    free(id);
    free(a);
    free(v);
    fixture_stop(&f);
}

/* ---- headers and logs ----------------------------------------------------------- */

static void test_security_headers_on_every_response(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, NULL);
    const call calls[] = {
        {"GET", "/health", NULL, NULL, NULL, NULL},
        {"GET", "/api/v1/auth/me", NULL, NULL, NULL, NULL},         /* 401 */
        {"GET", "/api/v1/test/undeclared", NULL, NULL, NULL, NULL}, /* 403 */
        {"GET", "/no/such/route", NULL, NULL, NULL, NULL},          /* 404 */
        {"PUT", "/health", NULL, NULL, NULL, NULL},                 /* 405 */
        {"POST", "/api/v1/auth/login", NULL, NULL, "{oops", NULL},  /* 400 */
        {"GET", "/internal/ping", NULL, NULL, NULL, NULL},          /* 401 */
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        f3test_http_response r;
        send_call(&f, &calls[i], &r);
        assert_security_headers(&r);
        f3test_http_response_free(&r);
    }
    /* answered before the body is read */
    f3test_http_response big;
    assert_int_equal(f3test_http_request(f.port,
                                         "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\n"
                                         "Content-Type: application/json\r\n"
                                         "Content-Length: 2000000\r\n\r\n",
                                         &big),
                     0);
    assert_int_equal(big.status, 413);
    assert_security_headers(&big);
    f3test_http_response_free(&big);
    fixture_stop(&f);
}

/* Runs last: nothing the tests above handled as a secret is in any log line. */
static void test_no_secret_in_any_log_line(void **state)
{
    (void)state;
    fflush(W.log);
    long size = ftell(W.log);
    assert_true(size > 0);
    char *text = calloc(1, (size_t)size + 1);
    rewind(W.log);
    assert_int_equal(fread(text, 1, (size_t)size, W.log), (size_t)size);
    fseek(W.log, 0, SEEK_END);
    assert_non_null(strstr(text, "login failed")); /* the log did capture the tests */
    assert_non_null(strstr(text, "internal key rejected"));
    assert_true(nsecrets > 5);
    for (size_t i = 0; i < nsecrets; i++) {
        if (strlen(secrets[i]) < 8)
            continue;
        if (strstr(text, secrets[i]))
            fail_msg("a secret (#%zu) appears in the log", i);
    }
    free(text);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_sets_a_hardened_cookie_and_me_answers),
        cmocka_unit_test(test_secure_cookie_with_https_app_url),
        cmocka_unit_test(test_failed_login_looks_the_same_for_unknown_accounts),
        cmocka_unit_test(test_logout_revokes_and_login_rotates),
        cmocka_unit_test(test_idle_and_absolute_expiry),
        cmocka_unit_test(test_sessions_list_and_revoke),
        cmocka_unit_test(test_odd_user_agent_is_kept_as_utf8),
        cmocka_unit_test(test_password_change_revokes_every_session),
        cmocka_unit_test(test_rbac_matrix),
        cmocka_unit_test(test_deny_by_default_and_public_routes),
        cmocka_unit_test(test_csrf_origin_required_for_cookie_writes),
        cmocka_unit_test(test_internal_key),
        cmocka_unit_test(test_user_context_headers_round_trip_through_a_service),
        cmocka_unit_test(test_rate_limits_answer_429_with_retry_after),
        cmocka_unit_test(test_login_rate_is_stricter),
        cmocka_unit_test(test_failed_logins_throttled_per_account_without_enumeration),
        cmocka_unit_test(test_failed_logins_throttled_per_address),
        cmocka_unit_test(test_admin_api_is_tenant_scoped),
        cmocka_unit_test(test_admin_user_crud_and_audit),
        cmocka_unit_test(test_security_headers_on_every_response),
        cmocka_unit_test(test_no_secret_in_any_log_line),
    };
    return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
