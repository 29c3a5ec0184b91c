/*
 * bench_bus.c - throughput and latency of the event bus: N no-op catalog events
 * published and handled (publish -> handler -> completion committed), on SQLite or
 * PostgreSQL, printing events/s, p50/p99 publish-to-handler latency and the machine.
 *
 *   bench_bus --backend sqlite|postgres [--url URL] --events N --concurrency C
 *             [--publishers P] [--batch K] [--rate R] [--json]
 *   bench_bus --backend sqlite|postgres [--url URL] --commit-probe [--events N] [--json]
 *
 * The order service's bus publishes BUS_EV_ORDER_CREATED; the print service's bus, in the
 * same process over the same store, subscribes with concurrency C and a no-op handler.
 * P publisher threads each publish with bus_publish(tx = NULL): every event is its own
 * transaction, as a service's publish is (--batch K publishes K events per transaction
 * instead: not what services do, but it shows what the bus does once the per-commit
 * fsync is shared, so a reader can tell the disk's limit from the bus's). The payload carries the
 * event's sequence number and the monotonic time (us) taken just before bus_publish; the handler
 * subtracts it from its own clock reading, so "latency" is publish call -> handler start, commit
 * and wakeup included. The run ends when the store counts N completed jobs: events/s is N over the
 * time from the first publish to that moment. Durability is the project's own (SQLite WAL
 * + synchronous=FULL, PostgreSQL synchronous_commit=on) and is checked, not assumed: a
 * database set up otherwise is refused.
 *
 * --rate R paces the publishers (open loop): event k is published no earlier than k/R s
 * after the start, so at a rate the consumer keeps up with, the latency is the wake-up
 * path rather than a backlog.
 * --commit-probe measures the floor under all of that: N one-row INSERT transactions
 * from one thread through the same db layer, i.e. what one durable commit costs on this
 * disk (SQLite has no group commit, so this bounds one-transaction-per-event publishing).
 *
 * It must not change any setting of the bus or the database to look faster.
 */
#include "bus/bus.h"
#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EVENTS_MAX       10000000
#define CONCURRENCY_MAX  BUS_WORKER_MAX_THREADS
#define PUBLISHERS_MAX   256
#define BATCH_MAX        10000
#define RATE_MAX         1000000
#define RUN_TIMEOUT_US   (600LL * 1000 * 1000)
#define POLL_US          1000
#define TENANT           "bench"
#define FIELD_SEQ        "benchSeq"
#define FIELD_PUBLISHED  "benchPublishedUs"
#define MACHINE_FIELD    256
#define SQLITE_FILE_NAME "bench.db"

typedef struct options {
    const char *backend;
    const char *url;
    long events;
    int concurrency;
    int publishers;
    long batch;
    long rate;     /* events/s over all publishers; 0 = as fast as they can */
    long prefetch; /* the worker's prefetch: 0 = its default for the backend, -1 = none */
    bool json;
    bool commit_probe;
} options;

typedef struct machine {
    long nproc;
    char cpu[MACHINE_FIELD];
    long mem_mb;
} machine;

/* What the handler threads share with the main thread. */
typedef struct sink {
    long events;
    int64_t *latency_us; /* by sequence number */
    atomic_long handled;
    atomic_long bad; /* deliveries whose payload was not one of ours */
} sink;

typedef struct publisher {
    pthread_t thread;
    bus *b;
    db *d;
    atomic_long *next;
    long events, batch, rate;
    int64_t t0;        /* start of the run, monotonic us (the pacing origin) */
    json_t *fields;    /* reused for every event of this publisher */
    long first, count; /* the chunk being published */
    int rc;
    err e;
} publisher;

typedef struct result {
    double seconds, events_per_s, publish_per_s, p50_ms, p99_ms;
    char durability[MACHINE_FIELD];
    char server[MACHINE_FIELD];
} result;

/* ---- options and machine ------------------------------------------------------------- */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: bench_bus --backend sqlite|postgres [--url URL] --events N"
            " --concurrency C [--publishers P] [--batch K] [--rate R] [--prefetch K] [--json]\n"
            "  --url        sqlite:PATH or postgres://... (sqlite: default a temporary"
            " file)\n"
            "  --events     events to publish and handle (default 10000)\n"
            "  --concurrency handlers at once on the subscription (default 5, at most %d)\n"
            "  --publishers publishing threads (default 4)\n"
            "  --batch      events per publish transaction (default 1, as services publish)\n"
            "  --rate       publish at most R events/s in all (default: flat out)\n"
            "  --prefetch   jobs claimed ahead of free handlers (default: the worker's for\n"
            "               the backend; -1 = none)\n"
            "  --commit-probe  instead: N one-row transactions from one thread (commit cost)\n"
            "  --json       one JSON line instead of text\n",
            CONCURRENCY_MAX);
}

static int parse_long(const char *name, const char *v, long lo, long hi, long *out, err *e)
{
    char *end = NULL;
    errno = 0;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || errno != 0 || *end != '\0' || n < lo || n > hi)
        return err_set(e, F3_EINVAL, "%s must be an integer from %ld to %ld, not '%s'", name, lo,
                       hi, v ? v : "");
    *out = n;
    return 0;
}

static int parse_options(int argc, char **argv, options *o, err *e)
{
    *o = (options){.events = 10000, .concurrency = 5, .publishers = 4, .batch = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n = 0;
        int rc = 0;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(a, "--commit-probe") == 0) {
            o->commit_probe = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (!v)
            return err_set(e, F3_EINVAL, "%s needs a value (see --help)", a);
        i++;
        if (strcmp(a, "--backend") == 0) {
            if (strcmp(v, "sqlite") != 0 && strcmp(v, "postgres") != 0)
                return err_set(e, F3_EINVAL, "--backend must be sqlite or postgres, not '%s'", v);
            o->backend = v;
        } else if (strcmp(a, "--url") == 0) {
            o->url = v;
        } else if (strcmp(a, "--events") == 0) {
            rc = parse_long(a, v, 1, EVENTS_MAX, &o->events, e);
        } else if (strcmp(a, "--concurrency") == 0) {
            if ((rc = parse_long(a, v, 1, CONCURRENCY_MAX, &n, e)) == 0)
                o->concurrency = (int)n;
        } else if (strcmp(a, "--rate") == 0) {
            rc = parse_long(a, v, 1, RATE_MAX, &o->rate, e);
        } else if (strcmp(a, "--prefetch") == 0) {
            rc = parse_long(a, v, -1, BUS_WORKER_MAX_PREFETCH, &o->prefetch, e);
        } else if (strcmp(a, "--batch") == 0) {
            rc = parse_long(a, v, 1, BATCH_MAX, &o->batch, e);
        } else if (strcmp(a, "--publishers") == 0) {
            if ((rc = parse_long(a, v, 1, PUBLISHERS_MAX, &n, e)) == 0)
                o->publishers = (int)n;
        } else {
            return err_set(e, F3_EINVAL, "unknown option '%s' (see --help)", a);
        }
        if (rc)
            return rc;
    }
    if (!o->backend)
        return err_set(e, F3_EINVAL, "--backend is required (sqlite or postgres)");
    if (!o->url && strcmp(o->backend, "postgres") == 0)
        return err_set(e, F3_EINVAL, "--url is required for postgres");
    return 0;
}

static void read_machine(machine *m)
{
    *m = (machine){.nproc = sysconf(_SC_NPROCESSORS_ONLN)};
    snprintf(m->cpu, sizeof m->cpu, "unknown");
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon)
            continue;
        colon += strspn(colon + 1, " \t") + 1;
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(m->cpu, sizeof m->cpu, "%s", colon);
        break;
    }
    if (f)
        fclose(f);
    f = fopen("/proc/meminfo", "r");
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "MemTotal:", 9) == 0) {
            kb = strtol(line + 9, NULL, 10);
            break;
        }
    if (f)
        fclose(f);
    m->mem_mb = kb / 1024;
}

/* ---- database checks ------------------------------------------------------------------- */

/* The one text column of a one-row query, into out. */
static int query_text(db_conn *c, const char *sql, char *out, size_t size, err *e)
{
    db_stmt *st = db_prepare(c, sql, e);
    if (!st)
        return e->code ? e->code : F3_EIO;
    int rc = db_step(st, e);
    if (rc == DB_ROW) {
        const char *v = db_col_text(st, 0);
        snprintf(out, size, "%s", v ? v : "");
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_set(e, F3_EIO, "no answer to: %s", sql);
    }
    db_finalize(st);
    return rc;
}

/* Refuses a database that does not run with the durable settings, and says which ones
 * it does run with. */
static int check_durability(db *d, result *r, err *e)
{
    db_conn *c = db_acquire(d, e);
    if (!c)
        return e->code ? e->code : F3_EIO;
    char a[64] = "", b[64] = "";
    int rc;
    if (strcmp(db_backend(d), "sqlite") == 0) {
        if ((rc = query_text(c, "PRAGMA synchronous", a, sizeof a, e)) ||
            (rc = query_text(c, "PRAGMA journal_mode", b, sizeof b, e)) ||
            (rc = query_text(c, "SELECT sqlite_version()", r->server, sizeof r->server, e)))
            goto out;
        snprintf(r->durability, sizeof r->durability, "journal_mode=%s synchronous=%s", b,
                 strcmp(a, "2") == 0 ? "FULL" : a);
        if (strcmp(a, "2") != 0 && strcmp(a, "3") != 0)
            rc = err_set(e, F3_EINVAL, "SQLite runs with synchronous=%s, not FULL", a);
    } else {
        char v[128] = "";
        if ((rc = query_text(c, "SHOW synchronous_commit", a, sizeof a, e)) ||
            (rc = query_text(c, "SHOW fsync", b, sizeof b, e)) ||
            (rc = query_text(c, "SHOW server_version", v, sizeof v, e)))
            goto out;
        snprintf(r->server, sizeof r->server, "PostgreSQL %s", v);
        snprintf(r->durability, sizeof r->durability, "synchronous_commit=%s fsync=%s", a, b);
        if (strcmp(a, "on") != 0 || strcmp(b, "on") != 0)
            rc = err_set(e, F3_EINVAL, "PostgreSQL runs with synchronous_commit=%s fsync=%s", a, b);
    }
out:
    db_release(c);
    return rc;
}

/* The subscription queue must start empty, or the counts would mean nothing. */
static int check_empty(bus_store *s, const char *queue, err *e)
{
    bus_counts n;
    int rc = bus_store_counts(s, queue, clock_now_ms(), &n, e);
    if (rc)
        return rc;
    int64_t total = 0;
    for (int i = 0; i < BUS_STATE_COUNT; i++)
        total += n.n[i];
    if (total > 0)
        return err_set(e, F3_EINVAL, "queue %s already holds %lld jobs: use a fresh database",
                       queue, (long long)total);
    return 0;
}

/* ---- publishing and handling --------------------------------------------------------- */

/* The event's own fields, with a line item so the payload is a realistic order.created. */
static json_t *order_fields(void)
{
    return json_pack("{s:s, s:[{s:s, s:s, s:i}]}", "orderId",
                     "7d3c2a1e-4b5f-4e6a-8c9d-0e1f2a3b4c5d", "lineItems", "lineItemId",
                     "3f9a1c2b-8d7e-4f60-a5b4-c3d2e1f0a9b8", "productSku", "BOX-10x10-RED",
                     "quantity", 2);
}

static void sleep_us(long us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000L};
    nanosleep(&ts, NULL);
}

/* Publishes one event; its publish time is taken just before bus_publish. */
static int publish_one(publisher *p, db_conn *tx, long seq, err *e)
{
    int64_t t = clock_mono_us();
    if (json_object_set_new(p->fields, FIELD_SEQ, json_integer(seq)) != 0 ||
        json_object_set_new(p->fields, FIELD_PUBLISHED, json_integer(t)) != 0)
        return err_set(e, F3_ENOMEM, "out of memory building an event");
    return bus_publish(p->b, tx, BUS_EV_ORDER_CREATED, TENANT, p->fields, e);
}

/* --batch: the events of one chunk in the caller's transaction (run again if busy). */
static int publish_chunk(db_conn *c, void *ctx, err *e)
{
    publisher *p = ctx;
    for (long i = 0; i < p->count; i++) {
        int rc = publish_one(p, c, p->first + i, e);
        if (rc)
            return rc;
    }
    return 0;
}

static void *publisher_main(void *arg)
{
    publisher *p = arg;
    p->fields = order_fields();
    if (!p->fields) {
        p->rc = err_set(&p->e, F3_ENOMEM, "out of memory building an event");
        return NULL;
    }
    for (;;) {
        p->first = atomic_fetch_add(p->next, p->batch);
        if (p->first >= p->events)
            break;
        p->count = p->events - p->first < p->batch ? p->events - p->first : p->batch;
        if (p->rate > 0) {
            int64_t due = p->t0 + (int64_t)((double)p->first * 1e6 / (double)p->rate);
            int64_t wait = due - clock_mono_us();
            if (wait > 0)
                sleep_us((long)wait);
        }
        if (p->batch == 1) {
            /* tx NULL: the bus's own short transaction, as a service's publish. */
            p->rc = publish_one(p, NULL, p->first, &p->e);
        } else {
            db_conn *c = db_acquire(p->d, &p->e);
            p->rc = c ? db_tx(c, publish_chunk, p, &p->e) : (p->e.code ? p->e.code : F3_EIO);
            db_release(c);
        }
        if (p->rc)
            break;
    }
    json_decref(p->fields);
    return NULL;
}

/* The no-op handler: records publish -> handler latency, writes nothing. */
static int handle_order_created(bus_delivery *dl, void *ctx, err *e)
{
    int64_t now = clock_mono_us();
    sink *k = ctx;
    const bus_envelope *env = bus_delivery_envelope(dl);
    json_t *seq = env ? json_object_get(env->root, FIELD_SEQ) : NULL;
    json_t *t = env ? json_object_get(env->root, FIELD_PUBLISHED) : NULL;
    if (!json_is_integer(seq) || !json_is_integer(t) || json_integer_value(seq) < 0 ||
        json_integer_value(seq) >= k->events) {
        atomic_fetch_add(&k->bad, 1);
        return err_set(e, F3_EINVAL, "not an event of this benchmark");
    }
    k->latency_us[json_integer_value(seq)] = now - json_integer_value(t);
    atomic_fetch_add(&k->handled, 1);
    return 0;
}

/* Waits until every event is handled and its completion committed. */
static int wait_completed(bus_store *s, const char *queue, sink *k, int64_t t0, err *e)
{
    while (atomic_load(&k->handled) < k->events) {
        if (atomic_load(&k->bad) > 0)
            return err_set(e, F3_EINVAL, "a delivery did not carry this benchmark's payload");
        if (clock_mono_us() - t0 > RUN_TIMEOUT_US)
            return err_set(e, F3_EBUSY, "timed out: %ld of %ld events handled",
                           atomic_load(&k->handled), k->events);
        sleep_us(POLL_US);
    }
    for (;;) {
        bus_counts n;
        int rc = bus_store_counts(s, queue, clock_now_ms(), &n, e);
        if (rc)
            return rc;
        if (n.n[BUS_STATE_FAILED] > 0)
            return err_set(e, F3_EIO, "%lld jobs failed", (long long)n.n[BUS_STATE_FAILED]);
        if (n.n[BUS_STATE_COMPLETED] >= k->events)
            return 0;
        if (clock_mono_us() - t0 > RUN_TIMEOUT_US)
            return err_set(e, F3_EBUSY, "timed out: %lld of %ld completions committed",
                           (long long)n.n[BUS_STATE_COMPLETED], k->events);
        sleep_us(POLL_US);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values, in ms. */
static double percentile_ms(const int64_t *sorted, long n, double p)
{
    long idx = (long)((p / 100.0) * (double)n + 0.999999) - 1;
    if (idx < 0)
        idx = 0;
    if (idx >= n)
        idx = n - 1;
    return (double)sorted[idx] / 1000.0;
}

/* Starts the publishers, waits for every completion, fills r. */
static int run_events(const options *o, db *d, bus *pub, bus_store *s, const char *queue, sink *k,
                      result *r, err *e)
{
    publisher *ps = calloc((size_t)o->publishers, sizeof *ps);
    if (!ps)
        return err_set(e, F3_ENOMEM, "out of memory starting publishers");
    atomic_long next;
    atomic_init(&next, 0);
    int started = 0, rc = 0;
    int64_t t0 = clock_mono_us();
    for (; started < o->publishers; started++) {
        ps[started] = (publisher){.b = pub,
                                  .d = d,
                                  .next = &next,
                                  .events = o->events,
                                  .batch = o->batch,
                                  .rate = o->rate,
                                  .t0 = t0};
        if (pthread_create(&ps[started].thread, NULL, publisher_main, &ps[started]) != 0) {
            rc = err_set(e, F3_ENOMEM, "cannot start publisher thread %d", started);
            atomic_store(&next, o->events); /* the others stop at their next event */
            break;
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(ps[i].thread, NULL);
    int64_t t_pub = clock_mono_us();
    for (int i = 0; i < started && rc == 0; i++)
        if (ps[i].rc) {
            *e = ps[i].e;
            rc = ps[i].rc;
        }
    if (rc == 0)
        rc = wait_completed(s, queue, k, t0, e);
    int64_t t1 = clock_mono_us();
    free(ps);
    if (rc)
        return rc;
    r->seconds = (double)(t1 - t0) / 1e6;
    r->events_per_s = (double)o->events / r->seconds;
    r->publish_per_s = (double)o->events / ((double)(t_pub - t0) / 1e6);
    qsort(k->latency_us, (size_t)o->events, sizeof *k->latency_us, cmp_i64);
    r->p50_ms = percentile_ms(k->latency_us, o->events, 50);
    r->p99_ms = percentile_ms(k->latency_us, o->events, 99);
    return 0;
}

/* ---- output ------------------------------------------------------------------------------ */

static void print_result(const options *o, const char *backend, const machine *m, const result *r)
{
    if (!o->json) {
        printf("f3connect %s %s: %ld events, concurrency %d, %d publishers, %ld per tx\n"
               "  %.0f events/s end to end (%.3f s), publish %.0f/s\n"
               "  publish->handler latency p50 %.3f ms, p99 %.3f ms\n"
               "  %s, %s\n"
               "  machine: %ld CPUs, %s, %ld MB\n",
               F3_VERSION, backend, o->events, o->concurrency, o->publishers, o->batch,
               r->events_per_s, r->seconds, r->publish_per_s, r->p50_ms, r->p99_ms, r->server,
               r->durability, m->nproc, m->cpu, m->mem_mb);
        return;
    }
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:I, s:i, s:i, s:I, s:I, s:f, s:I, s:I, s:f, s:f, s:s, s:s,"
        " s:{s:I, s:s, s:I}}",
        "impl", "f3connect", "version", F3_VERSION, "backend", backend, "events",
        (json_int_t)o->events, "concurrency", o->concurrency, "publishers", o->publishers, "batch",
        (json_int_t)o->batch, "rate", (json_int_t)o->rate, "seconds", r->seconds, "events_per_s",
        (json_int_t)(r->events_per_s + 0.5), "publish_per_s", (json_int_t)(r->publish_per_s + 0.5),
        "p50_ms", r->p50_ms, "p99_ms", r->p99_ms, "durability", r->durability, "server", r->server,
        "machine", "nproc", (json_int_t)m->nproc, "cpu", m->cpu, "mem_mb", (json_int_t)m->mem_mb);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (text)
        printf("%s\n", text);
    else
        fprintf(stderr, "bench_bus: out of memory printing the result\n");
    free(text);
    json_decref(j);
}

/* ---- the commit probe --------------------------------------------------------------- */

#define PROBE_TABLE "bench_commit_probe"

static int probe_insert(db_conn *c, long i, const char *text, err *e)
{
    db_stmt *st = db_prepare(c, "INSERT INTO " PROBE_TABLE " (id, data) VALUES ($1, $2)", e);
    if (!st)
        return e->code ? e->code : F3_EIO;
    db_bind_int64(st, 1, i);
    db_bind_text(st, 2, text);
    int rc = db_step(st, e);
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

/* N one-row INSERT transactions, one after the other, on one connection. */
static int commit_probe(const options *o, db *d, const machine *m, const result *r, err *e)
{
    char text[601];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    db_conn *c = db_acquire(d, e);
    if (!c)
        return e->code ? e->code : F3_EIO;
    int rc = db_exec(c,
                     "DROP TABLE IF EXISTS " PROBE_TABLE "; CREATE TABLE " PROBE_TABLE
                     " (id BIGINT PRIMARY KEY, data TEXT NOT NULL)",
                     e);
    int64_t t0 = clock_mono_us();
    for (long i = 0; rc == 0 && i < o->events; i++) {
        if ((rc = db_begin(c, e)) == 0 && (rc = probe_insert(c, i, text, e)) == 0)
            rc = db_commit(c, e);
        if (rc)
            db_rollback(c, NULL);
    }
    double secs = (double)(clock_mono_us() - t0) / 1e6;
    if (db_exec(c, "DROP TABLE IF EXISTS " PROBE_TABLE, rc ? NULL : e) != 0 && rc == 0)
        rc = e->code ? e->code : F3_EIO;
    db_release(c);
    if (rc)
        return rc;
    double per_s = (double)o->events / secs;
    if (!o->json) {
        printf("commit probe %s: %ld one-row transactions, %.0f commits/s (%.0f us each)\n"
               "  %s, %s\n  machine: %ld CPUs, %s, %ld MB\n",
               db_backend(d), o->events, per_s, 1e6 / per_s, r->server, r->durability, m->nproc,
               m->cpu, m->mem_mb);
        return 0;
    }
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:f, s:s, s:s, s:{s:I, s:s, s:I}}", "impl",
                          "commit-probe", "backend", db_backend(d), "events", (json_int_t)o->events,
                          "commits_per_s", (json_int_t)(per_s + 0.5), "us_per_commit", 1e6 / per_s,
                          "durability", r->durability, "server", r->server, "machine", "nproc",
                          (json_int_t)m->nproc, "cpu", m->cpu, "mem_mb", (json_int_t)m->mem_mb);
    char *out = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (out)
        printf("%s\n", out);
    free(out);
    json_decref(j);
    return out ? 0 : err_set(e, F3_ENOMEM, "out of memory printing the result");
}

/* ---- setup ------------------------------------------------------------------------------ */

/* A temporary directory for the SQLite file when no --url is given; *dir receives it. */
static int temp_sqlite_url(char *dir, size_t dir_size, char *url, size_t url_size, err *e)
{
    snprintf(dir, dir_size, "/tmp/f3bench.XXXXXX");
    if (!mkdtemp(dir))
        return err_set(e, F3_EIO, "cannot create a temporary directory: %s", strerror(errno));
    snprintf(url, url_size, "sqlite:%s/%s", dir, SQLITE_FILE_NAME);
    return 0;
}

static void remove_temp_sqlite(const char *dir)
{
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(path, sizeof path, "%s/%s%s", dir, SQLITE_FILE_NAME, suffixes[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int bench(const options *o, const machine *m, err *e)
{
    char tmpdir[64] = "", tmpurl[128] = "";
    const char *url = o->url;
    db *d = NULL;
    bus_store *s = NULL;
    bus *pub = NULL, *sub = NULL;
    sink k = {.events = o->events};
    atomic_init(&k.handled, 0);
    atomic_init(&k.bad, 0);
    result r = {0};
    char queue[BUS_QUEUE_NAME_MAX + 1];
    int rc = bus_queue_name(BUS_EV_ORDER_CREATED, BUS_SVC_PRINT, queue, sizeof queue);
    if (rc) {
        err_set(e, rc, "no queue name for %s", BUS_EV_ORDER_CREATED);
        goto out;
    }
    if (!url) {
        if ((rc = temp_sqlite_url(tmpdir, sizeof tmpdir, tmpurl, sizeof tmpurl, e)))
            goto out;
        url = tmpurl;
    }
    /* Handler threads, publishers, the completer, dispatcher and maintenance each hold a
     * connection at times: room for all of them so nobody waits on the pool. */
    db_opts dbo = {.pool_size = o->concurrency + o->publishers + 8};
    if ((rc = db_open(url, &dbo, &d, e)))
        goto out;
    if (!o->backend || strcmp(db_backend(d), o->backend) != 0) {
        rc = err_set(e, F3_EINVAL, "--backend %s but the URL is a %s database",
                     o->backend ? o->backend : "(none)", db_backend(d));
        goto out;
    }
    if ((rc = check_durability(d, &r, e)))
        goto out;
    if (o->commit_probe) {
        rc = commit_probe(o, d, m, &r, e);
        goto out;
    }
    if ((rc = db_migrate(d, NULL, e)) || (rc = bus_store_open_sql(d, &s, e)) ||
        (rc = check_empty(s, queue, e)))
        goto out;
    k.latency_us = calloc((size_t)o->events, sizeof *k.latency_us);
    if (!k.latency_us) {
        rc = err_set(e, F3_ENOMEM, "out of memory for %ld latencies", o->events);
        goto out;
    }
    /* The worker's defaults otherwise (handler threads: the concurrency, at most 16), as a
     * service gets them. */
    bus_sub_opts so = {.concurrency = o->concurrency};
    pub = bus_new(d, s, BUS_SVC_ORDER, e);
    bus_worker_opts wo = {.prefetch = (int)o->prefetch};
    sub = pub ? bus_new_with(d, s, BUS_SVC_PRINT, &wo, e) : NULL;
    if (!pub || !sub) {
        rc = e->code ? e->code : F3_ENOMEM;
        goto out;
    }
    if ((rc = bus_subscribe(sub, BUS_EV_ORDER_CREATED, handle_order_created, &k, &so, e)) ||
        (rc = bus_start(sub, e)))
        goto out;
    if ((rc = run_events(o, d, pub, s, queue, &k, &r, e)))
        goto out;
    print_result(o, db_backend(d), m, &r);
out:
    bus_free(sub);
    bus_free(pub);
    bus_store_close(s);
    db_close(d);
    free(k.latency_us);
    if (tmpdir[0])
        remove_temp_sqlite(tmpdir);
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    err e = {0};
    log_set_level(LOG_WARN);
    if (parse_options(argc, argv, &o, &e) != 0) {
        fprintf(stderr, "bench_bus: %s\n", e.msg);
        usage(stderr);
        return 2;
    }
    machine m;
    read_machine(&m);
    if (bench(&o, &m, &e) != 0) {
        fprintf(stderr, "bench_bus: %s\n", e.msg[0] ? e.msg : err_name(e.code));
        return 1;
    }
    return 0;
}
