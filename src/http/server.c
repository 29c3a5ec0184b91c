/*
 * server.c - the libmicrohttpd daemon behind http_server (see server.h).
 *
 * One request is one `exchange`, created when its request line arrives (the URI
 * log callback, the only place the raw target is visible) and freed when
 * libmicrohttpd reports it completed. The access handler is called three ways:
 * once when the headers are complete (we screen the request: limits, route,
 * query), once per piece of body, and once at the end (we run the handler and
 * queue the response). Handlers never see libmicrohttpd.
 *
 * Two things libmicrohttpd 0.9.75 cannot do are done here, narrowly:
 *  - Its connection timeout is an idle timeout, so a client trickling one header
 *    byte a second holds a connection for ever. A guard thread shuts down the
 *    socket of any connection whose headers are not complete request_timeout_ms
 *    after it connected (or after its previous request ended).
 *  - It cannot queue a response while a body is arriving, so a chunked body
 *    that passes max_body is answered by writing our 413 on the socket directly
 *    and then asking libmicrohttpd to close the connection.
 */
#include "http/server.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "http/exchange.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A connection as the slow-client guard sees it. */
typedef struct conn_watch {
    int fd;
    int64_t since_ms; /* connect, or end of the previous request */
    bool busy;        /* headers complete, request not yet finished */
    bool dropped;
    char addr[INET6_ADDRSTRLEN];
    /* The exchange on_uri made for the current request, until on_completed takes it: a
     * request libmicrohttpd gives up on while reading its header (too many query
     * arguments for the connection's pool) never reaches on_completed, so the connection's
     * close frees it. Touched only on the connection's own thread. */
    struct exchange *pending;
    struct conn_watch *prev, *next;
} conn_watch;

struct http_server {
    struct MHD_Daemon *mhd;
    const http_router *router;
    http_server_opts opts; /* defaults filled in; opts.host points at host */
    char host[256];
    int listen_fd; /* ours; libmicrohttpd gets a dup of it */
    int daemon_fd; /* libmicrohttpd's dup, returned by quiesce */
    int port;
    atomic_bool stopping;

    pthread_mutex_t lock; /* in_flight */
    pthread_cond_t drained;
    unsigned in_flight;

    pthread_mutex_t watch_lock; /* watches, guard_quit */
    pthread_cond_t guard_wake;
    conn_watch *watches;
    bool guard_quit;
    bool guard_running;
    pthread_t guard;
};

typedef struct exchange {
    http_request req;
    http_response res;
    int64_t start_us;
    bool started;  /* headers complete: the access handler has seen it */
    bool counted;  /* counted in in_flight */
    bool answered; /* res holds the server's own answer; no handler runs */
    int status;    /* status handed to the client, 0 if none yet */
    size_t bytes;  /* body bytes of that response */
    size_t body_seen;
} exchange;

/* ---- small helpers ----------------------------------------------------- */

static void exchange_free(exchange *x)
{
    http_res_cleanup(&x->res);
    http_req_cleanup(&x->req);
    free(x);
}

/* The connection's watch (on_connection), NULL when it has none. */
static conn_watch *watch_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The CLOCK_MONOTONIC instant `ms` from clock_mono_ms()'s scale. */
static struct timespec mono_deadline(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    return ts;
}

static void addr_format(const struct sockaddr *sa, char out[INET6_ADDRSTRLEN])
{
    out[0] = '\0';
    if (!sa)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  INET6_ADDRSTRLEN);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  INET6_ADDRSTRLEN);
}

static const char *header_of(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* libmicrohttpd's own diagnostics: noise for clients that misbehave, so debug. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_debug("libmicrohttpd", "detail", line);
}

/* ---- slow-client guard ------------------------------------------------- */

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_watch *w = calloc(1, sizeof *w);
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *addr =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!w || !fd) {
            free(w); /* unguarded; the idle timeout still applies */
            return;
        }
        w->fd = fd->connect_fd;
        w->since_ms = clock_mono_ms();
        addr_format(addr ? addr->client_addr : NULL, w->addr);
        pthread_mutex_lock(&s->watch_lock);
        w->next = s->watches;
        if (s->watches)
            s->watches->prev = w;
        s->watches = w;
        pthread_mutex_unlock(&s->watch_lock);
        *socket_context = w;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        /* Called before libmicrohttpd closes the fd: once unlinked here, the
         * guard can never shut down a descriptor number that was reused. */
        conn_watch *w = *socket_context;
        if (!w)
            return;
        if (w->pending) {
            log_warn("request given up while its header was read", "remoteAddr", w->addr);
            exchange_free(w->pending);
            w->pending = NULL;
        }
        pthread_mutex_lock(&s->watch_lock);
        if (w->prev)
            w->prev->next = w->next;
        else
            s->watches = w->next;
        if (w->next)
            w->next->prev = w->prev;
        pthread_mutex_unlock(&s->watch_lock);
        free(w);
        *socket_context = NULL;
    }
}

static void watch_set_busy(http_server *s, struct MHD_Connection *conn, bool busy)
{
    conn_watch *w = watch_of(conn);
    if (!w)
        return;
    pthread_mutex_lock(&s->watch_lock);
    w->busy = busy;
    w->since_ms = clock_mono_ms();
    pthread_mutex_unlock(&s->watch_lock);
}

static void *guard_main(void *arg)
{
    http_server *s = arg;
    const int64_t limit = s->opts.request_timeout_ms;
    pthread_mutex_lock(&s->watch_lock);
    while (!s->guard_quit) {
        int64_t now = clock_mono_ms();
        int64_t next = now + limit;
        for (conn_watch *w = s->watches; w; w = w->next) {
            if (w->busy || w->dropped)
                continue;
            int64_t deadline = w->since_ms + limit;
            if (deadline <= now) {
                /* libmicrohttpd sees end-of-stream and closes the connection */
                shutdown(w->fd, SHUT_RDWR);
                w->dropped = true;
                log_info("slow client dropped", "remoteAddr", w->addr);
            } else if (deadline < next) {
                next = deadline;
            }
        }
        struct timespec ts = mono_deadline(next);
        pthread_cond_timedwait(&s->guard_wake, &s->watch_lock, &ts);
    }
    pthread_mutex_unlock(&s->watch_lock);
    return NULL;
}

static void guard_stop(http_server *s)
{
    if (!s->guard_running)
        return;
    pthread_mutex_lock(&s->watch_lock);
    s->guard_quit = true;
    pthread_cond_signal(&s->guard_wake);
    pthread_mutex_unlock(&s->watch_lock);
    pthread_join(s->guard, NULL);
    s->guard_running = false;
}

/* ---- in-flight accounting ---------------------------------------------- */

static void in_flight_add(http_server *s, exchange *x)
{
    pthread_mutex_lock(&s->lock);
    s->in_flight++;
    x->counted = true;
    pthread_mutex_unlock(&s->lock);
}

static void in_flight_done(http_server *s, exchange *x)
{
    if (!x->counted)
        return;
    pthread_mutex_lock(&s->lock);
    if (--s->in_flight == 0)
        pthread_cond_broadcast(&s->drained);
    pthread_mutex_unlock(&s->lock);
    x->counted = false;
}

unsigned http_server_in_flight(const http_server *s)
{
    http_server *m = (http_server *)s; /* the lock is not part of the value */
    pthread_mutex_lock(&m->lock);
    unsigned n = m->in_flight;
    pthread_mutex_unlock(&m->lock);
    return n;
}

/* ---- responses --------------------------------------------------------- */

/* Hands x->res to libmicrohttpd. */
static enum MHD_Result queue_answer(http_server *s, struct MHD_Connection *conn, exchange *x,
                                    bool is_head)
{
    http_response *res = &x->res;
    if (s->opts.on_response)
        s->opts.on_response(&x->req, res, s->opts.on_response_ctx);
    size_t len = res->body.len;
    char *body = buf_detach(&res->body);
    if (!body)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    bool ok = true;
    if (res->content_type)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res->content_type) == MHD_YES;
    ok = ok && MHD_add_response_header(r, "X-Correlation-Id", x->req.correlation_id) == MHD_YES;
    for (size_t i = 0; ok && i < res->nheaders; i++)
        ok = MHD_add_response_header(r, res->headers[i].name, res->headers[i].value) == MHD_YES;
    if (ok && atomic_load(&s->stopping))
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
    if (!ok)
        log_warn("response header refused by libmicrohttpd", "path", x->req.path);
    enum MHD_Result qr = MHD_queue_response(conn, (unsigned)res->status, r);
    MHD_destroy_response(r);
    /* During daemon shutdown queueing "succeeds" without queueing anything. */
    if (qr == MHD_YES && MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS)) {
        x->status = res->status;
        x->bytes = is_head ? 0 : len;
    }
    return qr;
}

/* Writes x->res (an error body) straight to the socket and has libmicrohttpd
 * close the connection: the only way to answer in the middle of a body. */
static enum MHD_Result answer_on_socket(http_server *s, struct MHD_Connection *conn, exchange *x)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    http_response *res = &x->res;
    buf out;
    buf_init(&out, 0);
    int rc = buf_printf(&out,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "X-Correlation-Id: %s\r\nConnection: close\r\n",
                        res->status, MHD_get_reason_phrase_for((unsigned)res->status),
                        res->content_type, res->body.len, x->req.correlation_id);
    if (s->opts.on_response)
        s->opts.on_response(&x->req, res, s->opts.on_response_ctx);
    for (size_t i = 0; rc == 0 && i < res->nheaders; i++)
        rc = buf_printf(&out, "%s: %s\r\n", res->headers[i].name, res->headers[i].value);
    rc = rc ? rc : buf_puts(&out, "\r\n");
    rc = rc ? rc : buf_append(&out, buf_cstr(&res->body), res->body.len);
    size_t sent = 0;
    while (rc == 0 && ci && sent < out.len) {
        ssize_t n =
            send(ci->connect_fd, out.data + sent, out.len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    if (sent == out.len && rc == 0) {
        x->status = res->status;
        x->bytes = res->body.len;
    }
    buf_free(&out);
    return MHD_NO;
}

/* ---- the three calls of the access handler ----------------------------- */

static bool request_has_body(struct MHD_Connection *conn)
{
    if (header_of(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        return true;
    const char *cl = header_of(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return cl && strspn(cl, "0") != strlen(cl);
}

/* Declared Content-Length above the cap? (Ignored when Transfer-Encoding is
 * present, as libmicrohttpd ignores it; it has validated the digits.) */
static bool content_length_too_big(struct MHD_Connection *conn, size_t max)
{
    if (header_of(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        return false;
    const char *cl = header_of(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl)
        return false;
    errno = 0;
    unsigned long long n = strtoull(cl, NULL, 10);
    return errno == ERANGE || n > max;
}

/* Runs the guard: 0 when the handler may run, 1 when x->res holds the guard's
 * answer (a failing guard becomes a 500), F3_ENOMEM. */
static int request_guard(http_server *s, exchange *x)
{
    log_set_correlation_id(x->req.correlation_id);
    int rc = s->opts.guard(&x->req, x->req.match.route, &x->res, s->opts.guard_ctx);
    if (rc < 0) {
        log_error("request guard failed", "method", x->req.method, "path", x->req.path, "error",
                  err_name(rc));
        http_res_reset(&x->res);
        rc = http_res_error(&x->res, 500, "Internal server error") ? F3_ENOMEM : 1;
    } else if (rc > 0 && x->res.status == 0) {
        rc = http_res_error(&x->res, 403, "Forbidden") ? F3_ENOMEM : 1;
    } else if (rc > 0) {
        rc = 1;
    }
    log_set_correlation_id(NULL);
    return rc;
}

/* Decides whether the server answers this request itself. Returns 0 (x->res
 * set and x->answered when it does) or F3_ENOMEM. */
static int request_screen(http_server *s, struct MHD_Connection *conn, exchange *x)
{
    http_request *req = &x->req;
    http_response *res = &x->res;
    char msg[160];
    int rc = 0;
    const union MHD_ConnectionInfo *hs =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (atomic_load(&s->stopping)) {
        rc = http_res_error(res, 503, "Server is shutting down");
    } else if (strlen(req->target) > s->opts.max_header) {
        rc = http_res_error(res, 414, "Request target exceeds %zu bytes", s->opts.max_header);
    } else if (hs && hs->header_size > s->opts.max_header) {
        rc = http_res_error(res, 431, "Request line and headers exceed %zu bytes",
                            s->opts.max_header);
    } else if (content_length_too_big(conn, s->opts.max_body)) {
        rc = http_res_error(res, 413, "Request body exceeds %zu bytes", s->opts.max_body);
    } else {
        int st = http_router_match(s->router, req->method, req->path, &req->match);
        if (st < 0)
            return st;
        if (st == 404) {
            rc = http_res_error(res, 404, "No route for %s %s", req->method, req->path);
        } else if (st != 200) {
            rc = http_res_error(res, st, "%s", req->match.message);
            if (rc == 0 && st == 405)
                rc = http_res_header(res, "Allow", req->match.allow);
        } else {
            int q = http_req_parse_query(req, msg, sizeof msg);
            if (q == F3_ENOMEM)
                return q;
            if (q)
                rc = http_res_error(res, 400, "%s", msg);
            else if (!s->opts.guard)
                return 0;
            else if ((rc = request_guard(s, x)) <= 0)
                return rc;
            else
                rc = 0;
        }
    }
    x->answered = true;
    return rc;
}

static enum MHD_Result request_begin(http_server *s, struct MHD_Connection *conn, exchange *x,
                                     const char *method)
{
    x->started = true;
    x->req.method = method;
    watch_set_busy(s, conn, true);
    in_flight_add(s, x);
    http_correlation_id(header_of(conn, "X-Correlation-Id"), header_of(conn, "traceparent"),
                        x->req.correlation_id);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    addr_format(ci ? ci->client_addr : NULL, x->req.remote_addr);
    if (request_screen(s, conn, x) != 0)
        return MHD_NO;
    /* An answer to a request with a body goes out now, and libmicrohttpd then
     * closes the connection instead of reading a body nobody wants. */
    if (x->answered && request_has_body(conn))
        return queue_answer(s, conn, x, strcmp(method, "HEAD") == 0);
    return MHD_YES;
}

static enum MHD_Result request_body(http_server *s, struct MHD_Connection *conn, exchange *x,
                                    const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    x->body_seen += n;
    if (x->body_seen > s->opts.max_body || x->body_seen < n) {
        http_res_reset(&x->res);
        if (http_res_error(&x->res, 413, "Request body exceeds %zu bytes", s->opts.max_body) != 0)
            return MHD_NO;
        return answer_on_socket(s, conn, x);
    }
    if (x->answered)
        return MHD_YES; /* the body of a request we refuse anyway: dropped */
    return buf_append(&x->req.body, data, n) == 0 ? MHD_YES : MHD_NO;
}

static enum MHD_Result request_finish(http_server *s, struct MHD_Connection *conn, exchange *x)
{
    if (!x->answered) {
        const http_route *rt = x->req.match.route;
        log_set_correlation_id(x->req.correlation_id);
        int rc = rt->handler(&x->req, &x->res, rt->ctx);
        if (rc < 0 || x->res.status == 0) {
            log_error("request handler failed", "method", x->req.method, "path", x->req.path,
                      "route", rt->pattern, "error",
                      rc < 0 ? err_name(rc) : "handler returned without a response");
            http_res_reset(&x->res);
            rc = http_res_error(&x->res, 500, "Internal server error");
        } else {
            rc = 0;
        }
        log_set_correlation_id(NULL);
        if (rc)
            return MHD_NO;
    }
    return queue_answer(s, conn, x, strcmp(x->req.method, "HEAD") == 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)url;
    (void)version;
    http_server *s = cls;
    exchange *x = *con_cls;
    if (!x)
        return MHD_NO; /* no memory when the request line arrived */
    if (!x->started)
        return request_begin(s, conn, x, method);
    if (*upload_data_size)
        return request_body(s, conn, x, upload_data, upload_data_size);
    return request_finish(s, conn, x);
}

/* ---- request start and end --------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    http_server *s = cls;
    exchange *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->start_us = clock_mono_us();
    if (http_req_init(&x->req, uri, s->opts.max_body) != 0) {
        http_req_cleanup(&x->req);
        free(x);
        return NULL;
    }
    x->req.conn = conn;
    http_res_init(&x->res, x->req.correlation_id);
    conn_watch *w = watch_of(conn);
    if (w)
        w->pending = x;
    return x;
}

static const char *termination_name(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK:
        return NULL;
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
        return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
        return "server shutdown";
    case MHD_REQUEST_TERMINATED_READ_ERROR:
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
        return "client gone";
    default:
        return "error";
    }
}

/* One line per request. Requests libmicrohttpd answered itself have no method
 * (it is not exposed before the access handler runs) and no byte count. */
static void access_log(struct MHD_Connection *conn, exchange *x,
                       enum MHD_RequestTerminationCode toe)
{
    int status = x->status;
    bool ours = status != 0;
    if (!ours) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
        status = ci ? (int)ci->http_status : 0;
    }
    if (!x->started)
        http_correlation_id(header_of(conn, "X-Correlation-Id"), header_of(conn, "traceparent"),
                            x->req.correlation_id);
    double ms = (double)(clock_mono_us() - x->start_us) / 1000.0;
    const char *aborted = termination_name(toe);
    buf f;
    buf_init(&f, 0);
    if (x->req.method) {
        buf_puts(&f, "\"method\":\"");
        buf_put_json_escaped(&f, x->req.method);
        buf_puts(&f, "\",\"path\":\"");
    } else {
        buf_puts(&f, "\"method\":null,\"path\":\"");
    }
    buf_put_json_escaped(&f, x->req.path ? x->req.path : "");
    buf_putc(&f, '"');
    if (status)
        buf_printf(&f, ",\"status\":%d", status);
    buf_printf(&f, ",\"durationMs\":%.3f", ms);
    if (ours)
        buf_printf(&f, ",\"bytes\":%zu", x->bytes);
    /* WITH_ERROR after a response is libmicrohttpd closing after an error
     * answer (its own or our mid-body 413): the answer itself went out. */
    if (aborted && (status == 0 || toe != MHD_REQUEST_TERMINATED_WITH_ERROR))
        buf_printf(&f, ",\"aborted\":\"%s\"", aborted);
    log_set_correlation_id(x->req.correlation_id);
    log_write_raw(LOG_INFO, status ? "request completed" : "request aborted", buf_cstr(&f));
    log_set_correlation_id(NULL);
    buf_free(&f);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    exchange *x = *con_cls;
    if (!x)
        return;
    *con_cls = NULL;
    conn_watch *w = watch_of(conn);
    if (w && w->pending == x)
        w->pending = NULL;
    access_log(conn, x, toe);
    watch_set_busy(s, conn, false);
    in_flight_done(s, x);
    exchange_free(x);
}

/* ---- start and stop ---------------------------------------------------- */

static void where_format(char *out, size_t size, const char *host, int port)
{
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, size, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

/* Binds and listens; the socket, or a negative code with e set. */
static int listener_open(const char *host, int port, int *bound_port, err *e)
{
    char where[300], port_str[8];
    where_format(where, sizeof where, host, port);
    snprintf(port_str, sizeof port_str, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ais = NULL;
    int g = getaddrinfo(host, port_str, &hints, &ais);
    if (g != 0)
        return err_set(e, F3_EINVAL, "cannot listen on %s: %s", where, gai_strerror(g));
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = ais; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ais);
    if (fd < 0) {
        char msg[128];
        return err_set(e, F3_EIO, "cannot listen on %s: %s", where,
                       strerror_r(saved, msg, sizeof msg));
    }
    struct sockaddr_storage ss = {0};
    socklen_t sl = sizeof ss;
    *bound_port = port;
    /* getsockname fills ss; the analyzer does not model that. */
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        // NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage)
        *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void opts_normalize(http_server *s, const http_server_opts *o)
{
    s->opts = *o;
    snprintf(s->host, sizeof s->host, "%s", o->host && *o->host ? o->host : HTTP_DEFAULT_HOST);
    s->opts.host = s->host;
    if (!s->opts.threads)
        s->opts.threads = HTTP_DEFAULT_THREADS;
    if (!s->opts.max_body)
        s->opts.max_body = HTTP_DEFAULT_MAX_BODY;
    if (!s->opts.max_header)
        s->opts.max_header = HTTP_DEFAULT_MAX_HEADER;
    if (!s->opts.request_timeout_ms)
        s->opts.request_timeout_ms = HTTP_DEFAULT_REQUEST_TIMEOUT_MS;
    if (!s->opts.shutdown_timeout_ms)
        s->opts.shutdown_timeout_ms = HTTP_DEFAULT_SHUTDOWN_TIMEOUT_MS;
}

static void server_free(http_server *s)
{
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->drained);
    pthread_mutex_destroy(&s->watch_lock);
    pthread_cond_destroy(&s->guard_wake);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s);
}

static struct MHD_Daemon *daemon_start(http_server *s)
{
    /* libmicrohttpd refuses headers that outgrow a connection's memory pool with
     * its own 431; leave room for max_header so that we answer those ourselves. */
    size_t pool = 2 * s->opts.max_header + 16 * 1024;
    unsigned timeout_s = (s->opts.request_timeout_ms + 999) / 1000;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    /* The logger goes first: options are applied in order, and libmicrohttpd
     * complains about later ones on stderr otherwise. A pool of one thread is
     * no pool: the internal polling thread alone. */
    unsigned pool_threads = s->opts.threads > 1 ? s->opts.threads : 0;
    return MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->daemon_fd, MHD_OPTION_THREAD_POOL_SIZE,
        pool_threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_CONNECTION_TIMEOUT,
        timeout_s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
}

http_server *http_server_start(const http_router *r, const http_server_opts *o, err *e)
{
    if (!r || !o) {
        err_set(e, F3_EINVAL, "http_server_start: router and options are required");
        return NULL;
    }
    if (o->port < 0 || o->port > 65535) {
        err_set(e, F3_EINVAL, "http server: port %d out of range 0..65535", o->port);
        return NULL;
    }
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, F3_ENOMEM, "out of memory");
        return NULL;
    }
    s->router = r;
    s->listen_fd = s->daemon_fd = -1;
    opts_normalize(s, o);
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->watch_lock, NULL);
    if (clock_cond_init(&s->drained) != 0 || clock_cond_init(&s->guard_wake) != 0) {
        err_set(e, F3_ENOMEM, "http server: cannot create condition variables");
        goto fail;
    }
    s->listen_fd = listener_open(s->host, o->port, &s->port, e);
    if (s->listen_fd < 0)
        goto fail;
    /* libmicrohttpd closes the socket it is given on some failure paths and not
     * on others; a dup keeps the close of ours in our hands. */
    s->daemon_fd = fcntl(s->listen_fd, F_DUPFD_CLOEXEC, 0);
    if (s->daemon_fd < 0) {
        char msg[128];
        err_set(e, F3_EIO, "http server: cannot duplicate listening socket: %s",
                strerror_r(errno, msg, sizeof msg));
        goto fail;
    }
    if (pthread_create(&s->guard, NULL, guard_main, s) != 0) {
        close(s->daemon_fd);
        err_set(e, F3_ENOMEM, "http server: cannot start the slow-client guard thread");
        goto fail;
    }
    s->guard_running = true;
    s->mhd = daemon_start(s);
    if (!s->mhd) {
        guard_stop(s);
        char where[300];
        where_format(where, sizeof where, s->host, s->port);
        err_set(e, F3_EIO, "cannot serve on %s: libmicrohttpd failed to start", where);
        goto fail;
    }
    char port_str[8];
    snprintf(port_str, sizeof port_str, "%d", s->port);
    log_info("http server listening", "host", s->host, "port", port_str);
    return s;
fail:
    server_free(s);
    return NULL;
}

int http_server_port(const http_server *s)
{
    return s ? s->port : 0;
}

/* Waits until no request is in flight or the shutdown bound passes. */
static int drain(http_server *s)
{
    struct timespec ts = mono_deadline(clock_mono_ms() + s->opts.shutdown_timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    while (s->in_flight > 0 && rc == 0) {
        if (pthread_cond_timedwait(&s->drained, &s->lock, &ts) == ETIMEDOUT && s->in_flight > 0)
            rc = F3_EBUSY;
    }
    unsigned left = s->in_flight;
    pthread_mutex_unlock(&s->lock);
    if (rc) {
        char n[16];
        snprintf(n, sizeof n, "%u", left);
        log_warn("http server stopped with requests in flight", "inFlight", n);
    }
    return rc;
}

int http_server_stop(http_server *s)
{
    if (!s)
        return 0;
    atomic_store(&s->stopping, true);
    /* Refuse new connections now: quiesce takes the socket out of the workers'
     * poll sets, and shutting the listening socket down makes the kernel answer
     * connection attempts with a reset. It may only be closed after the daemon
     * is stopped, as a worker thread may still hold it. */
    MHD_socket q = MHD_quiesce_daemon(s->mhd);
    shutdown(s->listen_fd, SHUT_RDWR);
    int rc = drain(s);
    guard_stop(s);
    MHD_stop_daemon(s->mhd);
    if (q != MHD_INVALID_SOCKET)
        close(q); /* the dup libmicrohttpd handed back */
    char port_str[8];
    snprintf(port_str, sizeof port_str, "%d", s->port);
    log_info("http server stopped", "port", port_str);
    server_free(s);
    return rc;
}
