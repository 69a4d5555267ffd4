/*
 * mac.c - integrity check (spec/actions.md D4, algorithms.md §8): GenerateMac, VerifyMac.
 *
 * A MAC is HMAC under a key the keystore derives from a symmetric key version's material for
 * the algorithm (never the material itself; keystore.h ks_mac). Aliyun_SM4 keys take
 * HMAC_SM3, Aliyun_AES_256/128 keys the four SHA-2 HMACs. GenerateMac uses the primary
 * version; its response names no version, so VerifyMac tries the primary version first, then
 * every other version of the key, comparing in constant time.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "keystore/keystore.h"

#define KMS_MAC_MESSAGE_MAX 6144

/* What both actions check, in the order of spec/key-states.md §4. */
struct kms_mac_call {
    bool dry;
    enum kms_mac_alg alg;
    struct kms_buf msg;
    struct kms_key *key;
};

static kms_err kms_mac_args(struct kms_call *call, struct kms_mac_call *m, struct kms_buf *mac)
{
    const char *alg;
    kms_err rc;

    rc = kms_arg_dry_run(call, &m->dry);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "Algorithm", &alg);
    if (rc == KMS_OK && !kms_mac_alg_parse(alg, &m->alg))
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Algorithm");
    if (rc == KMS_OK)
        rc = kms_arg_base64(call, "Message", true, &m->msg, NULL);
    if (rc == KMS_OK && (m->msg.len == 0 || m->msg.len > KMS_MAC_MESSAGE_MAX))
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Message");
    if (rc == KMS_OK && mac != NULL) {
        rc = kms_arg_base64(call, "Mac", true, mac, NULL);
        if (rc == KMS_OK && mac->len == 0)
            rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Mac");
    }
    if (rc != KMS_OK)
        return rc;
    rc = kms_key_resolve(call, "KeyId", KMS_REF_ANY, &m->key);
    if (rc != KMS_OK)
        return rc;
    snprintf(call->resource, sizeof(call->resource), "key/%s", m->key->k_rec.key_id);
    if (!kms_mac_spec_supported(m->key->k_rec.spec))
        return kms_fail(call, KMS_E_UNSUPPORTED_KEY_SPEC, "KeyId");
    rc = kms_key_check_symmetric(call, &m->key->k_rec);
    if (rc != KMS_OK)
        return kms_fail(call, rc, "KeyId");
    if (!kms_mac_alg_fits(m->key->k_rec.spec, m->alg))
        return kms_fail(call, KMS_E_UNSUPPORTED_ALGORITHM, "Algorithm");
    rc = kms_key_check_usable(call, &m->key->k_rec);
    /* A keystore that cannot make MACs at all is known before anything runs. */
    if (rc == KMS_OK) {
        struct kms_keystore *ks = kms_keystore_for(m->key->k_rec.protection);

        if (ks == NULL || ks->ks_ops->ks_mac == NULL)
            rc = kms_fail(call, KMS_E_UNSUPPORTED_PROTECTION, "KeyId");
    }
    if (rc == KMS_OK && m->dry)
        rc = KMS_E_DRY_RUN;
    return rc;
}

static void kms_mac_call_free(struct kms_mac_call *m)
{
    kms_buf_free_secret(&m->msg);
    kms_key_put(m->key);
}

/* The MAC of msg with one version of the key (KMS_E_UNSUPPORTED_PROTECTION: that version
 * cannot; KMS_E_KEY_PENDING_IMPORT: it has no material). */
static kms_err kms_mac_with_version(struct kms_call *call, const struct kms_mac_call *m,
                                    const char *version_id, uint8_t out[KMS_MAC_MAX_LEN],
                                    size_t *out_len)
{
    struct kms_version *v = NULL;
    kms_err rc = kms_version_get(call, &m->key->k_rec, version_id, &v);

    if (rc == KMS_OK && v->v_ks == NULL)
        rc = KMS_E_KEY_PENDING_IMPORT;
    if (rc == KMS_OK && v->v_ks->kk_ops->ks_mac == NULL)
        rc = KMS_E_UNSUPPORTED_PROTECTION;
    if (rc == KMS_OK)
        rc = v->v_ks->kk_ops->ks_mac(v->v_ks, m->alg, (const uint8_t *)m->msg.data, m->msg.len, out,
                                     out_len);
    kms_version_put(v);
    return rc;
}

kms_err kms_api_generate_mac(struct kms_call *call)
{
    struct kms_mac_call m;
    uint8_t mac[KMS_MAC_MAX_LEN];
    size_t mac_len = 0;
    kms_err rc;

    memset(&m, 0, sizeof(m));
    rc = kms_mac_args(call, &m, NULL);
    if (rc == KMS_OK)
        rc = kms_mac_with_version(call, &m, m.key->k_rec.primary_version, mac, &mac_len);
    if (rc == KMS_E_UNSUPPORTED_PROTECTION)
        rc = kms_fail(call, rc, "KeyId");
    if (rc == KMS_OK) {
        rc |= kms_out_str(call->out, "KeyId", m.key->k_rec.key_id);
        rc |= kms_out_str(call->out, "Algorithm", kms_mac_alg_name(m.alg));
        rc |= kms_out_b64(call->out, "Mac", mac, mac_len);
        if (rc != KMS_OK)
            rc = KMS_E_INTERNAL;
    }
    OPENSSL_cleanse(mac, sizeof(mac));
    kms_mac_call_free(&m);
    return rc;
}

/* Whether any version of the key made mac: the primary first, then the others in order. */
static kms_err kms_mac_verify_versions(struct kms_call *call, const struct kms_mac_call *m,
                                       const struct kms_buf *mac, bool *valid)
{
    uint8_t mine[KMS_MAC_MAX_LEN];
    size_t mine_len = 0, tried = 0;
    char **ids = NULL;
    size_t count = 0;
    kms_err rc;

    *valid = false;
    rc = kms_store_version_list(call->db, m->key->k_rec.key_id, 0, INT64_MAX, &ids, &count);
    if (rc != KMS_OK)
        return rc;
    for (size_t i = 0; i <= count && !*valid; i++) {
        /* Round 0 is the primary version; afterwards every version but the primary. */
        const char *id = i == 0 ? m->key->k_rec.primary_version : ids[i - 1];

        if (i > 0 && strcmp(id, m->key->k_rec.primary_version) == 0)
            continue;
        rc = kms_mac_with_version(call, m, id, mine, &mine_len);
        /* A version that cannot make MACs (no material, an older token object) made none. */
        if (rc == KMS_E_UNSUPPORTED_PROTECTION || rc == KMS_E_KEY_PENDING_IMPORT) {
            rc = KMS_OK;
            continue;
        }
        if (rc != KMS_OK)
            break;
        tried++;
        *valid = mine_len == mac->len && CRYPTO_memcmp(mine, mac->data, mine_len) == 0;
    }
    OPENSSL_cleanse(mine, sizeof(mine));
    kms_store_free_list(ids, count);
    if (rc == KMS_OK && tried == 0)
        rc = kms_fail(call, KMS_E_UNSUPPORTED_PROTECTION, "KeyId");
    return rc;
}

kms_err kms_api_verify_mac(struct kms_call *call)
{
    struct kms_mac_call m;
    struct kms_buf mac = {0};
    bool valid = false;
    kms_err rc;

    memset(&m, 0, sizeof(m));
    rc = kms_mac_args(call, &m, &mac);
    if (rc == KMS_OK)
        rc = kms_mac_verify_versions(call, &m, &mac, &valid);
    if (rc == KMS_OK) {
        rc |= kms_out_str(call->out, "KeyId", m.key->k_rec.key_id);
        rc |= kms_out_str(call->out, "Algorithm", kms_mac_alg_name(m.alg));
        rc |= cJSON_AddBoolToObject(call->out, "Value", valid) ? KMS_OK : KMS_E_INTERNAL;
        if (rc != KMS_OK)
            rc = KMS_E_INTERNAL;
    }
    kms_buf_free(&mac);
    kms_mac_call_free(&m);
    return rc;
}
