/*
 * provider.h - the SimplyPrint calls the print service makes, as a table of functions.
 *
 * The service never calls the client directly: it is handed a print_provider at start.
 * print_provider_simplyprint (provider_sp.c) forwards to integrations/simplyprint/client.h;
 * tests hand in their own table to make a call fail transiently or permanently on demand.
 * A provider client is opaque, immutable after creation and thread-safe.
 */
#ifndef F3_PRINT_PROVIDER_H
#define F3_PRINT_PROVIDER_H

#include "core/err.h"
#include "integrations/simplyprint/client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct print_provider {
    /* A client for the options (copied); NULL with e set. Freed with client_free. */
    void *(*client_new)(const sp_client_opts *o, err *e);
    void (*client_free)(void *client);
    /* Same contracts as the sp_* functions of the same names. */
    int (*account_test)(void *client, sp_call *call, err *e);
    int (*queue_add_item)(void *client, const sp_queue_add *rq, int64_t *created_id, sp_call *call,
                          err *e);
    int (*queue_get_item)(void *client, int64_t id, sp_queue_item *out, sp_call *call, err *e);
    int (*queue_delete_item)(void *client, int64_t id, sp_call *call, err *e);
    int (*jobs_list)(void *client, const sp_jobs_query *q, sp_job **out, size_t *n,
                     int *page_amount, sp_call *call, err *e);
    int (*job_get)(void *client, const char *uid, sp_job *out, sp_call *call, err *e);
    /* The queue items, waiting and (include_done) done; may be NULL (a test provider
     * without a queue listing): then an interrupted submission is only adopted from
     * reports. */
    int (*queue_list)(void *client, bool include_done, sp_queue_item **out, size_t *n,
                      sp_call *call, err *e);
} print_provider;

/* The real SimplyPrint API (integrations/simplyprint/client.h). */
extern const print_provider print_provider_simplyprint;

#endif
