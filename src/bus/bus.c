/*
 * bus.c - the facade of the event bus (see bus.h): catalog-checked publishing with
 * fan-out to one queue per subscribing service, subscriptions run by the worker runtime
 * with the envelope parsed and checked before the handler, and the emitter bridges.
 *
 * It must not write event names as literals (they come from the catalog) nor know any
 * service's business; queue mechanics belong to the store and the worker.
 */
#include "bus/bus.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/uuid.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DECODED_MAGIC 0x6275736576ULL /* marks a bus_envelope the prepare hook made */

typedef struct bus_sub {
    bus *b;
    const bus_event_def *def;
    bus_handler fn;
    void *ctx;
    bus_emitter *em;           /* subscriber bridge: re-emit here */
    const char *internal_name; /* ... under this name */
    char queue[BUS_QUEUE_NAME_MAX + 1];
} bus_sub;

typedef struct bus_bridge_pub {
    bus *b;
    const bus_event_def *def;
} bus_bridge_pub;

struct bus {
    db *d;
    bus_store *s;
    bus_service self;
    bus_worker *w;
    bus_sub **subs;
    size_t nsubs;
    bus_bridge_pub **pubs;
    size_t npubs;
    bus_emitter **bridged; /* emitters bus_bridge_publisher was called with */
    size_t nbridged;
};

/* The decoded form of a delivery on a subscription queue. */
typedef struct decoded_event {
    uint64_t magic;
    bus_envelope env;
} decoded_event;

/* Room for one more entry in each of the bus's arrays. */
static int grow_subs(bus *b)
{
    bus_sub **more = realloc(b->subs, (b->nsubs + 1) * sizeof(bus_sub *));
    if (!more)
        return F3_ENOMEM;
    b->subs = more;
    return 0;
}

static int grow_pubs(bus *b)
{
    bus_bridge_pub **more = realloc(b->pubs, (b->npubs + 1) * sizeof(bus_bridge_pub *));
    if (!more)
        return F3_ENOMEM;
    b->pubs = more;
    return 0;
}

static int grow_bridged(bus *b)
{
    bus_emitter **more = realloc(b->bridged, (b->nbridged + 1) * sizeof(bus_emitter *));
    if (!more)
        return F3_ENOMEM;
    b->bridged = more;
    return 0;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

bus *bus_new_with(db *d, bus_store *s, bus_service self, const bus_worker_opts *wo, err *e)
{
    if (!d || !s) {
        err_set(e, F3_EINVAL, "bus: database and store are required");
        return NULL;
    }
    if ((int)self < 0 || self >= BUS_SERVICE_COUNT) {
        err_set(e, F3_EINVAL, "bus: unknown service %d", (int)self);
        return NULL;
    }
    bus *b = calloc(1, sizeof *b);
    if (!b) {
        err_set(e, F3_ENOMEM, "out of memory creating the bus");
        return NULL;
    }
    b->d = d;
    b->s = s;
    b->self = self;
    b->w = bus_worker_new(s, d, wo, e);
    if (!b->w) {
        free(b);
        return NULL;
    }
    return b;
}

bus *bus_new(db *d, bus_store *s, bus_service self, err *e)
{
    return bus_new_with(d, s, self, NULL, e);
}

void bus_free(bus *b)
{
    if (!b)
        return;
    bus_worker_free(b->w);
    for (size_t i = 0; i < b->nsubs; i++)
        free(b->subs[i]);
    free(b->subs);
    for (size_t i = 0; i < b->npubs; i++)
        free(b->pubs[i]);
    free(b->pubs);
    free(b->bridged);
    free(b);
}

bus_service bus_self(const bus *b)
{
    return b->self;
}

bus_worker *bus_worker_of(bus *b)
{
    return b->w;
}

int bus_start(bus *b, err *e)
{
    return bus_worker_start(b->w, e);
}

int bus_drain(bus *b, int timeout_ms)
{
    return bus_worker_drain(b->w, timeout_ms);
}

/* ---- publishing ---------------------------------------------------------------------------- */

typedef struct publish_job {
    bus *b;
    const bus_event_def *def;
    const char *event_id;
    const char *text;
    int added;
} publish_job;

/* Adds the event to every subscriber queue of its type: in tx, or (tx NULL) in the
 * store's own commit, which concurrent publishers share (bus_store_add_many). */
static int publish_to(bus *b, db_conn *tx, publish_job *p, err *e)
{
    char names[BUS_ADD_MANY_MAX][BUS_QUEUE_NAME_MAX + 1];
    const char *queues[BUS_ADD_MANY_MAX];
    size_t n = bus_event_subscriber_count(p->def);
    p->added = 0;
    if (n == 0)
        return 0; /* nobody subscribes: nothing to enqueue */
    if (n > BUS_ADD_MANY_MAX)
        return err_set(e, F3_EINVAL, "bus: %s has %zu subscribers (1..%d supported)", p->def->type,
                       n, BUS_ADD_MANY_MAX);
    for (size_t i = 0; i < n; i++) {
        int rc = bus_queue_name(p->def->type, bus_event_subscriber(p->def, i), names[i],
                                sizeof names[i]);
        if (rc)
            return err_set(e, rc, "bus: no queue name for %s", p->def->type);
        queues[i] = names[i];
    }
    bus_job_opts o = {.job_id = p->event_id};
    return bus_store_add_many(b->s, tx, queues, n, p->def->type, p->text, &o, clock_now_ms(),
                              &p->added, e);
}

static int publish_text(bus *b, db_conn *tx, publish_job *p, err *e)
{
    if (tx) {
        if (!db_in_transaction(tx))
            return err_set(e, F3_EINVAL, "bus: publishing %s: tx has no open transaction",
                           p->def->type);
        return publish_to(b, tx, p, e);
    }
    if (strcmp(db_backend(b->d), "sqlite") != 0)
        return publish_to(b, NULL, p, e);
    db_conn *c = db_acquire(b->d, e);
    if (!c)
        return e && e->code ? e->code : F3_EIO;
    /* SQLite: this thread's connection is the caller's; an open transaction is theirs. */
    int rc = publish_to(b, db_in_transaction(c) ? c : NULL, p, e);
    db_release(c);
    return rc;
}

/* Builds, checks and enqueues one event. correlation_id NULL = the thread's. */
static int publish_event(bus *b, db_conn *tx, const char *event_type, const char *tenant_id,
                         const char *correlation_id, const json_t *fields, char *event_id_out,
                         err *e)
{
    const bus_event_def *def = bus_catalog_find(event_type);
    if (!def)
        return err_set(e, F3_EINVAL, "bus: unknown event type '%s'",
                       event_type ? event_type : "(null)");
    if (def->publisher != b->self)
        return err_set(e, F3_EINVAL, "bus: %s does not publish %s (the catalog says %s does)",
                       bus_service_name(b->self), def->type, bus_service_name(def->publisher));
    json_t *ev = NULL;
    buf text;
    buf_init(&text, 0);
    int rc = bus_envelope_build(def, b->self, tenant_id, correlation_id, fields, &ev, e);
    if (rc)
        goto out;
    if (json_dump_buf(ev, &text) != 0) {
        rc = err_set(e, F3_ENOMEM, "bus: cannot serialise event %s", def->type);
        goto out;
    }
    publish_job p = {b, def, json_string_value(json_object_get(ev, "eventId")), buf_cstr(&text), 0};
    rc = publish_text(b, tx, &p, e);
    if (rc == 0 && event_id_out)
        snprintf(event_id_out, UUID_STR_LEN, "%s", p.event_id);
out:
    json_decref(ev);
    buf_free(&text);
    return rc;
}

int bus_publish_id(bus *b, db_conn *tx, const char *event_type, const char *tenant_id,
                   const json_t *fields, char *event_id_out, err *e)
{
    return publish_event(b, tx, event_type, tenant_id, NULL, fields, event_id_out, e);
}

int bus_publish(bus *b, db_conn *tx, const char *event_type, const char *tenant_id,
                const json_t *fields, err *e)
{
    return publish_event(b, tx, event_type, tenant_id, NULL, fields, NULL, e);
}

int bus_publish_envelope(bus *b, db_conn *tx, const char *event_json, int *added, err *e)
{
    if (added)
        *added = 0;
    if (!event_json)
        return err_set(e, F3_EINVAL, "bus: no event text to publish");
    bus_envelope env = {0};
    int rc = bus_envelope_parse(event_json, strlen(event_json), &env, e);
    if (rc)
        return rc;
    publish_job p = {b, env.def, env.event_id, event_json, 0};
    rc = publish_text(b, tx, &p, e);
    if (rc == 0 && added)
        *added = p.added;
    bus_envelope_release(&env);
    return rc;
}

/* ---- consuming ------------------------------------------------------------------------------ */

static void decoded_free(void *p)
{
    decoded_event *d = p;
    bus_envelope_release(&d->env);
    free(d);
}

/* The prepare hook of every subscription queue: parse and check the event before any
 * handler or inbox lookup; a bad one is rejected for good (F3_EINVAL). */
static int sub_prepare(bus_delivery *dl, void *ctx, err *e)
{
    bus_sub *sub = ctx;
    const bus_job *job = bus_delivery_job(dl);
    decoded_event *d = calloc(1, sizeof *d);
    if (!d)
        return err_set(e, F3_ENOMEM, "out of memory decoding an event");
    d->magic = DECODED_MAGIC;
    int rc = bus_envelope_parse(job->data, strlen(job->data), &d->env, e);
    if (rc) {
        free(d);
        return rc;
    }
    if (d->env.def != sub->def) {
        rc = err_set(e, F3_EINVAL, "event type '%s' does not belong on queue '%s'",
                     d->env.event_type, sub->queue);
        decoded_free(d);
        return rc;
    }
    log_set_correlation_id(d->env.correlation_id);
    rc = bus_delivery_set_event(dl, d->env.event_id, d, decoded_free, e);
    if (rc)
        decoded_free(d);
    return rc;
}

static int bridge_deliver(bus_delivery *dl, void *ctx, err *e);

const bus_envelope *bus_delivery_envelope(const bus_delivery *dl)
{
    const decoded_event *d = bus_delivery_decoded(dl);
    return d && d->magic == DECODED_MAGIC ? &d->env : NULL;
}

/* Registers the subscription queue of event_type. With em, the handler is the subscriber
 * bridge re-emitting on em (fn and ctx unused). */
static int subscribe_queue(bus *b, const char *event_type, bus_handler fn, void *ctx,
                           bus_emitter *em, const bus_sub_opts *o, err *e)
{
    const bus_event_def *def = bus_catalog_find(event_type);
    if (!def)
        return err_set(e, F3_EINVAL, "bus: unknown event type '%s'",
                       event_type ? event_type : "(null)");
    if (bus_event_subscriber_index(def, b->self) < 0)
        return err_set(e, F3_EINVAL, "bus: %s does not subscribe to %s per the catalog",
                       bus_service_name(b->self), def->type);
    bus_sub *sub = calloc(1, sizeof *sub);
    if (!sub || grow_subs(b) != 0) {
        free(sub);
        return err_set(e, F3_ENOMEM, "out of memory subscribing to %s", def->type);
    }
    sub->b = b;
    sub->def = def;
    sub->fn = fn;
    sub->ctx = ctx;
    if (em) {
        sub->em = em;
        sub->internal_name = bus_event_subscriber_internal_name(
            def, (size_t)bus_event_subscriber_index(def, b->self));
        sub->fn = bridge_deliver;
        sub->ctx = sub;
    }
    int rc = bus_queue_name(def->type, b->self, sub->queue, sizeof sub->queue);
    if (rc) {
        free(sub);
        return err_set(e, rc, "bus: no queue name for %s", def->type);
    }
    bus_queue_opts qo = {
        .concurrency = o ? o->concurrency : 0,
        .lease_ms = o ? o->lease_ms : 0,
        .flags = BUS_QUEUE_INBOX,
        .consumer = bus_service_name(b->self),
        .prepare = sub_prepare,
        .prepare_ctx = sub,
    };
    rc = bus_worker_register(b->w, sub->queue, sub->fn, sub->ctx, &qo, e);
    if (rc) {
        free(sub);
        return rc;
    }
    b->subs[b->nsubs++] = sub;
    return 0;
}

int bus_subscribe(bus *b, const char *event_type, bus_handler fn, void *ctx, const bus_sub_opts *o,
                  err *e)
{
    if (!fn)
        return err_set(e, F3_EINVAL, "bus: subscription to %s has no handler",
                       event_type ? event_type : "(null)");
    return subscribe_queue(b, event_type, fn, ctx, NULL, o, e);
}

/* ---- bridges --------------------------------------------------------------------------------- */

/* Subscriber bridge handler: the received event, re-emitted under the internal name. */
static int bridge_deliver(bus_delivery *dl, void *ctx, err *e)
{
    bus_sub *sub = ctx;
    const bus_envelope *env = bus_delivery_envelope(dl);
    if (!env)
        return err_set(e, F3_EINVAL, "bus bridge: delivery on '%s' carries no event", sub->queue);
    int failed = bus_emitter_emit(sub->em, sub->internal_name, env->root);
    if (failed < 0)
        return err_set(e, failed, "bus bridge: cannot emit %s", sub->internal_name);
    if (failed > 0)
        return err_set(e, F3_ETRANSIENT, "%d listener(s) of %s failed", failed, sub->internal_name);
    return 0;
}

int bus_subscribe_bridge(bus *b, bus_emitter *em, const char *event_type, const bus_sub_opts *o,
                         err *e)
{
    if (!em)
        return err_set(e, F3_EINVAL, "bus bridge: no emitter");
    return subscribe_queue(b, event_type, NULL, NULL, em, o, e);
}

/* Publisher bridge listener: an internal event becomes its cross-service event. */
static int bridge_publish(const char *event, const json_t *payload, void *ctx, err *e)
{
    bus_bridge_pub *bp = ctx;
    if (!json_is_object(payload))
        return err_set(e, F3_EINVAL, "bus bridge: %s: payload must be an object", event);
    const char *tenant = NULL, *correlation = NULL;
    if (json_get_string(payload, "tenantId", &tenant, e) != 0 ||
        json_opt_string(payload, "correlationId", &correlation, NULL, e) != 0)
        return F3_EINVAL;
    json_t *fields = json_copy((json_t *)payload);
    if (!fields)
        return err_set(e, F3_ENOMEM, "out of memory bridging %s", event);
    for (size_t i = 0; i < bus_envelope_field_count; i++)
        json_object_del(fields, bus_envelope_fields[i].name);
    int rc = publish_event(bp->b, NULL, bp->def->type, tenant, correlation, fields, NULL, e);
    json_decref(fields);
    return rc;
}

int bus_bridge_publisher(bus *b, bus_emitter *em, err *e)
{
    if (!em)
        return err_set(e, F3_EINVAL, "bus bridge: no emitter");
    for (size_t i = 0; i < b->nbridged; i++)
        if (b->bridged[i] == em)
            return err_set(e, F3_EINVAL, "bus bridge: this emitter is bridged already");
    if (grow_bridged(b) != 0)
        return err_set(e, F3_ENOMEM, "out of memory bridging an emitter");
    b->bridged[b->nbridged++] = em;
    for (size_t i = 0; i < bus_catalog_count; i++) {
        const bus_event_def *def = &bus_catalog[i];
        if (def->publisher != b->self || !def->publisher_internal)
            continue;
        bus_bridge_pub *bp = calloc(1, sizeof *bp);
        if (!bp || grow_pubs(b) != 0) {
            free(bp);
            return err_set(e, F3_ENOMEM, "out of memory bridging %s", def->type);
        }
        bp->b = b;
        bp->def = def;
        b->pubs[b->npubs++] = bp;
        int rc = bus_emitter_on(em, def->publisher_internal, bridge_publish, bp);
        if (rc)
            return err_set(e, rc, "bus bridge: cannot listen for %s", def->publisher_internal);
    }
    return 0;
}
