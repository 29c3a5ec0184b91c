/*
 * test_uuid.c - UUID v4/v7 format, version and variant bits, v7 ordering, validation.
 */
#include "support/f3test.h"

#include "core/clock.h"
#include "core/uuid.h"

#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define V7_COUNT 10000

/* Canonical lowercase 8-4-4-4-12 with the given version and the RFC 9562 variant. */
static void assert_shape(const char *u, char version)
{
    assert_int_equal(strlen(u), 36);
    assert_true(uuid_valid(u));
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(u[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", u[i]));
    }
    assert_int_equal(u[14], version);
    assert_non_null(strchr("89ab", u[19])); /* variant 10xx */
}

static void test_v4_shape_and_uniqueness(void **state)
{
    (void)state;
    char a[UUID_STR_LEN], b[UUID_STR_LEN];
    for (int i = 0; i < 200; i++) {
        uuid_v4(a);
        uuid_v4(b);
        assert_shape(a, '4');
        assert_shape(b, '4');
        assert_string_not_equal(a, b);
    }
}

/* The 48-bit millisecond timestamp at the front of a v7 id. */
static int64_t v7_ms(const char *u)
{
    char hex[13];
    memcpy(hex, u, 8);
    memcpy(hex + 8, u + 9, 4);
    hex[12] = '\0';
    return (int64_t)strtoll(hex, NULL, 16);
}

static void test_v7_shape_and_timestamp(void **state)
{
    (void)state;
    int64_t before = clock_now_ms();
    char u[UUID_STR_LEN];
    uuid_v7(u);
    int64_t after = clock_now_ms();
    assert_shape(u, '7');
    int64_t ms = v7_ms(u);
    /* The counter may run a millisecond or so ahead under load; never behind. */
    assert_true(ms >= before && ms <= after + 1000);
}

static void test_v7_strictly_increasing(void **state)
{
    (void)state;
    char(*ids)[UUID_STR_LEN] = malloc(sizeof *ids * V7_COUNT);
    assert_non_null(ids);
    for (int i = 0; i < V7_COUNT; i++)
        uuid_v7(ids[i]);
    for (int i = 0; i < V7_COUNT; i++) {
        assert_shape(ids[i], '7');
        /* Lowercase hex of a big-endian layout: text order is creation order. */
        if (i > 0 && strcmp(ids[i - 1], ids[i]) >= 0)
            fail_msg("not increasing at %d: %s then %s", i, ids[i - 1], ids[i]);
    }
    free(ids);
}

#define THREADS        4
#define IDS_PER_THREAD 2500

static void *make_v7_ids(void *arg)
{
    char(*ids)[UUID_STR_LEN] = arg;
    for (int i = 0; i < IDS_PER_THREAD; i++)
        uuid_v7(ids[i]);
    return NULL;
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_v7_unique_across_threads(void **state)
{
    (void)state;
    char(*ids)[UUID_STR_LEN] = malloc(sizeof *ids * THREADS * IDS_PER_THREAD);
    assert_non_null(ids);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, make_v7_ids, ids + i * IDS_PER_THREAD), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    /* Each thread's own ids are in order... */
    for (int i = 0; i < THREADS * IDS_PER_THREAD; i++)
        if (i % IDS_PER_THREAD != 0)
            assert_true(strcmp(ids[i - 1], ids[i]) < 0);
    /* ...and no id was handed out twice. */
    qsort(ids, THREADS * IDS_PER_THREAD, sizeof *ids, compare_ids);
    for (int i = 1; i < THREADS * IDS_PER_THREAD; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

static void test_validation(void **state)
{
    (void)state;
    assert_true(uuid_valid("123e4567-e89b-12d3-a456-426614174000"));
    assert_true(uuid_valid("123E4567-E89B-12D3-A456-426614174000")); /* either case */
    assert_true(uuid_valid("00000000-0000-0000-0000-000000000000"));
    static const char *bad[] = {
        "",
        "123e4567e89b12d3a456426614174000",      /* no dashes */
        "123e4567-e89b-12d3-a456-42661417400",   /* short */
        "123e4567-e89b-12d3-a456-4266141740000", /* long */
        "123e4567-e89b-12d3-a456_426614174000",
        "123e456-7e89b-12d3-a456-426614174000", /* dash misplaced */
        "g23e4567-e89b-12d3-a456-426614174000",
        "{123e4567-e89b-12d3-a456-426614174000}",
        " 123e4567-e89b-12d3-a456-42661417400",
        "123e4567-e89b-12d3-a456-42661417400\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (uuid_valid(bad[i]))
            fail_msg("accepted '%s'", bad[i]);
    assert_false(uuid_valid(NULL));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_shape_and_uniqueness),
        cmocka_unit_test(test_v7_shape_and_timestamp),
        cmocka_unit_test(test_v7_strictly_increasing),
        cmocka_unit_test(test_v7_unique_across_threads),
        cmocka_unit_test(test_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
