/*
 * backfill.c - imports orders through the Admin API's order list (see backfill.h).
 */
#include "services/orders/backfill.h"

#include "core/log.h"
#include "core/str.h"
#include "services/orders/ingest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

typedef struct one_order {
    bus *b;
    const char *tenant_id;
    const shopify_order *o;
    order_ingest_result result;
} one_order;

static int store_one(db_conn *c, void *ctx, err *e)
{
    one_order *one = ctx;
    return order_ingest(c, one->b, one->tenant_id, one->o, ORDER_INGEST_UPSERT, "backfill",
                        &one->result, e);
}

static int store_page(db_conn *conn, bus *b, const char *tenant_id, const shopify_order_page *p,
                      orders_backfill_counts *out, err *e)
{
    for (size_t i = 0; i < p->count; i++) {
        shopify_order o;
        err pe;
        out->fetched++;
        if (shopify_order_from_json(json_array_get(p->orders, i), &o, &pe) != 0) {
            out->invalid++;
            log_warn("backfill: order skipped", "reason", pe.msg);
            shopify_order_free(&o);
            continue;
        }
        one_order one = {.b = b, .tenant_id = tenant_id, .o = &o};
        int rc = db_tx(conn, store_one, &one, e);
        shopify_order_free(&o);
        if (rc)
            return rc;
        out->created += one.result.outcome == ORDER_INGEST_CREATED;
        out->updated += one.result.outcome == ORDER_INGEST_UPDATED;
        out->unchanged += one.result.outcome == ORDER_INGEST_UNCHANGED;
    }
    return 0;
}

/* One page, retrying transient failures. */
static int fetch_page(shopify_client *c, const shopify_order_query *q, const char *url,
                      shopify_order_page *page, err *e)
{
    int rc = 0;
    for (int attempt = 1; attempt <= ORDERS_BACKFILL_PAGE_ATTEMPTS; attempt++) {
        shopify_call call;
        rc = shopify_list_orders(c, url ? NULL : q, url, page, &call, e);
        if (rc != F3_ETRANSIENT || attempt == ORDERS_BACKFILL_PAGE_ATTEMPTS)
            break;
        shopify_order_page_free(page);
        long wait = call.retry_after_ms > 0 ? call.retry_after_ms : 1000L << (attempt - 1);
        log_warn("backfill: Shopify asked to slow down or failed; retrying", "reason", e->msg);
        sleep_ms(wait);
    }
    if (rc == 0 && shopify_client_near_limit(c))
        sleep_ms(1000); /* let the leaky bucket drain before the next page */
    return rc;
}

int orders_backfill(db *d, bus *b, shopify_client *c, const char *tenant_id, int64_t since_ms,
                    int page_limit, orders_backfill_progress progress, void *progress_ctx,
                    orders_backfill_counts *out, err *e)
{
    memset(out, 0, sizeof *out);
    db_conn *conn = db_acquire(d, e);
    if (!conn)
        return db_err_code(e);
    shopify_order_query q = {
        .status = "any", .updated_at_min_ms = since_ms > 0 ? since_ms : 1, .limit = page_limit};
    char *next = NULL;
    int rc = 0;
    do {
        shopify_order_page page;
        rc = fetch_page(c, &q, next, &page, e);
        free(next);
        next = NULL;
        if (rc == 0) {
            out->pages++;
            rc = store_page(conn, b, tenant_id, &page, out, e);
            if (rc == 0 && page.next_url && !(next = str_dup(page.next_url)))
                rc = err_set(e, F3_ENOMEM, "out of memory");
        }
        shopify_order_page_free(&page);
        if (rc == 0 && progress)
            progress(out, progress_ctx);
    } while (rc == 0 && next);
    free(next);
    db_release(conn);
    return rc;
}
