/*
 * delivery.c - webhook deliveries of the SimplyPrint simulator, shaped as SimplyPrint
 * sends them to a non-chat URL (integrations spec §2.7): a POST of the raw JSON
 * envelope {"webhook_id", "event", "timestamp", "data": {"job": {...}}} with the
 * webhook's secret verbatim in X-SP-Secret (no body signature).
 *
 * The job object carries "queue_item_id" (the queue item the copy came from), which
 * SimplyPrint's published samples do not show: f3connect must work without it, and
 * the simulator sends it so the happy path can be followed end to end.
 *
 * Each delivery thread (one by default; opts.couriers) sends one delivery at a time,
 * the one due first (ties: the oldest) that no other thread is sending and whose job
 * has no delivery in flight: a job's events are never sent at once, so they arrive in
 * order unless a retry intervenes. Any 2xx is success; anything else or no answer within the
 * timeout is retried after retry_base_ms * 2^(n-1) up to max_retries times (SimplyPrint's own retry
 * policy is not documented). Faults: dropped deliveries (never sent), duplicated ones (two
 * identical POSTs), held ones released newest first.
 */
#include "sim/simplyprint/sim_internal.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "http/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void delivery_free(spsim_delivery *d)
{
    free(d->url);
    free(d->secret);
    free(d->body);
}

void spsim_deliveries_clear(sp_sim *s)
{
    for (size_t i = 0; i < s->ndeliveries; i++)
        delivery_free(&s->deliveries[i]);
    s->ndeliveries = 0;
}

void spsim_webhooks_clear(sp_sim *s)
{
    for (size_t i = 0; i < s->nwebhooks; i++)
        json_decref(s->webhooks[i].events);
    s->nwebhooks = 0;
}

size_t spsim_pending_deliveries(const sp_sim *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->ndeliveries; i++)
        n += s->deliveries[i].state == SPSIM_PENDING;
    return n;
}

/* Room for one more delivery, dropping the oldest finished one when the log is full.
 * Lock held. NULL when out of memory. */
static spsim_delivery *delivery_slot(sp_sim *s)
{
    if (s->ndeliveries >= SPSIM_DELIVERIES_MAX) {
        size_t i = 0;
        while (i < s->ndeliveries && s->deliveries[i].state == SPSIM_PENDING)
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
    if (spsim_grow((void **)&s->deliveries, &s->deliveries_cap, s->ndeliveries,
                   sizeof *s->deliveries))
        return NULL;
    spsim_delivery *d = &s->deliveries[s->ndeliveries];
    memset(d, 0, sizeof *d);
    return d;
}

static bool subscribed(const spsim_webhook *w, const char *event)
{
    size_t i;
    json_t *v;
    json_array_foreach(w->events, i, v)
    {
        if (str_eq(json_string_value(v), event))
            return true;
    }
    return false;
}

/* The job object of a job.* delivery. */
static json_t *job_payload(const sp_sim *s, const char *event, const spsim_job *j)
{
    const char *state = str_eq(event, "job.started")  ? "printing"
                        : str_eq(event, "job.done")   ? "completed" /* as SimplyPrint's sample */
                        : str_eq(event, "job.failed") ? "failed"
                                                      : "cancelled";
    const char *printer = "";
    for (size_t i = 0; i < s->nprinters; i++)
        if (s->printers[i].id == j->printer_id)
            printer = s->printers[i].name;
    json_t *o = json_pack(
        "{s:I,s:s,s:I,s:s,s:s,s:i,s:I,s:b,s:{s:I,s:s,s:n},s:I,s:f}", "id", (json_int_t)j->id, "uid",
        j->uid, "printer_id", (json_int_t)j->printer_id, "state", state, "file", j->filename,
        "percentage", spsim_job_percentage(s, j), "started", (json_int_t)j->started_s, "autoprint",
        1, "printer", "id", (json_int_t)j->printer_id, "name", printer, "group", "queue_item_id",
        (json_int_t)j->queue_item_id, "cost", 0.42);
    if (!o)
        return NULL;
    json_object_set_new(o, "ended", j->ended_s ? json_integer(j->ended_s) : json_null());
    json_object_set_new(o, "duration", json_integer(j->ended_s ? j->ended_s - j->started_s : 0));
    if (j->state == SP_JOB_FAILED)
        json_object_set_new(o, "failedReason", json_string(j->reason));
    if (j->state == SP_JOB_CANCELLED)
        json_object_set_new(
            o, "cancelInfo",
            json_pack("{s:s,s:n,s:s}", "reason", j->reason, "comment", "by", "simulator"));
    return o;
}

/* How many copies of a delivery go out: 0 (dropped), 1, or 2 (duplicated). Lock held. */
static int copies(sp_sim *s)
{
    if (s->drop_next > 0) {
        s->drop_next--;
        return 0;
    }
    if (s->drop_rate > 0 && spsim_random(s) < s->drop_rate)
        return 0;
    if (s->duplicate_next > 0) {
        s->duplicate_next--;
        return 2;
    }
    return s->duplicate_rate > 0 && spsim_random(s) < s->duplicate_rate ? 2 : 1;
}

/* Queues one envelope to w (copies as the faults say). Lock held. */
static void enqueue(sp_sim *s, const spsim_webhook *w, const char *event, int64_t job_id,
                    json_t *data)
{
    json_t *env = json_pack("{s:I,s:s,s:I,s:o}", "webhook_id", (json_int_t)w->id, "event", event,
                            "timestamp", (json_int_t)(clock_now_ms() / 1000), "data", data);
    buf body;
    buf_init(&body, 0);
    if (!env || json_dump_buf(env, &body) != 0)
        goto out;
    int n = copies(s);
    for (int i = 0; i < (n ? n : 1); i++) {
        spsim_delivery *d = delivery_slot(s);
        if (!d)
            break;
        d->seq = ++s->next_seq;
        d->webhook_id = w->id;
        snprintf(d->event, sizeof d->event, "%s", event);
        d->job_id = job_id;
        d->duplicate = i > 0;
        d->url = str_dup(w->url);
        d->secret = str_dup(w->secret);
        d->body = str_dup(buf_cstr(&body));
        d->next_ms = clock_mono_ms();
        d->state = n ? SPSIM_PENDING : SPSIM_DROPPED;
        if (!d->url || !d->secret || !d->body) {
            delivery_free(d);
            break;
        }
        s->ndeliveries++;
        if (!n) {
            char id[24];
            snprintf(id, sizeof id, "%lld", (long long)job_id);
            log_info("sim webhook dropped", "event", event, "jobId", id);
        }
    }
    pthread_cond_broadcast(&s->courier_wake);
out:
    buf_free(&body);
    json_decref(env);
}

void spsim_deliver_job_event(sp_sim *s, const char *event, const spsim_job *j)
{
    for (size_t i = 0; i < s->nwebhooks; i++) {
        const spsim_webhook *w = &s->webhooks[i];
        if (!w->enabled || !subscribed(w, event))
            continue;
        json_t *job = job_payload(s, event, j);
        json_t *data = job ? json_pack("{s:o}", "job", job) : NULL;
        if (data && (str_eq(event, "job.started") || str_eq(event, "job.cancelled")))
            json_object_set_new(data, "user", json_null());
        if (data)
            enqueue(s, w, event, j->id, data);
    }
}

void spsim_deliver_test(sp_sim *s, const spsim_webhook *w)
{
    json_t *data = json_object();
    if (data)
        enqueue(s, w, "test", 0, data);
}

static const char *state_name(spsim_delivery_state st)
{
    switch (st) {
    case SPSIM_PENDING:
        return "pending";
    case SPSIM_DELIVERED:
        return "delivered";
    case SPSIM_FAILED:
        return "failed";
    case SPSIM_DROPPED:
        break;
    }
    return "dropped";
}

json_t *spsim_deliveries_json(const sp_sim *s)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < s->ndeliveries; i++) {
        const spsim_delivery *d = &s->deliveries[i];
        json_array_append_new(
            list, json_pack("{s:I,s:I,s:s,s:I,s:b,s:s,s:s,s:i,s:I}", "id", (json_int_t)d->seq,
                            "webhookId", (json_int_t)d->webhook_id, "event", d->event, "jobId",
                            (json_int_t)d->job_id, "duplicate", d->duplicate, "url", d->url,
                            "state", state_name(d->state), "attempts", d->attempts, "lastStatus",
                            (json_int_t)d->last_status));
    }
    return list;
}

json_t *spsim_webhook_json(const spsim_webhook *w)
{
    return json_pack("{s:I,s:s,s:s,s:O,s:s?,s:b}", "id", (json_int_t)w->id, "name", w->name, "url",
                     w->url, "events", w->events, "secret", w->secret[0] ? w->secret : NULL,
                     "enabled", w->enabled);
}

/* ---- the delivery thread ---------------------------------------------------------------- */

/* True when a courier is sending a delivery of job_id (0: no job, never busy). Lock held. */
static bool job_in_flight(const sp_sim *s, int64_t job_id)
{
    for (size_t i = 0; job_id && i < s->ncouriers; i++)
        if (s->couriers[i].job_id == job_id)
            return true;
    return false;
}

/* Index of the pending delivery due first (ties: oldest) that may be sent now, or -1.
 * Lock held. */
static long next_due(const sp_sim *s, int64_t *due_ms)
{
    long best = -1;
    for (size_t i = 0; i < s->ndeliveries; i++) {
        const spsim_delivery *d = &s->deliveries[i];
        if (d->state == SPSIM_PENDING && !d->in_flight && (best < 0 || d->next_ms < *due_ms) &&
            !job_in_flight(s, d->job_id)) {
            best = (long)i;
            *due_ms = d->next_ms;
        }
    }
    return best;
}

/* Sends one attempt; the HTTP status, or 0 when no usable answer came. */
static long attempt_send(long timeout_ms, const char *url, const char *secret, const char *body)
{
    buf header;
    buf_init(&header, 512);
    buf_printf(&header, SP_HEADER_SECRET ": %s", secret);
    const char *headers[] = {"User-Agent: SimplyPrint-Webhooks (f3connect simulator)",
                             secret[0] ? buf_cstr(&header) : NULL, NULL};
    http_client_request rq = {.method = "POST",
                              .url = url,
                              .headers = headers,
                              .body = body,
                              .body_len = strlen(body),
                              .content_type = "application/json",
                              .timeout_ms = timeout_ms,
                              .connect_timeout_ms = 1000,
                              .max_response = 64 * 1024};
    http_client_response rs;
    err e;
    int rc = http_client_send(&rq, &rs, &e);
    long status = rs.status;
    http_client_response_free(&rs);
    buf_free(&header);
    return rc && status >= 200 && status < 300 ? 0 : status;
}

/* Records an attempt's outcome. Lock held. */
static void attempt_record(sp_sim *s, int64_t seq, long status)
{
    for (size_t i = 0; i < s->ndeliveries; i++) {
        spsim_delivery *d = &s->deliveries[i];
        if (d->seq != seq)
            continue;
        d->in_flight = false;
        if (d->state != SPSIM_PENDING)
            return; /* reset meanwhile */
        d->attempts++;
        d->last_status = status;
        char st[16];
        snprintf(st, sizeof st, "%ld", status);
        if (status >= 200 && status < 300) {
            d->state = SPSIM_DELIVERED;
        } else if (d->attempts > s->max_retries) {
            d->state = SPSIM_FAILED;
            log_warn("sim webhook given up", "event", d->event, "status", st);
        } else {
            d->next_ms =
                clock_mono_ms() + http_client_backoff_ms(d->attempts, s->retry_base_ms, 0, -1);
            log_info("sim webhook failed, will retry", "event", d->event, "status", st);
        }
        return;
    }
}

static void wait_ms(sp_sim *s, int64_t wait)
{
    if (wait > 1000)
        wait = 1000;
    if (wait < 1)
        wait = 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += wait / 1000;
    ts.tv_nsec += (wait % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&s->courier_wake, &s->lock, &ts);
}

void *spsim_delivery_worker(void *arg)
{
    spsim_courier *me = arg;
    sp_sim *s = me->s;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        int64_t due = 0;
        long i = s->hold ? -1 : next_due(s, &due);
        if (i < 0 || due > clock_mono_ms()) {
            wait_ms(s, i < 0 ? 1000 : due - clock_mono_ms());
            continue;
        }
        spsim_delivery *d = &s->deliveries[i];
        int64_t seq = d->seq;
        d->in_flight = true;
        me->job_id = d->job_id;
        char *url = str_dup(d->url), *secret = str_dup(d->secret), *body = str_dup(d->body);
        long timeout = s->opts.delivery_timeout_ms;
        pthread_mutex_unlock(&s->lock);
        long status = url && secret && body ? attempt_send(timeout, url, secret, body) : 0;
        free(url);
        free(secret);
        free(body);
        pthread_mutex_lock(&s->lock);
        attempt_record(s, seq, status);
        me->job_id = 0;
        if (s->ncouriers > 1)
            pthread_cond_broadcast(&s->courier_wake); /* that job's next event may go now */
        pthread_cond_broadcast(&s->idle);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}
