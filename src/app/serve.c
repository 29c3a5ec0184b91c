/*
 * serve.c - `f3connect serve`: wires the store, the routes and the HTTP server
 * into one process and runs it until SIGTERM/SIGINT.
 *
 * This is the only place that knows which parts run in this process; the parts
 * themselves are handed what they need (a db, a router).
 */
#include "app/commands.h"
#include "app/store.h"

#include "core/clock.h"
#include "core/log.h"
#include "http/client.h"
#include "http/server.h"
#include "services/gateway/health.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

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

static http_server_opts serve_http_opts(const config *c)
{
    http_server_opts o = {
        .host = config_get(c, "HOST"),
        .port = (int)config_get_int(c, "PORT"),
        .threads = (unsigned)config_get_int(c, "HTTP_THREADS"),
        .max_body = (size_t)config_get_int(c, "HTTP_MAX_BODY"),
        .max_header = (size_t)config_get_int(c, "HTTP_MAX_HEADER"),
        .request_timeout_ms = (unsigned)config_get_int(c, "HTTP_REQUEST_TIMEOUT"),
        .shutdown_timeout_ms = (unsigned)config_get_int(c, "SHUTDOWN_TIMEOUT"),
    };
    return o;
}

static int serve_migrate(db *store, err *e)
{
    int applied = 0;
    int rc = db_migrate(store, &applied, e);
    if (rc == 0 && applied > 0) {
        char n[16];
        snprintf(n, sizeof n, "%d", applied);
        log_info("migrations applied", "count", n);
    }
    return rc;
}

static int serve_run(const config *c, sigset_t *signals)
{
    db *store = NULL;
    http_router *router = NULL;
    http_server *server = NULL;
    health_ctx health = {.started_ms = clock_now_ms()};
    int status = 1;
    err e;
    err_clear(&e);

    if (store_open(c, &store, &e) || serve_migrate(store, &e)) {
        log_fatal("cannot open the database", "reason", e.msg);
        goto out;
    }
    health.store = store;
    router = http_router_new();
    if (!router || health_add_routes(router, &health, &e)) {
        log_fatal("cannot build the routing table", "reason", router ? e.msg : "out of memory");
        goto out;
    }
    http_server_opts opts = serve_http_opts(c);
    server = http_server_start(router, &opts, &e);
    if (!server) {
        log_fatal("cannot start the HTTP server", "reason", e.msg);
        goto out;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", http_server_port(server));
    log_info("f3connect started", "version", F3_VERSION, "host", opts.host, "port", port,
             "database", db_backend(store));

    int sig = 0;
    sigwait(signals, &sig);
    log_info("shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    int stop_rc = http_server_stop(server);
    server = NULL;
    if (stop_rc)
        log_warn("shutdown timeout reached with requests still running");
    status = 0;
    log_info("f3connect stopped");
out:
    if (server)
        http_server_stop(server);
    http_router_free(router);
    db_close(store);
    return status;
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
