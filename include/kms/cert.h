/*
 * cert.h - X.509 building blocks for the certificate manager (spec/actions.md H,
 * spec/algorithms.md §9): distinguished names, DNS subject alternative names, PKCS#10 requests
 * signed through a callback (so the private key can stay in its keystore), checking a
 * certificate and its chain, and PKCS#12 / encrypted PKCS#8 in and out.
 *
 * Nothing here knows about requests or the store; every text crossing this interface is PEM or
 * RFC 2253, so callers need no OpenSSL headers.
 */
#ifndef KMS_CERT_H
#define KMS_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kms/crypto.h"
#include "kms/error.h"
#include "kms/keyspec.h"
#include "kms/util.h"

/* ---- distinguished names ---- */

#define KMS_DN_TEXT_MAX  1024 /* longest DN text accepted */
#define KMS_DN_ATTRS_MAX 16   /* most attributes in one DN */
#define KMS_DN_OU_MAX    5    /* OUs in a CreateCertificate subject [004] */

enum kms_dn_mode {
    /*
     * CreateCertificate's Subject: CN, O and C (two letters) exactly once each; ST, L and E
     * (emailAddress) at most once; OU at most KMS_DN_OU_MAX times; nothing else. Lengths as
     * RFC 5280's upper bounds (CN, O, OU 64; ST, L 128; E 128 ASCII).
     */
    KMS_DN_SUBJECT,
    /*
     * A DN to compare with (ListCertificates filters): any attribute type OpenSSL names, and a
     * two-letter C is upper-cased as in KMS_DN_SUBJECT.
     */
    KMS_DN_ANY,
};

struct kms_dn_attr {
    int nid;     /* OpenSSL's NID of the attribute type */
    char *value; /* owned; UTF-8, unescaped */
};

/* The attributes in the order of the text (most specific first, as RFC 2253 writes them). */
struct kms_dn {
    struct kms_dn_attr attrs[KMS_DN_ATTRS_MAX];
    size_t count;
};

/*
 * Parses an RFC 2253 / RFC 4514 DN: "CN=name,OU=unit,O=org,C=CN". Types are matched without
 * regard to case (E and EMAIL are emailAddress; S is ST); spaces around types and values are
 * dropped; values may use backslash escapes (\, \+ \\ \" \= \< \> \; \# and \XX hex) or be
 * quoted. Multi-valued RDNs ('+') and #-hex BER values are not accepted. C is upper-cased.
 * KMS_E_INVALID_PARAMETER for anything else; *out must be freed with kms_dn_free either way.
 */
kms_err kms_dn_parse(const char *text, enum kms_dn_mode mode, struct kms_dn *out);
void kms_dn_free(struct kms_dn *dn);
/*
 * The DN as kmsd writes names (RFC 2253, most specific first, UTF-8 kept as is): appends to out.
 * The same function prints the names of certificates, so parse + format is the canonical form
 * to compare a caller's text with a certificate's name.
 */
kms_err kms_dn_format(const struct kms_dn *dn, struct kms_buf *out);

/* ---- subject alternative names ---- */

#define KMS_SAN_MAX      10  /* DNS names in a CreateCertificate request [go-sdk] */
#define KMS_DNS_NAME_MAX 253 /* RFC 1035 */

/*
 * Whether name is a DNS name for a certificate: labels of 1-63 letters, digits and '-' (not at
 * either end), dot-separated, at most KMS_DNS_NAME_MAX characters; the first label may be '*'.
 */
bool kms_dns_name_valid(const char *name);

/* ---- certificate requests ---- */

/* Signs digest (32 bytes, for alg) with the request's private key, appending to sig. */
typedef kms_err (*kms_csr_sign_fn)(void *arg, enum kms_sign_alg alg, const uint8_t *digest,
                                   size_t digest_len, struct kms_buf *sig);

/* The signature algorithm of a key spec's requests: RSA PKCS#1 SHA-256, ECDSA SHA-256, SM2DSA. */
bool kms_csr_sign_alg(enum kms_key_spec spec, enum kms_sign_alg *out);

/*
 * Makes a PKCS#10 request for the public key public_der (SubjectPublicKeyInfo DER) with the
 * subject dn and DNS names sans (an extensionRequest with subjectAltName when count > 0),
 * signed by sign: sha256WithRSAEncryption, ecdsa-with-SHA256, or SM2-with-SM3 over
 * e = SM3(Z_A ‖ request) with KMS_SM2_DEFAULT_ID. The request is verified before it is
 * returned. Appends the PEM ("-----BEGIN CERTIFICATE REQUEST-----") to pem.
 */
kms_err kms_csr_create(const struct kms_dn *dn, const char *const *sans, size_t count,
                       const uint8_t *public_der, size_t public_der_len, kms_csr_sign_fn sign,
                       void *arg, struct kms_buf *pem);

/* ---- certificates ---- */

#define KMS_CHAIN_MAX 10 /* certificates in one chain */

/* What kmsd records about a certificate; every pointer owned (kms_cert_info_free). */
struct kms_cert_info {
    char *subject; /* RFC 2253 (kms_dn_format's form) */
    char *issuer;
    char *serial;              /* upper-case hex, e.g. "0A1B" */
    int64_t not_before;        /* seconds since the epoch */
    int64_t not_after;         /* seconds since the epoch */
    char *signature_algorithm; /* e.g. "RSA2048-SHA256", "ECDSA-SHA256", "SM2-SM3" */
    char *ski;                 /* "79 36 26 DE ..." */
    char *sans;                /* JSON array of the DNS names of subjectAltName */
    enum kms_key_spec spec;    /* of the certificate's public key */
    struct kms_buf public_der; /* the certificate's SubjectPublicKeyInfo */
    char *certificate;         /* the certificate, PEM (re-encoded) */
    char *chain;               /* the chain in path order, PEM, "" when none */
};

void kms_cert_info_free(struct kms_cert_info *info);

/* Which input a failed check is about. */
enum kms_cert_fault {
    KMS_CERT_FAULT_NONE = 0,
    KMS_CERT_FAULT_CERTIFICATE, /* the certificate itself (or, from PKCS#12, the file) */
    KMS_CERT_FAULT_CHAIN,       /* the chain */
};

/*
 * Checks a certificate (PEM text of exactly one certificate) and its optional chain (PEM,
 * 1-KMS_CHAIN_MAX certificates, NULL or "" for none) at time now, and fills info:
 *  - the certificate's key is one of RSA_2048, EC_P256, EC_SM2 and, when expect_public_der is
 *    given, the same key;
 *  - now lies within its validity;
 *  - without a chain, a self-issued certificate must carry a valid self-signature;
 *  - with a chain: the chain certificates (in any order; a copy of the certificate itself is
 *    dropped) must link, each issuing the previous one, into one path from the certificate,
 *    leaving none unused; the path's last certificate is the trust anchor, and OpenSSL's
 *    X509_verify_cert (partial chains allowed, time = now) checks every signature, validity
 *    period, CA flag and path length on it. SM2-with-SM3 signatures are checked with
 *    KMS_SM2_DEFAULT_ID.
 * KMS_E_INVALID_PARAMETER with *fault naming the input otherwise; KMS_E_INTERNAL for memory.
 */
kms_err kms_cert_check(const char *cert_pem, const char *chain_pem,
                       const uint8_t *expect_public_der, size_t expect_len, time_t now,
                       struct kms_cert_info *info, enum kms_cert_fault *fault);

/* ---- PKCS#12 and private-key export ---- */

/*
 * Opens a PKCS#12 file (DER) with passphrase: it must hold exactly one private key and the
 * certificate of that key, and may hold more certificates (the chain). Appends the key's
 * PKCS#8 DER to pkcs8 (a secret: the caller wipes it); *cert_pem and *chain_pem (malloc'd,
 * chain "" when none, in the file's order) get the certificates. KMS_E_INVALID_PARAMETER for a
 * wrong passphrase, a malformed file, a missing or extra key, a key without its certificate, or
 * a MAC or encryption asking for more than 1 000 000 key-derivation iterations.
 */
kms_err kms_pkcs12_open(const uint8_t *der, size_t len, const char *passphrase,
                        struct kms_buf *pkcs8, char **cert_pem, char **chain_pem);

/*
 * Makes a PKCS#12 file (AES-256-CBC with PBKDF2, HMAC-SHA256 MAC: OpenSSL 3's defaults) of a
 * PKCS#8 private key, its certificate and chain (PEM, may be "" / NULL), protected by
 * passphrase, with friendly_name on the key and certificate. Appends the DER to out.
 */
kms_err kms_pkcs12_create(const uint8_t *pkcs8, size_t len, const char *cert_pem,
                          const char *chain_pem, const char *passphrase, const char *friendly_name,
                          struct kms_buf *out);

/*
 * Appends a PKCS#8 private key as encrypted PEM ("-----BEGIN ENCRYPTED PRIVATE KEY-----",
 * PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC) under passphrase.
 */
kms_err kms_pkcs8_encrypt_pem(const uint8_t *pkcs8, size_t len, const char *passphrase,
                              struct kms_buf *pem);

#endif
