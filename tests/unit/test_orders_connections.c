/* F3_TEST: backends
 * test_orders_connections.c - Shopify shop connections: the sealing key (ENCRYPTION_KEY,
 * or a key file generated once with mode 0600), secrets sealed at rest and opened only
 * with the right key, bootstrapping from the configuration, tenants owning domains,
 * disconnecting and reconnecting, and the default tenant.
 */
#include "support/f3test.h"
#include "support/f3test_db.h"

#include "core/config.h"
#include "core/crypto.h"
#include "services/orders/connections.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *backend;

#define KEY_HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define SHOP    "intake-test.myshopify.com"

typedef struct fx {
    char *url;
    db *d;
    char *dir;
    config *cfg;
    uint8_t key[CRYPTO_KEY_LEN];
} fx;

static void set(fx *f, const char *flag, const char *value)
{
    err e;
    if (config_set_flag(f->cfg, flag, value, &e))
        fail_msg("%s: %s", flag, e.msg);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    err e = {0};
    f->url = f3test_db_url(backend);
    if (db_open(f->url, NULL, &f->d, &e) || db_migrate(f->d, NULL, &e))
        fail_msg("%s", e.msg);
    f->dir = f3test_tmpdir();
    f->cfg = config_new();
    set(f, "data-dir", f->dir);
    set(f, "encryption-key", KEY_HEX);
    set(f, "shopify-shop-domain", SHOP);
    set(f, "shopify-api-secret", "shpss_the_secret");
    set(f, "shopify-access-token", "shpat_the_token");
    assert_int_equal(secret_key_load(f->cfg, f->key, &e), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    config_free(f->cfg);
    db_close(f->d);
    f3test_db_drop(f->url);
    free(f->url);
    f3test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static char *text_of(fx *f, const char *sql)
{
    err e = {0};
    db_conn *c = db_acquire(f->d, &e);
    db_stmt *s = db_prepare(c, sql, &e);
    assert_non_null(s);
    char *out = db_step(s, &e) == DB_ROW && db_col_text(s, 0) ? strdup(db_col_text(s, 0)) : NULL;
    db_finalize(s);
    db_release(c);
    return out;
}

static void exec(fx *f, const char *sql)
{
    err e = {0};
    db_conn *c = db_acquire(f->d, &e);
    if (db_exec(c, sql, &e))
        fail_msg("%s", e.msg);
    db_release(c);
}

static void find(fx *f, const char *domain, shop_conn *out, int want)
{
    err e = {0};
    db_conn *c = db_acquire(f->d, &e);
    int rc = shop_conn_find(c, f->key, domain, out, &e);
    db_release(c);
    if (rc != want)
        fail_msg("find %s: %d (%s)", domain, rc, e.msg);
}

static void test_key_file_generated_once_with_0600(void **state)
{
    fx *f = *state;
    config *c = config_new();
    err e = {0};
    assert_int_equal(config_set_flag(c, "data-dir", f->dir, &e), 0);
    uint8_t a[CRYPTO_KEY_LEN], b[CRYPTO_KEY_LEN];
    assert_int_equal(secret_key_load(c, a, &e), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/encryption.key", f->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(secret_key_load(c, b, &e), 0);
    assert_memory_equal(a, b, CRYPTO_KEY_LEN);
    /* A damaged file is an error, not a new key. */
    FILE *fp = fopen(path, "w");
    fputs("not a key\n", fp);
    fclose(fp);
    assert_int_equal(secret_key_load(c, b, &e), F3_EINVAL);
    assert_null(strstr(e.msg, "not a key"));
    /* A configured key wins and a malformed one is refused. */
    assert_int_equal(config_set_flag(c, "encryption-key", "short", &e), 0);
    assert_int_equal(secret_key_load(c, b, &e), F3_EINVAL);
    config_free(c);
}

static void test_bootstrap_seals_secrets(void **state)
{
    fx *f = *state;
    char tenant[SHOP_TENANT_ID_MAX + 1];
    err e = {0};
    assert_int_equal(shop_default_tenant(f->d, tenant, &e), 0);
    char again[SHOP_TENANT_ID_MAX + 1];
    assert_int_equal(shop_default_tenant(f->d, again, &e), 0);
    assert_string_equal(tenant, again);
    bool configured = false;
    assert_int_equal(shop_conn_bootstrap(f->d, f->key, f->cfg, tenant, &configured, &e), 0);
    assert_true(configured);
    char *secret = text_of(f, "SELECT api_secret_sealed FROM shop_connections");
    char *token = text_of(f, "SELECT access_token_sealed FROM shop_connections");
    assert_null(strstr(secret, "the_secret"));
    assert_null(strstr(token, "the_token"));
    free(secret);
    free(token);
    shop_conn c;
    find(f, "Intake-Test.MyShopify.com", &c, 0);
    assert_string_equal(c.tenant_id, tenant);
    assert_string_equal(c.shop_domain, SHOP);
    assert_string_equal(c.api_secret, "shpss_the_secret");
    assert_string_equal(c.access_token, "shpat_the_token");
    assert_true(c.connected);
    shop_conn_clear(&c);
    find(f, "other.myshopify.com", &c, F3_ENOTFOUND);
    /* Under another key the secrets do not open. */
    f->key[0] ^= 1;
    find(f, SHOP, &c, F3_EINVAL);
    f->key[0] ^= 1;
    assert_int_equal(shop_conn_of_tenant(f->d, f->key, tenant, &c, &e), 0);
    shopify_client *client = shop_conn_client(&c, &e);
    assert_non_null(client);
    shopify_client_free(client);
    shop_conn_clear(&c);
    char **domains = NULL;
    size_t n = 0;
    assert_int_equal(shop_conn_connected_domains(f->d, &domains, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(domains[0], SHOP);
    shop_domains_free(domains, n);
}

static void test_bootstrap_refusals_and_nothing_configured(void **state)
{
    fx *f = *state;
    char tenant[SHOP_TENANT_ID_MAX + 1];
    err e = {0};
    assert_int_equal(shop_default_tenant(f->d, tenant, &e), 0);
    config *none = config_new();
    bool configured = true;
    assert_int_equal(shop_conn_bootstrap(f->d, f->key, none, tenant, &configured, &e), 0);
    assert_false(configured);
    config_free(none);
    set(f, "shopify-shop-domain", "not-a-shop.example.com");
    assert_int_equal(shop_conn_bootstrap(f->d, f->key, f->cfg, tenant, &configured, &e), F3_EINVAL);
    set(f, "shopify-shop-domain", SHOP);
    exec(f, "INSERT INTO tenants (id, name, slug, created_at, updated_at)"
            " VALUES ('other', 'Other', 'other', 0, 0)");
    assert_int_equal(shop_conn_bootstrap(f->d, f->key, f->cfg, "other", &configured, &e), 0);
    assert_int_equal(shop_conn_bootstrap(f->d, f->key, f->cfg, tenant, &configured, &e),
                     F3_ECONFLICT);
}

static void test_disconnect_and_reconnect(void **state)
{
    fx *f = *state;
    char tenant[SHOP_TENANT_ID_MAX + 1];
    err e = {0};
    bool configured = false, changed = false;
    assert_int_equal(shop_default_tenant(f->d, tenant, &e), 0);
    assert_int_equal(shop_conn_bootstrap(f->d, f->key, f->cfg, tenant, &configured, &e), 0);
    db_conn *c = db_acquire(f->d, &e);
    assert_int_equal(shop_conn_disconnect(c, tenant, SHOP, &changed, &e), 0);
    assert_true(changed);
    assert_int_equal(shop_conn_disconnect(c, tenant, SHOP, &changed, &e), 0);
    assert_false(changed);
    db_release(c);
    shop_conn conn;
    find(f, SHOP, &conn, 0);
    assert_false(conn.connected);
    shop_conn_clear(&conn);
    assert_int_equal(shop_conn_of_tenant(f->d, f->key, tenant, &conn, &e), F3_ENOTFOUND);
    /* A restart with the same (revoked) token keeps it disconnected; a new token connects. */
    assert_int_equal(shop_conn_bootstrap(f->d, f->key, f->cfg, tenant, &configured, &e), 0);
    find(f, SHOP, &conn, 0);
    assert_false(conn.connected);
    shop_conn_clear(&conn);
    set(f, "shopify-access-token", "shpat_new_token");
    assert_int_equal(shop_conn_bootstrap(f->d, f->key, f->cfg, tenant, &configured, &e), 0);
    find(f, SHOP, &conn, 0);
    assert_true(conn.connected);
    assert_string_equal(conn.access_token, "shpat_new_token");
    shop_conn_clear(&conn);
    assert_int_equal(shop_conn_mark_reconciled(f->d, SHOP, 12345, &e), 0);
    find(f, SHOP, &conn, 0);
    assert_int_equal(conn.last_reconciled_at, 12345);
    shop_conn_clear(&conn);
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_file_generated_once_with_0600, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_seals_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_refusals_and_nothing_configured, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_and_reconnect, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
