/*
 * symmetric.c - envelope encryption under a CMK, shared by Encrypt, Decrypt, the data-key
 * actions, ReEncrypt and the secrets manager: EncryptionContext from the request, sealing
 * under a key's primary version into the blob of DESIGN.md, and opening a blob.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "keystore/keystore.h"

kms_err kms_arg_context(struct kms_call *call, const char *name, struct kms_context *ctx)
{
    const struct kms_param *json = kms_params_find(&call->params, name);
    size_t prefix_len = strlen(name);
    bool flattened = false;
    kms_err rc;

    /* EncryptionContext.<k>=<v>: the Node SDK's flattened map (spec/protocol.md §2.2). */
    for (size_t i = 0; i < call->params.count; i++) {
        const struct kms_param *p = &call->params.items[i];

        if (p->name_len <= prefix_len + 1 || memcmp(p->name, name, prefix_len) != 0 ||
            p->name[prefix_len] != '.')
            continue;
        flattened = true;
        rc = kms_context_add(ctx, p->name + prefix_len + 1, p->name_len - prefix_len - 1, p->value,
                             p->value_len);
        if (rc != KMS_OK)
            return kms_fail(call, rc, name);
    }
    if (json == NULL || json->value_len == 0)
        return KMS_OK;
    if (flattened)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, name);
    rc = kms_context_parse_json(ctx, json->value, json->value_len);
    return rc == KMS_OK ? KMS_OK : kms_fail(call, rc, name);
}

kms_err kms_key_check_symmetric(struct kms_call *call, const struct kms_key_record *k)
{
    const struct kms_key_spec_info *info = kms_key_spec_get(k->spec);

    if (info == NULL || !info->symmetric)
        return KMS_E_UNSUPPORTED_KEY_SPEC;
    if (k->usage != KMS_USAGE_ENCRYPT_DECRYPT)
        return KMS_E_UNSUPPORTED_KEY_USAGE;
    return KMS_OK;
}

static enum kms_aead_alg kms_aead_for_spec(enum kms_key_spec spec)
{
    switch (spec) {
    case KMS_SPEC_AES_256:
        return KMS_AEAD_AES_256_GCM;
    case KMS_SPEC_AES_128:
        return KMS_AEAD_AES_128_GCM;
    case KMS_SPEC_SM4:
        return KMS_AEAD_SM4_GCM;
    default:
        return 0;
    }
}

kms_err kms_sym_seal(struct kms_call *call, const struct kms_key_record *key,
                     const struct kms_context *ctx, const uint8_t *pt, size_t pt_len,
                     struct kms_buf *blob, char version_id[KMS_UUID_LEN])
{
    struct kms_version *v = NULL;
    struct kms_buf aad = {0};
    uint8_t raw_version[16];
    uint8_t *p;
    kms_err rc;

    if (!kms_uuid_parse(key->primary_version, raw_version))
        return KMS_E_INTERNAL;
    rc = kms_version_get(call, key, key->primary_version, &v);
    if (rc != KMS_OK)
        return rc;
    if (v->v_ks == NULL) {
        kms_version_put(v);
        return KMS_E_KEY_PENDING_IMPORT;
    }
    rc = kms_buf_reserve(blob, KMS_BLOB_OVERHEAD + pt_len);
    if (rc != KMS_OK)
        goto out;
    p = (uint8_t *)blob->data + blob->len;
    kms_blob_write_header(p, kms_aead_for_spec(key->spec), raw_version);
    /* The IV is published in the blob: the per-thread pool of CSPRNG output serves. */
    if (!kms_rand_public(p + KMS_BLOB_HEADER_LEN, KMS_AEAD_IV_LEN)) {
        rc = KMS_E_INTERNAL;
        goto out;
    }
    rc = kms_blob_aad(p, ctx, &aad);
    if (rc == KMS_OK)
        rc =
            v->v_ks->kk_ops->ks_seal(v->v_ks, p + KMS_BLOB_HEADER_LEN, (uint8_t *)aad.data, aad.len,
                                     pt, pt_len, p + KMS_BLOB_HEADER_LEN + KMS_AEAD_IV_LEN,
                                     p + KMS_BLOB_HEADER_LEN + KMS_AEAD_IV_LEN + pt_len);
    if (rc == KMS_OK) {
        blob->len += KMS_BLOB_OVERHEAD + pt_len;
        blob->data[blob->len] = '\0';
        memcpy(version_id, v->v_version_id, KMS_UUID_LEN);
    }
out:
    kms_buf_free(&aad);
    kms_version_put(v);
    return rc;
}

kms_err kms_sym_open(struct kms_call *call, const char *param, const uint8_t *data, size_t len,
                     const struct kms_context *ctx, bool allow_internal, struct kms_buf *pt,
                     struct kms_key **key_out, char version_id[KMS_UUID_LEN])
{
    struct kms_blob blob;
    struct kms_key *key = NULL;
    struct kms_version *v = NULL;
    struct kms_buf aad = {0};
    char key_id[KMS_ID_MAX];
    kms_err rc;

    if (kms_blob_parse(data, len, &blob) != KMS_OK)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, param);
    kms_uuid_unparse(blob.version_id, version_id);
    rc = kms_version_owner(call, version_id, key_id);
    if (rc == KMS_E_KEY_VERSION_NOT_FOUND) {
        /* The version of a destroyed key: its key is gone. Any other unknown id: a bad blob. */
        bool destroyed = false;

        rc = kms_store_version_destroyed(call->db, version_id, &destroyed);
        if (rc != KMS_OK)
            return rc;
        return destroyed ? KMS_E_KEY_NOT_FOUND : kms_fail(call, KMS_E_INVALID_PARAMETER, param);
    }
    if (rc == KMS_OK)
        rc = kms_key_lookup(call, key_id, &key);
    if (rc != KMS_OK)
        return rc == KMS_E_KEY_VERSION_NOT_FOUND ? KMS_E_KEY_NOT_FOUND : rc;
    if (key->k_rec.internal && !allow_internal) {
        rc = KMS_E_KEY_NOT_FOUND;
        goto out;
    }
    snprintf(call->resource, sizeof(call->resource), "key/%s", key->k_rec.key_id);
    rc = kms_key_check_symmetric(call, &key->k_rec);
    if (rc == KMS_OK)
        rc = kms_key_check_usable(call, &key->k_rec);
    if (rc != KMS_OK)
        goto out;
    if (blob.alg != kms_aead_for_spec(key->k_rec.spec)) {
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, param);
        goto out;
    }
    rc = kms_version_get(call, &key->k_rec, version_id, &v);
    if (rc == KMS_OK && v->v_ks == NULL)
        rc = KMS_E_KEY_PENDING_IMPORT;
    if (rc == KMS_OK)
        rc = kms_blob_aad(blob.header, ctx, &aad);
    if (rc == KMS_OK)
        rc = kms_buf_reserve(pt, blob.ct_len);
    if (rc != KMS_OK)
        goto out;
    rc = v->v_ks->kk_ops->ks_open(v->v_ks, blob.iv, (uint8_t *)aad.data, aad.len, blob.ct,
                                  blob.ct_len, blob.tag, (uint8_t *)pt->data + pt->len);
    if (rc == KMS_E_INVALID_PARAMETER) {
        /* Tampered blob or another EncryptionContext: the same answer for both. */
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, param);
        goto out;
    }
    if (rc != KMS_OK)
        goto out; /* the keystore failed (an HSM that is away: 503), not the blob */
    pt->len += blob.ct_len;
    pt->data[pt->len] = '\0';
out:
    kms_buf_free(&aad);
    kms_version_put(v);
    if (rc == KMS_OK && key_out != NULL)
        *key_out = key;
    else
        kms_key_put(key);
    return rc;
}

kms_err kms_out_b64(cJSON *obj, const char *name, const uint8_t *data, size_t len)
{
    struct kms_buf b = {0};
    kms_err rc = kms_b64_append(&b, data, len);

    if (rc == KMS_OK)
        rc = kms_out_str(obj, name, b.data ? b.data : "");
    kms_buf_free_secret(&b);
    return rc;
}

kms_err kms_sym_usable_key(struct kms_call *call, const char *param, struct kms_key **out)
{
    kms_err rc = kms_key_resolve(call, param, KMS_REF_ANY, out);

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
