/*
 * reconcile.c - the Sendcloud reconciliation poller (repeatable job
 * "sendcloud.reconcile@shipping-service"): for every connected tenant it reads back each
 * shipment Sendcloud has made that is not final yet, and applies any status a webhook did
 * not bring (lost, dropped, or Sendcloud gave up retrying). Only the shipping service
 * reconciles Sendcloud (seed 000, service ownership). One shipment's failure is logged and
 * the run goes on; the run stops between shipments when the service stops.
 */
#include "services/shipping/shipping_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX  200
#define F3_STR_(x) #x
#define F3_STR(x)  F3_STR_(x)

typedef struct open_shipment {
    char id[UUID_STR_LEN];
    char provider_id[96];
    char api_version[4];
} open_shipment;

/* The shipments of tenant_id that Sendcloud made and that may still change. */
static int open_shipments(db_conn *c, const char *tenant_id, open_shipment *out, size_t *n, err *e)
{
    *n = 0;
    const char *t[] = {tenant_id};
    db_stmt *st = db_prepare_texts(
        c,
        "SELECT id, provider_shipment_id, api_version FROM shipments WHERE tenant_id = $1"
        " AND provider_shipment_id IS NOT NULL"
        " AND status NOT IN ('PENDING', 'FAILED', 'CANCELLED', 'DELIVERED')"
        " ORDER BY updated_at LIMIT " F3_STR(BATCH_MAX),
        t, 1, e);
    if (!st)
        return db_err_code(e);
    int rc;
    while ((rc = db_step(st, e)) == DB_ROW && *n < BATCH_MAX) {
        db_col_copy(st, 0, out[*n].id, sizeof out[*n].id);
        db_col_copy(st, 1, out[*n].provider_id, sizeof out[*n].provider_id);
        db_col_copy(st, 2, out[*n].api_version, sizeof out[*n].api_version);
        (*n)++;
    }
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

typedef struct apply_ctx {
    shipping_service *s;
    const char *tenant_id, *shipment_id;
    const shipping_status_report *rep;
    bool changed;
} apply_ctx;

static int apply_tx(db_conn *c, void *ctx, err *e)
{
    apply_ctx *a = ctx;
    return shipping_apply_status(a->s, c, a->tenant_id, a->shipment_id, a->rep, &a->changed, e);
}

static int reconcile_tenant(shipping_service *s, const char *tenant_id, int *changed, err *e)
{
    shipping_conn conn;
    memset(&conn, 0, sizeof conn);
    open_shipment *list = calloc(BATCH_MAX, sizeof *list);
    size_t n = 0;
    if (!list)
        return err_set(e, F3_ENOMEM, "out of memory");
    db_conn *c = db_acquire(s->db, e);
    int rc = c ? shipping_conn_load(s, c, tenant_id, &conn, e) : db_err_code(e);
    rc = rc ? rc : open_shipments(c, tenant_id, list, &n, e);
    db_release(c);
    if (rc) {
        free(list);
        return rc;
    }
    for (size_t i = 0; i < n && !atomic_load(&s->stopping); i++) {
        err one;
        err_clear(&one);
        sendcloud_client *client = shipping_conn_client(s, &conn, list[i].api_version, &one);
        sendcloud_shipment sh;
        memset(&sh, 0, sizeof sh);
        int grc = client ? sendcloud_get_shipment(client, list[i].provider_id, &sh, NULL, &one)
                         : F3_EPERMANENT;
        sendcloud_client_free(client);
        if (grc == 0) {
            shipping_status_report rep = {.status = sh.status,
                                          .status_message = sh.status_message,
                                          .tracking_number = sh.tracking_number,
                                          .tracking_url = sh.tracking_url,
                                          .carrier = sh.carrier,
                                          .at_ms = clock_now_ms(),
                                          .source = "reconciliation"};
            apply_ctx a = {.s = s, .tenant_id = tenant_id, .shipment_id = list[i].id, .rep = &rep};
            db_conn *tc = db_acquire(s->db, &one);
            grc = tc ? db_tx(tc, apply_tx, &a, &one) : db_err_code(&one);
            db_release(tc);
            if (grc == 0 && a.changed)
                (*changed)++;
        }
        if (grc)
            log_warn("Sendcloud reconciliation of a shipment failed", "shipmentId", list[i].id,
                     "reason", one.msg);
        sendcloud_shipment_free(&sh);
    }
    shipping_conn_clear(&conn);
    free(list);
    return 0;
}

int shipping_reconcile_job(bus_delivery *dl, void *ctx, err *e)
{
    (void)dl;
    shipping_service *s = ctx;
    char **tenants = NULL;
    size_t n = 0;
    db_conn *c = db_acquire(s->db, e);
    int rc = c ? shipping_conn_tenants(c, &tenants, &n, e) : db_err_code(e);
    db_release(c);
    int changed = 0;
    for (size_t i = 0; rc == 0 && i < n && !atomic_load(&s->stopping); i++) {
        err one;
        err_clear(&one);
        if (reconcile_tenant(s, tenants[i], &changed, &one) != 0)
            log_warn("Sendcloud reconciliation of a tenant failed", "tenantId", tenants[i],
                     "reason", one.msg);
    }
    shipping_tenants_free(tenants, n);
    if (rc == 0) {
        char text[16];
        snprintf(text, sizeof text, "%d", changed);
        log_info("Sendcloud reconciliation done", "changed", text);
    }
    return rc;
}
