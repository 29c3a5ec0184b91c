/*
 * sim_smtp_cmd.c - `f3connect sim smtp`: runs the SMTP sink (sim/smtp/) as a process of
 * its own until SIGTERM or SIGINT.
 *
 * Only argument handling and the signal wait live here; the sink itself is in sim/. It
 * never reads or touches the platform's store.
 */
#include "app/commands.h"

#include "core/log.h"
#include "core/str.h"
#include "sim/smtp/sink.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct smtp_args {
    const char *port, *http_port, *host, *dir, *user, *pass, *mode;
} smtp_args;

static int port_option(const char *name, const char *text, int64_t *out)
{
    *out = 0;
    if (!text)
        return 0;
    if (str_to_int64(text, out) != 0 || *out < 0 || *out > 65535) {
        fprintf(stderr, "f3connect sim smtp: --%s must be a port between 0 and 65535\n", name);
        return -1;
    }
    return 0;
}

static int sink_opts_from_args(const smtp_args *a, smtp_sink_opts *o, int *mode)
{
    int64_t port, http_port;
    if (port_option("port", a->port, &port) || port_option("http-port", a->http_port, &http_port))
        return -1;
    if ((a->user == NULL) != (a->pass == NULL)) {
        fprintf(stderr, "f3connect sim smtp: --user and --pass go together\n");
        return -1;
    }
    *mode = a->mode ? smtp_sink_mode_parse(a->mode) : SMTP_SINK_ACCEPT;
    if (*mode < 0) {
        fprintf(stderr, "f3connect sim smtp: --mode must be accept, tempfail or refuse\n");
        return -1;
    }
    *o = (smtp_sink_opts){.host = a->host,
                          .port = (int)port,
                          .http_port = (int)http_port,
                          .dir = a->dir,
                          .user = a->user,
                          .pass = a->pass};
    return 0;
}

int cmd_sim_smtp(int argc, char **argv)
{
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    smtp_args a = {0};
    const cli_option options[] = {
        {"port", &a.port}, {"http-port", &a.http_port}, {"host", &a.host}, {"dir", &a.dir},
        {"user", &a.user}, {"pass", &a.pass},           {"mode", &a.mode}, {NULL, NULL},
    };
    const char *which[1] = {NULL};
    int npos = 0, code;
    config *c = cli_load_config("sim", argc, argv, NULL, options, which, 1, &npos, &code);
    if (!c)
        return code;
    log_set_level((log_level)log_level_parse(config_get(c, "LOG_LEVEL")));
    smtp_sink_opts o;
    int mode = 0, status = 2;
    if (npos != 1 || !str_eq(which[0], "smtp")) {
        fprintf(stderr, "f3connect sim: which simulator? see 'f3connect sim --help'\n");
        goto out;
    }
    if (sink_opts_from_args(&a, &o, &mode))
        goto out;
    err e;
    err_clear(&e);
    status = 1;
    smtp_sink *sink = smtp_sink_start(&o, &e);
    if (!sink) {
        log_fatal("cannot start the SMTP sink", "reason", e.msg);
        goto out;
    }
    if (mode != SMTP_SINK_ACCEPT && smtp_sink_set_mode(sink, (smtp_sink_mode)mode, &e) != 0)
        log_warn("SMTP sink mode not applied", "reason", e.msg);
    char port[16], http_port[16];
    snprintf(port, sizeof port, "%d", smtp_sink_port(sink));
    snprintf(http_port, sizeof http_port, "%d", smtp_sink_http_port(sink));
    log_info("smtp sink started", "smtpPort", port, "httpPort", http_port, "dir", a.dir, "auth",
             a.user ? "required" : "optional");
    int sig = 0;
    sigwait(&signals, &sig);
    smtp_sink_stop(sink);
    log_info("smtp sink stopped");
    status = 0;
out:
    config_free(c);
    return status;
}
