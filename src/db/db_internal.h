/*
 * db_internal.h - what the backends (sqlite.c, postgres.c) share with db.c and migrate.c.
 *
 * db.c checks arguments and parameter numbering once, then dispatches through a
 * db_backend_ops table; a backend only translates to its library. Nothing outside
 * src/db/ includes this header.
 */
#ifndef F3_DB_DB_INTERNAL_H
#define F3_DB_DB_INTERNAL_H

#include "db/db.h"

#include <pthread.h>

/* Most parameters one statement may have (PostgreSQL's wire protocol allows 65535). */
#define DB_MAX_PARAMS 32767

typedef enum db_value_kind {
    DB_VALUE_NULL,
    DB_VALUE_TEXT,
    DB_VALUE_INT64,
    DB_VALUE_BOOL,
} db_value_kind;

/* One bound value, handed to a backend for the duration of the bind call. */
typedef struct db_value {
    db_value_kind kind;
    const char *text; /* DB_VALUE_TEXT */
    int64_t i64;      /* DB_VALUE_INT64 */
    bool b;           /* DB_VALUE_BOOL */
} db_value;

typedef struct db_backend_ops {
    const char *name;
    const char *begin_sql;
    /* target: the path (sqlite) or the URL (postgres). Sets d->impl. */
    int (*open)(db *d, const char *target, err *e);
    void (*close)(db *d);
    db_conn *(*acquire)(db *d, err *e);
    void (*release)(db_conn *c);
    /* The connection group commits run on (db_tx_group's leader, one at a time); NULL =
     * the leader's own (acquire). SQLite keeps one for them: a connection's page cache
     * survives only its own writes, so one writer connection reads far fewer pages. */
    db_conn *(*group_acquire)(db *d, err *e);
    bool (*in_tx)(db_conn *c);
    int (*exec)(db_conn *c, const char *sql, err *e);
    /* nparams: the highest $n in sql, already checked by db.c. */
    db_stmt *(*prepare)(db_conn *c, const char *sql, int nparams, err *e);
    int (*bind)(db_stmt *s, int idx, const db_value *v);
    int (*step)(db_stmt *s, err *e);
    void (*reset)(db_stmt *s);
    void (*finalize)(db_stmt *s);
    int (*col_count)(db_stmt *s);
    const char *(*col_name)(db_stmt *s, int col);
    bool (*col_is_null)(db_stmt *s, int col);
    const char *(*col_text)(db_stmt *s, int col);
    int64_t (*col_int64)(db_stmt *s, int col);
    int64_t (*changes)(db_stmt *s);
    /* The backend calls db_fire_commit itself (SQLite's WAL hook); otherwise db.c does. */
    bool fires_commit_hooks;
    /* One writer at a time in this process (SQLite): taken before BEGIN, released when
     * the transaction ends; NULL where the database locks rows instead. */
    void (*writer_enter)(db *d);
    void (*writer_leave)(db *d);
    const char *skip_locked_sql;
    /* NOTIFY and LISTEN; NULL where the backend has no notifications. */
    int (*notify)(db_conn *c, const char *channel, err *e);
    int (*listener_open)(db *d, const char *channel, db_listener **out, err *e);
    int (*listener_wait)(db_listener *l, int timeout_ms, err *e);
    void (*listener_interrupt)(db_listener *l);
    void (*listener_close)(db_listener *l);
} db_backend_ops;

extern const db_backend_ops db_sqlite_ops;
extern const db_backend_ops db_postgres_ops;

/* One caller of db_tx_group, on its own stack until `done`. */
typedef struct db_group_req {
    db_tx_fn fn;
    void *ctx;
    bool single; /* fn runs one statement: alone, it may be autocommitted */
    int rc;
    bool done;
    pthread_cond_t cv; /* its caller waits here: for done, or to lead the next batch */
    err e;
    struct db_group_req *next;
} db_group_req;

typedef struct db_commit_hook {
    void (*fn)(void *ctx);
    void *ctx;
} db_commit_hook;

struct db {
    const db_backend_ops *ops;
    db_opts opts; /* defaults filled in */
    char *url_redacted;
    void *impl; /* the backend's state */
    pthread_mutex_t hooks_lock;
    db_commit_hook hooks[DB_COMMIT_HOOKS_MAX];
    int nhooks;
    /* db_tx_group: callers waiting for a shared transaction, and whether one leads now. */
    pthread_mutex_t group_lock;
    db_group_req *group_head, *group_tail;
    bool group_leading;
};

/* Backends embed these as their first member. */
struct db_conn {
    db *owner;
    /* A statement failed inside the open transaction: COMMIT must not go through.
     * (PostgreSQL enforces this itself; SQLite would commit the rest.) */
    int tx_failed;
    bool writer_held; /* this connection's transaction holds the writer lock */
};

/* Backends embed this as the first member of their listener. */
struct db_listener {
    db *owner;
};

struct db_stmt {
    db_conn *conn;
    int nparams;          /* highest $n in the SQL */
    unsigned char *bound; /* bound[n] for n in 1..nparams */
    int bind_rc;          /* first bind error, returned by db_step */
    char bind_msg[160];
    bool started; /* executed since the last prepare/reset */
    bool has_row; /* a row is current */
    bool done;    /* DB_DONE was returned: stepping again must not run it again */
};

/* The highest $n parameter in sql (0 if none), skipping string literals, quoted
 * identifiers, comments and dollar-quoted bodies; -1 if a $n is 0 or too large. */
int db_sql_param_count(const char *sql);

/* Runs the commit hooks (db_on_commit) on the calling thread. */
void db_fire_commit(db *d);

/* True if name is a lower-case SQL identifier usable as a LISTEN/NOTIFY channel. */
bool db_channel_valid(const char *name);

/* Copies msg into e with newlines and tabs turned into spaces and trailing blanks cut:
 * libpq and SQLite messages are multi-line, our messages are one line. */
int db_err_flat(err *e, int code, const char *prefix, const char *msg);

#endif
