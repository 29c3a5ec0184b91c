/*
 * backfill.h - importing the orders Shopify changed since a date, through the Admin API's
 * paginated order list, with the same upsert as webhooks (ingest.h): an order already
 * stored is updated or left alone, a new one is inserted and announced exactly once.
 *
 * Each order is stored in its own short transaction, after the page holding it was
 * fetched, so no transaction waits on the network. Used by `f3connect shopify backfill`,
 * POST /api/v1/orders/backfill and the periodic reconciliation job.
 */
#ifndef F3_ORDERS_BACKFILL_H
#define F3_ORDERS_BACKFILL_H

#include "bus/bus.h"
#include "core/err.h"
#include "db/db.h"
#include "integrations/shopify/client.h"

#include <stdint.h>

typedef struct orders_backfill_counts {
    int64_t fetched;   /* orders received from Shopify */
    int64_t created;   /* new here */
    int64_t updated;   /* stored, and changed by a newer revision */
    int64_t unchanged; /* stored and already up to date */
    int64_t invalid;   /* rejected by validation (logged, skipped) */
    int64_t pages;
} orders_backfill_counts;

/* Called after every page, e.g. to draw a progress line. */
typedef void (*orders_backfill_progress)(const orders_backfill_counts *c, void *ctx);

/* How many times a transient failure (429, 5xx, timeout) of one page is retried, waiting
 * as Shopify asks (Retry-After) or 1 s, 2 s, 4 s ... */
#define ORDERS_BACKFILL_PAGE_ATTEMPTS 5

/* Imports every order of the shop behind c updated at or after since_ms (epoch ms) into
 * tenant_id, publishing through b (a bus of the orders service), page_limit orders a
 * page (0 = SHOPIFY_PAGE_LIMIT_MAX). *out (zeroed first)
 * receives the counts, also after an error. progress may be NULL. 0, or the client's or
 * the database's error code with e set. */
int orders_backfill(db *d, bus *b, shopify_client *c, const char *tenant_id, int64_t since_ms,
                    int page_limit, orders_backfill_progress progress, void *progress_ctx,
                    orders_backfill_counts *out, err *e);

#endif
