/*
 * test_cert.c - src/crypto/cert.c and the message digests of src/crypto/pkey.c: the DN parser
 * (what CreateCertificate accepts and refuses, escapes, the canonical form, the filter mode),
 * DNS names, CSRs signed through a callback (checked with OpenSSL's own X509_REQ_verify, and a
 * callback that signs wrongly is caught), the certificate checks on self-signed certificates made
 * here, PKCS#12 and encrypted PKCS#8 round trips, and SM3(Z_A ‖ M) against OpenSSL's SM2
 * digest-sign with the default distinguishing ID.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "kms/cert.h"
#include "kms/crypto.h"

static EVP_PKEY *keys[KMS_SPEC_COUNT];

static EVP_PKEY *key_of(enum kms_key_spec spec)
{
    if (keys[spec] == NULL)
        assert_int_equal(kms_pkey_generate(spec, &keys[spec]), KMS_OK);
    return keys[spec];
}

static char *dn_canonical(const char *text, enum kms_dn_mode mode, kms_err *rc)
{
    struct kms_dn dn;
    struct kms_buf out = {0};

    *rc = kms_dn_parse(text, mode, &dn);
    if (*rc == KMS_OK)
        *rc = kms_dn_format(&dn, &out);
    kms_dn_free(&dn);
    if (*rc != KMS_OK) {
        kms_buf_free(&out);
        return NULL;
    }
    return out.data;
}

static void assert_canonical(const char *text, enum kms_dn_mode mode, const char *want)
{
    kms_err rc;
    char *got = dn_canonical(text, mode, &rc);

    if (got == NULL)
        fail_msg("\"%s\" refused (%d)", text, rc);
    assert_string_equal(got, want);
    free(got);
}

static void test_dn_subject_accepted(void **state)
{
    struct kms_dn dn;

    assert_int_equal(kms_dn_parse(" cn = Alice , ou=kms,O = Org\\, Inc.,c=cn", KMS_DN_SUBJECT, &dn),
                     KMS_OK);
    assert_int_equal(dn.count, 4);
    assert_int_equal(dn.attrs[0].nid, NID_commonName);
    assert_string_equal(dn.attrs[0].value, "Alice");
    assert_int_equal(dn.attrs[1].nid, NID_organizationalUnitName);
    assert_string_equal(dn.attrs[2].value, "Org, Inc.");
    assert_int_equal(dn.attrs[3].nid, NID_countryName);
    assert_string_equal(dn.attrs[3].value, "CN"); /* upper-cased */
    kms_dn_free(&dn);

    assert_canonical("CN=Alice,OU=kms,O=aliyun,C=CN", KMS_DN_SUBJECT,
                     "CN=Alice,OU=kms,O=aliyun,C=CN");
    assert_canonical("CN = a b ,O=x,C=de", KMS_DN_SUBJECT, "CN=a b,O=x,C=DE");
    assert_canonical("CN=\"a, \\\"b\\\"\",O=x,C=CN", KMS_DN_SUBJECT, "CN=a\\, \\\"b\\\",O=x,C=CN");
    assert_canonical("CN=\\20lead,O=x,C=CN", KMS_DN_SUBJECT, "CN=\\ lead,O=x,C=CN");
    assert_canonical("CN=trail\\20,O=x,C=CN", KMS_DN_SUBJECT, "CN=trail\\ ,O=x,C=CN");
    assert_canonical("CN=\\41\\42,O=x,C=CN", KMS_DN_SUBJECT, "CN=AB,O=x,C=CN");
    assert_canonical("CN=a=b,O=x,C=CN", KMS_DN_SUBJECT, "CN=a=b,O=x,C=CN");
    assert_canonical("CN=a\\#1,O=x,C=CN", KMS_DN_SUBJECT, "CN=a#1,O=x,C=CN");
    assert_canonical("commonName=证书,organizationName=天翼云,countryName=cn,E=a@b.cn,S=Zhejiang,"
                     "L=Hangzhou",
                     KMS_DN_SUBJECT,
                     "CN=证书,O=天翼云,C=CN,emailAddress=a@b.cn,ST=Zhejiang,L=Hangzhou");
    assert_canonical("CN=a,OU=1,OU=2,OU=3,OU=4,OU=5,O=o,C=CN", KMS_DN_SUBJECT,
                     "CN=a,OU=1,OU=2,OU=3,OU=4,OU=5,O=o,C=CN");
    assert_canonical("EMAIL=x@y,CN=a,O=o,C=CN", KMS_DN_SUBJECT, "emailAddress=x@y,CN=a,O=o,C=CN");
}

static void test_dn_subject_refused(void **state)
{
    static const char *const bad[] = {"",
                                      "CN",
                                      "CN=a",
                                      "O=o,C=CN",
                                      "CN=a,C=CN",
                                      "CN=a,O=o",
                                      "CN=a,O=o,C=C",
                                      "CN=a,O=o,C=CHN",
                                      "CN=a,O=o,C=1N",
                                      "CN=a,O=o,C=CN,DC=x",
                                      "CN=a,O=o,C=CN,serialNumber=1",
                                      "CN=a,CN=b,O=o,C=CN",
                                      "CN=a,O=o,O=p,C=CN",
                                      "CN=a,O=o,C=CN,C=DE",
                                      "CN=a,O=o,C=CN,ST=x,ST=y",
                                      "CN=a,O=o,C=CN,OU=1,OU=2,OU=3,OU=4,OU=5,OU=6",
                                      "CN=a+OU=b,O=o,C=CN",
                                      "CN=#0403616263,O=o,C=CN",
                                      "CN=a,O=o,C=CN,E=nope",
                                      "CN=a,O=o,C=CN,E=@b",
                                      "CN=a,O=o,C=CN,E=a@",
                                      "CN=a,O=o,C=CN,E=a b@c",
                                      "CN=a,O=o,C=CN,E=é@x",
                                      "CN=a,O=o,C=CN,",
                                      ",CN=a,O=o,C=CN",
                                      "CN=,O=o,C=CN",
                                      "CN=  ,O=o,C=CN",
                                      "CN=a;O=o,C=CN",
                                      "CN=a<b,O=o,C=CN",
                                      "CN=a\"b,O=o,C=CN",
                                      "CN=a\\00,O=o,C=CN",
                                      "CN=a\\q,O=o,C=CN",
                                      "CN=a\\,O=o,C=CN\\",
                                      "CN=\"a,O=o,C=CN",
                                      "CN=\"a\"b,O=o,C=CN",
                                      "CN=a\x01,O=o,C=CN",
                                      "CN=\xff\xfe,O=o,C=CN",
                                      "C N=a,O=o,C=CN",
                                      "=a,O=o,C=CN",
                                      "CN=a,O=o,C=CN,X=1"};
    struct kms_dn dn;
    char big[KMS_DN_TEXT_MAX + 16];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (kms_dn_parse(bad[i], KMS_DN_SUBJECT, &dn) != KMS_E_INVALID_PARAMETER)
            fail_msg("accepted \"%s\"", bad[i]);
        kms_dn_free(&dn);
    }
    /* Length limits count characters: 64 for CN, 128 for L. */
    memset(big, 0, sizeof(big));
    strcpy(big, "CN=");
    for (int i = 0; i < 64; i++)
        strcat(big, "é");
    strcat(big, ",O=o,C=CN");
    assert_int_equal(kms_dn_parse(big, KMS_DN_SUBJECT, &dn), KMS_OK);
    kms_dn_free(&dn);
    memset(big, 0, sizeof(big));
    strcpy(big, "CN=");
    memset(big + 3, 'a', 65);
    strcat(big, ",O=o,C=CN");
    assert_int_equal(kms_dn_parse(big, KMS_DN_SUBJECT, &dn), KMS_E_INVALID_PARAMETER);
    kms_dn_free(&dn);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "CN=", 3);
    assert_int_equal(kms_dn_parse(big, KMS_DN_ANY, &dn), KMS_E_INVALID_PARAMETER);
    kms_dn_free(&dn);
    assert_int_equal(kms_dn_parse(NULL, KMS_DN_ANY, &dn), KMS_E_INVALID_PARAMETER);
}

static void test_dn_any(void **state)
{
    struct kms_dn dn;
    kms_err rc;

    assert_canonical("serialNumber=42,CN=a", KMS_DN_ANY, "serialNumber=42,CN=a");
    assert_canonical("2.5.4.6=cn,2.5.4.3=x", KMS_DN_ANY, "C=CN,CN=x");
    assert_canonical("dc=example,DC=com", KMS_DN_ANY, "DC=example,DC=com");
    assert_canonical("c = cn , o = kmsd tests , cn = RSA Issuing CA", KMS_DN_ANY,
                     "C=CN,O=kmsd tests,CN=RSA Issuing CA");
    assert_int_equal(kms_dn_parse("nonsense=1", KMS_DN_ANY, &dn), KMS_E_INVALID_PARAMETER);
    kms_dn_free(&dn);
    assert_int_equal(kms_dn_parse("1.2.3.4.5.6.7.8.9=1", KMS_DN_ANY, &dn), KMS_E_INVALID_PARAMETER);
    kms_dn_free(&dn);
    /* Parses, but OpenSSL refuses a three-letter country when the name is built. */
    assert_null(dn_canonical("C=CHN", KMS_DN_ANY, &rc));
    assert_int_equal(rc, KMS_E_INVALID_PARAMETER);
}

static void test_dns_names(void **state)
{
    static const char *const good[] = {
        "a", "example.com", "a-b.example.com", "*.example.com", "x1.y2.z3", "0.example"};
    static const char *const bad[] = {"",       ".",        "a.",        ".a",      "a..b",
                                      "-a.com", "a-.com",   "a_b.com",   "a.*.com", "*",
                                      "*.",     "**.a.com", "a b.com",   "é.com",   "a.com/",
                                      "*a.com", "a.*",      "1.2.3.4/8", "a:b"};
    char label[80], name[300];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!kms_dns_name_valid(good[i]))
            fail_msg("refused %s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (kms_dns_name_valid(bad[i]))
            fail_msg("accepted \"%s\"", bad[i]);
    memset(label, 'a', 63);
    label[63] = '\0';
    assert_true(kms_dns_name_valid(label));
    strcat(label, "a");
    assert_false(kms_dns_name_valid(label));
    /* 253 characters in all, not more: four 61-letter labels and dots, then 9 letters. */
    memset(name, 'a', 257);
    name[257] = '\0';
    for (int i = 1; i <= 4; i++)
        name[i * 62 - 1] = '.';
    assert_false(kms_dns_name_valid(name));
    name[253] = '\0';
    assert_true(kms_dns_name_valid(name));
}

/* ---- digests ---- */

static void test_message_digests(void **state)
{
    static const uint8_t msg[] = "message for a certificate";
    uint8_t d[KMS_PKEY_DIGEST_LEN], want[32];
    unsigned int n = 0;
    struct kms_buf sig = {0};
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t sig_len = 0;
    bool valid = false;

    assert_int_equal(kms_pkey_message_digest(key_of(KMS_SPEC_RSA_2048), KMS_SIGN_RSA_PSS_SHA_256,
                                             msg, sizeof(msg), d),
                     KMS_OK);
    assert_int_equal(EVP_Digest(msg, sizeof(msg), want, &n, EVP_sha256(), NULL), 1);
    assert_memory_equal(d, want, 32);
    assert_int_equal(
        kms_pkey_message_digest(key_of(KMS_SPEC_EC_P256), KMS_SIGN_ECDSA_SHA_256, NULL, 0, d),
        KMS_OK);
    assert_int_equal(EVP_Digest("", 0, want, &n, EVP_sha256(), NULL), 1);
    assert_memory_equal(d, want, 32);
    assert_int_equal(
        kms_pkey_message_digest(key_of(KMS_SPEC_EC_P256), KMS_SIGN_SM2DSA, msg, sizeof(msg), d),
        KMS_E_UNSUPPORTED_ALGORITHM);

    /* OpenSSL's own SM2 digest-sign with the default ID verifies against e = SM3(Z_A ‖ M). */
    assert_int_equal(
        EVP_DigestSignInit_ex(md, &pctx, "SM3", NULL, NULL, key_of(KMS_SPEC_EC_SM2), NULL), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_id(pctx, KMS_SM2_DEFAULT_ID, strlen(KMS_SM2_DEFAULT_ID)), 1);
    assert_int_equal(EVP_DigestSign(md, NULL, &sig_len, msg, sizeof(msg)), 1);
    assert_int_equal(kms_buf_reserve(&sig, sig_len), KMS_OK);
    assert_int_equal(EVP_DigestSign(md, (unsigned char *)sig.data, &sig_len, msg, sizeof(msg)), 1);
    assert_int_equal(
        kms_pkey_message_digest(key_of(KMS_SPEC_EC_SM2), KMS_SIGN_SM2DSA, msg, sizeof(msg), d),
        KMS_OK);
    assert_int_equal(kms_pkey_verify(key_of(KMS_SPEC_EC_SM2), KMS_SIGN_SM2DSA, d, sizeof(d),
                                     (uint8_t *)sig.data, sig_len, &valid),
                     KMS_OK);
    assert_true(valid);
    /* Another message, another e. */
    assert_int_equal(
        kms_pkey_message_digest(key_of(KMS_SPEC_EC_SM2), KMS_SIGN_SM2DSA, msg, sizeof(msg) - 1, d),
        KMS_OK);
    assert_int_equal(kms_pkey_verify(key_of(KMS_SPEC_EC_SM2), KMS_SIGN_SM2DSA, d, sizeof(d),
                                     (uint8_t *)sig.data, sig_len, &valid),
                     KMS_OK);
    assert_false(valid);
    kms_buf_free(&sig);
    EVP_MD_CTX_free(md);
}

/* ---- CSRs ---- */

struct signer {
    EVP_PKEY *key;
    int calls;
    bool corrupt;
};

static kms_err sign_cb(void *arg, enum kms_sign_alg alg, const uint8_t *digest, size_t len,
                       struct kms_buf *sig)
{
    struct signer *s = arg;
    kms_err rc;

    s->calls++;
    rc = kms_pkey_sign(s->key, alg, digest, len, sig);
    if (rc == KMS_OK && s->corrupt)
        sig->data[sig->len / 2] ^= 0x01;
    return rc;
}

static kms_err failing_cb(void *arg, enum kms_sign_alg alg, const uint8_t *digest, size_t len,
                          struct kms_buf *sig)
{
    return KMS_E_UNAVAILABLE;
}

static X509_REQ *csr_of(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);

    BIO_free(bio);
    assert_non_null(req);
    return req;
}

static void test_csr(void **state)
{
    static const enum kms_key_spec specs[] = {KMS_SPEC_RSA_2048, KMS_SPEC_EC_P256, KMS_SPEC_EC_SM2};
    static const int sig_nids[] = {NID_sha256WithRSAEncryption, NID_ecdsa_with_SHA256,
                                   NID_SM2_with_SM3};
    static const char *const sans[] = {"a.example.com", "*.b.example.com"};
    struct kms_dn dn;

    assert_int_equal(kms_dn_parse("CN=csr,OU=unit,O=org,C=CN", KMS_DN_SUBJECT, &dn), KMS_OK);
    for (size_t i = 0; i < 3; i++) {
        struct signer s = {key_of(specs[i]), 0, false};
        struct kms_buf spki = {0}, pem = {0};
        X509_REQ *req;
        EVP_PKEY *pub;
        STACK_OF(X509_EXTENSION) * exts;
        enum kms_sign_alg alg;

        assert_true(kms_csr_sign_alg(specs[i], &alg));
        assert_int_equal(kms_pkey_public_der(s.key, &spki), KMS_OK);
        assert_int_equal(
            kms_csr_create(&dn, sans, 2, (uint8_t *)spki.data, spki.len, sign_cb, &s, &pem),
            KMS_OK);
        assert_int_equal(s.calls, 1);
        assert_non_null(strstr(pem.data, "-----BEGIN CERTIFICATE REQUEST-----\n"));
        req = csr_of(pem.data);
        pub = X509_REQ_get_pubkey(req);
        assert_int_equal(EVP_PKEY_eq(pub, s.key), 1);
        assert_int_equal(X509_REQ_get_signature_nid(req), sig_nids[i]);
        if (specs[i] == KMS_SPEC_EC_SM2) {
            /* Without the default ID (OpenSSL's empty one) it must not verify... */
            assert_int_not_equal(X509_REQ_verify(req, pub), 1);
            ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();
            ASN1_OCTET_STRING_set(id, (const unsigned char *)KMS_SM2_DEFAULT_ID, 16);
            X509_REQ_set0_distinguishing_id(req, id);
        }
        /* ...and with it, it does. */
        assert_int_equal(X509_REQ_verify(req, pub), 1);
        exts = X509_REQ_get_extensions(req);
        assert_int_equal(sk_X509_EXTENSION_num(exts), 1);
        assert_int_equal(OBJ_obj2nid(X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, 0))),
                         NID_subject_alt_name);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        EVP_PKEY_free(pub);
        X509_REQ_free(req);
        kms_buf_free(&pem);

        /* A keystore that signs wrongly is caught before anyone sees the request. */
        s.corrupt = true;
        assert_int_equal(
            kms_csr_create(&dn, NULL, 0, (uint8_t *)spki.data, spki.len, sign_cb, &s, &pem),
            KMS_E_INTERNAL);
        assert_int_equal(pem.len, 0);
        /* The keystore's own error comes through. */
        assert_int_equal(
            kms_csr_create(&dn, NULL, 0, (uint8_t *)spki.data, spki.len, failing_cb, NULL, &pem),
            KMS_E_UNAVAILABLE);
        kms_buf_free(&spki);
        kms_buf_free(&pem);
    }
    /* No request for a key spec certificates do not have. */
    {
        struct signer s = {key_of(KMS_SPEC_RSA_3072), 0, false};
        struct kms_buf spki = {0}, pem = {0};
        enum kms_sign_alg alg;

        assert_false(kms_csr_sign_alg(KMS_SPEC_RSA_3072, &alg));
        assert_int_equal(kms_pkey_public_der(s.key, &spki), KMS_OK);
        assert_int_equal(
            kms_csr_create(&dn, NULL, 0, (uint8_t *)spki.data, spki.len, sign_cb, &s, &pem),
            KMS_E_INVALID_PARAMETER);
        assert_int_equal(s.calls, 0);
        kms_buf_free(&spki);
    }
    kms_dn_free(&dn);
}

/* ---- certificates ---- */

/* A self-signed certificate of key, valid [now + from, now + to], as PEM. */
static char *self_signed(EVP_PKEY *key, time_t now, long from, long to)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *pem;
    long n;

    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"self", -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, name);
    X509_time_adj_ex(X509_getm_notBefore(x), 0, from, &now);
    X509_time_adj_ex(X509_getm_notAfter(x), 0, to, &now);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    PEM_write_bio_X509(bio, x);
    n = BIO_get_mem_data(bio, &data);
    pem = strndup(data, (size_t)n);
    BIO_free(bio);
    X509_NAME_free(name);
    X509_free(x);
    return pem;
}

static void test_cert_check(void **state)
{
    time_t now = time(NULL);
    EVP_PKEY *key = key_of(KMS_SPEC_EC_P256);
    char *pem = self_signed(key, now, -3600, 3600);
    struct kms_buf spki = {0}, other = {0};
    struct kms_cert_info info;
    enum kms_cert_fault fault;
    char *tampered;

    assert_int_equal(kms_pkey_public_der(key, &spki), KMS_OK);
    assert_int_equal(kms_pkey_public_der(key_of(KMS_SPEC_RSA_2048), &other), KMS_OK);
    assert_int_equal(kms_cert_check(pem, NULL, (uint8_t *)spki.data, spki.len, now, &info, &fault),
                     KMS_OK);
    assert_int_equal(fault, KMS_CERT_FAULT_NONE);
    assert_string_equal(info.subject, "CN=self");
    assert_string_equal(info.issuer, "CN=self");
    assert_string_equal(info.serial, "1234");
    assert_string_equal(info.signature_algorithm, "ECDSA-SHA256");
    assert_string_equal(info.sans, "[]");
    assert_string_equal(info.chain, "");
    assert_string_equal(info.certificate, pem);
    assert_int_equal(info.spec, KMS_SPEC_EC_P256);
    assert_true(info.not_before <= now - 3600 + 1 && info.not_after >= now + 3600 - 1);
    assert_int_equal(strlen(info.ski), 20 * 3 - 1); /* SHA-1 of the key, no extension here */
    assert_memory_equal(info.public_der.data, spki.data, spki.len);
    kms_cert_info_free(&info);

    /* Outside the validity period, another key, a chain that is not PEM. */
    assert_int_equal(kms_cert_check(pem, NULL, NULL, 0, now + 7200, &info, &fault),
                     KMS_E_INVALID_PARAMETER);
    assert_int_equal(fault, KMS_CERT_FAULT_CERTIFICATE);
    assert_int_equal(kms_cert_check(pem, NULL, NULL, 0, now - 7200, &info, &fault),
                     KMS_E_INVALID_PARAMETER);
    assert_int_equal(
        kms_cert_check(pem, NULL, (uint8_t *)other.data, other.len, now, &info, &fault),
        KMS_E_INVALID_PARAMETER);
    assert_int_equal(fault, KMS_CERT_FAULT_CERTIFICATE);
    assert_int_equal(kms_cert_check(pem, "garbage", NULL, 0, now, &info, &fault),
                     KMS_E_INVALID_PARAMETER);
    assert_int_equal(fault, KMS_CERT_FAULT_CHAIN);
    /* The certificate as its own chain: the copy is dropped, nothing is left to be the anchor. */
    assert_int_equal(kms_cert_check(pem, pem, NULL, 0, now, &info, &fault),
                     KMS_E_INVALID_PARAMETER);
    assert_int_equal(fault, KMS_CERT_FAULT_CHAIN);
    assert_int_equal(kms_cert_check("", NULL, NULL, 0, now, &info, &fault),
                     KMS_E_INVALID_PARAMETER);
    assert_int_equal(kms_cert_check(NULL, NULL, NULL, 0, now, &info, &fault),
                     KMS_E_INVALID_PARAMETER);
    /* A self-signed certificate whose signature does not verify, standing alone. */
    tampered = strdup(pem);
    tampered[strlen(tampered) - 40] = tampered[strlen(tampered) - 40] == 'A' ? 'B' : 'A';
    assert_int_equal(kms_cert_check(tampered, NULL, NULL, 0, now, &info, &fault),
                     KMS_E_INVALID_PARAMETER);
    free(tampered);
    free(pem);
    /* Keys certificates cannot have. */
    pem = self_signed(key_of(KMS_SPEC_RSA_3072), now, -10, 3600);
    assert_int_equal(kms_cert_check(pem, NULL, NULL, 0, now, &info, &fault),
                     KMS_E_INVALID_PARAMETER);
    free(pem);
    kms_buf_free(&spki);
    kms_buf_free(&other);
}

static void test_pkcs12_and_pkcs8(void **state)
{
    time_t now = time(NULL);
    char *pem = self_signed(key_of(KMS_SPEC_EC_P256), now, -10, 3600);
    char *cert = NULL, *chain = NULL;
    struct kms_buf p8 = {0}, p12 = {0}, back = {0}, enc = {0};
    EVP_PKEY *read;
    BIO *bio;

    assert_int_equal(kms_pkey_private_der(key_of(KMS_SPEC_EC_P256), &p8), KMS_OK);
    assert_int_equal(
        kms_pkcs12_create((uint8_t *)p8.data, p8.len, pem, NULL, "p12-pass", "friendly", &p12),
        KMS_OK);
    assert_int_equal(
        kms_pkcs12_open((uint8_t *)p12.data, p12.len, "p12-pass", &back, &cert, &chain), KMS_OK);
    assert_int_equal(back.len, p8.len);
    assert_memory_equal(back.data, p8.data, p8.len);
    assert_string_equal(cert, pem);
    assert_string_equal(chain, "");
    free(cert);
    free(chain);
    kms_buf_free_secret(&back);
    assert_int_equal(kms_pkcs12_open((uint8_t *)p12.data, p12.len, "wrong", &back, &cert, &chain),
                     KMS_E_INVALID_PARAMETER);
    assert_null(cert);
    assert_int_equal(back.len, 0);
    assert_int_equal(
        kms_pkcs12_open((uint8_t *)p12.data, p12.len - 1, "p12-pass", &back, &cert, &chain),
        KMS_E_INVALID_PARAMETER);
    /* The chain comes back in the file. */
    kms_buf_free(&p12);
    assert_int_equal(kms_pkcs12_create((uint8_t *)p8.data, p8.len, pem, pem, "p12-pass", "f", &p12),
                     KMS_OK);
    assert_int_equal(
        kms_pkcs12_open((uint8_t *)p12.data, p12.len, "p12-pass", &back, &cert, &chain), KMS_OK);
    assert_string_equal(chain, pem);
    free(cert);
    free(chain);
    kms_buf_free_secret(&back);

    /* Encrypted PKCS#8 opens with the passphrase only. */
    assert_int_equal(kms_pkcs8_encrypt_pem((uint8_t *)p8.data, p8.len, "pem-pass", &enc), KMS_OK);
    assert_non_null(strstr(enc.data, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    bio = BIO_new_mem_buf(enc.data, (int)enc.len);
    read = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"pem-pass");
    assert_non_null(read);
    assert_int_equal(EVP_PKEY_eq(read, key_of(KMS_SPEC_EC_P256)), 1);
    EVP_PKEY_free(read);
    BIO_free(bio);
    bio = BIO_new_mem_buf(enc.data, (int)enc.len);
    assert_null(PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"pem-wrong"));
    BIO_free(bio);
    kms_buf_free(&enc);
    kms_buf_free(&p12);
    kms_buf_free_secret(&p8);
    free(pem);
}

static int teardown(void **state)
{
    for (size_t i = 0; i < KMS_SPEC_COUNT; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dn_subject_accepted),
        cmocka_unit_test(test_dn_subject_refused),
        cmocka_unit_test(test_dn_any),
        cmocka_unit_test(test_dns_names),
        cmocka_unit_test(test_message_digests),
        cmocka_unit_test(test_csr),
        cmocka_unit_test(test_cert_check),
        cmocka_unit_test(test_pkcs12_and_pkcs8),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
