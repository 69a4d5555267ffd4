/*
 * daemon.c - the data directory's lock and service-manager notifications (daemon.h).
 *
 * The lock is flock(2) on a file of its own: SQLite's locks cannot say "a kmsd is serving from
 * caches", and a lock on a descriptor dies with the process, so a crash never leaves a stale
 * lock behind. The holder's pid is written into the file for operators; nothing reads it back.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#ifdef KMS_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "kms/daemon.h"
#include "kms/log.h"

kms_err kms_datadir_lock(const char *data_dir, int *fd_out, bool *busy)
{
    char path[PATH_MAX], pid[32];
    int fd, n;

    *busy = false;
    *fd_out = -1;
    n = snprintf(path, sizeof(path), "%s/%s", data_dir, KMS_LOCK_FILE);
    if (n < 0 || (size_t)n >= sizeof(path))
        return KMS_E_INTERNAL;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        kms_log_error("cannot open the lock file %s: %s", path, strerror(errno));
        return KMS_E_INTERNAL;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;

        close(fd);
        if (err == EWOULDBLOCK) {
            *busy = true;
            return KMS_E_UNAVAILABLE;
        }
        kms_log_error("cannot lock %s: %s", path, strerror(err));
        return KMS_E_INTERNAL;
    }
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        kms_log_warn("could not write the pid into %s", path);
    *fd_out = fd;
    return KMS_OK;
}

void kms_datadir_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* closing the last descriptor releases the flock */
}

void kms_notify(const char *state)
{
#ifdef KMS_HAVE_SYSTEMD
    int rc = sd_notify(0, state);

    if (rc < 0)
        kms_log_warn("systemd: sd_notify(%s) failed: %s", state, strerror(-rc));
#else
    (void)state;
#endif
}
