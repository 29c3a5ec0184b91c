/*
 * health.h - liveness and readiness probes (GET /health, GET /health/ready).
 *
 * Public, no authentication: load balancers and orchestrators call them.
 */
#ifndef F3_GATEWAY_HEALTH_H
#define F3_GATEWAY_HEALTH_H

#include "db/db.h"
#include "http/router.h"

typedef struct health_ctx {
    db *store;            /* borrowed; pinged by /health/ready */
    long long started_ms; /* epoch ms of process start, for uptime */
} health_ctx;

/* Adds the health routes to r; ctx is borrowed and must outlive the router. */
int health_add_routes(http_router *r, health_ctx *ctx, err *e);

#endif
