/*
 * faults.h - failures on demand for a simulated API: "the next N requests (whose path
 * contains M) fail with this status, or stall this long", as POST /_sim/faults sets them.
 *
 * Shared by the simulators under sim/. The simulator keeps a sim_fault under its own
 * lock and decides where its gate takes one; the error body a failed request gets is
 * the provider's, written by the simulator. Nothing here authenticates or rate-limits.
 */
#ifndef F3_SIM_COMMON_FAULTS_H
#define F3_SIM_COMMON_FAULTS_H

#include "http/request.h"
#include "http/response.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct sim_fault {
    int count;          /* requests still to fail */
    int status;         /* the HTTP status to answer; 0 for a stall (a timeout) */
    char match[64];     /* only requests whose path contains this; "" = any */
    long retry_after_s; /* Retry-After of a 429 or 503; -1 = none */
    long delay_ms;      /* a stall lasts this long, then the request is served normally */
} sim_fault;

/* What one simulator's /_sim/faults accepts. */
typedef struct sim_fault_kinds {
    const int *statuses;   /* HTTP statuses a fault may answer with ("timeout" always works) */
    size_t nstatuses;      /* how many */
    long retry_after;      /* the default of "retry_after", in seconds */
    bool match;            /* "match" (a part of the path) is accepted */
    bool optional;         /* the body may be empty and "kind" absent (nothing changes), and
                              "kind": "none" clears */
    bool retry_after_none; /* "retry_after": -1 means no Retry-After header */
    bool latency;          /* "latency_ms" (0..60000) sets the delay added to every answer */
    const char *usage;     /* the 400 message for a body that does not fit */
} sim_fault_kinds;

/* True when f is a fault k allows: count 0..1000, retry_after 0..3600 (or -1 with
 * retry_after_none), delay 0..60000 ms, status 0 or one of k's. */
bool sim_fault_valid(const sim_fault_kinds *k, const sim_fault *f);

/* The handler of POST /_sim/faults {"kind": "429|5xx|...|timeout", "count": 1,
 * "retry_after": s, "delay_ms": 6000, "match": "path part", "latency_ms": ms} (fields as
 * k allows): replaces *slot (and *latency) under lock and answers {"kind", "pending"};
 * 400 with k->usage for a body that does not fit. */
int sim_fault_handle(http_request *req, http_response *res, pthread_mutex_t *lock, sim_fault *slot,
                     long *latency, const sim_fault_kinds *k);

/* Takes one pending fault from *slot for a request to path, if any applies: true with the
 * fault in *out. Lock held. */
bool sim_fault_take(sim_fault *slot, const char *path, sim_fault *out);

/* Acts out a fault taken by sim_fault_take: a stall sleeps delay_ms and returns false
 * (the request is then served normally); a status sets Retry-After on a 429 or 503 and
 * returns true: the caller writes its provider's error body with f->status. */
bool sim_fault_act(const sim_fault *f, http_response *res);

#endif
