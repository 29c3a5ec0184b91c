/*
 * server.h - the HTTP server: a libmicrohttpd daemon with a thread pool that
 * serves a route table, enforces size and time limits and shuts down gracefully.
 *
 * Handlers run on the pool's threads and may block; every request gets a
 * correlation id (echoed in X-Correlation-Id and set for its log lines), one
 * access log line ("request completed") and, for errors the server answers
 * itself, the JSON error body of response.h.
 *
 * A few malformed requests are answered by libmicrohttpd itself, with its own
 * small HTML body instead of ours, because they fail before any of our code
 * sees them: a request line or header block larger than the connection memory
 * (about 2 * max_header + 16 KiB; 414 or 431), a malformed request line or
 * header line (400) or HTTP version (505), a malformed Content-Length or
 * chunked encoding (400) and a Content-Length or chunk size above 2^64 (413).
 */
#ifndef F3_HTTP_SERVER_H
#define F3_HTTP_SERVER_H

#include "core/err.h"
#include "http/router.h"

#include <stddef.h>

/* Defaults used where an option is 0. */
#define HTTP_DEFAULT_HOST                "0.0.0.0"
#define HTTP_DEFAULT_THREADS             4
#define HTTP_DEFAULT_MAX_BODY            ((size_t)1024 * 1024)
#define HTTP_DEFAULT_MAX_HEADER          ((size_t)16 * 1024)
#define HTTP_DEFAULT_REQUEST_TIMEOUT_MS  30000
#define HTTP_DEFAULT_SHUTDOWN_TIMEOUT_MS 10000

/* Decides whether a routed request may reach its handler. Called on a pool
 * thread once the headers are complete and the route is known, before the body
 * is read and before the handler runs; may block (a database lookup) and may
 * attach the caller's identity with http_req_set_user(). Returns 0 to let the
 * handler run; a positive value when it has written the response itself (401,
 * 403, 429, ...); a negative F3_E* code for a failure, answered with 500. */
typedef int (*http_guard)(http_request *req, const http_route *route, http_response *res,
                          void *ctx);

/* Called on every response the server sends (handler answers, guard refusals,
 * the server's own errors) just before it goes out, to add headers such as the
 * security headers. req may be one whose route is unknown. Must not fail. */
typedef void (*http_response_hook)(const http_request *req, http_response *res, void *ctx);

typedef struct http_server_opts {
    const char *host;  /* address to bind (IPv4 or IPv6 literal or name); NULL = default */
    int port;          /* 0 = pick a free port (see http_server_port) */
    unsigned threads;  /* size of the thread pool */
    size_t max_body;   /* larger bodies get 413, refused before they are read */
    size_t max_header; /* a longer request target gets 414, a larger request line +
                        * headers block 431 */
    /* A client must send its request line and headers within this time, counted
     * from connect or from the end of its previous request, and may not stay
     * silent longer than this (rounded up to whole seconds) at any later point. */
    unsigned request_timeout_ms;
    unsigned shutdown_timeout_ms; /* how long http_server_stop waits for requests */
    http_guard guard;             /* NULL: every routed request reaches its handler */
    void *guard_ctx;
    http_response_hook on_response; /* NULL: none */
    void *on_response_ctx;
} http_server_opts;

typedef struct http_server http_server;

/* Binds, listens and starts serving `r`, which must outlive the server and not
 * change while it runs. NULL on failure with e set, e.g.
 * "cannot listen on 0.0.0.0:3000: Address already in use".
 * Caller stops and frees the server with http_server_stop(). */
http_server *http_server_start(const http_router *r, const http_server_opts *o, err *e);

/* The port the server listens on (the one picked when opts.port was 0). */
int http_server_port(const http_server *s);

/* Requests whose headers have arrived and whose response is not yet sent. */
unsigned http_server_in_flight(const http_server *s);

/* Stops gracefully: new connections are refused at once, requests in flight get
 * up to shutdown_timeout_ms to finish and send their response (requests that
 * arrive meanwhile on open connections get 503), then the daemon stops and the
 * server is freed. A handler still running at the bound is waited for (a thread
 * cannot be cancelled) but its response is dropped.
 * Returns 0 if every request finished, F3_EBUSY if the bound was hit. NULL is
 * allowed (returns 0). */
int http_server_stop(http_server *s);

#endif
