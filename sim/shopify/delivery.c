/*
 * delivery.c - what the Shopify simulator's webhooks look like (integrations spec
 * §1.5): the order JSON as of the event, signed with X-Shopify-Hmac-Sha256 under the
 * app secret, with the topic, shop, API version, webhook id (one per delivery, kept
 * across its retries), event id (shared by duplicates) and trigger time.
 *
 * Sending, retries (retry_base_ms * 2^(n-1), up to max_retries, as Shopify does) and
 * the delivery log are the shared courier's (sim/common/delivery.c).
 */
#include "sim/shopify/sim_internal.h"

#include "core/buf.h"
#include "core/json.h"
#include "integrations/shopify/webhook.h"

#include <stdio.h>

/* The headers of one delivery, signed over body. 0 or F3_ENOMEM. */
static int delivery_headers(const shopify_sim *s, const char *topic, const char *event_id,
                            const char *webhook_id, const char *when, const buf *body, buf *out)
{
    buf sig;
    buf_init(&sig, 128);
    int rc = shopify_webhook_sign(s->secret, body->data ? body->data : "", body->len, &sig);
    if (rc == 0)
        rc = buf_printf(
            out,
            SHOPIFY_HEADER_TOPIC ": %s\n" SHOPIFY_HEADER_HMAC ": %s\n" SHOPIFY_HEADER_SHOP_DOMAIN
                                 ": %s\n" SHOPIFY_HEADER_API_VERSION
                                 ": %s\n" SHOPIFY_HEADER_WEBHOOK_ID ": %s\n" SHOPIFY_HEADER_EVENT_ID
                                 ": %s\n" SHOPIFY_HEADER_TRIGGERED_AT ": %s\n",
            topic, buf_cstr(&sig), s->shop_domain, s->api_version, webhook_id, event_id, when);
    buf_free(&sig);
    return rc ? F3_ENOMEM : 0;
}

int sim_deliver_event(shopify_sim *s, const char *topic, const json_t *order, int duplicates,
                      json_t *seqs)
{
    if (!s->webhook_url)
        return 0; /* no subscription: Shopify sends nothing */
    buf body, headers;
    buf_init(&body, 0);
    buf_init(&headers, 0);
    char event_id[UUID_STR_LEN], when[CLOCK_ISO_LEN], order_id[24];
    uuid_v4(event_id);
    clock_now_iso(when);
    snprintf(order_id, sizeof order_id, "%lld",
             (long long)json_integer_value(json_object_get(order, "id")));
    int rc = json_dump_buf(order, &body) ? F3_ENOMEM : 0;
    for (int i = 0; i <= duplicates && rc == 0; i++) {
        char webhook_id[UUID_STR_LEN];
        uuid_v4(webhook_id);
        buf_reset(&headers);
        rc = delivery_headers(s, topic, event_id, webhook_id, when, &body, &headers);
        json_t *fields =
            json_pack("{s:s,s:s,s:s,s:s,s:s}", "topic", topic, "eventId", event_id, "webhookId",
                      webhook_id, "orderId", order_id, "triggeredAt", when);
        sim_delivery *d =
            rc == 0 ? sim_courier_add(&s->courier, topic, 0, s->webhook_url, buf_cstr(&body),
                                      buf_cstr(&headers), fields, SIM_DELIVERY_PENDING)
                    : (json_decref(fields), NULL);
        if (!d)
            rc = F3_ENOMEM;
        else if (seqs)
            json_array_append_new(seqs, json_integer(d->seq));
    }
    buf_free(&body);
    buf_free(&headers);
    return rc;
}
