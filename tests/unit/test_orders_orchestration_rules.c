/*
 * test_orders_orchestration_rules.c - the pure rules of orchestration, exhaustively: every
 * order status x every shape of an order's jobs x every print-job event (with every
 * previous / current job status) against a written-out table; invariants over every tally
 * with up to two jobs per status; the line item rule; names of events and reasons.
 */
#include "support/f3test.h"

#include "services/orders/orchestration.h"

#include <string.h>

enum { P = PRINT_JOB_PENDING, Q, A, PR, C, F, X };

/* A tally from counts per status (P, Q, A, PR, C, F, X). */
static print_job_tally tally_of(const int n[PRINT_JOB_STATUS_COUNT])
{
    print_job_tally t = {0};
    for (int i = 0; i < PRINT_JOB_STATUS_COUNT; i++) {
        t.n[i] = n[i];
        t.total += n[i];
    }
    return t;
}

typedef struct expect {
    order_status to;
    orch_reason why;
} expect;

#define STAY(w)                                                                                    \
    {                                                                                              \
        (order_status) - 1, (w)                                                                    \
    } /* to = the order's own status */
#define GO(s, w)                                                                                   \
    {                                                                                              \
        (s), (w)                                                                                   \
    }

typedef struct shape_row {
    const char *name;
    int n[PRINT_JOB_STATUS_COUNT]; /* P Q A PR C F X */
    expect by[ORDER_STATUS_COUNT]; /* PENDING PROCESSING PARTIAL COMPLETED FAILED CANCELLED */
} shape_row;

#define FINAL STAY(ORCH_WHY_FINAL)
#define SAME  STAY(ORCH_WHY_UNCHANGED)
#define START GO(ORDER_PROCESSING, ORCH_WHY_STARTED)
#define REVIV GO(ORDER_PROCESSING, ORCH_WHY_REVIVED)
#define DONE  GO(ORDER_COMPLETED, ORCH_WHY_ALL_COMPLETED)
#define PART  GO(ORDER_PARTIALLY_COMPLETED, ORCH_WHY_PARTIAL)
#define FAIL  GO(ORDER_FAILED, ORCH_WHY_ALL_FAILED)
#define CANC  GO(ORDER_FAILED, ORCH_WHY_ALL_CANCELLED)

/* The whole decision table. Columns: the order's status before. */
static const shape_row table[] = {
    /*                                     PENDING    PROCESSING PARTIAL COMPLETED FAILED CANCELLED
     */
    {"no jobs",
     {0},
     {STAY(ORCH_WHY_NO_JOBS), STAY(ORCH_WHY_NO_JOBS), STAY(ORCH_WHY_NO_JOBS), FINAL,
      STAY(ORCH_WHY_NO_JOBS), FINAL}},
    {"all pending", {[P] = 2}, {STAY(ORCH_WHY_NOT_STARTED), SAME, REVIV, FINAL, REVIV, FINAL}},
    {"first job queued", {[P] = 1, [Q] = 1}, {START, SAME, REVIV, FINAL, REVIV, FINAL}},
    {"one job assigned", {[A] = 1}, {START, SAME, REVIV, FINAL, REVIV, FINAL}},
    {"all printing", {[PR] = 2}, {START, SAME, REVIV, FINAL, REVIV, FINAL}},
    {"printing and completed", {[PR] = 1, [C] = 1}, {START, SAME, REVIV, FINAL, REVIV, FINAL}},
    {"failed job requeued", {[Q] = 1, [F] = 1}, {START, SAME, REVIV, FINAL, REVIV, FINAL}},
    {"failed job retried (pending)", {[P] = 1, [F] = 1}, {START, SAME, REVIV, FINAL, REVIV, FINAL}},
    {"cancelled job requeued", {[Q] = 1, [X] = 1}, {START, SAME, REVIV, FINAL, REVIV, FINAL}},
    {"pending and completed", {[P] = 1, [C] = 1}, {START, SAME, REVIV, FINAL, REVIV, FINAL}},
    {"all completed", {[C] = 3}, {DONE, DONE, DONE, FINAL, DONE, FINAL}},
    {"completed and failed", {[C] = 2, [F] = 1}, {PART, PART, SAME, FINAL, PART, FINAL}},
    {"completed and cancelled", {[C] = 1, [X] = 1}, {PART, PART, SAME, FINAL, PART, FINAL}},
    {"completed, failed, cancelled",
     {[C] = 1, [F] = 1, [X] = 1},
     {PART, PART, SAME, FINAL, PART, FINAL}},
    {"all failed", {[F] = 2}, {FAIL, FAIL, FAIL, FINAL, SAME, FINAL}},
    {"failed and cancelled", {[F] = 1, [X] = 2}, {FAIL, FAIL, FAIL, FINAL, SAME, FINAL}},
    {"all cancelled", {[X] = 2}, {CANC, CANC, CANC, FINAL, SAME, FINAL}},
};

static unsigned actions_of(orch_reason why)
{
    switch (why) {
    case ORCH_WHY_STARTED:
        return ORCH_ACT_SET_STATUS;
    case ORCH_WHY_REVIVED:
        return ORCH_ACT_SET_STATUS | ORCH_ACT_LOG_REVIVED;
    case ORCH_WHY_ALL_COMPLETED:
        return ORCH_ACT_SET_STATUS | ORCH_ACT_COMPLETED_AT | ORCH_ACT_READY;
    case ORCH_WHY_PARTIAL:
        return ORCH_ACT_SET_STATUS | ORCH_ACT_LOG_PARTIAL;
    case ORCH_WHY_ALL_FAILED:
        return ORCH_ACT_SET_STATUS | ORCH_ACT_LOG_ALL_FAIL;
    case ORCH_WHY_ALL_CANCELLED:
        return ORCH_ACT_SET_STATUS | ORCH_ACT_LOG_FAILED;
    default:
        return 0;
    }
}

/* Every row x every order status x every event x every previous status (and unknown) x
 * every current job status: the event never changes the outcome, the table says it. */
static void test_decision_table(void **state)
{
    (void)state;
    size_t checked = 0;
    for (size_t r = 0; r < sizeof table / sizeof table[0]; r++) {
        const shape_row *row = &table[r];
        for (int o = 0; o < ORDER_STATUS_COUNT; o++) {
            expect want = row->by[o];
            order_status to = (int)want.to < 0 ? (order_status)o : want.to;
            for (int ev = 0; ev < ORCH_EV_COUNT; ev++)
                for (int prev = -1; prev < PRINT_JOB_STATUS_COUNT; prev++)
                    for (int job = 0; job < PRINT_JOB_STATUS_COUNT; job++) {
                        orch_input in = {.order = (order_status)o,
                                         .tally = tally_of(row->n),
                                         .event = (orch_event)ev,
                                         .previous = prev,
                                         .job = (print_job_status)job};
                        orch_decision d = orch_decide(&in);
                        if (d.to != to || d.why != want.why || d.actions != actions_of(want.why))
                            fail_msg("%s, order %s, %s (%d -> %s): got %s/%s/%#x, want %s/%s/%#x",
                                     row->name, order_status_name((order_status)o),
                                     orch_event_type((orch_event)ev), prev,
                                     print_job_status_name((print_job_status)job),
                                     order_status_name(d.to), orch_reason_name(d.why), d.actions,
                                     order_status_name(to), orch_reason_name(want.why),
                                     actions_of(want.why));
                        checked++;
                    }
        }
    }
    assert_int_equal(checked, (sizeof table / sizeof table[0]) * ORDER_STATUS_COUNT *
                                  ORCH_EV_COUNT * (PRINT_JOB_STATUS_COUNT + 1) *
                                  PRINT_JOB_STATUS_COUNT);
}

static int active_of(const int n[PRINT_JOB_STATUS_COUNT])
{
    return n[P] + n[Q] + n[A] + n[PR];
}

/* Every tally with 0..2 jobs in each status, from every order status: the invariants. */
static void test_invariants_over_every_tally(void **state)
{
    (void)state;
    int n[PRINT_JOB_STATUS_COUNT];
    int combos = 1;
    for (int i = 0; i < PRINT_JOB_STATUS_COUNT; i++)
        combos *= 3;
    for (int k = 0; k < combos; k++) {
        int v = k, total = 0;
        for (int i = 0; i < PRINT_JOB_STATUS_COUNT; i++, v /= 3) {
            n[i] = v % 3;
            total += n[i];
        }
        for (int o = 0; o < ORDER_STATUS_COUNT; o++) {
            orch_input in = {.order = (order_status)o,
                             .tally = tally_of(n),
                             .event = ORCH_EV_STATUS_CHANGED,
                             .previous = -1,
                             .job = PRINT_JOB_PENDING};
            orch_decision d = orch_decide(&in);
            bool moved = d.to != (order_status)o;
            /* A move is always one the status table allows, and says so. */
            assert_int_equal(moved, (d.actions & ORCH_ACT_SET_STATUS) != 0);
            if (moved)
                assert_true(order_status_can_move((order_status)o, d.to));
            /* Final orders never move; an order without jobs never moves. */
            if (o == ORDER_COMPLETED || o == ORDER_CANCELLED || total == 0)
                assert_false(moved);
            /* Ready for fulfillment exactly on the move into COMPLETED, which needs every
             * job completed. */
            assert_int_equal((d.actions & ORCH_ACT_READY) != 0, moved && d.to == ORDER_COMPLETED);
            if (d.to == ORDER_COMPLETED && moved)
                assert_int_equal(n[C], total);
            /* While a job is active the order only ever moves to PROCESSING. */
            if (active_of(n) > 0 && moved)
                assert_int_equal(d.to, ORDER_PROCESSING);
            /* Revival only out of FAILED / PARTIALLY_COMPLETED. */
            if (d.actions & ORCH_ACT_LOG_REVIVED)
                assert_true(o == ORDER_FAILED || o == ORDER_PARTIALLY_COMPLETED);
            /* Nothing active and not final: the order ends settled. */
            if (active_of(n) == 0 && total > 0 && o != ORDER_COMPLETED && o != ORDER_CANCELLED)
                assert_true(d.to == ORDER_COMPLETED || d.to == ORDER_PARTIALLY_COMPLETED ||
                            d.to == ORDER_FAILED);
            /* Never back to PENDING. */
            if (moved)
                assert_int_not_equal(d.to, ORDER_PENDING);
        }
    }
}

static void test_order_status_outside_the_enum(void **state)
{
    (void)state;
    int n[PRINT_JOB_STATUS_COUNT] = {[C] = 1};
    orch_input in = {.order = ORDER_STATUS_COUNT, .tally = tally_of(n), .previous = -1};
    orch_decision d = orch_decide(&in);
    assert_int_equal(d.to, ORDER_STATUS_COUNT);
    assert_int_equal(d.why, ORCH_WHY_REFUSED);
    assert_int_equal(d.actions, 0);
}

/* A sequence of job states as events would report them: COMPLETED is announced once. */
static void test_ready_once_along_a_run(void **state)
{
    (void)state;
    static const int steps[][PRINT_JOB_STATUS_COUNT] = {
        {[P] = 2},          {[Q] = 2}, {[PR] = 1, [Q] = 1}, {[C] = 1, [PR] = 1}, {[C] = 1, [F] = 1},
        {[C] = 1, [Q] = 1}, {[C] = 2}, {[C] = 2},           {[C] = 1, [Q] = 1},
    };
    static const order_status after[] = {
        ORDER_PENDING,    ORDER_PROCESSING,          ORDER_PROCESSING,
        ORDER_PROCESSING, ORDER_PARTIALLY_COMPLETED, ORDER_PROCESSING,
        ORDER_COMPLETED,  ORDER_COMPLETED,           ORDER_COMPLETED,
    };
    order_status cur = ORDER_PENDING;
    int ready = 0, revived = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        orch_input in = {.order = cur, .tally = tally_of(steps[i]), .previous = -1};
        orch_decision d = orch_decide(&in);
        ready += (d.actions & ORCH_ACT_READY) != 0;
        revived += (d.actions & ORCH_ACT_LOG_REVIVED) != 0;
        cur = d.to;
        if (cur != after[i])
            fail_msg("step %zu: %s, want %s", i, order_status_name(cur),
                     order_status_name(after[i]));
    }
    assert_int_equal(ready, 1);
    assert_int_equal(revived, 1);
}

/* An order whose printed items are all done but which still has unmapped line items is
 * not complete: nothing ships half an order. A job added once the SKU is mapped revives
 * it, and its completion completes the order (announced once). */
static void test_unmapped_items_hold_completion(void **state)
{
    (void)state;
    int done[PRINT_JOB_STATUS_COUNT] = {[C] = 2};
    int more[PRINT_JOB_STATUS_COUNT] = {[C] = 2, [Q] = 1};
    int all[PRINT_JOB_STATUS_COUNT] = {[C] = 3};
    orch_input in = {
        .order = ORDER_PROCESSING, .tally = tally_of(done), .previous = -1, .unmapped_items = 1};
    orch_decision d = orch_decide(&in);
    assert_int_equal(d.to, ORDER_PARTIALLY_COMPLETED);
    assert_int_equal(d.why, ORCH_WHY_UNMAPPED);
    assert_false(d.actions & ORCH_ACT_READY);
    in = (orch_input){.order = d.to, .tally = tally_of(more), .previous = -1};
    d = orch_decide(&in);
    assert_int_equal(d.to, ORDER_PROCESSING);
    assert_true(d.actions & ORCH_ACT_LOG_REVIVED);
    in = (orch_input){.order = d.to, .tally = tally_of(all), .previous = -1};
    d = orch_decide(&in);
    assert_int_equal(d.to, ORDER_COMPLETED);
    assert_true(d.actions & ORCH_ACT_READY);
    assert_string_equal(orch_reason_name(ORCH_WHY_UNMAPPED), "awaiting-mapping");
}

/* The line item rule over every tally with 0..2 jobs per status, both coverages. */
static void test_line_item_rule(void **state)
{
    (void)state;
    int n[PRINT_JOB_STATUS_COUNT];
    int combos = 1;
    for (int i = 0; i < PRINT_JOB_STATUS_COUNT; i++)
        combos *= 3;
    for (int k = 0; k < combos; k++) {
        int v = k, total = 0;
        for (int i = 0; i < PRINT_JOB_STATUS_COUNT; i++, v /= 3) {
            n[i] = v % 3;
            total += n[i];
        }
        print_job_tally t = tally_of(n);
        for (int complete = 0; complete < 2; complete++) {
            orch_item_status s = orch_item_decide(&t, complete);
            orch_item_status want;
            if (n[P] == total) /* no jobs, or none has left PENDING */
                want = ORCH_ITEM_PENDING;
            else if (active_of(n) > 0 || !complete)
                want = ORCH_ITEM_PROCESSING;
            else if (n[F] > 0)
                want = ORCH_ITEM_FAILED;
            else if (n[C] == total)
                want = ORCH_ITEM_COMPLETED;
            else
                want = ORCH_ITEM_CANCELLED;
            if (s != want)
                fail_msg("tally %d/%d/%d/%d/%d/%d/%d complete=%d: %s, want %s", n[P], n[Q], n[A],
                         n[PR], n[C], n[F], n[X], complete, orch_item_status_name(s),
                         orch_item_status_name(want));
        }
    }
    /* The written-out cases an operator would ask about. */
    int done[PRINT_JOB_STATUS_COUNT] = {[C] = 2};
    int one_left[PRINT_JOB_STATUS_COUNT] = {[C] = 1, [PR] = 1};
    int failed[PRINT_JOB_STATUS_COUNT] = {[C] = 1, [F] = 1};
    int cancelled[PRINT_JOB_STATUS_COUNT] = {[X] = 2};
    print_job_tally t = tally_of(done);
    assert_int_equal(orch_item_decide(&t, true), ORCH_ITEM_COMPLETED);
    assert_int_equal(orch_item_decide(&t, false), ORCH_ITEM_PROCESSING); /* unseen jobs */
    t = tally_of(one_left);
    assert_int_equal(orch_item_decide(&t, true), ORCH_ITEM_PROCESSING);
    t = tally_of(failed);
    assert_int_equal(orch_item_decide(&t, true), ORCH_ITEM_FAILED);
    t = tally_of(cancelled);
    assert_int_equal(orch_item_decide(&t, true), ORCH_ITEM_CANCELLED);
}

static void test_names(void **state)
{
    (void)state;
    for (int i = 0; i < ORCH_EV_COUNT; i++)
        assert_int_equal(orch_event_parse(orch_event_type((orch_event)i)), i);
    assert_string_equal(orch_event_type(ORCH_EV_COMPLETED), "print-job.completed");
    assert_string_equal(orch_event_type(ORCH_EV_STATUS_CHANGED), "print-job.status-changed");
    assert_int_equal(orch_event_parse("printjob.completed"), -1); /* internal name: no */
    assert_int_equal(orch_event_parse(NULL), -1);
    assert_string_equal(orch_event_type(ORCH_EV_COUNT), "UNKNOWN");
    for (int i = 0; i < ORCH_WHY_COUNT; i++)
        assert_string_not_equal(orch_reason_name((orch_reason)i), "unknown");
    assert_string_equal(orch_reason_name(ORCH_WHY_COUNT), "unknown");
    assert_string_equal(orch_item_status_name(ORCH_ITEM_CANCELLED), "CANCELLED");
    assert_string_equal(orch_item_status_name(ORCH_ITEM_STATUS_COUNT), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decision_table),
        cmocka_unit_test(test_invariants_over_every_tally),
        cmocka_unit_test(test_order_status_outside_the_enum),
        cmocka_unit_test(test_ready_once_along_a_run),
        cmocka_unit_test(test_unmapped_items_hold_completion),
        cmocka_unit_test(test_line_item_rule),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
