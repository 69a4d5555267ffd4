/*
 * test_uuid.c - kms_uuid_generate cuts ids from per-thread pools of CSPRNG bytes
 * (src/util/util.c): across pool refills and threads every id is a well-formed v4 UUID and none
 * repeats. (Format and uniqueness within one pool are also covered by test_util.c.)
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kms/util.h"

enum { KMS_TEST_UUIDS = 300 }; /* several 64-id pools per thread */

static void kms_test_assert_v4(const char *s)
{
    assert_int_equal(strlen(s), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(s[i], '-');
        else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            fail_msg("not lower-case hex at %d: %s", i, s);
    }
    assert_int_equal(s[14], '4');           /* version 4 (random) */
    assert_non_null(strchr("89ab", s[19])); /* RFC 4122 variant */
}

static void *kms_test_uuid_thread(void *arg)
{
    char(*ids)[KMS_UUID_LEN] = arg;

    for (int i = 0; i < KMS_TEST_UUIDS; i++)
        kms_uuid_generate(ids[i]);
    return NULL;
}

static void test_uuid_pools_and_threads(void **state)
{
    static char ids[2 * KMS_TEST_UUIDS][KMS_UUID_LEN];
    pthread_t t;

    (void)state;
    assert_int_equal(pthread_create(&t, NULL, kms_test_uuid_thread, ids[KMS_TEST_UUIDS]), 0);
    kms_test_uuid_thread(ids[0]);
    assert_int_equal(pthread_join(t, NULL), 0);
    for (int i = 0; i < 2 * KMS_TEST_UUIDS; i++) {
        kms_test_assert_v4(ids[i]);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_pools_and_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
