/*
 * aead.c - AES-256-GCM, AES-128-GCM and SM4-GCM seal/open for Encrypt, Decrypt, data keys and
 * master-key wrapping.
 *
 * This is on the hot path, so the EVP_CIPHER objects are fetched once per process and every
 * thread keeps one EVP_CIPHER_CTX per algorithm, bound to its cipher once; a call only re-keys it.
 * SM4-GCM goes to OpenSSL when the library has it (3.2+) and to sm4_gcm.c otherwise (3.0).
 *
 * A reused context keeps the last key's schedule in its provider state until the next call on
 * that thread or the thread's exit (EVP_CIPHER_CTX_free cleanses it); unwrapped key material is
 * cached in memory anyway, so this adds no new exposure and saves a provider allocation per call.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kms/crypto.h"

/* Indexed by enum kms_aead_alg; slot 0 unused. */
#define KMS_AEAD_SLOTS 4

static pthread_once_t kms_aead_once = PTHREAD_ONCE_INIT;
static kms_err kms_aead_init_rc = KMS_E_INTERNAL;
static EVP_CIPHER *kms_aead_ciphers[KMS_AEAD_SLOTS];
static pthread_key_t kms_aead_tls_key;

struct kms_aead_thread {
    EVP_CIPHER_CTX *at_ctx[KMS_AEAD_SLOTS];
};

static void kms_aead_thread_free(void *p)
{
    struct kms_aead_thread *t = p;

    for (size_t i = 0; i < KMS_AEAD_SLOTS; i++)
        EVP_CIPHER_CTX_free(t->at_ctx[i]);
    free(t);
}

static void kms_aead_do_init(void)
{
    static const char *const names[KMS_AEAD_SLOTS] = {
        [KMS_AEAD_AES_256_GCM] = "AES-256-GCM",
        [KMS_AEAD_AES_128_GCM] = "AES-128-GCM",
        [KMS_AEAD_SM4_GCM] = "SM4-GCM",
    };

    if (pthread_key_create(&kms_aead_tls_key, kms_aead_thread_free) != 0)
        return;
    kms_aead_ciphers[KMS_AEAD_AES_256_GCM] =
        EVP_CIPHER_fetch(NULL, names[KMS_AEAD_AES_256_GCM], NULL);
    kms_aead_ciphers[KMS_AEAD_AES_128_GCM] =
        EVP_CIPHER_fetch(NULL, names[KMS_AEAD_AES_128_GCM], NULL);
    if (kms_aead_ciphers[KMS_AEAD_AES_256_GCM] == NULL ||
        kms_aead_ciphers[KMS_AEAD_AES_128_GCM] == NULL)
        return;
    /* Absent before OpenSSL 3.2: NULL here routes SM4 to sm4_gcm.c. */
    kms_aead_ciphers[KMS_AEAD_SM4_GCM] = EVP_CIPHER_fetch(NULL, names[KMS_AEAD_SM4_GCM], NULL);
    kms_aead_init_rc = KMS_OK;
}

kms_err kms_aead_init(void)
{
    if (pthread_once(&kms_aead_once, kms_aead_do_init) != 0)
        return KMS_E_INTERNAL;
    return kms_aead_init_rc;
}

bool kms_aead_sm4_gcm_native(void)
{
    return kms_aead_init() == KMS_OK && kms_aead_ciphers[KMS_AEAD_SM4_GCM] != NULL;
}

size_t kms_aead_key_len(enum kms_aead_alg alg)
{
    switch (alg) {
    case KMS_AEAD_AES_256_GCM:
        return 32;
    case KMS_AEAD_AES_128_GCM:
    case KMS_AEAD_SM4_GCM:
        return 16;
    }
    return 0;
}

bool kms_aead_alg_valid(unsigned alg)
{
    return alg == KMS_AEAD_AES_256_GCM || alg == KMS_AEAD_AES_128_GCM || alg == KMS_AEAD_SM4_GCM;
}

/* This thread's context for alg, created and bound to the cipher on first use. */
static EVP_CIPHER_CTX *kms_aead_ctx(enum kms_aead_alg alg)
{
    struct kms_aead_thread *t = pthread_getspecific(kms_aead_tls_key);
    EVP_CIPHER_CTX *ctx;

    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL)
            return NULL;
        if (pthread_setspecific(kms_aead_tls_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    if (t->at_ctx[alg] != NULL)
        return t->at_ctx[alg];
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return NULL;
    if (EVP_CipherInit_ex(ctx, kms_aead_ciphers[alg], NULL, NULL, NULL, 1) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    t->at_ctx[alg] = ctx;
    return ctx;
}

/* Common checks; false for a caller error (not a bad ciphertext). */
static bool kms_aead_args_ok(enum kms_aead_alg alg, size_t key_len, size_t aad_len, size_t len)
{
    return kms_aead_alg_valid(alg) && key_len == kms_aead_key_len(alg) &&
           aad_len <= KMS_AEAD_MAX_LEN && len <= KMS_AEAD_MAX_LEN;
}

kms_err kms_aead_seal(enum kms_aead_alg alg, const uint8_t *key, size_t key_len,
                      const uint8_t iv[KMS_AEAD_IV_LEN], const uint8_t *aad, size_t aad_len,
                      const uint8_t *pt, size_t pt_len, uint8_t *ct_out,
                      uint8_t tag_out[KMS_AEAD_TAG_LEN])
{
    EVP_CIPHER_CTX *ctx;
    uint8_t final[KMS_AEAD_TAG_LEN]; /* GCM's final step writes nothing; ct_out may be NULL */
    int n;

    if (kms_aead_init() != KMS_OK || !kms_aead_args_ok(alg, key_len, aad_len, pt_len))
        return KMS_E_INTERNAL;
    if (kms_aead_ciphers[alg] == NULL)
        return kms_gcm_soft_seal(alg, key, key_len, iv, aad, aad_len, pt, pt_len, ct_out, tag_out);
    ctx = kms_aead_ctx(alg);
    if (ctx == NULL)
        return KMS_E_INTERNAL;
    /* The cipher is already bound (NULL here), so this only re-keys: no fetch, no allocation. */
    if (EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, 1) != 1)
        return KMS_E_INTERNAL;
    if (aad_len > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
        return KMS_E_INTERNAL;
    if (pt_len > 0 && EVP_EncryptUpdate(ctx, ct_out, &n, pt, (int)pt_len) != 1)
        return KMS_E_INTERNAL;
    if (EVP_EncryptFinal_ex(ctx, final, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KMS_AEAD_TAG_LEN, tag_out) != 1)
        return KMS_E_INTERNAL;
    return KMS_OK;
}

kms_err kms_aead_open(enum kms_aead_alg alg, const uint8_t *key, size_t key_len,
                      const uint8_t iv[KMS_AEAD_IV_LEN], const uint8_t *aad, size_t aad_len,
                      const uint8_t *ct, size_t ct_len, const uint8_t tag[KMS_AEAD_TAG_LEN],
                      uint8_t *pt_out)
{
    EVP_CIPHER_CTX *ctx;
    uint8_t tag_copy[KMS_AEAD_TAG_LEN];
    uint8_t final[KMS_AEAD_TAG_LEN]; /* GCM's final step writes nothing; pt_out may be NULL */
    int n;

    if (kms_aead_init() != KMS_OK || !kms_aead_args_ok(alg, key_len, aad_len, ct_len))
        return KMS_E_INTERNAL;
    if (kms_aead_ciphers[alg] == NULL)
        return kms_gcm_soft_open(alg, key, key_len, iv, aad, aad_len, ct, ct_len, tag, pt_out);
    ctx = kms_aead_ctx(alg);
    if (ctx == NULL)
        return KMS_E_INTERNAL;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, 0) != 1)
        return KMS_E_INTERNAL;
    if (aad_len > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
        return KMS_E_INTERNAL;
    if (ct_len > 0 && EVP_DecryptUpdate(ctx, pt_out, &n, ct, (int)ct_len) != 1)
        goto fail_internal;
    /* The ctrl takes a non-const pointer. */
    memcpy(tag_copy, tag, sizeof(tag_copy));
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KMS_AEAD_TAG_LEN, tag_copy) != 1)
        goto fail_internal;
    /* OpenSSL decrypts before it verifies: on a bad tag the plaintext it wrote must go. */
    if (EVP_DecryptFinal_ex(ctx, final, &n) != 1) {
        if (ct_len > 0)
            OPENSSL_cleanse(pt_out, ct_len);
        return KMS_E_INVALID_PARAMETER;
    }
    return KMS_OK;

fail_internal:
    if (ct_len > 0)
        OPENSSL_cleanse(pt_out, ct_len);
    return KMS_E_INTERNAL;
}
