/*
 * router.c - route table and path matching (see router.h).
 *
 * Patterns are parsed once, at http_router_add(), into segment lists; a request
 * is matched by a linear walk of the table, which for the few hundred routes a
 * service has costs less than the request's own parsing. Request paths are
 * decoded here and nowhere else, so the rules on what a path may contain
 * (no "..", no NUL, no encoded '/') hold for every handler.
 */
#include "http/router.h"

#include "core/buf.h"
#include "core/str.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_MAX_SEGS  32
#define ROUTE_MAX_ALLOW 16

/* Ordered by specificity: a higher kind beats a lower one at the same position. */
typedef enum seg_kind {
    SEG_WILDCARD = 0,
    SEG_PARAM = 1,
    SEG_LITERAL = 2,
} seg_kind;

typedef struct route_seg {
    seg_kind kind;
    char *text; /* literal text or parameter name; NULL for the wildcard */
} route_seg;

typedef struct route_entry {
    http_route route; /* method and pattern point at owned copies */
    route_seg *segs;
    size_t nsegs;
} route_entry;

struct http_router {
    route_entry *entries;
    size_t n;
    size_t cap;
};

http_router *http_router_new(void)
{
    return calloc(1, sizeof(http_router));
}

static void entry_free(route_entry *en)
{
    for (size_t i = 0; i < en->nsegs; i++)
        free(en->segs[i].text);
    free(en->segs);
    free((char *)en->route.method);
    free((char *)en->route.pattern);
    free((char *)en->route.access);
    memset(en, 0, sizeof *en);
}

void http_router_free(http_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        entry_free(&r->entries[i]);
    free(r->entries);
    free(r);
}

size_t http_router_count(const http_router *r)
{
    return r ? r->n : 0;
}

/* ---- patterns ---------------------------------------------------------- */

static bool method_valid(const char *m)
{
    if (!m || !*m || strlen(m) > 16)
        return false;
    for (const char *p = m; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return false;
    return true;
}

static bool param_name_valid(const char *s, size_t len)
{
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

/* Characters a literal pattern segment may hold: RFC 3986 pchar minus '%'
 * (patterns are written decoded) and minus '*' (reserved for the wildcard). */
static bool literal_char_valid(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return strchr("-._~!$&'()+,;=:@", c) != NULL && c != '\0';
}

/* Parses one pattern into en->segs. 0 or F3_EINVAL/F3_ENOMEM with e set. */
static int pattern_parse(route_entry *en, const char *pattern, size_t idx, err *e)
{
    int rc = 0;
    const char *where = pattern ? pattern : "(null)";
    if (!pattern || pattern[0] != '/')
        return err_set(e, F3_EINVAL, "route %zu (%s): pattern must start with '/'", idx, where);
    size_t len = strlen(pattern);
    if (len > 1 && pattern[len - 1] == '/')
        len--; /* "/health/" is "/health" */
    en->segs = calloc(ROUTE_MAX_SEGS, sizeof(route_seg));
    if (!en->segs)
        return err_set(e, F3_ENOMEM, "out of memory");
    const char *p = pattern + 1;
    const char *end = pattern + len;
    while (p < end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *seg_end = slash ? slash : end;
        size_t seg_len = (size_t)(seg_end - p);
        if (en->nsegs == ROUTE_MAX_SEGS) {
            rc = err_set(e, F3_EINVAL, "route %zu (%s): more than %d segments", idx, where,
                         ROUTE_MAX_SEGS);
            goto out;
        }
        route_seg *seg = &en->segs[en->nsegs];
        if (seg_len == 0) {
            rc = err_set(e, F3_EINVAL, "route %zu (%s): empty segment", idx, where);
            goto out;
        }
        if (seg_len == 1 && p[0] == '*') {
            if (seg_end != end) {
                rc = err_set(e, F3_EINVAL, "route %zu (%s): '*' must be the last segment", idx,
                             where);
                goto out;
            }
            seg->kind = SEG_WILDCARD;
        } else if (p[0] == ':') {
            if (!param_name_valid(p + 1, seg_len - 1)) {
                rc = err_set(e, F3_EINVAL,
                             "route %zu (%s): bad parameter name '%.*s' (letters, digits, _)", idx,
                             where, (int)seg_len, p);
                goto out;
            }
            seg->kind = SEG_PARAM;
        } else {
            for (size_t i = 0; i < seg_len; i++) {
                if (!literal_char_valid(p[i])) {
                    rc = err_set(e, F3_EINVAL, "route %zu (%s): character '%c' not allowed", idx,
                                 where, p[i]);
                    goto out;
                }
            }
            if ((seg_len == 1 && p[0] == '.') || (seg_len == 2 && p[0] == '.' && p[1] == '.')) {
                rc = err_set(e, F3_EINVAL, "route %zu (%s): dot segment", idx, where);
                goto out;
            }
            seg->kind = SEG_LITERAL;
        }
        if (seg->kind != SEG_WILDCARD) {
            const char *text = seg->kind == SEG_PARAM ? p + 1 : p;
            size_t text_len = seg->kind == SEG_PARAM ? seg_len - 1 : seg_len;
            seg->text = strndup(text, text_len);
            if (!seg->text) {
                rc = err_set(e, F3_ENOMEM, "out of memory");
                goto out;
            }
            if (seg->kind == SEG_PARAM) {
                for (size_t j = 0; j < en->nsegs; j++) {
                    if (en->segs[j].kind == SEG_PARAM && strcmp(en->segs[j].text, seg->text) == 0) {
                        rc = err_set(e, F3_EINVAL, "route %zu (%s): parameter ':%s' used twice",
                                     idx, where, seg->text);
                        free(seg->text);
                        seg->text = NULL;
                        goto out;
                    }
                }
            }
        }
        en->nsegs++;
        p = seg_end + 1;
    }
out:
    return rc;
}

/* Same method and same shape: the two could never be told apart. */
static bool entries_clash(const route_entry *a, const route_entry *b)
{
    if (strcmp(a->route.method, b->route.method) != 0 || a->nsegs != b->nsegs)
        return false;
    for (size_t i = 0; i < a->nsegs; i++) {
        if (a->segs[i].kind != b->segs[i].kind)
            return false;
        assert(a->segs[i].kind != SEG_LITERAL || (a->segs[i].text && b->segs[i].text));
        /* Literal segments always own their text; the analyzer loses track across entries. */
        // NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker)
        if (a->segs[i].kind == SEG_LITERAL && strcmp(a->segs[i].text, b->segs[i].text) != 0)
            return false;
    }
    return true;
}

static int entry_build(route_entry *en, const http_route *rt, size_t idx, err *e)
{
    memset(en, 0, sizeof *en);
    if (!method_valid(rt->method))
        return err_set(e, F3_EINVAL, "route %zu (%s): bad method '%s' (upper-case token)", idx,
                       rt->pattern ? rt->pattern : "(null)", rt->method ? rt->method : "(null)");
    if (!rt->handler)
        return err_set(e, F3_EINVAL, "route %zu (%s %s): no handler", idx, rt->method,
                       rt->pattern ? rt->pattern : "(null)");
    int rc = pattern_parse(en, rt->pattern, idx, e);
    if (rc)
        return rc;
    en->route.method = strdup(rt->method);
    en->route.pattern = strdup(rt->pattern);
    en->route.handler = rt->handler;
    en->route.ctx = rt->ctx;
    en->route.access = rt->access ? strdup(rt->access) : NULL;
    if (!en->route.method || !en->route.pattern || (rt->access && !en->route.access))
        return err_set(e, F3_ENOMEM, "out of memory");
    return 0;
}

int http_router_add(http_router *r, const http_route *routes, size_t n, err *e)
{
    int rc = 0;
    size_t built = 0;
    if (!r || (!routes && n))
        return err_set(e, F3_EINVAL, "http_router_add: no router or no routes");
    if (r->n + n > r->cap) {
        size_t cap = r->cap ? r->cap : 16;
        while (cap < r->n + n)
            cap *= 2;
        route_entry *grown = realloc(r->entries, cap * sizeof *grown);
        if (!grown)
            return err_set(e, F3_ENOMEM, "out of memory");
        r->entries = grown;
        r->cap = cap;
    }
    for (; built < n; built++) {
        route_entry *en = &r->entries[r->n + built];
        rc = entry_build(en, &routes[built], built, e);
        if (rc) {
            entry_free(en);
            goto out;
        }
        for (size_t j = 0; j < r->n + built; j++) {
            if (entries_clash(&r->entries[j], en)) {
                rc = err_set(e, F3_EINVAL, "route %zu (%s %s): same method and shape as %s %s",
                             built, en->route.method, en->route.pattern, r->entries[j].route.method,
                             r->entries[j].route.pattern);
                entry_free(en);
                goto out;
            }
        }
    }
    r->n += n;
out:
    if (rc) {
        for (size_t i = 0; i < built; i++)
            entry_free(&r->entries[r->n + i]);
    }
    return rc;
}

/* ---- request paths ----------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one segment in place; 0, or -1 with m->message set. */
static int segment_decode(char *seg, http_match *m)
{
    char *out = seg;
    for (const char *p = seg; *p; p++) {
        char c = *p;
        if (c == '%') {
            int hi = hex_value(p[1]);
            int lo = hi < 0 ? -1 : hex_value(p[2]);
            if (hi < 0 || lo < 0) {
                snprintf(m->message, sizeof m->message, "Malformed percent-encoding in path");
                return -1;
            }
            c = (char)(hi * 16 + lo);
            p += 2;
            if (c == '\0') {
                snprintf(m->message, sizeof m->message, "NUL byte in path");
                return -1;
            }
            if (c == '/') {
                snprintf(m->message, sizeof m->message, "Encoded '/' in path segment");
                return -1;
            }
        }
        *out++ = c;
    }
    *out = '\0';
    if (!str_is_utf8(seg)) {
        snprintf(m->message, sizeof m->message, "Path is not valid UTF-8");
        return -1;
    }
    if (strcmp(seg, "..") == 0 || strcmp(seg, ".") == 0) {
        snprintf(m->message, sizeof m->message, "Dot segments ('..', '.') are not allowed in path");
        return -1;
    }
    return 0;
}

/* Splits and decodes raw_path into m->segs_. 0, -1 (bad path, message set) or F3_ENOMEM. */
static int path_decode(const char *raw_path, http_match *m)
{
    if (!raw_path || raw_path[0] != '/') {
        snprintf(m->message, sizeof m->message, "Request path must start with '/'");
        return -1;
    }
    size_t len = strlen(raw_path);
    if (len > 1 && raw_path[len - 1] == '/')
        len--;
    m->segbuf_ = strndup(raw_path + 1, len - 1);
    size_t max_segs = 1;
    for (size_t i = 1; i < len; i++)
        max_segs += raw_path[i] == '/';
    m->segs_ = calloc(max_segs, sizeof(char *));
    if (!m->segbuf_ || !m->segs_)
        return F3_ENOMEM;
    if (len == 1)
        return 0; /* "/" has no segments */
    char *p = m->segbuf_;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (segment_decode(p, m) != 0)
            return -1;
        m->segs_[m->nsegs_++] = p;
        if (!slash)
            break;
        p = slash + 1;
    }
    return 0;
}

/* ---- matching ---------------------------------------------------------- */

static bool entry_matches_path(const route_entry *en, char *const *segs, size_t nsegs)
{
    assert(segs || nsegs == 0);
    for (size_t i = 0; i < en->nsegs; i++) {
        const route_seg *s = &en->segs[i];
        if (s->kind == SEG_WILDCARD)
            return true; /* always last: takes the rest, possibly nothing */
        if (i >= nsegs)
            return false;
        /* i < nsegs here, so segs[i] is a split path segment (analyzer false positive). */
        // NOLINTNEXTLINE(clang-analyzer-core.NullDereference)
        if (s->kind == SEG_PARAM && segs[i][0] == '\0')
            return false;
        // NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker)
        if (s->kind == SEG_LITERAL && strcmp(s->text, segs[i]) != 0)
            return false;
    }
    return en->nsegs == nsegs;
}

/* >0 when a is more specific than b. Both match the same path, so they can only
 * differ in kind position by position, or in one ending where the other has '*'. */
static int entry_compare(const route_entry *a, const route_entry *b)
{
    size_t n = a->nsegs < b->nsegs ? a->nsegs : b->nsegs;
    for (size_t i = 0; i < n; i++)
        if (a->segs[i].kind != b->segs[i].kind)
            return (int)a->segs[i].kind - (int)b->segs[i].kind;
    if (a->nsegs != b->nsegs)
        return a->nsegs < b->nsegs ? 1 : -1; /* the longer one ends in '*' */
    return 0;
}

static const route_entry *best_for_method(const http_router *r, const char *method,
                                          char *const *segs, size_t nsegs)
{
    const route_entry *best = NULL;
    for (size_t i = 0; i < r->n; i++) {
        const route_entry *en = &r->entries[i];
        if (strcmp(en->route.method, method) != 0 || !entry_matches_path(en, segs, nsegs))
            continue;
        if (!best || entry_compare(en, best) > 0)
            best = en;
    }
    return best;
}

static int method_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fills m->allow with the sorted methods of every route matching the path
 * (plus HEAD where GET exists); false when no route matches the path at all. */
static bool collect_allow(const http_router *r, http_match *m)
{
    const char *methods[ROUTE_MAX_ALLOW + 1];
    size_t n = 0;
    bool has_get = false, has_head = false;
    for (size_t i = 0; i < r->n; i++) {
        const route_entry *en = &r->entries[i];
        if (!entry_matches_path(en, m->segs_, m->nsegs_))
            continue;
        bool seen = false;
        for (size_t j = 0; j < n; j++)
            seen = seen || strcmp(methods[j], en->route.method) == 0;
        if (!seen && n < ROUTE_MAX_ALLOW)
            methods[n++] = en->route.method;
        has_get = has_get || strcmp(en->route.method, "GET") == 0;
        has_head = has_head || strcmp(en->route.method, "HEAD") == 0;
    }
    if (n == 0)
        return false;
    if (has_get && !has_head)
        methods[n++] = "HEAD";
    qsort(methods, n, sizeof methods[0], method_cmp);
    buf b;
    buf_init(&b, sizeof m->allow - 1);
    for (size_t j = 0; j < n; j++)
        if (buf_printf(&b, "%s%s", j ? ", " : "", methods[j]) != 0)
            break;
    snprintf(m->allow, sizeof m->allow, "%s", buf_cstr(&b));
    buf_free(&b);
    return true;
}

/* The wildcard's value: the segments it took, joined with '/'. */
static int wildcard_build(const route_entry *en, http_match *m)
{
    if (en->nsegs == 0 || en->segs[en->nsegs - 1].kind != SEG_WILDCARD)
        return 0;
    buf b;
    buf_init(&b, 0);
    int rc = buf_puts(&b, "");
    for (size_t i = en->nsegs - 1; i < m->nsegs_ && rc == 0; i++)
        rc = buf_printf(&b, "%s%s", i > en->nsegs - 1 ? "/" : "", m->segs_[i]);
    if (rc) {
        buf_free(&b);
        return F3_ENOMEM;
    }
    m->wildcard_ = buf_detach(&b);
    return m->wildcard_ ? 0 : F3_ENOMEM;
}

int http_router_match(const http_router *r, const char *method, const char *raw_path, http_match *m)
{
    memset(m, 0, sizeof *m);
    int rc = path_decode(raw_path, m);
    if (rc == F3_ENOMEM)
        goto nomem;
    if (rc) {
        m->status = 400;
        return m->status;
    }
    const route_entry *en = r ? best_for_method(r, method, m->segs_, m->nsegs_) : NULL;
    if (!en && r && strcmp(method, "HEAD") == 0)
        en = best_for_method(r, "GET", m->segs_, m->nsegs_);
    if (en) {
        if (wildcard_build(en, m) != 0)
            goto nomem;
        m->entry_ = en;
        m->route = &en->route;
        m->status = 200;
        return m->status;
    }
    if (r && collect_allow(r, m)) {
        snprintf(m->message, sizeof m->message, "Method %s not allowed; allowed: %s", method,
                 m->allow);
        m->status = 405;
    } else {
        snprintf(m->message, sizeof m->message, "No route for this path");
        m->status = 404;
    }
    return m->status;
nomem:
    http_match_free(m);
    m->status = 500;
    return F3_ENOMEM;
}

const char *http_match_param(const http_match *m, const char *name)
{
    const route_entry *en = m ? m->entry_ : NULL;
    if (!en || !name)
        return NULL;
    if (strcmp(name, "*") == 0)
        return m->wildcard_;
    for (size_t i = 0; i < en->nsegs && i < m->nsegs_; i++)
        if (en->segs[i].kind == SEG_PARAM && strcmp(en->segs[i].text, name) == 0)
            return m->segs_[i];
    return NULL;
}

void http_match_free(http_match *m)
{
    if (!m)
        return;
    free(m->segbuf_);
    free(m->segs_);
    free(m->wildcard_);
    m->segbuf_ = NULL;
    m->segs_ = NULL;
    m->wildcard_ = NULL;
    m->nsegs_ = 0;
    m->entry_ = NULL;
    m->route = NULL;
}
