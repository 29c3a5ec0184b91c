/*
 * buf.h - growable, length-carrying byte buffers with a hard size cap.
 *
 * Every piece of text we assemble (request bodies, JSON output, SQL, log lines)
 * goes through a buf so that no caller does its own realloc arithmetic and
 * nothing can grow without bound. The contents are always NUL-terminated, so
 * buf_cstr() can be handed to C string functions.
 */
#ifndef F3_CORE_BUF_H
#define F3_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

/* Returned by the append functions when the cap would be exceeded or memory ran out. */
#define BUF_ERR_FULL  (-1)
#define BUF_ERR_NOMEM (-2)

typedef struct buf {
    char *data;   /* NUL-terminated; NULL until the first append */
    size_t len;   /* bytes used, not counting the terminator */
    size_t alloc; /* bytes allocated */
    size_t cap;   /* largest len allowed; 0 means BUF_DEFAULT_CAP */
} buf;

#define BUF_DEFAULT_CAP ((size_t)64 * 1024 * 1024)

/* A buf with a cap of `cap` bytes (0 = default). Allocates nothing until used. */
void buf_init(buf *b, size_t cap);

/* Frees the contents; the buf may be reused after buf_init() or as if freshly initialised. */
void buf_free(buf *b);

/* Forgets the contents but keeps the allocation and the cap. */
void buf_reset(buf *b);

/* Appends; 0 on success, BUF_ERR_FULL past the cap, BUF_ERR_NOMEM. On error the buf is unchanged.
 * (Each call stands alone: after a failed append, later ones may still succeed.) */
int buf_append(buf *b, const void *data, size_t len);
int buf_puts(buf *b, const char *s);
int buf_putc(buf *b, char c);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Appends `s` as the inside of a JSON string literal (no surrounding quotes).
 * Bytes that are not well-formed UTF-8 are written as \ufffd, so the result is
 * always valid JSON whatever `s` holds. */
int buf_put_json_escaped(buf *b, const char *s);

/* The contents as a C string; never NULL (an empty buf gives "").
 * Borrowed until the next append. */
const char *buf_cstr(const buf *b);

/* Hands the contents to the caller (who frees them with free()) and resets the buf to empty.
 * Never NULL: an empty buf gives a freshly allocated "" (or NULL only if that allocation fails). */
char *buf_detach(buf *b);

#endif
