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

#endif
