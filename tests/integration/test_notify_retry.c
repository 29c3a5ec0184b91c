/* F3_TEST: backends
 * test_notify_retry.c - the retry processor and operator e-mail wired the way the platform
 * wires them (retry_schedule and notify_schedule_summary on the order service's bus, the
 * repeatable job ticking, the SMTP sink as the mail server): an alert raised while SMTP
 * is down is retried and arrives once SMTP is back; the repeatables are declared once per
 * queue; a job type without a handler here stays untouched; an alert committed by this
 * process is sent by the wake-up without waiting for a tick.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"

#include "bus/bus.h"
#include "core/config.h"
#include "core/json.h"
#include "http/client.h"
#include "services/common/notify.h"
#include "services/common/retry.h"
#include "sim/smtp/sink.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 20000

static const char *backend;

static struct {
    f3test_bus tb;
    smtp_sink *sink;
    config *cfg;
    bus *b;
    retry_queue *rq;
    notify *n;
} env;

static const bus_worker_opts fast = {
    .poll_ms = 50, .stalled_interval_ms = -1, .repeat_interval_ms = 100, .trim_interval_ms = -1};

static int64_t count(const char *sql, const char *param)
{
    return f3test_bus_count(env.tb.d, sql, param);
}

static config *sink_config(int port)
{
    config *c = config_new();
    err e = {0};
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    const char *flags[][2] = {{"notifications-enabled", "true"},
                              {"smtp-host", "127.0.0.1"},
                              {"smtp-port", p},
                              {"smtp-from", "f3@example.com"},
                              {"operator-email", "ops@example.com"}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        assert_int_equal(config_set_flag(c, flags[i][0], flags[i][1], &e), 0);
    assert_int_equal(config_validate(c, &e), 0);
    return c;
}

/* interval_ms of the processor's repeatable job. */
static int setup_with(int64_t interval_ms)
{
    memset(&env, 0, sizeof env);
    f3test_bus_new(&env.tb, backend);
    f3test_bus_exec(env.tb.d, "INSERT INTO tenants (id, name, slug, created_at, updated_at) "
                              "VALUES ('t1', 'Shop', 'shop', 0, 0)");
    err e = {0};
    smtp_sink_opts so = {.http_port = -1};
    env.sink = smtp_sink_start(&so, &e);
    assert_non_null(env.sink);
    env.cfg = sink_config(smtp_sink_port(env.sink));
    env.b = bus_new_with(env.tb.d, env.tb.s, BUS_SVC_ORDER, &fast, &e);
    assert_non_null(env.b);
    env.rq = retry_new(env.tb.d, NULL);
    env.n = notify_new(env.cfg, env.tb.d, &e);
    assert_non_null(env.rq);
    assert_non_null(env.n);
    assert_int_equal(notify_register(env.n, env.rq, &e), 0);
    assert_int_equal(retry_schedule(env.rq, env.b, env.tb.s, interval_ms, &e), 0);
    assert_int_equal(notify_schedule_summary(env.n, env.b, env.tb.s, &e), 0);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return setup_with(200);
}

/* A tick so rare (weekly, on multiples of a week since the epoch) that none falls in a test. */
static int setup_no_ticks(void **state)
{
    (void)state;
    return setup_with(7 * 24 * 3600 * 1000LL);
}

static int teardown(void **state)
{
    (void)state;
    retry_stop(env.rq);
    bus_free(env.b);
    retry_free(env.rq);
    notify_free(env.n);
    config_free(env.cfg);
    smtp_sink_stop(env.sink);
    f3test_bus_drop(&env.tb);
    return 0;
}

static int64_t wait_count(const char *sql, const char *param, int64_t want)
{
    int64_t n = -1;
    for (int i = 0; i < WAIT_MS / 50; i++) {
        n = count(sql, param);
        if (n == want)
            break;
        f3test_sleep_ms(50);
    }
    return n;
}

static void test_alert_arrives_after_smtp_comes_back(void **state)
{
    (void)state;
    err e = {0};
    assert_int_equal(smtp_sink_set_mode(env.sink, SMTP_SINK_REFUSE, &e), 0);
    db_conn *c = db_acquire(env.tb.d, &e);
    assert_non_null(c);
    json_t *fields = json_pack("{s:s, s:s}", "message", "Label API down", "orderId", "o-5");
    assert_int_equal(db_begin(c, &e), 0);
    assert_int_equal(notify_alert(c, "t1", NOTIFY_FULFILLMENT_FAILED, fields, &e), 0);
    assert_int_equal(db_commit(c, &e), 0);
    json_decref(fields);
    /* A FULFILLMENT entry: no handler in this process, so it must stay PENDING. */
    json_t *p = json_pack("{s:s}", "orderId", "o-5");
    assert_int_equal(db_begin(c, &e), 0);
    retry_enqueue_opts o = {
        .tenant_id = "t1", .type = RETRY_FULFILLMENT, .payload = p, .delay_ms = 0};
    assert_int_equal(retry_enqueue_with(c, &o, NULL, &e), 0);
    assert_int_equal(db_commit(c, &e), 0);
    json_decref(p);
    db_release(c);
    assert_int_equal(bus_start(env.b, &e), 0);

    /* The repeatable job tries, SMTP refuses: the entry waits with the error kept. */
    assert_int_equal(wait_count("SELECT COUNT(*) FROM retry_queue WHERE job_type = $1 AND "
                                "status = 'PENDING' AND attempts >= 1",
                                "NOTIFICATION", 1),
                     1);
    assert_int_equal(smtp_sink_count(env.sink), 0);
    assert_int_equal(smtp_sink_set_mode(env.sink, SMTP_SINK_ACCEPT, &e), 0);
    assert_true(smtp_sink_wait(env.sink, 1, WAIT_MS));
    smtp_sink_msg m;
    assert_int_equal(smtp_sink_get(env.sink, 0, &m), 0);
    assert_string_equal(m.to[0], "ops@example.com");
    assert_non_null(strstr(m.data, "Fulfillment failed permanently"));
    assert_non_null(strstr(m.data, "Label API down"));
    smtp_sink_msg_free(&m);
    assert_int_equal(wait_count("SELECT COUNT(*) FROM retry_queue WHERE job_type = $1 AND "
                                "status = 'COMPLETED'",
                                "NOTIFICATION", 1),
                     1);
    assert_int_equal(count("SELECT COUNT(*) FROM retry_queue WHERE job_type = $1 AND "
                           "status = 'PENDING' AND attempts = 0",
                           "FULFILLMENT"),
                     1);
    assert_int_equal(bus_drain(env.b, 10000), 0);
    /* Exactly one mail, however many ticks ran. */
    assert_int_equal(smtp_sink_count(env.sink), 1);
    assert_int_equal(count("SELECT COUNT(*) FROM bus_repeatables WHERE queue = $1",
                           "retry.process@order-service"),
                     1);
    assert_int_equal(count("SELECT COUNT(*) FROM bus_repeatables WHERE queue = $1",
                           "notify.daily-summary@order-service"),
                     1);
}

static void test_local_enqueue_wakes_the_processor(void **state)
{
    (void)state;
    err e = {0};
    assert_int_equal(bus_start(env.b, &e), 0);
    db_conn *c = db_acquire(env.tb.d, &e);
    assert_non_null(c);
    json_t *fields = json_pack("{s:s}", "sku", "LAMP-9");
    assert_int_equal(db_begin(c, &e), 0);
    assert_int_equal(notify_alert(c, "t1", NOTIFY_UNMAPPED_SKU, fields, &e), 0);
    assert_int_equal(db_commit(c, &e), 0);
    json_decref(fields);
    db_release(c);
    /* No tick is due for a week: only the wake-up can have sent it. */
    assert_true(smtp_sink_wait(env.sink, 1, WAIT_MS));
    smtp_sink_msg m;
    assert_int_equal(smtp_sink_get(env.sink, 0, &m), 0);
    assert_non_null(strstr(m.data, "LAMP-9"));
    smtp_sink_msg_free(&m);
    assert_int_equal(
        count("SELECT COUNT(*) FROM bus_jobs WHERE queue = $1", "retry.process@order-service"), 0);
    assert_int_equal(bus_drain(env.b, 10000), 0);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    http_client_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alert_arrives_after_smtp_comes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_enqueue_wakes_the_processor, setup_no_ticks,
                                        teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    http_client_cleanup();
    return rc;
}
