/*
 * pkey.c - public-key cryptography with OpenSSL 3 (spec/algorithms.md §5-§7): the algorithm
 * names and which key specs they apply to, SubjectPublicKeyInfo parsing, PEM, key-pair
 * generation and the PKCS#8 form of private keys, RSA-OAEP / PKCS#1 v1.5 and SM2 encryption,
 * RSA-PSS / PKCS#1 v1.5, ECDSA and SM2 signatures over precomputed digests (and signers that
 * keep their signing contexts per thread), and the two SM2 ciphertext layouts.
 *
 * Every signature here is over a digest the caller computed: EVP_PKEY_sign / EVP_PKEY_verify,
 * never EVP_DigestSign, so nothing is hashed twice. For SM2 that is exactly GB/T 32918.2 with
 * e = SM3(Z_A ‖ M) supplied by the caller: OpenSSL's SM2 signature provider uses the input of
 * EVP_PKEY_sign as e (the distinguishing ID, default "1234567812345678", only matters to
 * whoever computes Z_A).
 *
 * SM2 ciphertexts: OpenSSL reads and writes the GM/T 0009 DER SEQUENCE{x, y, C3, C2}; the API
 * speaks raw C1 ‖ C3 ‖ C2 (the 97-byte overhead of the published limits), so encryption output
 * is converted, and decryption accepts either form. The converters are strict so that one
 * ciphertext has one meaning.
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "kms/crypto.h"

/* The families of keys an algorithm can run on. */
enum kms_pkey_kind {
    KMS_KIND_NONE = 0,
    KMS_KIND_RSA,
    KMS_KIND_EC, /* NIST P-256 and secp256k1 (ECDSA) */
    KMS_KIND_SM2,
};

/* ASN.1 tags of the SM2 ciphertext. */
#define KMS_DER_INTEGER      0x02
#define KMS_DER_OCTET_STRING 0x04
#define KMS_DER_SEQUENCE     0x30
#define KMS_SM2_COORD_LEN    32

static const struct {
    const char *name;
    enum kms_sign_alg alg;
} kms_sign_names[] = {
    {"RSA_PSS_SHA_256", KMS_SIGN_RSA_PSS_SHA_256},
    {"RSA_PKCS1_SHA_256", KMS_SIGN_RSA_PKCS1_SHA_256},
    {"ECDSA_SHA_256", KMS_SIGN_ECDSA_SHA_256},
    {"SM2DSA", KMS_SIGN_SM2DSA},
};

static const struct {
    const char *name;
    enum kms_pk_alg alg;
} kms_pk_names[] = {
    {"RSAES_OAEP_SHA_256", KMS_PK_RSAES_OAEP_SHA_256},
    {"RSAES_OAEP_SHA_1", KMS_PK_RSAES_OAEP_SHA_1},
    {"RSAES_PKCS1_V1_5", KMS_PK_RSAES_PKCS1_V1_5},
    {"SM2PKE", KMS_PK_SM2PKE},
};

bool kms_sign_alg_parse(const char *name, enum kms_sign_alg *out)
{
    for (size_t i = 0; name != NULL && i < KMS_ARRAY_LEN(kms_sign_names); i++) {
        if (strcmp(name, kms_sign_names[i].name) == 0) {
            *out = kms_sign_names[i].alg;
            return true;
        }
    }
    return false;
}

bool kms_pk_alg_parse(const char *name, enum kms_pk_alg *out)
{
    for (size_t i = 0; name != NULL && i < KMS_ARRAY_LEN(kms_pk_names); i++) {
        if (strcmp(name, kms_pk_names[i].name) == 0) {
            *out = kms_pk_names[i].alg;
            return true;
        }
    }
    return false;
}

const char *kms_pk_alg_name(enum kms_pk_alg alg)
{
    for (size_t i = 0; i < KMS_ARRAY_LEN(kms_pk_names); i++)
        if (kms_pk_names[i].alg == alg)
            return kms_pk_names[i].name;
    return "";
}

static enum kms_pkey_kind kms_spec_kind(enum kms_key_spec spec)
{
    switch (spec) {
    case KMS_SPEC_RSA_2048:
    case KMS_SPEC_RSA_3072:
        return KMS_KIND_RSA;
    case KMS_SPEC_EC_P256:
    case KMS_SPEC_EC_P256K:
        return KMS_KIND_EC;
    case KMS_SPEC_EC_SM2:
        return KMS_KIND_SM2;
    default:
        return KMS_KIND_NONE;
    }
}

static enum kms_pkey_kind kms_sign_alg_kind(enum kms_sign_alg alg)
{
    switch (alg) {
    case KMS_SIGN_RSA_PSS_SHA_256:
    case KMS_SIGN_RSA_PKCS1_SHA_256:
        return KMS_KIND_RSA;
    case KMS_SIGN_ECDSA_SHA_256:
        return KMS_KIND_EC;
    case KMS_SIGN_SM2DSA:
        return KMS_KIND_SM2;
    }
    return KMS_KIND_NONE;
}

static enum kms_pkey_kind kms_pk_alg_kind(enum kms_pk_alg alg)
{
    switch (alg) {
    case KMS_PK_RSAES_OAEP_SHA_256:
    case KMS_PK_RSAES_OAEP_SHA_1:
    case KMS_PK_RSAES_PKCS1_V1_5:
        return KMS_KIND_RSA;
    case KMS_PK_SM2PKE:
        return KMS_KIND_SM2;
    }
    return KMS_KIND_NONE;
}

bool kms_sign_alg_fits(enum kms_key_spec spec, enum kms_sign_alg alg)
{
    enum kms_pkey_kind kind = kms_spec_kind(spec);

    return kind != KMS_KIND_NONE && kind == kms_sign_alg_kind(alg);
}

bool kms_pk_alg_fits(enum kms_key_spec spec, enum kms_pk_alg alg)
{
    enum kms_pkey_kind kind = kms_spec_kind(spec);

    return kind != KMS_KIND_NONE && kind == kms_pk_alg_kind(alg);
}

/* Longest plaintext for an RSA modulus of k bytes: OAEP takes 2·hLen + 2, PKCS#1 v1.5 11. */
static size_t kms_rsa_max_plaintext(size_t k, enum kms_pk_alg alg)
{
    size_t overhead;

    switch (alg) {
    case KMS_PK_RSAES_OAEP_SHA_256:
        overhead = 2 * 32 + 2;
        break;
    case KMS_PK_RSAES_OAEP_SHA_1:
        overhead = 2 * 20 + 2;
        break;
    case KMS_PK_RSAES_PKCS1_V1_5:
        overhead = 11;
        break;
    default:
        return 0;
    }
    return k > overhead ? k - overhead : 0;
}

size_t kms_pk_max_plaintext(enum kms_key_spec spec, enum kms_pk_alg alg)
{
    const struct kms_key_spec_info *info = kms_key_spec_get(spec);

    if (info == NULL || !kms_pk_alg_fits(spec, alg))
        return 0;
    if (alg == KMS_PK_SM2PKE)
        return KMS_SM2_PLAINTEXT_MAX;
    return kms_rsa_max_plaintext(info->material_len, alg);
}

bool kms_wrapping_spec_parse(const char *name, enum kms_key_spec *out)
{
    if (name == NULL)
        return false;
    if (strcmp(name, "RSA_2048") == 0) {
        *out = KMS_SPEC_RSA_2048;
        return true;
    }
    if (strcmp(name, "EC_SM2") == 0) {
        *out = KMS_SPEC_EC_SM2;
        return true;
    }
    return false;
}

static enum kms_pkey_kind kms_pkey_kind(const EVP_PKEY *pkey)
{
    /* A key on the SM2 curve is decoded as type SM2, never as EC, by OpenSSL 3. */
    if (EVP_PKEY_is_a(pkey, "SM2"))
        return KMS_KIND_SM2;
    if (EVP_PKEY_is_a(pkey, "EC"))
        return KMS_KIND_EC;
    if (EVP_PKEY_is_a(pkey, "RSA"))
        return KMS_KIND_RSA;
    return KMS_KIND_NONE;
}

enum kms_key_spec kms_pkey_spec(const struct evp_pkey_st *pkey)
{
    char group[64];
    size_t group_len = 0;

    switch (kms_pkey_kind(pkey)) {
    case KMS_KIND_RSA:
        switch (EVP_PKEY_get_bits(pkey)) {
        case 2048:
            return KMS_SPEC_RSA_2048;
        case 3072:
            return KMS_SPEC_RSA_3072;
        default:
            return KMS_SPEC_NONE;
        }
    case KMS_KIND_EC:
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &group_len) != 1)
            return KMS_SPEC_NONE;
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
            return KMS_SPEC_EC_P256;
        if (strcmp(group, "secp256k1") == 0)
            return KMS_SPEC_EC_P256K;
        return KMS_SPEC_NONE;
    case KMS_KIND_SM2:
        return KMS_SPEC_EC_SM2;
    default:
        return KMS_SPEC_NONE;
    }
}

/* A context for one operation; OpenSSL's API wants a mutable key though it does not change it. */
static EVP_PKEY_CTX *kms_pkey_ctx(const EVP_PKEY *pkey)
{
    return EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)pkey, NULL);
}

kms_err kms_pkey_parse_public(const uint8_t *der, size_t len, struct evp_pkey_st **out,
                              enum kms_key_spec *spec_out)
{
    const unsigned char *p = der;
    enum kms_key_spec spec = KMS_SPEC_NONE;
    EVP_PKEY *pkey = NULL;
    BIGNUM *n = NULL, *e = NULL;
    kms_err rc = KMS_E_INVALID_PARAMETER;

    *out = NULL;
    if (der == NULL || len == 0 || len > LONG_MAX)
        return KMS_E_INVALID_PARAMETER;
    pkey = d2i_PUBKEY(NULL, &p, (long)len);
    /* The whole input must be the one key: trailing bytes are not ignored. */
    if (pkey == NULL || p != der + len)
        goto out;
    spec = kms_pkey_spec(pkey);
    if (spec == KMS_SPEC_NONE)
        goto out;
    /*
     * EC and SM2 points are checked to be on the curve when decoded. For RSA, an odd modulus and
     * an odd exponent of at least 3 (e = 1 would "encrypt" to the padded plaintext). OpenSSL's
     * full EVP_PKEY_public_check adds a Miller-Rabin test of n that costs milliseconds.
     */
    if (spec == KMS_SPEC_RSA_2048 || spec == KMS_SPEC_RSA_3072) {
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
            EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
            rc = KMS_E_INTERNAL;
            goto out;
        }
        if (!BN_is_odd(n) || !BN_is_odd(e) || BN_is_one(e))
            goto out;
    }
    rc = KMS_OK;
out:
    BN_free(n);
    BN_free(e);
    if (rc != KMS_OK) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return rc;
    }
    if (spec_out != NULL)
        *spec_out = spec;
    *out = pkey;
    return KMS_OK;
}

void kms_pkey_free(struct evp_pkey_st *pkey)
{
    EVP_PKEY_free(pkey);
}

kms_err kms_pkey_generate(enum kms_key_spec spec, struct evp_pkey_st **out)
{
    switch (spec) {
    case KMS_SPEC_RSA_2048:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        break;
    case KMS_SPEC_RSA_3072:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
        break;
    case KMS_SPEC_EC_P256:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case KMS_SPEC_EC_P256K:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
        break;
    case KMS_SPEC_EC_SM2:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
        break;
    default:
        *out = NULL;
        break;
    }
    if (*out == NULL) {
        ERR_clear_error();
        return KMS_E_INTERNAL;
    }
    return KMS_OK;
}

kms_err kms_pkey_public_der(const struct evp_pkey_st *pkey, struct kms_buf *out)
{
    int n = i2d_PUBKEY(pkey, NULL);
    unsigned char *p;
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

kms_err kms_pkey_private_der(const struct evp_pkey_st *pkey, struct kms_buf *out)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pkey);
    unsigned char *p;
    kms_err rc = KMS_E_INTERNAL;
    int n;

    if (p8 == NULL)
        goto out;
    n = i2d_PKCS8_PRIV_KEY_INFO(p8, NULL);
    if (n <= 0)
        goto out;
    /* Reserved before writing: a secret must never be left behind by a realloc. */
    rc = kms_buf_reserve(out, (size_t)n);
    if (rc != KMS_OK)
        goto out;
    p = (unsigned char *)out->data + out->len;
    if (i2d_PKCS8_PRIV_KEY_INFO(p8, &p) != n) {
        OPENSSL_cleanse(out->data + out->len, (size_t)n);
        rc = KMS_E_INTERNAL;
        goto out;
    }
    out->len += (size_t)n;
    out->data[out->len] = '\0';
out:
    /* The structure's free wipes the key octets (OpenSSL's PKCS#8 free callback). */
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (rc != KMS_OK)
        ERR_clear_error();
    return rc;
}

static int kms_pkey_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

kms_err kms_pkey_from_private_der(const uint8_t *der, size_t len, struct evp_pkey_st **out)
{
    const unsigned char *p = der;
    EVP_PKEY *pkey;

    *out = NULL;
    if (der == NULL || len == 0 || len > LONG_MAX)
        return KMS_E_INTERNAL;
    pkey = d2i_AutoPrivateKey(NULL, &p, (long)len);
    if (pkey == NULL || p != der + len || kms_pkey_kind(pkey) == KMS_KIND_NONE) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return KMS_E_INTERNAL;
    }
    *out = pkey;
    return KMS_OK;
}

kms_err kms_pkey_public_pem(const uint8_t *der, size_t len, struct kms_buf *out)
{
    static const char head[] = "-----BEGIN PUBLIC KEY-----\n";
    static const char tail[] = "-----END PUBLIC KEY-----\n";
    char line[65];
    kms_err rc = kms_buf_append_str(out, head);

    /* 48 input bytes make one 64-character line. */
    for (size_t off = 0; rc == KMS_OK && off < len; off += 48) {
        size_t n = len - off < 48 ? len - off : 48;
        size_t chars = kms_b64_encode(der + off, n, line);

        rc = kms_buf_append(out, line, chars);
        if (rc == KMS_OK)
            rc = kms_buf_append_char(out, '\n');
    }
    if (rc == KMS_OK)
        rc = kms_buf_append_str(out, tail);
    return rc;
}

/* ---- SM2 ciphertext layouts ---- */

/* Bytes of a DER length field for n (n < 65536: the largest SM2 ciphertext is far below). */
static size_t kms_der_len_size(size_t n)
{
    return n < 0x80 ? 1 : n < 0x100 ? 2 : 3;
}

static uint8_t *kms_der_put(uint8_t *p, uint8_t tag, size_t n)
{
    *p++ = tag;
    if (n < 0x80) {
        *p++ = (uint8_t)n;
    } else if (n < 0x100) {
        *p++ = 0x81;
        *p++ = (uint8_t)n;
    } else {
        *p++ = 0x82;
        *p++ = (uint8_t)(n >> 8);
        *p++ = (uint8_t)n;
    }
    return p;
}

/* A 32-byte coordinate as the content of a minimal, non-negative DER INTEGER. */
struct kms_der_int {
    const uint8_t *digits; /* leading zero bytes skipped (at least one byte kept) */
    size_t digits_len;
    bool pad; /* a 0x00 must precede digits so the INTEGER stays positive */
};

static void kms_der_int_of(const uint8_t coord[KMS_SM2_COORD_LEN], struct kms_der_int *out)
{
    size_t skip = 0;

    while (skip < KMS_SM2_COORD_LEN - 1 && coord[skip] == 0)
        skip++;
    out->digits = coord + skip;
    out->digits_len = KMS_SM2_COORD_LEN - skip;
    out->pad = (out->digits[0] & 0x80) != 0;
}

static size_t kms_der_int_content(const struct kms_der_int *i)
{
    return i->digits_len + (i->pad ? 1 : 0);
}

static uint8_t *kms_der_int_put(uint8_t *p, const struct kms_der_int *i)
{
    p = kms_der_put(p, KMS_DER_INTEGER, kms_der_int_content(i));
    if (i->pad)
        *p++ = 0;
    memcpy(p, i->digits, i->digits_len);
    return p + i->digits_len;
}

kms_err kms_sm2_ct_raw_to_der(const uint8_t *raw, size_t len, struct kms_buf *der)
{
    struct kms_der_int x, y;
    size_t c2_len, body, total;
    const uint8_t *c3, *c2;
    uint8_t *p;
    kms_err rc;

    if (raw == NULL || len < KMS_SM2_OVERHEAD || raw[0] != 0x04 ||
        len - KMS_SM2_OVERHEAD > KMS_SM2_PLAINTEXT_MAX)
        return KMS_E_INVALID_PARAMETER;
    kms_der_int_of(raw + 1, &x);
    kms_der_int_of(raw + 1 + KMS_SM2_COORD_LEN, &y);
    c3 = raw + KMS_SM2_C1_LEN;
    c2 = c3 + KMS_SM2_C3_LEN;
    c2_len = len - KMS_SM2_OVERHEAD;
    body = 1 + kms_der_len_size(kms_der_int_content(&x)) + kms_der_int_content(&x) + 1 +
           kms_der_len_size(kms_der_int_content(&y)) + kms_der_int_content(&y) + 1 +
           kms_der_len_size(KMS_SM2_C3_LEN) + KMS_SM2_C3_LEN + 1 + kms_der_len_size(c2_len) +
           c2_len;
    total = 1 + kms_der_len_size(body) + body;
    rc = kms_buf_reserve(der, total);
    if (rc != KMS_OK)
        return rc;
    p = (uint8_t *)der->data + der->len;
    p = kms_der_put(p, KMS_DER_SEQUENCE, body);
    p = kms_der_int_put(p, &x);
    p = kms_der_int_put(p, &y);
    p = kms_der_put(p, KMS_DER_OCTET_STRING, KMS_SM2_C3_LEN);
    memcpy(p, c3, KMS_SM2_C3_LEN);
    p = kms_der_put(p + KMS_SM2_C3_LEN, KMS_DER_OCTET_STRING, c2_len);
    memcpy(p, c2, c2_len);
    der->len += total;
    der->data[der->len] = '\0';
    return KMS_OK;
}

/* A cursor over DER bytes. */
struct kms_der_reader {
    const uint8_t *p;
    size_t left;
};

/* Reads one element with the given tag and a minimal definite length (at most two bytes). */
static bool kms_der_read(struct kms_der_reader *r, uint8_t tag, const uint8_t **value, size_t *len)
{
    size_t n, hdr = 2;

    if (r->left < 2 || r->p[0] != tag)
        return false;
    n = r->p[1];
    if (n == 0x81) {
        if (r->left < 3 || r->p[2] < 0x80)
            return false;
        n = r->p[2];
        hdr = 3;
    } else if (n == 0x82) {
        if (r->left < 4)
            return false;
        n = ((size_t)r->p[2] << 8) | r->p[3];
        if (n < 0x100)
            return false;
        hdr = 4;
    } else if (n >= 0x80) {
        return false; /* indefinite or overlong lengths are not DER of a small value */
    }
    if (n > r->left - hdr)
        return false;
    *value = r->p + hdr;
    *len = n;
    r->p += hdr + n;
    r->left -= hdr + n;
    return true;
}

/* A minimal non-negative INTEGER of at most 32 significant bytes -> 32 bytes big-endian. */
static bool kms_der_read_coord(struct kms_der_reader *r, uint8_t out[KMS_SM2_COORD_LEN])
{
    const uint8_t *v;
    size_t n;

    if (!kms_der_read(r, KMS_DER_INTEGER, &v, &n) || n == 0 || (v[0] & 0x80) != 0)
        return false;
    if (n > 1 && v[0] == 0) {
        if ((v[1] & 0x80) == 0)
            return false; /* a leading zero that is not needed: not DER */
        v++;
        n--;
    }
    if (n > KMS_SM2_COORD_LEN)
        return false;
    memset(out, 0, KMS_SM2_COORD_LEN - n);
    memcpy(out + KMS_SM2_COORD_LEN - n, v, n);
    return true;
}

kms_err kms_sm2_ct_der_to_raw(const uint8_t *der, size_t len, struct kms_buf *raw)
{
    struct kms_der_reader outer = {der, len}, seq;
    uint8_t x[KMS_SM2_COORD_LEN], y[KMS_SM2_COORD_LEN];
    const uint8_t *c3, *c2;
    size_t c3_len, c2_len;
    uint8_t *p;
    kms_err rc;

    if (der == NULL || !kms_der_read(&outer, KMS_DER_SEQUENCE, &seq.p, &seq.left) ||
        outer.left != 0)
        return KMS_E_INVALID_PARAMETER;
    if (!kms_der_read_coord(&seq, x) || !kms_der_read_coord(&seq, y) ||
        !kms_der_read(&seq, KMS_DER_OCTET_STRING, &c3, &c3_len) ||
        !kms_der_read(&seq, KMS_DER_OCTET_STRING, &c2, &c2_len) || seq.left != 0 ||
        c3_len != KMS_SM2_C3_LEN || c2_len > KMS_SM2_PLAINTEXT_MAX)
        return KMS_E_INVALID_PARAMETER;
    rc = kms_buf_reserve(raw, KMS_SM2_OVERHEAD + c2_len);
    if (rc != KMS_OK)
        return rc;
    p = (uint8_t *)raw->data + raw->len;
    p[0] = 0x04;
    memcpy(p + 1, x, sizeof(x));
    memcpy(p + 1 + sizeof(x), y, sizeof(y));
    memcpy(p + KMS_SM2_C1_LEN, c3, KMS_SM2_C3_LEN);
    memcpy(p + KMS_SM2_OVERHEAD, c2, c2_len);
    raw->len += KMS_SM2_OVERHEAD + c2_len;
    raw->data[raw->len] = '\0';
    return KMS_OK;
}

/* ---- encryption ---- */

/* Padding and hashes of an RSA encryption algorithm on an encrypt/decrypt context. */
static bool kms_rsa_set_padding(EVP_PKEY_CTX *ctx, enum kms_pk_alg alg)
{
    const EVP_MD *md;

    if (alg == KMS_PK_RSAES_PKCS1_V1_5)
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0;
    md = alg == KMS_PK_RSAES_OAEP_SHA_256 ? EVP_sha256() : EVP_sha1();
    /* OAEP with MGF1 over the same hash and an empty label, as algorithms.md §5 and §7.2 say. */
    return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) > 0 && EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0;
}

/* The longest plaintext alg takes with this key (0 when alg does not apply). */
static size_t kms_pkey_max_plaintext(const EVP_PKEY *pkey, enum kms_pk_alg alg)
{
    int k;

    if (kms_pkey_kind(pkey) != kms_pk_alg_kind(alg))
        return 0;
    if (alg == KMS_PK_SM2PKE)
        return KMS_SM2_PLAINTEXT_MAX;
    k = EVP_PKEY_get_size(pkey);
    return k > 0 ? kms_rsa_max_plaintext((size_t)k, alg) : 0;
}

kms_err kms_pkey_encrypt(const struct evp_pkey_st *pkey, enum kms_pk_alg alg, const uint8_t *pt,
                         size_t pt_len, struct kms_buf *ct)
{
    struct kms_buf der = {0};
    EVP_PKEY_CTX *ctx = NULL;
    size_t max = kms_pkey_max_plaintext(pkey, alg);
    size_t out_len = 0;
    struct kms_buf *dst = alg == KMS_PK_SM2PKE ? &der : ct;
    kms_err rc = KMS_E_INTERNAL;

    if (max == 0)
        return KMS_E_UNSUPPORTED_ALGORITHM;
    if (pt_len == 0 || pt_len > max)
        return KMS_E_INVALID_PARAMETER;
    ctx = kms_pkey_ctx(pkey);
    if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1)
        goto out;
    if (alg != KMS_PK_SM2PKE && !kms_rsa_set_padding(ctx, alg))
        goto out;
    if (EVP_PKEY_encrypt(ctx, NULL, &out_len, pt, pt_len) != 1 ||
        kms_buf_reserve(dst, out_len) != KMS_OK)
        goto out;
    if (EVP_PKEY_encrypt(ctx, (unsigned char *)dst->data + dst->len, &out_len, pt, pt_len) != 1)
        goto out;
    dst->len += out_len;
    dst->data[dst->len] = '\0';
    /* OpenSSL writes GM/T 0009 DER; the API's SM2PKE ciphertext is raw C1 ‖ C3 ‖ C2. */
    rc = alg == KMS_PK_SM2PKE ? kms_sm2_ct_der_to_raw((uint8_t *)der.data, der.len, ct) : KMS_OK;
    if (rc == KMS_E_INVALID_PARAMETER)
        rc = KMS_E_INTERNAL;
out:
    EVP_PKEY_CTX_free(ctx);
    kms_buf_free(&der);
    if (rc != KMS_OK)
        ERR_clear_error();
    return rc;
}

kms_err kms_pkey_decrypt(const struct evp_pkey_st *pkey, enum kms_pk_alg alg, const uint8_t *ct,
                         size_t ct_len, struct kms_buf *pt)
{
    struct kms_buf der = {0}, raw = {0};
    const uint8_t *in = ct;
    size_t in_len = ct_len, out_len = 0, reserved = 0;
    EVP_PKEY_CTX *ctx = NULL;
    kms_err rc = KMS_E_INVALID_PARAMETER;

    if (kms_pkey_max_plaintext(pkey, alg) == 0)
        return KMS_E_UNSUPPORTED_ALGORITHM;
    if (ct == NULL || ct_len == 0)
        return KMS_E_INVALID_PARAMETER;
    if (alg == KMS_PK_SM2PKE) {
        /* Either layout; DER is first read into raw so only canonical DER reaches OpenSSL. */
        if (ct[0] == KMS_DER_SEQUENCE) {
            rc = kms_sm2_ct_der_to_raw(ct, ct_len, &raw);
            if (rc != KMS_OK)
                goto out;
            in = (uint8_t *)raw.data;
            in_len = raw.len;
        }
        rc = kms_sm2_ct_raw_to_der(in, in_len, &der);
        if (rc != KMS_OK)
            goto out;
        in = (uint8_t *)der.data;
        in_len = der.len;
    } else if (EVP_PKEY_get_size(pkey) <= 0 || ct_len != (size_t)EVP_PKEY_get_size(pkey)) {
        rc = KMS_E_INVALID_PARAMETER;
        goto out;
    }
    rc = KMS_E_INTERNAL;
    ctx = kms_pkey_ctx(pkey);
    if (ctx == NULL || EVP_PKEY_decrypt_init(ctx) != 1)
        goto out;
    if (alg != KMS_PK_SM2PKE && !kms_rsa_set_padding(ctx, alg))
        goto out;
    rc = KMS_E_INVALID_PARAMETER;
    if (EVP_PKEY_decrypt(ctx, NULL, &out_len, in, in_len) != 1)
        goto out;
    reserved = out_len;
    if (kms_buf_reserve(pt, reserved) != KMS_OK) {
        rc = KMS_E_INTERNAL;
        goto out;
    }
    if (EVP_PKEY_decrypt(ctx, (unsigned char *)pt->data + pt->len, &out_len, in, in_len) != 1 ||
        out_len > reserved) {
        /* Whatever a failed decryption left in the buffer is not plaintext anyone may see. */
        OPENSSL_cleanse(pt->data + pt->len, reserved);
        goto out;
    }
    pt->len += out_len;
    pt->data[pt->len] = '\0';
    rc = KMS_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    kms_buf_free(&der);
    kms_buf_free(&raw);
    if (rc != KMS_OK)
        ERR_clear_error();
    return rc;
}

/* ---- signatures ---- */

/* Sets what alg needs on a sign/verify context: padding, hash, MGF1, salt length. */
static bool kms_sign_setup(EVP_PKEY_CTX *ctx, enum kms_sign_alg alg)
{
    switch (alg) {
    case KMS_SIGN_RSA_PSS_SHA_256:
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
               EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0 &&
               EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) > 0 &&
               EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) > 0;
    case KMS_SIGN_RSA_PKCS1_SHA_256:
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
               EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0;
    case KMS_SIGN_ECDSA_SHA_256:
        return EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0;
    case KMS_SIGN_SM2DSA:
        /* The input is e = SM3(Z_A ‖ M) already: nothing to set, nothing is hashed again. */
        return true;
    }
    return false;
}

/* alg on a key of kind: a known algorithm of that family, over a 32-byte digest. */
static kms_err kms_sign_check(enum kms_pkey_kind kind, enum kms_sign_alg alg, size_t digest_len)
{
    if (kind != kms_sign_alg_kind(alg) || kind == KMS_KIND_NONE)
        return KMS_E_UNSUPPORTED_ALGORITHM;
    if (digest_len != KMS_PKEY_DIGEST_LEN)
        return KMS_E_INVALID_PARAMETER;
    return KMS_OK;
}

/* A context ready to sign with alg under pkey; NULL on failure. */
static EVP_PKEY_CTX *kms_sign_ctx_new(const EVP_PKEY *pkey, enum kms_sign_alg alg)
{
    EVP_PKEY_CTX *ctx = kms_pkey_ctx(pkey);

    if (ctx != NULL && (EVP_PKEY_sign_init(ctx) != 1 || !kms_sign_setup(ctx, alg))) {
        EVP_PKEY_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

/* Signs digest with a ready context, appending at most max_len bytes to sig. */
static kms_err kms_sign_with(EVP_PKEY_CTX *ctx, size_t max_len, const uint8_t *digest,
                             struct kms_buf *sig)
{
    size_t sig_len = max_len;

    if (kms_buf_reserve(sig, max_len) != KMS_OK)
        return KMS_E_INTERNAL;
    if (EVP_PKEY_sign(ctx, (unsigned char *)sig->data + sig->len, &sig_len, digest,
                      KMS_PKEY_DIGEST_LEN) != 1 ||
        sig_len > max_len) {
        ERR_clear_error();
        return KMS_E_INTERNAL;
    }
    sig->len += sig_len;
    sig->data[sig->len] = '\0';
    return KMS_OK;
}

/* The longest signature pkey makes (modulus length, or the largest DER SEQUENCE{r,s}). */
static size_t kms_sign_max_len(const EVP_PKEY *pkey)
{
    int size = EVP_PKEY_get_size(pkey);

    return size > 0 ? (size_t)size : 0;
}

kms_err kms_pkey_sign(const struct evp_pkey_st *pkey, enum kms_sign_alg alg, const uint8_t *digest,
                      size_t digest_len, struct kms_buf *sig)
{
    EVP_PKEY_CTX *ctx;
    size_t max_len;
    kms_err rc = kms_sign_check(kms_pkey_kind(pkey), alg, digest_len);

    if (rc != KMS_OK)
        return rc;
    max_len = kms_sign_max_len(pkey);
    ctx = max_len > 0 ? kms_sign_ctx_new(pkey, alg) : NULL;
    if (ctx == NULL) {
        ERR_clear_error();
        return KMS_E_INTERNAL;
    }
    rc = kms_sign_with(ctx, max_len, digest, sig);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/*
 * Signers. Setting up a context (provider fetches, padding and digest parameters) costs OpenSSL
 * 3.0 about 29k instructions, 3-4 µs: ~15 % of a P-256 signature (bench/README.md). A signer
 * keeps the contexts it makes, one per thread and algorithm. Each thread takes a slot number on
 * its first signature and keeps it; numbers are never given out twice, so a slot's contexts are
 * only ever used by one thread and need no lock. Threads past the last slot set a context up per
 * signature, as kms_pkey_sign does.
 */
#define KMS_SIGNER_SLOTS 16
#define KMS_SIGNER_ALGS  4 /* enum kms_sign_alg: 1 .. KMS_SIGN_SM2DSA */

struct kms_signer {
    const EVP_PKEY *sg_pkey; /* borrowed: the key outlives its signer */
    enum kms_pkey_kind sg_kind;
    size_t sg_max_len;
    EVP_PKEY_CTX *sg_ctx[KMS_SIGNER_SLOTS][KMS_SIGNER_ALGS];
};

static atomic_int kms_signer_next_slot;
static _Thread_local int kms_signer_slot_plus_one; /* 0: none taken yet */

/* This thread's slot, or -1 when every slot is taken. */
static int kms_signer_slot(void)
{
    if (kms_signer_slot_plus_one == 0) {
        int slot = atomic_fetch_add(&kms_signer_next_slot, 1);

        kms_signer_slot_plus_one = slot < KMS_SIGNER_SLOTS ? slot + 1 : -1;
    }
    return kms_signer_slot_plus_one > 0 ? kms_signer_slot_plus_one - 1 : -1;
}

kms_err kms_signer_new(const struct evp_pkey_st *pkey, struct kms_signer **out)
{
    struct kms_signer *s;

    *out = NULL;
    if (pkey == NULL || kms_pkey_kind(pkey) == KMS_KIND_NONE || kms_sign_max_len(pkey) == 0)
        return KMS_E_UNSUPPORTED_KEY_SPEC;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return KMS_E_INTERNAL;
    s->sg_pkey = pkey;
    s->sg_kind = kms_pkey_kind(pkey);
    s->sg_max_len = kms_sign_max_len(pkey);
    *out = s;
    return KMS_OK;
}

void kms_signer_free(struct kms_signer *s)
{
    if (s == NULL)
        return;
    for (size_t slot = 0; slot < KMS_SIGNER_SLOTS; slot++)
        for (size_t alg = 0; alg < KMS_SIGNER_ALGS; alg++)
            EVP_PKEY_CTX_free(s->sg_ctx[slot][alg]);
    free(s);
}

kms_err kms_signer_sign(struct kms_signer *s, enum kms_sign_alg alg, const uint8_t *digest,
                        size_t digest_len, struct kms_buf *sig)
{
    EVP_PKEY_CTX **ctx;
    int slot;
    /* Also keeps alg within 1 .. KMS_SIGNER_ALGS: any other value has no kind. */
    kms_err rc = kms_sign_check(s->sg_kind, alg, digest_len);

    if (rc != KMS_OK)
        return rc;
    slot = kms_signer_slot();
    if (slot < 0)
        return kms_pkey_sign(s->sg_pkey, alg, digest, digest_len, sig);
    ctx = &s->sg_ctx[slot][alg - 1];
    if (*ctx == NULL && (*ctx = kms_sign_ctx_new(s->sg_pkey, alg)) == NULL) {
        ERR_clear_error();
        return KMS_E_INTERNAL;
    }
    rc = kms_sign_with(*ctx, s->sg_max_len, digest, sig);
    if (rc != KMS_OK) {
        /* Whatever state a failed signature left behind, the next one starts afresh. */
        EVP_PKEY_CTX_free(*ctx);
        *ctx = NULL;
    }
    return rc;
}

kms_err kms_pkey_verify(const struct evp_pkey_st *pkey, enum kms_sign_alg alg,
                        const uint8_t *digest, size_t digest_len, const uint8_t *sig,
                        size_t sig_len, bool *valid)
{
    EVP_PKEY_CTX *ctx = NULL;
    kms_err rc = kms_sign_check(kms_pkey_kind(pkey), alg, digest_len);

    *valid = false;
    if (rc != KMS_OK)
        return rc;
    ctx = kms_pkey_ctx(pkey);
    if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1 || !kms_sign_setup(ctx, alg)) {
        rc = KMS_E_INTERNAL;
        goto out;
    }
    /* 1 is a valid signature; 0 a wrong one; < 0 one that cannot even be parsed: also wrong. */
    *valid =
        sig != NULL && sig_len > 0 && EVP_PKEY_verify(ctx, sig, sig_len, digest, digest_len) == 1;
out:
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

/* ---- message digests for signatures ---- */

/* The SM2 curve's a, b and base point xG, yG (GB/T 32918.5), hashed into Z_A. */
static const char kms_sm2_curve_abg[] =
    "\xFF\xFF\xFF\xFE\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"
    "\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFC"
    "\x28\xE9\xFA\x9E\x9D\x9F\x5E\x34\x4D\x5A\x9E\x4B\xCF\x65\x09\xA7"
    "\xF3\x97\x89\xF5\x15\xAB\x8F\x92\xDD\xBC\xBD\x41\x4D\x94\x0E\x93"
    "\x32\xC4\xAE\x2C\x1F\x19\x81\x19\x5F\x99\x04\x46\x6A\x39\xC9\x94"
    "\x8F\xE3\x0B\xBF\xF2\x66\x0B\xE1\x71\x5A\x45\x89\x33\x4C\x74\xC7"
    "\xBC\x37\x36\xA2\xF4\xF6\x77\x9C\x59\xBD\xCE\xE3\x6B\x69\x21\x53"
    "\xD0\xA9\x87\x7C\xC6\x2A\x47\x40\x02\xDF\x32\xE5\x21\x39\xF0\xA0";

/* Z_A = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA) with the default ID, into md (ready for M). */
static bool kms_sm2_za_update(EVP_MD_CTX *md, const EVP_PKEY *pkey, const EVP_MD *sm3)
{
    static const char id[] = KMS_SM2_DEFAULT_ID;
    const uint8_t entl[2] = {(uint8_t)(((sizeof(id) - 1) * 8) >> 8),
                             (uint8_t)((sizeof(id) - 1) * 8)};
    uint8_t point[1 + 2 * KMS_SM2_COORD_LEN], za[32];
    size_t point_len = 0;
    unsigned int za_len = 0;
    bool ok;

    ok = EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                         sizeof(point), &point_len) == 1 &&
         point_len == sizeof(point) && point[0] == 0x04;
    ok = ok && EVP_DigestInit_ex(md, sm3, NULL) == 1 &&
         EVP_DigestUpdate(md, entl, sizeof(entl)) == 1 &&
         EVP_DigestUpdate(md, id, sizeof(id) - 1) == 1 &&
         EVP_DigestUpdate(md, kms_sm2_curve_abg, sizeof(kms_sm2_curve_abg) - 1) == 1 &&
         EVP_DigestUpdate(md, point + 1, point_len - 1) == 1 &&
         EVP_DigestFinal_ex(md, za, &za_len) == 1 && za_len == sizeof(za);
    /* e = SM3(Z_A ‖ M): the caller feeds M next. */
    return ok && EVP_DigestInit_ex(md, sm3, NULL) == 1 && EVP_DigestUpdate(md, za, za_len) == 1;
}

kms_err kms_pkey_message_digest(const struct evp_pkey_st *pkey, enum kms_sign_alg alg,
                                const uint8_t *msg, size_t len, uint8_t digest[KMS_PKEY_DIGEST_LEN])
{
    EVP_MD_CTX *md = NULL;
    EVP_MD *sm3 = NULL;
    unsigned int n = 0;
    kms_err rc;
    bool ok;

    rc = kms_sign_check(kms_pkey_kind(pkey), alg, KMS_PKEY_DIGEST_LEN);
    if (rc != KMS_OK)
        return rc;
    md = EVP_MD_CTX_new();
    if (md == NULL)
        return KMS_E_INTERNAL;
    if (alg == KMS_SIGN_SM2DSA) {
        sm3 = EVP_MD_fetch(NULL, "SM3", NULL);
        ok = sm3 != NULL && kms_sm2_za_update(md, pkey, sm3);
    } else {
        ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    }
    ok = ok && (len == 0 || EVP_DigestUpdate(md, msg, len) == 1) &&
         EVP_DigestFinal_ex(md, digest, &n) == 1 && n == KMS_PKEY_DIGEST_LEN;
    EVP_MD_CTX_free(md);
    EVP_MD_free(sm3);
    if (!ok) {
        ERR_clear_error();
        return KMS_E_INTERNAL;
    }
    return KMS_OK;
}

kms_err kms_pkey_from_private_pem(const char *pem, size_t len, struct evp_pkey_st **out)
{
    BIO *bio;
    EVP_PKEY *pkey;

    *out = NULL;
    if (pem == NULL || len == 0 || len > INT_MAX)
        return KMS_E_INVALID_PARAMETER;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return KMS_E_INTERNAL;
    /* No passphrase callback: an encrypted PEM fails instead of prompting on a terminal. */
    pkey = PEM_read_bio_PrivateKey(bio, NULL, kms_pkey_no_passphrase, NULL);
    BIO_free(bio);
    if (pkey == NULL || kms_pkey_kind(pkey) == KMS_KIND_NONE) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return KMS_E_INVALID_PARAMETER;
    }
    *out = pkey;
    return KMS_OK;
}
