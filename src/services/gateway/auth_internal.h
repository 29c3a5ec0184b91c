/*
 * auth_internal.h - the gateway state shared by auth_guard.c, auth_routes.c and
 * admin_routes.c. Nothing outside src/services/gateway/auth*.c and
 * admin_routes.c includes this file.
 */
#ifndef F3_GATEWAY_AUTH_INTERNAL_H
#define F3_GATEWAY_AUTH_INTERNAL_H

#include "services/gateway/auth.h"
#include "services/access/user_context.h"

#include "http/request.h"
#include "http/response.h"

struct auth {
    auth_opts o;
    char *app_url;
    char *internal_key;
    bool secure; /* cookies Secure and __Host-, HSTS */
    ratelimit_rule fail_account, fail_ip;
    char dummy_hash[256]; /* verified for unknown e-mail addresses: same cost */
};

/* The gateway's clock. */
int64_t auth_now(const auth *a);

/* The session token from the request's cookie into out; false when there is none. */
bool auth_request_token(const auth *a, const http_request *req, char *out, size_t size);

/* Adds a Set-Cookie that clears the session cookie. */
int auth_clear_cookie(const auth *a, http_response *res);

/* 429 with Retry-After (whole seconds, at least 1). */
int auth_too_many(http_response *res, int64_t retry_after_ms, const char *message);

/* Writes an audit entry for the caller's tenant (errors are logged, not returned). */
void auth_audit(const auth *a, const http_request *req, const char *tenant_id, const char *user_id,
                const char *email, const char *event, const char *detail);

#endif
