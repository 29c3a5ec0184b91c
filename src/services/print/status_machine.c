/*
 * status_machine.c - the print-job transition table (see status_machine.h). Data plus one
 * lookup; no database, no events.
 */
#include "services/print/status_machine.h"

#include <stddef.h>

#define SUBMIT   PRINT_CAUSE_SUBMIT
#define PROVIDER PRINT_CAUSE_PROVIDER
#define OPERATOR PRINT_CAUSE_OPERATOR
#define ORDER    PRINT_CAUSE_ORDER

typedef struct transition {
    print_job_status from, to;
    unsigned causes; /* print_cause bits allowed to make this move */
} transition;

/* Every move not listed is refused. Forward only, except the two revivals (retry of a
 * FAILED or CANCELLED job back to PENDING), which only an operator may ask for. A provider
 * may skip steps (a job can finish between two polls), so QUEUED -> COMPLETED is allowed. */
static const transition transitions[] = {
    {PRINT_JOB_PENDING, PRINT_JOB_QUEUED, SUBMIT},
    {PRINT_JOB_PENDING, PRINT_JOB_FAILED, SUBMIT},
    {PRINT_JOB_PENDING, PRINT_JOB_CANCELLED, OPERATOR | ORDER},

    {PRINT_JOB_QUEUED, PRINT_JOB_ASSIGNED, PROVIDER},
    {PRINT_JOB_QUEUED, PRINT_JOB_PRINTING, PROVIDER},
    {PRINT_JOB_QUEUED, PRINT_JOB_COMPLETED, PROVIDER},
    {PRINT_JOB_QUEUED, PRINT_JOB_FAILED, PROVIDER},
    {PRINT_JOB_QUEUED, PRINT_JOB_CANCELLED, PROVIDER | OPERATOR | ORDER},

    {PRINT_JOB_ASSIGNED, PRINT_JOB_PRINTING, PROVIDER},
    {PRINT_JOB_ASSIGNED, PRINT_JOB_COMPLETED, PROVIDER},
    {PRINT_JOB_ASSIGNED, PRINT_JOB_FAILED, PROVIDER},
    {PRINT_JOB_ASSIGNED, PRINT_JOB_CANCELLED, PROVIDER | OPERATOR | ORDER},

    /* An order cancellation leaves a printing job to an operator (needs review). */
    {PRINT_JOB_PRINTING, PRINT_JOB_COMPLETED, PROVIDER},
    {PRINT_JOB_PRINTING, PRINT_JOB_FAILED, PROVIDER},
    {PRINT_JOB_PRINTING, PRINT_JOB_CANCELLED, PROVIDER | OPERATOR},

    {PRINT_JOB_FAILED, PRINT_JOB_PENDING, OPERATOR},
    {PRINT_JOB_CANCELLED, PRINT_JOB_PENDING, OPERATOR},
};

print_verdict print_transition(print_job_status from, print_job_status to, print_cause cause)
{
    if ((unsigned)from >= PRINT_JOB_STATUS_COUNT || (unsigned)to >= PRINT_JOB_STATUS_COUNT)
        return PRINT_REFUSED;
    if (from == to)
        return PRINT_SAME;
    for (size_t i = 0; i < sizeof transitions / sizeof transitions[0]; i++)
        if (transitions[i].from == from && transitions[i].to == to)
            return (transitions[i].causes & (unsigned)cause) ? PRINT_MOVE : PRINT_REFUSED;
    return PRINT_REFUSED;
}

const char *print_cause_name(print_cause cause)
{
    switch (cause) {
    case PRINT_CAUSE_SUBMIT:
        return "submit";
    case PRINT_CAUSE_PROVIDER:
        return "provider";
    case PRINT_CAUSE_OPERATOR:
        return "operator";
    case PRINT_CAUSE_ORDER:
        return "order";
    }
    return "unknown";
}
