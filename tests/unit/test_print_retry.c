/* F3_TEST: backends
 * test_print_retry.c - the print service's retries through the retry queue, against the
 * SimplyPrint simulator with injected faults: a transient submission failure adds one
 * PRINT_JOB_CREATION entry per order (deduped), the sweep leaves that order alone, and the
 * entry submits every job exactly once when SimplyPrint is back; a fault that never clears
 * ends in RETRY_EXHAUSTED with one alert, and a manual retry of the entry submits. A failed
 * queue-item removal on cancel adds a CANCELLATION entry that removes the item and clears
 * the kept error, or ends in RETRY_EXHAUSTED with one alert. The scheduled processor's
 * wake-up runs an entry at its due time even when the same thread queued, before, an entry
 * of a type no processor of this process handles.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"

#include "bus/bus.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "services/common/notify.h"
#include "services/common/retry.h"
#include "services/print/service.h"
#include "sim/simplyprint/sim.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

#define TENANT  "t-pretry"
#define KEY_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define API_KEY "sp-sim-key"

typedef struct fx {
    f3test_bus tb;
    sp_sim *sim;
    config *cfg;
    char *dir;
    bus *b;
    retry_queue *rq;
    print_service *s;
} fx;

static double no_jitter(void *ctx)
{
    (void)ctx;
    return 0.5;
}

static void set(fx *f, const char *flag, const char *v)
{
    err e = {0};
    if (config_set_flag(f->cfg, flag, v, &e))
        fail_msg("%s: %s", flag, e.msg);
}

static void exec(fx *f, const char *sql)
{
    f3test_bus_exec(f->tb.d, sql);
}

static int64_t count(fx *f, const char *sql, const char *param)
{
    return f3test_bus_count(f->tb.d, sql, param);
}

/* An order with one VASE: a body and two feet, three jobs. */
static void add_order(fx *f, const char *order_id, int n)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number,"
             " customer_name, created_at, updated_at) VALUES ('%s', '" TENANT "', '90%d', '#10%d',"
             " 'Ann', 0, 0)",
             order_id, n, n);
    exec(f, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, sku, title,"
             " quantity, created_at, updated_at) VALUES ('li-%s', '" TENANT "', '%s', '50%d',"
             " 'VASE', 'Vase', 1, %d, %d)",
             order_id, order_id, n, n, n);
    exec(f, sql);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    err e = {0};
    f3test_bus_new(&f->tb, backend);
    /* Paused printers take nothing: the simulator's queue shows what was submitted. */
    sp_sim_opts so = {.api_key = API_KEY, .paused = true, .seed = 3};
    f->sim = sp_sim_start(&so, &e);
    if (!f->sim)
        fail_msg("sim: %s", e.msg);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sp_sim_port(f->sim));
    f->dir = f3test_tmpdir();
    f->cfg = config_new();
    set(f, "data-dir", f->dir);
    set(f, "encryption-key", KEY_HEX);
    set(f, "simplyprint-company-id", SP_SIM_DEFAULT_COMPANY);
    set(f, "simplyprint-api-key", API_KEY);
    set(f, "simplyprint-api-url", url);
    exec(f, "INSERT INTO tenants (id, name, slug, created_at, updated_at)"
            " VALUES ('" TENANT "', 'Farm', 'farm', 0, 0)");
    exec(f, "INSERT INTO product_mappings (id, tenant_id, sku, name, created_at, updated_at)"
            " VALUES ('pm-vase', '" TENANT "', 'VASE', 'Vase', 0, 0)");
    exec(f, "INSERT INTO assembly_parts (id, tenant_id, product_mapping_id, part_number,"
            " part_name, simplyprint_file_id, quantity_per_unit, created_at, updated_at) VALUES"
            " ('ap-body', '" TENANT "', 'pm-vase', 1, 'Body', 'abcdef0123456789', 1, 0, 0),"
            " ('ap-foot', '" TENANT "', 'pm-vase', 2, 'Foot', 'abcdef0123456780', 2, 0, 0)");
    add_order(f, "o-1", 1);
    add_order(f, "o-2", 2);
    f->b = bus_new(f->tb.d, f->tb.s, BUS_SVC_PRINT, &e);
    retry_opts ro = {.random = no_jitter};
    f->rq = retry_new(f->tb.d, &ro);
    assert_non_null(f->b);
    assert_non_null(f->rq);
    print_service_deps d = {.db = f->tb.d,
                            .bus = f->b,
                            .store = f->tb.s,
                            .config = f->cfg,
                            .provider = &print_provider_simplyprint,
                            .tenant_id = TENANT,
                            .retry = f->rq,
                            .no_queues = true};
    if (print_service_start(&f->s, &d, NULL, &e))
        fail_msg("print_service_start: %s", e.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    retry_free(f->rq);
    print_service_free(f->s);
    bus_free(f->b);
    sp_sim_stop(f->sim);
    config_free(f->cfg);
    f3test_bus_drop(&f->tb);
    f3test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void fault(fx *f, int count_n)
{
    assert_int_equal(sp_sim_fault(f->sim, count_n ? 503 : 0, count_n, -1, 0), 0);
}

/* Items in the simulator's print queue. */
static size_t sim_queue(fx *f)
{
    json_t *st = sp_sim_state(f->sim);
    size_t n = json_array_size(json_object_get(st, "queue"));
    json_decref(st);
    return n;
}

static int64_t entries(fx *f, const char *type, const char *status)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM retry_queue WHERE job_type = '%s' AND status = $1", type);
    return count(f, sql, status);
}

static int64_t jobs_in(fx *f, const char *order_id, const char *status)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM print_jobs WHERE order_id = '%s' AND status = $1", order_id);
    return count(f, sql, status);
}

static int64_t alerts_of(fx *f, const char *kind)
{
    char like[64];
    snprintf(like, sizeof like, "Operator alert %s:%%", kind);
    return count(f,
                 "SELECT COUNT(*) FROM event_log WHERE event_type = '" NOTIFY_ALERT_EVENT "' AND"
                 " message LIKE $1",
                 like);
}

/* Runs one entry due within two hours (the backoff is not waited for); entries run. */
static int process(fx *f)
{
    int ran = 0;
    err e = {0};
    if (retry_process_due(f->rq, clock_now_ms() + 2 * 3600 * 1000, 1, &ran, &e))
        fail_msg("retry_process_due: %s", e.msg);
    return ran;
}

static void requeue(fx *f, const char *order_id, int want)
{
    print_run_counts n;
    err e = {0};
    int rc = print_service_requeue(f->s, TENANT, order_id, NULL, &n, &e);
    if (rc != want)
        fail_msg("requeue %s: %d (%s), want %d", order_id, rc, e.msg, want);
}

static void reconcile(fx *f)
{
    int applied = 0;
    err e = {0};
    print_service_reconcile(f->s, &applied, &e);
}

static void entry_id(fx *f, const char *type, const char *status, char out[64])
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT id FROM retry_queue WHERE job_type = '%s' AND status = '%s'",
             type, status);
    err e = {0};
    db_conn *c = db_acquire(f->tb.d, &e);
    db_stmt *s = db_prepare(c, sql, &e);
    assert_non_null(s);
    assert_int_equal(db_step(s, &e), DB_ROW);
    db_col_copy(s, 0, out, 64);
    db_finalize(s);
    db_release(c);
}

static void manual_retry(fx *f, const char *id)
{
    err e = {0};
    db_conn *c = db_acquire(f->tb.d, &e);
    assert_int_equal(retry_manual(c, TENANT, id, 0, &e), 0);
    db_release(c);
}

/* ---- PRINT_JOB_CREATION ------------------------------------------------------------------ */

static void test_submission_heals_through_one_entry_per_order(void **state)
{
    fx *f = *state;
    fault(f, 1000);
    requeue(f, "o-1", F3_ETRANSIENT);
    assert_int_equal(jobs_in(f, "o-1", "PENDING"), 3);
    assert_int_equal(entries(f, "PRINT_JOB_CREATION", "PENDING"), 1);
    /* Asked again while it is pending: still one entry for the order. */
    requeue(f, "o-1", F3_ETRANSIENT);
    assert_int_equal(entries(f, "PRINT_JOB_CREATION", "PENDING"), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE payload LIKE $1", "%o-1%"),
                     1);
    /* SimplyPrint is back; the sweep leaves the order to its entry. */
    fault(f, 0);
    reconcile(f);
    assert_int_equal(jobs_in(f, "o-1", "PENDING"), 3);
    assert_int_equal(sim_queue(f), 0);
    /* The entry submits every job, once. */
    assert_int_equal(process(f), 1);
    assert_int_equal(jobs_in(f, "o-1", "QUEUED"), 3);
    assert_int_equal(entries(f, "PRINT_JOB_CREATION", "COMPLETED"), 1);
    assert_int_equal(sim_queue(f), 3);
    assert_int_equal(process(f), 0);
    reconcile(f);
    requeue(f, "o-1", 0);
    assert_int_equal(sim_queue(f), 3);
    assert_int_equal(alerts_of(f, "RETRY_EXHAUSTED"), 0);
}

static void test_submission_never_heals_alerts_once(void **state)
{
    fx *f = *state;
    fault(f, 1000);
    requeue(f, "o-2", F3_ETRANSIENT);
    assert_int_equal(entries(f, "PRINT_JOB_CREATION", "PENDING"), 1);
    for (int i = 0; i < RETRY_DEFAULT_MAX_ATTEMPTS; i++)
        assert_int_equal(process(f), 1);
    assert_int_equal(process(f), 0);
    assert_int_equal(entries(f, "PRINT_JOB_CREATION", "FAILED"), 1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", RETRY_EXHAUSTED_EVENT), 1);
    assert_int_equal(alerts_of(f, "RETRY_EXHAUSTED"), 1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", NOTIFY_ALERT_EVENT), 1);
    assert_int_equal(jobs_in(f, "o-2", "PENDING"), 3);
    /* Back, but the sweep does not take over an order an operator was alerted about. */
    fault(f, 0);
    reconcile(f);
    assert_int_equal(sim_queue(f), 0);
    /* The operator's manual retry of the entry submits them. */
    char id[64];
    entry_id(f, "PRINT_JOB_CREATION", "FAILED", id);
    manual_retry(f, id);
    assert_int_equal(process(f), 1);
    assert_int_equal(jobs_in(f, "o-2", "QUEUED"), 3);
    assert_int_equal(sim_queue(f), 3);
    assert_int_equal(alerts_of(f, "RETRY_EXHAUSTED"), 1);
}

/* ---- CANCELLATION ------------------------------------------------------------------------ */

static void job_of(fx *f, const char *order_id, int nth, char out[65])
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT id FROM print_jobs WHERE order_id = '%s' ORDER BY part_key, unit_index,"
             " copy_index",
             order_id);
    err e = {0};
    db_conn *c = db_acquire(f->tb.d, &e);
    db_stmt *s = db_prepare(c, sql, &e);
    assert_non_null(s);
    for (int i = 0; i <= nth; i++)
        assert_int_equal(db_step(s, &e), DB_ROW);
    db_col_copy(s, 0, out, 65);
    db_finalize(s);
    db_release(c);
}

static void test_queue_item_removal_retried(void **state)
{
    fx *f = *state;
    requeue(f, "o-1", 0);
    assert_int_equal(sim_queue(f), 3);
    char a[65], b[65];
    job_of(f, "o-1", 0, a);
    job_of(f, "o-1", 1, b);
    err e = {0};
    print_job_row after;

    /* The removal fails: CANCELLED locally with the error kept, and an entry. */
    fault(f, 1000);
    assert_int_equal(print_service_cancel(f->s, TENANT, a, "u-1", &after, &e), 0);
    assert_int_equal(after.info.status, PRINT_JOB_CANCELLED);
    assert_true(after.info.error_message[0]);
    assert_int_equal(entries(f, "CANCELLATION", "PENDING"), 1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM retry_queue WHERE payload LIKE $1", "%queueItemId%"), 1);
    /* Back: the entry removes the item (once) and clears the error. */
    fault(f, 0);
    assert_int_equal(process(f), 1);
    assert_int_equal(entries(f, "CANCELLATION", "COMPLETED"), 1);
    assert_int_equal(sim_queue(f), 2);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM print_jobs WHERE id = $1 AND error_message IS NULL", a), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1",
                           PRINT_LOG_QUEUE_ITEM_REMOVED),
                     1);
    assert_int_equal(process(f), 0);
    assert_int_equal(sim_queue(f), 2);

    /* Never back: RETRY_EXHAUSTED and one alert; the job stays CANCELLED with its error. */
    fault(f, 1000);
    assert_int_equal(print_service_cancel(f->s, TENANT, b, "u-1", &after, &e), 0);
    assert_int_equal(entries(f, "CANCELLATION", "PENDING"), 1);
    for (int i = 0; i < RETRY_DEFAULT_MAX_ATTEMPTS; i++)
        assert_int_equal(process(f), 1);
    assert_int_equal(entries(f, "CANCELLATION", "FAILED"), 1);
    assert_int_equal(alerts_of(f, "RETRY_EXHAUSTED"), 1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", RETRY_EXHAUSTED_EVENT), 1);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM print_jobs WHERE id = $1 AND status = 'CANCELLED'"
                           " AND error_message IS NOT NULL",
                           b),
                     1);
    fault(f, 0);
    assert_int_equal(sim_queue(f), 2);

    /* order.cancelled with the removal failing: an entry per cancelled job's item. */
    fault(f, 1000);
    assert_int_equal(print_service_order_cancelled(f->s, NULL, TENANT, "o-1", &e), 0);
    assert_int_equal(jobs_in(f, "o-1", "CANCELLED"), 3);
    assert_int_equal(entries(f, "CANCELLATION", "PENDING"), 1);
    fault(f, 0);
    assert_int_equal(process(f), 1);
    assert_int_equal(sim_queue(f), 1); /* b's item: its entry was exhausted */
}

static void test_wake_up_at_due_time(void **state)
{
    fx *f = *state;
    err e = {0};
    /* Scheduled (its wake-up thread runs), but the bus is not started: no ticks. */
    assert_int_equal(retry_schedule(f->rq, f->b, f->tb.s, 3600 * 1000, &e), 0);
    /* This thread first queues an alert e-mail, which no processor here handles... */
    db_conn *c = db_acquire(f->tb.d, &e);
    json_t *p = json_pack("{s:s}", "subject", "hello");
    assert_int_equal(db_begin(c, &e), 0);
    retry_enqueue_opts o = {
        .tenant_id = TENANT, .type = RETRY_NOTIFICATION, .payload = p, .delay_ms = 0};
    assert_int_equal(retry_enqueue_with(c, &o, NULL, &e), 0);
    assert_int_equal(db_commit(c, &e), 0);
    json_decref(p);
    db_release(c);
    f3test_sleep_ms(50);
    /* ... then a submission fails once: its entry (due in 1 s) is run by the wake-up. */
    fault(f, 1);
    requeue(f, "o-1", F3_ETRANSIENT);
    /* The wake-up thread commits the jobs QUEUED (the handler's transactions) before it
     * records the entry COMPLETED (its own): wait for the later commit, not the earlier. */
    for (int waited = 0; waited < 15000 && entries(f, "PRINT_JOB_CREATION", "COMPLETED") != 1;
         waited += 50)
        f3test_sleep_ms(50);
    assert_int_equal(entries(f, "PRINT_JOB_CREATION", "COMPLETED"), 1);
    assert_int_equal(jobs_in(f, "o-1", "QUEUED"), 3);
    assert_int_equal(entries(f, "NOTIFICATION", "PENDING"), 1);
    assert_int_equal(sim_queue(f), 3);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submission_heals_through_one_entry_per_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_submission_never_heals_alerts_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_item_removal_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wake_up_at_due_time, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
