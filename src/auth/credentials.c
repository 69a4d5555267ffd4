/*
 * credentials.c - access keys: the admin key made on first start, and looking up an
 * AccessKeyId's secret for signature checks (cached in memory; stored sealed by the master key).
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "keystore/keystore.h"
#include "kms/auth.h"
#include "kms/cache.h"
#include "kms/log.h"
#include "kms/store.h"

#define KMS_SECRET_LEN       30
#define KMS_ADMIN_ID_RANDOM  16
#define KMS_CREDENTIAL_CACHE 10000

static struct kms_cache *kms_credential_cache;

static const char kms_alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* n characters from [A-Za-z0-9], uniformly (rejection sampling, no modulo bias). */
kms_err kms_random_alnum(char *out, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char r[64];

        if (RAND_bytes(r, sizeof(r)) != 1)
            return KMS_E_INTERNAL;
        for (size_t k = 0; k < sizeof(r) && i < n; k++)
            if (r[k] < 248) /* 248 = 4 * 62 */
                out[i++] = kms_alnum[r[k] % 62];
        OPENSSL_cleanse(r, sizeof(r));
    }
    out[n] = '\0';
    return KMS_OK;
}

/* The AAD that binds a sealed secret to its AccessKeyId. */
kms_err kms_credential_aad(const char *id, struct kms_buf *aad)
{
    kms_err rc = kms_buf_append_str(aad, "kmsd access-key secret v1:");

    return rc == KMS_OK ? kms_buf_append_str(aad, id) : rc;
}

kms_err kms_credentials_create(struct kms_db *db, const char *id, const char *secret, bool admin,
                               const char *aap_name, const char *description, int64_t now)
{
    struct kms_access_key_record rec;
    struct kms_buf aad = {0}, sealed = {0};
    kms_err rc;

    memset(&rec, 0, sizeof(rec));
    if (strlen(id) >= sizeof(rec.access_key_id) || strlen(aap_name) >= sizeof(rec.aap_name))
        return KMS_E_INVALID_PARAMETER;
    rc = kms_credential_aad(id, &aad);
    if (rc == KMS_OK)
        rc = kms_keystore_seal_secret(aad.data, aad.len, (const uint8_t *)secret, strlen(secret),
                                      &sealed);
    if (rc == KMS_OK) {
        snprintf(rec.access_key_id, sizeof(rec.access_key_id), "%s", id);
        snprintf(rec.aap_name, sizeof(rec.aap_name), "%s", aap_name);
        rec.secret_wrapped = (uint8_t *)sealed.data;
        rec.secret_wrapped_len = sealed.len;
        rec.admin = admin;
        rec.description = (char *)description;
        rec.enabled = true;
        rec.created_at = now;
        rc = kms_store_access_key_insert(db, &rec);
    }
    kms_buf_free(&aad);
    kms_buf_free(&sealed);
    return rc;
}

kms_err kms_credentials_create_for_aap(struct kms_db *db, const char *aap_name, int max_per_aap,
                                       const char *id, const char *secret, const char *description,
                                       int64_t now)
{
    struct kms_aap_record aap;
    int64_t count = 0;
    kms_err rc = kms_store_aap_get(db, aap_name, &aap);

    if (rc != KMS_OK)
        return rc;
    if (strcmp(aap.auth_method, KMS_AAP_ACCESS_KEY) != 0)
        rc = KMS_E_INVALID_PARAMETER;
    kms_aap_record_free(&aap);
    if (rc == KMS_OK)
        rc = kms_store_access_key_count_aap(db, aap_name, &count);
    if (rc == KMS_OK && count >= max_per_aap)
        rc = KMS_E_LIMIT_EXCEEDED;
    if (rc == KMS_OK)
        rc = kms_credentials_create(db, id, secret, false, aap_name, description, now);
    return rc;
}

static void kms_credential_ref(void *obj)
{
    atomic_fetch_add(&((struct kms_credential *)obj)->cr_refs, 1);
}

static void kms_credential_unref(void *obj)
{
    struct kms_credential *c = obj;

    if (atomic_fetch_sub(&c->cr_refs, 1) == 1) {
        OPENSSL_cleanse(c, sizeof(*c));
        free(c);
    }
}

kms_err kms_credentials_init(void)
{
    kms_credential_cache =
        kms_cache_create(KMS_CREDENTIAL_CACHE, kms_credential_ref, kms_credential_unref);
    return kms_credential_cache ? KMS_OK : KMS_E_INTERNAL;
}

void kms_credentials_shutdown(void)
{
    kms_cache_free(kms_credential_cache);
    kms_credential_cache = NULL;
}

void kms_credential_put(struct kms_credential *c)
{
    if (c != NULL)
        kms_credential_unref(c);
}

void kms_credentials_invalidate(const char *id)
{
    kms_cache_remove(kms_credential_cache, id);
}

kms_err kms_credentials_lookup(struct kms_db *db, const char *id, struct kms_credential **out)
{
    struct kms_access_key_record rec;
    struct kms_buf aad = {0}, secret = {0};
    struct kms_credential *c;
    uint64_t gen;
    kms_err rc;

    if (strlen(id) >= KMS_ID_MAX)
        return KMS_E_ACCESS_KEY_NOT_FOUND;
    c = kms_cache_get(kms_credential_cache, id);
    if (c != NULL) {
        *out = c;
        return KMS_OK;
    }
    gen = kms_cache_generation(kms_credential_cache);
    rc = kms_store_access_key_get(db, id, &rec);
    if (rc != KMS_OK)
        return rc;
    c = calloc(1, sizeof(*c));
    rc = c ? kms_credential_aad(id, &aad) : KMS_E_INTERNAL;
    if (rc == KMS_OK)
        rc = kms_keystore_open_secret(aad.data, aad.len, rec.secret_wrapped, rec.secret_wrapped_len,
                                      &secret);
    if (rc == KMS_OK && secret.len >= sizeof(c->cr_secret))
        rc = KMS_E_INTERNAL;
    if (rc != KMS_OK) {
        kms_log_error("auth: the secret of access key %s does not unseal", id);
        free(c);
        goto out;
    }
    atomic_store(&c->cr_refs, 1);
    snprintf(c->cr_id, sizeof(c->cr_id), "%s", rec.access_key_id);
    memcpy(c->cr_secret, secret.data, secret.len);
    c->cr_secret_len = secret.len;
    c->cr_admin = rec.admin;
    c->cr_enabled = rec.enabled;
    snprintf(c->cr_aap_name, sizeof(c->cr_aap_name), "%s", rec.aap_name);
    kms_cache_insert(kms_credential_cache, id, c, gen);
    *out = c;
out:
    kms_buf_free(&aad);
    kms_buf_free_secret(&secret);
    kms_access_key_record_free(&rec);
    return rc;
}

/* Shows a generated secret once, on the controlling terminal only (never a log or a pipe). */
static void kms_show_admin_secret(const char *id, const char *secret)
{
    int fd = open("/dev/tty", O_WRONLY | O_NOCTTY | O_CLOEXEC);
    char msg[512];
    int n;

    if (fd < 0) {
        kms_log_warn("auth: created admin access key %s; its secret is not shown because no "
                     "terminal is attached (start on an empty data directory with "
                     "KMSD_ADMIN_ACCESS_KEY_ID/KMSD_ADMIN_ACCESS_KEY_SECRET to choose it)",
                     id);
        return;
    }
    n = snprintf(msg, sizeof(msg),
                 "\nkmsd: created the admin access key. The secret is shown only this once:\n"
                 "  AccessKeyId:     %s\n"
                 "  AccessKeySecret: %s\n\n",
                 id, secret);
    if (n > 0 && write(fd, msg, (size_t)n) != n)
        kms_log_warn("auth: could not show the admin secret on the terminal");
    OPENSSL_cleanse(msg, sizeof(msg));
    close(fd);
}

kms_err kms_credentials_bootstrap(struct kms_db *db, int64_t now)
{
    const char *env_id = getenv("KMSD_ADMIN_ACCESS_KEY_ID");
    const char *env_secret = getenv("KMSD_ADMIN_ACCESS_KEY_SECRET");
    char id[KMS_ID_MAX], secret[KMS_ID_MAX];
    struct kms_access_key_record rec;
    int64_t admins = 0;
    bool generated = false;
    kms_err rc;

    if (env_id != NULL && env_id[0] == '\0')
        env_id = NULL;
    rc = kms_store_access_key_count(db, true, &admins);
    if (rc != KMS_OK)
        return rc;
    if (admins > 0) {
        /* Later starts ignore the environment; say so when it names another key. */
        if (env_id != NULL && kms_store_access_key_get(db, env_id, &rec) != KMS_OK)
            kms_log_warn("auth: KMSD_ADMIN_ACCESS_KEY_ID names %s, which is not an access key "
                         "of this data directory; the environment is only read on first start",
                         env_id);
        else if (env_id != NULL)
            kms_access_key_record_free(&rec);
        return KMS_OK;
    }
    if (env_id != NULL) {
        if (env_secret == NULL || strlen(env_secret) < 8 || strlen(env_secret) >= sizeof(secret) ||
            strlen(env_id) >= sizeof(id)) {
            kms_log_error("auth: KMSD_ADMIN_ACCESS_KEY_ID needs KMSD_ADMIN_ACCESS_KEY_SECRET "
                          "(8 to %zu characters)",
                          sizeof(secret) - 1);
            return KMS_E_INVALID_PARAMETER;
        }
        snprintf(id, sizeof(id), "%s", env_id);
        snprintf(secret, sizeof(secret), "%s", env_secret);
    } else {
        memcpy(id, "KMSD", 4);
        rc = kms_random_alnum(id + 4, KMS_ADMIN_ID_RANDOM);
        if (rc == KMS_OK)
            rc = kms_random_alnum(secret, KMS_SECRET_LEN);
        if (rc != KMS_OK)
            return rc;
        generated = true;
    }
    rc = kms_store_begin(db);
    if (rc == KMS_OK)
        rc = kms_credentials_create(db, id, secret, true, "", "admin", now);
    if (rc == KMS_OK)
        rc = kms_store_commit(db);
    else
        kms_store_rollback(db);
    if (rc == KMS_OK) {
        kms_log_info("auth: admin access key %s created", id);
        if (generated)
            kms_show_admin_secret(id, secret);
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    return rc;
}
