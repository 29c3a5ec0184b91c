/*
 * e2e.h - what the end-to-end scenario tests (tests/e2e/test_*.c) share: a "world" of the
 * real `f3connect serve` binary as a child process on a fresh database (SQLite or
 * PostgreSQL), wired to the simulators of Shopify, SimplyPrint and Sendcloud and an SMTP
 * sink running in the test process, with a signed-in admin and the demo catalog; calls
 * to the platform's API and the simulators' control endpoints; and `f3connect sandbox`
 * runs for the scenario suites.
 *
 * Every helper fails the calling cmocka test with a message (and the platform's log)
 * instead of returning an error the test could forget to check, except where noted.
 * It must not reach into the platform's process: what a test sees, it sees through HTTP,
 * the simulators and the database, as an operator or a provider would.
 */
#ifndef F3_TESTS_E2E_H
#define F3_TESTS_E2E_H

#include "support/f3test.h"
#include "support/f3test_proc.h"

#include "core/buf.h"
#include "db/db.h"
#include "sim/sendcloud/sim.h"
#include "sim/shopify/sim.h"
#include "sim/simplyprint/sim.h"
#include "sim/smtp/sink.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Demo catalog SKUs (src/app/sandbox_demo.c) the scenarios order. */
#define E2E_SKU_SINGLE   "F3-BENCHY-PLA"  /* one file, one copy per unit */
#define E2E_SKU_ASSEMBLY "F3-LAMP-KIT"    /* an assembly of two parts */
#define E2E_SKU_COPIES   "F3-COASTER-SET" /* one part printed four times per unit */
#define E2E_SKU_UNMAPPED "F3-PROTO-XL"    /* no mapping */

typedef struct e2e_world_opts {
    int printers;           /* printers of the SimplyPrint farm; 0 = 16 */
    long print_ms;          /* how long a copy prints; 0 = 1 hour (the test ends it) */
    bool printers_paused;   /* the farm takes nothing from the queue until resumed */
    long sendcloud_step_ms; /* parcel status steps; 0 = only when told */
} e2e_world_opts;

typedef struct e2e_world {
    char *dir;    /* working directory of the platform (its log, data) */
    char *db_url; /* the fresh database */
    db *d;        /* the test's own connection pool to it (read-mostly) */
    shopify_sim *shopify;
    sp_sim *sp;
    sendcloud_sim *sendcloud;
    smtp_sink *smtp;
    char shopify_url[64], sp_url[64], sc_url[64];
    int port;
    char base[64]; /* http://127.0.0.1:PORT of the platform */
    f3test_proc serve;
    char tenant[65];
    char cookie[256]; /* "Cookie: ..." of the signed-in admin */
    char origin[96];  /* "Origin: <base>" */
} e2e_world;

/* Starts the simulators, the platform on a fresh `backend` database, signs in an admin
 * and posts the demo catalog's product mappings. 0, or -1 after printing why (for
 * cmocka setup functions). Stop with e2e_world_stop. */
int e2e_world_start(e2e_world *w, const char *backend, const e2e_world_opts *o);

/* SIGTERM to the platform (it must exit 0 within 15 s), then stops the simulators and
 * drops the database. 0, or -1 when the platform did not stop cleanly. */
int e2e_world_stop(e2e_world *w);

/* Prints the platform's log to stderr (for failure messages). */
void e2e_world_dump_log(const e2e_world *w);

/* ---- HTTP ------------------------------------------------------------------------------ */

/* A call to the platform's API as the signed-in admin; body_text may be NULL. Returns the
 * HTTP status (0 when no answer came); *out (may be NULL) gets the parsed JSON answer or
 * NULL when it was not JSON. */
long e2e_api(e2e_world *w, const char *method, const char *path, const char *body_text,
             json_t **out);

/* The same with the raw answer: the body into *body (appended), its Content-Type into
 * ctype (may be NULL). */
long e2e_api_raw(e2e_world *w, const char *method, const char *path, buf *body, char *ctype,
                 size_t ctype_size);

/* A JSON call to base+path (a simulator); headers may be NULL. Returns the status; *out
 * (may be NULL) as above. */
long e2e_call(const char *base, const char *method, const char *path, const char *const *headers,
              const char *body_text, json_t **out);

/* ---- the scenario's steps ------------------------------------------------------------ */

/* Places an order in the Shopify simulator (order_json: the order's fields as the
 * simulator's POST /_sim/orders takes them under "order"), delivered as orders/create.
 * Its Shopify id into shopify_id. */
void e2e_place_order(e2e_world *w, const char *order_json, char shopify_id[32]);

/* Fires a Shopify event for the order (e.g. "orders/cancelled"). */
void e2e_shopify_event(e2e_world *w, const char *shopify_id, const char *topic);

/* Waits until the platform stored the Shopify order; our id into order_id. */
void e2e_wait_stored(e2e_world *w, const char *shopify_id, char order_id[65]);

/* GET /api/v1/orders/:id (must answer 200). Caller frees with json_decref. */
json_t *e2e_order(e2e_world *w, const char *order_id);

/* Waits up to timeout_ms until the order's API view has field == value ("" for JSON
 * null); returns the view (caller frees), or fails the test showing the last view. */
json_t *e2e_wait_order_field(e2e_world *w, const char *order_id, const char *field,
                             const char *value, int timeout_ms);

/* A count from the test's database connection (sql with at most one text parameter). */
int64_t e2e_count(e2e_world *w, const char *sql, const char *param);

/* Waits until e2e_count(sql, param) == want; fails the test otherwise. */
void e2e_wait_count(e2e_world *w, const char *sql, const char *param, int64_t want, int timeout_ms);

/* The print jobs of the order through GET /api/v1/print-jobs?orderId= (the "data" array;
 * caller frees). */
json_t *e2e_print_jobs(e2e_world *w, const char *order_id);

/* How many of the order's print jobs (API view) are in `status`. */
size_t e2e_jobs_in(e2e_world *w, const char *order_id, const char *status);

/* Waits until `n` of the order's print jobs are in `status`. */
void e2e_wait_jobs(e2e_world *w, const char *order_id, const char *status, size_t n,
                   int timeout_ms);

/* SimplyPrint simulator: ids of the ongoing print jobs (up to max) into ids; their count. */
size_t e2e_sp_ongoing(e2e_world *w, int64_t *ids, size_t max);

/* Ends, in the SimplyPrint simulator, every print of the order that is printing now (as
 * the API's simplyPrintJobId names them) as `how`; how many. */
size_t e2e_end_prints(e2e_world *w, const char *order_id, sp_job_state how);

/* SimplyPrint simulator: items still in its print queue. */
size_t e2e_sp_queued(e2e_world *w);

/* Shopify simulator: the order's fulfillments (caller frees). */
json_t *e2e_fulfillments(e2e_world *w, const char *shopify_id);

/* SMTP sink: messages whose raw text contains `needle`. */
size_t e2e_mails_with(e2e_world *w, const char *needle);

/* Prints the operator-alert mail state to stderr: the messages in the SMTP sink (their
 * subjects) and the NOTIFICATION retry entries, for a failure message. */
void e2e_dump_mail(e2e_world *w);

/* Event-log entries of the order of one type (API view through GET /api/v1/events). */
size_t e2e_events_of(e2e_world *w, const char *order_id, const char *event_type);

/* ---- f3connect sandbox -------------------------------------------------------------- */

/* Runs `f3connect sandbox --until-done --orders N ...` (extra: more arguments,
 * NULL-terminated) with its own data directory, a free port and, for "postgres", a fresh
 * PostgreSQL database passed as --database-url. Returns the exit status; *out (caller
 * frees) gets its standard output. Prints its output and the platform log when it did not
 * exit 0. */
int e2e_sandbox(const char *backend, const char *orders, const char *const *extra, int timeout_ms,
                char **out);

/* What a sandbox run's summary says (parsed from its standard output). */
typedef struct e2e_summary {
    int orders, fulfilled, cancelled, waiting, other;
    int review; /* meant to be cancelled, cancelled after completion: flagged for review */
    int print_jobs, shipments;
    int starts, kills;
    bool all_hold; /* "invariants: all hold" */
} e2e_summary;

/* Runs the sandbox as e2e_sandbox does and asserts that it exited 0 with every invariant
 * holding and every order accounted for; the summary into *s (may be NULL). */
void e2e_sandbox_passes(const char *backend, const char *orders, const char *const *extra,
                        int timeout_ms, e2e_summary *s);

#endif
