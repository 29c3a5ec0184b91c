/*
 * sim_internal.h - state shared by the files of the SimplyPrint simulator.
 *
 * Only the files of sim/simplyprint/ include this. Every field below `lock` is guarded
 * by it; API and control handlers run on the HTTP server's threads, the printers on the
 * farm thread (farm.c), webhook deliveries on the delivery thread (delivery.c). No
 * thread holds the lock while it sleeps or sends.
 */
#ifndef F3_SIM_SIMPLYPRINT_SIM_INTERNAL_H
#define F3_SIM_SIMPLYPRINT_SIM_INTERNAL_H

#include "core/uuid.h"
#include "http/request.h"
#include "http/response.h"
#include "http/router.h"
#include "http/server.h"
#include "integrations/simplyprint/webhook.h"
#include "sim/simplyprint/sim.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define SPSIM_PRINTERS_MAX   64
#define SPSIM_JOBS_MAX       10000 /* oldest ended jobs are forgotten beyond this */
#define SPSIM_DONE_ITEMS_MAX 1000
#define SPSIM_DELIVERIES_MAX 5000

typedef struct spsim_item {
    int64_t id;
    char filename[256];
    char filesystem_id[128];
    char file_id[128];
    int64_t group;
    int amount, left, printed;
    int64_t created_s;
    int64_t done_s;        /* when the last copy ended; 0 while still in the queue */
    json_t *custom_fields; /* as given to AddItem, or NULL */
} spsim_item;

typedef struct spsim_job {
    int64_t id;
    char uid[UUID_STR_LEN];
    int64_t printer_id;
    int64_t queue_item_id;
    char filename[256];
    sp_job_state state;
    int64_t started_s, ended_s; /* unix seconds */
    int64_t started_ms, due_ms; /* clock_mono_ms: start and planned end */
    int end_percentage;         /* progress when it ended */
    char reason[128];           /* why it failed or was cancelled */
    json_t *custom_fields;      /* the queue item's, or NULL */
} spsim_job;

typedef struct spsim_printer {
    int64_t id;
    char name[32];
    bool paused;
    int64_t job_id; /* the job it prints; 0 = idle */
} spsim_printer;

typedef struct spsim_webhook {
    int64_t id;
    char name[128];
    char url[1024];
    char secret[SP_WEBHOOK_SECRET_MAX + 1]; /* "" = none */
    bool enabled;
    json_t *events; /* array of event names */
} spsim_webhook;

typedef enum spsim_delivery_state {
    SPSIM_PENDING = 0,
    SPSIM_DELIVERED,
    SPSIM_FAILED,
    SPSIM_DROPPED,
} spsim_delivery_state;

typedef struct spsim_delivery {
    int64_t seq;
    int64_t webhook_id;
    char event[SP_EVENT_MAX];
    int64_t job_id;
    bool duplicate; /* an extra copy injected by a fault */
    char *url, *secret, *body;
    int attempts;
    int64_t next_ms;
    long last_status; /* of the latest attempt; 0 = no answer */
    spsim_delivery_state state;
    bool in_flight; /* a courier is sending it now */
} spsim_delivery;

typedef struct spsim_fault {
    int count;          /* API requests still to fail */
    int status;         /* 429, 5xx; 0 for a stall */
    long retry_after_s; /* for 429 and 503 */
    long delay_ms;      /* for a stall */
} spsim_fault;

/* One delivery thread; `job_id` is the job whose delivery it is sending (0 = none), so
 * that no other courier sends a later event of the same job meanwhile. */
typedef struct spsim_courier {
    sp_sim *s;
    pthread_t thread;
    bool started;
    int64_t job_id;
} spsim_courier;

struct sp_sim {
    /* fixed after start */
    char company_id[24];
    char *api_key;
    char *start_url, *start_secret; /* the start-up webhook, restored by a reset; NULL = none */
    sp_sim_opts opts;               /* its strings are not kept: use the copies */
    http_router *router;
    http_server *server;
    pthread_t farm;
    bool farm_started;
    spsim_courier couriers[SP_SIM_COURIERS_MAX];
    size_t ncouriers;

    pthread_mutex_t lock;
    pthread_cond_t farm_wake, courier_wake, idle;
    bool stopping;
    uint64_t rng;
    long latency_ms;
    long print_ms;
    double fail_rate, cancel_rate;
    long retry_base_ms;
    int max_retries;
    spsim_fault fault;
    double drop_rate, duplicate_rate;
    int drop_next, duplicate_next;
    bool hold;
    spsim_item *items;
    size_t nitems, items_cap;
    spsim_job *jobs;
    size_t njobs, jobs_cap;
    spsim_printer printers[SPSIM_PRINTERS_MAX];
    size_t nprinters;
    spsim_webhook *webhooks;
    size_t nwebhooks, webhooks_cap;
    spsim_delivery *deliveries;
    size_t ndeliveries, deliveries_cap;
    int64_t next_item_id, next_job_id, next_webhook_id, next_seq;
};

/* ---- sim.c ------------------------------------------------------------------------------ */

/* Grows *arr (of elements of `size` bytes, capacity *cap) to hold one more than n.
 * 0 or F3_ENOMEM. */
int spsim_grow(void **arr, size_t *cap, size_t n, size_t size);

/* A uniform random number in [0, 1). Lock held. */
double spsim_random(sp_sim *s);

/* SimplyPrint's answer: {"status": ok, "message": message|null} plus the members of
 * extra (stolen; may be NULL), with HTTP status http. */
int spsim_answer(http_response *res, int http, bool ok, const char *message, json_t *extra);

/* ---- api.c ------------------------------------------------------------------------------ */

int spsim_api_add_routes(sp_sim *s, err *e);

/* ---- farm.c ----------------------------------------------------------------------------- */

/* The farm thread's body: printers take queue items and finish their jobs. */
void *spsim_farm_worker(void *arg);

/* Ends job j now as `how`; frees its printer, settles its queue item, queues its
 * webhook. Lock held. */
void spsim_end_job(sp_sim *s, spsim_job *j, sp_job_state how, const char *reason);

spsim_job *spsim_find_job(sp_sim *s, int64_t id);
spsim_item *spsim_find_item(sp_sim *s, int64_t id);

/* Percent printed of a job, now. Lock held. */
int spsim_job_percentage(const sp_sim *s, const spsim_job *j);

/* JSON views (new references). Lock held. */
json_t *spsim_item_json(const spsim_item *it);
json_t *spsim_job_row_json(const sp_sim *s, const spsim_job *j);    /* job history rows */
json_t *spsim_job_detail_json(const sp_sim *s, const spsim_job *j); /* GetDetails */
json_t *spsim_printer_json(const sp_sim *s, const spsim_printer *p);
const char *spsim_job_status_name(sp_job_state st);

/* ---- delivery.c ------------------------------------------------------------------------- */

/* Queues `event` about job j to every enabled webhook subscribed to it, applying the
 * drop / duplicate faults. Lock held. */
void spsim_deliver_job_event(sp_sim *s, const char *event, const spsim_job *j);

/* Queues a "test" delivery to webhook w. Lock held. */
void spsim_deliver_test(sp_sim *s, const spsim_webhook *w);

json_t *spsim_deliveries_json(const sp_sim *s);
json_t *spsim_webhook_json(const spsim_webhook *w);
size_t spsim_pending_deliveries(const sp_sim *s);
void spsim_deliveries_clear(sp_sim *s);
void spsim_webhooks_clear(sp_sim *s);

/* The delivery thread's body. */
void *spsim_delivery_worker(void *arg);

#endif
