/*
 * uuid.h - UUID v4 (random) and v7 (time-ordered) as canonical lowercase text.
 *
 * Ids in f3connect are UUID strings. v7 is used where insertion order matters
 * (job ids, event log rows) because it sorts by creation time.
 */
#ifndef F3_CORE_UUID_H
#define F3_CORE_UUID_H

#include <stdbool.h>

#define UUID_STR_LEN 37 /* 36 chars + NUL */

/* Writes a random (v4) UUID. */
void uuid_v4(char out[UUID_STR_LEN]);

/* Writes a time-ordered (v7) UUID; ids from one process are strictly increasing. */
void uuid_v7(char out[UUID_STR_LEN]);

/* True if s is a canonical 8-4-4-4-12 hex UUID (either case). */
bool uuid_valid(const char *s);

#endif
