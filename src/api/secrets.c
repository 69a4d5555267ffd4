/*
 * secrets.c - the secrets manager (spec/actions.md E1-E12): CreateSecret, GetSecretValue,
 * PutSecretValue, UpdateSecretVersionStage, ListSecrets, DescribeSecret, UpdateSecret,
 * ListSecretVersionIds, DeleteSecret, RestoreSecret, RotateSecret, UpdateSecretRotationPolicy;
 * resolving a SecretName parameter for the tag actions; and the maintenance sweep that deletes
 * secrets past their recovery window.
 *
 * Encryption. Every version has its own random 256-bit data key. The data key is sealed under the
 * secret's CMK by kms_sym_seal (the path Encrypt takes, so key states, HSM keys and CMK rotation
 * behave as for Encrypt), and the value is sealed under the data key with AES-256-GCM. Both are
 * bound to (secret name, version id, data type): the data key through the EncryptionContext of its
 * blob, the value through its AAD, so a stored value cannot be moved to another secret or version.
 * Why an envelope rather than sealing the value itself under the CMK: the CMK (possibly a token
 * key) only ever handles 32 bytes whatever the value's size, and the design leaves room to
 * re-wrap data keys under another CMK without touching the values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "internal.h"
#include "keystore/keystore.h"
#include "kms/crypto.h"
#include "kms/log.h"

#define KMS_DAY                    86400
#define KMS_SECRET_DATA_MAX        30720 /* bytes of SecretData as sent */
#define KMS_SECRET_DESCRIPTION_MAX 1024
#define KMS_SECRET_VERSIONS_MAX    10 /* per secret; the oldest unlabelled ones roll off [doc-en] */
#define KMS_SECRET_STAGES_MAX      10 /* labels in one VersionStages */
#define KMS_SECRET_DATA_KEY_LEN    32
#define KMS_SECRET_VALUE_FORMAT    1
#define KMS_SECRET_VALUE_OVERHEAD  (1 + KMS_AEAD_IV_LEN + KMS_AEAD_TAG_LEN)
#define KMS_SECRET_FILTERS_MAX     10
#define KMS_SECRET_FILTER_VALUES   10
#define KMS_SECRET_ROTATION_MIN    (6LL * 3600)
#define KMS_SECRET_ROTATION_MAX    (8760LL * 3600)
#define KMS_SECRETS_SERVICE_KEY    "secrets.service_key_id"

static const char kms_stage_current[] = "ACSCurrent";
static const char kms_stage_previous[] = "ACSPrevious";

/* ---- names, labels, references ---- */

/* SecretName: 1-192 of A-Z a-z 0-9 _ / + = . - @, not starting with "acs/". */
static bool kms_secret_name_valid(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > KMS_SECRET_NAME_MAX || strncmp(s, "acs/", 4) == 0)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr("_/+=.-@", c) != NULL))
            return false;
    }
    return true;
}

/* VersionId and stage labels: 1-64 printable ASCII characters, no space. */
static bool kms_secret_label_valid(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > KMS_SECRET_VERSION_MAX)
        return false;
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

static bool kms_stage_is_system(const char *stage)
{
    return strcmp(stage, kms_stage_current) == 0 || strcmp(stage, kms_stage_previous) == 0;
}

/* A label the caller may name: valid, and not another label of the reserved "ACS" family. */
static bool kms_stage_valid(const char *stage)
{
    return kms_secret_label_valid(stage) &&
           (kms_stage_is_system(stage) || strncmp(stage, "ACS", 3) != 0);
}

/* acs:kms:<region>:<account>:secret/<name> -> name; NULL when the ARN is not one of ours. */
static const char *kms_secret_name_from_ref(const struct kms_call *call, const char *ref)
{
    size_t region_len = strlen(call->cfg->region);
    size_t account_len = strlen(call->cfg->account_id);
    const char *p;

    if (strncmp(ref, "acs:kms:", 8) != 0)
        return ref;
    p = ref + 8;
    if (strncmp(p, call->cfg->region, region_len) != 0 || p[region_len] != ':')
        return NULL;
    p += region_len + 1;
    if (strncmp(p, call->cfg->account_id, account_len) != 0 || p[account_len] != ':')
        return NULL;
    p += account_len + 1;
    if (strncmp(p, "secret/", 7) != 0 || p[7] == '\0')
        return NULL;
    return p + 7;
}

kms_err kms_secret_resolve(struct kms_call *call, const char *param, bool allow_pending,
                           struct kms_secret_record *out)
{
    const char *ref, *name;
    kms_err rc;

    memset(out, 0, sizeof(*out));
    rc = kms_arg_required(call, param, &ref);
    if (rc != KMS_OK)
        return rc;
    name = kms_secret_name_from_ref(call, ref);
    /* Like key ids, names are looked up whatever their shape: a malformed one is simply unknown. */
    if (name == NULL || strlen(name) > KMS_SECRET_NAME_MAX)
        return KMS_E_RESOURCE_NOT_FOUND;
    rc = kms_store_secret_get(call->db, name, out);
    if (rc != KMS_OK)
        return rc;
    /* Past its PlannedDeleteTime the secret is gone, even before the sweeper removes it. */
    if (out->delete_at != 0 && out->delete_at <= call->now) {
        kms_secret_record_free(out);
        return KMS_E_RESOURCE_NOT_FOUND;
    }
    snprintf(call->resource, sizeof(call->resource), "secret/%s", out->name);
    if (out->delete_at != 0 && !allow_pending) {
        kms_secret_record_free(out);
        return KMS_E_RESOURCE_IN_DELETE;
    }
    return KMS_OK;
}

/* ---- the service-managed key ---- */

/* The per-server key that encrypts secrets created without EncryptionKeyId; made on first need.
 * It is internal: ListKeys never lists it and the key APIs answer KeyNotFound for it. */
static kms_err kms_secret_service_key(struct kms_call *call, struct kms_key **out)
{
    struct kms_key_record k;
    struct kms_version_record v;
    struct kms_buf id = {0};
    bool made = false;
    kms_err rc;

    rc = kms_store_meta_get(call->db, KMS_SECRETS_SERVICE_KEY, &id);
    if (rc == KMS_OK) {
        rc = kms_key_lookup(call, id.data, out);
        kms_buf_free(&id);
        return rc;
    }
    if (rc != KMS_E_RESOURCE_NOT_FOUND)
        return rc;
    memset(&k, 0, sizeof(k));
    memset(&v, 0, sizeof(v));
    kms_uuid_generate(k.key_id);
    k.description = "Service-managed key of the secrets manager";
    k.deletion_protection_desc = "";
    k.spec = KMS_SPEC_AES_256;
    k.usage = KMS_USAGE_ENCRYPT_DECRYPT;
    k.origin = KMS_ORIGIN_KMS;
    k.protection = KMS_PROTECTION_SOFTWARE;
    k.state = KMS_STATE_ENABLED;
    k.created_at = call->now;
    k.last_rotation_at = call->now;
    k.internal = true;
    /* Material before the write lock, as CreateKey does. */
    rc = kms_key_prepare_version(call, &k, &v);
    if (rc != KMS_OK)
        return rc;
    memcpy(k.primary_version, v.version_id, sizeof(k.primary_version));
    rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_store_meta_get(call->db, KMS_SECRETS_SERVICE_KEY, &id);
    if (rc == KMS_OK) {
        /* Another request made it meanwhile: use that one. */
        kms_store_rollback(call->db);
        kms_key_discard_version(&k, &v);
        kms_version_record_free(&v);
        rc = kms_key_lookup(call, id.data, out);
        kms_buf_free(&id);
        return rc;
    }
    if (rc == KMS_E_RESOURCE_NOT_FOUND)
        rc = kms_store_key_insert(call->db, &k);
    if (rc == KMS_OK)
        rc = kms_store_version_insert(call->db, &v);
    if (rc == KMS_OK)
        rc = kms_store_meta_set(call->db, KMS_SECRETS_SERVICE_KEY, k.key_id, strlen(k.key_id));
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    made = rc == KMS_OK;
    if (!made) {
        kms_store_rollback(call->db);
        kms_key_discard_version(&k, &v);
    }
    kms_version_record_free(&v);
    kms_buf_free(&id);
    if (!made)
        return rc;
    kms_log_info("secrets: created the service-managed key %s", k.key_id);
    return kms_key_lookup(call, k.key_id, out);
}

/* The CMK a new version is sealed under: symmetric ENCRYPT/DECRYPT and Enabled. */
static kms_err kms_secret_usable_key(struct kms_call *call, const char *key_id,
                                     struct kms_key **out)
{
    kms_err rc = kms_key_lookup(call, key_id, out);

    if (rc != KMS_OK)
        return rc;
    rc = kms_key_check_symmetric(call, &(*out)->k_rec);
    if (rc == KMS_OK)
        rc = kms_key_check_usable(call, &(*out)->k_rec);
    if (rc != KMS_OK) {
        kms_key_put(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- sealing and opening values ---- */

/* The binding of a value to its place: (secret name, version id, data type). */
static kms_err kms_secret_context(const char *name, const char *version_id, const char *type,
                                  struct kms_context *ctx)
{
    static const char k_name[] = "kmsd:SecretName";
    static const char k_version[] = "kmsd:SecretVersionId";
    static const char k_type[] = "kmsd:SecretDataType";
    kms_err rc = kms_context_add(ctx, k_name, sizeof(k_name) - 1, name, strlen(name));

    if (rc == KMS_OK)
        rc = kms_context_add(ctx, k_version, sizeof(k_version) - 1, version_id, strlen(version_id));
    if (rc == KMS_OK)
        rc = kms_context_add(ctx, k_type, sizeof(k_type) - 1, type, strlen(type));
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}

static kms_err kms_secret_value_aad(const struct kms_context *ctx, struct kms_buf *aad)
{
    kms_err rc = kms_buf_append_str(aad, "kmsd secret value v1");

    return rc == KMS_OK ? kms_context_canonical(ctx, aad) : rc;
}

/* Seals value into v (data_key, sealed_value) under key; v->version_id and data_type set. */
static kms_err kms_secret_seal(struct kms_call *call, const struct kms_key_record *key,
                               const char *name, const char *value, size_t len,
                               struct kms_secret_version_record *v)
{
    struct kms_keystore *ks = kms_keystore_for(key->protection);
    uint8_t data_key[KMS_SECRET_DATA_KEY_LEN];
    struct kms_context ctx = {0};
    struct kms_buf blob = {0}, aad = {0}, sealed = {0};
    char key_version[KMS_UUID_LEN];
    uint8_t *p;
    kms_err rc;

    if (ks == NULL)
        return KMS_E_UNAVAILABLE;
    rc = ks->ks_ops->ks_random(ks, data_key, sizeof(data_key));
    if (rc == KMS_OK)
        rc = kms_secret_context(name, v->version_id, v->data_type, &ctx);
    if (rc == KMS_OK)
        rc = kms_sym_seal(call, key, &ctx, data_key, sizeof(data_key), &blob, key_version);
    if (rc == KMS_OK)
        rc = kms_secret_value_aad(&ctx, &aad);
    if (rc == KMS_OK)
        rc = kms_buf_reserve(&sealed, KMS_SECRET_VALUE_OVERHEAD + len);
    if (rc != KMS_OK)
        goto out;
    /* format(1) | iv(12) | ciphertext | tag(16) */
    p = (uint8_t *)sealed.data;
    p[0] = KMS_SECRET_VALUE_FORMAT;
    if (RAND_bytes(p + 1, KMS_AEAD_IV_LEN) != 1) {
        rc = KMS_E_INTERNAL;
        goto out;
    }
    rc = kms_aead_seal(KMS_AEAD_AES_256_GCM, data_key, sizeof(data_key), p + 1,
                       (const uint8_t *)aad.data, aad.len, (const uint8_t *)value, len,
                       p + 1 + KMS_AEAD_IV_LEN, p + 1 + KMS_AEAD_IV_LEN + len);
    if (rc != KMS_OK)
        goto out;
    sealed.len = KMS_SECRET_VALUE_OVERHEAD + len;
    v->data_key = (uint8_t *)blob.data;
    v->data_key_len = blob.len;
    v->sealed_value = (uint8_t *)sealed.data;
    v->sealed_value_len = sealed.len;
    blob.data = sealed.data = NULL;
out:
    OPENSSL_cleanse(data_key, sizeof(data_key));
    kms_context_free(&ctx);
    kms_buf_free(&aad);
    kms_buf_free(&blob);
    kms_buf_free(&sealed);
    return rc;
}

/* Opens version v of secret s into out (caller wipes): the CMK must be usable (key-state errors).
 */
static kms_err kms_secret_open(struct kms_call *call, const struct kms_secret_record *s,
                               const struct kms_secret_version_record *v, struct kms_buf *out)
{
    struct kms_context ctx = {0};
    struct kms_buf data_key = {0}, aad = {0};
    struct kms_key *key = NULL;
    char key_version[KMS_UUID_LEN];
    const uint8_t *p = v->sealed_value;
    size_t ct_len;
    kms_err rc;

    rc = kms_secret_context(s->name, v->version_id, v->data_type, &ctx);
    if (rc == KMS_OK)
        rc = kms_sym_open(call, "SecretName", v->data_key, v->data_key_len, &ctx, true, &data_key,
                          &key, key_version);
    snprintf(call->resource, sizeof(call->resource), "secret/%s", s->name);
    if (rc == KMS_E_INVALID_PARAMETER) {
        /* The stored data key does not authenticate: a damaged or tampered database. */
        kms_log_error("secrets: the data key of secret %s version %s does not open", s->name,
                      v->version_id);
        rc = kms_fail(call, KMS_E_INTERNAL, NULL);
    }
    if (rc != KMS_OK)
        goto out;
    if (strcmp(key->k_rec.key_id, s->key_id) != 0 || data_key.len != KMS_SECRET_DATA_KEY_LEN ||
        v->sealed_value_len < KMS_SECRET_VALUE_OVERHEAD || p[0] != KMS_SECRET_VALUE_FORMAT) {
        kms_log_error("secrets: the stored value of secret %s version %s is malformed", s->name,
                      v->version_id);
        rc = KMS_E_INTERNAL;
        goto out;
    }
    ct_len = v->sealed_value_len - KMS_SECRET_VALUE_OVERHEAD;
    rc = kms_secret_value_aad(&ctx, &aad);
    if (rc == KMS_OK)
        rc = kms_buf_reserve(out, ct_len);
    if (rc != KMS_OK)
        goto out;
    rc = kms_aead_open(KMS_AEAD_AES_256_GCM, (const uint8_t *)data_key.data, data_key.len, p + 1,
                       (const uint8_t *)aad.data, aad.len, p + 1 + KMS_AEAD_IV_LEN, ct_len,
                       p + 1 + KMS_AEAD_IV_LEN + ct_len, (uint8_t *)out->data + out->len);
    if (rc != KMS_OK) {
        kms_log_error("secrets: the stored value of secret %s version %s does not authenticate",
                      s->name, v->version_id);
        rc = KMS_E_INTERNAL;
        goto out;
    }
    out->len += ct_len;
    out->data[out->len] = '\0';
out:
    kms_key_put(key);
    kms_context_free(&ctx);
    kms_buf_free_secret(&data_key);
    kms_buf_free(&aad);
    return rc;
}

/* ---- parameters ---- */

/* VersionId (required): a valid label. */
static kms_err kms_arg_version_id(struct kms_call *call, const char **out)
{
    kms_err rc = kms_arg_required(call, "VersionId", out);

    if (rc == KMS_OK && !kms_secret_label_valid(*out))
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "VersionId");
    return rc;
}

/* SecretData (required, <= 30720 bytes) and SecretDataType (text / binary: Base64 text). */
static kms_err kms_arg_secret_data(struct kms_call *call, const char **data, size_t *len,
                                   const char **type)
{
    const char *t = kms_arg(call, "SecretDataType");
    struct kms_buf check = {0};
    kms_err rc;

    rc = kms_arg_required(call, "SecretData", data);
    if (rc != KMS_OK)
        return rc;
    *len = strlen(*data);
    if (*len > KMS_SECRET_DATA_MAX)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "SecretData");
    if (t == NULL || strcmp(t, "text") == 0) {
        *type = "text";
        return KMS_OK;
    }
    if (strcmp(t, "binary") != 0)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "SecretDataType");
    *type = "binary";
    /* Binary data arrives (and is returned) as Base64: it must decode. */
    rc = kms_arg_base64(call, "SecretData", true, &check, NULL);
    kms_buf_free_secret(&check);
    return rc;
}

/* The JSON array in VersionStages, or {"VersionStage": [...]}; default ["ACSCurrent"]. */
static kms_err kms_arg_version_stages(struct kms_call *call, char ***stages, size_t *count)
{
    const char *value = kms_arg(call, "VersionStages");
    cJSON *root = NULL, *list;
    char **out = NULL;
    size_t n = 0;
    kms_err rc = KMS_OK;

    *stages = NULL;
    *count = 0;
    if (value == NULL) {
        out = calloc(1, sizeof(*out));
        if (out != NULL)
            out[0] = strdup(kms_stage_current);
        if (out == NULL || out[0] == NULL) {
            free(out);
            return KMS_E_INTERNAL;
        }
        *stages = out;
        *count = 1;
        return KMS_OK;
    }
    root = cJSON_Parse(value);
    list = root;
    if (cJSON_IsObject(root)) {
        list = cJSON_GetObjectItemCaseSensitive(root, "VersionStage");
        if (cJSON_GetArraySize(root) != 1)
            list = NULL;
    }
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0 ||
        cJSON_GetArraySize(list) > KMS_SECRET_STAGES_MAX)
        goto invalid;
    out = calloc((size_t)cJSON_GetArraySize(list), sizeof(*out));
    if (out == NULL) {
        rc = KMS_E_INTERNAL;
        goto fail;
    }
    for (cJSON *item = list->child; item != NULL; item = item->next) {
        if (!cJSON_IsString(item) || !kms_stage_valid(item->valuestring) ||
            strcmp(item->valuestring, kms_stage_previous) == 0)
            goto invalid;
        for (size_t i = 0; i < n; i++)
            if (strcmp(out[i], item->valuestring) == 0)
                goto invalid;
        out[n] = strdup(item->valuestring);
        if (out[n++] == NULL) {
            rc = KMS_E_INTERNAL;
            goto fail;
        }
    }
    cJSON_Delete(root);
    *stages = out;
    *count = n;
    return KMS_OK;
invalid:
    rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "VersionStages");
fail:
    kms_store_free_list(out, n);
    cJSON_Delete(root);
    return rc;
}

/* ---- response helpers ---- */

static kms_err kms_out_stages(cJSON *obj, char **stages, size_t count)
{
    cJSON *list = kms_out_list(obj, "VersionStages", "VersionStage");

    if (list == NULL)
        return KMS_E_INTERNAL;
    for (size_t i = 0; i < count; i++) {
        cJSON *s = cJSON_CreateString(stages[i]);
        if (s == NULL || !cJSON_AddItemToArray(list, s)) {
            cJSON_Delete(s);
            return KMS_E_INTERNAL;
        }
    }
    return KMS_OK;
}

static kms_err kms_out_secret_tags(struct kms_call *call, cJSON *obj, const char *name)
{
    struct kms_tag *tags = NULL;
    size_t count = 0;
    cJSON *list;
    kms_err rc = kms_store_tags_get(call->db, "secret", name, &tags, &count);

    if (rc != KMS_OK)
        return rc;
    list = kms_out_list(obj, "Tags", "Tag");
    if (list == NULL)
        rc = KMS_E_INTERNAL;
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        cJSON *item = kms_out_item(list);

        if (item == NULL) {
            rc = KMS_E_INTERNAL;
            break;
        }
        rc |= kms_out_str(item, "TagKey", tags[i].key);
        rc |= kms_out_str(item, "TagValue", tags[i].value);
    }
    kms_tags_free(tags, count);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}

/* ---- stage moves (inside the caller's write transaction) ---- */

/* Puts stage on version_id; ACSCurrent leaving another version makes that one ACSPrevious. */
static kms_err kms_secret_put_stage(struct kms_call *call, const char *name, const char *stage,
                                    const char *version_id)
{
    char old[KMS_SECRET_VERSION_MAX + 1];
    kms_err rc;

    if (strcmp(stage, kms_stage_current) == 0) {
        rc = kms_store_secret_stage_get(call->db, name, kms_stage_current, old);
        if (rc == KMS_OK && strcmp(old, version_id) != 0)
            rc = kms_store_secret_stage_set(call->db, name, kms_stage_previous, old);
        if (rc != KMS_OK && rc != KMS_E_RESOURCE_NOT_FOUND)
            return rc;
    }
    return kms_store_secret_stage_set(call->db, name, stage, version_id);
}

/* Keeps at most KMS_SECRET_VERSIONS_MAX versions: the oldest deprecated ones roll off. */
static kms_err kms_secret_prune(struct kms_call *call, const char *name)
{
    int64_t remaining = 0;
    kms_err rc =
        kms_store_secret_versions_prune(call->db, name, KMS_SECRET_VERSIONS_MAX, &remaining);

    if (rc == KMS_OK && remaining > KMS_SECRET_VERSIONS_MAX)
        rc = kms_fail(call, KMS_E_LIMIT_EXCEEDED, "VersionId"); /* every version has a label */
    return rc;
}

/* ---- actions ---- */

/* CreateSecret's parameters that need no lookup. */
struct kms_create_secret_args {
    const char *name;
    const char *version_id;
    const char *data;
    size_t data_len;
    const char *type;
    const char *description;
    struct kms_tag *tags;
    size_t tag_count;
};

static kms_err kms_create_secret_args(struct kms_call *call, struct kms_create_secret_args *a)
{
    const char *secret_type = kms_arg(call, "SecretType");
    const char *tags = kms_arg(call, "Tags");
    bool rotate = false;
    kms_err rc;

    rc = kms_arg_required(call, "SecretName", &a->name);
    if (rc != KMS_OK)
        return rc;
    if (!kms_secret_name_valid(a->name))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "SecretName");
    rc = kms_arg_version_id(call, &a->version_id);
    if (rc == KMS_OK)
        rc = kms_arg_secret_data(call, &a->data, &a->data_len, &a->type);
    if (rc != KMS_OK)
        return rc;
    a->description = kms_arg(call, "Description");
    rc = kms_check_length(call, "Description", a->description, 0, KMS_SECRET_DESCRIPTION_MAX);
    if (rc != KMS_OK)
        return rc;
    /* Only generic secrets exist here; the managed types' settings have nothing to act on. */
    if (secret_type != NULL && strcmp(secret_type, "Generic") != 0)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "SecretType");
    rc = kms_arg_bool(call, "EnableAutomaticRotation", false, &rotate);
    if (rc != KMS_OK)
        return rc;
    if (rotate)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "EnableAutomaticRotation");
    if (kms_arg(call, "RotationInterval") != NULL)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "RotationInterval");
    if (kms_arg(call, "ExtendedConfig") != NULL)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "ExtendedConfig");
    rc = kms_check_instance_id(call, "DKMSInstanceId");
    if (rc != KMS_OK)
        return rc;
    if (tags != NULL)
        return kms_tags_parse(call, "Tags", tags, &a->tags, &a->tag_count);
    return KMS_OK;
}

/* The name is free, in its delete window, or taken (checked again under the write lock). */
static kms_err kms_secret_name_free(struct kms_call *call, const char *name)
{
    struct kms_secret_record old;
    kms_err rc = kms_store_secret_get(call->db, name, &old);

    if (rc == KMS_E_RESOURCE_NOT_FOUND)
        return KMS_OK;
    if (rc != KMS_OK)
        return rc;
    if (old.delete_at != 0 && old.delete_at <= call->now)
        rc = KMS_OK; /* expired: the sweeper has not come by yet */
    else if (old.delete_at != 0)
        rc = KMS_E_RESOURCE_IN_DELETE;
    else
        rc = KMS_E_RESOURCE_EXISTS;
    kms_secret_record_free(&old);
    return rc;
}

kms_err kms_api_create_secret(struct kms_call *call)
{
    struct kms_create_secret_args a;
    struct kms_secret_record s;
    struct kms_secret_version_record v;
    struct kms_key *key = NULL;
    char arn[KMS_ARN_MAX];
    int64_t count = 0;
    kms_err rc;

    memset(&a, 0, sizeof(a));
    memset(&s, 0, sizeof(s));
    memset(&v, 0, sizeof(v));
    rc = kms_create_secret_args(call, &a);
    if (rc == KMS_OK)
        rc = kms_secret_name_free(call, a.name);
    if (rc != KMS_OK)
        goto out;
    if (kms_arg(call, "EncryptionKeyId") != NULL) {
        rc = kms_key_resolve(call, "EncryptionKeyId", KMS_REF_ANY, &key);
        if (rc == KMS_OK)
            rc = kms_key_check_symmetric(call, &key->k_rec);
        if (rc == KMS_OK)
            rc = kms_key_check_usable(call, &key->k_rec);
    } else {
        rc = kms_secret_service_key(call, &key);
        if (rc == KMS_OK)
            rc = kms_key_check_usable(call, &key->k_rec);
    }
    if (rc != KMS_OK)
        goto out;
    snprintf(s.name, sizeof(s.name), "%s", a.name);
    s.description = (char *)(a.description ? a.description : "");
    snprintf(s.key_id, sizeof(s.key_id), "%s", key->k_rec.key_id);
    snprintf(s.secret_type, sizeof(s.secret_type), "Generic");
    s.created_at = s.updated_at = call->now;
    snprintf(v.version_id, sizeof(v.version_id), "%s", a.version_id);
    snprintf(v.data_type, sizeof(v.data_type), "%s", a.type);
    v.created_at = call->now;
    /* Crypto before the write lock. */
    rc = kms_secret_seal(call, &key->k_rec, s.name, a.data, a.data_len, &v);
    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_secret_name_free(call, s.name);
    if (rc == KMS_OK)
        rc = kms_store_secret_count(call->db, call->now, &count);
    if (rc == KMS_OK && count >= call->cfg->max_secrets)
        rc = KMS_E_LIMIT_EXCEEDED;
    /* Clears an expired predecessor and any tags a racing TagResource left under the name. */
    if (rc == KMS_OK)
        rc = kms_store_secret_delete(call->db, s.name);
    if (rc == KMS_OK)
        rc = kms_store_secret_insert(call->db, &s);
    if (rc == KMS_OK)
        rc = kms_store_secret_version_insert(call->db, s.name, &v);
    if (rc == KMS_OK)
        rc = kms_store_secret_stage_set(call->db, s.name, kms_stage_current, v.version_id);
    if (rc == KMS_OK && a.tag_count > 0)
        rc = kms_store_tags_put(call->db, "secret", s.name, a.tags, a.tag_count);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc != KMS_OK)
        goto out;
    snprintf(call->resource, sizeof(call->resource), "secret/%s", s.name);
    kms_arn(call, "secret", s.name, arn, sizeof(arn));
    rc |= kms_out_str(call->out, "Arn", arn);
    rc |= kms_out_str(call->out, "SecretName", s.name);
    rc |= kms_out_str(call->out, "VersionId", v.version_id);
    rc |= kms_out_str(call->out, "SecretType", s.secret_type);
    rc |= kms_out_str(call->out, "AutomaticRotation", "Disabled");
    if (rc != KMS_OK)
        rc = KMS_E_INTERNAL;
out:
    kms_store_rollback(call->db);
    kms_key_put(key);
    kms_tags_free(a.tags, a.tag_count);
    kms_secret_version_record_free(&v);
    return rc;
}

/* The version GetSecretValue names: VersionId, VersionStage (default ACSCurrent) or both. */
static kms_err kms_secret_pick_version(struct kms_call *call, const char *name,
                                       struct kms_secret_version_record *v)
{
    const char *version_id = kms_arg(call, "VersionId");
    const char *stage = kms_arg(call, "VersionStage");
    char holder[KMS_SECRET_VERSION_MAX + 1];
    kms_err rc;

    if (version_id == NULL) {
        rc = kms_store_secret_stage_get(call->db, name, stage ? stage : kms_stage_current, holder);
        if (rc != KMS_OK)
            return rc == KMS_E_RESOURCE_NOT_FOUND ? kms_fail(call, rc, "VersionStage") : rc;
        version_id = holder;
    } else if (stage != NULL) {
        rc = kms_store_secret_stage_get(call->db, name, stage, holder);
        if (rc != KMS_OK && rc != KMS_E_RESOURCE_NOT_FOUND)
            return rc;
        if (rc != KMS_OK || strcmp(holder, version_id) != 0)
            return kms_fail(call, KMS_E_INVALID_PARAMETER, "VersionStage");
    }
    rc = kms_store_secret_version_get(call->db, name, version_id, v);
    return rc == KMS_E_RESOURCE_NOT_FOUND ? kms_fail(call, rc, "VersionId") : rc;
}

kms_err kms_api_get_secret_value(struct kms_call *call)
{
    struct kms_secret_record s;
    struct kms_secret_version_record v;
    struct kms_buf value = {0};
    struct kms_key *key = NULL;
    char **stages = NULL;
    size_t stage_count = 0;
    bool dry_run = false, fetch = false;
    kms_err rc;

    memset(&v, 0, sizeof(v));
    rc = kms_arg_dry_run(call, &dry_run);
    if (rc == KMS_OK)
        rc = kms_arg_bool(call, "FetchExtendedConfig", false, &fetch); /* nothing to fetch */
    if (rc != KMS_OK)
        return rc;
    rc = kms_secret_resolve(call, "SecretName", false, &s);
    if (rc != KMS_OK)
        return rc;
    rc = kms_secret_pick_version(call, s.name, &v);
    if (rc == KMS_OK && dry_run) {
        /* Everything short of decrypting: the CMK must be usable. */
        rc = kms_key_lookup(call, s.key_id, &key);
        if (rc == KMS_OK)
            rc = kms_key_check_usable(call, &key->k_rec);
        if (rc == KMS_OK)
            rc = KMS_E_DRY_RUN;
    }
    if (rc == KMS_OK)
        rc = kms_secret_open(call, &s, &v, &value);
    if (rc == KMS_OK)
        rc = kms_store_secret_stages(call->db, s.name, v.version_id, &stages, &stage_count);
    if (rc == KMS_OK) {
        rc |= kms_out_str(call->out, "SecretName", s.name);
        rc |= kms_out_str(call->out, "SecretType", s.secret_type);
        rc |= kms_out_str(call->out, "VersionId", v.version_id);
        rc |= kms_out_time(call->out, "CreateTime", v.created_at);
        rc |= kms_out_str(call->out, "SecretData", value.data ? value.data : "");
        rc |= kms_out_str(call->out, "SecretDataType", v.data_type);
        rc |= kms_out_stages(call->out, stages, stage_count);
        rc |= kms_out_str(call->out, "AutomaticRotation", "Disabled");
        if (rc != KMS_OK)
            rc = KMS_E_INTERNAL;
    }
    kms_key_put(key);
    kms_store_free_list(stages, stage_count);
    kms_buf_free_secret(&value);
    kms_secret_version_record_free(&v);
    kms_secret_record_free(&s);
    return rc;
}

/* An existing VersionId: success when it holds exactly this data and type, else ResourceExist. */
static kms_err kms_secret_same_version(struct kms_call *call, const struct kms_secret_record *s,
                                       const char *version_id, const char *data, size_t len,
                                       const char *type)
{
    struct kms_secret_version_record v;
    struct kms_buf stored = {0};
    kms_err rc = kms_store_secret_version_get(call->db, s->name, version_id, &v);

    if (rc != KMS_OK)
        return rc;
    rc = kms_secret_open(call, s, &v, &stored);
    if (rc == KMS_OK &&
        (strcmp(v.data_type, type) != 0 || !kms_ct_equal(stored.data, stored.len, data, len)))
        rc = kms_fail(call, KMS_E_RESOURCE_EXISTS, "VersionId");
    kms_buf_free_secret(&stored);
    kms_secret_version_record_free(&v);
    return rc;
}

kms_err kms_api_put_secret_value(struct kms_call *call)
{
    struct kms_secret_record s, locked;
    struct kms_secret_version_record v;
    struct kms_key *key = NULL;
    const char *version_id = NULL, *data = NULL, *type = NULL;
    char **stages = NULL, **result = NULL;
    size_t stage_count = 0, result_count = 0, len = 0;
    bool exists = false;
    kms_err rc;

    memset(&s, 0, sizeof(s));
    memset(&locked, 0, sizeof(locked));
    memset(&v, 0, sizeof(v));
    rc = kms_arg_version_id(call, &version_id);
    if (rc == KMS_OK)
        rc = kms_arg_secret_data(call, &data, &len, &type);
    if (rc == KMS_OK)
        rc = kms_arg_version_stages(call, &stages, &stage_count);
    if (rc == KMS_OK)
        rc = kms_secret_resolve(call, "SecretName", false, &s);
    if (rc != KMS_OK)
        goto out;
    rc = kms_store_secret_version_get(call->db, s.name, version_id, &v);
    exists = rc == KMS_OK;
    kms_secret_version_record_free(&v);
    if (rc != KMS_OK && rc != KMS_E_RESOURCE_NOT_FOUND)
        goto out;
    if (exists) {
        /* Idempotent retry, or a clash. Nothing changes either way. */
        rc = kms_secret_same_version(call, &s, version_id, data, len, type);
        goto respond;
    }
    rc = kms_secret_usable_key(call, s.key_id, &key);
    if (rc != KMS_OK)
        goto out;
    snprintf(v.version_id, sizeof(v.version_id), "%s", version_id);
    snprintf(v.data_type, sizeof(v.data_type), "%s", type);
    v.created_at = call->now;
    rc = kms_secret_seal(call, &key->k_rec, s.name, data, len, &v);
    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_secret_resolve(call, "SecretName", false, &locked);
    /* Same name but another secret (deleted and re-created meanwhile): let the client retry. */
    if (rc == KMS_OK && strcmp(locked.key_id, s.key_id) != 0)
        rc = KMS_E_UNAVAILABLE;
    if (rc == KMS_OK) {
        rc = kms_store_secret_version_insert(call->db, s.name, &v);
        if (rc == KMS_E_RESOURCE_EXISTS) {
            /* A concurrent PutSecretValue with this VersionId won: answer as a retry would. */
            kms_store_rollback(call->db);
            rc = kms_secret_same_version(call, &s, version_id, data, len, type);
            goto respond;
        }
    }
    for (size_t i = 0; rc == KMS_OK && i < stage_count; i++)
        rc = kms_secret_put_stage(call, s.name, stages[i], v.version_id);
    if (rc == KMS_OK)
        rc = kms_secret_prune(call, s.name);
    if (rc == KMS_OK) {
        locked.updated_at = call->now;
        rc = kms_store_secret_update(call->db, &locked);
    }
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
respond:
    if (rc == KMS_OK)
        rc = kms_store_secret_stages(call->db, s.name, version_id, &result, &result_count);
    if (rc == KMS_OK) {
        rc |= kms_out_str(call->out, "SecretName", s.name);
        rc |= kms_out_str(call->out, "VersionId", version_id);
        rc |= kms_out_stages(call->out, result, result_count);
        if (rc != KMS_OK)
            rc = KMS_E_INTERNAL;
    }
out:
    kms_store_rollback(call->db);
    kms_key_put(key);
    kms_store_free_list(stages, stage_count);
    kms_store_free_list(result, result_count);
    kms_secret_version_record_free(&v);
    kms_secret_record_free(&s);
    kms_secret_record_free(&locked);
    return rc;
}

/* A version of a secret exists: Forbidden.ResourceNotFound naming param otherwise. */
static kms_err kms_secret_version_exists(struct kms_call *call, const char *name,
                                         const char *version_id, const char *param)
{
    struct kms_secret_version_record v;
    kms_err rc = kms_store_secret_version_get(call->db, name, version_id, &v);

    kms_secret_version_record_free(&v);
    return rc == KMS_E_RESOURCE_NOT_FOUND ? kms_fail(call, rc, param) : rc;
}

kms_err kms_api_update_secret_version_stage(struct kms_call *call)
{
    const char *stage = NULL;
    const char *move = kms_arg(call, "MoveToVersion");
    const char *remove = kms_arg(call, "RemoveFromVersion");
    char holder[KMS_SECRET_VERSION_MAX + 1] = "";
    struct kms_secret_record s;
    kms_err rc;

    memset(&s, 0, sizeof(s));
    rc = kms_arg_required(call, "VersionStage", &stage);
    if (rc != KMS_OK)
        return rc;
    if (!kms_stage_valid(stage))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "VersionStage");
    if (move == NULL && remove == NULL)
        return kms_fail(call, KMS_E_MISSING_PARAMETER, "MoveToVersion");
    /* System labels can only be moved: every secret keeps an ACSCurrent. */
    if (move == NULL && kms_stage_is_system(stage))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "RemoveFromVersion");
    rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_secret_resolve(call, "SecretName", false, &s);
    if (rc == KMS_OK) {
        rc = kms_store_secret_stage_get(call->db, s.name, stage, holder);
        if (rc == KMS_E_RESOURCE_NOT_FOUND)
            rc = KMS_OK;
    }
    if (rc == KMS_OK && remove != NULL) {
        rc = kms_secret_version_exists(call, s.name, remove, "RemoveFromVersion");
        if (rc == KMS_OK && strcmp(holder, remove) != 0)
            rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "RemoveFromVersion");
    }
    if (rc == KMS_OK && move != NULL) {
        rc = kms_secret_version_exists(call, s.name, move, "MoveToVersion");
        if (rc == KMS_OK)
            rc = kms_secret_put_stage(call, s.name, stage, move);
    } else if (rc == KMS_OK) {
        rc = kms_store_secret_stage_remove(call->db, s.name, stage);
    }
    if (rc == KMS_OK) {
        s.updated_at = call->now;
        rc = kms_store_secret_update(call->db, &s);
    }
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK)
        rc = kms_out_str(call->out, "SecretName", s.name);
    kms_store_rollback(call->db);
    kms_secret_record_free(&s);
    return rc;
}

/* The metadata members shared by DescribeSecret and ListSecrets. */
static kms_err kms_out_secret_times(cJSON *obj, const struct kms_secret_record *s)
{
    kms_err rc = KMS_OK;

    rc |= kms_out_time(obj, "CreateTime", s->created_at);
    rc |= kms_out_time(obj, "UpdateTime", s->updated_at);
    rc |= kms_out_time(obj, "PlannedDeleteTime", s->delete_at);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}

kms_err kms_api_describe_secret(struct kms_call *call)
{
    struct kms_secret_record s;
    char arn[KMS_ARN_MAX];
    bool fetch_tags = false;
    kms_err rc;

    rc = kms_arg_bool(call, "FetchTags", false, &fetch_tags);
    if (rc != KMS_OK)
        return rc;
    rc = kms_secret_resolve(call, "SecretName", true, &s);
    if (rc != KMS_OK)
        return rc;
    kms_arn(call, "secret", s.name, arn, sizeof(arn));
    rc |= kms_out_str(call->out, "Arn", arn);
    rc |= kms_out_str(call->out, "SecretName", s.name);
    rc |= kms_out_str(call->out, "SecretType", s.secret_type);
    rc |= kms_out_str(call->out, "EncryptionKeyId", s.key_id);
    rc |= kms_out_str(call->out, "Description", s.description);
    rc |= kms_out_secret_times(call->out, &s);
    rc |= kms_out_str(call->out, "AutomaticRotation", "Disabled");
    if (rc != KMS_OK)
        rc = KMS_E_INTERNAL;
    if (rc == KMS_OK && fetch_tags)
        rc = kms_out_secret_tags(call, call->out, s.name);
    kms_secret_record_free(&s);
    return rc;
}

/* The parsed Filters of ListSecrets; values point into the cJSON tree. */
struct kms_secret_filters {
    cJSON *root;
    struct kms_secret_filter items[KMS_SECRET_FILTERS_MAX];
    const char *values[KMS_SECRET_FILTERS_MAX][KMS_SECRET_FILTER_VALUES];
    size_t count;
    bool match_none; /* a filter no secret here can pass (another Creator or DKMSInstanceId) */
};

static kms_err kms_arg_secret_filters(struct kms_call *call, struct kms_secret_filters *f)
{
    static const struct {
        const char *name;
        int kind; /* enum kms_secret_filter_kind, or -1 Creator, -2 DKMSInstanceId */
    } keys[] = {
        {"SecretName", KMS_SECRET_FILTER_NAME},
        {"Description", KMS_SECRET_FILTER_DESCRIPTION},
        {"TagKey", KMS_SECRET_FILTER_TAG_KEY},
        {"TagValue", KMS_SECRET_FILTER_TAG_VALUE},
        {"SecretType", KMS_SECRET_FILTER_TYPE},
        {"Creator", -1},
        {"DKMSInstanceId", -2},
    };
    const char *json = kms_arg(call, "Filters");
    cJSON *item;

    memset(f, 0, sizeof(*f));
    if (json == NULL)
        return KMS_OK;
    f->root = cJSON_Parse(json);
    if (!cJSON_IsArray(f->root) || cJSON_GetArraySize(f->root) > KMS_SECRET_FILTERS_MAX)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "Filters");
    for (item = f->root->child; item != NULL; item = item->next) {
        cJSON *key = cJSON_GetObjectItemCaseSensitive(item, "Key");
        cJSON *values = cJSON_GetObjectItemCaseSensitive(item, "Values");
        int kind = 0;
        size_t n = 0;
        bool known = false, creator_match = false;

        if (!cJSON_IsString(key) || !cJSON_IsArray(values) || cJSON_GetArraySize(values) == 0 ||
            cJSON_GetArraySize(values) > KMS_SECRET_FILTER_VALUES)
            return kms_fail(call, KMS_E_INVALID_PARAMETER, "Filters");
        for (size_t i = 0; i < KMS_ARRAY_LEN(keys) && !known; i++) {
            if (strcmp(key->valuestring, keys[i].name) == 0) {
                known = true;
                kind = keys[i].kind;
            }
        }
        if (!known)
            return kms_fail(call, KMS_E_INVALID_PARAMETER, "Filters");
        for (cJSON *v = values->child; v != NULL; v = v->next) {
            if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
                return kms_fail(call, KMS_E_INVALID_PARAMETER, "Filters");
            f->values[f->count][n++] = v->valuestring;
            creator_match |= strcmp(v->valuestring, call->cfg->account_id) == 0;
        }
        if (kind == -1) {
            /* Every secret here was created by this server's one account. */
            f->match_none |= !creator_match;
            continue;
        }
        if (kind == -2) {
            /* Every secret lives in the server's one (virtual) instance. */
            bool instance_match = false;

            for (size_t i = 0; i < n; i++)
                instance_match |= strcmp(f->values[f->count][i], call->cfg->instance_id) == 0;
            f->match_none |= !instance_match;
            continue;
        }
        f->items[f->count].kind = (enum kms_secret_filter_kind)kind;
        f->items[f->count].values = f->values[f->count];
        f->items[f->count].count = n;
        f->count++;
    }
    return KMS_OK;
}

kms_err kms_api_list_secrets(struct kms_call *call)
{
    struct kms_secret_filters filters;
    struct kms_secret_record *list = NULL;
    size_t count = 0;
    int64_t page, size, total = 0;
    bool fetch_tags = false;
    cJSON *out;
    kms_err rc;

    memset(&filters, 0, sizeof(filters));
    rc = kms_arg_page(call, 10, &page, &size);
    if (rc == KMS_OK)
        rc = kms_arg_bool(call, "FetchTags", false, &fetch_tags);
    if (rc == KMS_OK)
        rc = kms_arg_secret_filters(call, &filters);
    if (rc == KMS_OK && !filters.match_none)
        rc = kms_store_secret_list(call->db, call->now, filters.items, filters.count,
                                   (page - 1) * size, size, &list, &count, &total);
    if (rc != KMS_OK)
        goto out;
    kms_out_page(call, page, size, total);
    out = kms_out_list(call->out, "SecretList", "Secret");
    if (out == NULL)
        rc = KMS_E_INTERNAL;
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        cJSON *item = kms_out_item(out);

        if (item == NULL) {
            rc = KMS_E_INTERNAL;
            break;
        }
        rc |= kms_out_str(item, "SecretName", list[i].name);
        rc |= kms_out_str(item, "SecretType", list[i].secret_type);
        rc |= kms_out_secret_times(item, &list[i]);
        if (rc != KMS_OK)
            rc = KMS_E_INTERNAL;
        if (rc == KMS_OK && fetch_tags)
            rc = kms_out_secret_tags(call, item, list[i].name);
    }
out:
    cJSON_Delete(filters.root);
    kms_secret_records_free(list, count);
    return rc;
}

kms_err kms_api_update_secret(struct kms_call *call)
{
    const struct kms_param *desc = kms_params_find(&call->params, "Description");
    struct kms_secret_record s;
    char *copy = NULL;
    kms_err rc;

    memset(&s, 0, sizeof(s));
    /* ExtendedConfig.CustomData.<k>: only the managed secret types have one. */
    for (size_t i = 0; i < call->params.count; i++)
        if (strncmp(call->params.items[i].name, "ExtendedConfig", 14) == 0)
            return kms_fail(call, KMS_E_INVALID_PARAMETER, call->params.items[i].name);
    if (desc != NULL) {
        rc = kms_check_length(call, "Description", desc->value, 0, KMS_SECRET_DESCRIPTION_MAX);
        if (rc != KMS_OK)
            return rc;
    }
    rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_secret_resolve(call, "SecretName", false, &s);
    if (rc == KMS_OK && desc != NULL) {
        /* Present but empty clears the description. */
        copy = strdup(desc->value);
        if (copy == NULL) {
            rc = KMS_E_INTERNAL;
        } else {
            free(s.description);
            s.description = copy;
        }
    }
    if (rc == KMS_OK && desc != NULL) {
        s.updated_at = call->now;
        rc = kms_store_secret_update(call->db, &s);
    }
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK)
        rc = kms_out_str(call->out, "SecretName", s.name);
    kms_store_rollback(call->db);
    kms_secret_record_free(&s);
    return rc;
}

kms_err kms_api_list_secret_version_ids(struct kms_call *call)
{
    struct kms_secret_record s;
    struct kms_secret_version_record *list = NULL;
    size_t count = 0;
    int64_t page, size, total = 0;
    bool deprecated = false;
    cJSON *out;
    kms_err rc;

    memset(&s, 0, sizeof(s));
    rc = kms_arg_page(call, 20, &page, &size);
    if (rc == KMS_OK)
        rc = kms_arg_bool(call, "IncludeDeprecated", false, &deprecated);
    if (rc == KMS_OK)
        rc = kms_secret_resolve(call, "SecretName", false, &s);
    if (rc == KMS_OK)
        rc = kms_store_secret_version_list(call->db, s.name, deprecated, (page - 1) * size, size,
                                           &list, &count, &total);
    if (rc != KMS_OK)
        goto out;
    rc = kms_out_str(call->out, "SecretName", s.name);
    kms_out_page(call, page, size, total);
    out = kms_out_list(call->out, "VersionIds", "VersionId");
    if (out == NULL)
        rc = KMS_E_INTERNAL;
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        cJSON *item = kms_out_item(out);
        char **stages = NULL;
        size_t n = 0;

        if (item == NULL) {
            rc = KMS_E_INTERNAL;
            break;
        }
        rc = kms_store_secret_stages(call->db, s.name, list[i].version_id, &stages, &n);
        if (rc != KMS_OK)
            break;
        rc |= kms_out_str(item, "VersionId", list[i].version_id);
        rc |= kms_out_time(item, "CreateTime", list[i].created_at);
        rc |= kms_out_stages(item, stages, n);
        kms_store_free_list(stages, n);
        if (rc != KMS_OK)
            rc = KMS_E_INTERNAL;
    }
out:
    kms_secret_version_records_free(list, count);
    kms_secret_record_free(&s);
    return rc;
}

kms_err kms_api_delete_secret(struct kms_call *call)
{
    struct kms_secret_record s;
    bool force = false;
    int64_t days = 30;
    kms_err rc;

    memset(&s, 0, sizeof(s));
    rc = kms_arg_bool(call, "ForceDeleteWithoutRecovery", false, &force);
    /* The window is ignored (not even checked) when deleting at once. */
    if (rc == KMS_OK && !force)
        rc = kms_arg_int(call, "RecoveryWindowInDays", 7, 30, 30, &days);
    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_secret_resolve(call, "SecretName", true, &s);
    if (rc == KMS_OK && force) {
        rc = kms_store_secret_delete(call->db, s.name);
        s.delete_at = 0;
    } else if (rc == KMS_OK) {
        if (s.delete_at != 0) {
            rc = KMS_E_RESOURCE_IN_DELETE;
        } else {
            s.delete_at = call->now + days * KMS_DAY;
            rc = kms_store_secret_update(call->db, &s);
        }
    }
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK) {
        rc |= kms_out_str(call->out, "SecretName", s.name);
        rc |= kms_out_time(call->out, "PlannedDeleteTime", s.delete_at);
        if (rc != KMS_OK)
            rc = KMS_E_INTERNAL;
        else if (force)
            kms_log_info("secrets: deleted secret %s (forced)", s.name);
    }
    kms_store_rollback(call->db);
    kms_secret_record_free(&s);
    return rc;
}

kms_err kms_api_restore_secret(struct kms_call *call)
{
    struct kms_secret_record s;
    kms_err rc;

    memset(&s, 0, sizeof(s));
    rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_secret_resolve(call, "SecretName", true, &s);
    if (rc == KMS_OK && s.delete_at == 0)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "SecretName"); /* nothing to restore */
    if (rc == KMS_OK) {
        s.delete_at = 0;
        s.updated_at = call->now;
        rc = kms_store_secret_update(call->db, &s);
    }
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK)
        rc = kms_out_str(call->out, "SecretName", s.name);
    kms_store_rollback(call->db);
    kms_secret_record_free(&s);
    return rc;
}

kms_err kms_api_rotate_secret(struct kms_call *call)
{
    struct kms_secret_record s;
    const char *version_id;
    kms_err rc = kms_arg_version_id(call, &version_id);

    if (rc != KMS_OK)
        return rc;
    rc = kms_secret_resolve(call, "SecretName", false, &s);
    if (rc != KMS_OK)
        return rc;
    kms_secret_record_free(&s);
    /* Generic secrets get new values through PutSecretValue; nothing is created here. */
    return kms_fail(call, KMS_E_UNSUPPORTED, "SecretName");
}

/* RotationInterval: <integer>[d|h|m|s] (default unit s), 6 hours to 365 days. */
static kms_err kms_arg_secret_rotation_interval(struct kms_call *call)
{
    const char *v = kms_arg(call, "RotationInterval");
    size_t len = v ? strlen(v) : 0;
    int64_t n = 0, unit = 1;

    if (v == NULL)
        return KMS_OK;
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
    default:
        break;
    }
    if (len == 0 || len > 10)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "RotationInterval");
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return kms_fail(call, KMS_E_INVALID_PARAMETER, "RotationInterval");
        n = n * 10 + (v[i] - '0');
    }
    n *= unit;
    if (n < KMS_SECRET_ROTATION_MIN || n > KMS_SECRET_ROTATION_MAX)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "RotationInterval");
    return KMS_OK;
}

kms_err kms_api_update_secret_rotation_policy(struct kms_call *call)
{
    struct kms_secret_record s;
    const char *flag;
    bool enable = false;
    kms_err rc;

    rc = kms_arg_required(call, "EnableAutomaticRotation", &flag);
    if (rc == KMS_OK)
        rc = kms_arg_bool(call, "EnableAutomaticRotation", false, &enable);
    if (rc == KMS_OK && enable && kms_arg(call, "RotationInterval") == NULL)
        rc = kms_fail(call, KMS_E_MISSING_PARAMETER, "RotationInterval");
    if (rc == KMS_OK)
        rc = kms_arg_secret_rotation_interval(call);
    if (rc == KMS_OK)
        rc = kms_secret_resolve(call, "SecretName", false, &s);
    if (rc != KMS_OK)
        return rc;
    kms_secret_record_free(&s);
    /* Generic secrets never rotate automatically: nothing changes, whatever was asked. */
    return kms_fail(call, KMS_E_UNSUPPORTED, "SecretName");
}

/* ---- maintenance ---- */

kms_err kms_secrets_sweep(struct kms_call *call)
{
    char **names = NULL;
    size_t count = 0;
    kms_err rc, first = KMS_OK;

    rc = kms_store_secrets_due(call->db, call->now, &names, &count);
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        struct kms_secret_record s;
        kms_err one = kms_store_begin(call->db);

        /* Claimed under the write lock: still scheduled and due (RestoreSecret may have won). */
        if (one == KMS_OK)
            one = kms_store_secret_get(call->db, names[i], &s);
        if (one == KMS_OK) {
            if (s.delete_at != 0 && s.delete_at <= call->now) {
                one = kms_store_secret_delete(call->db, s.name);
                if (one == KMS_OK)
                    one = kms_store_commit(call->db);
                if (one == KMS_OK)
                    kms_log_info("maintenance: deleted secret %s", s.name);
            }
            kms_secret_record_free(&s);
        } else if (one == KMS_E_RESOURCE_NOT_FOUND) {
            one = KMS_OK;
        }
        kms_store_rollback(call->db);
        if (one != KMS_OK) {
            kms_log_warn("maintenance: secret %s: %s (will retry)", names[i],
                         kms_err_info(one)->code);
            if (first == KMS_OK)
                first = one;
        }
    }
    kms_store_free_list(names, count);
    return rc != KMS_OK ? rc : first;
}

kms_err kms_secret_verify_version(struct kms_call *call, const char *name, const char *version_id)
{
    struct kms_secret_record s;
    struct kms_secret_version_record v;
    struct kms_buf value = {0};
    kms_err rc;

    memset(&v, 0, sizeof(v));
    rc = kms_store_secret_get(call->db, name, &s);
    if (rc != KMS_OK)
        return rc;
    rc = kms_store_secret_version_get(call->db, name, version_id, &v);
    if (rc == KMS_OK)
        rc = kms_secret_open(call, &s, &v, &value);
    kms_buf_free_secret(&value);
    kms_secret_version_record_free(&v);
    kms_secret_record_free(&s);
    return rc;
}
