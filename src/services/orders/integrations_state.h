/*
 * integrations_state.h - the orders service's view of which integrations each tenant has
 * connected (table tenant_integrations), fed by the integration.sendcloud-changed and
 * integration.simplyprint-changed events it subscribes to per the catalog.
 *
 * The orders service never reads another service's connection tables: it learns of a
 * connect or disconnect only from those events. An event older than the state stored
 * (by its envelope timestamp) changes nothing, so a redelivered or late event cannot
 * undo a newer change. A tenant never named by an event has nothing connected.
 */
#ifndef F3_ORDERS_INTEGRATIONS_STATE_H
#define F3_ORDERS_INTEGRATIONS_STATE_H

#include "bus/bus.h"
#include "core/err.h"
#include "db/db.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum orders_integration {
    ORDERS_INTEGRATION_SENDCLOUD,   /* shipping: labels and tracking come from a shipment */
    ORDERS_INTEGRATION_SIMPLYPRINT, /* printing */
    ORDERS_INTEGRATION_COUNT
} orders_integration;

/* "sendcloud", "simplyprint" (the stored provider names); "unknown" outside the enum. */
const char *orders_integration_name(orders_integration i);

/* Records that tenant_id's integration i was connected (true) or disconnected at
 * changed_at_ms, inside tx, unless a change at or after changed_at_ms is stored already.
 * *applied (may be NULL) says whether the row changed. 0 or a db error. */
int orders_integration_set(db_conn *tx, const char *tenant_id, orders_integration i, bool connected,
                           int64_t changed_at_ms, bool *applied, err *e);

/* Whether tenant_id has integration i connected. c may be inside a transaction.
 * 0 with *connected set, or a db error. */
int orders_integration_connected(db_conn *c, const char *tenant_id, orders_integration i,
                                 bool *connected, err *e);

/* Subscribes b (the orders service's bus, not started) to both integration events; their
 * handlers write through the delivery's transaction (exactly once per event). */
int orders_integrations_subscribe(bus *b, err *e);

#endif
