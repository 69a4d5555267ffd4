/*
 * test_nonces_store.c - the replay cache's durable copy (src/store/nonces.c) on a fresh
 * database: batches written and read back entry by entry, expired entries and batches left out,
 * the purge deleting a batch only once all of its entries have expired, rows carried over from
 * the one-row-per-nonce table read as single entries, and a malformed batch refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "kms/store.h"

#define MAX_SEEN 64

static char test_dir[] = "/tmp/kms-nonces-store-XXXXXX";
static char db_path[128];
static struct kms_db *db;

struct seen {
    uint64_t hash[MAX_SEEN];
    int64_t expires[MAX_SEEN];
    size_t count;
};

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(test_dir) == NULL)
        return -1;
    snprintf(db_path, sizeof(db_path), "%s/kmsd.db", test_dir);
    if (kms_store_init(db_path) != KMS_OK || kms_store_migrate() != KMS_OK)
        return -1;
    db = kms_store_thread();
    return db ? 0 : -1;
}

static int teardown(void **state)
{
    char path[160];

    (void)state;
    kms_store_shutdown();
    for (const char *suffix = "kmsd.db\0kmsd.db-wal\0kmsd.db-shm\0"; *suffix;
         suffix += strlen(suffix) + 1) {
        snprintf(path, sizeof(path), "%s/%s", test_dir, suffix);
        unlink(path);
    }
    rmdir(test_dir);
    return 0;
}

/* Each test starts from an empty table. */
static int clear_table(void **state)
{
    (void)state;
    return kms_store_nonces_purge(db, INT64_MAX) == KMS_OK ? 0 : -1;
}

static void collect(uint64_t hash, int64_t expires_at, void *arg)
{
    struct seen *s = arg;

    assert_true(s->count < MAX_SEEN);
    s->hash[s->count] = hash;
    s->expires[s->count] = expires_at;
    s->count++;
}

static bool seen_has(const struct seen *s, uint64_t hash, int64_t expires_at)
{
    for (size_t i = 0; i < s->count; i++)
        if (s->hash[i] == hash && s->expires[i] == expires_at)
            return true;
    return false;
}

/* Runs sql on a second connection, as another program writing the file would. */
static void raw_exec(const char *sql)
{
    sqlite3 *h = NULL;

    assert_int_equal(sqlite3_open(db_path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
}

static void test_batches_round_trip(void **state)
{
    /* Every bit of the hash counts, the top one (SQLite integers are signed) included. */
    const uint64_t h1[] = {1, 0xffffffffffffffffULL, 0x8000000000000000ULL};
    const int64_t e1[] = {1000, 1100, 1200};
    const uint64_t h2[] = {0x0123456789abcdefULL};
    const int64_t e2[] = {5000};
    struct seen s = {0};

    (void)state;
    assert_int_equal(kms_store_nonces_put(db, h1, e1, 3), KMS_OK);
    assert_int_equal(kms_store_nonces_put(db, h2, e2, 1), KMS_OK);
    assert_int_equal(kms_store_nonces_put(db, h2, e2, 0), KMS_OK); /* nothing to write */
    assert_int_equal(kms_store_nonces_load(db, 0, collect, &s), KMS_OK);
    assert_int_equal(s.count, 4);
    for (size_t i = 0; i < 3; i++)
        assert_true(seen_has(&s, h1[i], e1[i]));
    assert_true(seen_has(&s, h2[0], e2[0]));
}

static void test_load_skips_expired_entries(void **state)
{
    const uint64_t h[] = {11, 12, 13};
    const int64_t e[] = {1000, 2000, 3000};
    const uint64_t old[] = {21};
    const int64_t old_e[] = {1500};
    struct seen s = {0};

    (void)state;
    assert_int_equal(kms_store_nonces_put(db, h, e, 3), KMS_OK);
    assert_int_equal(kms_store_nonces_put(db, old, old_e, 1), KMS_OK);
    /* At 2000: the first batch still holds 13, the second has nothing left. */
    assert_int_equal(kms_store_nonces_load(db, 2000, collect, &s), KMS_OK);
    assert_int_equal(s.count, 1);
    assert_true(seen_has(&s, 13, 3000));
}

static void test_purge_waits_for_the_last_entry(void **state)
{
    const uint64_t h[] = {31, 32};
    const int64_t e[] = {1000, 4000};
    const uint64_t h2[] = {41};
    const int64_t e2[] = {2000};
    struct seen s = {0};

    (void)state;
    assert_int_equal(kms_store_nonces_put(db, h, e, 2), KMS_OK);
    assert_int_equal(kms_store_nonces_put(db, h2, e2, 1), KMS_OK);
    assert_int_equal(kms_store_nonces_purge(db, 3000), KMS_OK);
    /* The second batch is gone; the first stays until 4000, 32 in it. */
    assert_int_equal(kms_store_nonces_load(db, 0, collect, &s), KMS_OK);
    assert_int_equal(s.count, 2);
    assert_true(seen_has(&s, 31, 1000));
    assert_true(seen_has(&s, 32, 4000));
    assert_int_equal(kms_store_nonces_purge(db, 4000), KMS_OK);
    s.count = 0;
    assert_int_equal(kms_store_nonces_load(db, 0, collect, &s), KMS_OK);
    assert_int_equal(s.count, 0);
}

static void test_rows_from_the_old_table_are_read(void **state)
{
    struct seen s = {0};

    (void)state;
    /* What schema migration 5 leaves of the one-row-per-nonce table: the hash as an INTEGER. */
    raw_exec("INSERT INTO nonce_batches (expires_max, entries) VALUES (7000, -2), (900, 5)");
    assert_int_equal(kms_store_nonces_load(db, 1000, collect, &s), KMS_OK);
    assert_int_equal(s.count, 1);
    assert_true(seen_has(&s, 0xfffffffffffffffeULL, 7000));
    assert_int_equal(kms_store_nonces_purge(db, 7000), KMS_OK);
    s.count = 0;
    assert_int_equal(kms_store_nonces_load(db, 0, collect, &s), KMS_OK);
    assert_int_equal(s.count, 0);
}

static void test_malformed_batch_is_refused(void **state)
{
    struct seen s = {0};

    (void)state;
    /* 15 bytes: not whole entries. Loading fails rather than guess at what was meant. */
    raw_exec("INSERT INTO nonce_batches (expires_max, entries) "
             "VALUES (7000, x'000102030405060708090a0b0c0d0e')");
    assert_int_not_equal(kms_store_nonces_load(db, 1000, collect, &s), KMS_OK);
    raw_exec("DELETE FROM nonce_batches");
    raw_exec("INSERT INTO nonce_batches (expires_max, entries) VALUES (7000, 'text')");
    assert_int_not_equal(kms_store_nonces_load(db, 1000, collect, &s), KMS_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_batches_round_trip, clear_table),
        cmocka_unit_test_setup(test_load_skips_expired_entries, clear_table),
        cmocka_unit_test_setup(test_purge_waits_for_the_last_entry, clear_table),
        cmocka_unit_test_setup(test_rows_from_the_old_table_are_read, clear_table),
        cmocka_unit_test_setup(test_malformed_batch_is_refused, clear_table),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
