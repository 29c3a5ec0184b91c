/*
 * deadletter.c - the dead-letter watch: operator alerts for bus jobs that failed for good
 * (see deadletter.h). Reads jobs only through the bus store's operations API, so it works
 * the same over every store; writes only its own table and the alerts.
 *
 * A job's data comes from whoever published it: every piece of it that goes into an alert
 * is checked (ids by length and alphabet, text as valid UTF-8 of bounded length), and a job
 * whose alert still cannot be written is logged and left for the next scan, so one bad job
 * never stops the scan.
 */
#include "services/common/deadletter.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "services/common/notify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE      100
#define MAX_PAGES (BUS_DEFAULT_KEEP_FAILED / PAGE) /* every failed job a queue keeps */
#define ID_MAX    128                              /* ids of tenants, orders, jobs */
#define TEXT_MAX  300                              /* the last error, in the alert */
#define HOUR_MS   INT64_C(3600000)

struct deadletter {
    db *d;
    bus_store *s;
    char queue[96];
};

/* What an alert may say about one failed job, checked. */
typedef struct dead_job {
    const bus_job *job;
    char queue[BUS_QUEUE_NAME_MAX + 1]; /* as valid UTF-8 */
    char job_id[513];                   /* as valid UTF-8 (job ids are up to 512 bytes) */
    char tenant[ID_MAX + 1];            /* "" when the job names none (or not a usable one) */
    char event_type[ID_MAX + 1];
    char order_id[ID_MAX + 1];     /* "" if none */
    char print_job_id[ID_MAX + 1]; /* "" if none */
    char error[TEXT_MAX + 1];
} dead_job;

/* Per tenant seen in this scan: individual alerts it may still get this hour. */
typedef struct tenant_budget {
    char tenant[ID_MAX + 1];
    int left;
} tenant_budget;

typedef struct scan {
    deadletter *w;
    int64_t now;
    tenant_budget *budgets;
    int nbudgets, cap;
    int alerted;
} scan;

deadletter *deadletter_new(db *d, bus_store *s)
{
    deadletter *w = calloc(1, sizeof *w);
    if (w) {
        w->d = d;
        w->s = s;
    }
    return w;
}

void deadletter_free(deadletter *w)
{
    free(w);
}

/* ---- reading a job ---------------------------------------------------------------------- */

/* Copies v into out when it is a usable id: 1..ID_MAX characters of [A-Za-z0-9._:@#-]. */
static void copy_id(char out[ID_MAX + 1], const char *v)
{
    out[0] = '\0';
    size_t n = v ? strlen(v) : 0;
    if (n == 0 || n > ID_MAX ||
        strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@#-") != n)
        return;
    memcpy(out, v, n + 1);
}

static const char *string_of(const json_t *env, const char *field)
{
    return json_string_value(json_object_get(env, field));
}

static void dead_job_read(dead_job *dj, const bus_job *j)
{
    memset(dj, 0, sizeof *dj);
    dj->job = j;
    json_t *env = j->data ? json_loads(j->data, 0, NULL) : NULL;
    copy_id(dj->tenant, string_of(env, "tenantId"));
    copy_id(dj->event_type, string_of(env, "eventType"));
    copy_id(dj->order_id, string_of(env, "orderId"));
    copy_id(dj->print_job_id, string_of(env, "printJobId"));
    json_decref(env);
    str_utf8_copy(dj->queue, sizeof dj->queue, j->queue);
    str_utf8_copy(dj->job_id, sizeof dj->job_id, j->id);
    if (!dj->event_type[0])
        copy_id(dj->event_type, j->name);
    if (!dj->event_type[0])
        snprintf(dj->event_type, sizeof dj->event_type, "(unnamed)");
    const char *reason = j->failed_reason ? j->failed_reason : "no error recorded";
    str_utf8_copy(dj->error, sizeof dj->error - 3, reason);
    if (strlen(reason) > strlen(dj->error)) /* cut short */
        strcat(dj->error, "...");
}

/* ---- the table -------------------------------------------------------------------------- */

/* Whether (queue, id, finished_at) has been dealt with already. */
static int already_seen(db_conn *c, const bus_job *j, bool *out, err *e)
{
    char at[24], one[8];
    db_ms_text(j->finished_at, at);
    const char *p[] = {j->queue, j->id, at};
    int rc = db_query_text(c,
                           "SELECT 1 FROM bus_dead_letter_alerts WHERE queue = $1 AND job_id = $2"
                           " AND finished_at = CAST($3 AS BIGINT)",
                           p, 3, one, sizeof one, e);
    *out = rc == DB_ROW;
    return rc < 0 ? rc : 0;
}

/* Records the job as dealt with (kind, tenant may be ""); *added = false when another
 * instance did it first. */
static int record(db_conn *tx, const dead_job *dj, const char *kind, int64_t now, bool *added,
                  err *e)
{
    char at[24], now_text[24];
    db_ms_text(dj->job->finished_at, at);
    db_ms_text(now, now_text);
    const char *p[] = {dj->job->queue, dj->job->id, at, dj->tenant[0] ? dj->tenant : NULL,
                       kind,           now_text};
    int64_t n = 0;
    int rc = db_exec_texts(tx,
                           "INSERT INTO bus_dead_letter_alerts (queue, job_id, finished_at,"
                           " tenant_id, kind, alerted_at) VALUES ($1, $2, CAST($3 AS BIGINT),"
                           " $4, $5, CAST($6 AS BIGINT)) ON CONFLICT DO NOTHING",
                           p, 6, &n, e);
    *added = n > 0;
    return rc;
}

static int tenant_exists(db_conn *c, const char *tenant, bool *out, err *e)
{
    char one[8];
    const char *p[] = {tenant};
    int rc = db_query_text(c, "SELECT 1 FROM tenants WHERE id = $1", p, 1, one, sizeof one, e);
    *out = rc == DB_ROW;
    return rc < 0 ? rc : 0;
}

/* COUNT(*) of sql over $1 = tenant, $2 = since (ms). */
static int count_since(db_conn *c, const char *sql, const char *tenant, int64_t since, int64_t *out,
                       err *e)
{
    char since_text[24], n[24];
    db_ms_text(since, since_text);
    const char *p[] = {tenant, since_text};
    int rc = db_query_text(c, sql, p, 2, n, sizeof n, e);
    *out = rc == DB_ROW ? strtoll(n, NULL, 10) : 0;
    return rc < 0 ? rc : 0;
}

/* ---- one job ---------------------------------------------------------------------------- */

static json_t *alert_fields(const dead_job *dj)
{
    const bus_job *j = dj->job;
    char message[512];
    snprintf(message, sizeof message,
             "Event %s could not be handled (queue %s) and was set aside after %d attempt%s;"
             " retry it from the queue once the cause is fixed",
             dj->event_type, dj->queue, j->attempts_made, j->attempts_made == 1 ? "" : "s");
    json_t *f = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s}", "message", message, "queue", dj->queue,
                          "jobId", dj->job_id, "eventType", dj->event_type, "attempts",
                          j->attempts_made, "error", dj->error);
    if (f && dj->order_id[0])
        json_object_set_new(f, "orderId", json_string(dj->order_id));
    if (f && dj->print_job_id[0])
        json_object_set_new(f, "printJobId", json_string(dj->print_job_id));
    return f;
}

typedef struct job_tx {
    const dead_job *dj;
    int64_t now;
    bool hold;        /* in: the tenant's hourly allowance is used up */
    bool bare;        /* in: alert with bare_fields */
    bool added;       /* out: this call recorded the job */
    const char *kind; /* out: how */
} job_tx;

static int job_fn(db_conn *tx, void *ctx, err *e)
{
    job_tx *t = ctx;
    bool known = false;
    int rc = t->dj->tenant[0] ? tenant_exists(tx, t->dj->tenant, &known, e) : 0;
    if (rc)
        return rc;
    t->kind = !known ? "SKIPPED" : t->hold ? "HELD" : "ALERTED";
    rc = record(tx, t->dj, t->kind, t->now, &t->added, e);
    if (rc || !t->added || strcmp(t->kind, "ALERTED") != 0)
        return rc;
    json_t *f = alert_fields(t->dj);
    if (!f)
        return err_set(e, F3_ENOMEM, "out of memory building an alert");
    rc = notify_alert(tx, t->dj->tenant, NOTIFY_EVENT_DEAD_LETTERED, f, e);
    json_decref(f);
    return rc;
}

/* The individual alerts the tenant may still get this hour (looked up once per scan). */
static int budget_of(scan *sc, db_conn *c, const char *tenant, tenant_budget **out, err *e)
{
    for (int i = 0; i < sc->nbudgets; i++) {
        if (strcmp(sc->budgets[i].tenant, tenant) == 0) {
            *out = &sc->budgets[i];
            return 0;
        }
    }
    int64_t used = 0;
    int rc = count_since(c,
                         "SELECT COUNT(*) FROM bus_dead_letter_alerts WHERE tenant_id = $1"
                         " AND kind = 'ALERTED' AND alerted_at > CAST($2 AS BIGINT)",
                         tenant, sc->now - HOUR_MS, &used, e);
    if (rc)
        return rc;
    if (sc->nbudgets == sc->cap) {
        int cap = sc->cap ? sc->cap * 2 : 4;
        tenant_budget *grown = realloc(sc->budgets, (size_t)cap * sizeof *grown);
        if (!grown)
            return err_set(e, F3_ENOMEM, "out of memory");
        sc->budgets = grown;
        sc->cap = cap;
    }
    tenant_budget *b = &sc->budgets[sc->nbudgets++];
    snprintf(b->tenant, sizeof b->tenant, "%s", tenant);
    b->left = DEADLETTER_ALERTS_PER_HOUR - (int)used;
    *out = b;
    return 0;
}

/* Deals with one failed job not seen before. A job whose alert cannot be written is
 * logged and left for the next scan; the scan goes on. */
static int one_job(scan *sc, db_conn *c, const bus_job *j, err *e)
{
    dead_job dj;
    dead_job_read(&dj, j);
    tenant_budget *b = NULL;
    int rc = dj.tenant[0] ? budget_of(sc, c, dj.tenant, &b, e) : 0;
    if (rc)
        return rc;
    job_tx t = {.dj = &dj, .now = sc->now, .hold = b && b->left <= 0};
    err je = {0};
    if (db_tx(c, job_fn, &t, &je) != 0) {
        log_error("cannot alert a dead-lettered job; trying again next scan", "queue", dj.queue,
                  "jobId", dj.job_id, "reason", je.msg);
        return 0;
    }
    if (t.added && strcmp(t.kind, "SKIPPED") == 0)
        log_error("a bus job without a known tenant failed for good; retry it from the queue",
                  "queue", dj.queue, "jobId", dj.job_id, "event", dj.event_type);
    if (t.added && strcmp(t.kind, "ALERTED") == 0 && b) { /* a known tenant has a budget */
        b->left--;
        sc->alerted++;
    }
    return 0;
}

/* Deals with the page's jobs newer than since; *older = the page reached older ones. */
static int scan_page(scan *sc, bus_job **jobs, size_t n, int64_t since, bool *older, err *e)
{
    db_conn *c = db_acquire(sc->w->d, e);
    if (!c)
        return db_err_code(e);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n && !*older; i++) {
        bool seen = false;
        *older = jobs[i]->finished_at < since;
        rc = *older ? 0 : already_seen(c, jobs[i], &seen, e);
        if (rc == 0 && !*older && !seen)
            rc = one_job(sc, c, jobs[i], e);
    }
    db_release(c);
    return rc;
}

/* The failed jobs of one queue, newest first, back to the lookback bound. */
static int scan_queue(scan *sc, const char *queue, err *e)
{
    int64_t since = sc->now - DEADLETTER_LOOKBACK_MS;
    int rc = 0;
    bool older = false;
    for (int page = 0; rc == 0 && !older && page < MAX_PAGES; page++) {
        bus_job **jobs = NULL;
        size_t n = 0;
        rc = bus_store_list(sc->w->s, queue, BUS_STATE_FAILED, (int64_t)page * PAGE, PAGE, sc->now,
                            &jobs, &n, e);
        rc = rc ? rc : scan_page(sc, jobs, n, since, &older, e);
        bus_jobs_free(jobs, n);
        if (n < PAGE)
            break;
    }
    return rc;
}

/* ---- storms ----------------------------------------------------------------------------- */

typedef struct storm_tx {
    const char *tenant;
    int64_t now;
    int64_t counted; /* out */
} storm_tx;

/* When the tenant had no storm alert this hour: one alert counting its held jobs, which
 * become STORM (SKIPPED when the tenant is gone meanwhile). */
static int storm_fn(db_conn *tx, void *ctx, err *e)
{
    storm_tx *st = ctx;
    st->counted = 0;
    int64_t recent = 0;
    bool known = false;
    int rc = count_since(tx,
                         "SELECT COUNT(*) FROM bus_dead_letter_alerts WHERE tenant_id = $1"
                         " AND kind = 'STORM' AND alerted_at > CAST($2 AS BIGINT)",
                         st->tenant, st->now - HOUR_MS, &recent, e);
    rc = rc ? rc : tenant_exists(tx, st->tenant, &known, e);
    if (rc || (known && recent > 0))
        return rc;
    char now_text[24];
    db_ms_text(st->now, now_text);
    const char *p[] = {st->tenant, now_text, known ? "STORM" : "SKIPPED"};
    rc = db_exec_texts(tx,
                       "UPDATE bus_dead_letter_alerts SET kind = $3,"
                       " alerted_at = CAST($2 AS BIGINT) WHERE tenant_id = $1 AND kind = 'HELD'",
                       p, 3, &st->counted, e);
    if (rc || !known || st->counted == 0)
        return rc;
    char message[320];
    snprintf(message, sizeof message,
             "%lld more events could not be handled and were set aside (alerts about single"
             " events are limited to %d an hour); see the failed jobs on the queues page and"
             " retry them once the cause is fixed",
             (long long)st->counted, DEADLETTER_ALERTS_PER_HOUR);
    json_t *f = json_pack("{s:s,s:I}", "message", message, "events", (json_int_t)st->counted);
    rc = f ? notify_alert(tx, st->tenant, NOTIFY_EVENT_DEAD_LETTERED, f, e)
           : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(f);
    return rc;
}

/* A storm alert for every tenant with held jobs and none this hour, tenant by tenant. */
static int storms(scan *sc, db_conn *c, err *e)
{
    char tenant[ID_MAX + 1] = "";
    for (;;) {
        const char *p[] = {tenant};
        char next[ID_MAX + 1];
        int rc = db_query_text(c,
                               "SELECT MIN(tenant_id) FROM bus_dead_letter_alerts"
                               " WHERE kind = 'HELD' AND tenant_id > $1",
                               p, 1, next, sizeof next, e);
        if (rc < 0)
            return rc;
        if (!next[0])
            return 0;
        memcpy(tenant, next, sizeof tenant);
        storm_tx st = {.tenant = tenant, .now = sc->now};
        if ((rc = db_tx(c, storm_fn, &st, e)) != 0)
            return rc;
        if (st.counted > 0)
            sc->alerted++;
    }
}

static int forget_old(db_conn *c, int64_t now, err *e)
{
    char before[24];
    db_ms_text(now - DEADLETTER_KEEP_MS, before);
    const char *p[] = {before};
    return db_exec_texts(c,
                         "DELETE FROM bus_dead_letter_alerts WHERE alerted_at < CAST($1 AS BIGINT)",
                         p, 1, NULL, e);
}

int deadletter_scan(deadletter *w, int64_t now_ms, int *alerted, err *e)
{
    if (alerted)
        *alerted = 0;
    scan sc = {.w = w, .now = now_ms ? now_ms : clock_now_ms()};
    char **names = NULL;
    size_t n = 0;
    int rc = bus_store_queue_names(w->s, &names, &n, e);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = scan_queue(&sc, names[i], e);
    bus_names_free(names, n);
    free(sc.budgets);
    db_conn *c = rc ? NULL : db_acquire(w->d, e);
    if (rc == 0 && !c)
        rc = db_err_code(e);
    rc = rc ? rc : storms(&sc, c, e);
    rc = rc ? rc : forget_old(c, sc.now, e);
    if (c)
        db_release(c);
    if (alerted)
        *alerted = sc.alerted;
    return rc;
}

/* ---- the repeatable job ----------------------------------------------------------------- */

static int watch_job(bus_delivery *dl, void *ctx, err *e)
{
    (void)dl;
    int alerted = 0;
    int rc = deadletter_scan(ctx, 0, &alerted, e);
    if (rc == 0 && alerted > 0) {
        char n[16];
        snprintf(n, sizeof n, "%d", alerted);
        log_warn("operators alerted of dead-lettered jobs", "alerts", n);
    }
    return rc;
}

int deadletter_schedule(deadletter *w, bus *b, err *e)
{
    snprintf(w->queue, sizeof w->queue, "%s@%s", DEADLETTER_JOB, bus_service_name(bus_self(b)));
    bus_queue_opts one = {.concurrency = 1};
    int rc = bus_worker_register(bus_worker_of(b), w->queue, watch_job, w, &one, e);
    if (rc)
        return rc;
    bus_repeatable r = {.queue = w->queue,
                        .repeat_id = "dead-letter-watch",
                        .name = DEADLETTER_JOB,
                        .data = "{}",
                        .every_ms = DEADLETTER_SCAN_MS};
    return bus_store_repeatable_upsert(w->s, &r, clock_now_ms(), e);
}
