/*
 * clientkey.c - client keys of application access points (spec/actions.md I4): an RSA-2048 key
 * pair whose private half is handed out once, inside a password-protected PKCS#12, and whose
 * public half is kept as a self-signed certificate. kmsd never uses these keys itself.
 */
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "kms/crypto.h"
#include "kms/log.h"

static X509 *kms_client_key_cert(EVP_PKEY *pkey, const char *cn, int64_t not_before,
                                 int64_t not_after)
{
    X509 *cert = X509_new();
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    X509_NAME *name;
    bool ok = false;

    if (cert == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
        goto out;
    serial[0] &= 0x7f; /* a positive serial */
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
        goto out;
    if (X509_set_version(cert, 2) != 1 ||
        ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)not_after) == NULL ||
        X509_set_pubkey(cert, pkey) != 1)
        goto out;
    name = X509_get_subject_name(cert);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(cert, name) != 1 || X509_sign(cert, pkey, EVP_sha256()) == 0)
        goto out;
    ok = true;
out:
    BN_free(bn);
    if (!ok) {
        X509_free(cert);
        cert = NULL;
    }
    return cert;
}

kms_err kms_client_key_generate(const char *cn, int64_t not_before, int64_t not_after,
                                const char *password, struct kms_buf *p12_der,
                                struct kms_buf *cert_pem)
{
    EVP_PKEY *pkey = EVP_RSA_gen(2048);
    X509 *cert = NULL;
    PKCS12 *p12 = NULL;
    BIO *bio = NULL;
    unsigned char *der = NULL;
    char *pem = NULL;
    long pem_len;
    int der_len = 0;
    kms_err rc = KMS_E_INTERNAL;

    if (pkey == NULL)
        goto out;
    cert = kms_client_key_cert(pkey, cn, not_before, not_after);
    if (cert == NULL)
        goto out;
    /* OpenSSL 3's defaults: AES-256-CBC with PBKDF2 for the key bag, a SHA-256 MAC. */
    p12 = PKCS12_create(password, cn, pkey, cert, NULL, 0, 0, 0, 0, 0);
    if (p12 == NULL)
        goto out;
    der_len = i2d_PKCS12(p12, &der);
    if (der_len <= 0)
        goto out;
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_X509(bio, cert) != 1)
        goto out;
    pem_len = BIO_get_mem_data(bio, &pem);
    if (pem_len <= 0)
        goto out;
    rc = kms_buf_append(p12_der, der, (size_t)der_len);
    if (rc == KMS_OK)
        rc = kms_buf_append(cert_pem, pem, (size_t)pem_len);
out:
    if (rc != KMS_OK)
        kms_log_error("crypto: cannot generate a client key");
    if (der != NULL) {
        OPENSSL_cleanse(der, (size_t)der_len);
        OPENSSL_free(der);
    }
    BIO_free(bio);
    PKCS12_free(p12);
    X509_free(cert);
    EVP_PKEY_free(pkey);
    return rc;
}
