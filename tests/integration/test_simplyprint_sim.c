/*
 * test_simplyprint_sim.c - the SimplyPrint simulator run as its own process
 * (`f3connect sim simplyprint`), driven through the SimplyPrint client and the /_sim/
 * control endpoints, with webhooks delivered to an in-process receiver: printers print
 * queue items copy by copy and the job.* deliveries arrive with the secret in
 * X-SP-Secret and the queue item in data.job; dropped, duplicated and reordered
 * deliveries; failing and cancelling prints on demand; a receiver's 500 retried;
 * webhook management through the API.
 */
#include "support/f3test.h"
#include "support/f3test_proc.h"

#include "core/buf.h"
#include "core/log.h"
#include "http/client.h"
#include "http/request.h"
#include "http/response.h"
#include "http/server.h"
#include "integrations/simplyprint/client.h"
#include "integrations/simplyprint/webhook.h"
#include "sim/simplyprint/sim.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY     "sp-sim-key"
#define SECRET  "sp-webhook-secret-0123456789abcdef"
#define COMPANY "4242"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- the webhook receiver (in-process) -------------------------------------------- */

#define MAX_RECEIVED 64

typedef struct received {
    int verify_rc, parse_rc;
    sp_webhook_event ev;
    int status; /* what the receiver answered */
} received;

static struct {
    pthread_mutex_t lock;
    received got[MAX_RECEIVED];
    int n;
    int fail_next;              /* answer 500 to this many deliveries */
    long delay_ms;              /* hold each answer this long */
    int inflight, max_inflight; /* deliveries being answered at once */
} rx = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int h_webhook(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    size_t len = 0;
    const char *body = http_req_body(req, &len);
    received r;
    memset(&r, 0, sizeof r);
    err e;
    r.verify_rc = sp_webhook_verify_request(SECRET, req, &e);
    r.parse_rc = sp_webhook_parse(body, len, &r.ev, &e);
    pthread_mutex_lock(&rx.lock);
    r.status = rx.fail_next > 0 ? 500 : 200;
    if (rx.fail_next > 0)
        rx.fail_next--;
    if (rx.n < MAX_RECEIVED)
        rx.got[rx.n++] = r;
    long delay = rx.delay_ms;
    if (++rx.inflight > rx.max_inflight)
        rx.max_inflight = rx.inflight;
    pthread_mutex_unlock(&rx.lock);
    if (delay > 0)
        sleep_ms(delay);
    pthread_mutex_lock(&rx.lock);
    rx.inflight--;
    pthread_mutex_unlock(&rx.lock);
    if (r.status != 200)
        return http_res_error(res, 500, "receiver told to fail");
    return http_res_json(res, 200, json_pack("{s:b}", "ok", 1));
}

static void rx_reset(int fail_next)
{
    pthread_mutex_lock(&rx.lock);
    rx.n = 0;
    rx.fail_next = fail_next;
    rx.delay_ms = 0;
    rx.max_inflight = 0;
    pthread_mutex_unlock(&rx.lock);
}

/* Waits (at most 10 s) until the receiver has n deliveries; returns the count. */
static int rx_wait(int n)
{
    int got = 0;
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&rx.lock);
        got = rx.n;
        pthread_mutex_unlock(&rx.lock);
        if (got >= n)
            break;
        sleep_ms(20);
    }
    return got;
}

/* The count after a short pause: for "nothing more arrives" once the simulator is
 * idle (no delivery pending), so a pause covers only one still in flight. */
static int rx_settled(void)
{
    sleep_ms(200);
    pthread_mutex_lock(&rx.lock);
    int got = rx.n;
    pthread_mutex_unlock(&rx.lock);
    return got;
}

static received rx_get(int i)
{
    pthread_mutex_lock(&rx.lock);
    received r = rx.got[i];
    pthread_mutex_unlock(&rx.lock);
    return r;
}

/* ---- the simulator process --------------------------------------------------------- */

static struct {
    char *dir;
    f3test_proc proc;
    int port;
    char base[64];
    http_router *router;
    http_server *receiver;
} env;

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOG_WARN);
    if (http_client_init() != 0)
        return -1;
    env.router = http_router_new();
    const http_route route = {"POST", "/webhooks/simplyprint", h_webhook, NULL, HTTP_ACCESS_PUBLIC};
    err e;
    if (!env.router || http_router_add(env.router, &route, 1, &e))
        return -1;
    http_server_opts so = {.host = "127.0.0.1", .port = 0, .threads = 2};
    env.receiver = http_server_start(env.router, &so, &e);
    if (!env.receiver)
        return -1;
    char port[16], hook[128];
    env.port = f3test_free_port();
    snprintf(port, sizeof port, "%d", env.port);
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/webhooks/simplyprint",
             http_server_port(env.receiver));
    snprintf(env.base, sizeof env.base, "http://127.0.0.1:%d", env.port);
    env.dir = f3test_tmpdir();
    const char *argv[] = {"sim",
                          "simplyprint",
                          "--port",
                          port,
                          "--api-key",
                          KEY,
                          "--company",
                          COMPANY,
                          "--webhook-url",
                          hook,
                          "--webhook-secret",
                          SECRET,
                          "--print-ms",
                          "40",
                          "--printers",
                          "2",
                          "--retry-base-ms",
                          "100",
                          "--max-retries",
                          "2",
                          "--seed",
                          "11",
                          NULL};
    const char *envp[] = {"LOG_LEVEL=warn", NULL};
    if (!env.dir || f3test_proc_start(&env.proc, env.dir, argv, envp))
        return -1;
    return f3test_wait_http_ok(env.port, "/_sim/health", &env.proc, 15000);
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (env.proc.pid > 0) {
        f3test_proc_signal(&env.proc, SIGTERM);
        if (!f3test_proc_wait(&env.proc, 10000) || env.proc.status != 0) {
            char *text = f3test_slurp(env.proc.err_path);
            fprintf(stderr, "simulator exit %d: %s\n", env.proc.status, text);
            free(text);
            rc = -1;
        }
        f3test_proc_kill(&env.proc);
    }
    http_server_stop(env.receiver);
    http_router_free(env.router);
    if (env.dir)
        f3test_rmtree(env.dir);
    free(env.dir);
    http_client_cleanup();
    return rc;
}

/* Calls a control endpoint expecting `want`; returns the JSON answer (caller decrefs). */
static json_t *control_status(const char *method, const char *path, json_t *body, long want)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", env.base, path);
    json_t *out = NULL;
    http_client_response rs;
    err e;
    http_client_json(method, url, NULL, body, 5000, &out, &rs, &e);
    if (rs.status != want)
        fail_msg("%s %s: %ld, wanted %ld: %s", method, path, rs.status, want, buf_cstr(&rs.body));
    http_client_response_free(&rs);
    json_decref(body);
    return out;
}

static json_t *control(const char *method, const char *path, json_t *body)
{
    return control_status(method, path, body, 200);
}

static json_t *state_now(void)
{
    return control("GET", "/_sim/state", NULL);
}

/* Waits (at most 10 s) until nothing is queued, printing or pending delivery. */
static void sim_wait_idle(void)
{
    for (int i = 0; i < 500; i++) {
        json_t *st = state_now();
        bool busy = json_array_size(json_object_get(st, "queue")) > 0;
        size_t k;
        json_t *v;
        json_array_foreach(json_object_get(st, "jobs"), k, v)
        {
            busy |= strcmp(json_string_value(json_object_get(v, "status")), "ongoing") == 0;
        }
        json_array_foreach(json_object_get(st, "deliveries"), k, v)
        {
            busy |= strcmp(json_string_value(json_object_get(v, "state")), "pending") == 0;
        }
        json_decref(st);
        if (!busy)
            return;
        sleep_ms(20);
    }
    fail_msg("the simulator never became idle");
}

static int test_setup(void **state)
{
    (void)state;
    json_decref(control("POST", "/_sim/reset", NULL));
    sleep_ms(50); /* a delivery of the previous test that was in flight lands first */
    rx_reset(0);
    return 0;
}

static sp_client *client(void)
{
    sp_client_opts o = {
        .api_url = env.base, .company_id = COMPANY, .api_key = KEY, .timeout_ms = 5000};
    err e;
    sp_client *c = sp_client_new(&o, &e);
    if (!c)
        fail_msg("%s", e.msg);
    return c;
}

static int64_t add_item(const char *file, int amount)
{
    sp_client *c = client();
    sp_queue_add rq = {.filesystem_id = file, .amount = amount};
    int64_t id = 0;
    err e;
    if (sp_queue_add_item(c, &rq, &id, NULL, &e))
        fail_msg("add item: %s", e.msg);
    sp_client_free(c);
    return id;
}

static int count_event(int n, const char *event)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += strcmp(rx_get(i).ev.event, event) == 0;
    return k;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_printers_finish_and_webhooks_arrive(void **state)
{
    (void)state;
    int64_t item = add_item("vase", 3);
    assert_int_equal(rx_wait(6), 6);
    sim_wait_idle();
    assert_int_equal(rx_settled(), 6); /* nothing more */
    for (int i = 0; i < 6; i++) {
        received r = rx_get(i);
        assert_int_equal(r.verify_rc, 0);
        assert_int_equal(r.parse_rc, 0);
        assert_int_equal(r.ev.queue_item_id, item);
        assert_int_equal(r.ev.webhook_id, 1);
        assert_true(r.ev.printer_id == 101 || r.ev.printer_id == 102);
        assert_string_equal(r.ev.filename, "vase.gcode");
        /* A job's start arrives before its end. */
        if (strcmp(r.ev.event, "job.done") == 0) {
            bool started = false;
            for (int k = 0; k < i; k++)
                started |= rx_get(k).ev.job_id == r.ev.job_id &&
                           strcmp(rx_get(k).ev.event, "job.started") == 0;
            assert_true(started);
            assert_int_equal(r.ev.state, SP_JOB_DONE);
            assert_string_equal(r.ev.state_text, "completed");
            assert_int_equal(r.ev.percentage, 100);
        }
    }
    assert_int_equal(count_event(6, "job.started"), 3);
    assert_int_equal(count_event(6, "job.done"), 3);

    /* The item has left the queue; the history knows three done copies. */
    sp_client *c = client();
    sp_queue_item it;
    sp_call call;
    err e;
    assert_int_equal(sp_queue_get_item(c, item, &it, &call, &e), F3_ENOTFOUND);
    sp_job *jobs = NULL;
    size_t n = 0;
    int pages = 0;
    assert_int_equal(sp_jobs_list(c, NULL, &jobs, &n, &pages, &call, &e), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(jobs[i].state, SP_JOB_DONE);
        assert_int_equal(jobs[i].queue_item_id, item);
    }
    free(jobs);
    json_t *st = state_now();
    json_t *done = json_array_get(json_object_get(st, "done_items"), 0);
    assert_int_equal(json_integer_value(json_object_get(done, "printed")), 3);
    assert_int_equal(json_integer_value(json_object_get(done, "left")), 0);
    json_decref(st);
    sp_client_free(c);
}

static void test_fifo_across_items(void **state)
{
    (void)state;
    json_decref(control("POST", "/_sim/printers", json_pack("{s:b}", "paused", 1)));
    int64_t first = add_item("first", 1);
    int64_t second = add_item("second", 1);
    /* One printer only: the order of starts is the order of the queue. */
    json_decref(
        control("POST", "/_sim/printers", json_pack("{s:i,s:b}", "printer", 101, "paused", 0)));
    assert_int_equal(rx_wait(4), 4);
    int64_t started[2];
    int k = 0;
    for (int i = 0; i < 4; i++)
        if (strcmp(rx_get(i).ev.event, "job.started") == 0 && k < 2)
            started[k++] = rx_get(i).ev.queue_item_id;
    assert_int_equal(k, 2);
    assert_int_equal(started[0], first);
    assert_int_equal(started[1], second);
}

static void test_dropped_webhooks(void **state)
{
    (void)state;
    json_decref(control("POST", "/_sim/webhooks", json_pack("{s:i}", "drop_next", 2)));
    add_item("dropped", 1);
    sim_wait_idle();
    assert_int_equal(rx_settled(), 0);
    json_t *d = control("GET", "/_sim/deliveries", NULL);
    json_t *list = json_object_get(d, "deliveries");
    assert_int_equal(json_array_size(list), 2);
    for (size_t i = 0; i < 2; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(list, i), "state")),
                            "dropped");
    json_decref(d);
    /* The job history still tells what happened (what a poller heals with). */
    sp_client *c = client();
    sp_job *jobs = NULL;
    size_t n = 0;
    int pages = 0;
    err e;
    assert_int_equal(sp_jobs_list(c, NULL, &jobs, &n, &pages, NULL, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(jobs[0].state, SP_JOB_DONE);
    free(jobs);
    sp_client_free(c);

    /* Certain drops: every delivery. */
    json_decref(control("POST", "/_sim/webhooks", json_pack("{s:f}", "drop_rate", 1.0)));
    add_item("dropped-too", 1);
    sim_wait_idle();
    assert_int_equal(rx_settled(), 0);
}

static void test_duplicated_webhooks(void **state)
{
    (void)state;
    json_decref(control("POST", "/_sim/webhooks", json_pack("{s:i}", "duplicate_next", 2)));
    add_item("twice", 1);
    assert_int_equal(rx_wait(4), 4);
    sim_wait_idle();
    assert_int_equal(rx_settled(), 4);
    /* Two of each, and a copy has the same dedupe key as its original. */
    assert_int_equal(count_event(4, "job.started"), 2);
    assert_int_equal(count_event(4, "job.done"), 2);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++)
            if (strcmp(rx_get(i).ev.event, rx_get(k).ev.event) == 0)
                assert_string_equal(rx_get(i).ev.dedupe_key, rx_get(k).ev.dedupe_key);
            else
                assert_string_not_equal(rx_get(i).ev.dedupe_key, rx_get(k).ev.dedupe_key);
}

static void test_out_of_order_deliveries(void **state)
{
    (void)state;
    json_decref(control("POST", "/_sim/webhooks", json_pack("{s:b}", "hold", 1)));
    add_item("late", 1);
    /* Both deliveries wait, then are released newest first. */
    for (int i = 0; i < 500; i++) {
        json_t *d = control("GET", "/_sim/deliveries", NULL);
        size_t n = json_array_size(json_object_get(d, "deliveries"));
        json_decref(d);
        if (n == 2)
            break;
        sleep_ms(20);
    }
    assert_int_equal(rx_settled(), 0);
    json_decref(control("POST", "/_sim/webhooks", json_pack("{s:b,s:b}", "hold", 0, "reverse", 1)));
    assert_int_equal(rx_wait(2), 2);
    assert_string_equal(rx_get(0).ev.event, "job.done");
    assert_string_equal(rx_get(1).ev.event, "job.started");
    assert_true(rx_get(0).ev.timestamp >= rx_get(1).ev.timestamp);
}

static void test_fail_and_cancel_on_demand(void **state)
{
    (void)state;
    json_decref(control("POST", "/_sim/printers", json_pack("{s:i}", "print_ms", 60000)));
    int64_t item = add_item("slow", 2);
    assert_int_equal(rx_wait(2), 2); /* both started */
    int64_t a = rx_get(0).ev.job_id, b = rx_get(1).ev.job_id;
    char path[128];
    snprintf(path, sizeof path, "/_sim/jobs/%lld/fail", (long long)a);
    json_decref(control("POST", path, json_pack("{s:s}", "reason", "Spaghetti detected")));
    snprintf(path, sizeof path, "/_sim/jobs/%lld/cancel", (long long)b);
    json_decref(control("POST", path, NULL));
    assert_int_equal(rx_wait(4), 4);
    received failed = rx_get(2), cancelled = rx_get(3);
    if (strcmp(failed.ev.event, "job.failed") != 0) {
        received t = failed;
        failed = cancelled;
        cancelled = t;
    }
    assert_string_equal(failed.ev.event, "job.failed");
    assert_int_equal(failed.ev.state, SP_JOB_FAILED);
    assert_string_equal(failed.ev.reason, "Spaghetti detected");
    assert_int_equal(failed.ev.queue_item_id, item);
    assert_string_equal(cancelled.ev.event, "job.cancelled");
    assert_int_equal(cancelled.ev.state, SP_JOB_CANCELLED);
    assert_string_equal(cancelled.ev.reason, "Cancelled by operator");
    /* Ended jobs cannot be ended again; unknown ones and actions are refused. */
    snprintf(path, sizeof path, "/_sim/jobs/%lld/finish", (long long)a);
    json_decref(control_status("POST", path, NULL, 409));
    json_decref(control_status("POST", "/_sim/jobs/1/finish", NULL, 404));
    json_decref(control_status("POST", "/_sim/jobs/1/explode", NULL, 400));
}

static void test_receiver_error_is_retried(void **state)
{
    (void)state;
    rx_reset(1);
    add_item("retry", 1);
    assert_int_equal(rx_wait(3), 3); /* started (500), started again, done */
    sim_wait_idle();
    /* The first answer was a 500; the same delivery came again (maybe after job.done). */
    assert_int_equal(rx_get(0).status, 500);
    assert_string_equal(rx_get(0).ev.event, "job.started");
    assert_int_equal(count_event(3, "job.started"), 2);
    for (int i = 1; i < 3; i++)
        if (strcmp(rx_get(i).ev.event, "job.started") == 0)
            assert_string_equal(rx_get(0).ev.dedupe_key, rx_get(i).ev.dedupe_key);
    json_t *d = control("GET", "/_sim/deliveries", NULL);
    json_t *first = json_array_get(json_object_get(d, "deliveries"), 0);
    assert_int_equal(json_integer_value(json_object_get(first, "attempts")), 2);
    assert_string_equal(json_string_value(json_object_get(first, "state")), "delivered");
    json_decref(d);
}

static void test_api_faults_over_http(void **state)
{
    (void)state;
    json_decref(control("POST", "/_sim/faults",
                        json_pack("{s:s,s:i,s:i}", "kind", "429", "count", 1, "retry_after", 5)));
    sp_client *c = client();
    sp_call call;
    err e;
    assert_int_equal(sp_account_test(c, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.retry_after_ms, 5000);
    assert_int_equal(sp_account_test(c, &call, &e), 0);
    json_decref(control_status("POST", "/_sim/faults", json_pack("{s:s}", "kind", "404"), 400));
    sp_client_free(c);

    /* Latency past a short client timeout: transient; gone again after a reset. */
    json_decref(control("POST", "/_sim/faults", json_pack("{s:i}", "latency_ms", 600)));
    sp_client_opts o = {
        .api_url = env.base, .company_id = COMPANY, .api_key = KEY, .timeout_ms = 200};
    c = sp_client_new(&o, &e);
    assert_int_equal(sp_account_test(c, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.status, 0);
    json_decref(control("POST", "/_sim/reset", NULL));
    sleep_ms(700); /* the stalled request ends */
    assert_int_equal(sp_account_test(c, &call, &e), 0);
    sp_client_free(c);
}

static void test_webhook_management(void **state)
{
    (void)state;
    char url[256];
    const char *headers[] = {"X-API-KEY: " KEY, NULL};
    json_t *out = NULL;
    http_client_response rs;
    err e;
    snprintf(url, sizeof url, "%s/%s/webhooks/Create", env.base, COMPANY);
    json_t *body =
        json_pack("{s:s,s:s,s:s,s:b,s:[s]}", "name", "second", "url", "http://127.0.0.1:1/none",
                  "secret", "other", "enabled", 1, "events", "job.done");
    assert_int_equal(http_client_json("POST", url, headers, body, 5000, &out, &rs, &e), 0);
    int64_t id = json_integer_value(json_object_get(json_object_get(out, "webhook"), "id"));
    assert_true(id > 1);
    json_decref(out);
    http_client_response_free(&rs);
    json_decref(body);

    body =
        json_pack("{s:s,s:s,s:[s]}", "name", "bad", "url", "http://x/", "events", "job.finished");
    assert_int_equal(http_client_json("POST", url, headers, body, 5000, &out, &rs, &e), 0);
    assert_true(json_is_false(json_object_get(out, "status")));
    assert_string_equal(json_string_value(json_object_get(out, "message")), "Invalid enum value");
    json_decref(out);
    http_client_response_free(&rs);
    json_decref(body);

    snprintf(url, sizeof url, "%s/%s/webhooks/Get", env.base, COMPANY);
    assert_int_equal(http_client_json("GET", url, headers, NULL, 5000, &out, &rs, &e), 0);
    assert_int_equal(json_array_size(json_object_get(out, "data")), 2);
    json_decref(out);
    http_client_response_free(&rs);

    snprintf(url, sizeof url, "%s/%s/webhooks/Delete", env.base, COMPANY);
    body = json_pack("{s:I}", "id", (json_int_t)id);
    assert_int_equal(http_client_json("POST", url, headers, body, 5000, &out, &rs, &e), 0);
    assert_true(json_is_true(json_object_get(out, "status")));
    json_decref(out);
    http_client_response_free(&rs);
    assert_int_equal(http_client_json("POST", url, headers, body, 5000, &out, &rs, &e), 0);
    assert_true(json_is_false(json_object_get(out, "status")));
    json_decref(out);
    http_client_response_free(&rs);
    json_decref(body);
}

/* The start-up options, in-process: every delivery duplicated, a seeded farm. */
static void test_in_process_options(void **state)
{
    (void)state;
    char hook[128];
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/webhooks/simplyprint",
             http_server_port(env.receiver));
    sp_sim_opts o = {.api_key = KEY,
                     .company_id = COMPANY,
                     .webhook_url = hook,
                     .webhook_secret = SECRET,
                     .printers = 1,
                     .duplicate_rate = 1.0,
                     .seed = 3};
    err e;
    o.drop_rate = 1.5;
    assert_null(sp_sim_start(&o, &e));
    assert_non_null(strstr(e.msg, "drop"));
    o.drop_rate = 0;
    o.api_key = NULL;
    assert_null(sp_sim_start(&o, &e));
    o.api_key = KEY;
    sp_sim *sim = sp_sim_start(&o, &e);
    assert_non_null(sim);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sp_sim_port(sim));
    sp_client_opts co = {.api_url = url, .company_id = COMPANY, .api_key = KEY};
    sp_client *c = sp_client_new(&co, &e);
    sp_queue_add rq = {.file_id = "0123abcd", .amount = 1};
    int64_t id = 0;
    assert_int_equal(sp_queue_add_item(c, &rq, &id, NULL, &e), 0);
    assert_int_equal(sp_sim_wait_idle(sim, 10000), 0);
    assert_int_equal(rx_settled(), 4);
    assert_int_equal(count_event(4, "job.started"), 2);
    assert_int_equal(count_event(4, "job.done"), 2);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rx_get(i).verify_rc, 0);
    sp_client_free(c);
    sp_sim_stop(sim);
}

/* Several couriers: deliveries overlap at a slow receiver, yet each job's job.started
 * arrives before its job.done. */
static void test_in_process_couriers(void **state)
{
    (void)state;
    char hook[128];
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/webhooks/simplyprint",
             http_server_port(env.receiver));
    sp_sim_opts o = {.api_key = KEY,
                     .company_id = COMPANY,
                     .webhook_url = hook,
                     .webhook_secret = SECRET,
                     .printers = 4,
                     .seed = 5,
                     .couriers = SP_SIM_COURIERS_MAX + 1};
    err e;
    assert_null(sp_sim_start(&o, &e));
    assert_non_null(strstr(e.msg, "couriers"));
    o.couriers = 4;
    sp_sim *sim = sp_sim_start(&o, &e);
    assert_non_null(sim);
    pthread_mutex_lock(&rx.lock);
    rx.delay_ms = 40;
    pthread_mutex_unlock(&rx.lock);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sp_sim_port(sim));
    sp_client_opts co = {.api_url = url, .company_id = COMPANY, .api_key = KEY};
    sp_client *c = sp_client_new(&co, &e);
    sp_queue_add rq = {.file_id = "0123abcd", .amount = 6};
    int64_t id = 0;
    assert_int_equal(sp_queue_add_item(c, &rq, &id, NULL, &e), 0);
    assert_int_equal(sp_sim_wait_idle(sim, 10000), 0);
    assert_int_equal(rx_settled(), 12);
    pthread_mutex_lock(&rx.lock);
    int overlap = rx.max_inflight;
    pthread_mutex_unlock(&rx.lock);
    assert_true(overlap >= 2); /* one courier would make it 1; the receiver has 2 threads */
    for (int i = 0; i < 12; i++) {
        received r = rx_get(i);
        assert_int_equal(r.parse_rc, 0);
        if (strcmp(r.ev.event, "job.done") != 0)
            continue;
        int started_at = -1;
        for (int k = 0; k < 12; k++)
            if (rx_get(k).ev.job_id == r.ev.job_id &&
                strcmp(rx_get(k).ev.event, "job.started") == 0)
                started_at = k;
        if (started_at < 0 || started_at > i)
            fail_msg("job %lld: job.done arrived before job.started", (long long)r.ev.job_id);
    }
    sp_client_free(c);
    sp_sim_stop(sim);
}

static void test_cli_refuses_bad_flags(void **state)
{
    (void)state;
    const char *bad[][4] = {
        {"--drop-rate", "2", "--api-key", KEY},
        {"--printers", "0", "--api-key", KEY},
        {"--print-ms", "-5", "--api-key", KEY},
        {"--company", "12ab", "--api-key", KEY},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[] = {"sim",     "simplyprint", bad[i][0], bad[i][1],
                              bad[i][2], bad[i][3],     NULL};
        f3test_proc p;
        int status = f3test_run(env.dir, argv, NULL, 15000, &p);
        if (status == 0)
            fail_msg("%s %s was accepted", bad[i][0], bad[i][1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_printers_finish_and_webhooks_arrive, test_setup),
        cmocka_unit_test_setup(test_fifo_across_items, test_setup),
        cmocka_unit_test_setup(test_dropped_webhooks, test_setup),
        cmocka_unit_test_setup(test_duplicated_webhooks, test_setup),
        cmocka_unit_test_setup(test_out_of_order_deliveries, test_setup),
        cmocka_unit_test_setup(test_fail_and_cancel_on_demand, test_setup),
        cmocka_unit_test_setup(test_receiver_error_is_retried, test_setup),
        cmocka_unit_test_setup(test_api_faults_over_http, test_setup),
        cmocka_unit_test_setup(test_webhook_management, test_setup),
        cmocka_unit_test_setup(test_in_process_options, test_setup),
        cmocka_unit_test_setup(test_in_process_couriers, test_setup),
        cmocka_unit_test(test_cli_refuses_bad_flags),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
