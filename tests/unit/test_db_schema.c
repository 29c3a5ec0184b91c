/* F3_TEST: backends
 * test_db_schema.c - the rules the schema (migrations/) must keep, checked on SQLite and
 * PostgreSQL (argv[1]) through each database's catalog: tenant_id on every business table,
 * secondary indexes led by tenant_id, status CHECKs, uniqueness, defaults, cascades.
 */
#include "support/f3test_db.h"

#include "core/log.h"
#include "db/db.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *backend;

static bool is_pg(void)
{
    return strcmp(backend, "postgres") == 0;
}

/* Tables that are not tenant business data: the tenants themselves, global user
 * identities, the migrations ledger, and the queue engine's infrastructure
 * (0002_bus.sql): queues are shared by every tenant, a job's tenant is inside its event
 * envelope, and their indexes serve the engine's own cross-tenant lookups (claim, lease
 * scan, retention), so neither the tenant_id nor the index rule applies to them. */
static const char *const untenanted_tables[] = {
    "schema_migrations", "tenants",         "users",     "bus_jobs",
    "bus_queues",        "bus_repeatables", "bus_inbox", "bus_dead_letter_alerts",
};

/* Secondary indexes allowed to lead with another column, each a lookup made before any
 * tenant is known or across all tenants (see the comments in the migration). */
static const char *const cross_tenant_indexes[] = {
    "tenant_memberships_user_idx",
    "sessions_user_idx",
    "retry_queue_due_idx",
};

typedef f3test_dbfx fx;

static int setup(void **state)
{
    *state = f3test_dbfx_open(backend, true);
    return 0;
}

static int teardown(void **state)
{
    f3test_dbfx_close(*state);
    return 0;
}

/* Runs sql with n text parameters (NULL binds NULL); returns the step status. */
static int run(db_conn *c, err *e, const char *sql, int n, ...)
{
    db_stmt *s = db_prepare(c, sql, e);
    if (!s)
        return e->code;
    va_list ap;
    va_start(ap, n);
    for (int i = 1; i <= n; i++)
        db_bind_text(s, i, va_arg(ap, const char *));
    va_end(ap);
    int rc = db_step(s, e);
    db_finalize(s);
    return rc;
}

static void run_ok(db_conn *c, const char *sql)
{
    err e = {0};
    int rc = run(c, &e, sql, 0);
    if (rc < 0)
        fail_msg("%s: %s", sql, e.msg);
}

static int64_t count_of(db_conn *c, const char *sql)
{
    err e = {0};
    db_stmt *s = db_prepare(c, sql, &e);
    if (!s || db_step(s, &e) != DB_ROW)
        fail_msg("%s: %s", sql, e.msg);
    int64_t n = db_col_int64(s, 0);
    db_finalize(s);
    return n;
}

static bool listed(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

/* ---- catalog access, per backend ------------------------------------------------------- */

typedef struct names {
    char *v[64];
    size_t n;
} names;

static void names_free(names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    ns->n = 0;
}

/* Collects column 0 of every row of sql (with an optional text parameter $1). */
static void collect(db_conn *c, const char *sql, const char *arg, names *out)
{
    err e = {0};
    db_stmt *s = db_prepare(c, sql, &e);
    if (!s)
        fail_msg("%s: %s", sql, e.msg);
    if (arg)
        db_bind_text(s, 1, arg);
    int rc;
    while ((rc = db_step(s, &e)) == DB_ROW) {
        assert_true(out->n < sizeof out->v / sizeof out->v[0]);
        out->v[out->n++] = strdup(db_col_text(s, 0));
    }
    if (rc < 0)
        fail_msg("%s: %s", sql, e.msg);
    db_finalize(s);
}

static void list_tables(db_conn *c, names *out)
{
    collect(c,
            is_pg() ? "SELECT table_name FROM information_schema.tables"
                      " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                      " ORDER BY table_name"
                    : "SELECT name FROM sqlite_master WHERE type = 'table'"
                      " AND name NOT LIKE 'sqlite_%' ORDER BY name",
            NULL, out);
}

/* "YES" / "NO" for table.tenant_id being NOT NULL; NULL text if there is no such column. */
static void tenant_column(db_conn *c, const char *table, names *out)
{
    collect(c,
            is_pg() ? "SELECT CASE WHEN is_nullable = 'NO' THEN 'YES' ELSE 'NO' END"
                      " FROM information_schema.columns WHERE table_schema = current_schema()"
                      " AND table_name = $1 AND column_name = 'tenant_id'"
                    : "SELECT CASE WHEN \"notnull\" = 1 THEN 'YES' ELSE 'NO' END"
                      " FROM pragma_table_info($1) WHERE name = 'tenant_id'",
            table, out);
}

/* Rows "index_name first_column" for every index of table except the primary key. */
static void secondary_indexes(db_conn *c, const char *table, names *out)
{
    collect(c,
            is_pg() ? "SELECT i.relname || ' ' || a.attname FROM pg_index x"
                      " JOIN pg_class t ON t.oid = x.indrelid"
                      " JOIN pg_class i ON i.oid = x.indexrelid"
                      " JOIN pg_namespace ns ON ns.oid = t.relnamespace"
                      " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]"
                      " WHERE ns.nspname = current_schema() AND t.relname = $1"
                      " AND NOT x.indisprimary"
                    : "SELECT l.name || ' ' || i.name FROM pragma_index_list($1) l"
                      " JOIN pragma_index_info(l.name) i ON i.seqno = 0 WHERE l.origin <> 'pk'",
            table, out);
}

/* ---- the rules ------------------------------------------------------------------------- */

static void test_business_tables_carry_tenant_id(void **state)
{
    fx *f = *state;
    names tables = {0};
    list_tables(f->c, &tables);
    size_t checked = 0;
    for (size_t i = 0; i < tables.n; i++) {
        const char *t = tables.v[i];
        names col = {0};
        tenant_column(f->c, t, &col);
        bool exempt =
            listed(untenanted_tables, sizeof untenanted_tables / sizeof untenanted_tables[0], t);
        if (!exempt && col.n == 0)
            fail_msg("table %s has no tenant_id column", t);
        if (!exempt && strcmp(col.v[0], "YES") != 0)
            fail_msg("table %s: tenant_id must be NOT NULL", t);
        checked += !exempt;
        names_free(&col);
    }
    names_free(&tables);
    /* The catalog query must have seen the schema: orders, line_items, print_jobs, ... */
    assert_true(checked >= 11);
}

static void test_secondary_indexes_lead_with_tenant_id(void **state)
{
    fx *f = *state;
    names tables = {0};
    list_tables(f->c, &tables);
    size_t n_allowed = sizeof cross_tenant_indexes / sizeof cross_tenant_indexes[0];
    size_t seen_allowed = 0, seen = 0;
    for (size_t i = 0; i < tables.n; i++) {
        if (listed(untenanted_tables, sizeof untenanted_tables / sizeof untenanted_tables[0],
                   tables.v[i]))
            continue;
        names idx = {0};
        secondary_indexes(f->c, tables.v[i], &idx);
        for (size_t j = 0; j < idx.n; j++) {
            char name[128], first[64];
            assert_int_equal(sscanf(idx.v[j], "%127s %63s", name, first), 2);
            seen++;
            if (listed(cross_tenant_indexes, n_allowed, name))
                seen_allowed++;
            else if (strcmp(first, "tenant_id") != 0)
                fail_msg("index %s on %s starts with %s, not tenant_id", name, tables.v[i], first);
        }
        names_free(&idx);
    }
    names_free(&tables);
    assert_true(seen >= 15);
    assert_int_equal(seen_allowed, n_allowed); /* the exceptions still exist */
}

/* One tenant's worth of linked rows, all valid. */
static void seed(db_conn *c, const char *tenant)
{
    err e = {0};
    static const char *const sql[] = {
        "INSERT INTO tenants (id, name, slug, created_at, updated_at) VALUES ($1, 'Shop', $1, 1, "
        "1)",
        "INSERT INTO users (id, email, password_hash, created_at, updated_at)"
        " VALUES ($1 || '-u', $1 || '@example.com', 'h', 1, 1)",
        "INSERT INTO tenant_memberships (tenant_id, user_id, role, created_at, updated_at)"
        " VALUES ($1, $1 || '-u', 'operator', 1, 1)",
        "INSERT INTO sessions (id_hash, tenant_id, user_id, created_at, last_seen_at, expires_at)"
        " VALUES ($1 || '-s', $1, $1 || '-u', 1, 1, 2)",
        "INSERT INTO product_mappings (id, tenant_id, sku, name, created_at, updated_at)"
        " VALUES ($1 || '-m', $1, 'SKU-1', 'Vase', 1, 1)",
        "INSERT INTO assembly_parts (id, tenant_id, product_mapping_id, part_name,"
        " simplyprint_file_id, created_at, updated_at)"
        " VALUES ($1 || '-p', $1, $1 || '-m', 'body', 'file-1', 1, 1)",
        "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number, customer_name,"
        " total_minor, created_at, updated_at)"
        " VALUES ($1 || '-o', $1, '1001', '#1001', 'Ada', 4250, 1, 1)",
        "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, sku, title,"
        " quantity, unit_price_minor, product_mapping_id, created_at, updated_at)"
        " VALUES ($1 || '-li', $1, $1 || '-o', '9001', 'SKU-1', 'Vase', 2, 2125, $1 || '-m', 1, 1)",
        "INSERT INTO print_jobs (id, tenant_id, order_id, line_item_id, assembly_part_id,"
        " part_key, unit_index, copy_index, created_at, updated_at)"
        " VALUES ($1 || '-j', $1, $1 || '-o', $1 || '-li', $1 || '-p', $1 || '-p', 0, 0, 1, 1)",
        "INSERT INTO shipments (id, tenant_id, order_id, created_at, updated_at)"
        " VALUES ($1 || '-sh', $1, $1 || '-o', 1, 1)",
        "INSERT INTO shipment_labels (shipment_id, tenant_id, data_base64, created_at)"
        " VALUES ($1 || '-sh', $1, 'JVBERi0=', 1)",
        "INSERT INTO event_log (id, tenant_id, order_id, print_job_id, event_type, message,"
        " metadata, created_at) VALUES ($1 || '-e', $1, $1 || '-o', $1 || '-j', 'ORDER_CREATED',"
        " 'created', '{}', 1)",
        "INSERT INTO retry_queue (id, tenant_id, job_type, payload, next_attempt_at, created_at,"
        " updated_at) VALUES ($1 || '-r', $1, 'FULFILLMENT', '{}', 5, 1, 1)",
    };
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++)
        if (run(c, &e, sql[i], 1, tenant) < 0)
            fail_msg("seed %s: %s", sql[i], e.msg);
}

typedef struct bad_value {
    const char *sql; /* $1: tenant "t1", $2: the value */
    const char *good[8];
    const char *bad;
} bad_value;

static void test_status_checks(void **state)
{
    fx *f = *state;
    err e = {0};
    seed(f->c, "t1");
    static const bad_value cases[] = {
        {"UPDATE orders SET status = $2 WHERE tenant_id = $1",
         {"PENDING", "PROCESSING", "PARTIALLY_COMPLETED", "COMPLETED", "FAILED", "CANCELLED"},
         "SHIPPED"},
        {"UPDATE line_items SET status = $2 WHERE tenant_id = $1",
         {"PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"},
         "PRINTING"},
        {"UPDATE print_jobs SET status = $2 WHERE tenant_id = $1",
         {"PENDING", "QUEUED", "ASSIGNED", "PRINTING", "COMPLETED", "FAILED", "CANCELLED"},
         "PAUSED"},
        {"UPDATE retry_queue SET job_type = $2 WHERE tenant_id = $1",
         {"FULFILLMENT", "PRINT_JOB_CREATION", "CANCELLATION", "NOTIFICATION"},
         "SHIPPING"},
        {"UPDATE retry_queue SET status = $2 WHERE tenant_id = $1",
         {"PENDING", "PROCESSING", "COMPLETED", "FAILED"},
         "RETRYING"},
        {"UPDATE event_log SET severity = $2 WHERE tenant_id = $1",
         {"INFO", "WARNING", "ERROR"},
         "DEBUG"},
        {"UPDATE tenant_memberships SET role = $2 WHERE tenant_id = $1",
         {"admin", "operator", "viewer"},
         "owner"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t j = 0; cases[i].good[j]; j++)
            if (run(f->c, &e, cases[i].sql, 2, "t1", cases[i].good[j]) != DB_DONE)
                fail_msg("%s with %s: %s", cases[i].sql, cases[i].good[j], e.msg);
        int rc = run(f->c, &e, cases[i].sql, 2, "t1", cases[i].bad);
        if (rc != F3_EINVAL)
            fail_msg("%s accepted %s (rc %d)", cases[i].sql, cases[i].bad, rc);
    }
    /* Statuses are upper-case words; another spelling is another (unknown) value. */
    assert_int_equal(run(f->c, &e, "UPDATE orders SET status = 'pending'", 0), F3_EINVAL);
}

static void test_defaults_and_types(void **state)
{
    fx *f = *state;
    err e = {0};
    seed(f->c, "t1");
    db_stmt *s = db_prepare(f->c,
                            "SELECT t.active, u.is_super_admin, u.disabled, o.status, o.currency,"
                            " o.total_minor, o.shipping_address, r.attempts, r.max_attempts,"
                            " r.status, p.quantity_per_unit, m.is_assembly, j.status, j.retry_count"
                            " FROM tenants t, users u, orders o, retry_queue r, assembly_parts p,"
                            " product_mappings m, print_jobs j"
                            " WHERE t.id = $1 AND u.id = $1 || '-u' AND o.tenant_id = $1"
                            " AND r.tenant_id = $1 AND p.tenant_id = $1 AND m.tenant_id = $1"
                            " AND j.tenant_id = $1",
                            &e);
    assert_non_null(s);
    db_bind_text(s, 1, "t1");
    if (db_step(s, &e) != DB_ROW)
        fail_msg("defaults: %s", e.msg);
    assert_true(db_col_bool(s, 0));
    assert_false(db_col_bool(s, 1));
    assert_false(db_col_bool(s, 2));
    assert_string_equal(db_col_text(s, 3), "PENDING");
    assert_string_equal(db_col_text(s, 4), "EUR");
    assert_int_equal(db_col_int64(s, 5), 4250);
    assert_string_equal(db_col_text(s, 6), "{}");
    assert_int_equal(db_col_int64(s, 7), 0);
    assert_int_equal(db_col_int64(s, 8), 5);
    assert_string_equal(db_col_text(s, 9), "PENDING");
    assert_int_equal(db_col_int64(s, 10), 1);
    assert_false(db_col_bool(s, 11));
    assert_string_equal(db_col_text(s, 12), "PENDING");
    assert_int_equal(db_col_int64(s, 13), 0);
    db_finalize(s);
}

static void test_uniqueness_is_per_tenant(void **state)
{
    fx *f = *state;
    err e = {0};
    seed(f->c, "t1");
    seed(f->c, "t2"); /* same SKU, Shopify ids and numbers in another tenant: fine */

    assert_int_equal(run(f->c, &e,
                         "INSERT INTO product_mappings (id, tenant_id, sku, name, created_at,"
                         " updated_at) VALUES ('m9', 't1', 'SKU-1', 'Dup', 1, 1)",
                         0),
                     F3_ECONFLICT);
    assert_int_equal(
        run(f->c, &e,
            "INSERT INTO orders (id, tenant_id, shopify_order_id, shopify_order_number,"
            " customer_name, created_at, updated_at)"
            " VALUES ('o9', 't1', '1001', '#1001', 'Bob', 1, 1)",
            0),
        F3_ECONFLICT);
    assert_int_equal(run(f->c, &e,
                         "INSERT INTO shipments (id, tenant_id, order_id, created_at, updated_at)"
                         " VALUES ('sh9', 't1', 't1-o', 1, 1)",
                         0),
                     F3_ECONFLICT);
    /* E-mail addresses are global. */
    assert_int_equal(run(f->c, &e,
                         "INSERT INTO users (id, email, password_hash, created_at, updated_at)"
                         " VALUES ('u9', 't1@example.com', 'h', 1, 1)",
                         0),
                     F3_ECONFLICT);
}

static void test_print_job_identity(void **state)
{
    fx *f = *state;
    err e = {0};
    seed(f->c, "t1");
    const char *job = "INSERT INTO print_jobs (id, tenant_id, order_id, line_item_id, part_key,"
                      " unit_index, copy_index, simplyprint_job_id, created_at, updated_at)"
                      " VALUES ($1, 't1', 't1-o', 't1-li', $2, $3, 0, $4, 1, 1)";
    /* Jobs without an assembly part share part_key '': the constraint still holds. */
    assert_int_equal(run(f->c, &e, job, 4, "j1", "", "0", (const char *)NULL), DB_DONE);
    assert_int_equal(run(f->c, &e, job, 4, "j2", "", "0", (const char *)NULL), F3_ECONFLICT);
    assert_int_equal(run(f->c, &e, job, 4, "j3", "", "1", (const char *)NULL), DB_DONE);
    /* Unassigned SimplyPrint ids may repeat; assigned ones may not (within a tenant). */
    assert_int_equal(
        run(f->c, &e, "UPDATE print_jobs SET simplyprint_job_id = 'sp1' WHERE id = 'j1'", 0),
        DB_DONE);
    assert_int_equal(
        run(f->c, &e, "UPDATE print_jobs SET simplyprint_job_id = 'sp1' WHERE id = 'j3'", 0),
        F3_ECONFLICT);
    assert_int_equal(run(f->c, &e, job, 4, "j4", "", "2", "sp1"), F3_ECONFLICT);
    assert_int_equal(run(f->c, &e,
                         "INSERT INTO line_items (id, tenant_id, order_id,"
                         " shopify_line_item_id, title, quantity, created_at, updated_at)"
                         " VALUES ('li0', 't1', 't1-o', '9002', 'Zero', 0, 1, 1)",
                         0),
                     F3_EINVAL);
}

static void test_deletes_cascade_but_keep_the_trail(void **state)
{
    fx *f = *state;
    seed(f->c, "t1");
    seed(f->c, "t2");
    run_ok(f->c, "DELETE FROM orders WHERE id = 't1-o'");
    assert_int_equal(count_of(f->c, "SELECT count(*) FROM line_items WHERE tenant_id = 't1'"), 0);
    assert_int_equal(count_of(f->c, "SELECT count(*) FROM print_jobs WHERE tenant_id = 't1'"), 0);
    assert_int_equal(count_of(f->c, "SELECT count(*) FROM shipments WHERE tenant_id = 't1'"), 0);
    assert_int_equal(count_of(f->c, "SELECT count(*) FROM shipment_labels WHERE tenant_id = 't1'"),
                     0);
    assert_int_equal(count_of(f->c, "SELECT count(*) FROM event_log WHERE tenant_id = 't1'"), 1);

    /* Removing a mapping unlinks line items instead of deleting them. */
    run_ok(f->c, "DELETE FROM product_mappings WHERE id = 't2-m'");
    assert_int_equal(count_of(f->c, "SELECT count(*) FROM line_items WHERE id = 't2-li'"
                                    " AND product_mapping_id IS NULL"),
                     1);
    assert_int_equal(count_of(f->c, "SELECT count(*) FROM print_jobs WHERE id = 't2-j'"
                                    " AND assembly_part_id IS NULL"),
                     1);

    run_ok(f->c, "DELETE FROM tenants WHERE id = 't1'");
    static const char *const tables[] = {"tenant_memberships", "sessions",    "product_mappings",
                                         "event_log",          "retry_queue", "orders"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE tenant_id = 't1'", tables[i]);
        assert_int_equal(count_of(f->c, sql), 0);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE tenant_id = 't2'", tables[i]);
        assert_true(count_of(f->c, sql) >= (strcmp(tables[i], "product_mappings") ? 1 : 0));
    }
    assert_int_equal(count_of(f->c, "SELECT count(*) FROM users"), 2); /* users are global */
}

int main(int argc, char **argv)
{
    backend = f3test_backend_arg(argc, argv);
    log_set_level(LOG_WARN); /* "migration applied" lines are noise here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_business_tables_carry_tenant_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secondary_indexes_lead_with_tenant_id, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_status_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_and_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uniqueness_is_per_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_print_job_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deletes_cascade_but_keep_the_trail, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
