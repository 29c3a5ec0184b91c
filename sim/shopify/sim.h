/*
 * sim.h - a Shopify simulator: a real HTTP server speaking the subset of the
 * Admin REST API f3connect calls, and delivering signed webhooks.
 *
 * It follows Shopify's documented behaviour (integrations spec §1): the
 * X-Shopify-Access-Token check (401), a leaky-bucket rate limit with 429 +
 * Retry-After and X-Shopify-Shop-Api-Call-Limit, cursor pagination through Link
 * headers and page_info, the fulfillment-order flow, and webhooks signed with
 * the app secret, retried with exponential backoff on non-2xx or timeout.
 * Control endpoints under /_sim/ (JSON) create orders, fire events, inject
 * failures and show the delivery log; see sim/shopify/README.md.
 *
 * All state is in memory and lives as long as the simulator. It is a test and
 * sandbox tool: it must never be pointed at by a production configuration.
 */
#ifndef F3_SIM_SHOPIFY_SIM_H
#define F3_SIM_SHOPIFY_SIM_H

#include "core/err.h"

typedef struct shopify_sim_opts {
    const char *host;         /* address to bind; NULL = "127.0.0.1" */
    int port;                 /* 0 = a free port (see shopify_sim_port) */
    const char *secret;       /* app secret: signs webhooks; also the client secret of the
                                 token exchange. Required. */
    const char *token;        /* the access token accepted (and handed out). Required. */
    const char *client_id;    /* client id of the token exchange; NULL = "f3connect-sim" */
    const char *webhook_url;  /* where webhooks go; NULL = nowhere until set by /_sim/webhooks */
    const char *shop_domain;  /* X-Shopify-Shop-Domain; NULL = "f3connect-sim.myshopify.com" */
    const char *api_version;  /* X-Shopify-API-Version of webhooks; NULL = "2025-10" */
    int bucket_size;          /* REST leaky bucket; 0 = 40 (Standard plan) */
    int leak_per_s;           /* requests leaked per second; 0 = 2 */
    long retry_base_ms;       /* first webhook retry after this, doubling; 0 = 60000, so that
                                 8 retries span about 4 hours as Shopify's do */
    int max_retries;          /* retries after the first attempt; 0 = 8 */
    long delivery_timeout_ms; /* a delivery slower than this failed; 0 = 5000 */
} shopify_sim_opts;

typedef struct shopify_sim shopify_sim;

/* Starts the simulator (HTTP server and delivery worker). NULL with e set when
 * an option is missing or the port cannot be bound. Caller stops and frees it
 * with shopify_sim_stop(). http_client_init() is done (and undone) inside. */
shopify_sim *shopify_sim_start(const shopify_sim_opts *o, err *e);

/* The port the simulator listens on. */
int shopify_sim_port(const shopify_sim *s);

/* Stops serving, abandons pending deliveries and frees everything. NULL is fine. */
void shopify_sim_stop(shopify_sim *s);

#endif
