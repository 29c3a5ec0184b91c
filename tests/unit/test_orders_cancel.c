/* F3_TEST: backends
 * test_orders_cancel.c - order cancellation: with print jobs in every state the result
 * counts the jobs to cancel, flags the printing ones for review (review_reason, one
 * operator alert) and reports the completed ones; the order is CANCELLED and
 * order.cancelled reaches the print and shipping services once; a repeat answers the same
 * result without publishing; completed or fulfilled orders are refused; the Shopify
 * webhook path (order_ingest with a cancelled revision) goes through the same code.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"

#include "bus/bus.h"
#include "integrations/shopify/order.h"
#include "services/orders/cancellation.h"
#include "services/orders/ingest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

#define TENANT            "t-cancel"
#define PRINT_CANCELLED_Q "order.cancelled@print-service"
#define SHIP_CANCELLED_Q  "order.cancelled@shipping-service"

typedef struct fx {
    f3test_bus tb;
    bus *b;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f3test_bus_new(&f->tb, backend);
    err e = {0};
    f->b = bus_new(f->tb.d, f->tb.s, BUS_SVC_ORDER, &e);
    if (!f->b)
        fail_msg("bus_new: %s", e.msg);
    f3test_bus_exec(f->tb.d, "INSERT INTO tenants (id, name, slug, created_at, updated_at)"
                             " VALUES ('" TENANT "', 'Shop', 'shop', 0, 0),"
                             " ('t-other', 'Other', 'other', 0, 0)");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    bus_free(f->b);
    f3test_bus_drop(&f->tb);
    free(f);
    return 0;
}

/* Order `id` in `status` with one line item "<id>-li". */
static void make_order(fx *f, const char *id, const char *status)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number, status,"
             " customer_name, created_at, updated_at) VALUES ('%s', '" TENANT "', 'sh-%s',"
             " '#%s', '%s', 'Ann', 0, 0);"
             "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, title,"
             " quantity, created_at, updated_at) VALUES ('%s-li', '" TENANT "', '%s', '1',"
             " 'Vase', 9, 0, 0)",
             id, id, id, status, id, id);
    f3test_bus_exec(f->tb.d, sql);
}

static void add_job(fx *f, const char *order, int n, const char *status)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO print_jobs (id, tenant_id, order_id, line_item_id, unit_index,"
             " status, created_at, updated_at) VALUES ('%s-pj%d', '" TENANT "', '%s', '%s-li',"
             " %d, '%s', 0, 0)",
             order, n, order, order, n, status);
    f3test_bus_exec(f->tb.d, sql);
}

static int64_t count(fx *f, const char *sql, const char *param)
{
    return f3test_bus_count(f->tb.d, sql, param);
}

static int64_t jobs(fx *f, const char *queue)
{
    return count(f, "SELECT COUNT(*) FROM bus_jobs WHERE queue = $1", queue);
}

static int64_t log_count(fx *f, const char *type)
{
    return count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", type);
}

static int jobs_field(const json_t *result, const char *name)
{
    return (int)json_integer_value(json_object_get(json_object_get(result, "jobs"), name));
}

static void test_jobs_in_every_state(void **state)
{
    fx *f = *state;
    make_order(f, "o1", "PROCESSING");
    const char *states[] = {"PENDING",  "QUEUED",    "ASSIGNED", "PRINTING",
                            "PRINTING", "COMPLETED", "FAILED",   "CANCELLED"};
    for (int i = 0; i < 8; i++)
        add_job(f, "o1", i, states[i]);
    orders_cancel_opts o = {.source = "api", .reason = "customer asked", .user_id = "u-1"};
    json_t *r = NULL;
    err e = {0};
    assert_int_equal(orders_cancel(f->tb.d, f->b, TENANT, "o1", &o, &r, &e), 0);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "CANCELLED");
    assert_false(json_is_true(json_object_get(r, "alreadyCancelled")));
    assert_true(json_is_true(json_object_get(r, "needsReview")));
    assert_int_equal(jobs_field(r, "total"), 8);
    assert_int_equal(jobs_field(r, "toCancel"), 3);
    assert_int_equal(jobs_field(r, "flaggedForReview"), 2);
    assert_int_equal(jobs_field(r, "alreadyCompleted"), 1);
    assert_int_equal(jobs_field(r, "alreadyEnded"), 2);
    json_decref(r);

    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM orders WHERE id = $1 AND status = 'CANCELLED'"
                           " AND cancelled_at IS NOT NULL AND review_reason IS NOT NULL",
                           "o1"),
                     1);
    assert_int_equal(jobs(f, PRINT_CANCELLED_Q), 1);
    assert_int_equal(jobs(f, SHIP_CANCELLED_Q), 1);
    assert_int_equal(log_count(f, ORDERS_LOG_CANCELLED), 1);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM event_log WHERE event_type = 'operator.alert'"
                           " AND order_id = $1 AND metadata LIKE '%CANCELLATION_NEEDS_REVIEW%'",
                           "o1"),
                     1);
    /* Its mail names the order by its Shopify number. */
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM retry_queue WHERE job_type = 'NOTIFICATION' AND"
                           " payload LIKE $1",
                           "%\"orderNumber\":\"#o1\"%"),
                     1);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM event_log WHERE event_type = 'order.cancelled'"
                           " AND user_id = $1",
                           "u-1"),
                     1);
    /* The print service cancels its jobs; this module never touches them. */
    assert_int_equal(count(f, "SELECT COUNT(*) FROM print_jobs WHERE status = $1", "PENDING"), 1);

    /* Again: the same answer, nothing published or logged. */
    assert_int_equal(orders_cancel(f->tb.d, f->b, TENANT, "o1", &o, &r, &e), 0);
    assert_true(json_is_true(json_object_get(r, "alreadyCancelled")));
    assert_int_equal(jobs_field(r, "toCancel"), 3);
    assert_int_equal(jobs_field(r, "flaggedForReview"), 2);
    json_decref(r);
    assert_int_equal(jobs(f, PRINT_CANCELLED_Q), 1);
    assert_int_equal(log_count(f, ORDERS_LOG_CANCELLED), 1);
    assert_int_equal(log_count(f, "operator.alert"), 1);
}

static void test_nothing_printing_needs_no_review(void **state)
{
    fx *f = *state;
    make_order(f, "o2", "PENDING");
    add_job(f, "o2", 0, "QUEUED");
    add_job(f, "o2", 1, "COMPLETED");
    json_t *r = NULL;
    err e = {0};
    assert_int_equal(orders_cancel(f->tb.d, f->b, TENANT, "o2", NULL, &r, &e), 0);
    assert_false(json_is_true(json_object_get(r, "needsReview")));
    assert_int_equal(jobs_field(r, "toCancel"), 1);
    assert_int_equal(jobs_field(r, "alreadyCompleted"), 1);
    assert_string_equal(json_string_value(json_object_get(r, "source")), "api");
    json_decref(r);
    assert_int_equal(log_count(f, "operator.alert"), 0);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM orders WHERE id = $1 AND review_reason IS NULL", "o2"), 1);
}

static void test_refusals(void **state)
{
    fx *f = *state;
    make_order(f, "done", "COMPLETED");
    make_order(f, "shipped", "PROCESSING");
    f3test_bus_exec(f->tb.d, "INSERT INTO order_fulfillments (tenant_id, order_id, state,"
                             " created_at, updated_at) VALUES ('" TENANT "', 'shipped', 'DONE',"
                             " 0, 0)");
    json_t *r = NULL;
    err e = {0};
    assert_int_equal(orders_cancel(f->tb.d, f->b, TENANT, "done", NULL, &r, &e), F3_ECONFLICT);
    assert_non_null(strstr(e.msg, "COMPLETED"));
    assert_null(r);
    assert_int_equal(orders_cancel(f->tb.d, f->b, TENANT, "shipped", NULL, &r, &e), F3_ECONFLICT);
    assert_non_null(strstr(e.msg, "fulfilled"));
    assert_int_equal(orders_cancel(f->tb.d, f->b, TENANT, "nope", NULL, &r, &e), F3_ENOTFOUND);
    /* Another tenant's order is not found either. */
    assert_int_equal(orders_cancel(f->tb.d, f->b, "t-other", "shipped", NULL, &r, &e),
                     F3_ENOTFOUND);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM orders WHERE status = $1", "CANCELLED"), 0);
    assert_int_equal(jobs(f, PRINT_CANCELLED_Q), 0);
}

static void shopify_order_of(shopify_order *o, bool cancelled)
{
    json_t *doc =
        json_pack("{s:I,s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:[{s:I,s:s,s:s,s:i,s:s}]}", "id",
                  (json_int_t)7001, "name", "#7001", "order_number", 7001, "currency", "EUR",
                  "total_price", "10.00", "created_at", "2026-03-14T10:00:00Z", "updated_at",
                  cancelled ? "2026-03-14T11:00:00Z" : "2026-03-14T10:00:00Z", "financial_status",
                  "paid", "line_items", "id", (json_int_t)9, "title", "Vase", "sku", "VASE-1",
                  "quantity", 1, "price", "10.00");
    if (cancelled) {
        json_object_set_new(doc, "cancelled_at", json_string("2026-03-14T11:00:00Z"));
        json_object_set_new(doc, "cancel_reason", json_string("customer"));
    }
    err e = {0};
    if (shopify_order_from_json(doc, o, &e))
        fail_msg("order: %s", e.msg);
    json_decref(doc);
}

static void ingest(fx *f, bool cancelled, order_ingest_result *r)
{
    shopify_order o;
    shopify_order_of(&o, cancelled);
    err e = {0};
    db_conn *c = db_acquire(f->tb.d, &e);
    assert_non_null(c);
    assert_int_equal(db_begin(c, &e), 0);
    if (order_ingest(c, f->b, TENANT, &o, ORDER_INGEST_UPSERT, "webhook", r, &e))
        fail_msg("ingest: %s", e.msg);
    assert_int_equal(db_commit(c, &e), 0);
    db_release(c);
    shopify_order_free(&o);
}

static void test_webhook_path_uses_the_same_cancellation(void **state)
{
    fx *f = *state;
    order_ingest_result r;
    ingest(f, false, &r);
    char order_id[64];
    snprintf(order_id, sizeof order_id, "%s", r.order_id);
    char sql[512];
    snprintf(sql, sizeof sql, "UPDATE orders SET status = 'PROCESSING' WHERE id = '%s'", order_id);
    f3test_bus_exec(f->tb.d, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO print_jobs (id, tenant_id, order_id, line_item_id, status, created_at,"
             " updated_at) SELECT 'wpj', tenant_id, order_id, id, 'PRINTING', 0, 0"
             " FROM line_items WHERE order_id = '%s'",
             order_id);
    f3test_bus_exec(f->tb.d, sql);
    ingest(f, true, &r);
    assert_true(r.cancelled);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM order_cancellations WHERE order_id = $1 AND"
                           " source = 'webhook' AND result LIKE '%\"flaggedForReview\":1%'",
                           order_id),
                     1);
    assert_int_equal(jobs(f, PRINT_CANCELLED_Q), 1);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM event_log WHERE event_type = 'operator.alert'"
                           " AND metadata LIKE $1",
                           "%CANCELLATION_NEEDS_REVIEW%"),
                     1);
    /* A redelivery changes nothing. */
    ingest(f, true, &r);
    assert_false(r.cancelled);
    assert_int_equal(jobs(f, PRINT_CANCELLED_Q), 1);
    assert_int_equal(log_count(f, ORDERS_LOG_CANCELLED), 1);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jobs_in_every_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_printing_needs_no_review, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_path_uses_the_same_cancellation, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
