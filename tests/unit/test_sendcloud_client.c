/*
 * test_sendcloud_client.c - the Sendcloud client against the Sendcloud simulator run
 * in-process: v3 announce (and its 409 idempotency), v2 parcels, reading, cancelling
 * before and after handover, the label PDF, error classification (429 + Retry-After,
 * 5xx, timeouts, 4xx with both error bodies, 401), plus the webhook signature (Sendcloud's
 * published test vector), the payload parser and the status table.
 */
#include "support/f3test.h"

#include "core/buf.h"
#include "core/json.h"
#include "http/client.h"
#include "integrations/sendcloud/client.h"
#include "sim/sendcloud/sim.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct fixture {
    sendcloud_sim *sim;
    char base[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    err e;
    sendcloud_sim_opts o = {.public_key = "pub", .secret_key = "sec", .step_ms = -1};
    f->sim = sendcloud_sim_start(&o, &e);
    if (!f->sim) {
        fprintf(stderr, "sim: %s\n", e.msg);
        free(f);
        return -1;
    }
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", sendcloud_sim_port(f->sim));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sendcloud_sim_stop(f->sim);
    free(f);
    return 0;
}

/* POSTs a control request to the simulator; returns the parsed answer (caller decrefs). */
static json_t *control(fixture *f, const char *path, const char *body_json)
{
    char url[128];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    json_t *body = body_json ? json_loads(body_json, 0, NULL) : NULL, *out = NULL;
    http_client_response rs;
    err e;
    int rc = http_client_json(body ? "POST" : "GET", url, NULL, body, 5000, &out, &rs, &e);
    http_client_response_free(&rs);
    json_decref(body);
    if (rc)
        fail_msg("control %s: %s", path, e.msg);
    return out;
}

static sendcloud_client *client(fixture *f, const char *version, const char *secret,
                                long timeout_ms)
{
    err e;
    sendcloud_client_opts o = {.base_url = f->base,
                               .public_key = "pub",
                               .secret_key = secret,
                               .api_version = version,
                               .timeout_ms = timeout_ms};
    sendcloud_client *c = sendcloud_client_new(&o, &e);
    if (!c)
        fail_msg("client: %s", e.msg);
    return c;
}

static sendcloud_shipment_request request(const char *ref)
{
    return (sendcloud_shipment_request){
        .external_reference = ref,
        .order_number = "#1001",
        .to = {.name = "Ada Lovelace",
               .address_line_1 = "Keizersgracht",
               .house_number = "1",
               .postal_code = "1015 CJ",
               .city = "Amsterdam",
               .country_code = "NL",
               .email = "ada@example.com"},
        .shipping_option_code = "postnl:standard",
        .weight_grams = 1320,
        .total_minor = 5490,
        .currency_exponent = 2,
        .currency = "EUR",
    };
}

static void reset(fixture *f)
{
    json_decref(control(f, "/_sim/reset", "{}"));
}

static int64_t stat_of(fixture *f, const char *name)
{
    json_t *st = control(f, "/_sim/stats", NULL);
    int64_t n = json_integer_value(json_object_get(json_object_get(st, "requests"), name));
    json_decref(st);
    return n;
}

static void test_v3_announce_and_idempotency(void **state)
{
    fixture *f = *state;
    reset(f);
    sendcloud_client *c = client(f, "v3", "sec", 0);
    sendcloud_shipment_request rq = request("order-1");
    sendcloud_shipment s1, s2;
    sendcloud_call call;
    err e;
    assert_int_equal(sendcloud_create_shipment(c, &rq, &s1, &call, &e), 0);
    assert_int_equal(call.status, 201);
    assert_false(s1.existing);
    assert_non_null(s1.shipment_id);
    assert_true(s1.parcel_id > 0);
    assert_string_equal(s1.status, SENDCLOUD_STATUS_READY);
    assert_string_equal(s1.carrier, "postnl");
    assert_non_null(s1.tracking_number);
    assert_non_null(strstr(s1.tracking_url, s1.tracking_number));
    assert_string_equal(s1.external_reference, "order-1");

    /* The same external reference again: 409 with the existing shipment = success. */
    assert_int_equal(sendcloud_create_shipment(c, &rq, &s2, &call, &e), 0);
    assert_int_equal(call.status, 409);
    assert_true(s2.existing);
    assert_string_equal(s2.shipment_id, s1.shipment_id);
    assert_int_equal(s2.parcel_id, s1.parcel_id);
    json_t *parcels = control(f, "/_sim/parcels", NULL);
    assert_int_equal(json_array_size(json_object_get(parcels, "parcels")), 1);
    json_decref(parcels);

    sendcloud_shipment got;
    assert_int_equal(sendcloud_get_shipment(c, s1.shipment_id, &got, &call, &e), 0);
    assert_string_equal(got.tracking_number, s1.tracking_number);
    sendcloud_shipment_free(&got);
    assert_int_equal(sendcloud_get_shipment(c, "no-such-shipment", &got, &call, &e), F3_ENOTFOUND);
    assert_int_equal(sendcloud_get_shipment(c, "../etc", &got, &call, &e), F3_EINVAL);

    sendcloud_shipment_free(&s1);
    sendcloud_shipment_free(&s2);
    sendcloud_client_free(c);
}

/* Every xref entry must point at "N 0 obj" and startxref at "xref". */
static void assert_pdf_structure(const buf *pdf)
{
    assert_true(pdf->len > 100);
    assert_memory_equal(pdf->data, "%PDF-1.4", 8);
    const char *sx = strstr(pdf->data, "startxref\n");
    assert_non_null(sx);
    size_t xref = strtoul(sx + 10, NULL, 10);
    assert_true(xref < pdf->len);
    assert_memory_equal(pdf->data + xref, "xref\n0 6\n", 9);
    const char *entry = pdf->data + xref + 9 + 20; /* skip the free entry */
    for (int i = 1; i < 6; i++, entry += 20) {
        size_t off = strtoul(entry, NULL, 10);
        char want[24];
        snprintf(want, sizeof want, "%d 0 obj", i);
        assert_true(off < pdf->len);
        assert_memory_equal(pdf->data + off, want, strlen(want));
    }
    assert_non_null(strstr(pdf->data + xref, "%%EOF"));
}

static void test_label_pdf(void **state)
{
    fixture *f = *state;
    reset(f);
    sendcloud_client *c = client(f, "v3", "sec", 0);
    sendcloud_shipment_request rq = request("order-label");
    sendcloud_shipment s;
    err e;
    assert_int_equal(sendcloud_create_shipment(c, &rq, &s, NULL, &e), 0);
    buf pdf;
    buf_init(&pdf, 0);
    assert_int_equal(sendcloud_get_label(c, s.parcel_id, &pdf, NULL, &e), 0);
    assert_pdf_structure(&pdf);
    assert_non_null(strstr(pdf.data, s.tracking_number));
    buf_free(&pdf);
    assert_int_equal(sendcloud_get_label(c, 999, &pdf, NULL, &e), F3_ENOTFOUND);

    /* Text that would break a PDF string is escaped. */
    const char *lines[] = {"(evil) \\ name", NULL};
    assert_int_equal(sendcloud_sim_label_pdf("dhl", "TN1", lines, &pdf), 0);
    assert_pdf_structure(&pdf);
    assert_non_null(strstr(pdf.data, "\\(evil\\) \\\\ name"));
    buf_free(&pdf);
    sendcloud_shipment_free(&s);
    sendcloud_client_free(c);
}

static void test_cancel_before_and_after_handover(void **state)
{
    fixture *f = *state;
    reset(f);
    for (int v = 0; v < 2; v++) {
        sendcloud_client *c = client(f, v ? "v2" : "v3", "sec", 0);
        sendcloud_shipment_request a = request(v ? "v2-a" : "v3-a");
        sendcloud_shipment_request b = request(v ? "v2-b" : "v3-b");
        sendcloud_shipment sa, sb;
        sendcloud_cancel_result res = 0;
        err e;
        assert_int_equal(sendcloud_create_shipment(c, &a, &sa, NULL, &e), 0);
        assert_int_equal(sendcloud_create_shipment(c, &b, &sb, NULL, &e), 0);
        assert_int_equal(sendcloud_cancel_shipment(c, sa.shipment_id, &res, NULL, &e), 0);
        assert_int_equal(res, SENDCLOUD_CANCELLED);
        sendcloud_shipment got;
        assert_int_equal(sendcloud_get_shipment(c, sa.shipment_id, &got, NULL, &e), 0);
        assert_string_equal(got.status, SENDCLOUD_STATUS_CANCELLED);
        sendcloud_shipment_free(&got);
        /* Cancelled already: refused. */
        assert_int_equal(sendcloud_cancel_shipment(c, sa.shipment_id, &res, NULL, &e),
                         F3_ECONFLICT);

        char body[64];
        snprintf(body, sizeof body, "{\"parcel_id\": %lld}", (long long)sb.parcel_id);
        json_decref(control(f, "/_sim/advance", body));
        assert_int_equal(sendcloud_get_shipment(c, sb.shipment_id, &got, NULL, &e), 0);
        assert_string_equal(got.status, SENDCLOUD_STATUS_IN_TRANSIT);
        assert_true(sendcloud_status_handed_over(got.status));
        sendcloud_shipment_free(&got);
        assert_int_equal(sendcloud_cancel_shipment(c, sb.shipment_id, &res, NULL, &e),
                         F3_ECONFLICT);
        sendcloud_shipment_free(&sa);
        sendcloud_shipment_free(&sb);
        sendcloud_client_free(c);
    }
}

static void test_v2_parcels(void **state)
{
    fixture *f = *state;
    reset(f);
    sendcloud_client *c = client(f, "v2", "sec", 0);
    assert_int_equal(sendcloud_client_version(c), SENDCLOUD_API_V2);
    sendcloud_shipment_request rq = request("order-v2");
    rq.shipping_method_id = 8;
    sendcloud_shipment s, again;
    sendcloud_call call;
    err e;
    assert_int_equal(sendcloud_create_shipment(c, &rq, &s, &call, &e), 0);
    assert_int_equal(call.status, 200);
    assert_int_equal(s.status_id, 1000);
    assert_string_equal(s.status, SENDCLOUD_STATUS_READY);
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)s.parcel_id);
    assert_string_equal(s.shipment_id, id);
    assert_int_equal(sendcloud_create_shipment(c, &rq, &again, &call, &e), 0);
    assert_true(again.existing);
    assert_int_equal(again.parcel_id, s.parcel_id);
    json_t *parcels = control(f, "/_sim/parcels", NULL);
    json_t *p = json_object_get(json_array_get(json_object_get(parcels, "parcels"), 0), "parcel");
    assert_string_equal(json_string_value(json_object_get(p, "weight")), "1.320");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "shipment"), "id")), 8);
    json_decref(parcels);
    buf pdf;
    buf_init(&pdf, 0);
    assert_int_equal(sendcloud_get_label(c, s.parcel_id, &pdf, NULL, &e), 0);
    assert_pdf_structure(&pdf);
    buf_free(&pdf);
    int count = 0;
    assert_int_equal(sendcloud_check_credentials(c, &count, NULL, &e), 0);
    assert_true(count > 10);
    sendcloud_shipment_free(&s);
    sendcloud_shipment_free(&again);
    sendcloud_client_free(c);
}

static void test_error_classification(void **state)
{
    fixture *f = *state;
    reset(f);
    sendcloud_client *c = client(f, "v3", "sec", 500);
    sendcloud_shipment_request rq = request("order-err");
    sendcloud_shipment s;
    sendcloud_call call;
    err e;

    json_decref(control(f, "/_sim/faults", "{\"kind\": \"429\", \"retry_after\": 7}"));
    assert_int_equal(sendcloud_create_shipment(c, &rq, &s, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.status, 429);
    assert_int_equal(call.failure, HTTP_TRANSIENT);
    assert_int_equal(call.retry_after_ms, 7000);
    sendcloud_shipment_free(&s);

    json_decref(control(f, "/_sim/faults", "{\"kind\": \"502\"}"));
    assert_int_equal(sendcloud_create_shipment(c, &rq, &s, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.status, 502);
    sendcloud_shipment_free(&s);

    json_decref(control(f, "/_sim/faults", "{\"kind\": \"timeout\", \"delay_ms\": 1500}"));
    assert_int_equal(sendcloud_create_shipment(c, &rq, &s, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.status, 0);
    sendcloud_shipment_free(&s);

    json_decref(control(f, "/_sim/faults", "{\"kind\": \"422\"}"));
    assert_int_equal(sendcloud_create_shipment(c, &rq, &s, &call, &e), F3_EPERMANENT);
    assert_int_equal(call.failure, HTTP_PERMANENT);
    assert_non_null(strstr(e.msg, "postal_code is invalid")); /* v3 errors[].detail */
    sendcloud_shipment_free(&s);

    /* A real validation error of the simulator (no country) never leaves the client. */
    rq.to.country_code = "Netherlands";
    assert_int_equal(sendcloud_create_shipment(c, &rq, &s, &call, &e), F3_EINVAL);
    sendcloud_shipment_free(&s);
    sendcloud_client_free(c);

    /* v2 error body, and wrong credentials. */
    c = client(f, "v2", "sec", 0);
    json_decref(control(f, "/_sim/faults", "{\"kind\": \"400\"}"));
    rq = request("order-err2");
    assert_int_equal(sendcloud_create_shipment(c, &rq, &s, &call, &e), F3_EPERMANENT);
    assert_non_null(strstr(e.msg, "postal_code is invalid")); /* v2 error.message */
    sendcloud_shipment_free(&s);
    sendcloud_client_free(c);

    /* Configured latency: slower than the client's timeout is a transient failure. */
    json_decref(control(f, "/_sim/config", "{\"latency_ms\": 800}"));
    c = client(f, "v3", "sec", 300);
    assert_int_equal(sendcloud_check_credentials(c, NULL, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.status, 0);
    sendcloud_client_free(c);
    json_decref(control(f, "/_sim/config", "{\"latency_ms\": 0}"));

    c = client(f, "v3", "wrong", 0);
    assert_int_equal(sendcloud_check_credentials(c, NULL, &call, &e), F3_EPERMANENT);
    assert_int_equal(call.status, 401);
    assert_non_null(strstr(e.msg, "credentials rejected"));
    assert_null(strstr(e.msg, "wrong"));
    sendcloud_client_free(c);
    assert_int_equal(stat_of(f, "v3.announce"), 4);
}

static void test_client_options(void **state)
{
    (void)state;
    err e;
    sendcloud_client_opts o = {.public_key = "p", .secret_key = "s"};
    sendcloud_client *c = sendcloud_client_new(&o, &e);
    assert_non_null(c);
    assert_int_equal(sendcloud_client_version(c), SENDCLOUD_API_V3);
    sendcloud_client_free(c);
    o.api_version = "v4";
    assert_null(sendcloud_client_new(&o, &e));
    assert_non_null(strstr(e.msg, "SENDCLOUD_API_VERSION"));
    o.api_version = "v2";
    o.base_url = "ftp://x";
    assert_null(sendcloud_client_new(&o, &e));
    o.base_url = NULL;
    o.secret_key = "";
    assert_null(sendcloud_client_new(&o, &e));
    assert_int_equal(sendcloud_api_version_parse("V2"), SENDCLOUD_API_V2);
    assert_int_equal(sendcloud_api_version_parse(NULL), SENDCLOUD_API_V3);
    assert_int_equal(sendcloud_api_version_parse("x"), -1);
}

static void test_webhook_signature(void **state)
{
    (void)state;
    const char *body = "{\"key\": \"value\"}";
    const char *vector = "1eed4b3d41f4653ac64fd56f1bf1cbfd349e4482cbc11dff7134bd93e5da4b0a";
    buf sig;
    buf_init(&sig, 0);
    assert_int_equal(sendcloud_webhook_sign("secretkey", body, strlen(body), &sig), 0);
    assert_string_equal(buf_cstr(&sig), vector);
    buf_free(&sig);
    assert_int_equal(sendcloud_webhook_verify("secretkey", body, strlen(body), vector), 0);
    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] = (char)(vector[i] >= 'a' && vector[i] <= 'f' ? vector[i] - 32 : vector[i]);
    assert_int_equal(sendcloud_webhook_verify("secretkey", body, strlen(body), upper), 0);
    assert_int_equal(sendcloud_webhook_verify("other", body, strlen(body), vector), F3_EINVAL);
    assert_int_equal(sendcloud_webhook_verify("secretkey", body, strlen(body) - 1, vector),
                     F3_EINVAL);
    assert_int_equal(sendcloud_webhook_verify("secretkey", body, strlen(body), NULL), F3_EINVAL);
    assert_int_equal(sendcloud_webhook_verify("secretkey", body, strlen(body), "abc"), F3_EINVAL);
    assert_int_equal(sendcloud_webhook_verify(NULL, body, strlen(body), vector), F3_EINVAL);
}

static void test_webhook_parse_and_statuses(void **state)
{
    (void)state;
    const char *body =
        "{\"action\": \"parcel_status_changed\", \"timestamp\": 1773498123000,"
        " \"parcel\": {\"id\": 301234567, \"tracking_number\": \"3SABCD\","
        " \"status\": {\"id\": 11, \"message\": \"Delivered\"}, \"carrier\": {\"code\": "
        "\"postnl\"}, \"external_reference\": \"order-9\"}}";
    sendcloud_status_event ev;
    err e;
    assert_int_equal(sendcloud_webhook_parse(body, strlen(body), &ev, &e), 0);
    assert_string_equal(ev.action, SENDCLOUD_ACTION_PARCEL);
    assert_int_equal(ev.parcel_id, 301234567);
    assert_int_equal(ev.status_id, 11);
    assert_string_equal(ev.status, SENDCLOUD_STATUS_DELIVERED);
    assert_string_equal(ev.external_reference, "order-9");
    assert_int_equal(ev.timestamp_ms, 1773498123000LL);
    char key[96];
    sendcloud_webhook_dedupe_key(&ev, key);
    assert_string_equal(key, "301234567:11:1773498123000");

    const char *secs = "{\"action\":\"parcel_status_changed\",\"timestamp\":1773498123,"
                       "\"parcel\":{\"id\":5,\"status\":{\"id\":3}}}";
    assert_int_equal(sendcloud_webhook_parse(secs, strlen(secs), &ev, &e), 0);
    assert_int_equal(ev.timestamp_ms, 1773498123000LL);
    assert_string_equal(ev.status, SENDCLOUD_STATUS_IN_TRANSIT);

    const char *other = "{\"action\":\"integration_updated\",\"timestamp\":1}";
    assert_int_equal(sendcloud_webhook_parse(other, strlen(other), &ev, &e), 0);
    assert_string_equal(ev.action, "integration_updated");
    assert_int_equal(ev.parcel_id, 0);

    static const char string_id[] = "{\"action\":\"parcel_status_changed\",\"parcel\":"
                                    "{\"id\":\"x\",\"status\":{\"id\":1}}}";
    const char *bad[] = {"", "[]", "{\"action\":1}",
                         "{\"action\":\"parcel_status_changed\",\"parcel\":{\"id\":5}}", string_id};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (sendcloud_webhook_parse(bad[i], strlen(bad[i]), &ev, &e) != F3_EINVAL)
            fail_msg("accepted: %s", bad[i]);
    assert_non_null(strstr(e.msg, "parcel.id"));

    assert_string_equal(sendcloud_status_from_id(1000), SENDCLOUD_STATUS_READY);
    assert_string_equal(sendcloud_status_from_id(92), "OUT_FOR_DELIVERY");
    assert_string_equal(sendcloud_status_from_id(2000), SENDCLOUD_STATUS_CANCELLED);
    assert_string_equal(sendcloud_status_from_id(424242), SENDCLOUD_STATUS_UNKNOWN);
    assert_string_equal(sendcloud_status_from_code("READY_TO_SEND"), SENDCLOUD_STATUS_READY);
    assert_string_equal(sendcloud_status_from_code("EN_ROUTE"), SENDCLOUD_STATUS_IN_TRANSIT);
    assert_false(sendcloud_status_handed_over(SENDCLOUD_STATUS_READY));
    assert_true(sendcloud_status_handed_over(SENDCLOUD_STATUS_DELIVERED));
    assert_true(sendcloud_status_final(SENDCLOUD_STATUS_CANCELLED));
    assert_false(sendcloud_status_final(SENDCLOUD_STATUS_IN_TRANSIT));
    assert_int_equal(sendcloud_status_id_of(SENDCLOUD_STATUS_DELIVERED), 11);
}

static void test_status_progression_over_time(void **state)
{
    fixture *f = *state;
    reset(f);
    json_decref(control(f, "/_sim/config", "{\"step_ms\": 50}"));
    sendcloud_client *c = client(f, "v3", "sec", 0);
    sendcloud_shipment_request rq = request("order-moving");
    sendcloud_shipment s;
    err e;
    assert_int_equal(sendcloud_create_shipment(c, &rq, &s, NULL, &e), 0);
    char seen[8][SENDCLOUD_STATUS_NAME_MAX];
    int n = 0;
    for (int i = 0; i < 200 && n < 8; i++) {
        sendcloud_shipment got;
        assert_int_equal(sendcloud_get_shipment(c, s.shipment_id, &got, NULL, &e), 0);
        if (n == 0 || strcmp(seen[n - 1], got.status) != 0)
            snprintf(seen[n++], sizeof seen[0], "%s", got.status);
        bool done = strcmp(got.status, SENDCLOUD_STATUS_DELIVERED) == 0;
        sendcloud_shipment_free(&got);
        if (done)
            break;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_true(n >= 2);
    assert_string_equal(seen[0], SENDCLOUD_STATUS_READY);
    assert_string_equal(seen[n - 1], SENDCLOUD_STATUS_DELIVERED);
    json_decref(control(f, "/_sim/config", "{\"step_ms\": -1}"));
    sendcloud_shipment_free(&s);
    sendcloud_client_free(c);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_options),
        cmocka_unit_test(test_webhook_signature),
        cmocka_unit_test(test_webhook_parse_and_statuses),
        cmocka_unit_test(test_v3_announce_and_idempotency),
        cmocka_unit_test(test_label_pdf),
        cmocka_unit_test(test_cancel_before_and_after_handover),
        cmocka_unit_test(test_v2_parcels),
        cmocka_unit_test(test_error_classification),
        cmocka_unit_test(test_status_progression_over_time),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
