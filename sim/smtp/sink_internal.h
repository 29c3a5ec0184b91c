/*
 * sink_internal.h - the SMTP sink's state, shared by its SMTP side (sink.c) and its
 * HTTP control API (sink_http.c). Nothing outside sim/smtp/ includes it.
 */
#ifndef F3_SIM_SMTP_SINK_INTERNAL_H
#define F3_SIM_SMTP_SINK_INTERNAL_H

#include "sim/smtp/sink.h"

#include "sim/common/server.h"

#include <pthread.h>
#include <stdatomic.h>

struct smtp_sink {
    char host[64];
    int port;
    char *dir;
    char *user, *pass;
    size_t max_message;

    int listen_fd; /* -1 while refusing */
    pthread_t thread;
    atomic_bool stopping;

    pthread_mutex_t mu;
    pthread_cond_t cond; /* signalled on a new message and when a mode is applied */
    smtp_sink_mode mode, applied_mode;
    int rebind_error;
    smtp_sink_msg *msgs;
    size_t n, cap;
    uint64_t next_id;

    sim_server web; /* the HTTP control API (sink_http.c); no threads of its own */
};

/* Starts the control API on port (0 = free). 0 or an error with e set. */
int smtp_sink_http_start(smtp_sink *s, int port, err *e);

#endif
