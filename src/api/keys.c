/*
 * keys.c - key lifecycle actions (spec/actions.md C1): CreateKey, DescribeKey, ListKeys,
 * UpdateKeyDescription, EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion,
 * SetDeletionProtection; and the KeyMetadata object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "keystore/keystore.h"
#include "kms/log.h"

#define KMS_DAY             86400
#define KMS_DESCRIPTION_MAX 8192
#define KMS_ROTATION_MIN    (7LL * KMS_DAY)
#define KMS_ROTATION_MAX    (730LL * KMS_DAY)

static void kms_arn(const struct kms_call *call, const char *type, const char *name, char *out,
                    size_t size)
{
    snprintf(out, size, "acs:kms:%s:%s:%s/%s", call->cfg->region, call->cfg->account_id, type,
             name);
}

kms_err kms_out_key_metadata(struct kms_call *call, cJSON *obj, const struct kms_key_record *k)
{
    const struct kms_key_spec_info *info = kms_key_spec_get(k->spec);
    enum kms_key_state state = kms_key_effective_state(k, call->now);
    cJSON *md = cJSON_AddObjectToObject(obj, "KeyMetadata");
    char arn[KMS_ID_MAX + 2 * KMS_CONFIG_STR + 16]; /* region and account id are config strings */
    char interval[32];
    kms_err rc = KMS_OK;

    if (md == NULL || info == NULL)
        return KMS_E_INTERNAL;
    kms_arn(call, "key", k->key_id, arn, sizeof(arn));
    rc |= kms_out_str(md, "KeyId", k->key_id);
    rc |= kms_out_str(md, "Arn", arn);
    rc |= kms_out_str(md, "Description", k->description);
    rc |= kms_out_time(md, "CreationDate", k->created_at);
    rc |= kms_out_str(md, "Creator", call->cfg->account_id);
    rc |= kms_out_str(md, "KeySpec", info->name);
    rc |= kms_out_str(md, "KeyUsage", kms_key_usage_name(k->usage));
    rc |= kms_out_str(md, "KeyState", kms_key_state_name(state));
    rc |= kms_out_str(md, "Origin", kms_origin_name(k->origin));
    rc |= kms_out_str(md, "ProtectionLevel", kms_protection_name(k->protection));
    rc |= kms_out_time(md, "DeleteDate", state == KMS_STATE_PENDING_DELETION ? k->delete_at : 0);
    rc |= kms_out_time(md, "MaterialExpireTime", k->material_expire_at);
    if (info->symmetric)
        rc |= kms_out_str(md, "PrimaryKeyVersion", k->primary_version);
    if (k->rotation_interval > 0) {
        /* Rotation pauses while the key cannot be used (spec/key-states.md §6.1). */
        rc |= kms_out_str(md, "AutomaticRotation",
                          state == KMS_STATE_ENABLED ? "Enabled" : "Suspended");
        snprintf(interval, sizeof(interval), "%llds", (long long)k->rotation_interval);
        rc |= kms_out_str(md, "RotationInterval", interval);
        rc |= kms_out_time(md, "NextRotationDate", k->next_rotation_at);
    } else {
        rc |= kms_out_str(md, "AutomaticRotation", "Disabled");
    }
    rc |= kms_out_time(md, "LastRotationDate", k->last_rotation_at);
    rc |= kms_out_str(md, "DeletionProtection", k->deletion_protection ? "Enabled" : "Disabled");
    if (k->deletion_protection)
        rc |= kms_out_str(md, "DeletionProtectionDescription", k->deletion_protection_desc);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}

/* "<integer>[d|h|m|s]" (no unit = seconds) within 7-730 days. */
static kms_err kms_arg_rotation_interval(struct kms_call *call, const char *name, int64_t *out)
{
    const char *v = kms_arg(call, name);
    long long n = 0, unit = 1;
    size_t len, i;

    if (v == NULL)
        return kms_fail(call, KMS_E_MISSING_PARAMETER, name);
    len = strlen(v);
    switch (v[len - 1]) {
    case 'd':
        unit = KMS_DAY;
        len--;
        break;
    case 'h':
        unit = 3600;
        len--;
        break;
    case 'm':
        unit = 60;
        len--;
        break;
    case 's':
        len--;
        break;
    }
    if (len == 0 || len > 12)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, name);
    for (i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return kms_fail(call, KMS_E_INVALID_PARAMETER, name);
        n = n * 10 + (v[i] - '0');
    }
    n *= unit;
    if (n < KMS_ROTATION_MIN || n > KMS_ROTATION_MAX)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, name);
    *out = n;
    return KMS_OK;
}

kms_err kms_key_prepare_version(struct kms_call *call, const struct kms_key_record *key,
                                struct kms_version_record *out)
{
    struct kms_keystore *ks = kms_keystore_for(key->protection);
    struct kms_buf stored = {0}, public_der = {0};
    struct kms_ks_ref ref;
    kms_err rc;

    memset(out, 0, sizeof(*out));
    kms_uuid_generate(out->version_id);
    snprintf(out->key_id, sizeof(out->key_id), "%s", key->key_id);
    out->created_at = call->now;
    if (key->origin == KMS_ORIGIN_EXTERNAL)
        return KMS_OK; /* material arrives with ImportKeyMaterial */
    if (ks == NULL)
        return KMS_E_UNSUPPORTED_PROTECTION;
    ref.key_id = key->key_id;
    ref.version_id = out->version_id;
    ref.spec = key->spec;
    rc = ks->ks_ops->ks_create(ks, &ref, &stored, &public_der);
    if (rc != KMS_OK) {
        kms_buf_free_secret(&stored);
        kms_buf_free(&public_der);
        return rc;
    }
    out->material = (uint8_t *)stored.data;
    out->material_len = stored.len;
    out->public_der = (uint8_t *)public_der.data;
    out->public_der_len = public_der.len;
    return KMS_OK;
}

/* Undoes kms_key_prepare_version in a token when the store did not take the version. */
void kms_key_discard_version(const struct kms_key_record *key, const struct kms_version_record *v)
{
    struct kms_keystore *ks = kms_keystore_for(key->protection);
    struct kms_ks_ref ref = {key->key_id, v->version_id, key->spec};

    if (ks != NULL && key->origin == KMS_ORIGIN_KMS)
        ks->ks_ops->ks_destroy(ks, &ref);
}

static kms_err kms_create_key_params(struct kms_call *call, struct kms_key_record *k,
                                     struct kms_tag **tags, size_t *tag_count)
{
    const struct kms_key_spec_info *info;
    const char *spec = kms_arg(call, "KeySpec");
    const char *usage = kms_arg(call, "KeyUsage");
    const char *origin = kms_arg(call, "Origin");
    const char *level = kms_arg(call, "ProtectionLevel");
    const char *tags_json = kms_arg(call, "Tags");
    bool rotate = false;
    kms_err rc;

    info = kms_key_spec_by_name(spec ? spec : "Aliyun_AES_256");
    if (info == NULL)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "KeySpec");
    k->spec = info->spec;
    k->usage = info->default_usage;
    if (usage != NULL && !kms_key_usage_parse(usage, &k->usage))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "KeyUsage");
    if ((info->usages & k->usage) == 0)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "KeyUsage");
    if (origin != NULL && !kms_origin_parse(origin, &k->origin))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "Origin");
    if (level != NULL && !kms_protection_parse(level, &k->protection))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "ProtectionLevel");
    rc =
        kms_check_length(call, "Description", kms_arg(call, "Description"), 0, KMS_DESCRIPTION_MAX);
    if (rc != KMS_OK)
        return rc;
    rc = kms_arg_bool(call, "EnableAutomaticRotation", false, &rotate);
    if (rc != KMS_OK)
        return rc;
    if (rotate) {
        rc = kms_arg_rotation_interval(call, "RotationInterval", &k->rotation_interval);
        if (rc != KMS_OK)
            return rc;
    }
    if (tags_json != NULL) {
        rc = kms_tags_parse(call, "Tags", tags_json, tags, tag_count);
        if (rc != KMS_OK)
            return rc;
    }
    if (k->origin == KMS_ORIGIN_EXTERNAL && !info->external_allowed)
        return kms_fail(call, KMS_E_UNSUPPORTED_ORIGIN, "Origin");
    if (rotate && !info->symmetric)
        return kms_fail(call, KMS_E_UNSUPPORTED_KEY_SPEC, "KeySpec");
    if (rotate && k->origin == KMS_ORIGIN_EXTERNAL)
        return kms_fail(call, KMS_E_UNSUPPORTED_ORIGIN, "Origin");
    if (kms_keystore_for(k->protection) == NULL ||
        (info->national && call->cfg->gm_requires_hsm && k->protection != KMS_PROTECTION_HSM))
        return kms_fail(call, KMS_E_UNSUPPORTED_PROTECTION, "ProtectionLevel");
    return KMS_OK;
}

kms_err kms_api_create_key(struct kms_call *call)
{
    struct kms_key_record k;
    struct kms_version_record v;
    struct kms_tag *tags = NULL;
    size_t tag_count = 0;
    int64_t count = 0;
    bool version_made = false;
    kms_err rc;

    memset(&k, 0, sizeof(k));
    memset(&v, 0, sizeof(v));
    rc = kms_create_key_params(call, &k, &tags, &tag_count);
    if (rc != KMS_OK)
        goto out;
    kms_uuid_generate(k.key_id);
    k.description = (char *)kms_arg(call, "Description");
    k.deletion_protection_desc = "";
    k.created_at = call->now;
    k.last_rotation_at = call->now;
    k.state = k.origin == KMS_ORIGIN_EXTERNAL ? KMS_STATE_PENDING_IMPORT : KMS_STATE_ENABLED;
    if (k.rotation_interval > 0)
        k.next_rotation_at = k.last_rotation_at + k.rotation_interval;
    /* Material first, outside the transaction: key-pair generation can take a while. */
    rc = kms_key_prepare_version(call, &k, &v);
    if (rc != KMS_OK)
        goto out;
    version_made = true;
    if (kms_key_spec_get(k.spec)->symmetric)
        memcpy(k.primary_version, v.version_id, sizeof(k.primary_version));
    rc = kms_store_begin(call->db);
    if (rc != KMS_OK)
        goto out;
    rc = kms_store_key_count(call->db, false, &count);
    if (rc == KMS_OK && count >= call->cfg->max_keys)
        rc = KMS_E_LIMIT_EXCEEDED;
    if (rc == KMS_OK)
        rc = kms_store_key_insert(call->db, &k);
    if (rc == KMS_OK)
        rc = kms_store_version_insert(call->db, &v);
    if (rc == KMS_OK && tag_count > 0)
        rc = kms_store_tags_put(call->db, "key", k.key_id, tags, tag_count);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc != KMS_OK)
        goto out;
    version_made = false; /* the store owns it now */
    snprintf(call->resource, sizeof(call->resource), "key/%s", k.key_id);
    rc = kms_out_key_metadata(call, call->out, &k);
out:
    if (rc != KMS_OK) {
        kms_store_rollback(call->db);
        if (version_made)
            kms_key_discard_version(&k, &v);
    }
    kms_version_record_free(&v);
    kms_tags_free(tags, tag_count);
    return rc;
}

kms_err kms_api_describe_key(struct kms_call *call)
{
    struct kms_key *key;
    kms_err rc = kms_key_resolve(call, "KeyId", KMS_REF_ANY, &key);

    if (rc != KMS_OK)
        return rc;
    rc = kms_out_key_metadata(call, call->out, &key->k_rec);
    kms_key_put(key);
    return rc;
}

kms_err kms_api_list_keys(struct kms_call *call)
{
    char arn[KMS_ID_MAX + 2 * KMS_CONFIG_STR + 16]; /* region and account id are config strings */
    int64_t page, size, total = 0;
    char **ids = NULL;
    size_t count = 0;
    cJSON *list;
    kms_err rc;

    rc = kms_arg_page(call, 10, &page, &size);
    if (rc != KMS_OK)
        return rc;
    if (kms_arg(call, "Filters") != NULL)
        return kms_fail(call, KMS_E_UNSUPPORTED, "Filters");
    rc = kms_store_key_count(call->db, false, &total);
    if (rc == KMS_OK)
        rc = kms_store_key_list(call->db, (page - 1) * size, size, &ids, &count);
    if (rc != KMS_OK)
        return rc;
    kms_out_page(call, page, size, total);
    list = kms_out_list(call->out, "Keys", "Key");
    for (size_t i = 0; list != NULL && i < count; i++) {
        cJSON *item = cJSON_CreateObject();

        if (item == NULL || !cJSON_AddItemToArray(list, item)) {
            cJSON_Delete(item);
            rc = KMS_E_INTERNAL;
            break;
        }
        kms_arn(call, "key", ids[i], arn, sizeof(arn));
        rc |= kms_out_str(item, "KeyId", ids[i]);
        rc |= kms_out_str(item, "KeyArn", arn);
    }
    kms_store_free_list(ids, count);
    if (list == NULL || rc != KMS_OK)
        return KMS_E_INTERNAL;
    return KMS_OK;
}

/*
 * Read-check-write on one key inside a write transaction: resolves param (ids only), lets
 * change() validate and modify a private copy, stores it, commits, and drops the cached copy.
 */
typedef kms_err (*kms_key_change_fn)(struct kms_call *call, struct kms_key_record *k, void *arg);

static kms_err kms_key_change(struct kms_call *call, const char *param, kms_key_change_fn change,
                              void *arg)
{
    struct kms_key_record rec;
    struct kms_key *key;
    kms_err rc;

    rc = kms_key_resolve(call, param, KMS_REF_ID_ONLY, &key);
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
    rc = change(call, &rec, arg);
    if (rc == KMS_OK)
        rc = kms_store_key_update(call->db, &rec);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    else
        kms_store_rollback(call->db);
    kms_key_invalidate(rec.key_id);
    kms_key_record_free(&rec);
    return rc;
}

static kms_err kms_change_description(struct kms_call *call, struct kms_key_record *k, void *arg)
{
    char *copy = strdup(arg);

    if (copy == NULL)
        return KMS_E_INTERNAL;
    free(k->description);
    k->description = copy;
    return KMS_OK;
}

kms_err kms_api_update_key_description(struct kms_call *call)
{
    const char *desc;
    kms_err rc = kms_arg_required(call, "Description", &desc);

    if (rc == KMS_OK)
        rc = kms_check_length(call, "Description", desc, 1, KMS_DESCRIPTION_MAX);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "KeyId", &desc) == KMS_OK ? KMS_OK : KMS_E_MISSING_PARAMETER;
    if (rc != KMS_OK)
        return rc;
    return kms_key_change(call, "KeyId", kms_change_description,
                          (void *)kms_arg(call, "Description"));
}

static kms_err kms_change_enabled(struct kms_call *call, struct kms_key_record *k, void *arg)
{
    enum kms_key_state state = kms_key_effective_state(k, call->now);

    if (state == KMS_STATE_PENDING_DELETION || state == KMS_STATE_PENDING_IMPORT)
        return KMS_E_STATE_MODIFIED_FAILED;
    k->state = *(const bool *)arg ? KMS_STATE_ENABLED : KMS_STATE_DISABLED;
    return KMS_OK;
}

kms_err kms_api_enable_key(struct kms_call *call)
{
    bool enable = true;

    return kms_key_change(call, "KeyId", kms_change_enabled, &enable);
}

kms_err kms_api_disable_key(struct kms_call *call)
{
    bool enable = false;

    return kms_key_change(call, "KeyId", kms_change_enabled, &enable);
}

static kms_err kms_change_schedule(struct kms_call *call, struct kms_key_record *k, void *arg)
{
    if (k->state == KMS_STATE_PENDING_DELETION)
        return KMS_E_STATE_MODIFIED_FAILED;
    if (k->deletion_protection)
        return KMS_E_DELETION_PROTECTION;
    k->state = KMS_STATE_PENDING_DELETION;
    k->delete_at = call->now + *(const int64_t *)arg * KMS_DAY;
    return KMS_OK;
}

kms_err kms_api_schedule_key_deletion(struct kms_call *call)
{
    int64_t days;
    kms_err rc =
        kms_arg_int(call, "PendingWindowInDays", 7, call->cfg->max_pending_window_days, 30, &days);

    if (rc != KMS_OK)
        return rc;
    rc = kms_key_change(call, "KeyId", kms_change_schedule, &days);
    if (rc == KMS_OK)
        kms_out_time(call->out, "DeleteDate", call->now + days * KMS_DAY);
    return rc;
}

/* Whether an EXTERNAL key's (single) version currently holds material. */
static kms_err kms_key_has_material(struct kms_call *call, const struct kms_key_record *k,
                                    bool *has)
{
    char **ids = NULL;
    size_t count = 0;
    struct kms_version_record v;
    kms_err rc = kms_store_version_list(call->db, k->key_id, 0, 1, &ids, &count);

    *has = false;
    if (rc != KMS_OK || count == 0) {
        kms_store_free_list(ids, count);
        return rc;
    }
    rc = kms_store_version_get(call->db, ids[0], &v);
    kms_store_free_list(ids, count);
    if (rc != KMS_OK)
        return rc;
    *has = v.material != NULL;
    kms_version_record_free(&v);
    return KMS_OK;
}

static kms_err kms_change_cancel(struct kms_call *call, struct kms_key_record *k, void *arg)
{
    bool has = true;
    kms_err rc;

    if (k->state != KMS_STATE_PENDING_DELETION)
        return KMS_E_STATE_MODIFIED_FAILED;
    /* An EXTERNAL key without material goes back to waiting for it, not to Enabled. */
    if (k->origin == KMS_ORIGIN_EXTERNAL) {
        rc = kms_key_has_material(call, k, &has);
        if (rc != KMS_OK)
            return rc;
        if (k->material_expire_at != 0 && k->material_expire_at <= call->now)
            has = false;
    }
    k->state = has ? KMS_STATE_ENABLED : KMS_STATE_PENDING_IMPORT;
    k->delete_at = 0;
    return KMS_OK;
}

kms_err kms_api_cancel_key_deletion(struct kms_call *call)
{
    return kms_key_change(call, "KeyId", kms_change_cancel, NULL);
}

struct kms_protection_change {
    bool enable;
    const char *description;
};

static kms_err kms_change_protection(struct kms_call *call, struct kms_key_record *k, void *arg)
{
    const struct kms_protection_change *pc = arg;
    char *desc = strdup(pc->enable && pc->description ? pc->description : "");

    if (desc == NULL)
        return KMS_E_INTERNAL;
    if (k->state == KMS_STATE_PENDING_DELETION) {
        free(desc);
        return KMS_E_KEY_PENDING_DELETION;
    }
    k->deletion_protection = pc->enable;
    free(k->deletion_protection_desc);
    k->deletion_protection_desc = desc;
    return KMS_OK;
}

kms_err kms_api_set_deletion_protection(struct kms_call *call)
{
    struct kms_protection_change pc = {false, kms_arg(call, "DeletionProtectionDescription")};
    const char *arn = kms_arg(call, "ProtectedResourceArn");
    const char *key_id = kms_arg(call, "KeyId");
    const char *param = key_id ? "KeyId" : "ProtectedResourceArn";
    const char *flag;
    kms_err rc;

    if (arn == NULL && key_id == NULL)
        return kms_fail(call, KMS_E_MISSING_PARAMETER, "ProtectedResourceArn");
    if (arn != NULL && key_id != NULL)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "KeyId");
    if (kms_arg(call, "KmsInstanceId") != NULL)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "KmsInstanceId");
    if (arn != NULL && strncmp(arn, "acs:kms:", 8) != 0)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "ProtectedResourceArn");
    rc = kms_arg_required(call, "EnableDeletionProtection", &flag);
    if (rc == KMS_OK)
        rc = kms_arg_bool(call, "EnableDeletionProtection", false, &pc.enable);
    if (rc == KMS_OK)
        rc = kms_check_length(call, "DeletionProtectionDescription", pc.description, 0, 256);
    if (rc != KMS_OK)
        return rc;
    return kms_key_change(call, param, kms_change_protection, &pc);
}
