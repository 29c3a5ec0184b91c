/*
 * status.h - the statuses of an order and the one table of moves allowed between them.
 *
 * Every change of orders.status goes through order_status_can_move; nothing else decides
 * which transitions exist. The names are the ones the database CHECK allows
 * (migrations/0001_initial.sql). Nothing here touches a database.
 */
#ifndef F3_ORDERS_STATUS_H
#define F3_ORDERS_STATUS_H

#include <stdbool.h>

typedef enum order_status {
    ORDER_PENDING,
    ORDER_PROCESSING,
    ORDER_PARTIALLY_COMPLETED,
    ORDER_COMPLETED,
    ORDER_FAILED,
    ORDER_CANCELLED,
    ORDER_STATUS_COUNT
} order_status;

/* "PENDING", "PROCESSING", ...; "UNKNOWN" for a value outside the enum. */
const char *order_status_name(order_status s);

/* Parses a status name (as stored, upper case); -1 if unknown. */
int order_status_parse(const char *name);

/* True if an order in `from` may move to `to`. Staying in the same status is not a move
 * (false): callers treat it as nothing to do. */
bool order_status_can_move(order_status from, order_status to);

/* True for statuses no move leaves (COMPLETED, CANCELLED). */
bool order_status_is_final(order_status s);

#endif
