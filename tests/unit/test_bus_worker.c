/* F3_TEST: backends
 * test_bus_worker.c - the worker runtime (src/bus/worker.c) on SQLite and PostgreSQL
 * (argv[1]): retries and dead-lettering through real handlers, failure classification,
 * handler transactions and the inbox (redelivery, concurrent duplicates), after-commit
 * work, drain, lease renewal, lock tokens, prefetch (order, concurrency, given back on
 * drain), misuse. Several workers at once: test_bus_worker_multi.c.
 */
#include "support/f3test_bus.h"

#include "bus/worker.h"
#include "core/clock.h"
#include "core/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

#define Q       "test.jobs"
#define WAIT_MS 20000
#define FAST_OPT                                                                                   \
    {                                                                                              \
        .poll_ms = 50, .stalled_interval_ms = -1, .repeat_interval_ms = -1, .trim_interval_ms = -1 \
    }

static int setup(void **state)
{
    return f3test_bus_setup(state, backend);
}

static int teardown(void **state)
{
    return f3test_bus_teardown(state);
}

/* ---- handlers ------------------------------------------------------------------------------ */

#define MAX_CALLS 64

/* What a test handler does and what it saw. */
typedef struct hctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int rc;                /* what to return */
    int fail_first;        /* fail this many calls with F3_ETRANSIENT, then succeed */
    int busy_first;        /* fail this many calls with F3_EBUSY (a lost race), then succeed */
    bool write_side;       /* write a side row in the delivery tx */
    const char *side_only; /* ... only for this job id (NULL = every job) */
    int sleep_ms;          /* before anything */
    int sleep_in_tx_ms;    /* after the write, with the tx open */
    bool gate;             /* wait until `open` */
    const char *gate_only; /* ... only for this job id (NULL = every job) */
    bool open;
    int started;
    atomic_int calls;
    atomic_int running; /* handlers of this ctx running right now */
    atomic_int overlap; /* times one job id ran twice at once */
    int64_t run_at[MAX_CALLS];
    char token[128];
} hctx;

static void hctx_init(hctx *h)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
}

static void hctx_free(hctx *h)
{
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
}

static void gate_open(hctx *h)
{
    pthread_mutex_lock(&h->mu);
    h->open = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static bool wait_started(hctx *h, int n, int timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;
    pthread_mutex_lock(&h->mu);
    while (h->started < n && clock_mono_ms() < end) {
        pthread_mutex_unlock(&h->mu);
        f3test_sleep_ms(5);
        pthread_mutex_lock(&h->mu);
    }
    bool ok = h->started >= n;
    pthread_mutex_unlock(&h->mu);
    return ok;
}

static int test_handler(bus_delivery *dl, void *ctx, err *e)
{
    hctx *h = ctx;
    const bus_job *j = bus_delivery_job(dl);
    int n = atomic_fetch_add(&h->calls, 1);
    if (n < MAX_CALLS)
        h->run_at[n] = j->run_at;
    pthread_mutex_lock(&h->mu);
    h->started++;
    snprintf(h->token, sizeof h->token, "%s", j->lock_token ? j->lock_token : "");
    while (h->gate && !h->open && (!h->gate_only || strcmp(h->gate_only, j->id) == 0))
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    if (h->sleep_ms)
        f3test_sleep_ms(h->sleep_ms);
    if (h->write_side && (!h->side_only || strcmp(h->side_only, j->id) == 0)) {
        db_conn *tx = bus_delivery_tx(dl, e);
        if (!tx)
            return e->code;
        int rc = f3test_bus_side_write(tx, bus_delivery_event_id(dl), "h", e);
        if (rc)
            return rc;
        if (h->sleep_in_tx_ms)
            f3test_sleep_ms(h->sleep_in_tx_ms);
    }
    if (n < h->fail_first)
        return err_set(e, F3_ETRANSIENT, "transient failure %d", n + 1);
    if (n < h->busy_first)
        return err_set(e, F3_EBUSY, "lost a race %d", n + 1);
    if (h->rc)
        return err_set(e, h->rc, "handler says %s", err_name(h->rc));
    return 0;
}

static bus_worker *worker_on(bus_store *s, db *d, const bus_worker_opts *wo, const char *queue,
                             bus_handler fn, void *ctx, const bus_queue_opts *qo)
{
    err e = {0};
    bus_worker *w = bus_worker_new(s, d, wo, &e);
    if (!w)
        fail_msg("bus_worker_new: %s", e.msg);
    if (bus_worker_register(w, queue, fn, ctx, qo, &e) != 0)
        fail_msg("bus_worker_register: %s", e.msg);
    if (bus_worker_start(w, &e) != 0)
        fail_msg("bus_worker_start: %s", e.msg);
    return w;
}

static json_t *errors_of(const bus_job *j)
{
    json_error_t je;
    json_t *a = json_loads(j->errors, 0, &je);
    assert_non_null(a);
    assert_true(json_is_array(a));
    return a;
}

static int64_t error_at(json_t *errors, size_t i)
{
    return json_integer_value(json_object_get(json_array_get(errors, i), "at"));
}

/* ---- retries and classification ---------------------------------------------------------- */

/* Waits until the job has `n` finished attempts; the job then (caller frees). */
static bus_job *wait_attempts(bus_store *s, const char *queue, const char *id, int n)
{
    int64_t end = clock_mono_ms() + WAIT_MS;
    for (;;) {
        bus_job *j = f3test_bus_get(s, queue, id);
        if (j->attempts_made >= n || clock_mono_ms() >= end)
            return j;
        bus_job_free(j);
        f3test_sleep_ms(10);
    }
}

/* The default schedule, read from stored fields: a retry is due 1 s, 2 s, 4 s after the
 * failed attempt; with the default 3 attempts the third failure dead-letters the job.
 * (The 4 s delay is read from a 4-attempt job's schedule without waiting it out.) */
static void test_default_backoff_then_dead_letter(void **state)
{
    f3test_bus *f = *state;
    hctx h3, h4;
    hctx_init(&h3);
    hctx_init(&h4);
    h3.rc = h4.rc = F3_ETRANSIENT;
    f3test_bus_add(f->s, "three", "job-3", NULL, NULL);
    f3test_bus_add(f->s, "four", "job-4", NULL, &(bus_job_opts){.attempts = 4});
    bus_worker_opts wo = FAST_OPT;
    err e = {0};
    bus_worker *w = bus_worker_new(f->s, f->d, &wo, &e);
    assert_non_null(w);
    assert_int_equal(bus_worker_register(w, "three", test_handler, &h3, NULL, &e), 0);
    assert_int_equal(bus_worker_register(w, "four", test_handler, &h4, NULL, &e), 0);
    assert_int_equal(bus_worker_start(w, &e), 0);
    assert_true(f3test_bus_wait_state(f->s, "three", "job-3", BUS_STATE_FAILED, WAIT_MS));
    bus_job *j = wait_attempts(f->s, "four", "job-4", 3);
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);

    assert_int_equal(j->attempts_made, 3);
    assert_int_equal(j->state, BUS_STATE_DELAYED);
    json_t *errs = errors_of(j);
    assert_int_equal(json_array_size(errs), 3);
    assert_int_equal(h4.run_at[1] - error_at(errs, 0), 1000);
    assert_int_equal(h4.run_at[2] - error_at(errs, 1), 2000);
    assert_int_equal(j->run_at - error_at(errs, 2), 4000);
    json_decref(errs);
    bus_job_free(j);

    j = f3test_bus_get(f->s, "three", "job-3");
    errs = errors_of(j);
    assert_int_equal(json_array_size(errs), 3);
    assert_int_equal(j->attempts_made, 3);
    assert_int_equal(atomic_load(&h3.calls), 3);
    assert_string_equal(j->failed_reason, "handler says transient failure");
    assert_int_equal(h3.run_at[1] - error_at(errs, 0), 1000);
    assert_int_equal(h3.run_at[2] - error_at(errs, 1), 2000);
    json_decref(errs);
    bus_job_free(j);
    hctx_free(&h3);
    hctx_free(&h4);
}

static void test_fixed_backoff_retries_until_dead(void **state)
{
    f3test_bus *f = *state;
    hctx h;
    hctx_init(&h);
    h.rc = F3_EIO; /* any negative code but the permanent ones is worth retrying */
    bus_job_opts o = {.attempts = 4, .backoff = {BUS_BACKOFF_FIXED, 50}};
    f3test_bus_add(f->s, Q, "j", NULL, &o);
    bus_worker_opts wo = FAST_OPT;
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, test_handler, &h, NULL);
    assert_true(f3test_bus_wait_state(f->s, Q, "j", BUS_STATE_FAILED, WAIT_MS));
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    bus_job *j = f3test_bus_get(f->s, Q, "j");
    json_t *errs = errors_of(j);
    assert_int_equal(json_array_size(errs), 4);
    assert_int_equal(atomic_load(&h.calls), 4);
    for (int i = 1; i < 4; i++)
        assert_int_equal(h.run_at[i] - error_at(errs, (size_t)i - 1), 50);
    json_decref(errs);
    bus_job_free(j);
    hctx_free(&h);
}

static void test_permanent_failures_are_not_retried(void **state)
{
    f3test_bus *f = *state;
    hctx perm, inval, trans;
    hctx_init(&perm);
    hctx_init(&inval);
    hctx_init(&trans);
    perm.rc = F3_EPERMANENT;
    inval.rc = F3_EINVAL;
    trans.fail_first = 2;
    bus_job_opts o = {.attempts = 5, .backoff = {BUS_BACKOFF_FIXED, 20}};
    f3test_bus_add(f->s, "perm", "p", NULL, &o);
    f3test_bus_add(f->s, "inval", "i", NULL, &o);
    f3test_bus_add(f->s, "trans", "t", NULL, &o);
    bus_worker_opts wo = FAST_OPT;
    err e = {0};
    bus_worker *w = bus_worker_new(f->s, f->d, &wo, &e);
    assert_non_null(w);
    assert_int_equal(bus_worker_register(w, "perm", test_handler, &perm, NULL, &e), 0);
    assert_int_equal(bus_worker_register(w, "inval", test_handler, &inval, NULL, &e), 0);
    assert_int_equal(bus_worker_register(w, "trans", test_handler, &trans, NULL, &e), 0);
    assert_int_equal(bus_worker_start(w, &e), 0);
    assert_true(f3test_bus_wait_state(f->s, "perm", "p", BUS_STATE_FAILED, WAIT_MS));
    assert_true(f3test_bus_wait_state(f->s, "inval", "i", BUS_STATE_FAILED, WAIT_MS));
    assert_true(f3test_bus_wait_state(f->s, "trans", "t", BUS_STATE_COMPLETED, WAIT_MS));
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    assert_int_equal(atomic_load(&perm.calls), 1);
    assert_int_equal(atomic_load(&inval.calls), 1);
    assert_int_equal(atomic_load(&trans.calls), 3);
    bus_job *j = f3test_bus_get(f->s, "perm", "p");
    assert_int_equal(j->attempts_made, 1);
    assert_string_equal(j->failed_reason, "handler says permanent failure");
    bus_job_free(j);
    j = f3test_bus_get(f->s, "trans", "t");
    assert_int_equal(j->attempts_made, 3);
    json_t *errs = errors_of(j);
    assert_int_equal(json_array_size(errs), 2);
    json_decref(errs);
    bus_job_free(j);
    hctx_free(&perm);
    hctx_free(&inval);
    hctx_free(&trans);
}

/* A prepare hook that rejects a job is a permanent failure and the handler never runs. */
static int reject_prepare(bus_delivery *dl, void *ctx, err *e)
{
    (void)ctx;
    return err_set(e, F3_EINVAL, "job %s: payload is malformed", bus_delivery_job(dl)->id);
}

static void test_rejected_by_prepare_is_dead_lettered_at_once(void **state)
{
    f3test_bus *f = *state;
    hctx h;
    hctx_init(&h);
    f3test_bus_add(f->s, Q, "bad", NULL, NULL);
    bus_worker_opts wo = FAST_OPT;
    bus_queue_opts qo = {.prepare = reject_prepare};
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, test_handler, &h, &qo);
    assert_true(f3test_bus_wait_state(f->s, Q, "bad", BUS_STATE_FAILED, WAIT_MS));
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    assert_int_equal(atomic_load(&h.calls), 0);
    bus_job *j = f3test_bus_get(f->s, Q, "bad");
    assert_int_equal(j->attempts_made, 1);
    assert_string_equal(j->failed_reason, "job bad: payload is malformed");
    bus_job_free(j);
    hctx_free(&h);
}

/* ---- transactions and the inbox ------------------------------------------------------------- */

static void test_failed_handler_writes_are_rolled_back(void **state)
{
    f3test_bus *f = *state;
    hctx h;
    hctx_init(&h);
    h.write_side = true;
    h.fail_first = 2;
    bus_job_opts o = {.attempts = 5, .backoff = {BUS_BACKOFF_FIXED, 20}};
    f3test_bus_add(f->s, Q, "ev-1", NULL, &o);
    bus_worker_opts wo = FAST_OPT;
    bus_queue_opts qo = {.flags = BUS_QUEUE_INBOX};
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, test_handler, &h, &qo);
    assert_true(f3test_bus_wait_state(f->s, Q, "ev-1", BUS_STATE_COMPLETED, WAIT_MS));
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    assert_int_equal(atomic_load(&h.calls), 3);
    assert_int_equal(
        f3test_bus_count(f->d, "SELECT COUNT(*) FROM side WHERE event_id = $1", "ev-1"), 1);
    assert_int_equal(
        f3test_bus_count(f->d, "SELECT COUNT(*) FROM bus_inbox WHERE event_id = $1", "ev-1"), 1);
    hctx_free(&h);
}

/* What after-commit registrations saw. */
typedef struct acctx {
    db *d;
    atomic_int attempts;
    atomic_int ran;     /* fn calls */
    atomic_int dropped; /* drop calls */
    atomic_int visible; /* side rows fn saw committed, from another connection */
    atomic_int refused; /* registrations refused without a transaction */
} acctx;

static void ac_run(void *ctx)
{
    acctx *a = ctx;
    atomic_fetch_add(&a->ran, 1);
    atomic_store(&a->visible, (int)f3test_bus_count(
                                  a->d, "SELECT COUNT(*) FROM side WHERE event_id = $1", "ev-1"));
}

static void ac_drop(void *ctx)
{
    acctx *a = ctx;
    atomic_fetch_add(&a->dropped, 1);
}

/* Registers before the transaction (refused), writes a side row, registers, and fails the
 * first attempt after registering. */
static int after_commit_handler(bus_delivery *dl, void *ctx, err *e)
{
    acctx *a = ctx;
    err ignored = {0};
    if (bus_delivery_after_commit(dl, ac_run, ac_drop, a, &ignored) == F3_EINVAL)
        atomic_fetch_add(&a->refused, 1);
    db_conn *tx = bus_delivery_tx(dl, e);
    if (!tx)
        return e->code;
    int rc = f3test_bus_side_write(tx, bus_delivery_event_id(dl), "h", e);
    rc = rc ? rc : bus_delivery_after_commit(dl, ac_run, ac_drop, a, e);
    if (rc == 0 && atomic_fetch_add(&a->attempts, 1) == 0)
        rc = err_set(e, F3_ETRANSIENT, "first attempt fails after registering");
    return rc;
}

/* After-commit work runs only for the attempt that committed, once its writes are
 * visible to other connections; every registration is dropped either way. */
static void test_after_commit_runs_only_when_committed(void **state)
{
    f3test_bus *f = *state;
    acctx a = {.d = f->d};
    bus_job_opts o = {.attempts = 3, .backoff = {BUS_BACKOFF_FIXED, 20}};
    f3test_bus_add(f->s, Q, "ev-1", NULL, &o);
    bus_worker_opts wo = FAST_OPT;
    bus_queue_opts qo = {.flags = BUS_QUEUE_INBOX};
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, after_commit_handler, &a, &qo);
    assert_true(f3test_bus_wait_state(f->s, Q, "ev-1", BUS_STATE_COMPLETED, WAIT_MS));
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    assert_int_equal(atomic_load(&a.attempts), 2);
    assert_int_equal(atomic_load(&a.ran), 1);
    assert_int_equal(atomic_load(&a.visible), 1);
    assert_int_equal(atomic_load(&a.refused), 2);
    assert_int_equal(atomic_load(&a.dropped), 4); /* 2 refused + 2 registered */
}

static void test_redelivered_event_is_acknowledged_without_effect(void **state)
{
    f3test_bus *f = *state;
    hctx h;
    hctx_init(&h);
    h.write_side = true;
    h.side_only = "ev-1";
    f3test_bus_add(f->s, Q, "ev-1", NULL, NULL);
    f3test_bus_add(f->s, Q, "ev-2", NULL, NULL); /* handled without the tx: batched path */
    bus_worker_opts wo = FAST_OPT;
    bus_queue_opts qo = {.flags = BUS_QUEUE_INBOX, .consumer = "print-service"};
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, test_handler, &h, &qo);
    assert_true(f3test_bus_wait_state(f->s, Q, "ev-1", BUS_STATE_COMPLETED, WAIT_MS));
    assert_true(f3test_bus_wait_state(f->s, Q, "ev-2", BUS_STATE_COMPLETED, WAIT_MS));
    assert_int_equal(atomic_load(&h.calls), 2);
    /* Redeliver both (an operator retry stands in for a re-sent event). */
    err e = {0};
    assert_int_equal(bus_store_retry(f->s, Q, "ev-1", clock_now_ms(), NULL, &e), 0);
    assert_int_equal(bus_store_retry(f->s, Q, "ev-2", clock_now_ms(), NULL, &e), 0);
    assert_true(f3test_bus_wait_count(f->s, Q, BUS_STATE_COMPLETED, 2, WAIT_MS));
    assert_true(f3test_bus_wait_state(f->s, Q, "ev-1", BUS_STATE_COMPLETED, WAIT_MS));
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    assert_int_equal(atomic_load(&h.calls), 2);
    assert_int_equal(f3test_bus_count(f->d, "SELECT COUNT(*) FROM side", NULL), 1);
    assert_int_equal(f3test_bus_count(f->d, "SELECT COUNT(*) FROM bus_inbox WHERE consumer = $1",
                                      "print-service"),
                     2);
    hctx_free(&h);
}

/* Two jobs carrying one event (their data names it) race: both pass the inbox lookup while
 * their handlers do "external I/O", then both write; exactly one write survives. */
static int event_from_data(bus_delivery *dl, void *ctx, err *e)
{
    (void)ctx;
    json_error_t je;
    json_t *v = json_loads(bus_delivery_job(dl)->data, 0, &je);
    if (!v)
        return err_set(e, F3_EINVAL, "bad data");
    int rc =
        bus_delivery_set_event(dl, json_string_value(json_object_get(v, "eventId")), NULL, NULL, e);
    json_decref(v);
    return rc;
}

static void test_concurrent_duplicates_take_effect_once(void **state)
{
    f3test_bus *f = *state;
    hctx h;
    hctx_init(&h);
    h.write_side = true;
    h.sleep_ms = 200;
    f3test_bus_add(f->s, Q, "job-a", "{\"eventId\":\"ev-x\"}", NULL);
    f3test_bus_add(f->s, Q, "job-b", "{\"eventId\":\"ev-x\"}", NULL);
    bus_worker_opts wo = FAST_OPT;
    bus_queue_opts qo = {.flags = BUS_QUEUE_INBOX, .concurrency = 2, .prepare = event_from_data};
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, test_handler, &h, &qo);
    assert_true(f3test_bus_wait_count(f->s, Q, BUS_STATE_COMPLETED, 2, WAIT_MS));
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    assert_int_equal(atomic_load(&h.calls), 2); /* both ran: they overlapped in the I/O */
    assert_int_equal(f3test_bus_count(f->d, "SELECT COUNT(*) FROM side", NULL), 1);
    assert_int_equal(f3test_bus_count(f->d, "SELECT COUNT(*) FROM bus_inbox", NULL), 1);
    hctx_free(&h);
}

static void test_lock_tokens_name_the_instance(void **state)
{
    f3test_bus *f = *state;
    hctx h;
    hctx_init(&h);
    f3test_bus_add(f->s, Q, "j", NULL, NULL);
    bus_worker_opts wo = FAST_OPT;
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, test_handler, &h, NULL);
    assert_true(f3test_bus_wait_state(f->s, Q, "j", BUS_STATE_COMPLETED, WAIT_MS));
    char want[64];
    snprintf(want, sizeof want, "%s:", bus_worker_instance(w));
    assert_int_equal(strncmp(h.token, want, strlen(want)), 0);
    assert_true(strlen(h.token) > strlen(want));
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    hctx_free(&h);
}

/* ---- drain and leases --------------------------------------------------------------------- */

typedef struct drainer {
    bus_worker *w;
    int timeout_ms;
    atomic_int rc;
    atomic_bool done;
} drainer;

static void *drain_main(void *arg)
{
    drainer *dr = arg;
    atomic_store(&dr->rc, bus_worker_drain(dr->w, dr->timeout_ms));
    atomic_store(&dr->done, true);
    return NULL;
}

static void test_drain_lets_running_handlers_finish(void **state)
{
    f3test_bus *f = *state;
    hctx h;
    hctx_init(&h);
    h.gate = true;
    f3test_bus_add(f->s, Q, "first", NULL, NULL);
    f3test_bus_add(f->s, Q, "second", NULL, NULL);
    bus_worker_opts wo = FAST_OPT;
    bus_queue_opts qo = {.concurrency = 1};
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, test_handler, &h, &qo);
    assert_true(wait_started(&h, 1, WAIT_MS));
    drainer dr = {.w = w, .timeout_ms = WAIT_MS};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drain_main, &dr), 0);
    f3test_sleep_ms(200);
    assert_false(atomic_load(&dr.done)); /* waits for the running handler */
    gate_open(&h);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&dr.rc), 0);
    bus_worker_free(w);
    assert_int_equal(atomic_load(&h.calls), 1);
    bus_job *j = f3test_bus_get(f->s, Q, "first");
    assert_int_equal(j->state, BUS_STATE_COMPLETED);
    bus_job_free(j);
    j = f3test_bus_get(f->s, Q, "second");
    assert_int_equal(j->state, BUS_STATE_WAITING);
    assert_int_equal(j->attempts_started, 0);
    bus_job_free(j);
    hctx_free(&h);
}

static void test_drain_bound_gives_busy(void **state)
{
    f3test_bus *f = *state;
    hctx h;
    hctx_init(&h);
    h.gate = true;
    f3test_bus_add(f->s, Q, "slow", NULL, NULL);
    bus_worker_opts wo = FAST_OPT;
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, test_handler, &h, NULL);
    assert_true(wait_started(&h, 1, WAIT_MS));
    assert_int_equal(bus_worker_drain(w, 100), F3_EBUSY);
    gate_open(&h);
    bus_worker_free(w); /* waits for the handler and records its outcome */
    bus_job *j = f3test_bus_get(f->s, Q, "slow");
    assert_int_equal(j->state, BUS_STATE_COMPLETED);
    bus_job_free(j);
    hctx_free(&h);
}

static void test_lease_renewal_keeps_long_handlers_their_job(void **state)
{
    f3test_bus *f = *state;
    hctx h;
    hctx_init(&h);
    h.sleep_ms = 1000;
    f3test_bus_add(f->s, Q, "long", NULL, NULL);
    bus_worker_opts wo = FAST_OPT;
    wo.stalled_interval_ms = 50; /* stalled recovery runs often, against a 300 ms lease */
    bus_queue_opts qo = {.lease_ms = 300, .concurrency = 2};
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, test_handler, &h, &qo);
    assert_true(f3test_bus_wait_state(f->s, Q, "long", BUS_STATE_COMPLETED, WAIT_MS));
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    assert_int_equal(atomic_load(&h.calls), 1);
    bus_job *j = f3test_bus_get(f->s, Q, "long");
    assert_int_equal(j->stalled_count, 0);
    assert_int_equal(j->attempts_started, 1);
    bus_job_free(j);
    hctx_free(&h);
}

/* ---- API misuse ---------------------------------------------------------------------------- */

static int noop_handler(bus_delivery *dl, void *ctx, err *e)
{
    (void)dl;
    (void)ctx;
    (void)e;
    return 0;
}

/* A handler that lost a race (F3_EBUSY) runs again at once: no failed attempt, no backoff,
 * and its writes of the lost runs were rolled back. */
static void test_lost_races_run_again_at_once(void **state)
{
    f3test_bus *f = *state;
    hctx h;
    hctx_init(&h);
    h.busy_first = BUS_WORKER_BUSY_RERUNS;
    h.write_side = true;
    f3test_bus_add(f->s, Q, "racy", NULL, NULL);
    bus_worker_opts wo = FAST_OPT;
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, test_handler, &h, NULL);
    assert_true(f3test_bus_wait_state(f->s, Q, "racy", BUS_STATE_COMPLETED, WAIT_MS));
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    assert_int_equal(atomic_load(&h.calls), BUS_WORKER_BUSY_RERUNS + 1);
    bus_job *j = f3test_bus_get(f->s, Q, "racy");
    assert_int_equal(j->attempts_made, 1); /* the completion, as in BullMQ */
    assert_int_equal(j->attempts_started, 1);
    json_t *errors = errors_of(j);
    assert_int_equal(json_array_size(errors), 0);
    json_decref(errors);
    bus_job_free(j);
    assert_int_equal(
        f3test_bus_count(f->d, "SELECT COUNT(*) FROM side WHERE event_id = $1", "racy"), 1);
    hctx_free(&h);
}

/* A race lost every time is, after the reruns, one failed attempt like any transient error. */
static void test_races_lost_every_time_count_as_one_attempt(void **state)
{
    f3test_bus *f = *state;
    hctx h;
    hctx_init(&h);
    h.rc = F3_EBUSY;
    bus_job_opts o = {.backoff = {.type = BUS_BACKOFF_FIXED, .delay_ms = 60000}};
    f3test_bus_add(f->s, Q, "stuck", NULL, &o); /* no second attempt during the test */
    bus_worker_opts wo = FAST_OPT;
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, test_handler, &h, NULL);
    bus_job *j = wait_attempts(f->s, Q, "stuck", 1);
    assert_int_equal(j->attempts_made, 1);
    assert_int_equal(j->state, BUS_STATE_DELAYED); /* its retry is due after the backoff */
    bus_job_free(j);
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    assert_int_equal(atomic_load(&h.calls), BUS_WORKER_BUSY_RERUNS + 1);
    hctx_free(&h);
}

/* ---- prefetch ------------------------------------------------------------------------------ */

#define PF_JOBS 24

/* Records the order jobs ran in and the most handlers of the queue at once. */
typedef struct pfctx {
    pthread_mutex_t mu;
    char order[PF_JOBS][16];
    int n;
    atomic_int now, most;
} pfctx;

static int prefetch_handler(bus_delivery *dl, void *ctx, err *e)
{
    (void)e;
    pfctx *p = ctx;
    int at = atomic_fetch_add(&p->now, 1) + 1;
    int most = atomic_load(&p->most);
    while (at > most && !atomic_compare_exchange_weak(&p->most, &most, at))
        ;
    f3test_sleep_ms(2);
    pthread_mutex_lock(&p->mu);
    if (p->n < PF_JOBS)
        snprintf(p->order[p->n++], sizeof p->order[0], "%s", bus_delivery_job(dl)->id);
    pthread_mutex_unlock(&p->mu);
    atomic_fetch_sub(&p->now, 1);
    return 0;
}

/* Jobs claimed ahead of a free handler still run one at a time at concurrency 1, in the
 * order they were added, and every one completes. */
static void test_prefetched_jobs_run_in_order_within_concurrency(void **state)
{
    f3test_bus *f = *state;
    pfctx p = {0};
    pthread_mutex_init(&p.mu, NULL);
    char id[PF_JOBS][16];
    for (int i = 0; i < PF_JOBS; i++) {
        snprintf(id[i], sizeof id[i], "job-%02d", i);
        f3test_bus_add(f->s, Q, id[i], NULL, NULL);
    }
    bus_worker_opts wo = FAST_OPT;
    wo.prefetch = 8;
    bus_queue_opts qo = {.concurrency = 1};
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, prefetch_handler, &p, &qo);
    assert_true(f3test_bus_wait_state(f->s, Q, id[PF_JOBS - 1], BUS_STATE_COMPLETED, WAIT_MS));
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    assert_int_equal(p.n, PF_JOBS);
    assert_int_equal(atomic_load(&p.most), 1);
    for (int i = 0; i < PF_JOBS; i++) {
        assert_string_equal(p.order[i], id[i]);
        bus_job *j = f3test_bus_get(f->s, Q, id[i]);
        assert_int_equal(j->state, BUS_STATE_COMPLETED);
        assert_int_equal(j->attempts_started, 1);
        bus_job_free(j);
    }
    pthread_mutex_destroy(&p.mu);
}

/* A drain gives the prefetched jobs no handler started back to their queue, unstarted,
 * instead of running them: only the running handler finishes. Quick jobs first, so the
 * worker has a pace to prefetch by. */
static void test_drain_gives_prefetched_jobs_back(void **state)
{
    f3test_bus *f = *state;
    hctx h;
    hctx_init(&h);
    h.gate = true;
    h.gate_only = "p1";
    const char *ids[] = {"w1", "w2", "w3", "w4", "p1", "p2", "p3", "p4"};
    for (size_t i = 0; i < 8; i++)
        f3test_bus_add(f->s, Q, ids[i], NULL, NULL);
    bus_worker_opts wo = FAST_OPT;
    wo.prefetch = 8;
    bus_queue_opts qo = {.concurrency = 1};
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, test_handler, &h, &qo);
    assert_true(wait_started(&h, 5, WAIT_MS));
    /* p1 runs (held at the gate); the rest are claimed ahead, not started. */
    assert_true(f3test_bus_wait_state(f->s, Q, "p4", BUS_STATE_ACTIVE, WAIT_MS));
    drainer dr = {.w = w, .timeout_ms = WAIT_MS};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drain_main, &dr), 0);
    f3test_sleep_ms(100);
    gate_open(&h);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&dr.rc), 0);
    bus_worker_free(w);
    assert_int_equal(atomic_load(&h.calls), 5);
    bus_job *j = f3test_bus_get(f->s, Q, "p1");
    assert_int_equal(j->state, BUS_STATE_COMPLETED);
    bus_job_free(j);
    for (size_t i = 5; i < 8; i++) {
        j = f3test_bus_get(f->s, Q, ids[i]);
        assert_int_equal(j->state, BUS_STATE_WAITING);
        assert_int_equal(j->attempts_started, 0);
        assert_null(j->lock_token);
        bus_job_free(j);
    }
    /* Given back, they run for the next worker, in their place. */
    hctx h2;
    hctx_init(&h2);
    w = worker_on(f->s, f->d, &wo, Q, test_handler, &h2, &qo);
    assert_true(f3test_bus_wait_state(f->s, Q, "p4", BUS_STATE_COMPLETED, WAIT_MS));
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    assert_int_equal(atomic_load(&h2.calls), 3);
    hctx_free(&h2);
    hctx_free(&h);
}

/* Handlers slower than the prefetch horizon claim nothing ahead: the next job stays in
 * the queue for any instance to take. */
static void test_slow_handlers_prefetch_nothing(void **state)
{
    f3test_bus *f = *state;
    hctx h;
    hctx_init(&h);
    h.sleep_ms = 3 * BUS_WORKER_PREFETCH_HORIZON_MS;
    const char *ids[] = {"s1", "s2", "s3", "s4"};
    for (size_t i = 0; i < 4; i++)
        f3test_bus_add(f->s, Q, ids[i], NULL, NULL);
    bus_worker_opts wo = FAST_OPT;
    wo.prefetch = 8;
    bus_queue_opts qo = {.concurrency = 1};
    bus_worker *w = worker_on(f->s, f->d, &wo, Q, test_handler, &h, &qo);
    assert_true(wait_started(&h, 3, WAIT_MS));
    bus_job *j = f3test_bus_get(f->s, Q, "s4");
    assert_int_equal(j->state, BUS_STATE_WAITING);
    bus_job_free(j);
    assert_true(f3test_bus_wait_state(f->s, Q, "s4", BUS_STATE_COMPLETED, WAIT_MS));
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    hctx_free(&h);
}

static void test_bad_registrations_are_refused(void **state)
{
    f3test_bus *f = *state;
    err e = {0};
    assert_null(bus_worker_new(NULL, f->d, NULL, &e));
    assert_int_equal(e.code, F3_EINVAL);
    bus_worker *w = bus_worker_new(f->s, f->d, NULL, &e);
    assert_non_null(w);
    assert_int_equal(bus_worker_start(w, &e), F3_EINVAL); /* nothing registered */
    assert_int_equal(bus_worker_register(w, "", noop_handler, NULL, NULL, &e), F3_EINVAL);
    assert_int_equal(bus_worker_register(w, Q, NULL, NULL, NULL, &e), F3_EINVAL);
    assert_int_equal(
        bus_worker_register(w, Q, noop_handler, NULL, &(bus_queue_opts){.concurrency = -1}, &e),
        F3_EINVAL);
    assert_int_equal(
        bus_worker_register(w, Q, noop_handler, NULL, &(bus_queue_opts){.lease_ms = 5}, &e),
        F3_EINVAL);
    assert_non_null(strstr(e.msg, "lease"));
    assert_int_equal(bus_worker_register(w, Q, noop_handler, NULL, NULL, &e), 0);
    assert_int_equal(bus_worker_register(w, Q, noop_handler, NULL, NULL, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "already registered"));
    assert_int_equal(bus_worker_drain(w, 10), 0); /* never started */
    assert_int_equal(bus_worker_start(w, &e), 0);
    assert_int_equal(bus_worker_start(w, &e), F3_EINVAL);
    assert_int_equal(bus_worker_register(w, "late", noop_handler, NULL, NULL, &e), F3_EINVAL);
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    assert_int_equal(bus_worker_drain(w, 5000), 0);
    bus_worker_free(w);
    bus_worker_free(NULL);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    log_set_level(getenv("F3_TEST_LOG") ? LOG_DEBUG : LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_default_backoff_then_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixed_backoff_retries_until_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_failures_are_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejected_by_prepare_is_dead_lettered_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_handler_writes_are_rolled_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_after_commit_runs_only_when_committed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redelivered_event_is_acknowledged_without_effect,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_duplicates_take_effect_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lock_tokens_name_the_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_lets_running_handlers_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_bound_gives_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_renewal_keeps_long_handlers_their_job, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lost_races_run_again_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_races_lost_every_time_count_as_one_attempt, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_prefetched_jobs_run_in_order_within_concurrency, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_drain_gives_prefetched_jobs_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_handlers_prefetch_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_registrations_are_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
