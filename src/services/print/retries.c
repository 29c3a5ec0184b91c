/*
 * retries.c - the print service's retry-queue entries (see service.h): PRINT_JOB_CREATION
 * submits an order's PENDING jobs again, CANCELLATION removes a cancelled job's queue item
 * from SimplyPrint again. Only the handlers and the CANCELLATION enqueue live here; what a
 * submission does is submit.c's, and scheduling is the retry queue's (never sleeps here).
 */
#include "services/print/print_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "services/common/eventlog.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int print_enqueue_removal(db_conn *tx, const char *tenant_id, const char *job_id,
                          int64_t queue_item_id, err *e)
{
    json_t *payload =
        json_pack("{s:s,s:I}", "printJobId", job_id, "queueItemId", (json_int_t)queue_item_id);
    if (!payload)
        return err_set(e, F3_ENOMEM, "out of memory");
    retry_enqueue_opts o = {.tenant_id = tenant_id,
                            .type = RETRY_CANCELLATION,
                            .payload = payload,
                            .delay_ms = -1,
                            .dedupe = true};
    int rc = retry_enqueue_with(tx, &o, NULL, e);
    json_decref(payload);
    if (rc == 0)
        log_info("queue item removal handed to the retry queue", "printJobId", job_id);
    return rc;
}

/* ---- PRINT_JOB_CREATION ----------------------------------------------------------------- */

static int creation_handler(const retry_entry *en, void *ctx, err *e)
{
    print_service *s = ctx;
    const char *order_id = json_string_value(json_object_get(en->payload, "orderId"));
    if (!order_id || !*order_id)
        return err_set(e, F3_EINVAL, "PRINT_JOB_CREATION entry without orderId");
    print_run_counts counts;
    int rc = print_submit_pending_as(s, en->tenant_id, order_id, PRINT_SUBMIT_RETRY, &counts, e);
    if (rc == F3_ETRANSIENT)
        en->advice->retry_after_ms = counts.retry_after_ms;
    if (rc == 0) {
        char n[16];
        snprintf(n, sizeof n, "%d", counts.submitted);
        log_info("pending print jobs submitted by the retry queue", "orderId", order_id,
                 "submitted", n);
    }
    /* Jobs SimplyPrint refused for good are FAILED and alerted each (jobs.c): the entry's
     * work is done. */
    return rc;
}

/* ---- CANCELLATION ----------------------------------------------------------------------- */

typedef struct removed_tx {
    const char *tenant_id, *job_id;
    int64_t queue_item_id;
    bool cleared;
} removed_tx;

/* The removal worked: the error kept on the cancelled job goes, with an INFO entry. A job
 * retried since (PENDING, a new queue item) is not touched. */
static int removed_body(db_conn *c, void *ctx, err *e)
{
    removed_tx *t = ctx;
    char qid[24], now[24];
    snprintf(qid, sizeof qid, "%" PRId64, t->queue_item_id);
    db_ms_text(clock_now_ms(), now);
    const char *p[] = {t->tenant_id, t->job_id, qid, now};
    int64_t n = 0;
    int rc = db_exec_texts(c,
                           "UPDATE print_jobs SET error_message = NULL,"
                           " updated_at = CAST($4 AS BIGINT) WHERE tenant_id = $1 AND id = $2"
                           " AND status = 'CANCELLED' AND simplyprint_queue_item_id = $3",
                           p, 4, &n, e);
    t->cleared = rc == 0 && n == 1;
    if (rc || !t->cleared)
        return rc;
    char msg[160];
    snprintf(msg, sizeof msg, "Queue item %s removed from SimplyPrint on a later attempt", qid);
    eventlog_entry en = {.tenant_id = t->tenant_id,
                         .event_type = PRINT_LOG_QUEUE_ITEM_REMOVED,
                         .severity = EVENTLOG_INFO,
                         .message = msg,
                         .print_job_id = t->job_id};
    return eventlog_write(c, &en, NULL, e);
}

static int cancellation_handler(const retry_entry *en, void *ctx, err *e)
{
    print_service *s = ctx;
    const char *job_id = json_string_value(json_object_get(en->payload, "printJobId"));
    json_t *qv = json_object_get(en->payload, "queueItemId");
    if (!job_id || !*job_id || !json_is_integer(qv) || json_integer_value(qv) <= 0)
        return err_set(e, F3_EINVAL, "CANCELLATION entry without printJobId and queueItemId");
    int64_t qid = (int64_t)json_integer_value(qv);
    void *client = NULL;
    err ce;
    err_clear(&ce);
    int rc = print_service_client(s, en->tenant_id, &client, &ce);
    if (rc == F3_ENOTFOUND)
        return err_set(e, F3_ETRANSIENT, "SimplyPrint is not connected for this tenant");
    if (rc)
        return err_set(e, rc, "%s", ce.msg);
    sp_call call;
    memset(&call, 0, sizeof call);
    /* Removing is idempotent: an item already gone answers 0 (client.h). */
    rc = s->provider->queue_delete_item(client, qid, &call, &ce);
    if (rc) {
        bool permanent = rc == F3_EPERMANENT || rc == F3_EINVAL || call.failure == HTTP_PERMANENT;
        if (!permanent && call.retry_after_ms > 0)
            en->advice->retry_after_ms = call.retry_after_ms;
        return err_set(e, permanent ? F3_EPERMANENT : F3_ETRANSIENT,
                       "Removing queue item %" PRId64 " from SimplyPrint failed: %s", qid,
                       call.message[0] ? call.message : ce.msg);
    }
    removed_tx t = {en->tenant_id, job_id, qid, false};
    rc = print_in_tx(s, removed_body, &t, e);
    if (rc == 0)
        log_info("queue item of a cancelled print job removed", "printJobId", job_id,
                 "errorCleared", t.cleared ? "true" : "false");
    return rc;
}

int print_retry_register(print_service *s, retry_queue *rq, err *e)
{
    int rc = retry_register(rq, RETRY_PRINT_JOB_CREATION, creation_handler, s, e);
    return rc ? rc : retry_register(rq, RETRY_CANCELLATION, cancellation_handler, s, e);
}
