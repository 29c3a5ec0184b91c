/*
 * auth_routes.c - the authentication endpoints under /api/v1/auth (see auth.h).
 *
 * Login answers every failure (unknown address, wrong password, disabled
 * account, no membership) with the same 401 body after the same argon2id work,
 * so the answer never tells whether an account exists; failures are throttled
 * per address string and per client address alike. Passwords and tokens are
 * wiped after use and never logged.
 */
#include "services/gateway/auth_internal.h"

#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "services/gateway/accounts.h"
#include "services/gateway/audit.h"

#include <stdio.h>
#include <string.h>

#define TOKEN_MAX    128
#define SESSIONS_MAX 50
#define BAD_LOGIN    "Invalid email or password"

/* The raw body held a password: nothing of it outlives the handler. */
static void wipe_body(http_request *req)
{
    size_t len = 0;
    char *raw = (char *)http_req_body(req, &len);
    crypto_wipe(raw, len);
}

typedef struct login_req {
    const char *email;
    const char *password;
    const char *tenant; /* optional tenant id */
} login_req;

/* Reads {"email","password"[,"tenantId"]}; 0, or 1 when res holds a 400/415. */
static int login_parse(http_request *req, http_response *res, json_t **body, login_req *l)
{
    err e;
    err_clear(&e);
    int rc = http_req_json(req, body, res);
    if (rc == F3_EINVAL)
        return 1;
    if (rc)
        return rc;
    if (json_get_string(*body, "email", &l->email, &e) ||
        json_get_string(*body, "password", &l->password, &e) ||
        json_opt_string(*body, "tenantId", &l->tenant, NULL, &e))
        return http_res_error(res, 400, "%s", e.msg) ? F3_ENOMEM : 1;
    if (strlen(l->email) > 320 || strlen(l->password) > ACCOUNT_PASSWORD_MAX)
        return http_res_error(res, 400, "email or password too long") ? F3_ENOMEM : 1;
    return 0;
}

/* The throttles that apply before any password is checked; 0, or 1 with a 429. */
static int login_throttle(auth *a, http_request *req, http_response *res, const char *email,
                          int64_t now)
{
    const char *ip = http_req_remote_addr(req);
    char key[400];
    int64_t retry = 0;
    snprintf(key, sizeof key, "login:ip:%s", ip);
    if (!ratelimit_take(a->o.limits, key, &a->o.login, now, &retry))
        return auth_too_many(res, retry, "Too many login attempts; try again later") ? F3_ENOMEM
                                                                                     : 1;
    snprintf(key, sizeof key, "fail:acct:%s", email);
    bool ok = ratelimit_peek(a->o.limits, key, &a->fail_account, now, &retry);
    if (ok) {
        snprintf(key, sizeof key, "fail:ip:%s", ip);
        ok = ratelimit_peek(a->o.limits, key, &a->fail_ip, now, &retry);
    }
    if (ok)
        return 0;
    account acc;
    if (account_find_login(a->o.store, email, NULL, &acc, NULL) == 0 && *acc.tenant_id)
        auth_audit(a, req, acc.tenant_id, acc.id, acc.email, AUDIT_LOGIN_THROTTLED, NULL);
    log_warn("login throttled", "remoteAddr", ip);
    return auth_too_many(res, retry, "Too many failed login attempts; try again later") ? F3_ENOMEM
                                                                                        : 1;
}

static void login_count_failure(auth *a, const char *ip, const char *email, int64_t now)
{
    char key[400];
    snprintf(key, sizeof key, "fail:acct:%s", email);
    ratelimit_take(a->o.limits, key, &a->fail_account, now, NULL);
    snprintf(key, sizeof key, "fail:ip:%s", ip);
    ratelimit_take(a->o.limits, key, &a->fail_ip, now, NULL);
}

/* Starts the session, sets the cookie and writes the answer. */
static int login_succeed(auth *a, http_request *req, http_response *res, const account *acc,
                         int64_t now)
{
    char old[TOKEN_MAX];
    err e;
    err_clear(&e);
    /* Rotation: whatever session the browser held before ends here. */
    if (auth_request_token(a, req, old, sizeof old)) {
        char id[SESSION_ID_LEN + 1];
        session_id_of_token(old, id);
        session_revoke(a->o.sessions, id, NULL, now, NULL);
        crypto_wipe(old, sizeof old);
    }
    buf token, cookie;
    buf_init(&token, 0);
    buf_init(&cookie, 0);
    int rc = session_start(a->o.sessions, acc->id, acc->tenant_id, http_req_remote_addr(req),
                           http_req_header(req, "User-Agent"), now, &token, NULL, &e);
    rc = rc ? rc
            : auth_cookie_build(&cookie, a->secure, buf_cstr(&token),
                                a->o.sessions->limits.max_age_ms / 1000);
    rc = rc ? rc : http_res_header(res, "Set-Cookie", buf_cstr(&cookie));
    user_ctx *u =
        rc ? NULL : user_ctx_new(acc->id, acc->tenant_id, acc->email, acc->role, acc->super_admin);
    json_t *me = u ? user_ctx_to_json(u) : NULL;
    if (rc == 0)
        rc = me ? http_res_json(res, 200, json_pack("{s:o}", "user", me)) : F3_ENOMEM;
    if (rc == 0) {
        account_touch_login(a->o.store, acc->id, now, NULL);
        auth_audit(a, req, acc->tenant_id, acc->id, acc->email, AUDIT_LOGIN_SUCCESS, NULL);
        log_info("login", "userId", acc->id, "tenantId", acc->tenant_id);
    }
    user_ctx_free(u);
    if (token.data)
        crypto_wipe(token.data, token.len);
    if (cookie.data)
        crypto_wipe(cookie.data, cookie.len);
    buf_free(&token);
    buf_free(&cookie);
    return rc;
}

static int h_login(http_request *req, http_response *res, void *ctx)
{
    auth *a = ctx;
    json_t *body = NULL;
    login_req l = {0};
    char *email = NULL;
    int64_t now = auth_now(a);
    account acc;
    memset(&acc, 0, sizeof acc);
    int rc = login_parse(req, res, &body, &l);
    if (rc)
        goto out;
    if (http_req_header(req, "Origin") &&
        !auth_same_origin(a->app_url, http_req_header(req, "Origin"), NULL)) {
        rc = http_res_error(res, 403, "Cross-site request refused (Origin does not match)");
        goto out;
    }
    email = str_lower(str_dup(l.email));
    if (!email) {
        rc = F3_ENOMEM;
        goto out;
    }
    rc = login_throttle(a, req, res, email, now);
    if (rc)
        goto out;
    int found = account_find_login(a->o.store, email, l.tenant, &acc, NULL);
    if (found != 0 && found != F3_ENOTFOUND) {
        rc = found;
        goto out;
    }
    bool ok = crypto_password_verify(found == 0 ? acc.password_hash : a->dummy_hash, l.password);
    ok = ok && found == 0 && !acc.disabled && *acc.tenant_id;
    if (!ok) {
        login_count_failure(a, http_req_remote_addr(req), email, now);
        if (found == 0 && *acc.tenant_id)
            auth_audit(a, req, acc.tenant_id, acc.id, acc.email, AUDIT_LOGIN_FAILURE, NULL);
        log_info("login failed", "remoteAddr", http_req_remote_addr(req));
        rc = http_res_error(res, 401, BAD_LOGIN);
        goto out;
    }
    rc = login_succeed(a, req, res, &acc, now);
out:
    if (l.password)
        crypto_wipe((char *)l.password, strlen(l.password));
    wipe_body(req);
    crypto_wipe(acc.password_hash, sizeof acc.password_hash);
    free(email);
    json_decref(body);
    return rc < 0 ? rc : 0;
}

static int h_logout(http_request *req, http_response *res, void *ctx)
{
    auth *a = ctx;
    const user_ctx *u = user_ctx_of(req);
    session_revoke(a->o.sessions, u->session_id, u->user_id, auth_now(a), NULL);
    auth_audit(a, req, u->tenant_id, u->user_id, u->email, AUDIT_LOGOUT, NULL);
    int rc = auth_clear_cookie(a, res);
    return rc ? rc : http_res_json(res, 200, json_pack("{s:b}", "loggedOut", 1));
}

static int h_me(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    json_t *me = user_ctx_to_json(user_ctx_of(req));
    return me ? http_res_json(res, 200, json_pack("{s:o}", "user", me)) : F3_ENOMEM;
}

static int h_sessions(http_request *req, http_response *res, void *ctx)
{
    auth *a = ctx;
    const user_ctx *u = user_ctx_of(req);
    session_record rows[SESSIONS_MAX];
    size_t n = 0;
    int rc = session_list(a->o.sessions, u->user_id, u->tenant_id, auth_now(a), rows, SESSIONS_MAX,
                          &n, NULL);
    if (rc)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *j = json_pack(
            "{s:s, s:I, s:I, s:I, s:s, s:s, s:b}", "id", rows[i].id, "createdAt",
            (json_int_t)rows[i].created_at, "lastSeenAt", (json_int_t)rows[i].last_seen_at,
            "expiresAt", (json_int_t)rows[i].expires_at, "ip", rows[i].ip, "userAgent",
            rows[i].user_agent, "current", strcmp(rows[i].id, u->session_id) == 0);
        if (!j || json_array_append_new(arr, j) != 0) {
            json_decref(arr);
            return F3_ENOMEM;
        }
    }
    return arr ? http_res_json(res, 200, json_pack("{s:o}", "sessions", arr)) : F3_ENOMEM;
}

static int h_session_revoke(http_request *req, http_response *res, void *ctx)
{
    auth *a = ctx;
    const user_ctx *u = user_ctx_of(req);
    const char *id = http_req_param(req, "id");
    int rc = session_revoke(a->o.sessions, id, u->user_id, auth_now(a), NULL);
    if (rc == F3_ENOTFOUND)
        return http_res_error(res, 404, "Session not found");
    if (rc)
        return rc;
    auth_audit(a, req, u->tenant_id, u->user_id, u->email, AUDIT_SESSION_REVOKED, NULL);
    if (strcmp(id, u->session_id) == 0 && (rc = auth_clear_cookie(a, res)) != 0)
        return rc;
    return http_res_json(res, 200, json_pack("{s:b}", "revoked", 1));
}

static int h_password(http_request *req, http_response *res, void *ctx)
{
    auth *a = ctx;
    const user_ctx *u = user_ctx_of(req);
    json_t *body = NULL;
    const char *current = NULL, *next = NULL;
    account acc;
    err e;
    err_clear(&e);
    memset(&acc, 0, sizeof acc);
    int64_t now = auth_now(a);
    int rc = http_req_json(req, &body, res);
    if (rc) {
        rc = rc == F3_EINVAL ? 0 : rc;
        goto out;
    }
    if (json_get_string(body, "currentPassword", &current, &e) ||
        json_get_string(body, "newPassword", &next, &e) || account_password_check(next, &e)) {
        rc = http_res_error(res, 400, "%s", e.msg);
        goto out;
    }
    rc = account_find_login(a->o.store, u->email, u->tenant_id, &acc, &e);
    if (rc)
        goto out;
    if (!crypto_password_verify(acc.password_hash, current)) {
        login_count_failure(a, http_req_remote_addr(req), u->email, now);
        auth_audit(a, req, u->tenant_id, u->user_id, u->email, AUDIT_LOGIN_FAILURE,
                   "password change");
        rc = http_res_error(res, 403, "Current password is wrong");
        goto out;
    }
    rc = account_set_password(a->o.store, u->user_id, next, &e);
    rc = rc ? rc : session_revoke_user(a->o.sessions, u->user_id, NULL, now, NULL, &e);
    rc = rc ? rc : auth_clear_cookie(a, res);
    if (rc == 0) {
        auth_audit(a, req, u->tenant_id, u->user_id, u->email, AUDIT_PASSWORD_CHANGED, NULL);
        rc = http_res_json(res, 200, json_pack("{s:b}", "passwordChanged", 1));
    }
out:
    wipe_body(req);
    if (current)
        crypto_wipe((char *)current, strlen(current));
    if (next)
        crypto_wipe((char *)next, strlen(next));
    crypto_wipe(acc.password_hash, sizeof acc.password_hash);
    json_decref(body);
    return rc;
}

int auth_add_routes(http_router *r, auth *a, err *e)
{
    const http_route routes[] = {
        {"POST", "/api/v1/auth/login", h_login, a, HTTP_ACCESS_PUBLIC},
        {"POST", "/api/v1/auth/logout", h_logout, a, HTTP_ACCESS_SESSION},
        {"GET", "/api/v1/auth/me", h_me, a, HTTP_ACCESS_SESSION},
        {"GET", "/api/v1/auth/sessions", h_sessions, a, HTTP_ACCESS_SESSION},
        {"DELETE", "/api/v1/auth/sessions/:id", h_session_revoke, a, HTTP_ACCESS_SESSION},
        {"POST", "/api/v1/auth/password", h_password, a, HTTP_ACCESS_SESSION},
    };
    return http_router_add(r, routes, sizeof routes / sizeof routes[0], e);
}
