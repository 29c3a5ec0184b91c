/* F3_TEST: backends
 * test_orders_ingest.c - the order upsert shared by webhooks and backfill: a new order is
 * stored with its line items and announced once (order.created in the print service's
 * queue, in the same transaction), replays and older revisions change nothing, newer
 * ones update, orders/create never overwrites, unmapped SKUs are flagged and reported,
 * cancellation follows the status table, refunds are logged, a rollback leaves nothing.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"

#include "bus/bus.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "integrations/shopify/order.h"
#include "services/common/notify.h"
#include "services/orders/ingest.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

#define TENANT            "t-ingest"
#define PRINT_CREATED_Q   "order.created@print-service"
#define PRINT_CANCELLED_Q "order.cancelled@print-service"
#define SHIP_CANCELLED_Q  "order.cancelled@shipping-service"

typedef struct fx {
    f3test_bus tb;
    bus *b;
    db_conn *c;
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
                             " VALUES ('" TENANT "', 'Shop', 'shop', 0, 0)");
    f3test_bus_exec(f->tb.d,
                    "INSERT INTO product_mappings (id, tenant_id, sku, name, created_at,"
                    " updated_at) VALUES ('pm-vase', '" TENANT "', 'VASE-1', 'Vase', 0, 0)");
    f->c = db_acquire(f->tb.d, &e);
    assert_non_null(f->c);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    db_release(f->c);
    bus_free(f->b);
    f3test_bus_drop(&f->tb);
    free(f);
    return 0;
}

/* An order as Shopify sends it: line items VASE-1 (mapped) x qty and `second_sku`
 * (NULL = no SKU) x1; updated_at at minute `rev`; cancelled when cancelled is set. */
static void make_order(shopify_order *o, const char *id, int rev, int qty, const char *second_sku,
                       const char *financial, bool cancelled)
{
    char updated[32];
    snprintf(updated, sizeof updated, "2026-03-14T10:%02d:00Z", rev);
    json_t *doc = json_pack(
        "{s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:{s:s,s:s,s:s},"
        "s:[{s:I,s:I,s:I,s:s,s:s,s:i,s:s},{s:I,s:n,s:n,s:s,s:s?,s:i,s:s}]}",
        "id", id, "name", "#1001", "order_number", 1001, "email", "ann@example.org",
        "financial_status", financial, "currency", "EUR", "total_price", "23.50", "created_at",
        "2026-03-14T10:00:00Z", "updated_at", updated, "customer", "first_name", "Ann", "last_name",
        "Lee", "shipping_address", "address1", "Main St 1", "city", "Gent", "country_code", "BE",
        "line_items", "id", (json_int_t)501, "product_id", (json_int_t)11, "variant_id",
        (json_int_t)12, "title", "Vase", "sku", "VASE-1", "quantity", qty, "price", "10.00", "id",
        (json_int_t)502, "product_id", "variant_id", "title", "Coaster", "sku", second_sku,
        "quantity", 1, "price", "3.50");
    assert_non_null(doc);
    /* json_pack cannot put an integer id behind "s" for "id": replace the text ids. */
    json_object_set_new(doc, "id", json_integer(strtoll(id, NULL, 10)));
    if (cancelled) {
        json_object_set_new(doc, "cancelled_at", json_string("2026-03-14T11:00:00Z"));
        json_object_set_new(doc, "cancel_reason", json_string("customer"));
    }
    err e = {0};
    if (shopify_order_from_json(doc, o, &e))
        fail_msg("order: %s", e.msg);
    json_decref(doc);
}

static int ingest(fx *f, const shopify_order *o, order_ingest_mode mode, order_ingest_result *r)
{
    err e = {0};
    assert_int_equal(db_begin(f->c, &e), 0);
    int rc = order_ingest(f->c, f->b, TENANT, o, mode, "webhook", r, &e);
    if (rc) {
        db_rollback(f->c, &e);
        return rc;
    }
    if (db_commit(f->c, &e))
        fail_msg("commit: %s", e.msg);
    return 0;
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
    return count(
        f, "SELECT COUNT(*) FROM event_log WHERE tenant_id = '" TENANT "' AND event_type = $1",
        type);
}

static char *order_text(fx *f, const char *col)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT %s FROM orders WHERE shopify_order_id = '9001'", col);
    err e = {0};
    db_stmt *s = db_prepare(f->c, sql, &e);
    assert_non_null(s);
    assert_int_equal(db_step(s, &e), DB_ROW);
    const char *v = db_col_text(s, 0);
    char *out = strdup(v ? v : "(null)");
    db_finalize(s);
    return out;
}

static void expect_order(fx *f, const char *col, const char *want)
{
    char *v = order_text(f, col);
    assert_string_equal(v, want);
    free(v);
}

static void test_new_order_is_stored_and_announced_once(void **state)
{
    fx *f = *state;
    shopify_order o;
    make_order(&o, "9001", 1, 2, "COASTER", "pending", false);
    order_ingest_result r;
    assert_int_equal(ingest(f, &o, ORDER_INGEST_UPSERT, &r), 0);
    assert_int_equal(r.outcome, ORDER_INGEST_CREATED);
    assert_true(uuid_valid(r.order_id));
    expect_order(f, "status", "PENDING");
    expect_order(f, "customer_name", "Ann Lee");
    expect_order(f, "customer_email", "ann@example.org");
    expect_order(f, "total_minor", "2350");
    expect_order(f, "currency", "EUR");
    expect_order(f, "financial_status", "pending");
    expect_order(f, "shopify_order_number", "#1001");
    char *addr = order_text(f, "shipping_address");
    assert_non_null(strstr(addr, "\"city\":\"Gent\""));
    free(addr);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM line_items WHERE order_id = $1", r.order_id),
                     2);
    assert_int_equal(count(f,
                           "SELECT unit_price_minor * quantity FROM line_items WHERE"
                           " sku = 'VASE-1' AND product_mapping_id = 'pm-vase'",
                           NULL),
                     2000);
    /* order.created in the print service's queue, with the catalog's payload. */
    assert_int_equal(jobs(f, PRINT_CREATED_Q), 1);
    bus_job **list = NULL;
    size_t n = 0;
    err e = {0};
    assert_int_equal(bus_store_list(f->tb.s, PRINT_CREATED_Q, BUS_STATE_WAITING, 0, 10,
                                    clock_now_ms(), &list, &n, &e),
                     0);
    assert_int_equal(n, 1);
    json_t *ev = json_loads(list[0]->data, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(ev, "orderId")), r.order_id);
    assert_string_equal(json_string_value(json_object_get(ev, "tenantId")), TENANT);
    json_t *items = json_object_get(ev, "lineItems");
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "productSku")),
                        "VASE-1");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "quantity")), 2);
    assert_true(
        uuid_valid(json_string_value(json_object_get(json_array_get(items, 0), "lineItemId"))));
    json_decref(ev);
    bus_jobs_free(list, n);
    assert_int_equal(log_count(f, ORDERS_LOG_CREATED), 1);

    /* The same revision again, and through orders/create: nothing changes. */
    assert_int_equal(ingest(f, &o, ORDER_INGEST_UPSERT, &r), 0);
    assert_int_equal(r.outcome, ORDER_INGEST_UNCHANGED);
    assert_int_equal(ingest(f, &o, ORDER_INGEST_CREATE_ONLY, &r), 0);
    assert_int_equal(r.outcome, ORDER_INGEST_UNCHANGED);
    assert_int_equal(jobs(f, PRINT_CREATED_Q), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM orders", NULL), 1);
    assert_int_equal(log_count(f, ORDERS_LOG_CREATED), 1);
    shopify_order_free(&o);
}

static void test_newer_revisions_update_older_ones_do_not(void **state)
{
    fx *f = *state;
    shopify_order v1, v2, v0;
    make_order(&v1, "9001", 5, 1, "COASTER", "pending", false);
    make_order(&v2, "9001", 9, 1, "COASTER", "paid", false);
    make_order(&v0, "9001", 2, 1, "COASTER", "voided", false);
    order_ingest_result r;
    /* An update that arrives first creates the order (orders/updated before orders/create). */
    assert_int_equal(ingest(f, &v1, ORDER_INGEST_UPSERT, &r), 0);
    assert_int_equal(r.outcome, ORDER_INGEST_CREATED);
    /* The late orders/create is a no-op even with a newer revision. */
    assert_int_equal(ingest(f, &v2, ORDER_INGEST_CREATE_ONLY, &r), 0);
    assert_int_equal(r.outcome, ORDER_INGEST_UNCHANGED);
    expect_order(f, "financial_status", "pending");
    assert_int_equal(ingest(f, &v2, ORDER_INGEST_UPSERT, &r), 0);
    assert_int_equal(r.outcome, ORDER_INGEST_UPDATED);
    expect_order(f, "financial_status", "paid");
    assert_int_equal(ingest(f, &v0, ORDER_INGEST_UPSERT, &r), 0);
    assert_int_equal(r.outcome, ORDER_INGEST_UNCHANGED);
    expect_order(f, "financial_status", "paid");
    assert_int_equal(jobs(f, PRINT_CREATED_Q), 1);
    assert_int_equal(log_count(f, ORDERS_LOG_UPDATED), 1);
    shopify_order_free(&v1);
    shopify_order_free(&v2);
    shopify_order_free(&v0);
}

static void test_unmapped_and_missing_skus_need_mapping(void **state)
{
    fx *f = *state;
    shopify_order o;
    make_order(&o, "9001", 1, 1, "NO-SUCH-SKU", "paid", false);
    order_ingest_result r;
    assert_int_equal(ingest(f, &o, ORDER_INGEST_UPSERT, &r), 0);
    assert_int_equal(r.needs_mapping, 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM line_items WHERE needs_mapping = TRUE", NULL),
                     1);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM line_items WHERE needs_mapping = FALSE AND"
                           " sku = 'VASE-1'",
                           NULL),
                     1);
    assert_int_equal(log_count(f, ORDERS_LOG_NEEDS_MAPPING), 1);
    assert_int_equal(log_count(f, NOTIFY_ALERT_EVENT), 1);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM event_log WHERE event_type = $1 AND"
                           " severity = 'WARNING' AND line_item_id IS NOT NULL",
                           ORDERS_LOG_NEEDS_MAPPING),
                     1);
    shopify_order_free(&o);

    shopify_order nosku;
    make_order(&nosku, "9002", 1, 1, NULL, "paid", false);
    assert_int_equal(ingest(f, &nosku, ORDER_INGEST_UPSERT, &r), 0);
    assert_int_equal(r.needs_mapping, 1);
    assert_int_equal(log_count(f, ORDERS_LOG_NEEDS_MAPPING), 2);
    assert_int_equal(log_count(f, NOTIFY_ALERT_EVENT), 2);
    /* Still announced: the print service skips what it cannot print. */
    assert_int_equal(jobs(f, PRINT_CREATED_Q), 2);
    shopify_order_free(&nosku);
}

static void test_cancellation_follows_the_status_table(void **state)
{
    fx *f = *state;
    shopify_order o, c;
    make_order(&o, "9001", 1, 1, "COASTER", "paid", false);
    make_order(&c, "9001", 7, 1, "COASTER", "refunded", true);
    order_ingest_result r;
    assert_int_equal(ingest(f, &o, ORDER_INGEST_UPSERT, &r), 0);
    f3test_bus_exec(f->tb.d, "UPDATE orders SET status = 'PROCESSING'");
    assert_int_equal(ingest(f, &c, ORDER_INGEST_UPSERT, &r), 0);
    assert_true(r.cancelled);
    expect_order(f, "status", "CANCELLED");
    assert_int_equal(jobs(f, PRINT_CANCELLED_Q), 1);
    assert_int_equal(jobs(f, SHIP_CANCELLED_Q), 1);
    assert_int_equal(log_count(f, ORDERS_LOG_CANCELLED), 1);
    /* Again: already cancelled, nothing more. */
    assert_int_equal(ingest(f, &c, ORDER_INGEST_UPSERT, &r), 0);
    assert_false(r.cancelled);
    assert_int_equal(jobs(f, PRINT_CANCELLED_Q), 1);
    shopify_order_free(&o);
    shopify_order_free(&c);

    /* A completed order cannot move: the request is recorded for an operator. */
    shopify_order d, dc;
    make_order(&d, "9002", 1, 1, "COASTER", "paid", false);
    make_order(&dc, "9002", 8, 1, "COASTER", "refunded", true);
    assert_int_equal(ingest(f, &d, ORDER_INGEST_UPSERT, &r), 0);
    f3test_bus_exec(f->tb.d,
                    "UPDATE orders SET status = 'COMPLETED' WHERE shopify_order_id = '9002'");
    assert_int_equal(ingest(f, &dc, ORDER_INGEST_UPSERT, &r), 0);
    assert_false(r.cancelled);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM orders WHERE shopify_order_id = '9002' AND"
                           " status = 'COMPLETED' AND cancel_requested_at IS NOT NULL",
                           NULL),
                     1);
    assert_int_equal(log_count(f, ORDERS_LOG_CANCEL_REQUESTED), 1);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM event_log WHERE event_type = $1 AND"
                           " severity = 'ERROR'",
                           NOTIFY_ALERT_EVENT),
                     1);
    assert_int_equal(jobs(f, PRINT_CANCELLED_Q), 1);
    shopify_order_free(&d);
    shopify_order_free(&dc);
}

static void test_order_first_seen_cancelled_is_not_announced(void **state)
{
    fx *f = *state;
    shopify_order c;
    make_order(&c, "9001", 3, 1, "COASTER", "refunded", true);
    order_ingest_result r;
    assert_int_equal(ingest(f, &c, ORDER_INGEST_UPSERT, &r), 0);
    assert_int_equal(r.outcome, ORDER_INGEST_CREATED);
    expect_order(f, "status", "CANCELLED");
    assert_int_equal(jobs(f, PRINT_CREATED_Q), 0);
    assert_int_equal(jobs(f, PRINT_CANCELLED_Q), 0);
    shopify_order_free(&c);
}

static void test_rollback_leaves_nothing(void **state)
{
    fx *f = *state;
    shopify_order o;
    make_order(&o, "9001", 1, 1, "NOPE", "paid", false);
    order_ingest_result r;
    err e = {0};
    assert_int_equal(db_begin(f->c, &e), 0);
    assert_int_equal(order_ingest(f->c, f->b, TENANT, &o, ORDER_INGEST_UPSERT, "backfill", &r, &e),
                     0);
    assert_int_equal(db_rollback(f->c, &e), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM orders", NULL), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM line_items", NULL), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM event_log", NULL), 0);
    assert_int_equal(jobs(f, PRINT_CREATED_Q), 0);
    shopify_order_free(&o);
}

static void test_refund_is_logged(void **state)
{
    fx *f = *state;
    shopify_order o;
    make_order(&o, "9001", 1, 1, "COASTER", "paid", false);
    order_ingest_result r;
    assert_int_equal(ingest(f, &o, ORDER_INGEST_UPSERT, &r), 0);
    json_t *refund = json_pack("{s:I,s:I,s:s}", "id", (json_int_t)777, "order_id", (json_int_t)9001,
                               "note", "damaged");
    err e = {0};
    assert_int_equal(db_begin(f->c, &e), 0);
    assert_int_equal(order_ingest_refund(f->c, TENANT, refund, &e), 0);
    assert_int_equal(db_commit(f->c, &e), 0);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM event_log WHERE event_type = $1 AND"
                           " order_id IS NOT NULL",
                           ORDERS_LOG_REFUNDED),
                     1);
    json_t *bad = json_pack("{s:s}", "note", "no ids");
    assert_int_equal(order_ingest_refund(f->c, TENANT, bad, &e), F3_EINVAL);
    json_decref(bad);
    json_decref(refund);
    shopify_order_free(&o);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_order_is_stored_and_announced_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_newer_revisions_update_older_ones_do_not, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unmapped_and_missing_skus_need_mapping, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancellation_follows_the_status_table, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_order_first_seen_cancelled_is_not_announced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollback_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refund_is_logged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
