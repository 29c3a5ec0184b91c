/*
 * emitter.h - the in-process event emitter: internal events within one service.
 *
 * Synchronous: bus_emitter_emit() calls every listener of the event, in the order they
 * were registered, on the caller's thread, and returns when all have run. A failing
 * listener is logged and does not stop the others (nor crash the emitter).
 *
 * Event names must come from the constants of bus/catalog.h (BUS_IEV_* for internal
 * events), never string literals. Names the catalog does not list for a service are
 * accepted, since the emitter does not know which service it serves, but they would be
 * invisible in the generated event catalog.
 *
 * Thread-safe: listeners may be registered while other threads emit; a listener may
 * itself emit (nested emits) or register listeners. Listeners cannot be removed; they
 * live as long as the emitter.
 */
#ifndef F3_BUS_EMITTER_H
#define F3_BUS_EMITTER_H

#include "core/err.h"

#include <jansson.h>

typedef struct bus_emitter bus_emitter;

/* A listener: `event` is the emitted name, `payload` is borrowed for the call (NULL if the
 * emitter was given none), ctx is what was registered. Returns 0, or < 0 with e filled
 * to report a failure. */
typedef int (*bus_listener)(const char *event, const json_t *payload, void *ctx, err *e);

/* A new emitter with no listeners; NULL if out of memory. Free with bus_emitter_free(). */
bus_emitter *bus_emitter_new(void);

/* Frees the emitter and its registrations (not the listeners' ctx). No emit may be running.
 * NULL is ignored. */
void bus_emitter_free(bus_emitter *em);

/* Registers fn (with ctx) for `event`, after the listeners already registered for it.
 * The same fn may be registered more than once; it is then called once per registration.
 * 0, F3_EINVAL (NULL emitter, event or fn; empty event name), or F3_ENOMEM. */
int bus_emitter_on(bus_emitter *em, const char *event, bus_listener fn, void *ctx);

/* Calls every listener of `event` with payload, in registration order. A listener that
 * returns < 0 is logged (event, its index among the event's listeners, its message) and the
 * rest still run. Listeners registered during the emit may or may not be called by it.
 * Returns the number of listeners that failed (0 when there are none), or F3_EINVAL for a
 * NULL emitter or event. */
int bus_emitter_emit(bus_emitter *em, const char *event, const json_t *payload);

/* Number of listeners registered for `event` (0 for a NULL emitter or event). */
size_t bus_emitter_listener_count(bus_emitter *em, const char *event);

#endif
