/*
 * status_machine.h - the one transition table of print-job statuses (seed 001): which
 * status may follow which, and who may cause the move.
 *
 * Causes matter because the same pair means different things: FAILED -> PENDING is an
 * operator's retry, never a provider report; a provider report never moves a job out of a
 * terminal status (a COMPLETED job is not reset to PRINTING by a late "started" webhook).
 * This file decides only; jobs.c applies a decision with its events.
 */
#ifndef F3_PRINT_STATUS_MACHINE_H
#define F3_PRINT_STATUS_MACHINE_H

#include "services/print/client.h"

/* Who asks for a change. */
typedef enum print_cause {
    PRINT_CAUSE_SUBMIT = 1u << 0,   /* the submission to SimplyPrint (queued / refused) */
    PRINT_CAUSE_PROVIDER = 1u << 1, /* a SimplyPrint report: webhook or reconciliation */
    PRINT_CAUSE_OPERATOR = 1u << 2, /* an operator: retry, cancel */
    PRINT_CAUSE_ORDER = 1u << 3,    /* the order was cancelled */
} print_cause;

typedef enum print_verdict {
    PRINT_MOVE,    /* a real change: apply it and publish */
    PRINT_SAME,    /* already there: a duplicate report, nothing to do */
    PRINT_REFUSED, /* not allowed from here for this cause: ignored (stale, out of order) */
} print_verdict;

/* The verdict for moving a job from `from` to `to` on behalf of `cause`. Statuses outside
 * the enum are refused. */
print_verdict print_transition(print_job_status from, print_job_status to, print_cause cause);

/* "submit", "provider", "operator", "order"; "unknown" otherwise. */
const char *print_cause_name(print_cause cause);

#endif
