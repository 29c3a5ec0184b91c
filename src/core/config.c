/*
 * config.c - the engine behind config_keys[]: sources, precedence, validation,
 * descriptions and the Markdown reference (see config.h).
 *
 * Values are kept per source (flag, environment, .env file) so precedence is a
 * lookup, not an order of loading. This file holds no key-specific rules except
 * the DATABASE_URL/DATA_DIR default in config_database_url(); everything else is
 * driven by the rows in config_keys.c. It never logs or prints a value.
 */
#include "core/config.h"

#include "core/crypto.h"
#include "core/log.h"
#include "core/str.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_FILE_MAX    ((size_t)1024 * 1024)
#define CONFIG_SECRET_MASK "****"

#define KIB ((int64_t)1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define SEC ((int64_t)1000)

enum { SRC_FLAG, SRC_ENV, SRC_FILE, SRC_COUNT };
static const char *const source_names[SRC_COUNT] = {"flag", "env", ".env"};

struct config {
    char **values[SRC_COUNT]; /* per source, one owned string (or NULL) per key */
};

typedef struct unit {
    const char *suffix;
    int64_t factor;
} unit;

static const unit size_units[] = {
    {"", 1}, {"b", 1}, {"k", KIB}, {"kb", KIB}, {"m", MIB}, {"mb", MIB}, {"g", GIB}, {"gb", GIB},
};
static const unit duration_units[] = {
    {"", 1}, {"ms", 1}, {"s", SEC}, {"m", 60 * SEC}, {"h", 3600 * SEC},
};

/* ---- the table ---- */

static long key_index_n(const char *name, size_t len)
{
    for (size_t i = 0; name && i < config_key_count; i++)
        if (strlen(config_keys[i].name) == len && memcmp(config_keys[i].name, name, len) == 0)
            return (long)i;
    return -1;
}

static long key_index(const char *name)
{
    return name ? key_index_n(name, strlen(name)) : -1;
}

const config_key *config_key_find(const char *name)
{
    long i = key_index(name);
    return i < 0 ? NULL : &config_keys[i];
}

/* The effective value of key i and its source (SRC_* or SRC_COUNT for the default). */
static const char *effective(const config *c, size_t i, int *src)
{
    for (int s = 0; s < SRC_COUNT; s++) {
        if (c->values[s][i]) {
            if (src)
                *src = s;
            return c->values[s][i];
        }
    }
    if (src)
        *src = SRC_COUNT;
    return config_keys[i].def;
}

/* ---- parsing typed values ---- */

static bool has_bounds(const config_key *k)
{
    return k->min != 0 || k->max != 0 || k->type == CONFIG_PORT;
}

static int64_t lower_bound(const config_key *k)
{
    return k->type == CONFIG_PORT && k->min == 0 && k->max == 0 ? 1 : k->min;
}

static int64_t upper_bound(const config_key *k)
{
    return k->type == CONFIG_PORT && k->min == 0 && k->max == 0 ? 65535 : k->max;
}

/* Parses "<digits><unit>" with a unit from the table (any case). */
static int parse_with_unit(const char *s, const unit *units, size_t n_units, int64_t *out)
{
    size_t digits = strspn(s, "0123456789");
    char num[24];
    if (digits == 0 || digits >= sizeof num)
        return -1;
    memcpy(num, s, digits);
    num[digits] = '\0';
    int64_t v;
    if (str_to_int64(num, &v) != 0)
        return -1;
    for (size_t i = 0; i < n_units; i++) {
        if (str_case_eq(s + digits, units[i].suffix)) {
            if (v > INT64_MAX / units[i].factor)
                return -1;
            *out = v * units[i].factor;
            return 0;
        }
    }
    return -1;
}

/* The number behind an INT/PORT/SIZE/DURATION_MS value, bounds included. */
static int parse_number(const config_key *k, const char *v, int64_t *out)
{
    int64_t n;
    int rc;
    switch (k->type) {
    case CONFIG_INT:
    case CONFIG_PORT:
        rc = str_to_int64(v, &n);
        break;
    case CONFIG_SIZE:
        rc = parse_with_unit(v, size_units, sizeof size_units / sizeof size_units[0], &n);
        break;
    case CONFIG_DURATION_MS:
        rc = parse_with_unit(v, duration_units, sizeof duration_units / sizeof duration_units[0],
                             &n);
        break;
    default:
        return -1;
    }
    if (rc != 0 || (has_bounds(k) && (n < lower_bound(k) || n > upper_bound(k))))
        return -1;
    *out = n;
    return 0;
}

/* True if `word` (len bytes) is one of the '|'-separated choices. */
static bool choice_listed(const char *choices, const char *word, size_t len)
{
    for (const char *p = choices; p && *p;) {
        size_t n = strcspn(p, "|");
        if (n == len && memcmp(p, word, len) == 0)
            return true;
        p += n;
        if (*p == '|')
            p++;
    }
    return false;
}

static const char *url_schemes(const config_key *k)
{
    return k->choices ? k->choices : "http|https";
}

/* scheme://host... with an allowed scheme, no spaces or control characters.
 * PostgreSQL URLs may leave the host empty (libpq then uses a Unix socket), and
 * sqlite: is followed by a file path instead of //host. */
static bool url_valid(const config_key *k, const char *v)
{
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    size_t scheme_len = strcspn(v, ":");
    if (scheme_len == 0 || v[scheme_len] != ':' || !choice_listed(url_schemes(k), v, scheme_len))
        return false;
    const char *rest = v + scheme_len + 1;
    if (scheme_len == 6 && memcmp(v, "sqlite", 6) == 0)
        return *rest != '\0';
    if (!str_starts_with(rest, "//"))
        return false;
    const char *auth = rest + 2;
    size_t auth_len = strcspn(auth, "/?#");
    if (str_starts_with(v, "postgres"))
        return *auth != '\0';
    const char *host = auth;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@')
            host = auth + i + 1;
    size_t host_len = (size_t)(auth + auth_len - host);
    return host_len > 0 && host[0] != ':';
}

static bool email_local_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+/=?^_`{|}~.-", ch));
}

static bool label_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-';
}

/* A plain addr-spec: local@domain with at least two domain labels. */
static bool email_valid(const char *v)
{
    const char *at = strchr(v, '@');
    size_t len = strlen(v);
    if (!at || at == v || strchr(at + 1, '@') || len > 254 || (size_t)(at - v) > 64)
        return false;
    for (const char *p = v; p < at; p++)
        if (!email_local_char(*p) || (*p == '.' && (p == v || p + 1 == at || p[1] == '.')))
            return false;
    int labels = 0;
    for (const char *p = at + 1;;) {
        size_t n = 0;
        while (label_char(p[n]))
            n++;
        if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
            return false;
        labels++;
        if (p[n] == '\0')
            return labels >= 2;
        if (p[n] != '.')
            return false;
        p += n + 1;
    }
}

/* True if v is acceptable for row k. */
static bool value_valid(const config_key *k, const char *v)
{
    int64_t n;
    bool b;
    switch (k->type) {
    case CONFIG_STRING:
        return true;
    case CONFIG_INT:
    case CONFIG_PORT:
    case CONFIG_SIZE:
    case CONFIG_DURATION_MS:
        return parse_number(k, v, &n) == 0;
    case CONFIG_BOOL:
        return str_to_bool(v, &b) == 0;
    case CONFIG_URL:
        return url_valid(k, v);
    case CONFIG_EMAIL:
        return email_valid(v);
    case CONFIG_ENUM:
        return choice_listed(k->choices, v, strlen(v));
    case CONFIG_KEY32: {
        uint8_t key[CRYPTO_KEY_LEN];
        bool ok = crypto_key_parse(v, key, NULL) == 0;
        crypto_wipe(key, sizeof key);
        return ok;
    }
    }
    return false;
}

/* ---- text for people ---- */

static void put_size(buf *out, int64_t v)
{
    if (v > 0 && v % GIB == 0)
        buf_printf(out, "%lldg", (long long)(v / GIB));
    else if (v > 0 && v % MIB == 0)
        buf_printf(out, "%lldm", (long long)(v / MIB));
    else if (v > 0 && v % KIB == 0)
        buf_printf(out, "%lldk", (long long)(v / KIB));
    else
        buf_printf(out, "%lld", (long long)v);
}

static void put_duration(buf *out, int64_t ms)
{
    if (ms == 0)
        buf_puts(out, "0");
    else if (ms % 3600000 == 0)
        buf_printf(out, "%lldh", (long long)(ms / 3600000));
    else if (ms % 60000 == 0)
        buf_printf(out, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        buf_printf(out, "%llds", (long long)(ms / 1000));
    else
        buf_printf(out, "%lldms", (long long)ms);
}

static void put_bound(buf *out, const config_key *k, int64_t v)
{
    if (k->type == CONFIG_SIZE)
        put_size(out, v);
    else if (k->type == CONFIG_DURATION_MS)
        put_duration(out, v);
    else
        buf_printf(out, "%lld", (long long)v);
}

/* Writes the bounds of k, if any, as `before` MIN `middle` MAX. */
static void put_range(buf *out, const config_key *k, const char *before, const char *middle)
{
    if (!has_bounds(k))
        return;
    buf_puts(out, before);
    put_bound(out, k, lower_bound(k));
    buf_puts(out, middle);
    put_bound(out, k, upper_bound(k));
}

/* Writes the choices "a|b|c" as "a, b or c", each wrapped in `quote`, and each
 * scheme followed by "://" (or ":" for sqlite) when as_schemes. */
static void put_choices(buf *out, const char *choices, const char *quote, bool as_schemes)
{
    if (!choices)
        return;
    for (const char *p = choices; *p;) {
        size_t n = strcspn(p, "|");
        const char *next = p[n] == '|' ? p + n + 1 : p + n;
        const char *sep = *next == '\0' ? "" : strchr(next, '|') ? ", " : " or ";
        const char *tail = "";
        if (as_schemes)
            tail = n == 6 && memcmp(p, "sqlite", 6) == 0 ? ":" : "://";
        buf_printf(out, "%s%.*s%s%s%s", quote, (int)n, p, tail, quote, sep);
        p = next;
    }
}

/* What a value of row k must look like: "must be an integer between 1 and 256". */
static void put_expectation(buf *out, const config_key *k)
{
    switch (k->type) {
    case CONFIG_STRING:
        buf_puts(out, "must be text");
        break;
    case CONFIG_INT:
    case CONFIG_PORT:
        buf_puts(out, "must be an integer");
        put_range(out, k, " between ", " and ");
        break;
    case CONFIG_SIZE:
        buf_puts(out, "must be a size");
        put_range(out, k, " between ", " and ");
        buf_puts(out, " (bytes, or with a k, m or g suffix: 1048576, 512k, 1m)");
        break;
    case CONFIG_DURATION_MS:
        buf_puts(out, "must be a duration");
        put_range(out, k, " between ", " and ");
        buf_puts(out, " (milliseconds, or with a ms, s, m or h suffix: 1500, 30s, 5m, 1h)");
        break;
    case CONFIG_BOOL:
        buf_puts(out, "must be true or false (or 1/0, yes/no, on/off)");
        break;
    case CONFIG_URL:
        buf_puts(out, "must be a URL starting with ");
        put_choices(out, url_schemes(k), "", true);
        break;
    case CONFIG_EMAIL:
        buf_puts(out, "must be an email address such as name@example.com");
        break;
    case CONFIG_ENUM:
        buf_puts(out, "must be one of ");
        put_choices(out, k->choices, "", false);
        break;
    case CONFIG_KEY32:
        buf_puts(out, "must be a 32-byte key written as 64 hex characters or base64");
        break;
    }
}

/* Writes a value as it may be shown: secrets as ****, the password part of a
 * URL's user info as ****, control characters escaped so a value stays on one line. */
static void put_shown(buf *out, const config_key *k, const char *v)
{
    if (k->secret) {
        buf_puts(out, CONFIG_SECRET_MASK);
        return;
    }
    const char *mask_from = NULL, *mask_to = NULL;
    const char *auth = k->type == CONFIG_URL ? strstr(v, "://") : NULL;
    if (auth) {
        auth += 3;
        size_t auth_len = strcspn(auth, "/?#");
        const char *at = NULL;
        for (size_t i = 0; i < auth_len; i++)
            if (auth[i] == '@')
                at = auth + i;
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon) {
            mask_from = colon + 1;
            mask_to = at;
        }
    }
    for (const char *p = v; *p; p++) {
        if (p == mask_from) {
            buf_puts(out, CONFIG_SECRET_MASK);
            p = mask_to - 1;
        } else if (*p == '\n') {
            buf_puts(out, "\\n");
        } else if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            buf_printf(out, "\\x%02x", (unsigned char)*p);
        } else {
            buf_putc(out, *p);
        }
    }
}

/* "KEY: must be ..., got 'value'" */
static int invalid_value(err *e, const config_key *k, const char *v)
{
    buf msg;
    buf_init(&msg, (size_t)ERR_MSG_MAX * 2);
    buf_printf(&msg, "%s: ", k->name);
    put_expectation(&msg, k);
    buf_puts(&msg, ", got '");
    put_shown(&msg, k, v);
    buf_puts(&msg, "'");
    err_set(e, F3_EINVAL, "%s", buf_cstr(&msg));
    buf_free(&msg);
    return F3_EINVAL;
}

/* ---- lifecycle and sources ---- */

config *config_new(void)
{
    config *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    for (int s = 0; s < SRC_COUNT; s++) {
        c->values[s] = calloc(config_key_count, sizeof *c->values[s]);
        if (!c->values[s]) {
            config_free(c);
            return NULL;
        }
    }
    return c;
}

void config_free(config *c)
{
    if (!c)
        return;
    for (int s = 0; s < SRC_COUNT; s++) {
        for (size_t i = 0; c->values[s] && i < config_key_count; i++) {
            if (c->values[s][i] && config_keys[i].secret)
                crypto_wipe(c->values[s][i], strlen(c->values[s][i]));
            free(c->values[s][i]);
        }
        free(c->values[s]);
    }
    free(c);
}

/* Makes len bytes of value key i's value from source src; empty means unset. */
static int store(config *c, int src, size_t i, const char *value, size_t len)
{
    char *copy = NULL;
    if (len > 0) {
        copy = str_ndup(value, len);
        if (!copy)
            return F3_ENOMEM;
    }
    free(c->values[src][i]);
    c->values[src][i] = copy;
    return 0;
}

int config_load_environ(config *c, char **envp)
{
    char **vars = envp ? envp : environ;
    for (size_t n = 0; vars && vars[n]; n++) {
        const char *eq = strchr(vars[n], '=');
        if (!eq)
            continue;
        long i = key_index_n(vars[n], (size_t)(eq - vars[n]));
        if (i >= 0 && store(c, SRC_ENV, (size_t)i, eq + 1, strlen(eq + 1)) != 0)
            return F3_ENOMEM;
    }
    return 0;
}

int config_set_flag(config *c, const char *flag, const char *value, err *e)
{
    const char *f = flag ? flag : "";
    if (str_starts_with(f, "--"))
        f += 2;
    char name[64];
    size_t n = 0;
    bool ok = *f != '\0';
    for (const char *p = f; ok && *p; p++) {
        bool lower = *p >= 'a' && *p <= 'z';
        ok = n + 1 < sizeof name && (lower || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-');
        if (ok)
            name[n++] = lower ? (char)(*p - 'a' + 'A') : *p == '-' ? '_' : *p;
    }
    long i = ok ? key_index_n(name, n) : -1;
    if (i < 0)
        return err_set(e, F3_EINVAL, "unknown option --%s", f);
    if (!value)
        return err_set(e, F3_EINVAL, "option --%s needs a value", f);
    if (store(c, SRC_FLAG, (size_t)i, value, strlen(value)) != 0)
        return err_set(e, F3_ENOMEM, "out of memory");
    return 0;
}

/* ---- .env files ---- */

/* Reads the whole file into out. A missing file leaves out empty and returns 1
 * when that is allowed. */
static int read_small_file(const char *path, bool must_exist, buf *out, err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT && !must_exist)
            return 1;
        return err_set(e, errno == ENOENT ? F3_ENOTFOUND : F3_EIO, "%s: cannot open: %s", path,
                       strerror(errno));
    }
    int rc = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (buf_append(out, chunk, n) != 0) {
            rc = err_set(e, F3_ETOOBIG, "%s: larger than %zu bytes", path, CONFIG_FILE_MAX);
            goto out;
        }
    }
    if (ferror(f))
        rc = err_set(e, F3_EIO, "%s: read failed: %s", path, strerror(errno));
out:
    fclose(f);
    return rc;
}

static bool blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

static bool key_char(char ch, bool first)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_' ||
           (!first && ch >= '0' && ch <= '9');
}

typedef struct env_line {
    const char *path;
    size_t lineno;
    const char *text; /* the line, without its end-of-line characters */
    size_t len;
} env_line;

static int malformed(err *e, const env_line *l, const char *why)
{
    return err_set(e, F3_EINVAL, "%s:%zu: %s", l->path, l->lineno, why);
}

/* After a closing quote only blanks and a comment may follow. */
static int expect_line_end(const env_line *l, size_t i, err *e)
{
    while (i < l->len && blank(l->text[i]))
        i++;
    if (i < l->len && l->text[i] != '#')
        return malformed(e, l, "unexpected text after the closing quote");
    return 0;
}

static int parse_double_quoted(const env_line *l, size_t i, buf *value, err *e)
{
    int rc = 0;
    for (; i < l->len && rc == 0; i++) {
        char ch = l->text[i];
        if (ch == '"')
            return expect_line_end(l, i + 1, e);
        if (ch == '\\' && i + 1 < l->len) {
            char next = l->text[++i];
            switch (next) {
            case 'n':
                rc = buf_putc(value, '\n');
                break;
            case 'r':
                rc = buf_putc(value, '\r');
                break;
            case 't':
                rc = buf_putc(value, '\t');
                break;
            case '"':
            case '\\':
                rc = buf_putc(value, next);
                break;
            default: /* unknown escapes stay as written, as other dotenv readers do */
                rc = buf_append(value, l->text + i - 1, 2);
            }
        } else {
            rc = buf_putc(value, ch);
        }
    }
    if (rc)
        return err_set(e, F3_ENOMEM, "out of memory reading %s", l->path);
    return malformed(e, l, "unterminated double-quoted value");
}

static int parse_single_quoted(const env_line *l, size_t i, buf *value, err *e)
{
    const char *end = memchr(l->text + i, '\'', l->len - i);
    if (!end)
        return malformed(e, l, "unterminated single-quoted value");
    if (buf_append(value, l->text + i, (size_t)(end - (l->text + i))) != 0)
        return err_set(e, F3_ENOMEM, "out of memory reading %s", l->path);
    return expect_line_end(l, (size_t)(end - l->text) + 1, e);
}

/* An unquoted value ends at a '#' that follows a blank; trailing blanks are dropped. */
static int parse_unquoted(const env_line *l, size_t i, buf *value, err *e)
{
    size_t end = i;
    while (end < l->len && !(l->text[end] == '#' && blank(l->text[end - 1])))
        end++;
    while (end > i && blank(l->text[end - 1]))
        end--;
    if (buf_append(value, l->text + i, end - i) != 0)
        return err_set(e, F3_ENOMEM, "out of memory reading %s", l->path);
    return 0;
}

static int parse_env_line(config *c, const env_line *l, err *e)
{
    const char *t = l->text;
    size_t i = 0;
    int rc = 0;
    while (i < l->len && blank(t[i]))
        i++;
    if (i == l->len || t[i] == '#')
        return 0;
    if (l->len - i > 7 && memcmp(t + i, "export", 6) == 0 && blank(t[i + 6])) {
        i += 6;
        while (i < l->len && blank(t[i]))
            i++;
    }
    size_t key_start = i;
    if (i == l->len || !key_char(t[i], true))
        return malformed(e, l, "expected KEY=VALUE");
    while (i < l->len && key_char(t[i], false))
        i++;
    size_t key_len = i - key_start;
    while (i < l->len && blank(t[i]))
        i++;
    if (i == l->len || t[i] != '=')
        return malformed(e, l, "expected KEY=VALUE");
    i++;
    while (i < l->len && blank(t[i]))
        i++;

    buf value;
    buf_init(&value, CONFIG_FILE_MAX); /* a value cannot be longer than its file */
    if (i < l->len && t[i] == '"')
        rc = parse_double_quoted(l, i + 1, &value, e);
    else if (i < l->len && t[i] == '\'')
        rc = parse_single_quoted(l, i + 1, &value, e);
    else
        rc = parse_unquoted(l, i, &value, e);
    if (rc)
        goto out;
    long k = key_index_n(t + key_start, key_len);
    if (k < 0) {
        char key[128], line[24];
        snprintf(key, sizeof key, "%.*s", (int)key_len, t + key_start);
        snprintf(line, sizeof line, "%zu", l->lineno);
        log_warn("ignoring unknown key in env file", "file", l->path, "line", line, "key", key);
        goto out;
    }
    rc = store(c, SRC_FILE, (size_t)k, buf_cstr(&value), value.len);
    if (rc)
        err_set(e, rc, "out of memory");
out:
    if (value.data)
        crypto_wipe(value.data, value.alloc);
    buf_free(&value);
    return rc;
}

int config_load_env_file(config *c, const char *path, bool must_exist, err *e)
{
    if (!path)
        return err_set(e, F3_EINVAL, "no .env file path given");
    buf text;
    buf_init(&text, CONFIG_FILE_MAX);
    int rc = read_small_file(path, must_exist, &text, e);
    if (rc == 1) {
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    const char *p = buf_cstr(&text), *end = p + text.len;
    if (text.len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) /* UTF-8 byte order mark */
        p += 3;
    for (size_t lineno = 1; p < end && rc == 0; lineno++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        env_line l = {path, lineno, p, len};
        if (len > 0 && p[len - 1] == '\r')
            l.len--;
        if (memchr(l.text, '\0', l.len))
            rc = malformed(e, &l, "line contains a NUL byte");
        else
            rc = parse_env_line(c, &l, e);
        p = nl ? nl + 1 : end;
    }
out:
    if (text.data)
        crypto_wipe(text.data, text.alloc);
    buf_free(&text);
    return rc;
}

/* ---- reading ---- */

int config_validate(const config *c, err *e)
{
    for (size_t i = 0; i < config_key_count; i++) {
        const char *v = effective(c, i, NULL);
        if (v && !value_valid(&config_keys[i], v))
            return invalid_value(e, &config_keys[i], v);
    }
    return 0;
}

const char *config_get(const config *c, const char *key)
{
    long i = key_index(key);
    assert(i >= 0 && "config_get: unknown key");
    return i < 0 ? NULL : effective(c, (size_t)i, NULL);
}

int64_t config_get_int(const config *c, const char *key)
{
    long i = key_index(key);
    assert(i >= 0 && "config_get_int: unknown key");
    if (i < 0)
        return 0;
    const config_key *k = &config_keys[i];
    assert(k->type == CONFIG_INT || k->type == CONFIG_PORT || k->type == CONFIG_SIZE ||
           k->type == CONFIG_DURATION_MS);
    const char *v = effective(c, (size_t)i, NULL);
    int64_t n;
    if (v && parse_number(k, v, &n) == 0)
        return n;
    if (k->def && parse_number(k, k->def, &n) == 0)
        return n;
    return 0;
}

bool config_get_bool(const config *c, const char *key)
{
    long i = key_index(key);
    assert(i >= 0 && "config_get_bool: unknown key");
    assert(i < 0 || config_keys[i].type == CONFIG_BOOL);
    if (i < 0)
        return false;
    bool b;
    const char *v = effective(c, (size_t)i, NULL);
    if (v && str_to_bool(v, &b) == 0)
        return b;
    if (config_keys[i].def && str_to_bool(config_keys[i].def, &b) == 0)
        return b;
    return false;
}

const char *config_source(const config *c, const char *key)
{
    long i = key_index(key);
    assert(i >= 0 && "config_source: unknown key");
    if (i < 0)
        return "unset";
    int src;
    const char *v = effective(c, (size_t)i, &src);
    if (!v)
        return "unset";
    return src == SRC_COUNT ? "default" : source_names[src];
}

int config_database_url(const config *c, buf *out, err *e)
{
    long i = key_index("DATABASE_URL");
    assert(i >= 0);
    const config_key *k = &config_keys[i];
    const char *url = effective(c, (size_t)i, NULL);
    size_t start = out->len;
    int rc;
    if (url) {
        if (!value_valid(k, url))
            return invalid_value(e, k, url);
        rc = buf_puts(out, url);
    } else {
        const char *dir = config_get(c, "DATA_DIR");
        size_t len = strlen(dir);
        while (len > 1 && dir[len - 1] == '/')
            len--;
        if (len == 1 && dir[0] == '/')
            len = 0;
        rc = buf_printf(out, "sqlite:%.*s/f3connect.db", (int)len, dir);
    }
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return err_set(e, rc == BUF_ERR_FULL ? F3_ETOOBIG : F3_ENOMEM,
                       "DATABASE_URL: does not fit in the buffer");
    }
    return 0;
}

int config_describe(const config *c, buf *out)
{
    size_t start = out->len;
    int rc = 0;
    buf line;
    buf_init(&line, 0);
    for (size_t i = 0; i < config_key_count && rc == 0; i++) {
        const config_key *k = &config_keys[i];
        int src;
        const char *v = effective(c, i, &src);
        buf_reset(&line);
        buf_printf(&line, "%s=", k->name);
        if (!v) {
            buf_puts(&line, " (unset");
            if (strcmp(k->name, "DATABASE_URL") == 0) {
                buf_puts(&line, "; using ");
                config_database_url(c, &line, NULL);
            }
            buf_puts(&line, ")");
        } else {
            put_shown(&line, k, v);
            buf_printf(&line, " (%s)", src == SRC_COUNT ? "default" : source_names[src]);
            if (!value_valid(k, v)) {
                buf_puts(&line, " INVALID: ");
                put_expectation(&line, k);
            }
        }
        if (buf_putc(&line, '\n') == 0)
            rc = buf_append(out, line.data, line.len);
        else
            rc = BUF_ERR_NOMEM;
    }
    buf_free(&line);
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return rc == BUF_ERR_FULL ? F3_ETOOBIG : F3_ENOMEM;
    }
    return 0;
}

/* Writes text for a Markdown table cell: '|' escaped, line breaks as spaces. */
static void put_cell(buf *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '|')
            buf_puts(out, "\\|");
        else if (*p == '\n' || *p == '\r')
            buf_putc(out, ' ');
        else
            buf_putc(out, *p);
    }
}

/* The sentence the reference adds after a key's doc: its type and bounds. */
static void put_type_hint(buf *out, const config_key *k)
{
    switch (k->type) {
    case CONFIG_STRING:
    case CONFIG_KEY32:
        break;
    case CONFIG_INT:
    case CONFIG_PORT:
        buf_puts(out, " Integer");
        put_range(out, k, ", ", " to ");
        buf_puts(out, ".");
        break;
    case CONFIG_SIZE:
        buf_puts(out, " Size: bytes, or with a `k`, `m` or `g` suffix (`512k`, `1m`)");
        put_range(out, k, "; ", " to ");
        buf_puts(out, ".");
        break;
    case CONFIG_DURATION_MS:
        buf_puts(out, " Duration: milliseconds, or with a `ms`, `s`, `m` or `h` suffix (`30s`)");
        put_range(out, k, "; ", " to ");
        buf_puts(out, ".");
        break;
    case CONFIG_BOOL:
        buf_puts(out, " `true` or `false`.");
        break;
    case CONFIG_URL:
        buf_puts(out, " URL starting with ");
        put_choices(out, url_schemes(k), "`", true);
        buf_puts(out, ".");
        break;
    case CONFIG_EMAIL:
        buf_puts(out, " Email address.");
        break;
    case CONFIG_ENUM:
        buf_puts(out, " One of ");
        put_choices(out, k->choices, "`", false);
        buf_puts(out, ".");
        break;
    }
    if (k->secret)
        buf_puts(out, " Secret: never logged or shown.");
}

static bool group_seen_before(size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(config_keys[j].group, config_keys[i].group) == 0)
            return true;
    return false;
}

int config_reference_markdown(buf *out)
{
    size_t start = out->len;
    buf doc;
    buf_init(&doc, 0);
    for (size_t g = 0; g < config_key_count; g++) {
        if (group_seen_before(g))
            continue;
        const char *group = config_keys[g].group;
        char first = group[0] >= 'a' && group[0] <= 'z' ? (char)(group[0] - 'a' + 'A') : group[0];
        buf_printf(&doc, "%s### %c%s\n\n", doc.len ? "\n" : "", first, group + 1);
        buf_puts(&doc, "| Key | Default | Description |\n| --- | --- | --- |\n");
        for (size_t i = g; i < config_key_count; i++) {
            const config_key *k = &config_keys[i];
            if (strcmp(k->group, group) != 0)
                continue;
            buf_printf(&doc, "| `%s` | ", k->name);
            if (k->def) {
                buf_putc(&doc, '`');
                put_cell(&doc, k->def);
                buf_putc(&doc, '`');
            } else {
                buf_puts(&doc, "(none)");
            }
            buf_puts(&doc, " | ");
            put_cell(&doc, k->doc);
            put_type_hint(&doc, k);
            buf_puts(&doc, " |\n");
        }
    }
    int rc = buf_append(out, buf_cstr(&doc), doc.len);
    buf_free(&doc);
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return rc == BUF_ERR_FULL ? F3_ETOOBIG : F3_ENOMEM;
    }
    return 0;
}
