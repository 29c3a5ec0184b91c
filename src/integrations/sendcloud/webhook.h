/*
 * webhook.h - Sendcloud webhook deliveries and parcel statuses (integrations spec §3.7,
 * §3.9): the Sendcloud-Signature check over the raw body, the parcel_status_changed
 * payload, and the one table that turns Sendcloud's numeric status ids (v2, webhooks) and
 * upper-snake codes (v3) into our shipment status names.
 *
 * Our status names (stored in shipments.status and published in shipment.status-changed):
 *   PENDING (our row before the provider answered), NO_LABEL, READY_TO_SEND, ANNOUNCING,
 *   ANNOUNCEMENT_FAILED, IN_TRANSIT, OUT_FOR_DELIVERY, DELIVERY_ATTEMPT_FAILED,
 *   AWAITING_CUSTOMER_PICKUP, DELIVERED, EXCEPTION, CANCELLING, CANCELLED, FAILED (our
 *   permanent failure), UNKNOWN.
 * This file never logs a secret or a signature and holds no state.
 */
#ifndef F3_INTEGRATIONS_SENDCLOUD_WEBHOOK_H
#define F3_INTEGRATIONS_SENDCLOUD_WEBHOOK_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SENDCLOUD_HEADER_SIGNATURE  "Sendcloud-Signature"
#define SENDCLOUD_ACTION_PARCEL     "parcel_status_changed"
#define SENDCLOUD_STATUS_PENDING    "PENDING"
#define SENDCLOUD_STATUS_READY      "READY_TO_SEND"
#define SENDCLOUD_STATUS_IN_TRANSIT "IN_TRANSIT"
#define SENDCLOUD_STATUS_DELIVERED  "DELIVERED"
#define SENDCLOUD_STATUS_CANCELLING "CANCELLING"
#define SENDCLOUD_STATUS_CANCELLED  "CANCELLED"
#define SENDCLOUD_STATUS_FAILED     "FAILED"
#define SENDCLOUD_STATUS_UNKNOWN    "UNKNOWN"
#define SENDCLOUD_STATUS_NAME_MAX   32
#define SENDCLOUD_TEXT_MAX          256

/* Our status name for a numeric Sendcloud status id; "UNKNOWN" for ids not in the table. */
const char *sendcloud_status_from_id(int64_t id);

/* Our status name for a v3 status code ("READY_TO_SEND", "ANNOUNCING", ...); "UNKNOWN"
 * for NULL or codes not in the table. */
const char *sendcloud_status_from_code(const char *code);

/* A representative numeric id for one of our status names (for the simulator and for
 * v3 answers without an id); -1 for names without one. */
int64_t sendcloud_status_id_of(const char *status);

/* True once the parcel is with the carrier (in transit, out for delivery, delivered,
 * exception, ...): it can no longer be cancelled by us. False for PENDING, NO_LABEL,
 * READY_TO_SEND, ANNOUNCING, ANNOUNCEMENT_FAILED, CANCELLING, CANCELLED, FAILED, UNKNOWN. */
bool sendcloud_status_handed_over(const char *status);

/* True for statuses after which nothing changes any more (DELIVERED, CANCELLED, FAILED). */
bool sendcloud_status_final(const char *status);

/* Appends the lower-case hex HMAC-SHA256 of body under secret (64 characters).
 * 0, F3_EINVAL (no secret), F3_ENOMEM. */
int sendcloud_webhook_sign(const char *secret, const void *body, size_t len, buf *out);

/* Checks a Sendcloud-Signature header value against the raw body in constant time
 * (upper- or lower-case hex accepted). 0 when it matches; F3_EINVAL when the header is
 * missing, malformed or wrong, or there is no secret. */
int sendcloud_webhook_verify(const char *secret, const void *raw_body, size_t len,
                             const char *signature);

/* One parcel_status_changed delivery, read. */
typedef struct sendcloud_status_event {
    char action[64];                        /* "parcel_status_changed", or another action */
    int64_t timestamp_ms;                   /* delivery timestamp (seconds converted) */
    int64_t parcel_id;                      /* 0 for other actions */
    int64_t status_id;                      /* -1 when absent */
    char status[SENDCLOUD_STATUS_NAME_MAX]; /* our name (see above) */
    char status_message[SENDCLOUD_TEXT_MAX];
    char tracking_number[SENDCLOUD_TEXT_MAX];
    char tracking_url[1024];
    char carrier[64];
    char external_reference[SENDCLOUD_TEXT_MAX]; /* our order id, when the parcel has it */
} sendcloud_status_event;

/* Parses a webhook body. Other actions than parcel_status_changed are read with only
 * action and timestamp set (the caller acknowledges and ignores them). F3_EINVAL with a
 * message naming the field for malformed JSON or a parcel_status_changed without
 * parcel.id or parcel.status.id. */
int sendcloud_webhook_parse(const char *body, size_t len, sendcloud_status_event *out, err *e);

/* Reads a v2-style parcel object (webhook "parcel", GET /api/v2/parcels/{id} "parcel")
 * into out's parcel fields (action and timestamp untouched). F3_EINVAL when id or
 * status.id is missing or of the wrong type. Includes json.h's jansson. */
struct json_t;
int sendcloud_parcel_read(const struct json_t *parcel, sendcloud_status_event *out, err *e);

/* The dedupe key of a delivery (spec §3.9): "parcel.id:status.id:timestamp". */
void sendcloud_webhook_dedupe_key(const sendcloud_status_event *ev, char out[96]);

#endif
