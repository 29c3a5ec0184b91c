/*
 * sim_args.c - the shared part of the `f3connect sim NAME` commands (see sim_args.h):
 * start-up, option reading and the signal wait. It starts no simulator itself.
 */
#include "app/sim_args.h"

#include "core/log.h"
#include "core/str.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void cmd_end(sim_cmd *c)
{
    config_free(c->cfg);
    c->cfg = NULL;
}

/* Blocks SIGTERM and SIGINT (every thread started later inherits that), ignores SIGPIPE,
 * reads the command line and configuration with the simulator's own options, sets the
 * log level and checks that the one positional word is the simulator's name. 0 when the
 * command may go on (finish with cmd_end), otherwise the exit status (a message went to
 * stderr; nothing to free). */
static int cmd_begin(sim_cmd *c, const char *name, int argc, char **argv, const cli_option *options)
{
    *c = (sim_cmd){.name = name};
    sigemptyset(&c->signals);
    sigaddset(&c->signals, SIGTERM);
    sigaddset(&c->signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &c->signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    const char *which[1] = {NULL};
    int npos = 0, code;
    c->cfg = cli_load_config("sim", argc, argv, NULL, options, which, 1, &npos, &code);
    if (!c->cfg)
        return code;
    log_set_level((log_level)log_level_parse(config_get(c->cfg, "LOG_LEVEL")));
    if (npos != 1 || !str_eq(which[0], name)) {
        fprintf(stderr, "f3connect sim: which simulator? (%s); see 'f3connect sim --help'\n", name);
        cmd_end(c);
        return 2;
    }
    return 0;
}

static void cmd_wait(sim_cmd *c)
{
    int sig = 0;
    sigwait(&c->signals, &sig);
}

int sim_cmd_run(const char *name, int argc, char **argv, const cli_option *options,
                const sim_cmd_ops *ops, const void *args)
{
    sim_cmd c;
    int status = cmd_begin(&c, name, argc, argv, options);
    if (status)
        return status;
    err e;
    err_clear(&e);
    void *sim = ops->start(&c, args, &status, &e);
    if (!sim) {
        if (status != 2)
            log_fatal(ops->failed, "reason", e.msg);
        goto out;
    }
    cmd_wait(&c);
    ops->stop(sim);
    log_info(ops->stopped);
    status = 0;
out:
    cmd_end(&c);
    return status;
}

int sim_int_option(const sim_cmd *c, const char *name, const char *text, int64_t min, int64_t max,
                   int64_t def, int64_t *out)
{
    *out = def;
    if (!text)
        return 0;
    if (str_to_int64(text, out) != 0 || *out < min || *out > max) {
        fprintf(stderr, "f3connect sim %s: --%s must be an integer between %lld and %lld\n",
                c->name, name, (long long)min, (long long)max);
        return -1;
    }
    return 0;
}

int sim_rate_option(const sim_cmd *c, const char *name, const char *text, double *out)
{
    *out = 0;
    if (!text)
        return 0;
    char *end = NULL;
    double v = strtod(text, &end);
    if (!*text || !end || *end || !(v >= 0 && v <= 1)) {
        fprintf(stderr, "f3connect sim %s: --%s must be a number between 0 and 1\n", c->name, name);
        return -1;
    }
    *out = v;
    return 0;
}

int sim_cmd_usage_error(const sim_cmd *c, const char *message)
{
    fprintf(stderr, "f3connect sim %s: %s\n", c->name, message);
    return -1;
}
