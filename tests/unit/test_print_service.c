/* F3_TEST: backends
 * test_print_service.c - the print service against a scripted SimplyPrint (a provider
 * table whose answers each test sets): job creation and its idempotency (re-run,
 * redelivered order.created, a mapping added later, requeue of one line item), submission
 * with transient and permanent errors (an AddItem whose answer was lost after it created the
 * item is adopted, not repeated), status reports (duplicate, out of order, stale,
 * never backwards), a dropped webhook healed by the poller, cancel in every state,
 * order.cancelled, retry, and credentials changed at runtime.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"

#include "bus/bus.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/str.h"
#include "services/print/service.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

#define TENANT      "t-print"
#define KEY_HEX     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define GOOD        "sp-good-key"
#define ORDER       "o-1"
#define CHANGED_Q   "print-job.status-changed@order-service"
#define COMPLETED_Q "print-job.completed@order-service"
#define FAILED_Q    "print-job.failed@order-service"
#define CANCELLED_Q "print-job.cancelled@order-service"
#define INTEG_Q     "integration.simplyprint-changed@order-service"

/* ---- a scripted SimplyPrint ------------------------------------------------------------ */

/* TIMEOUT: no answer (status 0), nothing done; ADDED_TIMEOUT: AddItem creates the item,
 * then its answer is lost (status 0); LIMITED: 429, nothing done. */
typedef enum mode { OK, TRANSIENT, PERMANENT, TIMEOUT, ADDED_TIMEOUT, LIMITED } mode;

#define FAKE_ITEMS 64

static struct fake {
    pthread_mutex_t lock;
    mode add, del, get;
    int64_t next_id;
    int adds, deletes, clients_made, lists;
    struct {
        int64_t id;
        int left, printed;
        char file[32];
    } items[FAKE_ITEMS];
    size_t nitems;
    sp_job history[16];
    size_t nhistory;
    /* A long history instead: `history_pages` pages of one print each (none of ours),
     * started at history_started_s; jobs_list calls counted. */
    int history_pages, history_calls;
    int64_t history_started_s;
    void (*on_add)(void); /* runs inside AddItem, before it answers */
} fake = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct fake_client {
    char key[64];
} fake_client;

static int fail_call(mode m, sp_call *call, err *e)
{
    if (m == TIMEOUT || m == ADDED_TIMEOUT || m == LIMITED) {
        call->failure = HTTP_TRANSIENT;
        call->status = m == LIMITED ? 429 : 0;
        snprintf(call->message, sizeof call->message, "%s",
                 m == LIMITED ? "Too many requests" : "timed out after 30000 ms");
        return err_set(e, F3_ETRANSIENT, "%s", call->message);
    }
    call->failure = m == TRANSIENT ? HTTP_TRANSIENT : HTTP_PERMANENT;
    call->status = m == TRANSIENT ? 503 : 400;
    snprintf(call->message, sizeof call->message, "%s",
             m == TRANSIENT ? "Service unavailable" : "File not found in library");
    return err_set(e, m == TRANSIENT ? F3_ETRANSIENT : F3_EPERMANENT, "%s", call->message);
}

static void *f_new(const sp_client_opts *o, err *e)
{
    (void)e;
    fake_client *c = calloc(1, sizeof *c);
    snprintf(c->key, sizeof c->key, "%s", o->api_key);
    pthread_mutex_lock(&fake.lock);
    fake.clients_made++;
    pthread_mutex_unlock(&fake.lock);
    return c;
}

static void f_free(void *c)
{
    free(c);
}

static int f_test(void *client, sp_call *call, err *e)
{
    fake_client *c = client;
    return str_eq(c->key, GOOD) || str_starts_with(c->key, "sp-good")
               ? 0
               : fail_call(PERMANENT, call, e);
}

static int f_add(void *client, const sp_queue_add *rq, int64_t *id, sp_call *call, err *e)
{
    (void)client;
    if (fake.on_add)
        fake.on_add();
    pthread_mutex_lock(&fake.lock);
    int rc = 0;
    if (fake.add != OK && fake.add != ADDED_TIMEOUT)
        rc = fail_call(fake.add, call, e);
    else {
        *id = ++fake.next_id;
        fake.items[fake.nitems].id = *id;
        fake.items[fake.nitems].left = 1;
        snprintf(fake.items[fake.nitems].file, sizeof fake.items[0].file, "%s",
                 rq->filesystem_id ? rq->filesystem_id : "");
        fake.items[fake.nitems++].printed = 0;
        fake.adds++;
        if (fake.add == ADDED_TIMEOUT)
            rc = fail_call(fake.add, call, e);
    }
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

static int f_get(void *client, int64_t id, sp_queue_item *out, sp_call *call, err *e)
{
    (void)client;
    if (fake.get != OK)
        return fail_call(fake.get, call, e);
    for (size_t i = 0; i < fake.nitems; i++)
        if (fake.items[i].id == id) {
            memset(out, 0, sizeof *out);
            out->id = id;
            out->left = fake.items[i].left;
            out->printed = fake.items[i].printed;
            snprintf(out->filesystem_id, sizeof out->filesystem_id, "%s", fake.items[i].file);
            return 0;
        }
    return err_set(e, F3_ENOTFOUND, "queue item %lld not found", (long long)id);
}

static void fake_remove_item(int64_t id)
{
    for (size_t i = 0; i < fake.nitems; i++)
        if (fake.items[i].id == id)
            fake.items[i] = fake.items[--fake.nitems];
}

static int f_del(void *client, int64_t id, sp_call *call, err *e)
{
    (void)client;
    if (fake.del != OK)
        return fail_call(fake.del, call, e);
    fake.deletes++;
    fake_remove_item(id);
    return 0;
}

static int f_list(void *client, const sp_jobs_query *q, sp_job **out, size_t *n, int *pages,
                  sp_call *call, err *e)
{
    (void)client;
    (void)call;
    (void)e;
    fake.history_calls++;
    if (fake.history_pages > 0) {
        *out = calloc(1, sizeof **out);
        (*out)->id = 100000 + q->page;
        (*out)->queue_item_id = 1;
        (*out)->state = SP_JOB_DONE;
        (*out)->started_s = fake.history_started_s;
        *n = 1;
        *pages = fake.history_pages;
        return 0;
    }
    *out = calloc(fake.nhistory + 1, sizeof **out);
    memcpy(*out, fake.history, fake.nhistory * sizeof **out);
    *n = fake.nhistory;
    *pages = 1;
    return 0;
}

static int f_job(void *client, const char *uid, sp_job *out, sp_call *call, err *e)
{
    (void)client;
    (void)call;
    for (size_t i = 0; i < fake.nhistory; i++)
        if (str_eq(fake.history[i].uid, uid)) {
            *out = fake.history[i];
            return 0;
        }
    return err_set(e, F3_ENOTFOUND, "no job %s", uid);
}

static int f_queue(void *client, bool include_done, sp_queue_item **out, size_t *n, sp_call *call,
                   err *e)
{
    (void)client;
    (void)include_done;
    fake.lists++;
    if (fake.get != OK)
        return fail_call(fake.get, call, e);
    *out = calloc(fake.nitems + 1, sizeof **out);
    for (size_t i = 0; i < fake.nitems; i++) {
        (*out)[i].id = fake.items[i].id;
        (*out)[i].left = fake.items[i].left;
        (*out)[i].printed = fake.items[i].printed;
        snprintf((*out)[i].filesystem_id, sizeof(*out)[i].filesystem_id, "%s", fake.items[i].file);
    }
    *n = fake.nitems;
    return 0;
}

static const print_provider fake_provider = {f_new, f_free, f_test, f_add,  f_get,
                                             f_del, f_list, f_job,  f_queue};

static void fake_reset(void)
{
    fake.add = fake.del = fake.get = OK;
    fake.next_id = 1000;
    fake.adds = fake.deletes = fake.clients_made = fake.lists = 0;
    fake.nitems = fake.nhistory = 0;
    fake.history_pages = fake.history_calls = 0;
    fake.history_started_s = 0;
    fake.on_add = NULL;
}

static void fake_history(int64_t id, const char *uid, int64_t queue_item, sp_job_state st,
                         int64_t ended_s)
{
    sp_job *j = &fake.history[fake.nhistory++];
    memset(j, 0, sizeof *j);
    j->id = id;
    snprintf(j->uid, sizeof j->uid, "%s", uid);
    j->queue_item_id = queue_item;
    j->state = st;
    j->ended_s = ended_s;
    snprintf(j->printer_name, sizeof j->printer_name, "MK4-01");
}

/* ---- fixture ---------------------------------------------------------------------------- */

typedef struct fx {
    f3test_bus tb;
    bus *b;
    config *cfg;
    char *dir;
    print_service *s;
} fx;

static void set(config *c, const char *flag, const char *v)
{
    err e = {0};
    if (config_set_flag(c, flag, v, &e))
        fail_msg("%s: %s", flag, e.msg);
}

static void exec(fx *f, const char *sql)
{
    f3test_bus_exec(f->tb.d, sql);
}

static int64_t count(fx *f, const char *sql, const char *param)
{
    return f3test_bus_count(f->tb.d, sql, param);
}

static int64_t queued(fx *f, const char *queue)
{
    return count(f, "SELECT COUNT(*) FROM bus_jobs WHERE queue = $1", queue);
}

static int64_t jobs_in(fx *f, const char *status)
{
    return count(f, "SELECT COUNT(*) FROM print_jobs WHERE status = $1", status);
}

static int64_t logs(fx *f, const char *type)
{
    return count(f, "SELECT COUNT(*) FROM event_log WHERE event_type = $1", type);
}

static print_service *start(fx *f, bool bootstrap)
{
    print_service_deps d = {.db = f->tb.d,
                            .bus = f->b,
                            .store = f->tb.s,
                            .config = f->cfg,
                            .provider = &fake_provider,
                            .tenant_id = bootstrap ? TENANT : NULL,
                            .no_queues = true};
    print_service *s = NULL;
    err e = {0};
    if (print_service_start(&s, &d, NULL, &e))
        fail_msg("print_service_start: %s", e.msg);
    return s;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fake_reset();
    f3test_bus_new(&f->tb, backend);
    err e = {0};
    f->b = bus_new(f->tb.d, f->tb.s, BUS_SVC_PRINT, &e);
    if (!f->b)
        fail_msg("bus_new: %s", e.msg);
    f->dir = f3test_tmpdir();
    f->cfg = config_new();
    set(f->cfg, "data-dir", f->dir);
    set(f->cfg, "encryption-key", KEY_HEX);
    set(f->cfg, "simplyprint-company-id", "4242");
    set(f->cfg, "simplyprint-api-key", GOOD);
    set(f->cfg, "simplyprint-webhook-secret", "whsec-1");
    exec(f, "INSERT INTO tenants (id, name, slug, created_at, updated_at)"
            " VALUES ('" TENANT "', 'Shop', 'shop', 0, 0)");
    exec(f, "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number,"
            " customer_name, created_at, updated_at) VALUES ('" ORDER "', '" TENANT "', '9001',"
            " '#1001', 'Ann', 0, 0)");
    /* VASE: two parts, the second printed twice per unit; BOX: not mapped (yet). */
    exec(f, "INSERT INTO product_mappings (id, tenant_id, sku, name, queue_group_id, created_at,"
            " updated_at) VALUES ('pm-vase', '" TENANT "', 'VASE', 'Vase', '3', 0, 0)");
    exec(f, "INSERT INTO assembly_parts (id, tenant_id, product_mapping_id, part_number,"
            " part_name, simplyprint_file_id, quantity_per_unit, created_at, updated_at) VALUES"
            " ('ap-body', '" TENANT "', 'pm-vase', 1, 'Body', 'f-body', 1, 0, 0),"
            " ('ap-foot', '" TENANT "', 'pm-vase', 2, 'Foot', 'f-foot', 2, 0, 0)");
    exec(f, "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, sku, title,"
            " quantity, created_at, updated_at) VALUES"
            " ('li-vase', '" TENANT "', '" ORDER "', '501', 'VASE', 'Vase', 2, 1, 1),"
            " ('li-box', '" TENANT "', '" ORDER "', '502', 'BOX', 'Box', 1, 2, 2)");
    f->s = start(f, true);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    print_service_free(f->s);
    bus_free(f->b);
    config_free(f->cfg);
    f3test_bus_drop(&f->tb);
    f3test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static print_run_counts requeue(fx *f, const char *line_item, int want_rc)
{
    print_run_counts n;
    err e = {0};
    int rc = print_service_requeue(f->s, TENANT, ORDER, line_item, &n, &e);
    if (rc != want_rc)
        fail_msg("requeue: %d (%s), want %d", rc, e.msg, want_rc);
    return n;
}

/* The id of the job of (line item, part, unit, copy). */
static void job_id(fx *f, const char *part, int unit, int copy, char out[65])
{
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT id FROM print_jobs WHERE part_key = '%s' AND unit_index = %d"
             " AND copy_index = %d",
             part, unit, copy);
    err e = {0};
    db_conn *c = db_acquire(f->tb.d, &e);
    db_stmt *s = db_prepare(c, sql, &e);
    assert_non_null(s);
    assert_int_equal(db_step(s, &e), DB_ROW);
    db_col_copy(s, 0, out, 65);
    db_finalize(s);
    db_release(c);
}

static print_job_row load(fx *f, const char *id)
{
    err e = {0};
    print_job_row r;
    db_conn *c = db_acquire(f->tb.d, &e);
    if (print_jobs_load(c, TENANT, id, &r, &e))
        fail_msg("load %s: %s", id, e.msg);
    db_release(c);
    return r;
}

static void set_status(fx *f, const char *id, const char *status, const char *queue_item)
{
    char sql[400];
    snprintf(sql, sizeof sql,
             "UPDATE print_jobs SET status = '%s', simplyprint_queue_item_id = %s%s%s"
             " WHERE id = '%s'",
             status, queue_item ? "'" : "", queue_item ? queue_item : "NULL", queue_item ? "'" : "",
             id);
    exec(f, sql);
}

static print_change_outcome report(fx *f, int64_t queue_item, print_job_status st, int64_t ts_s,
                                   int want_rc)
{
    print_sp_report r;
    memset(&r, 0, sizeof r);
    r.status = st;
    r.queue_item_id = queue_item;
    r.reported_at = ts_s * 1000;
    print_change_outcome oc = PRINT_NOT_ALLOWED;
    err e = {0};
    int rc = print_service_apply_report(f->s, TENANT, &r, &oc, &e);
    if (rc != want_rc)
        fail_msg("apply_report: %d (%s), want %d", rc, e.msg, want_rc);
    return oc;
}

/* ---- a crash between queue/AddItem and its record ------------------------------------- */

/* The state a SIGKILL leaves after SimplyPrint created the queue item of part's jobs but
 * before the QUEUED record committed: PENDING, no queue item, the lease taken (expired). */
static void crash_after_add(fx *f, const char *part)
{
    char sql[300];
    snprintf(sql, sizeof sql,
             "UPDATE print_jobs SET status = 'PENDING', simplyprint_queue_item_id = NULL,"
             " submit_lease_until = 1 WHERE part_key = '%s'",
             part);
    exec(f, sql);
}

/* Every item in the fake queue is held by exactly one job. */
static void assert_items_held_once(fx *f)
{
    for (size_t i = 0; i < fake.nitems; i++) {
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)fake.items[i].id);
        assert_int_equal(
            count(f, "SELECT COUNT(*) FROM print_jobs WHERE simplyprint_queue_item_id = $1", id),
            1);
    }
}

static void test_interrupted_submission_adopted_by_poller(void **state)
{
    fx *f = *state;
    requeue(f, NULL, 0);
    assert_int_equal(fake.adds, 6);
    char foot[65];
    job_id(f, "ap-foot", 1, 1, foot);
    int64_t printed = load(f, foot).queue_item_id;
    crash_after_add(f, "ap-foot"); /* 4 jobs: 2 units x 2 feet */
    assert_int_equal(jobs_in(f, "PENDING"), 4);
    /* One of the lost items was printed already before anyone looked. */
    for (size_t i = 0; i < fake.nitems; i++)
        if (fake.items[i].id == printed) {
            fake.items[i].left = 0;
            fake.items[i].printed = 1;
        }

    int applied = 0;
    err e = {0};
    assert_int_equal(print_service_reconcile(f->s, &applied, &e), 0);
    /* No second AddItem: each job got one of the items its lost submission left, and the
     * poller saw the printed one through. */
    assert_int_equal(fake.adds, 6);
    assert_int_equal(fake.nitems, 6);
    assert_int_equal(jobs_in(f, "QUEUED"), 5);
    assert_int_equal(jobs_in(f, "COMPLETED"), 1);
    assert_items_held_once(f);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM print_jobs WHERE submit_lease_until IS NULL", NULL), 6);

    /* A job whose submission never reached SimplyPrint finds no item and adds one. */
    char id[65];
    job_id(f, "ap-body", 0, 0, id);
    fake_remove_item(load(f, id).queue_item_id);
    crash_after_add(f, "ap-body");
    assert_int_equal(print_service_reconcile(f->s, &applied, &e), 0);
    assert_int_equal(fake.adds, 7); /* one new item, for the one that had none */
    assert_int_equal(jobs_in(f, "QUEUED"), 5);
    assert_items_held_once(f);
}

static void test_interrupted_submission_adopted_by_report(void **state)
{
    fx *f = *state;
    requeue(f, NULL, 0);
    char first[65], second[65];
    job_id(f, "ap-body", 0, 0, first);
    job_id(f, "ap-body", 1, 0, second);
    int64_t q1 = load(f, first).queue_item_id, q2 = load(f, second).queue_item_id;
    crash_after_add(f, "ap-body");

    /* The printer starts one of the unrecorded items: the report adopts it for the oldest
     * interrupted submission of that file and applies. */
    assert_int_equal(report(f, q2, PRINT_JOB_PRINTING, 100, 0), PRINT_CHANGED);
    assert_int_equal(jobs_in(f, "PRINTING"), 1);
    assert_int_equal(jobs_in(f, "PENDING"), 1);
    char q[24];
    snprintf(q, sizeof q, "%lld", (long long)q2);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM print_jobs WHERE simplyprint_queue_item_id = $1"
                           " AND status = 'PRINTING'",
                           q),
                     1);

    /* The other one is submitted again: it takes the remaining item, adds none. */
    print_run_counts n;
    err e = {0};
    assert_int_equal(print_service_submit_pending(f->s, TENANT, NULL, &n, &e), 0);
    assert_int_equal(n.submitted, 1);
    assert_int_equal(fake.adds, 6);
    snprintf(q, sizeof q, "%lld", (long long)q1);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM print_jobs WHERE simplyprint_queue_item_id = $1"
                           " AND status = 'QUEUED'",
                           q),
                     1);
    assert_items_held_once(f);

    /* An item of a file no interrupted job has stays nobody's. */
    report(f, 99999, PRINT_JOB_PRINTING, 200, F3_ENOTFOUND);
    assert_int_equal(jobs_in(f, "PRINTING"), 1);

    /* SimplyPrint cannot list its queue now: the interrupted job waits, nothing is added. */
    crash_after_add(f, "ap-foot");
    fake.get = TRANSIENT;
    assert_int_equal(print_service_submit_pending(f->s, TENANT, NULL, &n, &e), F3_ETRANSIENT);
    assert_int_equal(fake.adds, 6);
    assert_int_equal(jobs_in(f, "PENDING"), 4);
}

/* Jobs whose lease is set (the marker of an interrupted submission) and already expired. */
static int64_t expired_markers(fx *f)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)clock_now_ms() + 1);
    return count(f,
                 "SELECT COUNT(*) FROM print_jobs WHERE submit_lease_until IS NOT NULL AND"
                 " submit_lease_until <= CAST($1 AS BIGINT)",
                 now);
}

static void test_add_timeout_after_create_adopted(void **state)
{
    fx *f = *state;
    /* SimplyPrint creates the item, the answer never arrives. */
    fake.add = ADDED_TIMEOUT;
    print_run_counts n = requeue(f, NULL, F3_ETRANSIENT);
    assert_int_equal(n.submitted, 0);
    assert_int_equal(fake.nitems, 1);
    assert_int_equal(jobs_in(f, "PENDING"), 6);
    /* Treated as an interrupted submission: the marker is kept, expired so the next
     * attempt need not wait, and the order is the retry queue's. */
    assert_int_equal(expired_markers(f), 1);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM retry_queue WHERE job_type ="
                           " 'PRINT_JOB_CREATION' AND status = 'PENDING'",
                           NULL),
                     1);

    /* The next attempt lists the queue and adopts the item; the other jobs add theirs. */
    fake.add = OK;
    err e = {0};
    assert_int_equal(print_service_submit_pending(f->s, TENANT, NULL, &n, &e), 0);
    assert_int_equal(n.submitted, 6);
    assert_int_equal(fake.lists, 1);
    assert_int_equal(fake.adds, 6);
    assert_int_equal(fake.nitems, 6);
    assert_int_equal(jobs_in(f, "QUEUED"), 6);
    assert_items_held_once(f);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM print_jobs WHERE submit_lease_until IS NULL", NULL), 6);
}

static void test_add_failures_that_created_nothing(void **state)
{
    fx *f = *state;
    requeue(f, NULL, 0);
    assert_int_equal(fake.adds, 6);
    /* A foot job is PENDING again without its item (as after a SimplyPrint-side removal);
     * the three other foot jobs hold the items of the same file. */
    char foot[65];
    job_id(f, "ap-foot", 1, 1, foot);
    fake_remove_item(load(f, foot).queue_item_id);
    set_status(f, foot, "PENDING", NULL);

    /* No answer, and nothing was created: the marker is kept all the same (we cannot know). */
    fake.add = TIMEOUT;
    print_run_counts n;
    err e = {0};
    assert_int_equal(print_service_submit_pending(f->s, TENANT, NULL, &n, &e), F3_ETRANSIENT);
    assert_int_equal(expired_markers(f), 1);
    assert_int_equal(fake.nitems, 5);

    /* The next attempt finds only items other jobs hold: it takes none and adds one. */
    fake.add = OK;
    assert_int_equal(print_service_submit_pending(f->s, TENANT, NULL, &n, &e), 0);
    assert_int_equal(n.submitted, 1);
    assert_int_equal(fake.lists, 1);
    assert_int_equal(fake.adds, 7);
    assert_int_equal(jobs_in(f, "QUEUED"), 6);
    assert_items_held_once(f);

    /* A 429 says SimplyPrint did nothing: no marker, the next attempt adds without listing. */
    fake_remove_item(load(f, foot).queue_item_id);
    set_status(f, foot, "PENDING", NULL);
    fake.add = LIMITED;
    assert_int_equal(print_service_submit_pending(f->s, TENANT, NULL, &n, &e), F3_ETRANSIENT);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM print_jobs WHERE submit_lease_until IS NOT NULL", NULL), 0);
    fake.add = OK;
    assert_int_equal(print_service_submit_pending(f->s, TENANT, NULL, &n, &e), 0);
    assert_int_equal(fake.lists, 1);
    assert_int_equal(fake.adds, 8);
    assert_int_equal(jobs_in(f, "QUEUED"), 6);
    assert_items_held_once(f);
}

/* ---- creation --------------------------------------------------------------------------- */

static void test_creation_is_idempotent(void **state)
{
    fx *f = *state;
    /* 2 units x (1 body + 2 feet) = 6 jobs; BOX has no mapping. */
    print_run_counts n = requeue(f, NULL, 0);
    assert_int_equal(n.created.created, 6);
    assert_int_equal(n.created.unmapped, 1);
    assert_int_equal(n.submitted, 6);
    assert_int_equal(jobs_in(f, "QUEUED"), 6);
    assert_int_equal(fake.adds, 6);
    assert_int_equal(logs(f, "print-job.unmapped"), 1);
    assert_int_equal(queued(f, CHANGED_Q), 6);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM print_jobs WHERE queue_group_id = '3'"
                           " AND simplyprint_queue_item_id IS NOT NULL",
                           NULL),
                     6);

    /* A re-run (a redelivered order.created, a requeue) adds and submits nothing. */
    n = requeue(f, NULL, 0);
    assert_int_equal(n.created.created, 0);
    assert_int_equal(n.created.existing, 6);
    assert_int_equal(n.submitted, 0);
    assert_int_equal(fake.adds, 6);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM print_jobs", NULL), 6);

    /* A mapping added later: only the missing line item's job appears. */
    exec(f, "INSERT INTO product_mappings (id, tenant_id, sku, name, created_at, updated_at)"
            " VALUES ('pm-box', '" TENANT "', 'BOX', 'Box', 0, 0)");
    exec(f, "INSERT INTO assembly_parts (id, tenant_id, product_mapping_id, part_number,"
            " part_name, simplyprint_file_id, quantity_per_unit, created_at, updated_at) VALUES"
            " ('ap-box', '" TENANT "', 'pm-box', 1, 'Box', 'f-box', 1, 0, 0)");
    n = requeue(f, "li-box", 0);
    assert_int_equal(n.created.created, 1);
    assert_int_equal(n.created.existing, 0);
    assert_int_equal(n.submitted, 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM print_jobs", NULL), 7);
    n = requeue(f, NULL, 0);
    assert_int_equal(n.created.created, 0);
    assert_int_equal(n.created.existing, 7);

    /* Unknown order / line item. */
    print_run_counts x;
    err e = {0};
    assert_int_equal(print_service_requeue(f->s, TENANT, "nope", NULL, &x, &e), F3_ENOTFOUND);
    assert_int_equal(print_service_requeue(f->s, TENANT, ORDER, "li-nope", &x, &e), F3_ENOTFOUND);
    assert_int_equal(print_service_requeue(f->s, "other-tenant", ORDER, NULL, &x, &e),
                     F3_ENOTFOUND);
}

static void test_order_created_event_and_redelivery(void **state)
{
    fx *f = *state;
    /* The real path: order.created published by the orders service, handled by the print
     * service's subscription; then the same order announced again. */
    print_service_free(f->s);
    bus_free(f->b);
    const bus_worker_opts fast = {
        .poll_ms = 20, .stalled_interval_ms = -1, .repeat_interval_ms = -1, .trim_interval_ms = -1};
    err e = {0};
    f->b = bus_new_with(f->tb.d, f->tb.s, BUS_SVC_PRINT, &fast, &e);
    assert_non_null(f->b);
    print_service_deps d = {.db = f->tb.d,
                            .bus = f->b,
                            .store = f->tb.s,
                            .config = f->cfg,
                            .provider = &fake_provider,
                            .tenant_id = TENANT};
    assert_int_equal(print_service_start(&f->s, &d, NULL, &e), 0);
    assert_int_equal(bus_start(f->b, &e), 0);
    bus *orders = bus_new(f->tb.d, f->tb.s, BUS_SVC_ORDER, &e);
    assert_non_null(orders);
    json_t *ev = json_pack("{s:s,s:[{s:s,s:s,s:i},{s:s,s:s,s:i}]}", "orderId", ORDER, "lineItems",
                           "lineItemId", "li-vase", "productSku", "VASE", "quantity", 2,
                           "lineItemId", "li-box", "productSku", "BOX", "quantity", 1);
    assert_int_equal(bus_publish(orders, NULL, BUS_EV_ORDER_CREATED, TENANT, ev, &e), 0);
    assert_true(f3test_bus_wait_count(f->tb.s, "order.created@print-service", BUS_STATE_COMPLETED,
                                      1, 15000));
    assert_int_equal(jobs_in(f, "QUEUED"), 6);
    assert_int_equal(bus_publish(orders, NULL, BUS_EV_ORDER_CREATED, TENANT, ev, &e), 0);
    assert_true(f3test_bus_wait_count(f->tb.s, "order.created@print-service", BUS_STATE_COMPLETED,
                                      2, 15000));
    assert_int_equal(count(f, "SELECT COUNT(*) FROM print_jobs", NULL), 6);
    assert_int_equal(fake.adds, 6);
    json_decref(ev);
    /* An order cancelled before its order.created arrived gets no jobs. */
    exec(f, "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number,"
            " customer_name, status, created_at, updated_at) VALUES ('o-2', '" TENANT "',"
            " '9002', '#1002', 'Bob', 'CANCELLED', 0, 0)");
    exec(f, "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, sku, title,"
            " quantity, created_at, updated_at) VALUES ('li-2', '" TENANT "', 'o-2', '601',"
            " 'VASE', 'Vase', 1, 1, 1)");
    ev = json_pack("{s:s,s:[{s:s,s:s,s:i}]}", "orderId", "o-2", "lineItems", "lineItemId", "li-2",
                   "productSku", "VASE", "quantity", 1);
    assert_int_equal(bus_publish(orders, NULL, BUS_EV_ORDER_CREATED, TENANT, ev, &e), 0);
    assert_true(f3test_bus_wait_count(f->tb.s, "order.created@print-service", BUS_STATE_COMPLETED,
                                      3, 15000));
    assert_int_equal(count(f, "SELECT COUNT(*) FROM print_jobs WHERE order_id = 'o-2'", NULL), 0);
    json_decref(ev);
    bus_drain(f->b, 10000);
    bus_free(orders);
}

/* ---- submission errors ------------------------------------------------------------------- */

static void test_transient_then_permanent_submission(void **state)
{
    fx *f = *state;
    fake.add = TRANSIENT;
    print_run_counts n = requeue(f, NULL, F3_ETRANSIENT);
    assert_int_equal(n.created.created, 6);
    assert_int_equal(n.submitted, 0);
    assert_int_equal(jobs_in(f, "PENDING"), 6);
    assert_int_equal(queued(f, CHANGED_Q), 0);
    /* The order was handed to the retry queue: one PRINT_JOB_CREATION entry for the order,
     * not one per job. A 503 may come after SimplyPrint queued the item: the job that got
     * it keeps its lease as the marker of an interrupted submission (the others were not
     * tried). */
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM print_jobs WHERE submit_lease_until IS NULL", NULL), 5);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM retry_queue WHERE job_type ="
                           " 'PRINT_JOB_CREATION' AND status = 'PENDING' AND payload LIKE $1",
                           "%\"" ORDER "\"%"),
                     1);
    /* One failure is enough to know SimplyPrint is busy: the order's other jobs wait. */
    assert_int_equal(n.deferred, 6);

    fake.add = PERMANENT;
    print_run_counts x;
    err e = {0};
    assert_int_equal(print_service_submit_pending(f->s, NULL, NULL, &x, &e), 0);
    assert_int_equal(x.failed, 6);
    assert_int_equal(jobs_in(f, "FAILED"), 6);
    assert_int_equal(queued(f, FAILED_Q), 6);
    assert_int_equal(queued(f, CHANGED_Q), 6);
    assert_int_equal(logs(f, "operator.alert"), 6);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM print_jobs WHERE error_message LIKE $1",
                           "%File not found in library%"),
                     6);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM event_log WHERE severity = 'ERROR'", NULL), 12);

    /* Retry of a failed job: PENDING again, retry_count 1, resubmitted. */
    fake.add = OK;
    char id[65];
    job_id(f, "ap-body", 0, 0, id);
    print_job_row after;
    assert_int_equal(print_service_retry(f->s, TENANT, id, "u-1", &after, &e), 0);
    assert_int_equal(after.info.status, PRINT_JOB_QUEUED);
    assert_int_equal(after.info.retry_count, 1);
    assert_string_equal(after.info.error_message, "");
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM bus_jobs WHERE queue = '" CHANGED_Q "'"
                           " AND data LIKE '%\"newStatus\":\"PENDING\"%'",
                           NULL),
                     1);
    /* Only FAILED or CANCELLED jobs are retried. */
    assert_int_equal(print_service_retry(f->s, TENANT, id, NULL, &after, &e), F3_ECONFLICT);
    assert_int_equal(print_service_retry(f->s, TENANT, "nope", NULL, &after, &e), F3_ENOTFOUND);
}

static void test_no_connection_defers(void **state)
{
    fx *f = *state;
    err e = {0};
    assert_int_equal(print_service_disconnect(f->s, TENANT, NULL, &e), 0);
    print_run_counts n = requeue(f, NULL, 0);
    assert_int_equal(n.created.created, 6);
    assert_int_equal(n.deferred, 6);
    assert_int_equal(jobs_in(f, "PENDING"), 6);
    /* Connected again: the sweep of the reconciliation run submits them. */
    print_connect_rq rq = {.company_id = "4242", .api_key = GOOD};
    assert_int_equal(print_service_connect(f->s, TENANT, &rq, NULL, &e), 0);
    int applied = 0;
    assert_int_equal(print_service_reconcile(f->s, &applied, &e), 0);
    assert_int_equal(jobs_in(f, "QUEUED"), 6);
}

/* ---- status reports ---------------------------------------------------------------------- */

static void test_reports_duplicate_out_of_order(void **state)
{
    fx *f = *state;
    requeue(f, NULL, 0);
    char id[65];
    job_id(f, "ap-body", 0, 0, id);
    int64_t q = load(f, id).queue_item_id;
    assert_true(q > 1000);
    int64_t changed0 = queued(f, CHANGED_Q);

    assert_int_equal(report(f, q, PRINT_JOB_PRINTING, 100, 0), PRINT_CHANGED);
    assert_int_equal(report(f, q, PRINT_JOB_PRINTING, 100, 0), PRINT_UNCHANGED); /* duplicate */
    assert_int_equal(report(f, q, PRINT_JOB_COMPLETED, 200, 0), PRINT_CHANGED);
    assert_int_equal(report(f, q, PRINT_JOB_PRINTING, 150, 0), PRINT_STALE);       /* late */
    assert_int_equal(report(f, q, PRINT_JOB_PRINTING, 300, 0), PRINT_NOT_ALLOWED); /* never back */
    assert_int_equal(report(f, q, PRINT_JOB_FAILED, 400, 0), PRINT_NOT_ALLOWED);
    assert_int_equal(load(f, id).info.status, PRINT_JOB_COMPLETED);
    assert_int_equal(queued(f, CHANGED_Q), changed0 + 2);
    assert_int_equal(queued(f, COMPLETED_Q), 1);

    /* Out of order the other way: "done" first, then the older "started". */
    char id2[65];
    job_id(f, "ap-body", 1, 0, id2);
    int64_t q2 = load(f, id2).queue_item_id;
    assert_int_equal(report(f, q2, PRINT_JOB_COMPLETED, 500, 0), PRINT_CHANGED);
    assert_int_equal(report(f, q2, PRINT_JOB_PRINTING, 450, 0), PRINT_STALE);
    assert_int_equal(load(f, id2).info.status, PRINT_JOB_COMPLETED);
    assert_int_equal(queued(f, COMPLETED_Q), 2);

    /* Failure with the provider's reason; a report about no job of ours. */
    char id3[65];
    job_id(f, "ap-foot", 0, 1, id3);
    print_sp_report r;
    memset(&r, 0, sizeof r);
    r.status = PRINT_JOB_FAILED;
    r.queue_item_id = load(f, id3).queue_item_id;
    snprintf(r.message, sizeof r.message, "Nozzle clog detected");
    err e = {0};
    print_change_outcome oc;
    assert_int_equal(print_service_apply_report(f->s, TENANT, &r, &oc, &e), 0);
    assert_int_equal(oc, PRINT_CHANGED);
    assert_string_equal(load(f, id3).info.error_message, "Nozzle clog detected");
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM bus_jobs WHERE queue = '" FAILED_Q "'"
                           " AND data LIKE '%Nozzle clog detected%'",
                           NULL),
                     1);
    report(f, 999999, PRINT_JOB_PRINTING, 1, F3_ENOTFOUND);
}

static void test_webhook_bodies(void **state)
{
    (void)state;
    print_sp_report r;
    bool relevant = false;
    char event[64];
    err e = {0};
    const char *done = "{\"webhook_id\":42,\"event\":\"job.done\",\"timestamp\":1773484800,"
                       "\"data\":{\"job\":{\"id\":456,\"uid\":\"u-456\",\"state\":\"completed\","
                       "\"printer\":{\"id\":123,\"name\":\"MK4-01\"},"
                       "\"queue_item\":{\"id\":1001}}}}";
    assert_int_equal(print_sp_report_from_webhook(done, strlen(done), &r, &relevant, event, &e), 0);
    assert_true(relevant);
    assert_string_equal(event, "job.done");
    assert_int_equal(r.status, PRINT_JOB_COMPLETED);
    assert_int_equal(r.queue_item_id, 1001);
    assert_string_equal(r.sp_job_id, "456");
    assert_string_equal(r.sp_job_uid, "u-456");
    assert_string_equal(r.printer_name, "MK4-01");
    assert_int_equal(r.reported_at, 1773484800000LL);

    const char *started = "{\"webhook_id\":42,\"event\":\"job.started\",\"timestamp\":1773481200,"
                          "\"data\":{\"job\":{\"id\":9,\"uid\":\"u-9\",\"printer_id\":7}}}";
    assert_int_equal(
        print_sp_report_from_webhook(started, strlen(started), &r, &relevant, event, &e), 0);
    assert_int_equal(r.status, PRINT_JOB_PRINTING);
    assert_int_equal(r.queue_item_id, 0);
    assert_string_equal(r.sp_job_id, "9");
    assert_string_equal(r.printer_id, "7");

    const char *printer = "{\"webhook_id\":42,\"event\":\"printer.material_changed\","
                          "\"timestamp\":1773481200,\"data\":{}}";
    assert_int_equal(
        print_sp_report_from_webhook(printer, strlen(printer), &r, &relevant, event, &e), 0);
    assert_false(relevant);

    const char *bad[] = {"nope", "[]", "{\"event\":1}", "{\"event\":\"job.done\"}",
                         "{\"event\":\"job.done\",\"data\":{\"job\":{}}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(
            print_sp_report_from_webhook(bad[i], strlen(bad[i]), &r, &relevant, event, &e),
            F3_EINVAL);
}

static void test_webhook_uid_resolved_through_provider(void **state)
{
    fx *f = *state;
    requeue(f, NULL, 0);
    char id[65];
    job_id(f, "ap-foot", 1, 0, id);
    int64_t q = load(f, id).queue_item_id;
    /* The webhook names only the job uid; SimplyPrint's job details name the queue item. */
    fake_history(77, "u-77", q, SP_JOB_ONGOING, 0);
    print_sp_report r;
    memset(&r, 0, sizeof r);
    r.status = PRINT_JOB_PRINTING;
    snprintf(r.sp_job_id, sizeof r.sp_job_id, "77");
    snprintf(r.sp_job_uid, sizeof r.sp_job_uid, "u-77");
    print_change_outcome oc;
    err e = {0};
    assert_int_equal(print_service_apply_report(f->s, TENANT, &r, &oc, &e), 0);
    assert_int_equal(oc, PRINT_CHANGED);
    print_job_row row = load(f, id);
    assert_int_equal(row.info.status, PRINT_JOB_PRINTING);
    assert_string_equal(row.sp_job_id, "77");
    /* Now known by its SimplyPrint job id without asking again. */
    fake.nhistory = 0;
    r.status = PRINT_JOB_COMPLETED;
    assert_int_equal(print_service_apply_report(f->s, TENANT, &r, &oc, &e), 0);
    assert_int_equal(load(f, id).info.status, PRINT_JOB_COMPLETED);
}

/* ---- reconciliation ------------------------------------------------------------------------ */

static void test_poller_heals_dropped_webhooks(void **state)
{
    fx *f = *state;
    requeue(f, NULL, 0);
    char done_id[65], printing_id[65], failed_id[65], waiting_id[65];
    job_id(f, "ap-body", 0, 0, done_id);
    job_id(f, "ap-body", 1, 0, printing_id);
    job_id(f, "ap-foot", 0, 0, failed_id);
    job_id(f, "ap-foot", 0, 1, waiting_id);
    int64_t q_done = load(f, done_id).queue_item_id;
    int64_t q_print = load(f, printing_id).queue_item_id;
    int64_t q_fail = load(f, failed_id).queue_item_id;
    /* Their webhooks never came: finished and failed items left the queue, the printing one
     * is still in it; the history tells. */
    fake_remove_item(q_done);
    fake_remove_item(q_fail);
    fake_history(1, "u-1", q_done, SP_JOB_DONE, 1773484800);
    fake_history(2, "u-2", q_print, SP_JOB_ONGOING, 0);
    fake_history(3, "u-3", q_fail, SP_JOB_FAILED, 1773484900);
    snprintf(fake.history[2].reason, sizeof fake.history[2].reason, "Spaghetti detected");
    int applied = 0;
    err e = {0};
    assert_int_equal(print_service_reconcile(f->s, &applied, &e), 0);
    assert_int_equal(applied, 3);
    assert_int_equal(load(f, done_id).info.status, PRINT_JOB_COMPLETED);
    assert_int_equal(load(f, printing_id).info.status, PRINT_JOB_PRINTING);
    assert_int_equal(load(f, failed_id).info.status, PRINT_JOB_FAILED);
    assert_string_equal(load(f, failed_id).info.error_message, "Spaghetti detected");
    assert_int_equal(load(f, waiting_id).info.status, PRINT_JOB_QUEUED);
    /* A second run finds nothing new; a late webhook cannot undo the healed state. */
    assert_int_equal(print_service_reconcile(f->s, &applied, &e), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(report(f, q_done, PRINT_JOB_PRINTING, 1773484000, 0), PRINT_STALE);
    assert_int_equal(queued(f, COMPLETED_Q), 1);

    /* SimplyPrint down: the run fails (the repeatable job is retried), nothing changes. */
    fake.get = TRANSIENT;
    assert_int_not_equal(print_service_reconcile(f->s, &applied, &e), 0);
    assert_int_equal(load(f, waiting_id).info.status, PRINT_JOB_QUEUED);
}

/* A job the history does not show: the poller reads older pages only while the history is
 * not older than the jobs it waits for, and never more than its bound. */
static void test_poller_history_paging_is_bounded(void **state)
{
    fx *f = *state;
    requeue(f, NULL, 0);
    char id[65];
    job_id(f, "ap-body", 0, 0, id);
    fake_remove_item(load(f, id).queue_item_id); /* gone, and no history of it */
    int applied = 0;
    err e = {0};
    /* Prints of the last hours, page after page: read on, but not for ever. */
    fake.history_pages = 100000;
    fake.history_started_s = clock_now_ms() / 1000;
    assert_int_equal(print_service_reconcile(f->s, &applied, &e), 0);
    assert_int_equal(applied, 0);
    assert_true(fake.history_calls > 5);
    assert_true(fake.history_calls < 1000);
    assert_int_equal(load(f, id).info.status, PRINT_JOB_QUEUED);
    /* History a day older than every job we wait for: one page says enough. */
    fake.history_calls = 0;
    fake.history_started_s = clock_now_ms() / 1000 - 24 * 3600;
    assert_int_equal(print_service_reconcile(f->s, &applied, &e), 0);
    assert_int_equal(fake.history_calls, 1);
    assert_int_equal(load(f, id).info.status, PRINT_JOB_QUEUED);
}

/* ---- cancellation --------------------------------------------------------------------------- */

static void test_cancel_in_every_state(void **state)
{
    fx *f = *state;
    fake.add = TRANSIENT;
    requeue(f, NULL, F3_ETRANSIENT); /* six PENDING jobs */
    static const char *const statuses[] = {"PENDING",   "QUEUED", "ASSIGNED", "PRINTING",
                                           "COMPLETED", "FAILED", "CANCELLED"};
    static const char *const parts[][3] = {
        {"ap-body", "0", "0"}, {"ap-body", "1", "0"}, {"ap-foot", "0", "0"},
        {"ap-foot", "0", "1"}, {"ap-foot", "1", "0"}, {"ap-foot", "1", "1"},
    };
    char ids[7][65];
    for (int i = 0; i < 6; i++)
        job_id(f, parts[i][0], (int)strtol(parts[i][1], NULL, 10),
               (int)strtol(parts[i][2], NULL, 10), ids[i]);
    /* The 7th state: reuse the PENDING job afterwards. */
    for (int i = 1; i < 6; i++) {
        char qi[16];
        snprintf(qi, sizeof qi, "%d", 500 + i);
        set_status(f, ids[i], statuses[i], qi);
    }
    err e = {0};
    print_job_row after;
    for (int i = 0; i < 6; i++) {
        int rc = print_service_cancel(f->s, TENANT, ids[i], "u-1", &after, &e);
        if (i <= 3) {
            assert_int_equal(rc, 0);
            assert_int_equal(after.info.status, PRINT_JOB_CANCELLED);
        } else {
            assert_int_equal(rc, F3_ECONFLICT);
            assert_string_equal(print_job_status_name(load(f, ids[i]).info.status), statuses[i]);
        }
    }
    assert_int_equal(fake.deletes, 3); /* QUEUED, ASSIGNED, PRINTING had queue items */
    assert_int_equal(print_service_cancel(f->s, TENANT, ids[0], NULL, &after, &e), F3_ECONFLICT);
    assert_int_equal(queued(f, CANCELLED_Q), 4);

    /* The provider refuses the removal: cancelled locally anyway, its error kept. */
    print_job_row again;
    fake.add = OK;
    assert_int_equal(print_service_retry(f->s, TENANT, ids[1], NULL, &again, &e), 0);
    assert_int_equal(again.info.status, PRINT_JOB_QUEUED);
    fake.del = TRANSIENT;
    assert_int_equal(print_service_cancel(f->s, TENANT, ids[1], NULL, &after, &e), 0);
    assert_int_equal(after.info.status, PRINT_JOB_CANCELLED);
    assert_non_null(strstr(after.info.error_message, "Service unavailable"));
    /* ... and its removal handed to the retry queue in the same transaction. */
    char item[32];
    snprintf(item, sizeof item, "%%%lld%%", (long long)again.queue_item_id);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM retry_queue WHERE job_type = 'CANCELLATION'"
                           " AND payload LIKE $1",
                           item),
                     1);
}

static fx *racing;

/* An operator cancels every PENDING job while its submission is in flight. */
static void cancel_all_pending(void)
{
    fake.on_add = NULL;
    err e = {0};
    db_conn *c = db_acquire(racing->tb.d, &e);
    db_stmt *s = db_prepare(c, "SELECT id FROM print_jobs WHERE status = 'PENDING'", &e);
    char ids[8][65];
    int n = 0;
    while (n < 8 && db_step(s, &e) == DB_ROW)
        db_col_copy(s, 0, ids[n++], 65);
    db_finalize(s);
    db_release(c);
    for (int i = 0; i < n; i++)
        assert_int_equal(print_service_cancel(racing->s, TENANT, ids[i], NULL, NULL, &e), 0);
}

static void test_cancelled_during_submission(void **state)
{
    fx *f = *state;
    racing = f;
    fake.on_add = cancel_all_pending;
    print_run_counts n = requeue(f, NULL, 0);
    assert_int_equal(jobs_in(f, "CANCELLED"), 6);
    /* The first submission raced the cancel: its new queue item was removed again; the
     * others were cancelled before they went out. */
    assert_int_equal(n.submitted, 0);
    assert_int_equal(fake.adds, 1);
    assert_int_equal(fake.deletes, 1);
    assert_int_equal(fake.nitems, 0);
    assert_int_equal(jobs_in(f, "QUEUED"), 0);
}

typedef struct submitter {
    print_service *s;
    int rc;
} submitter;

static void *submit_thread(void *arg)
{
    submitter *t = arg;
    print_run_counts n;
    err e = {0};
    t->rc = print_service_submit_pending(t->s, TENANT, NULL, &n, &e);
    return NULL;
}

static void test_two_instances_submit_each_job_once(void **state)
{
    fx *f = *state;
    fake.add = TRANSIENT;
    requeue(f, NULL, F3_ETRANSIENT); /* six PENDING jobs */
    fake.add = OK;
    /* Two instances (two services on one database) sweep at once, three times each. */
    print_service *other = start(f, false);
    for (int round = 0; round < 3; round++) {
        submitter a = {f->s, -1}, b = {other, -1};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, submit_thread, &a);
        pthread_create(&tb, NULL, submit_thread, &b);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        assert_int_equal(a.rc, 0);
        assert_int_equal(b.rc, 0);
    }
    assert_int_equal(jobs_in(f, "QUEUED"), 6);
    assert_int_equal(fake.adds, 6);
    assert_int_equal(queued(f, CHANGED_Q), 6);
    print_service_free(other);
}

static void test_order_cancelled(void **state)
{
    fx *f = *state;
    requeue(f, NULL, 0); /* six QUEUED jobs */
    char ids[6][65];
    job_id(f, "ap-body", 0, 0, ids[0]);
    job_id(f, "ap-body", 1, 0, ids[1]);
    job_id(f, "ap-foot", 0, 0, ids[2]);
    job_id(f, "ap-foot", 0, 1, ids[3]);
    job_id(f, "ap-foot", 1, 0, ids[4]);
    job_id(f, "ap-foot", 1, 1, ids[5]);
    set_status(f, ids[0], "PENDING", NULL);
    set_status(f, ids[2], "ASSIGNED", "1003");
    set_status(f, ids[3], "PRINTING", "1004");
    set_status(f, ids[4], "COMPLETED", "1005");
    set_status(f, ids[5], "FAILED", NULL);
    fake.del = PERMANENT; /* removal refused: still cancelled locally */
    err e = {0};
    assert_int_equal(print_service_order_cancelled(f->s, NULL, TENANT, ORDER, &e), 0);
    assert_int_equal(load(f, ids[0]).info.status, PRINT_JOB_CANCELLED);
    assert_int_equal(load(f, ids[1]).info.status, PRINT_JOB_CANCELLED);
    assert_int_equal(load(f, ids[2]).info.status, PRINT_JOB_CANCELLED);
    assert_non_null(strstr(load(f, ids[2]).info.error_message, "File not found in library"));
    assert_int_equal(load(f, ids[3]).info.status, PRINT_JOB_PRINTING);
    assert_int_equal(load(f, ids[4]).info.status, PRINT_JOB_COMPLETED);
    assert_int_equal(load(f, ids[5]).info.status, PRINT_JOB_FAILED);
    assert_int_equal(logs(f, "print-job.needs-review"), 1);
    assert_int_equal(queued(f, CANCELLED_Q), 3);
    /* The two refused removals (QUEUED, ASSIGNED) each wait in the retry queue. */
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM retry_queue WHERE job_type = 'CANCELLATION'", NULL), 2);
    /* Requeueing a cancelled order adds nothing. */
    exec(f, "UPDATE orders SET status = 'CANCELLED'");
    print_run_counts x;
    assert_int_equal(print_service_requeue(f->s, TENANT, ORDER, NULL, &x, &e), F3_ECONFLICT);
}

/* ---- credentials ------------------------------------------------------------------------------
 */

static void test_credentials_at_runtime(void **state)
{
    fx *f = *state;
    err e = {0};
    /* Bootstrapped from the settings at start: one connected event. */
    assert_int_equal(queued(f, INTEG_Q), 1);
    void *c1 = NULL, *c2 = NULL;
    assert_int_equal(print_service_client(f->s, TENANT, &c1, &e), 0);
    assert_int_equal(print_service_client(f->s, TENANT, &c2, &e), 0);
    assert_ptr_equal(c1, c2);
    assert_string_equal(((fake_client *)c1)->key, GOOD);
    int made = fake.clients_made;

    /* A restart with the same settings changes nothing. */
    print_service *again = start(f, true);
    assert_int_equal(queued(f, INTEG_Q), 1);

    /* A wrong key is refused before anything is stored. */
    print_connect_rq bad = {.company_id = "4242", .api_key = "sp-wrong"};
    assert_int_equal(print_service_connect(f->s, TENANT, &bad, NULL, &e), F3_EPERMANENT);
    assert_int_equal(queued(f, INTEG_Q), 1);
    print_connect_rq malformed = {.company_id = "abc", .api_key = GOOD};
    assert_int_equal(print_service_connect(f->s, TENANT, &malformed, NULL, &e), F3_EINVAL);

    /* A new key through the other instance (another process): this one picks it up. */
    print_connect_rq fresh = {.company_id = "4242", .api_key = "sp-good-2"};
    char secret[65];
    assert_int_equal(print_service_connect(again, TENANT, &fresh, secret, &e), 0);
    assert_string_equal(secret, "whsec-1"); /* the stored webhook secret is kept */
    assert_int_equal(queued(f, INTEG_Q), 2);
    void *c3 = NULL;
    assert_int_equal(print_service_client(f->s, TENANT, &c3, &e), 0);
    assert_ptr_not_equal(c3, c1);
    assert_string_equal(((fake_client *)c3)->key, "sp-good-2");
    assert_true(fake.clients_made > made);
    /* The key is sealed at rest. */
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM simplyprint_connections WHERE api_key_sealed"
                           " LIKE '%sp-good%' OR webhook_secret_sealed LIKE '%whsec%'",
                           NULL),
                     0);

    /* A restart keeps the key set through the API: the settings (still GOOD) only seed a
     * tenant without a connection. */
    print_service *restarted = start(f, true);
    assert_int_equal(queued(f, INTEG_Q), 2);
    void *c4 = NULL;
    assert_int_equal(print_service_client(restarted, TENANT, &c4, &e), 0);
    assert_string_equal(((fake_client *)c4)->key, "sp-good-2");
    print_service_free(restarted);

    /* Disconnected: no client, jobs wait. */
    assert_int_equal(print_service_disconnect(again, TENANT, "u-1", &e), 0);
    assert_int_equal(queued(f, INTEG_Q), 3);
    assert_int_equal(print_service_client(f->s, TENANT, &c3, &e), F3_ENOTFOUND);
    assert_int_equal(print_service_disconnect(f->s, TENANT, NULL, &e), F3_ENOTFOUND);
    print_service_free(again);
    /* ... and stays so across a restart. */
    restarted = start(f, true);
    assert_int_equal(queued(f, INTEG_Q), 3);
    assert_int_equal(print_service_client(restarted, TENANT, &c3, &e), F3_ENOTFOUND);
    print_service_free(restarted);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_creation_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_created_event_and_redelivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_then_permanent_submission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_connection_defers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reports_duplicate_out_of_order, setup, teardown),
        cmocka_unit_test(test_webhook_bodies),
        cmocka_unit_test_setup_teardown(test_webhook_uid_resolved_through_provider, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_poller_heals_dropped_webhooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poller_history_paging_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_in_every_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_during_submission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_instances_submit_each_job_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credentials_at_runtime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_submission_adopted_by_poller, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_add_timeout_after_create_adopted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_failures_that_created_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_submission_adopted_by_report, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
