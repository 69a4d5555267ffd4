/*
 * software.c - the software keystore: key material generated with OpenSSL's RNG and kept only
 * wrapped by a 32-byte master key, AES-256-GCM(master, material, AAD = KeyId ‖ KeyVersionId).
 *
 * The master key (master.h) is a file (created 0600 on first start) or a systemd credential
 * (master_file.c), or in sealing mode an AES key inside a PKCS#11 token (p11_master.c). The
 * same master key seals small server secrets (access-key secrets, import tokens) with an
 * AAD that names their purpose, so one kind can never be replayed as another.
 *
 * Asymmetric versions keep their private key as wrapped PKCS#8 DER; a loaded version holds the
 * EVP_PKEY, and signing and decryption run through src/crypto/pkey.c on it. The private key
 * never leaves this file in any other form.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keystore.h"
#include "kms/config.h"
#include "kms/log.h"
#include "master.h"

#define KMS_WRAP_FORMAT_V1 1
#define KMS_WRAP_OVERHEAD  (1 + KMS_AEAD_IV_LEN + KMS_AEAD_TAG_LEN)

struct kms_software {
    struct kms_master *sw_master;
};

/* A loaded software key version: symmetric bytes or a private key. */
struct kms_sw_key {
    struct kms_ks_key sk_base;
    enum kms_key_spec sk_spec;
    enum kms_aead_alg sk_alg;
    uint8_t sk_material[32];
    size_t sk_material_len;
    EVP_PKEY *sk_pkey;
    struct kms_signer *sk_signer; /* sk_pkey's signing contexts; freed before sk_pkey */
};

static struct kms_software *kms_sw_master; /* the one master key of the process */

static enum kms_aead_alg kms_sw_aead_for(enum kms_key_spec spec)
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

/* out = format | iv | AES-256-GCM(master, data, aad) | tag */
static kms_err kms_sw_wrap(const struct kms_software *sw, const void *aad, size_t aad_len,
                           const uint8_t *data, size_t len, struct kms_buf *out)
{
    uint8_t iv[KMS_AEAD_IV_LEN];
    uint8_t *p;
    kms_err rc;

    if (RAND_bytes(iv, sizeof(iv)) != 1)
        return KMS_E_INTERNAL;
    rc = kms_buf_reserve(out, len + KMS_WRAP_OVERHEAD);
    if (rc != KMS_OK)
        return rc;
    p = (uint8_t *)out->data + out->len;
    p[0] = KMS_WRAP_FORMAT_V1;
    memcpy(p + 1, iv, sizeof(iv));
    rc = sw->sw_master->m_ops->mo_seal(sw->sw_master, iv, aad, aad_len, data, len,
                                       p + 1 + KMS_AEAD_IV_LEN, p + 1 + KMS_AEAD_IV_LEN + len);
    if (rc != KMS_OK)
        return rc;
    out->len += len + KMS_WRAP_OVERHEAD;
    out->data[out->len] = '\0';
    return KMS_OK;
}

/*
 * Opens kms_sw_wrap's output into out (len - overhead bytes); KMS_E_INTERNAL if it does not
 * verify, KMS_E_UNAVAILABLE when a token master cannot be reached right now.
 */
static kms_err kms_sw_unwrap(const struct kms_software *sw, const void *aad, size_t aad_len,
                             const uint8_t *wrapped, size_t len, uint8_t *out, size_t *out_len)
{
    size_t n;
    kms_err rc;

    if (len < KMS_WRAP_OVERHEAD || wrapped[0] != KMS_WRAP_FORMAT_V1)
        return KMS_E_INTERNAL;
    n = len - KMS_WRAP_OVERHEAD;
    rc = sw->sw_master->m_ops->mo_open(sw->sw_master, wrapped + 1, aad, aad_len,
                                       wrapped + 1 + KMS_AEAD_IV_LEN, n,
                                       wrapped + 1 + KMS_AEAD_IV_LEN + n, out);
    if (rc != KMS_OK)
        return rc == KMS_E_UNAVAILABLE ? rc : KMS_E_INTERNAL;
    *out_len = n;
    return KMS_OK;
}

/* AAD binding wrapped material to its key and version: KeyId ‖ KeyVersionId (fixed length). */
static kms_err kms_sw_material_aad(const struct kms_ks_ref *ref, struct kms_buf *aad)
{
    kms_err rc = kms_buf_append_str(aad, ref->key_id);

    if (rc == KMS_OK)
        rc = kms_buf_append_str(aad, ref->version_id);
    return rc;
}

static kms_err kms_sw_wrap_material(struct kms_keystore *ks, const struct kms_ks_ref *ref,
                                    const uint8_t *material, size_t len, struct kms_buf *stored)
{
    struct kms_buf aad = {0};
    kms_err rc = kms_sw_material_aad(ref, &aad);

    if (rc == KMS_OK)
        rc = kms_sw_wrap(ks->ks_impl, aad.data, aad.len, material, len, stored);
    kms_buf_free(&aad);
    return rc;
}

static kms_err kms_sw_create(struct kms_keystore *ks, const struct kms_ks_ref *ref,
                             struct kms_buf *stored, struct kms_buf *public_der)
{
    const struct kms_key_spec_info *info = kms_key_spec_get(ref->spec);
    struct kms_buf der = {0};
    EVP_PKEY *pkey = NULL;
    kms_err rc;

    if (info == NULL)
        return KMS_E_INTERNAL;
    if (info->symmetric) {
        uint8_t material[32];

        if (RAND_bytes(material, (int)info->material_len) != 1)
            return KMS_E_INTERNAL;
        rc = kms_sw_wrap_material(ks, ref, material, info->material_len, stored);
        OPENSSL_cleanse(material, sizeof(material));
        return rc;
    }
    rc = kms_pkey_generate(ref->spec, &pkey);
    if (rc == KMS_OK)
        rc = kms_pkey_public_der(pkey, public_der);
    /* The private key is kept as wrapped PKCS#8 DER. */
    if (rc == KMS_OK)
        rc = kms_pkey_private_der(pkey, &der);
    if (rc == KMS_OK)
        rc = kms_sw_wrap_material(ks, ref, (uint8_t *)der.data, der.len, stored);
    kms_buf_free_secret(&der);
    kms_pkey_free(pkey);
    return rc;
}

/* Symmetric bytes (BYOK, seeding), or for an asymmetric spec a PKCS#8 DER private key of that
 * spec (seeding: kmsd --seed). */
static kms_err kms_sw_import(struct kms_keystore *ks, const struct kms_ks_ref *ref,
                             const uint8_t *material, size_t len, struct kms_buf *stored)
{
    const struct kms_key_spec_info *info = kms_key_spec_get(ref->spec);
    EVP_PKEY *pkey = NULL;
    kms_err rc;

    if (info == NULL)
        return KMS_E_INVALID_KEY_MATERIAL;
    if (info->symmetric) {
        if (len != info->material_len)
            return KMS_E_INVALID_KEY_MATERIAL;
        return kms_sw_wrap_material(ks, ref, material, len, stored);
    }
    if (kms_pkey_from_private_der(material, len, &pkey) != KMS_OK ||
        kms_pkey_spec(pkey) != ref->spec) {
        kms_pkey_free(pkey);
        return KMS_E_INVALID_KEY_MATERIAL;
    }
    kms_pkey_free(pkey);
    rc = kms_sw_wrap_material(ks, ref, material, len, stored);
    return rc;
}

static void kms_sw_release(struct kms_ks_key *key)
{
    struct kms_sw_key *k = (struct kms_sw_key *)key;

    if (k == NULL)
        return;
    kms_signer_free(k->sk_signer);
    EVP_PKEY_free(k->sk_pkey);
    OPENSSL_cleanse(k->sk_material, sizeof(k->sk_material));
    free(k);
}

static const struct kms_keystore_ops kms_software_ops;

static kms_err kms_sw_load(struct kms_keystore *ks, const struct kms_ks_ref *ref,
                           const uint8_t *stored, size_t stored_len, struct kms_ks_key **out)
{
    const struct kms_key_spec_info *info = kms_key_spec_get(ref->spec);
    struct kms_buf aad = {0};
    struct kms_sw_key *k;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    kms_err rc;

    if (info == NULL || stored == NULL || stored_len < KMS_WRAP_OVERHEAD)
        return KMS_E_INTERNAL;
    k = calloc(1, sizeof(*k));
    plain = malloc(stored_len);
    if (k == NULL || plain == NULL) {
        free(k);
        free(plain);
        return KMS_E_INTERNAL;
    }
    k->sk_base.kk_ops = &kms_software_ops;
    k->sk_base.kk_store = ks;
    k->sk_spec = ref->spec;
    rc = kms_sw_material_aad(ref, &aad);
    if (rc == KMS_OK)
        rc = kms_sw_unwrap(ks->ks_impl, aad.data, aad.len, stored, stored_len, plain, &plain_len);
    if (rc == KMS_E_INTERNAL) {
        kms_log_error("keystore: material of version %s does not unwrap under the master key",
                      ref->version_id);
    } else if (rc != KMS_OK) {
        /* A token master that cannot be reached now (503): logged by the PKCS#11 layer. */
    } else if (info->symmetric) {
        if (plain_len != info->material_len) {
            rc = KMS_E_INTERNAL;
        } else {
            memcpy(k->sk_material, plain, plain_len);
            k->sk_material_len = plain_len;
            k->sk_alg = kms_sw_aead_for(ref->spec);
        }
    } else {
        rc = kms_pkey_from_private_der(plain, plain_len, &k->sk_pkey);
        if (rc == KMS_OK && kms_pkey_spec(k->sk_pkey) != ref->spec)
            rc = KMS_E_INTERNAL;
        if (rc == KMS_OK)
            rc = kms_signer_new(k->sk_pkey, &k->sk_signer) == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
    }
    OPENSSL_cleanse(plain, stored_len);
    free(plain);
    kms_buf_free(&aad);
    if (rc != KMS_OK) {
        kms_sw_release(&k->sk_base);
        return rc;
    }
    *out = &k->sk_base;
    return KMS_OK;
}

static kms_err kms_sw_destroy(struct kms_keystore *ks, const struct kms_ks_ref *ref)
{
    /* Nothing outside the store: deleting the row destroys the wrapped material. */
    return KMS_OK;
}

static kms_err kms_sw_seal(struct kms_ks_key *key, const uint8_t iv[KMS_AEAD_IV_LEN],
                           const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                           uint8_t *ct, uint8_t tag[KMS_AEAD_TAG_LEN])
{
    struct kms_sw_key *k = (struct kms_sw_key *)key;

    if (k->sk_material_len == 0)
        return KMS_E_UNSUPPORTED_KEY_SPEC;
    return kms_aead_seal(k->sk_alg, k->sk_material, k->sk_material_len, iv, aad, aad_len, pt,
                         pt_len, ct, tag);
}

static kms_err kms_sw_open(struct kms_ks_key *key, const uint8_t iv[KMS_AEAD_IV_LEN],
                           const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                           const uint8_t tag[KMS_AEAD_TAG_LEN], uint8_t *pt)
{
    struct kms_sw_key *k = (struct kms_sw_key *)key;

    if (k->sk_material_len == 0)
        return KMS_E_UNSUPPORTED_KEY_SPEC;
    return kms_aead_open(k->sk_alg, k->sk_material, k->sk_material_len, iv, aad, aad_len, ct,
                         ct_len, tag, pt);
}

static kms_err kms_sw_sign(struct kms_ks_key *key, enum kms_sign_alg alg, const uint8_t *digest,
                           size_t digest_len, struct kms_buf *sig)
{
    struct kms_sw_key *k = (struct kms_sw_key *)key;

    if (k->sk_signer == NULL)
        return KMS_E_UNSUPPORTED_KEY_SPEC;
    return kms_signer_sign(k->sk_signer, alg, digest, digest_len, sig);
}

static kms_err kms_sw_decrypt(struct kms_ks_key *key, enum kms_pk_alg alg, const uint8_t *ct,
                              size_t ct_len, struct kms_buf *pt)
{
    struct kms_sw_key *k = (struct kms_sw_key *)key;

    if (k->sk_pkey == NULL)
        return KMS_E_UNSUPPORTED_KEY_SPEC;
    return kms_pkey_decrypt(k->sk_pkey, alg, ct, ct_len, pt);
}

static kms_err kms_sw_mac(struct kms_ks_key *key, enum kms_mac_alg alg, const uint8_t *msg,
                          size_t len, uint8_t out[KMS_MAC_MAX_LEN], size_t *out_len)
{
    struct kms_sw_key *k = (struct kms_sw_key *)key;
    uint8_t mac_key[KMS_MAC_KEY_LEN];
    kms_err rc;

    if (k->sk_material_len == 0 || !kms_mac_alg_fits(k->sk_spec, alg))
        return KMS_E_UNSUPPORTED_KEY_SPEC;
    rc = kms_mac_derive_key(k->sk_spec, alg, k->sk_material, k->sk_material_len, mac_key);
    if (rc == KMS_OK)
        rc = kms_hmac(alg, mac_key, sizeof(mac_key), msg, len, out, out_len);
    OPENSSL_cleanse(mac_key, sizeof(mac_key));
    return rc;
}

static kms_err kms_sw_random(struct kms_keystore *ks, uint8_t *out, size_t len)
{
    return RAND_bytes(out, (int)len) == 1 ? KMS_OK : KMS_E_INTERNAL;
}

static void kms_sw_close(struct kms_keystore *ks)
{
    if (ks == NULL)
        return;
    if (ks->ks_impl != NULL) {
        struct kms_software *sw = ks->ks_impl;

        if (kms_sw_master == sw)
            kms_sw_master = NULL;
        if (sw->sw_master != NULL)
            sw->sw_master->m_ops->mo_close(sw->sw_master);
        free(sw);
    }
    free(ks);
}

static const struct kms_keystore_ops kms_software_ops = {
    .ks_name = "software",
    .ks_create = kms_sw_create,
    .ks_import = kms_sw_import,
    .ks_load = kms_sw_load,
    .ks_release = kms_sw_release,
    .ks_destroy = kms_sw_destroy,
    .ks_seal = kms_sw_seal,
    .ks_open = kms_sw_open,
    .ks_sign = kms_sw_sign,
    .ks_decrypt = kms_sw_decrypt,
    .ks_mac = kms_sw_mac,
    .ks_random = kms_sw_random,
    .ks_close = kms_sw_close,
};

kms_err kms_software_keystore_open_master(struct kms_master *master, struct kms_keystore **out)
{
    struct kms_keystore *ks = calloc(1, sizeof(*ks));
    struct kms_software *sw = calloc(1, sizeof(*sw));

    if (ks == NULL || sw == NULL) {
        free(ks);
        free(sw);
        master->m_ops->mo_close(master);
        return KMS_E_INTERNAL;
    }
    sw->sw_master = master;
    ks->ks_ops = &kms_software_ops;
    ks->ks_level = KMS_PROTECTION_SOFTWARE;
    ks->ks_impl = sw;
    kms_sw_master = sw;
    *out = ks;
    return KMS_OK;
}

kms_err kms_software_keystore_open(const struct kms_config *cfg, struct kms_keystore **out)
{
    struct kms_master *master = NULL;
    kms_err rc = kms_master_file_open(cfg->master_key_file, &master);

    if (rc != KMS_OK)
        return rc;
    return kms_software_keystore_open_master(master, out);
}

kms_err kms_keystore_seal_secret(const void *aad, size_t aad_len, const uint8_t *data, size_t len,
                                 struct kms_buf *out)
{
    if (kms_sw_master == NULL)
        return KMS_E_INTERNAL;
    return kms_sw_wrap(kms_sw_master, aad, aad_len, data, len, out);
}

kms_err kms_keystore_open_secret(const void *aad, size_t aad_len, const uint8_t *sealed, size_t len,
                                 struct kms_buf *out)
{
    size_t n = 0;
    kms_err rc;

    if (kms_sw_master == NULL || len < KMS_WRAP_OVERHEAD)
        return KMS_E_INTERNAL;
    rc = kms_buf_reserve(out, len);
    if (rc != KMS_OK)
        return rc;
    rc = kms_sw_unwrap(kms_sw_master, aad, aad_len, sealed, len, (uint8_t *)out->data + out->len,
                       &n);
    if (rc != KMS_OK)
        return rc;
    out->len += n;
    out->data[out->len] = '\0';
    return KMS_OK;
}

kms_err kms_keystore_fingerprint(const uint8_t *material, size_t len, uint8_t out[32])
{
    if (kms_sw_master == NULL)
        return KMS_E_INTERNAL;
    return kms_sw_master->sw_master->m_ops->mo_fingerprint(kms_sw_master->sw_master, material, len,
                                                           out);
}

kms_err kms_keystore_wrap_private(const struct kms_ks_ref *ref, const uint8_t *pkcs8, size_t len,
                                  struct kms_buf *stored, struct kms_buf *public_der)
{
    struct kms_keystore ks = {
        .ks_ops = &kms_software_ops, .ks_level = KMS_PROTECTION_SOFTWARE, .ks_impl = kms_sw_master};
    struct kms_buf der = {0};
    EVP_PKEY *pkey = NULL;
    kms_err rc;

    if (kms_sw_master == NULL)
        return KMS_E_INTERNAL;
    if (kms_pkey_from_private_der(pkcs8, len, &pkey) != KMS_OK ||
        kms_pkey_spec(pkey) != ref->spec) {
        kms_pkey_free(pkey);
        return KMS_E_INVALID_PARAMETER;
    }
    /* Re-encoded, so that what is kept is exactly what ks_create would have kept. */
    rc = kms_pkey_public_der(pkey, public_der);
    if (rc == KMS_OK)
        rc = kms_pkey_private_der(pkey, &der);
    if (rc == KMS_OK)
        rc = kms_sw_wrap_material(&ks, ref, (uint8_t *)der.data, der.len, stored);
    kms_buf_free_secret(&der);
    kms_pkey_free(pkey);
    return rc;
}

kms_err kms_keystore_export_private(struct kms_ks_key *key, struct kms_buf *pkcs8)
{
    struct kms_sw_key *k = (struct kms_sw_key *)key;

    /* A token's keys never leave it; only the software driver holds a key it can give out. */
    if (key == NULL || key->kk_ops != &kms_software_ops || k->sk_pkey == NULL)
        return KMS_E_NO_PERMISSION;
    return kms_pkey_private_der(k->sk_pkey, pkcs8);
}

struct kms_master *kms_software_master(void)
{
    return kms_sw_master ? kms_sw_master->sw_master : NULL;
}

kms_err kms_software_material_aad(const struct kms_ks_ref *ref, struct kms_buf *aad)
{
    return kms_sw_material_aad(ref, aad);
}

kms_err kms_software_rewrap(struct kms_master *from, struct kms_master *to, const void *aad,
                            size_t aad_len, const uint8_t *wrapped, size_t len, struct kms_buf *out)
{
    struct kms_software old_sw = {from}, new_sw = {to};
    uint8_t *plain;
    size_t n = 0;
    kms_err rc;

    if (len < KMS_WRAP_OVERHEAD)
        return KMS_E_INTERNAL;
    plain = malloc(len);
    if (plain == NULL)
        return KMS_E_INTERNAL;
    rc = kms_sw_unwrap(&old_sw, aad, aad_len, wrapped, len, plain, &n);
    if (rc == KMS_OK)
        rc = kms_sw_wrap(&new_sw, aad, aad_len, plain, n, out);
    OPENSSL_cleanse(plain, len);
    free(plain);
    return rc;
}
