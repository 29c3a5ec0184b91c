/*
 * test_crypto.c - HMAC (RFC 4231), base64/hex (RFC 4648), sealing, keys, passwords.
 */
#include "support/f3test.h"

#include "core/crypto.h"

#include <sodium.h>
#include <string.h>

/* Lowercase hex of n bytes into out (2n+1 bytes). */
static void to_hex(const uint8_t *p, size_t n, char *out)
{
    buf b;
    buf_init(&b, 0);
    assert_int_equal(crypto_hex_encode(p, n, &b), 0);
    memcpy(out, buf_cstr(&b), b.len + 1);
    buf_free(&b);
}

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    uint8_t k1[20], k3[20], d3[50], k4[25], d4[50], k5[20], k6[131];
    memset(k1, 0x0b, sizeof k1);
    memset(k3, 0xaa, sizeof k3);
    memset(d3, 0xdd, sizeof d3);
    for (size_t i = 0; i < sizeof k4; i++)
        k4[i] = (uint8_t)(i + 1);
    memset(d4, 0xcd, sizeof d4);
    memset(k5, 0x0c, sizeof k5);
    memset(k6, 0xaa, sizeof k6);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    const char *m7 = "This is a test using a larger than block-size key and a larger than "
                     "block-size data. The key needs to be hashed before being used by the HMAC "
                     "algorithm.";
    const struct {
        const void *key;
        size_t keylen;
        const void *msg;
        size_t len;
        const char *hex;
    } cases[] = {
        {k1, sizeof k1, "Hi There", 8,
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"Jefe", 4, "what do ya want for nothing?", 28,
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {k3, sizeof k3, d3, sizeof d3,
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {k4, sizeof k4, d4, sizeof d4,
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        /* case 5 specifies only the first 128 bits */
        {k5, sizeof k5, "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b"},
        {k6, sizeof k6, m6, strlen(m6),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {k6, sizeof k6, m7, strlen(m7),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t mac[CRYPTO_HMAC_SHA256_LEN];
        char hex[2 * CRYPTO_HMAC_SHA256_LEN + 1];
        crypto_hmac_sha256(cases[i].key, cases[i].keylen, cases[i].msg, cases[i].len, mac);
        to_hex(mac, sizeof mac, hex);
        size_t want = strlen(cases[i].hex);
        hex[want] = '\0';
        assert_string_equal(hex, cases[i].hex);
    }
}

static void test_constant_time_equality(void **state)
{
    (void)state;
    assert_true(crypto_equal("abcdef", "abcdef", 6));
    assert_false(crypto_equal("abcdef", "abcdeg", 6));
    assert_false(crypto_equal("xbcdef", "abcdef", 6));
    assert_true(crypto_equal("a", "b", 0));
    assert_true(crypto_str_equal("secret", "secret"));
    assert_true(crypto_str_equal("", ""));
    assert_false(crypto_str_equal("secret", "secreT"));
    assert_false(crypto_str_equal("secret", "secret2"));
    assert_false(crypto_str_equal("secret", "secre"));
    assert_false(crypto_str_equal(NULL, "x"));
    assert_false(crypto_str_equal("x", NULL));
    assert_false(crypto_str_equal(NULL, NULL));
}

static void test_random_and_tokens(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    crypto_random(a, sizeof a);
    crypto_random(b, sizeof b);
    assert_memory_not_equal(a, b, sizeof a);

    buf t1, t2;
    buf_init(&t1, 0);
    buf_init(&t2, 0);
    assert_int_equal(crypto_random_token(&t1, 32), 0);
    assert_int_equal(crypto_random_token(&t2, 32), 0);
    assert_int_equal(t1.len, 43); /* ceil(32 * 4 / 3), no padding */
    assert_string_not_equal(buf_cstr(&t1), buf_cstr(&t2));
    assert_int_equal(
        strspn(buf_cstr(&t1), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        t1.len);
    buf_reset(&t1);
    assert_int_equal(crypto_random_token(&t1, 0), 0);
    assert_string_equal(buf_cstr(&t1), "");
    buf_free(&t1);
    buf_free(&t2);

    buf small;
    buf_init(&small, 10);
    assert_int_equal(crypto_random_token(&small, 32), F3_ETOOBIG);
    assert_int_equal(small.len, 0);
    buf_free(&small);
}

static const struct {
    const char *plain, *std, *url;
} rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void test_base64_encode_rfc4648(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
        buf b;
        buf_init(&b, 0);
        assert_int_equal(
            crypto_base64_encode(rfc4648[i].plain, strlen(rfc4648[i].plain), false, &b), 0);
        assert_string_equal(buf_cstr(&b), rfc4648[i].std);
        buf_reset(&b);
        assert_int_equal(crypto_base64_encode(rfc4648[i].plain, strlen(rfc4648[i].plain), true, &b),
                         0);
        assert_string_equal(buf_cstr(&b), rfc4648[i].url);
        buf_free(&b);
    }
    /* The two alphabets differ in the last two symbols. */
    const uint8_t bytes[] = {0xfb, 0xff, 0xbf};
    buf b;
    buf_init(&b, 0);
    crypto_base64_encode(bytes, 3, false, &b);
    assert_string_equal(buf_cstr(&b), "+/+/");
    buf_reset(&b);
    crypto_base64_encode(bytes, 3, true, &b);
    assert_string_equal(buf_cstr(&b), "-_-_");
    buf_free(&b);
}

static void test_base64_long_input_round_trip(void **state)
{
    (void)state;
    uint8_t data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    for (int urlsafe = 0; urlsafe < 2; urlsafe++) {
        buf enc, dec;
        buf_init(&enc, 0);
        buf_init(&dec, 0);
        assert_int_equal(crypto_base64_encode(data, sizeof data, urlsafe, &enc), 0);
        /* Cross-check against libsodium's encoder. */
        char ref[sodium_base64_ENCODED_LEN(1000, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64(ref, sizeof ref, data, sizeof data,
                          urlsafe ? sodium_base64_VARIANT_URLSAFE_NO_PADDING
                                  : sodium_base64_VARIANT_ORIGINAL);
        assert_string_equal(buf_cstr(&enc), ref);
        assert_int_equal(crypto_base64_decode(enc.data, enc.len, &dec, NULL), 0);
        assert_int_equal(dec.len, sizeof data);
        assert_memory_equal(dec.data, data, sizeof data);
        buf_free(&enc);
        buf_free(&dec);
    }
}

static void test_base64_decode_accepts_both_forms(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
        const char *forms[] = {rfc4648[i].std, rfc4648[i].url};
        for (int f = 0; f < 2; f++) {
            buf b;
            err e;
            buf_init(&b, 0);
            assert_int_equal(crypto_base64_decode(forms[f], strlen(forms[f]), &b, &e), 0);
            assert_string_equal(buf_cstr(&b), rfc4648[i].plain);
            buf_free(&b);
        }
    }
    const char *variants[] = {"+/+/", "-_-_", "+_-/"};
    for (size_t i = 0; i < 3; i++) {
        buf b;
        buf_init(&b, 0);
        assert_int_equal(crypto_base64_decode(variants[i], 4, &b, NULL), 0);
        assert_int_equal(b.len, 3);
        assert_memory_equal(b.data, "\xfb\xff\xbf", 3);
        buf_free(&b);
    }
}

static void test_base64_decode_rejects_garbage(void **state)
{
    (void)state;
    static const char *bad[] = {
        "Z",                                      /* impossible length */
        "Zg=",                                    /* padding to a non-multiple of 4 */
        "Zg===",                                  /* too much padding */
        "=",       "==",    "Zm9v=",  "Zg==Zg==", /* padding inside */
        "Zm9v!",   " Zg==", "Zg==\n", "Zm 9v",
        "Zm9\x80", "Zh==", /* non-zero bits after the last byte */
        "Zm9=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf b;
        err e;
        buf_init(&b, 0);
        buf_puts(&b, "keep");
        assert_int_equal(crypto_base64_decode(bad[i], strlen(bad[i]), &b, &e), F3_EINVAL);
        assert_int_equal(e.code, F3_EINVAL);
        assert_non_null(strstr(e.msg, "invalid base64"));
        assert_string_equal(buf_cstr(&b), "keep"); /* unchanged on error */
        buf_free(&b);
    }
    buf b;
    buf_init(&b, 0);
    assert_int_equal(crypto_base64_decode(NULL, 0, &b, NULL), F3_EINVAL);
    buf_free(&b);
}

static void test_hex(void **state)
{
    (void)state;
    buf b;
    err e;
    buf_init(&b, 0);
    assert_int_equal(crypto_hex_encode("foobar", 6, &b), 0);
    assert_string_equal(buf_cstr(&b), "666f6f626172"); /* RFC 4648 base16, lowercased */
    buf_reset(&b);
    assert_int_equal(crypto_hex_decode("666F6F626172", 12, &b, &e), 0);
    assert_string_equal(buf_cstr(&b), "foobar");
    buf_reset(&b);
    assert_int_equal(crypto_hex_decode("", 0, &b, &e), 0);
    assert_int_equal(b.len, 0);
    buf_puts(&b, "keep");
    assert_int_equal(crypto_hex_decode("abc", 3, &b, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "odd"));
    assert_int_equal(crypto_hex_decode("abzz", 4, &b, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "position 2"));
    assert_int_equal(crypto_hex_decode("0x12", 4, &b, &e), F3_EINVAL);
    assert_int_equal(crypto_hex_decode(NULL, 0, &b, &e), F3_EINVAL);
    assert_string_equal(buf_cstr(&b), "keep");
    buf_free(&b);

    /* Longer than one internal chunk. */
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)i;
    buf enc, dec;
    buf_init(&enc, 0);
    buf_init(&dec, 0);
    assert_int_equal(crypto_hex_encode(data, sizeof data, &enc), 0);
    assert_int_equal(enc.len, 600);
    assert_int_equal(crypto_hex_decode(enc.data, enc.len, &dec, NULL), 0);
    assert_memory_equal(dec.data, data, sizeof data);
    buf_free(&enc);
    buf_free(&dec);
}

static void test_seal_and_open(void **state)
{
    (void)state;
    uint8_t key[CRYPTO_KEY_LEN], other[CRYPTO_KEY_LEN];
    crypto_random(key, sizeof key);
    crypto_random(other, sizeof other);
    const char *secret = "shpss_0123456789abcdef";
    buf s1, s2, plain;
    err e;
    buf_init(&s1, 0);
    buf_init(&s2, 0);
    buf_init(&plain, 0);
    assert_int_equal(crypto_seal(key, secret, strlen(secret), &s1), 0);
    assert_int_equal(crypto_seal(key, secret, strlen(secret), &s2), 0);
    assert_null(strstr(buf_cstr(&s1), secret));
    assert_string_not_equal(buf_cstr(&s1), buf_cstr(&s2)); /* fresh nonce each time */

    assert_int_equal(crypto_open(key, buf_cstr(&s1), &plain, &e), 0);
    assert_string_equal(buf_cstr(&plain), secret);
    buf_reset(&plain);

    assert_int_equal(crypto_open(other, buf_cstr(&s1), &plain, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "another key"));
    assert_int_equal(plain.len, 0);

    /* Flip one bit of the ciphertext, keeping the base64 valid. */
    char *tampered = buf_detach(&s2);
    size_t mid = strlen(tampered) / 2;
    tampered[mid] = tampered[mid] == 'A' ? 'B' : 'A';
    assert_int_equal(crypto_open(key, tampered, &plain, &e), F3_EINVAL);
    assert_int_equal(plain.len, 0);
    free(tampered);

    static const char *junk[] = {"", "not base64!", "AAAA", "c2hvcnQ="};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        assert_int_equal(crypto_open(key, junk[i], &plain, &e), F3_EINVAL);
        assert_non_null(strstr(e.msg, "malformed"));
    }
    assert_int_equal(crypto_open(key, NULL, &plain, &e), F3_EINVAL);

    /* An empty secret survives the round trip too. */
    buf_reset(&s1);
    assert_int_equal(crypto_seal(key, "", 0, &s1), 0);
    assert_int_equal(crypto_open(key, buf_cstr(&s1), &plain, &e), 0);
    assert_int_equal(plain.len, 0);
    buf_free(&s1);
    buf_free(&s2);
    buf_free(&plain);
}

static void test_key_parse(void **state)
{
    (void)state;
    uint8_t want[CRYPTO_KEY_LEN], key[CRYPTO_KEY_LEN];
    for (size_t i = 0; i < sizeof want; i++)
        want[i] = (uint8_t)(0xf0 + i);
    buf hex, b64, url;
    buf_init(&hex, 0);
    buf_init(&b64, 0);
    buf_init(&url, 0);
    crypto_hex_encode(want, sizeof want, &hex);
    crypto_base64_encode(want, sizeof want, false, &b64);
    crypto_base64_encode(want, sizeof want, true, &url);
    const char *forms[] = {buf_cstr(&hex), buf_cstr(&b64), buf_cstr(&url)};
    for (int i = 0; i < 3; i++) {
        memset(key, 0, sizeof key);
        assert_int_equal(crypto_key_parse(forms[i], key, NULL), 0);
        assert_memory_equal(key, want, sizeof key);
    }
    /* Uppercase hex is fine. */
    char upper[65];
    for (int i = 0; i < 64; i++)
        upper[i] = (char)(forms[0][i] >= 'a' ? forms[0][i] - 32 : forms[0][i]);
    upper[64] = '\0';
    assert_int_equal(crypto_key_parse(upper, key, NULL), 0);
    assert_memory_equal(key, want, sizeof key);

    err e;
    char short_hex[64];
    memcpy(short_hex, forms[0], 63);
    short_hex[63] = '\0';
    static const char *secretish = "c2VjcmV0LXRoYXQtaXMtdG9vLXNob3J0";
    const char *bad[] = {"", short_hex, secretish, "not a key at all", "zz"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(crypto_key_parse(bad[i], key, &e), F3_EINVAL);
        assert_non_null(strstr(e.msg, "32 bytes"));
        if (*bad[i])
            assert_null(strstr(e.msg, bad[i])); /* never echoes key material */
    }
    assert_int_equal(crypto_key_parse(secretish, key, &e), F3_EINVAL);
    assert_non_null(strstr(e.msg, "decodes to 24 bytes"));
    assert_int_equal(crypto_key_parse(NULL, key, &e), F3_EINVAL);
    buf_free(&hex);
    buf_free(&b64);
    buf_free(&url);
}

static void test_password_hash_and_verify(void **state)
{
    (void)state;
    buf h1, h2;
    buf_init(&h1, 0);
    buf_init(&h2, 0);
    assert_int_equal(crypto_password_hash("correct horse", &h1), 0);
    assert_int_equal(crypto_password_hash("correct horse", &h2), 0);
    assert_true(strncmp(buf_cstr(&h1), "$argon2id$", 10) == 0);
    assert_null(strstr(buf_cstr(&h1), "correct horse"));
    assert_string_not_equal(buf_cstr(&h1), buf_cstr(&h2)); /* salted */

    assert_true(crypto_password_verify(buf_cstr(&h1), "correct horse"));
    assert_true(crypto_password_verify(buf_cstr(&h2), "correct horse"));
    assert_false(crypto_password_verify(buf_cstr(&h1), "correct horsE"));
    assert_false(crypto_password_verify(buf_cstr(&h1), ""));
    assert_false(crypto_password_verify("$argon2id$garbage", "correct horse"));
    assert_false(crypto_password_verify("", "correct horse"));
    assert_false(crypto_password_verify(NULL, "x"));
    assert_false(crypto_password_verify(buf_cstr(&h1), NULL));
    assert_int_equal(crypto_password_hash(NULL, &h1), F3_EINVAL);
    buf_free(&h1);
    buf_free(&h2);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_constant_time_equality),
        cmocka_unit_test(test_random_and_tokens),
        cmocka_unit_test(test_base64_encode_rfc4648),
        cmocka_unit_test(test_base64_long_input_round_trip),
        cmocka_unit_test(test_base64_decode_accepts_both_forms),
        cmocka_unit_test(test_base64_decode_rejects_garbage),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_seal_and_open),
        cmocka_unit_test(test_key_parse),
        cmocka_unit_test(test_password_hash_and_verify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
