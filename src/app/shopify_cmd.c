/*
 * shopify_cmd.c - `f3connect shopify backfill --since DATE`: imports the orders Shopify
 * changed since DATE into the configured database, as the orders service would (the same
 * upsert, so an order already imported is never announced twice).
 *
 * Progress goes to stderr only when stderr is a terminal; the summary goes to stdout.
 * Exit codes: 0 ok, 1 failure (no shop configured, Shopify or the database failed),
 * 2 misuse. It must not hold business rules: those are the orders service's.
 */
#include "app/commands.h"
#include "app/store.h"

#include "bus/bus.h"
#include "core/clock.h"
#include "core/log.h"
#include "http/client.h"
#include "services/orders/intake.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int misuse(const char *msg)
{
    fprintf(stderr, "f3connect shopify: %s\n", msg);
    cli_usage("shopify", stderr);
    return 2;
}

static void progress_line(const orders_backfill_counts *n, void *ctx)
{
    (void)ctx;
    fprintf(stderr,
            "\rbackfill: page %" PRId64 ", %" PRId64 " orders (%" PRId64 " new, %" PRId64
            " updated)",
            n->pages, n->fetched, n->created, n->updated);
    fflush(stderr);
}

static int backfill(const config *c, int64_t since_ms)
{
    db *d = NULL;
    bus_store *s = NULL;
    bus *b = NULL;
    orders_intake *in = NULL;
    int status = 1;
    err e;
    err_clear(&e);
    if (store_open(c, &d, &e) || db_migrate(d, NULL, &e) || bus_store_open_sql(d, &s, &e) ||
        !(b = bus_new(d, s, BUS_SVC_ORDER, &e)))
        goto out;
    orders_intake_deps deps = {.db = d, .bus = b, .store = s, .config = c, .import_only = true};
    if (orders_intake_start(&in, &deps, NULL, &e))
        goto out;
    bool tty = isatty(STDERR_FILENO);
    orders_backfill_counts n;
    int rc = orders_intake_backfill(in, orders_intake_tenant(in), since_ms,
                                    tty ? progress_line : NULL, NULL, &n, &e);
    if (tty && n.pages > 0)
        fputc('\n', stderr);
    if (rc)
        goto out;
    printf(
        "fetched %" PRId64 ", created %" PRId64 ", updated %" PRId64 ", unchanged %" PRId64 "%s\n",
        n.fetched, n.created, n.updated, n.unchanged, n.invalid ? " (some invalid, see log)" : "");
    status = 0;
out:
    if (status)
        fprintf(stderr, "f3connect shopify backfill: %s\n", e.msg);
    orders_intake_free(in);
    bus_free(b);
    bus_store_close(s);
    db_close(d);
    return status;
}

int cmd_shopify(int argc, char **argv)
{
    const char *since = NULL;
    const cli_option options[] = {{"since", &since}, {NULL, NULL}};
    const char *pos[2] = {0};
    int npos = 0, code = 0;
    config *c = cli_load_config("shopify", argc, argv, NULL, options, pos, 2, &npos, &code);
    if (!c)
        return code;
    log_set_level((log_level)log_level_parse(config_get(c, "LOG_LEVEL")));
    int64_t since_ms = 0;
    if (npos != 1 || strcmp(pos[0], "backfill") != 0)
        code = misuse(npos == 0 ? "missing subcommand (backfill)" : "unknown subcommand");
    else if (!since)
        code = misuse("backfill needs --since DATE (ISO-8601, e.g. 2026-11-01)");
    else if (clock_parse_iso(since, &since_ms) != 0)
        code = misuse("--since: not an ISO-8601 date or time");
    else if (since_ms > clock_now_ms())
        code = misuse("--since: the date is in the future");
    if (code == 0) {
        if (http_client_init() != 0) {
            fprintf(stderr, "f3connect shopify: cannot initialise the HTTP client library\n");
            code = 1;
        } else {
            code = backfill(c, since_ms);
            http_client_cleanup();
        }
    }
    config_free(c);
    return code;
}
