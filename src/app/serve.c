/*
 * serve.c - `f3connect serve`: runs the platform (app/platform.h) behind the HTTP
 * server until SIGTERM/SIGINT, then shuts down gracefully.
 */
#include "app/commands.h"
#include "app/platform.h"

#include "core/log.h"
#include "http/client.h"
#include "http/server.h"

#include <signal.h>
#include <stdio.h>

/* Blocks the shutdown signals in every thread started from here on, so that
 * only the main thread receives them, in sigwait(). */
static void serve_block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Waits for SIGTERM/SIGINT, then stops accepting and lets in-flight requests finish. */
static void serve_until_signal(http_server *server, sigset_t *signals)
{
    int sig = 0;
    sigwait(signals, &sig);
    log_info("shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    if (http_server_stop(server))
        log_warn("shutdown timeout reached with requests still running");
}

/* A fresh machine has no shop, farm or carrier configured: one line says how to watch the
 * whole loop anyway (connections made later through the API are not looked at: this is
 * only the first-run hint). */
static void serve_sandbox_hint(const config *c)
{
    static const char *const keys[] = {"SHOPIFY_SHOP_DOMAIN", "SIMPLYPRINT_API_KEY",
                                       "SENDCLOUD_PUBLIC_KEY"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (config_get(c, keys[i]))
            return;
    printf("No Shopify, SimplyPrint or Sendcloud integration is configured: to watch the whole "
           "loop on simulated providers, run 'make sandbox' (or 'f3connect sandbox').\n");
    fflush(stdout);
}

static int serve_run(const config *c, sigset_t *signals)
{
    platform p;
    err e;
    err_clear(&e);
    if (platform_open(&p, c, &e)) {
        log_fatal("cannot start the platform", "reason", e.msg);
        return 1;
    }
    http_server_opts opts = platform_http_opts(&p);
    http_server *server = http_server_start(p.router, &opts, &e);
    if (!server) {
        log_fatal("cannot start the HTTP server", "reason", e.msg);
        platform_close(&p);
        return 1;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", http_server_port(server));
    log_info("f3connect started", "version", F3_VERSION, "host", opts.host, "port", port,
             "database", db_backend(p.store));
    serve_sandbox_hint(c);
    serve_until_signal(server, signals);
    platform_stop(&p, (int)config_get_int(c, "SHUTDOWN_TIMEOUT"));
    platform_close(&p);
    log_info("f3connect stopped");
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    sigset_t signals;
    serve_block_signals(&signals);
    int code;
    config *c = cli_load_config("serve", argc, argv, NULL, NULL, NULL, 0, NULL, &code);
    if (!c)
        return code;
    log_set_level((log_level)log_level_parse(config_get(c, "LOG_LEVEL")));
    if (http_client_init() != 0) {
        log_fatal("cannot initialise the HTTP client library");
        config_free(c);
        return 1;
    }
    int status = serve_run(c, &signals);
    http_client_cleanup();
    config_free(c);
    return status;
}
