/*
 * master.h - the software keystore's master key behind one small interface, so the same
 * wrapping code works whether the key is a file in memory (master_file.c) or a non-extractable
 * AES key inside a PKCS#11 token (p11_master.c, "sealing mode").
 *
 * A master does AES-256-GCM with a caller-chosen 96-bit IV and a 128-bit tag, and keyed
 * fingerprints (HMAC-SHA-256 under a key derived from, or stored beside, the master key). The
 * wrapped format (format byte, IV, ciphertext, tag) belongs to software.c and is the same for
 * both implementations.
 */
#ifndef KMS_KEYSTORE_MASTER_H
#define KMS_KEYSTORE_MASTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/crypto.h"
#include "kms/error.h"

struct kms_keystore;
struct kms_master;

struct kms_master_ops {
    const char *mo_name;
    kms_err (*mo_seal)(struct kms_master *m, const uint8_t iv[KMS_AEAD_IV_LEN], const void *aad,
                       size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct,
                       uint8_t tag[KMS_AEAD_TAG_LEN]);
    /* KMS_E_INVALID_PARAMETER when the tag does not verify (pt is then wiped). */
    kms_err (*mo_open)(struct kms_master *m, const uint8_t iv[KMS_AEAD_IV_LEN], const void *aad,
                       size_t aad_len, const uint8_t *ct, size_t len,
                       const uint8_t tag[KMS_AEAD_TAG_LEN], uint8_t *pt);
    kms_err (*mo_fingerprint)(struct kms_master *m, const uint8_t *data, size_t len,
                              uint8_t out[32]);
    void (*mo_close)(struct kms_master *m);
};

struct kms_master {
    const struct kms_master_ops *m_ops;
};

/* master_file.c: the 32-byte key in path, created 0600 when the file does not exist. */
kms_err kms_master_file_open(const char *path, struct kms_master **out);

/*
 * p11_master.c: the AES-256 key labelled label in the token of p11 (a PKCS#11 keystore), and
 * its HMAC fingerprint key labelled "<label>-fingerprint"; both are created, non-extractable,
 * when absent. The master must be closed before p11.
 */
kms_err kms_master_token_open(struct kms_keystore *p11, const char *label, struct kms_master **out);

/* software.c: a software keystore over master, which it owns from then on (even on failure). */
kms_err kms_software_keystore_open_master(struct kms_master *master, struct kms_keystore **out);

/* ---- master-key rotation (kmsadm rotate-master-key, docs/operations.md) ---- */

/* software.c: the open software keystore's master (NULL before kms_keystores_open). */
struct kms_master *kms_software_master(void);
/* software.c: the AAD that binds a version's wrapped material to its key and version. */
struct kms_ks_ref;
struct kms_buf;
kms_err kms_software_material_aad(const struct kms_ks_ref *ref, struct kms_buf *aad);
/*
 * software.c: opens wrapped (material or a sealed server secret, bound to aad) under from and
 * appends it sealed under to; KMS_E_INTERNAL when it does not open under from.
 */
kms_err kms_software_rewrap(struct kms_master *from, struct kms_master *to, const void *aad,
                            size_t aad_len, const uint8_t *wrapped, size_t len,
                            struct kms_buf *out);

/* Whether m is a file master (kms_master_file_open), the only kind kmsadm rotates. */
bool kms_master_is_file(const struct kms_master *m);
/*
 * master_file.c: creates path (0600, O_EXCL, synced) holding a fresh random master key and the
 * fingerprint key of from (a file master), so BYOK fingerprints made under from stay valid,
 * and opens it into *out. The file is 64 bytes: key, then fingerprint key.
 */
kms_err kms_master_file_create_successor(const char *path, const struct kms_master *from,
                                         struct kms_master **out);

#endif
