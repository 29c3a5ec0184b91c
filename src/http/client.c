/*
 * client.c - the outgoing HTTP client on libcurl (see client.h).
 *
 * Each thread reuses one easy handle (released by a thread-specific-data destructor),
 * reset after every call so no option or pointer survives into the next one while
 * its connection cache does. Outcomes are classified by one table-driven function.
 * This file must not retry, follow redirects, or log/report header values and bodies.
 */
#include "http/client.h"

#include "http/status.h"

#include "core/clock.h"
#include "core/log.h"

#include <ctype.h>
#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifndef F3_VERSION
#error "F3_VERSION must be defined by the build"
#endif

#define CLIENT_USER_AGENT    "f3connect/" F3_VERSION
#define CLIENT_HEADERS_CAP   ((size_t)256 * 1024) /* all response headers of one response */
#define CLIENT_URL_SHOWN_MAX 300                  /* URL bytes kept in messages and logs */
#define CLIENT_METHOD_MAX    16
#define CLIENT_REASON_MAX    64

/* ---- process and thread state ---------------------------------------------------- */

static pthread_mutex_t client_init_lock = PTHREAD_MUTEX_INITIALIZER;
static int client_init_count;

static pthread_key_t client_handle_key;
static pthread_once_t client_handle_once = PTHREAD_ONCE_INIT;
static int client_handle_key_ok;

static void handle_release(void *h)
{
    curl_easy_cleanup(h);
}

static void handle_key_create(void)
{
    client_handle_key_ok = pthread_key_create(&client_handle_key, handle_release) == 0;
}

/* The calling thread's easy handle, created on first use; NULL if out of memory. */
static CURL *thread_handle(void)
{
    pthread_once(&client_handle_once, handle_key_create);
    if (!client_handle_key_ok)
        return NULL;
    CURL *h = pthread_getspecific(client_handle_key);
    if (h)
        return h;
    h = curl_easy_init();
    if (h && pthread_setspecific(client_handle_key, h) != 0) {
        curl_easy_cleanup(h);
        h = NULL;
    }
    return h;
}

int http_client_init(void)
{
    int rc = 0;
    pthread_mutex_lock(&client_init_lock);
    if (client_init_count == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        rc = F3_EIO;
    else
        client_init_count++;
    pthread_mutex_unlock(&client_init_lock);
    return rc;
}

void http_client_cleanup(void)
{
    pthread_once(&client_handle_once, handle_key_create);
    if (client_handle_key_ok) {
        CURL *h = pthread_getspecific(client_handle_key);
        if (h) {
            pthread_setspecific(client_handle_key, NULL);
            curl_easy_cleanup(h);
        }
    }
    pthread_mutex_lock(&client_init_lock);
    if (client_init_count > 0 && --client_init_count == 0)
        curl_global_cleanup();
    pthread_mutex_unlock(&client_init_lock);
}

/* ---- classification ------------------------------------------------------------- */

/* curl failures that retrying cannot cure: our own configuration, the peer's
 * certificate, a response we refused. Any other curl failure is a network event. */
static const int client_permanent_curl_codes[] = {
    CURLE_UNSUPPORTED_PROTOCOL,
    CURLE_FAILED_INIT,
    CURLE_URL_MALFORMAT,
    CURLE_NOT_BUILT_IN,
    CURLE_WEIRD_SERVER_REPLY,
    CURLE_REMOTE_ACCESS_DENIED,
    CURLE_HTTP_RETURNED_ERROR,
    CURLE_WRITE_ERROR,
    CURLE_READ_ERROR,
    CURLE_RANGE_ERROR,
    CURLE_FUNCTION_NOT_FOUND,
    CURLE_ABORTED_BY_CALLBACK,
    CURLE_BAD_FUNCTION_ARGUMENT,
    CURLE_TOO_MANY_REDIRECTS,
    CURLE_UNKNOWN_OPTION,
    CURLE_SSL_ENGINE_NOTFOUND,
    CURLE_SSL_ENGINE_SETFAILED,
    CURLE_SSL_CERTPROBLEM,
    CURLE_SSL_CIPHER,
    CURLE_PEER_FAILED_VERIFICATION,
    CURLE_BAD_CONTENT_ENCODING,
    CURLE_FILESIZE_EXCEEDED,
    CURLE_USE_SSL_FAILED,
    CURLE_LOGIN_DENIED,
    CURLE_SSL_CACERT_BADFILE,
    CURLE_SSL_CRL_BADFILE,
    CURLE_SSL_ISSUER_ERROR,
    CURLE_SSL_PINNEDPUBKEYNOTMATCH,
    CURLE_SSL_INVALIDCERTSTATUS,
    CURLE_SSL_CLIENTCERT,
};

http_failure http_client_classify(long status, int curl_code)
{
    if (curl_code != CURLE_OK) {
        size_t n = sizeof client_permanent_curl_codes / sizeof client_permanent_curl_codes[0];
        for (size_t i = 0; i < n; i++)
            if (client_permanent_curl_codes[i] == curl_code)
                return HTTP_PERMANENT;
        return HTTP_TRANSIENT;
    }
    if (status == 0)
        return HTTP_TRANSIENT; /* no response at all: nothing says the server refused */
    if (status >= 200 && status <= 299)
        return HTTP_OK;
    if (status == 408 || status == 425 || status == 429)
        return HTTP_TRANSIENT;
    if (status >= 500 && status <= 599)
        return HTTP_TRANSIENT;
    return HTTP_PERMANENT;
}

const char *http_client_failure_name(http_failure f)
{
    switch (f) {
    case HTTP_OK:
        return "ok";
    case HTTP_TRANSIENT:
        return "transient";
    case HTTP_PERMANENT:
        return "permanent";
    }
    return "unknown";
}

/* ---- text shown to humans ------------------------------------------------------- */

/* The standard reason phrase, else the server's own (HTTP/2 sends none), else "". */
static const char *reason_phrase(long status, const char *from_server)
{
    if (status >= 100 && status <= 599 && http_status_known((int)status))
        return http_status_reason((int)status);
    return from_server;
}

/* Appends url without user info, query string or fragment (they may carry secrets),
 * with control bytes replaced, cut at CLIENT_URL_SHOWN_MAX bytes. */
static void url_for_humans(buf *out, const char *url)
{
    const char *sep = strstr(url, "://");
    const char *authority = sep ? sep + 3 : url;
    size_t authority_len = strcspn(authority, "/?#");
    const char *at = memrchr(authority, '@', authority_len);
    const char *host = at ? at + 1 : authority;
    size_t shown = 0;
    for (const char *p = url; *p && *p != '?' && *p != '#'; p++) {
        if (p == authority)
            p = host;
        if (!*p || *p == '?' || *p == '#')
            break;
        if (shown++ == CLIENT_URL_SHOWN_MAX) {
            buf_puts(out, "...");
            break;
        }
        unsigned char c = (unsigned char)*p;
        buf_putc(out, c < 0x20 || c == 0x7f ? '?' : (char)c);
    }
}

/* ---- receiving ------------------------------------------------------------------ */

typedef struct transfer {
    http_client_response *rs;
    int too_large;         /* body passed max_response */
    int headers_too_large; /* headers passed CLIENT_HEADERS_CAP */
    int nomem;
    char reason[CLIENT_REASON_MAX]; /* reason phrase of the final status line */
} transfer;

static void response_init(http_client_response *rs, size_t max_response)
{
    rs->status = 0;
    buf_init(&rs->body, max_response ? max_response : HTTP_CLIENT_DEFAULT_MAX_RESPONSE);
    rs->retry_after_ms = -1;
    rs->failure = HTTP_PERMANENT;
    rs->duration_ms = 0;
    buf_init(&rs->headers, CLIENT_HEADERS_CAP);
    rs->header_count = 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    transfer *t = userdata;
    size_t n = size * nmemb;
    int rc = buf_append(&t->rs->body, data, n);
    if (rc == BUF_ERR_FULL)
        t->too_large = 1;
    else if (rc)
        t->nomem = 1;
    return rc ? 0 : n; /* a short count makes curl abort with CURLE_WRITE_ERROR */
}

/* "HTTP/1.1 503 Service Unavailable\r\n" -> "Service Unavailable". */
static void note_reason(transfer *t, const char *line, size_t n)
{
    const char *end = line + n;
    const char *p = memchr(line, ' ', n);
    size_t len = 0;
    if (p) {
        while (p < end && *p == ' ')
            p++;
        while (p < end && isdigit((unsigned char)*p))
            p++;
        while (p < end && *p == ' ')
            p++;
        while (p < end && len < sizeof t->reason - 1 && *p >= 0x20 && *p < 0x7f)
            t->reason[len++] = *p++;
    }
    t->reason[len] = '\0';
}

static int is_http_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Keeps the headers of the final response as "name\0value\0" pairs. */
static size_t on_header(char *data, size_t size, size_t nitems, void *userdata)
{
    transfer *t = userdata;
    http_client_response *rs = t->rs;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new response starts (the one after a 100 Continue): forget the earlier one. */
        buf_reset(&rs->headers);
        rs->header_count = 0;
        note_reason(t, data, n);
        return n;
    }
    const char *colon = memchr(data, ':', n);
    /* Lines without a name (the blank end, obsolete folding) or with NUL bytes are not kept. */
    if (!colon || colon == data || memchr(data, '\0', n))
        return n;
    size_t name_len = (size_t)(colon - data);
    while (name_len > 0 && is_http_space(data[name_len - 1]))
        name_len--;
    const char *value = colon + 1;
    const char *end = data + n;
    while (value < end && is_http_space(*value))
        value++;
    while (end > value && is_http_space(end[-1]))
        end--;
    size_t before = rs->headers.len;
    int rc = buf_append(&rs->headers, data, name_len);
    if (!rc)
        rc = buf_putc(&rs->headers, '\0');
    if (!rc)
        rc = buf_append(&rs->headers, value, (size_t)(end - value));
    if (!rc)
        rc = buf_putc(&rs->headers, '\0');
    if (rc) {
        rs->headers.len = before;
        if (rc == BUF_ERR_FULL)
            t->headers_too_large = 1;
        else
            t->nomem = 1;
        return 0;
    }
    rs->header_count++;
    return n;
}

const char *http_client_header(const http_client_response *rs, const char *name)
{
    if (!rs || !name || !rs->headers.data)
        return NULL;
    const char *p = rs->headers.data;
    for (size_t i = 0; i < rs->header_count; i++) {
        const char *value = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

void http_client_response_free(http_client_response *rs)
{
    if (!rs)
        return;
    buf_free(&rs->body);
    buf_free(&rs->headers);
    rs->status = 0;
    rs->retry_after_ms = -1;
    rs->failure = HTTP_PERMANENT;
    rs->duration_ms = 0;
    rs->header_count = 0;
}

/* ---- preparing the request ------------------------------------------------------- */

static int method_valid(const char *m)
{
    size_t n = 0;
    for (; m[n]; n++)
        if (m[n] < 'A' || m[n] > 'Z')
            return 0;
    return n > 0 && n <= CLIENT_METHOD_MAX;
}

/* A header name is an RFC 9110 token. */
static int is_token_char(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int has_line_break(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/* Length of the name of "Name: value", or 0 if it is not a well-formed header line. */
static size_t header_name_len(const char *h)
{
    size_t n = 0;
    while (is_token_char((unsigned char)h[n]))
        n++;
    return h[n] == ':' ? n : 0;
}

static int header_is(const char *h, size_t name_len, const char *name)
{
    return strlen(name) == name_len && strncasecmp(h, name, name_len) == 0;
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    buf line;
    buf_init(&line, 0);
    int rc = buf_printf(&line, "%s: %s", name, value);
    if (rc == 0 && value[0] == '\0') {
        /* "Name:" (no space) is curl's way to suppress a header it would add itself. */
        buf_reset(&line);
        rc = buf_printf(&line, "%s:", name);
    }
    struct curl_slist *grown = rc ? NULL : curl_slist_append(*list, buf_cstr(&line));
    buf_free(&line);
    if (!grown)
        return F3_ENOMEM;
    *list = grown;
    return 0;
}

/* POST, PUT and PATCH always carry a body (maybe empty, "Content-Length: 0"). */
static int sends_body(const http_client_request *rq, const char *method)
{
    return rq->body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

/* The request's header list: the caller's headers, checked, plus ours. */
static int build_headers(const http_client_request *rq, const char *method, const char *shown,
                         struct curl_slist **out, err *e)
{
    struct curl_slist *list = NULL;
    int has_corr = 0, has_ctype = 0, rc = 0;
    for (size_t i = 0; rq->headers && rq->headers[i]; i++) {
        const char *h = rq->headers[i];
        size_t name_len = header_name_len(h);
        if (name_len == 0) {
            rc = err_set(e, F3_EINVAL, "%s %s: request header #%zu is not \"Name: value\"", method,
                         shown, i + 1);
            goto out;
        }
        if (has_line_break(h)) {
            rc = err_set(e, F3_EINVAL, "%s %s: request header %.*s contains a line break", method,
                         shown, (int)name_len, h);
            goto out;
        }
        has_corr |= header_is(h, name_len, "X-Correlation-Id");
        has_ctype |= header_is(h, name_len, "Content-Type");
        struct curl_slist *grown = curl_slist_append(list, h);
        if (!grown) {
            rc = err_set(e, F3_ENOMEM, "%s %s: out of memory", method, shown);
            goto out;
        }
        list = grown;
    }
    if (rq->content_type && has_line_break(rq->content_type)) {
        rc = err_set(e, F3_EINVAL, "%s %s: content type contains a line break", method, shown);
        goto out;
    }
    int has_body = sends_body(rq, method);
    if (!has_ctype && rq->content_type)
        rc = add_header(&list, "Content-Type", rq->content_type);
    else if (!has_ctype && has_body)
        rc = add_header(&list, "Content-Type", ""); /* not curl's form-urlencoded default */
    if (!rc && has_body)
        rc = add_header(&list, "Expect", ""); /* no 100-continue round trip */
    const char *corr = log_get_correlation_id();
    if (!rc && !has_corr && corr && !has_line_break(corr))
        rc = add_header(&list, "X-Correlation-Id", corr);
    if (rc)
        err_set(e, rc, "%s %s: out of memory", method, shown);
out:
    if (rc) {
        curl_slist_free_all(list);
        list = NULL;
    }
    *out = list;
    return rc;
}

#define CLIENT_SETOPT(h, opt, val)                                                                 \
    do {                                                                                           \
        if (cc == CURLE_OK)                                                                        \
            cc = curl_easy_setopt(h, opt, val);                                                    \
    } while (0)

static CURLcode set_method(CURL *h, const http_client_request *rq, const char *method)
{
    CURLcode cc = CURLE_OK;
    if (strcmp(method, "GET") == 0) {
        CLIENT_SETOPT(h, CURLOPT_HTTPGET, 1L);
        return cc;
    }
    if (strcmp(method, "HEAD") == 0) {
        CLIENT_SETOPT(h, CURLOPT_NOBODY, 1L);
        return cc;
    }
    if (sends_body(rq, method)) {
        CLIENT_SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(rq->body ? rq->body_len : 0));
        CLIENT_SETOPT(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
    }
    if (strcmp(method, "POST") != 0)
        CLIENT_SETOPT(h, CURLOPT_CUSTOMREQUEST, method);
    return cc;
}

static CURLcode set_options(CURL *h, const http_client_request *rq, const char *method,
                            struct curl_slist *headers, long timeout_ms, long connect_ms,
                            transfer *t, char *errbuf)
{
    CURLcode cc = CURLE_OK;
    CLIENT_SETOPT(h, CURLOPT_URL, rq->url);
    CLIENT_SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CLIENT_SETOPT(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    CLIENT_SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
    CLIENT_SETOPT(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    CLIENT_SETOPT(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    CLIENT_SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    CLIENT_SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
    CLIENT_SETOPT(h, CURLOPT_USERAGENT, CLIENT_USER_AGENT);
    CLIENT_SETOPT(h, CURLOPT_HTTPHEADER, headers);
    CLIENT_SETOPT(h, CURLOPT_ACCEPT_ENCODING, ""); /* the cap applies to the decoded body */
    CLIENT_SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->rs->body.cap);
    CLIENT_SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
    CLIENT_SETOPT(h, CURLOPT_WRITEDATA, t);
    CLIENT_SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
    CLIENT_SETOPT(h, CURLOPT_HEADERDATA, t);
    CLIENT_SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);
    if (cc == CURLE_OK)
        cc = set_method(h, rq, method);
    return cc;
}

/* ---- reporting ----------------------------------------------------------------- */

typedef struct outcome {
    const char *method;
    const char *shown; /* URL for humans */
    CURLcode cc;
    long timeout_ms, connect_ms;
    int connected;
    const char *errbuf;
} outcome;

/* Sets e from the finished call and returns the call's status code. */
static int describe_outcome(const http_client_response *rs, const transfer *t, const outcome *o,
                            err *e)
{
    int code = rs->failure == HTTP_TRANSIENT ? F3_ETRANSIENT : F3_EPERMANENT;
    const char *m = o->method, *u = o->shown;
    if (t->nomem)
        return err_set(e, F3_ENOMEM, "%s %s: out of memory while reading the response", m, u);
    if (t->too_large || o->cc == CURLE_FILESIZE_EXCEEDED)
        return err_set(e, code, "%s %s: response too large (over %zu bytes)", m, u, rs->body.cap);
    if (t->headers_too_large)
        return err_set(e, code, "%s %s: response headers too large (over %zu bytes)", m, u,
                       CLIENT_HEADERS_CAP);
    if (o->cc == CURLE_OPERATION_TIMEDOUT && !o->connected && o->connect_ms < o->timeout_ms)
        return err_set(e, code, "%s %s: could not connect within %ld ms", m, u, o->connect_ms);
    if (o->cc == CURLE_OPERATION_TIMEDOUT)
        return err_set(e, code, "%s %s: timed out after %ld ms", m, u, o->timeout_ms);
    if (o->cc != CURLE_OK)
        return err_set(e, code, "%s %s: %s", m, u,
                       o->errbuf[0] ? o->errbuf : curl_easy_strerror(o->cc));
    if (rs->failure == HTTP_OK)
        return 0;
    const char *reason = reason_phrase(rs->status, t->reason);
    const char *sp = reason[0] ? " " : "";
    if (rs->status == 0)
        return err_set(e, code, "%s %s: no HTTP response", m, u);
    if (rs->status >= 300 && rs->status <= 399)
        return err_set(e, code, "%s %s: %ld%s%s (redirects are not followed)", m, u, rs->status, sp,
                       reason);
    if (code == F3_ETRANSIENT && rs->retry_after_ms >= 0)
        return err_set(e, code, "%s %s: %ld%s%s (retry after %ld ms)", m, u, rs->status, sp, reason,
                       rs->retry_after_ms);
    return err_set(e, code, "%s %s: %ld%s%s", m, u, rs->status, sp, reason);
}

/* One debug line per call: never headers, never bodies, never the query string. */
static void log_call(const http_client_response *rs, const outcome *o)
{
    if (log_get_level() > LOG_DEBUG)
        return;
    buf f;
    buf_init(&f, 0);
    buf_puts(&f, "\"method\":\"");
    buf_put_json_escaped(&f, o->method);
    buf_puts(&f, "\",\"url\":\"");
    buf_put_json_escaped(&f, o->shown);
    buf_printf(&f, "\",\"status\":%ld,\"durationMs\":%ld", rs->status, rs->duration_ms);
    if (rs->failure != HTTP_OK)
        buf_printf(&f, ",\"failure\":\"%s\"", http_client_failure_name(rs->failure));
    log_write_raw(LOG_DEBUG, "http client call", buf_cstr(&f));
    buf_free(&f);
}

/* ---- sending --------------------------------------------------------------------- */

/* Checks what curl cannot check for us; 0 or F3_EINVAL with e set. */
static int check_request(const http_client_request *rq, const char *method, const char *shown,
                         err *e)
{
    if (!method_valid(method))
        return err_set(e, F3_EINVAL, "%s: HTTP method is not an upper-case token", shown);
    if (rq->timeout_ms < 0 || rq->connect_timeout_ms < 0)
        return err_set(e, F3_EINVAL, "%s %s: negative timeout", method, shown);
    if (!rq->body && rq->body_len)
        return err_set(e, F3_EINVAL, "%s %s: body length without a body", method, shown);
    if (rq->body && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0))
        return err_set(e, F3_EINVAL, "%s %s: a %s request cannot carry a body", method, shown,
                       method);
    return 0;
}

static int perform(CURL *h, const http_client_request *rq, const char *method, const char *shown,
                   http_client_response *rs, err *e)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    transfer t = {.rs = rs};
    struct curl_slist *headers = NULL;
    outcome o = {.method = method, .shown = shown, .errbuf = errbuf};
    o.timeout_ms = rq->timeout_ms ? rq->timeout_ms : HTTP_CLIENT_DEFAULT_TIMEOUT_MS;
    o.connect_ms =
        rq->connect_timeout_ms ? rq->connect_timeout_ms : HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS;
    int rc = build_headers(rq, method, shown, &headers, e);
    if (rc)
        goto out;
    CURLcode cc = set_options(h, rq, method, headers, o.timeout_ms, o.connect_ms, &t, errbuf);
    if (cc != CURLE_OK) {
        rc = err_set(e, cc == CURLE_OUT_OF_MEMORY ? F3_ENOMEM : F3_EINVAL, "%s %s: %s", method,
                     shown, curl_easy_strerror(cc));
        goto out;
    }
    int64_t started = clock_mono_ms();
    o.cc = curl_easy_perform(h);
    rs->duration_ms = (long)(clock_mono_ms() - started);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
    long request_bytes = 0; /* > 0 once the request went out, so a connection existed */
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &request_bytes);
    o.connected = request_bytes > 0;
    rs->retry_after_ms = http_client_parse_retry_after(http_client_header(rs, "Retry-After"),
                                                       (long)(clock_now_ms() / 1000));
    rs->failure = t.nomem ? HTTP_TRANSIENT : http_client_classify(rs->status, (int)o.cc);
    rc = describe_outcome(rs, &t, &o, e);
    log_call(rs, &o);
out:
    curl_easy_reset(h); /* drop pointers to this call's headers, body and buffers */
    curl_slist_free_all(headers);
    return rc;
}

int http_client_send(const http_client_request *rq, http_client_response *rs, err *e)
{
    http_client_response local = {0};
    http_client_response *r = rs ? rs : &local;
    buf shown;
    buf_init(&shown, 0);
    int rc = 0;
    err_clear(e);
    response_init(r, rq ? rq->max_response : 0);
    if (!rq || !rq->url || !rq->url[0]) {
        rc = err_set(e, F3_EINVAL, "HTTP request without a URL");
        goto out;
    }
    url_for_humans(&shown, rq->url);
    const char *method = rq->method ? rq->method : "GET";
    rc = check_request(rq, method, buf_cstr(&shown), e);
    if (rc)
        goto out;
    CURL *h = thread_handle();
    if (!h) {
        rc = err_set(e, F3_ENOMEM, "%s %s: could not create a curl handle", method,
                     buf_cstr(&shown));
        goto out;
    }
    rc = perform(h, rq, method, buf_cstr(&shown), r, e);
out:
    if (rc == F3_EINVAL)
        r->failure = HTTP_PERMANENT;
    else if (rc == F3_ENOMEM)
        r->failure = HTTP_TRANSIENT;
    buf_free(&shown);
    if (r == &local)
        http_client_response_free(&local);
    return rc;
}

/* ---- JSON convenience ------------------------------------------------------------ */

static int body_is_blank(const buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (!is_http_space(b->data[i]))
            return 0;
    return 1;
}

static int parse_json_body(http_client_response *rs, const char *method, const char *url,
                           json_t **out, err *e)
{
    if (rs->status == 204 || body_is_blank(&rs->body))
        return 0;
    json_error_t jerr;
    *out = json_loadb(rs->body.data, rs->body.len, JSON_DECODE_ANY, &jerr);
    if (*out)
        return 0;
    rs->failure = HTTP_PERMANENT;
    buf shown;
    buf_init(&shown, 0);
    url_for_humans(&shown, url);
    /* Position only: jansson's text quotes the body, which may hold secrets. */
    int rc = err_set(e, F3_EPERMANENT,
                     "%s %s: %ld %s but the body is not valid JSON (line %d, column %d)", method,
                     buf_cstr(&shown), rs->status, reason_phrase(rs->status, ""), jerr.line,
                     jerr.column);
    buf_free(&shown);
    return rc;
}

/* headers plus "Accept: application/json" unless the caller set Accept; caller frees. */
static const char **json_headers(const char *const *headers)
{
    size_t n = 0;
    int has_accept = 0;
    for (; headers && headers[n]; n++) {
        size_t name_len = header_name_len(headers[n]);
        has_accept |= name_len && header_is(headers[n], name_len, "Accept");
    }
    const char **all = calloc(n + 2, sizeof *all);
    if (!all)
        return NULL;
    for (size_t i = 0; i < n; i++)
        all[i] = headers[i];
    if (!has_accept)
        all[n] = "Accept: application/json";
    return all;
}

int http_client_json(const char *method, const char *url, const char *const *headers,
                     const json_t *body, long timeout_ms, json_t **out, http_client_response *rs,
                     err *e)
{
    http_client_response local = {0};
    http_client_response *r = rs ? rs : &local;
    char *text = NULL;
    const char **all = NULL;
    int rc = 0;
    if (out)
        *out = NULL;
    if (body) {
        text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text) {
            response_init(r, 0);
            rc = err_set(e, F3_EINVAL, "%s: request body could not be encoded as JSON",
                         method ? method : "GET");
            goto out;
        }
    }
    all = json_headers(headers);
    if (!all) {
        response_init(r, 0);
        rc = err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    http_client_request rq = {
        .method = method,
        .url = url,
        .headers = all,
        .body = text,
        .body_len = text ? strlen(text) : 0,
        .content_type = text ? "application/json" : NULL,
        .timeout_ms = timeout_ms,
    };
    rc = http_client_send(&rq, r, e);
    if (rc == 0 && out)
        rc = parse_json_body(r, method ? method : "GET", url, out, e);
out:
    free(text);
    free(all);
    if (r == &local)
        http_client_response_free(&local);
    return rc;
}

/* ---- Retry-After and backoff ----------------------------------------------------- */

long http_client_parse_retry_after(const char *value, long now_s)
{
    const long cap_s = HTTP_CLIENT_RETRY_AFTER_MAX_MS / 1000;
    if (!value)
        return -1;
    while (is_http_space(*value))
        value++;
    if (isdigit((unsigned char)*value)) {
        long secs = 0;
        const char *p = value;
        for (; isdigit((unsigned char)*p); p++)
            if (secs <= cap_s) /* saturate: absurdly long values are capped anyway */
                secs = secs * 10 + (*p - '0');
        while (is_http_space(*p))
            p++;
        if (*p)
            return -1;
        return secs >= cap_s ? HTTP_CLIENT_RETRY_AFTER_MAX_MS : secs * 1000;
    }
    /* An HTTP-date starts with the day name; anything else ("-5", "") is unusable. */
    if (!isalpha((unsigned char)*value))
        return -1;
    time_t when = curl_getdate(value, NULL);
    if (when == (time_t)-1)
        return -1;
    long long delta = (long long)when - now_s;
    if (delta <= 0)
        return 0;
    return delta >= cap_s ? HTTP_CLIENT_RETRY_AFTER_MAX_MS : (long)delta * 1000;
}

/* xorshift64*: spreading retries needs no more than this, and no locks. */
static uint64_t jitter_next(void)
{
    static _Thread_local uint64_t state;
    if (!state)
        state = ((uint64_t)clock_mono_us() ^ (uint64_t)(uintptr_t)&state) | 1u;
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1DULL;
}

long http_client_backoff_ex(int attempt, long base_ms, long max_ms, long retry_after_ms,
                            unsigned flags)
{
    long delay = base_ms > 0 ? base_ms : 0;
    for (int i = 1; i < attempt && delay > 0; i++) {
        if ((max_ms > 0 && delay >= max_ms) || delay > LONG_MAX / 2)
            break;
        delay *= 2;
    }
    if (max_ms > 0 && delay > max_ms)
        delay = max_ms;
    if ((flags & HTTP_BACKOFF_JITTER) && delay > 0)
        delay -= (long)(jitter_next() % ((uint64_t)delay / 5 + 1));
    if (retry_after_ms > HTTP_CLIENT_RETRY_AFTER_MAX_MS)
        retry_after_ms = HTTP_CLIENT_RETRY_AFTER_MAX_MS;
    return retry_after_ms > delay ? retry_after_ms : delay;
}

long http_client_backoff_ms(int attempt, long base_ms, long max_ms, long retry_after_ms)
{
    return http_client_backoff_ex(attempt, base_ms, max_ms, retry_after_ms, 0);
}
