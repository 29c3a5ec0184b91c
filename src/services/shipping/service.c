/*
 * service.c - wiring of the shipping service (see shipping.h): the sealing key, the
 * configured Sendcloud account, routes, subscriptions, job queues and the reconciliation
 * repeatable. No business logic lives here.
 */
#include "services/shipping/shipping_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/secret_key.h"
#include "core/str.h"

#include <stdlib.h>
#include <string.h>

typedef struct bootstrap_ctx {
    shipping_service *s;
    const shipping_conn *conn;
    bool was_connected;
    bool kept;    /* the tenant had a connection: left as it is */
    bool differs; /* ... and the settings differ from it (or its keys do not open) */
} bootstrap_ctx;

static bool same_text(const char *a, const char *b)
{
    return str_eq(a ? a : "", b ? b : "");
}

/* Settings seed a tenant's connection only when it has none: once stored, the connection
 * is the operator's (changed or disconnected through the API), and a restart must not put
 * the settings back over it. */
static int bootstrap_tx(db_conn *c, void *ctx, err *e)
{
    bootstrap_ctx *b = ctx;
    shipping_conn old;
    int rc = shipping_conn_load(b->s, c, b->conn->tenant_id, &old, e);
    if (rc == 0 || rc == F3_EINVAL) {
        b->kept = true;
        b->differs =
            rc != 0 || !same_text(old.public_key, b->conn->public_key) ||
            !same_text(old.secret_key, b->conn->secret_key) ||
            (b->conn->webhook_secret && !same_text(old.webhook_secret, b->conn->webhook_secret));
        shipping_conn_clear(&old);
        return 0;
    }
    if (rc != F3_ENOTFOUND)
        return rc;
    rc = shipping_conn_save(b->s, c, b->conn, &b->was_connected, e);
    if (rc || b->was_connected)
        return rc;
    json_t *fields = json_pack("{s:s}", "action", "connected");
    rc = fields ? bus_publish(b->s->bus, c, BUS_EV_INTEGRATION_SENDCLOUD_CHANGED,
                              b->conn->tenant_id, fields, e)
                : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(fields);
    return rc;
}

/* Connects the account of SENDCLOUD_PUBLIC_KEY / SENDCLOUD_SECRET_KEY for tenant_id. */
static int bootstrap(shipping_service *s, const config *c, const char *tenant_id, err *e)
{
    const char *pub = config_get(c, "SENDCLOUD_PUBLIC_KEY");
    const char *sec = config_get(c, "SENDCLOUD_SECRET_KEY");
    if (!pub || !*pub || !sec || !*sec)
        return 0;
    if (!tenant_id || !*tenant_id || strlen(tenant_id) > SHIPPING_TENANT_MAX)
        return err_set(e, F3_EINVAL,
                       "shipping: the default tenant is required to connect "
                       "SENDCLOUD_PUBLIC_KEY");
    const char *version = config_get(c, "SENDCLOUD_API_VERSION");
    shipping_conn conn = {.connected = true,
                          .public_key = (char *)pub,
                          .secret_key = (char *)sec,
                          .webhook_secret = (char *)config_get(c, "SENDCLOUD_WEBHOOK_SECRET"),
                          .sender_address_id = config_get_int(c, "SENDCLOUD_SENDER_ADDRESS_ID"),
                          .shipping_option_code =
                              (char *)config_get(c, "SENDCLOUD_SHIPPING_OPTION_CODE"),
                          .shipping_method_id = config_get_int(c, "SENDCLOUD_SHIPPING_METHOD_ID")};
    snprintf(conn.tenant_id, sizeof conn.tenant_id, "%s", tenant_id);
    snprintf(conn.api_version, sizeof conn.api_version, "%s", version ? version : "v3");
    bootstrap_ctx b = {.s = s, .conn = &conn};
    db_conn *dc = db_acquire(s->db, e);
    int rc = dc ? db_tx(dc, bootstrap_tx, &b, e) : db_err_code(e);
    db_release(dc);
    if (rc == 0 && b.kept)
        log_info("Sendcloud connection kept: the tenant has one, SENDCLOUD_* settings not "
                 "applied (change it through the API)",
                 "tenantId", tenant_id, "settingsDiffer", b.differs ? "true" : "false");
    else if (rc == 0)
        log_info("Sendcloud connection seeded from SENDCLOUD_* settings", "tenantId", tenant_id,
                 "apiVersion", conn.api_version);
    return rc;
}

static int add_queues(shipping_service *s, const config *c, err *e)
{
    bus_worker *w = bus_worker_of(s->bus);
    bus_queue_opts jobs = {.concurrency = BUS_DEFAULT_CONCURRENCY};
    /* Bus default lease (30 s), renewed every lease/3 while the run goes on (bus/worker.c):
     * a long run keeps its job, a killed process's run is taken over within 30 s. */
    bus_queue_opts reconcile = {.concurrency = 1};
    int rc =
        bus_subscribe(s->bus, BUS_EV_ORDER_READY_FOR_FULFILLMENT, shipping_on_ready, s, NULL, e);
    rc = rc ? rc : bus_subscribe(s->bus, BUS_EV_ORDER_CANCELLED, shipping_on_cancelled, s, NULL, e);
    rc = rc ? rc : bus_worker_register(w, SHIPPING_CREATE_QUEUE, shipping_create_job, s, &jobs, e);
    rc = rc ? rc : bus_worker_register(w, SHIPPING_CANCEL_QUEUE, shipping_cancel_job, s, &jobs, e);
    rc =
        rc ? rc : bus_worker_register(w, SHIPPING_WEBHOOK_QUEUE, shipping_webhook_job, s, &jobs, e);
    rc = rc ? rc
            : bus_worker_register(w, SHIPPING_RECONCILE_QUEUE, shipping_reconcile_job, s,
                                  &reconcile, e);
    if (rc)
        return rc;
    bus_repeatable rep = {.queue = SHIPPING_RECONCILE_QUEUE,
                          .repeat_id = SHIPPING_RECONCILE_REPEAT,
                          .name = "sendcloud.reconcile",
                          .data = "{}",
                          .every_ms = config_get_int(c, "SENDCLOUD_RECONCILE_INTERVAL")};
    return bus_store_repeatable_upsert(s->store, &rep, clock_now_ms(), e);
}

int shipping_service_start(shipping_service **out, const shipping_deps *deps, http_router *r,
                           err *e)
{
    *out = NULL;
    if (!deps || !deps->db || !deps->bus || !deps->store || !deps->config)
        return err_set(e, F3_EINVAL, "shipping: db, bus, store and config are required");
    if (bus_self(deps->bus) != BUS_SVC_SHIPPING)
        return err_set(e, F3_EINVAL, "shipping: the bus must be the shipping service's");
    shipping_service *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, F3_ENOMEM, "out of memory");
    const config *c = deps->config;
    s->db = deps->db;
    s->bus = deps->bus;
    s->store = deps->store;
    atomic_init(&s->stopping, false);
    const char *url = config_get(c, "SENDCLOUD_API_URL");
    s->api_url = str_dup(url ? url : SENDCLOUD_DEFAULT_API_URL);
    s->timeout_ms = (long)config_get_int(c, "SENDCLOUD_TIMEOUT");
    s->retry_base_ms = config_get_int(c, "SENDCLOUD_RETRY_BASE");
    s->max_attempts = (int)config_get_int(c, "SENDCLOUD_MAX_ATTEMPTS");
    s->default_weight_grams = config_get_int(c, "SHIPPING_DEFAULT_WEIGHT_GRAMS");
    if (s->retry_base_ms <= 0)
        s->retry_base_ms = 1000;
    if (s->max_attempts <= 0)
        s->max_attempts = 8;
    if (s->default_weight_grams <= 0)
        s->default_weight_grams = 500;
    int rc = s->api_url ? 0 : err_set(e, F3_ENOMEM, "out of memory");
    rc = rc ? rc : secret_key_load(c, s->key, e);
    rc = rc ? rc : bootstrap(s, c, deps->tenant_id, e);
    rc = rc || !r ? rc : shipping_api_add_routes(s, r, e);
    rc = rc ? rc : add_queues(s, c, e);
    if (rc) {
        shipping_service_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void shipping_service_stop(shipping_service *s)
{
    if (s)
        atomic_store(&s->stopping, true);
}

void shipping_service_free(shipping_service *s)
{
    if (!s)
        return;
    crypto_wipe(s->key, sizeof s->key);
    free(s->api_url);
    free(s);
}
