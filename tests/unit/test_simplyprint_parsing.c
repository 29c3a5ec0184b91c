/*
 * test_simplyprint_parsing.c - the SimplyPrint client against canned answers from a
 * small in-process server, for the shapes the simulator does not send: the points the
 * spec marks UNCONFIRMED (a queue item under "item", "finished" / "Canceled" states,
 * printers as flat rows, ids as text, ISO times), paging of printers/Get, the
 * queue/SetOrder "success" spelling, answers without a status or not JSON, and a
 * DeleteItem of an item that is already gone.
 */
#include "support/f3test.h"

#include "core/log.h"
#include "http/client.h"
#include "http/request.h"
#include "http/response.h"
#include "http/server.h"
#include "integrations/simplyprint/client.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    http_router *router;
    http_server *server;
    char url[64];
    int mode; /* which canned answer account/Test and DeleteItem give */
    char last_key[64];
    char last_method[8];
} env;

static int h_account(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    snprintf(env.last_key, sizeof env.last_key, "%s",
             http_req_header(req, "X-API-KEY") ? http_req_header(req, "X-API-KEY") : "");
    switch (env.mode) {
    case 0:
        return http_res_json(res, 200, json_pack("{s:s}", "message", "no status here"));
    case 1:
        return http_res_text(res, 200, NULL, "<html>maintenance</html>");
    case 2:
        return http_res_json(res, 200, json_pack("{s:b,s:s}", "success", 0, "message", "nope"));
    case 3:
        return http_res_text(res, 404, "text/html", "<h1>Not Found</h1>");
    default:
        return http_res_json(
            res, 403,
            json_pack("{s:b,s:s}", "status", 0, "message", "Your plan does not allow API access"));
    }
}

static int h_get_item(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    (void)req;
    return http_res_json(res, 200,
                         json_pack("{s:b,s:n,s:{s:s,s:s,s:s,s:{s:i},s:i,s:i}}", "status", 1,
                                   "message", "item", "id", "55", "filename", "x.gcode",
                                   "filesystem", "abc123", "group", "id", 3, "left", 2, "printed",
                                   1));
}

static int h_delete(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    snprintf(env.last_method, sizeof env.last_method, "%s", http_req_method(req));
    if (env.mode == 0)
        return http_res_text(res, 404, NULL, "gone");
    return http_res_json(res, 200,
                         json_pack("{s:b,s:s}", "status", 0, "message", "Item does not exist"));
}

static int h_jobs(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    (void)req;
    json_t *rows = json_pack(
        "[{s:i,s:s,s:s,s:s,s:s,s:s,s:i,s:f,s:{s:s}},"
        "{s:i,s:s,s:s,s:{s:s},s:{s:s,s:s},s:i,s:{s:s}},"
        "{s:i,s:s,s:s,s:i,s:s}]",
        "id", 1, "uid", "u1", "status", "finished", "filename", "a.gcode", "printer", "MK3S-2",
        "startDate", "2026-03-14T10:00:00Z", "endDate", 1773484800, "currentPercentage", 99.5,
        "queueItem", "id", "88",
        /* second row: other spellings */
        "id", 2, "uid", "u2", "state", "Canceled", "file", "name", "b.gcode", "printer", "id", "12",
        "name", "X", "queue_item_id", 89, "cancelInfo", "reason", "Operator said so",
        /* third: a state nobody knows */
        "id", 3, "uid", "u3", "status", "exploded", "printer", 17, "failedReason", "boom");
    return http_res_json(
        res, 200,
        json_pack("{s:b,s:n,s:o,s:s}", "status", 1, "message", "data", rows, "page_amount", "4"));
}

static int h_details(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    (void)req;
    return http_res_json(res, 200,
                         json_pack("{s:b,s:{s:i,s:s,s:s,s:i,s:i,s:i}}", "status", 1, "job", "id", 9,
                                   "state", "completed", "failedReason", "ignored when done",
                                   "percentage", 100, "started", 1773481200, "ended", 1773484800));
}

/* Page 1: 100 flat rows; page 2: one row in the nested shape, offline. */
static int h_printers(http_request *req, http_response *res, void *ctx)
{
    (void)ctx;
    size_t len;
    json_t *body = json_loads(http_req_body(req, &len), 0, NULL);
    json_int_t page = json_integer_value(json_object_get(body, "page"));
    json_int_t size = json_integer_value(json_object_get(body, "page_size"));
    json_decref(body);
    json_t *rows = json_array();
    if (page == 1) {
        for (json_int_t i = 0; i < size; i++)
            json_array_append_new(rows, json_pack("{s:I,s:s,s:s}", "id", (json_int_t)(i + 1),
                                                  "name", "flat", "state", "PRINTING"));
    } else if (page == 2) {
        json_array_append_new(rows, json_pack("{s:i,s:{s:s,s:s},s:n}", "id", 999, "printer", "name",
                                              "off", "state", "offline", "job"));
    }
    return http_res_json(res, 200,
                         json_pack("{s:b,s:o,s:i}", "status", 1, "data", rows, "page_amount", 2));
}

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOG_WARN);
    if (http_client_init() != 0)
        return -1;
    env.router = http_router_new();
    const http_route routes[] = {
        {"GET", "/7/account/Test", h_account, NULL, HTTP_ACCESS_PUBLIC},
        {"GET", "/7/queue/GetItem", h_get_item, NULL, HTTP_ACCESS_PUBLIC},
        {"POST", "/7/queue/DeleteItem", h_delete, NULL, HTTP_ACCESS_PUBLIC},
        {"GET", "/7/queue/DeleteItem", h_delete, NULL, HTTP_ACCESS_PUBLIC},
        {"POST", "/7/jobs/GetPaginatedPrintJobs", h_jobs, NULL, HTTP_ACCESS_PUBLIC},
        {"GET", "/7/jobs/GetDetails", h_details, NULL, HTTP_ACCESS_PUBLIC},
        {"POST", "/7/printers/Get", h_printers, NULL, HTTP_ACCESS_PUBLIC},
    };
    err e;
    if (!env.router || http_router_add(env.router, routes, sizeof routes / sizeof routes[0], &e))
        return -1;
    http_server_opts so = {.host = "127.0.0.1", .port = 0, .threads = 2};
    env.server = http_server_start(env.router, &so, &e);
    if (!env.server)
        return -1;
    /* A prefix and a trailing slash: both are kept / dropped as they should be. */
    snprintf(env.url, sizeof env.url, "http://127.0.0.1:%d//", http_server_port(env.server));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    http_server_stop(env.server);
    http_router_free(env.router);
    http_client_cleanup();
    return 0;
}

static sp_client *client(bool delete_with_get)
{
    sp_client_opts o = {.api_url = env.url,
                        .company_id = "7",
                        .api_key = "canned-key",
                        .timeout_ms = 5000,
                        .delete_with_get = delete_with_get};
    err e;
    sp_client *c = sp_client_new(&o, &e);
    if (!c)
        fail_msg("%s", e.msg);
    return c;
}

static void test_envelopes(void **state)
{
    (void)state;
    sp_client *c = client(false);
    sp_call call;
    err e;
    env.mode = 0;
    assert_int_equal(sp_account_test(c, &call, &e), F3_EPERMANENT);
    assert_int_equal(call.status, 200);
    assert_int_equal(call.failure, HTTP_PERMANENT);
    assert_non_null(strstr(e.msg, "status"));
    assert_string_equal(env.last_key, "canned-key"); /* the key went in X-API-KEY */
    env.mode = 1;
    assert_int_equal(sp_account_test(c, &call, &e), F3_EPERMANENT);
    env.mode = 2;
    assert_int_equal(sp_account_test(c, &call, &e), F3_EPERMANENT);
    assert_string_equal(call.message, "nope");
    env.mode = 3;
    assert_int_equal(sp_account_test(c, &call, &e), F3_EPERMANENT);
    assert_int_equal(call.status, 404);
    assert_string_equal(call.message, "");
    env.mode = 4;
    assert_int_equal(sp_account_test(c, &call, &e), F3_EPERMANENT);
    assert_int_equal(call.status, 403);
    assert_string_equal(call.message, "Your plan does not allow API access");
    assert_non_null(strstr(e.msg, "Your plan does not allow API access"));
    assert_null(strstr(e.msg, "canned-key"));
    sp_client_free(c);
}

static void test_queue_item_under_item(void **state)
{
    (void)state;
    sp_client *c = client(false);
    sp_queue_item it;
    sp_call call;
    err e;
    assert_int_equal(sp_queue_get_item(c, 55, &it, &call, &e), 0);
    assert_int_equal(it.id, 55);
    assert_string_equal(it.filesystem_id, "abc123");
    assert_int_equal(it.group, 3);
    assert_int_equal(it.left, 2);
    assert_int_equal(it.printed, 1);
    sp_client_free(c);
}

static void test_delete_of_a_gone_item(void **state)
{
    (void)state;
    sp_client *c = client(false);
    sp_call call;
    err e;
    env.mode = 0;
    assert_int_equal(sp_queue_delete_item(c, 5, &call, &e), 0);
    assert_int_equal(call.status, 404);
    assert_string_equal(env.last_method, "POST");
    env.mode = 1;
    assert_int_equal(sp_queue_delete_item(c, 5, &call, &e), 0);
    sp_client_free(c);
    c = client(true);
    assert_int_equal(sp_queue_delete_item(c, 5, &call, &e), 0);
    assert_string_equal(env.last_method, "GET");
    sp_client_free(c);
}

static void test_job_spellings(void **state)
{
    (void)state;
    sp_client *c = client(false);
    sp_job *jobs = NULL;
    size_t n = 0;
    int pages = 0;
    sp_call call;
    err e;
    assert_int_equal(sp_jobs_list(c, NULL, &jobs, &n, &pages, &call, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(pages, 4);
    assert_int_equal(jobs[0].state, SP_JOB_DONE);
    assert_string_equal(jobs[0].printer_name, "MK3S-2");
    assert_int_equal(jobs[0].printer_id, 0);
    assert_int_equal(jobs[0].started_s, 1773482400); /* 2026-03-14T10:00:00Z */
    assert_int_equal(jobs[0].ended_s, 1773484800);
    assert_int_equal(jobs[0].percentage, 99);
    assert_int_equal(jobs[0].queue_item_id, 88);
    assert_int_equal(jobs[1].state, SP_JOB_CANCELLED);
    assert_string_equal(jobs[1].filename, "b.gcode");
    assert_int_equal(jobs[1].printer_id, 12);
    assert_int_equal(jobs[1].queue_item_id, 89);
    assert_string_equal(jobs[1].reason, "Operator said so");
    assert_int_equal(jobs[2].state, SP_JOB_UNKNOWN);
    assert_int_equal(jobs[2].printer_id, 17);
    assert_string_equal(jobs[2].reason, "boom");
    free(jobs);

    sp_job one;
    assert_int_equal(sp_job_get(c, "abc-1", &one, &call, &e), 0);
    assert_int_equal(one.id, 9);
    assert_string_equal(one.uid, "abc-1"); /* from the request when the answer has none */
    assert_int_equal(one.state, SP_JOB_DONE);
    assert_int_equal(one.started_s, 1773481200);
    sp_client_free(c);
}

static void test_printers_paged_and_flat(void **state)
{
    (void)state;
    sp_client *c = client(false);
    sp_printer *list = NULL;
    size_t n = 0;
    sp_call call;
    err e;
    assert_int_equal(sp_printers_list(c, &list, &n, &call, &e), 0);
    assert_int_equal(n, SP_PAGE_SIZE_MAX + 1);
    assert_string_equal(list[0].name, "flat");
    assert_string_equal(list[0].state, "printing"); /* lower-cased */
    assert_true(list[0].online);
    assert_true(sp_printer_state_busy(list[0].state));
    assert_int_equal(list[SP_PAGE_SIZE_MAX].id, 999);
    assert_string_equal(list[SP_PAGE_SIZE_MAX].state, "offline");
    assert_false(list[SP_PAGE_SIZE_MAX].online);
    assert_int_equal(list[SP_PAGE_SIZE_MAX].job_id, 0);
    free(list);
    sp_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelopes),
        cmocka_unit_test(test_queue_item_under_item),
        cmocka_unit_test(test_delete_of_a_gone_item),
        cmocka_unit_test(test_job_spellings),
        cmocka_unit_test(test_printers_paged_and_flat),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
