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
#include "http/server.h"
#include "sim/sendcloud/sim.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define SC_DELIVERY_LOG_MAX 5000
#define SC_STATUS_READY     1000
#define SC_STATUS_CANCELLED 2000

typedef enum sc_delivery_state {
    SC_PENDING = 0,
    SC_DELIVERED,
    SC_FAILED,
    SC_DROPPED,
} sc_delivery_state;

typedef struct sc_delivery {
    int64_t seq;
    int64_t parcel_id;
    int64_t status_id;
    char *url;  /* the address configured when the status changed */
    char *body; /* the payload as of that moment */
    int attempts;
    int64_t next_ms; /* clock_mono_ms of the next attempt */
    sc_delivery_state state;
    json_t *responses; /* status of each attempt (0 = no answer) */
} sc_delivery;

typedef struct sc_parcel {
    int64_t id;
    char shipment_id[UUID_STR_LEN]; /* the v3 shipment id (also set for v2 parcels) */
    int version;                    /* API version that created it: 2 or 3 */
    json_t *obj;                    /* the v2-style parcel object, kept current */
    int step;                       /* index into the progression */
    int64_t next_step_ms;           /* clock_mono_ms of the next automatic step; 0 = none */
} sc_parcel;

typedef struct sc_fault {
    int count;          /* requests still to fail */
    int status;         /* 4xx/5xx; 0 for a timeout */
    long retry_after_s; /* for 429/503 */
    long delay_ms;      /* for a timeout: how long to stall before answering */
} sc_fault;

struct sendcloud_sim {
    /* fixed after start */
    long delivery_timeout_ms;
    http_router *router;
    http_server *server;
    pthread_t worker;
    bool worker_started;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    char *public_key, *secret_key, *webhook_secret;
    char *webhook_url;
    long step_ms;
    long retry_base_ms;
    int max_retries;
    long latency_ms;   /* added to every API answer */
    int drop_webhooks; /* next N status changes send no webhook; -1 = all */
    sc_fault fault;
    sc_parcel *parcels;
    size_t nparcels, parcels_cap;
    int64_t next_parcel_id;
    sc_delivery *deliveries;
    size_t ndeliveries, deliveries_cap;
    int64_t next_seq;
    json_t *stats; /* object: API route name -> requests seen */
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

/* The delivery log as JSON (caller owns the reference). Lock held. */
json_t *sc_deliveries_json(const sendcloud_sim *s);

/* Frees every delivery. Lock held or the worker stopped. */
void sc_deliveries_clear(sendcloud_sim *s);

/* The worker's thread body (delivery.c): status progression and webhook deliveries. */
void *sc_worker(void *arg);

/* v2 error body {"error":{"code","message","request"}}. */
int sc_error_v2(http_response *res, int status, const char *request, const char *message);

/* v3 error body {"errors":[{"status","code","detail"}]}. */
int sc_error_v3(http_response *res, int status, const char *code, const char *detail);

#endif
