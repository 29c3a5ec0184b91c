/*
 * delivery.h - the webhook courier the simulators share: a log of deliveries (pending,
 * delivered, failed after its retries, or dropped on purpose), a worker that POSTs the
 * one due first, retries failures after retry_base_ms * 2^(n-1) up to max_retries
 * times, and can hold deliveries and release them newest first.
 *
 * The simulator decides what is sent: the address, the body, the headers (or a hook
 * that signs each attempt), and the fields its delivery log shows. A delivery succeeds
 * on any 2xx; anything else (3xx included), a connection error or no answer within
 * timeout_ms is a failed attempt. Every field is guarded by the simulator's lock; the
 * lock is never held while sending. It never retries a dropped delivery and never
 * sends one twice by itself (duplicates are separate deliveries), and it never forgets a
 * pending delivery: with a backlog the log grows past SIM_DELIVERY_LOG_MAX (a provider
 * queues what it owes) and shrinks again as deliveries finish. Several worker threads
 * may serve one courier; deliveries sharing a non-zero `key` (e.g. one job's events)
 * are then never sent at once, so they arrive in order unless a retry intervenes.
 */
#ifndef F3_SIM_COMMON_DELIVERY_H
#define F3_SIM_COMMON_DELIVERY_H

#include "core/buf.h"
#include "http/request.h"
#include "http/response.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_DELIVERY_LOG_MAX    5000 /* oldest finished deliveries are forgotten beyond this */
#define SIM_COURIER_SENDERS_MAX 16   /* worker threads sending for one courier at once */

typedef enum sim_delivery_state {
    SIM_DELIVERY_PENDING = 0,
    SIM_DELIVERY_DELIVERED,
    SIM_DELIVERY_FAILED,
    SIM_DELIVERY_DROPPED,
} sim_delivery_state;

typedef struct sim_delivery {
    int64_t seq;       /* "id" in the log; never reused */
    int64_t key;       /* deliveries with the same non-zero key go one at a time */
    char label[64];    /* names it in log lines: the topic or event */
    char *url;         /* the address configured when it was queued */
    char *body;        /* the payload as of that moment */
    char *headers;     /* "Name: value" lines, each ending in '\n'; NULL = none */
    json_t *fields;    /* the simulator's own log fields (an object) */
    int attempts;      /* attempts made */
    int64_t next_ms;   /* clock_mono_ms of the next attempt */
    long last_status;  /* of the latest attempt; 0 = no answer */
    json_t *responses; /* status of each attempt (0 = no answer) */
    sim_delivery_state state;
    bool in_flight; /* a worker is sending it now */
} sim_delivery;

/* Appends header lines for one attempt of d ("Name: value\n" each), e.g. a signature
 * under the secret configured now. Lock held. 0, or an error: the attempt then counts
 * as failed with no answer. */
typedef int (*sim_delivery_sign)(void *ctx, const sim_delivery *d, buf *headers);

typedef struct sim_courier {
    /* set by the simulator before the worker starts */
    pthread_mutex_t *lock;   /* the simulator's lock: guards everything here */
    pthread_cond_t *wake;    /* the worker sleeps on it; broadcast when queueing */
    pthread_cond_t *settled; /* broadcast after every attempt; NULL = none */
    const bool *stopping;    /* the worker ends when it turns true */
    long timeout_ms;         /* a receiver slower than this failed */
    long max_wait_ms;        /* the worker looks again at least this often; 0 = 1 s */
    bool log_last_status;    /* the log shows "lastStatus" instead of "responses" */
    sim_delivery_sign sign;  /* NULL = the stored headers only */
    void *sign_ctx;
    /* settings that control endpoints may change */
    long retry_base_ms;
    int max_retries;
    bool hold; /* nothing is sent while set */
    /* the log */
    sim_delivery *items;
    size_t n, cap;
    int64_t next_seq;
    struct {
        bool busy;
        int64_t key;
    } senders[SIM_COURIER_SENDERS_MAX]; /* what each sending worker holds */
} sim_courier;

/* Queues a delivery of body to url (copied) with header lines `headers` (copied; NULL =
 * none) and the log fields `fields` (stolen, also on failure; NULL = none); `key` orders
 * it after deliveries with the same non-zero key; `state` is SIM_DELIVERY_PENDING, or
 * SIM_DELIVERY_DROPPED to only log it. Wakes the workers. Lock held. The delivery
 * (borrowed until the lock is released), or NULL when out of memory. */
sim_delivery *sim_courier_add(sim_courier *c, const char *label, int64_t key, const char *url,
                              const char *body, const char *headers, json_t *fields,
                              sim_delivery_state state);

/* The log, oldest first: [{"id", the simulator's fields..., "url", "state", "attempts",
 * "responses" | "lastStatus"}]. Caller frees with json_decref. Lock held. */
json_t *sim_courier_json(const sim_courier *c);

/* Deliveries still pending. Lock held. */
size_t sim_courier_pending(const sim_courier *c);

/* Holds deliveries (nothing is sent) or releases them; with reverse the pending ones are
 * released newest first, to test out-of-order arrival. Lock held. */
void sim_courier_hold(sim_courier *c, bool hold, bool reverse);

/* Forgets every delivery (an attempt in flight is then not recorded). Lock held or the
 * worker stopped. */
void sim_courier_clear(sim_courier *c);

/* sim_courier_clear and frees the log's memory. The worker must be stopped. */
void sim_courier_free(sim_courier *c);

/* Sends the delivery due first if its time has come (releasing the lock while sending)
 * and records the outcome: true. False when none may go now, with *next_ms = when the
 * next pending one is due (0 = none, held, or all waiting for their key). Lock held. For
 * simulators whose worker does more than deliver; the others run sim_courier_worker. */
bool sim_courier_send_due(sim_courier *c, int64_t *next_ms);

/* A thread body that delivers until *stopping (arg: the sim_courier); several may run
 * for one courier. */
void *sim_courier_worker(void *arg);

/* GET /_sim/deliveries with ctx = the sim_courier: {"deliveries": the log}. */
int sim_courier_h_deliveries(http_request *req, http_response *res, void *ctx);

#endif
