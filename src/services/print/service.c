/*
 * service.c - wiring of the print service (see service.h): the key and the configured
 * connection, routes, subscriptions, queues, the reconciliation repeatable and the retry
 * handlers.
 */
#include "services/print/print_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/secret_key.h"
#include "core/str.h"
#include "services/access/permissions.h"

#include <stdlib.h>
#include <string.h>

static int add_routes(print_service *s, http_router *r, err *e)
{
    const http_route routes[] = {
        {"PUT", "/api/v1/integrations/simplyprint", print_h_integration_put, s,
         PERM_INTEGRATIONS_MANAGE},
        {"GET", "/api/v1/integrations/simplyprint", print_h_integration_get, s,
         PERM_INTEGRATIONS_MANAGE},
        {"DELETE", "/api/v1/integrations/simplyprint", print_h_integration_delete, s,
         PERM_INTEGRATIONS_MANAGE},
        {"POST", "/api/v1/webhooks/simplyprint", print_h_webhook, s, HTTP_ACCESS_WEBHOOK},
        {"GET", "/api/v1/print-jobs", print_h_jobs_list, s, PERM_PRINT_JOBS_READ},
        {"GET", "/api/v1/print-jobs/:id", print_h_job_get, s, PERM_PRINT_JOBS_READ},
        {"POST", "/api/v1/print-jobs/:id/retry", print_h_job_retry, s, PERM_PRINT_JOBS_WRITE},
        {"POST", "/api/v1/print-jobs/:id/cancel", print_h_job_cancel, s, PERM_PRINT_JOBS_WRITE},
        {"POST", "/internal/print-jobs", print_h_internal_create, s, HTTP_ACCESS_INTERNAL},
        {"DELETE", "/internal/print-jobs/:id", print_h_internal_delete, s, HTTP_ACCESS_INTERNAL},
    };
    return http_router_add(r, routes, sizeof routes / sizeof routes[0], e);
}

static int add_queues(print_service *s, const print_service_deps *deps, err *e)
{
    bus_worker *w = bus_worker_of(deps->bus);
    bus_queue_opts webhook = {.concurrency = BUS_DEFAULT_CONCURRENCY};
    /* The reconciliation run and order.created (which submits every job of the order to
     * SimplyPrint) may take long, but the bus renews their leases every lease/3 while they
     * run (bus/worker.c): the default lease (30 s) is only how long a killed process's job
     * waits before another worker takes it. */
    bus_queue_opts reconcile = {.concurrency = 1};
    int rc = bus_subscribe(deps->bus, BUS_EV_ORDER_CREATED, print_order_created_job, s, NULL, e);
    rc = rc ? rc
            : bus_subscribe(deps->bus, BUS_EV_ORDER_CANCELLED, print_order_cancelled_job, s, NULL,
                            e);
    rc = rc ? rc : bus_worker_register(w, PRINT_WEBHOOK_QUEUE, print_webhook_job, s, &webhook, e);
    rc = rc ? rc
            : bus_worker_register(w, PRINT_RECONCILE_QUEUE, print_reconcile_job, s, &reconcile, e);
    if (rc)
        return rc;
    bus_repeatable rep = {.queue = PRINT_RECONCILE_QUEUE,
                          .repeat_id = PRINT_RECONCILE_REPEAT_ID,
                          .name = PRINT_RECONCILE_JOB,
                          .data = "{}",
                          .every_ms =
                              config_get_int(deps->config, "SIMPLYPRINT_RECONCILE_INTERVAL")};
    return bus_store_repeatable_upsert(deps->store, &rep, clock_now_ms(), e);
}

int print_service_start(print_service **out, const print_service_deps *deps, http_router *r, err *e)
{
    *out = NULL;
    if (!deps || !deps->db || !deps->bus || !deps->store || !deps->config || !deps->provider)
        return err_set(e, F3_EINVAL,
                       "print service: db, bus, store, config and provider are "
                       "required");
    if (bus_self(deps->bus) != BUS_SVC_PRINT)
        return err_set(e, F3_EINVAL, "print service: the bus must be the print service's");
    print_service *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, F3_ENOMEM, "out of memory");
    s->db = deps->db;
    s->bus = deps->bus;
    s->store = deps->store;
    s->provider = deps->provider;
    atomic_init(&s->stopping, false);
    pthread_mutex_init(&s->lock, NULL);
    const char *field = config_get(deps->config, "SIMPLYPRINT_ORDER_FIELD_ID");
    int rc =
        field && !(s->order_field_id = str_dup(field)) ? err_set(e, F3_ENOMEM, "out of memory") : 0;
    rc = rc ? rc : secret_key_load(deps->config, s->key, e);
    rc = rc ? rc : print_conn_bootstrap(s, deps->config, deps->tenant_id, e);
    if (rc == 0 && r)
        rc = add_routes(s, r, e);
    if (rc == 0 && !deps->no_queues)
        rc = add_queues(s, deps, e);
    if (rc == 0 && deps->retry)
        rc = print_retry_register(s, deps->retry, e);
    if (rc) {
        print_service_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void print_service_stop(print_service *s)
{
    if (s)
        atomic_store(&s->stopping, true);
}

void print_service_free(print_service *s)
{
    if (!s)
        return;
    print_conn_cache_free(s);
    pthread_mutex_destroy(&s->lock);
    crypto_wipe(s->key, sizeof s->key);
    free(s->order_field_id);
    free(s);
}
