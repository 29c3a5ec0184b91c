/*
 * sandbox.h - `f3connect sandbox`: the whole platform wired to the simulators of
 * Shopify, SimplyPrint, Sendcloud and an SMTP sink, with a stream of demo orders.
 *
 * The pieces: sandbox.c runs it (simulators, configuration, platform, HTTP server, the
 * demo catalog, the watch loop); sandbox_demo.c makes the demo orders; sandbox_check.c
 * is the invariant checker that says whether every order ended where it should and
 * nothing was lost or done twice. The checker is also used by the end-to-end tests.
 * Only src/app/ knows about the sandbox.
 */
#ifndef F3_APP_SANDBOX_H
#define F3_APP_SANDBOX_H

#include "core/buf.h"
#include "core/err.h"
#include "db/db.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ---- demo orders ------------------------------------------------------------------------ */

/* What the generator meant an order to do, so the checker knows where it should end. */
typedef enum sandbox_intent {
    SANDBOX_FULFIL,   /* every SKU mapped: printed, shipped, fulfilled */
    SANDBOX_UNMAPPED, /* only unmapped SKUs: stays PENDING, waiting for a mapping */
    SANDBOX_CANCEL,   /* cancelled in Shopify soon after it was placed */
} sandbox_intent;

typedef struct sandbox_order {
    char shopify_id[32]; /* the simulator's order id */
    sandbox_intent intent;
    int64_t placed_ms; /* when the generator placed it */
} sandbox_order;

typedef struct sandbox_mix {
    double unmapped_rate; /* share of orders with unmapped SKUs only, 0..1 */
    double cancel_rate;   /* share of orders cancelled soon after, 0..1 */
    int max_items;        /* line items per order, 1..max */
    int max_quantity;     /* quantity per line item, 1..max */
} sandbox_mix;

/* The demo catalog: SKUs with their product mapping bodies (JSON text for
 * POST /api/v1/product-mappings). Static storage. */
size_t sandbox_catalog_size(void);
const char *sandbox_catalog_sku(size_t i);
const char *sandbox_catalog_mapping(size_t i);

/* How the simulator delivers an order's orders/create webhook. */
typedef struct sandbox_delivery {
    int duplicates; /* extra deliveries of the same event */
    bool deliver;   /* false: stored only, left for reconciliation to find */
} sandbox_delivery;

/* Builds the body of one demo order for the Shopify simulator's POST /_sim/orders
 * ({"order": {...}, "duplicates": n, "deliver": b}) following mix, with draws from the
 * xorshift state *rng; *intent says what the order is meant to do. Caller frees *body with
 * buf_free. 0 or F3_ENOMEM. */
int sandbox_order_body(const sandbox_mix *mix, const sandbox_delivery *how, uint64_t *rng,
                       buf *body, sandbox_intent *intent);

/* A uniform draw in [0, 1) from *rng (xorshift64*; *rng must not be 0). */
double sandbox_random(uint64_t *rng);

/* ---- the invariant checker -------------------------------------------------------------- */

typedef struct sandbox_report {
    int orders;             /* orders checked */
    int fulfilled;          /* COMPLETED with a Shopify fulfilment */
    int cancelled;          /* CANCELLED */
    int waiting_mapping;    /* PENDING with unmapped line items */
    int review;             /* cancelled in Shopify after it was COMPLETED: not fulfilled,
                               flagged for review with an operator alert */
    int other;              /* any other end state (each one is also a violation) */
    int print_jobs;         /* print jobs in all */
    int shipments;          /* shipments in all */
    int in_flight;          /* queued jobs / retry entries held under a live lease when
                               checked (e.g. by a killed process until its lease ends) */
    int violations;         /* invariants broken; the messages are in `problems` */
    bool incomplete;        /* the check stopped on an error: nothing is proven */
    int64_t p50_ms, p99_ms; /* order placed in Shopify (its webhook follows within
                               milliseconds) to its fulfilment, over fulfilled orders */
    int64_t *latency;       /* those times, one per fulfilled order */
    size_t nlatency, latency_cap;
    buf problems; /* one line per violation */
    /* Filled by the sandbox, not by the checker (0 = not measured): */
    int64_t window_ms;    /* first order placed to the last fulfilment */
    double orders_per_s;  /* fulfilled orders / window_ms */
    long platform_rss_kb; /* the platform's peak RSS over all its starts */
    long sandbox_rss_kb;  /* the sandbox's own (simulators, generator, checker) */
} sandbox_report;

void sandbox_report_init(sandbox_report *r);
void sandbox_report_free(sandbox_report *r);

/* Where the checker looks besides the database: the simulators' base URLs
 * ("http://127.0.0.1:PORT"), and the Shopify simulator's API version and token. */
typedef struct sandbox_sims {
    const char *shopify_url;
    const char *shopify_token;
    const char *shopify_api_version;
    const char *simplyprint_url; /* NULL = not checked */
    const char *sendcloud_url;   /* NULL = not checked */
} sandbox_sims;

/*
 * Checks the invariants over `orders` (n of them) of tenant_id, after the platform has
 * gone quiet: every order reached the final state its intent calls for; exactly one
 * Shopify fulfilment per fulfilled order and none for the others; no print job or
 * shipment twice, in the database and at the providers (no SimplyPrint queue item
 * without its print job, none still queued for a cancelled order; no Sendcloud parcel
 * twice or without its shipment); every cross-service event handled (no job waiting or
 * dead-lettered, none active on an event queue, none whose lease ran out unrecovered) and
 * no retry entry left pending or abandoned; the event log tells each order's story once
 * (created, each print job created, shipment created, fulfilled / cancelled / needing a
 * mapping). Fills *r (violations > 0 means broken). 0, or an error when the database or
 * a simulator could not be read (then *r is incomplete).
 */
int sandbox_check(db *d, const char *tenant_id, const sandbox_sims *sims,
                  const sandbox_order *orders, size_t n, sandbox_report *r, err *e);

/* Prints the report: orders per final state, print jobs, shipments, p50/p99, the
 * throughput and peak memory when measured, and every violation. */
void sandbox_report_print(const sandbox_report *r, FILE *out);

#endif
