/*
 * fuzz_blob.c - the CiphertextBlob parser and AAD builder (src/crypto/blob.c) and Base64
 * decoding (kms_b64_decode, src/crypto/b64.c), as Decrypt meets them: Base64 text from the
 * request, a blob inside, an EncryptionContext for the AAD, AEAD open under a key.
 *
 * Input: byte 0 = flags (bit 0: the blob is given as Base64 text), byte 1 = n, the next n bytes =
 * an EncryptionContext in JSON, the rest = the blob (or its Base64 text).
 *
 * Asserts: Base64 that decodes stays within KMS_B64_DECODED_MAX and re-encodes to text that
 * decodes to the same bytes; a parsed blob's views lie inside the input and add up to it
 * (header, iv, ciphertext, tag) with a known format and algorithm; the AAD is exactly header ‖
 * canonical context; opening the fuzzed blob under a fixed key fails with InvalidParameter and
 * leaves no plaintext behind (no tag forgery), while a blob sealed here with the parsed header
 * and context opens to its plaintext and parses back to the same header.
 */
#include <stdlib.h>
#include <string.h>

#include "kms/crypto.h"
#include "support.h"

static const uint8_t fuzz_key[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                     12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                     23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void check_b64(const char *text, size_t len, const uint8_t *out, size_t out_len)
{
    char *again = malloc(KMS_B64_ENCODED_LEN(out_len) + 1);
    uint8_t *back = malloc(KMS_B64_DECODED_MAX(KMS_B64_ENCODED_LEN(out_len)) + 3);
    size_t n, back_len = 0;

    FUZZ_CHECK(again != NULL && back != NULL, "out of memory");
    FUZZ_CHECK(out_len <= KMS_B64_DECODED_MAX(len), "decoded %zu bytes from %zu characters",
               out_len, len);
    n = kms_b64_encode(out, out_len, again);
    FUZZ_CHECK(n == KMS_B64_ENCODED_LEN(out_len) && again[n] == '\0', "encoded length");
    FUZZ_CHECK(kms_b64_decode(again, n, back, &back_len), "our own Base64 does not decode");
    FUZZ_CHECK(back_len == out_len && memcmp(back, out, out_len) == 0,
               "Base64 round trip changed the bytes");
    /* Whole quanta without padding carry no spare bits: they re-encode to the same text. */
    if (len % 4 == 0 && (len == 0 || text[len - 1] != '='))
        FUZZ_CHECK(n == len && memcmp(text, again, len) == 0, "Base64 text changed");
    free(again);
    free(back);
}

static void check_blob(const uint8_t *blob, size_t len, const struct kms_context *ctx)
{
    struct kms_blob b, b2;
    struct kms_buf aad = {0}, canon = {0};
    uint8_t *pt, *sealed;
    size_t pt_len;
    kms_err rc = kms_blob_parse(blob, len, &b);

    if (rc != KMS_OK) {
        FUZZ_CHECK(rc == KMS_E_INVALID_PARAMETER, "parse error %d", (int)rc);
        FUZZ_CHECK(len < KMS_BLOB_OVERHEAD || blob[0] != KMS_BLOB_FORMAT_V1 ||
                       !kms_aead_alg_valid(blob[1]),
                   "a well-shaped blob was refused");
        return;
    }
    FUZZ_CHECK(len >= KMS_BLOB_OVERHEAD && b.format == KMS_BLOB_FORMAT_V1 &&
                   kms_aead_alg_valid(b.alg),
               "bad blob accepted");
    FUZZ_CHECK(b.header == blob && b.iv == blob + KMS_BLOB_HEADER_LEN &&
                   b.ct == b.iv + KMS_AEAD_IV_LEN && b.ct_len == len - KMS_BLOB_OVERHEAD &&
                   b.tag == b.ct + b.ct_len && b.tag + KMS_AEAD_TAG_LEN == blob + len,
               "blob views do not tile the input");
    FUZZ_CHECK(memcmp(b.version_id, blob + 2, 16) == 0, "version id");

    FUZZ_CHECK(kms_blob_aad(b.header, ctx, &aad) == KMS_OK, "AAD failed");
    FUZZ_CHECK(kms_context_canonical(ctx, &canon) == KMS_OK, "canonical failed");
    FUZZ_CHECK(
        aad.len == KMS_BLOB_HEADER_LEN + canon.len &&
            memcmp(aad.data, blob, KMS_BLOB_HEADER_LEN) == 0 &&
            memcmp(aad.data + KMS_BLOB_HEADER_LEN, canon.data ? canon.data : "", canon.len) == 0,
        "AAD is not header || canonical context");

    /* The fuzzed blob never opens under our key: that would be a forged tag. */
    pt_len = b.ct_len;
    pt = malloc(pt_len + 1);
    FUZZ_CHECK(pt != NULL, "out of memory");
    memset(pt, 0xa5, pt_len + 1);
    rc = kms_aead_open(b.alg, fuzz_key, kms_aead_key_len(b.alg), b.iv, (const uint8_t *)aad.data,
                       aad.len, b.ct, b.ct_len, b.tag, pt);
    FUZZ_CHECK(rc == KMS_E_INVALID_PARAMETER, "open of a fuzzed blob returned %d", (int)rc);
    for (size_t i = 0; i < pt_len; i++)
        FUZZ_CHECK(pt[i] == 0, "unauthenticated plaintext left behind at %zu", i);

    /* A blob sealed with the same header, iv and context opens to its plaintext. */
    sealed = malloc(len);
    FUZZ_CHECK(sealed != NULL, "out of memory");
    memcpy(sealed, blob, KMS_BLOB_HEADER_LEN + KMS_AEAD_IV_LEN);
    rc = kms_aead_seal(b.alg, fuzz_key, kms_aead_key_len(b.alg), b.iv, (const uint8_t *)aad.data,
                       aad.len, b.ct, b.ct_len, sealed + KMS_BLOB_HEADER_LEN + KMS_AEAD_IV_LEN,
                       sealed + len - KMS_AEAD_TAG_LEN);
    FUZZ_CHECK(rc == KMS_OK, "seal failed (%d)", (int)rc);
    FUZZ_CHECK(kms_blob_parse(sealed, len, &b2) == KMS_OK && b2.alg == b.alg &&
                   memcmp(b2.version_id, b.version_id, 16) == 0 && b2.ct_len == b.ct_len,
               "sealed blob does not parse back");
    rc = kms_aead_open(b2.alg, fuzz_key, kms_aead_key_len(b2.alg), b2.iv, (const uint8_t *)aad.data,
                       aad.len, b2.ct, b2.ct_len, b2.tag, pt);
    FUZZ_CHECK(rc == KMS_OK && memcmp(pt, b.ct, b.ct_len) == 0, "sealed blob does not open");
    /* One flipped tag bit, and it does not. */
    sealed[len - 1] ^= 1;
    rc = kms_aead_open(b2.alg, fuzz_key, kms_aead_key_len(b2.alg), b2.iv, (const uint8_t *)aad.data,
                       aad.len, b2.ct, b2.ct_len, b2.tag, pt);
    FUZZ_CHECK(rc == KMS_E_INVALID_PARAMETER, "a flipped tag bit still opened");

    free(sealed);
    free(pt);
    kms_buf_free(&aad);
    kms_buf_free(&canon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kms_context ctx = {0};
    const uint8_t *blob;
    size_t ctx_len, blob_len;
    uint8_t flags;

    if (size < 2)
        return 0;
    flags = data[0];
    ctx_len = data[1];
    if (ctx_len > size - 2)
        ctx_len = size - 2;
    blob = data + 2 + ctx_len;
    blob_len = size - 2 - ctx_len;
    /* An invalid context leaves part of it parsed: it is still a context for the AAD. */
    (void)kms_context_parse_json(&ctx, (const char *)data + 2, ctx_len);

    if (flags & 1) {
        uint8_t *raw = malloc(KMS_B64_DECODED_MAX(blob_len) + 3);
        size_t raw_len = 0;

        FUZZ_CHECK(raw != NULL, "out of memory");
        if (kms_b64_decode((const char *)blob, blob_len, raw, &raw_len)) {
            check_b64((const char *)blob, blob_len, raw, raw_len);
            check_blob(raw, raw_len, &ctx);
        }
        free(raw);
    } else {
        check_blob(blob, blob_len, &ctx);
    }
    kms_context_free(&ctx);
    return 0;
}
