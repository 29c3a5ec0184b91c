/*
 * user_context.c - building, reading and writing the caller's identity
 * (see user_context.h). No database, no logging.
 */
#include "services/access/user_context.h"

#include <stdlib.h>
#include <string.h>

const char *const user_ctx_header_names[USER_CTX_HEADER_COUNT] = {
    USER_CTX_HEADER_USER_ID, USER_CTX_HEADER_TENANT_ID,   USER_CTX_HEADER_EMAIL,
    USER_CTX_HEADER_ROLES,   USER_CTX_HEADER_PERMISSIONS, USER_CTX_HEADER_SUPER_ADMIN,
};

static bool copy_field(char *dst, size_t size, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= size)
        return false;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
    return true;
}

user_ctx *user_ctx_new(const char *user_id, const char *tenant_id, const char *email,
                       const char *role, bool super_admin)
{
    user_ctx *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    if (!copy_field(u->user_id, sizeof u->user_id, user_id) ||
        !copy_field(u->tenant_id, sizeof u->tenant_id, tenant_id) ||
        !copy_field(u->email, sizeof u->email, email) ||
        !copy_field(u->roles, sizeof u->roles, role)) {
        free(u);
        return NULL;
    }
    u->super_admin = super_admin;
    u->permissions = rbac_role_permissions(role, super_admin);
    return u;
}

void user_ctx_free(void *u)
{
    free(u);
}

const user_ctx *user_ctx_of(const http_request *req)
{
    return http_req_user(req);
}

bool user_ctx_can(const user_ctx *u, const char *name)
{
    return u && rbac_allows(u->permissions, name);
}

user_ctx *user_ctx_from_headers(const http_request *req)
{
    const char *id = http_req_header(req, USER_CTX_HEADER_USER_ID);
    const char *tenant = http_req_header(req, USER_CTX_HEADER_TENANT_ID);
    if (!id || !*id || !tenant || !*tenant)
        return NULL;
    const char *sa = http_req_header(req, USER_CTX_HEADER_SUPER_ADMIN);
    user_ctx *u =
        user_ctx_new(id, tenant, http_req_header(req, USER_CTX_HEADER_EMAIL),
                     http_req_header(req, USER_CTX_HEADER_ROLES), sa && strcmp(sa, "true") == 0);
    if (u && !u->super_admin)
        u->permissions = rbac_parse(http_req_header(req, USER_CTX_HEADER_PERMISSIONS));
    return u;
}

int user_ctx_to_headers(const user_ctx *u, buf *out, const char *values[USER_CTX_HEADER_COUNT])
{
    size_t offs[USER_CTX_HEADER_COUNT];
    const char *plain[] = {u->user_id, u->tenant_id, u->email, u->roles};
    int rc = 0;
    buf_reset(out);
    for (size_t i = 0; rc == 0 && i < 4; i++) {
        offs[i] = out->len;
        rc = buf_append(out, plain[i], strlen(plain[i]) + 1);
    }
    offs[4] = out->len;
    rc = rc ? rc : rbac_format(u->permissions, out);
    rc = rc ? rc : buf_putc(out, '\0');
    offs[5] = out->len;
    rc = rc ? rc : buf_puts(out, u->super_admin ? "true" : "false");
    if (rc)
        return rc;
    for (size_t i = 0; i < USER_CTX_HEADER_COUNT; i++)
        values[i] = out->data + offs[i];
    return 0;
}

/* The comma-separated list as a JSON array of strings. */
static json_t *list_json(const char *list)
{
    json_t *a = json_array();
    const char *p = list;
    while (a && p && *p) {
        size_t n = strcspn(p, ",");
        if (n && json_array_append_new(a, json_stringn(p, n)) != 0) {
            json_decref(a);
            return NULL;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return a;
}

json_t *user_ctx_to_json(const user_ctx *u)
{
    buf perms;
    buf_init(&perms, 0);
    json_t *j = NULL;
    if (rbac_format(u->permissions, &perms) == 0)
        j = json_pack("{s:s, s:s, s:s, s:o?, s:o?, s:b}", "userId", u->user_id, "tenantId",
                      u->tenant_id, "email", u->email, "roles", list_json(u->roles), "permissions",
                      list_json(buf_cstr(&perms)), "isSuperAdmin", u->super_admin);
    buf_free(&perms);
    return j;
}
