/*
 * uuid.c - UUID v4 and v7 generation (libsodium randomness) and validation.
 */
#include "core/uuid.h"

#include "core/clock.h"

#include <ctype.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void uuid_format(const uint8_t b[16], char out[UUID_STR_LEN])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void uuid_v4(char out[UUID_STR_LEN])
{
    uint8_t b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
}

/* v7 layout: 48-bit ms timestamp, then 12 bits used as a counter within the same
 * millisecond (RFC 9562 method 1), then 62 random bits. */
void uuid_v7(char out[UUID_STR_LEN])
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static int64_t last_ms;
    static uint16_t seq;
    uint8_t b[16];
    randombytes_buf(b, sizeof b);

    pthread_mutex_lock(&lock);
    int64_t ms = clock_now_ms();
    if (ms <= last_ms) {
        ms = last_ms;
        if (++seq > 0x0fff) {
            ms = ++last_ms;
            seq = 0;
        }
    } else {
        last_ms = ms;
        seq = (uint16_t)(b[6] & 0x03); /* small random start leaves room to count */
    }
    uint16_t s = seq;
    pthread_mutex_unlock(&lock);

    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | ((s >> 8) & 0x0f));
    b[7] = (uint8_t)(s & 0xff);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
}

bool uuid_valid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}
