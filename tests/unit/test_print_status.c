/*
 * test_print_status.c - the print-job transition table, exhaustively: every (from, to,
 * cause) triple of the seven statuses and four causes against an expected matrix written
 * out here independently of the table, plus the guarantees that matter most on their own
 * (nothing leaves COMPLETED, a provider never revives a terminal job).
 */
#include "support/f3test.h"

#include "services/print/status_machine.h"

#include <stdio.h>
#include <string.h>

#define N PRINT_JOB_STATUS_COUNT

/* Who may move a job from the row status to the column status: S submit, P provider,
 * O operator, C order cancellation; "-" nobody. Columns: PENDING QUEUED ASSIGNED PRINTING
 * COMPLETED FAILED CANCELLED. */
static const char *const expected[N][N] = {
    /* PENDING   */ {"=", "S", "-", "-", "-", "S", "OC"},
    /* QUEUED    */ {"-", "=", "P", "P", "P", "P", "POC"},
    /* ASSIGNED  */ {"-", "-", "=", "P", "P", "P", "POC"},
    /* PRINTING  */ {"-", "-", "-", "=", "P", "P", "PO"},
    /* COMPLETED */ {"-", "-", "-", "-", "=", "-", "-"},
    /* FAILED    */ {"O", "-", "-", "-", "-", "=", "-"},
    /* CANCELLED */ {"O", "-", "-", "-", "-", "-", "="},
};

static const struct {
    print_cause cause;
    char letter;
} causes[] = {
    {PRINT_CAUSE_SUBMIT, 'S'},
    {PRINT_CAUSE_PROVIDER, 'P'},
    {PRINT_CAUSE_OPERATOR, 'O'},
    {PRINT_CAUSE_ORDER, 'C'},
};

static void test_every_transition(void **state)
{
    (void)state;
    int moves = 0;
    for (int from = 0; from < N; from++)
        for (int to = 0; to < N; to++)
            for (size_t c = 0; c < sizeof causes / sizeof causes[0]; c++) {
                print_verdict want = from == to                                     ? PRINT_SAME
                                     : strchr(expected[from][to], causes[c].letter) ? PRINT_MOVE
                                                                                    : PRINT_REFUSED;
                print_verdict got =
                    print_transition((print_job_status)from, (print_job_status)to, causes[c].cause);
                if (got != want)
                    fail_msg("%s -> %s by %s: got %d, want %d",
                             print_job_status_name((print_job_status)from),
                             print_job_status_name((print_job_status)to),
                             print_cause_name(causes[c].cause), got, want);
                moves += got == PRINT_MOVE;
            }
    assert_int_equal(moves, 23); /* the letters of the matrix above */
}

static void test_completed_is_final(void **state)
{
    (void)state;
    for (int to = 0; to < N; to++)
        for (size_t c = 0; c < sizeof causes / sizeof causes[0]; c++)
            assert_int_not_equal(
                print_transition(PRINT_JOB_COMPLETED, (print_job_status)to, causes[c].cause),
                PRINT_MOVE);
    /* A late "started" report never resets a completed job to printing. */
    assert_int_equal(
        print_transition(PRINT_JOB_COMPLETED, PRINT_JOB_PRINTING, PRINT_CAUSE_PROVIDER),
        PRINT_REFUSED);
}

static void test_provider_never_moves_backwards(void **state)
{
    (void)state;
    for (int from = 0; from < N; from++)
        for (int to = 0; to < from; to++)
            assert_int_not_equal(print_transition((print_job_status)from, (print_job_status)to,
                                                  PRINT_CAUSE_PROVIDER),
                                 PRINT_MOVE);
    /* Only an operator revives a terminal job. */
    assert_int_equal(print_transition(PRINT_JOB_FAILED, PRINT_JOB_PENDING, PRINT_CAUSE_OPERATOR),
                     PRINT_MOVE);
    assert_int_equal(print_transition(PRINT_JOB_FAILED, PRINT_JOB_PENDING, PRINT_CAUSE_PROVIDER),
                     PRINT_REFUSED);
    /* An order cancellation leaves a printing job to an operator. */
    assert_int_equal(print_transition(PRINT_JOB_PRINTING, PRINT_JOB_CANCELLED, PRINT_CAUSE_ORDER),
                     PRINT_REFUSED);
}

static void test_out_of_range_refused(void **state)
{
    (void)state;
    assert_int_equal(print_transition((print_job_status)N, PRINT_JOB_QUEUED, PRINT_CAUSE_SUBMIT),
                     PRINT_REFUSED);
    assert_int_equal(print_transition(PRINT_JOB_PENDING, (print_job_status)-1, PRINT_CAUSE_SUBMIT),
                     PRINT_REFUSED);
    assert_string_equal(print_cause_name((print_cause)0), "unknown");
    assert_string_equal(print_cause_name(PRINT_CAUSE_ORDER), "order");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_transition),
        cmocka_unit_test(test_completed_is_final),
        cmocka_unit_test(test_provider_never_moves_backwards),
        cmocka_unit_test(test_out_of_range_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
