/*
 * sandbox_cmd.c - `f3connect sandbox`: reads and checks the sandbox's flags and runs it
 * (sandbox.c). Only argument handling lives here.
 */
#include "app/commands.h"
#include "app/sandbox_internal.h"

#include "core/log.h"
#include "core/str.h"
#include "http/client.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct sandbox_flags {
    const char *orders, *rate, *print_ms, *print_fail, *cancel_rate, *unmapped_rate, *faults;
    const char *duplicate_rate, *drop_rate;
    const char *kills, *data_dir, *database_url, *timeout, *seed;
    const char *summary_json;
    bool until_done;
} sandbox_flags;

static int whole(const char *name, const char *text, int64_t min, int64_t max, int64_t *out)
{
    if (!text)
        return 0;
    if (str_to_int64(text, out) != 0 || *out < min || *out > max) {
        fprintf(stderr, "f3connect sandbox: --%s must be an integer between %lld and %lld\n", name,
                (long long)min, (long long)max);
        return -1;
    }
    return 0;
}

static int fraction(const char *name, const char *text, double min, double max, double *out)
{
    if (!text)
        return 0;
    char *end = NULL;
    double v = strtod(text, &end);
    if (!end || end == text || *end || !isfinite(v) || v < min || v > max) {
        fprintf(stderr, "f3connect sandbox: --%s must be a number between %g and %g\n", name, min,
                max);
        return -1;
    }
    *out = v;
    return 0;
}

static int args_of(const sandbox_flags *f, const config *c, sandbox_args *a)
{
    int64_t orders = 0, print_ms = f->until_done ? 300 : 3000, kills = 0, port = 0;
    int64_t timeout = 600, seed = 0;
    *a = (sandbox_args){.rate = f->until_done ? 20.0 : 0.25,
                        .print_fail = 0.05,
                        .cancel_rate = 0.1,
                        .unmapped_rate = 0.1,
                        .until_done = f->until_done};
    port = config_get_int(c, "PORT");
    if (whole("orders", f->orders, 0, 1000000, &orders) ||
        whole("print-ms", f->print_ms, 0, 3600000, &print_ms) ||
        whole("kills", f->kills, 0, 10000, &kills) ||
        whole("timeout", f->timeout, 1, 86400, &timeout) ||
        whole("seed", f->seed, 0, INT64_MAX, &seed) ||
        fraction("rate", f->rate, 0.01, 10000, &a->rate) ||
        fraction("print-fail-rate", f->print_fail, 0, 0.9, &a->print_fail) ||
        fraction("cancel-rate", f->cancel_rate, 0, 1, &a->cancel_rate) ||
        fraction("unmapped-rate", f->unmapped_rate, 0, 1, &a->unmapped_rate) ||
        fraction("provider-faults", f->faults, 0, 1, &a->faults) ||
        fraction("duplicate-rate", f->duplicate_rate, 0, 1, &a->duplicate_rate) ||
        fraction("drop-rate", f->drop_rate, 0, 0.9, &a->drop_rate))
        return -1;
    if (a->cancel_rate + a->unmapped_rate > 1) {
        fputs("f3connect sandbox: --cancel-rate and --unmapped-rate add up to more than 1\n",
              stderr);
        return -1;
    }
    if (f->until_done && orders == 0) {
        fputs("f3connect sandbox: --until-done needs --orders N\n", stderr);
        return -1;
    }
    a->orders = (long)orders;
    a->print_ms = (long)print_ms;
    a->kills = (int)kills;
    a->port = (int)port;
    a->timeout_s = (long)timeout;
    a->seed = (uint64_t)seed;
    a->data_dir = f->data_dir ? f->data_dir : "sandbox-data";
    a->database_url = f->database_url;
    a->summary_json = f->summary_json;
    if (a->summary_json && !f->until_done) {
        fputs("f3connect sandbox: --summary-json needs --until-done\n", stderr);
        return -1;
    }
    return 0;
}

int cmd_sandbox(int argc, char **argv)
{
    sandbox_flags f = {0};
    const cli_switch switches[] = {{"until-done", &f.until_done}, {NULL, NULL}};
    const cli_option options[] = {
        {"orders", &f.orders},
        {"rate", &f.rate},
        {"print-ms", &f.print_ms},
        {"print-fail-rate", &f.print_fail},
        {"cancel-rate", &f.cancel_rate},
        {"unmapped-rate", &f.unmapped_rate},
        {"provider-faults", &f.faults},
        {"duplicate-rate", &f.duplicate_rate},
        {"drop-rate", &f.drop_rate},
        {"kills", &f.kills},
        {"data-dir", &f.data_dir},
        {"timeout", &f.timeout},
        {"seed", &f.seed},
        {"summary-json", &f.summary_json},
        {NULL, NULL},
    };
    int code;
    config *c = cli_load_config("sandbox", argc, argv, switches, options, NULL, 0, NULL, &code);
    if (!c)
        return code;
    /* --port and --database-url are the platform's own settings (PORT, DATABASE_URL);
     * a database named only in the environment is not taken over by the sandbox. */
    f.database_url =
        str_eq(config_source(c, "DATABASE_URL"), "flag") ? config_get(c, "DATABASE_URL") : NULL;
    /* The simulators in this process log every request; a user watching the sandbox wants
     * the watch line, so they say only what goes wrong unless LOG_LEVEL asks for more. The
     * platform logs to its own file in the data directory. */
    bool quiet = str_eq(config_source(c, "LOG_LEVEL"), "default");
    log_set_level(quiet ? LOG_WARN : (log_level)log_level_parse(config_get(c, "LOG_LEVEL")));
    sandbox_args a;
    int status = 2;
    if (args_of(&f, c, &a) == 0) {
        status = 1;
        if (http_client_init() == 0) {
            status = sandbox_run(&a);
            http_client_cleanup();
        }
    }
    config_free(c);
    return status;
}
