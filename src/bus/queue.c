/*
 * queue.c - the store-independent half of queue.h: state names, backoff arithmetic and
 * freeing jobs. It must not touch a database: that is queue_sql.c.
 */
#include "bus/queue.h"

#include <stdlib.h>
#include <string.h>

static const char *const bus_state_names[BUS_STATE_COUNT] = {
    [BUS_STATE_WAITING] = "waiting",     [BUS_STATE_PRIORITIZED] = "prioritized",
    [BUS_STATE_DELAYED] = "delayed",     [BUS_STATE_ACTIVE] = "active",
    [BUS_STATE_COMPLETED] = "completed", [BUS_STATE_FAILED] = "failed",
};

const char *bus_state_name(bus_state s)
{
    if ((int)s < 0 || s >= BUS_STATE_COUNT)
        return "unknown";
    return bus_state_names[s];
}

int bus_state_parse(const char *name)
{
    for (int i = 0; name && i < BUS_STATE_COUNT; i++)
        if (strcmp(bus_state_names[i], name) == 0)
            return i;
    return -1;
}

/* Longest delay handed out: keeps 2^(n-1) * delay from overflowing for large attempt counts. */
#define BUS_BACKOFF_CAP_MS ((int64_t)30 * 24 * 3600 * 1000)

int64_t bus_backoff_delay(const bus_backoff *b, int attempts_made)
{
    bool given = b && b->delay_ms > 0; /* 0 means the default: exponential from 1 s */
    int64_t delay = given ? b->delay_ms : BUS_DEFAULT_BACKOFF_MS;
    if (!given || b->type != BUS_BACKOFF_FIXED)
        for (int i = 1; i < attempts_made && delay < BUS_BACKOFF_CAP_MS; i++)
            delay *= 2;
    return delay < BUS_BACKOFF_CAP_MS ? delay : BUS_BACKOFF_CAP_MS;
}

void bus_job_free(bus_job *j)
{
    if (!j)
        return;
    free(j->queue);
    free(j->id);
    free(j->name);
    free(j->data);
    free(j->failed_reason);
    free(j->errors);
    free(j->return_value);
    free(j->lock_token);
    free(j);
}

void bus_jobs_free(bus_job **jobs, size_t n)
{
    if (!jobs)
        return;
    for (size_t i = 0; i < n; i++)
        bus_job_free(jobs[i]);
    free(jobs);
}

void bus_names_free(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}
