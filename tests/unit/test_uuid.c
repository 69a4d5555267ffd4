/*
 * test_uuid.c - kms_uuid_generate and kms_rand_public cut ids and IVs from per-thread pools of
 * CSPRNG bytes (src/util/util.c): across pool refills and threads every id is a well-formed v4
 * UUID and none repeats; IVs never repeat, not across a pool refill, not in a forked child.
 * (Format and uniqueness within one pool are also covered by test_util.c.)
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

enum { KMS_TEST_IVS = 200 }; /* 2.4 KB of 12-byte IVs: past two pool refills */

static void test_rand_public_never_repeats(void **state)
{
    static uint8_t iv[KMS_TEST_IVS][12];
    uint8_t big[3000], zero[sizeof(big)] = {0};

    (void)state;
    for (int i = 0; i < KMS_TEST_IVS; i++) {
        assert_true(kms_rand_public(iv[i], sizeof(iv[i])));
        for (int j = 0; j < i; j++)
            assert_memory_not_equal(iv[i], iv[j], sizeof(iv[i]));
    }
    /* Larger than the pool: straight from the CSPRNG. */
    assert_true(kms_rand_public(big, sizeof(big)));
    assert_memory_not_equal(big, zero, sizeof(big));
}

static void test_rand_public_after_fork(void **state)
{
    uint8_t mine[12], childs[12];
    int fds[2], status = 0;
    pid_t pid;

    (void)state;
    /* Draw once so the pool is full of bytes the child would otherwise inherit. */
    assert_true(kms_rand_public(mine, sizeof(mine)));
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t out[12];

        close(fds[0]);
        _exit(kms_rand_public(out, sizeof(out)) && write(fds[1], out, sizeof(out)) == 12 ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], childs, sizeof(childs)), sizeof(childs));
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(status, 0);
    assert_true(kms_rand_public(mine, sizeof(mine)));
    assert_memory_not_equal(mine, childs, sizeof(mine)); /* the parent's next 12 bytes */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_pools_and_threads),
        cmocka_unit_test(test_rand_public_never_repeats),
        cmocka_unit_test(test_rand_public_after_fork),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
