/*
 * exchange.h - the request and response of one HTTP exchange as the server
 * builds them: struct layouts and lifecycle.
 *
 * Only server.c, request.c and response.c include this file; handlers see the
 * opaque types through request.h and response.h and must not reach in here.
 */
#ifndef F3_HTTP_EXCHANGE_H
#define F3_HTTP_EXCHANGE_H

#include "core/buf.h"
#include "http/correlation.h"
#include "http/request.h"
#include "http/response.h"
#include "http/router.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

struct MHD_Connection;

typedef struct http_query_pair {
    char *name;  /* decoded */
    char *value; /* decoded */
} http_query_pair;

struct http_request {
    struct MHD_Connection *conn; /* header lookups; NULL outside the server */
    const char *method;          /* borrowed from libmicrohttpd */
    char *target;                /* the request target as sent: path?query (owned) */
    char *path;                  /* target up to '?' (owned) */
    const char *query;           /* inside target, after '?'; "" if none */
    http_query_pair *query_pairs;
    size_t nquery;
    http_match match;
    buf body;
    char correlation_id[HTTP_CORRELATION_ID_MAX + 1];
    char remote_addr[INET6_ADDRSTRLEN];
    void *user;
    void (*free_user)(void *);
};

typedef struct http_header_field {
    char *name;
    char *value;
} http_header_field;

struct http_response {
    int status; /* 0 until a builder ran */
    char *content_type;
    buf body;
    http_header_field *headers;
    size_t nheaders;
    size_t headers_cap;
    const char *correlation_id; /* borrowed from the request */
};

/* Prepares req for a request whose target (path?query, may be NULL) was sent;
 * body_cap bounds the body. 0 or F3_ENOMEM; release with http_req_cleanup(). */
int http_req_init(http_request *req, const char *target, size_t body_cap);

/* Splits and decodes the query into req->query_pairs. 0, F3_EINVAL (malformed
 * percent-encoding or a NUL byte; msg says which) or F3_ENOMEM. */
int http_req_parse_query(http_request *req, char *msg, size_t msg_size);

/* Frees everything req owns, including the user slot. */
void http_req_cleanup(http_request *req);

/* An empty response whose error bodies will carry correlation_id (borrowed). */
void http_res_init(http_response *res, const char *correlation_id);

/* Forgets status, body and headers, keeping the correlation id. */
void http_res_reset(http_response *res);

/* Frees everything res owns. */
void http_res_cleanup(http_response *res);

#endif
