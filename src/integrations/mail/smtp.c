/*
 * smtp.c - one message over SMTP with libcurl (see smtp.h). Builds the URL, envelope and
 * upload, runs one easy handle and classifies the outcome. Never logs the password.
 */
#include "integrations/mail/smtp.h"

#include "core/buf.h"
#include "core/log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

typedef struct upload {
    const char *data;
    size_t len, pos;
} upload;

static size_t read_cb(char *dst, size_t size, size_t nmemb, void *ctx)
{
    upload *u = ctx;
    size_t room = size * nmemb, left = u->len - u->pos;
    size_t n = left < room ? left : room;
    memcpy(dst, u->data + u->pos, n);
    u->pos += n;
    return n;
}

int mail_smtp_classify(int curl_code, long reply)
{
    if (curl_code == CURLE_OK && reply < 400)
        return 0;
    if (reply >= 400 && reply < 500)
        return F3_ETRANSIENT;
    if (reply >= 500 && reply < 600)
        return F3_EPERMANENT;
    switch (curl_code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_SSL_CONNECT_ERROR:
        return F3_ETRANSIENT;
    default:
        return F3_EPERMANENT;
    }
}

static int make_url(const mail_smtp_opts *o, char *url, size_t size)
{
    int port = o->port > 0 ? o->port : (o->secure ? 465 : 587);
    bool v6 = strchr(o->host, ':') != NULL;
    int n = snprintf(url, size, "%s://%s%s%s:%d", o->secure ? "smtps" : "smtp", v6 ? "[" : "",
                     o->host, v6 ? "]" : "", port);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static int check_opts(const mail_smtp_opts *o, err *e)
{
    if (!o || !o->host || !*o->host)
        return err_set(e, F3_EINVAL, "smtp: no server host");
    if (strpbrk(o->host, "/@ \r\n?#"))
        return err_set(e, F3_EINVAL, "smtp: bad server host '%.80s'", o->host);
    if (o->port < 0 || o->port > 65535)
        return err_set(e, F3_EINVAL, "smtp: bad port %d", o->port);
    return 0;
}

static struct curl_slist *recipients(const mail_message *m)
{
    struct curl_slist *list = NULL;
    for (size_t i = 0; m->to[i]; i++) {
        char rcpt[MAIL_ADDRESS_MAX + 3];
        snprintf(rcpt, sizeof rcpt, "<%s>", m->to[i]);
        struct curl_slist *next = curl_slist_append(list, rcpt);
        if (!next) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = next;
    }
    return list;
}

static void set_options(CURL *h, const mail_smtp_opts *o, const char *url, const char *from,
                        struct curl_slist *rcpts, upload *u, char *errbuf)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(h, CURLOPT_READDATA, u);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)u->len);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     o->timeout_ms > 0 ? o->timeout_ms : MAIL_SMTP_DEFAULT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms > 0 ? o->connect_timeout_ms
                                               : MAIL_SMTP_DEFAULT_CONNECT_TIMEOUT_MS);
    if (!o->secure)
        curl_easy_setopt(h, CURLOPT_USE_SSL,
                         o->require_tls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
    if (o->user && *o->user) {
        curl_easy_setopt(h, CURLOPT_USERNAME, o->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, o->pass ? o->pass : "");
    }
}

int mail_send(const mail_smtp_opts *o, const mail_message *m, err *e)
{
    int rc = check_opts(o, e);
    if (rc)
        return rc;
    char url[300], from[MAIL_ADDRESS_MAX + 3], errbuf[CURL_ERROR_SIZE] = "";
    if (make_url(o, url, sizeof url))
        return err_set(e, F3_EINVAL, "smtp: server host too long");
    buf msg;
    buf_init(&msg, 0);
    struct curl_slist *rcpts = NULL;
    CURL *h = NULL;
    rc = mail_build(m, &msg, e);
    if (rc)
        goto out;
    snprintf(from, sizeof from, "<%s>", m->from);
    rcpts = recipients(m);
    h = curl_easy_init();
    if (!rcpts || !h) {
        rc = err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    upload u = {msg.data, msg.len, 0};
    set_options(h, o, url, from, rcpts, &u, errbuf);
    CURLcode cc = curl_easy_perform(h);
    long reply = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply);
    rc = mail_smtp_classify((int)cc, reply);
    if (rc) {
        /* The URL carries no credentials; errbuf holds curl's text, never the password. */
        const char *what = errbuf[0] ? errbuf : curl_easy_strerror(cc);
        const char *server = url + (o->secure ? 8 : 7);
        if (reply)
            err_set(e, rc, "smtp %s: %s (reply %ld)", server, what, reply);
        else
            err_set(e, rc, "smtp %s: %s", server, what);
    }
out:
    curl_easy_cleanup(h);
    curl_slist_free_all(rcpts);
    buf_free(&msg);
    return rc;
}
