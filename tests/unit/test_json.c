/*
 * test_json.c - validated field getters, strict parsing and compact dumping.
 */
#include "support/f3test.h"

#include "core/json.h"

#include <string.h>

static const char order_json[] =
    "{\"id\":1001,\"email\":\"a@b.c\",\"test\":false,\"note\":null,\"total\":12.5,"
    "\"count\":\"3\",\"line_items\":[{\"sku\":\"X\"}],"
    "\"shipping_address\":{\"city\":\"Gent\",\"zip\":9000,\"geo\":{\"lat\":\"51\"},"
    "\"extra\":null},\"billing_address\":null,\"tags\":\"a,b\"}";

static int setup(void **state)
{
    json_t *doc = NULL;
    err e;
    if (json_parse(order_json, strlen(order_json), &doc, &e) != 0)
        return -1;
    *state = doc;
    return 0;
}

static int teardown(void **state)
{
    json_decref(*state);
    return 0;
}

static void test_get_each_type(void **state)
{
    json_t *doc = *state;
    err e;
    const char *s = NULL;
    int64_t i = 0;
    bool b = true;
    json_t *o = NULL, *a = NULL;
    assert_int_equal(json_get_string(doc, "email", &s, &e), 0);
    assert_string_equal(s, "a@b.c");
    assert_int_equal(json_get_int(doc, "id", &i, &e), 0);
    assert_int_equal(i, 1001);
    assert_int_equal(json_get_bool(doc, "test", &b, &e), 0);
    assert_false(b);
    assert_int_equal(json_get_object(doc, "shipping_address", &o, &e), 0);
    assert_true(json_is_object(o));
    assert_int_equal(json_get_array(doc, "line_items", &a, &e), 0);
    assert_int_equal(json_array_size(a), 1);
}

static void test_missing_field_is_named(void **state)
{
    json_t *doc = *state;
    err e;
    const char *s = "untouched";
    assert_int_equal(json_get_string(doc, "customer", &s, &e), F3_EINVAL);
    assert_int_equal(e.code, F3_EINVAL);
    assert_string_equal(e.msg, "field 'customer' is missing");
    assert_string_equal(s, "untouched");
}

static void test_wrong_types_are_named(void **state)
{
    json_t *doc = *state;
    err e;
    const char *s;
    int64_t i;
    bool b;
    json_t *v;
    assert_int_equal(json_get_string(doc, "id", &s, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'id' must be a string");
    assert_int_equal(json_get_int(doc, "count", &i, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'count' must be an integer");
    assert_int_equal(json_get_int(doc, "total", &i, &e), F3_EINVAL); /* a real is not an int */
    assert_string_equal(e.msg, "field 'total' must be an integer");
    assert_int_equal(json_get_bool(doc, "id", &b, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'id' must be a boolean");
    assert_int_equal(json_get_object(doc, "line_items", &v, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'line_items' must be an object");
    assert_int_equal(json_get_array(doc, "tags", &v, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'tags' must be an array");
    /* A required field that is null has the wrong type. */
    assert_int_equal(json_get_string(doc, "note", &s, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'note' must be a string");
}

static void test_reals_rejected_even_when_integral(void **state)
{
    (void)state;
    json_t *doc;
    err e;
    int64_t i = 7;
    const char *text = "{\"n\":3.0,\"m\":1e3,\"big\":9223372036854775807}";
    assert_int_equal(json_parse(text, strlen(text), &doc, &e), 0);
    assert_int_equal(json_get_int(doc, "n", &i, &e), F3_EINVAL);
    assert_int_equal(json_get_int(doc, "m", &i, &e), F3_EINVAL);
    assert_int_equal(i, 7);
    assert_int_equal(json_get_int(doc, "big", &i, &e), 0);
    assert_true(i == INT64_MAX);
    json_decref(doc);
    /* Out of int64 range never reaches a getter: the parser refuses it. */
    const char *huge = "{\"n\":9223372036854775808}";
    assert_int_equal(json_parse(huge, strlen(huge), &doc, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "too big"));
}

static void test_dotted_paths(void **state)
{
    json_t *doc = *state;
    err e;
    const char *s = NULL;
    int64_t i = 0;
    assert_int_equal(json_get_string(doc, "shipping_address.city", &s, &e), 0);
    assert_string_equal(s, "Gent");
    assert_int_equal(json_get_int(doc, "shipping_address.zip", &i, &e), 0);
    assert_int_equal(i, 9000);
    assert_int_equal(json_get_string(doc, "shipping_address.geo.lat", &s, &e), 0);
    assert_string_equal(s, "51");

    assert_int_equal(json_get_string(doc, "shipping_address.country", &s, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'shipping_address.country' is missing");
    assert_int_equal(json_get_string(doc, "shipping_address.zip", &s, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'shipping_address.zip' must be a string");
    /* Missing and null intermediates: the whole path is missing. */
    assert_int_equal(json_get_string(doc, "customer.email", &s, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'customer.email' is missing");
    assert_int_equal(json_get_string(doc, "billing_address.city", &s, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'billing_address.city' is missing");
    assert_int_equal(json_get_string(doc, "shipping_address.extra.x", &s, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'shipping_address.extra.x' is missing");
    /* An intermediate of the wrong type is named by its own path. */
    assert_int_equal(json_get_string(doc, "line_items.sku", &s, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'line_items' must be an object");
    assert_int_equal(json_get_string(doc, "shipping_address.city.name", &s, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'shipping_address.city' must be an object");
}

static void test_malformed_paths_rejected(void **state)
{
    json_t *doc = *state;
    err e;
    const char *s;
    static const char *bad[] = {"", ".", "a.", ".a", "a..b", "customer..x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(json_get_string(doc, bad[i], &s, &e), F3_EINVAL);
        assert_non_null(strstr(e.msg, "invalid field path"));
    }
    assert_int_equal(json_get_string(doc, NULL, &s, &e), F3_EINVAL);
}

static void test_optional_getters(void **state)
{
    json_t *doc = *state;
    err e;
    const char *s = NULL;
    int64_t i = 0;
    bool b = false;
    json_t *o = NULL, *a = NULL;
    json_t *dflt = json_object();

    assert_int_equal(json_opt_string(doc, "phone", &s, "none", &e), 0);
    assert_string_equal(s, "none");
    assert_int_equal(json_opt_string(doc, "note", &s, "was null", &e), 0);
    assert_string_equal(s, "was null");
    assert_int_equal(json_opt_string(doc, "email", &s, "none", &e), 0);
    assert_string_equal(s, "a@b.c");
    assert_int_equal(json_opt_string(doc, "customer.email", &s, NULL, &e), 0);
    assert_null(s);
    assert_int_equal(json_opt_string(doc, "billing_address.city", &s, "x", &e), 0);
    assert_string_equal(s, "x");

    assert_int_equal(json_opt_int(doc, "quantity", &i, 1, &e), 0);
    assert_int_equal(i, 1);
    assert_int_equal(json_opt_int(doc, "shipping_address.zip", &i, 1, &e), 0);
    assert_int_equal(i, 9000);
    assert_int_equal(json_opt_bool(doc, "gift", &b, true, &e), 0);
    assert_true(b);
    assert_int_equal(json_opt_bool(doc, "test", &b, true, &e), 0);
    assert_false(b);
    assert_int_equal(json_opt_object(doc, "billing_address", &o, dflt, &e), 0);
    assert_ptr_equal(o, dflt);
    assert_int_equal(json_opt_object(doc, "shipping_address.geo", &o, NULL, &e), 0);
    assert_non_null(o);
    assert_int_equal(json_opt_array(doc, "refunds", &a, NULL, &e), 0);
    assert_null(a);

    /* Present but of the wrong type is still an error, and *out is untouched. */
    s = "kept";
    assert_int_equal(json_opt_string(doc, "id", &s, "none", &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'id' must be a string");
    assert_string_equal(s, "kept");
    i = 5;
    assert_int_equal(json_opt_int(doc, "total", &i, 1, &e), F3_EINVAL);
    assert_int_equal(i, 5);
    assert_int_equal(json_opt_bool(doc, "email", &b, true, &e), F3_EINVAL);
    assert_int_equal(json_opt_object(doc, "tags", &o, NULL, &e), F3_EINVAL);
    assert_int_equal(json_opt_array(doc, "shipping_address", &a, NULL, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'shipping_address' must be an array");
    assert_int_equal(json_opt_string(doc, "line_items.sku", &s, NULL, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'line_items' must be an object");
    json_decref(dflt);
}

static void test_non_object_documents(void **state)
{
    (void)state;
    err e;
    const char *s = "x";
    json_t *arr = json_array();
    assert_int_equal(json_get_string(arr, "a", &s, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "'a'"));
    assert_int_equal(json_opt_string(arr, "a", &s, NULL, &e), F3_EINVAL);
    json_decref(arr);
    /* A NULL document (say, a missing sub-object) simply has no fields. */
    assert_int_equal(json_get_string(NULL, "a", &s, &e), F3_EINVAL);
    assert_string_equal(e.msg, "field 'a' is missing");
    assert_int_equal(json_opt_string(NULL, "a", &s, "d", &e), 0);
    assert_string_equal(s, "d");
    /* A NULL err is allowed. */
    assert_int_equal(json_get_string(NULL, "a", &s, NULL), F3_EINVAL);
}

static void test_parse_errors_give_position(void **state)
{
    (void)state;
    json_t *v = NULL;
    err e;
    const char *text = "{\n  \"a\": 1,\n  \"b\": tru\n}";
    assert_int_equal(json_parse(text, strlen(text), &v, &e), F3_EINVAL);
    assert_null(v);
    assert_non_null(strstr(e.msg, "invalid JSON at line 3, column"));

    assert_int_equal(json_parse("", 0, &v, &e), F3_EINVAL);
    assert_int_equal(json_parse("{} x", 4, &v, &e), F3_EINVAL); /* trailing text */
    assert_int_equal(json_parse("{\"a\":1,}", 8, &v, &e), F3_EINVAL);
    assert_int_equal(json_parse(NULL, 0, &v, &e), F3_EINVAL);
    assert_int_equal(json_parse("\"\xff\"", 3, &v, &e), F3_EINVAL); /* not UTF-8 */
}

static void test_parse_rejects_duplicates_and_nul(void **state)
{
    (void)state;
    json_t *v = NULL;
    err e;
    const char *dup = "{\"a\":1,\"b\":{\"c\":1,\"c\":2}}";
    assert_int_equal(json_parse(dup, strlen(dup), &v, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "duplicate"));

    const char *nul = "{\"a\":\"x\\u0000y\"}";
    assert_int_equal(json_parse(nul, strlen(nul), &v, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "\\u0000 is not allowed"));
    assert_null(strstr(e.msg, "JSON_ALLOW_NUL"));

    /* A raw NUL byte inside the text is refused too (len covers it). */
    const char raw[] = "{\"a\":\"x\0y\"}";
    assert_int_equal(json_parse(raw, sizeof raw - 1, &v, &e), F3_EINVAL);
    assert_null(v);
}

static void test_parse_accepts_any_value(void **state)
{
    (void)state;
    static const char *texts[] = {"[1,2]", "\"s\"", "42", "-1.5", "true", "null", " {} "};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        json_t *v = NULL;
        err e;
        assert_int_equal(json_parse(texts[i], strlen(texts[i]), &v, &e), 0);
        assert_non_null(v);
        json_decref(v);
    }
    /* len bounds the text: the rest of the string is not read. */
    json_t *v = NULL;
    assert_int_equal(json_parse("[1]garbage", 3, &v, NULL), 0);
    assert_int_equal(json_array_size(v), 1);
    json_decref(v);
}

static void test_dump_compact_in_order(void **state)
{
    (void)state;
    json_t *v = NULL;
    const char *text = "{ \"z\" : 1, \"a\" : [ true, null, \"x\\\"y\" ], \"m\" : { } , \"r\": 0.5}";
    assert_int_equal(json_parse(text, strlen(text), &v, NULL), 0);
    json_object_set_new(v, "b", json_string("\xc3\xa9\n"));
    buf b;
    buf_init(&b, 0);
    buf_puts(&b, "prefix:");
    assert_int_equal(json_dump_buf(v, &b), 0);
    assert_string_equal(buf_cstr(&b),
                        "prefix:{\"z\":1,\"a\":[true,null,\"x\\\"y\"],\"m\":{},\"r\":0.5,"
                        "\"b\":\"\xc3\xa9\\n\"}");
    buf_free(&b);

    json_t *s = json_string("scalar");
    buf_init(&b, 0);
    assert_int_equal(json_dump_buf(s, &b), 0);
    assert_string_equal(buf_cstr(&b), "\"scalar\"");
    buf_free(&b);
    json_decref(s);
    json_decref(v);
}

static void test_dump_full_buffer_left_unchanged(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s,s:[i,i,i]}", "name", "a fairly long value here", "n", 1, 2, 3);
    buf b;
    buf_init(&b, 16);
    buf_puts(&b, "keep");
    assert_int_equal(json_dump_buf(v, &b), F3_ETOOBIG);
    assert_string_equal(buf_cstr(&b), "keep");
    assert_int_equal(b.len, 4);
    assert_int_equal(json_dump_buf(NULL, &b), F3_EINVAL);
    buf_free(&b);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_each_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_field_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_types_are_named, setup, teardown),
        cmocka_unit_test(test_reals_rejected_even_when_integral),
        cmocka_unit_test_setup_teardown(test_dotted_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_paths_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_optional_getters, setup, teardown),
        cmocka_unit_test(test_non_object_documents),
        cmocka_unit_test(test_parse_errors_give_position),
        cmocka_unit_test(test_parse_rejects_duplicates_and_nul),
        cmocka_unit_test(test_parse_accepts_any_value),
        cmocka_unit_test(test_dump_compact_in_order),
        cmocka_unit_test(test_dump_full_buffer_left_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
