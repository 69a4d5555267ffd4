/*
 * import.c - bring your own key (spec/actions.md C4, algorithms.md §5): GetParametersForImport,
 * ImportKeyMaterial, DeleteKeyMaterial.
 *
 * Import tokens are stateless: each GetParametersForImport makes a fresh wrapping key pair and
 * returns its public half with a token that is the Base64 of a record sealed under the master
 * key (AAD "kmsd import token v1", so no other sealed secret passes for a token):
 *
 *   format(1) | expires_at(8, big-endian) | WrappingKeySpec(1) | WrappingAlgorithm(1) |
 *   KeyId length(1) | KeyId | wrapping private key (PKCS#8 DER)
 *
 * Nothing is stored, so tokens cost no space and any number may be outstanding; one is bound to
 * its key and expires 24 h after issue on the timed-work clock. The imported material is
 * checked against a keyed fingerprint of the key's first import, stored with the key, so a key
 * can only ever hold the material it was born with.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "keystore/keystore.h"

#define KMS_TOKEN_FORMAT_V1 1
#define KMS_TOKEN_HEADER    12 /* format, expiry, spec, algorithm, KeyId length */
#define KMS_TOKEN_LIFETIME  (24 * 3600)
/* Latest KeyMaterialExpireUnix accepted: 9999-12-31T23:59:59Z, the end of the wire format. */
#define KMS_EXPIRE_UNIX_MAX 253402300799LL

static const char kms_token_aad[] = "kmsd import token v1";

/* A token's record, opened. */
struct kms_import_token {
    int64_t it_expires_at;
    enum kms_key_spec it_spec;
    enum kms_pk_alg it_alg;
    char it_key_id[KMS_ID_MAX];
    struct kms_buf it_private; /* PKCS#8 DER: secret */
};

static void kms_import_token_free(struct kms_import_token *t)
{
    kms_buf_free_secret(&t->it_private);
}

/* The Base64 token of the record for key_id, wrapping key pkey, alg, expiry. */
static kms_err kms_import_token_seal(const char *key_id, enum kms_key_spec spec,
                                     enum kms_pk_alg alg, int64_t expires_at,
                                     const struct evp_pkey_st *pkey, struct kms_buf *token)
{
    struct kms_buf rec = {0}, sealed = {0};
    size_t id_len = strlen(key_id);
    uint8_t header[KMS_TOKEN_HEADER];
    kms_err rc;

    if (id_len == 0 || id_len >= KMS_ID_MAX)
        return KMS_E_INTERNAL;
    header[0] = KMS_TOKEN_FORMAT_V1;
    for (int i = 0; i < 8; i++)
        header[1 + i] = (uint8_t)((uint64_t)expires_at >> (56 - 8 * i));
    header[9] = (uint8_t)spec;
    header[10] = (uint8_t)alg;
    header[11] = (uint8_t)id_len;
    rc = kms_buf_append(&rec, header, sizeof(header));
    if (rc == KMS_OK)
        rc = kms_buf_append(&rec, key_id, id_len);
    if (rc == KMS_OK)
        rc = kms_pkey_private_der(pkey, &rec);
    if (rc == KMS_OK)
        rc = kms_keystore_seal_secret(kms_token_aad, sizeof(kms_token_aad) - 1, (uint8_t *)rec.data,
                                      rec.len, &sealed);
    if (rc == KMS_OK)
        rc = kms_b64_append(token, (uint8_t *)sealed.data, sealed.len);
    kms_buf_free_secret(&rec);
    kms_buf_free(&sealed);
    return rc;
}

/* Opens a token; anything that is not one of ours is InvalidImportToken. */
static kms_err kms_import_token_open(struct kms_call *call, const char *text,
                                     struct kms_import_token *out)
{
    struct kms_buf sealed = {0}, rec = {0};
    const uint8_t *p;
    size_t n = 0, id_len;
    uint64_t expires = 0;
    kms_err rc = KMS_E_INVALID_IMPORT_TOKEN;

    memset(out, 0, sizeof(*out));
    if (kms_buf_reserve(&sealed, KMS_B64_DECODED_MAX(strlen(text))) != KMS_OK)
        return KMS_E_INTERNAL;
    if (!kms_b64_decode(text, strlen(text), (uint8_t *)sealed.data, &n))
        goto out;
    sealed.len = n;
    if (kms_keystore_open_secret(kms_token_aad, sizeof(kms_token_aad) - 1, (uint8_t *)sealed.data,
                                 sealed.len, &rec) != KMS_OK)
        goto out;
    p = (const uint8_t *)rec.data;
    if (rec.len < KMS_TOKEN_HEADER || p[0] != KMS_TOKEN_FORMAT_V1)
        goto out;
    for (int i = 0; i < 8; i++)
        expires = (expires << 8) | p[1 + i];
    id_len = p[11];
    if (id_len == 0 || id_len >= KMS_ID_MAX || rec.len <= KMS_TOKEN_HEADER + id_len)
        goto out;
    out->it_expires_at = (int64_t)expires;
    out->it_spec = (enum kms_key_spec)p[9];
    out->it_alg = (enum kms_pk_alg)p[10];
    memcpy(out->it_key_id, p + KMS_TOKEN_HEADER, id_len);
    out->it_key_id[id_len] = '\0';
    if (kms_buf_append(&out->it_private, p + KMS_TOKEN_HEADER + id_len,
                       rec.len - KMS_TOKEN_HEADER - id_len) != KMS_OK) {
        rc = KMS_E_INTERNAL;
        goto out;
    }
    rc = KMS_OK;
out:
    kms_buf_free(&sealed);
    kms_buf_free_secret(&rec);
    if (rc != KMS_OK) {
        kms_import_token_free(out);
        return kms_fail(call, rc, "ImportToken");
    }
    return KMS_OK;
}

/* The single version id of an EXTERNAL key. */
static kms_err kms_external_version(struct kms_call *call, const char *key_id,
                                    char version_id[KMS_UUID_LEN])
{
    char **ids = NULL;
    size_t count = 0;
    kms_err rc = kms_store_version_list(call->db, key_id, 0, 1, &ids, &count);

    if (rc == KMS_OK && count == 0)
        rc = KMS_E_INTERNAL;
    if (rc == KMS_OK)
        snprintf(version_id, KMS_UUID_LEN, "%s", ids[0]);
    kms_store_free_list(ids, count);
    return rc;
}

/* A key BYOK actions may address: id or ARN, and Origin=EXTERNAL. */
static kms_err kms_external_key(struct kms_call *call, struct kms_key **out)
{
    kms_err rc = kms_key_resolve(call, "KeyId", KMS_REF_ID_ONLY, out);

    if (rc == KMS_OK && (*out)->k_rec.origin != KMS_ORIGIN_EXTERNAL) {
        kms_key_put(*out);
        *out = NULL;
        rc = kms_fail(call, KMS_E_UNSUPPORTED_ORIGIN, "KeyId");
    }
    return rc;
}

kms_err kms_api_get_parameters_for_import(struct kms_call *call)
{
    struct kms_buf token = {0}, public_der = {0};
    struct evp_pkey_st *pkey = NULL;
    struct kms_key *key = NULL;
    const char *alg_name, *spec_name;
    enum kms_key_spec spec;
    enum kms_pk_alg alg;
    int64_t expires_at = call->now + KMS_TOKEN_LIFETIME;
    kms_err rc;

    rc = kms_arg_required(call, "WrappingAlgorithm", &alg_name);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "WrappingKeySpec", &spec_name);
    if (rc != KMS_OK)
        return rc;
    if (!kms_wrapping_spec_parse(spec_name, &spec))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "WrappingKeySpec");
    /* RSA_2048 with the three RSA wrappings, EC_SM2 with SM2PKE (spec/algorithms.md §5). */
    if (!kms_pk_alg_parse(alg_name, &alg) || !kms_pk_alg_fits(spec, alg))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "WrappingAlgorithm");
    rc = kms_external_key(call, &key);
    if (rc != KMS_OK)
        return rc;
    /* Every call a fresh pair: a token's key unwraps nothing but what was wrapped for it. */
    rc = kms_pkey_generate(spec, &pkey);
    if (rc == KMS_OK)
        rc = kms_pkey_public_der(pkey, &public_der);
    if (rc == KMS_OK)
        rc = kms_import_token_seal(key->k_rec.key_id, spec, alg, expires_at, pkey, &token);
    if (rc == KMS_OK) {
        rc |= kms_out_str(call->out, "KeyId", key->k_rec.key_id);
        rc |= kms_out_str(call->out, "ImportToken", token.data);
        rc |= kms_out_b64(call->out, "PublicKey", (uint8_t *)public_der.data, public_der.len);
        rc |= kms_out_time(call->out, "TokenExpireTime", expires_at);
        if (rc != KMS_OK)
            rc = KMS_E_INTERNAL;
    }
    kms_pkey_free(pkey);
    kms_buf_free(&token);
    kms_buf_free(&public_der);
    kms_key_put(key);
    return rc;
}

/*
 * Unwraps EncryptedKeyMaterial with the token's private key and checks it for the key: every
 * failure, whatever its cause, is InvalidKeyMaterial (one answer, so the wrapping key is no
 * oracle). material gets the plaintext material (the caller wipes it).
 */
static kms_err kms_unwrap_material(struct kms_call *call, const struct kms_import_token *tok,
                                   const struct kms_key_record *k, struct kms_buf *material)
{
    const struct kms_key_spec_info *info = kms_key_spec_get(k->spec);
    const char *text = kms_arg(call, "EncryptedKeyMaterial");
    struct kms_buf wrapped = {0};
    struct evp_pkey_st *pkey = NULL;
    uint8_t fingerprint[32];
    size_t n = 0;
    kms_err rc = KMS_E_INVALID_KEY_MATERIAL;

    if (info == NULL || !info->symmetric)
        return KMS_E_INTERNAL;
    if (kms_buf_reserve(&wrapped, KMS_B64_DECODED_MAX(strlen(text))) != KMS_OK)
        return KMS_E_INTERNAL;
    if (!kms_b64_decode(text, strlen(text), (uint8_t *)wrapped.data, &n))
        goto out;
    wrapped.len = n;
    if (kms_pkey_from_private_der((uint8_t *)tok->it_private.data, tok->it_private.len, &pkey) !=
        KMS_OK) {
        rc = KMS_E_INTERNAL;
        goto out;
    }
    if (kms_pkey_decrypt(pkey, tok->it_alg, (uint8_t *)wrapped.data, wrapped.len, material) !=
            KMS_OK ||
        material->len != info->material_len)
        goto out;
    if (kms_keystore_fingerprint((uint8_t *)material->data, material->len, fingerprint) != KMS_OK) {
        rc = KMS_E_INTERNAL;
        goto out;
    }
    /* Bound forever to the first import: identical bytes or nothing. */
    if (k->has_fingerprint &&
        !kms_ct_equal(fingerprint, sizeof(fingerprint), k->material_fingerprint,
                      sizeof(k->material_fingerprint)))
        goto out;
    rc = KMS_OK;
out:
    kms_pkey_free(pkey);
    kms_buf_free(&wrapped);
    OPENSSL_cleanse(fingerprint, sizeof(fingerprint));
    if (rc != KMS_OK) {
        kms_buf_free_secret(material);
        memset(material, 0, sizeof(*material));
        return rc == KMS_E_INVALID_KEY_MATERIAL ? kms_fail(call, rc, "EncryptedKeyMaterial") : rc;
    }
    return KMS_OK;
}

/*
 * The key ImportKeyMaterial is about: the token's; KeyId, when given, must be an EXTERNAL key
 * (else Unsupported.Origin) and that very key (else InvalidImportToken). The token itself is
 * opened before this, because only it says which key and which private key.
 */
static kms_err kms_import_key(struct kms_call *call, const struct kms_import_token *tok,
                              struct kms_key **out)
{
    kms_err rc;

    if (kms_arg(call, "KeyId") != NULL) {
        /* Only EXTERNAL keys take material, whatever token comes with the request. */
        rc = kms_external_key(call, out);
        if (rc != KMS_OK)
            return rc;
        if (strcmp((*out)->k_rec.key_id, tok->it_key_id) != 0) {
            kms_key_put(*out);
            *out = NULL;
            return kms_fail(call, KMS_E_INVALID_IMPORT_TOKEN, "ImportToken");
        }
    } else {
        rc = kms_key_lookup(call, tok->it_key_id, out);
        if (rc != KMS_OK)
            return rc;
        if ((*out)->k_rec.internal) {
            kms_key_put(*out);
            *out = NULL;
            return KMS_E_KEY_NOT_FOUND;
        }
        snprintf(call->resource, sizeof(call->resource), "key/%s", tok->it_key_id);
    }
    if ((*out)->k_rec.origin != KMS_ORIGIN_EXTERNAL) {
        kms_key_put(*out);
        *out = NULL;
        return kms_fail(call, KMS_E_UNSUPPORTED_ORIGIN, "KeyId");
    }
    return KMS_OK;
}

/* Writes the imported material to the key inside a write transaction. */
static kms_err kms_import_commit(struct kms_call *call, const char *key_id, const char *version_id,
                                 const struct kms_buf *stored, const uint8_t fingerprint[32],
                                 int64_t expire_at)
{
    struct kms_key_record rec;
    kms_err rc = kms_store_begin(call->db);

    if (rc != KMS_OK)
        return rc;
    rc = kms_store_key_get(call->db, key_id, &rec);
    if (rc != KMS_OK) {
        kms_store_rollback(call->db);
        return rc;
    }
    /* The checks again, under the lock: a deletion or another import may have come first. */
    if (rec.state == KMS_STATE_PENDING_DELETION) {
        rc = KMS_E_STATE_MODIFIED_FAILED;
    } else if (rec.has_fingerprint &&
               !kms_ct_equal(fingerprint, 32, rec.material_fingerprint, 32)) {
        rc = kms_fail(call, KMS_E_INVALID_KEY_MATERIAL, "EncryptedKeyMaterial");
    } else {
        /* Waiting for material (never imported, deleted or expired) -> Enabled; Enabled and
         * Disabled keys keep their state and take the new expiry. */
        if (kms_key_effective_state(&rec, call->now) == KMS_STATE_PENDING_IMPORT)
            rec.state = KMS_STATE_ENABLED;
        rec.material_expire_at = expire_at;
        memcpy(rec.material_fingerprint, fingerprint, sizeof(rec.material_fingerprint));
        rec.has_fingerprint = true;
        rc = kms_store_version_set_material(call->db, version_id, (uint8_t *)stored->data,
                                            stored->len);
        if (rc == KMS_OK)
            rc = kms_store_key_update(call->db, &rec);
        if (rc == KMS_OK)
            rc = kms_store_commit(call->db);
    }
    if (rc != KMS_OK)
        kms_store_rollback(call->db);
    kms_key_record_free(&rec);
    kms_key_invalidate(key_id);
    kms_version_invalidate(version_id);
    return rc;
}

kms_err kms_api_import_key_material(struct kms_call *call)
{
    struct kms_import_token tok;
    struct kms_buf material = {0}, stored = {0};
    struct kms_key *key = NULL;
    struct kms_keystore *ks;
    char version_id[KMS_UUID_LEN];
    uint8_t fingerprint[32];
    const char *token_text, *wrapped;
    int64_t expire_at = 0;
    bool have_token = false;
    kms_err rc;

    rc = kms_arg_required(call, "ImportToken", &token_text);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "EncryptedKeyMaterial", &wrapped);
    if (rc == KMS_OK)
        rc = kms_arg_int(call, "KeyMaterialExpireUnix", 0, KMS_EXPIRE_UNIX_MAX, 0, &expire_at);
    if (rc == KMS_OK && expire_at != 0 && expire_at < call->now)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "KeyMaterialExpireUnix");
    if (rc == KMS_OK)
        rc = kms_import_token_open(call, token_text, &tok);
    if (rc != KMS_OK)
        return rc;
    have_token = true;
    rc = kms_import_key(call, &tok, &key);
    if (rc == KMS_OK && tok.it_expires_at <= call->now)
        rc = kms_fail(call, KMS_E_EXPIRED_IMPORT_TOKEN, "ImportToken");
    if (rc == KMS_OK &&
        kms_key_effective_state(&key->k_rec, call->now) == KMS_STATE_PENDING_DELETION)
        rc = KMS_E_STATE_MODIFIED_FAILED;
    if (rc == KMS_OK)
        rc = kms_unwrap_material(call, &tok, &key->k_rec, &material);
    if (rc == KMS_OK)
        rc = kms_keystore_fingerprint((uint8_t *)material.data, material.len, fingerprint);
    if (rc == KMS_OK)
        rc = kms_external_version(call, key->k_rec.key_id, version_id);
    if (rc == KMS_OK) {
        struct kms_ks_ref ref = {key->k_rec.key_id, version_id, key->k_rec.spec};

        ks = kms_keystore_for(key->k_rec.protection);
        rc = ks ? ks->ks_ops->ks_import(ks, &ref, (uint8_t *)material.data, material.len, &stored)
                : KMS_E_UNSUPPORTED_PROTECTION;
    }
    if (rc == KMS_OK)
        rc =
            kms_import_commit(call, key->k_rec.key_id, version_id, &stored, fingerprint, expire_at);
    OPENSSL_cleanse(fingerprint, sizeof(fingerprint));
    kms_buf_free_secret(&material);
    kms_buf_free(&stored);
    kms_key_put(key);
    if (have_token)
        kms_import_token_free(&tok);
    return rc;
}

kms_err kms_api_delete_key_material(struct kms_call *call)
{
    struct kms_key_record rec;
    struct kms_key *key = NULL;
    char version_id[KMS_UUID_LEN];
    kms_err rc = kms_external_key(call, &key);

    if (rc != KMS_OK)
        return rc;
    rc = kms_store_begin(call->db);
    if (rc != KMS_OK) {
        kms_key_put(key);
        return rc;
    }
    rc = kms_store_key_get(call->db, key->k_rec.key_id, &rec);
    kms_key_put(key);
    if (rc != KMS_OK) {
        kms_store_rollback(call->db);
        return rc;
    }
    rc = kms_external_version(call, rec.key_id, version_id);
    if (rc == KMS_OK)
        rc = kms_store_version_set_material(call->db, version_id, NULL, 0);
    if (rc == KMS_OK) {
        /* PendingDeletion keeps its state and DeleteDate; PendingImport stays as it is. */
        if (rec.state == KMS_STATE_ENABLED || rec.state == KMS_STATE_DISABLED)
            rec.state = KMS_STATE_PENDING_IMPORT;
        rec.material_expire_at = 0;
        rc = kms_store_key_update(call->db, &rec);
    }
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    else
        kms_store_rollback(call->db);
    kms_key_invalidate(rec.key_id);
    if (rc == KMS_OK)
        kms_version_invalidate(version_id);
    kms_key_record_free(&rec);
    return rc;
}
