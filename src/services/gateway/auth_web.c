/*
 * auth_web.c - the web-facing rules of the gateway that need no state:
 * session cookie syntax, origins for the CSRF check, the login-failure bucket
 * size. Pure functions; no database, no logging.
 */
#include "services/gateway/auth.h"

#include "core/str.h"

#include <ctype.h>
#include <string.h>

#define HOUR_MS ((int64_t)3600 * 1000)

bool auth_url_is_https(const char *app_url)
{
    return app_url && strncasecmp(app_url, "https://", 8) == 0;
}

const char *auth_cookie_name(bool secure)
{
    /* __Host- is only honoured with Secure, Path=/ and no Domain. */
    return secure ? AUTH_COOKIE_SECURE : AUTH_COOKIE_PLAIN;
}

int auth_cookie_build(buf *out, bool secure, const char *value, int64_t max_age_s)
{
    return buf_printf(out, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Lax%s",
                      auth_cookie_name(secure), value ? value : "", (long long)max_age_s,
                      secure ? "; Secure" : "");
}

bool auth_cookie_get(const char *cookie_header, const char *name, char *out, size_t size)
{
    size_t nlen = strlen(name);
    const char *p = cookie_header;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        size_t len = strcspn(p, ";");
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vlen = len - nlen - 1;
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (vlen == 0 || vlen >= size)
                return false;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return true;
        }
        p += len;
    }
    return false;
}

int auth_origin_of(const char *url, buf *out)
{
    if (!url)
        return F3_EINVAL;
    size_t skip;
    const char *def_port;
    if (strncasecmp(url, "https://", 8) == 0) {
        skip = 8;
        def_port = ":443";
    } else if (strncasecmp(url, "http://", 7) == 0) {
        skip = 7;
        def_port = ":80";
    } else {
        return F3_EINVAL;
    }
    const char *host = url + skip;
    size_t hlen = strcspn(host, "/?#");
    if (hlen == 0 || memchr(host, '@', hlen))
        return F3_EINVAL;
    size_t dlen = strlen(def_port);
    if (hlen > dlen && strncmp(host + hlen - dlen, def_port, dlen) == 0)
        hlen -= dlen;
    size_t start = out->len;
    int rc = buf_append(out, url, skip);
    rc = rc ? rc : buf_append(out, host, hlen);
    for (size_t i = start; rc == 0 && i < out->len; i++)
        out->data[i] = (char)tolower((unsigned char)out->data[i]);
    return rc;
}

bool auth_same_origin(const char *app_url, const char *origin, const char *referer)
{
    const char *claimed = origin && *origin ? origin : referer;
    if (!claimed || !*claimed || strcmp(claimed, "null") == 0)
        return false;
    buf want, got;
    buf_init(&want, 0);
    buf_init(&got, 0);
    bool same = auth_origin_of(app_url, &want) == 0 && auth_origin_of(claimed, &got) == 0 &&
                strcmp(buf_cstr(&want), buf_cstr(&got)) == 0;
    buf_free(&want);
    buf_free(&got);
    return same;
}

ratelimit_rule auth_failure_rule(int64_t n)
{
    int64_t half = n / 2 > 0 ? n / 2 : 1;
    ratelimit_rule r = {half, HOUR_MS};
    return r;
}
