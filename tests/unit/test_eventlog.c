/* F3_TEST: backends
 * test_eventlog.c - the business event log writer: required fields, references,
 * metadata, the correlation id, and joining the caller's transaction.
 */
#include "support/f3test.h"
#include "support/f3test_db.h"

#include "core/log.h"
#include "core/uuid.h"
#include "services/common/eventlog.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

typedef f3test_dbfx fx;

static int setup(void **state)
{
    fx *f = f3test_dbfx_open(backend, true);
    err e = {0};
    assert_int_equal(db_exec(f->c,
                             "INSERT INTO tenants (id, name, slug, created_at, updated_at) "
                             "VALUES ('t1', 'Shop', 'shop', 0, 0)",
                             &e),
                     0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    f3test_dbfx_close(*state);
    return 0;
}

/* The one row's text column `col`, copied (caller frees); NULL when SQL NULL. */
static char *column(fx *f, const char *id, const char *col)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM event_log WHERE id = $1", col);
    err e = {0};
    db_stmt *s = db_prepare(f->c, sql, &e);
    assert_non_null(s);
    db_bind_text(s, 1, id);
    assert_int_equal(db_step(s, &e), DB_ROW);
    const char *v = db_col_text(s, 0);
    char *out = v ? strdup(v) : NULL;
    db_finalize(s);
    return out;
}

static void expect_column(fx *f, const char *id, const char *col, const char *want)
{
    char *v = column(f, id, col);
    if (want)
        assert_string_equal(v, want);
    else
        assert_null(v);
    free(v);
}

static void test_entry_with_references_and_metadata(void **state)
{
    fx *f = *state;
    err e = {0};
    json_t *meta = json_pack("{s:s, s:i}", "sku", "CUBE-1", "quantity", 2);
    eventlog_entry en = {.tenant_id = "t1",
                         .event_type = "order.needs-mapping",
                         .severity = EVENTLOG_WARNING,
                         .message = "SKU CUBE-1 has no product mapping",
                         .order_id = "o1",
                         .line_item_id = "li1",
                         .metadata = meta,
                         .correlation_id = "corr-1"};
    char id[UUID_STR_LEN];
    assert_int_equal(db_begin(f->c, &e), 0);
    assert_int_equal(eventlog_write(f->c, &en, id, &e), 0);
    assert_int_equal(db_commit(f->c, &e), 0);
    json_decref(meta);
    assert_true(uuid_valid(id));
    expect_column(f, id, "severity", "WARNING");
    expect_column(f, id, "order_id", "o1");
    expect_column(f, id, "line_item_id", "li1");
    expect_column(f, id, "print_job_id", NULL);
    expect_column(f, id, "correlation_id", "corr-1");
    char *m = column(f, id, "metadata");
    json_t *back = json_loads(m, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(back, "sku")), "CUBE-1");
    json_decref(back);
    free(m);
}

static void test_correlation_id_from_the_thread(void **state)
{
    fx *f = *state;
    err e = {0};
    log_set_correlation_id("thread-corr");
    eventlog_entry en = {.tenant_id = "t1", .event_type = "order.created", .message = "created"};
    char id[UUID_STR_LEN];
    assert_int_equal(eventlog_write(f->c, &en, id, &e), 0);
    log_set_correlation_id(NULL);
    expect_column(f, id, "correlation_id", "thread-corr");
    expect_column(f, id, "severity", "INFO");
}

static void test_rollback_leaves_nothing(void **state)
{
    fx *f = *state;
    err e = {0};
    eventlog_entry en = {.tenant_id = "t1", .event_type = "order.created", .message = "created"};
    assert_int_equal(db_begin(f->c, &e), 0);
    assert_int_equal(eventlog_write(f->c, &en, NULL, &e), 0);
    assert_int_equal(db_rollback(f->c, &e), 0);
    db_stmt *s = db_prepare(f->c, "SELECT COUNT(*) FROM event_log", &e);
    assert_int_equal(db_step(s, &e), DB_ROW);
    assert_int_equal(db_col_int64(s, 0), 0);
    db_finalize(s);
}

static void test_bad_entries_are_refused(void **state)
{
    fx *f = *state;
    err e = {0};
    eventlog_entry no_tenant = {.event_type = "x", .message = "m"};
    assert_int_equal(eventlog_write(f->c, &no_tenant, NULL, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "tenant_id"));
    eventlog_entry no_type = {.tenant_id = "t1", .message = "m"};
    assert_int_equal(eventlog_write(f->c, &no_type, NULL, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "event_type"));
    eventlog_entry no_msg = {.tenant_id = "t1", .event_type = "x", .message = ""};
    assert_int_equal(eventlog_write(f->c, &no_msg, NULL, &e), F3_EINVAL);
    json_t *arr = json_array();
    eventlog_entry bad_meta = {
        .tenant_id = "t1", .event_type = "x", .message = "m", .metadata = arr};
    assert_int_equal(eventlog_write(f->c, &bad_meta, NULL, &e), F3_EINVAL);
    json_decref(arr);
    assert_int_equal(eventlog_severity_parse("ERROR"), EVENTLOG_ERROR);
    assert_int_equal(eventlog_severity_parse("error"), -1);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_entry_with_references_and_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_correlation_id_from_the_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_entries_are_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
