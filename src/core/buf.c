/*
 * buf.c - growable capped byte buffers (see buf.h).
 *
 * Growth doubles the allocation and never lets len pass the cap; an append that
 * would fail leaves the buffer exactly as it was.
 */
#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap ? cap : BUF_DEFAULT_CAP;
}

void buf_free(buf *b)
{
    size_t cap = b->cap;
    free(b->data);
    buf_init(b, cap);
}

void buf_reset(buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Makes room for `extra` more bytes plus the terminator. */
static int buf_reserve(buf *b, size_t extra)
{
    size_t cap = b->cap ? b->cap : BUF_DEFAULT_CAP;
    if (extra > cap || b->len > cap - extra)
        return BUF_ERR_FULL;
    size_t need = b->len + extra + 1;
    if (need <= b->alloc)
        return 0;
    size_t n = b->alloc ? b->alloc : 64;
    while (n < need)
        n *= 2;
    if (n > cap + 1)
        n = cap + 1;
    char *p = realloc(b->data, n);
    if (!p)
        return BUF_ERR_NOMEM;
    b->data = p;
    b->alloc = n;
    return 0;
}

int buf_append(buf *b, const void *data, size_t len)
{
    int rc = buf_reserve(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_puts(buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_putc(buf *b, char c)
{
    return buf_append(b, &c, 1);
}

int buf_vprintf(buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return BUF_ERR_NOMEM;
    int rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/* Length of the well-formed UTF-8 sequence starting at p (2..4 bytes), or 0 if
 * the bytes there are not one (stray continuation, overlong form, surrogate,
 * past U+10FFFF, or cut short by the terminator). */
static size_t utf8_seq_len(const unsigned char *p)
{
    size_t n;
    unsigned cp;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
        cp = p[0] & 0x1fu;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        cp = p[0] & 0x0fu;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL terminator */
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int buf_put_json_escaped(buf *b, const char *s)
{
    size_t start_len = b->len;
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
        switch (*p) {
        case '"':
            rc = buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc = buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rc = buf_append(b, "\\n", 2);
            break;
        case '\r':
            rc = buf_append(b, "\\r", 2);
            break;
        case '\t':
            rc = buf_append(b, "\\t", 2);
            break;
        default:
            if (*p < 0x20) {
                rc = buf_printf(b, "\\u%04x", *p);
            } else if (*p < 0x80) {
                rc = buf_putc(b, (char)*p);
            } else {
                /* JSON text must be UTF-8: a byte that does not start a well-formed
                 * sequence becomes U+FFFD rather than making the output unparseable. */
                size_t n = utf8_seq_len(p);
                if (n) {
                    rc = buf_append(b, p, n);
                    p += n - 1;
                } else {
                    rc = buf_puts(b, "\\ufffd");
                }
            }
        }
    }
    if (rc) {
        b->len = start_len;
        if (b->data)
            b->data[b->len] = '\0';
    }
    return rc;
}

const char *buf_cstr(const buf *b)
{
    return b->data ? b->data : "";
}

char *buf_detach(buf *b)
{
    char *p = b->data ? b->data : strdup("");
    size_t cap = b->cap;
    buf_init(b, cap);
    return p;
}
