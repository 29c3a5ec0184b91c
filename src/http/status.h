/*
 * status.h - HTTP status codes and their standard reason phrases, for the
 * server's error bodies and the client's error messages alike.
 */
#ifndef F3_HTTP_STATUS_H
#define F3_HTTP_STATUS_H

/* The standard reason phrase for a status ("Not Found"), as Node.js names it;
 * "Unknown" for a code it does not know. Static storage. */
const char *http_status_reason(int status);

/* True if status has a standard reason phrase. */
int http_status_known(int status);

#endif
