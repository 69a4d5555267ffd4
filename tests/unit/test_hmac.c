/*
 * test_hmac.c - the MAC algorithms of GenerateMac / VerifyMac (src/crypto/hmac.c): the RFC 4231
 * vectors for the SHA-2 HMACs, HMAC-SM3 against OpenSSL's own HMAC, the names and which key
 * specs take which algorithm (spec/algorithms.md §8), and the two derivations documented in
 * src/crypto/hmac.c, recomputed here from their definitions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "kms/crypto.h"

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;

    for (size_t i = 0; i < n; i++) {
        unsigned v;

        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

/* RFC 4231 test cases 1 and 2. */
static void test_rfc4231(void **state)
{
    static const struct {
        enum kms_mac_alg alg;
        const char *key, *data, *mac;
    } v[] = {
        {KMS_MAC_HMAC_SHA_224, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22"},
        {KMS_MAC_HMAC_SHA_256, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {KMS_MAC_HMAC_SHA_384, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af15"
         "2e8b2fa9cb6"},
        {KMS_MAC_HMAC_SHA_512, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b2"
         "74eaea3f4e4be9d914eeb61f1702e696c203a126854"},
        {KMS_MAC_HMAC_SHA_256, "4a656665",
         "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    };

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t key[64], data[64], want[64], got[KMS_MAC_MAX_LEN];
        size_t key_len = unhex(v[i].key, key), data_len = unhex(v[i].data, data);
        size_t want_len = unhex(v[i].mac, want), got_len = 0;

        assert_int_equal(kms_hmac(v[i].alg, key, key_len, data, data_len, got, &got_len), KMS_OK);
        assert_int_equal(got_len, want_len);
        assert_int_equal(kms_mac_len(v[i].alg), want_len);
        assert_memory_equal(got, want, want_len);
    }
}

static void test_sm3(void **state)
{
    static const uint8_t key[] = "an SM3 key of some length";
    static const uint8_t msg[] = "message";
    uint8_t want[EVP_MAX_MD_SIZE], got[KMS_MAC_MAX_LEN];
    unsigned int want_len = 0;
    size_t got_len = 0;

    assert_non_null(HMAC(EVP_sm3(), key, sizeof(key), msg, sizeof(msg), want, &want_len));
    assert_int_equal(kms_hmac(KMS_MAC_HMAC_SM3, key, sizeof(key), msg, sizeof(msg), got, &got_len),
                     KMS_OK);
    assert_int_equal(got_len, 32);
    assert_int_equal(want_len, 32);
    assert_memory_equal(got, want, 32);
}

static void test_names_and_specs(void **state)
{
    static const char *const names[] = {"HMAC_SM3", "HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384",
                                        "HMAC_SHA_512"};
    enum kms_mac_alg alg;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_true(kms_mac_alg_parse(names[i], &alg));
        assert_string_equal(kms_mac_alg_name(alg), names[i]);
        /* SM4 keys take HMAC_SM3 only; AES keys the SHA-2 HMACs only. */
        assert_int_equal(kms_mac_alg_fits(KMS_SPEC_SM4, alg), i == 0);
        assert_int_equal(kms_mac_alg_fits(KMS_SPEC_AES_256, alg), i != 0);
        assert_int_equal(kms_mac_alg_fits(KMS_SPEC_AES_128, alg), i != 0);
        for (int s = KMS_SPEC_RSA_2048; s < KMS_SPEC_COUNT; s++)
            assert_false(kms_mac_alg_fits((enum kms_key_spec)s, alg));
    }
    /* Names are case-sensitive and exact. */
    assert_false(kms_mac_alg_parse("hmac_sha_256", &alg));
    assert_false(kms_mac_alg_parse("HMAC_SHA256", &alg));
    assert_false(kms_mac_alg_parse("HMAC_SHA_1", &alg));
    assert_false(kms_mac_alg_parse("", &alg));
    assert_false(kms_mac_alg_parse(NULL, &alg));
    assert_true(kms_mac_spec_supported(KMS_SPEC_SM4));
    assert_true(kms_mac_spec_supported(KMS_SPEC_AES_128));
    assert_false(kms_mac_spec_supported(KMS_SPEC_EC_SM2));
    assert_false(kms_mac_spec_supported(KMS_SPEC_RSA_2048));
}

/* HMAC-H(material, "kms-mac-v1" ‖ Algorithm), H = SM3 for SM4 keys, SHA-256 otherwise. */
static void test_software_derivation(void **state)
{
    uint8_t material[32], got[KMS_MAC_KEY_LEN], other[KMS_MAC_KEY_LEN];
    uint8_t want[EVP_MAX_MD_SIZE];
    unsigned int want_len = 0;

    memset(material, 0x5c, sizeof(material));
    assert_int_equal(kms_mac_derive_key(KMS_SPEC_AES_256, KMS_MAC_HMAC_SHA_384, material, 32, got),
                     KMS_OK);
    assert_non_null(HMAC(EVP_sha256(), material, 32, (const uint8_t *)"kms-mac-v1HMAC_SHA_384", 22,
                         want, &want_len));
    assert_memory_equal(got, want, KMS_MAC_KEY_LEN);
    assert_int_equal(kms_mac_derive_key(KMS_SPEC_SM4, KMS_MAC_HMAC_SM3, material, 16, got), KMS_OK);
    assert_non_null(
        HMAC(EVP_sm3(), material, 16, (const uint8_t *)"kms-mac-v1HMAC_SM3", 18, want, &want_len));
    assert_memory_equal(got, want, KMS_MAC_KEY_LEN);
    /* Each algorithm gets its own key. */
    assert_int_equal(
        kms_mac_derive_key(KMS_SPEC_AES_256, KMS_MAC_HMAC_SHA_256, material, 32, other), KMS_OK);
    assert_int_equal(kms_mac_derive_key(KMS_SPEC_AES_256, KMS_MAC_HMAC_SHA_512, material, 32, got),
                     KMS_OK);
    assert_memory_not_equal(got, other, KMS_MAC_KEY_LEN);
}

/* The token derivation input: SHA-512("kms-mac-v1" ‖ Algorithm). */
static void test_token_derivation_data(void **state)
{
    uint8_t got[KMS_MAC_DERIVATION_LEN], want[SHA512_DIGEST_LENGTH];

    assert_int_equal(kms_mac_derivation_data(KMS_MAC_HMAC_SHA_224, got), KMS_OK);
    SHA512((const uint8_t *)"kms-mac-v1HMAC_SHA_224", 22, want);
    assert_memory_equal(got, want, sizeof(want));
    assert_int_not_equal(kms_mac_derivation_data((enum kms_mac_alg)99, got), KMS_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_sm3),
        cmocka_unit_test(test_names_and_specs),
        cmocka_unit_test(test_software_derivation),
        cmocka_unit_test(test_token_derivation_data),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
