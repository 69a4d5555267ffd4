/*
 * access_credentials.c - the credentials of application access points: client keys
 * (spec/actions.md I4; managed objects only, they never authenticate a request to kmsd) and
 * access keys (I5, a kmsd extension after Tianyi's AK/SK per access point), which sign requests
 * like the admin key and are authorized by their AAP's policies.
 *
 * Secrets are shown once: the client key's PKCS#12 and the access key's secret appear only in
 * the Create response (whose strings the dispatcher wipes after sending). kmsd keeps the client
 * key's certificate and the access key's secret sealed by the master key (credentials.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "kms/auth.h"
#include "kms/crypto.h"

#define KMS_CLIENT_KEY_PREFIX    "KAAP."
#define KMS_CLIENT_KEY_ALGORITHM "RSA_2048"
#define KMS_CLIENT_KEY_ORIGIN    "KMS_PROVIDED"
#define KMS_CLIENT_KEY_YEARS     5              /* default validity */
#define KMS_TIME_LAST            253402300799LL /* 9999-12-31T23:59:59Z: the wire format's end */
#define KMS_PASSWORD_MIN         8
#define KMS_PASSWORD_MAX         64
#define KMS_ACCESS_KEY_PREFIX    "AKkmsd"
#define KMS_ACCESS_KEY_RANDOM    18 /* characters after the prefix: 24 in all */
#define KMS_ACCESS_SECRET_LEN    30
#define KMS_ACCESS_KEY_ATTEMPTS  3 /* fresh ids to try should one collide */
#define KMS_PAGE_SIZE_ACCESS     20

/* The AAP name of a credential action must exist and use method; anything else is refused. */
static kms_err kms_credential_aap(struct kms_call *call, const char *name, const char *method)
{
    struct kms_aap_record aap;
    kms_err rc = kms_store_aap_get(call->db, name, &aap);

    if (rc != KMS_OK)
        return rc;
    if (method != NULL && strcmp(aap.auth_method, method) != 0)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "AapName");
    kms_aap_record_free(&aap);
    return rc;
}

/* ---- client keys (I4) ---- */

/* 8-64 characters, at least two kinds of: digits, letters, the special characters of [go-sdk]
 * (~ ! @ # $ % ^ & - ? _, and '*', which its Markdown probably lost); nothing else. */
static bool kms_client_key_password_valid(const char *pw)
{
    size_t len = strlen(pw);
    bool digit = false, letter = false, special = false;

    if (len < KMS_PASSWORD_MIN || len > KMS_PASSWORD_MAX)
        return false;
    for (const char *p = pw; *p; p++) {
        char c = *p;

        if (c >= '0' && c <= '9')
            digit = true;
        else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
            letter = true;
        else if (strchr("~!@#$%^&-?_*", c) != NULL)
            special = true;
        else
            return false;
    }
    return digit + letter + special >= 2;
}

static int64_t kms_add_years(int64_t t, int years)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    tm.tm_year += years;
    return (int64_t)timegm(&tm);
}

/* A wire time parameter; *out unchanged when absent. */
static kms_err kms_time_arg(struct kms_call *call, const char *name, int64_t *out)
{
    const char *v = kms_arg(call, name);
    time_t t;

    if (v == NULL)
        return KMS_OK;
    if (!kms_time_parse(v, &t))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, name);
    *out = (int64_t)t;
    return KMS_OK;
}

static kms_err kms_out_client_key(cJSON *obj, const struct kms_client_key_record *c)
{
    kms_err rc = kms_out_str(obj, "ClientKeyId", c->client_key_id);

    rc |= kms_out_str(obj, "AapName", c->aap_name);
    rc |= kms_out_str(obj, "KeyAlgorithm", c->key_algorithm);
    rc |= kms_out_str(obj, "KeyOrigin", KMS_CLIENT_KEY_ORIGIN);
    rc |= kms_out_time(obj, "NotBefore", c->not_before);
    rc |= kms_out_time(obj, "NotAfter", c->not_after);
    rc |= kms_out_time(obj, "CreateTime", c->created_at);
    rc |= kms_out_str(obj, "PublicKeyData", c->public_cert);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}

kms_err kms_api_create_client_key(struct kms_call *call)
{
    struct kms_client_key_record rec;
    struct kms_buf p12 = {0}, pem = {0};
    const char *aap_name, *password;
    char uuid[KMS_UUID_LEN];
    int64_t not_before = call->now, not_after = 0;
    kms_err rc;

    memset(&rec, 0, sizeof(rec));
    rc = kms_access_name_arg(call, "AapName", &aap_name);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "Password", &password);
    if (rc == KMS_OK && !kms_client_key_password_valid(password))
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Password");
    if (rc == KMS_OK && kms_arg(call, "NotAfter") != NULL && kms_arg(call, "NotBefore") == NULL)
        rc = kms_fail(call, KMS_E_MISSING_PARAMETER, "NotBefore");
    if (rc == KMS_OK)
        rc = kms_time_arg(call, "NotBefore", &not_before);
    if (rc == KMS_OK) {
        not_after = kms_add_years(not_before, KMS_CLIENT_KEY_YEARS);
        rc = kms_time_arg(call, "NotAfter", &not_after);
    }
    if (rc == KMS_OK && not_after <= not_before)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "NotAfter");
    /* A default NotAfter past year 9999 cannot be written: the NotBefore is what is wrong. */
    if (rc == KMS_OK && not_after > KMS_TIME_LAST)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER,
                      kms_arg(call, "NotAfter") ? "NotAfter" : "NotBefore");
    /* Fail early, before the slow key generation; checked again under the write lock. */
    if (rc == KMS_OK)
        rc = kms_credential_aap(call, aap_name, KMS_AAP_CLIENT_KEY);
    if (rc != KMS_OK)
        return rc;
    kms_uuid_generate(uuid);
    snprintf(rec.client_key_id, sizeof(rec.client_key_id), "%s%s", KMS_CLIENT_KEY_PREFIX, uuid);
    snprintf(rec.aap_name, sizeof(rec.aap_name), "%s", aap_name);
    snprintf(rec.key_algorithm, sizeof(rec.key_algorithm), "%s", KMS_CLIENT_KEY_ALGORITHM);
    rec.not_before = not_before;
    rec.not_after = not_after;
    rec.created_at = call->now;
    rc = kms_client_key_generate(rec.client_key_id, not_before, not_after, password, &p12, &pem);
    if (rc == KMS_OK) {
        rec.public_cert = pem.data;
        rc = kms_store_begin(call->db);
    }
    if (rc == KMS_OK)
        rc = kms_credential_aap(call, aap_name, KMS_AAP_CLIENT_KEY);
    if (rc == KMS_OK)
        rc = kms_store_client_key_insert(call->db, &rec);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK) {
        rc = kms_out_str(call->out, "ClientKeyId", rec.client_key_id);
        rc |= kms_out_str(call->out, "KeyAlgorithm", rec.key_algorithm);
        rc |= kms_out_time(call->out, "NotBefore", rec.not_before);
        rc |= kms_out_time(call->out, "NotAfter", rec.not_after);
        rc |= kms_out_b64(call->out, "PrivateKeyData", (const uint8_t *)p12.data, p12.len);
        rc = rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
    }
    kms_buf_free_secret(&p12);
    kms_buf_free(&pem);
    return rc;
}

kms_err kms_api_get_client_key(struct kms_call *call)
{
    struct kms_client_key_record rec;
    const char *id;
    kms_err rc = kms_arg_required(call, "ClientKeyId", &id);

    if (rc == KMS_OK)
        rc = kms_store_client_key_get(call->db, id, &rec);
    if (rc != KMS_OK)
        return rc;
    rc = kms_out_client_key(call->out, &rec);
    kms_client_key_record_free(&rec);
    return rc;
}

kms_err kms_api_list_client_keys(struct kms_call *call)
{
    struct kms_client_key_record *keys = NULL;
    const char *aap_name = kms_arg(call, "AapName");
    size_t count = 0;
    cJSON *list;
    kms_err rc = KMS_OK;

    if (aap_name != NULL)
        rc = kms_access_name_arg(call, "AapName", &aap_name);
    if (rc == KMS_OK && aap_name != NULL)
        rc = kms_credential_aap(call, aap_name, NULL);
    if (rc == KMS_OK)
        rc = kms_store_client_key_list(call->db, aap_name, &keys, &count);
    if (rc != KMS_OK)
        return rc;
    /* A bare array, without paging [go-sdk]. */
    list = cJSON_AddArrayToObject(call->out, "ClientKeys");
    rc = list ? KMS_OK : KMS_E_INTERNAL;
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        cJSON *item = kms_out_item(list);

        if (item == NULL) {
            rc = KMS_E_INTERNAL;
            break;
        }
        rc = kms_out_client_key(item, &keys[i]);
    }
    kms_store_free_client_keys(keys, count);
    return rc;
}

kms_err kms_api_delete_client_key(struct kms_call *call)
{
    const char *id;
    kms_err rc = kms_arg_required(call, "ClientKeyId", &id);

    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_store_client_key_delete(call->db, id);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    return rc;
}

/* ---- access keys (I5) ---- */

kms_err kms_api_create_access_key(struct kms_call *call)
{
    char id[sizeof(KMS_ACCESS_KEY_PREFIX) + KMS_ACCESS_KEY_RANDOM];
    char secret[KMS_ACCESS_SECRET_LEN + 1];
    const char *aap_name, *desc = NULL;
    kms_err rc;

    rc = kms_access_name_arg(call, "AapName", &aap_name);
    if (rc == KMS_OK)
        rc = kms_access_description_arg(call, &desc);
    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc != KMS_OK)
        return rc;
    memcpy(id, KMS_ACCESS_KEY_PREFIX, sizeof(KMS_ACCESS_KEY_PREFIX) - 1);
    rc = kms_random_alnum(secret, KMS_ACCESS_SECRET_LEN);
    /* 62^18 ids: a collision is all but impossible, but an id must never be reused. */
    for (int attempt = 0; rc == KMS_OK && attempt < KMS_ACCESS_KEY_ATTEMPTS; attempt++) {
        rc = kms_random_alnum(id + sizeof(KMS_ACCESS_KEY_PREFIX) - 1, KMS_ACCESS_KEY_RANDOM);
        if (rc == KMS_OK)
            rc = kms_credentials_create_for_aap(call->db, aap_name,
                                                call->cfg->max_access_keys_per_aap, id, secret,
                                                desc ? desc : "", call->now);
        if (rc != KMS_E_RESOURCE_EXISTS)
            break;
    }
    if (rc == KMS_E_RESOURCE_EXISTS)
        rc = KMS_E_INTERNAL;
    if (rc == KMS_E_INVALID_PARAMETER)
        rc = kms_fail(call, rc, "AapName");
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK) {
        kms_credentials_invalidate(id);
        kms_access_changed();
        rc = kms_out_str(call->out, "AccessKeyId", id);
        rc |= kms_out_str(call->out, "AccessKeySecret", secret);
        rc |= kms_out_str(call->out, "AapName", aap_name);
        rc |= kms_out_time(call->out, "CreateTime", call->now);
        rc = rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    return rc;
}

kms_err kms_api_list_access_keys(struct kms_call *call)
{
    struct kms_access_key_record *keys = NULL;
    const char *aap_name = kms_arg(call, "AapName");
    size_t count = 0;
    int64_t page, size, total = 0;
    cJSON *list;
    kms_err rc = kms_arg_page(call, KMS_PAGE_SIZE_ACCESS, &page, &size);

    if (rc == KMS_OK && aap_name != NULL)
        rc = kms_access_name_arg(call, "AapName", &aap_name);
    if (rc == KMS_OK && aap_name != NULL)
        rc = kms_credential_aap(call, aap_name, NULL);
    if (rc == KMS_OK)
        rc = kms_store_access_key_list(call->db, aap_name, (page - 1) * size, size, &keys, &count,
                                       &total);
    if (rc != KMS_OK)
        return rc;
    list = kms_out_list(call->out, "AccessKeys", "AccessKey");
    rc = list ? KMS_OK : KMS_E_INTERNAL;
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        cJSON *item = kms_out_item(list);

        if (item == NULL) {
            rc = KMS_E_INTERNAL;
            break;
        }
        rc |= kms_out_str(item, "AccessKeyId", keys[i].access_key_id);
        rc |= kms_out_str(item, "AapName", keys[i].aap_name);
        rc |= kms_out_str(item, "Description", keys[i].description);
        rc |= kms_out_str(item, "Status", keys[i].enabled ? "Enabled" : "Disabled");
        rc |= kms_out_time(item, "CreateTime", keys[i].created_at);
    }
    if (rc == KMS_OK)
        kms_out_page(call, page, size, total);
    kms_store_free_access_keys(keys, count);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}

/*
 * The access key named by AccessKeyId, inside the transaction. Admin keys come from the server's
 * configuration and are not managed here: they are as unknown as a key that does not exist.
 *
 * With signature V1, AccessKeyId is also the common parameter naming the signer, so a V1
 * request can only name its own key; V3 signs with the Authorization header and leaves the
 * parameter free (docs/access-control.md).
 */
static kms_err kms_access_key_target(struct kms_call *call, const char **id)
{
    struct kms_access_key_record rec;
    kms_err rc = kms_arg_required(call, "AccessKeyId", id);

    if (rc == KMS_OK)
        rc = kms_store_access_key_get(call->db, *id, &rec);
    if (rc == KMS_E_ACCESS_KEY_NOT_FOUND)
        return KMS_E_RESOURCE_NOT_FOUND;
    if (rc != KMS_OK)
        return rc;
    if (rec.admin)
        rc = KMS_E_RESOURCE_NOT_FOUND;
    kms_access_key_record_free(&rec);
    return rc;
}

kms_err kms_api_update_access_key(struct kms_call *call)
{
    const char *id, *status;
    bool enabled = false;
    kms_err rc = kms_arg_required(call, "AccessKeyId", &id);

    if (rc == KMS_OK)
        rc = kms_arg_required(call, "Status", &status);
    if (rc == KMS_OK && strcmp(status, "Enabled") == 0)
        enabled = true;
    else if (rc == KMS_OK && strcmp(status, "Disabled") != 0)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Status");
    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_access_key_target(call, &id);
    if (rc == KMS_OK)
        rc = kms_store_access_key_set_enabled(call->db, id, enabled);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK) {
        kms_credentials_invalidate(id);
        kms_access_changed();
    }
    return rc;
}

kms_err kms_api_delete_access_key(struct kms_call *call)
{
    const char *id;
    kms_err rc = kms_store_begin(call->db);

    if (rc == KMS_OK)
        rc = kms_access_key_target(call, &id);
    if (rc == KMS_OK)
        rc = kms_store_access_key_delete(call->db, id);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK) {
        kms_credentials_invalidate(id);
        kms_access_changed();
    }
    return rc;
}
