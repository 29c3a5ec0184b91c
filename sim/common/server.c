/*
 * server.c - the simulators' shared life cycle (see server.h): HTTP server, background
 * threads and the HTTP client library, started in order and stopped in reverse.
 */
#include "sim/common/server.h"

#include "http/client.h"

int sim_server_init(sim_server *sv, pthread_mutex_t *lock, bool *stopping, err *e)
{
    *sv = (sim_server){.lock = lock, .stopping = stopping};
    sv->router = http_router_new();
    return sv->router ? 0 : err_set(e, F3_ENOMEM, "out of memory");
}

int sim_server_spawn(sim_server *sv, void *(*body)(void *), void *arg, pthread_cond_t *wake,
                     const char *what, err *e)
{
    if (sv->nthreads == SIM_SERVER_THREADS_MAX || !sv->lock || !sv->stopping)
        return err_set(e, F3_EINVAL, "cannot start %s: no room for another thread", what);
    if (!sv->client_ready) {
        if (http_client_init() != 0)
            return err_set(e, F3_EIO, "cannot initialise the HTTP client library");
        sv->client_ready = true;
    }
    if (pthread_create(&sv->threads[sv->nthreads].id, NULL, body, arg) != 0)
        return err_set(e, F3_EIO, "cannot start %s", what);
    sv->threads[sv->nthreads++].wake = wake;
    return 0;
}

int sim_server_listen(sim_server *sv, const char *host, int port, unsigned threads, err *e)
{
    http_server_opts so = {.host = host && *host ? host : "127.0.0.1",
                           .port = port,
                           .threads = threads,
                           .shutdown_timeout_ms = 2000};
    sv->http = http_server_start(sv->router, &so, e);
    return sv->http ? 0 : (e && e->code ? e->code : F3_EIO);
}

int sim_server_port(const sim_server *sv)
{
    return http_server_port(sv->http);
}

void sim_server_stop(sim_server *sv)
{
    http_server_stop(sv->http);
    sv->http = NULL;
    if (sv->nthreads) {
        pthread_mutex_lock(sv->lock);
        *sv->stopping = true;
        for (size_t i = 0; i < sv->nthreads; i++)
            pthread_cond_broadcast(sv->threads[i].wake);
        pthread_mutex_unlock(sv->lock);
        for (size_t i = 0; i < sv->nthreads; i++)
            pthread_join(sv->threads[i].id, NULL);
        sv->nthreads = 0;
    }
    if (sv->client_ready)
        http_client_cleanup();
    sv->client_ready = false;
    http_router_free(sv->router);
    sv->router = NULL;
}
