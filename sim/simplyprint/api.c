/*
 * api.c - the simulated SimplyPrint REST API under /{company_id}/: account/Test, the
 * print queue (AddItem, GetItem, GetItems, DeleteItem), printers/Get, the job history
 * (GetPaginatedPrintJobs, GetDetails) and webhook management (Create, Get, Delete).
 *
 * Every request passes one gate, in this order: added latency, an injected fault
 * (429 + Retry-After, 5xx, or a stall), X-API-KEY (401), the company in the path
 * (403). Answers use SimplyPrint's envelope {"status", "message", ...}; logical
 * failures are HTTP 200 with "status": false, as the real API reports them, except
 * a job that does not exist (404), so that clients see both forms.
 */
#include "sim/simplyprint/sim_internal.h"

#include "core/clock.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "sim/common/wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* True when the request may proceed; otherwise res holds the answer. */
static bool gate(sp_sim *s, http_request *req, http_response *res)
{
    pthread_mutex_lock(&s->lock);
    long latency = s->latency_ms;
    sim_fault f;
    bool faulty = sim_fault_take(&s->fault, NULL, &f);
    pthread_mutex_unlock(&s->lock);
    sim_sleep_ms(latency);
    if (faulty && sim_fault_act(&f, res)) {
        spsim_answer(res, f.status, false,
                     f.status == 429 ? "Too many requests, slow down" : "Server error", NULL);
        return false;
    }
    if (!crypto_str_equal(http_req_header(req, "X-API-KEY"), s->api_key)) {
        spsim_answer(res, 401, false, "Invalid API key", NULL);
        return false;
    }
    if (!str_eq(http_req_param(req, "company"), s->company_id)) {
        spsim_answer(res, 403, false, "You do not have access to this company", NULL);
        return false;
    }
    return true;
}

/* The JSON body, or an empty object for an empty body. NULL when res holds a 400. */
static json_t *body_or_empty(http_request *req, http_response *res)
{
    size_t len = 0;
    const char *text = http_req_body(req, &len);
    json_t *doc = NULL;
    err e;
    if (len == 0)
        return json_object();
    if (json_parse(text, len, &doc, &e) != 0) {
        spsim_answer(res, 400, false, e.msg, NULL);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        spsim_answer(res, 400, false, "The request body must be a JSON object", NULL);
        return NULL;
    }
    return doc;
}

/* The gate, then the body (body_or_empty) of a request that passed it. NULL when res
 * holds the answer. */
static json_t *gated_body(sp_sim *s, http_request *req, http_response *res)
{
    return gate(s, req, res) ? body_or_empty(req, res) : NULL;
}

/* A positive id from query parameter `name`; 0 when absent or malformed. */
static int64_t query_id(http_request *req, const char *name)
{
    int64_t id = 0;
    const char *v = http_req_query_param(req, name);
    return v && str_to_int64(v, &id) == 0 && id > 0 ? id : 0;
}

static int h_account_test(http_request *req, http_response *res, void *ctx)
{
    if (!gate(ctx, req, res))
        return 0;
    return spsim_answer(res, 200, true, "Your API key is valid!", NULL);
}

/* ---- queue --------------------------------------------------------------------------------- */

/* Reads AddItem's fields into it; a message for SimplyPrint's "status": false, or NULL. */
static const char *read_add_item(const json_t *b, spsim_item *it)
{
    const char *fs = json_string_value(json_object_get(b, "filesystem"));
    const char *api = json_string_value(json_object_get(b, "fileId"));
    json_t *amount = json_object_get(b, "amount"), *group = json_object_get(b, "group");
    json_t *fields = json_object_get(b, "custom_fields");
    if ((fs && *fs) == (api && *api))
        return "Specify exactly one of filesystem or fileId";
    if ((fs && strlen(fs) >= sizeof it->filesystem_id) || (api && strlen(api) >= 120))
        return "Invalid file id";
    if (amount && !(json_is_integer(amount) && json_integer_value(amount) >= 1 &&
                    json_integer_value(amount) <= 1000))
        return "The amount must be an integer between 1 and 1000";
    if (group && !(json_is_integer(group) && json_integer_value(group) >= 0))
        return "Invalid queue group";
    if (fields && !json_is_array(fields))
        return "custom_fields must be an array";
    it->amount = amount ? (int)json_integer_value(amount) : 1;
    it->left = it->amount;
    it->group = group ? json_integer_value(group) : 0;
    if (fs)
        snprintf(it->filesystem_id, sizeof it->filesystem_id, "%s", fs);
    else
        snprintf(it->file_id, sizeof it->file_id, "%s", api);
    snprintf(it->filename, sizeof it->filename, "%s.gcode", fs ? fs : api);
    it->custom_fields = fields ? json_incref(fields) : NULL;
    return NULL;
}

static int h_queue_add(http_request *req, http_response *res, void *ctx)
{
    sp_sim *s = ctx;
    json_t *b = gated_body(s, req, res);
    if (!b)
        return 0;
    spsim_item it;
    memset(&it, 0, sizeof it);
    const char *why = read_add_item(b, &it);
    json_decref(b);
    if (why)
        return spsim_answer(res, 200, false, why, NULL);
    pthread_mutex_lock(&s->lock);
    int rc = spsim_grow((void **)&s->items, &s->items_cap, s->nitems, sizeof *s->items);
    if (rc == 0) {
        it.id = s->next_item_id++;
        it.created_s = clock_now_ms() / 1000;
        s->items[s->nitems++] = it;
        pthread_cond_broadcast(&s->farm_wake);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc) {
        json_decref(it.custom_fields);
        return spsim_answer(res, 500, false, "Out of memory", NULL);
    }
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)it.id);
    log_info("sim queue item added", "id", id, "file", it.filename);
    return spsim_answer(res, 200, true, NULL, json_pack("{s:I}", "created_id", (json_int_t)it.id));
}

static int h_queue_get(http_request *req, http_response *res, void *ctx)
{
    sp_sim *s = ctx;
    if (!gate(s, req, res))
        return 0;
    int64_t id = query_id(req, "id");
    if (!id)
        return spsim_answer(res, 200, false, "Missing or invalid id", NULL);
    pthread_mutex_lock(&s->lock);
    spsim_item *it = spsim_find_item(s, id);
    json_t *item = it && !it->done_s ? spsim_item_json(it) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!item)
        return spsim_answer(res, 200, false, "Queue item not found", NULL);
    return spsim_answer(res, 200, true, NULL, json_pack("{s:o}", "queue", item));
}

static int h_queue_list(http_request *req, http_response *res, void *ctx)
{
    sp_sim *s = ctx;
    if (!gate(s, req, res))
        return 0;
    bool with_done =
        http_req_query_param(req, "include_done") || http_req_query_param(req, "groups");
    json_t *items = json_array(), *done = json_array();
    pthread_mutex_lock(&s->lock);
    int index = 0;
    for (size_t i = 0; i < s->nitems; i++) {
        json_t *o = spsim_item_json(&s->items[i]);
        if (o && !s->items[i].done_s)
            json_object_set_new(o, "index", json_integer(index++));
        json_array_append_new(s->items[i].done_s ? done : items, o);
    }
    pthread_mutex_unlock(&s->lock);
    json_t *queue = json_pack("{s:o}", "items", items);
    if (with_done)
        json_object_set_new(queue, "done_items", done);
    else
        json_decref(done);
    return spsim_answer(res, 200, true, NULL, json_pack("{s:o}", "queue", queue));
}

#define DELETE_IDS_MAX 64

/* The ids of a DeleteItem: ?job=ID or ?jobs=ID,ID,...; how many (0 = none usable). */
static size_t delete_ids(http_request *req, int64_t ids[DELETE_IDS_MAX])
{
    int64_t one = query_id(req, "job");
    if (one) {
        ids[0] = one;
        return 1;
    }
    const char *list = http_req_query_param(req, "jobs");
    char text[1024];
    snprintf(text, sizeof text, "%s", list ? list : "");
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(text, ",", &save); t && n < DELETE_IDS_MAX;
         t = strtok_r(NULL, ",", &save))
        if (str_to_int64(t, &ids[n]) == 0 && ids[n] > 0)
            n++;
    return n;
}

/* DeleteItem?job=ID or ?jobs=ID,ID (GET as the docs show, POST as the n8n node sends). */
static int h_queue_delete(http_request *req, http_response *res, void *ctx)
{
    sp_sim *s = ctx;
    if (!gate(s, req, res))
        return 0;
    int64_t ids[DELETE_IDS_MAX];
    size_t n = delete_ids(req, ids);
    if (n == 0)
        return spsim_answer(res, 200, false, "Missing job id", NULL);
    int found = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t k = 0; k < n; k++) {
        spsim_item *it = spsim_find_item(s, ids[k]);
        if (!it || it->done_s)
            continue;
        found++;
        json_decref(it->custom_fields);
        size_t at = (size_t)(it - s->items);
        memmove(it, it + 1, (s->nitems - at - 1) * sizeof *s->items);
        s->nitems--;
    }
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
    if (!found)
        return spsim_answer(res, 200, false, "Queue item not found", NULL);
    return spsim_answer(res, 200, true, NULL, json_pack("{s:i}", "deleted", found));
}

/* ---- printers ------------------------------------------------------------------------------ */

/* page / page_size of a listing body; a message when they are unusable. */
static const char *read_paging(const json_t *b, int64_t *page, int64_t *size)
{
    err e;
    if (json_opt_int(b, "page", page, 1, &e) || json_opt_int(b, "page_size", size, 10, &e))
        return "page and page_size must be integers";
    if (*page < 1 || *size < 1 || *size > SP_PAGE_SIZE_MAX)
        return "page must be >= 1 and page_size between 1 and 100";
    return NULL;
}

static int h_printers_get(http_request *req, http_response *res, void *ctx)
{
    sp_sim *s = ctx;
    json_t *b = gated_body(s, req, res);
    if (!b)
        return 0;
    int64_t page, size, pid = query_id(req, "pid");
    const char *why = read_paging(b, &page, &size);
    json_decref(b);
    if (why)
        return spsim_answer(res, 200, false, why, NULL);
    json_t *data = pid ? NULL : json_array(), *one = NULL;
    pthread_mutex_lock(&s->lock);
    size_t n = s->nprinters;
    for (size_t i = 0; i < n; i++) {
        if (pid && s->printers[i].id == pid)
            one = spsim_printer_json(s, &s->printers[i]);
        else if (!pid && (int64_t)i >= (page - 1) * size && (int64_t)i < page * size)
            json_array_append_new(data, spsim_printer_json(s, &s->printers[i]));
    }
    pthread_mutex_unlock(&s->lock);
    if (pid && !one)
        return spsim_answer(res, 200, false, "Printer not found", NULL);
    int64_t pages = ((int64_t)n + size - 1) / size;
    return spsim_answer(res, 200, true, NULL,
                        json_pack("{s:o,s:I}", "data", pid ? one : data, "page_amount",
                                  (json_int_t)(pages ? pages : 1)));
}

/* ---- job history ------------------------------------------------------------------------- */

static int h_jobs_list(http_request *req, http_response *res, void *ctx)
{
    sp_sim *s = ctx;
    json_t *b = gated_body(s, req, res);
    if (!b)
        return 0;
    int64_t page, size, from = 0, to = 0;
    err e;
    const char *why = read_paging(b, &page, &size);
    if (!why &&
        (json_opt_int(b, "start_date", &from, 0, &e) || json_opt_int(b, "end_date", &to, 0, &e)))
        why = "start_date and end_date must be unix timestamps";
    json_decref(b);
    if (why)
        return spsim_answer(res, 200, false, why, NULL);
    json_t *data = json_array();
    int64_t matched = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t k = s->njobs; k-- > 0;) { /* newest first */
        const spsim_job *j = &s->jobs[k];
        if ((from && j->started_s < from) || (to && j->started_s > to))
            continue;
        if (matched >= (page - 1) * size && matched < page * size)
            json_array_append_new(data, spsim_job_row_json(s, j));
        matched++;
    }
    pthread_mutex_unlock(&s->lock);
    int64_t pages = (matched + size - 1) / size;
    return spsim_answer(res, 200, true, NULL,
                        json_pack("{s:o,s:I,s:I}", "data", data, "page_amount",
                                  (json_int_t)(pages ? pages : 1), "total", (json_int_t)matched));
}

static int h_job_details(http_request *req, http_response *res, void *ctx)
{
    sp_sim *s = ctx;
    if (!gate(s, req, res))
        return 0;
    const char *id = http_req_query_param(req, "id");
    if (!id || !*id)
        return spsim_answer(res, 200, false, "Missing id", NULL);
    int64_t num = 0;
    bool numeric = str_to_int64(id, &num) == 0;
    json_t *job = NULL;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->njobs && !job; i++)
        if (str_eq(s->jobs[i].uid, id) || (numeric && s->jobs[i].id == num))
            job = spsim_job_detail_json(s, &s->jobs[i]);
    pthread_mutex_unlock(&s->lock);
    if (!job)
        return spsim_answer(res, 404, false, "Print job not found", NULL);
    return spsim_answer(res, 200, true, NULL, json_pack("{s:o}", "job", job));
}

/* ---- webhooks ---------------------------------------------------------------------------- */

static const char *const known_events[] = {
    "job.started",
    "job.paused",
    "job.resumed",
    "job.done",
    "job.failed",
    "job.cancelled",
    "job.bed_cleared",
    "queue.add_item",
    "queue.delete_item",
    "queue.move_item",
    "queue.empty_queue",
    "test",
    NULL,
};

static bool event_known(const char *name)
{
    for (const char *const *k = known_events; name && *k; k++)
        if (strcmp(name, *k) == 0)
            return true;
    return false;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < ' ' || (unsigned char)*s == 0x7f)
            return false;
    return true;
}

/* Reads a webhooks/Create body into w; a message for "status": false, or NULL. */
static const char *read_webhook(const json_t *b, spsim_webhook *w)
{
    const char *name = json_string_value(json_object_get(b, "name"));
    const char *url = json_string_value(json_object_get(b, "url"));
    const char *secret = json_string_value(json_object_get(b, "secret"));
    json_t *events = json_object_get(b, "events"), *enabled = json_object_get(b, "enabled");
    if (!name || !*name || strlen(name) >= sizeof w->name)
        return "A name is required";
    if (!url || strlen(url) >= sizeof w->url || !printable(url) ||
        !(str_starts_with(url, "http://") || str_starts_with(url, "https://")))
        return "A valid url is required";
    if (secret && (strlen(secret) > SP_WEBHOOK_SECRET_MAX || !printable(secret)))
        return "The secret may not be greater than 128 characters";
    if (!json_is_array(events) || json_array_size(events) == 0)
        return "At least one event is required";
    size_t i;
    json_t *v;
    json_array_foreach(events, i, v)
    {
        if (!event_known(json_string_value(v)))
            return "Invalid enum value";
    }
    if (enabled && !json_is_boolean(enabled))
        return "enabled must be a boolean";
    snprintf(w->name, sizeof w->name, "%s", name);
    snprintf(w->url, sizeof w->url, "%s", url);
    snprintf(w->secret, sizeof w->secret, "%s", secret ? secret : "");
    w->enabled = json_is_true(enabled); /* SimplyPrint's default is disabled */
    w->events = json_deep_copy(events);
    return w->events ? NULL : "Out of memory";
}

static spsim_webhook *find_webhook(sp_sim *s, int64_t id)
{
    for (size_t i = 0; i < s->nwebhooks; i++)
        if (s->webhooks[i].id == id)
            return &s->webhooks[i];
    return NULL;
}

static int h_webhook_create(http_request *req, http_response *res, void *ctx)
{
    sp_sim *s = ctx;
    json_t *b = gated_body(s, req, res);
    if (!b)
        return 0;
    spsim_webhook w;
    memset(&w, 0, sizeof w);
    const char *why = read_webhook(b, &w);
    int64_t id = 0;
    err e;
    if (!why && json_opt_int(b, "id", &id, 0, &e))
        why = "id must be an integer";
    json_decref(b);
    if (why) {
        json_decref(w.events);
        return spsim_answer(res, 200, false, why, NULL);
    }
    pthread_mutex_lock(&s->lock);
    spsim_webhook *slot = id ? find_webhook(s, id) : NULL;
    if (slot) {
        json_decref(slot->events);
        w.id = id;
        *slot = w;
    } else if (!id && spsim_grow((void **)&s->webhooks, &s->webhooks_cap, s->nwebhooks,
                                 sizeof *s->webhooks) == 0) {
        w.id = s->next_webhook_id++;
        slot = &s->webhooks[s->nwebhooks++];
        *slot = w;
    }
    json_t *answer = slot ? spsim_webhook_json(slot) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!slot) {
        json_decref(w.events);
        return spsim_answer(res, 200, false, id ? "Webhook not found" : "Out of memory", NULL);
    }
    return spsim_answer(res, 200, true, NULL, json_pack("{s:o}", "webhook", answer));
}

static int h_webhook_get(http_request *req, http_response *res, void *ctx)
{
    sp_sim *s = ctx;
    if (!gate(s, req, res))
        return 0;
    json_t *data = json_array();
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nwebhooks; i++)
        json_array_append_new(data, spsim_webhook_json(&s->webhooks[i]));
    pthread_mutex_unlock(&s->lock);
    return spsim_answer(res, 200, true, NULL, json_pack("{s:o}", "data", data));
}

static int h_webhook_delete(http_request *req, http_response *res, void *ctx)
{
    sp_sim *s = ctx;
    json_t *b = gated_body(s, req, res);
    if (!b)
        return 0;
    int64_t id = 0;
    err e;
    bool ok = json_get_int(b, "id", &id, &e) == 0;
    json_decref(b);
    if (!ok)
        return spsim_answer(res, 200, false, "An integer id is required", NULL);
    pthread_mutex_lock(&s->lock);
    spsim_webhook *w = find_webhook(s, id);
    if (w) {
        json_decref(w->events);
        size_t at = (size_t)(w - s->webhooks);
        memmove(w, w + 1, (s->nwebhooks - at - 1) * sizeof *s->webhooks);
        s->nwebhooks--;
    }
    pthread_mutex_unlock(&s->lock);
    return w ? spsim_answer(res, 200, true, NULL, NULL)
             : spsim_answer(res, 200, false, "Webhook not found", NULL);
}

int spsim_api_add_routes(sp_sim *s, err *e)
{
    const http_route routes[] = {
        {"GET", "/:company/account/Test", h_account_test, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/:company/queue/AddItem", h_queue_add, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/:company/queue/GetItem", h_queue_get, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/:company/queue/GetItems", h_queue_list, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/:company/queue/DeleteItem", h_queue_delete, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/:company/queue/DeleteItem", h_queue_delete, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/:company/printers/Get", h_printers_get, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/:company/jobs/GetPaginatedPrintJobs", h_jobs_list, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/:company/jobs/GetDetails", h_job_details, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/:company/webhooks/Create", h_webhook_create, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/:company/webhooks/Get", h_webhook_get, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/:company/webhooks/Delete", h_webhook_delete, s, HTTP_ACCESS_PUBLIC},
    };
    return http_router_add(s->srv.router, routes, sizeof routes / sizeof routes[0], e);
}
