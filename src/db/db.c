/*
 * db.c - the backend-neutral half of the SQL interface (see db.h).
 *
 * Parses the URL, picks the backend, checks arguments and $n parameter numbering,
 * keeps the bind/step bookkeeping, and runs the transaction retry loop. It must not
 * know anything about SQLite or libpq: that is sqlite.c and postgres.c.
 */
#include "db/db_internal.h"

#include "core/clock.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DB_DEFAULT_POOL_SIZE       10
#define DB_DEFAULT_BUSY_TIMEOUT_MS 5000
#define DB_DEFAULT_ACQUIRE_MS      5000
#define DB_URL_MAX                 4096
#define DB_MAX_POOL_SIZE           1000

static const struct {
    const char *prefix;
    const db_backend_ops *ops;
    bool keep_prefix; /* libpq wants the whole URL; SQLite only the path */
} db_schemes[] = {
    {"sqlite:", &db_sqlite_ops, false},
    {"postgres://", &db_postgres_ops, true},
    {"postgresql://", &db_postgres_ops, true},
};

int db_err_flat(err *e, int code, const char *prefix, const char *msg)
{
    if (!e)
        return code;
    char flat[ERR_MSG_MAX];
    size_t n = 0;
    for (const char *p = msg ? msg : "unknown error"; *p && n < sizeof flat - 1; p++)
        flat[n++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
    while (n > 0 && flat[n - 1] == ' ')
        n--;
    flat[n] = '\0';
    return err_set(e, code, "%s%s", prefix ? prefix : "", flat);
}

/* The URL with the password of its user-info part, and any password=... query value,
 * replaced by ***. */
static char *db_redact_url(const char *url)
{
    buf b;
    buf_init(&b, DB_URL_MAX * 2);
    const char *scheme_end = strstr(url, "://");
    const char *p = url;
    if (scheme_end) {
        const char *auth = scheme_end + 3;
        size_t auth_len = strcspn(auth, "/?#");
        const char *at = NULL;
        for (size_t i = 0; i < auth_len; i++)
            if (auth[i] == '@')
                at = auth + i;
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon) {
            buf_append(&b, url, (size_t)(colon + 1 - url));
            buf_puts(&b, "***");
            p = at;
        }
    }
    while (*p) {
        const char *hit = strstr(p, "password=");
        if (!hit) {
            buf_puts(&b, p);
            break;
        }
        buf_append(&b, p, (size_t)(hit - p) + strlen("password="));
        buf_puts(&b, "***");
        p = hit + strlen("password=");
        p += strcspn(p, "&# ");
    }
    return buf_detach(&b);
}

int db_open(const char *url, const db_opts *o, db **out, err *e)
{
    *out = NULL;
    if (!url || !*url)
        return err_set(e, F3_EINVAL, "database URL is empty");
    if (strlen(url) > DB_URL_MAX)
        return err_set(e, F3_EINVAL, "database URL is longer than %d bytes", DB_URL_MAX);
    if (o && (o->pool_size < 0 || o->pool_size > DB_MAX_POOL_SIZE))
        return err_set(e, F3_EINVAL, "database pool size %d is out of range (1..%d)", o->pool_size,
                       DB_MAX_POOL_SIZE);
    const db_backend_ops *ops = NULL;
    const char *target = NULL;
    for (size_t i = 0; i < sizeof db_schemes / sizeof db_schemes[0]; i++) {
        size_t n = strlen(db_schemes[i].prefix);
        if (strncmp(url, db_schemes[i].prefix, n) == 0) {
            ops = db_schemes[i].ops;
            target = db_schemes[i].keep_prefix ? url : url + n;
            break;
        }
    }
    int rc = 0;
    db *d = calloc(1, sizeof *d);
    if (!d)
        return err_set(e, F3_ENOMEM, "out of memory opening the database");
    pthread_mutex_init(&d->hooks_lock, NULL);
    pthread_mutex_init(&d->group_lock, NULL);
    d->url_redacted = db_redact_url(url);
    if (!d->url_redacted) {
        rc = err_set(e, F3_ENOMEM, "out of memory opening the database");
        goto out;
    }
    if (!ops) {
        rc = err_set(e, F3_EINVAL,
                     "database URL '%s': unknown scheme (use sqlite:PATH or postgres://...)",
                     d->url_redacted);
        goto out;
    }
    d->ops = ops;
    d->opts.pool_size = o && o->pool_size > 0 ? o->pool_size : DB_DEFAULT_POOL_SIZE;
    d->opts.busy_timeout_ms =
        o && o->busy_timeout_ms > 0 ? o->busy_timeout_ms : DB_DEFAULT_BUSY_TIMEOUT_MS;
    d->opts.acquire_timeout_ms =
        o && o->acquire_timeout_ms > 0 ? o->acquire_timeout_ms : DB_DEFAULT_ACQUIRE_MS;
    rc = ops->open(d, target, e);
out:
    if (rc) {
        pthread_mutex_destroy(&d->hooks_lock);
        pthread_mutex_destroy(&d->group_lock);
        free(d->url_redacted);
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void db_close(db *d)
{
    if (!d)
        return;
    d->ops->close(d);
    pthread_mutex_destroy(&d->hooks_lock);
    pthread_mutex_destroy(&d->group_lock);
    free(d->url_redacted);
    free(d);
}

const char *db_backend(const db *d)
{
    return d->ops->name;
}

const char *db_url_redacted(const db *d)
{
    return d->url_redacted;
}

int db_ping(db *d, err *e)
{
    db_conn *c = db_acquire(d, e);
    if (!c)
        return e ? e->code : F3_EIO;
    int rc = db_exec(c, "SELECT 1", e);
    db_release(c);
    return rc;
}

db_conn *db_acquire(db *d, err *e)
{
    return d->ops->acquire(d, e);
}

/* Releases the writer lock once the connection's transaction is over. */
static void db_writer_settle(db_conn *c)
{
    if (c->writer_held && !db_in_transaction(c)) {
        c->writer_held = false;
        c->owner->ops->writer_leave(c->owner);
    }
}

void db_release(db_conn *c)
{
    if (!c)
        return;
    c->owner->ops->release(c);
    /* Only SQLite holds a writer lock, and its connection stays with this thread, so
     * looking at it after the release is safe. */
    if (c->writer_held)
        db_writer_settle(c);
}

db *db_conn_db(const db_conn *c)
{
    return c->owner;
}

/* ---- transactions ---------------------------------------------------------------------- */

bool db_in_transaction(db_conn *c)
{
    return c->owner->ops->in_tx(c);
}

/* Remembers a failure inside a transaction so that db_commit refuses it on both backends. */
static int db_note(db_conn *c, int rc)
{
    if (rc < 0 && !c->tx_failed && c->owner->ops->in_tx(c))
        c->tx_failed = rc;
    return rc;
}

int db_begin(db_conn *c, err *e)
{
    if (db_in_transaction(c))
        return err_set(e, F3_EINVAL, "db_begin: a transaction is already open on this connection");
    const db_backend_ops *ops = c->owner->ops;
    db_writer_settle(c); /* SQLite may have ended the last transaction by itself */
    if (ops->writer_enter) {
        ops->writer_enter(c->owner);
        c->writer_held = true;
    }
    int rc = ops->exec(c, ops->begin_sql, e);
    c->tx_failed = 0;
    db_writer_settle(c);
    return rc;
}

int db_commit(db_conn *c, err *e)
{
    if (!db_in_transaction(c))
        return err_set(e, F3_EINVAL, "db_commit: no transaction is open");
    if (c->tx_failed) {
        int code = c->tx_failed;
        db_rollback(c, NULL);
        return err_set(e, code, "transaction rolled back: a statement in it failed (%s)",
                       err_name(code));
    }
    int rc = db_note(c, c->owner->ops->exec(c, "COMMIT", e));
    db_writer_settle(c); /* a COMMIT refused as busy leaves the transaction open */
    if (rc == 0 && !c->owner->ops->fires_commit_hooks)
        db_fire_commit(c->owner);
    return rc;
}

int db_rollback(db_conn *c, err *e)
{
    c->tx_failed = 0;
    if (!db_in_transaction(c)) {
        db_writer_settle(c);
        return 0;
    }
    int rc = c->owner->ops->exec(c, "ROLLBACK", e);
    db_writer_settle(c);
    return rc;
}

/* Sleeps 2^attempt ms times a random factor in [1, 2): spreads retrying writers apart.
 * The jitter needs no cryptographic quality, only differing per thread. */
static void db_tx_backoff(int attempt)
{
    static _Thread_local unsigned int seed;
    if (!seed)
        seed = (unsigned int)clock_mono_us() ^ (unsigned int)(uintptr_t)&seed;
    long ms = 2L << (attempt < 8 ? attempt : 8);
    ms += (long)(rand_r(&seed) % ms);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int db_tx(db_conn *c, db_tx_fn fn, void *ctx, err *e)
{
    int rc = 0;
    for (int attempt = 0; attempt < DB_TX_ATTEMPTS; attempt++) {
        if (attempt > 0)
            db_tx_backoff(attempt);
        rc = db_begin(c, e);
        if (rc == 0)
            rc = fn(c, ctx, e);
        if (rc == 0)
            rc = db_commit(c, e);
        if (rc == 0)
            return 0;
        err ignored;
        db_rollback(c, &ignored);
        if (rc != F3_EBUSY)
            return rc;
        log_debug("transaction busy, retrying", "backend", db_backend(c->owner));
    }
    if (e)
        return db_err_flat(e, rc, "transaction still busy after retries: ", e->msg);
    return rc;
}

/* ---- group commit ---------------------------------------------------------------------- */

typedef struct db_group_batch {
    db_group_req **reqs;
    size_t n;
} db_group_batch;

/* The shared transaction's body: every queued fn in turn; the first failure fails it. */
static int db_group_body(db_conn *c, void *ctx, err *e)
{
    db_group_batch *b = ctx;
    for (size_t i = 0; i < b->n; i++) {
        int rc = b->reqs[i]->fn(c, b->reqs[i]->ctx, e);
        if (rc)
            return rc;
    }
    return 0;
}

/* Runs one batch on the leader's connection and sets every request's outcome. */
static void db_group_run(db *d, db_group_req **reqs, size_t n)
{
    err e;
    err_clear(&e);
    db_conn *c = d->ops->group_acquire ? d->ops->group_acquire(d, &e) : db_acquire(d, &e);
    if (!c) {
        int rc = db_err_code(&e);
        for (size_t i = 0; i < n; i++) {
            reqs[i]->rc = rc;
            reqs[i]->e = e;
        }
        return;
    }
    if (n == 1 && reqs[0]->single && !d->ops->writer_enter) {
        reqs[0]->rc = reqs[0]->fn(c, reqs[0]->ctx, &reqs[0]->e);
        db_release(c);
        return;
    }
    db_group_batch b = {reqs, n};
    int rc = db_tx(c, db_group_body, &b, &e);
    if (rc == 0 || n == 1) {
        for (size_t i = 0; i < n; i++) {
            reqs[i]->rc = rc;
            reqs[i]->e = e;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            err_clear(&reqs[i]->e);
            reqs[i]->rc = db_tx(c, reqs[i]->fn, reqs[i]->ctx, &reqs[i]->e);
        }
    }
    db_release(c);
}

static int db_group_join(db *d, db_tx_fn fn, void *ctx, bool single, err *e);

int db_tx_group(db *d, db_tx_fn fn, void *ctx, err *e)
{
    return db_group_join(d, fn, ctx, false, e);
}

int db_tx_group_stmt(db *d, db_tx_fn fn, void *ctx, err *e)
{
    return db_group_join(d, fn, ctx, true, e);
}

static int db_group_join(db *d, db_tx_fn fn, void *ctx, bool single, err *e)
{
    /* Only a backend with one connection per thread (SQLite) can tell that the caller
     * holds a transaction, and only there would the leader wait for its writer lock; a
     * pooled backend is not asked for a connection just to look. */
    if (d->ops->writer_enter) {
        db_conn *own = db_acquire(d, e);
        if (!own)
            return db_err_code(e);
        bool busy = db_in_transaction(own);
        db_release(own);
        if (busy)
            return err_set(e, F3_EINVAL,
                           "db_tx_group: this thread has a transaction open; write in it instead");
    }
    db_group_req req = {.fn = fn, .ctx = ctx, .single = single};
    db_group_req *batch[DB_GROUP_MAX];
    pthread_cond_init(&req.cv, NULL);
    pthread_mutex_lock(&d->group_lock);
    /* req lives on this stack only while it is queued: the leader takes it off the list
     * before it is marked done, and this function returns only once it is done. */
    if (d->group_tail)
        d->group_tail->next = &req;
    else
        d->group_head = &req; // cppcheck-suppress autoVariables
    d->group_tail = &req;     // cppcheck-suppress autoVariables
    while (!req.done) {
        if (d->group_leading) {
            pthread_cond_wait(&req.cv, &d->group_lock);
            continue;
        }
        d->group_leading = true;
        size_t n = 0;
        while (n < DB_GROUP_MAX && d->group_head) {
            batch[n] = d->group_head;
            d->group_head = d->group_head->next;
            batch[n++]->next = NULL;
        }
        if (!d->group_head)
            d->group_tail = NULL;
        pthread_mutex_unlock(&d->group_lock);
        db_group_run(d, batch, n);
        pthread_mutex_lock(&d->group_lock);
        /* Wake exactly the callers served, and the first still queued to lead next: the
         * rest sleep on (their stacks stay valid: nobody returns without the lock). */
        for (size_t i = 0; i < n; i++) {
            batch[i]->done = true;
            pthread_cond_signal(&batch[i]->cv);
        }
        d->group_leading = false;
        if (d->group_head)
            pthread_cond_signal(&d->group_head->cv);
    }
    pthread_mutex_unlock(&d->group_lock);
    pthread_cond_destroy(&req.cv);
    if (req.rc && e)
        *e = req.e;
    return req.rc;
}

/* ---- statements ------------------------------------------------------------------------ */

int db_exec(db_conn *c, const char *sql, err *e)
{
    if (!sql || !*sql)
        return err_set(e, F3_EINVAL, "db_exec: empty SQL");
    int rc = db_note(c, c->owner->ops->exec(c, sql, e));
    /* Outside a transaction the text committed itself (it may have written). */
    if (rc == 0 && !c->owner->ops->fires_commit_hooks && !db_in_transaction(c))
        db_fire_commit(c->owner);
    return rc;
}

/* Length of a dollar-quote tag at p ("$$" or "$name$"), 0 if p does not start one. */
static size_t dollar_tag_len(const char *p)
{
    size_t n = 1;
    if (p[n] != '$' && !isalpha((unsigned char)p[n]) && p[n] != '_')
        return 0;
    while (isalnum((unsigned char)p[n]) || p[n] == '_')
        n++;
    return p[n] == '$' ? n + 1 : 0;
}

int db_sql_param_count(const char *sql)
{
    int max = 0;
    const char *p = sql;
    while (*p) {
        if (*p == '\'' || *p == '"') {
            char q = *p++;
            while (*p && !(*p == q && p[1] != q))
                p += (*p == q) ? 2 : 1;
            if (*p)
                p++;
        } else if (p[0] == '-' && p[1] == '-') {
            p += strcspn(p, "\n");
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            p = end ? end + 2 : p + strlen(p);
        } else if (*p == '$' && isdigit((unsigned char)p[1])) {
            long v = 0;
            p++;
            while (isdigit((unsigned char)*p)) {
                if (v <= DB_MAX_PARAMS)
                    v = v * 10 + (*p - '0');
                p++;
            }
            if (v < 1 || v > DB_MAX_PARAMS)
                return -1;
            if (v > max)
                max = (int)v;
        } else if (*p == '$' && dollar_tag_len(p)) {
            size_t tl = dollar_tag_len(p);
            const char *body = p + tl;
            const char *end = body;
            while ((end = strchr(end, '$')) && strncmp(end, p, tl) != 0)
                end++;
            p = end ? end + tl : body + strlen(body);
        } else {
            p++;
        }
    }
    return max;
}

db_stmt *db_prepare(db_conn *c, const char *sql, err *e)
{
    if (!sql || !*sql) {
        err_set(e, F3_EINVAL, "db_prepare: empty SQL");
        return NULL;
    }
    int n = db_sql_param_count(sql);
    if (n < 0) {
        err_set(e, F3_EINVAL, "db_prepare: parameters must be numbered $1..$%d", DB_MAX_PARAMS);
        return NULL;
    }
    unsigned char *bound = calloc((size_t)n + 1, 1);
    if (!bound) {
        err_set(e, F3_ENOMEM, "out of memory preparing a statement");
        return NULL;
    }
    db_stmt *s = c->owner->ops->prepare(c, sql, n, e);
    if (!s) {
        db_note(c, e && e->code ? e->code : F3_EIO);
        free(bound);
        return NULL;
    }
    s->conn = c;
    s->nparams = n;
    s->bound = bound;
    s->bind_rc = 0;
    s->bind_msg[0] = '\0';
    s->started = false;
    s->has_row = false;
    s->done = false;
    return s;
}

static int db_bind(db_stmt *s, int idx, const db_value *v)
{
    if (idx < 1 || idx > s->nparams) {
        if (!s->bind_rc) {
            s->bind_rc = F3_EINVAL;
            snprintf(s->bind_msg, sizeof s->bind_msg,
                     "parameter $%d does not exist: the statement has %d parameter(s)", idx,
                     s->nparams);
        }
        return F3_EINVAL;
    }
    if (s->started)
        db_reset(s);
    int rc = s->conn->owner->ops->bind(s, idx, v);
    if (rc) {
        if (!s->bind_rc) {
            s->bind_rc = rc;
            snprintf(s->bind_msg, sizeof s->bind_msg, "cannot bind parameter $%d: %s", idx,
                     err_name(rc));
        }
        return rc;
    }
    s->bound[idx] = 1;
    return 0;
}

int db_bind_text(db_stmt *s, int idx, const char *v)
{
    db_value val = {.kind = v ? DB_VALUE_TEXT : DB_VALUE_NULL, .text = v};
    return db_bind(s, idx, &val);
}

int db_bind_int64(db_stmt *s, int idx, int64_t v)
{
    db_value val = {.kind = DB_VALUE_INT64, .i64 = v};
    return db_bind(s, idx, &val);
}

int db_bind_bool(db_stmt *s, int idx, bool v)
{
    db_value val = {.kind = DB_VALUE_BOOL, .b = v};
    return db_bind(s, idx, &val);
}

int db_bind_null(db_stmt *s, int idx)
{
    db_value val = {.kind = DB_VALUE_NULL};
    return db_bind(s, idx, &val);
}

int db_step(db_stmt *s, err *e)
{
    if (s->bind_rc)
        return err_set(e, s->bind_rc, "%s", s->bind_msg);
    if (s->done) /* SQLite would silently run the statement again */
        return DB_DONE;
    bool first = !s->started;
    if (!s->started) {
        for (int i = 1; i <= s->nparams; i++)
            if (!s->bound[i])
                return err_set(e, F3_EINVAL, "parameter $%d is not bound", i);
        s->started = true;
    }
    const db_backend_ops *ops = s->conn->owner->ops;
    int rc = ops->step(s, e);
    s->has_row = rc == DB_ROW;
    s->done = rc == DB_DONE;
    /* A backend without its own hook runs the whole statement on the first step, so an
     * autocommitted write has committed by now. */
    if (rc >= 0 && first && !ops->fires_commit_hooks && ops->changes(s) > 0 && !ops->in_tx(s->conn))
        db_fire_commit(s->conn->owner);
    return db_note(s->conn, rc);
}

static bool db_col_ok(db_stmt *s, int col)
{
    return s->has_row && col >= 0 && col < s->conn->owner->ops->col_count(s);
}

int db_col_count(db_stmt *s)
{
    return s->conn->owner->ops->col_count(s);
}

const char *db_col_name(db_stmt *s, int col)
{
    if (col < 0 || col >= db_col_count(s))
        return NULL;
    return s->conn->owner->ops->col_name(s, col);
}

bool db_col_is_null(db_stmt *s, int col)
{
    return !db_col_ok(s, col) || s->conn->owner->ops->col_is_null(s, col);
}

const char *db_col_text(db_stmt *s, int col)
{
    if (!db_col_ok(s, col) || s->conn->owner->ops->col_is_null(s, col))
        return NULL;
    return s->conn->owner->ops->col_text(s, col);
}

int64_t db_col_int64(db_stmt *s, int col)
{
    if (!db_col_ok(s, col) || s->conn->owner->ops->col_is_null(s, col))
        return 0;
    return s->conn->owner->ops->col_int64(s, col);
}

bool db_col_bool(db_stmt *s, int col)
{
    const char *t = db_col_text(s, col);
    if (!t)
        return false;
    if (strcmp(t, "t") == 0 || strcasecmp(t, "true") == 0)
        return true;
    if (strcmp(t, "f") == 0 || strcasecmp(t, "false") == 0)
        return false;
    return strtoll(t, NULL, 10) != 0;
}

int64_t db_changes(db_stmt *s)
{
    return s->conn->owner->ops->changes(s);
}

void db_reset(db_stmt *s)
{
    s->conn->owner->ops->reset(s);
    s->started = false;
    s->has_row = false;
    s->done = false;
}

void db_finalize(db_stmt *s)
{
    if (!s)
        return;
    unsigned char *bound = s->bound;
    s->conn->owner->ops->finalize(s);
    free(bound);
}

/* ---- backend differences, commit hooks, notifications ---------------------------------- */

const char *db_sql_skip_locked(const db *d)
{
    return d->ops->skip_locked_sql ? d->ops->skip_locked_sql : "";
}

int db_on_commit(db *d, void (*fn)(void *ctx), void *ctx, err *e)
{
    int rc = 0;
    pthread_mutex_lock(&d->hooks_lock);
    if (d->nhooks == DB_COMMIT_HOOKS_MAX)
        rc = err_set(e, F3_EBUSY, "db_on_commit: already %d commit hooks", DB_COMMIT_HOOKS_MAX);
    else
        d->hooks[d->nhooks++] = (db_commit_hook){fn, ctx};
    pthread_mutex_unlock(&d->hooks_lock);
    return rc;
}

void db_on_commit_remove(db *d, void (*fn)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&d->hooks_lock);
    for (int i = 0; i < d->nhooks; i++)
        if (d->hooks[i].fn == fn && d->hooks[i].ctx == ctx) {
            d->hooks[i] = d->hooks[--d->nhooks];
            break;
        }
    pthread_mutex_unlock(&d->hooks_lock);
}

void db_fire_commit(db *d)
{
    /* Hooks run under the lock so that db_on_commit_remove waits for a running one. */
    pthread_mutex_lock(&d->hooks_lock);
    for (int i = 0; i < d->nhooks; i++)
        d->hooks[i].fn(d->hooks[i].ctx);
    pthread_mutex_unlock(&d->hooks_lock);
}

bool db_channel_valid(const char *name)
{
    if (!name || !(islower((unsigned char)name[0]) || name[0] == '_'))
        return false;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return false;
    return n <= 63;
}

int db_notify(db_conn *c, const char *channel, err *e)
{
    if (!db_channel_valid(channel))
        return err_set(e, F3_EINVAL, "db_notify: '%s' is not a channel name ([a-z_][a-z0-9_]*)",
                       channel ? channel : "(null)");
    if (!c->owner->ops->notify)
        return 0;
    return db_note(c, c->owner->ops->notify(c, channel, e));
}

int db_listener_open(db *d, const char *channel, db_listener **out, err *e)
{
    *out = NULL;
    if (!db_channel_valid(channel))
        return err_set(e, F3_EINVAL,
                       "db_listener_open: '%s' is not a channel name ([a-z_][a-z0-9_]*)",
                       channel ? channel : "(null)");
    if (!d->ops->listener_open)
        return err_set(e, F3_EINVAL, "LISTEN needs PostgreSQL; the %s backend has one process",
                       d->ops->name);
    return d->ops->listener_open(d, channel, out, e);
}

int db_listener_wait(db_listener *l, int timeout_ms, err *e)
{
    return l->owner->ops->listener_wait(l, timeout_ms < 0 ? 0 : timeout_ms, e);
}

void db_listener_interrupt(db_listener *l)
{
    l->owner->ops->listener_interrupt(l);
}

void db_listener_close(db_listener *l)
{
    if (l)
        l->owner->ops->listener_close(l);
}
