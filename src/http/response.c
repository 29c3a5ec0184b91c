/*
 * response.c - response builders and the error body (see response.h).
 *
 * Builders only fill the http_response; turning it into bytes on the wire is
 * the server's job. The error body is assembled by hand so that its members keep
 * their documented order and a message with invalid UTF-8 (a decoded path
 * parameter, say) still yields valid JSON.
 */
#include "http/exchange.h"

#include "core/err.h"
#include "core/str.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ERROR_MESSAGE_CAP 2048

/* ---- lifecycle --------------------------------------------------------- */

void http_res_init(http_response *res, const char *correlation_id)
{
    memset(res, 0, sizeof *res);
    buf_init(&res->body, 0);
    res->correlation_id = correlation_id;
}

void http_res_reset(http_response *res)
{
    const char *corr = res->correlation_id;
    http_res_cleanup(res);
    http_res_init(res, corr);
}

void http_res_cleanup(http_response *res)
{
    for (size_t i = 0; i < res->nheaders; i++) {
        free(res->headers[i].name);
        free(res->headers[i].value);
    }
    free(res->headers);
    free(res->content_type);
    buf_free(&res->body);
    res->headers = NULL;
    res->nheaders = res->headers_cap = 0;
    res->content_type = NULL;
    res->status = 0;
}

int http_res_status(const http_response *res)
{
    return res ? res->status : 0;
}

/* Installs a finished body: takes b's contents, sets status and type. */
static int res_set(http_response *res, int status, const char *content_type, buf *b)
{
    char *type = strdup(content_type);
    if (!type) {
        buf_free(b);
        return F3_ENOMEM;
    }
    buf_free(&res->body);
    res->body = *b;
    buf_init(b, 0);
    free(res->content_type);
    res->content_type = type;
    res->status = status;
    return 0;
}

static bool status_valid(int status)
{
    return status >= 200 && status <= 599;
}

/* ---- bodies ------------------------------------------------------------ */

static int dump_to_buf(const char *data, size_t size, void *b)
{
    return buf_append(b, data, size) == 0 ? 0 : -1;
}

int http_res_json(http_response *res, int status, json_t *body)
{
    int rc = 0;
    buf b;
    buf_init(&b, 0);
    if (!res || !body || !status_valid(status)) {
        rc = F3_EINVAL;
        goto out;
    }
    if (json_dump_callback(body, dump_to_buf, &b, JSON_COMPACT | JSON_ENCODE_ANY) != 0) {
        rc = F3_ENOMEM;
        goto out;
    }
    rc = res_set(res, status, HTTP_JSON_CONTENT_TYPE, &b);
out:
    buf_free(&b);
    json_decref(body);
    return rc;
}

int http_res_bytes(http_response *res, int status, const char *content_type, const void *data,
                   size_t len)
{
    if (!res || !status_valid(status) || (!data && len))
        return F3_EINVAL;
    buf b;
    buf_init(&b, len + 1);
    if (buf_append(&b, data ? data : "", len) != 0)
        return F3_ENOMEM;
    return res_set(res, status, content_type ? content_type : "application/octet-stream", &b);
}

int http_res_text(http_response *res, int status, const char *content_type, const char *text)
{
    if (!text)
        return F3_EINVAL;
    return http_res_bytes(res, status, content_type ? content_type : HTTP_TEXT_CONTENT_TYPE, text,
                          strlen(text));
}

/* ---- headers ----------------------------------------------------------- */

static bool token_valid(const char *s)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
        if (!ok)
            return false;
    }
    return true;
}

static bool header_value_valid(const char *s)
{
    if (!s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

int http_res_header(http_response *res, const char *name, const char *value)
{
    static const char *const owned[] = {"Content-Length", "Transfer-Encoding", "X-Correlation-Id"};
    if (!res || !token_valid(name) || !header_value_valid(value))
        return F3_EINVAL;
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        if (strcasecmp(name, owned[i]) == 0)
            return F3_EINVAL;
    if (strcasecmp(name, "Content-Type") == 0) {
        char *type = strdup(value);
        if (!type)
            return F3_ENOMEM;
        free(res->content_type);
        res->content_type = type;
        return 0;
    }
    char *v = strdup(value);
    if (!v)
        return F3_ENOMEM;
    for (size_t i = 0; i < res->nheaders; i++) {
        if (strcasecmp(res->headers[i].name, name) == 0) {
            free(res->headers[i].value);
            res->headers[i].value = v;
            return 0;
        }
    }
    if (res->nheaders == res->headers_cap) {
        size_t cap = res->headers_cap ? res->headers_cap * 2 : 8;
        http_header_field *grown = realloc(res->headers, cap * sizeof *grown);
        if (!grown) {
            free(v);
            return F3_ENOMEM;
        }
        res->headers = grown;
        res->headers_cap = cap;
    }
    char *n = strdup(name);
    if (!n) {
        free(v);
        return F3_ENOMEM;
    }
    res->headers[res->nheaders].name = n;
    res->headers[res->nheaders].value = v;
    res->nheaders++;
    return 0;
}

/* ---- the error body ---------------------------------------------------- */

/* Copies s into out, replacing each invalid UTF-8 byte with U+FFFD. */
static int utf8_clean(buf *out, const char *s)
{
    int rc = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p && rc == 0) {
        size_t n = str_utf8_seq_len((const char *)p);
        if (n == 0) {
            rc = buf_puts(out, "\xef\xbf\xbd");
            p++;
        } else {
            rc = buf_append(out, p, n);
            p += n;
        }
    }
    return rc;
}

static int error_body(buf *b, int status, const char *message, const char *corr)
{
    buf clean;
    buf_init(&clean, 0);
    int rc = buf_printf(b, "{\"statusCode\":%d,\"error\":\"", status);
    rc = rc ? rc : buf_put_json_escaped(b, http_status_reason(status));
    rc = rc ? rc : buf_puts(b, "\",\"message\":\"");
    rc = rc ? rc : utf8_clean(&clean, message);
    rc = rc ? rc : buf_put_json_escaped(b, buf_cstr(&clean));
    rc = rc ? rc : buf_puts(b, "\",\"correlationId\":");
    if (rc == 0 && corr && *corr) {
        rc = buf_putc(b, '"');
        rc = rc ? rc : buf_put_json_escaped(b, corr);
        rc = rc ? rc : buf_putc(b, '"');
    } else if (rc == 0) {
        rc = buf_puts(b, "null");
    }
    rc = rc ? rc : buf_putc(b, '}');
    buf_free(&clean);
    return rc;
}

int http_res_error(http_response *res, int status, const char *fmt, ...)
{
    if (!res || !fmt || status < 400 || status > 599)
        return F3_EINVAL;
    buf msg, b;
    buf_init(&msg, ERROR_MESSAGE_CAP);
    buf_init(&b, 0);
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int rc = buf_vprintf(&msg, fmt, ap);
    if (rc == BUF_ERR_FULL) {
        /* an over-long message is cut, not dropped */
        char cut[ERROR_MESSAGE_CAP];
        vsnprintf(cut, sizeof cut, fmt, again);
        rc = buf_puts(&msg, cut);
    }
    va_end(again);
    va_end(ap);
    rc = rc ? F3_ENOMEM : error_body(&b, status, buf_cstr(&msg), res->correlation_id);
    if (rc) {
        buf_free(&b);
        rc = F3_ENOMEM;
    } else {
        rc = res_set(res, status, HTTP_JSON_CONTENT_TYPE, &b);
    }
    buf_free(&msg);
    return rc;
}
