/*
 * authenticate.c - who signed this request: the common checks of spec/protocol.md §3 in their
 * order (signature parameters, AccessKeyId, timestamp window, signature, nonce replay) for both
 * signature versions, and the replay cache's life (load at start, batched flush, final flush).
 *
 * The nonce is recorded only after the signature verified, so nobody can burn another
 * caller's nonces with unsigned requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "kms/api.h"
#include "kms/auth.h"
#include "kms/log.h"
#include "kms/store.h"

#define KMS_NONCE_FLUSH_BATCH 4096 /* nonces per stored row (64 KiB) */
#define KMS_NONCE_FLUSH_ROWS  4    /* rows per flush transaction */
#define KMS_NONCE_KEY_NAME    "nonce_hash_key"

static struct kms_nonce_cache *kms_nonces;
static const struct kms_config *kms_auth_cfg;

struct kms_nonce_loader {
    struct kms_nonce_entry *nl_batch;
    size_t nl_count;
    int64_t nl_now;
    kms_err nl_rc;
};

static void kms_nonce_load_one(uint64_t hash, int64_t expires_at, void *arg)
{
    struct kms_nonce_loader *l = arg;

    l->nl_batch[l->nl_count].hash = hash;
    l->nl_batch[l->nl_count].expires_at = expires_at;
    if (++l->nl_count == KMS_NONCE_FLUSH_BATCH) {
        if (l->nl_rc == KMS_OK)
            l->nl_rc = kms_nonce_load(kms_nonces, l->nl_batch, l->nl_count, l->nl_now);
        l->nl_count = 0;
    }
}

/* The SipHash key is kept in the store so that reloaded nonce hashes match. */
static kms_err kms_nonce_hash_key(struct kms_db *db, uint8_t key[16])
{
    struct kms_buf b = {0};
    kms_err rc = kms_store_meta_get(db, KMS_NONCE_KEY_NAME, &b);

    if (rc == KMS_OK && b.len == 16) {
        memcpy(key, b.data, 16);
    } else if (rc == KMS_E_RESOURCE_NOT_FOUND) {
        rc = RAND_bytes(key, 16) == 1 ? KMS_OK : KMS_E_INTERNAL;
        if (rc == KMS_OK)
            rc = kms_store_meta_set(db, KMS_NONCE_KEY_NAME, key, 16);
    } else if (rc == KMS_OK) {
        rc = KMS_E_INTERNAL;
    }
    kms_buf_free(&b);
    return rc;
}

kms_err kms_auth_init(const struct kms_config *cfg)
{
    struct kms_db *db = kms_store_thread();
    struct kms_nonce_loader loader = {0};
    uint8_t key[16];
    kms_err rc;

    kms_auth_cfg = cfg;
    if (db == NULL)
        return KMS_E_INTERNAL;
    rc = kms_credentials_init();
    if (rc == KMS_OK)
        rc = kms_policy_init();
    if (rc == KMS_OK)
        rc = kms_nonce_hash_key(db, key);
    if (rc == KMS_OK)
        rc = kms_nonce_cache_create(cfg->replay_cache_capacity, key, &kms_nonces);
    if (rc != KMS_OK)
        return rc;
    loader.nl_batch = calloc(KMS_NONCE_FLUSH_BATCH, sizeof(*loader.nl_batch));
    if (loader.nl_batch == NULL)
        return KMS_E_INTERNAL;
    loader.nl_now = time(NULL);
    rc = kms_store_nonces_load(db, loader.nl_now, kms_nonce_load_one, &loader);
    if (rc == KMS_OK)
        rc = loader.nl_rc;
    if (rc == KMS_OK && loader.nl_count > 0)
        rc = kms_nonce_load(kms_nonces, loader.nl_batch, loader.nl_count, loader.nl_now);
    free(loader.nl_batch);
    if (rc != KMS_OK)
        kms_log_error("auth: cannot reload the replay cache from the store");
    return rc;
}

void kms_auth_shutdown(void)
{
    kms_nonce_cache_free(kms_nonces);
    kms_nonces = NULL;
    kms_policy_shutdown();
    kms_credentials_shutdown();
}

/* Entries whose flush queue was full still guard against replays, but not after a crash. */
static void kms_auth_warn_unpersisted(void)
{
    static uint64_t reported; /* the flush runs on one thread at a time */
    uint64_t dropped = kms_nonce_drain_dropped(kms_nonces);

    if (dropped > reported) {
        kms_log_warn("auth: %llu replay-cache entries found the flush queue full and will not "
                     "survive a crash",
                     (unsigned long long)(dropped - reported));
        reported = dropped;
    }
}

void kms_auth_flush(bool all)
{
    struct kms_nonce_entry *batch;
    uint64_t *hashes;
    int64_t *expires;
    struct kms_db *db;
    size_t n;

    if (kms_nonces == NULL)
        return;
    db = kms_store_thread();
    if (db == NULL)
        return;
    batch = malloc(KMS_NONCE_FLUSH_BATCH * sizeof(*batch));
    hashes = malloc(KMS_NONCE_FLUSH_BATCH * sizeof(*hashes));
    expires = malloc(KMS_NONCE_FLUSH_BATCH * sizeof(*expires));
    n = batch && hashes && expires ? kms_nonce_drain(kms_nonces, batch, KMS_NONCE_FLUSH_BATCH) : 0;
    /*
     * One transaction, hence one durable commit (WAL frames, fsync), per pass: up to
     * KMS_NONCE_FLUSH_ROWS rows of up to KMS_NONCE_FLUSH_BATCH nonces each, one row per drain
     * (src/store/nonces.c). At a pass every 100 ms that keeps up with 160k requests/s.
     */
    while (n > 0) {
        size_t in_tx = 0, rows = 0;
        kms_err rc = kms_store_begin(db);

        while (rc == KMS_OK && n > 0) {
            for (size_t i = 0; i < n; i++) {
                hashes[i] = batch[i].hash;
                expires[i] = batch[i].expires_at;
            }
            rc = kms_store_nonces_put(db, hashes, expires, n);
            in_tx += n;
            n = rc == KMS_OK && ++rows < KMS_NONCE_FLUSH_ROWS
                    ? kms_nonce_drain(kms_nonces, batch, KMS_NONCE_FLUSH_BATCH)
                    : 0;
        }
        if (rc == KMS_OK)
            rc = kms_store_commit(db);
        if (rc != KMS_OK) {
            kms_store_rollback(db);
            kms_log_warn("auth: could not persist %zu replay-cache entries", in_tx);
        }
        if (!all)
            break;
        n = kms_nonce_drain(kms_nonces, batch, KMS_NONCE_FLUSH_BATCH);
    }
    free(batch);
    free(hashes);
    free(expires);
    kms_auth_warn_unpersisted();
}

/* Timestamp / x-acs-date: present, well-formed, within the window of the real clock. */
static kms_err kms_auth_check_time(const char *value, time_t *out)
{
    time_t t, now = time(NULL);

    if (value == NULL || value[0] == '\0')
        return KMS_E_TIMESTAMP_MISSING;
    if (!kms_time_parse(value, &t))
        return KMS_E_TIMESTAMP_MALFORMED;
    if (t < now - kms_auth_cfg->timestamp_window || t > now + kms_auth_cfg->timestamp_window)
        return KMS_E_TIMESTAMP_EXPIRED;
    *out = t;
    return KMS_OK;
}

static kms_err kms_auth_nonce(struct kms_call *call, const char *id, const char *nonce,
                              const char *param, time_t signed_at)
{
    time_t now = time(NULL);
    /*
     * A replay is possible while the request's timestamp is inside the window, that is until
     * signed_at + window (kms_auth_check_time refuses it after that): remembered exactly so long.
     */
    int64_t expires = (int64_t)signed_at + kms_auth_cfg->timestamp_window;

    if (nonce == NULL || nonce[0] == '\0') {
        if (kms_auth_cfg->require_nonce)
            return kms_fail(call, KMS_E_MISSING_PARAMETER, param);
        return KMS_OK;
    }
    return kms_nonce_check_and_record(kms_nonces, id, nonce, strlen(nonce), now, expires + 1);
}

static kms_err kms_auth_principal(struct kms_call *call, const char *id,
                                  struct kms_credential **out)
{
    struct kms_db *db = kms_store_thread();
    kms_err rc;

    if (db == NULL)
        return KMS_E_UNAVAILABLE;
    rc = kms_credentials_lookup(db, id, out);
    if (rc != KMS_OK)
        return rc;
    if (!(*out)->cr_enabled) {
        kms_credential_put(*out);
        *out = NULL;
        return KMS_E_ACCESS_KEY_DISABLED;
    }
    /* A stored id always fits; checked so that no build can copy a longer one in part. */
    if (strlen(id) >= sizeof(call->principal.access_key_id)) {
        kms_credential_put(*out);
        *out = NULL;
        return KMS_E_ACCESS_KEY_NOT_FOUND;
    }
    memcpy(call->principal.access_key_id, id, strlen(id) + 1);
    call->principal.admin = (*out)->cr_admin;
    snprintf(call->principal.aap_name, sizeof(call->principal.aap_name), "%s", (*out)->cr_aap_name);
    return KMS_OK;
}

static kms_err kms_auth_v1(struct kms_call *call)
{
    const char *method = kms_arg(call, "SignatureMethod");
    const char *version = kms_arg(call, "SignatureVersion");
    const char *signature = kms_arg(call, "Signature");
    const char *id = kms_arg(call, "AccessKeyId");
    struct kms_credential *cred = NULL;
    char expected[KMS_SIG_V1_LEN + 1];
    struct kms_buf sts = {0};
    time_t signed_at = 0;
    kms_err rc;

    if (signature == NULL || method == NULL || version == NULL)
        return kms_fail(call, KMS_E_INCOMPLETE_SIGNATURE, NULL);
    if (strcmp(method, "HMAC-SHA1") != 0 || strcmp(version, "1.0") != 0)
        return KMS_E_INCOMPLETE_SIGNATURE;
    if (id == NULL)
        return kms_fail(call, KMS_E_MISSING_PARAMETER, "AccessKeyId");
    rc = kms_auth_principal(call, id, &cred);
    if (rc == KMS_OK)
        rc = kms_auth_check_time(kms_arg(call, "Timestamp"), &signed_at);
    if (rc == KMS_OK)
        rc = kms_sig_v1_string_to_sign(&sts, call->req->method, &call->params);
    if (rc == KMS_OK)
        rc = kms_sig_v1_sign(cred->cr_secret, cred->cr_secret_len, sts.data, sts.len, expected);
    if (rc == KMS_OK && !kms_ct_equal(expected, strlen(expected), signature, strlen(signature)))
        rc = kms_fail(call, KMS_E_SIGNATURE_MISMATCH, sts.data);
    if (rc == KMS_OK)
        rc = kms_auth_nonce(call, id, kms_arg(call, "SignatureNonce"), "SignatureNonce", signed_at);
    kms_credential_put(cred);
    /* The canonical query in it carries every parameter, Plaintext included. */
    kms_buf_free_secret(&sts);
    return rc;
}

static kms_err kms_auth_v3(struct kms_call *call)
{
    const char *authorization = kms_request_header(call->req, "authorization");
    struct kms_credential *cred = NULL;
    struct kms_sig_v3_auth auth;
    char expected[KMS_SIG_V3_HEX_LEN + 1];
    struct kms_buf sts = {0};
    time_t signed_at = 0;
    kms_err rc;

    rc = kms_sig_v3_parse(authorization, &auth);
    if (rc == KMS_OK)
        rc = kms_sig_v3_check(call->req, &auth);
    if (rc == KMS_OK)
        rc = kms_auth_principal(call, auth.credential, &cred);
    if (rc == KMS_OK)
        rc = kms_auth_check_time(kms_request_header(call->req, "x-acs-date"), &signed_at);
    if (rc == KMS_OK)
        rc = kms_sig_v3_string_to_sign(&sts, NULL, call->req, &call->params, &auth);
    if (rc == KMS_OK)
        rc = kms_sig_v3_sign(auth.alg, cred->cr_secret, cred->cr_secret_len, sts.data, sts.len,
                             expected);
    if (rc == KMS_OK &&
        !kms_ct_equal(expected, strlen(expected), auth.signature, strlen(auth.signature)))
        rc = kms_fail(call, KMS_E_SIGNATURE_MISMATCH, sts.data);
    if (rc == KMS_OK)
        rc = kms_auth_nonce(call, auth.credential,
                            kms_request_header(call->req, "x-acs-signature-nonce"),
                            "x-acs-signature-nonce", signed_at);
    kms_credential_put(cred);
    /* The canonical query in it carries every parameter, Plaintext included. */
    kms_buf_free_secret(&sts);
    return rc;
}

kms_err kms_authenticate(struct kms_call *call, bool v3)
{
    return v3 ? kms_auth_v3(call) : kms_auth_v1(call);
}

void kms_auth_replay_stats(size_t *live, size_t *capacity, uint64_t *unpersisted)
{
    *live = 0;
    *capacity = 0;
    *unpersisted = 0;
    if (kms_nonces == NULL)
        return;
    *live = kms_nonce_cache_live(kms_nonces, time(NULL));
    *capacity = kms_auth_cfg->replay_cache_capacity;
    *unpersisted = kms_nonce_drain_dropped(kms_nonces);
}
