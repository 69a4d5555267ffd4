/*
 * canonical.c - what signature V1 and V3 share: RFC 3986 percent-encoding (spec §4), the canonical
 * query built from the decoded parameter map, and the digests and HMACs over OpenSSL 3.
 *
 * The server always re-encodes decoded values: clients escape differently on the wire (Node's
 * querystring leaves "!'()*" raw, HTML forms send "+"), but all of them sign the RFC 3986 form.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "kms/auth.h"

/* 1 for A-Z a-z 0-9 - _ . ~ (RFC 3986 "unreserved"); everything else is escaped. */
static const unsigned char kms_unreserved[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1,
    ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1,
    ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1,
    ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

static const char kms_hex_upper[] = "0123456789ABCDEF";

/*
 * Appends s percent-encoded once, or twice when twice is set. Encoding "%XY" again gives "%25XY"
 * and leaves unreserved bytes alone, so the second pass needs no second buffer.
 */
static kms_err kms_percent_append(struct kms_buf *out, const char *s, size_t len, bool twice)
{
    const unsigned char *in = (const unsigned char *)s;
    size_t worst = len * (twice ? 5 : 3);
    kms_err rc;
    char *o;

    out->secret = true;
    rc = kms_buf_reserve(out, worst);
    if (rc != KMS_OK)
        return rc;
    o = out->data + out->len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = in[i];

        if (kms_unreserved[c]) {
            *o++ = (char)c;
            continue;
        }
        *o++ = '%';
        if (twice) {
            *o++ = '2';
            *o++ = '5';
        }
        *o++ = kms_hex_upper[c >> 4];
        *o++ = kms_hex_upper[c & 0x0f];
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = '\0';
    return KMS_OK;
}

kms_err kms_percent_encode(struct kms_buf *out, const char *s, size_t len)
{
    return kms_percent_append(out, s, len, false);
}

static kms_err kms_canonical_query(struct kms_buf *out, const struct kms_params *p,
                                   unsigned sources, const char *exclude, bool twice)
{
    /* "=" and "&" are reserved: the outer encoding turns them into %3D and %26. */
    const char *eq = twice ? "%3D" : "=";
    const char *amp = twice ? "%26" : "&";
    size_t worst = 0, per_byte = twice ? 5 : 3;
    bool first = true;
    kms_err rc;

    /*
     * Room for the worst case at once: growing step by step would cost a reallocation per
     * doubling and leave copies of the parameters (Plaintext among them) in freed memory.
     */
    for (size_t i = 0; i < p->count; i++) {
        const struct kms_param *it = &p->items[i];

        if (it->name_len + it->value_len > (SIZE_MAX - worst) / per_byte - 6)
            return KMS_E_INTERNAL;
        worst += (it->name_len + it->value_len) * per_byte + 6;
    }
    out->secret = true;
    rc = kms_buf_reserve(out, worst);
    if (rc != KMS_OK)
        return rc;
    for (size_t i = 0; i < p->count; i++) {
        const struct kms_param *it = &p->items[i];

        if (((unsigned)it->source & sources) == 0)
            continue;
        if (exclude != NULL && strcmp(it->name, exclude) == 0)
            continue;
        if (!first) {
            rc = kms_buf_append_str(out, amp);
            if (rc != KMS_OK)
                return rc;
        }
        first = false;
        rc = kms_percent_append(out, it->name, it->name_len, twice);
        if (rc != KMS_OK)
            return rc;
        rc = kms_buf_append_str(out, eq);
        if (rc != KMS_OK)
            return rc;
        rc = kms_percent_append(out, it->value, it->value_len, twice);
        if (rc != KMS_OK)
            return rc;
    }
    return KMS_OK;
}

kms_err kms_sig_canonical_query(struct kms_buf *out, const struct kms_params *p, unsigned sources,
                                const char *exclude)
{
    return kms_canonical_query(out, p, sources, exclude, false);
}

kms_err kms_sig_canonical_query_encoded(struct kms_buf *out, const struct kms_params *p,
                                        unsigned sources, const char *exclude)
{
    return kms_canonical_query(out, p, sources, exclude, true);
}

/*
 * Digests and HMACs. OpenSSL 3 resolves algorithm names on every implicit fetch (HMAC(),
 * EVP_sha256()), which costs about as much as the hash of a short string; so the digests are
 * fetched once, and each thread keeps one HMAC context per digest, made from a template whose
 * digest is already set: a call only re-keys it (no duplicate and free per request), and not
 * even that when the key is the one the context already holds (one caller's requests).
 *
 * A thread's context keeps the last key's padded state (derived from an access-key secret), and
 * the thread keeps a copy of that key to recognise it, until the thread's exit, when both are
 * cleansed; the secrets themselves are cached in memory anyway (credentials.c), so this adds no
 * new kind of exposure.
 */
#define KMS_SIG_HASH_COUNT 3

static const char *const kms_sig_hash_names[KMS_SIG_HASH_COUNT] = {"SHA1", "SHA256", "SM3"};
static EVP_MD *kms_sig_md[KMS_SIG_HASH_COUNT];
static EVP_MAC_CTX *kms_sig_mac_template[KMS_SIG_HASH_COUNT];
static pthread_once_t kms_sig_once = PTHREAD_ONCE_INIT;
static pthread_key_t kms_sig_thread_key;
static bool kms_sig_thread_key_ok;

/* Keys up to this long are remembered, so a thread serving one caller keys HMAC once. */
#define KMS_SIG_KEY_MEMO 128

struct kms_sig_thread {
    EVP_MAC_CTX *st_mac[KMS_SIG_HASH_COUNT];
    uint8_t st_key[KMS_SIG_HASH_COUNT][KMS_SIG_KEY_MEMO]; /* the key st_mac[h] holds */
    size_t st_key_len[KMS_SIG_HASH_COUNT];
    bool st_keyed[KMS_SIG_HASH_COUNT];
};

static void kms_sig_thread_free(void *p)
{
    struct kms_sig_thread *t = p;

    for (int h = 0; h < KMS_SIG_HASH_COUNT; h++)
        EVP_MAC_CTX_free(t->st_mac[h]);
    OPENSSL_cleanse(t, sizeof(*t));
    free(t);
}

static void kms_sig_init(void)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

    kms_sig_thread_key_ok = pthread_key_create(&kms_sig_thread_key, kms_sig_thread_free) == 0;
    for (int h = 0; h < KMS_SIG_HASH_COUNT; h++) {
        OSSL_PARAM params[2];
        EVP_MAC_CTX *ctx;

        kms_sig_md[h] = EVP_MD_fetch(NULL, kms_sig_hash_names[h], NULL);
        if (kms_sig_md[h] == NULL || mac == NULL)
            continue;
        ctx = EVP_MAC_CTX_new(mac);
        if (ctx == NULL)
            continue;
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                     (char *)kms_sig_hash_names[h], 0);
        params[1] = OSSL_PARAM_construct_end();
        if (EVP_MAC_CTX_set_params(ctx, params) != 1) {
            EVP_MAC_CTX_free(ctx);
            continue;
        }
        kms_sig_mac_template[h] = ctx;
    }
    /* The contexts hold their own references to the MAC. */
    EVP_MAC_free(mac);
}

/* This thread's HMAC state, its context for h duplicated from the template on first use. */
static struct kms_sig_thread *kms_sig_thread_get(enum kms_sig_hash h)
{
    struct kms_sig_thread *t;

    if (!kms_sig_thread_key_ok)
        return NULL;
    t = pthread_getspecific(kms_sig_thread_key);
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL)
            return NULL;
        if (pthread_setspecific(kms_sig_thread_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    if (t->st_mac[h] == NULL)
        t->st_mac[h] = EVP_MAC_CTX_dup(kms_sig_mac_template[h]);
    return t->st_mac[h] != NULL ? t : NULL;
}

static bool kms_sig_ready(enum kms_sig_hash h)
{
    if ((unsigned)h >= KMS_SIG_HASH_COUNT)
        return false;
    pthread_once(&kms_sig_once, kms_sig_init);
    return kms_sig_md[h] != NULL && kms_sig_mac_template[h] != NULL;
}

bool kms_sig_hash_available(enum kms_sig_hash h)
{
    return kms_sig_ready(h);
}

kms_err kms_sig_digest(enum kms_sig_hash h, const void *data, size_t len,
                       uint8_t out[KMS_SIG_DIGEST_MAX], size_t *out_len)
{
    unsigned int n = 0;

    if (!kms_sig_ready(h))
        return KMS_E_INTERNAL;
    if (EVP_Digest(data, len, out, &n, kms_sig_md[h], NULL) != 1)
        return KMS_E_INTERNAL;
    *out_len = n;
    return KMS_OK;
}

kms_err kms_sig_hmac(enum kms_sig_hash h, const void *key, size_t key_len, const void *data,
                     size_t len, uint8_t out[KMS_SIG_DIGEST_MAX], size_t *out_len)
{
    static const uint8_t no_key[1];
    struct kms_sig_thread *t;
    bool same_key;
    int ok;

    if (!kms_sig_ready(h))
        return KMS_E_INTERNAL;
    if (key == NULL)
        key = no_key;
    t = kms_sig_thread_get(h);
    if (t == NULL)
        return KMS_E_INTERNAL;
    /*
     * The key this context already holds: EVP_MAC_init without a key then restarts from the
     * padded key it keeps (no hashing of the key again). Any other key re-keys it, and a NULL
     * key is never passed for a new one (that would keep the previous caller's key).
     */
    same_key = t->st_keyed[h] && t->st_key_len[h] == key_len &&
               CRYPTO_memcmp(t->st_key[h], key, key_len) == 0;
    if (same_key) {
        ok = EVP_MAC_init(t->st_mac[h], NULL, 0, NULL);
    } else {
        t->st_keyed[h] = false;
        ok = EVP_MAC_init(t->st_mac[h], key, key_len, NULL);
        if (ok == 1 && key_len <= KMS_SIG_KEY_MEMO) {
            memcpy(t->st_key[h], key, key_len);
            t->st_key_len[h] = key_len;
            t->st_keyed[h] = true;
        }
    }
    if (ok != 1 || EVP_MAC_update(t->st_mac[h], data, len) != 1 ||
        EVP_MAC_final(t->st_mac[h], out, out_len, KMS_SIG_DIGEST_MAX) != 1) {
        t->st_keyed[h] = false; /* re-key from scratch next time */
        return KMS_E_INTERNAL;
    }
    return KMS_OK;
}
