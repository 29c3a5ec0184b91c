/*
 * migrate.c - applies the numbered schema migrations and reports their state (see db.h).
 *
 * Each migration runs in its own transaction with its schema_migrations row, under a
 * lock that serializes concurrent migrators (PostgreSQL: a transaction-scoped advisory
 * lock; SQLite: BEGIN IMMEDIATE). Before applying anything, the applied rows are
 * checked against the list: a changed file or a version this binary does not know
 * stops everything. It must not edit or skip an applied migration.
 */
#include "db/db_internal.h"

#include "core/clock.h"
#include "core/log.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECKSUM_HEX_LEN 65 /* SHA-256 as hex + NUL */

/* "f3migrat" as a 64-bit number: the advisory lock every f3connect migrator takes. */
#define MIGRATE_LOCK_SQL "SELECT pg_advisory_xact_lock(7363730862396563828)"

static const char create_table_sql[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                       " version BIGINT NOT NULL PRIMARY KEY,"
                                       " name TEXT NOT NULL,"
                                       " checksum TEXT NOT NULL,"
                                       " applied_at BIGINT NOT NULL)";

typedef struct applied_row {
    int64_t version;
    char *name;
    char checksum[CHECKSUM_HEX_LEN];
    int64_t applied_at;
} applied_row;

typedef struct applied_set {
    applied_row *rows;
    size_t n;
} applied_set;

static void applied_free(applied_set *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->rows[i].name);
    free(a->rows);
    a->rows = NULL;
    a->n = 0;
}

static int checksum_hex(const char *sql, char out[CHECKSUM_HEX_LEN], err *e)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(sql, strlen(sql), md, &len, EVP_sha256(), NULL) || len != 32)
        return err_set(e, F3_EIO, "cannot compute a migration checksum (SHA-256)");
    static const char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * len] = '\0';
    return 0;
}

static int check_list(const db_migration *list, size_t n, err *e)
{
    for (size_t i = 0; i < n; i++) {
        if (!list[i].name || !list[i].sql || list[i].version < 1)
            return err_set(e, F3_EINVAL, "migration #%zu is incomplete (version, name, sql)", i);
        if (i > 0 && list[i].version <= list[i - 1].version)
            return err_set(e, F3_EINVAL, "migrations out of order: %s comes after %s", list[i].name,
                           list[i - 1].name);
    }
    return 0;
}

static const db_migration *find_version(const db_migration *list, size_t n, int64_t version)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].version == version)
            return &list[i];
    return NULL;
}

static const applied_row *find_applied(const applied_set *a, int64_t version)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->rows[i].version == version)
            return &a->rows[i];
    return NULL;
}

/* True if schema_migrations exists; reads the catalog so that nothing is created. */
static int table_exists(db_conn *c, bool *exists, err *e)
{
    const char *sql = strcmp(db_backend(c->owner), "postgres") == 0
                          ? "SELECT count(*) FROM information_schema.tables"
                            " WHERE table_schema = current_schema()"
                            " AND table_name = 'schema_migrations'"
                          : "SELECT count(*) FROM sqlite_master"
                            " WHERE type = 'table' AND name = 'schema_migrations'";
    db_stmt *s = db_prepare(c, sql, e);
    if (!s)
        return e ? e->code : F3_EIO;
    int rc = db_step(s, e);
    if (rc == DB_ROW) {
        *exists = db_col_int64(s, 0) > 0;
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_set(e, F3_EIO, "catalog query returned no row");
    }
    db_finalize(s);
    return rc;
}

static int load_applied(db_conn *c, applied_set *a, err *e)
{
    db_stmt *s = db_prepare(
        c, "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version", e);
    if (!s)
        return e ? e->code : F3_EIO;
    int rc;
    while ((rc = db_step(s, e)) == DB_ROW) {
        applied_row *rows = realloc(a->rows, (a->n + 1) * sizeof *rows);
        if (!rows) {
            rc = err_set(e, F3_ENOMEM, "out of memory reading schema_migrations");
            break;
        }
        a->rows = rows;
        applied_row *r = &rows[a->n];
        const char *name = db_col_text(s, 1);
        const char *sum = db_col_text(s, 2);
        r->version = db_col_int64(s, 0);
        r->applied_at = db_col_int64(s, 3);
        snprintf(r->checksum, sizeof r->checksum, "%s", sum ? sum : "");
        r->name = strdup(name ? name : "");
        if (!r->name) {
            rc = err_set(e, F3_ENOMEM, "out of memory reading schema_migrations");
            break;
        }
        a->n++;
    }
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

/* The applied rows must all be known to the list, with unchanged text. */
static int verify_applied(const applied_set *a, const db_migration *list, size_t n, err *e)
{
    for (size_t i = 0; i < a->n; i++) {
        const applied_row *r = &a->rows[i];
        const db_migration *m = find_version(list, n, r->version);
        if (!m)
            return err_set(e, F3_ECONFLICT,
                           "the database has migration %" PRId64 " (%s), which this binary does "
                           "not know: the database is newer than the binary",
                           r->version, r->name);
        char sum[CHECKSUM_HEX_LEN];
        int rc = checksum_hex(m->sql, sum, e);
        if (rc)
            return rc;
        if (strcmp(sum, r->checksum) != 0)
            return err_set(e, F3_ECONFLICT,
                           "migration %s was changed after it was applied (checksum mismatch); "
                           "add a new migration instead of editing an applied one",
                           m->name);
    }
    return 0;
}

static int record_applied(db_conn *c, const db_migration *m, err *e)
{
    char sum[CHECKSUM_HEX_LEN];
    int rc = checksum_hex(m->sql, sum, e);
    if (rc)
        return rc;
    db_stmt *s = db_prepare(c,
                            "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
                            " VALUES ($1, $2, $3, $4)",
                            e);
    if (!s)
        return e ? e->code : F3_EIO;
    db_bind_int64(s, 1, m->version);
    db_bind_text(s, 2, m->name);
    db_bind_text(s, 3, sum);
    db_bind_int64(s, 4, clock_now_ms());
    rc = db_step(s, e);
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

/* One transaction: lock, verify, apply the first pending migration (if any). */
static int apply_next(db_conn *c, const db_migration *list, size_t n, bool *applied, err *e)
{
    applied_set a = {0};
    const db_migration *next = NULL;
    *applied = false;
    int rc = db_begin(c, e);
    if (rc)
        return rc;
    if (strcmp(db_backend(c->owner), "postgres") == 0 && (rc = db_exec(c, MIGRATE_LOCK_SQL, e)))
        goto out;
    if ((rc = db_exec(c, create_table_sql, e)) || (rc = load_applied(c, &a, e)) ||
        (rc = verify_applied(&a, list, n, e)))
        goto out;
    for (size_t i = 0; i < n && !next; i++)
        if (!find_applied(&a, list[i].version))
            next = &list[i];
    if (next) {
        if ((rc = db_exec(c, next->sql, e)) || (rc = record_applied(c, next, e))) {
            if (e) {
                char why[ERR_MSG_MAX];
                snprintf(why, sizeof why, "%s", e->msg);
                err_set(e, rc, "migration %s failed: %.400s", next->name, why);
            }
            goto out;
        }
    }
    rc = db_commit(c, e);
    if (rc == 0 && next) {
        *applied = true;
        log_info("migration applied", "name", next->name, "backend", db_backend(c->owner));
    }
out:
    if (rc)
        db_rollback(c, NULL);
    applied_free(&a);
    return rc;
}

int db_migrate_with(db *d, const db_migration *list, size_t n, int *applied_count, err *e)
{
    if (applied_count)
        *applied_count = 0;
    int rc = check_list(list, n, e);
    if (rc)
        return rc;
    db_conn *c = db_acquire(d, e);
    if (!c)
        return e ? e->code : F3_EIO;
    for (int busy = 0;;) {
        bool applied = false;
        rc = apply_next(c, list, n, &applied, e);
        if (rc == F3_EBUSY && ++busy < DB_TX_ATTEMPTS)
            continue;
        if (rc || !applied)
            break;
        busy = 0;
        if (applied_count)
            (*applied_count)++;
    }
    db_release(c);
    return rc;
}

int db_migrate(db *d, int *applied_count, err *e)
{
    return db_migrate_with(d, db_migrations_embedded, db_migrations_embedded_count, applied_count,
                           e);
}

/* ---- status ---------------------------------------------------------------------------- */

/* Appends one migration's line (text) or object (JSON); 0 or a buf error. */
static int status_line(buf *out, db_status_format fmt, bool *first, int64_t version,
                       const char *name, const char *state, int64_t applied_at)
{
    char when[CLOCK_ISO_LEN] = "";
    if (applied_at > 0)
        clock_format_iso(applied_at, when);
    if (fmt == DB_STATUS_TEXT)
        return buf_printf(out, "%04" PRId64 "  %-40s %s%s%s\n", version, name, state,
                          when[0] ? "  " : "", when);
    int rc = buf_puts(out, *first ? "" : ",");
    *first = false;
    if (!rc)
        rc = buf_printf(out, "{\"version\":%" PRId64 ",\"name\":\"", version);
    if (!rc)
        rc = buf_put_json_escaped(out, name);
    if (!rc)
        rc = buf_printf(out, "\",\"state\":\"%s\",\"appliedAt\":", state);
    if (!rc)
        rc = applied_at > 0 ? buf_printf(out, "\"%s\"}", when) : buf_puts(out, "null}");
    return rc;
}

int db_migration_status_with(db *d, const db_migration *list, size_t n, db_status_format fmt,
                             buf *out, err *e)
{
    applied_set a = {0};
    bool exists = false, first = true;
    int rc = check_list(list, n, e);
    if (rc)
        return rc;
    db_conn *c = db_acquire(d, e);
    if (!c)
        return e ? e->code : F3_EIO;
    if ((rc = table_exists(c, &exists, e)) || (exists && (rc = load_applied(c, &a, e))))
        goto out;
    int brc = fmt == DB_STATUS_JSON ? buf_putc(out, '[') : 0;
    for (size_t i = 0; i < n && !brc; i++) {
        const applied_row *r = find_applied(&a, list[i].version);
        char sum[CHECKSUM_HEX_LEN];
        if (r && (rc = checksum_hex(list[i].sql, sum, e)))
            goto out;
        const char *state = !r ? "pending" : strcmp(sum, r->checksum) == 0 ? "applied" : "changed";
        brc = status_line(out, fmt, &first, list[i].version, list[i].name, state,
                          r ? r->applied_at : 0);
    }
    for (size_t i = 0; i < a.n && !brc; i++)
        if (!find_version(list, n, a.rows[i].version))
            brc = status_line(out, fmt, &first, a.rows[i].version, a.rows[i].name, "unknown",
                              a.rows[i].applied_at);
    if (!brc && fmt == DB_STATUS_JSON)
        brc = buf_puts(out, "]\n");
    if (brc)
        rc = err_set(e, brc == BUF_ERR_FULL ? F3_ETOOBIG : F3_ENOMEM,
                     "migration status does not fit in the output buffer");
out:
    applied_free(&a);
    db_release(c);
    return rc;
}

int db_migration_status(db *d, buf *out, err *e)
{
    return db_migration_status_with(d, db_migrations_embedded, db_migrations_embedded_count,
                                    DB_STATUS_TEXT, out, e);
}

int db_migration_status_json(db *d, buf *out, err *e)
{
    return db_migration_status_with(d, db_migrations_embedded, db_migrations_embedded_count,
                                    DB_STATUS_JSON, out, e);
}
