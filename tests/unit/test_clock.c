/*
 * test_clock.c - ISO-8601 formatting and parsing, offsets, leap years, clocks.
 */
#include "support/f3test.h"

#include "core/clock.h"

#include <stdint.h>
#include <string.h>

static void test_format_known_instants(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *iso;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1700000000000, "2023-11-14T22:13:20.000Z"},
        {1795328130123, "2026-11-22T06:15:30.123Z"},
        {951782400000, "2000-02-29T00:00:00.000Z"},
        {1735689599999, "2024-12-31T23:59:59.999Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {-2203891200000, "1900-03-01T00:00:00.000Z"},
        {253402300799999, "9999-12-31T23:59:59.999Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[CLOCK_ISO_LEN];
        clock_format_iso(cases[i].ms, out);
        assert_string_equal(out, cases[i].iso);
        assert_int_equal(strlen(out), CLOCK_ISO_LEN - 1);
    }
}

static void test_parse_forms_and_offsets(void **state)
{
    (void)state;
    static const struct {
        const char *iso;
        int64_t ms;
    } cases[] = {
        {"2026-11-22T06:15:30.123Z", 1795328130123},
        {"2026-11-22t06:15:30.123z", 1795328130123},
        {"2026-11-22 06:15:30.123Z", 1795328130123},
        {"2026-11-22T08:15:30.123+02:00", 1795328130123},
        {"2026-11-22T08:15:30.123+0200", 1795328130123},
        {"2026-11-22T00:45:30.123-05:30", 1795328130123},
        {"2026-11-21T23:15:30.123-07:00", 1795328130123}, /* offset crosses the date */
        {"2026-11-22T06:15:30.123+00:00", 1795328130123},
        {"2026-11-22T06:15:30Z", 1795328130000},
        {"2026-11-22T06:15Z", 1795328100000},
        {"2026-11-22T06:15:30.1Z", 1795328130100},
        {"2026-11-22T06:15:30.12Z", 1795328130120},
        {"2026-11-22T06:15:30.123456789Z", 1795328130123}, /* extra digits truncated */
        {"2026-11-22", 1795305600000},
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.999Z", -1},
        {"0001-01-01T00:00:00Z", -62135596800000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = 42;
        if (clock_parse_iso(cases[i].iso, &ms) != 0)
            fail_msg("rejected %s", cases[i].iso);
        if (ms != cases[i].ms)
            fail_msg("%s gave %lld, want %lld", cases[i].iso, (long long)ms,
                     (long long)cases[i].ms);
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    /* A spread of instants, negative ones and leap days included. */
    int64_t ms = -62135596800000;
    for (int i = 0; i < 2000; i++) {
        char iso[CLOCK_ISO_LEN];
        clock_format_iso(ms, iso);
        int64_t back = 0;
        assert_int_equal(clock_parse_iso(iso, &back), 0);
        if (back != ms)
            fail_msg("%lld -> %s -> %lld", (long long)ms, iso, (long long)back);
        ms += 157679999999 + i; /* about five years, never a round number */
    }
    static const int64_t edges[] = {
        0, -1, 1, 951782400000, 951868799999, 13574606400000, 253402300799999};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        char iso[CLOCK_ISO_LEN];
        int64_t back = 0;
        clock_format_iso(edges[i], iso);
        assert_int_equal(clock_parse_iso(iso, &back), 0);
        assert_true(back == edges[i]);
    }
}

static void test_leap_years(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(clock_parse_iso("2024-02-29", &ms), 0);
    assert_int_equal(clock_parse_iso("2000-02-29", &ms), 0); /* divisible by 400 */
    assert_int_equal(clock_parse_iso("2400-02-29T12:00:00Z", &ms), 0);
    assert_true(ms == 13574606400000);
    assert_int_equal(clock_parse_iso("2023-02-29", &ms), -1);
    assert_int_equal(clock_parse_iso("1900-02-29", &ms), -1); /* divisible by 100 */
    assert_int_equal(clock_parse_iso("2100-02-29", &ms), -1);
    assert_int_equal(clock_parse_iso("2024-02-30", &ms), -1);
    /* The day after Feb 29 is Mar 1, 86400 s later. */
    int64_t feb29, mar1;
    assert_int_equal(clock_parse_iso("2024-02-29T00:00:00Z", &feb29), 0);
    assert_int_equal(clock_parse_iso("2024-03-01T00:00:00Z", &mar1), 0);
    assert_true(mar1 - feb29 == 86400000);
    char iso[CLOCK_ISO_LEN];
    clock_format_iso(feb29 + 86399999, iso);
    assert_string_equal(iso, "2024-02-29T23:59:59.999Z");
}

static void test_bad_inputs_rejected(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "2026",
        "2026-11",
        "26-11-22",
        "2026-1-22",
        "2026-11-2",
        "2026/11/22",
        "2026-13-01",
        "2026-00-10",
        "2026-01-00",
        "2026-01-32",
        "2026-04-31",
        "2026-11-22x",
        "2026-11-22Z",
        "2026-11-22T",
        "2026-11-22T06Z",
        "2026-11-22T6:15Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T10:60Z",
        "2026-11-22T10:00:61Z",
        "2026-11-22T10:00:00",      /* no offset: local time is ambiguous */
        "2026-11-22T10:00:00.Z",    /* fraction without digits */
        "2026-11-22T10:00:00+2:00", /* one-digit hour offset */
        "2026-11-22T10:00:00+24:00",
        "2026-11-22T10:00:00+01:60",
        "2026-11-22T10:00:00+01",
        "2026-11-22T10:00:00+01:00:00",
        "2026-11-22T10:00:00Zjunk",
        "2026-11-22T10:00:00 Z",
        " 2026-11-22",
        "2026-11-22T10:00:00.123Z ",
        "abcd-ef-ghT10:00:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        if (clock_parse_iso(bad[i], &ms) != -1)
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(ms, 42); /* untouched on failure */
    }
    int64_t ms = 42;
    assert_int_equal(clock_parse_iso(NULL, &ms), -1);
}

static void test_clocks_are_sane(void **state)
{
    (void)state;
    int64_t now = clock_now_ms();
    assert_true(now > 1577836800000); /* after 2020-01-01 */
    char iso[CLOCK_ISO_LEN];
    clock_now_iso(iso);
    int64_t parsed;
    assert_int_equal(clock_parse_iso(iso, &parsed), 0);
    assert_true(parsed >= now && parsed - now < 60000);

    int64_t m1 = clock_mono_ms(), u1 = clock_mono_us();
    int64_t m2 = clock_mono_ms(), u2 = clock_mono_us();
    assert_true(m2 >= m1);
    assert_true(u2 >= u1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_known_instants),
        cmocka_unit_test(test_parse_forms_and_offsets),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_leap_years),
        cmocka_unit_test(test_bad_inputs_rejected),
        cmocka_unit_test(test_clocks_are_sane),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
