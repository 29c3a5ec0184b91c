/*
 * test_simplyprint_webhook.c - SimplyPrint webhook deliveries without a server: the
 * secret check (either header, wrong secret, missing header, length mismatch), the
 * envelope parser for each job event and a queue event, the tolerated variants of the
 * queue item id, malformed bodies, and the dedupe key.
 */
#include "support/f3test.h"

#include "integrations/simplyprint/webhook.h"

#include <stdio.h>
#include <string.h>

#define SECRET "3f1c9a0b7d2e4f6a8b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a"

static void test_verify(void **state)
{
    (void)state;
    err e;
    assert_int_equal(sp_webhook_verify(SECRET, SECRET, NULL, &e), 0);
    assert_int_equal(sp_webhook_verify(SECRET, NULL, SECRET, &e), 0);
    /* Either header may carry it; the other one may be stale or empty. */
    assert_int_equal(sp_webhook_verify(SECRET, "old", SECRET, &e), 0);
    assert_int_equal(sp_webhook_verify(SECRET, SECRET, "", &e), 0);

    char wrong[] = SECRET;
    wrong[10] ^= 1;
    assert_int_equal(sp_webhook_verify(SECRET, wrong, NULL, &e), F3_EPERMANENT);
    assert_non_null(strstr(e.msg, SP_HEADER_SECRET));
    assert_null(strstr(e.msg, SECRET));
    assert_null(strstr(e.msg, wrong));
    assert_int_equal(sp_webhook_verify(SECRET, NULL, wrong, &e), F3_EPERMANENT);
    assert_non_null(strstr(e.msg, SP_HEADER_TOKEN));
    /* Length mismatch: a prefix, and the secret with a byte more. */
    char shorter[sizeof SECRET];
    snprintf(shorter, sizeof shorter, "%.*s", (int)strlen(SECRET) - 1, SECRET);
    assert_int_equal(sp_webhook_verify(SECRET, shorter, NULL, &e), F3_EPERMANENT);
    assert_int_equal(sp_webhook_verify(SECRET, SECRET "0", NULL, &e), F3_EPERMANENT);
    /* Missing headers, and no secret configured. */
    assert_int_equal(sp_webhook_verify(SECRET, NULL, NULL, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "X-SP-Secret"));
    assert_int_equal(sp_webhook_verify(SECRET, "", "", &e), F3_EINVAL);
    assert_int_equal(sp_webhook_verify(NULL, SECRET, NULL, &e), F3_EINVAL);
    assert_int_equal(sp_webhook_verify("", "", NULL, &e), F3_EINVAL);
}

static int parse(const char *body, sp_webhook_event *ev, err *e)
{
    return sp_webhook_parse(body, strlen(body), ev, e);
}

static void test_parse_job_events(void **state)
{
    (void)state;
    static const struct {
        const char *event, *state_text;
        sp_job_state want;
        bool terminal;
    } cases[] = {
        {"job.started", "printing", SP_JOB_ONGOING, false},
        {"job.paused", "paused", SP_JOB_ONGOING, false},
        {"job.resumed", "printing", SP_JOB_ONGOING, false},
        {"job.done", "completed", SP_JOB_DONE, true},
        {"job.failed", "failed", SP_JOB_FAILED, true},
        {"job.cancelled", "cancelled", SP_JOB_CANCELLED, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[1024];
        snprintf(body, sizeof body,
                 "{\"webhook_id\":42,\"event\":\"%s\",\"timestamp\":1773484800,\"data\":{\"job\":"
                 "{\"id\":456,\"uid\":\"9b2f-11\",\"printer_id\":123,\"state\":\"%s\",\"file\":"
                 "\"CO-BLK-PLA.gcode\",\"percentage\":100,\"started\":1773481200,\"ended\":"
                 "1773484800,\"autoprint\":false,\"printer\":{\"id\":123,\"name\":\"MK4-01\","
                 "\"group\":{\"id\":2,\"name\":\"Bay A\"}},\"cost\":0.42,\"duration\":3600,"
                 "\"future_field\":[1,2]}},\"extra\":true}",
                 cases[i].event, cases[i].state_text);
        sp_webhook_event ev;
        err e;
        if (parse(body, &ev, &e) != 0)
            fail_msg("%s: %s", cases[i].event, e.msg);
        assert_string_equal(ev.event, cases[i].event);
        assert_int_equal(ev.webhook_id, 42);
        assert_int_equal(ev.timestamp, 1773484800);
        assert_true(ev.has_job);
        assert_int_equal(ev.job_id, 456);
        assert_string_equal(ev.job_uid, "9b2f-11");
        assert_int_equal(ev.state, cases[i].want);
        assert_string_equal(ev.state_text, cases[i].state_text);
        assert_string_equal(ev.filename, "CO-BLK-PLA.gcode");
        assert_int_equal(ev.printer_id, 123);
        assert_string_equal(ev.printer_name, "MK4-01");
        assert_int_equal(ev.percentage, 100);
        assert_int_equal(ev.started_s, 1773481200);
        assert_int_equal(ev.ended_s, 1773484800);
        assert_int_equal(ev.queue_item_id, 0); /* the published samples carry none */
        assert_int_equal(sp_webhook_event_is_terminal(&ev), cases[i].terminal);
        char key[128];
        snprintf(key, sizeof key, "42:%s:456:1773484800", cases[i].event);
        assert_string_equal(ev.dedupe_key, key);
    }
}

static void test_parse_reasons_and_queue_item_variants(void **state)
{
    (void)state;
    sp_webhook_event ev;
    err e;
    assert_int_equal(parse("{\"webhook_id\":1,\"event\":\"job.failed\",\"timestamp\":5,\"data\":"
                           "{\"job\":{\"id\":\"77\",\"state\":\"FAILED\",\"printer_id\":9,"
                           "\"failedReason\":\"Nozzle clog\",\"queue_item_id\":1337}}}",
                           &ev, &e),
                     0);
    assert_int_equal(ev.job_id, 77); /* an id as text is tolerated */
    assert_int_equal(ev.printer_id, 9);
    assert_int_equal(ev.queue_item_id, 1337);
    assert_string_equal(ev.reason, "Nozzle clog");
    assert_string_equal(ev.state_text, "failed");
    assert_string_equal(ev.dedupe_key, "1:job.failed:77:5");

    assert_int_equal(parse("{\"webhook_id\":1,\"event\":\"job.cancelled\",\"timestamp\":6,"
                           "\"data\":{\"job\":{\"id\":78,\"queue_item\":{\"id\":1400},"
                           "\"cancelInfo\":{\"reason\":\"Wrong colour\",\"by\":\"ann\"}},"
                           "\"user\":{\"id\":3}}}",
                           &ev, &e),
                     0);
    assert_int_equal(ev.queue_item_id, 1400);
    assert_string_equal(ev.reason, "Wrong colour");
    assert_int_equal(ev.state, SP_JOB_CANCELLED);

    assert_int_equal(parse("{\"webhook_id\":1,\"event\":\"job.done\",\"timestamp\":7,\"data\":"
                           "{\"job\":{\"id\":79,\"queueItem\":{\"id\":1500,\"queueNum\":3}}}}",
                           &ev, &e),
                     0);
    assert_int_equal(ev.queue_item_id, 1500);
    assert_int_equal(ev.state, SP_JOB_DONE);

    assert_int_equal(parse("{\"webhook_id\":1,\"event\":\"job.done\",\"timestamp\":7,\"data\":"
                           "{\"job\":{\"id\":80,\"queue_item\":1600}}}",
                           &ev, &e),
                     0);
    assert_int_equal(ev.queue_item_id, 1600);

    /* A queue event: the key is built from the queue item. */
    assert_int_equal(parse("{\"webhook_id\":3,\"event\":\"queue.delete_item\",\"timestamp\":8,"
                           "\"data\":{\"queue_item\":{\"id\":1700,\"filename\":\"a.gcode\"},"
                           "\"user\":{\"id\":3}}}",
                           &ev, &e),
                     0);
    assert_false(ev.has_job);
    assert_int_equal(ev.queue_item_id, 1700);
    assert_string_equal(ev.dedupe_key, "3:queue.delete_item:1700:8");
    assert_false(sp_webhook_event_is_terminal(&ev));

    /* A test delivery: about nothing; sample payloads have webhook_id 0. */
    assert_int_equal(parse("{\"webhook_id\":0,\"event\":\"test\",\"timestamp\":9}", &ev, &e), 0);
    assert_string_equal(ev.dedupe_key, "0:test::9");
    assert_int_equal(ev.state, SP_JOB_UNKNOWN);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *body, *says;
    } bad[] = {
        {"", "empty"},
        {"{\"webhook_id\":1,", "invalid JSON"},
        {"[1,2]", "JSON object"},
        {"{\"event\":\"job.done\",\"timestamp\":1,\"data\":{\"job\":{\"id\":1}}}", "webhook_id"},
        {"{\"webhook_id\":\"x\",\"event\":\"job.done\",\"timestamp\":1}", "webhook_id"},
        {"{\"webhook_id\":-1,\"event\":\"job.done\",\"timestamp\":1}", "webhook_id"},
        {"{\"webhook_id\":1,\"timestamp\":1,\"data\":{}}", "event"},
        {"{\"webhook_id\":1,\"event\":\"Job Done!\",\"timestamp\":1}", "event"},
        {"{\"webhook_id\":1,\"event\":\"\",\"timestamp\":1}", "event"},
        {"{\"webhook_id\":1,\"event\":\"job.done\",\"data\":{\"job\":{\"id\":1}}}", "timestamp"},
        {"{\"webhook_id\":1,\"event\":\"job.done\",\"timestamp\":\"soon\"}", "timestamp"},
        {"{\"webhook_id\":1,\"event\":\"job.done\",\"timestamp\":0}", "timestamp"},
        {"{\"webhook_id\":1,\"event\":\"job.done\",\"timestamp\":1}", "data.job"},
        {"{\"webhook_id\":1,\"event\":\"job.done\",\"timestamp\":1,\"data\":[]}", "data"},
        {"{\"webhook_id\":1,\"event\":\"job.done\",\"timestamp\":1,\"data\":{\"job\":5}}",
         "data.job"},
        {"{\"webhook_id\":1,\"event\":\"job.done\",\"timestamp\":1,\"data\":{\"job\":{}}}",
         "data.job.id"},
        {"{\"webhook_id\":1,\"event\":\"job.done\",\"timestamp\":1,\"data\":{\"job\":{\"id\":"
         "true}}}",
         "data.job.id"},
        {"{\"webhook_id\":1,\"event\":\"job.done\",\"timestamp\":1,\"data\":{\"job\":{\"id\":0}}}",
         "data.job.id"},
        {"{\"webhook_id\":1,\"event\":\"queue.add_item\",\"timestamp\":1,\"data\":{}}",
         "data.queue_item"},
        {"{\"webhook_id\":1,\"event\":\"queue.add_item\",\"timestamp\":1,\"data\":{\"queue_item\":"
         "{\"id\":\"abc\"}}}",
         "data.queue_item.id"},
        {"{\"webhook_id\":1,\"webhook_id\":2,\"event\":\"test\",\"timestamp\":1}", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sp_webhook_event ev;
        err e;
        int rc = parse(bad[i].body, &ev, &e);
        if (rc != F3_EINVAL)
            fail_msg("case %zu (%s) gave %d", i, bad[i].body, rc);
        if (!strstr(e.msg, bad[i].says))
            fail_msg("case %zu: message '%s' does not mention '%s'", i, e.msg, bad[i].says);
    }
    sp_webhook_event ev;
    err e;
    assert_int_equal(sp_webhook_parse(NULL, 0, &ev, &e), F3_EINVAL);
    /* Embedded NUL bytes are not JSON. */
    assert_int_equal(sp_webhook_parse("{\"a\":1}\0xx", 10, &ev, &e), F3_EINVAL);
}

static void test_dedupe_key_separates_what_differs(void **state)
{
    (void)state;
#define DELIVERY                                                                                   \
    "{\"webhook_id\":%d,\"event\":\"%s\",\"timestamp\":%d,\"data\":{\"job\":{\"id\":%d}}}"
    char a[256], b[256];
    sp_webhook_event ea, eb;
    err e;
    /* The same delivery twice: one key. */
    snprintf(a, sizeof a, DELIVERY, 4, "job.done", 100, 9);
    assert_int_equal(parse(a, &ea, &e), 0);
    assert_int_equal(parse(a, &eb, &e), 0);
    assert_string_equal(ea.dedupe_key, eb.dedupe_key);
    /* Each part on its own changes it. */
    const int variants[][3] = {{5, 100, 9}, {4, 101, 9}, {4, 100, 10}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(b, sizeof b, DELIVERY, variants[i][0], "job.done", variants[i][1], variants[i][2]);
        assert_int_equal(parse(b, &eb, &e), 0);
        assert_string_not_equal(ea.dedupe_key, eb.dedupe_key);
    }
    snprintf(b, sizeof b, DELIVERY, 4, "job.started", 100, 9);
    assert_int_equal(parse(b, &eb, &e), 0);
    assert_string_not_equal(ea.dedupe_key, eb.dedupe_key);
#undef DELIVERY
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_parse_job_events),
        cmocka_unit_test(test_parse_reasons_and_queue_item_variants),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_dedupe_key_separates_what_differs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
