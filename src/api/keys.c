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

kms_err kms_out_key_metadata(struct kms_call *call, cJSON *obj, const struct kms_key_record *k)
{
    const struct kms_key_spec_info *info = kms_key_spec_get(k->spec);
    enum kms_key_state state = kms_key_effective_state(k, call->now);
    cJSON *md = cJSON_AddObjectToObject(obj, "KeyMetadata");
    char arn[KMS_ARN_MAX];
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
    /* Every key lives in the server's one (virtual) instance (spec/actions.md B). */
    rc |= kms_out_str(md, "DKMSInstanceId", call->cfg->instance_id);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
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
    rc = kms_check_instance_id(call, "DKMSInstanceId");
    if (rc != KMS_OK)
        return rc;
    if (k->origin == KMS_ORIGIN_EXTERNAL && !info->external_allowed)
        return kms_fail(call, KMS_E_UNSUPPORTED_ORIGIN, "Origin");
    if (rotate && !info->symmetric)
        return kms_fail(call, KMS_E_UNSUPPORTED_KEY_SPEC, "KeySpec");
    if (rotate && k->origin == KMS_ORIGIN_EXTERNAL)
        return kms_fail(call, KMS_E_UNSUPPORTED_ORIGIN, "Origin");
    if (kms_keystore_for(k->protection) == NULL ||
        (info->national && call->cfg->gm_requires_hsm && k->protection != KMS_PROTECTION_HSM))
        return kms_fail(call, KMS_E_UNSUPPORTED_PROTECTION, "ProtectionLevel");
    /* A token without the spec's mechanisms, or BYOK into a token (not supported). */
    if (!kms_keystore_supports(kms_keystore_for(k->protection), info->spec, k->origin))
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
    /* The key's first version counts against the version quota too. */
    if (rc == KMS_OK)
        rc = kms_store_version_count_all(call->db, &count);
    if (rc == KMS_OK && count >= call->cfg->max_key_versions)
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

/* ListKeys Filters (spec/actions.md C1.3): at most 10 entries of at most 10 values each. */
#define KMS_KEY_FILTERS_MAX       10
#define KMS_KEY_FILTER_VALUES_MAX 10
#define KMS_KEY_FILTER_MERGED_MAX (KMS_KEY_FILTERS_MAX * KMS_KEY_FILTER_VALUES_MAX)

/* The Filter keys; the store kinds first (their index is their enum kms_key_filter_kind). */
enum kms_list_filter {
    KMS_LF_STATE = KMS_KEY_FILTER_STATE,
    KMS_LF_SPEC = KMS_KEY_FILTER_SPEC,
    KMS_LF_USAGE = KMS_KEY_FILTER_USAGE,
    KMS_LF_PROTECTION = KMS_KEY_FILTER_PROTECTION,
    KMS_LF_ALIAS = KMS_KEY_FILTER_ALIAS,
    KMS_LF_TAG_KEY = KMS_KEY_FILTER_TAG_KEY,
    KMS_LF_TAG_VALUE = KMS_KEY_FILTER_TAG_VALUE,
    KMS_LF_ID = KMS_KEY_FILTER_ID,
    KMS_LF_STORE_KINDS,
    /* Answered here: one value for every key of this server. */
    KMS_LF_CREATOR_TYPE = KMS_LF_STORE_KINDS,
    KMS_LF_CREATOR,
    KMS_LF_INSTANCE,
    KMS_LF_COUNT
};

static const char *const kms_list_filter_names[KMS_LF_COUNT] = {
    [KMS_LF_STATE] = "KeyState",           [KMS_LF_SPEC] = "KeySpec",
    [KMS_LF_USAGE] = "KeyUsage",           [KMS_LF_PROTECTION] = "ProtectionLevel",
    [KMS_LF_ALIAS] = "AliasName",          [KMS_LF_TAG_KEY] = "TagKey",
    [KMS_LF_TAG_VALUE] = "TagValue",       [KMS_LF_ID] = "keyId",
    [KMS_LF_CREATOR_TYPE] = "CreatorType", [KMS_LF_CREATOR] = "Creator",
    [KMS_LF_INSTANCE] = "DKMSInstanceId",
};

/* The parsed Filters: the values of each key merged over repeated entries (they OR). */
struct kms_key_filters {
    cJSON *root; /* texts point into it */
    const char *texts[KMS_LF_COUNT][KMS_KEY_FILTER_MERGED_MAX];
    int64_t numbers[KMS_LF_COUNT][KMS_KEY_FILTER_MERGED_MAX];
    size_t counts[KMS_LF_COUNT]; /* values that can match */
    bool given[KMS_LF_COUNT];    /* the key came with at least one value */
    struct kms_key_filter items[KMS_LF_STORE_KINDS];
    size_t item_count;
    bool match_none; /* some key's values match no key of this server */
};

/* Turns one value of filter f into what the store compares; false when it can match nothing. */
static bool kms_list_filter_value(struct kms_call *call, enum kms_list_filter f, const char *v,
                                  int64_t *number)
{
    const struct kms_key_spec_info *info;
    enum kms_key_state state;
    enum kms_key_usage usage;
    enum kms_protection level;

    switch (f) {
    case KMS_LF_STATE:
        if (!kms_key_state_parse(v, &state))
            return false;
        *number = state;
        return true;
    case KMS_LF_SPEC:
        info = kms_key_spec_by_name(v);
        if (info == NULL)
            return false;
        *number = info->spec;
        return true;
    case KMS_LF_USAGE:
        if (!kms_key_usage_parse(v, &usage))
            return false;
        *number = usage;
        return true;
    case KMS_LF_PROTECTION:
        if (!kms_protection_parse(v, &level))
            return false;
        *number = level;
        return true;
    case KMS_LF_CREATOR_TYPE:
        return strcmp(v, "User") == 0; /* no service-created keys are listed */
    case KMS_LF_CREATOR:
        return strcmp(v, call->cfg->account_id) == 0;
    case KMS_LF_INSTANCE:
        return strcmp(v, call->cfg->instance_id) == 0;
    default:
        return true; /* texts the store compares */
    }
}

static kms_err kms_arg_key_filters(struct kms_call *call, struct kms_key_filters *f)
{
    const char *json = kms_arg(call, "Filters");
    cJSON *item;

    if (json == NULL)
        return KMS_OK;
    f->root = cJSON_Parse(json);
    if (!cJSON_IsArray(f->root) || cJSON_GetArraySize(f->root) > KMS_KEY_FILTERS_MAX)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "Filters");
    cJSON_ArrayForEach(item, f->root)
    {
        cJSON *key = cJSON_GetObjectItemCaseSensitive(item, "Key");
        cJSON *values = cJSON_GetObjectItemCaseSensitive(item, "Values");
        int kind = -1;
        cJSON *v;

        if (!cJSON_IsObject(item) || !cJSON_IsString(key) || !cJSON_IsArray(values) ||
            cJSON_GetArraySize(values) > KMS_KEY_FILTER_VALUES_MAX)
            return kms_fail(call, KMS_E_INVALID_PARAMETER, "Filters");
        for (int i = 0; i < KMS_LF_COUNT && kind < 0; i++)
            if (strcmp(key->valuestring, kms_list_filter_names[i]) == 0)
                kind = i;
        if (kind < 0)
            return kms_fail(call, KMS_E_INVALID_PARAMETER, "Filters");
        cJSON_ArrayForEach(v, values)
        {
            size_t n = f->counts[kind];

            if (!cJSON_IsString(v))
                return kms_fail(call, KMS_E_INVALID_PARAMETER, "Filters");
            f->given[kind] = true;
            /* A value naming nothing kmsd knows (KeyState "Foo") simply matches no key. */
            if (!kms_list_filter_value(call, (enum kms_list_filter)kind, v->valuestring,
                                       &f->numbers[kind][n]))
                continue;
            f->texts[kind][n] = v->valuestring;
            f->counts[kind] = n + 1;
        }
    }
    /* An entry with an empty Values list constrains nothing. */
    for (int i = 0; i < KMS_LF_COUNT; i++) {
        if (!f->given[i])
            continue;
        if (f->counts[i] == 0) {
            f->match_none = true;
        } else if (i < KMS_LF_STORE_KINDS) {
            f->items[f->item_count].kind = (enum kms_key_filter_kind)i;
            f->items[f->item_count].texts = f->texts[i];
            f->items[f->item_count].numbers = f->numbers[i];
            f->items[f->item_count].count = f->counts[i];
            f->item_count++;
        }
    }
    return KMS_OK;
}

kms_err kms_api_list_keys(struct kms_call *call)
{
    struct kms_key_filters *filters = calloc(1, sizeof(*filters));
    char arn[KMS_ARN_MAX];
    int64_t page, size, total = 0;
    char **ids = NULL;
    size_t count = 0;
    cJSON *list;
    kms_err rc;

    if (filters == NULL)
        return KMS_E_INTERNAL;
    rc = kms_arg_page(call, 10, &page, &size);
    if (rc == KMS_OK)
        rc = kms_arg_key_filters(call, filters);
    if (rc != KMS_OK || filters->match_none) {
        /* Nothing to look up: a filter no key of this server passes. */
    } else {
        rc = kms_store_key_list_filtered(call->db, call->now, filters->items, filters->item_count,
                                         (page - 1) * size, size, &ids, &count, &total);
    }
    cJSON_Delete(filters->root);
    free(filters);
    if (rc != KMS_OK)
        return rc;
    kms_out_page(call, page, size, total);
    list = kms_out_list(call->out, "Keys", "Key");
    for (size_t i = 0; list != NULL && i < count; i++) {
        cJSON *item = kms_out_item(list);

        if (item == NULL) {
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
    kms_err rc = kms_key_change(call, "KeyId", kms_change_enabled, &enable);

    /* Suspended rotation resumes; a NextRotationDate that passed meanwhile rotates at once. */
    if (rc == KMS_OK)
        kms_maintenance_wake();
    return rc;
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
    kms_err rc = kms_key_change(call, "KeyId", kms_change_cancel, NULL);

    /* As for EnableKey: rotation suspended during the deletion window resumes. */
    if (rc == KMS_OK)
        kms_maintenance_wake();
    return rc;
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
