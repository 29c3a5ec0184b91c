/*
 * webhook.c - verifies Shopify's webhook signature and reads the delivery headers.
 *
 * The signature is checked over the raw bytes as received, before any parsing;
 * the digest comparison is constant-time. Nothing here logs or keeps secrets.
 */
#include "integrations/shopify/webhook.h"

#include "core/clock.h"
#include "core/crypto.h"
#include "core/str.h"

#include <ctype.h>
#include <string.h>

/* The base64 text of a 32-byte digest is 44 characters; anything much longer
 * is not worth decoding. */
#define HMAC_B64_MAX 64

static const char *const known_topics[] = {
    "orders/create",    "orders/updated", "orders/paid",     "orders/cancelled",
    "orders/fulfilled", "refunds/create", "app/uninstalled",
};

int shopify_webhook_sign(const char *secret, const void *body, size_t len, buf *out)
{
    if (!secret)
        return F3_EINVAL;
    uint8_t mac[CRYPTO_HMAC_SHA256_LEN];
    crypto_hmac_sha256(secret, strlen(secret), len ? body : "", len, mac);
    return crypto_base64_encode(mac, sizeof mac, false, out);
}

int shopify_webhook_verify(const char *secret, const void *raw_body, size_t len,
                           const char *hmac_header_b64, err *e)
{
    buf given;
    buf_init(&given, HMAC_B64_MAX);
    int rc;
    if (!secret || !*secret) {
        rc = err_set(e, F3_EINVAL, "no Shopify API secret is configured to verify webhooks");
        goto out;
    }
    if (!hmac_header_b64 || !*hmac_header_b64) {
        rc = err_set(e, F3_EINVAL, SHOPIFY_HEADER_HMAC " header is missing");
        goto out;
    }
    size_t hlen = strlen(hmac_header_b64);
    err de;
    if (hlen > HMAC_B64_MAX || crypto_base64_decode(hmac_header_b64, hlen, &given, &de) != 0) {
        rc = err_set(e, F3_EINVAL, SHOPIFY_HEADER_HMAC " header is not base64");
        goto out;
    }
    if (given.len != CRYPTO_HMAC_SHA256_LEN) {
        rc = err_set(e, F3_EINVAL,
                     SHOPIFY_HEADER_HMAC " header holds %zu bytes, not a 32-byte HMAC-SHA256",
                     given.len);
        goto out;
    }
    uint8_t mac[CRYPTO_HMAC_SHA256_LEN];
    crypto_hmac_sha256(secret, strlen(secret), len ? raw_body : "", len, mac);
    bool same = crypto_equal(mac, given.data, sizeof mac);
    crypto_wipe(mac, sizeof mac);
    rc = same ? 0
              : err_set(e, F3_EPERMANENT,
                        "webhook signature does not match the body (wrong secret or altered body)");
out:
    buf_free(&given);
    return rc;
}

bool shopify_shop_domain_valid(const char *domain)
{
    static const char suffix[] = ".myshopify.com";
    if (!domain)
        return false;
    size_t n = strlen(domain), sl = sizeof suffix - 1;
    if (n <= sl || n > SHOPIFY_DOMAIN_MAX || !str_case_eq(domain + n - sl, suffix))
        return false;
    if (domain[0] == '-')
        return false;
    for (size_t i = 0; i < n - sl; i++)
        if (!isalnum((unsigned char)domain[i]) && domain[i] != '-')
            return false;
    return true;
}

bool shopify_api_version_valid(const char *v)
{
    if (!v)
        return false;
    if (strcmp(v, "unstable") == 0)
        return true;
    if (strlen(v) != 7 || v[4] != '-')
        return false;
    for (int i = 0; i < 7; i++)
        if (i != 4 && !isdigit((unsigned char)v[i]))
            return false;
    int month = (v[5] - '0') * 10 + (v[6] - '0');
    return month >= 1 && month <= 12;
}

bool shopify_topic_known(const char *topic)
{
    for (size_t i = 0; i < sizeof known_topics / sizeof known_topics[0]; i++)
        if (str_eq(topic, known_topics[i]))
            return true;
    return false;
}

/* "resource/event": lowercase letters, digits and '_' on both sides of one '/'. */
static bool topic_valid(const char *t)
{
    size_t n = strlen(t), slashes = 0;
    if (n < 3 || n > SHOPIFY_TOPIC_MAX || t[0] == '/' || t[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '/')
            slashes++;
        else if (!islower((unsigned char)t[i]) && !isdigit((unsigned char)t[i]) && t[i] != '_')
            return false;
    }
    return slashes == 1;
}

/* Printable ASCII without spaces: safe to store and log as a key. */
static bool delivery_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > SHOPIFY_EVENT_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (id[i] <= ' ' || id[i] > '~')
            return false;
    return true;
}

static const char *present(const char *v)
{
    return v && *v ? v : NULL;
}

int shopify_webhook_headers_parse(shopify_header_lookup lookup, const void *src,
                                  shopify_webhook_headers *out, err *e)
{
    memset(out, 0, sizeof *out);
    out->triggered_at_ms = -1;
    out->topic = present(lookup(src, SHOPIFY_HEADER_TOPIC));
    out->shop_domain = present(lookup(src, SHOPIFY_HEADER_SHOP_DOMAIN));
    out->webhook_id = present(lookup(src, SHOPIFY_HEADER_WEBHOOK_ID));
    out->event_id = present(lookup(src, SHOPIFY_HEADER_EVENT_ID));
    out->api_version = present(lookup(src, SHOPIFY_HEADER_API_VERSION));
    out->triggered_at = present(lookup(src, SHOPIFY_HEADER_TRIGGERED_AT));
    out->hmac = present(lookup(src, SHOPIFY_HEADER_HMAC));
    if (!out->event_id)
        out->event_id = out->webhook_id;

    if (!out->topic)
        return err_set(e, F3_EINVAL, SHOPIFY_HEADER_TOPIC " header is missing");
    if (!topic_valid(out->topic))
        return err_set(e, F3_EINVAL,
                       SHOPIFY_HEADER_TOPIC " header is not a topic like 'orders/create'");
    if (!out->shop_domain)
        return err_set(e, F3_EINVAL, SHOPIFY_HEADER_SHOP_DOMAIN " header is missing");
    if (!shopify_shop_domain_valid(out->shop_domain))
        return err_set(e, F3_EINVAL,
                       SHOPIFY_HEADER_SHOP_DOMAIN " header is not a *.myshopify.com domain");
    if (!out->event_id)
        return err_set(e, F3_EINVAL,
                       "neither " SHOPIFY_HEADER_EVENT_ID " nor " SHOPIFY_HEADER_WEBHOOK_ID
                       " header is present");
    if (out->webhook_id && !delivery_id_valid(out->webhook_id))
        return err_set(e, F3_EINVAL, SHOPIFY_HEADER_WEBHOOK_ID " header is malformed");
    if (!delivery_id_valid(out->event_id))
        return err_set(e, F3_EINVAL, SHOPIFY_HEADER_EVENT_ID " header is malformed");
    if (out->api_version && !shopify_api_version_valid(out->api_version))
        return err_set(e, F3_EINVAL,
                       SHOPIFY_HEADER_API_VERSION " header is not a version like '2025-10'");
    if (out->triggered_at && clock_parse_iso(out->triggered_at, &out->triggered_at_ms) != 0)
        return err_set(e, F3_EINVAL, SHOPIFY_HEADER_TRIGGERED_AT " header is not an ISO-8601 time");
    return 0;
}

static const char *request_lookup(const void *src, const char *name)
{
    return http_req_header((const http_request *)src, name);
}

int shopify_webhook_headers_from_request(const http_request *req, shopify_webhook_headers *out,
                                         err *e)
{
    return shopify_webhook_headers_parse(request_lookup, req, out, e);
}
