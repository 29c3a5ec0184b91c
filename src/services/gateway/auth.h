/*
 * auth.h - the gateway's local duties (seed 004): login/logout and sessions,
 * the one guard every request passes, rate limits, the internal-key check,
 * CSRF protection, security headers, and the admin API of users and the audit log.
 *
 * The guard (auth_guard) is installed as http_server_opts.guard and decides from
 * http_route.access alone: HTTP_ACCESS_PUBLIC routes pass (after the per-IP
 * limit), HTTP_ACCESS_INTERNAL routes need X-Internal-Key and a path under
 * /internal/ (and /internal/ paths need nothing less), HTTP_ACCESS_SESSION
 * routes need a live session, a permission name needs a session whose role
 * grants it, and anything else (no declaration, an unknown permission) is
 * denied. A passing request carries the caller's user_ctx (user_context.h).
 *
 * Sessions and limits come in through interfaces (session_store.h,
 * ratelimit.h) so the distributed gateway can keep them in Redis.
 */
#ifndef F3_GATEWAY_AUTH_H
#define F3_GATEWAY_AUTH_H

#include "core/buf.h"
#include "core/err.h"
#include "db/db.h"
#include "http/router.h"
#include "services/gateway/ratelimit.h"
#include "services/gateway/session_store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_COOKIE_SECURE       "__Host-f3_session" /* APP_URL is https */
#define AUTH_COOKIE_PLAIN        "f3_session"
#define AUTH_INTERNAL_KEY_HEADER "X-Internal-Key"
#define AUTH_INTERNAL_PREFIX     "/internal/"

typedef struct auth_opts {
    db *store;                /* borrowed: users, memberships, audit log */
    session_store *sessions;  /* borrowed */
    ratelimit *limits;        /* borrowed */
    const char *app_url;      /* origin for the CSRF check; https makes cookies Secure */
    const char *internal_key; /* NULL or "": every /internal/ route is refused */
    ratelimit_rule per_ip;    /* every request, per client address */
    ratelimit_rule per_user;  /* every signed-in request, per user */
    ratelimit_rule login;     /* login attempts per client address */
    /* Failed logins allowed per hour per account and per address; the buckets
     * are sized so that no hour ever sees more (see auth_failure_rule). */
    int64_t max_failures_account;
    int64_t max_failures_ip;
    int64_t (*now_ms)(void); /* NULL: clock_now_ms; tests inject their own */
} auth_opts;

typedef struct auth auth;

/* A gateway over opts (copied; strings copied). NULL with e set on failure.
 * Caller frees with auth_free after the server stopped. */
auth *auth_new(const auth_opts *opts, err *e);
void auth_free(auth *a);

/* The guard for http_server_opts.guard (ctx = the auth). */
int auth_guard(http_request *req, const http_route *route, http_response *res, void *ctx);

/* The response hook for http_server_opts.on_response (ctx = the auth): the
 * security headers on every response. */
void auth_security_headers(const http_request *req, http_response *res, void *ctx);

/* POST /api/v1/auth/login, POST /api/v1/auth/logout, GET /api/v1/auth/me,
 * GET /api/v1/auth/sessions, DELETE /api/v1/auth/sessions/:id,
 * POST /api/v1/auth/password. */
int auth_add_routes(http_router *r, auth *a, err *e);

/* users.manage: GET/POST /api/v1/users, GET/PATCH/DELETE /api/v1/users/:id,
 * GET /api/v1/roles; audit.read: GET /api/v1/audit. Scoped to the caller's tenant. */
int auth_add_admin_routes(http_router *r, auth *a, err *e);

/* ---- pure helpers (auth_web.c), exposed for tests -------------------------- */

/* True if app_url is https (cookies Secure, __Host- prefix, HSTS). */
bool auth_url_is_https(const char *app_url);

/* The session cookie's name for that setting. */
const char *auth_cookie_name(bool secure);

/* Appends a Set-Cookie value: name=value; Path=/; Max-Age=N; HttpOnly;
 * SameSite=Lax[; Secure]. value "" with max_age_s 0 clears the cookie. */
int auth_cookie_build(buf *out, bool secure, const char *value, int64_t max_age_s);

/* Copies the value of cookie `name` from a Cookie header into out (size bytes).
 * False when absent, empty or too long. */
bool auth_cookie_get(const char *cookie_header, const char *name, char *out, size_t size);

/* Appends the origin (scheme://host[:port], lower-case, default port dropped)
 * of url. F3_EINVAL when url is not an absolute http(s) URL. */
int auth_origin_of(const char *url, buf *out);

/* The CSRF check: true if Origin, or else Referer, names the origin of app_url.
 * Both absent, "null", or another origin: false. */
bool auth_same_origin(const char *app_url, const char *origin, const char *referer);

/* The bucket for "at most n per hour": half of n up front, refilled at half of n
 * per hour, so any one hour allows at most n (n >= 2). */
ratelimit_rule auth_failure_rule(int64_t n);

#endif
