/*
 * sim_simplyprint_cmd.c - `f3connect sim simplyprint`: runs the SimplyPrint simulator
 * (sim/simplyprint/) as a process of its own until SIGTERM or SIGINT.
 *
 * Only argument handling and the signal wait live here; the simulator itself is in
 * sim/. It never reads or touches the platform's store.
 */
#include "app/commands.h"

#include "core/log.h"
#include "core/str.h"
#include "sim/simplyprint/sim.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct sp_args {
    const char *port, *host, *company, *api_key, *webhook_url, *webhook_secret;
    const char *printers, *print_ms, *fail_rate, *cancel_rate, *latency_ms, *seed;
    const char *retry_base_ms, *max_retries, *drop_rate, *duplicate_rate;
} sp_args;

/* An optional integer option within [min, max]; def when absent. */
static int int_option(const char *name, const char *text, int64_t min, int64_t max, int64_t def,
                      int64_t *out)
{
    *out = def;
    if (!text)
        return 0;
    if (str_to_int64(text, out) != 0 || *out < min || *out > max) {
        fprintf(stderr,
                "f3connect sim simplyprint: --%s must be an integer between %lld and %lld\n", name,
                (long long)min, (long long)max);
        return -1;
    }
    return 0;
}

/* An optional probability "0.25" in [0, 1]; 0 when absent. */
static int rate_option(const char *name, const char *text, double *out)
{
    *out = 0;
    if (!text)
        return 0;
    char *end = NULL;
    double v = strtod(text, &end);
    if (!*text || !end || *end || !(v >= 0 && v <= 1)) {
        fprintf(stderr, "f3connect sim simplyprint: --%s must be a number between 0 and 1\n", name);
        return -1;
    }
    *out = v;
    return 0;
}

static int opts_from_args(const sp_args *a, sp_sim_opts *o)
{
    int64_t port, printers, print_ms, latency, seed, base, retries;
    double fail, cancel, drop, dup;
    if (int_option("port", a->port, 0, 65535, 0, &port) ||
        int_option("printers", a->printers, 1, 64, 0, &printers) ||
        int_option("print-ms", a->print_ms, 0, 3600000, 30000, &print_ms) ||
        int_option("latency-ms", a->latency_ms, 0, 60000, 0, &latency) ||
        int_option("seed", a->seed, 0, 4294967295LL, 0, &seed) ||
        int_option("retry-base-ms", a->retry_base_ms, 1, 3600000, 0, &base) ||
        int_option("max-retries", a->max_retries, -1, 30, 0, &retries) ||
        rate_option("fail-rate", a->fail_rate, &fail) ||
        rate_option("cancel-rate", a->cancel_rate, &cancel) ||
        rate_option("drop-rate", a->drop_rate, &drop) ||
        rate_option("duplicate-rate", a->duplicate_rate, &dup))
        return -1;
    if (!a->api_key) {
        fprintf(stderr, "f3connect sim simplyprint: --api-key is required; see 'f3connect sim "
                        "--help'\n");
        return -1;
    }
    *o = (sp_sim_opts){.host = a->host,
                       .port = (int)port,
                       .company_id = a->company,
                       .api_key = a->api_key,
                       .webhook_url = a->webhook_url,
                       .webhook_secret = a->webhook_secret,
                       .printers = (int)printers,
                       .print_ms = (long)print_ms,
                       .fail_rate = fail,
                       .cancel_rate = cancel,
                       .seed = (unsigned)seed,
                       .latency_ms = (long)latency,
                       .drop_rate = drop,
                       .duplicate_rate = dup,
                       .retry_base_ms = (long)base,
                       .max_retries = (int)retries};
    return 0;
}

int cmd_sim_simplyprint(int argc, char **argv)
{
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    sp_args a = {0};
    const cli_option options[] = {
        {"port", &a.port},
        {"host", &a.host},
        {"company", &a.company},
        {"api-key", &a.api_key},
        {"webhook-url", &a.webhook_url},
        {"webhook-secret", &a.webhook_secret},
        {"printers", &a.printers},
        {"print-ms", &a.print_ms},
        {"fail-rate", &a.fail_rate},
        {"cancel-rate", &a.cancel_rate},
        {"latency-ms", &a.latency_ms},
        {"seed", &a.seed},
        {"retry-base-ms", &a.retry_base_ms},
        {"max-retries", &a.max_retries},
        {"drop-rate", &a.drop_rate},
        {"duplicate-rate", &a.duplicate_rate},
        {NULL, NULL},
    };
    const char *which[1] = {NULL};
    int npos = 0, code;
    config *c = cli_load_config("sim", argc, argv, NULL, options, which, 1, &npos, &code);
    if (!c)
        return code;
    log_set_level((log_level)log_level_parse(config_get(c, "LOG_LEVEL")));
    sp_sim_opts o;
    int status = 2;
    if (npos != 1 || !str_eq(which[0], "simplyprint")) {
        fprintf(stderr, "f3connect sim: which simulator? (simplyprint); see 'f3connect sim "
                        "--help'\n");
        goto out;
    }
    if (opts_from_args(&a, &o))
        goto out;
    err e;
    err_clear(&e);
    sp_sim *sim = sp_sim_start(&o, &e);
    status = 1;
    if (!sim) {
        log_fatal("cannot start the SimplyPrint simulator", "reason", e.msg);
        goto out;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", sp_sim_port(sim));
    log_info("simplyprint simulator started", "port", port, "company",
             o.company_id ? o.company_id : SP_SIM_DEFAULT_COMPANY, "webhookUrl", a.webhook_url);
    int sig = 0;
    sigwait(&signals, &sig);
    sp_sim_stop(sim);
    log_info("simplyprint simulator stopped");
    status = 0;
out:
    config_free(c);
    return status;
}
