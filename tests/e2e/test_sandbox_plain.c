/* F3_TEST: backends
 * test_sandbox_plain.c - `f3connect sandbox --orders 24 --until-done` on one backend: demo orders
 * (multi-item, multi-copy, assemblies, unmapped SKUs, cancellations) through the real binary and
 * the simulators; exit 0 means the invariant checker (src/app/sandbox_check.c) found nothing.
 */
#include "e2e.h"

#include "support/f3test_db.h"

static const char *backend;

static void test_sandbox_plain(void **state)
{
    (void)state;
    const char *extra[] = {NULL};
    e2e_summary s;
    e2e_sandbox_passes(backend, "24", extra, 150000, &s);
    assert_int_equal(s.kills, 0);
    /* One shipment per fulfilled order; an order cancelled after it completed may have
     * got its shipment before the cancellation came (it is flagged for review). */
    assert_true(s.shipments >= s.fulfilled);
    assert_true(s.shipments <= s.fulfilled + s.review);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sandbox_plain)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
