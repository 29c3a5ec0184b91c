/*
 * log.h - structured logging, one JSON object per line in pino's shape.
 *
 * Every line has numeric `level` (10 trace .. 60 fatal), `time` (epoch ms),
 * `pid`, `hostname`, `msg`, plus key/value fields given by the caller, so
 * `pino-pretty` and log shippers read it as they read a Node service's logs.
 * The current thread's correlation id, when set, is added to every line.
 *
 * Fields are given as key, value C string pairs (the macros add the NULL end):
 *     log_info("fulfillment created", "orderId", id, "fulfillmentId", fid);
 * A NULL value is written as JSON null.
 * Values are always written as JSON strings. Use log_*_json() when a field must be
 * a number; never pass a secret as a field.
 */
#ifndef F3_CORE_LOG_H
#define F3_CORE_LOG_H

#include <stdio.h>

typedef enum log_level {
    LOG_TRACE = 10,
    LOG_DEBUG = 20,
    LOG_INFO = 30,
    LOG_WARN = 40,
    LOG_ERROR = 50,
    LOG_FATAL = 60,
    LOG_SILENT = 100,
} log_level;

/* Lines below `level` are dropped. Default LOG_INFO. */
void log_set_level(log_level level);
log_level log_get_level(void);

/* Maps "trace|debug|info|warn|error|fatal|silent" to a level; -1 if unknown. */
int log_level_parse(const char *name);

/* Where lines go; default stderr. The stream is borrowed and must outlive logging. */
void log_set_stream(FILE *stream);

/* Sets this thread's correlation id (copied; NULL clears it). */
void log_set_correlation_id(const char *id);
const char *log_get_correlation_id(void);

/* Writes one line: msg plus NULL-terminated key/value string pairs. Thread-safe. */
void log_write(log_level level, const char *msg, ...) __attribute__((sentinel));

/* Like log_write, but `fields_json` is a pre-rendered fragment of members
 * (e.g. "\"status\":200,\"ms\":3") appended verbatim; may be NULL. */
void log_write_raw(log_level level, const char *msg, const char *fields_json);
#define log_trace(...) log_write(LOG_TRACE, __VA_ARGS__, (const char *)NULL)
#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__, (const char *)NULL)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__, (const char *)NULL)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__, (const char *)NULL)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__, (const char *)NULL)
#define log_fatal(...) log_write(LOG_FATAL, __VA_ARGS__, (const char *)NULL)

#endif
