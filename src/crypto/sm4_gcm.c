/*
 * sm4_gcm.c - GCM (NIST SP 800-38D; 96-bit IV, 128-bit tag) in software over OpenSSL's block
 * cipher in CTR mode, because OpenSSL 3.0 (Debian 12) has SM4-CTR but no SM4-GCM. aead.c routes
 * SM4 here only when EVP_CIPHER_fetch("SM4-GCM") fails; the AES algorithms are accepted so the
 * unit tests can check this code against OpenSSL's own AES-GCM.
 *
 * Counter blocks: with a 96-bit IV, J0 = IV ‖ 0x00000001 and the data is encrypted from
 * inc32(J0). OpenSSL's CTR mode increments all 128 bits rather than the low 32, but the two agree
 * until the low word wraps, which takes 2^32 - 2 blocks (64 GiB); inputs are capped at
 * KMS_AEAD_MAX_LEN (2 GiB), so plain CTR from J0 + 1 is exactly GCTR here.
 *
 * GHASH is constant-time: the 128 x 128 carry-less product is built from 64 x 64 products done
 * with ordinary integer multiplication on operands with "holes" (every fourth bit kept, so carries
 * never reach a bit that counts), after T. Pornin's ghash_ctmul64 in BearSSL. No table lookups, no
 * branches on H or on the data. The high halves come from multiplying the bit-reversed operands.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kms/crypto.h"

#define KMS_GCM_BLOCK 16
/* Indexed by enum kms_aead_alg; slot 0 unused. */
#define KMS_GCM_SLOTS 4

static pthread_once_t kms_gcm_once = PTHREAD_ONCE_INIT;
static bool kms_gcm_init_ok;
static EVP_CIPHER *kms_gcm_ctr[KMS_GCM_SLOTS];
static pthread_key_t kms_gcm_tls_key;

struct kms_gcm_thread {
    EVP_CIPHER_CTX *gt_ctx[KMS_GCM_SLOTS];
};

/* ---- GHASH ---- */

struct kms_ghash {
    /* H as big-endian words (h1 = bytes 0-7), their xor, and the bit-reversed forms. */
    uint64_t gh_h0, gh_h1, gh_h2, gh_h0r, gh_h1r, gh_h2r;
    /* The running value Y, same layout. */
    uint64_t gh_y0, gh_y1;
};

static uint64_t kms_load64_be(const uint8_t *p)
{
    return ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) | ((uint64_t)p[2] << 40) |
           ((uint64_t)p[3] << 32) | ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) |
           ((uint64_t)p[6] << 8) | (uint64_t)p[7];
}

static void kms_store64_be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t kms_rev64(uint64_t x)
{
    x = ((x & 0x5555555555555555u) << 1) | ((x >> 1) & 0x5555555555555555u);
    x = ((x & 0x3333333333333333u) << 2) | ((x >> 2) & 0x3333333333333333u);
    x = ((x & 0x0f0f0f0f0f0f0f0fu) << 4) | ((x >> 4) & 0x0f0f0f0f0f0f0f0fu);
    x = ((x & 0x00ff00ff00ff00ffu) << 8) | ((x >> 8) & 0x00ff00ff00ff00ffu);
    x = ((x & 0x0000ffff0000ffffu) << 16) | ((x >> 16) & 0x0000ffff0000ffffu);
    return (x << 32) | (x >> 32);
}

/*
 * Low 64 bits of the carry-less product x * y. Each operand is split into four masks holding every
 * fourth bit; in a product of two such masks at most 16 one-bit terms meet at any kept position
 * below bit 64, so the sum there fits in the three-bit hole above it and the carries never touch a
 * kept bit: masking afterwards leaves exactly the xor of the terms.
 */
static uint64_t kms_bmul64(uint64_t x, uint64_t y)
{
    const uint64_t m0 = 0x1111111111111111u, m1 = 0x2222222222222222u;
    const uint64_t m2 = 0x4444444444444444u, m3 = 0x8888888888888888u;
    uint64_t x0 = x & m0, x1 = x & m1, x2 = x & m2, x3 = x & m3;
    uint64_t y0 = y & m0, y1 = y & m1, y2 = y & m2, y3 = y & m3;
    uint64_t z0, z1, z2, z3;

    z0 = (x0 * y0) ^ (x1 * y3) ^ (x2 * y2) ^ (x3 * y1);
    z1 = (x0 * y1) ^ (x1 * y0) ^ (x2 * y3) ^ (x3 * y2);
    z2 = (x0 * y2) ^ (x1 * y1) ^ (x2 * y0) ^ (x3 * y3);
    z3 = (x0 * y3) ^ (x1 * y2) ^ (x2 * y1) ^ (x3 * y0);
    return (z0 & m0) | (z1 & m1) | (z2 & m2) | (z3 & m3);
}

static void kms_ghash_init(struct kms_ghash *g, const uint8_t h[KMS_GCM_BLOCK])
{
    g->gh_h1 = kms_load64_be(h);
    g->gh_h0 = kms_load64_be(h + 8);
    g->gh_h2 = g->gh_h0 ^ g->gh_h1;
    g->gh_h0r = kms_rev64(g->gh_h0);
    g->gh_h1r = kms_rev64(g->gh_h1);
    g->gh_h2r = g->gh_h0r ^ g->gh_h1r;
    g->gh_y0 = g->gh_y1 = 0;
}

/*
 * Y = (Y xor block) * H in GF(2^128). GCM numbers bits from the most significant bit of byte 0,
 * so the big-endian 128-bit integer of a block is its polynomial bit-reversed; the carry-less
 * product of two reversed values is the reversed 255-bit product, which one left shift turns into
 * a 256-bit value whose upper half holds x^0..x^127 and lower half x^128..x^255. The lower half is
 * then folded in with x^128 = x^7 + x^2 + x + 1 (a right shift is a multiplication by x here).
 */
static void kms_ghash_block(struct kms_ghash *g, uint64_t hi, uint64_t lo)
{
    uint64_t y1 = g->gh_y1 ^ hi, y0 = g->gh_y0 ^ lo;
    uint64_t y2 = y0 ^ y1, y0r = kms_rev64(y0), y1r = kms_rev64(y1), y2r = y0r ^ y1r;
    uint64_t z0, z1, z2, z0h, z1h, z2h, v0, v1, v2, v3;

    /* Karatsuba: three 64 x 64 products, low halves directly, high halves from reversed inputs. */
    z0 = kms_bmul64(y0, g->gh_h0);
    z1 = kms_bmul64(y1, g->gh_h1);
    z2 = kms_bmul64(y2, g->gh_h2);
    z0h = kms_bmul64(y0r, g->gh_h0r);
    z1h = kms_bmul64(y1r, g->gh_h1r);
    z2h = kms_bmul64(y2r, g->gh_h2r);
    z2 ^= z0 ^ z1;
    z2h ^= z0h ^ z1h;
    z0h = kms_rev64(z0h) >> 1;
    z1h = kms_rev64(z1h) >> 1;
    z2h = kms_rev64(z2h) >> 1;

    v0 = z0;
    v1 = z0h ^ z2;
    v2 = z1 ^ z2h;
    v3 = z1h;

    v3 = (v3 << 1) | (v2 >> 63);
    v2 = (v2 << 1) | (v1 >> 63);
    v1 = (v1 << 1) | (v0 >> 63);
    v0 = v0 << 1;

    v2 ^= v0 ^ (v0 >> 1) ^ (v0 >> 2) ^ (v0 >> 7);
    v1 ^= (v0 << 63) ^ (v0 << 62) ^ (v0 << 57);
    v3 ^= v1 ^ (v1 >> 1) ^ (v1 >> 2) ^ (v1 >> 7);
    v2 ^= (v1 << 63) ^ (v1 << 62) ^ (v1 << 57);

    g->gh_y1 = v3;
    g->gh_y0 = v2;
}

/* Absorbs len bytes, zero-padding a final partial block (GCM pads AAD and ciphertext apart). */
static void kms_ghash_update(struct kms_ghash *g, const uint8_t *p, size_t len)
{
    uint8_t last[KMS_GCM_BLOCK];

    for (; len >= KMS_GCM_BLOCK; p += KMS_GCM_BLOCK, len -= KMS_GCM_BLOCK)
        kms_ghash_block(g, kms_load64_be(p), kms_load64_be(p + 8));
    if (len > 0) {
        memset(last, 0, sizeof(last));
        memcpy(last, p, len);
        kms_ghash_block(g, kms_load64_be(last), kms_load64_be(last + 8));
        OPENSSL_cleanse(last, sizeof(last));
    }
}

/* ---- GCM over CTR ---- */

static void kms_gcm_thread_free(void *p)
{
    struct kms_gcm_thread *t = p;

    for (size_t i = 0; i < KMS_GCM_SLOTS; i++)
        EVP_CIPHER_CTX_free(t->gt_ctx[i]);
    free(t);
}

static void kms_gcm_do_init(void)
{
    if (pthread_key_create(&kms_gcm_tls_key, kms_gcm_thread_free) != 0)
        return;
    kms_gcm_ctr[KMS_AEAD_AES_256_GCM] = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL);
    kms_gcm_ctr[KMS_AEAD_AES_128_GCM] = EVP_CIPHER_fetch(NULL, "AES-128-CTR", NULL);
    kms_gcm_ctr[KMS_AEAD_SM4_GCM] = EVP_CIPHER_fetch(NULL, "SM4-CTR", NULL);
    kms_gcm_init_ok = kms_gcm_ctr[KMS_AEAD_AES_256_GCM] != NULL &&
                      kms_gcm_ctr[KMS_AEAD_AES_128_GCM] != NULL &&
                      kms_gcm_ctr[KMS_AEAD_SM4_GCM] != NULL;
}

/* This thread's CTR context for alg, bound to its cipher on first use. */
static EVP_CIPHER_CTX *kms_gcm_ctx(enum kms_aead_alg alg)
{
    struct kms_gcm_thread *t;
    EVP_CIPHER_CTX *ctx;

    if (pthread_once(&kms_gcm_once, kms_gcm_do_init) != 0 || !kms_gcm_init_ok)
        return NULL;
    t = pthread_getspecific(kms_gcm_tls_key);
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL)
            return NULL;
        if (pthread_setspecific(kms_gcm_tls_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    if (t->gt_ctx[alg] != NULL)
        return t->gt_ctx[alg];
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return NULL;
    if (EVP_EncryptInit_ex(ctx, kms_gcm_ctr[alg], NULL, NULL, NULL) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    t->gt_ctx[alg] = ctx;
    return ctx;
}

/* One CTR pass of len bytes (len <= KMS_AEAD_MAX_LEN, checked by the callers). */
static bool kms_gcm_ctr_update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t len)
{
    int n = 0;

    if (len == 0)
        return true;
    return EVP_EncryptUpdate(ctx, out, &n, in, (int)len) == 1 && (size_t)n == len;
}

/*
 * Keys ctx, computes H = E(0^128) and E(J0) into ekj0, starts GHASH over the AAD and leaves the
 * counter at inc32(J0), ready for the data.
 */
static kms_err kms_gcm_start(enum kms_aead_alg alg, const uint8_t *key, size_t key_len,
                             const uint8_t iv[KMS_AEAD_IV_LEN], const uint8_t *aad, size_t aad_len,
                             size_t len, EVP_CIPHER_CTX **ctx_out, struct kms_ghash *g,
                             uint8_t ekj0[KMS_GCM_BLOCK])
{
    static const uint8_t zero[KMS_GCM_BLOCK];
    uint8_t block[KMS_GCM_BLOCK];
    EVP_CIPHER_CTX *ctx;
    kms_err rc = KMS_E_INTERNAL;

    if (!kms_aead_alg_valid(alg) || key_len != kms_aead_key_len(alg) ||
        aad_len > KMS_AEAD_MAX_LEN || len > KMS_AEAD_MAX_LEN)
        return KMS_E_INTERNAL;
    ctx = kms_gcm_ctx(alg);
    if (ctx == NULL)
        return KMS_E_INTERNAL;
    /* Counter block 0^128 gives E(0^128) = H; re-initialising with only an IV keeps the key. */
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, key, zero) != 1 ||
        !kms_gcm_ctr_update(ctx, block, zero, KMS_GCM_BLOCK))
        goto out;
    kms_ghash_init(g, block);
    memcpy(block, iv, KMS_AEAD_IV_LEN);
    memset(block + KMS_AEAD_IV_LEN, 0, KMS_GCM_BLOCK - KMS_AEAD_IV_LEN);
    block[KMS_GCM_BLOCK - 1] = 1;
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, block) != 1 ||
        !kms_gcm_ctr_update(ctx, ekj0, zero, KMS_GCM_BLOCK))
        goto out;
    kms_ghash_update(g, aad, aad_len);
    *ctx_out = ctx;
    rc = KMS_OK;
out:
    OPENSSL_cleanse(block, sizeof(block));
    return rc;
}

/* Absorbs the ciphertext and the length block, and writes GHASH xor E(J0). */
static void kms_gcm_finish(struct kms_ghash *g, const uint8_t *ct, size_t ct_len, size_t aad_len,
                           const uint8_t ekj0[KMS_GCM_BLOCK], uint8_t tag[KMS_AEAD_TAG_LEN])
{
    kms_ghash_update(g, ct, ct_len);
    kms_ghash_block(g, (uint64_t)aad_len << 3, (uint64_t)ct_len << 3);
    kms_store64_be(tag, g->gh_y1);
    kms_store64_be(tag + 8, g->gh_y0);
    for (size_t i = 0; i < KMS_AEAD_TAG_LEN; i++)
        tag[i] ^= ekj0[i];
}

kms_err kms_gcm_soft_seal(enum kms_aead_alg alg, const uint8_t *key, size_t key_len,
                          const uint8_t iv[KMS_AEAD_IV_LEN], const uint8_t *aad, size_t aad_len,
                          const uint8_t *pt, size_t pt_len, uint8_t *ct_out,
                          uint8_t tag_out[KMS_AEAD_TAG_LEN])
{
    struct kms_ghash g;
    uint8_t ekj0[KMS_GCM_BLOCK];
    EVP_CIPHER_CTX *ctx = NULL;
    kms_err rc;

    rc = kms_gcm_start(alg, key, key_len, iv, aad, aad_len, pt_len, &ctx, &g, ekj0);
    if (rc != KMS_OK)
        goto out;
    if (!kms_gcm_ctr_update(ctx, ct_out, pt, pt_len)) {
        rc = KMS_E_INTERNAL;
        goto out;
    }
    kms_gcm_finish(&g, ct_out, pt_len, aad_len, ekj0, tag_out);
out:
    OPENSSL_cleanse(&g, sizeof(g));
    OPENSSL_cleanse(ekj0, sizeof(ekj0));
    return rc;
}

kms_err kms_gcm_soft_open(enum kms_aead_alg alg, const uint8_t *key, size_t key_len,
                          const uint8_t iv[KMS_AEAD_IV_LEN], const uint8_t *aad, size_t aad_len,
                          const uint8_t *ct, size_t ct_len, const uint8_t tag[KMS_AEAD_TAG_LEN],
                          uint8_t *pt_out)
{
    struct kms_ghash g;
    uint8_t ekj0[KMS_GCM_BLOCK], expect[KMS_AEAD_TAG_LEN];
    EVP_CIPHER_CTX *ctx = NULL;
    kms_err rc;

    rc = kms_gcm_start(alg, key, key_len, iv, aad, aad_len, ct_len, &ctx, &g, ekj0);
    if (rc != KMS_OK)
        goto out;
    /* Verify before decrypting, so unauthenticated plaintext is never produced. */
    kms_gcm_finish(&g, ct, ct_len, aad_len, ekj0, expect);
    if (CRYPTO_memcmp(expect, tag, KMS_AEAD_TAG_LEN) != 0) {
        rc = KMS_E_INVALID_PARAMETER;
        /* Same contract as the OpenSSL path: pt_out holds nothing usable after a failure. */
        if (ct_len > 0)
            OPENSSL_cleanse(pt_out, ct_len);
        goto out;
    }
    if (!kms_gcm_ctr_update(ctx, pt_out, ct, ct_len)) {
        rc = KMS_E_INTERNAL;
        if (ct_len > 0)
            OPENSSL_cleanse(pt_out, ct_len);
    }
out:
    OPENSSL_cleanse(&g, sizeof(g));
    OPENSSL_cleanse(ekj0, sizeof(ekj0));
    OPENSSL_cleanse(expect, sizeof(expect));
    return rc;
}
