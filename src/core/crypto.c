/*
 * crypto.c - HMAC, comparison, randomness, codecs, sealing and password hashes.
 *
 * All primitives come from libsodium; the base64 and hex codecs are our own
 * because we must accept both base64 alphabets, padded or not, in one call.
 * Temporary copies of secrets are wiped before they are freed. Nothing here logs.
 */
#include "core/crypto.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define CRYPTO_NONCE_LEN crypto_secretbox_NONCEBYTES
#define CRYPTO_MAC_LEN   crypto_secretbox_MACBYTES

/* Maps a buf error to ours. */
static int from_buf_rc(int rc)
{
    if (rc == BUF_ERR_FULL)
        return F3_ETOOBIG;
    return rc == BUF_ERR_NOMEM ? F3_ENOMEM : 0;
}

/* Drops whatever was appended after `len`, so a failed call leaves out as it was. */
static void buf_truncate(buf *b, size_t len)
{
    b->len = len;
    if (b->data)
        b->data[len] = '\0';
}

void crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                        uint8_t out[CRYPTO_HMAC_SHA256_LEN])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, msg, len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

bool crypto_equal(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}

bool crypto_str_equal(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    size_t n = strlen(a);
    if (n != strlen(b))
        return false;
    return sodium_memcmp(a, b, n) == 0;
}

void crypto_wipe(void *p, size_t len)
{
    sodium_memzero(p, len);
}

void crypto_random(void *out, size_t len)
{
    randombytes_buf(out, len);
}

int crypto_random_token(buf *out, size_t nbytes)
{
    uint8_t *bytes = malloc(nbytes ? nbytes : 1);
    if (!bytes)
        return F3_ENOMEM;
    randombytes_buf(bytes, nbytes);
    int rc = crypto_base64_encode(bytes, nbytes, true, out);
    sodium_memzero(bytes, nbytes);
    free(bytes);
    return rc;
}

int crypto_base64_encode(const void *data, size_t len, bool urlsafe, buf *out)
{
    static const char std_alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char url_alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *alpha = urlsafe ? url_alpha : std_alpha;
    const uint8_t *p = data;
    size_t start = out->len;
    char chunk[256];
    size_t used = 0, i = 0;
    int rc = 0;
    for (; i + 3 <= len && rc == 0; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        chunk[used++] = alpha[(v >> 18) & 63];
        chunk[used++] = alpha[(v >> 12) & 63];
        chunk[used++] = alpha[(v >> 6) & 63];
        chunk[used++] = alpha[v & 63];
        if (used == sizeof chunk) {
            rc = buf_append(out, chunk, used);
            used = 0;
        }
    }
    size_t rest = len - i; /* 0, 1 or 2 bytes left: 2 or 3 symbols, padded to 4 */
    if (rc == 0 && rest > 0) {
        uint32_t v = (uint32_t)p[i] << 16 | (rest == 2 ? (uint32_t)p[i + 1] << 8 : 0);
        chunk[used++] = alpha[(v >> 18) & 63];
        chunk[used++] = alpha[(v >> 12) & 63];
        if (rest == 2)
            chunk[used++] = alpha[(v >> 6) & 63];
        if (!urlsafe) {
            chunk[used++] = '=';
            if (rest == 1)
                chunk[used++] = '=';
        }
    }
    if (rc == 0)
        rc = buf_append(out, chunk, used);
    if (rc)
        buf_truncate(out, start);
    return from_buf_rc(rc);
}

/* The 6-bit value of a character of either base64 alphabet, or -1. */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Checks the shape of base64 text and returns the number of data characters
 * (padding excluded), or -1 with e filled. */
static long b64_data_len(const char *text, size_t len, err *e)
{
    size_t n = len;
    size_t pad = 0;
    while (n > 0 && text[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (pad && (len % 4 != 0 || n % 4 + pad != 4)) {
        err_set(e, F3_EINVAL, "invalid base64: misplaced padding");
        return -1;
    }
    if (n % 4 == 1) {
        err_set(e, F3_EINVAL, "invalid base64: a length of %zu characters is not possible", n);
        return -1;
    }
    return (long)n;
}

int crypto_base64_decode(const char *text, size_t len, buf *out, err *e)
{
    if (!text)
        return err_set(e, F3_EINVAL, "invalid base64: no input");
    long n = b64_data_len(text, len, e);
    if (n < 0)
        return F3_EINVAL;
    size_t start = out->len;
    uint8_t chunk[192];
    size_t used = 0;
    uint32_t acc = 0;
    int bits = 0, rc = 0;
    for (size_t i = 0; i < (size_t)n; i++) {
        int v = b64_value((unsigned char)text[i]);
        if (v < 0) {
            rc = err_set(e, F3_EINVAL, "invalid base64: unexpected character at position %zu", i);
            goto out;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            chunk[used++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
        if (used == sizeof chunk) {
            if ((rc = from_buf_rc(buf_append(out, chunk, used))) != 0)
                goto out;
            used = 0;
        }
    }
    /* Canonical encodings leave the bits below the last byte at zero. */
    if (acc != 0) {
        rc = err_set(e, F3_EINVAL, "invalid base64: non-zero bits after the last byte");
        goto out;
    }
    rc = from_buf_rc(buf_append(out, chunk, used));
    if (rc)
        err_set(e, rc, "decoded base64 does not fit");
out:
    if (rc)
        buf_truncate(out, start);
    sodium_memzero(chunk, sizeof chunk);
    return rc;
}

int crypto_hex_encode(const void *data, size_t len, buf *out)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = data;
    size_t start = out->len;
    char chunk[256];
    size_t used = 0;
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0; i++) {
        chunk[used++] = hex[p[i] >> 4];
        chunk[used++] = hex[p[i] & 15];
        if (used == sizeof chunk || i + 1 == len) {
            rc = buf_append(out, chunk, used);
            used = 0;
        }
    }
    if (rc)
        buf_truncate(out, start);
    return from_buf_rc(rc);
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int crypto_hex_decode(const char *text, size_t len, buf *out, err *e)
{
    if (!text)
        return err_set(e, F3_EINVAL, "invalid hex: no input");
    if (len % 2 != 0)
        return err_set(e, F3_EINVAL, "invalid hex: odd number of digits (%zu)", len);
    size_t start = out->len;
    uint8_t chunk[128];
    size_t used = 0;
    int rc = 0;
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_value((unsigned char)text[i]), lo = hex_value((unsigned char)text[i + 1]);
        if (hi < 0 || lo < 0) {
            rc = err_set(e, F3_EINVAL, "invalid hex: unexpected character at position %zu",
                         hi < 0 ? i : i + 1);
            goto out;
        }
        chunk[used++] = (uint8_t)(hi << 4 | lo);
        if (used == sizeof chunk || i + 2 >= len) {
            if ((rc = from_buf_rc(buf_append(out, chunk, used))) != 0) {
                err_set(e, rc, "decoded hex does not fit");
                goto out;
            }
            used = 0;
        }
    }
out:
    if (rc)
        buf_truncate(out, start);
    sodium_memzero(chunk, sizeof chunk);
    return rc;
}

int crypto_seal(const uint8_t key[CRYPTO_KEY_LEN], const void *plain, size_t len, buf *out)
{
    if (len > SIZE_MAX - CRYPTO_NONCE_LEN - CRYPTO_MAC_LEN)
        return F3_ETOOBIG;
    size_t total = CRYPTO_NONCE_LEN + CRYPTO_MAC_LEN + len;
    uint8_t *box = malloc(total);
    if (!box)
        return F3_ENOMEM;
    randombytes_buf(box, CRYPTO_NONCE_LEN);
    crypto_secretbox_easy(box + CRYPTO_NONCE_LEN, plain, len, box, key);
    int rc = crypto_base64_encode(box, total, false, out);
    free(box);
    return rc;
}

int crypto_open(const uint8_t key[CRYPTO_KEY_LEN], const char *sealed, buf *plain_out, err *e)
{
    int rc = 0;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    buf box;
    buf_init(&box, 0);
    if (!sealed) {
        rc = err_set(e, F3_EINVAL, "sealed value is missing");
        goto out;
    }
    if (crypto_base64_decode(sealed, strlen(sealed), &box, NULL) != 0 ||
        box.len < CRYPTO_NONCE_LEN + CRYPTO_MAC_LEN) {
        rc = err_set(e, F3_EINVAL, "sealed value is malformed");
        goto out;
    }
    plain_len = box.len - CRYPTO_NONCE_LEN - CRYPTO_MAC_LEN;
    plain = malloc(plain_len ? plain_len : 1);
    if (!plain) {
        rc = err_set(e, F3_ENOMEM, "out of memory opening a sealed value");
        goto out;
    }
    const uint8_t *raw = (const uint8_t *)box.data;
    if (crypto_secretbox_open_easy(plain, raw + CRYPTO_NONCE_LEN, box.len - CRYPTO_NONCE_LEN, raw,
                                   key) != 0) {
        rc = err_set(e, F3_EINVAL, "sealed value was altered or sealed under another key");
        goto out;
    }
    rc = from_buf_rc(buf_append(plain_out, plain, plain_len));
    if (rc)
        err_set(e, rc, "opened value does not fit");
out:
    if (plain) {
        sodium_memzero(plain, plain_len);
        free(plain);
    }
    buf_free(&box);
    return rc;
}

static bool all_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (hex_value((unsigned char)s[i]) < 0)
            return false;
    return true;
}

/* Frees a buf that may hold key material, wiping it first. */
static void buf_free_wiped(buf *b)
{
    if (b->data)
        sodium_memzero(b->data, b->alloc);
    buf_free(b);
}

int crypto_key_parse(const char *text, uint8_t key[CRYPTO_KEY_LEN], err *e)
{
    static const char want[] = "must be 32 bytes written as 64 hex characters or as base64";
    if (!text || !*text)
        return err_set(e, F3_EINVAL, "key is missing: it %s", want);
    size_t len = strlen(text);
    buf raw;
    buf_init(&raw, 1024);
    int rc;
    /* 64 hex digits are also valid base64 (of 48 bytes), so hex is tried first. */
    if (len == 2 * CRYPTO_KEY_LEN && all_hex(text, len))
        rc = crypto_hex_decode(text, len, &raw, NULL);
    else
        rc = crypto_base64_decode(text, len, &raw, NULL);
    if (rc != 0 || raw.len != CRYPTO_KEY_LEN) {
        if (rc == 0)
            rc = err_set(e, F3_EINVAL, "key %s (it decodes to %zu bytes)", want, raw.len);
        else
            rc = err_set(e, F3_EINVAL, "key %s", want);
        goto out;
    }
    memcpy(key, raw.data, CRYPTO_KEY_LEN);
out:
    buf_free_wiped(&raw);
    return rc;
}

int crypto_password_hash(const char *pw, buf *out)
{
    if (!pw)
        return F3_EINVAL;
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(hash, pw, strlen(pw), crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE,
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        return F3_ENOMEM; /* the only failure libsodium reports here is memory */
    return from_buf_rc(buf_puts(out, hash));
}

bool crypto_password_verify(const char *hash, const char *pw)
{
    if (!hash || !pw)
        return false;
    /* libsodium reads the hash as a NUL-terminated string of bounded length. */
    if (strnlen(hash, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
        return false;
    return crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0;
}
