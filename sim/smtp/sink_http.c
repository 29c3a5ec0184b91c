/*
 * sink_http.c - the SMTP sink's HTTP control API (see sink.h): list, read and forget the
 * received mail, switch the failure mode. Reads the store only through sink.h.
 */
#include "sim/smtp/sink_internal.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/str.h"
#include "http/request.h"
#include "http/response.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The raw value of header `name` in the header block of a message, unfolded; "" if absent.
 * Caller frees. */
static char *header_value(const char *data, const char *name)
{
    size_t n = strlen(name);
    buf out;
    buf_init(&out, 0);
    for (const char *line = data; line && *line && !(line[0] == '\r' && line[1] == '\n');) {
        const char *end = strstr(line, "\r\n");
        if (!end)
            break;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            buf_append(&out, v, (size_t)(end - v));
            /* continuation lines */
            while (end[2] == ' ' || end[2] == '\t') {
                const char *next = strstr(end + 2, "\r\n");
                if (!next)
                    break;
                buf_append(&out, end + 2, (size_t)(next - end - 2));
                end = next;
            }
            break;
        }
        line = end + 2;
    }
    return buf_detach(&out);
}

static json_t *message_json(const smtp_sink_msg *m)
{
    json_t *to = json_array();
    for (size_t i = 0; to && i < m->nto; i++)
        json_array_append_new(to, json_string(m->to[i]));
    char *subject = header_value(m->data, "Subject");
    char at[CLOCK_ISO_LEN];
    clock_format_iso(m->received_ms, at);
    json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:s?, s:I, s:s}", "id", m->id, "from", m->from,
                          "to", to ? to : json_array(), "subject", subject ? subject : "",
                          "authUser", m->auth_user, "size", (json_int_t)m->len, "receivedAt", at);
    free(subject);
    return o;
}

static int h_list(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    smtp_sink *s = ctx;
    json_t *list = json_array();
    for (size_t i = 0; list; i++) {
        smtp_sink_msg m;
        if (smtp_sink_get(s, i, &m) != 0)
            break;
        json_t *o = message_json(&m);
        smtp_sink_msg_free(&m);
        if (!o || json_array_append_new(list, o) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (!list)
        return http_res_error(res, 500, "out of memory");
    return http_res_json(res, 200, list);
}

static int h_get(http_request *req, http_response *res, void *ctx)
{
    smtp_sink *s = ctx;
    smtp_sink_msg m;
    const char *id = http_req_param(req, "id");
    int rc = smtp_sink_find(s, id, &m);
    if (rc == F3_ENOTFOUND)
        return http_res_error(res, 404, "Message not found: %s", id ? id : "");
    if (rc)
        return http_res_error(res, 500, "out of memory");
    rc = http_res_bytes(res, 200, "message/rfc822", m.data, m.len);
    smtp_sink_msg_free(&m);
    return rc;
}

static int h_clear(http_request *req, http_response *res, void *ctx)
{
    (void)req;
    smtp_sink_clear(ctx);
    return http_res_bytes(res, 204, NULL, NULL, 0);
}

static int h_mode(http_request *req, http_response *res, void *ctx)
{
    smtp_sink *s = ctx;
    json_t *body = NULL;
    if (http_req_json(req, &body, res) != 0)
        return 0;
    const char *name = NULL;
    err e = {0};
    int mode = -1;
    if (json_get_string(body, "mode", &name, &e) == 0)
        mode = smtp_sink_mode_parse(name);
    int rc;
    if (mode < 0)
        rc = http_res_error(res, 400, "mode must be \"accept\", \"tempfail\" or \"refuse\"");
    else if (smtp_sink_set_mode(s, (smtp_sink_mode)mode, &e) != 0)
        rc = http_res_error(res, 503, "%s", e.msg);
    else
        rc = http_res_json(res, 200, json_pack("{s:s}", "mode", name));
    json_decref(body);
    return rc;
}

int smtp_sink_http_start(smtp_sink *s, int port, err *e)
{
    int rc = sim_server_init(&s->web, NULL, NULL, e);
    if (rc)
        return rc;
    const http_route routes[] = {
        {"GET", "/_sim/messages", h_list, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/_sim/messages/:id", h_get, s, HTTP_ACCESS_PUBLIC},
        {"DELETE", "/_sim/messages", h_clear, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/_sim/mode", h_mode, s, HTTP_ACCESS_PUBLIC},
    };
    rc = http_router_add(s->web.router, routes, sizeof routes / sizeof routes[0], e);
    return rc ? rc : sim_server_listen(&s->web, s->host, port, 2, e);
}
