/* F3_TEST: backends
 * test_cancel.c - an order cancelled in Shopify at each stage of the loop, through the
 * real binary and the simulators (seed 001 F3.2):
 *   before printing  (SimplyPrint unreachable, jobs not submitted): jobs cancelled, nothing
 *                    reaches SimplyPrint afterwards, no review;
 *   while queued     jobs cancelled and their queue items deleted in SimplyPrint;
 *   while printing   the order is cancelled but flagged for review, an operator alert is
 *                    logged and mailed (SMTP sink), the prints are left to the operator;
 *   after printing   (COMPLETED, Sendcloud down so no shipment yet): the completion is
 *                    reported (CANCELLED_AFTER_COMPLETION alert, review), never fulfilled;
 *   after shipment   (shipment and label made, Shopify's fulfilment blocked): reported,
 *                    never fulfilled.
 * A cancelled order is never fulfilled in any of them.
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
    e2e_world_opts o = {.printers = 16, .printers_paused = true};
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

/* An order of two benchies (two print jobs), stored. */
static void place(char sid[32], char id[65])
{
    e2e_place_order(
        &world,
        "{\"email\":\"bo@example.org\",\"currency\":\"EUR\",\"financial_status\":\"paid\","
        "\"customer\":{\"first_name\":\"Bo\",\"last_name\":\"Maes\"},\"shipping_address\":{"
        "\"first_name\":\"Bo\",\"last_name\":\"Maes\",\"name\":\"Bo Maes\",\"address1\":"
        "\"Meir 2\",\"city\":\"Antwerpen\",\"zip\":\"2000\",\"country_code\":\"BE\"},"
        "\"line_items\":[{\"title\":\"3DBenchy, PLA\",\"sku\":\"" E2E_SKU_SINGLE "\","
        "\"quantity\":2,\"price\":\"9.90\",\"requires_shipping\":true}]}",
        sid);
    e2e_wait_stored(&world, sid, id);
}

static int64_t alerts_of(const char *id, const char *kind)
{
    char like[64];
    snprintf(like, sizeof like, "%%%s%%", kind);
    err e;
    err_clear(&e);
    db_conn *c = db_acquire(world.d, &e);
    assert_non_null(c);
    const char *p[] = {id, like};
    db_stmt *s = db_prepare_texts(c,
                                  "SELECT COUNT(*) FROM event_log WHERE order_id = $1 AND"
                                  " event_type = 'operator.alert' AND message LIKE $2",
                                  p, 2, &e);
    assert_non_null(s);
    assert_int_equal(db_step(s, &e), DB_ROW);
    int64_t n = db_col_int64(s, 0);
    db_finalize(s);
    db_release(c);
    return n;
}

/* Waits until the SMTP sink holds the operator alert mail titled `title` for the order
 * (the subject names both). */
static void wait_mail(const char *title, const char *order_number)
{
    for (int i = 0; i < 300; i++) {
        size_t total = smtp_sink_count(world.smtp);
        for (size_t k = 0; k < total; k++) {
            smtp_sink_msg m;
            if (smtp_sink_get(world.smtp, k, &m) != 0)
                continue;
            bool hit = m.data && strstr(m.data, title) && strstr(m.data, order_number);
            smtp_sink_msg_free(&m);
            if (hit)
                return;
        }
        f3test_sleep_ms(100);
    }
    e2e_world_dump_log(&world);
    fail_msg("no '%s' mail for %s in the SMTP sink (%zu mails)", title, order_number,
             smtp_sink_count(world.smtp));
}

/* Gives the platform time to do what it should not, then checks it did not fulfil. */
static void never_fulfilled(const char *sid, const char *id)
{
    f3test_sleep_ms(2500);
    json_t *fs = e2e_fulfillments(&world, sid);
    assert_int_equal(json_array_size(fs), 0);
    json_decref(fs);
    json_t *o = e2e_order(&world, id);
    assert_string_equal(str(o, "shopifyFulfillmentId"), "");
    json_decref(o);
    assert_int_equal(e2e_events_of(&world, id, "order.fulfilled"), 0);
}

static void test_cancel_before_printing(void **state)
{
    (void)state;
    e2e_world *w = &world;
    /* SimplyPrint answers every call with 503: the jobs are created but not submitted. */
    assert_int_equal(sp_sim_fault(w->sp, 503, 1000, 1, 0), 0);
    char sid[32], id[65];
    place(sid, id);
    e2e_wait_jobs(w, id, "PENDING", 2, WAIT_MS);
    e2e_shopify_event(w, sid, "orders/cancelled");
    json_t *o = e2e_wait_order_field(w, id, "status", "CANCELLED", WAIT_MS);
    assert_true(json_is_null(json_object_get(o, "reviewReason")));
    json_decref(o);
    e2e_wait_jobs(w, id, "CANCELLED", 2, WAIT_MS);
    assert_int_equal(sp_sim_fault(w->sp, 0, 0, -1, 0), 0);
    never_fulfilled(sid, id);
    /* Nothing was sent to the farm after the cancellation. */
    assert_int_equal(e2e_sp_queued(w), 0);
    assert_int_equal(e2e_events_of(w, id, "order.cancelled"), 1);
    assert_int_equal(alerts_of(id, "CANCELLATION_NEEDS_REVIEW"), 0);
}

static void test_cancel_while_queued(void **state)
{
    (void)state;
    e2e_world *w = &world;
    char sid[32], id[65];
    place(sid, id);
    e2e_wait_jobs(w, id, "QUEUED", 2, WAIT_MS);
    assert_int_equal(e2e_sp_queued(w), 2);
    e2e_shopify_event(w, sid, "orders/cancelled");
    json_decref(e2e_wait_order_field(w, id, "status", "CANCELLED", WAIT_MS));
    e2e_wait_jobs(w, id, "CANCELLED", 2, WAIT_MS);
    /* Deleted from SimplyPrint's queue. */
    for (int i = 0; i < 100 && e2e_sp_queued(w) > 0; i++)
        f3test_sleep_ms(100);
    assert_int_equal(e2e_sp_queued(w), 0);
    json_t *o = e2e_order(w, id);
    assert_true(json_is_null(json_object_get(o, "reviewReason")));
    json_decref(o);
    never_fulfilled(sid, id);
    assert_int_equal(alerts_of(id, "CANCELLATION_NEEDS_REVIEW"), 0);
}

static void test_cancel_while_printing(void **state)
{
    (void)state;
    e2e_world *w = &world;
    assert_int_equal(sp_sim_pause(w->sp, 0, false), 0);
    char sid[32], id[65];
    place(sid, id);
    e2e_wait_jobs(w, id, "PRINTING", 2, WAIT_MS);
    json_t *o = e2e_order(w, id);
    char number[32];
    snprintf(number, sizeof number, "%s", str(o, "orderNumber"));
    json_decref(o);
    e2e_shopify_event(w, sid, "orders/cancelled");
    o = e2e_wait_order_field(w, id, "status", "CANCELLED", WAIT_MS);
    assert_true(str(o, "reviewReason")[0] != '\0');
    json_decref(o);
    /* Flagged for review: logged, alerted once, mailed to the operator. */
    e2e_wait_count(w,
                   "SELECT COUNT(*) FROM event_log WHERE order_id = $1 AND"
                   " event_type = 'operator.alert' AND message LIKE '%CANCELLATION_NEEDS_REVIEW%'",
                   id, 1, WAIT_MS);
    e2e_wait_count(w,
                   "SELECT COUNT(*) FROM event_log WHERE order_id = $1 AND"
                   " event_type = 'print-job.needs-review'",
                   id, 2, WAIT_MS);
    wait_mail("Cancellation needs review", number);
    /* The prints were not stopped behind the operator's back; they finish, and the
     * order stays cancelled, nothing shipped or fulfilled. */
    assert_int_equal(e2e_end_prints(w, id, SP_JOB_DONE), 2);
    never_fulfilled(sid, id);
    o = e2e_order(w, id);
    assert_string_equal(str(o, "status"), "CANCELLED");
    assert_true(json_is_null(json_object_get(o, "shipment")));
    json_decref(o);
    assert_int_equal(e2e_count(w, "SELECT COUNT(*) FROM shipments WHERE order_id = $1", id), 0);
    assert_int_equal(alerts_of(id, "CANCELLATION_NEEDS_REVIEW"), 1);
}

/* Prints the order's two jobs to the end; the order is COMPLETED. */
static void print_all(const char *id)
{
    e2e_wait_jobs(&world, id, "PRINTING", 2, WAIT_MS);
    assert_int_equal(e2e_end_prints(&world, id, SP_JOB_DONE), 2);
    json_decref(e2e_wait_order_field(&world, id, "status", "COMPLETED", WAIT_MS));
}

static void test_cancel_after_printing(void **state)
{
    (void)state;
    e2e_world *w = &world;
    /* Sendcloud is down: the completed order gets no shipment for now. */
    assert_int_equal(e2e_call(w->sc_url, "POST", "/_sim/faults", NULL,
                              "{\"kind\":\"503\",\"count\":1000}", NULL),
                     200);
    char sid[32], id[65];
    place(sid, id);
    print_all(id);
    json_t *o = e2e_order(w, id);
    char number[32];
    snprintf(number, sizeof number, "%s", str(o, "orderNumber"));
    json_decref(o);
    e2e_shopify_event(w, sid, "orders/cancelled");
    /* Reported: it stays COMPLETED (the prints exist), flagged for review, alerted. */
    e2e_wait_count(w,
                   "SELECT COUNT(*) FROM event_log WHERE order_id = $1 AND"
                   " event_type = 'operator.alert' AND message LIKE"
                   " '%CANCELLED_AFTER_COMPLETION%'",
                   id, 1, WAIT_MS);
    o = e2e_order(w, id);
    assert_string_equal(str(o, "status"), "COMPLETED");
    assert_true(str(o, "reviewReason")[0] != '\0');
    json_decref(o);
    wait_mail("Order cancelled after completion", number);
    /* Sendcloud comes back: whatever happens to the shipment, no fulfilment. */
    assert_int_equal(
        e2e_call(w->sc_url, "POST", "/_sim/faults", NULL, "{\"kind\":\"503\",\"count\":0}", NULL),
        200);
    never_fulfilled(sid, id);
    assert_int_equal(alerts_of(id, "CANCELLED_AFTER_COMPLETION"), 1);
}

static void test_cancel_after_shipment(void **state)
{
    (void)state;
    e2e_world *w = &world;
    /* Shopify refuses fulfilment calls for now (transient), so the order waits shipped. */
    assert_int_equal(e2e_call(w->shopify_url, "POST", "/_sim/faults", NULL,
                              "{\"kind\":\"503\",\"count\":1000,\"retry_after\":1,"
                              "\"match\":\"fulfillment\"}",
                              NULL),
                     200);
    char sid[32], id[65];
    place(sid, id);
    print_all(id);
    e2e_wait_count(
        w, "SELECT COUNT(*) FROM shipments WHERE order_id = $1 AND status = 'READY_TO_SEND'", id, 1,
        WAIT_MS);
    json_t *o = e2e_order(w, id);
    char number[32];
    snprintf(number, sizeof number, "%s", str(o, "orderNumber"));
    json_decref(o);
    e2e_shopify_event(w, sid, "orders/cancelled");
    e2e_wait_count(w,
                   "SELECT COUNT(*) FROM event_log WHERE order_id = $1 AND"
                   " event_type = 'operator.alert' AND message LIKE"
                   " '%CANCELLED_AFTER_COMPLETION%'",
                   id, 1, WAIT_MS);
    wait_mail("Order cancelled after completion", number);
    o = e2e_order(w, id);
    assert_string_equal(str(o, "status"), "COMPLETED");
    assert_true(str(o, "reviewReason")[0] != '\0');
    json_decref(o);
    /* Shopify answers again: the cancelled order is still not fulfilled. */
    assert_int_equal(e2e_call(w->shopify_url, "POST", "/_sim/faults", NULL,
                              "{\"kind\":\"503\",\"count\":0}", NULL),
                     200);
    never_fulfilled(sid, id);
    /* One shipment at most, never twice at Sendcloud. */
    assert_int_equal(e2e_count(w, "SELECT COUNT(*) FROM shipments WHERE order_id = $1", id), 1);
    json_t *parcels = NULL;
    assert_int_equal(e2e_call(w->sc_url, "GET", "/_sim/parcels", NULL, NULL, &parcels), 200);
    size_t i, mine = 0;
    json_t *p;
    json_array_foreach(json_object_get(parcels, "parcels"), i, p)
    {
        mine += strcmp(str(json_object_get(p, "parcel"), "external_reference"), id) == 0;
    }
    json_decref(parcels);
    assert_int_equal(mine, 1);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_before_printing), cmocka_unit_test(test_cancel_while_queued),
        cmocka_unit_test(test_cancel_while_printing),  cmocka_unit_test(test_cancel_after_printing),
        cmocka_unit_test(test_cancel_after_shipment),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
