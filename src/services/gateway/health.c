/*
 * health.c - liveness and readiness probes.
 *
 * /health says the process is up and serving; /health/ready also proves the
 * database answers, so traffic is only sent to an instance that can do work.
 */
#include "services/gateway/health.h"

#include "core/clock.h"
#include "core/log.h"
#include "http/request.h"
#include "http/response.h"

#include <jansson.h>

static int health_live(http_request *req, http_response *res, void *arg)
{
    (void)req;
    health_ctx *ctx = arg;
    char now[CLOCK_ISO_LEN];
    clock_now_iso(now);
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:I}", "status", "ok", "version", F3_VERSION, "timestamp", now,
                  "uptimeMs", (json_int_t)(clock_now_ms() - ctx->started_ms));
    return http_res_json(res, 200, body);
}

static int health_ready(http_request *req, http_response *res, void *arg)
{
    (void)req;
    health_ctx *ctx = arg;
    err e;
    err_clear(&e);
    int64_t t0 = clock_mono_us();
    int rc = db_ping(ctx->store, &e);
    json_int_t us = (json_int_t)(clock_mono_us() - t0);
    json_t *db_check = rc == 0
                           ? json_pack("{s:s, s:s, s:I}", "status", "up", "backend",
                                       db_backend(ctx->store), "latencyUs", us)
                           : json_pack("{s:s, s:s, s:s}", "status", "down", "backend",
                                       db_backend(ctx->store), "message", "database unreachable");
    if (rc)
        log_warn("readiness check failed", "check", "database", "reason", e.msg);
    json_t *body = json_pack("{s:s, s:{s:o}}", "status", rc == 0 ? "ok" : "error", "checks",
                             "database", db_check);
    return http_res_json(res, rc == 0 ? 200 : 503, body);
}

int health_add_routes(http_router *r, health_ctx *ctx, err *e)
{
    const http_route routes[] = {
        {"GET", "/health", health_live, ctx, HTTP_ACCESS_PUBLIC},
        {"GET", "/health/ready", health_ready, ctx, HTTP_ACCESS_PUBLIC},
    };
    return http_router_add(r, routes, sizeof routes / sizeof routes[0], e);
}
