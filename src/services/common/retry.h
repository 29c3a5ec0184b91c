/*
 * retry.h - the retry queue (seed 001 F3.3): work that failed for a transient reason is
 * kept in the retry_queue table and tried again later, with exponential backoff, until
 * it succeeds or its attempts run out.
 *
 * Shared by every service (services/common/ is not a service of its own): a service
 * enqueues its own job types in its own transaction (retry_enqueue) and registers the
 * handlers of the types it owns on its retry_queue (retry_register). A processor claims
 * only entries of types it has handlers for, so several services (and replicas) share the
 * table without ever running each other's work. Claims lock rows with
 * db_sql_skip_locked, so two processes never run one entry at once; an entry left
 * PROCESSING by a process that died is claimed again once its lease has passed. The lease
 * starts when its handler starts and is renewed every lease/3 while the handler runs, so
 * a handler may take as long as its calls need (bound each by a timeout all the same);
 * only a dead process's entry waits for the lease to run out.
 *
 * Outcomes of a handler: 0 -> COMPLETED; F3_EPERMANENT or F3_EINVAL -> FAILED at once;
 * any other negative code -> PENDING again with next_attempt_at = now + backoff (or later,
 * when the handler advises a provider's Retry-After), or FAILED when the entry's attempts
 * are exhausted. A FAILED entry writes RETRY_EXHAUSTED (ERROR, with the payload and the
 * last error) to the event log and queues an operator alert (notify.h) in the same
 * transaction - except for NOTIFICATION entries, whose failure is only logged and
 * event-logged, so a failing alert never causes another alert, and for failures whose
 * handler says it raised its own alert (retry_advice.alerted), so a person hears of one
 * failure once.
 *
 * Delivery is at least once: a handler's own writes and the entry's outcome are separate
 * transactions, so a handler must be idempotent (the services' handlers check state
 * before acting). Handlers run outside any transaction of this module and may do slow
 * external I/O. This module knows no job type's meaning; it must not hold business logic.
 */
#ifndef F3_COMMON_RETRY_H
#define F3_COMMON_RETRY_H

#include "bus/bus.h"
#include "core/err.h"
#include "db/db.h"
#include "http/router.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum retry_type {
    RETRY_FULFILLMENT,
    RETRY_PRINT_JOB_CREATION,
    RETRY_CANCELLATION,
    RETRY_NOTIFICATION,
    RETRY_TYPE_COUNT
} retry_type;

#define RETRY_DEFAULT_MAX_ATTEMPTS 5
#define RETRY_BASE_DELAY_MS        INT64_C(1000)
#define RETRY_MAX_DELAY_MS         INT64_C(3600000)
#define RETRY_JITTER_PERCENT       10
/* Renewed every lease/3 while the handler runs (retry.c, heartbeat), so this is only how
 * long an entry whose process died waits before another processor takes it: 30 s, like
 * the bus's BUS_DEFAULT_LEASE_MS; a renewal every 10 s leaves two missed renewals (a slow
 * or busy database) of margin before a live handler could lose its entry. */
#define RETRY_DEFAULT_LEASE_MS    INT64_C(30000)
#define RETRY_KEEP_COMPLETED_MS   INT64_C(604800000) /* 7 days */
#define RETRY_CLEANUP_INTERVAL_MS INT64_C(86400000)  /* daily */
#define RETRY_DEFAULT_INTERVAL_MS INT64_C(30000)
#define RETRY_EXHAUSTED_EVENT     "RETRY_EXHAUSTED"

/* "FULFILLMENT", "PRINT_JOB_CREATION", "CANCELLATION", "NOTIFICATION" (as stored);
 * "UNKNOWN" outside the enum. */
const char *retry_type_name(retry_type t);

/* Parses a stored type name; -1 if unknown. */
int retry_type_parse(const char *name);

/* "PENDING", "PROCESSING", "COMPLETED", "FAILED": true if s is one of them. */
bool retry_status_valid(const char *s);

/*
 * Delay before attempt `attempt` + 1 after `attempt` failed ones (attempt >= 1):
 * 1 s x 2^(attempt-1), capped at 1 h, then scaled by a jitter factor in [0.9, 1.1]
 * picked by u in [0, 1] (0 -> -10 %, 0.5 -> none, 1 -> +10 %; values outside are
 * clamped). attempt < 1 counts as 1. Deterministic for a given u.
 */
int64_t retry_backoff_ms(int attempt, double u);

/* ---- enqueueing (any service, in its own transaction) ----------------------------------- */

typedef struct retry_enqueue_opts {
    const char *tenant_id; /* required */
    retry_type type;       /* required */
    const json_t *payload; /* required object, borrowed; stored as JSON text */
    int max_attempts;      /* 0 = RETRY_DEFAULT_MAX_ATTEMPTS; 1..100 */
    int64_t delay_ms;      /* first attempt after this; < 0 = RETRY_BASE_DELAY_MS, 0 = now */
    int64_t now_ms;        /* 0 = clock_now_ms() (tests pass a fixed time) */
    /* Add nothing when the tenant has a PENDING entry of this type with the same payload
     * (compared as stored, so build equal payloads the same way): that entry will do the
     * work. Two transactions racing may still both add one; handlers are idempotent. */
    bool dedupe;
} retry_enqueue_opts;

/* Adds an entry inside tx (an open transaction of the caller, so the entry commits with
 * the caller's state change or not at all). id_out (may be NULL; UUID_STR_LEN bytes)
 * receives the entry's id (with dedupe, the id of the PENDING entry found, if any).
 * F3_EINVAL names a missing or bad field. */
int retry_enqueue_with(db_conn *tx, const retry_enqueue_opts *o, char *id_out, err *e);

/* retry_enqueue_with with the defaults: 5 attempts, first one in 1 s. */
int retry_enqueue(db_conn *tx, const char *tenant_id, retry_type type, const json_t *payload,
                  err *e);

/* ---- processing (one retry_queue per service and process) ------------------------------- */

/* Statuses, as a mask for retry_exists. */
#define RETRY_ST_PENDING    1u
#define RETRY_ST_PROCESSING 2u
#define RETRY_ST_COMPLETED  4u
#define RETRY_ST_FAILED     8u

/* *found = true when tenant_id has an entry of type with exactly this payload (compared
 * as stored, see retry_enqueue_opts.dedupe) in one of the statuses of the mask. Runs on c,
 * in its open transaction if there is one. 0 or a db error. */
int retry_exists(db_conn *c, const char *tenant_id, retry_type type, const json_t *payload,
                 unsigned statuses, bool *found, err *e);

/* What a handler may tell the queue about a failed attempt; zeroed before every call. */
typedef struct retry_advice {
    /* > 0: the next attempt not before this many ms from now (a provider's Retry-After);
     * the backoff still applies when it is longer; capped at RETRY_MAX_DELAY_MS. */
    int64_t retry_after_ms;
    /* The handler raised its own operator alert about this failure: when the entry ends
     * FAILED now, RETRY_EXHAUSTED is still event-logged but no second alert is queued. */
    bool alerted;
} retry_advice;

/* What a handler is given; everything is borrowed for the duration of the call. */
typedef struct retry_entry {
    const char *id;
    const char *tenant_id;
    retry_type type;
    const json_t *payload; /* the stored object */
    int attempt;           /* this attempt, 1-based */
    int max_attempts;      /* attempt == max_attempts: the last one */
    bool manual;           /* an operator sent it back after it failed (retry_manual) */
    retry_advice *advice;  /* never NULL; the handler may set its fields */
} retry_entry;

/* Runs one entry; see the outcomes above. The err message becomes last_error. */
typedef int (*retry_handler)(const retry_entry *en, void *ctx, err *e);

typedef struct retry_queue retry_queue;

typedef struct retry_opts {
    int batch;        /* entries claimed per transaction; 0 = 20 */
    int64_t lease_ms; /* a PROCESSING entry is claimed again after this; 0 = 30 s */
    /* Jitter source: returns a number in [0, 1]; NULL = libsodium's random. */
    double (*random)(void *ctx);
    void *random_ctx;
} retry_opts;

/* A processor over database d (borrowed; must outlive it). o may be NULL.
 * NULL when out of memory. Caller frees with retry_free (after the bus worker that runs
 * its jobs has stopped). */
retry_queue *retry_new(db *d, const retry_opts *o);

/* Frees it. NULL is ignored. */
void retry_free(retry_queue *rq);

/* Makes this processor claim entries of `type` and run fn(entry, ctx) for them. Register
 * before retry_schedule / retry_process_due run. F3_EINVAL for a bad type or one that
 * already has a handler. ctx is borrowed. */
int retry_register(retry_queue *rq, retry_type type, retry_handler fn, void *ctx, err *e);

/* True if a handler is registered for type. */
bool retry_handles(const retry_queue *rq, retry_type type);

/* Claims due entries of the registered types (batch by batch, until none is due or
 * `limit` entries ran; limit <= 0 = no limit), runs their handlers and records the
 * outcomes. now_ms = 0 means clock_now_ms(). *ran (may be NULL) = entries run.
 * 0, or a database error (entries already run keep their recorded outcome). */
int retry_process_due(retry_queue *rq, int64_t now_ms, int limit, int *ran, err *e);

/* Deletes the COMPLETED entries (of every tenant) last updated before now_ms - keep_ms
 * (keep_ms <= 0 = 7 days). *removed (may be NULL) = rows deleted. */
int retry_cleanup(db *d, int64_t now_ms, int64_t keep_ms, int64_t *removed, err *e);

/* Operator's manual retry: a FAILED entry of tenant_id goes back to PENDING, due now, with
 * its attempts reset to 0. F3_ENOTFOUND when the tenant has no such entry, F3_ECONFLICT
 * when it is not FAILED. Runs in c's open transaction if there is one. */
int retry_manual(db_conn *c, const char *tenant_id, const char *id, int64_t now_ms, err *e);

/* ---- scheduling on the bus ------------------------------------------------------------ */

/* Queue names: "retry.process@<service>" and "retry.cleanup@<service>". */
#define RETRY_PROCESS_JOB "retry.process"
#define RETRY_CLEANUP_JOB "retry.cleanup"

/* Registers the processor's two repeatable jobs on the worker of bus b (before bus_start)
 * and declares them in store s: "retry.process@<service>" every interval_ms (<= 0 = 30 s;
 * one instance per tick across processes) and "retry.cleanup@<service>" daily. Also starts
 * the local wake-up: when a transaction of this process commits an entry of a type this
 * processor handles, or this processor sends one back to PENDING after a failed attempt,
 * a thread of rq runs the processor at the entry's due time instead of waiting for the
 * next tick, and after each run it sleeps until the earliest PENDING entry of its types is
 * due (claims stay exclusive, so this never runs an entry twice).
 * Register every handler before calling it. Call once per retry_queue; rq, b and s must
 * outlive the bus's worker; retry_free stops the wake-up thread. */
int retry_schedule(retry_queue *rq, bus *b, bus_store *s, int64_t interval_ms, err *e);

/* Makes the running processor stop between entries and the wake-up thread end (before
 * shutdown); entries it had claimed but not started go back to PENDING. */
void retry_stop(retry_queue *rq);

/* ---- the HTTP API (retry_api.c) -------------------------------------------------------- */

/* Adds GET /api/v1/retry-queue (permission orders.read; query status, type, limit 1..100
 * (default 20), offset) answering {"data":[entries...],"total":n,"limit":l,"offset":o},
 * and POST /api/v1/retry-queue/:id/retry (orders.write; a FAILED entry back to PENDING,
 * answered with the entry). Both see only the caller's tenant. d is borrowed until the
 * router is freed. */
int retry_api_add_routes(http_router *r, db *d, err *e);

#endif
