/*
 * p11.h - the PKCS#11 layer under the HSM keystore (pkcs11.c) and the token master
 * (p11_master.c): one loaded module and token, a pool of logged-in sessions that recovers when
 * the token goes away and comes back, and the helpers the driver is built from.
 *
 * The module is loaded with dlopen at run time (no link-time dependency on a vendor library);
 * the PKCS#11 types come from p11-kit's pkcs11.h (standard names, CRYPTOKI_COMPAT).
 *
 * Files: p11_module.c (load, token, login, mechanisms), p11_session.c (pool, recovery),
 * p11_rv.c (CKR names and classes), p11_object.c (finding objects, attributes), p11_op.c
 * (one operation with a key object, retried once on a stale handle), p11_asn1.c
 * (SubjectPublicKeyInfo from attributes, ECDSA r||s to DER), p11_rsapad.c (RSA padding in
 * kmsd over raw RSA in the token), p11_master.c (sealing mode), pkcs11.c (the driver).
 */
#ifndef KMS_KEYSTORE_P11_H
#define KMS_KEYSTORE_P11_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#include "keystore.h"

/* What the token can do, from C_GetMechanismList / C_GetMechanismInfo (and probes) at start. */
enum kms_p11_cap {
    KMS_P11_CAP_AES_256 = 1u << 0,      /* CKM_AES_KEY_GEN makes 32-byte keys */
    KMS_P11_CAP_AES_128 = 1u << 1,      /* CKM_AES_KEY_GEN makes 16-byte keys */
    KMS_P11_CAP_AES_GCM = 1u << 2,      /* CKM_AES_GCM encrypt and decrypt */
    KMS_P11_CAP_RSA_2048 = 1u << 3,     /* CKM_RSA_PKCS_KEY_PAIR_GEN makes 2048-bit pairs */
    KMS_P11_CAP_RSA_3072 = 1u << 4,     /* ... and 3072-bit pairs */
    KMS_P11_CAP_RSA_X509 = 1u << 5,     /* CKM_RSA_X_509 sign and decrypt: raw RSA */
    KMS_P11_CAP_RSA_PKCS = 1u << 6,     /* CKM_RSA_PKCS sign and decrypt */
    KMS_P11_CAP_RSA_PSS = 1u << 7,      /* CKM_RSA_PKCS_PSS sign (with SHA-256 parameters) */
    KMS_P11_CAP_OAEP_SHA256 = 1u << 8,  /* CKM_RSA_PKCS_OAEP decrypt with SHA-256 */
    KMS_P11_CAP_OAEP_SHA1 = 1u << 9,    /* CKM_RSA_PKCS_OAEP decrypt with SHA-1 */
    KMS_P11_CAP_ECDSA = 1u << 10,       /* CKM_ECDSA sign */
    KMS_P11_CAP_EC_P256 = 1u << 11,     /* CKM_EC_KEY_PAIR_GEN made a P-256 pair (probe) */
    KMS_P11_CAP_EC_P256K = 1u << 12,    /* ... and a secp256k1 pair */
    KMS_P11_CAP_SECRET_GEN = 1u << 13,  /* CKM_GENERIC_SECRET_KEY_GEN, 32 bytes */
    KMS_P11_CAP_HMAC_SHA256 = 1u << 14, /* CKM_SHA256_HMAC sign */
    KMS_P11_CAP_AES_DERIVE = 1u << 15,  /* CKM_AES_ECB_ENCRYPT_DATA derive (MAC keys) */
    KMS_P11_CAP_HMAC_SHA224 = 1u << 16, /* CKM_SHA224_HMAC sign */
    KMS_P11_CAP_HMAC_SHA384 = 1u << 17, /* CKM_SHA384_HMAC sign */
    KMS_P11_CAP_HMAC_SHA512 = 1u << 18, /* CKM_SHA512_HMAC sign */
};

/* A pooled session; s_lost when the token said it is gone (it is then not pooled again). */
struct kms_p11_session {
    CK_SESSION_HANDLE s_handle;
    uint64_t s_gen;
    bool s_lost;
    struct kms_p11_session *s_next;
};

struct kms_p11 {
    void *p_dl;
    CK_FUNCTION_LIST_PTR p_fn;
    bool p_finalize; /* our C_Initialize succeeded: C_Finalize at close */
    char p_module[PATH_MAX];
    char p_label[33]; /* the token's label, trimmed */
    bool p_by_label;  /* find the token by label (again after it comes back) */
    CK_SLOT_ID p_slot;
    char *p_pin; /* locked memory, wiped on close */
    size_t p_pin_len;
    atomic_uint p_caps; /* enum kms_p11_cap */
    /* The pool; p_lock guards everything below. */
    pthread_mutex_t p_lock;
    struct kms_p11_session *p_idle;
    size_t p_idle_count;
    size_t p_open_count;        /* sessions open now, pooled or in use */
    atomic_uint_fast64_t p_gen; /* bumps each time the sessions are reopened */
    bool p_broken;              /* the token went away: reopen before the next use */
    time_t p_last_attempt;      /* of a reopen, so a missing token is not hammered */
    CK_SESSION_HANDLE p_anchor; /* kept open so the login lasts */
    bool p_have_anchor;
};

/* ---- p11_module.c ---- */
/* Everything kms_pkcs11_keystore_open promises about errors (one clear line). */
kms_err kms_p11_open(const struct kms_config *cfg, struct kms_p11 **out);
void kms_p11_close(struct kms_p11 *p);
/* Finds the token's slot again (by label when so configured); false if it is not present. */
bool kms_p11_find_slot(struct kms_p11 *p, CK_SLOT_ID *slot, CK_RV *rv);
/* Logs in on session h; CKR_USER_ALREADY_LOGGED_IN counts as success. */
CK_RV kms_p11_login(struct kms_p11 *p, CK_SESSION_HANDLE h);
bool kms_p11_has(struct kms_p11 *p, unsigned caps);
/* Pretends the token lacks caps (tests use it to exercise kmsd's own RSA padding). */
void kms_p11_drop_caps(struct kms_p11 *p, unsigned caps);

/* ---- p11_session.c ---- */
/* A logged-in session for one operation; KMS_E_UNAVAILABLE while the token is away. */
kms_err kms_p11_session_get(struct kms_p11 *p, struct kms_p11_session **out);
/* Returns s to the pool (or closes it when lost or surplus). */
void kms_p11_session_put(struct kms_p11 *p, struct kms_p11_session *s);
/*
 * Turns a failed call's rv into a kms_err with one log line naming what and the CKR: a lost
 * session or token marks s lost and the token for reopening and gives KMS_E_UNAVAILABLE (503);
 * anything else gives KMS_E_INTERNAL.
 */
kms_err kms_p11_fail(struct kms_p11 *p, struct kms_p11_session *s, CK_RV rv, const char *what);
/* Closes every session (shutdown). */
void kms_p11_sessions_close(struct kms_p11 *p);

/* ---- p11_rv.c ---- */
const char *kms_p11_rv_name(CK_RV rv);
/* The session or the token is gone (handle invalid, closed, token removed, device error). */
bool kms_p11_rv_lost(CK_RV rv);

/* ---- p11_object.c ---- */
/*
 * A key object known by its CKA_ID (or CKA_LABEL) and class, with its handle cached: found
 * again after the token's sessions were reopened (handles may change when a token comes back)
 * or when the token says the handle is invalid. Safe to share between threads.
 */
struct kms_p11_handle {
    CK_OBJECT_CLASS h_class;
    long h_key_type;          /* CKA_KEY_TYPE, or -1 for any */
    CK_ATTRIBUTE_TYPE h_attr; /* CKA_ID or CKA_LABEL */
    uint8_t h_value[128];
    size_t h_value_len;
    _Atomic CK_OBJECT_HANDLE h_obj;
    atomic_uint_fast64_t h_gen; /* p_gen when h_obj was found; 0 = not yet */
};
void kms_p11_handle_init(struct kms_p11_handle *h, CK_OBJECT_CLASS cls, long key_type,
                         CK_ATTRIBUTE_TYPE attr, const void *value, size_t len);
/*
 * The object's handle for session s: KMS_E_KEY_NOT_FOUND (not logged: the caller says what is
 * missing) when the token has no such object, KMS_E_INTERNAL when it has several.
 */
kms_err kms_p11_handle_get(struct kms_p11 *p, struct kms_p11_session *s, struct kms_p11_handle *h,
                           CK_OBJECT_HANDLE *obj);
/* Forgets the cached handle after CKR_OBJECT_HANDLE_INVALID / CKR_KEY_HANDLE_INVALID. */
void kms_p11_handle_forget(struct kms_p11_handle *h);
bool kms_p11_rv_stale_handle(CK_RV rv);
/* Destroys every object with CKA_ID = id; *count gets how many. */
kms_err kms_p11_destroy_by_id(struct kms_p11 *p, struct kms_p11_session *s, const void *id,
                              size_t id_len, size_t *count);
/* Appends one variable-length attribute of obj to out. */
CK_RV kms_p11_get_attr(struct kms_p11 *p, struct kms_p11_session *s, CK_OBJECT_HANDLE obj,
                       CK_ATTRIBUTE_TYPE type, struct kms_buf *out);

/* ---- p11_asn1.c ---- */
/* Appends the SubjectPublicKeyInfo DER of an RSA key (big-endian modulus and exponent). */
kms_err kms_p11_rsa_spki(const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len,
                         struct kms_buf *out);
/*
 * Appends the SubjectPublicKeyInfo DER of an EC key on curve (an OpenSSL group name) from
 * CKA_EC_POINT (a DER OCTET STRING holding the point, or the bare point as some tokens give).
 */
kms_err kms_p11_ec_spki(const char *curve, const uint8_t *ec_point, size_t len,
                        struct kms_buf *out);
/* Appends the DER ECDSA-Sig-Value (r, s) of PKCS#11's r||s (len even). */
kms_err kms_p11_ecdsa_der(const uint8_t *rs, size_t len, struct kms_buf *out);

/* ---- p11_rsapad.c: RSA padding done in kmsd, for tokens that only do raw RSA ---- */
/* em (k bytes, k = modulus bytes) = EMSA-PSS(SHA-256, MGF1-SHA-256, salt 32) of digest. */
kms_err kms_p11_pad_pss_sha256(const uint8_t *spki, size_t spki_len, const uint8_t digest[32],
                               uint8_t *em, size_t k);
/* em (k bytes) = EMSA-PKCS1-v1_5 block type 1 around data (a DigestInfo). */
kms_err kms_p11_pad_pkcs1_sign(const uint8_t *data, size_t len, uint8_t *em, size_t k);
/* Appends the message inside an OAEP block em (k bytes; MGF1 and label hash: SHA-256 or -1). */
kms_err kms_p11_unpad_oaep(bool sha256, const uint8_t *em, size_t k, struct kms_buf *pt);
/* Appends the message inside a PKCS#1 v1.5 type 2 block em (k bytes). */
kms_err kms_p11_unpad_pkcs1(const uint8_t *em, size_t k, struct kms_buf *pt);
/* Checks an RSA signature over a SHA-256 digest (pss: PSS salt 32, else PKCS#1 v1.5). */
bool kms_p11_rsa_verify(const uint8_t *spki, size_t spki_len, bool pss, const uint8_t digest[32],
                        const uint8_t *sig, size_t sig_len);

/* ---- p11_op.c ---- */
enum kms_p11_op {
    KMS_P11_SIGN,
    KMS_P11_ENCRYPT,
    KMS_P11_DECRYPT,
};
/*
 * One single-part operation (C_xInit + C_x) with the key object h in a pooled session; out has
 * room for *out_len bytes and gets that many. Results: KMS_OK; KMS_E_UNSUPPORTED_ALGORITHM
 * when C_xInit refused the mechanism or its parameters (*init_rv says how: the caller may fall
 * back); KMS_E_INVALID_PARAMETER when the token refused the data (decrypting: does not verify);
 * KMS_E_UNAVAILABLE when the token is away; KMS_E_KEY_NOT_FOUND when the object is missing;
 * KMS_E_INTERNAL otherwise (logged).
 */
kms_err kms_p11_obj_op(struct kms_p11 *p, struct kms_p11_handle *h, enum kms_p11_op op,
                       CK_MECHANISM *m, const uint8_t *in, size_t in_len, uint8_t *out,
                       size_t *out_len, CK_RV *init_rv);
/*
 * AES-GCM (96-bit IV, 128-bit tag) with the key object h. Decrypting, in is the ciphertext and
 * tag_in its tag; KMS_E_INVALID_PARAMETER when the tag does not verify (out is then wiped).
 */
kms_err kms_p11_gcm(struct kms_p11 *p, struct kms_p11_handle *h, bool encrypt,
                    const uint8_t iv[KMS_AEAD_IV_LEN], const void *aad, size_t aad_len,
                    const uint8_t *in, size_t len, const uint8_t *tag_in, uint8_t *out,
                    uint8_t *tag_out);

/*
 * HMAC (mechanism hmac, e.g. CKM_SHA256_HMAC) of msg under a key derived in the token from the
 * AES key object h: C_DeriveKey with CKM_AES_ECB_ENCRYPT_DATA over data (a multiple of 16
 * bytes) makes a session generic secret of data_len bytes that may only sign, is sensitive and
 * not extractable, and is destroyed right after C_Sign: the MAC key never leaves the token.
 * out has room for *out_len bytes. Results as kms_p11_obj_op, with KMS_E_UNSUPPORTED_ALGORITHM
 * (*refused_rv says how) when the token refuses the derivation or the HMAC for this key (the
 * key object may not derive, the mechanism is unknown).
 */
kms_err kms_p11_derived_hmac(struct kms_p11 *p, struct kms_p11_handle *h, const uint8_t *data,
                             size_t data_len, CK_MECHANISM_TYPE hmac, const uint8_t *msg,
                             size_t len, uint8_t *out, size_t *out_len, CK_RV *refused_rv);

/* ---- pkcs11.c ---- */
/* The p11 of a PKCS#11 keystore (NULL for another driver). */
struct kms_p11 *kms_pkcs11_of(struct kms_keystore *ks);

#endif
