/*
 * session_store.c - what every session store shares: tokens, their ids, and
 * the forwarding of calls to the implementation (see session_store.h).
 */
#include "services/gateway/session_store.h"

#include "core/crypto.h"
#include "core/str.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

int session_token_new(buf *token_out, char id[SESSION_ID_LEN + 1])
{
    size_t start = token_out->len;
    int rc = crypto_random_token(token_out, SESSION_TOKEN_BYTES);
    if (rc)
        return rc;
    session_id_of_token(token_out->data + start, id);
    return 0;
}

void session_id_of_token(const char *token, char id[SESSION_ID_LEN + 1])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(id, SESSION_ID_LEN + 1, h, sizeof h);
}

static void copy_trunc(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

int session_start(session_store *s, const char *user_id, const char *tenant_id, const char *ip,
                  const char *user_agent, int64_t now_ms, buf *token_out, session_record *rec,
                  err *e)
{
    session_record r;
    memset(&r, 0, sizeof r);
    if (strlen(user_id) >= sizeof r.user_id || strlen(tenant_id) >= sizeof r.tenant_id)
        return err_set(e, F3_EINVAL, "session: user or tenant id too long");
    copy_trunc(r.user_id, sizeof r.user_id, user_id);
    copy_trunc(r.tenant_id, sizeof r.tenant_id, tenant_id);
    copy_trunc(r.ip, sizeof r.ip, ip);
    /* Any bytes a client sent; stored as text and listed in JSON. */
    str_utf8_copy(r.user_agent, sizeof r.user_agent, user_agent);
    r.created_at = r.last_seen_at = now_ms;
    r.expires_at = now_ms + s->limits.max_age_ms;
    size_t start = token_out->len;
    int rc = session_token_new(token_out, r.id);
    if (rc)
        return err_set(e, rc, "session: cannot make a token");
    rc = s->ops->create(s, &r, e);
    if (rc) {
        crypto_wipe(token_out->data + start, token_out->len - start);
        token_out->len = start;
        token_out->data[start] = '\0';
        return rc;
    }
    if (rec)
        *rec = r;
    return 0;
}

int session_resolve(session_store *s, const char *token, int64_t now_ms, session_record *out,
                    err *e)
{
    char id[SESSION_ID_LEN + 1];
    session_id_of_token(token, id);
    return s->ops->find(s, id, now_ms, out, e);
}

int session_revoke(session_store *s, const char *id, const char *user_id, int64_t now_ms, err *e)
{
    return s->ops->revoke(s, id, user_id, now_ms, e);
}

int session_revoke_user(session_store *s, const char *user_id, const char *tenant_id,
                        int64_t now_ms, int *count, err *e)
{
    return s->ops->revoke_user(s, user_id, tenant_id, now_ms, count, e);
}

int session_list(session_store *s, const char *user_id, const char *tenant_id, int64_t now_ms,
                 session_record *out, size_t max, size_t *n, err *e)
{
    return s->ops->list(s, user_id, tenant_id, now_ms, out, max, n, e);
}

void session_store_free(session_store *s)
{
    if (s)
        s->ops->free(s);
}
