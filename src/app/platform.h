/*
 * platform.h - the parts of f3connect that run in one process, assembled.
 *
 * In embedded mode every service runs in the process `f3connect serve` starts:
 * one database (the SQLite file or PostgreSQL), the durable queues in it, the
 * gateway (sessions, limits, the request guard) and the services' routes. This is
 * the one place that knows which parts there are; each part is handed what it
 * needs (a db, a router, a queue store) and never asks which mode it runs in.
 */
#ifndef F3_APP_PLATFORM_H
#define F3_APP_PLATFORM_H

#include "bus/admin_http.h"
#include "bus/bus.h"
#include "bus/queue.h"
#include "core/config.h"
#include "db/db.h"
#include "http/router.h"
#include "http/server.h"
#include "services/common/deadletter.h"
#include "services/common/notify.h"
#include "services/common/retry.h"
#include "services/gateway/auth.h"
#include "services/gateway/health.h"
#include "services/orders/cancellation.h"
#include "services/orders/fulfillment.h"
#include "services/orders/intake.h"
#include "services/orders/orchestration.h"
#include "services/orders/orders_api.h"
#include "services/print/service.h"
#include "services/shipping/shipping.h"

/* The gateway's parts in this process: sessions in the database, limits in memory
 * (the distributed gateway swaps both for Redis). */
typedef struct platform_gateway {
    session_store *sessions;
    ratelimit *limits;
    auth *auth;
} platform_gateway;

typedef struct platform {
    const config *cfg; /* borrowed */
    db *store;
    bus_store *queues;
    platform_gateway gw;
    health_ctx health;
    bus_admin queue_admin;
    orders_api_deps orders_api;
    bus *orders_bus; /* the order service's events and jobs */
    orders_intake *intake;
    orders_orchestration *orchestration; /* order status from print-job events */
    bus_emitter *orders_emitter;         /* the order service's internal events */
    orders_fulfillment *fulfillment;
    orders_cancellation_deps cancellation;
    retry_queue *retry;     /* the order service's retry processor; register handlers before
                               bus_start */
    notify *notify;         /* operator e-mail (NOTIFICATION entries, daily summary) */
    deadletter *deadletter; /* operator alerts for dead-lettered bus jobs */
    bus *print_bus;         /* the print service's events and jobs */
    print_service *print;
    bus *shipping_bus; /* the shipping service's events and jobs */
    shipping_service *shipping;
    retry_queue *print_retry; /* the print service's retry processor (PRINT_JOB_CREATION,
                                 CANCELLATION), scheduled on print_bus */
    http_router *router;
} platform;

/* Opens the database (applying pending migrations), creates the first administrator
 * on a first start, and builds the gateway and every route. On error everything
 * opened so far is closed again and e says what failed. Then starts the services'
 * background work (queue workers, repeatable jobs). */
int platform_open(platform *p, const config *c, err *e);

/* Stops the services' background work: no new jobs start, running handlers finish
 * within timeout_ms. Call after the HTTP server has stopped. */
void platform_stop(platform *p, int timeout_ms);

/* The HTTP server options from the configuration, with the gateway's guard and
 * security headers. */
http_server_opts platform_http_opts(const platform *p);

/* Closes what platform_open opened (the HTTP server must be stopped first, and
 * platform_stop called when platform_open succeeded). */
void platform_close(platform *p);

#endif
