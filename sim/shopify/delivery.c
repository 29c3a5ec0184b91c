/*
 * delivery.c - webhook delivery of the Shopify simulator: signed POSTs to the
 * configured address, retried with exponential backoff as Shopify does
 * (integrations spec §1.5), and the delivery log behind GET /_sim/deliveries.
 *
 * One worker thread sends deliveries one at a time, oldest due first. A
 * delivery succeeds on any 2xx; anything else (3xx included), a connection
 * error or a timeout is a failed attempt, retried after retry_base_ms * 2^(n-1)
 * until max_retries retries have failed.
 */
#include "sim/shopify/sim_internal.h"

#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "http/client.h"
#include "integrations/shopify/webhook.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void delivery_free(sim_delivery *d)
{
    free(d->url);
    free(d->body);
    json_decref(d->responses);
}

void sim_deliveries_clear(shopify_sim *s)
{
    for (size_t i = 0; i < s->ndeliveries; i++)
        delivery_free(&s->deliveries[i]);
    s->ndeliveries = 0;
}

/* Makes room for one more delivery, dropping the oldest finished one when the
 * log is full. Lock held. NULL when out of memory. */
static sim_delivery *delivery_slot(shopify_sim *s)
{
    if (s->ndeliveries >= SIM_DELIVERY_LOG_MAX) {
        size_t i = 0;
        while (i < s->ndeliveries && s->deliveries[i].state == SIM_PENDING)
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
        sim_delivery *d = realloc(s->deliveries, cap * sizeof *d);
        if (!d)
            return NULL;
        s->deliveries = d;
        s->deliveries_cap = cap;
    }
    sim_delivery *d = &s->deliveries[s->ndeliveries];
    memset(d, 0, sizeof *d);
    return d;
}

int sim_deliver_event(shopify_sim *s, const char *topic, const json_t *order, int duplicates,
                      json_t *seqs)
{
    if (!s->webhook_url)
        return 0; /* no subscription: Shopify sends nothing */
    buf body;
    buf_init(&body, 0);
    if (json_dump_buf(order, &body) != 0) {
        buf_free(&body);
        return F3_ENOMEM;
    }
    char event_id[UUID_STR_LEN], when[CLOCK_ISO_LEN];
    uuid_v4(event_id);
    clock_now_iso(when);
    int rc = 0;
    for (int i = 0; i <= duplicates && rc == 0; i++) {
        sim_delivery *d = delivery_slot(s);
        if (!d) {
            rc = F3_ENOMEM;
            break;
        }
        d->seq = ++s->next_seq;
        snprintf(d->topic, sizeof d->topic, "%s", topic);
        snprintf(d->event_id, sizeof d->event_id, "%s", event_id);
        uuid_v4(d->webhook_id);
        snprintf(d->order_id, sizeof d->order_id, "%lld",
                 (long long)json_integer_value(json_object_get(order, "id")));
        snprintf(d->triggered_at, sizeof d->triggered_at, "%s", when);
        d->url = str_dup(s->webhook_url);
        d->body = str_ndup(body.data ? body.data : "", body.len);
        d->responses = json_array();
        d->next_ms = clock_mono_ms();
        d->state = SIM_PENDING;
        if (!d->url || !d->body || !d->responses) {
            delivery_free(d);
            rc = F3_ENOMEM;
            break;
        }
        s->ndeliveries++;
        if (seqs)
            json_array_append_new(seqs, json_integer(d->seq));
    }
    buf_free(&body);
    return rc;
}

static const char *state_name(sim_delivery_state st)
{
    return st == SIM_PENDING ? "pending" : st == SIM_DELIVERED ? "delivered" : "failed";
}

json_t *sim_deliveries_json(const shopify_sim *s)
{
    json_t *list = json_array();
    for (size_t i = 0; i < s->ndeliveries; i++) {
        const sim_delivery *d = &s->deliveries[i];
        json_array_append_new(list, json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:O}", "id",
                                              (json_int_t)d->seq, "topic", d->topic, "eventId",
                                              d->event_id, "webhookId", d->webhook_id, "orderId",
                                              d->order_id, "triggeredAt", d->triggered_at, "url",
                                              d->url, "state", state_name(d->state), "attempts",
                                              d->attempts, "responses", d->responses));
    }
    return list;
}

/* Index of the pending delivery due first, or -1. Lock held. */
static long next_due(const shopify_sim *s, int64_t *due_ms)
{
    long best = -1;
    for (size_t i = 0; i < s->ndeliveries; i++) {
        const sim_delivery *d = &s->deliveries[i];
        if (d->state == SIM_PENDING && (best < 0 || d->next_ms < *due_ms)) {
            best = (long)i;
            *due_ms = d->next_ms;
        }
    }
    return best;
}

/* What one attempt needs, copied out so that the lock is not held while sending. */
typedef struct attempt {
    int64_t seq;
    char *url, *body;
    char headers[8][320];
} attempt;

static int attempt_prepare(const shopify_sim *s, const sim_delivery *d, attempt *a)
{
    buf sig;
    buf_init(&sig, 128);
    int rc = shopify_webhook_sign(s->secret, d->body, strlen(d->body), &sig);
    a->seq = d->seq;
    a->url = str_dup(d->url);
    a->body = str_dup(d->body);
    snprintf(a->headers[0], sizeof a->headers[0], SHOPIFY_HEADER_TOPIC ": %s", d->topic);
    snprintf(a->headers[1], sizeof a->headers[1], SHOPIFY_HEADER_HMAC ": %s", buf_cstr(&sig));
    snprintf(a->headers[2], sizeof a->headers[2], SHOPIFY_HEADER_SHOP_DOMAIN ": %s",
             s->shop_domain);
    snprintf(a->headers[3], sizeof a->headers[3], SHOPIFY_HEADER_API_VERSION ": %s",
             s->api_version);
    snprintf(a->headers[4], sizeof a->headers[4], SHOPIFY_HEADER_WEBHOOK_ID ": %s", d->webhook_id);
    snprintf(a->headers[5], sizeof a->headers[5], SHOPIFY_HEADER_EVENT_ID ": %s", d->event_id);
    snprintf(a->headers[6], sizeof a->headers[6], SHOPIFY_HEADER_TRIGGERED_AT ": %s",
             d->triggered_at);
    buf_free(&sig);
    return rc || !a->url || !a->body ? F3_ENOMEM : 0;
}

/* Sends one attempt; the HTTP status, or 0 when no usable answer came. */
static long attempt_send(const shopify_sim *s, const attempt *a)
{
    const char *headers[] = {a->headers[0], a->headers[1], a->headers[2], a->headers[3],
                             a->headers[4], a->headers[5], a->headers[6], NULL};
    http_client_request rq = {.method = "POST",
                              .url = a->url,
                              .headers = headers,
                              .body = a->body,
                              .body_len = strlen(a->body),
                              .content_type = "application/json",
                              .timeout_ms = s->delivery_timeout_ms,
                              .connect_timeout_ms = 1000,
                              .max_response = 64 * 1024};
    http_client_response rs;
    err e;
    int rc = http_client_send(&rq, &rs, &e);
    long status = rs.status;
    http_client_response_free(&rs);
    if (rc && status >= 200 && status < 300)
        status = 0; /* e.g. an answer too large: not a clean success */
    return status;
}

/* Records the outcome of an attempt. Lock held. */
static void attempt_record(shopify_sim *s, int64_t seq, long status)
{
    for (size_t i = 0; i < s->ndeliveries; i++) {
        sim_delivery *d = &s->deliveries[i];
        if (d->seq != seq)
            continue;
        d->attempts++;
        json_array_append_new(d->responses, json_integer(status));
        char n[16], st[16];
        snprintf(n, sizeof n, "%d", d->attempts);
        snprintf(st, sizeof st, "%ld", status);
        if (status >= 200 && status < 300) {
            d->state = SIM_DELIVERED;
            log_info("sim webhook delivered", "topic", d->topic, "eventId", d->event_id, "attempt",
                     n);
        } else if (d->attempts > s->max_retries) {
            d->state = SIM_FAILED;
            log_warn("sim webhook given up", "topic", d->topic, "eventId", d->event_id, "attempts",
                     n, "status", st);
        } else {
            d->next_ms =
                clock_mono_ms() + http_client_backoff_ms(d->attempts, s->retry_base_ms, 0, -1);
            log_info("sim webhook failed, will retry", "topic", d->topic, "eventId", d->event_id,
                     "attempt", n, "status", st);
        }
        return;
    }
}

static void wait_until(shopify_sim *s, int64_t due_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wait = due_ms - clock_mono_ms();
    if (wait > 1000)
        wait = 1000; /* re-check now and then: settings and the queue change */
    ts.tv_sec += wait / 1000;
    ts.tv_nsec += (wait % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&s->wake, &s->lock, &ts);
}

void *sim_delivery_worker(void *arg)
{
    shopify_sim *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        int64_t due = 0;
        long i = next_due(s, &due);
        if (i < 0) {
            wait_until(s, clock_mono_ms() + 1000);
            continue;
        }
        if (due > clock_mono_ms()) {
            wait_until(s, due);
            continue;
        }
        attempt a;
        memset(&a, 0, sizeof a);
        int rc = attempt_prepare(s, &s->deliveries[i], &a);
        pthread_mutex_unlock(&s->lock);
        long status = rc == 0 ? attempt_send(s, &a) : 0;
        free(a.url);
        free(a.body);
        pthread_mutex_lock(&s->lock);
        attempt_record(s, a.seq, status);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}
