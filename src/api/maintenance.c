/*
 * maintenance.c - the background thread: flushes the replay cache to the store every 100 ms
 * and runs timed work (deleting keys past DeleteDate, expiring imported material, rotating
 * keys, deleting secrets past their recovery window) every maintenance interval.
 *
 * Timed work is idempotent and claims each row inside a write transaction before acting, so
 * it survives restarts and two nodes sharing one store could run it at once.
 */
#include <stdio.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "keystore/keystore.h"
#include "kms/auth.h"
#include "kms/clock.h"
#include "kms/log.h"
#include "kms/metrics.h"

#define KMS_FLUSH_INTERVAL_MS 100

static pthread_t kms_maint_thread;
static pthread_mutex_t kms_maint_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kms_maint_cond = PTHREAD_COND_INITIALIZER;
static bool kms_maint_running;
static bool kms_maint_stop;
static bool kms_maint_woken; /* kms_maintenance_wake() asked for a pass before its time */
static const struct kms_config *kms_maint_cfg;
/* One pass at a time: the thread and the test hook may both ask for one. */
static pthread_mutex_t kms_maint_pass_lock = PTHREAD_MUTEX_INITIALIZER;

/* Destroys a key whose DeleteDate has passed: its rows, then whatever a token holds. */
static kms_err kms_maint_delete_key(struct kms_call *call, const struct kms_key_record *k)
{
    struct kms_keystore *ks = kms_keystore_for(k->protection);
    char **versions = NULL;
    size_t count = 0;
    kms_err rc;

    rc = kms_store_version_list(call->db, k->key_id, 0, INT32_MAX, &versions, &count);
    if (rc == KMS_OK)
        rc = kms_store_versions_mark_destroyed(call->db, k->key_id, call->now);
    if (rc == KMS_OK)
        rc = kms_store_key_delete(call->db, k->key_id);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc != KMS_OK) {
        kms_store_free_list(versions, count);
        return rc;
    }
    kms_key_invalidate(k->key_id);
    for (size_t i = 0; i < count; i++) {
        struct kms_ks_ref ref = {k->key_id, versions[i], k->spec};

        kms_version_invalidate(versions[i]);
        /* After the commit: a crash here leaves an orphan token object, never a lost key. */
        if (ks != NULL && ks->ks_ops->ks_destroy(ks, &ref) != KMS_OK)
            kms_log_warn("maintenance: could not destroy keystore object of version %s",
                         versions[i]);
    }
    kms_store_free_list(versions, count);
    kms_log_info("maintenance: deleted key %s", k->key_id);
    return KMS_OK;
}

/* Imported material past its expiry is deleted, as DeleteKeyMaterial would. */
static kms_err kms_maint_expire_material(struct kms_call *call, struct kms_key_record *k)
{
    char **versions = NULL;
    size_t count = 0;
    kms_err rc = kms_store_version_list(call->db, k->key_id, 0, INT32_MAX, &versions, &count);

    for (size_t i = 0; rc == KMS_OK && i < count; i++)
        rc = kms_store_version_set_material(call->db, versions[i], NULL, 0);
    if (k->state == KMS_STATE_ENABLED || k->state == KMS_STATE_DISABLED)
        k->state = KMS_STATE_PENDING_IMPORT;
    k->material_expire_at = 0;
    if (rc == KMS_OK)
        rc = kms_store_key_update(call->db, k);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK) {
        kms_key_invalidate(k->key_id);
        for (size_t i = 0; i < count; i++)
            kms_version_invalidate(versions[i]);
        kms_log_info("maintenance: imported material of key %s expired", k->key_id);
    }
    kms_store_free_list(versions, count);
    return rc;
}

/*
 * Whether k is to rotate at now: an Enabled symmetric Aliyun_KMS key whose NextRotationDate has
 * come. Disabled and PendingDeletion keys are suspended (spec/key-states.md §6.1); once Enabled
 * again, a date that passed meanwhile makes them rotate on the next pass.
 */
static bool kms_maint_rotation_due(const struct kms_key_record *k, time_t now)
{
    const struct kms_key_spec_info *info = kms_key_spec_get(k->spec);

    return info != NULL && info->symmetric && k->origin == KMS_ORIGIN_KMS &&
           kms_key_effective_state(k, now) == KMS_STATE_ENABLED && k->rotation_interval > 0 &&
           k->next_rotation_at != 0 && k->next_rotation_at <= now;
}

/* Room for one more version under the quota; a full quota is logged and retried next pass. */
static kms_err kms_maint_version_room(struct kms_call *call, const char *key_id, bool *room)
{
    int64_t count = 0;
    kms_err rc = kms_store_version_count_all(call->db, &count);

    *room = rc == KMS_OK && count < call->cfg->max_key_versions;
    if (rc == KMS_OK && !*room)
        kms_log_warn("maintenance: key %s is due for rotation but the key version quota (%d) is "
                     "reached",
                     key_id, call->cfg->max_key_versions);
    return rc;
}

/* A new primary version for a key whose NextRotationDate has come. */
static kms_err kms_maint_rotate(struct kms_call *call, const char *key_id)
{
    struct kms_key_record k;
    struct kms_version_record v;
    bool room = false;
    kms_err rc;

    /* Material is made before taking the write lock (key generation may be slow), and only
     * for a key that looks due: the claim under the lock below decides. */
    rc = kms_store_key_get(call->db, key_id, &k);
    if (rc != KMS_OK)
        return rc == KMS_E_KEY_NOT_FOUND ? KMS_OK : rc;
    if (kms_maint_rotation_due(&k, call->now))
        rc = kms_maint_version_room(call, key_id, &room);
    if (rc != KMS_OK || !room) {
        kms_key_record_free(&k);
        return rc;
    }
    rc = kms_key_prepare_version(call, &k, &v);
    kms_key_record_free(&k);
    if (rc != KMS_OK)
        return rc;
    rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_store_key_get(call->db, key_id, &k);
    if (rc != KMS_OK) {
        kms_store_rollback(call->db);
        kms_version_record_free(&v);
        return rc == KMS_E_KEY_NOT_FOUND ? KMS_OK : rc;
    }
    /* Claimed under the lock: still due, still enabled (another pass may have rotated it). */
    room = false;
    if (kms_maint_rotation_due(&k, call->now))
        rc = kms_maint_version_room(call, key_id, &room);
    if (rc != KMS_OK || !room) {
        kms_store_rollback(call->db);
        kms_key_discard_version(&k, &v);
        goto out;
    }
    rc = kms_store_version_insert(call->db, &v);
    if (rc == KMS_OK) {
        memcpy(k.primary_version, v.version_id, sizeof(k.primary_version));
        k.last_rotation_at = call->now;
        k.next_rotation_at = call->now + k.rotation_interval;
        rc = kms_store_key_update(call->db, &k);
    }
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc != KMS_OK) {
        kms_store_rollback(call->db);
        kms_key_discard_version(&k, &v);
        goto out;
    }
    kms_key_invalidate(k.key_id);
    kms_log_info("maintenance: rotated key %s to version %s", k.key_id, v.version_id);
out:
    kms_key_record_free(&k);
    kms_version_record_free(&v);
    return rc;
}

static kms_err kms_maint_key(struct kms_call *call, const char *key_id)
{
    struct kms_key_record k;
    kms_err rc = kms_store_begin(call->db);

    if (rc != KMS_OK)
        return rc;
    rc = kms_store_key_get(call->db, key_id, &k);
    if (rc != KMS_OK) {
        kms_store_rollback(call->db);
        return rc == KMS_E_KEY_NOT_FOUND ? KMS_OK : rc;
    }
    if (k.state == KMS_STATE_PENDING_DELETION && k.delete_at <= call->now) {
        rc = kms_maint_delete_key(call, &k);
        kms_key_record_free(&k);
        return rc;
    }
    if (k.material_expire_at != 0 && k.material_expire_at <= call->now) {
        rc = kms_maint_expire_material(call, &k);
        kms_key_record_free(&k);
        return rc;
    }
    kms_store_rollback(call->db);
    kms_key_record_free(&k);
    return kms_maint_rotate(call, key_id);
}

kms_err kms_maintenance_run(time_t now)
{
    struct kms_call call;
    char **ids = NULL;
    size_t count = 0;
    kms_err rc, first = KMS_OK;

    memset(&call, 0, sizeof(call));
    call.cfg = kms_maint_cfg;
    call.now = now;
    call.db = kms_store_thread();
    if (call.db == NULL)
        return KMS_E_UNAVAILABLE;
    pthread_mutex_lock(&kms_maint_pass_lock);
    rc = kms_store_keys_due(call.db, now, &ids, &count);
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        kms_err one = kms_maint_key(&call, ids[i]);
        if (one != KMS_OK) {
            kms_log_warn("maintenance: key %s: %s (will retry)", ids[i], kms_err_info(one)->code);
            if (first == KMS_OK)
                first = one;
        }
    }
    kms_store_free_list(ids, count);
    if (rc == KMS_OK) {
        kms_err one = kms_secrets_sweep(&call);
        if (one != KMS_OK && first == KMS_OK)
            first = one;
    }
    if (rc == KMS_OK)
        rc = kms_store_nonces_purge(call.db, time(NULL));
    pthread_mutex_unlock(&kms_maint_pass_lock);
    kms_metrics_maintenance(rc == KMS_OK && first == KMS_OK);
    return rc != KMS_OK ? rc : first;
}

static void *kms_maint_main(void *arg)
{
    struct timespec next_pass, deadline;
    int64_t interval = kms_maint_cfg->maintenance_interval;

    clock_gettime(CLOCK_MONOTONIC, &next_pass);
    pthread_mutex_lock(&kms_maint_lock);
    while (!kms_maint_stop) {
        struct timespec now;
        bool woken = kms_maint_woken;

        kms_maint_woken = false;
        pthread_mutex_unlock(&kms_maint_lock);
        kms_auth_flush(false);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (woken || now.tv_sec >= next_pass.tv_sec) {
            kms_maintenance_run(kms_clock_now());
            next_pass.tv_sec = now.tv_sec + interval;
        }
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += KMS_FLUSH_INTERVAL_MS * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&kms_maint_lock);
        if (!kms_maint_stop)
            pthread_cond_timedwait(&kms_maint_cond, &kms_maint_lock, &deadline);
    }
    pthread_mutex_unlock(&kms_maint_lock);
    kms_store_thread_done();
    return NULL;
}

kms_err kms_maintenance_start(const struct kms_config *cfg)
{
    int err;

    kms_maint_cfg = cfg;
    kms_maint_stop = false;
    err = pthread_create(&kms_maint_thread, NULL, kms_maint_main, NULL);
    if (err != 0) {
        kms_log_error("maintenance: cannot start thread: %s", strerror(err));
        return KMS_E_INTERNAL;
    }
    kms_maint_running = true;
    return KMS_OK;
}

void kms_maintenance_wake(void)
{
    pthread_mutex_lock(&kms_maint_lock);
    kms_maint_woken = true;
    pthread_cond_signal(&kms_maint_cond);
    pthread_mutex_unlock(&kms_maint_lock);
}

void kms_maintenance_stop(void)
{
    if (!kms_maint_running)
        return;
    pthread_mutex_lock(&kms_maint_lock);
    kms_maint_stop = true;
    pthread_cond_signal(&kms_maint_cond);
    pthread_mutex_unlock(&kms_maint_lock);
    pthread_join(kms_maint_thread, NULL);
    kms_maint_running = false;
    /* Whatever the last interval recorded reaches the store before we exit. */
    kms_auth_flush(true);
}
