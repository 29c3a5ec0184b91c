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

static void *start(const sim_cmd *c, const void *args, int *status, err *e)
{
    const smtp_args *a = args;
    int64_t port, http_port;
    *status = 2;
    if (sim_int_option(c, "port", a->port, 0, 65535, 0, &port) ||
        sim_int_option(c, "http-port", a->http_port, 0, 65535, 0, &http_port))
        return NULL;
    if ((a->user == NULL) != (a->pass == NULL)) {
        sim_cmd_usage_error(c, "--user and --pass go together");
        return NULL;
    }
    int mode = a->mode ? smtp_sink_mode_parse(a->mode) : SMTP_SINK_ACCEPT;
    if (mode < 0) {
        sim_cmd_usage_error(c, "--mode must be accept, tempfail or refuse");
        return NULL;
    }
    smtp_sink_opts o = {.host = a->host,
                        .port = (int)port,
                        .http_port = (int)http_port,
                        .dir = a->dir,
                        .user = a->user,
                        .pass = a->pass};
    *status = 1;
    smtp_sink *sink = smtp_sink_start(&o, e);
    if (!sink)
        return NULL;
    err me;
    if (mode != SMTP_SINK_ACCEPT && smtp_sink_set_mode(sink, (smtp_sink_mode)mode, &me) != 0)
        log_warn("SMTP sink mode not applied", "reason", me.msg);
    char p[16], hp[16];
    snprintf(p, sizeof p, "%d", smtp_sink_port(sink));
    snprintf(hp, sizeof hp, "%d", smtp_sink_http_port(sink));
    log_info("smtp sink started", "smtpPort", p, "httpPort", hp, "dir", a->dir, "auth",
             a->user ? "required" : "optional");
    return sink;
}

static void stop(void *sink)
{
    smtp_sink_stop(sink);
}

int cmd_sim_smtp(int argc, char **argv)
{
    smtp_args a = {0};
    const cli_option options[] = {
        {"port", &a.port}, {"http-port", &a.http_port}, {"host", &a.host}, {"dir", &a.dir},
        {"user", &a.user}, {"pass", &a.pass},           {"mode", &a.mode}, {NULL, NULL},
    };
    const sim_cmd_ops ops = {start, stop, "cannot start the SMTP sink", "smtp sink stopped"};
    return sim_cmd_run("smtp", argc, argv, options, &ops, &a);
}
