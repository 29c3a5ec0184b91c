/*
 * log.c - pino-shaped JSON line logger (see log.h).
 *
 * A line is assembled in a stack-backed buf and written with one fwrite under
 * a mutex, so lines from concurrent threads never interleave.
 */
#include "core/log.h"

#include "core/buf.h"
#include "core/clock.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define LOG_LINE_CAP        (64 * 1024)
#define LOG_CORR_ID_MAX     128
#define LOG_DROPPED_MSG_MAX 1024 /* longest msg repeated in a "too long" line */

static atomic_int log_level_now = LOG_INFO;
static FILE *log_stream;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local char log_corr_id[LOG_CORR_ID_MAX];

static const struct {
    const char *name;
    log_level level;
} log_levels[] = {
    {"trace", LOG_TRACE}, {"debug", LOG_DEBUG}, {"info", LOG_INFO},     {"warn", LOG_WARN},
    {"error", LOG_ERROR}, {"fatal", LOG_FATAL}, {"silent", LOG_SILENT},
};

void log_set_level(log_level level)
{
    atomic_store(&log_level_now, (int)level);
}

log_level log_get_level(void)
{
    return (log_level)atomic_load(&log_level_now);
}

int log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof log_levels / sizeof log_levels[0]; i++)
        if (name && strcmp(name, log_levels[i].name) == 0)
            return (int)log_levels[i].level;
    return -1;
}

void log_set_stream(FILE *stream)
{
    pthread_mutex_lock(&log_lock);
    log_stream = stream;
    pthread_mutex_unlock(&log_lock);
}

void log_set_correlation_id(const char *id)
{
    if (!id) {
        log_corr_id[0] = '\0';
        return;
    }
    strncpy(log_corr_id, id, sizeof log_corr_id - 1);
    log_corr_id[sizeof log_corr_id - 1] = '\0';
}

const char *log_get_correlation_id(void)
{
    return log_corr_id[0] ? log_corr_id : NULL;
}

static char log_host[256];
static pthread_once_t log_host_once = PTHREAD_ONCE_INIT;

static void log_host_init(void)
{
    if (gethostname(log_host, sizeof log_host - 1) != 0)
        strcpy(log_host, "unknown");
    log_host[sizeof log_host - 1] = '\0';
}

/* Starts a line; nonzero if something did not fit (the line is then unusable). */
static int log_begin(buf *line, log_level level, const char *msg)
{
    pthread_once(&log_host_once, log_host_init);
    int rc = buf_printf(line, "{\"level\":%d,\"time\":%lld,\"pid\":%d,\"hostname\":\"", (int)level,
                        (long long)clock_now_ms(), (int)getpid());
    rc |= buf_put_json_escaped(line, log_host);
    rc |= buf_puts(line, "\"");
    const char *corr = log_get_correlation_id();
    if (corr) {
        rc |= buf_puts(line, ",\"correlationId\":\"");
        rc |= buf_put_json_escaped(line, corr);
        rc |= buf_puts(line, "\"");
    }
    rc |= buf_puts(line, ",\"msg\":\"");
    rc |= buf_put_json_escaped(line, msg ? msg : "");
    rc |= buf_puts(line, "\"");
    return rc;
}

/* Replaces a line that did not fit with a short one saying so. An append that
 * hits the cap is skipped while later, shorter ones still succeed, so such a
 * line must not be written as it is: fields would be silently missing. */
static void log_replace_overlong(buf *line, const char *msg)
{
    buf_reset(line);
    log_begin(line, LOG_ERROR, "log line too long; dropped");
    if (msg && strlen(msg) <= LOG_DROPPED_MSG_MAX) {
        buf_puts(line, ",\"droppedMsg\":\"");
        buf_put_json_escaped(line, msg);
        buf_puts(line, "\"");
    }
}

static void log_emit(buf *line, int rc, const char *msg)
{
    if (rc != 0 || buf_puts(line, "}\n") != 0) {
        log_replace_overlong(line, msg);
        buf_puts(line, "}\n");
    }
    pthread_mutex_lock(&log_lock);
    FILE *out = log_stream ? log_stream : stderr;
    fwrite(buf_cstr(line), 1, line->len, out);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}

void log_write(log_level level, const char *msg, ...)
{
    if ((int)level < atomic_load(&log_level_now))
        return;
    buf line;
    buf_init(&line, LOG_LINE_CAP);
    int rc = log_begin(&line, level, msg);
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (!key)
            break;
        const char *val = va_arg(ap, const char *);
        rc |= buf_puts(&line, ",\"");
        rc |= buf_put_json_escaped(&line, key);
        if (val) {
            rc |= buf_puts(&line, "\":\"");
            rc |= buf_put_json_escaped(&line, val);
            rc |= buf_puts(&line, "\"");
        } else {
            rc |= buf_puts(&line, "\":null");
        }
    }
    va_end(ap);
    log_emit(&line, rc, msg);
    buf_free(&line);
}

void log_write_raw(log_level level, const char *msg, const char *fields_json)
{
    if ((int)level < atomic_load(&log_level_now))
        return;
    buf line;
    buf_init(&line, LOG_LINE_CAP);
    int rc = log_begin(&line, level, msg);
    if (fields_json && *fields_json) {
        rc |= buf_putc(&line, ',');
        rc |= buf_puts(&line, fields_json);
    }
    log_emit(&line, rc, msg);
    buf_free(&line);
}
