/*
 * versions.c - key versions and rotation (spec/actions.md C3, spec/key-states.md §6):
 * CreateKeyVersion, DescribeKeyVersion, ListKeyVersions, UpdateRotationPolicy.
 *
 * A symmetric key's new version becomes its primary version (manual rotation); an asymmetric
 * key's new version is one more independent key pair and nothing is primary. Automatic rotation
 * itself is timed work in maintenance.c; this file only sets the policy it follows.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* obj gets {KeyId, KeyVersionId, CreationDate} (the KeyVersion shape of every C3 response). */
static kms_err kms_out_key_version(cJSON *obj, const struct kms_version_record *v)
{
    kms_err rc = KMS_OK;

    rc |= kms_out_str(obj, "KeyId", v->key_id);
    rc |= kms_out_str(obj, "KeyVersionId", v->version_id);
    rc |= kms_out_time(obj, "CreationDate", v->created_at);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}

/*
 * Whether key k may get a new version now, in the spec's order of checks: origin, then key
 * spec (manual rotation of symmetric keys can be switched off), then key state.
 */
static kms_err kms_version_check_creatable(struct kms_call *call, const struct kms_key_record *k)
{
    const struct kms_key_spec_info *info = kms_key_spec_get(k->spec);

    if (info == NULL)
        return KMS_E_INTERNAL;
    /* EXTERNAL keys have exactly one version: the one their material is imported into. */
    if (k->origin == KMS_ORIGIN_EXTERNAL)
        return kms_fail(call, KMS_E_UNSUPPORTED_ORIGIN, "KeyId");
    if (info->symmetric && !call->cfg->symmetric_manual_rotation)
        return kms_fail(call, KMS_E_UNSUPPORTED_KEY_SPEC, "KeyId");
    return kms_key_check_usable(call, k);
}

/* The version quota counts the versions of all keys together (spec/protocol.md §11). */
static kms_err kms_version_check_quota(struct kms_call *call)
{
    int64_t count = 0;
    kms_err rc = kms_store_version_count_all(call->db, &count);

    if (rc == KMS_OK && count >= call->cfg->max_key_versions)
        rc = KMS_E_LIMIT_EXCEEDED;
    return rc;
}

kms_err kms_api_create_key_version(struct kms_call *call)
{
    const struct kms_key_spec_info *info;
    struct kms_key_record rec;
    struct kms_version_record v;
    struct kms_key *key = NULL;
    bool version_made = false, have_rec = false;
    cJSON *out;
    kms_err rc;

    memset(&rec, 0, sizeof(rec));
    memset(&v, 0, sizeof(v));
    rc = kms_key_resolve(call, "KeyId", KMS_REF_ANY, &key);
    if (rc != KMS_OK)
        return rc;
    rc = kms_version_check_creatable(call, &key->k_rec);
    /* Checked before generating material too: a full quota should not cost a key pair. */
    if (rc == KMS_OK)
        rc = kms_version_check_quota(call);
    /* Material first, outside the write transaction: key-pair generation can be slow. */
    if (rc == KMS_OK)
        rc = kms_key_prepare_version(call, &key->k_rec, &v);
    if (rc != KMS_OK)
        goto out;
    version_made = true;
    rc = kms_store_begin(call->db);
    if (rc != KMS_OK)
        goto out;
    /* Re-read under the write lock: the key may have been disabled or rotated meanwhile. */
    rc = kms_store_key_get(call->db, key->k_rec.key_id, &rec);
    if (rc != KMS_OK)
        goto out;
    have_rec = true;
    rc = kms_version_check_creatable(call, &rec);
    if (rc == KMS_OK)
        rc = kms_version_check_quota(call);
    if (rc == KMS_OK)
        rc = kms_store_version_insert(call->db, &v);
    info = kms_key_spec_get(rec.spec);
    if (rc == KMS_OK && info != NULL && info->symmetric) {
        /* Manual rotation: the new version is primary and the rotation schedule restarts. */
        memcpy(rec.primary_version, v.version_id, sizeof(rec.primary_version));
        rec.last_rotation_at = call->now;
        rec.next_rotation_at = rec.rotation_interval > 0 ? call->now + rec.rotation_interval : 0;
        rc = kms_store_key_update(call->db, &rec);
    }
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc != KMS_OK)
        goto out;
    version_made = false; /* the store owns it now */
    kms_key_invalidate(rec.key_id);
    out = cJSON_AddObjectToObject(call->out, "KeyVersion");
    rc = out != NULL ? kms_out_key_version(out, &v) : KMS_E_INTERNAL;
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
    kms_err rc;

    /* Both parameters before the key is looked up (spec/key-states.md §4). */
    rc = kms_arg_required(call, "KeyId", &version_id);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "KeyVersionId", &version_id);
    if (rc == KMS_OK)
        rc = kms_key_resolve(call, "KeyId", KMS_REF_ANY, &key);
    if (rc != KMS_OK)
        return rc;
    /* Read from the store, not the version cache: describing must not load key material. */
    rc = kms_store_version_get(call->db, version_id, &v);
    if (rc != KMS_OK) {
        kms_key_put(key);
        return rc == KMS_E_KEY_VERSION_NOT_FOUND ? kms_fail(call, rc, "KeyVersionId") : rc;
    }
    /* Another key's version is as unknown as one that never existed. */
    if (strcmp(v.key_id, key->k_rec.key_id) != 0) {
        rc = kms_fail(call, KMS_E_KEY_VERSION_NOT_FOUND, "KeyVersionId");
    } else {
        out = cJSON_AddObjectToObject(call->out, "KeyVersion");
        rc = out != NULL ? kms_out_key_version(out, &v) : KMS_E_INTERNAL;
    }
    kms_version_record_free(&v);
    kms_key_put(key);
    return rc;
}

kms_err kms_api_list_key_versions(struct kms_call *call)
{
    struct kms_version_record *versions = NULL;
    struct kms_key *key = NULL;
    int64_t page, size, total = 0;
    size_t count = 0;
    cJSON *list;
    kms_err rc;

    rc = kms_arg_page(call, 10, &page, &size);
    if (rc == KMS_OK)
        rc = kms_key_resolve(call, "KeyId", KMS_REF_ANY, &key);
    if (rc != KMS_OK)
        return rc;
    rc = kms_store_version_count(call->db, key->k_rec.key_id, &total);
    if (rc == KMS_OK)
        rc = kms_store_version_list_records(call->db, key->k_rec.key_id, (page - 1) * size, size,
                                            &versions, &count);
    kms_key_put(key);
    if (rc != KMS_OK)
        return rc;
    kms_out_page(call, page, size, total);
    list = kms_out_list(call->out, "KeyVersions", "KeyVersion");
    if (list == NULL)
        rc = KMS_E_INTERNAL;
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        cJSON *item = kms_out_item(list);

        if (item == NULL) {
            rc = KMS_E_INTERNAL;
            break;
        }
        rc = kms_out_key_version(item, &versions[i]);
    }
    kms_store_free_versions(versions, count);
    return rc;
}

/* The policy UpdateRotationPolicy asked for; interval is 0 when disabling. */
struct kms_rotation_policy {
    bool enable;
    int64_t interval;
};

/* Checks k against the rules of spec/actions.md C3.4 and applies policy to it. */
static kms_err kms_rotation_apply(struct kms_call *call, struct kms_key_record *k,
                                  const struct kms_rotation_policy *policy)
{
    const struct kms_key_spec_info *info = kms_key_spec_get(k->spec);
    kms_err rc;

    if (info == NULL)
        return KMS_E_INTERNAL;
    /* Asymmetric keys get new versions only by CreateKeyVersion; EXTERNAL keys never rotate. */
    if (!info->symmetric)
        return kms_fail(call, KMS_E_UNSUPPORTED_KEY_SPEC, "KeyId");
    if (k->origin == KMS_ORIGIN_EXTERNAL)
        return kms_fail(call, KMS_E_UNSUPPORTED_ORIGIN, "KeyId");
    /* Rotation is paused while the key is unusable; its policy cannot change then either. */
    rc = kms_key_check_usable(call, k);
    if (rc != KMS_OK)
        return rc;
    if (policy->enable) {
        k->rotation_interval = policy->interval;
        k->next_rotation_at = k->last_rotation_at + policy->interval;
    } else {
        k->rotation_interval = 0;
        k->next_rotation_at = 0;
    }
    return KMS_OK;
}

kms_err kms_api_update_rotation_policy(struct kms_call *call)
{
    struct kms_rotation_policy policy = {false, 0};
    struct kms_key_record rec;
    struct kms_key *key = NULL;
    bool due = false;
    const char *v;
    kms_err rc;

    /* Parameters first (spec/key-states.md §4), then the key. */
    rc = kms_arg_required(call, "KeyId", &v);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "EnableAutomaticRotation", &v);
    if (rc == KMS_OK)
        rc = kms_arg_bool(call, "EnableAutomaticRotation", false, &policy.enable);
    /* The interval matters only when enabling; when disabling it is ignored, as in CreateKey. */
    if (rc == KMS_OK && policy.enable)
        rc = kms_arg_rotation_interval(call, "RotationInterval", &policy.interval);
    if (rc == KMS_OK)
        rc = kms_key_resolve(call, "KeyId", KMS_REF_ID_ONLY, &key);
    if (rc != KMS_OK)
        return rc;
    rc = kms_store_begin(call->db);
    if (rc != KMS_OK) {
        kms_key_put(key);
        return rc;
    }
    /* Re-read under the write lock: the cached snapshot may be a moment old. */
    rc = kms_store_key_get(call->db, key->k_rec.key_id, &rec);
    kms_key_put(key);
    if (rc != KMS_OK) {
        kms_store_rollback(call->db);
        return rc;
    }
    rc = kms_rotation_apply(call, &rec, &policy);
    if (rc == KMS_OK)
        rc = kms_store_key_update(call->db, &rec);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    else
        kms_store_rollback(call->db);
    kms_key_invalidate(rec.key_id);
    due = rc == KMS_OK && policy.enable && rec.next_rotation_at <= call->now;
    kms_key_record_free(&rec);
    /* NextRotationDate already passed (the key is older than the new interval): rotate soon. */
    if (due)
        kms_maintenance_wake();
    return rc;
}
