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

/* A webhook receiver: an HTTP server on a free 127.0.0.1 port with one POST route. */
typedef struct f3test_receiver {
    http_router *router;
    http_server *server;
    char url[128]; /* http://127.0.0.1:PORT/path */
} f3test_receiver;

/* Starts r serving POST path with handler(ctx). 0, or -1 after printing why (stop it
 * with f3test_receiver_stop either way). */
int f3test_receiver_start(f3test_receiver *r, const char *path, http_handler handler, void *ctx);

/* Stops and frees the receiver. Fine on one that never started. */
void f3test_receiver_stop(f3test_receiver *r);

#endif
