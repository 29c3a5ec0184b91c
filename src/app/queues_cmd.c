/*
 * queues_cmd.c - `f3connect queues ...`: the queue operations of the admin API from the
 * command line, working directly on the configured database.
 *
 * Human-readable tables by default, --json for the same JSON shapes the HTTP API answers
 * with (bus/admin_http.h). Exit codes: 0 ok, 1 not found / refused / failure, 2 misuse.
 * It must not hold business rules: every rule about jobs is the store's.
 */
#include "app/commands.h"
#include "app/store.h"

#include "bus/admin_http.h"
#include "bus/catalog.h"
#include "bus/queue.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUES_LIMIT_DEFAULT 50
#define QUEUES_LIMIT_MAX     500
#define QUEUES_REASON_WIDTH  60

/* What a subcommand was given, once parsed and checked. */
typedef struct queues_args {
    const char *queue;
    const char *id;
    bus_state state;
    int64_t offset, limit, older_than_ms;
    bool all, json;
} queues_args;

typedef int (*queues_fn)(bus_store *s, const queues_args *a);

/* The options a subcommand accepts, as flags. */
enum {
    OPT_STATE = 1 << 0,
    OPT_PAGING = 1 << 1, /* --offset, --limit */
    OPT_ALL = 1 << 2,
    OPT_OLDER = 1 << 3, /* --older-than; also --limit */
};

typedef struct queues_sub {
    const char *name;
    int min_args, max_args; /* positional words after the subcommand */
    unsigned opts;
    queues_fn run;
} queues_sub;

/* ---- output helpers ------------------------------------------------------------------- */

static void print_json(json_t *v)
{
    char *text = v ? json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (text)
        puts(text);
    else
        fputs("f3connect queues: out of memory\n", stderr);
    free(text);
    json_decref(v);
}

static void print_time(const char *label, int64_t ms)
{
    char iso[CLOCK_ISO_LEN] = "-";
    if (ms > 0)
        clock_format_iso(ms, iso);
    printf("%-16s %s\n", label, iso);
}

/* A store failure: 1 for not found, conflicts and I/O; 2 for input the store refused. */
static int failed(int rc, const err *e)
{
    fprintf(stderr, "f3connect queues: %s\n", e->msg);
    return rc == F3_EINVAL ? 2 : 1;
}

/* 0 if the queue has jobs, settings or repeatables; else prints why and returns 1. */
static int queue_exists(bus_store *s, const char *queue)
{
    char **names = NULL;
    size_t n = 0;
    err e;
    err_clear(&e);
    int rc = bus_store_queue_names(s, &names, &n, &e);
    if (rc)
        return failed(rc, &e);
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
        found = strcmp(names[i], queue) == 0;
    bus_names_free(names, n);
    if (!found)
        fprintf(stderr, "f3connect queues: queue not found: %s\n", queue);
    return found ? 0 : 1;
}

/* ---- subcommands ---------------------------------------------------------------------- */

static int queues_list(bus_store *s, const queues_args *a)
{
    char **names = NULL;
    size_t n = 0;
    err e;
    err_clear(&e);
    int rc = bus_store_queue_names(s, &names, &n, &e);
    if (rc)
        return failed(rc, &e);
    int64_t now = clock_now_ms();
    json_t *arr = a->json ? json_array() : NULL;
    if (!a->json)
        printf("%-44s %-6s %8s %11s %8s %7s %9s %7s\n", "QUEUE", "PAUSED", "WAITING", "PRIORITIZED",
               "DELAYED", "ACTIVE", "COMPLETED", "FAILED");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        bus_counts c;
        if ((rc = bus_store_counts(s, names[i], now, &c, &e)))
            break;
        if (a->json) {
            json_array_append_new(arr, json_pack("{s:s, s:b, s:o}", "name", names[i], "paused",
                                                 c.paused, "counts", bus_admin_counts_json(&c)));
            continue;
        }
        printf("%-44s %-6s %8" PRId64 " %11" PRId64 " %8" PRId64 " %7" PRId64 " %9" PRId64
               " %7" PRId64 "\n",
               names[i], c.paused ? "yes" : "no", c.n[BUS_STATE_WAITING],
               c.n[BUS_STATE_PRIORITIZED], c.n[BUS_STATE_DELAYED], c.n[BUS_STATE_ACTIVE],
               c.n[BUS_STATE_COMPLETED], c.n[BUS_STATE_FAILED]);
    }
    bus_names_free(names, n);
    if (rc) {
        json_decref(arr);
        return failed(rc, &e);
    }
    if (a->json)
        print_json(json_pack("{s:o}", "queues", arr));
    return 0;
}

static int queues_show(bus_store *s, const queues_args *a)
{
    int rc = queue_exists(s, a->queue);
    if (rc)
        return rc;
    err e;
    err_clear(&e);
    bus_counts c;
    bus_queue_settings set;
    bus_repeatable_info *reps = NULL;
    size_t n = 0;
    if ((rc = bus_store_counts(s, a->queue, clock_now_ms(), &c, &e)) ||
        (rc = bus_store_settings_get(s, a->queue, &set, &e)) ||
        (rc = bus_store_repeatables_list(s, a->queue, &reps, &n, &e)))
        return failed(rc, &e);
    if (a->json) {
        print_json(json_pack("{s:s, s:b, s:o, s:o, s:o}", "name", a->queue, "paused", c.paused,
                             "counts", bus_admin_counts_json(&c), "settings",
                             bus_admin_settings_json(&set), "repeatables",
                             bus_admin_repeatables_json(reps, n)));
        bus_repeatables_free(reps, n);
        return 0;
    }
    printf("%-16s %s\n%-16s %s\n", "queue", a->queue, "paused", c.paused ? "yes" : "no");
    for (int i = 0; i < BUS_STATE_COUNT; i++)
        printf("%-16s %" PRId64 "\n", bus_state_name((bus_state)i), c.n[i]);
    printf("%-16s %d\n%-16s %d\n%-16s %d\n", "keep completed", set.keep_completed, "keep failed",
           set.keep_failed, "max stalled", set.max_stalled);
    for (size_t i = 0; i < n; i++) {
        char iso[CLOCK_ISO_LEN];
        clock_format_iso(reps[i].next_run_at, iso);
        if (reps[i].cron)
            printf("repeatable       %s (%s) cron '%s', next %s\n", reps[i].repeat_id, reps[i].name,
                   reps[i].cron, iso);
        else
            printf("repeatable       %s (%s) every %" PRId64 " ms, next %s\n", reps[i].repeat_id,
                   reps[i].name, reps[i].every_ms, iso);
    }
    bus_repeatables_free(reps, n);
    return 0;
}

static int queues_jobs(bus_store *s, const queues_args *a)
{
    int rc = queue_exists(s, a->queue);
    if (rc)
        return rc;
    err e;
    err_clear(&e);
    bus_job **jobs = NULL;
    size_t n = 0;
    rc = bus_store_list(s, a->queue, a->state, a->offset, a->limit, clock_now_ms(), &jobs, &n, &e);
    if (rc)
        return failed(rc, &e);
    if (a->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, bus_admin_job_json(jobs[i], false));
        print_json(json_pack("{s:s, s:s, s:I, s:I, s:o}", "queue", a->queue, "state",
                             bus_state_name(a->state), "offset", (json_int_t)a->offset, "limit",
                             (json_int_t)a->limit, "jobs", arr));
    } else {
        printf("%-40s %-24s %-11s %-8s %-24s %s\n", "ID", "NAME", "STATE", "ATTEMPTS", "CREATED",
               "LAST ERROR");
        for (size_t i = 0; i < n; i++) {
            const bus_job *j = jobs[i];
            char created[CLOCK_ISO_LEN], attempts[24];
            clock_format_iso(j->created_at, created);
            snprintf(attempts, sizeof attempts, "%d/%d", j->attempts_made, j->max_attempts);
            printf("%-40s %-24s %-11s %-8s %-24s %.*s\n", j->id, j->name, bus_state_name(j->state),
                   attempts, created, QUEUES_REASON_WIDTH,
                   j->failed_reason ? j->failed_reason : "");
        }
        if (n == 0)
            printf("(no %s jobs)\n", bus_state_name(a->state));
    }
    bus_jobs_free(jobs, n);
    return 0;
}

/* The attempts' errors, one line each, from the stored JSON array. */
static void print_errors(const char *errors)
{
    json_t *arr = errors ? json_loads(errors, 0, NULL) : NULL;
    size_t i;
    json_t *x;
    if (json_array_size(arr) == 0)
        printf("%-16s -\n", "errors");
    json_array_foreach(arr, i, x)
    {
        char at[CLOCK_ISO_LEN];
        clock_format_iso((int64_t)json_integer_value(json_object_get(x, "at")), at);
        printf("%-16s attempt %" JSON_INTEGER_FORMAT " at %s: %s\n", i == 0 ? "errors" : "",
               json_integer_value(json_object_get(x, "attempt")), at,
               json_string_value(json_object_get(x, "error"))
                   ? json_string_value(json_object_get(x, "error"))
                   : "");
    }
    json_decref(arr);
}

static int queues_job(bus_store *s, const queues_args *a)
{
    err e;
    err_clear(&e);
    bus_job *j = NULL;
    int rc = bus_store_get(s, a->queue, a->id, clock_now_ms(), &j, &e);
    if (rc)
        return failed(rc, &e);
    if (a->json) {
        print_json(bus_admin_job_json(j, true));
        bus_job_free(j);
        return 0;
    }
    printf("%-16s %s\n%-16s %s\n%-16s %s\n%-16s %s\n", "id", j->id, "queue", j->queue, "name",
           j->name, "state", bus_state_name(j->state));
    printf("%-16s %d\n%-16s %d of %d (started %d, stalled %d)\n", "priority", j->priority,
           "attempts", j->attempts_made, j->max_attempts, j->attempts_started, j->stalled_count);
    printf("%-16s %s %" PRId64 " ms\n", "backoff",
           j->backoff.type == BUS_BACKOFF_FIXED ? "fixed" : "exponential", j->backoff.delay_ms);
    print_time("created", j->created_at);
    print_time("run at", j->run_at);
    print_time("processed", j->processed_at);
    print_time("finished", j->finished_at);
    printf("%-16s %s\n", "failed reason", j->failed_reason ? j->failed_reason : "-");
    print_errors(j->errors);
    printf("%-16s %s\n", "return value", j->return_value ? j->return_value : "-");
    printf("%-16s %s\n", "data", j->data);
    bus_job_free(j);
    return 0;
}

static int queues_retry(bus_store *s, const queues_args *a)
{
    if (!a->id) {
        int rc = queue_exists(s, a->queue);
        if (rc)
            return rc;
    }
    err e;
    err_clear(&e);
    int64_t count = 0;
    int rc = bus_store_retry(s, a->queue, a->id, clock_now_ms(), &count, &e);
    if (rc)
        return failed(rc, &e);
    if (a->json)
        print_json(json_pack("{s:I}", "retried", (json_int_t)count));
    else
        printf("retried %" PRId64 " job%s\n", count, count == 1 ? "" : "s");
    return 0;
}

static int queues_remove(bus_store *s, const queues_args *a)
{
    err e;
    err_clear(&e);
    int rc = bus_store_remove(s, a->queue, a->id, &e);
    if (rc)
        return failed(rc, &e);
    if (a->json)
        print_json(json_pack("{s:s, s:b}", "id", a->id, "removed", 1));
    else
        printf("removed job %s\n", a->id);
    return 0;
}

static int queues_clean(bus_store *s, const queues_args *a)
{
    int rc = queue_exists(s, a->queue);
    if (rc)
        return rc;
    err e;
    err_clear(&e);
    int64_t count = 0;
    rc = bus_store_clean(s, a->queue, a->state, a->older_than_ms, a->limit, clock_now_ms(), &count,
                         &e);
    if (rc)
        return failed(rc, &e);
    if (a->json)
        print_json(json_pack("{s:I}", "cleaned", (json_int_t)count));
    else
        printf("cleaned %" PRId64 " %s job%s\n", count, bus_state_name(a->state),
               count == 1 ? "" : "s");
    return 0;
}

/* As the admin API: a queue the catalog names may be paused before its first job. */
static int set_paused(bus_store *s, const queues_args *a, bool paused)
{
    if (!bus_catalog_has_queue(a->queue) && queue_exists(s, a->queue) != 0)
        return 1;
    err e;
    err_clear(&e);
    int rc = bus_store_pause(s, a->queue, paused, &e);
    if (rc)
        return failed(rc, &e);
    if (a->json)
        print_json(json_pack("{s:s, s:b}", "name", a->queue, "paused", paused));
    else
        printf("queue %s %s\n", a->queue, paused ? "paused" : "resumed");
    return 0;
}

static int queues_pause(bus_store *s, const queues_args *a)
{
    return set_paused(s, a, true);
}

static int queues_resume(bus_store *s, const queues_args *a)
{
    return set_paused(s, a, false);
}

static const queues_sub queues_subs[] = {
    {"list", 0, 0, 0, queues_list},
    {"show", 1, 1, 0, queues_show},
    {"jobs", 1, 1, OPT_STATE | OPT_PAGING, queues_jobs},
    {"job", 2, 2, 0, queues_job},
    {"retry", 1, 2, OPT_ALL, queues_retry},
    {"remove", 2, 2, 0, queues_remove},
    {"clean", 1, 1, OPT_STATE | OPT_OLDER, queues_clean},
    {"pause", 1, 1, 0, queues_pause},
    {"resume", 1, 1, 0, queues_resume},
};

/* ---- argument checks ------------------------------------------------------------------ */

static int misuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int misuse(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("f3connect queues: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nRun 'f3connect queues --help' for usage.\n", stderr);
    va_end(ap);
    return 2;
}

/* "90000", "500ms", "30s", "15m", "2h", "7d" -> ms; -1 if malformed. */
static int64_t parse_duration(const char *s)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    char *end = NULL;
    if (!s || !*s || *s < '0' || *s > '9')
        return -1;
    long long v = strtoll(s, &end, 10);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].suffix) == 0)
            return v <= INT64_MAX / units[i].ms ? v * units[i].ms : -1;
    return -1;
}

static int parse_count(const char *name, const char *v, int64_t min, int64_t max, int64_t *out)
{
    int64_t n = 0;
    if (str_to_int64(v, &n) != 0 || n < min || n > max)
        return misuse("--%s must be an integer from %" PRId64 " to %" PRId64, name, min, max);
    *out = n;
    return 0;
}

typedef struct queues_flags {
    const char *state, *offset, *limit, *older_than;
    bool all, json;
} queues_flags;

/* Checks the options against what the subcommand accepts and fills a. 0 or 2. */
static int check_args(const queues_sub *sub, const queues_flags *f, queues_args *a)
{
    const struct {
        const char *name;
        bool given;
        unsigned needs;
    } given[] = {
        {"--state", f->state != NULL, OPT_STATE},
        {"--offset", f->offset != NULL, OPT_PAGING},
        {"--limit", f->limit != NULL, OPT_PAGING | OPT_OLDER},
        {"--older-than", f->older_than != NULL, OPT_OLDER},
        {"--all", f->all, OPT_ALL},
    };
    for (size_t i = 0; i < sizeof given / sizeof given[0]; i++)
        if (given[i].given && !(sub->opts & given[i].needs))
            return misuse("%s does not apply to '%s'", given[i].name, sub->name);
    a->all = f->all;
    a->json = f->json;
    a->state = strcmp(sub->name, "clean") == 0 ? BUS_STATE_COMPLETED : BUS_STATE_WAITING;
    a->limit = sub->opts & OPT_PAGING ? QUEUES_LIMIT_DEFAULT : 0;
    if (f->state) {
        int st = bus_state_parse(f->state);
        if (st < 0 || ((sub->opts & OPT_OLDER) && st == BUS_STATE_ACTIVE))
            return misuse("--state: '%s' is not a state (waiting, prioritized, delayed, active, "
                          "completed, failed; clean takes all but active)",
                          f->state);
        a->state = (bus_state)st;
    }
    int rc = 0;
    if (f->offset && (rc = parse_count("offset", f->offset, 0, INT32_MAX, &a->offset)))
        return rc;
    if (f->limit &&
        (rc = parse_count("limit", f->limit, sub->opts & OPT_PAGING ? 1 : 0,
                          sub->opts & OPT_PAGING ? QUEUES_LIMIT_MAX : INT32_MAX, &a->limit)))
        return rc;
    if (sub->opts & OPT_OLDER) {
        if (!f->state || !f->older_than)
            return misuse("%s needs --state S and --older-than DURATION", sub->name);
        if ((a->older_than_ms = parse_duration(f->older_than)) < 0)
            return misuse("--older-than: '%s' is not a duration (90000, 500ms, 30s, 15m, 2h, 7d)",
                          f->older_than);
    }
    if ((sub->opts & OPT_ALL) && (a->id != NULL) == a->all)
        return misuse("%s", "retry takes a job ID or --all (not both)");
    return 0;
}

int cmd_queues(int argc, char **argv)
{
    queues_flags f = {0};
    const cli_switch switches[] = {{"json", &f.json}, {"all", &f.all}, {NULL, NULL}};
    const cli_option options[] = {{"state", &f.state},
                                  {"offset", &f.offset},
                                  {"limit", &f.limit},
                                  {"older-than", &f.older_than},
                                  {NULL, NULL}};
    const char *pos[4] = {0};
    int npos = 0, code = 0;
    config *c = cli_load_config("queues", argc, argv, switches, options, pos, 4, &npos, &code);
    if (!c)
        return code;
    log_set_level((log_level)log_level_parse(config_get(c, "LOG_LEVEL")));
    const queues_sub *sub = NULL;
    for (size_t i = 0; npos > 0 && i < sizeof queues_subs / sizeof queues_subs[0]; i++)
        if (strcmp(queues_subs[i].name, pos[0]) == 0)
            sub = &queues_subs[i];
    queues_args a = {0};
    if (npos == 0)
        code = misuse("%s", "missing subcommand (list, show, jobs, job, retry, remove, clean, "
                            "pause, resume)");
    else if (!sub)
        code = misuse("unknown subcommand '%s'", pos[0]);
    else if (npos - 1 < sub->min_args || npos - 1 > sub->max_args)
        code = misuse("wrong number of arguments for '%s'", sub->name);
    if (code == 0 && sub) {
        a.queue = npos > 1 ? pos[1] : NULL;
        a.id = npos > 2 ? pos[2] : NULL;
        code = check_args(sub, &f, &a);
    }
    db *d = NULL;
    bus_store *s = NULL;
    err e;
    err_clear(&e);
    if (code == 0 &&
        (store_open(c, &d, &e) || db_migrate(d, NULL, &e) || bus_store_open_sql(d, &s, &e))) {
        fprintf(stderr, "f3connect queues: %s\n", e.msg);
        code = 1;
    }
    if (code == 0 && sub)
        code = sub->run(s, &a);
    bus_store_close(s);
    db_close(d);
    config_free(c);
    return code;
}
