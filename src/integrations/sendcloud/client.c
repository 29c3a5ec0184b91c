/*
 * client.c - Sendcloud API calls over the shared HTTP client (see client.h).
 *
 * Builds the v3 and v2 request bodies, adds Basic authentication, reads both error
 * bodies into messages and turns answers into sendcloud_shipment. It never retries or
 * sleeps and never logs a key or a customer's address.
 */
#include "integrations/sendcloud/client.h"

#include "core/crypto.h"
#include "core/json.h"
#include "core/str.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_MAX 4096

struct sendcloud_client {
    char *base; /* no trailing slash */
    char *auth; /* "Authorization: Basic ..." */
    sendcloud_api_version version;
    long timeout_ms;
};

int sendcloud_api_version_parse(const char *text)
{
    if (!text || !*text || str_case_eq(text, "v3") || str_eq(text, "3"))
        return SENDCLOUD_API_V3;
    if (str_case_eq(text, "v2") || str_eq(text, "2"))
        return SENDCLOUD_API_V2;
    return -1;
}

void sendcloud_client_free(sendcloud_client *c)
{
    if (!c)
        return;
    free(c->base);
    if (c->auth)
        crypto_wipe(c->auth, strlen(c->auth));
    free(c->auth);
    free(c);
}

static int make_auth(const sendcloud_client_opts *o, buf *line)
{
    buf pair;
    buf_init(&pair, 4096);
    int rc = buf_printf(&pair, "%s:%s", o->public_key, o->secret_key);
    if (rc == 0)
        rc = buf_puts(line, "Authorization: Basic");
    if (rc == 0)
        rc = buf_putc(line, ' ');
    if (rc == 0)
        rc = crypto_base64_encode(pair.data, pair.len, false, line);
    if (pair.data)
        crypto_wipe(pair.data, pair.len);
    buf_free(&pair);
    return rc;
}

sendcloud_client *sendcloud_client_new(const sendcloud_client_opts *o, err *e)
{
    const char *base = o->base_url && *o->base_url ? o->base_url : SENDCLOUD_DEFAULT_API_URL;
    int version = sendcloud_api_version_parse(o->api_version);
    if (!o->public_key || !*o->public_key || !o->secret_key || !*o->secret_key) {
        err_set(e, F3_EINVAL, "Sendcloud needs a public key and a secret key");
        return NULL;
    }
    if (strchr(o->public_key, ':')) {
        err_set(e, F3_EINVAL, "Sendcloud public key must not contain ':'");
        return NULL;
    }
    if (version < 0) {
        err_set(e, F3_EINVAL, "SENDCLOUD_API_VERSION: must be v3 or v2");
        return NULL;
    }
    if (!str_starts_with(base, "http://") && !str_starts_with(base, "https://")) {
        err_set(e, F3_EINVAL, "SENDCLOUD_API_URL: must be an http:// or https:// URL");
        return NULL;
    }
    sendcloud_client *c = calloc(1, sizeof *c);
    buf auth;
    buf_init(&auth, 8192);
    if (!c || make_auth(o, &auth) != 0 || !(c->base = str_dup(base)) ||
        !(c->auth = buf_detach(&auth))) {
        if (auth.data)
            crypto_wipe(auth.data, auth.len);
        buf_free(&auth);
        sendcloud_client_free(c);
        err_set(e, F3_ENOMEM, "out of memory");
        return NULL;
    }
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    c->version = (sendcloud_api_version)version;
    c->timeout_ms = o->timeout_ms;
    return c;
}

sendcloud_api_version sendcloud_client_version(const sendcloud_client *c)
{
    return c->version;
}

void sendcloud_shipment_free(sendcloud_shipment *s)
{
    if (!s)
        return;
    free(s->shipment_id);
    free(s->tracking_number);
    free(s->tracking_url);
    free(s->carrier);
    free(s->status);
    free(s->status_message);
    free(s->external_reference);
    memset(s, 0, sizeof *s);
    s->status_id = -1;
}

static void call_reset(sendcloud_call *call)
{
    if (call)
        *call = (sendcloud_call){.status = 0, .failure = HTTP_PERMANENT, .retry_after_ms = -1};
}

static void note_response(const http_client_response *rs, sendcloud_call *call)
{
    if (!call)
        return;
    call->status = rs->status;
    call->failure = rs->failure;
    call->retry_after_ms = rs->retry_after_ms;
    if (rs->status == 429 && call->retry_after_ms < 0)
        call->retry_after_ms = SENDCLOUD_DEFAULT_RETRY_MS;
}

/* Appends Sendcloud's own error text from a v2 or v3 error body, if there is one. */
static void provider_error(const char *body, buf *out)
{
    json_t *doc = json_loads(body, 0, NULL);
    const char *text = NULL;
    json_t *errors = json_object_get(doc, "errors");
    if (json_is_array(errors) && json_array_size(errors) > 0) {
        json_t *first = json_array_get(errors, 0);
        text = json_string_value(json_object_get(first, "detail"));
        if (!text)
            text = json_string_value(json_object_get(first, "code"));
    } else if (json_is_object(json_object_get(doc, "error"))) {
        text = json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
    }
    if (text && *text) {
        buf_puts(out, ": ");
        /* Keep messages one line and bounded. */
        for (size_t i = 0; i < 200 && text[i]; i++)
            buf_putc(out, (text[i] == '\n' || text[i] == '\r') ? ' ' : text[i]);
    }
    json_decref(doc);
}

/* One JSON call to base + path. *out receives the parsed 2xx body (or, when
 * keep_error_body, the parsed body of an error answer too, if it is JSON). */
static int api_call(sendcloud_client *c, const char *method, const char *path, const json_t *body,
                    json_t **out, bool keep_error_body, sendcloud_call *call, err *e)
{
    buf url;
    buf_init(&url, URL_MAX);
    http_client_response rs;
    memset(&rs, 0, sizeof rs);
    rs.retry_after_ms = -1;
    int rc;
    call_reset(call);
    *out = NULL;
    if (buf_printf(&url, "%s%s", c->base, path)) {
        rc = err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    const char *headers[] = {c->auth, NULL};
    rc = http_client_json(method, buf_cstr(&url), headers, body, c->timeout_ms, out, &rs, e);
    note_response(&rs, call);
    if (rc && rs.status >= 400) {
        buf msg;
        buf_init(&msg, ERR_MSG_MAX);
        buf_puts(&msg, e ? e->msg : "");
        provider_error(buf_cstr(&rs.body), &msg);
        if (e)
            snprintf(e->msg, sizeof e->msg, "%s", buf_cstr(&msg));
        buf_free(&msg);
        if (keep_error_body)
            *out = json_loads(buf_cstr(&rs.body), 0, NULL);
    }
out:
    http_client_response_free(&rs);
    buf_free(&url);
    return rc;
}

static char *dup_nonempty(const char *s)
{
    return s && *s ? str_dup(s) : NULL;
}

/* Fills out from a v2 parcel object. */
static int shipment_from_parcel(const json_t *parcel, sendcloud_shipment *out, err *e)
{
    sendcloud_status_event ev;
    memset(&ev, 0, sizeof ev);
    if (sendcloud_parcel_read(parcel, &ev, e))
        return err_set(e, F3_EPERMANENT, "Sendcloud answer: unusable parcel (%s)", e ? e->msg : "");
    char id[32];
    snprintf(id, sizeof id, "%" PRId64, ev.parcel_id);
    out->shipment_id = str_dup(id);
    out->parcel_id = ev.parcel_id;
    out->tracking_number = dup_nonempty(ev.tracking_number);
    out->tracking_url = dup_nonempty(ev.tracking_url);
    out->carrier = dup_nonempty(ev.carrier);
    out->status = str_dup(ev.status);
    out->status_id = ev.status_id;
    out->status_message = dup_nonempty(ev.status_message);
    out->external_reference = dup_nonempty(ev.external_reference);
    if (!out->shipment_id || !out->status)
        return err_set(e, F3_ENOMEM, "out of memory");
    return 0;
}

/* Fills out from a v3 shipment object ("data"). */
static int shipment_from_v3(const json_t *data, sendcloud_shipment *out, err *e)
{
    const char *id = NULL, *code = NULL, *msg = NULL, *tn = NULL, *tu = NULL, *carrier = NULL,
               *ext = NULL;
    json_t *parcels = NULL;
    int64_t parcel_id = 0, status_id = -1;
    if (!json_is_object(data) || json_get_string(data, "id", &id, e) ||
        json_get_array(data, "parcels", &parcels, e) || json_array_size(parcels) == 0)
        return err_set(e, F3_EPERMANENT, "Sendcloud answer: shipment without id or parcels");
    json_t *p = json_array_get(parcels, 0);
    if (json_get_int(p, "id", &parcel_id, e) || json_opt_string(p, "status.code", &code, NULL, e) ||
        json_opt_int(p, "status.id", &status_id, -1, e) ||
        json_opt_string(p, "status.message", &msg, NULL, e) ||
        json_opt_string(p, "tracking_number", &tn, NULL, e) ||
        json_opt_string(p, "tracking_url", &tu, NULL, e) ||
        json_opt_string(data, "carrier.code", &carrier, NULL, e) ||
        json_opt_string(data, "external_reference_id", &ext, NULL, e))
        return err_set(e, F3_EPERMANENT, "Sendcloud answer: unusable parcel (%s)", e ? e->msg : "");
    const char *status =
        code ? sendcloud_status_from_code(code) : sendcloud_status_from_id(status_id);
    out->shipment_id = str_dup(id);
    out->parcel_id = parcel_id;
    out->tracking_number = dup_nonempty(tn);
    out->tracking_url = dup_nonempty(tu);
    out->carrier = dup_nonempty(carrier);
    out->status = str_dup(status);
    out->status_id = status_id >= 0 ? status_id : sendcloud_status_id_of(status);
    out->status_message = dup_nonempty(msg);
    out->external_reference = dup_nonempty(ext);
    if (!out->shipment_id || !out->status)
        return err_set(e, F3_ENOMEM, "out of memory");
    return 0;
}

/* minor units -> "54.90" with exp decimals (0..3). */
static void money_text(int64_t minor, int exp, char out[32])
{
    if (exp < 0 || exp > 3)
        exp = 2;
    int64_t div = exp == 0 ? 1 : exp == 1 ? 10 : exp == 2 ? 100 : 1000;
    if (exp == 0)
        snprintf(out, 32, "%" PRId64, minor);
    else
        snprintf(out, 32, "%" PRId64 ".%0*" PRId64, minor / div, exp, minor % div);
}

static void weight_kg(int64_t grams, char out[32])
{
    snprintf(out, 32, "%" PRId64 ".%03" PRId64, grams / 1000, grams % 1000);
}

static int check_request(const sendcloud_shipment_request *rq, err *e)
{
    const sendcloud_address *a = &rq->to;
    if (!rq->external_reference || !*rq->external_reference)
        return err_set(e, F3_EINVAL, "shipment needs an external reference (the order id)");
    if (!a->name || !*a->name || !a->address_line_1 || !*a->address_line_1 || !a->postal_code ||
        !*a->postal_code || !a->city || !*a->city || !a->country_code ||
        strlen(a->country_code) != 2)
        return err_set(e, F3_EINVAL,
                       "shipment address needs name, address line 1, postal code, city and a "
                       "two-letter country code");
    if (rq->weight_grams <= 0 || rq->weight_grams > 1000000)
        return err_set(e, F3_EINVAL, "shipment weight must be between 1 g and 1000 kg");
    if (rq->total_minor >= 0 && (!rq->currency || strlen(rq->currency) != 3))
        return err_set(e, F3_EINVAL, "shipment total needs a three-letter currency");
    return 0;
}

/* Sets key to s when s is a non-empty string. */
static void set_text(json_t *obj, const char *key, const char *s)
{
    if (s && *s)
        json_object_set_new(obj, key, json_string(s));
}

static json_t *v3_body(const sendcloud_shipment_request *rq)
{
    const sendcloud_address *a = &rq->to;
    json_t *to = json_object();
    set_text(to, "name", a->name);
    set_text(to, "company_name", a->company);
    set_text(to, "address_line_1", a->address_line_1);
    set_text(to, "house_number", a->house_number);
    set_text(to, "address_line_2", a->address_line_2);
    set_text(to, "postal_code", a->postal_code);
    set_text(to, "city", a->city);
    set_text(to, "country_code", a->country_code);
    set_text(to, "state_province_code", a->state_code);
    set_text(to, "phone_number", a->phone);
    set_text(to, "email", a->email);
    char kg[32];
    weight_kg(rq->weight_grams, kg);
    json_t *body =
        json_pack("{s:o,s:[{s:{s:s,s:s}}],s:s,s:{s:s,s:i}}", "to_address", to, "parcels", "weight",
                  "value", kg, "unit", "kg", "external_reference_id", rq->external_reference,
                  "label_details", "mime_type", "application/pdf", "dpi", 72);
    if (!body)
        return NULL;
    json_object_set_new(body, "from_address",
                        rq->sender_address_id > 0 ? json_pack("{s:I}", "sender_address_id",
                                                              (json_int_t)rq->sender_address_id)
                                                  : json_object());
    if (rq->shipping_option_code && *rq->shipping_option_code)
        json_object_set_new(body, "ship_with",
                            json_pack("{s:s,s:{s:s}}", "type", "shipping_option_code", "properties",
                                      "shipping_option_code", rq->shipping_option_code));
    set_text(body, "order_number", rq->order_number);
    if (rq->total_minor >= 0) {
        char money[32];
        money_text(rq->total_minor, rq->currency_exponent, money);
        json_object_set_new(body, "total_order_price",
                            json_pack("{s:s,s:s}", "currency", rq->currency, "value", money));
    }
    return body;
}

static json_t *v2_body(const sendcloud_shipment_request *rq)
{
    const sendcloud_address *a = &rq->to;
    json_t *p = json_object();
    if (!p)
        return NULL;
    set_text(p, "name", a->name);
    set_text(p, "company_name", a->company);
    set_text(p, "address", a->address_line_1);
    set_text(p, "house_number", a->house_number);
    set_text(p, "address_2", a->address_line_2);
    set_text(p, "postal_code", a->postal_code);
    set_text(p, "city", a->city);
    set_text(p, "country", a->country_code);
    set_text(p, "country_state", a->state_code);
    set_text(p, "telephone", a->phone);
    set_text(p, "email", a->email);
    json_object_set_new(p, "request_label", json_true());
    char kg[32];
    weight_kg(rq->weight_grams, kg);
    json_object_set_new(p, "weight", json_string(kg));
    set_text(p, "order_number", rq->order_number);
    set_text(p, "external_reference", rq->external_reference);
    if (rq->shipping_method_id > 0)
        json_object_set_new(p, "shipment",
                            json_pack("{s:I}", "id", (json_int_t)rq->shipping_method_id));
    if (rq->sender_address_id > 0)
        json_object_set_new(p, "sender_address", json_integer(rq->sender_address_id));
    if (rq->total_minor >= 0) {
        char money[32];
        money_text(rq->total_minor, rq->currency_exponent, money);
        json_object_set_new(p, "total_order_value", json_string(money));
        json_object_set_new(p, "total_order_value_currency", json_string(rq->currency));
    }
    return json_pack("{s:o}", "parcel", p);
}

int sendcloud_create_shipment(sendcloud_client *c, const sendcloud_shipment_request *rq,
                              sendcloud_shipment *out, sendcloud_call *call, err *e)
{
    memset(out, 0, sizeof *out);
    out->status_id = -1;
    call_reset(call);
    int rc = check_request(rq, e);
    if (rc)
        return rc;
    bool v3 = c->version == SENDCLOUD_API_V3;
    json_t *body = v3 ? v3_body(rq) : v2_body(rq), *doc = NULL;
    if (!body)
        return err_set(e, F3_ENOMEM, "out of memory");
    sendcloud_call seen;
    rc = api_call(c, "POST", v3 ? "/api/v3/shipments/announce" : "/api/v2/parcels", body, &doc,
                  true, &seen, e);
    if (call)
        *call = seen;
    /* 409: the external reference was used before; the answer carries that shipment. */
    bool existing = rc == F3_EPERMANENT && seen.status == 409;
    if (rc && !existing)
        goto out;
    json_t *obj = json_object_get(doc, v3 ? "data" : "parcel");
    if (!obj) {
        rc = existing ? rc
                      : err_set(e, F3_EPERMANENT, "Sendcloud answer: no %s object",
                                v3 ? "data" : "parcel");
        goto out;
    }
    rc = v3 ? shipment_from_v3(obj, out, e) : shipment_from_parcel(obj, out, e);
    if (rc == 0 && out->external_reference &&
        !str_eq(out->external_reference, rq->external_reference))
        rc = err_set(e, F3_EPERMANENT, "Sendcloud answered with another shipment's reference");
    out->existing = existing;
    if (rc == 0)
        err_clear(e);
out:
    json_decref(body);
    json_decref(doc);
    return rc;
}

/* Ids go into paths: letters, digits, '-' and '_' only. */
static bool id_valid(const char *id, bool digits_only)
{
    if (!id || !*id || strlen(id) > 64)
        return false;
    for (const char *p = id; *p; p++)
        if (!(isdigit((unsigned char)*p) ||
              (!digits_only && (isalpha((unsigned char)*p) || *p == '-' || *p == '_'))))
            return false;
    return true;
}

int sendcloud_get_shipment(sendcloud_client *c, const char *shipment_id, sendcloud_shipment *out,
                           sendcloud_call *call, err *e)
{
    memset(out, 0, sizeof *out);
    out->status_id = -1;
    call_reset(call);
    bool v3 = c->version == SENDCLOUD_API_V3;
    if (!id_valid(shipment_id, !v3))
        return err_set(e, F3_EINVAL, "malformed Sendcloud shipment id");
    char path[128];
    snprintf(path, sizeof path, v3 ? "/api/v3/shipments/%s" : "/api/v2/parcels/%s", shipment_id);
    json_t *doc = NULL;
    sendcloud_call seen;
    int rc = api_call(c, "GET", path, NULL, &doc, false, &seen, e);
    if (call)
        *call = seen;
    if (rc == F3_EPERMANENT && seen.status == 404)
        rc = F3_ENOTFOUND;
    if (rc)
        goto out;
    json_t *obj = json_object_get(doc, v3 ? "data" : "parcel");
    rc = !obj ? err_set(e, F3_EPERMANENT, "Sendcloud answer: no shipment object")
         : v3 ? shipment_from_v3(obj, out, e)
              : shipment_from_parcel(obj, out, e);
out:
    json_decref(doc);
    return rc;
}

int sendcloud_cancel_shipment(sendcloud_client *c, const char *shipment_id,
                              sendcloud_cancel_result *result, sendcloud_call *call, err *e)
{
    call_reset(call);
    bool v3 = c->version == SENDCLOUD_API_V3;
    if (!id_valid(shipment_id, !v3))
        return err_set(e, F3_EINVAL, "malformed Sendcloud shipment id");
    char path[128];
    snprintf(path, sizeof path, v3 ? "/api/v3/shipments/%s/cancel" : "/api/v2/parcels/%s/cancel",
             shipment_id);
    sendcloud_call seen;
    json_t *doc = NULL;
    int rc = api_call(c, "POST", path, NULL, &doc, false, &seen, e);
    if (call)
        *call = seen;
    if (rc == F3_EPERMANENT && seen.status == 404)
        rc = F3_ENOTFOUND;
    else if (rc == F3_EPERMANENT &&
             (seen.status == 409 || seen.status == 410 || (!v3 && seen.status == 400)))
        rc = F3_ECONFLICT;
    if (rc == 0)
        *result = seen.status == 202 ? SENDCLOUD_CANCEL_QUEUED : SENDCLOUD_CANCELLED;
    json_decref(doc);
    return rc;
}

int sendcloud_get_label(sendcloud_client *c, int64_t parcel_id, buf *pdf, sendcloud_call *call,
                        err *e)
{
    call_reset(call);
    if (parcel_id <= 0)
        return err_set(e, F3_EINVAL, "malformed Sendcloud parcel id");
    buf url;
    buf_init(&url, URL_MAX);
    http_client_response rs;
    memset(&rs, 0, sizeof rs);
    int rc;
    if (buf_printf(&url, "%s/api/v%d/parcels/%" PRId64 "/documents/label", c->base, (int)c->version,
                   parcel_id)) {
        rc = err_set(e, F3_ENOMEM, "out of memory");
        goto out;
    }
    const char *headers[] = {c->auth, "Accept: application/pdf", NULL};
    http_client_request rq = {.method = "GET",
                              .url = buf_cstr(&url),
                              .headers = headers,
                              .timeout_ms = c->timeout_ms,
                              .max_response = (size_t)8 * 1024 * 1024};
    rc = http_client_send(&rq, &rs, e);
    note_response(&rs, call);
    if (rc == F3_EPERMANENT && rs.status == 404)
        rc = F3_ENOTFOUND;
    if (rc)
        goto out;
    if (rs.body.len < 5 || memcmp(rs.body.data, "%PDF-", 5) != 0) {
        rc = err_set(e, F3_EPERMANENT, "Sendcloud label of parcel %" PRId64 " is not a PDF",
                     parcel_id);
        goto out;
    }
    if (buf_append(pdf, rs.body.data, rs.body.len))
        rc = err_set(e, F3_ETOOBIG, "label too large");
out:
    http_client_response_free(&rs);
    buf_free(&url);
    return rc;
}

int sendcloud_check_credentials(sendcloud_client *c, int *count, sendcloud_call *call, err *e)
{
    sendcloud_call seen;
    json_t *doc = NULL;
    int rc = api_call(c, "GET",
                      c->version == SENDCLOUD_API_V3 ? "/api/v3/parcels/statuses"
                                                     : "/api/v2/parcels/statuses",
                      NULL, &doc, false, &seen, e);
    if (call)
        *call = seen;
    if (rc == F3_EPERMANENT && (seen.status == 401 || seen.status == 403))
        rc = err_set(e, F3_EPERMANENT, "Sendcloud credentials rejected (HTTP %ld)", seen.status);
    json_t *list = json_is_array(doc) ? doc : json_object_get(doc, "data");
    if (rc == 0 && !json_is_array(list))
        rc = err_set(e, F3_EPERMANENT, "Sendcloud answer: status list is not an array");
    if (rc == 0 && count)
        *count = (int)json_array_size(list);
    json_decref(doc);
    return rc;
}
