/*
 * sig_v1.c - signature version 1.0 (spec §5): the StringToSign over every parameter but Signature,
 * query and body merged, and its Base64 HMAC-SHA1 keyed with AccessKeySecret "&". What the Node
 * SDK 1.2.0, pop-core and the V2.0 SDKs in "v2" mode send.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kms/auth.h"
#include "kms/crypto.h"

/* Stack room for secret "&"; longer secrets (none seen in practice) take the heap. */
#define KMS_SIG_V1_KEY_STACK 128

kms_err kms_sig_v1_string_to_sign(struct kms_buf *out, const char *method,
                                  const struct kms_params *p)
{
    kms_err rc;

    kms_buf_reset(out);
    /* A small start, so the method and prefix do not grow the buffer before the query sizes it. */
    rc = kms_buf_reserve(out, 16);
    if (rc != KMS_OK)
        return rc;
    /* The method is signed in upper case whatever the case it arrived in. */
    for (const char *m = method; *m != '\0'; m++) {
        char c = *m;

        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        rc = kms_buf_append_char(out, c);
        if (rc != KMS_OK)
            return rc;
    }
    /* "&" percentEncode("/") "&" */
    rc = kms_buf_append_str(out, "&%2F&");
    if (rc != KMS_OK)
        return rc;
    return kms_sig_canonical_query_encoded(out, p, KMS_PARAM_QUERY | KMS_PARAM_BODY, "Signature");
}

kms_err kms_sig_v1_sign(const char *secret, size_t secret_len, const char *sts, size_t sts_len,
                        char out[KMS_SIG_V1_LEN + 1])
{
    uint8_t stack_key[KMS_SIG_V1_KEY_STACK];
    uint8_t *key = stack_key;
    uint8_t mac[KMS_SIG_DIGEST_MAX];
    size_t mac_len = 0;
    kms_err rc;

    if (secret_len + 1 > sizeof(stack_key)) {
        key = malloc(secret_len + 1);
        if (key == NULL)
            return KMS_E_INTERNAL;
    }
    memcpy(key, secret, secret_len);
    key[secret_len] = '&';
    rc = kms_sig_hmac(KMS_SIG_SHA1, key, secret_len + 1, sts, sts_len, mac, &mac_len);
    OPENSSL_cleanse(key, secret_len + 1);
    if (key != stack_key)
        free(key);
    if (rc != KMS_OK)
        return rc;
    if (mac_len != 20)
        return KMS_E_INTERNAL;
    kms_b64_encode(mac, mac_len, out);
    return KMS_OK;
}
