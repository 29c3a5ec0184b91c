/*
 * ratelimit.h - token buckets behind one small interface.
 *
 * A bucket is named by a key the caller builds ("ip:203.0.113.7:login",
 * "user:<id>"), holds up to `burst` tokens and refills `burst` tokens every
 * `period_ms`. The embedded gateway uses the in-memory implementation below;
 * the distributed gateway plugs a Redis one into the same ops so that every
 * replica shares the limits. Time is passed in by the caller (epoch ms), so
 * tests need no sleeping. Nothing here logs keys (they hold e-mail addresses).
 */
#ifndef F3_GATEWAY_RATELIMIT_H
#define F3_GATEWAY_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ratelimit_rule {
    int64_t burst;     /* bucket size; <= 0 means "no limit" */
    int64_t period_ms; /* time to refill a whole bucket */
} ratelimit_rule;

typedef struct ratelimit ratelimit;

typedef struct ratelimit_ops {
    /* Takes one token from the bucket `key` when one is there (take) or only
     * looks (take false). Returns true if a token was (or would be) available;
     * otherwise false with *retry_after_ms (may be NULL) set to the wait until
     * the next token. */
    bool (*consume)(ratelimit *rl, const char *key, const ratelimit_rule *rule, int64_t now_ms,
                    bool take, int64_t *retry_after_ms);
    /* Frees the limiter. */
    void (*free)(ratelimit *rl);
} ratelimit_ops;

/* An implementation embeds this as its first member. */
struct ratelimit {
    const ratelimit_ops *ops;
};

/* Takes a token; see ratelimit_ops.consume. A rule with burst <= 0 always allows. */
bool ratelimit_take(ratelimit *rl, const char *key, const ratelimit_rule *rule, int64_t now_ms,
                    int64_t *retry_after_ms);

/* Looks without taking. */
bool ratelimit_peek(ratelimit *rl, const char *key, const ratelimit_rule *rule, int64_t now_ms,
                    int64_t *retry_after_ms);

/* Frees rl; NULL is ignored. */
void ratelimit_free(ratelimit *rl);

/* The in-process limiter: buckets in a hash table under one mutex; full buckets
 * are forgotten when the table grows past max_keys (0 = 100000), and when it is
 * still full the oldest-touched bucket is dropped. NULL when out of memory.
 * Caller frees with ratelimit_free. */
ratelimit *ratelimit_memory_new(unsigned max_keys);

#endif
