/*
 * shipping_internal.h - what the files of the shipping service share: the service
 * state, the Sendcloud connection of a tenant, the shipment row, and the steps the job
 * handlers and routes are made of. Nothing outside src/services/shipping includes it.
 */
#ifndef F3_SHIPPING_INTERNAL_H
#define F3_SHIPPING_INTERNAL_H

#include "core/crypto.h"
#include "core/uuid.h"
#include "integrations/sendcloud/client.h"
#include "services/common/eventlog.h"
#include "services/common/notify.h"
#include "services/shipping/shipping.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SHIPPING_TENANT_MAX 64

struct shipping_service {
    db *db;
    bus *bus;
    bus_store *store;
    uint8_t key[CRYPTO_KEY_LEN];
    char *api_url; /* SENDCLOUD_API_URL */
    long timeout_ms;
    int64_t retry_base_ms;
    int max_attempts;
    int64_t default_weight_grams;
    atomic_bool stopping;
};

/* ---- connections (connection.c) ----------------------------------------------------- */

/* A tenant's Sendcloud connection, keys opened. Clear with shipping_conn_clear (wipes). */
typedef struct shipping_conn {
    char tenant_id[SHIPPING_TENANT_MAX + 1];
    bool connected;
    char *public_key, *secret_key, *webhook_secret; /* NULL when not stored */
    char api_version[4];                            /* "v3" / "v2" */
    char *api_url;                                  /* NULL = the service's */
    int64_t sender_address_id;                      /* 0 = none */
    char *shipping_option_code;                     /* NULL = none */
    int64_t shipping_method_id;                     /* 0 = none */
    int64_t updated_at;
} shipping_conn;

void shipping_conn_clear(shipping_conn *c);

/* Reads tenant_id's connection on c. F3_ENOTFOUND when there is none; F3_EINVAL when a
 * sealed key does not open. */
int shipping_conn_load(shipping_service *s, db_conn *c, const char *tenant_id, shipping_conn *out,
                       err *e);

/* Creates or replaces tenant_id's connection (connected, keys sealed) inside tx.
 * *was_connected (may be NULL) says whether it was connected before. */
int shipping_conn_save(shipping_service *s, db_conn *tx, const shipping_conn *in,
                       bool *was_connected, err *e);

/* Marks tenant_id's connection disconnected and forgets its keys, inside tx. *changed
 * says whether it was connected. */
int shipping_conn_disconnect(db_conn *tx, const char *tenant_id, bool *changed, err *e);

/* The tenants with a connected connection. Caller frees with shipping_tenants_free. */
int shipping_conn_tenants(db_conn *c, char ***tenants, size_t *n, err *e);
void shipping_tenants_free(char **tenants, size_t n);

/* A client for the connection; version (may be NULL) overrides its API version (a shipment
 * is read and cancelled with the version it was made with). Caller frees. NULL with e set. */
sendcloud_client *shipping_conn_client(shipping_service *s, const shipping_conn *conn,
                                       const char *version, err *e);

/* ---- shipments (shipments.c) -------------------------------------------------------- */

/* Records the PENDING shipment of an order and queues its creation, inside tx, when the
 * tenant has a connected Sendcloud account and the order has no shipment yet.
 * *created (may be NULL) says whether this call made it; *shipment_id (may be NULL,
 * UUID_STR_LEN bytes) receives the shipment's id ("" when none). */
int shipping_request(shipping_service *s, db_conn *tx, const char *tenant_id, const char *order_id,
                     bool *created, char *shipment_id, err *e);

/* Queues the cancellation of an order's shipment inside tx (a PENDING one without a
 * provider shipment is cancelled at once). *found says whether the order has a shipment. */
int shipping_request_cancel(shipping_service *s, db_conn *tx, const char *tenant_id,
                            const char *order_id, bool *found, err *e);

/* One status report of Sendcloud for a shipment (webhook or poll). */
typedef struct shipping_status_report {
    const char *status;                                   /* our status name */
    const char *status_message;                           /* Sendcloud's text, may be NULL */
    const char *tracking_number, *tracking_url, *carrier; /* may be NULL */
    int64_t at_ms;                                        /* Sendcloud's timestamp */
    const char *source;                                   /* "webhook" / "reconciliation" */
} shipping_status_report;

/* Applies a report to shipment_id inside tx: stale reports (older than the last applied
 * one) and unchanged statuses change nothing; a new status updates the row, appends to
 * the event log and publishes shipment.status-changed. *changed (may be NULL) says
 * whether the status changed. F3_ENOTFOUND for an unknown shipment. */
int shipping_apply_status(shipping_service *s, db_conn *tx, const char *tenant_id,
                          const char *shipment_id, const shipping_status_report *r, bool *changed,
                          err *e);

/* Adds a job to queue inside tx, with a fixed id, run no earlier than delay_ms from now. */
int shipping_enqueue(shipping_service *s, db_conn *tx, const char *queue, const char *job_id,
                     const json_t *data, int64_t delay_ms, err *e);

/* Job handlers. */
int shipping_create_job(bus_delivery *dl, void *ctx, err *e);
int shipping_cancel_job(bus_delivery *dl, void *ctx, err *e);
int shipping_on_ready(bus_delivery *dl, void *ctx, err *e);
int shipping_on_cancelled(bus_delivery *dl, void *ctx, err *e);

/* ---- webhooks and reconciliation (webhook.c, reconcile.c) --------------------------- */

int shipping_webhook_route(http_request *req, http_response *res, void *ctx);
int shipping_webhook_job(bus_delivery *dl, void *ctx, err *e);
int shipping_reconcile_job(bus_delivery *dl, void *ctx, err *e);

/* ---- HTTP API (api.c) ---------------------------------------------------------------- */

int shipping_api_add_routes(shipping_service *s, http_router *r, err *e);

/* ---- operator alerts (alert.c) ------------------------------------------------------ */

/* Raises an operator alert of `kind` for tenant_id inside tx (notify_alert: an
 * operator.alert event-log entry and an e-mail queued). order_id and metadata may be NULL. */
int shipping_alert(db_conn *tx, const char *tenant_id, const char *order_id, notify_kind kind,
                   const char *message, const json_t *metadata, err *e);

#endif
