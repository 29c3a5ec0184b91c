/*
 * shipments.c - the life of a shipment: requested (PENDING row, one per order), created
 * at Sendcloud with its label, status changes applied, cancelled; and the job handlers
 * that drive it (see shipping.h for the flow).
 *
 * Every provider call happens outside a transaction (the worker's rule, bus/worker.h);
 * its outcome is then written in the job's own transaction together with the events it
 * causes and the event-log entries. Transient failures are retried by queueing the next
 * attempt with a delay (exponential, jitter, a longer Retry-After wins), so a retry never
 * holds a worker thread. This file never logs a key or a customer's address.
 */
#include "services/shipping/shipping_internal.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "services/orders/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EV_REQUESTED      "shipment.requested"
#define EV_FAILED         BUS_IEV_SHIPMENT_FAILED
#define EV_CANCEL_REFUSED "shipment.cancel-refused"
#define RETRY_MAX_MS      (3600 * 1000L)

/* What a job's data names. */
typedef struct job_args {
    char tenant_id[SHIPPING_TENANT_MAX + 1];
    char order_id[UUID_STR_LEN + 28];
    int attempt;
} job_args;

/* A shipment row, as the jobs need it. */
typedef struct ship_row {
    char id[UUID_STR_LEN];
    char order_id[UUID_STR_LEN + 28];
    char status[SENDCLOUD_STATUS_NAME_MAX];
    char provider_id[96];
    char parcel_id[32];
    char api_version[4];
} ship_row;

int shipping_enqueue(shipping_service *s, db_conn *tx, const char *queue, const char *job_id,
                     const json_t *data, int64_t delay_ms, err *e)
{
    char *text = json_dumps(data, JSON_COMPACT);
    if (!text)
        return err_set(e, F3_ENOMEM, "out of memory");
    /* The job's name is the queue's without "@service". */
    char short_name[64];
    size_t n = strcspn(queue, "@");
    snprintf(short_name, sizeof short_name, "%.*s", (int)(n < 63 ? n : 63), queue);
    bus_job_opts o = {.job_id = job_id, .delay_ms = delay_ms};
    int rc = bus_store_add(s->store, tx, queue, short_name, text, &o, clock_now_ms(), NULL, e);
    free(text);
    return rc;
}

static int job_args_read(const bus_delivery *dl, job_args *a, err *e)
{
    const bus_job *j = bus_delivery_job(dl);
    json_t *doc = NULL;
    const char *tenant = NULL, *order = NULL;
    int64_t attempt = 1;
    int rc = json_parse(j->data, strlen(j->data), &doc, e);
    if (rc == 0 && (json_get_string(doc, "tenantId", &tenant, e) ||
                    json_get_string(doc, "orderId", &order, e) ||
                    json_opt_int(doc, "attempt", &attempt, 1, e)))
        rc = F3_EINVAL;
    if (rc == 0 && (strlen(tenant) > SHIPPING_TENANT_MAX || strlen(order) >= sizeof a->order_id ||
                    attempt < 1 || attempt > 1000))
        rc = err_set(e, F3_EINVAL, "shipping job: malformed tenantId, orderId or attempt");
    if (rc == 0) {
        snprintf(a->tenant_id, sizeof a->tenant_id, "%s", tenant);
        snprintf(a->order_id, sizeof a->order_id, "%s", order);
        a->attempt = (int)attempt;
    }
    json_decref(doc);
    return rc ? F3_EINVAL : 0;
}

static int enqueue_attempt(shipping_service *s, db_conn *tx, const char *queue, const char *kind,
                           const char *tenant_id, const char *order_id, int attempt,
                           int64_t delay_ms, err *e)
{
    char job_id[256];
    snprintf(job_id, sizeof job_id, "%s:%s:%s:%d", kind, tenant_id, order_id, attempt);
    json_t *data =
        json_pack("{s:s,s:s,s:i}", "tenantId", tenant_id, "orderId", order_id, "attempt", attempt);
    if (!data)
        return err_set(e, F3_ENOMEM, "out of memory");
    int rc = shipping_enqueue(s, tx, queue, job_id, data, delay_ms, e);
    json_decref(data);
    return rc;
}

static int load_row(db_conn *c, const char *tenant_id, const char *order_id, ship_row *r, err *e)
{
    memset(r, 0, sizeof *r);
    const char *t[] = {tenant_id, order_id};
    db_stmt *st = db_prepare_texts(c,
                                   "SELECT id, order_id, status, provider_shipment_id,"
                                   " provider_parcel_id, api_version FROM shipments"
                                   " WHERE tenant_id = $1 AND order_id = $2",
                                   t, 2, e);
    if (!st)
        return db_err_code(e);
    int rc = db_step(st, e);
    if (rc == DB_ROW) {
        db_col_copy(st, 0, r->id, sizeof r->id);
        db_col_copy(st, 1, r->order_id, sizeof r->order_id);
        db_col_copy(st, 2, r->status, sizeof r->status);
        db_col_copy(st, 3, r->provider_id, sizeof r->provider_id);
        db_col_copy(st, 4, r->parcel_id, sizeof r->parcel_id);
        db_col_copy(st, 5, r->api_version, sizeof r->api_version);
    }
    db_finalize(st);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? F3_ENOTFOUND : rc;
}

static int log_event(db_conn *tx, const char *tenant_id, const char *order_id, const char *type,
                     eventlog_severity sev, const char *message, const json_t *meta, err *e)
{
    eventlog_entry en = {.tenant_id = tenant_id,
                         .event_type = type,
                         .severity = sev,
                         .message = message,
                         .order_id = order_id,
                         .metadata = meta};
    return eventlog_write(tx, &en, NULL, e);
}

/* ---- requesting ---------------------------------------------------------------------- */

static int tenant_connected(db_conn *c, const char *tenant_id, bool *connected, err *e)
{
    *connected = false;
    const char *t[] = {tenant_id};
    db_stmt *st = db_prepare_texts(
        c, "SELECT status FROM sendcloud_connections WHERE tenant_id = $1", t, 1, e);
    if (!st)
        return db_err_code(e);
    int rc = db_step(st, e);
    if (rc == DB_ROW)
        *connected = str_eq(db_col_text(st, 0), "CONNECTED");
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

/* Whether the order is CANCELLED (read through the orders service). */
static int order_cancelled(db_conn *c, const char *tenant_id, const char *order_id, bool *out,
                           err *e)
{
    char status[32];
    int rc = orders_client_order_status(c, tenant_id, order_id, status, e);
    *out = rc == 0 && str_eq(status, "CANCELLED");
    return rc;
}

int shipping_request(shipping_service *s, db_conn *tx, const char *tenant_id, const char *order_id,
                     bool *created, char *shipment_id, err *e)
{
    bool made = false, connected = false, cancelled = false;
    if (shipment_id)
        shipment_id[0] = '\0';
    int rc = order_cancelled(tx, tenant_id, order_id, &cancelled, e);
    rc = rc ? rc : tenant_connected(tx, tenant_id, &connected, e);
    if (rc == 0 && connected && !cancelled) {
        char id[UUID_STR_LEN], now[24];
        uuid_v7(id);
        db_ms_text(clock_now_ms(), now);
        const char *t[] = {id, tenant_id, order_id, now};
        int64_t n = 0;
        rc = db_exec_texts(tx,
                           "INSERT INTO shipments (id, tenant_id, order_id, provider,"
                           " provider_reference, status, created_at, updated_at)"
                           " VALUES ($1, $2, $3, 'sendcloud', $3, 'PENDING', CAST($4 AS BIGINT),"
                           " CAST($4 AS BIGINT)) ON CONFLICT (tenant_id, order_id) DO NOTHING",
                           t, 4, &n, e);
        made = rc == 0 && n > 0;
        if (made)
            rc = enqueue_attempt(s, tx, SHIPPING_CREATE_QUEUE, "create", tenant_id, order_id, 1, 0,
                                 e);
        if (made && rc == 0)
            rc = log_event(tx, tenant_id, order_id, EV_REQUESTED, EVENTLOG_INFO,
                           "Shipment requested from Sendcloud", NULL, e);
    }
    if (rc == 0 && !connected)
        log_info("no Sendcloud connection: shipment not created", "tenantId", tenant_id, "orderId",
                 order_id);
    if (rc == 0 && shipment_id) {
        ship_row r;
        int lrc = load_row(tx, tenant_id, order_id, &r, e);
        if (lrc == 0)
            snprintf(shipment_id, UUID_STR_LEN, "%s", r.id);
        else if (lrc != F3_ENOTFOUND)
            rc = lrc;
    }
    if (created)
        *created = made;
    return rc;
}

int shipping_on_ready(bus_delivery *dl, void *ctx, err *e)
{
    shipping_service *s = ctx;
    const bus_envelope *env = bus_delivery_envelope(dl);
    const char *order_id = json_string_value(json_object_get(env->root, "orderId"));
    db_conn *tx = bus_delivery_tx(dl, e);
    if (!tx)
        return db_err_code(e);
    bool created = false;
    int rc = shipping_request(s, tx, env->tenant_id, order_id, &created, NULL, e);
    if (rc == F3_ENOTFOUND) {
        log_warn("order.ready-for-fulfillment for an unknown order ignored", "orderId", order_id);
        return F3_EPERMANENT;
    }
    if (rc == 0 && created)
        log_info("shipment requested", "orderId", order_id, "tenantId", env->tenant_id);
    return rc;
}

/* ---- status changes ------------------------------------------------------------------ */

/* How far along its life a status is, for ordering reports with equal timestamps. */
static int status_rank(const char *status)
{
    static const char *const order[] = {
        SENDCLOUD_STATUS_PENDING,
        "NO_LABEL",
        "ANNOUNCING",
        "ANNOUNCEMENT_FAILED",
        SENDCLOUD_STATUS_READY,
        SENDCLOUD_STATUS_IN_TRANSIT,
        "DELIVERY_ATTEMPT_FAILED",
        "EXCEPTION",
        "AWAITING_CUSTOMER_PICKUP",
        "OUT_FOR_DELIVERY",
        SENDCLOUD_STATUS_CANCELLING,
        SENDCLOUD_STATUS_DELIVERED,
        SENDCLOUD_STATUS_CANCELLED,
    };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (str_eq(status, order[i]))
            return (int)i;
    return 0;
}

int shipping_apply_status(shipping_service *s, db_conn *tx, const char *tenant_id,
                          const char *shipment_id, const shipping_status_report *r, bool *changed,
                          err *e)
{
    if (changed)
        *changed = false;
    const char *t[] = {tenant_id, shipment_id};
    /* Reports of one parcel are applied one at a time: this no-op update takes the row's
     * lock (PostgreSQL; SQLite has one writer anyway), and the read after it sees what a
     * concurrent report committed meanwhile. */
    int lrc = db_exec_texts(
        tx, "UPDATE shipments SET updated_at = updated_at WHERE tenant_id = $1 AND id = $2", t, 2,
        NULL, e);
    if (lrc)
        return lrc;
    db_stmt *st = db_prepare_texts(
        tx, "SELECT order_id, status, status_at FROM shipments WHERE tenant_id = $1 AND id = $2", t,
        2, e);
    if (!st)
        return db_err_code(e);
    char order_id[UUID_STR_LEN + 28], previous[SENDCLOUD_STATUS_NAME_MAX];
    int64_t status_at = 0;
    int rc = db_step(st, e);
    if (rc == DB_ROW) {
        db_col_copy(st, 0, order_id, sizeof order_id);
        db_col_copy(st, 1, previous, sizeof previous);
        status_at = db_col_int64(st, 2);
    }
    db_finalize(st);
    if (rc == DB_DONE)
        return err_set(e, F3_ENOTFOUND, "shipment not found: %s", shipment_id);
    if (rc < 0)
        return rc;
    /* A PENDING shipment belongs to its creation job, which stores the status Sendcloud
     * answered with; a webhook racing it (Sendcloud announces before we have its answer)
     * must not move it, or the job would take the shipment for cancelled. */
    if (str_eq(previous, SENDCLOUD_STATUS_PENDING) && !str_eq(r->source, "cancellation")) {
        log_info("Sendcloud status for a shipment still being created ignored", "shipmentId",
                 shipment_id, "status", r->status);
        return 0;
    }
    /* Deliveries arrive out of order, and two changes can carry the same timestamp: then
     * the one further along the parcel's life wins. */
    if (r->at_ms < status_at ||
        (r->at_ms == status_at && status_rank(r->status) <= status_rank(previous))) {
        log_info("stale Sendcloud status ignored", "shipmentId", shipment_id, "status", r->status);
        return 0;
    }
    bool same = str_eq(previous, r->status);
    char at[24], now[24];
    db_ms_text(r->at_ms, at);
    db_ms_text(clock_now_ms(), now);
    const char *u[] = {tenant_id,
                       shipment_id,
                       r->status,
                       r->status_message,
                       at,
                       r->tracking_number && *r->tracking_number ? r->tracking_number : NULL,
                       r->tracking_url && *r->tracking_url ? r->tracking_url : NULL,
                       r->carrier && *r->carrier ? r->carrier : NULL,
                       now,
                       sendcloud_status_handed_over(r->status) ? "1" : "0",
                       str_eq(r->status, SENDCLOUD_STATUS_DELIVERED) ? "1" : "0",
                       str_eq(r->status, SENDCLOUD_STATUS_CANCELLED) ? "1" : "0"};
    rc = db_exec_texts(
        tx,
        "UPDATE shipments SET status = $3, status_message = COALESCE($4, status_message),"
        " status_at = CAST($5 AS BIGINT),"
        " tracking_number = COALESCE(tracking_number, $6),"
        " tracking_url = COALESCE(tracking_url, $7), carrier = COALESCE(carrier, $8),"
        " shipped_at = CASE WHEN $10 = '1' AND shipped_at IS NULL THEN CAST($9 AS BIGINT)"
        " ELSE shipped_at END,"
        " delivered_at = CASE WHEN $11 = '1' AND delivered_at IS NULL THEN CAST($9 AS BIGINT)"
        " ELSE delivered_at END,"
        " cancelled_at = CASE WHEN $12 = '1' AND cancelled_at IS NULL THEN CAST($9 AS BIGINT)"
        " ELSE cancelled_at END,"
        " updated_at = CAST($9 AS BIGINT) WHERE tenant_id = $1 AND id = $2",
        u, 12, NULL, e);
    if (rc || same)
        return rc;
    json_t *fields = json_pack("{s:s,s:s,s:s,s:s}", "shipmentId", shipment_id, "orderId", order_id,
                               "previousStatus", previous, "newStatus", r->status);
    json_t *meta = json_pack("{s:s,s:s,s:s,s:s?}", "previousStatus", previous, "newStatus",
                             r->status, "source", r->source, "statusMessage", r->status_message);
    buf msg;
    buf_init(&msg, 512);
    buf_printf(&msg, "Shipment status %s -> %s (%s)", previous, r->status, r->source);
    rc = !fields || !meta
             ? err_set(e, F3_ENOMEM, "out of memory")
             : bus_publish(s->bus, tx, BUS_EV_SHIPMENT_STATUS_CHANGED, tenant_id, fields, e);
    rc = rc ? rc
            : log_event(tx, tenant_id, order_id, BUS_IEV_SENDCLOUD_SHIPMENT_STATUS_CHANGED,
                        EVENTLOG_INFO, buf_cstr(&msg), meta, e);
    if (rc == 0 && changed)
        *changed = true;
    if (rc == 0)
        log_info("shipment status changed", "shipmentId", shipment_id, "from", previous, "to",
                 r->status, "source", r->source);
    buf_free(&msg);
    json_decref(fields);
    json_decref(meta);
    return rc;
}

/* ---- failing ------------------------------------------------------------------------- */

/* Marks a PENDING shipment FAILED: ERROR in the event log and an operator alert. */
static int mark_failed(db_conn *tx, const job_args *a, const ship_row *r, const char *why, err *e)
{
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *t[] = {a->tenant_id, r->id, why, now};
    int rc = db_exec_texts(tx,
                           "UPDATE shipments SET status = 'FAILED', error_message = $3,"
                           " updated_at = CAST($4 AS BIGINT)"
                           " WHERE tenant_id = $1 AND id = $2 AND status = 'PENDING'",
                           t, 4, NULL, e);
    json_t *meta =
        json_pack("{s:s,s:s,s:i}", "shipmentId", r->id, "error", why, "attempts", a->attempt);
    buf msg;
    buf_init(&msg, 1024);
    buf_printf(&msg, "Shipment could not be created with Sendcloud: %s", why);
    rc = rc ? rc
            : log_event(tx, a->tenant_id, a->order_id, EV_FAILED, EVENTLOG_ERROR, buf_cstr(&msg),
                        meta, e);
    rc = rc ? rc
            : shipping_alert(tx, a->tenant_id, a->order_id, NOTIFY_SHIPMENT_FAILED, buf_cstr(&msg),
                             meta, e);
    log_error("shipment failed", "orderId", a->order_id, "reason", why);
    buf_free(&msg);
    json_decref(meta);
    return rc;
}

static int64_t retry_delay(shipping_service *s, int attempt, long retry_after_ms)
{
    return http_client_backoff_ex(attempt, (long)s->retry_base_ms, RETRY_MAX_MS, retry_after_ms,
                                  HTTP_BACKOFF_JITTER);
}

/* A transient failure: the next attempt queued with a delay, or FAILED when none is left. */
static int schedule_retry(shipping_service *s, db_conn *tx, const char *queue, const char *kind,
                          const job_args *a, const ship_row *r, const char *why,
                          long retry_after_ms, err *e)
{
    if (a->attempt >= s->max_attempts) {
        char text[ERR_MSG_MAX + 64];
        snprintf(text, sizeof text, "gave up after %d attempts: %s", a->attempt, why);
        if (str_eq(kind, "create"))
            return mark_failed(tx, a, r, text, e);
        json_t *meta = json_pack("{s:s,s:s}", "shipmentId", r->id, "error", text);
        int rc = shipping_alert(tx, a->tenant_id, a->order_id, NOTIFY_CANCELLATION_REVIEW,
                                "Shipment could not be cancelled with Sendcloud", meta, e);
        json_decref(meta);
        return rc;
    }
    char now[24], n[16];
    db_ms_text(clock_now_ms(), now);
    snprintf(n, sizeof n, "%d", a->attempt);
    const char *t[] = {a->tenant_id, r->id, why, n, now};
    int rc = db_exec_texts(tx,
                           "UPDATE shipments SET error_message = $3, attempts = CAST($4 AS BIGINT),"
                           " updated_at = CAST($5 AS BIGINT) WHERE tenant_id = $1 AND id = $2",
                           t, 5, NULL, e);
    int64_t delay = retry_delay(s, a->attempt, retry_after_ms);
    rc = rc ? rc
            : enqueue_attempt(s, tx, queue, kind, a->tenant_id, a->order_id, a->attempt + 1, delay,
                              e);
    char d[24];
    snprintf(d, sizeof d, "%" PRId64, delay);
    log_warn("Sendcloud call failed, will retry", "kind", kind, "orderId", a->order_id, "attempt",
             n, "delayMs", d, "reason", why);
    return rc;
}

/* ---- creating ------------------------------------------------------------------------ */

typedef enum outcome {
    OUT_OK,
    OUT_TRANSIENT,
    OUT_PERMANENT,
    OUT_ORDER_CANCELLED,
    OUT_SKIP,
} outcome;

/* What the creation job learned before writing. */
typedef struct creation {
    outcome out;
    ship_row row;
    sendcloud_shipment sh;
    buf label;
    bool label_ok;
    int64_t weight;
    char version[4];
    char option[128];
    long retry_after_ms;
    err why;
} creation;

static void request_from(const orders_shipping_view *v, const shipping_conn *conn, int64_t weight,
                         sendcloud_shipment_request *rq)
{
    *rq = (sendcloud_shipment_request){
        .external_reference = v->id,
        .order_number = v->number,
        .to = {.name = v->name ? v->name : v->customer_name,
               .company = v->company,
               .address_line_1 = v->address1,
               .address_line_2 = v->address2,
               .postal_code = v->zip,
               .city = v->city,
               .country_code = v->country_code,
               .state_code = v->province_code,
               .phone = v->phone,
               .email = v->customer_email},
        .sender_address_id = conn->sender_address_id,
        .shipping_option_code = conn->shipping_option_code,
        .shipping_method_id = conn->shipping_method_id,
        .weight_grams = weight,
        .total_minor = v->total_minor,
        .currency_exponent = v->currency_exponent,
        .currency = v->currency,
    };
}

static void classify(creation *cr, int rc, const sendcloud_call *call)
{
    if (rc == F3_ETRANSIENT || rc == F3_EBUSY) {
        cr->out = OUT_TRANSIENT;
        cr->retry_after_ms = call ? call->retry_after_ms : -1;
    } else {
        cr->out = OUT_PERMANENT;
    }
}

/* Reads what is needed and calls Sendcloud; no transaction is open meanwhile. */
static void create_at_provider(shipping_service *s, const job_args *a, creation *cr)
{
    err *e = &cr->why;
    shipping_conn conn;
    orders_shipping_view v;
    memset(&conn, 0, sizeof conn);
    memset(&v, 0, sizeof v);
    sendcloud_client *client = NULL;
    bool cancelled = false;
    db_conn *c = db_acquire(s->db, e);
    int rc = c ? load_row(c, a->tenant_id, a->order_id, &cr->row, e) : db_err_code(e);
    if (rc == F3_ENOTFOUND || (rc == 0 && !str_eq(cr->row.status, SENDCLOUD_STATUS_PENDING))) {
        cr->out = OUT_SKIP;
        db_release(c);
        return;
    }
    rc = rc ? rc : order_cancelled(c, a->tenant_id, a->order_id, &cancelled, e);
    if (rc == 0 && cancelled) {
        cr->out = OUT_ORDER_CANCELLED;
        db_release(c);
        return;
    }
    rc = rc ? rc : shipping_conn_load(s, c, a->tenant_id, &conn, e);
    rc = rc ? rc : orders_client_shipping_view(c, a->tenant_id, a->order_id, &v, e);
    db_release(c);
    if (rc == F3_ENOTFOUND && conn.tenant_id[0] == '\0')
        rc = err_set(e, F3_EPERMANENT, "Sendcloud is not connected for this tenant");
    if (rc) {
        /* Database trouble is worth another attempt; anything else is not. */
        cr->out = rc == F3_EBUSY || rc == F3_EIO ? OUT_TRANSIENT : OUT_PERMANENT;
        cr->retry_after_ms = -1;
        goto out;
    }
    client = shipping_conn_client(s, &conn, NULL, e);
    if (!client) {
        cr->out = OUT_PERMANENT;
        goto out;
    }
    cr->weight = v.weight_grams > 0 ? v.weight_grams : s->default_weight_grams;
    snprintf(cr->version, sizeof cr->version, "%s",
             sendcloud_client_version(client) == SENDCLOUD_API_V2 ? "v2" : "v3");
    snprintf(cr->option, sizeof cr->option, "%s",
             conn.shipping_option_code ? conn.shipping_option_code : "");
    sendcloud_shipment_request rq;
    request_from(&v, &conn, cr->weight, &rq);
    sendcloud_call call;
    rc = sendcloud_create_shipment(client, &rq, &cr->sh, &call, e);
    if (rc == F3_EINVAL)
        rc = F3_EPERMANENT; /* the order's data cannot make a shipment: no retry helps */
    if (rc) {
        classify(cr, rc, &call);
        goto out;
    }
    rc = sendcloud_get_label(client, cr->sh.parcel_id, &cr->label, &call, e);
    if (rc == F3_ETRANSIENT) {
        classify(cr, rc, &call);
        goto out;
    }
    cr->label_ok = rc == 0;
    if (rc)
        log_warn("Sendcloud label unavailable", "orderId", a->order_id, "reason", e->msg);
    cr->out = OUT_OK;
out:
    sendcloud_client_free(client);
    shipping_conn_clear(&conn);
    orders_client_shipping_view_clear(&v);
}

static int store_label(db_conn *tx, const char *tenant_id, const char *shipment_id, const buf *pdf,
                       err *e)
{
    buf b64;
    buf_init(&b64, 0);
    char now[24];
    db_ms_text(clock_now_ms(), now);
    int rc = crypto_base64_encode(pdf->data, pdf->len, false, &b64)
                 ? err_set(e, F3_ENOMEM, "out of memory")
                 : 0;
    const char *t[] = {shipment_id, tenant_id, buf_cstr(&b64), now};
    rc = rc ? rc
            : db_exec_texts(tx,
                            "INSERT INTO shipment_labels (shipment_id, tenant_id, content_type,"
                            " data_base64, created_at) VALUES ($1, $2, 'application/pdf', $3,"
                            " CAST($4 AS BIGINT)) ON CONFLICT (shipment_id) DO UPDATE SET"
                            " data_base64 = excluded.data_base64, created_at = excluded.created_at",
                            t, 4, NULL, e);
    buf_free(&b64);
    return rc;
}

/* The shipment was made: row, label, shipment.created and the event log, in tx. */
static int record_created(shipping_service *s, db_conn *tx, const job_args *a, creation *cr, err *e)
{
    const sendcloud_shipment *sh = &cr->sh;
    char now[24], weight[24], parcel[24], attempts[16], label_url[96];
    db_ms_text(clock_now_ms(), now);
    db_ms_text(cr->weight, weight);
    snprintf(parcel, sizeof parcel, "%" PRId64, sh->parcel_id);
    snprintf(attempts, sizeof attempts, "%d", a->attempt);
    snprintf(label_url, sizeof label_url, "/api/v1/shipments/%s/label", cr->row.id);
    const char *t[] = {a->tenant_id,
                       cr->row.id,
                       sh->shipment_id,
                       parcel,
                       a->order_id,
                       sh->status,
                       sh->status_message,
                       sh->carrier,
                       cr->option[0] ? cr->option : NULL,
                       sh->tracking_number,
                       sh->tracking_url,
                       cr->label_ok ? label_url : NULL,
                       weight,
                       cr->version,
                       now,
                       attempts};
    int64_t n = 0;
    int rc = db_exec_texts(
        tx,
        "UPDATE shipments SET provider_shipment_id = $3, provider_parcel_id = $4,"
        " provider_reference = $5, status = $6, status_message = $7, carrier = $8,"
        " shipping_method = $9, tracking_number = $10, tracking_url = $11, label_url = $12,"
        " weight_grams = CAST($13 AS BIGINT), api_version = $14, status_at = CAST($15 AS BIGINT),"
        " error_message = NULL, attempts = CAST($16 AS BIGINT), updated_at = CAST($15 AS BIGINT)"
        " WHERE tenant_id = $1 AND id = $2 AND status = 'PENDING'",
        t, 16, &n, e);
    if (rc)
        return rc;
    if (n == 0) {
        ship_row now_row;
        rc = load_row(tx, a->tenant_id, a->order_id, &now_row, e);
        if (rc || !str_eq(now_row.status, SENDCLOUD_STATUS_CANCELLED)) {
            log_warn("shipment changed while it was being created; left as it is", "orderId",
                     a->order_id, "status", now_row.status);
            return rc;
        }
        /* Cancelled while Sendcloud was making it: keep the reference and cancel it there. */
        const char *u[] = {a->tenant_id, cr->row.id, sh->shipment_id, parcel, cr->version};
        rc = db_exec_texts(tx,
                           "UPDATE shipments SET provider_shipment_id = $3,"
                           " provider_parcel_id = $4, api_version = $5"
                           " WHERE tenant_id = $1 AND id = $2",
                           u, 5, NULL, e);
        return rc ? rc
                  : enqueue_attempt(s, tx, SHIPPING_CANCEL_QUEUE, "cancel", a->tenant_id,
                                    a->order_id, 1, 0, e);
    }
    if (cr->label_ok)
        rc = store_label(tx, a->tenant_id, cr->row.id, &cr->label, e);
    json_t *fields = json_pack("{s:s,s:s,s:s?,s:s?,s:s?}", "shipmentId", cr->row.id, "orderId",
                               a->order_id, "trackingNumber", sh->tracking_number, "trackingUrl",
                               sh->tracking_url, "carrier", sh->carrier);
    json_t *meta = json_pack("{s:s,s:s?,s:s,s:b,s:I}", "providerShipmentId", sh->shipment_id,
                             "trackingNumber", sh->tracking_number, "apiVersion", cr->version,
                             "existing", sh->existing, "weightGrams", (json_int_t)cr->weight);
    buf msg;
    buf_init(&msg, 512);
    buf_printf(&msg, "Shipment created with Sendcloud (%s, tracking %s)",
               sh->carrier ? sh->carrier : "carrier unknown",
               sh->tracking_number ? sh->tracking_number : "pending");
    if (rc == 0 && (!fields || !meta))
        rc = err_set(e, F3_ENOMEM, "out of memory");
    rc = rc ? rc : bus_publish(s->bus, tx, BUS_EV_SHIPMENT_CREATED, a->tenant_id, fields, e);
    rc = rc ? rc
            : log_event(tx, a->tenant_id, a->order_id, BUS_EV_SHIPMENT_CREATED, EVENTLOG_INFO,
                        buf_cstr(&msg), meta, e);
    if (rc == 0 && !cr->label_ok)
        rc = log_event(tx, a->tenant_id, a->order_id, EV_FAILED, EVENTLOG_WARNING,
                       "Shipment created but its label could not be downloaded", NULL, e);
    buf_free(&msg);
    json_decref(fields);
    json_decref(meta);
    if (rc == 0)
        log_info("shipment created", "orderId", a->order_id, "shipmentId", cr->row.id,
                 "trackingNumber", sh->tracking_number);
    return rc;
}

int shipping_create_job(bus_delivery *dl, void *ctx, err *e)
{
    shipping_service *s = ctx;
    job_args a;
    if (job_args_read(dl, &a, e))
        return F3_EINVAL;
    creation cr;
    memset(&cr, 0, sizeof cr);
    cr.retry_after_ms = -1;
    cr.sh.status_id = -1;
    buf_init(&cr.label, (size_t)16 * 1024 * 1024);
    create_at_provider(s, &a, &cr);
    int rc = 0;
    db_conn *tx = cr.out == OUT_SKIP ? NULL : bus_delivery_tx(dl, e);
    if (cr.out != OUT_SKIP && !tx) {
        rc = db_err_code(e);
        goto out;
    }
    switch (cr.out) {
    case OUT_SKIP:
        break;
    case OUT_OK:
        rc = record_created(s, tx, &a, &cr, e);
        break;
    case OUT_TRANSIENT:
        rc = schedule_retry(s, tx, SHIPPING_CREATE_QUEUE, "create", &a, &cr.row, cr.why.msg,
                            cr.retry_after_ms, e);
        break;
    case OUT_PERMANENT:
        rc = mark_failed(tx, &a, &cr.row, cr.why.msg, e);
        break;
    case OUT_ORDER_CANCELLED: {
        char now[24];
        db_ms_text(clock_now_ms(), now);
        const char *t[] = {a.tenant_id, cr.row.id, now};
        rc = db_exec_texts(tx,
                           "UPDATE shipments SET status = 'CANCELLED', cancelled_at ="
                           " CAST($3 AS BIGINT), updated_at = CAST($3 AS BIGINT)"
                           " WHERE tenant_id = $1 AND id = $2 AND status = 'PENDING'",
                           t, 3, NULL, e);
        break;
    }
    }
out:
    sendcloud_shipment_free(&cr.sh);
    buf_free(&cr.label);
    return rc;
}

/* ---- cancelling ---------------------------------------------------------------------- */

/* Cancels a shipment Sendcloud has not made yet (no provider reference), in tx. */
static int cancel_locally(shipping_service *s, db_conn *tx, const char *tenant_id,
                          const ship_row *r, err *e)
{
    shipping_status_report rep = {.status = SENDCLOUD_STATUS_CANCELLED,
                                  .status_message = "Cancelled before creation",
                                  .at_ms = clock_now_ms(),
                                  .source = "cancellation"};
    return shipping_apply_status(s, tx, tenant_id, r->id, &rep, NULL, e);
}

int shipping_request_cancel(shipping_service *s, db_conn *tx, const char *tenant_id,
                            const char *order_id, bool *found, err *e)
{
    ship_row r;
    int rc = load_row(tx, tenant_id, order_id, &r, e);
    *found = rc == 0;
    if (rc == F3_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (str_eq(r.status, SENDCLOUD_STATUS_CANCELLED) || str_eq(r.status, SENDCLOUD_STATUS_FAILED))
        return 0;
    if (str_eq(r.status, SENDCLOUD_STATUS_PENDING) && !r.provider_id[0])
        return cancel_locally(s, tx, tenant_id, &r, e);
    return enqueue_attempt(s, tx, SHIPPING_CANCEL_QUEUE, "cancel", tenant_id, order_id, 1, 0, e);
}

int shipping_on_cancelled(bus_delivery *dl, void *ctx, err *e)
{
    shipping_service *s = ctx;
    const bus_envelope *env = bus_delivery_envelope(dl);
    const char *order_id = json_string_value(json_object_get(env->root, "orderId"));
    db_conn *tx = bus_delivery_tx(dl, e);
    if (!tx)
        return db_err_code(e);
    bool found = false;
    return shipping_request_cancel(s, tx, env->tenant_id, order_id, &found, e);
}

/* The shipment is with the carrier (or Sendcloud refused): a WARNING and an alert. */
static int cancel_refused(db_conn *tx, const job_args *a, const ship_row *r, const char *why,
                          err *e)
{
    json_t *meta =
        json_pack("{s:s,s:s,s:s}", "shipmentId", r->id, "status", r->status, "reason", why);
    buf msg;
    buf_init(&msg, 1024);
    buf_printf(&msg, "Order cancelled but its shipment cannot be cancelled: %s", why);
    int rc = log_event(tx, a->tenant_id, a->order_id, EV_CANCEL_REFUSED, EVENTLOG_WARNING,
                       buf_cstr(&msg), meta, e);
    rc = rc ? rc
            : shipping_alert(tx, a->tenant_id, a->order_id, NOTIFY_CANCELLATION_REVIEW,
                             buf_cstr(&msg), meta, e);
    log_warn("shipment not cancelled", "orderId", a->order_id, "reason", why);
    buf_free(&msg);
    json_decref(meta);
    return rc;
}

int shipping_cancel_job(bus_delivery *dl, void *ctx, err *e)
{
    shipping_service *s = ctx;
    job_args a;
    if (job_args_read(dl, &a, e))
        return F3_EINVAL;
    ship_row r;
    memset(&r, 0, sizeof r);
    shipping_conn conn;
    memset(&conn, 0, sizeof conn);
    sendcloud_client *client = NULL;
    err why;
    err_clear(&why);
    sendcloud_call call = {.retry_after_ms = -1};
    sendcloud_cancel_result result = SENDCLOUD_CANCELLED;
    db_conn *c = db_acquire(s->db, e);
    int rc = c ? load_row(c, a.tenant_id, a.order_id, &r, e) : db_err_code(e);
    int prc = 0; /* the provider's answer */
    bool skip = rc == F3_ENOTFOUND || (rc == 0 && (str_eq(r.status, SENDCLOUD_STATUS_CANCELLED) ||
                                                   str_eq(r.status, SENDCLOUD_STATUS_FAILED)));
    bool handed = rc == 0 && sendcloud_status_handed_over(r.status);
    bool local = rc == 0 && !r.provider_id[0];
    if (rc == 0 && !skip && !handed && !local) {
        rc = shipping_conn_load(s, c, a.tenant_id, &conn, e);
        if (rc == F3_ENOTFOUND)
            rc = 0;
    }
    db_release(c);
    if (skip)
        return 0;
    if (rc)
        return rc;
    if (!handed && !local) {
        client = shipping_conn_client(s, &conn, r.api_version, &why);
        prc = client ? sendcloud_cancel_shipment(client, r.provider_id, &result, &call, &why)
                     : F3_EPERMANENT;
    }
    db_conn *tx = bus_delivery_tx(dl, e);
    if (!tx) {
        rc = db_err_code(e);
        goto out;
    }
    if (local) {
        rc = cancel_locally(s, tx, a.tenant_id, &r, e);
    } else if (handed) {
        rc = cancel_refused(tx, &a, &r, "it was already handed to the carrier", e);
    } else if (prc == 0) {
        shipping_status_report rep = {
            .status = result == SENDCLOUD_CANCEL_QUEUED ? SENDCLOUD_STATUS_CANCELLING
                                                        : SENDCLOUD_STATUS_CANCELLED,
            .status_message =
                result == SENDCLOUD_CANCEL_QUEUED ? "Cancellation queued" : "Cancelled",
            .at_ms = clock_now_ms(),
            .source = "cancellation"};
        rc = shipping_apply_status(s, tx, a.tenant_id, r.id, &rep, NULL, e);
    } else if (prc == F3_ECONFLICT || prc == F3_ENOTFOUND) {
        rc = cancel_refused(tx, &a, &r, why.msg, e);
    } else if (prc == F3_ETRANSIENT) {
        rc = schedule_retry(s, tx, SHIPPING_CANCEL_QUEUE, "cancel", &a, &r, why.msg,
                            call.retry_after_ms, e);
    } else {
        json_t *meta = json_pack("{s:s,s:s}", "shipmentId", r.id, "error", why.msg);
        rc = shipping_alert(tx, a.tenant_id, a.order_id, NOTIFY_CANCELLATION_REVIEW,
                            "Shipment could not be cancelled with Sendcloud", meta, e);
        json_decref(meta);
    }
out:
    sendcloud_client_free(client);
    shipping_conn_clear(&conn);
    return rc;
}
