/*
 * cache.h - a bounded, thread-safe, string-keyed cache of reference-counted objects.
 *
 * Used for key metadata, loaded key versions and access-key credentials, so the crypto hot
 * path reads no database. Objects are shared: kms_cache_get() returns one with a reference
 * taken, which the caller drops with the cache's unref function. Invalidation bumps a
 * generation counter, and an insert prepared under an older generation is dropped, so a loader
 * racing with a writer can never put a stale copy back.
 */
#ifndef KMS_CACHE_H
#define KMS_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct kms_cache;

/* ref/unref adjust the object's own reference count; unref frees it at zero. */
struct kms_cache *kms_cache_create(size_t capacity, void (*ref)(void *obj),
                                   void (*unref)(void *obj));
void kms_cache_free(struct kms_cache *c);
/* The object cached under name, with a reference taken, or NULL. */
void *kms_cache_get(struct kms_cache *c, const char *name);
/* Read before loading from the store; pass to kms_cache_insert. */
uint64_t kms_cache_generation(struct kms_cache *c);
/* Caches obj (taking a reference) unless an invalidation happened since generation. */
void kms_cache_insert(struct kms_cache *c, const char *name, void *obj, uint64_t generation);
/* Drops name (if cached) and bumps the generation. */
void kms_cache_remove(struct kms_cache *c, const char *name);
/* Drops everything and bumps the generation. */
void kms_cache_clear(struct kms_cache *c);

#endif
