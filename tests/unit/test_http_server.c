/*
 * test_http_server.c - the HTTP server over loopback: routing, errors, limits,
 * correlation ids, the access log, slow clients and graceful shutdown.
 *
 * Requests are written as raw bytes (tests/support/f3test_http.h) so that
 * malformed and hostile input can be sent exactly.
 */
#include "support/f3test.h"
#include "support/f3test_http.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/uuid.h"
#include "http/request.h"
#include "http/response.h"
#include "http/server.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY   1024
#define MAX_HEADER 4096
#define JSON_TYPE  "application/json; charset=utf-8"

static http_router *router;
static http_server *server;
static int port;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- a gate a handler waits at until the test opens it ----------------- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};

static void gate_set(bool open)
{
    pthread_mutex_lock(&gate.lock);
    gate.open = open;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.lock);
}

/* Waits for the gate, at most 10 s so that a failing test cannot hang. */
static void gate_wait(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    pthread_mutex_lock(&gate.lock);
    while (!gate.open)
        if (pthread_cond_timedwait(&gate.cond, &gate.lock, &ts) != 0)
            break;
    pthread_mutex_unlock(&gate.lock);
}

/* ---- handlers ---------------------------------------------------------- */

static int h_health(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    (void)ctx;
    return http_res_json(res, 200, json_pack("{s:s}", "status", "ok"));
}

static int h_order(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    const char *id = http_req_param(req, "id");
    if (strcmp(id, "42") == 0)
        return http_res_error(res, 404, "Order not found: %s", id);
    return http_res_json(res, 200, json_pack("{s:s}", "id", id));
}

static int h_export(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    (void)ctx;
    return http_res_text(res, 200, NULL, "export");
}

static int h_static(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    return http_res_text(res, 200, "text/css", http_req_param(req, "*"));
}

static int h_query(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    const char *q = http_req_query_param(req, "q");
    const char *flag = http_req_query_param(req, "flag");
    return http_res_json(res, 200,
                         json_pack("{s:s?,s:s?,s:s?,s:s}", "q", q, "flag", flag, "missing",
                                   http_req_query_param(req, "missing"), "raw",
                                   http_req_query(req)));
}

static int h_echo(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    json_t *body;
    if (http_req_json(req, &body, res) != 0)
        return 0;
    return http_res_json(res, 201, json_pack("{s:o}", "got", body));
}

static int h_upload(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    size_t len;
    http_req_body(req, &len);
    return http_res_json(res, 200, json_pack("{s:I}", "bytes", (json_int_t)len));
}

static int h_fail(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    (void)res;
    (void)ctx;
    log_error("query failed", "detail", "password=hunter2 in /var/lib/secret.db");
    return F3_EIO;
}

static int h_silent(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    (void)res;
    (void)ctx;
    return 0;
}

static int h_whoami(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    log_info("inside handler");
    const char *corr = log_get_correlation_id();
    int rc = http_res_json(res, 200,
                           json_pack("{s:s,s:s?,s:s?,s:s?}", "remote", http_req_remote_addr(req),
                                     "header", http_req_header(req, "x-TEST-header"), "logCorr",
                                     corr, "reqCorr", http_req_correlation_id(req)));
    return rc ? rc : http_res_header(res, "X-Extra", "yes");
}

static int h_gated(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    (void)ctx;
    gate_wait();
    return http_res_text(res, 200, NULL, "finally");
}

static int h_sleepy(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    (void)ctx;
    sleep_ms(1000);
    return http_res_text(res, 200, NULL, "too late");
}

static const http_route routes[] = {
    {"GET", "/health", h_health, NULL, NULL},        {"GET", "/orders/:id", h_order, NULL, NULL},
    {"GET", "/orders/export", h_export, NULL, NULL}, {"GET", "/static/*", h_static, NULL, NULL},
    {"GET", "/query", h_query, NULL, NULL},          {"POST", "/echo", h_echo, NULL, NULL},
    {"POST", "/upload", h_upload, NULL, NULL},       {"GET", "/fail", h_fail, NULL, NULL},
    {"GET", "/silent", h_silent, NULL, NULL},        {"GET", "/whoami", h_whoami, NULL, NULL},
    {"GET", "/gated", h_gated, NULL, NULL},          {"GET", "/sleepy", h_sleepy, NULL, NULL},
};

static http_server *start(unsigned threads, unsigned request_timeout_ms,
                          unsigned shutdown_timeout_ms)
{
    http_server_opts o = {.host = "127.0.0.1",
                          .port = 0,
                          .threads = threads,
                          .max_body = MAX_BODY,
                          .max_header = MAX_HEADER,
                          .request_timeout_ms = request_timeout_ms,
                          .shutdown_timeout_ms = shutdown_timeout_ms};
    err e;
    err_clear(&e);
    http_server *s = http_server_start(router, &o, &e);
    if (!s)
        fail_msg("server did not start: %s", e.msg);
    assert_true(http_server_port(s) > 0);
    return s;
}

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOG_WARN);
    router = http_router_new();
    err e;
    if (!router || http_router_add(router, routes, sizeof routes / sizeof routes[0], &e) != 0)
        return -1;
    server = start(2, 5000, 5000);
    port = http_server_port(server);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = http_server_stop(server);
    http_router_free(router);
    return rc;
}

/* ---- helpers ----------------------------------------------------------- */

static void request(const char *raw, f3test_http_response *r)
{
    if (f3test_http_request(port, raw, r) != 0)
        fail_msg("no complete response to: %.60s", raw);
}

static json_t *json_body(const f3test_http_response *r)
{
    json_error_t je;
    json_t *j = json_loads(r->body, 0, &je);
    if (!j)
        fail_msg("body is not JSON (%s): %s", je.text, r->body);
    return j;
}

/* Checks the one error body and that its correlationId is the header's. */
static json_t *assert_error(const f3test_http_response *r, int status)
{
    assert_int_equal(r->status, status);
    assert_string_equal(f3test_http_header_get(r, "Content-Type"), JSON_TYPE);
    json_t *j = json_body(r);
    assert_int_equal(json_object_size(j), 4);
    assert_int_equal(json_integer_value(json_object_get(j, "statusCode")), status);
    assert_string_equal(json_string_value(json_object_get(j, "error")), http_status_reason(status));
    assert_non_null(json_string_value(json_object_get(j, "message")));
    const char *corr = f3test_http_header_get(r, "X-Correlation-Id");
    assert_non_null(corr);
    assert_string_equal(json_string_value(json_object_get(j, "correlationId")), corr);
    return j;
}

static const char *message_of(json_t *j)
{
    return json_string_value(json_object_get(j, "message"));
}

/* ---- routing ----------------------------------------------------------- */

static void test_routes_and_params(void **state)
{
    (void)state;
    f3test_http_response r;
    request("GET /orders/7 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(f3test_http_header_get(&r, "Content-Type"), JSON_TYPE);
    assert_string_equal(r.body, "{\"id\":\"7\"}");
    f3test_http_response_free(&r);

    request("GET /orders/export HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "export");
    f3test_http_response_free(&r);

    request("GET /orders/a%20b/ HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_string_equal(r.body, "{\"id\":\"a b\"}");
    f3test_http_response_free(&r);

    request("GET /static/css/app.css HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(f3test_http_header_get(&r, "Content-Type"), "text/css");
    assert_string_equal(r.body, "css/app.css");
    f3test_http_response_free(&r);

    request("GET /health/ HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    f3test_http_response_free(&r);
}

static void test_not_found(void **state)
{
    (void)state;
    f3test_http_response r;
    request("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    json_t *nope = assert_error(&r, 404);
    assert_string_equal(message_of(nope), "No route for GET /nope");
    json_decref(nope);
    f3test_http_response_free(&r);

    request("GET /orders/42 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    json_t *j = assert_error(&r, 404);
    assert_string_equal(message_of(j), "Order not found: 42");
    json_decref(j);
    f3test_http_response_free(&r);
}

static void test_method_not_allowed(void **state)
{
    (void)state;
    f3test_http_response r;
    request("DELETE /health HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    json_decref(assert_error(&r, 405));
    assert_string_equal(f3test_http_header_get(&r, "Allow"), "GET, HEAD");
    f3test_http_response_free(&r);

    request("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    json_decref(assert_error(&r, 405));
    assert_string_equal(f3test_http_header_get(&r, "Allow"), "POST");
    f3test_http_response_free(&r);
}

static void test_head_has_no_body(void **state)
{
    (void)state;
    f3test_http_response get, head;
    request("GET /health HTTP/1.1\r\nHost: t\r\n\r\n", &get);
    request("HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n", &head);
    assert_int_equal(head.status, 200);
    assert_int_equal(head.body_len, 0);
    assert_string_equal(f3test_http_header_get(&head, "Content-Type"), JSON_TYPE);
    char len[16];
    snprintf(len, sizeof len, "%zu", get.body_len);
    assert_string_equal(f3test_http_header_get(&head, "Content-Length"), len);
    f3test_http_response_free(&get);
    f3test_http_response_free(&head);

    /* the connection stays usable: nothing of a body was left on the wire */
    int fd = f3test_http_connect(port);
    assert_true(fd >= 0);
    const char *two = "HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(f3test_http_send(fd, two, strlen(two)), 0);
    assert_int_equal(f3test_http_read_response(fd, true, &head), 0);
    f3test_http_response_free(&head);
    const char *then = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(f3test_http_send(fd, then, strlen(then)), 0);
    assert_int_equal(f3test_http_read_response(fd, false, &get), 0);
    assert_string_equal(get.body, "{\"status\":\"ok\"}");
    f3test_http_response_free(&get);
    close(fd);
}

static void test_query_params(void **state)
{
    (void)state;
    f3test_http_response r;
    request("GET /query?q=a%20b+c&flag&x=%C3%A9 HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    json_t *j = json_body(&r);
    assert_string_equal(json_string_value(json_object_get(j, "q")), "a b c");
    assert_string_equal(json_string_value(json_object_get(j, "flag")), "");
    assert_true(json_is_null(json_object_get(j, "missing")));
    assert_string_equal(json_string_value(json_object_get(j, "raw")), "q=a%20b+c&flag&x=%C3%A9");
    json_decref(j);
    f3test_http_response_free(&r);

    request("GET /query HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    j = json_body(&r);
    assert_true(json_is_null(json_object_get(j, "q")));
    assert_string_equal(json_string_value(json_object_get(j, "raw")), "");
    json_decref(j);
    f3test_http_response_free(&r);

    request("GET /query?q=%zz HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    json_decref(assert_error(&r, 400));
    f3test_http_response_free(&r);
}

static void test_bad_paths(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "GET /static/../secret HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /static/%2e%2e/secret HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /orders/a%00b HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /orders/%g1 HTTP/1.1\r\nHost: t\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f3test_http_response r;
        request(bad[i], &r);
        json_decref(assert_error(&r, 400));
        f3test_http_response_free(&r);
    }
}

/* ---- JSON bodies ------------------------------------------------------- */

static void post_json(const char *content_type, const char *body, f3test_http_response *r)
{
    buf b;
    buf_init(&b, 0);
    buf_printf(&b, "POST /echo HTTP/1.1\r\nHost: t\r\n");
    if (content_type)
        buf_printf(&b, "Content-Type: %s\r\n", content_type);
    buf_printf(&b, "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    request(buf_cstr(&b), r);
    buf_free(&b);
}

static void test_json_body_parsed(void **state)
{
    (void)state;
    f3test_http_response r;
    post_json("application/json", "{\"a\":[1,2]}", &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"got\":{\"a\":[1,2]}}");
    f3test_http_response_free(&r);

    post_json("Application/JSON; charset=UTF-8", "[true]", &r);
    assert_int_equal(r.status, 201);
    f3test_http_response_free(&r);
}

static void test_json_malformed_is_400_with_position(void **state)
{
    (void)state;
    f3test_http_response r;
    post_json("application/json", "{\"a\":\n  tru}", &r);
    json_t *j = assert_error(&r, 400);
    const char *msg = message_of(j);
    assert_non_null(strstr(msg, "Malformed JSON"));
    assert_non_null(strstr(msg, "line 2"));
    assert_non_null(strstr(msg, "column"));
    json_decref(j);
    f3test_http_response_free(&r);
}

static void test_json_empty_body_is_400(void **state)
{
    (void)state;
    f3test_http_response r;
    post_json("application/json", "", &r);
    json_t *j = assert_error(&r, 400);
    assert_non_null(strstr(message_of(j), "empty"));
    json_decref(j);
    f3test_http_response_free(&r);
}

static void test_json_wrong_content_type_is_415(void **state)
{
    (void)state;
    static const char *const types[] = {"text/plain", "application/jsonx",
                                        "application/json; charset=latin1", NULL};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        f3test_http_response r;
        post_json(types[i], "{}", &r);
        json_decref(assert_error(&r, 415));
        f3test_http_response_free(&r);
    }
}

/* ---- size limits ------------------------------------------------------- */

static void test_body_up_to_the_cap_is_accepted(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 0);
    buf_printf(&b, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", MAX_BODY);
    for (int i = 0; i < MAX_BODY; i++)
        buf_putc(&b, 'x');
    f3test_http_response r;
    request(buf_cstr(&b), &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"bytes\":1024}");
    f3test_http_response_free(&r);
    buf_free(&b);
}

static void test_content_length_over_cap_is_413_before_the_body(void **state)
{
    (void)state;
    /* only the headers are sent: the answer must not wait for the body */
    f3test_http_response r;
    request("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n", &r);
    json_t *j = assert_error(&r, 413);
    assert_non_null(strstr(message_of(j), "1024"));
    json_decref(j);
    f3test_http_response_free(&r);

    request("POST /nowhere HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n"
            "Expect: 100-continue\r\n\r\n",
            &r);
    json_decref(assert_error(&r, 413));
    f3test_http_response_free(&r);
}

static void test_chunked_over_cap_is_413_as_soon_as_passed(void **state)
{
    (void)state;
    int fd = f3test_http_connect(port);
    assert_true(fd >= 0);
    const char *head = "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(f3test_http_send(fd, head, strlen(head)), 0);
    char chunk[256 + 16];
    int n = snprintf(chunk, sizeof chunk, "100\r\n");
    memset(chunk + n, 'y', 256);
    memcpy(chunk + n + 256, "\r\n", 2);
    size_t chunk_len = (size_t)n + 258;
    /* An endless body: keep sending until the server answers. */
    size_t sent = 0;
    for (int i = 0; i < 4000; i++) {
        struct timeval tv = {0};
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(fd, &rd);
        if (select(fd + 1, &rd, NULL, NULL, &tv) > 0)
            break;
        if (f3test_http_send(fd, chunk, chunk_len) != 0)
            break;
        sent += 256;
        sleep_ms(5);
    }
    f3test_http_response r;
    assert_int_equal(f3test_http_read_response(fd, false, &r), 0);
    json_decref(assert_error(&r, 413));
    assert_string_equal(f3test_http_header_get(&r, "Connection"), "close");
    f3test_http_response_free(&r);
    /* answered while the (endless) body was still arriving */
    assert_true(sent < 256 * 1024);
    assert_true(f3test_http_wait_closed(fd, 5000));
    close(fd);
}

static void test_chunked_within_cap_is_accepted(void **state)
{
    (void)state;
    f3test_http_response r;
    request("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"bytes\":11}");
    f3test_http_response_free(&r);
}

static char *request_with_header_bytes(size_t n)
{
    buf b;
    buf_init(&b, 0);
    buf_puts(&b, "GET /health HTTP/1.1\r\nHost: t\r\nX-Big: ");
    for (size_t i = 0; i < n; i++)
        buf_putc(&b, 'h');
    buf_puts(&b, "\r\n\r\n");
    return buf_detach(&b);
}

static void test_headers_over_cap_are_431_and_long_targets_414(void **state)
{
    (void)state;
    char *raw = request_with_header_bytes(MAX_HEADER + 2000);
    f3test_http_response r;
    request(raw, &r);
    json_t *j = assert_error(&r, 431);
    assert_non_null(strstr(message_of(j), "4096"));
    json_decref(j);
    f3test_http_response_free(&r);
    free(raw);

    buf long_url;
    buf_init(&long_url, 0);
    buf_puts(&long_url, "GET /query?q=");
    for (int i = 0; i < MAX_HEADER + 10; i++)
        buf_putc(&long_url, 'u');
    buf_puts(&long_url, " HTTP/1.1\r\nHost: t\r\n\r\n");
    request(buf_cstr(&long_url), &r);
    json_decref(assert_error(&r, 414));
    f3test_http_response_free(&r);
    buf_free(&long_url);

    raw = request_with_header_bytes(MAX_HEADER - 200);
    request(raw, &r);
    assert_int_equal(r.status, 200);
    f3test_http_response_free(&r);
    free(raw);
}

static void test_huge_headers_answered_by_libmicrohttpd(void **state)
{
    (void)state;
    /* Far beyond the connection memory: libmicrohttpd answers (its own body). */
    char *raw = request_with_header_bytes(200 * 1024);
    f3test_http_response r;
    request(raw, &r);
    assert_int_equal(r.status, 431);
    f3test_http_response_free(&r);
    free(raw);

    request("GET /health HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    f3test_http_response_free(&r);
}

/* A query of thousands of arguments outgrows libmicrohttpd's connection pool while the
 * header is read: it gives up on the request, and a server stopped before the request's
 * timeout never sees its completion hook. The exchange made for the request is freed with
 * the connection all the same (LeakSanitizer checks at exit). */
static void test_too_many_query_arguments_leak_nothing(void **state)
{
    (void)state;
    http_server *own = start(1, 60000, 1000);
    buf raw;
    buf_init(&raw, 0);
    buf_puts(&raw, "GET /query?");
    for (int i = 0; i < MAX_HEADER - 200; i++)
        buf_putc(&raw, '&');
    buf_puts(&raw, " HTTP/1.1\r\nHost: t\r\n\r\n");
    f3test_http_response r;
    (void)f3test_http_request(http_server_port(own), buf_cstr(&raw), &r); /* no answer */
    assert_true(r.status == 0 || (r.status >= 400 && r.status < 500));
    f3test_http_response_free(&r);
    buf_free(&raw);
    request("GET /health HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    f3test_http_response_free(&r);
    http_server_stop(own);
}

/* ---- handler failures -------------------------------------------------- */

static void test_handler_failure_is_500_without_internals(void **state)
{
    (void)state;
    static const char *const raws[] = {"GET /fail HTTP/1.1\r\nHost: t\r\n\r\n",
                                       "GET /silent HTTP/1.1\r\nHost: t\r\n\r\n"};
    log_set_level(LOG_SILENT); /* the real reason is logged; not needed here */
    for (size_t i = 0; i < 2; i++) {
        f3test_http_response r;
        request(raws[i], &r);
        json_t *j = assert_error(&r, 500);
        assert_string_equal(message_of(j), "Internal server error");
        assert_null(strstr(r.body, "hunter2"));
        assert_null(strstr(r.body, "secret"));
        json_decref(j);
        f3test_http_response_free(&r);
    }
    log_set_level(LOG_WARN);
}

/* ---- correlation ids --------------------------------------------------- */

static void test_correlation_from_header(void **state)
{
    (void)state;
    f3test_http_response r;
    request("GET /whoami HTTP/1.1\r\nHost: t\r\nX-Correlation-Id: abc-123\r\n"
            "x-test-header: hello\r\n\r\n",
            &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(f3test_http_header_get(&r, "X-Correlation-Id"), "abc-123");
    assert_string_equal(f3test_http_header_get(&r, "X-Extra"), "yes");
    json_t *j = json_body(&r);
    assert_string_equal(json_string_value(json_object_get(j, "reqCorr")), "abc-123");
    assert_string_equal(json_string_value(json_object_get(j, "logCorr")), "abc-123");
    assert_string_equal(json_string_value(json_object_get(j, "header")), "hello");
    assert_string_equal(json_string_value(json_object_get(j, "remote")), "127.0.0.1");
    json_decref(j);
    f3test_http_response_free(&r);

    request("GET /nope HTTP/1.1\r\nHost: t\r\nX-Correlation-Id: err-9\r\n\r\n", &r);
    json_t *e = assert_error(&r, 404);
    assert_string_equal(json_string_value(json_object_get(e, "correlationId")), "err-9");
    json_decref(e);
    f3test_http_response_free(&r);
}

static void test_correlation_from_traceparent(void **state)
{
    (void)state;
    f3test_http_response r;
    request("GET /whoami HTTP/1.1\r\nHost: t\r\n"
            "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n",
            &r);
    assert_string_equal(f3test_http_header_get(&r, "X-Correlation-Id"),
                        "0af7651916cd43dd8448eb211c80319c");
    f3test_http_response_free(&r);

    /* an unusable X-Correlation-Id gives way to the traceparent */
    request("GET /whoami HTTP/1.1\r\nHost: t\r\nX-Correlation-Id: has space\r\n"
            "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n",
            &r);
    assert_string_equal(f3test_http_header_get(&r, "X-Correlation-Id"),
                        "0af7651916cd43dd8448eb211c80319c");
    f3test_http_response_free(&r);
}

static void test_correlation_generated(void **state)
{
    (void)state;
    f3test_http_response a, b;
    request("GET /whoami HTTP/1.1\r\nHost: t\r\ntraceparent: 00-bogus\r\n\r\n", &a);
    request("GET /whoami HTTP/1.1\r\nHost: t\r\n\r\n", &b);
    const char *ia = f3test_http_header_get(&a, "X-Correlation-Id");
    const char *ib = f3test_http_header_get(&b, "X-Correlation-Id");
    assert_true(uuid_valid(ia));
    assert_true(uuid_valid(ib));
    assert_string_not_equal(ia, ib);
    json_t *j = json_body(&a);
    assert_string_equal(json_string_value(json_object_get(j, "logCorr")), ia);
    json_decref(j);
    f3test_http_response_free(&a);
    f3test_http_response_free(&b);
}

/* ---- access log -------------------------------------------------------- */

/* The first log line in `path` with msg `msg` and the given correlation id,
 * waiting up to 5 s for it (the line is written once the response is sent). */
static json_t *find_log_line(const char *path, const char *msg, const char *corr)
{
    for (int tries = 0; tries < 500; tries++) {
        FILE *f = fopen(path, "r");
        char line[8192];
        while (f && fgets(line, sizeof line, f)) {
            json_t *j = json_loads(line, 0, NULL);
            const char *m = json_string_value(json_object_get(j, "msg"));
            const char *c = json_string_value(json_object_get(j, "correlationId"));
            if (m && c && strcmp(m, msg) == 0 && strcmp(c, corr) == 0) {
                fclose(f);
                return j;
            }
            json_decref(j);
        }
        if (f)
            fclose(f);
        sleep_ms(10);
    }
    return NULL;
}

static void test_access_log_line(void **state)
{
    (void)state;
    char *dir = f3test_tmpdir();
    assert_non_null(dir);
    char path[600];
    snprintf(path, sizeof path, "%s/log", dir);
    FILE *log = fopen(path, "w");
    assert_non_null(log);
    log_set_stream(log);
    log_set_level(LOG_INFO);

    f3test_http_response a, b;
    request("GET /whoami?token=s3cret HTTP/1.1\r\nHost: t\r\nX-Correlation-Id: log-1\r\n\r\n", &a);
    request("GET /nope HTTP/1.1\r\nHost: t\r\nX-Correlation-Id: log-2\r\n\r\n", &b);
    assert_int_equal(a.status, 200);

    json_t *line = find_log_line(path, "request completed", "log-1");
    json_t *inside = find_log_line(path, "inside handler", "log-1");
    json_t *miss = find_log_line(path, "request completed", "log-2");
    log_set_level(LOG_WARN);
    log_set_stream(NULL);
    fclose(log);

    assert_non_null(line);
    assert_non_null(inside);
    assert_non_null(miss);
    assert_int_equal(json_integer_value(json_object_get(line, "level")), 30);
    assert_string_equal(json_string_value(json_object_get(line, "method")), "GET");
    /* the query (which may carry tokens) is not logged */
    assert_string_equal(json_string_value(json_object_get(line, "path")), "/whoami");
    char *text = json_dumps(line, 0);
    assert_null(strstr(text, "s3cret"));
    free(text);
    assert_true(json_is_integer(json_object_get(line, "status")));
    assert_int_equal(json_integer_value(json_object_get(line, "status")), 200);
    assert_true(json_is_number(json_object_get(line, "durationMs")));
    assert_true(json_number_value(json_object_get(line, "durationMs")) >= 0);
    assert_true(json_is_integer(json_object_get(line, "bytes")));
    assert_int_equal(json_integer_value(json_object_get(line, "bytes")), (json_int_t)a.body_len);
    assert_int_equal(json_integer_value(json_object_get(miss, "status")), 404);
    assert_int_equal(json_integer_value(json_object_get(miss, "bytes")), (json_int_t)b.body_len);
    json_decref(line);
    json_decref(inside);
    json_decref(miss);
    f3test_http_response_free(&a);
    f3test_http_response_free(&b);
    f3test_rmtree(dir);
    free(dir);
}

/* ---- malformed requests ------------------------------------------------ */

static void test_malformed_requests_do_not_hurt(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        int status; /* 0: a close without an answer is fine too */
    } cases[] = {
        {"GARBAGE\r\n\r\n", 0},
        {"GET /health HTTP/9.9\r\nHost: t\r\n\r\n", 505},
        {"GET /health HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n", 400},
        {"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 12abc\r\n\r\n", 400},
        {"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        {"\x01\x02\x03\xff\xfe\r\n\r\n", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        f3test_http_response r;
        int rc = f3test_http_request(port, cases[i].raw, &r);
        if (cases[i].status) {
            assert_int_equal(rc, 0);
            assert_int_equal(r.status, cases[i].status);
        } else if (rc == 0) {
            assert_true(r.status >= 400 && r.status < 600);
        }
        f3test_http_response_free(&r);
        request("GET /health HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        f3test_http_response_free(&r);
    }
}

/* ---- start-up errors --------------------------------------------------- */

static void test_bind_error_is_clear(void **state)
{
    (void)state;
    http_server_opts o = {.host = "127.0.0.1", .port = port};
    err e;
    err_clear(&e);
    assert_null(http_server_start(router, &o, &e));
    char want[128];
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%d: Address already in use", port);
    assert_string_equal(e.msg, want);

    o.host = "no-such-host.invalid";
    o.port = 0;
    assert_null(http_server_start(router, &o, &e));
    assert_non_null(strstr(e.msg, "cannot listen on no-such-host.invalid:0"));

    o.host = "127.0.0.1";
    o.port = 70000;
    assert_null(http_server_start(router, &o, &e));
    assert_int_equal(e.code, F3_EINVAL);
}

/* ---- slow clients ------------------------------------------------------ */

typedef struct slow_client {
    int port;
    int rc;
    size_t sent;
} slow_client;

static void *slow_client_main(void *arg)
{
    slow_client *c = arg;
    int fd = f3test_http_open_idle(c->port, "GET /health HTTP/1.1\r\nHost: t\r\n");
    char trickle[200];
    memset(trickle, 'a', sizeof trickle);
    /* A raw header fragment, deliberately not a C string. */
    memcpy(trickle, "X-Slow: ", strlen("X-Slow: ")); // NOLINT(bugprone-not-null-terminated-result)
    c->rc = fd < 0 ? 1 : f3test_http_send_slowly(fd, trickle, sizeof trickle, 1, 50, &c->sent);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void test_slowloris_is_dropped_and_others_served(void **state)
{
    (void)state;
    http_server *s = start(1, 1000, 5000); /* one thread: the slow client must not hold it */
    int p = http_server_port(s);
    slow_client c = {.port = p, .rc = 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_client_main, &c), 0);
    int idle = f3test_http_open_idle(p, NULL);
    assert_true(idle >= 0);
    sleep_ms(200);

    f3test_http_response r;
    assert_int_equal(f3test_http_request(p, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 200);
    f3test_http_response_free(&r);

    pthread_join(t, NULL);
    /* the trickle (one byte per 50 ms, 10 s in all) was cut off by the server */
    assert_int_equal(c.rc, -1);
    assert_true(c.sent < 200);
    assert_true(f3test_http_wait_closed(idle, 10000));
    close(idle);

    assert_int_equal(f3test_http_request(p, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 200);
    f3test_http_response_free(&r);
    assert_int_equal(http_server_stop(s), 0);
}

/* ---- graceful shutdown ------------------------------------------------- */

typedef struct client_call {
    int port;
    const char *raw;
    int rc;
    f3test_http_response res;
} client_call;

static void *client_call_main(void *arg)
{
    client_call *c = arg;
    c->rc = f3test_http_request(c->port, c->raw, &c->res);
    return NULL;
}

typedef struct stop_call {
    http_server *s;
    int rc;
} stop_call;

static void *stop_call_main(void *arg)
{
    stop_call *c = arg;
    c->rc = http_server_stop(c->s);
    return NULL;
}

/* Waits (up to 5 s) until the server has n requests in flight. */
static void wait_in_flight(http_server *s, unsigned n)
{
    for (int i = 0; i < 500 && http_server_in_flight(s) != n; i++)
        sleep_ms(10);
    assert_int_equal(http_server_in_flight(s), n);
}

static void test_shutdown_lets_in_flight_request_finish(void **state)
{
    (void)state;
    gate_set(false);
    http_server *s = start(2, 5000, 10000);
    int p = http_server_port(s);
    client_call call = {.port = p, .raw = "GET /gated HTTP/1.1\r\nHost: t\r\n\r\n"};
    pthread_t client, stopper;
    assert_int_equal(pthread_create(&client, NULL, client_call_main, &call), 0);
    wait_in_flight(s, 1);

    stop_call stop = {.s = s, .rc = 99};
    assert_int_equal(pthread_create(&stopper, NULL, stop_call_main, &stop), 0);
    /* new connections are refused while the request is still held at the gate */
    bool refused = false;
    for (int i = 0; i < 500 && !refused; i++) {
        int fd = f3test_http_connect(p);
        if (fd < 0 && errno == ECONNREFUSED)
            refused = true;
        else if (fd >= 0)
            close(fd);
        if (!refused)
            sleep_ms(10);
    }
    assert_true(refused);
    gate_set(true);

    pthread_join(client, NULL);
    pthread_join(stopper, NULL);
    assert_int_equal(call.rc, 0);
    assert_int_equal(call.res.status, 200);
    assert_string_equal(call.res.body, "finally");
    assert_string_equal(f3test_http_header_get(&call.res, "Connection"), "close");
    assert_int_equal(stop.rc, 0);
    f3test_http_response_free(&call.res);
}

static void test_shutdown_bound_is_reported(void **state)
{
    (void)state;
    http_server *s = start(2, 5000, 100);
    client_call call = {.port = http_server_port(s),
                        .raw = "GET /sleepy HTTP/1.1\r\nHost: t\r\n\r\n"};
    pthread_t client;
    assert_int_equal(pthread_create(&client, NULL, client_call_main, &call), 0);
    wait_in_flight(s, 1);
    assert_int_equal(http_server_stop(s), F3_EBUSY);
    pthread_join(client, NULL);
    /* the late response was dropped with the connection */
    assert_int_equal(call.rc, -1);
    f3test_http_response_free(&call.res);
}

static void test_stop_idle_server_and_null(void **state)
{
    (void)state;
    http_server *s = start(1, 1000, 1000);
    int p = http_server_port(s);
    int idle = f3test_http_open_idle(p, NULL); /* an open connection does not hold stop */
    assert_true(idle >= 0);
    assert_int_equal(http_server_stop(s), 0);
    assert_true(f3test_http_wait_closed(idle, 5000));
    close(idle);
    assert_int_equal(f3test_http_connect(p), -1);
    assert_int_equal(http_server_stop(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_and_params),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_head_has_no_body),
        cmocka_unit_test(test_query_params),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_json_body_parsed),
        cmocka_unit_test(test_json_malformed_is_400_with_position),
        cmocka_unit_test(test_json_empty_body_is_400),
        cmocka_unit_test(test_json_wrong_content_type_is_415),
        cmocka_unit_test(test_body_up_to_the_cap_is_accepted),
        cmocka_unit_test(test_content_length_over_cap_is_413_before_the_body),
        cmocka_unit_test(test_chunked_over_cap_is_413_as_soon_as_passed),
        cmocka_unit_test(test_chunked_within_cap_is_accepted),
        cmocka_unit_test(test_headers_over_cap_are_431_and_long_targets_414),
        cmocka_unit_test(test_too_many_query_arguments_leak_nothing),
        cmocka_unit_test(test_huge_headers_answered_by_libmicrohttpd),
        cmocka_unit_test(test_handler_failure_is_500_without_internals),
        cmocka_unit_test(test_correlation_from_header),
        cmocka_unit_test(test_correlation_from_traceparent),
        cmocka_unit_test(test_correlation_generated),
        cmocka_unit_test(test_access_log_line),
        cmocka_unit_test(test_malformed_requests_do_not_hurt),
        cmocka_unit_test(test_bind_error_is_clear),
        cmocka_unit_test(test_slowloris_is_dropped_and_others_served),
        cmocka_unit_test(test_shutdown_lets_in_flight_request_finish),
        cmocka_unit_test(test_shutdown_bound_is_reported),
        cmocka_unit_test(test_stop_idle_server_and_null),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
