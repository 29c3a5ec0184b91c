/*
 * sim_internal.h - state shared by the files of the Shopify simulator.
 *
 * Only the files of sim/shopify/ include this. Every field below `lock` is guarded by it;
 * handlers run on the HTTP server's threads, deliveries on the courier's thread.
 */
#ifndef F3_SIM_SHOPIFY_SIM_INTERNAL_H
#define F3_SIM_SHOPIFY_SIM_INTERNAL_H

#include "core/clock.h"
#include "core/uuid.h"
#include "http/request.h"
#include "http/response.h"
#include "http/router.h"
#include "sim/common/delivery.h"
#include "sim/common/faults.h"
#include "sim/common/server.h"
#include "sim/shopify/sim.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct shopify_sim {
    /* fixed after start */
    char *secret, *token, *client_id, *shop_domain, *api_version;
    int bucket_size, leak_per_s;
    sim_server srv;

    pthread_mutex_t lock;
    pthread_cond_t wake; /* the courier sleeps on it */
    bool stopping;
    char *webhook_url;
    json_t *orders;             /* array of order objects, ascending ids */
    json_t *fulfillment_orders; /* object: order id -> array of fulfillment orders */
    json_t *fulfillments;       /* array */
    int64_t next_id;
    int64_t next_order_number;
    double bucket_level;
    int64_t bucket_ms;
    sim_fault fault;
    sim_courier courier; /* webhook deliveries, their retry settings and log */
};

/* A fresh id for any object (orders, line items, fulfillment orders, ...). Lock held. */
int64_t sim_new_id(shopify_sim *s);

/* Admin API routes (admin.c). */
int sim_admin_add_routes(shopify_sim *s, err *e);

/* Queues `topic` for order (its current JSON), 1 + duplicates deliveries with one
 * event id (delivery.c); appends their seqs to seqs (may be NULL). Lock held. 0 or
 * F3_ENOMEM. */
int sim_deliver_event(shopify_sim *s, const char *topic, const json_t *order, int duplicates,
                      json_t *seqs);

/* Shopify's error body {"errors": message}. */
int sim_errors(http_response *res, int status, const char *message);

/* The order with this id, or NULL. Lock held; borrowed. */
json_t *sim_find_order(const shopify_sim *s, int64_t id);

/* A copy of the fulfillments of order id (an array, possibly empty; caller owns it).
 * Lock held. */
json_t *sim_fulfillments_of(const shopify_sim *s, int64_t order_id);

/* Sets updated_at of order to now. Lock held. */
void sim_touch(json_t *order);

#endif
