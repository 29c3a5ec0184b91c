/* F3_TEST: backends
 * test_sandbox_kills.c - kill and restart: while demo orders flow (one every two seconds) the
 * platform is killed with SIGKILL 20 times at random moments and restarted each time. Nothing is
 * lost and nothing is done twice: every order ends where it should, with one fulfilment, one
 * shipment and no duplicate print job, no job left waiting or stuck.
 */
#include "e2e.h"

#include "support/f3test_db.h"

static const char *backend;

static void test_sandbox_kills(void **state)
{
    (void)state;
    const char *extra[] = {"--kills", "20", "--rate", "0.5", NULL};
    e2e_summary s;
    e2e_sandbox_passes(backend, "16", extra, 300000, &s);
    assert_true(s.kills >= 20);
    assert_int_equal(s.starts, s.kills + 1);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sandbox_kills)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
