/*
 * test_bus_catalog.c - the event catalog: table sanity against seed 000, name
 * translation, queue names, payload validation with field paths, the generated docs,
 * and the rule that no event name is spelled as a literal outside catalog.h.
 */
#include "support/f3test.h"

#include "bus/catalog.h"
#include "bus/catalog_doc.h"
#include "core/buf.h"
#include "core/str.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- what seed 000 says, written out independently of the tables ---------------------- */

typedef struct expected_sub {
    bus_service service;
    const char *internal_name;
} expected_sub;

typedef struct expected_event {
    const char *type;
    bus_service publisher;
    const char *publisher_internal; /* NULL = direct publish */
    size_t n_subs;
    expected_sub subs[2];
} expected_event;

static const expected_event seed_events[] = {
    {BUS_EV_ORDER_CREATED,
     BUS_SVC_ORDER,
     BUS_IEV_ORDER_CREATED,
     1,
     {{BUS_SVC_PRINT, BUS_IEV_ORDER_CREATED}}},
    {BUS_EV_ORDER_READY_FOR_FULFILLMENT,
     BUS_SVC_ORDER,
     BUS_IEV_ORDER_READY_FOR_FULFILLMENT,
     1,
     {{BUS_SVC_SHIPPING, BUS_IEV_ORCHESTRATION_ORDER_READY_FOR_FULFILLMENT}}},
    {BUS_EV_ORDER_CANCELLED,
     BUS_SVC_ORDER,
     BUS_IEV_ORDER_CANCELLED,
     2,
     {{BUS_SVC_PRINT, BUS_IEV_ORDER_CANCELLED}, {BUS_SVC_SHIPPING, BUS_IEV_ORDER_CANCELLED}}},
    {BUS_EV_PRINT_JOB_COMPLETED,
     BUS_SVC_PRINT,
     BUS_IEV_PRINTJOB_COMPLETED,
     1,
     {{BUS_SVC_ORDER, BUS_IEV_PRINTJOB_COMPLETED}}},
    {BUS_EV_PRINT_JOB_FAILED,
     BUS_SVC_PRINT,
     BUS_IEV_PRINTJOB_FAILED,
     1,
     {{BUS_SVC_ORDER, BUS_IEV_PRINTJOB_FAILED}}},
    {BUS_EV_PRINT_JOB_STATUS_CHANGED,
     BUS_SVC_PRINT,
     BUS_IEV_PRINTJOB_STATUS_CHANGED,
     1,
     {{BUS_SVC_ORDER, BUS_IEV_PRINTJOB_STATUS_CHANGED}}},
    {BUS_EV_PRINT_JOB_CANCELLED,
     BUS_SVC_PRINT,
     BUS_IEV_PRINTJOB_CANCELLED,
     1,
     {{BUS_SVC_ORDER, BUS_IEV_PRINTJOB_CANCELLED}}},
    {BUS_EV_SHIPMENT_CREATED,
     BUS_SVC_SHIPPING,
     BUS_IEV_SHIPMENT_CREATED,
     1,
     {{BUS_SVC_ORDER, BUS_IEV_SHIPMENT_CREATED}}},
    {BUS_EV_SHIPMENT_STATUS_CHANGED,
     BUS_SVC_SHIPPING,
     BUS_IEV_SENDCLOUD_SHIPMENT_STATUS_CHANGED,
     1,
     {{BUS_SVC_ORDER, BUS_IEV_SHIPMENT_STATUS_CHANGED}}},
    {BUS_EV_GRIDFLOCK_MAPPING_READY,
     BUS_SVC_GRIDFLOCK,
     BUS_IEV_GRIDFLOCK_MAPPING_READY,
     1,
     {{BUS_SVC_ORDER, BUS_IEV_GRIDFLOCK_MAPPING_READY}}},
    {BUS_EV_GRIDFLOCK_PIPELINE_FAILED,
     BUS_SVC_GRIDFLOCK,
     BUS_IEV_GRIDFLOCK_PIPELINE_FAILED,
     1,
     {{BUS_SVC_ORDER, BUS_IEV_GRIDFLOCK_PIPELINE_FAILED}}},
    {BUS_EV_STOCK_REPLENISHMENT_SCHEDULED,
     BUS_SVC_ORDER,
     NULL,
     1,
     {{BUS_SVC_PRINT, BUS_IEV_STOCK_REPLENISHMENT_SCHEDULED}}},
    {BUS_EV_STOCK_BATCH_COMPLETED, BUS_SVC_ORDER, NULL, 0, {{0}}},
    {BUS_EV_INTEGRATION_SIMPLYPRINT_CHANGED,
     BUS_SVC_PRINT,
     NULL,
     1,
     {{BUS_SVC_ORDER, BUS_IEV_INTEGRATION_SIMPLYPRINT_CHANGED}}},
    {BUS_EV_INTEGRATION_SENDCLOUD_CHANGED,
     BUS_SVC_SHIPPING,
     NULL,
     1,
     {{BUS_SVC_ORDER, BUS_IEV_INTEGRATION_SENDCLOUD_CHANGED}}},
};

#define N_SEED (sizeof seed_events / sizeof seed_events[0])

/* Every internal name macro, with a service that declares it. */
static const struct {
    bus_service service;
    const char *name;
} seed_internal[] = {
    {BUS_SVC_ORDER, BUS_IEV_ORDER_CREATED},
    {BUS_SVC_ORDER, BUS_IEV_ORDER_STATUS_CHANGED},
    {BUS_SVC_ORDER, BUS_IEV_ORDER_CANCELLED},
    {BUS_SVC_ORDER, BUS_IEV_ORDER_READY_FOR_FULFILLMENT},
    {BUS_SVC_ORDER, BUS_IEV_ORDER_FULFILLED},
    {BUS_SVC_ORDER, BUS_IEV_ORDER_FAILED},
    {BUS_SVC_ORDER, BUS_IEV_ORDER_PARTIALLY_COMPLETED},
    {BUS_SVC_ORDER, BUS_IEV_ORDER_ALL_JOBS_FAILED},
    {BUS_SVC_ORDER, BUS_IEV_PRINTJOB_CREATED},
    {BUS_SVC_ORDER, BUS_IEV_PRINTJOB_STATUS_CHANGED},
    {BUS_SVC_ORDER, BUS_IEV_PRINTJOB_COMPLETED},
    {BUS_SVC_ORDER, BUS_IEV_PRINTJOB_FAILED},
    {BUS_SVC_ORDER, BUS_IEV_PRINTJOB_CANCELLED},
    {BUS_SVC_ORDER, BUS_IEV_PRINTJOB_RETRY_REQUESTED},
    {BUS_SVC_ORDER, BUS_IEV_SHIPMENT_CREATED},
    {BUS_SVC_ORDER, BUS_IEV_SHIPMENT_LABEL_READY},
    {BUS_SVC_ORDER, BUS_IEV_SHIPMENT_FAILED},
    {BUS_SVC_ORDER, BUS_IEV_SHIPMENT_UPDATED},
    {BUS_SVC_ORDER, BUS_IEV_SHIPMENT_STATUS_CHANGED},
    {BUS_SVC_ORDER, BUS_IEV_FULFILLMENT_CREATED},
    {BUS_SVC_ORDER, BUS_IEV_FULFILLMENT_FAILED},
    {BUS_SVC_ORDER, BUS_IEV_FULFILLMENT_RETRYING},
    {BUS_SVC_ORDER, BUS_IEV_GRIDFLOCK_MAPPING_READY},
    {BUS_SVC_ORDER, BUS_IEV_GRIDFLOCK_PIPELINE_FAILED},
    {BUS_SVC_ORDER, BUS_IEV_INTEGRATION_SIMPLYPRINT_CHANGED},
    {BUS_SVC_ORDER, BUS_IEV_INTEGRATION_SENDCLOUD_CHANGED},
    {BUS_SVC_PRINT, BUS_IEV_PRINTJOB_CREATED},
    {BUS_SVC_PRINT, BUS_IEV_PRINTJOB_STATUS_CHANGED},
    {BUS_SVC_PRINT, BUS_IEV_PRINTJOB_COMPLETED},
    {BUS_SVC_PRINT, BUS_IEV_PRINTJOB_FAILED},
    {BUS_SVC_PRINT, BUS_IEV_PRINTJOB_CANCELLED},
    {BUS_SVC_PRINT, BUS_IEV_PRINTJOB_RETRY_REQUESTED},
    {BUS_SVC_PRINT, BUS_IEV_SIMPLYPRINT_JOB_STATUS_CHANGED},
    {BUS_SVC_PRINT, BUS_IEV_FULFILLMENT_FAILED},
    {BUS_SVC_PRINT, BUS_IEV_ORDER_CREATED},
    {BUS_SVC_PRINT, BUS_IEV_ORDER_CANCELLED},
    {BUS_SVC_PRINT, BUS_IEV_STOCK_REPLENISHMENT_SCHEDULED},
    {BUS_SVC_SHIPPING, BUS_IEV_SHIPMENT_CREATED},
    {BUS_SVC_SHIPPING, BUS_IEV_SHIPMENT_LABEL_READY},
    {BUS_SVC_SHIPPING, BUS_IEV_SHIPMENT_FAILED},
    {BUS_SVC_SHIPPING, BUS_IEV_SHIPMENT_UPDATED},
    {BUS_SVC_SHIPPING, BUS_IEV_SENDCLOUD_SHIPMENT_STATUS_CHANGED},
    {BUS_SVC_SHIPPING, BUS_IEV_ORCHESTRATION_ORDER_READY_FOR_FULFILLMENT},
    {BUS_SVC_SHIPPING, BUS_IEV_ORDER_CANCELLED},
    {BUS_SVC_SHIPPING, BUS_IEV_FULFILLMENT_COMPLETED},
    {BUS_SVC_SHIPPING, BUS_IEV_FULFILLMENT_FAILED},
    {BUS_SVC_GRIDFLOCK, BUS_IEV_GRIDFLOCK_MAPPING_READY},
    {BUS_SVC_GRIDFLOCK, BUS_IEV_GRIDFLOCK_PIPELINE_FAILED},
};

#define N_SEED_INTERNAL (sizeof seed_internal / sizeof seed_internal[0])

/* ---- helpers ----------------------------------------------------------------------------- */

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (!v)
        fail_msg("test JSON does not parse: %s: %s", jerr.text, text);
    return v;
}

/* Validates `text` as an event of `type`; returns the status and leaves the message in e. */
static int validate(const char *type, const char *text, err *e)
{
    const bus_event_def *d = bus_catalog_find(type);
    assert_non_null(d);
    json_t *ev = parse(text);
    err_clear(e);
    int rc = bus_catalog_validate_payload(d, ev, e);
    json_decref(ev);
    return rc;
}

static void expect_invalid(const char *type, const char *text, const char *message)
{
    err e;
    int rc = validate(type, text, &e);
    if (rc != F3_EINVAL)
        fail_msg("accepted invalid %s payload: %s", type, text);
    if (strcmp(e.msg, message) != 0)
        fail_msg("message for %s\n  was:      %s\n  expected: %s", text, e.msg, message);
}

static void expect_valid(const char *type, const char *text)
{
    err e;
    if (validate(type, text, &e) != 0)
        fail_msg("rejected valid %s payload: %s: %s", type, text, e.msg);
}

static void check_fields_documented(const char *type, const bus_field *fields, size_t n)
{
    if (!fields) {
        fail_msg("%s: no field table", type);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const bus_field *f = &fields[i];
        if (!f->name || !*f->name || !f->doc || !*f->doc) {
            fail_msg("%s: field %zu lacks a name or doc", type, i);
            return;
        }
        for (size_t j = 0; j < i; j++)
            if (str_eq(fields[j].name, f->name))
                fail_msg("%s: field '%s' declared twice", type, f->name);
        if (f->type == BUS_FIELD_ENUM && (!f->choices || !f->choices[0]))
            fail_msg("%s: enum field '%s' has no choices", type, f->name);
        if (f->type == BUS_FIELD_ARRAY || f->type == BUS_FIELD_OBJECT) {
            if (!f->items || f->item_count == 0)
                fail_msg("%s: field '%s' has no item fields", type, f->name);
            check_fields_documented(type, f->items, f->item_count);
        }
        if (f->example) {
            json_t *ex = json_loads(f->example, JSON_DECODE_ANY, NULL);
            if (!ex)
                fail_msg("%s: example of '%s' is not JSON", type, f->name);
            json_decref(ex);
        }
    }
}

/* ---- table sanity ------------------------------------------------------------------------ */

static void test_catalog_matches_seed(void **state)
{
    (void)state;
    assert_int_equal(bus_catalog_count, 15);
    assert_int_equal(N_SEED, 15);
    for (size_t i = 0; i < N_SEED; i++) {
        const expected_event *x = &seed_events[i];
        const bus_event_def *d = bus_catalog_find(x->type);
        if (!d) {
            fail_msg("event %s missing from the catalog", x->type);
            return;
        }
        assert_string_equal(d->type, x->type);
        assert_int_equal(d->version, 1);
        assert_true(d->summary && *d->summary && d->group && *d->group);
        assert_int_equal(d->publisher, x->publisher);
        if (x->publisher_internal)
            assert_string_equal(d->publisher_internal, x->publisher_internal);
        else
            assert_null(d->publisher_internal);
        assert_int_equal(bus_event_subscriber_count(d), x->n_subs);
        for (size_t s = 0; s < x->n_subs; s++) {
            assert_int_equal(bus_event_subscriber(d, s), x->subs[s].service);
            assert_string_equal(bus_event_subscriber_internal_name(d, s), x->subs[s].internal_name);
            assert_true(d->subscribers[s].handling && *d->subscribers[s].handling);
        }
        assert_true(d->field_count > 0);
        check_fields_documented(d->type, d->fields, d->field_count);
    }
}

static void test_catalog_is_consistent(void **state)
{
    (void)state;
    for (size_t i = 0; i < bus_catalog_count; i++) {
        const bus_event_def *d = &bus_catalog[i];
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(bus_catalog[j].type, d->type);
        assert_true(d->publisher != BUS_SVC_GATEWAY && d->publisher < BUS_SERVICE_COUNT);
        /* The publisher bridges from an event its service declares. */
        if (d->publisher_internal && !bus_internal_event_find(d->publisher, d->publisher_internal))
            fail_msg("%s: %s does not declare internal %s", d->type, bus_service_name(d->publisher),
                     d->publisher_internal);
        for (size_t s = 0; s < d->subscriber_count; s++) {
            bus_service svc = d->subscribers[s].service;
            assert_true(svc != d->publisher && svc != BUS_SVC_GATEWAY);
            for (size_t t = 0; t < s; t++)
                assert_true(d->subscribers[t].service != svc);
            if (!bus_internal_event_find(svc, bus_event_subscriber_internal_name(d, s)))
                fail_msg("%s: subscriber %s does not declare internal %s", d->type,
                         bus_service_name(svc), bus_event_subscriber_internal_name(d, s));
        }
    }
    /* The envelope table is seed 000's ServiceEvent. */
    const char *envelope[] = {"eventId",  "eventType", "source",
                              "tenantId", "timestamp", "correlationId"};
    assert_int_equal(bus_envelope_field_count, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(bus_envelope_fields[i].name, envelope[i]);
        assert_int_equal(bus_envelope_fields[i].required, i < 5);
    }
}

static void test_internal_events(void **state)
{
    (void)state;
    for (size_t i = 0; i < bus_internal_event_count; i++) {
        const bus_internal_event_def *iev = &bus_internal_events[i];
        assert_true(iev->name && *iev->name && iev->group && *iev->group && iev->summary &&
                    *iev->summary);
        assert_true(iev->service != BUS_SVC_GATEWAY && iev->service < BUS_SERVICE_COUNT);
        for (size_t j = 0; j < i; j++)
            if (bus_internal_events[j].service == iev->service &&
                strcmp(bus_internal_events[j].name, iev->name) == 0)
                fail_msg("%s declares internal %s twice", bus_service_name(iev->service),
                         iev->name);
    }
    for (size_t i = 0; i < N_SEED_INTERNAL; i++)
        if (!bus_internal_event_find(seed_internal[i].service, seed_internal[i].name))
            fail_msg("%s: internal %s not declared", bus_service_name(seed_internal[i].service),
                     seed_internal[i].name);
    assert_int_equal(bus_internal_event_count, N_SEED_INTERNAL);
    assert_null(bus_internal_event_find(BUS_SVC_GATEWAY, BUS_IEV_ORDER_CREATED));
    assert_null(bus_internal_event_find(BUS_SVC_GRIDFLOCK, BUS_IEV_ORDER_CREATED));
    assert_null(bus_internal_event_find(BUS_SVC_ORDER, NULL));
}

static void test_services(void **state)
{
    (void)state;
    const char *names[] = {"gateway", "order-service", "print-service", "shipping-service",
                           "gridflock-service"};
    for (int i = 0; i < BUS_SERVICE_COUNT; i++) {
        assert_string_equal(bus_service_name((bus_service)i), names[i]);
        bus_service s = BUS_SERVICE_COUNT;
        assert_int_equal(bus_service_parse(names[i], &s), 0);
        assert_int_equal(s, i);
    }
    bus_service s = BUS_SVC_PRINT;
    assert_int_equal(bus_service_parse("orders", &s), F3_EINVAL);
    assert_int_equal(bus_service_parse(NULL, &s), F3_EINVAL);
    assert_int_equal(s, BUS_SVC_PRINT);
    assert_string_equal(bus_service_name(BUS_SERVICE_COUNT), "unknown");
}

/* ---- translation and queues --------------------------------------------------------------- */

static void test_publisher_bridge_lookup(void **state)
{
    (void)state;
    const bus_event_def *d;
    d = bus_catalog_find_internal("print-service", BUS_IEV_PRINTJOB_COMPLETED);
    assert_non_null(d);
    assert_string_equal(d->type, BUS_EV_PRINT_JOB_COMPLETED);
    d = bus_catalog_find_internal("shipping-service", BUS_IEV_SENDCLOUD_SHIPMENT_STATUS_CHANGED);
    assert_non_null(d);
    assert_string_equal(d->type, BUS_EV_SHIPMENT_STATUS_CHANGED);
    d = bus_catalog_find_internal("order-service", BUS_IEV_ORDER_READY_FOR_FULFILLMENT);
    assert_non_null(d);
    assert_string_equal(d->type, BUS_EV_ORDER_READY_FOR_FULFILLMENT);
    /* A service re-emitting a received event must not publish it again (no loops). */
    assert_null(bus_catalog_find_internal("order-service", BUS_IEV_PRINTJOB_COMPLETED));
    assert_null(bus_catalog_find_internal("print-service", BUS_IEV_ORDER_CREATED));
    assert_null(bus_catalog_find_internal("order-service", BUS_IEV_SHIPMENT_CREATED));
    /* Internal-only events and direct publishes are not bridged. */
    assert_null(bus_catalog_find_internal("order-service", BUS_IEV_ORDER_STATUS_CHANGED));
    assert_null(bus_catalog_find_internal("print-service", BUS_EV_INTEGRATION_SIMPLYPRINT_CHANGED));
    /* The cross-service spelling is not an internal name of the print service. */
    assert_null(bus_catalog_find_internal("print-service", BUS_EV_PRINT_JOB_COMPLETED));
    assert_null(bus_catalog_find_internal("nobody", BUS_IEV_PRINTJOB_COMPLETED));
    assert_null(bus_catalog_find_internal(NULL, BUS_IEV_PRINTJOB_COMPLETED));
    assert_null(bus_catalog_find_internal("print-service", NULL));
    assert_null(bus_catalog_find("printjob.completed-nope"));
    assert_null(bus_catalog_find(NULL));

    /* Every bridged event round-trips through its publisher's lookup. */
    for (size_t i = 0; i < bus_catalog_count; i++) {
        const bus_event_def *e = &bus_catalog[i];
        if (e->publisher_internal)
            assert_ptr_equal(
                bus_catalog_find_internal(bus_service_name(e->publisher), e->publisher_internal),
                e);
    }
}

static void test_subscriber_translation(void **state)
{
    (void)state;
    const bus_event_def *d = bus_catalog_find(BUS_EV_ORDER_CANCELLED);
    assert_int_equal(bus_event_subscriber_index(d, BUS_SVC_PRINT), 0);
    assert_int_equal(bus_event_subscriber_index(d, BUS_SVC_SHIPPING), 1);
    assert_int_equal(bus_event_subscriber_index(d, BUS_SVC_ORDER), -1);
    assert_null(bus_event_subscriber_internal_name(d, 2));
    assert_int_equal(bus_event_subscriber(d, 2), BUS_SERVICE_COUNT);
    assert_int_equal(bus_event_subscriber_count(NULL), 0);
    assert_int_equal(bus_event_subscriber_index(NULL, BUS_SVC_ORDER), -1);

    d = bus_catalog_find(BUS_EV_ORDER_READY_FOR_FULFILLMENT);
    int s = bus_event_subscriber_index(d, BUS_SVC_SHIPPING);
    assert_int_equal(s, 0);
    assert_string_equal(bus_event_subscriber_internal_name(d, (size_t)s),
                        "orchestration.order.ready_for_fulfillment");
    d = bus_catalog_find(BUS_EV_PRINT_JOB_STATUS_CHANGED);
    assert_string_equal(bus_event_subscriber_internal_name(d, 0), "printjob.status-changed");
}

static void test_queue_names(void **state)
{
    (void)state;
    char q[128];
    assert_int_equal(bus_queue_name(BUS_EV_ORDER_CANCELLED, BUS_SVC_PRINT, q, sizeof q), 0);
    assert_string_equal(q, "order.cancelled@print-service");
    size_t total = 0;
    for (size_t i = 0; i < bus_catalog_count; i++) {
        const bus_event_def *d = &bus_catalog[i];
        for (size_t s = 0; s < d->subscriber_count; s++, total++) {
            assert_int_equal(bus_queue_name(d->type, bus_event_subscriber(d, s), q, sizeof q), 0);
            /* Well-formed: exactly one '@' splitting a known type and a known service. */
            char *at = strchr(q, '@');
            assert_non_null(at);
            assert_null(strchr(at + 1, '@'));
            *at = '\0';
            assert_ptr_equal(bus_catalog_find(q), d);
            bus_service svc;
            assert_int_equal(bus_service_parse(at + 1, &svc), 0);
            assert_int_equal(svc, bus_event_subscriber(d, s));
        }
    }
    assert_int_equal(total, 15);
    /* Exactly big enough, one byte short. */
    size_t need = strlen("order.cancelled@print-service") + 1;
    assert_int_equal(bus_queue_name(BUS_EV_ORDER_CANCELLED, BUS_SVC_PRINT, q, need), 0);
    assert_int_equal(bus_queue_name(BUS_EV_ORDER_CANCELLED, BUS_SVC_PRINT, q, need - 1),
                     F3_ETOOBIG);
    assert_int_equal(bus_queue_name("", BUS_SVC_PRINT, q, sizeof q), F3_EINVAL);
    assert_int_equal(bus_queue_name(NULL, BUS_SVC_PRINT, q, sizeof q), F3_EINVAL);
    assert_int_equal(bus_queue_name("a@b", BUS_SVC_PRINT, q, sizeof q), F3_EINVAL);
    assert_int_equal(bus_queue_name(BUS_EV_ORDER_CANCELLED, BUS_SERVICE_COUNT, q, sizeof q),
                     F3_EINVAL);
}

/* ---- payload validation ------------------------------------------------------------------- */

static void test_every_example_validates(void **state)
{
    (void)state;
    for (size_t i = 0; i < bus_catalog_count; i++) {
        json_t *ex = NULL;
        assert_int_equal(bus_catalog_example(&bus_catalog[i], &ex), 0);
        err e;
        if (bus_catalog_validate_payload(&bus_catalog[i], ex, &e) != 0)
            fail_msg("example of %s rejected: %s", bus_catalog[i].type, e.msg);
        json_decref(ex);
    }
    assert_int_equal(bus_catalog_example(NULL, NULL), F3_EINVAL);
}

static void test_valid_payloads(void **state)
{
    (void)state;
    expect_valid(BUS_EV_ORDER_CREATED,
                 "{\"orderId\":\"o1\",\"lineItems\":[{\"lineItemId\":\"l1\",\"productSku\":\"S\","
                 "\"quantity\":1},{\"lineItemId\":\"l2\",\"productSku\":\"T\",\"quantity\":3}]}");
    expect_valid(BUS_EV_ORDER_CREATED, "{\"orderId\":\"o1\",\"lineItems\":[]}");
    expect_valid(BUS_EV_SHIPMENT_CREATED,
                 "{\"shipmentId\":\"s\",\"orderId\":\"o\",\"trackingNumber\":null,"
                 "\"trackingUrl\":null,\"carrier\":null}");
    expect_valid(BUS_EV_SHIPMENT_CREATED,
                 "{\"shipmentId\":\"s\",\"orderId\":\"o\",\"trackingNumber\":\"T\","
                 "\"trackingUrl\":\"https://t\",\"carrier\":\"postnl\"}");
    expect_valid(BUS_EV_STOCK_REPLENISHMENT_SCHEDULED,
                 "{\"printJobId\":\"p\",\"fileId\":null,\"purpose\":\"STOCK\","
                 "\"stockBatchId\":\"b\"}");
    expect_valid(BUS_EV_STOCK_BATCH_COMPLETED,
                 "{\"stockBatchId\":\"b\",\"productMappingId\":\"m\",\"totalJobs\":4}");
    expect_valid(BUS_EV_INTEGRATION_SENDCLOUD_CHANGED, "{\"action\":\"disconnected\"}");
    const char *steps[] = {"stl-generation", "slicing", "simplyprint-upload", "mapping-creation"};
    for (size_t i = 0; i < 4; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"orderId\":\"o\",\"lineItemId\":\"l\",\"sku\":\"GRID-2x3-MAG-NONE\","
                 "\"errorMessage\":\"x\",\"failedStep\":\"%s\"}",
                 steps[i]);
        expect_valid(BUS_EV_GRIDFLOCK_PIPELINE_FAILED, text);
    }
}

static void test_unknown_fields_tolerated(void **state)
{
    (void)state;
    expect_valid(BUS_EV_ORDER_CREATED,
                 "{\"orderId\":\"o1\",\"newField\":{\"x\":[1,2]},\"lineItems\":[{\"lineItemId\":"
                 "\"l1\",\"productSku\":\"S\",\"quantity\":1,\"variant\":\"red\"}]}");
    expect_valid(BUS_EV_ORDER_CANCELLED, "{\"orderId\":\"o1\",\"reason\":\"customer\"}");
}

static void test_invalid_payloads_name_the_field(void **state)
{
    (void)state;
    /* missing required */
    expect_invalid(BUS_EV_ORDER_CANCELLED, "{}", "order.cancelled: field 'orderId' is missing");
    expect_invalid(BUS_EV_SHIPMENT_CREATED,
                   "{\"shipmentId\":\"s\",\"orderId\":\"o\",\"trackingUrl\":null,"
                   "\"carrier\":null}",
                   "shipment.created: field 'trackingNumber' is missing");
    /* wrong type */
    expect_invalid(BUS_EV_ORDER_CANCELLED, "{\"orderId\":42}",
                   "order.cancelled: field 'orderId' must be a string");
    expect_invalid(BUS_EV_STOCK_BATCH_COMPLETED,
                   "{\"stockBatchId\":\"b\",\"productMappingId\":\"m\",\"totalJobs\":\"4\"}",
                   "inventory.stock-batch-completed: field 'totalJobs' must be an integer");
    expect_invalid(BUS_EV_STOCK_BATCH_COMPLETED,
                   "{\"stockBatchId\":\"b\",\"productMappingId\":\"m\",\"totalJobs\":4.5}",
                   "inventory.stock-batch-completed: field 'totalJobs' must be an integer");
    expect_invalid(BUS_EV_ORDER_CREATED, "{\"orderId\":\"o\",\"lineItems\":{}}",
                   "order.created: field 'lineItems' must be an array");
    /* bad enum */
    expect_invalid(BUS_EV_INTEGRATION_SIMPLYPRINT_CHANGED, "{\"action\":\"paused\"}",
                   "integration.simplyprint-changed: field 'action' must be one of 'connected', "
                   "'disconnected', not 'paused'");
    expect_invalid(BUS_EV_INTEGRATION_SIMPLYPRINT_CHANGED, "{\"action\":1}",
                   "integration.simplyprint-changed: field 'action' must be a string, one of "
                   "'connected', 'disconnected'");
    expect_invalid(BUS_EV_STOCK_REPLENISHMENT_SCHEDULED,
                   "{\"printJobId\":\"p\",\"fileId\":\"f\",\"purpose\":\"stock\","
                   "\"stockBatchId\":\"b\"}",
                   "inventory.stock-replenishment-scheduled: field 'purpose' must be one of "
                   "'STOCK', not 'stock'");
    /* null where not nullable; null honoured where nullable */
    expect_invalid(BUS_EV_ORDER_CANCELLED, "{\"orderId\":null}",
                   "order.cancelled: field 'orderId' must not be null");
    expect_invalid(BUS_EV_STOCK_REPLENISHMENT_SCHEDULED,
                   "{\"printJobId\":\"p\",\"fileId\":null,\"purpose\":null,\"stockBatchId\":\"b\"}",
                   "inventory.stock-replenishment-scheduled: field 'purpose' must not be null");
    /* nested array items */
    expect_invalid(BUS_EV_ORDER_CREATED,
                   "{\"orderId\":\"o\",\"lineItems\":[{\"lineItemId\":\"l1\",\"productSku\":\"S\","
                   "\"quantity\":1},{\"lineItemId\":\"l2\",\"productSku\":\"T\",\"quantity\":"
                   "\"2\"}]}",
                   "order.created: field 'lineItems[1].quantity' must be an integer");
    expect_invalid(BUS_EV_ORDER_CREATED,
                   "{\"orderId\":\"o\",\"lineItems\":[{\"lineItemId\":\"l1\",\"quantity\":1}]}",
                   "order.created: field 'lineItems[0].productSku' is missing");
    expect_invalid(BUS_EV_ORDER_CREATED,
                   "{\"orderId\":\"o\",\"lineItems\":[{\"lineItemId\":null,\"productSku\":\"S\","
                   "\"quantity\":1}]}",
                   "order.created: field 'lineItems[0].lineItemId' must not be null");
    expect_invalid(BUS_EV_ORDER_CREATED, "{\"orderId\":\"o\",\"lineItems\":[7]}",
                   "order.created: field 'lineItems[0]' must be an object");
    /* not an object at all */
    err e;
    json_t *arr = json_array();
    assert_int_equal(bus_catalog_validate_payload(bus_catalog_find(BUS_EV_ORDER_CREATED), arr, &e),
                     F3_EINVAL);
    assert_string_equal(e.msg, "order.created: the event must be a JSON object");
    assert_int_equal(bus_catalog_validate_payload(NULL, arr, &e), F3_EINVAL);
    assert_int_equal(bus_catalog_validate_payload(NULL, arr, NULL), F3_EINVAL);
    json_decref(arr);
}

/* Field kinds no seed event uses yet (number, boolean, object, nullable enum) still work. */
static void test_every_field_kind(void **state)
{
    (void)state;
    static const char *const colours[] = {"red", "blue", NULL};
    static const bus_field inner[] = {
        {.name = "on", .type = BUS_FIELD_BOOLEAN, .required = true, .doc = "flag"},
    };
    static const bus_field fields[] = {
        {.name = "weight", .type = BUS_FIELD_NUMBER, .required = true, .doc = "kg"},
        {.name = "colour",
         .type = BUS_FIELD_ENUM,
         .nullable = true,
         .doc = "c",
         .choices = colours},
        {.name = "box",
         .type = BUS_FIELD_OBJECT,
         .required = true,
         .doc = "b",
         .items = inner,
         .item_count = 1},
    };
    const bus_event_def d = {
        .type = "test.kinds", .version = 1, .fields = fields, .field_count = 3};
    struct {
        const char *text, *message;
    } cases[] = {
        {"{\"weight\":1.5,\"box\":{\"on\":true}}", NULL},
        {"{\"weight\":2,\"colour\":null,\"box\":{\"on\":false}}", NULL},
        {"{\"weight\":2,\"colour\":\"blue\",\"box\":{\"on\":false,\"x\":1}}", NULL},
        {"{\"weight\":\"2\",\"box\":{\"on\":true}}", "test.kinds: field 'weight' must be a number"},
        {"{\"weight\":2,\"box\":{\"on\":1}}", "test.kinds: field 'box.on' must be a boolean"},
        {"{\"weight\":2,\"box\":[]}", "test.kinds: field 'box' must be an object"},
        {"{\"weight\":2,\"box\":{}}", "test.kinds: field 'box.on' is missing"},
        {"{\"weight\":2,\"colour\":\"green\",\"box\":{\"on\":true}}",
         "test.kinds: field 'colour' must be one of 'red', 'blue', not 'green'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *ev = parse(cases[i].text);
        err e;
        err_clear(&e);
        int rc = bus_catalog_validate_payload(&d, ev, &e);
        json_decref(ev);
        if (!cases[i].message && rc != 0)
            fail_msg("rejected %s: %s", cases[i].text, e.msg);
        if (cases[i].message) {
            assert_int_equal(rc, F3_EINVAL);
            assert_string_equal(e.msg, cases[i].message);
        }
    }
}

/* ---- generated docs ----------------------------------------------------------------------- */

static void test_markdown_mentions_every_event(void **state)
{
    (void)state;
    buf a, b;
    buf_init(&a, 0);
    buf_init(&b, 0);
    assert_int_equal(bus_catalog_markdown(&a), 0);
    assert_int_equal(bus_catalog_markdown(&b), 0);
    assert_string_equal(buf_cstr(&a), buf_cstr(&b)); /* deterministic */
    const char *md = buf_cstr(&a);
    char needle[256];
    for (size_t i = 0; i < bus_catalog_count; i++) {
        const bus_event_def *d = &bus_catalog[i];
        snprintf(needle, sizeof needle, "\n### %s\n", d->type);
        if (!strstr(md, needle))
            fail_msg("markdown lacks a section for %s", d->type);
        for (size_t s = 0; s < d->subscriber_count; s++) {
            char q[128];
            assert_int_equal(bus_queue_name(d->type, d->subscribers[s].service, q, sizeof q), 0);
            snprintf(needle, sizeof needle, "`%s`", q);
            assert_non_null(strstr(md, needle));
        }
    }
    for (size_t i = 0; i < bus_internal_event_count; i++) {
        snprintf(needle, sizeof needle, "| `%s` |", bus_internal_events[i].name);
        assert_non_null(strstr(md, needle));
    }
    assert_non_null(strstr(md, "| Attempts | 3, exponential backoff: 1 s, 2 s, 4 s |"));
    assert_non_null(strstr(md, "| Concurrency | 5 per queue"));
    assert_non_null(strstr(md, "newest 5000"));
    assert_non_null(strstr(md, "newest 1000"));
    assert_non_null(strstr(md, "`lineItems[].quantity` | integer | yes"));
    assert_non_null(strstr(md, "`trackingNumber` | string or null | yes"));
    assert_non_null(strstr(md, "`orchestration.order.ready_for_fulfillment`"));
    buf_free(&a);
    buf_free(&b);
}

static void test_asyncapi_document(void **state)
{
    (void)state;
    buf a, b;
    buf_init(&a, 0);
    buf_init(&b, 0);
    assert_int_equal(bus_catalog_asyncapi(&a), 0);
    assert_int_equal(bus_catalog_asyncapi(&b), 0);
    assert_string_equal(buf_cstr(&a), buf_cstr(&b));
    json_t *doc = parse(buf_cstr(&a));
    assert_string_equal(json_string_value(json_object_get(doc, "asyncapi")), "3.0.0");
    json_t *channels = json_object_get(doc, "channels");
    json_t *ops = json_object_get(doc, "operations");
    json_t *messages = json_object_get(json_object_get(doc, "components"), "messages");
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    assert_int_equal(json_object_size(channels), 15);
    assert_int_equal(json_object_size(ops), 30);
    assert_int_equal(json_object_size(messages), 15);
    for (size_t i = 0; i < bus_catalog_count; i++) {
        const bus_event_def *d = &bus_catalog[i];
        assert_non_null(json_object_get(messages, d->type));
        json_t *schema = json_object_get(schemas, d->type);
        json_t *req = json_object_get(schema, "required");
        /* required = 5 envelope fields + the event's required fields */
        size_t nreq = 5;
        for (size_t f = 0; f < d->field_count; f++)
            nreq += d->fields[f].required;
        assert_int_equal(json_array_size(req), nreq);
        json_t *et = json_object_get(json_object_get(schema, "properties"), "eventType");
        assert_string_equal(json_string_value(json_object_get(et, "const")), d->type);
        for (size_t s = 0; s < d->subscriber_count; s++) {
            char q[128], id[160];
            assert_int_equal(bus_queue_name(d->type, d->subscribers[s].service, q, sizeof q), 0);
            json_t *ch = json_object_get(channels, q);
            assert_non_null(ch);
            assert_string_equal(json_string_value(json_object_get(ch, "address")), q);
            snprintf(id, sizeof id, "send:%s", q);
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(ops, id), "action")), "send");
            snprintf(id, sizeof id, "receive:%s", q);
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(ops, id), "action")), "receive");
        }
    }
    /* nullable fields are typed [T, null] */
    json_t *tn = json_object_get(
        json_object_get(json_object_get(schemas, BUS_EV_SHIPMENT_CREATED), "properties"),
        "trackingNumber");
    assert_int_equal(json_array_size(json_object_get(tn, "type")), 2);
    json_decref(doc);
    buf_free(&a);
    buf_free(&b);
}

/* A full buffer is reported, not crashed on or silently truncated. */
static void test_docs_report_a_full_buffer(void **state)
{
    (void)state;
    buf small;
    buf_init(&small, 100);
    assert_int_equal(bus_catalog_markdown(&small), F3_ETOOBIG);
    buf_free(&small);
    buf_init(&small, 100);
    assert_int_equal(bus_catalog_asyncapi(&small), F3_ETOOBIG);
    buf_free(&small);
}

/* ---- no event name literal outside catalog.h ------------------------------------------ */

static buf offenders;

static bool is_event_name(const char *s, size_t n)
{
    for (size_t i = 0; i < bus_catalog_count; i++)
        if (strlen(bus_catalog[i].type) == n && memcmp(bus_catalog[i].type, s, n) == 0)
            return true;
    for (size_t i = 0; i < bus_internal_event_count; i++)
        if (strlen(bus_internal_events[i].name) == n &&
            memcmp(bus_internal_events[i].name, s, n) == 0)
            return true;
    return false;
}

/* Reports every string literal of `text` (comments skipped) that is an event name. */
static void scan_text(const char *path, const char *text)
{
    int lineno = 1;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            lineno++;
        } else if (p[0] == '/' && p[1] == '*') {
            for (p += 2; *p && !(p[0] == '*' && p[1] == '/'); p++)
                lineno += *p == '\n';
            if (!*p)
                return;
            p++;
        } else if (p[0] == '/' && p[1] == '/') {
            while (p[1] && p[1] != '\n')
                p++;
        } else if (*p == '\'') {
            for (p++; *p && *p != '\''; p++)
                p += (*p == '\\' && p[1]);
            if (!*p)
                return;
        } else if (*p == '"') {
            const char *start = ++p;
            for (; *p && *p != '"' && *p != '\n'; p++)
                p += (*p == '\\' && p[1]);
            if (!*p)
                return;
            if (*p == '"' && is_event_name(start, (size_t)(p - start)))
                buf_printf(&offenders, "%s:%d: \"%.*s\"\n", path, lineno, (int)(p - start), start);
            if (*p == '\n')
                lineno++;
        }
    }
}

static int scan_file(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)ftw;
    size_t len = strlen(path);
    if (type != FTW_F || len < 2 || path[len - 2] != '.' ||
        (path[len - 1] != 'c' && path[len - 1] != 'h'))
        return 0;
    if (strstr(path, "/src/bus/catalog.h"))
        return 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *text = calloc(1, (size_t)sb->st_size + 1);
    size_t n = text ? fread(text, 1, (size_t)sb->st_size, f) : 0;
    fclose(f);
    if (text) {
        text[n] = '\0';
        scan_text(path, text);
    }
    free(text);
    return 0;
}

/* The scanner itself: literals found, comments and prose ignored. */
static void test_literal_scanner(void **state)
{
    (void)state;
    buf_init(&offenders, 0);
    scan_text("x.c", "/* \"order.created\" */ // \"order.created\"\n"
                     "const char *a = \"an order.created event\", c = '\"';\n"
                     "x = \"ok\\\"\"; y = \"print-job.failed\";\n");
    assert_string_equal(buf_cstr(&offenders), "x.c:3: \"print-job.failed\"\n");
    buf_free(&offenders);
}

static void test_no_event_name_literals_outside_catalog_h(void **state)
{
    (void)state;
    buf_init(&offenders, 0);
    assert_int_equal(nftw(F3_SOURCE_DIR "/src", scan_file, 16, FTW_PHYS), 0);
    if (offenders.len)
        fail_msg("event names spelled as literals (use the catalog.h constants):\n%s",
                 buf_cstr(&offenders));
    buf_free(&offenders);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog_matches_seed),
        cmocka_unit_test(test_catalog_is_consistent),
        cmocka_unit_test(test_internal_events),
        cmocka_unit_test(test_services),
        cmocka_unit_test(test_publisher_bridge_lookup),
        cmocka_unit_test(test_subscriber_translation),
        cmocka_unit_test(test_queue_names),
        cmocka_unit_test(test_every_example_validates),
        cmocka_unit_test(test_valid_payloads),
        cmocka_unit_test(test_unknown_fields_tolerated),
        cmocka_unit_test(test_invalid_payloads_name_the_field),
        cmocka_unit_test(test_every_field_kind),
        cmocka_unit_test(test_markdown_mentions_every_event),
        cmocka_unit_test(test_asyncapi_document),
        cmocka_unit_test(test_docs_report_a_full_buffer),
        cmocka_unit_test(test_literal_scanner),
        cmocka_unit_test(test_no_event_name_literals_outside_catalog_h),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
