/*
 * test_bus_cron.c - bus_cron_next (src/bus/cron.c): fields, ranges, steps, lists, the
 * day-of-month / day-of-week rule, month ends, leap days, Sunday as 0 and 7, and
 * rejection of malformed expressions with the field named.
 */
#include "support/f3test.h"

#include "bus/queue.h"
#include "core/clock.h"

#include <string.h>

static int64_t at(const char *iso)
{
    int64_t ms = 0;
    if (clock_parse_iso(iso, &ms) != 0)
        fail_msg("bad test time %s", iso);
    return ms;
}

/* Checks that expr fires next at `want` after `after` (ISO-8601 UTC). */
static void expect_next(const char *expr, const char *after, const char *want)
{
    int64_t next = 0;
    err e = {0};
    if (bus_cron_next(expr, at(after), &next, &e) != 0)
        fail_msg("'%s' after %s: %s", expr, after, e.msg);
    char got[CLOCK_ISO_LEN];
    clock_format_iso(next, got);
    if (next != at(want))
        fail_msg("'%s' after %s: got %s, want %s", expr, after, got, want);
}

static void expect_invalid(const char *expr, const char *field)
{
    int64_t next = 0;
    err e = {0};
    int rc = bus_cron_next(expr, at("2024-01-01T00:00:00Z"), &next, &e);
    if (rc != F3_EINVAL)
        fail_msg("'%s' was accepted (rc %d)", expr ? expr : "(null)", rc);
    if (field && !strstr(e.msg, field))
        fail_msg("'%s': message '%s' does not name %s", expr, e.msg, field);
}

static void test_every_minute_is_strictly_after(void **state)
{
    (void)state;
    expect_next("* * * * *", "2024-01-01T00:00:30Z", "2024-01-01T00:01:00Z");
    expect_next("* * * * *", "2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z");
    expect_next("* * * * *", "2024-01-01T00:00:59.999Z", "2024-01-01T00:01:00Z");
    expect_next("  *\t* *  * *  ", "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z");
}

static void test_steps_ranges_lists(void **state)
{
    (void)state;
    expect_next("*/15 * * * *", "2024-01-01T10:07:00Z", "2024-01-01T10:15:00Z");
    expect_next("*/15 * * * *", "2024-01-01T10:45:00Z", "2024-01-01T11:00:00Z");
    expect_next("5,10-12/2 1-2 * * *", "2024-01-01T01:06:00Z", "2024-01-01T01:10:00Z");
    expect_next("5,10-12/2 1-2 * * *", "2024-01-01T01:10:00Z", "2024-01-01T01:12:00Z");
    expect_next("5,10-12/2 1-2 * * *", "2024-01-01T02:12:00Z", "2024-01-02T01:05:00Z");
    expect_next("10/20 * * * *", "2024-01-01T00:31:00Z", "2024-01-01T00:50:00Z");
    expect_next("10/20 * * * *", "2024-01-01T00:50:00Z", "2024-01-01T01:10:00Z");
    expect_next("30 2 * * *", "2023-11-14T22:13:20Z", "2023-11-15T02:30:00Z");
    expect_next("0 9-17/4 * * *", "2024-01-01T13:00:00Z", "2024-01-01T17:00:00Z");
}

static void test_month_ends_and_leap_days(void **state)
{
    (void)state;
    expect_next("0 0 31 * *", "2024-01-31T00:00:00Z", "2024-03-31T00:00:00Z");
    expect_next("0 0 1 * *", "2024-12-15T00:00:00Z", "2025-01-01T00:00:00Z");
    expect_next("0 0 * 2 *", "2024-03-01T00:00:00Z", "2025-02-01T00:00:00Z");
    expect_next("0 0 29 2 *", "2023-03-01T00:00:00Z", "2024-02-29T00:00:00Z");
    expect_next("0 0 29 2 *", "2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z");
    /* 2100 is not a leap year. */
    expect_next("0 0 29 2 *", "2097-03-01T00:00:00Z", "2104-02-29T00:00:00Z");
    expect_next("59 23 31 12 *", "2024-12-31T23:58:00Z", "2024-12-31T23:59:00Z");
    expect_next("59 23 31 12 *", "2024-12-31T23:59:00Z", "2025-12-31T23:59:00Z");
}

static void test_days_of_week(void **state)
{
    (void)state;
    /* 2024-01-01 is a Monday. */
    expect_next("0 12 * * 0", "2024-01-01T00:00:00Z", "2024-01-07T12:00:00Z");
    expect_next("0 12 * * 7", "2024-01-01T00:00:00Z", "2024-01-07T12:00:00Z");
    expect_next("0 12 * * 1-5", "2024-01-06T00:00:00Z", "2024-01-08T12:00:00Z");
    expect_next("0 12 * * 5-7", "2024-01-01T00:00:00Z", "2024-01-05T12:00:00Z");
    /* Both day fields restricted: either may match (the 13th, or a Friday). */
    expect_next("0 0 13 * 5", "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z");
    expect_next("0 0 13 * 5", "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z");
    /* One of them '*': only the other counts. */
    expect_next("0 0 13 * *", "2024-01-01T00:00:00Z", "2024-01-13T00:00:00Z");
    /* A field starting with '*' (a step over '*' too) counts as unrestricted: both must match, a
     * Monday on an odd day. */
    expect_next("0 0 */2 * 1", "2024-01-01T00:00:00Z", "2024-01-15T00:00:00Z");
}

static void test_malformed_expressions(void **state)
{
    (void)state;
    expect_invalid(NULL, NULL);
    expect_invalid("", "minute");
    expect_invalid("* * * *", "day-of-week");
    expect_invalid("* * * * * *", "more than 5 fields");
    expect_invalid("60 * * * *", "minute");
    expect_invalid("* 24 * * *", "hour");
    expect_invalid("* * 0 * *", "day-of-month");
    expect_invalid("* * 32 * *", "day-of-month");
    expect_invalid("* * * 13 *", "month");
    expect_invalid("* * * 0 *", "month");
    expect_invalid("* * * * 8", "day-of-week");
    expect_invalid("*/0 * * * *", "minute");
    expect_invalid("5-1 * * * *", "minute");
    expect_invalid("a * * * *", "minute");
    expect_invalid("1,,2 * * * *", "minute");
    expect_invalid("1, * * * *", "minute");
    expect_invalid("* * * JAN *", "month");
    expect_invalid("* * ? * MON", "day-of-month");
    expect_invalid("-1 * * * *", "minute");
    expect_invalid("1-2-3 * * * *", "minute");
    expect_invalid("*/ * * * *", "minute");
    expect_invalid("99999 * * * *", "minute");
    expect_invalid("0 0 30 2 *", "never fires");
    expect_invalid("0 0 31 4,6,9,11 *", "never fires");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_minute_is_strictly_after),
        cmocka_unit_test(test_steps_ranges_lists),
        cmocka_unit_test(test_month_ends_and_leap_days),
        cmocka_unit_test(test_days_of_week),
        cmocka_unit_test(test_malformed_expressions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
