/*
 * auth_guard.c - the one guard every request passes, the security headers on
 * every response, and the gateway's lifetime (see auth.h).
 *
 * Order of the checks, cheapest and most general first: the internal-key rule
 * for /internal/, deny-by-default for undeclared routes, the per-address limit,
 * public routes pass; then the CSRF origin check for state-changing requests
 * that carry a cookie, the session, the user and membership behind it, the
 * per-user limit and the route's permission. No token, hash or key is logged.
 */
#include "services/gateway/auth_internal.h"

#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/str.h"
#include "services/gateway/accounts.h"
#include "services/gateway/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_MAX 128

int64_t auth_now(const auth *a)
{
    return a->o.now_ms ? a->o.now_ms() : clock_now_ms();
}

auth *auth_new(const auth_opts *opts, err *e)
{
    if (!opts || !opts->store || !opts->sessions || !opts->limits) {
        err_set(e, F3_EINVAL, "auth: a database, a session store and a rate limiter are needed");
        return NULL;
    }
    auth *a = calloc(1, sizeof *a);
    buf dummy, pw;
    buf_init(&dummy, 0);
    buf_init(&pw, 0);
    if (!a)
        goto nomem;
    a->o = *opts;
    a->app_url = str_dup(opts->app_url ? opts->app_url : "http://localhost");
    a->internal_key =
        opts->internal_key && *opts->internal_key ? str_dup(opts->internal_key) : NULL;
    if (!a->app_url || (opts->internal_key && *opts->internal_key && !a->internal_key))
        goto nomem;
    a->o.app_url = a->app_url;
    a->o.internal_key = a->internal_key;
    a->secure = auth_url_is_https(a->app_url);
    a->fail_account = auth_failure_rule(opts->max_failures_account);
    a->fail_ip = auth_failure_rule(opts->max_failures_ip);
    /* A hash of a password nobody knows, verified when the e-mail address has
     * no account, so both answers take the same time. */
    if (crypto_random_token(&pw, 24) || crypto_password_hash(buf_cstr(&pw), &dummy) ||
        dummy.len >= sizeof a->dummy_hash)
        goto nomem;
    memcpy(a->dummy_hash, dummy.data, dummy.len + 1);
    crypto_wipe(pw.data, pw.len);
    buf_free(&pw);
    buf_free(&dummy);
    return a;
nomem:
    if (pw.data)
        crypto_wipe(pw.data, pw.len);
    buf_free(&pw);
    buf_free(&dummy);
    auth_free(a);
    err_set(e, F3_ENOMEM, "auth: out of memory");
    return NULL;
}

void auth_free(auth *a)
{
    if (!a)
        return;
    free(a->app_url);
    if (a->internal_key) {
        crypto_wipe(a->internal_key, strlen(a->internal_key));
        free(a->internal_key);
    }
    free(a);
}

/* ---- helpers shared with the route handlers ------------------------------- */

bool auth_request_token(const auth *a, const http_request *req, char *out, size_t size)
{
    return auth_cookie_get(http_req_header(req, "Cookie"), auth_cookie_name(a->secure), out, size);
}

int auth_clear_cookie(const auth *a, http_response *res)
{
    buf c;
    buf_init(&c, 0);
    int rc = auth_cookie_build(&c, a->secure, "", 0);
    rc = rc ? rc : http_res_header(res, "Set-Cookie", buf_cstr(&c));
    buf_free(&c);
    return rc;
}

int auth_too_many(http_response *res, int64_t retry_after_ms, const char *message)
{
    char secs[24];
    snprintf(secs, sizeof secs, "%lld", (long long)((retry_after_ms + 999) / 1000));
    int rc = http_res_error(res, 429, "%s", message);
    return rc ? rc : http_res_header(res, "Retry-After", secs);
}

void auth_audit(const auth *a, const http_request *req, const char *tenant_id, const char *user_id,
                const char *email, const char *event, const char *detail)
{
    audit_entry en = {tenant_id, user_id, email, event, http_req_remote_addr(req), detail};
    audit_record(a->o.store, &en, auth_now(a), NULL);
}

/* ---- the guard ------------------------------------------------------------ */

static bool path_is_internal(const char *path)
{
    return str_starts_with(path, AUTH_INTERNAL_PREFIX) || strcmp(path, "/internal") == 0;
}

static bool state_changing(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
           strcmp(method, "OPTIONS") != 0;
}

/* A denial: 1 (the guard answered) or a negative code. */
static int deny(http_response *res, int status, const char *message)
{
    int rc = http_res_error(res, status, "%s", message);
    return rc ? rc : 1;
}

/* /internal/ only with the internal key, and only to routes declared internal:
 * a public route can never be mounted there, an internal one nowhere else. */
static int guard_internal(auth *a, http_request *req, const http_route *route, http_response *res)
{
    bool declared = route->access && strcmp(route->access, HTTP_ACCESS_INTERNAL) == 0;
    if (!declared || !path_is_internal(http_req_path(req))) {
        log_error("internal route misdeclared", "method", route->method, "route", route->pattern);
        return deny(res, 404, "Not Found");
    }
    const char *key = http_req_header(req, AUTH_INTERNAL_KEY_HEADER);
    if (!a->internal_key || !key || !crypto_str_equal(key, a->internal_key)) {
        log_warn("internal key rejected", "path", http_req_path(req), "remoteAddr",
                 http_req_remote_addr(req), "reason", key ? "wrong key" : "no key");
        return deny(res, 401, "A valid X-Internal-Key is required");
    }
    return 0;
}

/* Resolves the session and its user into a new context; 0, or 1 with res set. */
static int guard_session(auth *a, http_request *req, http_response *res, user_ctx **out)
{
    char token[TOKEN_MAX];
    session_record s;
    account acc;
    err e;
    err_clear(&e);
    if (!auth_request_token(a, req, token, sizeof token))
        return deny(res, 401, "Authentication required");
    int rc = session_resolve(a->o.sessions, token, auth_now(a), &s, &e);
    crypto_wipe(token, sizeof token);
    if (rc == F3_ENOTFOUND) {
        rc = deny(res, 401, "Session expired or invalid; please log in again");
        return rc == 1 && auth_clear_cookie(a, res) ? F3_ENOMEM : rc;
    }
    if (rc)
        return rc;
    rc = account_get(a->o.store, s.tenant_id, s.user_id, &acc, &e);
    if (rc == F3_ENOTFOUND || (rc == 0 && acc.disabled)) {
        session_revoke(a->o.sessions, s.id, NULL, auth_now(a), NULL);
        return deny(res, 401, "Session expired or invalid; please log in again");
    }
    if (rc)
        return rc;
    user_ctx *u = user_ctx_new(acc.id, acc.tenant_id, acc.email, acc.role, acc.super_admin);
    if (!u)
        return F3_ENOMEM;
    memcpy(u->session_id, s.id, sizeof s.id);
    *out = u;
    return 0;
}

int auth_guard(http_request *req, const http_route *route, http_response *res, void *ctx)
{
    auth *a = ctx;
    const char *access = route->access;
    const char *ip = http_req_remote_addr(req);
    int64_t retry = 0;
    char key[160];

    if (path_is_internal(http_req_path(req)) ||
        (access && strcmp(access, HTTP_ACCESS_INTERNAL) == 0))
        return guard_internal(a, req, route, res);
    if (!access) {
        log_error("route declares no access; denied", "method", route->method, "route",
                  route->pattern);
        return deny(res, 403, "Forbidden");
    }
    if (strcmp(access, HTTP_ACCESS_WEBHOOK) == 0)
        return 0;
    snprintf(key, sizeof key, "ip:%s", ip);
    if (!ratelimit_take(a->o.limits, key, &a->o.per_ip, auth_now(a), &retry))
        return auth_too_many(res, retry, "Too many requests; slow down") ? F3_ENOMEM : 1;
    if (strcmp(access, HTTP_ACCESS_PUBLIC) == 0)
        return 0;
    bool known = strcmp(access, HTTP_ACCESS_SESSION) == 0 || rbac_permission_bit(access) != 0;
    if (!known) {
        log_error("route declares an unknown permission; denied", "route", route->pattern,
                  "permission", access);
        return deny(res, 403, "Forbidden");
    }
    /* SameSite=Lax already keeps the cookie off most cross-site POSTs; the
     * origin check also covers same-site subdomains and older browsers. */
    if (state_changing(http_req_method(req)) && http_req_header(req, "Cookie") &&
        !auth_same_origin(a->app_url, http_req_header(req, "Origin"),
                          http_req_header(req, "Referer"))) {
        log_warn("cross-site request refused", "method", http_req_method(req), "path",
                 http_req_path(req), "remoteAddr", ip);
        return deny(res, 403, "Cross-site request refused (Origin does not match)");
    }
    user_ctx *u = NULL;
    int rc = guard_session(a, req, res, &u);
    if (rc)
        return rc;
    snprintf(key, sizeof key, "user:%s", u->user_id);
    if (!ratelimit_take(a->o.limits, key, &a->o.per_user, auth_now(a), &retry)) {
        user_ctx_free(u);
        return auth_too_many(res, retry, "Too many requests; slow down") ? F3_ENOMEM : 1;
    }
    if (strcmp(access, HTTP_ACCESS_SESSION) != 0 && !user_ctx_can(u, access)) {
        char detail[200];
        snprintf(detail, sizeof detail, "%s %s needs %s", http_req_method(req), route->pattern,
                 access);
        auth_audit(a, req, u->tenant_id, u->user_id, u->email, "permission.denied", detail);
        log_info("permission denied", "userId", u->user_id, "route", route->pattern, "permission",
                 access);
        user_ctx_free(u);
        return deny(res, 403, "Missing permission for this action");
    }
    http_req_set_user(req, u, user_ctx_free);
    return 0;
}

/* ---- security headers ----------------------------------------------------- */

static const char *const security_headers[][2] = {
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "same-origin"},
    {"Content-Security-Policy",
     "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'; "
     "form-action 'self'"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
    {"Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"},
};

void auth_security_headers(const http_request *req, http_response *res, void *ctx)
{
    const auth *a = ctx;
    for (size_t i = 0; i < sizeof security_headers / sizeof security_headers[0]; i++)
        http_res_header(res, security_headers[i][0], security_headers[i][1]);
    const char *path = http_req_path(req);
    /* API answers hold tenant data: never cached. Static assets may be. */
    if (!path || str_starts_with(path, "/api/") || str_starts_with(path, "/internal/"))
        http_res_header(res, "Cache-Control", "no-store");
    if (a->secure)
        http_res_header(res, "Strict-Transport-Security", "max-age=31536000; includeSubDomains");
}
