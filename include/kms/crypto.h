/*
 * crypto.h - cryptographic building blocks that need no key store: Base64, AEAD ciphers
 * (AES-GCM, SM4-GCM), the ciphertext blob format, the canonical EncryptionContext, and
 * public-key cryptography (RSA, ECDSA, SM2). Only these functions and src/keystore/ touch key
 * material.
 */
#ifndef KMS_CRYPTO_H
#define KMS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/error.h"
#include "kms/keyspec.h"
#include "kms/util.h"

/* ---- b64.c: standard alphabet (RFC 4648 §4) ---- */

/* Length of the Base64 text for n bytes, without the NUL. */
#define KMS_B64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)

/* Writes the padded Base64 of in to out (KMS_B64_ENCODED_LEN(len)+1 bytes); returns its length. */
size_t kms_b64_encode(const uint8_t *in, size_t len, char *out);
/* Appends the Base64 of in to b. */
kms_err kms_b64_append(struct kms_buf *b, const uint8_t *in, size_t len);

/*
 * Decodes standard Base64 (padding optional, no whitespace, no URL-safe alphabet) into out, which
 * must hold at least (len/4+1)*3 bytes; *out_len gets the byte count. False when the text is
 * not Base64 (bad characters, impossible length, non-zero trailing bits are tolerated).
 */
bool kms_b64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len);
/* Upper bound of the decoded size of len characters. */
#define KMS_B64_DECODED_MAX(len) ((((len) + 3) / 4) * 3)

/* ---- aead.c: AES-256-GCM, AES-128-GCM, SM4-GCM (96-bit IV, 128-bit tag) ---- */

/* The values are stored in ciphertext blobs: never renumber. */
enum kms_aead_alg {
    KMS_AEAD_AES_256_GCM = 1,
    KMS_AEAD_AES_128_GCM = 2,
    KMS_AEAD_SM4_GCM = 3,
};

#define KMS_AEAD_IV_LEN  12
#define KMS_AEAD_TAG_LEN 16
/* Longest plaintext, ciphertext or AAD one call accepts (OpenSSL's EVP lengths are int). */
#define KMS_AEAD_MAX_LEN 0x7fffffff

/* Key length of alg in bytes: 32, 16, 16; 0 for an unknown algorithm. */
size_t kms_aead_key_len(enum kms_aead_alg alg);
/* True when alg is one of enum kms_aead_alg (for values read from a blob). */
bool kms_aead_alg_valid(unsigned alg);

/*
 * Fetches the ciphers once per process. seal/open call it themselves; the daemon calls it at start
 * to fail early. KMS_E_INTERNAL when OpenSSL lacks a cipher kmsd needs.
 */
kms_err kms_aead_init(void);
/* True when SM4-GCM comes from OpenSSL itself, false when sm4_gcm.c's GCM is used (after init). */
bool kms_aead_sm4_gcm_native(void);

/*
 * Encrypts pt_len bytes of pt into ct_out (pt_len bytes; may be pt itself) and writes the tag.
 * key_len must be kms_aead_key_len(alg); the iv must never repeat under one key.
 * Returns KMS_OK, or KMS_E_INTERNAL (unknown alg, wrong key length, length over
 * KMS_AEAD_MAX_LEN, OpenSSL failure).
 */
kms_err kms_aead_seal(enum kms_aead_alg alg, const uint8_t *key, size_t key_len,
                      const uint8_t iv[KMS_AEAD_IV_LEN], const uint8_t *aad, size_t aad_len,
                      const uint8_t *pt, size_t pt_len, uint8_t *ct_out,
                      uint8_t tag_out[KMS_AEAD_TAG_LEN]);
/*
 * Decrypts ct_len bytes of ct into pt_out (ct_len bytes; may be ct itself) after checking the tag.
 * Returns KMS_OK; KMS_E_INVALID_PARAMETER when the tag does not verify (pt_out is then wiped:
 * unauthenticated plaintext never leaves); KMS_E_INTERNAL as for seal.
 */
kms_err kms_aead_open(enum kms_aead_alg alg, const uint8_t *key, size_t key_len,
                      const uint8_t iv[KMS_AEAD_IV_LEN], const uint8_t *aad, size_t aad_len,
                      const uint8_t *ct, size_t ct_len, const uint8_t tag[KMS_AEAD_TAG_LEN],
                      uint8_t *pt_out);

/* ---- sm4_gcm.c: GCM (NIST SP 800-38D) in software over OpenSSL's block cipher ---- */

/*
 * kmsd's own GCM, used for SM4 when OpenSSL has no SM4-GCM (OpenSSL 3.0). Same contract as
 * kms_aead_seal/open. It accepts the AES algorithms too, only so that tests can check it against
 * OpenSSL's AES-GCM; kms_aead_* never route AES here. Unit tests call it directly so the fallback
 * is tested even where OpenSSL provides SM4-GCM.
 */
kms_err kms_gcm_soft_seal(enum kms_aead_alg alg, const uint8_t *key, size_t key_len,
                          const uint8_t iv[KMS_AEAD_IV_LEN], const uint8_t *aad, size_t aad_len,
                          const uint8_t *pt, size_t pt_len, uint8_t *ct_out,
                          uint8_t tag_out[KMS_AEAD_TAG_LEN]);
kms_err kms_gcm_soft_open(enum kms_aead_alg alg, const uint8_t *key, size_t key_len,
                          const uint8_t iv[KMS_AEAD_IV_LEN], const uint8_t *aad, size_t aad_len,
                          const uint8_t *ct, size_t ct_len, const uint8_t tag[KMS_AEAD_TAG_LEN],
                          uint8_t *pt_out);

/* ---- context.c: EncryptionContext ---- */

/* Largest canonical form (the length-prefixed bytes below) a context may have. */
#define KMS_CONTEXT_MAX_LEN 8192

/* One member; key and value are NUL-terminated copies in one allocation owned by the context. */
struct kms_context_pair {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
};

/*
 * A context: pairs kept sorted by key bytes (memcmp order, shorter first on a tie) with unique
 * keys, so the canonical form needs no sorting and duplicates are caught on insertion.
 * Zero-initialised = empty. ctx_canonical_len is the size of the canonical form.
 */
struct kms_context {
    struct kms_context_pair *pairs;
    size_t count;
    size_t cap;
    size_t ctx_canonical_len;
};

/*
 * Adds the members of a JSON object text (protocol.md §2.2): string values as they decode,
 * numbers and true/false as their literal JSON text. KMS_E_INVALID_PARAMETER for invalid JSON,
 * a text that is not one object, null / object / array members, a key already in ctx, an empty
 * key, a key or value that is not UTF-8 or holds NUL (also via \u0000), or a canonical form over
 * KMS_CONTEXT_MAX_LEN; ctx may then hold some of the members and must still be freed.
 * KMS_E_INTERNAL when memory runs out.
 */
kms_err kms_context_parse_json(struct kms_context *ctx, const char *json, size_t len);
/*
 * Adds one member (e.g. from a flattened EncryptionContext.<k>=<v> parameter); the same
 * validation as parse_json.
 */
kms_err kms_context_add(struct kms_context *ctx, const char *key, size_t key_len, const char *value,
                        size_t value_len);
/*
 * Appends the canonical form to out: for each pair in key order, u32 big-endian key length ‖ key
 * ‖ u32 big-endian value length ‖ value. The empty context appends nothing.
 * (Takes a const context: pairs are already sorted.)
 */
kms_err kms_context_canonical(const struct kms_context *ctx, struct kms_buf *out);
/* Frees the pairs and leaves ctx empty (reusable). */
void kms_context_free(struct kms_context *ctx);

/* ---- blob.c: the CiphertextBlob (DESIGN.md "Ciphertext and key material") ---- */

/* format(1) | algorithm(1) | KeyVersionId(16 raw UUID bytes) | iv(12) | ciphertext | tag(16) */
#define KMS_BLOB_FORMAT_V1  1
#define KMS_BLOB_HEADER_LEN 18
#define KMS_BLOB_OVERHEAD   (KMS_BLOB_HEADER_LEN + KMS_AEAD_IV_LEN + KMS_AEAD_TAG_LEN)

/* A parsed blob: pointers into the caller's bytes, valid as long as they are. */
struct kms_blob {
    const uint8_t *header; /* the KMS_BLOB_HEADER_LEN header bytes, for the AAD */
    uint8_t format;
    uint8_t alg; /* a valid enum kms_aead_alg */
    uint8_t version_id[16];
    const uint8_t *iv;
    const uint8_t *ct;
    size_t ct_len;
    const uint8_t *tag;
};

/* Views data (no copy). Too short, unknown format, unknown algorithm -> KMS_E_INVALID_PARAMETER. */
kms_err kms_blob_parse(const uint8_t *data, size_t len, struct kms_blob *out);
void kms_blob_write_header(uint8_t out[KMS_BLOB_HEADER_LEN], enum kms_aead_alg alg,
                           const uint8_t version_id[16]);
/*
 * Appends the AAD = header ‖ canonical context to aad_out (ctx may be NULL for no context).
 * KMS_E_INTERNAL when memory runs out; KMS_E_INVALID_PARAMETER only for a context filled by hand
 * past KMS_CONTEXT_MAX_LEN.
 */
kms_err kms_blob_aad(const uint8_t header[KMS_BLOB_HEADER_LEN], const struct kms_context *ctx,
                     struct kms_buf *aad_out);

/* ---- pkey.c: public-key cryptography (spec/algorithms.md §5-§7) ---- */

/*
 * The keystore drivers run the private-key halves (sign, decrypt) of a stored key through
 * kms_pkey_sign / kms_pkey_decrypt when they hold the key in memory (the software driver); a
 * token driver runs its own. Everything that needs only a public key (verify, encrypt, SPKI
 * parsing, PEM) needs no keystore. EVP_PKEY is OpenSSL's; this header names it by its struct
 * tag so that callers need no OpenSSL headers.
 */
struct evp_pkey_st;

/* Signature algorithms (spec/algorithms.md §7.1). */
enum kms_sign_alg {
    KMS_SIGN_RSA_PSS_SHA_256 = 1,
    KMS_SIGN_RSA_PKCS1_SHA_256,
    KMS_SIGN_ECDSA_SHA_256,
    KMS_SIGN_SM2DSA,
};

/* Public-key encryption algorithms (spec/algorithms.md §7.2, §5). */
enum kms_pk_alg {
    KMS_PK_RSAES_OAEP_SHA_256 = 1,
    KMS_PK_RSAES_OAEP_SHA_1,
    KMS_PK_RSAES_PKCS1_V1_5,
    KMS_PK_SM2PKE,
};

/* Every signature input is a 32-byte digest (SHA-256, or SM3(Z_A ‖ M) for SM2DSA). */
#define KMS_PKEY_DIGEST_LEN 32
/* SM2PKE: longest plaintext, and the raw C1 (04‖x‖y) ‖ C3 (SM3) overhead around C2. */
#define KMS_SM2_PLAINTEXT_MAX 6047
#define KMS_SM2_C1_LEN        65
#define KMS_SM2_C3_LEN        32
#define KMS_SM2_OVERHEAD      (KMS_SM2_C1_LEN + KMS_SM2_C3_LEN)

/* Wire names ("RSA_PSS_SHA_256", "RSAES_OAEP_SHA_256", ...); parsers return false if unknown. */
bool kms_sign_alg_parse(const char *name, enum kms_sign_alg *out);
bool kms_pk_alg_parse(const char *name, enum kms_pk_alg *out);
const char *kms_pk_alg_name(enum kms_pk_alg alg);
/* Whether alg applies to keys of spec (spec/algorithms.md §7.1, §7.2). */
bool kms_sign_alg_fits(enum kms_key_spec spec, enum kms_sign_alg alg);
bool kms_pk_alg_fits(enum kms_key_spec spec, enum kms_pk_alg alg);
/* Longest plaintext alg encrypts under a key of spec: 190/214/245 for RSA_2048, 6047 for SM2. */
size_t kms_pk_max_plaintext(enum kms_key_spec spec, enum kms_pk_alg alg);

/*
 * A wrapping key spec (WrappingKeySpec of GetParametersForImport, ExportDataKey and
 * GenerateAndExportDataKey): RSA_2048 or EC_SM2. False for any other name.
 */
bool kms_wrapping_spec_parse(const char *name, enum kms_key_spec *out);

/* The key spec of a key (RSA_2048, RSA_3072, EC_P256, EC_P256K, EC_SM2), else KMS_SPEC_NONE. */
enum kms_key_spec kms_pkey_spec(const struct evp_pkey_st *pkey);
/*
 * Parses a DER SubjectPublicKeyInfo that must fill all of der and be a key of a spec kmsd knows
 * (*spec_out, optional, gets it). KMS_E_INVALID_PARAMETER otherwise. *out: kms_pkey_free.
 */
kms_err kms_pkey_parse_public(const uint8_t *der, size_t len, struct evp_pkey_st **out,
                              enum kms_key_spec *spec_out);
/* Frees a key (NULL is fine); private keys are wiped by OpenSSL. */
void kms_pkey_free(struct evp_pkey_st *pkey);

/* A new key pair of an asymmetric spec; KMS_E_INTERNAL on failure. *out: kms_pkey_free. */
kms_err kms_pkey_generate(enum kms_key_spec spec, struct evp_pkey_st **out);
/* Appends the DER SubjectPublicKeyInfo of pkey. */
kms_err kms_pkey_public_der(const struct evp_pkey_st *pkey, struct kms_buf *out);
/* Appends the PKCS#8 PrivateKeyInfo DER of pkey: a secret, the caller wipes out. */
kms_err kms_pkey_private_der(const struct evp_pkey_st *pkey, struct kms_buf *out);
/* Loads a private key from PKCS#8 (or a traditional RSA/EC private key) DER; KMS_E_INTERNAL. */
kms_err kms_pkey_from_private_der(const uint8_t *der, size_t len, struct evp_pkey_st **out);
/* A private key from PEM text (PKCS#8 or traditional, unencrypted): KMS_E_INVALID_PARAMETER when
 * it is not one of the supported kinds. *out: kms_pkey_free. */
kms_err kms_pkey_from_private_pem(const char *pem, size_t len, struct evp_pkey_st **out);
/*
 * Appends the PEM text of a DER SubjectPublicKeyInfo: "-----BEGIN PUBLIC KEY-----", 64-column
 * Base64 lines, "-----END PUBLIC KEY-----", each line ending in "\n".
 */
kms_err kms_pkey_public_pem(const uint8_t *der, size_t len, struct kms_buf *out);

/*
 * Encrypts pt with a public (or private) key, appending the ciphertext: RSA output is one modulus
 * long; SM2PKE output is raw C1 ‖ C3 ‖ C2 with C1 = 04 ‖ x ‖ y. KMS_E_UNSUPPORTED_ALGORITHM when
 * alg does not apply to the key; KMS_E_INVALID_PARAMETER for an empty or too long plaintext
 * (kms_pk_max_plaintext).
 */
kms_err kms_pkey_encrypt(const struct evp_pkey_st *pkey, enum kms_pk_alg alg, const uint8_t *pt,
                         size_t pt_len, struct kms_buf *ct);
/*
 * Decrypts with a private key, appending the plaintext (a secret: the caller wipes pt). RSA
 * ciphertexts must be one modulus long; SM2PKE takes raw C1 ‖ C3 ‖ C2 or the GM/T 0009 DER
 * form. KMS_E_UNSUPPORTED_ALGORITHM when alg does not apply to the key; KMS_E_INVALID_PARAMETER
 * for any ciphertext that does not decrypt, whatever the reason (one answer for every failure).
 */
kms_err kms_pkey_decrypt(const struct evp_pkey_st *pkey, enum kms_pk_alg alg, const uint8_t *ct,
                         size_t ct_len, struct kms_buf *pt);
/*
 * Signs a 32-byte digest with a private key, appending the signature (RSA: modulus length;
 * ECDSA/SM2: DER SEQUENCE{r,s}). SM2DSA signs the digest as e = SM3(Z_A ‖ M) without hashing it
 * again. KMS_E_INVALID_PARAMETER for another digest length; KMS_E_UNSUPPORTED_ALGORITHM when
 * alg does not apply to the key.
 */
kms_err kms_pkey_sign(const struct evp_pkey_st *pkey, enum kms_sign_alg alg, const uint8_t *digest,
                      size_t digest_len, struct kms_buf *sig);
/*
 * A signer: a private key with the signing contexts it has made, kept one per thread and
 * algorithm, so that a signature does not set one up each time (3-4 µs in OpenSSL 3.0).
 * kms_signer_new borrows pkey, which must outlive the signer (KMS_E_UNSUPPORTED_KEY_SPEC for a
 * key that does not sign); kms_signer_free frees the contexts (NULL is fine). kms_signer_sign
 * is kms_pkey_sign with the same results and errors; any number of threads may call it at once.
 */
struct kms_signer;
kms_err kms_signer_new(const struct evp_pkey_st *pkey, struct kms_signer **out);
void kms_signer_free(struct kms_signer *signer);
kms_err kms_signer_sign(struct kms_signer *signer, enum kms_sign_alg alg, const uint8_t *digest,
                        size_t digest_len, struct kms_buf *sig);
/*
 * Verifies sig over a 32-byte digest: *valid is false for any signature that does not verify
 * (wrong, damaged, malformed, another key's). Errors as kms_pkey_sign.
 */
kms_err kms_pkey_verify(const struct evp_pkey_st *pkey, enum kms_sign_alg alg,
                        const uint8_t *digest, size_t digest_len, const uint8_t *sig,
                        size_t sig_len, bool *valid);

/* The SM2 distinguishing ID kmsd uses for Z_A (GB/T 32918.2's default, GM/T 0009). */
#define KMS_SM2_DEFAULT_ID "1234567812345678"
/*
 * The 32-byte input of kms_pkey_sign / kms_pkey_verify for a whole message under alg: SHA-256(M)
 * for the RSA and ECDSA algorithms; for SM2DSA e = SM3(Z_A ‖ M), Z_A from pkey's public point
 * and KMS_SM2_DEFAULT_ID. KMS_E_UNSUPPORTED_ALGORITHM when alg does not apply to the key.
 */
kms_err kms_pkey_message_digest(const struct evp_pkey_st *pkey, enum kms_sign_alg alg,
                                const uint8_t *msg, size_t len,
                                uint8_t digest[KMS_PKEY_DIGEST_LEN]);

/*
 * SM2 ciphertext layouts: raw C1 ‖ C3 ‖ C2 (C1 = 04 ‖ x ‖ y, 32-byte coordinates) and GM/T 0009
 * DER SEQUENCE { INTEGER x, INTEGER y, OCTET STRING C3, OCTET STRING C2 } (what OpenSSL reads and
 * writes). Each appends the other form; KMS_E_INVALID_PARAMETER when the input is not exactly
 * one well-formed ciphertext (strict DER; C3 32 bytes; C2 at most KMS_SM2_PLAINTEXT_MAX bytes).
 */
kms_err kms_sm2_ct_raw_to_der(const uint8_t *raw, size_t len, struct kms_buf *der);
kms_err kms_sm2_ct_der_to_raw(const uint8_t *der, size_t len, struct kms_buf *raw);
/* ---- clientkey.c: the key pairs of application access points' client keys (actions.md I4) ---- */

/*
 * Generates an RSA-2048 key pair and a self-signed X.509 certificate (subject CN=cn, validity
 * not_before..not_after, SHA-256). p12_der gets the private key and certificate as a PKCS#12
 * protected by password (the caller wipes it after use); cert_pem gets the certificate, which is
 * all kmsd keeps. The private key never leaves this function otherwise. KMS_E_INTERNAL when
 * OpenSSL fails.
 */
kms_err kms_client_key_generate(const char *cn, int64_t not_before, int64_t not_after,
                                const char *password, struct kms_buf *p12_der,
                                struct kms_buf *cert_pem);

/* ---- hmac.c: HMAC for GenerateMac / VerifyMac (spec/algorithms.md §8) ---- */

enum kms_mac_alg {
    KMS_MAC_HMAC_SM3 = 1,
    KMS_MAC_HMAC_SHA_224,
    KMS_MAC_HMAC_SHA_256,
    KMS_MAC_HMAC_SHA_384,
    KMS_MAC_HMAC_SHA_512,
};

#define KMS_MAC_MAX_LEN 64 /* HMAC-SHA-512 */
/* The domain-separation label of MAC-key derivation: never an encryption key's use. */
#define KMS_MAC_LABEL "kms-mac-v1"
/* Length of a derived software MAC key (the output of HMAC-SHA-256 / HMAC-SM3). */
#define KMS_MAC_KEY_LEN 32
/* Length of the token derivation input kms_mac_derivation_data gives (four AES blocks). */
#define KMS_MAC_DERIVATION_LEN 64

/* Wire names "HMAC_SM3", "HMAC_SHA_224", ...; the parser returns false for anything else. */
bool kms_mac_alg_parse(const char *name, enum kms_mac_alg *out);
const char *kms_mac_alg_name(enum kms_mac_alg alg);
/* Aliyun_SM4 -> HMAC_SM3 only; Aliyun_AES_256/128 -> the four SHA-2 HMACs; nothing else. */
bool kms_mac_alg_fits(enum kms_key_spec spec, enum kms_mac_alg alg);
/* Whether spec can have MACs at all (a symmetric spec with at least one algorithm). */
bool kms_mac_spec_supported(enum kms_key_spec spec);
/* Length of alg's MAC in bytes (32 for SM3, 28/32/48/64 for SHA-224/256/384/512). */
size_t kms_mac_len(enum kms_mac_alg alg);
/* out (kms_mac_len(alg) bytes, *out_len) = HMAC-alg(key, msg). KMS_E_INTERNAL on failure. */
kms_err kms_hmac(enum kms_mac_alg alg, const uint8_t *key, size_t key_len, const uint8_t *msg,
                 size_t len, uint8_t out[KMS_MAC_MAX_LEN], size_t *out_len);
/*
 * The MAC key of a software key version: HMAC-H(material, KMS_MAC_LABEL ‖ Algorithm name),
 * H = SM3 for Aliyun_SM4 keys, SHA-256 otherwise. out is a secret: the caller wipes it.
 */
kms_err kms_mac_derive_key(enum kms_key_spec spec, enum kms_mac_alg alg, const uint8_t *material,
                           size_t len, uint8_t out[KMS_MAC_KEY_LEN]);
/*
 * What a token encrypts (AES-ECB, in the token) to derive an HSM key version's MAC key:
 * SHA-512(KMS_MAC_LABEL ‖ Algorithm name), four distinct blocks.
 */
kms_err kms_mac_derivation_data(enum kms_mac_alg alg, uint8_t out[KMS_MAC_DERIVATION_LEN]);

#endif
