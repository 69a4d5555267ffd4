/*
 * cert_keys.c - certificates' key pairs as the certificate actions use them: the public key
 * parsed from its DER, the private key loaded from its keystore, each kept in a cache by
 * certificate id.
 *
 * OpenSSL 3.0's decoders make both expensive: ~100 µs to parse a SubjectPublicKeyInfo, ~350 µs to
 * parse a private key (RSA-2048 or P-256), more than an RSA-2048 signature and 18 × a P-256 one,
 * on every CertificatePrivateKeySign, Verify, Encrypt and Decrypt. A certificate's key pair never
 * changes after creation, so the caches need no invalidation but DeleteCertificate's. The status
 * is not cached: every call reads the certificate's row (kms_cert_resolve) and checks it before
 * using a key, so a cached key is never used for a certificate that may not be used, and a
 * deleted certificate is never found.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"
#include "keystore/keystore.h"
#include "kms/cache.h"
#include "kms/log.h"

static struct kms_cache *kms_cert_key_cache[2]; /* by enum kms_cert_half */

static void kms_cert_key_ref(void *obj)
{
    atomic_fetch_add(&((struct kms_cert_key *)obj)->ck_refs, 1);
}

static void kms_cert_key_unref(void *obj)
{
    struct kms_cert_key *k = obj;

    if (atomic_fetch_sub(&k->ck_refs, 1) == 1) {
        if (k->ck_private != NULL)
            k->ck_private->kk_ops->ks_release(k->ck_private);
        kms_pkey_free(k->ck_public);
        free(k);
    }
}

kms_err kms_cert_keys_init(size_t capacity)
{
    for (size_t i = 0; i < KMS_ARRAY_LEN(kms_cert_key_cache); i++) {
        kms_cert_key_cache[i] = kms_cache_create(capacity, kms_cert_key_ref, kms_cert_key_unref);
        if (kms_cert_key_cache[i] == NULL)
            return KMS_E_INTERNAL;
    }
    return KMS_OK;
}

void kms_cert_keys_shutdown(void)
{
    for (size_t i = 0; i < KMS_ARRAY_LEN(kms_cert_key_cache); i++) {
        kms_cache_free(kms_cert_key_cache[i]);
        kms_cert_key_cache[i] = NULL;
    }
}

/* Loads the certificate's private key from its keystore; release with its ks_release. */
static kms_err kms_cert_private_load(const struct kms_cert_record *c, struct kms_ks_key **out)
{
    struct kms_keystore *ks = kms_keystore_for(c->protection);
    char key_ref[KMS_ID_MAX];
    struct kms_ks_ref ref;

    *out = NULL;
    if (ks == NULL) {
        kms_log_error("certificates: certificate %s needs the %s keystore, which is not "
                      "configured",
                      c->certificate_id, kms_protection_name(c->protection));
        return KMS_E_UNAVAILABLE;
    }
    if (c->protection == KMS_PROTECTION_SOFTWARE && c->private_wrapped == NULL)
        return KMS_E_INTERNAL;
    kms_cert_ks_ref(c->certificate_id, c->spec, key_ref, &ref);
    return ks->ks_ops->ks_load(ks, &ref, c->private_wrapped, c->private_wrapped_len, out);
}

kms_err kms_cert_key_get(const struct kms_cert_record *c, enum kms_cert_half half,
                         struct kms_cert_key **out)
{
    struct kms_cache *cache = kms_cert_key_cache[half];
    struct kms_cert_key *k;
    uint64_t gen = 0;
    kms_err rc;

    *out = NULL;
    if (cache != NULL) {
        k = kms_cache_get(cache, c->certificate_id);
        if (k != NULL) {
            *out = k;
            return KMS_OK;
        }
        /*
         * Read before loading: a DeleteCertificate meanwhile keeps this copy out of the cache.
         * One that came between the row's read and here leaves an entry no call can reach (the
         * row is gone, ids are never reused) until the cache evicts it or kmsd stops.
         */
        gen = kms_cache_generation(cache);
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return KMS_E_INTERNAL;
    if (half == KMS_CERT_PRIVATE) {
        rc = kms_cert_private_load(c, &k->ck_private);
    } else {
        rc = kms_pkey_parse_public(c->public_der, c->public_der_len, &k->ck_public, NULL);
        if (rc == KMS_E_INVALID_PARAMETER)
            rc = KMS_E_INTERNAL; /* a stored public key that does not parse */
    }
    if (rc != KMS_OK) {
        free(k);
        return rc;
    }
    atomic_store(&k->ck_refs, 1);
    if (cache != NULL)
        kms_cache_insert(cache, c->certificate_id, k, gen);
    *out = k;
    return KMS_OK;
}

void kms_cert_key_put(struct kms_cert_key *k)
{
    if (k != NULL)
        kms_cert_key_unref(k);
}

void kms_cert_key_invalidate(const char *certificate_id)
{
    for (size_t i = 0; i < KMS_ARRAY_LEN(kms_cert_key_cache); i++)
        if (kms_cert_key_cache[i] != NULL)
            kms_cache_remove(kms_cert_key_cache[i], certificate_id);
}
