/*
 * sim_internal.h - state shared by the files of the Sendcloud simulator.
 *
 * Only the files of sim/sendcloud/ include this. Every field below `lock` is guarded by
 * it; handlers run on the HTTP server's threads, progression and deliveries on the worker.
 */
#ifndef F3_SIM_SENDCLOUD_SIM_INTERNAL_H
#define F3_SIM_SENDCLOUD_SIM_INTERNAL_H

#include "core/buf.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "http/request.h"
#include "http/response.h"
#include "http/router.h"
#include "sim/common/delivery.h"
#include "sim/common/faults.h"
#include "sim/common/server.h"
#include "sim/sendcloud/sim.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define SC_STATUS_READY     1000
#define SC_STATUS_CANCELLED 2000

typedef struct sc_parcel {
    int64_t id;
    char shipment_id[UUID_STR_LEN]; /* the v3 shipment id (also set for v2 parcels) */
    int version;                    /* API version that created it: 2 or 3 */
    json_t *obj;                    /* the v2-style parcel object, kept current */
    int step;                       /* index into the progression */
    int64_t next_step_ms;           /* clock_mono_ms of the next automatic step; 0 = none */
} sc_parcel;

struct sendcloud_sim {
    /* fixed after start */
    sim_server srv;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    char *public_key, *secret_key, *webhook_secret;
    char *webhook_url;
    long step_ms;
    long latency_ms;   /* added to every API answer */
    int drop_webhooks; /* next N status changes send no webhook; -1 = all */
    sim_fault fault;
    sc_parcel *parcels;
    size_t nparcels, parcels_cap;
    int64_t next_parcel_id;
    sim_courier courier; /* webhook deliveries, their retry settings and log */
    json_t *stats;       /* object: API route name -> requests seen */
};

/* API routes (api.c). */
int sc_api_add_routes(sendcloud_sim *s, err *e);

/* The parcel with this id, or NULL. Lock held; borrowed. */
sc_parcel *sc_find_parcel(sendcloud_sim *s, int64_t id);

/* Moves a parcel to status_id (message from the table), schedules its next automatic step
 * and queues the webhook (or drops it, as configured). Lock held. */
void sc_set_status(sendcloud_sim *s, sc_parcel *p, int64_t status_id);

/* Moves a parcel one step along announced -> en route -> out for delivery -> delivered.
 * False when it has nowhere to go (delivered, cancelled). Lock held. */
bool sc_advance(sendcloud_sim *s, sc_parcel *p);

/* Sendcloud's message for a status id ("Ready to send", ...). */
const char *sc_status_message(int64_t status_id);

/* The v3 status code for a status id ("READY_TO_SEND", ...). */
const char *sc_status_code(int64_t status_id);

/* Signs one webhook attempt with the secret configured now (the courier's sign hook;
 * ctx: the simulator). Lock held. 0 or F3_ENOMEM. */
int sc_sign_attempt(void *ctx, const sim_delivery *d, buf *headers);

/* The worker's thread body (delivery.c): status progression and webhook deliveries. */
void *sc_worker(void *arg);

/* v2 error body {"error":{"code","message","request"}}. */
int sc_error_v2(http_response *res, int status, const char *request, const char *message);

/* v3 error body {"errors":[{"status","code","detail"}]}. */
int sc_error_v3(http_response *res, int status, const char *code, const char *detail);

#endif
