/*
 * catalog_doc.c - the human event catalog (markdown) and the AsyncAPI document,
 * both generated from the catalog tables.
 *
 * Everything written here comes from bus_catalog, bus_internal_events,
 * bus_envelope_fields and the queue defaults of bus/queue.h, in table order, so the
 * output is the same on every run. This file must not describe an event the tables do
 * not declare, nor carry its own copy of any event's facts.
 */
#include "bus/catalog_doc.h"

#include "bus/queue.h"

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#define DOC_REGEN_HINT "scripts/update-docs.sh"

/* ---- examples ------------------------------------------------------------------------ */

static json_t *fields_example(const bus_field *fields, size_t n);

static json_t *field_example(const bus_field *f)
{
    if (f->example)
        return json_loads(f->example, JSON_DECODE_ANY, NULL);
    switch (f->type) {
    case BUS_FIELD_STRING:
        return json_string("text");
    case BUS_FIELD_INTEGER:
        return json_integer(1);
    case BUS_FIELD_NUMBER:
        return json_real(1.5);
    case BUS_FIELD_BOOLEAN:
        return json_true();
    case BUS_FIELD_ENUM:
        return json_string(f->choices && f->choices[0] ? f->choices[0] : "");
    case BUS_FIELD_ARRAY: {
        json_t *arr = json_array();
        if (arr && json_array_append_new(arr, fields_example(f->items, f->item_count)) != 0) {
            json_decref(arr);
            return NULL;
        }
        return arr;
    }
    case BUS_FIELD_OBJECT:
        return fields_example(f->items, f->item_count);
    }
    return NULL;
}

static json_t *fields_example(const bus_field *fields, size_t n)
{
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < n; i++)
        if (json_object_set_new(obj, fields[i].name, field_example(&fields[i])) != 0) {
            json_decref(obj);
            obj = NULL;
        }
    return obj;
}

int bus_catalog_example(const bus_event_def *d, json_t **out)
{
    if (!d)
        return F3_EINVAL;
    json_t *ev = json_object();
    for (size_t i = 0; ev && i < bus_envelope_field_count; i++) {
        const bus_field *f = &bus_envelope_fields[i];
        json_t *v;
        if (strcmp(f->name, "eventType") == 0)
            v = json_string(d->type);
        else if (strcmp(f->name, "source") == 0)
            v = json_string(bus_service_name(d->publisher));
        else
            v = field_example(f);
        if (json_object_set_new(ev, f->name, v) != 0) {
            json_decref(ev);
            ev = NULL;
        }
    }
    json_t *fields = ev ? fields_example(d->fields, d->field_count) : NULL;
    if (!fields || json_object_update(ev, fields) != 0) {
        json_decref(fields);
        json_decref(ev);
        return F3_ENOMEM;
    }
    json_decref(fields);
    *out = ev;
    return 0;
}

/* ---- output helpers -------------------------------------------------------------------- */

typedef struct doc {
    buf *out;
    int rc; /* first error; later writes are skipped */
} doc;

static void put(doc *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(doc *m, const char *fmt, ...)
{
    if (m->rc)
        return;
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(m->out, fmt, ap);
    va_end(ap);
    if (rc == BUF_ERR_FULL)
        m->rc = F3_ETOOBIG;
    else if (rc < 0)
        m->rc = F3_ENOMEM;
}

static int dump_cb(const char *data, size_t size, void *arg)
{
    doc *m = arg;
    int rc = buf_append(m->out, data, size);
    if (rc == BUF_ERR_FULL)
        m->rc = F3_ETOOBIG;
    else if (rc < 0)
        m->rc = F3_ENOMEM;
    return rc ? -1 : 0;
}

/* Pretty JSON (2-space indent, insertion order). A NULL v means a constructor ran out of
 * memory on the way. */
static void put_json(doc *m, const json_t *v)
{
    if (m->rc)
        return;
    if (!v) {
        m->rc = F3_ENOMEM;
        return;
    }
    if (json_dump_callback(v, dump_cb, m, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 && !m->rc)
        m->rc = F3_ENOMEM;
}

/* ---- markdown --------------------------------------------------------------------------- */

static void md_type(doc *m, const bus_field *f)
{
    if (f->type == BUS_FIELD_ENUM) {
        put(m, "enum:");
        for (size_t i = 0; f->choices && f->choices[i]; i++)
            put(m, "%s `%s`", i ? "," : "", f->choices[i]);
    } else if (f->type == BUS_FIELD_ARRAY) {
        put(m, "array of objects");
    } else {
        put(m, "%s", bus_field_type_name(f->type));
    }
    if (f->format)
        put(m, " (%s)", f->format);
    if (f->nullable)
        put(m, " or null");
}

static void md_field_rows(doc *m, const bus_field *fields, size_t n, const char *prefix)
{
    for (size_t i = 0; i < n; i++) {
        const bus_field *f = &fields[i];
        put(m, "| `%s%s` | ", prefix, f->name);
        md_type(m, f);
        put(m, " | %s | %s |\n", f->required ? "yes" : "no", f->doc);
        if (f->type == BUS_FIELD_ARRAY || f->type == BUS_FIELD_OBJECT) {
            buf sub;
            buf_init(&sub, 256);
            if (buf_printf(&sub, "%s%s%s.", prefix, f->name,
                           f->type == BUS_FIELD_ARRAY ? "[]" : "") != 0)
                m->rc = m->rc ? m->rc : F3_ENOMEM;
            md_field_rows(m, f->items, f->item_count, buf_cstr(&sub));
            buf_free(&sub);
        }
    }
}

static void md_field_table(doc *m, const bus_field *fields, size_t n)
{
    put(m, "| Field | Type | Required | Description |\n|---|---|---|---|\n");
    md_field_rows(m, fields, n, "");
}

static void md_publisher(doc *m, const bus_event_def *d)
{
    put(m, "%s, ", bus_service_name(d->publisher));
    if (d->publisher_internal)
        put(m, "bridged from its internal event `%s`", d->publisher_internal);
    else
        put(m, "direct publish (no internal event)");
}

static void md_intro(doc *m)
{
    put(m, "# f3connect event catalog\n\n"
           "<!-- Generated from src/bus/catalog.c by `f3connect events catalog --format markdown`."
           " Do not edit; run " DOC_REGEN_HINT ". -->\n\n"
           "Every event of f3connect, cross-service and internal. The tables in "
           "`src/bus/catalog.c` are the single source: constants, payload validation, the "
           "subscriber fan-out, this page and `docs/asyncapi.json` all come from them.\n\n");
    put(m,
        "## Architecture\n\n"
        "| Layer | Transport | Scope |\n|---|---|---|\n"
        "| Cross-service | durable queues: tables in the SQLite file (embedded mode) or in "
        "PostgreSQL, or Redis in BullMQ's data layout | between services |\n"
        "| Internal | in-process emitter, synchronous; a failing listener is logged and the "
        "others still run | within one service |\n\n"
        "Two bridges in each service connect the layers:\n\n"
        "- the **publisher bridge** listens to internal events and publishes the matching "
        "cross-service event (names are translated as listed below); a few events are "
        "published directly, with no internal event;\n"
        "- the **subscriber bridge** consumes the service's queues and re-emits each event "
        "in the service's emitter under the internal name the catalog gives.\n\n"
        "**Fan-out.** Workers on one queue compete for its jobs, so every subscribing service "
        "has its own queue per event type, named `<eventType>@<service>` (for example "
        "`%s@%s`), and a publish enqueues one copy into each subscriber's queue.\n\n"
        "A state change and the events it causes are committed in one database transaction "
        "(transactional outbox), and consumers record handled `eventId`s in the same "
        "transaction as their writes, so a redelivered event has no second effect.\n\n",
        bus_catalog[0].type, bus_service_name(bus_catalog[0].subscribers[0].service));
}

static void md_guarantees(doc *m)
{
    put(m, "## Delivery guarantees\n\n"
           "Defaults for every queue (configurable per queue).\n\n"
           "| Property | Value |\n|---|---|\n"
           "| Delivery | at-least-once; handlers are idempotent (deduplicate on `eventId`) |\n"
           "| Ordering | FIFO per queue; no ordering across queues |\n"
           "| Queues | one per subscribing service and event type: `<eventType>@<service>` |\n");
    put(m, "| Attempts | %d, exponential backoff:", BUS_DEFAULT_ATTEMPTS);
    for (int i = 0; i < BUS_DEFAULT_ATTEMPTS; i++)
        put(m, "%s %d s", i ? "," : "", (BUS_DEFAULT_BACKOFF_MS << i) / 1000);
    put(m, " |\n| Concurrency | %d per queue per service instance |\n", BUS_DEFAULT_CONCURRENCY);
    put(m,
        "| Dead letter | failed jobs kept (newest %d), each alerted to the operator "
        "(`EVENT_DEAD_LETTERED`); retry or remove them with `f3connect queues` or "
        "`/admin/queues` |\n"
        "| Completed jobs | newest %d kept |\n\n",
        BUS_DEFAULT_KEEP_FAILED, BUS_DEFAULT_KEEP_COMPLETED);
}

static void md_envelope(doc *m)
{
    put(m, "## Envelope\n\n"
           "Every cross-service event is one JSON object: these fields, then the event's own "
           "fields at the top level. Consumers tolerate fields they do not know.\n\n");
    md_field_table(m, bus_envelope_fields, bus_envelope_field_count);
    put(m, "\n");
}

static void md_translation(doc *m)
{
    put(m, "## Name translation\n\n"
           "| Publisher's internal event | Cross-service event | Publisher | Subscriber: "
           "re-emitted as |\n|---|---|---|---|\n");
    for (size_t i = 0; i < bus_catalog_count; i++) {
        const bus_event_def *d = &bus_catalog[i];
        if (d->publisher_internal)
            put(m, "| `%s` ", d->publisher_internal);
        else
            put(m, "| (direct publish) ");
        put(m, "| `%s` | %s | ", d->type, bus_service_name(d->publisher));
        if (d->subscriber_count == 0)
            put(m, "(none: informational)");
        for (size_t s = 0; s < d->subscriber_count; s++)
            put(m, "%s%s: `%s`", s ? "; " : "", bus_service_name(d->subscribers[s].service),
                bus_event_subscriber_internal_name(d, s));
        put(m, " |\n");
    }
    put(m, "\n");
}

static void md_queues(doc *m)
{
    put(m, "## Queues\n\n| Queue | Event | Publisher | Subscriber |\n|---|---|---|---|\n");
    for (size_t i = 0; i < bus_catalog_count; i++) {
        const bus_event_def *d = &bus_catalog[i];
        for (size_t s = 0; s < d->subscriber_count; s++) {
            char q[BUS_QUEUE_NAME_MAX];
            if (bus_queue_name(d->type, d->subscribers[s].service, q, sizeof q) != 0)
                continue;
            put(m, "| `%s` | `%s` | %s | %s |\n", q, d->type, bus_service_name(d->publisher),
                bus_service_name(d->subscribers[s].service));
        }
    }
    put(m, "\n");
}

static void md_event(doc *m, const bus_event_def *d)
{
    put(m, "### %s\n\n%s\n\n", d->type, d->summary);
    put(m, "- **Version:** %d\n- **Group:** %s\n- **Publisher:** ", d->version, d->group);
    md_publisher(m, d);
    put(m, "\n");
    if (d->subscriber_count == 0) {
        put(m, "- **Subscribers:** none (informational: monitoring and logging)\n\n");
    } else {
        put(m, "- **Subscribers:**\n\n| Service | Queue | Re-emitted as | Handling |\n"
               "|---|---|---|---|\n");
        for (size_t s = 0; s < d->subscriber_count; s++) {
            char q[BUS_QUEUE_NAME_MAX];
            if (bus_queue_name(d->type, d->subscribers[s].service, q, sizeof q) != 0)
                continue;
            put(m, "| %s | `%s` | `%s` | %s |\n", bus_service_name(d->subscribers[s].service), q,
                bus_event_subscriber_internal_name(d, s), d->subscribers[s].handling);
        }
        put(m, "\n");
    }
    put(m, "Fields (besides the envelope):\n\n");
    md_field_table(m, d->fields, d->field_count);
    put(m, "\nExample:\n\n```json\n");
    json_t *ex = NULL;
    if (bus_catalog_example(d, &ex) != 0 && !m->rc)
        m->rc = F3_ENOMEM;
    put_json(m, ex);
    json_decref(ex);
    put(m, "\n```\n\n");
}

static void md_events(doc *m)
{
    put(m, "## Cross-service events\n\n| Event | Publisher | Subscribers | Summary |\n"
           "|---|---|---|---|\n");
    for (size_t i = 0; i < bus_catalog_count; i++) {
        const bus_event_def *d = &bus_catalog[i];
        put(m, "| `%s` | %s | ", d->type, bus_service_name(d->publisher));
        for (size_t s = 0; s < d->subscriber_count; s++)
            put(m, "%s%s", s ? ", " : "", bus_service_name(d->subscribers[s].service));
        if (d->subscriber_count == 0)
            put(m, "none");
        put(m, " | %s |\n", d->summary);
    }
    put(m, "\n");
    for (size_t i = 0; i < bus_catalog_count; i++)
        md_event(m, &bus_catalog[i]);
}

/* How an internal event meets the queue layer in its service: "-> x" when the publisher
 * bridge publishes x from it, "<- y" for each event the subscriber bridge re-emits as it. */
static void md_internal_bridge(doc *m, const bus_internal_event_def *iev)
{
    bool any = false;
    const bus_event_def *pub = bus_catalog_find_internal(bus_service_name(iev->service), iev->name);
    if (pub) {
        put(m, "publishes `%s`", pub->type);
        any = true;
    }
    for (size_t i = 0; i < bus_catalog_count; i++) {
        const bus_event_def *d = &bus_catalog[i];
        int s = bus_event_subscriber_index(d, iev->service);
        if (s >= 0 && strcmp(bus_event_subscriber_internal_name(d, (size_t)s), iev->name) == 0) {
            put(m, "%sre-emitted from `%s`", any ? "; " : "", d->type);
            any = true;
        }
    }
    if (!any)
        put(m, "internal only");
}

static void md_internal(doc *m)
{
    put(m, "## Internal events\n\n"
           "These stay inside one service's emitter and never travel over a queue. Listen to "
           "and emit them only through the `BUS_IEV_*` constants of `src/bus/catalog.h`.\n\n");
    for (int svc = 0; svc < BUS_SERVICE_COUNT; svc++) {
        put(m, "### %s\n\n", bus_service_name((bus_service)svc));
        size_t n = 0;
        for (size_t i = 0; i < bus_internal_event_count; i++)
            if (bus_internal_events[i].service == (bus_service)svc)
                n++;
        if (n == 0) {
            put(m,
                "No internal events. The %s publishes and consumes no events; it shows the "
                "queues at `/admin/queues`.\n\n",
                bus_service_name((bus_service)svc));
            continue;
        }
        put(m, "| Event | Group | Queue layer | Description |\n|---|---|---|---|\n");
        for (size_t i = 0; i < bus_internal_event_count; i++) {
            const bus_internal_event_def *iev = &bus_internal_events[i];
            if (iev->service != (bus_service)svc)
                continue;
            put(m, "| `%s` | %s | ", iev->name, iev->group);
            md_internal_bridge(m, iev);
            put(m, " | %s |\n", iev->summary);
        }
        put(m, "\n");
    }
}

int bus_catalog_markdown(buf *out)
{
    doc m = {out, 0};
    md_intro(&m);
    md_guarantees(&m);
    md_envelope(&m);
    md_translation(&m);
    md_queues(&m);
    md_events(&m);
    md_internal(&m);
    return m.rc;
}

/* ---- AsyncAPI ---------------------------------------------------------------------------- */

/* Sets key to v, stealing v even on failure (jansson frees it then); records a failure,
 * including a NULL obj or v from an earlier allocation failure, in *ok. */
static void set(json_t *obj, const char *key, json_t *v, bool *ok)
{
    if (json_object_set_new(obj, key, v) != 0)
        *ok = false;
}

static void append(json_t *arr, json_t *v, bool *ok)
{
    if (json_array_append_new(arr, v) != 0)
        *ok = false;
}

static json_t *object_schema(const bus_field *fields, size_t n, bool *ok);

static const char *json_type_name(bus_field_type t)
{
    switch (t) {
    case BUS_FIELD_ENUM:
        return "string";
    default:
        return bus_field_type_name(t);
    }
}

static json_t *field_schema(const bus_field *f, const char *const_value, bool *ok)
{
    json_t *s;
    if (f->type == BUS_FIELD_OBJECT)
        s = object_schema(f->items, f->item_count, ok);
    else
        s = json_object();
    if (f->type != BUS_FIELD_OBJECT) {
        if (f->nullable) {
            json_t *types = json_array();
            append(types, json_string(json_type_name(f->type)), ok);
            append(types, json_string("null"), ok);
            set(s, "type", types, ok);
        } else {
            set(s, "type", json_string(json_type_name(f->type)), ok);
        }
    }
    set(s, "description", json_string(f->doc), ok);
    if (f->format)
        set(s, "format", json_string(f->format), ok);
    if (const_value)
        set(s, "const", json_string(const_value), ok);
    if (f->type == BUS_FIELD_ENUM && !const_value) {
        json_t *choices = json_array();
        for (size_t i = 0; f->choices && f->choices[i]; i++)
            append(choices, json_string(f->choices[i]), ok);
        if (f->nullable)
            append(choices, json_null(), ok);
        set(s, "enum", choices, ok);
    }
    if (f->type == BUS_FIELD_ARRAY)
        set(s, "items", object_schema(f->items, f->item_count, ok), ok);
    return s;
}

static void add_properties(json_t *props, json_t *required, const bus_field *fields, size_t n,
                           const bus_event_def *d, bool *ok)
{
    for (size_t i = 0; i < n; i++) {
        const bus_field *f = &fields[i];
        const char *const_value = NULL;
        if (d && strcmp(f->name, "eventType") == 0)
            const_value = d->type;
        set(props, f->name, field_schema(f, const_value, ok), ok);
        if (f->required)
            append(required, json_string(f->name), ok);
    }
}

static json_t *object_schema(const bus_field *fields, size_t n, bool *ok)
{
    json_t *s = json_object(), *required = json_array(), *props = json_object();
    add_properties(props, required, fields, n, NULL, ok);
    set(s, "type", json_string("object"), ok);
    set(s, "required", required, ok);
    set(s, "properties", props, ok);
    set(s, "additionalProperties", json_true(), ok);
    return s;
}

/* The whole event: envelope fields then the event's own, one flat object. */
static json_t *event_schema(const bus_event_def *d, bool *ok)
{
    json_t *s = json_object(), *required = json_array(), *props = json_object();
    add_properties(props, required, bus_envelope_fields, bus_envelope_field_count, d, ok);
    add_properties(props, required, d->fields, d->field_count, NULL, ok);
    set(s, "title", json_string(d->type), ok);
    set(s, "type", json_string("object"), ok);
    set(s, "required", required, ok);
    set(s, "properties", props, ok);
    set(s, "additionalProperties", json_true(), ok);
    return s;
}

static json_t *tags_of(const char *name, bool *ok)
{
    json_t *tags = json_array(), *tag = json_object();
    set(tag, "name", json_string(name), ok);
    append(tags, tag, ok);
    return tags;
}

/* {"$ref": <the strings given, concatenated>}; the list ends with NULL. */
static json_t *ref_to(bool *ok, ...) __attribute__((sentinel));

static json_t *ref_to(bool *ok, ...)
{
    buf path;
    buf_init(&path, 1024);
    va_list ap;
    va_start(ap, ok);
    for (const char *part = va_arg(ap, const char *); part; part = va_arg(ap, const char *))
        if (buf_puts(&path, part) != 0)
            *ok = false;
    va_end(ap);
    json_t *ref = json_object();
    set(ref, "$ref", json_string(buf_cstr(&path)), ok);
    buf_free(&path);
    return ref;
}

static json_t *message(const bus_event_def *d, bool *ok)
{
    json_t *msg = json_object(), *examples = json_array(), *ex = json_object(), *payload = NULL;
    if (bus_catalog_example(d, &payload) != 0)
        *ok = false;
    set(msg, "name", json_string(d->type), ok);
    set(msg, "title", json_string(d->type), ok);
    set(msg, "summary", json_string(d->summary), ok);
    set(msg, "contentType", json_string("application/json"), ok);
    set(msg, "tags", tags_of(d->group, ok), ok);
    set(msg, "payload", ref_to(ok, "#/components/schemas/", d->type, (const char *)NULL), ok);
    set(ex, "name", json_string(d->type), ok);
    set(ex, "payload", payload, ok);
    append(examples, ex, ok);
    set(msg, "examples", examples, ok);
    set(msg, "x-version", json_integer(d->version), ok);
    return msg;
}

static json_t *channel(const bus_event_def *d, size_t s, const char *queue, bool *ok)
{
    json_t *ch = json_object(), *msgs = json_object();
    buf desc;
    buf_init(&desc, 4096);
    if (buf_printf(&desc, "Queue of %s for %s events (published by %s): %s",
                   bus_service_name(d->subscribers[s].service), d->type,
                   bus_service_name(d->publisher), d->subscribers[s].handling) != 0)
        *ok = false;
    set(ch, "address", json_string(queue), ok);
    set(ch, "title", json_string(queue), ok);
    set(ch, "description", json_string(buf_cstr(&desc)), ok);
    set(msgs, d->type, ref_to(ok, "#/components/messages/", d->type, (const char *)NULL), ok);
    set(ch, "messages", msgs, ok);
    buf_free(&desc);
    return ch;
}

static json_t *operation(const bus_event_def *d, size_t s, const char *queue, bool send, bool *ok)
{
    json_t *op = json_object(), *msgs = json_array();
    bus_service svc = send ? d->publisher : d->subscribers[s].service;
    buf text;
    buf_init(&text, 4096);
    int rc;
    if (send)
        rc = buf_printf(&text, "%s publishes %s into %s", bus_service_name(svc), d->type, queue);
    else
        rc =
            buf_printf(&text, "%s consumes %s from %s and re-emits it as %s", bus_service_name(svc),
                       d->type, queue, bus_event_subscriber_internal_name(d, s));
    if (rc != 0)
        *ok = false;
    set(op, "action", json_string(send ? "send" : "receive"), ok);
    set(op, "channel", ref_to(ok, "#/channels/", queue, (const char *)NULL), ok);
    set(op, "summary", json_string(buf_cstr(&text)), ok);
    set(op, "tags", tags_of(bus_service_name(svc), ok), ok);
    append(msgs, ref_to(ok, "#/channels/", queue, "/messages/", d->type, (const char *)NULL), ok);
    set(op, "messages", msgs, ok);
    if (send && d->publisher_internal)
        set(op, "x-internal-event", json_string(d->publisher_internal), ok);
    if (!send)
        set(op, "x-internal-event", json_string(bus_event_subscriber_internal_name(d, s)), ok);
    buf_free(&text);
    return op;
}

static void add_channels(json_t *channels, json_t *operations, bool *ok)
{
    for (size_t i = 0; i < bus_catalog_count; i++) {
        const bus_event_def *d = &bus_catalog[i];
        for (size_t s = 0; s < d->subscriber_count; s++) {
            char q[BUS_QUEUE_NAME_MAX];
            if (bus_queue_name(d->type, d->subscribers[s].service, q, sizeof q) != 0) {
                *ok = false;
                continue;
            }
            buf id;
            buf_init(&id, BUS_QUEUE_NAME_MAX + 16);
            set(channels, q, channel(d, s, q, ok), ok);
            if (buf_printf(&id, "send:%s", q) != 0)
                *ok = false;
            set(operations, buf_cstr(&id), operation(d, s, q, true, ok), ok);
            buf_reset(&id);
            if (buf_printf(&id, "receive:%s", q) != 0)
                *ok = false;
            set(operations, buf_cstr(&id), operation(d, s, q, false, ok), ok);
            buf_free(&id);
        }
    }
}

static json_t *asyncapi_doc(bool *ok)
{
    json_t *root = json_object(), *info = json_object(), *channels = json_object(),
           *operations = json_object(), *components = json_object(), *messages = json_object(),
           *schemas = json_object();
    set(root, "asyncapi", json_string("3.0.0"), ok);
    set(info, "title", json_string("f3connect events"), ok);
    set(info, "version", json_string(F3_VERSION), ok);
    set(info, "description",
        json_string("Cross-service events of f3connect. Each channel is one durable queue, "
                    "named <eventType>@<service>: every subscribing service has its own queue "
                    "per event type, and a publish enqueues into each. Delivery is "
                    "at-least-once, FIFO per queue; consumers deduplicate on eventId and "
                    "tolerate unknown fields. Generated from src/bus/catalog.c; do not edit."),
        ok);
    set(root, "info", info, ok);
    set(root, "defaultContentType", json_string("application/json"), ok);
    add_channels(channels, operations, ok);
    set(root, "channels", channels, ok);
    set(root, "operations", operations, ok);
    for (size_t i = 0; i < bus_catalog_count; i++) {
        set(messages, bus_catalog[i].type, message(&bus_catalog[i], ok), ok);
        set(schemas, bus_catalog[i].type, event_schema(&bus_catalog[i], ok), ok);
    }
    set(components, "messages", messages, ok);
    set(components, "schemas", schemas, ok);
    set(root, "components", components, ok);
    return root;
}

int bus_catalog_asyncapi(buf *out)
{
    doc m = {out, 0};
    bool ok = true;
    json_t *root = asyncapi_doc(&ok);
    if (!ok)
        m.rc = F3_ENOMEM;
    put_json(&m, root);
    put(&m, "\n");
    json_decref(root);
    return m.rc;
}
