/*
 * cache.c - bounded string-keyed cache of reference-counted objects: 16 shards, each a chained
 * hash table with its own lock and FIFO eviction once full.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kms/cache.h"

#define KMS_CACHE_SHARDS  16
#define KMS_CACHE_BUCKETS 256

struct kms_cache_node {
    struct kms_cache_node *cn_next;      /* in the bucket */
    struct kms_cache_node *cn_fifo_next; /* newer */
    struct kms_cache_node *cn_fifo_prev; /* older */
    uint64_t cn_hash;
    void *cn_obj;
    char cn_name[];
};

struct kms_cache_shard {
    pthread_mutex_t cs_lock;
    struct kms_cache_node *cs_buckets[KMS_CACHE_BUCKETS];
    struct kms_cache_node *cs_oldest;
    struct kms_cache_node *cs_newest;
    size_t cs_count;
};

struct kms_cache {
    struct kms_cache_shard c_shards[KMS_CACHE_SHARDS];
    size_t c_max_per_shard;
    void (*c_ref)(void *obj);
    void (*c_unref)(void *obj);
    _Atomic uint64_t c_generation;
};

static uint64_t kms_cache_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct kms_cache *kms_cache_create(size_t capacity, void (*ref)(void *obj),
                                   void (*unref)(void *obj))
{
    struct kms_cache *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    for (int i = 0; i < KMS_CACHE_SHARDS; i++)
        pthread_mutex_init(&c->c_shards[i].cs_lock, NULL);
    c->c_max_per_shard = capacity / KMS_CACHE_SHARDS + 1;
    c->c_ref = ref;
    c->c_unref = unref;
    return c;
}

static struct kms_cache_shard *kms_cache_shard_of(struct kms_cache *c, uint64_t h)
{
    return &c->c_shards[(h >> 56) % KMS_CACHE_SHARDS];
}

/* Unlinks node from its bucket and the FIFO; the caller holds the shard lock. */
static void kms_cache_unlink(struct kms_cache_shard *s, struct kms_cache_node *node)
{
    struct kms_cache_node **pp = &s->cs_buckets[node->cn_hash % KMS_CACHE_BUCKETS];

    while (*pp != node)
        pp = &(*pp)->cn_next;
    *pp = node->cn_next;
    if (node->cn_fifo_prev)
        node->cn_fifo_prev->cn_fifo_next = node->cn_fifo_next;
    else
        s->cs_oldest = node->cn_fifo_next;
    if (node->cn_fifo_next)
        node->cn_fifo_next->cn_fifo_prev = node->cn_fifo_prev;
    else
        s->cs_newest = node->cn_fifo_prev;
    s->cs_count--;
}

static struct kms_cache_node *kms_cache_find(struct kms_cache_shard *s, uint64_t h,
                                             const char *name)
{
    struct kms_cache_node *n = s->cs_buckets[h % KMS_CACHE_BUCKETS];

    for (; n != NULL; n = n->cn_next)
        if (n->cn_hash == h && strcmp(n->cn_name, name) == 0)
            return n;
    return NULL;
}

void *kms_cache_get(struct kms_cache *c, const char *name)
{
    uint64_t h = kms_cache_hash(name);
    struct kms_cache_shard *s = kms_cache_shard_of(c, h);
    struct kms_cache_node *n;
    void *obj = NULL;

    pthread_mutex_lock(&s->cs_lock);
    n = kms_cache_find(s, h, name);
    if (n != NULL) {
        obj = n->cn_obj;
        c->c_ref(obj);
    }
    pthread_mutex_unlock(&s->cs_lock);
    return obj;
}

uint64_t kms_cache_generation(struct kms_cache *c)
{
    return atomic_load(&c->c_generation);
}

void kms_cache_insert(struct kms_cache *c, const char *name, void *obj, uint64_t generation)
{
    uint64_t h = kms_cache_hash(name);
    struct kms_cache_shard *s = kms_cache_shard_of(c, h);
    size_t len = strlen(name);
    struct kms_cache_node *node = malloc(sizeof(*node) + len + 1);
    struct kms_cache_node *evicted = NULL, *old;

    if (node == NULL)
        return;
    memcpy(node->cn_name, name, len + 1);
    node->cn_hash = h;
    node->cn_obj = obj;
    pthread_mutex_lock(&s->cs_lock);
    /* Checked under the lock: kms_cache_remove bumps the generation under the same lock. */
    if (atomic_load(&c->c_generation) != generation) {
        pthread_mutex_unlock(&s->cs_lock);
        free(node);
        return;
    }
    old = kms_cache_find(s, h, name);
    if (old != NULL) {
        /* Someone loaded the same object first: keep theirs. */
        pthread_mutex_unlock(&s->cs_lock);
        free(node);
        return;
    }
    c->c_ref(obj);
    node->cn_next = s->cs_buckets[h % KMS_CACHE_BUCKETS];
    s->cs_buckets[h % KMS_CACHE_BUCKETS] = node;
    node->cn_fifo_next = NULL;
    node->cn_fifo_prev = s->cs_newest;
    if (s->cs_newest)
        s->cs_newest->cn_fifo_next = node;
    else
        s->cs_oldest = node;
    s->cs_newest = node;
    s->cs_count++;
    if (s->cs_count > c->c_max_per_shard) {
        evicted = s->cs_oldest;
        kms_cache_unlink(s, evicted);
    }
    pthread_mutex_unlock(&s->cs_lock);
    if (evicted != NULL) {
        c->c_unref(evicted->cn_obj);
        free(evicted);
    }
}

void kms_cache_remove(struct kms_cache *c, const char *name)
{
    uint64_t h = kms_cache_hash(name);
    struct kms_cache_shard *s = kms_cache_shard_of(c, h);
    struct kms_cache_node *n;

    /* Every shard's inserts compare against the one generation, so bump it under this lock. */
    pthread_mutex_lock(&s->cs_lock);
    atomic_fetch_add(&c->c_generation, 1);
    n = kms_cache_find(s, h, name);
    if (n != NULL)
        kms_cache_unlink(s, n);
    pthread_mutex_unlock(&s->cs_lock);
    if (n != NULL) {
        c->c_unref(n->cn_obj);
        free(n);
    }
}

void kms_cache_clear(struct kms_cache *c)
{
    atomic_fetch_add(&c->c_generation, 1);
    for (int i = 0; i < KMS_CACHE_SHARDS; i++) {
        struct kms_cache_shard *s = &c->c_shards[i];

        pthread_mutex_lock(&s->cs_lock);
        while (s->cs_oldest != NULL) {
            struct kms_cache_node *n = s->cs_oldest;

            kms_cache_unlink(s, n);
            c->c_unref(n->cn_obj);
            free(n);
        }
        pthread_mutex_unlock(&s->cs_lock);
    }
}

void kms_cache_free(struct kms_cache *c)
{
    if (c == NULL)
        return;
    kms_cache_clear(c);
    for (int i = 0; i < KMS_CACHE_SHARDS; i++)
        pthread_mutex_destroy(&c->c_shards[i].cs_lock);
    free(c);
}
