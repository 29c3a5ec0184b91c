/* F3_TEST: backends
 * test_sandbox_faults.c - provider faults: each second, with probability 0.5, Shopify, SimplyPrint
 * or Sendcloud answers its next calls with 429 (Retry-After) or a 5xx, and a fifth of the prints
 * fail (the demo operator reprints them). Transient faults are retried and healed: every
 * order still ends where it should, with nothing done twice.
 */
#include "e2e.h"

#include "support/f3test_db.h"

static const char *backend;

static void test_sandbox_faults(void **state)
{
    (void)state;
    const char *extra[] = {"--provider-faults", "0.5", "--print-fail-rate", "0.2", NULL};
    e2e_summary s;
    e2e_sandbox_passes(backend, "20", extra, 200000, &s);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sandbox_faults)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
