/*
 * deadletter.c - the dead-letter watch: operator alerts for bus jobs that failed for good
 * (see deadletter.h). Reads jobs only through the bus store's operations API, so it works
 * the same over every store; writes only its own table and the alerts.
 */
#include "services/common/deadletter.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "services/common/notify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE      100
#define MAX_PAGES 10  /* newest 1,000 failed jobs of a queue per scan */
#define ID_MAX    128 /* longer tenant ids are not ours */
#define ERROR_MAX 300 /* of the last error, in the alert */

struct deadletter {
    db *d;
    bus_store *s;
    char queue[96];
};

/* A failed job found without an alert yet. */
typedef struct dead_job {
    const bus_job *job;
    char tenant[ID_MAX];      /* "" when the job names none */
    const char *event_type;   /* borrowed from env */
    const char *order_id;     /* borrowed from env; NULL if none */
    const char *print_job_id; /* borrowed from env; NULL if none */
    json_t *env;              /* the job's data as parsed; NULL if not JSON */
} dead_job;

/* A job whose alert is left to the tenant's storm alert of this scan. */
typedef struct held_job {
    char queue[128];
    char id[128];
    int64_t finished_at;
} held_job;

/* Per tenant: alerts raised one by one in this scan, and the jobs held for the storm. */
typedef struct tenant_tally {
    char tenant[ID_MAX];
    int sent;
    held_job *held;
    int nheld, cap;
} tenant_tally;

typedef struct scan {
    deadletter *w;
    int64_t now;
    tenant_tally *tenants;
    int ntenants, cap;
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

static void dead_job_read(dead_job *dj, const bus_job *j)
{
    memset(dj, 0, sizeof *dj);
    dj->job = j;
    dj->env = j->data ? json_loads(j->data, 0, NULL) : NULL;
    const char *tenant = NULL;
    if (json_is_object(dj->env)) {
        json_opt_string(dj->env, "tenantId", &tenant, NULL, NULL);
        json_opt_string(dj->env, "eventType", &dj->event_type, NULL, NULL);
        json_opt_string(dj->env, "orderId", &dj->order_id, NULL, NULL);
        json_opt_string(dj->env, "printJobId", &dj->print_job_id, NULL, NULL);
    }
    if (tenant && strlen(tenant) < sizeof dj->tenant)
        snprintf(dj->tenant, sizeof dj->tenant, "%s", tenant);
    if (!dj->event_type)
        dj->event_type = j->name ? j->name : "(unnamed)";
}

static void dead_job_free(dead_job *dj)
{
    json_decref(dj->env);
}

/* Whether (queue, id, finished_at) has been alerted (or held) already. */
static int already_alerted(db_conn *c, const bus_job *j, bool *out, err *e)
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

/* Records (queue, id, finished_at) in tx; *added = false when another instance did. */
static int record(db_conn *tx, const char *queue, const char *id, int64_t finished_at, int64_t now,
                  bool *added, err *e)
{
    char at[24], now_text[24];
    db_ms_text(finished_at, at);
    db_ms_text(now, now_text);
    const char *p[] = {queue, id, at, now_text};
    int64_t n = 0;
    int rc = db_exec_texts(tx,
                           "INSERT INTO bus_dead_letter_alerts (queue, job_id, finished_at,"
                           " alerted_at) VALUES ($1, $2, CAST($3 AS BIGINT), CAST($4 AS BIGINT))"
                           " ON CONFLICT DO NOTHING",
                           p, 4, &n, e);
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

/* ---- one alert -------------------------------------------------------------------------- */

static json_t *alert_fields(const dead_job *dj)
{
    const bus_job *j = dj->job;
    char error[ERROR_MAX + 4];
    const char *reason = j->failed_reason ? j->failed_reason : "no error recorded";
    snprintf(error, sizeof error, "%.*s%s", ERROR_MAX, reason,
             strlen(reason) > ERROR_MAX ? "..." : "");
    char message[512];
    snprintf(message, sizeof message,
             "Event %s could not be handled (queue %s) and was set aside after %d attempt%s;"
             " retry it from the queue once the cause is fixed",
             dj->event_type, j->queue, j->attempts_made, j->attempts_made == 1 ? "" : "s");
    json_t *f =
        json_pack("{s:s,s:s,s:s,s:s,s:i,s:s}", "message", message, "queue", j->queue, "jobId",
                  j->id, "eventType", dj->event_type, "attempts", j->attempts_made, "error", error);
    if (f && dj->order_id)
        json_object_set_new(f, "orderId", json_string(dj->order_id));
    if (f && dj->print_job_id)
        json_object_set_new(f, "printJobId", json_string(dj->print_job_id));
    return f;
}

typedef struct alert_tx {
    const dead_job *dj;
    int64_t now;
    bool added;     /* out: this call recorded the job */
    bool no_tenant; /* out: recorded, but no tenant to alert */
} alert_tx;

static int alert_fn(db_conn *tx, void *ctx, err *e)
{
    alert_tx *a = ctx;
    const bus_job *j = a->dj->job;
    a->added = a->no_tenant = false;
    int rc = record(tx, j->queue, j->id, j->finished_at, a->now, &a->added, e);
    if (rc || !a->added)
        return rc;
    bool known = false;
    if (a->dj->tenant[0] && (rc = tenant_exists(tx, a->dj->tenant, &known, e)) != 0)
        return rc;
    if (!known) {
        a->no_tenant = true;
        return 0;
    }
    json_t *f = alert_fields(a->dj);
    if (!f)
        return err_set(e, F3_ENOMEM, "out of memory");
    rc = notify_alert(tx, a->dj->tenant, NOTIFY_EVENT_DEAD_LETTERED, f, e);
    json_decref(f);
    return rc;
}

/* ---- the scan --------------------------------------------------------------------------- */

static tenant_tally *tally_of(scan *sc, const char *tenant)
{
    for (int i = 0; i < sc->ntenants; i++)
        if (strcmp(sc->tenants[i].tenant, tenant) == 0)
            return &sc->tenants[i];
    if (sc->ntenants == sc->cap) {
        int cap = sc->cap ? sc->cap * 2 : 4;
        tenant_tally *grown = realloc(sc->tenants, (size_t)cap * sizeof *grown);
        if (!grown)
            return NULL;
        sc->tenants = grown;
        sc->cap = cap;
    }
    tenant_tally *t = &sc->tenants[sc->ntenants++];
    memset(t, 0, sizeof *t);
    snprintf(t->tenant, sizeof t->tenant, "%s", tenant);
    return t;
}

static int hold(tenant_tally *t, const bus_job *j, err *e)
{
    if (t->nheld == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        held_job *grown = realloc(t->held, (size_t)cap * sizeof *grown);
        if (!grown)
            return err_set(e, F3_ENOMEM, "out of memory");
        t->held = grown;
        t->cap = cap;
    }
    held_job *h = &t->held[t->nheld++];
    snprintf(h->queue, sizeof h->queue, "%s", j->queue);
    snprintf(h->id, sizeof h->id, "%s", j->id);
    h->finished_at = j->finished_at;
    return 0;
}

static int one_job(scan *sc, db_conn *c, const bus_job *j, err *e)
{
    bool seen = false;
    int rc = already_alerted(c, j, &seen, e);
    if (rc || seen)
        return rc;
    dead_job dj;
    dead_job_read(&dj, j);
    tenant_tally *t = dj.tenant[0] ? tally_of(sc, dj.tenant) : NULL;
    if (dj.tenant[0] && !t)
        rc = err_set(e, F3_ENOMEM, "out of memory");
    else if (t && t->sent >= DEADLETTER_ALERTS_PER_SCAN)
        rc = hold(t, j, e);
    else {
        alert_tx a = {.dj = &dj, .now = sc->now};
        rc = db_tx(c, alert_fn, &a, e);
        if (rc == 0 && a.added && a.no_tenant)
            log_error("a bus job without a tenant failed for good; retry it from the queue",
                      "queue", j->queue, "jobId", j->id, "event", dj.event_type);
        if (rc == 0 && a.added && !a.no_tenant && t) {
            t->sent++;
            sc->alerted++;
        }
    }
    dead_job_free(&dj);
    return rc;
}

/* The jobs of one page newer than since; *older = the page reached older ones. */
static int scan_page(scan *sc, bus_job **jobs, size_t n, int64_t since, bool *older, err *e)
{
    db_conn *c = db_acquire(sc->w->d, e);
    if (!c)
        return db_err_code(e);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n && !*older; i++) {
        *older = jobs[i]->finished_at < since;
        if (!*older)
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

typedef struct storm_tx {
    const tenant_tally *t;
    int64_t now;
    int added; /* out */
} storm_tx;

/* Records the held jobs and raises one alert with how many of them this call recorded. */
static int storm_fn(db_conn *tx, void *ctx, err *e)
{
    storm_tx *st = ctx;
    st->added = 0;
    int rc = 0;
    for (int i = 0; rc == 0 && i < st->t->nheld; i++) {
        const held_job *h = &st->t->held[i];
        bool added = false;
        rc = record(tx, h->queue, h->id, h->finished_at, st->now, &added, e);
        st->added += added;
    }
    if (rc || st->added == 0)
        return rc;
    char message[256];
    snprintf(message, sizeof message,
             "%d more events could not be handled and were set aside; see the failed jobs of"
             " the queues (/admin/queues) and retry them once the cause is fixed",
             st->added);
    json_t *f = json_pack("{s:s,s:i,s:s}", "message", message, "events", st->added, "firstQueue",
                          st->t->held[0].queue);
    rc = f ? notify_alert(tx, st->t->tenant, NOTIFY_EVENT_DEAD_LETTERED, f, e)
           : err_set(e, F3_ENOMEM, "out of memory");
    json_decref(f);
    return rc;
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
    if (rc)
        return rc;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = scan_queue(&sc, names[i], e);
    bus_names_free(names, n);
    db_conn *c = rc ? NULL : db_acquire(w->d, e);
    if (rc == 0 && !c)
        rc = db_err_code(e);
    for (int i = 0; rc == 0 && i < sc.ntenants; i++) {
        storm_tx st = {.t = &sc.tenants[i], .now = sc.now};
        if (sc.tenants[i].nheld > 0 && (rc = db_tx(c, storm_fn, &st, e)) == 0 && st.added > 0)
            sc.alerted++;
    }
    rc = rc ? rc : forget_old(c, sc.now, e);
    if (c)
        db_release(c);
    for (int i = 0; i < sc.ntenants; i++)
        free(sc.tenants[i].held);
    free(sc.tenants);
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
