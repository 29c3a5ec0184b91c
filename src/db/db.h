/*
 * db.h - the one SQL interface of f3connect, over SQLite and PostgreSQL.
 *
 * Services write one SQL text for both backends, with $1..$n parameters, typed binds
 * and typed column getters; RETURNING and INSERT ... ON CONFLICT work on both. Where
 * the backends differ (connection handling, BEGIN flavour, error codes, parameter
 * binding), the difference lives in src/db/, never in callers. SQL that must run on
 * both avoids backend dialects: CAST(x AS BIGINT), not x::bigint; TRUE/FALSE for
 * booleans; no SERIAL/AUTOINCREMENT (ids are UUID text made by the application).
 *
 * Errors: every failing call returns a negative F3_E* code and fills `err`:
 *   F3_ECONFLICT  unique / primary key / foreign key violation (message names the constraint)
 *   F3_EINVAL     CHECK or NOT NULL violation, misuse (bad URL, unbound parameter, ...)
 *   F3_EBUSY      database locked / busy, serialization failure, deadlock, pool exhausted:
 *                 worth retrying the whole transaction (see db_tx)
 *   F3_EIO        connection failure and everything else, with the server's message
 * Messages never contain parameter values or passwords.
 */
#ifndef F3_DB_DB_H
#define F3_DB_DB_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct db db;
typedef struct db_conn db_conn;
typedef struct db_stmt db_stmt;

/* ---- opening ---------------------------------------------------------------------------- */

typedef struct db_opts {
    int pool_size;          /* PostgreSQL: most connections open at once (0 = 10) */
    int busy_timeout_ms;    /* SQLite: how long a writer waits for the lock (0 = 5000) */
    int acquire_timeout_ms; /* PostgreSQL: how long db_acquire waits for a free
                               connection before F3_EBUSY (0 = 5000) */
} db_opts;

/* Opens a database. `url` is "sqlite:PATH" (the file is created if missing; its
 * directory must exist) or "postgres://..." / "postgresql://..." (a libpq URL).
 * `o` may be NULL for defaults. One connection is opened at once so that a wrong URL
 * fails here, with a message naming the URL (password replaced by ***).
 * On success *out is the database; the caller closes it with db_close(). */
int db_open(const char *url, const db_opts *o, db **out, err *e);

/* Closes every connection and frees the database. Every connection must have been
 * released and the threads that used it must be done with it. NULL is ignored. */
void db_close(db *d);

/* "sqlite" or "postgres". */
const char *db_backend(const db *d);

/* The URL given to db_open with any password replaced by ***; borrowed until db_close. */
const char *db_url_redacted(const db *d);

/* Runs a trivial query on a connection; 0 if the database answers. */
int db_ping(db *d, err *e);

/* ---- connections ------------------------------------------------------------------------ */

/* A connection for the calling thread, released with db_release(); NULL on error.
 * SQLite: one connection per thread, opened lazily and kept by that thread (nested
 * acquires on one thread return the same connection). PostgreSQL: a bounded pool;
 * waits up to acquire_timeout_ms for a free connection, then fails with F3_EBUSY;
 * a connection found broken is reset before it is handed out. */
db_conn *db_acquire(db *d, err *e);

/* Gives the connection back. A transaction still open on it is rolled back (and
 * logged as a programming error). NULL is ignored. */
void db_release(db_conn *c);

/* The database a connection belongs to. */
db *db_conn_db(const db_conn *c);

/* ---- transactions ----------------------------------------------------------------------- */

/* BEGIN (SQLite: BEGIN IMMEDIATE, so writers queue for the lock up front instead of
 * deadlocking on a read-to-write upgrade). F3_EINVAL if a transaction is already open. */
int db_begin(db_conn *c, err *e);

/* COMMIT. If any statement failed inside the transaction, the transaction is rolled
 * back instead and that statement's error code returned: PostgreSQL works this way and
 * SQLite is made to match, so no caller comes to rely on committing past an error
 * (use ON CONFLICT for expected conflicts). */
int db_commit(db_conn *c, err *e);

/* ROLLBACK; harmless when no transaction is open. */
int db_rollback(db_conn *c, err *e);

/* True while a transaction is open on the connection. */
bool db_in_transaction(db_conn *c);

/* The body of a transaction: returns 0 to commit, a negative code to roll back. */
typedef int (*db_tx_fn)(db_conn *c, void *ctx, err *e);

#define DB_TX_ATTEMPTS 6

/* Runs fn inside BEGIN ... COMMIT. When BEGIN, fn or COMMIT fails with F3_EBUSY
 * (lock timeout, serialization failure, deadlock), the transaction is rolled back
 * and run again, up to DB_TX_ATTEMPTS times in all, with a short randomized backoff;
 * so fn must be safe to run again (no side effects outside the database). Any other
 * error rolls back and is returned as is. */
int db_tx(db_conn *c, db_tx_fn fn, void *ctx, err *e);

/* Most db_tx_group calls that share one transaction. */
#define DB_GROUP_MAX 256

/* Group commit: runs fn inside a transaction shared with the db_tx_group calls other
 * threads make at the same moment, so that N concurrent writers cost one COMMIT (on
 * SQLite with synchronous=FULL one fsync) instead of N. No gather window: while one
 * shared transaction commits, the calls arriving meanwhile queue up, and the first of
 * them to notice leads the next one, running every queued fn back to back on its own
 * connection inside one db_tx. Each call returns only once its fn's writes have
 * committed (0), or with its own error: if any fn or the COMMIT fails, the shared
 * transaction is rolled back and each of its calls runs again alone in a db_tx of its
 * own, so one failing caller costs the others a retry, never their writes or a wrong
 * error. fn may run on another thread's connection: it must use the database only
 * through c, must not depend on which thread runs it, and must be safe to run again
 * (as for db_tx); ctx must stay valid until db_tx_group returns. The calling thread
 * must not have a transaction open on its own connection (F3_EINVAL): it would hold
 * the writer lock the leader needs. */
int db_tx_group(db *d, db_tx_fn fn, void *ctx, err *e);

/* As db_tx_group, for an fn that runs exactly one statement: when no other call is
 * waiting to share a transaction, a pooled backend (PostgreSQL) runs it autocommitted -
 * one round trip instead of BEGIN, the statement and COMMIT. (On SQLite, whose writes are
 * serialised anyway, it is db_tx_group.) */
int db_tx_group_stmt(db *d, db_tx_fn fn, void *ctx, err *e);

/* ---- statements ------------------------------------------------------------------------- */

#define DB_ROW  1
#define DB_DONE 0

/* Runs SQL without parameters; several statements separated by ';' are allowed.
 * Outside a transaction PostgreSQL runs such a text as one implicit transaction while
 * SQLite commits statement by statement: wrap it in db_begin/db_commit when the whole
 * must succeed or fail together. */
int db_exec(db_conn *c, const char *sql, err *e);

/* Prepares one SQL statement with $1..$n parameters; NULL on error. The statement
 * belongs to the connection and must be finalized before the connection is released.
 * SQLite checks the SQL here; PostgreSQL on the first db_step (the statement is sent to
 * the server then, and prepared once per connection), so handle errors at both places. */
db_stmt *db_prepare(db_conn *c, const char *sql, err *e);

/* Binds parameter $idx (1-based). Values are copied. A bind error (index out of range,
 * out of memory) is also kept and returned by the next db_step, so a caller may bind
 * several values and check once. Binds stay in place across db_reset(). */
int db_bind_text(db_stmt *s, int idx, const char *v); /* NULL binds SQL NULL */
int db_bind_int64(db_stmt *s, int idx, int64_t v);
int db_bind_bool(db_stmt *s, int idx, bool v);
int db_bind_null(db_stmt *s, int idx);

/* Runs the statement on its first call, then moves to the next result row.
 * DB_ROW: a row is available to the getters; DB_DONE: no more rows (stepping again keeps
 * answering DB_DONE until db_reset or a new bind); negative: error (an unbound parameter
 * is F3_EINVAL). A failed statement inside a transaction dooms it (see db_commit). */
int db_step(db_stmt *s, err *e);

/* Getters for the current row; columns are 0-based. Out-of-range or no row: NULL / 0 / false.
 * db_col_count and db_col_name are reliable once db_step has run the statement.
 * db_col_text returns NULL for SQL NULL; the text is borrowed until the next db_step,
 * db_reset or db_finalize. db_col_bool understands true/false, t/f and 1/0. */
int db_col_count(db_stmt *s);
const char *db_col_name(db_stmt *s, int col);
bool db_col_is_null(db_stmt *s, int col);
const char *db_col_text(db_stmt *s, int col);
int64_t db_col_int64(db_stmt *s, int col);
bool db_col_bool(db_stmt *s, int col);

/* Rows inserted, updated or deleted by the last execution; read it after db_step
 * returned DB_DONE. 0 for queries that change nothing. */
int64_t db_changes(db_stmt *s);

/* Makes the statement ready to run again (binds are kept). */
void db_reset(db_stmt *s);

/* Frees the statement. NULL is ignored. */
void db_finalize(db_stmt *s);

/* ---- conveniences for text parameters ------------------------------------------------- */

/* The code an err carries, F3_EIO when it carries none (e may be NULL): for a caller that
 * got NULL from db_prepare / db_prepare_texts and must return a code. */
int db_err_code(const err *e);

/* db_prepare, then texts[0..n-1] bound to $1..$n (NULL binds SQL NULL). NULL on error
 * with e set. Caller finalizes with db_finalize. */
db_stmt *db_prepare_texts(db_conn *c, const char *sql, const char *const *texts, int n, err *e);

/* Prepares, binds and steps sql to the end. *changes (may be NULL) = rows changed.
 * 0 or the db error. */
int db_exec_texts(db_conn *c, const char *sql, const char *const *texts, int n, int64_t *changes,
                  err *e);

/* Runs a query with text parameters (as db_prepare_texts) and copies the first column of
 * its first row into out (as db_col_copy; "" when there is no row). DB_ROW when there was
 * a row, DB_DONE when none, or the db error. */
int db_query_text(db_conn *c, const char *sql, const char *const *texts, int n, char *out,
                  size_t size, err *e);

/* Copies column col of the current row into out (size bytes, truncated; "" for NULL). */
void db_col_copy(db_stmt *s, int col, char *out, size_t size);

/* The epoch-ms value as decimal text, for binding through CAST($n AS BIGINT). */
void db_ms_text(int64_t ms, char out[24]);

/* ---- backend differences a caller's SQL text needs ------------------------------------- */

/* The row-locking clause to append to a SELECT that picks rows to claim:
 * " FOR UPDATE SKIP LOCKED" on PostgreSQL (so concurrent claimers take different rows
 * instead of waiting for each other), "" on SQLite (one writer at a time, and a claim runs
 * inside BEGIN IMMEDIATE, is already exclusive). Static storage. */
const char *db_sql_skip_locked(const db *d);

/* ---- commit notifications --------------------------------------------------------------- */

#define DB_COMMIT_HOOKS_MAX 8

/* Registers fn(ctx) to run after every successful commit of a write on any connection of
 * the database, on the committing thread: explicit COMMITs and, outside transactions,
 * statements that changed rows (SQLite: every write transaction that reached the WAL;
 * PostgreSQL: db_commit and autocommitted writes through db_step/db_exec). Hooks must be
 * quick and must not call into the database (they run while the connection is busy).
 * 0, or F3_EBUSY when DB_COMMIT_HOOKS_MAX hooks are registered already. */
int db_on_commit(db *d, void (*fn)(void *ctx), void *ctx, err *e);

/* Unregisters a hook added with the same fn and ctx; after it returns, fn is not running
 * and will not run again for it. Unknown hooks are ignored. */
void db_on_commit_remove(db *d, void (*fn)(void *ctx), void *ctx);

/* ---- notifications between processes (PostgreSQL LISTEN/NOTIFY) ------------------------ */

/* Sends a notification on `channel` (a lower-case SQL identifier) as part of c's
 * transaction: listeners receive it when that transaction commits, never if it rolls back.
 * SQLite has one process and no NOTIFY: returns 0 and does nothing there (use
 * db_on_commit for in-process wakeups). */
int db_notify(db_conn *c, const char *channel, err *e);

typedef struct db_listener db_listener;

/* Opens a dedicated connection (outside the pool) that LISTENs on `channel`.
 * PostgreSQL only: F3_EINVAL on SQLite. Caller frees with db_listener_close(). */
int db_listener_open(db *d, const char *channel, db_listener **out, err *e);

/* Waits up to timeout_ms for a notification. 1: at least one arrived (all pending ones
 * are consumed), or the connection was re-established after a loss (notifications may
 * have been missed, so the caller should look); 0: timeout or db_listener_interrupt;
 * negative: the connection is lost and could not be re-established (e says why; the
 * next call tries again). One thread at a time may wait on a listener. */
int db_listener_wait(db_listener *l, int timeout_ms, err *e);

/* Makes a db_listener_wait in progress (or the next one) return 0 at once. Thread-safe. */
void db_listener_interrupt(db_listener *l);

/* Closes the connection and frees the listener; no wait may be in progress. NULL ignored. */
void db_listener_close(db_listener *l);

/* ---- migrations ------------------------------------------------------------------------- */

/* One numbered schema change. `name` is its file name ("0001_initial.sql"). */
typedef struct db_migration {
    int version;
    const char *name;
    const char *sql;
} db_migration;

/* The migrations compiled into the binary from the files in migrations/, ascending by version. */
extern const db_migration db_migrations_embedded[];
extern const size_t db_migrations_embedded_count;

/* Applies the embedded migrations not yet applied; see db_migrate_with. */
int db_migrate(db *d, int *applied_count, err *e);

/* Applies the pending migrations of `list` (ascending versions), each in its own
 * transaction together with its row in schema_migrations(version, name, checksum,
 * applied_at), so a failed migration leaves nothing behind. Safe to run from several
 * processes at once (PostgreSQL: advisory lock; SQLite: BEGIN IMMEDIATE). Fails with
 * F3_ECONFLICT, before changing anything, when an applied migration's text changed
 * (checksum mismatch; the message names the file) or when the database has a version
 * this list does not know (the database is newer than the binary). *applied_count
 * (may be NULL) receives the number applied by this call. */
int db_migrate_with(db *d, const db_migration *list, size_t n, int *applied_count, err *e);

typedef enum db_status_format {
    DB_STATUS_TEXT,
    DB_STATUS_JSON,
} db_status_format;

/* Appends a report of the embedded migrations to `out`, one line per migration:
 * "VERSION  NAME  STATE  [APPLIED_AT]", where STATE is applied, pending, changed (applied
 * but the file differs now) or unknown (in the database, not in this binary).
 * Reads only: creates nothing in the database. */
int db_migration_status(db *d, buf *out, err *e);

/* Same report as a JSON array of {"version","name","state","appliedAt"} (appliedAt is
 * ISO-8601 UTC text or null), followed by a newline. */
int db_migration_status_json(db *d, buf *out, err *e);

/* Same, for a given list of migrations and format. */
int db_migration_status_with(db *d, const db_migration *list, size_t n, db_status_format fmt,
                             buf *out, err *e);

#endif
