/*
 * random.c - GetRandomPassword and GenerateRandom (spec/actions.md F1, F2; algorithms.md §10).
 *
 * GetRandomPassword (spec/actions.md F1, algorithms.md §10): a password from the
 * classes the caller keeps (lower, upper, digits, the 32 ASCII punctuation characters) minus
 * ExcludeCharacters, optionally with at least one character of each class left.
 *
 * Every choice is uniform: random bytes from OpenSSL's CSPRNG, rejection sampling instead of a
 * modulo (no bias toward the first characters of the alphabet), and a Fisher-Yates shuffle so
 * the guaranteed characters do not sit at predictable positions.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "internal.h"
#include "keystore/keystore.h"

#define KMS_PASSWORD_MIN     8
#define KMS_PASSWORD_MAX     128
#define KMS_PASSWORD_DEFAULT 32
#define KMS_PASSWORD_CLASSES 4
#define KMS_RANDOM_MAX       1024 /* GenerateRandom's Length */

/* A pool of CSPRNG bytes, refilled as sampling consumes them. */
struct kms_rng {
    uint8_t buf[256];
    size_t pos;
};

static kms_err kms_rng_byte(struct kms_rng *r, uint8_t *out)
{
    if (r->pos == 0 || r->pos == sizeof(r->buf)) {
        if (RAND_priv_bytes(r->buf, sizeof(r->buf)) != 1)
            return KMS_E_INTERNAL;
        r->pos = 0;
    }
    *out = r->buf[r->pos++];
    return KMS_OK;
}

/* Uniform in [0, n), 1 <= n <= 256: bytes at or above the largest multiple of n are redrawn. */
static kms_err kms_rng_below(struct kms_rng *r, size_t n, size_t *out)
{
    size_t limit = 256 - 256 % n;
    uint8_t b;
    kms_err rc;

    do {
        rc = kms_rng_byte(r, &b);
        if (rc != KMS_OK)
            return rc;
    } while (b >= limit);
    *out = b % n;
    return KMS_OK;
}

kms_err kms_api_get_random_password(struct kms_call *call)
{
    static const char *const classes[KMS_PASSWORD_CLASSES] = {
        "abcdefghijklmnopqrstuvwxyz",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    };
    static const char *const flags[KMS_PASSWORD_CLASSES] = {
        "ExcludeLowercase",
        "ExcludeUppercase",
        "ExcludeNumbers",
        "ExcludePunctuation",
    };
    const char *exclude = kms_arg(call, "ExcludeCharacters");
    char pool[KMS_PASSWORD_CLASSES][33]; /* what is left of each class */
    size_t pool_len[KMS_PASSWORD_CLASSES] = {0};
    char alphabet[100];
    size_t alphabet_len = 0, included = 0, pos = 0, idx;
    char password[KMS_PASSWORD_MAX + 1];
    struct kms_rng rng = {.pos = 0};
    bool require = true;
    int64_t length;
    kms_err rc;

    rc = kms_arg_int(call, "PasswordLength", KMS_PASSWORD_MIN, KMS_PASSWORD_MAX,
                     KMS_PASSWORD_DEFAULT, &length);
    if (rc == KMS_OK)
        rc = kms_arg_bool(call, "RequireEachIncludedType", true, &require);
    for (size_t c = 0; rc == KMS_OK && c < KMS_PASSWORD_CLASSES; c++) {
        bool excluded = false;

        rc = kms_arg_bool(call, flags[c], false, &excluded);
        if (rc != KMS_OK || excluded)
            continue;
        for (const char *p = classes[c]; *p; p++)
            if (exclude == NULL || strchr(exclude, *p) == NULL)
                pool[c][pool_len[c]++] = *p;
        /* A class whose every character is excluded is not "included" any more. */
        if (pool_len[c] > 0)
            included++;
        memcpy(alphabet + alphabet_len, pool[c], pool_len[c]);
        alphabet_len += pool_len[c];
    }
    if (rc != KMS_OK)
        return rc;
    if (alphabet_len == 0)
        return kms_fail(call, KMS_E_INVALID_PARAMETER,
                        "ExcludeLowercase/ExcludeUppercase/ExcludeNumbers/ExcludePunctuation/"
                        "ExcludeCharacters");
    if (require && (size_t)length < included)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "PasswordLength");
    /* One of each remaining class first (when required), the rest from the whole alphabet. */
    for (size_t c = 0; rc == KMS_OK && require && c < KMS_PASSWORD_CLASSES; c++) {
        if (pool_len[c] == 0)
            continue;
        rc = kms_rng_below(&rng, pool_len[c], &idx);
        if (rc == KMS_OK)
            password[pos++] = pool[c][idx];
    }
    while (rc == KMS_OK && pos < (size_t)length) {
        rc = kms_rng_below(&rng, alphabet_len, &idx);
        if (rc == KMS_OK)
            password[pos++] = alphabet[idx];
    }
    for (size_t i = pos; rc == KMS_OK && i > 1; i--) {
        char t;

        rc = kms_rng_below(&rng, i, &idx);
        if (rc != KMS_OK)
            break;
        t = password[i - 1];
        password[i - 1] = password[idx];
        password[idx] = t;
    }
    password[pos] = '\0';
    if (rc == KMS_OK)
        rc = kms_out_str(call->out, "RandomPassword", password);
    OPENSSL_cleanse(password, sizeof(password));
    OPENSSL_cleanse(&rng, sizeof(rng));
    return rc;
}

/*
 * GenerateRandom (extension, spec/actions.md F2): Length 1-1024 random bytes from the key
 * store's generator: the HSM's when one is configured (algorithms.md §3.1: random generation
 * happens inside the HSM), else OpenSSL's CSPRNG in the software keystore.
 */
kms_err kms_api_generate_random(struct kms_call *call)
{
    struct kms_keystore *ks = kms_keystore_for(KMS_PROTECTION_HSM);
    uint8_t data[KMS_RANDOM_MAX];
    int64_t len = 0;
    kms_err rc;

    if (kms_arg(call, "Length") == NULL)
        return kms_fail(call, KMS_E_MISSING_PARAMETER, "Length");
    rc = kms_arg_int(call, "Length", 1, KMS_RANDOM_MAX, 0, &len);
    if (rc != KMS_OK)
        return rc;
    if (ks == NULL)
        ks = kms_keystore_for(KMS_PROTECTION_SOFTWARE);
    rc = ks ? ks->ks_ops->ks_random(ks, data, (size_t)len) : KMS_E_UNAVAILABLE;
    if (rc == KMS_OK)
        rc = kms_out_b64(call->out, "Random", data, (size_t)len);
    OPENSSL_cleanse(data, sizeof(data));
    return rc;
}
