/*
 * str.h - small helpers over NUL-terminated C strings.
 *
 * Only what many modules need: copying, NULL-safe comparison, prefix/suffix
 * tests, trimming and strict number/boolean parsing. Text that is assembled
 * piece by piece belongs in a buf (core/buf.h), not here.
 */
#ifndef F3_CORE_STR_H
#define F3_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A copy of s; NULL if s is NULL or memory ran out. Caller frees with free(). */
char *str_dup(const char *s);

/* A copy of at most n bytes of s, always NUL-terminated; NULL if s is NULL or
 * memory ran out. Caller frees with free(). */
char *str_ndup(const char *s, size_t n);

/* Equality that accepts NULL: two NULLs are equal, NULL and a string are not. */
bool str_eq(const char *a, const char *b);

/* Like str_eq, ignoring ASCII case. */
bool str_case_eq(const char *a, const char *b);

/* True if s begins / ends with the given text; false if either is NULL. */
bool str_starts_with(const char *s, const char *prefix);
bool str_ends_with(const char *s, const char *suffix);

/* Removes leading and trailing ASCII whitespace in place (the text is moved to
 * the start of s, so s can still be freed). Returns s; NULL stays NULL. */
char *str_trim(char *s);

/* Lowercases ASCII letters in place. Returns s; NULL stays NULL. */
char *str_lower(char *s);

/* Length of the well-formed UTF-8 sequence s starts with (1-4 bytes; overlong forms,
 * surrogates and code points past U+10FFFF are not well-formed), or 0 when it does not
 * start one (or is empty). */
size_t str_utf8_seq_len(const char *s);

/* True when all of s is well-formed UTF-8 (NULL is not). */
bool str_is_utf8(const char *s);

/* Copies s into out (size bytes, always NUL-terminated when size > 0) as valid UTF-8:
 * a byte that does not start or continue a well-formed sequence becomes '?', and a
 * sequence that does not fit whole is left out, so the copy can go into JSON. Returns
 * true when all of s fitted (with no replacement or cut), false when it was shortened
 * or changed. NULL s copies as "". */
bool str_utf8_copy(char *out, size_t size, const char *s);

/* Parses the whole of s as a decimal int64 with an optional sign: no spaces,
 * no trailing text, no overflow. 0 on success (*out set), -1 otherwise (*out untouched). */
int str_to_int64(const char *s, int64_t *out);

/* Parses true/false, 1/0, yes/no, on/off (any case; nothing else).
 * 0 on success (*out set), -1 otherwise (*out untouched). */
int str_to_bool(const char *s, bool *out);

#endif
