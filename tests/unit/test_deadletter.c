/* F3_TEST: backends
 * test_deadletter.c - the dead-letter watch (services/common/deadletter.c) over a real
 * store on SQLite and PostgreSQL (argv[1]): jobs are failed for good through the store,
 * then scanned. One EVENT_DEAD_LETTERED alert per job and failure, naming the order; none
 * again on the next scan or from a second watch; a job retried and failed again is
 * alerted again; jobs without a (known) tenant and jobs older than the lookback are not
 * mailed; a storm is capped per tenant and hour with one alert for the rest; bad job
 * data never stops the scan; and the scan runs as a repeatable job on a bus.
 */
#include "support/f3test_bus.h"

#include "bus/bus.h"
#include "core/clock.h"
#include "core/log.h"
#include "services/common/deadletter.h"
#include "services/common/notify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

#define Q      "print-job.completed@order-service"
#define TENANT "t-dl"

static int setup(void **state)
{
    f3test_bus_setup(state, backend);
    f3test_bus *f = *state;
    f3test_bus_exec(f->d, "INSERT INTO tenants (id, name, slug, created_at, updated_at)"
                          " VALUES ('" TENANT "', 'Shop', 'shop', 0, 0)");
    f3test_bus_exec(f->d, "INSERT INTO orders (id, tenant_id, shopify_order_id,"
                          " shopify_order_number, status, customer_name, created_at, updated_at)"
                          " VALUES ('o1', '" TENANT "', 's1', '#1001', 'PROCESSING', 'Ann', 0, 0)");
    return 0;
}

static int teardown(void **state)
{
    return f3test_bus_teardown(state);
}

/* Adds job id with the event envelope `data`, claims it and fails it for good with
 * `reason`. */
static void dead_data(f3test_bus *f, const char *queue, const char *id, const char *data,
                      const char *reason, int64_t now)
{
    bus_job_opts o = {.job_id = id, .attempts = 1};
    err e = {0};
    bool added = false;
    if (bus_store_add(f->s, NULL, queue, "print-job.completed", data, &o, now, &added, &e) != 0)
        fail_msg("bus_store_add: %s", e.msg);
    bus_job **jobs = NULL;
    size_t n = 0;
    if (bus_store_claim(f->s, queue, 1, "tok", 30000, now, &jobs, &n, &e) != 0 || n != 1)
        fail_msg("bus_store_claim: %s (%zu)", e.msg, n);
    assert_string_equal(jobs[0]->id, id);
    bus_jobs_free(jobs, n);
    bus_fail_result r;
    if (bus_store_fail(f->s, NULL, queue, id, "tok", reason, BUS_FAIL_PERMANENT, now + 5, &r, &e))
        fail_msg("bus_store_fail: %s", e.msg);
    assert_int_equal(r, BUS_DEAD_LETTERED);
}

/* A failed print-job.completed job of TENANT about order_id. */
static void dead_with_order(f3test_bus *f, const char *queue, const char *id, const char *order_id,
                            int64_t now)
{
    json_t *env = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "eventId", id, "eventType",
                            "print-job.completed", "source", "print-service", "tenantId", TENANT,
                            "timestamp", "2026-11-22T00:00:00Z", "printJobId", "j1", "orderId",
                            order_id, "lineItemId", "li1");
    char *data = json_dumps(env, JSON_COMPACT);
    dead_data(f, queue, id, data, "order unknown", now);
    free(data);
    json_decref(env);
}

/* Job id with an event envelope of `tenant` (NULL: none) about order o1, failed for good
 * with `reason`. */
static void dead(f3test_bus *f, const char *queue, const char *id, const char *tenant,
                 const char *reason, int64_t now)
{
    char data[512];
    if (tenant)
        snprintf(data, sizeof data,
                 "{\"eventId\":\"%s\",\"eventType\":\"print-job.completed\",\"source\":"
                 "\"print-service\",\"tenantId\":\"%s\",\"timestamp\":\"2026-11-22T00:00:00Z\","
                 "\"printJobId\":\"j1\",\"orderId\":\"o1\",\"lineItemId\":\"li1\"}",
                 id, tenant);
    else
        snprintf(data, sizeof data, "{}");
    dead_data(f, queue, id, data, reason, now);
}

static int scan(f3test_bus *f, int64_t now)
{
    deadletter *w = deadletter_new(f->d, f->s);
    assert_non_null(w);
    err e = {0};
    int alerted = -1;
    if (deadletter_scan(w, now, &alerted, &e) != 0)
        fail_msg("deadletter_scan: %s", e.msg);
    deadletter_free(w);
    return alerted;
}

static int64_t alerts(f3test_bus *f)
{
    return f3test_bus_count(f->d,
                            "SELECT COUNT(*) FROM event_log WHERE tenant_id = '" TENANT "'"
                            " AND event_type = $1 AND message LIKE '%EVENT_DEAD_LETTERED%'",
                            NOTIFY_ALERT_EVENT);
}

static int64_t mails(f3test_bus *f)
{
    return f3test_bus_count(f->d,
                            "SELECT COUNT(*) FROM retry_queue WHERE job_type = 'NOTIFICATION'"
                            " AND payload LIKE $1",
                            "%EVENT_DEAD_LETTERED%");
}

static void test_one_alert_per_failure(void **state)
{
    f3test_bus *f = *state;
    int64_t now = clock_now_ms();
    dead(f, Q, "ev-1", TENANT, "order o1 is locked by a migration", now);
    assert_int_equal(scan(f, now + 10), 1);
    assert_int_equal(alerts(f), 1);
    assert_int_equal(mails(f), 1);
    /* The alert names the order (with its number), the event, the queue and the error. */
    assert_int_equal(f3test_bus_count(f->d,
                                      "SELECT COUNT(*) FROM event_log WHERE order_id = 'o1'"
                                      " AND print_job_id = 'j1' AND severity = 'ERROR'"
                                      " AND metadata LIKE $1",
                                      "%\"orderNumber\":\"#1001\"%"),
                     1);
    assert_int_equal(f3test_bus_count(f->d,
                                      "SELECT COUNT(*) FROM retry_queue WHERE payload LIKE $1",
                                      "%locked by a migration%"),
                     1);
    assert_int_equal(
        f3test_bus_count(f->d, "SELECT COUNT(*) FROM retry_queue WHERE payload LIKE $1", "%" Q "%"),
        1);
    /* Scanned again, by this watch or another: nothing new. */
    assert_int_equal(scan(f, now + 20), 0);
    assert_int_equal(alerts(f), 1);
    /* Retried by an operator, failed again: alerted again. */
    err e = {0};
    int64_t moved = 0;
    assert_int_equal(bus_store_retry(f->s, Q, "ev-1", now + 30, &moved, &e), 0);
    assert_int_equal(moved, 1);
    bus_job **jobs = NULL;
    size_t n = 0;
    assert_int_equal(bus_store_claim(f->s, Q, 1, "tok2", 30000, now + 40, &jobs, &n, &e), 0);
    assert_int_equal(n, 1);
    bus_jobs_free(jobs, n);
    assert_int_equal(bus_store_fail(f->s, NULL, Q, "ev-1", "tok2", "still locked",
                                    BUS_FAIL_PERMANENT, now + 50, NULL, &e),
                     0);
    assert_int_equal(scan(f, now + 60), 1);
    assert_int_equal(alerts(f), 2);
}

static void test_jobs_without_a_known_tenant_or_too_old_are_not_mailed(void **state)
{
    f3test_bus *f = *state;
    int64_t now = clock_now_ms();
    dead(f, "notify.daily-summary@order-service", "tick-1", NULL, "smtp down", now);
    dead(f, Q, "ev-ghost", "t-deleted", "no such tenant", now);
    assert_int_equal(scan(f, now + 10), 0);
    assert_int_equal(mails(f), 0);
    /* Both are remembered: the next scan does not look at them again. */
    assert_int_equal(f3test_bus_count(f->d, "SELECT COUNT(*) FROM bus_dead_letter_alerts", NULL),
                     2);
    /* A failure older than the lookback is history, not news. */
    dead(f, Q, "ev-old", TENANT, "long ago", now);
    assert_int_equal(scan(f, now + DEADLETTER_LOOKBACK_MS + 1000), 0);
    assert_int_equal(alerts(f), 0);
    /* Remembered rows go after a week. */
    assert_int_equal(scan(f, now + DEADLETTER_KEEP_MS + 1000), 0);
    assert_int_equal(f3test_bus_count(f->d, "SELECT COUNT(*) FROM bus_dead_letter_alerts", NULL),
                     0);
}

static void test_a_storm_is_capped_per_tenant_and_hour(void **state)
{
    f3test_bus *f = *state;
    int64_t now = clock_now_ms();
    int storm = DEADLETTER_ALERTS_PER_HOUR + 5;
    char id[32];
    for (int i = 0; i < storm; i++) {
        snprintf(id, sizeof id, "ev-%02d", i);
        dead(f, Q, id, TENANT, "printer farm offline", now + i);
    }
    /* The allowance of single alerts, then one storm alert for the rest. */
    assert_int_equal(scan(f, now + 100), DEADLETTER_ALERTS_PER_HOUR + 1);
    assert_int_equal(alerts(f), DEADLETTER_ALERTS_PER_HOUR + 1);
    assert_int_equal(f3test_bus_count(f->d,
                                      "SELECT COUNT(*) FROM retry_queue WHERE payload LIKE $1",
                                      "%\"events\":5%"),
                     1);
    assert_int_equal(f3test_bus_count(f->d, "SELECT COUNT(*) FROM bus_dead_letter_alerts", NULL),
                     storm);
    /* The storm goes on within the hour: held, nothing mailed. */
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "ev-late-%d", i);
        dead(f, Q, id, TENANT, "printer farm offline", now + 1000 + i);
    }
    assert_int_equal(scan(f, now + 2000), 0);
    assert_int_equal(f3test_bus_count(f->d,
                                      "SELECT COUNT(*) FROM bus_dead_letter_alerts"
                                      " WHERE kind = $1",
                                      "HELD"),
                     3);
    /* An hour after the storm alert, the held ones come as the next one. */
    assert_int_equal(scan(f, now + 3600 * 1000 + 200), 1);
    assert_int_equal(f3test_bus_count(f->d,
                                      "SELECT COUNT(*) FROM retry_queue WHERE payload LIKE $1",
                                      "%\"events\":3%"),
                     1);
    assert_int_equal(alerts(f), DEADLETTER_ALERTS_PER_HOUR + 2);
}

/* A job left unrecorded by an earlier scan (its alert could not be written then) is dealt
 * with by the next, however many newer jobs were dealt with above it. */
static void test_an_old_job_left_over_is_found_again(void **state)
{
    f3test_bus *f = *state;
    int64_t now = clock_now_ms();
    char id[32];
    for (int i = 0; i < 130; i++) {
        snprintf(id, sizeof id, "ev-%03d", i);
        dead(f, Q, id, TENANT, "boom", now + i);
    }
    scan(f, now + 1000);
    assert_int_equal(f3test_bus_count(f->d, "SELECT COUNT(*) FROM bus_dead_letter_alerts", NULL),
                     130);
    f3test_bus_exec(f->d, "DELETE FROM bus_dead_letter_alerts WHERE job_id = 'ev-000'");
    scan(f, now + 2000);
    assert_int_equal(
        f3test_bus_count(f->d, "SELECT COUNT(*) FROM bus_dead_letter_alerts WHERE job_id = $1",
                         "ev-000"),
        1);
}

/* What a job says is checked before it goes into an alert: an error cut in the middle of
 * a UTF-8 sequence, bytes that are not UTF-8, an order id far too long for an id. None of
 * them stops the scan; an older healthy job in the same queue is alerted too. */
static void test_bad_job_data_never_stops_the_scan(void **state)
{
    f3test_bus *f = *state;
    int64_t now = clock_now_ms();
    dead(f, Q, "ev-healthy", TENANT, "boom", now);
    char reason[400];
    memset(reason, 'a', 299);
    snprintf(reason + 299, sizeof reason - 299, "\xc3\xa9 and more");
    dead(f, Q, "ev-cut", TENANT, reason, now + 1);
    dead(f, Q, "ev-bytes", TENANT, "bad \xff\xfe bytes", now + 2);
    char *huge = malloc(20001);
    assert_non_null(huge);
    memset(huge, 'x', 20000);
    huge[20000] = '\0';
    dead_with_order(f, Q, "ev-huge", huge, now + 3);
    free(huge);
    assert_int_equal(scan(f, now + 10), 4);
    assert_int_equal(alerts(f), 4);
    assert_int_equal(f3test_bus_count(f->d,
                                      "SELECT COUNT(*) FROM retry_queue WHERE payload LIKE $1",
                                      "%aaa...%"),
                     1);
    assert_int_equal(f3test_bus_count(f->d,
                                      "SELECT COUNT(*) FROM retry_queue WHERE payload LIKE $1",
                                      "%bad ?? bytes%"),
                     1);
}

/* The platform's way: a repeatable job on a bus runs the scan. */
static void test_the_scan_runs_as_a_repeatable_job(void **state)
{
    f3test_bus *f = *state;
    dead(f, Q, "ev-r", TENANT, "boom", clock_now_ms());
    err e = {0};
    bus_worker_opts wo = {.poll_ms = 20, .repeat_interval_ms = 20};
    bus *b = bus_new_with(f->d, f->s, BUS_SVC_ORDER, &wo, &e);
    assert_non_null(b);
    deadletter *w = deadletter_new(f->d, f->s);
    assert_non_null(w);
    assert_int_equal(deadletter_schedule(w, b, &e), 0);
    /* The first tick is up to a minute away: make it due now. */
    f3test_bus_exec(f->d, "UPDATE bus_repeatables SET next_run_at = 0");
    assert_int_equal(bus_start(b, &e), 0);
    int64_t end = clock_mono_ms() + 20000;
    while (alerts(f) == 0 && clock_mono_ms() < end)
        f3test_sleep_ms(20);
    bus_free(b);
    deadletter_free(w);
    assert_int_equal(alerts(f), 1);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    log_set_level(getenv("F3_TEST_LOG") ? LOG_DEBUG : LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_alert_per_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_without_a_known_tenant_or_too_old_are_not_mailed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_storm_is_capped_per_tenant_and_hour, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_job_data_never_stops_the_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_old_job_left_over_is_found_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_scan_runs_as_a_repeatable_job, setup, teardown),
    };
    return cmocka_run_group_tests_name(backend, tests, NULL, NULL);
}
