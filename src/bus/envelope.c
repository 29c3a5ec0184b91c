/*
 * envelope.c - building and checking the envelope of cross-service events.
 *
 * Only the envelope and the catalog's payload rules live here; this file must not
 * enqueue or emit anything (that is the bus facade's job).
 */
#include "bus/envelope.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/uuid.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define F_EVENT_ID       "eventId"
#define F_EVENT_TYPE     "eventType"
#define F_SOURCE         "source"
#define F_TENANT_ID      "tenantId"
#define F_TIMESTAMP      "timestamp"
#define F_CORRELATION_ID "correlationId"

static const char *const envelope_keys[] = {
    F_EVENT_ID, F_EVENT_TYPE, F_SOURCE, F_TENANT_ID, F_TIMESTAMP, F_CORRELATION_ID,
};

#define ENVELOPE_KEY_COUNT (sizeof envelope_keys / sizeof envelope_keys[0])

/* Adds key = string s to obj; F3_ENOMEM if jansson could not. */
static int set_string(json_t *obj, const char *key, const char *s)
{
    return json_object_set_new(obj, key, json_string(s)) == 0 ? 0 : F3_ENOMEM;
}

static int check_build_args(const bus_event_def *d, bus_service source, const char *tenant_id,
                            const json_t *fields, err *e)
{
    if (!d)
        return err_set(e, F3_EINVAL, "event envelope: no event definition");
    if (source != d->publisher)
        return err_set(e, F3_EINVAL, "%s: published by %s, not %s", d->type,
                       bus_service_name(d->publisher), bus_service_name(source));
    if (!tenant_id || !*tenant_id)
        return err_set(e, F3_EINVAL, "%s: tenant id is empty", d->type);
    if (!json_is_object(fields))
        return err_set(e, F3_EINVAL, "%s: the event's fields must be a JSON object", d->type);
    for (size_t i = 0; i < ENVELOPE_KEY_COUNT; i++)
        if (json_object_get(fields, envelope_keys[i]))
            return err_set(e, F3_EINVAL, "%s: field '%s' belongs to the envelope, not the payload",
                           d->type, envelope_keys[i]);
    return 0;
}

int bus_envelope_build(const bus_event_def *d, bus_service source, const char *tenant_id,
                       const char *correlation_id, const json_t *fields, json_t **out, err *e)
{
    json_t *ev = NULL, *copy = NULL;
    int rc = check_build_args(d, source, tenant_id, fields, e);
    if (rc < 0)
        goto out;

    char id[UUID_STR_LEN], ts[CLOCK_ISO_LEN];
    uuid_v4(id);
    clock_now_iso(ts);
    if (!correlation_id)
        correlation_id = log_get_correlation_id();

    rc = F3_ENOMEM;
    ev = json_object();
    copy = json_deep_copy(fields);
    if (!ev || !copy || set_string(ev, F_EVENT_ID, id) || set_string(ev, F_EVENT_TYPE, d->type) ||
        set_string(ev, F_SOURCE, bus_service_name(source)) ||
        set_string(ev, F_TENANT_ID, tenant_id) || set_string(ev, F_TIMESTAMP, ts) ||
        (correlation_id && *correlation_id && set_string(ev, F_CORRELATION_ID, correlation_id)) ||
        json_object_update(ev, copy) != 0) {
        err_set(e, rc, "%s: out of memory building the event", d->type);
        goto out;
    }
    rc = bus_catalog_validate_payload(d, ev, e);
    if (rc < 0)
        goto out;
    *out = ev;
    ev = NULL;
out:
    json_decref(copy);
    json_decref(ev);
    return rc;
}

/* A required, non-empty string field of the envelope. */
static int envelope_string(const json_t *root, const char *key, const char **out, err *e)
{
    const json_t *v = json_object_get(root, key);
    if (!v)
        return err_set(e, F3_EINVAL, "event envelope: field '%s' is missing", key);
    if (!json_is_string(v))
        return err_set(e, F3_EINVAL, "event envelope: field '%s' must be a string", key);
    if (json_string_length(v) == 0)
        return err_set(e, F3_EINVAL, "event envelope: field '%s' is empty", key);
    *out = json_string_value(v);
    return 0;
}

/* A date alone parses as ISO-8601 too; an event time needs the time of day. */
static bool is_date_time(const char *s)
{
    int64_t ms;
    return s && clock_parse_iso(s, &ms) == 0 && strlen(s) > 10 && (s[10] == 'T' || s[10] == 't');
}

static int check_envelope(const json_t *root, bus_envelope *env, err *e)
{
    int rc;
    bus_service svc;
    if ((rc = envelope_string(root, F_EVENT_ID, &env->event_id, e)) < 0 ||
        (rc = envelope_string(root, F_EVENT_TYPE, &env->event_type, e)) < 0 ||
        (rc = envelope_string(root, F_SOURCE, &env->source, e)) < 0 ||
        (rc = envelope_string(root, F_TENANT_ID, &env->tenant_id, e)) < 0 ||
        (rc = envelope_string(root, F_TIMESTAMP, &env->timestamp, e)) < 0)
        return rc;
    if (!uuid_valid(env->event_id))
        return err_set(e, F3_EINVAL, "event envelope: field 'eventId' must be a UUID, not '%.64s'",
                       env->event_id);
    env->def = bus_catalog_find(env->event_type);
    if (!env->def)
        return err_set(e, F3_EINVAL, "event envelope: unknown event type '%.100s'",
                       env->event_type);
    if (bus_service_parse(env->source, &svc) != 0)
        return err_set(e, F3_EINVAL,
                       "event envelope: field 'source' names no known service: '%.64s'",
                       env->source);
    if (!is_date_time(env->timestamp))
        return err_set(e, F3_EINVAL,
                       "event envelope: field 'timestamp' must be an ISO-8601 date-time, not "
                       "'%.64s'",
                       env->timestamp);
    const json_t *corr = json_object_get(root, F_CORRELATION_ID);
    if (corr && !json_is_null(corr) && !json_is_string(corr))
        return err_set(e, F3_EINVAL, "event envelope: field 'correlationId' must be a string");
    env->correlation_id = json_is_string(corr) ? json_string_value(corr) : NULL;
    return 0;
}

int bus_envelope_parse(const char *text, size_t len, bus_envelope *out, err *e)
{
    bus_envelope env = {0};
    json_t *root = NULL;
    int rc = json_parse(text, len, &root, e);
    if (rc < 0)
        goto out;
    if (!json_is_object(root)) {
        rc = err_set(e, F3_EINVAL, "event envelope: the event must be a JSON object");
        goto out;
    }
    rc = check_envelope(root, &env, e);
    if (rc < 0)
        goto out;
    rc = bus_catalog_validate_payload(env.def, root, e);
    if (rc < 0)
        goto out;
    env.root = root;
    root = NULL;
out:
    json_decref(root);
    if (rc < 0)
        memset(&env, 0, sizeof env);
    *out = env;
    return rc;
}

void bus_envelope_release(bus_envelope *env)
{
    if (!env)
        return;
    json_decref(env->root);
    memset(env, 0, sizeof *env);
}
