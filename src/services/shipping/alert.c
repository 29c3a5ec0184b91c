/*
 * alert.c - operator alerts of the shipping service, in one place: raised through
 * services/common/notify.h (an operator.alert event-log entry and an e-mail queued) in the
 * caller's transaction, so an alert exists exactly when the failure it reports was
 * committed. (notify_alert adds the Shopify order number to every alert about an order.)
 */
#include "services/shipping/shipping_internal.h"

#include "core/log.h"

int shipping_alert(db_conn *tx, const char *tenant_id, const char *order_id, notify_kind kind,
                   const char *message, const json_t *metadata, err *e)
{
    json_t *fields = metadata ? json_deep_copy(metadata) : json_object();
    if (!fields || json_object_set_new(fields, "message", json_string(message)) ||
        (order_id && json_object_set_new(fields, "orderId", json_string(order_id)))) {
        json_decref(fields);
        return err_set(e, F3_ENOMEM, "out of memory");
    }
    int rc = notify_alert(tx, tenant_id, kind, fields, e);
    if (rc == 0)
        log_warn("operator alert", "tenantId", tenant_id, "orderId", order_id, "message", message);
    json_decref(fields);
    return rc;
}
