/*
 * daemon.h - running as a service: the data directory's lock, which keeps a second kmsd (or a
 * kmsadm command that changes data) away while kmsd serves from its caches, and notifications to
 * the service manager (systemd's sd_notify; nothing when kmsd runs without one).
 */
#ifndef KMS_DAEMON_H
#define KMS_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "kms/error.h"

#define KMS_LOCK_FILE "kmsd.lock"

/*
 * Takes the exclusive lock <data_dir>/kmsd.lock (flock, created 0600), held until
 * kms_datadir_unlock or the process ends. *fd_out gets the descriptor. When another process
 * holds it: *busy is set and KMS_E_UNAVAILABLE returned (nothing logged: callers word it);
 * other failures are logged and KMS_E_INTERNAL returned.
 */
kms_err kms_datadir_lock(const char *data_dir, int *fd_out, bool *busy);
void kms_datadir_unlock(int fd);

/*
 * Sends one state line to the service manager ("READY=1", "STOPPING=1", "RELOADING=1",
 * "STATUS=..."); does nothing unless NOTIFY_SOCKET is set and libsystemd was found at build.
 */
void kms_notify(const char *state);

/* ---- api/master_check.c: does this master key open this database? ---- */

#define KMS_MASTER_CHECK_META "master_key_check"

struct kms_db;
struct kms_buf;

/*
 * Checks the database's check value against the open master key: KMS_OK when it opens,
 * KMS_E_INVALID_PARAMETER when it was sealed under another key, KMS_E_RESOURCE_NOT_FOUND when
 * there is none yet (with create, one is made and committed instead).
 */
kms_err kms_master_check(struct kms_db *db, bool create);
/* A fresh check value sealed under the open master key (appended to sealed). */
kms_err kms_master_check_make(struct kms_buf *sealed);
/* The AAD the check value is sealed with (for re-sealing it under a new master key). */
const char *kms_master_check_aad(size_t *len);

#endif
