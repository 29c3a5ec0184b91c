/* F3_TEST: backends
 * test_orders_orchestration.c - orchestration with the real database and bus: orders, line
 * items and print jobs are written with SQL (standing in for the print service), print-job
 * events are published through a bus of the print service, and the orders service's bus
 * runs the handlers. Progress, completion with one order.ready-for-fulfillment despite
 * duplicates, partial failure, an item settled by another item's job, all failed, all
 * cancelled, revival, a cancelled order never revived, out-of-order events, unknown and
 * foreign events ignored, two instances handling one order's events at once, and the
 * in-process announcement of changes after their commit.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"

#include "bus/bus.h"
#include "core/clock.h"
#include "services/orders/orchestration.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

#define TENANT    "t-orch"
#define OTHER     "t-other"
#define READY_Q   "order.ready-for-fulfillment@shipping-service"
#define SETTLE_MS 20000

typedef struct instance {
    db *d;        /* borrowed or owned (own_db) */
    bus_store *s; /* owned */
    bus *b;       /* owned */
    orders_orchestration *orch;
    bool own_db;
} instance;

typedef struct fx {
    f3test_bus tb;
    bus *print;      /* publishes print-job.* as the print service does */
    bus_emitter *em; /* the orders service's in-process emitter, shared by the instances */
    instance one, two;
    int64_t tick;           /* print_jobs.updated_at of the next change */
    atomic_int announced;   /* order.status_changed heard */
    atomic_int unseen;      /* ... of which the new status was not yet visible stored */
    atomic_int ready_calls; /* on_ready hook calls */
    int ready_fail_first;   /* fail this many on_ready calls (rolling the change back) */
} fx;

/* What a listener asks another thread to look up. */
typedef struct lookup {
    fx *f;
    char query[160];
    const char *order;
    int64_t found;
} lookup;

static void *look_up(void *arg)
{
    lookup *l = arg;
    l->found = f3test_bus_count(l->f->tb.d, l->query, l->order);
    return NULL;
}

/* order.status_changed listener: the change it announces must be committed already, seen
 * from another thread (on SQLite that is another connection, outside the handler's
 * transaction). */
static int on_status_changed(const char *event, const json_t *p, void *ctx, err *e)
{
    (void)event;
    (void)e;
    lookup l = {.f = ctx, .order = json_string_value(json_object_get(p, "orderId"))};
    const char *status = json_string_value(json_object_get(p, "newStatus"));
    snprintf(l.query, sizeof l.query, "SELECT COUNT(*) FROM orders WHERE id = $1 AND status = '%s'",
             status && strspn(status, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == strlen(status) ? status
                                                                                       : "?");
    pthread_t t;
    if (pthread_create(&t, NULL, look_up, &l) != 0 || pthread_join(t, NULL) != 0 || l.found != 1)
        atomic_fetch_add(&l.f->unseen, 1);
    atomic_fetch_add(&l.f->announced, 1);
    return 0;
}

/* Waits until n changes were announced (the listener runs just after the commit, so it
 * may come after the queues look settled), then checks no more came. */
static void wait_announced(fx *f, int n)
{
    int64_t end = clock_mono_ms() + SETTLE_MS;
    while (atomic_load(&f->announced) < n && clock_mono_ms() < end)
        f3test_sleep_ms(10);
    f3test_sleep_ms(50);
    assert_int_equal(atomic_load(&f->announced), n);
}

static int on_ready(void *ctx, db_conn *tx, const char *tenant_id, const char *order_id, err *e)
{
    (void)tx;
    (void)tenant_id;
    fx *f = ctx;
    if (atomic_fetch_add(&f->ready_calls, 1) < f->ready_fail_first)
        return err_set(e, F3_ETRANSIENT, "on_ready fails for %s", order_id);
    return 0;
}

static void instance_start(fx *f, instance *in, bool own_db)
{
    err e = {0};
    in->own_db = own_db;
    in->d = f->tb.d;
    db_opts o = {.pool_size = 30};
    if (own_db && db_open(f->tb.url, &o, &in->d, &e) != 0)
        fail_msg("db_open: %s", e.msg);
    if (bus_store_open_sql(in->d, &in->s, &e) != 0)
        fail_msg("bus_store_open_sql: %s", e.msg);
    bus_worker_opts wo = {.poll_ms = 50};
    in->b = bus_new_with(in->d, in->s, BUS_SVC_ORDER, &wo, &e);
    if (!in->b)
        fail_msg("bus_new: %s", e.msg);
    orders_orchestration_deps deps = {
        .bus = in->b, .emitter = f->em, .on_ready = on_ready, .on_ready_ctx = f};
    if (orders_orchestration_start(&in->orch, &deps, &e) != 0)
        fail_msg("orders_orchestration_start: %s", e.msg);
    if (bus_start(in->b, &e) != 0)
        fail_msg("bus_start: %s", e.msg);
}

static void instance_stop(instance *in)
{
    if (!in->b)
        return;
    bus_free(in->b);
    orders_orchestration_free(in->orch);
    bus_store_close(in->s);
    if (in->own_db)
        db_close(in->d);
    memset(in, 0, sizeof *in);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f3test_bus_new(&f->tb, backend);
    f3test_bus_exec(f->tb.d, "INSERT INTO tenants (id, name, slug, created_at, updated_at)"
                             " VALUES ('" TENANT "', 'Shop', 'shop', 0, 0),"
                             " ('" OTHER "', 'Other', 'other', 0, 0)");
    err e = {0};
    f->print = bus_new(f->tb.d, f->tb.s, BUS_SVC_PRINT, &e);
    if (!f->print)
        fail_msg("bus_new(print): %s", e.msg);
    f->tick = 1000;
    f->em = bus_emitter_new();
    if (!f->em || bus_emitter_on(f->em, BUS_IEV_ORDER_STATUS_CHANGED, on_status_changed, f) != 0)
        fail_msg("bus_emitter");
    instance_start(f, &f->one, false);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    instance_stop(&f->two);
    instance_stop(&f->one);
    bus_free(f->print);
    bus_emitter_free(f->em);
    f3test_bus_drop(&f->tb);
    free(f);
    return 0;
}

/* ---- the print service's side, written by hand ------------------------------------------ */

static void sql(fx *f, const char *text, int n, ...)
{
    err e = {0};
    const char *p[8];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        p[i] = va_arg(ap, const char *);
    va_end(ap);
    db_conn *c = db_acquire(f->tb.d, &e);
    assert_non_null(c);
    if (db_exec_texts(c, text, p, n, NULL, &e) != 0)
        fail_msg("%s: %s", text, e.msg);
    db_release(c);
}

static void add_order(fx *f, const char *tenant, const char *id, const char *status)
{
    sql(f,
        "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number, status,"
        " customer_name, created_at, updated_at) VALUES ($2, $1, $2, '#' || $2, $3, 'Ann', 0, 0)",
        3, tenant, id, status);
}

static void add_item(fx *f, const char *tenant, const char *order, const char *id)
{
    sql(f,
        "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, title, quantity,"
        " created_at, updated_at) VALUES ($3, $1, $2, $3, 'Vase', 1, 0, 0)",
        3, tenant, order, id);
}

static void add_job(fx *f, const char *tenant, const char *order, const char *item, const char *id,
                    const char *status)
{
    sql(f,
        "INSERT INTO print_jobs (id, tenant_id, order_id, line_item_id, part_key, status,"
        " created_at, updated_at) VALUES ($4, $1, $2, $3, $4, $5, 0, 0)",
        5, tenant, order, item, id, status);
}

static void set_job(fx *f, const char *id, const char *status, const char *error)
{
    char at[24];
    db_ms_text(++f->tick, at);
    sql(f,
        "UPDATE print_jobs SET status = $2, error_message = $3, updated_at = CAST($4 AS BIGINT)"
        " WHERE id = $1",
        4, id, status, error, at);
}

/* A PENDING order of TENANT with two line items of one PENDING job each. */
static void add_pending_pair(fx *f, const char *order, const char *item1, const char *job1,
                             const char *item2, const char *job2)
{
    add_order(f, TENANT, order, "PENDING");
    add_item(f, TENANT, order, item1);
    add_item(f, TENANT, order, item2);
    add_job(f, TENANT, order, item1, job1, "PENDING");
    add_job(f, TENANT, order, item2, job2, "PENDING");
}

/* Publishes one print-job event of TENANT (or `tenant`) as the print service would. */
static void publish(fx *f, const char *tenant, const char *type, const char *job, const char *order,
                    const char *item, const char *prev, const char *now)
{
    json_t *fields =
        json_pack("{s:s,s:s,s:s}", "printJobId", job, "orderId", order, "lineItemId", item);
    if (strcmp(type, BUS_EV_PRINT_JOB_STATUS_CHANGED) == 0) {
        json_object_set_new(fields, "previousStatus", json_string(prev));
        json_object_set_new(fields, "newStatus", json_string(now));
    }
    if (strcmp(type, BUS_EV_PRINT_JOB_FAILED) == 0)
        json_object_set_new(fields, "errorMessage", json_string("Nozzle clog detected"));
    err e = {0};
    if (bus_publish(f->print, NULL, type, tenant, fields, &e) != 0)
        fail_msg("publish %s: %s", type, e.msg);
    json_decref(fields);
}

/* A job moves (stored first, then announced): status-changed, plus completed / failed /
 * cancelled when it ends so. */
static void move(fx *f, const char *order, const char *item, const char *job, const char *from,
                 const char *to)
{
    bool failed = strcmp(to, "FAILED") == 0;
    set_job(f, job, to, failed ? "Nozzle clog detected" : NULL);
    publish(f, TENANT, BUS_EV_PRINT_JOB_STATUS_CHANGED, job, order, item, from, to);
    if (strcmp(to, "COMPLETED") == 0)
        publish(f, TENANT, BUS_EV_PRINT_JOB_COMPLETED, job, order, item, NULL, NULL);
    if (failed)
        publish(f, TENANT, BUS_EV_PRINT_JOB_FAILED, job, order, item, NULL, NULL);
    if (strcmp(to, "CANCELLED") == 0)
        publish(f, TENANT, BUS_EV_PRINT_JOB_CANCELLED, job, order, item, NULL, NULL);
}

/* ---- looking ---------------------------------------------------------------------------- */

static int64_t count(fx *f, const char *text, const char *param)
{
    return f3test_bus_count(f->tb.d, text, param);
}

/* Waits until the orders service's event queues have nothing left to run; no delivery
 * may have failed for good. */
static void settle(fx *f)
{
    int64_t end = clock_mono_ms() + SETTLE_MS;
    while (count(f,
                 "SELECT COUNT(*) FROM bus_jobs WHERE queue LIKE '%@order-service'"
                 " AND state IN ('waiting', 'active')",
                 NULL) > 0) {
        if (clock_mono_ms() > end)
            fail_msg("the orders service's queues did not drain");
        f3test_sleep_ms(20);
    }
    int64_t failed = count(f,
                           "SELECT COUNT(*) FROM bus_jobs WHERE queue LIKE '%@order-service'"
                           " AND state = 'failed'",
                           NULL);
    assert_int_equal(failed, 0);
}

static char *text_of(fx *f, const char *query, const char *param)
{
    err e = {0};
    db_conn *c = db_acquire(f->tb.d, &e);
    assert_non_null(c);
    db_stmt *s = db_prepare_texts(c, query, &param, 1, &e);
    assert_non_null(s);
    if (db_step(s, &e) != DB_ROW)
        fail_msg("%s (%s): no row", query, param);
    const char *v = db_col_text(s, 0);
    char *out = strdup(v ? v : "(null)");
    db_finalize(s);
    db_release(c);
    return out;
}

static void expect_text(fx *f, const char *query, const char *param, const char *want)
{
    char *v = text_of(f, query, param);
    char got[256];
    snprintf(got, sizeof got, "%s", v);
    free(v);
    if (strcmp(got, want) != 0)
        fail_msg("%s (%s): '%s', want '%s'", query, param, got, want);
}

static void expect_order(fx *f, const char *id, const char *status)
{
    expect_text(f, "SELECT status FROM orders WHERE id = $1", id, status);
}

static void expect_item(fx *f, const char *id, const char *status)
{
    expect_text(f, "SELECT status FROM line_items WHERE id = $1", id, status);
}

static int64_t logged(fx *f, const char *order, const char *type)
{
    char q[200];
    snprintf(q, sizeof q,
             "SELECT COUNT(*) FROM event_log WHERE tenant_id = '" TENANT "' AND order_id = $1"
             " AND event_type = '%s'",
             type);
    return count(f, q, order);
}

/* Entries of moves of the order into `status` (however many steps led there). */
static int64_t moved_to(fx *f, const char *order, const char *status)
{
    char q[300];
    snprintf(q, sizeof q,
             "SELECT COUNT(*) FROM event_log WHERE tenant_id = '" TENANT "' AND order_id = $1"
             " AND event_type = '" ORCH_LOG_STATUS_CHANGED "'"
             " AND metadata LIKE '%%\"newStatus\":\"%s\"%%'",
             status);
    return count(f, q, order);
}

static int64_t ready_events(fx *f, const char *order)
{
    return count(f,
                 "SELECT COUNT(*) FROM bus_jobs WHERE queue = '" READY_Q "'"
                 " AND data LIKE '%' || $1 || '%'",
                 order);
}

/* ---- scenarios -------------------------------------------------------------------------- */

static void test_first_queued_job_starts_the_order(void **state)
{
    fx *f = *state;
    add_order(f, TENANT, "o1", "PENDING");
    add_item(f, TENANT, "o1", "li1");
    add_job(f, TENANT, "o1", "li1", "j1", "PENDING");
    add_job(f, TENANT, "o1", "li1", "j2", "PENDING");
    move(f, "o1", "li1", "j1", "PENDING", "QUEUED");
    settle(f);
    expect_order(f, "o1", "PROCESSING");
    expect_item(f, "li1", "PROCESSING");
    assert_int_equal(logged(f, "o1", ORCH_LOG_STATUS_CHANGED), 1);
    move(f, "o1", "li1", "j1", "QUEUED", "PRINTING");
    move(f, "o1", "li1", "j2", "PENDING", "QUEUED");
    settle(f);
    expect_order(f, "o1", "PROCESSING");
    assert_int_equal(logged(f, "o1", ORCH_LOG_STATUS_CHANGED), 1);
    expect_text(f, "SELECT CAST(completed_at IS NULL AS TEXT) FROM orders WHERE id = $1", "o1",
                strcmp(backend, "postgres") == 0 ? "true" : "1");
}

static void run_to_completion(fx *f, const char *order, const char *const *items,
                              const char *const *jobs, int n)
{
    for (int i = 0; i < n; i++)
        move(f, order, items[i], jobs[i], "PENDING", "QUEUED");
    for (int i = 0; i < n; i++)
        move(f, order, items[i], jobs[i], "QUEUED", "PRINTING");
    for (int i = 0; i < n; i++)
        move(f, order, items[i], jobs[i], "PRINTING", "COMPLETED");
}

static void test_all_completed_is_ready_once_despite_duplicates(void **state)
{
    fx *f = *state;
    add_order(f, TENANT, "o2", "PENDING");
    add_item(f, TENANT, "o2", "li-a");
    add_item(f, TENANT, "o2", "li-b");
    const char *items[] = {"li-a", "li-a", "li-b"};
    const char *jobs[] = {"ja1", "ja2", "jb1"};
    for (int i = 0; i < 3; i++)
        add_job(f, TENANT, "o2", items[i], jobs[i], "PENDING");
    run_to_completion(f, "o2", items, jobs, 3);
    /* The print service announces again (webhook and poller both saw the end). */
    for (int i = 0; i < 3; i++) {
        publish(f, TENANT, BUS_EV_PRINT_JOB_COMPLETED, jobs[i], "o2", items[i], NULL, NULL);
        publish(f, TENANT, BUS_EV_PRINT_JOB_STATUS_CHANGED, jobs[i], "o2", items[i], "PRINTING",
                "COMPLETED");
    }
    settle(f);
    expect_order(f, "o2", "COMPLETED");
    expect_item(f, "li-a", "COMPLETED");
    expect_item(f, "li-b", "COMPLETED");
    assert_int_equal(ready_events(f, "o2"), 1);
    assert_int_equal(logged(f, "o2", ORCH_LOG_READY), 1);
    assert_int_equal(
        count(f, "SELECT COUNT(*) FROM orders WHERE id = $1 AND completed_at > 0", "o2"), 1);
    /* The same event delivered twice (a second job carrying one eventId): no effect. */
    char *data =
        text_of(f,
                "SELECT data FROM bus_jobs WHERE queue = 'print-job.completed@order-service'"
                " AND data LIKE '%' || $1 || '%'",
                "jb1");
    f3test_bus_add(f->one.s, "print-job.completed@order-service", NULL, data, NULL);
    free(data);
    settle(f);
    assert_int_equal(ready_events(f, "o2"), 1);
    assert_int_equal(moved_to(f, "o2", "COMPLETED"), 1);
}

static void test_partial_failure_then_revival(void **state)
{
    fx *f = *state;
    add_pending_pair(f, "o3", "li-ok", "j-ok", "li-bad", "j-bad");
    move(f, "o3", "li-ok", "j-ok", "PENDING", "QUEUED");
    move(f, "o3", "li-bad", "j-bad", "PENDING", "QUEUED");
    move(f, "o3", "li-ok", "j-ok", "QUEUED", "COMPLETED");
    move(f, "o3", "li-bad", "j-bad", "QUEUED", "FAILED");
    settle(f);
    expect_order(f, "o3", "PARTIALLY_COMPLETED");
    expect_item(f, "li-ok", "COMPLETED");
    expect_item(f, "li-bad", "FAILED");
    expect_text(f, "SELECT error_message FROM line_items WHERE id = $1", "li-bad",
                "Nozzle clog detected");
    assert_int_equal(logged(f, "o3", ORCH_LOG_PARTIAL), 1);
    assert_int_equal(ready_events(f, "o3"), 0);
    /* An operator retries the failed job: the order is revived, then completes. */
    move(f, "o3", "li-bad", "j-bad", "FAILED", "PENDING");
    settle(f);
    expect_order(f, "o3", "PROCESSING");
    expect_item(f, "li-bad", "PENDING");
    assert_int_equal(logged(f, "o3", ORCH_LOG_REVIVED), 1);
    move(f, "o3", "li-bad", "j-bad", "PENDING", "QUEUED");
    move(f, "o3", "li-bad", "j-bad", "QUEUED", "COMPLETED");
    settle(f);
    expect_order(f, "o3", "COMPLETED");
    expect_item(f, "li-bad", "COMPLETED");
    expect_text(f, "SELECT COALESCE(error_message, '-') FROM line_items WHERE id = $1", "li-bad",
                "-");
    assert_int_equal(ready_events(f, "o3"), 1);
}

/* A line item whose jobs all ended settles when the order's last job is heard of, even when
 * that job belongs to another item and no event of the first item's jobs comes again. */
static void test_item_settles_when_another_items_job_is_heard_of(void **state)
{
    fx *f = *state;
    add_pending_pair(f, "o11", "li11-ok", "j11-ok", "li11-bad", "j11-bad");
    move(f, "o11", "li11-ok", "j11-ok", "PENDING", "COMPLETED");
    settle(f);
    expect_order(f, "o11", "PROCESSING");
    expect_item(f, "li11-ok", "PROCESSING"); /* j11-bad not heard of yet */
    move(f, "o11", "li11-bad", "j11-bad", "PENDING", "FAILED");
    settle(f);
    expect_order(f, "o11", "PARTIALLY_COMPLETED");
    expect_item(f, "li11-ok", "COMPLETED");
    expect_item(f, "li11-bad", "FAILED");
    expect_text(f, "SELECT error_message FROM line_items WHERE id = $1", "li11-bad",
                "Nozzle clog detected");
}

/* A line item with two failed jobs carries the error of the one that failed last. */
static void test_failed_item_carries_the_newest_error(void **state)
{
    fx *f = *state;
    add_order(f, TENANT, "o13", "PENDING");
    add_item(f, TENANT, "o13", "li13");
    add_job(f, TENANT, "o13", "li13", "j13a", "PENDING");
    add_job(f, TENANT, "o13", "li13", "j13b", "PENDING");
    set_job(f, "j13a", "FAILED", "Zebra stripes on layer 3");
    publish(f, TENANT, BUS_EV_PRINT_JOB_FAILED, "j13a", "o13", "li13", NULL, NULL);
    settle(f);
    set_job(f, "j13b", "FAILED", "Axis stuck");
    publish(f, TENANT, BUS_EV_PRINT_JOB_FAILED, "j13b", "o13", "li13", NULL, NULL);
    settle(f);
    expect_item(f, "li13", "FAILED");
    expect_text(f, "SELECT error_message FROM line_items WHERE id = $1", "li13", "Axis stuck");
}

/* order.status_changed is heard once per committed change, after its commit: the move to
 * COMPLETED whose first transaction was rolled back (on_ready failed) is announced once. */
static void test_changes_are_announced_after_commit(void **state)
{
    fx *f = *state;
    f->ready_fail_first = 1;
    add_order(f, TENANT, "o12", "PENDING");
    add_item(f, TENANT, "o12", "li12");
    add_job(f, TENANT, "o12", "li12", "j12", "PENDING");
    move(f, "o12", "li12", "j12", "PENDING", "QUEUED");
    settle(f);
    wait_announced(f, 1);
    move(f, "o12", "li12", "j12", "QUEUED", "COMPLETED");
    int64_t end = clock_mono_ms() + SETTLE_MS;
    while (atomic_load(&f->ready_calls) < 2 && clock_mono_ms() < end)
        f3test_sleep_ms(20);
    settle(f);
    expect_order(f, "o12", "COMPLETED");
    assert_int_equal(atomic_load(&f->ready_calls), 2);
    wait_announced(f, 2);
    assert_int_equal(atomic_load(&f->unseen), 0);
    assert_int_equal(moved_to(f, "o12", "COMPLETED"), 1);
}

static void test_all_failed_and_all_cancelled(void **state)
{
    fx *f = *state;
    add_order(f, TENANT, "o4", "PENDING");
    add_item(f, TENANT, "o4", "li4");
    add_job(f, TENANT, "o4", "li4", "j4a", "PENDING");
    add_job(f, TENANT, "o4", "li4", "j4b", "PENDING");
    move(f, "o4", "li4", "j4a", "PENDING", "QUEUED");
    move(f, "o4", "li4", "j4a", "QUEUED", "FAILED");
    move(f, "o4", "li4", "j4b", "PENDING", "FAILED");
    settle(f);
    expect_order(f, "o4", "FAILED");
    expect_item(f, "li4", "FAILED");
    assert_int_equal(logged(f, "o4", ORCH_LOG_ALL_FAILED), 1);

    /* Every job cancelled one by one while the order itself was not: FAILED, with reason. */
    add_order(f, TENANT, "o5", "PROCESSING");
    add_item(f, TENANT, "o5", "li5");
    add_job(f, TENANT, "o5", "li5", "j5a", "QUEUED");
    add_job(f, TENANT, "o5", "li5", "j5b", "QUEUED");
    move(f, "o5", "li5", "j5a", "QUEUED", "CANCELLED");
    settle(f);
    expect_order(f, "o5", "PROCESSING");
    move(f, "o5", "li5", "j5b", "QUEUED", "CANCELLED");
    settle(f);
    expect_order(f, "o5", "FAILED");
    expect_item(f, "li5", "CANCELLED");
    assert_int_equal(logged(f, "o5", ORCH_LOG_FAILED), 1);
    assert_int_equal(logged(f, "o5", ORCH_LOG_ALL_FAILED), 0);
    /* A cancelled job requeued revives it. */
    move(f, "o5", "li5", "j5b", "CANCELLED", "QUEUED");
    settle(f);
    expect_order(f, "o5", "PROCESSING");
    assert_int_equal(logged(f, "o5", ORCH_LOG_REVIVED), 1);
}

static void test_cancelled_order_is_never_revived(void **state)
{
    fx *f = *state;
    add_order(f, TENANT, "o6", "CANCELLED");
    add_item(f, TENANT, "o6", "li6");
    add_job(f, TENANT, "o6", "li6", "j6", "QUEUED");
    move(f, "o6", "li6", "j6", "QUEUED", "CANCELLED");
    move(f, "o6", "li6", "j6", "CANCELLED", "QUEUED");
    move(f, "o6", "li6", "j6", "QUEUED", "COMPLETED");
    settle(f);
    expect_order(f, "o6", "CANCELLED");
    assert_int_equal(logged(f, "o6", ORCH_LOG_STATUS_CHANGED), 0);
    assert_int_equal(logged(f, "o6", ORCH_LOG_REVIVED), 0);
    assert_int_equal(ready_events(f, "o6"), 0);
}

/* The jobs reach their end before the orders service hears anything; the events then
 * arrive newest first, with stale statuses in them. */
static void test_out_of_order_events(void **state)
{
    fx *f = *state;
    add_order(f, TENANT, "o7", "PENDING");
    add_item(f, TENANT, "o7", "li7");
    add_job(f, TENANT, "o7", "li7", "j7a", "PENDING");
    add_job(f, TENANT, "o7", "li7", "j7b", "PENDING");
    set_job(f, "j7a", "COMPLETED", NULL);
    set_job(f, "j7b", "COMPLETED", NULL);
    publish(f, TENANT, BUS_EV_PRINT_JOB_COMPLETED, "j7b", "o7", "li7", NULL, NULL);
    publish(f, TENANT, BUS_EV_PRINT_JOB_STATUS_CHANGED, "j7b", "o7", "li7", "PRINTING",
            "COMPLETED");
    publish(f, TENANT, BUS_EV_PRINT_JOB_STATUS_CHANGED, "j7a", "o7", "li7", "QUEUED", "PRINTING");
    publish(f, TENANT, BUS_EV_PRINT_JOB_STATUS_CHANGED, "j7a", "o7", "li7", "PENDING", "QUEUED");
    publish(f, TENANT, BUS_EV_PRINT_JOB_COMPLETED, "j7a", "o7", "li7", NULL, NULL);
    settle(f);
    expect_order(f, "o7", "COMPLETED");
    expect_item(f, "li7", "COMPLETED");
    assert_int_equal(ready_events(f, "o7"), 1);
    assert_int_equal(logged(f, "o7", ORCH_LOG_STATUS_CHANGED), 1); /* PENDING -> COMPLETED */
    /* Late reports of a completed order move nothing. */
    publish(f, TENANT, BUS_EV_PRINT_JOB_FAILED, "j7a", "o7", "li7", NULL, NULL);
    publish(f, TENANT, BUS_EV_PRINT_JOB_STATUS_CHANGED, "j7a", "o7", "li7", "COMPLETED", "QUEUED");
    settle(f);
    expect_order(f, "o7", "COMPLETED");
    assert_int_equal(ready_events(f, "o7"), 1);
}

/* Unknown jobs, jobs of another tenant, an event naming the wrong order: logged and
 * acknowledged (settle checks nothing was dead-lettered), nothing moves. */
static void test_unknown_and_foreign_events_are_ignored(void **state)
{
    fx *f = *state;
    add_order(f, OTHER, "o8", "PENDING");
    add_item(f, OTHER, "o8", "li8");
    add_job(f, OTHER, "o8", "li8", "j8", "COMPLETED");
    add_order(f, TENANT, "o9", "PENDING");
    add_item(f, TENANT, "o9", "li9");
    add_job(f, TENANT, "o9", "li9", "j9", "COMPLETED");
    publish(f, TENANT, BUS_EV_PRINT_JOB_COMPLETED, "no-such-job", "o8", "li8", NULL, NULL);
    publish(f, TENANT, BUS_EV_PRINT_JOB_COMPLETED, "j8", "o8", "li8", NULL, NULL);
    publish(f, TENANT, BUS_EV_PRINT_JOB_COMPLETED, "j9", "o8", "li9", NULL, NULL);
    settle(f);
    expect_text(f, "SELECT status FROM orders WHERE id = $1", "o8", "PENDING");
    expect_order(f, "o9", "PENDING");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM bus_jobs WHERE queue = '" READY_Q "'", NULL),
                     0);

    /* The same, called directly, says what it did; bad input is refused. */
    err e = {0};
    db_conn *c = db_acquire(f->tb.d, &e);
    assert_non_null(c);
    assert_int_equal(db_begin(c, &e), 0);
    json_t *fields =
        json_pack("{s:s,s:s,s:s}", "printJobId", "j8", "orderId", "o8", "lineItemId", "li8");
    orch_outcome out;
    assert_int_equal(
        orders_orchestrate(c, f->one.b, BUS_EV_PRINT_JOB_COMPLETED, TENANT, fields, &out, &e), 0);
    assert_true(out.ignored);
    assert_int_equal(
        orders_orchestrate(c, f->one.b, BUS_EV_ORDER_CREATED, TENANT, fields, &out, &e), F3_EINVAL);
    json_object_del(fields, "printJobId");
    assert_int_equal(
        orders_orchestrate(c, f->one.b, BUS_EV_PRINT_JOB_COMPLETED, TENANT, fields, &out, &e),
        F3_EINVAL);
    json_object_set_new(fields, "printJobId", json_string("j9"));
    json_object_set_new(fields, "orderId", json_string("o9"));
    assert_int_equal(
        orders_orchestrate(c, f->one.b, BUS_EV_PRINT_JOB_COMPLETED, TENANT, fields, &out, &e), 0);
    assert_false(out.ignored);
    assert_int_equal(out.from, ORDER_PENDING);
    assert_int_equal(out.to, ORDER_COMPLETED);
    assert_int_equal(out.item, ORCH_ITEM_COMPLETED);
    assert_int_equal(db_rollback(c, &e), 0); /* nothing of it stays */
    db_release(c);
    json_decref(fields);
    expect_order(f, "o9", "PENDING");
}

/* Two instances (two workers; on PostgreSQL two database handles) take one order's events
 * at once: the right status, one ready-for-fulfillment, one move into COMPLETED. */
static void test_two_instances_one_order(void **state)
{
    fx *f = *state;
    instance_start(f, &f->two, strcmp(backend, "postgres") == 0);
    enum { N = 6 };
    add_order(f, TENANT, "o10", "PENDING");
    add_item(f, TENANT, "o10", "li10a");
    add_item(f, TENANT, "o10", "li10b");
    const char *items[N], *jobs[N] = {"k1", "k2", "k3", "k4", "k5", "k6"};
    for (int i = 0; i < N; i++) {
        items[i] = i % 2 ? "li10b" : "li10a";
        add_job(f, TENANT, "o10", items[i], jobs[i], "PENDING");
    }
    run_to_completion(f, "o10", items, jobs, N);
    for (int i = 0; i < N; i++)
        publish(f, TENANT, BUS_EV_PRINT_JOB_COMPLETED, jobs[i], "o10", items[i], NULL, NULL);
    settle(f);
    expect_order(f, "o10", "COMPLETED");
    expect_item(f, "li10a", "COMPLETED");
    expect_item(f, "li10b", "COMPLETED");
    assert_int_equal(ready_events(f, "o10"), 1);
    assert_int_equal(logged(f, "o10", ORCH_LOG_READY), 1);
    assert_int_equal(moved_to(f, "o10", "COMPLETED"), 1);
    /* Every event reached the orders service once per publish, and nothing is left. */
    int64_t total =
        count(f, "SELECT COUNT(*) FROM bus_jobs WHERE queue LIKE '%@order-service'", NULL);
    assert_int_equal(total, 5 * N); /* 3 status changes + 2 completed per job */
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_queued_job_starts_the_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_completed_is_ready_once_despite_duplicates, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_partial_failure_then_revival, setup, teardown),
        cmocka_unit_test_setup_teardown(test_item_settles_when_another_items_job_is_heard_of, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_item_carries_the_newest_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_are_announced_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_failed_and_all_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_order_is_never_revived, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_and_foreign_events_are_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_instances_one_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
