/*
 * accounts.h - users, tenants and memberships as the gateway reads and writes
 * them (the tables tenants, users and tenant_memberships of 0001_initial.sql).
 *
 * A user is global (one e-mail address, stored lower-cased) and reaches tenants
 * through memberships, each naming one role of permissions.h. Every function
 * that serves a tenant's admin takes that tenant's id and touches nothing
 * outside it. Passwords are hashed here (argon2id) and never stored, returned
 * or logged in clear.
 */
#ifndef F3_GATEWAY_ACCOUNTS_H
#define F3_GATEWAY_ACCOUNTS_H

#include "core/err.h"
#include "db/db.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define ACCOUNT_PASSWORD_MIN 12  /* characters a new password needs at least */
#define ACCOUNT_PASSWORD_MAX 128 /* longer passwords are refused (argon2 cost) */

typedef struct account {
    char id[37];
    char email[321];
    char tenant_id[65]; /* the membership looked at, "" when none */
    char role[16];
    bool super_admin;
    bool disabled;
    char password_hash[256]; /* filled by account_find_login only */
} account;

/* The id of the tenant named "default" (slug), creating it when there is no
 * tenant at all; otherwise the oldest tenant. 0 or a negative code. */
int account_default_tenant(db *d, char tenant_id[65], err *e);

/* The id of the tenant whose id or slug is `ref`; with create, a missing one
 * is created with that slug. F3_ENOTFOUND otherwise. */
int account_tenant_resolve(db *d, const char *ref, bool create, char tenant_id[65], err *e);

/* Number of users. */
int account_count(db *d, int64_t *n, err *e);

/* Checks a new password's length (ACCOUNT_PASSWORD_MIN..MAX). 0 or F3_EINVAL. */
int account_password_check(const char *password, err *e);

/* Creates a user with a membership in tenant_id: email is lower-cased and must
 * look like an address, role must be a role of the table. F3_ECONFLICT when the
 * address is taken, F3_EINVAL for bad input (message says which). *out (may be
 * NULL) receives the user. */
int account_create(db *d, const char *tenant_id, const char *email, const char *role,
                   const char *password, bool super_admin, account *out, err *e);

/* The user with this address (any case) with password_hash filled and the
 * membership of tenant_id, or when tenant_id is NULL the oldest one (tenant_id
 * "" when there is none). F3_ENOTFOUND when there is no such user. */
int account_find_login(db *d, const char *email, const char *tenant_id, account *out, err *e);

/* The user user_id as a member of tenant_id. F3_ENOTFOUND when not a member. */
int account_get(db *d, const char *tenant_id, const char *user_id, account *out, err *e);

/* The members of tenant_id as a JSON array of {"id","email","role","isSuperAdmin",
 * "disabled","lastLoginAt","createdAt"} (a new reference in *out); with
 * tenant_id NULL every user with every membership (for the CLI). */
int account_list(db *d, const char *tenant_id, json_t **out, err *e);

/* Changes the role of user_id in tenant_id. F3_ENOTFOUND when not a member. */
int account_set_role(db *d, const char *tenant_id, const char *user_id, const char *role, err *e);

/* Replaces the password of user_id. */
int account_set_password(db *d, const char *user_id, const char *password, err *e);

/* Records a successful login. */
int account_touch_login(db *d, const char *user_id, int64_t now_ms, err *e);

/* Ends the membership of user_id in tenant_id and deletes the user when it was
 * the last one (with tenant_id NULL: deletes the user outright).
 * F3_ENOTFOUND when there was no such membership (user). */
int account_remove(db *d, const char *tenant_id, const char *user_id, err *e);

/* The JSON of one account: {"id","email","tenantId","role","isSuperAdmin","disabled"}. */
json_t *account_to_json(const account *a);

#endif
