/*
 * keyspec.h - the vocabulary of keys: key specs and what each can do (spec/algorithms.md §1-§3),
 * key usages, states, origins and protection levels, with their wire names.
 */
#ifndef KMS_KEYSPEC_H
#define KMS_KEYSPEC_H

#include <stdbool.h>
#include <stddef.h>

enum kms_key_spec {
    KMS_SPEC_NONE = 0,
    KMS_SPEC_AES_256,
    KMS_SPEC_AES_128,
    KMS_SPEC_SM4,
    KMS_SPEC_RSA_2048,
    KMS_SPEC_RSA_3072,
    KMS_SPEC_EC_P256,
    KMS_SPEC_EC_P256K,
    KMS_SPEC_EC_SM2,
    KMS_SPEC_COUNT
};

enum kms_key_usage {
    KMS_USAGE_NONE = 0,
    KMS_USAGE_ENCRYPT_DECRYPT = 1,
    KMS_USAGE_SIGN_VERIFY = 2,
};

enum kms_key_state {
    KMS_STATE_ENABLED = 0,
    KMS_STATE_DISABLED,
    KMS_STATE_PENDING_DELETION,
    KMS_STATE_PENDING_IMPORT,
};

enum kms_origin {
    KMS_ORIGIN_KMS = 0, /* Aliyun_KMS */
    KMS_ORIGIN_EXTERNAL,
};

enum kms_protection {
    KMS_PROTECTION_SOFTWARE = 0,
    KMS_PROTECTION_HSM,
};

struct kms_key_spec_info {
    enum kms_key_spec spec;
    const char *name; /* canonical wire name, e.g. "Aliyun_AES_256" */
    bool symmetric;
    size_t material_len; /* symmetric: key bytes; asymmetric: modulus/field bits / 8 */
    unsigned usages;     /* bit mask of enum kms_key_usage values allowed */
    enum kms_key_usage default_usage;
    bool external_allowed; /* BYOK */
    bool national;         /* SM2/SM4 (gm_requires_hsm applies) */
};

/* The spec called name (canonical, or a Tianyi input alias such as "AES_256"), or NULL. */
const struct kms_key_spec_info *kms_key_spec_by_name(const char *name);
/* The row of spec (NULL for KMS_SPEC_NONE or out of range). */
const struct kms_key_spec_info *kms_key_spec_get(enum kms_key_spec spec);

/* Wire names and parsers; parsers return false for unknown values. */
const char *kms_key_usage_name(enum kms_key_usage usage);
bool kms_key_usage_parse(const char *s, enum kms_key_usage *out);
const char *kms_key_state_name(enum kms_key_state state);
bool kms_key_state_parse(const char *s, enum kms_key_state *out);
const char *kms_origin_name(enum kms_origin origin);
bool kms_origin_parse(const char *s, enum kms_origin *out);
const char *kms_protection_name(enum kms_protection level);
bool kms_protection_parse(const char *s, enum kms_protection *out);

#endif
