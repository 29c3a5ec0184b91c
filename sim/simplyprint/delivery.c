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
 * The shared courier (sim/common/delivery.c) sends them from opts.couriers threads (one
 * by default), each job's events one at a time so that they arrive in order unless a
 * retry intervenes: any 2xx is success; anything else or no answer within the timeout
 * is retried after retry_base_ms * 2^(n-1) up to max_retries times (SimplyPrint's own
 * retry policy is not documented), and held deliveries can be released newest first. Faults decided
 * here: dropped deliveries (never sent) and duplicated ones (two identical POSTs).
 */
#include "sim/simplyprint/sim_internal.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void spsim_webhooks_clear(sp_sim *s)
{
    for (size_t i = 0; i < s->nwebhooks; i++)
        json_decref(s->webhooks[i].events);
    s->nwebhooks = 0;
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
    buf headers;
    buf_init(&headers, 0);
    buf_puts(&headers, "User-Agent: SimplyPrint-Webhooks (f3connect simulator)\n");
    if (w->secret[0])
        buf_printf(&headers, SP_HEADER_SECRET ": %s\n", w->secret);
    for (int i = 0; i < (n ? n : 1); i++) {
        json_t *fields = json_pack("{s:I,s:s,s:I,s:b}", "webhookId", (json_int_t)w->id, "event",
                                   event, "jobId", (json_int_t)job_id, "duplicate", i > 0);
        if (!sim_courier_add(&s->courier, event, job_id, w->url, buf_cstr(&body),
                             buf_cstr(&headers), fields,
                             n ? SIM_DELIVERY_PENDING : SIM_DELIVERY_DROPPED))
            break;
        if (!n) {
            char id[24];
            snprintf(id, sizeof id, "%lld", (long long)job_id);
            log_info("sim webhook dropped", "event", event, "jobId", id);
        }
    }
    buf_free(&headers);
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

json_t *spsim_webhook_json(const spsim_webhook *w)
{
    return json_pack("{s:I,s:s,s:s,s:O,s:s?,s:b}", "id", (json_int_t)w->id, "name", w->name, "url",
                     w->url, "events", w->events, "secret", w->secret[0] ? w->secret : NULL,
                     "enabled", w->enabled);
}
