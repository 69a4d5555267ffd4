/*
 * service.c - service-level actions (spec/actions.md A1, A4): DescribeRegions, DescribeService.
 */
#include "internal.h"
#include "keystore/keystore.h"

kms_err kms_api_describe_regions(struct kms_call *call)
{
    cJSON *list = kms_out_list(call->out, "Regions", "Region");
    cJSON *item = cJSON_CreateObject();

    if (list == NULL || item == NULL || !cJSON_AddItemToArray(list, item)) {
        cJSON_Delete(item);
        return KMS_E_INTERNAL;
    }
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
        item = cJSON_CreateObject();
        if (item == NULL || !cJSON_AddItemToArray(level_list, item)) {
            cJSON_Delete(item);
            return KMS_E_INTERNAL;
        }
        rc |= kms_out_str(item, "Type", kms_protection_name(levels[i]));
    }
    for (int s = KMS_SPEC_NONE + 1; s < KMS_SPEC_COUNT && rc == KMS_OK; s++) {
        const struct kms_key_spec_info *info = kms_key_spec_get((enum kms_key_spec)s);
        cJSON *item = cJSON_CreateObject();
        cJSON *supported, *usages;

        if (item == NULL || !cJSON_AddItemToArray(spec_list, item)) {
            cJSON_Delete(item);
            return KMS_E_INTERNAL;
        }
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
