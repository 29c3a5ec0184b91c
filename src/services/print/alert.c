/*
 * alert.c - operator alerts (see alert.h). Writes the alert; never sends anything itself.
 */
#include "services/print/alert.h"

#include "core/log.h"
#include "services/common/eventlog.h"

int print_alert(db_conn *tx, const char *tenant_id, const char *message, const char *order_id,
                const char *print_job_id, const json_t *metadata, err *e)
{
    eventlog_entry en = {.tenant_id = tenant_id,
                         .event_type = PRINT_LOG_OPERATOR_ALERT,
                         .severity = EVENTLOG_ERROR,
                         .message = message,
                         .order_id = order_id,
                         .print_job_id = print_job_id,
                         .metadata = metadata};
    int rc = eventlog_write(tx, &en, NULL, e);
    if (rc == 0)
        log_warn("operator alert", "tenantId", tenant_id, "printJobId", print_job_id, "message",
                 message);
    return rc;
}
