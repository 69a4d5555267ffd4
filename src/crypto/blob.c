/*
 * blob.c - the CiphertextBlob layout (DESIGN.md "Ciphertext and key material"):
 *
 *   format(1) | algorithm(1) | KeyVersionId(16, raw UUID) | iv(12) | ciphertext | tag(16)
 *
 * The header (format, algorithm, version) leads the AEAD's AAD, followed by the canonical
 * EncryptionContext, so a blob cannot be replayed under another key version, algorithm or context.
 * Parsing only checks shape; whether the bytes are genuine is the tag's job.
 */
#include <string.h>

#include "kms/crypto.h"

kms_err kms_blob_parse(const uint8_t *data, size_t len, struct kms_blob *out)
{
    if (data == NULL || len < KMS_BLOB_OVERHEAD)
        return KMS_E_INVALID_PARAMETER;
    if (data[0] != KMS_BLOB_FORMAT_V1 || !kms_aead_alg_valid(data[1]))
        return KMS_E_INVALID_PARAMETER;
    out->header = data;
    out->format = data[0];
    out->alg = data[1];
    memcpy(out->version_id, data + 2, sizeof(out->version_id));
    out->iv = data + KMS_BLOB_HEADER_LEN;
    out->ct = out->iv + KMS_AEAD_IV_LEN;
    out->ct_len = len - KMS_BLOB_OVERHEAD;
    out->tag = out->ct + out->ct_len;
    return KMS_OK;
}

void kms_blob_write_header(uint8_t out[KMS_BLOB_HEADER_LEN], enum kms_aead_alg alg,
                           const uint8_t version_id[16])
{
    out[0] = KMS_BLOB_FORMAT_V1;
    out[1] = (uint8_t)alg;
    memcpy(out + 2, version_id, 16);
}

kms_err kms_blob_aad(const uint8_t header[KMS_BLOB_HEADER_LEN], const struct kms_context *ctx,
                     struct kms_buf *aad_out)
{
    kms_err rc = kms_buf_append(aad_out, header, KMS_BLOB_HEADER_LEN);

    if (rc != KMS_OK || ctx == NULL)
        return rc;
    return kms_context_canonical(ctx, aad_out);
}
