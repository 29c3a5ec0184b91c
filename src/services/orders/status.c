/*
 * status.c - the order status names and the transition table (see status.h).
 */
#include "services/orders/status.h"

#include <stddef.h>
#include <string.h>

static const char *const status_names[ORDER_STATUS_COUNT] = {
    "PENDING", "PROCESSING", "PARTIALLY_COMPLETED", "COMPLETED", "FAILED", "CANCELLED",
};

#define TO(s) (1u << (s))

/* Row = from, bits = the statuses it may move to. An order is printed (PROCESSING); when
 * none of its print jobs is active any more it is COMPLETED (all printed),
 * PARTIALLY_COMPLETED (some printed, others failed or were cancelled) or FAILED (none
 * printed). A job requeued after it failed revives a FAILED or PARTIALLY_COMPLETED order
 * to PROCESSING. Orchestration derives the status from the jobs as stored, and their
 * events may be handled late or out of order, so an order may also reach a settled
 * status without having been seen PROCESSING, and a FAILED one may settle as (partially)
 * completed when a retried job finished before its requeue was heard of. Until it is
 * complete an order can be cancelled; COMPLETED and CANCELLED are final. */
static const unsigned status_moves[ORDER_STATUS_COUNT] = {
    [ORDER_PENDING] = TO(ORDER_PROCESSING) | TO(ORDER_PARTIALLY_COMPLETED) | TO(ORDER_COMPLETED) |
                      TO(ORDER_FAILED) | TO(ORDER_CANCELLED),
    [ORDER_PROCESSING] = TO(ORDER_PARTIALLY_COMPLETED) | TO(ORDER_COMPLETED) | TO(ORDER_FAILED) |
                         TO(ORDER_CANCELLED),
    [ORDER_PARTIALLY_COMPLETED] =
        TO(ORDER_PROCESSING) | TO(ORDER_COMPLETED) | TO(ORDER_FAILED) | TO(ORDER_CANCELLED),
    [ORDER_COMPLETED] = 0,
    [ORDER_FAILED] = TO(ORDER_PROCESSING) | TO(ORDER_PARTIALLY_COMPLETED) | TO(ORDER_COMPLETED) |
                     TO(ORDER_CANCELLED),
    [ORDER_CANCELLED] = 0,
};

const char *order_status_name(order_status s)
{
    return (unsigned)s < ORDER_STATUS_COUNT ? status_names[s] : "UNKNOWN";
}

int order_status_parse(const char *name)
{
    for (int i = 0; name && i < ORDER_STATUS_COUNT; i++)
        if (strcmp(name, status_names[i]) == 0)
            return i;
    return -1;
}

bool order_status_can_move(order_status from, order_status to)
{
    if ((unsigned)from >= ORDER_STATUS_COUNT || (unsigned)to >= ORDER_STATUS_COUNT)
        return false;
    return (status_moves[from] & TO(to)) != 0;
}

bool order_status_is_final(order_status s)
{
    return (unsigned)s < ORDER_STATUS_COUNT && status_moves[s] == 0;
}
