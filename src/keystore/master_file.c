/*
 * master_file.c - the master key as a file (created 0600 on first start) or a systemd
 * credential, held on locked pages excluded from core dumps (kms_secure_alloc) for the life of
 * the process.
 *
 * The file holds 32 bytes, the master key, from which the BYOK fingerprint key is derived; or,
 * after kmsadm rotate-master-key, 64 bytes: the new master key, then the fingerprint key carried
 * over from the first one, because the fingerprints stored with keys cannot be recomputed for
 * material that has been deleted (DeleteKeyMaterial) and must keep matching a re-import.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "kms/harden.h"
#include "kms/log.h"
#include "master.h"

#define KMS_MASTER_KEY_LEN  32
#define KMS_MASTER_FILE_MAX (2 * KMS_MASTER_KEY_LEN) /* key, then the carried fingerprint key */

struct kms_master_file {
    struct kms_master mf_base;
    uint8_t mf_key[KMS_MASTER_KEY_LEN];
    uint8_t mf_fingerprint_key[32]; /* derived: HMAC(master, "kmsd material fingerprint v1") */
};

/*
 * Reads the master key (and a carried fingerprint key: *carried), creating a 32-byte file
 * (0600, O_EXCL) when it does not exist yet.
 */
static kms_err kms_master_file_read(const char *path, uint8_t key[KMS_MASTER_FILE_MAX],
                                    bool *carried)
{
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *carried = false;
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            kms_log_error("keystore: cannot create master key %s: %s", path, strerror(errno));
            return KMS_E_INTERNAL;
        }
        if (RAND_bytes(key, KMS_MASTER_KEY_LEN) != 1 ||
            write(fd, key, KMS_MASTER_KEY_LEN) != KMS_MASTER_KEY_LEN || fsync(fd) != 0) {
            kms_log_error("keystore: cannot write master key %s", path);
            close(fd);
            unlink(path);
            return KMS_E_INTERNAL;
        }
        close(fd);
        kms_log_info("keystore: created master key %s (mode 0600): back it up, it cannot be "
                     "recovered",
                     path);
        return KMS_OK;
    }
    if (fd < 0) {
        kms_log_error("keystore: cannot open master key %s: %s", path, strerror(errno));
        return KMS_E_INTERNAL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        kms_log_error("keystore: master key %s is not a regular file", path);
        close(fd);
        return KMS_E_INTERNAL;
    }
    if ((st.st_mode & 077) != 0) {
        kms_log_error("keystore: master key %s is readable by group or others (mode %03o): "
                      "chmod 600 it",
                      path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return KMS_E_INTERNAL;
    }
    {
        uint8_t probe[KMS_MASTER_FILE_MAX + 1];

        /* One byte more than the longest file, to notice a file that is too long. */
        n = read(fd, probe, sizeof(probe));
        if (n == KMS_MASTER_KEY_LEN || n == KMS_MASTER_FILE_MAX)
            memcpy(key, probe, (size_t)n);
        OPENSSL_cleanse(probe, sizeof(probe));
    }
    close(fd);
    if (n != KMS_MASTER_KEY_LEN && n != KMS_MASTER_FILE_MAX) {
        kms_log_error("keystore: master key %s must hold exactly %d bytes (or %d after a "
                      "rotation)",
                      path, KMS_MASTER_KEY_LEN, KMS_MASTER_FILE_MAX);
        OPENSSL_cleanse(key, KMS_MASTER_FILE_MAX);
        return KMS_E_INTERNAL;
    }
    *carried = n == KMS_MASTER_FILE_MAX;
    return KMS_OK;
}

static kms_err kms_master_file_seal(struct kms_master *m, const uint8_t iv[KMS_AEAD_IV_LEN],
                                    const void *aad, size_t aad_len, const uint8_t *pt, size_t len,
                                    uint8_t *ct, uint8_t tag[KMS_AEAD_TAG_LEN])
{
    struct kms_master_file *mf = (struct kms_master_file *)m;

    return kms_aead_seal(KMS_AEAD_AES_256_GCM, mf->mf_key, sizeof(mf->mf_key), iv, aad, aad_len, pt,
                         len, ct, tag);
}

static kms_err kms_master_file_open_blob(struct kms_master *m, const uint8_t iv[KMS_AEAD_IV_LEN],
                                         const void *aad, size_t aad_len, const uint8_t *ct,
                                         size_t len, const uint8_t tag[KMS_AEAD_TAG_LEN],
                                         uint8_t *pt)
{
    struct kms_master_file *mf = (struct kms_master_file *)m;

    return kms_aead_open(KMS_AEAD_AES_256_GCM, mf->mf_key, sizeof(mf->mf_key), iv, aad, aad_len, ct,
                         len, tag, pt);
}

static kms_err kms_master_file_fingerprint(struct kms_master *m, const uint8_t *data, size_t len,
                                           uint8_t out[32])
{
    struct kms_master_file *mf = (struct kms_master_file *)m;
    unsigned int n = 0;

    if (HMAC(EVP_sha256(), mf->mf_fingerprint_key, sizeof(mf->mf_fingerprint_key), data, len, out,
             &n) == NULL)
        return KMS_E_INTERNAL;
    return KMS_OK;
}

static void kms_master_file_close(struct kms_master *m)
{
    struct kms_master_file *mf = (struct kms_master_file *)m;

    if (mf == NULL)
        return;
    kms_secure_free(mf, sizeof(*mf));
}

static const struct kms_master_ops kms_master_file_ops = {
    .mo_name = "file",
    .mo_seal = kms_master_file_seal,
    .mo_open = kms_master_file_open_blob,
    .mo_fingerprint = kms_master_file_fingerprint,
    .mo_close = kms_master_file_close,
};

kms_err kms_master_file_open(const char *path, struct kms_master **out)
{
    static const char label[] = "kmsd material fingerprint v1";
    /* Pages of its own: locked out of swap where the system allows, never in a core dump. */
    struct kms_master_file *mf = kms_secure_alloc(sizeof(*mf));
    uint8_t file[KMS_MASTER_FILE_MAX];
    unsigned int mac_len = 0;
    bool carried = false;
    kms_err rc;

    if (mf == NULL)
        return KMS_E_INTERNAL;
    /* The file's bytes pass through the stack: keep them out of swap too. */
    mlock(file, sizeof(file));
    mf->mf_base.m_ops = &kms_master_file_ops;
    rc = kms_master_file_read(path, file, &carried);
    if (rc == KMS_OK) {
        memcpy(mf->mf_key, file, KMS_MASTER_KEY_LEN);
        if (carried)
            memcpy(mf->mf_fingerprint_key, file + KMS_MASTER_KEY_LEN,
                   sizeof(mf->mf_fingerprint_key));
        else if (HMAC(EVP_sha256(), mf->mf_key, sizeof(mf->mf_key), (const unsigned char *)label,
                      sizeof(label) - 1, mf->mf_fingerprint_key, &mac_len) == NULL)
            rc = KMS_E_INTERNAL;
    }
    OPENSSL_cleanse(file, sizeof(file));
    munlock(file, sizeof(file));
    if (rc != KMS_OK) {
        kms_master_file_close(&mf->mf_base);
        return KMS_E_INTERNAL;
    }
    *out = &mf->mf_base;
    return KMS_OK;
}

bool kms_master_is_file(const struct kms_master *m)
{
    return m != NULL && m->m_ops == &kms_master_file_ops;
}

kms_err kms_master_file_create_successor(const char *path, const struct kms_master *from,
                                         struct kms_master **out)
{
    const struct kms_master_file *old = (const struct kms_master_file *)from;
    uint8_t file[KMS_MASTER_FILE_MAX];
    kms_err rc = KMS_E_INTERNAL;
    int fd;

    if (!kms_master_is_file(from))
        return KMS_E_INTERNAL;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        kms_log_error("keystore: cannot create %s: %s", path, strerror(errno));
        return KMS_E_INTERNAL;
    }
    mlock(file, sizeof(file));
    memcpy(file + KMS_MASTER_KEY_LEN, old->mf_fingerprint_key, sizeof(old->mf_fingerprint_key));
    if (RAND_bytes(file, KMS_MASTER_KEY_LEN) == 1 &&
        write(fd, file, sizeof(file)) == (ssize_t)sizeof(file) && fsync(fd) == 0)
        rc = KMS_OK;
    OPENSSL_cleanse(file, sizeof(file));
    munlock(file, sizeof(file));
    close(fd);
    if (rc != KMS_OK) {
        kms_log_error("keystore: cannot write %s", path);
        unlink(path);
        return rc;
    }
    return kms_master_file_open(path, out);
}
