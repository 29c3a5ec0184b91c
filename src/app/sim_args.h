/*
 * sim_args.h - what the `f3connect sim NAME` commands share: the command's start (signals,
 * configuration, log level, the simulator's name), numeric and probability options, and
 * the wait for SIGTERM or SIGINT.
 *
 * Only the sim_*_cmd.c files use it. It knows nothing of any simulator: each command
 * still reads its own options and starts its own simulator.
 */
#ifndef F3_APP_SIM_ARGS_H
#define F3_APP_SIM_ARGS_H

#include "app/commands.h"

#include <signal.h>
#include <stdint.h>

typedef struct sim_cmd {
    const char *name; /* the simulator: "shopify", "smtp", ... */
    sigset_t signals; /* SIGTERM and SIGINT, blocked so that the command can wait for them */
    config *cfg;
} sim_cmd;

/* How sim_cmd_run starts and stops one simulator. */
typedef struct sim_cmd_ops {
    /* Reads the simulator's options from args (the strings its cli_option table filled)
     * and starts it, logging where it listens. NULL with *status = 2 after a usage
     * message, or *status = 1 with e set when it cannot start. */
    void *(*start)(const sim_cmd *c, const void *args, int *status, err *e);
    void (*stop)(void *sim); /* stops and frees what start returned */
    const char *failed;      /* the log line when start fails ("cannot start the ...") */
    const char *stopped;     /* the log line once stopped */
} sim_cmd_ops;

/* The whole of `f3connect sim NAME`: blocks SIGTERM and SIGINT (every thread started later
 * inherits that), ignores SIGPIPE, reads the command line and configuration with the
 * simulator's own options, sets the log level, checks that the one positional word is
 * `name`, then ops->start on args, waits for SIGTERM or SIGINT and ops->stop. The process exit
 * status: 0 after a clean stop, 1 when the simulator cannot start, 2 for bad usage. */
int sim_cmd_run(const char *name, int argc, char **argv, const cli_option *options,
                const sim_cmd_ops *ops, const void *args);

/* An optional integer option --name within [min, max]: *out = def when text is NULL.
 * 0, or -1 after a message naming the option and its range went to stderr. */
int sim_int_option(const sim_cmd *c, const char *name, const char *text, int64_t min, int64_t max,
                   int64_t def, int64_t *out);

/* An optional probability option --name ("0.25") within [0, 1]: *out = 0 when text is
 * NULL. 0, or -1 after a message went to stderr. */
int sim_rate_option(const sim_cmd *c, const char *name, const char *text, double *out);

/* Prints "f3connect sim NAME: message" to stderr and returns -1 (for the commands' own
 * checks of option combinations). */
int sim_cmd_usage_error(const sim_cmd *c, const char *message);

#endif
