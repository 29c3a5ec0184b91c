/*
 * print_internal.h - the state shared by the files of the print service (service.c,
 * connection.c, submit.c, intake.c, api.c) and their handlers. Nothing outside
 * src/services/print includes it.
 */
#ifndef F3_PRINT_INTERNAL_H
#define F3_PRINT_INTERNAL_H

#include "core/crypto.h"
#include "http/request.h"
#include "http/response.h"
#include "services/print/service.h"

#include <pthread.h>
#include <stdatomic.h>

#define PRINT_TENANT_MAX 64

/* A provider client made from one stored version (updated_at) of a tenant's connection. */
typedef struct print_cached_client {
    char tenant_id[PRINT_TENANT_MAX + 1];
    int64_t version;
    void *client;
} print_cached_client;

struct print_service {
    db *db;
    bus *bus;
    bus_store *store;
    const print_provider *provider;
    uint8_t key[CRYPTO_KEY_LEN];
    atomic_bool stopping;
    char *order_field_id; /* SIMPLYPRINT_ORDER_FIELD_ID; NULL = none */
    pthread_mutex_t lock; /* guards the cache and the retired clients */
    print_cached_client *cache;
    size_t ncache, capcache;
    /* Clients replaced by a newer version: another thread may still be using one, and they
     * are immutable, so they are freed only with the service (credentials change rarely). */
    void **retired;
    size_t nretired, capretired;
};

/* ---- connection.c ---------------------------------------------------------------------- */

/* Connects tenant_id from SIMPLYPRINT_* settings when they are set and differ from what is
 * stored. */
int print_conn_bootstrap(print_service *s, const config *c, const char *tenant_id, err *e);

/* The webhook secret of tenant_id's connected account into out (129 bytes; wiped by the
 * caller). F3_ENOTFOUND when not connected or without a secret. */
int print_conn_webhook_secret(print_service *s, const char *tenant_id, char out[129], err *e);

/* The only connected tenant into out; F3_ENOTFOUND when none, F3_ECONFLICT when several. */
int print_conn_only_tenant(print_service *s, char out[PRINT_TENANT_MAX + 1], err *e);

/* Every connected tenant. Caller frees with print_conn_tenants_free. */
int print_conn_tenants(print_service *s, char ***ids, size_t *n, err *e);
void print_conn_tenants_free(char **ids, size_t n);

/* Frees every cached and retired client. */
void print_conn_cache_free(print_service *s);

int print_h_integration_put(http_request *req, http_response *res, void *ctx);
int print_h_integration_get(http_request *req, http_response *res, void *ctx);
int print_h_integration_delete(http_request *req, http_response *res, void *ctx);

/* ---- submit.c --------------------------------------------------------------------------- */

int print_order_created_job(bus_delivery *dl, void *ctx, err *e);
int print_order_cancelled_job(bus_delivery *dl, void *ctx, err *e);

/* Who submits, which decides what a transient failure does. */
typedef enum print_submit_mode {
    PRINT_SUBMIT_FIRST, /* an event, an API call: adds a PRINT_JOB_CREATION entry */
    PRINT_SUBMIT_RETRY, /* that entry's handler: adds none (the entry is retried) */
    PRINT_SUBMIT_SWEEP, /* reconciliation: skips orders with a PENDING, PROCESSING or
                           FAILED entry; adds one like a first try */
} print_submit_mode;

/* print_service_submit_pending in a given mode. */
int print_submit_pending_as(print_service *s, const char *tenant_id, const char *order_id,
                            print_submit_mode mode, print_run_counts *out, err *e);

/* ---- retries.c -------------------------------------------------------------------------- */

/* Registers the PRINT_JOB_CREATION and CANCELLATION handlers on rq. */
int print_retry_register(print_service *s, retry_queue *rq, err *e);

/* Adds, in tx, the CANCELLATION entry {printJobId, queueItemId} of a cancelled job whose
 * SimplyPrint queue item could not be removed. */
int print_enqueue_removal(db_conn *tx, const char *tenant_id, const char *job_id,
                          int64_t queue_item_id, err *e);

/* ---- intake.c --------------------------------------------------------------------------- */

int print_h_webhook(http_request *req, http_response *res, void *ctx);
int print_webhook_job(bus_delivery *dl, void *ctx, err *e);
int print_reconcile_job(bus_delivery *dl, void *ctx, err *e);

/* ---- api.c ------------------------------------------------------------------------------ */

int print_h_jobs_list(http_request *req, http_response *res, void *ctx);
int print_h_job_get(http_request *req, http_response *res, void *ctx);
int print_h_job_retry(http_request *req, http_response *res, void *ctx);
int print_h_job_cancel(http_request *req, http_response *res, void *ctx);
int print_h_internal_create(http_request *req, http_response *res, void *ctx);
int print_h_internal_delete(http_request *req, http_response *res, void *ctx);

/* The JSON view of a job (API answers). New reference; NULL when out of memory. */
json_t *print_job_json(const print_job_row *r);

/* Runs fn in a transaction on a connection of s->db. */
int print_in_tx(print_service *s, db_tx_fn fn, void *ctx, err *e);

#endif
