/*
 * test_nonce.c - the replay cache (src/auth/nonce.c): SipHash-2-4 against the reference vectors,
 * first use and replay, per-AccessKeyId separation, expiry, failing closed when full, the drain
 * for the background flush (each new entry exactly once, bounded), reloading persisted entries,
 * and concurrent use from several threads (no lost entries, exactly one winner per nonce).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kms/auth.h"

static const uint8_t test_key[16] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                     0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};

static struct kms_nonce_cache *make_cache(size_t capacity)
{
    struct kms_nonce_cache *c = NULL;

    assert_int_equal(kms_nonce_cache_create(capacity, test_key, &c), KMS_OK);
    assert_non_null(c);
    return c;
}

static kms_err record(struct kms_nonce_cache *c, const char *id, const char *nonce, int64_t now,
                      int64_t expires_at)
{
    return kms_nonce_check_and_record(c, id, nonce, strlen(nonce), now, expires_at);
}

static void test_siphash_reference(void **state)
{
    /* SipHash-2-4 reference vectors (vectors.h of the reference implementation): key 00..0f,
     * message 00..(n-1); the 8 output bytes read as a little-endian integer. */
    static const uint64_t want[16] = {
        0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL, 0x85676696d7fb7e2dULL,
        0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL, 0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL,
        0x93f5f5799a932462ULL, 0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
        0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL, 0xa129ca6149be45e5ULL,
    };
    uint8_t msg[16];

    (void)state;
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    for (size_t n = 0; n < 16; n++) {
        uint64_t got = kms_nonce_siphash(test_key, msg, n);

        if (got != want[n])
            fail_msg("SipHash of %zu bytes: %016llx, want %016llx", n, (unsigned long long)got,
                     (unsigned long long)want[n]);
    }
}

static void test_key_hash_is_siphash_of_joined_input(void **state)
{
    /* Ids of several lengths, so the 0x00 and the nonce start at every offset within a block. */
    static const char *const ids[] = {"", "a", "testid", "testid7", "LTAI5tAbCdEfGhIjKlMnOpQr"};
    static const char *const nonces[] = {"", "n", "3e4f1c2b9a8d7e6f5a4b3c2d1e0f9a8b",
                                         "a-uuid-0000-0000-0000-000000000000"};
    char joined[128];

    (void)state;
    for (size_t i = 0; i < KMS_ARRAY_LEN(ids); i++) {
        for (size_t j = 0; j < KMS_ARRAY_LEN(nonces); j++) {
            size_t il = strlen(ids[i]), nl = strlen(nonces[j]);

            memcpy(joined, ids[i], il);
            joined[il] = '\0';
            memcpy(joined + il + 1, nonces[j], nl);
            assert_int_equal(kms_nonce_key_hash(test_key, ids[i], nonces[j], nl),
                             kms_nonce_siphash(test_key, joined, il + 1 + nl));
        }
    }
    /* The separator keeps ("ab", "c") and ("a", "bc") apart. */
    assert_int_not_equal(kms_nonce_key_hash(test_key, "ab", "c", 1),
                         kms_nonce_key_hash(test_key, "a", "bc", 2));
    /* The key matters. */
    {
        uint8_t other[16];

        memcpy(other, test_key, 16);
        other[15] ^= 1;
        assert_int_not_equal(kms_nonce_key_hash(test_key, "id", "n", 1),
                             kms_nonce_key_hash(other, "id", "n", 1));
    }
}

static void test_first_use_and_replay(void **state)
{
    struct kms_nonce_cache *c = make_cache(1000);

    (void)state;
    assert_int_equal(record(c, "testid", "nonce-1", 1000, 2800), KMS_OK);
    assert_int_equal(record(c, "testid", "nonce-1", 1001, 2801), KMS_E_NONCE_USED);
    assert_int_equal(record(c, "testid", "nonce-1", 2799, 4599), KMS_E_NONCE_USED);
    /* Another AccessKeyId may use the same nonce; another nonce is new. */
    assert_int_equal(record(c, "otherid", "nonce-1", 1002, 2802), KMS_OK);
    assert_int_equal(record(c, "otherid", "nonce-1", 1003, 2803), KMS_E_NONCE_USED);
    assert_int_equal(record(c, "testid", "nonce-2", 1004, 2804), KMS_OK);
    assert_int_equal(record(c, "testid", "nonce-", 1004, 2804), KMS_OK);
    assert_int_equal(record(c, "testid", "Nonce-1", 1004, 2804), KMS_OK);
    /* Only nonce_len bytes count. */
    assert_int_equal(kms_nonce_check_and_record(c, "testid", "nonce-1xyz", 7, 1005, 2805),
                     KMS_E_NONCE_USED);
    kms_nonce_cache_free(c);
}

static void test_expiry(void **state)
{
    struct kms_nonce_cache *c = make_cache(1000);

    (void)state;
    assert_int_equal(record(c, "id", "n1", 1000, 1100), KMS_OK);
    assert_int_equal(record(c, "id", "n1", 1099, 1199), KMS_E_NONCE_USED);
    /* At its expiry the entry is gone and the slot reusable; the nonce counts as new again. */
    assert_int_equal(record(c, "id", "n1", 1100, 1200), KMS_OK);
    assert_int_equal(record(c, "id", "n1", 1150, 1250), KMS_E_NONCE_USED);
    /* Nothing to remember for an expiry already past, but it is still checked. */
    assert_int_equal(record(c, "id", "n2", 2000, 2000), KMS_OK);
    assert_int_equal(record(c, "id", "n2", 2000, 1999), KMS_OK);
    assert_int_equal(record(c, "id", "n1", 1199, 1000), KMS_E_NONCE_USED);
    kms_nonce_cache_free(c);
}

static void test_full_cache_fails_closed(void **state)
{
    enum { CAPACITY = 16, NOW = 1000, EXP = 2000 };
    struct kms_nonce_cache *c = make_cache(CAPACITY);
    char nonce[32];
    int recorded = 0, refused = 0;

    (void)state;
    for (int i = 0; i < 1000; i++) {
        kms_err rc;

        snprintf(nonce, sizeof(nonce), "n%d", i);
        rc = record(c, "id", nonce, NOW, EXP);
        if (rc == KMS_OK) {
            assert_int_equal(refused, 0); /* once full, full until something expires */
            recorded++;
        } else {
            assert_int_equal(rc, KMS_E_UNAVAILABLE);
            refused++;
        }
    }
    assert_true(recorded >= CAPACITY);
    assert_true(refused > 0);
    /* Full, yet every recorded nonce is still refused as a replay: nothing was evicted. */
    for (int i = 0; i < recorded; i++) {
        snprintf(nonce, sizeof(nonce), "n%d", i);
        assert_int_equal(record(c, "id", nonce, NOW + 1, EXP + 1), KMS_E_NONCE_USED);
    }
    assert_int_equal(record(c, "id", "fresh", NOW + 1, EXP + 1), KMS_E_UNAVAILABLE);
    /* Once the entries expire their slots are free again. */
    assert_int_equal(record(c, "id", "fresh", EXP, EXP + 1000), KMS_OK);
    assert_int_equal(record(c, "id", "n0", EXP, EXP + 1000), KMS_OK);
    kms_nonce_cache_free(c);
}

static void test_capacity_is_honoured(void **state)
{
    /* At its nominal capacity the table still has room: the 1.5x slots and two-choice buckets
     * are sized so that a full load of live entries never finds both candidate buckets full. */
    enum { CAPACITY = 200000 };
    struct kms_nonce_cache *c = make_cache(CAPACITY);
    char nonce[40];

    (void)state;
    for (int round = 0; round < 3; round++) {
        int64_t now = 1000 + round * 100;

        for (int i = 0; i < CAPACITY; i++) {
            int n = snprintf(nonce, sizeof(nonce), "%08x%08x", round, i);

            if (kms_nonce_check_and_record(c, "testid", nonce, (size_t)n, now, now + 100) != KMS_OK)
                fail_msg("round %d: refused entry %d of %d", round, i, CAPACITY);
        }
    }
    kms_nonce_cache_free(c);
}

static int cmp_entry(const void *a, const void *b)
{
    const struct kms_nonce_entry *x = a, *y = b;

    return (x->hash > y->hash) - (x->hash < y->hash);
}

static void test_drain(void **state)
{
    struct kms_nonce_cache *c = make_cache(1000);
    struct kms_nonce_entry out[32], want[10];
    char nonce[16];
    size_t n1, n2;

    (void)state;
    assert_int_equal(kms_nonce_drain(c, out, 32), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(nonce, sizeof(nonce), "d%d", i);
        assert_int_equal(record(c, "id", nonce, 1000, 1500 + i), KMS_OK);
        want[i].hash = kms_nonce_key_hash(test_key, "id", nonce, strlen(nonce));
        want[i].expires_at = 1500 + i;
        /* Replays and refusals queue nothing. */
        assert_int_equal(record(c, "id", nonce, 1000, 1500 + i), KMS_E_NONCE_USED);
    }
    assert_int_equal(record(c, "id", "past", 1000, 900), KMS_OK);
    /* In two parts: 4, then the remaining 6, then nothing. */
    n1 = kms_nonce_drain(c, out, 4);
    assert_int_equal(n1, 4);
    n2 = kms_nonce_drain(c, out + n1, 32 - n1);
    assert_int_equal(n2, 6);
    assert_int_equal(kms_nonce_drain(c, out + 10, 22), 0);
    qsort(out, 10, sizeof(out[0]), cmp_entry);
    qsort(want, 10, sizeof(want[0]), cmp_entry);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(out[i].hash, want[i].hash);
        assert_int_equal(out[i].expires_at, want[i].expires_at);
    }
    /* Only what is new since the last drain. */
    assert_int_equal(record(c, "id", "later", 1001, 1600), KMS_OK);
    assert_int_equal(kms_nonce_drain(c, out, 32), 1);
    assert_int_equal(out[0].hash, kms_nonce_key_hash(test_key, "id", "later", 5));
    assert_int_equal(kms_nonce_drain(c, out, 0), 0);
    assert_int_equal(kms_nonce_drain_dropped(c), 0);
    kms_nonce_cache_free(c);
}

static void test_pending_is_bounded(void **state)
{
    /* A small cache has one shard, whose pending list holds 2048 entries; when the flush falls
     * behind, further entries still guard against replays but are counted as not persisted. */
    enum { N = 3000 };
    struct kms_nonce_cache *c = make_cache(4000);
    struct kms_nonce_entry *out = calloc(N, sizeof(*out));
    char nonce[16];
    size_t drained;

    (void)state;
    assert_non_null(out);
    for (int i = 0; i < N; i++) {
        snprintf(nonce, sizeof(nonce), "p%d", i);
        assert_int_equal(record(c, "id", nonce, 1000, 2000), KMS_OK);
    }
    drained = kms_nonce_drain(c, out, N);
    assert_true(drained < N);
    assert_int_equal(drained + kms_nonce_drain_dropped(c), N);
    for (int i = 0; i < N; i++) {
        snprintf(nonce, sizeof(nonce), "p%d", i);
        assert_int_equal(record(c, "id", nonce, 1001, 2001), KMS_E_NONCE_USED);
    }
    free(out);
    kms_nonce_cache_free(c);
}

static void test_load_restores(void **state)
{
    struct kms_nonce_cache *a = make_cache(1000), *b, *other;
    struct kms_nonce_entry out[16];
    uint8_t other_key[16];
    size_t n;

    (void)state;
    assert_int_equal(record(a, "id", "keep-1", 1000, 3000), KMS_OK);
    assert_int_equal(record(a, "id", "keep-2", 1000, 3000), KMS_OK);
    assert_int_equal(record(a, "id", "short", 1000, 1200), KMS_OK);
    n = kms_nonce_drain(a, out, 16);
    assert_int_equal(n, 3);
    kms_nonce_cache_free(a);

    /* A restart at 1500: the two live entries come back, the expired one does not. */
    b = make_cache(1000);
    assert_int_equal(kms_nonce_load(b, out, n, 1500), KMS_OK);
    assert_int_equal(record(b, "id", "keep-1", 1500, 3300), KMS_E_NONCE_USED);
    assert_int_equal(record(b, "id", "keep-2", 1500, 3300), KMS_E_NONCE_USED);
    assert_int_equal(record(b, "id", "short", 1500, 3300), KMS_OK);
    /* Loading again (duplicates) is harmless; loaded entries are not queued for the store. */
    assert_int_equal(kms_nonce_load(b, out, n, 1500), KMS_OK);
    assert_int_equal(kms_nonce_drain(b, out, 16), 1);
    assert_int_equal(out[0].hash, kms_nonce_key_hash(test_key, "id", "short", 5));
    kms_nonce_cache_free(b);

    /* Under another hash key the persisted hashes mean nothing: the key must be kept too. */
    memcpy(other_key, test_key, 16);
    other_key[0] ^= 0x80;
    assert_int_equal(kms_nonce_cache_create(1000, other_key, &other), KMS_OK);
    {
        struct kms_nonce_entry e = {kms_nonce_key_hash(test_key, "id", "keep-1", 6), 3000};

        assert_int_equal(kms_nonce_load(other, &e, 1, 1500), KMS_OK);
    }
    assert_int_equal(record(other, "id", "keep-1", 1500, 3300), KMS_OK);
    kms_nonce_cache_free(other);
}

static void test_load_full(void **state)
{
    struct kms_nonce_cache *c = make_cache(16);
    struct kms_nonce_entry e[200];

    (void)state;
    for (int i = 0; i < 200; i++) {
        e[i].hash = kms_nonce_siphash(test_key, &i, sizeof(i));
        e[i].expires_at = 5000;
    }
    assert_int_equal(kms_nonce_load(c, e, 200, 1000), KMS_E_UNAVAILABLE);
    kms_nonce_cache_free(c);
}

static void test_create_rejects_nonsense(void **state)
{
    struct kms_nonce_cache *c = (struct kms_nonce_cache *)1;

    (void)state;
    assert_int_equal(kms_nonce_cache_create(0, test_key, &c), KMS_E_INTERNAL);
    assert_null(c);
    assert_int_equal(kms_nonce_cache_create(SIZE_MAX, test_key, &c), KMS_E_INTERNAL);
    assert_null(c);
    kms_nonce_cache_free(NULL);
}

/* ---------------------------------------------------------------- threads */

#define THREADS       4
#define PER_THREAD    25000
#define SHARED_NONCES 5000

struct worker {
    struct kms_nonce_cache *cache;
    int id;
    int failures;
    atomic_int *shared_wins;
};

static void *insert_worker(void *arg)
{
    struct worker *w = arg;
    char nonce[32];

    for (int i = 0; i < PER_THREAD; i++) {
        int n = snprintf(nonce, sizeof(nonce), "t%d-%d", w->id, i);

        if (kms_nonce_check_and_record(w->cache, "testid", nonce, (size_t)n, 1000, 5000) != KMS_OK)
            w->failures++;
    }
    /* Every thread races for the same shared nonces: exactly one may win each. */
    for (int i = 0; i < SHARED_NONCES; i++) {
        int n = snprintf(nonce, sizeof(nonce), "shared-%d", i);
        kms_err rc = kms_nonce_check_and_record(w->cache, "testid", nonce, (size_t)n, 1000, 5000);

        if (rc == KMS_OK)
            atomic_fetch_add(w->shared_wins, 1);
        else if (rc != KMS_E_NONCE_USED)
            w->failures++;
    }
    return NULL;
}

struct drainer {
    struct kms_nonce_cache *cache;
    atomic_int *stop;
    struct kms_nonce_entry *out;
    size_t count, cap;
};

static void *drain_worker(void *arg)
{
    struct drainer *d = arg;

    for (;;) {
        int stopping = atomic_load(d->stop);

        d->count += kms_nonce_drain(d->cache, d->out + d->count, d->cap - d->count);
        if (stopping)
            break;
    }
    d->count += kms_nonce_drain(d->cache, d->out + d->count, d->cap - d->count);
    return NULL;
}

static void test_concurrent(void **state)
{
    enum { TOTAL = THREADS * PER_THREAD + SHARED_NONCES };
    struct kms_nonce_cache *c = make_cache(TOTAL);
    pthread_t threads[THREADS], drain_thread;
    struct worker workers[THREADS];
    struct drainer d;
    atomic_int wins, stop;
    char nonce[32];

    (void)state;
    atomic_init(&wins, 0);
    atomic_init(&stop, 0);
    d.cache = c;
    d.stop = &stop;
    d.cap = TOTAL;
    d.count = 0;
    d.out = calloc(TOTAL, sizeof(*d.out));
    assert_non_null(d.out);
    assert_int_equal(pthread_create(&drain_thread, NULL, drain_worker, &d), 0);
    for (int t = 0; t < THREADS; t++) {
        workers[t].cache = c;
        workers[t].id = t;
        workers[t].failures = 0;
        workers[t].shared_wins = &wins;
        assert_int_equal(pthread_create(&threads[t], NULL, insert_worker, &workers[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(workers[t].failures, 0);
    }
    atomic_store(&stop, 1);
    assert_int_equal(pthread_join(drain_thread, NULL), 0);

    assert_int_equal(atomic_load(&wins), SHARED_NONCES);
    /* No entry lost: every nonce is now a replay... */
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            int n = snprintf(nonce, sizeof(nonce), "t%d-%d", t, i);

            assert_int_equal(kms_nonce_check_and_record(c, "testid", nonce, (size_t)n, 1001, 5001),
                             KMS_E_NONCE_USED);
        }
    }
    /* ...and each was handed to the flush exactly once, or counted as not persisted. */
    assert_int_equal(d.count + kms_nonce_drain_dropped(c), TOTAL);
    qsort(d.out, d.count, sizeof(*d.out), cmp_entry);
    for (size_t i = 1; i < d.count; i++)
        assert_true(d.out[i - 1].hash != d.out[i].hash);
    free(d.out);
    kms_nonce_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash_reference),
        cmocka_unit_test(test_key_hash_is_siphash_of_joined_input),
        cmocka_unit_test(test_first_use_and_replay),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_full_cache_fails_closed),
        cmocka_unit_test(test_capacity_is_honoured),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_pending_is_bounded),
        cmocka_unit_test(test_load_restores),
        cmocka_unit_test(test_load_full),
        cmocka_unit_test(test_create_rejects_nonsense),
        cmocka_unit_test(test_concurrent),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
