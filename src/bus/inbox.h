/*
 * inbox.h - idempotent consumers: which events each consumer has already handled.
 *
 * A row (consumer, event_id) in bus_inbox (migrations/0002_bus.sql) is written in the
 * same transaction as the consumer's own writes for that event, so "handled" and "its
 * effects" commit or vanish together; a redelivered event finds the row and is
 * acknowledged without running the handler again. The worker runtime (bus/worker.h)
 * is the only caller in normal operation; this file must not decide what a consumer is
 * (services pass their own consumer names through the runtime).
 */
#ifndef F3_BUS_INBOX_H
#define F3_BUS_INBOX_H

#include "core/err.h"
#include "db/db.h"

#include <stdbool.h>
#include <stdint.h>

/* Sets *seen to whether `consumer` already recorded `event_id`. Runs on a connection of
 * its own (acquired and released here). 0 or a negative F3_E* code with e set. */
int bus_inbox_seen(db *d, const char *consumer, const char *event_id, bool *seen, err *e);

/* Records (consumer, event_id, now) in the caller's open transaction `tx`. *recorded is
 * false when the pair was already there, committed by someone else (on PostgreSQL a
 * concurrent, not yet committed insert of the same pair makes this call wait for that
 * transaction's outcome first): the caller then rolls back its own writes for the event. */
int bus_inbox_record(db_conn *tx, const char *consumer, const char *event_id, int64_t now,
                     bool *recorded, err *e);

/* Deletes entries handled before `before_ms` (epoch ms), in its own transaction.
 * *deleted (may be NULL) = rows removed. */
int bus_inbox_trim(db *d, int64_t before_ms, int64_t *deleted, err *e);

#endif
