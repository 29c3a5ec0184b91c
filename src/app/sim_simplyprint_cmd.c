/*
 * sim_simplyprint_cmd.c - `f3connect sim simplyprint`: runs the SimplyPrint simulator
 * (sim/simplyprint/) as a process of its own until SIGTERM or SIGINT.
 *
 * Only the SimplyPrint simulator's options live here (the rest is sim_args.c); the
 * simulator itself is in sim/. It never reads or touches the platform's store.
 */
#include "app/sim_args.h"

#include "core/log.h"
#include "sim/simplyprint/sim.h"

#include <stdio.h>

typedef struct sp_args {
    const char *port, *host, *company, *api_key, *webhook_url, *webhook_secret;
    const char *printers, *print_ms, *fail_rate, *cancel_rate, *latency_ms, *seed;
    const char *retry_base_ms, *max_retries, *drop_rate, *duplicate_rate;
} sp_args;

static void *start(const sim_cmd *c, const void *args, int *status, err *e)
{
    const sp_args *a = args;
    int64_t port, printers, print_ms, latency, seed, base, retries;
    double fail, cancel, drop, dup;
    *status = 2;
    if (sim_int_option(c, "port", a->port, 0, 65535, 0, &port) ||
        sim_int_option(c, "printers", a->printers, 1, 64, 0, &printers) ||
        sim_int_option(c, "print-ms", a->print_ms, 0, 3600000, 30000, &print_ms) ||
        sim_int_option(c, "latency-ms", a->latency_ms, 0, 60000, 0, &latency) ||
        sim_int_option(c, "seed", a->seed, 0, 4294967295LL, 0, &seed) ||
        sim_int_option(c, "retry-base-ms", a->retry_base_ms, 1, 3600000, 0, &base) ||
        sim_int_option(c, "max-retries", a->max_retries, -1, 30, 0, &retries) ||
        sim_rate_option(c, "fail-rate", a->fail_rate, &fail) ||
        sim_rate_option(c, "cancel-rate", a->cancel_rate, &cancel) ||
        sim_rate_option(c, "drop-rate", a->drop_rate, &drop) ||
        sim_rate_option(c, "duplicate-rate", a->duplicate_rate, &dup))
        return NULL;
    if (!a->api_key) {
        sim_cmd_usage_error(c, "--api-key is required; see 'f3connect sim --help'");
        return NULL;
    }
    sp_sim_opts o = {.host = a->host,
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
    *status = 1;
    sp_sim *sim = sp_sim_start(&o, e);
    if (sim) {
        char p[16];
        snprintf(p, sizeof p, "%d", sp_sim_port(sim));
        log_info("simplyprint simulator started", "port", p, "company",
                 a->company ? a->company : SP_SIM_DEFAULT_COMPANY, "webhookUrl", a->webhook_url);
    }
    return sim;
}

static void stop(void *sim)
{
    sp_sim_stop(sim);
}

int cmd_sim_simplyprint(int argc, char **argv)
{
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
    const sim_cmd_ops ops = {start, stop, "cannot start the SimplyPrint simulator",
                             "simplyprint simulator stopped"};
    return sim_cmd_run("simplyprint", argc, argv, options, &ops, &a);
}
