/*
 * keystore.c - the registry of configured keystore drivers, one per protection level.
 */
#include <stdio.h>
#include <stddef.h>

#include "keystore.h"
#include "kms/config.h"

static struct kms_keystore *kms_keystores[2]; /* indexed by enum kms_protection */

kms_err kms_keystores_open(const struct kms_config *cfg)
{
    kms_err rc = kms_software_keystore_open(cfg, &kms_keystores[KMS_PROTECTION_SOFTWARE]);

    if (rc != KMS_OK)
        return rc;
    /* The PKCS#11 driver registers itself for KMS_PROTECTION_HSM when configured (issue 6). */
    return KMS_OK;
}

void kms_keystores_close(void)
{
    for (size_t i = 0; i < sizeof(kms_keystores) / sizeof(kms_keystores[0]); i++) {
        if (kms_keystores[i] != NULL)
            kms_keystores[i]->ks_ops->ks_close(kms_keystores[i]);
        kms_keystores[i] = NULL;
    }
}

struct kms_keystore *kms_keystore_for(enum kms_protection level)
{
    if ((size_t)level >= sizeof(kms_keystores) / sizeof(kms_keystores[0]))
        return NULL;
    return kms_keystores[level];
}
