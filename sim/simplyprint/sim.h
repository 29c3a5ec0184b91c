/*
 * sim.h - a SimplyPrint simulator: a real HTTP server speaking the subset of the
 * SimplyPrint REST API f3connect calls (account, print queue, printers, job history,
 * webhook management) under /{company_id}/..., a farm of simulated printers that
 * take queue items in FIFO order and print them copy by copy, and webhook deliveries
 * shaped as SimplyPrint sends them (raw JSON envelope, secret in X-SP-Secret).
 *
 * It follows the integrations spec §2: the envelope {"status": bool, "message": ...},
 * logical failures as HTTP 200 + "status": false, X-API-KEY checked (401). Failures
 * are injected on demand: latency, 429 with Retry-After, 5xx, stalls longer than a
 * client's timeout, dropped, duplicated and reordered webhooks, failed and cancelled
 * prints. Control endpoints under /_sim/ (JSON); see sim/simplyprint/README.md.
 *
 * All state is in memory and lives as long as the simulator. Thread-safe: every
 * function below may be called from any thread while the simulator runs. It is a
 * test and sandbox tool and must never be pointed at by a production configuration.
 */
#ifndef F3_SIM_SIMPLYPRINT_SIM_H
#define F3_SIM_SIMPLYPRINT_SIM_H

#include "core/err.h"
#include "integrations/simplyprint/client.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define SP_SIM_DEFAULT_COMPANY "1000"

typedef struct sp_sim_opts {
    const char *host;           /* address to bind; NULL = "127.0.0.1" */
    int port;                   /* 0 = a free port (see sp_sim_port) */
    const char *company_id;     /* the only company served; NULL = SP_SIM_DEFAULT_COMPANY */
    const char *api_key;        /* the X-API-KEY accepted. Required. */
    const char *webhook_url;    /* a webhook (id 1) for the job.* events to this address;
                                   NULL = none until webhooks/Create or /_sim/webhooks */
    const char *webhook_secret; /* that webhook's secret (sent in X-SP-Secret); NULL = none */
    int printers;               /* printers in the farm; 0 = 2 (at most 64) */
    long print_ms;              /* how long one copy prints; 0 = done at the next tick */
    double fail_rate;           /* probability that a print fails, 0..1 */
    double cancel_rate;         /* probability that a print is cancelled, 0..1 */
    bool paused;                /* printers start paused (take nothing from the queue) */
    unsigned seed;              /* random choices; 0 = seeded unpredictably */
    long latency_ms;            /* added to every API answer */
    double drop_rate;           /* probability that a webhook delivery is dropped, 0..1 */
    double duplicate_rate;      /* probability that a delivery is sent twice, 0..1 */
    long retry_base_ms;         /* a failed delivery is retried after this, doubling; 0 = 1000 */
    int max_retries;            /* retries of a failed delivery; 0 = 3, -1 = none */
    long delivery_timeout_ms;   /* a receiver slower than this failed; 0 = 5000 */
    int couriers;               /* deliveries sent at once, each job's still in order;
                                   0 = 1 (one at a time), at most SP_SIM_COURIERS_MAX */
} sp_sim_opts;

#define SP_SIM_COURIERS_MAX 8

typedef struct sp_sim sp_sim;

/* Starts the simulator (HTTP server, printer farm, delivery worker). NULL with e set
 * when an option is unusable or the port cannot be bound. Caller stops and frees it
 * with sp_sim_stop(). http_client_init() is done (and undone) inside. */
sp_sim *sp_sim_start(const sp_sim_opts *o, err *e);

/* The port the simulator listens on. */
int sp_sim_port(const sp_sim *s);

/* Stops serving and printing, abandons pending deliveries, frees everything. NULL is
 * fine. */
void sp_sim_stop(sp_sim *s);

/* ---- in-process helpers (the same operations as the /_sim/ endpoints) ---------------- */

/* The whole state as GET /_sim/state shows it: queue, done items, jobs, printers,
 * webhooks, deliveries, faults. Caller frees with json_decref(). */
json_t *sp_sim_state(sp_sim *s);

/* The next `count` API requests fail with `status` (429, 500..504; Retry-After of
 * retry_after_s on 429/503, none when it is -1) or, with status 0, stall delay_ms
 * before answering normally. count 0 clears. 0 or F3_EINVAL. */
int sp_sim_fault(sp_sim *s, int status, int count, long retry_after_s, long delay_ms);

/* Changes how the farm prints from now on: print_ms per copy (-1 = unchanged), and
 * the chances of a failed or cancelled print (negative = unchanged). F3_EINVAL for
 * rates outside 0..1. */
int sp_sim_set_farm(sp_sim *s, long print_ms, double fail_rate, double cancel_rate);

/* Pauses (true) or resumes the printers: printer_id 0 = all of them. A paused printer
 * finishes what it prints but takes nothing new. F3_ENOTFOUND for an unknown printer. */
int sp_sim_pause(sp_sim *s, int64_t printer_id, bool paused);

/* Ends an ongoing job now as `how` (SP_JOB_DONE, SP_JOB_FAILED or SP_JOB_CANCELLED),
 * with reason (NULL = a default) for failures and cancellations; its webhook follows.
 * F3_ENOTFOUND for no such job, F3_ECONFLICT when it has already ended, F3_EINVAL
 * for another state. */
int sp_sim_end_job(sp_sim *s, int64_t job_id, sp_job_state how, const char *reason, err *e);

/* Webhook delivery faults: drop / duplicate each delivery with these probabilities
 * (0..1), and drop / duplicate the next n deliveries for certain (0 = none). A
 * negative rate or count leaves that setting as it is. */
void sp_sim_delivery_faults(sp_sim *s, double drop_rate, double duplicate_rate, int drop_next,
                            int duplicate_next);

/* Holds webhook deliveries (hold = true) or releases them (false); reverse = true
 * releases the held ones newest first, to test out-of-order arrival. */
void sp_sim_hold_deliveries(sp_sim *s, bool hold, bool reverse);

/* Waits until the queue is empty, no print is ongoing and no delivery is pending, for
 * at most timeout_ms. 0, or F3_EBUSY at the bound. */
int sp_sim_wait_idle(sp_sim *s, long timeout_ms);

/* Forgets queue, jobs, webhooks except the start-up one, deliveries and faults; printers
 * go back idle and unpaused-as-started. */
void sp_sim_reset(sp_sim *s);

#endif
