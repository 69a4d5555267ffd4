/*
 * common.c - what kmsadm's commands share: error lines, the data directory's lock, opening the
 * keystores and the store the way kmsd does, and making an admin access key.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "keystore/keystore.h"
#include "kms/auth.h"
#include "kms/clock.h"
#include "kms/crypto.h"
#include "kms/daemon.h"
#include "kms/store.h"
#include "kmsadm.h"

#define KMSADM_ID_RANDOM  16 /* admin AccessKeyId: "KMSD" + 16 characters, as kmsd makes them */
#define KMSADM_SECRET_LEN 30

int kmsadm_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("kmsadm: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return KMSADM_FAIL;
}

bool kmsadm_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

int kmsadm_sync_dir_of(const char *path)
{
    char copy[PATH_MAX];
    int fd, rc;

    snprintf(copy, sizeof(copy), "%s", path);
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int kmsadm_lock(struct kmsadm *a, const char *command)
{
    bool busy = false;

    if (!kmsadm_exists(a->cfg.data_dir))
        return kmsadm_fail("%s: the data directory %s does not exist (kmsadm init makes one)",
                           command, a->cfg.data_dir);
    if (kms_datadir_lock(a->cfg.data_dir, &a->lock_fd, &busy) == KMS_OK)
        return KMSADM_OK;
    if (busy)
        return kmsadm_fail("%s: kmsd (or another kmsadm) is running on %s: stop it first (this "
                           "command changes data a running kmsd keeps in its caches)",
                           command, a->cfg.data_dir);
    return kmsadm_fail("%s: cannot lock %s", command, a->cfg.data_dir);
}

int kmsadm_open_keystores(struct kmsadm *a, bool create_master)
{
    if (!create_master && !a->cfg.pkcs11_seal_master_key && !kmsadm_exists(a->cfg.master_key_file))
        return kmsadm_fail("the master key %s does not exist (--config names the kmsd.conf "
                           "that says where it is)",
                           a->cfg.master_key_file);
    if (kms_aead_init() != KMS_OK || kms_keystores_open(&a->cfg) != KMS_OK)
        return kmsadm_fail("cannot open the keystores (the line above says why)");
    a->keystores_open = true;
    return KMSADM_OK;
}

int kmsadm_open_store(struct kmsadm *a, bool must_exist, bool migrate)
{
    if (must_exist && !kmsadm_exists(a->db_path))
        return kmsadm_fail("there is no database %s (kmsadm init makes one)", a->db_path);
    if (kms_store_init(a->db_path) != KMS_OK)
        return kmsadm_fail("cannot open the database %s", a->db_path);
    a->store_open = true;
    if (migrate && kms_store_migrate() != KMS_OK)
        return kmsadm_fail("cannot bring the database %s up to date", a->db_path);
    return KMSADM_OK;
}

void kmsadm_close(struct kmsadm *a)
{
    if (a->store_open)
        kms_store_shutdown();
    if (a->keystores_open)
        kms_keystores_close();
    a->store_open = a->keystores_open = false;
    kms_datadir_unlock(a->lock_fd);
    a->lock_fd = -1;
}

void kmsadm_show_secret(const char *id, const char *secret)
{
    printf("AccessKeyId:     %s\n"
           "AccessKeySecret: %s\n"
           "(the secret is shown only this once: kmsd keeps it sealed and never prints it)\n",
           id, secret);
    fflush(stdout);
}

int kmsadm_access_key_create(struct kmsadm *a, const char *id, const char *secret,
                             const char *description, const char *aap)
{
    struct kms_db *db = kms_store_thread();
    struct kms_access_key_record existing;
    char made_id[KMS_ID_MAX], made_secret[KMSADM_SECRET_LEN + 1];
    kms_err rc = KMS_OK;

    (void)a;
    if (db == NULL)
        return kmsadm_fail("the database is not open");
    if (id == NULL) {
        memcpy(made_id, "KMSD", 4);
        rc = kms_random_alnum(made_id + 4, KMSADM_ID_RANDOM);
        id = made_id;
    }
    if (rc == KMS_OK && secret == NULL) {
        rc = kms_random_alnum(made_secret, KMSADM_SECRET_LEN);
        secret = made_secret;
    }
    if (rc != KMS_OK)
        return kmsadm_fail("cannot draw random characters");
    if (strlen(id) >= KMS_ID_MAX || strncmp(id, "STS.", 4) == 0)
        return kmsadm_fail("the AccessKeyId %s is too long or starts with STS.", id);
    if (kms_store_access_key_get(db, id, &existing) == KMS_OK) {
        kms_access_key_record_free(&existing);
        return kmsadm_fail("the access key %s exists already", id);
    }
    rc = kms_store_begin(db);
    if (rc == KMS_OK && aap != NULL)
        rc = kms_credentials_create_for_aap(db, aap, a->cfg.max_access_keys_per_aap, id, secret,
                                            description, kms_clock_now());
    else if (rc == KMS_OK)
        rc = kms_credentials_create(db, id, secret, true, "", description, kms_clock_now());
    if (rc == KMS_OK)
        rc = kms_store_commit(db);
    kms_store_rollback(db);
    if (rc == KMS_OK)
        kmsadm_show_secret(id, secret);
    OPENSSL_cleanse(made_secret, sizeof(made_secret));
    if (rc != KMS_OK && aap != NULL)
        return kmsadm_fail("cannot add a key to access point %s (%s): it must exist, use "
                           "AuthenticationMethod AccessKey and have room for another key",
                           aap, kms_err_info(rc)->code);
    if (rc != KMS_OK)
        return kmsadm_fail("cannot store the access key (%s)", kms_err_info(rc)->code);
    return KMSADM_OK;
}
