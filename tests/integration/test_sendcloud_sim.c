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

typedef struct received {
    int verified;      /* signature and payload both good */
    int64_t status_id; /* -1 when the payload did not parse */
} received;

static received got[MAX_RECEIVED]; /* kept by env.hook (answered deliveries only) */

static f3test_sim_env env;

static int h_webhook(http_request *req, http_response *res, void *ctx)
{
    size_t len = 0;
    const char *body = http_req_body(req, &len);
    sendcloud_status_event ev;
    err e;
    int ok = sendcloud_webhook_verify("sec", body, len,
                                      http_req_header(req, SENDCLOUD_HEADER_SIGNATURE)) == 0;
    int parsed = sendcloud_webhook_parse(body, len, &ev, &e) == 0;
    int status = f3test_receiver_status(ctx);
    if (status == 200)
        f3test_receiver_keep(ctx, &(received){ok && parsed, parsed ? ev.status_id : -1});
    return f3test_receiver_reply(res, status);
}

static int received_count(void)
{
    return f3test_receiver_wait(&env.hook, 0, 0);
}

static bool wait_received(int n)
{
    return f3test_receiver_wait(&env.hook, n, 10000) >= n;
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
    if (f3test_receiver_start(&env.hook, "/hook", h_webhook, got, sizeof got[0], MAX_RECEIVED))
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
    int rc = f3test_sim_env_stop(&env);
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
    pthread_mutex_lock(&env.hook.lock);
    env.hook.fail_next = 1;
    pthread_mutex_unlock(&env.hook.lock);
    json_decref(control("/_sim/advance", "{}"));
    assert_true(wait_received(2));
    assert_true(got[0].verified && got[1].verified);
    assert_int_equal(got[0].status_id, 1000);
    assert_int_equal(got[1].status_id, 3);
    json_t *d = control("/_sim/deliveries", NULL);
    json_t *second = json_array_get(json_object_get(d, "deliveries"), 1);
    assert_int_equal(json_integer_value(json_object_get(second, "attempts")), 2);
    json_decref(d);

    /* Dropped webhooks are logged, not sent. */
    json_decref(control("/_sim/config", "{\"drop_webhooks\": 1}"));
    json_decref(control("/_sim/advance", "{}"));
    f3test_sleep_ms(300);
    assert_int_equal(received_count(), 2);
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
