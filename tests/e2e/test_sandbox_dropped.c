/* F3_TEST: backends
 * test_sandbox_dropped.c - webhooks dropped: 30 % of the Shopify order webhooks are never delivered
 * (the order is only in Shopify), 30 % of SimplyPrint's job webhooks are dropped and
 * Sendcloud drops webhooks now and then. The reconciliation pollers heal every loss: every
 * order still arrives and ends where it should.
 */
#include "e2e.h"

#include "support/f3test_db.h"

static const char *backend;

static void test_sandbox_dropped(void **state)
{
    (void)state;
    const char *extra[] = {"--drop-rate", "0.3", NULL};
    e2e_summary s;
    e2e_sandbox_passes(backend, "20", extra, 240000, &s);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sandbox_dropped)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
