/*
 * integrations_state.c - the tenant_integrations table and the handlers of the
 * integration.*-changed events (see integrations_state.h). Must not call any provider.
 */
#include "services/orders/integrations_state.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"

#include <string.h>

static const char *const provider_names[ORDERS_INTEGRATION_COUNT] = {"sendcloud", "simplyprint"};

const char *orders_integration_name(orders_integration i)
{
    return (unsigned)i < ORDERS_INTEGRATION_COUNT ? provider_names[i] : "unknown";
}

int orders_integration_set(db_conn *tx, const char *tenant_id, orders_integration i, bool connected,
                           int64_t changed_at_ms, bool *applied, err *e)
{
    if (applied)
        *applied = false;
    if ((unsigned)i >= ORDERS_INTEGRATION_COUNT || !tenant_id || !*tenant_id)
        return err_set(e, F3_EINVAL, "integration state: a tenant and a known provider are needed");
    char at[24], now[24];
    db_ms_text(changed_at_ms, at);
    db_ms_text(clock_now_ms(), now);
    const char *t[] = {tenant_id, provider_names[i], connected ? "CONNECTED" : "DISCONNECTED", at,
                       now};
    int64_t n = 0;
    int rc = db_exec_texts(tx,
                           "INSERT INTO tenant_integrations (tenant_id, provider, status,"
                           " changed_at, updated_at) VALUES ($1, $2, $3, CAST($4 AS BIGINT),"
                           " CAST($5 AS BIGINT)) ON CONFLICT (tenant_id, provider) DO UPDATE"
                           " SET status = excluded.status, changed_at = excluded.changed_at,"
                           " updated_at = excluded.updated_at"
                           " WHERE tenant_integrations.changed_at < excluded.changed_at",
                           t, 5, &n, e);
    if (rc == 0 && applied)
        *applied = n > 0;
    return rc;
}

int orders_integration_connected(db_conn *c, const char *tenant_id, orders_integration i,
                                 bool *connected, err *e)
{
    *connected = false;
    if ((unsigned)i >= ORDERS_INTEGRATION_COUNT)
        return err_set(e, F3_EINVAL, "integration state: unknown provider");
    const char *t[] = {tenant_id, provider_names[i]};
    db_stmt *s = db_prepare_texts(c,
                                  "SELECT status FROM tenant_integrations WHERE tenant_id = $1"
                                  " AND provider = $2",
                                  t, 2, e);
    if (!s)
        return db_err_code(e);
    int rc = db_step(s, e);
    if (rc == DB_ROW)
        *connected = str_eq(db_col_text(s, 0), "CONNECTED");
    db_finalize(s);
    return rc < 0 ? rc : 0;
}

/* ---- event handlers ----------------------------------------------------------------------- */

static int on_changed(bus_delivery *dl, orders_integration which, err *e)
{
    const bus_envelope *env = bus_delivery_envelope(dl);
    if (!env)
        return err_set(e, F3_EINVAL, "integration event without an envelope");
    const char *action = json_string_value(json_object_get(env->root, "action"));
    int64_t at = 0;
    if (!action || clock_parse_iso(env->timestamp, &at) != 0)
        return err_set(e, F3_EINVAL, "integration event without action or timestamp");
    db_conn *tx = bus_delivery_tx(dl, e);
    if (!tx)
        return db_err_code(e);
    bool connected = str_eq(action, "connected"), applied = false;
    int rc = orders_integration_set(tx, env->tenant_id, which, connected, at, &applied, e);
    if (rc == 0)
        log_info(applied ? "integration state changed" : "stale integration event ignored",
                 "provider", orders_integration_name(which), "action", action, "tenantId",
                 env->tenant_id);
    return rc;
}

static int on_sendcloud(bus_delivery *dl, void *ctx, err *e)
{
    (void)ctx;
    return on_changed(dl, ORDERS_INTEGRATION_SENDCLOUD, e);
}

static int on_simplyprint(bus_delivery *dl, void *ctx, err *e)
{
    (void)ctx;
    return on_changed(dl, ORDERS_INTEGRATION_SIMPLYPRINT, e);
}

int orders_integrations_subscribe(bus *b, err *e)
{
    bus_sub_opts o = {.concurrency = 1};
    int rc = bus_subscribe(b, BUS_EV_INTEGRATION_SENDCLOUD_CHANGED, on_sendcloud, NULL, &o, e);
    return rc ? rc
              : bus_subscribe(b, BUS_EV_INTEGRATION_SIMPLYPRINT_CHANGED, on_simplyprint, NULL, &o,
                              e);
}
