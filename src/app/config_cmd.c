/*
 * config_cmd.c - `f3connect config check | reference`.
 */
#include "app/commands.h"

#include "core/buf.h"

#include <string.h>

static int config_reference(int npos)
{
    if (npos != 1) {
        fprintf(stderr, "f3connect config reference: takes no arguments\n");
        return 2;
    }
    buf out;
    buf_init(&out, 0);
    int rc = config_reference_markdown(&out);
    if (rc == 0)
        fputs(buf_cstr(&out), stdout);
    buf_free(&out);
    return rc ? 1 : 0;
}

int cmd_config(int argc, char **argv)
{
    const char *pos[2];
    int npos = 0, code;
    config *c = cli_load_config("config", argc, argv, NULL, NULL, pos, 2, &npos, &code);
    if (!c)
        return code;
    if (npos == 0) {
        fprintf(stderr, "f3connect config: expected 'check' or 'reference'\n");
        config_free(c);
        return 2;
    }
    int status;
    if (strcmp(pos[0], "reference") == 0) {
        status = config_reference(npos);
    } else if (strcmp(pos[0], "check") == 0 && npos == 1) {
        buf out;
        buf_init(&out, 0);
        status = config_describe(c, &out) ? 1 : 0;
        fputs(buf_cstr(&out), stdout);
        if (status == 0)
            printf("configuration OK\n");
        buf_free(&out);
    } else {
        fprintf(stderr, "f3connect config: unknown subcommand '%s' (check, reference)\n", pos[0]);
        status = 2;
    }
    config_free(c);
    return status;
}
