/*
 * sim_shopify_cmd.c - `f3connect sim shopify`: runs the Shopify simulator (sim/shopify/)
 * as a process of its own until SIGTERM or SIGINT.
 *
 * Only the Shopify simulator's options live here (the rest is sim_args.c); the
 * simulator itself is in sim/. It never reads or touches the platform's store.
 */
#include "app/sim_args.h"

#include "core/log.h"
#include "sim/shopify/sim.h"

#include <stdio.h>

typedef struct shopify_args {
    const char *port, *host, *secret, *token, *webhook_url, *client_id, *shop, *api_version;
    const char *retry_base_ms, *max_retries, *bucket_size, *leak_rate;
} shopify_args;

static void *start(const sim_cmd *c, const void *args, int *status, err *e)
{
    const shopify_args *a = args;
    int64_t port, base, retries, bucket, leak;
    *status = 2;
    if (sim_int_option(c, "port", a->port, 0, 65535, 0, &port) ||
        sim_int_option(c, "retry-base-ms", a->retry_base_ms, 1, 3600000, 0, &base) ||
        sim_int_option(c, "max-retries", a->max_retries, 1, 30, 0, &retries) ||
        sim_int_option(c, "bucket-size", a->bucket_size, 1, 100000, 0, &bucket) ||
        sim_int_option(c, "leak-rate", a->leak_rate, 1, 100000, 0, &leak))
        return NULL;
    if (!a->secret || !a->token) {
        sim_cmd_usage_error(c, "--secret and --token are required; see 'f3connect sim --help'");
        return NULL;
    }
    shopify_sim_opts o = {.host = a->host,
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
    *status = 1;
    shopify_sim *sim = shopify_sim_start(&o, e);
    if (sim) {
        char p[16];
        snprintf(p, sizeof p, "%d", shopify_sim_port(sim));
        log_info("shopify simulator started", "port", p, "webhookUrl", a->webhook_url);
    }
    return sim;
}

static void stop(void *sim)
{
    shopify_sim_stop(sim);
}

int cmd_sim_shopify(int argc, char **argv)
{
    shopify_args a = {0};
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
    const sim_cmd_ops ops = {start, stop, "cannot start the Shopify simulator",
                             "shopify simulator stopped"};
    return sim_cmd_run("shopify", argc, argv, options, &ops, &a);
}
