/*
 * keyref.c - resolving key references (key id, ARN, alias; spec/actions.md §0.2), the key-state
 * rules for using a key (spec/key-states.md), and the caches of key metadata and loaded
 * versions that keep the crypto hot path off the database.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "keystore/keystore.h"
#include "kms/cache.h"
#include "kms/clock.h"
#include "kms/log.h"

static struct kms_cache *kms_key_cache;
static struct kms_cache *kms_version_cache;

static void kms_key_ref(void *obj)
{
    atomic_fetch_add(&((struct kms_key *)obj)->k_refs, 1);
}

static void kms_key_unref(void *obj)
{
    struct kms_key *k = obj;

    if (atomic_fetch_sub(&k->k_refs, 1) == 1) {
        kms_key_record_free(&k->k_rec);
        free(k);
    }
}

static void kms_version_ref(void *obj)
{
    atomic_fetch_add(&((struct kms_version *)obj)->v_refs, 1);
}

static void kms_version_unref(void *obj)
{
    struct kms_version *v = obj;

    if (atomic_fetch_sub(&v->v_refs, 1) == 1) {
        if (v->v_ks != NULL)
            v->v_ks->kk_ops->ks_release(v->v_ks);
        kms_pkey_free(v->v_public);
        free(v->v_public_der);
        free(v);
    }
}

kms_err kms_keyref_init(size_t capacity)
{
    kms_key_cache = kms_cache_create(capacity, kms_key_ref, kms_key_unref);
    kms_version_cache = kms_cache_create(capacity, kms_version_ref, kms_version_unref);
    return kms_key_cache && kms_version_cache ? KMS_OK : KMS_E_INTERNAL;
}

void kms_keyref_shutdown(void)
{
    kms_cache_free(kms_key_cache);
    kms_cache_free(kms_version_cache);
    kms_key_cache = kms_version_cache = NULL;
}

void kms_key_put(struct kms_key *key)
{
    if (key != NULL)
        kms_key_unref(key);
}

void kms_key_invalidate(const char *key_id)
{
    kms_cache_remove(kms_key_cache, key_id);
}

void kms_version_put(struct kms_version *v)
{
    if (v != NULL)
        kms_version_unref(v);
}

void kms_version_invalidate(const char *version_id)
{
    kms_cache_remove(kms_version_cache, version_id);
}

enum kms_key_state kms_key_effective_state(const struct kms_key_record *k, time_t now)
{
    /* Expired imported material reads as deleted until the sweeper writes it down. */
    if (k->origin == KMS_ORIGIN_EXTERNAL && k->material_expire_at != 0 &&
        k->material_expire_at <= now &&
        (k->state == KMS_STATE_ENABLED || k->state == KMS_STATE_DISABLED))
        return KMS_STATE_PENDING_IMPORT;
    return k->state;
}

kms_err kms_key_check_usable(struct kms_call *call, const struct kms_key_record *k)
{
    switch (kms_key_effective_state(k, call->now)) {
    case KMS_STATE_ENABLED:
        return KMS_OK;
    case KMS_STATE_DISABLED:
        return KMS_E_KEY_DISABLED;
    case KMS_STATE_PENDING_DELETION:
        return KMS_E_KEY_PENDING_DELETION;
    case KMS_STATE_PENDING_IMPORT:
        return KMS_E_KEY_PENDING_IMPORT;
    }
    return KMS_E_INTERNAL;
}

static kms_err kms_key_load(struct kms_call *call, const char *key_id, struct kms_key **out)
{
    struct kms_key *k = kms_cache_get(kms_key_cache, key_id);
    uint64_t gen;
    kms_err rc;

    if (k == NULL) {
        gen = kms_cache_generation(kms_key_cache);
        k = calloc(1, sizeof(*k));
        if (k == NULL)
            return KMS_E_INTERNAL;
        rc = kms_store_key_get(call->db, key_id, &k->k_rec);
        if (rc != KMS_OK) {
            free(k);
            return rc;
        }
        atomic_store(&k->k_refs, 1);
        kms_cache_insert(kms_key_cache, key_id, k, gen);
    }
    /* A key whose DeleteDate has passed is gone, even before the sweeper removes it. */
    if (k->k_rec.state == KMS_STATE_PENDING_DELETION && k->k_rec.delete_at <= call->now) {
        kms_key_put(k);
        return KMS_E_KEY_NOT_FOUND;
    }
    *out = k;
    return KMS_OK;
}

kms_err kms_key_lookup(struct kms_call *call, const char *key_id, struct kms_key **out)
{
    if (strlen(key_id) >= KMS_ID_MAX)
        return KMS_E_KEY_NOT_FOUND;
    return kms_key_load(call, key_id, out);
}

/* acs:kms:<region>:<account>:key/<KeyId> -> KeyId, when region and account are ours. */
static kms_err kms_key_from_arn(struct kms_call *call, const char *arn, const char **key_id)
{
    size_t region_len = strlen(call->cfg->region);
    size_t account_len = strlen(call->cfg->account_id);
    const char *p = arn + strlen("acs:kms:");

    if (strncmp(p, call->cfg->region, region_len) != 0 || p[region_len] != ':')
        return KMS_E_KEY_NOT_FOUND;
    p += region_len + 1;
    if (strncmp(p, call->cfg->account_id, account_len) != 0 || p[account_len] != ':')
        return KMS_E_KEY_NOT_FOUND;
    p += account_len + 1;
    if (strncmp(p, "key/", 4) != 0 || p[4] == '\0')
        return KMS_E_KEY_NOT_FOUND;
    *key_id = p + 4;
    return KMS_OK;
}

kms_err kms_key_name_value(struct kms_call *call, const char *param, const char *ref,
                           enum kms_ref_mode mode, char key_id[KMS_ID_MAX])
{
    const char *id = ref;
    kms_err rc;

    if (strncmp(ref, "alias/", 6) == 0) {
        if (mode == KMS_REF_ID_ONLY)
            return kms_fail(call, KMS_E_UNSUPPORTED_ALIAS, param);
        return kms_store_alias_get(call->db, ref, key_id);
    }
    if (strncmp(ref, "acs:kms:", 8) == 0) {
        rc = kms_key_from_arn(call, ref, &id);
        if (rc != KMS_OK)
            return rc;
    }
    if (strlen(id) >= KMS_ID_MAX)
        return KMS_E_KEY_NOT_FOUND;
    memcpy(key_id, id, strlen(id) + 1);
    return KMS_OK;
}

kms_err kms_key_name(struct kms_call *call, const char *param, enum kms_ref_mode mode,
                     char key_id[KMS_ID_MAX])
{
    const char *ref;
    kms_err rc = kms_arg_required(call, param, &ref);

    if (rc != KMS_OK)
        return rc;
    return kms_key_name_value(call, param, ref, mode, key_id);
}

kms_err kms_key_resolve(struct kms_call *call, const char *param, enum kms_ref_mode mode,
                        struct kms_key **out)
{
    char key_id[KMS_ID_MAX];
    kms_err rc;

    rc = kms_key_name(call, param, mode, key_id);
    if (rc != KMS_OK)
        return rc;
    rc = kms_key_lookup(call, key_id, out);
    if (rc != KMS_OK)
        return rc;
    /* Service-managed keys exist for the secrets manager only. */
    if ((*out)->k_rec.internal) {
        kms_key_put(*out);
        *out = NULL;
        return KMS_E_KEY_NOT_FOUND;
    }
    snprintf(call->resource, sizeof(call->resource), "key/%s", (*out)->k_rec.key_id);
    return KMS_OK;
}

kms_err kms_version_get(struct kms_call *call, const struct kms_key_record *key,
                        const char *version_id, struct kms_version **out)
{
    struct kms_version_record rec;
    struct kms_version *v;
    struct kms_keystore *ks;
    uint64_t gen;
    kms_err rc;

    v = kms_cache_get(kms_version_cache, version_id);
    if (v != NULL) {
        if (strcmp(v->v_key_id, key->key_id) != 0) {
            kms_version_put(v);
            return KMS_E_KEY_VERSION_NOT_FOUND;
        }
        *out = v;
        return KMS_OK;
    }
    gen = kms_cache_generation(kms_version_cache);
    rc = kms_store_version_get(call->db, version_id, &rec);
    if (rc != KMS_OK)
        return rc;
    if (strcmp(rec.key_id, key->key_id) != 0) {
        kms_version_record_free(&rec);
        return KMS_E_KEY_VERSION_NOT_FOUND;
    }
    v = calloc(1, sizeof(*v));
    if (v == NULL) {
        kms_version_record_free(&rec);
        return KMS_E_INTERNAL;
    }
    atomic_store(&v->v_refs, 1);
    memcpy(v->v_version_id, rec.version_id, sizeof(v->v_version_id));
    memcpy(v->v_key_id, rec.key_id, sizeof(v->v_key_id));
    v->v_spec = key->spec;
    v->v_protection = key->protection;
    v->v_created_at = rec.created_at;
    v->v_public_der = rec.public_der;
    v->v_public_der_len = rec.public_der_len;
    rec.public_der = NULL;
    ks = kms_keystore_for(key->protection);
    rc = KMS_OK;
    /* Parsed once per load: OpenSSL 3's decoders cost hundreds of microseconds per call. */
    if (v->v_public_der != NULL &&
        kms_pkey_parse_public(v->v_public_der, v->v_public_der_len, &v->v_public, NULL) != KMS_OK) {
        kms_log_error("keyref: the public key of version %s does not parse", rec.version_id);
        rc = KMS_E_INTERNAL;
    } else if (ks == NULL) {
        kms_log_error("keyref: key %s needs the %s keystore, which is not configured", key->key_id,
                      kms_protection_name(key->protection));
        rc = KMS_E_UNAVAILABLE;
    } else if (rec.material != NULL || key->protection == KMS_PROTECTION_HSM) {
        struct kms_ks_ref ref = {key->key_id, rec.version_id, key->spec};

        rc = ks->ks_ops->ks_load(ks, &ref, rec.material, rec.material_len, &v->v_ks);
    }
    kms_version_record_free(&rec);
    if (rc != KMS_OK) {
        kms_version_put(v);
        return rc;
    }
    kms_cache_insert(kms_version_cache, version_id, v, gen);
    *out = v;
    return KMS_OK;
}

kms_err kms_version_owner(struct kms_call *call, const char *version_id, char key_id[KMS_ID_MAX])
{
    struct kms_version *v = kms_cache_get(kms_version_cache, version_id);
    struct kms_version_record rec;
    kms_err rc;

    if (v != NULL) {
        memcpy(key_id, v->v_key_id, KMS_ID_MAX);
        kms_version_put(v);
        return KMS_OK;
    }
    rc = kms_store_version_get(call->db, version_id, &rec);
    if (rc != KMS_OK)
        return rc;
    memcpy(key_id, rec.key_id, KMS_ID_MAX);
    kms_version_record_free(&rec);
    return KMS_OK;
}
