/*
 * sim_sendcloud_cmd.c - `f3connect sim sendcloud`: runs the Sendcloud simulator
 * (sim/sendcloud/) as a process of its own until SIGTERM or SIGINT.
 *
 * Only the Sendcloud simulator's options live here (the rest is sim_args.c); the
 * simulator itself is in sim/. It never reads or touches the platform's store, and never
 * logs the keys.
 */
#include "app/sim_args.h"

#include "core/log.h"
#include "sim/sendcloud/sim.h"

#include <stdio.h>

typedef struct sendcloud_args {
    const char *port, *host, *public_key, *secret_key, *webhook_url, *webhook_secret;
    const char *step_ms, *retry_base_ms, *max_retries;
} sendcloud_args;

static int opts_from_args(const sim_cmd *c, const sendcloud_args *a, sendcloud_sim_opts *o)
{
    int64_t port, step, base, retries;
    if (sim_int_option(c, "port", a->port, 0, 65535, 0, &port) ||
        sim_int_option(c, "step-ms", a->step_ms, -1, 3600000, 0, &step) ||
        sim_int_option(c, "retry-base-ms", a->retry_base_ms, 1, 3600000, 0, &base) ||
        sim_int_option(c, "max-retries", a->max_retries, 1, 30, 0, &retries))
        return -1;
    if (step == 0 && a->step_ms)
        return sim_cmd_usage_error(c, "--step-ms must be -1 or at least 1");
    if (!a->public_key || !a->secret_key)
        return sim_cmd_usage_error(
            c, "--public-key and --secret-key are required; see 'f3connect sim --help'");
    *o = (sendcloud_sim_opts){.host = a->host,
                              .port = (int)port,
                              .public_key = a->public_key,
                              .secret_key = a->secret_key,
                              .webhook_secret = a->webhook_secret,
                              .webhook_url = a->webhook_url,
                              .step_ms = (long)step,
                              .retry_base_ms = (long)base,
                              .max_retries = (int)retries};
    return 0;
}

int cmd_sim_sendcloud(int argc, char **argv)
{
    sendcloud_args a = {0};
    const cli_option options[] = {
        {"port", &a.port},
        {"host", &a.host},
        {"public-key", &a.public_key},
        {"secret-key", &a.secret_key},
        {"webhook-url", &a.webhook_url},
        {"webhook-secret", &a.webhook_secret},
        {"step-ms", &a.step_ms},
        {"retry-base-ms", &a.retry_base_ms},
        {"max-retries", &a.max_retries},
        {NULL, NULL},
    };
    sim_cmd c;
    int status = sim_cmd_begin(&c, "sendcloud", argc, argv, options);
    if (status)
        return status;
    sendcloud_sim_opts o;
    status = 2;
    if (opts_from_args(&c, &a, &o))
        goto out;
    err e;
    err_clear(&e);
    sendcloud_sim *sim = sendcloud_sim_start(&o, &e);
    status = 1;
    if (!sim) {
        log_fatal("cannot start the Sendcloud simulator", "reason", e.msg);
        goto out;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", sendcloud_sim_port(sim));
    log_info("sendcloud simulator started", "port", port, "webhookUrl", a.webhook_url);
    sim_cmd_wait(&c);
    sendcloud_sim_stop(sim);
    log_info("sendcloud simulator stopped");
    status = 0;
out:
    sim_cmd_end(&c);
    return status;
}
