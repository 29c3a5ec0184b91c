/*
 * sqlite.c - the SQLite backend of the db interface (see db.h, db_internal.h).
 *
 * One connection per thread: a thread's first db_acquire opens (or adopts an idle)
 * connection and keeps it in thread-local storage; when the thread exits the
 * connection goes back to an idle list for the next thread. Every connection runs
 * WAL, synchronous=FULL, foreign_keys=ON, temp_store=MEMORY (the claims' materialized
 * picks and sorts would otherwise open, unlink and close a temporary file each) and a busy
 * timeout, so writers on other connections wait for the lock instead of failing at once. It must
 * not hold an open transaction across db_release, nor share one sqlite3 handle between threads.
 */
#include "db/db_internal.h"

#include "core/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prepared statements kept per connection after db_finalize, keyed by their SQL text:
 * services run the same few statements over and over, and parsing them again each time
 * showed up in profiles. A statement is in the cache only while nobody uses it. */
#define SQ_STMT_CACHE 48

typedef struct sq_cached {
    char *sql; /* NULL for an empty slot */
    uint64_t hash;
    sqlite3_stmt *st;
} sq_cached;

typedef struct sq_conn {
    db_conn base;
    sqlite3 *h;
    sq_cached cache[SQ_STMT_CACHE];
    int cache_next;       /* slot to evict when the cache is full */
    int refs;             /* nested acquires by the owning thread */
    struct sq_conn *next; /* all connections of the database */
    struct sq_conn *idle; /* next on the idle list */
} sq_conn;

typedef struct sq_db {
    char *path;
    /* Writers of this process queue here rather than in SQLite's busy handler, which
     * sleeps 1, 2, 5, 10 ms... between tries while the lock is held for far less. Other
     * processes on the same file still meet the busy handler. */
    pthread_mutex_t writer;
    pthread_key_t key; /* the calling thread's sq_conn */
    pthread_mutex_t lock;
    sq_conn *all;
    sq_conn *idle;
    sq_conn *group; /* db_tx_group's, opened on first use */
} sq_db;

typedef struct sq_stmt {
    db_stmt base;
    sqlite3_stmt *st;
    sq_conn *conn; /* owner, for returning st to its cache */
    char *sql;     /* the text st was prepared from (owned) */
    uint64_t hash;
    int64_t total_before; /* sqlite3_total_changes64 before the first step */
    int64_t changes;
} sq_stmt;

static int sq_error(sqlite3 *h, int rc, const char *msg, err *e)
{
    int code;
    switch (rc) {
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
        code = F3_EINVAL;
        break;
    default:
        switch (rc & 0xff) {
        case SQLITE_CONSTRAINT:
            code = F3_ECONFLICT;
            break;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            code = F3_EBUSY;
            break;
        case SQLITE_NOMEM:
            code = F3_ENOMEM;
            break;
        default:
            code = F3_EIO;
        }
    }
    return db_err_flat(e, code, NULL, msg ? msg : (h ? sqlite3_errmsg(h) : sqlite3_errstr(rc)));
}

/* Runs a PRAGMA that answers one row and checks the answer when `want` is given. */
static int sq_pragma(sqlite3 *h, const char *sql, const char *want, err *e)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_error(h, rc, NULL, e);
    rc = sqlite3_step(st);
    int out = 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        out = sq_error(h, rc, NULL, e);
    } else if (want) {
        const char *got = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        if (!got || strcmp(got, want) != 0)
            out = err_set(e, F3_EIO, "%s answered '%s', expected '%s'", sql, got ? got : "", want);
    }
    sqlite3_finalize(st);
    return out;
}

/* SQLite's WAL auto-checkpoint threshold, which our WAL hook takes over. */
#define SQ_WAL_CHECKPOINT_PAGES 1000

/* Called by SQLite after every write transaction committed to the WAL, on the committing
 * thread: fires the commit hooks, then does what the default hook (which this one
 * replaces) does, a passive checkpoint once the WAL has grown past the threshold. */
static int sq_wal_hook(void *arg, sqlite3 *h, const char *dbname, int pages)
{
    db_fire_commit(arg);
    if (pages >= SQ_WAL_CHECKPOINT_PAGES)
        sqlite3_wal_checkpoint_v2(h, dbname, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

/* A new connection, set up; NULL on error (e says why). */
static sq_conn *sq_open_conn(db *d, err *e)
{
    sq_db *sd = d->impl;
    sqlite3 *h = NULL;
    int rc = sqlite3_open_v2(
        sd->path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err_set(e, F3_EIO, "database URL '%s': cannot open: %s", d->url_redacted,
                h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(h, 1);
    sqlite3_busy_timeout(h, d->opts.busy_timeout_ms);
    if ((rc = sq_pragma(h, "PRAGMA journal_mode=WAL", "wal", e)) ||
        (rc = sq_pragma(h, "PRAGMA synchronous=FULL", NULL, e)) ||
        (rc = sq_pragma(h, "PRAGMA foreign_keys=ON", NULL, e)) ||
        (rc = sq_pragma(h, "PRAGMA temp_store=MEMORY", NULL, e))) {
        if (e) {
            char why[ERR_MSG_MAX];
            snprintf(why, sizeof why, "%s", e->msg);
            err_set(e, rc, "database URL '%s': cannot set up the connection: %.300s",
                    d->url_redacted, why);
        }
        goto fail;
    }
    sq_conn *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(e, F3_ENOMEM, "out of memory opening a database connection");
        goto fail;
    }
    sqlite3_wal_hook(h, sq_wal_hook, d);
    c->base.owner = d;
    c->h = h;
    return c;
fail:
    sqlite3_close(h);
    return NULL;
}

/* Thread exit: the thread's connection becomes idle for the next thread. */
static void sq_thread_exit(void *p)
{
    sq_conn *c = p;
    sq_db *sd = c->base.owner->impl;
    if (!sqlite3_get_autocommit(c->h))
        sqlite3_exec(c->h, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_lock(&sd->lock);
    c->refs = 0;
    c->idle = sd->idle;
    sd->idle = c;
    pthread_mutex_unlock(&sd->lock);
}

static int sq_open(db *d, const char *path, err *e)
{
    if (!*path)
        return err_set(e, F3_EINVAL,
                       "database URL '%s': no file path after sqlite:", d->url_redacted);
    if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
        return err_set(e, F3_EINVAL,
                       "database URL '%s': give a file path (connections are per thread, so an "
                       "in-memory database would not be shared)",
                       d->url_redacted);
    sq_db *sd = calloc(1, sizeof *sd);
    if (!sd)
        return err_set(e, F3_ENOMEM, "out of memory opening the database");
    sd->path = strdup(path);
    if (!sd->path || pthread_key_create(&sd->key, sq_thread_exit) != 0) {
        free(sd->path);
        free(sd);
        return err_set(e, F3_ENOMEM, "out of resources opening the database");
    }
    pthread_mutex_init(&sd->lock, NULL);
    pthread_mutex_init(&sd->writer, NULL);
    d->impl = sd;
    sq_conn *c = sq_open_conn(d, e);
    if (!c) {
        int rc = e && e->code ? e->code : F3_EIO;
        pthread_key_delete(sd->key);
        pthread_mutex_destroy(&sd->lock);
        pthread_mutex_destroy(&sd->writer);
        free(sd->path);
        free(sd);
        d->impl = NULL;
        return rc;
    }
    c->next = sd->all;
    sd->all = c;
    c->idle = sd->idle;
    sd->idle = c;
    return 0;
}

static uint64_t sq_hash(const char *s)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static void sq_cache_clear(sq_conn *c)
{
    for (int i = 0; i < SQ_STMT_CACHE; i++) {
        sqlite3_finalize(c->cache[i].st);
        free(c->cache[i].sql);
        c->cache[i] = (sq_cached){0};
    }
}

/* Takes a cached statement for sql out of the cache; NULL if there is none. */
static sqlite3_stmt *sq_cache_take(sq_conn *c, const char *sql, uint64_t hash, char **sql_out)
{
    for (int i = 0; i < SQ_STMT_CACHE; i++) {
        sq_cached *k = &c->cache[i];
        if (k->sql && k->hash == hash && strcmp(k->sql, sql) == 0) {
            sqlite3_stmt *st = k->st;
            *sql_out = k->sql;
            *k = (sq_cached){0};
            return st;
        }
    }
    return NULL;
}

/* Puts a statement nobody uses any more into the cache, evicting the oldest entry
 * when full. Takes ownership of st and sql. */
static void sq_cache_put(sq_conn *c, sqlite3_stmt *st, char *sql, uint64_t hash)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sq_cached *slot = NULL;
    for (int i = 0; i < SQ_STMT_CACHE && !slot; i++)
        if (!c->cache[i].sql)
            slot = &c->cache[i];
    if (!slot) {
        slot = &c->cache[c->cache_next];
        c->cache_next = (c->cache_next + 1) % SQ_STMT_CACHE;
        sqlite3_finalize(slot->st);
        free(slot->sql);
    }
    *slot = (sq_cached){sql, hash, st};
}

static void sq_writer_enter(db *d)
{
    pthread_mutex_lock(&((sq_db *)d->impl)->writer);
}

static void sq_writer_leave(db *d)
{
    pthread_mutex_unlock(&((sq_db *)d->impl)->writer);
}

static void sq_close(db *d)
{
    sq_db *sd = d->impl;
    pthread_key_delete(sd->key);
    for (sq_conn *c = sd->all, *next; c; c = next) {
        next = c->next;
        if (c->refs > 0)
            log_warn("database closed while a connection is still acquired", "backend", "sqlite");
        sq_cache_clear(c);
        sqlite3_close_v2(c->h);
        free(c);
    }
    pthread_mutex_destroy(&sd->lock);
    pthread_mutex_destroy(&sd->writer);
    free(sd->path);
    free(sd);
}

/* A new connection on the list of all (closed with the database); as the group commits'
 * one when `group`. NULL on error. */
static sq_conn *sq_open_listed(db *d, bool group, err *e)
{
    sq_db *sd = d->impl;
    sq_conn *c = sq_open_conn(d, e);
    if (!c)
        return NULL;
    pthread_mutex_lock(&sd->lock);
    c->next = sd->all;
    sd->all = c;
    if (group)
        sd->group = c;
    pthread_mutex_unlock(&sd->lock);
    return c;
}

static db_conn *sq_acquire(db *d, err *e)
{
    sq_db *sd = d->impl;
    sq_conn *c = pthread_getspecific(sd->key);
    if (c) {
        c->refs++;
        return &c->base;
    }
    pthread_mutex_lock(&sd->lock);
    c = sd->idle;
    if (c)
        sd->idle = c->idle;
    pthread_mutex_unlock(&sd->lock);
    if (!c && !(c = sq_open_listed(d, false, e)))
        return NULL;
    c->idle = NULL;
    if (pthread_setspecific(sd->key, c) != 0) {
        pthread_mutex_lock(&sd->lock);
        c->idle = sd->idle;
        sd->idle = c;
        pthread_mutex_unlock(&sd->lock);
        err_set(e, F3_ENOMEM, "out of memory binding a database connection to the thread");
        return NULL;
    }
    c->refs = 1;
    return &c->base;
}

/* db_tx_group's connection: only the group's leader uses it, one leader at a time, so
 * it needs no thread of its own. */
static db_conn *sq_group_acquire(db *d, err *e)
{
    sq_db *sd = d->impl;
    pthread_mutex_lock(&sd->lock);
    sq_conn *c = sd->group;
    pthread_mutex_unlock(&sd->lock);
    if (!c && !(c = sq_open_listed(d, true, e)))
        return NULL;
    c->refs = 1;
    return &c->base;
}

static void sq_release(db_conn *bc)
{
    sq_conn *c = (sq_conn *)bc;
    if (c->refs > 0)
        c->refs--;
    if (c->refs == 0 && !sqlite3_get_autocommit(c->h)) {
        log_error("connection released with an open transaction; rolled back", "backend", "sqlite");
        sqlite3_exec(c->h, "ROLLBACK", NULL, NULL, NULL);
    }
}

static bool sq_in_tx(db_conn *bc)
{
    return !sqlite3_get_autocommit(((sq_conn *)bc)->h);
}

static int sq_exec(db_conn *bc, const char *sql, err *e)
{
    sq_conn *c = (sq_conn *)bc;
    char *msg = NULL;
    int rc = sqlite3_exec(c->h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        rc = sq_error(c->h, sqlite3_extended_errcode(c->h), msg, e);
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

/* True if only blanks and semicolons remain: db_prepare takes one statement. */
static bool sq_only_blanks(const char *p)
{
    for (; p && *p; p++)
        if (*p != ';' && *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
            return false;
    return true;
}

/* Every parameter SQLite saw must be one of our $1..$n: rejects ?, :name, @name and
 * $1::type (which SQLite would read as one parameter named "$1::type"). */
static int sq_check_params(sqlite3_stmt *st, int nparams, err *e)
{
    int count = sqlite3_bind_parameter_count(st);
    for (int i = 1; i <= count; i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        char *end = NULL;
        long v = name && name[0] == '$' ? strtol(name + 1, &end, 10) : 0;
        if (!name || name[0] != '$' || !end || *end || v < 1 || v > nparams)
            return err_set(e, F3_EINVAL,
                           "unsupported parameter '%s': use $1..$n (and CAST(x AS type), not ::)",
                           name ? name : "?");
    }
    return 0;
}

static db_stmt *sq_wrap(sq_conn *c, sqlite3_stmt *st, char *sql, uint64_t hash, err *e)
{
    sq_stmt *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, F3_ENOMEM, "out of memory preparing a statement");
        sqlite3_finalize(st);
        free(sql);
        return NULL;
    }
    s->st = st;
    s->conn = c;
    s->sql = sql;
    s->hash = hash;
    return &s->base;
}

static db_stmt *sq_prepare(db_conn *bc, const char *sql, int nparams, err *e)
{
    sq_conn *c = (sq_conn *)bc;
    uint64_t hash = sq_hash(sql);
    char *cached_sql = NULL;
    sqlite3_stmt *st = sq_cache_take(c, sql, hash, &cached_sql);
    if (st)
        return sq_wrap(c, st, cached_sql, hash, e);
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3(c->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, &tail);
    if (rc != SQLITE_OK) {
        sq_error(c->h, rc, NULL, e);
        return NULL;
    }
    if (!st) {
        err_set(e, F3_EINVAL, "db_prepare: no SQL statement in the text");
        return NULL;
    }
    if (!sq_only_blanks(tail)) {
        err_set(e, F3_EINVAL, "db_prepare takes one statement; use db_exec for several");
        goto fail;
    }
    if (sq_check_params(st, nparams, e))
        goto fail;
    /* Without a copy of the text the statement simply is not cached. */
    return sq_wrap(c, st, strdup(sql), hash, e);
fail:
    sqlite3_finalize(st);
    return NULL;
}

static int sq_bind(db_stmt *bs, int idx, const db_value *v)
{
    sq_stmt *s = (sq_stmt *)bs;
    char name[16];
    snprintf(name, sizeof name, "$%d", idx);
    int i = sqlite3_bind_parameter_index(s->st, name);
    if (i == 0)
        return 0; /* a gap in the numbering: nothing refers to this parameter */
    int rc;
    switch (v->kind) {
    case DB_VALUE_TEXT:
        rc = sqlite3_bind_text(s->st, i, v->text, -1, SQLITE_TRANSIENT);
        break;
    case DB_VALUE_INT64:
        rc = sqlite3_bind_int64(s->st, i, v->i64);
        break;
    case DB_VALUE_BOOL:
        rc = sqlite3_bind_int(s->st, i, v->b ? 1 : 0);
        break;
    default:
        rc = sqlite3_bind_null(s->st, i);
    }
    if (rc == SQLITE_OK)
        return 0;
    return rc == SQLITE_NOMEM ? F3_ENOMEM : F3_EINVAL;
}

static int sq_step(db_stmt *bs, err *e)
{
    sq_stmt *s = (sq_stmt *)bs;
    sqlite3 *h = sqlite3_db_handle(s->st);
    if (!sqlite3_stmt_busy(s->st)) {
        s->total_before = sqlite3_total_changes64(h);
        s->changes = 0;
    }
    int rc = sqlite3_step(s->st);
    if (rc == SQLITE_ROW)
        return DB_ROW;
    if (rc == SQLITE_DONE) {
        /* sqlite3_changes64 keeps the count of the last INSERT/UPDATE/DELETE, which is
         * stale after DDL; the total tells whether this statement changed anything. */
        if (!sqlite3_stmt_readonly(s->st) && sqlite3_total_changes64(h) != s->total_before)
            s->changes = sqlite3_changes64(h);
        return DB_DONE;
    }
    int out = sq_error(h, rc, NULL, e);
    sqlite3_reset(s->st);
    return out;
}

static void sq_reset(db_stmt *bs)
{
    sq_stmt *s = (sq_stmt *)bs;
    sqlite3_reset(s->st);
    s->changes = 0;
}

static void sq_finalize(db_stmt *bs)
{
    sq_stmt *s = (sq_stmt *)bs;
    if (s->sql)
        sq_cache_put(s->conn, s->st, s->sql, s->hash);
    else
        sqlite3_finalize(s->st);
    free(s);
}

static int sq_col_count(db_stmt *bs)
{
    return sqlite3_column_count(((sq_stmt *)bs)->st);
}

static const char *sq_col_name(db_stmt *bs, int col)
{
    return sqlite3_column_name(((sq_stmt *)bs)->st, col);
}

static bool sq_col_is_null(db_stmt *bs, int col)
{
    return sqlite3_column_type(((sq_stmt *)bs)->st, col) == SQLITE_NULL;
}

static const char *sq_col_text(db_stmt *bs, int col)
{
    return (const char *)sqlite3_column_text(((sq_stmt *)bs)->st, col);
}

static int64_t sq_col_int64(db_stmt *bs, int col)
{
    return sqlite3_column_int64(((sq_stmt *)bs)->st, col);
}

static int64_t sq_changes(db_stmt *bs)
{
    return ((sq_stmt *)bs)->changes;
}

const db_backend_ops db_sqlite_ops = {
    .name = "sqlite",
    .begin_sql = "BEGIN IMMEDIATE",
    .open = sq_open,
    .close = sq_close,
    .acquire = sq_acquire,
    .release = sq_release,
    .in_tx = sq_in_tx,
    .exec = sq_exec,
    .prepare = sq_prepare,
    .bind = sq_bind,
    .step = sq_step,
    .reset = sq_reset,
    .finalize = sq_finalize,
    .col_count = sq_col_count,
    .col_name = sq_col_name,
    .col_is_null = sq_col_is_null,
    .col_text = sq_col_text,
    .col_int64 = sq_col_int64,
    .changes = sq_changes,
    .fires_commit_hooks = true,
    .group_acquire = sq_group_acquire,
    .writer_enter = sq_writer_enter,
    .writer_leave = sq_writer_leave,
};
