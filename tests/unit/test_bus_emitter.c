/*
 * test_bus_emitter.c - the in-process emitter: registration order, failing listeners
 * logged without stopping the others, nested emits and registrations from a listener,
 * and emits from several threads while listeners are being registered.
 */
#include "support/f3test.h"

#include "bus/catalog.h"
#include "bus/emitter.h"
#include "core/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static FILE *log_file;

static int setup(void **state)
{
    (void)state;
    log_file = tmpfile();
    if (!log_file)
        return -1;
    log_set_stream(log_file);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_set_stream(NULL);
    fclose(log_file);
    return 0;
}

/* Everything logged since setup; caller frees. */
static char *logged(void)
{
    fflush(log_file);
    long size = ftell(log_file);
    assert_true(size >= 0);
    char *text = calloc(1, (size_t)size + 1);
    rewind(log_file);
    size_t n = fread(text, 1, (size_t)size, log_file);
    text[n] = '\0';
    return text;
}

/* ---- listeners ---------------------------------------------------------------------------- */

typedef struct record {
    char calls[64]; /* one letter per call, in call order */
    size_t n;
    const json_t *payload;
    const char *event;
} record;

typedef struct tagged {
    record *rec;
    char tag;
} tagged;

static int record_call(const char *event, const json_t *payload, void *ctx, err *e)
{
    (void)e;
    tagged *t = ctx;
    if (t->rec->n + 1 < sizeof t->rec->calls)
        t->rec->calls[t->rec->n++] = t->tag;
    t->rec->payload = payload;
    t->rec->event = event;
    return 0;
}

static int fail_with_message(const char *event, const json_t *payload, void *ctx, err *e)
{
    (void)event;
    (void)payload;
    tagged *t = ctx;
    t->rec->calls[t->rec->n++] = t->tag;
    return err_set(e, F3_ETRANSIENT, "printer farm unreachable");
}

static int fail_silently(const char *event, const json_t *payload, void *ctx, err *e)
{
    (void)event;
    (void)payload;
    (void)e;
    tagged *t = ctx;
    t->rec->calls[t->rec->n++] = t->tag;
    return F3_ENOTFOUND;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_listeners_run_in_registration_order(void **state)
{
    (void)state;
    bus_emitter *em = bus_emitter_new();
    assert_non_null(em);
    record rec = {0}, other = {0};
    tagged a = {&rec, 'a'}, b = {&rec, 'b'}, c = {&rec, 'c'}, x = {&other, 'x'};
    assert_int_equal(bus_emitter_on(em, BUS_IEV_PRINTJOB_COMPLETED, record_call, &a), 0);
    assert_int_equal(bus_emitter_on(em, BUS_IEV_PRINTJOB_FAILED, record_call, &x), 0);
    assert_int_equal(bus_emitter_on(em, BUS_IEV_PRINTJOB_COMPLETED, record_call, &b), 0);
    assert_int_equal(bus_emitter_on(em, BUS_IEV_PRINTJOB_COMPLETED, record_call, &c), 0);
    assert_int_equal(bus_emitter_listener_count(em, BUS_IEV_PRINTJOB_COMPLETED), 3);

    json_t *payload = json_pack("{s:s}", "printJobId", "p1");
    assert_int_equal(bus_emitter_emit(em, BUS_IEV_PRINTJOB_COMPLETED, payload), 0);
    assert_string_equal(rec.calls, "abc");
    assert_ptr_equal(rec.payload, payload);
    assert_string_equal(rec.event, BUS_IEV_PRINTJOB_COMPLETED);
    assert_int_equal(other.n, 0); /* other events' listeners not called */

    assert_int_equal(bus_emitter_emit(em, BUS_IEV_PRINTJOB_COMPLETED, NULL), 0);
    assert_string_equal(rec.calls, "abcabc");
    assert_null(rec.payload);

    /* No listeners: nothing to do, nothing failed. */
    assert_int_equal(bus_emitter_emit(em, BUS_IEV_ORDER_FULFILLED, payload), 0);
    assert_int_equal(bus_emitter_listener_count(em, BUS_IEV_ORDER_FULFILLED), 0);
    json_decref(payload);
    bus_emitter_free(em);
}

static void test_failing_listener_is_logged_and_others_run(void **state)
{
    (void)state;
    bus_emitter *em = bus_emitter_new();
    record rec = {0};
    tagged a = {&rec, 'a'}, b = {&rec, 'b'}, c = {&rec, 'c'}, d = {&rec, 'd'};
    bus_emitter_on(em, BUS_IEV_ORDER_CANCELLED, record_call, &a);
    bus_emitter_on(em, BUS_IEV_ORDER_CANCELLED, fail_with_message, &b);
    bus_emitter_on(em, BUS_IEV_ORDER_CANCELLED, record_call, &c);
    bus_emitter_on(em, BUS_IEV_ORDER_CANCELLED, fail_silently, &d);

    assert_int_equal(bus_emitter_emit(em, BUS_IEV_ORDER_CANCELLED, NULL), 2);
    assert_string_equal(rec.calls, "abcd");

    char *text = logged();
    /* one line per failure: the event, the listener's index, its message */
    const char *first = strstr(text, "event listener failed");
    assert_non_null(first);
    assert_non_null(strstr(text, "\"event\":\"order.cancelled\""));
    assert_non_null(strstr(text, "\"listener\":\"1\""));
    assert_non_null(strstr(text, "\"error\":\"printer farm unreachable\""));
    assert_non_null(strstr(text, "\"listener\":\"3\""));
    assert_non_null(strstr(text, "\"error\":\"not found\"")); /* no message: the code's name */
    assert_non_null(strstr(first + 1, "event listener failed"));
    assert_null(strstr(text, "\"listener\":\"0\""));
    free(text);
    bus_emitter_free(em);
}

/* A listener that emits another event and registers a listener while running. */
typedef struct nesting {
    bus_emitter *em;
    record *rec;
    tagged inner;
    tagged late;
    int depth;
} nesting;

static int emit_nested(const char *event, const json_t *payload, void *ctx, err *e)
{
    (void)event;
    (void)e;
    nesting *n = ctx;
    n->rec->calls[n->rec->n++] = 'o';
    /* emitting the same event again from inside must neither deadlock nor recurse forever */
    if (n->depth++ == 0) {
        bus_emitter_emit(n->em, BUS_IEV_ORDER_CREATED, payload);
        bus_emitter_on(n->em, BUS_IEV_ORDER_STATUS_CHANGED, record_call, &n->late);
    }
    return bus_emitter_emit(n->em, BUS_IEV_ORDER_FAILED, payload) == 0 ? 0 : -1;
}

static void test_nested_emit_from_a_listener(void **state)
{
    (void)state;
    bus_emitter *em = bus_emitter_new();
    record rec = {0};
    nesting n = {em, &rec, {&rec, 'i'}, {&rec, 'L'}, 0};
    assert_int_equal(bus_emitter_on(em, BUS_IEV_ORDER_CREATED, emit_nested, &n), 0);
    assert_int_equal(bus_emitter_on(em, BUS_IEV_ORDER_FAILED, record_call, &n.inner), 0);

    assert_int_equal(bus_emitter_emit(em, BUS_IEV_ORDER_CREATED, NULL), 0);
    /* outer listener, then (nested) itself again + inner, then inner for the outer call */
    assert_string_equal(rec.calls, "ooii");
    /* the listener registered from inside a listener is live afterwards */
    assert_int_equal(bus_emitter_emit(em, BUS_IEV_ORDER_STATUS_CHANGED, NULL), 0);
    assert_string_equal(rec.calls, "ooiiL");
    bus_emitter_free(em);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    bus_emitter *em = bus_emitter_new();
    record rec = {0};
    tagged a = {&rec, 'a'};
    assert_int_equal(bus_emitter_on(NULL, BUS_IEV_ORDER_CREATED, record_call, &a), F3_EINVAL);
    assert_int_equal(bus_emitter_on(em, NULL, record_call, &a), F3_EINVAL);
    assert_int_equal(bus_emitter_on(em, "", record_call, &a), F3_EINVAL);
    assert_int_equal(bus_emitter_on(em, BUS_IEV_ORDER_CREATED, NULL, &a), F3_EINVAL);
    assert_int_equal(bus_emitter_emit(NULL, BUS_IEV_ORDER_CREATED, NULL), F3_EINVAL);
    assert_int_equal(bus_emitter_emit(em, NULL, NULL), F3_EINVAL);
    assert_int_equal(bus_emitter_listener_count(NULL, BUS_IEV_ORDER_CREATED), 0);
    assert_int_equal(bus_emitter_listener_count(em, NULL), 0);
    /* a name no catalog table lists is accepted (services have internal-only names) */
    assert_int_equal(bus_emitter_on(em, BUS_IEV_ORDER_CREATED "-local", record_call, &a), 0);
    assert_int_equal(bus_emitter_emit(em, BUS_IEV_ORDER_CREATED "-local", NULL), 0);
    assert_string_equal(rec.calls, "a");
    bus_emitter_free(em);
    bus_emitter_free(NULL);
}

/* ---- concurrency -------------------------------------------------------------------------- */

#define EMIT_THREADS     4
#define EMITS_PER_THREAD 400
#define LATE_LISTENERS   60

static atomic_long calls;

static int count_call(const char *event, const json_t *payload, void *ctx, err *e)
{
    (void)event;
    (void)payload;
    (void)ctx;
    (void)e;
    atomic_fetch_add(&calls, 1);
    return 0;
}

typedef struct emit_job {
    bus_emitter *em;
    int failures;
} emit_job;

static void *emit_loop(void *arg)
{
    emit_job *job = arg;
    for (int i = 0; i < EMITS_PER_THREAD; i++) {
        if (bus_emitter_emit(job->em, BUS_IEV_PRINTJOB_STATUS_CHANGED, NULL) != 0)
            job->failures++;
    }
    return NULL;
}

static void test_concurrent_emit_while_registering(void **state)
{
    (void)state;
    bus_emitter *em = bus_emitter_new();
    atomic_store(&calls, 0);
    assert_int_equal(bus_emitter_on(em, BUS_IEV_PRINTJOB_STATUS_CHANGED, count_call, NULL), 0);

    pthread_t threads[EMIT_THREADS];
    emit_job jobs[EMIT_THREADS];
    for (int t = 0; t < EMIT_THREADS; t++) {
        jobs[t] = (emit_job){em, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, emit_loop, &jobs[t]), 0);
    }
    /* Register more listeners for the emitted event and for others while they run. */
    for (int i = 0; i < LATE_LISTENERS; i++) {
        assert_int_equal(bus_emitter_on(em, BUS_IEV_PRINTJOB_STATUS_CHANGED, count_call, NULL), 0);
        assert_int_equal(bus_emitter_on(em, i % 2 ? BUS_IEV_ORDER_FAILED : BUS_IEV_ORDER_FULFILLED,
                                        count_call, NULL),
                         0);
    }
    for (int t = 0; t < EMIT_THREADS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(jobs[t].failures, 0);
    }
    /* Every emit called at least the first listener and at most all of them. */
    long total = atomic_load(&calls);
    long emits = (long)EMIT_THREADS * EMITS_PER_THREAD;
    assert_true(total >= emits);
    assert_true(total <= emits * (LATE_LISTENERS + 1));
    assert_int_equal(bus_emitter_listener_count(em, BUS_IEV_PRINTJOB_STATUS_CHANGED),
                     LATE_LISTENERS + 1);

    /* Afterwards every registration is seen by an emit. */
    atomic_store(&calls, 0);
    assert_int_equal(bus_emitter_emit(em, BUS_IEV_PRINTJOB_STATUS_CHANGED, NULL), 0);
    assert_int_equal(atomic_load(&calls), LATE_LISTENERS + 1);
    atomic_store(&calls, 0);
    assert_int_equal(bus_emitter_emit(em, BUS_IEV_ORDER_FAILED, NULL), 0);
    assert_int_equal(atomic_load(&calls), LATE_LISTENERS / 2);
    bus_emitter_free(em);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_listeners_run_in_registration_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_listener_is_logged_and_others_run, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_nested_emit_from_a_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_emit_while_registering, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
