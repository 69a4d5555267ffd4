/*
 * rotate.c - kmsadm rotate-master-key: a new master key for the software keystore, with every
 * piece of wrapped material and every sealed secret re-wrapped under it in one transaction.
 *
 * What the master key protects: the wrapped material of software key versions (the secrets
 * service's internal key included), the sealed secrets of access keys, and the database's check
 * value. Secret values are sealed under CMKs, not the master key, so they need nothing; HSM key
 * versions live in the token and are not touched. Import tokens handed out before the rotation
 * (GetParametersForImport) stop working: ask for new ones.
 *
 * The steps, and why a crash at any point can be finished or undone (docs/operations.md):
 *   1. master.key.new is written (random key + the old fingerprint key, master_file.c) and
 *      synced. A crash here: the database is still under master.key; .new is stale.
 *   2. One transaction re-wraps everything under .new and commits (synchronous=FULL: durable).
 *      A crash before the commit is step 1's case; after it, the database opens under .new.
 *   3. master.key becomes master.key.old and master.key.new becomes master.key (two renames,
 *      then the directory is synced). A crash between them leaves .old and .new, no master.key.
 * Whenever it meets a master.key.new, kmsadm rotate-master-key first finds out which file the
 * database's check value opens under and finishes the interrupted step 3, or discards a stale
 * .new; kmsd refuses to start in between with a line that points here.
 *
 * The master key of sealing mode ([pkcs11] seal_master_key) is a non-extractable key inside the
 * token: kmsadm refuses to rotate it (it would need a second token key, a label swap that a
 * token cannot make atomic, and the key file this procedure protects does not exist there).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keystore/keystore.h"
#include "keystore/master.h"
#include "kms/auth.h"
#include "kms/daemon.h"
#include "kms/store.h"
#include "kmsadm.h"

struct kmsadm_rotation {
    struct kms_master *r_old;
    struct kms_master *r_new;
    unsigned r_versions, r_hsm, r_empty, r_access;
};

struct kmsadm_paths {
    char p_key[PATH_MAX];
    char p_new[PATH_MAX + 8];
    char p_old[PATH_MAX + 8];
};

/* Whether the database's check value opens under m. */
static bool kmsadm_check_opens(struct kms_db *db, struct kms_master *m)
{
    struct kms_buf stored = {0}, out = {0};
    size_t aad_len;
    const char *aad = kms_master_check_aad(&aad_len);
    bool opens = false;

    /* Re-wrapping from m to m is the plainest "does it open under m". */
    if (kms_store_meta_get(db, KMS_MASTER_CHECK_META, &stored) == KMS_OK)
        opens = kms_software_rewrap(m, m, aad, aad_len, (const uint8_t *)stored.data, stored.len,
                                    &out) == KMS_OK;
    kms_buf_free(&stored);
    kms_buf_free(&out);
    return opens;
}

static kms_err kmsadm_rewrap_versions(struct kms_db *db, struct kmsadm_rotation *r)
{
    char **ids = NULL;
    size_t count = 0;
    kms_err rc = kms_store_version_ids_all(db, &ids, &count);

    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        struct kms_version_record v;
        struct kms_key_record k;
        struct kms_buf aad = {0}, wrapped = {0};

        rc = kms_store_version_get(db, ids[i], &v);
        if (rc != KMS_OK)
            break;
        rc = kms_store_key_get(db, v.key_id, &k);
        if (rc != KMS_OK) {
            kms_version_record_free(&v);
            break;
        }
        if (k.protection != KMS_PROTECTION_SOFTWARE) {
            r->r_hsm++;
        } else if (v.material == NULL) {
            r->r_empty++;
        } else {
            struct kms_ks_ref ref = {k.key_id, v.version_id, k.spec};

            rc = kms_software_material_aad(&ref, &aad);
            if (rc == KMS_OK)
                rc = kms_software_rewrap(r->r_old, r->r_new, aad.data, aad.len, v.material,
                                         v.material_len, &wrapped);
            if (rc != KMS_OK)
                kmsadm_fail("rotate-master-key: the material of version %s (key %s) does not "
                            "unwrap under the current master key; nothing was changed",
                            v.version_id, k.key_id);
            if (rc == KMS_OK)
                rc = kms_store_version_set_material(db, v.version_id, (uint8_t *)wrapped.data,
                                                    wrapped.len);
            r->r_versions += rc == KMS_OK;
        }
        kms_buf_free(&aad);
        kms_buf_free(&wrapped);
        kms_key_record_free(&k);
        kms_version_record_free(&v);
    }
    kms_store_free_list(ids, count);
    return rc;
}

static kms_err kmsadm_rewrap_access_keys(struct kms_db *db, struct kmsadm_rotation *r)
{
    char **ids = NULL;
    size_t count = 0;
    kms_err rc = kms_store_access_keys_all(db, &ids, &count);

    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        struct kms_access_key_record a;
        struct kms_buf aad = {0}, wrapped = {0};

        rc = kms_store_access_key_get(db, ids[i], &a);
        if (rc != KMS_OK)
            break;
        rc = kms_credential_aad(ids[i], &aad);
        if (rc == KMS_OK)
            rc = kms_software_rewrap(r->r_old, r->r_new, aad.data, aad.len, a.secret_wrapped,
                                     a.secret_wrapped_len, &wrapped);
        if (rc != KMS_OK)
            kmsadm_fail("rotate-master-key: the secret of access key %s does not unseal under "
                        "the current master key; nothing was changed",
                        ids[i]);
        if (rc == KMS_OK)
            rc = kms_store_access_key_set_secret(db, ids[i], (uint8_t *)wrapped.data, wrapped.len);
        r->r_access += rc == KMS_OK;
        kms_buf_free(&aad);
        kms_buf_free(&wrapped);
        kms_access_key_record_free(&a);
    }
    kms_store_free_list(ids, count);
    return rc;
}

/* The check value under the new key: re-wrapped, or made (under the old) and re-wrapped. */
static kms_err kmsadm_rewrap_check(struct kms_db *db, struct kmsadm_rotation *r)
{
    struct kms_buf stored = {0}, wrapped = {0};
    size_t aad_len;
    const char *aad = kms_master_check_aad(&aad_len);
    kms_err rc = kms_store_meta_get(db, KMS_MASTER_CHECK_META, &stored);

    if (rc == KMS_E_RESOURCE_NOT_FOUND)
        rc = kms_master_check_make(&stored);
    if (rc == KMS_OK)
        rc = kms_software_rewrap(r->r_old, r->r_new, aad, aad_len, (const uint8_t *)stored.data,
                                 stored.len, &wrapped);
    if (rc == KMS_OK)
        rc = kms_store_meta_set(db, KMS_MASTER_CHECK_META, wrapped.data, wrapped.len);
    kms_buf_free(&stored);
    kms_buf_free(&wrapped);
    return rc;
}

/* Step 3: master.key -> master.key.old, master.key.new -> master.key, synced. */
static int kmsadm_switch_files(const struct kmsadm_paths *p)
{
    if (kmsadm_exists(p->p_key) && rename(p->p_key, p->p_old) != 0)
        return kmsadm_fail("rotate-master-key: cannot rename %s to %s: %s", p->p_key, p->p_old,
                           strerror(errno));
    if (rename(p->p_new, p->p_key) != 0)
        return kmsadm_fail("rotate-master-key: cannot rename %s to %s: %s (run kmsadm "
                           "rotate-master-key again to finish)",
                           p->p_new, p->p_key, strerror(errno));
    if (kmsadm_sync_dir_of(p->p_key) != 0)
        return kmsadm_fail("rotate-master-key: cannot sync the directory of %s", p->p_key);
    return KMSADM_OK;
}

/*
 * A master.key.new from an interrupted rotation: *finished when the database had been committed
 * under it (step 3 is completed now), else it is stale and removed.
 */
static int kmsadm_recover(struct kmsadm *a, const struct kmsadm_paths *p, bool *finished)
{
    struct kms_master *current = kms_software_master(), *candidate = NULL;
    struct kms_db *db = kms_store_thread();
    int rc = KMSADM_OK;

    *finished = false;
    if (kms_master_file_open(p->p_new, &candidate) != KMS_OK)
        return kmsadm_fail("rotate-master-key: %s is left from an interrupted rotation and "
                           "cannot be read",
                           p->p_new);
    if (kmsadm_check_opens(db, current)) {
        printf("rotate-master-key: %s is left from a rotation that did not commit; removed\n",
               p->p_new);
        if (unlink(p->p_new) != 0)
            rc = kmsadm_fail("cannot remove %s: %s", p->p_new, strerror(errno));
    } else if (kmsadm_check_opens(db, candidate)) {
        rc = kmsadm_switch_files(p);
        *finished = rc == KMSADM_OK;
        if (*finished)
            printf("rotate-master-key: finished an interrupted rotation: %s is the new master "
                   "key, the previous one is %s\n",
                   p->p_key, p->p_old);
    } else {
        rc = kmsadm_fail("rotate-master-key: neither %s nor %s opens this database's check "
                         "value; nothing was changed",
                         a->cfg.master_key_file, p->p_new);
    }
    candidate->m_ops->mo_close(candidate);
    return rc;
}

static int kmsadm_rotate(struct kmsadm *a, const struct kmsadm_paths *p)
{
    struct kmsadm_rotation r;
    struct kms_db *db = kms_store_thread();
    kms_err rc;

    memset(&r, 0, sizeof(r));
    r.r_old = kms_software_master();
    if (!kmsadm_check_opens(db, r.r_old) && kms_master_check(db, false) != KMS_E_RESOURCE_NOT_FOUND)
        return kmsadm_fail("rotate-master-key: %s does not open this database; nothing was "
                           "changed",
                           p->p_key);
    if (kms_master_file_create_successor(p->p_new, r.r_old, &r.r_new) != KMS_OK)
        return kmsadm_fail("rotate-master-key: cannot write %s", p->p_new);
    kmsadm_sync_dir_of(p->p_new);
    rc = kms_store_begin(db);
    if (rc == KMS_OK)
        rc = kmsadm_rewrap_versions(db, &r);
    if (rc == KMS_OK)
        rc = kmsadm_rewrap_access_keys(db, &r);
    if (rc == KMS_OK)
        rc = kmsadm_rewrap_check(db, &r);
    if (rc == KMS_OK)
        rc = kms_store_commit(db);
    kms_store_rollback(db);
    r.r_new->m_ops->mo_close(r.r_new);
    if (rc != KMS_OK) {
        unlink(p->p_new);
        return kmsadm_fail("rotate-master-key: the re-wrap failed (%s); nothing was changed",
                           kms_err_info(rc)->code);
    }
    if (kmsadm_switch_files(p) != KMSADM_OK)
        return KMSADM_FAIL;
    printf("rotate-master-key: re-wrapped %u key versions and %u access-key secrets under a new "
           "master key (%u HSM versions are in the token, %u versions await import)\n"
           "  new master key: %s\n"
           "  old master key: %s: backups made before now need it; keep it with them, apart, "
           "then remove it here (a next rotation refuses while it exists)\n",
           r.r_versions, r.r_access, r.r_hsm, r.r_empty, p->p_key, p->p_old);
    return KMSADM_OK;
}

int kmsadm_cmd_rotate_master_key(struct kmsadm *a, int argc, char **argv)
{
    struct kmsadm_paths p;
    bool finished = false;
    int rc;

    (void)argv;
    if (argc != 1)
        return kmsadm_fail("usage: kmsadm rotate-master-key");
    if (a->cfg.pkcs11_seal_master_key)
        return kmsadm_fail("rotate-master-key: the master key is sealed in the PKCS#11 token "
                           "('%s', [pkcs11] seal_master_key = true); it never leaves the token "
                           "and kmsadm does not rotate it (docs/operations.md)",
                           a->cfg.pkcs11_master_key_label);
    snprintf(p.p_key, sizeof(p.p_key), "%s", a->cfg.master_key_file);
    snprintf(p.p_new, sizeof(p.p_new), "%s.new", p.p_key);
    snprintf(p.p_old, sizeof(p.p_old), "%s.old", p.p_key);
    rc = kmsadm_lock(a, "rotate-master-key");
    if (rc != KMSADM_OK)
        return rc;
    /* A crash between the two renames of step 3: only .new and .old are left. */
    if (!kmsadm_exists(p.p_key) && kmsadm_exists(p.p_new) && kmsadm_exists(p.p_old)) {
        if (rename(p.p_new, p.p_key) != 0 || kmsadm_sync_dir_of(p.p_key) != 0)
            return kmsadm_fail("rotate-master-key: cannot rename %s to %s", p.p_new, p.p_key);
        finished = true;
    }
    rc = kmsadm_open_keystores(a, false);
    if (rc == KMSADM_OK)
        rc = kmsadm_open_store(a, true, true);
    if (rc != KMSADM_OK)
        return rc;
    if (!kms_master_is_file(kms_software_master()))
        return kmsadm_fail("rotate-master-key: the master key is not a file");
    if (finished) {
        if (!kmsadm_check_opens(kms_store_thread(), kms_software_master()))
            return kmsadm_fail("rotate-master-key: %s does not open the database", p.p_key);
        printf("rotate-master-key: finished an interrupted rotation: %s is the new master key, "
               "the previous one is %s\n",
               p.p_key, p.p_old);
        return KMSADM_OK;
    }
    if (kmsadm_exists(p.p_new)) {
        rc = kmsadm_recover(a, &p, &finished);
        if (rc != KMSADM_OK || finished)
            return rc;
    }
    if (kmsadm_exists(p.p_old))
        return kmsadm_fail("rotate-master-key: %s exists (the key of backups made before the "
                           "last rotation): keep it with those backups, remove it here, then "
                           "rotate again",
                           p.p_old);
    return kmsadm_rotate(a, &p);
}
