/*
 * client.h - the outgoing HTTP client (libcurl) used by every integration and by
 * services calling each other over HTTP.
 *
 * One call = one request and its complete response, classified once as OK,
 * transient (worth retrying) or permanent. This module never retries and never
 * follows redirects: retries with backoff belong to the queue layer, which can use
 * http_client_backoff_ms() and the Retry-After value found here.
 *
 * Secrets: header values and bodies are never logged and never put into error
 * messages; URLs in messages and logs lose their query string and user info.
 *
 * Thread-safe. Each thread keeps one cached curl handle so keep-alive connections
 * are reused between calls on that thread; it is released when the thread exits
 * (or by http_client_cleanup() for the calling thread).
 */
#ifndef F3_HTTP_CLIENT_H
#define F3_HTTP_CLIENT_H

#include "core/buf.h"
#include "core/err.h"

#include <jansson.h>
#include <stddef.h>

#define HTTP_CLIENT_DEFAULT_TIMEOUT_MS         30000L
#define HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS 5000L
#define HTTP_CLIENT_DEFAULT_MAX_RESPONSE       ((size_t)16 * 1024 * 1024)
#define HTTP_CLIENT_RETRY_AFTER_MAX_MS         (3600L * 1000L) /* Retry-After is capped here */

typedef enum http_failure { HTTP_OK = 0, HTTP_TRANSIENT, HTTP_PERMANENT } http_failure;

typedef struct http_client_request {
    const char *method;         /* "GET", "POST", ...; upper-case token */
    const char *url;            /* http:// or https:// only */
    const char *const *headers; /* NULL-terminated "Name: value" strings, may be NULL;
                                   "Name:" alone removes a header curl would send */
    const void *body;           /* may be NULL */
    size_t body_len;            /* bytes of body; 0 with a NULL body */
    const char *content_type;   /* e.g. "application/json"; NULL = none */
    long timeout_ms;            /* whole request; 0 = HTTP_CLIENT_DEFAULT_TIMEOUT_MS */
    long connect_timeout_ms;    /* 0 = HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS */
    size_t max_response;        /* cap on the response body; 0 = 16 MiB */
} http_client_request;

typedef struct http_client_response {
    long status;          /* 0 if no HTTP response was received */
    buf body;             /* response body, NUL-terminated (buf_cstr) */
    long retry_after_ms;  /* from Retry-After, capped at 1 h; -1 if absent or unusable */
    http_failure failure; /* classification of the whole call */
    long duration_ms;     /* time spent in the call */
    /* Private: the final response's headers as "name\0value\0" pairs. Use http_client_header(). */
    buf headers;
    size_t header_count;
} http_client_response;

/* Initialises libcurl once for the process; call at start-up before any thread sends.
 * Counted: each successful call needs one http_client_cleanup(). 0 or F3_EIO. */
int http_client_init(void);

/* Releases the calling thread's cached handle and, with the last matching call,
 * libcurl's global state. Other threads' handles are released when they exit. */
void http_client_cleanup(void);

/*
 * Sends rq and fills rs (rs may be NULL when the caller wants only the outcome).
 * rs is initialised by the call, whatever its previous content: free an earlier
 * response before reusing the struct. Caller frees rs with http_client_response_free()
 * after every call, successful or not.
 *
 * Returns 0 on a 2xx response;
 *   F3_ETRANSIENT for connection and DNS errors, timeouts, 408, 429 and 5xx;
 *   F3_EPERMANENT for other 4xx, 3xx (redirects are not followed) and unusable
 *                 responses (body over max_response, malformed);
 *   F3_EINVAL for a bad request (no URL, bad method, header with CR/LF);
 *   F3_ENOMEM.
 * e->msg reads "POST http://host/path: 503 Service Unavailable" or
 * "GET http://host/path: timed out after 3000 ms"; never header values or bodies.
 *
 * X-Correlation-Id is sent with the thread's correlation id (log.h) unless the caller
 * passes one; User-Agent is "f3connect/<version>" unless the caller passes one.
 */
int http_client_send(const http_client_request *rq, http_client_response *rs, err *e);

/* The value of response header `name` (case-insensitive), or NULL. With repeated
 * headers, the first. Borrowed from rs until http_client_response_free(). */
const char *http_client_header(const http_client_response *rs, const char *name);

/* Frees what rs holds and leaves it empty (status 0, retry_after_ms -1). NULL is fine. */
void http_client_response_free(http_client_response *rs);

/*
 * JSON convenience over http_client_send(): `body` (may be NULL) is sent compact as
 * application/json; "Accept: application/json" is added unless given in `headers`.
 * On a 2xx, *out (if out is not NULL) receives the parsed response - NULL for an
 * empty body or 204 - and the caller releases it with json_decref(). A 2xx whose
 * body is not JSON is F3_EPERMANENT. On any error *out is NULL and rs->body still
 * holds the server's answer (e.g. a JSON error document of a 4xx).
 * timeout_ms as in http_client_request. Return codes as http_client_send().
 */
int http_client_json(const char *method, const char *url, const char *const *headers,
                     const json_t *body, long timeout_ms, json_t **out, http_client_response *rs,
                     err *e);

/*
 * The one classification of an outcome: curl_code (a CURLcode, 0 = transfer completed)
 * decides when non-zero, otherwise the HTTP status does. Exported for tests and for
 * callers that classify stored outcomes. Transient: connect/DNS/timeouts/network
 * errors, status 0, 408, 425, 429, 5xx. Permanent: configuration or protocol errors,
 * response too large, 1xx/3xx/other 4xx, statuses outside 100..599.
 */
http_failure http_client_classify(long status, int curl_code);

/* "ok", "transient" or "permanent". */
const char *http_client_failure_name(http_failure f);

/*
 * Parses a Retry-After value: delta-seconds ("120") or an HTTP-date
 * ("Wed, 21 Oct 2015 07:28:00 GMT"), relative to now_s (epoch seconds).
 * Returns milliseconds to wait, capped at HTTP_CLIENT_RETRY_AFTER_MAX_MS; 0 for a
 * date in the past; -1 for NULL, negative or unparsable values.
 */
long http_client_parse_retry_after(const char *value, long now_s);

/* Flags of http_client_backoff_ex(). */
#define HTTP_BACKOFF_JITTER 0x1u /* take up to 20% off the exponential delay, at random */

/*
 * Delay before retry number `attempt` (1 = first retry): base_ms * 2^(attempt-1),
 * capped at max_ms (max_ms <= 0: no cap), or retry_after_ms when that is larger
 * (a server's Retry-After is honoured even above max_ms, up to 1 h; -1 = none).
 * attempt < 1 counts as 1; base_ms < 0 as 0. Deterministic.
 */
long http_client_backoff_ms(int attempt, long base_ms, long max_ms, long retry_after_ms);

/* As http_client_backoff_ms(); with HTTP_BACKOFF_JITTER the exponential part is
 * reduced by a random 0..20% so that many clients do not retry in lock-step
 * (never below retry_after_ms). */
long http_client_backoff_ex(int attempt, long base_ms, long max_ms, long retry_after_ms,
                            unsigned flags);

#endif
