/*
 * webhook.c - SimplyPrint webhook deliveries: the verbatim-secret check and the
 * delivery envelope parser (integrations spec §2.7).
 *
 * Tolerant where the spec is unsure (which header carries the secret, the state
 * strings, where the queue item id sits) and strict where a missing field would
 * make the delivery meaningless (its id, event, time, and the job or queue item
 * it is about). Must not log, and never puts the secret or header values into a
 * message.
 */
#include "integrations/simplyprint/webhook.h"

#include "core/crypto.h"
#include "core/json.h"
#include "core/str.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- verification -------------------------------------------------------------------- */

/* Constant-time match of one header value; the length is compared first. */
static bool secret_matches(const char *secret, size_t secret_len, const char *value)
{
    size_t n = strlen(value);
    if (n != secret_len)
        return false;
    return crypto_equal(secret, value, n);
}

int sp_webhook_verify(const char *secret, const char *x_sp_secret, const char *x_sp_token, err *e)
{
    if (!secret || !*secret)
        return err_set(e, F3_EINVAL, "no SimplyPrint webhook secret is configured");
    bool has_secret = x_sp_secret && *x_sp_secret;
    bool has_token = x_sp_token && *x_sp_token;
    if (!has_secret && !has_token)
        return err_set(e, F3_EINVAL, "delivery carries neither %s nor %s", SP_HEADER_SECRET,
                       SP_HEADER_TOKEN);
    size_t len = strlen(secret);
    /* Both are checked whatever the first gives, so timing says nothing about which. */
    bool ok_secret = has_secret && secret_matches(secret, len, x_sp_secret);
    bool ok_token = has_token && secret_matches(secret, len, x_sp_token);
    if (ok_secret || ok_token) {
        err_clear(e);
        return 0;
    }
    return err_set(e, F3_EPERMANENT, "delivery's %s does not match the configured secret",
                   has_secret ? SP_HEADER_SECRET : SP_HEADER_TOKEN);
}

int sp_webhook_verify_request(const char *secret, const http_request *req, err *e)
{
    return sp_webhook_verify(secret, http_req_header(req, SP_HEADER_SECRET),
                             http_req_header(req, SP_HEADER_TOKEN), e);
}

/* ---- tolerant readers ------------------------------------------------------------------ */

static int64_t jint(const json_t *v)
{
    int64_t n;
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v) && str_to_int64(json_string_value(v), &n) == 0)
        return n;
    if (json_is_real(v) && isfinite(json_real_value(v)) && fabs(json_real_value(v)) < 9e18)
        return (int64_t)json_real_value(v);
    return 0;
}

static void jstr(char *dst, size_t n, const json_t *v)
{
    if (json_is_string(v))
        snprintf(dst, n, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(dst, n, "%lld", (long long)json_integer_value(v));
    else
        dst[0] = '\0';
}

static json_t *jfirst(const json_t *obj, const char *const *keys)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(obj, *keys);
        if (v && !json_is_null(v))
            return v;
    }
    return NULL;
}

/* An id that must be a positive integer (or its decimal text). */
static int require_id(const json_t *obj, const char *path, const char *key, int64_t *out, err *e)
{
    json_t *v = json_object_get(obj, key);
    int64_t n = 0;
    if (!v || json_is_null(v))
        return err_set(e, F3_EINVAL, "field '%s.%s' is missing", path, key);
    if (!(json_is_integer(v) || (json_is_string(v) && str_to_int64(json_string_value(v), &n) == 0)))
        return err_set(e, F3_EINVAL, "field '%s.%s' must be an integer id", path, key);
    n = jint(v);
    if (n <= 0)
        return err_set(e, F3_EINVAL, "field '%s.%s' must be a positive id", path, key);
    *out = n;
    return 0;
}

/* ---- parsing ----------------------------------------------------------------------------- */

/* The state a job.* event name means; SP_JOB_UNKNOWN for others. */
static sp_job_state state_of_event(const char *event)
{
    static const struct {
        const char *event;
        sp_job_state state;
    } map[] = {
        {"job.started", SP_JOB_ONGOING}, {"job.paused", SP_JOB_ONGOING},
        {"job.resumed", SP_JOB_ONGOING}, {"job.done", SP_JOB_DONE},
        {"job.failed", SP_JOB_FAILED},   {"job.cancelled", SP_JOB_CANCELLED},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(event, map[i].event) == 0)
            return map[i].state;
    return SP_JOB_UNKNOWN;
}

static int64_t queue_item_of_job(const json_t *job)
{
    static const char *const keys[] = {"queue_item_id", "queue_item", "queueItem", "queueItemId",
                                       NULL};
    json_t *q = jfirst(job, keys);
    return json_is_object(q) ? jint(json_object_get(q, "id")) : jint(q);
}

static void job_fields(const json_t *job, sp_webhook_event *out)
{
    static const char *const file_keys[] = {"file", "filename", NULL};
    static const char *const reason_keys[] = {"failedReason", "failed_reason", "reason", NULL};
    jstr(out->job_uid, sizeof out->job_uid, json_object_get(job, "uid"));
    jstr(out->state_text, sizeof out->state_text, json_object_get(job, "state"));
    str_lower(out->state_text);
    out->state = state_of_event(out->event);
    if (out->state == SP_JOB_UNKNOWN)
        out->state = sp_job_state_parse(out->state_text);
    json_t *file = jfirst(job, file_keys);
    jstr(out->filename, sizeof out->filename,
         json_is_object(file) ? json_object_get(file, "name") : file);
    json_t *pr = json_object_get(job, "printer");
    if (json_is_object(pr)) {
        out->printer_id = jint(json_object_get(pr, "id"));
        jstr(out->printer_name, sizeof out->printer_name, json_object_get(pr, "name"));
    }
    if (!out->printer_id)
        out->printer_id = jint(json_object_get(job, "printer_id"));
    out->percentage = (int)jint(json_object_get(job, "percentage"));
    out->started_s = jint(json_object_get(job, "started"));
    out->ended_s = jint(json_object_get(job, "ended"));
    out->queue_item_id = queue_item_of_job(job);
    json_t *why = jfirst(job, reason_keys);
    json_t *cancel = json_object_get(job, "cancelInfo");
    if (!json_is_string(why) && json_is_object(cancel))
        why = json_object_get(cancel, "reason");
    jstr(out->reason, sizeof out->reason, why);
}

static bool event_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= SP_EVENT_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_'))
            return false;
    return true;
}

/* The envelope's fields: webhook_id, event, timestamp. */
static int envelope_fields(const json_t *doc, sp_webhook_event *out, err *e)
{
    int64_t id = 0, ts = 0;
    const char *event = NULL;
    if (json_get_int(doc, "webhook_id", &id, e) || json_get_string(doc, "event", &event, e) ||
        json_get_int(doc, "timestamp", &ts, e))
        return F3_EINVAL;
    if (id < 0)
        return err_set(e, F3_EINVAL, "field 'webhook_id' must not be negative");
    if (!event_name_valid(event))
        return err_set(e, F3_EINVAL, "field 'event' must be an event name such as 'job.done'");
    if (ts <= 0)
        return err_set(e, F3_EINVAL, "field 'timestamp' must be unix seconds");
    out->webhook_id = id;
    out->timestamp = ts;
    snprintf(out->event, sizeof out->event, "%s", event);
    return 0;
}

int sp_webhook_parse(const char *body, size_t len, sp_webhook_event *out, err *e)
{
    memset(out, 0, sizeof *out);
    json_t *doc = NULL, *data = NULL;
    int rc;
    if (!body || len == 0) {
        rc = err_set(e, F3_EINVAL, "empty SimplyPrint delivery");
        goto out;
    }
    if ((rc = json_parse(body, len, &doc, e)) != 0)
        goto out;
    if (!json_is_object(doc)) {
        rc = err_set(e, F3_EINVAL, "a SimplyPrint delivery must be a JSON object");
        goto out;
    }
    if ((rc = envelope_fields(doc, out, e)) != 0 ||
        (rc = json_opt_object(doc, "data", &data, NULL, e)) != 0)
        goto out;
    bool job_event = str_starts_with(out->event, "job.");
    bool queue_event = str_starts_with(out->event, "queue.");
    json_t *job = json_object_get(data, "job");
    json_t *item = json_object_get(data, "queue_item");
    if (job_event && !json_is_object(job)) {
        rc = err_set(e, F3_EINVAL, "field 'data.job' is missing or not an object");
        goto out;
    }
    if (queue_event && !json_is_object(item)) {
        rc = err_set(e, F3_EINVAL, "field 'data.queue_item' is missing or not an object");
        goto out;
    }
    if (json_is_object(job)) {
        if ((rc = require_id(job, "data.job", "id", &out->job_id, e)) != 0)
            goto out;
        out->has_job = true;
        job_fields(job, out);
    }
    if (json_is_object(item)) {
        int64_t qid = 0;
        if (queue_event && (rc = require_id(item, "data.queue_item", "id", &qid, e)) != 0)
            goto out;
        if (!qid)
            qid = jint(json_object_get(item, "id"));
        if (qid > 0)
            out->queue_item_id = qid;
    }
    if (!out->reason[0])
        jstr(out->reason, sizeof out->reason, json_object_get(data, "reason"));
    char subject[24] = "";
    if (out->has_job)
        snprintf(subject, sizeof subject, "%lld", (long long)out->job_id);
    else if (out->queue_item_id)
        snprintf(subject, sizeof subject, "%lld", (long long)out->queue_item_id);
    snprintf(out->dedupe_key, sizeof out->dedupe_key, "%lld:%s:%s:%lld", (long long)out->webhook_id,
             out->event, subject, (long long)out->timestamp);
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

bool sp_webhook_event_is_terminal(const sp_webhook_event *ev)
{
    return str_eq(ev->event, "job.done") || str_eq(ev->event, "job.failed") ||
           str_eq(ev->event, "job.cancelled");
}
