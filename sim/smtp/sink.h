/*
 * sink.h - an SMTP sink: a small SMTP server that accepts mail and keeps it, for tests and
 * the sandbox (it delivers nothing anywhere).
 *
 * Speaks plain-TCP SMTP (RFC 5321 subset): EHLO/HELO, AUTH PLAIN and AUTH LOGIN (any
 * credentials are accepted unless a user/pass is configured, then those are required),
 * MAIL FROM, RCPT TO, DATA with dot-unstuffing, RSET, NOOP, QUIT. Recipients in the domain
 * "reject.invalid" are refused with 550 (to test permanent failures). Received messages
 * are kept in memory and, with a directory, written as <id>.eml files. Failures on demand:
 * SMTP_SINK_TEMPFAIL answers 451 to MAIL FROM, SMTP_SINK_REFUSE closes the listening
 * socket so connections are refused (the port is taken again on SMTP_SINK_ACCEPT).
 *
 * An HTTP control API (sink_http.c) reads and clears the mail and switches modes:
 *   GET    /_sim/messages       [{"id","from","to":[..],"subject","authUser","size",
 *                                 "receivedAt"}...], oldest first
 *   GET    /_sim/messages/:id   the raw message (message/rfc822)
 *   DELETE /_sim/messages       forgets every message (204)
 *   POST   /_sim/mode           {"mode":"accept"|"tempfail"|"refuse"}
 * It is a test tool: never point a production configuration at it.
 */
#ifndef F3_SIM_SMTP_SINK_H
#define F3_SIM_SMTP_SINK_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_SINK_REJECT_DOMAIN "reject.invalid"

typedef enum smtp_sink_mode {
    SMTP_SINK_ACCEPT,
    SMTP_SINK_TEMPFAIL,
    SMTP_SINK_REFUSE,
} smtp_sink_mode;

typedef struct smtp_sink_opts {
    const char *host; /* address to bind; NULL = "127.0.0.1" */
    int port;         /* SMTP port; 0 = a free port */
    int http_port;    /* control API port; 0 = a free port; -1 = no control API */
    const char *dir;  /* write each message to DIR/<id>.eml; NULL = memory only */
    const char *user; /* with pass: AUTH required and checked; NULL = any AUTH accepted */
    const char *pass;
    size_t max_message; /* largest DATA accepted (552 beyond); 0 = 10 MiB */
} smtp_sink_opts;

/* One received message; strings owned by it (smtp_sink_msg_free). */
typedef struct smtp_sink_msg {
    char id[24];
    char *from;
    char **to;
    size_t nto;
    char *auth_user; /* NULL when the client did not log in */
    char *data;      /* the message as received, unstuffed, CRLF line ends */
    size_t len;
    int64_t received_ms;
} smtp_sink_msg;

typedef struct smtp_sink smtp_sink;

/* Starts serving. NULL with e set when a port cannot be bound or the directory is not
 * writable. Caller stops and frees it with smtp_sink_stop. */
smtp_sink *smtp_sink_start(const smtp_sink_opts *o, err *e);

/* Stops both servers (a session in progress is cut) and frees everything. NULL is fine. */
void smtp_sink_stop(smtp_sink *s);

int smtp_sink_port(const smtp_sink *s);
int smtp_sink_http_port(const smtp_sink *s); /* -1 without control API */

/* Switches the failure mode; returns once the SMTP side applies it (at most ~1 s).
 * 0, or F3_EIO when the port cannot be taken again after SMTP_SINK_REFUSE. */
int smtp_sink_set_mode(smtp_sink *s, smtp_sink_mode mode, err *e);

/* Parses "accept", "tempfail", "refuse"; -1 otherwise. */
int smtp_sink_mode_parse(const char *name);

/* Messages received so far. */
size_t smtp_sink_count(smtp_sink *s);

/* Waits up to timeout_ms until at least n messages were received; true if so. */
bool smtp_sink_wait(smtp_sink *s, size_t n, int timeout_ms);

/* A copy of message i (0 = oldest). 0, F3_ENOTFOUND, F3_ENOMEM. Free with
 * smtp_sink_msg_free. */
int smtp_sink_get(smtp_sink *s, size_t i, smtp_sink_msg *out);

/* The same, by id. */
int smtp_sink_find(smtp_sink *s, const char *id, smtp_sink_msg *out);

void smtp_sink_msg_free(smtp_sink_msg *m);

/* Forgets every message (files already written stay). */
void smtp_sink_clear(smtp_sink *s);

#endif
