/*
 * str.c - small C string helpers (see str.h).
 *
 * Only ASCII semantics: none of these depend on the locale, so "I" lowercases
 * to "i" whatever LC_CTYPE says.
 */
#include "core/str.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

char *str_dup(const char *s)
{
    return s ? str_ndup(s, strlen(s)) : NULL;
}

char *str_ndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    size_t len = strnlen(s, n);
    char *p = malloc(len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool str_case_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    for (; *a && *b; a++, b++)
        if (ascii_lower(*a) != ascii_lower(*b))
            return false;
    return *a == *b;
}

bool str_starts_with(const char *s, const char *prefix)
{
    if (!s || !prefix)
        return false;
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_ends_with(const char *s, const char *suffix)
{
    if (!s || !suffix)
        return false;
    size_t n = strlen(s), m = strlen(suffix);
    return m <= n && memcmp(s + n - m, suffix, m) == 0;
}

static bool ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

char *str_trim(char *s)
{
    if (!s)
        return NULL;
    char *start = s;
    while (ascii_space(*start))
        start++;
    size_t len = strlen(start);
    while (len > 0 && ascii_space(start[len - 1]))
        len--;
    memmove(s, start, len);
    s[len] = '\0';
    return s;
}

char *str_lower(char *s)
{
    if (!s)
        return NULL;
    for (char *p = s; *p; p++)
        *p = ascii_lower(*p);
    return s;
}

int str_to_int64(const char *s, int64_t *out)
{
    if (!s)
        return -1;
    /* strtoll alone would accept leading spaces and stop quietly at trailing text. */
    const char *digits = (*s == '-' || *s == '+') ? s + 1 : s;
    if (*digits < '0' || *digits > '9')
        return -1;
    for (const char *p = digits; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int str_to_bool(const char *s, bool *out)
{
    static const struct {
        const char *text;
        bool value;
    } words[] = {
        {"true", true}, {"false", false}, {"1", true},  {"0", false},
        {"yes", true},  {"no", false},    {"on", true}, {"off", false},
    };
    for (size_t i = 0; s && i < sizeof words / sizeof words[0]; i++) {
        if (str_case_eq(s, words[i].text)) {
            *out = words[i].value;
            return 0;
        }
    }
    return -1;
}

size_t str_utf8_seq_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n;
    unsigned int min;
    if (p[0] == 0)
        return 0;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        n = 2;
        min = 0x80;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        n = 3;
        min = 0x800;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    unsigned int cp = p[0] & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

bool str_is_utf8(const char *s)
{
    if (!s)
        return false;
    while (*s) {
        size_t n = str_utf8_seq_len(s);
        if (n == 0)
            return false;
        s += n;
    }
    return true;
}

bool str_utf8_copy(char *out, size_t size, const char *s)
{
    if (size == 0)
        return !s || !*s;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t o = 0;
    bool whole = true;
    while (*p) {
        size_t n = str_utf8_seq_len((const char *)p);
        size_t take = n ? n : 1;
        if (o + take > size - 1) {
            whole = false;
            break;
        }
        if (n) {
            memcpy(out + o, p, n);
        } else {
            out[o] = '?';
            whole = false;
        }
        o += take;
        p += take;
    }
    out[o] = '\0';
    return whole;
}
