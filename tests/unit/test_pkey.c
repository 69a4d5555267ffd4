/*
 * test_pkey.c - src/crypto/pkey.c: algorithm names and limits, SubjectPublicKeyInfo parsing
 * (and its refusals), PEM, PKCS#8, the two SM2 ciphertext layouts both ways (with malformed DER),
 * plaintext and digest limits, and signatures and ciphertexts checked against OpenSSL's own
 * high-level routes (EVP_DigestVerify on the message, SM2 with the default distinguishing ID),
 * so that kmsd's "sign a precomputed digest" means what outside verifiers expect; and signers
 * (contexts kept per thread) giving the same answers from many threads at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "kms/crypto.h"

/* Key pairs are slow to make: one of each spec for the whole program. */
static EVP_PKEY *keys[KMS_SPEC_COUNT];

static EVP_PKEY *key_of(enum kms_key_spec spec)
{
    if (keys[spec] == NULL)
        assert_int_equal(kms_pkey_generate(spec, &keys[spec]), KMS_OK);
    return keys[spec];
}

static void buf_reset(struct kms_buf *b)
{
    kms_buf_free(b);
    memset(b, 0, sizeof(*b));
}

static void test_names_and_limits(void **state)
{
    enum kms_sign_alg s;
    enum kms_pk_alg p;
    enum kms_key_spec w;

    assert_true(kms_sign_alg_parse("RSA_PSS_SHA_256", &s) && s == KMS_SIGN_RSA_PSS_SHA_256);
    assert_true(kms_sign_alg_parse("SM2DSA", &s) && s == KMS_SIGN_SM2DSA);
    assert_false(kms_sign_alg_parse("rsa_pss_sha_256", &s)); /* case-sensitive */
    assert_false(kms_sign_alg_parse("ECDSA_SHA_384", &s));
    assert_true(kms_pk_alg_parse("RSAES_OAEP_SHA_1", &p) && p == KMS_PK_RSAES_OAEP_SHA_1);
    assert_false(kms_pk_alg_parse("RSA_RAW", &p));
    assert_string_equal(kms_pk_alg_name(KMS_PK_SM2PKE), "SM2PKE");

    assert_true(kms_sign_alg_fits(KMS_SPEC_RSA_3072, KMS_SIGN_RSA_PKCS1_SHA_256));
    assert_true(kms_sign_alg_fits(KMS_SPEC_EC_P256K, KMS_SIGN_ECDSA_SHA_256));
    assert_false(kms_sign_alg_fits(KMS_SPEC_EC_SM2, KMS_SIGN_ECDSA_SHA_256));
    assert_false(kms_sign_alg_fits(KMS_SPEC_RSA_2048, KMS_SIGN_ECDSA_SHA_256));
    assert_false(kms_sign_alg_fits(KMS_SPEC_AES_256, KMS_SIGN_RSA_PSS_SHA_256));
    assert_false(kms_pk_alg_fits(KMS_SPEC_EC_P256, KMS_PK_SM2PKE));
    assert_true(kms_pk_alg_fits(KMS_SPEC_EC_SM2, KMS_PK_SM2PKE));

    /* spec/algorithms.md §7.2. */
    assert_int_equal(kms_pk_max_plaintext(KMS_SPEC_RSA_2048, KMS_PK_RSAES_OAEP_SHA_256), 190);
    assert_int_equal(kms_pk_max_plaintext(KMS_SPEC_RSA_2048, KMS_PK_RSAES_OAEP_SHA_1), 214);
    assert_int_equal(kms_pk_max_plaintext(KMS_SPEC_RSA_2048, KMS_PK_RSAES_PKCS1_V1_5), 245);
    assert_int_equal(kms_pk_max_plaintext(KMS_SPEC_RSA_3072, KMS_PK_RSAES_OAEP_SHA_256), 318);
    assert_int_equal(kms_pk_max_plaintext(KMS_SPEC_RSA_3072, KMS_PK_RSAES_OAEP_SHA_1), 342);
    assert_int_equal(kms_pk_max_plaintext(KMS_SPEC_EC_SM2, KMS_PK_SM2PKE), 6047);
    assert_int_equal(kms_pk_max_plaintext(KMS_SPEC_EC_SM2, KMS_PK_RSAES_OAEP_SHA_1), 0);
    assert_int_equal(kms_pk_max_plaintext(KMS_SPEC_EC_P256, KMS_PK_SM2PKE), 0);

    assert_true(kms_wrapping_spec_parse("RSA_2048", &w) && w == KMS_SPEC_RSA_2048);
    assert_true(kms_wrapping_spec_parse("EC_SM2", &w) && w == KMS_SPEC_EC_SM2);
    assert_false(kms_wrapping_spec_parse("RSA_1024", &w));
    assert_false(kms_wrapping_spec_parse("RSA_3072", &w));
}

static void test_spki_parse(void **state)
{
    static const enum kms_key_spec specs[] = {KMS_SPEC_RSA_2048, KMS_SPEC_RSA_3072,
                                              KMS_SPEC_EC_P256, KMS_SPEC_EC_P256K, KMS_SPEC_EC_SM2};
    struct kms_buf der = {0};
    EVP_PKEY *pub;
    enum kms_key_spec spec;

    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        buf_reset(&der);
        assert_int_equal(kms_pkey_public_der(key_of(specs[i]), &der), KMS_OK);
        assert_int_equal(kms_pkey_parse_public((uint8_t *)der.data, der.len, &pub, &spec), KMS_OK);
        assert_int_equal(spec, specs[i]);
        assert_int_equal(kms_pkey_spec(pub), specs[i]);
        kms_pkey_free(pub);
        /* Truncated, one byte too many, and a damaged tag are all refused. */
        assert_int_equal(kms_pkey_parse_public((uint8_t *)der.data, der.len - 1, &pub, NULL),
                         KMS_E_INVALID_PARAMETER);
        assert_null(pub);
        assert_int_equal(kms_buf_append_char(&der, 0), KMS_OK);
        assert_int_equal(kms_pkey_parse_public((uint8_t *)der.data, der.len, &pub, NULL),
                         KMS_E_INVALID_PARAMETER);
        der.data[0] = 0x31;
        assert_int_equal(kms_pkey_parse_public((uint8_t *)der.data, der.len - 1, &pub, NULL),
                         KMS_E_INVALID_PARAMETER);
    }
    assert_int_equal(kms_pkey_parse_public((const uint8_t *)"", 0, &pub, NULL),
                     KMS_E_INVALID_PARAMETER);
    assert_int_equal(kms_pkey_parse_public((const uint8_t *)"garbage!", 8, &pub, NULL),
                     KMS_E_INVALID_PARAMETER);

    /* Well-formed keys of specs kmsd does not have: RSA-1024, P-384, Ed25519. */
    {
        EVP_PKEY *others[3] = {EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024),
                               EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"),
                               EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")};

        for (size_t i = 0; i < 3; i++) {
            assert_non_null(others[i]);
            buf_reset(&der);
            assert_int_equal(kms_pkey_public_der(others[i], &der), KMS_OK);
            assert_int_equal(kms_pkey_parse_public((uint8_t *)der.data, der.len, &pub, NULL),
                             KMS_E_INVALID_PARAMETER);
            assert_int_equal(kms_pkey_spec(others[i]), KMS_SPEC_NONE);
            EVP_PKEY_free(others[i]);
        }
    }
    /* RSA with a degenerate public exponent (1: no encryption at all; 2: even). */
    for (unsigned long bad_e = 1; bad_e <= 2; bad_e++) {
        BIGNUM *n = NULL, *e = BN_new();
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params;
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        EVP_PKEY *weird = NULL;

        assert_int_equal(EVP_PKEY_get_bn_param(key_of(KMS_SPEC_RSA_2048), "n", &n), 1);
        BN_set_word(e, bad_e);
        OSSL_PARAM_BLD_push_BN(bld, "n", n);
        OSSL_PARAM_BLD_push_BN(bld, "e", e);
        params = OSSL_PARAM_BLD_to_param(bld);
        assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
        assert_int_equal(EVP_PKEY_fromdata(ctx, &weird, EVP_PKEY_PUBLIC_KEY, params), 1);
        buf_reset(&der);
        assert_int_equal(kms_pkey_public_der(weird, &der), KMS_OK);
        assert_int_equal(kms_pkey_parse_public((uint8_t *)der.data, der.len, &pub, NULL),
                         KMS_E_INVALID_PARAMETER);
        EVP_PKEY_free(weird);
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        BN_free(n);
        BN_free(e);
    }
    kms_buf_free(&der);
}

static void test_pem_and_pkcs8(void **state)
{
    struct kms_buf der = {0}, pem = {0}, priv = {0}, der2 = {0};
    EVP_PKEY *back, *loaded;
    BIO *bio;
    const char *line;

    assert_int_equal(kms_pkey_public_der(key_of(KMS_SPEC_RSA_2048), &der), KMS_OK);
    assert_int_equal(kms_pkey_public_pem((uint8_t *)der.data, der.len, &pem), KMS_OK);
    assert_true(strncmp(pem.data, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
    assert_true(pem.len > 26 && strcmp(pem.data + pem.len - 25, "-----END PUBLIC KEY-----\n") == 0);
    /* Lines of at most 64 characters. */
    for (line = pem.data; *line; line = strchr(line, '\n') + 1)
        assert_true(strchr(line, '\n') - line <= 64);
    /* OpenSSL reads it back to the same key. */
    bio = BIO_new_mem_buf(pem.data, (int)pem.len);
    back = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(back);
    assert_int_equal(kms_pkey_public_der(back, &der2), KMS_OK);
    assert_int_equal(der2.len, der.len);
    assert_memory_equal(der2.data, der.data, der.len);
    EVP_PKEY_free(back);

    /* PKCS#8 round trip keeps the spec (an SM2 key stays SM2, not plain EC). */
    assert_int_equal(kms_pkey_private_der(key_of(KMS_SPEC_EC_SM2), &priv), KMS_OK);
    assert_int_equal((uint8_t)priv.data[0], 0x30);
    assert_int_equal(kms_pkey_from_private_der((uint8_t *)priv.data, priv.len, &loaded), KMS_OK);
    assert_int_equal(kms_pkey_spec(loaded), KMS_SPEC_EC_SM2);
    assert_int_equal(EVP_PKEY_eq(loaded, key_of(KMS_SPEC_EC_SM2)), 1);
    kms_pkey_free(loaded);
    assert_int_equal(kms_pkey_from_private_der((uint8_t *)priv.data, priv.len - 1, &loaded),
                     KMS_E_INTERNAL);
    kms_buf_free_secret(&priv);
    kms_buf_free(&der);
    kms_buf_free(&der2);
    kms_buf_free(&pem);
}

/* A raw SM2 ciphertext with chosen coordinates, C3 and C2 bytes. */
static void make_raw(uint8_t *raw, uint8_t x0, uint8_t y0, size_t c2_len)
{
    for (size_t i = 0; i < KMS_SM2_OVERHEAD + c2_len; i++)
        raw[i] = (uint8_t)(i * 7 + 3);
    raw[0] = 0x04;
    raw[1] = x0;
    raw[33] = y0;
}

static void test_sm2_layout_round_trip(void **state)
{
    static uint8_t raw[KMS_SM2_OVERHEAD + KMS_SM2_PLAINTEXT_MAX + 1];
    static const struct {
        uint8_t x0, y0;
        size_t c2_len;
    } cases[] = {
        {0x12, 0x34, 1},   {0x80, 0xff, 16},  /* high bit: INTEGER needs a 0x00 pad */
        {0x00, 0x00, 100},                    /* leading zero bytes are dropped */
        {0x7f, 0x00, 127}, {0x01, 0x81, 128}, /* C2 length forms 0x81 and 0x82 */
        {0x55, 0x55, 300}, {0xaa, 0x01, KMS_SM2_PLAINTEXT_MAX},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kms_buf der = {0}, back = {0};
        size_t len = KMS_SM2_OVERHEAD + cases[i].c2_len;

        make_raw(raw, cases[i].x0, cases[i].y0, cases[i].c2_len);
        if (cases[i].x0 == 0)
            raw[2] = 0; /* two leading zero bytes in x */
        assert_int_equal(kms_sm2_ct_raw_to_der(raw, len, &der), KMS_OK);
        assert_int_equal((uint8_t)der.data[0], 0x30);
        assert_int_equal(kms_sm2_ct_der_to_raw((uint8_t *)der.data, der.len, &back), KMS_OK);
        assert_int_equal(back.len, len);
        assert_memory_equal(back.data, raw, len);
        kms_buf_free(&der);
        kms_buf_free(&back);
    }
    /* Exact bytes for a small case: x = 0x80 needs a pad, y = 0x00..01 shrinks to one byte. */
    {
        uint8_t small[KMS_SM2_OVERHEAD + 2];
        struct kms_buf der = {0};

        memset(small, 0, sizeof(small));
        small[0] = 0x04;
        small[1] = 0x80;
        small[64] = 0x01; /* y = 1 */
        memset(small + 65, 0xc3, 32);
        small[97] = 0xaa;
        small[98] = 0xbb;
        assert_int_equal(kms_sm2_ct_raw_to_der(small, sizeof(small), &der), KMS_OK);
        /* 30 L | 02 21 00 80 00.. | 02 01 01 | 04 20 c3.. | 04 02 aa bb */
        assert_int_equal(der.len, 2 + 35 + 3 + 34 + 4);
        assert_int_equal((uint8_t)der.data[1], 35 + 3 + 34 + 4);
        assert_memory_equal(der.data + 2, "\x02\x21\x00\x80", 4);
        assert_memory_equal(der.data + 37, "\x02\x01\x01\x04\x20", 5);
        assert_memory_equal(der.data + 74, "\x04\x02\xaa\xbb", 4);
        kms_buf_free(&der);
    }
}

static void test_sm2_layout_refusals(void **state)
{
    static uint8_t raw[KMS_SM2_OVERHEAD + KMS_SM2_PLAINTEXT_MAX + 1];
    struct kms_buf der = {0}, out = {0};
    uint8_t *d;

    make_raw(raw, 0x11, 0x22, 10);
    /* Raw: wrong first byte, too short, C2 one byte over the limit. */
    raw[0] = 0x02;
    assert_int_equal(kms_sm2_ct_raw_to_der(raw, KMS_SM2_OVERHEAD + 10, &out),
                     KMS_E_INVALID_PARAMETER);
    raw[0] = 0x04;
    assert_int_equal(kms_sm2_ct_raw_to_der(raw, KMS_SM2_OVERHEAD - 1, &out),
                     KMS_E_INVALID_PARAMETER);
    assert_int_equal(kms_sm2_ct_raw_to_der(raw, sizeof(raw), &out), KMS_E_INVALID_PARAMETER);

    assert_int_equal(kms_sm2_ct_raw_to_der(raw, KMS_SM2_OVERHEAD + 10, &der), KMS_OK);
    d = (uint8_t *)der.data;
    /* Layout: 30 72 | 02 20 x(32) | 02 20 y(32) | 04 20 c3(32) | 04 0a c2(10) */
    assert_int_equal(der.len, 2 + 34 + 34 + 34 + 12);
    assert_int_equal(d[1], 0x72);
#define REFUSED(bytes, n)                                                                          \
    assert_int_equal(kms_sm2_ct_der_to_raw((bytes), (n), &out), KMS_E_INVALID_PARAMETER)
    REFUSED(d, der.len - 1); /* truncated */
    assert_int_equal(kms_buf_append_char(&der, 0), KMS_OK);
    d = (uint8_t *)der.data;
    REFUSED(d, der.len); /* a trailing byte after the SEQUENCE */
    der.len--;
    d[0] = 0x31; /* SET, not SEQUENCE */
    REFUSED(d, der.len);
    d[0] = 0x30;
    d[2] = 0x03; /* x is not an INTEGER */
    REFUSED(d, der.len);
    d[2] = 0x02;
    d[4] = 0x91; /* x negative */
    REFUSED(d, der.len);
    d[4] = 0x11;
    d[71] = 0x1f; /* C3 length 31 instead of 32 (then C2 misparses) */
    REFUSED(d, der.len);
    d[71] = 0x20;
    assert_int_equal(kms_sm2_ct_der_to_raw(d, der.len, &out), KMS_OK); /* the control */
    buf_reset(&out);
    /* Non-minimal INTEGER: x = 00 11 ... (33 bytes, leading zero not needed). */
    {
        uint8_t bad[2 + 35 + 34 + 34 + 12];

        bad[0] = 0x30;
        bad[1] = sizeof(bad) - 2;
        bad[2] = 0x02;
        bad[3] = 0x21;
        bad[4] = 0x00;
        memcpy(bad + 5, d + 4, 32);
        memcpy(bad + 37, d + 36, sizeof(bad) - 37);
        REFUSED(bad, sizeof(bad));
        /* Long-form length where the short form fits: 30 81 72. */
        bad[0] = 0x30;
        bad[1] = 0x81;
        bad[2] = 0x72;
        memcpy(bad + 3, d + 2, 0x72);
        REFUSED(bad, 3 + 0x72);
        /* Indefinite length. */
        bad[1] = 0x80;
        REFUSED(bad, 3 + 0x72);
    }
    /* A fifth element inside the SEQUENCE. */
    {
        uint8_t extra[2 + 0x72 + 2];

        memcpy(extra, d, der.len);
        extra[1] = 0x74;
        extra[2 + 0x72] = 0x05;
        extra[3 + 0x72] = 0x00;
        REFUSED(extra, sizeof(extra));
    }
#undef REFUSED
    kms_buf_free(&der);
    kms_buf_free(&out);
}

static void test_encrypt_limits(void **state)
{
    static uint8_t pt[KMS_SM2_PLAINTEXT_MAX + 1];
    static const struct {
        enum kms_key_spec spec;
        enum kms_pk_alg alg;
        size_t max;
    } cases[] = {
        {KMS_SPEC_RSA_2048, KMS_PK_RSAES_OAEP_SHA_256, 190},
        {KMS_SPEC_RSA_2048, KMS_PK_RSAES_OAEP_SHA_1, 214},
        {KMS_SPEC_RSA_2048, KMS_PK_RSAES_PKCS1_V1_5, 245},
        {KMS_SPEC_RSA_3072, KMS_PK_RSAES_OAEP_SHA_256, 318},
        {KMS_SPEC_RSA_3072, KMS_PK_RSAES_OAEP_SHA_1, 342},
        {KMS_SPEC_EC_SM2, KMS_PK_SM2PKE, 6047},
    };

    RAND_bytes(pt, sizeof(pt));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY *k = key_of(cases[i].spec);
        struct kms_buf ct = {0}, back = {0};

        assert_int_equal(kms_pkey_encrypt(k, cases[i].alg, pt, cases[i].max, &ct), KMS_OK);
        if (cases[i].alg == KMS_PK_SM2PKE)
            assert_int_equal(ct.len, cases[i].max + KMS_SM2_OVERHEAD); /* 6144 */
        else
            assert_int_equal(ct.len, (size_t)EVP_PKEY_get_size(k));
        assert_int_equal(kms_pkey_decrypt(k, cases[i].alg, (uint8_t *)ct.data, ct.len, &back),
                         KMS_OK);
        assert_int_equal(back.len, cases[i].max);
        assert_memory_equal(back.data, pt, cases[i].max);
        buf_reset(&ct);
        assert_int_equal(kms_pkey_encrypt(k, cases[i].alg, pt, cases[i].max + 1, &ct),
                         KMS_E_INVALID_PARAMETER);
        assert_int_equal(kms_pkey_encrypt(k, cases[i].alg, pt, 0, &ct), KMS_E_INVALID_PARAMETER);
        assert_int_equal(ct.len, 0);
        kms_buf_free(&ct);
        kms_buf_free_secret(&back);
    }
    /* An algorithm of another key family. */
    {
        struct kms_buf ct = {0};

        assert_int_equal(kms_pkey_encrypt(key_of(KMS_SPEC_RSA_2048), KMS_PK_SM2PKE, pt, 10, &ct),
                         KMS_E_UNSUPPORTED_ALGORITHM);
        assert_int_equal(
            kms_pkey_encrypt(key_of(KMS_SPEC_EC_SM2), KMS_PK_RSAES_OAEP_SHA_256, pt, 10, &ct),
            KMS_E_UNSUPPORTED_ALGORITHM);
        assert_int_equal(
            kms_pkey_encrypt(key_of(KMS_SPEC_EC_P256), KMS_PK_RSAES_OAEP_SHA_256, pt, 10, &ct),
            KMS_E_UNSUPPORTED_ALGORITHM);
        kms_buf_free(&ct);
    }
}

/* OpenSSL's own RSA-OAEP encryption (any hash) of pt under k. */
static void openssl_rsa_encrypt(EVP_PKEY *k, const EVP_MD *oaep_md, const uint8_t *pt, size_t len,
                                struct kms_buf *out)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
    size_t n = 0;

    assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
    if (oaep_md != NULL) {
        assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, oaep_md) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, oaep_md) > 0);
    } else {
        assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0);
    }
    assert_int_equal(EVP_PKEY_encrypt(ctx, NULL, &n, pt, len), 1);
    assert_int_equal(kms_buf_reserve(out, n), KMS_OK);
    assert_int_equal(EVP_PKEY_encrypt(ctx, (uint8_t *)out->data, &n, pt, len), 1);
    out->len = n;
    EVP_PKEY_CTX_free(ctx);
}

static void test_decrypt_interop_and_refusals(void **state)
{
    EVP_PKEY *rsa = key_of(KMS_SPEC_RSA_2048), *sm2 = key_of(KMS_SPEC_EC_SM2);
    uint8_t pt[45];
    struct kms_buf ct = {0}, out = {0}, raw = {0};
    EVP_PKEY_CTX *ctx;
    size_t n = 0;

    RAND_bytes(pt, sizeof(pt));
    /* OpenSSL's OAEP-SHA256 opens with RSAES_OAEP_SHA_256 only. */
    openssl_rsa_encrypt(rsa, EVP_sha256(), pt, sizeof(pt), &ct);
    assert_int_equal(
        kms_pkey_decrypt(rsa, KMS_PK_RSAES_OAEP_SHA_256, (uint8_t *)ct.data, ct.len, &out), KMS_OK);
    assert_memory_equal(out.data, pt, sizeof(pt));
    buf_reset(&out);
    assert_int_equal(
        kms_pkey_decrypt(rsa, KMS_PK_RSAES_OAEP_SHA_1, (uint8_t *)ct.data, ct.len, &out),
        KMS_E_INVALID_PARAMETER);
    assert_int_equal(
        kms_pkey_decrypt(rsa, KMS_PK_RSAES_PKCS1_V1_5, (uint8_t *)ct.data, ct.len, &out),
        KMS_E_INVALID_PARAMETER);
    assert_int_equal(out.len, 0);
    /* Not one modulus long: refused before OpenSSL sees it. */
    assert_int_equal(
        kms_pkey_decrypt(rsa, KMS_PK_RSAES_OAEP_SHA_256, (uint8_t *)ct.data, ct.len - 1, &out),
        KMS_E_INVALID_PARAMETER);
    ct.data[10] ^= 1;
    assert_int_equal(
        kms_pkey_decrypt(rsa, KMS_PK_RSAES_OAEP_SHA_256, (uint8_t *)ct.data, ct.len, &out),
        KMS_E_INVALID_PARAMETER);
    buf_reset(&ct);
    openssl_rsa_encrypt(rsa, EVP_sha1(), pt, sizeof(pt), &ct);
    assert_int_equal(
        kms_pkey_decrypt(rsa, KMS_PK_RSAES_OAEP_SHA_1, (uint8_t *)ct.data, ct.len, &out), KMS_OK);
    assert_memory_equal(out.data, pt, sizeof(pt));
    buf_reset(&out);
    buf_reset(&ct);
    openssl_rsa_encrypt(rsa, NULL, pt, sizeof(pt), &ct);
    assert_int_equal(
        kms_pkey_decrypt(rsa, KMS_PK_RSAES_PKCS1_V1_5, (uint8_t *)ct.data, ct.len, &out), KMS_OK);
    assert_memory_equal(out.data, pt, sizeof(pt));
    buf_reset(&out);
    buf_reset(&ct);
    assert_int_equal(kms_pkey_decrypt(rsa, KMS_PK_SM2PKE, pt, sizeof(pt), &out),
                     KMS_E_UNSUPPORTED_ALGORITHM);

    /* SM2: OpenSSL writes DER; kmsd opens it, and its raw conversion. */
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, sm2, NULL);
    assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
    assert_int_equal(EVP_PKEY_encrypt(ctx, NULL, &n, pt, sizeof(pt)), 1);
    assert_int_equal(kms_buf_reserve(&ct, n), KMS_OK);
    assert_int_equal(EVP_PKEY_encrypt(ctx, (uint8_t *)ct.data, &n, pt, sizeof(pt)), 1);
    ct.len = n;
    EVP_PKEY_CTX_free(ctx);
    assert_int_equal((uint8_t)ct.data[0], 0x30);
    assert_int_equal(kms_pkey_decrypt(sm2, KMS_PK_SM2PKE, (uint8_t *)ct.data, ct.len, &out),
                     KMS_OK);
    assert_int_equal(out.len, sizeof(pt));
    assert_memory_equal(out.data, pt, sizeof(pt));
    buf_reset(&out);
    assert_int_equal(kms_sm2_ct_der_to_raw((uint8_t *)ct.data, ct.len, &raw), KMS_OK);
    assert_int_equal(raw.len, KMS_SM2_OVERHEAD + sizeof(pt));
    assert_int_equal(kms_pkey_decrypt(sm2, KMS_PK_SM2PKE, (uint8_t *)raw.data, raw.len, &out),
                     KMS_OK);
    assert_memory_equal(out.data, pt, sizeof(pt));
    buf_reset(&out);
    /* A flipped bit in C3 or C2, or C1 off the curve: one answer. */
    raw.data[70] ^= 1;
    assert_int_equal(kms_pkey_decrypt(sm2, KMS_PK_SM2PKE, (uint8_t *)raw.data, raw.len, &out),
                     KMS_E_INVALID_PARAMETER);
    raw.data[70] ^= 1;
    raw.data[raw.len - 1] ^= 1;
    assert_int_equal(kms_pkey_decrypt(sm2, KMS_PK_SM2PKE, (uint8_t *)raw.data, raw.len, &out),
                     KMS_E_INVALID_PARAMETER);
    raw.data[raw.len - 1] ^= 1;
    raw.data[5] ^= 1;
    assert_int_equal(kms_pkey_decrypt(sm2, KMS_PK_SM2PKE, (uint8_t *)raw.data, raw.len, &out),
                     KMS_E_INVALID_PARAMETER);
    raw.data[0] = 0x05; /* neither layout */
    assert_int_equal(kms_pkey_decrypt(sm2, KMS_PK_SM2PKE, (uint8_t *)raw.data, raw.len, &out),
                     KMS_E_INVALID_PARAMETER);
    assert_int_equal(out.len, 0);
    /* Another SM2 key cannot open it. */
    {
        EVP_PKEY *other = NULL;

        assert_int_equal(kms_pkey_generate(KMS_SPEC_EC_SM2, &other), KMS_OK);
        assert_int_equal(kms_pkey_decrypt(other, KMS_PK_SM2PKE, (uint8_t *)ct.data, ct.len, &out),
                         KMS_E_INVALID_PARAMETER);
        kms_pkey_free(other);
    }
    kms_buf_free(&ct);
    kms_buf_free(&raw);
    kms_buf_free_secret(&out);
}

/* Verifies a signature over message with OpenSSL's digest-and-verify route. */
static int openssl_verify_message(EVP_PKEY *k, enum kms_sign_alg alg, const uint8_t *msg,
                                  size_t len, const struct kms_buf *sig)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok;

    if (alg == KMS_SIGN_SM2DSA) {
        EVP_PKEY_CTX *sctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);

        /* The GM/T 0009 default ID: callers of SM2DSA compute Z_A with it. */
        assert_true(EVP_PKEY_CTX_set1_id(sctx, "1234567812345678", 16) > 0);
        EVP_MD_CTX_set_pkey_ctx(md, sctx);
        assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sm3(), NULL, k), 1);
        ok = EVP_DigestVerify(md, (const uint8_t *)sig->data, sig->len, msg, len);
        EVP_MD_CTX_free(md);
        EVP_PKEY_CTX_free(sctx);
        return ok;
    }
    assert_int_equal(EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, k), 1);
    if (alg == KMS_SIGN_RSA_PSS_SHA_256) {
        assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) > 0);
    }
    ok = EVP_DigestVerify(md, (const uint8_t *)sig->data, sig->len, msg, len);
    EVP_MD_CTX_free(md);
    return ok;
}

/* e = SM3(Z_A ‖ M), Z_A over the default ID (GB/T 32918.2 §5.5). */
static void sm2_digest(EVP_PKEY *k, const uint8_t *msg, size_t len, uint8_t e[32])
{
    static const char *const params[] = {
        "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC", /* a */
        "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", /* b */
        "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7", /* xG */
        "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0", /* yG */
    };
    uint8_t point[65], z[32], bytes[32];
    size_t point_len = 0;
    unsigned int n = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, point,
                                                     sizeof(point), &point_len),
                     1);
    assert_int_equal(point_len, 65);
    assert_int_equal(EVP_DigestInit_ex(md, EVP_sm3(), NULL), 1);
    EVP_DigestUpdate(md, "\x00\x80", 2); /* ENTL = 128 bits */
    EVP_DigestUpdate(md, "1234567812345678", 16);
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 32; j++) {
            char hex[3] = {params[i][2 * j], params[i][2 * j + 1], 0};
            bytes[j] = (uint8_t)strtoul(hex, NULL, 16);
        }
        EVP_DigestUpdate(md, bytes, 32);
    }
    EVP_DigestUpdate(md, point + 1, 64);
    EVP_DigestFinal_ex(md, z, &n);
    EVP_DigestInit_ex(md, EVP_sm3(), NULL);
    EVP_DigestUpdate(md, z, 32);
    EVP_DigestUpdate(md, msg, len);
    EVP_DigestFinal_ex(md, e, &n);
    EVP_MD_CTX_free(md);
}

static void test_sign_verify(void **state)
{
    static const struct {
        enum kms_key_spec spec;
        enum kms_sign_alg alg;
        size_t fixed_len; /* 0: DER, varies */
    } cases[] = {
        {KMS_SPEC_RSA_2048, KMS_SIGN_RSA_PSS_SHA_256, 256},
        {KMS_SPEC_RSA_2048, KMS_SIGN_RSA_PKCS1_SHA_256, 256},
        {KMS_SPEC_RSA_3072, KMS_SIGN_RSA_PSS_SHA_256, 384},
        {KMS_SPEC_RSA_3072, KMS_SIGN_RSA_PKCS1_SHA_256, 384},
        {KMS_SPEC_EC_P256, KMS_SIGN_ECDSA_SHA_256, 0},
        {KMS_SPEC_EC_P256K, KMS_SIGN_ECDSA_SHA_256, 0},
        {KMS_SPEC_EC_SM2, KMS_SIGN_SM2DSA, 0},
    };
    static const uint8_t msg[] = "message signed through kmsd's digest route";
    uint8_t digest[33];
    bool valid;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY *k = key_of(cases[i].spec);
        struct kms_buf sig = {0}, pubder = {0};
        EVP_PKEY *pub;
        unsigned int n = 0;

        if (cases[i].alg == KMS_SIGN_SM2DSA)
            sm2_digest(k, msg, sizeof(msg), digest);
        else
            EVP_Digest(msg, sizeof(msg), digest, &n, EVP_sha256(), NULL);
        assert_int_equal(kms_pkey_sign(k, cases[i].alg, digest, 32, &sig), KMS_OK);
        if (cases[i].fixed_len)
            assert_int_equal(sig.len, cases[i].fixed_len);
        else
            assert_int_equal((uint8_t)sig.data[0], 0x30);
        /* Outside verifiers hash the message themselves and agree. */
        assert_int_equal(openssl_verify_message(k, cases[i].alg, msg, sizeof(msg), &sig), 1);
        /* kmsd's verify with only the public half. */
        assert_int_equal(kms_pkey_public_der(k, &pubder), KMS_OK);
        assert_int_equal(kms_pkey_parse_public((uint8_t *)pubder.data, pubder.len, &pub, NULL),
                         KMS_OK);
        assert_int_equal(
            kms_pkey_verify(pub, cases[i].alg, digest, 32, (uint8_t *)sig.data, sig.len, &valid),
            KMS_OK);
        assert_true(valid);
        /* Another digest, a damaged signature, a truncated one, none: false, not an error. */
        digest[0] ^= 0x80;
        assert_int_equal(
            kms_pkey_verify(pub, cases[i].alg, digest, 32, (uint8_t *)sig.data, sig.len, &valid),
            KMS_OK);
        assert_false(valid);
        digest[0] ^= 0x80;
        sig.data[sig.len - 1] ^= 1;
        assert_int_equal(
            kms_pkey_verify(pub, cases[i].alg, digest, 32, (uint8_t *)sig.data, sig.len, &valid),
            KMS_OK);
        assert_false(valid);
        sig.data[sig.len - 1] ^= 1;
        assert_int_equal(kms_pkey_verify(pub, cases[i].alg, digest, 32, (uint8_t *)sig.data,
                                         sig.len - 1, &valid),
                         KMS_OK);
        assert_false(valid);
        assert_int_equal(kms_pkey_verify(pub, cases[i].alg, digest, 32, NULL, 0, &valid), KMS_OK);
        assert_false(valid);
        /* Digest length must be 32. */
        assert_int_equal(kms_pkey_sign(k, cases[i].alg, digest, 31, &sig), KMS_E_INVALID_PARAMETER);
        assert_int_equal(kms_pkey_sign(k, cases[i].alg, digest, 33, &sig), KMS_E_INVALID_PARAMETER);
        assert_int_equal(
            kms_pkey_verify(pub, cases[i].alg, digest, 20, (uint8_t *)sig.data, sig.len, &valid),
            KMS_E_INVALID_PARAMETER);
        kms_pkey_free(pub);
        kms_buf_free(&sig);
        kms_buf_free(&pubder);
    }
    /* Algorithms of another key family. */
    {
        struct kms_buf sig = {0};

        assert_int_equal(
            kms_pkey_sign(key_of(KMS_SPEC_EC_SM2), KMS_SIGN_ECDSA_SHA_256, digest, 32, &sig),
            KMS_E_UNSUPPORTED_ALGORITHM);
        assert_int_equal(kms_pkey_sign(key_of(KMS_SPEC_EC_P256), KMS_SIGN_SM2DSA, digest, 32, &sig),
                         KMS_E_UNSUPPORTED_ALGORITHM);
        assert_int_equal(
            kms_pkey_sign(key_of(KMS_SPEC_RSA_2048), KMS_SIGN_ECDSA_SHA_256, digest, 32, &sig),
            KMS_E_UNSUPPORTED_ALGORITHM);
        assert_int_equal(kms_pkey_verify(key_of(KMS_SPEC_EC_P256), KMS_SIGN_RSA_PSS_SHA_256, digest,
                                         32, digest, 32, &valid),
                         KMS_E_UNSUPPORTED_ALGORITHM);
        kms_buf_free(&sig);
    }
}

/* The message of the signer tests and its digest under alg for key k. */
static const uint8_t signer_msg[] = "signed by a kms_signer";

static void signer_digest(EVP_PKEY *k, enum kms_sign_alg alg, uint8_t digest[32])
{
    unsigned int n = 0;

    if (alg == KMS_SIGN_SM2DSA)
        sm2_digest(k, signer_msg, sizeof(signer_msg), digest);
    else
        EVP_Digest(signer_msg, sizeof(signer_msg), digest, &n, EVP_sha256(), NULL);
}

/* A signer signs like kms_pkey_sign, again and again on its kept contexts, and refuses alike. */
static void test_signer(void **state)
{
    static const struct {
        enum kms_key_spec spec;
        enum kms_sign_alg alg;
    } cases[] = {
        {KMS_SPEC_RSA_2048, KMS_SIGN_RSA_PSS_SHA_256},
        {KMS_SPEC_RSA_2048, KMS_SIGN_RSA_PKCS1_SHA_256},
        {KMS_SPEC_RSA_3072, KMS_SIGN_RSA_PSS_SHA_256},
        {KMS_SPEC_EC_P256, KMS_SIGN_ECDSA_SHA_256},
        {KMS_SPEC_EC_P256K, KMS_SIGN_ECDSA_SHA_256},
        {KMS_SPEC_EC_SM2, KMS_SIGN_SM2DSA},
    };
    uint8_t digest[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY *k = key_of(cases[i].spec);
        struct kms_signer *signer = NULL;
        struct kms_buf first = {0}, sig = {0};

        assert_int_equal(kms_signer_new(k, &signer), KMS_OK);
        signer_digest(k, cases[i].alg, digest);
        assert_int_equal(kms_signer_sign(signer, cases[i].alg, digest, 32, &first), KMS_OK);
        assert_int_equal(
            openssl_verify_message(k, cases[i].alg, signer_msg, sizeof(signer_msg), &first), 1);
        for (int round = 0; round < 3; round++) {
            buf_reset(&sig);
            assert_int_equal(kms_signer_sign(signer, cases[i].alg, digest, 32, &sig), KMS_OK);
            assert_int_equal(
                openssl_verify_message(k, cases[i].alg, signer_msg, sizeof(signer_msg), &sig), 1);
            /* PKCS#1 v1.5 is deterministic; PSS salts and ECDSA/SM2 nonces are fresh each time. */
            if (cases[i].alg == KMS_SIGN_RSA_PKCS1_SHA_256)
                assert_memory_equal(sig.data, first.data, first.len);
            else
                assert_true(sig.len != first.len || memcmp(sig.data, first.data, sig.len) != 0);
        }
        /* The same refusals as kms_pkey_sign. */
        assert_int_equal(kms_signer_sign(signer, cases[i].alg, digest, 31, &sig),
                         KMS_E_INVALID_PARAMETER);
        assert_int_equal(kms_signer_sign(signer,
                                         cases[i].alg == KMS_SIGN_ECDSA_SHA_256
                                             ? KMS_SIGN_RSA_PSS_SHA_256
                                             : KMS_SIGN_ECDSA_SHA_256,
                                         digest, 32, &sig),
                         KMS_E_UNSUPPORTED_ALGORITHM);
        assert_int_equal(kms_signer_sign(signer, (enum kms_sign_alg)0, digest, 32, &sig),
                         KMS_E_UNSUPPORTED_ALGORITHM);
        assert_int_equal(
            kms_signer_sign(signer, (enum kms_sign_alg)(KMS_SIGN_SM2DSA + 1), digest, 32, &sig),
            KMS_E_UNSUPPORTED_ALGORITHM);
        kms_signer_free(signer);
        kms_buf_free(&first);
        kms_buf_free(&sig);
    }
    /* No key, or a public key only: refused, and a failed signature leaves nothing broken. */
    {
        struct kms_signer *signer = (struct kms_signer *)1;
        struct kms_buf pubder = {0}, sig = {0};
        EVP_PKEY *pub = NULL;

        assert_int_equal(kms_signer_new(NULL, &signer), KMS_E_UNSUPPORTED_KEY_SPEC);
        assert_null(signer);
        assert_int_equal(kms_pkey_public_der(key_of(KMS_SPEC_EC_P256), &pubder), KMS_OK);
        assert_int_equal(kms_pkey_parse_public((uint8_t *)pubder.data, pubder.len, &pub, NULL),
                         KMS_OK);
        assert_int_equal(kms_signer_new(pub, &signer), KMS_OK);
        signer_digest(pub, KMS_SIGN_ECDSA_SHA_256, digest);
        for (int round = 0; round < 2; round++) {
            assert_int_equal(kms_signer_sign(signer, KMS_SIGN_ECDSA_SHA_256, digest, 32, &sig),
                             KMS_E_INTERNAL);
            assert_int_equal(sig.len, 0);
        }
        kms_signer_free(signer);
        kms_signer_free(NULL);
        kms_pkey_free(pub);
        kms_buf_free(&pubder);
        kms_buf_free(&sig);
    }
}

/* Many threads at once on two signers, more threads than a signer keeps contexts for. */
#define SIGNER_THREADS 24
#define SIGNER_ROUNDS  6

struct signer_job {
    struct kms_signer *ec, *rsa;
    atomic_int *failures;
};

static void *signer_thread(void *arg)
{
    struct signer_job *job = arg;
    uint8_t ec_digest[32], rsa_digest[32];

    signer_digest(key_of(KMS_SPEC_EC_P256), KMS_SIGN_ECDSA_SHA_256, ec_digest);
    signer_digest(key_of(KMS_SPEC_RSA_2048), KMS_SIGN_RSA_PSS_SHA_256, rsa_digest);
    for (int round = 0; round < SIGNER_ROUNDS; round++) {
        struct kms_buf sig = {0};
        bool ec = round % 2 == 0;
        enum kms_sign_alg alg = ec ? KMS_SIGN_ECDSA_SHA_256 : KMS_SIGN_RSA_PSS_SHA_256;
        EVP_PKEY *k = key_of(ec ? KMS_SPEC_EC_P256 : KMS_SPEC_RSA_2048);

        if (kms_signer_sign(ec ? job->ec : job->rsa, alg, ec ? ec_digest : rsa_digest, 32, &sig) !=
                KMS_OK ||
            openssl_verify_message(k, alg, signer_msg, sizeof(signer_msg), &sig) != 1)
            atomic_fetch_add(job->failures, 1);
        kms_buf_free(&sig);
    }
    return NULL;
}

static void test_signer_threads(void **state)
{
    atomic_int failures = 0;
    struct signer_job job = {.failures = &failures};
    pthread_t threads[SIGNER_THREADS];

    /* The keys exist before the threads start: key_of is not thread-safe. */
    assert_int_equal(kms_signer_new(key_of(KMS_SPEC_EC_P256), &job.ec), KMS_OK);
    assert_int_equal(kms_signer_new(key_of(KMS_SPEC_RSA_2048), &job.rsa), KMS_OK);
    for (int i = 0; i < SIGNER_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, signer_thread, &job), 0);
    for (int i = 0; i < SIGNER_THREADS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    assert_int_equal(atomic_load(&failures), 0);
    kms_signer_free(job.ec);
    kms_signer_free(job.rsa);
}

/* An SM2 signature made by OpenSSL over the message (default ID) verifies as a digest in kmsd. */
static void test_sm2_openssl_signature(void **state)
{
    static const uint8_t msg[] = "signed by OpenSSL's EVP_DigestSign with SM3";
    EVP_PKEY *k = key_of(KMS_SPEC_EC_SM2);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *sctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
    uint8_t sig[128], e[32];
    size_t sig_len = sizeof(sig);
    bool valid = false;

    assert_true(EVP_PKEY_CTX_set1_id(sctx, "1234567812345678", 16) > 0);
    EVP_MD_CTX_set_pkey_ctx(md, sctx);
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sm3(), NULL, k), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &sig_len, msg, sizeof(msg)), 1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_CTX_free(sctx);
    sm2_digest(k, msg, sizeof(msg), e);
    assert_int_equal(kms_pkey_verify(k, KMS_SIGN_SM2DSA, e, 32, sig, sig_len, &valid), KMS_OK);
    assert_true(valid);
    /* SM3(M) alone (no Z_A) is not what was signed. */
    {
        unsigned int n = 0;

        EVP_Digest(msg, sizeof(msg), e, &n, EVP_sm3(), NULL);
        assert_int_equal(kms_pkey_verify(k, KMS_SIGN_SM2DSA, e, 32, sig, sig_len, &valid), KMS_OK);
        assert_false(valid);
    }
}

static int teardown_keys(void **state)
{
    for (size_t i = 0; i < KMS_SPEC_COUNT; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_limits),
        cmocka_unit_test(test_spki_parse),
        cmocka_unit_test(test_pem_and_pkcs8),
        cmocka_unit_test(test_sm2_layout_round_trip),
        cmocka_unit_test(test_sm2_layout_refusals),
        cmocka_unit_test(test_encrypt_limits),
        cmocka_unit_test(test_decrypt_interop_and_refusals),
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_sm2_openssl_signature),
        cmocka_unit_test(test_signer),
        cmocka_unit_test(test_signer_threads),
    };

    return cmocka_run_group_tests(tests, NULL, teardown_keys);
}
