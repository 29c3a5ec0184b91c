/*
 * service.h - the print service (seed 000/001): SimplyPrint connection per tenant, print
 * jobs from order.created, their submission to the SimplyPrint queue, the status machine
 * fed by webhooks and by the reconciliation poller, order cancellation, and its HTTP API.
 *
 * Routes (added to the caller's router):
 *   PUT|GET|DELETE /api/v1/integrations/simplyprint   integrations.manage
 *   POST /api/v1/webhooks/simplyprint[?tenant=<id>]   public; X-SP-Secret / X-SP-Token
 *   GET  /api/v1/print-jobs[?status=&orderId=&limit=&cursor=]   printJobs.read
 *   GET  /api/v1/print-jobs/:id                                 printJobs.read
 *   POST /api/v1/print-jobs/:id/retry | /cancel                 printJobs.write
 *   POST   /internal/print-jobs?tenantId=   {orderId[, lineItemId]}   X-Internal-Key
 *   DELETE /internal/print-jobs/:id?tenantId=                         X-Internal-Key
 * Queues (on bus_worker_of(deps->bus); call print_service_start before bus_start):
 *   order.created@print-service, order.cancelled@print-service (subscriptions),
 *   simplyprint.webhook@print-service (stored deliveries),
 *   simplyprint.reconcile@print-service (repeatable, SIMPLYPRINT_RECONCILE_INTERVAL).
 *
 * Retries (services/common/retry.h, on deps->retry): a submission that fails transiently
 * leaves its job PENDING and adds, in the transaction that gives its lease back, one
 * PRINT_JOB_CREATION entry {orderId} per order (none when a PENDING one exists), whose
 * handler submits that order's PENDING jobs. A queue item whose removal failed when its job
 * was cancelled (the job is CANCELLED locally with the error kept) gets a CANCELLATION
 * entry {printJobId, queueItemId} in the cancelling transaction, whose handler removes it
 * again (gone already = done) and then clears the kept error. Exhausted entries raise
 * RETRY_EXHAUSTED and one operator alert (the retry queue does that).
 * The reconciliation sweep still submits PENDING jobs, but only of orders without a
 * PRINT_JOB_CREATION entry that is PENDING, PROCESSING or FAILED: it picks up what never
 * reached the retry queue (jobs that waited for a connection, a process that died between
 * creating and submitting) without running an entry's work twice or retrying an order
 * an operator was alerted about (a manual retry of its entry does that).
 *
 * SimplyPrint is called only outside database transactions; every change of a print job is
 * committed with its event-log entry and its events. Secrets are never logged.
 */
#ifndef F3_PRINT_SERVICE_H
#define F3_PRINT_SERVICE_H

#include "bus/bus.h"
#include "core/config.h"
#include "core/err.h"
#include "db/db.h"
#include "http/router.h"
#include "services/common/retry.h"
#include "services/print/jobs.h"
#include "services/print/provider.h"

#include <stdbool.h>
#include <stdint.h>

#define PRINT_WEBHOOK_QUEUE       "simplyprint.webhook@print-service"
#define PRINT_RECONCILE_QUEUE     "simplyprint.reconcile@print-service"
#define PRINT_RECONCILE_REPEAT_ID "simplyprint-reconcile"
#define PRINT_RECONCILE_JOB       "simplyprint.reconcile"
#define PRINT_WEBHOOK_PROVIDER    "simplyprint"
/* How long a submission holds a PENDING job before another worker may try it. Under the
 * lease run at most two SimplyPrint calls (the queue list of an interrupted job, then
 * queue/AddItem), each bounded by the HTTP client's 30 s default timeout (the SimplyPrint
 * client sets none of its own), then one short recording transaction: three calls' time
 * is a live submission's worst case with room for a slow database, and the wait of a job
 * whose submission was killed. The lease is cleared by whatever records the outcome, so a
 * lease left set marks a submission interrupted by a crash (or an AddItem that may have
 * created its item without saying so, whose lease is kept but expired); its job is
 * submitted again once the lease expired, and that submission adopts the queue item the
 * interrupted one created (submit.c). A SimplyPrint report about that item adopts it at
 * once, lease expired or not (intake.c). */
#define PRINT_SUBMIT_LEASE_MS (90 * 1000LL)

typedef struct print_service print_service;

typedef struct print_service_deps {
    db *db;                         /* borrowed; must outlive the service */
    bus *bus;                       /* the print service's bus (BUS_SVC_PRINT), not started */
    bus_store *store;               /* the store under that bus */
    const config *config;           /* read at start only */
    const print_provider *provider; /* required: print_provider_simplyprint or a test's */
    /* The tenant SIMPLYPRINT_* settings connect; NULL = no bootstrap from settings. */
    const char *tenant_id;
    /* The print service's retry queue (borrowed; must outlive the service, and be freed
     * before it): the PRINT_JOB_CREATION and CANCELLATION handlers are registered on it at
     * start; the caller then runs retry_schedule on deps->bus before bus_start. NULL in a
     * process that does not run those entries (they are still enqueued). */
    retry_queue *retry;
    /* No queues, no subscriptions, no repeatable (tests driving the functions below). */
    bool no_queues;
} print_service_deps;

/* Loads the sealing key, bootstraps the configured connection, adds the routes to r (when
 * not NULL) and registers the queues. 0 with *out set (caller frees with print_service_free
 * after the HTTP server and the bus are stopped), or an error with e set. */
int print_service_start(print_service **out, const print_service_deps *deps, http_router *r,
                        err *e);

/* Stops reconciliation and submission between jobs (shutdown). */
void print_service_stop(print_service *s);

/* Frees the service, its cached clients, and wipes the key. NULL is ignored. */
void print_service_free(print_service *s);

/* ---- connection ------------------------------------------------------------------------- */

typedef struct print_connect_rq {
    const char *company_id;     /* digits */
    const char *api_key;        /* required */
    const char *api_url;        /* NULL = the client's default */
    const char *webhook_secret; /* NULL = keep the stored one, or generate one */
    const char *user_id;        /* the operator, for the event log; may be NULL */
    bool skip_test;             /* bootstrap from settings: store without calling the API */
} print_connect_rq;

/* Checks the credentials with account/Test (unless skip_test) and stores them sealed for
 * tenant_id, publishing integration.simplyprint-changed {connected}. The webhook secret in
 * effect is copied to secret_out (65 bytes) when not NULL. F3_EINVAL for malformed fields,
 * F3_EPERMANENT when SimplyPrint refuses the key, F3_ETRANSIENT when it cannot be asked. */
int print_service_connect(print_service *s, const char *tenant_id, const print_connect_rq *rq,
                          char *secret_out, err *e);

/* Marks tenant_id's connection disconnected, publishing {disconnected}. F3_ENOTFOUND when
 * it has no connected account. */
int print_service_disconnect(print_service *s, const char *tenant_id, const char *user_id, err *e);

/* ---- jobs ------------------------------------------------------------------------------- */

typedef struct print_run_counts {
    print_jobs_created created;
    int submitted;     /* now QUEUED */
    int failed;        /* permanently refused: FAILED */
    int deferred;      /* still PENDING: transient errors, no connection, held by another worker */
    bool retry_queued; /* a PRINT_JOB_CREATION entry covers the transient failures */
    int64_t retry_after_ms; /* the longest Retry-After SimplyPrint asked for; 0 = none */
} print_run_counts;

/* Creates the missing jobs of order_id (only line item line_item_id when not NULL) and
 * submits its PENDING jobs. F3_ENOTFOUND for an unknown order or line item; F3_ETRANSIENT
 * when a submission should be tried again (counts say how far it got; the retry queue
 * will, see above). */
int print_service_requeue(print_service *s, const char *tenant_id, const char *order_id,
                          const char *line_item_id, print_run_counts *out, err *e);

/* Submits PENDING jobs: order_id's, or every tenant's when both are NULL (*out is reset
 * first). F3_ETRANSIENT when some stay PENDING because of a transient failure (each such
 * order then has a PRINT_JOB_CREATION entry). */
int print_service_submit_pending(print_service *s, const char *tenant_id, const char *order_id,
                                 print_run_counts *out, err *e);

/* An operator's retry: FAILED or CANCELLED -> PENDING (retry_count + 1), then submitted.
 * F3_ENOTFOUND; F3_ECONFLICT when the job is in another status. */
int print_service_retry(print_service *s, const char *tenant_id, const char *job_id,
                        const char *user_id, print_job_row *after, err *e);

/* Cancels one job: its queue item is removed from SimplyPrint, and it is CANCELLED locally
 * even when that fails (the provider's error kept in error_message, and a CANCELLATION
 * retry entry added in the same transaction). F3_ENOTFOUND;
 * F3_ECONFLICT when it is COMPLETED, FAILED or CANCELLED already. */
int print_service_cancel(print_service *s, const char *tenant_id, const char *job_id,
                         const char *user_id, print_job_row *after, err *e);

/* What order.cancelled does: cancels the order's PENDING/QUEUED/ASSIGNED jobs (provider
 * delete; CANCELLED locally even if it fails, with a CANCELLATION entry), logs a needs-review
 * WARNING for PRINTING ones and leaves COMPLETED ones alone. tx: when not NULL, the changes are
 * written in it (the caller commits); else in transactions of the service's own. */
int print_service_order_cancelled(print_service *s, db_conn *tx, const char *tenant_id,
                                  const char *order_id, err *e);

/* ---- status intake ---------------------------------------------------------------------- */

/* One status report from SimplyPrint (a webhook or the poller), normalised. */
typedef struct print_sp_report {
    print_job_status status; /* what it means for our job */
    int64_t queue_item_id;   /* 0 = not said */
    char sp_job_id[32];      /* SimplyPrint job id; "" = not said */
    char sp_job_uid[64];     /* its uid; "" = not said */
    char printer_id[32];
    char printer_name[128];
    int64_t reported_at; /* epoch ms of the report; 0 = unknown */
    char message[512];   /* failure / cancel reason; "" = none */
} print_sp_report;

/* The one path of simplyprint.job-status-changed: finds the job the report is about (by
 * queue item, else by SimplyPrint job id, else by asking SimplyPrint about the job uid)
 * and applies it. *outcome (may be NULL) says what happened; a report about no job of
 * ours is F3_ENOTFOUND. */
int print_service_apply_report(print_service *s, const char *tenant_id, const print_sp_report *r,
                               print_change_outcome *outcome, err *e);

/* Parses a webhook body into a report. 0 with *relevant = false for events that carry no
 * job status (printer.*, test, ...); F3_EINVAL for a malformed body. */
int print_sp_report_from_webhook(const char *body, size_t len, print_sp_report *out, bool *relevant,
                                 char event_out[64], err *e);

/* One reconciliation run over every connected tenant: submits PENDING jobs and asks
 * SimplyPrint about every QUEUED / ASSIGNED / PRINTING one. *applied (may be NULL) =
 * changes made. */
int print_service_reconcile(print_service *s, int *applied, err *e);

/* ---- clients ---------------------------------------------------------------------------- */

/* The provider client of tenant_id's connection, made once per stored version of it (a
 * change by any process is seen on the next call). Borrowed until print_service_free.
 * F3_ENOTFOUND when the tenant is not connected. */
int print_service_client(print_service *s, const char *tenant_id, void **client, err *e);

#endif
