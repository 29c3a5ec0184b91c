/*
 * test_events_docs.c - the real binary's `events catalog`: the committed
 * docs/events.md and docs/asyncapi.json are exactly what it generates, --output
 * writes the same text, and misuse exits 2 with a message saying what was wrong.
 */
#include "support/f3test.h"
#include "support/f3test_proc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REGEN_HINT "run scripts/update-docs.sh (or scripts/update-docs.sh build-debug/f3connect)"

/* Runs the binary in a scratch directory; returns its stdout (caller frees) and checks
 * the exit status and that stderr holds expect_err (when given). */
static char *run(const char *const *argv, int status, const char *expect_err)
{
    char *dir = f3test_tmpdir();
    assert_non_null(dir);
    f3test_proc p = {0};
    const char *env[] = {NULL};
    int got = f3test_run(dir, argv, env, 20000, &p);
    char *out = f3test_slurp(p.out_path);
    char *err_text = f3test_slurp(p.err_path);
    if (got != status)
        fail_msg("exit status %d, expected %d; stderr: %s", got, status, err_text);
    if (expect_err && !strstr(err_text, expect_err))
        fail_msg("stderr lacks '%s': %s", expect_err, err_text);
    free(err_text);
    f3test_rmtree(dir);
    free(dir);
    return out;
}

static void expect_same_as_committed(const char *generated, const char *rel_path)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", F3_SOURCE_DIR, rel_path);
    char *committed = f3test_slurp(path);
    if (strcmp(committed, generated) != 0)
        fail_msg("%s differs from the catalog's output: " REGEN_HINT, rel_path);
    free(committed);
}

static void test_committed_markdown_is_current(void **state)
{
    (void)state;
    char *md = run((const char *[]){"events", "catalog", NULL}, 0, NULL);
    char *md2 = run((const char *[]){"events", "catalog", "--format", "markdown", NULL}, 0, NULL);
    assert_string_equal(md, md2);
    assert_non_null(strstr(md, "# f3connect event catalog"));
    expect_same_as_committed(md, "docs/events.md");
    free(md);
    free(md2);
}

static void test_committed_asyncapi_is_current(void **state)
{
    (void)state;
    char *doc = run((const char *[]){"events", "catalog", "--format=asyncapi", NULL}, 0, NULL);
    expect_same_as_committed(doc, "docs/asyncapi.json");

    char *committed = f3test_slurp(F3_SOURCE_DIR "/docs/asyncapi.json");
    json_error_t jerr;
    json_t *root = json_loads(committed, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        fail_msg("docs/asyncapi.json is not JSON: %s (line %d)", jerr.text, jerr.line);
    assert_string_equal(json_string_value(json_object_get(root, "asyncapi")), "3.0.0");
    json_t *channels = json_object_get(root, "channels");
    assert_non_null(json_object_get(channels, "order.cancelled@print-service"));
    assert_non_null(json_object_get(channels, "order.cancelled@shipping-service"));
    json_decref(root);
    free(committed);
    free(doc);
}

/* Every cross-service event of seed 000 has its section in the committed markdown. */
static void test_committed_markdown_mentions_each_event(void **state)
{
    (void)state;
    static const char *const events[] = {
        "order.created",
        "order.ready-for-fulfillment",
        "order.cancelled",
        "print-job.completed",
        "print-job.failed",
        "print-job.status-changed",
        "print-job.cancelled",
        "shipment.created",
        "shipment.status-changed",
        "gridflock.mapping-ready",
        "gridflock.pipeline-failed",
        "inventory.stock-replenishment-scheduled",
        "inventory.stock-batch-completed",
        "integration.simplyprint-changed",
        "integration.sendcloud-changed",
    };
    char *md = f3test_slurp(F3_SOURCE_DIR "/docs/events.md");
    char needle[128];
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        snprintf(needle, sizeof needle, "\n### %s\n", events[i]);
        if (!strstr(md, needle))
            fail_msg("docs/events.md has no section for %s: " REGEN_HINT, events[i]);
    }
    free(md);
}

static void test_output_file(void **state)
{
    (void)state;
    char *dir = f3test_tmpdir();
    char path[1024], arg[1100];
    snprintf(path, sizeof path, "%s/events.json", dir);
    snprintf(arg, sizeof arg, "--output=%s", path);
    char *out =
        run((const char *[]){"events", "catalog", "--format", "asyncapi", arg, NULL}, 0, NULL);
    assert_string_equal(out, ""); /* nothing on stdout */
    char *stdout_doc =
        run((const char *[]){"events", "catalog", "--format", "asyncapi", NULL}, 0, NULL);
    char *file_doc = f3test_slurp(path);
    assert_string_equal(file_doc, stdout_doc);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644); /* docs are not secret despite the umask */
    free(out);
    free(stdout_doc);
    free(file_doc);
    f3test_rmtree(dir);
    free(dir);
}

static void test_misuse_exits_2(void **state)
{
    (void)state;
    struct {
        const char *argv[6];
        int status;
        const char *err;
    } cases[] = {
        {{"events", NULL}, 2, "expected a subcommand"},
        {{"events", "list", NULL}, 2, "unknown subcommand 'list'"},
        {{"events", "catalog", "--format", "yaml", NULL}, 2, "unknown format 'yaml'"},
        {{"events", "catalog", "--format", NULL}, 2, "--format needs a value"},
        {{"events", "catalog", "--output", NULL}, 2, "--output needs a value"},
        {{"events", "catalog", "--output=", NULL}, 2, "--output needs a file name"},
        {{"events", "catalog", "extra", NULL}, 2, "unexpected argument 'extra'"},
        {{"events", "catalog", "--formats", "markdown", NULL}, 2, "unexpected argument"},
        {{"events", "catalog", "--output", "/nonexistent-dir/x.md", NULL}, 1, "cannot create"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = run(cases[i].argv, cases[i].status, cases[i].err);
        assert_string_equal(out, "");
        free(out);
    }
}

static void test_help(void **state)
{
    (void)state;
    char *out = run((const char *[]){"events", "--help", NULL}, 0, NULL);
    assert_non_null(strstr(out, "usage: f3connect events catalog [--format markdown|asyncapi]"));
    free(out);
    out = run((const char *[]){"help", "events", NULL}, 0, NULL);
    assert_non_null(strstr(out, "usage: f3connect events"));
    free(out);
    out = run((const char *[]){"--help", NULL}, 0, NULL);
    assert_non_null(strstr(out, "events"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_committed_markdown_is_current),
        cmocka_unit_test(test_committed_asyncapi_is_current),
        cmocka_unit_test(test_committed_markdown_mentions_each_event),
        cmocka_unit_test(test_output_file),
        cmocka_unit_test(test_misuse_exits_2),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
