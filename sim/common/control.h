/*
 * control.h - small helpers of the simulators' control endpoints under /_sim/: reading a
 * JSON object body, checking webhook addresses and replacing string settings.
 *
 * Shared by the simulators under sim/; provider API routes use their own body readers,
 * because each provider words its errors its own way.
 */
#ifndef F3_SIM_COMMON_CONTROL_H
#define F3_SIM_COMMON_CONTROL_H

#include "http/request.h"
#include "http/response.h"

#include <jansson.h>
#include <stdbool.h>

/* The JSON object body of a control request (caller frees with json_decref); with
 * empty_ok an empty body reads as {}. NULL when res already holds the 4xx answer
 * (malformed JSON, not an object, or an empty body without empty_ok). */
json_t *sim_control_body(http_request *req, http_response *res, bool empty_ok);

/* True for an http:// or https:// address. */
bool sim_is_http_url(const char *url);

/* True when v is absent, null or an http(s) address string. */
bool sim_url_ok(const json_t *v);

/* Replaces *slot (malloc'd, may be NULL) with a copy of the string v: absent leaves it,
 * null clears it when nullable. 0, or -1 for an empty or non-string value (or no memory),
 * leaving *slot as it was. */
int sim_set_string(char **slot, const json_t *v, bool nullable);

/* A malloc'd copy of v, or of def when v is NULL or empty (caller frees); NULL when out
 * of memory. */
char *sim_dup_or(const char *v, const char *def);

#endif
