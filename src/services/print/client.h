/*
 * client.h - what other services may ask of the print service (ARCHITECTURE.md §2:
 * services talk through events and through these typed calls, never through each
 * other's tables).
 *
 * The print service owns the print_jobs table. The orders service's orchestration reads
 * the state of an order's jobs through print_client_order_tally and one job through
 * print_client_job_get ("enriched from the database", seed 000), inside its own
 * transaction. The status names are the ones the database CHECK allows
 * (migrations/0001_initial.sql).
 */
#ifndef F3_PRINT_CLIENT_H
#define F3_PRINT_CLIENT_H

#include "core/err.h"
#include "db/db.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum print_job_status {
    PRINT_JOB_PENDING,
    PRINT_JOB_QUEUED,
    PRINT_JOB_ASSIGNED,
    PRINT_JOB_PRINTING,
    PRINT_JOB_COMPLETED,
    PRINT_JOB_FAILED,
    PRINT_JOB_CANCELLED,
    PRINT_JOB_STATUS_COUNT
} print_job_status;

/* "PENDING", "QUEUED", ...; "UNKNOWN" for a value outside the enum. */
const char *print_job_status_name(print_job_status s);

/* Parses a status name (upper case, as stored); -1 if unknown. */
int print_job_status_parse(const char *name);

/* COMPLETED, FAILED and CANCELLED: the job is no longer printing or waiting to. */
bool print_job_status_is_terminal(print_job_status s);

/* How many of an order's jobs are in each status. */
typedef struct print_job_tally {
    int total;
    int n[PRINT_JOB_STATUS_COUNT];
} print_job_tally;

/* The tally of order_id's jobs (tenant_id's only). An order without jobs has total 0.
 * c may be inside a transaction. 0 or a db error. */
int print_client_order_tally(db_conn *c, const char *tenant_id, const char *order_id,
                             print_job_tally *out, err *e);

#define PRINT_JOB_ID_MAX 64

/* One job as other services see it. */
typedef struct print_job_info {
    char id[PRINT_JOB_ID_MAX + 1];
    char order_id[PRINT_JOB_ID_MAX + 1];
    char line_item_id[PRINT_JOB_ID_MAX + 1];
    print_job_status status;
    char error_message[512]; /* "" when none */
    int retry_count;
    int64_t updated_at; /* epoch ms */
} print_job_info;

/* Reads job_id of tenant_id. F3_ENOTFOUND when there is no such job (or it belongs to
 * another tenant); F3_EINVAL when the stored status is not one of the names above. */
int print_client_job_get(db_conn *c, const char *tenant_id, const char *job_id, print_job_info *out,
                         err *e);

#endif
