/*
 * catalog_doc.h - documents generated from the event catalog.
 *
 * docs/events.md (the human catalog) and docs/asyncapi.json (AsyncAPI 3.0.0) are the
 * output of these functions, written by `f3connect events catalog`. The output depends
 * only on the catalog tables and the queue defaults, never on time or environment, so
 * the committed files can be compared with a fresh run.
 */
#ifndef F3_BUS_CATALOG_DOC_H
#define F3_BUS_CATALOG_DOC_H

#include "bus/catalog.h"
#include "core/buf.h"

#include <jansson.h>

/* Appends the markdown catalog to out. 0, or F3_ENOMEM / F3_ETOOBIG (out's cap). */
int bus_catalog_markdown(buf *out);

/* Appends the AsyncAPI 3.0.0 document (pretty-printed JSON, 2-space indent, keys in a
 * fixed order, trailing newline) to out. 0, or F3_ENOMEM / F3_ETOOBIG. */
int bus_catalog_asyncapi(buf *out);

/* An example event of type d, envelope included, built from the catalog's example
 * values; it passes bus_envelope_parse(). 0 with *out set (caller frees with
 * json_decref), F3_EINVAL for a NULL d, or F3_ENOMEM. */
int bus_catalog_example(const bus_event_def *d, json_t **out);

#endif
