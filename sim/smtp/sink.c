/*
 * sink.c - the SMTP side of the sink (see sink.h): listening, one session at a time on its
 * own thread, the SMTP commands, and the store of received messages. Delivers nothing.
 */
#include "sim/smtp/sink_internal.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/str.h"
#include "sim/common/wait.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SINK_DEFAULT_MAX  ((size_t)10 * 1024 * 1024)
#define SINK_LINE_MAX     4096
#define SINK_IO_TIMEOUT_S 10
#define SINK_RCPT_MAX     100
#define SINK_NAME         "f3connect-sim"

/* ---- sockets ---------------------------------------------------------------------------- */

static int listen_on(const char *host, int port, int *bound_port, err *e)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    int g = getaddrinfo(host, p, &hints, &ai);
    if (g != 0)
        return err_set(e, F3_EINVAL, "smtp sink: cannot resolve %s: %s", host, gai_strerror(g));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
        int rc = err_set(e, F3_EIO, "smtp sink: cannot listen on %s:%d: %s", host, port,
                         strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return rc;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* A line reader over a socket. */
typedef struct conn {
    int fd;
    char in[8192];
    size_t have, pos;
    bool closed;
} conn;

static void reply(conn *c, const char *text)
{
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);
        if (n <= 0) {
            c->closed = true;
            return;
        }
        off += (size_t)n;
    }
}

/* Reads one line (without CRLF / LF) into line. 1: a line; 0: connection closed; -1: the
 * line was longer than SINK_LINE_MAX (the rest of it is skipped). */
static int read_line(conn *c, buf *line)
{
    buf_reset(line);
    bool too_long = false;
    for (;;) {
        if (c->pos == c->have) {
            ssize_t n = recv(c->fd, c->in, sizeof c->in, 0);
            if (n <= 0) {
                c->closed = true;
                return 0;
            }
            c->have = (size_t)n;
            c->pos = 0;
        }
        char ch = c->in[c->pos++];
        if (ch == '\n')
            break;
        if (line->len >= SINK_LINE_MAX)
            too_long = true;
        else
            buf_putc(line, ch);
    }
    if (line->len && line->data[line->len - 1] == '\r')
        line->data[--line->len] = '\0';
    return too_long ? -1 : 1;
}

/* ---- the store -------------------------------------------------------------------------- */

void smtp_sink_msg_free(smtp_sink_msg *m)
{
    if (!m)
        return;
    free(m->from);
    for (size_t i = 0; i < m->nto; i++)
        free(m->to[i]);
    free(m->to);
    free(m->auth_user);
    free(m->data);
    memset(m, 0, sizeof *m);
}

static int msg_copy(const smtp_sink_msg *src, smtp_sink_msg *dst)
{
    memset(dst, 0, sizeof *dst);
    memcpy(dst->id, src->id, sizeof dst->id);
    dst->from = str_dup(src->from);
    dst->auth_user = src->auth_user ? str_dup(src->auth_user) : NULL;
    dst->data = malloc(src->len + 1);
    dst->to = calloc(src->nto ? src->nto : 1, sizeof *dst->to);
    bool ok = dst->from && dst->data && dst->to && (!src->auth_user || dst->auth_user);
    if (dst->data) {
        memcpy(dst->data, src->data, src->len);
        dst->data[src->len] = '\0';
    }
    dst->len = src->len;
    dst->received_ms = src->received_ms;
    for (size_t i = 0; ok && i < src->nto; i++) {
        dst->to[i] = str_dup(src->to[i]);
        dst->nto++;
        ok = dst->to[i] != NULL;
    }
    if (!ok)
        smtp_sink_msg_free(dst);
    return ok ? 0 : F3_ENOMEM;
}

static void write_eml(smtp_sink *s, const smtp_sink_msg *m)
{
    if (!s->dir)
        return;
    buf path;
    buf_init(&path, 0);
    buf_printf(&path, "%s/%s.eml", s->dir, m->id);
    FILE *f = fopen(buf_cstr(&path), "wb");
    if (f) {
        fwrite(m->data, 1, m->len, f);
        fclose(f);
    }
    buf_free(&path);
}

/* Takes m over (on success and on failure). */
static int store_message(smtp_sink *s, smtp_sink_msg *m)
{
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        smtp_sink_msg *grown = realloc(s->msgs, cap * sizeof *grown);
        if (grown) {
            s->msgs = grown;
            s->cap = cap;
        } else {
            rc = F3_ENOMEM;
        }
    }
    if (rc == 0) {
        snprintf(m->id, sizeof m->id, "%llu", (unsigned long long)++s->next_id);
        s->msgs[s->n++] = *m;
        memset(m, 0, sizeof *m);
        write_eml(s, &s->msgs[s->n - 1]);
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->mu);
    smtp_sink_msg_free(m);
    return rc;
}

/* ---- one session ------------------------------------------------------------------------ */

typedef struct session {
    smtp_sink *s;
    conn c;
    buf line;
    bool authed;
    char *auth_user;
    smtp_sink_msg m; /* the transaction being built */
    bool has_from;
} session;

static void session_reset(session *ss)
{
    smtp_sink_msg_free(&ss->m);
    ss->has_from = false;
}

static bool verb_is(const char *line, const char *verb)
{
    size_t n = strlen(verb);
    return strncasecmp(line, verb, n) == 0 && (line[n] == '\0' || line[n] == ' ');
}

/* The address inside <...> after a "FROM:" / "TO:" prefix; NULL when malformed.
 * Caller frees. */
static char *path_arg(const char *line, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncasecmp(line, prefix, n) != 0)
        return NULL;
    const char *p = line + n;
    while (*p == ' ')
        p++;
    const char *lt = strchr(p, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (!lt || !gt || lt != p)
        return NULL;
    return str_ndup(lt + 1, (size_t)(gt - lt - 1));
}

/* Decodes base64 text into out (NUL-terminated). Returns the length or -1. */
static long b64_decode(const char *text, char *out, size_t size)
{
    size_t len = 0;
    if (sodium_base642bin((unsigned char *)out, size - 1, text, strlen(text), NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return -1;
    out[len] = '\0';
    return (long)len;
}

static bool creds_ok(const smtp_sink *s, const char *user, const char *pass)
{
    if (!s->user)
        return true;
    return str_eq(user, s->user) && str_eq(pass, s->pass);
}

static void auth_done(session *ss, const char *user, const char *pass)
{
    if (creds_ok(ss->s, user, pass)) {
        ss->authed = true;
        free(ss->auth_user);
        ss->auth_user = str_dup(user);
        reply(&ss->c, "235 2.7.0 Authentication successful\r\n");
    } else {
        reply(&ss->c, "535 5.7.8 Authentication credentials invalid\r\n");
    }
}

/* The argument of a SASL step: the initial response, or the next line after a 334. */
static bool sasl_step(session *ss, const char *initial, const char *prompt, char *out, size_t size)
{
    if (!initial) {
        reply(&ss->c, prompt);
        if (read_line(&ss->c, &ss->line) != 1)
            return false;
        initial = buf_cstr(&ss->line);
    }
    if (strcmp(initial, "*") == 0)
        return false;
    return b64_decode(initial, out, size) >= 0;
}

static void cmd_auth(session *ss, const char *args)
{
    char mech[16] = "", initial[SINK_LINE_MAX];
    if (sscanf(args, "%15s %4095s", mech, initial) < 1) {
        reply(&ss->c, "501 5.5.4 Syntax: AUTH mechanism\r\n");
        return;
    }
    bool has_initial = strchr(args, ' ') != NULL;
    char a[1024], b[1024];
    if (strcasecmp(mech, "PLAIN") == 0) {
        const char *text = has_initial ? initial : NULL;
        if (!text) {
            reply(&ss->c, "334 \r\n");
            if (read_line(&ss->c, &ss->line) != 1)
                return;
            text = buf_cstr(&ss->line);
        }
        /* authzid \0 authcid \0 passwd */
        char raw[1024];
        long len = b64_decode(text, raw, sizeof raw);
        const char *p1 = len > 0 ? memchr(raw, '\0', (size_t)len) : NULL;
        const char *p2 = p1 ? memchr(p1 + 1, '\0', (size_t)(raw + len - p1 - 1)) : NULL;
        if (!p2)
            reply(&ss->c, "501 5.5.2 Malformed PLAIN response\r\n");
        else
            auth_done(ss, p1 + 1, p2 + 1);
    } else if (strcasecmp(mech, "LOGIN") == 0) {
        if (!sasl_step(ss, has_initial ? initial : NULL, "334 VXNlcm5hbWU6\r\n", a, sizeof a) ||
            !sasl_step(ss, NULL, "334 UGFzc3dvcmQ6\r\n", b, sizeof b))
            reply(&ss->c, "501 5.5.2 Cannot decode response\r\n");
        else
            auth_done(ss, a, b);
    } else {
        reply(&ss->c, "504 5.5.4 Unrecognized authentication type\r\n");
    }
}

static smtp_sink_mode current_mode(smtp_sink *s)
{
    pthread_mutex_lock(&s->mu);
    smtp_sink_mode m = s->mode;
    pthread_mutex_unlock(&s->mu);
    return m;
}

static void cmd_mail(session *ss, const char *line)
{
    if (current_mode(ss->s) == SMTP_SINK_TEMPFAIL) {
        reply(&ss->c, "451 4.3.0 Mail server temporarily unavailable (simulated)\r\n");
        return;
    }
    if (ss->s->user && !ss->authed) {
        reply(&ss->c, "530 5.7.0 Authentication required\r\n");
        return;
    }
    char *from = path_arg(line + 5, "FROM:");
    if (!from) {
        reply(&ss->c, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
        return;
    }
    session_reset(ss);
    ss->m.from = from;
    ss->has_from = true;
    reply(&ss->c, "250 2.1.0 OK\r\n");
}

static void cmd_rcpt(session *ss, const char *line)
{
    if (!ss->has_from) {
        reply(&ss->c, "503 5.5.1 MAIL first\r\n");
        return;
    }
    char *to = path_arg(line + 5, "TO:");
    const char *at = to ? strrchr(to, '@') : NULL;
    if (!to || !at) {
        free(to);
        reply(&ss->c, "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
        return;
    }
    if (strcasecmp(at + 1, SMTP_SINK_REJECT_DOMAIN) == 0 || ss->m.nto >= SINK_RCPT_MAX) {
        free(to);
        reply(&ss->c, "550 5.1.1 Mailbox unavailable\r\n");
        return;
    }
    char **grown = realloc(ss->m.to, (ss->m.nto + 1) * sizeof *grown);
    if (!grown) {
        free(to);
        reply(&ss->c, "452 4.3.1 Out of memory\r\n");
        return;
    }
    ss->m.to = grown;
    ss->m.to[ss->m.nto++] = to;
    reply(&ss->c, "250 2.1.5 OK\r\n");
}

static void cmd_data(session *ss)
{
    if (!ss->has_from || ss->m.nto == 0) {
        reply(&ss->c, "503 5.5.1 RCPT first\r\n");
        return;
    }
    reply(&ss->c, "354 End data with <CR><LF>.<CR><LF>\r\n");
    buf body;
    buf_init(&body, ss->s->max_message + SINK_LINE_MAX);
    bool too_big = false;
    for (;;) {
        int r = read_line(&ss->c, &ss->line);
        if (r == 0) {
            buf_free(&body);
            return;
        }
        const char *l = buf_cstr(&ss->line);
        if (strcmp(l, ".") == 0)
            break;
        if (l[0] == '.')
            l++; /* dot-unstuffing */
        if (body.len + strlen(l) + 2 > ss->s->max_message)
            too_big = true;
        if (!too_big)
            buf_printf(&body, "%s\r\n", l);
    }
    if (too_big) {
        buf_free(&body);
        session_reset(ss);
        reply(&ss->c, "552 5.3.4 Message too big\r\n");
        return;
    }
    ss->m.len = body.len;
    ss->m.data = buf_detach(&body);
    ss->m.received_ms = clock_now_ms();
    ss->m.auth_user = ss->auth_user ? str_dup(ss->auth_user) : NULL;
    ss->has_from = false;
    if (!ss->m.data || store_message(ss->s, &ss->m) != 0) {
        reply(&ss->c, "452 4.3.1 Cannot store the message\r\n");
        return;
    }
    char ok[80];
    snprintf(ok, sizeof ok, "250 2.0.0 OK queued as %llu\r\n", (unsigned long long)ss->s->next_id);
    reply(&ss->c, ok);
}

static bool command(session *ss, const char *l)
{
    if (verb_is(l, "EHLO"))
        reply(&ss->c, "250-" SINK_NAME "\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n"
                      "250 SIZE 10485760\r\n");
    else if (verb_is(l, "HELO"))
        reply(&ss->c, "250 " SINK_NAME "\r\n");
    else if (verb_is(l, "AUTH"))
        cmd_auth(ss, l[4] ? l + 5 : "");
    else if (strncasecmp(l, "MAIL ", 5) == 0)
        cmd_mail(ss, l);
    else if (strncasecmp(l, "RCPT ", 5) == 0)
        cmd_rcpt(ss, l);
    else if (verb_is(l, "DATA"))
        cmd_data(ss);
    else if (verb_is(l, "RSET")) {
        session_reset(ss);
        reply(&ss->c, "250 2.0.0 OK\r\n");
    } else if (verb_is(l, "NOOP"))
        reply(&ss->c, "250 2.0.0 OK\r\n");
    else if (verb_is(l, "QUIT")) {
        reply(&ss->c, "221 2.0.0 Bye\r\n");
        return false;
    } else
        reply(&ss->c, "502 5.5.2 Command not recognized\r\n");
    return true;
}

static void serve_session(smtp_sink *s, int fd)
{
    struct timeval tv = {.tv_sec = SINK_IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    session ss = {.s = s, .c = {.fd = fd}};
    buf_init(&ss.line, SINK_LINE_MAX + 16);
    reply(&ss.c, "220 " SINK_NAME " ESMTP sink ready\r\n");
    while (!ss.c.closed && !atomic_load(&s->stopping)) {
        int r = read_line(&ss.c, &ss.line);
        if (r == 0)
            break;
        if (r < 0) {
            reply(&ss.c, "500 5.5.2 Line too long\r\n");
            continue;
        }
        if (!command(&ss, buf_cstr(&ss.line)))
            break;
    }
    session_reset(&ss);
    free(ss.auth_user);
    buf_free(&ss.line);
    close(fd);
}

/* ---- the listener ----------------------------------------------------------------------- */

/* Applies a requested mode change on the listener thread (which owns listen_fd). */
static void apply_mode(smtp_sink *s)
{
    pthread_mutex_lock(&s->mu);
    smtp_sink_mode want = s->mode;
    pthread_mutex_unlock(&s->mu);
    int rebind = 0;
    if (want == SMTP_SINK_REFUSE && s->listen_fd >= 0) {
        close(s->listen_fd);
        s->listen_fd = -1;
    } else if (want != SMTP_SINK_REFUSE && s->listen_fd < 0) {
        int port = 0;
        int fd = listen_on(s->host, s->port, &port, NULL);
        if (fd >= 0)
            s->listen_fd = fd;
        else
            rebind = F3_EIO;
    }
    pthread_mutex_lock(&s->mu);
    s->applied_mode = want;
    s->rebind_error = rebind;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

static void *listener(void *arg)
{
    smtp_sink *s = arg;
    while (!atomic_load(&s->stopping)) {
        apply_mode(s);
        if (s->listen_fd < 0) {
            sim_sleep_ms(50);
            continue;
        }
        struct pollfd p = {.fd = s->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            serve_session(s, fd);
    }
    return NULL;
}

int smtp_sink_mode_parse(const char *name)
{
    static const char *const names[] = {"accept", "tempfail", "refuse"};
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

int smtp_sink_set_mode(smtp_sink *s, smtp_sink_mode mode, err *e)
{
    struct timespec until;
    sim_deadline(&until, 2000);
    pthread_mutex_lock(&s->mu);
    s->mode = mode;
    int rc = 0;
    while (s->applied_mode != mode && rc == 0)
        rc = pthread_cond_timedwait(&s->cond, &s->mu, &until);
    int rebind = s->rebind_error;
    pthread_mutex_unlock(&s->mu);
    if (rebind)
        return err_set(e, F3_EIO, "smtp sink: cannot listen on port %d again", s->port);
    if (rc)
        return err_set(e, F3_EIO, "smtp sink: the mode change was not applied in time");
    return 0;
}

/* ---- life cycle and reading ------------------------------------------------------------- */

smtp_sink *smtp_sink_start(const smtp_sink_opts *o, err *e)
{
    smtp_sink *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, F3_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(s->host, sizeof s->host, "%s", o && o->host && *o->host ? o->host : "127.0.0.1");
    s->max_message = o && o->max_message ? o->max_message : SINK_DEFAULT_MAX;
    s->dir = o && o->dir ? str_dup(o->dir) : NULL;
    s->user = o && o->user ? str_dup(o->user) : NULL;
    s->pass = o && o->user ? str_dup(o->pass ? o->pass : "") : NULL;
    s->listen_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    atomic_init(&s->stopping, false);
    int port = o ? o->port : 0;
    int fd = listen_on(s->host, port, &s->port, e);
    if (fd < 0)
        goto fail;
    s->listen_fd = fd;
    if (s->dir && access(s->dir, W_OK) != 0) {
        err_set(e, F3_EINVAL, "smtp sink: directory %s is not writable", s->dir);
        goto fail;
    }
    if (!o || o->http_port >= 0) {
        if (smtp_sink_http_start(s, o ? o->http_port : 0, e) != 0)
            goto fail;
    }
    if (pthread_create(&s->thread, NULL, listener, s) != 0) {
        err_set(e, F3_EIO, "smtp sink: cannot start a thread");
        goto fail;
    }
    return s;
fail:
    sim_server_stop(&s->web);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s->dir);
    free(s->user);
    free(s->pass);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
    return NULL;
}

void smtp_sink_stop(smtp_sink *s)
{
    if (!s)
        return;
    sim_server_stop(&s->web);
    atomic_store(&s->stopping, true);
    pthread_join(s->thread, NULL);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    for (size_t i = 0; i < s->n; i++)
        smtp_sink_msg_free(&s->msgs[i]);
    free(s->msgs);
    free(s->dir);
    free(s->user);
    if (s->pass)
        sodium_memzero(s->pass, strlen(s->pass));
    free(s->pass);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
}

int smtp_sink_port(const smtp_sink *s)
{
    return s->port;
}

int smtp_sink_http_port(const smtp_sink *s)
{
    return s->web.http ? sim_server_port(&s->web) : -1;
}

size_t smtp_sink_count(smtp_sink *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

bool smtp_sink_wait(smtp_sink *s, size_t n, int timeout_ms)
{
    struct timespec until;
    sim_deadline(&until, timeout_ms);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (s->n < n && rc == 0)
        rc = pthread_cond_timedwait(&s->cond, &s->mu, &until);
    bool ok = s->n >= n;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

int smtp_sink_get(smtp_sink *s, size_t i, smtp_sink_msg *out)
{
    pthread_mutex_lock(&s->mu);
    int rc = i < s->n ? msg_copy(&s->msgs[i], out) : F3_ENOTFOUND;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int smtp_sink_find(smtp_sink *s, const char *id, smtp_sink_msg *out)
{
    pthread_mutex_lock(&s->mu);
    int rc = F3_ENOTFOUND;
    for (size_t i = 0; id && i < s->n && rc == F3_ENOTFOUND; i++)
        if (strcmp(s->msgs[i].id, id) == 0)
            rc = msg_copy(&s->msgs[i], out);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void smtp_sink_clear(smtp_sink *s)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++)
        smtp_sink_msg_free(&s->msgs[i]);
    s->n = 0;
    pthread_mutex_unlock(&s->mu);
}
