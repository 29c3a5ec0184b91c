/* F3_TEST: backends
 * test_sandbox_duplicates.c - duplicate-delivery storm: every Shopify order webhook is delivered
 * three times and every SimplyPrint webhook twice. Deduplication and idempotent consumers keep
 * every effect single: one order, one print job per copy, one shipment and one fulfilment each.
 */
#include "e2e.h"

#include "support/f3test_db.h"

static const char *backend;

static void test_sandbox_duplicates(void **state)
{
    (void)state;
    const char *extra[] = {"--duplicate-rate", "1", NULL};
    e2e_summary s;
    e2e_sandbox_passes(backend, "20", extra, 150000, &s);
    /* One shipment per fulfilled order; an order cancelled after it completed may have
     * got its shipment before the cancellation came (it is flagged for review). */
    assert_true(s.shipments >= s.fulfilled);
    assert_true(s.shipments <= s.fulfilled + s.review);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sandbox_duplicates)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
