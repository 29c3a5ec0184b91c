/*
 * f3test_bus.h - shared pieces of the bus runtime tests: a migrated database with the
 * store open and a side table for handlers to write, plus polling helpers.
 *
 * The side table `side(event_id, who)` stands for a consumer's own business writes, so
 * tests can count effects ("exactly once") independently of the queue tables.
 */
#ifndef F3_TESTS_SUPPORT_BUS_H
#define F3_TESTS_SUPPORT_BUS_H

#include "support/f3test_db.h"

#include "bus/queue.h"
#include "db/db.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct f3test_bus {
    char *url;
    db *d;
    bus_store *s;
} f3test_bus;

/* Opens url (pool big enough for several workers), migrates, creates the side table and
 * opens the store. Fails the test on error. */
void f3test_bus_open(f3test_bus *f, const char *url, int busy_timeout_ms);

/* Closes the store and the database (not the URL). */
void f3test_bus_close(f3test_bus *f);

/* A fresh database for backend, opened as above; f3test_bus_drop closes and drops it. */
void f3test_bus_new(f3test_bus *f, const char *backend);
void f3test_bus_drop(f3test_bus *f);

/* cmocka fixtures: *state = a new f3test_bus (as f3test_bus_new) of backend; and its drop
 * and free. */
int f3test_bus_setup(void **state, const char *backend);
int f3test_bus_teardown(void **state);

/* Runs SQL (no parameters); fails the test on error. */
void f3test_bus_exec(db *d, const char *sql);

/* The first column of the first row of sql (one optional $1 text parameter) as int64. */
int64_t f3test_bus_count(db *d, const char *sql, const char *param);

/* As f3test_bus_count, with the text parameters params[0..n-1] bound to $1..$n. */
int64_t f3test_bus_count_texts(db *d, const char *sql, const char *const *params, int n);

/* Inserts a side-table row in the given open transaction; 0 or the db error. */
int f3test_bus_side_write(db_conn *tx, const char *event_id, const char *who, err *e);

/* Adds a job; fails the test on error. o may be NULL. Returns whether it was added. */
bool f3test_bus_add(bus_store *s, const char *queue, const char *id, const char *data,
                    const bus_job_opts *o);

/* The job (caller frees with bus_job_free); fails the test when absent. */
bus_job *f3test_bus_get(bus_store *s, const char *queue, const char *id);

/* Waits up to timeout_ms for the job to reach state; true if it did. */
bool f3test_bus_wait_state(bus_store *s, const char *queue, const char *id, bus_state state,
                           int timeout_ms);

/* Waits up to timeout_ms until `queue` has n jobs in `state`; true if it did. */
bool f3test_bus_wait_count(bus_store *s, const char *queue, bus_state state, int64_t n,
                           int timeout_ms);

#endif
