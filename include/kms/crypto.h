/*
 * crypto.h - cryptographic building blocks that need no key store: Base64, AEAD ciphers
 * (AES-GCM, SM4-GCM), the ciphertext blob format and the canonical EncryptionContext.
 * Only these functions and src/keystore/ touch key material.
 */
#ifndef KMS_CRYPTO_H
#define KMS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/error.h"
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

#endif
