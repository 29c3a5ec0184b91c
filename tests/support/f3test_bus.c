/*
 * f3test_bus.c - shared fixture and polling helpers of the bus runtime tests (see
 * f3test_bus.h). No main(): the test programs link it through the f3test library.
 */
#include "support/f3test_bus.h"

#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void f3test_bus_exec(db *d, const char *sql)
{
    err e = {0};
    db_conn *c = db_acquire(d, &e);
    if (!c)
        fail_msg("db_acquire: %s", e.msg);
    if (db_exec(c, sql, &e) != 0)
        fail_msg("%s: %s", sql, e.msg);
    db_release(c);
}

void f3test_bus_open(f3test_bus *f, const char *url, int busy_timeout_ms)
{
    err e = {0};
    db_opts o = {.pool_size = 60, .busy_timeout_ms = busy_timeout_ms};
    if (db_open(url, &o, &f->d, &e) != 0)
        fail_msg("db_open(%s): %s", url, e.msg);
    if (db_migrate(f->d, NULL, &e) != 0)
        fail_msg("db_migrate: %s", e.msg);
    f3test_bus_exec(f->d, "CREATE TABLE IF NOT EXISTS side (event_id TEXT NOT NULL, who TEXT)");
    if (bus_store_open_sql(f->d, &f->s, &e) != 0)
        fail_msg("bus_store_open_sql: %s", e.msg);
}

void f3test_bus_close(f3test_bus *f)
{
    bus_store_close(f->s);
    db_close(f->d);
    f->s = NULL;
    f->d = NULL;
}

void f3test_bus_new(f3test_bus *f, const char *backend)
{
    memset(f, 0, sizeof *f);
    f->url = f3test_db_url(backend);
    f3test_bus_open(f, f->url, 0);
}

void f3test_bus_drop(f3test_bus *f)
{
    f3test_bus_close(f);
    f3test_db_drop(f->url);
    free(f->url);
    f->url = NULL;
}

int f3test_bus_setup(void **state, const char *backend)
{
    f3test_bus *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f3test_bus_new(f, backend);
    *state = f;
    return 0;
}

int f3test_bus_teardown(void **state)
{
    f3test_bus *f = *state;
    f3test_bus_drop(f);
    free(f);
    return 0;
}

int64_t f3test_bus_count(db *d, const char *sql, const char *param)
{
    return f3test_bus_count_texts(d, sql, &param, param ? 1 : 0);
}

int64_t f3test_bus_count_texts(db *d, const char *sql, const char *const *params, int n)
{
    err e = {0};
    db_conn *c = db_acquire(d, &e);
    if (!c)
        fail_msg("db_acquire: %s", e.msg);
    db_stmt *st = db_prepare_texts(c, sql, params, n, &e);
    if (!st)
        fail_msg("%s: %s", sql, e.msg);
    int rc = db_step(st, &e);
    if (rc != DB_ROW)
        fail_msg("%s: no row (%d %s)", sql, rc, e.msg);
    int64_t v = db_col_int64(st, 0);
    db_finalize(st);
    db_release(c);
    return v;
}

int f3test_bus_side_write(db_conn *tx, const char *event_id, const char *who, err *e)
{
    db_stmt *st = db_prepare(tx, "INSERT INTO side (event_id, who) VALUES ($1, $2)", e);
    if (!st)
        return e->code ? e->code : F3_EIO;
    db_bind_text(st, 1, event_id);
    db_bind_text(st, 2, who);
    int rc = db_step(st, e);
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

bool f3test_bus_add(bus_store *s, const char *queue, const char *id, const char *data,
                    const bus_job_opts *o)
{
    bus_job_opts opts = o ? *o : (bus_job_opts){0};
    opts.job_id = id;
    bool added = false;
    err e = {0};
    if (bus_store_add(s, NULL, queue, "test.job", data ? data : "{}", &opts, clock_now_ms(), &added,
                      &e) != 0)
        fail_msg("bus_store_add(%s, %s): %s", queue, id ? id : "(new)", e.msg);
    return added;
}

bus_job *f3test_bus_get(bus_store *s, const char *queue, const char *id)
{
    bus_job *j = NULL;
    err e = {0};
    if (bus_store_get(s, queue, id, clock_now_ms(), &j, &e) != 0)
        fail_msg("bus_store_get(%s, %s): %s", queue, id, e.msg);
    return j;
}

bool f3test_bus_wait_state(bus_store *s, const char *queue, const char *id, bus_state state,
                           int timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;
    for (;;) {
        bus_job *j = NULL;
        err e = {0};
        int rc = bus_store_get(s, queue, id, clock_now_ms(), &j, &e);
        bool hit = rc == 0 && j->state == state;
        bus_job_free(j);
        if (hit)
            return true;
        if (clock_mono_ms() >= end)
            return false;
        f3test_sleep_ms(10);
    }
}

bool f3test_bus_wait_count(bus_store *s, const char *queue, bus_state state, int64_t n,
                           int timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;
    for (;;) {
        bus_counts c = {0};
        err e = {0};
        if (bus_store_counts(s, queue, clock_now_ms(), &c, &e) != 0)
            fail_msg("bus_store_counts(%s): %s", queue, e.msg);
        if (c.n[state] == n)
            return true;
        if (clock_mono_ms() >= end)
            return false;
        f3test_sleep_ms(20);
    }
}
