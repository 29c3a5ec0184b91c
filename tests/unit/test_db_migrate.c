/* F3_TEST: backends
 * test_db_migrate.c - the migrations runner (db_migrate, db_migrate_with, status) on SQLite
 * and PostgreSQL (argv[1]): idempotence, refusal of changed or unknown migrations, atomicity
 * of a failed migration, concurrent migrators.
 */
#include "support/f3test_db.h"

#include "core/log.h"
#include "db/db.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

typedef struct fx {
    char *url;
    db *d;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->url = f3test_db_url(backend);
    err e = {0};
    if (db_open(f->url, NULL, &f->d, &e) != 0)
        fail_msg("db_open(%s): %s", f->url, e.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    db_close(f->d);
    f3test_db_drop(f->url);
    free(f->url);
    free(f);
    return 0;
}

/* Runs a one-value query; returns its step status and the value in *out. */
static int query_int(db *d, const char *sql, int64_t *out, err *e)
{
    db_conn *c = db_acquire(d, e);
    if (!c)
        return e->code;
    db_stmt *s = db_prepare(c, sql, e);
    int rc = s ? db_step(s, e) : e->code;
    if (rc == DB_ROW)
        *out = db_col_int64(s, 0);
    db_finalize(s);
    db_release(c);
    return rc;
}

static int64_t count_of(db *d, const char *sql)
{
    int64_t n = -1;
    err e = {0};
    if (query_int(d, sql, &n, &e) != DB_ROW)
        fail_msg("%s: %s", sql, e.msg);
    return n;
}

static bool table_readable(db *d, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    int64_t n;
    err e = {0};
    return query_int(d, sql, &n, &e) == DB_ROW;
}

static char *status_of(db *d, const db_migration *list, size_t n, db_status_format fmt)
{
    buf out;
    buf_init(&out, 0);
    err e = {0};
    int rc = list                    ? db_migration_status_with(d, list, n, fmt, &out, &e)
             : fmt == DB_STATUS_JSON ? db_migration_status_json(d, &out, &e)
                                     : db_migration_status(d, &out, &e);
    if (rc)
        fail_msg("migration status: %s", e.msg);
    return buf_detach(&out);
}

static void test_embedded_migrations_apply_once(void **state)
{
    fx *f = *state;
    err e = {0};
    size_t n = db_migrations_embedded_count;
    assert_true(n >= 1);
    assert_int_equal(db_migrations_embedded[0].version, 1);
    assert_string_equal(db_migrations_embedded[0].name, "0001_initial.sql");
    assert_non_null(strstr(db_migrations_embedded[0].sql, "CREATE TABLE orders"));

    int applied = -1;
    assert_int_equal(db_migrate(f->d, &applied, &e), 0);
    assert_int_equal(applied, n);
    assert_int_equal(db_migrate(f->d, &applied, &e), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(count_of(f->d, "SELECT count(*) FROM schema_migrations"), n);
    assert_int_equal(count_of(f->d, "SELECT min(length(checksum)) FROM schema_migrations"), 64);
    assert_true(count_of(f->d, "SELECT min(applied_at) FROM schema_migrations") >
                INT64_C(1600000000000));
    assert_true(table_readable(f->d, "orders"));

    char *text = status_of(f->d, NULL, 0, DB_STATUS_TEXT);
    assert_non_null(strstr(text, "0001_initial.sql"));
    assert_non_null(strstr(text, "applied"));
    assert_null(strstr(text, "pending"));
    free(text);
    char *json = status_of(f->d, NULL, 0, DB_STATUS_JSON);
    assert_true(json[0] == '[');
    assert_non_null(strstr(json,
                           "{\"version\":1,\"name\":\"0001_initial.sql\",\"state\":\"applied\","
                           "\"appliedAt\":\""));
    free(json);
}

static void test_status_changes_nothing(void **state)
{
    fx *f = *state;
    char *text = status_of(f->d, NULL, 0, DB_STATUS_TEXT);
    assert_non_null(strstr(text, "0001_initial.sql"));
    assert_non_null(strstr(text, "pending"));
    assert_null(strstr(text, "applied"));
    free(text);
    char *json = status_of(f->d, NULL, 0, DB_STATUS_JSON);
    assert_non_null(strstr(json, "\"state\":\"pending\",\"appliedAt\":null"));
    free(json);
    assert_false(table_readable(f->d, "schema_migrations"));
}

static const db_migration list_ab[] = {
    {1, "0001_a.sql", "CREATE TABLE a (x BIGINT)"},
    {2, "0002_b.sql", "CREATE TABLE b (x BIGINT); INSERT INTO b VALUES (1)"},
};

static void test_changed_migration_is_refused(void **state)
{
    fx *f = *state;
    err e = {0};
    int applied = 0;
    assert_int_equal(db_migrate_with(f->d, list_ab, 1, &applied, &e), 0);
    assert_int_equal(applied, 1);

    const db_migration edited[] = {
        {1, "0001_a.sql", "CREATE TABLE a (x BIGINT, y TEXT)"},
        list_ab[1],
    };
    assert_int_equal(db_migrate_with(f->d, edited, 2, &applied, &e), F3_ECONFLICT);
    assert_int_equal(applied, 0);
    assert_non_null(strstr(e.msg, "0001_a.sql"));
    assert_non_null(strstr(e.msg, "checksum"));
    assert_false(table_readable(f->d, "b")); /* nothing after the refusal was applied */

    char *text = status_of(f->d, edited, 2, DB_STATUS_TEXT);
    assert_non_null(strstr(text, "changed"));
    assert_non_null(strstr(text, "pending"));
    free(text);
}

static void test_newer_database_is_refused(void **state)
{
    fx *f = *state;
    err e = {0};
    int applied = 0;
    assert_int_equal(db_migrate_with(f->d, list_ab, 2, &applied, &e), 0);
    assert_int_equal(applied, 2);
    assert_int_equal(db_migrate_with(f->d, list_ab, 1, &applied, &e), F3_ECONFLICT);
    assert_non_null(strstr(e.msg, "0002_b.sql"));
    assert_non_null(strstr(e.msg, "newer"));

    char *json = status_of(f->d, list_ab, 1, DB_STATUS_JSON);
    assert_non_null(strstr(json, "\"name\":\"0002_b.sql\",\"state\":\"unknown\""));
    free(json);
}

static void test_failed_migration_leaves_nothing(void **state)
{
    fx *f = *state;
    err e = {0};
    const db_migration broken[] = {
        list_ab[0],
        {2, "0002_b.sql", "CREATE TABLE b (x BIGINT); INSERT INTO no_such_table VALUES (1)"},
    };
    int applied = 0;
    assert_int_equal(db_migrate_with(f->d, broken, 2, &applied, &e), F3_EIO);
    assert_int_equal(applied, 1);
    assert_non_null(strstr(e.msg, "0002_b.sql"));
    assert_non_null(strstr(e.msg, "no_such_table"));
    assert_true(table_readable(f->d, "a"));
    assert_false(table_readable(f->d, "b")); /* the DDL was rolled back with the rest */
    assert_int_equal(count_of(f->d, "SELECT count(*) FROM schema_migrations"), 1);

    /* Fixed before release: it applies. */
    assert_int_equal(db_migrate_with(f->d, list_ab, 2, &applied, &e), 0);
    assert_int_equal(applied, 1);
    assert_int_equal(count_of(f->d, "SELECT count(*) FROM b"), 1);
}

static void test_malformed_lists_are_rejected(void **state)
{
    fx *f = *state;
    err e = {0};
    const db_migration backwards[] = {list_ab[1], list_ab[0]};
    assert_int_equal(db_migrate_with(f->d, backwards, 2, NULL, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "out of order"));
    const db_migration zero[] = {{0, "0000_x.sql", "SELECT 1"}};
    assert_int_equal(db_migrate_with(f->d, zero, 1, NULL, &e), F3_EINVAL);
    const db_migration no_sql[] = {{1, "0001_x.sql", NULL}};
    assert_int_equal(db_migrate_with(f->d, no_sql, 1, NULL, &e), F3_EINVAL);
    assert_false(table_readable(f->d, "schema_migrations"));
}

#define MIGRATORS 4
#define STEPS     8

static db_migration steps[STEPS];
static char step_names[STEPS][32];
static char step_sql[STEPS][96];

typedef struct migrator {
    const char *url;
    int applied;
    int rc;
    char msg[ERR_MSG_MAX];
} migrator;

/* Each migrator is its own db handle, as separate processes starting at once would be. */
static void *migrator_main(void *arg)
{
    migrator *m = arg;
    err e = {0};
    db *d = NULL;
    m->rc = db_open(m->url, NULL, &d, &e);
    if (m->rc == 0)
        m->rc = db_migrate_with(d, steps, STEPS, &m->applied, &e);
    snprintf(m->msg, sizeof m->msg, "%s", e.msg);
    db_close(d);
    return NULL;
}

static void test_concurrent_migrators_apply_each_once(void **state)
{
    fx *f = *state;
    for (int i = 0; i < STEPS; i++) {
        snprintf(step_names[i], sizeof step_names[i], "%04d_step.sql", i + 1);
        snprintf(step_sql[i], sizeof step_sql[i],
                 "CREATE TABLE step%d (x BIGINT); INSERT INTO step%d VALUES (%d)", i + 1, i + 1,
                 i + 1);
        steps[i] = (db_migration){i + 1, step_names[i], step_sql[i]};
    }
    pthread_t th[MIGRATORS];
    migrator m[MIGRATORS];
    for (int i = 0; i < MIGRATORS; i++) {
        m[i] = (migrator){.url = f->url};
        assert_int_equal(pthread_create(&th[i], NULL, migrator_main, &m[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < MIGRATORS; i++) {
        pthread_join(th[i], NULL);
        if (m[i].rc != 0)
            fail_msg("migrator %d failed: %s", i, m[i].msg);
        total += m[i].applied;
    }
    assert_int_equal(total, STEPS);
    assert_int_equal(count_of(f->d, "SELECT count(*) FROM schema_migrations"), STEPS);
    for (int i = 0; i < STEPS; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM step%d", i + 1);
        assert_int_equal(count_of(f->d, sql), 1);
    }
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    log_set_level(LOG_WARN); /* "migration applied" lines are noise here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_embedded_migrations_apply_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_migration_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_database_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_migration_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_lists_are_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_migrators_apply_each_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
