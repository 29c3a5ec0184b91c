/*
 * options.c - turns a verb's argv into a validated configuration.
 *
 * Precedence is flag > environment > .env file > default (config.h); this file
 * only walks argv and reports misuse, the rules live in core/config.c.
 */
#include "app/commands.h"

#include "core/err.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static bool *find_switch(const cli_switch *switches, const char *name)
{
    for (const cli_switch *s = switches; s && s->name; s++)
        if (strcmp(s->name, name) == 0)
            return s->value;
    return NULL;
}

static const char **find_option(const cli_option *options, const char *name)
{
    for (const cli_option *o = options; o && o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o->value;
    return NULL;
}

/* Splits "--key=value" or "--key value"; advances *i past a consumed value. */
static int take_flag(int argc, char **argv, int *i, char *name, size_t name_size,
                     const char **value)
{
    const char *arg = argv[*i] + 2;
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    if (len == 0 || len >= name_size)
        return -1;
    memcpy(name, arg, len);
    name[len] = '\0';
    if (eq) {
        *value = eq + 1;
        return 0;
    }
    if (*i + 1 >= argc)
        return -2;
    *value = argv[++*i];
    return 0;
}

config *cli_load_config(const char *verb, int argc, char **argv, const cli_switch *switches,
                        const char **positional, int max_positional, int *n_positional,
                        int *exit_code)
{
    return cli_load_config_opts(verb, argc, argv, switches, NULL, positional, max_positional,
                                n_positional, exit_code);
}

config *cli_load_config_opts(const char *verb, int argc, char **argv, const cli_switch *switches,
                             const cli_option *options, const char **positional, int max_positional,
                             int *n_positional, int *exit_code)
{
    config *c = config_new();
    const char *env_file = NULL;
    int npos = 0;
    err e;
    err_clear(&e);
    *exit_code = 2;
    if (!c) {
        fprintf(stderr, "f3connect %s: out of memory\n", verb);
        *exit_code = 1;
        return NULL;
    }
    config_load_environ(c, environ);

    /* Flags are applied after the .env file is read, so collect the file name first. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--env-file") == 0 && i + 1 < argc)
            env_file = argv[++i];
        else if (strncmp(argv[i], "--env-file=", 11) == 0)
            env_file = argv[i] + 11;
        else if (strcmp(argv[i], "--env-file") == 0)
            goto missing_env_file;
    }
    if (env_file ? config_load_env_file(c, env_file, true, &e)
                 : config_load_env_file(c, ".env", false, &e)) {
        fprintf(stderr, "f3connect %s: %s\n", verb, e.msg);
        *exit_code = 1;
        goto fail;
    }

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        assert(arg); /* argv[i] for i < argc is never NULL */
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (npos >= max_positional) {
                fprintf(stderr, "f3connect %s: unexpected argument '%s'\n", verb, arg);
                goto usage;
            }
            positional[npos++] = arg;
            continue;
        }
        char name[128];
        const char *value = NULL;
        bool *sw = find_switch(switches, arg + 2);
        if (sw) {
            *sw = true;
            continue;
        }
        int rc = take_flag(argc, argv, &i, name, sizeof name, &value);
        if (rc == -2) {
            fprintf(stderr, "f3connect %s: option %s needs a value\n", verb, arg);
            goto usage;
        }
        if (rc < 0) {
            fprintf(stderr, "f3connect %s: malformed option '%s'\n", verb, arg);
            goto usage;
        }
        if (strcmp(name, "env-file") == 0)
            continue;
        const char **opt = find_option(options, name);
        if (opt) {
            *opt = value;
            continue;
        }
        if (config_set_flag(c, name, value, &e)) {
            fprintf(stderr, "f3connect %s: %s\n", verb, e.msg);
            goto usage;
        }
    }
    if (config_validate(c, &e)) {
        fprintf(stderr, "f3connect %s: invalid configuration: %s\n", verb, e.msg);
        *exit_code = 1;
        goto fail;
    }
    if (n_positional)
        *n_positional = npos;
    *exit_code = 0;
    return c;

missing_env_file:
    fprintf(stderr, "f3connect %s: option --env-file needs a value\n", verb);
usage:
    fprintf(stderr, "Run 'f3connect %s --help' for usage.\n", verb);
fail:
    config_free(c);
    return NULL;
}
