/*
 * f3test_http.h - a raw HTTP/1.1 client for tests, over loopback sockets.
 *
 * Tests of the HTTP server need to send what no well-behaved client would:
 * malformed request lines, huge headers, bodies a byte at a time, nothing at
 * all. This client sends exactly the bytes it is given and parses what comes
 * back (status line, headers, a body framed by Content-Length, chunked encoding
 * or connection close). Every blocking call gives up after 10 s so a broken
 * server fails a test instead of hanging it.
 */
#ifndef F3_TESTS_SUPPORT_HTTP_H
#define F3_TESTS_SUPPORT_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define F3TEST_HTTP_MAX_HEADERS 64

typedef struct f3test_http_header {
    char *name;
    char *value;
} f3test_http_header;

typedef struct f3test_http_response {
    int status;   /* from the status line */
    char *reason; /* the rest of the status line */
    f3test_http_header headers[F3TEST_HTTP_MAX_HEADERS];
    size_t nheaders;
    char *body; /* NUL-terminated; "" when there is none */
    size_t body_len;
} f3test_http_response;

/* Connects to 127.0.0.1:port. The socket, or -1 with errno set (ECONNREFUSED
 * when nothing listens). Close it with close(). */
int f3test_http_connect(int port);

/* Sends all len bytes. 0, or -1 if the peer reset the connection or closed it. */
int f3test_http_send(int fd, const void *data, size_t len);

/* Sends data `chunk` bytes at a time with delay_ms between pieces, the way a
 * slowloris client does. 0 when everything was sent; -1 as soon as the peer has
 * closed the connection (then *sent, if not NULL, says how far it got). */
int f3test_http_send_slowly(int fd, const void *data, size_t len, size_t chunk, unsigned delay_ms,
                            size_t *sent);

/* Reads one response. head: the request was HEAD, so no body follows the
 * headers. 0, or -1 if the connection closed or timed out before a complete,
 * well-formed response arrived. Free out with f3test_http_response_free(). */
int f3test_http_read_response(int fd, bool head, f3test_http_response *out);

/* Connects, sends raw, reads one response and closes. 0 or -1 as above
 * (connect failures too). A raw request starting "HEAD " is read as HEAD. */
int f3test_http_request(int port, const char *raw, f3test_http_response *out);

/* A response header by name, case-insensitively; NULL when absent. */
const char *f3test_http_header_get(const f3test_http_response *r, const char *name);

/* Frees what a response holds and zeroes it. */
void f3test_http_response_free(f3test_http_response *r);

/* Opens a connection and sends `prefix` (NULL for nothing), then leaves it idle.
 * The socket, or -1. */
int f3test_http_open_idle(int port, const char *prefix);

/* Waits up to timeout_ms for the peer to close the connection, discarding what
 * it sends meanwhile. True once it has closed (or reset) the connection. */
bool f3test_http_wait_closed(int fd, unsigned timeout_ms);

#endif
