/*
 * webhook.h - SimplyPrint webhook deliveries (integrations spec §2.7): checking the
 * shared secret and reading the raw JSON delivery envelope
 *     {"webhook_id": 42, "event": "job.done", "timestamp": 1773484800,
 *      "data": {"job": {...}} | {"queue_item": {...}}}
 * into a flat struct, with the dedupe key the print service stores.
 *
 * SimplyPrint does not sign bodies: the configured secret arrives verbatim in
 * X-SP-Secret (SimplyPrint's own integrations) or X-SP-Token (its help centre);
 * both are accepted. Only verification and parsing live here; storing,
 * deduplicating and answering belong to the print service. Nothing here logs, and
 * no message ever carries the secret.
 */
#ifndef F3_INTEGRATIONS_SIMPLYPRINT_WEBHOOK_H
#define F3_INTEGRATIONS_SIMPLYPRINT_WEBHOOK_H

#include "core/err.h"
#include "http/request.h"
#include "integrations/simplyprint/client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_HEADER_SECRET      "X-SP-Secret"
#define SP_HEADER_TOKEN       "X-SP-Token"
#define SP_WEBHOOK_SECRET_MAX 128 /* SimplyPrint's validator: string|max:128 */
#define SP_EVENT_MAX          64
#define SP_DEDUPE_KEY_MAX     192

/*
 * Checks a delivery's secret headers against the configured secret: the value of
 * X-SP-Secret or of X-SP-Token (either may be NULL; a delivery passes when one of
 * them matches), compared in constant time after a length check.
 * Returns 0 when it matches;
 *   F3_EINVAL when no secret is configured (NULL/empty) or neither header is
 *             present (NULL or empty);
 *   F3_EPERMANENT when a header is present but does not match (wrong secret or a
 *             different length).
 */
int sp_webhook_verify(const char *secret, const char *x_sp_secret, const char *x_sp_token, err *e);

/* sp_webhook_verify() with the two headers read from req. */
int sp_webhook_verify_request(const char *secret, const http_request *req, err *e);

/* One delivery, flattened. Fields a delivery did not carry are 0 / "". */
typedef struct sp_webhook_event {
    int64_t webhook_id;       /* 0 for samples and test deliveries */
    char event[SP_EVENT_MAX]; /* "job.done", "queue.add_item", "test", ... */
    int64_t timestamp;        /* unix seconds of the delivery */
    bool has_job;             /* data.job was present */
    int64_t job_id;
    char job_uid[64];
    /* The job's state: for job.started/paused/resumed/done/failed/cancelled the one
     * the event name means (its "state" text is not reliable: the samples say
     * "completed" where the REST API says "done"); for other events the parsed
     * data.job.state. state_text keeps what the payload said, lower-cased. */
    sp_job_state state;
    char state_text[32];
    char filename[256];
    int64_t printer_id;
    char printer_name[128];
    int percentage;
    int64_t started_s; /* unix seconds; 0 = unknown */
    int64_t ended_s;
    /* The queue item the job came from: data.job.queue_item_id, data.job.queue_item
     * (an id or {id}), data.job.queueItem{id}, or data.queue_item.id. 0 = absent
     * (SimplyPrint's published samples do not show one). */
    int64_t queue_item_id;
    char reason[SP_MESSAGE_MAX]; /* failedReason / cancelInfo.reason / reason; "" if none */
    /* "webhook_id:event:<job.id|queue_item.id>:timestamp" (spec §2.7); the middle
     * part is empty for events about neither. */
    char dedupe_key[SP_DEDUPE_KEY_MAX];
} sp_webhook_event;

/*
 * Parses a delivery's raw body. F3_EINVAL with a message naming the problem for
 * malformed JSON, a body that is not an object, a missing or wrong-typed
 * webhook_id / event / timestamp, a job.* event without data.job{id}, or a
 * queue.* event without data.queue_item{id}. Unknown fields and events are
 * tolerated. out is zeroed first; nothing is allocated.
 */
int sp_webhook_parse(const char *body, size_t len, sp_webhook_event *out, err *e);

/* True for job.done, job.failed and job.cancelled: the events that end a print. */
bool sp_webhook_event_is_terminal(const sp_webhook_event *ev);

#endif
