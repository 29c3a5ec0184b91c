/*
 * webhook.h - Shopify webhook deliveries: the HMAC signature over the raw body
 * and the X-Shopify-* headers that identify a delivery (integrations spec §1.5).
 *
 * Only verification and parsing live here; storing, deduplicating and answering
 * belong to the orders service. Nothing here logs, and no message ever carries
 * the secret or the signature.
 */
#ifndef F3_INTEGRATIONS_SHOPIFY_WEBHOOK_H
#define F3_INTEGRATIONS_SHOPIFY_WEBHOOK_H

#include "core/buf.h"
#include "core/err.h"
#include "http/request.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHOPIFY_HEADER_HMAC         "X-Shopify-Hmac-Sha256"
#define SHOPIFY_HEADER_TOPIC        "X-Shopify-Topic"
#define SHOPIFY_HEADER_SHOP_DOMAIN  "X-Shopify-Shop-Domain"
#define SHOPIFY_HEADER_EVENT_ID     "X-Shopify-Event-Id"
#define SHOPIFY_HEADER_WEBHOOK_ID   "X-Shopify-Webhook-Id"
#define SHOPIFY_HEADER_API_VERSION  "X-Shopify-API-Version"
#define SHOPIFY_HEADER_TRIGGERED_AT "X-Shopify-Triggered-At"

/* Longest accepted topic, shop domain and delivery id (longer values are malformed). */
#define SHOPIFY_TOPIC_MAX    64
#define SHOPIFY_DOMAIN_MAX   255
#define SHOPIFY_EVENT_ID_MAX 255

/*
 * Checks that hmac_header_b64 (the X-Shopify-Hmac-Sha256 value) is the standard
 * base64 HMAC-SHA256 of the len raw body bytes under the app's client secret,
 * comparing the decoded digest in constant time.
 * Returns 0 when it matches;
 *   F3_EINVAL when the header is missing (NULL or empty) or malformed (not
 *             base64, or not a 32-byte digest), or the secret is NULL/empty;
 *   F3_EPERMANENT when the header is well formed but does not match (wrong
 *             secret or an altered body).
 * Either way the caller answers 401; the two codes only let its logs differ.
 * raw_body may be NULL when len is 0.
 */
int shopify_webhook_verify(const char *secret, const void *raw_body, size_t len,
                           const char *hmac_header_b64, err *e);

/* Appends the X-Shopify-Hmac-Sha256 value for body under secret (44 characters
 * of base64); for the simulator and tests. 0, F3_EINVAL (NULL secret), F3_ETOOBIG
 * or F3_ENOMEM. */
int shopify_webhook_sign(const char *secret, const void *body, size_t len, buf *out);

/* The identifying headers of one delivery. The strings are borrowed from where
 * the header lookup took them (the request) and live as long as it does. */
typedef struct shopify_webhook_headers {
    const char *topic;        /* "orders/create" */
    const char *shop_domain;  /* "example.myshopify.com" */
    const char *event_id;     /* X-Shopify-Event-Id, else X-Shopify-Webhook-Id: the dedupe key */
    const char *webhook_id;   /* X-Shopify-Webhook-Id; NULL when absent */
    const char *api_version;  /* "2025-10" or "unstable"; NULL when absent */
    const char *triggered_at; /* as sent; NULL when absent */
    int64_t triggered_at_ms;  /* parsed triggered_at; -1 when absent */
    const char *hmac;         /* X-Shopify-Hmac-Sha256 as sent; NULL when absent */
} shopify_webhook_headers;

/* Looks a header up by name (case-insensitively); NULL when absent. */
typedef const char *(*shopify_header_lookup)(const void *src, const char *name);

/*
 * Reads and validates the delivery headers through lookup(src, name).
 * Required: topic ("resource/event", lowercase letters, digits and '_'), shop
 * domain ("<name>.myshopify.com") and an event id (printable ASCII without
 * spaces). Optional, checked when present: API version ("YYYY-MM" or
 * "unstable") and triggered-at (ISO-8601). 0 with *out filled, or F3_EINVAL
 * naming the header that was missing or malformed (*out is then undefined).
 * The HMAC header is only copied, never judged here: see shopify_webhook_verify.
 */
int shopify_webhook_headers_parse(shopify_header_lookup lookup, const void *src,
                                  shopify_webhook_headers *out, err *e);

/* shopify_webhook_headers_parse over the headers of an HTTP request being served. */
int shopify_webhook_headers_from_request(const http_request *req, shopify_webhook_headers *out,
                                         err *e);

/* True for "<name>.myshopify.com" (any case), name made of letters, digits and
 * '-' not starting with '-'. */
bool shopify_shop_domain_valid(const char *domain);

/* True for "YYYY-MM" with a month 01..12, or "unstable". */
bool shopify_api_version_valid(const char *version);

/* True for the topics f3connect subscribes to (spec §1.6): orders/create,
 * orders/updated, orders/paid, orders/cancelled, orders/fulfilled,
 * refunds/create, app/uninstalled. */
bool shopify_topic_known(const char *topic);

#endif
