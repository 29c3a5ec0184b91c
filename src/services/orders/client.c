/*
 * client.c - the orders service's read calls for other services (see client.h). Reads
 * only; nothing here changes a row.
 */
#include "services/orders/client.h"

#include <stdlib.h>
#include <string.h>

/* Grows *arr (elements of size sz) to hold at least want; 0 or F3_ENOMEM. */
static int grow(void **arr, size_t *cap, size_t want, size_t sz, err *e)
{
    if (want <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, ncap * sz);
    if (!p) {
        err_set(e, F3_ENOMEM, "out of memory");
        return F3_ENOMEM;
    }
    *arr = p;
    *cap = ncap;
    return 0;
}

int orders_client_sku_parts(db_conn *c, const char *tenant_id, const char *sku,
                            orders_client_part **out, size_t *n, err *e)
{
    *out = NULL;
    *n = 0;
    const char *p[] = {tenant_id, sku};
    db_stmt *s = db_prepare_texts(
        c,
        "SELECT m.id, a.id, a.part_number, a.simplyprint_file_id, a.simplyprint_file_name,"
        " a.quantity_per_unit, m.queue_group_id FROM product_mappings m"
        " JOIN assembly_parts a ON a.tenant_id = m.tenant_id AND a.product_mapping_id = m.id"
        " WHERE m.tenant_id = $1 AND m.sku = $2 AND m.active = TRUE ORDER BY a.part_number",
        p, 2, e);
    if (!s)
        return db_err_code(e);
    size_t cap = 0;
    int rc;
    while ((rc = db_step(s, e)) == DB_ROW) {
        if ((rc = grow((void **)out, &cap, *n + 1, sizeof **out, e)) != 0)
            break;
        orders_client_part *x = &(*out)[(*n)++];
        memset(x, 0, sizeof *x);
        db_col_copy(s, 0, x->mapping_id, sizeof x->mapping_id);
        db_col_copy(s, 1, x->part_id, sizeof x->part_id);
        x->part_number = (int)db_col_int64(s, 2);
        db_col_copy(s, 3, x->file_id, sizeof x->file_id);
        db_col_copy(s, 4, x->file_name, sizeof x->file_name);
        x->quantity_per_unit = (int)db_col_int64(s, 5);
        db_col_copy(s, 6, x->queue_group_id, sizeof x->queue_group_id);
    }
    db_finalize(s);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
        return rc;
    }
    return 0;
}

int orders_client_order_status(db_conn *c, const char *tenant_id, const char *order_id,
                               char out[32], err *e)
{
    out[0] = '\0';
    const char *p[] = {tenant_id, order_id};
    db_stmt *s =
        db_prepare_texts(c, "SELECT status FROM orders WHERE tenant_id = $1 AND id = $2", p, 2, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    if (rc == DB_ROW)
        db_col_copy(s, 0, out, 32);
    db_finalize(s);
    if (rc == DB_DONE)
        return err_set(e, F3_ENOTFOUND, "Order not found: %s", order_id);
    return rc < 0 ? rc : 0;
}

int orders_client_line_items(db_conn *c, const char *tenant_id, const char *order_id,
                             orders_client_line_item **out, size_t *n, err *e)
{
    *out = NULL;
    *n = 0;
    char status[32];
    int rc = orders_client_order_status(c, tenant_id, order_id, status, e);
    if (rc)
        return rc;
    const char *p[] = {tenant_id, order_id};
    db_stmt *s = db_prepare_texts(c,
                                  "SELECT id, sku, quantity FROM line_items"
                                  " WHERE tenant_id = $1 AND order_id = $2 ORDER BY created_at, id",
                                  p, 2, e);
    if (!s)
        return db_err_code(e);
    size_t cap = 0;
    while ((rc = db_step(s, e)) == DB_ROW) {
        if ((rc = grow((void **)out, &cap, *n + 1, sizeof **out, e)) != 0)
            break;
        orders_client_line_item *x = &(*out)[(*n)++];
        memset(x, 0, sizeof *x);
        db_col_copy(s, 0, x->id, sizeof x->id);
        db_col_copy(s, 1, x->sku, sizeof x->sku);
        x->quantity = (int)db_col_int64(s, 2);
    }
    db_finalize(s);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
        return rc;
    }
    return 0;
}
