/*
 * test_mail.c - e-mail: MIME building (headers, multipart structure, quoted-printable,
 * encoded subjects, refused header injection) and SMTP sending to the in-process sink
 * (AUTH, several recipients, dot-stuffing, and the transient / permanent failures).
 */
#include "support/f3test.h"

#include "core/buf.h"
#include "http/client.h"
#include "integrations/mail/message.h"
#include "integrations/mail/smtp.h"
#include "sim/smtp/sink.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char *const two_rcpts[] = {"ops@example.com", "boss@example.org", NULL};

static mail_message sample(void)
{
    mail_message m = {.from = "f3@example.com",
                      .from_name = "Forma3D.Connect",
                      .to = two_rcpts,
                      .subject = "Alert: order #1001",
                      .text = "Hello\nsecond line\n",
                      .html = "<p>Hello</p>",
                      .date_ms = INT64_C(1795335330000), /* 2026-11-22T08:15:30Z */
                      .message_id = "abc@example.com"};
    return m;
}

static void test_headers_and_structure(void **state)
{
    (void)state;
    mail_message m = sample();
    buf b;
    buf_init(&b, 0);
    err e = {0};
    assert_int_equal(mail_build(&m, &b, &e), 0);
    const char *s = buf_cstr(&b);
    assert_non_null(strstr(s, "Date: Sun, 22 Nov 2026 08:15:30 +0000\r\n"));
    assert_non_null(strstr(s, "From: \"Forma3D.Connect\" <f3@example.com>\r\n"));
    assert_non_null(strstr(s, "To: <ops@example.com>,\r\n <boss@example.org>\r\n"));
    assert_non_null(strstr(s, "Subject: Alert: order #1001\r\n"));
    assert_non_null(strstr(s, "Message-ID: <abc@example.com>\r\n"));
    assert_non_null(strstr(s, "MIME-Version: 1.0\r\n"));
    const char *ct = strstr(s, "Content-Type: multipart/alternative; boundary=\"");
    assert_non_null(ct);
    char boundary[64] = "";
    const char *q = ct + strlen("Content-Type: multipart/alternative; boundary=\"");
    size_t n = strcspn(q, "\"");
    assert_true(n > 4 && n < sizeof boundary);
    memcpy(boundary, q, n);
    char delim[80], close[80];
    snprintf(delim, sizeof delim, "\r\n--%s\r\n", boundary);
    snprintf(close, sizeof close, "\r\n--%s--\r\n", boundary);
    const char *p1 = strstr(s, delim);
    assert_non_null(p1);
    assert_non_null(strstr(p1, "Content-Type: text/plain; charset=UTF-8\r\n"));
    const char *p2 = strstr(p1 + 1, delim);
    assert_non_null(p2);
    assert_non_null(strstr(p2, "Content-Type: text/html; charset=UTF-8\r\n"));
    assert_true(strstr(p2, "text/plain") == NULL);
    assert_non_null(strstr(s, close));
    assert_non_null(strstr(s, "Hello\r\nsecond line\r\n"));
    /* Every line ends with CRLF: no bare LF anywhere. */
    for (size_t i = 0; i < b.len; i++)
        if (s[i] == '\n')
            assert_int_equal(s[i - 1], '\r');
    /* Headers end before the first blank line; the text-only form has one part. */
    buf_reset(&b);
    m.html = NULL;
    assert_int_equal(mail_build(&m, &b, &e), 0);
    assert_null(strstr(buf_cstr(&b), "multipart"));
    assert_non_null(strstr(buf_cstr(&b), "Content-Type: text/plain; charset=UTF-8\r\n"));
    buf_free(&b);
}

/* Decodes every =?UTF-8?B?...?= word of an encoded header value and concatenates them. */
static void decode_words(const char *v, char *out, size_t size)
{
    size_t len = 0;
    const char *p = v;
    while ((p = strstr(p, "=?UTF-8?B?")) != NULL) {
        p += 10;
        const char *end = strstr(p, "?=");
        assert_non_null(end);
        size_t got = 0;
        assert_int_equal(sodium_base642bin((unsigned char *)out + len, size - len - 1, p,
                                           (size_t)(end - p), NULL, &got, NULL,
                                           sodium_base64_VARIANT_ORIGINAL),
                         0);
        len += got;
        p = end + 2;
    }
    out[len] = '\0';
}

static void test_encoded_subject(void **state)
{
    (void)state;
    const char *subject = "Druk mislukt ✗ – bestelling “1001” für Müller, "
                          "wiederholt fehlgeschlagen ✓✓✓ ünd noch länger";
    buf b;
    buf_init(&b, 0);
    assert_int_equal(mail_encode_header(subject, &b), 0);
    const char *v = buf_cstr(&b);
    assert_true(strncmp(v, "=?UTF-8?B?", 10) == 0);
    assert_non_null(strstr(v, "\r\n =?UTF-8?B?")); /* long: folded into several words */
    /* Each physical line stays within 76 characters and is ASCII. */
    size_t col = 0;
    for (const char *p = v; *p; p++) {
        assert_true((unsigned char)*p < 0x80);
        col = *p == '\n' ? 0 : *p == '\r' ? col : col + 1;
        assert_true(col <= 76);
    }
    char back[512];
    decode_words(v, back, sizeof back);
    assert_string_equal(back, subject);
    buf_reset(&b);
    assert_int_equal(mail_encode_header("plain ascii", &b), 0);
    assert_string_equal(buf_cstr(&b), "plain ascii");
    buf_free(&b);
}

static void test_quoted_printable(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 0);
    assert_int_equal(mail_encode_qp("a=b trailing \ncafé\r\n.dot", &b), 0);
    assert_string_equal(buf_cstr(&b), "a=3Db trailing=20\r\ncaf=C3=A9\r\n.dot");
    buf_reset(&b);
    char longline[301];
    memset(longline, 'x', 300);
    longline[300] = '\0';
    assert_int_equal(mail_encode_qp(longline, &b), 0);
    size_t col = 0, xs = 0;
    for (const char *p = buf_cstr(&b); *p; p++) {
        col = *p == '\n' ? 0 : *p == '\r' ? col : col + 1;
        assert_true(col <= 76);
        xs += *p == 'x';
    }
    assert_int_equal(xs, 300);
    assert_non_null(strstr(buf_cstr(&b), "=\r\n"));
    buf_free(&b);
}

static void test_refuses_bad_input(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 0);
    err e = {0};
    mail_message m = sample();
    m.subject = "Hi\r\nBcc: victim@example.com";
    assert_int_equal(mail_build(&m, &b, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "CR or LF"));
    m = sample();
    const char *bad[] = {"not-an-address", NULL};
    m.to = bad;
    assert_int_equal(mail_build(&m, &b, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "not-an-address"));
    const char *none[] = {NULL};
    m.to = none;
    assert_int_equal(mail_build(&m, &b, &e), F3_EINVAL);
    m = sample();
    m.from = "me@";
    assert_int_equal(mail_build(&m, &b, &e), F3_EINVAL);
    assert_true(mail_address_valid("a.b+c@sub.example.com"));
    assert_true(mail_address_valid("ops@localhost"));
    assert_false(mail_address_valid("a b@example.com"));
    assert_false(mail_address_valid("<a@example.com>"));
    assert_false(mail_address_valid("a@b@example.com"));
    assert_false(mail_address_valid("a@example..com"));
    assert_false(mail_address_valid(NULL));
    buf_free(&b);
}

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(mail_smtp_classify(CURLE_OK, 250), 0);
    assert_int_equal(mail_smtp_classify(CURLE_OK, 0), 0);
    assert_int_equal(mail_smtp_classify(CURLE_SEND_ERROR, 451), F3_ETRANSIENT);
    assert_int_equal(mail_smtp_classify(CURLE_RECV_ERROR, 421), F3_ETRANSIENT);
    assert_int_equal(mail_smtp_classify(CURLE_SEND_ERROR, 550), F3_EPERMANENT);
    assert_int_equal(mail_smtp_classify(CURLE_LOGIN_DENIED, 535), F3_EPERMANENT);
    assert_int_equal(mail_smtp_classify(CURLE_COULDNT_CONNECT, 0), F3_ETRANSIENT);
    assert_int_equal(mail_smtp_classify(CURLE_OPERATION_TIMEDOUT, 0), F3_ETRANSIENT);
    assert_int_equal(mail_smtp_classify(CURLE_URL_MALFORMAT, 0), F3_EPERMANENT);
}

/* ---- sending to the sink ---------------------------------------------------------------- */

typedef struct fx {
    smtp_sink *sink;
    mail_smtp_opts o;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    err e = {0};
    smtp_sink_opts so = {.http_port = -1, .user = "mailer", .pass = "s3cret"};
    f->sink = smtp_sink_start(&so, &e);
    assert_non_null(f->sink);
    f->o = (mail_smtp_opts){.host = "127.0.0.1",
                            .port = smtp_sink_port(f->sink),
                            .user = "mailer",
                            .pass = "s3cret",
                            .timeout_ms = 10000,
                            .connect_timeout_ms = 5000};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    smtp_sink_stop(f->sink);
    free(f);
    return 0;
}

static void test_send_with_auth_to_two_recipients(void **state)
{
    fx *f = *state;
    mail_message m = sample();
    m.subject = "Übersicht ✓";
    m.text = "line one\n.starts with a dot\n.\nend\n";
    err e = {0};
    assert_int_equal(mail_send(&f->o, &m, &e), 0);
    assert_int_equal(smtp_sink_count(f->sink), 1);
    smtp_sink_msg got;
    assert_int_equal(smtp_sink_get(f->sink, 0, &got), 0);
    assert_string_equal(got.from, "f3@example.com");
    assert_int_equal(got.nto, 2);
    assert_string_equal(got.to[0], "ops@example.com");
    assert_string_equal(got.to[1], "boss@example.org");
    assert_string_equal(got.auth_user, "mailer");
    /* What arrived is exactly what was built, apart from the random boundary and id. */
    assert_non_null(strstr(got.data, "Subject: =?UTF-8?B?"));
    assert_non_null(strstr(got.data, "\r\n.starts with a dot\r\n.\r\nend\r\n"));
    assert_non_null(strstr(got.data, "<p>Hello</p>"));
    smtp_sink_msg_free(&got);
}

static void test_wrong_password_is_permanent(void **state)
{
    fx *f = *state;
    mail_message m = sample();
    f->o.pass = "wrong";
    err e = {0};
    assert_int_equal(mail_send(&f->o, &m, &e), F3_EPERMANENT);
    assert_null(strstr(e.msg, "wrong"));
    assert_int_equal(smtp_sink_count(f->sink), 0);
}

static void test_failures_are_classified(void **state)
{
    fx *f = *state;
    mail_message m = sample();
    err e = {0};
    assert_int_equal(smtp_sink_set_mode(f->sink, SMTP_SINK_TEMPFAIL, &e), 0);
    assert_int_equal(mail_send(&f->o, &m, &e), F3_ETRANSIENT);
    assert_non_null(strstr(e.msg, "451"));
    assert_int_equal(smtp_sink_set_mode(f->sink, SMTP_SINK_REFUSE, &e), 0);
    assert_int_equal(mail_send(&f->o, &m, &e), F3_ETRANSIENT);
    assert_int_equal(smtp_sink_set_mode(f->sink, SMTP_SINK_ACCEPT, &e), 0);
    const char *rejected[] = {"ops@example.com", "nobody@" SMTP_SINK_REJECT_DOMAIN, NULL};
    m.to = rejected;
    assert_int_equal(mail_send(&f->o, &m, &e), F3_EPERMANENT);
    assert_non_null(strstr(e.msg, "550"));
    assert_int_equal(smtp_sink_count(f->sink), 0);
    m = sample();
    assert_int_equal(mail_send(&f->o, &m, &e), 0); /* back up: accepted again */
    assert_int_equal(smtp_sink_count(f->sink), 1);
    mail_smtp_opts bad = f->o;
    bad.host = "evil/host";
    assert_int_equal(mail_send(&bad, &m, &e), F3_EINVAL);
}

int main(void)
{
    http_client_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_and_structure),
        cmocka_unit_test(test_encoded_subject),
        cmocka_unit_test(test_quoted_printable),
        cmocka_unit_test(test_refuses_bad_input),
        cmocka_unit_test(test_classify),
        cmocka_unit_test_setup_teardown(test_send_with_auth_to_two_recipients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_password_is_permanent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_are_classified, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    http_client_cleanup();
    return rc;
}
