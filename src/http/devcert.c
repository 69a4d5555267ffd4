/*
 * devcert.c - the development TLS certificate made on first start when none is configured:
 * self-signed ECDSA P-256 (cheap handshakes, DESIGN.md), valid one year, SANs for the listen
 * host and the loopback names. Production deployments configure their own certificate.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kms/http.h"
#include "kms/log.h"

static bool kms_devcert_add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    bool ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return false;
    ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

static bool kms_devcert_write_key(EVP_PKEY *pkey, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f;
    bool ok;

    if (fd < 0)
        return false;
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return false;
    }
    ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    return fclose(f) == 0 && ok;
}

kms_err kms_devcert_create(const char *cert_path, const char *key_path, const char *host)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = X509_new();
    X509_NAME *name;
    unsigned char serial[16];
    char san[512];
    BIGNUM *bn = NULL;
    FILE *f = NULL;
    bool ok = false;
    bool numeric = strspn(host, "0123456789.:") == strlen(host);

    if (pkey == NULL || cert == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
        goto out;
    serial[0] &= 0x7f; /* positive */
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
        goto out;
    X509_set_version(cert, 2);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 86400);
    X509_set_pubkey(cert, pkey);
    name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"kmsd development",
                               -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"kmsd dev", -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1%s%s",
             numeric ? "" : ",DNS:", numeric ? "" : host);
    if (numeric && strcmp(host, "127.0.0.1") != 0 && strcmp(host, "::1") != 0 &&
        strcmp(host, "0.0.0.0") != 0 && strcmp(host, "::") != 0)
        snprintf(san + strlen(san), sizeof(san) - strlen(san), ",IP:%s", host);
    if (!kms_devcert_add_ext(cert, NID_subject_alt_name, san) ||
        !kms_devcert_add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") ||
        !kms_devcert_add_ext(cert, NID_key_usage, "critical,digitalSignature") ||
        !kms_devcert_add_ext(cert, NID_ext_key_usage, "serverAuth"))
        goto out;
    if (X509_sign(cert, pkey, EVP_sha256()) == 0)
        goto out;
    if (!kms_devcert_write_key(pkey, key_path))
        goto out;
    f = fopen(cert_path, "w");
    ok = f != NULL && PEM_write_X509(f, cert) == 1;
    if (f != NULL && fclose(f) != 0)
        ok = false;
out:
    if (!ok)
        kms_log_error("tls: cannot create the development certificate %s", cert_path);
    BN_free(bn);
    X509_free(cert);
    EVP_PKEY_free(pkey);
    return ok ? KMS_OK : KMS_E_INTERNAL;
}
