/* F3_TEST: backends
 * test_orders_api_gateway.c - the orders API behind the REAL gateway guard (auth_guard):
 * sessions from a real login, the role's permissions against each route's declared
 * permission, the CSRF origin check on writes, X-Internal-Key on /internal/ routes, and the
 * tenant of the session deciding what a caller sees.
 *
 * test_orders_api.c covers the behaviour of every route; this file covers that the routes
 * declare the right access and work with the context the real guard attaches.
 */
#include "support/f3test.h"
#include "support/f3test_db.h"
#include "support/f3test_http.h"

#include "core/buf.h"
#include "core/log.h"
#include "http/server.h"
#include "services/gateway/accounts.h"
#include "services/gateway/auth.h"
#include "services/gateway/ratelimit.h"
#include "services/gateway/session_store.h"
#include "services/orders/orders_api.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE INT64_C(60000)
#define HOUR   (60 * MINUTE)
#define PW     "correct horse battery staple"
#define IKEY   "orders-internal-key-0123456789"
#define ORIGIN "http://app.test"

static const char *backend;

typedef struct fx {
    char *url;
    db *d;
    char tenant_a[65], tenant_b[65];
    session_store *sessions;
    ratelimit *limits;
    auth *a;
    orders_api_deps deps;
    http_router *router;
    http_server *server;
    int port;
    char *admin_a, *viewer_a, *admin_b; /* session tokens */
} fx;

/* ---- requests --------------------------------------------------------------------------- */

/* One request with an optional session token and extra header lines; writes get the app's
 * Origin (the CSRF check) unless origin is "" . */
static void send(fx *f, const char *method, const char *path, const char *token, const char *extra,
                 const char *body, f3test_http_response *r)
{
    buf b;
    buf_init(&b, 0);
    bool changing = strcmp(method, "GET") != 0;
    buf_printf(&b, "%s %s HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n", method, path);
    if (token)
        buf_printf(&b, "Cookie: f3_session=%s\r\n", token);
    if (changing)
        buf_puts(&b, "Origin: " ORIGIN "\r\n");
    if (extra)
        buf_puts(&b, extra);
    if (body)
        buf_printf(&b, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   strlen(body), body);
    else
        buf_puts(&b, "Content-Length: 0\r\n\r\n");
    memset(r, 0, sizeof *r);
    if (f3test_http_request(f->port, buf_cstr(&b), r) != 0)
        fail_msg("%s %s: no response", method, path);
    buf_free(&b);
}

static int status_of(fx *f, const char *method, const char *path, const char *token,
                     const char *extra, const char *body)
{
    f3test_http_response r;
    send(f, method, path, token, extra, body, &r);
    int st = r.status;
    f3test_http_response_free(&r);
    return st;
}

static json_t *call_json(fx *f, const char *method, const char *path, const char *token,
                         const char *extra, const char *body, int status)
{
    f3test_http_response r;
    send(f, method, path, token, extra, body, &r);
    if (r.status != status)
        fail_msg("%s %s: status %d, want %d: %s", method, path, r.status, status, r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    if (!j)
        fail_msg("%s %s: body is not JSON", method, path);
    f3test_http_response_free(&r);
    return j;
}

static char *login(fx *f, const char *email)
{
    char body[256];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, PW);
    f3test_http_response r;
    send(f, "POST", "/api/v1/auth/login", NULL, NULL, body, &r);
    if (r.status != 200)
        fail_msg("login %s: %d %s", email, r.status, r.body);
    const char *sc = f3test_http_header_get(&r, "Set-Cookie");
    assert_non_null(sc);
    assert_true(strncmp(sc, "f3_session=", 11) == 0);
    char *tok = strndup(sc + 11, strcspn(sc + 11, ";"));
    f3test_http_response_free(&r);
    assert_non_null(tok);
    return tok;
}

/* ---- fixture ---------------------------------------------------------------------------- */

static void exec_sql(fx *f, const char *sql)
{
    err e = {0};
    db_conn *c = db_acquire(f->d, &e);
    if (!c || db_exec(c, sql, &e) != 0)
        fail_msg("%s: %s", sql, e.msg);
    db_release(c);
}

static void make_user(fx *f, const char *tenant, const char *email, const char *role)
{
    err e = {0};
    account a;
    if (account_create(f->d, tenant, email, role, PW, false, &a, &e) != 0)
        fail_msg("account_create %s: %s", email, e.msg);
}

static void seed_order(fx *f, const char *tenant, const char *id, const char *sku)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number, "
             "customer_name, created_at, updated_at) VALUES ('%s', '%s', 'sh-%s', '#%s', 'C', "
             "1767225600000, 1767225600000); "
             "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, sku, title, "
             "quantity, created_at, updated_at) VALUES ('li-%s', '%s', '%s', '1', '%s', 'T', 2, "
             "0, 0)",
             id, tenant, id, id, id, tenant, id, sku);
    exec_sql(f, sql);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    err e = {0};
    f->url = f3test_db_url(backend);
    if (db_open(f->url, NULL, &f->d, &e) || db_migrate(f->d, NULL, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(account_default_tenant(f->d, f->tenant_a, &e), 0);
    assert_int_equal(account_tenant_resolve(f->d, "tenant-b", true, f->tenant_b, &e), 0);
    make_user(f, f->tenant_a, "admin@a.example", "admin");
    make_user(f, f->tenant_a, "viewer@a.example", "viewer");
    make_user(f, f->tenant_b, "admin@b.example", "admin");
    seed_order(f, f->tenant_a, "a-1", "SKU-1");
    seed_order(f, f->tenant_b, "b-1", "SKU-1");

    session_limits sl = {30 * MINUTE, 24 * HOUR};
    f->sessions = session_store_db_new(f->d, &sl);
    f->limits = ratelimit_memory_new(0);
    assert_non_null(f->sessions);
    assert_non_null(f->limits);
    auth_opts o = {.store = f->d,
                   .sessions = f->sessions,
                   .limits = f->limits,
                   .app_url = ORIGIN,
                   .internal_key = IKEY,
                   .per_ip = {10000, MINUTE},
                   .per_user = {10000, MINUTE},
                   .login = {1000, MINUTE},
                   .max_failures_account = 100,
                   .max_failures_ip = 1000};
    f->a = auth_new(&o, &e);
    if (!f->a)
        fail_msg("auth: %s", e.msg);
    f->deps = (orders_api_deps){f->d};
    f->router = http_router_new();
    assert_non_null(f->router);
    if (auth_add_routes(f->router, f->a, &e) || orders_api_add_routes(f->router, &f->deps, &e))
        fail_msg("routes: %s", e.msg);
    http_server_opts so = {.host = "127.0.0.1",
                           .threads = 2,
                           .guard = auth_guard,
                           .guard_ctx = f->a,
                           .on_response = auth_security_headers,
                           .on_response_ctx = f->a};
    f->server = http_server_start(f->router, &so, &e);
    if (!f->server)
        fail_msg("server: %s", e.msg);
    f->port = http_server_port(f->server);
    f->admin_a = login(f, "admin@a.example");
    f->viewer_a = login(f, "viewer@a.example");
    f->admin_b = login(f, "admin@b.example");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    http_server_stop(f->server);
    http_router_free(f->router);
    auth_free(f->a);
    ratelimit_free(f->limits);
    session_store_free(f->sessions);
    db_close(f->d);
    f3test_db_drop(f->url);
    free(f->url);
    free(f->admin_a);
    free(f->viewer_a);
    free(f->admin_b);
    free(f);
    return 0;
}

#define MAPPING "{\"sku\":\"SKU-1\",\"name\":\"n\",\"files\":[{\"simplyPrintFileId\":\"f\"}]}"

/* ---- tests ------------------------------------------------------------------------------ */

static void test_public_routes_need_a_session_with_the_permission(void **state)
{
    fx *f = *state;
    static const char *const reads[] = {"/api/v1/orders", "/api/v1/orders/a-1",
                                        "/api/v1/product-mappings", "/api/v1/events",
                                        "/api/v1/analytics/summary"};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        assert_int_equal(status_of(f, "GET", reads[i], NULL, NULL, NULL), 401);
        assert_int_equal(status_of(f, "GET", reads[i], f->viewer_a, NULL, NULL), 200);
        assert_int_equal(status_of(f, "GET", reads[i], f->admin_a, NULL, NULL), 200);
    }
    /* A viewer reads mappings but may not write them; an admin may. */
    assert_int_equal(status_of(f, "POST", "/api/v1/product-mappings", f->viewer_a, NULL, MAPPING),
                     403);
    assert_int_equal(status_of(f, "POST", "/api/v1/product-mappings", NULL, NULL, MAPPING), 401);
    json_t *m = call_json(f, "POST", "/api/v1/product-mappings", f->admin_a, NULL, MAPPING, 201);
    /* The event the mapping wrote names the signed-in user. */
    assert_int_equal(json_integer_value(json_object_get(m, "linkedLineItems")), 1);
    char path[160];
    snprintf(path, sizeof path, "/api/v1/product-mappings/%s",
             json_string_value(json_object_get(m, "id")));
    json_decref(m);
    json_t *ev = call_json(f, "GET", "/api/v1/events?eventType=mapping.applied", f->viewer_a, NULL,
                           NULL, 200);
    json_t *first = json_array_get(json_object_get(ev, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "orderId")), "a-1");
    assert_non_null(json_string_value(json_object_get(first, "userId")));
    json_decref(ev);
    assert_int_equal(status_of(f, "DELETE", path, f->viewer_a, NULL, NULL), 403);
    assert_int_equal(status_of(f, "PATCH", path, f->viewer_a, NULL, "{\"name\":\"x\"}"), 403);
}

static void test_the_session_decides_the_tenant(void **state)
{
    fx *f = *state;
    json_t *j = call_json(f, "GET", "/api/v1/orders", f->admin_b, NULL, NULL, 200);
    json_t *data = json_object_get(j, "data");
    assert_int_equal(json_array_size(data), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 0), "id")), "b-1");
    json_decref(j);
    assert_int_equal(status_of(f, "GET", "/api/v1/orders/a-1", f->admin_b, NULL, NULL), 404);
    assert_int_equal(status_of(f, "GET", "/api/v1/orders/b-1", f->admin_a, NULL, NULL), 404);
    /* The user-context headers of the distributed gateway are not trusted from outside. */
    char extra[200];
    snprintf(extra, sizeof extra, "x-tenant-id: %s\r\nx-user-id: u\r\n", f->tenant_b);
    j = call_json(f, "GET", "/api/v1/orders", f->admin_a, extra, NULL, 200);
    data = json_object_get(j, "data");
    assert_int_equal(json_array_size(data), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 0), "id")), "a-1");
    json_decref(j);
}

static void test_internal_routes_need_the_internal_key(void **state)
{
    fx *f = *state;
    char path[256];
    snprintf(path, sizeof path, "/internal/orders/a-1?tenantId=%s", f->tenant_a);
    assert_int_equal(status_of(f, "GET", path, NULL, NULL, NULL), 401);
    /* A session, even an admin's, is no internal key. */
    assert_int_equal(status_of(f, "GET", path, f->admin_a, NULL, NULL), 401);
    assert_int_equal(status_of(f, "GET", path, NULL, "X-Internal-Key: wrong\r\n", NULL), 401);
    json_t *o = call_json(f, "GET", path, NULL, "X-Internal-Key: " IKEY "\r\n", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(o, "id")), "a-1");
    json_decref(o);
    snprintf(path, sizeof path, "/internal/orders/a-1/tracking?tenantId=%s", f->tenant_a);
    o = call_json(f, "PATCH", path, NULL, "X-Internal-Key: " IKEY "\r\n",
                  "{\"trackingNumber\":\"T1\",\"trackingUrl\":\"https://t.example/T1\"}", 200);
    assert_string_equal(json_string_value(json_object_get(o, "trackingNumber")), "T1");
    json_decref(o);
    assert_int_equal(status_of(f, "PATCH", path, f->admin_a, NULL,
                               "{\"trackingNumber\":\"T2\",\"trackingUrl\":\"https://t.example\"}"),
                     401);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    if (sodium_init() < 0)
        return 1;
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_public_routes_need_a_session_with_the_permission,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_session_decides_the_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_internal_routes_need_the_internal_key, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
