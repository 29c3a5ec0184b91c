/*
 * emitter.c - the in-process event emitter.
 *
 * Registrations are append-only linked lists (one per event name) that are never
 * shortened while the emitter lives. An emit takes the read lock only to find the
 * event and note its first listener and how many there are, then calls them with no
 * lock held: listeners may emit again or register more without deadlock, and a
 * registration running meanwhile only appends after the nodes the emit walks.
 * This file must not know about queues or the catalog's meaning of names.
 */
#include "bus/emitter.h"

#include "core/log.h"
#include "core/str.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct listener_node {
    bus_listener fn;
    void *ctx;
    struct listener_node *next;
} listener_node;

typedef struct event_entry {
    char *name;
    listener_node *head, *tail;
    size_t count;
    struct event_entry *next;
} event_entry;

struct bus_emitter {
    pthread_rwlock_t lock;
    event_entry *events;
};

bus_emitter *bus_emitter_new(void)
{
    bus_emitter *em = calloc(1, sizeof *em);
    if (!em)
        return NULL;
    if (pthread_rwlock_init(&em->lock, NULL) != 0) {
        free(em);
        return NULL;
    }
    return em;
}

void bus_emitter_free(bus_emitter *em)
{
    if (!em)
        return;
    event_entry *ev = em->events;
    while (ev) {
        event_entry *next_ev = ev->next;
        listener_node *n = ev->head;
        while (n) {
            listener_node *next = n->next;
            free(n);
            n = next;
        }
        free(ev->name);
        free(ev);
        ev = next_ev;
    }
    pthread_rwlock_destroy(&em->lock);
    free(em);
}

/* Caller holds the lock (read or write). */
static event_entry *find_event(const bus_emitter *em, const char *event)
{
    for (event_entry *ev = em->events; ev; ev = ev->next)
        if (strcmp(ev->name, event) == 0)
            return ev;
    return NULL;
}

int bus_emitter_on(bus_emitter *em, const char *event, bus_listener fn, void *ctx)
{
    if (!em || !event || !*event || !fn)
        return F3_EINVAL;
    listener_node *node = calloc(1, sizeof *node);
    if (!node)
        return F3_ENOMEM;
    node->fn = fn;
    node->ctx = ctx;

    int rc = 0;
    pthread_rwlock_wrlock(&em->lock);
    event_entry *ev = find_event(em, event);
    if (!ev) {
        ev = calloc(1, sizeof *ev);
        char *name = str_dup(event);
        if (!ev || !name) {
            free(ev);
            free(name);
            free(node);
            rc = F3_ENOMEM;
            goto out;
        }
        ev->name = name;
        ev->next = em->events;
        em->events = ev;
    }
    if (ev->tail)
        ev->tail->next = node;
    else
        ev->head = node;
    ev->tail = node;
    ev->count++;
out:
    pthread_rwlock_unlock(&em->lock);
    return rc;
}

size_t bus_emitter_listener_count(bus_emitter *em, const char *event)
{
    if (!em || !event)
        return 0;
    pthread_rwlock_rdlock(&em->lock);
    const event_entry *ev = find_event(em, event);
    size_t n = ev ? ev->count : 0;
    pthread_rwlock_unlock(&em->lock);
    return n;
}

static void log_listener_failure(const char *event, size_t index, int rc, const err *e)
{
    char idx[24];
    snprintf(idx, sizeof idx, "%zu", index);
    const char *msg = e->msg[0] ? e->msg : err_name(rc);
    log_error("event listener failed", "event", event, "listener", idx, "error", msg);
}

int bus_emitter_emit(bus_emitter *em, const char *event, const json_t *payload)
{
    if (!em || !event)
        return F3_EINVAL;
    pthread_rwlock_rdlock(&em->lock);
    const event_entry *ev = find_event(em, event);
    const listener_node *node = ev ? ev->head : NULL;
    size_t n = ev ? ev->count : 0;
    pthread_rwlock_unlock(&em->lock);

    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        err e;
        err_clear(&e);
        int rc = node->fn(event, payload, node->ctx, &e);
        if (rc < 0) {
            log_listener_failure(event, i, rc, &e);
            failed++;
        }
        /* The last node's `next` may be written by a concurrent registration: not read. */
        if (i + 1 < n)
            node = node->next;
    }
    return failed;
}
