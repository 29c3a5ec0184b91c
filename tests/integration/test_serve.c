/*
 * test_serve.c - the real f3connect binary: start-up on the embedded default,
 * health, the error body, graceful shutdown, and the CLI's answers to misuse.
 */
#include "support/f3test.h"
#include "support/f3test_http.h"
#include "support/f3test_proc.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct server {
    char *dir;
    int port;
    char port_env[32];
    f3test_proc proc;
} server;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts `f3connect serve` in a fresh directory with no DATABASE_URL (embedded default). */
static void server_start(server *s)
{
    s->dir = f3test_tmpdir();
    assert_non_null(s->dir);
    s->port = f3test_free_port();
    snprintf(s->port_env, sizeof s->port_env, "PORT=%d", s->port);
    const char *argv[] = {"serve", NULL};
    const char *env[] = {s->port_env,
                         "HOST=127.0.0.1",
                         "LOG_LEVEL=info",
                         "DATABASE_URL=",
                         "DATA_DIR=./data",
                         "SHUTDOWN_TIMEOUT=5s",
                         NULL};
    assert_int_equal(f3test_proc_start(&s->proc, s->dir, argv, env), 0);
    assert_int_equal(f3test_wait_http_ok(s->port, "/health", &s->proc, 15000), 0);
}

static void server_finish(server *s)
{
    f3test_proc_kill(&s->proc);
    f3test_rmtree(s->dir);
    free(s->dir);
}

static json_t *body_json(const f3test_http_response *r)
{
    json_t *j = json_loads(r->body, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_embedded_start_creates_sqlite_and_is_ready(void **state)
{
    (void)state;
    server s = {0};
    server_start(&s);
    char path[600];
    snprintf(path, sizeof path, "%s/data/f3connect.db", s.dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 077, 0); /* customer data: owner only */

    f3test_http_response r = {0};
    assert_int_equal(
        f3test_http_request(s.port, "GET /health/ready HTTP/1.1\r\nHost: t\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    json_t *dbc = json_object_get(json_object_get(j, "checks"), "database");
    assert_string_equal(json_string_value(json_object_get(dbc, "status")), "up");
    assert_string_equal(json_string_value(json_object_get(dbc, "backend")), "sqlite");
    json_decref(j);
    f3test_http_response_free(&r);

    f3test_proc_signal(&s.proc, SIGTERM);
    assert_true(f3test_proc_wait(&s.proc, 10000));
    assert_int_equal(s.proc.status, 0);
    server_finish(&s);
}

/* The served API is behind the gateway guard: no session, no data. */
static void test_api_routes_need_a_session(void **state)
{
    (void)state;
    server s = {0};
    server_start(&s);
    static const char *const paths[] = {"/admin/queues", "/api/v1/orders",
                                        "/api/v1/product-mappings", "/api/v1/auth/me"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char req[256];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", paths[i]);
        f3test_http_response r = {0};
        assert_int_equal(f3test_http_request(s.port, req, &r), 0);
        if (r.status != 401)
            fail_msg("%s answered %d without a session", paths[i], r.status);
        f3test_http_response_free(&r);
    }
    server_finish(&s);
}

static void test_unknown_route_gets_the_error_body(void **state)
{
    (void)state;
    server s = {0};
    server_start(&s);
    f3test_http_response r = {0};
    assert_int_equal(f3test_http_request(s.port,
                                         "GET /api/v1/nothing HTTP/1.1\r\nHost: t\r\n"
                                         "X-Correlation-Id: corr-123\r\n\r\n",
                                         &r),
                     0);
    assert_int_equal(r.status, 404);
    json_t *j = body_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "statusCode")), 404);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "Not Found");
    assert_non_null(json_string_value(json_object_get(j, "message")));
    assert_string_equal(json_string_value(json_object_get(j, "correlationId")), "corr-123");
    assert_string_equal(f3test_http_header_get(&r, "X-Correlation-Id"), "corr-123");
    json_decref(j);
    f3test_http_response_free(&r);

    /* The access log line of that request carries the correlation id. */
    f3test_proc_signal(&s.proc, SIGTERM);
    assert_true(f3test_proc_wait(&s.proc, 10000));
    char *log = f3test_slurp(s.proc.err_path);
    assert_non_null(strstr(log, "\"correlationId\":\"corr-123\""));
    assert_non_null(strstr(log, "\"msg\":\"request completed\""));
    free(log);
    server_finish(&s);
}

/* SIGTERM: new connections are refused at once, a client that has not finished
 * sending its request headers does not hold up shutdown (its connection is closed),
 * and the process exits 0. A request whose handler is running when the signal
 * comes is let finish: that is tested against the server itself in unit.http_server. */
static void test_sigterm_exits_cleanly_past_a_slow_client(void **state)
{
    (void)state;
    server s = {0};
    server_start(&s);
    int fd = f3test_http_open_idle(s.port, "GET /health HTTP/1.1\r\nHost: t\r\n");
    assert_true(fd >= 0);
    sleep_ms(200);
    f3test_proc_signal(&s.proc, SIGTERM);
    assert_true(f3test_proc_wait(&s.proc, 10000));
    assert_int_equal(s.proc.status, 0);
    assert_int_equal(f3test_http_connect(s.port), -1);
    assert_true(f3test_http_wait_closed(fd, 5000));
    close(fd);
    char *log = f3test_slurp(s.proc.err_path);
    assert_non_null(strstr(log, "\"msg\":\"f3connect stopped\""));
    free(log);
    server_finish(&s);
}

static void test_restart_reuses_the_database(void **state)
{
    (void)state;
    server s = {0};
    server_start(&s);
    f3test_proc_signal(&s.proc, SIGINT);
    assert_true(f3test_proc_wait(&s.proc, 10000));
    assert_int_equal(s.proc.status, 0);

    const char *argv[] = {"migrate", "--status", NULL};
    const char *env[] = {"DATABASE_URL=", "DATA_DIR=./data", NULL};
    f3test_proc p = {0};
    assert_int_equal(f3test_run(s.dir, argv, env, 10000, &p), 0);
    char *out = f3test_slurp(p.out_path);
    assert_non_null(strstr(out, "0001"));
    assert_null(strstr(out, "pending"));
    free(out);

    const char *again[] = {"migrate", NULL};
    assert_int_equal(f3test_run(s.dir, again, env, 10000, &p), 0);
    out = f3test_slurp(p.out_path);
    assert_non_null(strstr(out, "0 migrations applied"));
    free(out);
    server_finish(&s);
}

/* Runs the binary in a scratch directory; checks exit status and that stderr
 * (or stdout) holds `expect`. */
static void expect_cli(const char *const *argv, const char *const *env, int status,
                       const char *expect_err, const char *expect_out)
{
    char *dir = f3test_tmpdir();
    f3test_proc p = {0};
    assert_int_equal(f3test_run(dir, argv, env, 10000, &p), status);
    char *err_text = f3test_slurp(p.err_path);
    char *out_text = f3test_slurp(p.out_path);
    if (expect_err && !strstr(err_text, expect_err))
        fail_msg("stderr lacks '%s': %s", expect_err, err_text);
    if (expect_out && !strstr(out_text, expect_out))
        fail_msg("stdout lacks '%s': %s", expect_out, out_text);
    free(err_text);
    free(out_text);
    f3test_rmtree(dir);
    free(dir);
}

static void test_cli_misuse_and_bad_config(void **state)
{
    (void)state;
    const char *none[] = {NULL};
    expect_cli((const char *[]){"frobnicate", NULL}, none, 2, "unknown command 'frobnicate'", NULL);
    expect_cli((const char *[]){NULL}, none, 2, "usage", NULL);
    expect_cli((const char *[]){"serve", "--no-such-flag", "1", NULL}, none, 2, "--no-such-flag",
               NULL);
    expect_cli((const char *[]){"serve", "--port", NULL}, none, 2, "needs a value", NULL);
    expect_cli((const char *[]){"serve", NULL}, (const char *[]){"PORT=abc", NULL}, 1, "PORT",
               NULL);
    expect_cli((const char *[]){"serve", NULL}, (const char *[]){"DATABASE_URL=mysql://x/y", NULL},
               1, "DATABASE_URL", NULL);
    expect_cli((const char *[]){"serve", "--env-file", "/nonexistent/.env", NULL}, none, 1,
               "/nonexistent/.env", NULL);
    expect_cli((const char *[]){"version", "extra", NULL}, none, 2, "no arguments", NULL);
    expect_cli((const char *[]){"help", "nope", NULL}, none, 2, "unknown command", NULL);
    expect_cli((const char *[]){"config", NULL}, none, 2, "check", NULL);
    expect_cli((const char *[]){"config", "frob", NULL}, none, 2, "unknown subcommand", NULL);
}

static void test_cli_help_version_and_config_check(void **state)
{
    (void)state;
    const char *none[] = {NULL};
    expect_cli((const char *[]){"version", NULL}, none, 0, NULL, "f3connect " F3_VERSION);
    expect_cli((const char *[]){"--help", NULL}, none, 0, NULL, "commands:");
    expect_cli((const char *[]){"help", "serve", NULL}, none, 0, NULL, "usage: f3connect serve");
    expect_cli((const char *[]){"serve", "--help", NULL}, none, 0, NULL, "usage: f3connect serve");
    expect_cli((const char *[]){"migrate", "-h", NULL}, none, 0, NULL, "usage: f3connect migrate");
    /* Secrets are masked; the effective source is shown. */
    expect_cli((const char *[]){"config", "check", "--port", "4000", NULL},
               (const char *[]){"INTERNAL_API_KEY=super-secret-value", NULL}, 0, NULL, "PORT=4000");
    char *dir = f3test_tmpdir();
    f3test_proc p = {0};
    const char *argv[] = {"config", "check", NULL};
    const char *env[] = {"INTERNAL_API_KEY=super-secret-value", NULL};
    assert_int_equal(f3test_run(dir, argv, env, 10000, &p), 0);
    char *out = f3test_slurp(p.out_path);
    assert_null(strstr(out, "super-secret-value"));
    assert_non_null(strstr(out, "INTERNAL_API_KEY"));
    free(out);
    f3test_rmtree(dir);
    free(dir);
}

/* The README's configuration reference is the generated one. */
static void test_readme_config_reference_is_current(void **state)
{
    (void)state;
    char *dir = f3test_tmpdir();
    f3test_proc p = {0};
    const char *argv[] = {"config", "reference", NULL};
    assert_int_equal(f3test_run(dir, argv, NULL, 10000, &p), 0);
    char *generated = f3test_slurp(p.out_path);
    char *readme = f3test_slurp(F3_SOURCE_DIR "/README.md");
    if (!strstr(readme, generated))
        fail_msg("README.md configuration reference is stale: run scripts/update-readme.sh");
    free(generated);
    free(readme);
    f3test_rmtree(dir);
    free(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedded_start_creates_sqlite_and_is_ready),
        cmocka_unit_test(test_unknown_route_gets_the_error_body),
        cmocka_unit_test(test_api_routes_need_a_session),
        cmocka_unit_test(test_sigterm_exits_cleanly_past_a_slow_client),
        cmocka_unit_test(test_restart_reuses_the_database),
        cmocka_unit_test(test_cli_misuse_and_bad_config),
        cmocka_unit_test(test_cli_help_version_and_config_check),
        cmocka_unit_test(test_readme_config_reference_is_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
