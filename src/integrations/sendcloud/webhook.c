/*
 * webhook.c - Sendcloud signatures, the parcel status table and the webhook payload
 * (see webhook.h). Pure functions: no I/O, no logging of secrets or signatures.
 */
#include "integrations/sendcloud/webhook.h"

#include "core/crypto.h"
#include "core/json.h"
#include "core/str.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Numeric ids (spec §3.7) and what they mean to us. The first row of each name is the
 * id sendcloud_status_id_of() hands out. */
typedef struct status_row {
    int64_t id;
    const char *name;
} status_row;

static const status_row status_ids[] = {
    {999, "NO_LABEL"},
    {1000, SENDCLOUD_STATUS_READY},
    {1, SENDCLOUD_STATUS_READY},
    {13, SENDCLOUD_STATUS_READY},
    {1001, "ANNOUNCING"},
    {1002, "ANNOUNCEMENT_FAILED"},
    {3, SENDCLOUD_STATUS_IN_TRANSIT},
    {22, SENDCLOUD_STATUS_IN_TRANSIT},
    {7, SENDCLOUD_STATUS_IN_TRANSIT},
    {5, SENDCLOUD_STATUS_IN_TRANSIT},
    {6, SENDCLOUD_STATUS_IN_TRANSIT},
    {91, SENDCLOUD_STATUS_IN_TRANSIT},
    {4, SENDCLOUD_STATUS_IN_TRANSIT},
    {92, "OUT_FOR_DELIVERY"},
    {8, "DELIVERY_ATTEMPT_FAILED"},
    {12, "AWAITING_CUSTOMER_PICKUP"},
    {11, SENDCLOUD_STATUS_DELIVERED},
    {93, SENDCLOUD_STATUS_DELIVERED},
    {80, "EXCEPTION"},
    {15, "EXCEPTION"},
    {1337, SENDCLOUD_STATUS_UNKNOWN},
    {1999, SENDCLOUD_STATUS_CANCELLING},
    {1998, SENDCLOUD_STATUS_CANCELLING},
    {2001, SENDCLOUD_STATUS_CANCELLING},
    {2000, SENDCLOUD_STATUS_CANCELLED},
};

/* v3 codes that differ from our names; codes equal to one of our names map to themselves. */
typedef struct code_row {
    const char *code;
    const char *name;
} code_row;

static const code_row status_codes[] = {
    {"ANNOUNCED", SENDCLOUD_STATUS_READY},
    {"EN_ROUTE", SENDCLOUD_STATUS_IN_TRANSIT},
    {"SORTED", SENDCLOUD_STATUS_IN_TRANSIT},
    {"AT_SORTING_CENTRE", SENDCLOUD_STATUS_IN_TRANSIT},
    {"DELIVERY_DELAYED", SENDCLOUD_STATUS_IN_TRANSIT},
    {"DRIVER_EN_ROUTE", "OUT_FOR_DELIVERY"},
    {"UNABLE_TO_DELIVER", "EXCEPTION"},
    {"CANCELLATION_REQUESTED", SENDCLOUD_STATUS_CANCELLING},
};

/* Our names that are with the carrier. */
static const char *const handed_over[] = {
    SENDCLOUD_STATUS_IN_TRANSIT, "OUT_FOR_DELIVERY",         "DELIVERY_ATTEMPT_FAILED",
    "AWAITING_CUSTOMER_PICKUP",  SENDCLOUD_STATUS_DELIVERED, "EXCEPTION",
};

static const char *const our_names[] = {
    SENDCLOUD_STATUS_PENDING,
    "NO_LABEL",
    SENDCLOUD_STATUS_READY,
    "ANNOUNCING",
    "ANNOUNCEMENT_FAILED",
    SENDCLOUD_STATUS_IN_TRANSIT,
    "OUT_FOR_DELIVERY",
    "DELIVERY_ATTEMPT_FAILED",
    "AWAITING_CUSTOMER_PICKUP",
    SENDCLOUD_STATUS_DELIVERED,
    "EXCEPTION",
    SENDCLOUD_STATUS_CANCELLING,
    SENDCLOUD_STATUS_CANCELLED,
    SENDCLOUD_STATUS_FAILED,
    SENDCLOUD_STATUS_UNKNOWN,
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *sendcloud_status_from_id(int64_t id)
{
    for (size_t i = 0; i < COUNT(status_ids); i++)
        if (status_ids[i].id == id)
            return status_ids[i].name;
    return SENDCLOUD_STATUS_UNKNOWN;
}

const char *sendcloud_status_from_code(const char *code)
{
    if (!code)
        return SENDCLOUD_STATUS_UNKNOWN;
    for (size_t i = 0; i < COUNT(our_names); i++)
        if (str_eq(code, our_names[i]))
            return our_names[i];
    for (size_t i = 0; i < COUNT(status_codes); i++)
        if (str_eq(code, status_codes[i].code))
            return status_codes[i].name;
    return SENDCLOUD_STATUS_UNKNOWN;
}

int64_t sendcloud_status_id_of(const char *status)
{
    for (size_t i = 0; status && i < COUNT(status_ids); i++)
        if (str_eq(status_ids[i].name, status))
            return status_ids[i].id;
    return -1;
}

bool sendcloud_status_handed_over(const char *status)
{
    for (size_t i = 0; status && i < COUNT(handed_over); i++)
        if (str_eq(status, handed_over[i]))
            return true;
    return false;
}

bool sendcloud_status_final(const char *status)
{
    return str_eq(status, SENDCLOUD_STATUS_DELIVERED) ||
           str_eq(status, SENDCLOUD_STATUS_CANCELLED) || str_eq(status, SENDCLOUD_STATUS_FAILED);
}

int sendcloud_webhook_sign(const char *secret, const void *body, size_t len, buf *out)
{
    if (!secret || !*secret)
        return F3_EINVAL;
    uint8_t mac[CRYPTO_HMAC_SHA256_LEN];
    crypto_hmac_sha256(secret, strlen(secret), body, len, mac);
    int rc = crypto_hex_encode(mac, sizeof mac, out);
    crypto_wipe(mac, sizeof mac);
    return rc ? F3_ENOMEM : 0;
}

int sendcloud_webhook_verify(const char *secret, const void *raw_body, size_t len,
                             const char *signature)
{
    if (!secret || !*secret || !signature)
        return F3_EINVAL;
    size_t n = strlen(signature);
    if (n != 2 * CRYPTO_HMAC_SHA256_LEN)
        return F3_EINVAL;
    char given[2 * CRYPTO_HMAC_SHA256_LEN + 1];
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)signature[i]))
            return F3_EINVAL;
        given[i] = (char)tolower((unsigned char)signature[i]);
    }
    given[n] = '\0';
    buf ours;
    buf_init(&ours, 128);
    int rc = sendcloud_webhook_sign(secret, raw_body, len, &ours);
    if (rc == 0)
        rc = ours.len == n && crypto_equal(ours.data, given, n) ? 0 : F3_EINVAL;
    buf_free(&ours);
    return rc;
}

static void copy_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

int sendcloud_parcel_read(const json_t *parcel, sendcloud_status_event *out, err *e)
{
    int64_t id = 0, status_id = -1;
    const char *msg = NULL, *tn = NULL, *tu = NULL, *carrier = NULL, *ext = NULL;
    if (!json_is_object(parcel))
        return err_set(e, F3_EINVAL, "field 'parcel' must be an object");
    if (json_get_int(parcel, "id", &id, e) || json_get_int(parcel, "status.id", &status_id, e) ||
        json_opt_string(parcel, "status.message", &msg, "", e) ||
        json_opt_string(parcel, "tracking_number", &tn, "", e) ||
        json_opt_string(parcel, "tracking_url", &tu, "", e) ||
        json_opt_string(parcel, "carrier.code", &carrier, "", e) ||
        json_opt_string(parcel, "external_reference", &ext, "", e))
        return F3_EINVAL;
    if (id <= 0)
        return err_set(e, F3_EINVAL, "field 'parcel.id' must be a positive integer");
    out->parcel_id = id;
    out->status_id = status_id;
    copy_text(out->status, sizeof out->status, sendcloud_status_from_id(status_id));
    copy_text(out->status_message, sizeof out->status_message, msg);
    copy_text(out->tracking_number, sizeof out->tracking_number, tn);
    copy_text(out->tracking_url, sizeof out->tracking_url, tu);
    copy_text(out->carrier, sizeof out->carrier, carrier);
    copy_text(out->external_reference, sizeof out->external_reference, ext);
    return 0;
}

int sendcloud_webhook_parse(const char *body, size_t len, sendcloud_status_event *out, err *e)
{
    memset(out, 0, sizeof *out);
    out->status_id = -1;
    json_t *doc = NULL, *parcel = NULL;
    const char *action = NULL;
    int64_t ts = 0;
    int rc = json_parse(body, len, &doc, e);
    if (rc)
        goto out;
    if (!json_is_object(doc)) {
        rc = err_set(e, F3_EINVAL, "webhook body must be a JSON object");
        goto out;
    }
    if ((rc = json_get_string(doc, "action", &action, e)) ||
        (rc = json_opt_int(doc, "timestamp", &ts, 0, e)))
        goto out;
    copy_text(out->action, sizeof out->action, action);
    /* Seconds or milliseconds (spec §3.9: the unit is not confirmed). */
    out->timestamp_ms = ts > 0 && ts < 100000000000LL ? ts * 1000 : ts;
    if (!str_eq(action, SENDCLOUD_ACTION_PARCEL))
        goto out;
    int64_t check;
    /* Checked through the whole path first, so that messages name "parcel.id". */
    if ((rc = json_get_object(doc, "parcel", &parcel, e)) ||
        (rc = json_get_int(doc, "parcel.id", &check, e)) ||
        (rc = json_get_int(doc, "parcel.status.id", &check, e)))
        goto out;
    if ((rc = sendcloud_parcel_read(parcel, out, e)))
        goto out;
    err_clear(e);
out:
    json_decref(doc);
    if (rc)
        rc = F3_EINVAL;
    return rc;
}

void sendcloud_webhook_dedupe_key(const sendcloud_status_event *ev, char out[96])
{
    snprintf(out, 96, "%" PRId64 ":%" PRId64 ":%" PRId64, ev->parcel_id, ev->status_id,
             ev->timestamp_ms);
}
