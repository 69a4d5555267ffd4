/*
 * metrics.c - request counters and latency histograms kept per worker thread, and the
 * Prometheus text exposition that adds them up with the gauges read at scrape time (metrics.h).
 *
 * Each thread that answers requests gets a block of counters of its own on first use, linked
 * into a global list. Only that thread writes its block (a relaxed load and store: no locked
 * instruction, no cache line shared between workers); a scrape reads every block with relaxed
 * loads, so it may miss a request still being counted, never corrupt one. Blocks live until
 * kms_metrics_shutdown: a thread that exits keeps its counts.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kms/audit.h"
#include "kms/auth.h"
#include "kms/clock.h"
#include "kms/keyspec.h"
#include "kms/log.h"
#include "kms/metrics.h"
#include "kms/store.h"

/* Histogram bucket upper bounds, in microseconds: 100 µs (a cached Encrypt) to 2.5 s. */
static const uint64_t kms_metrics_bounds_us[] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};
#define KMS_METRICS_BUCKETS (sizeof(kms_metrics_bounds_us) / sizeof(kms_metrics_bounds_us[0]))
/* Per action: one counter per kms_err, the buckets and +Inf, the latency sum (µs). */
#define KMS_METRICS_CELLS   (KMS_E_COUNT + KMS_METRICS_BUCKETS + 1 + 1)
#define KMS_METRICS_BUCKET0 KMS_E_COUNT
#define KMS_METRICS_SUM     (KMS_E_COUNT + KMS_METRICS_BUCKETS + 1)
#define KMS_METRICS_UNKNOWN "(none)" /* label of requests that named no known Action */

struct kms_metrics_block {
    struct kms_metrics_block *mb_next;
    atomic_uint_fast64_t mb_cells[]; /* slots * KMS_METRICS_CELLS */
};

static pthread_mutex_t kms_metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kms_metrics_block *kms_metrics_blocks;
static _Thread_local struct kms_metrics_block *kms_metrics_mine;
/* Bumped by every init, so a thread never writes into a block of an earlier life (tests). */
static atomic_uint kms_metrics_generation;
static _Thread_local unsigned kms_metrics_mine_generation;
static const char *const *kms_metrics_names;
static size_t kms_metrics_slots; /* actions + 1 for "(none)" */
static time_t kms_metrics_started;
/* The first kms_err with the same wire Code (IllegalTimestamp has three): one series per Code. */
static int kms_metrics_code_of[KMS_E_COUNT];
static atomic_uint_fast64_t kms_metrics_maint_runs;
static atomic_uint_fast64_t kms_metrics_maint_failures;
static atomic_uint_fast64_t kms_metrics_tls_ok;
static atomic_uint_fast64_t kms_metrics_tls_failed;

kms_err kms_metrics_init(const char *const *names, size_t count)
{
    for (int i = 0; i < KMS_E_COUNT; i++) {
        kms_metrics_code_of[i] = i;
        for (int j = 0; j < i; j++) {
            if (strcmp(kms_err_info((kms_err)i)->code, kms_err_info((kms_err)j)->code) == 0) {
                kms_metrics_code_of[i] = j;
                break;
            }
        }
    }
    kms_metrics_names = names;
    kms_metrics_slots = count + 1;
    atomic_fetch_add(&kms_metrics_generation, 1);
    kms_metrics_started = time(NULL);
    return KMS_OK;
}

void kms_metrics_shutdown(void)
{
    pthread_mutex_lock(&kms_metrics_lock);
    while (kms_metrics_blocks != NULL) {
        struct kms_metrics_block *b = kms_metrics_blocks;

        kms_metrics_blocks = b->mb_next;
        free(b);
    }
    kms_metrics_slots = 0;
    pthread_mutex_unlock(&kms_metrics_lock);
    kms_metrics_mine = NULL;
}

/* This thread's block, made on first use; NULL when memory runs out (the request goes uncounted).
 */
static struct kms_metrics_block *kms_metrics_block(void)
{
    unsigned generation = atomic_load_explicit(&kms_metrics_generation, memory_order_relaxed);
    struct kms_metrics_block *b = kms_metrics_mine;

    if (b != NULL && kms_metrics_mine_generation == generation)
        return b;
    if (kms_metrics_slots == 0)
        return NULL;
    b = calloc(1, sizeof(*b) + kms_metrics_slots * KMS_METRICS_CELLS * sizeof(b->mb_cells[0]));
    if (b == NULL)
        return NULL;
    pthread_mutex_lock(&kms_metrics_lock);
    b->mb_next = kms_metrics_blocks;
    kms_metrics_blocks = b;
    pthread_mutex_unlock(&kms_metrics_lock);
    kms_metrics_mine = b;
    kms_metrics_mine_generation = generation;
    return b;
}

/* Only the owning thread writes a cell, so load + store cannot lose an increment. */
static inline void kms_metrics_add(atomic_uint_fast64_t *cell, uint64_t n)
{
    atomic_store_explicit(cell, atomic_load_explicit(cell, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

void kms_metrics_request(int action, kms_err rc, uint64_t latency_us)
{
    struct kms_metrics_block *b = kms_metrics_block();
    atomic_uint_fast64_t *cells;
    size_t slot, bucket = 0;

    if (b == NULL)
        return;
    slot = action >= 0 && (size_t)action < kms_metrics_slots - 1 ? (size_t)action
                                                                 : kms_metrics_slots - 1;
    if ((int)rc < 0 || rc >= KMS_E_COUNT)
        rc = KMS_E_INTERNAL;
    while (bucket < KMS_METRICS_BUCKETS && latency_us > kms_metrics_bounds_us[bucket])
        bucket++;
    cells = &b->mb_cells[slot * KMS_METRICS_CELLS];
    kms_metrics_add(&cells[rc], 1);
    kms_metrics_add(&cells[KMS_METRICS_BUCKET0 + bucket], 1);
    kms_metrics_add(&cells[KMS_METRICS_SUM], latency_us);
}

void kms_metrics_maintenance(bool ok)
{
    atomic_fetch_add(&kms_metrics_maint_runs, 1);
    if (!ok)
        atomic_fetch_add(&kms_metrics_maint_failures, 1);
}

void kms_metrics_tls_reload(bool ok)
{
    atomic_fetch_add(ok ? &kms_metrics_tls_ok : &kms_metrics_tls_failed, 1);
}

/* The sum over every thread of one slot's cells into out[KMS_METRICS_CELLS]. */
static void kms_metrics_collect(size_t slot, uint64_t out[KMS_METRICS_CELLS])
{
    memset(out, 0, KMS_METRICS_CELLS * sizeof(out[0]));
    for (struct kms_metrics_block *b = kms_metrics_blocks; b != NULL; b = b->mb_next)
        for (size_t i = 0; i < KMS_METRICS_CELLS; i++)
            out[i] += atomic_load_explicit(&b->mb_cells[slot * KMS_METRICS_CELLS + i],
                                           memory_order_relaxed);
}

static const char *kms_metrics_slot_name(size_t slot)
{
    return slot < kms_metrics_slots - 1 ? kms_metrics_names[slot] : KMS_METRICS_UNKNOWN;
}

static kms_err kms_metrics_head(struct kms_buf *out, const char *name, const char *type,
                                const char *help)
{
    return kms_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Requests by action and code, then latency histograms by action. */
static kms_err kms_metrics_render_requests(struct kms_buf *out)
{
    uint64_t(*sums)[KMS_METRICS_CELLS];
    kms_err rc;

    pthread_mutex_lock(&kms_metrics_lock);
    if (kms_metrics_slots == 0) {
        pthread_mutex_unlock(&kms_metrics_lock);
        return KMS_OK;
    }
    sums = calloc(kms_metrics_slots, sizeof(*sums));
    if (sums == NULL) {
        pthread_mutex_unlock(&kms_metrics_lock);
        return KMS_E_INTERNAL;
    }
    for (size_t s = 0; s < kms_metrics_slots; s++)
        kms_metrics_collect(s, sums[s]);
    pthread_mutex_unlock(&kms_metrics_lock);

    rc = kms_metrics_head(out, "kmsd_requests_total", "counter",
                          "API requests answered, by Action and result Code (Success or the "
                          "error Code).");
    for (size_t s = 0; rc == KMS_OK && s < kms_metrics_slots; s++) {
        for (int e = 0; rc == KMS_OK && e < KMS_E_COUNT; e++) {
            uint64_t n = 0;

            if (kms_metrics_code_of[e] != e)
                continue;
            for (int f = e; f < KMS_E_COUNT; f++)
                if (kms_metrics_code_of[f] == e)
                    n += sums[s][f];
            if (n > 0)
                rc = kms_buf_printf(out, "kmsd_requests_total{action=\"%s\",code=\"%s\"} %llu\n",
                                    kms_metrics_slot_name(s),
                                    e == KMS_OK ? "Success" : kms_err_info((kms_err)e)->code,
                                    (unsigned long long)n);
        }
    }
    if (rc == KMS_OK)
        rc = kms_metrics_head(out, "kmsd_request_duration_seconds", "histogram",
                              "Time from a complete request to its response, by Action.");
    for (size_t s = 0; rc == KMS_OK && s < kms_metrics_slots; s++) {
        const char *name = kms_metrics_slot_name(s);
        uint64_t cumulative = 0;

        for (size_t k = 0; k <= KMS_METRICS_BUCKETS; k++)
            cumulative += sums[s][KMS_METRICS_BUCKET0 + k];
        if (cumulative == 0)
            continue;
        cumulative = 0;
        for (size_t k = 0; rc == KMS_OK && k < KMS_METRICS_BUCKETS; k++) {
            cumulative += sums[s][KMS_METRICS_BUCKET0 + k];
            rc = kms_buf_printf(out,
                                "kmsd_request_duration_seconds_bucket{action=\"%s\",le=\"%g\"} "
                                "%llu\n",
                                name, (double)kms_metrics_bounds_us[k] / 1e6,
                                (unsigned long long)cumulative);
        }
        cumulative += sums[s][KMS_METRICS_BUCKET0 + KMS_METRICS_BUCKETS];
        if (rc == KMS_OK)
            rc = kms_buf_printf(out,
                                "kmsd_request_duration_seconds_bucket{action=\"%s\",le=\"+Inf\"} "
                                "%llu\n"
                                "kmsd_request_duration_seconds_sum{action=\"%s\"} %.6f\n"
                                "kmsd_request_duration_seconds_count{action=\"%s\"} %llu\n",
                                name, (unsigned long long)cumulative, name,
                                (double)sums[s][KMS_METRICS_SUM] / 1e6, name,
                                (unsigned long long)cumulative);
    }
    free(sums);
    return rc;
}

/* Keys by state and live secrets, read from the store now; nothing when the store fails. */
static kms_err kms_metrics_render_store(struct kms_buf *out)
{
    static const enum kms_key_state states[] = {KMS_STATE_ENABLED, KMS_STATE_DISABLED,
                                                KMS_STATE_PENDING_DELETION,
                                                KMS_STATE_PENDING_IMPORT};
    struct kms_db *db = kms_store_thread();
    int64_t counts[KMS_KEY_STATE_COUNT], secrets = 0;
    kms_err rc;

    if (db == NULL || kms_store_key_count_by_state(db, counts) != KMS_OK ||
        kms_store_secret_count(db, kms_clock_now(), &secrets) != KMS_OK) {
        kms_log_warn("metrics: cannot read the store for the key and secret gauges");
        return KMS_OK;
    }
    rc = kms_metrics_head(out, "kmsd_keys", "gauge", "Keys (CMKs) by KeyState.");
    for (size_t i = 0; rc == KMS_OK && i < KMS_ARRAY_LEN(states); i++)
        rc = kms_buf_printf(out, "kmsd_keys{state=\"%s\"} %lld\n", kms_key_state_name(states[i]),
                            (long long)counts[states[i]]);
    if (rc == KMS_OK)
        rc = kms_metrics_head(out, "kmsd_secrets", "gauge",
                              "Secrets, those in their recovery window included.");
    if (rc == KMS_OK)
        rc = kms_buf_printf(out, "kmsd_secrets %lld\n", (long long)secrets);
    return rc;
}

static kms_err kms_metrics_render_service(struct kms_buf *out)
{
    struct kms_audit_stats audit;
    size_t live, capacity;
    uint64_t unpersisted;
    kms_err rc;

    kms_auth_replay_stats(&live, &capacity, &unpersisted);
    kms_audit_stats(&audit);
    rc = kms_metrics_head(out, "kmsd_build_info", "gauge", "Always 1; the version as a label.");
    if (rc == KMS_OK)
        rc = kms_buf_printf(out, "kmsd_build_info{version=\"%s\"} 1\n", KMSD_VERSION);
    if (rc == KMS_OK)
        rc = kms_metrics_head(out, "kmsd_start_time_seconds", "gauge",
                              "When kmsd started, in Unix seconds.");
    if (rc == KMS_OK)
        rc = kms_buf_printf(out, "kmsd_start_time_seconds %lld\n", (long long)kms_metrics_started);
    if (rc == KMS_OK)
        rc = kms_metrics_head(out, "kmsd_maintenance_runs_total", "counter",
                              "Passes of timed work (deletion, expiry, rotation, secret sweep).");
    if (rc == KMS_OK)
        rc = kms_buf_printf(out, "kmsd_maintenance_runs_total %llu\n",
                            (unsigned long long)atomic_load(&kms_metrics_maint_runs));
    if (rc == KMS_OK)
        rc = kms_metrics_head(out, "kmsd_maintenance_failures_total", "counter",
                              "Passes of timed work that met an error (retried next pass).");
    if (rc == KMS_OK)
        rc = kms_buf_printf(out, "kmsd_maintenance_failures_total %llu\n",
                            (unsigned long long)atomic_load(&kms_metrics_maint_failures));
    if (rc == KMS_OK)
        rc = kms_metrics_head(out, "kmsd_replay_cache_entries", "gauge",
                              "Unexpired nonces remembered by the replay cache.");
    if (rc == KMS_OK)
        rc = kms_buf_printf(out, "kmsd_replay_cache_entries %zu\n", live);
    if (rc == KMS_OK)
        rc = kms_metrics_head(out, "kmsd_replay_cache_capacity", "gauge",
                              "Nonces the replay cache holds at least; when full, requests get "
                              "503.");
    if (rc == KMS_OK)
        rc = kms_buf_printf(out, "kmsd_replay_cache_capacity %zu\n", capacity);
    if (rc == KMS_OK)
        rc = kms_metrics_head(out, "kmsd_replay_cache_unpersisted_total", "counter",
                              "Nonces that could not be queued for the store (a crash could "
                              "forget them).");
    if (rc == KMS_OK)
        rc = kms_buf_printf(out, "kmsd_replay_cache_unpersisted_total %llu\n",
                            (unsigned long long)unpersisted);
    if (rc == KMS_OK)
        rc = kms_metrics_head(out, "kmsd_audit_records_total", "counter",
                              "Audit records written to the audit file.");
    if (rc == KMS_OK)
        rc = kms_buf_printf(out, "kmsd_audit_records_total %llu\n",
                            (unsigned long long)audit.as_written);
    if (rc == KMS_OK)
        rc = kms_metrics_head(out, "kmsd_audit_dropped_total", "counter",
                              "Audit records lost (queue full past [audit] block_ms, or a failed "
                              "write).");
    if (rc == KMS_OK)
        rc = kms_buf_printf(out, "kmsd_audit_dropped_total %llu\n",
                            (unsigned long long)audit.as_dropped);
    if (rc == KMS_OK)
        rc = kms_metrics_head(out, "kmsd_audit_queue_bytes", "gauge",
                              "Audit bytes waiting for the writer thread.");
    if (rc == KMS_OK)
        rc = kms_buf_printf(out, "kmsd_audit_queue_bytes %llu\n",
                            (unsigned long long)audit.as_queued_bytes);
    if (rc == KMS_OK)
        rc = kms_metrics_head(out, "kmsd_tls_reloads_total", "counter",
                              "TLS certificate reloads on SIGHUP, by result (failed: the old "
                              "certificate stayed).");
    if (rc == KMS_OK)
        rc = kms_buf_printf(out,
                            "kmsd_tls_reloads_total{result=\"ok\"} %llu\n"
                            "kmsd_tls_reloads_total{result=\"failed\"} %llu\n",
                            (unsigned long long)atomic_load(&kms_metrics_tls_ok),
                            (unsigned long long)atomic_load(&kms_metrics_tls_failed));
    return rc;
}

kms_err kms_metrics_render(struct kms_buf *out)
{
    kms_err rc = kms_metrics_render_service(out);

    if (rc == KMS_OK)
        rc = kms_metrics_render_requests(out);
    if (rc == KMS_OK)
        rc = kms_metrics_render_store(out);
    return rc;
}
