/*
 * test_bus_admin.c - the queue operations: the /admin/queues HTTP API (src/bus/admin_http.c)
 * served in-process over a SQLite store, including access control, validation and the
 * error body, and the `f3connect queues` CLI run as the real binary on the same file.
 */
#include "support/f3test.h"
#include "support/f3test_http.h"
#include "support/f3test_proc.h"

#include "bus/admin_http.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "http/server.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define Q  "order.created@print-service"
#define Q2 "order.cancelled@shipping-service"

typedef struct fx {
    char *dir;
    char url[600];
    db *d;
    bus_store *s;
    bus_admin admin;
    http_router *router;
    http_server *server;
    int port;
} fx;

static void add_job(fx *f, const char *queue, const char *id, const char *data,
                    const bus_job_opts *base)
{
    bus_job_opts o = base ? *base : (bus_job_opts){0};
    o.job_id = id;
    err e = {0};
    if (bus_store_add(f->s, NULL, queue, "order.created", data, &o, clock_now_ms(), NULL, &e))
        fail_msg("add %s: %s", id, e.msg);
}

static void claim_one(fx *f, const char *queue, const char *want)
{
    bus_job **jobs = NULL;
    size_t n = 0;
    err e = {0};
    if (bus_store_claim(f->s, queue, 1, "worker-1", 600000, clock_now_ms(), &jobs, &n, &e) ||
        n != 1)
        fail_msg("claim %s: %s", want, e.msg);
    assert_string_equal(jobs[0]->id, want);
    bus_jobs_free(jobs, n);
}

/* Q: "waiting-1" waiting, "failed-1" failed after one attempt, "done-1" completed,
 * "active-1" active, "later-1" delayed, "prio-1" prioritized; a repeatable.
 * Q2: one failed job. */
static void seed(fx *f)
{
    err e = {0};
    int64_t now = clock_now_ms();
    add_job(f, Q, "failed-1", "{\"orderId\":\"o-1\"}", &(bus_job_opts){.attempts = 1});
    claim_one(f, Q, "failed-1");
    assert_int_equal(bus_store_fail(f->s, NULL, Q, "failed-1", "worker-1", "HTTP 503 from printer",
                                    BUS_FAIL_RETRY, now, NULL, &e),
                     0);
    add_job(f, Q, "done-1", "{}", NULL);
    claim_one(f, Q, "done-1");
    assert_int_equal(bus_store_complete(f->s, NULL, Q, "done-1", "worker-1", "{\"ok\":1}", now, &e),
                     0);
    add_job(f, Q, "active-1", "{}", NULL);
    claim_one(f, Q, "active-1");
    add_job(f, Q, "waiting-1", "{\"n\":1}", NULL);
    add_job(f, Q, "later-1", "{}", &(bus_job_opts){.delay_ms = 3600000});
    add_job(f, Q, "prio-1", "{}", &(bus_job_opts){.priority = 2});
    bus_repeatable r = {.queue = Q,
                        .repeat_id = "reconcile",
                        .name = "orders.reconcile",
                        .data = "{}",
                        .cron = "*/5 * * * *"};
    assert_int_equal(bus_store_repeatable_upsert(f->s, &r, now, &e), 0);
    add_job(f, Q2, "c-1", "{}", &(bus_job_opts){.attempts = 1});
    bus_job **jobs = NULL;
    size_t n = 0;
    assert_int_equal(bus_store_claim(f->s, Q2, 1, "w", 60000, clock_now_ms(), &jobs, &n, &e), 0);
    assert_int_equal(n, 1);
    bus_jobs_free(jobs, n);
    assert_int_equal(
        bus_store_fail(f->s, NULL, Q2, "c-1", "w", "boom", BUS_FAIL_PERMANENT, now, NULL, &e), 0);
}

static void start(fx *f)
{
    f->dir = f3test_tmpdir();
    assert_non_null(f->dir);
    snprintf(f->url, sizeof f->url, "sqlite:%s/f3connect.db", f->dir);
    err e = {0};
    if (db_open(f->url, NULL, &f->d, &e) || db_migrate(f->d, NULL, &e) ||
        bus_store_open_sql(f->d, &f->s, &e))
        fail_msg("%s: %s", f->url, e.msg);
    f->admin = (bus_admin){f->s};
    f->router = http_router_new();
    assert_non_null(f->router);
    assert_int_equal(bus_admin_add_routes(f->router, &f->admin, &e), 0);
    http_server_opts o = {.host = "127.0.0.1", .threads = 2};
    f->server = http_server_start(f->router, &o, &e);
    if (!f->server)
        fail_msg("server: %s", e.msg);
    f->port = http_server_port(f->server);
    seed(f);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    start(f);
    *state = f;
    return 0;
}

static void stop(fx *f)
{
    http_server_stop(f->server);
    http_router_free(f->router);
    bus_store_close(f->s);
    db_close(f->d);
    f3test_rmtree(f->dir);
    free(f->dir);
}

static int teardown(void **state)
{
    stop(*state);
    free(*state);
    return 0;
}

/* ---- HTTP helpers --------------------------------------------------------------------- */

/* Sends one request; body (JSON) may be NULL. */
static void request(fx *f, const char *method, const char *path, const char *body,
                    f3test_http_response *r)
{
    buf b;
    buf_init(&b, 0);
    buf_printf(&b, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n", method, path);
    if (body)
        buf_printf(&b, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   strlen(body), body);
    else
        buf_puts(&b, "Content-Length: 0\r\n\r\n");
    if (f3test_http_request(f->port, buf_cstr(&b), r) != 0)
        fail_msg("%s %s: no response", method, path);
    buf_free(&b);
}

/* Sends an authorised request, checks the status and returns the parsed body. */
static json_t *call(fx *f, const char *method, const char *path, const char *body, int status)
{
    f3test_http_response r = {0};
    request(f, method, path, body, &r);
    if (r.status != status)
        fail_msg("%s %s: status %d, want %d: %s", method, path, r.status, status, r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    if (!j)
        fail_msg("%s %s: body is not JSON: %s", method, path, r.body);
    f3test_http_response_free(&r);
    return j;
}

/* An error answer: the one error body, with a message containing `needle`. */
static void expect_error(fx *f, const char *method, const char *path, const char *body, int status,
                         const char *needle)
{
    f3test_http_response r = {0};
    request(f, method, path, body, &r);
    if (r.status != status)
        fail_msg("%s %s: status %d, want %d: %s", method, path, r.status, status, r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "statusCode")), status);
    assert_non_null(json_string_value(json_object_get(j, "error")));
    assert_non_null(json_string_value(json_object_get(j, "correlationId")));
    const char *msg = json_string_value(json_object_get(j, "message"));
    assert_non_null(msg);
    if (needle && !strstr(msg, needle))
        fail_msg("%s %s: message '%s' lacks '%s'", method, path, msg, needle);
    json_decref(j);
    f3test_http_response_free(&r);
}

static json_int_t count_of(json_t *counts, const char *state)
{
    return json_integer_value(json_object_get(counts, state));
}

/* ---- access --------------------------------------------------------------------------- */

/* Every route declares the queues.admin permission, which the gateway guard enforces
 * (the guard itself is tested in integration.auth). */
static void test_every_route_declares_queues_admin(void **state)
{
    fx *f = *state;
    static const char *const probes[][2] = {
        {"GET", "/admin/queues"},
        {"GET", "/admin/queues/" Q},
        {"GET", "/admin/queues/" Q "/jobs"},
        {"GET", "/admin/queues/" Q "/jobs/x"},
        {"POST", "/admin/queues/" Q "/jobs/x/retry"},
        {"DELETE", "/admin/queues/" Q "/jobs/x"},
        {"POST", "/admin/queues/" Q "/retry"},
        {"POST", "/admin/queues/" Q "/clean"},
        {"POST", "/admin/queues/" Q "/pause"},
        {"POST", "/admin/queues/" Q "/resume"},
    };
    assert_int_equal(http_router_count(f->router), sizeof probes / sizeof probes[0]);
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        http_match m;
        assert_int_equal(http_router_match(f->router, probes[i][0], probes[i][1], &m), 200);
        assert_string_equal(m.route->access, "queues.admin");
        http_match_free(&m);
    }
}

/* ---- reading -------------------------------------------------------------------------- */

static void test_list_and_show_queues(void **state)
{
    fx *f = *state;
    json_t *j = call(f, "GET", "/admin/queues", NULL, 200);
    json_t *queues = json_object_get(j, "queues");
    assert_int_equal(json_array_size(queues), 2);
    json_t *q2 = json_array_get(queues, 0); /* sorted by name */
    json_t *q = json_array_get(queues, 1);
    assert_string_equal(json_string_value(json_object_get(q2, "name")), Q2);
    assert_string_equal(json_string_value(json_object_get(q, "name")), Q);
    json_t *c = json_object_get(q, "counts");
    assert_int_equal(count_of(c, "waiting"), 1);
    assert_int_equal(count_of(c, "prioritized"), 1);
    assert_int_equal(count_of(c, "delayed"), 1);
    assert_int_equal(count_of(c, "active"), 1);
    assert_int_equal(count_of(c, "completed"), 1);
    assert_int_equal(count_of(c, "failed"), 1);
    assert_false(json_is_true(json_object_get(q, "paused")));
    json_decref(j);

    j = call(f, "GET", "/admin/queues/" Q, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "name")), Q);
    assert_int_equal(count_of(json_object_get(j, "counts"), "failed"), 1);
    json_t *set = json_object_get(j, "settings");
    assert_int_equal(json_integer_value(json_object_get(set, "keepCompleted")), 1000);
    assert_int_equal(json_integer_value(json_object_get(set, "keepFailed")), 5000);
    assert_int_equal(json_integer_value(json_object_get(set, "maxStalled")), 1);
    json_t *reps = json_object_get(j, "repeatables");
    assert_int_equal(json_array_size(reps), 1);
    json_t *r = json_array_get(reps, 0);
    assert_string_equal(json_string_value(json_object_get(r, "repeatId")), "reconcile");
    assert_string_equal(json_string_value(json_object_get(r, "cron")), "*/5 * * * *");
    assert_true(json_is_null(json_object_get(r, "everyMs")));
    int64_t next = 0;
    assert_int_equal(clock_parse_iso(json_string_value(json_object_get(r, "nextRunAt")), &next), 0);
    assert_int_equal(next, json_integer_value(json_object_get(r, "nextRunAtMs")));
    json_decref(j);

    expect_error(f, "GET", "/admin/queues/nope@nobody", NULL, 404, "nope@nobody");
}

static void test_list_jobs(void **state)
{
    fx *f = *state;
    json_t *j = call(f, "GET", "/admin/queues/" Q "/jobs?state=failed", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "failed");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "limit")), 50);
    json_t *job = json_array_get(json_object_get(j, "jobs"), 0);
    assert_string_equal(json_string_value(json_object_get(job, "id")), "failed-1");
    assert_string_equal(json_string_value(json_object_get(job, "failedReason")),
                        "HTTP 503 from printer");
    assert_int_equal(json_integer_value(json_object_get(job, "attemptsMade")), 1);
    assert_non_null(json_string_value(json_object_get(job, "finishedAt")));
    json_decref(j);

    j = call(f, "GET", "/admin/queues/" Q "/jobs", NULL, 200); /* default: waiting */
    assert_string_equal(json_string_value(json_object_get(j, "state")), "waiting");
    assert_int_equal(json_array_size(json_object_get(j, "jobs")), 1);
    json_decref(j);
    j = call(f, "GET", "/admin/queues/" Q "/jobs?state=delayed&offset=0&limit=500", NULL, 200);
    job = json_array_get(json_object_get(j, "jobs"), 0);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "delayed");
    json_decref(j);
    j = call(f, "GET", "/admin/queues/" Q "/jobs?state=delayed&offset=1", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "jobs")), 0);
    json_decref(j);

    expect_error(f, "GET", "/admin/queues/" Q "/jobs?state=dead", NULL, 400, "'state'");
    expect_error(f, "GET", "/admin/queues/" Q "/jobs?offset=-1", NULL, 400, "'offset'");
    expect_error(f, "GET", "/admin/queues/" Q "/jobs?offset=x", NULL, 400, "'offset'");
    expect_error(f, "GET", "/admin/queues/" Q "/jobs?limit=501", NULL, 400, "'limit'");
    expect_error(f, "GET", "/admin/queues/" Q "/jobs?limit=0", NULL, 400, "'limit'");
    expect_error(f, "GET", "/admin/queues/" Q "/jobs?limit=", NULL, 400, "'limit'");
    expect_error(f, "GET", "/admin/queues/nope/jobs", NULL, 404, "nope");
}

static void test_job_detail(void **state)
{
    fx *f = *state;
    json_t *j = call(f, "GET", "/admin/queues/" Q "/jobs/failed-1", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "failed");
    json_t *data = json_object_get(j, "data");
    assert_true(json_is_object(data));
    assert_string_equal(json_string_value(json_object_get(data, "orderId")), "o-1");
    json_t *errors = json_object_get(j, "errors");
    assert_int_equal(json_array_size(errors), 1);
    json_t *e0 = json_array_get(errors, 0);
    assert_int_equal(json_integer_value(json_object_get(e0, "attempt")), 1);
    assert_string_equal(json_string_value(json_object_get(e0, "error")), "HTTP 503 from printer");
    assert_int_equal(json_integer_value(json_object_get(j, "maxAttempts")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "attemptsStarted")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "backoff"), "type")),
                        "exponential");
    int64_t created = 0;
    assert_int_equal(clock_parse_iso(json_string_value(json_object_get(j, "createdAt")), &created),
                     0);
    assert_int_equal(created, json_integer_value(json_object_get(j, "createdAtMs")));
    assert_true(json_is_null(json_object_get(j, "returnValue")));
    json_decref(j);

    j = call(f, "GET", "/admin/queues/" Q "/jobs/done-1", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "returnValue"), "ok")),
                     1);
    json_decref(j);
    j = call(f, "GET", "/admin/queues/" Q "/jobs/active-1", NULL, 200);
    assert_non_null(json_string_value(json_object_get(j, "lockUntil")));
    json_decref(j);
    expect_error(f, "GET", "/admin/queues/" Q "/jobs/missing", NULL, 404, "missing");
}

/* ---- actions -------------------------------------------------------------------------- */

static void test_retry(void **state)
{
    fx *f = *state;
    json_t *j = call(f, "POST", "/admin/queues/" Q "/jobs/failed-1/retry", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "retried")), 1);
    json_decref(j);
    j = call(f, "GET", "/admin/queues/" Q "/jobs/failed-1", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "waiting");
    assert_int_equal(json_integer_value(json_object_get(j, "attemptsMade")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "errors")), 1); /* history kept */
    json_decref(j);
    expect_error(f, "POST", "/admin/queues/" Q "/jobs/waiting-1/retry", NULL, 409, "not failed");
    expect_error(f, "POST", "/admin/queues/" Q "/jobs/missing/retry", NULL, 404, NULL);

    j = call(f, "POST", "/admin/queues/" Q2 "/retry", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "retried")), 1);
    json_decref(j);
    j = call(f, "POST", "/admin/queues/" Q2 "/retry", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "retried")), 0);
    json_decref(j);
    expect_error(f, "POST", "/admin/queues/nope/retry", NULL, 404, NULL);
}

static void test_remove(void **state)
{
    fx *f = *state;
    expect_error(f, "DELETE", "/admin/queues/" Q "/jobs/active-1", NULL, 409, "active");
    expect_error(f, "DELETE", "/admin/queues/" Q "/jobs/missing", NULL, 404, "missing");
    json_t *j = call(f, "DELETE", "/admin/queues/" Q "/jobs/failed-1", NULL, 200);
    assert_true(json_is_true(json_object_get(j, "removed")));
    json_decref(j);
    expect_error(f, "GET", "/admin/queues/" Q "/jobs/failed-1", NULL, 404, NULL);
    /* Ids are path segments: percent-encoding reaches the store decoded. */
    add_job(f, Q, "a b:c", "{}", NULL);
    j = call(f, "DELETE", "/admin/queues/" Q "/jobs/a%20b%3Ac", NULL, 200);
    json_decref(j);
}

static void test_clean(void **state)
{
    fx *f = *state;
    const char *path = "/admin/queues/" Q "/clean";
    expect_error(f, "POST", path, "{\"olderThanMs\":0}", 400, "'state'");
    expect_error(f, "POST", path, "{\"state\":\"nope\",\"olderThanMs\":0}", 400, "'state'");
    expect_error(f, "POST", path, "{\"state\":\"active\",\"olderThanMs\":0}", 400, "'state'");
    expect_error(f, "POST", path, "{\"state\":\"completed\"}", 400, "'olderThanMs'");
    expect_error(f, "POST", path, "{\"state\":\"completed\",\"olderThanMs\":\"1h\"}", 400,
                 "'olderThanMs'");
    expect_error(f, "POST", path, "{\"state\":\"completed\",\"olderThanMs\":-5}", 400,
                 "'olderThanMs'");
    expect_error(f, "POST", path, "{\"state\":\"completed\",\"olderThanMs\":0,\"limit\":-1}", 400,
                 "'limit'");
    expect_error(f, "POST", path, "[1]", 400, "object");
    expect_error(f, "POST", path, "{\"state\":", 400, NULL);
    expect_error(f, "POST", path, NULL, 415, "Content-Type"); /* no body */
    expect_error(f, "POST", "/admin/queues/nope/clean",
                 "{\"state\":\"completed\",\"olderThanMs\":0}", 404, NULL);
    /* Finished less than an hour ago: kept. */
    json_t *j = call(f, "POST", path, "{\"state\":\"completed\",\"olderThanMs\":3600000}", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "cleaned")), 0);
    json_decref(j);
    j = call(f, "POST", path, "{\"state\":\"completed\",\"olderThanMs\":0,\"limit\":1000}", 200);
    /* "older than 0 ms" is strict: a job finished this very millisecond may stay. */
    json_int_t cleaned = json_integer_value(json_object_get(j, "cleaned"));
    assert_true(cleaned <= 1);
    json_decref(j);
    j = call(f, "POST", path, "{\"state\":\"failed\",\"olderThanMs\":0}", 200);
    json_decref(j);
    j = call(f, "GET", "/admin/queues/" Q, NULL, 200);
    json_t *c = json_object_get(j, "counts");
    assert_int_equal(count_of(c, "waiting"), 1); /* other states untouched */
    assert_int_equal(count_of(c, "active"), 1);
    json_decref(j);
}

static void test_pause_resume(void **state)
{
    fx *f = *state;
    json_t *j = call(f, "POST", "/admin/queues/" Q "/pause", NULL, 200);
    assert_true(json_is_true(json_object_get(j, "paused")));
    json_decref(j);
    bus_job **jobs = NULL;
    size_t n = 0;
    err e = {0};
    assert_int_equal(bus_store_claim(f->s, Q, 5, "w", 1000, clock_now_ms(), &jobs, &n, &e), 0);
    assert_int_equal(n, 0);
    j = call(f, "GET", "/admin/queues/" Q, NULL, 200);
    assert_true(json_is_true(json_object_get(j, "paused")));
    json_decref(j);
    j = call(f, "POST", "/admin/queues/" Q "/resume", NULL, 200);
    assert_false(json_is_true(json_object_get(j, "paused")));
    json_decref(j);
    assert_int_equal(bus_store_claim(f->s, Q, 5, "w", 1000, clock_now_ms(), &jobs, &n, &e), 0);
    assert_true(n >= 1);
    bus_jobs_free(jobs, n);
    /* Unknown methods and paths get the error body too. */
    expect_error(f, "PUT", "/admin/queues/" Q "/pause", NULL, 405, NULL);
    /* A queue nobody knows is not made up by pausing it; one the catalog names may be
     * paused before its first job. */
    expect_error(f, "POST", "/admin/queues/no.such@queue/pause", NULL, 404, NULL);
    j = call(f, "GET", "/admin/queues", NULL, 200);
    char *all = json_dumps(j, 0);
    assert_null(strstr(all, "no.such@queue"));
    free(all);
    json_decref(j);
    j = call(f, "POST", "/admin/queues/order.cancelled@shipping-service/pause", NULL, 200);
    assert_true(json_is_true(json_object_get(j, "paused")));
    json_decref(j);
}

/* ---- the CLI -------------------------------------------------------------------------- */

typedef struct cli_out {
    int status;
    char *out, *err;
} cli_out;

static cli_out cli(fx *f, const char *const *args)
{
    char url_env[700];
    snprintf(url_env, sizeof url_env, "DATABASE_URL=%s", f->url);
    const char *env[] = {url_env, "LOG_LEVEL=warn", NULL};
    const char *argv[16] = {"queues"};
    size_t n = 1;
    for (; args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    f3test_proc p;
    cli_out o = {0};
    o.status = f3test_run(f->dir, argv, env, 20000, &p);
    o.out = f3test_slurp(p.out_path);
    o.err = f3test_slurp(p.err_path);
    return o;
}

static void cli_free(cli_out *o)
{
    free(o->out);
    free(o->err);
}

/* Runs the CLI, checks its exit status and that stdout (or stderr when status != 0)
 * contains `needle`. */
static void expect_cli(fx *f, const char *const *args, int status, const char *needle)
{
    cli_out o = cli(f, args);
    if (o.status != status)
        fail_msg("queues %s: status %d, want %d; stdout: %s stderr: %s", args[0], o.status, status,
                 o.out, o.err);
    const char *where = status == 0 ? o.out : o.err;
    if (needle && !strstr(where, needle))
        fail_msg("queues %s: '%s' not in: %s", args[0], needle, where);
    cli_free(&o);
}

static void test_cli(void **state)
{
    fx *f = *state;
    /* Reading. */
    expect_cli(f, (const char *[]){"list", NULL}, 0, Q);
    cli_out o = cli(f, (const char *[]){"list", "--json", NULL});
    assert_int_equal(o.status, 0);
    json_t *j = json_loads(o.out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "queues")), 2);
    json_decref(j);
    cli_free(&o);
    expect_cli(f, (const char *[]){"show", Q, NULL}, 0, "reconcile");
    expect_cli(f, (const char *[]){"jobs", Q, "--state", "failed", NULL}, 0,
               "HTTP 503 from printer");
    o = cli(f, (const char *[]){"jobs", Q, "--state=delayed", "--limit", "1", "--json", NULL});
    assert_int_equal(o.status, 0);
    j = json_loads(o.out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "jobs"), 0), "id")),
        "later-1");
    json_decref(j);
    cli_free(&o);
    expect_cli(f, (const char *[]){"job", Q, "failed-1", NULL}, 0, "attempt 1 at");
    o = cli(f, (const char *[]){"job", Q, "failed-1", "--json", NULL});
    j = json_loads(o.out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "errors")), 1);
    json_decref(j);
    cli_free(&o);

    /* Not found and refused: 1. */
    expect_cli(f, (const char *[]){"show", "nope", NULL}, 1, "not found");
    expect_cli(f, (const char *[]){"job", Q, "missing", NULL}, 1, "not found");
    expect_cli(f, (const char *[]){"remove", Q, "active-1", NULL}, 1, "active");
    expect_cli(f, (const char *[]){"retry", Q, "waiting-1", NULL}, 1, "not failed");
    expect_cli(f, (const char *[]){"pause", "no.such@queue", NULL}, 1, "not found");

    /* Misuse: 2. */
    expect_cli(f, (const char *[]){NULL}, 2, "missing subcommand");
    expect_cli(f, (const char *[]){"frobnicate", NULL}, 2, "unknown subcommand");
    expect_cli(f, (const char *[]){"show", NULL}, 2, "wrong number");
    expect_cli(f, (const char *[]){"jobs", Q, "--state", "dead", NULL}, 2, "--state");
    expect_cli(f, (const char *[]){"jobs", Q, "--limit", "501", NULL}, 2, "--limit");
    expect_cli(f, (const char *[]){"jobs", Q, "--offset", "x", NULL}, 2, "--offset");
    expect_cli(f, (const char *[]){"retry", Q, NULL}, 2, "--all");
    expect_cli(f, (const char *[]){"retry", Q, "x", "--all", NULL}, 2, "--all");
    expect_cli(f, (const char *[]){"clean", Q, "--state", "failed", NULL}, 2, "--older-than");
    expect_cli(f, (const char *[]){"clean", Q, "--state", "failed", "--older-than", "soon", NULL},
               2, "duration");
    expect_cli(f, (const char *[]){"list", "--state", "failed", NULL}, 2, "does not apply");
    expect_cli(f, (const char *[]){"pause", Q, "--limit", NULL}, 2, "needs a value");

    /* Acting. */
    expect_cli(f, (const char *[]){"retry", Q, "failed-1", NULL}, 0, "retried 1 job");
    expect_cli(f, (const char *[]){"retry", Q2, "--all", NULL}, 0, "retried 1 job");
    expect_cli(f, (const char *[]){"remove", Q, "later-1", NULL}, 0, "removed job later-1");
    expect_cli(f, (const char *[]){"clean", Q, "--state", "completed", "--older-than", "1h", NULL},
               0, "cleaned 0 completed jobs");
    expect_cli(f, (const char *[]){"pause", Q, NULL}, 0, "paused");
    bus_counts c;
    err e = {0};
    assert_int_equal(bus_store_counts(f->s, Q, clock_now_ms(), &c, &e), 0);
    assert_true(c.paused);
    assert_int_equal(c.n[BUS_STATE_DELAYED], 0);
    assert_int_equal(c.n[BUS_STATE_FAILED], 0);
    expect_cli(f, (const char *[]){"resume", Q, "--json", NULL}, 0, "\"paused\": false");
    assert_int_equal(bus_store_counts(f->s, Q, clock_now_ms(), &c, &e), 0);
    assert_false(c.paused);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_route_declares_queues_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_show_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_detail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
