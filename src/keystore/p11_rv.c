/*
 * p11_rv.c - PKCS#11 return values: their names for log lines, and which of them mean that the
 * session or the token is gone (the pool then reopens sessions instead of failing forever).
 */
#include <stdio.h>

#include "p11.h"

struct kms_p11_rv_row {
    CK_RV rv;
    const char *name;
};

#define KMS_RV(x)                                                                                  \
    {                                                                                              \
        x, #x                                                                                      \
    }

/* The values a token plausibly returns to the calls kmsd makes. */
static const struct kms_p11_rv_row kms_p11_rv_rows[] = {
    KMS_RV(CKR_OK),
    KMS_RV(CKR_CANCEL),
    KMS_RV(CKR_HOST_MEMORY),
    KMS_RV(CKR_SLOT_ID_INVALID),
    KMS_RV(CKR_GENERAL_ERROR),
    KMS_RV(CKR_FUNCTION_FAILED),
    KMS_RV(CKR_ARGUMENTS_BAD),
    KMS_RV(CKR_NO_EVENT),
    KMS_RV(CKR_NEED_TO_CREATE_THREADS),
    KMS_RV(CKR_CANT_LOCK),
    KMS_RV(CKR_ATTRIBUTE_READ_ONLY),
    KMS_RV(CKR_ATTRIBUTE_SENSITIVE),
    KMS_RV(CKR_ATTRIBUTE_TYPE_INVALID),
    KMS_RV(CKR_ATTRIBUTE_VALUE_INVALID),
    KMS_RV(CKR_DATA_INVALID),
    KMS_RV(CKR_DATA_LEN_RANGE),
    KMS_RV(CKR_DEVICE_ERROR),
    KMS_RV(CKR_DEVICE_MEMORY),
    KMS_RV(CKR_DEVICE_REMOVED),
    KMS_RV(CKR_ENCRYPTED_DATA_INVALID),
    KMS_RV(CKR_ENCRYPTED_DATA_LEN_RANGE),
    KMS_RV(CKR_FUNCTION_CANCELED),
    KMS_RV(CKR_FUNCTION_NOT_PARALLEL),
    KMS_RV(CKR_FUNCTION_NOT_SUPPORTED),
    KMS_RV(CKR_KEY_HANDLE_INVALID),
    KMS_RV(CKR_KEY_SIZE_RANGE),
    KMS_RV(CKR_KEY_TYPE_INCONSISTENT),
    KMS_RV(CKR_KEY_NOT_NEEDED),
    KMS_RV(CKR_KEY_CHANGED),
    KMS_RV(CKR_KEY_NEEDED),
    KMS_RV(CKR_KEY_INDIGESTIBLE),
    KMS_RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
    KMS_RV(CKR_KEY_NOT_WRAPPABLE),
    KMS_RV(CKR_KEY_UNEXTRACTABLE),
    KMS_RV(CKR_MECHANISM_INVALID),
    KMS_RV(CKR_MECHANISM_PARAM_INVALID),
    KMS_RV(CKR_OBJECT_HANDLE_INVALID),
    KMS_RV(CKR_OPERATION_ACTIVE),
    KMS_RV(CKR_OPERATION_NOT_INITIALIZED),
    KMS_RV(CKR_PIN_INCORRECT),
    KMS_RV(CKR_PIN_INVALID),
    KMS_RV(CKR_PIN_LEN_RANGE),
    KMS_RV(CKR_PIN_EXPIRED),
    KMS_RV(CKR_PIN_LOCKED),
    KMS_RV(CKR_SESSION_CLOSED),
    KMS_RV(CKR_SESSION_COUNT),
    KMS_RV(CKR_SESSION_HANDLE_INVALID),
    KMS_RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    KMS_RV(CKR_SESSION_READ_ONLY),
    KMS_RV(CKR_SESSION_EXISTS),
    KMS_RV(CKR_SIGNATURE_INVALID),
    KMS_RV(CKR_SIGNATURE_LEN_RANGE),
    KMS_RV(CKR_TEMPLATE_INCOMPLETE),
    KMS_RV(CKR_TEMPLATE_INCONSISTENT),
    KMS_RV(CKR_TOKEN_NOT_PRESENT),
    KMS_RV(CKR_TOKEN_NOT_RECOGNIZED),
    KMS_RV(CKR_TOKEN_WRITE_PROTECTED),
    KMS_RV(CKR_USER_ALREADY_LOGGED_IN),
    KMS_RV(CKR_USER_NOT_LOGGED_IN),
    KMS_RV(CKR_USER_PIN_NOT_INITIALIZED),
    KMS_RV(CKR_USER_TYPE_INVALID),
    KMS_RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    KMS_RV(CKR_USER_TOO_MANY_TYPES),
    KMS_RV(CKR_WRAPPED_KEY_INVALID),
    KMS_RV(CKR_WRAPPING_KEY_HANDLE_INVALID),
    KMS_RV(CKR_RANDOM_SEED_NOT_SUPPORTED),
    KMS_RV(CKR_RANDOM_NO_RNG),
    KMS_RV(CKR_DOMAIN_PARAMS_INVALID),
    KMS_RV(CKR_CURVE_NOT_SUPPORTED),
    KMS_RV(CKR_BUFFER_TOO_SMALL),
    KMS_RV(CKR_CRYPTOKI_NOT_INITIALIZED),
    KMS_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    KMS_RV(CKR_MUTEX_BAD),
    KMS_RV(CKR_FUNCTION_REJECTED),
};

const char *kms_p11_rv_name(CK_RV rv)
{
    static _Thread_local char other[32];

    for (size_t i = 0; i < sizeof(kms_p11_rv_rows) / sizeof(kms_p11_rv_rows[0]); i++)
        if (kms_p11_rv_rows[i].rv == rv)
            return kms_p11_rv_rows[i].name;
    snprintf(other, sizeof(other), "CKR 0x%08lx", (unsigned long)rv);
    return other;
}

bool kms_p11_rv_lost(CK_RV rv)
{
    switch (rv) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_DEVICE_REMOVED:
    case CKR_DEVICE_ERROR:
    case CKR_SLOT_ID_INVALID:
    /* Logged out behind our back (all sessions were closed, or the token was reset). */
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
        return true;
    default:
        return false;
    }
}

bool kms_p11_rv_stale_handle(CK_RV rv)
{
    return rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID;
}
