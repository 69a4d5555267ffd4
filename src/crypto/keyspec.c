/*
 * keyspec.c - key specs and their capabilities (spec/algorithms.md §1.2), and the wire names of
 * usages, states, origins and protection levels.
 */
#include <string.h>
#include <strings.h>

#include "kms/keyspec.h"

#define KMS_ED KMS_USAGE_ENCRYPT_DECRYPT
#define KMS_SV KMS_USAGE_SIGN_VERIFY

static const struct kms_key_spec_info kms_key_specs[KMS_SPEC_COUNT] = {
    [KMS_SPEC_AES_256] = {KMS_SPEC_AES_256, "Aliyun_AES_256", true, 32, KMS_ED, KMS_ED, true,
                          false},
    [KMS_SPEC_AES_128] = {KMS_SPEC_AES_128, "Aliyun_AES_128", true, 16, KMS_ED, KMS_ED, true,
                          false},
    [KMS_SPEC_SM4] = {KMS_SPEC_SM4, "Aliyun_SM4", true, 16, KMS_ED, KMS_ED, true, true},
    [KMS_SPEC_RSA_2048] = {KMS_SPEC_RSA_2048, "RSA_2048", false, 256, KMS_ED | KMS_SV, KMS_SV,
                           false, false},
    [KMS_SPEC_RSA_3072] = {KMS_SPEC_RSA_3072, "RSA_3072", false, 384, KMS_ED | KMS_SV, KMS_SV,
                           false, false},
    [KMS_SPEC_EC_P256] = {KMS_SPEC_EC_P256, "EC_P256", false, 32, KMS_SV, KMS_SV, false, false},
    [KMS_SPEC_EC_P256K] = {KMS_SPEC_EC_P256K, "EC_P256K", false, 32, KMS_SV, KMS_SV, false, false},
    [KMS_SPEC_EC_SM2] = {KMS_SPEC_EC_SM2, "EC_SM2", false, 32, KMS_ED | KMS_SV, KMS_SV, false,
                         true},
};

/* Tianyi's spellings, accepted on input only (spec/algorithms.md §1.1). */
static const struct {
    const char *alias;
    enum kms_key_spec spec;
} kms_key_spec_aliases[] = {
    {"AES_256", KMS_SPEC_AES_256},  {"Ctyun_SM4", KMS_SPEC_SM4}, {"SM4", KMS_SPEC_SM4},
    {"Ctyun_SM2", KMS_SPEC_EC_SM2}, {"SM2", KMS_SPEC_EC_SM2},
};

const struct kms_key_spec_info *kms_key_spec_by_name(const char *name)
{
    for (int i = KMS_SPEC_NONE + 1; i < KMS_SPEC_COUNT; i++)
        if (strcmp(kms_key_specs[i].name, name) == 0)
            return &kms_key_specs[i];
    for (size_t i = 0; i < sizeof(kms_key_spec_aliases) / sizeof(kms_key_spec_aliases[0]); i++)
        if (strcmp(kms_key_spec_aliases[i].alias, name) == 0)
            return &kms_key_specs[kms_key_spec_aliases[i].spec];
    return NULL;
}

const struct kms_key_spec_info *kms_key_spec_get(enum kms_key_spec spec)
{
    if (spec <= KMS_SPEC_NONE || spec >= KMS_SPEC_COUNT)
        return NULL;
    return &kms_key_specs[spec];
}

const char *kms_key_usage_name(enum kms_key_usage usage)
{
    return usage == KMS_USAGE_SIGN_VERIFY ? "SIGN/VERIFY" : "ENCRYPT/DECRYPT";
}

bool kms_key_usage_parse(const char *s, enum kms_key_usage *out)
{
    /* Tianyi writes Encrypt/Decrypt and Sign/Verify: accepted case-insensitively. */
    if (strcasecmp(s, "ENCRYPT/DECRYPT") == 0) {
        *out = KMS_USAGE_ENCRYPT_DECRYPT;
        return true;
    }
    if (strcasecmp(s, "SIGN/VERIFY") == 0) {
        *out = KMS_USAGE_SIGN_VERIFY;
        return true;
    }
    return false;
}

static const char *const kms_state_names[] = {"Enabled", "Disabled", "PendingDeletion",
                                              "PendingImport"};

const char *kms_key_state_name(enum kms_key_state state)
{
    if ((unsigned)state >= sizeof(kms_state_names) / sizeof(kms_state_names[0]))
        return "Disabled";
    return kms_state_names[state];
}

bool kms_key_state_parse(const char *s, enum kms_key_state *out)
{
    for (size_t i = 0; i < sizeof(kms_state_names) / sizeof(kms_state_names[0]); i++) {
        if (strcmp(s, kms_state_names[i]) == 0) {
            *out = (enum kms_key_state)i;
            return true;
        }
    }
    return false;
}

const char *kms_origin_name(enum kms_origin origin)
{
    return origin == KMS_ORIGIN_EXTERNAL ? "EXTERNAL" : "Aliyun_KMS";
}

bool kms_origin_parse(const char *s, enum kms_origin *out)
{
    if (strcmp(s, "Aliyun_KMS") == 0) {
        *out = KMS_ORIGIN_KMS;
        return true;
    }
    if (strcmp(s, "EXTERNAL") == 0) {
        *out = KMS_ORIGIN_EXTERNAL;
        return true;
    }
    return false;
}

const char *kms_protection_name(enum kms_protection level)
{
    return level == KMS_PROTECTION_HSM ? "HSM" : "SOFTWARE";
}

bool kms_protection_parse(const char *s, enum kms_protection *out)
{
    if (strcmp(s, "SOFTWARE") == 0) {
        *out = KMS_PROTECTION_SOFTWARE;
        return true;
    }
    if (strcmp(s, "HSM") == 0) {
        *out = KMS_PROTECTION_HSM;
        return true;
    }
    return false;
}
