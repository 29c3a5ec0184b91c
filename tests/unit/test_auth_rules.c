/*
 * test_auth_rules.c - the gateway's pure rules: the permission table and role
 * sets, token buckets, session cookies, the CSRF origin check, the login-failure
 * bucket size and the user-context headers.
 */
#include "support/f3test.h"

#include "core/buf.h"
#include "services/gateway/auth.h"
#include "services/access/permissions.h"
#include "services/gateway/ratelimit.h"
#include "services/gateway/session_store.h"
#include "services/access/user_context.h"

#include <sodium.h>
#include <string.h>

/* ---- permissions ----------------------------------------------------------- */

static void test_roles_grant_their_table_rows(void **state)
{
    (void)state;
    rbac_set admin = rbac_role_permissions("admin", false);
    rbac_set op = rbac_role_permissions("operator", false);
    rbac_set viewer = rbac_role_permissions("viewer", false);
    assert_int_equal(admin, rbac_all());
    assert_true(rbac_allows(op, PERM_ORDERS_WRITE));
    assert_true(rbac_allows(op, PERM_PRINT_JOBS_WRITE));
    assert_false(rbac_allows(op, PERM_USERS_MANAGE));
    assert_false(rbac_allows(op, PERM_QUEUES_ADMIN));
    assert_false(rbac_allows(op, PERM_INTEGRATIONS_MANAGE));
    assert_true(rbac_allows(viewer, PERM_ORDERS_READ));
    assert_false(rbac_allows(viewer, PERM_ORDERS_WRITE));
    assert_false(rbac_allows(viewer, PERM_AUDIT_READ));
    /* every read permission of the table is granted to viewers, no write one */
    for (size_t i = 0; i < rbac_permission_count(); i++) {
        const char *p = rbac_permission_name(i);
        bool is_read = strstr(p, ".read") != NULL && strcmp(p, PERM_AUDIT_READ) != 0;
        assert_int_equal(rbac_allows(viewer, p), is_read);
        assert_true(rbac_allows(admin, p));
    }
    assert_int_equal(rbac_role_permissions("root", false), 0);
    assert_int_equal(rbac_role_permissions(NULL, false), 0);
    assert_int_equal(rbac_role_permissions("viewer", true), rbac_all());
    assert_false(rbac_allows(rbac_all(), "orders.delete"));
    assert_false(rbac_allows(rbac_all(), NULL));
    assert_true(rbac_role_valid("operator"));
    assert_false(rbac_role_valid("Operator"));
}

static void test_permission_lists_round_trip(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 0);
    rbac_set op = rbac_role_permissions("operator", false);
    assert_int_equal(rbac_format(op, &b), 0);
    assert_non_null(strstr(buf_cstr(&b), "orders.read,orders.write"));
    assert_int_equal(rbac_parse(buf_cstr(&b)), op);
    assert_int_equal(rbac_parse("orders.read, bogus,,shipments.write"),
                     rbac_permission_bit("orders.read") | rbac_permission_bit("shipments.write"));
    assert_int_equal(rbac_parse(""), 0);
    buf_free(&b);
}

/* ---- token buckets --------------------------------------------------------- */

static void test_bucket_allows_burst_then_refills(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_memory_new(0);
    assert_non_null(rl);
    ratelimit_rule r = {3, 3000}; /* 3 tokens, one per second */
    int64_t retry = 0;
    for (int i = 0; i < 3; i++)
        assert_true(ratelimit_take(rl, "k", &r, 1000, &retry));
    assert_false(ratelimit_take(rl, "k", &r, 1000, &retry));
    assert_true(retry > 0 && retry <= 1001);
    assert_true(ratelimit_take(rl, "other", &r, 1000, NULL)); /* keys are independent */
    assert_false(ratelimit_take(rl, "k", &r, 1500, NULL));
    assert_true(ratelimit_take(rl, "k", &r, 2000, NULL)); /* one token back after 1 s */
    assert_false(ratelimit_take(rl, "k", &r, 2000, NULL));
    /* peek looks without taking */
    assert_true(ratelimit_peek(rl, "k", &r, 3000, NULL));
    assert_true(ratelimit_peek(rl, "k", &r, 3000, NULL));
    assert_true(ratelimit_take(rl, "k", &r, 3000, NULL));
    assert_false(ratelimit_peek(rl, "k", &r, 3000, &retry));
    /* never more than the burst, however long it rested */
    for (int i = 0; i < 3; i++)
        assert_true(ratelimit_take(rl, "k", &r, 1000000, NULL));
    assert_false(ratelimit_take(rl, "k", &r, 1000000, NULL));
    ratelimit_rule off = {0, 1000};
    for (int i = 0; i < 100; i++)
        assert_true(ratelimit_take(rl, "k", &off, 1000000, NULL));
    ratelimit_free(rl);
}

static void test_bucket_table_stays_bounded(void **state)
{
    (void)state;
    ratelimit *rl = ratelimit_memory_new(16);
    ratelimit_rule r = {2, 1000};
    char key[32];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_true(ratelimit_take(rl, key, &r, 5000 + i, NULL));
    }
    /* the newest key kept its state */
    assert_true(ratelimit_take(rl, "k199", &r, 5199, NULL));
    assert_false(ratelimit_take(rl, "k199", &r, 5199, NULL));
    ratelimit_free(rl);
}

static void test_failure_rule_keeps_any_hour_under_n(void **state)
{
    (void)state;
    ratelimit_rule r = auth_failure_rule(100);
    ratelimit *rl = ratelimit_memory_new(0);
    /* Attack at the worst rhythm: take whatever is there, every minute, for 3 hours;
     * no sliding hour may see more than 100. */
    int per_minute[180] = {0};
    for (int m = 0; m < 180; m++)
        while (ratelimit_take(rl, "acct", &r, (int64_t)m * 60000, NULL))
            per_minute[m]++;
    for (int start = 0; start + 60 <= 180; start++) {
        int sum = 0;
        for (int m = start; m < start + 60; m++)
            sum += per_minute[m];
        assert_true(sum <= 100);
    }
    assert_true(per_minute[0] >= 50);
    ratelimit_free(rl);
    assert_int_equal(auth_failure_rule(2).burst, 1);
}

/* ---- cookies ---------------------------------------------------------------- */

static void test_cookie_attributes(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 0);
    assert_int_equal(auth_cookie_build(&b, true, "tok", 86400), 0);
    assert_string_equal(buf_cstr(&b), "__Host-f3_session=tok; Path=/; Max-Age=86400; HttpOnly; "
                                      "SameSite=Lax; Secure");
    buf_reset(&b);
    assert_int_equal(auth_cookie_build(&b, false, "", 0), 0);
    assert_string_equal(buf_cstr(&b), "f3_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
    buf_free(&b);
    assert_true(auth_url_is_https("https://shop.example"));
    assert_true(auth_url_is_https("HTTPS://shop.example"));
    assert_false(auth_url_is_https("http://shop.example"));
    assert_false(auth_url_is_https(NULL));
}

static void test_cookie_header_parsing(void **state)
{
    (void)state;
    char v[16];
    assert_true(auth_cookie_get("a=1; f3_session=abc; b=2", "f3_session", v, sizeof v));
    assert_string_equal(v, "abc");
    assert_true(auth_cookie_get("f3_session=xyz", "f3_session", v, sizeof v));
    assert_string_equal(v, "xyz");
    assert_false(auth_cookie_get("xf3_session=abc", "f3_session", v, sizeof v));
    assert_false(auth_cookie_get("f3_sessionx=abc", "f3_session", v, sizeof v));
    assert_false(auth_cookie_get("f3_session=", "f3_session", v, sizeof v));
    assert_false(auth_cookie_get("f3_session=0123456789abcdef0", "f3_session", v, sizeof v));
    assert_false(auth_cookie_get(NULL, "f3_session", v, sizeof v));
    assert_false(auth_cookie_get("__Host-f3_session=abc", "f3_session", v, sizeof v));
}

/* ---- CSRF origins ----------------------------------------------------------- */

static void test_origin_check(void **state)
{
    (void)state;
    const char *app = "https://shop.example.com";
    assert_true(auth_same_origin(app, "https://shop.example.com", NULL));
    assert_true(auth_same_origin(app, "https://SHOP.example.com:443", NULL));
    assert_true(
        auth_same_origin("https://shop.example.com/app/", "https://shop.example.com", NULL));
    assert_true(auth_same_origin(app, NULL, "https://shop.example.com/orders?x=1"));
    assert_false(auth_same_origin(app, "https://evil.example", "https://shop.example.com/"));
    assert_false(auth_same_origin(app, "http://shop.example.com", NULL));
    assert_false(auth_same_origin(app, "https://shop.example.com:8443", NULL));
    assert_false(auth_same_origin(app, "https://shop.example.com.evil.example", NULL));
    assert_false(auth_same_origin(app, "null", NULL));
    assert_false(auth_same_origin(app, NULL, NULL));
    assert_false(auth_same_origin(app, "", ""));
    assert_false(auth_same_origin(app, NULL, "https://user@shop.example.com/"));
    assert_true(auth_same_origin("http://localhost:3000", "http://localhost:3000", NULL));
    assert_false(auth_same_origin("http://localhost:3000", "http://localhost:3001", NULL));
}

/* ---- user context ----------------------------------------------------------- */

static void test_user_context_header_round_trip(void **state)
{
    (void)state;
    user_ctx *u = user_ctx_new("u1", "t1", "a@b.example", "operator", false);
    assert_non_null(u);
    buf b;
    buf_init(&b, 0);
    const char *values[USER_CTX_HEADER_COUNT];
    assert_int_equal(user_ctx_to_headers(u, &b, values), 0);
    assert_string_equal(user_ctx_header_names[0], "x-user-id");
    assert_string_equal(user_ctx_header_names[5], "x-is-super-admin");
    assert_string_equal(values[0], "u1");
    assert_string_equal(values[1], "t1");
    assert_string_equal(values[2], "a@b.example");
    assert_string_equal(values[3], "operator");
    assert_int_equal(rbac_parse(values[4]), rbac_role_permissions("operator", false));
    assert_string_equal(values[5], "false");
    json_t *j = user_ctx_to_json(u);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "roles"), 0)),
                        "operator");
    assert_true(json_is_false(json_object_get(j, "isSuperAdmin")));
    json_decref(j);
    buf_free(&b);
    user_ctx_free(u);
    assert_null(user_ctx_new("u1", "t1", "a@b.example",
                             "a-role-name-much-longer-than-the-sixty-four-bytes-that-fit-in-"
                             "the-field",
                             false));
}

static void test_session_ids_are_hashes_of_tokens(void **state)
{
    (void)state;
    buf t1, t2;
    buf_init(&t1, 0);
    buf_init(&t2, 0);
    char id1[SESSION_ID_LEN + 1], id2[SESSION_ID_LEN + 1], again[SESSION_ID_LEN + 1];
    assert_int_equal(session_token_new(&t1, id1), 0);
    assert_int_equal(session_token_new(&t2, id2), 0);
    assert_true(t1.len >= 43); /* 256 bits of base64url */
    assert_string_not_equal(buf_cstr(&t1), buf_cstr(&t2));
    assert_string_not_equal(id1, id2);
    assert_int_equal(strlen(id1), SESSION_ID_LEN);
    assert_null(strstr(id1, buf_cstr(&t1)));
    session_id_of_token(buf_cstr(&t1), again);
    assert_string_equal(again, id1);
    buf_free(&t1);
    buf_free(&t2);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles_grant_their_table_rows),
        cmocka_unit_test(test_permission_lists_round_trip),
        cmocka_unit_test(test_bucket_allows_burst_then_refills),
        cmocka_unit_test(test_bucket_table_stays_bounded),
        cmocka_unit_test(test_failure_rule_keeps_any_hour_under_n),
        cmocka_unit_test(test_cookie_attributes),
        cmocka_unit_test(test_cookie_header_parsing),
        cmocka_unit_test(test_origin_check),
        cmocka_unit_test(test_user_context_header_round_trip),
        cmocka_unit_test(test_session_ids_are_hashes_of_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
