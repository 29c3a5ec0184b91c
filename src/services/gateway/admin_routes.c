/*
 * admin_routes.c - the admin API of the gateway: the users of the caller's
 * tenant, the role table, and the tenant's security audit log (see auth.h).
 *
 * Every handler works inside user_ctx_of(req)->tenant_id and nothing else: a
 * user id of another tenant is "not found", exactly like an id that does not
 * exist. Passwords set here follow the same rules as the CLI's.
 */
#include "services/gateway/auth_internal.h"

#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "services/gateway/accounts.h"
#include "services/gateway/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_PAGE_MAX 500

static int h_users_list(http_request *req, http_response *res, void *ctx)
{
    auth *a = ctx;
    json_t *arr = NULL;
    int rc = account_list(a->o.store, user_ctx_of(req)->tenant_id, &arr, NULL);
    return rc ? rc : http_res_json(res, 200, json_pack("{s:o}", "users", arr));
}

static int h_user_get(http_request *req, http_response *res, void *ctx)
{
    auth *a = ctx;
    account acc;
    int rc =
        account_get(a->o.store, user_ctx_of(req)->tenant_id, http_req_param(req, "id"), &acc, NULL);
    if (rc == F3_ENOTFOUND)
        return http_res_error(res, 404, "User not found");
    return rc ? rc : http_res_json(res, 200, account_to_json(&acc));
}

/* POST {"email","role"[,"password"]}: without a password one is generated and
 * returned once in "password". */
static int h_user_create(http_request *req, http_response *res, void *ctx)
{
    auth *a = ctx;
    const user_ctx *u = user_ctx_of(req);
    json_t *body = NULL;
    const char *email = NULL, *role = NULL, *password = NULL;
    buf generated;
    buf_init(&generated, 0);
    account acc;
    err e;
    err_clear(&e);
    int rc = http_req_json(req, &body, res);
    if (rc) {
        rc = rc == F3_EINVAL ? 0 : rc;
        goto out;
    }
    if (json_get_string(body, "email", &email, &e) || json_get_string(body, "role", &role, &e) ||
        json_opt_string(body, "password", &password, NULL, &e)) {
        rc = http_res_error(res, 400, "%s", e.msg);
        goto out;
    }
    if (!password) {
        if ((rc = crypto_random_token(&generated, 18)) != 0)
            goto out;
        password = buf_cstr(&generated);
    }
    rc = account_create(a->o.store, u->tenant_id, email, role, password, false, &acc, &e);
    if (rc == F3_EINVAL || rc == F3_ECONFLICT) {
        rc = http_res_error(res, rc == F3_EINVAL ? 400 : 409, "%s", e.msg);
        goto out;
    }
    if (rc)
        goto out;
    auth_audit(a, req, u->tenant_id, u->user_id, u->email, AUDIT_USER_CREATED, acc.email);
    json_t *j = account_to_json(&acc);
    if (j && generated.len)
        json_object_set_new(j, "password", json_string(password));
    rc = j ? http_res_json(res, 201, j) : F3_ENOMEM;
out:
    if (generated.data)
        crypto_wipe(generated.data, generated.len);
    buf_free(&generated);
    json_decref(body);
    return rc;
}

/* PATCH {"role"}: the user's role in this tenant. */
static int h_user_update(http_request *req, http_response *res, void *ctx)
{
    auth *a = ctx;
    const user_ctx *u = user_ctx_of(req);
    const char *id = http_req_param(req, "id");
    json_t *body = NULL;
    const char *role = NULL;
    account acc;
    err e;
    err_clear(&e);
    int rc = http_req_json(req, &body, res);
    if (rc) {
        rc = rc == F3_EINVAL ? 0 : rc;
        goto out;
    }
    if (json_get_string(body, "role", &role, &e)) {
        rc = http_res_error(res, 400, "%s", e.msg);
        goto out;
    }
    rc = account_set_role(a->o.store, u->tenant_id, id, role, &e);
    if (rc == F3_EINVAL || rc == F3_ENOTFOUND) {
        rc = rc == F3_EINVAL ? http_res_error(res, 400, "%s", e.msg)
                             : http_res_error(res, 404, "User not found");
        goto out;
    }
    rc = rc ? rc : account_get(a->o.store, u->tenant_id, id, &acc, &e);
    if (rc == 0) {
        char detail[400];
        snprintf(detail, sizeof detail, "%.320s role=%.16s", acc.email, role);
        auth_audit(a, req, u->tenant_id, u->user_id, u->email, AUDIT_USER_UPDATED, detail);
        rc = http_res_json(res, 200, account_to_json(&acc));
    }
out:
    json_decref(body);
    return rc;
}

static int h_user_remove(http_request *req, http_response *res, void *ctx)
{
    auth *a = ctx;
    const user_ctx *u = user_ctx_of(req);
    const char *id = http_req_param(req, "id");
    account acc;
    if (strcmp(id, u->user_id) == 0)
        return http_res_error(res, 409, "You cannot remove yourself");
    int rc = account_get(a->o.store, u->tenant_id, id, &acc, NULL);
    if (rc == F3_ENOTFOUND)
        return http_res_error(res, 404, "User not found");
    rc = rc ? rc : session_revoke_user(a->o.sessions, id, u->tenant_id, auth_now(a), NULL, NULL);
    rc = rc ? rc : account_remove(a->o.store, u->tenant_id, id, NULL);
    if (rc == F3_ENOTFOUND)
        return http_res_error(res, 404, "User not found");
    if (rc)
        return rc;
    auth_audit(a, req, u->tenant_id, u->user_id, u->email, AUDIT_USER_REMOVED, acc.email);
    return http_res_json(res, 200, json_pack("{s:b}", "removed", 1));
}

static int h_roles(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    (void)ctx;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < rbac_role_count(); i++) {
        json_t *perms = json_array();
        rbac_set set = rbac_role_permissions(rbac_role_name(i), false);
        for (size_t p = 0; perms && p < rbac_permission_count(); p++)
            if (set & ((rbac_set)1 << p))
                json_array_append_new(perms, json_string(rbac_permission_name(p)));
        json_t *j = json_pack("{s:s, s:o?}", "name", rbac_role_name(i), "permissions", perms);
        if (!j || json_array_append_new(arr, j) != 0) {
            json_decref(arr);
            return F3_ENOMEM;
        }
    }
    return arr ? http_res_json(res, 200, json_pack("{s:o}", "roles", arr)) : F3_ENOMEM;
}

/* GET /api/v1/audit[?event=login.failure][&limit=N] */
static int h_audit(http_request *req, http_response *res, void *ctx)
{
    auth *a = ctx;
    const char *lim = http_req_query_param(req, "limit");
    long limit = 100;
    if (lim) {
        char *end = NULL;
        limit = strtol(lim, &end, 10);
        if (!*lim || *end || limit < 1 || limit > AUDIT_PAGE_MAX)
            return http_res_error(res, 400, "limit must be an integer from 1 to %d",
                                  AUDIT_PAGE_MAX);
    }
    json_t *arr = NULL;
    int rc = audit_list(a->o.store, user_ctx_of(req)->tenant_id, http_req_query_param(req, "event"),
                        (int)limit, &arr, NULL);
    return rc ? rc : http_res_json(res, 200, json_pack("{s:o}", "entries", arr));
}

int auth_add_admin_routes(http_router *r, auth *a, err *e)
{
    const http_route routes[] = {
        {"GET", "/api/v1/users", h_users_list, a, PERM_USERS_MANAGE},
        {"POST", "/api/v1/users", h_user_create, a, PERM_USERS_MANAGE},
        {"GET", "/api/v1/users/:id", h_user_get, a, PERM_USERS_MANAGE},
        {"PATCH", "/api/v1/users/:id", h_user_update, a, PERM_USERS_MANAGE},
        {"DELETE", "/api/v1/users/:id", h_user_remove, a, PERM_USERS_MANAGE},
        {"GET", "/api/v1/roles", h_roles, a, PERM_USERS_MANAGE},
        {"GET", "/api/v1/audit", h_audit, a, PERM_AUDIT_READ},
    };
    return http_router_add(r, routes, sizeof routes / sizeof routes[0], e);
}
