/*
 * fuzz_pkey.c - the public-key helpers of src/crypto/pkey.c that read untrusted bytes: SPKI DER
 * parsing (kms_pkey_parse_public: public keys clients send for data-key export), the SM2
 * ciphertext layouts (kms_sm2_ct_raw_to_der / kms_sm2_ct_der_to_raw), and the ciphertexts and
 * signatures AsymmetricDecrypt and AsymmetricVerify hand to kms_pkey_decrypt / kms_pkey_verify.
 *
 * Input: byte 0 picks the mode (mod 6), byte 1 an algorithm where one is needed, the rest is data:
 *   0  SPKI DER                       3  ciphertext for our RSA and SM2 private keys
 *   1  raw SM2 ciphertext C1‖C3‖C2    4  32-byte digest ‖ signature, for our keys
 *   2  DER SM2 ciphertext             5  plaintext, encrypted to our RSA (byte 1 < 0x80) or SM2
 *                                        key and decrypted again
 *
 * Asserts: an accepted SPKI has a key spec kmsd knows, re-encodes to DER that parses to the same
 * spec and re-encodes identically, and its PEM is 64-column Base64 of the DER between the
 * BEGIN/END lines; public operations on it only ever fail cleanly. The SM2 layouts convert both
 * ways without loss (raw -> DER -> raw is the identity, and DER accepted is canonical: DER -> raw
 * -> DER is too). Fuzzed ciphertexts never decrypt (InvalidParameter) and fuzzed signatures never
 * verify; what we encrypt decrypts to the plaintext, in both SM2 layouts.
 */
#include <stdlib.h>
#include <string.h>

#include "kms/crypto.h"
#include "support.h"

static struct evp_pkey_st *fuzz_keys[3]; /* RSA_2048, EC_P256, EC_SM2: made once */

static void init_keys(void)
{
    static const enum kms_key_spec specs[3] = {KMS_SPEC_RSA_2048, KMS_SPEC_EC_P256,
                                               KMS_SPEC_EC_SM2};

    if (fuzz_keys[0] != NULL)
        return;
    for (int i = 0; i < 3; i++)
        FUZZ_CHECK(kms_pkey_generate(specs[i], &fuzz_keys[i]) == KMS_OK, "key generation");
}

static void check_pem(const uint8_t *der, size_t len)
{
    static const char head[] = "-----BEGIN PUBLIC KEY-----\n",
                      tail[] = "-----END PUBLIC KEY-----\n";
    struct kms_buf pem = {0}, b64 = {0};
    uint8_t *back;
    size_t back_len = 0, line_start;

    FUZZ_CHECK(kms_pkey_public_pem(der, len, &pem) == KMS_OK, "PEM failed");
    FUZZ_CHECK(pem.len >= sizeof(head) - 1 + sizeof(tail) - 1 &&
                   memcmp(pem.data, head, sizeof(head) - 1) == 0 &&
                   memcmp(pem.data + pem.len - (sizeof(tail) - 1), tail, sizeof(tail) - 1) == 0,
               "PEM framing");
    line_start = sizeof(head) - 1;
    for (size_t i = line_start; i < pem.len - (sizeof(tail) - 1); i++) {
        if (pem.data[i] == '\n') {
            FUZZ_CHECK(i - line_start <= 64 && i > line_start, "PEM line of %zu characters",
                       i - line_start);
            line_start = i + 1;
        } else {
            kms_buf_append_char(&b64, pem.data[i]);
        }
    }
    back = malloc(KMS_B64_DECODED_MAX(b64.len) + 3);
    FUZZ_CHECK(back != NULL, "out of memory");
    FUZZ_CHECK(kms_b64_decode(b64.data ? b64.data : "", b64.len, back, &back_len) &&
                   back_len == len && memcmp(back, der, len) == 0,
               "PEM body is not the DER");
    free(back);
    kms_buf_free(&pem);
    kms_buf_free(&b64);
}

static void mode_spki(const uint8_t *der, size_t len, uint8_t sel)
{
    struct evp_pkey_st *pkey = NULL, *again = NULL;
    enum kms_key_spec spec = KMS_SPEC_NONE, spec2 = KMS_SPEC_NONE;
    struct kms_buf der2 = {0}, der3 = {0}, ct = {0};
    enum kms_pk_alg pk = (enum kms_pk_alg)(sel % 4 + 1);
    enum kms_sign_alg sa = (enum kms_sign_alg)(sel / 4 % 4 + 1);
    uint8_t digest[32] = {0};
    bool valid = true;
    kms_err rc = kms_pkey_parse_public(der, len, &pkey, &spec);

    if (rc != KMS_OK) {
        FUZZ_CHECK(rc == KMS_E_INVALID_PARAMETER && pkey == NULL, "parse_public returned %d",
                   (int)rc);
        return;
    }
    FUZZ_CHECK(spec == KMS_SPEC_RSA_2048 || spec == KMS_SPEC_RSA_3072 || spec == KMS_SPEC_EC_P256 ||
                   spec == KMS_SPEC_EC_P256K || spec == KMS_SPEC_EC_SM2,
               "accepted a key of spec %d", (int)spec);
    FUZZ_CHECK(kms_pkey_spec(pkey) == spec, "spec changed");
    FUZZ_CHECK(kms_pkey_public_der(pkey, &der2) == KMS_OK, "re-encoding failed");
    FUZZ_CHECK(kms_pkey_parse_public((uint8_t *)der2.data, der2.len, &again, &spec2) == KMS_OK &&
                   spec2 == spec,
               "re-encoded SPKI refused or of another spec");
    FUZZ_CHECK(kms_pkey_public_der(again, &der3) == KMS_OK && der3.len == der2.len &&
                   memcmp(der2.data, der3.data, der2.len) == 0,
               "SPKI re-encoding not stable");
    check_pem(der, len);

    /* Public operations with a client's key fail cleanly or work; they never crash. */
    rc = kms_pkey_encrypt(pkey, pk, (const uint8_t *)"data key", 8, &ct);
    FUZZ_CHECK(rc == KMS_OK || rc == KMS_E_UNSUPPORTED_ALGORITHM ||
                   (rc == KMS_E_INTERNAL && !kms_pk_alg_fits(spec, pk)),
               "encrypt to an accepted key returned %d", (int)rc);
    FUZZ_CHECK(rc != KMS_OK || kms_pk_alg_fits(spec, pk), "encrypted with an unfit algorithm");
    rc = kms_pkey_verify(pkey, sa, digest, sizeof(digest), der, len, &valid);
    FUZZ_CHECK((rc == KMS_OK || rc == KMS_E_UNSUPPORTED_ALGORITHM) && !valid,
               "verify returned %d, valid %d", (int)rc, (int)valid);

    kms_pkey_free(pkey);
    kms_pkey_free(again);
    kms_buf_free(&der2);
    kms_buf_free(&der3);
    kms_buf_free(&ct);
}

static void mode_sm2_raw(const uint8_t *raw, size_t len)
{
    struct kms_buf der = {0}, back = {0};
    kms_err rc = kms_sm2_ct_raw_to_der(raw, len, &der);

    if (rc != KMS_OK) {
        FUZZ_CHECK(rc == KMS_E_INVALID_PARAMETER && der.len == 0, "raw_to_der returned %d",
                   (int)rc);
        FUZZ_CHECK(len < KMS_SM2_OVERHEAD || raw[0] != 0x04 ||
                       len - KMS_SM2_OVERHEAD > KMS_SM2_PLAINTEXT_MAX,
                   "a well-shaped raw ciphertext was refused");
        return;
    }
    FUZZ_CHECK(kms_sm2_ct_der_to_raw((uint8_t *)der.data, der.len, &back) == KMS_OK,
               "our own DER does not convert back");
    FUZZ_CHECK(back.len == len && memcmp(back.data, raw, len) == 0, "raw -> DER -> raw changed it");
    kms_buf_free(&der);
    kms_buf_free(&back);
}

static void mode_sm2_der(const uint8_t *der, size_t len)
{
    struct kms_buf raw = {0}, back = {0};
    kms_err rc = kms_sm2_ct_der_to_raw(der, len, &raw);

    if (rc != KMS_OK) {
        FUZZ_CHECK(rc == KMS_E_INVALID_PARAMETER && raw.len == 0, "der_to_raw returned %d",
                   (int)rc);
        return;
    }
    FUZZ_CHECK(raw.len >= KMS_SM2_OVERHEAD && ((uint8_t *)raw.data)[0] == 0x04, "raw layout");
    FUZZ_CHECK(kms_sm2_ct_raw_to_der((uint8_t *)raw.data, raw.len, &back) == KMS_OK,
               "raw from DER does not convert back");
    FUZZ_CHECK(back.len == len && memcmp(back.data, der, len) == 0,
               "accepted DER that is not canonical (DER -> raw -> DER changed it)");
    kms_buf_free(&raw);
    kms_buf_free(&back);
}

static void mode_decrypt(const uint8_t *ct, size_t len, uint8_t sel)
{
    for (int k = 0; k < 3; k++) {
        enum kms_pk_alg alg = (enum kms_pk_alg)((sel + k) % 4 + 1);
        struct kms_buf pt = {0};
        kms_err rc = kms_pkey_decrypt(fuzz_keys[k], alg, ct, len, &pt);

        if (!kms_pk_alg_fits(kms_pkey_spec(fuzz_keys[k]), alg)) {
            FUZZ_CHECK(rc == KMS_E_UNSUPPORTED_ALGORITHM, "decrypt with an unfit alg: %d", (int)rc);
        } else {
            /* Forging an OAEP/PKCS#1 or SM2 (C3 = SM3) ciphertext by chance is not possible. */
            FUZZ_CHECK(rc == KMS_E_INVALID_PARAMETER ||
                           (rc == KMS_OK && alg == KMS_PK_RSAES_PKCS1_V1_5),
                       "fuzzed ciphertext: decrypt returned %d", (int)rc);
        }
        kms_buf_free_secret(&pt);
    }
}

static void mode_verify(const uint8_t *data, size_t len, uint8_t sel)
{
    if (len < 32)
        return;
    for (int k = 0; k < 3; k++) {
        enum kms_sign_alg alg = (enum kms_sign_alg)((sel + k) % 4 + 1);
        bool valid = true;
        kms_err rc = kms_pkey_verify(fuzz_keys[k], alg, data, 32, data + 32, len - 32, &valid);

        FUZZ_CHECK(rc == KMS_OK || rc == KMS_E_UNSUPPORTED_ALGORITHM, "verify returned %d",
                   (int)rc);
        FUZZ_CHECK(!valid, "a fuzzed signature verified");
    }
}

static void mode_roundtrip(const uint8_t *pt, size_t len, uint8_t sel)
{
    /* RSA or SM2 (the EC key does not encrypt): one key per input keeps executions cheap. */
    {
        int k = sel & 0x80 ? 2 : 0;
        enum kms_pk_alg alg = k == 2 ? KMS_PK_SM2PKE : (enum kms_pk_alg)(sel % 3 + 1);
        enum kms_key_spec spec = kms_pkey_spec(fuzz_keys[k]);
        struct kms_buf ct = {0}, out = {0}, der = {0};
        kms_err rc = kms_pkey_encrypt(fuzz_keys[k], alg, pt, len, &ct);

        if (len == 0 || len > kms_pk_max_plaintext(spec, alg)) {
            FUZZ_CHECK(rc == KMS_E_INVALID_PARAMETER, "bad plaintext length: encrypt says %d",
                       (int)rc);
            kms_buf_free(&ct);
            return;
        }
        FUZZ_CHECK(rc == KMS_OK, "encrypt of %zu bytes failed: %d", len, (int)rc);
        FUZZ_CHECK(kms_pkey_decrypt(fuzz_keys[k], alg, (uint8_t *)ct.data, ct.len, &out) ==
                           KMS_OK &&
                       out.len == len && memcmp(out.data, pt, len) == 0,
                   "decrypt(encrypt(x)) != x");
        if (alg == KMS_PK_SM2PKE) {
            FUZZ_CHECK(ct.len == len + KMS_SM2_OVERHEAD, "SM2 ciphertext length");
            FUZZ_CHECK(kms_sm2_ct_raw_to_der((uint8_t *)ct.data, ct.len, &der) == KMS_OK,
                       "SM2 raw to DER");
            kms_buf_reset(&out);
            FUZZ_CHECK(kms_pkey_decrypt(fuzz_keys[k], alg, (uint8_t *)der.data, der.len, &out) ==
                               KMS_OK &&
                           out.len == len && memcmp(out.data, pt, len) == 0,
                       "the DER layout does not decrypt");
        }
        kms_buf_free(&ct);
        kms_buf_free_secret(&out);
        kms_buf_free(&der);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *rest = data + 2;
    size_t rest_len;

    if (size < 2)
        return 0;
    rest_len = size - 2;
    init_keys();
    switch (data[0] % 6) {
    case 0:
        mode_spki(rest, rest_len, data[1]);
        break;
    case 1:
        mode_sm2_raw(rest, rest_len);
        break;
    case 2:
        mode_sm2_der(rest, rest_len);
        break;
    case 3:
        mode_decrypt(rest, rest_len, data[1]);
        break;
    case 4:
        mode_verify(rest, rest_len, data[1]);
        break;
    default:
        mode_roundtrip(rest, rest_len, data[1]);
        break;
    }
    return 0;
}
