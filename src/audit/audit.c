/*
 * audit.c - the audit log (audit.h): requests format their record on their own thread and
 * append it to a bounded in-memory queue; one writer thread swaps the queue out and writes it
 * with one write(2), at least every second (sooner once KMS_AUDIT_WAKE_BYTES are waiting), and
 * fdatasyncs the file at most once a second and at stop. So a request pays for formatting and a
 * memcpy under a mutex, never for the disk.
 *
 * A full queue (the disk stalls, or a burst outruns it) makes a request wait up to [audit]
 * block_ms for room: a KMS would rather slow down than lose audit records. Past that wait the
 * record is dropped, counted (kmsd_audit_dropped_total) and a warning logged at most every
 * KMS_AUDIT_WARN_INTERVAL seconds; and until the writer takes the queue again, further records
 * that find it full are dropped at once rather than each waiting, so a dead disk costs the
 * service one wait, not one per request.
 *
 * Rotation: SIGHUP asks the writer to reopen the path, after writing what is queued. With
 * logrotate's default (rename, then signal) records never go missing: until the reopen they land
 * in the renamed file. The file is opened O_APPEND, so copytruncate works too.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kms/audit.h"
#include "kms/config.h"
#include "kms/log.h"
#include "kms/render.h"
#include "kms/util.h"

#define KMS_AUDIT_WAKE_BYTES    (64 * 1024) /* queued bytes that wake the writer early */
#define KMS_AUDIT_FLUSH_MS      1000        /* the writer writes at least this often */
#define KMS_AUDIT_WARN_INTERVAL 10          /* seconds between warnings about lost records */
#define KMS_AUDIT_ACTION_MAX    64          /* an unknown Action is clipped to this many bytes */
#define KMS_AUDIT_LINE_GUESS    512         /* bytes of a typical record, with room to spare */
#define KMS_AUDIT_TIME_LEN      64          /* "YYYY-MM-DDThh:mm:ss.mmmZ" and room */

struct kms_audit_queue {
    char *aq_data;
    size_t aq_len;
    uint64_t aq_records;
};

struct kms_audit_state {
    pthread_mutex_t au_mu;
    pthread_cond_t au_wake; /* the writer: enough queued, reopen, stop */
    pthread_cond_t au_room; /* producers: the writer took the queue */
    struct kms_audit_queue au_active;
    struct kms_audit_queue au_spare;
    size_t au_cap;
    int au_block_ms;
    bool au_stop;
    bool au_reopen;
    bool au_woken;   /* a producer already signalled au_wake for this queue */
    bool au_stalled; /* a wait for room timed out: drop at once until the writer moves again */
    pthread_t au_thread;
    int au_fd;
    char au_path[PATH_MAX];
    atomic_bool au_running;
    atomic_uint_fast64_t au_written;
    atomic_uint_fast64_t au_dropped;
    atomic_llong au_last_warn;
};

static struct kms_audit_state kms_audit = {
    .au_mu = PTHREAD_MUTEX_INITIALIZER,
    .au_wake = PTHREAD_COND_INITIALIZER,
    .au_room = PTHREAD_COND_INITIALIZER,
    .au_fd = -1,
};

static void kms_audit_deadline(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* A warning about lost records, at most every KMS_AUDIT_WARN_INTERVAL seconds. */
static void kms_audit_warn_lost(const char *why)
{
    long long now = (long long)time(NULL);
    long long last = atomic_load(&kms_audit.au_last_warn);

    if (now - last < KMS_AUDIT_WARN_INTERVAL ||
        !atomic_compare_exchange_strong(&kms_audit.au_last_warn, &last, now))
        return;
    kms_log_warn("audit: records are being lost (%s); %llu lost so far", why,
                 (unsigned long long)atomic_load(&kms_audit.au_dropped));
}

static int kms_audit_open_file(const char *path)
{
    struct stat st;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
        kms_log_warn("audit: %s is readable by group or others (mode %03o)", path,
                     (unsigned)(st.st_mode & 0777));
    return fd;
}

/* Writes the whole queue; false when the file refused it. */
static bool kms_audit_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void kms_audit_reopen_now(void)
{
    int fd = kms_audit_open_file(kms_audit.au_path);

    if (fd < 0) {
        kms_log_warn("audit: cannot reopen %s (%s); still writing to the previous file",
                     kms_audit.au_path, strerror(errno));
        return;
    }
    if (kms_audit.au_fd >= 0) {
        fdatasync(kms_audit.au_fd);
        close(kms_audit.au_fd);
    }
    kms_audit.au_fd = fd;
    kms_log_info("audit: reopened %s", kms_audit.au_path);
}

/* Writes one swapped-out queue; counts its records as written or lost. */
static void kms_audit_flush_queue(struct kms_audit_queue *q, bool *dirty)
{
    if (q->aq_len == 0)
        return;
    if (kms_audit.au_fd >= 0 && kms_audit_write_all(kms_audit.au_fd, q->aq_data, q->aq_len)) {
        atomic_fetch_add(&kms_audit.au_written, q->aq_records);
        *dirty = true;
    } else {
        atomic_fetch_add(&kms_audit.au_dropped, q->aq_records);
        kms_audit_warn_lost(strerror(errno));
    }
    q->aq_len = 0;
    q->aq_records = 0;
}

static void *kms_audit_main(void *arg)
{
    struct timespec deadline, now, last_sync = {0, 0};
    bool dirty = false;

    (void)arg;
    pthread_mutex_lock(&kms_audit.au_mu);
    for (;;) {
        struct kms_audit_queue taken;
        bool reopen, stop;

        kms_audit_deadline(&deadline, KMS_AUDIT_FLUSH_MS);
        while (!kms_audit.au_stop && !kms_audit.au_reopen &&
               kms_audit.au_active.aq_len < KMS_AUDIT_WAKE_BYTES) {
            if (pthread_cond_timedwait(&kms_audit.au_wake, &kms_audit.au_mu, &deadline) ==
                ETIMEDOUT)
                break;
        }
        /* Take the queue: producers fill the empty spare while we write. */
        taken = kms_audit.au_active;
        kms_audit.au_active = kms_audit.au_spare;
        kms_audit.au_woken = false;
        kms_audit.au_stalled = false;
        reopen = kms_audit.au_reopen;
        stop = kms_audit.au_stop;
        kms_audit.au_reopen = false;
        pthread_cond_broadcast(&kms_audit.au_room);
        pthread_mutex_unlock(&kms_audit.au_mu);

        kms_audit_flush_queue(&taken, &dirty);
        if (reopen)
            kms_audit_reopen_now();
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (dirty && (stop || now.tv_sec > last_sync.tv_sec)) {
            if (kms_audit.au_fd >= 0)
                fdatasync(kms_audit.au_fd);
            last_sync = now;
            dirty = false;
        }

        pthread_mutex_lock(&kms_audit.au_mu);
        kms_audit.au_spare = taken;
        if (stop && kms_audit.au_active.aq_len == 0)
            break;
    }
    pthread_mutex_unlock(&kms_audit.au_mu);
    return NULL;
}

kms_err kms_audit_start(const struct kms_config *cfg)
{
    int err;

    if (!cfg->audit_enabled) {
        kms_log_info("audit: off ([audit] enabled = false)");
        return KMS_OK;
    }
    snprintf(kms_audit.au_path, sizeof(kms_audit.au_path), "%s", cfg->audit_file);
    kms_audit.au_fd = kms_audit_open_file(kms_audit.au_path);
    if (kms_audit.au_fd < 0) {
        kms_log_error("audit: cannot open %s: %s", kms_audit.au_path, strerror(errno));
        return KMS_E_INTERNAL;
    }
    /* Counts are since this start (kmsd starts the writer once; tests more often). */
    atomic_store(&kms_audit.au_written, 0);
    atomic_store(&kms_audit.au_dropped, 0);
    kms_audit.au_cap = cfg->audit_queue_bytes;
    kms_audit.au_block_ms = cfg->audit_block_ms;
    kms_audit.au_active.aq_data = malloc(kms_audit.au_cap);
    kms_audit.au_spare.aq_data = malloc(kms_audit.au_cap);
    kms_audit.au_stop = false;
    if (kms_audit.au_active.aq_data == NULL || kms_audit.au_spare.aq_data == NULL) {
        err = ENOMEM;
        goto fail;
    }
    err = pthread_create(&kms_audit.au_thread, NULL, kms_audit_main, NULL);
    if (err != 0)
        goto fail;
    atomic_store(&kms_audit.au_running, true);
    return KMS_OK;
fail:
    kms_log_error("audit: cannot start the writer: %s", strerror(err));
    free(kms_audit.au_active.aq_data);
    free(kms_audit.au_spare.aq_data);
    kms_audit.au_active.aq_data = kms_audit.au_spare.aq_data = NULL;
    close(kms_audit.au_fd);
    kms_audit.au_fd = -1;
    return KMS_E_INTERNAL;
}

/* Appends the member's key, given with its quotes and colon ("\"Time\":"), and the value. */
static kms_err kms_audit_member(struct kms_buf *b, const char *key, const char *value, size_t max)
{
    size_t len = value ? strlen(value) : 0;
    kms_err rc = kms_buf_append_str(b, key);

    if (rc == KMS_OK)
        rc = kms_render_json_string(b, value ? value : "", len < max ? len : max);
    return rc;
}

/*
 * "YYYY-MM-DDThh:mm:ss.mmmZ" of t. The part up to the seconds is remembered per thread: under
 * load most records of a thread fall in the second of its previous one.
 */
static void kms_audit_time(const struct timespec *t, char out[KMS_AUDIT_TIME_LEN])
{
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[KMS_AUDIT_TIME_LEN];
    long ms = t->tv_nsec / 1000000L;

    if (t->tv_sec != cached_sec) {
        struct tm tm;

        gmtime_r(&t->tv_sec, &tm);
        /* Years past 9999 do not fit the wire format; they do not happen either. */
        if (snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec) != 20)
            memcpy(cached, "9999-12-31T23:59:59.", 21);
        cached_sec = t->tv_sec;
    }
    memcpy(out, cached, 20);
    out[20] = (char)('0' + ms / 100);
    out[21] = (char)('0' + ms / 10 % 10);
    out[22] = (char)('0' + ms % 10);
    out[23] = 'Z';
    out[24] = '\0';
}

static kms_err kms_audit_format(const struct kms_audit_record *r, struct kms_buf *b)
{
    char when[KMS_AUDIT_TIME_LEN];
    char tail[64];
    int n;
    kms_err rc;

    kms_audit_time(&r->ar_time, when);
    rc = kms_audit_member(b, "{\"Time\":", when, SIZE_MAX);
    if (rc == KMS_OK)
        rc = kms_audit_member(b, ",\"RequestId\":", r->ar_request_id, SIZE_MAX);
    if (rc == KMS_OK)
        rc = kms_audit_member(b, ",\"AccessKeyId\":", r->ar_access_key_id, SIZE_MAX);
    if (rc == KMS_OK)
        rc = kms_audit_member(b, ",\"Principal\":", r->ar_principal, SIZE_MAX);
    if (rc == KMS_OK)
        rc = kms_audit_member(b, ",\"SourceIp\":", r->ar_source_ip, SIZE_MAX);
    if (rc == KMS_OK)
        rc = kms_audit_member(b, ",\"Action\":", r->ar_action, KMS_AUDIT_ACTION_MAX);
    if (rc == KMS_OK)
        rc = kms_audit_member(b, ",\"Resource\":", r->ar_resource, SIZE_MAX);
    if (rc == KMS_OK)
        rc = kms_audit_member(b, ",\"Code\":", r->ar_code, SIZE_MAX);
    n = snprintf(tail, sizeof(tail), ",\"HttpStatus\":%d,\"LatencyUs\":%llu}\n", r->ar_http_status,
                 (unsigned long long)r->ar_latency_us);
    if (rc == KMS_OK)
        rc =
            n > 0 && (size_t)n < sizeof(tail) ? kms_buf_append(b, tail, (size_t)n) : KMS_E_INTERNAL;
    return rc;
}

void kms_audit_request(const struct kms_audit_record *r)
{
    struct kms_buf line = {0};
    struct timespec deadline;
    bool waited = false, lost = false;

    if (!atomic_load_explicit(&kms_audit.au_running, memory_order_acquire))
        return;
    /* One allocation that fits a typical record, rather than the buffer growing in steps. */
    if (kms_buf_reserve(&line, KMS_AUDIT_LINE_GUESS) != KMS_OK ||
        kms_audit_format(r, &line) != KMS_OK) {
        atomic_fetch_add(&kms_audit.au_dropped, 1);
        kms_audit_warn_lost("out of memory");
        kms_buf_free(&line);
        return;
    }
    pthread_mutex_lock(&kms_audit.au_mu);
    while (kms_audit.au_active.aq_len + line.len > kms_audit.au_cap && !kms_audit.au_stop &&
           kms_audit.au_block_ms > 0 && !kms_audit.au_stalled) {
        if (!waited) {
            kms_audit_deadline(&deadline, kms_audit.au_block_ms);
            waited = true;
            pthread_cond_signal(&kms_audit.au_wake);
        }
        if (pthread_cond_timedwait(&kms_audit.au_room, &kms_audit.au_mu, &deadline) == ETIMEDOUT) {
            /* The writer is stuck: later requests drop at once instead of each waiting. */
            kms_audit.au_stalled = true;
            break;
        }
    }
    if (kms_audit.au_active.aq_len + line.len > kms_audit.au_cap) {
        lost = true;
    } else {
        memcpy(kms_audit.au_active.aq_data + kms_audit.au_active.aq_len, line.data, line.len);
        kms_audit.au_active.aq_len += line.len;
        kms_audit.au_active.aq_records++;
        if (kms_audit.au_active.aq_len >= KMS_AUDIT_WAKE_BYTES && !kms_audit.au_woken) {
            kms_audit.au_woken = true;
            pthread_cond_signal(&kms_audit.au_wake);
        }
    }
    pthread_mutex_unlock(&kms_audit.au_mu);
    if (lost) {
        atomic_fetch_add(&kms_audit.au_dropped, 1);
        kms_audit_warn_lost("the queue is full");
    }
    kms_buf_free(&line);
}

void kms_audit_reopen(void)
{
    if (!atomic_load(&kms_audit.au_running))
        return;
    pthread_mutex_lock(&kms_audit.au_mu);
    kms_audit.au_reopen = true;
    pthread_cond_signal(&kms_audit.au_wake);
    pthread_mutex_unlock(&kms_audit.au_mu);
}

void kms_audit_stop(void)
{
    if (!atomic_load(&kms_audit.au_running))
        return;
    pthread_mutex_lock(&kms_audit.au_mu);
    kms_audit.au_stop = true;
    pthread_cond_signal(&kms_audit.au_wake);
    pthread_mutex_unlock(&kms_audit.au_mu);
    pthread_join(kms_audit.au_thread, NULL);
    atomic_store(&kms_audit.au_running, false);
    if (kms_audit.au_fd >= 0) {
        fdatasync(kms_audit.au_fd);
        close(kms_audit.au_fd);
        kms_audit.au_fd = -1;
    }
    free(kms_audit.au_active.aq_data);
    free(kms_audit.au_spare.aq_data);
    memset(&kms_audit.au_active, 0, sizeof(kms_audit.au_active));
    memset(&kms_audit.au_spare, 0, sizeof(kms_audit.au_spare));
}

void kms_audit_stats(struct kms_audit_stats *out)
{
    out->as_written = atomic_load(&kms_audit.au_written);
    out->as_dropped = atomic_load(&kms_audit.au_dropped);
    pthread_mutex_lock(&kms_audit.au_mu);
    out->as_queued_bytes = kms_audit.au_active.aq_len;
    pthread_mutex_unlock(&kms_audit.au_mu);
}
