/*
 * delivery.c - the simulators' webhook courier (see delivery.h): the delivery log, the
 * retries with exponential backoff, hold and release, and the worker that sends.
 *
 * One worker sends one delivery at a time, the one due first (ties: the oldest). What
 * an attempt needs is copied out under the lock, so that control endpoints and the
 * simulator's own threads never wait for a slow receiver.
 */
#include "sim/common/delivery.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "http/client.h"
#include "sim/common/wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADERS_MAX 16

static void delivery_free(sim_delivery *d)
{
    free(d->url);
    free(d->body);
    free(d->headers);
    json_decref(d->fields);
    json_decref(d->responses);
}

void sim_courier_clear(sim_courier *c)
{
    for (size_t i = 0; i < c->n; i++)
        delivery_free(&c->items[i]);
    c->n = 0;
}

void sim_courier_free(sim_courier *c)
{
    sim_courier_clear(c);
    free(c->items);
    c->items = NULL;
    c->cap = 0;
}

/* Room for one more delivery, dropping the oldest finished one when the log is full
 * (a pending one is never dropped: the log then grows). NULL when out of memory. */
static sim_delivery *delivery_slot(sim_courier *c)
{
    if (c->n >= SIM_DELIVERY_LOG_MAX) {
        size_t i = 0;
        while (i < c->n && c->items[i].state == SIM_DELIVERY_PENDING)
            i++;
        if (i < c->n) {
            delivery_free(&c->items[i]);
            memmove(&c->items[i], &c->items[i + 1], (c->n - i - 1) * sizeof *c->items);
            c->n--;
        }
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        sim_delivery *d = realloc(c->items, cap * sizeof *d);
        if (!d)
            return NULL;
        c->items = d;
        c->cap = cap;
    }
    sim_delivery *d = &c->items[c->n];
    memset(d, 0, sizeof *d);
    return d;
}

sim_delivery *sim_courier_add(sim_courier *c, const char *label, int64_t key, const char *url,
                              const char *body, const char *headers, json_t *fields,
                              sim_delivery_state state)
{
    sim_delivery *d = delivery_slot(c);
    if (!d) {
        json_decref(fields);
        return NULL;
    }
    d->seq = ++c->next_seq;
    d->key = key;
    snprintf(d->label, sizeof d->label, "%s", label ? label : "");
    d->url = str_dup(url);
    d->body = str_dup(body);
    d->headers = headers ? str_dup(headers) : NULL;
    d->fields = fields ? fields : json_object();
    d->responses = json_array();
    d->next_ms = clock_mono_ms();
    d->state = state;
    if (!d->url || !d->body || (headers && !d->headers) || !d->fields || !d->responses) {
        delivery_free(d);
        return NULL;
    }
    c->n++;
    pthread_cond_broadcast(c->wake);
    return d;
}

static const char *state_name(sim_delivery_state st)
{
    switch (st) {
    case SIM_DELIVERY_PENDING:
        return "pending";
    case SIM_DELIVERY_DELIVERED:
        return "delivered";
    case SIM_DELIVERY_FAILED:
        return "failed";
    case SIM_DELIVERY_DROPPED:
        break;
    }
    return "dropped";
}

json_t *sim_courier_json(const sim_courier *c)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < c->n; i++) {
        const sim_delivery *d = &c->items[i];
        json_t *o = json_pack("{s:I}", "id", (json_int_t)d->seq);
        if (!o)
            continue;
        json_object_update(o, d->fields);
        json_object_set_new(o, "url", json_string(d->url));
        json_object_set_new(o, "state", json_string(state_name(d->state)));
        json_object_set_new(o, "attempts", json_integer(d->attempts));
        if (c->log_last_status)
            json_object_set_new(o, "lastStatus", json_integer(d->last_status));
        else
            json_object_set(o, "responses", d->responses);
        json_array_append_new(list, o);
    }
    return list;
}

size_t sim_courier_pending(const sim_courier *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++)
        n += c->items[i].state == SIM_DELIVERY_PENDING;
    return n;
}

void sim_courier_hold(sim_courier *c, bool hold, bool reverse)
{
    c->hold = hold;
    if (!hold && reverse) {
        /* The newest pending delivery becomes due first, the oldest last. */
        int64_t now = clock_mono_ms(), rank = (int64_t)sim_courier_pending(c);
        for (size_t i = 0; i < c->n; i++)
            if (c->items[i].state == SIM_DELIVERY_PENDING)
                c->items[i].next_ms = now + --rank;
    }
    pthread_cond_broadcast(c->wake);
}

/* True when a worker is sending a delivery with this key (0: never). */
static bool key_busy(const sim_courier *c, int64_t key)
{
    for (size_t i = 0; key && i < SIM_COURIER_SENDERS_MAX; i++)
        if (c->senders[i].busy && c->senders[i].key == key)
            return true;
    return false;
}

/* A free sender slot, or -1 when every one is taken. */
static int free_sender(const sim_courier *c)
{
    for (int i = 0; i < SIM_COURIER_SENDERS_MAX; i++)
        if (!c->senders[i].busy)
            return i;
    return -1;
}

/* Index of the pending delivery due first (ties: oldest) that may be sent now, or -1. */
static long next_due(const sim_courier *c, int64_t *due_ms)
{
    long best = -1;
    for (size_t i = 0; !c->hold && i < c->n; i++) {
        const sim_delivery *d = &c->items[i];
        if (d->state == SIM_DELIVERY_PENDING && !d->in_flight &&
            (best < 0 || d->next_ms < *due_ms) && !key_busy(c, d->key)) {
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
    buf headers;
    bool ready;
} attempt;

static void attempt_prepare(const sim_courier *c, const sim_delivery *d, attempt *a)
{
    a->seq = d->seq;
    a->url = str_dup(d->url);
    a->body = str_dup(d->body);
    buf_init(&a->headers, 0);
    int rc = d->headers ? buf_puts(&a->headers, d->headers) : 0;
    if (rc == 0 && c->sign)
        rc = c->sign(c->sign_ctx, d, &a->headers);
    a->ready = rc == 0 && a->url && a->body;
}

/* Sends one attempt; the HTTP status, or 0 when no usable answer came. */
static long attempt_send(long timeout_ms, attempt *a)
{
    const char *headers[HEADERS_MAX + 1] = {NULL};
    size_t n = 0;
    for (char *line = a->headers.data; line && *line && n < HEADERS_MAX;) {
        char *end = strchr(line, '\n');
        headers[n++] = line;
        if (!end)
            break;
        *end = '\0';
        line = end + 1;
    }
    http_client_request rq = {.method = "POST",
                              .url = a->url,
                              .headers = headers,
                              .body = a->body,
                              .body_len = strlen(a->body),
                              .content_type = "application/json",
                              .timeout_ms = timeout_ms,
                              .connect_timeout_ms = 1000,
                              .max_response = 64 * 1024};
    http_client_response rs;
    err e;
    int rc = http_client_send(&rq, &rs, &e);
    long status = rs.status;
    http_client_response_free(&rs);
    return rc && status >= 200 && status < 300 ? 0 : status; /* e.g. an answer too large */
}

/* Records the outcome of an attempt. */
static void attempt_record(sim_courier *c, int64_t seq, long status)
{
    for (size_t i = 0; i < c->n; i++) {
        sim_delivery *d = &c->items[i];
        if (d->seq != seq)
            continue;
        d->in_flight = false;
        if (d->state != SIM_DELIVERY_PENDING)
            return;
        d->attempts++;
        d->last_status = status;
        json_array_append_new(d->responses, json_integer(status));
        char n[16], st[16];
        snprintf(n, sizeof n, "%d", d->attempts);
        snprintf(st, sizeof st, "%ld", status);
        if (status >= 200 && status < 300) {
            d->state = SIM_DELIVERY_DELIVERED;
            log_info("sim webhook delivered", "event", d->label, "attempt", n);
        } else if (d->attempts > c->max_retries) {
            d->state = SIM_DELIVERY_FAILED;
            log_warn("sim webhook given up", "event", d->label, "attempts", n, "status", st);
        } else {
            d->next_ms =
                clock_mono_ms() + http_client_backoff_ms(d->attempts, c->retry_base_ms, 0, -1);
            log_info("sim webhook failed, will retry", "event", d->label, "attempt", n, "status",
                     st);
        }
        return;
    }
}

bool sim_courier_send_due(sim_courier *c, int64_t *next_ms)
{
    int64_t due = 0;
    long i = next_due(c, &due);
    int slot = free_sender(c);
    if (i < 0 || due > clock_mono_ms() || slot < 0) {
        *next_ms = i < 0 ? 0 : due;
        return false;
    }
    sim_delivery *d = &c->items[i];
    attempt a;
    memset(&a, 0, sizeof a);
    attempt_prepare(c, d, &a);
    d->in_flight = true;
    c->senders[slot].busy = true;
    c->senders[slot].key = d->key;
    long timeout = c->timeout_ms;
    pthread_mutex_unlock(c->lock);
    long status = a.ready ? attempt_send(timeout, &a) : 0;
    free(a.url);
    free(a.body);
    buf_free(&a.headers);
    pthread_mutex_lock(c->lock);
    c->senders[slot].busy = false;
    attempt_record(c, a.seq, status);
    pthread_cond_broadcast(c->wake); /* a delivery waiting for this key may go now */
    if (c->settled)
        pthread_cond_broadcast(c->settled);
    return true;
}

void *sim_courier_worker(void *arg)
{
    sim_courier *c = arg;
    pthread_mutex_lock(c->lock);
    while (!*c->stopping) {
        int64_t next = 0;
        if (sim_courier_send_due(c, &next))
            continue;
        int64_t most = c->max_wait_ms > 0 ? c->max_wait_ms : 1000;
        int64_t wait = next ? next - clock_mono_ms() : most;
        sim_cond_wait_ms(c->wake, c->lock, wait < most ? wait : most);
    }
    pthread_mutex_unlock(c->lock);
    return NULL;
}

int sim_courier_h_deliveries(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    sim_courier *c = ctx;
    pthread_mutex_lock(c->lock);
    json_t *list = sim_courier_json(c);
    pthread_mutex_unlock(c->lock);
    return http_res_json(res, 200, json_pack("{s:o}", "deliveries", list));
}
