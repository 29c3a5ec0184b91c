/*
 * request.c - request accessors and JSON body parsing (see request.h).
 *
 * Everything here reads what the server already gathered; nothing touches the
 * socket. Header lookups go to libmicrohttpd, which compares names
 * case-insensitively.
 */
#include "http/exchange.h"

#include "core/err.h"
#include "core/str.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int http_req_init(http_request *req, const char *target, size_t body_cap)
{
    memset(req, 0, sizeof *req);
    buf_init(&req->body, body_cap ? body_cap : 1);
    req->target = strdup(target ? target : "");
    if (!req->target)
        return F3_ENOMEM;
    char *q = strchr(req->target, '?');
    req->path = q ? strndup(req->target, (size_t)(q - req->target)) : strdup(req->target);
    req->query = q ? q + 1 : "";
    return req->path ? 0 : F3_ENOMEM;
}

void http_req_cleanup(http_request *req)
{
    if (req->free_user && req->user)
        req->free_user(req->user);
    for (size_t i = 0; i < req->nquery; i++) {
        free(req->query_pairs[i].name);
        free(req->query_pairs[i].value);
    }
    free(req->query_pairs);
    http_match_free(&req->match);
    buf_free(&req->body);
    free(req->target);
    free(req->path);
    memset(req, 0, sizeof *req);
}

/* ---- query ------------------------------------------------------------- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes len bytes of form-encoded text into a new string; NULL with *bad set
 * when the encoding is malformed or yields a NUL. */
static char *form_decode(const char *s, size_t len, const char **bad)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1;
            int lo = hi < 0 ? -1 : hex_digit(s[i + 2]);
            if (hi < 0 || lo < 0) {
                *bad = "Malformed percent-encoding in query string";
                free(out);
                return NULL;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
            if (c == '\0') {
                *bad = "NUL byte in query string";
                free(out);
                return NULL;
            }
        }
        out[o++] = c;
    }
    out[o] = '\0';
    if (!str_is_utf8(out)) {
        *bad = "Query string is not valid UTF-8";
        free(out);
        return NULL;
    }
    return out;
}

int http_req_parse_query(http_request *req, char *msg, size_t msg_size)
{
    const char *q = req->query;
    size_t max_pairs = 1;
    for (const char *p = q; *p; p++)
        max_pairs += *p == '&';
    req->query_pairs = calloc(max_pairs, sizeof *req->query_pairs);
    if (!req->query_pairs)
        return F3_ENOMEM;
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > 0) {
            const char *eq = memchr(q, '=', len);
            size_t name_len = eq ? (size_t)(eq - q) : len;
            const char *bad = NULL;
            http_query_pair *pair = &req->query_pairs[req->nquery];
            pair->name = form_decode(q, name_len, &bad);
            if (pair->name)
                pair->value = eq ? form_decode(eq + 1, len - name_len - 1, &bad) : strdup("");
            if (!pair->name || !pair->value) {
                free(pair->name);
                pair->name = NULL;
                if (!bad)
                    return F3_ENOMEM;
                snprintf(msg, msg_size, "%s", bad);
                return F3_EINVAL;
            }
            req->nquery++;
        }
        if (!amp)
            break;
        q = amp + 1;
    }
    return 0;
}

/* ---- accessors --------------------------------------------------------- */

const char *http_req_method(const http_request *req)
{
    return req->method ? req->method : "";
}

const char *http_req_path(const http_request *req)
{
    return req->path ? req->path : "";
}

const char *http_req_query(const http_request *req)
{
    return req->query ? req->query : "";
}

const char *http_req_query_param(const http_request *req, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp(req->query_pairs[i].name, name) == 0)
            return req->query_pairs[i].value;
    return NULL;
}

const char *http_req_header(const http_request *req, const char *name)
{
    if (!req->conn || !name)
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_req_param(const http_request *req, const char *name)
{
    return http_match_param(&req->match, name);
}

const char *http_req_body(const http_request *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return buf_cstr(&req->body);
}

const char *http_req_remote_addr(const http_request *req)
{
    return req->remote_addr;
}

const char *http_req_correlation_id(const http_request *req)
{
    return req->correlation_id;
}

void *http_req_user(const http_request *req)
{
    return req->user;
}

void http_req_set_user(http_request *req, void *user, void (*free_user)(void *))
{
    if (req->free_user && req->user && req->user != user)
        req->free_user(req->user);
    req->user = user;
    req->free_user = free_user;
}

/* ---- JSON bodies ------------------------------------------------------- */

/* application/json, optionally with parameters; a charset must be utf-8.
 * Returns NULL if acceptable, else the message for the 415. */
static const char *json_content_type_problem(const char *ct)
{
    static const char json[] = "application/json";
    if (!ct)
        return "Content-Type must be application/json (none given)";
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, json, sizeof json - 1) != 0)
        return "Content-Type must be application/json";
    const char *p = ct + sizeof json - 1;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0')
        return NULL;
    if (*p != ';')
        return "Content-Type must be application/json";
    while (p && *p == ';') {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        if (len >= 8 && strncasecmp(p, "charset=", 8) == 0) {
            const char *v = p + 8;
            size_t vlen = len - 8;
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
                v++;
                vlen -= 2;
            }
            if (!((vlen == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
                  (vlen == 4 && strncasecmp(v, "utf8", 4) == 0)))
                return "Content-Type charset must be utf-8";
        }
        p = semi;
    }
    return NULL;
}

int http_req_json(http_request *req, json_t **out, http_response *res)
{
    int rc;
    *out = NULL;
    const char *problem = json_content_type_problem(http_req_header(req, "Content-Type"));
    if (problem) {
        rc = http_res_error(res, 415, "%s", problem);
        return rc ? rc : F3_EINVAL;
    }
    size_t len;
    const char *body = http_req_body(req, &len);
    if (len == 0) {
        rc = http_res_error(res, 400, "Request body is empty; expected JSON");
        return rc ? rc : F3_EINVAL;
    }
    json_error_t je;
    json_t *v = json_loadb(body, len, 0, &je);
    if (!v) {
        rc = http_res_error(res, 400, "Malformed JSON at line %d, column %d (byte %d): %s", je.line,
                            je.column, je.position, je.text);
        return rc ? rc : F3_EINVAL;
    }
    *out = v;
    return 0;
}
