/*
 * response.h - what a handler sends back: JSON, text or bytes, headers, and the
 * one error body used everywhere.
 *
 * Every error f3connect answers itself looks like
 *     {"statusCode":404,"error":"Not Found","message":"Order not found: 42",
 *      "correlationId":"..."}
 * and is made by http_res_error(). A builder replaces whatever status and body
 * the response had; headers accumulate. The server adds X-Correlation-Id.
 */
#ifndef F3_HTTP_RESPONSE_H
#define F3_HTTP_RESPONSE_H

#include "http/status.h"

#include <jansson.h>
#include <stddef.h>

typedef struct http_response http_response;

#define HTTP_JSON_CONTENT_TYPE "application/json; charset=utf-8"
#define HTTP_TEXT_CONTENT_TYPE "text/plain; charset=utf-8"

/* Serialises body (compact) as the response with Content-Type application/json.
 * The reference to body is stolen in every case, including errors.
 * 0; F3_EINVAL if status is not 200..599 or body is NULL; F3_ENOMEM. */
int http_res_json(http_response *res, int status, json_t *body);

/* A NUL-terminated text body; content_type NULL means HTTP_TEXT_CONTENT_TYPE.
 * 0, F3_EINVAL (bad status, text NULL) or F3_ENOMEM. */
int http_res_text(http_response *res, int status, const char *content_type, const char *text);

/* len bytes of data (data may be NULL when len is 0); content_type NULL means
 * "application/octet-stream". 0, F3_EINVAL or F3_ENOMEM. */
int http_res_bytes(http_response *res, int status, const char *content_type, const void *data,
                   size_t len);

/* Sets a header, replacing one of the same name (case-insensitive). Setting
 * Content-Type changes the body's type. Refuses (F3_EINVAL) names that are not
 * HTTP tokens, values with CR, LF or other control characters, and the headers
 * the server owns: Content-Length, Transfer-Encoding, X-Correlation-Id. */
int http_res_header(http_response *res, const char *name, const char *value);

/* The error body above with `status` and the formatted message. The message goes
 * to the client: never put internals (SQL, paths, errno text) in it.
 * 0, F3_EINVAL (status not 400..599) or F3_ENOMEM. */
int http_res_error(http_response *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The status set so far; 0 while no builder has run. */
int http_res_status(const http_response *res);

#endif
