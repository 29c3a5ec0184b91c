/*
 * f3test_sim.h - what the simulator tests share: one simulator run as its own process
 * (`f3connect sim NAME ...` on a free port, waited for until it answers, stopped with
 * SIGTERM and checked to exit cleanly), an in-process webhook receiver and control calls.
 *
 * Test code only; it asserts nothing itself except where a function says it fails the
 * test (cmocka fail_msg).
 */
#ifndef F3_TESTS_SIM_H
#define F3_TESTS_SIM_H

#include "http/router.h"
#include "http/server.h"
#include "support/f3test.h"
#include "support/f3test_proc.h"

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>

typedef struct f3test_sim {
    char *dir;        /* the process's working directory (a fresh tmpdir) */
    f3test_proc proc; /* the process */
    int port;         /* where it listens */
    char base[64];    /* "http://127.0.0.1:PORT" */
} f3test_sim;

/* Starts F3_BINARY with "sim", then args (NULL-terminated: the simulator's name and its
 * options), then "--port P" for a free port P, with LOG_LEVEL=warn, and waits (15 s at
 * most) until GET ready_path answers 200. 0, or -1 after printing why. Stop it with
 * f3test_sim_stop, also after a failed start. */
int f3test_sim_start(f3test_sim *s, const char *const *args, const char *ready_path);

/* Sends SIGTERM and waits (10 s at most) for the exit; kills it if it is still running
 * and removes its directory. 0 when it exited with status 0, else -1 after printing its
 * exit status and stderr. Nothing to do for a simulator never started. */
int f3test_sim_stop(f3test_sim *s);

/* Calls method base+path with the JSON body (stolen; NULL = none) and fails the test
 * unless the answer has HTTP status `want` (0 = any 2xx). The answer's JSON (caller frees with
 * json_decref; NULL when it was not JSON). */
json_t *f3test_sim_call(const f3test_sim *s, const char *method, const char *path, json_t *body,
                        long want);

/* A webhook receiver: an HTTP server on a free 127.0.0.1 port with one POST route, and
 * the test's record of what arrived. The route's handler gets the receiver as its ctx;
 * it answers with f3test_receiver_status (500 while fail_next lasts, else 200) and keeps
 * what it saw with f3test_receiver_keep. */
typedef struct f3test_receiver {
    http_router *router;
    http_server *server;
    char url[128]; /* http://127.0.0.1:PORT/path */
    pthread_mutex_t lock;
    void *records; /* the test's array of max records of record_size bytes */
    size_t record_size, max;
    int n;                      /* records kept */
    int fail_next;              /* deliveries still to answer with 500 */
    long delay_ms;              /* hold each answer this long */
    int inflight, max_inflight; /* deliveries being answered at once, and the most seen */
} f3test_receiver;

/* Starts r serving POST path with handler(ctx = r), keeping records into `records`. 0, or
 * -1 after printing why (stop it with f3test_receiver_stop either way). */
int f3test_receiver_start(f3test_receiver *r, const char *path, http_handler handler, void *records,
                          size_t record_size, size_t max);

/* Stops and frees the receiver. Fine on one that never started. */
void f3test_receiver_stop(f3test_receiver *r);

/* The status to answer a delivery with: 500 while fail_next lasts (counting it down),
 * else 200; returns after delay_ms (counting the delivery in flight meanwhile). */
int f3test_receiver_status(f3test_receiver *r);

/* Copies one record (record_size bytes) in, unless max are already kept. */
void f3test_receiver_keep(f3test_receiver *r, const void *record);

/* Answers a delivery: 200 {"ok": true}, or `status` with an error body. */
int f3test_receiver_reply(http_response *res, int status);

/* Forgets the records, the delay and max_inflight, and answers the next fail_next
 * deliveries with 500. */
void f3test_receiver_reset(f3test_receiver *r, int fail_next);

/* Waits (timeout_ms at most) until n records are kept; the count kept. */
int f3test_receiver_wait(f3test_receiver *r, int n, int timeout_ms);

/* The usual pair of a simulator test: the simulator process and its webhook receiver. */
typedef struct f3test_sim_env {
    f3test_sim sim;
    f3test_receiver hook;
} f3test_sim_env;

/* f3test_sim_stop, then f3test_receiver_stop; f3test_sim_stop's result. */
int f3test_sim_env_stop(f3test_sim_env *env);

#endif
