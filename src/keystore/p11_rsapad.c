/*
 * p11_rsapad.c - RSA padding done in kmsd around raw RSA in the token (CKM_RSA_X_509), for
 * tokens that lack a padding the API needs (SoftHSM2 2.6.1 does OAEP with SHA-1 only). The
 * private-key operation stays in the token; only encoding and decoding happen here.
 *
 * OpenSSL's RSA_padding_* functions do the work: the OAEP and PKCS#1 v1.5 checks are written
 * to run in constant time and to fail the same way whatever is wrong, which a hand-written
 * unpadding would have to reproduce. They are deprecated in OpenSSL 3 (with no replacement for
 * padding without a key), hence OPENSSL_SUPPRESS_DEPRECATED in this one file.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "p11.h"

#define KMS_P11_PSS_SALT 32

kms_err kms_p11_pad_pss_sha256(const uint8_t *spki, size_t spki_len, const uint8_t digest[32],
                               uint8_t *em, size_t k)
{
    const unsigned char *p = spki;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)spki_len);
    const RSA *rsa = pkey ? EVP_PKEY_get0_RSA(pkey) : NULL;
    kms_err rc = KMS_E_INTERNAL;

    /* The encoder reads only the modulus size from the key, to place the top bit right. */
    if (rsa != NULL && (size_t)RSA_size(rsa) == k &&
        RSA_padding_add_PKCS1_PSS_mgf1((RSA *)rsa, em, digest, EVP_sha256(), EVP_sha256(),
                                       KMS_P11_PSS_SALT) == 1)
        rc = KMS_OK;
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}

kms_err kms_p11_pad_pkcs1_sign(const uint8_t *data, size_t len, uint8_t *em, size_t k)
{
    int ok = RSA_padding_add_PKCS1_type_1(em, (int)k, data, (int)len);

    ERR_clear_error();
    return ok == 1 ? KMS_OK : KMS_E_INTERNAL;
}

/* Appends n bytes of tmp to pt when n >= 0; wipes tmp either way. */
static kms_err kms_p11_take(uint8_t *tmp, size_t k, int n, struct kms_buf *pt)
{
    kms_err rc = n >= 0 ? kms_buf_append(pt, tmp, (size_t)n) : KMS_E_INVALID_PARAMETER;

    OPENSSL_cleanse(tmp, k);
    free(tmp);
    /* Failed checks leave entries on the thread's error queue; later calls must not see them. */
    ERR_clear_error();
    return rc;
}

kms_err kms_p11_unpad_oaep(bool sha256, const uint8_t *em, size_t k, struct kms_buf *pt)
{
    const EVP_MD *md = sha256 ? EVP_sha256() : EVP_sha1();
    uint8_t *tmp = malloc(k);
    int n;

    if (tmp == NULL)
        return KMS_E_INTERNAL;
    /* em is the full k-byte block, leading zero included (flen = num = k). */
    n = RSA_padding_check_PKCS1_OAEP_mgf1(tmp, (int)k, em, (int)k, (int)k, NULL, 0, md, md);
    return kms_p11_take(tmp, k, n, pt);
}

kms_err kms_p11_unpad_pkcs1(const uint8_t *em, size_t k, struct kms_buf *pt)
{
    uint8_t *tmp = malloc(k);
    int n;

    if (tmp == NULL)
        return KMS_E_INTERNAL;
    n = RSA_padding_check_PKCS1_type_2(tmp, (int)k, em, (int)k, (int)k);
    return kms_p11_take(tmp, k, n, pt);
}

bool kms_p11_rsa_verify(const uint8_t *spki, size_t spki_len, bool pss, const uint8_t digest[32],
                        const uint8_t *sig, size_t sig_len)
{
    const unsigned char *p = spki;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)spki_len);
    EVP_PKEY_CTX *ctx = pkey ? EVP_PKEY_CTX_new(pkey, NULL) : NULL;
    bool ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
              EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1;

    if (ok && pss)
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, KMS_P11_PSS_SALT) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1;
    else if (ok)
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
    ok = ok && EVP_PKEY_verify(ctx, sig, sig_len, digest, 32) == 1;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return ok;
}
