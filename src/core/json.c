/*
 * json.c - field getters with precise messages, strict parsing, compact dumping.
 *
 * Everything here reads or writes a jansson document; nothing keeps state, and
 * nothing logs (a caller decides whether bad input is worth a log line).
 */
#include "core/json.h"

#include <string.h>

_Static_assert(sizeof(json_int_t) == sizeof(int64_t), "json_int_t must be 64-bit");

typedef struct json_want {
    const char *name; /* for "must be <name>" */
    bool (*matches)(const json_t *v);
} json_want;

static bool is_string(const json_t *v)
{
    return json_is_string(v);
}

static bool is_integer(const json_t *v)
{
    return json_is_integer(v);
}

static bool is_boolean(const json_t *v)
{
    return json_is_boolean(v);
}

static bool is_object(const json_t *v)
{
    return json_is_object(v);
}

static bool is_array(const json_t *v)
{
    return json_is_array(v);
}

static const json_want want_string = {"a string", is_string};
static const json_want want_int = {"an integer", is_integer};
static const json_want want_bool = {"a boolean", is_boolean};
static const json_want want_object = {"an object", is_object};
static const json_want want_array = {"an array", is_array};

/* A path is one or more non-empty keys joined by single dots. */
static bool json_path_valid(const char *path)
{
    if (!path || !*path)
        return false;
    size_t seg_len = 0;
    for (const char *p = path;; p++) {
        if (*p == '.' || *p == '\0') {
            if (seg_len == 0)
                return false;
            if (*p == '\0')
                return true;
            seg_len = 0;
        } else {
            seg_len++;
        }
    }
}

/* Walks the dotted path from obj. On success *found is the value, or NULL when
 * the path ends early at an absent key or a null. Fails when a step that must be
 * an object is something else, or when the path itself is malformed. */
static int json_walk(const json_t *obj, const char *path, json_t **found, err *e)
{
    if (!json_path_valid(path))
        return err_set(e, F3_EINVAL, "invalid field path '%s'", path ? path : "");
    if (!obj || json_is_null(obj)) {
        *found = NULL;
        return 0;
    }
    if (!json_is_object(obj))
        return err_set(e, F3_EINVAL, "expected a JSON object containing field '%s'", path);
    const json_t *cur = obj;
    const char *seg = path;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t seg_len = dot ? (size_t)(dot - seg) : strlen(seg);
        json_t *next = json_object_getn(cur, seg, seg_len);
        if (!dot) {
            *found = next;
            return 0;
        }
        if (!next || json_is_null(next)) {
            *found = NULL;
            return 0;
        }
        if (!json_is_object(next))
            return err_set(e, F3_EINVAL, "field '%.*s' must be an object", (int)(dot - path), path);
        cur = next;
        seg = dot + 1;
    }
}

/* Finds a field of the wanted type. With optional set, absence and a final null
 * give *out = NULL; otherwise they are errors. */
static int json_fetch(const json_t *obj, const char *field, const json_want *want, bool optional,
                      json_t **out, err *e)
{
    json_t *v = NULL;
    int rc = json_walk(obj, field, &v, e);
    if (rc)
        return rc;
    if (!v || (optional && json_is_null(v))) {
        if (!optional)
            return err_set(e, F3_EINVAL, "field '%s' is missing", field);
        *out = NULL;
        return 0;
    }
    if (!want->matches(v))
        return err_set(e, F3_EINVAL, "field '%s' must be %s", field, want->name);
    *out = v;
    return 0;
}

int json_get_string(const json_t *obj, const char *field, const char **out, err *e)
{
    json_t *v = NULL;
    int rc = json_fetch(obj, field, &want_string, false, &v, e);
    if (rc == 0)
        *out = json_string_value(v);
    return rc;
}

int json_get_int(const json_t *obj, const char *field, int64_t *out, err *e)
{
    json_t *v = NULL;
    int rc = json_fetch(obj, field, &want_int, false, &v, e);
    if (rc == 0)
        *out = (int64_t)json_integer_value(v);
    return rc;
}

int json_get_bool(const json_t *obj, const char *field, bool *out, err *e)
{
    json_t *v = NULL;
    int rc = json_fetch(obj, field, &want_bool, false, &v, e);
    if (rc == 0)
        *out = json_is_true(v);
    return rc;
}

int json_get_object(const json_t *obj, const char *field, json_t **out, err *e)
{
    return json_fetch(obj, field, &want_object, false, out, e);
}

int json_get_array(const json_t *obj, const char *field, json_t **out, err *e)
{
    return json_fetch(obj, field, &want_array, false, out, e);
}

int json_opt_string(const json_t *obj, const char *field, const char **out, const char *def, err *e)
{
    json_t *v = NULL;
    int rc = json_fetch(obj, field, &want_string, true, &v, e);
    if (rc == 0)
        *out = v ? json_string_value(v) : def;
    return rc;
}

int json_opt_int(const json_t *obj, const char *field, int64_t *out, int64_t def, err *e)
{
    json_t *v = NULL;
    int rc = json_fetch(obj, field, &want_int, true, &v, e);
    if (rc == 0)
        *out = v ? (int64_t)json_integer_value(v) : def;
    return rc;
}

int json_opt_bool(const json_t *obj, const char *field, bool *out, bool def, err *e)
{
    json_t *v = NULL;
    int rc = json_fetch(obj, field, &want_bool, true, &v, e);
    if (rc == 0)
        *out = v ? json_is_true(v) : def;
    return rc;
}

int json_opt_object(const json_t *obj, const char *field, json_t **out, json_t *def, err *e)
{
    json_t *v = NULL;
    int rc = json_fetch(obj, field, &want_object, true, &v, e);
    if (rc == 0)
        *out = v ? v : def;
    return rc;
}

int json_opt_array(const json_t *obj, const char *field, json_t **out, json_t *def, err *e)
{
    json_t *v = NULL;
    int rc = json_fetch(obj, field, &want_array, true, &v, e);
    if (rc == 0)
        *out = v ? v : def;
    return rc;
}

int json_parse(const char *text, size_t len, json_t **out, err *e)
{
    if (!text)
        return err_set(e, F3_EINVAL, "invalid JSON: no input");
    json_error_t jerr;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        /* jansson names its own flag here; say what it means for the sender instead. */
        const char *why =
            strstr(jerr.text, "JSON_ALLOW_NUL") ? "\\u0000 is not allowed in strings" : jerr.text;
        return err_set(e, F3_EINVAL, "invalid JSON at line %d, column %d: %s", jerr.line,
                       jerr.column, why);
    }
    *out = v;
    return 0;
}

typedef struct dump_ctx {
    buf *out;
    int rc;
} dump_ctx;

static int dump_append(const char *data, size_t size, void *arg)
{
    dump_ctx *ctx = arg;
    ctx->rc = buf_append(ctx->out, data, size);
    return ctx->rc ? -1 : 0;
}

int json_dump_buf(const json_t *v, buf *out)
{
    if (!v)
        return F3_EINVAL;
    size_t start = out->len;
    dump_ctx ctx = {out, 0};
    int rc = json_dump_callback(v, dump_append, &ctx,
                                JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (rc == 0)
        return 0;
    out->len = start;
    if (out->data)
        out->data[start] = '\0';
    if (ctx.rc == BUF_ERR_FULL)
        return F3_ETOOBIG;
    return ctx.rc == BUF_ERR_NOMEM ? F3_ENOMEM : F3_EINVAL;
}
