/*
 * verify.c - kmsadm verify: does this data directory open under its master key? It checks the
 * schema version and the database's integrity, the master key's check value, then opens what
 * the master key protects, one by one:
 *   - every key version's material through its keystore: software material is unwrapped (and a
 *     symmetric key encrypts and decrypts a probe); an HSM version's key object must be in the
 *     token (its material never leaves it);
 *   - every access key's sealed secret;
 *   - every secret version, data key and value, the way GetSecretValue opens them (a secret
 *     whose CMK is not Enabled cannot be opened that way and is counted as not checked; its
 *     CMK's material is checked above).
 * It prints counts and exits non-zero when anything fails. It only reads, so it runs beside a
 * running kmsd.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "api/internal.h"
#include "keystore/keystore.h"
#include "kms/auth.h"
#include "kms/clock.h"
#include "kms/daemon.h"
#include "kmsadm.h"

#define KMSADM_CACHE 1024
#define KMSADM_PAGE  100

struct kmsadm_tally {
    unsigned t_software, t_hsm, t_awaiting, t_failed;
    unsigned t_access, t_access_failed;
    unsigned t_secret_versions, t_secret_skipped, t_secret_failed;
};

/* A symmetric key seals and opens a probe: proves the material is the right size and usable. */
static kms_err kmsadm_probe_symmetric(struct kms_ks_key *k)
{
    uint8_t iv[KMS_AEAD_IV_LEN], pt[16], ct[16], back[16], tag[KMS_AEAD_TAG_LEN];
    static const uint8_t aad[] = "kmsadm verify";
    kms_err rc;

    if (RAND_bytes(iv, sizeof(iv)) != 1 || RAND_bytes(pt, sizeof(pt)) != 1)
        return KMS_E_INTERNAL;
    rc = k->kk_ops->ks_seal(k, iv, aad, sizeof(aad), pt, sizeof(pt), ct, tag);
    if (rc == KMS_OK)
        rc = k->kk_ops->ks_open(k, iv, aad, sizeof(aad), ct, sizeof(ct), tag, back);
    if (rc == KMS_OK && memcmp(pt, back, sizeof(pt)) != 0)
        rc = KMS_E_INTERNAL;
    OPENSSL_cleanse(back, sizeof(back));
    return rc;
}

static void kmsadm_verify_version(struct kms_db *db, const char *version_id, struct kmsadm_tally *t)
{
    struct kms_version_record v;
    struct kms_key_record k;
    struct kms_ks_key *loaded = NULL;
    struct kms_keystore *ks;
    const struct kms_key_spec_info *info;
    kms_err rc;

    if (kms_store_version_get(db, version_id, &v) != KMS_OK) {
        t->t_failed++;
        fprintf(stderr, "kmsadm: verify: version %s cannot be read\n", version_id);
        return;
    }
    if (kms_store_key_get(db, v.key_id, &k) != KMS_OK) {
        t->t_failed++;
        fprintf(stderr, "kmsadm: verify: version %s belongs to no key\n", version_id);
        kms_version_record_free(&v);
        return;
    }
    info = kms_key_spec_get(k.spec);
    ks = kms_keystore_for(k.protection);
    if (v.material == NULL && k.protection == KMS_PROTECTION_SOFTWARE) {
        /* BYOK keys wait for ImportKeyMaterial; any other software version must have material. */
        if (k.origin == KMS_ORIGIN_EXTERNAL) {
            t->t_awaiting++;
        } else {
            t->t_failed++;
            fprintf(stderr, "kmsadm: verify: version %s of key %s has no material\n", version_id,
                    k.key_id);
        }
        goto out;
    }
    if (ks == NULL || info == NULL) {
        t->t_failed++;
        fprintf(stderr, "kmsadm: verify: key %s is %s but no such keystore is configured\n",
                k.key_id, kms_protection_name(k.protection));
        goto out;
    }
    {
        struct kms_ks_ref ref = {k.key_id, v.version_id, k.spec};

        rc = ks->ks_ops->ks_load(ks, &ref, v.material, v.material_len, &loaded);
    }
    if (rc == KMS_OK && info->symmetric)
        rc = kmsadm_probe_symmetric(loaded);
    if (loaded != NULL)
        loaded->kk_ops->ks_release(loaded);
    if (rc != KMS_OK) {
        t->t_failed++;
        fprintf(stderr, "kmsadm: verify: version %s of key %s does not open (%s)\n", version_id,
                k.key_id,
                k.protection == KMS_PROTECTION_HSM ? "no usable key object in the token"
                                                   : "its material does not unwrap");
    } else if (k.protection == KMS_PROTECTION_HSM) {
        t->t_hsm++;
    } else {
        t->t_software++;
    }
out:
    kms_key_record_free(&k);
    kms_version_record_free(&v);
}

static int kmsadm_verify_access_keys(struct kms_db *db, struct kmsadm_tally *t)
{
    char **ids = NULL;
    size_t count = 0;

    if (kms_store_access_keys_all(db, &ids, &count) != KMS_OK)
        return kmsadm_fail("verify: cannot list the access keys");
    for (size_t i = 0; i < count; i++) {
        struct kms_access_key_record r;
        struct kms_buf aad = {0}, secret = {0};
        kms_err rc = kms_store_access_key_get(db, ids[i], &r);

        if (rc == KMS_OK) {
            rc = kms_credential_aad(ids[i], &aad);
            if (rc == KMS_OK)
                rc = kms_keystore_open_secret(aad.data, aad.len, r.secret_wrapped,
                                              r.secret_wrapped_len, &secret);
            kms_access_key_record_free(&r);
        }
        if (rc == KMS_OK) {
            t->t_access++;
        } else {
            t->t_access_failed++;
            fprintf(stderr, "kmsadm: verify: the secret of access key %s does not unseal\n",
                    ids[i]);
        }
        kms_buf_free(&aad);
        kms_buf_free_secret(&secret);
    }
    kms_store_free_list(ids, count);
    return KMSADM_OK;
}

static void kmsadm_verify_secret(struct kms_call *call, const char *name, struct kmsadm_tally *t)
{
    struct kms_secret_version_record *versions = NULL;
    size_t count = 0;
    int64_t total = 0;

    if (kms_store_secret_version_list(call->db, name, true, 0, INT32_MAX, &versions, &count,
                                      &total) != KMS_OK) {
        t->t_secret_failed++;
        fprintf(stderr, "kmsadm: verify: cannot list the versions of secret %s\n", name);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        kms_err rc = kms_secret_verify_version(call, name, versions[i].version_id);

        kms_buf_reset(&call->detail);
        if (rc == KMS_OK) {
            t->t_secret_versions++;
        } else if (rc == KMS_E_KEY_DISABLED || rc == KMS_E_KEY_PENDING_DELETION ||
                   rc == KMS_E_KEY_PENDING_IMPORT) {
            t->t_secret_skipped++;
        } else {
            t->t_secret_failed++;
            fprintf(stderr, "kmsadm: verify: version %s of secret %s does not open (%s)\n",
                    versions[i].version_id, name, kms_err_info(rc)->code);
        }
    }
    kms_secret_version_records_free(versions, count);
}

static int kmsadm_verify_secrets(struct kmsadm *a, struct kms_db *db, struct kmsadm_tally *t)
{
    struct kms_call call;
    int64_t offset = 0, total = 0;

    memset(&call, 0, sizeof(call));
    call.cfg = &a->cfg;
    call.db = db;
    call.now = kms_clock_now();
    call.authenticated = true;
    call.principal.admin = true;
    if (kms_keyref_init(KMSADM_CACHE) != KMS_OK)
        return kmsadm_fail("verify: out of memory");
    do {
        struct kms_secret_record *list = NULL;
        size_t count = 0;

        if (kms_store_secret_list(db, call.now, NULL, 0, offset, KMSADM_PAGE, &list, &count,
                                  &total) != KMS_OK) {
            kms_keyref_shutdown();
            return kmsadm_fail("verify: cannot list the secrets");
        }
        for (size_t i = 0; i < count; i++)
            kmsadm_verify_secret(&call, list[i].name, t);
        kms_secret_records_free(list, count);
        offset += KMSADM_PAGE;
        if (count == 0)
            break;
    } while (offset < total);
    kms_buf_free(&call.detail);
    kms_keyref_shutdown();
    return KMSADM_OK;
}

/* Schema version and integrity, from a connection of its own. */
static int kmsadm_verify_database(struct kmsadm *a, int *schema)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    const char *result = NULL;
    int rc = KMSADM_OK;

    if (sqlite3_open_v2(a->db_path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return kmsadm_fail("verify: cannot open %s", a->db_path);
    }
    sqlite3_busy_timeout(db, 10000);
    *schema = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        *schema = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        result = (const char *)sqlite3_column_text(st, 0);
    if (result == NULL || strcmp(result, "ok") != 0)
        rc = kmsadm_fail("verify: integrity check of %s: %s", a->db_path,
                         result ? result : sqlite3_errmsg(db));
    else
        printf("database:     %s, integrity ok\n", a->db_path);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int kmsadm_cmd_verify(struct kmsadm *a, int argc, char **argv)
{
    struct kmsadm_tally t;
    struct kms_db *db;
    char **ids = NULL;
    size_t count = 0;
    int schema = -1, rc;
    bool failed = false;
    kms_err check;

    (void)argv;
    memset(&t, 0, sizeof(t));
    if (argc != 1)
        return kmsadm_fail("usage: kmsadm verify");
    if (!kmsadm_exists(a->db_path))
        return kmsadm_fail("verify: there is no database %s", a->db_path);
    rc = kmsadm_verify_database(a, &schema);
    if (rc != KMSADM_OK)
        failed = true;
    if (schema < 1 || schema > kms_store_schema_latest()) {
        failed = true;
        fprintf(stderr, "kmsadm: verify: schema version %d; this kmsadm knows 1 to %d\n", schema,
                kms_store_schema_latest());
    } else {
        printf("schema:       version %d%s\n", schema,
               schema < kms_store_schema_latest() ? " (kmsd migrates it at its next start)"
                                                  : " (current)");
    }
    rc = kmsadm_open_keystores(a, false);
    if (rc == KMSADM_OK)
        rc = kmsadm_open_store(a, true, false);
    if (rc != KMSADM_OK)
        return rc;
    db = kms_store_thread();
    check = kms_master_check(db, false);
    if (check == KMS_E_INVALID_PARAMETER) {
        failed = true;
        fprintf(stderr, "kmsadm: verify: the master key does not open this database's check "
                        "value: it is not this database's master key\n");
    } else if (check == KMS_OK) {
        printf("master key:   %s matches\n",
               a->cfg.pkcs11_seal_master_key ? "the token's key" : a->cfg.master_key_file);
    } else {
        printf("master key:   %s (no check value yet: kmsd records one at its next start)\n",
               a->cfg.pkcs11_seal_master_key ? "the token's key" : a->cfg.master_key_file);
    }
    if (kms_store_version_ids_all(db, &ids, &count) != KMS_OK)
        return kmsadm_fail("verify: cannot list the key versions");
    for (size_t i = 0; i < count; i++)
        kmsadm_verify_version(db, ids[i], &t);
    kms_store_free_list(ids, count);
    printf("key versions: %u software (unwrapped), %u HSM (in the token), %u awaiting import, "
           "%u failed\n",
           t.t_software, t.t_hsm, t.t_awaiting, t.t_failed);
    rc = kmsadm_verify_access_keys(db, &t);
    if (rc != KMSADM_OK)
        return rc;
    printf("access keys:  %u unsealed, %u failed\n", t.t_access, t.t_access_failed);
    rc = kmsadm_verify_secrets(a, db, &t);
    if (rc != KMSADM_OK)
        return rc;
    printf("secrets:      %u versions opened, %u not checked (CMK not Enabled), %u failed\n",
           t.t_secret_versions, t.t_secret_skipped, t.t_secret_failed);
    failed = failed || t.t_failed > 0 || t.t_access_failed > 0 || t.t_secret_failed > 0;
    printf("verify: %s\n", failed ? "FAILED" : "ok");
    return failed ? KMSADM_FAIL : KMSADM_OK;
}
