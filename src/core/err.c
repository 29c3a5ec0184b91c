/*
 * err.c - the error out-parameter (see err.h).
 */
#include "core/err.h"

#include "core/str.h"

#include <stdarg.h>
#include <stdio.h>

int err_set(err *e, int code, const char *fmt, ...)
{
    if (!e)
        return code;
    e->code = code;
    char text[ERR_MSG_MAX + 4]; /* a cut here falls past where msg is cut */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* Messages quote outside text (a provider's reply, a header) and end up in JSON: keep
     * them valid UTF-8, cut at a character. */
    str_utf8_copy(e->msg, sizeof e->msg, text);
    return code;
}

void err_clear(err *e)
{
    if (!e)
        return;
    e->code = 0;
    e->msg[0] = '\0';
}

const char *err_name(int code)
{
    switch (code) {
    case F3_OK:
        return "ok";
    case F3_EINVAL:
        return "invalid input";
    case F3_ENOMEM:
        return "out of memory";
    case F3_EIO:
        return "i/o error";
    case F3_ENOTFOUND:
        return "not found";
    case F3_ECONFLICT:
        return "conflict";
    case F3_EBUSY:
        return "busy";
    case F3_ETRANSIENT:
        return "transient failure";
    case F3_EPERMANENT:
        return "permanent failure";
    case F3_ETOOBIG:
        return "too big";
    default:
        return "error";
    }
}
