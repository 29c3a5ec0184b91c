/*
 * admin_http.c - the /admin/queues routes (see admin_http.h): access check, parameter
 * validation, and JSON views of queues and jobs over the queue store.
 *
 * Handlers translate; every rule about jobs lives in the store. They must not put
 * internals (SQL, database messages) in a response: those go to the log.
 */
#include "bus/admin_http.h"

#include "bus/catalog.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "http/request.h"
#include "http/response.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN_LIMIT_DEFAULT 50
#define ADMIN_LIMIT_MAX     500
#define ADMIN_OFFSET_MAX    INT64_C(1000000000)

/* ---- errors ---------------------------------------------------------------- */

/* Answers a store failure: the store's message for the caller's mistakes, a generic one
 * (and a log line) for the rest. */
static int store_failed(http_response *res, int rc, const err *e)
{
    switch (rc) {
    case F3_EINVAL:
        return http_res_error(res, 400, "%s", e->msg);
    case F3_ENOTFOUND:
        return http_res_error(res, 404, "%s", e->msg);
    case F3_ECONFLICT:
        return http_res_error(res, 409, "%s", e->msg);
    default:
        log_error("queue admin request failed", "error", e->msg);
        return http_res_error(res, 503, "queue store unavailable");
    }
}

/* 404 unless the queue has jobs, settings or repeatables. 1 if it exists, 0 if the
 * answer is written, negative if even that failed. */
static int queue_known(http_response *res, bus_store *s, const char *queue)
{
    char **names = NULL;
    size_t n = 0;
    err e;
    err_clear(&e);
    int rc = bus_store_queue_names(s, &names, &n, &e);
    if (rc) {
        store_failed(res, rc, &e);
        return 0;
    }
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
        found = strcmp(names[i], queue) == 0;
    bus_names_free(names, n);
    if (!found)
        http_res_error(res, 404, "Queue not found: %s", queue);
    return found;
}

/* ---- JSON views ----------------------------------------------------------------------- */

static json_t *iso_or_null(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char iso[CLOCK_ISO_LEN];
    clock_format_iso(ms, iso);
    return json_string(iso);
}

static json_t *ms_or_null(int64_t ms)
{
    return ms > 0 ? json_integer((json_int_t)ms) : json_null();
}

/* Stored JSON text as a value; text that does not parse is shown as a string. */
static json_t *stored_json(const char *text)
{
    if (!text)
        return json_null();
    json_t *v = NULL;
    err e;
    if (json_parse(text, strlen(text), &v, &e) == 0)
        return v;
    return json_string(text);
}

json_t *bus_admin_counts_json(const bus_counts *c)
{
    json_t *o = json_object();
    for (int i = 0; o && i < BUS_STATE_COUNT; i++)
        json_object_set_new(o, bus_state_name((bus_state)i), json_integer((json_int_t)c->n[i]));
    return o;
}

/* Adds "<key>" (ISO text or null) and "<key>Ms" (epoch ms or null). */
static void set_time(json_t *o, const char *key, int64_t ms)
{
    char ms_key[64];
    snprintf(ms_key, sizeof ms_key, "%sMs", key);
    json_object_set_new(o, key, iso_or_null(ms));
    json_object_set_new(o, ms_key, ms_or_null(ms));
}

json_t *bus_admin_job_json(const bus_job *j, bool detail)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:{s:s, s:I}, s:o}", "id",
                          j->id, "queue", j->queue, "name", j->name, "state",
                          bus_state_name(j->state), "priority", j->priority, "attemptsMade",
                          j->attempts_made, "attemptsStarted", j->attempts_started, "maxAttempts",
                          j->max_attempts, "stalledCount", j->stalled_count, "backoff", "type",
                          j->backoff.type == BUS_BACKOFF_FIXED ? "fixed" : "exponential", "delayMs",
                          (json_int_t)j->backoff.delay_ms, "failedReason",
                          j->failed_reason ? json_string(j->failed_reason) : json_null());
    if (!o)
        return NULL;
    set_time(o, "createdAt", j->created_at);
    set_time(o, "runAt", j->run_at);
    set_time(o, "processedAt", j->processed_at);
    set_time(o, "finishedAt", j->finished_at);
    if (detail) {
        json_object_set_new(o, "data", stored_json(j->data));
        json_object_set_new(o, "errors", stored_json(j->errors ? j->errors : "[]"));
        json_object_set_new(o, "returnValue", stored_json(j->return_value));
        set_time(o, "lockUntil", j->state == BUS_STATE_ACTIVE ? j->lock_until : 0);
    }
    return o;
}

json_t *bus_admin_settings_json(const bus_queue_settings *set)
{
    return json_pack("{s:i, s:i, s:i}", "keepCompleted", set->keep_completed, "keepFailed",
                     set->keep_failed, "maxStalled", set->max_stalled);
}

json_t *bus_admin_repeatables_json(const bus_repeatable_info *r, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o}", "repeatId", r[i].repeat_id, "name",
                              r[i].name, "everyMs", ms_or_null(r[i].every_ms), "cron",
                              r[i].cron ? json_string(r[i].cron) : json_null(), "data",
                              stored_json(r[i].data));
        if (o)
            set_time(o, "nextRunAt", r[i].next_run_at);
        json_array_append_new(arr, o);
    }
    return arr;
}

/* ---- parameters ----------------------------------------------------------------------- */

/* An optional integer query parameter within [min, max]; writes the 400 on error. */
static int query_int(http_request *req, http_response *res, const char *name, int64_t def,
                     int64_t min, int64_t max, int64_t *out)
{
    const char *v = http_req_query_param(req, name);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max) {
        http_res_error(res, 400,
                       "Query parameter '%s' must be an integer from %" PRId64 " to %" PRId64, name,
                       min, max);
        return F3_EINVAL;
    }
    *out = n;
    return 0;
}

/* ---- handlers ------------------------------------------------------------------------- */

static int list_queues(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    bus_admin *a = ctx;
    char **names = NULL;
    size_t n = 0;
    err e;
    err_clear(&e);
    int rc = bus_store_queue_names(a->store, &names, &n, &e);
    if (rc)
        return store_failed(res, rc, &e);
    int64_t now = clock_now_ms();
    json_t *arr = json_array();
    for (size_t i = 0; rc == 0 && i < n; i++) {
        bus_counts c;
        if ((rc = bus_store_counts(a->store, names[i], now, &c, &e)))
            break;
        json_array_append_new(arr, json_pack("{s:s, s:b, s:o}", "name", names[i], "paused",
                                             c.paused, "counts", bus_admin_counts_json(&c)));
    }
    bus_names_free(names, n);
    if (rc) {
        json_decref(arr);
        return store_failed(res, rc, &e);
    }
    return http_res_json(res, 200, json_pack("{s:o}", "queues", arr));
}

static int show_queue(http_request *req, http_response *res, void *ctx)
{
    bus_admin *a = ctx;
    const char *queue = http_req_param(req, "queue");
    if (queue_known(res, a->store, queue) != 1)
        return 0;
    err e;
    err_clear(&e);
    bus_counts c;
    bus_queue_settings set;
    bus_repeatable_info *reps = NULL;
    size_t nreps = 0;
    int rc = bus_store_counts(a->store, queue, clock_now_ms(), &c, &e);
    if (rc == 0)
        rc = bus_store_settings_get(a->store, queue, &set, &e);
    if (rc == 0)
        rc = bus_store_repeatables_list(a->store, queue, &reps, &nreps, &e);
    if (rc)
        return store_failed(res, rc, &e);
    json_t *body =
        json_pack("{s:s, s:b, s:o, s:o, s:o}", "name", queue, "paused", c.paused, "counts",
                  bus_admin_counts_json(&c), "settings", bus_admin_settings_json(&set),
                  "repeatables", bus_admin_repeatables_json(reps, nreps));
    bus_repeatables_free(reps, nreps);
    return http_res_json(res, 200, body);
}

static int list_jobs(http_request *req, http_response *res, void *ctx)
{
    bus_admin *a = ctx;
    const char *queue = http_req_param(req, "queue");
    const char *state_name = http_req_query_param(req, "state");
    int state = state_name ? bus_state_parse(state_name) : BUS_STATE_WAITING;
    if (state < 0)
        return http_res_error(res, 400,
                              "Query parameter 'state' must be one of waiting, prioritized, "
                              "delayed, active, completed, failed");
    int64_t offset, limit;
    if (query_int(req, res, "offset", 0, 0, ADMIN_OFFSET_MAX, &offset) ||
        query_int(req, res, "limit", ADMIN_LIMIT_DEFAULT, 1, ADMIN_LIMIT_MAX, &limit))
        return 0;
    if (queue_known(res, a->store, queue) != 1)
        return 0;
    err e;
    err_clear(&e);
    int64_t now = clock_now_ms();
    bus_counts c;
    bus_job **jobs = NULL;
    size_t n = 0;
    int rc = bus_store_counts(a->store, queue, now, &c, &e);
    if (rc == 0)
        rc = bus_store_list(a->store, queue, (bus_state)state, offset, limit, now, &jobs, &n, &e);
    if (rc)
        return store_failed(res, rc, &e);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, bus_admin_job_json(jobs[i], false));
    bus_jobs_free(jobs, n);
    return http_res_json(res, 200,
                         json_pack("{s:s, s:s, s:I, s:I, s:I, s:o}", "queue", queue, "state",
                                   bus_state_name((bus_state)state), "offset", (json_int_t)offset,
                                   "limit", (json_int_t)limit, "total", (json_int_t)c.n[state],
                                   "jobs", arr));
}

static int show_job(http_request *req, http_response *res, void *ctx)
{
    bus_admin *a = ctx;
    err e;
    err_clear(&e);
    bus_job *j = NULL;
    int rc = bus_store_get(a->store, http_req_param(req, "queue"), http_req_param(req, "id"),
                           clock_now_ms(), &j, &e);
    if (rc)
        return store_failed(res, rc, &e);
    json_t *body = bus_admin_job_json(j, true);
    bus_job_free(j);
    return http_res_json(res, 200, body);
}

static int retry_job(http_request *req, http_response *res, void *ctx)
{
    bus_admin *a = ctx;
    const char *queue = http_req_param(req, "queue"), *id = http_req_param(req, "id");
    err e;
    err_clear(&e);
    int64_t count = 0;
    int rc = bus_store_retry(a->store, queue, id, clock_now_ms(), &count, &e);
    if (rc)
        return store_failed(res, rc, &e);
    log_info("job retried by an operator", "queue", queue, "jobId", id);
    return http_res_json(res, 200, json_pack("{s:I}", "retried", (json_int_t)count));
}

static int retry_all(http_request *req, http_response *res, void *ctx)
{
    bus_admin *a = ctx;
    const char *queue = http_req_param(req, "queue");
    if (queue_known(res, a->store, queue) != 1)
        return 0;
    err e;
    err_clear(&e);
    int64_t count = 0;
    int rc = bus_store_retry(a->store, queue, NULL, clock_now_ms(), &count, &e);
    if (rc)
        return store_failed(res, rc, &e);
    log_info("failed jobs retried by an operator", "queue", queue);
    return http_res_json(res, 200, json_pack("{s:I}", "retried", (json_int_t)count));
}

static int remove_job(http_request *req, http_response *res, void *ctx)
{
    bus_admin *a = ctx;
    const char *queue = http_req_param(req, "queue"), *id = http_req_param(req, "id");
    err e;
    err_clear(&e);
    int rc = bus_store_remove(a->store, queue, id, &e);
    if (rc)
        return store_failed(res, rc, &e);
    log_info("job removed by an operator", "queue", queue, "jobId", id);
    return http_res_json(res, 200, json_pack("{s:s, s:b}", "id", id, "removed", 1));
}

/* Reads and checks the clean request body; writes the 400 on error. */
static int clean_params(http_request *req, http_response *res, bus_state *state,
                        int64_t *older_than, int64_t *limit)
{
    json_t *body = NULL;
    if (http_req_json(req, &body, res))
        return F3_EINVAL;
    err e;
    err_clear(&e);
    const char *name = NULL;
    int rc = 0;
    if (!json_is_object(body))
        rc = err_set(&e, F3_EINVAL, "body must be a JSON object");
    else if (json_get_string(body, "state", &name, &e) == 0 &&
             json_get_int(body, "olderThanMs", older_than, &e) == 0 &&
             json_opt_int(body, "limit", limit, 0, &e) == 0) {
        int s = bus_state_parse(name);
        if (s < 0 || s == BUS_STATE_ACTIVE)
            rc = err_set(&e, F3_EINVAL,
                         "field 'state' must be one of completed, failed, waiting, "
                         "prioritized, delayed");
        else if (*older_than < 0)
            rc = err_set(&e, F3_EINVAL, "field 'olderThanMs' must be >= 0");
        else if (*limit < 0)
            rc = err_set(&e, F3_EINVAL, "field 'limit' must be >= 0 (0 = no limit)");
        else
            *state = (bus_state)s;
    } else {
        rc = F3_EINVAL;
    }
    json_decref(body);
    if (rc)
        http_res_error(res, 400, "%s", e.msg);
    return rc;
}

static int clean_queue(http_request *req, http_response *res, void *ctx)
{
    bus_admin *a = ctx;
    const char *queue = http_req_param(req, "queue");
    bus_state state = BUS_STATE_COMPLETED;
    int64_t older_than = 0, limit = 0;
    if (clean_params(req, res, &state, &older_than, &limit))
        return 0;
    if (queue_known(res, a->store, queue) != 1)
        return 0;
    err e;
    err_clear(&e);
    int64_t count = 0;
    int rc = bus_store_clean(a->store, queue, state, older_than, limit, clock_now_ms(), &count, &e);
    if (rc)
        return store_failed(res, rc, &e);
    log_info("queue cleaned by an operator", "queue", queue, "state", bus_state_name(state));
    return http_res_json(res, 200, json_pack("{s:I}", "cleaned", (json_int_t)count));
}

/* A queue may be paused before its first job arrives: one the catalog names is known. */
static int set_paused(http_request *req, http_response *res, bus_admin *a, bool paused)
{
    const char *queue = http_req_param(req, "queue");
    if (!bus_catalog_has_queue(queue) && queue_known(res, a->store, queue) != 1)
        return 0;
    err e;
    err_clear(&e);
    int rc = bus_store_pause(a->store, queue, paused, &e);
    if (rc)
        return store_failed(res, rc, &e);
    log_info(paused ? "queue paused by an operator" : "queue resumed by an operator", "queue",
             queue);
    return http_res_json(res, 200, json_pack("{s:s, s:b}", "name", queue, "paused", paused));
}

static int pause_queue(http_request *req, http_response *res, void *ctx)
{
    return set_paused(req, res, ctx, true);
}

static int resume_queue(http_request *req, http_response *res, void *ctx)
{
    return set_paused(req, res, ctx, false);
}

int bus_admin_add_routes(http_router *r, bus_admin *admin, err *e)
{
    const http_route routes[] = {
        {"GET", "/admin/queues", list_queues, admin, BUS_ADMIN_PERMISSION},
        {"GET", "/admin/queues/:queue", show_queue, admin, BUS_ADMIN_PERMISSION},
        {"GET", "/admin/queues/:queue/jobs", list_jobs, admin, BUS_ADMIN_PERMISSION},
        {"GET", "/admin/queues/:queue/jobs/:id", show_job, admin, BUS_ADMIN_PERMISSION},
        {"POST", "/admin/queues/:queue/jobs/:id/retry", retry_job, admin, BUS_ADMIN_PERMISSION},
        {"DELETE", "/admin/queues/:queue/jobs/:id", remove_job, admin, BUS_ADMIN_PERMISSION},
        {"POST", "/admin/queues/:queue/retry", retry_all, admin, BUS_ADMIN_PERMISSION},
        {"POST", "/admin/queues/:queue/clean", clean_queue, admin, BUS_ADMIN_PERMISSION},
        {"POST", "/admin/queues/:queue/pause", pause_queue, admin, BUS_ADMIN_PERMISSION},
        {"POST", "/admin/queues/:queue/resume", resume_queue, admin, BUS_ADMIN_PERMISSION},
    };
    return http_router_add(r, routes, sizeof routes / sizeof routes[0], e);
}
