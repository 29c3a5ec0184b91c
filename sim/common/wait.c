/*
 * wait.c - sleeps and bounded condition waits of the simulators' threads (see wait.h).
 */
#include "sim/common/wait.h"

#include <errno.h>
#include <time.h>

void sim_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void sim_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t wait_ms)
{
    if (wait_ms < 1)
        wait_ms = 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(wait_ms / 1000);
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cond, lock, &ts);
}
