/*
 * sim_sendcloud_cmd.c - `f3connect sim sendcloud`: runs the Sendcloud simulator
 * (sim/sendcloud/) as a process of its own until SIGTERM or SIGINT.
 *
 * Only argument handling and the signal wait live here; the simulator itself is in sim/.
 * It never reads or touches the platform's store, and never logs the keys.
 */
#include "app/commands.h"

#include "core/log.h"
#include "core/str.h"
#include "sim/sendcloud/sim.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct sim_args {
    const char *port, *host, *public_key, *secret_key, *webhook_url, *webhook_secret;
    const char *step_ms, *retry_base_ms, *max_retries;
} sim_args;

/* Reads an optional integer option within [min, max]; def when absent. */
static int int_option(const char *name, const char *text, int64_t min, int64_t max, int64_t def,
                      int64_t *out)
{
    *out = def;
    if (!text)
        return 0;
    if (str_to_int64(text, out) != 0 || *out < min || *out > max) {
        fprintf(stderr, "f3connect sim: --%s must be an integer between %lld and %lld\n", name,
                (long long)min, (long long)max);
        return -1;
    }
    return 0;
}

static int sim_opts_from_args(const sim_args *a, sendcloud_sim_opts *o)
{
    int64_t port, step, base, retries;
    if (int_option("port", a->port, 0, 65535, 0, &port) ||
        int_option("step-ms", a->step_ms, -1, 3600000, 0, &step) ||
        int_option("retry-base-ms", a->retry_base_ms, 1, 3600000, 0, &base) ||
        int_option("max-retries", a->max_retries, 1, 30, 0, &retries))
        return -1;
    if (step == 0 && a->step_ms) {
        fprintf(stderr, "f3connect sim: --step-ms must be -1 or at least 1\n");
        return -1;
    }
    if (!a->public_key || !a->secret_key) {
        fprintf(stderr, "f3connect sim: --public-key and --secret-key are required; see "
                        "'f3connect sim --help'\n");
        return -1;
    }
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
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    sim_args a = {0};
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
    const char *which[1] = {NULL};
    int npos = 0, code;
    config *c = cli_load_config("sim", argc, argv, NULL, options, which, 1, &npos, &code);
    if (!c)
        return code;
    log_set_level((log_level)log_level_parse(config_get(c, "LOG_LEVEL")));
    sendcloud_sim_opts o;
    int status = 2;
    if (npos != 1 || !str_eq(which[0], "sendcloud")) {
        fprintf(stderr, "f3connect sim: which simulator? (sendcloud); see 'f3connect sim "
                        "--help'\n");
        goto out;
    }
    if (sim_opts_from_args(&a, &o))
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
    int sig = 0;
    sigwait(&signals, &sig);
    sendcloud_sim_stop(sim);
    log_info("sendcloud simulator stopped");
    status = 0;
out:
    config_free(c);
    return status;
}
