/*
 * p11_asn1.c - DER between PKCS#11 and the API: the SubjectPublicKeyInfo of a key pair made in
 * a token (from CKA_MODULUS/CKA_PUBLIC_EXPONENT or CKA_EC_POINT), and ECDSA signatures, which
 * PKCS#11 gives as r||s while the API (and every verifier) wants DER ECDSA-Sig-Value.
 */
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "p11.h"

static kms_err kms_p11_append_spki(EVP_PKEY *pkey, struct kms_buf *out)
{
    unsigned char *p;
    int n = i2d_PUBKEY(pkey, NULL);
    kms_err rc;

    if (n <= 0)
        return KMS_E_INTERNAL;
    rc = kms_buf_reserve(out, (size_t)n);
    if (rc != KMS_OK)
        return rc;
    p = (unsigned char *)out->data + out->len;
    if (i2d_PUBKEY(pkey, &p) != n)
        return KMS_E_INTERNAL;
    out->len += (size_t)n;
    out->data[out->len] = '\0';
    return KMS_OK;
}

static kms_err kms_p11_spki_from(const char *type, OSSL_PARAM_BLD *bld, struct kms_buf *out)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    kms_err rc = KMS_E_INTERNAL;

    if (params != NULL && ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1)
        rc = kms_p11_append_spki(pkey, out);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return rc;
}

kms_err kms_p11_rsa_spki(const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len,
                         struct kms_buf *out)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *bn_n = BN_bin2bn(n, (int)n_len, NULL);
    BIGNUM *bn_e = BN_bin2bn(e, (int)e_len, NULL);
    kms_err rc = KMS_E_INTERNAL;

    if (bld != NULL && bn_n != NULL && bn_e != NULL && !BN_is_zero(bn_n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1)
        rc = kms_p11_spki_from("RSA", bld, out);
    BN_free(bn_n);
    BN_free(bn_e);
    OSSL_PARAM_BLD_free(bld);
    return rc;
}

kms_err kms_p11_ec_spki(const char *curve, const uint8_t *ec_point, size_t len, struct kms_buf *out)
{
    OSSL_PARAM_BLD *bld;
    ASN1_OCTET_STRING *os = NULL;
    const unsigned char *p = ec_point;
    const uint8_t *point = ec_point;
    size_t point_len = len;
    kms_err rc = KMS_E_INTERNAL;

    /*
     * The standard form is a DER OCTET STRING around the uncompressed point; some tokens give
     * the bare point. A bare 65-byte point misread as DER would hold at most 63 bytes.
     */
    os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len);
    if (os != NULL && p == ec_point + len && ASN1_STRING_length(os) >= 65 &&
        ASN1_STRING_get0_data(os)[0] == 0x04) {
        point = ASN1_STRING_get0_data(os);
        point_len = (size_t)ASN1_STRING_length(os);
    }
    bld = OSSL_PARAM_BLD_new();
    if (bld != NULL && point_len > 0 &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve, 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len) == 1)
        rc = kms_p11_spki_from("EC", bld, out);
    OSSL_PARAM_BLD_free(bld);
    ASN1_OCTET_STRING_free(os);
    return rc;
}

kms_err kms_p11_ecdsa_der(const uint8_t *rs, size_t len, struct kms_buf *out)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *p;
    kms_err rc = KMS_E_INTERNAL;
    int n;

    if (sig == NULL || len == 0 || len % 2 != 0) {
        ECDSA_SIG_free(sig);
        return KMS_E_INTERNAL;
    }
    r = BN_bin2bn(rs, (int)(len / 2), NULL);
    s = BN_bin2bn(rs + len / 2, (int)(len / 2), NULL);
    if (r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return KMS_E_INTERNAL;
    }
    n = i2d_ECDSA_SIG(sig, NULL);
    if (n > 0 && kms_buf_reserve(out, (size_t)n) == KMS_OK) {
        p = (unsigned char *)out->data + out->len;
        if (i2d_ECDSA_SIG(sig, &p) == n) {
            out->len += (size_t)n;
            out->data[out->len] = '\0';
            rc = KMS_OK;
        }
    }
    ECDSA_SIG_free(sig);
    return rc;
}
