/*
 * sim.c - the SimplyPrint simulator's life cycle, its in-process helpers and the
 * control endpoints under /_sim/ that tests and the sandbox drive it with.
 *
 * The API lives in api.c, the printers in farm.c and webhook delivery in
 * delivery.c. Nothing here talks to the real SimplyPrint.
 */
#include "sim/simplyprint/sim_internal.h"

#include "core/clock.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "http/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_PRINTERS   2
#define FIRST_ITEM_ID      1337
#define FIRST_JOB_ID       456001
#define FIRST_PRINTER_ID   101
#define START_WEBHOOK_NAME "f3connect"

int spsim_grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * size);
    if (!p)
        return F3_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

double spsim_random(sp_sim *s)
{
    /* xorshift64*: reproducible from a seed, which is all a simulator needs */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

int spsim_answer(http_response *res, int http, bool ok, const char *message, json_t *extra)
{
    json_t *body = json_pack("{s:b,s:s?}", "status", ok, "message", message);
    if (!body) {
        json_decref(extra);
        return F3_ENOMEM;
    }
    if (extra)
        json_object_update(body, extra);
    json_decref(extra);
    return http_res_json(res, http, body);
}

/* ---- state changes shared by the helpers and the control endpoints --------------------- */

/* Adds a webhook for the job events to url. Lock held. 0 or F3_ENOMEM. */
static int add_job_webhook(sp_sim *s, const char *url, const char *secret)
{
    if (spsim_grow((void **)&s->webhooks, &s->webhooks_cap, s->nwebhooks, sizeof *s->webhooks))
        return F3_ENOMEM;
    spsim_webhook *w = &s->webhooks[s->nwebhooks];
    memset(w, 0, sizeof *w);
    w->events = json_pack("[ssss]", "job.started", "job.done", "job.failed", "job.cancelled");
    if (!w->events)
        return F3_ENOMEM;
    w->id = s->next_webhook_id++;
    snprintf(w->name, sizeof w->name, "%s", START_WEBHOOK_NAME);
    snprintf(w->url, sizeof w->url, "%s", url);
    snprintf(w->secret, sizeof w->secret, "%s", secret ? secret : "");
    w->enabled = true;
    s->nwebhooks++;
    return 0;
}

/* Back to the state after start. Lock held. */
static void reset_locked(sp_sim *s)
{
    for (size_t i = 0; i < s->nitems; i++)
        json_decref(s->items[i].custom_fields);
    s->nitems = 0;
    for (size_t i = 0; i < s->njobs; i++)
        json_decref(s->jobs[i].custom_fields);
    s->njobs = 0;
    for (size_t i = 0; i < s->nprinters; i++) {
        s->printers[i].job_id = 0;
        s->printers[i].paused = s->opts.paused;
    }
    spsim_deliveries_clear(s);
    spsim_webhooks_clear(s);
    s->next_webhook_id = 1;
    if (s->start_url)
        add_job_webhook(s, s->start_url, s->start_secret);
    s->fault = (spsim_fault){0};
    s->latency_ms = s->opts.latency_ms;
    s->print_ms = s->opts.print_ms;
    s->fail_rate = s->opts.fail_rate;
    s->cancel_rate = s->opts.cancel_rate;
    s->drop_rate = s->opts.drop_rate;
    s->duplicate_rate = s->opts.duplicate_rate;
    s->drop_next = s->duplicate_next = 0;
    s->hold = false;
    pthread_cond_broadcast(&s->farm_wake);
    pthread_cond_broadcast(&s->courier_wake);
    pthread_cond_broadcast(&s->idle);
}

void sp_sim_reset(sp_sim *s)
{
    pthread_mutex_lock(&s->lock);
    reset_locked(s);
    pthread_mutex_unlock(&s->lock);
}

json_t *sp_sim_state(sp_sim *s)
{
    json_t *queue = json_array(), *done = json_array(), *jobs = json_array(),
           *printers = json_array(), *hooks = json_array();
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nitems; i++)
        json_array_append_new(s->items[i].done_s ? done : queue, spsim_item_json(&s->items[i]));
    for (size_t i = 0; i < s->njobs; i++)
        json_array_append_new(jobs, spsim_job_row_json(s, &s->jobs[i]));
    for (size_t i = 0; i < s->nprinters; i++)
        json_array_append_new(printers, spsim_printer_json(s, &s->printers[i]));
    for (size_t i = 0; i < s->nwebhooks; i++)
        json_array_append_new(hooks, spsim_webhook_json(&s->webhooks[i]));
    json_t *state = json_pack(
        "{s:o,s:o,s:o,s:o,s:o,s:o,s:{s:i,s:i,s:I,s:I,s:I},s:{s:f,s:f,s:i,s:i,s:b},s:{s:I,s:f,s:f}}",
        "queue", queue, "done_items", done, "jobs", jobs, "printers", printers, "webhooks", hooks,
        "deliveries", spsim_deliveries_json(s), "faults", "count", s->fault.count, "status",
        s->fault.status, "retry_after", (json_int_t)s->fault.retry_after_s, "delay_ms",
        (json_int_t)s->fault.delay_ms, "latency_ms", (json_int_t)s->latency_ms, "webhook_faults",
        "drop_rate", s->drop_rate, "duplicate_rate", s->duplicate_rate, "drop_next", s->drop_next,
        "duplicate_next", s->duplicate_next, "hold", s->hold, "farm", "print_ms",
        (json_int_t)s->print_ms, "fail_rate", s->fail_rate, "cancel_rate", s->cancel_rate);
    pthread_mutex_unlock(&s->lock);
    return state;
}

int sp_sim_fault(sp_sim *s, int status, int count, long retry_after_s, long delay_ms)
{
    if (count < 0 || count > 1000 || retry_after_s < -1 || retry_after_s > 3600 || delay_ms < 0 ||
        delay_ms > 60000 || !(status == 0 || status == 429 || (status >= 500 && status <= 504)))
        return F3_EINVAL;
    pthread_mutex_lock(&s->lock);
    s->fault = (spsim_fault){
        .count = count, .status = status, .retry_after_s = retry_after_s, .delay_ms = delay_ms};
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int sp_sim_set_farm(sp_sim *s, long print_ms, double fail_rate, double cancel_rate)
{
    if (fail_rate > 1 || cancel_rate > 1 || print_ms > 3600000)
        return F3_EINVAL;
    pthread_mutex_lock(&s->lock);
    if (print_ms >= 0)
        s->print_ms = print_ms;
    if (fail_rate >= 0)
        s->fail_rate = fail_rate;
    if (cancel_rate >= 0)
        s->cancel_rate = cancel_rate;
    pthread_cond_broadcast(&s->farm_wake);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int sp_sim_pause(sp_sim *s, int64_t printer_id, bool paused)
{
    int rc = printer_id ? F3_ENOTFOUND : 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nprinters; i++) {
        if (printer_id && s->printers[i].id != printer_id)
            continue;
        s->printers[i].paused = paused;
        rc = 0;
    }
    pthread_cond_broadcast(&s->farm_wake);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int sp_sim_end_job(sp_sim *s, int64_t job_id, sp_job_state how, const char *reason, err *e)
{
    if (how != SP_JOB_DONE && how != SP_JOB_FAILED && how != SP_JOB_CANCELLED)
        return err_set(e, F3_EINVAL, "a job can only be finished, failed or cancelled");
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    spsim_job *j = spsim_find_job(s, job_id);
    if (!j)
        rc = err_set(e, F3_ENOTFOUND, "no print job %lld", (long long)job_id);
    else if (j->state != SP_JOB_ONGOING)
        rc = err_set(e, F3_ECONFLICT, "print job %lld has already ended (%s)", (long long)job_id,
                     sp_job_state_name(j->state));
    else
        spsim_end_job(s, j, how, reason);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void sp_sim_delivery_faults(sp_sim *s, double drop_rate, double duplicate_rate, int drop_next,
                            int duplicate_next)
{
    pthread_mutex_lock(&s->lock);
    if (drop_rate >= 0)
        s->drop_rate = drop_rate > 1 ? 1 : drop_rate;
    if (duplicate_rate >= 0)
        s->duplicate_rate = duplicate_rate > 1 ? 1 : duplicate_rate;
    if (drop_next >= 0)
        s->drop_next = drop_next;
    if (duplicate_next >= 0)
        s->duplicate_next = duplicate_next;
    pthread_mutex_unlock(&s->lock);
}

void sp_sim_hold_deliveries(sp_sim *s, bool hold, bool reverse)
{
    pthread_mutex_lock(&s->lock);
    s->hold = hold;
    if (!hold && reverse) {
        /* The newest pending delivery becomes due first, the oldest last. */
        int64_t now = clock_mono_ms(), rank = (int64_t)spsim_pending_deliveries(s);
        for (size_t i = 0; i < s->ndeliveries; i++)
            if (s->deliveries[i].state == SPSIM_PENDING)
                s->deliveries[i].next_ms = now + --rank;
    }
    pthread_cond_broadcast(&s->courier_wake);
    pthread_mutex_unlock(&s->lock);
}

/* Nothing queued, printing or waiting to be delivered. Lock held. */
static bool idle_locked(const sp_sim *s)
{
    for (size_t i = 0; i < s->nitems; i++)
        if (!s->items[i].done_s && s->items[i].left > 0)
            return false;
    for (size_t i = 0; i < s->njobs; i++)
        if (s->jobs[i].state == SP_JOB_ONGOING)
            return false;
    return spsim_pending_deliveries(s) == 0;
}

int sp_sim_wait_idle(sp_sim *s, long timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;
    pthread_mutex_lock(&s->lock);
    bool idle;
    while (!(idle = idle_locked(s)) && clock_mono_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->idle, &s->lock, &ts);
    }
    pthread_mutex_unlock(&s->lock);
    return idle ? 0 : F3_EBUSY;
}

/* ---- control endpoints ------------------------------------------------------------------ */

/* The JSON object body of a control request, or an empty one; NULL when res holds a 400. */
static json_t *control_body(http_request *req, http_response *res)
{
    size_t len = 0;
    http_req_body(req, &len);
    json_t *b = NULL;
    if (len == 0)
        return json_object();
    if (http_req_json(req, &b, res))
        return NULL;
    if (!json_is_object(b)) {
        json_decref(b);
        http_res_error(res, 400, "expected a JSON object");
        return NULL;
    }
    return b;
}

static int h_health(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    sp_sim *s = ctx;
    return http_res_json(res, 200,
                         json_pack("{s:s,s:s}", "status", "ok", "company", s->company_id));
}

static int h_state(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    return http_res_json(res, 200, sp_sim_state(ctx));
}

static int h_deliveries(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    sp_sim *s = ctx;
    pthread_mutex_lock(&s->lock);
    json_t *list = spsim_deliveries_json(s);
    pthread_mutex_unlock(&s->lock);
    return http_res_json(res, 200, json_pack("{s:o}", "deliveries", list));
}

/* POST /_sim/jobs/:id/:action (finish|fail|cancel), body {"reason": "..."} optional. */
static int h_job_action(http_request *req, http_response *res, void *ctx)
{
    sp_sim *s = ctx;
    json_t *b = control_body(req, res);
    if (!b)
        return 0;
    const char *action = http_req_param(req, "action");
    const char *reason = json_string_value(json_object_get(b, "reason"));
    int64_t id = 0;
    sp_job_state how = str_eq(action, "finish")   ? SP_JOB_DONE
                       : str_eq(action, "fail")   ? SP_JOB_FAILED
                       : str_eq(action, "cancel") ? SP_JOB_CANCELLED
                                                  : SP_JOB_UNKNOWN;
    err e;
    int rc;
    if (str_to_int64(http_req_param(req, "id"), &id) || how == SP_JOB_UNKNOWN) {
        rc = http_res_error(res, 400, "expected /_sim/jobs/{id}/finish|fail|cancel");
    } else if ((rc = sp_sim_end_job(s, id, how, reason, &e)) != 0) {
        rc = http_res_error(res, rc == F3_ENOTFOUND ? 404 : 409, "%s", e.msg);
    } else {
        rc = http_res_json(
            res, 200,
            json_pack("{s:I,s:s}", "id", (json_int_t)id, "state", sp_job_state_name(how)));
    }
    json_decref(b);
    return rc;
}

/* POST /_sim/faults {"kind": "429|500|502|503|504|timeout|none", "count": N,
 * "retry_after": s, "delay_ms": ms, "latency_ms": ms}. */
static int h_faults(http_request *req, http_response *res, void *ctx)
{
    sp_sim *s = ctx;
    json_t *b = control_body(req, res);
    if (!b)
        return 0;
    const char *kind = json_string_value(json_object_get(b, "kind"));
    int64_t count = 1, retry_after = 2, delay = 6000, latency = -1, status = 0;
    err e;
    int rc;
    bool bad =
        json_opt_int(b, "count", &count, 1, &e) ||
        json_opt_int(b, "retry_after", &retry_after, 2, &e) ||
        json_opt_int(b, "delay_ms", &delay, 6000, &e) ||
        json_opt_int(b, "latency_ms", &latency, -1, &e) || latency > 60000 || count > 1000 ||
        (kind && !str_eq(kind, "timeout") && !str_eq(kind, "none") && str_to_int64(kind, &status));
    if (!bad && kind)
        bad = sp_sim_fault(s, (int)status, str_eq(kind, "none") ? 0 : (int)count, (long)retry_after,
                           (long)delay) != 0;
    if (bad) {
        rc = http_res_error(res, 400,
                            "expected {\"kind\": \"429|500|502|503|504|timeout|none\", \"count\": "
                            "N, \"retry_after\": s, \"delay_ms\": ms, \"latency_ms\": ms}");
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    if (latency >= 0)
        s->latency_ms = (long)latency;
    pthread_mutex_unlock(&s->lock);
    rc = http_res_json(
        res, 200, json_pack("{s:s?,s:I}", "kind", kind, "pending", (json_int_t)(kind ? count : 0)));
out:
    json_decref(b);
    return rc;
}

/* POST /_sim/printers {"printer": id (0 = all), "paused": bool, "print_ms": ms,
 * "fail_rate": 0..1, "cancel_rate": 0..1}. */
static int h_printers(http_request *req, http_response *res, void *ctx)
{
    sp_sim *s = ctx;
    json_t *b = control_body(req, res);
    if (!b)
        return 0;
    int64_t printer = 0, print_ms = -1;
    json_t *paused = json_object_get(b, "paused");
    json_t *fail = json_object_get(b, "fail_rate"), *cancel = json_object_get(b, "cancel_rate");
    err e;
    int rc;
    if (json_opt_int(b, "printer", &printer, 0, &e) ||
        json_opt_int(b, "print_ms", &print_ms, -1, &e) || print_ms > 3600000 ||
        (paused && !json_is_boolean(paused)) ||
        (fail &&
         (!json_is_number(fail) || json_number_value(fail) < 0 || json_number_value(fail) > 1)) ||
        (cancel && (!json_is_number(cancel) || json_number_value(cancel) < 0 ||
                    json_number_value(cancel) > 1))) {
        rc = http_res_error(res, 400,
                            "expected {\"printer\": id, \"paused\": bool, \"print_ms\": ms, "
                            "\"fail_rate\": 0..1, \"cancel_rate\": 0..1}");
        goto out;
    }
    if (paused && sp_sim_pause(s, printer, json_is_true(paused)) != 0) {
        rc = http_res_error(res, 404, "no printer %lld", (long long)printer);
        goto out;
    }
    sp_sim_set_farm(s, (long)print_ms, fail ? json_number_value(fail) : -1,
                    cancel ? json_number_value(cancel) : -1);
    pthread_mutex_lock(&s->lock);
    json_t *list = json_array();
    for (size_t i = 0; i < s->nprinters; i++)
        json_array_append_new(list, spsim_printer_json(s, &s->printers[i]));
    pthread_cond_broadcast(&s->farm_wake);
    pthread_mutex_unlock(&s->lock);
    rc = http_res_json(res, 200, json_pack("{s:o}", "printers", list));
out:
    json_decref(b);
    return rc;
}

/* Sets or removes (url null) the start-up webhook. Lock held. */
static int set_start_webhook(sp_sim *s, const json_t *url, const char *secret)
{
    for (size_t i = 0; i < s->nwebhooks; i++) {
        if (!str_eq(s->webhooks[i].name, START_WEBHOOK_NAME))
            continue;
        json_decref(s->webhooks[i].events);
        memmove(&s->webhooks[i], &s->webhooks[i + 1], (s->nwebhooks - i - 1) * sizeof *s->webhooks);
        s->nwebhooks--;
        break;
    }
    free(s->start_url);
    free(s->start_secret);
    s->start_url = json_is_string(url) ? str_dup(json_string_value(url)) : NULL;
    s->start_secret = secret ? str_dup(secret) : NULL;
    return s->start_url ? add_job_webhook(s, s->start_url, s->start_secret) : 0;
}

static bool rate_ok(const json_t *v)
{
    return !v || (json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) <= 1);
}

/* POST /_sim/webhooks {"url": "http://..."|null, "secret": "...", "drop_rate",
 * "duplicate_rate", "drop_next", "duplicate_next", "hold", "reverse", "retry_base_ms",
 * "max_retries"}. */
static int h_webhooks(http_request *req, http_response *res, void *ctx)
{
    sp_sim *s = ctx;
    json_t *b = control_body(req, res);
    if (!b)
        return 0;
    json_t *url = json_object_get(b, "url"), *hold = json_object_get(b, "hold");
    json_t *drop = json_object_get(b, "drop_rate"), *dup = json_object_get(b, "duplicate_rate");
    const char *secret = json_string_value(json_object_get(b, "secret"));
    int64_t drop_next = -1, dup_next = -1, base = -1, retries = -2;
    bool reverse = false;
    err e;
    int rc;
    if ((url && !json_is_null(url) &&
         (!json_is_string(url) || (!str_starts_with(json_string_value(url), "http://") &&
                                   !str_starts_with(json_string_value(url), "https://")))) ||
        (secret && strlen(secret) > SP_WEBHOOK_SECRET_MAX) || !rate_ok(drop) || !rate_ok(dup) ||
        (hold && !json_is_boolean(hold)) || json_opt_bool(b, "reverse", &reverse, false, &e) ||
        json_opt_int(b, "drop_next", &drop_next, -1, &e) ||
        json_opt_int(b, "duplicate_next", &dup_next, -1, &e) ||
        json_opt_int(b, "retry_base_ms", &base, -1, &e) ||
        json_opt_int(b, "max_retries", &retries, -2, &e) || drop_next > 1000 || dup_next > 1000 ||
        base > 3600000 || retries < -2 || retries > 30) {
        rc = http_res_error(res, 400,
                            "expected {\"url\": \"http://...\", \"secret\": \"...\", "
                            "\"drop_rate\": 0..1, \"duplicate_rate\": 0..1, \"drop_next\": n, "
                            "\"duplicate_next\": n, \"hold\": bool, \"reverse\": bool, "
                            "\"retry_base_ms\": ms, \"max_retries\": n}");
        goto out;
    }
    sp_sim_delivery_faults(s, drop ? json_number_value(drop) : -1,
                           dup ? json_number_value(dup) : -1, (int)drop_next, (int)dup_next);
    if (hold)
        sp_sim_hold_deliveries(s, json_is_true(hold), reverse);
    pthread_mutex_lock(&s->lock);
    int failed = url ? set_start_webhook(s, url, secret) : 0;
    if (base > 0)
        s->retry_base_ms = (long)base;
    if (retries >= -1)
        s->max_retries = retries < 0 ? 0 : (int)retries;
    json_t *hooks = json_array();
    for (size_t i = 0; i < s->nwebhooks; i++)
        json_array_append_new(hooks, spsim_webhook_json(&s->webhooks[i]));
    pthread_mutex_unlock(&s->lock);
    if (failed) {
        json_decref(hooks);
        rc = http_res_error(res, 500, "out of memory");
    } else {
        rc = http_res_json(res, 200, json_pack("{s:o}", "webhooks", hooks));
    }
out:
    json_decref(b);
    return rc;
}

static int h_reset(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    sp_sim_reset(ctx);
    return http_res_json(res, 200, json_pack("{s:b}", "reset", 1));
}

static int add_control_routes(sp_sim *s, err *e)
{
    const http_route routes[] = {
        {"GET", "/_sim/health", h_health, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/_sim/state", h_state, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/_sim/deliveries", h_deliveries, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/jobs/:id/:action", h_job_action, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/faults", h_faults, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/printers", h_printers, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/webhooks", h_webhooks, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/reset", h_reset, s, HTTP_ACCESS_PUBLIC},
    };
    return http_router_add(s->router, routes, sizeof routes / sizeof routes[0], e);
}

/* ---- life cycle ------------------------------------------------------------------------- */

static void sim_free(sp_sim *s)
{
    http_router_free(s->router);
    for (size_t i = 0; i < s->nitems; i++)
        json_decref(s->items[i].custom_fields);
    for (size_t i = 0; i < s->njobs; i++)
        json_decref(s->jobs[i].custom_fields);
    spsim_deliveries_clear(s);
    spsim_webhooks_clear(s);
    free(s->items);
    free(s->jobs);
    free(s->webhooks);
    free(s->deliveries);
    if (s->api_key)
        crypto_wipe(s->api_key, strlen(s->api_key));
    free(s->api_key);
    free(s->start_url);
    free(s->start_secret);
    pthread_cond_destroy(&s->farm_wake);
    pthread_cond_destroy(&s->courier_wake);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static const char *check_opts(const sp_sim_opts *o)
{
    const char *company = o->company_id && *o->company_id ? o->company_id : SP_SIM_DEFAULT_COMPANY;
    size_t n = strlen(company);
    for (size_t i = 0; i < n; i++)
        if (company[i] < '0' || company[i] > '9')
            return "the company id must be digits";
    if (n >= 20)
        return "the company id is too long";
    if (!o->api_key || !*o->api_key)
        return "the SimplyPrint simulator needs an API key";
    if (o->webhook_url && *o->webhook_url && !str_starts_with(o->webhook_url, "http://") &&
        !str_starts_with(o->webhook_url, "https://"))
        return "webhook URL must be http:// or https://";
    if (o->webhook_url && strlen(o->webhook_url) >= 1024)
        return "webhook URL is too long";
    if (o->webhook_secret && strlen(o->webhook_secret) > SP_WEBHOOK_SECRET_MAX)
        return "webhook secret is longer than 128 characters";
    if (o->printers < 0 || o->printers > SPSIM_PRINTERS_MAX)
        return "printers must be between 1 and 64";
    if (o->couriers < 0 || o->couriers > SP_SIM_COURIERS_MAX)
        return "couriers must be between 0 and 8";
    if (o->print_ms < 0 || o->latency_ms < 0 || o->retry_base_ms < 0 ||
        o->delivery_timeout_ms < 0 || o->max_retries < -1)
        return "times and counts must not be negative";
    if (!(o->fail_rate >= 0 && o->fail_rate <= 1 && o->cancel_rate >= 0 && o->cancel_rate <= 1 &&
          o->fail_rate + o->cancel_rate <= 1))
        return "fail and cancel rates must be between 0 and 1 and add up to at most 1";
    if (!(o->drop_rate >= 0 && o->drop_rate <= 1 && o->duplicate_rate >= 0 &&
          o->duplicate_rate <= 1))
        return "drop and duplicate rates must be between 0 and 1";
    return NULL;
}

static void init_state(sp_sim *s, const sp_sim_opts *o)
{
    s->opts = *o;
    s->opts.host = s->opts.company_id = s->opts.api_key = NULL;
    s->opts.webhook_url = s->opts.webhook_secret = NULL;
    s->opts.retry_base_ms = o->retry_base_ms ? o->retry_base_ms : 1000;
    s->opts.max_retries = o->max_retries == 0 ? 3 : o->max_retries < 0 ? 0 : o->max_retries;
    s->opts.delivery_timeout_ms = o->delivery_timeout_ms ? o->delivery_timeout_ms : 5000;
    s->retry_base_ms = s->opts.retry_base_ms;
    s->max_retries = s->opts.max_retries;
    s->rng = o->seed ? o->seed : 0;
    while (s->rng == 0)
        crypto_random(&s->rng, sizeof s->rng);
    s->nprinters = o->printers ? (size_t)o->printers : DEFAULT_PRINTERS;
    for (size_t i = 0; i < s->nprinters; i++) {
        s->printers[i].id = FIRST_PRINTER_ID + (int64_t)i;
        snprintf(s->printers[i].name, sizeof s->printers[i].name, "MK4-%02zu", i + 1);
    }
    s->next_item_id = FIRST_ITEM_ID;
    s->next_job_id = FIRST_JOB_ID;
    reset_locked(s);
}

sp_sim *sp_sim_start(const sp_sim_opts *o, err *e)
{
    const char *why = check_opts(o);
    if (why) {
        err_set(e, F3_EINVAL, "%s", why);
        return NULL;
    }
    sp_sim *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, F3_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->farm_wake, NULL);
    pthread_cond_init(&s->courier_wake, NULL);
    pthread_cond_init(&s->idle, NULL);
    snprintf(s->company_id, sizeof s->company_id, "%s",
             o->company_id && *o->company_id ? o->company_id : SP_SIM_DEFAULT_COMPANY);
    s->api_key = str_dup(o->api_key);
    bool has_url = o->webhook_url && *o->webhook_url;
    s->start_url = has_url ? str_dup(o->webhook_url) : NULL;
    s->start_secret = has_url && o->webhook_secret ? str_dup(o->webhook_secret) : NULL;
    s->router = http_router_new();
    if (!s->api_key || (has_url && !s->start_url) ||
        (has_url && o->webhook_secret && !s->start_secret) || !s->router) {
        err_set(e, F3_ENOMEM, "out of memory");
        goto fail;
    }
    init_state(s, o);
    if (add_control_routes(s, e) || spsim_api_add_routes(s, e))
        goto fail;
    if (http_client_init() != 0) {
        err_set(e, F3_EIO, "cannot initialise the HTTP client library");
        goto fail;
    }
    if (pthread_create(&s->farm, NULL, spsim_farm_worker, s) != 0) {
        http_client_cleanup();
        err_set(e, F3_EIO, "cannot start the printer farm thread");
        goto fail;
    }
    s->farm_started = true;
    s->ncouriers = o->couriers > 0 ? (size_t)o->couriers : 1;
    for (size_t i = 0; i < s->ncouriers; i++) {
        spsim_courier *c = &s->couriers[i];
        c->s = s;
        if (pthread_create(&c->thread, NULL, spsim_delivery_worker, c) != 0) {
            err_set(e, F3_EIO, "cannot start the webhook delivery threads");
            sp_sim_stop(s);
            return NULL;
        }
        c->started = true;
    }
    http_server_opts so = {.host = o->host && *o->host ? o->host : "127.0.0.1",
                           .port = o->port,
                           .threads = 4,
                           .shutdown_timeout_ms = 2000};
    s->server = http_server_start(s->router, &so, e);
    if (!s->server) {
        sp_sim_stop(s);
        return NULL;
    }
    return s;
fail:
    sim_free(s);
    return NULL;
}

int sp_sim_port(const sp_sim *s)
{
    return http_server_port(s->server);
}

void sp_sim_stop(sp_sim *s)
{
    if (!s)
        return;
    http_server_stop(s->server);
    s->server = NULL;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->farm_wake);
    pthread_cond_broadcast(&s->courier_wake);
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
    if (s->farm_started)
        pthread_join(s->farm, NULL);
    for (size_t i = 0; i < s->ncouriers; i++)
        if (s->couriers[i].started)
            pthread_join(s->couriers[i].thread, NULL);
    if (s->farm_started)
        http_client_cleanup();
    sim_free(s);
}
