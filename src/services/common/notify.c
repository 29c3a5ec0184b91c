/*
 * notify.c - operator alerts and the daily summary: queueing (in the caller's
 * transaction), the NOTIFICATION handler that mails them, and the summary job (see
 * notify.h). Templates are in notify_templates.c; SMTP is integrations/mail/. Never
 * sends from inside a caller's transaction and never logs the SMTP password.
 */
#include "services/common/notify.h"

#include "core/clock.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "integrations/mail/smtp.h"
#include "services/common/eventlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTIFY_DAY_MS       INT64_C(86400000)
#define NOTIFY_DEFAULT_FROM "noreply@f3connect.local"
#define NOTIFY_SUMMARY_JOB  "notify.daily-summary"
#define NOTIFY_SUMMARY_CRON "0 7 * * *"

static const char *const kind_names[NOTIFY_KIND_COUNT] = {
    [NOTIFY_FULFILLMENT_FAILED] = "FULFILLMENT_FAILED",
    [NOTIFY_PRINT_JOB_FAILED] = "PRINT_JOB_FAILED",
    [NOTIFY_CANCELLATION_REVIEW] = "CANCELLATION_NEEDS_REVIEW",
    [NOTIFY_RETRY_EXHAUSTED] = "RETRY_EXHAUSTED",
    [NOTIFY_UNMAPPED_SKU] = "UNMAPPED_SKU",
    [NOTIFY_SHOP_DISCONNECTED] = "SHOP_DISCONNECTED",
    [NOTIFY_CANCEL_AFTER_DONE] = "CANCELLED_AFTER_COMPLETION",
    [NOTIFY_SHIPMENT_FAILED] = "SHIPMENT_FAILED",
    [NOTIFY_EVENT_DEAD_LETTERED] = "EVENT_DEAD_LETTERED",
};

/* Something failed and will not heal by itself (ERROR), or needs a decision (WARNING). */
static const eventlog_severity kind_severity[NOTIFY_KIND_COUNT] = {
    [NOTIFY_FULFILLMENT_FAILED] = EVENTLOG_ERROR,    [NOTIFY_PRINT_JOB_FAILED] = EVENTLOG_ERROR,
    [NOTIFY_CANCELLATION_REVIEW] = EVENTLOG_WARNING, [NOTIFY_RETRY_EXHAUSTED] = EVENTLOG_ERROR,
    [NOTIFY_UNMAPPED_SKU] = EVENTLOG_WARNING,        [NOTIFY_SHOP_DISCONNECTED] = EVENTLOG_ERROR,
    [NOTIFY_CANCEL_AFTER_DONE] = EVENTLOG_ERROR,     [NOTIFY_SHIPMENT_FAILED] = EVENTLOG_ERROR,
    [NOTIFY_EVENT_DEAD_LETTERED] = EVENTLOG_ERROR,
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

/* Adds "orderNumber" (the Shopify order number, e.g. "#1001") of the alert's "orderId" to
 * fields unless it is there already, so every alert about an order names it. An order this
 * tenant does not have adds nothing: the alert still names the order id. 0 or the database
 * error. */
static int add_order_number(db_conn *tx, const char *tenant_id, json_t *fields, err *e)
{
    const char *order_id = NULL;
    json_opt_string(fields, "orderId", &order_id, NULL, NULL);
    if (!order_id || json_object_get(fields, "orderNumber"))
        return 0;
    const char *p[] = {tenant_id, order_id};
    char number[64];
    int rc = db_query_text(
        tx, "SELECT shopify_order_number FROM orders WHERE tenant_id = $1 AND id = $2", p, 2,
        number, sizeof number, e);
    if (rc < 0)
        return rc;
    if (number[0] && json_object_set_new(fields, "orderNumber", json_string(number)))
        return err_set(e, F3_ENOMEM, "out of memory");
    return 0;
}

int notify_alert(db_conn *tx, const char *tenant_id, notify_kind kind, const json_t *fields, err *e)
{
    if (!tx)
        return err_set(e, F3_EINVAL, "notify: an open transaction is required");
    if ((unsigned)kind >= NOTIFY_KIND_COUNT)
        return err_set(e, F3_EINVAL, "notify: unknown alert kind %d", (int)kind);
    if (!tenant_id || !*tenant_id)
        return err_set(e, F3_EINVAL, "notify: tenant_id is required");
    if (fields && !json_is_object(fields))
        return err_set(e, F3_EINVAL, "notify: alert fields must be an object");
    json_t *f = fields ? json_deep_copy(fields) : json_object();
    if (!f)
        return err_set(e, F3_ENOMEM, "out of memory");
    int lookup = add_order_number(tx, tenant_id, f, e);
    if (lookup) {
        json_decref(f);
        return lookup;
    }
    json_t *payload =
        f ? json_pack("{s:s, s:s, s:o, s:I}", "template", "alert", "kind", kind_names[kind],
                      "fields", f, "raisedAt", (json_int_t)clock_now_ms())
          : NULL;
    if (!payload)
        return err_set(e, F3_ENOMEM, "out of memory");
    const char *message = NULL;
    json_opt_string(f, "message", &message, NULL, NULL);
    const char *order_id = NULL, *job_id = NULL;
    json_opt_string(f, "orderId", &order_id, NULL, NULL);
    json_opt_string(f, "printJobId", &job_id, NULL, NULL);
    char text[256];
    snprintf(text, sizeof text, "Operator alert %s: %s", kind_names[kind],
             message && *message ? message : "action required");
    json_t *meta = json_pack("{s:s, s:O}", "kind", kind_names[kind], "fields", f);
    eventlog_entry en = {.tenant_id = tenant_id,
                         .event_type = NOTIFY_ALERT_EVENT,
                         .severity = kind_severity[kind],
                         .message = text,
                         .order_id = order_id,
                         .print_job_id = job_id,
                         .metadata = meta};
    int rc = meta ? eventlog_write(tx, &en, NULL, e) : err_set(e, F3_ENOMEM, "out of memory");
    retry_enqueue_opts o = {.tenant_id = tenant_id,
                            .type = RETRY_NOTIFICATION,
                            .payload = payload,
                            .max_attempts = NOTIFY_MAX_ATTEMPTS,
                            .delay_ms = 0};
    rc = rc ? rc : retry_enqueue_with(tx, &o, NULL, e);
    json_decref(meta);
    json_decref(payload);
    return rc;
}

/* ---- the daily summary's figures -------------------------------------------------------- */

/* COUNT(*) of sql with $1 = tenant and, when until > since, $2/$3 = the window. */
static int count_of(db_conn *c, const char *sql, const char *tenant, int64_t since, int64_t until,
                    int64_t *out, err *e)
{
    db_stmt *s = db_prepare(c, sql, e);
    if (!s)
        return db_err_code(e);
    db_bind_text(s, 1, tenant);
    if (until > since) {
        db_bind_int64(s, 2, since);
        db_bind_int64(s, 3, until);
    }
    int rc = db_step(s, e);
    *out = rc == DB_ROW ? db_col_int64(s, 0) : 0;
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

static int orders_by_status(db_conn *c, const char *tenant, int64_t since, int64_t until,
                            json_t *by, int64_t *total, err *e)
{
    db_stmt *s = db_prepare(c,
                            "SELECT status, COUNT(*) FROM orders WHERE tenant_id = $1 "
                            "AND created_at >= $2 AND created_at < $3 "
                            "GROUP BY status ORDER BY status",
                            e);
    if (!s)
        return db_err_code(e);
    db_bind_text(s, 1, tenant);
    db_bind_int64(s, 2, since);
    db_bind_int64(s, 3, until);
    int rc;
    *total = 0;
    while ((rc = db_step(s, e)) == DB_ROW) {
        int64_t n = db_col_int64(s, 1);
        *total += n;
        if (json_object_set_new(by, db_col_text(s, 0), json_integer(n)) != 0) {
            rc = err_set(e, F3_ENOMEM, "out of memory");
            break;
        }
    }
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

int notify_summary_of(db_conn *c, const char *tenant_id, int64_t since_ms, int64_t until_ms,
                      json_t **out, err *e)
{
    *out = NULL;
    json_t *by = json_object();
    int64_t total = 0, jobs = 0, retries = 0, dead = 0, reviews = 0;
    int rc = by ? orders_by_status(c, tenant_id, since_ms, until_ms, by, &total, e)
                : err_set(e, F3_ENOMEM, "out of memory");
    rc = rc ? rc
            : count_of(c,
                       "SELECT COUNT(*) FROM print_jobs WHERE tenant_id = $1 AND status = "
                       "'FAILED' AND updated_at >= $2 AND updated_at < $3",
                       tenant_id, since_ms, until_ms, &jobs, e);
    rc = rc ? rc
            : count_of(c,
                       "SELECT COUNT(*) FROM retry_queue WHERE tenant_id = $1 AND status = "
                       "'FAILED' AND updated_at >= $2 AND updated_at < $3",
                       tenant_id, since_ms, until_ms, &retries, e);
    /* Bus jobs of the tenant that failed for good (as the dead-letter watch saw them). */
    rc = rc ? rc
            : count_of(c,
                       "SELECT COUNT(*) FROM bus_dead_letter_alerts WHERE tenant_id = $1 AND "
                       "finished_at >= $2 AND finished_at < $3",
                       tenant_id, since_ms, until_ms, &dead, e);
    /* Reviews still open now, whenever they were raised: no time window. */
    rc = rc ? rc
            : count_of(c,
                       "SELECT COUNT(*) FROM orders WHERE tenant_id = $1 AND review_reason IS "
                       "NOT NULL",
                       tenant_id, 0, 0, &reviews, e);
    if (rc) {
        json_decref(by);
        return rc;
    }
    *out = json_pack("{s:I, s:I, s:o, s:I, s:{s:I, s:I, s:I}, s:I}", "since", (json_int_t)since_ms,
                     "until", (json_int_t)until_ms, "ordersByStatus", by, "ordersTotal",
                     (json_int_t)total, "failures", "printJobs", (json_int_t)jobs, "retryEntries",
                     (json_int_t)retries, "deadLetteredEvents", (json_int_t)dead, "pendingReviews",
                     (json_int_t)reviews);
    return *out ? 0 : err_set(e, F3_ENOMEM, "out of memory");
}

typedef struct summary_tx {
    const char *tenant_id;
    int64_t now;
} summary_tx;

static int summary_fn(db_conn *c, void *ctx, err *e)
{
    summary_tx *t = ctx;
    json_t *summary = NULL;
    int rc = notify_summary_of(c, t->tenant_id, t->now - NOTIFY_DAY_MS, t->now, &summary, e);
    if (rc)
        return rc;
    json_t *payload = json_pack("{s:s, s:o}", "template", "summary", "summary", summary);
    retry_enqueue_opts o = {.tenant_id = t->tenant_id,
                            .type = RETRY_NOTIFICATION,
                            .payload = payload,
                            .max_attempts = NOTIFY_MAX_ATTEMPTS,
                            .now_ms = t->now};
    rc = payload ? retry_enqueue_with(c, &o, NULL, e) : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(payload);
    return rc;
}

/* The ids of the active tenants (caller frees each and the array). */
static int active_tenants(db_conn *c, char ***out, size_t *n, err *e)
{
    *out = NULL;
    *n = 0;
    db_stmt *s = db_prepare(c, "SELECT id FROM tenants WHERE active = TRUE ORDER BY id", e);
    if (!s)
        return db_err_code(e);
    int rc;
    while ((rc = db_step(s, e)) == DB_ROW) {
        char **grown = realloc(*out, (*n + 1) * sizeof *grown);
        char *id = str_dup(db_col_text(s, 0));
        if (!grown || !id) {
            free(id);
            if (grown)
                *out = grown;
            rc = err_set(e, F3_ENOMEM, "out of memory");
            break;
        }
        *out = grown;
        (*out)[(*n)++] = id;
    }
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

int notify_queue_summaries(db *d, int64_t now_ms, int *queued, err *e)
{
    if (queued)
        *queued = 0;
    db_conn *c = db_acquire(d, e);
    if (!c)
        return db_err_code(e);
    char **tenants = NULL;
    size_t n = 0;
    int rc = active_tenants(c, &tenants, &n, e);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        summary_tx t = {tenants[i], now_ms ? now_ms : clock_now_ms()};
        rc = db_tx(c, summary_fn, &t, e);
        if (rc == 0 && queued)
            (*queued)++;
    }
    for (size_t i = 0; i < n; i++)
        free(tenants[i]);
    free(tenants);
    db_release(c);
    return rc;
}

/* ---- the sender ------------------------------------------------------------------------- */

struct notify {
    db *db;
    bool alerts, summaries; /* what is mailed */
    char *host, *user, *pass, *from, *operator_email, *admin_email, *app_url;
    int port;
    bool secure;
    char summary_queue[96];
};

static char *opt_dup(const config *c, const char *key)
{
    const char *v = config_get(c, key);
    return v && *v ? str_dup(v) : NULL;
}

void notify_free(notify *n)
{
    if (!n)
        return;
    free(n->host);
    free(n->user);
    if (n->pass)
        crypto_wipe(n->pass, strlen(n->pass));
    free(n->pass);
    free(n->from);
    free(n->operator_email);
    free(n->admin_email);
    free(n->app_url);
    free(n);
}

static const char *disabled_reason(const notify *n, bool enabled)
{
    if (!enabled)
        return "NOTIFICATIONS_ENABLED is false";
    if (!n->host)
        return "SMTP_HOST is not set";
    if (!n->operator_email)
        return "OPERATOR_EMAIL is not set";
    return NULL;
}

notify *notify_new(const config *c, db *d, err *e)
{
    notify *n = calloc(1, sizeof *n);
    if (!n) {
        err_set(e, F3_ENOMEM, "out of memory");
        return NULL;
    }
    n->db = d;
    n->host = opt_dup(c, "SMTP_HOST");
    n->user = opt_dup(c, "SMTP_USER");
    n->pass = opt_dup(c, "SMTP_PASS");
    n->from = opt_dup(c, "SMTP_FROM");
    n->operator_email = opt_dup(c, "OPERATOR_EMAIL");
    n->admin_email = opt_dup(c, "ADMIN_EMAIL");
    n->app_url = opt_dup(c, "APP_URL");
    n->port = (int)config_get_int(c, "SMTP_PORT");
    n->secure = config_get_bool(c, "SMTP_SECURE");
    if (!n->from)
        n->from = str_dup(NOTIFY_DEFAULT_FROM);
    bool enabled = config_get_bool(c, "NOTIFICATIONS_ENABLED");
    if (!n->from) {
        notify_free(n);
        err_set(e, F3_ENOMEM, "out of memory");
        return NULL;
    }
    const char *why = disabled_reason(n, enabled);
    n->alerts = why == NULL;
    n->summaries = enabled && n->host && n->admin_email;
    if (why)
        log_info("operator e-mail alerts are off: alerts are kept in the event log only", "reason",
                 why);
    else
        log_info("operator e-mail alerts are on", "smtpHost", n->host, "operator",
                 n->operator_email, "summary", n->summaries ? n->admin_email : "off");
    return n;
}

bool notify_enabled(const notify *n)
{
    return n && n->alerts;
}

static int send_rendered(notify *n, const char *to, const notify_rendered *r, const char *id,
                         err *e)
{
    const char *rcpts[] = {to, NULL};
    char mid[128];
    snprintf(mid, sizeof mid, "%s@%s", id, strrchr(n->from, '@') + 1);
    mail_message m = {.from = n->from,
                      .from_name = "Forma3D.Connect",
                      .to = rcpts,
                      .subject = r->subject,
                      .text = r->text,
                      .html = r->html,
                      .message_id = mid};
    /* A password never crosses the network in clear: with credentials, STARTTLS is required
     * unless the server is this machine (a local relay or the SMTP sink). */
    bool local =
        str_eq(n->host, "127.0.0.1") || str_eq(n->host, "localhost") || str_eq(n->host, "::1");
    mail_smtp_opts o = {.host = n->host,
                        .port = n->port,
                        .secure = n->secure,
                        .require_tls = n->user && *n->user && !local,
                        .user = n->user,
                        .pass = n->pass};
    return mail_send(&o, &m, e);
}

typedef struct sent_tx {
    const retry_entry *en;
    const char *kind;
    const char *to;
} sent_tx;

static int sent_fn(db_conn *c, void *ctx, err *e)
{
    sent_tx *t = ctx;
    json_t *meta = json_pack("{s:s, s:s, s:s}", "kind", t->kind, "recipient", t->to, "retryEntryId",
                             t->en->id);
    char msg[160];
    snprintf(msg, sizeof msg, "Operator alert sent: %s", t->kind);
    eventlog_entry en = {.tenant_id = t->en->tenant_id,
                         .event_type = NOTIFY_SENT_EVENT,
                         .severity = EVENTLOG_INFO,
                         .message = msg,
                         .metadata = meta};
    int rc = meta ? eventlog_write(c, &en, NULL, e) : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(meta);
    return rc;
}

/* Records the sent alert; a failure here must not make the mail go out twice. */
static void record_sent(notify *n, const retry_entry *en, const char *kind)
{
    err e = {0};
    sent_tx t = {en, kind, n->operator_email};
    db_conn *c = db_acquire(n->db, &e);
    int rc = c ? db_tx(c, sent_fn, &t, &e) : db_err_code(&e);
    db_release(c);
    if (rc)
        log_warn("alert sent but not recorded in the event log", "id", en->id, "reason", e.msg);
}

static int send_alert(notify *n, const retry_entry *en, err *e)
{
    const char *kind_name = NULL;
    json_t *fields = NULL;
    int64_t raised = 0;
    int rc = json_get_string(en->payload, "kind", &kind_name, e);
    rc = rc ? rc : json_opt_object(en->payload, "fields", &fields, NULL, e);
    rc = rc ? rc : json_opt_int(en->payload, "raisedAt", &raised, 0, e);
    int kind = rc ? -1 : notify_kind_parse(kind_name);
    if (rc == 0 && kind < 0)
        rc = err_set(e, F3_EINVAL, "notify: unknown alert kind '%s'", kind_name);
    if (rc)
        return F3_EINVAL;
    if (!n->alerts) {
        log_debug("operator alert not mailed (alerts are off)", "id", en->id, "kind", kind_name);
        return 0;
    }
    notify_rendered r;
    rc = notify_render_alert((notify_kind)kind, fields, n->app_url, raised, &r, e);
    rc = rc ? rc : send_rendered(n, n->operator_email, &r, en->id, e);
    notify_rendered_free(&r);
    if (rc == 0) {
        log_info("operator alert mailed", "id", en->id, "kind", kind_name, "to", n->operator_email);
        record_sent(n, en, kind_name);
    }
    return rc;
}

static int send_summary(notify *n, const retry_entry *en, err *e)
{
    json_t *summary = NULL;
    if (json_get_object(en->payload, "summary", &summary, e) != 0)
        return F3_EINVAL;
    if (!n->summaries) {
        log_debug("daily summary not mailed (summary mail is off)", "id", en->id);
        return 0;
    }
    notify_rendered r;
    int rc = notify_render_summary(summary, n->app_url, &r, e);
    rc = rc ? rc : send_rendered(n, n->admin_email, &r, en->id, e);
    notify_rendered_free(&r);
    if (rc == 0)
        log_info("daily summary mailed", "id", en->id, "to", n->admin_email);
    return rc;
}

static int notification_handler(const retry_entry *en, void *ctx, err *e)
{
    notify *n = ctx;
    const char *template = NULL;
    if (json_get_string(en->payload, "template", &template, e) != 0)
        return F3_EINVAL;
    if (strcmp(template, "alert") == 0)
        return send_alert(n, en, e);
    if (strcmp(template, "summary") == 0)
        return send_summary(n, en, e);
    return err_set(e, F3_EINVAL, "notify: unknown template '%s'", template);
}

int notify_register(notify *n, retry_queue *rq, err *e)
{
    return retry_register(rq, RETRY_NOTIFICATION, notification_handler, n, e);
}

static int summary_job(bus_delivery *dl, void *ctx, err *e)
{
    (void)dl;
    notify *n = ctx;
    if (!n->summaries)
        return 0;
    int queued = 0;
    int rc = notify_queue_summaries(n->db, clock_now_ms(), &queued, e);
    char q[16];
    snprintf(q, sizeof q, "%d", queued);
    if (rc == 0)
        log_info("daily summaries queued", "tenants", q);
    return rc;
}

int notify_schedule_summary(notify *n, bus *b, bus_store *s, err *e)
{
    snprintf(n->summary_queue, sizeof n->summary_queue, "%s@%s", NOTIFY_SUMMARY_JOB,
             bus_service_name(bus_self(b)));
    /* Bus default lease (30 s), renewed every lease/3 while the run goes on (bus/worker.c):
     * a long run keeps its job, a killed process's run is taken over within 30 s. */
    bus_queue_opts one = {.concurrency = 1};
    int rc = bus_worker_register(bus_worker_of(b), n->summary_queue, summary_job, n, &one, e);
    if (rc)
        return rc;
    bus_repeatable r = {.queue = n->summary_queue,
                        .repeat_id = "notify-daily-summary",
                        .name = NOTIFY_SUMMARY_JOB,
                        .data = "{}",
                        .cron = NOTIFY_SUMMARY_CRON};
    return bus_store_repeatable_upsert(s, &r, clock_now_ms(), e);
}
