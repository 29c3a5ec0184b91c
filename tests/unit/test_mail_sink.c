/*
 * test_mail_sink.c - the SMTP sink's protocol, spoken byte by byte over a raw socket:
 * greeting, EHLO capabilities, commands out of order, unknown commands, over-long lines,
 * RSET, NOOP, dot-unstuffing of DATA, AUTH PLAIN / LOGIN with checked credentials, the
 * rejected domain, and QUIT; plus the .eml files it writes.
 */
#include "support/f3test.h"

#include "core/buf.h"
#include "sim/smtp/sink.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct client {
    int fd;
    char in[8192];
    size_t have;
} client;

static void connect_to(client *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
}

/* Reads one whole reply (all its lines, up to the one with "NNN ") into out; returns NNN. */
static int reply(client *c, char *out, size_t size)
{
    for (;;) {
        /* A complete reply ends with a line whose 4th character is a space. */
        char *line = c->in;
        char *end;
        while ((end = strstr(line, "\r\n")) != NULL) {
            if (end - line >= 4 && line[3] == ' ') {
                size_t n = (size_t)(end + 2 - c->in);
                snprintf(out, size, "%.*s", (int)n, c->in);
                int code = (int)strtol(line, NULL, 10);
                memmove(c->in, end + 2, c->have - n + 1);
                c->have -= n;
                return code;
            }
            line = end + 2;
        }
        ssize_t got = recv(c->fd, c->in + c->have, sizeof c->in - c->have - 1, 0);
        if (got <= 0)
            return -1;
        c->have += (size_t)got;
        c->in[c->have] = '\0';
    }
}

/* Sends text and returns the reply code (the reply text goes to out when given). */
static int say(client *c, const char *text, char *out, size_t size)
{
    assert_int_equal(send(c->fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
    char tmp[1024];
    return reply(c, out ? out : tmp, out ? size : sizeof tmp);
}

typedef struct fx {
    smtp_sink *sink;
    char *dir;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = f3test_tmpdir();
    err e = {0};
    smtp_sink_opts o = {.http_port = -1, .dir = f->dir, .user = "u", .pass = "p"};
    f->sink = smtp_sink_start(&o, &e);
    assert_non_null(f->sink);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    smtp_sink_stop(f->sink);
    f3test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void test_session(void **state)
{
    fx *f = *state;
    client c;
    connect_to(&c, smtp_sink_port(f->sink));
    char r[1024];
    assert_int_equal(reply(&c, r, sizeof r), 220);
    assert_int_equal(say(&c, "EHLO test\r\n", r, sizeof r), 250);
    assert_non_null(strstr(r, "AUTH PLAIN LOGIN"));
    assert_int_equal(say(&c, "NOOP\r\n", NULL, 0), 250);
    assert_int_equal(say(&c, "RCPT TO:<a@example.com>\r\n", NULL, 0), 503); /* no MAIL yet */
    assert_int_equal(say(&c, "DATA\r\n", NULL, 0), 503);
    assert_int_equal(say(&c, "MAIL FROM:<f@example.com>\r\n", NULL, 0), 530); /* AUTH first */
    assert_int_equal(say(&c, "WHAT\r\n", NULL, 0), 502);
    assert_int_equal(say(&c, "AUTH CRAM-MD5\r\n", NULL, 0), 504);
    /* AUTH PLAIN with a wrong password, then LOGIN step by step with the right one. */
    assert_int_equal(say(&c, "AUTH PLAIN AHUAd3Jvbmc=\r\n", NULL, 0), 535); /* \0u\0wrong */
    assert_int_equal(say(&c, "AUTH LOGIN\r\n", r, sizeof r), 334);
    assert_int_equal(say(&c, "dQ==\r\n", r, sizeof r), 334); /* u */
    assert_int_equal(say(&c, "cA==\r\n", r, sizeof r), 235); /* p */
    char longline[6000];
    memset(longline, 'x', sizeof longline - 3);
    memcpy(longline + sizeof longline - 3, "\r\n", 3);
    assert_int_equal(say(&c, longline, NULL, 0), 500);
    assert_int_equal(say(&c, "MAIL FROM:f@example.com\r\n", NULL, 0), 501); /* no <> */
    assert_int_equal(say(&c, "MAIL FROM:<f@example.com> SIZE=100\r\n", NULL, 0), 250);
    assert_int_equal(say(&c, "RCPT TO:<x@reject.invalid>\r\n", NULL, 0), 550);
    assert_int_equal(say(&c, "RSET\r\n", NULL, 0), 250);
    assert_int_equal(say(&c, "RCPT TO:<a@example.com>\r\n", NULL, 0), 503); /* RSET forgot MAIL */
    assert_int_equal(say(&c, "mail from:<f@example.com>\r\n", NULL, 0), 250);
    assert_int_equal(say(&c, "RCPT TO:<a@example.com>\r\n", NULL, 0), 250);
    assert_int_equal(say(&c, "RCPT TO:<b@example.com>\r\n", NULL, 0), 250);
    assert_int_equal(say(&c, "DATA\r\n", NULL, 0), 354);
    assert_int_equal(say(&c, "Subject: t\r\n\r\n..one dot\r\n...\r\nlast\r\n.\r\n", r, sizeof r),
                     250);
    assert_int_equal(say(&c, "QUIT\r\n", NULL, 0), 221);
    close(c.fd);

    assert_int_equal(smtp_sink_count(f->sink), 1);
    smtp_sink_msg m;
    assert_int_equal(smtp_sink_get(f->sink, 0, &m), 0);
    assert_string_equal(m.data, "Subject: t\r\n\r\n.one dot\r\n..\r\nlast\r\n");
    assert_int_equal(m.nto, 2);
    assert_string_equal(m.auth_user, "u");
    char path[512];
    snprintf(path, sizeof path, "%s/%s.eml", f->dir, m.id);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char file[256] = "";
    size_t n = fread(file, 1, sizeof file - 1, fp);
    fclose(fp);
    assert_int_equal(n, m.len);
    assert_memory_equal(file, m.data, m.len);
    smtp_sink_msg smtp_copy;
    assert_int_equal(smtp_sink_find(f->sink, m.id, &smtp_copy), 0);
    smtp_sink_msg_free(&smtp_copy);
    assert_int_equal(smtp_sink_find(f->sink, "nope", &smtp_copy), F3_ENOTFOUND);
    smtp_sink_msg_free(&m);
    smtp_sink_clear(f->sink);
    assert_int_equal(smtp_sink_count(f->sink), 0);
    assert_int_equal(smtp_sink_get(f->sink, 0, &m), F3_ENOTFOUND);
}

static void test_start_refuses_bad_options(void **state)
{
    (void)state;
    err e = {0};
    smtp_sink_opts o = {.http_port = -1, .dir = "/nonexistent/dir/for/mail"};
    assert_null(smtp_sink_start(&o, &e));
    assert_non_null(strstr(e.msg, "not writable"));
    smtp_sink_opts a = {.http_port = -1};
    smtp_sink *s = smtp_sink_start(&a, &e);
    assert_non_null(s);
    smtp_sink_opts b = {.http_port = -1, .port = smtp_sink_port(s), .host = "127.0.0.1"};
    /* SO_REUSEADDR does not allow two listeners on one port. */
    assert_null(smtp_sink_start(&b, &e));
    assert_non_null(strstr(e.msg, "cannot listen"));
    smtp_sink_stop(s);
    assert_int_equal(smtp_sink_mode_parse("tempfail"), SMTP_SINK_TEMPFAIL);
    assert_int_equal(smtp_sink_mode_parse("TEMPFAIL"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_session, setup, teardown),
        cmocka_unit_test(test_start_refuses_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
