/* F3_TEST: backends
 * test_db_notify.c - the db additions the queues need, on SQLite and PostgreSQL (argv[1]):
 * the skip-locked clause, commit hooks, NOTIFY and LISTEN.
 */
#include "support/f3test_db.h"

#include "core/log.h"
#include "db/db.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

static bool is_pg(void)
{
    return strcmp(backend, "postgres") == 0;
}

typedef f3test_dbfx fx;

static int setup(void **state)
{
    fx *f = f3test_dbfx_open(backend, false);
    err e = {0};
    if (db_exec(f->c, "CREATE TABLE t (x BIGINT)", &e) != 0)
        fail_msg("create: %s", e.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    f3test_dbfx_close(*state);
    return 0;
}

static void exec_ok(db_conn *c, const char *sql)
{
    err e = {0};
    if (db_exec(c, sql, &e) != 0)
        fail_msg("%s: %s", sql, e.msg);
}

static void insert_stmt(db_conn *c)
{
    err e = {0};
    db_stmt *s = db_prepare(c, "INSERT INTO t (x) VALUES ($1)", &e);
    assert_non_null(s);
    db_bind_int64(s, 1, 1);
    assert_int_equal(db_step(s, &e), DB_DONE);
    db_finalize(s);
}

static void test_skip_locked_clause(void **state)
{
    fx *f = *state;
    assert_string_equal(db_sql_skip_locked(f->d), is_pg() ? " FOR UPDATE SKIP LOCKED" : "");
    /* The clause makes valid SQL on its backend. */
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT x FROM t ORDER BY x LIMIT 1%s", db_sql_skip_locked(f->d));
    err e = {0};
    exec_ok(f->c, "BEGIN");
    if (db_exec(f->c, sql, &e) != 0)
        fail_msg("%s: %s", sql, e.msg);
    exec_ok(f->c, "ROLLBACK");
}

static atomic_int fired;

static void count_commit(void *ctx)
{
    atomic_fetch_add((atomic_int *)ctx, 1);
}

static void test_commit_hooks(void **state)
{
    fx *f = *state;
    err e = {0};
    atomic_init(&fired, 0);
    assert_int_equal(db_on_commit(f->d, count_commit, &fired, &e), 0);

    assert_int_equal(db_begin(f->c, &e), 0);
    insert_stmt(f->c);
    assert_int_equal(atomic_load(&fired), 0); /* not before the commit */
    assert_int_equal(db_commit(f->c, &e), 0);
    assert_int_equal(atomic_load(&fired), 1);

    assert_int_equal(db_begin(f->c, &e), 0);
    insert_stmt(f->c);
    assert_int_equal(db_rollback(f->c, &e), 0);
    assert_int_equal(atomic_load(&fired), 1); /* a rollback commits nothing */

    insert_stmt(f->c); /* autocommitted write */
    assert_int_equal(atomic_load(&fired), 2);
    exec_ok(f->c, "INSERT INTO t (x) VALUES (2)");
    assert_int_equal(atomic_load(&fired), 3);

    /* Reads commit nothing. */
    db_stmt *s = db_prepare(f->c, "SELECT count(*) FROM t", &e);
    assert_int_equal(db_step(s, &e), DB_ROW);
    db_finalize(s);
    assert_int_equal(atomic_load(&fired), 3);

    db_on_commit_remove(f->d, count_commit, &fired);
    insert_stmt(f->c);
    assert_int_equal(atomic_load(&fired), 3);
    db_on_commit_remove(f->d, count_commit, &fired); /* unknown: ignored */

    atomic_int many[DB_COMMIT_HOOKS_MAX + 1];
    for (int i = 0; i < DB_COMMIT_HOOKS_MAX; i++)
        assert_int_equal(db_on_commit(f->d, count_commit, &many[i], &e), 0);
    assert_int_equal(db_on_commit(f->d, count_commit, &many[DB_COMMIT_HOOKS_MAX], &e), F3_EBUSY);
    for (int i = 0; i < DB_COMMIT_HOOKS_MAX; i++)
        db_on_commit_remove(f->d, count_commit, &many[i]);
}

static void test_notify_and_listen(void **state)
{
    fx *f = *state;
    err e = {0};
    db_listener *l = NULL;
    assert_int_equal(db_notify(f->c, "Bad-Name", &e), F3_EINVAL);
    if (!is_pg()) {
        assert_int_equal(db_notify(f->c, "f3_test", &e), 0); /* nothing to do in one process */
        assert_int_equal(db_listener_open(f->d, "f3_test", &l, &e), F3_EINVAL);
        assert_null(l);
        assert_non_null(strstr(e.msg, "PostgreSQL"));
        return;
    }
    assert_int_equal(db_listener_open(f->d, "bad name", &l, &e), F3_EINVAL);
    assert_int_equal(db_listener_open(f->d, "f3_test", &l, &e), 0);
    assert_int_equal(db_listener_wait(l, 10, &e), 0); /* nothing yet */

    /* Delivered at commit only. */
    assert_int_equal(db_begin(f->c, &e), 0);
    assert_int_equal(db_notify(f->c, "f3_test", &e), 0);
    assert_int_equal(db_rollback(f->c, &e), 0);
    assert_int_equal(db_listener_wait(l, 200, &e), 0);
    assert_int_equal(db_begin(f->c, &e), 0);
    assert_int_equal(db_notify(f->c, "f3_test", &e), 0);
    assert_int_equal(db_notify(f->c, "other_channel", &e), 0);
    assert_int_equal(db_commit(f->c, &e), 0);
    assert_int_equal(db_listener_wait(l, 10000, &e), 1);
    assert_int_equal(db_listener_wait(l, 10, &e), 0); /* consumed; other channels unheard */

    /* An interrupt ends a wait at once, even one that starts later. */
    db_listener_interrupt(l);
    assert_int_equal(db_listener_wait(l, 10000, &e), 0);

    /* A lost connection is re-established and reported as "look now". */
    exec_ok(f->c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE query = 'LISTEN f3_test'");
    int rc = 0;
    for (int i = 0; i < 50 && rc == 0; i++)
        rc = db_listener_wait(l, 100, &e);
    assert_int_equal(rc, 1);
    assert_int_equal(db_notify(f->c, "f3_test", &e), 0); /* autocommitted */
    assert_int_equal(db_listener_wait(l, 10000, &e), 1);
    db_listener_close(l);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_skip_locked_clause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_hooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_and_listen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
