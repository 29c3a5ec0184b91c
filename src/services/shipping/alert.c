/*
 * alert.c - operator alerts of the shipping service, in one place: raised through
 * services/common/notify.h (an operator.alert event-log entry and an e-mail queued) in the
 * caller's transaction, so an alert exists exactly when the failure it reports was
 * committed. Every alert about an order names its Shopify order number.
 */
#include "services/shipping/shipping_internal.h"

#include "core/log.h"

/* Adds "orderNumber" (the Shopify order number, e.g. "#1001") of order_id to fields unless
 * it is there already. An order this tenant does not have adds nothing: the alert still
 * names the order id. 0 or the database error. */
static int add_order_number(db_conn *tx, const char *tenant_id, const char *order_id,
                            json_t *fields, err *e)
{
    if (json_object_get(fields, "orderNumber"))
        return 0;
    const char *p[] = {tenant_id, order_id};
    db_stmt *s = db_prepare_texts(tx,
                                  "SELECT shopify_order_number FROM orders WHERE tenant_id = $1"
                                  " AND id = $2",
                                  p, 2, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    char number[64] = "";
    if (rc == DB_ROW)
        db_col_copy(s, 0, number, sizeof number);
    db_finalize(s);
    if (rc < 0)
        return rc;
    if (number[0] && json_object_set_new(fields, "orderNumber", json_string(number)))
        return err_set(e, F3_ENOMEM, "out of memory");
    return 0;
}

int shipping_alert(db_conn *tx, const char *tenant_id, const char *order_id, notify_kind kind,
                   const char *message, const json_t *metadata, err *e)
{
    json_t *fields = metadata ? json_deep_copy(metadata) : json_object();
    if (!fields || json_object_set_new(fields, "message", json_string(message)) ||
        (order_id && json_object_set_new(fields, "orderId", json_string(order_id)))) {
        json_decref(fields);
        return err_set(e, F3_ENOMEM, "out of memory");
    }
    int rc = order_id ? add_order_number(tx, tenant_id, order_id, fields, e) : 0;
    rc = rc ? rc : notify_alert(tx, tenant_id, kind, fields, e);
    const char *number = json_string_value(json_object_get(fields, "orderNumber"));
    if (rc == 0)
        log_warn("operator alert", "tenantId", tenant_id, "orderId", order_id, "orderNumber",
                 number ? number : "", "message", message);
    json_decref(fields);
    return rc;
}
