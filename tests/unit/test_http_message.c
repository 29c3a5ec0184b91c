/*
 * test_http_message.c - response builders, the error body and query parsing,
 * without a server (through the exchange internals the server uses).
 */
#include "support/f3test.h"

#include "http/exchange.h"

#include <jansson.h>
#include <string.h>

static void test_error_body_shape(void **state)
{
    (void)state;
    http_response res;
    http_res_init(&res, "c-1");
    assert_int_equal(http_res_error(&res, 404, "Order not found: %d", 42), 0);
    assert_int_equal(http_res_status(&res), 404);
    assert_string_equal(res.content_type, HTTP_JSON_CONTENT_TYPE);
    assert_string_equal(buf_cstr(&res.body), "{\"statusCode\":404,\"error\":\"Not Found\","
                                             "\"message\":\"Order not found: 42\","
                                             "\"correlationId\":\"c-1\"}");
    /* a second builder replaces the first */
    assert_int_equal(http_res_error(&res, 413, "too \"big\"\n"), 0);
    json_t *j = json_loads(buf_cstr(&res.body), 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "Payload Too Large");
    assert_string_equal(json_string_value(json_object_get(j, "message")), "too \"big\"\n");
    json_decref(j);
    http_res_cleanup(&res);
}

static void test_error_body_survives_bad_utf8_and_long_messages(void **state)
{
    (void)state;
    http_response res;
    http_res_init(&res, "c-2");
    assert_int_equal(http_res_error(&res, 400, "bad: %s", "a\xff\xc3(b\xed\xa0\x80"), 0);
    json_error_t je;
    json_t *j = json_loads(buf_cstr(&res.body), 0, &je);
    if (!j)
        fail_msg("not JSON: %s", je.text);
    const char *msg = json_string_value(json_object_get(j, "message"));
    assert_non_null(strstr(msg, "\xef\xbf\xbd"));
    assert_non_null(strstr(msg, "(b"));
    json_decref(j);

    char long_msg[5000];
    memset(long_msg, 'm', sizeof long_msg - 1);
    long_msg[sizeof long_msg - 1] = '\0';
    assert_int_equal(http_res_error(&res, 422, "%s", long_msg), 0);
    j = json_loads(buf_cstr(&res.body), 0, NULL);
    assert_non_null(j);
    size_t n = strlen(json_string_value(json_object_get(j, "message")));
    assert_true(n > 1000 && n < sizeof long_msg - 1);
    json_decref(j);
    http_res_cleanup(&res);
}

static void test_error_rejects_non_error_status(void **state)
{
    (void)state;
    http_response res;
    http_res_init(&res, NULL);
    assert_int_equal(http_res_error(&res, 200, "fine"), F3_EINVAL);
    assert_int_equal(http_res_error(&res, 600, "odd"), F3_EINVAL);
    assert_int_equal(http_res_status(&res), 0);
    assert_int_equal(http_res_error(&res, 500, "x"), 0);
    assert_non_null(strstr(buf_cstr(&res.body), "\"correlationId\":null"));
    http_res_cleanup(&res);
}

static void test_json_text_bytes(void **state)
{
    (void)state;
    http_response res;
    http_res_init(&res, "c");
    assert_int_equal(http_res_json(&res, 201, json_pack("{s:i,s:s}", "a", 1, "b", "\xc3\xa9")), 0);
    assert_int_equal(res.status, 201);
    assert_string_equal(buf_cstr(&res.body), "{\"a\":1,\"b\":\"\xc3\xa9\"}");
    assert_int_equal(http_res_json(&res, 200, NULL), F3_EINVAL);
    assert_int_equal(http_res_json(&res, 99, json_true()), F3_EINVAL); /* reference still taken */
    assert_int_equal(res.status, 201);

    assert_int_equal(http_res_text(&res, 200, NULL, "hi"), 0);
    assert_string_equal(res.content_type, HTTP_TEXT_CONTENT_TYPE);
    assert_string_equal(buf_cstr(&res.body), "hi");

    assert_int_equal(http_res_bytes(&res, 200, NULL, "a\0b", 3), 0);
    assert_string_equal(res.content_type, "application/octet-stream");
    assert_int_equal(res.body.len, 3);
    assert_memory_equal(res.body.data, "a\0b", 3);
    assert_int_equal(http_res_bytes(&res, 204, NULL, NULL, 0), 0);
    assert_int_equal(res.body.len, 0);
    assert_int_equal(http_res_bytes(&res, 200, NULL, NULL, 5), F3_EINVAL);
    http_res_cleanup(&res);
}

static void test_headers(void **state)
{
    (void)state;
    http_response res;
    http_res_init(&res, "c");
    assert_int_equal(http_res_header(&res, "X-A", "1"), 0);
    assert_int_equal(http_res_header(&res, "x-a", "2"), 0);
    assert_int_equal(res.nheaders, 1);
    assert_string_equal(res.headers[0].value, "2");
    assert_int_equal(http_res_header(&res, "Content-Type", "text/csv"), 0);
    assert_string_equal(res.content_type, "text/csv");
    assert_int_equal(res.nheaders, 1);

    static const char *const bad_names[] = {
        "", "Bad Name", "X:Y", "Ä", "Content-Length", "transfer-encoding", "X-Correlation-Id"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        assert_int_equal(http_res_header(&res, bad_names[i], "v"), F3_EINVAL);
    assert_int_equal(http_res_header(&res, "X-B", "a\r\nSet-Cookie: x=1"), F3_EINVAL);
    assert_int_equal(http_res_header(&res, "X-B", "a\nb"), F3_EINVAL);
    assert_int_equal(http_res_header(&res, "X-B", NULL), F3_EINVAL);
    assert_int_equal(res.nheaders, 1);

    /* a reset forgets headers but keeps the correlation id */
    http_res_reset(&res);
    assert_int_equal(res.nheaders, 0);
    assert_string_equal(res.correlation_id, "c");
    http_res_cleanup(&res);
}

static void test_reason_phrases(void **state)
{
    (void)state;
    assert_string_equal(http_status_reason(200), "OK");
    assert_string_equal(http_status_reason(404), "Not Found");
    assert_string_equal(http_status_reason(415), "Unsupported Media Type");
    assert_string_equal(http_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(http_status_reason(503), "Service Unavailable");
    assert_string_equal(http_status_reason(299), "Unknown");
}

static void test_query_parsing(void **state)
{
    (void)state;
    http_request req;
    char msg[128];
    assert_int_equal(http_req_init(&req, "/p?a=1&b=x+y%21&&c&a=2&=v&e=", 100), 0);
    assert_string_equal(http_req_path(&req), "/p");
    assert_string_equal(http_req_query(&req), "a=1&b=x+y%21&&c&a=2&=v&e=");
    assert_int_equal(http_req_parse_query(&req, msg, sizeof msg), 0);
    assert_string_equal(http_req_query_param(&req, "a"), "1");
    assert_string_equal(http_req_query_param(&req, "b"), "x y!");
    assert_string_equal(http_req_query_param(&req, "c"), "");
    assert_string_equal(http_req_query_param(&req, ""), "v");
    assert_string_equal(http_req_query_param(&req, "e"), "");
    assert_null(http_req_query_param(&req, "zz"));
    assert_null(http_req_header(&req, "Host")); /* no connection */
    size_t len = 99;
    assert_string_equal(http_req_body(&req, &len), "");
    assert_int_equal(len, 0);
    http_req_cleanup(&req);

    static const char *const bad[] = {"/p?a=%",    "/p?a=%4",     "/p?a=%zz", "/p?%00=1",
                                      "/p?a=b%00", "/p?q=caf%E9", "/p?%FF=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(http_req_init(&req, bad[i], 100), 0);
        msg[0] = '\0';
        assert_int_equal(http_req_parse_query(&req, msg, sizeof msg), F3_EINVAL);
        assert_true(strlen(msg) > 0);
        http_req_cleanup(&req);
    }
}

static int user_frees;

static void free_user(void *u)
{
    user_frees++;
    free(u);
}

static void test_user_slot(void **state)
{
    (void)state;
    http_request req;
    assert_int_equal(http_req_init(&req, NULL, 10), 0);
    assert_string_equal(http_req_path(&req), "");
    assert_null(http_req_user(&req));
    user_frees = 0;
    http_req_set_user(&req, strdup("alice"), free_user);
    assert_string_equal(http_req_user(&req), "alice");
    http_req_set_user(&req, strdup("bob"), free_user);
    assert_int_equal(user_frees, 1);
    http_req_cleanup(&req);
    assert_int_equal(user_frees, 2);
}

static void test_json_without_content_type_is_415(void **state)
{
    (void)state;
    http_request req;
    http_response res;
    assert_int_equal(http_req_init(&req, "/x", 10), 0);
    http_res_init(&res, req.correlation_id);
    json_t *out = json_true();
    assert_int_equal(http_req_json(&req, &out, &res), F3_EINVAL);
    assert_null(out);
    assert_int_equal(http_res_status(&res), 415);
    http_res_cleanup(&res);
    http_req_cleanup(&req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_body_shape),
        cmocka_unit_test(test_error_body_survives_bad_utf8_and_long_messages),
        cmocka_unit_test(test_error_rejects_non_error_status),
        cmocka_unit_test(test_json_text_bytes),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_reason_phrases),
        cmocka_unit_test(test_query_parsing),
        cmocka_unit_test(test_user_slot),
        cmocka_unit_test(test_json_without_content_type_is_415),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
