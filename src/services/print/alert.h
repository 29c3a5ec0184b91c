/*
 * alert.h - operator alerts of the print service (seed 001: permanent failures need a
 * person). Every alert of the print service goes through print_alert(): a
 * PRINT_JOB_FAILED alert of services/common/notify.h (an operator.alert event-log entry
 * and an e-mail queued), written in the caller's transaction like every other entry.
 */
#ifndef F3_PRINT_ALERT_H
#define F3_PRINT_ALERT_H

#include "core/err.h"
#include "db/db.h"

#include <jansson.h>

/* Raises an alert for tenant_id inside tx (open transaction of the caller). order_id,
 * print_job_id and metadata (an object, borrowed) may be NULL. 0 or the db error. */
int print_alert(db_conn *tx, const char *tenant_id, const char *message, const char *order_id,
                const char *print_job_id, const json_t *metadata, err *e);

#endif
