/*
 * test_simplyprint_client.c - the SimplyPrint client against the simulator started
 * in-process on a free port: queue items added, read, listed (waiting and done) and
 * removed (also when gone), an AddItem that times out but queues the item anyway,
 * 401, HTTP 200 with "status": false, 429 with and without Retry-After, 5xx, a stall
 * past the client's timeout, printers, the job history with paging, job details;
 * plus the client's options and the job-state names.
 */
#include "support/f3test.h"

#include "core/log.h"
#include "http/client.h"
#include "integrations/simplyprint/client.h"
#include "sim/simplyprint/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY     "sp-test-key-0123456789"
#define COMPANY "4242"

static struct {
    sp_sim *sim;
    char url[64];
} env;

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOG_WARN);
    if (http_client_init() != 0)
        return -1;
    sp_sim_opts o = {
        .company_id = COMPANY, .api_key = KEY, .printers = 2, .paused = true, .seed = 7};
    err e;
    env.sim = sp_sim_start(&o, &e);
    if (!env.sim) {
        fprintf(stderr, "simulator: %s\n", e.msg);
        return -1;
    }
    snprintf(env.url, sizeof env.url, "http://127.0.0.1:%d/", sp_sim_port(env.sim));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sp_sim_stop(env.sim);
    http_client_cleanup();
    return 0;
}

static int test_setup(void **state)
{
    (void)state;
    sp_sim_reset(env.sim);
    return 0;
}

static sp_client *client_with(const char *key, long timeout_ms)
{
    sp_client_opts o = {
        .api_url = env.url, .company_id = COMPANY, .api_key = key, .timeout_ms = timeout_ms};
    err e;
    sp_client *c = sp_client_new(&o, &e);
    if (!c)
        fail_msg("%s", e.msg);
    return c;
}

static int64_t add_item(sp_client *c, const char *file, int amount)
{
    sp_queue_add rq = {.filesystem_id = file, .amount = amount};
    int64_t id = 0;
    sp_call call;
    err e;
    if (sp_queue_add_item(c, &rq, &id, &call, &e) != 0)
        fail_msg("add item: %s", e.msg);
    assert_int_equal(call.status, 200);
    assert_int_equal(call.failure, HTTP_OK);
    return id;
}

static void test_options(void **state)
{
    (void)state;
    err e;
    sp_client_opts o = {.company_id = "123", .api_key = "k"};
    sp_client *c = sp_client_new(&o, &e);
    assert_non_null(c); /* the default URL */
    sp_client_free(c);
    o.company_id = "12a";
    assert_null(sp_client_new(&o, &e));
    assert_non_null(strstr(e.msg, "SIMPLYPRINT_COMPANY_ID"));
    o.company_id = NULL;
    assert_null(sp_client_new(&o, &e));
    o.company_id = "123";
    o.api_key = "";
    assert_null(sp_client_new(&o, &e));
    assert_non_null(strstr(e.msg, "SIMPLYPRINT_API_KEY"));
    o.api_key = "bad\r\nkey";
    assert_null(sp_client_new(&o, &e));
    assert_null(strstr(e.msg, "bad")); /* the key is never in a message */
    o.api_key = "k";
    o.api_url = "ftp://x";
    assert_null(sp_client_new(&o, &e));
    assert_non_null(strstr(e.msg, "SIMPLYPRINT_API_URL"));
    o.api_url = "http://";
    assert_null(sp_client_new(&o, &e));
}

static void test_account_and_401(void **state)
{
    (void)state;
    sp_client *c = client_with(KEY, 5000);
    sp_call call;
    err e;
    assert_int_equal(sp_account_test(c, &call, &e), 0);
    assert_int_equal(call.status, 200);
    assert_string_equal(call.message, "Your API key is valid!");
    sp_client_free(c);

    c = client_with("wrong-key", 5000);
    assert_int_equal(sp_account_test(c, &call, &e), F3_EPERMANENT);
    assert_int_equal(call.status, 401);
    assert_int_equal(call.failure, HTTP_PERMANENT);
    assert_string_equal(call.message, "Invalid API key");
    assert_null(strstr(e.msg, "wrong-key"));
    assert_non_null(strstr(e.msg, "Invalid API key"));
    sp_client_free(c);

    /* Another company's path: refused. */
    sp_client_opts o = {.api_url = env.url, .company_id = "1", .api_key = KEY};
    c = sp_client_new(&o, &e);
    assert_int_equal(sp_account_test(c, &call, &e), F3_EPERMANENT);
    assert_int_equal(call.status, 403);
    sp_client_free(c);
}

static void test_queue_add_get_delete(void **state)
{
    (void)state;
    sp_client *c = client_with(KEY, 5000);
    sp_queue_add rq = {.filesystem_id = "a1b2c3",
                       .amount = 3,
                       .group = 2,
                       .custom_field_id = "shopify-order",
                       .custom_field_value = "#1001"};
    int64_t id = 0;
    sp_call call;
    err e;
    assert_int_equal(sp_queue_add_item(c, &rq, &id, &call, &e), 0);
    assert_true(id > 0);
    int64_t second = add_item(c, "d4e5f6", 1);
    assert_int_equal(second, id + 1);

    sp_queue_item it;
    assert_int_equal(sp_queue_get_item(c, id, &it, &call, &e), 0);
    assert_int_equal(it.id, id);
    assert_string_equal(it.filesystem_id, "a1b2c3");
    assert_string_equal(it.filename, "a1b2c3.gcode");
    assert_int_equal(it.group, 2);
    assert_int_equal(it.left, 3);
    assert_int_equal(it.printed, 0);

    /* The custom field is stamped into the item as sent. */
    json_t *st = sp_sim_state(env.sim);
    json_t *cf = json_array_get(
        json_object_get(json_array_get(json_object_get(st, "queue"), 0), "customFields"), 0);
    assert_string_equal(json_string_value(json_object_get(cf, "customFieldId")), "shopify-order");
    assert_string_equal(json_string_value(json_object_get(json_object_get(cf, "value"), "value")),
                        "#1001");
    json_decref(st);

    assert_int_equal(sp_queue_delete_item(c, id, &call, &e), 0);
    assert_int_equal(call.status, 200);
    assert_int_equal(sp_queue_get_item(c, id, &it, &call, &e), F3_ENOTFOUND);
    assert_int_equal(call.status, 200); /* "status": false saying so */
    assert_string_equal(call.message, "Queue item not found");
    /* Removing again is fine: idempotent. */
    assert_int_equal(sp_queue_delete_item(c, id, &call, &e), 0);
    sp_client_free(c);

    /* DeleteItem as GET (the docs' method) works too. */
    sp_client_opts o = {
        .api_url = env.url, .company_id = COMPANY, .api_key = KEY, .delete_with_get = true};
    c = sp_client_new(&o, &e);
    assert_int_equal(sp_queue_delete_item(c, second, &call, &e), 0);
    assert_int_equal(sp_queue_get_item(c, second, &it, &call, &e), F3_ENOTFOUND);
    sp_client_free(c);
}

static void test_queue_bad_requests(void **state)
{
    (void)state;
    sp_client *c = client_with(KEY, 5000);
    sp_call call;
    err e;
    int64_t id = 99;
    sp_queue_add none = {.amount = 1};
    assert_int_equal(sp_queue_add_item(c, &none, &id, &call, &e), F3_EINVAL);
    assert_int_equal(id, 0);
    sp_queue_add both = {.filesystem_id = "a", .file_id = "b", .amount = 1};
    assert_int_equal(sp_queue_add_item(c, &both, &id, &call, &e), F3_EINVAL);
    sp_queue_add zero = {.filesystem_id = "a", .amount = 0};
    assert_int_equal(sp_queue_add_item(c, &zero, &id, &call, &e), F3_EINVAL);
    assert_int_equal(call.status, 0); /* nothing was sent */
    sp_queue_item it;
    assert_int_equal(sp_queue_get_item(c, 0, &it, &call, &e), F3_EINVAL);
    assert_int_equal(sp_queue_delete_item(c, -1, &call, &e), F3_EINVAL);

    /* HTTP 200 with "status": false is a permanent failure with SimplyPrint's message. */
    char longid[200];
    memset(longid, 'f', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    sp_queue_add bad = {.filesystem_id = longid, .amount = 1};
    assert_int_equal(sp_queue_add_item(c, &bad, &id, &call, &e), F3_EPERMANENT);
    assert_int_equal(call.status, 200);
    assert_int_equal(call.failure, HTTP_PERMANENT);
    assert_string_equal(call.message, "Invalid file id");
    assert_non_null(strstr(e.msg, "Invalid file id"));
    assert_int_equal(id, 0);
    sp_client_free(c);
}

static void test_429_with_and_without_retry_after(void **state)
{
    (void)state;
    sp_client *c = client_with(KEY, 5000);
    sp_call call;
    err e;
    assert_int_equal(sp_sim_fault(env.sim, 429, 1, 7, 0), 0);
    assert_int_equal(sp_account_test(c, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.status, 429);
    assert_int_equal(call.failure, HTTP_TRANSIENT);
    assert_int_equal(call.retry_after_ms, 7000);
    assert_string_equal(call.message, "Too many requests, slow down");
    /* The fault is used up. */
    assert_int_equal(sp_account_test(c, &call, &e), 0);

    /* Retry-After: 0 is "now"; a 429 that gives none gets the default. */
    assert_int_equal(sp_sim_fault(env.sim, 429, 1, 0, 0), 0);
    assert_int_equal(sp_account_test(c, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.retry_after_ms, 0);
    assert_int_equal(sp_sim_fault(env.sim, 429, 1, -1, 0), 0);
    assert_int_equal(sp_account_test(c, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.status, 429);
    assert_int_equal(call.retry_after_ms, SP_DEFAULT_RETRY_MS);
    sp_client_free(c);
}

static void test_5xx_is_transient(void **state)
{
    (void)state;
    sp_client *c = client_with(KEY, 5000);
    sp_call call;
    err e;
    int statuses[] = {500, 502, 503, 504};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(sp_sim_fault(env.sim, statuses[i], 1, 3, 0), 0);
        int64_t id = 5;
        sp_queue_add rq = {.filesystem_id = "x", .amount = 1};
        assert_int_equal(sp_queue_add_item(c, &rq, &id, &call, &e), F3_ETRANSIENT);
        assert_int_equal(call.status, statuses[i]);
        assert_int_equal(call.failure, HTTP_TRANSIENT);
        assert_int_equal(call.retry_after_ms, statuses[i] == 503 ? 3000 : -1);
        assert_int_equal(id, 0);
    }
    /* None of them created an item. */
    json_t *st = sp_sim_state(env.sim);
    assert_int_equal(json_array_size(json_object_get(st, "queue")), 0);
    json_decref(st);
    /* Deleting during an outage is not "already gone". */
    assert_int_equal(sp_sim_fault(env.sim, 503, 1, 1, 0), 0);
    assert_int_equal(sp_queue_delete_item(c, 1337, &call, &e), F3_ETRANSIENT);
    sp_client_free(c);
}

static void test_timeout_is_transient(void **state)
{
    (void)state;
    sp_client *c = client_with(KEY, 300);
    sp_call call;
    err e;
    assert_int_equal(sp_sim_fault(env.sim, 0, 1, 0, 1200), 0);
    sp_printer *list = NULL;
    size_t n = 9;
    assert_int_equal(sp_printers_list(c, &list, &n, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.status, 0);
    assert_int_equal(call.failure, HTTP_TRANSIENT);
    assert_null(list);
    assert_int_equal(n, 0);
    sp_client_free(c);
}

/* Waits until n jobs are ongoing; returns their ids oldest first in ids. */
static void wait_ongoing(size_t n, int64_t *ids)
{
    for (int i = 0; i < 500; i++) {
        json_t *st = sp_sim_state(env.sim);
        size_t k = 0, j;
        json_t *job;
        json_array_foreach(json_object_get(st, "jobs"), j, job)
        {
            if (strcmp(json_string_value(json_object_get(job, "status")), "ongoing") == 0 && k < n)
                ids[k++] = json_integer_value(json_object_get(job, "id"));
        }
        json_decref(st);
        if (k == n)
            return;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fail_msg("%zu jobs never became ongoing", n);
}

/* The queue as sp_queue_list reads it (include_done as given); fails the test on error.
 * Caller frees *items with free(). */
static size_t list_queue(sp_client *c, bool include_done, sp_queue_item **items)
{
    sp_call call;
    err e;
    size_t n = 99;
    if (sp_queue_list(c, include_done, items, &n, &call, &e) != 0)
        fail_msg("queue list: %s", e.msg);
    assert_int_equal(call.status, 200);
    return n;
}

static void test_queue_list(void **state)
{
    (void)state;
    sp_client *c = client_with(KEY, 5000);
    sp_queue_item *items = NULL;
    assert_int_equal(list_queue(c, true, &items), 0);
    free(items);

    /* One item printed to the end: done, listed only with include_done. */
    assert_int_equal(sp_sim_set_farm(env.sim, 60000, -1, -1), 0);
    int64_t printed = add_item(c, "f-printed", 1);
    sp_sim_pause(env.sim, 0, false);
    int64_t job;
    wait_ongoing(1, &job);
    sp_sim_pause(env.sim, 0, true);
    err e;
    assert_int_equal(sp_sim_end_job(env.sim, job, SP_JOB_DONE, NULL, &e), 0);
    sp_queue_add rq = {.filesystem_id = "f-waiting", .amount = 2, .group = 3};
    int64_t waiting = 0;
    sp_call call;
    assert_int_equal(sp_queue_add_item(c, &rq, &waiting, &call, &e), 0);
    int64_t other = add_item(c, "f-other", 1);

    size_t n = list_queue(c, false, &items);
    assert_int_equal(n, 2);
    assert_int_equal(items[0].id, waiting);
    assert_string_equal(items[0].filesystem_id, "f-waiting");
    assert_int_equal(items[0].group, 3);
    assert_int_equal(items[0].left, 2);
    assert_int_equal(items[0].printed, 0);
    assert_int_equal(items[1].id, other);
    assert_string_equal(items[1].filesystem_id, "f-other");
    free(items);

    n = list_queue(c, true, &items);
    assert_int_equal(n, 3);
    bool seen = false;
    for (size_t i = 0; i < n; i++)
        if (items[i].id == printed) {
            seen = true;
            assert_string_equal(items[i].filesystem_id, "f-printed");
            assert_int_equal(items[i].left, 0);
            assert_int_equal(items[i].printed, 1);
        }
    assert_true(seen);
    free(items);

    /* A removed item is gone from the list. */
    assert_int_equal(sp_queue_delete_item(c, other, &call, &e), 0);
    n = list_queue(c, false, &items);
    assert_int_equal(n, 1);
    assert_int_equal(items[0].id, waiting);
    free(items);

    /* Failures: transient, nothing returned. */
    assert_int_equal(sp_sim_fault(env.sim, 503, 1, 1, 0), 0);
    items = (sp_queue_item *)&n; /* must be reset */
    n = 7;
    assert_int_equal(sp_queue_list(c, true, &items, &n, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.status, 503);
    assert_null(items);
    assert_int_equal(n, 0);
    sp_client_free(c);
}

/* An AddItem that stalls past the client's timeout fails transiently, and SimplyPrint
 * queues the item all the same once the stall is over: the caller cannot tell from the
 * failure whether the item exists (services/print/submit.c adopts it for that). */
static void test_add_item_timeout_may_still_queue(void **state)
{
    (void)state;
    sp_client *slow = client_with(KEY, 300);
    sp_client *c = client_with(KEY, 5000);
    sp_call call;
    err e;
    assert_int_equal(sp_sim_fault(env.sim, 0, 1, 0, 900), 0);
    sp_queue_add rq = {.filesystem_id = "f-late", .amount = 1};
    int64_t id = 5;
    assert_int_equal(sp_queue_add_item(slow, &rq, &id, &call, &e), F3_ETRANSIENT);
    assert_int_equal(call.status, 0);
    assert_int_equal(call.failure, HTTP_TRANSIENT);
    assert_int_equal(id, 0);
    sp_queue_item *items = NULL;
    size_t n = 0;
    for (int i = 0; i < 300 && n == 0; i++) {
        n = list_queue(c, false, &items);
        if (n == 0) {
            free(items);
            items = NULL;
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(n, 1);
    assert_string_equal(items[0].filesystem_id, "f-late");
    free(items);
    sp_client_free(slow);
    sp_client_free(c);
}

static void test_printers(void **state)
{
    (void)state;
    sp_client *c = client_with(KEY, 5000);
    sp_call call;
    err e;
    sp_printer *list = NULL;
    size_t n = 0;
    assert_int_equal(sp_printers_list(c, &list, &n, &call, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, 101);
    assert_string_equal(list[0].name, "MK4-01");
    assert_string_equal(list[0].state, "operational");
    assert_true(list[0].online);
    assert_int_equal(list[0].job_id, 0);
    assert_false(sp_printer_state_busy(list[0].state));
    free(list);

    /* A long print: the first printer takes it and is busy with it. */
    assert_int_equal(sp_sim_set_farm(env.sim, 60000, -1, -1), 0);
    add_item(c, "longprint", 1);
    sp_sim_pause(env.sim, 0, false);
    int64_t job;
    wait_ongoing(1, &job);
    assert_int_equal(sp_printers_list(c, &list, &n, &call, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].state, "printing");
    assert_true(sp_printer_state_busy(list[0].state));
    assert_int_equal(list[0].job_id, job);
    assert_int_equal(strlen(list[0].job_uid), 36);
    assert_string_equal(list[0].job_state, "printing");
    assert_true(list[0].percentage >= 0 && list[0].percentage < 100);
    assert_string_equal(list[1].state, "operational");
    free(list);
    assert_int_equal(sp_sim_end_job(env.sim, job, SP_JOB_DONE, NULL, &e), 0);
    sp_client_free(c);
}

static void test_state_names(void **state)
{
    (void)state;
    assert_int_equal(sp_job_state_parse("done"), SP_JOB_DONE);
    assert_int_equal(sp_job_state_parse("Finished"), SP_JOB_DONE);
    assert_int_equal(sp_job_state_parse("completed"), SP_JOB_DONE);
    assert_int_equal(sp_job_state_parse("printing"), SP_JOB_ONGOING);
    assert_int_equal(sp_job_state_parse("ONGOING"), SP_JOB_ONGOING);
    assert_int_equal(sp_job_state_parse("canceled"), SP_JOB_CANCELLED);
    assert_int_equal(sp_job_state_parse("failed"), SP_JOB_FAILED);
    assert_int_equal(sp_job_state_parse("exploded"), SP_JOB_UNKNOWN);
    assert_int_equal(sp_job_state_parse(NULL), SP_JOB_UNKNOWN);
    assert_string_equal(sp_job_state_name(SP_JOB_CANCELLED), "cancelled");
    assert_string_equal(sp_job_state_name(SP_JOB_UNKNOWN), "unknown");
    assert_true(sp_printer_state_busy("PRINTER_PAUSED") == false);
    assert_true(sp_printer_state_busy("Paused"));
    assert_true(sp_printer_state_busy("cancelling"));
    assert_false(sp_printer_state_busy("offline"));
    assert_false(sp_printer_state_busy(NULL));
}

/* Prints n copies at once and returns when they have all ended. */
static void print_copies(sp_client *c, int n)
{
    add_item(c, "copy", n);
    sp_sim_pause(env.sim, 0, false);
    assert_int_equal(sp_sim_wait_idle(env.sim, 10000), 0);
    sp_sim_pause(env.sim, 0, true);
}

static void test_jobs_paging_and_details(void **state)
{
    (void)state;
    sp_client *c = client_with(KEY, 5000);
    print_copies(c, 5);
    sp_jobs_query q = {.page = 1, .page_size = 2};
    sp_job *jobs = NULL;
    size_t n = 0;
    int pages = 0;
    sp_call call;
    err e;
    int64_t seen[5] = {0};
    size_t total = 0;
    for (int p = 1; p <= 3; p++) {
        q.page = p;
        assert_int_equal(sp_jobs_list(c, &q, &jobs, &n, &pages, &call, &e), 0);
        assert_int_equal(pages, 3);
        assert_int_equal(n, p < 3 ? 2 : 1);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(jobs[i].state, SP_JOB_DONE);
            assert_true(jobs[i].queue_item_id > 0);
            assert_string_equal(jobs[i].filename, "copy.gcode");
            assert_true(jobs[i].printer_id == 101 || jobs[i].printer_id == 102);
            assert_int_equal(jobs[i].percentage, 100);
            assert_true(jobs[i].started_s > 0 && jobs[i].ended_s >= jobs[i].started_s);
            seen[total++] = jobs[i].id;
        }
        free(jobs);
    }
    assert_int_equal(total, 5);
    assert_true(seen[0] > seen[4]); /* newest first */

    /* Out of range and bad queries. */
    q.page = 4;
    assert_int_equal(sp_jobs_list(c, &q, &jobs, &n, &pages, &call, &e), 0);
    assert_int_equal(n, 0);
    assert_null(jobs);
    q.page_size = 101;
    assert_int_equal(sp_jobs_list(c, &q, &jobs, &n, &pages, &call, &e), F3_EINVAL);
    sp_jobs_query bounds = {.start_s = 10, .end_s = 5};
    assert_int_equal(sp_jobs_list(c, &bounds, &jobs, &n, &pages, &call, &e), F3_EINVAL);
    /* A time window that excludes everything. */
    sp_jobs_query old = {.start_s = 1, .end_s = 2};
    assert_int_equal(sp_jobs_list(c, &old, &jobs, &n, &pages, &call, &e), 0);
    assert_int_equal(n, 0);

    /* Details by uid. */
    assert_int_equal(sp_jobs_list(c, NULL, &jobs, &n, &pages, &call, &e), 0);
    assert_int_equal(n, 5);
    sp_job one;
    assert_int_equal(sp_job_get(c, jobs[0].uid, &one, &call, &e), 0);
    assert_int_equal(one.id, jobs[0].id);
    assert_string_equal(one.uid, jobs[0].uid);
    assert_int_equal(one.state, SP_JOB_DONE);
    assert_int_equal(one.queue_item_id, jobs[0].queue_item_id);
    assert_string_equal(one.printer_name, jobs[0].printer_name);
    assert_string_equal(one.reason, "");
    free(jobs);
    assert_int_equal(sp_job_get(c, "0b9c7a52-0000-4000-8000-000000000000", &one, &call, &e),
                     F3_ENOTFOUND);
    assert_int_equal(call.status, 404);
    assert_int_equal(sp_job_get(c, "../../etc", &one, &call, &e), F3_EINVAL);
    assert_int_equal(sp_job_get(c, "", &one, &call, &e), F3_EINVAL);
    sp_client_free(c);
}

static void test_failed_and_cancelled_jobs(void **state)
{
    (void)state;
    sp_client *c = client_with(KEY, 5000);
    assert_int_equal(sp_sim_set_farm(env.sim, 60000, -1, -1), 0);
    int64_t item = add_item(c, "two", 2);
    sp_sim_pause(env.sim, 0, false);
    int64_t ids[2];
    wait_ongoing(2, ids);
    err e;
    assert_int_equal(sp_sim_end_job(env.sim, ids[0], SP_JOB_FAILED, "Nozzle clog", &e), 0);
    assert_int_equal(sp_sim_end_job(env.sim, ids[1], SP_JOB_CANCELLED, NULL, &e), 0);
    /* An ended job cannot be ended again; unknown ids and states are refused. */
    assert_int_equal(sp_sim_end_job(env.sim, ids[0], SP_JOB_DONE, NULL, &e), F3_ECONFLICT);
    assert_int_equal(sp_sim_end_job(env.sim, 1, SP_JOB_FAILED, "x", &e), F3_ENOTFOUND);
    assert_int_equal(sp_sim_end_job(env.sim, ids[1], SP_JOB_ONGOING, "x", &e), F3_EINVAL);

    sp_jobs_query q = {0};
    sp_job *jobs = NULL;
    size_t n = 0;
    int pages = 0;
    sp_call call;
    assert_int_equal(sp_jobs_list(c, &q, &jobs, &n, &pages, &call, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(pages, 1);
    assert_int_equal(jobs[0].id, ids[1]); /* newest first */
    assert_int_equal(jobs[0].state, SP_JOB_CANCELLED);
    assert_int_equal(jobs[1].state, SP_JOB_FAILED);
    assert_int_equal(jobs[1].queue_item_id, item);
    sp_job one;
    assert_int_equal(sp_job_get(c, jobs[1].uid, &one, &call, &e), 0);
    assert_int_equal(one.state, SP_JOB_FAILED);
    assert_string_equal(one.reason, "Nozzle clog");
    assert_true(one.percentage < 100);
    assert_int_equal(sp_job_get(c, jobs[0].uid, &one, &call, &e), 0);
    assert_int_equal(one.state, SP_JOB_CANCELLED);
    assert_string_equal(one.reason, "Cancelled by operator");
    free(jobs);
    /* Both copies are used up: the item has left the queue (failures are not requeued). */
    sp_queue_item it;
    assert_int_equal(sp_queue_get_item(c, item, &it, &call, &e), F3_ENOTFOUND);
    sp_client_free(c);
}

static void test_prints_fail_and_cancel_by_chance(void **state)
{
    (void)state;
    sp_client *c = client_with(KEY, 5000);
    assert_int_equal(sp_sim_set_farm(env.sim, 0, 1.0, 0), 0);
    print_copies(c, 2);
    assert_int_equal(sp_sim_set_farm(env.sim, -1, 0, 1.0), 0);
    print_copies(c, 1);
    assert_int_equal(sp_sim_set_farm(env.sim, -1, 2.0, 0), F3_EINVAL);
    sp_job *jobs = NULL;
    size_t n = 0;
    int pages = 0;
    sp_call call;
    err e;
    assert_int_equal(sp_jobs_list(c, NULL, &jobs, &n, &pages, &call, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(jobs[0].state, SP_JOB_CANCELLED);
    assert_int_equal(jobs[1].state, SP_JOB_FAILED);
    assert_int_equal(jobs[2].state, SP_JOB_FAILED);
    sp_job one; /* the history rows carry no reason; the details do */
    assert_int_equal(sp_job_get(c, jobs[2].uid, &one, &call, &e), 0);
    assert_string_equal(one.reason, "Filament runout detected");
    free(jobs);
    sp_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test_setup(test_account_and_401, test_setup),
        cmocka_unit_test_setup(test_queue_add_get_delete, test_setup),
        cmocka_unit_test_setup(test_queue_bad_requests, test_setup),
        cmocka_unit_test_setup(test_429_with_and_without_retry_after, test_setup),
        cmocka_unit_test_setup(test_5xx_is_transient, test_setup),
        cmocka_unit_test_setup(test_timeout_is_transient, test_setup),
        cmocka_unit_test_setup(test_printers, test_setup),
        cmocka_unit_test_setup(test_queue_list, test_setup),
        cmocka_unit_test_setup(test_add_item_timeout_may_still_queue, test_setup),
        cmocka_unit_test_setup(test_jobs_paging_and_details, test_setup),
        cmocka_unit_test_setup(test_failed_and_cancelled_jobs, test_setup),
        cmocka_unit_test_setup(test_prints_fail_and_cancel_by_chance, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
