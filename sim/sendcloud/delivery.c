/*
 * delivery.c - how simulated parcels move and tell about it: the status progression
 * (announced -> en route -> out for delivery -> delivered, one step every step_ms), and
 * parcel_status_changed webhooks signed with Sendcloud-Signature (under the secret
 * configured when each attempt is made), retried with exponential backoff as Sendcloud
 * does (integrations spec §3.9).
 *
 * One worker thread moves due parcels and then sends the delivery due first through the
 * shared courier (sim/common/delivery.c), which keeps the log behind GET /_sim/deliveries.
 */
#include "sim/sendcloud/sim_internal.h"

#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "integrations/sendcloud/webhook.h"
#include "sim/common/wait.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (payload && json_dump_buf(payload, &body) == 0) {
        int64_t status_id =
            json_integer_value(json_object_get(json_object_get(p->obj, "status"), "id"));
        bool drop = s->drop_webhooks != 0;
        if (drop && s->drop_webhooks > 0)
            s->drop_webhooks--;
        sim_courier_add(&s->courier, "parcel_status_changed", 0, s->webhook_url, buf_cstr(&body),
                        NULL,
                        json_pack("{s:I,s:I}", "parcelId", (json_int_t)p->id, "statusId",
                                  (json_int_t)status_id),
                        drop ? SIM_DELIVERY_DROPPED : SIM_DELIVERY_PENDING);
    }
    json_decref(payload);
    buf_free(&body);
}

int sc_sign_attempt(void *ctx, const sim_delivery *d, buf *headers)
{
    const sendcloud_sim *s = ctx;
    buf sig;
    buf_init(&sig, 128);
    int rc = sendcloud_webhook_sign(s->webhook_secret ? s->webhook_secret : s->secret_key, d->body,
                                    strlen(d->body), &sig);
    if (rc == 0)
        rc = buf_printf(headers, SENDCLOUD_HEADER_SIGNATURE ": %s\n", buf_cstr(&sig));
    buf_free(&sig);
    return rc ? F3_ENOMEM : 0;
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

void *sc_worker(void *arg)
{
    sendcloud_sim *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        int64_t step_due = 0, due = 0;
        progress_due(s, &step_due);
        if (sim_courier_send_due(&s->courier, &due))
            continue;
        int64_t until = clock_mono_ms() + 500; /* re-check now and then: settings change */
        if (due && due < until)
            until = due;
        if (step_due && step_due < until)
            until = step_due;
        sim_cond_wait_ms(&s->wake, &s->lock, until - clock_mono_ms());
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}
