/*
 * keystore.h - the HSM layer: one interface, several drivers.
 *
 * A driver creates, imports, loads and destroys key-version material and runs the operations
 * that need the secret half of a key (AEAD with symmetric keys, sign and decrypt with private
 * keys). Public-key operations (verify, encrypt) need no keystore: callers do them with the
 * version's public key. What a driver returns in `stored` is what the store keeps for the
 * version: wrapped material for the software driver, nothing for a token that holds the key.
 *
 * Drivers: software.c (OpenSSL, material wrapped by the master key) and pkcs11.c (any PKCS#11
 * module). The software driver also seals small server secrets (access-key secrets, import
 * tokens) under the master key, which is a file or, in sealing mode, a key in the PKCS#11
 * token (master.h).
 */
#ifndef KMS_KEYSTORE_H
#define KMS_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/crypto.h"
#include "kms/error.h"
#include "kms/keyspec.h"
#include "kms/util.h"

struct kms_config;
struct kms_keystore;
struct kms_ks_key;

/* Which key version an operation is about. */
struct kms_ks_ref {
    const char *key_id;
    const char *version_id; /* lower-case UUID text */
    enum kms_key_spec spec;
};

/* enum kms_sign_alg and enum kms_pk_alg (the algorithms of ks_sign, ks_decrypt) are in
 * kms/crypto.h, shared with the public-key code of src/crypto/pkey.c. */

struct kms_keystore_ops {
    const char *ks_name;
    /* New material for ref; stored/public_der are appended to (public_der for asymmetric). */
    kms_err (*ks_create)(struct kms_keystore *ks, const struct kms_ks_ref *ref,
                         struct kms_buf *stored, struct kms_buf *public_der);
    /* Given plaintext material (BYOK, seeding) for a symmetric ref. */
    kms_err (*ks_import)(struct kms_keystore *ks, const struct kms_ks_ref *ref,
                         const uint8_t *material, size_t len, struct kms_buf *stored);
    /* Makes a version usable; *out is released with ks_release. */
    kms_err (*ks_load)(struct kms_keystore *ks, const struct kms_ks_ref *ref, const uint8_t *stored,
                       size_t stored_len, struct kms_ks_key **out);
    void (*ks_release)(struct kms_ks_key *key);
    /* Destroys whatever the driver holds for ref (token objects); the store row goes separately. */
    kms_err (*ks_destroy)(struct kms_keystore *ks, const struct kms_ks_ref *ref);
    /* Symmetric AEAD with a loaded version (same blob format whatever the driver). */
    kms_err (*ks_seal)(struct kms_ks_key *key, const uint8_t iv[KMS_AEAD_IV_LEN],
                       const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                       uint8_t *ct, uint8_t tag[KMS_AEAD_TAG_LEN]);
    /* KMS_E_INVALID_PARAMETER when the tag does not verify. */
    kms_err (*ks_open)(struct kms_ks_key *key, const uint8_t iv[KMS_AEAD_IV_LEN],
                       const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                       const uint8_t tag[KMS_AEAD_TAG_LEN], uint8_t *pt);
    /* Signs a precomputed digest; appends the signature to sig. */
    kms_err (*ks_sign)(struct kms_ks_key *key, enum kms_sign_alg alg, const uint8_t *digest,
                       size_t digest_len, struct kms_buf *sig);
    /* Private-key decryption; appends the plaintext to pt (KMS_E_INVALID_PARAMETER on failure). */
    kms_err (*ks_decrypt)(struct kms_ks_key *key, enum kms_pk_alg alg, const uint8_t *ct,
                          size_t ct_len, struct kms_buf *pt);
    /*
     * MAC (GenerateMac / VerifyMac, spec/algorithms.md §8) of msg with a loaded symmetric
     * version: HMAC-alg under a key the driver derives from the version's material for alg
     * (label KMS_MAC_LABEL ‖ Algorithm), never the material itself; out gets kms_mac_len(alg)
     * bytes. KMS_E_UNSUPPORTED_PROTECTION when the driver cannot for this version (a token
     * without the mechanisms, a key object that may not derive); NULL: the driver never can.
     */
    kms_err (*ks_mac)(struct kms_ks_key *key, enum kms_mac_alg alg, const uint8_t *msg, size_t len,
                      uint8_t out[KMS_MAC_MAX_LEN], size_t *out_len);
    /* Random bytes from the driver's generator. */
    kms_err (*ks_random)(struct kms_keystore *ks, uint8_t *out, size_t len);
    void (*ks_close)(struct kms_keystore *ks);
    /*
     * Whether the driver can hold keys of spec with that origin (KMS_ORIGIN_EXTERNAL: imported
     * material). NULL means every spec and both origins. Use kms_keystore_supports().
     */
    bool (*ks_supports)(struct kms_keystore *ks, enum kms_key_spec spec, enum kms_origin origin);
};

struct kms_keystore {
    const struct kms_keystore_ops *ks_ops;
    enum kms_protection ks_level;
    void *ks_impl;
};

/* Every loaded key starts with this, so the generic helpers below can dispatch. */
struct kms_ks_key {
    const struct kms_keystore_ops *kk_ops;
    struct kms_keystore *kk_store;
};

/* ---- registry (keystore.c) ---- */

/* Opens the configured drivers: software always, PKCS#11 when configured. */
kms_err kms_keystores_open(const struct kms_config *cfg);
void kms_keystores_close(void);
/* The driver for a protection level, or NULL when none is configured (->
 * Unsupported.ProtectionLevel). */
struct kms_keystore *kms_keystore_for(enum kms_protection level);
/* Whether ks (not NULL) can make (origin KMS) or import (EXTERNAL) keys of spec. */
bool kms_keystore_supports(struct kms_keystore *ks, enum kms_key_spec spec, enum kms_origin origin);

/*
 * Seals / opens a small server secret (access-key secret, import token) under the master key,
 * bound to aad. Output format is private to the software driver.
 */
kms_err kms_keystore_seal_secret(const void *aad, size_t aad_len, const uint8_t *data, size_t len,
                                 struct kms_buf *out);
kms_err kms_keystore_open_secret(const void *aad, size_t aad_len, const uint8_t *sealed, size_t len,
                                 struct kms_buf *out);
/* A keyed fingerprint (HMAC under a master-key-derived key) of material, for BYOK re-import checks.
 */
kms_err kms_keystore_fingerprint(const uint8_t *material, size_t len, uint8_t out[32]);

/* ---- software.c ---- */
kms_err kms_software_keystore_open(const struct kms_config *cfg, struct kms_keystore **out);
/*
 * Certificates (src/api/certificates.c) keep private keys that arrived from outside (PKCS#12)
 * in the software keystore: wraps a PKCS#8 DER private key for ref exactly as ks_create would
 * have stored a new one (ks_load then loads it). public_der gets its SubjectPublicKeyInfo.
 * KMS_E_INVALID_PARAMETER when pkcs8 is not a private key of ref->spec.
 */
kms_err kms_keystore_wrap_private(const struct kms_ks_ref *ref, const uint8_t *pkcs8, size_t len,
                                  struct kms_buf *stored, struct kms_buf *public_der);
/*
 * Appends the PKCS#8 DER of a loaded private key (ExportCertificate; a secret the caller wipes).
 * KMS_E_NO_PERMISSION for a key the driver cannot give out (a token's).
 */
kms_err kms_keystore_export_private(struct kms_ks_key *key, struct kms_buf *pkcs8);

/* ---- pkcs11.c (docs/hsm.md) ---- */
/*
 * Loads cfg->pkcs11_module, finds the token, logs in and reads its mechanisms. On failure one
 * error line names the cause (module, token, PIN, PIN file) and nothing stays open.
 */
kms_err kms_pkcs11_keystore_open(const struct kms_config *cfg, struct kms_keystore **out);

#endif
