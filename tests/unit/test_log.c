/*
 * test_log.c - pino-shaped JSON log lines: fields, levels, correlation ids, escaping.
 *
 * Every line written is parsed back with jansson, so a line that is not valid
 * JSON fails the test.
 */
#include "support/f3test.h"

#include "core/clock.h"
#include "core/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static FILE *log_file;

static int setup(void **state)
{
    (void)state;
    log_file = tmpfile();
    if (!log_file)
        return -1;
    log_set_stream(log_file);
    log_set_level(LOG_TRACE);
    log_set_correlation_id(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_set_stream(NULL);
    log_set_level(LOG_INFO);
    log_set_correlation_id(NULL);
    fclose(log_file);
    return 0;
}

/* Every line written since setup, each parsed as a JSON object (fails the test
 * on a line that is not). Caller frees with json_decref. */
static json_t *read_lines(void)
{
    fflush(log_file);
    long size = ftell(log_file);
    assert_true(size >= 0);
    char *text = malloc((size_t)size + 1);
    rewind(log_file);
    size_t n = fread(text, 1, (size_t)size, log_file);
    text[n] = '\0';
    json_t *lines = json_array();
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl); /* every line is terminated */
        json_error_t jerr;
        json_t *v = json_loadb(line, (size_t)(nl - line), JSON_REJECT_DUPLICATES, &jerr);
        if (!v)
            fail_msg("not JSON (%s): %.*s", jerr.text, (int)(nl - line), line);
        assert_true(json_is_object(v));
        json_array_append_new(lines, v);
        line = nl + 1;
    }
    free(text);
    fseek(log_file, 0, SEEK_END);
    return lines;
}

static const char *str_field(const json_t *line, const char *key)
{
    const json_t *v = json_object_get(line, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void test_line_has_pino_fields(void **state)
{
    (void)state;
    int64_t before = clock_now_ms();
    log_info("order stored", "orderId", "o-1", "shop", "forma3d");
    int64_t after = clock_now_ms();
    json_t *lines = read_lines();
    assert_int_equal(json_array_size(lines), 1);
    json_t *l = json_array_get(lines, 0);
    assert_int_equal(json_integer_value(json_object_get(l, "level")), 30);
    json_int_t t = json_integer_value(json_object_get(l, "time"));
    assert_true(t >= before && t <= after);
    assert_int_equal(json_integer_value(json_object_get(l, "pid")), getpid());
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    assert_string_equal(str_field(l, "hostname"), host);
    assert_string_equal(str_field(l, "msg"), "order stored");
    assert_string_equal(str_field(l, "orderId"), "o-1");
    assert_string_equal(str_field(l, "shop"), "forma3d");
    assert_null(json_object_get(l, "correlationId"));
    assert_int_equal(json_object_size(l), 7);
    json_decref(lines);
}

static void test_levels_and_filtering(void **state)
{
    (void)state;
    log_trace("t");
    log_debug("d");
    log_info("i");
    log_warn("w");
    log_error("e");
    log_fatal("f");
    log_set_level(LOG_WARN);
    assert_int_equal(log_get_level(), LOG_WARN);
    log_debug("dropped");
    log_info("dropped");
    log_warn("kept-w");
    log_error("kept-e");
    log_set_level(LOG_SILENT);
    log_fatal("dropped");
    log_write_raw(LOG_FATAL, "dropped", NULL);
    json_t *lines = read_lines();
    static const struct {
        int level;
        const char *msg;
    } want[] = {{10, "t"}, {20, "d"}, {30, "i"},      {40, "w"},
                {50, "e"}, {60, "f"}, {40, "kept-w"}, {50, "kept-e"}};
    assert_int_equal(json_array_size(lines), sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *l = json_array_get(lines, i);
        assert_int_equal(json_integer_value(json_object_get(l, "level")), want[i].level);
        assert_string_equal(str_field(l, "msg"), want[i].msg);
    }
    json_decref(lines);
}

static void test_level_names(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("trace"), LOG_TRACE);
    assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
    assert_int_equal(log_level_parse("info"), LOG_INFO);
    assert_int_equal(log_level_parse("warn"), LOG_WARN);
    assert_int_equal(log_level_parse("error"), LOG_ERROR);
    assert_int_equal(log_level_parse("fatal"), LOG_FATAL);
    assert_int_equal(log_level_parse("silent"), LOG_SILENT);
    assert_int_equal(log_level_parse("verbose"), -1);
    assert_int_equal(log_level_parse(""), -1);
    assert_int_equal(log_level_parse(NULL), -1);
}

static void test_null_values_and_raw_fields(void **state)
{
    (void)state;
    log_info("with null", "a", (const char *)NULL, "b", "x");
    log_write_raw(LOG_INFO, "raw", "\"status\":200,\"ms\":3.5,\"ok\":true");
    log_write_raw(LOG_INFO, "raw none", NULL);
    log_write_raw(LOG_INFO, "raw empty", "");
    json_t *lines = read_lines();
    assert_int_equal(json_array_size(lines), 4);
    json_t *l = json_array_get(lines, 0);
    assert_true(json_is_null(json_object_get(l, "a")));
    assert_string_equal(str_field(l, "b"), "x");
    l = json_array_get(lines, 1);
    assert_int_equal(json_integer_value(json_object_get(l, "status")), 200);
    assert_true(json_real_value(json_object_get(l, "ms")) == 3.5);
    assert_true(json_is_true(json_object_get(l, "ok")));
    assert_int_equal(json_object_size(json_array_get(lines, 2)), 5);
    assert_int_equal(json_object_size(json_array_get(lines, 3)), 5);
    json_decref(lines);
}

static void *log_from_other_thread(void *arg)
{
    (void)arg;
    log_info("other thread");
    return NULL;
}

static void test_correlation_id(void **state)
{
    (void)state;
    log_set_correlation_id("corr-123");
    assert_string_equal(log_get_correlation_id(), "corr-123");
    log_info("with id");
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, log_from_other_thread, NULL), 0);
    pthread_join(t, NULL);
    char long_id[300];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    log_set_correlation_id(long_id);
    log_info("long id");
    log_set_correlation_id(NULL);
    assert_null(log_get_correlation_id());
    log_info("cleared");
    json_t *lines = read_lines();
    assert_int_equal(json_array_size(lines), 4);
    assert_string_equal(str_field(json_array_get(lines, 0), "correlationId"), "corr-123");
    /* The id belongs to the thread that set it. */
    assert_null(json_object_get(json_array_get(lines, 1), "correlationId"));
    const char *kept = str_field(json_array_get(lines, 2), "correlationId");
    assert_non_null(kept);
    assert_int_equal(strlen(kept), 127); /* capped, not overflowing */
    assert_null(json_object_get(json_array_get(lines, 3), "correlationId"));
    json_decref(lines);
}

static void test_escaping_round_trips(void **state)
{
    (void)state;
    const char *msg =
        "quote \" backslash \\ newline \n tab \t cr \r bell \x07 unicode \xc3\xa9\xe2\x82\xac";
    const char *key = "we\"ird\nkey";
    const char *val = "</script>\x01\x1f end \xf0\x9f\x96\xa8";
    log_info(msg, key, val);
    json_t *lines = read_lines();
    json_t *l = json_array_get(lines, 0);
    assert_string_equal(str_field(l, "msg"), msg);
    assert_string_equal(str_field(l, key), val);
    json_decref(lines);
}

static void test_invalid_utf8_still_gives_json(void **state)
{
    (void)state;
    /* Header values and payload bits from outside may be any bytes. */
    log_warn("bad bytes \xff here", "v", "a\xc3(b\xed\xa0\x80z\xe2\x82", "w", "\xc0\xaf");
    json_t *lines = read_lines();
    assert_int_equal(json_array_size(lines), 1);
    json_t *l = json_array_get(lines, 0);
    assert_string_equal(str_field(l, "msg"), "bad bytes \xef\xbf\xbd here");
    const char *v = str_field(l, "v");
    assert_non_null(v);
    assert_non_null(strstr(v, "a"));
    assert_non_null(strstr(v, "b"));
    assert_non_null(strstr(v, "z"));
    assert_non_null(strstr(v, "\xef\xbf\xbd"));
    json_decref(lines);
}

static void test_overlong_line_is_replaced_not_mangled(void **state)
{
    (void)state;
    size_t n = 70 * 1024;
    char *big = malloc(n + 1);
    memset(big, 'v', n);
    big[n] = '\0';
    log_info("huge field", "orderId", "o-9", "payload", big);
    log_info("after");
    free(big);
    json_t *lines = read_lines();
    assert_int_equal(json_array_size(lines), 2);
    json_t *l = json_array_get(lines, 0);
    /* Not a line with the field silently emptied: a line saying it was dropped. */
    assert_null(json_object_get(l, "payload"));
    assert_non_null(strstr(str_field(l, "msg"), "too long"));
    assert_string_equal(str_field(l, "droppedMsg"), "huge field");
    assert_non_null(json_object_get(l, "time"));
    assert_non_null(json_object_get(l, "pid"));
    assert_string_equal(str_field(json_array_get(lines, 1), "msg"), "after");
    json_decref(lines);
}

static void test_null_msg(void **state)
{
    (void)state;
    log_write(LOG_INFO, NULL, (const char *)NULL);
    json_t *lines = read_lines();
    assert_string_equal(str_field(json_array_get(lines, 0), "msg"), "");
    json_decref(lines);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_has_pino_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels_and_filtering, setup, teardown),
        cmocka_unit_test(test_level_names),
        cmocka_unit_test_setup_teardown(test_null_values_and_raw_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_correlation_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8_still_gives_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlong_line_is_replaced_not_mangled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_null_msg, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
