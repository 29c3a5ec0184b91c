/*
 * sandbox.c - runs the sandbox (see sandbox.h): the simulators in this process, the
 * platform as a child process wired to them, a demo user and catalog, the stream of demo
 * orders, the watch line, and - with --until-done - the invariant check and the exit
 * status that scripts and CI rely on.
 */
#include "app/sandbox_internal.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "http/client.h"
#include "services/gateway/accounts.h"
#include "sim/sendcloud/sim.h"
#include "sim/shopify/sim.h"
#include "sim/simplyprint/sim.h"
#include "sim/smtp/sink.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHOPIFY_API_VERSION "2025-10"
#define SP_COMPANY          "4242"
#define DEMO_EMAIL          "demo@sandbox.f3connect.local"
#define READY_TIMEOUT_MS    30000
#define CANCEL_DELAY_MS     800

typedef struct secrets {
    char shopify_secret[64], shopify_token[64];
    char sp_key[64], sp_hook[80];
    char sc_public[64], sc_secret[64];
    char internal_key[64], encryption_key[80];
    char demo_password[40];
} secrets;

typedef struct sandbox {
    sandbox_args a;
    secrets k;
    char dir[PATH_MAX - 64]; /* room for the file names appended to it */
    char db_url[PATH_MAX];
    char base[64]; /* http://127.0.0.1:PORT of the platform */
    shopify_sim *shopify;
    sp_sim *sp;
    sendcloud_sim *sendcloud;
    smtp_sink *smtp;
    char shopify_url[64], sp_url[64], sc_url[64];
    sandbox_env env;
    sandbox_child child;
    db *d;
    char tenant[65];
    char cookie[256];
    pthread_mutex_t lock; /* orders */
    sandbox_order *orders;
    size_t norders, cap;
    atomic_bool placing_done;
    atomic_bool stop;
} sandbox;

/* ---- small helpers ------------------------------------------------------------------------ */

static void nap_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

static int token(char *out, size_t size, size_t bytes)
{
    buf b;
    buf_init(&b, 0);
    int rc = crypto_random_token(&b, bytes);
    if (rc == 0)
        snprintf(out, size, "%s", buf_cstr(&b));
    if (b.data)
        crypto_wipe(b.data, b.len);
    buf_free(&b);
    return rc;
}

static int make_secrets(secrets *k)
{
    uint8_t key[CRYPTO_KEY_LEN];
    buf hex;
    buf_init(&hex, 0);
    crypto_random(key, sizeof key);
    int rc = crypto_hex_encode(key, sizeof key, &hex);
    if (rc == 0)
        snprintf(k->encryption_key, sizeof k->encryption_key, "%s", buf_cstr(&hex));
    crypto_wipe(key, sizeof key);
    buf_free(&hex);
    rc = rc ? rc : token(k->shopify_secret, sizeof k->shopify_secret, 24);
    rc = rc ? rc : token(k->shopify_token, sizeof k->shopify_token, 24);
    rc = rc ? rc : token(k->sp_key, sizeof k->sp_key, 24);
    rc = rc ? rc : token(k->sp_hook, sizeof k->sp_hook, 32);
    rc = rc ? rc : token(k->sc_public, sizeof k->sc_public, 16);
    rc = rc ? rc : token(k->sc_secret, sizeof k->sc_secret, 24);
    rc = rc ? rc : token(k->internal_key, sizeof k->internal_key, 24);
    return rc ? rc : token(k->demo_password, sizeof k->demo_password, 15);
}

/* One JSON call to the platform or a simulator. *out (may be NULL) gets the answer. */
static int call(const char *method, const char *url, const char *const *headers,
                const char *body_text, json_t **out, err *e)
{
    json_t *body = NULL;
    if (body_text && json_parse(body_text, strlen(body_text), &body, e))
        return e->code;
    http_client_response rs;
    int rc = http_client_json(method, url, headers, body, 15000, out, &rs, e);
    if (rc && rs.body.len)
        err_set(e, rc, "%s %s: %ld %.200s", method, url, rs.status, buf_cstr(&rs.body));
    http_client_response_free(&rs);
    json_decref(body);
    return rc;
}

/* ---- simulators --------------------------------------------------------------------------- */

static int sims_start(sandbox *sb, err *e)
{
    char hook[128];
    snprintf(hook, sizeof hook, "%s/api/v1/webhooks/shopify", sb->base);
    shopify_sim_opts so = {.secret = sb->k.shopify_secret,
                           .token = sb->k.shopify_token,
                           .webhook_url = hook,
                           .api_version = SHOPIFY_API_VERSION,
                           .bucket_size = 400,
                           .leak_per_s = 200,
                           .retry_base_ms = 250,
                           .max_retries = 12};
    if (!(sb->shopify = shopify_sim_start(&so, e)))
        return e->code;
    snprintf(sb->shopify_url, sizeof sb->shopify_url, "http://127.0.0.1:%d",
             shopify_sim_port(sb->shopify));

    char sp_hook[160];
    snprintf(sp_hook, sizeof sp_hook, "%s/api/v1/webhooks/simplyprint", sb->base);
    sp_sim_opts po = {.company_id = SP_COMPANY,
                      .api_key = sb->k.sp_key,
                      .webhook_url = sp_hook,
                      .webhook_secret = sb->k.sp_hook,
                      .printers = 8,
                      .print_ms = sb->a.print_ms,
                      .fail_rate = sb->a.print_fail,
                      .seed = (unsigned)sb->a.seed,
                      .retry_base_ms = 250,
                      .max_retries = 8,
                      .couriers = 4};
    if (!(sb->sp = sp_sim_start(&po, e)))
        return e->code;
    sp_sim_delivery_faults(sb->sp, sb->a.drop_rate, sb->a.duplicate_rate, 0, 0);
    snprintf(sb->sp_url, sizeof sb->sp_url, "http://127.0.0.1:%d", sp_sim_port(sb->sp));

    char sc_hook[160];
    snprintf(sc_hook, sizeof sc_hook, "%s/api/v1/webhooks/sendcloud", sb->base);
    sendcloud_sim_opts co = {.public_key = sb->k.sc_public,
                             .secret_key = sb->k.sc_secret,
                             .webhook_url = sc_hook,
                             .step_ms = 2000,
                             .retry_base_ms = 250,
                             .max_retries = 10};
    if (!(sb->sendcloud = sendcloud_sim_start(&co, e)))
        return e->code;
    snprintf(sb->sc_url, sizeof sb->sc_url, "http://127.0.0.1:%d",
             sendcloud_sim_port(sb->sendcloud));

    char mail[PATH_MAX + 8];
    snprintf(mail, sizeof mail, "%s/mail", sb->dir);
    if (mkdir(mail, 0700) != 0 && errno != EEXIST)
        return err_set(e, F3_EIO, "cannot create %s: %s", mail, strerror(errno));
    smtp_sink_opts mo = {.dir = mail};
    if (!(sb->smtp = smtp_sink_start(&mo, e)))
        return e->code;
    return 0;
}

static void sims_stop(sandbox *sb)
{
    smtp_sink_stop(sb->smtp);
    sendcloud_sim_stop(sb->sendcloud);
    sp_sim_stop(sb->sp);
    shopify_sim_stop(sb->shopify);
}

/* ---- the platform ------------------------------------------------------------------------- */

static int platform_env(sandbox *sb)
{
    sandbox_env *v = &sb->env;
    const secrets *k = &sb->k;
    int rc = 0;
    rc |= sandbox_env_set(v, "DATABASE_URL", "%s", sb->db_url);
    rc |= sandbox_env_set(v, "DATA_DIR", "%s", sb->dir);
    rc |= sandbox_env_set(v, "HOST", "127.0.0.1");
    rc |= sandbox_env_set(v, "PORT", "%d", sb->a.port);
    rc |= sandbox_env_set(v, "APP_URL", "%s", sb->base);
    rc |= sandbox_env_set(v, "LOG_LEVEL", "info");
    rc |= sandbox_env_set(v, "ENCRYPTION_KEY", "%s", k->encryption_key);
    rc |= sandbox_env_set(v, "INTERNAL_API_KEY", "%s", k->internal_key);
    rc |= sandbox_env_set(v, "RATE_LIMIT_IP_PER_MINUTE", "0");
    rc |= sandbox_env_set(v, "RATE_LIMIT_USER_PER_MINUTE", "0");
    rc |= sandbox_env_set(v, "ADMIN_EMAIL", "admin@sandbox.f3connect.local");
    rc |= sandbox_env_set(v, "NOTIFICATIONS_ENABLED", "true");
    rc |= sandbox_env_set(v, "OPERATOR_EMAIL", "operator@sandbox.f3connect.local");
    rc |= sandbox_env_set(v, "SHOPIFY_SHOP_DOMAIN", "f3connect-sim.myshopify.com");
    rc |= sandbox_env_set(v, "SHOPIFY_API_SECRET", "%s", k->shopify_secret);
    rc |= sandbox_env_set(v, "SHOPIFY_ACCESS_TOKEN", "%s", k->shopify_token);
    rc |= sandbox_env_set(v, "SHOPIFY_API_URL", "%s", sb->shopify_url);
    rc |= sandbox_env_set(v, "SHOPIFY_API_VERSION", SHOPIFY_API_VERSION);
    rc |= sandbox_env_set(v, "SIMPLYPRINT_COMPANY_ID", SP_COMPANY);
    rc |= sandbox_env_set(v, "SIMPLYPRINT_API_KEY", "%s", k->sp_key);
    rc |= sandbox_env_set(v, "SIMPLYPRINT_API_URL", "%s", sb->sp_url);
    rc |= sandbox_env_set(v, "SIMPLYPRINT_WEBHOOK_SECRET", "%s", k->sp_hook);
    rc |= sandbox_env_set(v, "SENDCLOUD_PUBLIC_KEY", "%s", k->sc_public);
    rc |= sandbox_env_set(v, "SENDCLOUD_SECRET_KEY", "%s", k->sc_secret);
    rc |= sandbox_env_set(v, "SENDCLOUD_API_URL", "%s", sb->sc_url);
    /* Reconciliation heals what a dropped webhook or a kill missed; in the sandbox it runs
     * as often as each poller allows, so healing is seen within a minute. */
    rc |= sandbox_env_set(v, "SHOPIFY_RECONCILE_INTERVAL", "1m");
    rc |= sandbox_env_set(v, "SIMPLYPRINT_RECONCILE_INTERVAL", "10s");
    rc |= sandbox_env_set(v, "SENDCLOUD_RECONCILE_INTERVAL", "10s");
    rc |= sandbox_env_set(v, "SMTP_HOST", "127.0.0.1");
    rc |= sandbox_env_set(v, "SMTP_PORT", "%d", smtp_sink_port(sb->smtp));
    rc |= sandbox_env_set(v, "SMTP_FROM", "f3connect@sandbox.f3connect.local");
    return rc ? F3_ENOMEM : 0;
}

static int platform_start(sandbox *sb, err *e)
{
    char ready[128];
    snprintf(ready, sizeof ready, "%s/health/ready", sb->base);
    int rc = sandbox_child_start(&sb->child, &sb->env, e);
    return rc ? rc : sandbox_child_wait_ready(&sb->child, ready, READY_TIMEOUT_MS, e);
}

/* The demo user (an admin with a fresh password each run), signed in over the API. */
static int demo_login(sandbox *sb, err *e)
{
    account acc;
    int rc = account_default_tenant(sb->d, sb->tenant, e);
    if (rc == 0 && account_find_login(sb->d, DEMO_EMAIL, NULL, &acc, e) == 0)
        rc = account_set_password(sb->d, acc.id, sb->k.demo_password, e);
    else if (rc == 0)
        rc = account_create(sb->d, sb->tenant, DEMO_EMAIL, "admin", sb->k.demo_password, false,
                            NULL, e);
    if (rc)
        return rc;
    char url[128], body[256];
    snprintf(url, sizeof url, "%s/api/v1/auth/login", sb->base);
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", DEMO_EMAIL,
             sb->k.demo_password);
    json_t *jb = json_loads(body, 0, NULL);
    http_client_response rs;
    rc = http_client_json("POST", url, NULL, jb, 15000, NULL, &rs, e);
    json_decref(jb);
    crypto_wipe(body, sizeof body);
    const char *set = http_client_header(&rs, "Set-Cookie");
    if (rc == 0 && set)
        snprintf(sb->cookie, sizeof sb->cookie, "Cookie: %.*s", (int)strcspn(set, ";"), set);
    else if (rc == 0)
        rc = err_set(e, F3_EPERMANENT, "login answered without a session cookie");
    http_client_response_free(&rs);
    return rc;
}

static int demo_catalog(sandbox *sb, err *e)
{
    char url[128], origin[160];
    snprintf(url, sizeof url, "%s/api/v1/product-mappings", sb->base);
    snprintf(origin, sizeof origin, "Origin: %s", sb->base);
    const char *headers[] = {sb->cookie, origin, NULL};
    for (size_t i = 0; i < sandbox_catalog_size(); i++) {
        const char *m = sandbox_catalog_mapping(i);
        if (!m)
            continue;
        int rc = call("POST", url, headers, m, NULL, e);
        if (rc && rc != F3_ECONFLICT && !strstr(e->msg, " 409 "))
            return rc;
    }
    return 0;
}

/* ---- the order stream --------------------------------------------------------------------- */

static int place_order(sandbox *sb, uint64_t *rng, sandbox_mix *mix, err *e)
{
    buf body;
    buf_init(&body, 0);
    sandbox_intent intent;
    char url[128];
    snprintf(url, sizeof url, "%s/_sim/orders", sb->shopify_url);
    json_t *answer = NULL;
    sandbox_delivery how = {.duplicates = sandbox_random(rng) < sb->a.duplicate_rate ? 2 : 0,
                            .deliver = sandbox_random(rng) >= sb->a.drop_rate};
    int rc = sandbox_order_body(mix, &how, rng, &body, &intent);
    rc =
        rc ? err_set(e, rc, "out of memory") : call("POST", url, NULL, buf_cstr(&body), &answer, e);
    buf_free(&body);
    json_t *order = json_object_get(answer, "order");
    json_int_t id = json_integer_value(json_object_get(order ? order : answer, "id"));
    if (rc == 0 && id <= 0)
        rc = err_set(e, F3_EPERMANENT, "the Shopify simulator answered without an order id");
    json_decref(answer);
    if (rc)
        return rc;
    pthread_mutex_lock(&sb->lock);
    if (sb->norders == sb->cap) {
        size_t ncap = sb->cap ? 2 * sb->cap : 64;
        sandbox_order *n = realloc(sb->orders, ncap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&sb->lock);
            return err_set(e, F3_ENOMEM, "out of memory");
        }
        sb->orders = n;
        sb->cap = ncap;
    }
    sandbox_order *o = &sb->orders[sb->norders++];
    snprintf(o->shopify_id, sizeof o->shopify_id, "%lld", (long long)id);
    o->intent = intent;
    o->placed_ms = clock_now_ms();
    pthread_mutex_unlock(&sb->lock);
    return 0;
}

/* Cancels in Shopify the orders meant to be cancelled, CANCEL_DELAY_MS after placing. */
static void cancel_due(sandbox *sb, size_t *next)
{
    int64_t now = clock_now_ms();
    for (;;) {
        pthread_mutex_lock(&sb->lock);
        sandbox_order o = *next < sb->norders ? sb->orders[*next] : (sandbox_order){0};
        pthread_mutex_unlock(&sb->lock);
        if (!o.shopify_id[0] || o.placed_ms + CANCEL_DELAY_MS > now)
            return;
        (*next)++;
        if (o.intent != SANDBOX_CANCEL)
            continue;
        char url[160];
        snprintf(url, sizeof url, "%s/_sim/orders/%s/events", sb->shopify_url, o.shopify_id);
        err e;
        err_clear(&e);
        if (call("POST", url, NULL, "{\"topic\":\"orders/cancelled\",\"reason\":\"customer\"}",
                 NULL, &e))
            log_warn("sandbox: cannot cancel a demo order", "orderId", o.shopify_id, "reason",
                     e.msg);
    }
}

/* The demo operator: reprints every failed print job (through the API, as a person in
 * the dashboard would), which revives its order. */
static void operator_reprints(sandbox *sb)
{
    char url[160], origin[160];
    snprintf(url, sizeof url, "%s/api/v1/print-jobs?status=FAILED&limit=100", sb->base);
    snprintf(origin, sizeof origin, "Origin: %s", sb->base);
    const char *headers[] = {sb->cookie, origin, NULL};
    json_t *page = NULL;
    err e;
    err_clear(&e);
    if (call("GET", url, headers, NULL, &page, &e) != 0) {
        log_warn("sandbox: cannot list failed print jobs", "reason", e.msg);
        return;
    }
    size_t i;
    json_t *job;
    json_array_foreach(json_object_get(page, "data"), i, job)
    {
        const char *id = json_string_value(json_object_get(job, "id"));
        snprintf(url, sizeof url, "%s/api/v1/print-jobs/%s/retry", sb->base, id ? id : "");
        if (id && call("POST", url, headers, "{}", NULL, &e) != 0)
            log_warn("sandbox: cannot reprint a failed job", "printJobId", id, "reason", e.msg);
    }
    json_decref(page);
}

static void *generator(void *arg)
{
    sandbox *sb = arg;
    uint64_t rng = sb->a.seed ? sb->a.seed : 0x9E3779B97F4A7C15ULL;
    sandbox_mix mix = {sb->a.unmapped_rate, sb->a.cancel_rate, 3, 2};
    long gap_ms = sb->a.rate > 0 ? (long)(1000.0 / sb->a.rate) : 0;
    size_t cancel_next = 0;
    int64_t next_round = 0;
    for (long placed = 0; !atomic_load(&sb->stop);) {
        if (clock_now_ms() >= next_round) {
            operator_reprints(sb);
            next_round = clock_now_ms() + 1000;
        }
        if (sb->a.orders == 0 || placed < sb->a.orders) {
            err e;
            err_clear(&e);
            if (place_order(sb, &rng, &mix, &e) == 0)
                placed++;
            else
                log_warn("sandbox: cannot place a demo order", "reason", e.msg);
        } else if (!atomic_load(&sb->placing_done)) {
            atomic_store(&sb->placing_done, true);
        }
        cancel_due(sb, &cancel_next);
        bool placing = !atomic_load(&sb->placing_done);
        nap_ms(placing && gap_ms > 0 ? gap_ms : placing ? 1 : 100);
    }
    return NULL;
}

/* Provider faults: each second, with probability a.faults, one provider answers its next
 * one to three calls with 429 (Retry-After 1 s) or a 5xx; and with probability
 * a.drop_rate Sendcloud drops its next webhook (Shopify and SimplyPrint drop theirs as
 * they are told at start). The storm lasts while orders are placed and FAULTS_AFTER_MS
 * beyond: an injected fault waits for the provider's next call, so a storm that never
 * ends would starve the reconciliation pollers' calls forever, which says nothing about
 * healing. */
#define FAULTS_AFTER_MS 10000

static void *faults(void *arg)
{
    sandbox *sb = arg;
    uint64_t rng = (sb->a.seed ? sb->a.seed : 7) ^ 0xFA17ULL;
    static const int statuses[] = {429, 500, 502, 503};
    int64_t calm_at = 0;
    while (!atomic_load(&sb->stop)) {
        nap_ms(1000);
        if (atomic_load(&sb->placing_done) && calm_at == 0)
            calm_at = clock_now_ms() + FAULTS_AFTER_MS;
        if (calm_at && clock_now_ms() >= calm_at)
            continue;
        if (sandbox_random(&rng) < sb->a.drop_rate) {
            char url[128];
            snprintf(url, sizeof url, "%s/_sim/config", sb->sc_url);
            err e;
            err_clear(&e);
            if (call("POST", url, NULL, "{\"drop_webhooks\":1}", NULL, &e))
                log_warn("sandbox: cannot drop a Sendcloud webhook", "reason", e.msg);
        }
        if (sandbox_random(&rng) >= sb->a.faults)
            continue;
        int status = statuses[(size_t)(sandbox_random(&rng) * 4) % 4];
        int count = 1 + (int)(sandbox_random(&rng) * 3);
        double which = sandbox_random(&rng);
        if (which < 1.0 / 3) {
            sp_sim_fault(sb->sp, status, count, 1, 0);
            continue;
        }
        char url[128], body[96];
        snprintf(url, sizeof url, "%s/_sim/faults", which < 2.0 / 3 ? sb->shopify_url : sb->sc_url);
        snprintf(body, sizeof body, "{\"kind\":\"%d\",\"count\":%d,\"retry_after\":1}", status,
                 count);
        err e;
        err_clear(&e);
        if (call("POST", url, NULL, body, NULL, &e))
            log_warn("sandbox: cannot inject a provider fault", "reason", e.msg);
    }
    return NULL;
}

/* Kills the platform with SIGKILL a.kills times at random moments, restarting it each
 * time, while orders flow. */
static void *chaos(void *arg)
{
    sandbox *sb = arg;
    uint64_t rng = (sb->a.seed ? sb->a.seed : 42) ^ 0xC4A05ULL;
    while (!atomic_load(&sb->stop) && sb->child.kills < sb->a.kills) {
        nap_ms(200 + (long)(sandbox_random(&rng) * 1800));
        if (atomic_load(&sb->stop))
            break;
        sandbox_child_kill(&sb->child);
        err e;
        err_clear(&e);
        if (platform_start(sb, &e)) {
            log_error("sandbox: the platform does not come back after a kill", "reason", e.msg);
            break;
        }
    }
    return NULL;
}

/* ---- watching ----------------------------------------------------------------------------- */

/* "orders 12: pending 1, processing 4, ... | print jobs 30: ..." for the watch line. */
static void status_line(sandbox *sb, buf *out)
{
    static const char *const sql[] = {
        "SELECT CASE WHEN fulfilled_at IS NOT NULL THEN 'FULFILLED' ELSE status END,"
        " COUNT(*) FROM orders WHERE tenant_id = $1 GROUP BY 1 ORDER BY 1",
        "SELECT status, COUNT(*) FROM print_jobs WHERE tenant_id = $1 GROUP BY status"
        " ORDER BY status",
        "SELECT status, COUNT(*) FROM shipments WHERE tenant_id = $1 GROUP BY status"
        " ORDER BY status",
    };
    static const char *const what[] = {"orders", "print jobs", "shipments"};
    err e;
    err_clear(&e);
    db_conn *c = db_acquire(sb->d, &e);
    if (!c)
        return;
    const char *p[] = {sb->tenant};
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        db_stmt *s = db_prepare_texts(c, sql[i], p, 1, &e);
        buf_printf(out, "%s%s:", i ? " | " : "", what[i]);
        int n = 0;
        for (; s && db_step(s, &e) == DB_ROW; n++)
            buf_printf(out, "%s %lld %s", n ? "," : "", (long long)db_col_int64(s, 1),
                       db_col_text(s, 0));
        if (n == 0)
            buf_puts(out, " none yet");
        db_finalize(s);
    }
    db_release(c);
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static sandbox_sims sims_of(const sandbox *sb)
{
    sandbox_sims s = {.shopify_url = sb->shopify_url,
                      .shopify_token = sb->k.shopify_token,
                      .shopify_api_version = SHOPIFY_API_VERSION,
                      .simplyprint_url = sb->sp_url,
                      .sendcloud_url = sb->sc_url};
    return s;
}

/* Checks the invariants over every order placed so far. */
static int check_now(sandbox *sb, sandbox_report *r, err *e)
{
    sandbox_sims sims = sims_of(sb);
    pthread_mutex_lock(&sb->lock);
    size_t n = sb->norders;
    sandbox_order *copy = n ? malloc(n * sizeof *copy) : NULL;
    if (copy)
        memcpy(copy, sb->orders, n * sizeof *copy);
    pthread_mutex_unlock(&sb->lock);
    if (n && !copy)
        return err_set(e, F3_ENOMEM, "out of memory");
    sandbox_report_free(r);
    sandbox_report_init(r);
    int rc = sandbox_check(sb->d, sb->tenant, &sims, copy, n, r, e);
    free(copy);
    return rc;
}

/* Work the platform still has in hand: retries waiting (even those due later) and queued
 * jobs due or running. -1 when it cannot be read. */
static int64_t work_in_hand(sandbox *sb)
{
    char now[24];
    db_ms_text(clock_now_ms(), now);
    const char *p[] = {sb->tenant, now};
    err e;
    err_clear(&e);
    int64_t n = -1;
    db_conn *c = db_acquire(sb->d, &e);
    db_stmt *s =
        c ? db_prepare_texts(c,
                             "SELECT (SELECT COUNT(*) FROM retry_queue WHERE tenant_id = $1"
                             " AND status IN ('PENDING', 'PROCESSING'))"
                             " + (SELECT COUNT(*) FROM bus_jobs WHERE state = 'active'"
                             " OR (state = 'waiting' AND run_at <= CAST($2 AS BIGINT)))",
                             p, 2, &e)
          : NULL;
    if (s && db_step(s, &e) == DB_ROW)
        n = db_col_int64(s, 0);
    db_finalize(s);
    if (c)
        db_release(c);
    return n;
}

/* True when the platform holds no work in hand and the counts of the watch line are
 * what they were at the previous call (kept in *last). The full check reads every order
 * and asks Shopify about each one - with 1000 orders, 1000 calls against the rate-limit
 * bucket the platform's fulfilments use, which starved their retries into 429 after 429
 * - so it waits until the loop stands still. */
static bool looks_quiet(sandbox *sb, buf *last)
{
    buf now;
    buf_init(&now, 0);
    status_line(sb, &now);
    bool same = now.len == last->len && memcmp(buf_cstr(&now), buf_cstr(last), now.len) == 0;
    buf_free(last);
    *last = now;
    return same && work_in_hand(sb) == 0;
}

/* --until-done: waits until every order settled and the invariants hold (the platform
 * is quiet), or the timeout; the last check is the verdict. */
static int settle(sandbox *sb, sandbox_report *r, err *e)
{
    int64_t deadline = clock_now_ms() + sb->a.timeout_s * 1000;
    int64_t next_line = 0;
    int rc = 0;
    buf last;
    buf_init(&last, 0);
    while (!interrupted) {
        bool placed = atomic_load(&sb->placing_done);
        bool chaos_done = sb->child.kills >= sb->a.kills;
        if (placed && chaos_done && looks_quiet(sb, &last)) {
            rc = check_now(sb, r, e);
            if (rc == 0 && r->violations == 0)
                break;
        }
        if (clock_now_ms() >= deadline) {
            rc = rc ? rc : check_now(sb, r, e);
            break;
        }
        if (clock_now_ms() >= next_line) {
            buf line;
            buf_init(&line, 0);
            status_line(sb, &line);
            fprintf(stderr, "sandbox: %s\n", buf_cstr(&line));
            buf_free(&line);
            next_line = clock_now_ms() + 5000;
        }
        nap_ms(500);
    }
    if (interrupted)
        rc = check_now(sb, r, e);
    buf_free(&last);
    return rc;
}

static void watch(sandbox *sb)
{
    while (!interrupted) {
        buf line;
        buf_init(&line, 0);
        status_line(sb, &line);
        printf("%s\n", buf_cstr(&line));
        fflush(stdout);
        buf_free(&line);
        for (int i = 0; i < 20 && !interrupted; i++)
            nap_ms(100);
    }
}

static void banner(const sandbox *sb)
{
    printf("\nf3connect sandbox is running: the platform, Shopify, SimplyPrint, Sendcloud and an "
           "SMTP sink, all simulated.\n"
           "  API        %s   (sign in: %s / %s)\n"
           "  try        curl -s -c /tmp/f3 -H 'Content-Type: application/json' -d "
           "'{\"email\":\"%s\",\"password\":\"%s\"}' %s/api/v1/auth/login\n"
           "             curl -s -b /tmp/f3 %s/api/v1/orders\n"
           "  data       %s   (platform log: %s)\n"
           "  orders     %s at %.2f per second; Ctrl-C stops\n\n",
           sb->base, DEMO_EMAIL, sb->k.demo_password, DEMO_EMAIL, sb->k.demo_password, sb->base,
           sb->base, sb->dir, sb->child.log_path,
           sb->a.orders ? "a batch of demo orders" : "demo orders", sb->a.rate);
    fflush(stdout);
}

/* ---- running ------------------------------------------------------------------------------ */

static int prepare_dir(sandbox *sb, err *e)
{
    if (strlen(sb->a.data_dir) >= sizeof sb->dir)
        return err_set(e, F3_EINVAL, "--data-dir is too long");
    snprintf(sb->dir, sizeof sb->dir, "%s", sb->a.data_dir);
    if (mkdir(sb->dir, 0700) != 0 && errno != EEXIST)
        return err_set(e, F3_EIO, "cannot create %s: %s", sb->dir, strerror(errno));
    /* A sandbox starts from nothing: the previous run's database goes. */
    static const char *const stale[] = {"sandbox.db", "sandbox.db-wal", "sandbox.db-shm",
                                        "encryption.key"};
    char path[PATH_MAX + 32];
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", sb->dir, stale[i]);
        unlink(path);
    }
    if (sb->a.database_url)
        snprintf(sb->db_url, sizeof sb->db_url, "%s", sb->a.database_url);
    else
        snprintf(sb->db_url, sizeof sb->db_url, "sqlite:%s/sandbox.db", sb->dir);
    snprintf(sb->child.log_path, sizeof sb->child.log_path, "%s/platform.log", sb->dir);
    ssize_t n = readlink("/proc/self/exe", sb->child.binary, sizeof sb->child.binary - 1);
    if (n <= 0)
        return err_set(e, F3_EIO, "cannot find this executable: %s", strerror(errno));
    sb->child.binary[n] = '\0';
    snprintf(sb->base, sizeof sb->base, "http://127.0.0.1:%d", sb->a.port);
    return 0;
}

static int start_all(sandbox *sb, err *e)
{
    int rc = prepare_dir(sb, e);
    rc = rc ? rc : make_secrets(&sb->k) ? err_set(e, F3_ENOMEM, "out of memory") : 0;
    rc = rc ? rc : sims_start(sb, e);
    rc = rc ? rc : platform_env(sb) ? err_set(e, F3_ENOMEM, "out of memory") : 0;
    rc = rc ? rc : platform_start(sb, e);
    rc = rc ? rc : db_open(sb->db_url, NULL, &sb->d, e);
    rc = rc ? rc : demo_login(sb, e);
    return rc ? rc : demo_catalog(sb, e);
}

static void stop_all(sandbox *sb)
{
    if (sandbox_child_stop(&sb->child, 15000) != 0)
        log_warn("sandbox: the platform did not stop cleanly", "logFile", sb->child.log_path);
    db_close(sb->d);
    sims_stop(sb);
    sandbox_env_free(&sb->env);
    crypto_wipe(&sb->k, sizeof sb->k);
    free(sb->orders);
}

/* ---- the summary's figures (bench/loop) ---------------------------------------------------- */

/* Throughput from the first order placed to the last fulfilment (as the event log dates
 * it), and the peak memory of the platform and of this process, into r. */
static void measure(sandbox *sb, sandbox_report *r)
{
    struct rusage self;
    if (getrusage(RUSAGE_SELF, &self) == 0)
        r->sandbox_rss_kb = self.ru_maxrss;
    r->platform_rss_kb = sandbox_child_peak_rss_kb(&sb->child);
    int64_t first = 0, last = 0;
    pthread_mutex_lock(&sb->lock);
    for (size_t i = 0; i < sb->norders; i++)
        if (first == 0 || sb->orders[i].placed_ms < first)
            first = sb->orders[i].placed_ms;
    pthread_mutex_unlock(&sb->lock);
    err e;
    err_clear(&e);
    db_conn *c = db_acquire(sb->d, &e);
    const char *p[] = {sb->tenant};
    db_stmt *s = c ? db_prepare_texts(c,
                                      "SELECT MAX(created_at) FROM event_log WHERE tenant_id = $1"
                                      " AND event_type = 'order.fulfilled'",
                                      p, 1, &e)
                   : NULL;
    if (s && db_step(s, &e) == DB_ROW)
        last = db_col_int64(s, 0);
    db_finalize(s);
    if (c)
        db_release(c);
    if (first > 0 && last > first && r->fulfilled > 0) {
        r->window_ms = last - first;
        r->orders_per_s = r->fulfilled * 1000.0 / (double)r->window_ms;
    }
}

/* --summary-json: the summary as one JSON object (and a newline) in path. */
static int write_summary_json(const sandbox *sb, const sandbox_report *r, const char *path)
{
    bool pg = strncmp(sb->db_url, "postgres", 8) == 0;
    json_t *j = json_pack(
        "{s:s,s:i,s:f,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:I,s:I,s:I,s:f,s:I,s:I,s:i,s:i}",
        "backend", pg ? "postgres" : "sqlite", "orders", r->orders, "rate", sb->a.rate, "print_ms",
        (int)sb->a.print_ms, "fulfilled", r->fulfilled, "cancelled", r->cancelled,
        "waiting_mapping", r->waiting_mapping, "other", r->other, "violations", r->violations,
        "print_jobs", r->print_jobs, "shipments", r->shipments, "latency_samples", (int)r->nlatency,
        "p50_ms", (json_int_t)r->p50_ms, "p99_ms", (json_int_t)r->p99_ms, "window_ms",
        (json_int_t)r->window_ms, "orders_per_s", r->orders_per_s, "platform_peak_rss_kb",
        (json_int_t)r->platform_rss_kb, "sandbox_peak_rss_kb", (json_int_t)r->sandbox_rss_kb,
        "platform_starts", sb->child.starts, "kills", sb->child.kills);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    FILE *f = text ? fopen(path, "w") : NULL;
    int rc = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF ? 0 : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    free(text);
    if (rc)
        fprintf(stderr, "f3connect sandbox: cannot write the summary to %s: %s\n", path,
                f ? strerror(errno) : "out of memory or cannot open");
    return rc;
}

int sandbox_run(const sandbox_args *a)
{
    sandbox *sb = calloc(1, sizeof *sb);
    if (!sb)
        return 1;
    sb->a = *a;
    pthread_mutex_init(&sb->lock, NULL);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    err e;
    err_clear(&e);
    int status = 1;
    sandbox_report r;
    sandbox_report_init(&r);
    if (start_all(sb, &e)) {
        fprintf(stderr, "f3connect sandbox: %s\n", e.msg);
        goto out;
    }
    pthread_t gen, kill_thread, fault_thread;
    bool chaos_on = a->kills > 0, faults_on = a->faults > 0 || a->drop_rate > 0;
    pthread_create(&gen, NULL, generator, sb);
    if (chaos_on)
        pthread_create(&kill_thread, NULL, chaos, sb);
    if (faults_on)
        pthread_create(&fault_thread, NULL, faults, sb);
    if (!a->until_done) {
        banner(sb);
        watch(sb);
        status = 0;
    } else {
        int rc = settle(sb, &r, &e);
        if (rc) {
            fprintf(stderr, "f3connect sandbox: the check could not run: %s\n", e.msg);
            r.violations++;
            buf_printf(&r.problems, "  - the check could not run: %s\n", e.msg);
        }
        status = r.violations ? 1 : 0;
    }
    atomic_store(&sb->stop, true);
    pthread_join(gen, NULL);
    if (chaos_on)
        pthread_join(kill_thread, NULL);
    if (faults_on)
        pthread_join(fault_thread, NULL);
    if (a->until_done) {
        measure(sb, &r);
        printf("platform starts: %d, kills: %d\n", sb->child.starts, sb->child.kills);
        sandbox_report_print(&r, stdout);
        if (a->summary_json && write_summary_json(sb, &r, a->summary_json) != 0)
            status = 1;
    }
out:
    stop_all(sb);
    sandbox_report_free(&r);
    pthread_mutex_destroy(&sb->lock);
    free(sb);
    return status;
}
