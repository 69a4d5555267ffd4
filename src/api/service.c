/*
 * service.c - service-level actions (spec/actions.md A1-A4): DescribeRegions, OpenKmsService,
 * DescribeAccountKmsStatus, DescribeService; and the gate that keeps an account that is not
 * opened out of every other action.
 *
 * A self-hosted server serves one account. With [server] auto_open = true (the default) it is
 * opened from the start; with false it starts NotEnabled until OpenKmsService succeeds once,
 * which is remembered in the store's meta table (so it survives restarts) and never undone.
 */
#include <stdatomic.h>
#include <string.h>

#include "internal.h"
#include "keystore/keystore.h"

#define KMS_SERVICE_OPENED_META "kms_service_opened"

/* Once opened, always opened: the gate stops asking the store. */
static atomic_bool kms_service_opened_seen;

/* Whether the account is opened: configured so, or recorded in the store. */
static kms_err kms_service_opened(struct kms_call *call, bool *opened)
{
    struct kms_buf value = {0};
    kms_err rc;

    *opened = call->cfg->auto_open || atomic_load(&kms_service_opened_seen);
    if (*opened)
        return KMS_OK;
    rc = kms_store_meta_get(call->db, KMS_SERVICE_OPENED_META, &value);
    if (rc == KMS_OK) {
        *opened = true;
        atomic_store(&kms_service_opened_seen, true);
    } else if (rc == KMS_E_RESOURCE_NOT_FOUND) {
        rc = KMS_OK;
    }
    kms_buf_free(&value);
    return rc;
}

kms_err kms_service_check_opened(struct kms_call *call)
{
    /* What a caller needs to find out about and open the service is always there. */
    static const char *const always[] = {"DescribeRegions", "DescribeAccountKmsStatus",
                                         "OpenKmsService"};
    bool opened = false;
    kms_err rc;

    for (size_t i = 0; i < KMS_ARRAY_LEN(always); i++)
        if (strcmp(call->action, always[i]) == 0)
            return KMS_OK;
    rc = kms_service_opened(call, &opened);
    if (rc == KMS_OK && !opened)
        rc = KMS_E_SERVICE_NOT_ENABLED;
    return rc;
}

kms_err kms_api_open_kms_service(struct kms_call *call)
{
    bool opened = false;
    kms_err rc;

    if (call->cfg->auto_open)
        return KMS_E_SERVICE_OPENED;
    rc = kms_store_begin(call->db);
    if (rc != KMS_OK)
        return rc;
    /* Under the write lock: of two concurrent calls, exactly one opens the account. */
    rc = kms_service_opened(call, &opened);
    if (rc == KMS_OK && opened)
        rc = KMS_E_SERVICE_OPENED;
    if (rc == KMS_OK)
        rc = kms_store_meta_set(call->db, KMS_SERVICE_OPENED_META, "1", 1);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    else
        kms_store_rollback(call->db);
    if (rc == KMS_OK)
        atomic_store(&kms_service_opened_seen, true);
    return rc;
}

kms_err kms_api_describe_account_kms_status(struct kms_call *call)
{
    bool opened = false;
    kms_err rc = kms_service_opened(call, &opened);

    if (rc != KMS_OK)
        return rc;
    /* InDebt, the third value of the SDK, is a billing state: never here. */
    return kms_out_str(call->out, "AccountStatus", opened ? "Enabled" : "NotEnabled");
}

kms_err kms_api_describe_regions(struct kms_call *call)
{
    cJSON *item = kms_out_item(kms_out_list(call->out, "Regions", "Region"));

    if (item == NULL)
        return KMS_E_INTERNAL;
    return kms_out_str(item, "RegionId", call->cfg->region);
}

static kms_err kms_add_string(cJSON *array, const char *s)
{
    cJSON *item = cJSON_CreateString(s);

    if (item == NULL || !cJSON_AddItemToArray(array, item)) {
        cJSON_Delete(item);
        return KMS_E_INTERNAL;
    }
    return KMS_OK;
}

kms_err kms_api_describe_service(struct kms_call *call)
{
    static const enum kms_protection levels[] = {KMS_PROTECTION_SOFTWARE, KMS_PROTECTION_HSM};
    cJSON *level_list = kms_out_list(call->out, "ProtectionLevels", "ProtectionLevel");
    cJSON *spec_list = kms_out_list(call->out, "KeySpecs", "KeySpec");
    kms_err rc = KMS_OK;

    if (level_list == NULL || spec_list == NULL)
        return KMS_E_INTERNAL;
    for (size_t i = 0; i < KMS_ARRAY_LEN(levels); i++) {
        cJSON *item;

        if (kms_keystore_for(levels[i]) == NULL)
            continue;
        item = kms_out_item(level_list);
        if (item == NULL)
            return KMS_E_INTERNAL;
        rc |= kms_out_str(item, "Type", kms_protection_name(levels[i]));
    }
    for (int s = KMS_SPEC_NONE + 1; s < KMS_SPEC_COUNT && rc == KMS_OK; s++) {
        const struct kms_key_spec_info *info = kms_key_spec_get((enum kms_key_spec)s);
        cJSON *item = kms_out_item(spec_list);
        cJSON *supported, *usages;

        if (item == NULL)
            return KMS_E_INTERNAL;
        rc |= kms_out_str(item, "Name", info->name);
        supported = kms_out_list(item, "SupportedProtectionLevels", "SupportedProtectionLevel");
        usages = kms_out_list(item, "Usages", "Usage");
        if (supported == NULL || usages == NULL)
            return KMS_E_INTERNAL;
        for (size_t i = 0; i < KMS_ARRAY_LEN(levels); i++) {
            bool national_soft = info->national && levels[i] == KMS_PROTECTION_SOFTWARE &&
                                 call->cfg->gm_requires_hsm;
            struct kms_keystore *ks = kms_keystore_for(levels[i]);

            if (ks != NULL && !national_soft &&
                kms_keystore_supports(ks, info->spec, KMS_ORIGIN_KMS))
                rc |= kms_add_string(supported, kms_protection_name(levels[i]));
        }
        if (info->usages & KMS_USAGE_ENCRYPT_DECRYPT)
            rc |= kms_add_string(usages, kms_key_usage_name(KMS_USAGE_ENCRYPT_DECRYPT));
        if (info->usages & KMS_USAGE_SIGN_VERIFY)
            rc |= kms_add_string(usages, kms_key_usage_name(KMS_USAGE_SIGN_VERIFY));
    }
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}
