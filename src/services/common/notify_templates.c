/*
 * notify_templates.c - the e-mail templates of notify.h: the operator alert (one table row
 * per kind: title and what to do) and the daily summary, each as plain text and HTML.
 * Every value from outside goes through html_text() in the HTML part and loses its line
 * breaks in the subject. Renders only: never sends, never touches the database.
 */
#include "services/common/notify.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"

#include <stdlib.h>
#include <string.h>

#define BRAND "Forma3D.Connect"

typedef struct alert_template {
    notify_kind kind;
    const char *title;
    const char *advice;
} alert_template;

static const alert_template alerts[NOTIFY_KIND_COUNT] = {
    {NOTIFY_FULFILLMENT_FAILED, "Fulfillment failed permanently",
     "The order was not marked fulfilled in Shopify and will not be retried. Check the order, "
     "fix the cause and fulfil it from the dashboard (or force the fulfillment)."},
    {NOTIFY_PRINT_JOB_FAILED, "Print job failed",
     "Check the printer and the job in SimplyPrint, then reprint or cancel the job."},
    {NOTIFY_CANCELLATION_REVIEW, "Cancellation needs review",
     "The order was cancelled while parts were already printing. Decide whether to stop the "
     "printer or keep the parts."},
    {NOTIFY_RETRY_EXHAUSTED, "Retries exhausted",
     "An automatic retry gave up. Fix the cause, then retry the entry from the retry queue."},
    {NOTIFY_UNMAPPED_SKU, "Unmapped product (SKU)",
     "An order line has no product mapping, so nothing is printed for it. Add a product "
     "mapping for the SKU; the order is picked up again."},
    {NOTIFY_SHOP_DISCONNECTED, "Shopify shop disconnected",
     "The f3connect app was uninstalled from the shop, so no new orders arrive. Install it "
     "again (or configure the shop's access token) to resume."},
    {NOTIFY_CANCEL_AFTER_DONE, "Order cancelled after completion",
     "Shopify cancelled an order that was already printed (or shipped). Decide what happens "
     "to the parts and whether the customer's parcel must be stopped."},
    {NOTIFY_SHIPMENT_FAILED, "Shipment failed",
     "No shipping label could be created for the order, so it is not shipped or fulfilled. "
     "Check the address and the Sendcloud account, then create the shipment again."},
    {NOTIFY_EVENT_DEAD_LETTERED, "Event could not be handled",
     "An event failed every attempt and was set aside, so what it was for (printing, "
     "shipping, fulfilment of the order) waits. Fix the cause named in the error, then retry "
     "the failed job from the queues page (/admin/queues) or with 'f3connect queues retry'."},
};

static const char html_head[] =
    "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>" BRAND "</title>\n"
    "</head>\n<body style=\"font-family: Arial, sans-serif; line-height: 1.6; color: #333;\">\n"
    "<div style=\"max-width: 600px; margin: 0 auto; padding: 20px;\">\n";

static const char html_foot[] =
    "<div style=\"background: #e9ecef; padding: 15px; font-size: 12px;\">\n"
    "<p>This is an automated message from " BRAND ". Please do not reply directly.</p>\n"
    "</div>\n</div>\n</body>\n</html>\n";

static const char text_foot[] =
    "\n-- \nThis is an automated message from " BRAND ". Please do not reply directly.\n";

void notify_rendered_free(notify_rendered *r)
{
    if (!r)
        return;
    free(r->subject);
    free(r->text);
    free(r->html);
    memset(r, 0, sizeof *r);
}

/* Appends s with & < > " ' as entities. */
static void html_text(buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            buf_puts(b, "&amp;");
            break;
        case '<':
            buf_puts(b, "&lt;");
            break;
        case '>':
            buf_puts(b, "&gt;");
            break;
        case '"':
            buf_puts(b, "&quot;");
            break;
        case '\'':
            buf_puts(b, "&#39;");
            break;
        default:
            buf_putc(b, *s);
        }
    }
}

/* Appends s for a one-line context (a subject): control characters become spaces. */
static void one_line(buf *b, const char *s)
{
    for (; s && *s; s++)
        buf_putc(b, (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
}

/* Appends s percent-encoded for a URL path segment. */
static void url_segment(buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~')
            buf_putc(b, (char)*p);
        else
            buf_printf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
    }
}

/* A detail value as text (caller frees); NULL for values not shown. */
static char *value_text(const json_t *v)
{
    buf b;
    buf_init(&b, 64 * 1024);
    if (json_is_string(v))
        buf_puts(&b, json_string_value(v));
    else if (json_is_integer(v))
        buf_printf(&b, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        buf_printf(&b, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        buf_puts(&b, json_is_true(v) ? "yes" : "no");
    else if (json_is_object(v) || json_is_array(v))
        json_dump_buf(v, &b);
    else {
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b);
}

static bool special_field(const char *key)
{
    return strcmp(key, "message") == 0 || strcmp(key, "orderId") == 0 ||
           strcmp(key, "orderNumber") == 0;
}

static void dashboard_link(buf *b, const char *app_url, const char *order_id)
{
    size_t n = strlen(app_url);
    buf_append(b, app_url, n && app_url[n - 1] == '/' ? n - 1 : n);
    if (order_id && *order_id) {
        buf_puts(b, "/orders/");
        url_segment(b, order_id);
    }
}

static void alert_details(const json_t *fields, buf *text, buf *html)
{
    const char *key;
    json_t *v;
    bool any = false;
    json_object_foreach((json_t *)fields, key, v)
    {
        char *s = special_field(key) ? NULL : value_text(v);
        if (!s)
            continue;
        if (!any) {
            buf_puts(text, "\nDetails:\n");
            buf_puts(html, "<p><strong>Details:</strong></p>\n<table style=\"background: #fff; "
                           "border: 1px solid #dee2e6; font-family: monospace; "
                           "font-size: 12px;\">\n");
            any = true;
        }
        buf_printf(text, "  %s: %s\n", key, s);
        buf_puts(html, "<tr><td style=\"padding-right: 12px;\">");
        html_text(html, key);
        buf_puts(html, "</td><td>");
        html_text(html, s);
        buf_puts(html, "</td></tr>\n");
        free(s);
    }
    if (any)
        buf_puts(html, "</table>\n");
}

static int finish(buf *subject, buf *text, buf *html, notify_rendered *out, err *e)
{
    out->subject = buf_detach(subject);
    out->text = buf_detach(text);
    out->html = buf_detach(html);
    if (!out->subject || !out->text || !out->html) {
        notify_rendered_free(out);
        return err_set(e, F3_ENOMEM, "out of memory");
    }
    return 0;
}

int notify_render_alert(notify_kind kind, const json_t *fields, const char *app_url, int64_t at_ms,
                        notify_rendered *out, err *e)
{
    memset(out, 0, sizeof *out);
    if ((unsigned)kind >= NOTIFY_KIND_COUNT)
        return err_set(e, F3_EINVAL, "notify: unknown alert kind %d", (int)kind);
    if (fields && !json_is_object(fields))
        return err_set(e, F3_EINVAL, "notify: alert fields must be an object");
    const alert_template *t = &alerts[kind];
    const char *message = NULL, *order_id = NULL, *order_number = NULL;
    json_opt_string(fields, "message", &message, NULL, NULL);
    json_opt_string(fields, "orderId", &order_id, NULL, NULL);
    json_opt_string(fields, "orderNumber", &order_number, NULL, NULL);
    char at[CLOCK_ISO_LEN];
    clock_format_iso(at_ms ? at_ms : clock_now_ms(), at);

    buf subject, text, html;
    buf_init(&subject, 998);
    buf_init(&text, 0);
    buf_init(&html, 0);
    buf_printf(&subject, "[" BRAND "] %s", t->title);
    if (order_number && *order_number) {
        buf_puts(&subject, " - order ");
        one_line(&subject, order_number);
    }
    buf_puts(&subject, ": action required");

    buf_printf(&text, BRAND " alert: %s\n\nTime:    %s\n", t->title, at);
    buf_printf(&html,
               "%s<div style=\"background: #dc3545; color: white; padding: 20px;\">\n"
               "<h1>&#9888; %s</h1>\n</div>\n<div style=\"background: #f8f9fa; padding: 20px; "
               "border: 1px solid #dee2e6;\">\n<p><strong>Time:</strong> %s</p>\n",
               html_head, t->title, at);
    if (order_number || order_id) {
        const char *shown = order_number ? order_number : order_id;
        buf_printf(&text, "Order:   %s\n", shown);
        buf_puts(&html, "<p><strong>Order:</strong> ");
        html_text(&html, shown);
        buf_puts(&html, "</p>\n");
    }
    if (message && *message) {
        buf_printf(&text, "Message: %s\n", message);
        buf_puts(&html, "<p><strong>Message:</strong></p>\n<p>");
        html_text(&html, message);
        buf_puts(&html, "</p>\n");
    }
    if (fields)
        alert_details(fields, &text, &html);
    buf_printf(&text, "\nWhat to do: %s\n", t->advice);
    buf_printf(&html, "<p><strong>What to do:</strong> %s</p>\n", t->advice);
    if (app_url && *app_url) {
        buf link;
        buf_init(&link, 0);
        dashboard_link(&link, app_url, order_id);
        buf_printf(&text, "\nOpen the dashboard: %s\n", buf_cstr(&link));
        buf_puts(&html, "<p><a href=\"");
        html_text(&html, buf_cstr(&link));
        buf_puts(&html, "\" style=\"display: inline-block; background: #007bff; color: white; "
                        "padding: 10px 20px; text-decoration: none;\">View in Dashboard</a></p>\n");
        buf_free(&link);
    }
    buf_puts(&text, text_foot);
    buf_printf(&html, "</div>\n%s", html_foot);
    return finish(&subject, &text, &html, out, e);
}

/* ---- the daily summary ---------------------------------------------------------------- */

static int64_t int_at(const json_t *o, const char *path)
{
    int64_t v = 0;
    json_opt_int(o, path, &v, 0, NULL);
    return v;
}

static void summary_row(buf *text, buf *html, const char *label, int64_t n)
{
    buf_printf(text, "  %-28s %lld\n", label, (long long)n);
    buf_puts(html, "<tr><td style=\"padding-right: 24px;\">");
    html_text(html, label);
    buf_printf(html, "</td><td style=\"text-align: right;\">%lld</td></tr>\n", (long long)n);
}

int notify_render_summary(const json_t *summary, const char *app_url, notify_rendered *out, err *e)
{
    memset(out, 0, sizeof *out);
    json_t *by_status = NULL;
    if (!json_is_object(summary) ||
        json_opt_object(summary, "ordersByStatus", &by_status, NULL, e) != 0)
        return err_set(e, F3_EINVAL, "notify: summary must be an object with ordersByStatus");
    char since[CLOCK_ISO_LEN], until[CLOCK_ISO_LEN];
    clock_format_iso(int_at(summary, "since"), since);
    clock_format_iso(int_at(summary, "until"), until);

    buf subject, text, html;
    buf_init(&subject, 998);
    buf_init(&text, 0);
    buf_init(&html, 0);
    buf_printf(&subject, "[" BRAND "] Daily summary for %.10s", until);
    buf_printf(&text, BRAND " daily summary\n%s to %s\n\nOrders received:\n", since, until);
    buf_printf(&html,
               "%s<div style=\"background: #007bff; color: white; padding: 20px;\">\n"
               "<h1>Daily summary</h1>\n<p>%s to %s</p>\n</div>\n<div style=\"background: "
               "#f8f9fa; padding: 20px; border: 1px solid #dee2e6;\">\n"
               "<h2>Orders received</h2>\n<table>\n",
               html_head, since, until);
    const char *key;
    json_t *v;
    json_object_foreach(by_status, key, v)
    {
        if (json_is_integer(v))
            summary_row(&text, &html, key, json_integer_value(v));
    }
    summary_row(&text, &html, "Total", int_at(summary, "ordersTotal"));
    buf_puts(&text, "\nFailures:\n");
    buf_puts(&html, "</table>\n<h2>Failures</h2>\n<table>\n");
    summary_row(&text, &html, "Print jobs failed", int_at(summary, "failures.printJobs"));
    summary_row(&text, &html, "Retries exhausted", int_at(summary, "failures.retryEntries"));
    summary_row(&text, &html, "Events set aside (failed queue jobs)",
                int_at(summary, "failures.deadLetteredEvents"));
    buf_puts(&text, "\nNeeds attention:\n");
    buf_puts(&html, "</table>\n<h2>Needs attention</h2>\n<table>\n");
    summary_row(&text, &html, "Orders waiting for review", int_at(summary, "pendingReviews"));
    buf_puts(&html, "</table>\n");
    if (app_url && *app_url) {
        buf link;
        buf_init(&link, 0);
        dashboard_link(&link, app_url, NULL);
        buf_printf(&text, "\nOpen the dashboard: %s\n", buf_cstr(&link));
        buf_puts(&html, "<p><a href=\"");
        html_text(&html, buf_cstr(&link));
        buf_puts(&html, "\">Open the dashboard</a></p>\n");
        buf_free(&link);
    }
    buf_puts(&text, text_foot);
    buf_printf(&html, "</div>\n%s", html_foot);
    return finish(&subject, &text, &html, out, e);
}
