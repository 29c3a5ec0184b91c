/*
 * intake.c - wiring of the orders service's Shopify intake (see intake.h): the key and
 * the configured connection, routes, queues, the backfill route and reconciliation.
 */
#include "services/orders/intake_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "services/access/permissions.h"
#include "services/access/user_context.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *orders_intake_tenant(const orders_intake *in)
{
    return in->tenant_id;
}

int orders_intake_backfill(orders_intake *in, const char *tenant_id, int64_t since_ms,
                           orders_backfill_progress progress, void *progress_ctx,
                           orders_backfill_counts *out, err *e)
{
    memset(out, 0, sizeof *out);
    if (atomic_load(&in->stopping))
        return err_set(e, F3_EBUSY, "the orders service is stopping");
    shop_conn conn;
    int rc = shop_conn_of_tenant(in->db, in->key, tenant_id, &conn, e);
    if (rc == F3_ENOTFOUND)
        return err_set(e, F3_ENOTFOUND, "no connected Shopify shop for this tenant");
    if (rc)
        return rc;
    shopify_client *c = shop_conn_client(&conn, e);
    if (!c)
        rc = err_set(e, F3_ENOTFOUND, "the Shopify connection of %s has no usable access token",
                     conn.shop_domain);
    else
        rc = orders_backfill(in->db, in->bus, c, tenant_id, since_ms, in->page_limit, progress,
                             progress_ctx, out, e);
    if (rc == 0) {
        char counts[160];
        snprintf(counts, sizeof counts, "fetched=%lld created=%lld updated=%lld unchanged=%lld",
                 (long long)out->fetched, (long long)out->created, (long long)out->updated,
                 (long long)out->unchanged);
        log_info("Shopify backfill finished", "shop", conn.shop_domain, "counts", counts);
    }
    shopify_client_free(c);
    shop_conn_clear(&conn);
    return rc;
}

/* ---- POST /api/v1/orders/backfill ------------------------------------------------------ */

static int backfill_status(int rc)
{
    switch (rc) {
    case F3_ENOTFOUND:
        return 409;
    case F3_EBUSY:
        return 503;
    case F3_ETRANSIENT:
    case F3_EPERMANENT:
        return 502;
    default:
        return 500;
    }
}

static int h_backfill(http_request *req, http_response *res, void *ctx)
{
    orders_intake *in = ctx;
    json_t *body = NULL;
    int rc = http_req_json(req, &body, res);
    if (rc)
        return rc == F3_EINVAL ? 0 : rc;
    const char *since = json_string_value(json_object_get(body, "since"));
    int64_t since_ms = 0;
    if (!json_is_object(body) || !since)
        rc = http_res_error(res, 400, "Field 'since' (an ISO-8601 date) is required");
    else if (clock_parse_iso(since, &since_ms) != 0)
        rc = http_res_error(res, 400, "Field 'since' is not an ISO-8601 date: %.40s", since);
    else if (since_ms > clock_now_ms())
        rc = http_res_error(res, 400, "Field 'since' is in the future");
    json_decref(body);
    if (rc || http_res_status(res) != 0)
        return rc;
    const user_ctx *u = user_ctx_of(req);
    const char *tenant = u && u->tenant_id[0] ? u->tenant_id : in->tenant_id;
    orders_backfill_counts n;
    err e;
    err_clear(&e);
    rc = orders_intake_backfill(in, tenant, since_ms, NULL, NULL, &n, &e);
    if (rc) {
        log_warn("backfill failed", "reason", e.msg);
        int status = backfill_status(rc);
        return status == 500 ? rc : http_res_error(res, status, "Backfill failed: %s", e.msg);
    }
    return http_res_json(res, 200,
                         json_pack("{s:I,s:I,s:I,s:I,s:I}", "fetched", (json_int_t)n.fetched,
                                   "created", (json_int_t)n.created, "updated",
                                   (json_int_t)n.updated, "unchanged", (json_int_t)n.unchanged,
                                   "invalid", (json_int_t)n.invalid));
}

/* ---- reconciliation ------------------------------------------------------------------- */

static int reconcile_shop(orders_intake *in, const char *domain, int64_t now, err *e)
{
    db_conn *c = db_acquire(in->db, e);
    if (!c)
        return db_err_code(e);
    shop_conn conn;
    int rc = shop_conn_find(c, in->key, domain, &conn, e);
    db_release(c);
    if (rc)
        return rc == F3_ENOTFOUND ? 0 : rc;
    int64_t since = conn.last_reconciled_at > 0
                        ? conn.last_reconciled_at - ORDERS_RECONCILE_MARGIN_MS
                        : now - ORDERS_RECONCILE_MARGIN_MS;
    if (since < now - ORDERS_RECONCILE_MAX_MS)
        since = now - ORDERS_RECONCILE_MAX_MS;
    shopify_client *client = conn.access_token ? shop_conn_client(&conn, e) : NULL;
    orders_backfill_counts n;
    if (client)
        rc = orders_backfill(in->db, in->bus, client, conn.tenant_id, since, in->page_limit, NULL,
                             NULL, &n, e);
    if (client && rc == 0) {
        rc = shop_conn_mark_reconciled(in->db, domain, now, e);
        char created[24], updated[24];
        snprintf(created, sizeof created, "%lld", (long long)n.created);
        snprintf(updated, sizeof updated, "%lld", (long long)n.updated);
        log_info("Shopify reconciliation finished", "shop", domain, "created", created, "updated",
                 updated);
    }
    shopify_client_free(client);
    shop_conn_clear(&conn);
    return rc;
}

static int reconcile_job(bus_delivery *dl, void *ctx, err *e)
{
    (void)dl;
    orders_intake *in = ctx;
    int64_t now = clock_now_ms();
    char **domains = NULL;
    size_t n = 0;
    int rc = shop_conn_connected_domains(in->db, &domains, &n, e);
    for (size_t i = 0; rc == 0 && i < n && !atomic_load(&in->stopping); i++)
        rc = reconcile_shop(in, domains[i], now, e);
    shop_domains_free(domains, n);
    return rc;
}

/* ---- wiring --------------------------------------------------------------------------- */

static int add_routes(orders_intake *in, http_router *r, err *e)
{
    const http_route routes[] = {
        {"POST", "/api/v1/webhooks/shopify", orders_webhook_route, in, HTTP_ACCESS_WEBHOOK},
        {"POST", "/api/v1/webhooks/shopify/*", orders_webhook_route, in, HTTP_ACCESS_WEBHOOK},
        {"POST", "/api/v1/orders/backfill", h_backfill, in, PERM_ORDERS_WRITE},
    };
    return http_router_add(r, routes, sizeof routes / sizeof routes[0], e);
}

static int add_queues(orders_intake *in, const config *c, err *e)
{
    bus_worker *w = bus_worker_of(in->bus);
    bus_queue_opts webhook = {.concurrency = BUS_DEFAULT_CONCURRENCY};
    /* Bus default lease (30 s), renewed every lease/3 while the run goes on (bus/worker.c):
     * a long run keeps its job, a killed process's run is taken over within 30 s. */
    bus_queue_opts reconcile = {.concurrency = 1};
    int rc = bus_worker_register(w, ORDERS_WEBHOOK_QUEUE, orders_webhook_job, in, &webhook, e);
    rc = rc ? rc : bus_worker_register(w, ORDERS_RECONCILE_QUEUE, reconcile_job, in, &reconcile, e);
    if (rc)
        return rc;
    bus_repeatable rep = {.queue = ORDERS_RECONCILE_QUEUE,
                          .repeat_id = ORDERS_RECONCILE_REPEAT_ID,
                          .name = ORDERS_RECONCILE_JOB,
                          .data = "{}",
                          .every_ms = config_get_int(c, "SHOPIFY_RECONCILE_INTERVAL")};
    return bus_store_repeatable_upsert(in->store, &rep, clock_now_ms(), e);
}

int orders_intake_start(orders_intake **out, const orders_intake_deps *deps, http_router *r, err *e)
{
    *out = NULL;
    if (!deps || !deps->db || !deps->bus || !deps->store || !deps->config)
        return err_set(e, F3_EINVAL, "orders intake: db, bus, store and config are required");
    if (bus_self(deps->bus) != BUS_SVC_ORDER)
        return err_set(e, F3_EINVAL, "orders intake: the bus must be the orders service's");
    orders_intake *in = calloc(1, sizeof *in);
    if (!in)
        return err_set(e, F3_ENOMEM, "out of memory");
    in->db = deps->db;
    in->bus = deps->bus;
    in->store = deps->store;
    in->page_limit = deps->backfill_page_limit;
    atomic_init(&in->stopping, false);
    bool configured = false;
    int rc = secret_key_load(deps->config, in->key, e);
    if (rc == 0 && deps->tenant_id)
        snprintf(in->tenant_id, sizeof in->tenant_id, "%s", deps->tenant_id);
    else if (rc == 0)
        rc = shop_default_tenant(deps->db, in->tenant_id, e);
    rc = rc ? rc
            : shop_conn_bootstrap(deps->db, in->key, deps->config, in->tenant_id, &configured, e);
    if (rc == 0 && r)
        rc = add_routes(in, r, e);
    if (rc == 0 && !deps->import_only)
        rc = add_queues(in, deps->config, e);
    if (rc) {
        orders_intake_free(in);
        return rc;
    }
    if (!configured)
        log_info("no Shopify shop configured (SHOPIFY_SHOP_DOMAIN, SHOPIFY_API_SECRET): "
                 "webhooks are accepted only from shops connected earlier");
    *out = in;
    return 0;
}

void orders_intake_stop(orders_intake *in)
{
    if (in)
        atomic_store(&in->stopping, true);
}

void orders_intake_free(orders_intake *in)
{
    if (!in)
        return;
    crypto_wipe(in->key, sizeof in->key);
    free(in);
}
