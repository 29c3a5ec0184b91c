/*
 * permissions.c - the permission and role tables (see permissions.h).
 *
 * Adding a permission is adding a row to perms[] and naming it in the roles
 * that get it; nothing else changes. Only data and lookups here.
 */
#include "services/access/permissions.h"

#include <string.h>

static const char *const perms[] = {
    PERM_ORDERS_READ,    PERM_ORDERS_WRITE,    PERM_PRINT_JOBS_READ,     PERM_PRINT_JOBS_WRITE,
    PERM_SHIPMENTS_READ, PERM_SHIPMENTS_WRITE, PERM_MAPPINGS_READ,       PERM_MAPPINGS_WRITE,
    PERM_EVENTS_READ,    PERM_ANALYTICS_READ,  PERM_INTEGRATIONS_MANAGE, PERM_QUEUES_ADMIN,
    PERM_USERS_MANAGE,   PERM_AUDIT_READ,
};

#define PERM_COUNT (sizeof perms / sizeof perms[0])

typedef struct role_row {
    const char *name;
    const char *grants; /* comma-separated permission names, or "*" for all */
} role_row;

static const role_row roles[] = {
    {RBAC_ROLE_ADMIN, "*"},
    {RBAC_ROLE_OPERATOR,
     PERM_ORDERS_READ "," PERM_ORDERS_WRITE "," PERM_PRINT_JOBS_READ "," PERM_PRINT_JOBS_WRITE
                      "," PERM_SHIPMENTS_READ "," PERM_SHIPMENTS_WRITE "," PERM_MAPPINGS_READ
                      "," PERM_MAPPINGS_WRITE "," PERM_EVENTS_READ "," PERM_ANALYTICS_READ},
    {RBAC_ROLE_VIEWER,
     PERM_ORDERS_READ "," PERM_PRINT_JOBS_READ "," PERM_SHIPMENTS_READ "," PERM_MAPPINGS_READ
                      "," PERM_EVENTS_READ "," PERM_ANALYTICS_READ},
};

#define ROLE_COUNT (sizeof roles / sizeof roles[0])

size_t rbac_permission_count(void)
{
    return PERM_COUNT;
}

const char *rbac_permission_name(size_t i)
{
    return i < PERM_COUNT ? perms[i] : NULL;
}

rbac_set rbac_all(void)
{
    return (rbac_set)((1ULL << PERM_COUNT) - 1);
}

/* The bit of the permission spelt by the n bytes at name. */
static rbac_set bit_of(const char *name, size_t n)
{
    for (size_t i = 0; i < PERM_COUNT; i++)
        if (strlen(perms[i]) == n && memcmp(perms[i], name, n) == 0)
            return (rbac_set)1 << i;
    return 0;
}

rbac_set rbac_permission_bit(const char *name)
{
    return name ? bit_of(name, strlen(name)) : 0;
}

size_t rbac_role_count(void)
{
    return ROLE_COUNT;
}

const char *rbac_role_name(size_t i)
{
    return i < ROLE_COUNT ? roles[i].name : NULL;
}

bool rbac_role_valid(const char *name)
{
    for (size_t i = 0; name && i < ROLE_COUNT; i++)
        if (strcmp(roles[i].name, name) == 0)
            return true;
    return false;
}

rbac_set rbac_parse(const char *list)
{
    rbac_set set = 0;
    const char *p = list;
    while (p && *p) {
        size_t n = strcspn(p, ",");
        while (n && *p == ' ') {
            p++;
            n--;
        }
        set |= bit_of(p, n);
        p += n;
        if (*p == ',')
            p++;
    }
    return set;
}

rbac_set rbac_role_permissions(const char *role, bool super_admin)
{
    if (super_admin)
        return rbac_all();
    for (size_t i = 0; role && i < ROLE_COUNT; i++)
        if (strcmp(roles[i].name, role) == 0)
            return strcmp(roles[i].grants, "*") == 0 ? rbac_all() : rbac_parse(roles[i].grants);
    return 0;
}

bool rbac_allows(rbac_set set, const char *name)
{
    rbac_set bit = rbac_permission_bit(name);
    return bit && (set & bit) == bit;
}

int rbac_format(rbac_set set, buf *out)
{
    bool first = true;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < PERM_COUNT; i++) {
        if (!(set & ((rbac_set)1 << i)))
            continue;
        if (!first)
            rc = buf_putc(out, ',');
        rc = rc ? rc : buf_puts(out, perms[i]);
        first = false;
    }
    return rc;
}
