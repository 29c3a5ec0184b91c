/*
 * correlation.c - correlation id selection (see correlation.h).
 *
 * A client-supplied id ends up in response headers and log lines, so anything
 * that is not short visible ASCII is ignored rather than cleaned up.
 */
#include "http/correlation.h"

#include "core/uuid.h"

#include <string.h>

bool http_correlation_id_valid(const char *s)
{
    if (!s || !*s)
        return false;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if (*p < 0x21 || *p > 0x7e || n >= HTTP_CORRELATION_ID_MAX)
            return false;
    return true;
}

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool all_zero(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '0')
            return false;
    return true;
}

bool http_traceparent_trace_id(const char *tp, char out[HTTP_TRACE_ID_LEN + 1])
{
    /* 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 */
    if (!tp || strlen(tp) != 55)
        return false;
    if (tp[0] != '0' || tp[1] != '0' || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
        return false;
    const char *trace = tp + 3, *parent = tp + 36, *flags = tp + 53;
    if (!lower_hex(trace, HTTP_TRACE_ID_LEN) || !lower_hex(parent, 16) || !lower_hex(flags, 2))
        return false;
    if (all_zero(trace, HTTP_TRACE_ID_LEN) || all_zero(parent, 16))
        return false;
    memcpy(out, trace, HTTP_TRACE_ID_LEN);
    out[HTTP_TRACE_ID_LEN] = '\0';
    return true;
}

void http_correlation_id(const char *x_correlation_id, const char *traceparent,
                         char out[HTTP_CORRELATION_ID_MAX + 1])
{
    if (http_correlation_id_valid(x_correlation_id)) {
        size_t n = strlen(x_correlation_id);
        memcpy(out, x_correlation_id, n + 1);
        return;
    }
    char trace[HTTP_TRACE_ID_LEN + 1];
    if (http_traceparent_trace_id(traceparent, trace)) {
        memcpy(out, trace, sizeof trace);
        return;
    }
    char id[UUID_STR_LEN];
    uuid_v4(id);
    memcpy(out, id, sizeof id);
}
