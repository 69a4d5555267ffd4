/*
 * crypto.c - symmetric cryptographic actions (spec/actions.md D1): Encrypt, Decrypt,
 * GenerateDataKey, GenerateDataKeyWithoutPlaintext.
 *
 * DryRun=true (spec/protocol.md §12) runs every check - parameters, the key, its state; for
 * Decrypt opening the blob, which is how its key, version and EncryptionContext are checked -
 * and then answers DryRunOperationError instead of returning anything.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "keystore/keystore.h"

#define KMS_PLAINTEXT_MAX 6144
#define KMS_DATA_KEY_MAX  1024

kms_err kms_api_encrypt(struct kms_call *call)
{
    struct kms_context ctx = {0};
    struct kms_buf pt = {0}, blob = {0};
    char version_id[KMS_UUID_LEN];
    struct kms_key *key = NULL;
    bool dry = false;
    kms_err rc;

    rc = kms_arg_dry_run(call, &dry);
    if (rc == KMS_OK)
        rc = kms_arg_base64(call, "Plaintext", true, &pt, NULL);
    if (rc == KMS_OK && (pt.len == 0 || pt.len > KMS_PLAINTEXT_MAX))
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Plaintext");
    if (rc == KMS_OK)
        rc = kms_arg_context(call, "EncryptionContext", &ctx);
    if (rc == KMS_OK)
        rc = kms_sym_usable_key(call, "KeyId", &key);
    if (rc == KMS_OK && dry)
        rc = KMS_E_DRY_RUN;
    if (rc == KMS_OK)
        rc = kms_sym_seal(call, &key->k_rec, &ctx, (uint8_t *)pt.data, pt.len, &blob, version_id);
    if (rc == KMS_OK) {
        rc |= kms_out_str(call->out, "KeyId", key->k_rec.key_id);
        rc |= kms_out_str(call->out, "KeyVersionId", version_id);
        rc |= kms_out_b64(call->out, "CiphertextBlob", (uint8_t *)blob.data, blob.len);
    }
    kms_key_put(key);
    kms_context_free(&ctx);
    kms_buf_free_secret(&pt);
    kms_buf_free(&blob);
    return rc;
}

kms_err kms_api_decrypt(struct kms_call *call)
{
    struct kms_context ctx = {0};
    struct kms_buf data = {0}, pt = {0};
    char version_id[KMS_UUID_LEN];
    struct kms_key *key = NULL;
    bool dry = false;
    kms_err rc;

    rc = kms_arg_dry_run(call, &dry);
    if (rc == KMS_OK && kms_arg(call, "Recipient") != NULL)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Recipient");
    if (rc == KMS_OK)
        rc = kms_arg_base64(call, "CiphertextBlob", true, &data, NULL);
    if (rc == KMS_OK)
        rc = kms_arg_context(call, "EncryptionContext", &ctx);
    if (rc == KMS_OK)
        rc = kms_sym_open(call, "CiphertextBlob", (uint8_t *)data.data, data.len, &ctx, false, &pt,
                          &key, version_id);
    if (rc == KMS_OK && dry)
        rc = KMS_E_DRY_RUN;
    if (rc == KMS_OK) {
        rc |= kms_out_str(call->out, "KeyId", key->k_rec.key_id);
        rc |= kms_out_str(call->out, "KeyVersionId", version_id);
        rc |= kms_out_b64(call->out, "Plaintext", (uint8_t *)pt.data, pt.len);
    }
    kms_key_put(key);
    kms_context_free(&ctx);
    kms_buf_free(&data);
    kms_buf_free_secret(&pt);
    return rc;
}

kms_err kms_arg_data_key_length(struct kms_call *call, int64_t *len)
{
    const char *spec = kms_arg(call, "KeySpec");
    int64_t n;
    kms_err rc;

    /* NumberOfBytes wins over KeySpec; neither means 32 bytes. */
    *len = 32;
    if (spec != NULL) {
        if (strcmp(spec, "AES_256") == 0)
            *len = 32;
        else if (strcmp(spec, "AES_128") == 0)
            *len = 16;
        else
            return kms_fail(call, KMS_E_INVALID_PARAMETER, "KeySpec");
    }
    rc = kms_arg_int(call, "NumberOfBytes", 1, KMS_DATA_KEY_MAX, *len, &n);
    if (rc == KMS_OK)
        *len = n;
    return rc;
}

static kms_err kms_generate_data_key(struct kms_call *call, bool with_plaintext)
{
    struct kms_context ctx = {0};
    struct kms_buf blob = {0};
    uint8_t data_key[KMS_DATA_KEY_MAX];
    char version_id[KMS_UUID_LEN];
    struct kms_keystore *ks;
    struct kms_key *key = NULL;
    int64_t len = 32;
    bool dry = false;
    kms_err rc;

    rc = kms_arg_dry_run(call, &dry);
    if (rc == KMS_OK && kms_arg(call, "Recipient") != NULL)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Recipient");
    if (rc == KMS_OK)
        rc = kms_arg_data_key_length(call, &len);
    if (rc == KMS_OK)
        rc = kms_arg_context(call, "EncryptionContext", &ctx);
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
    if (rc == KMS_OK) {
        rc |= kms_out_str(call->out, "KeyId", key->k_rec.key_id);
        rc |= kms_out_str(call->out, "KeyVersionId", version_id);
        rc |= kms_out_b64(call->out, "CiphertextBlob", (uint8_t *)blob.data, blob.len);
        if (with_plaintext)
            rc |= kms_out_b64(call->out, "Plaintext", data_key, (size_t)len);
    }
    OPENSSL_cleanse(data_key, sizeof(data_key));
    kms_key_put(key);
    kms_context_free(&ctx);
    kms_buf_free(&blob);
    return rc;
}

kms_err kms_api_generate_data_key(struct kms_call *call)
{
    return kms_generate_data_key(call, true);
}

kms_err kms_api_generate_data_key_without_plaintext(struct kms_call *call)
{
    return kms_generate_data_key(call, false);
}
