/*
 * test_sendcloud_sim.c - the Sendcloud simulator run as its own process
 * (`f3connect sim sendcloud`): the client against it (announce, label PDF, 409), the
 * signed webhooks it sends on every status change to an in-process receiver (signature
 * verifies; retried after a 500; dropped when told), bad arguments, and a clean exit on
 * SIGTERM.
 */
#include "support/f3test.h"
#include "support/f3test_proc.h"
#include "support/f3test_sim.h"

#include "core/buf.h"
#include "core/log.h"
#include "http/client.h"
#include "http/request.h"
#include "http/response.h"
#include "http/server.h"
#include "integrations/sendcloud/client.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RECEIVED 32

static struct {
    pthread_mutex_t lock;
    int verified[MAX_RECEIVED];
    int64_t status_id[MAX_RECEIVED];
    int n;
    int fail_next;
} rx = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct {
    f3test_sim sim;
    f3test_receiver hook;
} env;

static int h_webhook(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    size_t len = 0;
    const char *body = http_req_body(req, &len);
    sendcloud_status_event ev;
    err e;
    int ok = sendcloud_webhook_verify("sec", body, len,
                                      http_req_header(req, SENDCLOUD_HEADER_SIGNATURE)) == 0;
    int parsed = sendcloud_webhook_parse(body, len, &ev, &e) == 0;
    pthread_mutex_lock(&rx.lock);
    int fail = rx.fail_next > 0;
    if (fail)
        rx.fail_next--;
    else if (rx.n < MAX_RECEIVED) {
        rx.verified[rx.n] = ok && parsed;
        rx.status_id[rx.n] = parsed ? ev.status_id : -1;
        rx.n++;
    }
    pthread_mutex_unlock(&rx.lock);
    return fail ? http_res_error(res, 500, "try later")
                : http_res_json(res, 200, json_pack("{s:b}", "ok", 1));
}

static int received(void)
{
    pthread_mutex_lock(&rx.lock);
    int n = rx.n;
    pthread_mutex_unlock(&rx.lock);
    return n;
}

static bool wait_received(int n)
{
    for (int i = 0; i < 200; i++) {
        if (received() >= n)
            return true;
        f3test_sleep_ms(50);
    }
    return false;
}

/* GET path, or POST path with body_json; the JSON answer (caller decrefs). */
static json_t *control(const char *path, const char *body_json)
{
    return f3test_sim_call(&env.sim, body_json ? "POST" : "GET", path,
                           body_json ? json_loads(body_json, 0, NULL) : NULL, 0);
}

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOG_WARN);
    http_client_init();
    if (f3test_receiver_start(&env.hook, "/hook", h_webhook, NULL))
        return -1;
    const char *args[] = {"sendcloud",  "--public-key",
                          "pub",        "--secret-key",
                          "sec",        "--webhook-url",
                          env.hook.url, "--step-ms",
                          "-1",         "--retry-base-ms",
                          "100",        "--max-retries",
                          "3",          NULL};
    return f3test_sim_start(&env.sim, args, "/_sim/health");
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = f3test_sim_stop(&env.sim);
    f3test_receiver_stop(&env.hook);
    http_client_cleanup();
    return rc;
}

static sendcloud_client *client(void)
{
    err e;
    sendcloud_client_opts o = {.base_url = env.sim.base, .public_key = "pub", .secret_key = "sec"};
    sendcloud_client *c = sendcloud_client_new(&o, &e);
    assert_non_null(c);
    return c;
}

static sendcloud_shipment_request request(const char *ref)
{
    return (sendcloud_shipment_request){.external_reference = ref,
                                        .to = {.name = "Ann Lee",
                                               .address_line_1 = "Main St 1",
                                               .postal_code = "9000",
                                               .city = "Gent",
                                               .country_code = "BE"},
                                        .weight_grams = 750,
                                        .total_minor = 2350,
                                        .currency_exponent = 2,
                                        .currency = "EUR"};
}

static void test_shipment_label_and_webhooks(void **state)
{
    (void)state;
    sendcloud_client *c = client();
    sendcloud_shipment_request rq = request("order-a");
    sendcloud_shipment s, again;
    err e;
    assert_int_equal(sendcloud_create_shipment(c, &rq, &s, NULL, &e), 0);
    assert_true(wait_received(1)); /* Ready to send */
    if (sendcloud_create_shipment(c, &rq, &again, NULL, &e) != 0)
        fail_msg("second announce: %s", e.msg);
    assert_true(again.existing);
    buf pdf;
    buf_init(&pdf, 0);
    assert_int_equal(sendcloud_get_label(c, s.parcel_id, &pdf, NULL, &e), 0);
    assert_memory_equal(pdf.data, "%PDF-1.4", 8);
    assert_non_null(strstr(pdf.data, s.tracking_number));
    buf_free(&pdf);

    /* A failed delivery is retried; each status change arrives signed. */
    pthread_mutex_lock(&rx.lock);
    rx.fail_next = 1;
    pthread_mutex_unlock(&rx.lock);
    json_decref(control("/_sim/advance", "{}"));
    assert_true(wait_received(2));
    pthread_mutex_lock(&rx.lock);
    assert_true(rx.verified[0] && rx.verified[1]);
    assert_int_equal(rx.status_id[0], 1000);
    assert_int_equal(rx.status_id[1], 3);
    pthread_mutex_unlock(&rx.lock);
    json_t *d = control("/_sim/deliveries", NULL);
    json_t *second = json_array_get(json_object_get(d, "deliveries"), 1);
    assert_int_equal(json_integer_value(json_object_get(second, "attempts")), 2);
    json_decref(d);

    /* Dropped webhooks are logged, not sent. */
    json_decref(control("/_sim/config", "{\"drop_webhooks\": 1}"));
    json_decref(control("/_sim/advance", "{}"));
    f3test_sleep_ms(300);
    assert_int_equal(received(), 2);
    d = control("/_sim/deliveries", NULL);
    json_t *third = json_array_get(json_object_get(d, "deliveries"), 2);
    assert_string_equal(json_string_value(json_object_get(third, "state")), "dropped");
    json_decref(d);

    sendcloud_shipment_free(&s);
    sendcloud_shipment_free(&again);
    sendcloud_client_free(c);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    f3test_proc p;
    const char *no_keys[] = {"sim", "sendcloud", "--port", "0", NULL};
    assert_int_equal(f3test_run(env.sim.dir, no_keys, NULL, 10000, &p), 2);
    char *err_text = f3test_slurp(p.err_path);
    assert_non_null(strstr(err_text, "--public-key"));
    free(err_text);
    const char *bad_step[] = {
        "sim", "sendcloud", "--public-key", "p", "--secret-key", "s", "--step-ms", "0", NULL};
    assert_int_equal(f3test_run(env.sim.dir, bad_step, NULL, 10000, &p), 2);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipment_label_and_webhooks),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
