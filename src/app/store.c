/*
 * store.c - opens the configured database (see store.h).
 */
#include "app/store.h"

#include "core/buf.h"
#include "core/log.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* mkdir -p for the directory part of path. */
static int make_parent_dirs(const char *path, err *e)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    size_t len = (size_t)(slash - path);
    if (len >= sizeof dir)
        return err_set(e, F3_EINVAL, "DATABASE_URL: path too long");
    memcpy(dir, path, len);
    dir[len] = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return err_set(e, F3_EIO, "cannot create directory %s: %s", dir, strerror(errno));
        *p = '/';
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return err_set(e, F3_EIO, "cannot create directory %s: %s", dir, strerror(errno));
    return 0;
}

int store_open(const config *c, db **out, err *e)
{
    buf url;
    buf_init(&url, 8192);
    int rc = config_database_url(c, &url, e);
    if (rc)
        goto out;
    const char *u = buf_cstr(&url);
    if (strncmp(u, "sqlite:", 7) == 0 && (rc = make_parent_dirs(u + 7, e)) != 0)
        goto out;
    db_opts opts = {
        .pool_size = (int)config_get_int(c, "DATABASE_POOL_SIZE"),
        .busy_timeout_ms = 5000,
    };
    rc = db_open(u, &opts, out, e);
out:
    buf_free(&url);
    return rc;
}
