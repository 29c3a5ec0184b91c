/*
 * f3test_http.c - raw HTTP/1.1 test client (see f3test_http.h).
 *
 * Reads are unbuffered (headers byte by byte, bodies by exact length) so that
 * nothing of a following response is ever swallowed; responses in tests are
 * small enough for that not to matter.
 */
#include "support/f3test_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_S   10
#define HEAD_MAX       (64 * 1024)
#define BODY_MAX       ((size_t)16 * 1024 * 1024)
#define CHUNK_LINE_MAX 128

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int f3test_http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int f3test_http_send(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* True if the peer has closed or reset the connection (data it sent is left). */
static bool peer_closed(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) <= 0)
        return false;
    if (pfd.revents & (POLLERR | POLLHUP))
        return true;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

int f3test_http_send_slowly(int fd, const void *data, size_t len, size_t chunk, unsigned delay_ms,
                            size_t *sent)
{
    const char *p = data;
    size_t done = 0;
    int rc = 0;
    if (chunk == 0)
        chunk = 1;
    while (done < len) {
        size_t n = len - done < chunk ? len - done : chunk;
        if (peer_closed(fd) || f3test_http_send(fd, p + done, n) != 0) {
            rc = -1;
            break;
        }
        done += n;
        if (done < len)
            sleep_ms(delay_ms);
    }
    if (sent)
        *sent = done;
    return rc;
}

/* Reads exactly len bytes; -1 on close, error or timeout. */
static int read_exact(int fd, char *out, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, out, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        out += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one CRLF- (or LF-) terminated line into out without the terminator. */
static int read_line(int fd, char *out, size_t size)
{
    size_t n = 0;
    for (;;) {
        char c;
        if (read_exact(fd, &c, 1) != 0)
            return -1;
        if (c == '\n')
            break;
        if (n + 1 >= size)
            return -1;
        out[n++] = c;
    }
    if (n > 0 && out[n - 1] == '\r')
        n--;
    out[n] = '\0';
    return 0;
}

static int body_append(f3test_http_response *r, const char *data, size_t len)
{
    if (r->body_len + len > BODY_MAX)
        return -1;
    char *grown = realloc(r->body, r->body_len + len + 1);
    if (!grown)
        return -1;
    r->body = grown;
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

static int read_fixed_body(int fd, f3test_http_response *r, size_t len)
{
    if (len > BODY_MAX)
        return -1;
    char *b = malloc(len + 1);
    if (!b)
        return -1;
    int rc = read_exact(fd, b, len);
    if (rc == 0)
        rc = body_append(r, b, len);
    free(b);
    return rc;
}

static int read_chunked_body(int fd, f3test_http_response *r)
{
    char line[CHUNK_LINE_MAX];
    for (;;) {
        if (read_line(fd, line, sizeof line) != 0)
            return -1;
        char *end;
        unsigned long size = strtoul(line, &end, 16);
        if (end == line)
            return -1;
        if (size == 0)
            break;
        if (read_fixed_body(fd, r, size) != 0 || read_line(fd, line, sizeof line) != 0)
            return -1;
    }
    do { /* trailers up to the empty line */
        if (read_line(fd, line, sizeof line) != 0)
            return -1;
    } while (line[0] != '\0');
    return 0;
}

static int read_to_close(int fd, f3test_http_response *r)
{
    char tmp[4096];
    for (;;) {
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            return 0;
        if (n < 0)
            return errno == ECONNRESET ? 0 : -1;
        if (body_append(r, tmp, (size_t)n) != 0)
            return -1;
    }
}

static int parse_status_line(const char *line, f3test_http_response *r)
{
    /* strncmp matched 7 bytes, so line[7] is initialised (analyzer false positive). */
    // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
    if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') || line[8] != ' ')
        return -1;
    char *end = NULL;
    long status = strtol(line + 9, &end, 10);
    if (end != line + 12 || status < 100 || status > 999)
        return -1;
    r->status = (int)status;
    const char *reason = end;
    while (*reason == ' ')
        reason++;
    r->reason = strdup(reason);
    return r->reason ? 0 : -1;
}

static int parse_header_line(char *line, f3test_http_response *r)
{
    char *colon = strchr(line, ':');
    if (!colon || colon == line || r->nheaders == F3TEST_HTTP_MAX_HEADERS)
        return -1;
    *colon = '\0';
    char *value = colon + 1;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t vlen = strlen(value);
    while (vlen && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
        value[--vlen] = '\0';
    f3test_http_header *h = &r->headers[r->nheaders];
    h->name = strdup(line);
    h->value = strdup(value);
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        return -1;
    }
    r->nheaders++;
    return 0;
}

int f3test_http_read_response(int fd, bool head, f3test_http_response *out)
{
    memset(out, 0, sizeof *out);
    char *line = malloc(HEAD_MAX);
    int rc = -1;
    if (!line)
        return -1;
    do { /* skip interim 1xx responses */
        f3test_http_response_free(out);
        if (read_line(fd, line, HEAD_MAX) != 0 || parse_status_line(line, out) != 0)
            goto out;
        for (;;) {
            if (read_line(fd, line, HEAD_MAX) != 0)
                goto out;
            if (line[0] == '\0')
                break;
            if (parse_header_line(line, out) != 0)
                goto out;
        }
    } while (out->status < 200);
    out->body = strdup("");
    if (!out->body)
        goto out;
    const char *te = f3test_http_header_get(out, "Transfer-Encoding");
    const char *cl = f3test_http_header_get(out, "Content-Length");
    if (head || out->status == 204 || out->status == 304)
        rc = 0;
    else if (te && strcasecmp(te, "chunked") == 0)
        rc = read_chunked_body(fd, out);
    else if (cl)
        rc = read_fixed_body(fd, out, strtoul(cl, NULL, 10));
    else
        rc = read_to_close(fd, out);
out:
    free(line);
    if (rc != 0)
        f3test_http_response_free(out);
    return rc;
}

int f3test_http_request(int port, const char *raw, f3test_http_response *out)
{
    memset(out, 0, sizeof *out);
    int fd = f3test_http_connect(port);
    if (fd < 0)
        return -1;
    /* A failed send still leaves an answer to read: the server may refuse early. */
    f3test_http_send(fd, raw, strlen(raw));
    int rc = f3test_http_read_response(fd, strncmp(raw, "HEAD ", 5) == 0, out);
    close(fd);
    return rc;
}

const char *f3test_http_header_get(const f3test_http_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

void f3test_http_response_free(f3test_http_response *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->reason);
    free(r->body);
    memset(r, 0, sizeof *r);
}

int f3test_http_open_idle(int port, const char *prefix)
{
    int fd = f3test_http_connect(port);
    if (fd >= 0 && prefix && f3test_http_send(fd, prefix, strlen(prefix)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

bool f3test_http_wait_closed(int fd, unsigned timeout_ms)
{
    char tmp[1024];
    unsigned waited = 0;
    while (waited <= timeout_ms) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 50);
        if (pr > 0) {
            ssize_t n = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
                return true;
        } else {
            waited += 50;
        }
    }
    return false;
}
