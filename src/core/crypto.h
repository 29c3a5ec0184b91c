/*
 * crypto.h - the few cryptographic operations f3connect needs, over libsodium.
 *
 * HMAC-SHA256 for webhook signatures, constant-time comparison, random tokens,
 * base64/hex codecs, secretbox sealing of integration secrets at rest, and
 * argon2id password hashes. sodium_init() must have run before any function
 * here is called: cli_main() does it at start-up, and every test program calls
 * it in main(). No function here logs; error messages never contain key material.
 */
#ifndef F3_CORE_CRYPTO_H
#define F3_CORE_CRYPTO_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_HMAC_SHA256_LEN 32
#define CRYPTO_KEY_LEN         32

/* HMAC-SHA256 of msg under a key of any length (long keys are hashed first, as
 * RFC 2104 says). */
void crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                        uint8_t out[CRYPTO_HMAC_SHA256_LEN]);

/* True if the len bytes at a and b are equal; the time taken does not depend on
 * where they differ. */
bool crypto_equal(const void *a, const void *b, size_t len);

/* True if a and b are the same string, compared in constant time over the
 * content (only the lengths may leak). False if either is NULL. */
bool crypto_str_equal(const char *a, const char *b);

/* Overwrites len bytes at p with zeros in a way the compiler cannot drop; for
 * copies of keys and passwords before they go out of scope or are freed. */
void crypto_wipe(void *p, size_t len);

/* Fills out with len unpredictable bytes. */
void crypto_random(void *out, size_t len);

/* Appends a token made of nbytes random bytes as URL-safe base64 without padding
 * (for session ids, API keys). 0, or F3_ETOOBIG / F3_ENOMEM (out unchanged). */
int crypto_random_token(buf *out, size_t nbytes);

/* Appends base64 of data: the standard alphabet with '=' padding, or, with
 * urlsafe, the '-' '_' alphabet without padding. 0, or F3_ETOOBIG / F3_ENOMEM. */
int crypto_base64_encode(const void *data, size_t len, bool urlsafe, buf *out);

/* Appends the bytes encoded by len characters of base64 text, in either alphabet,
 * with or without padding. Whitespace, misplaced padding, impossible lengths and
 * non-zero unused bits are rejected with F3_EINVAL; out is unchanged on error. */
int crypto_base64_decode(const char *text, size_t len, buf *out, err *e);

/* Appends data as lowercase hex. 0, or F3_ETOOBIG / F3_ENOMEM. */
int crypto_hex_encode(const void *data, size_t len, buf *out);

/* Appends the bytes of len characters of hex text (either case, even length);
 * F3_EINVAL otherwise, out unchanged. */
int crypto_hex_decode(const char *text, size_t len, buf *out, err *e);

/* Encrypts and authenticates plain under key (XSalsa20-Poly1305 with a fresh
 * random nonce) and appends base64(nonce || box) to out. 0, or F3_ETOOBIG / F3_ENOMEM. */
int crypto_seal(const uint8_t key[CRYPTO_KEY_LEN], const void *plain, size_t len, buf *out);

/* Reverses crypto_seal: appends the plaintext to plain_out. F3_EINVAL when the
 * text is not a sealed value or was altered or sealed under another key;
 * plain_out is unchanged on error. */
int crypto_open(const uint8_t key[CRYPTO_KEY_LEN], const char *sealed, buf *plain_out, err *e);

/* Reads a 32-byte key written as 64 hex characters or as base64 (either
 * alphabet). 0, or F3_EINVAL with a message that does not repeat the text. */
int crypto_key_parse(const char *text, uint8_t key[CRYPTO_KEY_LEN], err *e);

/* Appends an argon2id hash of pw in the self-describing "$argon2id$..." form
 * (interactive limits: about 64 MiB and a fraction of a second).
 * 0, F3_EINVAL for a NULL pw, F3_ENOMEM, or F3_ETOOBIG. */
int crypto_password_hash(const char *pw, buf *out);

/* True if pw matches a hash made by crypto_password_hash; false for a wrong
 * password, a malformed hash or NULL arguments. */
bool crypto_password_verify(const char *hash, const char *pw);

#endif
