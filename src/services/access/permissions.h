/*
 * permissions.h - roles and their permissions: the one table the gateway's
 * guard, the admin API and the CLI read.
 *
 * A permission is a "<resource>.<action>" name; a role is a named set of
 * permissions; a super-admin holds every permission. Routes name the
 * permission they need in http_route.access (services use the PERM_* names, never
 * string literals). Nothing here touches a database or a request.
 */
#ifndef F3_ACCESS_PERMISSIONS_H
#define F3_ACCESS_PERMISSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define PERM_ORDERS_READ         "orders.read"
#define PERM_ORDERS_WRITE        "orders.write"
#define PERM_PRINT_JOBS_READ     "printJobs.read"
#define PERM_PRINT_JOBS_WRITE    "printJobs.write"
#define PERM_SHIPMENTS_READ      "shipments.read"
#define PERM_SHIPMENTS_WRITE     "shipments.write"
#define PERM_MAPPINGS_READ       "mappings.read"
#define PERM_MAPPINGS_WRITE      "mappings.write"
#define PERM_EVENTS_READ         "events.read"
#define PERM_ANALYTICS_READ      "analytics.read"
#define PERM_INTEGRATIONS_MANAGE "integrations.manage"
#define PERM_QUEUES_ADMIN        "queues.admin"
#define PERM_USERS_MANAGE        "users.manage"
#define PERM_AUDIT_READ          "audit.read"

/* A set of permissions, one bit per row of the permission table. */
typedef uint32_t rbac_set;

#define RBAC_ROLE_ADMIN    "admin"
#define RBAC_ROLE_OPERATOR "operator"
#define RBAC_ROLE_VIEWER   "viewer"

/* Number of permissions and their names, in table order. */
size_t rbac_permission_count(void);
const char *rbac_permission_name(size_t i);

/* The bit of a permission name, or 0 when the name is unknown. */
rbac_set rbac_permission_bit(const char *name);

/* Every permission. */
rbac_set rbac_all(void);

/* Number of roles and their names, in table order (admin, operator, viewer). */
size_t rbac_role_count(void);
const char *rbac_role_name(size_t i);

/* True if name is a role of the table. */
bool rbac_role_valid(const char *name);

/* The permissions of a role (0 for an unknown role); a super-admin has rbac_all(). */
rbac_set rbac_role_permissions(const char *role, bool super_admin);

/* True if set holds the permission `name`; false for unknown names. */
bool rbac_allows(rbac_set set, const char *name);

/* Appends the names in set, comma-separated, in table order ("orders.read,orders.write"). */
int rbac_format(rbac_set set, buf *out);

/* Reads a comma-separated list of names back; unknown names are ignored. */
rbac_set rbac_parse(const char *list);

#endif
