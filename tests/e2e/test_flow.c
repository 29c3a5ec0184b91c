/* F3_TEST: backends
 * test_flow.c - seed 001's complete automation flow, steps 1 to 8, on one multi-item,
 * multi-copy order through the real binary (`f3connect serve` on SQLite or PostgreSQL) and
 * the simulators, asserted step by step through the API an operator uses (orders,
 * print-jobs, shipments, the label PDF, events) and through what the providers hold:
 *   1 Shopify delivers orders/create   2 the order is stored with its line items mapped
 *   3 print jobs are queued in SimplyPrint: an assembly of two parts x quantity 2, a part
 *     printed 4 times per unit x quantity 2, and a single part: 13 copies
 *   4 printing (the farm takes them)   5 every copy completes -> order COMPLETED
 *   6 order.ready-for-fulfillment -> a Sendcloud shipment with its label
 *   7 one Shopify fulfilment with the tracking number and notify_customer
 *   8 the order is fulfilled (in f3connect and in Shopify), the parcel moves on.
 * The farm starts paused and prints for an hour per copy, so the test decides when each
 * step happens.
 */
#include "e2e.h"

#include "support/f3test_bus.h"
#include "support/f3test_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 30000
#define COPIES  13 /* lamp kit 2 parts x 2 + coaster 4 copies x 2 + benchy 1 */

static const char *backend;
static e2e_world world;

static const char order_json[] =
    "{\"email\":\"ann.lee@example.org\",\"currency\":\"EUR\",\"financial_status\":\"paid\","
    "\"customer\":{\"first_name\":\"Ann\",\"last_name\":\"Lee\",\"email\":\"ann.lee@example.org\"},"
    "\"shipping_address\":{\"first_name\":\"Ann\",\"last_name\":\"Lee\",\"name\":\"Ann Lee\","
    "\"address1\":\"Veldstraat 1\",\"city\":\"Gent\",\"zip\":\"9000\",\"country_code\":\"BE\","
    "\"phone\":\"+32 9 123 45 67\"},\"line_items\":["
    "{\"title\":\"Desk lamp kit\",\"sku\":\"" E2E_SKU_ASSEMBLY "\",\"quantity\":2,"
    "\"price\":\"39.00\",\"requires_shipping\":true},"
    "{\"title\":\"Coaster set of four\",\"sku\":\"" E2E_SKU_COPIES "\",\"quantity\":2,"
    "\"price\":\"14.00\",\"requires_shipping\":true},"
    "{\"title\":\"3DBenchy, PLA\",\"sku\":\"" E2E_SKU_SINGLE "\",\"quantity\":1,"
    "\"price\":\"9.90\",\"requires_shipping\":true}]}";

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

/* The line item of the order view with this SKU. */
static const json_t *line_of(const json_t *order, const char *sku)
{
    size_t i;
    json_t *li;
    json_array_foreach(json_object_get(order, "lineItems"), i, li)
    {
        if (strcmp(str(li, "sku"), sku) == 0)
            return li;
    }
    fail_msg("no line item %s", sku);
    return NULL;
}

/* Print jobs (API view) of one line item, and how many distinct files (parts) they print. */
static size_t jobs_of_line(const json_t *jobs, const char *line_id, size_t *parts)
{
    size_t i, n = 0;
    json_t *j;
    char seen[8][80];
    *parts = 0;
    json_array_foreach(jobs, i, j)
    {
        if (strcmp(str(j, "lineItemId"), line_id) != 0)
            continue;
        n++;
        bool known = false;
        for (size_t k = 0; k < *parts; k++)
            known = known || strcmp(seen[k], str(j, "fileName")) == 0;
        if (!known && *parts < 8)
            snprintf(seen[(*parts)++], sizeof seen[0], "%s", str(j, "fileName"));
    }
    return n;
}

static void test_automation_flow(void **state)
{
    (void)state;
    e2e_world *w = &world;

    /* 1. Shopify order created; the webhook is delivered. */
    char sid[32], id[65];
    e2e_place_order(w, order_json, sid);

    /* 2. Stored, every line item mapped, the story begins in the event log. */
    e2e_wait_stored(w, sid, id);
    json_t *o = e2e_order(w, id);
    assert_string_equal(str(o, "shopifyOrderId"), sid);
    assert_string_equal(str(o, "customerName"), "Ann Lee");
    assert_string_equal(str(o, "currency"), "EUR");
    assert_int_equal(json_integer_value(json_object_get(o, "totalMinor")),
                     2 * 3900 + 2 * 1400 + 990);
    assert_int_equal(json_integer_value(json_object_get(o, "lineItemCount")), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "needsMappingCount")), 0);
    assert_string_equal(str(o, "shopifyFulfillmentId"), "");
    assert_false(json_is_true(json_object_get(line_of(o, E2E_SKU_ASSEMBLY), "needsMapping")));
    json_decref(o);
    assert_int_equal(e2e_events_of(w, id, "order.created"), 1);

    /* 3. Print jobs queued in SimplyPrint: one per copy, each its own queue item. */
    e2e_wait_jobs(w, id, "QUEUED", COPIES, WAIT_MS);
    json_t *jobs = e2e_print_jobs(w, id);
    assert_int_equal(json_array_size(jobs), COPIES);
    o = e2e_wait_order_field(w, id, "status", "PROCESSING", WAIT_MS);
    size_t parts;
    assert_int_equal(jobs_of_line(jobs, str(line_of(o, E2E_SKU_ASSEMBLY), "id"), &parts), 4);
    assert_int_equal(parts, 2);
    assert_int_equal(jobs_of_line(jobs, str(line_of(o, E2E_SKU_COPIES), "id"), &parts), 8);
    assert_int_equal(parts, 1);
    assert_int_equal(jobs_of_line(jobs, str(line_of(o, E2E_SKU_SINGLE), "id"), &parts), 1);
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        json_t *item = json_object_get(j, "simplyPrintQueueItemId");
        assert_true(json_integer_value(item) > 0);
        for (size_t k = 0; k < i; k++)
            assert_false(json_equal(
                item, json_object_get(json_array_get(jobs, k), "simplyPrintQueueItemId")));
    }
    json_decref(jobs);
    json_decref(o);
    assert_int_equal(e2e_sp_queued(w), COPIES);
    assert_int_equal(e2e_events_of(w, id, "printjob.created"), COPIES);

    /* 4. Printing: the farm takes every copy. */
    assert_int_equal(sp_sim_pause(w->sp, 0, false), 0);
    e2e_wait_jobs(w, id, "PRINTING", COPIES, WAIT_MS);
    int64_t ongoing[32];
    assert_int_equal(e2e_sp_ongoing(w, ongoing, 32), COPIES);
    o = e2e_order(w, id);
    assert_string_equal(str(o, "status"), "PROCESSING");
    json_decref(o);

    /* 5. Every copy but one completes: still PROCESSING, nothing shipped; the last one
     * completes the order. */
    err e;
    for (size_t k = 0; k + 1 < COPIES; k++)
        assert_int_equal(sp_sim_end_job(w->sp, ongoing[k], SP_JOB_DONE, NULL, &e), 0);
    e2e_wait_jobs(w, id, "COMPLETED", COPIES - 1, WAIT_MS);
    o = e2e_order(w, id);
    assert_string_equal(str(o, "status"), "PROCESSING");
    assert_true(json_is_null(json_object_get(o, "shipment")));
    json_decref(o);
    assert_int_equal(e2e_count(w, "SELECT COUNT(*) FROM shipments WHERE order_id = $1", id), 0);
    assert_int_equal(sp_sim_end_job(w->sp, ongoing[COPIES - 1], SP_JOB_DONE, NULL, &e), 0);
    e2e_wait_jobs(w, id, "COMPLETED", COPIES, WAIT_MS);
    o = e2e_wait_order_field(w, id, "status", "COMPLETED", WAIT_MS);
    assert_true(json_is_string(json_object_get(o, "completedAt")));
    json_decref(o);

    /* 6. Ready for fulfilment: a shipment with its label at Sendcloud. */
    e2e_wait_count(
        w, "SELECT COUNT(*) FROM shipments WHERE order_id = $1 AND status = 'READY_TO_SEND'", id, 1,
        WAIT_MS);
    char path[256];
    snprintf(path, sizeof path, "/api/v1/shipments?orderId=%s", id);
    json_t *page = NULL;
    assert_int_equal(e2e_api(w, "GET", path, NULL, &page), 200);
    json_t *ships = json_object_get(page, "data");
    assert_int_equal(json_array_size(ships), 1);
    json_t *ship = json_array_get(ships, 0);
    char ship_id[80], tracking[80];
    snprintf(ship_id, sizeof ship_id, "%s", str(ship, "id"));
    snprintf(tracking, sizeof tracking, "%s", str(ship, "trackingNumber"));
    assert_true(tracking[0] != '\0');
    assert_true(str(ship, "trackingUrl")[0] != '\0');
    json_decref(page);
    snprintf(path, sizeof path, "/api/v1/shipments/%s/label", ship_id);
    buf pdf;
    buf_init(&pdf, 0);
    char ctype[64];
    assert_int_equal(e2e_api_raw(w, "GET", path, &pdf, ctype, sizeof ctype), 200);
    assert_non_null(strstr(ctype, "application/pdf"));
    assert_true(pdf.len > 200);
    assert_memory_equal(pdf.data, "%PDF-", 5);
    buf_free(&pdf);
    json_t *parcels = NULL;
    assert_int_equal(e2e_call(w->sc_url, "GET", "/_sim/parcels", NULL, NULL, &parcels), 200);
    assert_int_equal(json_array_size(json_object_get(parcels, "parcels")), 1);
    json_decref(parcels);
    assert_int_equal(e2e_events_of(w, id, "order.ready-for-fulfillment"), 1);
    assert_int_equal(e2e_events_of(w, id, "shipment.created"), 1);

    /* 7. One Shopify fulfilment carrying the tracking number, the customer notified. */
    o = e2e_wait_order_field(w, id, "trackingNumber", tracking, WAIT_MS);
    assert_true(str(o, "shopifyFulfillmentId")[0] != '\0');
    assert_string_equal(str(o, "status"), "COMPLETED");
    json_decref(o);
    json_t *fs = e2e_fulfillments(w, sid);
    assert_int_equal(json_array_size(fs), 1);
    json_t *f = json_array_get(fs, 0);
    assert_string_equal(str(f, "tracking_number"), tracking);
    assert_true(json_is_true(json_object_get(f, "notify_customer")));
    assert_int_equal(json_array_size(json_object_get(f, "line_items")), 3);
    json_decref(fs);

    /* 8. Fulfilled: in Shopify's order too, logged once; the parcel moves on and the
     * order follows its status. */
    snprintf(path, sizeof path, "/admin/api/2025-10/orders/%s.json", sid);
    const char *token[] = {"X-Shopify-Access-Token: shpat_e2e_token", NULL};
    json_t *sorder = NULL;
    assert_int_equal(e2e_call(w->shopify_url, "GET", path, token, NULL, &sorder), 200);
    assert_string_equal(str(json_object_get(sorder, "order"), "fulfillment_status"), "fulfilled");
    json_decref(sorder);
    assert_int_equal(e2e_events_of(w, id, "order.fulfilled"), 1);
    assert_int_equal(e2e_call(w->sc_url, "POST", "/_sim/advance", NULL, "{}", NULL), 200);
    e2e_wait_count(w,
                   "SELECT COUNT(*) FROM shipments WHERE order_id = $1 AND status = 'IN_TRANSIT'",
                   id, 1, WAIT_MS);
    json_decref(e2e_wait_order_field(w, id, "shipmentStatus", "IN_TRANSIT", WAIT_MS));

    /* Nothing twice: one fulfilment, no job left, no alert. */
    fs = e2e_fulfillments(w, sid);
    assert_int_equal(json_array_size(fs), 1);
    json_decref(fs);
    assert_int_equal(e2e_events_of(w, id, "operator.alert"), 0);
    assert_int_equal(e2e_sp_queued(w), 0);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_automation_flow)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
