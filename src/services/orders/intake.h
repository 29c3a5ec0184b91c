/*
 * intake.h - the orders service's Shopify intake, wired in one call: the webhook routes,
 * the queue that does the webhook work, the backfill route and the periodic
 * reconciliation job.
 *
 * Routes (added to the caller's router):
 *   POST /api/v1/webhooks/shopify          public; topic from X-Shopify-Topic
 *   POST /api/v1/webhooks/shopify/<topic>  public; e.g. .../shopify/orders/create
 *   POST /api/v1/orders/backfill           permission orders.write; {"since": ISO date}
 * A delivery is checked (signature first, in constant time, with the secret of the shop
 * it names), deduplicated by its delivery id within its topic and stored with a job on
 * ORDERS_WEBHOOK_QUEUE in one transaction, and answered 200 at once; the job does the
 * work (ingest.h). Queues are registered on bus_worker_of(deps->bus): call
 * orders_intake_start before bus_start.
 */
#ifndef F3_ORDERS_INTAKE_H
#define F3_ORDERS_INTAKE_H

#include "bus/bus.h"
#include "core/config.h"
#include "core/err.h"
#include "db/db.h"
#include "http/router.h"
#include "services/orders/backfill.h"

#include <stdbool.h>
#include <stdint.h>

#define ORDERS_WEBHOOK_QUEUE       "shopify.webhook@order-service"
#define ORDERS_RECONCILE_QUEUE     "shopify.reconcile@order-service"
#define ORDERS_RECONCILE_REPEAT_ID "shopify-reconcile"
#define ORDERS_RECONCILE_JOB       "shopify.reconcile"
/* A reconciliation run looks back to its previous successful run minus this margin, but
 * never further than ORDERS_RECONCILE_MAX_MS. */
#define ORDERS_RECONCILE_MARGIN_MS (15 * 60 * 1000LL)
#define ORDERS_RECONCILE_MAX_MS    (7 * 24 * 3600 * 1000LL)

typedef struct orders_intake orders_intake;

typedef struct orders_intake_deps {
    db *db;               /* borrowed; must outlive the intake */
    bus *bus;             /* a bus of the orders service (BUS_SVC_ORDER), not started yet */
    bus_store *store;     /* the store under that bus */
    const config *config; /* read at start only */
    /* The tenant the configured shop (SHOPIFY_SHOP_DOMAIN ...) belongs to; NULL = the
     * default tenant (slug "default", else the oldest, created if there is none). */
    const char *tenant_id;
    /* Orders per page of backfill and reconciliation; 0 = 250 (tests use small pages). */
    int backfill_page_limit;
    /* Only for one-off imports (the CLI): no queues, no repeatable job; r may be NULL. */
    bool import_only;
} orders_intake_deps;

/*
 * Loads the sealing key (secret_key_load), bootstraps the configured shop connection,
 * adds the routes to r (when not NULL), registers the webhook and reconciliation
 * queues and declares the reconciliation repeatable (every SHOPIFY_RECONCILE_INTERVAL).
 * 0 with *out set (caller frees with orders_intake_free, after the HTTP server and the
 * bus are stopped: routes and handlers use it until then), or an error with e set.
 */
int orders_intake_start(orders_intake **out, const orders_intake_deps *deps, http_router *r,
                        err *e);

/* Refuses new imports and stops a reconciliation run between shops. */
void orders_intake_stop(orders_intake *in);

/* Frees the intake (and wipes the key). NULL is ignored. */
void orders_intake_free(orders_intake *in);

/* The tenant of the configured shop (deps.tenant_id or the default tenant). Borrowed. */
const char *orders_intake_tenant(const orders_intake *in);

/* Imports the orders of tenant_id's connected shop updated since since_ms (backfill.h).
 * F3_ENOTFOUND when the tenant has no connected shop with an access token; F3_EBUSY after
 * orders_intake_stop. */
int orders_intake_backfill(orders_intake *in, const char *tenant_id, int64_t since_ms,
                           orders_backfill_progress progress, void *progress_ctx,
                           orders_backfill_counts *out, err *e);

#endif
