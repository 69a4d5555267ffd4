/*
 * test_harden.c - process hardening (src/util/harden.c): the process becomes non-dumpable with
 * no core limit; secret pages are zeroed, page-aligned, excluded from core dumps and wiped;
 * the data directory and its files are made private; TLS keys open to others are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kms/config.h"
#include "kms/harden.h"
#include "kms/log.h"

static char test_dir[] = "/tmp/kms-harden-XXXXXX";

static int setup(void **state)
{
    (void)state;
    kms_log_set_quiet(1);
    return mkdtemp(test_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[64];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", test_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void make_file(const char *path, mode_t mode)
{
    FILE *f;

    unlink(path); /* a read-only file left by the previous case */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static void test_process(void **state)
{
    struct kms_config cfg;
    struct rlimit rl;

    (void)state;
    kms_config_defaults(&cfg);
    assert_int_equal(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
    assert_int_equal(kms_harden_process(&cfg), KMS_OK);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    assert_true(rl.rlim_cur == 0 && rl.rlim_max == 0);
    /* The descriptor limit was raised towards max_connections where the hard limit allows. */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_true(rl.rlim_cur >= (rlim_t)cfg.max_connections || rl.rlim_cur == rl.rlim_max);
}

static void test_lock_memory_off(void **state)
{
    struct kms_config cfg;

    (void)state;
    kms_config_defaults(&cfg);
    assert_false(cfg.lock_memory);
    assert_int_equal(kms_harden_lock_memory(&cfg), KMS_OK);
}

static void test_secure_alloc(void **state)
{
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *p = kms_secure_alloc(100);
    uint8_t *big;

    (void)state;
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % (uintptr_t)page, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(p[i], 0);
    memset(p, 0xa5, 100);
    kms_secure_free(p, 100);
    /* Spanning pages: all of it usable. */
    big = kms_secure_alloc((size_t)page + 1);
    assert_non_null(big);
    big[page] = 1;
    kms_secure_free(big, (size_t)page + 1);
    assert_null(kms_secure_alloc(0));
    kms_secure_free(NULL, 10);
}

static void test_private_dir(void **state)
{
    char dir[64];

    (void)state;
    snprintf(dir, sizeof(dir), "%s/d", test_dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(kms_harden_private_dir(dir), KMS_OK);
    assert_int_equal(mode_of(dir), 0700);
    assert_int_equal(chmod(dir, 0770), 0);
    assert_int_equal(kms_harden_private_dir(dir), KMS_OK);
    assert_int_equal(mode_of(dir), 0700);
    assert_int_equal(kms_harden_private_dir(dir), KMS_OK); /* already private: unchanged */
    assert_int_equal(mode_of(dir), 0700);
    /* Absent, or a file where a directory should be: refused. */
    snprintf(dir, sizeof(dir), "%s/absent", test_dir);
    assert_int_equal(kms_harden_private_dir(dir), KMS_E_INTERNAL);
    snprintf(dir, sizeof(dir), "%s/file", test_dir);
    make_file(dir, 0600);
    assert_int_equal(kms_harden_private_dir(dir), KMS_E_INTERNAL);
}

static void test_private_file(void **state)
{
    static const mode_t open_modes[] = {0644, 0604, 0660, 0606, 0640, 0610, 0601, 0666};
    char path[64];

    (void)state;
    snprintf(path, sizeof(path), "%s/db", test_dir);
    for (size_t i = 0; i < sizeof(open_modes) / sizeof(open_modes[0]); i++) {
        make_file(path, open_modes[i]);
        assert_int_equal(kms_harden_private_file(path), KMS_OK);
        assert_int_equal(mode_of(path), open_modes[i] & 0700);
    }
    make_file(path, 0400);
    assert_int_equal(kms_harden_private_file(path), KMS_OK);
    assert_int_equal(mode_of(path), 0400);
    /* Absent is fine (the WAL of a cleanly stopped database); a directory is not. */
    snprintf(path, sizeof(path), "%s/absent", test_dir);
    assert_int_equal(kms_harden_private_file(path), KMS_OK);
    snprintf(path, sizeof(path), "%s/dir", test_dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(kms_harden_private_file(path), KMS_E_INTERNAL);
}

static void test_key_file(void **state)
{
    static const mode_t refused[] = {0644, 0604, 0601, 0606, 0660, 0620, 0666, 0777};
    static const mode_t accepted[] = {0600, 0400, 0640, 0440};
    char path[64];

    (void)state;
    snprintf(path, sizeof(path), "%s/key.pem", test_dir);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        make_file(path, refused[i]);
        assert_int_equal(kms_harden_key_file(path, "TLS key"), KMS_E_INTERNAL);
        assert_int_equal(mode_of(path), refused[i]); /* not "fixed": the key may have leaked */
    }
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        make_file(path, accepted[i]);
        assert_int_equal(kms_harden_key_file(path, "TLS key"), KMS_OK);
    }
    snprintf(path, sizeof(path), "%s/nokey.pem", test_dir);
    assert_int_equal(kms_harden_key_file(path, "TLS key"), KMS_E_INTERNAL);
}

static void test_check_files(void **state)
{
    struct kms_config cfg;
    char path[PATH_MAX + 32];
    char err[256];

    (void)state;
    kms_config_defaults(&cfg);
    snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s/data", test_dir);
    assert_true(kms_config_finish(&cfg, err, sizeof(err)));
    assert_int_equal(mkdir(cfg.data_dir, 0755), 0);
    assert_int_equal(chmod(cfg.data_dir, 0755), 0);
    snprintf(path, sizeof(path), "%s/tls", cfg.data_dir);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(chmod(path, 0755), 0);
    make_file(cfg.tls_key_file, 0600);
    snprintf(path, sizeof(path), "%s/kmsd.db", cfg.data_dir);
    make_file(path, 0644);
    snprintf(path, sizeof(path), "%s/kmsd.db-shm", cfg.data_dir);
    make_file(path, 0666);
    assert_int_equal(kms_harden_check_files(&cfg), KMS_OK);
    assert_int_equal(mode_of(cfg.data_dir), 0700);
    assert_int_equal(mode_of(path), 0600);
    snprintf(path, sizeof(path), "%s/kmsd.db", cfg.data_dir);
    assert_int_equal(mode_of(path), 0600);
    snprintf(path, sizeof(path), "%s/tls", cfg.data_dir);
    assert_int_equal(mode_of(path), 0700);
    /* A TLS key open to others stops everything; without TLS it is not read at all. */
    assert_int_equal(chmod(cfg.tls_key_file, 0644), 0);
    assert_int_equal(kms_harden_check_files(&cfg), KMS_E_INTERNAL);
    cfg.insecure_plain_http = true;
    assert_int_equal(kms_harden_check_files(&cfg), KMS_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_process),      cmocka_unit_test(test_lock_memory_off),
        cmocka_unit_test(test_secure_alloc), cmocka_unit_test(test_private_dir),
        cmocka_unit_test(test_private_file), cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_check_files),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
