/*
 * p11_op.c - one single-part operation with a key object (sign, encrypt, decrypt), AES-GCM
 * in the blob format of software keys (ciphertext and a separate 16-byte tag), and HMAC under a
 * key derived in the token from an AES key object (MACs, kms_p11_derived_hmac).
 *
 * An operation takes a pooled session, resolves the object's cached handle, and runs
 * C_xInit + C_x. A stale handle (the token renumbered its objects) is looked up again and the
 * operation retried once. Errors are sorted for the caller: refused mechanism parameters (so
 * the driver can fall back to padding in kmsd), refused data (a ciphertext that does not
 * verify: 400, not logged), the token being away (503), anything else (500, logged).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kms/log.h"
#include "p11.h"

static CK_RV kms_p11_init_op(struct kms_p11 *p, CK_SESSION_HANDLE h, enum kms_p11_op op,
                             CK_MECHANISM *m, CK_OBJECT_HANDLE obj)
{
    switch (op) {
    case KMS_P11_SIGN:
        return p->p_fn->C_SignInit(h, m, obj);
    case KMS_P11_ENCRYPT:
        return p->p_fn->C_EncryptInit(h, m, obj);
    case KMS_P11_DECRYPT:
        return p->p_fn->C_DecryptInit(h, m, obj);
    }
    return CKR_FUNCTION_FAILED;
}

static CK_RV kms_p11_run_op(struct kms_p11 *p, CK_SESSION_HANDLE h, enum kms_p11_op op,
                            const uint8_t *in, size_t in_len, uint8_t *out, CK_ULONG *out_len)
{
    switch (op) {
    case KMS_P11_SIGN:
        return p->p_fn->C_Sign(h, (CK_BYTE_PTR)in, in_len, out, out_len);
    case KMS_P11_ENCRYPT:
        return p->p_fn->C_Encrypt(h, (CK_BYTE_PTR)in, in_len, out, out_len);
    case KMS_P11_DECRYPT:
        return p->p_fn->C_Decrypt(h, (CK_BYTE_PTR)in, in_len, out, out_len);
    }
    return CKR_FUNCTION_FAILED;
}

static const char *const kms_p11_op_init_name[] = {"C_SignInit", "C_EncryptInit", "C_DecryptInit"};
static const char *const kms_p11_op_name[] = {"C_Sign", "C_Encrypt", "C_Decrypt"};

/* The token's answers that mean "not these parameters", as opposed to a broken token. */
static bool kms_p11_rv_refused(CK_RV rv)
{
    return rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID ||
           rv == CKR_ARGUMENTS_BAD || rv == CKR_FUNCTION_NOT_SUPPORTED;
}

/* The answers of C_Decrypt / C_Sign that are about the data a client sent. */
static bool kms_p11_rv_bad_data(enum kms_p11_op op, CK_RV rv)
{
    switch (rv) {
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
    case CKR_DATA_INVALID:
    case CKR_DATA_LEN_RANGE:
        return op != KMS_P11_ENCRYPT;
    /* Some tokens (SoftHSM2 among them) answer a GCM tag or OAEP check failure this way. */
    case CKR_GENERAL_ERROR:
    case CKR_FUNCTION_FAILED:
        return op == KMS_P11_DECRYPT;
    default:
        return false;
    }
}

kms_err kms_p11_obj_op(struct kms_p11 *p, struct kms_p11_handle *h, enum kms_p11_op op,
                       CK_MECHANISM *m, const uint8_t *in, size_t in_len, uint8_t *out,
                       size_t *out_len, CK_RV *init_rv)
{
    kms_err rc = KMS_E_INTERNAL;

    *init_rv = CKR_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct kms_p11_session *s = NULL;
        CK_OBJECT_HANDLE obj;
        CK_ULONG n = *out_len;
        CK_RV rv;

        rc = kms_p11_session_get(p, &s);
        if (rc != KMS_OK)
            return rc;
        rc = kms_p11_handle_get(p, s, h, &obj);
        if (rc != KMS_OK) {
            kms_p11_session_put(p, s);
            return rc;
        }
        rv = kms_p11_init_op(p, s->s_handle, op, m, obj);
        if (rv == CKR_OK) {
            rv = kms_p11_run_op(p, s->s_handle, op, in, in_len, out, &n);
            if (rv == CKR_OK) {
                *out_len = n;
                rc = KMS_OK;
            } else if (kms_p11_rv_bad_data(op, rv)) {
                rc = KMS_E_INVALID_PARAMETER;
            } else if (rv == CKR_BUFFER_TOO_SMALL) {
                /* The operation stays active after this answer: end it on a fresh session. */
                s->s_lost = true;
                rc = kms_p11_fail(p, s, rv, kms_p11_op_name[op]);
            } else {
                rc = kms_p11_fail(p, s, rv, kms_p11_op_name[op]);
            }
        } else if (kms_p11_rv_stale_handle(rv) && attempt == 0) {
            kms_p11_handle_forget(h);
            kms_p11_session_put(p, s);
            continue;
        } else if (kms_p11_rv_refused(rv)) {
            *init_rv = rv;
            rc = KMS_E_UNSUPPORTED_ALGORITHM;
        } else {
            rc = kms_p11_fail(p, s, rv, kms_p11_op_init_name[op]);
        }
        kms_p11_session_put(p, s);
        return rc;
    }
    return rc;
}

kms_err kms_p11_gcm(struct kms_p11 *p, struct kms_p11_handle *h, bool encrypt,
                    const uint8_t iv[KMS_AEAD_IV_LEN], const void *aad, size_t aad_len,
                    const uint8_t *in, size_t len, const uint8_t *tag_in, uint8_t *out,
                    uint8_t *tag_out)
{
    CK_GCM_PARAMS gp;
    CK_MECHANISM m = {CKM_AES_GCM, &gp, sizeof(gp)};
    size_t buf_len = len + KMS_AEAD_TAG_LEN, n = buf_len;
    uint8_t *in_buf = NULL, *out_buf = malloc(buf_len);
    CK_RV init_rv;
    kms_err rc = KMS_E_INTERNAL;

    memset(&gp, 0, sizeof(gp));
    gp.pIv = (CK_BYTE_PTR)iv;
    gp.ulIvLen = KMS_AEAD_IV_LEN;
    gp.ulIvBits = KMS_AEAD_IV_LEN * 8;
    gp.pAAD = (CK_BYTE_PTR)aad;
    gp.ulAADLen = aad_len;
    gp.ulTagBits = KMS_AEAD_TAG_LEN * 8;
    if (out_buf == NULL)
        return KMS_E_INTERNAL;
    if (encrypt) {
        rc = kms_p11_obj_op(p, h, KMS_P11_ENCRYPT, &m, in, len, out_buf, &n, &init_rv);
        /* PKCS#11's GCM output is the ciphertext followed by the tag. */
        if (rc == KMS_OK && n != buf_len)
            rc = KMS_E_INTERNAL;
        if (rc == KMS_OK) {
            memcpy(out, out_buf, len);
            memcpy(tag_out, out_buf + len, KMS_AEAD_TAG_LEN);
        }
    } else {
        in_buf = malloc(buf_len);
        if (in_buf != NULL) {
            memcpy(in_buf, in, len);
            memcpy(in_buf + len, tag_in, KMS_AEAD_TAG_LEN);
            rc = kms_p11_obj_op(p, h, KMS_P11_DECRYPT, &m, in_buf, buf_len, out_buf, &n, &init_rv);
        }
        if (rc == KMS_OK && n != len)
            rc = KMS_E_INTERNAL;
        if (rc == KMS_OK)
            memcpy(out, out_buf, len);
        free(in_buf);
    }
    if (rc == KMS_E_UNSUPPORTED_ALGORITHM) {
        kms_log_error("pkcs11: the token '%s' refused CKM_AES_GCM with a 96-bit IV and a "
                      "128-bit tag: %s",
                      p->p_label, kms_p11_rv_name(init_rv));
        rc = KMS_E_INTERNAL;
    }
    if (rc != KMS_OK && !encrypt && len > 0)
        OPENSSL_cleanse(out, len);
    OPENSSL_cleanse(out_buf, buf_len);
    free(out_buf);
    return rc;
}

/* The answers of C_DeriveKey / C_SignInit that mean "not with this key or mechanism". */
static bool kms_p11_rv_refused_key(CK_RV rv)
{
    return kms_p11_rv_refused(rv) || rv == CKR_KEY_FUNCTION_NOT_PERMITTED ||
           rv == CKR_KEY_TYPE_INCONSISTENT || rv == CKR_TEMPLATE_INCONSISTENT ||
           rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_KEY_SIZE_RANGE;
}

/* Derive, sign, destroy on session s; *stale when the base key's handle was stale. */
static kms_err kms_p11_derived_hmac_once(struct kms_p11 *p, struct kms_p11_session *s,
                                         CK_OBJECT_HANDLE base, const uint8_t *data,
                                         size_t data_len, CK_MECHANISM_TYPE hmac,
                                         const uint8_t *msg, size_t len, uint8_t *out,
                                         size_t *out_len, CK_RV *refused_rv, bool *stale)
{
    CK_KEY_DERIVATION_STRING_DATA kd = {(CK_BYTE_PTR)data, data_len};
    CK_MECHANISM derive = {CKM_AES_ECB_ENCRYPT_DATA, &kd, sizeof(kd)};
    CK_MECHANISM sign = {hmac, NULL, 0};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    CK_ULONG value_len = data_len;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_VALUE_LEN, &value_len, sizeof(value_len)},
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_VERIFY, &no, sizeof(no)},
        {CKA_ENCRYPT, &no, sizeof(no)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_WRAP, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
    };
    CK_OBJECT_HANDLE mac_key = CK_INVALID_HANDLE;
    CK_ULONG n = *out_len;
    kms_err rc;
    CK_RV rv;

    *stale = false;
    rv = p->p_fn->C_DeriveKey(s->s_handle, &derive, base, tmpl, KMS_ARRAY_LEN(tmpl), &mac_key);
    if (rv != CKR_OK) {
        if (kms_p11_rv_stale_handle(rv)) {
            *stale = true;
            return KMS_E_INTERNAL;
        }
        if (kms_p11_rv_refused_key(rv)) {
            *refused_rv = rv;
            return KMS_E_UNSUPPORTED_ALGORITHM;
        }
        return kms_p11_fail(p, s, rv, "C_DeriveKey (CKM_AES_ECB_ENCRYPT_DATA)");
    }
    rv = p->p_fn->C_SignInit(s->s_handle, &sign, mac_key);
    if (rv == CKR_OK)
        rv = p->p_fn->C_Sign(s->s_handle, (CK_BYTE_PTR)msg, len, out, &n);
    if (rv == CKR_OK) {
        *out_len = n;
        rc = KMS_OK;
    } else if (kms_p11_rv_refused_key(rv)) {
        *refused_rv = rv;
        rc = KMS_E_UNSUPPORTED_ALGORITHM;
    } else {
        if (rv == CKR_BUFFER_TOO_SMALL)
            s->s_lost = true; /* the operation stays active: end it with the session */
        rc = kms_p11_fail(p, s, rv, "C_Sign (HMAC)");
    }
    /* A session object: it would go with the session anyway, but not wait for that. */
    if (!s->s_lost)
        p->p_fn->C_DestroyObject(s->s_handle, mac_key);
    return rc;
}

kms_err kms_p11_derived_hmac(struct kms_p11 *p, struct kms_p11_handle *h, const uint8_t *data,
                             size_t data_len, CK_MECHANISM_TYPE hmac, const uint8_t *msg,
                             size_t len, uint8_t *out, size_t *out_len, CK_RV *refused_rv)
{
    kms_err rc = KMS_E_INTERNAL;

    *refused_rv = CKR_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct kms_p11_session *s = NULL;
        CK_OBJECT_HANDLE base;
        bool stale = false;

        rc = kms_p11_session_get(p, &s);
        if (rc != KMS_OK)
            return rc;
        rc = kms_p11_handle_get(p, s, h, &base);
        if (rc == KMS_OK)
            rc = kms_p11_derived_hmac_once(p, s, base, data, data_len, hmac, msg, len, out, out_len,
                                           refused_rv, &stale);
        kms_p11_session_put(p, s);
        if (!stale)
            return rc;
        if (attempt == 0)
            kms_p11_handle_forget(h);
    }
    return rc;
}
