/*
 * cert.c - X.509 for the certificate manager with OpenSSL 3 (include/kms/cert.h): distinguished
 * names, DNS names, PKCS#10 requests signed through a callback, certificate and chain checks,
 * PKCS#12 and encrypted PKCS#8.
 *
 * A request is signed the way an HSM would sign it: the to-be-signed bytes are hashed here
 * (SHA-256, or SM3(Z_A ‖ M) for SM2) and the digest goes to the caller's callback, which runs the
 * keystore's sign operation. The private key never has to be in this process's memory for a CSR.
 *
 * OpenSSL 3 verifies SM2-with-SM3 signatures with an empty distinguishing ID unless told
 * otherwise; kmsd signs with and expects GB/T 32918.2's default ID (KMS_SM2_DEFAULT_ID), so every
 * SM2-signed certificate or request gets that ID set before it is verified.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "kms/cert.h"

/* ---- distinguished names ---- */

/* The attribute types a CreateCertificate subject may use, with their limits. */
struct kms_dn_type {
    const char *names[4]; /* accepted spellings, matched without regard to case */
    int nid;
    size_t max_chars;
    int max_count;
    bool required;
};

static const struct kms_dn_type kms_dn_types[] = {
    {{"CN", "commonName", NULL, NULL}, NID_commonName, 64, 1, true},
    {{"C", "countryName", NULL, NULL}, NID_countryName, 2, 1, true},
    {{"O", "organizationName", NULL, NULL}, NID_organizationName, 64, 1, true},
    {{"OU", "organizationalUnitName", NULL, NULL},
     NID_organizationalUnitName,
     64,
     KMS_DN_OU_MAX,
     false},
    {{"ST", "S", "stateOrProvinceName", NULL}, NID_stateOrProvinceName, 128, 1, false},
    {{"L", "localityName", NULL, NULL}, NID_localityName, 128, 1, false},
    {{"E", "EMAIL", "emailAddress", NULL}, NID_pkcs9_emailAddress, 128, 1, false},
};

static const struct kms_dn_type *kms_dn_type_find(const char *name)
{
    for (size_t i = 0; i < KMS_ARRAY_LEN(kms_dn_types); i++)
        for (size_t j = 0; j < 4 && kms_dn_types[i].names[j] != NULL; j++)
            if (strcasecmp(name, kms_dn_types[i].names[j]) == 0)
                return &kms_dn_types[i];
    return NULL;
}

void kms_dn_free(struct kms_dn *dn)
{
    for (size_t i = 0; i < dn->count; i++)
        free(dn->attrs[i].value);
    dn->count = 0;
}

static int kms_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Reads one attribute value at *pp into out (unescaped, NUL-terminated), stopping before an
 * unescaped ',' or '+' or at the end. Unescaped spaces at either end are dropped.
 */
static bool kms_dn_read_value(const char **pp, char *out)
{
    const char *p = *pp;
    size_t n = 0, keep = 0; /* keep: length up to the last character that must stay */

    while (*p == ' ')
        p++;
    if (*p == '#')
        return false; /* BER-encoded values are not accepted */
    if (*p == '"') {
        for (p++; *p != '"'; p++) {
            if (*p == '\0')
                return false;
            if (*p == '\\') {
                p++;
                if (*p == '\0')
                    return false;
            }
            out[n++] = *p;
        }
        keep = n;
        for (p++; *p == ' '; p++)
            ;
        if (*p != ',' && *p != '+' && *p != '\0')
            return false;
    } else {
        for (; *p != '\0' && *p != ',' && *p != '+'; p++) {
            if (*p == '\\') {
                int hi = kms_hex_digit(p[1]), lo = hi < 0 ? -1 : kms_hex_digit(p[2]);

                if (hi >= 0 && lo >= 0) {
                    if (hi == 0 && lo == 0)
                        return false; /* a NUL would cut the value short */
                    out[n++] = (char)(hi * 16 + lo);
                    p += 2;
                } else if (p[1] != '\0' && strchr(",+\"\\<>;=# ", p[1]) != NULL) {
                    out[n++] = *++p;
                } else {
                    return false;
                }
                keep = n;
                continue;
            }
            if (*p == '"' || *p == ';' || *p == '<' || *p == '>')
                return false; /* must be escaped (RFC 4514 §2.4) */
            out[n++] = *p;
            if (*p != ' ')
                keep = n;
        }
    }
    out[keep] = '\0';
    *pp = p;
    return keep > 0;
}

/* A value kmsd accepts in a name: UTF-8 without control characters. */
static bool kms_dn_value_valid(const char *v)
{
    if (!kms_utf8_valid(v, strlen(v)))
        return false;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* local@domain, printable ASCII without spaces (an IA5String emailAddress). */
static bool kms_email_valid(const char *v)
{
    const char *at = strchr(v, '@');

    if (at == NULL || at == v || at[1] == '\0' || strchr(at + 1, '@') != NULL)
        return false;
    for (const char *p = v; *p; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return false;
    return true;
}

/* The CreateCertificate rules of one attribute (mode KMS_DN_SUBJECT). */
static bool kms_dn_subject_value(const struct kms_dn_type *t, char *value)
{
    size_t chars = kms_utf8_length(value, strlen(value));

    if (chars > t->max_chars)
        return false;
    if (t->nid == NID_countryName) {
        if (chars != 2 || !isalpha((unsigned char)value[0]) || !isalpha((unsigned char)value[1]))
            return false;
        value[0] = (char)toupper((unsigned char)value[0]);
        value[1] = (char)toupper((unsigned char)value[1]);
    }
    if (t->nid == NID_pkcs9_emailAddress && !kms_email_valid(value))
        return false;
    return true;
}

static bool kms_dn_subject_complete(const struct kms_dn *dn)
{
    for (size_t i = 0; i < KMS_ARRAY_LEN(kms_dn_types); i++) {
        int seen = 0;

        for (size_t j = 0; j < dn->count; j++)
            seen += dn->attrs[j].nid == kms_dn_types[i].nid;
        if (seen > kms_dn_types[i].max_count || (kms_dn_types[i].required && seen == 0))
            return false;
    }
    return true;
}

kms_err kms_dn_parse(const char *text, enum kms_dn_mode mode, struct kms_dn *out)
{
    size_t len = text ? strlen(text) : 0;
    const char *p = text;
    char *type = NULL, *value = NULL;
    kms_err rc = KMS_E_INVALID_PARAMETER;

    memset(out, 0, sizeof(*out));
    if (len == 0 || len > KMS_DN_TEXT_MAX)
        return KMS_E_INVALID_PARAMETER;
    type = malloc(len + 1);
    value = malloc(len + 1);
    if (type == NULL || value == NULL) {
        rc = KMS_E_INTERNAL;
        goto out;
    }
    for (;;) {
        const struct kms_dn_type *t;
        size_t n = 0;
        int nid;

        while (*p == ' ')
            p++;
        while (isalnum((unsigned char)*p) || *p == '.' || *p == '-')
            type[n++] = *p++;
        type[n] = '\0';
        while (*p == ' ')
            p++;
        if (n == 0 || *p++ != '=')
            goto out;
        if (!kms_dn_read_value(&p, value) || !kms_dn_value_valid(value))
            goto out;
        if (*p == '+')
            goto out; /* multi-valued RDNs are not supported */
        t = kms_dn_type_find(type);
        if (mode == KMS_DN_SUBJECT) {
            if (t == NULL || !kms_dn_subject_value(t, value))
                goto out;
            nid = t->nid;
        } else {
            nid = t != NULL ? t->nid : OBJ_txt2nid(type);
            /* OpenSSL's names are case-sensitive; short ones are upper case (DC, UID, SN). */
            for (size_t i = 0; nid == NID_undef && i < n; i++)
                type[i] = (char)toupper((unsigned char)type[i]);
            if (nid == NID_undef)
                nid = OBJ_txt2nid(type);
            if (nid == NID_undef)
                goto out;
            /* Country codes compare as CreateCertificate writes them: upper case. */
            if (nid == NID_countryName && strlen(value) == 2) {
                value[0] = (char)toupper((unsigned char)value[0]);
                value[1] = (char)toupper((unsigned char)value[1]);
            }
        }
        if (out->count == KMS_DN_ATTRS_MAX)
            goto out;
        out->attrs[out->count].nid = nid;
        out->attrs[out->count].value = strdup(value);
        if (out->attrs[out->count++].value == NULL) {
            rc = KMS_E_INTERNAL;
            goto out;
        }
        if (*p == '\0')
            break;
        p++; /* ',' */
    }
    if (mode == KMS_DN_SUBJECT && !kms_dn_subject_complete(out))
        goto out;
    rc = KMS_OK;
out:
    ERR_clear_error();
    free(type);
    free(value);
    return rc;
}

/* The X509_NAME of dn: ASN.1 order is the reverse of the text's. */
static kms_err kms_dn_to_name(const struct kms_dn *dn, X509_NAME **out)
{
    X509_NAME *name = X509_NAME_new();

    *out = NULL;
    if (name == NULL)
        return KMS_E_INTERNAL;
    for (size_t i = dn->count; i-- > 0;) {
        /* OpenSSL enforces the string type and size bounds of each attribute here. */
        if (X509_NAME_add_entry_by_NID(name, dn->attrs[i].nid, MBSTRING_UTF8,
                                       (const unsigned char *)dn->attrs[i].value, -1, -1, 0) != 1) {
            X509_NAME_free(name);
            ERR_clear_error();
            return KMS_E_INVALID_PARAMETER;
        }
    }
    *out = name;
    return KMS_OK;
}

/* Appends the whole content of a memory BIO to out, NUL-terminated. */
static kms_err kms_bio_drain(BIO *bio, struct kms_buf *out)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);

    if (n < 0)
        return KMS_E_INTERNAL;
    return kms_buf_append(out, data, (size_t)n);
}

/* RFC 2253 with UTF-8 kept as UTF-8 (not escaped as \XX). */
static kms_err kms_name_format(const X509_NAME *name, struct kms_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    kms_err rc = KMS_E_INTERNAL;

    if (bio != NULL &&
        X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0)
        rc = kms_bio_drain(bio, out);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

kms_err kms_dn_format(const struct kms_dn *dn, struct kms_buf *out)
{
    X509_NAME *name = NULL;
    kms_err rc = kms_dn_to_name(dn, &name);

    if (rc == KMS_OK)
        rc = kms_name_format(name, out);
    X509_NAME_free(name);
    return rc;
}

/* ---- DNS names ---- */

bool kms_dns_name_valid(const char *name)
{
    size_t len = strlen(name), label = 0;
    const char *p = name;

    if (len == 0 || len > KMS_DNS_NAME_MAX)
        return false;
    if (strncmp(p, "*.", 2) == 0)
        p += 2;
    for (;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63 || p[-1] == '-')
                return false;
            if (*p == '\0')
                return true;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)*p) && !(*p == '-' && label > 0))
            return false;
        label++;
    }
}

/* ---- certificate requests ---- */

static const struct {
    enum kms_key_spec spec;
    enum kms_sign_alg alg;
    int sig_nid;
    int param_type; /* RSA's AlgorithmIdentifier carries NULL parameters, ECDSA's and SM2's none */
} kms_csr_algs[] = {
    {KMS_SPEC_RSA_2048, KMS_SIGN_RSA_PKCS1_SHA_256, NID_sha256WithRSAEncryption, V_ASN1_NULL},
    {KMS_SPEC_EC_P256, KMS_SIGN_ECDSA_SHA_256, NID_ecdsa_with_SHA256, V_ASN1_UNDEF},
    {KMS_SPEC_EC_SM2, KMS_SIGN_SM2DSA, NID_SM2_with_SM3, V_ASN1_UNDEF},
};

bool kms_csr_sign_alg(enum kms_key_spec spec, enum kms_sign_alg *out)
{
    for (size_t i = 0; i < KMS_ARRAY_LEN(kms_csr_algs); i++) {
        if (kms_csr_algs[i].spec == spec) {
            *out = kms_csr_algs[i].alg;
            return true;
        }
    }
    return false;
}

/* Tells OpenSSL to check an SM2 signature with KMS_SM2_DEFAULT_ID (it owns the string). */
static ASN1_OCTET_STRING *kms_sm2_id(void)
{
    ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();

    if (id != NULL && ASN1_OCTET_STRING_set(id, (const unsigned char *)KMS_SM2_DEFAULT_ID,
                                            (int)strlen(KMS_SM2_DEFAULT_ID)) != 1) {
        ASN1_OCTET_STRING_free(id);
        id = NULL;
    }
    return id;
}

static kms_err kms_csr_add_sans(X509_REQ *req, const char *const *sans, size_t count)
{
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    STACK_OF(X509_EXTENSION) *exts = NULL;
    kms_err rc = KMS_E_INTERNAL;

    if (names == NULL)
        return KMS_E_INTERNAL;
    for (size_t i = 0; i < count; i++) {
        GENERAL_NAME *gn = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();

        if (gn == NULL || s == NULL || ASN1_STRING_set(s, sans[i], -1) != 1) {
            GENERAL_NAME_free(gn);
            ASN1_IA5STRING_free(s);
            goto out;
        }
        GENERAL_NAME_set0_value(gn, GEN_DNS, s);
        if (sk_GENERAL_NAME_push(names, gn) <= 0) {
            GENERAL_NAME_free(gn);
            goto out;
        }
    }
    if (X509V3_add1_i2d(&exts, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1 &&
        X509_REQ_add_extensions(req, exts) == 1)
        rc = KMS_OK;
out:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(names);
    return rc;
}

/* Signs req's to-be-signed part through sign and puts algorithm and signature in place. */
static kms_err kms_csr_sign(X509_REQ *req, const EVP_PKEY *pub, size_t row, kms_csr_sign_fn sign,
                            void *arg)
{
    X509_ALGOR *algor = X509_ALGOR_new();
    ASN1_BIT_STRING *bits = NULL;
    struct kms_buf sig = {0};
    uint8_t digest[KMS_PKEY_DIGEST_LEN];
    unsigned char *tbs = NULL;
    int tbs_len;
    kms_err rc = KMS_E_INTERNAL;

    if (algor == NULL ||
        X509_ALGOR_set0(algor, OBJ_nid2obj(kms_csr_algs[row].sig_nid), kms_csr_algs[row].param_type,
                        NULL) != 1 ||
        X509_REQ_set1_signature_algo(req, algor) != 1)
        goto out;
    tbs_len = i2d_re_X509_REQ_tbs(req, &tbs);
    if (tbs_len <= 0)
        goto out;
    rc = kms_pkey_message_digest(pub, kms_csr_algs[row].alg, tbs, (size_t)tbs_len, digest);
    if (rc == KMS_OK)
        rc = sign(arg, kms_csr_algs[row].alg, digest, sizeof(digest), &sig);
    if (rc != KMS_OK)
        goto out;
    rc = KMS_E_INTERNAL;
    bits = ASN1_BIT_STRING_new();
    if (bits == NULL || sig.len > INT_MAX ||
        ASN1_BIT_STRING_set(bits, (unsigned char *)sig.data, (int)sig.len) != 1)
        goto out;
    /* A signature is whole octets: say "0 unused bits" instead of letting OpenSSL trim zeros. */
    bits->flags &= ~0x07L;
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set0_signature(req, bits);
    bits = NULL;
    rc = KMS_OK;
out:
    ASN1_BIT_STRING_free(bits);
    X509_ALGOR_free(algor);
    OPENSSL_free(tbs);
    kms_buf_free(&sig);
    return rc;
}

kms_err kms_csr_create(const struct kms_dn *dn, const char *const *sans, size_t count,
                       const uint8_t *public_der, size_t public_der_len, kms_csr_sign_fn sign,
                       void *arg, struct kms_buf *pem)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = NULL;
    EVP_PKEY *pub = NULL;
    enum kms_key_spec spec = KMS_SPEC_NONE;
    BIO *bio = NULL;
    size_t row = KMS_ARRAY_LEN(kms_csr_algs);
    kms_err rc;

    if (req == NULL)
        return KMS_E_INTERNAL;
    rc = kms_pkey_parse_public(public_der, public_der_len, &pub, &spec);
    for (size_t i = 0; rc == KMS_OK && i < KMS_ARRAY_LEN(kms_csr_algs); i++)
        if (kms_csr_algs[i].spec == spec)
            row = i;
    if (rc == KMS_OK && row == KMS_ARRAY_LEN(kms_csr_algs))
        rc = KMS_E_INVALID_PARAMETER;
    if (rc == KMS_OK)
        rc = kms_dn_to_name(dn, &name);
    if (rc != KMS_OK)
        goto out;
    rc = KMS_E_INTERNAL;
    if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, pub) != 1)
        goto out;
    if (count > 0 && kms_csr_add_sans(req, sans, count) != KMS_OK)
        goto out;
    rc = kms_csr_sign(req, pub, row, sign, arg);
    if (rc != KMS_OK)
        goto out;
    /* What the keystore signed must verify under the public key before anyone sees it. */
    if (spec == KMS_SPEC_EC_SM2) {
        ASN1_OCTET_STRING *id = kms_sm2_id();

        if (id == NULL)
            goto fail;
        X509_REQ_set0_distinguishing_id(req, id);
    }
    if (X509_REQ_verify(req, pub) != 1)
        goto fail;
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_X509_REQ(bio, req) != 1)
        goto fail;
    rc = kms_bio_drain(bio, pem);
    goto out;
fail:
    rc = KMS_E_INTERNAL;
out:
    BIO_free(bio);
    X509_NAME_free(name);
    EVP_PKEY_free(pub);
    X509_REQ_free(req);
    ERR_clear_error();
    return rc;
}

/* ---- certificates ---- */

void kms_cert_info_free(struct kms_cert_info *info)
{
    free(info->subject);
    free(info->issuer);
    free(info->serial);
    free(info->signature_algorithm);
    free(info->ski);
    free(info->sans);
    free(info->certificate);
    free(info->chain);
    kms_buf_free(&info->public_der);
    memset(info, 0, sizeof(*info));
}

/* Never asks for a passphrase: an encrypted PEM block simply fails to read. */
static int kms_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return 0;
}

/*
 * The certificates of a PEM text, in order: 1 to max of them, each fully decoded; other PEM
 * blocks and text around them are ignored. False when there is none, too many, or a broken one.
 */
static bool kms_pem_certs(const char *pem, int max, STACK_OF(X509) * *out)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    BIO *bio = BIO_new_mem_buf(pem, -1);
    bool ok = false;

    *out = NULL;
    if (certs == NULL || bio == NULL)
        goto out;
    for (;;) {
        X509 *x;
        unsigned long e;

        ERR_clear_error();
        x = PEM_read_bio_X509(bio, NULL, kms_no_passphrase, NULL);
        if (x == NULL) {
            e = ERR_peek_last_error();
            /* "No start line" at the end of the text is the normal end. */
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
                break;
            goto out;
        }
        if (sk_X509_num(certs) >= max || sk_X509_push(certs, x) <= 0) {
            X509_free(x);
            goto out;
        }
    }
    ok = sk_X509_num(certs) > 0;
out:
    BIO_free(bio);
    ERR_clear_error();
    if (!ok) {
        sk_X509_pop_free(certs, X509_free);
        return false;
    }
    *out = certs;
    return true;
}

static char *kms_buf_steal(struct kms_buf *b)
{
    char *s = b->data ? b->data : strdup("");

    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

/* PEM of certs[from..] appended to out. */
static kms_err kms_certs_pem(STACK_OF(X509) * certs, int from, struct kms_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    kms_err rc = KMS_E_INTERNAL;

    if (bio == NULL)
        return rc;
    for (int i = from; i < sk_X509_num(certs); i++)
        if (PEM_write_bio_X509(bio, sk_X509_value(certs, i)) != 1)
            goto out;
    rc = kms_bio_drain(bio, out);
out:
    BIO_free(bio);
    return rc;
}

static bool kms_asn1_time(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return false;
    *out = (int64_t)timegm(&tm);
    return true;
}

/* "SHA256" from sha256, "SM3" from sm3. */
static void kms_md_label(int md_nid, char *out, size_t size)
{
    const char *sn = OBJ_nid2sn(md_nid);
    size_t n = 0;

    for (; sn != NULL && *sn && n + 1 < size; sn++)
        if (*sn != '-')
            out[n++] = (char)toupper((unsigned char)*sn);
    out[n] = '\0';
}

/* RSA<bits>-<HASH>, RSA<bits>-PSS-<HASH>, ECDSA-<HASH>, SM2-SM3, else OpenSSL's long name. */
static char *kms_sig_alg_name(X509 *x)
{
    const ASN1_BIT_STRING *sig = NULL;
    const X509_ALGOR *alg = NULL;
    int md_nid = NID_undef, pk_nid = NID_undef;
    char md[32], name[96];

    X509_get0_signature(&sig, &alg, x);
    if (X509_get_signature_info(x, &md_nid, &pk_nid, NULL, NULL) != 1)
        md_nid = pk_nid = NID_undef;
    kms_md_label(md_nid, md, sizeof(md));
    /* An RSA signature is exactly as long as the signer's modulus. */
    if ((pk_nid == NID_rsaEncryption || pk_nid == NID_rsassaPss) && md[0] && sig != NULL)
        snprintf(name, sizeof(name), "RSA%d%s-%s", sig->length * 8,
                 pk_nid == NID_rsassaPss ? "-PSS" : "", md);
    else if (pk_nid == NID_X9_62_id_ecPublicKey && md[0])
        snprintf(name, sizeof(name), "ECDSA-%s", md);
    else if (pk_nid == NID_sm2)
        snprintf(name, sizeof(name), "SM2-%s", md[0] ? md : "SM3");
    else
        snprintf(name, sizeof(name), "%s", OBJ_nid2ln(X509_get_signature_nid(x)));
    ERR_clear_error();
    return strdup(name);
}

/* "79 36 26 DE ...": the subjectKeyIdentifier, or RFC 5280's method 1 when there is none. */
static char *kms_ski_text(X509 *x)
{
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(x);
    const ASN1_BIT_STRING *key = X509_get0_pubkey_bitstr(x);
    unsigned char sha1[SHA_DIGEST_LENGTH];
    const unsigned char *id;
    size_t len;
    char *out;

    if (skid != NULL) {
        id = ASN1_STRING_get0_data(skid);
        len = (size_t)ASN1_STRING_length(skid);
    } else if (key != NULL) {
        SHA1(key->data, (size_t)key->length, sha1);
        id = sha1;
        len = sizeof(sha1);
    } else {
        return strdup("");
    }
    out = malloc(len * 3 + 1);
    if (out == NULL)
        return NULL;
    out[0] = '\0';
    for (size_t i = 0; i < len; i++)
        snprintf(out + i * 3, 4, i + 1 < len ? "%02X " : "%02X", id[i]);
    return out;
}

/* JSON array of the DNS names of the subjectAltName extension ("[]" without one). */
static char *kms_san_json(X509 *x)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    cJSON *arr = cJSON_CreateArray();
    char *text = NULL;

    if (arr == NULL)
        goto out;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        const ASN1_IA5STRING *s;
        char *v;

        if (gn->type != GEN_DNS)
            continue;
        s = gn->d.dNSName;
        v = kms_strndup((const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
        if (v == NULL)
            goto out;
        /* A name with NUL or non-UTF-8 bytes cannot be shown faithfully: left out. */
        if (strlen(v) == (size_t)ASN1_STRING_length(s) && kms_utf8_valid(v, strlen(v)) &&
            !cJSON_AddItemToArray(arr, cJSON_CreateString(v))) {
            free(v);
            goto out;
        }
        free(v);
    }
    text = cJSON_PrintUnformatted(arr);
out:
    cJSON_Delete(arr);
    GENERAL_NAMES_free(names);
    ERR_clear_error();
    return text;
}

static kms_err kms_serial_text(X509 *x, char **out)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;

    *out = hex ? strdup(hex) : NULL;
    OPENSSL_free(hex);
    BN_free(bn);
    return *out ? KMS_OK : KMS_E_INTERNAL;
}

/* Everything kmsd records of leaf, except the chain. */
static kms_err kms_cert_describe(X509 *leaf, struct kms_cert_info *info)
{
    struct kms_buf subject = {0}, issuer = {0}, pem = {0};
    STACK_OF(X509) *one = sk_X509_new_null();
    kms_err rc;

    rc = kms_name_format(X509_get_subject_name(leaf), &subject);
    if (rc == KMS_OK)
        rc = kms_name_format(X509_get_issuer_name(leaf), &issuer);
    if (rc == KMS_OK)
        rc = kms_serial_text(leaf, &info->serial);
    if (rc == KMS_OK && (one == NULL || sk_X509_push(one, leaf) <= 0))
        rc = KMS_E_INTERNAL;
    if (rc == KMS_OK)
        rc = kms_certs_pem(one, 0, &pem);
    if (rc == KMS_OK)
        rc = kms_pkey_public_der(X509_get0_pubkey(leaf), &info->public_der);
    info->subject = kms_buf_steal(&subject);
    info->issuer = kms_buf_steal(&issuer);
    info->certificate = kms_buf_steal(&pem);
    info->signature_algorithm = kms_sig_alg_name(leaf);
    info->ski = kms_ski_text(leaf);
    info->sans = kms_san_json(leaf);
    if (rc == KMS_OK &&
        (info->subject == NULL || info->issuer == NULL || info->certificate == NULL ||
         info->signature_algorithm == NULL || info->ski == NULL || info->sans == NULL))
        rc = KMS_E_INTERNAL;
    sk_X509_free(one);
    kms_buf_free(&subject);
    kms_buf_free(&issuer);
    kms_buf_free(&pem);
    return rc;
}

/* Marks SM2-signed certificates to be verified with the default distinguishing ID. */
static kms_err kms_certs_sm2_ids(STACK_OF(X509) * certs)
{
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        ASN1_OCTET_STRING *id;

        if (X509_get_signature_nid(x) != NID_SM2_with_SM3)
            continue;
        id = kms_sm2_id();
        if (id == NULL)
            return KMS_E_INTERNAL;
        X509_set0_distinguishing_id(x, id);
    }
    return KMS_OK;
}

/*
 * Orders chain into the path from leaf: path[0] = leaf, each next certificate the issuer of the
 * one before. Copies of the leaf and duplicates are dropped; false when a certificate is left
 * that the path does not use.
 */
static bool kms_chain_order(X509 *leaf, STACK_OF(X509) * chain, STACK_OF(X509) * path)
{
    if (sk_X509_push(path, leaf) <= 0)
        return false;
    X509_up_ref(leaf);
    for (int i = sk_X509_num(chain) - 1; i >= 0; i--) {
        X509 *x = sk_X509_value(chain, i);
        bool dup = X509_cmp(x, leaf) == 0;

        for (int j = 0; j < i && !dup; j++)
            dup = X509_cmp(x, sk_X509_value(chain, j)) == 0;
        if (dup)
            X509_free(sk_X509_delete(chain, i));
    }
    while (sk_X509_num(chain) > 0) {
        X509 *last = sk_X509_value(path, sk_X509_num(path) - 1);
        int found = -1;

        for (int i = 0; i < sk_X509_num(chain) && found < 0; i++)
            if (X509_check_issued(sk_X509_value(chain, i), last) == X509_V_OK)
                found = i;
        if (found < 0)
            break;
        if (sk_X509_push(path, sk_X509_value(chain, found)) <= 0)
            return false;
        (void)sk_X509_delete(chain, found);
    }
    ERR_clear_error();
    return sk_X509_num(chain) == 0;
}

/* X509_verify_cert over path with its last certificate as the trust anchor. */
static bool kms_path_verify(STACK_OF(X509) * path, time_t now)
{
    int n = sk_X509_num(path);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    bool ok = false;

    if (store == NULL || ctx == NULL || untrusted == NULL ||
        X509_STORE_add_cert(store, sk_X509_value(path, n - 1)) != 1)
        goto out;
    for (int i = 1; i < n - 1; i++)
        if (sk_X509_push(untrusted, sk_X509_value(path, i)) <= 0)
            goto out;
    if (X509_STORE_CTX_init(ctx, store, sk_X509_value(path, 0), untrusted) != 1)
        goto out;
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), now);
    /* The path OpenSSL built must be the one given: no certificate skipped or added. */
    ok = X509_verify_cert(ctx) == 1 && sk_X509_num(X509_STORE_CTX_get0_chain(ctx)) == n;
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_free(untrusted);
    ERR_clear_error();
    return ok;
}

/* The key, validity and self-signature checks of the certificate itself. */
static bool kms_leaf_ok(X509 *leaf, const EVP_PKEY *expect, bool has_chain, time_t now,
                        struct kms_cert_info *info)
{
    EVP_PKEY *pub = X509_get0_pubkey(leaf);

    info->spec = pub ? kms_pkey_spec(pub) : KMS_SPEC_NONE;
    if (info->spec != KMS_SPEC_RSA_2048 && info->spec != KMS_SPEC_EC_P256 &&
        info->spec != KMS_SPEC_EC_SM2)
        return false;
    if (expect != NULL && EVP_PKEY_eq(pub, expect) != 1)
        return false;
    if (!kms_asn1_time(X509_get0_notBefore(leaf), &info->not_before) ||
        !kms_asn1_time(X509_get0_notAfter(leaf), &info->not_after) ||
        (int64_t)now < info->not_before || (int64_t)now > info->not_after)
        return false;
    /* Alone and self-issued: its own key is the only one to check its signature with. */
    if (!has_chain && X509_NAME_cmp(X509_get_subject_name(leaf), X509_get_issuer_name(leaf)) == 0 &&
        X509_verify(leaf, pub) != 1)
        return false;
    return true;
}

kms_err kms_cert_check(const char *cert_pem, const char *chain_pem,
                       const uint8_t *expect_public_der, size_t expect_len, time_t now,
                       struct kms_cert_info *info, enum kms_cert_fault *fault)
{
    STACK_OF(X509) *leaf_stack = NULL, *chain = NULL, *path = NULL;
    EVP_PKEY *expect = NULL;
    bool has_chain = chain_pem != NULL && chain_pem[0] != '\0';
    struct kms_buf chain_text = {0};
    X509 *leaf;
    kms_err rc = KMS_E_INVALID_PARAMETER;

    memset(info, 0, sizeof(*info));
    *fault = KMS_CERT_FAULT_CERTIFICATE;
    if (expect_public_der != NULL &&
        kms_pkey_parse_public(expect_public_der, expect_len, &expect, NULL) != KMS_OK)
        return KMS_E_INTERNAL;
    if (cert_pem == NULL || !kms_pem_certs(cert_pem, 1, &leaf_stack))
        goto out;
    leaf = sk_X509_value(leaf_stack, 0);
    if (has_chain && !kms_pem_certs(chain_pem, KMS_CHAIN_MAX, &chain)) {
        *fault = KMS_CERT_FAULT_CHAIN;
        goto out;
    }
    rc = kms_certs_sm2_ids(leaf_stack);
    if (rc == KMS_OK && chain != NULL)
        rc = kms_certs_sm2_ids(chain);
    if (rc != KMS_OK)
        goto out;
    rc = KMS_E_INVALID_PARAMETER;
    if (!kms_leaf_ok(leaf, expect, has_chain, now, info))
        goto out;
    if (has_chain) {
        *fault = KMS_CERT_FAULT_CHAIN;
        path = sk_X509_new_null();
        if (path == NULL) {
            rc = KMS_E_INTERNAL;
            goto out;
        }
        if (!kms_chain_order(leaf, chain, path) || sk_X509_num(path) < 2 ||
            !kms_path_verify(path, now))
            goto out;
        rc = kms_certs_pem(path, 1, &chain_text);
        if (rc != KMS_OK)
            goto out;
    }
    rc = kms_cert_describe(leaf, info);
    info->chain = kms_buf_steal(&chain_text);
    if (rc == KMS_OK && info->chain == NULL)
        rc = KMS_E_INTERNAL;
    if (rc == KMS_OK)
        *fault = KMS_CERT_FAULT_NONE;
out:
    if (rc != KMS_OK)
        kms_cert_info_free(info);
    kms_buf_free(&chain_text);
    sk_X509_pop_free(path, X509_free);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(leaf_stack, X509_free);
    EVP_PKEY_free(expect);
    ERR_clear_error();
    return rc;
}

/* ---- PKCS#12 ---- */

/*
 * Most key-derivation iterations a PKCS#12 may ask for (MAC, PBES1/PBES2): far above what tools
 * write (OpenSSL 2048, Windows 2000, OWASP's 600 000 for PBKDF2), yet bounded, so one request
 * cannot keep a worker thread deriving keys for minutes.
 */
#define KMS_P12_ITER_MAX 1000000

static bool kms_iter_ok(const ASN1_INTEGER *iter)
{
    long n = iter != NULL ? ASN1_INTEGER_get(iter) : 1; /* absent: 1 (RFC 7292) */

    return n >= 1 && n <= KMS_P12_ITER_MAX;
}

/* Whether a password-based encryption algorithm's iteration count is within bounds. */
static bool kms_pbe_ok(const X509_ALGOR *alg)
{
    const ASN1_TYPE *param = alg != NULL ? alg->parameter : NULL;
    bool ok = false;

    if (param == NULL)
        return false;
    if (OBJ_obj2nid(alg->algorithm) == NID_pbes2) {
        PBE2PARAM *pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), param);
        PBKDF2PARAM *kdf = NULL;

        if (pbe2 != NULL && pbe2->keyfunc != NULL &&
            OBJ_obj2nid(pbe2->keyfunc->algorithm) == NID_id_pbkdf2)
            kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter);
        ok = kdf != NULL && kms_iter_ok(kdf->iter);
        PBKDF2PARAM_free(kdf);
        PBE2PARAM_free(pbe2);
    } else {
        PBEPARAM *pbe = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), param);

        ok = pbe != NULL && kms_iter_ok(pbe->iter);
        PBEPARAM_free(pbe);
    }
    return ok;
}

/*
 * Counts the key bags of a list of safe bags, nested safe contents included; -1 when a shrouded
 * key asks for too many iterations.
 */
static int kms_p12_count_keys(const STACK_OF(PKCS12_SAFEBAG) * bags, int depth)
{
    int n = 0;

    for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags) && n >= 0; i++) {
        const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
        int nid = PKCS12_SAFEBAG_get_nid(bag);
        const X509_ALGOR *alg = NULL;
        int nested;

        if (nid == NID_pkcs8ShroudedKeyBag) {
            X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
            if (!kms_pbe_ok(alg))
                return -1;
        }
        if (nid == NID_keyBag || nid == NID_pkcs8ShroudedKeyBag) {
            n++;
        } else if (nid == NID_safeContentsBag && depth < 4) {
            nested = kms_p12_count_keys(PKCS12_SAFEBAG_get0_safes(bag), depth + 1);
            n = nested < 0 ? -1 : n + nested;
        }
    }
    return n;
}

/* The number of private keys in p12 (decrypting its encrypted parts with pass); -1 if broken. */
static int kms_p12_key_count(PKCS12 *p12, const char *pass)
{
    STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
    int n = 0;

    if (safes == NULL)
        return -1;
    for (int i = 0; i < sk_PKCS7_num(safes) && n >= 0; i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
        int nid = OBJ_obj2nid(p7->type);

        int keys;

        if (nid == NID_pkcs7_data)
            bags = PKCS12_unpack_p7data(p7);
        else if (nid == NID_pkcs7_encrypted && p7->d.encrypted != NULL &&
                 p7->d.encrypted->enc_data != NULL &&
                 kms_pbe_ok(p7->d.encrypted->enc_data->algorithm))
            bags = PKCS12_unpack_p7encdata(p7, pass, -1);
        if (bags == NULL) {
            n = -1;
            break;
        }
        keys = kms_p12_count_keys(bags, 0);
        n = keys < 0 ? -1 : n + keys;
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    }
    sk_PKCS7_pop_free(safes, PKCS7_free);
    return n;
}

kms_err kms_pkcs12_open(const uint8_t *der, size_t len, const char *passphrase,
                        struct kms_buf *pkcs8, char **cert_pem, char **chain_pem)
{
    const unsigned char *p = der;
    PKCS12 *p12 = NULL;
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *ca = NULL, *one = NULL;
    struct kms_buf cert_text = {0}, chain_text = {0};
    kms_err rc = KMS_E_INVALID_PARAMETER;

    *cert_pem = *chain_pem = NULL;
    if (der == NULL || len == 0 || len > LONG_MAX)
        return KMS_E_INVALID_PARAMETER;
    p12 = d2i_PKCS12(NULL, &p, (long)len);
    if (p12 == NULL || p != der + len)
        goto out;
    /* A MAC that does not verify is a wrong passphrase (or a damaged file). */
    if (PKCS12_mac_present(p12)) {
        const ASN1_INTEGER *iter = NULL;

        PKCS12_get0_mac(NULL, NULL, NULL, &iter, p12);
        if (!kms_iter_ok(iter) || PKCS12_verify_mac(p12, passphrase, -1) != 1)
            goto out;
    }
    if (kms_p12_key_count(p12, passphrase) != 1)
        goto out;
    if (PKCS12_parse(p12, passphrase, &pkey, &cert, &ca) != 1 || pkey == NULL || cert == NULL ||
        X509_check_private_key(cert, pkey) != 1)
        goto out;
    one = sk_X509_new_null();
    if (one == NULL || sk_X509_push(one, cert) <= 0) {
        rc = KMS_E_INTERNAL;
        goto out;
    }
    rc = kms_certs_pem(one, 0, &cert_text);
    if (rc == KMS_OK && ca != NULL)
        rc = kms_certs_pem(ca, 0, &chain_text);
    if (rc == KMS_OK)
        rc = kms_pkey_private_der(pkey, pkcs8);
    if (rc != KMS_OK)
        goto out;
    *cert_pem = kms_buf_steal(&cert_text);
    *chain_pem = kms_buf_steal(&chain_text);
    if (*cert_pem == NULL || *chain_pem == NULL) {
        free(*cert_pem);
        free(*chain_pem);
        *cert_pem = *chain_pem = NULL;
        rc = KMS_E_INTERNAL;
    }
out:
    sk_X509_free(one);
    kms_buf_free(&cert_text);
    kms_buf_free(&chain_text);
    sk_X509_pop_free(ca, X509_free);
    X509_free(cert);
    EVP_PKEY_free(pkey);
    PKCS12_free(p12);
    ERR_clear_error();
    return rc;
}

kms_err kms_pkcs12_create(const uint8_t *pkcs8, size_t len, const char *cert_pem,
                          const char *chain_pem, const char *passphrase, const char *friendly_name,
                          struct kms_buf *out)
{
    STACK_OF(X509) *leaf = NULL, *chain = NULL;
    EVP_PKEY *pkey = NULL;
    PKCS12 *p12 = NULL;
    unsigned char *p;
    kms_err rc = KMS_E_INTERNAL;
    int n;

    if (kms_pkey_from_private_der(pkcs8, len, &pkey) != KMS_OK ||
        !kms_pem_certs(cert_pem, 1, &leaf) ||
        (chain_pem != NULL && chain_pem[0] != '\0' &&
         !kms_pem_certs(chain_pem, KMS_CHAIN_MAX, &chain)))
        goto out;
    p12 = PKCS12_create(passphrase, friendly_name, pkey, sk_X509_value(leaf, 0), chain,
                        NID_aes_256_cbc, NID_aes_256_cbc, PKCS12_DEFAULT_ITER, PKCS12_DEFAULT_ITER,
                        0);
    if (p12 == NULL)
        goto out;
    n = i2d_PKCS12(p12, NULL);
    if (n <= 0 || kms_buf_reserve(out, (size_t)n) != KMS_OK)
        goto out;
    p = (unsigned char *)out->data + out->len;
    if (i2d_PKCS12(p12, &p) != n)
        goto out;
    out->len += (size_t)n;
    out->data[out->len] = '\0';
    rc = KMS_OK;
out:
    PKCS12_free(p12);
    sk_X509_pop_free(leaf, X509_free);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}

kms_err kms_pkcs8_encrypt_pem(const uint8_t *pkcs8, size_t len, const char *passphrase,
                              struct kms_buf *pem)
{
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    size_t pass_len = strlen(passphrase);
    kms_err rc = KMS_E_INTERNAL;

    if (pass_len > INT_MAX || kms_pkey_from_private_der(pkcs8, len, &pkey) != KMS_OK)
        goto out;
    bio = BIO_new(BIO_s_mem());
    if (bio != NULL && PEM_write_bio_PKCS8PrivateKey(bio, pkey, EVP_aes_256_cbc(), passphrase,
                                                     (int)pass_len, NULL, NULL) == 1)
        rc = kms_bio_drain(bio, pem);
out:
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}
