/*
 * orchestration_rules.c - the pure rules of orchestration (see orchestration.h): what an
 * order and a line item become, given their print jobs as stored. No database, no bus, no
 * clock here: everything a decision needs is in its input, so the tables can be tested
 * exhaustively.
 */
#include "services/orders/orchestration.h"

#include "bus/catalog.h"

#include <string.h>

static const char *const event_types[ORCH_EV_COUNT] = {
    [ORCH_EV_STATUS_CHANGED] = BUS_EV_PRINT_JOB_STATUS_CHANGED,
    [ORCH_EV_COMPLETED] = BUS_EV_PRINT_JOB_COMPLETED,
    [ORCH_EV_FAILED] = BUS_EV_PRINT_JOB_FAILED,
    [ORCH_EV_CANCELLED] = BUS_EV_PRINT_JOB_CANCELLED,
};

static const char *const reason_names[ORCH_WHY_COUNT] = {
    [ORCH_WHY_UNCHANGED] = "unchanged",
    [ORCH_WHY_FINAL] = "final",
    [ORCH_WHY_NO_JOBS] = "no-jobs",
    [ORCH_WHY_NOT_STARTED] = "not-started",
    [ORCH_WHY_STARTED] = "started",
    [ORCH_WHY_REVIVED] = "revived",
    [ORCH_WHY_ALL_COMPLETED] = "all-completed",
    [ORCH_WHY_PARTIAL] = "partially-completed",
    [ORCH_WHY_ALL_FAILED] = "all-failed",
    [ORCH_WHY_ALL_CANCELLED] = "all-cancelled",
    [ORCH_WHY_REFUSED] = "refused",
    [ORCH_WHY_UNMAPPED] = "awaiting-mapping",
};

static const char *const item_names[ORCH_ITEM_STATUS_COUNT] = {
    "PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED",
};

const char *orch_event_type(orch_event ev)
{
    return (unsigned)ev < ORCH_EV_COUNT ? event_types[ev] : "UNKNOWN";
}

int orch_event_parse(const char *event_type)
{
    for (int i = 0; event_type && i < ORCH_EV_COUNT; i++)
        if (strcmp(event_type, event_types[i]) == 0)
            return i;
    return -1;
}

const char *orch_reason_name(orch_reason r)
{
    return (unsigned)r < ORCH_WHY_COUNT ? reason_names[r] : "unknown";
}

const char *orch_item_status_name(orch_item_status s)
{
    return (unsigned)s < ORCH_ITEM_STATUS_COUNT ? item_names[s] : "UNKNOWN";
}

/* The shape of a set of jobs that every rule looks at. */
typedef struct job_shape {
    int total, active, pending, completed, failed, cancelled;
} job_shape;

static job_shape shape_of(const print_job_tally *t)
{
    job_shape s = {0};
    for (int i = 0; i < PRINT_JOB_STATUS_COUNT; i++) {
        int n = t->n[i] > 0 ? t->n[i] : 0;
        s.total += n;
        if (!print_job_status_is_terminal((print_job_status)i))
            s.active += n;
    }
    s.pending = t->n[PRINT_JOB_PENDING] > 0 ? t->n[PRINT_JOB_PENDING] : 0;
    s.completed = t->n[PRINT_JOB_COMPLETED] > 0 ? t->n[PRINT_JOB_COMPLETED] : 0;
    s.failed = t->n[PRINT_JOB_FAILED] > 0 ? t->n[PRINT_JOB_FAILED] : 0;
    s.cancelled = t->n[PRINT_JOB_CANCELLED] > 0 ? t->n[PRINT_JOB_CANCELLED] : 0;
    return s;
}

/* The status an order in `from` takes when jobs are still active. */
static orch_decision while_active(order_status from, const job_shape *s)
{
    orch_decision d = {.to = from, .actions = 0, .why = ORCH_WHY_UNCHANGED};
    if (from == ORDER_PENDING && s->pending == s->total) {
        d.why = ORCH_WHY_NOT_STARTED;
    } else if (from == ORDER_PENDING) {
        d.to = ORDER_PROCESSING;
        d.why = ORCH_WHY_STARTED;
    } else if (from == ORDER_FAILED || from == ORDER_PARTIALLY_COMPLETED) {
        d.to = ORDER_PROCESSING;
        d.why = ORCH_WHY_REVIVED;
        d.actions = ORCH_ACT_LOG_REVIVED;
    }
    return d;
}

/* The status an order takes when none of its jobs is active any more. */
static orch_decision settled(order_status from, const job_shape *s, int unmapped_items)
{
    orch_decision d = {.to = from, .actions = 0, .why = ORCH_WHY_UNCHANGED};
    if (s->completed == s->total && unmapped_items > 0) {
        d.to = ORDER_PARTIALLY_COMPLETED;
        d.why = ORCH_WHY_UNMAPPED;
        d.actions = ORCH_ACT_LOG_PARTIAL;
    } else if (s->completed == s->total) {
        d.to = ORDER_COMPLETED;
        d.why = ORCH_WHY_ALL_COMPLETED;
        d.actions = ORCH_ACT_COMPLETED_AT | ORCH_ACT_READY;
    } else if (s->completed > 0) {
        d.to = ORDER_PARTIALLY_COMPLETED;
        d.why = ORCH_WHY_PARTIAL;
        d.actions = ORCH_ACT_LOG_PARTIAL;
    } else if (s->failed > 0) {
        d.to = ORDER_FAILED;
        d.why = ORCH_WHY_ALL_FAILED;
        d.actions = ORCH_ACT_LOG_ALL_FAIL;
    } else {
        d.to = ORDER_FAILED;
        d.why = ORCH_WHY_ALL_CANCELLED;
        d.actions = ORCH_ACT_LOG_FAILED;
    }
    return d;
}

/* The event itself (in->event, in->previous, in->job) deliberately does not enter the
 * decision: the jobs as stored are the truth, so an event handled late, twice or out of
 * order leads to the same status as the one handled in time. They are part of the input
 * so that callers and tests state what was being handled. */
orch_decision orch_decide(const orch_input *in)
{
    orch_decision d = {.to = in->order, .actions = 0, .why = ORCH_WHY_UNCHANGED};
    if ((unsigned)in->order >= ORDER_STATUS_COUNT) {
        d.why = ORCH_WHY_REFUSED;
        return d;
    }
    if (order_status_is_final(in->order)) {
        d.why = ORCH_WHY_FINAL;
        return d;
    }
    job_shape s = shape_of(&in->tally);
    if (s.total == 0) {
        d.why = ORCH_WHY_NO_JOBS;
        return d;
    }
    orch_decision want =
        s.active > 0 ? while_active(in->order, &s) : settled(in->order, &s, in->unmapped_items);
    if (want.to == in->order) {
        d.why = want.why == ORCH_WHY_NOT_STARTED ? ORCH_WHY_NOT_STARTED : ORCH_WHY_UNCHANGED;
        return d;
    }
    if (!order_status_can_move(in->order, want.to)) {
        d.why = ORCH_WHY_REFUSED;
        return d;
    }
    want.actions |= ORCH_ACT_SET_STATUS;
    return want;
}

orch_item_status orch_item_decide(const print_job_tally *jobs, bool complete)
{
    job_shape s = shape_of(jobs);
    if (s.total == 0)
        return ORCH_ITEM_PENDING;
    if (s.active > 0)
        return s.pending == s.total ? ORCH_ITEM_PENDING : ORCH_ITEM_PROCESSING;
    if (!complete)
        return ORCH_ITEM_PROCESSING;
    if (s.failed > 0)
        return ORCH_ITEM_FAILED;
    if (s.completed == s.total)
        return ORCH_ITEM_COMPLETED;
    return ORCH_ITEM_CANCELLED;
}
