/*
 * ratelimit.c - the token-bucket interface and its in-memory implementation
 * (see ratelimit.h). Buckets live in a chained hash table behind one mutex;
 * the work per call is a hash and a few arithmetic operations.
 */
#include "services/gateway/ratelimit.h"

#include "core/str.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

bool ratelimit_take(ratelimit *rl, const char *key, const ratelimit_rule *rule, int64_t now_ms,
                    int64_t *retry_after_ms)
{
    if (rule->burst <= 0)
        return true;
    return rl->ops->consume(rl, key, rule, now_ms, true, retry_after_ms);
}

bool ratelimit_peek(ratelimit *rl, const char *key, const ratelimit_rule *rule, int64_t now_ms,
                    int64_t *retry_after_ms)
{
    if (rule->burst <= 0)
        return true;
    return rl->ops->consume(rl, key, rule, now_ms, false, retry_after_ms);
}

void ratelimit_free(ratelimit *rl)
{
    if (rl)
        rl->ops->free(rl);
}

/* ---- in memory ---------------------------------------------------------- */

typedef struct bucket {
    char *key;
    double tokens;
    int64_t updated_ms;
    ratelimit_rule rule;
    struct bucket *next;
} bucket;

#define MEM_SLOTS 4096

typedef struct mem_limiter {
    ratelimit base;
    pthread_mutex_t lock;
    bucket *slots[MEM_SLOTS];
    unsigned count;
    unsigned max_keys;
} mem_limiter;

static size_t key_hash(const char *k)
{
    size_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ULL;
    return h % MEM_SLOTS;
}

/* Brings b's tokens up to now under its rule. */
static void refill(bucket *b, int64_t now_ms)
{
    if (now_ms > b->updated_ms && b->rule.period_ms > 0) {
        double add =
            (double)(now_ms - b->updated_ms) * (double)b->rule.burst / (double)b->rule.period_ms;
        b->tokens += add;
        if (b->tokens > (double)b->rule.burst)
            b->tokens = (double)b->rule.burst;
    }
    if (now_ms > b->updated_ms)
        b->updated_ms = now_ms;
}

static void bucket_unlink(mem_limiter *m, size_t slot, bucket *prev, bucket *b)
{
    if (prev)
        prev->next = b->next;
    else
        m->slots[slot] = b->next;
    free(b->key);
    free(b);
    m->count--;
}

/* Drops every bucket touched at or before `cutoff`. */
static void evict_before(mem_limiter *m, int64_t cutoff)
{
    for (size_t s = 0; s < MEM_SLOTS; s++) {
        bucket *prev = NULL, *b = m->slots[s];
        while (b) {
            bucket *next = b->next;
            if (b->updated_ms <= cutoff)
                bucket_unlink(m, s, prev, b);
            else
                prev = b;
            b = next;
        }
    }
}

/* Makes room for a tenth of the table at once, so that a flood of new keys
 * (addresses) costs a sweep now and then, not one per request: first the
 * buckets that are full again (they behave exactly like a new bucket), then
 * the ones touched longest ago. */
static void sweep(mem_limiter *m, int64_t now_ms)
{
    unsigned target = m->max_keys - m->max_keys / 10 - 1;
    int64_t oldest = now_ms, newest = 0;
    for (size_t s = 0; s < MEM_SLOTS; s++) {
        bucket *prev = NULL, *b = m->slots[s];
        while (b) {
            bucket *next = b->next;
            refill(b, now_ms);
            if (b->tokens >= (double)b->rule.burst) {
                bucket_unlink(m, s, prev, b);
            } else {
                prev = b;
                oldest = b->updated_ms < oldest ? b->updated_ms : oldest;
                newest = b->updated_ms > newest ? b->updated_ms : newest;
            }
            b = next;
        }
    }
    for (int step = 1; m->count > target && step <= 10; step++)
        evict_before(m, oldest + (newest - oldest) * step / 10);
}

static bucket *bucket_get(mem_limiter *m, const char *key, const ratelimit_rule *rule,
                          int64_t now_ms)
{
    size_t slot = key_hash(key);
    for (bucket *b = m->slots[slot]; b; b = b->next)
        if (strcmp(b->key, key) == 0) {
            b->rule = *rule;
            return b;
        }
    if (m->count >= m->max_keys)
        sweep(m, now_ms);
    bucket *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->key = str_dup(key);
    if (!b->key) {
        free(b);
        return NULL;
    }
    b->rule = *rule;
    b->tokens = (double)rule->burst;
    b->updated_ms = now_ms;
    b->next = m->slots[slot];
    m->slots[slot] = b;
    m->count++;
    return b;
}

static bool mem_consume(ratelimit *rl, const char *key, const ratelimit_rule *rule, int64_t now_ms,
                        bool take, int64_t *retry_after_ms)
{
    mem_limiter *m = (mem_limiter *)rl;
    bool ok;
    pthread_mutex_lock(&m->lock);
    bucket *b = bucket_get(m, key, rule, now_ms);
    if (!b) {
        /* Out of memory: refusing every request would turn an allocation
         * failure into an outage, so the request passes unlimited. */
        ok = true;
    } else {
        refill(b, now_ms);
        ok = b->tokens >= 1.0;
        if (ok && take)
            b->tokens -= 1.0;
        if (!ok && retry_after_ms) {
            double wait = (1.0 - b->tokens) * (double)rule->period_ms / (double)rule->burst;
            *retry_after_ms = (int64_t)wait + 1;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return ok;
}

static void mem_free(ratelimit *rl)
{
    mem_limiter *m = (mem_limiter *)rl;
    for (size_t s = 0; s < MEM_SLOTS; s++)
        while (m->slots[s])
            bucket_unlink(m, s, NULL, m->slots[s]);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static const ratelimit_ops mem_ops = {mem_consume, mem_free};

ratelimit *ratelimit_memory_new(unsigned max_keys)
{
    mem_limiter *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->base.ops = &mem_ops;
    m->max_keys = max_keys ? max_keys : 100000;
    pthread_mutex_init(&m->lock, NULL);
    return &m->base;
}
