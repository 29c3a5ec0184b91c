/*
 * migrate.c - `f3connect migrate [--status]`.
 */
#include "app/commands.h"
#include "app/store.h"

#include "core/buf.h"
#include "core/log.h"

int cmd_migrate(int argc, char **argv)
{
    bool status_only = false;
    const cli_switch switches[] = {{"status", &status_only}, {NULL, NULL}};
    int code;
    config *c = cli_load_config("migrate", argc, argv, switches, NULL, NULL, 0, NULL, &code);
    if (!c)
        return code;
    log_set_level((log_level)log_level_parse(config_get(c, "LOG_LEVEL")));

    db *store = NULL;
    buf out;
    buf_init(&out, 0);
    err e;
    err_clear(&e);
    int rc = store_open(c, &store, &e);
    if (rc == 0 && status_only) {
        rc = db_migration_status(store, &out, &e);
        if (rc == 0)
            fputs(buf_cstr(&out), stdout);
    } else if (rc == 0) {
        int applied = 0;
        rc = db_migrate(store, &applied, &e);
        if (rc == 0)
            printf("%d migration%s applied (%s)\n", applied, applied == 1 ? "" : "s",
                   db_backend(store));
    }
    if (rc)
        fprintf(stderr, "f3connect migrate: %s\n", e.msg);
    buf_free(&out);
    db_close(store);
    config_free(c);
    return rc ? 1 : 0;
}
