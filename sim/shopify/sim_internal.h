/*
 * sim_internal.h - state shared by the files of the Shopify simulator.
 *
 * Only the files of sim/shopify/ include this. Every field below `lock` is guarded by it;
 * handlers run on the HTTP server's threads, deliveries on the worker thread.
 */
#ifndef F3_SIM_SHOPIFY_SIM_INTERNAL_H
#define F3_SIM_SHOPIFY_SIM_INTERNAL_H

#include "core/clock.h"
#include "core/uuid.h"
#include "http/request.h"
#include "http/response.h"
#include "http/router.h"
#include "http/server.h"
#include "sim/shopify/sim.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define SIM_DELIVERY_LOG_MAX 5000

typedef enum sim_delivery_state {
    SIM_PENDING = 0,
    SIM_DELIVERED,
    SIM_FAILED,
} sim_delivery_state;

typedef struct sim_delivery {
    int64_t seq;
    char topic[32];
    char event_id[UUID_STR_LEN];   /* shared by duplicates of one event */
    char webhook_id[UUID_STR_LEN]; /* one per delivery, kept across its retries */
    char order_id[24];
    char triggered_at[CLOCK_ISO_LEN];
    char *url;  /* the address configured when the event fired */
    char *body; /* the payload as of trigger time */
    int attempts;
    int64_t next_ms; /* clock_mono_ms of the next attempt */
    sim_delivery_state state;
    json_t *responses; /* status of each attempt (0 = no answer) */
} sim_delivery;

typedef struct sim_fault {
    int count;          /* requests still to fail */
    int status;         /* 429, 5xx, a 4xx; 0 for a timeout */
    char match[64];     /* only requests whose path contains this; "" = any */
    long retry_after_s; /* for 429 */
    long delay_ms;      /* for a timeout: how long to stall before answering */
} sim_fault;

struct shopify_sim {
    /* fixed after start */
    char *secret, *token, *client_id, *shop_domain, *api_version;
    int bucket_size, leak_per_s;
    long delivery_timeout_ms;
    http_router *router;
    http_server *server;
    pthread_t worker;
    bool worker_started;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    char *webhook_url;
    long retry_base_ms;
    int max_retries;
    json_t *orders;             /* array of order objects, ascending ids */
    json_t *fulfillment_orders; /* object: order id -> array of fulfillment orders */
    json_t *fulfillments;       /* array */
    int64_t next_id;
    int64_t next_order_number;
    double bucket_level;
    int64_t bucket_ms;
    sim_fault fault;
    sim_delivery *deliveries;
    size_t ndeliveries, deliveries_cap;
    int64_t next_seq;
};

/* A fresh id for any object (orders, line items, fulfillment orders, ...). Lock held. */
int64_t sim_new_id(shopify_sim *s);

/* Admin API routes (admin.c). */
int sim_admin_add_routes(shopify_sim *s, err *e);

/* Queues `topic` for order (its current JSON), 1 + duplicates deliveries with one
 * event id; appends their seqs to seqs (may be NULL). Lock held. 0 or F3_ENOMEM. */
int sim_deliver_event(shopify_sim *s, const char *topic, const json_t *order, int duplicates,
                      json_t *seqs);

/* The delivery log as JSON (caller owns the reference). Lock held. */
json_t *sim_deliveries_json(const shopify_sim *s);

/* Frees every delivery. Lock held or the worker stopped. */
void sim_deliveries_clear(shopify_sim *s);

/* The delivery worker's thread body (delivery.c). */
void *sim_delivery_worker(void *arg);

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
