/*
 * inbox.c - the bus_inbox table: recorded and looked up by (consumer, event_id).
 *
 * Plain SQL valid on both backends; it must not open transactions for bus_inbox_record,
 * whose whole point is to join the caller's.
 */
#include "bus/inbox.h"

#include <stddef.h>

static int inbox_check_args(const char *consumer, const char *event_id, err *e)
{
    if (!consumer || !*consumer)
        return err_set(e, F3_EINVAL, "inbox: consumer name is empty");
    if (!event_id || !*event_id)
        return err_set(e, F3_EINVAL, "inbox: event id is empty");
    return 0;
}

int bus_inbox_seen(db *d, const char *consumer, const char *event_id, bool *seen, err *e)
{
    *seen = false;
    int rc = inbox_check_args(consumer, event_id, e);
    if (rc)
        return rc;
    db_stmt *st = NULL;
    db_conn *c = db_acquire(d, e);
    if (!c)
        return e && e->code ? e->code : F3_EIO;
    st = db_prepare(c, "SELECT 1 FROM bus_inbox WHERE consumer = $1 AND event_id = $2", e);
    if (!st) {
        rc = e && e->code ? e->code : F3_EIO;
        goto out;
    }
    db_bind_text(st, 1, consumer);
    db_bind_text(st, 2, event_id);
    rc = db_step(st, e);
    if (rc == DB_ROW)
        *seen = true;
    rc = rc < 0 ? rc : 0;
out:
    db_finalize(st);
    db_release(c);
    return rc;
}

int bus_inbox_record(db_conn *tx, const char *consumer, const char *event_id, int64_t now,
                     bool *recorded, err *e)
{
    *recorded = false;
    int rc = inbox_check_args(consumer, event_id, e);
    if (rc)
        return rc;
    if (!db_in_transaction(tx))
        return err_set(e, F3_EINVAL, "inbox: recording needs the caller's open transaction");
    db_stmt *st = db_prepare(tx,
                             "INSERT INTO bus_inbox (consumer, event_id, handled_at) "
                             "VALUES ($1, $2, $3) ON CONFLICT (consumer, event_id) DO NOTHING",
                             e);
    if (!st)
        return e && e->code ? e->code : F3_EIO;
    db_bind_text(st, 1, consumer);
    db_bind_text(st, 2, event_id);
    db_bind_int64(st, 3, now);
    rc = db_step(st, e);
    if (rc >= 0) {
        *recorded = db_changes(st) == 1;
        rc = 0;
    }
    db_finalize(st);
    return rc;
}

int bus_inbox_trim(db *d, int64_t before_ms, int64_t *deleted, err *e)
{
    if (deleted)
        *deleted = 0;
    db_conn *c = db_acquire(d, e);
    if (!c)
        return e && e->code ? e->code : F3_EIO;
    int rc = 0;
    db_stmt *st = db_prepare(c, "DELETE FROM bus_inbox WHERE handled_at < $1", e);
    if (!st) {
        rc = e && e->code ? e->code : F3_EIO;
        goto out;
    }
    db_bind_int64(st, 1, before_ms);
    rc = db_step(st, e);
    if (rc >= 0) {
        if (deleted)
            *deleted = db_changes(st);
        rc = 0;
    }
out:
    db_finalize(st);
    db_release(c);
    return rc;
}
