/*
 * audit.h - the security audit log of a tenant (table security_audit).
 *
 * Written by the gateway for logins, failures, lockouts, logouts, revoked
 * sessions, password changes, permission denials and user changes; read by
 * GET /api/v1/audit for the caller's tenant only. Details never hold a
 * password, a session id or a key.
 */
#ifndef F3_GATEWAY_AUDIT_H
#define F3_GATEWAY_AUDIT_H

#include "core/err.h"
#include "db/db.h"

#include <jansson.h>
#include <stdint.h>

#define AUDIT_LOGIN_SUCCESS     "login.success"
#define AUDIT_LOGIN_FAILURE     "login.failure"
#define AUDIT_LOGIN_THROTTLED   "login.throttled"
#define AUDIT_LOGOUT            "logout"
#define AUDIT_SESSION_REVOKED   "session.revoked"
#define AUDIT_PASSWORD_CHANGED  "password.changed"
#define AUDIT_PERMISSION_DENIED "permission.denied"
#define AUDIT_USER_CREATED      "user.created"
#define AUDIT_USER_UPDATED      "user.updated"
#define AUDIT_USER_REMOVED      "user.removed"

typedef struct audit_entry {
    const char *tenant_id; /* required */
    const char *user_id;   /* who acted or was concerned; may be NULL */
    const char *email;     /* may be NULL */
    const char *event;     /* AUDIT_* */
    const char *ip;        /* may be NULL */
    const char *detail;    /* short text (the route, the changed user), may be NULL */
} audit_entry;

/* Appends one entry at now_ms. A failure is logged (without the detail) and
 * returned; callers carry on, as an audit write must not fail a request. */
int audit_record(db *d, const audit_entry *a, int64_t now_ms, err *e);

/* The newest `limit` entries of tenant_id (event filter optional) as a JSON array
 * of {"id","event","userId","email","ip","detail","createdAt"} in *out (new
 * reference), newest first. */
int audit_list(db *d, const char *tenant_id, const char *event, int limit, json_t **out, err *e);

#endif
