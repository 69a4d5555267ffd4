/*
 * master_check.c - a check value in the store that tells whether the master key at hand is the
 * one the database was sealed under: a constant sealed under the master key (meta
 * "master_key_check"). Without it, a wrong or new master.key shows up only as InternalFailure
 * on the first Decrypt; with it, kmsd refuses to start with one clear line, and kmsadm knows
 * which master.key* file matches after an interrupted rotation (docs/operations.md).
 */
#include <string.h>

#include "keystore/keystore.h"
#include "kms/daemon.h"
#include "kms/store.h"

static const char kms_check_aad[] = "kmsd master-key check v1";
static const uint8_t kms_check_value[16] = "kmsd master ok!";

kms_err kms_master_check_make(struct kms_buf *sealed)
{
    return kms_keystore_seal_secret(kms_check_aad, sizeof(kms_check_aad) - 1, kms_check_value,
                                    sizeof(kms_check_value), sealed);
}

const char *kms_master_check_aad(size_t *len)
{
    *len = sizeof(kms_check_aad) - 1;
    return kms_check_aad;
}

kms_err kms_master_check(struct kms_db *db, bool create)
{
    struct kms_buf stored = {0}, opened = {0};
    kms_err rc = kms_store_meta_get(db, KMS_MASTER_CHECK_META, &stored);

    if (rc == KMS_E_RESOURCE_NOT_FOUND && create) {
        rc = kms_master_check_make(&stored);
        if (rc == KMS_OK)
            rc = kms_store_begin(db);
        if (rc == KMS_OK)
            rc = kms_store_meta_set(db, KMS_MASTER_CHECK_META, stored.data, stored.len);
        if (rc == KMS_OK)
            rc = kms_store_commit(db);
        else
            kms_store_rollback(db);
        kms_buf_free(&stored);
        return rc;
    }
    if (rc == KMS_OK) {
        rc = kms_keystore_open_secret(kms_check_aad, sizeof(kms_check_aad) - 1,
                                      (const uint8_t *)stored.data, stored.len, &opened);
        if (rc == KMS_E_INTERNAL ||
            (rc == KMS_OK && (opened.len != sizeof(kms_check_value) ||
                              memcmp(opened.data, kms_check_value, opened.len) != 0)))
            rc = KMS_E_INVALID_PARAMETER;
    }
    kms_buf_free(&stored);
    kms_buf_free_secret(&opened);
    return rc;
}
