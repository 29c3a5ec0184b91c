/*
 * commands.h - the CLI verbs and the option parsing they share.
 *
 * Each verb is `int cmd_x(int argc, char **argv)` where argv[0] is the verb
 * itself; it returns the process exit status (0 ok, 1 failure, 2 misuse).
 */
#ifndef F3_APP_COMMANDS_H
#define F3_APP_COMMANDS_H

#include "core/config.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct cli_verb {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage;
} cli_verb;

int cmd_serve(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_queues(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_sim_shopify(int argc, char **argv);
int cmd_sim_simplyprint(int argc, char **argv);
int cmd_sim_smtp(int argc, char **argv);
int cmd_sim_sendcloud(int argc, char **argv);
int cmd_shopify(int argc, char **argv);
int cmd_sandbox(int argc, char **argv);

/* Prints the usage text of `verb` to out. */
void cli_usage(const char *verb, FILE *out);

/* True if argv[1..] holds --help or -h. */
bool cli_wants_help(int argc, char **argv);

/* A verb's own boolean switches (e.g. "--status"); set when seen on the command line. */
typedef struct cli_switch {
    const char *name;
    bool *value;
} cli_switch;

/* A verb's own options that take a value (e.g. "--email E"); *value is set to the
 * argument (borrowed from argv) when seen, and left alone otherwise. */
typedef struct cli_option {
    const char *name;
    const char **value;
} cli_option;

/* Parses argv[1..] of a verb into a loaded, validated configuration:
 * the environment, then the .env file (--env-file PATH, else ./.env if present),
 * then `--key-name value` / `--key-name=value` flags for any config key, and the
 * verb's own switches and value options (either table may be NULL). Positional words are returned
 * in positional[] (up to max). On misuse or an invalid value prints a message naming the problem to
 * stderr and returns NULL with *exit_code set (2 misuse, 1 invalid configuration). Caller frees the
 * result with config_free(). */
config *cli_load_config(const char *verb, int argc, char **argv, const cli_switch *switches,
                        const cli_option *options, const char **positional, int max_positional,
                        int *n_positional, int *exit_code);

#endif
