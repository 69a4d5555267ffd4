/*
 * cert_crypto.c - cryptography with a certificate's key pair (spec/actions.md H10-H13):
 * CertificatePrivateKeySign, CertificatePublicKeyVerify, CertificatePublicKeyEncrypt,
 * CertificatePrivateKeyDecrypt.
 *
 * The same code paths as the asymmetric key actions: the private half runs in the keystore
 * (ks_sign, ks_decrypt), the public half with src/crypto/pkey.c on the certificate's public key.
 * MessageType=RAW messages are hashed here (SHA-256, or SM3(Z_A ‖ M) for SM2DSA) so that a
 * signature verifies with the certificate in any X.509 tool; DIGEST takes that hash from the
 * caller.
 *
 * Checks run in the order of the other key actions: parameters, the certificate
 * (Certificate.NotFound), the algorithm for its key spec (Unsupported.Algorithm), its status.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "keystore/keystore.h"

#define KMS_CERT_RAW_MESSAGE_MAX 4096

/* A certificate resolved for one operation, with its public key (from cert_keys.c's cache). */
struct kms_cert_target {
    struct kms_cert_record ct_rec;
    struct kms_cert_key *ct_public_ref;
    const struct evp_pkey_st *ct_public; /* ct_public_ref's */
    enum kms_sign_alg ct_sign_alg;
    enum kms_pk_alg ct_pk_alg;
};

static void kms_cert_target_free(struct kms_cert_target *t)
{
    kms_cert_key_put(t->ct_public_ref);
    kms_cert_record_free(&t->ct_rec);
    memset(t, 0, sizeof(*t));
}

/* Which algorithm family an operation takes. */
enum kms_cert_op {
    KMS_CERT_OP_SIGN,
    KMS_CERT_OP_VERIFY,
    KMS_CERT_OP_ENCRYPT,
    KMS_CERT_OP_DECRYPT,
};

/* The encryption algorithms of certificates (spec/algorithms.md §9): no PKCS#1 v1.5. */
static bool kms_cert_pk_alg_fits(enum kms_key_spec spec, enum kms_pk_alg alg)
{
    return alg != KMS_PK_RSAES_PKCS1_V1_5 && kms_pk_alg_fits(spec, alg);
}

/* Algorithm (parsed before anything else), certificate, algorithm fit, status. */
static kms_err kms_cert_target_resolve(struct kms_call *call, enum kms_cert_op op,
                                       struct kms_cert_target *t)
{
    bool sign = op == KMS_CERT_OP_SIGN || op == KMS_CERT_OP_VERIFY;
    const char *name;
    bool fits;
    kms_err rc;

    memset(t, 0, sizeof(*t));
    rc = kms_arg_required(call, "Algorithm", &name);
    if (rc != KMS_OK)
        return rc;
    if (sign ? !kms_sign_alg_parse(name, &t->ct_sign_alg) : !kms_pk_alg_parse(name, &t->ct_pk_alg))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "Algorithm");
    rc = kms_cert_resolve(call, "CertificateId", &t->ct_rec);
    if (rc != KMS_OK)
        return rc;
    fits = sign ? kms_sign_alg_fits(t->ct_rec.spec, t->ct_sign_alg)
                : kms_cert_pk_alg_fits(t->ct_rec.spec, t->ct_pk_alg);
    if (!fits)
        rc = kms_fail(call, KMS_E_UNSUPPORTED_ALGORITHM, "Algorithm");
    if (rc == KMS_OK)
        rc = kms_cert_check_status(&t->ct_rec, op == KMS_CERT_OP_VERIFY ? KMS_CERT_USE_VERIFY
                                                                        : KMS_CERT_USE_PRIVATE);
    if (rc == KMS_OK)
        rc = kms_cert_key_get(&t->ct_rec, KMS_CERT_PUBLIC, &t->ct_public_ref);
    if (rc == KMS_OK)
        t->ct_public = t->ct_public_ref->ck_public;
    if (rc != KMS_OK)
        kms_cert_target_free(t);
    return rc;
}

/*
 * MessageType (RAW, the default when empty, or DIGEST) and Message: the 32-byte input of the
 * signature operation, computed from the message for RAW.
 */
static kms_err kms_cert_message_arg(struct kms_call *call, bool *raw, struct kms_buf *msg)
{
    const char *type = kms_arg(call, "MessageType");
    kms_err rc;

    *raw = type == NULL || strcmp(type, "RAW") == 0;
    if (!*raw && strcmp(type, "DIGEST") != 0)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "MessageType");
    rc = kms_arg_base64(call, "Message", true, msg, NULL);
    if (rc != KMS_OK)
        return rc;
    if (*raw ? msg->len > KMS_CERT_RAW_MESSAGE_MAX : msg->len != KMS_PKEY_DIGEST_LEN)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "Message");
    return KMS_OK;
}

static kms_err kms_cert_digest(const struct kms_cert_target *t, bool raw, const struct kms_buf *msg,
                               uint8_t digest[KMS_PKEY_DIGEST_LEN])
{
    if (!raw) {
        memcpy(digest, msg->data, KMS_PKEY_DIGEST_LEN);
        return KMS_OK;
    }
    return kms_pkey_message_digest(t->ct_public, t->ct_sign_alg, (const uint8_t *)msg->data,
                                   msg->len, digest);
}

kms_err kms_api_certificate_private_key_sign(struct kms_call *call)
{
    struct kms_cert_target t;
    struct kms_buf msg = {0}, sig = {0};
    struct kms_cert_key *key = NULL;
    uint8_t digest[KMS_PKEY_DIGEST_LEN];
    bool raw = true;
    kms_err rc;

    rc = kms_cert_message_arg(call, &raw, &msg);
    if (rc == KMS_OK)
        rc = kms_cert_target_resolve(call, KMS_CERT_OP_SIGN, &t);
    if (rc != KMS_OK) {
        kms_buf_free(&msg);
        return rc;
    }
    rc = kms_cert_digest(&t, raw, &msg, digest);
    if (rc == KMS_OK)
        rc = kms_cert_key_get(&t.ct_rec, KMS_CERT_PRIVATE, &key);
    if (rc == KMS_OK)
        rc = key->ck_private->kk_ops->ks_sign(key->ck_private, t.ct_sign_alg, digest,
                                              sizeof(digest), &sig);
    if (rc == KMS_OK)
        rc = kms_out_str(call->out, "CertificateId", t.ct_rec.certificate_id);
    if (rc == KMS_OK)
        rc = kms_out_b64(call->out, "SignatureValue", (uint8_t *)sig.data, sig.len);
    kms_cert_key_put(key);
    kms_buf_free(&msg);
    kms_buf_free(&sig);
    kms_cert_target_free(&t);
    return rc;
}

kms_err kms_api_certificate_public_key_verify(struct kms_call *call)
{
    struct kms_cert_target t;
    struct kms_buf msg = {0}, sig = {0};
    uint8_t digest[KMS_PKEY_DIGEST_LEN];
    bool raw = true, valid = false;
    kms_err rc;

    rc = kms_cert_message_arg(call, &raw, &msg);
    if (rc == KMS_OK)
        rc = kms_arg_base64(call, "SignatureValue", true, &sig, NULL);
    if (rc == KMS_OK)
        rc = kms_cert_target_resolve(call, KMS_CERT_OP_VERIFY, &t);
    if (rc != KMS_OK) {
        kms_buf_free(&msg);
        kms_buf_free(&sig);
        return rc;
    }
    rc = kms_cert_digest(&t, raw, &msg, digest);
    /* A signature that does not verify is an answer (false), not an error. */
    if (rc == KMS_OK)
        rc = kms_pkey_verify(t.ct_public, t.ct_sign_alg, digest, sizeof(digest),
                             (uint8_t *)sig.data, sig.len, &valid);
    if (rc == KMS_OK)
        rc = kms_out_str(call->out, "CertificateId", t.ct_rec.certificate_id);
    if (rc == KMS_OK && cJSON_AddBoolToObject(call->out, "SignatureValid", valid) == NULL)
        rc = KMS_E_INTERNAL;
    kms_buf_free(&msg);
    kms_buf_free(&sig);
    kms_cert_target_free(&t);
    return rc;
}

kms_err kms_api_certificate_public_key_encrypt(struct kms_call *call)
{
    struct kms_cert_target t;
    struct kms_buf pt = {0}, ct = {0};
    kms_err rc;

    rc = kms_arg_base64(call, "Plaintext", true, &pt, NULL);
    if (rc == KMS_OK)
        rc = kms_cert_target_resolve(call, KMS_CERT_OP_ENCRYPT, &t);
    if (rc != KMS_OK) {
        kms_buf_free_secret(&pt);
        return rc;
    }
    /* The limit depends on the key and algorithm (spec/actions.md H12). */
    if (pt.len == 0 || pt.len > kms_pk_max_plaintext(t.ct_rec.spec, t.ct_pk_alg))
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Plaintext");
    if (rc == KMS_OK) {
        rc = kms_pkey_encrypt(t.ct_public, t.ct_pk_alg, (uint8_t *)pt.data, pt.len, &ct);
        if (rc == KMS_E_INVALID_PARAMETER)
            rc = kms_fail(call, rc, "Plaintext");
    }
    if (rc == KMS_OK)
        rc = kms_out_str(call->out, "CertificateId", t.ct_rec.certificate_id);
    if (rc == KMS_OK)
        rc = kms_out_b64(call->out, "CiphertextBlob", (uint8_t *)ct.data, ct.len);
    kms_buf_free_secret(&pt);
    kms_buf_free(&ct);
    kms_cert_target_free(&t);
    return rc;
}

kms_err kms_api_certificate_private_key_decrypt(struct kms_call *call)
{
    struct kms_cert_target t;
    struct kms_buf ct = {0}, pt = {0};
    struct kms_cert_key *key = NULL;
    kms_err rc;

    rc = kms_arg_base64(call, "CiphertextBlob", true, &ct, NULL);
    if (rc == KMS_OK)
        rc = kms_cert_target_resolve(call, KMS_CERT_OP_DECRYPT, &t);
    if (rc != KMS_OK) {
        kms_buf_free(&ct);
        return rc;
    }
    rc = kms_cert_key_get(&t.ct_rec, KMS_CERT_PRIVATE, &key);
    if (rc == KMS_OK) {
        rc = key->ck_private->kk_ops->ks_decrypt(key->ck_private, t.ct_pk_alg, (uint8_t *)ct.data,
                                                 ct.len, &pt);
        /* One answer for every ciphertext that does not open. */
        if (rc == KMS_E_INVALID_PARAMETER)
            rc = kms_fail(call, rc, "CiphertextBlob");
    }
    if (rc == KMS_OK)
        rc = kms_out_str(call->out, "CertificateId", t.ct_rec.certificate_id);
    if (rc == KMS_OK)
        rc = kms_out_b64(call->out, "Plaintext", (uint8_t *)pt.data, pt.len);
    kms_cert_key_put(key);
    kms_buf_free(&ct);
    kms_buf_free_secret(&pt);
    kms_cert_target_free(&t);
    return rc;
}
