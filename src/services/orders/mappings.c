/*
 * mappings.c - product mappings over HTTP: which SimplyPrint files (and how many copies of
 * each) print one unit of a SKU, CRUD under /api/v1/product-mappings.
 *
 * Adding an active mapping (or changing its SKU, or activating it) links the tenant's line
 * items of that SKU that had none ("needs mapping") and writes "mapping.applied" per order, in the
 * transaction of the change; deleting one leaves its line items needing a mapping again
 * ("mapping.removed"). Validation names the field ("files[0].copies: must be at least 1"). Must not
 * decide access: the gateway's guard has checked the route's permission already.
 */
#include "services/orders/api_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "core/uuid.h"
#include "services/access/user_context.h"
#include "services/common/eventlog.h"

#include <stdlib.h>
#include <string.h>

#define MAPPING_PARTS_MAX     50
#define MAPPING_SKU_MAX       100
#define MAPPING_TEXT_MAX      500
#define MAPPING_COPIES_MAX    1000
#define MAPPING_PAGE_SIZE     20
#define MAPPING_PAGE_SIZE_MAX 100
#define MAPPING_EVENT_APPLIED "mapping.applied"
#define MAPPING_EVENT_REMOVED "mapping.removed"

typedef struct mapping_part {
    const char *file_id;
    const char *file_name;
    const char *part_name;
    const char *print_profile;
    const char *notes;
    int64_t copies;
} mapping_part;

/* A validated request body; strings are borrowed from the JSON document. */
typedef struct mapping_in {
    const char *sku;
    const char *name;
    const char *description;
    const char *shopify_product_id;
    const char *shopify_variant_id;
    const char *default_print_profile;
    const char *queue_group_id;
    bool is_assembly;
    bool active;
    size_t nparts;
    mapping_part parts[MAPPING_PARTS_MAX];
} mapping_in;

/* ---- validation ------------------------------------------------------------------------- */

static bool is_blank(const char *s)
{
    return s[strspn(s, " \t\r\n")] == '\0';
}

static bool has_edge_space(const char *s)
{
    size_t n = strlen(s);
    return n && (strchr(" \t\r\n", s[0]) || strchr(" \t\r\n", s[n - 1]));
}

/* Reads obj[key] as a string. `path` names the field in messages. Absent or null gives
 * NULL unless `required`. */
static int text_field(const json_t *obj, const char *key, const char *path, bool required,
                      size_t max, const char **out, err *e)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return err_set(e, F3_EINVAL, "%s: is required", path);
        return 0;
    }
    if (!json_is_string(v))
        return err_set(e, F3_EINVAL, "%s: must be a string", path);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n)
        return err_set(e, F3_EINVAL, "%s: must not contain NUL characters", path);
    if (required && is_blank(s))
        return err_set(e, F3_EINVAL, "%s: must not be empty", path);
    if (n > max)
        return err_set(e, F3_EINVAL, "%s: must be at most %zu characters", path, max);
    *out = s;
    return 0;
}

static int bool_field(const json_t *obj, const char *key, bool def, bool *out, err *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return err_set(e, F3_EINVAL, "%s: must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

static int validate_part(const json_t *f, size_t i, mapping_part *p, err *e)
{
    char path[64];
    if (!json_is_object(f))
        return err_set(e, F3_EINVAL, "files[%zu]: must be an object", i);
#define PATH(k) (snprintf(path, sizeof path, "files[%zu].%s", i, k), path)
    int rc;
    if ((rc = text_field(f, "simplyPrintFileId", PATH("simplyPrintFileId"), true, MAPPING_TEXT_MAX,
                         &p->file_id, e)) ||
        (rc = text_field(f, "fileName", PATH("fileName"), false, MAPPING_TEXT_MAX, &p->file_name,
                         e)) ||
        (rc = text_field(f, "partName", PATH("partName"), false, MAPPING_TEXT_MAX, &p->part_name,
                         e)) ||
        (rc = text_field(f, "printProfile", PATH("printProfile"), false, MAPPING_TEXT_MAX,
                         &p->print_profile, e)) ||
        (rc = text_field(f, "notes", PATH("notes"), false, 4 * MAPPING_TEXT_MAX, &p->notes, e)))
        return rc;
    json_t *c = json_object_get(f, "copies");
    p->copies = 1;
    if (c && !json_is_null(c)) {
        if (!json_is_integer(c))
            return err_set(e, F3_EINVAL, "%s: must be an integer", PATH("copies"));
        p->copies = json_integer_value(c);
        if (p->copies < 1)
            return err_set(e, F3_EINVAL, "%s: must be at least 1", PATH("copies"));
        if (p->copies > MAPPING_COPIES_MAX)
            return err_set(e, F3_EINVAL, "%s: must be at most %d", PATH("copies"),
                           MAPPING_COPIES_MAX);
    }
#undef PATH
    return 0;
}

/* Checks a whole mapping (POST and PUT bodies, PATCH bodies merged over the stored one).
 * Unknown members are ignored, so the stored view itself validates. */
static int validate(const json_t *body, mapping_in *m, err *e)
{
    memset(m, 0, sizeof *m);
    if (!json_is_object(body))
        return err_set(e, F3_EINVAL, "body: must be a JSON object");
    int rc;
    if ((rc = text_field(body, "sku", "sku", true, MAPPING_SKU_MAX, &m->sku, e)))
        return rc;
    if (!m->sku || has_edge_space(m->sku))
        return err_set(e, F3_EINVAL, "sku: must not start or end with whitespace");
    if ((rc = text_field(body, "name", "name", true, MAPPING_TEXT_MAX, &m->name, e)) ||
        (rc = text_field(body, "description", "description", false, 4 * MAPPING_TEXT_MAX,
                         &m->description, e)) ||
        (rc = text_field(body, "shopifyProductId", "shopifyProductId", false, MAPPING_TEXT_MAX,
                         &m->shopify_product_id, e)) ||
        (rc = text_field(body, "shopifyVariantId", "shopifyVariantId", false, MAPPING_TEXT_MAX,
                         &m->shopify_variant_id, e)) ||
        (rc = text_field(body, "defaultPrintProfile", "defaultPrintProfile", false,
                         MAPPING_TEXT_MAX, &m->default_print_profile, e)) ||
        (rc = text_field(body, "queueGroupId", "queueGroupId", false, MAPPING_TEXT_MAX,
                         &m->queue_group_id, e)))
        return rc;
    json_t *files = json_object_get(body, "files");
    if (!files || json_is_null(files))
        return err_set(e, F3_EINVAL, "files: is required");
    if (!json_is_array(files))
        return err_set(e, F3_EINVAL, "files: must be an array");
    if (json_array_size(files) == 0)
        return err_set(e, F3_EINVAL, "files: must name at least one print file");
    if (json_array_size(files) > MAPPING_PARTS_MAX)
        return err_set(e, F3_EINVAL, "files: at most %d print files", MAPPING_PARTS_MAX);
    m->nparts = json_array_size(files);
    for (size_t i = 0; i < m->nparts; i++)
        if ((rc = validate_part(json_array_get(files, i), i, &m->parts[i], e)))
            return rc;
    if ((rc = bool_field(body, "isAssembly", m->nparts > 1, &m->is_assembly, e)) ||
        (rc = bool_field(body, "active", true, &m->active, e)))
        return rc;
    return 0;
}

/* ---- views ------------------------------------------------------------------------------ */

static const char mapping_columns[] =
    "id, sku, name, description, shopify_product_id, shopify_variant_id, is_assembly, "
    "default_print_profile, queue_group_id, active, created_at, updated_at";

static json_t *part_view(db_stmt *s)
{
    return json_pack("{s:o s:I s:o s:o s:o s:I s:o s:o}", "id", orders_api_col_str(s, 0),
                     "partNumber", (json_int_t)db_col_int64(s, 1), "partName",
                     orders_api_col_str(s, 2), "simplyPrintFileId", orders_api_col_str(s, 3),
                     "fileName", orders_api_col_str(s, 4), "copies", (json_int_t)db_col_int64(s, 5),
                     "printProfile", orders_api_col_str(s, 6), "notes", orders_api_col_str(s, 7));
}

static int parts_of(db_conn *c, const char *tenant_id, const char *mapping_id, json_t **out, err *e)
{
    int rc;
    json_t *arr = json_array();
    db_stmt *s = db_prepare(c,
                            "SELECT id, part_number, part_name, simplyprint_file_id, "
                            "simplyprint_file_name, quantity_per_unit, print_profile, notes "
                            "FROM assembly_parts WHERE tenant_id = $1 AND product_mapping_id = $2 "
                            "ORDER BY part_number",
                            e);
    if (!arr || !s) {
        rc = arr ? e->code : err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    db_bind_text(s, 1, tenant_id);
    db_bind_text(s, 2, mapping_id);
    while ((rc = db_step(s, e)) == DB_ROW) {
        json_t *p = part_view(s);
        if (!p || json_array_append_new(arr, p)) {
            rc = err_set(e, F3_ENOMEM, "out of memory");
            goto out;
        }
    }
out:
    db_finalize(s);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* The view of the current row of a statement selecting mapping_columns, with its files. */
static int mapping_row_view(db_conn *c, db_stmt *s, const char *tenant_id, json_t **out, err *e)
{
    json_t *files = NULL;
    json_t *m = json_pack("{s:o s:o s:o s:o s:o s:o s:b s:o s:o s:b s:o s:o}", "id",
                          orders_api_col_str(s, 0), "sku", orders_api_col_str(s, 1), "name",
                          orders_api_col_str(s, 2), "description", orders_api_col_str(s, 3),
                          "shopifyProductId", orders_api_col_str(s, 4), "shopifyVariantId",
                          orders_api_col_str(s, 5), "isAssembly", db_col_bool(s, 6),
                          "defaultPrintProfile", orders_api_col_str(s, 7), "queueGroupId",
                          orders_api_col_str(s, 8), "active", db_col_bool(s, 9), "createdAt",
                          orders_api_col_time(s, 10), "updatedAt", orders_api_col_time(s, 11));
    if (!m)
        return err_set(e, F3_ENOMEM, "out of memory");
    int rc = parts_of(c, tenant_id, db_col_text(s, 0), &files, e);
    if (rc == 0 && json_object_set_new(m, "files", files))
        rc = err_set(e, F3_ENOMEM, "out of memory");
    if (rc) {
        json_decref(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* One mapping of the tenant; F3_ENOTFOUND when it has none with that id. */
static int mapping_view(db_conn *c, const char *tenant_id, const char *id, json_t **out, err *e)
{
    buf sql;
    buf_init(&sql, 0);
    buf_printf(&sql, "SELECT %s FROM product_mappings WHERE tenant_id = $1 AND id = $2",
               mapping_columns);
    int rc;
    db_stmt *s = db_prepare(c, buf_cstr(&sql), e);
    if (!s) {
        rc = e->code;
        goto out;
    }
    db_bind_text(s, 1, tenant_id);
    db_bind_text(s, 2, id);
    rc = db_step(s, e);
    if (rc == DB_DONE)
        rc = err_set(e, F3_ENOTFOUND, "Product mapping not found: %s", id);
    else if (rc == DB_ROW)
        rc = mapping_row_view(c, s, tenant_id, out, e);
out:
    db_finalize(s);
    buf_free(&sql);
    return rc;
}

/* ---- writes ----------------------------------------------------------------------------- */

static int insert_parts(db_conn *c, const char *tenant_id, const char *mapping_id,
                        const mapping_in *m, int64_t now, err *e)
{
    db_stmt *s = db_prepare(c,
                            "INSERT INTO assembly_parts (id, tenant_id, product_mapping_id, "
                            "part_number, part_name, simplyprint_file_id, simplyprint_file_name, "
                            "quantity_per_unit, print_profile, notes, created_at, updated_at) "
                            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
                            e);
    if (!s)
        return e->code;
    int rc = 0;
    for (size_t i = 0; i < m->nparts && rc >= 0; i++) {
        const mapping_part *p = &m->parts[i];
        char id[UUID_STR_LEN], fallback[32];
        uuid_v7(id);
        snprintf(fallback, sizeof fallback, "Part %zu", i + 1);
        const char *part_name = p->part_name   ? p->part_name
                                : p->file_name ? p->file_name
                                               : fallback;
        db_reset(s);
        db_bind_text(s, 1, id);
        db_bind_text(s, 2, tenant_id);
        db_bind_text(s, 3, mapping_id);
        db_bind_int64(s, 4, (int64_t)i + 1);
        db_bind_text(s, 5, part_name);
        db_bind_text(s, 6, p->file_id);
        db_bind_text(s, 7, p->file_name);
        db_bind_int64(s, 8, p->copies);
        db_bind_text(s, 9, p->print_profile);
        db_bind_text(s, 10, p->notes);
        db_bind_int64(s, 11, now);
        rc = db_step(s, e);
    }
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

/* The distinct orders of the rows `sql` ($1 tenant, $2 key) selects. Caller frees the
 * array (json_decref). */
static int orders_of(db_conn *c, const char *sql, const char *tenant_id, const char *key,
                     json_t **out, err *e)
{
    int rc;
    json_t *arr = json_array();
    db_stmt *s = db_prepare(c, sql, e);
    if (!arr || !s) {
        rc = arr ? e->code : err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    db_bind_text(s, 1, tenant_id);
    db_bind_text(s, 2, key);
    while ((rc = db_step(s, e)) == DB_ROW)
        if (json_array_append_new(arr, orders_api_col_str(s, 0))) {
            rc = err_set(e, F3_ENOMEM, "out of memory");
            goto out;
        }
out:
    db_finalize(s);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* Links the tenant's unmapped line items of sku to the mapping, one event per order.
 * *linked gets the number of line items linked. */
static int link_needs_mapping(db_conn *c, const char *tenant_id, const char *mapping_id,
                              const char *sku, const char *user_id, int64_t now, int64_t *linked,
                              err *e)
{
    json_t *orders = NULL;
    *linked = 0;
    int rc = orders_of(c,
                       "SELECT DISTINCT order_id FROM line_items WHERE tenant_id = $1 AND "
                       "sku = $2 AND product_mapping_id IS NULL ORDER BY order_id",
                       tenant_id, sku, &orders, e);
    if (rc)
        return rc;
    db_stmt *s = db_prepare(c,
                            "UPDATE line_items SET product_mapping_id = $3, updated_at = $4 "
                            "WHERE tenant_id = $1 AND sku = $2 AND order_id = $5 AND "
                            "product_mapping_id IS NULL",
                            e);
    if (!s) {
        rc = e->code;
        goto out;
    }
    size_t i;
    json_t *order;
    json_array_foreach(orders, i, order)
    {
        const char *order_id = json_string_value(order);
        db_reset(s);
        db_bind_text(s, 1, tenant_id);
        db_bind_text(s, 2, sku);
        db_bind_text(s, 3, mapping_id);
        db_bind_int64(s, 4, now);
        db_bind_text(s, 5, order_id);
        if ((rc = db_step(s, e)) < 0)
            goto out;
        int64_t n = db_changes(s);
        *linked += n;
        json_t *meta = json_pack("{s:s s:s s:I}", "mappingId", mapping_id, "sku", sku, "lineItems",
                                 (json_int_t)n);
        char msg[256];
        snprintf(msg, sizeof msg, "Product mapping for SKU %.100s applied to %lld line item(s)",
                 sku, (long long)n);
        eventlog_entry en = {.tenant_id = tenant_id,
                             .event_type = MAPPING_EVENT_APPLIED,
                             .severity = EVENTLOG_INFO,
                             .message = msg,
                             .order_id = order_id,
                             .user_id = user_id,
                             .metadata = meta};
        rc = meta ? eventlog_write(c, &en, NULL, e) : err_set(e, F3_ENOMEM, "out of memory");
        json_decref(meta);
        if (rc)
            goto out;
    }
    rc = 0;
out:
    db_finalize(s);
    json_decref(orders);
    return rc;
}

/* F3_ECONFLICT when another mapping of the tenant (not `self`) has sku. */
static int sku_taken(db_conn *c, const char *tenant_id, const char *sku, const char *self, err *e)
{
    db_stmt *s = db_prepare(c,
                            "SELECT id FROM product_mappings WHERE tenant_id = $1 AND sku = $2 "
                            "AND id <> $3",
                            e);
    if (!s)
        return e->code;
    db_bind_text(s, 1, tenant_id);
    db_bind_text(s, 2, sku);
    db_bind_text(s, 3, self ? self : "");
    int rc = db_step(s, e);
    db_finalize(s);
    if (rc == DB_ROW)
        return err_set(e, F3_ECONFLICT, "Product mapping already exists for SKU: %.100s", sku);
    return rc < 0 ? rc : 0;
}

static void bind_mapping(db_stmt *s, const mapping_in *m)
{
    db_bind_text(s, 3, m->sku);
    db_bind_text(s, 4, m->name);
    db_bind_text(s, 5, m->description);
    db_bind_text(s, 6, m->shopify_product_id);
    db_bind_text(s, 7, m->shopify_variant_id);
    db_bind_bool(s, 8, m->is_assembly);
    db_bind_text(s, 9, m->default_print_profile);
    db_bind_text(s, 10, m->queue_group_id);
    db_bind_bool(s, 11, m->active);
}

/* What one write transaction works on; filled again on every attempt of db_tx. */
typedef struct mapping_tx {
    const char *tenant_id;
    const char *user_id;
    const char *id; /* NULL for a new mapping */
    json_t *body;   /* the request body */
    bool patch;     /* body holds only the fields to change */
    json_t *merged; /* PATCH: the stored view with the body merged over it */
    mapping_in in;
    char new_id[UUID_STR_LEN];
    int64_t linked;
    json_t *result;
} mapping_tx;

/* The stored SKU (caller frees) and, when active is not NULL, whether the mapping is active. */
static int stored_sku(db_conn *c, mapping_tx *t, char **sku, bool *active, err *e)
{
    db_stmt *s = db_prepare(
        c, "SELECT sku, active FROM product_mappings WHERE tenant_id = $1 AND id = $2", e);
    if (!s)
        return e->code;
    db_bind_text(s, 1, t->tenant_id);
    db_bind_text(s, 2, t->id);
    int rc = db_step(s, e);
    if (rc == DB_ROW && active)
        *active = db_col_bool(s, 1);
    if (rc == DB_ROW)
        rc = (*sku = str_dup(db_col_text(s, 0))) ? 0 : err_set(e, F3_ENOMEM, "out of memory");
    else if (rc == DB_DONE)
        rc = err_set(e, F3_ENOTFOUND, "Product mapping not found: %s", t->id);
    db_finalize(s);
    return rc;
}

/* The input of an update: the body, or for PATCH the stored view with the body over it. */
static int update_input(db_conn *c, mapping_tx *t, err *e)
{
    json_decref(t->merged);
    t->merged = NULL;
    if (!t->patch)
        return validate(t->body, &t->in, e);
    if (!json_is_object(t->body))
        return err_set(e, F3_EINVAL, "body: must be a JSON object");
    int rc = mapping_view(c, t->tenant_id, t->id, &t->merged, e);
    if (rc)
        return rc;
    if (json_object_update(t->merged, t->body))
        return err_set(e, F3_ENOMEM, "out of memory");
    return validate(t->merged, &t->in, e);
}

static int create_tx(db_conn *c, void *ctx, err *e)
{
    mapping_tx *t = ctx;
    int64_t now = clock_now_ms();
    int rc = sku_taken(c, t->tenant_id, t->in.sku, NULL, e);
    if (rc)
        return rc;
    uuid_v7(t->new_id);
    db_stmt *s = db_prepare(c,
                            "INSERT INTO product_mappings (id, tenant_id, sku, name, description, "
                            "shopify_product_id, shopify_variant_id, is_assembly, "
                            "default_print_profile, queue_group_id, active, created_at, "
                            "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                            "$12, $12)",
                            e);
    if (!s)
        return e->code;
    db_bind_text(s, 1, t->new_id);
    db_bind_text(s, 2, t->tenant_id);
    bind_mapping(s, &t->in);
    db_bind_int64(s, 12, now);
    rc = db_step(s, e);
    db_finalize(s);
    if (rc < 0 || (rc = insert_parts(c, t->tenant_id, t->new_id, &t->in, now, e)) ||
        (t->in.active && (rc = link_needs_mapping(c, t->tenant_id, t->new_id, t->in.sku, t->user_id,
                                                  now, &t->linked, e))))
        return rc;
    json_decref(t->result);
    t->result = NULL;
    return mapping_view(c, t->tenant_id, t->new_id, &t->result, e);
}

static int update_tx(db_conn *c, void *ctx, err *e)
{
    mapping_tx *t = ctx;
    int64_t now = clock_now_ms();
    char *old_sku = NULL;
    bool was_active = false;
    t->linked = 0;
    int rc = stored_sku(c, t, &old_sku, &was_active, e);
    if (rc || (rc = update_input(c, t, e)) ||
        (rc = sku_taken(c, t->tenant_id, t->in.sku, t->id, e)))
        goto out;
    db_stmt *s = db_prepare(c,
                            "UPDATE product_mappings SET sku = $3, name = $4, description = $5, "
                            "shopify_product_id = $6, shopify_variant_id = $7, is_assembly = $8, "
                            "default_print_profile = $9, queue_group_id = $10, active = $11, "
                            "updated_at = $12 WHERE tenant_id = $1 AND id = $2",
                            e);
    if (!s) {
        rc = e->code;
        goto out;
    }
    db_bind_text(s, 1, t->tenant_id);
    db_bind_text(s, 2, t->id);
    bind_mapping(s, &t->in);
    db_bind_int64(s, 12, now);
    rc = db_step(s, e);
    db_finalize(s);
    if (rc < 0)
        goto out;
    s = db_prepare(c, "DELETE FROM assembly_parts WHERE tenant_id = $1 AND product_mapping_id = $2",
                   e);
    if (!s) {
        rc = e->code;
        goto out;
    }
    db_bind_text(s, 1, t->tenant_id);
    db_bind_text(s, 2, t->id);
    rc = db_step(s, e);
    db_finalize(s);
    if (rc < 0 || (rc = insert_parts(c, t->tenant_id, t->id, &t->in, now, e)))
        goto out;
    /* Items wait for an active mapping of their SKU: link when the mapping gets a new SKU or
     * becomes active. Items linked under an old SKU keep their mapping (their jobs may run). */
    if (t->in.active && (strcmp(old_sku, t->in.sku) != 0 || !was_active) &&
        (rc =
             link_needs_mapping(c, t->tenant_id, t->id, t->in.sku, t->user_id, now, &t->linked, e)))
        goto out;
    json_decref(t->result);
    t->result = NULL;
    rc = mapping_view(c, t->tenant_id, t->id, &t->result, e);
out:
    free(old_sku);
    return rc;
}

/* ---- handlers --------------------------------------------------------------------------- */

static int write_failed(http_response *res, int rc, const err *e)
{
    switch (rc) {
    case F3_EINVAL:
        return http_res_error(res, 400, "%s", e->msg);
    case F3_ENOTFOUND:
        return http_res_error(res, 404, "%s", e->msg);
    case F3_ECONFLICT:
        /* A concurrent insert of the same SKU fails on the unique key instead. */
        return http_res_error(res, 409, "%s",
                              str_starts_with(e->msg, "Product mapping")
                                  ? e->msg
                                  : "Product mapping already exists for this SKU");
    default:
        return orders_api_db_failed(res, "product mapping write", e);
    }
}

static int write_mapping(http_request *req, http_response *res, void *ctx, bool create, bool patch)
{
    const orders_api_deps *deps = ctx;
    const char *tenant = orders_api_tenant(req, res);
    if (!tenant)
        return 0;
    const user_ctx *u = user_ctx_of(req);
    mapping_tx t = {.tenant_id = tenant,
                    .user_id = u->user_id[0] ? u->user_id : NULL,
                    .id = http_req_param(req, "id"),
                    .patch = patch};
    err e;
    err_clear(&e);
    db_conn *c = NULL;
    int rc = http_req_json(req, &t.body, res);
    if (rc == F3_EINVAL)
        return 0;
    if (rc)
        return rc;
    if (create && (rc = validate(t.body, &t.in, &e))) {
        write_failed(res, rc, &e);
        goto out;
    }
    if (!(c = db_acquire(deps->db, &e))) {
        orders_api_db_failed(res, "acquire", &e);
        goto out;
    }
    rc = db_tx(c, create ? create_tx : update_tx, &t, &e);
    if (rc) {
        write_failed(res, rc, &e);
        goto out;
    }
    json_object_set_new(t.result, "linkedLineItems", json_integer((json_int_t)t.linked));
    log_info("product mapping saved", "tenantId", tenant, "sku", t.in.sku, "mappingId",
             create ? t.new_id : t.id);
    http_res_json(res, create ? 201 : 200, json_incref(t.result));
out:
    db_release(c);
    json_decref(t.result);
    json_decref(t.merged);
    json_decref(t.body);
    return 0;
}

int orders_api_mappings_create(http_request *req, http_response *res, void *ctx)
{
    return write_mapping(req, res, ctx, true, false);
}

int orders_api_mappings_replace(http_request *req, http_response *res, void *ctx)
{
    return write_mapping(req, res, ctx, false, false);
}

int orders_api_mappings_patch(http_request *req, http_response *res, void *ctx)
{
    return write_mapping(req, res, ctx, false, true);
}

int orders_api_mappings_get(http_request *req, http_response *res, void *ctx)
{
    const orders_api_deps *deps = ctx;
    const char *tenant = orders_api_tenant(req, res);
    if (!tenant)
        return 0;
    err e;
    err_clear(&e);
    json_t *m = NULL;
    db_conn *c = db_acquire(deps->db, &e);
    if (!c)
        return orders_api_db_failed(res, "acquire", &e);
    int rc = mapping_view(c, tenant, http_req_param(req, "id"), &m, &e);
    db_release(c);
    if (rc)
        return write_failed(res, rc, &e);
    return http_res_json(res, 200, m);
}

typedef struct delete_tx {
    const char *tenant_id;
    const char *user_id;
    const char *id;
} delete_tx;

static int remove_tx(db_conn *c, void *ctx, err *e)
{
    delete_tx *t = ctx;
    json_t *orders = NULL;
    char *sku = NULL;
    mapping_tx probe = {.tenant_id = t->tenant_id, .id = t->id};
    int rc = stored_sku(c, &probe, &sku, NULL, e);
    if (rc || (rc = orders_of(c,
                              "SELECT DISTINCT order_id FROM line_items WHERE tenant_id = $1 AND "
                              "product_mapping_id = $2 ORDER BY order_id",
                              t->tenant_id, t->id, &orders, e)))
        goto out;
    /* The line items' foreign key sets their mapping to NULL: they need a mapping again. */
    db_stmt *s = db_prepare(c, "DELETE FROM product_mappings WHERE tenant_id = $1 AND id = $2", e);
    if (!s) {
        rc = e->code;
        goto out;
    }
    db_bind_text(s, 1, t->tenant_id);
    db_bind_text(s, 2, t->id);
    rc = db_step(s, e);
    db_finalize(s);
    if (rc < 0)
        goto out;
    rc = 0;
    size_t i;
    json_t *order;
    json_array_foreach(orders, i, order)
    {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "Product mapping for SKU %.100s removed: line items need a mapping", sku);
        json_t *meta = json_pack("{s:s s:s}", "mappingId", t->id, "sku", sku);
        eventlog_entry en = {.tenant_id = t->tenant_id,
                             .event_type = MAPPING_EVENT_REMOVED,
                             .severity = EVENTLOG_WARNING,
                             .message = msg,
                             .order_id = json_string_value(order),
                             .user_id = t->user_id,
                             .metadata = meta};
        rc = meta ? eventlog_write(c, &en, NULL, e) : err_set(e, F3_ENOMEM, "out of memory");
        json_decref(meta);
        if (rc)
            goto out;
    }
out:
    json_decref(orders);
    free(sku);
    return rc;
}

int orders_api_mappings_delete(http_request *req, http_response *res, void *ctx)
{
    const orders_api_deps *deps = ctx;
    const char *tenant = orders_api_tenant(req, res);
    if (!tenant)
        return 0;
    const user_ctx *u = user_ctx_of(req);
    delete_tx t = {tenant, u->user_id[0] ? u->user_id : NULL, http_req_param(req, "id")};
    err e;
    err_clear(&e);
    db_conn *c = db_acquire(deps->db, &e);
    if (!c)
        return orders_api_db_failed(res, "acquire", &e);
    int rc = db_tx(c, remove_tx, &t, &e);
    db_release(c);
    if (rc)
        return write_failed(res, rc, &e);
    log_info("product mapping deleted", "tenantId", tenant, "mappingId", t.id);
    return http_res_bytes(res, 204, NULL, NULL, 0);
}

/* GET /api/v1/product-mappings?q=&page=&pageSize= */
int orders_api_mappings_list(http_request *req, http_response *res, void *ctx)
{
    const orders_api_deps *deps = ctx;
    const char *tenant = orders_api_tenant(req, res);
    if (!tenant)
        return 0;
    err e;
    err_clear(&e);
    int64_t page = 1, size = MAPPING_PAGE_SIZE;
    if (orders_api_int_param(req, "page", 1, 1000000, 1, &page, &e) ||
        orders_api_int_param(req, "pageSize", 1, MAPPING_PAGE_SIZE_MAX, MAPPING_PAGE_SIZE, &size,
                             &e))
        return http_res_error(res, 400, "%s", e.msg);
    const char *q = http_req_query_param(req, "q");
    char *like = q && *q ? orders_api_like_pattern(q) : NULL;
    json_t *data = json_array(), *body = NULL;
    db_stmt *s = NULL;
    int64_t total = 0;
    orders_api_query count, list;
    orders_api_query_init(&count);
    orders_api_query_init(&list);
    db_conn *c = db_acquire(deps->db, &e);
    if (!c) {
        orders_api_db_failed(res, "acquire", &e);
        goto out;
    }
    if (!data || (q && *q && !like))
        goto oom;
    orders_api_query *qs[2] = {&count, &list};
    for (int k = 0; k < 2; k++) {
        orders_api_query *x = qs[k];
        if (k == 0)
            buf_puts(&x->sql, "SELECT COUNT(*)");
        else
            buf_printf(&x->sql, "SELECT %s", mapping_columns);
        buf_printf(&x->sql, " FROM product_mappings WHERE tenant_id = $%d",
                   orders_api_query_text(x, tenant));
        if (like) {
            int p = orders_api_query_text(x, like);
            buf_printf(&x->sql,
                       " AND (LOWER(sku) LIKE $%d ESCAPE '\\' OR LOWER(name) LIKE $%d ESCAPE "
                       "'\\')",
                       p, p);
        }
    }
    buf_printf(&list.sql, " ORDER BY sku, id LIMIT $%d OFFSET $%d",
               orders_api_query_int(&list, size), orders_api_query_int(&list, (page - 1) * size));
    if (!(s = orders_api_query_prepare(&count, c, &e)) || db_step(s, &e) != DB_ROW) {
        orders_api_db_failed(res, "mapping count", &e);
        goto out;
    }
    total = db_col_int64(s, 0);
    db_finalize(s);
    if (!(s = orders_api_query_prepare(&list, c, &e))) {
        orders_api_db_failed(res, "mapping list", &e);
        goto out;
    }
    int rc;
    while ((rc = db_step(s, &e)) == DB_ROW) {
        json_t *m = NULL;
        if ((rc = mapping_row_view(c, s, tenant, &m, &e)))
            break;
        if (json_array_append_new(data, m))
            goto oom;
    }
    if (rc < 0) {
        orders_api_db_failed(res, "mapping list", &e);
        goto out;
    }
    body = json_pack("{s:O s:I s:I s:I}", "data", data, "total", (json_int_t)total, "page",
                     (json_int_t)page, "pageSize", (json_int_t)size);
    if (!body)
        goto oom;
    http_res_json(res, 200, body);
    goto out;
oom:
    http_res_error(res, 500, "Internal server error");
out:
    db_finalize(s);
    db_release(c);
    orders_api_query_free(&count);
    orders_api_query_free(&list);
    json_decref(data);
    free(like);
    return 0;
}
