/*
 * secret_key.c - loading or making the sealing key (see secret_key.h).
 */
#include "core/secret_key.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/str.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int key_file_read(const char *path, uint8_t key[CRYPTO_KEY_LEN], err *e)
{
    char text[256] = {0};
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(e, F3_EIO, "cannot read %s: %s", path, strerror(errno));
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    int rc = crypto_key_parse(str_trim(text), key, e);
    crypto_wipe(text, sizeof text);
    if (rc)
        return err_set(e, F3_EINVAL, "%s does not hold a 32-byte key (64 hex characters)", path);
    return 0;
}

/* Creates the key file exclusively; F3_ECONFLICT when another process made it first. */
static int key_file_create(const char *path, uint8_t key[CRYPTO_KEY_LEN], err *e)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return errno == EEXIST ? F3_ECONFLICT
                               : err_set(e, F3_EIO, "cannot create %s: %s", path, strerror(errno));
    crypto_random(key, CRYPTO_KEY_LEN);
    buf hex;
    buf_init(&hex, 0);
    int rc = crypto_hex_encode(key, CRYPTO_KEY_LEN, &hex) || buf_putc(&hex, '\n') ? F3_ENOMEM : 0;
    if (rc == 0 && (write(fd, hex.data, hex.len) != (ssize_t)hex.len || fsync(fd) != 0))
        rc = err_set(e, F3_EIO, "cannot write %s: %s", path, strerror(errno));
    if (rc == F3_ENOMEM)
        err_set(e, rc, "out of memory");
    close(fd);
    if (hex.data)
        crypto_wipe(hex.data, hex.len);
    buf_free(&hex);
    if (rc)
        unlink(path);
    return rc;
}

int secret_key_load(const config *c, uint8_t key[CRYPTO_KEY_LEN], err *e)
{
    const char *configured = config_get(c, "ENCRYPTION_KEY");
    if (configured)
        return crypto_key_parse(configured, key, e)
                   ? err_set(e, F3_EINVAL, "ENCRYPTION_KEY is not a 32-byte key")
                   : 0;
    const char *dir = config_get(c, "DATA_DIR");
    if (!dir || !*dir)
        return err_set(e, F3_EINVAL, "neither ENCRYPTION_KEY nor DATA_DIR is set");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return err_set(e, F3_EIO, "cannot create %s: %s", dir, strerror(errno));
    buf path;
    buf_init(&path, 0);
    if (buf_printf(&path, "%s/%s", dir, SECRET_KEY_FILE_NAME)) {
        buf_free(&path);
        return err_set(e, F3_ENOMEM, "out of memory");
    }
    int rc = key_file_create(buf_cstr(&path), key, e);
    if (rc == 0)
        log_warn("ENCRYPTION_KEY is not set: generated a new key file; keep it with the "
                 "database, secrets stored under it cannot be read without it",
                 "path", buf_cstr(&path));
    else if (rc == F3_ECONFLICT)
        rc = key_file_read(buf_cstr(&path), key, e);
    buf_free(&path);
    return rc;
}
