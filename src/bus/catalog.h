/*
 * catalog.h - the event catalog: every event of f3connect declared once, as data.
 *
 * Event names, publishers, subscribers, bridge translations and payload fields live
 * in the tables of catalog.c; validation, the subscriber fan-out, queue names and the
 * generated docs (docs/events.md, docs/asyncapi.json) are all read from them.
 *
 * Two layers (ARCHITECTURE.md §3):
 *   - cross-service events (BUS_EV_*) travel over durable queues, one queue per
 *     subscribing service and event type, named "<eventType>@<service>";
 *   - internal events (BUS_IEV_*) stay inside one service's in-process emitter.
 * A publisher's bridge turns an internal event into a cross-service one (e.g.
 * printjob.completed -> print-job.completed); a subscriber's bridge re-emits a
 * received event under the internal name the catalog gives for that service.
 *
 * Rule: an event name is never written as a string literal outside this header.
 * Use these macros everywhere (emitter registrations, publishes, tests).
 */
#ifndef F3_BUS_CATALOG_H
#define F3_BUS_CATALOG_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- services ----------------------------------------------------------------------- */

typedef enum bus_service {
    BUS_SVC_GATEWAY,
    BUS_SVC_ORDER,
    BUS_SVC_PRINT,
    BUS_SVC_SHIPPING,
    BUS_SVC_GRIDFLOCK,
    BUS_SERVICE_COUNT
} bus_service;

/* "gateway", "order-service", "print-service", "shipping-service", "gridflock-service";
 * "unknown" for a value outside the enum. Used as the envelope's `source` and in queue names. */
const char *bus_service_name(bus_service s);

/* Parses a service name as above. 0 with *out set, F3_EINVAL if unknown. */
int bus_service_parse(const char *name, bus_service *out);

/* ---- cross-service event types (queue layer) ------------------------------------------ */

#define BUS_EV_ORDER_CREATED                   "order.created"
#define BUS_EV_ORDER_READY_FOR_FULFILLMENT     "order.ready-for-fulfillment"
#define BUS_EV_ORDER_CANCELLED                 "order.cancelled"
#define BUS_EV_PRINT_JOB_COMPLETED             "print-job.completed"
#define BUS_EV_PRINT_JOB_FAILED                "print-job.failed"
#define BUS_EV_PRINT_JOB_STATUS_CHANGED        "print-job.status-changed"
#define BUS_EV_PRINT_JOB_CANCELLED             "print-job.cancelled"
#define BUS_EV_SHIPMENT_CREATED                "shipment.created"
#define BUS_EV_SHIPMENT_STATUS_CHANGED         "shipment.status-changed"
#define BUS_EV_GRIDFLOCK_MAPPING_READY         "gridflock.mapping-ready"
#define BUS_EV_GRIDFLOCK_PIPELINE_FAILED       "gridflock.pipeline-failed"
#define BUS_EV_STOCK_REPLENISHMENT_SCHEDULED   "inventory.stock-replenishment-scheduled"
#define BUS_EV_STOCK_BATCH_COMPLETED           "inventory.stock-batch-completed"
#define BUS_EV_INTEGRATION_SIMPLYPRINT_CHANGED "integration.simplyprint-changed"
#define BUS_EV_INTEGRATION_SENDCLOUD_CHANGED   "integration.sendcloud-changed"

/* ---- internal event names (in-process emitter layer) ----------------------------------
 * Grouped as the services group their constants. One name may be used by several
 * services (e.g. printjob.completed in the print service, where it is raised, and in the
 * order service, where the subscriber bridge re-emits it). */

/* order service: ORDER_EVENTS */
#define BUS_IEV_ORDER_CREATED               "order.created"
#define BUS_IEV_ORDER_STATUS_CHANGED        "order.status_changed"
#define BUS_IEV_ORDER_CANCELLED             "order.cancelled"
#define BUS_IEV_ORDER_READY_FOR_FULFILLMENT "order.ready-for-fulfillment"
#define BUS_IEV_ORDER_FULFILLED             "order.fulfilled"
#define BUS_IEV_ORDER_FAILED                "order.failed"
/* order service: ORCHESTRATION_EVENTS (READY_FOR_FULFILLMENT shares the name above) */
#define BUS_IEV_ORDER_PARTIALLY_COMPLETED "order.partially-completed"
#define BUS_IEV_ORDER_ALL_JOBS_FAILED     "order.all-jobs-failed"
/* order and print services: PRINT_JOB_EVENTS */
#define BUS_IEV_PRINTJOB_CREATED         "printjob.created"
#define BUS_IEV_PRINTJOB_STATUS_CHANGED  "printjob.status-changed"
#define BUS_IEV_PRINTJOB_COMPLETED       "printjob.completed"
#define BUS_IEV_PRINTJOB_FAILED          "printjob.failed"
#define BUS_IEV_PRINTJOB_CANCELLED       "printjob.cancelled"
#define BUS_IEV_PRINTJOB_RETRY_REQUESTED "printjob.retry-requested"
/* order and shipping services: SHIPMENT_EVENTS */
#define BUS_IEV_SHIPMENT_CREATED        "shipment.created"
#define BUS_IEV_SHIPMENT_LABEL_READY    "shipment.label-ready"
#define BUS_IEV_SHIPMENT_FAILED         "shipment.failed"
#define BUS_IEV_SHIPMENT_UPDATED        "shipment.updated"
#define BUS_IEV_SHIPMENT_STATUS_CHANGED "shipment.status-changed" /* order service, re-emitted */
/* FULFILLMENT_EVENTS (order, print and shipping services) */
#define BUS_IEV_FULFILLMENT_CREATED   "fulfillment.created"
#define BUS_IEV_FULFILLMENT_FAILED    "fulfillment.failed"
#define BUS_IEV_FULFILLMENT_RETRYING  "fulfillment.retrying"
#define BUS_IEV_FULFILLMENT_COMPLETED "fulfillment.completed"
/* print service: SIMPLYPRINT_EVENTS */
#define BUS_IEV_SIMPLYPRINT_JOB_STATUS_CHANGED "simplyprint.job-status-changed"
/* shipping service: SENDCLOUD_WEBHOOK_EVENTS */
#define BUS_IEV_SENDCLOUD_SHIPMENT_STATUS_CHANGED "sendcloud.shipment.status_changed"
/* shipping service: ORCHESTRATION_EVENTS */
#define BUS_IEV_ORCHESTRATION_ORDER_READY_FOR_FULFILLMENT                                          \
    "orchestration.order.ready_for_fulfillment"
/* gridflock service (raised by the pipeline); re-emitted in the order service */
#define BUS_IEV_GRIDFLOCK_MAPPING_READY   "gridflock.mapping-ready"
#define BUS_IEV_GRIDFLOCK_PIPELINE_FAILED "gridflock.pipeline-failed"
/* re-emitted by subscriber bridges under their cross-service names */
#define BUS_IEV_STOCK_REPLENISHMENT_SCHEDULED   "inventory.stock-replenishment-scheduled"
#define BUS_IEV_INTEGRATION_SIMPLYPRINT_CHANGED "integration.simplyprint-changed"
#define BUS_IEV_INTEGRATION_SENDCLOUD_CHANGED   "integration.sendcloud-changed"

/* ---- payload fields ------------------------------------------------------------------ */

typedef enum bus_field_type {
    BUS_FIELD_STRING,
    BUS_FIELD_INTEGER, /* JSON integer (no fraction, no exponent) */
    BUS_FIELD_NUMBER,  /* any JSON number */
    BUS_FIELD_BOOLEAN,
    BUS_FIELD_ENUM,   /* a string, one of `choices` */
    BUS_FIELD_ARRAY,  /* an array of objects, each with the fields `items` */
    BUS_FIELD_OBJECT, /* an object with the fields `items` */
} bus_field_type;

typedef struct bus_field bus_field;
struct bus_field {
    const char *name;
    bus_field_type type;
    bool required;              /* must be present */
    bool nullable;              /* JSON null accepted (present or not) */
    const char *doc;            /* one line for the docs */
    const char *const *choices; /* BUS_FIELD_ENUM: NULL-terminated list */
    const bus_field *items;     /* BUS_FIELD_ARRAY / BUS_FIELD_OBJECT: nested fields */
    size_t item_count;
    const char *format;  /* JSON Schema format of a string ("uuid", "date-time"); NULL = none */
    const char *example; /* JSON text of an example value for the docs; NULL = derived */
};

/* "string", "integer", "number", "boolean", "enum", "array", "object". */
const char *bus_field_type_name(bus_field_type t);

/* The envelope fields every cross-service event carries (seed 000's ServiceEvent):
 * eventId, eventType, source, tenantId, timestamp, correlationId. For the docs; the
 * envelope is built and checked by bus/envelope.h. */
extern const bus_field bus_envelope_fields[];
extern const size_t bus_envelope_field_count;

/* ---- cross-service event definitions ---------------------------------------------------- */

#define BUS_MAX_SUBSCRIBERS 4

typedef struct bus_subscriber {
    bus_service service;
    const char *internal_name; /* name the subscriber's bridge re-emits it under */
    const char *handling;      /* what that service does with it, for the docs */
} bus_subscriber;

typedef struct bus_event_def bus_event_def;
struct bus_event_def {
    const char *type; /* BUS_EV_* */
    int version;
    const char *group;   /* "Order", "Print job", ... for the docs */
    const char *summary; /* when it is published */
    bus_service publisher;
    const char *publisher_internal; /* internal name the publisher bridges from; NULL = direct */
    bus_subscriber subscribers[BUS_MAX_SUBSCRIBERS];
    size_t subscriber_count;
    const bus_field *fields; /* the event's own fields (not the envelope) */
    size_t field_count;
};

extern const bus_event_def bus_catalog[];
extern const size_t bus_catalog_count;

/* The definition of a cross-service event type; NULL if unknown (or type is NULL). */
const bus_event_def *bus_catalog_find(const char *type);

/* Publisher bridge lookup: the cross-service event `service` publishes when its internal
 * event `internal_name` is emitted; NULL if that service bridges no such event (direct
 * publishes are not found here). */
const bus_event_def *bus_catalog_find_internal(const char *service, const char *internal_name);

size_t bus_event_subscriber_count(const bus_event_def *d);
/* The i-th subscribing service (i < bus_event_subscriber_count(d)). */
bus_service bus_event_subscriber(const bus_event_def *d, size_t i);
/* The name the i-th subscriber re-emits the event under in its own emitter; NULL if i is
 * out of range. */
const char *bus_event_subscriber_internal_name(const bus_event_def *d, size_t i);
/* Index of `service` among d's subscribers, or -1 if it does not subscribe. */
int bus_event_subscriber_index(const bus_event_def *d, bus_service service);

/* Writes the queue name "<eventType>@<service>" into out. 0, F3_EINVAL for an empty
 * type, a type containing '@' or an unknown service, F3_ETOOBIG if out is too small. */
int bus_queue_name(const char *event_type, bus_service subscriber, char *out, size_t out_size);

/* True when queue is "<eventType>@<service>" of a subscriber in the catalog. */
bool bus_catalog_has_queue(const char *queue);

/* Checks the event's own fields in `event` (a whole event object; envelope fields are not
 * looked at): required fields present, types right, enum values among the choices, null
 * only where nullable, array items checked field by field. Unknown fields are tolerated.
 * 0, or F3_EINVAL with a message naming the event and the field path:
 *   "order.created: field 'lineItems[1].quantity' must be an integer" */
int bus_catalog_validate_payload(const bus_event_def *d, const json_t *event, err *e);

/* ---- internal events -------------------------------------------------------------------- */

typedef struct bus_internal_event_def {
    const char *name; /* BUS_IEV_* */
    bus_service service;
    const char *group;   /* the constant group it belongs to, e.g. "ORDER_EVENTS" */
    const char *summary; /* who raises it and who listens, for the docs */
} bus_internal_event_def;

extern const bus_internal_event_def bus_internal_events[];
extern const size_t bus_internal_event_count;

/* The internal event `name` of `service`; NULL if that service declares no such event. */
const bus_internal_event_def *bus_internal_event_find(bus_service service, const char *name);

#endif
