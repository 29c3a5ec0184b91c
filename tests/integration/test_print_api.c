/* F3_TEST: backends
 * test_print_api.c - the print service's HTTP API served in-process on a real database,
 * with the SimplyPrint simulator (printers paused) behind it: the print-job list (filters,
 * cursor paging, tenant isolation), detail, retry and cancel with their status rules and
 * permissions; the internal API behind X-Internal-Key; and the SimplyPrint integration
 * routes (credentials checked against the API, secrets never answered, disconnect).
 *
 * A small test guard stands in for the gateway: it attaches a user context for the tenant
 * and role named by X-Test-Tenant / X-Test-Role and enforces the route's permission, and
 * checks X-Internal-Key on internal routes.
 */
#include "support/f3test.h"
#include "support/f3test_bus.h"
#include "support/f3test_http.h"

#include "bus/bus.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "http/request.h"
#include "http/response.h"
#include "http/server.h"
#include "services/access/user_context.h"
#include "services/print/service.h"
#include "sim/simplyprint/sim.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INTERNAL_KEY "test-internal-key"
#define API_KEY      "sp-api-key"
#define KEY_HEX      "2f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

static const char *backend;

typedef struct fx {
    f3test_bus tb;
    config *cfg;
    char *dir;
    bus *b;
    print_service *ps;
    http_router *router;
    http_server *server;
    int port;
    sp_sim *sim;
    char sim_url[64];
} fx;

static int test_guard(http_request *req, const http_route *route, http_response *res, void *ctx)
{
    (void)ctx;
    if (strcmp(route->access, HTTP_ACCESS_INTERNAL) == 0) {
        const char *k = http_req_header(req, "X-Internal-Key");
        if (!k || strcmp(k, INTERNAL_KEY) != 0) {
            http_res_error(res, 401, "Invalid internal key");
            return 1;
        }
        return 0;
    }
    if (strcmp(route->access, HTTP_ACCESS_PUBLIC) == 0 ||
        strcmp(route->access, HTTP_ACCESS_WEBHOOK) == 0)
        return 0;
    const char *tenant = http_req_header(req, "X-Test-Tenant");
    const char *role = http_req_header(req, "X-Test-Role");
    if (!tenant) {
        http_res_error(res, 401, "Authentication required");
        return 1;
    }
    user_ctx *u = user_ctx_new("user-1", tenant, "op@example.com", role ? role : "admin", false);
    if (!u)
        return F3_ENOMEM;
    http_req_set_user(req, u, user_ctx_free);
    if (!user_ctx_can(u, route->access)) {
        http_res_error(res, 403, "Forbidden");
        return 1;
    }
    return 0;
}

static void exec(fx *f, const char *sql)
{
    f3test_bus_exec(f->tb.d, sql);
}

/* A job row of tenant t, order o, created at `at`, in `status` (queue item qi or none). */
static void add_job(fx *f, const char *t, const char *id, const char *status, int at,
                    const char *qi)
{
    char sql[700];
    snprintf(sql, sizeof sql,
             "INSERT INTO print_jobs (id, tenant_id, order_id, line_item_id, part_key,"
             " unit_index, status, file_id, simplyprint_queue_item_id, created_at, updated_at)"
             " VALUES ('%s', '%s', '%s-o', '%s-li', 'p', %d, '%s', 'abcdef', %s%s%s, %d, %d)",
             id, t, t, t, at, status, qi ? "'" : "", qi ? qi : "NULL", qi ? "'" : "", at, at);
    exec(f, sql);
}

static void set(fx *f, const char *flag, const char *value)
{
    err e;
    if (config_set_flag(f->cfg, flag, value, &e))
        fail_msg("%s: %s", flag, e.msg);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    log_set_level(LOG_WARN);
    f3test_bus_new(&f->tb, backend);
    f->dir = f3test_tmpdir();
    f->cfg = config_new();
    set(f, "data-dir", f->dir);
    set(f, "encryption-key", KEY_HEX);
    err e = {0};
    sp_sim_opts so = {.api_key = API_KEY, .printers = 1, .paused = true, .seed = 3};
    f->sim = sp_sim_start(&so, &e);
    if (!f->sim)
        fail_msg("sim: %s", e.msg);
    snprintf(f->sim_url, sizeof f->sim_url, "http://127.0.0.1:%d", sp_sim_port(f->sim));
    exec(f, "INSERT INTO tenants (id, name, slug, created_at, updated_at) VALUES"
            " ('t1', 'One', 'one', 0, 0), ('t2', 'Two', 'two', 0, 0)");
    for (int t = 1; t <= 2; t++) {
        char sql[600];
        snprintf(sql, sizeof sql,
                 "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number,"
                 " customer_name, created_at, updated_at) VALUES ('t%d-o', 't%d', '%d', '#%d',"
                 " 'Ann', 0, 0)",
                 t, t, t, t);
        exec(f, sql);
        snprintf(sql, sizeof sql,
                 "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, sku,"
                 " title, quantity, created_at, updated_at) VALUES ('t%d-li', 't%d', 't%d-o',"
                 " '1', 'X', 'X', 5, 0, 0)",
                 t, t, t);
        exec(f, sql);
    }
    add_job(f, "t1", "j1", "COMPLETED", 1, "11");
    add_job(f, "t1", "j2", "FAILED", 2, NULL);
    add_job(f, "t1", "j3", "QUEUED", 3, "13");
    add_job(f, "t1", "j4", "PRINTING", 4, "14");
    add_job(f, "t1", "j5", "CANCELLED", 5, NULL);
    add_job(f, "t2", "k1", "QUEUED", 1, "21");
    f->b = bus_new(f->tb.d, f->tb.s, BUS_SVC_PRINT, &e);
    f->router = http_router_new();
    print_service_deps deps = {.db = f->tb.d,
                               .bus = f->b,
                               .store = f->tb.s,
                               .config = f->cfg,
                               .provider = &print_provider_simplyprint,
                               .no_queues = true};
    if (!f->b || !f->router || print_service_start(&f->ps, &deps, f->router, &e))
        fail_msg("print service: %s", e.msg);
    print_connect_rq rq = {
        .company_id = SP_SIM_DEFAULT_COMPANY, .api_key = API_KEY, .api_url = f->sim_url};
    if (print_service_connect(f->ps, "t1", &rq, NULL, &e))
        fail_msg("connect: %s", e.msg);
    http_server_opts o = {.host = "127.0.0.1", .threads = 4, .guard = test_guard};
    f->server = http_server_start(f->router, &o, &e);
    if (!f->server)
        fail_msg("server: %s", e.msg);
    f->port = http_server_port(f->server);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    http_server_stop(f->server);
    sp_sim_stop(f->sim);
    print_service_free(f->ps);
    bus_free(f->b);
    http_router_free(f->router);
    config_free(f->cfg);
    f3test_bus_drop(&f->tb);
    f3test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void request(fx *f, const char *tenant, const char *role, const char *method,
                    const char *path, const char *body, f3test_http_response *r)
{
    buf b;
    buf_init(&b, 0);
    buf_printf(&b, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n", method, path);
    if (tenant && strcmp(tenant, "internal") == 0)
        buf_puts(&b, "X-Internal-Key: " INTERNAL_KEY "\r\n");
    else if (tenant)
        buf_printf(&b, "X-Test-Tenant: %s\r\n", tenant);
    if (role)
        buf_printf(&b, "X-Test-Role: %s\r\n", role);
    if (body)
        buf_printf(&b, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   strlen(body), body);
    else
        buf_puts(&b, "Content-Length: 0\r\n\r\n");
    if (f3test_http_request(f->port, buf_cstr(&b), r) != 0)
        fail_msg("%s %s: no response", method, path);
    buf_free(&b);
}

static json_t *call_as(fx *f, const char *tenant, const char *role, const char *method,
                       const char *path, const char *body, int status)
{
    f3test_http_response r = {0};
    request(f, tenant, role, method, path, body, &r);
    if (r.status != status)
        fail_msg("%s %s: status %d, want %d: %s", method, path, r.status, status, r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    if (!j)
        fail_msg("%s %s: body is not JSON: %s", method, path, r.body);
    f3test_http_response_free(&r);
    return j;
}

static json_t *call(fx *f, const char *tenant, const char *method, const char *path,
                    const char *body, int status)
{
    return call_as(f, tenant, NULL, method, path, body, status);
}

static void expect(fx *f, const char *tenant, const char *method, const char *path,
                   const char *body, int status)
{
    json_decref(call(f, tenant, method, path, body, status));
}

static const char *status_of(const json_t *job)
{
    return json_string_value(json_object_get(job, "status"));
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_list_filters_and_pages(void **state)
{
    fx *f = *state;
    /* Newest first, two per page, for tenant t1 only. */
    const char *want[] = {"j5", "j4", "j3", "j2", "j1"};
    size_t seen = 0;
    char path[512] = "/api/v1/print-jobs?limit=2";
    for (int page = 0; page < 5; page++) {
        json_t *p = call(f, "t1", "GET", path, NULL, 200);
        json_t *data = json_object_get(p, "data");
        for (size_t i = 0; i < json_array_size(data); i++) {
            assert_true(seen < 5);
            assert_string_equal(json_string_value(json_object_get(json_array_get(data, i), "id")),
                                want[seen++]);
        }
        const char *next = json_string_value(json_object_get(p, "nextCursor"));
        if (!next) {
            json_decref(p);
            break;
        }
        snprintf(path, sizeof path, "/api/v1/print-jobs?limit=2&cursor=%s", next);
        json_decref(p);
    }
    assert_int_equal(seen, 5);

    json_t *p = call(f, "t1", "GET", "/api/v1/print-jobs?status=QUEUED", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(p, "data")), 1);
    assert_string_equal(status_of(json_array_get(json_object_get(p, "data"), 0)), "QUEUED");
    assert_true(json_is_null(json_object_get(p, "nextCursor")));
    json_decref(p);
    p = call(f, "t1", "GET", "/api/v1/print-jobs?orderId=t2-o", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(p, "data")), 0);
    json_decref(p);
    p = call(f, "t2", "GET", "/api/v1/print-jobs", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(p, "data")), 1);
    json_decref(p);

    expect(f, "t1", "GET", "/api/v1/print-jobs?status=DONE", NULL, 400);
    expect(f, "t1", "GET", "/api/v1/print-jobs?limit=0", NULL, 400);
    expect(f, "t1", "GET", "/api/v1/print-jobs?cursor=%%%", NULL, 400);
    expect(f, "t1", "GET", "/api/v1/print-jobs?cursor=bm9jb2xvbg", NULL, 400);
    expect(f, "t1", "GET", "/api/v1/print-jobs?cursor=MTr__g", NULL, 400);   /* not UTF-8 */
    expect(f, "t1", "GET", "/api/v1/print-jobs?cursor=LTU6YWJj", NULL, 400); /* -5 */
    expect(f, NULL, "GET", "/api/v1/print-jobs", NULL, 401);
}

static void test_detail_retry_cancel(void **state)
{
    fx *f = *state;
    json_t *j = call(f, "t1", "GET", "/api/v1/print-jobs/j3", NULL, 200);
    assert_string_equal(status_of(j), "QUEUED");
    assert_int_equal(json_integer_value(json_object_get(j, "simplyPrintQueueItemId")), 13);
    json_decref(j);
    expect(f, "t2", "GET", "/api/v1/print-jobs/j3", NULL, 404);
    expect(f, "t1", "GET", "/api/v1/print-jobs/nope", NULL, 404);

    /* Retry: a FAILED job goes back to PENDING and out to SimplyPrint again. */
    j = call(f, "t1", "POST", "/api/v1/print-jobs/j2/retry", NULL, 200);
    assert_string_equal(status_of(j), "QUEUED");
    assert_int_equal(json_integer_value(json_object_get(j, "retryCount")), 1);
    assert_true(json_integer_value(json_object_get(j, "simplyPrintQueueItemId")) > 0);
    json_decref(j);
    expect(f, "t1", "POST", "/api/v1/print-jobs/j3/retry", NULL, 409);
    expect(f, "t1", "POST", "/api/v1/print-jobs/j1/retry", NULL, 409);
    expect(f, "t2", "POST", "/api/v1/print-jobs/j2/retry", NULL, 404);
    json_decref(call_as(f, "t1", "viewer", "POST", "/api/v1/print-jobs/j5/retry", NULL, 403));

    /* Cancel: QUEUED and PRINTING are cancelled (the queue item is gone from SimplyPrint
     * or its removal failed and is kept); finished ones are 409. */
    j = call(f, "t1", "POST", "/api/v1/print-jobs/j3/cancel", NULL, 200);
    assert_string_equal(status_of(j), "CANCELLED");
    json_decref(j);
    j = call(f, "t1", "POST", "/api/v1/print-jobs/j4/cancel", NULL, 200);
    assert_string_equal(status_of(j), "CANCELLED");
    json_decref(j);
    expect(f, "t1", "POST", "/api/v1/print-jobs/j3/cancel", NULL, 409);
    expect(f, "t1", "POST", "/api/v1/print-jobs/j1/cancel", NULL, 409);
    json_decref(call_as(f, "t1", "operator", "POST", "/api/v1/print-jobs/j2/cancel", NULL, 200));
    assert_int_equal(f3test_bus_count(f->tb.d,
                                      "SELECT COUNT(*) FROM bus_jobs WHERE queue ="
                                      " 'print-job.cancelled@order-service'",
                                      NULL),
                     3);
}

static void test_internal_api(void **state)
{
    fx *f = *state;
    expect(f, NULL, "DELETE", "/internal/print-jobs/j3?tenantId=t1", NULL, 401);
    expect(f, "internal", "DELETE", "/internal/print-jobs/j3", NULL, 400);
    json_t *j = call(f, "internal", "DELETE", "/internal/print-jobs/j3?tenantId=t1", NULL, 200);
    assert_string_equal(status_of(j), "CANCELLED");
    json_decref(j);
    expect(f, "internal", "DELETE", "/internal/print-jobs/k1?tenantId=t1", NULL, 404);
    expect(f, "internal", "POST", "/internal/print-jobs?tenantId=t1", "{}", 400);
    expect(f, "internal", "POST", "/internal/print-jobs?tenantId=t1", "{\"orderId\":5}", 400);
    expect(f, "internal", "POST", "/internal/print-jobs?tenantId=t1", "{\"orderId\":\"zz\"}", 404);
    /* The line item has no mapped SKU: nothing created, reported as unmapped. */
    j = call(f, "internal", "POST", "/internal/print-jobs?tenantId=t1", "{\"orderId\":\"t1-o\"}",
             201);
    assert_int_equal(json_integer_value(json_object_get(j, "created")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "unmapped")), 1);
    json_decref(j);
}

static void test_integration_routes(void **state)
{
    fx *f = *state;
    char body[256];
    snprintf(body, sizeof body, "{\"companyId\":\"%s\",\"apiKey\":\"wrong\",\"apiUrl\":\"%s\"}",
             SP_SIM_DEFAULT_COMPANY, f->sim_url);
    expect(f, "t2", "PUT", "/api/v1/integrations/simplyprint", body, 422);
    expect(f, "t2", "PUT", "/api/v1/integrations/simplyprint", "{\"apiKey\":\"x\"}", 400);
    expect(f, "t2", "PUT", "/api/v1/integrations/simplyprint", "[]", 400);
    expect(f, "t2", "PUT", "/api/v1/integrations/simplyprint",
           "{\"companyId\":\"1\",\"apiKey\":\"k\",\"apiUrl\":5}", 400);
    expect(f, "t2", "PUT", "/api/v1/integrations/simplyprint",
           "{\"companyId\":\"1\",\"apiKey\":\"k\",\"apiUrl\":\"ftp://x\"}", 400);
    json_t *j = call(f, "t2", "GET", "/api/v1/integrations/simplyprint", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "NOT_CONFIGURED");
    json_decref(j);
    json_decref(call_as(f, "t2", "operator", "GET", "/api/v1/integrations/simplyprint", NULL, 403));

    snprintf(body, sizeof body, "{\"companyId\":%s,\"apiKey\":\"%s\",\"apiUrl\":\"%s\"}",
             SP_SIM_DEFAULT_COMPANY, API_KEY, f->sim_url);
    j = call(f, "t2", "PUT", "/api/v1/integrations/simplyprint", body, 200);
    assert_true(json_is_true(json_object_get(j, "connected")));
    assert_int_equal(strlen(json_string_value(json_object_get(j, "webhookSecret"))), 64);
    json_decref(j);
    f3test_http_response r = {0};
    request(f, "t2", NULL, "GET", "/api/v1/integrations/simplyprint", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, API_KEY));
    assert_non_null(strstr(r.body, "\"connected\":true"));
    assert_non_null(strstr(r.body, "\"webhookSecretSet\":true"));
    f3test_http_response_free(&r);
    assert_int_equal(f3test_bus_count(f->tb.d,
                                      "SELECT COUNT(*) FROM bus_jobs WHERE queue ="
                                      " 'integration.simplyprint-changed@order-service'",
                                      NULL),
                     2); /* t1 in setup, t2 now */

    expect(f, "t2", "DELETE", "/api/v1/integrations/simplyprint", NULL, 200);
    expect(f, "t2", "DELETE", "/api/v1/integrations/simplyprint", NULL, 404);
    j = call(f, "t2", "GET", "/api/v1/integrations/simplyprint", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "DISCONNECTED");
    json_decref(j);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_filters_and_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detail_retry_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_internal_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_integration_routes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
