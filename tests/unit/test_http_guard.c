/*
 * test_http_guard.c - the server's generic hooks: the guard called after
 * routing and before the handler (0 runs the handler, > 0 keeps the guard's
 * answer or a 403, < 0 is a 500), route access markers copied by the router,
 * and the response hook on every answer, the server's own errors included.
 */
#include "support/f3test.h"
#include "support/f3test_http.h"

#include "http/request.h"
#include "http/response.h"
#include "http/server.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int handler_calls;

static int h_ok(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&handler_calls, 1);
    const char *who = http_req_user(req);
    return http_res_text(res, 200, NULL, who ? who : "anonymous");
}

static void free_user(void *u)
{
    free(u);
}

/* The access marker decides: "open", "tag" (attach a user), "deny" (own 401),
 * "silent" (refuse without a response), "broken" (fail); NULL denies. */
static int guard(http_request *req, const http_route *route, http_response *res, void *ctx)
{
    (void)ctx;
    const char *a = route->access;
    if (!a)
        return http_res_error(res, 403, "undeclared") ? -2 : 1;
    if (strcmp(a, "open") == 0)
        return 0;
    if (strcmp(a, "tag") == 0) {
        http_req_set_user(req, strdup("alice"), free_user);
        return 0;
    }
    if (strcmp(a, "deny") == 0)
        return http_res_error(res, 401, "who are you") ? -2 : 1;
    if (strcmp(a, "silent") == 0)
        return 1;
    return -3;
}

static void on_response(const http_request *req, http_response *res, void *ctx)
{
    (void)req;
    (void)ctx;
    http_res_header(res, "X-Hooked", "yes");
}

typedef struct fixture {
    http_router *router;
    http_server *server;
    int port;
} fixture;

static int setup(void **state)
{
    static fixture f;
    char access[8];
    snprintf(access, sizeof access, "%s", "tag");
    const http_route routes[] = {
        {"GET", "/open", h_ok, NULL, "open"},     {"GET", "/tag", h_ok, NULL, access},
        {"POST", "/deny", h_ok, NULL, "deny"},    {"GET", "/silent", h_ok, NULL, "silent"},
        {"GET", "/broken", h_ok, NULL, "broken"}, {"GET", "/undeclared", h_ok, NULL, NULL},
    };
    f.router = http_router_new();
    err e = {0};
    assert_int_equal(http_router_add(f.router, routes, sizeof routes / sizeof routes[0], &e), 0);
    memset(access, 'x', sizeof access - 1); /* the router kept its own copy */
    http_server_opts o = {
        .host = "127.0.0.1", .threads = 2, .guard = guard, .on_response = on_response};
    f.server = http_server_start(f.router, &o, &e);
    assert_non_null(f.server);
    f.port = http_server_port(f.server);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    http_server_stop(f->server);
    http_router_free(f->router);
    return 0;
}

static int get(const fixture *f, const char *raw, const char *body_has)
{
    f3test_http_response r = {0};
    assert_int_equal(f3test_http_request(f->port, raw, &r), 0);
    assert_string_equal(f3test_http_header_get(&r, "X-Hooked"), "yes");
    if (body_has)
        assert_non_null(strstr(r.body, body_has));
    int st = r.status;
    f3test_http_response_free(&r);
    return st;
}

static void test_guard_decides_before_the_handler(void **state)
{
    fixture *f = *state;
    atomic_store(&handler_calls, 0);
    assert_int_equal(get(f, "GET /open HTTP/1.1\r\nHost: t\r\n\r\n", "anonymous"), 200);
    assert_int_equal(get(f, "GET /tag HTTP/1.1\r\nHost: t\r\n\r\n", "alice"), 200);
    assert_int_equal(atomic_load(&handler_calls), 2);
    assert_int_equal(get(f, "GET /silent HTTP/1.1\r\nHost: t\r\n\r\n", "Forbidden"), 403);
    assert_int_equal(get(f, "GET /broken HTTP/1.1\r\nHost: t\r\n\r\n", "Internal"), 500);
    assert_int_equal(get(f, "GET /undeclared HTTP/1.1\r\nHost: t\r\n\r\n", "undeclared"), 403);
    /* refused before the body is read: the answer comes although the body never does */
    assert_int_equal(get(f,
                         "POST /deny HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
                         "Content-Length: 100000\r\n\r\n",
                         "who are you"),
                     401);
    assert_int_equal(atomic_load(&handler_calls), 2);
}

static void test_response_hook_on_the_servers_own_errors(void **state)
{
    fixture *f = *state;
    assert_int_equal(get(f, "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n", NULL), 404);
    assert_int_equal(get(f, "DELETE /open HTTP/1.1\r\nHost: t\r\n\r\n", NULL), 405);
    assert_int_equal(get(f, "GET /open?bad=%zz HTTP/1.1\r\nHost: t\r\n\r\n", NULL), 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_decides_before_the_handler),
        cmocka_unit_test(test_response_hook_on_the_servers_own_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
