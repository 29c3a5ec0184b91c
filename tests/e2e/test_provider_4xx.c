/* F3_TEST: backends
 * test_provider_4xx.c - a permanent provider error through the real binary: Sendcloud
 * answers the shipment announcement of a completed order with 422 (its /_sim/faults). Seed
 * 001 says a non-transient error is not retried and the operator is alerted: exactly one
 * announcement reaches Sendcloud, one SHIPMENT_FAILED operator.alert is logged for the
 * order and its mail reaches the SMTP sink, and nothing is shipped or fulfilled behind the
 * operator's back. A transient 503 on the next order, by contrast, is retried and heals.
 */
#include "e2e.h"

#include "support/f3test_bus.h"
#include "support/f3test_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 30000

static const char *backend;
static e2e_world world;

static int setup(void **state)
{
    (void)state;
    e2e_world_opts o = {.printers = 8, .print_ms = 200};
    return e2e_world_start(&world, backend, &o);
}

static int teardown(void **state)
{
    (void)state;
    return e2e_world_stop(&world);
}

static const char *str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static void place(char sid[32], char id[65])
{
    e2e_place_order(
        &world,
        "{\"email\":\"cy@example.org\",\"currency\":\"EUR\",\"financial_status\":\"paid\","
        "\"customer\":{\"first_name\":\"Cy\",\"last_name\":\"Jacobs\"},\"shipping_address\":{"
        "\"first_name\":\"Cy\",\"last_name\":\"Jacobs\",\"name\":\"Cy Jacobs\",\"address1\":"
        "\"Oudegracht 3\",\"city\":\"Utrecht\",\"zip\":\"3511\",\"country_code\":\"NL\"},"
        "\"line_items\":[{\"title\":\"3DBenchy, PLA\",\"sku\":\"" E2E_SKU_SINGLE "\","
        "\"quantity\":1,\"price\":\"9.90\",\"requires_shipping\":true}]}",
        sid);
    e2e_wait_stored(&world, sid, id);
}

/* Shipment announcements Sendcloud has seen (its request statistics). */
static int64_t announcements(void)
{
    json_t *stats = NULL;
    assert_int_equal(e2e_call(world.sc_url, "GET", "/_sim/stats", NULL, NULL, &stats), 200);
    json_t *by = json_object_get(stats, "requests");
    int64_t n = json_integer_value(json_object_get(by ? by : stats, "v3.announce"));
    json_decref(stats);
    return n;
}

/* Alert mails titled `title` that name the order (by number or id). */
static size_t mails_about(const char *title, const char *order_number, const char *order_id)
{
    size_t n = 0, total = smtp_sink_count(world.smtp);
    for (size_t i = 0; i < total; i++) {
        smtp_sink_msg m;
        if (smtp_sink_get(world.smtp, i, &m) != 0)
            continue;
        n += m.data && strstr(m.data, title) &&
             (strstr(m.data, order_number) || strstr(m.data, order_id));
        smtp_sink_msg_free(&m);
    }
    return n;
}

static void test_sendcloud_422_alerted_once_not_retried(void **state)
{
    (void)state;
    e2e_world *w = &world;
    int64_t before = announcements();
    assert_int_equal(
        e2e_call(w->sc_url, "POST", "/_sim/faults", NULL, "{\"kind\":\"422\",\"count\":1}", NULL),
        200);
    char sid[32], id[65];
    place(sid, id);
    json_t *o = e2e_wait_order_field(w, id, "status", "COMPLETED", WAIT_MS);
    char number[32];
    snprintf(number, sizeof number, "%s", str(o, "orderNumber"));
    json_decref(o);
    e2e_wait_count(w,
                   "SELECT COUNT(*) FROM event_log WHERE order_id = $1 AND"
                   " event_type = 'operator.alert' AND message LIKE '%SHIPMENT_FAILED%'",
                   id, 1, WAIT_MS);
    for (int i = 0; i < 200 && mails_about("Shipment failed", number, id) == 0; i++)
        f3test_sleep_ms(100);
    if (mails_about("Shipment failed", number, id) != 1)
        e2e_dump_mail(w);
    assert_int_equal(mails_about("Shipment failed", number, id), 1);
    /* Time for any retry to show (the retry base is 200 ms): none comes. */
    f3test_sleep_ms(4000);
    assert_int_equal(announcements() - before, 1);
    assert_int_equal(e2e_count(w,
                               "SELECT COUNT(*) FROM event_log WHERE order_id = $1 AND"
                               " event_type = 'operator.alert' AND message LIKE"
                               " '%SHIPMENT_FAILED%'",
                               id),
                     1);
    assert_int_equal(mails_about("Shipment failed", number, id), 1);
    json_t *parcels = NULL;
    assert_int_equal(e2e_call(w->sc_url, "GET", "/_sim/parcels", NULL, NULL, &parcels), 200);
    size_t i, mine = 0;
    json_t *p;
    json_array_foreach(json_object_get(parcels, "parcels"), i, p)
    {
        mine += strcmp(str(json_object_get(p, "parcel"), "external_reference"), id) == 0;
    }
    json_decref(parcels);
    assert_int_equal(mine, 0);
    json_t *fs = e2e_fulfillments(w, sid);
    assert_int_equal(json_array_size(fs), 0);
    json_decref(fs);
}

static void test_sendcloud_503_retried_and_healed(void **state)
{
    (void)state;
    e2e_world *w = &world;
    int64_t before = announcements();
    assert_int_equal(e2e_call(w->sc_url, "POST", "/_sim/faults", NULL,
                              "{\"kind\":\"503\",\"count\":2,\"retry_after\":1}", NULL),
                     200);
    char sid[32], id[65];
    place(sid, id);
    json_decref(e2e_wait_order_field(w, id, "status", "COMPLETED", WAIT_MS));
    e2e_wait_count(
        w, "SELECT COUNT(*) FROM shipments WHERE order_id = $1 AND status = 'READY_TO_SEND'", id, 1,
        WAIT_MS);
    e2e_wait_count(w,
                   "SELECT COUNT(*) FROM event_log WHERE order_id = $1 AND"
                   " event_type = 'order.fulfilled'",
                   id, 1, WAIT_MS);
    assert_int_equal(announcements() - before, 3);
    assert_int_equal(e2e_count(w,
                               "SELECT COUNT(*) FROM event_log WHERE order_id = $1 AND"
                               " event_type = 'operator.alert'",
                               id),
                     0);
    json_t *fs = e2e_fulfillments(w, sid);
    assert_int_equal(json_array_size(fs), 1);
    json_decref(fs);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sendcloud_422_alerted_once_not_retried),
        cmocka_unit_test(test_sendcloud_503_retried_and_healed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
