/*
 * postgres.c - the PostgreSQL backend of the db interface (libpq; see db.h, db_internal.h).
 *
 * A bounded pool of connections opened on demand; db_acquire waits on a condition
 * variable up to acquire_timeout_ms. A connection found dead (the server closed it)
 * is reset before it is handed out. Statements are prepared once per connection and
 * kept in a small LRU cache keyed by SQL text and parameter types; values travel in
 * text format. It must never log or report parameter values or the URL's password.
 */
#include "db/db_internal.h"

#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PG_CACHE_MAX       128
#define PG_CONNECT_TIMEOUT "10"
/* Type OIDs from the server's pg_type catalog (stable since PostgreSQL 7). */
#define PG_OID_BOOL 16
#define PG_OID_INT8 20

typedef struct pg_cached {
    char *key;     /* parameter type signature, '\x1f', SQL text */
    char name[24]; /* server-side prepared statement name */
    int nparams;
    uint64_t used; /* LRU tick */
} pg_cached;

typedef struct pg_conn {
    db_conn base;
    PGconn *pg;  /* NULL until first use or after a failed reset */
    bool in_use; /* handed out by acquire */
    pg_cached cache[PG_CACHE_MAX];
    int ncache;
    uint64_t tick;
    uint64_t next_name;
} pg_conn;

typedef struct pg_db {
    char *url; /* the full URL, kept only to open connections */
    int size;
    pg_conn *conns;
    pthread_mutex_t lock;
    pthread_cond_t freed;
} pg_db;

typedef struct pg_stmt {
    db_stmt base;
    char *sql;
    int n;
    char **vals;
    char *types; /* per parameter: 't' text, 'i' int8, 'b' bool, 'n' null */
    PGresult *res;
    int row;
    int nrows;
    int64_t changes;
} pg_stmt;

static void pg_ignore_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* ---- errors ---------------------------------------------------------------------------- */

static const struct {
    const char *sqlstate;
    int code;
} pg_states[] = {
    {"23505", F3_ECONFLICT}, /* unique_violation */
    {"23503", F3_ECONFLICT}, /* foreign_key_violation */
    {"23P01", F3_ECONFLICT}, /* exclusion_violation */
    {"23514", F3_EINVAL},    /* check_violation */
    {"23502", F3_EINVAL},    /* not_null_violation */
    {"40001", F3_EBUSY},     /* serialization_failure */
    {"40P01", F3_EBUSY},     /* deadlock_detected */
    {"55P03", F3_EBUSY},     /* lock_not_available */
};

static int pg_error(pg_conn *c, const PGresult *r, err *e)
{
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK)
        return db_err_flat(e, F3_EIO, "database connection lost: ",
                           c->pg ? PQerrorMessage(c->pg) : "not connected");
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg)
        msg = PQerrorMessage(c->pg);
    int code = F3_EIO;
    for (size_t i = 0; state && i < sizeof pg_states / sizeof pg_states[0]; i++)
        if (strcmp(state, pg_states[i].sqlstate) == 0)
            code = pg_states[i].code;
    /* Only the primary message: DETAIL would quote the offending values. */
    char prefix[32] = "";
    if (state)
        snprintf(prefix, sizeof prefix, "[%s] ", state);
    return db_err_flat(e, code, prefix, msg);
}

/* ---- connections ----------------------------------------------------------------------- */

static void pg_cache_clear(pg_conn *c)
{
    for (int i = 0; i < c->ncache; i++)
        free(c->cache[i].key);
    c->ncache = 0;
}

static PGconn *pg_connect(db *d, err *e)
{
    pg_db *pd = d->impl;
    /* URL values override the ones listed before "dbname". */
    const char *keys[] = {"connect_timeout", "client_encoding", "application_name", "dbname", NULL};
    const char *vals[] = {PG_CONNECT_TIMEOUT, "UTF8", "f3connect", pd->url, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg) {
        err_set(e, F3_ENOMEM, "out of memory connecting to '%s'", d->url_redacted);
        return NULL;
    }
    if (PQstatus(pg) != CONNECTION_OK) {
        char prefix[ERR_MSG_MAX];
        snprintf(prefix, sizeof prefix, "database URL '%.200s': cannot connect: ", d->url_redacted);
        db_err_flat(e, F3_EIO, prefix, PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, pg_ignore_notice, NULL);
    return pg;
}

/* False if the server has closed the connection (terminated backend, restart). */
static bool pg_alive(PGconn *pg)
{
    if (PQstatus(pg) != CONNECTION_OK)
        return false;
    struct pollfd p = {.fd = PQsocket(pg), .events = POLLIN};
    if (p.fd < 0)
        return false;
    /* A closing server sends its error then EOF, which may take more than one read. */
    for (int i = 0; i < 4 && poll(&p, 1, 0) > 0; i++) {
        if (!PQconsumeInput(pg))
            return false;
        PGnotify *n;
        while ((n = PQnotifies(pg)))
            PQfreemem(n);
    }
    return PQstatus(pg) == CONNECTION_OK;
}

/* Makes c->pg a working connection: opens it, or resets it when found dead. */
static int pg_ready(db *d, pg_conn *c, err *e)
{
    if (c->pg && pg_alive(c->pg))
        return 0;
    if (c->pg) {
        log_warn("database connection lost; reconnecting", "url", d->url_redacted);
        pg_cache_clear(c);
        PQreset(c->pg);
        if (PQstatus(c->pg) == CONNECTION_OK) {
            PQsetNoticeProcessor(c->pg, pg_ignore_notice, NULL);
            return 0;
        }
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->pg = pg_connect(d, e);
    return c->pg ? 0 : (e ? e->code : F3_EIO);
}

static int pg_open(db *d, const char *url, err *e)
{
    if (!PQisthreadsafe())
        return err_set(e, F3_EIO, "libpq was built without thread safety");
    char *why = NULL;
    PQconninfoOption *parsed = PQconninfoParse(url, &why);
    if (!parsed) {
        char prefix[ERR_MSG_MAX];
        snprintf(prefix, sizeof prefix, "database URL '%.200s': ", d->url_redacted);
        int rc = db_err_flat(e, F3_EINVAL, prefix, why ? why : "cannot be parsed");
        PQfreemem(why);
        return rc;
    }
    PQconninfoFree(parsed);
    pg_db *pd = calloc(1, sizeof *pd);
    if (!pd)
        return err_set(e, F3_ENOMEM, "out of memory opening the database");
    pd->size = d->opts.pool_size;
    pd->url = strdup(url);
    pd->conns = calloc((size_t)pd->size, sizeof *pd->conns);
    if (!pd->url || !pd->conns) {
        free(pd->url);
        free(pd->conns);
        free(pd);
        return err_set(e, F3_ENOMEM, "out of memory opening the database");
    }
    clock_cond_init(&pd->freed);
    pthread_mutex_init(&pd->lock, NULL);
    for (int i = 0; i < pd->size; i++)
        pd->conns[i].base.owner = d;
    d->impl = pd;
    /* Connect once now so that a wrong URL or a server that is down fails db_open. */
    pd->conns[0].pg = pg_connect(d, e);
    if (!pd->conns[0].pg) {
        int rc = e ? e->code : F3_EIO;
        pthread_cond_destroy(&pd->freed);
        pthread_mutex_destroy(&pd->lock);
        free(pd->conns);
        free(pd->url);
        free(pd);
        d->impl = NULL;
        return rc;
    }
    return 0;
}

static void pg_close(db *d)
{
    pg_db *pd = d->impl;
    for (int i = 0; i < pd->size; i++) {
        pg_conn *c = &pd->conns[i];
        if (c->in_use)
            log_warn("database closed while a connection is still acquired", "backend", "postgres");
        pg_cache_clear(c);
        if (c->pg)
            PQfinish(c->pg);
    }
    pthread_cond_destroy(&pd->freed);
    pthread_mutex_destroy(&pd->lock);
    free(pd->conns);
    free(pd->url);
    free(pd);
}

/* A free slot, preferring one with an open connection; NULL if all are in use. */
static pg_conn *pg_take_slot(pg_db *pd)
{
    pg_conn *unopened = NULL;
    for (int i = 0; i < pd->size; i++) {
        pg_conn *c = &pd->conns[i];
        if (c->in_use)
            continue;
        if (c->pg)
            return c;
        if (!unopened)
            unopened = c;
    }
    return unopened;
}

static db_conn *pg_acquire(db *d, err *e)
{
    pg_db *pd = d->impl;
    struct timespec deadline = clock_mono_after(d->opts.acquire_timeout_ms);
    pthread_mutex_lock(&pd->lock);
    pg_conn *c;
    while (!(c = pg_take_slot(pd))) {
        int rc = pthread_cond_timedwait(&pd->freed, &pd->lock, &deadline);
        if (rc == ETIMEDOUT && !(c = pg_take_slot(pd))) {
            pthread_mutex_unlock(&pd->lock);
            err_set(e, F3_EBUSY,
                    "database pool exhausted: all %d connections stayed in use for %d ms", pd->size,
                    d->opts.acquire_timeout_ms);
            return NULL;
        }
        if (c)
            break;
    }
    c->in_use = true;
    pthread_mutex_unlock(&pd->lock);
    if (pg_ready(d, c, e) != 0) {
        pthread_mutex_lock(&pd->lock);
        c->in_use = false;
        pthread_cond_signal(&pd->freed);
        pthread_mutex_unlock(&pd->lock);
        return NULL;
    }
    return &c->base;
}

static void pg_release(db_conn *bc)
{
    pg_conn *c = (pg_conn *)bc;
    pg_db *pd = bc->owner->impl;
    if (c->pg && PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        log_error("connection released with an open transaction; rolled back", "backend",
                  "postgres");
        PQclear(PQexec(c->pg, "ROLLBACK"));
    }
    if (c->pg && PQstatus(c->pg) != CONNECTION_OK) {
        pg_cache_clear(c);
        PQfinish(c->pg);
        c->pg = NULL;
    }
    pthread_mutex_lock(&pd->lock);
    c->in_use = false;
    pthread_cond_signal(&pd->freed);
    pthread_mutex_unlock(&pd->lock);
}

static bool pg_in_tx(db_conn *bc)
{
    pg_conn *c = (pg_conn *)bc;
    if (!c->pg)
        return false;
    PGTransactionStatusType t = PQtransactionStatus(c->pg);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

static int pg_exec(db_conn *bc, const char *sql, err *e)
{
    pg_conn *c = (pg_conn *)bc;
    if (!c->pg)
        return err_set(e, F3_EIO, "database connection lost");
    PGresult *r = PQexec(c->pg, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
        rc = pg_error(c, r, e);
    PQclear(r);
    return rc;
}

/* ---- statements ------------------------------------------------------------------------ */

static db_stmt *pg_prepare(db_conn *bc, const char *sql, int nparams, err *e)
{
    (void)bc;
    pg_stmt *s = calloc(1, sizeof *s);
    if (!s)
        goto nomem;
    s->n = nparams;
    s->sql = strdup(sql);
    s->vals = calloc((size_t)nparams + 1, sizeof *s->vals);
    s->types = calloc((size_t)nparams + 2, 1);
    if (!s->sql || !s->vals || !s->types)
        goto nomem;
    memset(s->types, 'n', (size_t)nparams);
    return &s->base;
nomem:
    if (s) {
        free(s->sql);
        free(s->vals);
        free(s->types);
        free(s);
    }
    err_set(e, F3_ENOMEM, "out of memory preparing a statement");
    return NULL;
}

static int pg_bind(db_stmt *bs, int idx, const db_value *v)
{
    pg_stmt *s = (pg_stmt *)bs;
    char num[32];
    const char *text = NULL;
    char type = 'n';
    switch (v->kind) {
    case DB_VALUE_TEXT:
        text = v->text;
        type = 't';
        break;
    case DB_VALUE_INT64:
        snprintf(num, sizeof num, "%" PRId64, v->i64);
        text = num;
        type = 'i';
        break;
    case DB_VALUE_BOOL:
        text = v->b ? "t" : "f";
        type = 'b';
        break;
    default:
        break;
    }
    char *copy = NULL;
    if (text && !(copy = strdup(text)))
        return F3_ENOMEM;
    free(s->vals[idx - 1]);
    s->vals[idx - 1] = copy;
    s->types[idx - 1] = type;
    return 0;
}

static pg_cached *pg_cache_find(pg_conn *c, const char *key)
{
    for (int i = 0; i < c->ncache; i++)
        if (strcmp(c->cache[i].key, key) == 0) {
            c->cache[i].used = ++c->tick;
            return &c->cache[i];
        }
    return NULL;
}

/* Forgets a cached statement, deallocating it on the server when the connection can. */
static void pg_cache_drop(pg_conn *c, pg_cached *p)
{
    if (PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_INERROR) {
        char sql[48];
        snprintf(sql, sizeof sql, "DEALLOCATE %s", p->name);
        PQclear(PQexec(c->pg, sql));
    }
    free(p->key);
    *p = c->cache[--c->ncache];
}

/* Prepares the statement on the server under a fresh name and remembers it. */
static pg_cached *pg_cache_add(pg_conn *c, pg_stmt *s, char *key, err *e)
{
    if (c->ncache == PG_CACHE_MAX) {
        pg_cached *lru = &c->cache[0];
        for (int i = 1; i < c->ncache; i++)
            if (c->cache[i].used < lru->used)
                lru = &c->cache[i];
        pg_cache_drop(c, lru);
    }
    Oid *oids = calloc((size_t)s->n + 1, sizeof *oids);
    if (!oids) {
        free(key);
        err_set(e, F3_ENOMEM, "out of memory preparing a statement");
        return NULL;
    }
    /* Text and NULL parameters stay untyped so the server infers them from context. */
    for (int i = 0; i < s->n; i++)
        oids[i] = s->types[i] == 'i' ? PG_OID_INT8 : s->types[i] == 'b' ? PG_OID_BOOL : 0;
    pg_cached *p = &c->cache[c->ncache];
    snprintf(p->name, sizeof p->name, "f3s_%" PRIu64, ++c->next_name);
    PGresult *r = PQprepare(c->pg, p->name, s->sql, s->n, oids);
    free(oids);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        pg_error(c, r, e);
        PQclear(r);
        free(key);
        return NULL;
    }
    PQclear(r);
    p->key = key;
    p->nparams = s->n;
    p->used = ++c->tick;
    c->ncache++;
    return p;
}

static char *pg_cache_key(const pg_stmt *s)
{
    buf b;
    buf_init(&b, 0);
    if (buf_append(&b, s->types, (size_t)s->n) || buf_putc(&b, '\x1f') || buf_puts(&b, s->sql)) {
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b);
}

/* A prepared statement whose plan was invalidated by a schema change, or one the
 * server no longer has (DISCARD ALL): prepare again. */
static bool pg_stale_statement(const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!state)
        return false;
    return strcmp(state, "26000") == 0 ||
           (strcmp(state, "0A000") == 0 && msg && strstr(msg, "cached plan"));
}

static int64_t pg_affected(const PGresult *r)
{
    static const char *const writes[] = {"INSERT", "UPDATE", "DELETE", "MERGE"};
    const char *status = PQcmdStatus((PGresult *)r);
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        if (strncmp(status, writes[i], strlen(writes[i])) == 0)
            return strtoll(PQcmdTuples((PGresult *)r), NULL, 10);
    return 0;
}

static int pg_run(pg_stmt *s, err *e)
{
    pg_conn *c = (pg_conn *)s->base.conn;
    if (!c->pg)
        return err_set(e, F3_EIO, "database connection lost");
    char *key = pg_cache_key(s);
    if (!key)
        return err_set(e, F3_ENOMEM, "out of memory running a statement");
    for (int attempt = 0;; attempt++) {
        pg_cached *p = pg_cache_find(c, key);
        if (p) {
            free(key);
            key = NULL;
        } else {
            char *owned = key;
            key = NULL;
            if (!(p = pg_cache_add(c, s, owned, e)))
                return e ? e->code : F3_EIO;
        }
        PGresult *r =
            PQexecPrepared(c->pg, p->name, s->n, (const char *const *)s->vals, NULL, NULL, 0);
        ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            s->res = r;
            s->nrows = PQntuples(r);
            s->row = -1;
            s->changes = pg_affected(r);
            return 0;
        }
        if (pg_stale_statement(r) && PQstatus(c->pg) == CONNECTION_OK) {
            bool idle = PQtransactionStatus(c->pg) == PQTRANS_IDLE;
            if (idle && attempt == 0 && (key = strdup(p->key))) {
                pg_cache_drop(c, p);
                PQclear(r);
                continue;
            }
            pg_cache_drop(c, p);
            PQclear(r);
            /* Inside a transaction the failure aborted it: the caller retries it whole. */
            return err_set(e, F3_EBUSY, "statement invalidated by a schema change; retry");
        }
        int rc = pg_error(c, r, e);
        PQclear(r);
        return rc;
    }
}

static int pg_step(db_stmt *bs, err *e)
{
    pg_stmt *s = (pg_stmt *)bs;
    if (!s->res) {
        int rc = pg_run(s, e);
        if (rc)
            return rc;
    }
    if (s->row < s->nrows)
        s->row++;
    return s->row < s->nrows ? DB_ROW : DB_DONE;
}

static void pg_reset(db_stmt *bs)
{
    pg_stmt *s = (pg_stmt *)bs;
    PQclear(s->res);
    s->res = NULL;
    s->row = -1;
    s->nrows = 0;
    s->changes = 0;
}

static void pg_finalize(db_stmt *bs)
{
    pg_stmt *s = (pg_stmt *)bs;
    PQclear(s->res);
    for (int i = 0; i < s->n; i++)
        free(s->vals[i]);
    free(s->vals);
    free(s->types);
    free(s->sql);
    free(s);
}

static int pg_col_count(db_stmt *bs)
{
    pg_stmt *s = (pg_stmt *)bs;
    return s->res ? PQnfields(s->res) : 0;
}

static const char *pg_col_name(db_stmt *bs, int col)
{
    pg_stmt *s = (pg_stmt *)bs;
    return s->res ? PQfname(s->res, col) : NULL;
}

static bool pg_col_is_null(db_stmt *bs, int col)
{
    pg_stmt *s = (pg_stmt *)bs;
    return PQgetisnull(s->res, s->row, col) != 0;
}

static const char *pg_col_text(db_stmt *bs, int col)
{
    pg_stmt *s = (pg_stmt *)bs;
    return PQgetvalue(s->res, s->row, col);
}

static int64_t pg_col_int64(db_stmt *bs, int col)
{
    pg_stmt *s = (pg_stmt *)bs;
    const char *v = PQgetvalue(s->res, s->row, col);
    if (strcmp(v, "t") == 0)
        return 1;
    return strtoll(v, NULL, 10);
}

static int64_t pg_changes(db_stmt *bs)
{
    return ((pg_stmt *)bs)->changes;
}

/* ---- LISTEN / NOTIFY -------------------------------------------------------------------- */

static int pg_notify(db_conn *bc, const char *channel, err *e)
{
    char sql[96]; /* channel checked by db.c: an identifier of at most 63 characters */
    snprintf(sql, sizeof sql, "NOTIFY %s", channel);
    return pg_exec(bc, sql, e);
}

typedef struct pg_listener {
    db_listener base;
    PGconn *pg; /* NULL after a loss until reconnected */
    char channel[64];
    int wake[2]; /* self-pipe written by db_listener_interrupt */
} pg_listener;

/* Opens the listener's own connection and subscribes. */
static int pg_listen_connect(pg_listener *l, err *e)
{
    if (!(l->pg = pg_connect(l->base.owner, e)))
        return e ? e->code : F3_EIO;
    char sql[96];
    snprintf(sql, sizeof sql, "LISTEN %s", l->channel);
    PGresult *r = PQexec(l->pg, sql);
    int rc = 0;
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        pg_conn tmp = {.pg = l->pg};
        rc = pg_error(&tmp, r, e);
        PQfinish(l->pg);
        l->pg = NULL;
    }
    PQclear(r);
    return rc;
}

static void pg_listener_close(db_listener *bl)
{
    pg_listener *l = (pg_listener *)bl;
    if (l->pg)
        PQfinish(l->pg);
    close(l->wake[0]);
    close(l->wake[1]);
    free(l);
}

static int pg_listener_open(db *d, const char *channel, db_listener **out, err *e)
{
    pg_listener *l = calloc(1, sizeof *l);
    if (!l)
        return err_set(e, F3_ENOMEM, "out of memory opening a listener");
    l->base.owner = d;
    snprintf(l->channel, sizeof l->channel, "%s", channel);
    if (pipe2(l->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        free(l);
        return err_set(e, F3_EIO, "cannot create the listener's wake pipe: %s", strerror(errno));
    }
    int rc = pg_listen_connect(l, e);
    if (rc) {
        pg_listener_close(&l->base);
        return rc;
    }
    *out = &l->base;
    return 0;
}

/* Consumes the notifications already read; true if there was one. */
static bool pg_listener_drain(pg_listener *l)
{
    bool any = false;
    PGnotify *n;
    while ((n = PQnotifies(l->pg))) {
        any = true;
        PQfreemem(n);
    }
    return any;
}

/* After a loss: a fresh connection (1, as notifications may have been missed) or an error. */
static int pg_listener_reconnect(pg_listener *l, err *e)
{
    if (l->pg) {
        PQfinish(l->pg);
        l->pg = NULL;
    }
    log_warn("notification listener lost its connection; reconnecting", "url",
             l->base.owner->url_redacted);
    int rc = pg_listen_connect(l, e);
    return rc ? rc : 1;
}

static int pg_listener_wait(db_listener *bl, int timeout_ms, err *e)
{
    pg_listener *l = (pg_listener *)bl;
    if (!l->pg || PQstatus(l->pg) != CONNECTION_OK)
        return pg_listener_reconnect(l, e);
    int64_t deadline = clock_mono_ms() + timeout_ms;
    for (;;) {
        if (pg_listener_drain(l))
            return 1;
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p[2] = {{.fd = PQsocket(l->pg), .events = POLLIN},
                              {.fd = l->wake[0], .events = POLLIN}};
        int n = poll(p, 2, (int)left);
        if (n < 0 && errno != EINTR)
            return err_set(e, F3_EIO, "listener poll failed: %s", strerror(errno));
        if (n > 0 && p[1].revents) {
            char tmp[64];
            while (read(l->wake[0], tmp, sizeof tmp) > 0)
                ;
            return 0;
        }
        if (n > 0 && p[0].revents && (!PQconsumeInput(l->pg) || PQstatus(l->pg) != CONNECTION_OK))
            return pg_listener_reconnect(l, e);
    }
}

static void pg_listener_interrupt(db_listener *bl)
{
    pg_listener *l = (pg_listener *)bl;
    ssize_t w = write(l->wake[1], "x", 1);
    (void)w; /* a full pipe already holds a wakeup */
}

const db_backend_ops db_postgres_ops = {
    .name = "postgres",
    .begin_sql = "BEGIN",
    .open = pg_open,
    .close = pg_close,
    .acquire = pg_acquire,
    .release = pg_release,
    .in_tx = pg_in_tx,
    .exec = pg_exec,
    .prepare = pg_prepare,
    .bind = pg_bind,
    .step = pg_step,
    .reset = pg_reset,
    .finalize = pg_finalize,
    .col_count = pg_col_count,
    .col_name = pg_col_name,
    .col_is_null = pg_col_is_null,
    .col_text = pg_col_text,
    .col_int64 = pg_col_int64,
    .changes = pg_changes,
    .skip_locked_sql = " FOR UPDATE SKIP LOCKED",
    .notify = pg_notify,
    .listener_open = pg_listener_open,
    .listener_wait = pg_listener_wait,
    .listener_interrupt = pg_listener_interrupt,
    .listener_close = pg_listener_close,
};
