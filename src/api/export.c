/*
 * export.c - data keys handed to a caller's public key (spec/actions.md D2, algorithms.md §6):
 * ExportDataKey (a data-key blob opened with its CMK and encrypted under PublicKeyBlob) and
 * GenerateAndExportDataKey (a new data key, sealed under the CMK and encrypted under
 * PublicKeyBlob). Neither returns the data key in plaintext.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "keystore/keystore.h"

#define KMS_DATA_KEY_MAX 1024

/* The caller's wrapping key: its public key and the algorithm to encrypt with. */
struct kms_wrapping {
    struct evp_pkey_st *w_pub;
    enum kms_key_spec w_spec;
    enum kms_pk_alg w_alg;
};

/*
 * PublicKeyBlob (Base64 DER SubjectPublicKeyInfo), WrappingKeySpec (RSA_2048, EC_SM2) and
 * WrappingAlgorithm (RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1 for RSA; SM2PKE for SM2): missing ->
 * MissingParameter; unknown, mismatched or a key that is not of the spec -> InvalidParameter.
 */
static kms_err kms_arg_wrapping(struct kms_call *call, struct kms_wrapping *w)
{
    struct kms_buf der = {0};
    const char *spec_name, *alg_name;
    enum kms_key_spec key_spec = KMS_SPEC_NONE;
    kms_err rc;

    memset(w, 0, sizeof(*w));
    rc = kms_arg_base64(call, "PublicKeyBlob", true, &der, NULL);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "WrappingKeySpec", &spec_name);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "WrappingAlgorithm", &alg_name);
    if (rc != KMS_OK)
        goto out;
    if (!kms_wrapping_spec_parse(spec_name, &w->w_spec)) {
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "WrappingKeySpec");
        goto out;
    }
    /* PKCS#1 v1.5 is not an export wrapping (spec/algorithms.md §6). */
    if (!kms_pk_alg_parse(alg_name, &w->w_alg) || w->w_alg == KMS_PK_RSAES_PKCS1_V1_5 ||
        !kms_pk_alg_fits(w->w_spec, w->w_alg)) {
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "WrappingAlgorithm");
        goto out;
    }
    rc = kms_pkey_parse_public((uint8_t *)der.data, der.len, &w->w_pub, &key_spec);
    if (rc == KMS_OK && key_spec != w->w_spec)
        rc = KMS_E_INVALID_PARAMETER;
    if (rc == KMS_E_INVALID_PARAMETER)
        rc = kms_fail(call, rc, "PublicKeyBlob");
out:
    if (rc != KMS_OK) {
        kms_pkey_free(w->w_pub);
        w->w_pub = NULL;
    }
    kms_buf_free(&der);
    return rc;
}

/* ExportedDataKey = the wrapping of data_key; a key too long for the algorithm names param. */
static kms_err kms_out_exported(struct kms_call *call, const struct kms_wrapping *w,
                                const uint8_t *data_key, size_t len, const char *param)
{
    struct kms_buf ct = {0};
    kms_err rc = kms_pkey_encrypt(w->w_pub, w->w_alg, data_key, len, &ct);

    if (rc == KMS_E_INVALID_PARAMETER)
        rc = kms_fail(call, rc, param);
    if (rc == KMS_OK)
        rc = kms_out_b64(call->out, "ExportedDataKey", (uint8_t *)ct.data, ct.len);
    kms_buf_free(&ct);
    return rc;
}

kms_err kms_api_export_data_key(struct kms_call *call)
{
    struct kms_context ctx = {0};
    struct kms_buf blob = {0}, pt = {0};
    struct kms_wrapping w = {0};
    struct kms_key *key = NULL;
    char version_id[KMS_UUID_LEN];
    bool dry = false;
    kms_err rc;

    rc = kms_arg_dry_run(call, &dry);
    if (rc == KMS_OK)
        rc = kms_arg_base64(call, "CiphertextBlob", true, &blob, NULL);
    if (rc == KMS_OK)
        rc = kms_arg_context(call, "EncryptionContext", &ctx);
    if (rc == KMS_OK)
        rc = kms_arg_wrapping(call, &w);
    if (rc == KMS_OK)
        rc = kms_sym_open(call, "CiphertextBlob", (uint8_t *)blob.data, blob.len, &ctx, false, &pt,
                          &key, version_id);
    /* A data key longer than the wrapping takes (190 bytes for OAEP-SHA256 and RSA-2048). */
    if (rc == KMS_OK && pt.len > kms_pk_max_plaintext(w.w_spec, w.w_alg))
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "CiphertextBlob");
    if (rc == KMS_OK && dry)
        rc = KMS_E_DRY_RUN;
    if (rc == KMS_OK)
        rc = kms_out_exported(call, &w, (uint8_t *)pt.data, pt.len, "CiphertextBlob");
    if (rc == KMS_OK) {
        rc |= kms_out_str(call->out, "KeyId", key->k_rec.key_id);
        rc |= kms_out_str(call->out, "KeyVersionId", version_id);
        if (rc != KMS_OK)
            rc = KMS_E_INTERNAL;
    }
    kms_pkey_free(w.w_pub);
    kms_key_put(key);
    kms_context_free(&ctx);
    kms_buf_free(&blob);
    kms_buf_free_secret(&pt);
    return rc;
}

kms_err kms_api_generate_and_export_data_key(struct kms_call *call)
{
    struct kms_context ctx = {0};
    struct kms_buf blob = {0};
    struct kms_wrapping w = {0};
    struct kms_keystore *ks;
    struct kms_key *key = NULL;
    uint8_t data_key[KMS_DATA_KEY_MAX];
    char version_id[KMS_UUID_LEN];
    int64_t len = 32;
    bool dry = false;
    kms_err rc;

    rc = kms_arg_dry_run(call, &dry);
    if (rc == KMS_OK)
        rc = kms_arg_data_key_length(call, &len);
    if (rc == KMS_OK)
        rc = kms_arg_context(call, "EncryptionContext", &ctx);
    if (rc == KMS_OK)
        rc = kms_arg_wrapping(call, &w);
    if (rc == KMS_OK && (size_t)len > kms_pk_max_plaintext(w.w_spec, w.w_alg))
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER,
                      kms_arg(call, "NumberOfBytes") ? "NumberOfBytes" : "KeySpec");
    if (rc == KMS_OK)
        rc = kms_sym_usable_key(call, "KeyId", &key);
    if (rc == KMS_OK && dry)
        rc = KMS_E_DRY_RUN;
    if (rc == KMS_OK) {
        ks = kms_keystore_for(key->k_rec.protection);
        rc = ks ? ks->ks_ops->ks_random(ks, data_key, (size_t)len) : KMS_E_UNAVAILABLE;
    }
    if (rc == KMS_OK)
        rc = kms_sym_seal(call, &key->k_rec, &ctx, data_key, (size_t)len, &blob, version_id);
    if (rc == KMS_OK)
        rc = kms_out_exported(call, &w, data_key, (size_t)len, "NumberOfBytes");
    if (rc == KMS_OK) {
        rc |= kms_out_str(call->out, "KeyId", key->k_rec.key_id);
        rc |= kms_out_str(call->out, "KeyVersionId", version_id);
        rc |= kms_out_b64(call->out, "CiphertextBlob", (uint8_t *)blob.data, blob.len);
        if (rc != KMS_OK)
            rc = KMS_E_INTERNAL;
    }
    OPENSSL_cleanse(data_key, sizeof(data_key));
    kms_pkey_free(w.w_pub);
    kms_key_put(key);
    kms_context_free(&ctx);
    kms_buf_free(&blob);
    return rc;
}
