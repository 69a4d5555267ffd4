/*
 * harden.h - process hardening at start (no core dumps, not dumpable, memory locking, file
 * descriptor limit), the modes of the files kmsd keeps, and locked, never-dumped pages for the
 * few long-lived secrets (docs/security.md §18-19).
 */
#ifndef KMS_HARDEN_H
#define KMS_HARDEN_H

#include <stddef.h>

#include "kms/config.h"
#include "kms/error.h"

/*
 * Called first thing in main, before any secret is read: RLIMIT_CORE 0 and PR_SET_DUMPABLE 0
 * (no core file, no ptrace or /proc/<pid>/mem by other processes of the same user), and the
 * soft RLIMIT_NOFILE raised towards what max_connections needs. Logs a warning for what the
 * system refuses; KMS_E_INTERNAL only when kmsd cannot make itself non-dumpable.
 */
kms_err kms_harden_process(const struct kms_config *cfg);

/*
 * With lock_memory = true: mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT), so no page of the
 * process (hence no secret) is ever swapped out. KMS_E_INTERNAL (logged, with the fix) when the
 * system refuses; KMS_OK without doing anything when lock_memory is false.
 */
kms_err kms_harden_lock_memory(const struct kms_config *cfg);

/*
 * The files of the data directory are kmsd's own: the directory itself (and tls/) must be 0700,
 * kmsd.db, its -wal and -shm 0600, all owned by kmsd's user. A mode that is too open is fixed
 * with a warning; a wrong owner, a wrong file type or a chmod that fails refuses the start.
 * The TLS private key (when TLS is on) may be shared with a group for reading (Debian's
 * ssl-cert convention: a warning) but never be writable by the group or accessible to others
 * (refused). The master key file is checked where it is read (master_file.c).
 * Returns KMS_E_INTERNAL after logging one line that says what is wrong and how to fix it.
 */
kms_err kms_harden_check_files(const struct kms_config *cfg);

/* The checks kms_harden_check_files applies, one path at a time (unit tests use them too). */
kms_err kms_harden_private_dir(const char *path);
kms_err kms_harden_private_file(const char *path); /* an absent file is fine */
kms_err kms_harden_key_file(const char *path, const char *what);

/*
 * Overwrites the value of an environment variable in place, then removes it: a secret handed
 * over in the environment (KMSD_ADMIN_ACCESS_KEY_SECRET) is not left in the process's
 * environment block, which is also what /proc/<pid>/environ shows.
 */
void kms_harden_scrub_env(const char *name);

/*
 * size bytes of zeroed memory on pages of their own, locked (mlock, where RLIMIT_MEMLOCK
 * allows; a warning otherwise) and excluded from core dumps (MADV_DONTDUMP). For long-lived
 * secrets such as the master key. NULL when out of memory. Free with kms_secure_free.
 */
void *kms_secure_alloc(size_t size);
/* Wipes, unlocks and unmaps what kms_secure_alloc returned (size: as allocated). */
void kms_secure_free(void *p, size_t size);

#endif
