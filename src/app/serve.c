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
#include "core/crypto.h"
#include "core/log.h"
#include "http/client.h"
#include "http/server.h"
#include "services/gateway/accounts.h"
#include "services/gateway/auth.h"
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

#define MINUTE_MS                  ((int64_t)60 * 1000)
#define FIRST_ADMIN_FALLBACK_EMAIL "admin@f3connect.local"

/* The gateway's parts in this process: sessions in the database, limits in
 * memory (the distributed gateway swaps both for Redis). */
typedef struct serve_gateway {
    session_store *sessions;
    ratelimit *limits;
    auth *auth;
} serve_gateway;

static int serve_gateway_open(const config *c, db *store, serve_gateway *g, err *e)
{
    session_limits sl = {config_get_int(c, "SESSION_IDLE_TIMEOUT"),
                         config_get_int(c, "SESSION_MAX_AGE")};
    g->sessions = session_store_db_new(store, &sl);
    g->limits = ratelimit_memory_new(0);
    if (!g->sessions || !g->limits)
        return err_set(e, F3_ENOMEM, "out of memory");
    auth_opts o = {
        .store = store,
        .sessions = g->sessions,
        .limits = g->limits,
        .app_url = config_get(c, "APP_URL"),
        .internal_key = config_get(c, "INTERNAL_API_KEY"),
        .per_ip = {config_get_int(c, "RATE_LIMIT_IP_PER_MINUTE"), MINUTE_MS},
        .per_user = {config_get_int(c, "RATE_LIMIT_USER_PER_MINUTE"), MINUTE_MS},
        .login = {config_get_int(c, "RATE_LIMIT_LOGIN_PER_MINUTE"), MINUTE_MS},
        .max_failures_account = config_get_int(c, "LOGIN_MAX_FAILURES_PER_HOUR"),
        .max_failures_ip = config_get_int(c, "LOGIN_MAX_FAILURES_PER_HOUR_PER_IP"),
    };
    g->auth = auth_new(&o, e);
    return g->auth ? 0 : e->code;
}

static void serve_gateway_close(serve_gateway *g)
{
    auth_free(g->auth);
    ratelimit_free(g->limits);
    session_store_free(g->sessions);
}

/* On the first start (no users yet) creates the default tenant's admin with a
 * random password, shown once on the terminal (stdout) and never logged. */
static int serve_first_admin(const config *c, db *store, err *e)
{
    char tenant[65];
    int64_t users = 0;
    int rc = account_default_tenant(store, tenant, e);
    rc = rc ? rc : account_count(store, &users, e);
    if (rc || users > 0)
        return rc;
    const char *email = config_get(c, "ADMIN_EMAIL");
    email = email ? email : FIRST_ADMIN_FALLBACK_EMAIL;
    buf pw;
    buf_init(&pw, 0);
    rc = crypto_random_token(&pw, 18);
    rc = rc ? err_set(e, rc, "out of memory")
            : account_create(store, tenant, email, "admin", buf_cstr(&pw), true, NULL, e);
    if (rc == 0) {
        printf("\nFirst start: created the administrator account\n"
               "    email:    %s\n    password: %s\n"
               "This password is shown only now. Log in and change it "
               "(or run 'f3connect user passwd --email %s').\n\n",
               email, buf_cstr(&pw), email);
        fflush(stdout);
        log_info("first administrator created", "email", email);
    }
    if (pw.data)
        crypto_wipe(pw.data, pw.len);
    buf_free(&pw);
    return rc;
}

static int serve_routes(http_router *router, health_ctx *health, auth *a, err *e)
{
    int rc = health_add_routes(router, health, e);
    rc = rc ? rc : auth_add_routes(router, a, e);
    return rc ? rc : auth_add_admin_routes(router, a, e);
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
    serve_gateway gw = {0};
    int status = 1;
    err e;
    err_clear(&e);

    if (store_open(c, &store, &e) || serve_migrate(store, &e)) {
        log_fatal("cannot open the database", "reason", e.msg);
        goto out;
    }
    health.store = store;
    if (serve_first_admin(c, store, &e) || serve_gateway_open(c, store, &gw, &e)) {
        log_fatal("cannot set up authentication", "reason", e.msg);
        goto out;
    }
    router = http_router_new();
    if (!router || serve_routes(router, &health, gw.auth, &e)) {
        log_fatal("cannot build the routing table", "reason", router ? e.msg : "out of memory");
        goto out;
    }
    http_server_opts opts = serve_http_opts(c);
    opts.guard = auth_guard;
    opts.guard_ctx = gw.auth;
    opts.on_response = auth_security_headers;
    opts.on_response_ctx = gw.auth;
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
    serve_gateway_close(&gw);
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
