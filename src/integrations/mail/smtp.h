/*
 * smtp.h - sends one built e-mail message over SMTP with libcurl.
 *
 * smtp:// with STARTTLS when the server offers it (required when require_tls), or smtps://
 * (implicit TLS) when `secure`; AUTH with user/pass when a user is given; bounded connect
 * and total times. One call = one connection = one message to its recipients. Outcomes are
 * classified once: transient (connection refused or lost, DNS, timeouts, 4xx replies) or
 * permanent (5xx replies, bad addresses, TLS required but not offered). Never retries
 * (the retry queue does) and never puts the password in a message or a log line.
 * libcurl must be initialised (http_client_init) before the first call.
 */
#ifndef F3_MAIL_SMTP_H
#define F3_MAIL_SMTP_H

#include "core/err.h"
#include "integrations/mail/message.h"

#include <stdbool.h>

#define MAIL_SMTP_DEFAULT_TIMEOUT_MS         30000L
#define MAIL_SMTP_DEFAULT_CONNECT_TIMEOUT_MS 10000L

typedef struct mail_smtp_opts {
    const char *host;        /* required: name or IP literal */
    int port;                /* 0 = 465 when secure, else 587 */
    bool secure;             /* implicit TLS (smtps://) */
    bool require_tls;        /* smtp:// only: refuse to go on without STARTTLS */
    const char *user;        /* NULL or "" = no AUTH */
    const char *pass;        /* secret */
    long timeout_ms;         /* whole exchange; 0 = MAIL_SMTP_DEFAULT_TIMEOUT_MS */
    long connect_timeout_ms; /* 0 = MAIL_SMTP_DEFAULT_CONNECT_TIMEOUT_MS */
} mail_smtp_opts;

/* Builds m (message.h) and sends it from m->from to every address in m->to.
 * 0 when the server accepted it; F3_ETRANSIENT / F3_EPERMANENT as classified above, with
 * e naming the server and the reply ("smtp 127.0.0.1:2525: 451 ..."); F3_EINVAL for a
 * bad message or options; F3_ENOMEM. */
int mail_send(const mail_smtp_opts *o, const mail_message *m, err *e);

/* The classification of one outcome: curl_code (a CURLcode, 0 = ok) and the server's
 * last reply code (0 = none). F3_ETRANSIENT or F3_EPERMANENT (0 when both are 0).
 * Exported for tests. */
int mail_smtp_classify(int curl_code, long reply);

#endif
