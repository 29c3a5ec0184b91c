/*
 * json.h - validated reading, strict parsing and compact writing of JSON (jansson).
 *
 * External input (webhook payloads, request bodies, queue payloads) is read
 * through these getters so that every rejection says which field was wrong:
 *     "field 'shipping_address.city' is missing"
 *     "field 'line_items' must be an array"
 * A field is named by a dotted path through nested objects ("customer.email");
 * keys that themselves contain a dot cannot be reached this way. Arrays are not
 * indexed by path: get the array and walk it.
 *
 * json_get_* require the field; json_opt_* accept its absence and then store the
 * caller's default. For both, a JSON null part-way along the path counts as
 * absence of everything below it. At the end of the path, null is absence for
 * json_opt_* and a wrong type for json_get_* (a required value must be there).
 * Wrong types are rejected by both. All getters return 0 or F3_EINVAL (with e
 * filled) and leave *out untouched on error. Returned pointers are borrowed from
 * the document and live as long as it does.
 */
#ifndef F3_CORE_JSON_H
#define F3_CORE_JSON_H

#include "core/buf.h"
#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int json_get_string(const json_t *obj, const char *field, const char **out, err *e);

/* Integers only: 3.0 and 1e3 are reals and are rejected. The parser already
 * rejects integers outside int64 ("too big integer"). */
int json_get_int(const json_t *obj, const char *field, int64_t *out, err *e);
int json_get_bool(const json_t *obj, const char *field, bool *out, err *e);
int json_get_object(const json_t *obj, const char *field, json_t **out, err *e);
int json_get_array(const json_t *obj, const char *field, json_t **out, err *e);

/* As above, but an absent (or null) field stores `def` in *out and returns 0. */
int json_opt_string(const json_t *obj, const char *field, const char **out, const char *def,
                    err *e);
int json_opt_int(const json_t *obj, const char *field, int64_t *out, int64_t def, err *e);
int json_opt_bool(const json_t *obj, const char *field, bool *out, bool def, err *e);
int json_opt_object(const json_t *obj, const char *field, json_t **out, json_t *def, err *e);
int json_opt_array(const json_t *obj, const char *field, json_t **out, json_t *def, err *e);

/* Parses len bytes of text as one JSON value of any kind (object, array, string,
 * number, true/false/null). Rejects duplicate object keys, \u0000 inside strings
 * and trailing text. 0 with *out set (caller frees with json_decref), or F3_EINVAL
 * with a message giving line and column ("invalid JSON at line 3, column 7: ...").
 * NUL-free text can be given as (s, strlen(s)). */
int json_parse(const char *text, size_t len, json_t **out, err *e);

/* Appends v as compact JSON (no spaces, object keys in insertion order) to out.
 * 0, F3_ETOOBIG when out's cap is reached, F3_ENOMEM, or F3_EINVAL for a NULL v
 * (or one jansson cannot encode);
 * on error out is left as it was. */
int json_dump_buf(const json_t *v, buf *out);

#endif
