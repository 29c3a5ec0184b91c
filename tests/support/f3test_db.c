/*
 * f3test_db.c - per-test databases on SQLite and PostgreSQL (see f3test_db.h).
 *
 * Talks to PostgreSQL with libpq directly, not through src/db, so that a broken db
 * layer cannot hide behind its own test harness.
 */
#include "support/f3test_db.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define URL_MAX 1024

/* Reads the server URL written by scripts/test-postgres.sh into out. */
static int read_server_url(char *out, size_t size)
{
    const char *file = getenv("F3_TEST_PG_URL_FILE");
    if (!file || !*file) {
        print_error("F3_TEST_PG_URL_FILE is not set: run PostgreSQL suites through ctest, which "
                    "starts the server (fixture 'postgres', scripts/test-postgres.sh)\n");
        return -1;
    }
    FILE *f = fopen(file, "r");
    if (!f) {
        print_error("PostgreSQL test server URL file %s is missing: did the postgres.start "
                    "test (scripts/test-postgres.sh start) fail?\n",
                    file);
        return -1;
    }
    char *line = fgets(out, (int)size, f);
    fclose(f);
    if (!line) {
        print_error("PostgreSQL test server URL file %s is empty\n", file);
        return -1;
    }
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

/* Writes base URL with its database path replaced by /name. */
static int url_with_db(const char *base, const char *name, char *out, size_t size)
{
    const char *scheme = strstr(base, "://");
    if (!scheme)
        return -1;
    const char *path = strchr(scheme + 3, '/');
    size_t host_len = path ? (size_t)(path - base) : strcspn(base, "?");
    const char *query = strchr(base, '?');
    int n = snprintf(out, size, "%.*s/%s%s", (int)host_len, base, name, query ? query : "");
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static int run_admin_sql(const char *server_url, const char *sql)
{
    PGconn *pg = PQconnectdb(server_url);
    int rc = -1;
    if (PQstatus(pg) != CONNECTION_OK) {
        print_error("cannot connect to the PostgreSQL test server: %s", PQerrorMessage(pg));
        goto out;
    }
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) == PGRES_COMMAND_OK)
        rc = 0;
    else
        print_error("%s: %s", sql, PQerrorMessage(pg));
    PQclear(r);
out:
    PQfinish(pg);
    return rc;
}

static char *sqlite_url(void)
{
    char *dir = f3test_tmpdir();
    if (!dir) {
        print_error("cannot create a temporary directory for a SQLite test database\n");
        return NULL;
    }
    size_t n = strlen(dir) + 32;
    char *url = malloc(n);
    if (url)
        snprintf(url, n, "sqlite:%s/test.db", dir);
    free(dir);
    return url;
}

static char *postgres_url(void)
{
    static unsigned counter;
    char server[URL_MAX], name[64], sql[128], url[URL_MAX];
    if (read_server_url(server, sizeof server))
        return NULL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(name, sizeof name, "f3t_%ld_%u_%lx", (long)getpid(), ++counter,
             (unsigned long)ts.tv_nsec);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    if (url_with_db(server, name, url, sizeof url) || run_admin_sql(server, sql))
        return NULL;
    return strdup(url);
}

char *f3test_db_url(const char *backend)
{
    char *url = NULL;
    if (backend && strcmp(backend, "sqlite") == 0)
        url = sqlite_url();
    else if (backend && strcmp(backend, "postgres") == 0)
        url = postgres_url();
    else
        print_error("unknown test backend '%s' (sqlite, postgres)\n", backend ? backend : "");
    if (!url)
        fail_msg("no test database for backend %s", backend ? backend : "(none)");
    return url;
}

void f3test_db_drop(const char *url)
{
    if (!url)
        return;
    if (strncmp(url, "sqlite:", 7) == 0) {
        const char *path = url + 7;
        const char *slash = strrchr(path, '/');
        if (slash) {
            char dir[URL_MAX];
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
            f3test_rmtree(dir);
        }
        return;
    }
    char server[URL_MAX], sql[160];
    const char *scheme = strstr(url, "://");
    const char *path = scheme ? strchr(scheme + 3, '/') : NULL;
    if (!path || read_server_url(server, sizeof server))
        return;
    size_t len = strcspn(path + 1, "?");
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %.*s WITH (FORCE)", (int)len, path + 1);
    run_admin_sql(server, sql);
}

const char *f3test_backend_arg(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "sqlite") == 0 || strcmp(argv[1], "postgres") == 0))
        return argv[1];
    fprintf(stderr, "usage: %s sqlite|postgres\n", argc > 0 ? argv[0] : "test");
    exit(2);
}

f3test_dbfx *f3test_dbfx_open(const char *backend, bool migrate)
{
    f3test_dbfx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->url = f3test_db_url(backend);
    err e = {0};
    if (db_open(f->url, NULL, &f->d, &e) != 0 || (migrate && db_migrate(f->d, NULL, &e) != 0))
        fail_msg("%s: %s", f->url, e.msg);
    f->c = db_acquire(f->d, &e);
    if (!f->c)
        fail_msg("db_acquire: %s", e.msg);
    return f;
}

void f3test_dbfx_close(f3test_dbfx *f)
{
    db_release(f->c);
    db_close(f->d);
    f3test_db_drop(f->url);
    free(f->url);
    free(f);
}
