/*
 * eventlog.h - the business event log (seed 001's EventLogService): the audit trail every
 * service appends to (services/common/ holds such shared service-side modules; none of
 * them is a service of its own).
 *
 * Every business action is recorded with a type, a severity, a message, optional
 * metadata and the order / line item / print job it concerns, in the SAME transaction
 * as the action itself, so the log never claims something that was rolled back and
 * never misses something that was committed. Services only append; the orders service
 * owns the reading API (GET /api/v1/events).
 */
#ifndef F3_COMMON_EVENTLOG_H
#define F3_COMMON_EVENTLOG_H

#include "core/err.h"
#include "db/db.h"

#include <jansson.h>

typedef enum eventlog_severity {
    EVENTLOG_INFO,
    EVENTLOG_WARNING,
    EVENTLOG_ERROR,
} eventlog_severity;

/* "INFO", "WARNING", "ERROR". */
const char *eventlog_severity_name(eventlog_severity s);

/* Parses a severity name (case-sensitive, as stored); -1 if unknown. */
int eventlog_severity_parse(const char *name);

typedef struct eventlog_entry {
    const char *tenant_id;  /* required */
    const char *event_type; /* required, e.g. "order.created", "order.needs-mapping" */
    eventlog_severity severity;
    const char *message;  /* required, human-readable, no secrets */
    const char *order_id; /* optional references */
    const char *line_item_id;
    const char *print_job_id;
    const char *user_id;        /* the operator who acted, when one did */
    const json_t *metadata;     /* optional object, borrowed; stored as JSON text */
    const char *correlation_id; /* NULL = the thread's log correlation id, if any */
} eventlog_entry;

/* Appends one entry inside tx (an open transaction of the caller). The new row's id
 * (a UUID v7, so ids sort by time) goes to id_out when not NULL (UUID_STR_LEN bytes).
 * F3_EINVAL names a missing required field. */
int eventlog_write(db_conn *tx, const eventlog_entry *en, char *id_out, err *e);

#endif
