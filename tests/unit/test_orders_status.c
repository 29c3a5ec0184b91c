/*
 * test_orders_status.c - the order status names and the one transition table: every
 * allowed move, every refused one, final statuses, and values outside the enum.
 */
#include "support/f3test.h"

#include "services/orders/status.h"

#include <string.h>

static void test_names_round_trip(void **state)
{
    (void)state;
    const char *names[] = {"PENDING",   "PROCESSING", "PARTIALLY_COMPLETED",
                           "COMPLETED", "FAILED",     "CANCELLED"};
    for (int i = 0; i < ORDER_STATUS_COUNT; i++) {
        assert_string_equal(order_status_name((order_status)i), names[i]);
        assert_int_equal(order_status_parse(names[i]), i);
    }
    assert_int_equal(order_status_parse("pending"), -1);
    assert_int_equal(order_status_parse(""), -1);
    assert_int_equal(order_status_parse(NULL), -1);
    assert_string_equal(order_status_name(ORDER_STATUS_COUNT), "UNKNOWN");
}

/* The whole table, written out: [from][to] = allowed. */
static const bool expected[ORDER_STATUS_COUNT][ORDER_STATUS_COUNT] = {
    /*                      PEND   PROC   PART   COMP   FAIL   CANC */
    [ORDER_PENDING] = {false, true, true, true, true, true},
    [ORDER_PROCESSING] = {false, false, true, true, true, true},
    [ORDER_PARTIALLY_COMPLETED] = {false, true, false, true, true, true},
    [ORDER_COMPLETED] = {false, false, false, false, false, false},
    [ORDER_FAILED] = {false, true, true, true, false, true},
    [ORDER_CANCELLED] = {false, false, false, false, false, false},
};

static void test_every_pair_of_the_table(void **state)
{
    (void)state;
    for (int from = 0; from < ORDER_STATUS_COUNT; from++)
        for (int to = 0; to < ORDER_STATUS_COUNT; to++)
            if (order_status_can_move((order_status)from, (order_status)to) != expected[from][to])
                fail_msg("%s -> %s: expected %s", order_status_name((order_status)from),
                         order_status_name((order_status)to),
                         expected[from][to] ? "allowed" : "refused");
}

static void test_cancellation_and_final_statuses(void **state)
{
    (void)state;
    /* Until an order is complete it can be cancelled; nothing leaves a final status. */
    assert_true(order_status_can_move(ORDER_PROCESSING, ORDER_CANCELLED));
    assert_false(order_status_can_move(ORDER_COMPLETED, ORDER_CANCELLED));
    assert_false(order_status_can_move(ORDER_CANCELLED, ORDER_PENDING));
    assert_true(order_status_is_final(ORDER_COMPLETED));
    assert_true(order_status_is_final(ORDER_CANCELLED));
    assert_false(order_status_is_final(ORDER_FAILED));
    assert_false(order_status_is_final(ORDER_PENDING));
    /* Revival: a requeued job brings a settled order back to PROCESSING, never to PENDING. */
    assert_true(order_status_can_move(ORDER_FAILED, ORDER_PROCESSING));
    assert_true(order_status_can_move(ORDER_PARTIALLY_COMPLETED, ORDER_PROCESSING));
    assert_false(order_status_can_move(ORDER_FAILED, ORDER_PENDING));
    /* Staying put is not a move. */
    for (int s = 0; s < ORDER_STATUS_COUNT; s++)
        assert_false(order_status_can_move((order_status)s, (order_status)s));
}

static void test_values_outside_the_enum(void **state)
{
    (void)state;
    assert_false(order_status_can_move(ORDER_STATUS_COUNT, ORDER_PENDING));
    assert_false(order_status_can_move(ORDER_PENDING, ORDER_STATUS_COUNT));
    assert_false(order_status_can_move((order_status)-1, ORDER_CANCELLED));
    assert_false(order_status_is_final(ORDER_STATUS_COUNT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_every_pair_of_the_table),
        cmocka_unit_test(test_cancellation_and_final_statuses),
        cmocka_unit_test(test_values_outside_the_enum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
