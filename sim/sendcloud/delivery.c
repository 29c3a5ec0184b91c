/*
 * delivery.c - how simulated parcels move and tell about it: the status progression
 * (announced -> en route -> out for delivery -> delivered, one step every step_ms), and
 * parcel_status_changed webhooks signed with Sendcloud-Signature, retried with
 * exponential backoff as Sendcloud does (integrations spec §3.9), and the delivery log
 * behind GET /_sim/deliveries.
 *
 * One worker thread moves due parcels and then sends due deliveries one at a time,
 * oldest first. A delivery succeeds on any 2xx; anything else, a connection error or a
 * timeout is a failed attempt, retried after retry_base_ms * 2^(n-1) until max_retries
 * retries have failed.
 */
#include "sim/sendcloud/sim_internal.h"

#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "http/client.h"
#include "integrations/sendcloud/webhook.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct sc_status {
    int64_t id;
    const char *message;
    const char *code; /* v3 */
} sc_status;

static const sc_status statuses[] = {
    {999, "No label", "NO_LABEL"},
    {1000, "Ready to send", "READY_TO_SEND"},
    {1001, "Being announced", "ANNOUNCING"},
    {1002, "Announcement failed", "ANNOUNCEMENT_FAILED"},
    {1, "Announced", "ANNOUNCED"},
    {13, "Announced: not collected", "ANNOUNCED"},
    {22, "Shipment picked up by driver", "EN_ROUTE"},
    {3, "En route to sorting center", "EN_ROUTE"},
    {7, "Being sorted", "EN_ROUTE"},
    {5, "Sorted", "SORTED"},
    {91, "Parcel en route", "EN_ROUTE"},
    {92, "Driver en route", "DRIVER_EN_ROUTE"},
    {4, "Delivery delayed", "DELIVERY_DELAYED"},
    {8, "Delivery attempt failed", "DELIVERY_ATTEMPT_FAILED"},
    {12, "Awaiting customer pickup", "AWAITING_CUSTOMER_PICKUP"},
    {11, "Delivered", "DELIVERED"},
    {93, "Shipment collected by customer", "DELIVERED"},
    {80, "Unable to deliver", "UNABLE_TO_DELIVER"},
    {1337, "Unknown status - check carrier track & trace page", "UNKNOWN"},
    {1999, "Cancellation requested", "CANCELLATION_REQUESTED"},
    {2000, "Cancelled", "CANCELLED"},
};

/* The automatic path of a parcel once its label exists. */
static const int64_t progression[] = {SC_STATUS_READY, 3, 92, 11};
#define PROGRESSION_LEN ((int)(sizeof progression / sizeof progression[0]))

static const sc_status *status_row(int64_t id)
{
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (statuses[i].id == id)
            return &statuses[i];
    return NULL;
}

const char *sc_status_message(int64_t status_id)
{
    const sc_status *r = status_row(status_id);
    return r ? r->message : "Unknown status";
}

const char *sc_status_code(int64_t status_id)
{
    const sc_status *r = status_row(status_id);
    return r ? r->code : "UNKNOWN";
}

static void delivery_free(sc_delivery *d)
{
    free(d->url);
    free(d->body);
    json_decref(d->responses);
}

void sc_deliveries_clear(sendcloud_sim *s)
{
    for (size_t i = 0; i < s->ndeliveries; i++)
        delivery_free(&s->deliveries[i]);
    s->ndeliveries = 0;
}

/* Room for one more delivery, dropping the oldest finished one when the log is full.
 * Lock held. NULL when out of memory. */
static sc_delivery *delivery_slot(sendcloud_sim *s)
{
    if (s->ndeliveries >= SC_DELIVERY_LOG_MAX) {
        size_t i = 0;
        while (i < s->ndeliveries && s->deliveries[i].state == SC_PENDING)
            i++;
        /* A pending delivery is never forgotten: with a backlog the log grows past the
         * cap (a provider queues what it owes) and shrinks again as deliveries finish. */
        if (i < s->ndeliveries) {
            delivery_free(&s->deliveries[i]);
            memmove(&s->deliveries[i], &s->deliveries[i + 1],
                    (s->ndeliveries - i - 1) * sizeof *s->deliveries);
            s->ndeliveries--;
        }
    }
    if (s->ndeliveries == s->deliveries_cap) {
        size_t cap = s->deliveries_cap ? s->deliveries_cap * 2 : 64;
        sc_delivery *d = realloc(s->deliveries, cap * sizeof *d);
        if (!d)
            return NULL;
        s->deliveries = d;
        s->deliveries_cap = cap;
    }
    sc_delivery *d = &s->deliveries[s->ndeliveries];
    memset(d, 0, sizeof *d);
    return d;
}

/* Records the webhook of a status change (sent later by the worker, or dropped). */
static void queue_webhook(sendcloud_sim *s, const sc_parcel *p)
{
    if (!s->webhook_url)
        return; /* no webhook configured on the integration: Sendcloud sends nothing */
    int64_t now = clock_now_ms();
    json_t *payload = json_pack("{s:s,s:I,s:I,s:O}", "action", "parcel_status_changed", "timestamp",
                                (json_int_t)now, "carrier_status_change_timestamp", (json_int_t)now,
                                "parcel", p->obj);
    buf body;
    buf_init(&body, 0);
    sc_delivery *d = payload && json_dump_buf(payload, &body) == 0 ? delivery_slot(s) : NULL;
    json_decref(payload);
    if (!d) {
        buf_free(&body);
        return;
    }
    d->seq = ++s->next_seq;
    d->parcel_id = p->id;
    d->status_id = json_integer_value(json_object_get(json_object_get(p->obj, "status"), "id"));
    d->url = str_dup(s->webhook_url);
    d->body = buf_detach(&body);
    d->responses = json_array();
    d->next_ms = clock_mono_ms();
    d->state = SC_PENDING;
    if (s->drop_webhooks != 0) {
        d->state = SC_DROPPED;
        if (s->drop_webhooks > 0)
            s->drop_webhooks--;
    }
    if (!d->url || !d->body || !d->responses) {
        delivery_free(d);
        return;
    }
    s->ndeliveries++;
    pthread_cond_broadcast(&s->wake);
}

void sc_set_status(sendcloud_sim *s, sc_parcel *p, int64_t status_id)
{
    json_object_set_new(p->obj, "status",
                        json_pack("{s:I,s:s}", "id", (json_int_t)status_id, "message",
                                  sc_status_message(status_id)));
    for (int i = 0; i < PROGRESSION_LEN; i++)
        if (progression[i] == status_id)
            p->step = i;
    bool moving = status_id != SC_STATUS_CANCELLED && p->step < PROGRESSION_LEN - 1 &&
                  progression[p->step] == status_id && s->step_ms >= 0;
    p->next_step_ms = moving ? clock_mono_ms() + s->step_ms : 0;
    char id[24], st[24];
    snprintf(id, sizeof id, "%" PRId64, p->id);
    snprintf(st, sizeof st, "%" PRId64, status_id);
    log_info("sim parcel status", "parcelId", id, "status", st);
    queue_webhook(s, p);
}

bool sc_advance(sendcloud_sim *s, sc_parcel *p)
{
    int64_t now = json_integer_value(json_object_get(json_object_get(p->obj, "status"), "id"));
    if (now == SC_STATUS_CANCELLED || p->step >= PROGRESSION_LEN - 1 || progression[p->step] != now)
        return false;
    sc_set_status(s, p, progression[p->step + 1]);
    return true;
}

static const char *state_name(sc_delivery_state st)
{
    return st == SC_PENDING     ? "pending"
           : st == SC_DELIVERED ? "delivered"
           : st == SC_DROPPED   ? "dropped"
                                : "failed";
}

json_t *sc_deliveries_json(const sendcloud_sim *s)
{
    json_t *list = json_array();
    for (size_t i = 0; i < s->ndeliveries; i++) {
        const sc_delivery *d = &s->deliveries[i];
        json_array_append_new(
            list, json_pack("{s:I,s:I,s:I,s:s,s:s,s:i,s:O}", "id", (json_int_t)d->seq, "parcelId",
                            (json_int_t)d->parcel_id, "statusId", (json_int_t)d->status_id, "url",
                            d->url, "state", state_name(d->state), "attempts", d->attempts,
                            "responses", d->responses));
    }
    return list;
}

/* Moves every parcel whose step is due. Lock held. */
static void progress_due(sendcloud_sim *s, int64_t *next_due)
{
    int64_t now = clock_mono_ms();
    for (size_t i = 0; i < s->nparcels; i++) {
        sc_parcel *p = &s->parcels[i];
        if (p->next_step_ms && p->next_step_ms <= now)
            sc_advance(s, p);
        if (p->next_step_ms && (!*next_due || p->next_step_ms < *next_due))
            *next_due = p->next_step_ms;
    }
}

/* Index of the pending delivery due first, or -1. Lock held. */
static long next_delivery(const sendcloud_sim *s, int64_t *due_ms)
{
    long best = -1;
    for (size_t i = 0; i < s->ndeliveries; i++) {
        const sc_delivery *d = &s->deliveries[i];
        if (d->state == SC_PENDING && (best < 0 || d->next_ms < *due_ms)) {
            best = (long)i;
            *due_ms = d->next_ms;
        }
    }
    return best;
}

/* Sends one delivery; the HTTP status, or 0 when no usable answer came. */
static long attempt_send(const sendcloud_sim *s, const char *url, const char *body,
                         const char *secret)
{
    buf sig, header;
    buf_init(&sig, 128);
    buf_init(&header, 256);
    long status = 0;
    if (sendcloud_webhook_sign(secret, body, strlen(body), &sig) == 0 &&
        buf_printf(&header, SENDCLOUD_HEADER_SIGNATURE ": %s", buf_cstr(&sig)) == 0) {
        const char *headers[] = {buf_cstr(&header), NULL};
        http_client_request rq = {.method = "POST",
                                  .url = url,
                                  .headers = headers,
                                  .body = body,
                                  .body_len = strlen(body),
                                  .content_type = "application/json",
                                  .timeout_ms = s->delivery_timeout_ms,
                                  .connect_timeout_ms = 1000,
                                  .max_response = 64 * 1024};
        http_client_response rs;
        err e;
        int rc = http_client_send(&rq, &rs, &e);
        status = rs.status;
        http_client_response_free(&rs);
        if (rc && status >= 200 && status < 300)
            status = 0;
    }
    buf_free(&sig);
    buf_free(&header);
    return status;
}

/* Records the outcome of an attempt. Lock held. */
static void attempt_record(sendcloud_sim *s, int64_t seq, long status)
{
    for (size_t i = 0; i < s->ndeliveries; i++) {
        sc_delivery *d = &s->deliveries[i];
        if (d->seq != seq)
            continue;
        d->attempts++;
        json_array_append_new(d->responses, json_integer(status));
        if (status >= 200 && status < 300)
            d->state = SC_DELIVERED;
        else if (d->attempts > s->max_retries)
            d->state = SC_FAILED;
        else
            d->next_ms =
                clock_mono_ms() + http_client_backoff_ms(d->attempts, s->retry_base_ms, 0, -1);
        return;
    }
}

static void wait_until(sendcloud_sim *s, int64_t due_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wait = due_ms - clock_mono_ms();
    if (wait > 500)
        wait = 500; /* re-check now and then: settings and parcels change */
    if (wait < 1)
        wait = 1;
    ts.tv_sec += wait / 1000;
    ts.tv_nsec += (wait % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&s->wake, &s->lock, &ts);
}

void *sc_worker(void *arg)
{
    sendcloud_sim *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        int64_t step_due = 0, due = 0;
        progress_due(s, &step_due);
        long i = next_delivery(s, &due);
        if (i < 0 || due > clock_mono_ms()) {
            int64_t until = clock_mono_ms() + 500;
            if (i >= 0 && due < until)
                until = due;
            if (step_due && step_due < until)
                until = step_due;
            wait_until(s, until);
            continue;
        }
        int64_t seq = s->deliveries[i].seq;
        char *url = str_dup(s->deliveries[i].url), *body = str_dup(s->deliveries[i].body);
        char *secret = str_dup(s->webhook_secret ? s->webhook_secret : s->secret_key);
        pthread_mutex_unlock(&s->lock);
        long status = url && body && secret ? attempt_send(s, url, body, secret) : 0;
        free(url);
        free(body);
        free(secret);
        pthread_mutex_lock(&s->lock);
        attempt_record(s, seq, status);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}
