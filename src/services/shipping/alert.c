/*
 * alert.c - operator alerts of the shipping service, in one place: every alert is an
 * event-log entry of type "operator.alert" written in the caller's transaction, so it
 * exists exactly when the failure it reports was committed. Delivery to a person
 * (e-mail) belongs to the notification module, which reads these entries; this file is
 * the single point to redirect when that module offers a direct call.
 */
#include "services/shipping/shipping_internal.h"

#include "core/log.h"

int shipping_alert(db_conn *tx, const char *tenant_id, const char *order_id,
                   eventlog_severity severity, const char *message, const json_t *metadata, err *e)
{
    eventlog_entry en = {.tenant_id = tenant_id,
                         .event_type = SHIPPING_EV_ALERT,
                         .severity = severity,
                         .message = message,
                         .order_id = order_id,
                         .metadata = metadata};
    int rc = eventlog_write(tx, &en, NULL, e);
    if (rc == 0)
        log_warn("operator alert", "tenantId", tenant_id, "orderId", order_id, "message", message);
    return rc;
}
