/*
 * intake_internal.h - the state shared by intake.c (wiring, backfill, reconciliation) and
 * webhooks.c (the webhook route and its queue handler). Only those two include it.
 */
#ifndef F3_ORDERS_INTAKE_INTERNAL_H
#define F3_ORDERS_INTAKE_INTERNAL_H

#include "core/crypto.h"
#include "http/request.h"
#include "http/response.h"
#include "services/orders/connections.h"
#include "services/orders/intake.h"

#include <stdatomic.h>

struct orders_intake {
    db *db;
    bus *bus;
    bus_store *store;
    uint8_t key[CRYPTO_KEY_LEN];
    char tenant_id[SHOP_TENANT_ID_MAX + 1];
    int page_limit;
    atomic_bool stopping;
};

/* POST /api/v1/webhooks/shopify[/<topic>]. */
int orders_webhook_route(http_request *req, http_response *res, void *ctx);

/* The job handler of ORDERS_WEBHOOK_QUEUE. */
int orders_webhook_job(bus_delivery *dl, void *ctx, err *e);

#endif
