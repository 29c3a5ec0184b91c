/*
 * session_store.h - server-side sessions behind one small interface.
 *
 * A session is an opaque random token (256 bits, URL-safe base64) held by the
 * browser in a cookie; the store only ever sees its SHA-256 (hex), which is
 * also the session's public id when a user lists and revokes sessions. A
 * session ends at its absolute expiry (created + max age), after the idle
 * timeout without use, or when revoked. The embedded gateway keeps sessions in
 * the database (session_store_db_new); the distributed one will plug a Redis
 * implementation into the same ops. Time is passed in (epoch ms) so that tests
 * control it. Nothing here logs a token or its hash.
 */
#ifndef F3_GATEWAY_SESSION_STORE_H
#define F3_GATEWAY_SESSION_STORE_H

#include "core/buf.h"
#include "core/err.h"
#include "db/db.h"

#include <stddef.h>
#include <stdint.h>

#define SESSION_TOKEN_BYTES 32
#define SESSION_ID_LEN      64 /* hex SHA-256 of the token */

typedef struct session_record {
    char id[SESSION_ID_LEN + 1];
    char user_id[65];
    char tenant_id[65];
    int64_t created_at;
    int64_t last_seen_at;
    int64_t expires_at; /* absolute expiry */
    char ip[64];
    char user_agent[256];
} session_record;

typedef struct session_limits {
    int64_t idle_ms;    /* a session unused this long ends */
    int64_t max_age_ms; /* a session ends this long after login, used or not */
} session_limits;

typedef struct session_store session_store;

typedef struct session_store_ops {
    /* Stores a new session; rec carries id, user, tenant, times, ip, agent. */
    int (*create)(session_store *s, const session_record *rec, err *e);
    /* Finds the live session `id` and records its use at now_ms. 0 with *out
     * filled, F3_ENOTFOUND when it does not exist, was revoked or has expired
     * (idle or absolute), or another negative code. */
    int (*find)(session_store *s, const char *id, int64_t now_ms, session_record *out, err *e);
    /* Revokes session `id` if it belongs to user_id (NULL: whoever owns it).
     * 0, F3_ENOTFOUND (no such live session of that user). */
    int (*revoke)(session_store *s, const char *id, const char *user_id, int64_t now_ms, err *e);
    /* Revokes every session of user_id, in tenant_id only or (NULL) everywhere;
     * *count (may be NULL) gets how many were live. */
    int (*revoke_user)(session_store *s, const char *user_id, const char *tenant_id, int64_t now_ms,
                       int *count, err *e);
    /* The live sessions of user_id in tenant_id, newest first, at most max;
     * *n gets how many were written to out. */
    int (*list)(session_store *s, const char *user_id, const char *tenant_id, int64_t now_ms,
                session_record *out, size_t max, size_t *n, err *e);
    void (*free)(session_store *s);
} session_store_ops;

/* An implementation embeds this as its first member. */
struct session_store {
    const session_store_ops *ops;
    session_limits limits;
};

/* Makes a new token (appended to token_out) and its id. 0 or F3_ENOMEM. The
 * caller wipes the token (crypto_wipe) when done with it. */
int session_token_new(buf *token_out, char id[SESSION_ID_LEN + 1]);

/* The id (hex SHA-256) of a token. */
void session_id_of_token(const char *token, char id[SESSION_ID_LEN + 1]);

/* Starts a session for user_id in tenant_id at now_ms: appends its token to
 * token_out and fills *rec (may be NULL). ip and user_agent may be NULL and are
 * truncated to fit. 0 or a negative code with e set. */
int session_start(session_store *s, const char *user_id, const char *tenant_id, const char *ip,
                  const char *user_agent, int64_t now_ms, buf *token_out, session_record *rec,
                  err *e);

/* Looks up the session of a cookie token (see ops.find). */
int session_resolve(session_store *s, const char *token, int64_t now_ms, session_record *out,
                    err *e);

/* The other operations, forwarding to the implementation. */
int session_revoke(session_store *s, const char *id, const char *user_id, int64_t now_ms, err *e);
int session_revoke_user(session_store *s, const char *user_id, const char *tenant_id,
                        int64_t now_ms, int *count, err *e);
int session_list(session_store *s, const char *user_id, const char *tenant_id, int64_t now_ms,
                 session_record *out, size_t max, size_t *n, err *e);

/* Frees the store; NULL is ignored. */
void session_store_free(session_store *s);

/* The database implementation over the sessions table of 0001_initial.sql. d is
 * borrowed and must outlive the store. NULL when out of memory. Caller frees
 * with session_store_free. */
session_store *session_store_db_new(db *d, const session_limits *limits);

#endif
