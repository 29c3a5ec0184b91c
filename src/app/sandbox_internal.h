/*
 * sandbox_internal.h - what the sandbox's files share (see sandbox.h): its arguments,
 * the environment handed to the platform process, the platform process itself, and
 * the running sandbox. Only src/app/sandbox*.c include this.
 */
#ifndef F3_APP_SANDBOX_INTERNAL_H
#define F3_APP_SANDBOX_INTERNAL_H

#include "app/sandbox.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

/* ---- arguments ---------------------------------------------------------------------------- */

typedef struct sandbox_args {
    long orders;              /* demo orders to place; 0 = until stopped */
    double rate;              /* orders per second */
    bool until_done;          /* wait for every order to settle, check, exit */
    long print_ms;            /* printing time of one copy */
    double print_fail;        /* share of prints that fail */
    double cancel_rate;       /* share of orders cancelled soon after */
    double unmapped_rate;     /* share of orders with unmapped SKUs only */
    double faults;            /* chance per second of a burst of provider 429/5xx answers */
    double duplicate_rate;    /* share of webhooks delivered twice */
    double drop_rate;         /* share of webhooks never delivered (reconciliation heals) */
    int kills;                /* times the platform is killed with SIGKILL and restarted */
    int port;                 /* the platform's HTTP port */
    const char *data_dir;     /* where the database, logs and mail go */
    const char *database_url; /* NULL = SQLite in data_dir */
    long timeout_s;           /* --until-done gives up after this */
    uint64_t seed;            /* of the order generator */
    const char *summary_json; /* --until-done also writes its summary as JSON here; NULL = no */
} sandbox_args;

/* Runs the sandbox until Ctrl-C, or with until_done until every order settled; the
 * process exit status (0: ran / every invariant held; 1: failed). */
int sandbox_run(const sandbox_args *a);

/* ---- the platform's environment ---------------------------------------------------------- */

#define SANDBOX_ENV_MAX 64

typedef struct sandbox_env {
    char *vars[SANDBOX_ENV_MAX]; /* "KEY=value", owned */
    size_t count;
} sandbox_env;

/* Adds KEY=value (formatted). 0, or F3_ENOMEM / F3_EINVAL when full. */
int sandbox_env_set(sandbox_env *env, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sandbox_env_free(sandbox_env *env);

/* ---- the platform process (sandbox_child.c) ---------------------------------------------- */

typedef struct sandbox_child {
    char binary[PATH_MAX];   /* this executable */
    char log_path[PATH_MAX]; /* its stdout and stderr, appended */
    pid_t pid;               /* 0 when not running */
    int starts;
    int kills;
    long peak_rss_kb; /* largest ru_maxrss of the runs already reaped */
} sandbox_child;

/* Starts `binary serve` with the process environment overridden by env. */
int sandbox_child_start(sandbox_child *ch, const sandbox_env *env, err *e);

/* Polls url until it answers 2xx; fails when the child exits or timeout_ms passes. */
int sandbox_child_wait_ready(sandbox_child *ch, const char *url, int timeout_ms, err *e);

/* SIGKILL and reap. */
void sandbox_child_kill(sandbox_child *ch);

/* SIGTERM, then waits up to timeout_ms (SIGKILL after). 0 when it exited 0. */
int sandbox_child_stop(sandbox_child *ch, int timeout_ms);

/* The platform's peak resident set in kB over every start so far: the runs already
 * reaped (their ru_maxrss) and the one running now (its VmHWM). 0 when unknown. */
long sandbox_child_peak_rss_kb(const sandbox_child *ch);

#endif
