/*
 * test_http_router.c - route tables, path decoding and matching, without sockets.
 */
#include "support/f3test.h"

#include "http/router.h"

#include <string.h>

static int h_a(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    (void)res;
    (void)ctx;
    return 0;
}

static int h_b(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    (void)res;
    (void)ctx;
    return 1;
}

static int ctx_orders, ctx_order, ctx_export, ctx_static, ctx_file, ctx_root, ctx_post;

static const http_route table[] = {
    {"GET", "/", h_a, &ctx_root, NULL},
    {"GET", "/api/v1/orders", h_a, &ctx_orders, NULL},
    {"POST", "/api/v1/orders", h_a, &ctx_post, NULL},
    {"GET", "/api/v1/orders/:id", h_a, &ctx_order, NULL},
    {"DELETE", "/api/v1/orders/:id", h_b, &ctx_order, NULL},
    {"GET", "/api/v1/orders/export", h_a, &ctx_export, NULL},
    {"GET", "/static/*", h_a, &ctx_static, NULL},
    {"GET", "/static/special/:file", h_a, &ctx_file, NULL},
    {"PUT", "/a/:x/c", h_a, NULL, NULL},
    {"PUT", "/a/b/:y", h_b, NULL, NULL},
};

static int setup(void **state)
{
    http_router *r = http_router_new();
    err e;
    if (!r || http_router_add(r, table, sizeof table / sizeof table[0], &e) != 0)
        return -1;
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    http_router_free(*state);
    return 0;
}

/* Routes method+path and checks the status; returns the match for more checks. */
static http_match route(void **state, const char *method, const char *path, int want)
{
    http_match m;
    assert_int_equal(http_router_match(*state, method, path, &m), want);
    assert_int_equal(m.status, want);
    return m;
}

static void test_literal_and_param_routes(void **state)
{
    http_match m = route(state, "GET", "/api/v1/orders", 200);
    assert_ptr_equal(m.route->ctx, &ctx_orders);
    http_match_free(&m);

    m = route(state, "GET", "/api/v1/orders/42", 200);
    assert_ptr_equal(m.route->ctx, &ctx_order);
    assert_string_equal(http_match_param(&m, "id"), "42");
    assert_null(http_match_param(&m, "nope"));
    http_match_free(&m);

    m = route(state, "POST", "/api/v1/orders", 200);
    assert_ptr_equal(m.route->ctx, &ctx_post);
    http_match_free(&m);

    m = route(state, "GET", "/", 200);
    assert_ptr_equal(m.route->ctx, &ctx_root);
    http_match_free(&m);
}

static void test_literal_beats_param(void **state)
{
    http_match m = route(state, "GET", "/api/v1/orders/export", 200);
    assert_ptr_equal(m.route->ctx, &ctx_export);
    assert_null(http_match_param(&m, "id"));
    http_match_free(&m);

    /* no literal DELETE route: the param route takes it */
    m = route(state, "DELETE", "/api/v1/orders/export", 200);
    assert_ptr_equal(m.route->handler, h_b);
    assert_string_equal(http_match_param(&m, "id"), "export");
    http_match_free(&m);

    /* the first position where the two differ decides */
    m = route(state, "PUT", "/a/b/c", 200);
    assert_ptr_equal(m.route->handler, h_b);
    assert_string_equal(http_match_param(&m, "y"), "c");
    http_match_free(&m);
}

static void test_wildcard(void **state)
{
    http_match m = route(state, "GET", "/static/css/app.css", 200);
    assert_ptr_equal(m.route->ctx, &ctx_static);
    assert_string_equal(http_match_param(&m, "*"), "css/app.css");
    http_match_free(&m);

    m = route(state, "GET", "/static", 200);
    assert_ptr_equal(m.route->ctx, &ctx_static);
    assert_string_equal(http_match_param(&m, "*"), "");
    http_match_free(&m);

    /* a param beats the wildcard at the same position */
    m = route(state, "GET", "/static/special/x.png", 200);
    assert_ptr_equal(m.route->ctx, &ctx_file);
    assert_string_equal(http_match_param(&m, "file"), "x.png");
    http_match_free(&m);

    m = route(state, "GET", "/static/special/x/y", 200);
    assert_ptr_equal(m.route->ctx, &ctx_static);
    assert_string_equal(http_match_param(&m, "*"), "special/x/y");
    http_match_free(&m);
}

static void test_not_found(void **state)
{
    http_match m = route(state, "GET", "/nope", 404);
    assert_null(m.route);
    http_match_free(&m);
    m = route(state, "GET", "/api/v1/orders/1/items", 404);
    http_match_free(&m);
    m = route(state, "GET", "/api/v1//orders", 404);
    http_match_free(&m);
}

static void test_method_not_allowed_lists_allow(void **state)
{
    http_match m = route(state, "PATCH", "/api/v1/orders/7", 405);
    assert_string_equal(m.allow, "DELETE, GET, HEAD");
    assert_non_null(strstr(m.message, "PATCH"));
    http_match_free(&m);

    m = route(state, "DELETE", "/api/v1/orders", 405);
    assert_string_equal(m.allow, "GET, HEAD, POST");
    http_match_free(&m);

    m = route(state, "POST", "/a/b/c", 405);
    assert_string_equal(m.allow, "PUT");
    http_match_free(&m);
}

static void test_head_uses_get(void **state)
{
    http_match m = route(state, "HEAD", "/api/v1/orders/9", 200);
    assert_string_equal(m.route->method, "GET");
    assert_string_equal(http_match_param(&m, "id"), "9");
    http_match_free(&m);
}

static void test_trailing_slash_tolerated(void **state)
{
    http_match m = route(state, "GET", "/api/v1/orders/", 200);
    assert_ptr_equal(m.route->ctx, &ctx_orders);
    http_match_free(&m);
    m = route(state, "GET", "/api/v1/orders/5/", 200);
    assert_string_equal(http_match_param(&m, "id"), "5");
    http_match_free(&m);
}

static void test_percent_decoding_per_segment(void **state)
{
    http_match m = route(state, "GET", "/api/v1/orders/a%20b%C3%A9", 200);
    assert_string_equal(http_match_param(&m, "id"), "a b\xc3\xa9");
    http_match_free(&m);
    /* an encoded literal still matches the literal */
    m = route(state, "GET", "/api/v1/%6frders", 200);
    assert_ptr_equal(m.route->ctx, &ctx_orders);
    http_match_free(&m);
}

static void test_bad_paths_are_400(void **state)
{
    static const char *const bad[] = {
        "/api/v1/orders/%zz",
        "/api/v1/orders/%4",
        "/api/v1/orders/%",
        "/api/v1/orders/a%00b",
        "/api/v1/orders/caf%E9", /* Latin-1, not UTF-8 */
        "/static/../etc",
        "/static/%2e%2e/etc",
        "/static/a/./b",
        "/static/..%2F..%2Fetc",
        "/static/a%2Fb",
        "relative/path",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_match m;
        int st = http_router_match(*state, "GET", bad[i], &m);
        if (st != 400)
            fail_msg("path '%s' gave %d, want 400", bad[i], st);
        assert_true(strlen(m.message) > 0);
        assert_null(m.route);
        http_match_free(&m);
    }
}

static void test_bad_patterns_rejected(void **state)
{
    (void)state;
    static const http_route bad[][1] = {
        {{"GET", "no-slash", h_a, NULL, NULL}}, {{"GET", "/a//b", h_a, NULL, NULL}},
        {{"GET", "/a/:", h_a, NULL, NULL}},     {{"GET", "/a/:1x", h_a, NULL, NULL}},
        {{"GET", "/a/*/b", h_a, NULL, NULL}},   {{"GET", "/a/b*", h_a, NULL, NULL}},
        {{"GET", "/a/%20", h_a, NULL, NULL}},   {{"GET", "/a/b c", h_a, NULL, NULL}},
        {{"GET", "/a/..", h_a, NULL, NULL}},    {{"get", "/a", h_a, NULL, NULL}},
        {{"", "/a", h_a, NULL, NULL}},          {{NULL, "/a", h_a, NULL, NULL}},
        {{"GET", NULL, h_a, NULL, NULL}},       {{"GET", "/a", NULL, NULL, NULL}},
        {{"GET", "/:x/:x", h_a, NULL, NULL}},   {{"GET", "/a?b", h_a, NULL, NULL}},
    };
    http_router *r = http_router_new();
    assert_non_null(r);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err e;
        err_clear(&e);
        assert_int_equal(http_router_add(r, bad[i], 1, &e), F3_EINVAL);
        assert_true(strlen(e.msg) > 0);
    }
    assert_int_equal(http_router_count(r), 0);
    http_router_free(r);
}

static void test_duplicates_rejected_and_batch_is_atomic(void **state)
{
    (void)state;
    http_router *r = http_router_new();
    assert_non_null(r);
    err e;
    const http_route first[] = {{"GET", "/orders/:id", h_a, NULL, NULL}};
    assert_int_equal(http_router_add(r, first, 1, &e), 0);

    const http_route clash[] = {
        {"GET", "/health", h_a, NULL, NULL},
        {"GET", "/orders/:orderId", h_a, NULL, NULL},
    };
    assert_int_equal(http_router_add(r, clash, 2, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "/orders/:orderId"));
    assert_int_equal(http_router_count(r), 1);

    const http_route within[] = {
        {"GET", "/x", h_a, NULL, NULL},
        {"GET", "/x/", h_a, NULL, NULL},
    };
    assert_int_equal(http_router_add(r, within, 2, &e), F3_EINVAL);
    assert_int_equal(http_router_count(r), 1);

    /* same shape, other method: fine */
    const http_route other[] = {{"PUT", "/orders/:orderId", h_a, NULL, NULL}};
    assert_int_equal(http_router_add(r, other, 1, &e), 0);
    assert_int_equal(http_router_count(r), 2);
    http_router_free(r);
}

static void test_empty_router(void **state)
{
    (void)state;
    http_router *r = http_router_new();
    assert_non_null(r);
    http_match m;
    assert_int_equal(http_router_match(r, "GET", "/", &m), 404);
    http_match_free(&m);
    http_match_free(&m);
    http_router_free(r);
    http_router_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_and_param_routes),
        cmocka_unit_test(test_literal_beats_param),
        cmocka_unit_test(test_wildcard),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed_lists_allow),
        cmocka_unit_test(test_head_uses_get),
        cmocka_unit_test(test_trailing_slash_tolerated),
        cmocka_unit_test(test_percent_decoding_per_segment),
        cmocka_unit_test(test_bad_paths_are_400),
        cmocka_unit_test(test_bad_patterns_rejected),
        cmocka_unit_test(test_duplicates_rejected_and_batch_is_atomic),
        cmocka_unit_test(test_empty_router),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
