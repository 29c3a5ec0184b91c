/*
 * eventlog.c - writes the business event log (see eventlog.h).
 */
#include "services/common/eventlog.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/uuid.h"

#include <string.h>

static const char *const severity_names[] = {"INFO", "WARNING", "ERROR"};

const char *eventlog_severity_name(eventlog_severity s)
{
    return (unsigned)s < 3 ? severity_names[s] : "INFO";
}

int eventlog_severity_parse(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, severity_names[i]) == 0)
            return i;
    return -1;
}

static int check_entry(const eventlog_entry *en, err *e)
{
    if (!en->tenant_id || !*en->tenant_id)
        return err_set(e, F3_EINVAL, "event log: tenant_id is required");
    if (!en->event_type || !*en->event_type)
        return err_set(e, F3_EINVAL, "event log: event_type is required");
    if (!en->message || !*en->message)
        return err_set(e, F3_EINVAL, "event log: message is required");
    if ((unsigned)en->severity > EVENTLOG_ERROR)
        return err_set(e, F3_EINVAL, "event log: bad severity %d", (int)en->severity);
    if (en->metadata && !json_is_object(en->metadata))
        return err_set(e, F3_EINVAL, "event log: metadata must be an object");
    return 0;
}

int eventlog_write(db_conn *tx, const eventlog_entry *en, char *id_out, err *e)
{
    int rc = check_entry(en, e);
    if (rc)
        return rc;
    char id[UUID_STR_LEN];
    uuid_v7(id);
    buf meta;
    buf_init(&meta, 0);
    if (en->metadata && json_dump_buf(en->metadata, &meta) != 0) {
        buf_free(&meta);
        return err_set(e, F3_ETOOBIG, "event log: metadata too large");
    }
    db_stmt *s = db_prepare(tx,
                            "INSERT INTO event_log (id, tenant_id, order_id, line_item_id, "
                            "print_job_id, user_id, event_type, severity, message, metadata, "
                            "correlation_id, created_at) "
                            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                            e);
    if (!s) {
        buf_free(&meta);
        return e ? e->code : F3_EIO;
    }
    const char *corr = en->correlation_id ? en->correlation_id : log_get_correlation_id();
    db_bind_text(s, 1, id);
    db_bind_text(s, 2, en->tenant_id);
    db_bind_text(s, 3, en->order_id);
    db_bind_text(s, 4, en->line_item_id);
    db_bind_text(s, 5, en->print_job_id);
    db_bind_text(s, 6, en->user_id);
    db_bind_text(s, 7, en->event_type);
    db_bind_text(s, 8, eventlog_severity_name(en->severity));
    db_bind_text(s, 9, en->message);
    db_bind_text(s, 10, en->metadata ? buf_cstr(&meta) : NULL);
    db_bind_text(s, 11, corr);
    db_bind_int64(s, 12, clock_now_ms());
    rc = db_step(s, e);
    db_finalize(s);
    buf_free(&meta);
    if (rc < 0)
        return rc;
    if (id_out)
        memcpy(id_out, id, UUID_STR_LEN);
    return 0;
}
