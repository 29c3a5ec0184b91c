/* F3_TEST: backends
 * test_print_intake.c - the print service end to end against the SimplyPrint simulator
 * (sim/simplyprint, in process, real HTTP both ways): print jobs queued through
 * POST /internal/print-jobs, printed by the simulated farm and completed by its webhooks
 * (secret checked, deliveries stored once and handled from the queue); duplicated and
 * reordered webhooks never move a job backwards or publish twice; dropped webhooks healed
 * by the reconciliation poller; wrong secrets refused; a failed print; credentials checked
 * against the API and changed at runtime.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"
#include "support/f3test_http.h"
#include "support/f3test_proc.h"

#include "bus/bus.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "http/server.h"
#include "integrations/simplyprint/client.h"
#include "services/print/service.h"
#include "sim/simplyprint/sim.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TENANT  "t-farm"
#define API_KEY "sp-sim-key"
#define SECRET  "whsec-farm-0123456789"
#define KEY_HEX "1f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define WAIT_MS 20000

static const char *backend;

static struct {
    f3test_bus tb;
    config *cfg;
    bus *b;
    print_service *ps;
    http_router *router;
    http_server *server;
    int port;
    char *dir;
    sp_sim *sim;
    int order_seq;
} env;

static const bus_worker_opts fast = {
    .poll_ms = 50, .stalled_interval_ms = -1, .repeat_interval_ms = -1, .trim_interval_ms = -1};

/* ---- helpers ------------------------------------------------------------------------ */

static int64_t count(const char *sql, const char *param)
{
    return f3test_bus_count(env.tb.d, sql, param);
}

static int64_t wait_count(const char *sql, const char *param, int64_t want)
{
    int64_t n = -1;
    for (int i = 0; i < WAIT_MS / 20; i++) {
        n = count(sql, param);
        if (n == want)
            break;
        f3test_sleep_ms(20);
    }
    return n;
}

static int64_t jobs_of(const char *order, const char *status)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM print_jobs WHERE order_id = $1 AND status = '%s'", status);
    return count(sql, order);
}

static int64_t wait_jobs(const char *order, const char *status, int64_t want)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM print_jobs WHERE order_id = $1 AND status = '%s'", status);
    return wait_count(sql, order, want);
}

static int64_t events_for(const char *queue, const char *order)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM bus_jobs WHERE queue = '%s' AND data LIKE $1",
             queue);
    char like[96];
    snprintf(like, sizeof like, "%%\"orderId\":\"%s\"%%", order);
    return count(sql, like);
}

/* A new order with one line item of `qty` x SKU DUCK (one part, one copy). */
static void new_order(char out[32], int qty)
{
    snprintf(out, 32, "o-%d", ++env.order_seq);
    char sql[600];
    snprintf(sql, sizeof sql,
             "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number,"
             " customer_name, created_at, updated_at) VALUES ('%s', '" TENANT "', '%d',"
             " '#%d', 'Ann', 0, 0)",
             out, 9000 + env.order_seq, 1000 + env.order_seq);
    f3test_bus_exec(env.tb.d, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, sku, title,"
             " quantity, created_at, updated_at) VALUES ('%s-li', '" TENANT "', '%s', '1',"
             " 'DUCK', 'Duck', %d, 0, 0)",
             out, out, qty);
    f3test_bus_exec(env.tb.d, sql);
}

/* POST raw with headers; returns the status and *body_out (may be NULL; caller frees). */
static int post(const char *path, const char *headers, const char *body, char **body_out)
{
    buf raw;
    buf_init(&raw, 0);
    buf_printf(&raw,
               "POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
               path, strlen(body), headers, body);
    f3test_http_response r = {0};
    assert_int_equal(f3test_http_request(env.port, buf_cstr(&raw), &r), 0);
    int status = r.status;
    if (body_out)
        *body_out = strdup(r.body ? r.body : "");
    f3test_http_response_free(&r);
    buf_free(&raw);
    return status;
}

static void requeue(const char *order, int want_created)
{
    char body[128], *answer = NULL;
    snprintf(body, sizeof body, "{\"orderId\":\"%s\"}", order);
    int status = post("/internal/print-jobs?tenantId=" TENANT, "", body, &answer);
    if (status != 201)
        fail_msg("requeue: %d %s", status, answer);
    json_t *doc = json_loads(answer, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(doc, "created")), want_created);
    assert_int_equal(json_integer_value(json_object_get(doc, "submitted")), want_created);
    json_decref(doc);
    free(answer);
}

static void wait_webhooks_handled(void)
{
    assert_int_equal(wait_count("SELECT COUNT(*) FROM bus_jobs WHERE queue = $1 AND"
                                " state IN ('waiting', 'active', 'delayed', 'prioritized')",
                                PRINT_WEBHOOK_QUEUE, 0),
                     0);
    assert_int_equal(count("SELECT COUNT(*) FROM bus_jobs WHERE queue = $1 AND state = 'failed'",
                           PRINT_WEBHOOK_QUEUE),
                     0);
}

/* ---- environment -------------------------------------------------------------------- */

static void set(const char *flag, const char *value)
{
    err e;
    if (config_set_flag(env.cfg, flag, value, &e))
        fail_msg("%s: %s", flag, e.msg);
}

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOG_WARN);
    f3test_bus_new(&env.tb, backend);
    env.dir = f3test_tmpdir();
    env.cfg = config_new();
    env.port = f3test_free_port();
    char hook[160], sim_url[64];
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/api/v1/webhooks/simplyprint?tenant=" TENANT,
             env.port);
    err e = {0};
    sp_sim_opts so = {.api_key = API_KEY,
                      .webhook_url = hook,
                      .webhook_secret = SECRET,
                      .printers = 2,
                      .print_ms = 100,
                      .seed = 7,
                      .retry_base_ms = 100};
    env.sim = sp_sim_start(&so, &e);
    if (!env.sim) {
        fprintf(stderr, "sim: %s\n", e.msg);
        return -1;
    }
    snprintf(sim_url, sizeof sim_url, "http://127.0.0.1:%d", sp_sim_port(env.sim));
    set("data-dir", env.dir);
    set("encryption-key", KEY_HEX);
    set("simplyprint-company-id", SP_SIM_DEFAULT_COMPANY);
    set("simplyprint-api-key", API_KEY);
    set("simplyprint-api-url", sim_url);
    set("simplyprint-webhook-secret", SECRET);
    f3test_bus_exec(env.tb.d, "INSERT INTO tenants (id, name, slug, created_at, updated_at)"
                              " VALUES ('" TENANT "', 'Farm', 'farm', 0, 0)");
    f3test_bus_exec(env.tb.d,
                    "INSERT INTO product_mappings (id, tenant_id, sku, name, created_at,"
                    " updated_at) VALUES ('pm-duck', '" TENANT "', 'DUCK', 'Duck', 0, 0)");
    f3test_bus_exec(env.tb.d,
                    "INSERT INTO assembly_parts (id, tenant_id, product_mapping_id, part_number,"
                    " part_name, simplyprint_file_id, quantity_per_unit, created_at,"
                    " updated_at) VALUES ('ap-duck', '" TENANT "', 'pm-duck', 1, 'Duck',"
                    " 'abcdef0123456789', 1, 0, 0)");
    env.b = bus_new_with(env.tb.d, env.tb.s, BUS_SVC_PRINT, &fast, &e);
    env.router = http_router_new();
    print_service_deps deps = {.db = env.tb.d,
                               .bus = env.b,
                               .store = env.tb.s,
                               .config = env.cfg,
                               .provider = &print_provider_simplyprint,
                               .tenant_id = TENANT};
    if (!env.b || !env.router || print_service_start(&env.ps, &deps, env.router, &e) ||
        bus_start(env.b, &e)) {
        fprintf(stderr, "print service: %s\n", e.msg);
        return -1;
    }
    http_server_opts ho = {
        .host = "127.0.0.1", .port = env.port, .threads = 8, .max_body = 256 * 1024};
    env.server = http_server_start(env.router, &ho, &e);
    if (!env.server) {
        fprintf(stderr, "server: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sp_sim_stop(env.sim);
    http_server_stop(env.server);
    print_service_stop(env.ps);
    bus_free(env.b);
    print_service_free(env.ps);
    http_router_free(env.router);
    config_free(env.cfg);
    f3test_bus_drop(&env.tb);
    f3test_rmtree(env.dir);
    free(env.dir);
    return 0;
}

static int reset(void **state)
{
    (void)state;
    sp_sim_reset(env.sim);
    sp_sim_set_farm(env.sim, 100, 0, 0);
    return 0;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_printed_and_completed_by_webhooks(void **state)
{
    (void)state;
    char order[32];
    new_order(order, 3);
    requeue(order, 3);
    assert_int_equal(wait_jobs(order, "COMPLETED", 3), 3);
    wait_webhooks_handled();
    assert_int_equal(events_for("print-job.completed@order-service", order), 3);
    /* QUEUED, PRINTING, COMPLETED for each: three changes a job - or two, when a job's
     * job.done is handled before its job.started (the late PRINTING report is refused:
     * a completed job never moves back). */
    int changes = (int)events_for("print-job.status-changed@order-service", order);
    assert_true(changes >= 6 && changes <= 9);
    assert_true(
        count("SELECT COUNT(*) FROM webhook_deliveries WHERE provider = 'simplyprint'", NULL) >= 6);
    assert_int_equal(count("SELECT COUNT(*) FROM print_jobs WHERE order_id = $1 AND"
                           " simplyprint_job_id IS NOT NULL AND printer_name IS NOT NULL",
                           order),
                     3);
    /* Requeueing a finished order adds nothing. */
    requeue(order, 0);
}

static void test_duplicate_and_reordered_webhooks(void **state)
{
    (void)state;
    char order[32];
    new_order(order, 2);
    sp_sim_delivery_faults(env.sim, 0, 1.0, 0, 0); /* every delivery twice */
    sp_sim_hold_deliveries(env.sim, true, false);
    requeue(order, 2);
    /* Let the farm finish, then release the held webhooks newest first: "done" arrives
     * before "started" for each job. */
    for (int i = 0; i < 100 && sp_sim_wait_idle(env.sim, 50) != 0; i++) {
        json_t *st = sp_sim_state(env.sim);
        size_t queue = json_array_size(json_object_get(st, "queue"));
        json_decref(st);
        if (queue == 0)
            break;
    }
    f3test_sleep_ms(500);
    sp_sim_hold_deliveries(env.sim, false, true);
    assert_int_equal(wait_jobs(order, "COMPLETED", 2), 2);
    assert_int_equal(sp_sim_wait_idle(env.sim, WAIT_MS), 0);
    wait_webhooks_handled();
    assert_int_equal(jobs_of(order, "COMPLETED"), 2);
    assert_int_equal(events_for("print-job.completed@order-service", order), 2);
    /* Nothing ever went from COMPLETED back to PRINTING. */
    assert_int_equal(count("SELECT COUNT(*) FROM bus_jobs WHERE queue ="
                           " 'print-job.status-changed@order-service' AND data LIKE"
                           " '%\"previousStatus\":\"COMPLETED\"%'",
                           NULL),
                     0);
    /* Duplicates were stored once. */
    assert_int_equal(count("SELECT COUNT(*) FROM (SELECT delivery_id FROM webhook_deliveries"
                           " WHERE provider = 'simplyprint' GROUP BY delivery_id"
                           " HAVING COUNT(*) > 1) d",
                           NULL),
                     0);
    sp_sim_delivery_faults(env.sim, 0, 0, 0, 0);
}

static void test_dropped_webhooks_healed_by_poller(void **state)
{
    (void)state;
    char order[32];
    new_order(order, 2);
    sp_sim_delivery_faults(env.sim, 1.0, 0, 0, 0); /* every webhook lost */
    requeue(order, 2);
    assert_int_equal(sp_sim_wait_idle(env.sim, WAIT_MS), 0);
    f3test_sleep_ms(300);
    assert_int_equal(jobs_of(order, "QUEUED"), 2);
    int applied = 0;
    err e = {0};
    assert_int_equal(print_service_reconcile(env.ps, &applied, &e), 0);
    assert_int_equal(applied, 2);
    assert_int_equal(jobs_of(order, "COMPLETED"), 2);
    assert_int_equal(events_for("print-job.completed@order-service", order), 2);
    assert_int_equal(print_service_reconcile(env.ps, &applied, &e), 0);
    assert_int_equal(applied, 0);
    sp_sim_delivery_faults(env.sim, 0, 0, 0, 0);
}

/* Prints `amount` copies of a file that is none of ours, straight through the API (as
 * another shop using the same farm would). */
static void print_others(int amount)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sp_sim_port(env.sim));
    sp_client_opts o = {.api_url = url, .company_id = SP_SIM_DEFAULT_COMPANY, .api_key = API_KEY};
    err e = {0};
    sp_client *c = sp_client_new(&o, &e);
    assert_non_null(c);
    sp_queue_add rq = {.file_id = "fedcba9876543210", .amount = amount};
    int64_t id = 0;
    sp_call call;
    if (sp_queue_add_item(c, &rq, &id, &call, &e))
        fail_msg("queue/AddItem: %s", e.msg);
    sp_client_free(c);
}

/* The poller pages through the job history: a print whose webhooks were lost and that
 * ended more than 500 prints ago (farther back than the newest pages) is still found. */
static void test_poller_pages_through_history(void **state)
{
    (void)state;
    char order[32];
    new_order(order, 2);
    sp_sim_set_farm(env.sim, 0, -1, -1);
    sp_sim_delivery_faults(env.sim, 1.0, 0, 0, 0); /* every webhook lost */
    requeue(order, 2);
    assert_int_equal(sp_sim_wait_idle(env.sim, WAIT_MS), 0);
    print_others(700);
    assert_int_equal(sp_sim_wait_idle(env.sim, WAIT_MS), 0);
    json_t *st = sp_sim_state(env.sim);
    assert_true(json_array_size(json_object_get(st, "jobs")) >= 702);
    json_decref(st);
    assert_int_equal(jobs_of(order, "QUEUED"), 2);
    int applied = 0;
    err e = {0};
    assert_int_equal(print_service_reconcile(env.ps, &applied, &e), 0);
    assert_int_equal(applied, 2);
    assert_int_equal(jobs_of(order, "COMPLETED"), 2);
    sp_sim_delivery_faults(env.sim, 0, 0, 0, 0);
}

static void test_failed_print(void **state)
{
    (void)state;
    char order[32];
    new_order(order, 1);
    sp_sim_set_farm(env.sim, 100, 1.0, 0);
    requeue(order, 1);
    assert_int_equal(wait_jobs(order, "FAILED", 1), 1);
    wait_webhooks_handled();
    assert_int_equal(events_for("print-job.failed@order-service", order), 1);
    assert_int_equal(count("SELECT COUNT(*) FROM event_log WHERE event_type = 'operator.alert'"
                           " AND order_id = $1",
                           order),
                     1);
}

/* A printer may report a queue item before the submission that created it has recorded
 * its id (an instant printer, submit_one still between its two steps): the report is
 * retried rather than dropped, and completes the job once the id is recorded. */
static void test_report_before_submission_recorded(void **state)
{
    (void)state;
    char order[32];
    new_order(order, 1);
    assert_int_equal(sp_sim_pause(env.sim, 0, true), 0);
    requeue(order, 1);
    int64_t item = count("SELECT CAST(simplyprint_queue_item_id AS BIGINT) FROM print_jobs"
                         " WHERE order_id = $1",
                         order);
    assert_true(item > 0);
    char sql[400];
    snprintf(sql, sizeof sql,
             "UPDATE print_jobs SET simplyprint_queue_item_id = NULL WHERE order_id = '%s'", order);
    f3test_bus_exec(env.tb.d, sql);
    char body[600];
    snprintf(body, sizeof body,
             "{\"webhook_id\":1,\"event\":\"job.done\",\"timestamp\":1773484800,\"data\":"
             "{\"job\":{\"id\":777001,\"uid\":\"u-777001\",\"printer_id\":1,\"state\":"
             "\"completed\",\"file\":\"duck.gcode\",\"percentage\":100,\"started\":"
             "1773484790,\"ended\":1773484800,\"printer\":{\"id\":1,\"name\":\"P1\"},"
             "\"queue_item_id\":%lld}}}",
             (long long)item);
    assert_int_equal(post("/api/v1/webhooks/simplyprint?tenant=" TENANT,
                          "X-SP-Secret: " SECRET "\r\n", body, NULL),
                     200);
    /* The first attempt finds no job with that queue item and asks for a retry. */
    assert_int_equal(wait_count("SELECT COUNT(*) FROM bus_jobs WHERE queue = $1 AND"
                                " attempts_made >= 1 AND state = 'waiting'",
                                PRINT_WEBHOOK_QUEUE, 1),
                     1);
    assert_int_equal(jobs_of(order, "QUEUED"), 1);
    snprintf(sql, sizeof sql,
             "UPDATE print_jobs SET simplyprint_queue_item_id = '%lld' WHERE order_id = '%s'",
             (long long)item, order);
    f3test_bus_exec(env.tb.d, sql);
    assert_int_equal(wait_jobs(order, "COMPLETED", 1), 1);
    /* The farm prints the real item now; its reports land here, not in the next test. */
    assert_int_equal(sp_sim_pause(env.sim, 0, false), 0);
    assert_int_equal(sp_sim_wait_idle(env.sim, WAIT_MS), 0);
    wait_webhooks_handled();
    assert_int_equal(jobs_of(order, "COMPLETED"), 1);
}

static void test_webhook_secret_refused(void **state)
{
    (void)state;
    const char *body = "{\"webhook_id\":1,\"event\":\"test\",\"timestamp\":1773484800,"
                       "\"data\":{}}";
    int64_t before = count("SELECT COUNT(*) FROM webhook_deliveries", NULL);
    assert_int_equal(post("/api/v1/webhooks/simplyprint?tenant=" TENANT,
                          "X-SP-Secret: wrong-secret\r\n", body, NULL),
                     401);
    assert_int_equal(post("/api/v1/webhooks/simplyprint?tenant=" TENANT, "", body, NULL), 401);
    assert_int_equal(post("/api/v1/webhooks/simplyprint?tenant=nobody",
                          "X-SP-Secret: " SECRET "\r\n", body, NULL),
                     401);
    assert_int_equal(count("SELECT COUNT(*) FROM webhook_deliveries", NULL), before);
    /* The right secret in X-SP-Token, tenant found as the only connected one. */
    assert_int_equal(post("/api/v1/webhooks/simplyprint", "X-SP-Token: " SECRET "\r\n", body, NULL),
                     200);
    assert_int_equal(
        post("/api/v1/webhooks/simplyprint", "X-SP-Token: " SECRET "\r\n", "{\"event\":", NULL),
        400);
}

static void test_credentials_checked_and_changed(void **state)
{
    (void)state;
    err e = {0};
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sp_sim_port(env.sim));
    print_connect_rq bad = {
        .company_id = SP_SIM_DEFAULT_COMPANY, .api_key = "wrong", .api_url = url};
    assert_int_equal(print_service_connect(env.ps, TENANT, &bad, NULL, &e), F3_EPERMANENT);
    /* Still connected with the old key: printing goes on. */
    char order[32];
    new_order(order, 1);
    requeue(order, 1);
    assert_int_equal(wait_jobs(order, "COMPLETED", 1), 1);
    /* Disconnected: new jobs wait; connected again (same key, checked): they go out. */
    assert_int_equal(print_service_disconnect(env.ps, TENANT, NULL, &e), 0);
    new_order(order, 1);
    char body[128], *answer = NULL;
    snprintf(body, sizeof body, "{\"orderId\":\"%s\"}", order);
    assert_int_equal(post("/internal/print-jobs?tenantId=" TENANT, "", body, &answer), 201);
    assert_non_null(strstr(answer, "\"deferred\":1"));
    free(answer);
    print_connect_rq good = {.company_id = SP_SIM_DEFAULT_COMPANY,
                             .api_key = API_KEY,
                             .api_url = url,
                             .webhook_secret = SECRET};
    assert_int_equal(print_service_connect(env.ps, TENANT, &good, NULL, &e), 0);
    int applied = 0;
    assert_int_equal(print_service_reconcile(env.ps, &applied, &e), 0);
    assert_int_equal(wait_jobs(order, "COMPLETED", 1), 1);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_printed_and_completed_by_webhooks, reset),
        cmocka_unit_test_setup(test_duplicate_and_reordered_webhooks, reset),
        cmocka_unit_test_setup(test_dropped_webhooks_healed_by_poller, reset),
        cmocka_unit_test_setup(test_poller_pages_through_history, reset),
        cmocka_unit_test_setup(test_failed_print, reset),
        cmocka_unit_test_setup(test_report_before_submission_recorded, reset),
        cmocka_unit_test_setup(test_webhook_secret_refused, reset),
        cmocka_unit_test_setup(test_credentials_checked_and_changed, reset),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
