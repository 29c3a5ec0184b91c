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

static void *start(const sim_cmd *c, const void *args, int *status, err *e)
{
    const sendcloud_args *a = args;
    int64_t port, step, base, retries;
    *status = 2;
    if (sim_int_option(c, "port", a->port, 0, 65535, 0, &port) ||
        sim_int_option(c, "step-ms", a->step_ms, -1, 3600000, 0, &step) ||
        sim_int_option(c, "retry-base-ms", a->retry_base_ms, 1, 3600000, 0, &base) ||
        sim_int_option(c, "max-retries", a->max_retries, 1, 30, 0, &retries))
        return NULL;
    if (step == 0 && a->step_ms) {
        sim_cmd_usage_error(c, "--step-ms must be -1 or at least 1");
        return NULL;
    }
    if (!a->public_key || !a->secret_key) {
        sim_cmd_usage_error(
            c, "--public-key and --secret-key are required; see 'f3connect sim --help'");
        return NULL;
    }
    sendcloud_sim_opts o = {.host = a->host,
                            .port = (int)port,
                            .public_key = a->public_key,
                            .secret_key = a->secret_key,
                            .webhook_secret = a->webhook_secret,
                            .webhook_url = a->webhook_url,
                            .step_ms = (long)step,
                            .retry_base_ms = (long)base,
                            .max_retries = (int)retries};
    *status = 1;
    sendcloud_sim *sim = sendcloud_sim_start(&o, e);
    if (sim) {
        char p[16];
        snprintf(p, sizeof p, "%d", sendcloud_sim_port(sim));
        log_info("sendcloud simulator started", "port", p, "webhookUrl", a->webhook_url);
    }
    return sim;
}

static void stop(void *sim)
{
    sendcloud_sim_stop(sim);
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
    const sim_cmd_ops ops = {start, stop, "cannot start the Sendcloud simulator",
                             "sendcloud simulator stopped"};
    return sim_cmd_run("sendcloud", argc, argv, options, &ops, &a);
}
