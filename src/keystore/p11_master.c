/*
 * p11_master.c - sealing mode: the software keystore's master key is a non-extractable AES-256
 * key inside the PKCS#11 token, found by its label (created on first start), so no master.key
 * exists on disk and every wrap and unwrap of software key material and server secrets is a
 * CKM_AES_GCM operation in the token. Keyed fingerprints (BYOK re-import checks) are
 * CKM_SHA256_HMAC under a second token key, labelled "<label>-fingerprint".
 *
 * The wrapped format is that of the file master (master.h), with another key: a data directory
 * made in one mode cannot be opened in the other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/log.h"
#include "master.h"
#include "p11.h"

#define KMS_P11_MASTER_LABEL_MAX 100

struct kms_master_token {
    struct kms_master mt_base;
    struct kms_p11 *mt_p11;
    struct kms_p11_handle mt_key; /* CKK_AES, CKA_ENCRYPT/CKA_DECRYPT */
    struct kms_p11_handle mt_mac; /* CKK_GENERIC_SECRET, CKA_SIGN */
};

/* The master key vanished from the token after start: the operator's problem (500, logged). */
static kms_err kms_master_token_gone(struct kms_master_token *mt, kms_err rc)
{
    if (rc != KMS_E_KEY_NOT_FOUND)
        return rc;
    kms_log_error("pkcs11: the master key is gone from the token '%s'", mt->mt_p11->p_label);
    return KMS_E_INTERNAL;
}

static kms_err kms_master_token_seal(struct kms_master *m, const uint8_t iv[KMS_AEAD_IV_LEN],
                                     const void *aad, size_t aad_len, const uint8_t *pt, size_t len,
                                     uint8_t *ct, uint8_t tag[KMS_AEAD_TAG_LEN])
{
    struct kms_master_token *mt = (struct kms_master_token *)m;
    kms_err rc =
        kms_p11_gcm(mt->mt_p11, &mt->mt_key, true, iv, aad, aad_len, pt, len, NULL, ct, tag);

    return kms_master_token_gone(mt, rc);
}

static kms_err kms_master_token_open_blob(struct kms_master *m, const uint8_t iv[KMS_AEAD_IV_LEN],
                                          const void *aad, size_t aad_len, const uint8_t *ct,
                                          size_t len, const uint8_t tag[KMS_AEAD_TAG_LEN],
                                          uint8_t *pt)
{
    struct kms_master_token *mt = (struct kms_master_token *)m;
    kms_err rc =
        kms_p11_gcm(mt->mt_p11, &mt->mt_key, false, iv, aad, aad_len, ct, len, tag, pt, NULL);

    return kms_master_token_gone(mt, rc);
}

static kms_err kms_master_token_fingerprint(struct kms_master *m, const uint8_t *data, size_t len,
                                            uint8_t out[32])
{
    struct kms_master_token *mt = (struct kms_master_token *)m;
    CK_MECHANISM mech = {CKM_SHA256_HMAC, NULL, 0};
    size_t n = 32;
    CK_RV init_rv;
    kms_err rc =
        kms_p11_obj_op(mt->mt_p11, &mt->mt_mac, KMS_P11_SIGN, &mech, data, len, out, &n, &init_rv);

    if (rc == KMS_OK && n != 32)
        rc = KMS_E_INTERNAL;
    rc = kms_master_token_gone(mt, rc);
    return rc == KMS_E_UNAVAILABLE || rc == KMS_OK ? rc : KMS_E_INTERNAL;
}

static void kms_master_token_close(struct kms_master *m)
{
    free(m);
}

static const struct kms_master_ops kms_master_token_ops = {
    .mo_name = "pkcs11",
    .mo_seal = kms_master_token_seal,
    .mo_open = kms_master_token_open_blob,
    .mo_fingerprint = kms_master_token_fingerprint,
    .mo_close = kms_master_token_close,
};

/* Finds the key h describes, or generates it (sensitive, non-extractable) when absent. */
static kms_err kms_master_token_ensure(struct kms_p11 *p, struct kms_p11_handle *h,
                                       const char *label, bool aes)
{
    CK_MECHANISM m = {aes ? CKM_AES_KEY_GEN : CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = aes ? CKK_AES : CKK_GENERIC_SECRET;
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_VALUE_LEN, &len, sizeof(len)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_ENCRYPT, aes ? &yes : &no, sizeof(yes)},
        {CKA_DECRYPT, aes ? &yes : &no, sizeof(yes)},
        {CKA_SIGN, aes ? &no : &yes, sizeof(yes)},
        {CKA_VERIFY, aes ? &no : &yes, sizeof(yes)},
        {CKA_WRAP, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
        {CKA_ID, (void *)label, strlen(label)},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    struct kms_p11_session *s = NULL;
    CK_OBJECT_HANDLE obj;
    kms_err rc = kms_p11_session_get(p, &s);
    CK_RV rv;

    if (rc != KMS_OK)
        return rc;
    rc = kms_p11_handle_get(p, s, h, &obj);
    if (rc == KMS_E_KEY_NOT_FOUND) {
        rv = p->p_fn->C_GenerateKey(s->s_handle, &m, tmpl, KMS_ARRAY_LEN(tmpl), &obj);
        if (rv == CKR_OK) {
            kms_log_info("pkcs11: created the %s '%s' in the token '%s' (non-extractable: back "
                         "up the token, the key cannot be recovered otherwise)",
                         aes ? "master key" : "fingerprint key", label, p->p_label);
            rc = kms_p11_handle_get(p, s, h, &obj);
        } else {
            rc = kms_p11_fail(p, s, rv, "C_GenerateKey (master key)");
        }
    }
    kms_p11_session_put(p, s);
    return rc;
}

kms_err kms_master_token_open(struct kms_keystore *ks, const char *label, struct kms_master **out)
{
    struct kms_p11 *p = kms_pkcs11_of(ks);
    struct kms_master_token *mt;
    char mac_label[KMS_P11_MASTER_LABEL_MAX + 16];
    kms_err rc;

    if (p == NULL)
        return KMS_E_INTERNAL;
    if (label[0] == '\0' || strlen(label) > KMS_P11_MASTER_LABEL_MAX) {
        kms_log_error("pkcs11: master_key_label must be 1-%d bytes", KMS_P11_MASTER_LABEL_MAX);
        return KMS_E_INTERNAL;
    }
    if (!kms_p11_has(p, KMS_P11_CAP_AES_256 | KMS_P11_CAP_AES_GCM | KMS_P11_CAP_SECRET_GEN |
                            KMS_P11_CAP_HMAC_SHA256)) {
        kms_log_error("pkcs11: seal_master_key needs CKM_AES_KEY_GEN (32 bytes), CKM_AES_GCM, "
                      "CKM_GENERIC_SECRET_KEY_GEN and CKM_SHA256_HMAC, which the token '%s' "
                      "does not all offer",
                      p->p_label);
        return KMS_E_INTERNAL;
    }
    mt = calloc(1, sizeof(*mt));
    if (mt == NULL)
        return KMS_E_INTERNAL;
    mt->mt_base.m_ops = &kms_master_token_ops;
    mt->mt_p11 = p;
    snprintf(mac_label, sizeof(mac_label), "%s-fingerprint", label);
    kms_p11_handle_init(&mt->mt_key, CKO_SECRET_KEY, (long)CKK_AES, CKA_LABEL, label,
                        strlen(label));
    kms_p11_handle_init(&mt->mt_mac, CKO_SECRET_KEY, (long)CKK_GENERIC_SECRET, CKA_LABEL, mac_label,
                        strlen(mac_label));
    rc = kms_master_token_ensure(p, &mt->mt_key, label, true);
    if (rc == KMS_OK)
        rc = kms_master_token_ensure(p, &mt->mt_mac, mac_label, false);
    if (rc != KMS_OK) {
        kms_log_error("pkcs11: cannot find or create the master key '%s' in the token '%s'", label,
                      p->p_label);
        free(mt);
        return rc;
    }
    *out = &mt->mt_base;
    return KMS_OK;
}
