/*
 * sim.c - the Sendcloud simulator's life cycle and the control endpoints under /_sim/
 * that tests and the sandbox drive it with (faults, settings, moving parcels on, the
 * delivery log, request counts).
 *
 * The API itself lives in api.c, progression and webhooks in delivery.c, labels in
 * label.c. Nothing here talks to the real Sendcloud.
 */
#include "sim/sendcloud/sim_internal.h"

#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "sim/common/control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_PARCEL_ID 301000001LL

static const int fault_statuses[] = {429, 400, 422, 500, 501, 502, 503, 504};

static const sim_fault_kinds fault_kinds = {
    .statuses = fault_statuses,
    .nstatuses = sizeof fault_statuses / sizeof fault_statuses[0],
    .retry_after = 1,
    .usage = "expected {\"kind\": \"429|500|502|503|504|400|422|timeout\", \"count\": N}",
};

/* POST /_sim/faults {"kind": "429|500|502|503|504|400|422|timeout", "count": N,
 * "retry_after": seconds, "delay_ms": ms}: the next N API requests fail so. */
static int h_faults(http_request *req, http_response *res, void *ctx)
{
    sendcloud_sim *s = ctx;
    return sim_fault_handle(req, res, &s->lock, &s->fault, NULL, &fault_kinds);
}

static json_t *config_json(const sendcloud_sim *s)
{
    return json_pack("{s:s?,s:I,s:I,s:i,s:I,s:i,s:s}", "webhook_url", s->webhook_url, "step_ms",
                     (json_int_t)s->step_ms, "retry_base_ms", (json_int_t)s->courier.retry_base_ms,
                     "max_retries", s->courier.max_retries, "latency_ms", (json_int_t)s->latency_ms,
                     "drop_webhooks", s->drop_webhooks, "public_key", s->public_key);
}

/* POST /_sim/config {"webhook_url", "step_ms", "retry_base_ms", "max_retries", "latency_ms",
 * "drop_webhooks", "public_key", "secret_key", "webhook_secret"}: changes settings. */
static int h_config(http_request *req, http_response *res, void *ctx)
{
    sendcloud_sim *s = ctx;
    json_t *body = NULL;
    if (http_req_json(req, &body, res))
        return 0;
    int64_t step = -2, base = -1, retries = -1, latency = -1, drop = -2;
    err e;
    int rc;
    if (!json_is_object(body) || !sim_url_ok(json_object_get(body, "webhook_url")) ||
        json_opt_int(body, "step_ms", &step, -2, &e) ||
        json_opt_int(body, "retry_base_ms", &base, -1, &e) ||
        json_opt_int(body, "max_retries", &retries, -1, &e) ||
        json_opt_int(body, "latency_ms", &latency, -1, &e) ||
        json_opt_int(body, "drop_webhooks", &drop, -2, &e) || step > 3600000 || base > 3600000 ||
        retries > 30 || latency > 60000 || drop > 100000) {
        rc = http_res_error(res, 400,
                            "expected {\"webhook_url\": \"http://...\"|null, \"step_ms\": ms, "
                            "\"retry_base_ms\": ms, \"max_retries\": n, \"latency_ms\": ms, "
                            "\"drop_webhooks\": n|-1, \"public_key\", \"secret_key\", "
                            "\"webhook_secret\"}");
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    int bad = sim_set_string(&s->webhook_url, json_object_get(body, "webhook_url"), true) ||
              sim_set_string(&s->public_key, json_object_get(body, "public_key"), false) ||
              sim_set_string(&s->secret_key, json_object_get(body, "secret_key"), false) ||
              sim_set_string(&s->webhook_secret, json_object_get(body, "webhook_secret"), true);
    if (step >= -1)
        s->step_ms = step;
    if (base >= 0)
        s->courier.retry_base_ms = (long)base;
    if (retries >= 0)
        s->courier.max_retries = (int)retries;
    if (latency >= 0)
        s->latency_ms = (long)latency;
    if (drop >= -1)
        s->drop_webhooks = (int)drop;
    json_t *answer = config_json(s);
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    rc = bad ? (json_decref(answer), http_res_error(res, 400, "keys must be non-empty strings"))
             : http_res_json(res, 200, answer);
out:
    json_decref(body);
    return rc;
}

/* POST /_sim/advance {"parcel_id": N (optional)}: moves one parcel, or every parcel, one
 * status on at once. */
static int h_advance(http_request *req, http_response *res, void *ctx)
{
    sendcloud_sim *s = ctx;
    json_t *body = NULL;
    if (http_req_json(req, &body, res))
        return 0;
    int64_t id = 0;
    err e;
    int rc, moved = 0;
    if (json_opt_int(body, "parcel_id", &id, 0, &e)) {
        rc = http_res_error(res, 400, "expected {\"parcel_id\": N} or {}");
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nparcels; i++)
        if ((!id || s->parcels[i].id == id) && sc_advance(s, &s->parcels[i]))
            moved++;
    pthread_mutex_unlock(&s->lock);
    rc = http_res_json(res, 200, json_pack("{s:i}", "moved", moved));
out:
    json_decref(body);
    return rc;
}

/* POST /_sim/parcels/:id/status {"status_id": N}: sets any status (and fires its webhook). */
static int h_set_status(http_request *req, http_response *res, void *ctx)
{
    sendcloud_sim *s = ctx;
    json_t *body = NULL;
    if (http_req_json(req, &body, res))
        return 0;
    int64_t id = 0, status = 0;
    err e;
    int rc;
    if (str_to_int64(http_req_param(req, "id"), &id) ||
        json_get_int(body, "status_id", &status, &e) || status < 0) {
        rc = http_res_error(res, 400, "expected a parcel id and {\"status_id\": N}");
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    sc_parcel *p = sc_find_parcel(s, id);
    json_t *answer = NULL;
    if (p) {
        sc_set_status(s, p, status);
        answer = json_pack("{s:O}", "parcel", p->obj);
    }
    pthread_mutex_unlock(&s->lock);
    rc = answer ? http_res_json(res, 200, answer)
                : http_res_error(res, 404, "Parcel not found: %s", http_req_param(req, "id"));
out:
    json_decref(body);
    return rc;
}

static int h_parcels(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    sendcloud_sim *s = ctx;
    pthread_mutex_lock(&s->lock);
    json_t *list = json_array();
    for (size_t i = 0; i < s->nparcels; i++)
        json_array_append_new(list, json_pack("{s:s,s:i,s:O}", "shipment_id",
                                              s->parcels[i].shipment_id, "version",
                                              s->parcels[i].version, "parcel", s->parcels[i].obj));
    pthread_mutex_unlock(&s->lock);
    return http_res_json(res, 200, json_pack("{s:o}", "parcels", list));
}

static int h_stats(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    sendcloud_sim *s = ctx;
    pthread_mutex_lock(&s->lock);
    json_t *copy = json_deep_copy(s->stats);
    pthread_mutex_unlock(&s->lock);
    return http_res_json(res, 200, json_pack("{s:o}", "requests", copy));
}

static void parcels_clear(sendcloud_sim *s)
{
    for (size_t i = 0; i < s->nparcels; i++)
        json_decref(s->parcels[i].obj);
    s->nparcels = 0;
}

/* POST /_sim/reset: forgets parcels, deliveries, faults, request counts and drop settings. */
static int h_reset(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    sendcloud_sim *s = ctx;
    pthread_mutex_lock(&s->lock);
    parcels_clear(s);
    sim_courier_clear(&s->courier);
    json_object_clear(s->stats);
    s->fault = (sim_fault){0};
    s->drop_webhooks = 0;
    s->latency_ms = 0;
    pthread_mutex_unlock(&s->lock);
    return http_res_json(res, 200, json_pack("{s:b}", "reset", 1));
}

static int h_health(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    (void)ctx;
    return http_res_json(res, 200, json_pack("{s:s}", "status", "ok"));
}

static int add_control_routes(sendcloud_sim *s, err *e)
{
    const http_route routes[] = {
        {"GET", "/_sim/health", h_health, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/faults", h_faults, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/config", h_config, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/advance", h_advance, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/parcels/:id/status", h_set_status, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/_sim/parcels", h_parcels, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/_sim/deliveries", sim_courier_h_deliveries, &s->courier, HTTP_ACCESS_PUBLIC},
        {"GET", "/_sim/stats", h_stats, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/reset", h_reset, s, HTTP_ACCESS_PUBLIC},
    };
    return http_router_add(s->srv.router, routes, sizeof routes / sizeof routes[0], e);
}

sendcloud_sim *sendcloud_sim_start(const sendcloud_sim_opts *o, err *e)
{
    if (!o->public_key || !*o->public_key || !o->secret_key || !*o->secret_key) {
        err_set(e, F3_EINVAL, "the Sendcloud simulator needs a public key and a secret key");
        return NULL;
    }
    if (o->webhook_url && *o->webhook_url && !sim_is_http_url(o->webhook_url)) {
        err_set(e, F3_EINVAL, "webhook URL must be http:// or https://");
        return NULL;
    }
    sendcloud_sim *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, F3_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    s->public_key = str_dup(o->public_key);
    s->secret_key = str_dup(o->secret_key);
    s->webhook_secret = o->webhook_secret && *o->webhook_secret ? str_dup(o->webhook_secret) : NULL;
    s->webhook_url = o->webhook_url && *o->webhook_url ? str_dup(o->webhook_url) : NULL;
    s->step_ms = o->step_ms == 0 ? 5000 : o->step_ms < 0 ? -1 : o->step_ms;
    s->courier = (sim_courier){
        .lock = &s->lock,
        .wake = &s->wake,
        .stopping = &s->stopping,
        .timeout_ms = o->delivery_timeout_ms > 0 ? o->delivery_timeout_ms : 5000,
        .max_wait_ms = 500,
        .sign = sc_sign_attempt,
        .sign_ctx = s,
        .retry_base_ms = o->retry_base_ms > 0 ? o->retry_base_ms : 300000,
        .max_retries = o->max_retries > 0 ? o->max_retries : 10,
    };
    s->next_parcel_id = FIRST_PARCEL_ID;
    s->stats = json_object();
    if (sim_server_init(&s->srv, &s->lock, &s->stopping, e))
        goto fail;
    if (!s->public_key || !s->secret_key || !s->stats ||
        (o->webhook_url && *o->webhook_url && !s->webhook_url)) {
        err_set(e, F3_ENOMEM, "out of memory");
        goto fail;
    }
    if (add_control_routes(s, e) || sc_api_add_routes(s, e) ||
        sim_server_spawn(&s->srv, sc_worker, s, &s->wake, "the simulator's worker thread", e) ||
        sim_server_listen(&s->srv, o->host, o->port, 4, e))
        goto fail;
    return s;
fail:
    sendcloud_sim_stop(s);
    return NULL;
}

int sendcloud_sim_port(const sendcloud_sim *s)
{
    return sim_server_port(&s->srv);
}

void sendcloud_sim_stop(sendcloud_sim *s)
{
    if (!s)
        return;
    sim_server_stop(&s->srv);
    sim_courier_free(&s->courier);
    parcels_clear(s);
    free(s->parcels);
    json_decref(s->stats);
    free(s->public_key);
    free(s->secret_key);
    free(s->webhook_secret);
    free(s->webhook_url);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
