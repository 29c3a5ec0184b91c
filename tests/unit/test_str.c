/*
 * test_str.c - small C string helpers.
 */
#include "support/f3test.h"

#include "core/err.h"
#include "core/str.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_dup_copies_and_accepts_null(void **state)
{
    (void)state;
    const char *src = "hello";
    char *d = str_dup(src);
    assert_non_null(d);
    assert_ptr_not_equal(d, src);
    assert_string_equal(d, "hello");
    free(d);
    assert_null(str_dup(NULL));

    d = str_ndup("hello world", 5);
    assert_string_equal(d, "hello");
    free(d);
    d = str_ndup("hi", 10); /* n past the end stops at the terminator */
    assert_string_equal(d, "hi");
    free(d);
    d = str_ndup("abc", 0);
    assert_string_equal(d, "");
    free(d);
    assert_null(str_ndup(NULL, 3));
}

static void test_eq_and_case_eq_handle_null(void **state)
{
    (void)state;
    assert_true(str_eq("a", "a"));
    assert_false(str_eq("a", "ab"));
    assert_false(str_eq("ab", "a"));
    assert_true(str_eq(NULL, NULL));
    assert_false(str_eq(NULL, ""));
    assert_false(str_eq("", NULL));

    assert_true(str_case_eq("Content-Type", "content-TYPE"));
    assert_false(str_case_eq("abc", "abd"));
    assert_false(str_case_eq("abc", "ab"));
    assert_false(str_case_eq("ab", "abc"));
    assert_true(str_case_eq(NULL, NULL));
    assert_false(str_case_eq("x", NULL));
    /* Only ASCII letters fold: '[' (0x5b) is not '{' (0x7b). */
    assert_false(str_case_eq("[", "{"));
}

static void test_prefix_and_suffix(void **state)
{
    (void)state;
    assert_true(str_starts_with("postgres://x", "postgres://"));
    assert_true(str_starts_with("abc", ""));
    assert_false(str_starts_with("ab", "abc"));
    assert_false(str_starts_with(NULL, "a"));
    assert_false(str_starts_with("a", NULL));

    assert_true(str_ends_with("file.json", ".json"));
    assert_true(str_ends_with("abc", ""));
    assert_true(str_ends_with("abc", "abc"));
    assert_false(str_ends_with("bc", "abc"));
    assert_false(str_ends_with("abc", "ab"));
    assert_false(str_ends_with(NULL, "a"));
    assert_false(str_ends_with("a", NULL));
}

static void test_trim_in_place(void **state)
{
    (void)state;
    char a[] = "  \t hello world \r\n";
    char *r = str_trim(a);
    assert_ptr_equal(r, a); /* moved to the start: the original pointer stays valid */
    assert_string_equal(a, "hello world");

    char b[] = "   ";
    assert_string_equal(str_trim(b), "");
    char c[] = "";
    assert_string_equal(str_trim(c), "");
    char d[] = "x";
    assert_string_equal(str_trim(d), "x");
    assert_null(str_trim(NULL));

    char *heap = str_dup("  freed fine  ");
    assert_string_equal(str_trim(heap), "freed fine");
    free(heap);
}

static void test_lower(void **state)
{
    (void)state;
    char s[] = "MiXeD-Case_123 \xc3\x89";
    assert_ptr_equal(str_lower(s), s);
    assert_string_equal(s, "mixed-case_123 \xc3\x89"); /* non-ASCII bytes untouched */
    assert_null(str_lower(NULL));
}

static void test_to_int64_is_strict(void **state)
{
    (void)state;
    int64_t v = 42;
    assert_int_equal(str_to_int64("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(str_to_int64("-17", &v), 0);
    assert_int_equal(v, -17);
    assert_int_equal(str_to_int64("+17", &v), 0);
    assert_int_equal(v, 17);
    assert_int_equal(str_to_int64("9223372036854775807", &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(str_to_int64("-9223372036854775808", &v), 0);
    assert_true(v == INT64_MIN);

    static const char *bad[] = {
        "",
        " 1",
        "1 ",
        "1x",
        "x1",
        "-",
        "+",
        "--1",
        "+-1",
        "0x10",
        "1e3",
        "1.5",
        "１",
        "\t1",
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 42;
        assert_int_equal(str_to_int64(bad[i], &v), -1);
        assert_int_equal(v, 42); /* untouched on failure */
    }
    assert_int_equal(str_to_int64(NULL, &v), -1);
}

static void test_to_bool_words(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool value;
    } good[] = {
        {"true", true}, {"TRUE", true}, {"True", true}, {"1", true},      {"yes", true},
        {"YES", true},  {"on", true},   {"On", true},   {"false", false}, {"FALSE", false},
        {"0", false},   {"no", false},  {"No", false},  {"off", false},   {"OFF", false},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        bool b = !good[i].value;
        assert_int_equal(str_to_bool(good[i].text, &b), 0);
        assert_int_equal(b, good[i].value);
    }
    static const char *bad[] = {"", "t", "f", "y", "n", "2", "truee", " true", "true ", "enabled"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool b = true;
        assert_int_equal(str_to_bool(bad[i], &b), -1);
        assert_true(b);
    }
    bool b = false;
    assert_int_equal(str_to_bool(NULL, &b), -1);
    assert_false(b);
}

static void test_utf8_copy_keeps_whole_sequences(void **state)
{
    (void)state;
    char out[8];
    assert_true(str_utf8_copy(out, sizeof out, "caf\xc3\xa9"));
    assert_string_equal(out, "caf\xc3\xa9");
    /* "aaaaaa" + e-acute needs 8 bytes and a NUL: the sequence is left out, not split. */
    assert_false(str_utf8_copy(out, sizeof out, "aaaaaa\xc3\xa9"));
    assert_string_equal(out, "aaaaaa");
    /* Stray continuation bytes, overlong forms, surrogates and a cut sequence become '?'. */
    assert_false(str_utf8_copy(out, sizeof out,
                               "a\x80"
                               "b\xc0\xaf"));
    assert_string_equal(out, "a?b??");
    assert_false(str_utf8_copy(out, sizeof out, "\xed\xa0\x80x"));
    assert_string_equal(out, "???x");
    assert_false(str_utf8_copy(out, sizeof out, "ab\xe2\x82"));
    assert_string_equal(out, "ab??");
    char four[8];
    assert_true(str_utf8_copy(four, sizeof four, "\xf0\x9f\x98\x80!"));
    assert_string_equal(four, "\xf0\x9f\x98\x80!");
    assert_true(str_utf8_copy(out, sizeof out, NULL));
    assert_string_equal(out, "");
    assert_true(str_utf8_copy(out, 0, ""));
    assert_true(str_is_utf8("caf\xc3\xa9"));
    assert_false(str_is_utf8("caf\xe9"));
    assert_false(str_is_utf8(NULL));
}

/* err_set keeps its message valid UTF-8 whatever it quotes. */
static void test_err_messages_are_utf8(void **state)
{
    (void)state;
    err e = {0};
    assert_int_equal(err_set(&e, F3_ETRANSIENT, "HTTP 502: %s", "\xff<html>"), F3_ETRANSIENT);
    assert_string_equal(e.msg, "HTTP 502: ?<html>");
    char reply[ERR_MSG_MAX + 8];
    memset(reply, 'a', ERR_MSG_MAX - 2);
    snprintf(reply + ERR_MSG_MAX - 2, sizeof reply - (ERR_MSG_MAX - 2), "\xc3\xa9");
    err_set(&e, F3_EIO, "%s", reply);
    assert_int_equal(strlen(e.msg), ERR_MSG_MAX - 2); /* the e-acute would not fit whole */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dup_copies_and_accepts_null),
        cmocka_unit_test(test_utf8_copy_keeps_whole_sequences),
        cmocka_unit_test(test_err_messages_are_utf8),
        cmocka_unit_test(test_eq_and_case_eq_handle_null),
        cmocka_unit_test(test_prefix_and_suffix),
        cmocka_unit_test(test_trim_in_place),
        cmocka_unit_test(test_lower),
        cmocka_unit_test(test_to_int64_is_strict),
        cmocka_unit_test(test_to_bool_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
