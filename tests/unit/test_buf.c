/*
 * test_buf.c - growable capped buffers.
 */
#include "support/f3test.h"

#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

static void test_append_grows_and_terminates(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 0);
    assert_string_equal(buf_cstr(&b), "");
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_puts(&b, "abc"), 0);
    assert_int_equal(b.len, 3000);
    assert_int_equal(strlen(buf_cstr(&b)), 3000);
    buf_free(&b);
}

static void test_cap_is_enforced_and_buffer_unchanged(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_puts(&b, "12345"), 0);
    assert_int_equal(buf_puts(&b, "6789"), BUF_ERR_FULL);
    assert_string_equal(buf_cstr(&b), "12345");
    assert_int_equal(buf_printf(&b, "%d", 678), 0);
    assert_string_equal(buf_cstr(&b), "12345678");
    assert_int_equal(buf_putc(&b, 'x'), BUF_ERR_FULL);
    buf_free(&b);
}

static void test_json_escape(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 0);
    assert_int_equal(buf_put_json_escaped(&b, "a\"b\\c\n\x01"), 0);
    assert_string_equal(buf_cstr(&b), "a\\\"b\\\\c\\n\\u0001");
    buf_free(&b);
}

static void test_json_escape_keeps_utf8_and_replaces_invalid_bytes(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 0);
    /* Well-formed 2-, 3- and 4-byte sequences pass through unchanged. */
    assert_int_equal(buf_put_json_escaped(&b, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x96\xa8"), 0);
    assert_string_equal(buf_cstr(&b), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x96\xa8");
    buf_reset(&b);
    /* Stray continuation, invalid lead, overlong, surrogate, beyond U+10FFFF, cut short. */
    assert_int_equal(buf_put_json_escaped(&b, "a\x80"
                                              "b\xff"
                                              "c\xc0\xaf"
                                              "d\xed\xa0\x80"
                                              "e\xf4\x90\x80\x80"
                                              "f\xe2\x82"),
                     0);
    assert_string_equal(buf_cstr(&b), "a\\ufffdb\\ufffdc\\ufffd\\ufffdd\\ufffd\\ufffd\\ufffde"
                                      "\\ufffd\\ufffd\\ufffd\\ufffdf\\ufffd\\ufffd");
    buf_free(&b);
}

static void test_json_escape_rolls_back_when_full(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 6);
    assert_int_equal(buf_puts(&b, "ab"), 0);
    assert_int_equal(buf_put_json_escaped(&b, "\"\"\"\""), BUF_ERR_FULL);
    assert_string_equal(buf_cstr(&b), "ab");
    buf_free(&b);
}

static void test_detach_hands_over_and_resets(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 0);
    buf_puts(&b, "hello");
    char *s = buf_detach(&b);
    assert_string_equal(s, "hello");
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_cstr(&b), "");
    free(s);
    s = buf_detach(&b);
    assert_string_equal(s, "");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_grows_and_terminates),
        cmocka_unit_test(test_cap_is_enforced_and_buffer_unchanged),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_json_escape_keeps_utf8_and_replaces_invalid_bytes),
        cmocka_unit_test(test_json_escape_rolls_back_when_full),
        cmocka_unit_test(test_detach_hands_over_and_resets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
