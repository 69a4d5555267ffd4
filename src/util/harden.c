/*
 * harden.c - what kmsd does to itself at start so that its secrets stay in the process: no core
 * dumps and no ptrace by other processes of the same user (PR_SET_DUMPABLE 0), optionally no
 * swapping (mlockall), private modes on the files it keeps, and locked pages excluded from core
 * dumps for the master key. docs/security.md §18-19 says why each choice was made.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "kms/harden.h"
#include "kms/log.h"

/* Descriptors kmsd needs besides its connections: database, WAL, logs, TLS files, epoll. */
#define KMS_HARDEN_SPARE_FDS 256

static void kms_harden_nofile(const struct kms_config *cfg)
{
    rlim_t want = (rlim_t)cfg->max_connections + KMS_HARDEN_SPARE_FDS;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        kms_log_warn("limits: max_connections = %d needs about %llu file descriptors but the "
                     "hard limit is %llu; connections beyond it will be refused (raise "
                     "LimitNOFILE / ulimit -Hn, or lower max_connections)",
                     cfg->max_connections, (unsigned long long)want,
                     (unsigned long long)rl.rlim_max);
        want = rl.rlim_max;
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        kms_log_warn("limits: cannot raise the file descriptor limit: %s", strerror(errno));
}

kms_err kms_harden_process(const struct kms_config *cfg)
{
    struct rlimit none = {0, 0};

    /*
     * No core file: RLIMIT_CORE 0 stops the kernel writing one, PR_SET_DUMPABLE 0 also stops
     * core_pattern pipe handlers (which ignore RLIMIT_CORE) unless fs.suid_dumpable = 2, and it
     * makes /proc/<pid>/mem, environ, maps and ptrace root-only. It survives fork, not exec.
     */
    if (setrlimit(RLIMIT_CORE, &none) != 0)
        kms_log_warn("harden: cannot disable core dumps (RLIMIT_CORE): %s", strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) {
        kms_log_error("harden: cannot make the process non-dumpable: %s", strerror(errno));
        return KMS_E_INTERNAL;
    }
    kms_harden_nofile(cfg);
    return KMS_OK;
}

kms_err kms_harden_lock_memory(const struct kms_config *cfg)
{
    int flags = MCL_CURRENT | MCL_FUTURE;

    if (!cfg->lock_memory)
        return KMS_OK;
#ifdef MCL_ONFAULT
    /* Lock pages as they are touched, not every reserved byte (thread stacks, pools). */
    flags |= MCL_ONFAULT;
#endif
    if (mlockall(flags) != 0) {
        kms_log_error("harden: lock_memory = true but the memory cannot be locked (%s): raise "
                      "RLIMIT_MEMLOCK (systemd: LimitMEMLOCK=infinity) or grant CAP_IPC_LOCK",
                      strerror(errno));
        return KMS_E_INTERNAL;
    }
    kms_log_info("harden: all memory locked (lock_memory): nothing is swapped out");
    return KMS_OK;
}

/* Common to the data directory and its files: exists? ours? returns 1 if absent. */
static int kms_harden_stat(const char *path, struct stat *st, bool absent_ok)
{
    /* Followed, like SQLite follows them: the target's owner and mode are what matter. */
    if (stat(path, st) != 0) {
        if (errno == ENOENT && absent_ok)
            return 1;
        kms_log_error("harden: cannot check %s: %s", path, strerror(errno));
        return -1;
    }
    if (st->st_uid != geteuid()) {
        kms_log_error("harden: %s belongs to uid %u, not to kmsd's user (uid %u): chown it", path,
                      (unsigned)st->st_uid, (unsigned)geteuid());
        return -1;
    }
    return 0;
}

/* Makes an own file or directory private (mode & 0700), saying so when it was not. */
static kms_err kms_harden_make_private(const char *path, const struct stat *st, const char *what)
{
    mode_t mode = st->st_mode & 07777;

    if ((mode & 077) == 0)
        return KMS_OK;
    if (chmod(path, mode & 0700) != 0) {
        kms_log_error("harden: %s %s is accessible by group or others (mode %04o) and cannot be "
                      "made private: %s",
                      what, path, (unsigned)mode, strerror(errno));
        return KMS_E_INTERNAL;
    }
    kms_log_warn("harden: %s %s was accessible by group or others (mode %04o); changed to %04o",
                 what, path, (unsigned)mode, (unsigned)(mode & 0700));
    return KMS_OK;
}

kms_err kms_harden_private_dir(const char *path)
{
    struct stat st;
    int rc = kms_harden_stat(path, &st, false);

    if (rc != 0)
        return KMS_E_INTERNAL;
    if (!S_ISDIR(st.st_mode)) {
        kms_log_error("harden: %s is not a directory", path);
        return KMS_E_INTERNAL;
    }
    return kms_harden_make_private(path, &st, "directory");
}

kms_err kms_harden_private_file(const char *path)
{
    struct stat st;
    int rc = kms_harden_stat(path, &st, true);

    if (rc < 0)
        return KMS_E_INTERNAL;
    if (rc > 0)
        return KMS_OK;
    if (!S_ISREG(st.st_mode)) {
        kms_log_error("harden: %s is not a regular file", path);
        return KMS_E_INTERNAL;
    }
    return kms_harden_make_private(path, &st, "file");
}

kms_err kms_harden_key_file(const char *path, const char *what)
{
    struct stat st;

    /* Followed: keys are often links into /etc/ssl or a certificate manager's directory. */
    if (stat(path, &st) != 0) {
        kms_log_error("harden: cannot check %s %s: %s", what, path, strerror(errno));
        return KMS_E_INTERNAL;
    }
    if (!S_ISREG(st.st_mode)) {
        kms_log_error("harden: %s %s is not a regular file", what, path);
        return KMS_E_INTERNAL;
    }
    if ((st.st_mode & 0027) != 0) {
        kms_log_error("harden: %s %s is accessible by others or writable by its group (mode "
                      "%04o): chmod 600 it (or 640 to share it with a group) and replace the key "
                      "if others could read it",
                      what, path, (unsigned)(st.st_mode & 07777));
        return KMS_E_INTERNAL;
    }
    if ((st.st_mode & 0040) != 0)
        kms_log_warn("harden: %s %s is readable by its group (mode %04o)", what, path,
                     (unsigned)(st.st_mode & 07777));
    return KMS_OK;
}

kms_err kms_harden_check_files(const struct kms_config *cfg)
{
    static const char *const own_files[] = {"kmsd.db", "kmsd.db-wal", "kmsd.db-shm"};
    char path[PATH_MAX + 32];
    struct stat st;

    if (kms_harden_private_dir(cfg->data_dir) != KMS_OK)
        return KMS_E_INTERNAL;
    snprintf(path, sizeof(path), "%s/tls", cfg->data_dir);
    if (stat(path, &st) == 0 && kms_harden_private_dir(path) != KMS_OK)
        return KMS_E_INTERNAL;
    for (size_t i = 0; i < sizeof(own_files) / sizeof(own_files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, own_files[i]);
        if (kms_harden_private_file(path) != KMS_OK)
            return KMS_E_INTERNAL;
    }
    if (kms_config_uses_tls(cfg) && kms_harden_key_file(cfg->tls_key_file, "TLS key") != KMS_OK)
        return KMS_E_INTERNAL;
    return KMS_OK;
}

void kms_harden_scrub_env(const char *name)
{
    char *value = getenv(name);

    if (value != NULL)
        OPENSSL_cleanse(value, strlen(value));
    unsetenv(name);
}

/* kms_secure_alloc's mapping: whole pages, so that madvise and mlock cover nothing else. */
static size_t kms_secure_span(size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t p = page > 0 ? (size_t)page : 4096;

    return (size + p - 1) / p * p;
}

void *kms_secure_alloc(size_t size)
{
    static int warned;
    size_t span = kms_secure_span(size);
    void *p;

    if (size == 0)
        return NULL;
    p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    /* Anonymous pages are zeroed. Neither call can fail on a fresh private mapping but for
     * the lock limit; without the lock the pages can reach swap, which is worth a warning. */
    madvise(p, span, MADV_DONTDUMP);
    if (mlock(p, span) != 0 && !__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
        kms_log_warn("harden: cannot lock %zu bytes of secret memory (%s): it may be swapped "
                     "out; raise RLIMIT_MEMLOCK (systemd: LimitMEMLOCK)",
                     span, strerror(errno));
    return p;
}

void kms_secure_free(void *p, size_t size)
{
    size_t span = kms_secure_span(size);

    if (p == NULL)
        return;
    OPENSSL_cleanse(p, span);
    munlock(p, span);
    munmap(p, span);
}
