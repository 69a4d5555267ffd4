/*
 * p11_module.c - bringing a PKCS#11 token up: reading the PIN, loading the module with dlopen,
 * C_Initialize (OS locking), finding the token by label or slot, logging in once on a session
 * kept open for the life of the process, and learning what the token can do.
 *
 * Every way start-up can fail ends in exactly one error line that says which (PIN file, module,
 * token, PIN), and leaves nothing loaded, so kmsd stops before it serves anything.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "kms/config.h"
#include "kms/log.h"
#include "p11.h"

#define KMS_P11_PIN_MAX 256

/* DER OIDs of the curves kmsd asks tokens for (CKA_EC_PARAMS). */
static const uint8_t kms_p11_oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                           0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t kms_p11_oid_p256k[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};

/* Reads the PIN (one trailing newline dropped) into locked memory. */
static kms_err kms_p11_read_pin(struct kms_p11 *p, const char *path)
{
    char buf[KMS_P11_PIN_MAX + 2];
    struct stat st;
    ssize_t n;
    int fd;

    if (path[0] == '\0') {
        kms_log_error("pkcs11: no PIN: set [pkcs11] pin_file, or pass the systemd credential "
                      "pkcs11.pin");
        return KMS_E_INTERNAL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        kms_log_error("pkcs11: cannot read the PIN file %s: %s", path, strerror(errno));
        return KMS_E_INTERNAL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        kms_log_error("pkcs11: cannot read the PIN file %s: not a regular file", path);
        close(fd);
        return KMS_E_INTERNAL;
    }
    if ((st.st_mode & 077) != 0) {
        kms_log_error("pkcs11: the PIN file %s is readable by group or others (mode %03o): "
                      "chmod 600 it",
                      path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return KMS_E_INTERNAL;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0) {
        kms_log_error("pkcs11: cannot read the PIN file %s: %s", path, strerror(errno));
        return KMS_E_INTERNAL;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n <= 0 || n > KMS_P11_PIN_MAX || memchr(buf, '\n', (size_t)n) != NULL) {
        OPENSSL_cleanse(buf, sizeof(buf));
        kms_log_error("pkcs11: the PIN file %s must hold one PIN of 1-%d bytes", path,
                      KMS_P11_PIN_MAX);
        return KMS_E_INTERNAL;
    }
    p->p_pin = malloc((size_t)n);
    if (p->p_pin == NULL) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return KMS_E_INTERNAL;
    }
    mlock(p->p_pin, (size_t)n);
    memcpy(p->p_pin, buf, (size_t)n);
    p->p_pin_len = (size_t)n;
    OPENSSL_cleanse(buf, sizeof(buf));
    return KMS_OK;
}

static kms_err kms_p11_load(struct kms_p11 *p)
{
    CK_C_GetFunctionList get_list;
    CK_C_INITIALIZE_ARGS args;
    CK_RV rv;

    /* RTLD_LOCAL: the module's symbols (often an OpenSSL of its own) stay out of ours. */
    p->p_dl = dlopen(p->p_module, RTLD_NOW | RTLD_LOCAL);
    if (p->p_dl == NULL) {
        kms_log_error("pkcs11: cannot load the module %s: %s", p->p_module, dlerror());
        return KMS_E_INTERNAL;
    }
    *(void **)&get_list = dlsym(p->p_dl, "C_GetFunctionList");
    if (get_list == NULL) {
        kms_log_error("pkcs11: %s is not a PKCS#11 module (no C_GetFunctionList)", p->p_module);
        return KMS_E_INTERNAL;
    }
    rv = get_list(&p->p_fn);
    if (rv != CKR_OK || p->p_fn == NULL) {
        kms_log_error("pkcs11: C_GetFunctionList of %s failed: %s", p->p_module,
                      kms_p11_rv_name(rv));
        p->p_fn = NULL;
        return KMS_E_INTERNAL;
    }
    if (p->p_fn->version.major != 2) {
        kms_log_error("pkcs11: %s speaks PKCS#11 %d.%d; kmsd needs 2.x", p->p_module,
                      p->p_fn->version.major, p->p_fn->version.minor);
        p->p_fn = NULL;
        return KMS_E_INTERNAL;
    }
    /* kmsd calls the module from many threads: let it use the system's own locks. */
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    rv = p->p_fn->C_Initialize(&args);
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        /* Someone else in the process (a library of ours) loaded it first: share, never finalize.
         */
        kms_log_warn("pkcs11: %s was already initialised in this process; sharing it", p->p_module);
        return KMS_OK;
    }
    if (rv != CKR_OK) {
        kms_log_error("pkcs11: C_Initialize of %s failed: %s", p->p_module, kms_p11_rv_name(rv));
        p->p_fn = NULL;
        return KMS_E_INTERNAL;
    }
    p->p_finalize = true;
    return KMS_OK;
}

/* The label of a CK_TOKEN_INFO, without its blank padding. */
static void kms_p11_label(const CK_TOKEN_INFO *info, char out[33])
{
    size_t n = sizeof(info->label);

    memcpy(out, info->label, n);
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\0'))
        n--;
    out[n] = '\0';
}

bool kms_p11_find_slot(struct kms_p11 *p, CK_SLOT_ID *slot, CK_RV *rv_out)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG count = 0;
    CK_TOKEN_INFO info;
    char label[33];
    bool found = false;
    CK_RV rv;

    if (!p->p_by_label) {
        rv = p->p_fn->C_GetTokenInfo(p->p_slot, &info);
        *rv_out = rv;
        *slot = p->p_slot;
        return rv == CKR_OK;
    }
    rv = p->p_fn->C_GetSlotList(CK_TRUE, NULL, &count);
    if (rv == CKR_OK && count > 0) {
        slots = calloc(count, sizeof(*slots));
        rv = slots ? p->p_fn->C_GetSlotList(CK_TRUE, slots, &count) : CKR_HOST_MEMORY;
    }
    for (CK_ULONG i = 0; rv == CKR_OK && i < count && !found; i++) {
        if (p->p_fn->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        kms_p11_label(&info, label);
        if (strcmp(label, p->p_label) == 0 && (info.flags & CKF_TOKEN_INITIALIZED) != 0) {
            *slot = slots[i];
            found = true;
        }
    }
    free(slots);
    *rv_out = found ? CKR_OK : (rv == CKR_OK ? CKR_TOKEN_NOT_PRESENT : rv);
    return found;
}

CK_RV kms_p11_login(struct kms_p11 *p, CK_SESSION_HANDLE h)
{
    CK_RV rv = p->p_fn->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)p->p_pin, p->p_pin_len);

    return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

/* Finds the configured token: by label, by slot id, or both (which must then agree). */
static kms_err kms_p11_pick_token(struct kms_p11 *p, const struct kms_config *cfg)
{
    CK_TOKEN_INFO info;
    char label[33];
    CK_RV rv;

    if (cfg->pkcs11_slot[0] != '\0') {
        char *end;
        unsigned long long id;

        errno = 0;
        id = strtoull(cfg->pkcs11_slot, &end, 10);
        if (errno != 0 || end == cfg->pkcs11_slot || *end != '\0' || cfg->pkcs11_slot[0] == '-') {
            kms_log_error("pkcs11: slot \"%s\" is not a slot id (a decimal number)",
                          cfg->pkcs11_slot);
            return KMS_E_INTERNAL;
        }
        p->p_slot = (CK_SLOT_ID)id;
        rv = p->p_fn->C_GetTokenInfo(p->p_slot, &info);
        if (rv != CKR_OK) {
            kms_log_error("pkcs11: no token in slot %s of %s (%s)", cfg->pkcs11_slot, p->p_module,
                          kms_p11_rv_name(rv));
            return KMS_E_INTERNAL;
        }
        kms_p11_label(&info, label);
        if (p->p_label[0] != '\0' && strcmp(label, p->p_label) != 0) {
            kms_log_error("pkcs11: the token in slot %s is labelled '%s', not '%s'",
                          cfg->pkcs11_slot, label, p->p_label);
            return KMS_E_INTERNAL;
        }
        snprintf(p->p_label, sizeof(p->p_label), "%s", label);
    } else if (p->p_label[0] != '\0') {
        p->p_by_label = true;
        if (!kms_p11_find_slot(p, &p->p_slot, &rv)) {
            kms_log_error("pkcs11: no initialised token labelled '%s' in any slot of %s (%s)",
                          p->p_label, p->p_module, kms_p11_rv_name(rv));
            return KMS_E_INTERNAL;
        }
        rv = p->p_fn->C_GetTokenInfo(p->p_slot, &info);
        if (rv != CKR_OK) {
            kms_log_error("pkcs11: C_GetTokenInfo for '%s' failed: %s", p->p_label,
                          kms_p11_rv_name(rv));
            return KMS_E_INTERNAL;
        }
    } else {
        kms_log_error("pkcs11: set [pkcs11] token_label or slot to say which token to use");
        return KMS_E_INTERNAL;
    }
    if ((info.flags & CKF_TOKEN_INITIALIZED) == 0 || (info.flags & CKF_USER_PIN_INITIALIZED) == 0) {
        kms_log_error("pkcs11: the token '%s' has not been initialised (no user PIN)", p->p_label);
        return KMS_E_INTERNAL;
    }
    return KMS_OK;
}

static kms_err kms_p11_login_anchor(struct kms_p11 *p)
{
    CK_RV rv = p->p_fn->C_OpenSession(p->p_slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                      &p->p_anchor);

    if (rv != CKR_OK) {
        kms_log_error("pkcs11: cannot open a session with the token '%s': %s", p->p_label,
                      kms_p11_rv_name(rv));
        return KMS_E_INTERNAL;
    }
    p->p_have_anchor = true;
    rv = kms_p11_login(p, p->p_anchor);
    if (rv == CKR_PIN_INCORRECT) {
        kms_log_error("pkcs11: wrong PIN for the token '%s' (CKR_PIN_INCORRECT)", p->p_label);
        return KMS_E_INTERNAL;
    }
    if (rv != CKR_OK) {
        kms_log_error("pkcs11: cannot log in to the token '%s': %s", p->p_label,
                      kms_p11_rv_name(rv));
        return KMS_E_INTERNAL;
    }
    return KMS_OK;
}

/* Whether a session key pair on the curve can be made (the mechanism list does not say). */
static bool kms_p11_probe_curve(struct kms_p11 *p, const uint8_t *oid, size_t oid_len)
{
    CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
    CK_ATTRIBUTE pub[] = {
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_EC_PARAMS, (void *)oid, oid_len},
        {CKA_VERIFY, &yes, sizeof(yes)},
    };
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_SIGN, &yes, sizeof(yes)},
    };
    CK_OBJECT_HANDLE h_pub, h_priv;
    CK_RV rv = p->p_fn->C_GenerateKeyPair(p->p_anchor, &m, pub, KMS_ARRAY_LEN(pub), priv,
                                          KMS_ARRAY_LEN(priv), &h_pub, &h_priv);

    if (rv != CKR_OK)
        return false;
    p->p_fn->C_DestroyObject(p->p_anchor, h_pub);
    p->p_fn->C_DestroyObject(p->p_anchor, h_priv);
    return true;
}

static bool kms_p11_mech(struct kms_p11 *p, const CK_MECHANISM_TYPE *list, CK_ULONG n,
                         CK_MECHANISM_TYPE mech, CK_FLAGS need, CK_MECHANISM_INFO *info)
{
    for (CK_ULONG i = 0; i < n; i++) {
        if (list[i] != mech)
            continue;
        if (p->p_fn->C_GetMechanismInfo(p->p_slot, mech, info) != CKR_OK)
            return false;
        return (info->flags & need) == need;
    }
    return false;
}

/* Whether size lies in [min, max]; tokens that report 0/0 set no limits. */
static bool kms_p11_size_ok(const CK_MECHANISM_INFO *info, CK_ULONG size)
{
    if (info->ulMinKeySize == 0 && info->ulMaxKeySize == 0)
        return true;
    return size >= info->ulMinKeySize && size <= info->ulMaxKeySize;
}

static kms_err kms_p11_learn(struct kms_p11 *p)
{
    CK_MECHANISM_TYPE *list = NULL;
    CK_MECHANISM_INFO info;
    CK_ULONG n = 0;
    unsigned caps = 0;
    CK_RV rv = p->p_fn->C_GetMechanismList(p->p_slot, NULL, &n);

    if (rv == CKR_OK && n > 0) {
        list = calloc(n, sizeof(*list));
        rv = list ? p->p_fn->C_GetMechanismList(p->p_slot, list, &n) : CKR_HOST_MEMORY;
    }
    if (rv != CKR_OK) {
        free(list);
        kms_log_error("pkcs11: C_GetMechanismList for '%s' failed: %s", p->p_label,
                      kms_p11_rv_name(rv));
        return KMS_E_INTERNAL;
    }
    if (kms_p11_mech(p, list, n, CKM_AES_KEY_GEN, CKF_GENERATE, &info)) {
        caps |= kms_p11_size_ok(&info, 32) ? KMS_P11_CAP_AES_256 : 0;
        caps |= kms_p11_size_ok(&info, 16) ? KMS_P11_CAP_AES_128 : 0;
    }
    if (kms_p11_mech(p, list, n, CKM_AES_GCM, CKF_ENCRYPT | CKF_DECRYPT, &info))
        caps |= KMS_P11_CAP_AES_GCM;
    if (kms_p11_mech(p, list, n, CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, &info)) {
        caps |= kms_p11_size_ok(&info, 2048) ? KMS_P11_CAP_RSA_2048 : 0;
        caps |= kms_p11_size_ok(&info, 3072) ? KMS_P11_CAP_RSA_3072 : 0;
    }
    if (kms_p11_mech(p, list, n, CKM_RSA_X_509, CKF_SIGN | CKF_DECRYPT, &info))
        caps |= KMS_P11_CAP_RSA_X509;
    if (kms_p11_mech(p, list, n, CKM_RSA_PKCS, CKF_SIGN | CKF_DECRYPT, &info))
        caps |= KMS_P11_CAP_RSA_PKCS;
    if (kms_p11_mech(p, list, n, CKM_RSA_PKCS_PSS, CKF_SIGN, &info))
        caps |= KMS_P11_CAP_RSA_PSS;
    /* Which hashes OAEP takes is not in the list: tried first, learned on refusal. */
    if (kms_p11_mech(p, list, n, CKM_RSA_PKCS_OAEP, CKF_DECRYPT, &info))
        caps |= KMS_P11_CAP_OAEP_SHA256 | KMS_P11_CAP_OAEP_SHA1;
    if (kms_p11_mech(p, list, n, CKM_ECDSA, CKF_SIGN, &info))
        caps |= KMS_P11_CAP_ECDSA;
    if (kms_p11_mech(p, list, n, CKM_EC_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, &info)) {
        if (kms_p11_probe_curve(p, kms_p11_oid_p256, sizeof(kms_p11_oid_p256)))
            caps |= KMS_P11_CAP_EC_P256;
        if (kms_p11_probe_curve(p, kms_p11_oid_p256k, sizeof(kms_p11_oid_p256k)))
            caps |= KMS_P11_CAP_EC_P256K;
    }
    if (kms_p11_mech(p, list, n, CKM_GENERIC_SECRET_KEY_GEN, CKF_GENERATE, &info) &&
        kms_p11_size_ok(&info, 32))
        caps |= KMS_P11_CAP_SECRET_GEN;
    if (kms_p11_mech(p, list, n, CKM_SHA256_HMAC, CKF_SIGN, &info))
        caps |= KMS_P11_CAP_HMAC_SHA256;
    if (kms_p11_mech(p, list, n, CKM_AES_ECB_ENCRYPT_DATA, CKF_DERIVE, &info))
        caps |= KMS_P11_CAP_AES_DERIVE;
    if (kms_p11_mech(p, list, n, CKM_SHA224_HMAC, CKF_SIGN, &info))
        caps |= KMS_P11_CAP_HMAC_SHA224;
    if (kms_p11_mech(p, list, n, CKM_SHA384_HMAC, CKF_SIGN, &info))
        caps |= KMS_P11_CAP_HMAC_SHA384;
    if (kms_p11_mech(p, list, n, CKM_SHA512_HMAC, CKF_SIGN, &info))
        caps |= KMS_P11_CAP_HMAC_SHA512;
    free(list);
    atomic_store(&p->p_caps, caps);
    return KMS_OK;
}

bool kms_p11_has(struct kms_p11 *p, unsigned caps)
{
    return (atomic_load(&p->p_caps) & caps) == caps;
}

void kms_p11_drop_caps(struct kms_p11 *p, unsigned caps)
{
    atomic_fetch_and(&p->p_caps, ~caps);
}

kms_err kms_p11_open(const struct kms_config *cfg, struct kms_p11 **out)
{
    struct kms_p11 *p = calloc(1, sizeof(*p));
    kms_err rc;

    if (p == NULL)
        return KMS_E_INTERNAL;
    pthread_mutex_init(&p->p_lock, NULL);
    atomic_store(&p->p_gen, 1);
    snprintf(p->p_module, sizeof(p->p_module), "%s", cfg->pkcs11_module);
    if (strlen(cfg->pkcs11_token_label) > 32) {
        kms_log_error("pkcs11: token_label '%s' is longer than a token label (32 bytes)",
                      cfg->pkcs11_token_label);
        kms_p11_close(p);
        return KMS_E_INTERNAL;
    }
    memcpy(p->p_label, cfg->pkcs11_token_label, strlen(cfg->pkcs11_token_label) + 1);
    rc = kms_p11_read_pin(p, cfg->pkcs11_pin_file);
    if (rc == KMS_OK)
        rc = kms_p11_load(p);
    if (rc == KMS_OK)
        rc = kms_p11_pick_token(p, cfg);
    if (rc == KMS_OK)
        rc = kms_p11_login_anchor(p);
    if (rc == KMS_OK)
        rc = kms_p11_learn(p);
    if (rc != KMS_OK) {
        kms_p11_close(p);
        return rc;
    }
    kms_log_info("pkcs11: token '%s' (slot %lu of %s) ready: AES-256/128 %s/%s, AES-GCM %s, "
                 "RSA-2048/3072 %s/%s (raw %s, PSS %s, PKCS#1 %s, OAEP %s), ECDSA %s, "
                 "P-256 %s, secp256k1 %s, MAC derivation %s (HMAC SHA-224/256/384/512 %s/%s/%s/%s)",
                 p->p_label, (unsigned long)p->p_slot, p->p_module,
                 kms_p11_has(p, KMS_P11_CAP_AES_256) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_AES_128) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_AES_GCM) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_RSA_2048) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_RSA_3072) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_RSA_X509) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_RSA_PSS) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_RSA_PKCS) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_OAEP_SHA1) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_ECDSA) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_EC_P256) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_EC_P256K) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_AES_DERIVE) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_HMAC_SHA224) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_HMAC_SHA256) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_HMAC_SHA384) ? "yes" : "no",
                 kms_p11_has(p, KMS_P11_CAP_HMAC_SHA512) ? "yes" : "no");
    *out = p;
    return KMS_OK;
}

void kms_p11_close(struct kms_p11 *p)
{
    if (p == NULL)
        return;
    if (p->p_fn != NULL) {
        kms_p11_sessions_close(p);
        if (p->p_finalize)
            p->p_fn->C_Finalize(NULL);
    }
    if (p->p_dl != NULL)
        dlclose(p->p_dl);
    if (p->p_pin != NULL) {
        OPENSSL_cleanse(p->p_pin, p->p_pin_len);
        munlock(p->p_pin, p->p_pin_len);
        free(p->p_pin);
    }
    pthread_mutex_destroy(&p->p_lock);
    free(p);
}
