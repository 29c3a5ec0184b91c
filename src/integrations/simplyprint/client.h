/*
 * client.h - the SimplyPrint REST API client (integrations spec §2.1-2.6): check the
 * credentials, add a file to the print queue, read and remove a queue item, list the
 * printers and their states, list and read print jobs (the job history).
 *
 * URLs are {api_url}/{company_id}/{endpoint}; api_url is https://api.simplyprint.io
 * unless configured (SIMPLYPRINT_API_URL, the simulator). Authentication is the
 * X-API-KEY header; the key is never logged or put in a message.
 *
 * Every call is one HTTP request (src/http/client.h), classified once: transient
 * (timeouts, connection errors, 429, 5xx; sp_call.retry_after_ms says when to try
 * again) or permanent (other 4xx, and HTTP 200 answers with "status": false, which is
 * how SimplyPrint reports logical failures; sp_call.message carries its message). The
 * client never retries and never sleeps: the caller's queue does that. Points the spec
 * marks UNCONFIRMED are tolerated: a queue item is read from "queue" or "item", a done
 * job state may be "done", "finished" or "completed", the DeleteItem method is
 * configurable. A client is immutable after creation and thread-safe.
 */
#ifndef F3_INTEGRATIONS_SIMPLYPRINT_CLIENT_H
#define F3_INTEGRATIONS_SIMPLYPRINT_CLIENT_H

#include "core/err.h"
#include "http/client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_DEFAULT_API_URL  "https://api.simplyprint.io"
#define SP_DEFAULT_RETRY_MS 1000L /* a 429 without Retry-After */
#define SP_PAGE_SIZE_MAX    100
#define SP_MESSAGE_MAX      512

typedef struct sp_client_opts {
    const char *api_url;    /* NULL = SP_DEFAULT_API_URL; http(s)://host[:port][/prefix] */
    const char *company_id; /* required; digits only */
    const char *api_key;    /* required */
    long timeout_ms;        /* per request; 0 = the HTTP client's default */
    bool delete_with_get;   /* queue/DeleteItem as GET (the docs) instead of POST (n8n) */
} sp_client_opts;

typedef struct sp_client sp_client;

/* What one call saw, for the caller's retry decision and its error message. */
typedef struct sp_call {
    long status;                  /* HTTP status; 0 when no response arrived */
    http_failure failure;         /* HTTP_OK, HTTP_TRANSIENT or HTTP_PERMANENT */
    long retry_after_ms;          /* when to retry (429/503); -1 = no advice */
    char message[SP_MESSAGE_MAX]; /* SimplyPrint's "message" of a failure; "" if none */
} sp_call;

/* A client with copies of o's strings. NULL with e set when o is unusable (no company
 * id or one that is not digits, no key, a malformed URL). Caller frees with
 * sp_client_free(). */
sp_client *sp_client_new(const sp_client_opts *o, err *e);
void sp_client_free(sp_client *c);

/* GET account/Test: 0 when the key is valid for the company; F3_EPERMANENT when it is
 * not (401/403 or "status": false); F3_ETRANSIENT as every call. */
int sp_account_test(sp_client *c, sp_call *call, err *e);

/* ---- print queue ------------------------------------------------------------------------ */

typedef struct sp_queue_add {
    const char *filesystem_id; /* library file id - or - */
    const char *file_id;       /* API file id; exactly one of the two */
    int amount;                /* copies, >= 1 */
    int64_t group;             /* queue group id; 0 = none */
    /* Stamped into the item so a person in the SimplyPrint panel sees where it came
     * from (and so reconciliation can read it back); NULL = not sent. */
    const char *custom_field_id;
    const char *custom_field_value;
} sp_queue_add;

/* POST queue/AddItem; *created_id receives the new queue item's id. F3_EINVAL for a
 * bad request (no file, amount < 1), else the call's codes. */
int sp_queue_add_item(sp_client *c, const sp_queue_add *rq, int64_t *created_id, sp_call *call,
                      err *e);

typedef struct sp_queue_item {
    int64_t id;
    char filename[256];
    char filesystem_id[128];
    int64_t group;
    int left;    /* copies still to print */
    int printed; /* copies printed */
} sp_queue_item;

/* GET queue/GetItem?id=: F3_ENOTFOUND when the item is not (or no longer) in the queue
 * (404, or "status": false saying so), else the call's codes. */
int sp_queue_get_item(sp_client *c, int64_t id, sp_queue_item *out, sp_call *call, err *e);

/* GET queue/GetItems: the items waiting in the queue, and with include_done the done ones
 * SimplyPrint still lists (left = 0). Caller frees *out with free(). */
int sp_queue_list(sp_client *c, bool include_done, sp_queue_item **out, size_t *n, sp_call *call,
                  err *e);

/* queue/DeleteItem?job=: 0 also when the item was already gone (F3_ENOTFOUND is never
 * returned: removing is idempotent). */
int sp_queue_delete_item(sp_client *c, int64_t id, sp_call *call, err *e);

/* ---- printers --------------------------------------------------------------------------- */

typedef struct sp_printer {
    int64_t id;
    char name[128];
    char state[32]; /* lower-cased: operational, printing, paused, ..., offline */
    bool online;
    int64_t job_id;     /* the current job's id; 0 = none */
    char job_uid[64];   /* "" = none */
    char job_state[32]; /* lower-cased; "" = none */
    int percentage;     /* of the current job; 0 = none */
} sp_printer;

/* POST printers/Get, every page. Caller frees *out with free(). */
int sp_printers_list(sp_client *c, sp_printer **out, size_t *n, sp_call *call, err *e);

/* True for the "busy" states of the spec (printing, paused, pausing, resuming,
 * cancelling), compared case-insensitively. */
bool sp_printer_state_busy(const char *state);

/* ---- print jobs (history) --------------------------------------------------------------- */

/* A job's state, normalised from the provider's strings. */
typedef enum sp_job_state {
    SP_JOB_UNKNOWN = 0,
    SP_JOB_ONGOING,   /* "ongoing", "printing", "started", "paused", "resumed" */
    SP_JOB_DONE,      /* "done", "finished", "completed" */
    SP_JOB_FAILED,    /* "failed" */
    SP_JOB_CANCELLED, /* "cancelled", "canceled" */
} sp_job_state;

sp_job_state sp_job_state_parse(const char *s);
const char *sp_job_state_name(sp_job_state s); /* "ongoing", "done", ... "unknown" */

typedef struct sp_job {
    int64_t id;
    char uid[64];
    sp_job_state state;
    char filename[256];
    int64_t printer_id;
    char printer_name[128];
    int64_t queue_item_id; /* 0 when the answer did not say */
    int percentage;
    int64_t started_s; /* unix seconds; 0 = unknown */
    int64_t ended_s;
    char reason[SP_MESSAGE_MAX]; /* failedReason / cancelInfo.reason; "" if none */
} sp_job;

typedef struct sp_jobs_query {
    int page;        /* >= 1; 0 = 1 */
    int page_size;   /* 1..SP_PAGE_SIZE_MAX; 0 = SP_PAGE_SIZE_MAX */
    int64_t start_s; /* 0 = no bound */
    int64_t end_s;   /* 0 = no bound */
} sp_jobs_query;

/* POST jobs/GetPaginatedPrintJobs, one page. *page_amount = pages in all. Caller frees
 * *out with free(). */
int sp_jobs_list(sp_client *c, const sp_jobs_query *q, sp_job **out, size_t *n, int *page_amount,
                 sp_call *call, err *e);

/* GET jobs/GetDetails?id={uid}. F3_ENOTFOUND when there is no such job. */
int sp_job_get(sp_client *c, const char *uid, sp_job *out, sp_call *call, err *e);

#endif
