/*
 * keystore.c - the registry of configured keystore drivers, one per protection level.
 *
 * The software keystore is always there. The PKCS#11 driver registers for KMS_PROTECTION_HSM
 * when [pkcs11] module is set; in sealing mode it is opened first, since the software
 * keystore's master key then lives in its token.
 */
#include <stdio.h>
#include <stddef.h>
#include <unistd.h>

#include "keystore.h"
#include "kms/config.h"
#include "kms/log.h"
#include "master.h"

static struct kms_keystore *kms_keystores[2]; /* indexed by enum kms_protection */

static kms_err kms_keystores_open_software(const struct kms_config *cfg)
{
    struct kms_master *master = NULL;
    kms_err rc;

    if (!cfg->pkcs11_seal_master_key)
        return kms_software_keystore_open(cfg, &kms_keystores[KMS_PROTECTION_SOFTWARE]);
    if (kms_keystores[KMS_PROTECTION_HSM] == NULL) {
        kms_log_error("pkcs11: seal_master_key = true needs [pkcs11] module");
        return KMS_E_INTERNAL;
    }
    if (access(cfg->master_key_file, F_OK) == 0)
        kms_log_warn("keystore: sealing mode: %s is not used (the master key is in the token)",
                     cfg->master_key_file);
    rc = kms_master_token_open(kms_keystores[KMS_PROTECTION_HSM], cfg->pkcs11_master_key_label,
                               &master);
    if (rc != KMS_OK)
        return rc;
    return kms_software_keystore_open_master(master, &kms_keystores[KMS_PROTECTION_SOFTWARE]);
}

kms_err kms_keystores_open(const struct kms_config *cfg)
{
    kms_err rc = KMS_OK;

    if (cfg->pkcs11_module[0] != '\0')
        rc = kms_pkcs11_keystore_open(cfg, &kms_keystores[KMS_PROTECTION_HSM]);
    if (rc == KMS_OK)
        rc = kms_keystores_open_software(cfg);
    if (rc != KMS_OK)
        kms_keystores_close();
    return rc;
}

void kms_keystores_close(void)
{
    /* Software first: in sealing mode its master key belongs to the PKCS#11 driver. */
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

bool kms_keystore_supports(struct kms_keystore *ks, enum kms_key_spec spec, enum kms_origin origin)
{
    if (ks->ks_ops->ks_supports == NULL)
        return true;
    return ks->ks_ops->ks_supports(ks, spec, origin);
}
