/*
 * router.h - the route table: patterns, matching, path parameters.
 *
 * Routes are declared as tables of http_route rows and added in one call. A
 * request path is percent-decoded per segment and matched against every pattern;
 * the most specific match wins (a literal segment beats a :param, a :param beats
 * the trailing *). The router knows nothing of sockets or libmicrohttpd and must
 * not: the server hands it a method and the raw path as sent.
 *
 * Patterns:
 *     "/health"              literal segments
 *     "/api/v1/orders/:id"   a parameter matching one non-empty segment
 *     "/static/" + "*"       a last segment of just '*' is a wildcard matching zero
 *                            or more segments; its value ("css/app.css") is the
 *                            parameter "*"
 * A trailing slash is ignored, in patterns and in request paths alike.
 */
#ifndef F3_HTTP_ROUTER_H
#define F3_HTTP_ROUTER_H

#include "core/err.h"

#include <stddef.h>

typedef struct http_request http_request;
typedef struct http_response http_response;

/* A request handler. It fills `res` (see response.h) and returns 0; a negative
 * F3_E* code (or returning without a response) makes the server answer 500 with
 * the message "Internal server error", so say nothing internal in it. */
typedef int (*http_handler)(http_request *req, http_response *res, void *ctx);

/* Access markers a route may declare (see http_route.access). */
#define HTTP_ACCESS_PUBLIC "public" /* anyone: health, login, static assets */
/* Provider webhooks: anyone may call, the handler checks the provider's signature; not
 * rate-limited per address (a provider sends from few addresses, and a refused delivery
 * only comes back later, or makes the provider drop the subscription). */
#define HTTP_ACCESS_WEBHOOK  "webhook"
#define HTTP_ACCESS_SESSION  "session"  /* any signed-in user, whatever the permissions */
#define HTTP_ACCESS_INTERNAL "internal" /* service-to-service calls under /internal/ */

typedef struct http_route {
    const char *method;  /* upper-case token: "GET", "POST", ... */
    const char *pattern; /* see above */
    http_handler handler;
    void *ctx; /* handed to the handler as is */
    /* Who may call the route: one of the HTTP_ACCESS_* markers or a permission
     * name ("orders.read"). The router only carries it to the server's guard
     * (server.h), which decides; a route that declares nothing (NULL, as the
     * positional {method, pattern, handler, ctx} initialiser leaves it) is to be
     * denied by any guard. */
    const char *access;
} http_route;

typedef struct http_router http_router;

/* An empty router; NULL when out of memory. Caller frees with http_router_free(). */
http_router *http_router_new(void);

/* Frees the router and its copies of the routes. NULL is allowed. */
void http_router_free(http_router *r);

/* Adds n routes (the strings are copied). Rejects the whole batch, adding none,
 * when a method or pattern is malformed or a route has the same method and the
 * same shape as another ("/a/:id" and "/a/:key" are the same shape).
 * 0, F3_EINVAL or F3_ENOMEM; e says which route was wrong and why. */
int http_router_add(http_router *r, const http_route *routes, size_t n, err *e);

/* Number of routes in the router. */
size_t http_router_count(const http_router *r);

#define HTTP_ALLOW_MAX 128

/* The outcome of routing one request. */
typedef struct http_match {
    int status;                 /* 200 matched, 400 bad path, 404 no path, 405 wrong method */
    const http_route *route;    /* the route when status is 200; owned by the router */
    char allow[HTTP_ALLOW_MAX]; /* 405: the methods the path has, "GET, HEAD, POST" */
    char message[160];          /* 400/404/405: what to tell the client */
    /* private to router.c */
    const void *entry_;
    char *segbuf_;
    char **segs_;
    size_t nsegs_;
    char *wildcard_;
} http_match;

/* Routes `method` + `raw_path` (the request target up to '?', still
 * percent-encoded). Fills m in every case; a HEAD request is served by the GET
 * route when there is no HEAD route. Returns m->status, or F3_ENOMEM (m->status
 * is then 500). Free m with http_match_free() whatever the result. */
int http_router_match(const http_router *r, const char *method, const char *raw_path,
                      http_match *m);

/* The decoded value of path parameter `name` ("*" for the wildcard), or NULL.
 * Borrowed until http_match_free(). */
const char *http_match_param(const http_match *m, const char *name);

/* Frees what a match holds; m may be freed twice or after a failed match. */
void http_match_free(http_match *m);

#endif
