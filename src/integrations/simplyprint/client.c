/*
 * client.c - SimplyPrint REST API calls over the shared HTTP client (integrations
 * spec §2.1-2.6).
 *
 * Builds {api_url}/{company_id}/{endpoint} URLs, adds X-API-KEY, reads SimplyPrint's
 * envelope ({"status": bool, "message": ...} next to the payload keys) and turns
 * answers into the structs of client.h, tolerating the points the spec marks
 * UNCONFIRMED. It never retries, never sleeps and never logs or reports the key.
 */
#include "integrations/simplyprint/client.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/str.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define URL_MAX           4096
#define COMPANY_ID_MAX    20
#define PRINTER_PAGES_MAX 1000 /* a server that never ends its listing is cut off here */

struct sp_client {
    char *base;       /* "{api_url}/{company_id}", no trailing slash */
    char *key_header; /* "X-API-KEY: <key>"; wiped when freed */
    long timeout_ms;
    bool delete_with_get;
};

/* ---- client ------------------------------------------------------------------------- */

static bool digits_only(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isdigit((unsigned char)s[n]) || n >= max)
            return false;
    return n > 0;
}

/* True for http(s)://host... with a host and no spaces or control characters. */
static bool api_url_valid(const char *u)
{
    const char *host = str_starts_with(u, "http://")    ? u + 7
                       : str_starts_with(u, "https://") ? u + 8
                                                        : NULL;
    if (!host || !*host || *host == '/')
        return false;
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' || (unsigned char)*p == 0x7f)
            return false;
    return true;
}

/* The key goes into a header line: no CR/LF or other control characters. */
static bool api_key_valid(const char *k)
{
    for (const char *p = k; *p; p++)
        if ((unsigned char)*p < ' ' || (unsigned char)*p == 0x7f)
            return false;
    return *k != '\0';
}

void sp_client_free(sp_client *c)
{
    if (!c)
        return;
    free(c->base);
    if (c->key_header) {
        crypto_wipe(c->key_header, strlen(c->key_header));
        free(c->key_header);
    }
    free(c);
}

sp_client *sp_client_new(const sp_client_opts *o, err *e)
{
    const char *url = o && o->api_url && *o->api_url ? o->api_url : SP_DEFAULT_API_URL;
    if (!o || !o->company_id || !digits_only(o->company_id, COMPANY_ID_MAX)) {
        err_set(e, F3_EINVAL, "SIMPLYPRINT_COMPANY_ID: must be the organisation's numeric id");
        return NULL;
    }
    if (!o->api_key || !api_key_valid(o->api_key)) {
        err_set(e, F3_EINVAL, "SIMPLYPRINT_API_KEY: not set or not a usable key");
        return NULL;
    }
    if (!api_url_valid(url)) {
        err_set(e, F3_EINVAL, "SIMPLYPRINT_API_URL: must be an http:// or https:// URL");
        return NULL;
    }
    sp_client *c = calloc(1, sizeof *c);
    buf base, key;
    buf_init(&base, URL_MAX);
    buf_init(&key, 4096);
    if (!c) {
        err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    if (buf_puts(&base, url)) {
        err_set(e, F3_EINVAL, "SIMPLYPRINT_API_URL: too long");
        goto fail;
    }
    while (base.len && base.data[base.len - 1] == '/')
        base.data[--base.len] = '\0';
    if (buf_printf(&base, "/%s", o->company_id) || buf_printf(&key, "X-API-KEY: %s", o->api_key)) {
        err_set(e, F3_ENOMEM, "out of memory");
        goto fail;
    }
    c->base = buf_detach(&base);
    c->key_header = buf_detach(&key);
    c->timeout_ms = o->timeout_ms;
    c->delete_with_get = o->delete_with_get;
    if (!c->base || !c->key_header) {
        err_set(e, F3_ENOMEM, "out of memory");
        goto fail;
    }
    goto out;
fail:
    sp_client_free(c);
    c = NULL;
out:
    if (key.data)
        crypto_wipe(key.data, key.len);
    buf_free(&key);
    buf_free(&base);
    return c;
}

/* ---- tolerant readers of SimplyPrint's JSON --------------------------------------- */

/* An integer from an integer, a decimal string or an integral real; def otherwise. */
static int64_t jint(const json_t *v, int64_t def)
{
    int64_t n;
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v) && str_to_int64(json_string_value(v), &n) == 0)
        return n;
    if (json_is_real(v) && isfinite(json_real_value(v)) && fabs(json_real_value(v)) < 9e18)
        return (int64_t)json_real_value(v);
    return def;
}

/* Copies a string (or the digits of an integer) into dst; "" for anything else. */
static void jstr(char *dst, size_t n, const json_t *v)
{
    if (json_is_string(v))
        snprintf(dst, n, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(dst, n, "%lld", (long long)json_integer_value(v));
    else
        dst[0] = '\0';
}

/* The first of the keys obj has (not null), or NULL. */
static json_t *jfirst(const json_t *obj, const char *const *keys)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(obj, *keys);
        if (v && !json_is_null(v))
            return v;
    }
    return NULL;
}

/* Unix seconds from an integer, a digit string or an ISO-8601 text; 0 when unknown. */
static int64_t jtime(const json_t *v)
{
    int64_t ms;
    if (json_is_string(v) && clock_parse_iso(json_string_value(v), &ms) == 0)
        return ms / 1000;
    int64_t s = jint(v, 0);
    return s > 0 ? s : 0;
}

static void lower_copy(char *dst, size_t n, const json_t *v)
{
    jstr(dst, n, v);
    str_lower(dst);
}

/* ---- one call ------------------------------------------------------------------------ */

static void call_reset(sp_call *call)
{
    memset(call, 0, sizeof *call);
    call->retry_after_ms = -1;
    call->failure = HTTP_PERMANENT;
}

/* SimplyPrint's "message" of a JSON text, if it has one. */
static void message_from_text(const char *text, size_t len, char *out, size_t n)
{
    json_t *doc = NULL;
    if (len == 0 || json_parse(text, len, &doc, NULL) != 0)
        return;
    const char *m = json_string_value(json_object_get(doc, "message"));
    if (m)
        snprintf(out, n, "%s", m);
    json_decref(doc);
}

/* True when a failure message says the thing asked for does not exist. */
static bool says_not_found(const char *m)
{
    static const char *const phrases[] = {"not found", "not exist",  "doesn't exist",
                                          "no such",   "unknown id", NULL};
    char low[SP_MESSAGE_MAX];
    snprintf(low, sizeof low, "%s", m);
    str_lower(low);
    for (const char *const *p = phrases; *p; p++)
        if (strstr(low, *p))
            return true;
    return false;
}

/*
 * One JSON call to {base}/{endpoint}. On 0, *doc (caller decrefs) is the answer, an
 * object whose "status" is true. HTTP 200 with "status": false is F3_EPERMANENT with
 * SimplyPrint's message; other outcomes as http_client_json(). call is always filled.
 */
static int api_call(sp_client *c, const char *method, const char *endpoint, const json_t *body,
                    json_t **doc, sp_call *call, err *e)
{
    buf url;
    buf_init(&url, URL_MAX);
    http_client_response rs;
    memset(&rs, 0, sizeof rs);
    rs.retry_after_ms = -1;
    call_reset(call);
    *doc = NULL;
    int rc;
    if (buf_printf(&url, "%s/%s", c->base, endpoint)) {
        rc = err_set(e, F3_EINVAL, "SimplyPrint %s: URL too long", endpoint);
        goto out;
    }
    const char *headers[] = {c->key_header, NULL};
    rc = http_client_json(method, buf_cstr(&url), headers, body, c->timeout_ms, doc, &rs, e);
    call->status = rs.status;
    call->failure = rs.failure;
    call->retry_after_ms = rs.retry_after_ms;
    if (rs.status == 429 && call->retry_after_ms < 0)
        call->retry_after_ms = SP_DEFAULT_RETRY_MS;
    if (rc && call->failure == HTTP_OK) /* refused before sending (bad URL, no memory) */
        call->failure = rc == F3_ETRANSIENT ? HTTP_TRANSIENT : HTTP_PERMANENT;
    if (rc) {
        message_from_text(buf_cstr(&rs.body), rs.body.len, call->message, sizeof call->message);
        if (call->message[0] && e) {
            char seen[ERR_MSG_MAX];
            snprintf(seen, sizeof seen, "%s", e->msg);
            err_set(e, rc, "%s (SimplyPrint: %s)", seen, call->message);
        }
        goto out;
    }
    json_t *status = json_object_get(*doc, "status");
    if (!status)
        status = json_object_get(*doc, "success"); /* queue/SetOrder's spelling */
    if (!json_is_object(*doc) || !json_is_boolean(status)) {
        call->failure = HTTP_PERMANENT;
        rc = err_set(e, F3_EPERMANENT, "SimplyPrint %s: answer without a \"status\"", endpoint);
        goto out;
    }
    const char *m = json_string_value(json_object_get(*doc, "message"));
    if (m)
        snprintf(call->message, sizeof call->message, "%s", m);
    if (json_is_false(status)) {
        call->failure = HTTP_PERMANENT;
        rc = err_set(e, F3_EPERMANENT, "SimplyPrint %s refused: %s", endpoint,
                     m && *m ? m : "no reason given");
    }
out:
    if (rc) {
        json_decref(*doc);
        *doc = NULL;
    }
    http_client_response_free(&rs);
    buf_free(&url);
    return rc;
}

/* Turns a failure that means "no such thing" (404, or status:false saying so) into
 * F3_ENOTFOUND. */
static int not_found_or(int rc, const sp_call *call, const char *what, err *e)
{
    if (rc == F3_EPERMANENT &&
        (call->status == 404 || (call->status == 200 && says_not_found(call->message))))
        return err_set(e, F3_ENOTFOUND, "SimplyPrint: %s not found", what);
    return rc;
}

int sp_account_test(sp_client *c, sp_call *call, err *e)
{
    sp_call local = {.status = 0};
    json_t *doc = NULL;
    int rc = api_call(c, "GET", "account/Test", NULL, &doc, call ? call : &local, e);
    json_decref(doc);
    return rc;
}

/* ---- print queue --------------------------------------------------------------------- */

static json_t *add_item_body(const sp_queue_add *rq, err *e)
{
    bool fs = rq->filesystem_id && *rq->filesystem_id;
    bool api = rq->file_id && *rq->file_id;
    if (fs == api) {
        err_set(e, F3_EINVAL, "a queue item needs exactly one of a library file or an API file");
        return NULL;
    }
    if (rq->amount < 1) {
        err_set(e, F3_EINVAL, "a queue item needs an amount of at least 1, got %d", rq->amount);
        return NULL;
    }
    if (rq->group < 0) {
        err_set(e, F3_EINVAL, "queue group id must not be negative");
        return NULL;
    }
    if ((rq->custom_field_id == NULL) != (rq->custom_field_value == NULL)) {
        err_set(e, F3_EINVAL, "a custom field needs both an id and a value");
        return NULL;
    }
    json_t *b = json_pack("{s:s,s:i}", fs ? "filesystem" : "fileId",
                          fs ? rq->filesystem_id : rq->file_id, "amount", rq->amount);
    if (b && rq->group > 0)
        json_object_set_new(b, "group", json_integer(rq->group));
    if (b && rq->custom_field_id)
        json_object_set_new(b, "custom_fields",
                            json_pack("[{s:s,s:{s:s}}]", "customFieldId", rq->custom_field_id,
                                      "value", "value", rq->custom_field_value));
    if (!b)
        err_set(e, F3_EINVAL, "queue item fields must be UTF-8 text");
    return b;
}

int sp_queue_add_item(sp_client *c, const sp_queue_add *rq, int64_t *created_id, sp_call *call,
                      err *e)
{
    sp_call local = {.status = 0};
    call = call ? call : &local;
    call_reset(call);
    *created_id = 0;
    json_t *body = add_item_body(rq, e), *doc = NULL;
    if (!body)
        return e ? e->code : F3_EINVAL;
    int rc = api_call(c, "POST", "queue/AddItem", body, &doc, call, e);
    if (rc == 0) {
        int64_t id = jint(json_object_get(doc, "created_id"), 0);
        if (id <= 0)
            rc =
                err_set(e, F3_EPERMANENT, "SimplyPrint queue/AddItem: no created_id in the answer");
        else
            *created_id = id;
    }
    json_decref(body);
    json_decref(doc);
    return rc;
}

static void queue_item_from_json(const json_t *q, sp_queue_item *out)
{
    static const char *const fs_keys[] = {"filesystem_id", "filesystem", NULL};
    static const char *const name_keys[] = {"filename", "name", "file", NULL};
    memset(out, 0, sizeof *out);
    out->id = jint(json_object_get(q, "id"), 0);
    jstr(out->filename, sizeof out->filename, jfirst(q, name_keys));
    jstr(out->filesystem_id, sizeof out->filesystem_id, jfirst(q, fs_keys));
    json_t *g = json_object_get(q, "group");
    out->group = json_is_object(g) ? jint(json_object_get(g, "id"), 0) : jint(g, 0);
    out->left = (int)jint(json_object_get(q, "left"), 0);
    out->printed = (int)jint(json_object_get(q, "printed"), 0);
}

int sp_queue_get_item(sp_client *c, int64_t id, sp_queue_item *out, sp_call *call, err *e)
{
    static const char *const item_keys[] = {"queue", "item", NULL};
    sp_call local = {.status = 0};
    call = call ? call : &local;
    call_reset(call);
    memset(out, 0, sizeof *out);
    if (id <= 0)
        return err_set(e, F3_EINVAL, "queue item id must be positive");
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "queue/GetItem?id=%lld", (long long)id);
    json_t *doc = NULL;
    int rc = api_call(c, "GET", endpoint, NULL, &doc, call, e);
    char what[48];
    snprintf(what, sizeof what, "queue item %lld", (long long)id);
    rc = not_found_or(rc, call, what, e);
    if (rc == 0) {
        json_t *q = jfirst(doc, item_keys);
        if (!json_is_object(q))
            rc = err_set(e, F3_EPERMANENT, "SimplyPrint queue/GetItem: no item in the answer");
        else
            queue_item_from_json(q, out);
    }
    json_decref(doc);
    return rc;
}

/* Appends the objects of array a to *out (*n of them so far). */
static int queue_items_append(const json_t *a, sp_queue_item **out, size_t *n, err *e)
{
    size_t more = json_array_size(a);
    if (more == 0)
        return 0;
    sp_queue_item *all = realloc(*out, (*n + more) * sizeof *all);
    if (!all)
        return err_set(e, F3_ENOMEM, "out of memory");
    *out = all;
    for (size_t i = 0; i < more; i++)
        if (json_is_object(json_array_get(a, i)))
            queue_item_from_json(json_array_get(a, i), &all[(*n)++]);
    return 0;
}

int sp_queue_list(sp_client *c, bool include_done, sp_queue_item **out, size_t *n, sp_call *call,
                  err *e)
{
    static const char *const item_keys[] = {"queue", "item", NULL};
    sp_call local = {.status = 0};
    call = call ? call : &local;
    *out = NULL;
    *n = 0;
    json_t *doc = NULL;
    int rc = api_call(c, "GET", include_done ? "queue/GetItems?include_done=1" : "queue/GetItems",
                      NULL, &doc, call, e);
    json_t *q = rc == 0 ? jfirst(doc, item_keys) : NULL;
    json_t *items = json_object_get(q, "items");
    if (rc == 0 && !json_is_array(items))
        rc = err_set(e, F3_EPERMANENT, "SimplyPrint queue/GetItems: no items in the answer");
    if (rc == 0)
        rc = queue_items_append(items, out, n, e);
    if (rc == 0 && include_done)
        rc = queue_items_append(json_object_get(q, "done_items"), out, n, e);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    json_decref(doc);
    return rc;
}

int sp_queue_delete_item(sp_client *c, int64_t id, sp_call *call, err *e)
{
    sp_call local = {.status = 0};
    call = call ? call : &local;
    call_reset(call);
    if (id <= 0)
        return err_set(e, F3_EINVAL, "queue item id must be positive");
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "queue/DeleteItem?job=%lld", (long long)id);
    json_t *doc = NULL;
    int rc = api_call(c, c->delete_with_get ? "GET" : "POST", endpoint, NULL, &doc, call, e);
    json_decref(doc);
    if (not_found_or(rc, call, "queue item", NULL) == F3_ENOTFOUND) {
        err_clear(e);
        return 0; /* already gone: removing is idempotent */
    }
    return rc;
}

/* ---- printers ------------------------------------------------------------------------ */

bool sp_printer_state_busy(const char *state)
{
    static const char *const busy[] = {"printing", "paused",     "pausing",
                                       "resuming", "cancelling", NULL};
    for (const char *const *b = busy; state && *b; b++)
        if (strcasecmp(state, *b) == 0)
            return true;
    return false;
}

static void printer_from_json(const json_t *row, sp_printer *p)
{
    memset(p, 0, sizeof *p);
    json_t *pr = json_object_get(row, "printer");
    if (!json_is_object(pr))
        pr = (json_t *)row; /* a flat row: the fields sit next to the id */
    p->id = jint(json_object_get(row, "id"), 0);
    jstr(p->name, sizeof p->name, json_object_get(pr, "name"));
    lower_copy(p->state, sizeof p->state, json_object_get(pr, "state"));
    json_t *online = json_object_get(pr, "online");
    p->online = json_is_boolean(online) ? json_is_true(online)
                                        : p->state[0] && strcmp(p->state, "offline") != 0;
    json_t *job = json_object_get(row, "job");
    if (json_is_object(job)) {
        p->job_id = jint(json_object_get(job, "id"), 0);
        jstr(p->job_uid, sizeof p->job_uid, json_object_get(job, "uid"));
        lower_copy(p->job_state, sizeof p->job_state, json_object_get(job, "state"));
        p->percentage = (int)jint(json_object_get(job, "percentage"), 0);
    }
}

/* Appends the rows of one printers/Get page to *list. */
static int printers_append(const json_t *rows, sp_printer **list, size_t *n, size_t *cap, err *e)
{
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        if (!json_is_object(row))
            return err_set(e, F3_EPERMANENT, "SimplyPrint printers/Get: a row is not an object");
        if (*n == *cap) {
            size_t ncap = *cap ? *cap * 2 : 16;
            sp_printer *grown = realloc(*list, ncap * sizeof *grown);
            if (!grown)
                return err_set(e, F3_ENOMEM, "out of memory");
            *list = grown;
            *cap = ncap;
        }
        printer_from_json(row, &(*list)[(*n)++]);
    }
    return 0;
}

int sp_printers_list(sp_client *c, sp_printer **out, size_t *n, sp_call *call, err *e)
{
    sp_call local = {.status = 0};
    call = call ? call : &local;
    call_reset(call);
    *out = NULL;
    *n = 0;
    sp_printer *list = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    for (int page = 1; page <= PRINTER_PAGES_MAX; page++) {
        json_t *body = json_pack("{s:i,s:i}", "page", page, "page_size", SP_PAGE_SIZE_MAX);
        json_t *doc = NULL;
        rc = body ? api_call(c, "POST", "printers/Get", body, &doc, call, e)
                  : err_set(e, F3_ENOMEM, "out of memory");
        json_decref(body);
        json_t *rows = rc ? NULL : json_object_get(doc, "data");
        if (rc == 0 && json_is_object(rows)) {
            json_t *one = json_array();
            json_array_append(one, rows);
            rc = printers_append(one, &list, &count, &cap, e);
            json_decref(one);
            json_decref(doc);
            break;
        }
        if (rc == 0 && !json_is_array(rows))
            rc = err_set(e, F3_EPERMANENT, "SimplyPrint printers/Get: no printer list");
        if (rc == 0)
            rc = printers_append(rows, &list, &count, &cap, e);
        int64_t pages = rc ? 0 : jint(json_object_get(doc, "page_amount"), 0);
        bool last = rc || json_array_size(rows) < SP_PAGE_SIZE_MAX || (pages > 0 && page >= pages);
        json_decref(doc);
        if (last)
            break;
    }
    if (rc) {
        free(list);
        return rc;
    }
    *out = list;
    *n = count;
    return 0;
}

/* ---- print jobs ---------------------------------------------------------------------- */

sp_job_state sp_job_state_parse(const char *s)
{
    static const struct {
        const char *name;
        sp_job_state state;
    } names[] = {
        {"ongoing", SP_JOB_ONGOING},    {"printing", SP_JOB_ONGOING},
        {"started", SP_JOB_ONGOING},    {"paused", SP_JOB_ONGOING},
        {"resumed", SP_JOB_ONGOING},    {"done", SP_JOB_DONE},
        {"finished", SP_JOB_DONE},      {"completed", SP_JOB_DONE},
        {"failed", SP_JOB_FAILED},      {"cancelled", SP_JOB_CANCELLED},
        {"canceled", SP_JOB_CANCELLED},
    };
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i].name) == 0)
            return names[i].state;
    return SP_JOB_UNKNOWN;
}

const char *sp_job_state_name(sp_job_state s)
{
    switch (s) {
    case SP_JOB_ONGOING:
        return "ongoing";
    case SP_JOB_DONE:
        return "done";
    case SP_JOB_FAILED:
        return "failed";
    case SP_JOB_CANCELLED:
        return "cancelled";
    case SP_JOB_UNKNOWN:
        break;
    }
    return "unknown";
}

/* The queue item a job came from: queueItem{id}, queue_item{id}, or a plain id. */
static int64_t job_queue_item(const json_t *j)
{
    static const char *const keys[] = {"queueItem", "queue_item", "queue_item_id", "queueItemId",
                                       NULL};
    json_t *q = jfirst(j, keys);
    return json_is_object(q) ? jint(json_object_get(q, "id"), 0) : jint(q, 0);
}

static void job_from_json(const json_t *j, sp_job *out)
{
    static const char *const state_keys[] = {"status", "state", NULL};
    static const char *const file_keys[] = {"filename", "file", "name", NULL};
    static const char *const pct_keys[] = {"currentPercentage", "percentage", NULL};
    static const char *const start_keys[] = {"startDate", "started", NULL};
    static const char *const end_keys[] = {"endDate", "ended", NULL};
    memset(out, 0, sizeof *out);
    out->id = jint(json_object_get(j, "id"), 0);
    jstr(out->uid, sizeof out->uid, json_object_get(j, "uid"));
    char state[32];
    jstr(state, sizeof state, jfirst(j, state_keys));
    out->state = sp_job_state_parse(state);
    json_t *file = jfirst(j, file_keys);
    jstr(out->filename, sizeof out->filename,
         json_is_object(file) ? json_object_get(file, "name") : file);
    json_t *pr = json_object_get(j, "printer");
    if (json_is_object(pr)) {
        out->printer_id = jint(json_object_get(pr, "id"), 0);
        jstr(out->printer_name, sizeof out->printer_name, json_object_get(pr, "name"));
    } else if (json_is_string(pr) && str_to_int64(json_string_value(pr), &out->printer_id) != 0) {
        jstr(out->printer_name, sizeof out->printer_name, pr);
    } else {
        out->printer_id = jint(pr, 0);
    }
    if (!out->printer_id)
        out->printer_id = jint(json_object_get(j, "printer_id"), 0);
    out->queue_item_id = job_queue_item(j);
    out->percentage = (int)jint(jfirst(j, pct_keys), 0);
    out->started_s = jtime(jfirst(j, start_keys));
    out->ended_s = jtime(jfirst(j, end_keys));
    json_t *why = json_object_get(j, "failedReason");
    json_t *cancel = json_object_get(j, "cancelInfo");
    if (!json_is_string(why) && json_is_object(cancel))
        why = json_object_get(cancel, "reason");
    if (!json_is_string(why))
        why = json_object_get(j, "cancelReasonType");
    jstr(out->reason, sizeof out->reason, why);
}

int sp_jobs_list(sp_client *c, const sp_jobs_query *q, sp_job **out, size_t *n, int *page_amount,
                 sp_call *call, err *e)
{
    sp_call local = {.status = 0};
    call = call ? call : &local;
    call_reset(call);
    *out = NULL;
    *n = 0;
    *page_amount = 0;
    int page = q && q->page ? q->page : 1;
    int size = q && q->page_size ? q->page_size : SP_PAGE_SIZE_MAX;
    if (page < 1)
        return err_set(e, F3_EINVAL, "page must be at least 1");
    if (size < 1 || size > SP_PAGE_SIZE_MAX)
        return err_set(e, F3_EINVAL, "page size must be between 1 and %d", SP_PAGE_SIZE_MAX);
    if (q && (q->start_s < 0 || q->end_s < 0 || (q->end_s && q->start_s > q->end_s)))
        return err_set(e, F3_EINVAL, "job history time bounds must be ordered unix seconds");
    json_t *body = json_pack("{s:i,s:i}", "page", page, "page_size", size), *doc = NULL;
    if (!body)
        return err_set(e, F3_ENOMEM, "out of memory");
    if (q && q->start_s)
        json_object_set_new(body, "start_date", json_integer(q->start_s));
    if (q && q->end_s)
        json_object_set_new(body, "end_date", json_integer(q->end_s));
    int rc = api_call(c, "POST", "jobs/GetPaginatedPrintJobs", body, &doc, call, e);
    json_decref(body);
    json_t *rows = rc ? NULL : json_object_get(doc, "data");
    if (rc == 0 && !json_is_array(rows))
        rc = err_set(e, F3_EPERMANENT, "SimplyPrint jobs/GetPaginatedPrintJobs: no job list");
    sp_job *list = NULL;
    if (rc == 0 && json_array_size(rows) > 0) {
        list = calloc(json_array_size(rows), sizeof *list);
        if (!list)
            rc = err_set(e, F3_ENOMEM, "out of memory");
    }
    size_t i;
    json_t *row;
    json_array_foreach(rc == 0 ? rows : NULL, i, row)
    {
        if (!json_is_object(row)) {
            rc = err_set(e, F3_EPERMANENT,
                         "SimplyPrint jobs/GetPaginatedPrintJobs: row %zu is not an object", i);
            break;
        }
        job_from_json(row, &list[i]);
    }
    if (rc == 0) {
        int64_t pages = jint(json_object_get(doc, "page_amount"), 1);
        *page_amount = pages < 0 ? 0 : pages > 1000000 ? 1000000 : (int)pages;
        *out = list;
        *n = json_array_size(rows);
    } else {
        free(list);
    }
    json_decref(doc);
    return rc;
}

static bool uid_valid(const char *uid)
{
    size_t n = 0;
    for (; uid && uid[n]; n++)
        if (!isalnum((unsigned char)uid[n]) && uid[n] != '-' && uid[n] != '_')
            return false;
    return n > 0 && n < 64;
}

int sp_job_get(sp_client *c, const char *uid, sp_job *out, sp_call *call, err *e)
{
    sp_call local = {.status = 0};
    call = call ? call : &local;
    call_reset(call);
    memset(out, 0, sizeof *out);
    if (!uid_valid(uid))
        return err_set(e, F3_EINVAL, "print job uid must be 1-63 letters, digits, '-' or '_'");
    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "jobs/GetDetails?id=%s", uid);
    json_t *doc = NULL;
    int rc = api_call(c, "GET", endpoint, NULL, &doc, call, e);
    char what[96];
    snprintf(what, sizeof what, "print job %s", uid);
    rc = not_found_or(rc, call, what, e);
    if (rc == 0) {
        json_t *j = json_object_get(doc, "job");
        if (!json_is_object(j)) {
            rc = err_set(e, F3_EPERMANENT, "SimplyPrint jobs/GetDetails: no job in the answer");
        } else {
            job_from_json(j, out);
            if (!out->uid[0])
                snprintf(out->uid, sizeof out->uid, "%s", uid);
        }
    }
    json_decref(doc);
    return rc;
}
