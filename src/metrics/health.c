/*
 * health.c - the answer of /healthz: does the store answer a query, and does every configured
 * keystore answer an operation now (the software keystore seals and opens a probe under the
 * master key, which in sealing mode is a token operation; a PKCS#11 keystore draws random bytes
 * from its token)?
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "keystore/keystore.h"
#include "kms/metrics.h"
#include "kms/store.h"

static const char kms_health_aad[] = "kmsd health probe v1";

static kms_err kms_health_software(void)
{
    static const uint8_t probe[16] = "kmsd-health-ok!";
    struct kms_buf sealed = {0}, opened = {0};
    kms_err rc = kms_keystore_seal_secret(kms_health_aad, sizeof(kms_health_aad) - 1, probe,
                                          sizeof(probe), &sealed);

    if (rc == KMS_OK)
        rc = kms_keystore_open_secret(kms_health_aad, sizeof(kms_health_aad) - 1,
                                      (const uint8_t *)sealed.data, sealed.len, &opened);
    if (rc == KMS_OK && (opened.len != sizeof(probe) || memcmp(opened.data, probe, opened.len)))
        rc = KMS_E_INTERNAL;
    kms_buf_free(&sealed);
    kms_buf_free_secret(&opened);
    return rc;
}

kms_err kms_health_check(char *why, size_t size)
{
    struct kms_db *db = kms_store_thread();
    struct kms_keystore *hsm = kms_keystore_for(KMS_PROTECTION_HSM);
    int64_t n = 0;

    if (db == NULL || kms_store_key_count(db, true, &n) != KMS_OK) {
        snprintf(why, size, "store: the database does not answer");
        return KMS_E_UNAVAILABLE;
    }
    if (kms_keystore_for(KMS_PROTECTION_SOFTWARE) == NULL || kms_health_software() != KMS_OK) {
        snprintf(why, size, "keystore: the master key does not answer");
        return KMS_E_UNAVAILABLE;
    }
    if (hsm != NULL) {
        uint8_t random[16];
        kms_err rc = hsm->ks_ops->ks_random(hsm, random, sizeof(random));

        OPENSSL_cleanse(random, sizeof(random));
        if (rc != KMS_OK) {
            snprintf(why, size, "keystore: the PKCS#11 token does not answer");
            return KMS_E_UNAVAILABLE;
        }
    }
    snprintf(why, size, "ok");
    return KMS_OK;
}
