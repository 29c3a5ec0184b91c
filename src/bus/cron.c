/*
 * cron.c - the next fire time of a 5-field cron expression (bus_cron_next in queue.h),
 * for repeatable jobs.
 *
 * Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12), day of week
 * (0-7, 0 and 7 both Sunday); each a comma list of '*', 'a', 'a-b', with an optional
 * '/step' ('a/step' runs from a to the field's end). As in Vixie cron, when both day
 * fields are restricted (neither starts with '*') a day matches if EITHER matches;
 * otherwise both must. Times are UTC. Names (JAN, MON), '?', 'L', 'W', '#' and a seconds
 * field are not supported and are rejected, never guessed at.
 */
#include "bus/queue.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CRON_FIELDS      5
#define CRON_EXPR_MAX    256
#define CRON_SEARCH_DAYS (8 * 366) /* covers a leap day even across a skipped century leap */
#define MS_PER_MINUTE    ((int64_t)60 * 1000)
#define MINUTES_PER_DAY  1440

typedef struct cron_field {
    const char *name;
    int lo, hi;
} cron_field;

static const cron_field cron_fields[CRON_FIELDS] = {
    {"minute", 0, 59}, {"hour", 0, 23},       {"day-of-month", 1, 31},
    {"month", 1, 12},  {"day-of-week", 0, 7},
};

typedef struct cron_spec {
    unsigned char allowed[CRON_FIELDS][60]; /* allowed[field][value] */
    bool dom_star, dow_star;
} cron_spec;

/* Reads an unsigned number of at most 4 digits at *p; -1 if there is none. */
static int read_num(const char **p)
{
    if (!isdigit((unsigned char)**p))
        return -1;
    int v = 0;
    for (int n = 0; isdigit((unsigned char)**p); n++, (*p)++) {
        if (n == 4)
            return -1;
        v = v * 10 + (**p - '0');
    }
    return v;
}

/* Parses one comma-separated item ("*", "a", "a-b", any with "/step") of field f. */
static int parse_item(const char *expr, const cron_field *f, const char *item, size_t len,
                      unsigned char *allowed, err *e)
{
    char text[64];
    if (len == 0 || len >= sizeof text)
        return err_set(e, F3_EINVAL, "cron '%s': %s field: empty or overlong list item", expr,
                       f->name);
    memcpy(text, item, len);
    text[len] = '\0';
    const char *p = text;
    int from, to, step = 1;
    bool single = false;
    if (*p == '*') {
        from = f->lo;
        to = f->hi;
        p++;
    } else {
        from = to = read_num(&p);
        single = true;
        if (from >= 0 && *p == '-') {
            p++;
            to = read_num(&p);
            single = false;
        }
    }
    if (from < 0 || to < 0)
        return err_set(e, F3_EINVAL, "cron '%s': %s field: '%s' is not a number, range or *", expr,
                       f->name, text);
    if (*p == '/') {
        p++;
        step = read_num(&p);
        if (step < 1)
            return err_set(e, F3_EINVAL, "cron '%s': %s field: '%s' needs a step of 1 or more",
                           expr, f->name, text);
        if (single)
            to = f->hi; /* "a/n": from a to the end of the field */
    }
    if (*p)
        return err_set(e, F3_EINVAL, "cron '%s': %s field: unexpected '%s' in '%s'", expr, f->name,
                       p, text);
    if (from < f->lo || to > f->hi || from > to)
        return err_set(e, F3_EINVAL, "cron '%s': %s field: '%s' is outside %d-%d", expr, f->name,
                       text, f->lo, f->hi);
    for (int v = from; v <= to; v += step)
        allowed[v] = 1;
    return 0;
}

static int parse_field(const char *expr, int index, const char *text, size_t len, cron_spec *c,
                       err *e)
{
    const cron_field *f = &cron_fields[index];
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != ',')
            continue;
        int rc = parse_item(expr, f, text + start, i - start, c->allowed[index], e);
        if (rc)
            return rc;
        start = i + 1;
    }
    if (index == 4 && c->allowed[4][7])
        c->allowed[4][0] = 1; /* 7 is Sunday too */
    if (index == 2)
        c->dom_star = text[0] == '*';
    if (index == 4)
        c->dow_star = text[0] == '*';
    return 0;
}

static int cron_parse(const char *expr, cron_spec *c, err *e)
{
    memset(c, 0, sizeof *c);
    if (!expr)
        return err_set(e, F3_EINVAL, "cron expression is missing");
    if (strlen(expr) > CRON_EXPR_MAX)
        return err_set(e, F3_EINVAL, "cron expression is longer than %d bytes", CRON_EXPR_MAX);
    const char *p = expr;
    int n = 0;
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (n == CRON_FIELDS)
            return err_set(e, F3_EINVAL,
                           "cron '%s': more than 5 fields (minute hour day-of-month month "
                           "day-of-week; no seconds field)",
                           expr);
        int rc = parse_field(expr, n, start, (size_t)(p - start), c, e);
        if (rc)
            return rc;
        n++;
    }
    if (n < CRON_FIELDS)
        return err_set(e, F3_EINVAL,
                       "cron '%s': %s field is missing (5 fields: minute hour day-of-month "
                       "month day-of-week)",
                       expr, cron_fields[n].name);
    return 0;
}

static bool day_matches(const cron_spec *c, const struct tm *t)
{
    if (!c->allowed[3][t->tm_mon + 1])
        return false;
    bool dom = c->allowed[2][t->tm_mday] != 0;
    bool dow = c->allowed[4][t->tm_wday] != 0;
    /* As Vixie cron: when either field starts with a star (also a stepped star), both
     * sets must match; a plain star allows every day, leaving the other to decide. */
    if (c->dom_star || c->dow_star)
        return dom && dow;
    return dom || dow;
}

/* The first allowed minute of the day at or after minute `from` (0..1439); -1 if none. */
static int first_minute(const cron_spec *c, int from)
{
    for (int h = from / 60; h < 24; h++) {
        if (!c->allowed[1][h])
            continue;
        for (int m = h == from / 60 ? from % 60 : 0; m < 60; m++)
            if (c->allowed[0][m])
                return h * 60 + m;
    }
    return -1;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int bus_cron_next(const char *expr, int64_t after_ms, int64_t *next_ms, err *e)
{
    cron_spec c;
    int rc = cron_parse(expr, &c, e);
    if (rc)
        return rc;
    int64_t start = floor_div(after_ms, MS_PER_MINUTE) + 1; /* minutes since the epoch */
    int64_t day = floor_div(start, MINUTES_PER_DAY);
    int from = (int)(start - day * MINUTES_PER_DAY);
    for (int i = 0; i < CRON_SEARCH_DAYS; i++, day++, from = 0) {
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        if (!gmtime_r(&t, &tm))
            break;
        if (!day_matches(&c, &tm))
            continue;
        int m = first_minute(&c, from);
        if (m >= 0) {
            *next_ms = (day * MINUTES_PER_DAY + m) * MS_PER_MINUTE;
            return 0;
        }
    }
    return err_set(e, F3_EINVAL, "cron '%s' never fires (no matching date within %d years)", expr,
                   CRON_SEARCH_DAYS / 366);
}
