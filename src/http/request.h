/*
 * request.h - what a handler may ask of the request it serves.
 *
 * A request lives from the moment its headers are complete until its response
 * has been sent; every string returned here is borrowed for that long. Handlers
 * run on one of the server's threads and may block (on a database, say).
 */
#ifndef F3_HTTP_REQUEST_H
#define F3_HTTP_REQUEST_H

#include "http/response.h"

#include <jansson.h>
#include <stddef.h>

typedef struct http_request http_request;

/* The method as sent ("GET", "POST", ...). */
const char *http_req_method(const http_request *req);

/* The path as sent, still percent-encoded, without the query. */
const char *http_req_path(const http_request *req);

/* The query as sent (after '?', not decoded); "" when there is none. */
const char *http_req_query(const http_request *req);

/* The decoded value of the first query parameter `name` ('+' reads as a space),
 * "" for "?flag" without '=', NULL when absent. */
const char *http_req_query_param(const http_request *req, const char *name);

/* A request header by name, case-insensitively; NULL when absent. */
const char *http_req_header(const http_request *req, const char *name);

/* A path parameter of the matched route (":id" is asked as "id", the trailing
 * wildcard as "*"), percent-decoded; NULL when the route has no such parameter. */
const char *http_req_param(const http_request *req, const char *name);

/* The body, NUL-terminated (it may also contain NULs); *len gets its length if
 * len is not NULL. Never NULL: a request without a body gives "". */
const char *http_req_body(const http_request *req, size_t *len);

/* The client's IP address as text ("127.0.0.1", "::1"). */
const char *http_req_remote_addr(const http_request *req);

/* The request's correlation id (see correlation.h). */
const char *http_req_correlation_id(const http_request *req);

/* A slot for the layer that authenticates requests: the user (or any context)
 * it resolved. free_user, if not NULL, is called on the value when the request
 * ends or the slot is set again. */
void *http_req_user(const http_request *req);
void http_req_set_user(http_request *req, void *user, void (*free_user)(void *));

/* Parses the body as JSON into *out (caller owns the reference: json_decref).
 * On failure writes the error into res and returns F3_EINVAL; the handler then
 * returns 0 so that this response is sent:
 *   415 when Content-Type is not application/json (a charset parameter other
 *       than utf-8 is refused too),
 *   400 for an empty body,
 *   400 for malformed JSON, naming line, column and byte position.
 * F3_ENOMEM when even the error could not be built. */
int http_req_json(http_request *req, json_t **out, http_response *res);

#endif
