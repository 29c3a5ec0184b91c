/*
 * api.c - the simulated Sendcloud API: v3 shipments (announce, read, cancel), v2 parcels
 * (create, read, cancel), label documents of both versions and the status lists.
 *
 * Every API request passes one gate, in Sendcloud's order: configured latency, injected
 * faults, then HTTP Basic authentication (401). Errors use the body of the version the
 * route belongs to: v2 {"error":{...}}, v3 {"errors":[...]}. A v3 announce reusing an
 * external_reference_id answers 409 with the existing shipment, as Sendcloud documents;
 * v2 does the same with its "parcel" object (the simulator's choice: the v2 docs only say
 * the field must be unique).
 */
#include "sim/sendcloud/sim_internal.h"

#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "sim/common/wait.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINK_BASE "https://panel.sendcloud.sc"

int sc_error_v2(http_response *res, int status, const char *request, const char *message)
{
    return http_res_json(res, status,
                         json_pack("{s:{s:i,s:s,s:s}}", "error", "code", status, "message", message,
                                   "request", request));
}

int sc_error_v3(http_response *res, int status, const char *code, const char *detail)
{
    char st[8];
    snprintf(st, sizeof st, "%d", status);
    return http_res_json(
        res, status,
        json_pack("{s:[{s:s,s:s,s:s}]}", "errors", "status", st, "code", code, "detail", detail));
}

static int api_error(http_response *res, int version, int status, const char *path,
                     const char *code, const char *message)
{
    return version == 2 ? sc_error_v2(res, status, path, message)
                        : sc_error_v3(res, status, code, message);
}

sc_parcel *sc_find_parcel(sendcloud_sim *s, int64_t id)
{
    for (size_t i = 0; i < s->nparcels; i++)
        if (s->parcels[i].id == id)
            return &s->parcels[i];
    return NULL;
}

static sc_parcel *find_shipment(sendcloud_sim *s, const char *shipment_id)
{
    for (size_t i = 0; shipment_id && i < s->nparcels; i++)
        if (str_eq(s->parcels[i].shipment_id, shipment_id))
            return &s->parcels[i];
    return NULL;
}

static sc_parcel *find_reference(sendcloud_sim *s, const char *ref)
{
    for (size_t i = 0; ref && *ref && i < s->nparcels; i++)
        if (str_eq(json_string_value(json_object_get(s->parcels[i].obj, "external_reference")),
                   ref))
            return &s->parcels[i];
    return NULL;
}

/* True when the Authorization header carries the configured public:secret. Lock held. */
static bool authorized(const sendcloud_sim *s, const char *header)
{
    if (!header || !str_starts_with(header, "Basic "))
        return false;
    buf plain, want;
    buf_init(&plain, 4096);
    buf_init(&want, 4096);
    err e;
    const char *b64 = header + 6;
    bool ok = crypto_base64_decode(b64, strlen(b64), &plain, &e) == 0 &&
              buf_printf(&want, "%s:%s", s->public_key, s->secret_key) == 0 &&
              crypto_str_equal(buf_cstr(&plain), buf_cstr(&want));
    if (plain.data)
        crypto_wipe(plain.data, plain.len);
    if (want.data)
        crypto_wipe(want.data, want.len);
    buf_free(&plain);
    buf_free(&want);
    return ok;
}

/* The gate in front of every API route; counts the request under `name`. True when the
 * request may proceed; otherwise res holds the answer. */
static bool api_gate(sendcloud_sim *s, http_request *req, http_response *res, const char *name,
                     int version)
{
    pthread_mutex_lock(&s->lock);
    json_t *n = json_object_get(s->stats, name);
    json_object_set_new(s->stats, name, json_integer(n ? json_integer_value(n) + 1 : 1));
    long latency = s->latency_ms;
    sim_fault f;
    bool faulty = sim_fault_take(&s->fault, NULL, &f);
    bool ok = authorized(s, http_req_header(req, "Authorization"));
    pthread_mutex_unlock(&s->lock);
    sim_sleep_ms(latency);
    const char *path = http_req_path(req) + 1;
    if (faulty && sim_fault_act(&f, res)) {
        const char *msg = f.status == 429   ? "Too many requests"
                          : f.status >= 500 ? "Internal server error"
                                            : "Invalid data: to_address.postal_code is invalid";
        api_error(res, version, f.status, path, f.status >= 500 ? "server_error" : "invalid", msg);
        return false;
    }
    if (!ok) {
        api_error(res, version, 401, path, "authentication_failed", "Invalid username/password.");
        return false;
    }
    return true;
}

/* ---- parcels ------------------------------------------------------------------------ */

/* The fields a new parcel is made of, in v2 names, borrowed from the request. */
typedef struct parcel_fields {
    const char *name, *company, *address, *house_number, *address_2, *city, *postal_code;
    const char *country, *state, *telephone, *email, *weight, *order_number, *reference;
    const char *carrier, *method_name;
    int64_t method_id;
} parcel_fields;

static void put(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, v ? json_string(v) : json_null());
}

/* Makes and stores a parcel with a label (status Ready to send). Lock held. */
static sc_parcel *create_parcel(sendcloud_sim *s, int version, const parcel_fields *f)
{
    if (s->nparcels == s->parcels_cap) {
        size_t cap = s->parcels_cap ? s->parcels_cap * 2 : 32;
        sc_parcel *p = realloc(s->parcels, cap * sizeof *p);
        if (!p)
            return NULL;
        s->parcels = p;
        s->parcels_cap = cap;
    }
    sc_parcel *p = &s->parcels[s->nparcels];
    memset(p, 0, sizeof *p);
    p->id = s->next_parcel_id++;
    p->version = version;
    uuid_v4(p->shipment_id);
    char tn[32], url[256], link[256], when[CLOCK_ISO_LEN];
    snprintf(tn, sizeof tn, "3SSIM%010" PRId64, p->id);
    snprintf(url, sizeof url, "https://tracking.sendcloud.sc/forward?carrier=%s&code=%s",
             f->carrier, tn);
    snprintf(link, sizeof link, LINK_BASE "/api/v%d/parcels/%" PRId64 "/documents/label", version,
             p->id);
    clock_now_iso(when);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(p->id));
    put(o, "name", f->name);
    put(o, "company_name", f->company);
    put(o, "address", f->address);
    put(o, "house_number", f->house_number);
    put(o, "address_2", f->address_2);
    put(o, "city", f->city);
    put(o, "postal_code", f->postal_code);
    json_object_set_new(o, "country", json_pack("{s:s}", "iso_2", f->country));
    put(o, "country_state", f->state);
    put(o, "telephone", f->telephone);
    put(o, "email", f->email);
    put(o, "weight", f->weight);
    put(o, "order_number", f->order_number);
    put(o, "external_reference", f->reference);
    json_object_set_new(o, "tracking_number", json_string(tn));
    json_object_set_new(o, "tracking_url", json_string(url));
    json_object_set_new(o, "carrier", json_pack("{s:s}", "code", f->carrier));
    json_object_set_new(
        o, "shipment",
        json_pack("{s:I,s:s}", "id", (json_int_t)f->method_id, "name", f->method_name));
    json_object_set_new(o, "documents",
                        json_pack("[{s:s,s:s,s:s}]", "type", "label", "size", "a6", "link", link));
    json_object_set_new(o, "label",
                        json_pack("{s:s,s:[ssss]}", "label_printer", link, "normal_printer", link,
                                  link, link, link));
    json_object_set_new(o, "date_created", json_string(when));
    json_object_set_new(o, "shipment_uuid", json_string(p->shipment_id));
    p->obj = o;
    s->nparcels++;
    sc_set_status(s, p, SC_STATUS_READY);
    return p;
}

static json_t *v3_shipment(const sc_parcel *p)
{
    const json_t *o = p->obj;
    int64_t status_id = json_integer_value(json_object_get(json_object_get(o, "status"), "id"));
    json_t *to = json_object();
    json_object_set(to, "name", json_object_get(o, "name"));
    json_object_set(to, "address_line_1", json_object_get(o, "address"));
    json_object_set(to, "house_number", json_object_get(o, "house_number"));
    json_object_set(to, "postal_code", json_object_get(o, "postal_code"));
    json_object_set(to, "city", json_object_get(o, "city"));
    json_object_set(to, "country_code", json_object_get(json_object_get(o, "country"), "iso_2"));
    json_t *parcel = json_pack(
        "{s:I,s:{s:s,s:s},s:O,s:O,s:O,s:O,s:O}", "id", (json_int_t)p->id, "status", "code",
        sc_status_code(status_id), "message", sc_status_message(status_id), "tracking_number",
        json_object_get(o, "tracking_number"), "tracking_url", json_object_get(o, "tracking_url"),
        "documents", json_object_get(o, "documents"), "created_at",
        json_object_get(o, "date_created"), "announced_at", json_object_get(o, "date_created"));
    return json_pack(
        "{s:s,s:[o],s:{s:O,s:O},s:O,s:O,s:o,s:[]}", "id", p->shipment_id, "parcels", parcel,
        "carrier", "code", json_object_get(json_object_get(o, "carrier"), "code"), "name",
        json_object_get(json_object_get(o, "carrier"), "code"), "external_reference_id",
        json_object_get(o, "external_reference"), "order_number",
        json_object_get(o, "order_number"), "to_address", to, "errors");
}

/* Reads an optional string field; false when present but not a string. */
static bool opt_text(const json_t *obj, const char *path, const char **out)
{
    err e;
    return json_opt_string(obj, path, out, NULL, &e) == 0;
}

static bool blank(const char *s)
{
    return !s || !*s;
}

/* POST /api/v3/shipments/announce */
static int h_v3_announce(http_request *req, http_response *res, void *ctx)
{
    sendcloud_sim *s = ctx;
    if (!api_gate(s, req, res, "v3.announce", 3))
        return 0;
    json_t *body = NULL;
    if (http_req_json(req, &body, res))
        return 0;
    parcel_fields f = {.carrier = "postnl", .method_name = "PostNL Standard"};
    const char *code = NULL;
    char carrier[32] = "postnl";
    json_t *parcels = json_object_get(body, "parcels");
    int rc;
    if (!json_is_object(body) || !opt_text(body, "to_address.name", &f.name) ||
        !opt_text(body, "to_address.company_name", &f.company) ||
        !opt_text(body, "to_address.address_line_1", &f.address) ||
        !opt_text(body, "to_address.house_number", &f.house_number) ||
        !opt_text(body, "to_address.address_line_2", &f.address_2) ||
        !opt_text(body, "to_address.city", &f.city) ||
        !opt_text(body, "to_address.postal_code", &f.postal_code) ||
        !opt_text(body, "to_address.country_code", &f.country) ||
        !opt_text(body, "to_address.state_province_code", &f.state) ||
        !opt_text(body, "to_address.phone_number", &f.telephone) ||
        !opt_text(body, "to_address.email", &f.email) ||
        !opt_text(body, "order_number", &f.order_number) ||
        !opt_text(body, "external_reference_id", &f.reference) ||
        !opt_text(body, "ship_with.properties.shipping_option_code", &code) ||
        !json_is_array(parcels) || json_array_size(parcels) == 0 ||
        !opt_text(json_array_get(parcels, 0), "weight.value", &f.weight) || blank(f.weight)) {
        rc = sc_error_v3(res, 400, "invalid",
                         "Invalid data: to_address and parcels[].weight "
                         "are required");
        goto out;
    }
    if (blank(f.name) || blank(f.address) || blank(f.city) || blank(f.postal_code) ||
        blank(f.country) || strlen(f.country) != 2) {
        rc = sc_error_v3(res, 400, "invalid",
                         "to_address: name, address_line_1, city, postal_code and "
                         "country_code are required");
        goto out;
    }
    if (code) {
        const char *colon = strchr(code, ':');
        size_t n = colon ? (size_t)(colon - code) : strlen(code);
        if (n == 0 || n >= sizeof carrier) {
            rc = sc_error_v3(res, 400, "invalid", "ship_with: unknown shipping_option_code");
            goto out;
        }
        memcpy(carrier, code, n);
        carrier[n] = '\0';
        f.carrier = carrier;
        f.method_name = code;
    }
    pthread_mutex_lock(&s->lock);
    sc_parcel *p = find_reference(s, f.reference);
    bool existing = p != NULL;
    if (!p)
        p = create_parcel(s, 3, &f);
    json_t *data = p ? v3_shipment(p) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!data)
        rc = sc_error_v3(res, 500, "server_error", "out of memory");
    else if (existing)
        rc = http_res_json(res, 409,
                           json_pack("{s:[{s:s,s:s,s:s}],s:o}", "errors", "status", "409", "code",
                                     "duplicate", "detail",
                                     "external_reference_id is already in use", "data", data));
    else
        rc = http_res_json(res, 201, json_pack("{s:o}", "data", data));
out:
    json_decref(body);
    return rc;
}

/* POST /api/v2/parcels */
static int h_v2_create(http_request *req, http_response *res, void *ctx)
{
    sendcloud_sim *s = ctx;
    if (!api_gate(s, req, res, "v2.create", 2))
        return 0;
    json_t *body = NULL;
    if (http_req_json(req, &body, res))
        return 0;
    parcel_fields f = {.carrier = "postnl", .method_name = "PostNL Standard", .method_id = 8};
    json_t *p_in = json_object_get(body, "parcel");
    bool label = false;
    int64_t method = 0;
    err e;
    int rc;
    if (!json_is_object(p_in) || !opt_text(p_in, "name", &f.name) ||
        !opt_text(p_in, "company_name", &f.company) || !opt_text(p_in, "address", &f.address) ||
        !opt_text(p_in, "house_number", &f.house_number) ||
        !opt_text(p_in, "address_2", &f.address_2) || !opt_text(p_in, "city", &f.city) ||
        !opt_text(p_in, "postal_code", &f.postal_code) || !opt_text(p_in, "country", &f.country) ||
        !opt_text(p_in, "country_state", &f.state) || !opt_text(p_in, "telephone", &f.telephone) ||
        !opt_text(p_in, "email", &f.email) || !opt_text(p_in, "weight", &f.weight) ||
        !opt_text(p_in, "order_number", &f.order_number) ||
        !opt_text(p_in, "external_reference", &f.reference) ||
        json_opt_bool(p_in, "request_label", &label, false, &e) ||
        json_opt_int(p_in, "shipment.id", &method, 0, &e)) {
        rc = sc_error_v2(res, 400, "api/v2/parcels", "Invalid parcel data");
        goto out;
    }
    if (blank(f.name) || blank(f.address) || blank(f.city) || blank(f.postal_code) ||
        blank(f.country) || strlen(f.country) != 2 || !label) {
        rc = sc_error_v2(res, 400, "api/v2/parcels",
                         "name, address, city, postal_code, country and request_label=true are "
                         "required");
        goto out;
    }
    if (method > 0)
        f.method_id = method;
    if (blank(f.weight))
        f.weight = "1.000";
    pthread_mutex_lock(&s->lock);
    sc_parcel *p = find_reference(s, f.reference);
    bool existing = p != NULL;
    if (!p)
        p = create_parcel(s, 2, &f);
    json_t *parcel = p ? json_deep_copy(p->obj) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!parcel)
        rc = sc_error_v2(res, 500, "api/v2/parcels", "out of memory");
    else if (existing)
        rc = http_res_json(res, 409,
                           json_pack("{s:{s:i,s:s,s:s},s:o}", "error", "code", 409, "message",
                                     "external_reference is already in use", "request",
                                     "api/v2/parcels", "parcel", parcel));
    else
        rc = http_res_json(res, 200, json_pack("{s:o}", "parcel", parcel));
out:
    json_decref(body);
    return rc;
}

static int64_t param_id(http_request *req)
{
    int64_t id = 0;
    return str_to_int64(http_req_param(req, "id"), &id) == 0 && id > 0 ? id : 0;
}

static int h_v3_get(http_request *req, http_response *res, void *ctx)
{
    sendcloud_sim *s = ctx;
    if (!api_gate(s, req, res, "v3.get", 3))
        return 0;
    pthread_mutex_lock(&s->lock);
    sc_parcel *p = find_shipment(s, http_req_param(req, "id"));
    json_t *data = p ? v3_shipment(p) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!data)
        return sc_error_v3(res, 404, "not_found", "No Shipment matches the given query.");
    return http_res_json(res, 200, json_pack("{s:o}", "data", data));
}

static int h_v2_get(http_request *req, http_response *res, void *ctx)
{
    sendcloud_sim *s = ctx;
    if (!api_gate(s, req, res, "v2.get", 2))
        return 0;
    pthread_mutex_lock(&s->lock);
    sc_parcel *p = sc_find_parcel(s, param_id(req));
    json_t *parcel = p ? json_deep_copy(p->obj) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!parcel)
        return sc_error_v2(res, 404, "api/v2/parcels", "Parcel not found");
    return http_res_json(res, 200, json_pack("{s:o}", "parcel", parcel));
}

typedef enum cancel_outcome {
    CANCEL_OK,
    CANCEL_TOO_LATE,
    CANCEL_FAILED_ANNOUNCEMENT
} cancel_outcome;

/* Cancels p unless it is with the carrier already (or cancelled). Lock held. */
static cancel_outcome cancel_parcel(sendcloud_sim *s, sc_parcel *p)
{
    int64_t st = json_integer_value(json_object_get(json_object_get(p->obj, "status"), "id"));
    if (st == 1002)
        return CANCEL_FAILED_ANNOUNCEMENT;
    if (!(st == 999 || st == SC_STATUS_READY || st == 1 || st == 13 || st == 1001))
        return CANCEL_TOO_LATE;
    sc_set_status(s, p, SC_STATUS_CANCELLED);
    return CANCEL_OK;
}

static int h_v3_cancel(http_request *req, http_response *res, void *ctx)
{
    sendcloud_sim *s = ctx;
    if (!api_gate(s, req, res, "v3.cancel", 3))
        return 0;
    pthread_mutex_lock(&s->lock);
    sc_parcel *p = find_shipment(s, http_req_param(req, "id"));
    cancel_outcome out = p ? cancel_parcel(s, p) : CANCEL_OK;
    pthread_mutex_unlock(&s->lock);
    if (!p)
        return sc_error_v3(res, 404, "not_found", "No Shipment matches the given query.");
    if (out != CANCEL_OK)
        return sc_error_v3(res, 409, "conflict",
                           "Shipment cannot be cancelled: it was handed to the carrier or is "
                           "cancelled already");
    return http_res_json(res, 200,
                         json_pack("{s:{s:s,s:s}}", "data", "status", "cancelled", "message",
                                   "Shipment has been cancelled"));
}

static int h_v2_cancel(http_request *req, http_response *res, void *ctx)
{
    sendcloud_sim *s = ctx;
    if (!api_gate(s, req, res, "v2.cancel", 2))
        return 0;
    pthread_mutex_lock(&s->lock);
    sc_parcel *p = sc_find_parcel(s, param_id(req));
    cancel_outcome out = p ? cancel_parcel(s, p) : CANCEL_OK;
    pthread_mutex_unlock(&s->lock);
    if (!p)
        return sc_error_v2(res, 404, "api/v2/parcels", "Parcel not found");
    if (out == CANCEL_FAILED_ANNOUNCEMENT)
        return sc_error_v2(res, 410, "api/v2/parcels", "The announcement of this parcel failed");
    if (out == CANCEL_TOO_LATE)
        return sc_error_v2(res, 400, "api/v2/parcels",
                           "Parcel cannot be cancelled: it was handed to the carrier or is "
                           "cancelled already");
    return http_res_json(
        res, 200,
        json_pack("{s:s,s:s}", "status", "cancelled", "message", "Parcel has been cancelled"));
}

static int label(http_request *req, http_response *res, sendcloud_sim *s, int version)
{
    if (!api_gate(s, req, res, version == 2 ? "v2.label" : "v3.label", version))
        return 0;
    buf pdf;
    buf_init(&pdf, 0);
    pthread_mutex_lock(&s->lock);
    sc_parcel *p = sc_find_parcel(s, param_id(req));
    int rc = 0;
    if (p) {
        const json_t *o = p->obj;
        char line[160];
        snprintf(line, sizeof line, "%s %s", json_string_value(json_object_get(o, "postal_code")),
                 json_string_value(json_object_get(o, "city")));
        const char *lines[] = {json_string_value(json_object_get(o, "name")),
                               json_string_value(json_object_get(o, "address")), line, NULL};
        rc = sendcloud_sim_label_pdf(
            json_string_value(json_object_get(json_object_get(o, "carrier"), "code")),
            json_string_value(json_object_get(o, "tracking_number")), lines, &pdf);
    }
    pthread_mutex_unlock(&s->lock);
    if (!p)
        rc = api_error(res, version, 404, http_req_path(req) + 1, "not_found", "Parcel not found");
    else if (rc)
        rc = api_error(res, version, 500, http_req_path(req) + 1, "server_error", "out of memory");
    else
        rc = http_res_bytes(res, 200, "application/pdf", pdf.data, pdf.len);
    buf_free(&pdf);
    return rc;
}

static int h_v3_label(http_request *req, http_response *res, void *ctx)
{
    return label(req, res, ctx, 3);
}

static int h_v2_label(http_request *req, http_response *res, void *ctx)
{
    return label(req, res, ctx, 2);
}

static json_t *status_list(bool v3)
{
    static const int64_t ids[] = {999, 1000, 1001, 1002, 1,  13, 22, 3,    7,    5,   91,
                                  92,  4,    8,    12,   11, 93, 80, 1337, 1999, 2000};
    json_t *list = json_array();
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        json_array_append_new(list, v3 ? json_pack("{s:s,s:s}", "code", sc_status_code(ids[i]),
                                                   "message", sc_status_message(ids[i]))
                                       : json_pack("{s:I,s:s}", "id", (json_int_t)ids[i], "message",
                                                   sc_status_message(ids[i])));
    return list;
}

static int h_v3_statuses(http_request *req, http_response *res, void *ctx)
{
    if (!api_gate(ctx, req, res, "v3.statuses", 3))
        return 0;
    return http_res_json(res, 200, json_pack("{s:o}", "data", status_list(true)));
}

static int h_v2_statuses(http_request *req, http_response *res, void *ctx)
{
    if (!api_gate(ctx, req, res, "v2.statuses", 2))
        return 0;
    return http_res_json(res, 200, status_list(false));
}

int sc_api_add_routes(sendcloud_sim *s, err *e)
{
    const http_route routes[] = {
        {"POST", "/api/v3/shipments/announce", h_v3_announce, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/api/v3/shipments/:id", h_v3_get, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/api/v3/shipments/:id/cancel", h_v3_cancel, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/api/v3/parcels/:id/documents/label", h_v3_label, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/api/v3/parcels/statuses", h_v3_statuses, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/api/v2/parcels", h_v2_create, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/api/v2/parcels/:id", h_v2_get, s, HTTP_ACCESS_PUBLIC},
        {"POST", "/api/v2/parcels/:id/cancel", h_v2_cancel, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/api/v2/parcels/:id/documents/label", h_v2_label, s, HTTP_ACCESS_PUBLIC},
        {"GET", "/api/v2/parcels/statuses", h_v2_statuses, s, HTTP_ACCESS_PUBLIC},
    };
    return http_router_add(s->srv.router, routes, sizeof routes / sizeof routes[0], e);
}
