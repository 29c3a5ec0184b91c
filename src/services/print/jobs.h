/*
 * jobs.h - the print_jobs table as the print service writes it: creating an order's jobs
 * (idempotent on the table's UNIQUE key) and changing a job's status with its event-log
 * entry and events, in the caller's transaction.
 *
 * One job is one printed copy: line item x unit of its quantity x part of the mapped
 * product x copy of that part (quantity_per_unit). Re-running creation for the same order
 * (a redelivered order.created, a requeue, a mapping added later) adds only the rows that
 * are missing. Every status change goes through print_jobs_change, which asks the
 * transition table (status_machine.h), ignores stale provider reports, and publishes
 * print-job.status-changed plus print-job.completed / .failed / .cancelled.
 */
#ifndef F3_PRINT_JOBS_H
#define F3_PRINT_JOBS_H

#include "bus/bus.h"
#include "core/err.h"
#include "db/db.h"
#include "services/orders/client.h"
#include "services/print/client.h"
#include "services/print/status_machine.h"

#include <stdbool.h>
#include <stdint.h>

/* Event-log types of the print service (event names come from the catalog). */
#define PRINT_LOG_CREATED            BUS_IEV_PRINTJOB_CREATED
#define PRINT_LOG_STATUS_CHANGED     BUS_EV_PRINT_JOB_STATUS_CHANGED
#define PRINT_LOG_UNMAPPED           "print-job.unmapped"
#define PRINT_LOG_SUBMIT_FAILED      "print-job.submit-failed"
#define PRINT_LOG_NEEDS_REVIEW       "print-job.needs-review"
#define PRINT_LOG_CANCEL_FAILED      "print-job.cancel-failed"
#define PRINT_LOG_QUEUE_ITEM_REMOVED "print-job.queue-item-removed"
#define PRINT_LOG_RETRY              BUS_IEV_PRINTJOB_RETRY_REQUESTED

/* A job as the print service sees it. */
typedef struct print_job_row {
    print_job_info info;
    int64_t queue_item_id; /* 0 = not in the SimplyPrint queue */
    char sp_job_id[64];    /* "" = no SimplyPrint job known */
    char file_id[129];
    char file_name[256];
    char queue_group_id[32];
    char printer_name[128];
    int64_t provider_reported_at; /* epoch ms of the last applied report; 0 = none */
    int64_t created_at;
    /* A submission's lease (epoch ms); 0 = none running. Taken before queue/AddItem and
     * cleared by whatever records its outcome, so a PENDING job whose lease is set (and
     * expired) had a submission interrupted: its queue item may exist unrecorded. */
    int64_t submit_lease_until;
} print_job_row;

/* The columns print_jobs_read_row reads, to SELECT from print_jobs. */
extern const char print_jobs_columns[];

/* Reads the current row of a statement selecting print_jobs_columns first. */
void print_jobs_read_row(db_stmt *s, print_job_row *out);

/* Runs sql (a SELECT of print_jobs_columns first) with texts[0..n-1] bound to $1..$n on c and
 * reads every row. 0 with *rows (caller frees with free()) and *count set, or a db error with
 * *rows NULL and *count 0. */
int print_jobs_select(db_conn *c, const char *sql, const char *const *texts, int n,
                      print_job_row **rows, size_t *count, err *e);

/* job_id of tenant_id. F3_ENOTFOUND when there is none. */
int print_jobs_load(db_conn *c, const char *tenant_id, const char *job_id, print_job_row *out,
                    err *e);

/* The job holding SimplyPrint queue item qid. F3_ENOTFOUND when there is none. */
int print_jobs_by_queue_item(db_conn *c, const char *tenant_id, int64_t qid, print_job_row *out,
                             err *e);

/* In *held, whether a job of tenant_id other than except_job_id (NULL = none) holds
 * SimplyPrint queue item qid. Inside a transaction it first takes qid's lock until the
 * transaction ends, so of two transactions recording qid the second sees the first's. */
int print_jobs_queue_item_held(db_conn *c, const char *tenant_id, int64_t qid,
                               const char *except_job_id, bool *held, err *e);

/* Adopts queue item qid, which no job of tenant_id holds, for the job whose submission of
 * file_id was interrupted before it recorded its item: the oldest started submission
 * (PENDING, no queue item, lease set) of that file. That job moves to QUEUED with the item,
 * through print_jobs_change, in tx. job_id receives its id ("" and *adopted = false when
 * there is none or qid is held already). */
int print_jobs_adopt(db_conn *tx, bus *b, const char *tenant_id, int64_t qid, const char *file_id,
                     char job_id[PRINT_JOB_ID_MAX + 1], bool *adopted, err *e);

/* What one creation run did. */
typedef struct print_jobs_created {
    int created;  /* rows added now */
    int existing; /* rows that were there already */
    int unmapped; /* line items skipped: no SKU, no active mapping or no print file */
} print_jobs_created;

/* Creates the missing jobs of the given line items of order_id (status PENDING) inside tx,
 * with an event-log entry per created job and a WARNING per unmapped line item. Counts are
 * added to *acc. 0 or a db error. */
int print_jobs_create(db_conn *tx, const char *tenant_id, const char *order_id,
                      const orders_client_line_item *items, size_t n, print_jobs_created *acc,
                      err *e);

/* A requested status change. */
typedef struct print_change {
    print_job_status to;
    print_cause cause;
    const char *message;        /* error / reason kept in error_message; NULL = none */
    int64_t reported_at;        /* provider report time (epoch ms); 0 = no staleness check */
    int64_t queue_item_id;      /* > 0: record as the job's queue item (QUEUED) */
    const char *sp_job_id;      /* the SimplyPrint job printing it; NULL = unchanged */
    const char *printer_id;     /* NULL = unchanged */
    const char *printer_name;   /* NULL = unchanged */
    const char *user_id;        /* the operator, for the event log */
    bool keep_message_on_clear; /* PENDING normally clears error_message */
} print_change;

typedef enum print_change_outcome {
    PRINT_CHANGED,   /* applied, logged, published */
    PRINT_UNCHANGED, /* already in that status */
    PRINT_STALE,     /* the report is older than the last applied one */
    PRINT_NOT_ALLOWED,
} print_change_outcome;

/* Applies ch to job_id of tenant_id inside tx: on PRINT_CHANGED the row is updated (a move
 * to PENDING from FAILED/CANCELLED counts a retry), an event-log entry written and the
 * catalog events published on b (the print service's bus) in tx. *before (may be NULL)
 * receives the row as it was. F3_ENOTFOUND for no such job; F3_EBUSY when the row changed
 * under us (run the transaction again). */
int print_jobs_change(db_conn *tx, bus *b, const char *tenant_id, const char *job_id,
                      const print_change *ch, print_change_outcome *outcome, print_job_row *before,
                      err *e);

#endif
