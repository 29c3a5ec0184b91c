/*
 * user_context.h - who is calling: the identity the gateway hands to handlers.
 *
 * The shape is seed 004's user-context headers, one field per header, so that a
 * handler reads the same thing whether the embedded gateway's guard set it on
 * the request (user_ctx_of) or the distributed gateway sent it in front of a
 * service as x-user-* headers (user_ctx_from_headers). The header names live
 * here and nowhere else. A service trusting these headers must only accept them
 * from the gateway (internal network plus X-Internal-Key).
 *
 * services/access/ is not a service: it is the contract between the gateway and
 * every service (who is calling, what they may do), so any service may include it.
 */
#ifndef F3_ACCESS_USER_CONTEXT_H
#define F3_ACCESS_USER_CONTEXT_H

#include "core/buf.h"
#include "http/request.h"
#include "services/access/permissions.h"

#include <jansson.h>
#include <stdbool.h>

#define USER_CTX_HEADER_USER_ID     "x-user-id"
#define USER_CTX_HEADER_TENANT_ID   "x-tenant-id"
#define USER_CTX_HEADER_EMAIL       "x-user-email"
#define USER_CTX_HEADER_ROLES       "x-user-roles"
#define USER_CTX_HEADER_PERMISSIONS "x-user-permissions"
#define USER_CTX_HEADER_SUPER_ADMIN "x-is-super-admin"

#define USER_CTX_ID_MAX    64
#define USER_CTX_EMAIL_MAX 320
#define USER_CTX_ROLES_MAX 64

typedef struct user_ctx {
    char user_id[USER_CTX_ID_MAX + 1];
    char tenant_id[USER_CTX_ID_MAX + 1];
    char email[USER_CTX_EMAIL_MAX + 1];
    char roles[USER_CTX_ROLES_MAX + 1]; /* comma-separated, as in x-user-roles */
    rbac_set permissions;
    bool super_admin;
    /* The session behind the request (embedded gateway only; "" otherwise):
     * its public id (the hash of the cookie), for listing and logout. */
    char session_id[USER_CTX_ID_MAX + 1];
} user_ctx;

/* A new context; NULL when out of memory or a field does not fit. Caller frees
 * with user_ctx_free. */
user_ctx *user_ctx_new(const char *user_id, const char *tenant_id, const char *email,
                       const char *role, bool super_admin);

void user_ctx_free(void *u);

/* The context the guard attached to req, or NULL for an anonymous request.
 * Borrowed for the request's lifetime. */
const user_ctx *user_ctx_of(const http_request *req);

/* True if the caller holds permission `name`. */
bool user_ctx_can(const user_ctx *u, const char *name);

/* Reads the x-user-* headers (distributed mode). NULL when x-user-id or
 * x-tenant-id is missing or a value does not fit. Caller frees with user_ctx_free. */
user_ctx *user_ctx_from_headers(const http_request *req);

/* The header values, in the order of `names` below, as the distributed gateway
 * sends them: values[i] is the value of user_ctx_header_names[i]. out holds the
 * text; values point into it (valid until out changes). 0 or F3_ENOMEM. */
#define USER_CTX_HEADER_COUNT 6
extern const char *const user_ctx_header_names[USER_CTX_HEADER_COUNT];
int user_ctx_to_headers(const user_ctx *u, buf *out, const char *values[USER_CTX_HEADER_COUNT]);

/* The context as JSON members of GET /api/v1/auth/me:
 * {"userId","tenantId","email","roles":[...],"permissions":[...],"isSuperAdmin"}.
 * New reference, NULL when out of memory. */
json_t *user_ctx_to_json(const user_ctx *u);

#endif
