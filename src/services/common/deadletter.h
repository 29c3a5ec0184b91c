/*
 * deadletter.h - operator alerts for dead-lettered bus jobs.
 *
 * A job that failed for good (its attempts ran out, its payload was rejected, or it
 * stalled more often than its queue tolerates) stays in the failed set until a person
 * retries it from /admin/queues or `f3connect queues retry`. Until then whatever the
 * event was for waits: an order stays PROCESSING, a shipment is never booked. So a person
 * has to hear of it, the way they hear of a failed print job.
 *
 * A repeatable job (every DEADLETTER_SCAN_MS, one instance per tick) reads the failed jobs
 * of every queue, newest first, back to DEADLETTER_LOOKBACK_MS (at most the 5,000 a queue
 * keeps), and raises one EVENT_DEAD_LETTERED operator alert (notify_alert) per job
 * and failure, naming the queue, the event, the order when the event names one, the
 * attempts and the last error. The table bus_dead_letter_alerts remembers each
 * (queue, job id, finished_at) in the alert's own transaction, so a job is alerted once
 * each time it fails, across instances and restarts.
 *
 * A storm does not flood the operator: a tenant gets at most DEADLETTER_ALERTS_PER_HOUR
 * alerts about single jobs in any hour; the jobs beyond are held and counted in one storm
 * alert, at most one an hour per tenant. A job whose event names no known tenant (the
 * platform's own repeatable jobs) is logged, not mailed: it runs again next tick. What a
 * job's data says is checked before it goes into an alert, and a job whose alert still
 * cannot be written is logged and tried again next scan: one bad job never stops the scan.
 */
#ifndef F3_COMMON_DEADLETTER_H
#define F3_COMMON_DEADLETTER_H

#include "bus/bus.h"
#include "core/err.h"
#include "db/db.h"

#include <stdint.h>

#define DEADLETTER_SCAN_MS         INT64_C(60000)
#define DEADLETTER_LOOKBACK_MS     INT64_C(86400000)
#define DEADLETTER_KEEP_MS         INT64_C(604800000) /* alerted rows kept 7 days */
#define DEADLETTER_ALERTS_PER_HOUR 10
#define DEADLETTER_JOB             "bus.dead-letter-watch"

typedef struct deadletter deadletter;

/* A watch over the jobs of store s, writing alerts in d. d and s are borrowed. NULL when
 * out of memory. */
deadletter *deadletter_new(db *d, bus_store *s);
void deadletter_free(deadletter *w);

/* Looks at the failed jobs now and raises the alerts not raised yet (what each tick
 * does). *alerted (may be NULL) = alerts raised, the storm alert counting as one. */
int deadletter_scan(deadletter *w, int64_t now_ms, int *alerted, err *e);

/* Registers the scan on bus b (queue "bus.dead-letter-watch@<service>") and its
 * repeatable. Before bus_start. */
int deadletter_schedule(deadletter *w, bus *b, err *e);

#endif
