/*
 * notify.c - operator alerts and the daily summary: queueing (in the caller's
 * transaction), the NOTIFICATION handler that mails them, and the summary job (see
 * notify.h). Templates are in notify_templates.c; SMTP is integrations/mail/. Never
 * sends from inside a caller's transaction and never logs the SMTP password.
 */
#include "services/common/notify.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "services/common/eventlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[NOTIFY_KIND_COUNT] = {
    [NOTIFY_FULFILLMENT_FAILED] = "FULFILLMENT_FAILED",
    [NOTIFY_PRINT_JOB_FAILED] = "PRINT_JOB_FAILED",
    [NOTIFY_CANCELLATION_REVIEW] = "CANCELLATION_NEEDS_REVIEW",
    [NOTIFY_RETRY_EXHAUSTED] = "RETRY_EXHAUSTED",
    [NOTIFY_UNMAPPED_SKU] = "UNMAPPED_SKU",
};

const char *notify_kind_name(notify_kind k)
{
    return (unsigned)k < NOTIFY_KIND_COUNT ? kind_names[k] : "UNKNOWN";
}

int notify_kind_parse(const char *name)
{
    for (int i = 0; name && i < NOTIFY_KIND_COUNT; i++)
        if (strcmp(name, kind_names[i]) == 0)
            return i;
    return -1;
}

/* ---- queueing --------------------------------------------------------------------------- */

int notify_alert(db_conn *tx, const char *tenant_id, notify_kind kind, const json_t *fields, err *e)
{
    if ((unsigned)kind >= NOTIFY_KIND_COUNT)
        return err_set(e, F3_EINVAL, "notify: unknown alert kind %d", (int)kind);
    if (!tenant_id || !*tenant_id)
        return err_set(e, F3_EINVAL, "notify: tenant_id is required");
    if (fields && !json_is_object(fields))
        return err_set(e, F3_EINVAL, "notify: alert fields must be an object");
    json_t *f = fields ? json_deep_copy(fields) : json_object();
    json_t *payload =
        f ? json_pack("{s:s, s:s, s:o, s:I}", "template", "alert", "kind", kind_names[kind],
                      "fields", f, "raisedAt", (json_int_t)clock_now_ms())
          : NULL;
    if (!payload)
        return err_set(e, F3_ENOMEM, "out of memory");
    const char *message = NULL;
    json_opt_string(f, "message", &message, NULL, NULL);
    const char *order_id = NULL;
    json_opt_string(f, "orderId", &order_id, NULL, NULL);
    char text[256];
    snprintf(text, sizeof text, "Operator alert %s: %s", kind_names[kind],
             message && *message ? message : "action required");
    json_t *meta = json_pack("{s:s, s:O}", "kind", kind_names[kind], "fields", f);
    eventlog_entry en = {.tenant_id = tenant_id,
                         .event_type = NOTIFY_ALERT_EVENT,
                         .severity = EVENTLOG_WARNING,
                         .message = text,
                         .order_id = order_id,
                         .metadata = meta};
    int rc = meta ? eventlog_write(tx, &en, NULL, e) : err_set(e, F3_ENOMEM, "out of memory");
    rc = rc ? rc
            : retry_enqueue_with(tx,
                                 &(retry_enqueue_opts){.tenant_id = tenant_id,
                                                       .type = RETRY_NOTIFICATION,
                                                       .payload = payload,
                                                       .delay_ms = 0},
                                 NULL, e);
    json_decref(meta);
    json_decref(payload);
    return rc;
}
