/*
 * access_key.c - kmsadm access-key create|list|disable|enable: the admin access keys of a data
 * directory (spec/protocol.md §13), with secrets shown once at creation and kept sealed under
 * the master key; and, with `--aap NAME`, access keys of an application access point that
 * authenticates with access keys (spec/actions.md I5, the same as CreateAccessKey).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/auth.h"
#include "kms/store.h"
#include "kms/util.h"
#include "kmsadm.h"

static int kmsadm_ak_create(struct kmsadm *a, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"description", required_argument, NULL, 'd'},
        {"id", required_argument, NULL, 'i'},
        {"aap", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    const char *description = "admin", *id = NULL, *aap = NULL;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == 'd')
            description = optarg;
        else if (opt == 'i')
            id = optarg;
        else if (opt == 'a')
            aap = optarg;
        else
            return KMSADM_USAGE;
    }
    if (optind != argc)
        return kmsadm_fail("access-key create: unexpected argument %s", argv[optind]);
    if (strlen(description) > 1024)
        return kmsadm_fail("access-key create: --description is longer than 1024 characters");
    rc = kmsadm_lock(a, "access-key create");
    if (rc == KMSADM_OK)
        rc = kmsadm_open_keystores(a, false);
    if (rc == KMSADM_OK)
        rc = kmsadm_open_store(a, true, true);
    if (rc == KMSADM_OK)
        rc = kmsadm_access_key_create(a, id, NULL, description, aap);
    return rc;
}

static int kmsadm_ak_list(struct kmsadm *a)
{
    struct kms_db *db;
    char **ids = NULL;
    size_t count = 0;
    int rc = kmsadm_open_store(a, true, false);

    if (rc != KMSADM_OK)
        return rc;
    db = kms_store_thread();
    if (kms_store_access_keys_all(db, &ids, &count) != KMS_OK)
        return kmsadm_fail("access-key list: cannot read the access keys");
    printf("%-34s %-8s %-9s %-20s %s\n", "ACCESS KEY ID", "KIND", "STATUS", "CREATED",
           "DESCRIPTION");
    for (size_t i = 0; i < count; i++) {
        struct kms_access_key_record r;
        char when[KMS_TIME_LEN];

        if (kms_store_access_key_get(db, ids[i], &r) != KMS_OK)
            continue;
        kms_time_format((time_t)r.created_at, when);
        printf("%-34s %-8s %-9s %-20s %s%s\n", r.access_key_id, r.admin ? "admin" : "aap",
               r.enabled ? "Enabled" : "Disabled", when, r.admin ? "" : r.aap_name,
               r.admin ? r.description : "");
        kms_access_key_record_free(&r);
    }
    kms_store_free_list(ids, count);
    return KMSADM_OK;
}

/* Whether some admin key other than id is enabled (disabling the last one locks everyone out). */
static kms_err kmsadm_ak_other_admin(struct kms_db *db, const char *id, bool *found)
{
    char **ids = NULL;
    size_t count = 0;
    kms_err rc = kms_store_access_keys_all(db, &ids, &count);

    *found = false;
    for (size_t i = 0; rc == KMS_OK && i < count && !*found; i++) {
        struct kms_access_key_record r;

        if (strcmp(ids[i], id) == 0 || kms_store_access_key_get(db, ids[i], &r) != KMS_OK)
            continue;
        *found = r.admin && r.enabled;
        kms_access_key_record_free(&r);
    }
    kms_store_free_list(ids, count);
    return rc;
}

static int kmsadm_ak_set(struct kmsadm *a, int argc, char **argv, bool enable)
{
    const char *what = enable ? "access-key enable" : "access-key disable";
    struct kms_access_key_record r;
    struct kms_db *db;
    bool other = false;
    kms_err err;
    int rc;

    if (argc != 2)
        return kmsadm_fail("usage: kmsadm %s ACCESS_KEY_ID", what);
    rc = kmsadm_lock(a, what);
    if (rc == KMSADM_OK)
        rc = kmsadm_open_store(a, true, true);
    if (rc != KMSADM_OK)
        return rc;
    db = kms_store_thread();
    if (kms_store_access_key_get(db, argv[1], &r) != KMS_OK)
        return kmsadm_fail("%s: no access key %s", what, argv[1]);
    kms_access_key_record_free(&r);
    err = kms_store_begin(db);
    if (err == KMS_OK && !enable && r.admin)
        err = kmsadm_ak_other_admin(db, argv[1], &other);
    if (err == KMS_OK && !enable && r.admin && !other) {
        kms_store_rollback(db);
        return kmsadm_fail("%s: %s is the last enabled admin access key; create another first",
                           what, argv[1]);
    }
    if (err == KMS_OK)
        err = kms_store_access_key_set_enabled(db, argv[1], enable);
    if (err == KMS_OK)
        err = kms_store_commit(db);
    kms_store_rollback(db);
    if (err != KMS_OK)
        return kmsadm_fail("%s: cannot update %s", what, argv[1]);
    printf("%s %s\n", argv[1], enable ? "enabled" : "disabled");
    return KMSADM_OK;
}

int kmsadm_cmd_access_key(struct kmsadm *a, int argc, char **argv)
{
    if (argc < 2)
        return kmsadm_fail("usage: kmsadm access-key create|list|disable|enable ...");
    if (strcmp(argv[1], "create") == 0) {
        optind = 0;
        return kmsadm_ak_create(a, argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "list") == 0 && argc == 2)
        return kmsadm_ak_list(a);
    if (strcmp(argv[1], "disable") == 0)
        return kmsadm_ak_set(a, argc - 1, argv + 1, false);
    if (strcmp(argv[1], "enable") == 0)
        return kmsadm_ak_set(a, argc - 1, argv + 1, true);
    return kmsadm_fail("usage: kmsadm access-key create|list|disable|enable ...");
}
