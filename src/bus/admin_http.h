/*
 * admin_http.h - the queue operations API over HTTP, under /admin/queues.
 *
 *   GET    /admin/queues                       every queue: counts per state, paused
 *   GET    /admin/queues/:queue                counts, settings, repeatables
 *   GET    /admin/queues/:queue/jobs           ?state=waiting|prioritized|delayed|active|
 *                                              completed|failed (default waiting)
 *                                              &offset=0 &limit=50 (1..500)
 *   GET    /admin/queues/:queue/jobs/:id       one job: data, errors of every attempt, ...
 *   POST   /admin/queues/:queue/jobs/:id/retry a failed or completed job back to waiting
 *   POST   /admin/queues/:queue/retry          every failed job back to waiting: {"retried":n}
 *   DELETE /admin/queues/:queue/jobs/:id       409 while it is active, 404 if absent
 *   POST   /admin/queues/:queue/clean          {"state":"completed","olderThanMs":3600000,
 *                                              "limit":1000}: {"cleaned":n}
 *   POST   /admin/queues/:queue/pause, /resume
 *
 * Times are ISO-8601 UTC text plus the same instant in epoch ms (the *Ms fields).
 * Errors are the one error body of http/response.h; bad input is a 400 naming the
 * parameter or field.
 *
 * ACCESS: until the session and permission guard exists, every route requires the header
 * X-Internal-Key equal to the configured INTERNAL_API_KEY (compared in constant time).
 * With no key configured (NULL or empty) every request gets 403 "admin API disabled: set
 * INTERNAL_API_KEY"; a missing or wrong key gets 401. The key is never logged.
 */
#ifndef F3_BUS_ADMIN_HTTP_H
#define F3_BUS_ADMIN_HTTP_H

#include "bus/queue.h"
#include "core/err.h"
#include "http/router.h"

#include <jansson.h>
#include <stdbool.h>

/* What the routes work on. Owned by the caller and borrowed by the routes: it (and the
 * store and key it points to) must outlive the router, as health_ctx does. */
typedef struct bus_admin {
    bus_store *store;
    const char *internal_key; /* NULL or "" disables the API (403) */
} bus_admin;

/* Adds the /admin/queues routes to r. 0, or F3_EINVAL / F3_ENOMEM from the router. */
int bus_admin_add_routes(http_router *r, bus_admin *admin, err *e);

/* The JSON views the API answers with, shared with the `queues` CLI so both show the same
 * shapes. Each returns a new reference (caller json_decref's it), NULL when out of memory.
 * A job's summary has id, queue, name, state, priority, attempts, backoff, failedReason
 * and its times; `detail` adds data, errors (every attempt), returnValue and lockUntil. */
json_t *bus_admin_job_json(const bus_job *j, bool detail);
/* {"waiting":n, "prioritized":n, "delayed":n, "active":n, "completed":n, "failed":n} */
json_t *bus_admin_counts_json(const bus_counts *c);
/* {"keepCompleted":n, "keepFailed":n, "maxStalled":n} */
json_t *bus_admin_settings_json(const bus_queue_settings *set);
/* [{"repeatId", "name", "everyMs", "cron", "data", "nextRunAt", "nextRunAtMs"}, ...] */
json_t *bus_admin_repeatables_json(const bus_repeatable_info *r, size_t n);

#endif
