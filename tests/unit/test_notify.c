/* F3_TEST: backends
 * test_notify.c - operator notifications: templates (every value HTML-escaped, one-line
 * subjects, dashboard links), alerts queued in the caller's transaction, mailed to the SMTP
 * sink through the retry queue, SMTP down then up (the alert arrives after a retry), a
 * failed retry entry ending as a mailed alert, the daily summary, and the disabled mode.
 */
#include "support/f3test.h"
#include "support/f3test_db.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/json.h"
#include "http/client.h"
#include "services/common/notify.h"
#include "services/common/retry.h"
#include "sim/smtp/sink.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

typedef struct nfx {
    f3test_dbfx *db;
    smtp_sink *sink;
    config *cfg;
    notify *n;
    retry_queue *rq;
} nfx;

static double half(void *ctx)
{
    (void)ctx;
    return 0.5;
}

/* A config pointing at the sink; `mail` false leaves SMTP_HOST unset. */
static config *make_config(int port, bool mail)
{
    config *c = config_new();
    err e = {0};
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    assert_int_equal(config_set_flag(c, "notifications-enabled", "true", &e), 0);
    assert_int_equal(config_set_flag(c, "smtp-port", p, &e), 0);
    assert_int_equal(config_set_flag(c, "smtp-user", "mailer", &e), 0);
    assert_int_equal(config_set_flag(c, "smtp-pass", "s3cret", &e), 0);
    assert_int_equal(config_set_flag(c, "smtp-from", "f3@example.com", &e), 0);
    assert_int_equal(config_set_flag(c, "operator-email", "ops@example.com", &e), 0);
    assert_int_equal(config_set_flag(c, "admin-email", "admin@example.com", &e), 0);
    assert_int_equal(config_set_flag(c, "app-url", "https://f3.example.com/", &e), 0);
    if (mail)
        assert_int_equal(config_set_flag(c, "smtp-host", "127.0.0.1", &e), 0);
    assert_int_equal(config_validate(c, &e), 0);
    return c;
}

static void open_notify(nfx *f, bool mail)
{
    f->cfg = make_config(smtp_sink_port(f->sink), mail);
    err e = {0};
    f->n = notify_new(f->cfg, f->db->d, &e);
    assert_non_null(f->n);
    retry_opts o = {.random = half};
    f->rq = retry_new(f->db->d, &o);
    assert_non_null(f->rq);
    assert_int_equal(notify_register(f->n, f->rq, &e), 0);
}

static int setup(void **state)
{
    nfx *f = calloc(1, sizeof *f);
    f->db = f3test_dbfx_open(backend, true);
    err e = {0};
    assert_int_equal(db_exec(f->db->c,
                             "INSERT INTO tenants (id, name, slug, created_at, updated_at) VALUES "
                             "('t1', 'Shop', 'shop', 0, 0), ('t2', 'Other', 'other', 0, 0)",
                             &e),
                     0);
    smtp_sink_opts so = {.http_port = -1, .user = "mailer", .pass = "s3cret"};
    f->sink = smtp_sink_start(&so, &e);
    assert_non_null(f->sink);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    nfx *f = *state;
    retry_free(f->rq);
    notify_free(f->n);
    config_free(f->cfg);
    smtp_sink_stop(f->sink);
    f3test_dbfx_close(f->db);
    free(f);
    return 0;
}

static int64_t count(nfx *f, const char *sql, const char *param)
{
    err e = {0};
    db_stmt *s = db_prepare_texts(f->db->c, sql, &param, param ? 1 : 0, &e);
    assert_non_null(s);
    assert_int_equal(db_step(s, &e), DB_ROW);
    int64_t n = db_col_int64(s, 0);
    db_finalize(s);
    return n;
}

static void alert(nfx *f, notify_kind kind, json_t *fields)
{
    err e = {0};
    assert_int_equal(db_begin(f->db->c, &e), 0);
    assert_int_equal(notify_alert(f->db->c, "t1", kind, fields, &e), 0);
    assert_int_equal(db_commit(f->db->c, &e), 0);
    json_decref(fields);
}

/* ---- templates -------------------------------------------------------------------------- */

static void test_alert_template_escapes_everything(void **state)
{
    (void)state;
    json_t *fields = json_pack("{s:s, s:s, s:s, s:s, s:i, s:b}", "message",
                               "Shopify said <b>\"no\"</b> & 'never'", "orderId", "o 1/2",
                               "orderNumber", "#1001\r\nBcc: x@example.com", "sku",
                               "<script>alert(1)</script>", "attempts", 5, "permanent", 1);
    notify_rendered r;
    err e = {0};
    assert_int_equal(notify_render_alert(NOTIFY_FULFILLMENT_FAILED, fields,
                                         "https://f3.example.com/", 1795335330000, &r, &e),
                     0);
    assert_null(strpbrk(r.subject, "\r\n"));
    assert_non_null(strstr(r.subject, "Fulfillment failed permanently"));
    assert_non_null(strstr(r.subject, "#1001  Bcc"));
    assert_null(strstr(r.html, "<script>"));
    assert_null(strstr(r.html, "<b>"));
    assert_non_null(strstr(r.html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_non_null(
        strstr(r.html, "Shopify said &lt;b&gt;&quot;no&quot;&lt;/b&gt; &amp; &#39;never&#39;"));
    assert_non_null(strstr(r.html, "href=\"https://f3.example.com/orders/o%201%2F2\""));
    assert_non_null(strstr(r.html, "2026-11-22T08:15:30.000Z"));
    assert_non_null(strstr(r.text, "Message: Shopify said <b>\"no\"</b> & 'never'\n"));
    assert_non_null(strstr(r.text, "  sku: <script>alert(1)</script>\n"));
    assert_non_null(strstr(r.text, "  attempts: 5\n"));
    assert_non_null(strstr(r.text, "  permanent: yes\n"));
    assert_non_null(strstr(r.text, "https://f3.example.com/orders/o%201%2F2"));
    notify_rendered_free(&r);
    /* Each kind has its own title; an unknown kind is refused. */
    for (int k = 0; k < NOTIFY_KIND_COUNT; k++) {
        assert_int_equal(notify_render_alert((notify_kind)k, NULL, NULL, 1, &r, &e), 0);
        for (int j = 0; j < k; j++) {
            notify_rendered other;
            assert_int_equal(notify_render_alert((notify_kind)j, NULL, NULL, 1, &other, &e), 0);
            assert_string_not_equal(r.subject, other.subject);
            notify_rendered_free(&other);
        }
        assert_null(strstr(r.html, "href="));
        notify_rendered_free(&r);
    }
    assert_int_equal(notify_render_alert(NOTIFY_KIND_COUNT, NULL, NULL, 1, &r, &e), F3_EINVAL);
    json_t *arr = json_array();
    assert_int_equal(notify_render_alert(NOTIFY_PRINT_JOB_FAILED, arr, NULL, 1, &r, &e), F3_EINVAL);
    json_decref(arr);
    json_decref(fields);
    assert_int_equal(notify_kind_parse("CANCELLATION_NEEDS_REVIEW"), NOTIFY_CANCELLATION_REVIEW);
    assert_int_equal(notify_kind_parse("nope"), -1);
}

static void test_summary_template(void **state)
{
    (void)state;
    json_t *s = json_pack("{s:I, s:I, s:{s:i, s:i}, s:i, s:{s:i, s:i}, s:i}", "since",
                          (json_int_t)1795248930000, "until", (json_int_t)1795335330000,
                          "ordersByStatus", "COMPLETED", 4, "<FAILED>", 1, "ordersTotal", 5,
                          "failures", "printJobs", 2, "retryEntries", 3, "pendingReviews", 6);
    json_object_set_new(json_object_get(s, "failures"), "deadLetteredEvents", json_integer(7));
    notify_rendered r;
    err e = {0};
    assert_int_equal(notify_render_summary(s, "https://f3.example.com", &r, &e), 0);
    assert_string_equal(r.subject, "[Forma3D.Connect] Daily summary for 2026-11-22");
    assert_non_null(strstr(r.text, "COMPLETED"));
    assert_non_null(strstr(r.text, "Print jobs failed"));
    assert_non_null(strstr(r.html, "&lt;FAILED&gt;"));
    assert_null(strstr(r.html, "<FAILED>"));
    assert_non_null(strstr(r.html, ">6</td>"));
    assert_non_null(strstr(r.text, "Events set aside"));
    assert_non_null(strstr(r.html, ">7</td>"));
    notify_rendered_free(&r);
    json_t *bad = json_string("x");
    assert_int_equal(notify_render_summary(bad, NULL, &r, &e), F3_EINVAL);
    json_decref(bad);
    json_decref(s);
}

/* ---- queueing and sending --------------------------------------------------------------- */

static void test_alert_is_queued_in_the_callers_transaction(void **state)
{
    nfx *f = *state;
    err e = {0};
    assert_int_equal(db_begin(f->db->c, &e), 0);
    json_t *sku = json_pack("{s:s}", "sku", "CUBE-1");
    assert_int_equal(notify_alert(f->db->c, "t1", NOTIFY_UNMAPPED_SKU, sku, &e), 0);
    json_decref(sku);
    assert_int_equal(db_rollback(f->db->c, &e), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE tenant_id = $1", "t1"), 0);
    alert(f, NOTIFY_UNMAPPED_SKU, json_pack("{s:s, s:s}", "sku", "CUBE-1", "orderId", "o1"));
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM retry_queue WHERE job_type = $1 "
                           "AND max_attempts = 12 AND payload LIKE '%UNMAPPED_SKU%'",
                           "NOTIFICATION"),
                     1);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM event_log WHERE event_type = $1 "
                           "AND order_id = 'o1' AND severity = 'WARNING'",
                           NOTIFY_ALERT_EVENT),
                     1);
    assert_int_equal(notify_alert(f->db->c, "t1", NOTIFY_KIND_COUNT, NULL, &e), F3_EINVAL);
    assert_int_equal(notify_alert(f->db->c, "", NOTIFY_UNMAPPED_SKU, NULL, &e), F3_EINVAL);
    assert_int_equal(notify_alert(NULL, "t1", NOTIFY_UNMAPPED_SKU, NULL, &e), F3_EINVAL);
    json_t *arr = json_array();
    assert_int_equal(notify_alert(f->db->c, "t1", NOTIFY_UNMAPPED_SKU, arr, &e), F3_EINVAL);
    json_decref(arr);
}

/* Every alert about an order names its Shopify order number, looked up in the alert's
 * tenant only; one given by the caller is kept. */
static void test_alert_names_the_order_number(void **state)
{
    nfx *f = *state;
    err e = {0};
    assert_int_equal(db_exec(f->db->c,
                             "INSERT INTO orders (id, tenant_id, shopify_order_id,"
                             " shopify_order_number, status, customer_name, created_at, updated_at)"
                             " VALUES ('o7', 't1', 's7', '#1007', 'PENDING', 'A', 0, 0),"
                             " ('o8', 't2', 's8', '#1008', 'PENDING', 'B', 0, 0)",
                             &e),
                     0);
    alert(f, NOTIFY_FULFILLMENT_FAILED, json_pack("{s:s, s:s}", "message", "no", "orderId", "o7"));
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE payload LIKE $1",
                           "%\"orderNumber\":\"#1007\"%"),
                     1);
    alert(f, NOTIFY_PRINT_JOB_FAILED, json_pack("{s:s, s:s}", "message", "no", "orderId", "o8"));
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE payload LIKE $1", "%#1008%"),
                     0);
    alert(f, NOTIFY_PRINT_JOB_FAILED,
          json_pack("{s:s, s:s, s:s}", "message", "no", "orderId", "o7", "orderNumber", "#X"));
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE payload LIKE $1", "%#X%"), 1);
}

static void test_alert_is_mailed_to_the_operator(void **state)
{
    nfx *f = *state;
    open_notify(f, true);
    assert_true(notify_enabled(f->n));
    alert(f, NOTIFY_PRINT_JOB_FAILED,
          json_pack("{s:s, s:s}", "message", "Nozzle clog", "printJobId", "pj-9"));
    err e = {0};
    int ran = 0;
    assert_int_equal(retry_process_due(f->rq, 0, 0, &ran, &e), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(smtp_sink_count(f->sink), 1);
    smtp_sink_msg m;
    assert_int_equal(smtp_sink_get(f->sink, 0, &m), 0);
    assert_string_equal(m.from, "f3@example.com");
    assert_int_equal(m.nto, 1);
    assert_string_equal(m.to[0], "ops@example.com");
    assert_string_equal(m.auth_user, "mailer");
    assert_non_null(strstr(m.data, "Subject: [Forma3D.Connect] Print job failed"));
    assert_non_null(strstr(m.data, "Nozzle clog"));
    assert_non_null(strstr(m.data, "multipart/alternative"));
    smtp_sink_msg_free(&m);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE status = $1", "COMPLETED"),
                     1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", NOTIFY_SENT_EVENT), 1);
}

/* With credentials, a server that is not this machine must offer STARTTLS: the sink does
 * not, so the password is never sent: a configuration error, not retried. (The sink
 * listens on 127.0.0.2, which counts as another machine here: only 127.0.0.1, ::1 and
 * localhost are exempt.) */
static void test_credentials_never_cross_in_clear(void **state)
{
    nfx *f = *state;
    err e = {0};
    smtp_sink_opts so = {.host = "127.0.0.2", .http_port = -1, .user = "mailer", .pass = "s3cret"};
    smtp_sink *remote = smtp_sink_start(&so, &e);
    assert_non_null(remote);
    f->cfg = make_config(smtp_sink_port(remote), true);
    assert_int_equal(config_set_flag(f->cfg, "smtp-host", "127.0.0.2", &e), 0);
    f->n = notify_new(f->cfg, f->db->d, &e);
    retry_opts o = {.random = half};
    f->rq = retry_new(f->db->d, &o);
    assert_int_equal(notify_register(f->n, f->rq, &e), 0);
    alert(f, NOTIFY_PRINT_JOB_FAILED, json_pack("{s:s}", "message", "Nozzle clog"));
    int ran = 0;
    assert_int_equal(retry_process_due(f->rq, 0, 0, &ran, &e), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(smtp_sink_count(remote), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE status = $1", "FAILED"), 1);
    smtp_sink_stop(remote);
}

static void test_smtp_down_then_up_delivers_after_retry(void **state)
{
    nfx *f = *state;
    open_notify(f, true);
    err e = {0};
    assert_int_equal(smtp_sink_set_mode(f->sink, SMTP_SINK_REFUSE, &e), 0);
    alert(f, NOTIFY_CANCELLATION_REVIEW,
          json_pack("{s:s, s:s}", "message", "2 parts printing", "orderNumber", "#1002"));
    int64_t t0 = clock_now_ms();
    int ran = 0;
    assert_int_equal(retry_process_due(f->rq, t0, 0, &ran, &e), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE status = $1", "PENDING"), 1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM retry_queue WHERE last_error LIKE $1", "%smtp 127.0.0.1%"),
        1);
    assert_int_equal(smtp_sink_count(f->sink), 0);
    /* Still down at the next attempt; then the server is back. */
    assert_int_equal(smtp_sink_set_mode(f->sink, SMTP_SINK_TEMPFAIL, &e), 0);
    assert_int_equal(retry_process_due(f->rq, t0 + 60000, 1, &ran, &e), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE last_error LIKE $1", "%451%"),
                     1);
    assert_int_equal(smtp_sink_set_mode(f->sink, SMTP_SINK_ACCEPT, &e), 0);
    assert_int_equal(retry_process_due(f->rq, t0 + 120000, 1, &ran, &e), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(smtp_sink_count(f->sink), 1);
    smtp_sink_msg m;
    assert_int_equal(smtp_sink_get(f->sink, 0, &m), 0);
    assert_non_null(strstr(m.data, "Cancellation needs review - order #1002"));
    smtp_sink_msg_free(&m);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE status = $1", "COMPLETED"),
                     1);
}

static int always_permanent(const retry_entry *en, void *ctx, err *e)
{
    (void)en;
    (void)ctx;
    return err_set(e, F3_EPERMANENT, "Shopify answered 422: fulfillment order closed");
}

static void test_failed_retry_entry_becomes_a_mailed_alert(void **state)
{
    nfx *f = *state;
    open_notify(f, true);
    err e = {0};
    assert_int_equal(retry_register(f->rq, RETRY_FULFILLMENT, always_permanent, NULL, &e), 0);
    json_t *p = json_pack("{s:s}", "orderId", "o-77");
    assert_int_equal(db_begin(f->db->c, &e), 0);
    retry_enqueue_opts o = {
        .tenant_id = "t1", .type = RETRY_FULFILLMENT, .payload = p, .delay_ms = 0};
    assert_int_equal(retry_enqueue_with(f->db->c, &o, NULL, &e), 0);
    assert_int_equal(db_commit(f->db->c, &e), 0);
    json_decref(p);
    int ran = 0;
    assert_int_equal(retry_process_due(f->rq, 0, 0, &ran, &e), 0);
    assert_int_equal(ran, 2); /* the fulfilment, then the alert it raised */
    assert_int_equal(smtp_sink_count(f->sink), 1);
    smtp_sink_msg m;
    assert_int_equal(smtp_sink_get(f->sink, 0, &m), 0);
    assert_non_null(strstr(m.data, "Retries exhausted"));
    assert_non_null(strstr(m.data, "fulfillment order closed"));
    smtp_sink_msg_free(&m);
}

static void test_daily_summary(void **state)
{
    nfx *f = *state;
    open_notify(f, true);
    err e = {0};
    int64_t now = clock_now_ms();
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number, status, "
             "customer_name, review_reason, created_at, updated_at) VALUES "
             "('o1', 't1', 's1', '#1', 'COMPLETED', 'A', NULL, %lld, %lld), "
             "('o2', 't1', 's2', '#2', 'COMPLETED', 'B', NULL, %lld, %lld), "
             "('o3', 't1', 's3', '#3', 'CANCELLED', 'C', 'printing', %lld, %lld), "
             "('o4', 't1', 's4', '#4', 'PENDING', 'D', NULL, %lld, %lld), "
             "('o5', 't2', 's5', '#5', 'PENDING', 'E', NULL, %lld, %lld)",
             (long long)now - 1000, (long long)now, (long long)now - 2000, (long long)now,
             (long long)now - 3000, (long long)now, (long long)now - 3 * 86400000LL, (long long)now,
             (long long)now - 1000, (long long)now);
    assert_int_equal(db_exec(f->db->c, sql, &e), 0);
    snprintf(sql, sizeof sql,
             "INSERT INTO bus_dead_letter_alerts (queue, job_id, finished_at, tenant_id, kind,"
             " alerted_at) VALUES ('q@order-service', 'ev1', %lld, 't1', 'ALERTED', %lld),"
             " ('q@order-service', 'ev2', %lld, 't1', 'HELD', %lld),"
             " ('q@order-service', 'ev3', %lld, 't2', 'ALERTED', %lld),"
             " ('q@order-service', 'ev4', %lld, 't1', 'STORM', %lld)",
             (long long)now - 500, (long long)now, (long long)now - 400, (long long)now,
             (long long)now - 300, (long long)now, (long long)now - 2 * 86400000LL, (long long)now);
    assert_int_equal(db_exec(f->db->c, sql, &e), 0);
    json_t *s = NULL;
    assert_int_equal(notify_summary_of(f->db->c, "t1", now - 86400000, now + 1, &s, &e), 0);
    int64_t dead = -1;
    assert_int_equal(json_get_int(s, "failures.deadLetteredEvents", &dead, &e), 0);
    assert_int_equal(dead, 2); /* ev3 is another tenant's, ev4 failed two days ago */
    int64_t v = -1;
    assert_int_equal(json_get_int(s, "ordersByStatus.COMPLETED", &v, &e), 0);
    assert_int_equal(v, 2);
    assert_int_equal(json_get_int(s, "ordersTotal", &v, &e), 0);
    assert_int_equal(v, 3); /* o4 is older than 24 h, o5 is another tenant's */
    assert_int_equal(json_get_int(s, "pendingReviews", &v, &e), 0);
    assert_int_equal(v, 1);
    json_decref(s);
    int queued = 0;
    assert_int_equal(notify_queue_summaries(f->db->d, now + 1, &queued, &e), 0);
    assert_int_equal(queued, 2);
    int ran = 0;
    assert_int_equal(retry_process_due(f->rq, now + 1, 0, &ran, &e), 0);
    assert_int_equal(ran, 2);
    assert_int_equal(smtp_sink_count(f->sink), 2);
    smtp_sink_msg m;
    assert_int_equal(smtp_sink_get(f->sink, 0, &m), 0);
    assert_string_equal(m.to[0], "admin@example.com");
    assert_non_null(strstr(m.data, "Daily summary for"));
    smtp_sink_msg_free(&m);
}

static void test_disabled_mode_keeps_alerts_in_the_event_log(void **state)
{
    nfx *f = *state;
    open_notify(f, false); /* no SMTP_HOST */
    assert_false(notify_enabled(f->n));
    alert(f, NOTIFY_FULFILLMENT_FAILED, json_pack("{s:s}", "message", "422"));
    err e = {0};
    int ran = 0;
    assert_int_equal(retry_process_due(f->rq, 0, 0, &ran, &e), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(smtp_sink_count(f->sink), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM retry_queue WHERE status = $1", "COMPLETED"),
                     1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", NOTIFY_ALERT_EVENT), 1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", NOTIFY_SENT_EVENT), 0);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    http_client_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alert_template_escapes_everything),
        cmocka_unit_test(test_summary_template),
        cmocka_unit_test_setup_teardown(test_alert_is_queued_in_the_callers_transaction, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_alert_names_the_order_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alert_is_mailed_to_the_operator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credentials_never_cross_in_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_down_then_up_delivers_after_retry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_retry_entry_becomes_a_mailed_alert, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_daily_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_mode_keeps_alerts_in_the_event_log, setup,
                                        teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    http_client_cleanup();
    return rc;
}
