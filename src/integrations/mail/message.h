/*
 * message.h - builds an e-mail message (RFC 5322 + MIME) ready for SMTP: headers (Date,
 * Message-ID, From, To, Subject, MIME-Version), a multipart/alternative body with a plain
 * text and an HTML part in UTF-8, quoted-printable, CRLF line endings throughout.
 *
 * Non-ASCII subjects and display names are encoded as RFC 2047 words; header values with
 * CR or LF are refused (no header injection). Dot-stuffing is the transport's business
 * (libcurl does it), not this file's. Knows nothing of sockets or configuration.
 */
#ifndef F3_MAIL_MESSAGE_H
#define F3_MAIL_MESSAGE_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stdint.h>

#define MAIL_ADDRESS_MAX 254
#define MAIL_RCPT_MAX    50

typedef struct mail_message {
    const char *from;       /* sender address, required */
    const char *from_name;  /* display name; NULL = none */
    const char *const *to;  /* NULL-terminated recipient addresses, 1..MAIL_RCPT_MAX */
    const char *subject;    /* UTF-8, required (may be empty) */
    const char *text;       /* plain text body, UTF-8, required */
    const char *html;       /* HTML body, UTF-8; NULL = a text/plain message only */
    int64_t date_ms;        /* Date header; 0 = now */
    const char *message_id; /* without brackets; NULL = "<uuid>@<sender's domain>" */
} mail_message;

/* True for a plain address local@domain (no display name, no spaces, no control
 * characters, no angle brackets, at most MAIL_ADDRESS_MAX bytes, a dot in the domain
 * or "localhost"). */
bool mail_address_valid(const char *addr);

/* Appends the whole message to out. 0, F3_EINVAL naming the bad field (address, header
 * with CR/LF, no recipient), F3_ENOMEM / F3_ETOOBIG from the buf. On error out may hold
 * part of a message: reset it. */
int mail_build(const mail_message *m, buf *out, err *e);

/* Appends s as the value of an unstructured header: as is when it is printable ASCII,
 * else as RFC 2047 "=?UTF-8?B?...?=" words of at most 75 characters, folded with CRLF +
 * space, never splitting a UTF-8 sequence. 0 or a buf error. */
int mail_encode_header(const char *s, buf *out);

/* Appends text as quoted-printable (RFC 2045) with CRLF line endings: any LF or CRLF of
 * the input ends a line; lines are soft-broken before 76 characters. 0 or a buf error. */
int mail_encode_qp(const char *text, buf *out);

#endif
