/*
 * message.c - e-mail message building (see message.h): headers, RFC 2047 words,
 * quoted-printable bodies and the multipart/alternative structure.
 */
#include "integrations/mail/message.h"

#include "core/clock.h"
#include "core/uuid.h"

#include <sodium.h>
#include <string.h>
#include <time.h>

#define QP_LINE_MAX    76 /* characters per encoded line, soft break '=' included */
#define WORD_RAW_MAX   45 /* bytes per B-encoded word: 60 base64 + 12 = 72 characters */
#define BOUNDARY_BYTES 12

bool mail_address_valid(const char *a)
{
    if (!a || !*a || strlen(a) > MAIL_ADDRESS_MAX)
        return false;
    const char *at = strrchr(a, '@');
    if (!at || at == a || !at[1])
        return false;
    for (const unsigned char *p = (const unsigned char *)a; *p; p++)
        if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>' || *p == ',' || *p == '"' ||
            *p == '(' || *p == ')' || *p == '\\' || *p == ';' ||
            (*p == '@' && p != (const unsigned char *)at))
            return false;
    const char *domain = at + 1;
    if (domain[0] == '.' || domain[strlen(domain) - 1] == '.' || strstr(domain, ".."))
        return false;
    return strchr(domain, '.') != NULL || strcmp(domain, "localhost") == 0;
}

static bool has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

static bool plain_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return false;
    return true;
}

/* Length of the UTF-8 sequence starting with byte c (1 for anything malformed). */
static size_t utf8_len(unsigned char c)
{
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    if (c >= 0xe0)
        return c <= 0xef ? 3 : 1;
    if (c >= 0xc2)
        return 2;
    return 1;
}

int mail_encode_header(const char *s, buf *out)
{
    if (plain_ascii(s))
        return buf_puts(out, s);
    size_t len = strlen(s), i = 0;
    int rc = 0;
    bool first = true;
    while (rc == 0 && i < len) {
        size_t n = 0;
        while (i + n < len) {
            size_t step = utf8_len((unsigned char)s[i + n]);
            if (i + n + step > len)
                step = len - i - n;
            if (n + step > WORD_RAW_MAX)
                break;
            n += step;
        }
        char b64[sodium_base64_ENCODED_LEN(WORD_RAW_MAX, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64(b64, sizeof b64, (const unsigned char *)s + i, n,
                          sodium_base64_VARIANT_ORIGINAL);
        rc = buf_printf(out, "%s=?UTF-8?B?%s?=", first ? "" : "\r\n ", b64);
        first = false;
        i += n;
    }
    return rc;
}

int mail_encode_qp(const char *text, buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    size_t col = 0;
    for (const unsigned char *p = (const unsigned char *)text; rc == 0 && *p; p++) {
        if (*p == '\r' && p[1] == '\n')
            continue;
        if (*p == '\n' || *p == '\r') {
            rc = buf_puts(out, "\r\n");
            col = 0;
            continue;
        }
        bool line_end = p[1] == '\0' || p[1] == '\n' || (p[1] == '\r');
        bool literal =
            (*p >= 33 && *p <= 126 && *p != '=') || ((*p == ' ' || *p == '\t') && !line_end);
        /* A '.' alone at a line start is left to the transport's dot-stuffing. */
        size_t need = literal ? 1 : 3;
        if (col + need > QP_LINE_MAX - 1) {
            rc = buf_puts(out, "=\r\n");
            col = 0;
        }
        if (rc == 0 && literal)
            rc = buf_putc(out, (char)*p);
        else if (rc == 0)
            rc = buf_printf(out, "=%c%c", hex[*p >> 4], hex[*p & 15]);
        col += need;
    }
    return rc;
}

static int put_date(int64_t ms, buf *out)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    return buf_printf(out, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
                      tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                      tm.tm_sec);
}

static int put_from(const mail_message *m, buf *out)
{
    int rc = buf_puts(out, "From: ");
    if (rc == 0 && m->from_name && *m->from_name) {
        if (plain_ascii(m->from_name) && !strpbrk(m->from_name, "\"\\"))
            rc = buf_printf(out, "\"%s\" ", m->from_name);
        else {
            rc = mail_encode_header(m->from_name, out);
            rc = rc ? rc : buf_putc(out, ' ');
        }
    }
    return rc ? rc : buf_printf(out, "<%s>\r\n", m->from);
}

static int check(const mail_message *m, err *e)
{
    if (!m || !mail_address_valid(m->from))
        return err_set(e, F3_EINVAL, "mail: the sender address is missing or invalid");
    size_t n = 0;
    for (; m->to && m->to[n]; n++)
        if (!mail_address_valid(m->to[n]))
            return err_set(e, F3_EINVAL, "mail: invalid recipient address '%.80s'", m->to[n]);
    if (n == 0 || n > MAIL_RCPT_MAX)
        return err_set(e, F3_EINVAL, "mail: 1 to %d recipients are required, got %zu",
                       MAIL_RCPT_MAX, n);
    if (!m->subject || !m->text)
        return err_set(e, F3_EINVAL, "mail: subject and text are required");
    if (has_crlf(m->subject) || has_crlf(m->from_name) || has_crlf(m->message_id))
        return err_set(e, F3_EINVAL, "mail: header values must not contain CR or LF");
    if (m->message_id && (strpbrk(m->message_id, "<> ") || !strchr(m->message_id, '@')))
        return err_set(e, F3_EINVAL, "mail: message id must look like local@domain");
    return 0;
}

static int put_headers(const mail_message *m, buf *out)
{
    int rc = put_date(m->date_ms ? m->date_ms : clock_now_ms(), out);
    rc = rc ? rc : put_from(m, out);
    rc = rc ? rc : buf_puts(out, "To: ");
    for (size_t i = 0; rc == 0 && m->to[i]; i++)
        rc = buf_printf(out, "%s<%s>", i ? ",\r\n " : "", m->to[i]);
    rc = rc ? rc : buf_puts(out, "\r\nSubject: ");
    rc = rc ? rc : mail_encode_header(m->subject, out);
    if (rc == 0 && m->message_id)
        rc = buf_printf(out, "\r\nMessage-ID: <%s>", m->message_id);
    else if (rc == 0) {
        char id[UUID_STR_LEN];
        uuid_v4(id);
        rc = buf_printf(out, "\r\nMessage-ID: <%s@%s>", id, strrchr(m->from, '@') + 1);
    }
    return rc ? rc : buf_puts(out, "\r\nMIME-Version: 1.0\r\n");
}

static int put_part(const char *type, const char *body, buf *out)
{
    int rc = buf_printf(out,
                        "Content-Type: %s; charset=UTF-8\r\n"
                        "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                        type);
    rc = rc ? rc : mail_encode_qp(body, out);
    return rc ? rc : buf_puts(out, "\r\n");
}

int mail_build(const mail_message *m, buf *out, err *e)
{
    int rc = check(m, e);
    if (rc)
        return rc;
    rc = put_headers(m, out);
    if (rc == 0 && !m->html) {
        rc = put_part("text/plain", m->text, out);
    } else if (rc == 0) {
        unsigned char raw[BOUNDARY_BYTES];
        char hexr[BOUNDARY_BYTES * 2 + 1];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(hexr, sizeof hexr, raw, sizeof raw);
        /* "=_" cannot occur in quoted-printable text, so the boundary never appears in a part. */
        rc = buf_printf(out,
                        "Content-Type: multipart/alternative; boundary=\"=_f3_%s\"\r\n\r\n"
                        "This is a multi-part message in MIME format.\r\n\r\n--=_f3_%s\r\n",
                        hexr, hexr);
        rc = rc ? rc : put_part("text/plain", m->text, out);
        rc = rc ? rc : buf_printf(out, "\r\n--=_f3_%s\r\n", hexr);
        rc = rc ? rc : put_part("text/html", m->html, out);
        rc = rc ? rc : buf_printf(out, "\r\n--=_f3_%s--\r\n", hexr);
    }
    if (rc)
        return err_set(e, rc == BUF_ERR_FULL ? F3_ETOOBIG : F3_ENOMEM, "mail: message too large");
    return 0;
}
