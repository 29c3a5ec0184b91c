/*
 * clock.c - epoch and monotonic clocks, ISO-8601 formatting and parsing.
 */
#include "core/clock.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ms(void)
{
    return clock_mono_us() / 1000;
}

int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void clock_format_iso(int64_t ms, char out[CLOCK_ISO_LEN])
{
    time_t secs = (time_t)(ms / 1000);
    int millis = (int)(ms % 1000);
    if (millis < 0) {
        millis += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* The fields are in range, so the text is always 24 chars; the wide scratch
     * buffer only keeps the compiler's truncation analysis quiet. */
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    memcpy(out, tmp, CLOCK_ISO_LEN - 1);
    out[CLOCK_ISO_LEN - 1] = '\0';
}

void clock_now_iso(char out[CLOCK_ISO_LEN])
{
    clock_format_iso(clock_now_ms(), out);
}

/* Reads exactly n digits at *p, advancing it. */
static int read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return days[month - 1] + (month == 2 && leap);
}

/* Days from 1970-01-01 to the given civil date (proleptic Gregorian). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int parse_time_part(const char **pp, int *h, int *mi, int *s, int *ms)
{
    const char *p = *pp;
    if (read_digits(&p, 2, h) || *p++ != ':' || read_digits(&p, 2, mi))
        return -1;
    if (*p == ':') {
        p++;
        if (read_digits(&p, 2, s))
            return -1;
        if (*p == '.') {
            p++;
            int digits = 0, frac = 0;
            while (isdigit((unsigned char)*p)) {
                if (digits < 3)
                    frac = frac * 10 + (*p - '0');
                digits++;
                p++;
            }
            if (digits == 0)
                return -1;
            for (int i = digits; i < 3; i++)
                frac *= 10;
            *ms = frac;
        }
    }
    if (*h > 23 || *mi > 59 || *s > 60)
        return -1;
    *pp = p;
    return 0;
}

static int parse_offset(const char *p, int *offset_min)
{
    if (*p == 'Z' || *p == 'z')
        return p[1] == '\0' ? 0 : -1;
    if (*p != '+' && *p != '-')
        return -1;
    int sign = *p++ == '-' ? -1 : 1, oh, om;
    if (read_digits(&p, 2, &oh))
        return -1;
    if (*p == ':')
        p++;
    if (read_digits(&p, 2, &om) || *p != '\0' || oh > 23 || om > 59)
        return -1;
    *offset_min = sign * (oh * 60 + om);
    return 0;
}

int clock_parse_iso(const char *s, int64_t *out_ms)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, offset_min = 0;
    if (!s || read_digits(&p, 4, &y) || *p++ != '-' || read_digits(&p, 2, &mo) || *p++ != '-' ||
        read_digits(&p, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (parse_time_part(&p, &h, &mi, &sec, &ms) || parse_offset(p, &offset_min))
            return -1;
    } else if (*p != '\0') {
        return -1;
    }
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - (int64_t)offset_min * 60;
    *out_ms = secs * 1000 + ms;
    return 0;
}

int clock_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc)
        return rc;
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    rc = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return rc;
}

struct timespec clock_mono_after(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ms < 0)
        ms = 0;
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}
