/*
 * envelope.h - the envelope of a cross-service event (seed 000's ServiceEvent).
 *
 * An event on a queue is one JSON object: the envelope fields
 *     eventId (UUID v4), eventType, source (publishing service), tenantId,
 *     timestamp (ISO-8601 UTC, ms), correlationId (optional)
 * followed by the event's own fields at the top level, as the catalog declares them.
 * Building fills in the envelope and checks the whole against the catalog; parsing
 * checks a received text the same way. Unknown fields are tolerated on both sides, so
 * a newer publisher can add fields without breaking older consumers.
 */
#ifndef F3_BUS_ENVELOPE_H
#define F3_BUS_ENVELOPE_H

#include "bus/catalog.h"
#include "core/err.h"

#include <jansson.h>
#include <stddef.h>

/* Builds a complete event of type d published by `source`: a new eventId, the current
 * time, tenant_id, the correlation id, then a deep copy of `fields` (an object holding
 * the event's own fields; borrowed, not changed). correlation_id NULL means the calling
 * thread's log correlation id (log_get_correlation_id), left out when there is none.
 * 0 with *out set (caller frees with json_decref), or F3_EINVAL with e naming the problem:
 * a NULL def, `source` other than the event's publisher, an empty tenant id, `fields`
 * not an object or holding an envelope field, or a payload the catalog rejects. */
int bus_envelope_build(const bus_event_def *d, bus_service source, const char *tenant_id,
                       const char *correlation_id, const json_t *fields, json_t **out, err *e);

/* A parsed event. Every pointer is borrowed from root and lives until
 * bus_envelope_release(); correlation_id is NULL when the event has none. */
typedef struct bus_envelope {
    const char *event_id, *event_type, *source, *tenant_id, *timestamp, *correlation_id;
    const bus_event_def *def;
    json_t *root; /* the whole event object, owned by the envelope */
} bus_envelope;

/* Parses len bytes of event text and checks it: a JSON object; eventId a UUID;
 * eventType a catalog event; source a known service; tenantId a non-empty string;
 * timestamp an ISO-8601 date-time; correlationId, when present, a string; the payload
 * valid per the catalog. Unknown fields are tolerated.
 * 0 with *out filled (release with bus_envelope_release), or F3_EINVAL with e naming
 * the field; on error *out is zeroed and owns nothing. */
int bus_envelope_parse(const char *text, size_t len, bus_envelope *out, err *e);

/* Frees what a successful parse holds and zeroes env; a zeroed env or NULL is ignored. */
void bus_envelope_release(bus_envelope *env);

#endif
