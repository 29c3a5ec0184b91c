/*
 * test_bus_envelope.c - building events (envelope fields and their formats, the
 * correlation id from the thread's log context, validation) and parsing received
 * events (round trip, every kind of malformed input, tolerance of unknown fields).
 */
#include "support/f3test.h"

#include "bus/catalog_doc.h"
#include "bus/envelope.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    (void)state;
    log_set_correlation_id(NULL);
    return 0;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (!v)
        fail_msg("test JSON does not parse: %s: %s", jerr.text, text);
    return v;
}

static const char order_fields[] =
    "{\"orderId\":\"o-1\",\"lineItems\":[{\"lineItemId\":\"l-1\",\"productSku\":\"BOX\","
    "\"quantity\":2}]}";

/* Builds an order.created from order_fields; fails the test on error. */
static json_t *build_order(const char *correlation_id)
{
    json_t *fields = parse(order_fields);
    json_t *ev = NULL;
    err e;
    int rc = bus_envelope_build(bus_catalog_find(BUS_EV_ORDER_CREATED), BUS_SVC_ORDER, "shop-1",
                                correlation_id, fields, &ev, &e);
    if (rc != 0)
        fail_msg("build failed: %s", e.msg);
    json_decref(fields);
    return ev;
}

static char *dump(const json_t *v)
{
    buf b;
    buf_init(&b, 0);
    assert_int_equal(json_dump_buf(v, &b), 0);
    return buf_detach(&b);
}

static const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* ---- build ------------------------------------------------------------------------------- */

static void test_build_adds_every_envelope_field(void **state)
{
    (void)state;
    int64_t before = clock_now_ms() / 1000 * 1000;
    json_t *ev = build_order("corr-1");
    int64_t after = clock_now_ms();

    const char *id = str(ev, "eventId");
    assert_non_null(id);
    assert_true(uuid_valid(id));
    assert_int_equal(id[14], '4'); /* v4 */
    assert_true(strchr("89ab", id[19]) != NULL);
    assert_string_equal(str(ev, "eventType"), "order.created");
    assert_string_equal(str(ev, "source"), "order-service");
    assert_string_equal(str(ev, "tenantId"), "shop-1");
    assert_string_equal(str(ev, "correlationId"), "corr-1");

    /* "YYYY-MM-DDTHH:MM:SS.mmmZ", UTC, between the two readings of the clock */
    const char *ts = str(ev, "timestamp");
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[23], 'Z');
    int64_t ms = 0;
    assert_int_equal(clock_parse_iso(ts, &ms), 0);
    assert_true(ms >= before && ms <= after);

    /* the event's own fields at the top level, after the envelope */
    assert_string_equal(str(ev, "orderId"), "o-1");
    assert_int_equal(json_array_size(json_object_get(ev, "lineItems")), 1);
    assert_string_equal(json_object_iter_key(json_object_iter(ev)), "eventId");

    /* every envelope field the catalog documents is present */
    for (size_t i = 0; i < bus_envelope_field_count; i++)
        assert_non_null(json_object_get(ev, bus_envelope_fields[i].name));

    json_t *ev2 = build_order("corr-1");
    assert_string_not_equal(str(ev2, "eventId"), id);
    json_decref(ev2);
    json_decref(ev);
}

static void test_build_correlation_from_thread_log_context(void **state)
{
    (void)state;
    json_t *ev = build_order(NULL);
    assert_null(json_object_get(ev, "correlationId")); /* none set: left out */
    json_decref(ev);

    log_set_correlation_id("req-from-http");
    ev = build_order(NULL);
    assert_string_equal(str(ev, "correlationId"), "req-from-http");
    json_decref(ev);

    ev = build_order("explicit"); /* an explicit id wins */
    assert_string_equal(str(ev, "correlationId"), "explicit");
    json_decref(ev);
    log_set_correlation_id(NULL);
}

static void test_build_copies_fields(void **state)
{
    (void)state;
    json_t *fields = parse(order_fields);
    json_t *ev = NULL;
    assert_int_equal(bus_envelope_build(bus_catalog_find(BUS_EV_ORDER_CREATED), BUS_SVC_ORDER, "t",
                                        NULL, fields, &ev, NULL),
                     0);
    /* the caller's object is untouched and independent of the event */
    assert_null(json_object_get(fields, "eventId"));
    json_t *item = json_array_get(json_object_get(fields, "lineItems"), 0);
    json_object_set_new(item, "quantity", json_integer(99));
    json_t *ev_item = json_array_get(json_object_get(ev, "lineItems"), 0);
    assert_int_equal(json_integer_value(json_object_get(ev_item, "quantity")), 2);
    json_decref(fields);
    json_decref(ev);
}

static void expect_build_error(const bus_event_def *d, bus_service src, const char *tenant,
                               const char *fields_text, const char *message)
{
    json_t *fields = fields_text ? parse(fields_text) : json_array();
    json_t *ev = (json_t *)0x1;
    err e;
    assert_int_equal(bus_envelope_build(d, src, tenant, NULL, fields, &ev, &e), F3_EINVAL);
    assert_ptr_equal(ev, (json_t *)0x1); /* untouched */
    assert_string_equal(e.msg, message);
    json_decref(fields);
}

static void test_build_rejects_bad_input(void **state)
{
    (void)state;
    const bus_event_def *oc = bus_catalog_find(BUS_EV_ORDER_CREATED);
    expect_build_error(oc, BUS_SVC_PRINT, "t", order_fields,
                       "order.created: published by order-service, not print-service");
    expect_build_error(oc, BUS_SVC_ORDER, "", order_fields, "order.created: tenant id is empty");
    expect_build_error(oc, BUS_SVC_ORDER, NULL, order_fields, "order.created: tenant id is empty");
    expect_build_error(oc, BUS_SVC_ORDER, "t", NULL,
                       "order.created: the event's fields must be a JSON object");
    expect_build_error(oc, BUS_SVC_ORDER, "t", "{\"eventId\":\"x\",\"orderId\":\"o\"}",
                       "order.created: field 'eventId' belongs to the envelope, not the payload");
    expect_build_error(oc, BUS_SVC_ORDER, "t", "{\"lineItems\":[]}",
                       "order.created: field 'orderId' is missing");
    expect_build_error(oc, BUS_SVC_ORDER, "t",
                       "{\"orderId\":\"o\",\"lineItems\":[{\"lineItemId\":\"l\","
                       "\"productSku\":\"S\",\"quantity\":1.5}]}",
                       "order.created: field 'lineItems[0].quantity' must be an integer");
    expect_build_error(NULL, BUS_SVC_ORDER, "t", "{}", "event envelope: no event definition");
}

/* ---- parse ------------------------------------------------------------------------------- */

static void test_parse_round_trip(void **state)
{
    (void)state;
    json_t *ev = build_order("corr-9");
    char *text = dump(ev);
    bus_envelope env;
    err e;
    assert_int_equal(bus_envelope_parse(text, strlen(text), &env, &e), 0);
    assert_string_equal(env.event_id, str(ev, "eventId"));
    assert_string_equal(env.event_type, BUS_EV_ORDER_CREATED);
    assert_string_equal(env.source, "order-service");
    assert_string_equal(env.tenant_id, "shop-1");
    assert_string_equal(env.timestamp, str(ev, "timestamp"));
    assert_string_equal(env.correlation_id, "corr-9");
    assert_ptr_equal(env.def, bus_catalog_find(BUS_EV_ORDER_CREATED));
    assert_true(json_equal(env.root, ev));
    bus_envelope_release(&env);
    assert_null(env.root);
    assert_null(env.event_id);
    bus_envelope_release(&env); /* twice is harmless */
    bus_envelope_release(NULL);
    free(text);
    json_decref(ev);
}

static void test_parse_every_catalog_example(void **state)
{
    (void)state;
    for (size_t i = 0; i < bus_catalog_count; i++) {
        json_t *ex = NULL;
        assert_int_equal(bus_catalog_example(&bus_catalog[i], &ex), 0);
        char *text = dump(ex);
        bus_envelope env;
        err e;
        if (bus_envelope_parse(text, strlen(text), &env, &e) != 0)
            fail_msg("example of %s rejected: %s", bus_catalog[i].type, e.msg);
        assert_ptr_equal(env.def, &bus_catalog[i]);
        bus_envelope_release(&env);
        free(text);
        json_decref(ex);
    }
}

static const char good_event[] =
    "{\"eventId\":\"0b6f1d3e-7a52-4c1e-9d0a-3f2b8c4e5a61\",\"eventType\":\"order.cancelled\","
    "\"source\":\"order-service\",\"tenantId\":\"t1\",\"timestamp\":\"2026-11-22T08:15:30.123Z\","
    "\"orderId\":\"o-1\"}";

/* Parses good_event with `key` set to `value_json` (NULL = removed) and expects `message`
 * (NULL = success). */
static void parse_with(const char *key, const char *value_json, const char *message)
{
    json_t *ev = parse(good_event);
    if (value_json)
        json_object_set_new(ev, key, json_loads(value_json, JSON_DECODE_ANY, NULL));
    else
        json_object_del(ev, key);
    char *text = dump(ev);
    bus_envelope env;
    err e;
    err_clear(&e);
    int rc = bus_envelope_parse(text, strlen(text), &env, &e);
    if (!message && rc != 0)
        fail_msg("rejected %s: %s", text, e.msg);
    if (message) {
        if (rc != F3_EINVAL)
            fail_msg("accepted %s", text);
        if (strcmp(e.msg, message) != 0)
            fail_msg("message for %s\n  was:      %s\n  expected: %s", text, e.msg, message);
        assert_null(env.root);
        assert_null(env.def);
    }
    bus_envelope_release(&env);
    free(text);
    json_decref(ev);
}

static void test_parse_rejects_missing_envelope_fields(void **state)
{
    (void)state;
    const char *required[] = {"eventId", "eventType", "source", "tenantId", "timestamp"};
    char message[128];
    for (size_t i = 0; i < 5; i++) {
        snprintf(message, sizeof message, "event envelope: field '%s' is missing", required[i]);
        parse_with(required[i], NULL, message);
        snprintf(message, sizeof message, "event envelope: field '%s' must be a string",
                 required[i]);
        parse_with(required[i], "17", message);
        snprintf(message, sizeof message, "event envelope: field '%s' is empty", required[i]);
        parse_with(required[i], "\"\"", message);
    }
    parse_with("correlationId", NULL, NULL); /* optional */
}

static void test_parse_rejects_bad_envelope_values(void **state)
{
    (void)state;
    parse_with("eventId", "\"not-a-uuid\"",
               "event envelope: field 'eventId' must be a UUID, not 'not-a-uuid'");
    parse_with("eventId", "\"0b6f1d3e7a524c1e9d0a3f2b8c4e5a61\"",
               "event envelope: field 'eventId' must be a UUID, not "
               "'0b6f1d3e7a524c1e9d0a3f2b8c4e5a61'");
    parse_with("timestamp", "\"yesterday\"",
               "event envelope: field 'timestamp' must be an ISO-8601 date-time, not 'yesterday'");
    parse_with("timestamp", "\"2026-11-22\"",
               "event envelope: field 'timestamp' must be an ISO-8601 date-time, not '2026-11-22'");
    parse_with("timestamp", "\"2026-13-22T08:15:30Z\"",
               "event envelope: field 'timestamp' must be an ISO-8601 date-time, not "
               "'2026-13-22T08:15:30Z'");
    parse_with("timestamp", "\"2026-11-22T09:15:30.123+01:00\"", NULL); /* offsets accepted */
    parse_with("eventType", "\"order.exploded\"",
               "event envelope: unknown event type 'order.exploded'");
    parse_with("eventType", "\"printjob.completed\"", /* an internal name is not an event type */
               "event envelope: unknown event type 'printjob.completed'");
    parse_with("source", "\"billing-service\"",
               "event envelope: field 'source' names no known service: 'billing-service'");
    parse_with("correlationId", "42", "event envelope: field 'correlationId' must be a string");
    parse_with("correlationId", "null", NULL);
}

static void test_parse_rejects_invalid_payload(void **state)
{
    (void)state;
    parse_with("orderId", NULL, "order.cancelled: field 'orderId' is missing");
    parse_with("orderId", "[]", "order.cancelled: field 'orderId' must be a string");
    /* type and payload must agree: a print-job event lacks the print-job fields */
    parse_with("eventType", "\"print-job.completed\"",
               "print-job.completed: field 'printJobId' is missing");
}

static void test_parse_tolerates_unknown_fields(void **state)
{
    (void)state;
    parse_with("schemaVersion", "2", NULL);
    parse_with("extra", "{\"nested\":[1,{\"a\":null}]}", NULL);
    parse_with("traceparent", "\"00-abc-def-01\"", NULL);
}

static void test_parse_rejects_malformed_text(void **state)
{
    (void)state;
    bus_envelope env;
    err e;
    const char *bad[] = {"",         "{",    "{\"eventId\":}",   "[1,2]",
                         "\"text\"", "null", "{\"a\":1,\"a\":2}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&e);
        assert_int_equal(bus_envelope_parse(bad[i], strlen(bad[i]), &env, &e), F3_EINVAL);
        assert_null(env.root);
        assert_true(strstr(e.msg, "invalid JSON") || strstr(e.msg, "must be a JSON object"));
    }
    assert_int_equal(bus_envelope_parse(NULL, 0, &env, NULL), F3_EINVAL);
    /* trailing text after a good event */
    buf b;
    buf_init(&b, 0);
    buf_printf(&b, "%s garbage", good_event);
    assert_int_equal(bus_envelope_parse(b.data, b.len, &env, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "invalid JSON"));
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_build_adds_every_envelope_field, setup),
        cmocka_unit_test_setup(test_build_correlation_from_thread_log_context, setup),
        cmocka_unit_test_setup(test_build_copies_fields, setup),
        cmocka_unit_test_setup(test_build_rejects_bad_input, setup),
        cmocka_unit_test_setup(test_parse_round_trip, setup),
        cmocka_unit_test_setup(test_parse_every_catalog_example, setup),
        cmocka_unit_test_setup(test_parse_rejects_missing_envelope_fields, setup),
        cmocka_unit_test_setup(test_parse_rejects_bad_envelope_values, setup),
        cmocka_unit_test_setup(test_parse_rejects_invalid_payload, setup),
        cmocka_unit_test_setup(test_parse_tolerates_unknown_fields, setup),
        cmocka_unit_test_setup(test_parse_rejects_malformed_text, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
