/*
 * test_blob.c - the CiphertextBlob layout: header bytes, parsing, rejection of truncated and
 * unknown blobs, and that the AAD (header ‖ canonical context) binds the blob: one flipped bit
 * anywhere, or another context, and it no longer opens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kms/crypto.h"

static const uint8_t version_id[16] = {0x6f, 0x1c, 0x2a, 0x51, 0x9e, 0x04, 0x4b, 0x77,
                                       0x8d, 0x33, 0x10, 0xaa, 0xc2, 0x5e, 0x90, 0x01};

/* One key per algorithm, as a key version would hold. */
static const uint8_t *key_for(unsigned alg)
{
    static const uint8_t k256[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                     12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                     23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    static const uint8_t k128[16] = {0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80,
                                     0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0, 0xff};
    static const uint8_t ksm4[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                     0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};

    return alg == KMS_AEAD_AES_256_GCM ? k256 : alg == KMS_AEAD_AES_128_GCM ? k128 : ksm4;
}

/* Encrypt as the service will: header, AAD from header and context, seal. */
static void seal_blob(enum kms_aead_alg alg, const struct kms_context *ctx, const uint8_t *pt,
                      size_t pt_len, struct kms_buf *blob)
{
    struct kms_buf aad = {0};
    uint8_t header[KMS_BLOB_HEADER_LEN];
    uint8_t *p;

    kms_blob_write_header(header, alg, version_id);
    assert_int_equal(kms_blob_aad(header, ctx, &aad), KMS_OK);
    assert_int_equal(kms_buf_reserve(blob, KMS_BLOB_OVERHEAD + pt_len), KMS_OK);
    p = (uint8_t *)blob->data;
    memcpy(p, header, KMS_BLOB_HEADER_LEN);
    for (size_t i = 0; i < KMS_AEAD_IV_LEN; i++)
        p[KMS_BLOB_HEADER_LEN + i] = (uint8_t)(0xc0 + i);
    assert_int_equal(kms_aead_seal(alg, key_for(alg), kms_aead_key_len(alg),
                                   p + KMS_BLOB_HEADER_LEN, (const uint8_t *)aad.data, aad.len, pt,
                                   pt_len, p + KMS_BLOB_HEADER_LEN + KMS_AEAD_IV_LEN,
                                   p + KMS_BLOB_HEADER_LEN + KMS_AEAD_IV_LEN + pt_len),
                     KMS_OK);
    blob->len = KMS_BLOB_OVERHEAD + pt_len;
    kms_buf_free(&aad);
}

/* Decrypt as the service will: parse, pick the key by the blob's algorithm, rebuild the AAD. */
static kms_err open_blob(const uint8_t *data, size_t len, const struct kms_context *ctx,
                         uint8_t *pt_out, size_t *pt_len)
{
    struct kms_blob b;
    struct kms_buf aad = {0};
    kms_err rc = kms_blob_parse(data, len, &b);

    if (rc != KMS_OK)
        return rc;
    if (memcmp(b.version_id, version_id, 16) != 0)
        return KMS_E_KEY_VERSION_NOT_FOUND; /* the service would not find the version */
    rc = kms_blob_aad(b.header, ctx, &aad);
    if (rc == KMS_OK)
        rc = kms_aead_open(b.alg, key_for(b.alg), kms_aead_key_len(b.alg), b.iv,
                           (const uint8_t *)aad.data, aad.len, b.ct, b.ct_len, b.tag, pt_out);
    *pt_len = b.ct_len;
    kms_buf_free(&aad);
    return rc;
}

static void test_header_layout(void **state)
{
    uint8_t header[KMS_BLOB_HEADER_LEN];

    (void)state;
    assert_int_equal(KMS_BLOB_OVERHEAD, 46);
    kms_blob_write_header(header, KMS_AEAD_SM4_GCM, version_id);
    assert_int_equal(header[0], KMS_BLOB_FORMAT_V1);
    assert_int_equal(header[1], 3);
    assert_memory_equal(header + 2, version_id, 16);
    kms_blob_write_header(header, KMS_AEAD_AES_256_GCM, version_id);
    assert_int_equal(header[1], 1);
}

static void test_parse_well_formed(void **state)
{
    uint8_t data[KMS_BLOB_OVERHEAD + 5];
    struct kms_blob b;

    (void)state;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)i;
    kms_blob_write_header(data, KMS_AEAD_AES_128_GCM, version_id);
    assert_int_equal(kms_blob_parse(data, sizeof(data), &b), KMS_OK);
    assert_ptr_equal(b.header, data);
    assert_int_equal(b.format, 1);
    assert_int_equal(b.alg, KMS_AEAD_AES_128_GCM);
    assert_memory_equal(b.version_id, version_id, 16);
    assert_ptr_equal(b.iv, data + 18);
    assert_ptr_equal(b.ct, data + 30);
    assert_int_equal(b.ct_len, 5);
    assert_ptr_equal(b.tag, data + 35);
    assert_int_equal(b.tag[0], 35);

    /* An empty ciphertext is a valid shape (the tag still has to verify). */
    assert_int_equal(kms_blob_parse(data, KMS_BLOB_OVERHEAD, &b), KMS_OK);
    assert_int_equal(b.ct_len, 0);
    assert_ptr_equal(b.tag, data + 30);
}

static void test_unknown_format_or_algorithm(void **state)
{
    static const uint8_t bad_formats[] = {0, 2, 0x81, 255};
    static const uint8_t bad_algs[] = {0, 4, 5, 0x80, 255};
    uint8_t data[KMS_BLOB_OVERHEAD + 8] = {0};
    struct kms_blob b;

    (void)state;
    kms_blob_write_header(data, KMS_AEAD_AES_256_GCM, version_id);
    assert_int_equal(kms_blob_parse(data, sizeof(data), &b), KMS_OK);
    for (size_t i = 0; i < sizeof(bad_formats); i++) {
        data[0] = bad_formats[i];
        assert_int_equal(kms_blob_parse(data, sizeof(data), &b), KMS_E_INVALID_PARAMETER);
    }
    data[0] = KMS_BLOB_FORMAT_V1;
    for (size_t i = 0; i < sizeof(bad_algs); i++) {
        data[1] = bad_algs[i];
        assert_int_equal(kms_blob_parse(data, sizeof(data), &b), KMS_E_INVALID_PARAMETER);
    }
    assert_int_equal(kms_blob_parse(NULL, 0, &b), KMS_E_INVALID_PARAMETER);
}

static void test_every_truncation_rejected(void **state)
{
    static const char msg[] = "attack at dawn";
    struct kms_buf blob = {0};
    uint8_t out[64];
    size_t out_len;
    struct kms_blob b;

    (void)state;
    seal_blob(KMS_AEAD_AES_256_GCM, NULL, (const uint8_t *)msg, sizeof(msg) - 1, &blob);
    assert_int_equal(open_blob((uint8_t *)blob.data, blob.len, NULL, out, &out_len), KMS_OK);
    assert_int_equal(out_len, sizeof(msg) - 1);
    assert_memory_equal(out, msg, out_len);
    for (size_t n = 0; n < blob.len; n++) {
        /* Too short to hold a header, IV and tag: the parser says so itself. */
        if (n < KMS_BLOB_OVERHEAD)
            assert_int_equal(kms_blob_parse((uint8_t *)blob.data, n, &b), KMS_E_INVALID_PARAMETER);
        /* Longer prefixes parse (shape only) but the tag is then read from the wrong place. */
        assert_int_equal(open_blob((uint8_t *)blob.data, n, NULL, out, &out_len),
                         KMS_E_INVALID_PARAMETER);
    }
    kms_buf_free(&blob);
}

/* Every bit of header, IV, ciphertext and tag is covered by the tag or rejected by the parser. */
static void test_any_flipped_bit_fails(void **state)
{
    static const enum kms_aead_alg algs[] = {KMS_AEAD_AES_256_GCM, KMS_AEAD_AES_128_GCM,
                                             KMS_AEAD_SM4_GCM};
    static const char json[] = "{\"purpose\":\"test\",\"n\":1}";
    struct kms_context ctx = {0};
    uint8_t pt[33], out[33];
    size_t out_len;

    (void)state;
    for (size_t i = 0; i < sizeof(pt); i++)
        pt[i] = (uint8_t)(i * 7);
    assert_int_equal(kms_context_parse_json(&ctx, json, strlen(json)), KMS_OK);
    for (size_t a = 0; a < KMS_ARRAY_LEN(algs); a++) {
        struct kms_buf blob = {0};
        uint8_t *p;

        seal_blob(algs[a], &ctx, pt, sizeof(pt), &blob);
        p = (uint8_t *)blob.data;
        for (size_t bit = 0; bit < blob.len * 8; bit++) {
            kms_err rc;

            p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            rc = open_blob(p, blob.len, &ctx, out, &out_len);
            if (bit / 8 >= 2 && bit / 8 < KMS_BLOB_HEADER_LEN)
                assert_int_equal(rc, KMS_E_KEY_VERSION_NOT_FOUND); /* version id bits */
            else
                assert_int_equal(rc, KMS_E_INVALID_PARAMETER);
            p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        assert_int_equal(open_blob(p, blob.len, &ctx, out, &out_len), KMS_OK);
        assert_memory_equal(out, pt, sizeof(pt));
        kms_buf_free(&blob);
    }
    kms_context_free(&ctx);
}

/*
 * The version id is in the AAD, not only used to find the key: a blob whose header names another
 * version of the same key material does not open, even when the service resolves it.
 */
static void test_version_id_is_authenticated(void **state)
{
    struct kms_buf blob = {0}, aad = {0};
    struct kms_blob b;
    uint8_t pt[4] = {1, 2, 3, 4}, out[4];

    (void)state;
    seal_blob(KMS_AEAD_AES_128_GCM, NULL, pt, sizeof(pt), &blob);
    blob.data[2 + 15] ^= 0x40;
    assert_int_equal(kms_blob_parse((uint8_t *)blob.data, blob.len, &b), KMS_OK);
    assert_int_equal(kms_blob_aad(b.header, NULL, &aad), KMS_OK);
    assert_int_equal(kms_aead_open(b.alg, key_for(b.alg), 16, b.iv, (uint8_t *)aad.data, aad.len,
                                   b.ct, b.ct_len, b.tag, out),
                     KMS_E_INVALID_PARAMETER);
    kms_buf_free(&aad);
    kms_buf_free(&blob);
}

static void test_context_binding(void **state)
{
    static const char *const same[] = {"{\"a\":\"1\",\"b\":\"2\"}", "{\"b\":\"2\",\"a\":\"1\"}",
                                       " { \"b\" : 2 , \"a\" : 1 } "};
    static const char *const other[] = {"{\"a\":\"1\"}", "{\"a\":\"1\",\"b\":\"3\"}",
                                        "{\"a\":\"1\",\"b\":\"2\",\"c\":\"\"}", "{\"a\":\"12\"}",
                                        "{}"};
    struct kms_context enc = {0};
    struct kms_buf blob = {0};
    uint8_t pt[8] = "payload", out[8];
    size_t out_len;

    (void)state;
    assert_int_equal(kms_context_parse_json(&enc, same[0], strlen(same[0])), KMS_OK);
    seal_blob(KMS_AEAD_SM4_GCM, &enc, pt, sizeof(pt), &blob);
    for (size_t i = 0; i < KMS_ARRAY_LEN(same); i++) {
        struct kms_context dec = {0};

        assert_int_equal(kms_context_parse_json(&dec, same[i], strlen(same[i])), KMS_OK);
        assert_int_equal(open_blob((uint8_t *)blob.data, blob.len, &dec, out, &out_len), KMS_OK);
        assert_memory_equal(out, pt, sizeof(pt));
        kms_context_free(&dec);
    }
    for (size_t i = 0; i < KMS_ARRAY_LEN(other); i++) {
        struct kms_context dec = {0};

        assert_int_equal(kms_context_parse_json(&dec, other[i], strlen(other[i])), KMS_OK);
        assert_int_equal(open_blob((uint8_t *)blob.data, blob.len, &dec, out, &out_len),
                         KMS_E_INVALID_PARAMETER);
        kms_context_free(&dec);
    }
    /* No context at all. */
    assert_int_equal(open_blob((uint8_t *)blob.data, blob.len, NULL, out, &out_len),
                     KMS_E_INVALID_PARAMETER);
    kms_buf_free(&blob);
    kms_context_free(&enc);
}

/* A blob sealed without context opens with NULL, an empty context, or "{}" - all the same AAD. */
static void test_empty_context_is_no_context(void **state)
{
    struct kms_context empty = {0}, braces = {0};
    struct kms_buf blob = {0};
    uint8_t pt[3] = {9, 8, 7}, out[3];
    size_t out_len;

    (void)state;
    assert_int_equal(kms_context_parse_json(&braces, "{}", 2), KMS_OK);
    seal_blob(KMS_AEAD_AES_256_GCM, NULL, pt, sizeof(pt), &blob);
    assert_int_equal(open_blob((uint8_t *)blob.data, blob.len, &empty, out, &out_len), KMS_OK);
    assert_int_equal(open_blob((uint8_t *)blob.data, blob.len, &braces, out, &out_len), KMS_OK);
    assert_memory_equal(out, pt, sizeof(pt));
    kms_buf_free(&blob);
    kms_context_free(&braces);
}

static void test_aad_bytes(void **state)
{
    static const uint8_t want_tail[] = {0, 0, 0, 1, 'k', 0, 0, 0, 2, 'v', 'w'};
    struct kms_context ctx = {0};
    struct kms_buf aad = {0};
    uint8_t header[KMS_BLOB_HEADER_LEN];

    (void)state;
    kms_blob_write_header(header, KMS_AEAD_AES_128_GCM, version_id);
    assert_int_equal(kms_blob_aad(header, NULL, &aad), KMS_OK);
    assert_int_equal(aad.len, KMS_BLOB_HEADER_LEN);
    assert_memory_equal(aad.data, header, KMS_BLOB_HEADER_LEN);
    kms_buf_reset(&aad);
    assert_int_equal(kms_context_add(&ctx, "k", 1, "vw", 2), KMS_OK);
    assert_int_equal(kms_blob_aad(header, &ctx, &aad), KMS_OK);
    assert_int_equal(aad.len, KMS_BLOB_HEADER_LEN + sizeof(want_tail));
    assert_memory_equal(aad.data, header, KMS_BLOB_HEADER_LEN);
    assert_memory_equal(aad.data + KMS_BLOB_HEADER_LEN, want_tail, sizeof(want_tail));
    kms_buf_free(&aad);
    kms_context_free(&ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_parse_well_formed),
        cmocka_unit_test(test_unknown_format_or_algorithm),
        cmocka_unit_test(test_every_truncation_rejected),
        cmocka_unit_test(test_any_flipped_bit_fails),
        cmocka_unit_test(test_version_id_is_authenticated),
        cmocka_unit_test(test_context_binding),
        cmocka_unit_test(test_empty_context_is_no_context),
        cmocka_unit_test(test_aad_bytes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
