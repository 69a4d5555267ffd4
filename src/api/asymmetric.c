/*
 * asymmetric.c - asymmetric key operations (spec/actions.md D3): GetPublicKey, AsymmetricSign,
 * AsymmetricVerify, AsymmetricEncrypt, AsymmetricDecrypt.
 *
 * Asymmetric keys have no primary version, so every call names KeyVersionId. Operations with
 * the private half (sign, decrypt) go to the keystore that holds it; those with the public half
 * (verify, encrypt) use the public key stored with the version and never touch the keystore,
 * exactly what a client holding GetPublicKey's PEM could do itself.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "keystore/keystore.h"

void kms_asym_target_put(struct kms_asym_target *t)
{
    kms_version_put(t->at_version);
    kms_key_put(t->at_key);
    t->at_version = NULL;
    t->at_key = NULL;
}

/* Parses the algorithm parameter for usage; InvalidParameter for a name kmsd does not know. */
static kms_err kms_asym_alg_parse(struct kms_call *call, const char *alg_param,
                                  enum kms_key_usage usage, struct kms_asym_target *t)
{
    const char *name;
    kms_err rc = kms_arg_required(call, alg_param, &name);

    if (rc != KMS_OK)
        return rc;
    if (usage == KMS_USAGE_SIGN_VERIFY ? !kms_sign_alg_parse(name, &t->at_sign_alg)
                                       : !kms_pk_alg_parse(name, &t->at_pk_alg))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, alg_param);
    return KMS_OK;
}

/* Whether the parsed algorithm applies to keys of spec (and is switched on). */
static bool kms_asym_alg_allowed(struct kms_call *call, enum kms_key_spec spec,
                                 enum kms_key_usage usage, const struct kms_asym_target *t)
{
    if (usage == KMS_USAGE_SIGN_VERIFY)
        return kms_sign_alg_fits(spec, t->at_sign_alg);
    /* PKCS#1 v1.5 decryption is a padding oracle: offered only when configured. */
    if (t->at_pk_alg == KMS_PK_RSAES_PKCS1_V1_5 && !call->cfg->rsa_pkcs1_encryption)
        return false;
    return kms_pk_alg_fits(spec, t->at_pk_alg);
}

kms_err kms_asym_resolve(struct kms_call *call, const char *key_param, const char *version_param,
                         const char *alg_param, enum kms_key_usage usage,
                         struct kms_asym_target *out)
{
    const struct kms_key_spec_info *info;
    const char *version_id;
    kms_err rc;

    memset(out, 0, sizeof(*out));
    rc = kms_arg_required(call, version_param, &version_id);
    if (rc == KMS_OK && alg_param != NULL)
        rc = kms_asym_alg_parse(call, alg_param, usage, out);
    if (rc == KMS_OK)
        rc = kms_key_resolve(call, key_param, KMS_REF_ANY, &out->at_key);
    if (rc != KMS_OK)
        return rc;
    info = kms_key_spec_get(out->at_key->k_rec.spec);
    if (info == NULL || info->symmetric)
        rc = kms_fail(call, KMS_E_UNSUPPORTED_KEY_SPEC, key_param);
    else if (usage != KMS_USAGE_NONE && out->at_key->k_rec.usage != usage)
        rc = kms_fail(call, KMS_E_UNSUPPORTED_KEY_USAGE, key_param);
    else if (alg_param != NULL && !kms_asym_alg_allowed(call, info->spec, usage, out))
        rc = kms_fail(call, KMS_E_UNSUPPORTED_ALGORITHM, alg_param);
    if (rc == KMS_OK)
        rc = kms_key_check_usable(call, &out->at_key->k_rec);
    if (rc == KMS_OK)
        rc = kms_version_get(call, &out->at_key->k_rec, version_id, &out->at_version);
    /* Every asymmetric version is born with its key pair; anything else is a broken store. */
    if (rc == KMS_OK && (out->at_version->v_ks == NULL || out->at_version->v_public == NULL)) {
        rc = KMS_E_INTERNAL;
    }
    if (rc != KMS_OK)
        kms_asym_target_put(out);
    return rc;
}

kms_err kms_asym_decrypt(struct kms_call *call, const struct kms_asym_target *t, const char *param,
                         const uint8_t *ct, size_t ct_len, struct kms_buf *pt)
{
    struct kms_ks_key *ks = t->at_version->v_ks;
    kms_err rc = ks->kk_ops->ks_decrypt(ks, t->at_pk_alg, ct, ct_len, pt);

    return rc == KMS_E_INVALID_PARAMETER ? kms_fail(call, rc, param) : rc;
}

/* KeyId and KeyVersionId of the target, as every response here starts. */
static kms_err kms_asym_out_ids(struct kms_call *call, const struct kms_asym_target *t)
{
    kms_err rc = kms_out_str(call->out, "KeyId", t->at_key->k_rec.key_id);

    if (rc == KMS_OK)
        rc = kms_out_str(call->out, "KeyVersionId", t->at_version->v_version_id);
    return rc;
}

/* The Digest parameter: Base64 of exactly 32 bytes. */
static kms_err kms_arg_digest(struct kms_call *call, struct kms_buf *digest)
{
    kms_err rc = kms_arg_base64(call, "Digest", true, digest, NULL);

    if (rc == KMS_OK && digest->len != KMS_PKEY_DIGEST_LEN)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Digest");
    return rc;
}

kms_err kms_api_get_public_key(struct kms_call *call)
{
    struct kms_asym_target t;
    struct kms_buf pem = {0};
    bool dry = false;
    kms_err rc;

    rc = kms_arg_dry_run(call, &dry);
    if (rc == KMS_OK)
        rc = kms_asym_resolve(call, "KeyId", "KeyVersionId", NULL, KMS_USAGE_NONE, &t);
    if (rc != KMS_OK)
        return rc;
    if (dry)
        rc = KMS_E_DRY_RUN;
    if (rc == KMS_OK)
        rc = kms_pkey_public_pem(t.at_version->v_public_der, t.at_version->v_public_der_len, &pem);
    if (rc == KMS_OK)
        rc = kms_asym_out_ids(call, &t);
    if (rc == KMS_OK)
        rc = kms_out_str(call->out, "PublicKey", pem.data);
    kms_buf_free(&pem);
    kms_asym_target_put(&t);
    return rc;
}

kms_err kms_api_asymmetric_sign(struct kms_call *call)
{
    struct kms_asym_target t;
    struct kms_buf digest = {0}, sig = {0};
    struct kms_ks_key *ks;
    bool dry = false;
    kms_err rc;

    rc = kms_arg_dry_run(call, &dry);
    if (rc == KMS_OK)
        rc = kms_arg_digest(call, &digest);
    if (rc == KMS_OK)
        rc =
            kms_asym_resolve(call, "KeyId", "KeyVersionId", "Algorithm", KMS_USAGE_SIGN_VERIFY, &t);
    if (rc != KMS_OK) {
        kms_buf_free(&digest);
        return rc;
    }
    if (dry)
        rc = KMS_E_DRY_RUN;
    if (rc == KMS_OK) {
        ks = t.at_version->v_ks;
        rc = ks->kk_ops->ks_sign(ks, t.at_sign_alg, (uint8_t *)digest.data, digest.len, &sig);
    }
    if (rc == KMS_OK)
        rc = kms_asym_out_ids(call, &t);
    if (rc == KMS_OK)
        rc = kms_out_b64(call->out, "Value", (uint8_t *)sig.data, sig.len);
    kms_buf_free(&digest);
    kms_buf_free(&sig);
    kms_asym_target_put(&t);
    return rc;
}

kms_err kms_api_asymmetric_verify(struct kms_call *call)
{
    struct kms_asym_target t;
    struct kms_buf digest = {0}, sig = {0};
    bool dry = false, valid = false;
    kms_err rc;

    rc = kms_arg_dry_run(call, &dry);
    if (rc == KMS_OK)
        rc = kms_arg_digest(call, &digest);
    if (rc == KMS_OK)
        rc = kms_arg_base64(call, "Value", true, &sig, NULL);
    if (rc == KMS_OK)
        rc =
            kms_asym_resolve(call, "KeyId", "KeyVersionId", "Algorithm", KMS_USAGE_SIGN_VERIFY, &t);
    if (rc != KMS_OK) {
        kms_buf_free(&digest);
        kms_buf_free(&sig);
        return rc;
    }
    if (dry)
        rc = KMS_E_DRY_RUN;
    /* A signature that does not verify is an answer (false), not an error. */
    if (rc == KMS_OK)
        rc = kms_pkey_verify(t.at_version->v_public, t.at_sign_alg, (uint8_t *)digest.data,
                             digest.len, (uint8_t *)sig.data, sig.len, &valid);
    if (rc == KMS_OK)
        rc = kms_asym_out_ids(call, &t);
    if (rc == KMS_OK && cJSON_AddBoolToObject(call->out, "Value", valid) == NULL)
        rc = KMS_E_INTERNAL;
    kms_buf_free(&digest);
    kms_buf_free(&sig);
    kms_asym_target_put(&t);
    return rc;
}

kms_err kms_api_asymmetric_encrypt(struct kms_call *call)
{
    struct kms_asym_target t;
    struct kms_buf pt = {0}, ct = {0};
    bool dry = false;
    kms_err rc;

    rc = kms_arg_dry_run(call, &dry);
    if (rc == KMS_OK)
        rc = kms_arg_base64(call, "Plaintext", true, &pt, NULL);
    if (rc == KMS_OK)
        rc = kms_asym_resolve(call, "KeyId", "KeyVersionId", "Algorithm", KMS_USAGE_ENCRYPT_DECRYPT,
                              &t);
    if (rc != KMS_OK) {
        kms_buf_free_secret(&pt);
        return rc;
    }
    /* The limit depends on the key and algorithm (spec/algorithms.md §7.2). */
    if (pt.len == 0 || pt.len > kms_pk_max_plaintext(t.at_key->k_rec.spec, t.at_pk_alg))
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Plaintext");
    if (rc == KMS_OK && dry)
        rc = KMS_E_DRY_RUN;
    if (rc == KMS_OK) {
        rc = kms_pkey_encrypt(t.at_version->v_public, t.at_pk_alg, (uint8_t *)pt.data, pt.len, &ct);
        if (rc == KMS_E_INVALID_PARAMETER)
            rc = kms_fail(call, rc, "Plaintext");
    }
    if (rc == KMS_OK)
        rc = kms_asym_out_ids(call, &t);
    if (rc == KMS_OK)
        rc = kms_out_b64(call->out, "CiphertextBlob", (uint8_t *)ct.data, ct.len);
    kms_buf_free_secret(&pt);
    kms_buf_free(&ct);
    kms_asym_target_put(&t);
    return rc;
}

kms_err kms_api_asymmetric_decrypt(struct kms_call *call)
{
    struct kms_asym_target t;
    struct kms_buf ct = {0}, pt = {0};
    bool dry = false;
    kms_err rc;

    rc = kms_arg_dry_run(call, &dry);
    if (rc == KMS_OK)
        rc = kms_arg_base64(call, "CiphertextBlob", true, &ct, NULL);
    if (rc == KMS_OK)
        rc = kms_asym_resolve(call, "KeyId", "KeyVersionId", "Algorithm", KMS_USAGE_ENCRYPT_DECRYPT,
                              &t);
    if (rc != KMS_OK) {
        kms_buf_free(&ct);
        return rc;
    }
    if (dry)
        rc = KMS_E_DRY_RUN;
    if (rc == KMS_OK)
        rc = kms_asym_decrypt(call, &t, "CiphertextBlob", (uint8_t *)ct.data, ct.len, &pt);
    if (rc == KMS_OK)
        rc = kms_asym_out_ids(call, &t);
    if (rc == KMS_OK)
        rc = kms_out_b64(call->out, "Plaintext", (uint8_t *)pt.data, pt.len);
    kms_buf_free(&ct);
    kms_buf_free_secret(&pt);
    kms_asym_target_put(&t);
    return rc;
}
