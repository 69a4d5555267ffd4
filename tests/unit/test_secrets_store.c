/*
 * test_secrets_store.c - the secrets tables (src/store/secrets.c) on a fresh database: secrets and
 * their uniqueness, versions, stage labels that live on one version at a time, listing with and
 * without deprecated versions, rolling off old unlabelled versions, the ListSecrets filters (AND
 * across filters, OR within, literal substrings), live counts and due secrets around
 * PlannedDeleteTime, deletion with everything attached, and the tag rows of live resources.
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

#include "kms/store.h"

static char test_dir[] = "/tmp/kms-secrets-store-XXXXXX";
static struct kms_db *db;

static int setup(void **state)
{
    char path[128];

    (void)state;
    if (mkdtemp(test_dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/kmsd.db", test_dir);
    if (kms_store_init(path) != KMS_OK || kms_store_migrate() != KMS_OK)
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

static void add_secret(const char *name, const char *desc, int64_t created, int64_t delete_at)
{
    struct kms_secret_record s;

    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", name);
    s.description = (char *)desc;
    snprintf(s.key_id, sizeof(s.key_id), "key-1");
    snprintf(s.secret_type, sizeof(s.secret_type), "Generic");
    s.created_at = s.updated_at = created;
    s.delete_at = delete_at;
    assert_int_equal(kms_store_secret_insert(db, &s), KMS_OK);
}

static void add_version(const char *name, const char *version_id, int64_t created)
{
    struct kms_secret_version_record v;
    uint8_t dk[4] = {1, 2, 3, 4}, sealed[3] = {9, 8, 7};

    memset(&v, 0, sizeof(v));
    snprintf(v.version_id, sizeof(v.version_id), "%s", version_id);
    snprintf(v.data_type, sizeof(v.data_type), "text");
    v.created_at = created;
    v.data_key = dk;
    v.data_key_len = sizeof(dk);
    v.sealed_value = sealed;
    v.sealed_value_len = sizeof(sealed);
    assert_int_equal(kms_store_secret_version_insert(db, name, &v), KMS_OK);
}

static void add_tag(const char *type, const char *id, const char *key, const char *value)
{
    struct kms_tag t = {(char *)key, (char *)value};

    assert_int_equal(kms_store_tags_put(db, type, id, &t, 1), KMS_OK);
}

/* The stages of a version, joined with ",". */
static void stages_of(const char *name, const char *version_id, char *out, size_t size)
{
    char **stages = NULL;
    size_t n = 0;

    assert_int_equal(kms_store_secret_stages(db, name, version_id, &stages, &n), KMS_OK);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? "," : "", stages[i]);
    kms_store_free_list(stages, n);
}

/* Names a filtered listing returns, joined with ",". */
static void list_names(const struct kms_secret_filter *f, size_t nf, int64_t now, char *out,
                       size_t size, int64_t *total)
{
    struct kms_secret_record *list = NULL;
    size_t n = 0;

    assert_int_equal(kms_store_secret_list(db, now, f, nf, 0, 100, &list, &n, total), KMS_OK);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? "," : "", list[i].name);
    kms_secret_records_free(list, n);
}

static void test_secret_rows(void **state)
{
    struct kms_secret_record s;
    struct kms_secret_version_record v;

    (void)state;
    add_secret("alpha", "first", 100, 0);
    assert_int_equal(kms_store_secret_get(db, "alpha", &s), KMS_OK);
    assert_string_equal(s.description, "first");
    assert_string_equal(s.key_id, "key-1");
    assert_int_equal(s.created_at, 100);
    free(s.description);
    s.description = "changed";
    s.updated_at = 200;
    s.delete_at = 999;
    assert_int_equal(kms_store_secret_update(db, &s), KMS_OK);
    s.description = NULL;
    assert_int_equal(kms_store_secret_get(db, "alpha", &s), KMS_OK);
    assert_string_equal(s.description, "changed");
    assert_int_equal(s.updated_at, 200);
    assert_int_equal(s.delete_at, 999);
    kms_secret_record_free(&s);
    assert_int_equal(kms_store_secret_get(db, "ALPHA", &s), KMS_E_RESOURCE_NOT_FOUND);

    /* Names and version ids are unique. */
    {
        struct kms_secret_record dup;
        memset(&dup, 0, sizeof(dup));
        snprintf(dup.name, sizeof(dup.name), "alpha");
        assert_int_equal(kms_store_secret_insert(db, &dup), KMS_E_RESOURCE_EXISTS);
    }
    add_version("alpha", "v1", 100);
    {
        struct kms_secret_version_record dup;
        uint8_t b = 1;
        memset(&dup, 0, sizeof(dup));
        snprintf(dup.version_id, sizeof(dup.version_id), "v1");
        snprintf(dup.data_type, sizeof(dup.data_type), "text");
        dup.data_key = dup.sealed_value = &b;
        dup.data_key_len = dup.sealed_value_len = 1;
        assert_int_equal(kms_store_secret_version_insert(db, "alpha", &dup), KMS_E_RESOURCE_EXISTS);
        /* A version needs its secret. */
        assert_int_not_equal(kms_store_secret_version_insert(db, "nobody", &dup), KMS_OK);
    }
    assert_int_equal(kms_store_secret_version_get(db, "alpha", "v1", &v), KMS_OK);
    assert_int_equal(v.data_key_len, 4);
    assert_int_equal(v.sealed_value_len, 3);
    assert_int_equal(v.sealed_value[0], 9);
    kms_secret_version_record_free(&v);
    assert_int_equal(kms_store_secret_version_get(db, "alpha", "v2", &v), KMS_E_RESOURCE_NOT_FOUND);
    assert_int_equal(kms_store_secret_delete(db, "alpha"), KMS_OK);
}

static void test_stages_and_versions(void **state)
{
    char buf[256], holder[KMS_SECRET_VERSION_MAX + 1];
    struct kms_secret_version_record *list = NULL;
    size_t n = 0;
    int64_t total = 0, remaining = 0;

    (void)state;
    add_secret("staged", "", 100, 0);
    add_version("staged", "v1", 100);
    add_version("staged", "v2", 100); /* same second: creation order falls back to insertion */
    add_version("staged", "v3", 101);
    assert_int_equal(kms_store_secret_stage_set(db, "staged", "ACSCurrent", "v1"), KMS_OK);
    assert_int_equal(kms_store_secret_stage_set(db, "staged", "Blue", "v1"), KMS_OK);
    /* A label lives on one version: setting it elsewhere moves it. */
    assert_int_equal(kms_store_secret_stage_set(db, "staged", "ACSCurrent", "v3"), KMS_OK);
    assert_int_equal(kms_store_secret_stage_get(db, "staged", "ACSCurrent", holder), KMS_OK);
    assert_string_equal(holder, "v3");
    stages_of("staged", "v1", buf, sizeof(buf));
    assert_string_equal(buf, "Blue");
    stages_of("staged", "v3", buf, sizeof(buf));
    assert_string_equal(buf, "ACSCurrent");
    stages_of("staged", "v2", buf, sizeof(buf));
    assert_string_equal(buf, "");
    assert_int_equal(kms_store_secret_stage_get(db, "staged", "Green", holder),
                     KMS_E_RESOURCE_NOT_FOUND);
    /* A label can only name a version of its own secret. */
    assert_int_not_equal(kms_store_secret_stage_set(db, "staged", "Red", "v9"), KMS_OK);

    assert_int_equal(kms_store_secret_version_list(db, "staged", false, 0, 10, &list, &n, &total),
                     KMS_OK);
    assert_int_equal(total, 2);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].version_id, "v1");
    assert_string_equal(list[1].version_id, "v3");
    assert_null(list[0].data_key);
    kms_secret_version_records_free(list, n);
    assert_int_equal(kms_store_secret_version_list(db, "staged", true, 1, 1, &list, &n, &total),
                     KMS_OK);
    assert_int_equal(total, 3);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].version_id, "v2");
    kms_secret_version_records_free(list, n);

    /* Rolling off: only unlabelled versions go, oldest first. */
    add_version("staged", "v4", 102);
    assert_int_equal(kms_store_secret_versions_prune(db, "staged", 10, &remaining), KMS_OK);
    assert_int_equal(remaining, 4);
    assert_int_equal(kms_store_secret_versions_prune(db, "staged", 2, &remaining), KMS_OK);
    assert_int_equal(remaining, 2); /* v2 and v4 went */
    assert_int_equal(kms_store_secret_versions_prune(db, "staged", 1, &remaining), KMS_OK);
    assert_int_equal(remaining, 2); /* both left carry a label */
    assert_int_equal(kms_store_secret_version_list(db, "staged", true, 0, 10, &list, &n, &total),
                     KMS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].version_id, "v1");
    assert_string_equal(list[1].version_id, "v3");
    kms_secret_version_records_free(list, n);

    assert_int_equal(kms_store_secret_stage_remove(db, "staged", "Blue"), KMS_OK);
    stages_of("staged", "v1", buf, sizeof(buf));
    assert_string_equal(buf, "");

    /* Deleting the secret takes versions, labels and tags along. */
    add_tag("secret", "staged", "k", "v");
    assert_int_equal(kms_store_secret_delete(db, "staged"), KMS_OK);
    add_secret("staged", "", 200, 0);
    assert_int_equal(kms_store_secret_version_list(db, "staged", true, 0, 10, &list, &n, &total),
                     KMS_OK);
    assert_int_equal(total, 0);
    kms_secret_version_records_free(list, n);
    assert_int_equal(kms_store_secret_stage_get(db, "staged", "ACSCurrent", holder),
                     KMS_E_RESOURCE_NOT_FOUND);
    assert_int_equal(kms_store_tags_count(db, "secret", "staged", &total), KMS_OK);
    assert_int_equal(total, 0);
    assert_int_equal(kms_store_secret_delete(db, "staged"), KMS_OK);
}

static void test_filters_and_deletion_times(void **state)
{
    const char *db_words[] = {"-db"};
    const char *two_names[] = {"a_b", "c%d"};
    const char *pct[] = {"%"};
    const char *under[] = {"_"};
    const char *env[] = {"env"};
    const char *prod_dev[] = {"prod", "dev"};
    const char *token[] = {"token"};
    const char *generic[] = {"Generic"};
    const char *rds[] = {"Rds"};
    char buf[512];
    int64_t total = 0, count = 0;
    char **due = NULL;
    size_t due_count = 0;
    struct kms_tag_row *rows = NULL;
    size_t row_count = 0;

    (void)state;
    add_secret("main-db", "database password", 10, 0);
    add_secret("api-token", "an api token", 11, 0);
    add_secret("a_b", "under", 12, 0);
    add_secret("c%d", "percent", 13, 0);
    add_secret("old-db", "pending", 14, 500);
    add_tag("secret", "main-db", "env", "prod");
    add_tag("secret", "api-token", "env", "dev");
    add_tag("secret", "old-db", "env", "prod");

    list_names(NULL, 0, 100, buf, sizeof(buf), &total);
    assert_string_equal(buf, "main-db,api-token,a_b,c%d,old-db");
    assert_int_equal(total, 5);
    /* Past PlannedDeleteTime a secret is neither listed nor counted. */
    list_names(NULL, 0, 500, buf, sizeof(buf), &total);
    assert_string_equal(buf, "main-db,api-token,a_b,c%d");
    assert_int_equal(kms_store_secret_count(db, 499, &count), KMS_OK);
    assert_int_equal(count, 5);
    assert_int_equal(kms_store_secret_count(db, 500, &count), KMS_OK);
    assert_int_equal(count, 4);
    assert_int_equal(kms_store_secrets_due(db, 499, &due, &due_count), KMS_OK);
    assert_int_equal(due_count, 0);
    kms_store_free_list(due, due_count);
    assert_int_equal(kms_store_secrets_due(db, 500, &due, &due_count), KMS_OK);
    assert_int_equal(due_count, 1);
    assert_string_equal(due[0], "old-db");
    kms_store_free_list(due, due_count);

    {
        struct kms_secret_filter f[] = {{KMS_SECRET_FILTER_NAME, db_words, 1}};
        list_names(f, 1, 100, buf, sizeof(buf), &total);
        assert_string_equal(buf, "main-db,old-db");
    }
    {
        /* Literal substrings: % and _ are not wildcards. */
        struct kms_secret_filter f[] = {{KMS_SECRET_FILTER_NAME, two_names, 2}};
        list_names(f, 1, 100, buf, sizeof(buf), &total);
        assert_string_equal(buf, "a_b,c%d");
        struct kms_secret_filter g[] = {{KMS_SECRET_FILTER_NAME, pct, 1},
                                        {KMS_SECRET_FILTER_NAME, under, 1}};
        list_names(g, 2, 100, buf, sizeof(buf), &total);
        assert_string_equal(buf, "");
    }
    {
        struct kms_secret_filter f[] = {{KMS_SECRET_FILTER_TAG_KEY, env, 1},
                                        {KMS_SECRET_FILTER_NAME, db_words, 1}};
        list_names(f, 2, 100, buf, sizeof(buf), &total);
        assert_string_equal(buf, "main-db,old-db");
        assert_int_equal(total, 2);
        list_names(f, 2, 500, buf, sizeof(buf), &total);
        assert_string_equal(buf, "main-db");
    }
    {
        struct kms_secret_filter f[] = {{KMS_SECRET_FILTER_TAG_VALUE, prod_dev, 2},
                                        {KMS_SECRET_FILTER_TYPE, generic, 1}};
        list_names(f, 2, 100, buf, sizeof(buf), &total);
        assert_string_equal(buf, "main-db,api-token,old-db");
        struct kms_secret_filter g[] = {{KMS_SECRET_FILTER_DESCRIPTION, token, 1}};
        list_names(g, 1, 100, buf, sizeof(buf), &total);
        assert_string_equal(buf, "api-token");
        struct kms_secret_filter h[] = {{KMS_SECRET_FILTER_TYPE, rds, 1}};
        list_names(h, 1, 100, buf, sizeof(buf), &total);
        assert_string_equal(buf, "");
        assert_int_equal(total, 0);
    }
    {
        /* Paging: offset and limit after filtering; total counts every match. */
        struct kms_secret_record *list = NULL;
        size_t n = 0;
        assert_int_equal(kms_store_secret_list(db, 100, NULL, 0, 1, 2, &list, &n, &total), KMS_OK);
        assert_int_equal(n, 2);
        assert_int_equal(total, 5);
        assert_string_equal(list[0].name, "api-token");
        assert_string_equal(list[1].name, "a_b");
        kms_secret_records_free(list, n);
    }

    /* Tag rows: only live secrets, ordered by resource then key. */
    add_tag("secret", "main-db", "a", "1");
    assert_int_equal(kms_store_tag_rows(db, "secret", 100, &rows, &row_count), KMS_OK);
    assert_int_equal(row_count, 4);
    assert_string_equal(rows[0].resource_id, "api-token");
    assert_string_equal(rows[1].resource_id, "main-db");
    assert_string_equal(rows[1].key, "a");
    assert_string_equal(rows[2].key, "env");
    assert_string_equal(rows[3].resource_id, "old-db");
    kms_tag_rows_free(rows, row_count);
    assert_int_equal(kms_store_tag_rows(db, "secret", 500, &rows, &row_count), KMS_OK);
    assert_int_equal(row_count, 3);
    kms_tag_rows_free(rows, row_count);
    /* Tags of a key that does not exist are not listed. */
    add_tag("key", "ghost", "a", "1");
    assert_int_equal(kms_store_tag_rows(db, "key", 100, &rows, &row_count), KMS_OK);
    assert_int_equal(row_count, 0);
    kms_tag_rows_free(rows, row_count);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_rows),
        cmocka_unit_test(test_stages_and_versions),
        cmocka_unit_test(test_filters_and_deletion_times),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
