/*
 * bus.h - the event bus as services use it: publish catalog events, subscribe to them,
 * bridge them to and from a service's in-process emitter.
 *
 * A bus serves one service (`self`). Publishing builds the envelope from the catalog
 * (bus/envelope.h), rejects a payload the catalog rejects, and adds one job per
 * subscribing service to the queue "<eventType>@<service>", with the eventId as job id
 * (so a re-sent event is not enqueued twice), inside the caller's transaction: the
 * state change and the events it causes commit together or not at all (ARCHITECTURE.md
 * §3, transactional outbox). Subscribing registers the service's own queue for an event
 * with the worker runtime (bus/worker.h), with exactly-once effects through the inbox
 * under the service's name; received events are parsed and checked against the catalog
 * before any handler runs, and one that fails is dead-lettered at once with the reason.
 *
 * Handlers are bus_handler (worker.h): they get the parsed envelope with
 * bus_delivery_envelope() and write through bus_delivery_tx() - after any slow
 * external I/O, never before (worker.h explains why).
 *
 * Generic queues of internal jobs (repeatable reconciliation jobs, ...) are registered
 * on bus_worker_of(b) directly, before bus_start. This file must not hold business
 * logic of any service.
 */
#ifndef F3_BUS_BUS_H
#define F3_BUS_BUS_H

#include "bus/catalog.h"
#include "bus/emitter.h"
#include "bus/envelope.h"
#include "bus/queue.h"
#include "bus/worker.h"
#include "core/err.h"
#include "core/uuid.h"
#include "db/db.h"

#include <jansson.h>
#include <stdint.h>

typedef struct bus bus;

/* Options of one subscription. Zero-initialised means the defaults. */
typedef struct bus_sub_opts {
    int concurrency;  /* handlers at once on this instance; 0 = BUS_DEFAULT_CONCURRENCY */
    int64_t lease_ms; /* 0 = BUS_DEFAULT_LEASE_MS */
} bus_sub_opts;

/* A bus for service `self` over database d and store s (both borrowed; they must outlive
 * the bus). NULL on error. Caller frees with bus_free(). */
bus *bus_new(db *d, bus_store *s, bus_service self, err *e);

/* As bus_new, with options for its worker (wo may be NULL). */
bus *bus_new_with(db *d, bus_store *s, bus_service self, const bus_worker_opts *wo, err *e);

/* Drains the worker without a bound (if started) and frees the bus. NULL is ignored. */
void bus_free(bus *b);

/* The service this bus serves. */
bus_service bus_self(const bus *b);

/* The worker that runs this bus's subscriptions; register generic queues on it before
 * bus_start. Borrowed. */
bus_worker *bus_worker_of(bus *b);

/* Publishes event_type (a BUS_EV_* constant this service publishes per the catalog)
 * for tenant_id with the event's own fields (an object, borrowed; envelope fields are
 * not allowed in it). tx: the caller's open transaction, or NULL for a short one of the
 * bus's own, which concurrent publishers share (group commit: one durable commit for
 * many publishes; the call still returns only once its event is durable, and a failure
 * is reported to its own caller only). On SQLite, when the calling thread's connection
 * already has a transaction open, the publish joins it. The correlation id is the
 * thread's log correlation id. *event_id_out (may be NULL; at least UUID_STR_LEN bytes)
 * receives the eventId. Returns 0; F3_EINVAL for an unknown type, a type this service
 * does not publish, or a payload the catalog rejects (nothing enqueued); a db error code
 * otherwise. */
int bus_publish(bus *b, db_conn *tx, const char *event_type, const char *tenant_id,
                const json_t *fields, err *e);
int bus_publish_id(bus *b, db_conn *tx, const char *event_type, const char *tenant_id,
                   const json_t *fields, char *event_id_out, err *e);

/* Enqueues an already built event (JSON text of a whole envelope, e.g. re-sent by an
 * outbox relay or replayed by an operator) to every subscriber queue of its type, with its
 * eventId as job id: an event already enqueued is not added again. tx as for bus_publish.
 * *added (may be NULL) = jobs actually added. F3_EINVAL if the text is not a valid event. */
int bus_publish_envelope(bus *b, db_conn *tx, const char *event_json, int *added, err *e);

/* Subscribes this service to event_type: registers the queue "<eventType>@<self>" with fn.
 * F3_EINVAL if the type is unknown, this service is not one of its subscribers per the
 * catalog, it is subscribed already, or the bus has started. ctx is borrowed. o may be
 * NULL. */
int bus_subscribe(bus *b, const char *event_type, bus_handler fn, void *ctx, const bus_sub_opts *o,
                  err *e);

/* The parsed, catalog-checked event of a delivery on a subscription queue; NULL on a
 * generic queue. Borrowed for the duration of the handler. */
const bus_envelope *bus_delivery_envelope(const bus_delivery *dl);

/* Publisher bridge: for every cross-service event this service publishes from an
 * internal event (catalog publisher_internal), listens for that internal name on em
 * and publishes the cross-service event (e.g. print service: printjob.completed ->
 * print-job.completed). The emitted payload is an object with the event's own fields
 * and "tenantId" (any other envelope field in it is ignored); it is published in the
 * bus's own short transaction, or joins the emitting thread's open transaction on
 * SQLite (see bus_publish). em is borrowed and must outlive the bus. */
int bus_bridge_publisher(bus *b, bus_emitter *em, err *e);

/* Subscriber bridge: subscribes to event_type and re-emits every received event on em
 * under this service's internal name for it (catalog subscriber internal_name, e.g.
 * order.ready-for-fulfillment -> orchestration.order.ready_for_fulfillment in the
 * shipping service), with the whole event object (envelope fields included) as payload.
 * If any listener fails the job fails (and is retried): listeners must be idempotent. */
int bus_subscribe_bridge(bus *b, bus_emitter *em, const char *event_type, const bus_sub_opts *o,
                         err *e);

/* Starts consuming (F3_EINVAL if nothing is subscribed or registered). */
int bus_start(bus *b, err *e);

/* bus_worker_drain of the bus's worker. */
int bus_drain(bus *b, int timeout_ms);

#endif
