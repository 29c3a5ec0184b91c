/*
 * test_shopify_client.c - the pieces of the Shopify client that need no server:
 * Link headers, the call-limit header, client options, and the JSON of
 * fulfillment orders and fulfillment requests.
 */
#include "support/f3test.h"

#include "core/buf.h"
#include "integrations/shopify/client.h"

#include <sodium.h>
#include <string.h>

static void test_link_next(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 0);
    const char *both = "<https://s.myshopify.com/admin/api/2025-10/orders.json?page_info=abc&limit="
                       "3>; rel=\"previous\", <https://s.myshopify.com/admin/api/2025-10/"
                       "orders.json?page_info=def&limit=3>; rel=\"next\"";
    assert_int_equal(shopify_link_next(both, &b), 0);
    assert_string_equal(
        buf_cstr(&b),
        "https://s.myshopify.com/admin/api/2025-10/orders.json?page_info=def&limit=3");
    buf_reset(&b);
    assert_int_equal(shopify_link_next("<https://x/a?page_info=1>; rel=next", &b), 0);
    assert_string_equal(buf_cstr(&b), "https://x/a?page_info=1");
    buf_reset(&b);
    assert_int_equal(shopify_link_next("<https://x/a?page_info=1>; rel=\"previous\"", &b),
                     F3_ENOTFOUND);
    assert_int_equal(shopify_link_next(NULL, &b), F3_ENOTFOUND);
    assert_int_equal(shopify_link_next("https://x/a; rel=\"next\"", &b), F3_EINVAL);
    assert_int_equal(shopify_link_next("<https://x/a; rel=\"next\"", &b), F3_EINVAL);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_call_limit(void **state)
{
    (void)state;
    int used = -5, bucket = -5;
    assert_int_equal(shopify_parse_call_limit("32/40", &used, &bucket), 0);
    assert_int_equal(used, 32);
    assert_int_equal(bucket, 40);
    const char *bad[] = {"",     "32",     "/40",   "32/",   "a/40",
                         "32/0", "32/40x", "-1/40", "1/-40", "12345678901/40"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (shopify_parse_call_limit(bad[i], &used, &bucket) == 0)
            fail_msg("'%s' was accepted", bad[i]);
    assert_int_equal(shopify_parse_call_limit(NULL, &used, &bucket), -1);
    assert_int_equal(used, 32);
}

static void test_client_options(void **state)
{
    (void)state;
    err e;
    shopify_client_opts o = {.shop_domain = "shop.myshopify.com", .access_token = "t"};
    shopify_client *c = shopify_client_new(&o, &e);
    assert_non_null(c);
    int used, bucket;
    shopify_client_call_limit(c, &used, &bucket);
    assert_int_equal(used, -1);
    assert_false(shopify_client_near_limit(c));
    shopify_client_free(c);

    o.shop_domain = "shop.example.com";
    assert_null(shopify_client_new(&o, &e));
    assert_non_null(strstr(e.msg, "SHOPIFY_SHOP_DOMAIN"));
    o.shop_domain = "shop.myshopify.com";
    o.api_version = "2025";
    assert_null(shopify_client_new(&o, &e));
    assert_non_null(strstr(e.msg, "SHOPIFY_API_VERSION"));
    o.api_version = NULL;
    o.access_token = NULL;
    assert_null(shopify_client_new(&o, &e));
    assert_non_null(strstr(e.msg, "SHOPIFY_CLIENT_ID"));
    o.access_token = "t";
    o.base_url = "ftp://x";
    assert_null(shopify_client_new(&o, &e));
    assert_non_null(strstr(e.msg, "SHOPIFY_API_URL"));
}

static void test_fulfillment_request_json(void **state)
{
    (void)state;
    shopify_fo_line_selection lines[] = {{"15811122233344", 2}};
    shopify_fo_selection sel[] = {{"7301234567890", lines, 1}, {"7301234567891", NULL, 0}};
    shopify_fulfillment_request rq = {.orders = sel,
                                      .order_count = 2,
                                      .tracking_number = "3SABCD",
                                      .tracking_company = "PostNL",
                                      .notify_customer = true};
    json_t *body = NULL;
    err e;
    assert_int_equal(shopify_fulfillment_request_json(&rq, &body, &e), 0);
    char *text = json_dumps(body, JSON_COMPACT);
    assert_string_equal(text,
                        "{\"fulfillment\":{\"line_items_by_fulfillment_order\":[{\"fulfillment_"
                        "order_id\":7301234567890,\"fulfillment_order_line_items\":[{\"id\":"
                        "15811122233344,\"quantity\":2}]},{\"fulfillment_order_id\":"
                        "7301234567891}],\"tracking_info\":{\"number\":\"3SABCD\",\"company\":"
                        "\"PostNL\"},\"notify_customer\":true}}");
    free(text);
    json_decref(body);

    rq.tracking_number = NULL;
    rq.tracking_url = "https://t.example/1";
    assert_int_equal(shopify_fulfillment_request_json(&rq, &body, &e), F3_EINVAL);
    assert_null(body);
    rq.tracking_url = NULL;
    lines[0].quantity = 0;
    assert_int_equal(shopify_fulfillment_request_json(&rq, &body, &e), F3_EINVAL);
    lines[0].quantity = 1;
    sel[1].fulfillment_order_id = "-3";
    assert_int_equal(shopify_fulfillment_request_json(&rq, &body, &e), F3_EINVAL);
    rq.order_count = 0;
    assert_int_equal(shopify_fulfillment_request_json(&rq, &body, &e), F3_EINVAL);
}

static void test_fulfillment_orders_json(void **state)
{
    (void)state;
    const char *text =
        "{\"fulfillment_orders\":[{\"id\":7301234567890,\"order_id\":6128394710221,"
        "\"assigned_location_id\":null,\"status\":\"open\",\"request_status\":\"unsubmitted\","
        "\"supported_actions\":[\"create_fulfillment\",\"move\"],\"line_items\":[{\"id\":"
        "15811122233344,\"fulfillment_order_id\":7301234567890,\"line_item_id\":15532001112233,"
        "\"variant_id\":47011122233344,\"quantity\":2,\"fulfillable_quantity\":2}]},"
        "{\"id\":7301234567891,\"order_id\":6128394710221,\"status\":\"on_hold\","
        "\"supported_actions\":[\"release_hold\"],\"line_items\":[]}]}";
    json_t *doc = json_loads(text, 0, NULL);
    shopify_fulfillment_orders fos;
    err e;
    assert_int_equal(shopify_fulfillment_orders_from_json(doc, &fos, &e), 0);
    json_decref(doc); /* the result keeps its own reference */
    assert_int_equal(fos.count, 2);
    assert_string_equal(fos.items[0].id, "7301234567890");
    assert_string_equal(fos.items[0].assigned_location_id, "");
    assert_string_equal(fos.items[0].line_items[0].line_item_id, "15532001112233");
    assert_true(shopify_fulfillment_order_fulfillable(&fos.items[0]));
    assert_false(shopify_fulfillment_order_fulfillable(&fos.items[1]));
    shopify_fulfillment_orders_free(&fos);

    doc = json_loads("{\"fulfillment_orders\":[{\"id\":1,\"order_id\":2,\"status\":\"open\","
                     "\"line_items\":[{\"id\":3,\"line_item_id\":\"4\",\"quantity\":1}]}]}",
                     0, NULL);
    assert_int_equal(shopify_fulfillment_orders_from_json(doc, &fos, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "fulfillment_orders[0].line_items[0].line_item_id"));
    assert_null(fos.items);
    json_decref(doc);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_next),
        cmocka_unit_test(test_call_limit),
        cmocka_unit_test(test_client_options),
        cmocka_unit_test(test_fulfillment_request_json),
        cmocka_unit_test(test_fulfillment_orders_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
