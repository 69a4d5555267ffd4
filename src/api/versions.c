/*
 * versions.c - key versions (spec/actions.md C3.1-C3.3): CreateKeyVersion, DescribeKeyVersion,
 * ListKeyVersions.
 *
 * Asymmetric keys have no primary version: every call names its version, which callers find
 * with ListKeyVersions, and CreateKeyVersion adds an independent key pair. On a symmetric key
 * CreateKeyVersion is a manual rotation: the new version becomes primary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static kms_err kms_out_key_version(cJSON *obj, const char *key_id, const char *version_id,
                                   int64_t created_at)
{
    kms_err rc = kms_out_str(obj, "KeyId", key_id);

    rc |= kms_out_str(obj, "KeyVersionId", version_id);
    rc |= kms_out_time(obj, "CreationDate", created_at);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}

/* Whether key k may get a new version now (spec/key-states.md §4, §6.3). */
static kms_err kms_version_allowed(struct kms_call *call, const struct kms_key_record *k)
{
    const struct kms_key_spec_info *info = kms_key_spec_get(k->spec);

    if (info == NULL)
        return KMS_E_INTERNAL;
    if (k->origin == KMS_ORIGIN_EXTERNAL)
        return kms_fail(call, KMS_E_UNSUPPORTED_ORIGIN, "KeyId");
    if (info->symmetric && !call->cfg->symmetric_manual_rotation)
        return kms_fail(call, KMS_E_UNSUPPORTED_KEY_SPEC, "KeyId");
    return kms_key_check_usable(call, k);
}

kms_err kms_api_create_key_version(struct kms_call *call)
{
    struct kms_key_record rec;
    struct kms_version_record v;
    struct kms_key *key = NULL;
    bool version_made = false, have_rec = false;
    int64_t count = 0;
    cJSON *out;
    kms_err rc;

    memset(&v, 0, sizeof(v));
    rc = kms_key_resolve(call, "KeyId", KMS_REF_ANY, &key);
    if (rc == KMS_OK)
        rc = kms_version_allowed(call, &key->k_rec);
    /* The key pair is made before the write lock: generation can take a while. */
    if (rc == KMS_OK)
        rc = kms_key_prepare_version(call, &key->k_rec, &v);
    if (rc != KMS_OK)
        goto out;
    version_made = true;
    rc = kms_store_begin(call->db);
    if (rc != KMS_OK)
        goto out;
    /* Checked again under the lock: the key may have changed since the snapshot. */
    rc = kms_store_key_get(call->db, key->k_rec.key_id, &rec);
    have_rec = rc == KMS_OK;
    if (rc == KMS_OK)
        rc = kms_version_allowed(call, &rec);
    if (rc == KMS_OK)
        rc = kms_store_version_count_all(call->db, &count);
    if (rc == KMS_OK && count >= call->cfg->max_key_versions)
        rc = KMS_E_LIMIT_EXCEEDED;
    if (rc == KMS_OK)
        rc = kms_store_version_insert(call->db, &v);
    if (rc == KMS_OK && kms_key_spec_get(rec.spec)->symmetric) {
        memcpy(rec.primary_version, v.version_id, sizeof(rec.primary_version));
        rec.last_rotation_at = call->now;
        if (rec.rotation_interval > 0)
            rec.next_rotation_at = call->now + rec.rotation_interval;
        rc = kms_store_key_update(call->db, &rec);
    }
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc != KMS_OK)
        goto out;
    version_made = false;
    kms_key_invalidate(key->k_rec.key_id);
    out = cJSON_AddObjectToObject(call->out, "KeyVersion");
    rc = out ? kms_out_key_version(out, v.key_id, v.version_id, v.created_at) : KMS_E_INTERNAL;
out:
    if (rc != KMS_OK) {
        kms_store_rollback(call->db);
        if (version_made)
            kms_key_discard_version(&key->k_rec, &v);
    }
    if (have_rec)
        kms_key_record_free(&rec);
    kms_version_record_free(&v);
    kms_key_put(key);
    return rc;
}

kms_err kms_api_describe_key_version(struct kms_call *call)
{
    struct kms_version_record v;
    struct kms_key *key = NULL;
    const char *version_id;
    cJSON *out;
    kms_err rc = kms_arg_required(call, "KeyVersionId", &version_id);

    if (rc == KMS_OK)
        rc = kms_key_resolve(call, "KeyId", KMS_REF_ANY, &key);
    if (rc != KMS_OK)
        return rc;
    rc = kms_store_version_get(call->db, version_id, &v);
    if (rc == KMS_OK) {
        if (strcmp(v.key_id, key->k_rec.key_id) != 0) {
            rc = KMS_E_KEY_VERSION_NOT_FOUND;
        } else {
            out = cJSON_AddObjectToObject(call->out, "KeyVersion");
            rc = out ? kms_out_key_version(out, v.key_id, v.version_id, v.created_at)
                     : KMS_E_INTERNAL;
        }
        kms_version_record_free(&v);
    }
    kms_key_put(key);
    return rc;
}

kms_err kms_api_list_key_versions(struct kms_call *call)
{
    struct kms_key *key = NULL;
    int64_t page, size, total = 0;
    char **ids = NULL;
    size_t count = 0;
    cJSON *list;
    kms_err rc = kms_arg_page(call, 10, &page, &size);

    if (rc == KMS_OK)
        rc = kms_key_resolve(call, "KeyId", KMS_REF_ANY, &key);
    if (rc == KMS_OK)
        rc = kms_store_version_count(call->db, key->k_rec.key_id, &total);
    if (rc == KMS_OK)
        rc = kms_store_version_list(call->db, key->k_rec.key_id, (page - 1) * size, size, &ids,
                                    &count);
    if (rc != KMS_OK)
        goto out;
    kms_out_page(call, page, size, total);
    list = kms_out_list(call->out, "KeyVersions", "KeyVersion");
    if (list == NULL)
        rc = KMS_E_INTERNAL;
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        struct kms_version_record v;
        cJSON *item;

        rc = kms_store_version_get(call->db, ids[i], &v);
        if (rc != KMS_OK)
            break;
        item = cJSON_CreateObject();
        if (item == NULL || !cJSON_AddItemToArray(list, item)) {
            cJSON_Delete(item);
            rc = KMS_E_INTERNAL;
        } else {
            rc = kms_out_key_version(item, v.key_id, v.version_id, v.created_at);
        }
        kms_version_record_free(&v);
    }
out:
    kms_store_free_list(ids, count);
    kms_key_put(key);
    return rc;
}
