/*
 * clock.h - wall-clock and monotonic time, and the one text format for times.
 *
 * Times in f3connect are either epoch milliseconds (int64_t) or ISO-8601 UTC
 * text with milliseconds ("2026-11-22T08:15:30.123Z"); nothing else.
 */
#ifndef F3_CORE_CLOCK_H
#define F3_CORE_CLOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CLOCK_ISO_LEN 25 /* "YYYY-MM-DDTHH:MM:SS.mmmZ" + NUL */

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_now_ms(void);

/* Milliseconds from an arbitrary fixed point; only differences mean anything. */
int64_t clock_mono_ms(void);

/* Microseconds from an arbitrary fixed point, for measuring short durations. */
int64_t clock_mono_us(void);

/* Timed waits on condition variables, by CLOCK_MONOTONIC (immune to wall-clock jumps):
 * clock_cond_init initialises cv for them (0 or an errno), and clock_mono_after is the
 * instant ms milliseconds from now (a negative ms counts as 0) to pass to
 * pthread_cond_timedwait. */
int clock_cond_init(pthread_cond_t *cv);
struct timespec clock_mono_after(int64_t ms);

/* Writes `ms` as ISO-8601 UTC with milliseconds into out (at least CLOCK_ISO_LEN bytes). */
void clock_format_iso(int64_t ms, char out[CLOCK_ISO_LEN]);

/* The current time as ISO-8601 UTC text. */
void clock_now_iso(char out[CLOCK_ISO_LEN]);

/* Parses ISO-8601 / RFC 3339 text ("2026-11-22", "2026-11-22T08:15:30Z",
 * "2026-11-22T08:15:30.123+02:00") into epoch ms. 0 on success, -1 if malformed. */
int clock_parse_iso(const char *s, int64_t *out_ms);

#endif
