/*
 * correlation.h - choosing the correlation id of an incoming request.
 *
 * A request carries the caller's id when it has a sane X-Correlation-Id, else
 * the trace-id of a valid W3C traceparent, else a fresh UUID v4. Pure string
 * work: no headers are read here and nothing is logged.
 */
#ifndef F3_HTTP_CORRELATION_H
#define F3_HTTP_CORRELATION_H

#include <stdbool.h>

#define HTTP_CORRELATION_ID_MAX 128 /* longest id accepted from a client */
#define HTTP_TRACE_ID_LEN       32  /* hex digits of a W3C trace-id */

/* True if s is 1..HTTP_CORRELATION_ID_MAX visible ASCII characters (0x21-0x7e):
 * safe to echo in a header and to write in a log line. */
bool http_correlation_id_valid(const char *s);

/* Extracts the trace-id of a version-00 traceparent
 * ("00-<32 lower hex>-<16 lower hex>-<2 lower hex>", neither id all zeros).
 * Returns false (out untouched) if tp is NULL or malformed. */
bool http_traceparent_trace_id(const char *tp, char out[HTTP_TRACE_ID_LEN + 1]);

/* Picks the id for a request from its X-Correlation-Id and traceparent header
 * values (either may be NULL) as described above. */
void http_correlation_id(const char *x_correlation_id, const char *traceparent,
                         char out[HTTP_CORRELATION_ID_MAX + 1]);

#endif
