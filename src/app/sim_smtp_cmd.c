/*
 * sim_smtp_cmd.c - `f3connect sim smtp`: runs the SMTP sink (sim/smtp/) as a process of
 * its own until SIGTERM or SIGINT.
 *
 * Only the sink's options live here (the rest is sim_args.c); the sink itself is in
 * sim/. It never reads or touches the platform's store.
 */
#include "app/sim_args.h"

#include "core/log.h"
#include "sim/smtp/sink.h"

#include <stdio.h>

typedef struct smtp_args {
    const char *port, *http_port, *host, *dir, *user, *pass, *mode;
} smtp_args;

static int opts_from_args(const sim_cmd *c, const smtp_args *a, smtp_sink_opts *o, int *mode)
{
    int64_t port, http_port;
    if (sim_int_option(c, "port", a->port, 0, 65535, 0, &port) ||
        sim_int_option(c, "http-port", a->http_port, 0, 65535, 0, &http_port))
        return -1;
    if ((a->user == NULL) != (a->pass == NULL))
        return sim_cmd_usage_error(c, "--user and --pass go together");
    *mode = a->mode ? smtp_sink_mode_parse(a->mode) : SMTP_SINK_ACCEPT;
    if (*mode < 0)
        return sim_cmd_usage_error(c, "--mode must be accept, tempfail or refuse");
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
    smtp_args a = {0};
    const cli_option options[] = {
        {"port", &a.port}, {"http-port", &a.http_port}, {"host", &a.host}, {"dir", &a.dir},
        {"user", &a.user}, {"pass", &a.pass},           {"mode", &a.mode}, {NULL, NULL},
    };
    sim_cmd c;
    int status = sim_cmd_begin(&c, "smtp", argc, argv, options);
    if (status)
        return status;
    smtp_sink_opts o;
    int mode = 0;
    status = 2;
    if (opts_from_args(&c, &a, &o, &mode))
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
    sim_cmd_wait(&c);
    smtp_sink_stop(sink);
    log_info("smtp sink stopped");
    status = 0;
out:
    sim_cmd_end(&c);
    return status;
}
