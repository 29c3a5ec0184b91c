/*
 * client.h - the Sendcloud API client (integrations spec §3): create and announce a
 * shipment with a label (v3 `POST /api/v3/shipments/announce`, or v2 `POST
 * /api/v2/parcels` for legacy accounts), read it back, cancel it, download the label
 * PDF, and read the parcel status list (also the credential check).
 *
 * Every call is one HTTP request (src/http/client.h) classified once: transient
 * (timeouts, connection errors, 429 with Retry-After, 5xx) or permanent (other 4xx,
 * unusable answers). The client never retries and never sleeps: the caller's queue does.
 * Both error bodies are read into the message: v2 {"error":{"code","message"}} and v3
 * {"errors":[{"status","code","detail"}]}.
 *
 * Idempotency: the order id is sent as v3 external_reference_id / v2 external_reference.
 * A v3 409 answers with the shipment already made for it, which is read and returned as a
 * success (sendcloud_shipment.existing = true).
 *
 * Authentication is HTTP Basic with public key : secret key. Keys are never logged or put
 * in messages; the copies the client holds are wiped when it is freed.
 * A client is immutable after creation and safe to use from several threads.
 */
#ifndef F3_INTEGRATIONS_SENDCLOUD_CLIENT_H
#define F3_INTEGRATIONS_SENDCLOUD_CLIENT_H

#include "core/buf.h"
#include "core/err.h"
#include "http/client.h"
#include "integrations/sendcloud/webhook.h"

#include <stdbool.h>
#include <stdint.h>

#define SENDCLOUD_DEFAULT_API_URL "https://panel.sendcloud.sc"
/* With no Retry-After on a 429, wait this long. */
#define SENDCLOUD_DEFAULT_RETRY_MS 2000L

typedef enum sendcloud_api_version {
    SENDCLOUD_API_V3 = 3,
    SENDCLOUD_API_V2 = 2,
} sendcloud_api_version;

typedef struct sendcloud_client_opts {
    const char *base_url;    /* scheme://host[:port]; NULL = SENDCLOUD_DEFAULT_API_URL */
    const char *public_key;  /* required */
    const char *secret_key;  /* required */
    const char *api_version; /* "v3" or "v2"; NULL = "v3" */
    long timeout_ms;         /* per request; 0 = the HTTP client's default */
} sendcloud_client_opts;

typedef struct sendcloud_client sendcloud_client;

/* What one call saw, for the caller's retry decisions. */
typedef struct sendcloud_call {
    long status;          /* HTTP status; 0 when no response arrived */
    http_failure failure; /* HTTP_OK, HTTP_TRANSIENT or HTTP_PERMANENT */
    long retry_after_ms;  /* from Retry-After; SENDCLOUD_DEFAULT_RETRY_MS for a bare 429; -1 */
} sendcloud_call;

/* "v3"/"v2" (also "3"/"2") -> the version; -1 for anything else. NULL or "" = v3. */
int sendcloud_api_version_parse(const char *text);

/* A client. Strings are copied. NULL with e set (F3_EINVAL) for missing keys, a base URL
 * that is not http(s), or an unknown API version. Caller frees with sendcloud_client_free. */
sendcloud_client *sendcloud_client_new(const sendcloud_client_opts *o, err *e);
void sendcloud_client_free(sendcloud_client *c);

sendcloud_api_version sendcloud_client_version(const sendcloud_client *c);

/* A postal address. Strings are borrowed. */
typedef struct sendcloud_address {
    const char *name, *company, *address_line_1, *house_number, *address_line_2;
    const char *postal_code, *city, *country_code, *state_code, *phone, *email;
} sendcloud_address;

/* What a shipment is made of. Strings are borrowed. */
typedef struct sendcloud_shipment_request {
    const char *external_reference;   /* required: our order id, the idempotency key */
    const char *order_number;         /* shown in the panel, e.g. "#1042" */
    sendcloud_address to;             /* name, address_line_1, postal_code, city, country_code
                                         are required */
    int64_t sender_address_id;        /* 0 = the account's default sender */
    const char *shipping_option_code; /* v3 ship_with code, e.g. "postnl:standard" */
    int64_t shipping_method_id;       /* v2 shipment.id; 0 = Sendcloud's default (v2 only) */
    int64_t weight_grams;             /* > 0 */
    int64_t total_minor;              /* order total in minor units; < 0 = not sent */
    int currency_exponent;            /* decimals of the currency (2 for EUR) */
    const char *currency;             /* ISO 4217 */
} sendcloud_shipment_request;

/* A shipment (v3) or parcel (v2) as Sendcloud reports it. Caller frees with
 * sendcloud_shipment_free. */
typedef struct sendcloud_shipment {
    char *shipment_id;        /* v3 shipment id; v2: the parcel id as text */
    int64_t parcel_id;        /* the (first) parcel's id */
    char *tracking_number;    /* NULL when none yet */
    char *tracking_url;       /* NULL when none */
    char *carrier;            /* carrier code, NULL when unknown */
    char *status;             /* our status name (webhook.h) */
    int64_t status_id;        /* Sendcloud's numeric id; -1 when the answer had none */
    char *status_message;     /* Sendcloud's text, NULL when none */
    char *external_reference; /* as echoed, NULL when not */
    bool existing;            /* a 409 answered with the shipment made earlier */
} sendcloud_shipment;

void sendcloud_shipment_free(sendcloud_shipment *s);

/* Creates and announces a shipment with a label through the client's API version.
 * 0 with out filled (also for a v3 409 naming the existing shipment, then out->existing);
 * F3_EINVAL for a request missing required fields (nothing sent); F3_ETRANSIENT /
 * F3_EPERMANENT as classified (e carries Sendcloud's error message); F3_ENOMEM.
 * call (may be NULL) receives what the call saw. out is always initialised: free it. */
int sendcloud_create_shipment(sendcloud_client *c, const sendcloud_shipment_request *rq,
                              sendcloud_shipment *out, sendcloud_call *call, err *e);

/* Reads a shipment back: v3 GET /api/v3/shipments/{shipment_id}, v2 GET
 * /api/v2/parcels/{parcel_id} (shipment_id is then the parcel id as text). F3_ENOTFOUND
 * for a 404, else as sendcloud_create_shipment. */
int sendcloud_get_shipment(sendcloud_client *c, const char *shipment_id, sendcloud_shipment *out,
                           sendcloud_call *call, err *e);

typedef enum sendcloud_cancel_result {
    SENDCLOUD_CANCELLED = 1, /* 200: cancelled (or deleted, for an unannounced parcel) */
    SENDCLOUD_CANCEL_QUEUED, /* 202: Sendcloud will cancel it unless it moves */
} sendcloud_cancel_result;

/* Cancels: v3 POST /api/v3/shipments/{id}/cancel, v2 POST /api/v2/parcels/{id}/cancel.
 * 0 with *result set; F3_ECONFLICT when Sendcloud refuses because it is too late (v3 409,
 * v2 400/410: already with the carrier, delivered, cancelled); F3_ENOTFOUND for 404;
 * otherwise as sendcloud_create_shipment. */
int sendcloud_cancel_shipment(sendcloud_client *c, const char *shipment_id,
                              sendcloud_cancel_result *result, sendcloud_call *call, err *e);

/* Downloads the label of parcel_id as PDF (GET /api/v{3,2}/parcels/{id}/documents/label,
 * Accept: application/pdf) into pdf (appended). F3_EPERMANENT when the answer is not a
 * PDF; F3_ENOTFOUND for 404; else as above. */
int sendcloud_get_label(sendcloud_client *c, int64_t parcel_id, buf *pdf, sendcloud_call *call,
                        err *e);

/* Reads the parcel status list (GET /api/v{3,2}/parcels/statuses) - also the cheapest
 * call that proves the credentials work: a 401/403 is F3_EPERMANENT with "credentials
 * rejected" in e. *count (may be NULL) receives the number of statuses listed. */
int sendcloud_check_credentials(sendcloud_client *c, int *count, sendcloud_call *call, err *e);

#endif
