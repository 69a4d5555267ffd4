/*
 * kmsadm.h - the operator's tool on a kmsd data directory: what its commands share (the
 * configuration, the data directory's lock, opening the keystores and the store) and the entry
 * point of each command, one file per command (p11-kit style):
 *
 *   init.c        kmsadm init                     a new data directory, ready for kmsd
 *   access_key.c  kmsadm access-key create|list|disable|enable
 *   backup.c      kmsadm backup FILE / restore FILE
 *   verify.c      kmsadm verify                   does everything open under the master key?
 *   rotate.c      kmsadm rotate-master-key        re-wrap everything under a new master key
 *
 * Commands that change data take the data directory's lock first, and so refuse to run while
 * kmsd serves from it (its caches would go stale); reading commands (list, backup, verify) run
 * beside a running kmsd. kmsadm links the daemon's own core: the same store, keystores and
 * credentials code, so it cannot disagree with kmsd about formats.
 */
#ifndef KMS_KMSADM_H
#define KMS_KMSADM_H

#include <limits.h>
#include <stdbool.h>

#include "kms/config.h"
#include "kms/error.h"

/* Exit statuses. */
#define KMSADM_OK    0
#define KMSADM_FAIL  1 /* the command failed (the message says why) */
#define KMSADM_USAGE 2 /* bad command line */

struct kmsadm {
    struct kms_config cfg;
    char db_path[PATH_MAX + 16];
    int lock_fd;
    bool keystores_open;
    bool store_open;
};

/* ---- common.c ---- */

/* An error line on stderr: "kmsadm: ...". Returns KMSADM_FAIL. */
int kmsadm_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Takes the data directory's lock; fails with a clear message while kmsd (or kmsadm) holds it. */
int kmsadm_lock(struct kmsadm *a, const char *command);
/* Opens the keystores (the master key must exist unless create_master). */
int kmsadm_open_keystores(struct kmsadm *a, bool create_master);
/* Opens the database; must_exist refuses a missing one; migrate brings its schema up to date. */
int kmsadm_open_store(struct kmsadm *a, bool must_exist, bool migrate);
/* Closes whatever was opened and releases the lock. */
void kmsadm_close(struct kmsadm *a);
/* Prints an access key with its secret, which is shown only this once. */
void kmsadm_show_secret(const char *id, const char *secret);
/* Makes an access key (id NULL: a generated one; secret NULL: a generated one) — an admin key,
 * or one of the access point aap when it is not NULL — stores it and shows it. The store and
 * keystores must be open and the lock held. */
int kmsadm_access_key_create(struct kmsadm *a, const char *id, const char *secret,
                             const char *description, const char *aap);
/* Whether path exists. */
bool kmsadm_exists(const char *path);
/* fsync of the directory holding path, so a rename in it is durable. */
int kmsadm_sync_dir_of(const char *path);

/* ---- one function per command; argv[0] is the command's name ---- */
int kmsadm_cmd_init(struct kmsadm *a, int argc, char **argv);
int kmsadm_cmd_access_key(struct kmsadm *a, int argc, char **argv);
int kmsadm_cmd_backup(struct kmsadm *a, int argc, char **argv);
int kmsadm_cmd_restore(struct kmsadm *a, int argc, char **argv);
int kmsadm_cmd_verify(struct kmsadm *a, int argc, char **argv);
int kmsadm_cmd_rotate_master_key(struct kmsadm *a, int argc, char **argv);

#endif
