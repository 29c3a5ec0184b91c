/*
 * e2e.c - the shared part of the end-to-end scenario tests (see e2e.h): the world of the
 * served binary and the in-process simulators, HTTP calls, polling, and sandbox runs.
 * It drives the platform only from outside (HTTP, simulators, database reads); it never
 * writes business data behind the platform's back.
 */
#include "e2e.h"

#include "support/f3test_bus.h"
#include "support/f3test_db.h"

#include "app/sandbox.h"
#include "core/clock.h"
#include "core/log.h"
#include "http/client.h"
#include "services/gateway/accounts.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define API_VERSION   "2025-10"
#define SHOP_SECRET   "e2e-shopify-app-secret"
#define SHOP_TOKEN    "shpat_e2e_token"
#define SP_COMPANY    "4242"
#define SP_KEY        "e2e-simplyprint-key"
#define SP_HOOK       "e2e-simplyprint-webhook-secret"
#define SC_PUBLIC     "e2e-sendcloud-public"
#define SC_SECRET     "e2e-sendcloud-secret"
#define INTERNAL_KEY  "e2e-internal-key-0123456789abcdef"
#define KEY_HEX       "3f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define ADMIN_EMAIL   "e2e-admin@example.com"
#define ADMIN_PASS    "e2e-admin-password-1"
#define READY_WAIT_MS 30000

/* ---- HTTP ------------------------------------------------------------------------------ */

static long send_raw(const char *method, const char *url, const char *const *headers,
                     const char *body_text, buf *body, char *ctype, size_t ctype_size)
{
    http_client_request rq = {.method = method,
                              .url = url,
                              .headers = headers,
                              .body = body_text,
                              .body_len = body_text ? strlen(body_text) : 0,
                              .content_type = body_text ? "application/json" : NULL,
                              .timeout_ms = 20000};
    http_client_response rs;
    err e;
    err_clear(&e);
    http_client_send(&rq, &rs, &e);
    long status = rs.status;
    if (body)
        buf_append(body, rs.body.data ? rs.body.data : "", rs.body.len);
    if (ctype) {
        const char *t = http_client_header(&rs, "Content-Type");
        snprintf(ctype, ctype_size, "%s", t ? t : "");
    }
    http_client_response_free(&rs);
    return status;
}

static long send_json(const char *method, const char *url, const char *const *headers,
                      const char *body_text, json_t **out)
{
    buf body;
    buf_init(&body, 0);
    long status = send_raw(method, url, headers, body_text, &body, NULL, 0);
    if (out) {
        json_error_t je;
        *out = body.len ? json_loads(buf_cstr(&body), 0, &je) : NULL;
    }
    buf_free(&body);
    return status;
}

long e2e_call(const char *base, const char *method, const char *path, const char *const *headers,
              const char *body_text, json_t **out)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    return send_json(method, url, headers, body_text, out);
}

long e2e_api(e2e_world *w, const char *method, const char *path, const char *body_text,
             json_t **out)
{
    const char *headers[] = {w->cookie, w->origin, NULL};
    return e2e_call(w->base, method, path, headers, body_text, out);
}

long e2e_api_raw(e2e_world *w, const char *method, const char *path, buf *body, char *ctype,
                 size_t ctype_size)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", w->base, path);
    const char *headers[] = {w->cookie, w->origin, NULL};
    return send_raw(method, url, headers, NULL, body, ctype, ctype_size);
}

/* ---- the world --------------------------------------------------------------------------- */

void e2e_world_dump_log(const e2e_world *w)
{
    char *text = f3test_slurp(w->serve.err_path);
    size_t n = strlen(text);
    /* The tail says most; a whole Debug log would drown the test output. */
    fprintf(stderr, "---- platform log (last 12000 bytes) ----\n%s\n----\n",
            n > 12000 ? text + n - 12000 : text);
    free(text);
}

static int start_sims(e2e_world *w, const e2e_world_opts *o, err *e)
{
    char hook[128];
    snprintf(hook, sizeof hook, "%s/api/v1/webhooks/shopify", w->base);
    shopify_sim_opts so = {.secret = SHOP_SECRET,
                           .token = SHOP_TOKEN,
                           .webhook_url = hook,
                           .api_version = API_VERSION,
                           .bucket_size = 400,
                           .leak_per_s = 200,
                           .retry_base_ms = 250,
                           .max_retries = 8};
    if (!(w->shopify = shopify_sim_start(&so, e)))
        return -1;
    snprintf(w->shopify_url, sizeof w->shopify_url, "http://127.0.0.1:%d",
             shopify_sim_port(w->shopify));

    char sp_hook[128];
    snprintf(sp_hook, sizeof sp_hook, "%s/api/v1/webhooks/simplyprint", w->base);
    sp_sim_opts po = {.company_id = SP_COMPANY,
                      .api_key = SP_KEY,
                      .webhook_url = sp_hook,
                      .webhook_secret = SP_HOOK,
                      .printers = o->printers > 0 ? o->printers : 16,
                      .print_ms = o->print_ms > 0 ? o->print_ms : 3600000,
                      .paused = o->printers_paused,
                      .seed = 7,
                      .retry_base_ms = 250,
                      .max_retries = 8};
    if (!(w->sp = sp_sim_start(&po, e)))
        return -1;
    snprintf(w->sp_url, sizeof w->sp_url, "http://127.0.0.1:%d", sp_sim_port(w->sp));

    char sc_hook[128];
    snprintf(sc_hook, sizeof sc_hook, "%s/api/v1/webhooks/sendcloud", w->base);
    sendcloud_sim_opts co = {.public_key = SC_PUBLIC,
                             .secret_key = SC_SECRET,
                             .webhook_url = sc_hook,
                             .step_ms = o->sendcloud_step_ms > 0 ? o->sendcloud_step_ms : -1,
                             .retry_base_ms = 250,
                             .max_retries = 8};
    if (!(w->sendcloud = sendcloud_sim_start(&co, e)))
        return -1;
    snprintf(w->sc_url, sizeof w->sc_url, "http://127.0.0.1:%d", sendcloud_sim_port(w->sendcloud));

    smtp_sink_opts mo = {.http_port = -1};
    return (w->smtp = smtp_sink_start(&mo, e)) ? 0 : -1;
}

static int start_serve(e2e_world *w)
{
    char port[32], db_url[1100], app_url[96], shop_url[96], sp_url[96], sc_url[96], smtp[32];
    snprintf(port, sizeof port, "PORT=%d", w->port);
    snprintf(db_url, sizeof db_url, "DATABASE_URL=%s", w->db_url);
    snprintf(app_url, sizeof app_url, "APP_URL=%s", w->base);
    snprintf(shop_url, sizeof shop_url, "SHOPIFY_API_URL=%s", w->shopify_url);
    snprintf(sp_url, sizeof sp_url, "SIMPLYPRINT_API_URL=%s", w->sp_url);
    snprintf(sc_url, sizeof sc_url, "SENDCLOUD_API_URL=%s", w->sc_url);
    snprintf(smtp, sizeof smtp, "SMTP_PORT=%d", smtp_sink_port(w->smtp));
    const char *argv[] = {"serve", NULL};
    const char *envp[] = {
        port, db_url, app_url, shop_url, sp_url, sc_url, smtp, "HOST=127.0.0.1", "DATA_DIR=./data",
        "LOG_LEVEL=info", "SHUTDOWN_TIMEOUT=5s", "ENCRYPTION_KEY=" KEY_HEX,
        "INTERNAL_API_KEY=" INTERNAL_KEY, "RATE_LIMIT_IP_PER_MINUTE=0",
        "RATE_LIMIT_USER_PER_MINUTE=0", "NOTIFICATIONS_ENABLED=true",
        "OPERATOR_EMAIL=operator@e2e.example.com", "ADMIN_EMAIL=admin@e2e.example.com",
        "SMTP_HOST=127.0.0.1", "SMTP_FROM=f3connect@e2e.example.com",
        "SHOPIFY_SHOP_DOMAIN=f3connect-sim.myshopify.com", "SHOPIFY_API_SECRET=" SHOP_SECRET,
        "SHOPIFY_ACCESS_TOKEN=" SHOP_TOKEN, "SHOPIFY_API_VERSION=" API_VERSION,
        "SIMPLYPRINT_COMPANY_ID=" SP_COMPANY, "SIMPLYPRINT_API_KEY=" SP_KEY,
        "SIMPLYPRINT_WEBHOOK_SECRET=" SP_HOOK, "SENDCLOUD_PUBLIC_KEY=" SC_PUBLIC,
        "SENDCLOUD_SECRET_KEY=" SC_SECRET, "SENDCLOUD_RETRY_BASE=200ms",
        /* As in the sandbox: reconciliation heals a status report the
         * platform missed, such as a job.started webhook that arrived
         * before the submission of its job was recorded. */
        "SIMPLYPRINT_RECONCILE_INTERVAL=10s", "SENDCLOUD_RECONCILE_INTERVAL=10s", NULL};
    if (f3test_proc_start(&w->serve, w->dir, argv, envp))
        return -1;
    return f3test_wait_http_ok(w->port, "/health/ready", &w->serve, READY_WAIT_MS);
}

static int sign_in(e2e_world *w, err *e)
{
    if (account_default_tenant(w->d, w->tenant, e) ||
        account_create(w->d, w->tenant, ADMIN_EMAIL, "admin", ADMIN_PASS, false, NULL, e))
        return -1;
    char url[128];
    snprintf(url, sizeof url, "%s/api/v1/auth/login", w->base);
    http_client_request rq = {.method = "POST",
                              .url = url,
                              .body =
                                  "{\"email\":\"" ADMIN_EMAIL "\",\"password\":\"" ADMIN_PASS "\"}",
                              .content_type = "application/json"};
    rq.body_len = strlen(rq.body);
    http_client_response rs;
    http_client_send(&rq, &rs, e);
    const char *set = http_client_header(&rs, "Set-Cookie");
    int rc = rs.status == 200 && set ? 0 : -1;
    if (rc == 0)
        snprintf(w->cookie, sizeof w->cookie, "Cookie: %.*s", (int)strcspn(set, ";"), set);
    else
        err_set(e, F3_EPERMANENT, "login: %ld %s", rs.status, buf_cstr(&rs.body));
    http_client_response_free(&rs);
    return rc;
}

static int post_catalog(e2e_world *w, err *e)
{
    for (size_t i = 0; i < sandbox_catalog_size(); i++) {
        const char *m = sandbox_catalog_mapping(i);
        json_t *answer = NULL;
        long status = m ? e2e_api(w, "POST", "/api/v1/product-mappings", m, &answer) : 201;
        json_decref(answer);
        if (status != 201 && status != 200)
            return err_set(e, F3_EPERMANENT, "POST product-mappings %s: %ld",
                           sandbox_catalog_sku(i), status);
    }
    return 0;
}

int e2e_world_start(e2e_world *w, const char *backend, const e2e_world_opts *o)
{
    memset(w, 0, sizeof *w);
    log_set_level(LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    if (http_client_init() != 0)
        return -1;
    w->dir = f3test_tmpdir();
    w->db_url = f3test_db_url(backend);
    w->port = f3test_free_port();
    snprintf(w->base, sizeof w->base, "http://127.0.0.1:%d", w->port);
    snprintf(w->origin, sizeof w->origin, "Origin: %s", w->base);
    err e;
    err_clear(&e);
    int rc = start_sims(w, o, &e);
    if (rc == 0 && start_serve(w) != 0) {
        err_set(&e, F3_EIO, "the platform did not become ready");
        rc = -1;
    }
    rc = rc ? rc : db_open(w->db_url, NULL, &w->d, &e);
    rc = rc ? rc : sign_in(w, &e);
    rc = rc ? rc : post_catalog(w, &e);
    if (rc) {
        fprintf(stderr, "e2e world: %s\n", e.msg);
        if (w->serve.pid > 0)
            e2e_world_dump_log(w);
    }
    return rc ? -1 : 0;
}

int e2e_world_stop(e2e_world *w)
{
    int rc = 0;
    if (w->serve.pid > 0) {
        f3test_proc_signal(&w->serve, SIGTERM);
        if (!f3test_proc_wait(&w->serve, 15000) || w->serve.status != 0) {
            fprintf(stderr, "the platform did not stop cleanly (status %d)\n", w->serve.status);
            e2e_world_dump_log(w);
            rc = -1;
        }
        f3test_proc_kill(&w->serve);
    }
    db_close(w->d);
    smtp_sink_stop(w->smtp);
    sendcloud_sim_stop(w->sendcloud);
    sp_sim_stop(w->sp);
    shopify_sim_stop(w->shopify);
    if (w->db_url)
        f3test_db_drop(w->db_url);
    free(w->db_url);
    if (w->dir)
        f3test_rmtree(w->dir);
    free(w->dir);
    http_client_cleanup();
    memset(w, 0, sizeof *w);
    return rc;
}

/* ---- steps --------------------------------------------------------------------------- */

void e2e_place_order(e2e_world *w, const char *order_json, char shopify_id[32])
{
    buf body;
    buf_init(&body, 0);
    buf_printf(&body, "{\"order\": %s, \"deliver\": true}", order_json);
    json_t *answer = NULL;
    long status = e2e_call(w->shopify_url, "POST", "/_sim/orders", NULL, buf_cstr(&body), &answer);
    buf_free(&body);
    json_t *order = json_object_get(answer, "order");
    json_int_t id = json_integer_value(json_object_get(order ? order : answer, "id"));
    json_decref(answer);
    if (status != 201 && status != 200)
        fail_msg("POST /_sim/orders: %ld", status);
    assert_true(id > 0);
    snprintf(shopify_id, 32, "%lld", (long long)id);
}

void e2e_shopify_event(e2e_world *w, const char *shopify_id, const char *topic)
{
    char path[128], body[128];
    snprintf(path, sizeof path, "/_sim/orders/%s/events", shopify_id);
    snprintf(body, sizeof body, "{\"topic\":\"%s\",\"reason\":\"customer\"}", topic);
    long status = e2e_call(w->shopify_url, "POST", path, NULL, body, NULL);
    if (status < 200 || status > 299)
        fail_msg("POST %s: %ld", path, status);
}

int64_t e2e_count(e2e_world *w, const char *sql, const char *param)
{
    return f3test_bus_count(w->d, sql, param);
}

void e2e_wait_count(e2e_world *w, const char *sql, const char *param, int64_t want, int timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms, n;
    while ((n = e2e_count(w, sql, param)) != want) {
        if (clock_mono_ms() > end) {
            e2e_world_dump_log(w);
            fail_msg("%s [%s]: %lld, want %lld", sql, param ? param : "", (long long)n,
                     (long long)want);
        }
        f3test_sleep_ms(50);
    }
}

void e2e_wait_stored(e2e_world *w, const char *shopify_id, char order_id[65])
{
    e2e_wait_count(w, "SELECT COUNT(*) FROM orders WHERE shopify_order_id = $1", shopify_id, 1,
                   20000);
    err e;
    err_clear(&e);
    db_conn *c = db_acquire(w->d, &e);
    assert_non_null(c);
    const char *p[] = {w->tenant, shopify_id};
    db_stmt *s = db_prepare_texts(
        c, "SELECT id FROM orders WHERE tenant_id = $1 AND shopify_order_id = $2", p, 2, &e);
    assert_non_null(s);
    assert_int_equal(db_step(s, &e), DB_ROW);
    db_col_copy(s, 0, order_id, 65);
    db_finalize(s);
    db_release(c);
}

json_t *e2e_order(e2e_world *w, const char *order_id)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/orders/%s", order_id);
    json_t *o = NULL;
    long status = e2e_api(w, "GET", path, NULL, &o);
    if (status != 200 || !o)
        fail_msg("GET %s: %ld", path, status);
    return o;
}

static bool field_is(const json_t *o, const char *field, const char *value)
{
    const json_t *v = json_object_get(o, field);
    if (!v || json_is_null(v))
        return value[0] == '\0';
    return json_is_string(v) && strcmp(json_string_value(v), value) == 0;
}

json_t *e2e_wait_order_field(e2e_world *w, const char *order_id, const char *field,
                             const char *value, int timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;
    for (;;) {
        json_t *o = e2e_order(w, order_id);
        if (field_is(o, field, value))
            return o;
        if (clock_mono_ms() > end) {
            char *text = json_dumps(o, JSON_INDENT(1));
            e2e_world_dump_log(w);
            fprintf(stderr, "order %s:\n%s\n", order_id, text ? text : "");
            free(text);
            json_decref(o);
            fail_msg("order %s: %s never became '%s'", order_id, field, value);
        }
        json_decref(o);
        f3test_sleep_ms(100);
    }
}

json_t *e2e_print_jobs(e2e_world *w, const char *order_id)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/print-jobs?orderId=%s&limit=100", order_id);
    json_t *page = NULL;
    long status = e2e_api(w, "GET", path, NULL, &page);
    if (status != 200 || !json_is_array(json_object_get(page, "data")))
        fail_msg("GET %s: %ld", path, status);
    json_t *data = json_incref(json_object_get(page, "data"));
    json_decref(page);
    return data;
}

size_t e2e_jobs_in(e2e_world *w, const char *order_id, const char *status)
{
    json_t *jobs = e2e_print_jobs(w, order_id);
    size_t i, n = 0;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        n += field_is(j, "status", status);
    }
    json_decref(jobs);
    return n;
}

void e2e_wait_jobs(e2e_world *w, const char *order_id, const char *status, size_t n, int timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;
    size_t have;
    while ((have = e2e_jobs_in(w, order_id, status)) != n) {
        if (clock_mono_ms() > end) {
            json_t *jobs = e2e_print_jobs(w, order_id);
            char *text = json_dumps(jobs, JSON_INDENT(1));
            e2e_world_dump_log(w);
            fprintf(stderr, "print jobs of %s:\n%s\n", order_id, text ? text : "");
            free(text);
            json_decref(jobs);
            json_t *st = sp_sim_state(w->sp);
            json_object_del(st, "done_items");
            text = json_dumps(st, JSON_COMPACT);
            fprintf(stderr, "SimplyPrint simulator:\n%s\n", text ? text : "");
            free(text);
            json_decref(st);
            fail_msg("order %s: %zu print jobs %s, want %zu", order_id, have, status, n);
        }
        f3test_sleep_ms(100);
    }
}

size_t e2e_sp_ongoing(e2e_world *w, int64_t *ids, size_t max)
{
    json_t *state = sp_sim_state(w->sp);
    size_t i, n = 0;
    json_t *j;
    json_array_foreach(json_object_get(state, "jobs"), i, j)
    {
        if (!field_is(j, "status", "ongoing"))
            continue;
        if (n < max)
            ids[n] = (int64_t)json_integer_value(json_object_get(j, "id"));
        n++;
    }
    json_decref(state);
    return n;
}

size_t e2e_end_prints(e2e_world *w, const char *order_id, sp_job_state how)
{
    json_t *jobs = e2e_print_jobs(w, order_id);
    size_t i, n = 0;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        const char *sp_id = json_string_value(json_object_get(j, "simplyPrintJobId"));
        if (!field_is(j, "status", "PRINTING") || !sp_id)
            continue;
        err e;
        err_clear(&e);
        if (sp_sim_end_job(w->sp, strtoll(sp_id, NULL, 10), how, NULL, &e) != 0)
            fail_msg("ending SimplyPrint job %s: %s", sp_id, e.msg);
        n++;
    }
    json_decref(jobs);
    return n;
}

size_t e2e_sp_queued(e2e_world *w)
{
    json_t *state = sp_sim_state(w->sp);
    size_t n = json_array_size(json_object_get(state, "queue"));
    json_decref(state);
    return n;
}

json_t *e2e_fulfillments(e2e_world *w, const char *shopify_id)
{
    char path[96];
    snprintf(path, sizeof path, "/_sim/fulfillments?order_id=%s", shopify_id);
    json_t *doc = NULL;
    long status = e2e_call(w->shopify_url, "GET", path, NULL, NULL, &doc);
    if (status != 200 || !json_is_array(json_object_get(doc, "fulfillments")))
        fail_msg("GET %s: %ld", path, status);
    json_t *list = json_incref(json_object_get(doc, "fulfillments"));
    json_decref(doc);
    return list;
}

size_t e2e_mails_with(e2e_world *w, const char *needle)
{
    size_t n = 0, total = smtp_sink_count(w->smtp);
    for (size_t i = 0; i < total; i++) {
        smtp_sink_msg m;
        if (smtp_sink_get(w->smtp, i, &m) != 0)
            continue;
        n += m.data && strstr(m.data, needle) != NULL;
        smtp_sink_msg_free(&m);
    }
    return n;
}

void e2e_dump_mail(e2e_world *w)
{
    size_t total = smtp_sink_count(w->smtp);
    fprintf(stderr, "SMTP sink: %zu messages\n", total);
    for (size_t i = 0; i < total; i++) {
        smtp_sink_msg m;
        if (smtp_sink_get(w->smtp, i, &m) != 0)
            continue;
        const char *subject = m.data ? strstr(m.data, "Subject: ") : NULL;
        fprintf(stderr, "  %.*s\n", subject ? (int)strcspn(subject, "\r\n") : 0,
                subject ? subject : "");
        smtp_sink_msg_free(&m);
    }
    err e;
    err_clear(&e);
    db_conn *c = db_acquire(w->d, &e);
    db_stmt *s = c ? db_prepare(c,
                                "SELECT status, attempts, COALESCE(last_error, ''), payload FROM"
                                " retry_queue WHERE job_type = 'NOTIFICATION'",
                                &e)
                   : NULL;
    while (s && db_step(s, &e) == DB_ROW)
        fprintf(stderr, "  retry entry %s attempts %lld error '%s': %.200s\n", db_col_text(s, 0),
                (long long)db_col_int64(s, 1), db_col_text(s, 2), db_col_text(s, 3));
    db_finalize(s);
    if (c)
        db_release(c);
}

size_t e2e_events_of(e2e_world *w, const char *order_id, const char *event_type)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/events?orderId=%s&eventType=%s&limit=100", order_id,
             event_type);
    json_t *page = NULL;
    long status = e2e_api(w, "GET", path, NULL, &page);
    if (status != 200)
        fail_msg("GET %s: %ld", path, status);
    size_t n = json_array_size(json_object_get(page, "data"));
    json_decref(page);
    return n;
}

/* ---- f3connect sandbox -------------------------------------------------------------- */

int e2e_sandbox(const char *backend, const char *orders, const char *const *extra, int timeout_ms,
                char **out)
{
    char *dir = f3test_tmpdir();
    char *url = strcmp(backend, "postgres") == 0 ? f3test_db_url(backend) : NULL;
    char port[16], data_dir[600], timeout[16];
    snprintf(port, sizeof port, "%d", f3test_free_port());
    snprintf(data_dir, sizeof data_dir, "%s/sandbox", dir);
    snprintf(timeout, sizeof timeout, "%d", timeout_ms / 1000 - 15);
    const char *argv[48] = {"sandbox", "--until-done", "--orders", orders,      "--port",
                            port,      "--data-dir",   data_dir,   "--timeout", timeout};
    size_t n = 10;
    if (url) {
        argv[n++] = "--database-url";
        argv[n++] = url;
    }
    for (const char *const *x = extra; x && *x && n < 46; x++)
        argv[n++] = *x;
    argv[n] = NULL;
    const char *envp[] = {"LOG_LEVEL=warn", NULL};
    f3test_proc p;
    int status = f3test_run(dir, argv, envp, timeout_ms, &p);
    *out = f3test_slurp(p.out_path);
    if (status != 0) {
        char *err_text = f3test_slurp(p.err_path);
        char log_path[700];
        snprintf(log_path, sizeof log_path, "%s/platform.log", data_dir);
        char *log_text = f3test_slurp(log_path);
        size_t ln = strlen(log_text), en = strlen(err_text);
        fprintf(stderr,
                "sandbox exited %d\n---- stdout ----\n%s\n---- stderr (tail) ----\n%s\n"
                "---- platform log (tail) ----\n%s\n",
                status, *out, en > 8000 ? err_text + en - 8000 : err_text,
                ln > 12000 ? log_text + ln - 12000 : log_text);
        free(err_text);
        free(log_text);
    }
    if (url)
        f3test_db_drop(url);
    free(url);
    f3test_rmtree(dir);
    free(dir);
    return status;
}

static int summary_int(const char *text, const char *label)
{
    const char *at = strstr(text, label);
    return at ? (int)strtol(at + strlen(label), NULL, 10) : -1;
}

void e2e_sandbox_passes(const char *backend, const char *orders, const char *const *extra,
                        int timeout_ms, e2e_summary *s)
{
    char *out = NULL;
    int status = e2e_sandbox(backend, orders, extra, timeout_ms, &out);
    e2e_summary sum = {
        .orders = summary_int(out, "orders: "),
        .fulfilled = summary_int(out, "fulfilled: "),
        .cancelled = summary_int(out, "cancelled: "),
        .waiting = summary_int(out, "waiting for a mapping: "),
        .other = summary_int(out, "other: "),
        .review = summary_int(out, "flagged for review): "),
        .print_jobs = summary_int(out, "print jobs: "),
        .shipments = summary_int(out, "shipments: "),
        .starts = summary_int(out, "platform starts: "),
        .kills = summary_int(out, "kills: "),
        .all_hold = strstr(out, "invariants: all hold") != NULL,
    };
    if (sum.review < 0)
        sum.review = 0;
    fprintf(stderr, "%s", out);
    free(out);
    assert_int_equal(status, 0);
    assert_true(sum.all_hold);
    assert_int_equal(sum.orders, strtol(orders, NULL, 10));
    assert_int_equal(sum.other, 0);
    assert_int_equal(sum.fulfilled + sum.cancelled + sum.waiting + sum.review, sum.orders);
    assert_true(sum.fulfilled > 0);
    if (s)
        *s = sum;
}
