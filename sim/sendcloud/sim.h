/*
 * sim.h - a Sendcloud simulator: a real HTTP server speaking the subset of the Sendcloud
 * API f3connect calls (integrations spec §3), with real PDF labels, parcels that move
 * through their statuses over time, and signed parcel_status_changed webhooks.
 *
 * It follows Sendcloud's documented behaviour: HTTP Basic authentication (401), v3
 * `POST /api/v3/shipments/announce` (409 plus the existing shipment for a reused
 * external_reference_id), v2 `POST /api/v2/parcels`, reading, cancelling (only before
 * the parcel is handed to the carrier), label documents, the status list, both error
 * bodies, and webhooks signed with `Sendcloud-Signature` (hex HMAC-SHA256 of the body).
 * Control endpoints under /_sim/ (JSON) inject failures, move parcels on, drop webhooks
 * and show what happened; see sim/sendcloud/README.md.
 *
 * All state is in memory and lives as long as the simulator. It is a test and sandbox
 * tool: it must never be pointed at by a production configuration.
 */
#ifndef F3_SIM_SENDCLOUD_SIM_H
#define F3_SIM_SENDCLOUD_SIM_H

#include "core/err.h"

typedef struct sendcloud_sim_opts {
    const char *host;           /* address to bind; NULL = "127.0.0.1" */
    int port;                   /* 0 = a free port (see sendcloud_sim_port) */
    const char *public_key;     /* Basic-auth user accepted. Required. */
    const char *secret_key;     /* Basic-auth password accepted; signs webhooks unless
                                   webhook_secret is set. Required. */
    const char *webhook_secret; /* NULL = secret_key */
    const char *webhook_url;    /* where webhooks go; NULL = nowhere until set */
    long step_ms;               /* a parcel moves to its next status after this; 0 = 5000;
                                   negative = only when told (POST /_sim/advance) */
    long retry_base_ms;         /* first webhook retry after this, doubling; 0 = 300000
                                   (Sendcloud: 5 min) */
    int max_retries;            /* 0 = 10 (Sendcloud) */
    long delivery_timeout_ms;   /* a delivery slower than this failed; 0 = 5000 */
} sendcloud_sim_opts;

typedef struct sendcloud_sim sendcloud_sim;

/* Starts the simulator (HTTP server and worker thread). NULL with e set when an option is
 * missing or the port cannot be bound. Caller stops and frees it with sendcloud_sim_stop().
 * http_client_init() is done (and undone) inside. */
sendcloud_sim *sendcloud_sim_start(const sendcloud_sim_opts *o, err *e);

/* The port the simulator listens on. */
int sendcloud_sim_port(const sendcloud_sim *s);

/* Stops serving, abandons pending deliveries and frees everything. NULL is fine. */
void sendcloud_sim_stop(sendcloud_sim *s);

/* Writes a small, valid PDF 1.4 document (one A6 page showing the carrier, tracking number
 * and recipient lines; correct xref offsets) to out. Exposed for tests. 0 or F3_ENOMEM. */
struct buf;
int sendcloud_sim_label_pdf(const char *carrier, const char *tracking_number,
                            const char *const *lines, struct buf *out);

#endif
