/*
 * test_shopify_webhook.c - Shopify webhook signatures (the spec's known answer,
 * altered bodies, wrong secrets, malformed and missing headers) and the parsing
 * and validation of the X-Shopify-* delivery headers.
 */
#include "support/f3test.h"

#include "core/buf.h"
#include "core/str.h"
#include "integrations/shopify/webhook.h"

#include <sodium.h>
#include <string.h>

#define SECRET    "shpss_testsecret"
#define BODY      "{\"id\":820982911946154508,\"name\":\"#1001\"}"
#define SIGNATURE "Cpb1s9hB/iaH7ZiOZWOsSo6eDk862X7MR244j1d+m+k="

static void test_known_answer_verifies(void **state)
{
    (void)state;
    err e;
    err_clear(&e);
    assert_int_equal(shopify_webhook_verify(SECRET, BODY, strlen(BODY), SIGNATURE, &e), 0);

    buf sig;
    buf_init(&sig, 0);
    assert_int_equal(shopify_webhook_sign(SECRET, BODY, strlen(BODY), &sig), 0);
    assert_string_equal(buf_cstr(&sig), SIGNATURE);
    buf_free(&sig);
}

static void test_altered_body_and_wrong_secret_mismatch(void **state)
{
    (void)state;
    err e;
    const char *tampered = "{\"id\":820982911946154508,\"name\":\"#1002\"}";
    assert_int_equal(shopify_webhook_verify(SECRET, tampered, strlen(tampered), SIGNATURE, &e),
                     F3_EPERMANENT);
    assert_non_null(strstr(e.msg, "does not match"));
    /* One byte more (a trailing newline) is a different body. */
    const char *nl = BODY "\n";
    assert_int_equal(shopify_webhook_verify(SECRET, nl, strlen(nl), SIGNATURE, &e), F3_EPERMANENT);
    assert_int_equal(shopify_webhook_verify("shpss_other", BODY, strlen(BODY), SIGNATURE, &e),
                     F3_EPERMANENT);
    assert_null(strstr(e.msg, "shpss_other"));
}

static void test_malformed_or_missing_header_is_invalid(void **state)
{
    (void)state;
    err e;
    assert_int_equal(shopify_webhook_verify(SECRET, BODY, strlen(BODY), NULL, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "missing"));
    assert_int_equal(shopify_webhook_verify(SECRET, BODY, strlen(BODY), "", &e), F3_EINVAL);
    assert_int_equal(shopify_webhook_verify(SECRET, BODY, strlen(BODY), "not base64 !!", &e),
                     F3_EINVAL);
    assert_non_null(strstr(e.msg, "base64"));
    /* Hex of a digest is what other providers send; Shopify's is base64. */
    const char *hex = "0a96f5b3d841fe2687ed988e6563ac4a8e9e0e4f3ad97ecc476e388f577e9be9";
    assert_int_equal(shopify_webhook_verify(SECRET, BODY, strlen(BODY), hex, &e), F3_EINVAL);
    /* Valid base64 of too few bytes. */
    assert_int_equal(shopify_webhook_verify(SECRET, BODY, strlen(BODY), "AAAA", &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "32-byte"));
    /* No secret configured: refused, not accepted. */
    assert_int_equal(shopify_webhook_verify("", BODY, strlen(BODY), SIGNATURE, &e), F3_EINVAL);
    assert_int_equal(shopify_webhook_verify(NULL, BODY, strlen(BODY), SIGNATURE, &e), F3_EINVAL);
}

static void test_empty_body_signs_and_verifies(void **state)
{
    (void)state;
    buf sig;
    buf_init(&sig, 0);
    assert_int_equal(shopify_webhook_sign(SECRET, NULL, 0, &sig), 0);
    assert_int_equal(sig.len, 44);
    err e;
    assert_int_equal(shopify_webhook_verify(SECRET, NULL, 0, buf_cstr(&sig), &e), 0);
    assert_int_equal(shopify_webhook_verify(SECRET, "x", 1, buf_cstr(&sig), &e), F3_EPERMANENT);
    buf_free(&sig);
}

/* ---- headers ------------------------------------------------------------ */

typedef struct fake_headers {
    const char *pairs[16][2];
} fake_headers;

static const char *fake_lookup(const void *src, const char *name)
{
    const fake_headers *h = src;
    for (size_t i = 0; i < 16 && h->pairs[i][0]; i++)
        if (str_case_eq(h->pairs[i][0], name))
            return h->pairs[i][1];
    return NULL;
}

static fake_headers full_headers(void)
{
    fake_headers h = {{
        {"x-shopify-topic", "orders/create"},
        {"x-shopify-shop-domain", "forma3d-test.myshopify.com"},
        {"x-shopify-event-id", "9a5b1c2d-7e6f-4a3b-8c9d-0e1f2a3b4c5d"},
        {"x-shopify-webhook-id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"},
        {"x-shopify-api-version", "2025-10"},
        {"x-shopify-triggered-at", "2026-03-14T09:21:07.123456Z"},
        {"x-shopify-hmac-sha256", SIGNATURE},
    }};
    return h;
}

static void test_headers_parse(void **state)
{
    (void)state;
    fake_headers h = full_headers();
    shopify_webhook_headers wh;
    err e;
    assert_int_equal(shopify_webhook_headers_parse(fake_lookup, &h, &wh, &e), 0);
    assert_string_equal(wh.topic, "orders/create");
    assert_string_equal(wh.shop_domain, "forma3d-test.myshopify.com");
    assert_string_equal(wh.event_id, "9a5b1c2d-7e6f-4a3b-8c9d-0e1f2a3b4c5d");
    assert_string_equal(wh.webhook_id, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
    assert_string_equal(wh.api_version, "2025-10");
    assert_string_equal(wh.hmac, SIGNATURE);
    assert_true(wh.triggered_at_ms == 1773480067123LL);
    assert_true(shopify_topic_known(wh.topic));
}

static void test_event_id_falls_back_to_webhook_id(void **state)
{
    (void)state;
    fake_headers h = full_headers();
    h.pairs[2][0] = "x-other";
    shopify_webhook_headers wh;
    err e;
    assert_int_equal(shopify_webhook_headers_parse(fake_lookup, &h, &wh, &e), 0);
    assert_string_equal(wh.event_id, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
    h.pairs[3][0] = "x-other";
    assert_int_equal(shopify_webhook_headers_parse(fake_lookup, &h, &wh, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "X-Shopify-Event-Id"));
}

static void expect_rejected(int index, const char *value, const char *needle)
{
    fake_headers h = full_headers();
    h.pairs[index][1] = value;
    shopify_webhook_headers wh;
    err e;
    err_clear(&e);
    assert_int_equal(shopify_webhook_headers_parse(fake_lookup, &h, &wh, &e), F3_EINVAL);
    if (!strstr(e.msg, needle))
        fail_msg("'%s' for header %d: message '%s' lacks '%s'", value ? value : "(null)", index,
                 e.msg, needle);
}

static void test_each_header_is_validated(void **state)
{
    (void)state;
    expect_rejected(0, NULL, "X-Shopify-Topic header is missing");
    expect_rejected(0, "", "X-Shopify-Topic header is missing");
    expect_rejected(0, "orders", "X-Shopify-Topic");
    expect_rejected(0, "Orders/Create", "X-Shopify-Topic");
    expect_rejected(0, "orders/create/x", "X-Shopify-Topic");
    expect_rejected(1, NULL, "X-Shopify-Shop-Domain header is missing");
    expect_rejected(1, "evil.example.com", "myshopify.com");
    expect_rejected(1, ".myshopify.com", "myshopify.com");
    expect_rejected(1, "a.b.myshopify.com", "myshopify.com");
    expect_rejected(1, "-shop.myshopify.com", "myshopify.com");
    expect_rejected(2, "has space", "X-Shopify-Event-Id header is malformed");
    expect_rejected(3, "bad\x01id", "X-Shopify-Webhook-Id header is malformed");
    expect_rejected(4, "2025-13", "X-Shopify-API-Version");
    expect_rejected(4, "latest", "X-Shopify-API-Version");
    expect_rejected(5, "yesterday", "X-Shopify-Triggered-At");
}

static void test_optional_headers_may_be_absent(void **state)
{
    (void)state;
    fake_headers h = {{
        {"X-Shopify-Topic", "orders/paid"},
        {"X-Shopify-Shop-Domain", "Shop-1.MyShopify.com"},
        {"X-Shopify-Event-Id", "evt-1"},
    }};
    shopify_webhook_headers wh;
    err e;
    assert_int_equal(shopify_webhook_headers_parse(fake_lookup, &h, &wh, &e), 0);
    assert_null(wh.api_version);
    assert_null(wh.triggered_at);
    assert_null(wh.webhook_id);
    assert_null(wh.hmac);
    assert_true(wh.triggered_at_ms == -1);
}

static void test_helpers(void **state)
{
    (void)state;
    assert_true(shopify_api_version_valid("2025-10"));
    assert_true(shopify_api_version_valid("unstable"));
    assert_false(shopify_api_version_valid("2025-1"));
    assert_false(shopify_api_version_valid("2025-00"));
    assert_false(shopify_api_version_valid(NULL));
    assert_true(shopify_topic_known("orders/cancelled"));
    assert_false(shopify_topic_known("products/create"));
    assert_false(shopify_shop_domain_valid(NULL));
    assert_true(shopify_shop_domain_valid("x.myshopify.com"));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer_verifies),
        cmocka_unit_test(test_altered_body_and_wrong_secret_mismatch),
        cmocka_unit_test(test_malformed_or_missing_header_is_invalid),
        cmocka_unit_test(test_empty_body_signs_and_verifies),
        cmocka_unit_test(test_headers_parse),
        cmocka_unit_test(test_event_id_falls_back_to_webhook_id),
        cmocka_unit_test(test_each_header_is_validated),
        cmocka_unit_test(test_optional_headers_may_be_absent),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
