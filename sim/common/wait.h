/*
 * wait.h - how the simulators' threads pause: a plain sleep that survives signals, and
 * a bounded wait on a condition variable (woken early by a broadcast).
 *
 * Shared by every simulator under sim/; nothing here knows a provider. It is not a
 * scheduler: callers decide how long to wait and check their state after waking.
 */
#ifndef F3_SIM_COMMON_WAIT_H
#define F3_SIM_COMMON_WAIT_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Sleeps ms milliseconds (nothing for ms <= 0), resuming after interruptions. */
void sim_sleep_ms(long ms);

/* The CLOCK_REALTIME instant ms milliseconds from now, as pthread_cond_timedwait wants
 * its deadline (for waits that loop until a condition holds or the deadline passes). */
void sim_deadline(struct timespec *ts, int64_t ms);

/* Waits on cond (lock held, as pthread_cond_timedwait wants) for at most wait_ms
 * milliseconds; a wait below 1 ms waits 1 ms, so that callers never spin. */
void sim_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t wait_ms);

#endif
