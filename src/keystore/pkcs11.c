/*
 * pkcs11.c - the HSM keystore (ProtectionLevel=HSM): keys generated inside a PKCS#11 token and
 * used there, never leaving it.
 *
 * Every key version is a token object (CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not
 * CKA_EXTRACTABLE) whose CKA_ID is the version id's text and whose CKA_LABEL reads
 * "kmsd/<KeyId>/<KeyVersionId>"; key pairs keep their public half in the token too, with the
 * same CKA_ID. The store keeps no material for these versions (ks_create returns an empty
 * `stored`), only the public key of pairs, which kmsd uses for verify and encrypt.
 *
 * Symmetric keys are AES (CKM_AES_KEY_GEN) used with CKM_AES_GCM under the caller's IV and
 * AAD, so the ciphertext blobs are those of software keys. Signatures and RSA decryption run in
 * the token; a padding the token lacks is done in kmsd around raw RSA (p11_rsapad.c). Specs the
 * token cannot do (SM2 and SM4 have no standard PKCS#11 v2.40 mechanism) are refused by
 * ks_supports, which CreateKey and DescribeService ask. Importing material is not supported.
 * MACs (GenerateMac / VerifyMac) use a key derived in the token from the AES key, which
 * therefore has CKA_DERIVE (kms_p11_mac).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kms/log.h"
#include "p11.h"

/* The largest RSA modulus kmsd makes, in bytes (3072 bits). */
#define KMS_P11_RSA_MAX 384

static const uint8_t kms_p11_oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                           0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t kms_p11_oid_p256k[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};
/* DER DigestInfo prefix of a SHA-256 digest (RFC 8017 §9.2, note 1). */
static const uint8_t kms_p11_sha256_prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                0x01, 0x05, 0x00, 0x04, 0x20};

/* A loaded key version: where its (secret or private) key object is. */
struct kms_p11_key {
    struct kms_ks_key pk_base;
    struct kms_p11 *pk_p11;
    enum kms_key_spec pk_spec;
    char pk_version[KMS_UUID_LEN];
    struct kms_p11_handle pk_handle;
    uint8_t *pk_spki; /* RSA: the public key, for padding in kmsd and checking the result */
    size_t pk_spki_len;
    size_t pk_mod_len;     /* RSA: modulus bytes */
    atomic_bool pk_no_mac; /* the token refused to derive MAC keys from this object */
};

static const struct kms_keystore_ops kms_pkcs11_ops;

struct kms_p11 *kms_pkcs11_of(struct kms_keystore *ks)
{
    return ks != NULL && ks->ks_ops == &kms_pkcs11_ops ? ks->ks_impl : NULL;
}

static bool kms_p11_supports(struct kms_keystore *ks, enum kms_key_spec spec,
                             enum kms_origin origin)
{
    struct kms_p11 *p = ks->ks_impl;
    /* Every RSA algorithm of the API: natively, or in kmsd around raw RSA. */
    bool rsa_ops = kms_p11_has(p, KMS_P11_CAP_RSA_X509) ||
                   kms_p11_has(p, KMS_P11_CAP_RSA_PKCS | KMS_P11_CAP_RSA_PSS |
                                      KMS_P11_CAP_OAEP_SHA256 | KMS_P11_CAP_OAEP_SHA1);

    if (origin != KMS_ORIGIN_KMS)
        return false; /* BYOK into the token is not supported */
    switch (spec) {
    case KMS_SPEC_AES_256:
        return kms_p11_has(p, KMS_P11_CAP_AES_256 | KMS_P11_CAP_AES_GCM);
    case KMS_SPEC_AES_128:
        return kms_p11_has(p, KMS_P11_CAP_AES_128 | KMS_P11_CAP_AES_GCM);
    case KMS_SPEC_RSA_2048:
        return kms_p11_has(p, KMS_P11_CAP_RSA_2048) && rsa_ops;
    case KMS_SPEC_RSA_3072:
        return kms_p11_has(p, KMS_P11_CAP_RSA_3072) && rsa_ops;
    case KMS_SPEC_EC_P256:
        return kms_p11_has(p, KMS_P11_CAP_EC_P256 | KMS_P11_CAP_ECDSA);
    case KMS_SPEC_EC_P256K:
        return kms_p11_has(p, KMS_P11_CAP_EC_P256K | KMS_P11_CAP_ECDSA);
    default:
        /* SM4 and SM2 have no standard PKCS#11 v2.40 mechanisms. */
        return false;
    }
}

/* The CKA_LABEL of a version's objects. */
static void kms_p11_label_of(const struct kms_ks_ref *ref, char *out, size_t size)
{
    snprintf(out, size, "kmsd/%s/%s", ref->key_id, ref->version_id);
}

/*
 * An AES key for a version. Where the token derives with CKM_AES_ECB_ENCRYPT_DATA, the key may
 * also derive (CKA_DERIVE), for its MAC keys (kms_p11_mac), and CKA_ALLOWED_MECHANISMS keeps it
 * to CKM_AES_GCM and that derivation: a mechanism such as CKM_XOR_BASE_AND_DATA or
 * CKM_CONCATENATE_BASE_AND_DATA could otherwise copy the material into an extractable key.
 * ECB_ENCRYPT_DATA only gives E_K of chosen blocks, which GCM encryption already gives whoever
 * may log in. A token that refuses the attribute gets keys without CKA_DERIVE (and no MACs).
 */
static kms_err kms_p11_gen_aes(struct kms_p11 *p, struct kms_p11_session *s,
                               const struct kms_ks_ref *ref, const char *label, CK_ULONG len)
{
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_MECHANISM_TYPE allowed[] = {CKM_AES_GCM, CKM_AES_ECB_ENCRYPT_DATA};
    bool derive = kms_p11_has(p, KMS_P11_CAP_AES_DERIVE);
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_VALUE_LEN, &len, sizeof(len)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},
        {CKA_WRAP, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_SIGN, &no, sizeof(no)},
        {CKA_VERIFY, &no, sizeof(no)},
        {CKA_ID, (void *)ref->version_id, strlen(ref->version_id)},
        {CKA_LABEL, (void *)label, strlen(label)},
        /* The last two only where the key derives its MAC keys. */
        {CKA_DERIVE, &yes, sizeof(yes)},
        {CKA_ALLOWED_MECHANISMS, allowed, sizeof(allowed)},
    };
    CK_ULONG count = KMS_ARRAY_LEN(tmpl) - (derive ? 0 : 2);
    CK_OBJECT_HANDLE obj;
    CK_RV rv = p->p_fn->C_GenerateKey(s->s_handle, &m, tmpl, count, &obj);

    if (derive && (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_VALUE_INVALID ||
                   rv == CKR_TEMPLATE_INCONSISTENT)) {
        kms_log_warn("pkcs11: the token '%s' refused CKA_ALLOWED_MECHANISMS on an AES key (%s): "
                     "new HSM keys cannot make MACs",
                     p->p_label, kms_p11_rv_name(rv));
        kms_p11_drop_caps(p, KMS_P11_CAP_AES_DERIVE);
        rv = p->p_fn->C_GenerateKey(s->s_handle, &m, tmpl, KMS_ARRAY_LEN(tmpl) - 2, &obj);
    }
    return rv == CKR_OK ? KMS_OK : kms_p11_fail(p, s, rv, "C_GenerateKey (AES)");
}

/* Generates a pair and appends its SubjectPublicKeyInfo; on failure nothing stays behind. */
static kms_err kms_p11_gen_pair(struct kms_p11 *p, struct kms_p11_session *s,
                                const struct kms_ks_ref *ref, const char *label,
                                struct kms_buf *public_der)
{
    bool rsa = ref->spec == KMS_SPEC_RSA_2048 || ref->spec == KMS_SPEC_RSA_3072;
    CK_MECHANISM m = {rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_CLASS pub_cls = CKO_PUBLIC_KEY, priv_cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE type = rsa ? CKK_RSA : CKK_EC;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = ref->spec == KMS_SPEC_RSA_3072 ? 3072 : 2048;
    CK_BYTE e65537[] = {0x01, 0x00, 0x01};
    const uint8_t *oid = ref->spec == KMS_SPEC_EC_P256K ? kms_p11_oid_p256k : kms_p11_oid_p256;
    size_t oid_len =
        ref->spec == KMS_SPEC_EC_P256K ? sizeof(kms_p11_oid_p256k) : sizeof(kms_p11_oid_p256);
    CK_ULONG id_len = strlen(ref->version_id), label_len = strlen(label);
    CK_ATTRIBUTE pub[14] = {
        {CKA_CLASS, &pub_cls, sizeof(pub_cls)}, {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &yes, sizeof(yes)},         {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_VERIFY, &yes, sizeof(yes)},        {CKA_WRAP, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},          {CKA_ID, (void *)ref->version_id, id_len},
        {CKA_LABEL, (void *)label, label_len},
    };
    CK_ULONG pub_count = 9;
    CK_ATTRIBUTE priv[] = {
        {CKA_CLASS, &priv_cls, sizeof(priv_cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
        {CKA_ID, (void *)ref->version_id, id_len},
        {CKA_LABEL, (void *)label, label_len},
        /* The key's usage is not known here: an RSA key may sign or decrypt, as the API says. */
        {CKA_DECRYPT, rsa ? &yes : &no, sizeof(yes)},
    };
    struct kms_buf a = {0}, b = {0};
    CK_OBJECT_HANDLE h_pub = CK_INVALID_HANDLE, h_priv = CK_INVALID_HANDLE;
    kms_err rc;
    CK_RV rv;

    if (rsa) {
        pub[pub_count++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)};
        pub[pub_count++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, e65537, sizeof(e65537)};
        pub[pub_count++] = (CK_ATTRIBUTE){CKA_ENCRYPT, &yes, sizeof(yes)};
    } else {
        pub[pub_count++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)oid, oid_len};
    }
    rv = p->p_fn->C_GenerateKeyPair(s->s_handle, &m, pub, pub_count, priv, KMS_ARRAY_LEN(priv),
                                    &h_pub, &h_priv);
    if (rv != CKR_OK)
        return kms_p11_fail(p, s, rv, rsa ? "C_GenerateKeyPair (RSA)" : "C_GenerateKeyPair (EC)");
    if (rsa) {
        rv = kms_p11_get_attr(p, s, h_pub, CKA_MODULUS, &a);
        if (rv == CKR_OK)
            rv = kms_p11_get_attr(p, s, h_pub, CKA_PUBLIC_EXPONENT, &b);
        rc = rv == CKR_OK
                 ? kms_p11_rsa_spki((uint8_t *)a.data, a.len, (uint8_t *)b.data, b.len, public_der)
                 : kms_p11_fail(p, s, rv, "C_GetAttributeValue (RSA public key)");
    } else {
        rv = kms_p11_get_attr(p, s, h_pub, CKA_EC_POINT, &a);
        rc = rv == CKR_OK
                 ? kms_p11_ec_spki(ref->spec == KMS_SPEC_EC_P256K ? "secp256k1" : "prime256v1",
                                   (uint8_t *)a.data, a.len, public_der)
                 : kms_p11_fail(p, s, rv, "C_GetAttributeValue (CKA_EC_POINT)");
    }
    if (rc != KMS_OK) {
        if (rc == KMS_E_INTERNAL)
            kms_log_error("pkcs11: the public key of new version %s is unusable", ref->version_id);
        p->p_fn->C_DestroyObject(s->s_handle, h_pub);
        p->p_fn->C_DestroyObject(s->s_handle, h_priv);
    }
    kms_buf_free(&a);
    kms_buf_free(&b);
    return rc;
}

static kms_err kms_p11_create(struct kms_keystore *ks, const struct kms_ks_ref *ref,
                              struct kms_buf *stored, struct kms_buf *public_der)
{
    struct kms_p11 *p = ks->ks_impl;
    struct kms_p11_session *s = NULL;
    char label[160];
    kms_err rc;

    if (!kms_p11_supports(ks, ref->spec, KMS_ORIGIN_KMS))
        return KMS_E_UNSUPPORTED_PROTECTION;
    kms_p11_label_of(ref, label, sizeof(label));
    rc = kms_p11_session_get(p, &s);
    if (rc != KMS_OK)
        return rc;
    if (ref->spec == KMS_SPEC_AES_256 || ref->spec == KMS_SPEC_AES_128)
        rc = kms_p11_gen_aes(p, s, ref, label, ref->spec == KMS_SPEC_AES_256 ? 32 : 16);
    else
        rc = kms_p11_gen_pair(p, s, ref, label, public_der);
    kms_p11_session_put(p, s);
    /* `stored` stays empty: the material is in the token and only there. */
    return rc;
}

static kms_err kms_p11_import(struct kms_keystore *ks, const struct kms_ks_ref *ref,
                              const uint8_t *material, size_t len, struct kms_buf *stored)
{
    return KMS_E_UNSUPPORTED_PROTECTION;
}

static void kms_p11_release(struct kms_ks_key *key)
{
    struct kms_p11_key *k = (struct kms_p11_key *)key;

    if (k == NULL)
        return;
    free(k->pk_spki);
    free(k);
}

/* An RSA key's public half, from the private key object (modulus and exponent are public). */
static kms_err kms_p11_load_rsa_public(struct kms_p11 *p, struct kms_p11_key *k)
{
    struct kms_p11_session *s = NULL;
    struct kms_buf n = {0}, e = {0}, spki = {0};
    CK_OBJECT_HANDLE obj;
    kms_err rc = kms_p11_session_get(p, &s);
    CK_RV rv;

    if (rc != KMS_OK)
        return rc;
    rc = kms_p11_handle_get(p, s, &k->pk_handle, &obj);
    if (rc == KMS_OK) {
        rv = kms_p11_get_attr(p, s, obj, CKA_MODULUS, &n);
        if (rv == CKR_OK)
            rv = kms_p11_get_attr(p, s, obj, CKA_PUBLIC_EXPONENT, &e);
        rc = rv == CKR_OK ? KMS_OK : kms_p11_fail(p, s, rv, "C_GetAttributeValue (CKA_MODULUS)");
    }
    kms_p11_session_put(p, s);
    if (rc == KMS_OK && (n.len == 0 || n.len > KMS_P11_RSA_MAX))
        rc = KMS_E_INTERNAL;
    if (rc == KMS_OK)
        rc = kms_p11_rsa_spki((uint8_t *)n.data, n.len, (uint8_t *)e.data, e.len, &spki);
    if (rc == KMS_OK) {
        /* A modulus given with leading zero bytes still counts by its value. */
        size_t lead = 0;

        while (lead < n.len && n.data[lead] == 0)
            lead++;
        k->pk_mod_len = n.len - lead;
        k->pk_spki = (uint8_t *)spki.data;
        k->pk_spki_len = spki.len;
        spki.data = NULL;
    }
    kms_buf_free(&n);
    kms_buf_free(&e);
    kms_buf_free(&spki);
    return rc;
}

static kms_err kms_p11_load(struct kms_keystore *ks, const struct kms_ks_ref *ref,
                            const uint8_t *stored, size_t stored_len, struct kms_ks_key **out)
{
    struct kms_p11 *p = ks->ks_impl;
    struct kms_p11_key *k;
    struct kms_p11_session *s = NULL;
    CK_OBJECT_HANDLE obj;
    bool sym = ref->spec == KMS_SPEC_AES_256 || ref->spec == KMS_SPEC_AES_128;
    bool rsa = ref->spec == KMS_SPEC_RSA_2048 || ref->spec == KMS_SPEC_RSA_3072;
    kms_err rc;

    if (!sym && !rsa && ref->spec != KMS_SPEC_EC_P256 && ref->spec != KMS_SPEC_EC_P256K)
        return KMS_E_UNSUPPORTED_PROTECTION;
    if (strlen(ref->version_id) >= KMS_UUID_LEN)
        return KMS_E_INTERNAL;
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return KMS_E_INTERNAL;
    k->pk_base.kk_ops = &kms_pkcs11_ops;
    k->pk_base.kk_store = ks;
    k->pk_p11 = p;
    k->pk_spec = ref->spec;
    snprintf(k->pk_version, sizeof(k->pk_version), "%s", ref->version_id);
    kms_p11_handle_init(&k->pk_handle, sym ? CKO_SECRET_KEY : CKO_PRIVATE_KEY,
                        sym   ? (long)CKK_AES
                        : rsa ? (long)CKK_RSA
                              : (long)CKK_EC,
                        CKA_ID, ref->version_id, strlen(ref->version_id));
    if (rsa) {
        rc = kms_p11_load_rsa_public(p, k);
    } else {
        rc = kms_p11_session_get(p, &s);
        if (rc == KMS_OK)
            rc = kms_p11_handle_get(p, s, &k->pk_handle, &obj);
        kms_p11_session_put(p, s);
    }
    if (rc == KMS_E_KEY_NOT_FOUND) {
        kms_log_error("pkcs11: the token '%s' has no key object with CKA_ID %s (a version of "
                      "key %s)",
                      p->p_label, ref->version_id, ref->key_id);
        rc = KMS_E_INTERNAL;
    }
    if (rc != KMS_OK) {
        kms_p11_release(&k->pk_base);
        return rc;
    }
    *out = &k->pk_base;
    return KMS_OK;
}

static kms_err kms_p11_destroy(struct kms_keystore *ks, const struct kms_ks_ref *ref)
{
    struct kms_p11 *p = ks->ks_impl;
    struct kms_p11_session *s = NULL;
    size_t count = 0;
    kms_err rc = kms_p11_session_get(p, &s);

    if (rc != KMS_OK)
        return rc;
    rc = kms_p11_destroy_by_id(p, s, ref->version_id, strlen(ref->version_id), &count);
    kms_p11_session_put(p, s);
    if (rc == KMS_OK)
        kms_log_info("pkcs11: destroyed %zu token object(s) of version %s of key %s", count,
                     ref->version_id, ref->key_id);
    return rc;
}

/* A key object that vanished after loading is the operator's problem, never the client's 404. */
static kms_err kms_p11_gone(struct kms_p11_key *k, kms_err rc)
{
    if (rc != KMS_E_KEY_NOT_FOUND)
        return rc;
    kms_log_error("pkcs11: the key object of version %s is gone from the token '%s'", k->pk_version,
                  k->pk_p11->p_label);
    return KMS_E_INTERNAL;
}

static kms_err kms_p11_key_op(struct kms_p11_key *k, enum kms_p11_op op, CK_MECHANISM *m,
                              const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len,
                              CK_RV *init_rv)
{
    return kms_p11_gone(
        k, kms_p11_obj_op(k->pk_p11, &k->pk_handle, op, m, in, in_len, out, out_len, init_rv));
}

static kms_err kms_p11_seal(struct kms_ks_key *key, const uint8_t iv[KMS_AEAD_IV_LEN],
                            const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                            uint8_t *ct, uint8_t tag[KMS_AEAD_TAG_LEN])
{
    struct kms_p11_key *k = (struct kms_p11_key *)key;
    kms_err rc;

    if (k->pk_spec != KMS_SPEC_AES_256 && k->pk_spec != KMS_SPEC_AES_128)
        return KMS_E_UNSUPPORTED_KEY_SPEC;
    rc = kms_p11_gcm(k->pk_p11, &k->pk_handle, true, iv, aad, aad_len, pt, pt_len, NULL, ct, tag);
    return kms_p11_gone(k, rc);
}

static kms_err kms_p11_open_blob(struct kms_ks_key *key, const uint8_t iv[KMS_AEAD_IV_LEN],
                                 const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                                 size_t ct_len, const uint8_t tag[KMS_AEAD_TAG_LEN], uint8_t *pt)
{
    struct kms_p11_key *k = (struct kms_p11_key *)key;
    kms_err rc;

    if (k->pk_spec != KMS_SPEC_AES_256 && k->pk_spec != KMS_SPEC_AES_128)
        return KMS_E_UNSUPPORTED_KEY_SPEC;
    rc = kms_p11_gcm(k->pk_p11, &k->pk_handle, false, iv, aad, aad_len, ct, ct_len, tag, pt, NULL);
    return kms_p11_gone(k, rc);
}

/* Tells once that the token refused a padding and kmsd now does it over raw RSA. */
static void kms_p11_fall_back(struct kms_p11_key *k, unsigned cap, const char *what, CK_RV rv)
{
    if (kms_p11_has(k->pk_p11, cap))
        kms_log_warn("pkcs11: the token '%s' refused %s (%s): kmsd does that padding itself "
                     "over CKM_RSA_X_509 from now on",
                     k->pk_p11->p_label, what, kms_p11_rv_name(rv));
    kms_p11_drop_caps(k->pk_p11, cap);
}

static kms_err kms_p11_sign_rsa(struct kms_p11_key *k, bool pss, const uint8_t *digest,
                                struct kms_buf *sig)
{
    CK_RSA_PKCS_PSS_PARAMS pss_params = {CKM_SHA256, CKG_MGF1_SHA256, 32};
    uint8_t data[sizeof(kms_p11_sha256_prefix) + 32];
    uint8_t em[KMS_P11_RSA_MAX], out[KMS_P11_RSA_MAX];
    size_t out_len = sizeof(out), k_len = k->pk_mod_len;
    unsigned cap = pss ? KMS_P11_CAP_RSA_PSS : KMS_P11_CAP_RSA_PKCS;
    CK_RV init_rv;
    kms_err rc = KMS_E_UNSUPPORTED_ALGORITHM;

    memcpy(data, kms_p11_sha256_prefix, sizeof(kms_p11_sha256_prefix));
    memcpy(data + sizeof(kms_p11_sha256_prefix), digest, 32);
    if (kms_p11_has(k->pk_p11, cap)) {
        CK_MECHANISM m = {pss ? CKM_RSA_PKCS_PSS : CKM_RSA_PKCS, pss ? &pss_params : NULL,
                          pss ? sizeof(pss_params) : 0};

        rc = kms_p11_key_op(k, KMS_P11_SIGN, &m, pss ? digest : data, pss ? 32 : sizeof(data), out,
                            &out_len, &init_rv);
        if (rc == KMS_E_UNSUPPORTED_ALGORITHM)
            kms_p11_fall_back(k, cap, pss ? "CKM_RSA_PKCS_PSS with SHA-256" : "CKM_RSA_PKCS",
                              init_rv);
    }
    if (rc == KMS_E_UNSUPPORTED_ALGORITHM && kms_p11_has(k->pk_p11, KMS_P11_CAP_RSA_X509)) {
        CK_MECHANISM raw = {CKM_RSA_X_509, NULL, 0};

        rc = pss ? kms_p11_pad_pss_sha256(k->pk_spki, k->pk_spki_len, digest, em, k_len)
                 : kms_p11_pad_pkcs1_sign(data, sizeof(data), em, k_len);
        out_len = sizeof(out);
        if (rc == KMS_OK)
            rc = kms_p11_key_op(k, KMS_P11_SIGN, &raw, em, k_len, out, &out_len, &init_rv);
        /* kmsd built the block: check the signature before anyone relies on it. */
        if (rc == KMS_OK &&
            !kms_p11_rsa_verify(k->pk_spki, k->pk_spki_len, pss, digest, out, out_len)) {
            kms_log_error("pkcs11: a raw RSA signature of version %s does not verify",
                          k->pk_version);
            rc = KMS_E_INTERNAL;
        }
    }
    if (rc == KMS_E_UNSUPPORTED_ALGORITHM)
        kms_log_error("pkcs11: the token '%s' can make no %s signature", k->pk_p11->p_label,
                      pss ? "RSA-PSS" : "RSA PKCS#1 v1.5");
    if (rc == KMS_OK)
        rc = kms_buf_append(sig, out, out_len);
    return rc == KMS_E_UNSUPPORTED_ALGORITHM ? KMS_E_INTERNAL : rc;
}

static kms_err kms_p11_sign(struct kms_ks_key *key, enum kms_sign_alg alg, const uint8_t *digest,
                            size_t digest_len, struct kms_buf *sig)
{
    struct kms_p11_key *k = (struct kms_p11_key *)key;
    bool rsa = k->pk_spec == KMS_SPEC_RSA_2048 || k->pk_spec == KMS_SPEC_RSA_3072;
    bool ec = k->pk_spec == KMS_SPEC_EC_P256 || k->pk_spec == KMS_SPEC_EC_P256K;
    uint8_t rs[132];
    size_t rs_len = sizeof(rs);
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    CK_RV init_rv;
    kms_err rc;

    if (!rsa && !ec)
        return KMS_E_UNSUPPORTED_KEY_SPEC;
    if (digest_len != 32)
        return KMS_E_INVALID_PARAMETER;
    if (rsa && (alg == KMS_SIGN_RSA_PSS_SHA_256 || alg == KMS_SIGN_RSA_PKCS1_SHA_256))
        return kms_p11_sign_rsa(k, alg == KMS_SIGN_RSA_PSS_SHA_256, digest, sig);
    if (!ec || alg != KMS_SIGN_ECDSA_SHA_256)
        return KMS_E_UNSUPPORTED_ALGORITHM;
    rc = kms_p11_key_op(k, KMS_P11_SIGN, &m, digest, digest_len, rs, &rs_len, &init_rv);
    if (rc == KMS_E_UNSUPPORTED_ALGORITHM) {
        kms_log_error("pkcs11: the token '%s' refused CKM_ECDSA: %s", k->pk_p11->p_label,
                      kms_p11_rv_name(init_rv));
        rc = KMS_E_INTERNAL;
    }
    /* PKCS#11 gives r||s; the API gives DER. */
    if (rc == KMS_OK)
        rc = kms_p11_ecdsa_der(rs, rs_len, sig);
    return rc;
}

static kms_err kms_p11_decrypt(struct kms_ks_key *key, enum kms_pk_alg alg, const uint8_t *ct,
                               size_t ct_len, struct kms_buf *pt)
{
    struct kms_p11_key *k = (struct kms_p11_key *)key;
    CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &oaep, sizeof(oaep)};
    uint8_t out[KMS_P11_RSA_MAX], em[KMS_P11_RSA_MAX];
    size_t out_len = sizeof(out), k_len = k->pk_mod_len;
    unsigned cap;
    const char *what;
    CK_RV init_rv;
    kms_err rc = KMS_E_UNSUPPORTED_ALGORITHM;

    if (k->pk_spec != KMS_SPEC_RSA_2048 && k->pk_spec != KMS_SPEC_RSA_3072)
        return KMS_E_UNSUPPORTED_KEY_SPEC;
    switch (alg) {
    case KMS_PK_RSAES_OAEP_SHA_256:
        cap = KMS_P11_CAP_OAEP_SHA256;
        what = "CKM_RSA_PKCS_OAEP with SHA-256";
        break;
    case KMS_PK_RSAES_OAEP_SHA_1:
        oaep.hashAlg = CKM_SHA_1;
        oaep.mgf = CKG_MGF1_SHA1;
        cap = KMS_P11_CAP_OAEP_SHA1;
        what = "CKM_RSA_PKCS_OAEP with SHA-1";
        break;
    case KMS_PK_RSAES_PKCS1_V1_5:
        m = (CK_MECHANISM){CKM_RSA_PKCS, NULL, 0};
        cap = KMS_P11_CAP_RSA_PKCS;
        what = "CKM_RSA_PKCS";
        break;
    default:
        return KMS_E_UNSUPPORTED_ALGORITHM;
    }
    if (ct_len != k_len)
        return KMS_E_INVALID_PARAMETER;
    if (kms_p11_has(k->pk_p11, cap)) {
        rc = kms_p11_key_op(k, KMS_P11_DECRYPT, &m, ct, ct_len, out, &out_len, &init_rv);
        if (rc == KMS_E_UNSUPPORTED_ALGORITHM)
            kms_p11_fall_back(k, cap, what, init_rv);
        if (rc == KMS_OK)
            rc = kms_buf_append(pt, out, out_len);
    }
    if (rc == KMS_E_UNSUPPORTED_ALGORITHM && kms_p11_has(k->pk_p11, KMS_P11_CAP_RSA_X509)) {
        CK_MECHANISM raw = {CKM_RSA_X_509, NULL, 0};

        out_len = sizeof(out);
        rc = kms_p11_key_op(k, KMS_P11_DECRYPT, &raw, ct, ct_len, out, &out_len, &init_rv);
        if (rc == KMS_OK && out_len > k_len)
            rc = KMS_E_INTERNAL;
        if (rc == KMS_OK) {
            /* The raw result as the full k-byte block (a token may drop leading zeros). */
            memset(em, 0, k_len - out_len);
            memcpy(em + k_len - out_len, out, out_len);
            rc = alg == KMS_PK_RSAES_PKCS1_V1_5
                     ? kms_p11_unpad_pkcs1(em, k_len, pt)
                     : kms_p11_unpad_oaep(alg == KMS_PK_RSAES_OAEP_SHA_256, em, k_len, pt);
        }
        OPENSSL_cleanse(em, sizeof(em));
    }
    OPENSSL_cleanse(out, sizeof(out));
    if (rc == KMS_E_UNSUPPORTED_ALGORITHM) {
        kms_log_error("pkcs11: the token '%s' can do neither %s nor CKM_RSA_X_509",
                      k->pk_p11->p_label, what);
        rc = KMS_E_INTERNAL;
    }
    return rc;
}

/* The token's HMAC mechanism for alg and the capability that says it has it. */
static bool kms_p11_hmac_mech(enum kms_mac_alg alg, CK_MECHANISM_TYPE *mech, unsigned *cap)
{
    switch (alg) {
    case KMS_MAC_HMAC_SHA_224:
        *mech = CKM_SHA224_HMAC;
        *cap = KMS_P11_CAP_HMAC_SHA224;
        return true;
    case KMS_MAC_HMAC_SHA_256:
        *mech = CKM_SHA256_HMAC;
        *cap = KMS_P11_CAP_HMAC_SHA256;
        return true;
    case KMS_MAC_HMAC_SHA_384:
        *mech = CKM_SHA384_HMAC;
        *cap = KMS_P11_CAP_HMAC_SHA384;
        return true;
    case KMS_MAC_HMAC_SHA_512:
        *mech = CKM_SHA512_HMAC;
        *cap = KMS_P11_CAP_HMAC_SHA512;
        return true;
    default:
        return false; /* HMAC_SM3: no standard PKCS#11 mechanism (and no SM4 keys here) */
    }
}

/*
 * The MAC key is derived in the token: C_DeriveKey(CKM_AES_ECB_ENCRYPT_DATA) of the version's
 * AES key over SHA-512("kms-mac-v1" ‖ Algorithm) gives a 64-byte session generic secret (long
 * enough for every HMAC's minimum key size), which only signs and is destroyed at once.
 */
static kms_err kms_p11_mac(struct kms_ks_key *key, enum kms_mac_alg alg, const uint8_t *msg,
                           size_t len, uint8_t out[KMS_MAC_MAX_LEN], size_t *out_len)
{
    struct kms_p11_key *k = (struct kms_p11_key *)key;
    uint8_t data[KMS_MAC_DERIVATION_LEN];
    CK_MECHANISM_TYPE mech;
    unsigned cap;
    size_t n = KMS_MAC_MAX_LEN;
    CK_RV refused = CKR_OK;
    kms_err rc;

    if (k->pk_spec != KMS_SPEC_AES_256 && k->pk_spec != KMS_SPEC_AES_128)
        return KMS_E_UNSUPPORTED_KEY_SPEC;
    if (!kms_p11_hmac_mech(alg, &mech, &cap) ||
        !kms_p11_has(k->pk_p11, cap | KMS_P11_CAP_AES_DERIVE) || atomic_load(&k->pk_no_mac))
        return KMS_E_UNSUPPORTED_PROTECTION;
    rc = kms_mac_derivation_data(alg, data);
    if (rc == KMS_OK)
        rc = kms_p11_gone(k, kms_p11_derived_hmac(k->pk_p11, &k->pk_handle, data, sizeof(data),
                                                  mech, msg, len, out, &n, &refused));
    if (rc == KMS_E_UNSUPPORTED_ALGORITHM) {
        /* Most likely a key object made before kmsd derived MAC keys (CKA_DERIVE false). */
        kms_log_warn("pkcs11: the token '%s' refused to derive or use a %s key of version %s "
                     "(%s): no such MACs with that version",
                     k->pk_p11->p_label, kms_mac_alg_name(alg), k->pk_version,
                     kms_p11_rv_name(refused));
        if (refused == CKR_KEY_FUNCTION_NOT_PERMITTED)
            atomic_store(&k->pk_no_mac, true); /* said once per loaded version */
        rc = KMS_E_UNSUPPORTED_PROTECTION;
    }
    if (rc == KMS_OK && n != kms_mac_len(alg))
        rc = KMS_E_INTERNAL;
    if (rc == KMS_OK)
        *out_len = n;
    return rc;
}

static kms_err kms_p11_random(struct kms_keystore *ks, uint8_t *out, size_t len)
{
    struct kms_p11 *p = ks->ks_impl;
    struct kms_p11_session *s = NULL;
    kms_err rc = kms_p11_session_get(p, &s);
    CK_RV rv;

    if (rc != KMS_OK)
        return rc;
    rv = p->p_fn->C_GenerateRandom(s->s_handle, out, len);
    if (rv != CKR_OK)
        rc = kms_p11_fail(p, s, rv, "C_GenerateRandom");
    kms_p11_session_put(p, s);
    return rc;
}

static void kms_p11_ks_close(struct kms_keystore *ks)
{
    if (ks == NULL)
        return;
    kms_p11_close(ks->ks_impl);
    free(ks);
}

static const struct kms_keystore_ops kms_pkcs11_ops = {
    .ks_name = "pkcs11",
    .ks_create = kms_p11_create,
    .ks_import = kms_p11_import,
    .ks_load = kms_p11_load,
    .ks_release = kms_p11_release,
    .ks_destroy = kms_p11_destroy,
    .ks_seal = kms_p11_seal,
    .ks_open = kms_p11_open_blob,
    .ks_sign = kms_p11_sign,
    .ks_decrypt = kms_p11_decrypt,
    .ks_mac = kms_p11_mac,
    .ks_random = kms_p11_random,
    .ks_close = kms_p11_ks_close,
    .ks_supports = kms_p11_supports,
};

kms_err kms_pkcs11_keystore_open(const struct kms_config *cfg, struct kms_keystore **out)
{
    struct kms_keystore *ks = calloc(1, sizeof(*ks));
    struct kms_p11 *p = NULL;
    kms_err rc;

    if (ks == NULL)
        return KMS_E_INTERNAL;
    rc = kms_p11_open(cfg, &p);
    if (rc != KMS_OK) {
        free(ks);
        return rc;
    }
    ks->ks_ops = &kms_pkcs11_ops;
    ks->ks_level = KMS_PROTECTION_HSM;
    ks->ks_impl = p;
    *out = ks;
    return KMS_OK;
}
