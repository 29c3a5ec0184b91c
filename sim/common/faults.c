/*
 * faults.c - injected API failures of the simulators (see faults.h): reading the
 * /_sim/faults body, taking a fault per request and acting it out.
 */
#include "sim/common/faults.h"

#include "core/json.h"
#include "core/str.h"
#include "sim/common/control.h"
#include "sim/common/wait.h"

#include <stdio.h>
#include <string.h>

bool sim_fault_valid(const sim_fault_kinds *k, const sim_fault *f)
{
    bool status_ok = f->status == 0;
    for (size_t i = 0; i < k->nstatuses && !status_ok; i++)
        status_ok = f->status == k->statuses[i];
    return status_ok && f->count >= 0 && f->count <= 1000 &&
           f->retry_after_s >= (k->retry_after_none ? -1 : 0) && f->retry_after_s <= 3600 &&
           f->delay_ms >= 0 && f->delay_ms <= 60000;
}

/* Reads the body into *f, *count (as given) and *latency; *kind is NULL when an optional
 * kind is absent. 0 or -1 when the body does not fit k. */
static int read_fault(const json_t *b, const sim_fault_kinds *k, sim_fault *f, int64_t *count,
                      int64_t *latency, const char **kind)
{
    *kind = json_string_value(json_object_get(b, "kind"));
    const char *match = json_string_value(json_object_get(b, "match"));
    int64_t retry_after = k->retry_after, delay = 6000, status = 0;
    err e;
    if ((!*kind && (!k->optional || json_object_get(b, "kind"))) ||
        (k->match && json_object_get(b, "match") && (!match || strlen(match) >= sizeof f->match)) ||
        json_opt_int(b, "count", count, 1, &e) ||
        json_opt_int(b, "retry_after", &retry_after, k->retry_after, &e) ||
        json_opt_int(b, "delay_ms", &delay, 6000, &e) ||
        (k->latency && json_opt_int(b, "latency_ms", latency, -1, &e)) || *latency > 60000 ||
        *count < 0 || *count > 1000 || retry_after < -1 || retry_after > 3600 || delay < 0 ||
        delay > 60000)
        return -1;
    bool none = k->optional && str_eq(*kind, "none");
    if (*kind && !none && !str_eq(*kind, "timeout") && str_to_int64(*kind, &status))
        return -1;
    *f = (sim_fault){.count = none ? 0 : (int)*count,
                     .status = (int)status,
                     .retry_after_s = (long)retry_after,
                     .delay_ms = (long)delay};
    snprintf(f->match, sizeof f->match, "%s", k->match && match ? match : "");
    return *kind && !sim_fault_valid(k, f) ? -1 : 0;
}

int sim_fault_handle(http_request *req, http_response *res, pthread_mutex_t *lock, sim_fault *slot,
                     long *latency, const sim_fault_kinds *k)
{
    json_t *b = sim_control_body(req, res, k->optional);
    if (!b)
        return 0;
    sim_fault f;
    int64_t count = 1, latency_ms = -1;
    const char *kind = NULL;
    int rc;
    if (read_fault(b, k, &f, &count, &latency_ms, &kind)) {
        rc = http_res_error(res, 400, "%s", k->usage);
        goto out;
    }
    pthread_mutex_lock(lock);
    if (kind)
        *slot = f;
    if (latency && latency_ms >= 0)
        *latency = (long)latency_ms;
    pthread_mutex_unlock(lock);
    rc = http_res_json(
        res, 200, json_pack("{s:s?,s:I}", "kind", kind, "pending", (json_int_t)(kind ? count : 0)));
out:
    json_decref(b);
    return rc;
}

bool sim_fault_take(sim_fault *slot, const char *path, sim_fault *out)
{
    if (slot->count <= 0 || (slot->match[0] && !strstr(path ? path : "", slot->match)))
        return false;
    slot->count--;
    *out = *slot;
    return true;
}

bool sim_fault_act(const sim_fault *f, http_response *res)
{
    if (f->status == 0) {
        sim_sleep_ms(f->delay_ms); /* a stall: the client's timeout decides */
        return false;
    }
    if ((f->status == 429 || f->status == 503) && f->retry_after_s >= 0) {
        char v[24];
        snprintf(v, sizeof v, "%ld", f->retry_after_s);
        http_res_header(res, "Retry-After", v);
    }
    return true;
}
