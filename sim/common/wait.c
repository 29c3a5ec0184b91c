/*
 * wait.c - sleeps and bounded condition waits of the simulators' threads (see wait.h).
 */
#include "sim/common/wait.h"

#include <errno.h>

void sim_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void sim_deadline(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void sim_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t wait_ms)
{
    struct timespec ts;
    sim_deadline(&ts, wait_ms < 1 ? 1 : wait_ms);
    pthread_cond_timedwait(cond, lock, &ts);
}
