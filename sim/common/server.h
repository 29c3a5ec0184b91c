/*
 * server.h - the life cycle every simulator shares: its HTTP server (router, bind,
 * stop), the background threads it runs (printers, webhook couriers, ...) and the HTTP
 * client library those threads send with.
 *
 * A simulator embeds one sim_server, adds its routes to `router`, starts its threads
 * with sim_server_spawn and then listens. sim_server_stop undoes whatever of that was
 * done, in the safe order, so a simulator's start can bail out through its stop at any
 * point. Nothing here knows a provider's API or state.
 */
#ifndef F3_SIM_COMMON_SERVER_H
#define F3_SIM_COMMON_SERVER_H

#include "core/err.h"
#include "http/router.h"
#include "http/server.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define SIM_SERVER_THREADS_MAX 12

typedef struct sim_server {
    http_router *router;   /* the simulator's routes; fixed once listening */
    http_server *http;     /* NULL until sim_server_listen */
    pthread_mutex_t *lock; /* the simulator's lock, guarding *stopping; NULL = no threads */
    bool *stopping;        /* set under lock by sim_server_stop; threads end when they see it */
    struct {
        pthread_t id;
        pthread_cond_t *wake; /* what the thread sleeps on: broadcast at stop */
    } threads[SIM_SERVER_THREADS_MAX];
    size_t nthreads;
    bool client_ready; /* http_client_init() done for the threads */
} sim_server;

/* Prepares sv with an empty router. lock and stopping are the simulator's (they may be
 * NULL when it starts no thread). 0 or F3_ENOMEM with e set. */
int sim_server_init(sim_server *sv, pthread_mutex_t *lock, bool *stopping, err *e);

/* Starts a thread running body(arg), which sleeps on wake (under the simulator's lock)
 * and returns once *stopping is true. The first call initialises the HTTP client
 * library. `what` names the thread in the error ("the printer farm thread"). 0 or F3_EIO
 * with e set. */
int sim_server_spawn(sim_server *sv, void *(*body)(void *), void *arg, pthread_cond_t *wake,
                     const char *what, err *e);

/* Serves the router on host (NULL or "" = 127.0.0.1) and port (0 = a free one) with a
 * pool of `threads`. 0 or an error with e set (e.g. the port is taken). */
int sim_server_listen(sim_server *sv, const char *host, int port, unsigned threads, err *e);

/* The port listened on. */
int sim_server_port(const sim_server *sv);

/* Stops serving (requests in flight get 2 s), sets *stopping, wakes and joins every
 * thread, undoes the HTTP client initialisation and frees the router. Whatever was not
 * started is skipped; calling it again does nothing. */
void sim_server_stop(sim_server *sv);

#endif
