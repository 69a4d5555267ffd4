/*
 * nonce.c - the replay cache (spec §9.2, DESIGN.md "Replay cache"): which (AccessKeyId, nonce)
 * pairs were used and until when, in a table of fixed size allocated once, so memory stays flat
 * however many requests arrive, and a full table refuses requests (fail closed) rather than
 * forgetting a nonce that could still be replayed.
 *
 * Layout. An entry is 16 bytes: a SipHash-2-4 of AccessKeyId 0x00 nonce under a secret key (so
 * clients cannot aim their nonces at one bucket) and its expiry. The hash's top bits pick a shard
 * (its own mutex, so worker threads rarely meet); within a shard two buckets of 16 slots are
 * candidates ("two choices"), the new entry goes to the emptier one, and a lookup reads both
 * buckets whole. No entry ever moves and no probe sequence runs past its two buckets, so a slot
 * whose expiry has passed is simply free, with no tombstones to clean. The table has 1.5 slots
 * per entry of capacity: simulated at full nominal load with entries expiring and arriving
 * continuously (6x capacity insertions, capacities 10^2..4x10^6), that never found both
 * buckets full; at 1.25 it did.
 *
 * Persistence. Every recorded entry is also queued on its shard's bounded pending list, which
 * the background flush empties with kms_nonce_drain() and writes to the store in one
 * transaction. A crash therefore loses only the nonces recorded since the last flush (and any
 * the pending list had no room for, see kms_nonce_drain_dropped()): those could be replayed
 * after a restart, until they expire.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kms/auth.h"

#define KMS_NONCE_BUCKET        16   /* slots per bucket: 256 bytes, four cache lines */
#define KMS_NONCE_MAX_SHARDS    64   /* enough that worker threads rarely share a mutex */
#define KMS_NONCE_SHARD_MIN     8192 /* entries per shard at least, to keep shard loads even */
#define KMS_NONCE_SLOTS_NUM     3    /* slots per entry of capacity: 3/2 (see above) */
#define KMS_NONCE_SLOTS_DEN     2
#define KMS_NONCE_PENDING_SHARD 2048 /* pending entries per shard: 128k in all, 2 MiB */

struct kms_nonce_shard {
    _Alignas(64) pthread_mutex_t ns_mu; /* own cache line: shards do not share one */
    struct kms_nonce_entry *ns_slots;   /* ns_buckets * KMS_NONCE_BUCKET */
    size_t ns_buckets;
    struct kms_nonce_entry *ns_pending; /* ring of ns_pending_cap */
    size_t ns_pending_cap;
    size_t ns_pending_head;
    size_t ns_pending_count;
    uint64_t ns_dropped;
};

struct kms_nonce_cache {
    uint8_t nc_key[16];
    struct kms_nonce_shard *nc_shards;
    size_t nc_shard_count;
    unsigned nc_shard_bits;
    struct kms_nonce_entry *nc_slots;   /* one block for every shard's slots */
    struct kms_nonce_entry *nc_pending; /* one block for every shard's pending ring */
    atomic_size_t nc_drain_next;        /* where the next drain starts, so none starves */
};

/* ---- SipHash-2-4 (Aumasson and Bernstein), incremental ---- */

struct kms_sip {
    uint64_t v0, v1, v2, v3;
    uint64_t tail;
    size_t total;
};

#define KMS_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t kms_le64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

static void kms_sip_round(struct kms_sip *s)
{
    s->v0 += s->v1;
    s->v1 = KMS_ROTL(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = KMS_ROTL(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = KMS_ROTL(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = KMS_ROTL(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = KMS_ROTL(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = KMS_ROTL(s->v2, 32);
}

static void kms_sip_init(struct kms_sip *s, const uint8_t key[16])
{
    uint64_t k0 = kms_le64(key), k1 = kms_le64(key + 8);

    s->v0 = k0 ^ 0x736f6d6570736575ULL;
    s->v1 = k1 ^ 0x646f72616e646f6dULL;
    s->v2 = k0 ^ 0x6c7967656e657261ULL;
    s->v3 = k1 ^ 0x7465646279746573ULL;
    s->tail = 0;
    s->total = 0;
}

static void kms_sip_block(struct kms_sip *s, uint64_t m)
{
    s->v3 ^= m;
    kms_sip_round(s);
    kms_sip_round(s);
    s->v0 ^= m;
}

static void kms_sip_update(struct kms_sip *s, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len > 0) {
        if (s->total % 8 == 0 && len >= 8) {
            kms_sip_block(s, kms_le64(p));
            p += 8;
            len -= 8;
            s->total += 8;
            continue;
        }
        s->tail |= (uint64_t)*p++ << (8 * (s->total % 8));
        len--;
        s->total++;
        if (s->total % 8 == 0) {
            kms_sip_block(s, s->tail);
            s->tail = 0;
        }
    }
}

static uint64_t kms_sip_final(struct kms_sip *s)
{
    kms_sip_block(s, s->tail | (uint64_t)(s->total & 0xff) << 56);
    s->v2 ^= 0xff;
    kms_sip_round(s);
    kms_sip_round(s);
    kms_sip_round(s);
    kms_sip_round(s);
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

uint64_t kms_nonce_siphash(const uint8_t key[16], const void *data, size_t len)
{
    struct kms_sip s;

    kms_sip_init(&s, key);
    kms_sip_update(&s, data, len);
    return kms_sip_final(&s);
}

uint64_t kms_nonce_key_hash(const uint8_t key[16], const char *access_key_id, const char *nonce,
                            size_t nonce_len)
{
    /* The 0x00 keeps ("ab", "c") and ("a", "bc") apart: an AccessKeyId holds no NUL. */
    static const uint8_t sep = 0;
    struct kms_sip s;

    kms_sip_init(&s, key);
    kms_sip_update(&s, access_key_id, strlen(access_key_id));
    kms_sip_update(&s, &sep, 1);
    kms_sip_update(&s, nonce, nonce_len);
    return kms_sip_final(&s);
}

/* ---- the table ---- */

static struct kms_nonce_shard *kms_nonce_shard_of(struct kms_nonce_cache *c, uint64_t h)
{
    if (c->nc_shard_bits == 0)
        return &c->nc_shards[0];
    return &c->nc_shards[h >> (64 - c->nc_shard_bits)];
}

/* The two candidate buckets, from hash bits the shard choice does not use. */
static void kms_nonce_buckets(const struct kms_nonce_shard *s, uint64_t h, size_t *b1, size_t *b2)
{
    uint64_t n = s->ns_buckets;

    *b1 = (size_t)(((h & 0xffffffffULL) * n) >> 32);
    *b2 = (size_t)((((h >> 32) & 0x3ffffffULL) * n) >> 26);
    if (*b2 == *b1)
        *b2 = (*b1 + 1) % s->ns_buckets;
}

static void kms_nonce_queue(struct kms_nonce_shard *s, uint64_t h, int64_t expires_at)
{
    size_t i;

    if (s->ns_pending_count == s->ns_pending_cap) {
        /* The entry still guards against replays; only its persistence is lost. */
        s->ns_dropped++;
        return;
    }
    i = (s->ns_pending_head + s->ns_pending_count) % s->ns_pending_cap;
    s->ns_pending[i].hash = h;
    s->ns_pending[i].expires_at = expires_at;
    s->ns_pending_count++;
}

/* The insert under the shard's mutex: KMS_OK, KMS_E_NONCE_USED or KMS_E_UNAVAILABLE. */
static kms_err kms_nonce_insert_locked(struct kms_nonce_shard *s, uint64_t h, int64_t now,
                                       int64_t expires_at, bool queue)
{
    struct kms_nonce_entry *bucket[2], *free_slot[2] = {NULL, NULL};
    size_t b[2], nfree[2] = {0, 0};

    kms_nonce_buckets(s, h, &b[0], &b[1]);
    for (int k = 0; k < 2; k++) {
        bucket[k] = s->ns_slots + b[k] * KMS_NONCE_BUCKET;
        for (size_t i = 0; i < KMS_NONCE_BUCKET; i++) {
            struct kms_nonce_entry *e = &bucket[k][i];

            if (e->expires_at > now) {
                if (e->hash == h)
                    return KMS_E_NONCE_USED;
                continue;
            }
            if (free_slot[k] == NULL)
                free_slot[k] = e;
            nfree[k]++;
        }
    }
    if (expires_at <= now)
        return KMS_OK; /* nothing left to remember */
    if (nfree[0] == 0 && nfree[1] == 0)
        return KMS_E_UNAVAILABLE;
    {
        struct kms_nonce_entry *e = nfree[0] >= nfree[1] ? free_slot[0] : free_slot[1];

        e->hash = h;
        e->expires_at = expires_at;
    }
    if (queue)
        kms_nonce_queue(s, h, expires_at);
    return KMS_OK;
}

kms_err kms_nonce_cache_create(size_t capacity, const uint8_t hash_key[16],
                               struct kms_nonce_cache **out)
{
    struct kms_nonce_cache *c;
    size_t shards = KMS_NONCE_MAX_SHARDS, buckets, slots_per_shard;
    unsigned bits = 0;

    *out = NULL;
    if (capacity == 0 || capacity > SIZE_MAX / 64 / KMS_NONCE_SLOTS_NUM)
        return KMS_E_INTERNAL;
    /* Few entries per shard would make shard loads uneven; small caches see little traffic. */
    while (shards > 1 && capacity / shards < KMS_NONCE_SHARD_MIN)
        shards /= 2;
    while (((size_t)1 << bits) < shards)
        bits++;
    slots_per_shard = (capacity * KMS_NONCE_SLOTS_NUM / KMS_NONCE_SLOTS_DEN + shards - 1) / shards;
    buckets = (slots_per_shard + KMS_NONCE_BUCKET - 1) / KMS_NONCE_BUCKET;
    if (buckets < 2)
        buckets = 2;

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return KMS_E_INTERNAL;
    memcpy(c->nc_key, hash_key, 16);
    c->nc_shard_count = shards;
    c->nc_shard_bits = bits;
    atomic_init(&c->nc_drain_next, 0);
    c->nc_shards = aligned_alloc(64, shards * sizeof(*c->nc_shards));
    /*
     * Zeroed slots are free (expiry 0 has passed). calloc's pages arrive untouched: the resident
     * size grows as the table fills, up to about 24 bytes per entry of capacity, and stays flat
     * from then on (bench/rss.sh). Touching every page here would make each kmsd, tests
     * included, hold the full table from its first second for no gain in steady state.
     */
    c->nc_slots = calloc(shards * buckets * KMS_NONCE_BUCKET, sizeof(*c->nc_slots));
    c->nc_pending = calloc(shards * KMS_NONCE_PENDING_SHARD, sizeof(*c->nc_pending));
    if (c->nc_shards == NULL || c->nc_slots == NULL || c->nc_pending == NULL) {
        free(c->nc_shards);
        free(c->nc_slots);
        free(c->nc_pending);
        free(c);
        return KMS_E_INTERNAL;
    }
    for (size_t i = 0; i < shards; i++) {
        struct kms_nonce_shard *s = &c->nc_shards[i];

        memset(s, 0, sizeof(*s));
        pthread_mutex_init(&s->ns_mu, NULL);
        s->ns_slots = c->nc_slots + i * buckets * KMS_NONCE_BUCKET;
        s->ns_buckets = buckets;
        s->ns_pending = c->nc_pending + i * KMS_NONCE_PENDING_SHARD;
        s->ns_pending_cap = KMS_NONCE_PENDING_SHARD;
    }
    *out = c;
    return KMS_OK;
}

kms_err kms_nonce_check_and_record(struct kms_nonce_cache *c, const char *access_key_id,
                                   const char *nonce, size_t nonce_len, int64_t now,
                                   int64_t expires_at)
{
    uint64_t h = kms_nonce_key_hash(c->nc_key, access_key_id, nonce, nonce_len);
    struct kms_nonce_shard *s = kms_nonce_shard_of(c, h);
    kms_err rc;

    pthread_mutex_lock(&s->ns_mu);
    rc = kms_nonce_insert_locked(s, h, now, expires_at, true);
    pthread_mutex_unlock(&s->ns_mu);
    return rc;
}

size_t kms_nonce_drain(struct kms_nonce_cache *c, struct kms_nonce_entry *out, size_t max)
{
    size_t start = atomic_fetch_add(&c->nc_drain_next, 1) % c->nc_shard_count;
    size_t n = 0;

    for (size_t k = 0; k < c->nc_shard_count && n < max; k++) {
        struct kms_nonce_shard *s = &c->nc_shards[(start + k) % c->nc_shard_count];

        pthread_mutex_lock(&s->ns_mu);
        while (s->ns_pending_count > 0 && n < max) {
            out[n++] = s->ns_pending[s->ns_pending_head];
            s->ns_pending_head = (s->ns_pending_head + 1) % s->ns_pending_cap;
            s->ns_pending_count--;
        }
        pthread_mutex_unlock(&s->ns_mu);
    }
    return n;
}

uint64_t kms_nonce_drain_dropped(struct kms_nonce_cache *c)
{
    uint64_t total = 0;

    for (size_t i = 0; i < c->nc_shard_count; i++) {
        struct kms_nonce_shard *s = &c->nc_shards[i];

        pthread_mutex_lock(&s->ns_mu);
        total += s->ns_dropped;
        pthread_mutex_unlock(&s->ns_mu);
    }
    return total;
}

kms_err kms_nonce_load(struct kms_nonce_cache *c, const struct kms_nonce_entry *e, size_t n,
                       int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        struct kms_nonce_shard *s;
        kms_err rc;

        if (e[i].expires_at <= now)
            continue;
        s = kms_nonce_shard_of(c, e[i].hash);
        pthread_mutex_lock(&s->ns_mu);
        /* Already in the store: not queued for drain again. */
        rc = kms_nonce_insert_locked(s, e[i].hash, now, e[i].expires_at, false);
        pthread_mutex_unlock(&s->ns_mu);
        if (rc == KMS_E_UNAVAILABLE)
            return rc;
        /* KMS_E_NONCE_USED: the same entry twice in the store; once is enough. */
    }
    return KMS_OK;
}

void kms_nonce_cache_free(struct kms_nonce_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nc_shard_count; i++)
        pthread_mutex_destroy(&c->nc_shards[i].ns_mu);
    free(c->nc_shards);
    free(c->nc_slots);
    free(c->nc_pending);
    OPENSSL_cleanse(c->nc_key, sizeof(c->nc_key));
    free(c);
}

size_t kms_nonce_cache_live(struct kms_nonce_cache *c, int64_t now)
{
    size_t live = 0;

    /* One shard at a time under its mutex: a scrape delays a request by one shard's scan. */
    for (size_t i = 0; i < c->nc_shard_count; i++) {
        struct kms_nonce_shard *s = &c->nc_shards[i];
        size_t slots = s->ns_buckets * KMS_NONCE_BUCKET;

        pthread_mutex_lock(&s->ns_mu);
        for (size_t k = 0; k < slots; k++)
            live += s->ns_slots[k].expires_at > now;
        pthread_mutex_unlock(&s->ns_mu);
    }
    return live;
}
