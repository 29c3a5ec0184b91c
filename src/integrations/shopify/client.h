/*
 * client.h - the Shopify Admin REST API client (integrations spec §1.1-1.4,
 * §1.9, §1.10): orders for backfill and reconciliation, one order, the
 * fulfillment orders of an order, creating a fulfillment.
 *
 * Every call is one HTTP request (src/http/client.h) classified once: transient
 * (timeouts, connection errors, 429, 5xx; retry after shopify_call.retry_after_ms
 * when set) or permanent (other 4xx, malformed answers). The client never
 * retries and never sleeps: the caller's queue does that. It does read
 * X-Shopify-Shop-Api-Call-Limit after every call so a caller can slow down
 * before Shopify answers 429.
 *
 * URLs are {base}/admin/api/{version}/{resource}.json, where base is
 * https://{shop domain} or, for the simulator, SHOPIFY_API_URL.
 * Authentication is X-Shopify-Access-Token: a configured token, or one obtained
 * through the client-credentials grant (SHOPIFY_CLIENT_ID/SECRET), cached and
 * renewed before it expires (or after a 401). Tokens are never logged or put in
 * messages. A client is thread-safe; while one thread exchanges credentials for
 * a token, the others wait for it rather than exchange again.
 */
#ifndef F3_INTEGRATIONS_SHOPIFY_CLIENT_H
#define F3_INTEGRATIONS_SHOPIFY_CLIENT_H

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "http/client.h"
#include "integrations/shopify/fulfillment.h"
#include "integrations/shopify/order.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define SHOPIFY_DEFAULT_API_VERSION "2025-10"
#define SHOPIFY_PAGE_LIMIT_MAX      250
/* With no Retry-After on a 429, wait this long (spec: "else back off ~1 s"). */
#define SHOPIFY_DEFAULT_RETRY_MS 1000L

typedef struct shopify_client_opts {
    const char *shop_domain;  /* "example.myshopify.com"; required unless base_url is set */
    const char *api_version;  /* "YYYY-MM"; NULL = SHOPIFY_DEFAULT_API_VERSION */
    const char *access_token; /* a permanent token; or NULL with the two below */
    const char *client_id;    /* client-credentials grant, used when access_token is NULL */
    const char *client_secret;
    const char *base_url; /* replaces https://{shop_domain}; NULL = none */
    long timeout_ms;      /* per request; 0 = the HTTP client's default */
} shopify_client_opts;

typedef struct shopify_client shopify_client;

/* What one call saw, for the caller's retry and throttling decisions. */
typedef struct shopify_call {
    long status;          /* HTTP status; 0 when no response arrived */
    http_failure failure; /* HTTP_OK, HTTP_TRANSIENT or HTTP_PERMANENT */
    long retry_after_ms;  /* when to retry a 429/503 (Retry-After, else 1 s for 429); -1 */
    int limit_used;       /* X-Shopify-Shop-Api-Call-Limit "used/bucket"; -1 when absent */
    int limit_bucket;
    char api_version[16]; /* X-Shopify-API-Version that served the call; "" when absent */
} shopify_call;

/* A client for one shop. The strings are copied. NULL with e set when the
 * options are unusable (no shop domain or base URL, a domain that is not
 * *.myshopify.com, a malformed version, no token and no client credentials).
 * Caller frees with shopify_client_free(). */
shopify_client *shopify_client_new(const shopify_client_opts *o, err *e);

/* shopify_client_new from the [shopify] configuration keys. */
shopify_client *shopify_client_from_config(const config *c, err *e);

void shopify_client_free(shopify_client *c);

/* The call limit reported by the latest response (-1/-1 before any). */
void shopify_client_call_limit(shopify_client *c, int *used, int *bucket);

/* True when the latest call limit says the bucket is nearly full
 * (used >= bucket - 2, spec §1.3): the caller should pause before sending. */
bool shopify_client_near_limit(shopify_client *c);

/* Parses "32/40". 0 with both set, -1 for anything else. */
int shopify_parse_call_limit(const char *value, int *used, int *bucket);

/* Appends the URL of the rel="next" entry of a Link header. 0 when found,
 * F3_ENOTFOUND when there is no next page (NULL header, only rel="previous"),
 * F3_EINVAL for a malformed header, F3_ENOMEM / F3_ETOOBIG. */
int shopify_link_next(const char *link, buf *out);

/* Filters of the first page of an order listing (later pages carry them in
 * their cursor). */
typedef struct shopify_order_query {
    const char *status;        /* open|closed|cancelled|any; NULL = "any" (Shopify's default
                                  is "open", which would hide closed orders) */
    int64_t created_at_min_ms; /* 0 = no bound */
    int64_t updated_at_min_ms; /* 0 = no bound */
    const char *since_id;      /* only ids above this one; NULL = none */
    int limit;                 /* 1..250; 0 = 250 */
} shopify_order_query;

typedef struct shopify_order_page {
    json_t *orders; /* array of order objects (read each with shopify_order_from_json) */
    size_t count;
    char *next_url; /* the next page, to pass back verbatim; NULL on the last page */
} shopify_order_page;

/*
 * Fetches one page of GET /orders.json: the first page from q when page_url is
 * NULL, else the page at page_url (a next_url of a previous page; it must point
 * at this client's Admin API, so the token is never sent elsewhere). The caller
 * iterates while next_url is not NULL. 0, or the http client's codes
 * (F3_ETRANSIENT / F3_EPERMANENT / F3_EINVAL / F3_ENOMEM); call (may be NULL)
 * receives what the call saw in every case. Caller frees out with
 * shopify_order_page_free() (also after errors; it is then empty).
 */
int shopify_list_orders(shopify_client *c, const shopify_order_query *q, const char *page_url,
                        shopify_order_page *out, shopify_call *call, err *e);

void shopify_order_page_free(shopify_order_page *p);

/* GET /orders/{id}.json, read into *out (caller frees with shopify_order_free).
 * F3_ENOTFOUND for a 404, F3_EINVAL for a malformed id or order, else as above. */
int shopify_get_order(shopify_client *c, const char *order_id, shopify_order *out,
                      shopify_call *call, err *e);

/* GET /orders/{id}/fulfillments.json: the ids of the order's fulfillments that are not
 * cancelled, comma-separated into ids (size bytes; "" when there are none; F3_EINVAL if
 * they do not fit). Return codes as shopify_get_order. */
int shopify_list_fulfillment_ids(shopify_client *c, const char *order_id, char *ids, size_t size,
                                 shopify_call *call, err *e);

/* GET /orders/{id}/fulfillment_orders.json (caller frees out with
 * shopify_fulfillment_orders_free). Return codes as shopify_get_order. */
int shopify_get_fulfillment_orders(shopify_client *c, const char *order_id,
                                   shopify_fulfillment_orders *out, shopify_call *call, err *e);

/* POST /fulfillments.json with rq (fulfillment-order flow, tracking info,
 * notify_customer); *out receives the created fulfillment (caller frees with
 * shopify_fulfillment_free). F3_EINVAL for a bad request, else as above
 * (a 422 from Shopify, e.g. an already closed fulfillment order, is permanent). */
int shopify_create_fulfillment(shopify_client *c, const shopify_fulfillment_request *rq,
                               shopify_fulfillment *out, shopify_call *call, err *e);

#endif
