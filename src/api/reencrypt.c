/*
 * reencrypt.c - ReEncrypt (spec/actions.md D1.5): a ciphertext opened inside the server and
 * sealed again under a destination key and context; the plaintext never leaves.
 *
 * The source is either a symmetric blob (opened with SourceEncryptionContext, its key found
 * from the blob) or, when SourceKeyId is given, raw public-key ciphertext of an asymmetric
 * ENCRYPT/DECRYPT key version (SourceKeyVersionId, SourceEncryptionAlgorithm). As Alibaba's
 * SDK and Tianyi document it (unlike AWS), KeyId and KeyVersionId in the response name the
 * source key and version, the ones that decrypted.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

kms_err kms_api_re_encrypt(struct kms_call *call)
{
    struct kms_context src_ctx = {0}, dst_ctx = {0};
    struct kms_buf data = {0}, pt = {0}, blob = {0};
    struct kms_asym_target src = {0};
    struct kms_key *dst = NULL, *src_key = NULL;
    char src_version[KMS_UUID_LEN] = "", dst_version[KMS_UUID_LEN];
    const char *unused;
    bool dry = false, asym;
    kms_err rc;

    /* Parameters first: both modes' required members, both contexts. */
    asym = kms_arg(call, "SourceKeyId") != NULL;
    rc = kms_arg_dry_run(call, &dry);
    if (rc == KMS_OK)
        rc = kms_arg_base64(call, "CiphertextBlob", true, &data, NULL);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "DestinationKeyId", &unused);
    if (rc == KMS_OK && asym)
        rc = kms_arg_required(call, "SourceKeyVersionId", &unused);
    if (rc == KMS_OK && asym)
        rc = kms_arg_required(call, "SourceEncryptionAlgorithm", &unused);
    if (rc == KMS_OK && !asym)
        rc = kms_arg_context(call, "SourceEncryptionContext", &src_ctx);
    if (rc == KMS_OK)
        rc = kms_arg_context(call, "DestinationEncryptionContext", &dst_ctx);
    /* The destination before the source: nothing is decrypted for a key that cannot take it. */
    if (rc == KMS_OK)
        rc = kms_sym_usable_key(call, "DestinationKeyId", &dst);
    if (rc == KMS_OK && asym) {
        rc = kms_asym_resolve(call, "SourceKeyId", "SourceKeyVersionId",
                              "SourceEncryptionAlgorithm", KMS_USAGE_ENCRYPT_DECRYPT, &src);
        if (rc == KMS_OK && !dry)
            rc =
                kms_asym_decrypt(call, &src, "CiphertextBlob", (uint8_t *)data.data, data.len, &pt);
        if (rc == KMS_OK) {
            src_key = src.at_key;
            snprintf(src_version, sizeof(src_version), "%s", src.at_version->v_version_id);
        }
    } else if (rc == KMS_OK) {
        /* Opening is how a blob's key, state and context are checked; it has no side effect. */
        rc = kms_sym_open(call, "CiphertextBlob", (uint8_t *)data.data, data.len, &src_ctx, false,
                          &pt, &src_key, src_version);
    }
    if (rc == KMS_OK && dry)
        rc = KMS_E_DRY_RUN;
    if (rc == KMS_OK)
        rc = kms_sym_seal(call, &dst->k_rec, &dst_ctx, (uint8_t *)pt.data, pt.len, &blob,
                          dst_version);
    if (rc == KMS_OK) {
        rc |= kms_out_str(call->out, "KeyId", src_key->k_rec.key_id);
        rc |= kms_out_str(call->out, "KeyVersionId", src_version);
        rc |= kms_out_b64(call->out, "CiphertextBlob", (uint8_t *)blob.data, blob.len);
        if (rc != KMS_OK)
            rc = KMS_E_INTERNAL;
        snprintf(call->resource, sizeof(call->resource), "key/%s", src_key->k_rec.key_id);
    }
    if (asym)
        kms_asym_target_put(&src); /* owns src_key */
    else
        kms_key_put(src_key);
    kms_key_put(dst);
    kms_context_free(&src_ctx);
    kms_context_free(&dst_ctx);
    kms_buf_free(&data);
    kms_buf_free_secret(&pt);
    kms_buf_free(&blob);
    return rc;
}
