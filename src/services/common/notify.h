/*
 * notify.h - operator notifications by e-mail (seed 001 F3.4): alerts for failures that
 * need a person, and a daily summary.
 *
 * Sending is asynchronous: notify_alert only writes an operator.alert entry to the event
 * log and a NOTIFICATION retry entry (retry.h), both in the caller's transaction, so an
 * alert never blocks or fails the business loop. The NOTIFICATION handler (notify_register)
 * renders the template and sends it over SMTP (integrations/mail/); when the SMTP server is
 * down the entry is retried with backoff and the mail goes out once it is back. Recipients
 * are read at send time: OPERATOR_EMAIL for alerts, ADMIN_EMAIL for the summary.
 *
 * Disabled cleanly: when NOTIFICATIONS_ENABLED is false, SMTP_HOST is unset or the
 * recipient is unset, the handler completes NOTIFICATION entries without sending (the
 * alert stays in the event log) and notify_new logs one line saying so. Every value put
 * into a template is HTML-escaped. Never logs the SMTP password.
 */
#ifndef F3_COMMON_NOTIFY_H
#define F3_COMMON_NOTIFY_H

#include "bus/bus.h"
#include "core/config.h"
#include "core/err.h"
#include "db/db.h"
#include "services/common/retry.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum notify_kind {
    NOTIFY_FULFILLMENT_FAILED,  /* a fulfilment failed permanently */
    NOTIFY_PRINT_JOB_FAILED,    /* a print job failed */
    NOTIFY_CANCELLATION_REVIEW, /* a cancellation found jobs already printing */
    NOTIFY_RETRY_EXHAUSTED,     /* a retry entry failed for good */
    NOTIFY_UNMAPPED_SKU,        /* an order line has no product mapping */
    NOTIFY_SHOP_DISCONNECTED,   /* a Shopify shop was disconnected (app uninstalled) */
    NOTIFY_CANCEL_AFTER_DONE,   /* cancelled in Shopify after the order was completed */
    NOTIFY_SHIPMENT_FAILED,     /* a shipment (label) could not be created */
    NOTIFY_EVENT_DEAD_LETTERED, /* a bus job failed for good (deadletter.h) */
    NOTIFY_KIND_COUNT
} notify_kind;

/* Attempts of a NOTIFICATION entry: more than the retry queue's default 5, so that an
 * alert survives an SMTP outage of about an hour (backoff 1 s, 2 s, ... 2048 s). */
#define NOTIFY_MAX_ATTEMPTS 12

#define NOTIFY_ALERT_EVENT "operator.alert"
#define NOTIFY_SENT_EVENT  "operator.alert-sent"

/* "FULFILLMENT_FAILED", "PRINT_JOB_FAILED", "CANCELLATION_NEEDS_REVIEW", "RETRY_EXHAUSTED",
 * "UNMAPPED_SKU", "SHOP_DISCONNECTED", "CANCELLED_AFTER_COMPLETION",
 * "SHIPMENT_FAILED", "EVENT_DEAD_LETTERED"; "UNKNOWN" outside the enum. */
const char *notify_kind_name(notify_kind k);

/* Parses a kind name as above; -1 if unknown. */
int notify_kind_parse(const char *name);

/*
 * Queues an operator alert in tx (the caller's open transaction). `fields` (an object,
 * borrowed; may be NULL) says what it is about; the template shows "message" (one line:
 * what happened) and "orderId" / "orderNumber" specially (the event-log entry also
 * refers to "orderId" and "printJobId") and lists every other string,
 * number or boolean member as a detail. 0, F3_EINVAL for a bad kind, tenant or fields, or
 * the database error.
 */
int notify_alert(db_conn *tx, const char *tenant_id, notify_kind kind, const json_t *fields,
                 err *e);

/* ---- templates (notify_templates.c) ---------------------------------------------------- */

/* A rendered mail: subject, plain text and HTML, each owned (notify_rendered_free). */
typedef struct notify_rendered {
    char *subject;
    char *text;
    char *html;
} notify_rendered;

void notify_rendered_free(notify_rendered *r);

/* Renders an alert of `kind` about `fields` (as for notify_alert), raised at at_ms, with a
 * dashboard link under app_url (may be NULL: no link). 0, F3_EINVAL (bad kind or fields)
 * or F3_ENOMEM; on error *out is empty. */
int notify_render_alert(notify_kind kind, const json_t *fields, const char *app_url, int64_t at_ms,
                        notify_rendered *out, err *e);

/* Renders the daily summary from the object notify_summary_of makes:
 * {"since":ms,"until":ms,"ordersByStatus":{"PENDING":n,...},"ordersTotal":n,
 *  "failures":{"printJobs":n,"retryEntries":n,"deadLetteredEvents":n},"pendingReviews":n}.
 * 0, F3_EINVAL, F3_ENOMEM. */
int notify_render_summary(const json_t *summary, const char *app_url, notify_rendered *out, err *e);

/* ---- the daily summary ------------------------------------------------------------------ */

/* The figures of tenant_id for [since_ms, until_ms): orders created by status, failed print
 * jobs and retry entries updated in the window, bus jobs that failed for good in it (as
 * deadletter.h recorded them), orders waiting for review (now). *out is a new object
 * (json_decref) in the shape notify_render_summary reads. */
int notify_summary_of(db_conn *c, const char *tenant_id, int64_t since_ms, int64_t until_ms,
                      json_t **out, err *e);

/* For every active tenant: the figures of the 24 h before now_ms, queued as a summary
 * NOTIFICATION entry. *queued (may be NULL) = tenants queued. */
int notify_queue_summaries(db *d, int64_t now_ms, int *queued, err *e);

/* ---- the sender ------------------------------------------------------------------------- */

typedef struct notify notify;

/* The sender configured by c (NOTIFICATIONS_ENABLED, SMTP_*, OPERATOR_EMAIL, ADMIN_EMAIL,
 * APP_URL; copied, so c may go afterwards) over database d (borrowed). Logs one line when
 * sending is disabled and why. NULL when out of memory. Caller frees with notify_free. */
notify *notify_new(const config *c, db *d, err *e);

void notify_free(notify *n);

/* True when alerts are mailed (enabled, SMTP_HOST and OPERATOR_EMAIL set). */
bool notify_enabled(const notify *n);

/* Registers the NOTIFICATION handler on rq. */
int notify_register(notify *n, retry_queue *rq, err *e);

/* Registers the daily summary job ("notify.daily-summary@<service>", every day at 07:00
 * UTC) on bus b and declares it in store s. Call before bus_start. */
int notify_schedule_summary(notify *n, bus *b, bus_store *s, err *e);

#endif
