/*
 * sim_shopify_cmd.c - `f3connect sim shopify`: runs the Shopify simulator (sim/shopify/)
 * as a process of its own until SIGTERM or SIGINT.
 *
 * Only argument handling and the signal wait live here; the simulator itself
 * is in sim/. It never reads or touches the platform's store.
 */
#include "app/commands.h"

#include "core/log.h"
#include "core/str.h"
#include "sim/shopify/sim.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct sim_args {
    const char *port, *host, *secret, *token, *webhook_url, *client_id, *shop, *api_version;
    const char *retry_base_ms, *max_retries, *bucket_size, *leak_rate;
} sim_args;

/* Reads an optional integer option within [min, max]; 0 when absent. */
static int int_option(const char *name, const char *text, int64_t min, int64_t max, int64_t *out)
{
    *out = 0;
    if (!text)
        return 0;
    if (str_to_int64(text, out) != 0 || *out < min || *out > max) {
        fprintf(stderr, "f3connect sim: --%s must be an integer between %lld and %lld\n", name,
                (long long)min, (long long)max);
        return -1;
    }
    return 0;
}

static int sim_opts_from_args(const sim_args *a, shopify_sim_opts *o)
{
    int64_t port, base, retries, bucket, leak;
    if (int_option("port", a->port, 0, 65535, &port) ||
        int_option("retry-base-ms", a->retry_base_ms, 1, 3600000, &base) ||
        int_option("max-retries", a->max_retries, 1, 30, &retries) ||
        int_option("bucket-size", a->bucket_size, 1, 100000, &bucket) ||
        int_option("leak-rate", a->leak_rate, 1, 100000, &leak))
        return -1;
    if (!a->secret || !a->token) {
        fprintf(stderr, "f3connect sim: --secret and --token are required; see 'f3connect sim "
                        "--help'\n");
        return -1;
    }
    *o = (shopify_sim_opts){.host = a->host,
                            .port = (int)port,
                            .secret = a->secret,
                            .token = a->token,
                            .client_id = a->client_id,
                            .webhook_url = a->webhook_url,
                            .shop_domain = a->shop,
                            .api_version = a->api_version,
                            .bucket_size = (int)bucket,
                            .leak_per_s = (int)leak,
                            .retry_base_ms = (long)base,
                            .max_retries = (int)retries};
    return 0;
}

int cmd_sim_shopify(int argc, char **argv)
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
        {"secret", &a.secret},
        {"token", &a.token},
        {"webhook-url", &a.webhook_url},
        {"client-id", &a.client_id},
        {"shop", &a.shop},
        {"api-version", &a.api_version},
        {"retry-base-ms", &a.retry_base_ms},
        {"max-retries", &a.max_retries},
        {"bucket-size", &a.bucket_size},
        {"leak-rate", &a.leak_rate},
        {NULL, NULL},
    };
    const char *which[1] = {NULL};
    int npos = 0, code;
    config *c = cli_load_config("sim", argc, argv, NULL, options, which, 1, &npos, &code);
    if (!c)
        return code;
    log_set_level((log_level)log_level_parse(config_get(c, "LOG_LEVEL")));
    shopify_sim_opts o;
    int status = 2;
    if (npos != 1 || !str_eq(which[0], "shopify")) {
        fprintf(stderr, "f3connect sim: which simulator? (shopify); see 'f3connect sim --help'\n");
        goto out;
    }
    if (sim_opts_from_args(&a, &o))
        goto out;
    err e;
    err_clear(&e);
    shopify_sim *sim = shopify_sim_start(&o, &e);
    status = 1;
    if (!sim) {
        log_fatal("cannot start the Shopify simulator", "reason", e.msg);
        goto out;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", shopify_sim_port(sim));
    log_info("shopify simulator started", "port", port, "webhookUrl", a.webhook_url);
    int sig = 0;
    sigwait(&signals, &sig);
    shopify_sim_stop(sim);
    log_info("shopify simulator stopped");
    status = 0;
out:
    config_free(c);
    return status;
}
