/*
 * alert.c - operator alerts of the print service (see alert.h): raised through
 * services/common/notify.h, which writes the operator.alert entry and queues the e-mail in
 * the caller's transaction. Never sends anything itself.
 */
#include "services/print/alert.h"

#include "core/log.h"
#include "services/common/notify.h"

int print_alert(db_conn *tx, const char *tenant_id, const char *message, const char *order_id,
                const char *print_job_id, const json_t *metadata, err *e)
{
    json_t *fields = metadata ? json_deep_copy(metadata) : json_object();
    if (!fields || json_object_set_new(fields, "message", json_string(message)) ||
        (order_id && json_object_set_new(fields, "orderId", json_string(order_id))) ||
        (print_job_id && json_object_set_new(fields, "printJobId", json_string(print_job_id)))) {
        json_decref(fields);
        return err_set(e, F3_ENOMEM, "out of memory");
    }
    int rc = notify_alert(tx, tenant_id, NOTIFY_PRINT_JOB_FAILED, fields, e);
    json_decref(fields);
    if (rc == 0)
        log_warn("operator alert", "tenantId", tenant_id, "printJobId", print_job_id, "message",
                 message);
    return rc;
}
