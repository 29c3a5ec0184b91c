/*
 * page_cursor.c - the opaque cursor of keyset-paged lists (see page_cursor.h).
 */
#include "services/common/page_cursor.h"

#include "core/crypto.h"
#include "core/str.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int page_cursor_encode(int64_t created_at, const char *id, buf *out)
{
    char text[160];
    int n = snprintf(text, sizeof text, "%" PRId64 ":%s", created_at, id ? id : "");
    if (n < 0 || (size_t)n >= sizeof text)
        return F3_EINVAL;
    return crypto_base64_encode(text, (size_t)n, true, out);
}

int page_cursor_decode(const char *cursor, int64_t *created_at, char *id, size_t id_size, err *e)
{
    buf raw;
    buf_init(&raw, 256);
    err ignored;
    int rc = cursor ? crypto_base64_decode(cursor, strlen(cursor), &raw, &ignored) : F3_EINVAL;
    const char *t = buf_cstr(&raw);
    const char *colon = rc == 0 ? strchr(t, ':') : NULL;
    char num[24];
    if (!colon || (size_t)(colon - t) >= sizeof num || !colon[1] || strlen(colon + 1) >= id_size ||
        strlen(t) != raw.len || !str_is_utf8(colon + 1)) {
        rc = F3_EINVAL;
    } else {
        memcpy(num, t, (size_t)(colon - t));
        num[colon - t] = '\0';
        rc = str_to_int64(num, created_at) == 0 && *created_at >= 0 ? 0 : F3_EINVAL;
        if (rc == 0)
            memcpy(id, colon + 1, strlen(colon + 1) + 1);
    }
    buf_free(&raw);
    return rc ? err_set(e, F3_EINVAL, "cursor: malformed") : 0;
}
