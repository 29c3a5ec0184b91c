/*
 * orchestration.h - the orders service's orchestration: the order status that follows
 * from the order's print jobs (seed 000 ORCHESTRATION_EVENTS, issue 6 item 4).
 *
 * The orders service subscribes to print-job.status-changed, print-job.completed,
 * print-job.failed and print-job.cancelled. Each delivery is handled in its own
 * transaction (bus_delivery_tx; the inbox makes the effect exactly-once): the job and the
 * tally of its order's jobs are read as stored (print/client.h, never the thin event
 * alone), the order row is locked, orch_decide says what the order becomes, and the
 * change is written guarded by the expected current status, with its event-log entries,
 * `order.ready-for-fulfillment` (only on the move into COMPLETED) and the job's line item
 * status. Events of another tenant's or of unknown jobs or orders are logged and
 * acknowledged, never retried. This file decides nothing about print jobs themselves:
 * the print service owns them.
 *
 * Decisions (orch_decide), over the order's jobs as stored:
 *   - a CANCELLED or COMPLETED order is never moved (late, duplicate or out-of-order
 *     events, and requeued jobs, leave it as it is);
 *   - jobs still active (PENDING, QUEUED, ASSIGNED, PRINTING): a PENDING order becomes
 *     PROCESSING once any job left PENDING; a FAILED or PARTIALLY_COMPLETED order is
 *     revived to PROCESSING (a job went from a terminal status back to an active one, or
 *     a missing job was added) and `order.revived` is logged;
 *   - no job active: all COMPLETED -> COMPLETED (completed_at set, ready for fulfillment);
 *     else some COMPLETED -> PARTIALLY_COMPLETED (`order.partially-completed` logged);
 *     else FAILED: `order.all-jobs-failed` when any job failed, and when every job was
 *     cancelled (an operator cancelled them one by one, the order itself was not)
 *     `order.failed` with the reason, so that the order does not wait for ever and an
 *     operator sees it; a job retried later revives it. A CANCELLED job counts as not
 *     printed, like a FAILED one.
 *   - an order without jobs is left as it is.
 *
 * Line items: a line item's status follows the jobs of it the orders service has seen
 * (table order_job_progress, fed by every handled event with the job as stored): PROCESSING
 * while any is active (and one left PENDING), else FAILED when any failed, else COMPLETED
 * when all completed, else CANCELLED. Settled statuses are written only once every job of
 * the order has been seen, so a job nobody has heard of yet cannot make its line item look
 * finished; every handled event gives all of the order's line items their status again, so
 * an item settles when another item's job is the last to be seen. A FAILED item carries the
 * error of its failed job.
 */
#ifndef F3_ORDERS_ORCHESTRATION_H
#define F3_ORDERS_ORCHESTRATION_H

#include "bus/bus.h"
#include "core/err.h"
#include "db/db.h"
#include "services/orders/status.h"
#include "services/print/client.h"

#include <stdbool.h>

/* ---- the pure rules (orchestration_rules.c) -------------------------------------------- */

/* The print-job events orchestration handles. */
typedef enum orch_event {
    ORCH_EV_STATUS_CHANGED,
    ORCH_EV_COMPLETED,
    ORCH_EV_FAILED,
    ORCH_EV_CANCELLED,
    ORCH_EV_COUNT
} orch_event;

/* The catalog type of ev (BUS_EV_PRINT_JOB_*); "UNKNOWN" outside the enum. */
const char *orch_event_type(orch_event ev);

/* The orch_event of a catalog type; -1 for any other type. */
int orch_event_parse(const char *event_type);

/* What a decision asks for, besides the status itself. */
#define ORCH_ACT_SET_STATUS   (1u << 0) /* orders.status := to (guarded by `from`) */
#define ORCH_ACT_COMPLETED_AT (1u << 1) /* orders.completed_at := now */
#define ORCH_ACT_READY        (1u << 2) /* publish order.ready-for-fulfillment */
#define ORCH_ACT_LOG_PARTIAL  (1u << 3) /* event log order.partially-completed */
#define ORCH_ACT_LOG_ALL_FAIL (1u << 4) /* event log order.all-jobs-failed */
#define ORCH_ACT_LOG_FAILED   (1u << 5) /* event log order.failed (every job cancelled) */
#define ORCH_ACT_LOG_REVIVED  (1u << 6) /* event log order.revived */

/* Why the decision is what it is (for logs and tests). */
typedef enum orch_reason {
    ORCH_WHY_UNCHANGED,     /* the jobs say what the order says already */
    ORCH_WHY_FINAL,         /* the order is COMPLETED or CANCELLED: never moved */
    ORCH_WHY_NO_JOBS,       /* the order has no print jobs */
    ORCH_WHY_NOT_STARTED,   /* every job is still PENDING */
    ORCH_WHY_STARTED,       /* PENDING -> PROCESSING */
    ORCH_WHY_REVIVED,       /* FAILED / PARTIALLY_COMPLETED -> PROCESSING */
    ORCH_WHY_ALL_COMPLETED, /* -> COMPLETED */
    ORCH_WHY_PARTIAL,       /* -> PARTIALLY_COMPLETED */
    ORCH_WHY_ALL_FAILED,    /* -> FAILED, none printed, some failed */
    ORCH_WHY_ALL_CANCELLED, /* -> FAILED, every job cancelled */
    ORCH_WHY_REFUSED,       /* the status table refuses the move */
    ORCH_WHY_UNMAPPED,      /* -> PARTIALLY_COMPLETED: every job printed, but some line
                               items wait for a product mapping (nothing ships half an
                               order; mapping them adds jobs, which revives it) */
    ORCH_WHY_COUNT
} orch_reason;

/* "unchanged", "final", ...; "unknown" outside the enum. */
const char *orch_reason_name(orch_reason r);

/* What orchestration knows when it decides. */
typedef struct orch_input {
    order_status order;    /* the order's status as stored (locked) */
    print_job_tally tally; /* the order's jobs as stored */
    orch_event event;      /* the event being handled */
    int previous;          /* the job's status before (status-changed), -1 when unknown */
    print_job_status job;  /* the job's status as stored now */
    int unmapped_items;    /* line items of the order still waiting for a product mapping */
} orch_input;

typedef struct orch_decision {
    order_status to;  /* == in->order when nothing changes */
    unsigned actions; /* ORCH_ACT_* */
    orch_reason why;
} orch_decision;

/* The one transition function: what the order becomes and what must be done. Pure; a
 * decision with to != order always carries ORCH_ACT_SET_STATUS and is a move
 * order_status_can_move allows. */
orch_decision orch_decide(const orch_input *in);

/* Line item statuses (the database CHECK of line_items.status). */
typedef enum orch_item_status {
    ORCH_ITEM_PENDING,
    ORCH_ITEM_PROCESSING,
    ORCH_ITEM_COMPLETED,
    ORCH_ITEM_FAILED,
    ORCH_ITEM_CANCELLED,
    ORCH_ITEM_STATUS_COUNT
} orch_item_status;

/* "PENDING", ...; "UNKNOWN" outside the enum. */
const char *orch_item_status_name(orch_item_status s);

/* A line item's status from the statuses of its jobs (tally of them). A settled status
 * (COMPLETED, FAILED, CANCELLED) only when `complete` says every job of the order is
 * counted; PROCESSING instead. No jobs: PENDING. Pure. */
orch_item_status orch_item_decide(const print_job_tally *jobs, bool complete);

/* ---- the handlers (orchestration.c) ------------------------------------------------------ */

/* Event log types written by orchestration (the catalog's names where it has them). */
#define ORCH_LOG_STATUS_CHANGED BUS_IEV_ORDER_STATUS_CHANGED
#define ORCH_LOG_READY          BUS_IEV_ORDER_READY_FOR_FULFILLMENT
#define ORCH_LOG_PARTIAL        BUS_IEV_ORDER_PARTIALLY_COMPLETED
#define ORCH_LOG_ALL_FAILED     BUS_IEV_ORDER_ALL_JOBS_FAILED
#define ORCH_LOG_FAILED         BUS_IEV_ORDER_FAILED
#define ORCH_LOG_REVIVED        "order.revived"

typedef struct orders_orchestration orders_orchestration;

typedef struct orders_orchestration_deps {
    bus *bus; /* a bus of the orders service (BUS_SVC_ORDER), not started yet; borrowed */
    /* Optional (may be NULL): the orders service's in-process emitter; order.status_changed
     * and order.failed are emitted on it, with {tenantId, orderId, previousStatus,
     * newStatus, reason}, once the change has committed (a change rolled back is never
     * announced). Borrowed; must outlive the orchestration. */
    bus_emitter *emitter;
    int concurrency; /* handlers at once per event queue on this instance; 0 = the default */
    /* Optional: called inside the transaction that moves an order to COMPLETED, after
     * order.ready-for-fulfillment is published in it (the orders service's own next step,
     * e.g. fulfilment when no shipping integration is connected). A failure rolls the
     * whole change back and the event is retried. */
    int (*on_ready)(void *ctx, db_conn *tx, const char *tenant_id, const char *order_id, err *e);
    void *on_ready_ctx;
} orders_orchestration_deps;

/* Subscribes the orders bus to the four print-job events. Call before bus_start. 0 with
 * *out set (caller frees with orders_orchestration_free after the bus is freed or
 * drained: handlers use it until then), or an error with e set (F3_EINVAL for a bus of
 * another service or one already started). */
int orders_orchestration_start(orders_orchestration **out, const orders_orchestration_deps *deps,
                               err *e);

/* Frees the orchestration. NULL is ignored. */
void orders_orchestration_free(orders_orchestration *o);

/* What one handled event did (for tests and the CLI). */
typedef struct orch_outcome {
    bool ignored; /* unknown job or order, another tenant's, or a mismatched event */
    order_status from, to;
    orch_decision decision;
    orch_item_status item; /* the job's line item as written (or left) */
} orch_outcome;

/* Handles one print-job event of tenant_id inside tx (an open transaction of the caller),
 * publishing through b: the same writes a delivery makes, without the in-process
 * announcements. event_type is a BUS_EV_PRINT_JOB_* constant, fields the event's own
 * fields (printJobId, orderId, ...; borrowed). out may be NULL. 0 (also for an ignored
 * event: out->ignored); F3_EINVAL for an event type that is not a print-job event or
 * fields without printJobId; F3_EBUSY when the order's status changed under the guard
 * (retry); a db or bus error otherwise. */
int orders_orchestrate(db_conn *tx, bus *b, const char *event_type, const char *tenant_id,
                       const json_t *fields, orch_outcome *out, err *e);

#endif
