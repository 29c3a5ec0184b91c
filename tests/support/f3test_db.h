/*
 * f3test_db.h - a fresh, isolated database per test, on either backend.
 *
 * SQLite: a new file in a new temporary directory. PostgreSQL: a new database created
 * on the throwaway server started by scripts/test-postgres.sh (its URL is in the file
 * named by $F3_TEST_PG_URL_FILE), so tests running in parallel never share state.
 * A missing server fails the calling test with a message; nothing is skipped silently.
 */
#ifndef F3_TESTS_SUPPORT_DB_H
#define F3_TESTS_SUPPORT_DB_H

#include "support/f3test.h"

#include "db/db.h"

#include <stdbool.h>

/* The URL of a new empty database for `backend` ("sqlite" or "postgres").
 * Fails the current test (cmocka) if it cannot be made. Caller frees the string
 * after f3test_db_drop(). */
char *f3test_db_url(const char *backend);

/* Removes the database made by f3test_db_url (drops it / deletes its directory).
 * Every db handle on it must be closed first. NULL is ignored. */
void f3test_db_drop(const char *url);

/* The backend named by a test program's argv[1] ("sqlite" or "postgres"); exits with a
 * usage message for anything else. */
const char *f3test_backend_arg(int argc, char **argv);

/* The usual fixture of a database suite: a fresh database, open, with the calling
 * thread's connection. */
typedef struct f3test_dbfx {
    char *url;
    db *d;
    db_conn *c;
} f3test_dbfx;

/* Makes, opens (and, when migrate is true, migrates) a fresh database for backend and
 * acquires a connection; fails the test on any error. Free with f3test_dbfx_close. */
f3test_dbfx *f3test_dbfx_open(const char *backend, bool migrate);

/* Releases the connection, closes and drops the database, frees f. */
void f3test_dbfx_close(f3test_dbfx *f);

#endif
