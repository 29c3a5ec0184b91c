/*
 * test_shopify_order.c - reading Shopify order documents: a realistic paid
 * order with several items, missing SKUs and null fields, money in 0-, 2- and
 * 3-decimal currencies, and rejections that name the offending field.
 */
#include "support/f3test.h"

#include "integrations/shopify/order.h"

#include <stdio.h>
#include <string.h>

/* An orders/paid body as Shopify sends it (invented values, spec §1.7). */
static const char multi_item[] =
    "{\"id\":6128394710221,\"admin_graphql_api_id\":\"gid://shopify/Order/6128394710221\","
    "\"name\":\"#1042\",\"order_number\":1042,\"email\":\"jan.devries@example.org\","
    "\"created_at\":\"2026-03-14T10:21:07+01:00\",\"updated_at\":\"2026-03-14T10:21:39+01:00\","
    "\"cancelled_at\":null,\"cancel_reason\":null,\"financial_status\":\"paid\","
    "\"fulfillment_status\":null,\"currency\":\"EUR\",\"total_price\":\"54.90\","
    "\"subtotal_price\":\"49.90\",\"total_tax\":\"9.53\",\"test\":false,"
    "\"customer\":{\"id\":8011223344556,\"email\":\"jan.devries@example.org\","
    "\"first_name\":\"Jan\",\"last_name\":\"de Vries\"},"
    "\"shipping_address\":{\"first_name\":\"Jan\",\"last_name\":\"de Vries\",\"name\":\"Jan de "
    "Vries\",\"company\":null,\"address1\":\"Kerkstraat 12\",\"address2\":\"\","
    "\"city\":\"Utrecht\",\"province\":null,\"province_code\":null,\"zip\":\"3511 AB\","
    "\"country\":\"Netherlands\",\"country_code\":\"NL\",\"phone\":\"+31611122233\","
    "\"latitude\":52.0907,\"longitude\":5.1214},"
    "\"line_items\":["
    "{\"id\":15532001112233,\"product_id\":9012345678901,\"variant_id\":47011122233344,"
    "\"title\":\"Cable Organizer\",\"variant_title\":\"Black / PLA\",\"sku\":\"CO-BLK-PLA\","
    "\"quantity\":2,\"fulfillable_quantity\":2,\"fulfillment_status\":null,"
    "\"requires_shipping\":true,\"grams\":80,\"price\":\"12.45\",\"properties\":[]},"
    "{\"id\":15532001112234,\"product_id\":9012345678902,\"variant_id\":47011122233345,"
    "\"title\":\"Headphone Stand\",\"variant_title\":null,\"sku\":\"\",\"quantity\":1,"
    "\"fulfillable_quantity\":1,\"requires_shipping\":true,\"grams\":210,\"price\":\"25.00\","
    "\"properties\":[{\"name\":\"Colour\",\"value\":\"Orange\"}]},"
    "{\"id\":15532001112235,\"product_id\":null,\"variant_id\":null,\"title\":\"Gift wrap\","
    "\"sku\":null,\"quantity\":1,\"requires_shipping\":false,\"price\":\"0.00\"}"
    "]}";

static void test_multi_item_order(void **state)
{
    (void)state;
    shopify_order o;
    err e;
    err_clear(&e);
    int rc = shopify_order_parse(multi_item, strlen(multi_item), &o, &e);
    if (rc)
        fail_msg("%s", e.msg);
    assert_string_equal(o.id, "6128394710221");
    assert_string_equal(o.name, "#1042");
    assert_int_equal(o.order_number, 1042);
    assert_string_equal(o.email, "jan.devries@example.org");
    assert_string_equal(o.customer_first_name, "Jan");
    assert_string_equal(o.customer_last_name, "de Vries");
    assert_string_equal(o.financial_status, "paid");
    assert_null(o.fulfillment_status);
    assert_null(o.cancel_reason);
    assert_true(o.cancelled_at_ms == -1);
    assert_string_equal(o.currency, "EUR");
    assert_int_equal(o.currency_exponent, 2);
    assert_int_equal(o.total_price_minor, 5490);
    assert_int_equal(o.subtotal_price_minor, 4990);
    assert_int_equal(o.total_tax_minor, 953);
    /* 10:21:07+01:00 is 09:21:07Z. */
    assert_true(o.created_at_ms == 1773480067000LL);
    assert_true(o.updated_at_ms == 1773480099000LL);
    assert_false(o.test);

    assert_true(o.has_shipping_address);
    assert_string_equal(o.shipping_address.address1, "Kerkstraat 12");
    assert_null(o.shipping_address.address2); /* "" reads as none */
    assert_null(o.shipping_address.company);
    assert_null(o.shipping_address.province);
    assert_string_equal(o.shipping_address.zip, "3511 AB");
    assert_string_equal(o.shipping_address.country_code, "NL");
    assert_string_equal(o.shipping_address.phone, "+31611122233");

    assert_int_equal(o.line_item_count, 3);
    const shopify_line_item *a = &o.line_items[0];
    assert_string_equal(a->id, "15532001112233");
    assert_string_equal(a->product_id, "9012345678901");
    assert_string_equal(a->variant_id, "47011122233344");
    assert_string_equal(a->sku, "CO-BLK-PLA");
    assert_string_equal(a->title, "Cable Organizer");
    assert_string_equal(a->variant_title, "Black / PLA");
    assert_int_equal(a->quantity, 2);
    assert_int_equal(a->price_minor, 1245);
    assert_true(a->requires_shipping);
    const shopify_line_item *b = &o.line_items[1];
    assert_null(b->sku); /* empty SKU */
    assert_null(b->variant_title);
    assert_int_equal(b->price_minor, 2500);
    const shopify_line_item *c = &o.line_items[2];
    assert_null(c->sku); /* null SKU */
    assert_string_equal(c->product_id, "");
    assert_string_equal(c->variant_id, "");
    assert_int_equal(c->fulfillable_quantity, 1); /* absent: the quantity */
    assert_false(c->requires_shipping);
    assert_int_equal(c->price_minor, 0);
    shopify_order_free(&o);
    shopify_order_free(&o); /* emptied: freeing again is harmless */
}

/* A redacted / minimal order: no customer data, no address, cancelled. */
static const char redacted[] =
    "{\"id\":9007199254740993,\"name\":\"#1043\",\"order_number\":1043,\"email\":null,"
    "\"customer\":null,\"shipping_address\":null,\"financial_status\":\"voided\","
    "\"cancelled_at\":\"2026-03-15T08:00:00-04:00\",\"cancel_reason\":\"customer\","
    "\"currency\":\"JPY\",\"total_price\":\"1500\","
    "\"created_at\":\"2026-03-15T07:00:00-04:00\",\"updated_at\":\"2026-03-15T08:00:01-04:00\","
    "\"line_items\":[{\"id\":1,\"product_id\":2,\"variant_id\":3,\"title\":\"Vase\","
    "\"sku\":\"V-1\",\"quantity\":3,\"price\":\"500.00\"}]}";

static void test_null_fields_and_cancelled_order(void **state)
{
    (void)state;
    shopify_order o;
    err e;
    err_clear(&e);
    if (shopify_order_parse(redacted, strlen(redacted), &o, &e))
        fail_msg("%s", e.msg);
    /* Above 2^53: an id that a double would have changed. */
    assert_string_equal(o.id, "9007199254740993");
    assert_null(o.email);
    assert_null(o.customer_first_name);
    assert_false(o.has_shipping_address);
    assert_null(o.shipping_address.city);
    assert_string_equal(o.cancel_reason, "customer");
    assert_true(o.cancelled_at_ms == 1773576000000LL);
    assert_int_equal(o.currency_exponent, 0);
    assert_int_equal(o.total_price_minor, 1500);
    assert_int_equal(o.line_items[0].price_minor, 500);
    assert_int_equal(o.subtotal_price_minor, 0);
    shopify_order_free(&o);
}

static void test_email_from_customer_when_order_has_none(void **state)
{
    (void)state;
    const char *doc = "{\"id\":5,\"name\":\"#1\",\"order_number\":1,\"currency\":\"KWD\","
                      "\"total_price\":\"10.125\",\"created_at\":\"2026-01-01T00:00:00Z\","
                      "\"updated_at\":\"2026-01-01T00:00:00Z\",\"customer\":{\"email\":\"c@x.kw\"},"
                      "\"line_items\":[{\"id\":7,\"title\":\"T\",\"quantity\":1,"
                      "\"price\":\"10.125\"}]}";
    shopify_order o;
    err e;
    if (shopify_order_parse(doc, strlen(doc), &o, &e))
        fail_msg("%s", e.msg);
    assert_string_equal(o.email, "c@x.kw");
    assert_int_equal(o.currency_exponent, 3);
    assert_int_equal(o.total_price_minor, 10125);
    assert_string_equal(o.line_items[0].product_id, "");
    shopify_order_free(&o);
}

static void test_money_parsing(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(shopify_money_parse("12.34", 2, &v), 0);
    assert_int_equal(v, 1234);
    assert_int_equal(shopify_money_parse("12.3", 2, &v), 0);
    assert_int_equal(v, 1230);
    assert_int_equal(shopify_money_parse("12", 2, &v), 0);
    assert_int_equal(v, 1200);
    assert_int_equal(shopify_money_parse("-5.00", 2, &v), 0);
    assert_int_equal(v, -500);
    assert_int_equal(shopify_money_parse("0.10", 2, &v), 0);
    assert_int_equal(v, 10);
    /* 0.1 + 0.2 style amounts stay exact. */
    assert_int_equal(shopify_money_parse("4099999.99", 2, &v), 0);
    assert_true(v == 409999999);
    assert_int_equal(shopify_money_parse("1000", 0, &v), 0);
    assert_int_equal(v, 1000);
    assert_int_equal(shopify_money_parse("1000.00", 0, &v), 0);
    assert_int_equal(v, 1000);
    assert_int_equal(shopify_money_parse("1.005", 3, &v), 0);
    assert_int_equal(v, 1005);
    assert_int_equal(shopify_money_parse("1.5", 3, &v), 0);
    assert_int_equal(v, 1500);
    assert_int_equal(shopify_money_parse("92233720368547758.07", 2, &v), 0);
    assert_true(v == INT64_MAX);

    v = 42;
    const char *bad[] = {"",
                         "-",
                         "+1.00",
                         "1.",
                         ".5",
                         "1.2.3",
                         "1,00",
                         " 1.00",
                         "1.00 ",
                         "1e3",
                         "abc",
                         "0x10",
                         "1.001",
                         "--1",
                         "NaN",
                         "92233720368547758.08",
                         "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (shopify_money_parse(bad[i], 2, &v) == 0)
            fail_msg("'%s' was accepted", bad[i]);
    assert_int_equal(shopify_money_parse("1.5", 0, &v), -1); /* half a yen */
    assert_int_equal(shopify_money_parse(NULL, 2, &v), -1);
    assert_int_equal(v, 42);
}

static void test_currency_exponents(void **state)
{
    (void)state;
    assert_int_equal(shopify_currency_exponent("EUR"), 2);
    assert_int_equal(shopify_currency_exponent("USD"), 2);
    assert_int_equal(shopify_currency_exponent("JPY"), 0);
    assert_int_equal(shopify_currency_exponent("KRW"), 0);
    assert_int_equal(shopify_currency_exponent("BHD"), 3);
    assert_int_equal(shopify_currency_exponent("TND"), 3);
    assert_int_equal(shopify_currency_exponent("eur"), -1);
    assert_int_equal(shopify_currency_exponent("EURO"), -1);
    assert_int_equal(shopify_currency_exponent(NULL), -1);
}

/* Replaces the first occurrence of `from` in the multi-item fixture with `to`,
 * parses it, and expects a rejection whose message contains `needle`. */
static void expect_bad(const char *from, const char *to, const char *needle)
{
    const char *at = strstr(multi_item, from);
    if (!at)
        fail_msg("fixture lacks '%s'", from);
    char doc[sizeof multi_item + 256];
    snprintf(doc, sizeof doc, "%.*s%s%s", (int)(at - multi_item), multi_item, to,
             at + strlen(from));
    shopify_order o;
    err e;
    err_clear(&e);
    int rc = shopify_order_parse(doc, strlen(doc), &o, &e);
    if (rc != F3_EINVAL)
        fail_msg("'%s' -> '%s' gave %d", from, to, rc);
    if (!strstr(e.msg, needle))
        fail_msg("'%s' -> '%s': message '%s' lacks '%s'", from, to, e.msg, needle);
    assert_null(o.line_items);
    shopify_order_free(&o);
}

static void test_bad_types_name_the_field(void **state)
{
    (void)state;
    expect_bad("\"id\":6128394710221", "\"id\":\"6128394710221\"", "field 'id' must be");
    expect_bad("\"id\":6128394710221", "\"id\":-4", "field 'id' must be a positive id");
    expect_bad("\"id\":6128394710221", "\"id\":6.1e12", "field 'id'");
    expect_bad("\"name\":\"#1042\",", "", "field 'name' is missing");
    expect_bad("\"order_number\":1042", "\"order_number\":\"1042\"", "field 'order_number'");
    expect_bad("\"currency\":\"EUR\"", "\"currency\":\"euro\"", "field 'currency'");
    expect_bad("\"total_price\":\"54.90\"", "\"total_price\":54.9", "field 'total_price'");
    expect_bad("\"total_price\":\"54.90\"", "\"total_price\":\"54.901\"", "field 'total_price'");
    expect_bad("\"created_at\":\"2026-03-14T10:21:07+01:00\"", "\"created_at\":\"yesterday\"",
               "field 'created_at' is not an ISO-8601 time");
    expect_bad("\"cancelled_at\":null", "\"cancelled_at\":17", "field 'cancelled_at'");
    expect_bad("\"email\":\"jan.devries@example.org\"", "\"email\":[]", "field 'email'");
    expect_bad("\"first_name\":\"Jan\",\"last_name\":\"de Vries\"},",
               "\"first_name\":7,\"last_name\":\"de Vries\"},", "field 'customer.first_name'");
    expect_bad("\"city\":\"Utrecht\"", "\"city\":{}", "field 'shipping_address.city'");
    expect_bad("\"shipping_address\":{", "\"shipping_address\":[],\"x\":{",
               "field 'shipping_address' must be");
    expect_bad("\"line_items\":[", "\"line_items\":{}, \"y\":[", "field 'line_items' must be");
    expect_bad("\"quantity\":2", "\"quantity\":\"2\"", "field 'line_items[0].quantity'");
    expect_bad("\"quantity\":1,\"fulfillable", "\"quantity\":0,\"fulfillable",
               "field 'line_items[1].quantity' must be between 1 and 1000000");
    expect_bad("\"quantity\":1,\"fulfillable", "\"quantity\":2147483648,\"fulfillable",
               "field 'line_items[1].quantity' must be between 1 and 1000000");
    expect_bad("\"price\":\"25.00\"", "\"price\":\"25,00\"", "field 'line_items[1].price'");
    expect_bad("\"title\":\"Gift wrap\",", "", "field 'line_items[2].title' is missing");
    expect_bad("\"sku\":\"CO-BLK-PLA\"", "\"sku\":12", "field 'line_items[0].sku'");
    expect_bad("\"variant_id\":47011122233344", "\"variant_id\":true",
               "field 'line_items[0].variant_id'");
    expect_bad("{\"id\":15532001112233", "17,{\"id\":15532001112233", "line_items[0]");
}

static void test_not_an_order(void **state)
{
    (void)state;
    shopify_order o;
    err e;
    assert_int_equal(shopify_order_parse("[]", 2, &o, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "object"));
    assert_int_equal(shopify_order_parse("{\"id\":", 6, &o, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "invalid JSON"));
    const char *empty = "{\"id\":1,\"name\":\"#1\",\"order_number\":1,\"currency\":\"EUR\","
                        "\"total_price\":\"1.00\",\"created_at\":\"2026-01-01T00:00:00Z\","
                        "\"updated_at\":\"2026-01-01T00:00:00Z\",\"line_items\":[]}";
    assert_int_equal(shopify_order_parse(empty, strlen(empty), &o, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "field 'line_items' must not be empty"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multi_item_order),
        cmocka_unit_test(test_null_fields_and_cancelled_order),
        cmocka_unit_test(test_email_from_customer_when_order_has_none),
        cmocka_unit_test(test_money_parsing),
        cmocka_unit_test(test_currency_exponents),
        cmocka_unit_test(test_bad_types_name_the_field),
        cmocka_unit_test(test_not_an_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
