/*
 * control.c - helpers of the simulators' /_sim/ control endpoints (see control.h).
 */
#include "sim/common/control.h"

#include "core/str.h"

#include <stdlib.h>

json_t *sim_control_body(http_request *req, http_response *res, bool empty_ok)
{
    size_t len = 0;
    http_req_body(req, &len);
    if (len == 0 && empty_ok)
        return json_object();
    json_t *b = NULL;
    if (http_req_json(req, &b, res))
        return NULL;
    if (!json_is_object(b)) {
        json_decref(b);
        http_res_error(res, 400, "expected a JSON object");
        return NULL;
    }
    return b;
}

bool sim_is_http_url(const char *url)
{
    return url && (str_starts_with(url, "http://") || str_starts_with(url, "https://"));
}

bool sim_url_ok(const json_t *v)
{
    return !v || json_is_null(v) || sim_is_http_url(json_string_value(v));
}

int sim_set_string(char **slot, const json_t *v, bool nullable)
{
    if (!v)
        return 0;
    if (json_is_null(v) && nullable) {
        free(*slot);
        *slot = NULL;
        return 0;
    }
    const char *t = json_string_value(v);
    char *copy = t && *t ? str_dup(t) : NULL;
    if (!copy)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

char *sim_dup_or(const char *v, const char *def)
{
    return str_dup(v && *v ? v : def);
}
