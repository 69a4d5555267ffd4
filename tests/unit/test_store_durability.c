/*
 * test_store_durability.c - the SQLite settings the durability promise rests on
 * (docs/security.md §17), as every connection of the store has them: WAL journal,
 * synchronous=FULL (the WAL is fsynced before COMMIT returns), foreign keys, secure_delete,
 * a busy timeout and a bounded WAL; and that a committed write is visible to a fresh,
 * independent connection (what a restarted kmsd would open).
 */
#include <pthread.h>
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

#include "kms/log.h"
#include "kms/store.h"
#include "store/db_internal.h"

static char test_dir[] = "/tmp/kms-durability-XXXXXX";
static char db_path[128];

static int setup(void **state)
{
    (void)state;
    kms_log_set_quiet(1);
    if (mkdtemp(test_dir) == NULL)
        return -1;
    snprintf(db_path, sizeof(db_path), "%s/kmsd.db", test_dir);
    if (kms_store_init(db_path) != KMS_OK || kms_store_migrate() != KMS_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[64];

    (void)state;
    kms_store_shutdown();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", test_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int64_t pragma_int(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v;

    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void check_settings(sqlite3 *h)
{
    sqlite3_stmt *st = NULL;

    assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(pragma_int(h, "PRAGMA synchronous"), 2); /* FULL */
    assert_int_equal(pragma_int(h, "PRAGMA foreign_keys"), 1);
    assert_int_equal(pragma_int(h, "PRAGMA secure_delete"), 1);
    assert_int_equal(pragma_int(h, "PRAGMA busy_timeout"), 10000);
    assert_int_equal(pragma_int(h, "PRAGMA journal_size_limit"), 16 * 1024 * 1024);
    assert_int_equal(pragma_int(h, "PRAGMA wal_autocheckpoint"), 1000);
}

static void test_main_connection(void **state)
{
    struct kms_db *db = kms_store_thread();

    (void)state;
    assert_non_null(db);
    check_settings(db->db_handle);
}

static void *other_thread(void *arg)
{
    struct kms_db *db = kms_store_thread();

    (void)arg;
    if (db == NULL)
        return (void *)1;
    check_settings(db->db_handle);
    kms_store_thread_done();
    return NULL;
}

static void test_every_thread_connection(void **state)
{
    pthread_t t;
    void *ret = (void *)1;

    (void)state;
    assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_null(ret);
}

static void test_commit_is_visible_to_a_new_connection(void **state)
{
    struct kms_db *db = kms_store_thread();
    struct kms_buf value = {0};
    sqlite3 *fresh = NULL;
    sqlite3_stmt *st = NULL;

    (void)state;
    assert_int_equal(kms_store_begin(db), KMS_OK);
    assert_int_equal(kms_store_meta_set(db, "durability-probe", "committed", 9), KMS_OK);
    assert_int_equal(kms_store_commit(db), KMS_OK);
    assert_int_equal(sqlite3_open_v2(db_path, &fresh, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(fresh, "SELECT value FROM meta WHERE name = ?", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, "durability-probe", -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_memory_equal(sqlite3_column_blob(st, 0), "committed", 9);
    sqlite3_finalize(st);
    sqlite3_close(fresh);
    /* A rolled-back write is not there. */
    assert_int_equal(kms_store_begin(db), KMS_OK);
    assert_int_equal(kms_store_meta_set(db, "durability-rolled-back", "x", 1), KMS_OK);
    kms_store_rollback(db);
    assert_int_equal(kms_store_meta_get(db, "durability-rolled-back", &value),
                     KMS_E_RESOURCE_NOT_FOUND);
    kms_buf_free(&value);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_main_connection),
        cmocka_unit_test(test_every_thread_connection),
        cmocka_unit_test(test_commit_is_visible_to_a_new_connection),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
