/*
 * test_http_correlation.c - picking a request's correlation id.
 */
#include "support/f3test.h"

#include "core/uuid.h"
#include "http/correlation.h"

#include <string.h>

#define TP_OK "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void test_header_wins(void **state)
{
    (void)state;
    char out[HTTP_CORRELATION_ID_MAX + 1];
    http_correlation_id("req-123", TP_OK, out);
    assert_string_equal(out, "req-123");
}

static void test_traceparent_when_no_header(void **state)
{
    (void)state;
    char out[HTTP_CORRELATION_ID_MAX + 1];
    http_correlation_id(NULL, TP_OK, out);
    assert_string_equal(out, "4bf92f3577b34da6a3ce929d0e0e4736");
}

static void test_insane_header_falls_back(void **state)
{
    (void)state;
    char out[HTTP_CORRELATION_ID_MAX + 1];
    char long_id[HTTP_CORRELATION_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    static const char *const bad[] = {"", "has space", "tab\there", "nl\nx", "\x7f", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(http_correlation_id_valid(bad[i]));
        http_correlation_id(bad[i], TP_OK, out);
        assert_string_equal(out, "4bf92f3577b34da6a3ce929d0e0e4736");
    }
    assert_false(http_correlation_id_valid(long_id));
    long_id[HTTP_CORRELATION_ID_MAX] = '\0'; /* exactly the maximum */
    assert_true(http_correlation_id_valid(long_id));
    http_correlation_id(long_id, NULL, out);
    assert_string_equal(out, long_id);
}

static void test_malformed_traceparent_gives_uuid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        NULL,
        "",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero parent */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",  /* flags */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* length */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* separator */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char trace[HTTP_TRACE_ID_LEN + 1];
        assert_false(http_traceparent_trace_id(bad[i], trace));
        char out[HTTP_CORRELATION_ID_MAX + 1];
        http_correlation_id(NULL, bad[i], out);
        assert_true(uuid_valid(out));
        assert_int_equal(out[14], '4'); /* version 4 */
    }
}

static void test_generated_ids_differ(void **state)
{
    (void)state;
    char a[HTTP_CORRELATION_ID_MAX + 1], b[HTTP_CORRELATION_ID_MAX + 1];
    http_correlation_id(NULL, NULL, a);
    http_correlation_id(NULL, NULL, b);
    assert_true(uuid_valid(a));
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_wins),
        cmocka_unit_test(test_traceparent_when_no_header),
        cmocka_unit_test(test_insane_header_falls_back),
        cmocka_unit_test(test_malformed_traceparent_gives_uuid),
        cmocka_unit_test(test_generated_ids_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
