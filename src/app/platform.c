/*
 * platform.c - assembles the parts that run in one process (see platform.h).
 */
#include "app/platform.h"

#include "app/store.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "services/gateway/accounts.h"
#include "services/orders/integrations_state.h"

#include <stdio.h>
#include <string.h>

#define MINUTE_MS                  ((int64_t)60 * 1000)
#define FIRST_ADMIN_FALLBACK_EMAIL "admin@f3connect.local"

static int platform_gateway_open(const config *c, db *store, platform_gateway *g, err *e)
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

static void platform_gateway_close(platform_gateway *g)
{
    auth_free(g->auth);
    ratelimit_free(g->limits);
    session_store_free(g->sessions);
}

/* On the first start (no users yet) creates the default tenant's admin with a
 * random password, shown once on the terminal (stdout) and never logged. */
static int platform_first_admin(const config *c, db *store, err *e)
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

static int platform_migrate(db *store, err *e)
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

static int platform_routes(platform *p, err *e)
{
    p->router = http_router_new();
    if (!p->router)
        return err_set(e, F3_ENOMEM, "out of memory");
    int rc = health_add_routes(p->router, &p->health, e);
    rc = rc ? rc : auth_add_routes(p->router, p->gw.auth, e);
    rc = rc ? rc : auth_add_admin_routes(p->router, p->gw.auth, e);
    rc = rc ? rc : bus_admin_add_routes(p->router, &p->queue_admin, e);
    rc = rc ? rc : retry_api_add_routes(p->router, p->store, e);
    return rc ? rc : orders_api_add_routes(p->router, &p->orders_api, e);
}

/* Orders: Shopify fulfilment, cancellation and the tenants' integration state. */
static int platform_fulfillment(platform *p, err *e)
{
    if (!p->orders_emitter && !(p->orders_emitter = bus_emitter_new()))
        return err_set(e, F3_ENOMEM, "out of memory");
    orders_fulfillment_deps fd = {.db = p->store,
                                  .bus = p->orders_bus,
                                  .store = p->queues,
                                  .config = p->cfg,
                                  .emitter = p->orders_emitter,
                                  .retry = p->retry};
    int rc = orders_fulfillment_start(&p->fulfillment, &fd, p->router, e);
    rc = rc ? rc : orders_integrations_subscribe(p->orders_bus, e);
    p->cancellation = (orders_cancellation_deps){.db = p->store, .bus = p->orders_bus};
    return rc ? rc : orders_cancellation_add_routes(p->router, &p->cancellation, e);
}

/* An order completed printing: the orders service fulfils it itself when no shipping
 * integration will (in the same transaction). */
static int platform_order_ready(void *ctx, db_conn *tx, const char *tenant_id, const char *order_id,
                                err *e)
{
    platform *p = ctx;
    return orders_fulfillment_ready_tx(p->fulfillment, tx, tenant_id, order_id, e);
}

/* The retry queue and operator e-mail (services/common/): the order service's processor
 * runs the NOTIFICATION entries, the daily summary and the dead-letter watch (alerts for
 * bus jobs of any service that failed for good); fulfilment registers FULFILLMENT on
 * p->retry before retry_schedule (platform_services); the print service has a retry_queue
 * of its own, scheduled on its own bus. */
static int platform_retry_notify(platform *p, err *e)
{
    p->retry = retry_new(p->store, NULL);
    p->notify = p->retry ? notify_new(p->cfg, p->store, e) : NULL;
    p->deadletter = deadletter_new(p->store, p->queues);
    if (!p->retry || !p->notify || !p->deadletter)
        return err_set(e, F3_ENOMEM, "out of memory");
    int rc = notify_register(p->notify, p->retry, e);
    rc = rc ? rc : notify_schedule_summary(p->notify, p->orders_bus, p->queues, e);
    return rc ? rc : deadletter_schedule(p->deadletter, p->orders_bus, e);
}

/* The services that run in this process, with their queues and routes. */
static int platform_services(platform *p, err *e)
{
    p->orders_bus = bus_new(p->store, p->queues, BUS_SVC_ORDER, e);
    if (!p->orders_bus)
        return e->code ? e->code : F3_ENOMEM;
    orders_intake_deps od = {
        .db = p->store, .bus = p->orders_bus, .store = p->queues, .config = p->cfg};
    int rc = orders_intake_start(&p->intake, &od, p->router, e);
    rc = rc ? rc : platform_retry_notify(p, e);
    rc = rc ? rc : platform_fulfillment(p, e);
    /* Orchestration: the order status follows the print-job events. */
    orders_orchestration_deps orch = {.bus = p->orders_bus,
                                      .emitter = p->orders_emitter,
                                      .on_ready = platform_order_ready,
                                      .on_ready_ctx = p};
    rc = rc ? rc : orders_orchestration_start(&p->orchestration, &orch, e);
    /* Every retry handler of the order service is registered by now. */
    rc = rc ? rc
            : retry_schedule(p->retry, p->orders_bus, p->queues,
                             config_get_int(p->cfg, "RETRY_QUEUE_INTERVAL"), e);
    rc = rc ? rc : bus_start(p->orders_bus, e);
    if (rc)
        return rc;
    /* print service: SimplyPrint connection (SIMPLYPRINT_* for the default tenant), print
     * jobs from order.created, status intake and reconciliation */
    p->print_bus = bus_new(p->store, p->queues, BUS_SVC_PRINT, e);
    if (!p->print_bus)
        return e->code ? e->code : F3_ENOMEM;
    if (!(p->print_retry = retry_new(p->store, NULL)))
        return err_set(e, F3_ENOMEM, "out of memory");
    print_service_deps pd = {.db = p->store,
                             .bus = p->print_bus,
                             .store = p->queues,
                             .config = p->cfg,
                             .provider = &print_provider_simplyprint,
                             .tenant_id = orders_intake_tenant(p->intake),
                             .retry = p->print_retry};
    rc = print_service_start(&p->print, &pd, p->router, e);
    rc = rc ? rc
            : retry_schedule(p->print_retry, p->print_bus, p->queues,
                             config_get_int(p->cfg, "RETRY_QUEUE_INTERVAL"), e);
    rc = rc ? rc : bus_start(p->print_bus, e);
    if (rc)
        return rc;
    /* shipping service (Sendcloud) */
    p->shipping_bus = bus_new(p->store, p->queues, BUS_SVC_SHIPPING, e);
    if (!p->shipping_bus)
        return e->code ? e->code : F3_ENOMEM;
    shipping_deps sd = {.db = p->store,
                        .bus = p->shipping_bus,
                        .store = p->queues,
                        .config = p->cfg,
                        .tenant_id = orders_intake_tenant(p->intake)};
    rc = shipping_service_start(&p->shipping, &sd, p->router, e);
    return rc ? rc : bus_start(p->shipping_bus, e);
}

int platform_open(platform *p, const config *c, err *e)
{
    memset(p, 0, sizeof *p);
    p->cfg = c;
    p->health.started_ms = clock_now_ms();
    int rc = store_open(c, &p->store, e);
    rc = rc ? rc : platform_migrate(p->store, e);
    rc = rc ? rc : bus_store_open_sql(p->store, &p->queues, e);
    rc = rc ? rc : platform_first_admin(c, p->store, e);
    rc = rc ? rc : platform_gateway_open(c, p->store, &p->gw, e);
    if (rc == 0) {
        p->health.store = p->store;
        p->queue_admin.store = p->queues;
        p->orders_api.db = p->store;
        rc = platform_routes(p, e);
    }
    rc = rc ? rc : platform_services(p, e);
    if (rc)
        platform_close(p);
    return rc;
}

http_server_opts platform_http_opts(const platform *p)
{
    const config *c = p->cfg;
    http_server_opts o = {
        .host = config_get(c, "HOST"),
        .port = (int)config_get_int(c, "PORT"),
        .threads = (unsigned)config_get_int(c, "HTTP_THREADS"),
        .max_body = (size_t)config_get_int(c, "HTTP_MAX_BODY"),
        .max_header = (size_t)config_get_int(c, "HTTP_MAX_HEADER"),
        .request_timeout_ms = (unsigned)config_get_int(c, "HTTP_REQUEST_TIMEOUT"),
        .shutdown_timeout_ms = (unsigned)config_get_int(c, "SHUTDOWN_TIMEOUT"),
        .guard = auth_guard,
        .guard_ctx = p->gw.auth,
        .on_response = auth_security_headers,
        .on_response_ctx = p->gw.auth,
    };
    return o;
}

void platform_stop(platform *p, int timeout_ms)
{
    if (p->intake)
        orders_intake_stop(p->intake);
    retry_stop(p->retry);
    retry_stop(p->print_retry);
    if (p->print)
        print_service_stop(p->print);
    if (p->print_bus && bus_drain(p->print_bus, timeout_ms) != 0)
        log_warn("shutdown timeout reached with print queue handlers still running");
    if (p->shipping)
        shipping_service_stop(p->shipping);
    if (p->orders_bus && bus_drain(p->orders_bus, timeout_ms) != 0)
        log_warn("shutdown timeout reached with queue handlers still running");
    if (p->shipping_bus && bus_drain(p->shipping_bus, timeout_ms) != 0)
        log_warn("shutdown timeout reached with shipping handlers still running");
}

void platform_close(platform *p)
{
    bus_free(p->print_bus);
    p->print_bus = NULL;
    /* Its wake-up thread may be running a print handler: gone before the service. */
    retry_free(p->print_retry);
    p->print_retry = NULL;
    print_service_free(p->print);
    p->print = NULL;
    bus_free(p->shipping_bus);
    p->shipping_bus = NULL;
    shipping_service_free(p->shipping);
    p->shipping = NULL;
    bus_free(p->orders_bus);
    p->orders_bus = NULL;
    /* Its wake-up thread may be running a fulfilment handler: gone before fulfilment. */
    retry_free(p->retry);
    p->retry = NULL;
    orders_intake_free(p->intake);
    p->intake = NULL;
    orders_orchestration_free(p->orchestration);
    p->orchestration = NULL;
    orders_fulfillment_free(p->fulfillment);
    p->fulfillment = NULL;
    bus_emitter_free(p->orders_emitter);
    p->orders_emitter = NULL;
    notify_free(p->notify);
    p->notify = NULL;
    deadletter_free(p->deadletter);
    p->deadletter = NULL;
    http_router_free(p->router);
    p->router = NULL;
    platform_gateway_close(&p->gw);
    memset(&p->gw, 0, sizeof p->gw);
    bus_store_close(p->queues);
    p->queues = NULL;
    db_close(p->store);
    p->store = NULL;
}
