/*
 * hmac.c - the MAC algorithms of GenerateMac / VerifyMac (spec/algorithms.md §8): their names,
 * which key specs take which, HMAC itself, and the derivation of a key version's MAC key.
 *
 * A MAC is never made with an encryption key's material itself: the keystore driver derives a
 * MAC key bound to the label "kms-mac-v1" and the algorithm's name, so one key version gives
 * unrelated keys for AES-GCM and for each HMAC. Software versions derive it with HMAC (SM3 for
 * SM4 keys, keeping national-algorithm keys on national algorithms); tokens derive it inside
 * the token from kms_mac_derivation_data (docs/hsm.md).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "kms/crypto.h"

static const struct {
    enum kms_mac_alg alg;
    const char *name;
    const char *digest; /* OpenSSL's digest name */
    size_t len;
} kms_mac_algs[] = {
    {KMS_MAC_HMAC_SM3, "HMAC_SM3", "SM3", 32},
    {KMS_MAC_HMAC_SHA_224, "HMAC_SHA_224", "SHA224", 28},
    {KMS_MAC_HMAC_SHA_256, "HMAC_SHA_256", "SHA256", 32},
    {KMS_MAC_HMAC_SHA_384, "HMAC_SHA_384", "SHA384", 48},
    {KMS_MAC_HMAC_SHA_512, "HMAC_SHA_512", "SHA512", 64},
};

static int kms_mac_index(enum kms_mac_alg alg)
{
    for (size_t i = 0; i < KMS_ARRAY_LEN(kms_mac_algs); i++)
        if (kms_mac_algs[i].alg == alg)
            return (int)i;
    return -1;
}

bool kms_mac_alg_parse(const char *name, enum kms_mac_alg *out)
{
    for (size_t i = 0; name != NULL && i < KMS_ARRAY_LEN(kms_mac_algs); i++) {
        if (strcmp(name, kms_mac_algs[i].name) == 0) {
            *out = kms_mac_algs[i].alg;
            return true;
        }
    }
    return false;
}

const char *kms_mac_alg_name(enum kms_mac_alg alg)
{
    int i = kms_mac_index(alg);

    return i < 0 ? "" : kms_mac_algs[i].name;
}

size_t kms_mac_len(enum kms_mac_alg alg)
{
    int i = kms_mac_index(alg);

    return i < 0 ? 0 : kms_mac_algs[i].len;
}

bool kms_mac_alg_fits(enum kms_key_spec spec, enum kms_mac_alg alg)
{
    switch (spec) {
    case KMS_SPEC_SM4:
        return alg == KMS_MAC_HMAC_SM3;
    case KMS_SPEC_AES_256:
    case KMS_SPEC_AES_128:
        return alg == KMS_MAC_HMAC_SHA_224 || alg == KMS_MAC_HMAC_SHA_256 ||
               alg == KMS_MAC_HMAC_SHA_384 || alg == KMS_MAC_HMAC_SHA_512;
    default:
        return false;
    }
}

bool kms_mac_spec_supported(enum kms_key_spec spec)
{
    return spec == KMS_SPEC_SM4 || spec == KMS_SPEC_AES_256 || spec == KMS_SPEC_AES_128;
}

kms_err kms_hmac(enum kms_mac_alg alg, const uint8_t *key, size_t key_len, const uint8_t *msg,
                 size_t len, uint8_t out[KMS_MAC_MAX_LEN], size_t *out_len)
{
    int i = kms_mac_index(alg);
    OSSL_PARAM params[2];
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx = NULL;
    kms_err rc = KMS_E_INTERNAL;

    *out_len = 0;
    if (i < 0)
        return KMS_E_INTERNAL;
    mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    if (mac != NULL)
        ctx = EVP_MAC_CTX_new(mac);
    params[0] =
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)kms_mac_algs[i].digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx != NULL && EVP_MAC_init(ctx, key, key_len, params) == 1 &&
        EVP_MAC_update(ctx, msg, len) == 1 &&
        EVP_MAC_final(ctx, out, out_len, KMS_MAC_MAX_LEN) == 1 && *out_len == kms_mac_algs[i].len)
        rc = KMS_OK;
    /* OpenSSL cleanses HMAC state on free. */
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    if (rc != KMS_OK) {
        OPENSSL_cleanse(out, KMS_MAC_MAX_LEN);
        *out_len = 0;
    }
    return rc;
}

/* KMS_MAC_LABEL ‖ the algorithm's wire name, into buf (at least 64 bytes); its length. */
static size_t kms_mac_label(enum kms_mac_alg alg, char *buf, size_t size)
{
    size_t a = strlen(KMS_MAC_LABEL), b = strlen(kms_mac_alg_name(alg));

    if (a + b > size)
        return 0;
    memcpy(buf, KMS_MAC_LABEL, a);
    memcpy(buf + a, kms_mac_alg_name(alg), b);
    return a + b;
}

kms_err kms_mac_derive_key(enum kms_key_spec spec, enum kms_mac_alg alg, const uint8_t *material,
                           size_t len, uint8_t out[KMS_MAC_KEY_LEN])
{
    uint8_t mac[KMS_MAC_MAX_LEN];
    size_t mac_len = 0;
    char label[64];
    size_t label_len = kms_mac_label(alg, label, sizeof(label));
    kms_err rc;

    if (label_len == 0 || kms_mac_index(alg) < 0)
        return KMS_E_INTERNAL;
    rc = kms_hmac(spec == KMS_SPEC_SM4 ? KMS_MAC_HMAC_SM3 : KMS_MAC_HMAC_SHA_256, material, len,
                  (const uint8_t *)label, label_len, mac, &mac_len);
    if (rc == KMS_OK && mac_len == KMS_MAC_KEY_LEN)
        memcpy(out, mac, KMS_MAC_KEY_LEN);
    else if (rc == KMS_OK)
        rc = KMS_E_INTERNAL;
    OPENSSL_cleanse(mac, sizeof(mac));
    return rc;
}

kms_err kms_mac_derivation_data(enum kms_mac_alg alg, uint8_t out[KMS_MAC_DERIVATION_LEN])
{
    char label[64];
    size_t label_len = kms_mac_label(alg, label, sizeof(label));
    unsigned int n = 0;

    if (label_len == 0 || kms_mac_index(alg) < 0)
        return KMS_E_INTERNAL;
    if (EVP_Digest(label, label_len, out, &n, EVP_sha512(), NULL) != 1 ||
        n != KMS_MAC_DERIVATION_LEN)
        return KMS_E_INTERNAL;
    return KMS_OK;
}
