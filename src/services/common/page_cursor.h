/*
 * page_cursor.h - the opaque cursor of keyset-paged lists (newest first): base64url of
 * "<created_at ms>:<id>" of the last row of a page, which the next page starts after.
 *
 * A cursor comes back from a client, so decoding checks all of it: base64url, a
 * non-negative number, an id that fits and is valid UTF-8 (it is bound as SQL text).
 */
#ifndef F3_COMMON_PAGE_CURSOR_H
#define F3_COMMON_PAGE_CURSOR_H

#include "core/buf.h"
#include "core/err.h"

#include <stddef.h>
#include <stdint.h>

/* Appends the cursor of (created_at, id) to out. 0 or F3_ENOMEM. */
int page_cursor_encode(int64_t created_at, const char *id, buf *out);

/* Decodes cursor into *created_at and id (id_size bytes with the NUL). 0, or F3_EINVAL
 * with e saying "cursor: malformed". */
int page_cursor_decode(const char *cursor, int64_t *created_at, char *id, size_t id_size, err *e);

#endif
