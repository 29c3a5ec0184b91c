/*
 * test_http_client.c - the outgoing HTTP client against a scripted fake server.
 *
 * The fake server is libmicrohttpd inside this program, answering by path; it is a
 * test double only and must not grow into a router.
 */
#include "support/f3test.h"

#include "core/buf.h"
#include "core/log.h"
#include "http/client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BIG_SIZE ((size_t)2 * 1024 * 1024)
#define ONE_MIB  ((size_t)1024 * 1024)

/* ---- the fake server -------------------------------------------------------------- */

static struct MHD_Daemon *fake_daemon;
static unsigned fake_port;
static char *fake_big; /* BIG_SIZE bytes of 'x' */
static atomic_int fake_stopping;

typedef struct fake_request {
    buf body;
} fake_request;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *content_type,
                             const char *body, const char *hname, const char *hvalue)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (content_type)
        MHD_add_response_header(r, "Content-Type", content_type);
    if (hname)
        MHD_add_response_header(r, hname, hvalue);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static const char *header_of(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static enum MHD_Result answer_echo(struct MHD_Connection *c, const char *method, fake_request *fr)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr_in *peer = (const struct sockaddr_in *)ci->client_addr;
    json_t *o =
        json_pack("{s:s, s:s, s:s*, s:s*, s:s*, s:s*, s:i}", "method", method, "body",
                  buf_cstr(&fr->body), "contentType", header_of(c, "Content-Type"), "correlationId",
                  header_of(c, "X-Correlation-Id"), "userAgent", header_of(c, "User-Agent"),
                  "accept", header_of(c, "Accept"), "clientPort", (int)ntohs(peer->sin_port));
    char *text = json_dumps(o, JSON_COMPACT);
    enum MHD_Result ok = reply(c, 200, "application/json", text, NULL, NULL);
    free(text);
    json_decref(o);
    return ok;
}

static enum MHD_Result answer_429_date(struct MHD_Connection *c)
{
    time_t later = time(NULL) + 10;
    struct tm tm;
    char date[64];
    gmtime_r(&later, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return reply(c, 429, "text/plain", "slow down", "Retry-After", date);
}

static enum MHD_Result answer_slow(struct MHD_Connection *c)
{
    for (int i = 0; i < 100 && !atomic_load(&fake_stopping); i++)
        usleep(20 * 1000);
    return reply(c, 200, "text/plain", "finally", NULL, NULL);
}

static enum MHD_Result answer_big(struct MHD_Connection *c)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(BIG_SIZE, fake_big, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ok;
}

static ssize_t big_chunks(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)cls;
    if (pos >= BIG_SIZE)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = BIG_SIZE - (size_t)pos < max ? BIG_SIZE - (size_t)pos : max;
    memset(out, 'y', n);
    return (ssize_t)n;
}

static enum MHD_Result answer_big_chunked(struct MHD_Connection *c)
{
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, big_chunks, NULL, NULL);
    enum MHD_Result ok = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result fake_answer(struct MHD_Connection *c, const char *url, const char *method,
                                   fake_request *fr)
{
    static const struct {
        const char *path;
        unsigned status;
        const char *content_type, *body, *hname, *hvalue;
    } canned[] = {
        {"/ok", 200, "application/json", "{\"ok\":true}", "X-Request-Id", "abc-123"},
        {"/created", 201, "application/json", "{\"id\":\"c1\"}", NULL, NULL},
        {"/nocontent", 204, NULL, "", NULL, NULL},
        {"/badjson", 200, "application/json", "{nope", NULL, NULL},
        {"/429-secs", 429, "text/plain", "slow down", "Retry-After", "7"},
        {"/503", 503, "text/plain", "down", NULL, NULL},
        {"/500", 500, "text/plain", "oops", NULL, NULL},
        {"/404", 404, "text/plain", "no such thing", NULL, NULL},
        {"/400", 400, "application/json",
         "{\"statusCode\":400,\"error\":\"Bad Request\",\"message\":\"sku missing\"}", NULL, NULL},
        {"/408", 408, "text/plain", "too slow", NULL, NULL},
        {"/redirect", 302, "text/plain", "", "Location", "/ok"},
    };
    for (size_t i = 0; i < sizeof canned / sizeof canned[0]; i++)
        if (strcmp(url, canned[i].path) == 0)
            return reply(c, canned[i].status, canned[i].content_type, canned[i].body,
                         canned[i].hname, canned[i].hvalue);
    if (strcmp(url, "/echo") == 0)
        return answer_echo(c, method, fr);
    if (strcmp(url, "/429-date") == 0)
        return answer_429_date(c);
    if (strcmp(url, "/slow") == 0)
        return answer_slow(c);
    if (strcmp(url, "/big") == 0)
        return answer_big(c);
    if (strcmp(url, "/bigchunked") == 0)
        return answer_big_chunked(c);
    return reply(c, 404, "text/plain", "unknown fake path", NULL, NULL);
}

static enum MHD_Result fake_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    (void)cls;
    (void)version;
    fake_request *fr = *con_cls;
    if (!fr) {
        fr = calloc(1, sizeof *fr);
        if (!fr)
            return MHD_NO;
        buf_init(&fr->body, 0);
        *con_cls = fr;
        return MHD_YES;
    }
    if (*upload_data_size) {
        buf_append(&fr->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    return fake_answer(c, url, method, fr);
}

static void fake_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    fake_request *fr = *con_cls;
    if (fr) {
        buf_free(&fr->body);
        free(fr);
        *con_cls = NULL;
    }
}

static int fake_start(void **state)
{
    (void)state;
    fake_big = malloc(BIG_SIZE);
    if (!fake_big)
        return -1;
    memset(fake_big, 'x', BIG_SIZE);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fake_daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, fake_handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_NOTIFY_COMPLETED, fake_completed, NULL, MHD_OPTION_END);
    if (!fake_daemon)
        return -1;
    fake_port = MHD_get_daemon_info(fake_daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
    return http_client_init();
}

static int fake_stop(void **state)
{
    (void)state;
    http_client_cleanup(); /* closes this thread's kept-alive connections first */
    atomic_store(&fake_stopping, 1);
    MHD_stop_daemon(fake_daemon);
    free(fake_big);
    return 0;
}

static void fake_url(char out[256], const char *path)
{
    snprintf(out, 256, "http://127.0.0.1:%u%s", fake_port, path);
}

/* GETs path with the given cap; returns the status code of the call. */
static int get(const char *path, size_t max_response, long timeout_ms, http_client_response *rs,
               err *e)
{
    char url[256];
    fake_url(url, path);
    http_client_request rq = {
        .method = "GET", .url = url, .timeout_ms = timeout_ms, .max_response = max_response};
    return http_client_send(&rq, rs, e);
}

/* The echo server's view of a request; caller json_decref()s. */
static json_t *echo(const http_client_request *base)
{
    char url[256];
    fake_url(url, "/echo");
    http_client_request rq = *base;
    rq.url = url;
    http_client_response rs;
    err e;
    int rc = http_client_send(&rq, &rs, &e);
    json_t *seen = rc == 0 ? json_loads(buf_cstr(&rs.body), 0, NULL) : NULL;
    http_client_response_free(&rs);
    return seen;
}

/* ---- requests that succeed --------------------------------------------------------- */

static void test_ok_with_headers(void **state)
{
    (void)state;
    http_client_response rs;
    err e;
    assert_int_equal(get("/ok", 0, 0, &rs, &e), 0);
    assert_int_equal(rs.status, 200);
    assert_int_equal(rs.failure, HTTP_OK);
    assert_string_equal(buf_cstr(&rs.body), "{\"ok\":true}");
    assert_string_equal(http_client_header(&rs, "X-Request-Id"), "abc-123");
    assert_string_equal(http_client_header(&rs, "x-request-id"), "abc-123");
    assert_string_equal(http_client_header(&rs, "content-type"), "application/json");
    assert_null(http_client_header(&rs, "X-Absent"));
    assert_int_equal(rs.retry_after_ms, -1);
    http_client_response_free(&rs);
    assert_null(http_client_header(&rs, "X-Request-Id"));
}

static void test_echo_sees_method_body_type_agent_and_correlation(void **state)
{
    (void)state;
    log_set_correlation_id("corr-123");
    const char *body = "{\"a\":1}";
    http_client_request rq = {.method = "POST",
                              .body = body,
                              .body_len = strlen(body),
                              .content_type = "application/json"};
    json_t *seen = echo(&rq);
    log_set_correlation_id(NULL);
    assert_non_null(seen);
    assert_string_equal(json_string_value(json_object_get(seen, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(seen, "body")), body);
    assert_string_equal(json_string_value(json_object_get(seen, "contentType")),
                        "application/json");
    assert_string_equal(json_string_value(json_object_get(seen, "correlationId")), "corr-123");
    assert_string_equal(json_string_value(json_object_get(seen, "userAgent")),
                        "f3connect/" F3_VERSION);
    json_decref(seen);
}

static void test_caller_correlation_id_wins_and_none_without_one(void **state)
{
    (void)state;
    const char *headers[] = {"x-correlation-id: mine", NULL};
    log_set_correlation_id("thread-id");
    http_client_request rq = {.method = "GET", .headers = headers};
    json_t *seen = echo(&rq);
    log_set_correlation_id(NULL);
    assert_non_null(seen);
    assert_string_equal(json_string_value(json_object_get(seen, "correlationId")), "mine");
    json_decref(seen);

    http_client_request plain = {.method = "GET"};
    seen = echo(&plain);
    assert_non_null(seen);
    assert_null(json_object_get(seen, "correlationId"));
    json_decref(seen);
}

static void test_methods_without_body(void **state)
{
    (void)state;
    static const char *methods[] = {"PUT", "DELETE", "PATCH", "POST"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        http_client_request rq = {.method = methods[i]};
        json_t *seen = echo(&rq);
        assert_non_null(seen);
        assert_string_equal(json_string_value(json_object_get(seen, "method")), methods[i]);
        assert_string_equal(json_string_value(json_object_get(seen, "body")), "");
        /* curl's form-urlencoded default must not leak into body-less requests */
        assert_null(json_object_get(seen, "contentType"));
        json_decref(seen);
    }
}

static void test_created_and_no_content(void **state)
{
    (void)state;
    http_client_response rs;
    err e;
    assert_int_equal(get("/created", 0, 0, &rs, &e), 0);
    assert_int_equal(rs.status, 201);
    http_client_response_free(&rs);
    assert_int_equal(get("/nocontent", 0, 0, &rs, &e), 0);
    assert_int_equal(rs.status, 204);
    assert_int_equal(rs.body.len, 0);
    assert_string_equal(buf_cstr(&rs.body), "");
    http_client_response_free(&rs);
}

static void test_keep_alive_reuses_the_connection(void **state)
{
    (void)state;
    http_client_request rq = {.method = "GET"};
    json_t *a = echo(&rq);
    json_t *b = echo(&rq);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(json_integer_value(json_object_get(a, "clientPort")),
                     json_integer_value(json_object_get(b, "clientPort")));
    json_decref(a);
    json_decref(b);
}

/* ---- failures over HTTP ------------------------------------------------------------ */

static void test_statuses_are_classified_and_described(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        int rc;
        http_failure failure;
        long status;
        const char *says;
    } cases[] = {
        {"/503", F3_ETRANSIENT, HTTP_TRANSIENT, 503, ": 503 Service Unavailable"},
        {"/500", F3_ETRANSIENT, HTTP_TRANSIENT, 500, ": 500 Internal Server Error"},
        {"/408", F3_ETRANSIENT, HTTP_TRANSIENT, 408, ": 408 Request Timeout"},
        {"/429-secs", F3_ETRANSIENT, HTTP_TRANSIENT, 429,
         ": 429 Too Many Requests (retry after 7000 ms)"},
        {"/404", F3_EPERMANENT, HTTP_PERMANENT, 404, ": 404 Not Found"},
        {"/400", F3_EPERMANENT, HTTP_PERMANENT, 400, ": 400 Bad Request"},
        {"/redirect", F3_EPERMANENT, HTTP_PERMANENT, 302,
         ": 302 Found (redirects are not followed)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_client_response rs;
        err e;
        char url[256], want[512];
        fake_url(url, cases[i].path);
        snprintf(want, sizeof want, "GET %s%s", url, cases[i].says);
        assert_int_equal(get(cases[i].path, 0, 0, &rs, &e), cases[i].rc);
        assert_int_equal(e.code, cases[i].rc);
        assert_int_equal(rs.failure, cases[i].failure);
        assert_int_equal(rs.status, cases[i].status);
        assert_string_equal(e.msg, want);
        http_client_response_free(&rs);
    }
}

static void test_retry_after_seconds_and_date(void **state)
{
    (void)state;
    http_client_response rs;
    err e;
    assert_int_equal(get("/429-secs", 0, 0, &rs, &e), F3_ETRANSIENT);
    assert_int_equal(rs.retry_after_ms, 7000);
    assert_string_equal(buf_cstr(&rs.body), "slow down");
    http_client_response_free(&rs);
    assert_int_equal(get("/429-date", 0, 0, &rs, &e), F3_ETRANSIENT);
    /* 10 s ahead at the server; whole seconds and a little elapsed time on our side */
    assert_in_range(rs.retry_after_ms, 5000, 11000);
    http_client_response_free(&rs);
}

static void test_timeout_is_transient(void **state)
{
    (void)state;
    http_client_response rs;
    err e;
    char url[256], want[512];
    fake_url(url, "/slow");
    snprintf(want, sizeof want, "GET %s: timed out after 300 ms", url);
    assert_int_equal(get("/slow", 0, 300, &rs, &e), F3_ETRANSIENT);
    assert_int_equal(rs.failure, HTTP_TRANSIENT);
    assert_int_equal(rs.status, 0);
    assert_string_equal(e.msg, want);
    http_client_response_free(&rs);
}

static void test_timeout_after_connecting_names_the_whole_timeout(void **state)
{
    (void)state;
    char url[256], want[512];
    fake_url(url, "/slow");
    snprintf(want, sizeof want, "GET %s: timed out after 600 ms", url);
    assert_int_equal(get("/ok", 0, 0, NULL, NULL), 0); /* a kept-alive connection to reuse */
    http_client_request rq = {
        .method = "GET", .url = url, .timeout_ms = 600, .connect_timeout_ms = 300};
    err e;
    assert_int_equal(http_client_send(&rq, NULL, &e), F3_ETRANSIENT);
    assert_string_equal(e.msg, want);
}

static void test_head_has_headers_and_no_body(void **state)
{
    (void)state;
    char url[256];
    fake_url(url, "/ok");
    http_client_request rq = {.method = "HEAD", .url = url};
    http_client_response rs;
    err e;
    assert_int_equal(http_client_send(&rq, &rs, &e), 0);
    assert_int_equal(rs.status, 200);
    assert_int_equal(rs.body.len, 0);
    assert_string_equal(http_client_header(&rs, "X-Request-Id"), "abc-123");
    http_client_response_free(&rs);
}

static void test_response_over_the_cap_is_permanent(void **state)
{
    (void)state;
    static const char *paths[] = {"/big", "/bigchunked"}; /* known length, then streamed */
    for (size_t i = 0; i < 2; i++) {
        http_client_response rs;
        err e;
        assert_int_equal(get(paths[i], ONE_MIB, 0, &rs, &e), F3_EPERMANENT);
        assert_int_equal(rs.failure, HTTP_PERMANENT);
        assert_non_null(strstr(e.msg, "response too large (over 1048576 bytes)"));
        assert_true(rs.body.len <= ONE_MIB);
        http_client_response_free(&rs);
    }
    http_client_response rs;
    err e;
    assert_int_equal(get("/big", 0, 0, &rs, &e), 0); /* the 16 MiB default lets it through */
    assert_int_equal(rs.body.len, BIG_SIZE);
    http_client_response_free(&rs);
}

static void test_connection_refused_is_transient(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, len), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/ok", (unsigned)ntohs(addr.sin_port));
    http_client_request rq = {.method = "GET", .url = url, .connect_timeout_ms = 2000};
    http_client_response rs;
    err e;
    assert_int_equal(http_client_send(&rq, &rs, &e), F3_ETRANSIENT);
    assert_int_equal(rs.status, 0);
    assert_int_equal(rs.failure, HTTP_TRANSIENT);
    assert_int_equal(strncmp(e.msg, "GET ", 4), 0);
    http_client_response_free(&rs);
}

static void test_outcome_without_response_struct(void **state)
{
    (void)state;
    err e;
    assert_int_equal(get("/503", 0, 0, NULL, &e), F3_ETRANSIENT);
    assert_int_equal(get("/ok", 0, 0, NULL, NULL), 0);
}

/* ---- bad requests ------------------------------------------------------------------ */

static void test_bad_requests_are_rejected(void **state)
{
    (void)state;
    char ok[256];
    fake_url(ok, "/ok");
    const char *no_colon[] = {"Authorization Bearer x", NULL};
    const char *injected[] = {"X-Thing: a\r\nX-Evil: b", NULL};
    static const struct {
        const char *method;
        const char *url;
        const char *const *headers;
        const char *body;
        int rc;
    } cases[] = {
        {"GET", NULL, NULL, NULL, F3_EINVAL},
        {"GET", "", NULL, NULL, F3_EINVAL},
        {"get", "http://127.0.0.1:1/", NULL, NULL, F3_EINVAL},
        {"GET /x", "http://127.0.0.1:1/", NULL, NULL, F3_EINVAL},
        {"GET", "ftp://127.0.0.1/file", NULL, NULL, F3_EPERMANENT},
        {"GET", "file:///etc/passwd", NULL, NULL, F3_EPERMANENT},
        {"GET", "http://", NULL, NULL, F3_EPERMANENT},
        {"GET", "http://127.0.0.1:1/", NULL, "body", F3_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_client_request rq = {.method = cases[i].method,
                                  .url = cases[i].url,
                                  .headers = cases[i].headers,
                                  .body = cases[i].body,
                                  .body_len = cases[i].body ? strlen(cases[i].body) : 0};
        http_client_response rs;
        err e;
        assert_int_equal(http_client_send(&rq, &rs, &e), cases[i].rc);
        assert_int_equal(rs.failure, HTTP_PERMANENT);
        assert_true(e.msg[0] != '\0');
        http_client_response_free(&rs);
    }
    const char *const *bad_headers[] = {no_colon, injected};
    for (size_t i = 0; i < 2; i++) {
        http_client_request rq = {.method = "GET", .url = ok, .headers = bad_headers[i]};
        err e;
        assert_int_equal(http_client_send(&rq, NULL, &e), F3_EINVAL);
        assert_null(strstr(e.msg, "Bearer"));
        assert_null(strstr(e.msg, "Evil"));
    }
}

static void test_secrets_stay_out_of_messages_and_logs(void **state)
{
    (void)state;
    char *logged = NULL;
    size_t logged_len = 0;
    FILE *mem = open_memstream(&logged, &logged_len);
    assert_non_null(mem);
    log_set_stream(mem);
    log_set_level(LOG_DEBUG);
    char url[256];
    snprintf(url, sizeof url, "http://user:pw-secret@127.0.0.1:%u/404?token=q-secret#frag",
             fake_port);
    const char *headers[] = {"Authorization: Bearer hdr-secret", NULL};
    http_client_request rq = {.method = "GET", .url = url, .headers = headers};
    err e;
    int rc = http_client_send(&rq, NULL, &e);
    log_set_level(LOG_INFO);
    log_set_stream(NULL);
    fclose(mem);

    char want[256];
    snprintf(want, sizeof want, "GET http://127.0.0.1:%u/404: 404 Not Found", fake_port);
    assert_int_equal(rc, F3_EPERMANENT);
    assert_string_equal(e.msg, want);
    assert_non_null(strstr(logged, "\"msg\":\"http client call\""));
    assert_non_null(strstr(logged, "\"method\":\"GET\""));
    snprintf(want, sizeof want, "\"url\":\"http://127.0.0.1:%u/404\"", fake_port);
    assert_non_null(strstr(logged, want));
    assert_non_null(strstr(logged, "\"status\":404"));
    assert_non_null(strstr(logged, "\"durationMs\":"));
    assert_null(strstr(logged, "secret"));
    assert_null(strstr(logged, "no such thing")); /* the body */
    free(logged);
}

/* ---- many threads ------------------------------------------------------------------ */

typedef struct worker {
    pthread_t thread;
    int index;
    int wrong; /* requests whose echo did not show this thread's correlation id */
} worker;

static void *worker_run(void *arg)
{
    worker *w = arg;
    char corr[32];
    snprintf(corr, sizeof corr, "worker-%d", w->index);
    log_set_correlation_id(corr);
    for (int i = 0; i < 5; i++) {
        http_client_request rq = {.method = "GET"};
        json_t *seen = echo(&rq);
        const char *got = json_string_value(json_object_get(seen, "correlationId"));
        if (!got || strcmp(got, corr) != 0)
            w->wrong++;
        json_decref(seen);
    }
    return NULL; /* the thread's cached handle is released as it exits */
}

static void test_threads_send_their_own_correlation_id(void **state)
{
    (void)state;
    worker workers[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (worker){.index = i};
        assert_int_equal(pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(workers[i].thread, NULL);
        assert_int_equal(workers[i].wrong, 0);
    }
}

/* ---- JSON helper ------------------------------------------------------------------- */

static void test_json_round_trip(void **state)
{
    (void)state;
    char url[256];
    fake_url(url, "/echo");
    json_t *body = json_pack("{s:i, s:s, s:[b, n]}", "n", 42, "s", "h\xc3\xa9", "list", 1);
    json_t *out = NULL;
    http_client_response rs;
    err e;
    assert_int_equal(http_client_json("POST", url, NULL, body, 0, &out, &rs, &e), 0);
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(out, "contentType")), "application/json");
    assert_string_equal(json_string_value(json_object_get(out, "accept")), "application/json");
    json_t *sent = json_loads(json_string_value(json_object_get(out, "body")), 0, NULL);
    assert_true(json_equal(sent, body));
    json_decref(sent);
    json_decref(out);
    http_client_response_free(&rs);

    const char *headers[] = {"Accept: application/vnd.api+json", NULL};
    assert_int_equal(http_client_json("GET", url, headers, NULL, 0, &out, NULL, &e), 0);
    assert_string_equal(json_string_value(json_object_get(out, "accept")),
                        "application/vnd.api+json");
    assert_string_equal(json_string_value(json_object_get(out, "body")), "");
    json_decref(out);
    json_decref(body);
}

static void test_json_empty_and_created(void **state)
{
    (void)state;
    char url[256];
    json_t *out = (json_t *)1;
    err e;
    fake_url(url, "/nocontent");
    assert_int_equal(http_client_json("DELETE", url, NULL, NULL, 0, &out, NULL, &e), 0);
    assert_null(out);
    fake_url(url, "/created");
    json_t *empty = json_object();
    assert_int_equal(http_client_json("POST", url, NULL, empty, 0, NULL, NULL, &e), 0);
    json_decref(empty);
    assert_int_equal(http_client_json("GET", url, NULL, NULL, 0, &out, NULL, &e), 0);
    assert_string_equal(json_string_value(json_object_get(out, "id")), "c1");
    json_decref(out);
}

static void test_json_malformed_2xx_is_permanent(void **state)
{
    (void)state;
    char url[256], want[512];
    fake_url(url, "/badjson");
    snprintf(want, sizeof want, "GET %s: 200 OK but the body is not valid JSON", url);
    json_t *out = (json_t *)1;
    http_client_response rs;
    err e;
    assert_int_equal(http_client_json("GET", url, NULL, NULL, 0, &out, &rs, &e), F3_EPERMANENT);
    assert_null(out);
    assert_int_equal(rs.status, 200);
    assert_int_equal(rs.failure, HTTP_PERMANENT);
    assert_int_equal(strncmp(e.msg, want, strlen(want)), 0);
    assert_null(strstr(e.msg, "nope"));
    http_client_response_free(&rs);
}

static void test_json_4xx_leaves_the_error_body(void **state)
{
    (void)state;
    char url[256];
    fake_url(url, "/400");
    json_t *out = (json_t *)1;
    http_client_response rs;
    err e;
    json_t *body = json_pack("{s:s}", "sku", "");
    assert_int_equal(http_client_json("POST", url, NULL, body, 0, &out, &rs, &e), F3_EPERMANENT);
    json_decref(body);
    assert_null(out);
    assert_int_equal(rs.status, 400);
    json_t *problem = json_loads(buf_cstr(&rs.body), 0, NULL);
    assert_non_null(problem);
    assert_string_equal(json_string_value(json_object_get(problem, "message")), "sku missing");
    json_decref(problem);
    http_client_response_free(&rs);
}

/* ---- pure functions ---------------------------------------------------------------- */

static http_failure expected_for_status(long s)
{
    if (s == 0 || s == 408 || s == 425 || s == 429 || (s >= 500 && s <= 599))
        return HTTP_TRANSIENT;
    return s >= 200 && s <= 299 ? HTTP_OK : HTTP_PERMANENT;
}

static void test_classify_statuses(void **state)
{
    (void)state;
    /* Spot checks state the rule; the sweep checks every status obeys it. */
    assert_int_equal(http_client_classify(200, CURLE_OK), HTTP_OK);
    assert_int_equal(http_client_classify(204, CURLE_OK), HTTP_OK);
    assert_int_equal(http_client_classify(0, CURLE_OK), HTTP_TRANSIENT);
    assert_int_equal(http_client_classify(100, CURLE_OK), HTTP_PERMANENT);
    assert_int_equal(http_client_classify(304, CURLE_OK), HTTP_PERMANENT);
    assert_int_equal(http_client_classify(401, CURLE_OK), HTTP_PERMANENT);
    assert_int_equal(http_client_classify(409, CURLE_OK), HTTP_PERMANENT);
    assert_int_equal(http_client_classify(422, CURLE_OK), HTTP_PERMANENT);
    assert_int_equal(http_client_classify(408, CURLE_OK), HTTP_TRANSIENT);
    assert_int_equal(http_client_classify(429, CURLE_OK), HTTP_TRANSIENT);
    assert_int_equal(http_client_classify(502, CURLE_OK), HTTP_TRANSIENT);
    assert_int_equal(http_client_classify(599, CURLE_OK), HTTP_TRANSIENT);
    assert_int_equal(http_client_classify(600, CURLE_OK), HTTP_PERMANENT);
    assert_int_equal(http_client_classify(-1, CURLE_OK), HTTP_PERMANENT);
    for (long s = -2; s <= 1000; s++)
        assert_int_equal(http_client_classify(s, CURLE_OK), expected_for_status(s));
}

static void test_classify_curl_codes(void **state)
{
    (void)state;
    static const int transient[] = {CURLE_COULDNT_CONNECT,
                                    CURLE_COULDNT_RESOLVE_HOST,
                                    CURLE_COULDNT_RESOLVE_PROXY,
                                    CURLE_OPERATION_TIMEDOUT,
                                    CURLE_SEND_ERROR,
                                    CURLE_RECV_ERROR,
                                    CURLE_GOT_NOTHING,
                                    CURLE_PARTIAL_FILE,
                                    CURLE_SSL_CONNECT_ERROR,
                                    CURLE_HTTP2,
                                    CURLE_HTTP2_STREAM,
                                    CURLE_OUT_OF_MEMORY,
                                    CURLE_AGAIN};
    static const int permanent[] = {
        CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT,        CURLE_WRITE_ERROR,
        CURLE_FILESIZE_EXCEEDED,    CURLE_TOO_MANY_REDIRECTS,   CURLE_PEER_FAILED_VERIFICATION,
        CURLE_SSL_CACERT_BADFILE,   CURLE_BAD_CONTENT_ENCODING, CURLE_WEIRD_SERVER_REPLY};
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++) {
        assert_int_equal(http_client_classify(0, transient[i]), HTTP_TRANSIENT);
        assert_int_equal(http_client_classify(200, transient[i]), HTTP_TRANSIENT);
    }
    for (size_t i = 0; i < sizeof permanent / sizeof permanent[0]; i++) {
        assert_int_equal(http_client_classify(0, permanent[i]), HTTP_PERMANENT);
        assert_int_equal(http_client_classify(503, permanent[i]), HTTP_PERMANENT);
    }
    assert_string_equal(http_client_failure_name(HTTP_OK), "ok");
    assert_string_equal(http_client_failure_name(HTTP_TRANSIENT), "transient");
    assert_string_equal(http_client_failure_name(HTTP_PERMANENT), "permanent");
}

static void test_parse_retry_after(void **state)
{
    (void)state;
    const long date_s = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */
    static const struct {
        const char *value;
        long now_offset_s; /* now = date_s + this */
        long want_ms;
    } cases[] = {
        {"7", 0, 7000},
        {" 7 ", 0, 7000},
        {"0", 0, 0},
        {"3599", 0, 3599000},
        {"3600", 0, 3600000},
        {"86400", 0, 3600000},
        {"99999999999999999999999", 0, 3600000},
        {"-5", 0, -1},
        {"+5", 0, -1},
        {"7s", 0, -1},
        {"1.5", 0, -1},
        {"", 0, -1},
        {"   ", 0, -1},
        {"soon", 0, -1},
        {"Wed, 21 Oct 2015 07:28:00 GMT", -10, 10000},
        {"Wednesday, 21-Oct-15 07:28:00 GMT", -10, 10000},
        {"Wed Oct 21 07:28:00 2015", -10, 10000},
        {"Wed, 21 Oct 2015 07:28:00 GMT", 30, 0},
        {"Wed, 21 Oct 2015 07:28:00 GMT", -86400, 3600000},
        {"Wed, 99 Oct 2015 07:28:00 GMT", 0, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(
            http_client_parse_retry_after(cases[i].value, date_s + cases[i].now_offset_s),
            cases[i].want_ms);
    assert_int_equal(http_client_parse_retry_after(NULL, date_s), -1);
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(http_client_backoff_ms(1, 1000, 60000, -1), 1000);
    assert_int_equal(http_client_backoff_ms(2, 1000, 60000, -1), 2000);
    assert_int_equal(http_client_backoff_ms(3, 1000, 60000, -1), 4000);
    assert_int_equal(http_client_backoff_ms(6, 1000, 60000, -1), 32000);
    assert_int_equal(http_client_backoff_ms(7, 1000, 60000, -1), 60000);
    assert_int_equal(http_client_backoff_ms(0, 1000, 60000, -1), 1000);
    assert_int_equal(http_client_backoff_ms(-3, 1000, 60000, -1), 1000);
    assert_int_equal(http_client_backoff_ms(INT_MAX, 1000, 60000, -1), 60000);
    assert_true(http_client_backoff_ms(INT_MAX, 1000, 0, -1) >= LONG_MAX / 2);
    assert_int_equal(http_client_backoff_ms(INT_MAX, 0, 0, -1), 0);
    assert_int_equal(http_client_backoff_ms(3, -5, 60000, -1), 0);
    /* Retry-After wins when larger, even above max_ms, but never above an hour. */
    assert_int_equal(http_client_backoff_ms(1, 1000, 60000, 7000), 7000);
    assert_int_equal(http_client_backoff_ms(3, 1000, 60000, 500), 4000);
    assert_int_equal(http_client_backoff_ms(1, 1000, 60000, 120000), 120000);
    assert_int_equal(http_client_backoff_ms(1, 1000, 60000, 36000000), 3600000);
    assert_int_equal(http_client_backoff_ex(2, 1000, 60000, -1, 0), 2000);

    long lowest = LONG_MAX, highest = 0;
    for (int i = 0; i < 200; i++) {
        long d = http_client_backoff_ex(1, 1000, 60000, -1, HTTP_BACKOFF_JITTER);
        assert_in_range(d, 800, 1000);
        lowest = d < lowest ? d : lowest;
        highest = d > highest ? d : highest;
    }
    assert_true(lowest < highest);
    assert_int_equal(http_client_backoff_ex(1, 1000, 60000, 5000, HTTP_BACKOFF_JITTER), 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_with_headers),
        cmocka_unit_test(test_echo_sees_method_body_type_agent_and_correlation),
        cmocka_unit_test(test_caller_correlation_id_wins_and_none_without_one),
        cmocka_unit_test(test_methods_without_body),
        cmocka_unit_test(test_created_and_no_content),
        cmocka_unit_test(test_keep_alive_reuses_the_connection),
        cmocka_unit_test(test_statuses_are_classified_and_described),
        cmocka_unit_test(test_retry_after_seconds_and_date),
        cmocka_unit_test(test_timeout_is_transient),
        cmocka_unit_test(test_timeout_after_connecting_names_the_whole_timeout),
        cmocka_unit_test(test_head_has_headers_and_no_body),
        cmocka_unit_test(test_response_over_the_cap_is_permanent),
        cmocka_unit_test(test_connection_refused_is_transient),
        cmocka_unit_test(test_outcome_without_response_struct),
        cmocka_unit_test(test_bad_requests_are_rejected),
        cmocka_unit_test(test_secrets_stay_out_of_messages_and_logs),
        cmocka_unit_test(test_threads_send_their_own_correlation_id),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_empty_and_created),
        cmocka_unit_test(test_json_malformed_2xx_is_permanent),
        cmocka_unit_test(test_json_4xx_leaves_the_error_body),
        cmocka_unit_test(test_classify_statuses),
        cmocka_unit_test(test_classify_curl_codes),
        cmocka_unit_test(test_parse_retry_after),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, fake_start, fake_stop);
}
