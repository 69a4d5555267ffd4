/*
 * test_pkcs11.c - the PKCS#11 keystore driver against a real token: SoftHSM2, in a private
 * token directory made by tests/softhsm-token.sh (nothing system-wide is touched).
 *
 * Covers AES-256/128 create/load/seal/open (and that the blobs are those of software keys),
 * every signature algorithm checked by OpenSSL with the returned public key, OAEP-SHA256,
 * OAEP-SHA1 and PKCS#1 v1.5 decryption of what OpenSSL encrypted, the same with the padding done
 * in kmsd over raw RSA, random bytes, destroy, ks_supports, start-up failures with their one
 * clear line, recovery after the token dropped every session, many threads at once, sealing
 * mode (the master key in the token), MACs with keys derived in the token, and proof that the
 * material is in the token and cannot
 * leave it (CKA_EXTRACTABLE=FALSE, CKA_SENSITIVE=TRUE, CKA_VALUE unreadable, C_WrapKey fails).
 *
 * Exits 77 (ctest: skipped) with a message when SoftHSM2 is not installed.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "keystore/keystore.h"
#include "keystore/master.h"
#include "keystore/p11.h"
#include "kms/config.h"

#define TOKEN_LABEL "kmsd-unit"
#define USER_PIN    "4711-unit"

static char tmp_dir[] = "/tmp/kmsd-p11-XXXXXX";
static char module_path[PATH_MAX];
static char pin_file[1024];
static char slot_id[32];
static bool have_softhsm;

/* ---------------------------------------------------------------- helpers */

static void test_config(struct kms_config *cfg)
{
    kms_config_defaults(cfg);
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", tmp_dir);
    snprintf(cfg->master_key_file, sizeof(cfg->master_key_file), "%s/master.key", tmp_dir);
    snprintf(cfg->pkcs11_module, sizeof(cfg->pkcs11_module), "%s", module_path);
    snprintf(cfg->pkcs11_token_label, sizeof(cfg->pkcs11_token_label), "%s", TOKEN_LABEL);
    snprintf(cfg->pkcs11_pin_file, sizeof(cfg->pkcs11_pin_file), "%s", pin_file);
}

static struct kms_keystore *open_ks(void)
{
    struct kms_config cfg;
    struct kms_keystore *ks = NULL;

    test_config(&cfg);
    assert_int_equal(kms_pkcs11_keystore_open(&cfg, &ks), KMS_OK);
    assert_non_null(ks);
    assert_int_equal(ks->ks_level, KMS_PROTECTION_HSM);
    return ks;
}

/* Runs kms_pkcs11_keystore_open with stderr captured; returns the log text (caller frees). */
static char *open_capture(const struct kms_config *cfg, kms_err *rc)
{
    char path[1024];
    struct kms_keystore *ks = NULL;
    char *text = calloc(1, 8192);
    int saved = dup(2), fd;
    ssize_t n;

    snprintf(path, sizeof(path), "%s/stderr.txt", tmp_dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0 && saved >= 0 && text != NULL);
    fflush(stderr);
    dup2(fd, 2);
    *rc = kms_pkcs11_keystore_open(cfg, &ks);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    n = read(fd, text, 8191);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    if (ks != NULL)
        ks->ks_ops->ks_close(ks);
    return text;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    fchmod(fd, mode);
    close(fd);
}

static struct kms_ks_ref make_ref(char key_id[KMS_UUID_LEN], char version_id[KMS_UUID_LEN],
                                  enum kms_key_spec spec)
{
    struct kms_ks_ref ref;

    kms_uuid_generate(key_id);
    kms_uuid_generate(version_id);
    ref.key_id = key_id;
    ref.version_id = version_id;
    ref.spec = spec;
    return ref;
}

/* Creates a version and loads it; the public key goes to pub (asymmetric specs). */
static struct kms_ks_key *create_load(struct kms_keystore *ks, const struct kms_ks_ref *ref,
                                      struct kms_buf *pub)
{
    struct kms_buf stored = {0};
    struct kms_ks_key *key = NULL;

    assert_int_equal(ks->ks_ops->ks_create(ks, ref, &stored, pub), KMS_OK);
    /* The store keeps nothing for an HSM key. */
    assert_int_equal(stored.len, 0);
    assert_int_equal(ks->ks_ops->ks_load(ks, ref, NULL, 0, &key), KMS_OK);
    assert_non_null(key);
    kms_buf_free(&stored);
    return key;
}

/* Objects in the token with CKA_ID = id (any class). */
static size_t count_objects(struct kms_p11 *p, const char *id)
{
    CK_ATTRIBUTE tmpl[] = {{CKA_ID, (void *)id, strlen(id)}};
    struct kms_p11_session *s = NULL;
    CK_OBJECT_HANDLE h[16];
    CK_ULONG n = 0;

    assert_int_equal(kms_p11_session_get(p, &s), KMS_OK);
    assert_int_equal(p->p_fn->C_FindObjectsInit(s->s_handle, tmpl, 1), CKR_OK);
    assert_int_equal(p->p_fn->C_FindObjects(s->s_handle, h, 16, &n), CKR_OK);
    p->p_fn->C_FindObjectsFinal(s->s_handle);
    kms_p11_session_put(p, s);
    return n;
}

static CK_OBJECT_HANDLE find_object(struct kms_p11 *p, struct kms_p11_session *s,
                                    CK_OBJECT_CLASS cls, const char *id)
{
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_ID, (void *)id, strlen(id)}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0;

    assert_int_equal(p->p_fn->C_FindObjectsInit(s->s_handle, tmpl, 2), CKR_OK);
    assert_int_equal(p->p_fn->C_FindObjects(s->s_handle, &h, 1, &n), CKR_OK);
    p->p_fn->C_FindObjectsFinal(s->s_handle);
    assert_int_equal(n, 1);
    return h;
}

static CK_BBOOL bool_attr(struct kms_p11 *p, struct kms_p11_session *s, CK_OBJECT_HANDLE h,
                          CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL v = 0xff;
    CK_ATTRIBUTE a = {type, &v, sizeof(v)};

    assert_int_equal(p->p_fn->C_GetAttributeValue(s->s_handle, h, &a, 1), CKR_OK);
    return v;
}

/* A session AES key that may wrap, for the C_WrapKey checks. */
static CK_OBJECT_HANDLE session_wrapping_key(struct kms_p11 *p, struct kms_p11_session *s)
{
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_VALUE_LEN, &len, sizeof(len)},   {CKA_TOKEN, &no, sizeof(no)},
        {CKA_WRAP, &yes, sizeof(yes)},        {CKA_UNWRAP, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)}, {CKA_SENSITIVE, &no, sizeof(no)},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

    assert_int_equal(p->p_fn->C_GenerateKey(s->s_handle, &m, tmpl, 6, &h), CKR_OK);
    return h;
}

/*
 * The proof: the object is a private, sensitive, non-extractable token object; its secret
 * attribute cannot be read, and the token refuses to wrap (export) it, while it does wrap an
 * extractable key with the same wrapping key (so the refusal is about the key, not the setup).
 */
static void assert_not_exportable(struct kms_p11 *p, CK_OBJECT_CLASS cls, const char *id,
                                  CK_ATTRIBUTE_TYPE secret_attr)
{
    struct kms_p11_session *s = NULL;
    CK_OBJECT_HANDLE h, wrap, control;
    CK_MECHANISM wrap_mech = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    uint8_t value[4096], wrapped[4096];
    CK_ATTRIBUTE a = {secret_attr, value, sizeof(value)};
    CK_ULONG wrapped_len = sizeof(wrapped);

    assert_int_equal(kms_p11_session_get(p, &s), KMS_OK);
    h = find_object(p, s, cls, id);
    assert_int_equal(bool_attr(p, s, h, CKA_TOKEN), CK_TRUE);
    assert_int_equal(bool_attr(p, s, h, CKA_PRIVATE), CK_TRUE);
    assert_int_equal(bool_attr(p, s, h, CKA_SENSITIVE), CK_TRUE);
    assert_int_equal(bool_attr(p, s, h, CKA_EXTRACTABLE), CK_FALSE);
    assert_int_equal(bool_attr(p, s, h, CKA_ALWAYS_SENSITIVE), CK_TRUE);
    assert_int_equal(bool_attr(p, s, h, CKA_NEVER_EXTRACTABLE), CK_TRUE);
    assert_int_equal(p->p_fn->C_GetAttributeValue(s->s_handle, h, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
    assert_true(a.ulValueLen == CK_UNAVAILABLE_INFORMATION);
    wrap = session_wrapping_key(p, s);
    assert_int_equal(p->p_fn->C_WrapKey(s->s_handle, &wrap_mech, wrap, h, wrapped, &wrapped_len),
                     CKR_KEY_UNEXTRACTABLE);
    control = session_wrapping_key(p, s);
    wrapped_len = sizeof(wrapped);
    assert_int_equal(
        p->p_fn->C_WrapKey(s->s_handle, &wrap_mech, wrap, control, wrapped, &wrapped_len), CKR_OK);
    p->p_fn->C_DestroyObject(s->s_handle, wrap);
    p->p_fn->C_DestroyObject(s->s_handle, control);
    kms_p11_session_put(p, s);
}

static EVP_PKEY *public_key(const struct kms_buf *der)
{
    const unsigned char *q = (const unsigned char *)der->data;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &q, (long)der->len);

    assert_non_null(pkey);
    assert_ptr_equal(q, (const unsigned char *)der->data + der->len);
    return pkey;
}

/* OpenSSL's verdict on sig over digest (SHA-256) with the given padding (RSA) or ECDSA. */
static bool openssl_verify(EVP_PKEY *pkey, enum kms_sign_alg alg, const uint8_t *digest,
                           const uint8_t *sig, size_t sig_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
    bool ok;

    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
    if (alg == KMS_SIGN_RSA_PSS_SHA_256) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING), 1);
        /* The exact salt length, so a signature with another salt would not pass. */
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32), 1);
    } else if (alg == KMS_SIGN_RSA_PKCS1_SHA_256) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
    }
    ok = EVP_PKEY_verify(ctx, sig, sig_len, digest, 32) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static void openssl_encrypt(EVP_PKEY *pkey, enum kms_pk_alg alg, const uint8_t *pt, size_t len,
                            uint8_t *ct, size_t *ct_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);

    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
    if (alg == KMS_PK_RSAES_PKCS1_V1_5) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
    } else {
        const EVP_MD *md = alg == KMS_PK_RSAES_OAEP_SHA_256 ? EVP_sha256() : EVP_sha1();

        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md), 1);
    }
    assert_int_equal(EVP_PKEY_encrypt(ctx, ct, ct_len, pt, len), 1);
    EVP_PKEY_CTX_free(ctx);
}

/* ---------------------------------------------------------------- setup */

static int group_setup(void **state)
{
    char cmd[PATH_MAX * 2], line[PATH_MAX + 64];
    FILE *f;
    int status;

    char here[PATH_MAX];
    char *slash;

    assert_non_null(mkdtemp(tmp_dir));
    /* tests/softhsm-token.sh, beside this file's directory (CMake compiles by absolute path). */
    snprintf(here, sizeof(here), "%s", __FILE__);
    slash = strrchr(here, '/');
    assert_non_null(slash);
    *slash = '\0';
    snprintf(cmd, sizeof(cmd), "%s/../softhsm-token.sh %s/hsm %s %s 11223344", here, tmp_dir,
             TOKEN_LABEL, USER_PIN);
    f = popen(cmd, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "SOFTHSM2_CONF=", 14) == 0)
            setenv("SOFTHSM2_CONF", line + 14, 1);
        else if (strncmp(line, "MODULE=", 7) == 0)
            assert_true(snprintf(module_path, sizeof(module_path), "%s", line + 7) <
                        (int)sizeof(module_path));
        else if (strncmp(line, "SLOT=", 5) == 0)
            assert_true(snprintf(slot_id, sizeof(slot_id), "%s", line + 5) < (int)sizeof(slot_id));
        else if (strncmp(line, "PIN_FILE=", 9) == 0)
            assert_true(snprintf(pin_file, sizeof(pin_file), "%s", line + 9) <
                        (int)sizeof(pin_file));
    }
    status = pclose(f);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(module_path[0] && slot_id[0] && pin_file[0] && getenv("SOFTHSM2_CONF"));
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- tests */

static void test_startup_failures(void **state)
{
    struct kms_config cfg;
    char path[1024];
    kms_err rc;
    char *log;

    /* Control: the right configuration opens (and the failures below leave nothing behind). */
    test_config(&cfg);
    log = open_capture(&cfg, &rc);
    assert_int_equal(rc, KMS_OK);
    assert_non_null(strstr(log, "pkcs11: token 'kmsd-unit'"));
    free(log);

    test_config(&cfg);
    snprintf(cfg.pkcs11_module, sizeof(cfg.pkcs11_module), "/nonexistent/libnothing.so");
    log = open_capture(&cfg, &rc);
    assert_int_not_equal(rc, KMS_OK);
    assert_non_null(strstr(log, "pkcs11: cannot load the module /nonexistent/libnothing.so"));
    free(log);

    test_config(&cfg);
    snprintf(cfg.pkcs11_module, sizeof(cfg.pkcs11_module), "libz.so.1");
    log = open_capture(&cfg, &rc);
    assert_int_not_equal(rc, KMS_OK);
    assert_true(strstr(log, "is not a PKCS#11 module") != NULL ||
                strstr(log, "cannot load the module") != NULL);
    free(log);

    test_config(&cfg);
    snprintf(cfg.pkcs11_token_label, sizeof(cfg.pkcs11_token_label), "no-such-token");
    log = open_capture(&cfg, &rc);
    assert_int_not_equal(rc, KMS_OK);
    assert_non_null(strstr(log, "no initialised token labelled 'no-such-token'"));
    free(log);

    snprintf(path, sizeof(path), "%s/wrong.pin", tmp_dir);
    write_file(path, "0000-wrong\n", 0600);
    test_config(&cfg);
    snprintf(cfg.pkcs11_pin_file, sizeof(cfg.pkcs11_pin_file), "%s", path);
    log = open_capture(&cfg, &rc);
    assert_int_not_equal(rc, KMS_OK);
    assert_non_null(strstr(log, "wrong PIN for the token 'kmsd-unit' (CKR_PIN_INCORRECT)"));
    free(log);

    test_config(&cfg);
    snprintf(cfg.pkcs11_pin_file, sizeof(cfg.pkcs11_pin_file), "%s/missing.pin", tmp_dir);
    log = open_capture(&cfg, &rc);
    assert_int_not_equal(rc, KMS_OK);
    assert_non_null(strstr(log, "cannot read the PIN file"));
    assert_non_null(strstr(log, "No such file or directory"));
    free(log);

    snprintf(path, sizeof(path), "%s/open.pin", tmp_dir);
    write_file(path, USER_PIN "\n", 0644);
    test_config(&cfg);
    snprintf(cfg.pkcs11_pin_file, sizeof(cfg.pkcs11_pin_file), "%s", path);
    log = open_capture(&cfg, &rc);
    assert_int_not_equal(rc, KMS_OK);
    assert_non_null(strstr(log, "readable by group or others"));
    free(log);

    test_config(&cfg);
    cfg.pkcs11_pin_file[0] = '\0';
    log = open_capture(&cfg, &rc);
    assert_int_not_equal(rc, KMS_OK);
    assert_non_null(strstr(log, "no PIN"));
    free(log);

    test_config(&cfg);
    snprintf(cfg.pkcs11_slot, sizeof(cfg.pkcs11_slot), "12x");
    log = open_capture(&cfg, &rc);
    assert_int_not_equal(rc, KMS_OK);
    assert_non_null(strstr(log, "is not a slot id"));
    free(log);

    test_config(&cfg);
    cfg.pkcs11_token_label[0] = '\0';
    snprintf(cfg.pkcs11_slot, sizeof(cfg.pkcs11_slot), "987654");
    log = open_capture(&cfg, &rc);
    assert_int_not_equal(rc, KMS_OK);
    assert_non_null(strstr(log, "no token in slot 987654"));
    free(log);

    /* Slot and label that disagree. */
    test_config(&cfg);
    snprintf(cfg.pkcs11_slot, sizeof(cfg.pkcs11_slot), "%s", slot_id);
    snprintf(cfg.pkcs11_token_label, sizeof(cfg.pkcs11_token_label), "other");
    log = open_capture(&cfg, &rc);
    assert_int_not_equal(rc, KMS_OK);
    assert_non_null(strstr(log, "is labelled 'kmsd-unit', not 'other'"));
    free(log);

    /* Neither slot nor label. */
    test_config(&cfg);
    cfg.pkcs11_token_label[0] = '\0';
    log = open_capture(&cfg, &rc);
    assert_int_not_equal(rc, KMS_OK);
    assert_non_null(strstr(log, "token_label or slot"));
    free(log);

    /* By slot id alone, it opens. */
    test_config(&cfg);
    cfg.pkcs11_token_label[0] = '\0';
    snprintf(cfg.pkcs11_slot, sizeof(cfg.pkcs11_slot), "%s", slot_id);
    log = open_capture(&cfg, &rc);
    assert_int_equal(rc, KMS_OK);
    free(log);
}

static void check_aes(enum kms_key_spec spec)
{
    struct kms_keystore *ks = open_ks();
    struct kms_p11 *p = kms_pkcs11_of(ks);
    char key_id[KMS_UUID_LEN], version_id[KMS_UUID_LEN];
    struct kms_ks_ref ref = make_ref(key_id, version_id, spec);
    struct kms_buf pub = {0};
    struct kms_ks_key *key = create_load(ks, &ref, &pub);
    uint8_t iv[KMS_AEAD_IV_LEN], tag[KMS_AEAD_TAG_LEN], pt[1000], ct[1000], back[1000];
    const char aad[] = "header and context";

    assert_int_equal(pub.len, 0);
    assert_int_equal(count_objects(p, version_id), 1);
    assert_not_exportable(p, CKO_SECRET_KEY, version_id, CKA_VALUE);
    RAND_bytes(iv, sizeof(iv));
    RAND_bytes(pt, sizeof(pt));
    assert_int_equal(
        key->kk_ops->ks_seal(key, iv, (const uint8_t *)aad, sizeof(aad), pt, sizeof(pt), ct, tag),
        KMS_OK);
    assert_memory_not_equal(ct, pt, sizeof(pt));
    assert_int_equal(
        key->kk_ops->ks_open(key, iv, (const uint8_t *)aad, sizeof(aad), ct, sizeof(ct), tag, back),
        KMS_OK);
    assert_memory_equal(back, pt, sizeof(pt));
    /* A changed AAD, ciphertext or tag does not open, and leaves no plaintext behind. */
    memset(back, 0xaa, sizeof(back));
    assert_int_equal(key->kk_ops->ks_open(key, iv, (const uint8_t *)aad, sizeof(aad) - 1, ct,
                                          sizeof(ct), tag, back),
                     KMS_E_INVALID_PARAMETER);
    for (size_t i = 0; i < sizeof(back); i++)
        assert_int_equal(back[i], 0);
    ct[17] ^= 1;
    assert_int_equal(
        key->kk_ops->ks_open(key, iv, (const uint8_t *)aad, sizeof(aad), ct, sizeof(ct), tag, back),
        KMS_E_INVALID_PARAMETER);
    ct[17] ^= 1;
    tag[0] ^= 0x80;
    assert_int_equal(
        key->kk_ops->ks_open(key, iv, (const uint8_t *)aad, sizeof(aad), ct, sizeof(ct), tag, back),
        KMS_E_INVALID_PARAMETER);
    /* No signing or decryption with a symmetric key. */
    assert_int_not_equal(key->kk_ops->ks_sign(key, KMS_SIGN_ECDSA_SHA_256, pt, 32, &pub), KMS_OK);
    key->kk_ops->ks_release(key);
    /* Loading again (a restart) finds the same key: what it sealed opens. */
    tag[0] ^= 0x80;
    assert_int_equal(ks->ks_ops->ks_load(ks, &ref, NULL, 0, &key), KMS_OK);
    assert_int_equal(
        key->kk_ops->ks_open(key, iv, (const uint8_t *)aad, sizeof(aad), ct, sizeof(ct), tag, back),
        KMS_OK);
    assert_memory_equal(back, pt, sizeof(pt));
    key->kk_ops->ks_release(key);
    ks->ks_ops->ks_close(ks);
    /* After a real close and reopen, too. */
    ks = open_ks();
    assert_int_equal(ks->ks_ops->ks_load(ks, &ref, NULL, 0, &key), KMS_OK);
    assert_int_equal(
        key->kk_ops->ks_open(key, iv, (const uint8_t *)aad, sizeof(aad), ct, sizeof(ct), tag, back),
        KMS_OK);
    assert_memory_equal(back, pt, sizeof(pt));
    key->kk_ops->ks_release(key);
    ks->ks_ops->ks_close(ks);
}

static void test_aes_256(void **state)
{
    check_aes(KMS_SPEC_AES_256);
}

static void test_aes_128(void **state)
{
    check_aes(KMS_SPEC_AES_128);
}

/*
 * The token's GCM output is the software keys' blob format: a key of known value put in the
 * token gives, for the same IV and AAD, exactly what kms_aead_seal gives.
 */
static void test_gcm_same_as_software(void **state)
{
    struct kms_keystore *ks = open_ks();
    struct kms_p11 *p = kms_pkcs11_of(ks);
    char key_id[KMS_UUID_LEN], version_id[KMS_UUID_LEN];
    struct kms_ks_ref ref = make_ref(key_id, version_id, KMS_SPEC_AES_256);
    uint8_t value[32], iv[KMS_AEAD_IV_LEN], pt[77], ct1[77], ct2[77], tag1[16], tag2[16], back[77];
    uint8_t aad[40];
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},
        {CKA_VALUE, value, sizeof(value)},
        {CKA_ID, version_id, strlen(version_id)},
    };
    struct kms_p11_session *s = NULL;
    struct kms_ks_key *key = NULL;
    CK_OBJECT_HANDLE h;

    RAND_bytes(value, sizeof(value));
    RAND_bytes(iv, sizeof(iv));
    RAND_bytes(pt, sizeof(pt));
    RAND_bytes(aad, sizeof(aad));
    assert_int_equal(kms_p11_session_get(p, &s), KMS_OK);
    assert_int_equal(p->p_fn->C_CreateObject(s->s_handle, tmpl, KMS_ARRAY_LEN(tmpl), &h), CKR_OK);
    kms_p11_session_put(p, s);
    assert_int_equal(ks->ks_ops->ks_load(ks, &ref, NULL, 0, &key), KMS_OK);
    assert_int_equal(key->kk_ops->ks_seal(key, iv, aad, sizeof(aad), pt, sizeof(pt), ct1, tag1),
                     KMS_OK);
    assert_int_equal(kms_aead_seal(KMS_AEAD_AES_256_GCM, value, 32, iv, aad, sizeof(aad), pt,
                                   sizeof(pt), ct2, tag2),
                     KMS_OK);
    assert_memory_equal(ct1, ct2, sizeof(ct1));
    assert_memory_equal(tag1, tag2, sizeof(tag1));
    /* And the other way round: what software sealed, the token opens. */
    assert_int_equal(key->kk_ops->ks_open(key, iv, aad, sizeof(aad), ct2, sizeof(ct2), tag2, back),
                     KMS_OK);
    assert_memory_equal(back, pt, sizeof(pt));
    key->kk_ops->ks_release(key);
    assert_int_equal(ks->ks_ops->ks_destroy(ks, &ref), KMS_OK);
    ks->ks_ops->ks_close(ks);
}

static void sign_and_verify(struct kms_ks_key *key, EVP_PKEY *pkey, enum kms_sign_alg alg)
{
    uint8_t digest[32];
    struct kms_buf sig = {0};

    for (int round = 0; round < 3; round++) {
        RAND_bytes(digest, sizeof(digest));
        assert_int_equal(key->kk_ops->ks_sign(key, alg, digest, sizeof(digest), &sig), KMS_OK);
        assert_true(sig.len > 0);
        assert_true(openssl_verify(pkey, alg, digest, (uint8_t *)sig.data, sig.len));
        if (alg == KMS_SIGN_ECDSA_SHA_256) {
            /* DER ECDSA-Sig-Value, not PKCS#11's raw r||s. */
            const unsigned char *q = (const unsigned char *)sig.data;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)sig.len);

            assert_non_null(es);
            assert_ptr_equal(q, (const unsigned char *)sig.data + sig.len);
            ECDSA_SIG_free(es);
        }
        /* A signature over another digest does not verify (the check can fail). */
        digest[5] ^= 1;
        assert_false(openssl_verify(pkey, alg, digest, (uint8_t *)sig.data, sig.len));
        kms_buf_reset(&sig);
    }
    kms_buf_free(&sig);
}

static void decrypt_check(struct kms_ks_key *key, EVP_PKEY *pkey, enum kms_pk_alg alg)
{
    uint8_t pt[100], ct[512];
    size_t ct_len = sizeof(ct);
    struct kms_buf out = {0};

    RAND_bytes(pt, sizeof(pt));
    openssl_encrypt(pkey, alg, pt, sizeof(pt), ct, &ct_len);
    assert_int_equal(key->kk_ops->ks_decrypt(key, alg, ct, ct_len, &out), KMS_OK);
    assert_int_equal(out.len, sizeof(pt));
    assert_memory_equal(out.data, pt, sizeof(pt));
    kms_buf_reset(&out);
    /* A damaged ciphertext is the client's error (400), never a 500 or garbage. */
    ct[ct_len / 2] ^= 0x40;
    assert_int_equal(key->kk_ops->ks_decrypt(key, alg, ct, ct_len, &out), KMS_E_INVALID_PARAMETER);
    assert_int_equal(out.len, 0);
    assert_int_equal(key->kk_ops->ks_decrypt(key, alg, ct, ct_len - 1, &out),
                     KMS_E_INVALID_PARAMETER);
    /* A ciphertext numerically above the modulus. */
    memset(ct, 0xff, ct_len);
    assert_int_equal(key->kk_ops->ks_decrypt(key, alg, ct, ct_len, &out), KMS_E_INVALID_PARAMETER);
    kms_buf_free(&out);
}

static void check_rsa(struct kms_keystore *ks, enum kms_key_spec spec, bool all)
{
    struct kms_p11 *p = kms_pkcs11_of(ks);
    char key_id[KMS_UUID_LEN], version_id[KMS_UUID_LEN];
    struct kms_ks_ref ref = make_ref(key_id, version_id, spec);
    struct kms_buf pub = {0}, sig = {0};
    struct kms_ks_key *key = create_load(ks, &ref, &pub);
    EVP_PKEY *pkey = public_key(&pub);
    uint8_t digest[32] = {1};

    assert_int_equal(EVP_PKEY_get_base_id(pkey), EVP_PKEY_RSA);
    assert_int_equal(EVP_PKEY_get_bits(pkey), spec == KMS_SPEC_RSA_3072 ? 3072 : 2048);
    {
        BIGNUM *e = NULL;

        assert_int_equal(EVP_PKEY_get_bn_param(pkey, "e", &e), 1);
        assert_true(BN_is_word(e, 65537));
        BN_free(e);
    }
    /* The private half and the public half, both in the token. */
    assert_int_equal(count_objects(p, version_id), 2);
    assert_not_exportable(p, CKO_PRIVATE_KEY, version_id, CKA_PRIVATE_EXPONENT);
    sign_and_verify(key, pkey, KMS_SIGN_RSA_PSS_SHA_256);
    if (all) {
        sign_and_verify(key, pkey, KMS_SIGN_RSA_PKCS1_SHA_256);
        decrypt_check(key, pkey, KMS_PK_RSAES_OAEP_SHA_256);
        decrypt_check(key, pkey, KMS_PK_RSAES_OAEP_SHA_1);
        decrypt_check(key, pkey, KMS_PK_RSAES_PKCS1_V1_5);
    }
    /* Misuse: an EC algorithm, a short digest, SM2 decryption, AES. */
    assert_int_equal(key->kk_ops->ks_sign(key, KMS_SIGN_ECDSA_SHA_256, digest, 32, &sig),
                     KMS_E_UNSUPPORTED_ALGORITHM);
    assert_int_equal(key->kk_ops->ks_sign(key, KMS_SIGN_RSA_PSS_SHA_256, digest, 20, &sig),
                     KMS_E_INVALID_PARAMETER);
    assert_int_equal(key->kk_ops->ks_decrypt(key, KMS_PK_SM2PKE, digest, 32, &sig),
                     KMS_E_UNSUPPORTED_ALGORITHM);
    assert_int_equal(sig.len, 0);
    EVP_PKEY_free(pkey);
    key->kk_ops->ks_release(key);
    assert_int_equal(ks->ks_ops->ks_destroy(ks, &ref), KMS_OK);
    assert_int_equal(count_objects(p, version_id), 0);
    kms_buf_free(&pub);
    kms_buf_free(&sig);
}

static void test_rsa(void **state)
{
    struct kms_keystore *ks = open_ks();

    check_rsa(ks, KMS_SPEC_RSA_2048, true);
    check_rsa(ks, KMS_SPEC_RSA_3072, false);
    ks->ks_ops->ks_close(ks);
}

/* The token as if it had only raw RSA: every padding is done in kmsd, results identical. */
static void test_rsa_padding_in_kmsd(void **state)
{
    struct kms_keystore *ks = open_ks();
    struct kms_p11 *p = kms_pkcs11_of(ks);

    kms_p11_drop_caps(p, KMS_P11_CAP_RSA_PSS | KMS_P11_CAP_RSA_PKCS | KMS_P11_CAP_OAEP_SHA256 |
                             KMS_P11_CAP_OAEP_SHA1);
    assert_true(kms_keystore_supports(ks, KMS_SPEC_RSA_2048, KMS_ORIGIN_KMS));
    check_rsa(ks, KMS_SPEC_RSA_2048, true);
    /* With neither raw RSA nor the paddings, RSA keys are refused up front. */
    kms_p11_drop_caps(p, KMS_P11_CAP_RSA_X509);
    assert_false(kms_keystore_supports(ks, KMS_SPEC_RSA_2048, KMS_ORIGIN_KMS));
    assert_false(kms_keystore_supports(ks, KMS_SPEC_RSA_3072, KMS_ORIGIN_KMS));
    ks->ks_ops->ks_close(ks);
}

/* kmsd's padding functions on their own, against OpenSSL doing the same with a software key. */
static void test_rsa_padding_units(void **state)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    struct kms_buf spki = {0}, out = {0};
    uint8_t digest[32], em[256], ct[256], raw[256];
    size_t ct_len = sizeof(ct), raw_len = sizeof(raw);
    unsigned char *q;
    EVP_PKEY_CTX *ctx;
    int n = i2d_PUBKEY(pkey, NULL);

    assert_int_equal(kms_buf_reserve(&spki, (size_t)n), KMS_OK);
    q = (unsigned char *)spki.data;
    assert_int_equal(i2d_PUBKEY(pkey, &q), n);
    spki.len = (size_t)n;
    /* PSS block, made raw into a signature with OpenSSL (no padding), verifies as PSS. */
    RAND_bytes(digest, sizeof(digest));
    assert_int_equal(kms_p11_pad_pss_sha256((uint8_t *)spki.data, spki.len, digest, em, 256),
                     KMS_OK);
    ctx = EVP_PKEY_CTX_new(pkey, NULL);
    assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING), 1);
    assert_int_equal(EVP_PKEY_sign(ctx, raw, &raw_len, em, 256), 1);
    EVP_PKEY_CTX_free(ctx);
    assert_true(openssl_verify(pkey, KMS_SIGN_RSA_PSS_SHA_256, digest, raw, raw_len));
    assert_true(kms_p11_rsa_verify((uint8_t *)spki.data, spki.len, true, digest, raw, raw_len));
    assert_false(kms_p11_rsa_verify((uint8_t *)spki.data, spki.len, false, digest, raw, raw_len));
    /* Wrong modulus size is refused. */
    assert_int_not_equal(kms_p11_pad_pss_sha256((uint8_t *)spki.data, spki.len, digest, em, 128),
                         KMS_OK);
    /* OAEP-SHA256: OpenSSL encrypts, raw-decrypts; kmsd unpads. */
    for (int alg = KMS_PK_RSAES_OAEP_SHA_256; alg <= KMS_PK_RSAES_PKCS1_V1_5; alg++) {
        ct_len = sizeof(ct);
        raw_len = sizeof(raw);
        openssl_encrypt(pkey, (enum kms_pk_alg)alg, digest, sizeof(digest), ct, &ct_len);
        ctx = EVP_PKEY_CTX_new(pkey, NULL);
        assert_int_equal(EVP_PKEY_decrypt_init(ctx), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING), 1);
        assert_int_equal(EVP_PKEY_decrypt(ctx, raw, &raw_len, ct, ct_len), 1);
        EVP_PKEY_CTX_free(ctx);
        assert_int_equal(raw_len, 256);
        kms_buf_reset(&out);
        if (alg == KMS_PK_RSAES_PKCS1_V1_5) {
            assert_int_equal(kms_p11_unpad_pkcs1(raw, 256, &out), KMS_OK);
        } else {
            assert_int_equal(kms_p11_unpad_oaep(alg == KMS_PK_RSAES_OAEP_SHA_256, raw, 256, &out),
                             KMS_OK);
            /* The other hash does not unpad it. */
            assert_int_equal(kms_p11_unpad_oaep(alg != KMS_PK_RSAES_OAEP_SHA_256, raw, 256, &out),
                             KMS_E_INVALID_PARAMETER);
        }
        assert_int_equal(out.len, sizeof(digest));
        assert_memory_equal(out.data, digest, sizeof(digest));
        raw[1] ^= 1;
        assert_int_equal(alg == KMS_PK_RSAES_PKCS1_V1_5
                             ? kms_p11_unpad_pkcs1(raw, 256, &out)
                             : kms_p11_unpad_oaep(alg == KMS_PK_RSAES_OAEP_SHA_256, raw, 256, &out),
                         KMS_E_INVALID_PARAMETER);
    }
    EVP_PKEY_free(pkey);
    kms_buf_free(&spki);
    kms_buf_free(&out);
}

static void check_ec(struct kms_keystore *ks, enum kms_key_spec spec, const char *group)
{
    struct kms_p11 *p = kms_pkcs11_of(ks);
    char key_id[KMS_UUID_LEN], version_id[KMS_UUID_LEN], name[64];
    struct kms_ks_ref ref = make_ref(key_id, version_id, spec);
    struct kms_buf pub = {0}, out = {0};
    struct kms_ks_key *key = create_load(ks, &ref, &pub);
    EVP_PKEY *pkey = public_key(&pub);
    uint8_t digest[32] = {0};

    assert_int_equal(EVP_PKEY_get_base_id(pkey), EVP_PKEY_EC);
    assert_int_equal(EVP_PKEY_get_utf8_string_param(pkey, "group", name, sizeof(name), NULL), 1);
    assert_string_equal(name, group);
    assert_int_equal(count_objects(p, version_id), 2);
    assert_not_exportable(p, CKO_PRIVATE_KEY, version_id, CKA_VALUE);
    sign_and_verify(key, pkey, KMS_SIGN_ECDSA_SHA_256);
    assert_int_equal(key->kk_ops->ks_sign(key, KMS_SIGN_RSA_PSS_SHA_256, digest, 32, &out),
                     KMS_E_UNSUPPORTED_ALGORITHM);
    assert_int_not_equal(key->kk_ops->ks_decrypt(key, KMS_PK_RSAES_OAEP_SHA_256, digest, 32, &out),
                         KMS_OK);
    assert_int_equal(out.len, 0);
    EVP_PKEY_free(pkey);
    key->kk_ops->ks_release(key);
    assert_int_equal(ks->ks_ops->ks_destroy(ks, &ref), KMS_OK);
    kms_buf_free(&pub);
    kms_buf_free(&out);
}

static void test_ec(void **state)
{
    struct kms_keystore *ks = open_ks();

    check_ec(ks, KMS_SPEC_EC_P256, "prime256v1");
    check_ec(ks, KMS_SPEC_EC_P256K, "secp256k1");
    ks->ks_ops->ks_close(ks);
}

static void test_random(void **state)
{
    struct kms_keystore *ks = open_ks();
    uint8_t a[64], b[64], zero[64] = {0};

    assert_int_equal(ks->ks_ops->ks_random(ks, a, sizeof(a)), KMS_OK);
    assert_int_equal(ks->ks_ops->ks_random(ks, b, sizeof(b)), KMS_OK);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
    ks->ks_ops->ks_close(ks);
}

static void test_destroy(void **state)
{
    struct kms_keystore *ks = open_ks();
    struct kms_p11 *p = kms_pkcs11_of(ks);
    char key_id[KMS_UUID_LEN], version_id[KMS_UUID_LEN], other_v[KMS_UUID_LEN];
    char other_k[KMS_UUID_LEN];
    struct kms_ks_ref ref = make_ref(key_id, version_id, KMS_SPEC_EC_P256);
    struct kms_ks_ref other = make_ref(other_k, other_v, KMS_SPEC_AES_256);
    struct kms_buf pub = {0};
    struct kms_ks_key *key = create_load(ks, &ref, &pub), *okey = create_load(ks, &other, &pub);

    key->kk_ops->ks_release(key);
    assert_int_equal(count_objects(p, version_id), 2);
    assert_int_equal(ks->ks_ops->ks_destroy(ks, &ref), KMS_OK);
    assert_int_equal(count_objects(p, version_id), 0);
    /* Gone for good: it no longer loads; destroying again is harmless. */
    assert_int_equal(ks->ks_ops->ks_load(ks, &ref, NULL, 0, &key), KMS_E_INTERNAL);
    assert_int_equal(ks->ks_ops->ks_destroy(ks, &ref), KMS_OK);
    /* Only that version went. */
    assert_int_equal(count_objects(p, other_v), 1);
    okey->kk_ops->ks_release(okey);
    assert_int_equal(ks->ks_ops->ks_destroy(ks, &other), KMS_OK);
    assert_int_equal(count_objects(p, other_v), 0);
    /* A key destroyed while loaded fails cleanly (500, logged), never crashes. */
    {
        uint8_t iv[12] = {0}, tag[16], pt[8] = {0}, ct[8];
        struct kms_ks_ref third = make_ref(other_k, other_v, KMS_SPEC_AES_128);

        okey = create_load(ks, &third, &pub);
        assert_int_equal(ks->ks_ops->ks_destroy(ks, &third), KMS_OK);
        assert_int_equal(okey->kk_ops->ks_seal(okey, iv, NULL, 0, pt, 8, ct, tag), KMS_E_INTERNAL);
        okey->kk_ops->ks_release(okey);
    }
    kms_buf_free(&pub);
    ks->ks_ops->ks_close(ks);
}

static void test_supports(void **state)
{
    struct kms_keystore *ks = open_ks();
    char key_id[KMS_UUID_LEN], version_id[KMS_UUID_LEN];
    struct kms_ks_ref ref = make_ref(key_id, version_id, KMS_SPEC_SM4);
    struct kms_buf stored = {0}, pub = {0};
    uint8_t material[32] = {0};

    assert_true(kms_keystore_supports(ks, KMS_SPEC_AES_256, KMS_ORIGIN_KMS));
    assert_true(kms_keystore_supports(ks, KMS_SPEC_AES_128, KMS_ORIGIN_KMS));
    assert_true(kms_keystore_supports(ks, KMS_SPEC_RSA_2048, KMS_ORIGIN_KMS));
    assert_true(kms_keystore_supports(ks, KMS_SPEC_RSA_3072, KMS_ORIGIN_KMS));
    assert_true(kms_keystore_supports(ks, KMS_SPEC_EC_P256, KMS_ORIGIN_KMS));
    assert_true(kms_keystore_supports(ks, KMS_SPEC_EC_P256K, KMS_ORIGIN_KMS));
    /* SoftHSM2 has neither SM2 nor SM4 (and PKCS#11 v2.40 defines no mechanism for them). */
    assert_false(kms_keystore_supports(ks, KMS_SPEC_SM4, KMS_ORIGIN_KMS));
    assert_false(kms_keystore_supports(ks, KMS_SPEC_EC_SM2, KMS_ORIGIN_KMS));
    /* No BYOK into the token. */
    assert_false(kms_keystore_supports(ks, KMS_SPEC_AES_256, KMS_ORIGIN_EXTERNAL));
    assert_int_equal(ks->ks_ops->ks_create(ks, &ref, &stored, &pub), KMS_E_UNSUPPORTED_PROTECTION);
    ref.spec = KMS_SPEC_AES_256;
    assert_int_equal(ks->ks_ops->ks_import(ks, &ref, material, 32, &stored),
                     KMS_E_UNSUPPORTED_PROTECTION);
    assert_int_equal(stored.len + pub.len, 0);
    /* Without CKM_AES_GCM, no AES keys. */
    kms_p11_drop_caps(kms_pkcs11_of(ks), KMS_P11_CAP_AES_GCM);
    assert_false(kms_keystore_supports(ks, KMS_SPEC_AES_256, KMS_ORIGIN_KMS));
    assert_int_equal(ks->ks_ops->ks_create(ks, &ref, &stored, &pub), KMS_E_UNSUPPORTED_PROTECTION);
    ks->ks_ops->ks_close(ks);
}

/*
 * The token drops every session (as when it is pulled out, or an HSM restarts): the next
 * operation answers 503 and logs it; the one after reopens, logs in again and works, with the
 * same loaded key (its handle is looked up again).
 */
static void test_session_loss_recovery(void **state)
{
    struct kms_keystore *ks = open_ks();
    struct kms_p11 *p = kms_pkcs11_of(ks);
    char key_id[KMS_UUID_LEN], version_id[KMS_UUID_LEN];
    struct kms_ks_ref ref = make_ref(key_id, version_id, KMS_SPEC_AES_256);
    struct kms_buf pub = {0};
    struct kms_ks_key *key = create_load(ks, &ref, &pub);
    uint8_t iv[12] = {1}, tag[16], pt[32] = {2}, ct[32], back[32], rnd[16];
    uint64_t gen = atomic_load(&p->p_gen);

    assert_int_equal(key->kk_ops->ks_seal(key, iv, NULL, 0, pt, 32, ct, tag), KMS_OK);
    assert_int_equal(p->p_fn->C_CloseAllSessions(p->p_slot), CKR_OK);
    assert_int_equal(key->kk_ops->ks_seal(key, iv, NULL, 0, pt, 32, ct, tag), KMS_E_UNAVAILABLE);
    assert_true(p->p_broken);
    assert_int_equal(key->kk_ops->ks_open(key, iv, NULL, 0, ct, 32, tag, back), KMS_OK);
    assert_memory_equal(back, pt, 32);
    assert_false(p->p_broken);
    assert_int_equal(atomic_load(&p->p_gen), gen + 1);
    /* Again, through random and through a fresh load. */
    assert_int_equal(p->p_fn->C_CloseAllSessions(p->p_slot), CKR_OK);
    assert_int_equal(ks->ks_ops->ks_random(ks, rnd, sizeof(rnd)), KMS_E_UNAVAILABLE);
    /* Reopening is tried at most once a second: the first try comes at once, though. */
    assert_int_equal(ks->ks_ops->ks_random(ks, rnd, sizeof(rnd)), KMS_OK);
    key->kk_ops->ks_release(key);
    assert_int_equal(ks->ks_ops->ks_load(ks, &ref, NULL, 0, &key), KMS_OK);
    assert_int_equal(key->kk_ops->ks_open(key, iv, NULL, 0, ct, 32, tag, back), KMS_OK);
    key->kk_ops->ks_release(key);
    assert_int_equal(ks->ks_ops->ks_destroy(ks, &ref), KMS_OK);
    ks->ks_ops->ks_close(ks);
}

struct worker {
    struct kms_ks_key *key;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint8_t iv[12], tag[16], pt[256], ct[256], back[256];

    for (int i = 0; i < 150; i++) {
        RAND_bytes(iv, sizeof(iv));
        RAND_bytes(pt, sizeof(pt));
        if (w->key->kk_ops->ks_seal(w->key, iv, iv, 12, pt, sizeof(pt), ct, tag) != KMS_OK ||
            w->key->kk_ops->ks_open(w->key, iv, iv, 12, ct, sizeof(ct), tag, back) != KMS_OK ||
            memcmp(back, pt, sizeof(pt)) != 0)
            w->failures++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct kms_keystore *ks = open_ks();
    struct kms_p11 *p = kms_pkcs11_of(ks);
    char key_id[KMS_UUID_LEN], version_id[KMS_UUID_LEN];
    struct kms_ks_ref ref = make_ref(key_id, version_id, KMS_SPEC_AES_256);
    struct kms_buf pub = {0};
    struct kms_ks_key *key = create_load(ks, &ref, &pub);
    pthread_t t[8];
    struct worker w[8];

    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){key, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    /* Sessions were pooled, not one per operation. */
    assert_true(p->p_open_count <= 8);
    key->kk_ops->ks_release(key);
    assert_int_equal(ks->ks_ops->ks_destroy(ks, &ref), KMS_OK);
    ks->ks_ops->ks_close(ks);
}

/* Sealing mode: the software keystore's master key is an AES key in the token. */
static void test_sealing_mode(void **state)
{
    struct kms_config cfg;
    struct kms_buf sealed = {0}, opened = {0}, stored = {0}, pub = {0};
    uint8_t fp1[32], fp2[32], fp3[32], iv[12] = {0}, tag[16], pt[32] = {7}, ct[32], back[32];
    const char secret[] = "an access key secret";
    char key_id[KMS_UUID_LEN], version_id[KMS_UUID_LEN];
    struct kms_ks_ref ref = make_ref(key_id, version_id, KMS_SPEC_AES_256);
    struct kms_keystore *sw;
    struct kms_ks_key *key = NULL;

    test_config(&cfg);
    cfg.pkcs11_seal_master_key = true;
    snprintf(cfg.pkcs11_master_key_label, sizeof(cfg.pkcs11_master_key_label), "unit-master");
    unlink(cfg.master_key_file);
    assert_int_equal(kms_keystores_open(&cfg), KMS_OK);
    assert_non_null(kms_keystore_for(KMS_PROTECTION_HSM));
    sw = kms_keystore_for(KMS_PROTECTION_SOFTWARE);
    assert_non_null(sw);
    assert_int_equal(
        kms_keystore_seal_secret("aad", 3, (const uint8_t *)secret, sizeof(secret), &sealed),
        KMS_OK);
    assert_int_equal(
        kms_keystore_open_secret("aad", 3, (uint8_t *)sealed.data, sealed.len, &opened), KMS_OK);
    assert_int_equal(opened.len, sizeof(secret));
    assert_memory_equal(opened.data, secret, sizeof(secret));
    kms_buf_reset(&opened);
    assert_int_not_equal(
        kms_keystore_open_secret("aaX", 3, (uint8_t *)sealed.data, sealed.len, &opened), KMS_OK);
    assert_int_equal(kms_keystore_fingerprint((const uint8_t *)"material", 8, fp1), KMS_OK);
    assert_int_equal(kms_keystore_fingerprint((const uint8_t *)"material", 8, fp2), KMS_OK);
    assert_int_equal(kms_keystore_fingerprint((const uint8_t *)"materiaL", 8, fp3), KMS_OK);
    assert_memory_equal(fp1, fp2, 32);
    assert_memory_not_equal(fp1, fp3, 32);
    /* Software keys work as ever, wrapped through the token. */
    assert_int_equal(sw->ks_ops->ks_create(sw, &ref, &stored, &pub), KMS_OK);
    assert_true(stored.len > 32);
    assert_int_equal(sw->ks_ops->ks_load(sw, &ref, (uint8_t *)stored.data, stored.len, &key),
                     KMS_OK);
    assert_int_equal(key->kk_ops->ks_seal(key, iv, NULL, 0, pt, 32, ct, tag), KMS_OK);
    key->kk_ops->ks_release(key);
    /* The master key object: in the token and not exportable. No file on disk. */
    assert_not_exportable(kms_pkcs11_of(kms_keystore_for(KMS_PROTECTION_HSM)), CKO_SECRET_KEY,
                          "unit-master", CKA_VALUE);
    assert_not_exportable(kms_pkcs11_of(kms_keystore_for(KMS_PROTECTION_HSM)), CKO_SECRET_KEY,
                          "unit-master-fingerprint", CKA_VALUE);
    assert_int_not_equal(access(cfg.master_key_file, F_OK), 0);
    kms_keystores_close();

    /* After a restart the same master key is found: everything opens, fingerprints agree. */
    assert_int_equal(kms_keystores_open(&cfg), KMS_OK);
    sw = kms_keystore_for(KMS_PROTECTION_SOFTWARE);
    assert_int_equal(
        kms_keystore_open_secret("aad", 3, (uint8_t *)sealed.data, sealed.len, &opened), KMS_OK);
    assert_memory_equal(opened.data, secret, sizeof(secret));
    assert_int_equal(kms_keystore_fingerprint((const uint8_t *)"material", 8, fp2), KMS_OK);
    assert_memory_equal(fp1, fp2, 32);
    assert_int_equal(sw->ks_ops->ks_load(sw, &ref, (uint8_t *)stored.data, stored.len, &key),
                     KMS_OK);
    assert_int_equal(key->kk_ops->ks_open(key, iv, NULL, 0, ct, 32, tag, back), KMS_OK);
    assert_memory_equal(back, pt, 32);
    key->kk_ops->ks_release(key);
    kms_keystores_close();

    /* A file master cannot open what the token master sealed (and makes master.key). */
    cfg.pkcs11_seal_master_key = false;
    assert_int_equal(kms_keystores_open(&cfg), KMS_OK);
    assert_int_not_equal(
        kms_keystore_open_secret("aad", 3, (uint8_t *)sealed.data, sealed.len, &opened), KMS_OK);
    assert_int_equal(access(cfg.master_key_file, F_OK), 0);
    kms_keystores_close();
    unlink(cfg.master_key_file);

    /* Sealing mode without a module is refused with a clear line. */
    cfg.pkcs11_seal_master_key = true;
    cfg.pkcs11_module[0] = '\0';
    assert_int_not_equal(kms_keystores_open(&cfg), KMS_OK);
    assert_null(kms_keystore_for(KMS_PROTECTION_SOFTWARE));
    kms_buf_free(&sealed);
    kms_buf_free_secret(&opened);
    kms_buf_free(&stored);
    kms_buf_free(&pub);
}

/* Session objects of class cls and key type (as many as the token shows, up to 64). */
static size_t count_by_type(struct kms_p11 *p, CK_OBJECT_CLASS cls, CK_KEY_TYPE type)
{
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &type, sizeof(type)}};
    struct kms_p11_session *s = NULL;
    CK_OBJECT_HANDLE h[64];
    CK_ULONG n = 0;

    assert_int_equal(kms_p11_session_get(p, &s), KMS_OK);
    assert_int_equal(p->p_fn->C_FindObjectsInit(s->s_handle, tmpl, 2), CKR_OK);
    assert_int_equal(p->p_fn->C_FindObjects(s->s_handle, h, 64, &n), CKR_OK);
    p->p_fn->C_FindObjectsFinal(s->s_handle);
    kms_p11_session_put(p, s);
    return n;
}

/* An AES session key of known value with CKA_ID id, allowed to derive or not. */
static void put_aes_key(struct kms_p11 *p, const char *id, const uint8_t value[32], bool derive)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},   {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &no, sizeof(no)},     {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)}, {CKA_DERIVE, derive ? &yes : &no, sizeof(yes)},
        {CKA_VALUE, (void *)value, 32},   {CKA_ID, (void *)id, strlen(id)},
    };
    struct kms_p11_session *s = NULL;
    CK_OBJECT_HANDLE h;

    assert_int_equal(kms_p11_session_get(p, &s), KMS_OK);
    assert_int_equal(p->p_fn->C_CreateObject(s->s_handle, tmpl, KMS_ARRAY_LEN(tmpl), &h), CKR_OK);
    kms_p11_session_put(p, s);
}

/*
 * MACs of HSM keys: the MAC key is AES-ECB(K, SHA-512("kms-mac-v1" ‖ Algorithm)) made in the
 * token (checked against OpenSSL with a key of known value), it is gone from the token after each
 * MAC, new AES keys may derive only through CKM_AES_ECB_ENCRYPT_DATA, and a key object that may
 * not derive (made by an older kmsd) is refused with KMS_E_UNSUPPORTED_PROTECTION.
 */
static void test_mac(void **state)
{
    static const enum kms_mac_alg algs[] = {KMS_MAC_HMAC_SHA_224, KMS_MAC_HMAC_SHA_256,
                                            KMS_MAC_HMAC_SHA_384, KMS_MAC_HMAC_SHA_512};
    static const uint8_t msg[] = "a message for the token";
    struct kms_keystore *ks = open_ks();
    struct kms_p11 *p = kms_pkcs11_of(ks);
    char key_id[KMS_UUID_LEN], version_id[KMS_UUID_LEN];
    struct kms_ks_ref ref = make_ref(key_id, version_id, KMS_SPEC_AES_256);
    struct kms_buf pub = {0};
    struct kms_ks_key *key;
    uint8_t value[32], data[KMS_MAC_DERIVATION_LEN], derived[KMS_MAC_DERIVATION_LEN];
    uint8_t got[KMS_MAC_MAX_LEN], want[EVP_MAX_MD_SIZE], again[KMS_MAC_MAX_LEN];
    size_t got_len, again_len, secrets_before;
    unsigned int want_len;
    struct kms_p11_session *s = NULL;
    CK_OBJECT_HANDLE h, derived_key;
    CK_KEY_DERIVATION_STRING_DATA kd = {data, sizeof(data)};
    CK_MECHANISM cbc = {CKM_AES_CBC_ENCRYPT_DATA, &kd, sizeof(kd)};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE generic = CKK_GENERIC_SECRET;
    CK_ULONG value_len = 32;
    CK_ATTRIBUTE dtmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
                            {CKA_KEY_TYPE, &generic, sizeof(generic)},
                            {CKA_VALUE_LEN, &value_len, sizeof(value_len)}};
    EVP_CIPHER_CTX *ecb = EVP_CIPHER_CTX_new();
    int n = 0;

    assert_true(kms_p11_has(p, KMS_P11_CAP_AES_DERIVE | KMS_P11_CAP_HMAC_SHA224 |
                                   KMS_P11_CAP_HMAC_SHA256 | KMS_P11_CAP_HMAC_SHA384 |
                                   KMS_P11_CAP_HMAC_SHA512));
    /* A version made by kmsd: derives, through one mechanism only, and leaves nothing behind. */
    key = create_load(ks, &ref, &pub);
    assert_int_equal(kms_p11_session_get(p, &s), KMS_OK);
    h = find_object(p, s, CKO_SECRET_KEY, version_id);
    assert_int_equal(bool_attr(p, s, h, CKA_DERIVE), CK_TRUE);
    assert_int_equal(p->p_fn->C_DeriveKey(s->s_handle, &cbc, h, dtmpl, 3, &derived_key),
                     CKR_MECHANISM_INVALID);
    kms_p11_session_put(p, s);
    assert_not_exportable(p, CKO_SECRET_KEY, version_id, CKA_VALUE);
    secrets_before = count_by_type(p, CKO_SECRET_KEY, CKK_GENERIC_SECRET);
    for (size_t i = 0; i < KMS_ARRAY_LEN(algs); i++) {
        got_len = again_len = 0;
        assert_int_equal(key->kk_ops->ks_mac(key, algs[i], msg, sizeof(msg), got, &got_len),
                         KMS_OK);
        assert_int_equal(got_len, kms_mac_len(algs[i]));
        assert_int_equal(key->kk_ops->ks_mac(key, algs[i], msg, sizeof(msg), again, &again_len),
                         KMS_OK);
        assert_memory_equal(got, again, got_len);
        assert_int_equal(key->kk_ops->ks_mac(key, algs[i], msg, sizeof(msg) - 1, again, &again_len),
                         KMS_OK);
        assert_memory_not_equal(got, again, got_len);
    }
    assert_int_equal(count_by_type(p, CKO_SECRET_KEY, CKK_GENERIC_SECRET), secrets_before);
    assert_int_equal(count_objects(p, version_id), 1);
    /* No SM3 in PKCS#11, no MACs with key pairs. */
    assert_int_equal(key->kk_ops->ks_mac(key, KMS_MAC_HMAC_SM3, msg, sizeof(msg), got, &got_len),
                     KMS_E_UNSUPPORTED_PROTECTION);
    key->kk_ops->ks_release(key);
    assert_int_equal(ks->ks_ops->ks_destroy(ks, &ref), KMS_OK);

    /* A key of known value: the MAC is the documented derivation, recomputed with OpenSSL. */
    ref = make_ref(key_id, version_id, KMS_SPEC_AES_256);
    RAND_bytes(value, sizeof(value));
    put_aes_key(p, version_id, value, true);
    assert_int_equal(ks->ks_ops->ks_load(ks, &ref, NULL, 0, &key), KMS_OK);
    for (size_t i = 0; i < KMS_ARRAY_LEN(algs); i++) {
        const EVP_MD *md = algs[i] == KMS_MAC_HMAC_SHA_224   ? EVP_sha224()
                           : algs[i] == KMS_MAC_HMAC_SHA_256 ? EVP_sha256()
                           : algs[i] == KMS_MAC_HMAC_SHA_384 ? EVP_sha384()
                                                             : EVP_sha512();

        assert_int_equal(kms_mac_derivation_data(algs[i], data), KMS_OK);
        assert_int_equal(EVP_EncryptInit_ex(ecb, EVP_aes_256_ecb(), NULL, value, NULL), 1);
        EVP_CIPHER_CTX_set_padding(ecb, 0);
        assert_int_equal(EVP_EncryptUpdate(ecb, derived, &n, data, sizeof(data)), 1);
        assert_int_equal(n, (int)sizeof(derived));
        assert_non_null(HMAC(md, derived, sizeof(derived), msg, sizeof(msg), want, &want_len));
        got_len = 0;
        assert_int_equal(key->kk_ops->ks_mac(key, algs[i], msg, sizeof(msg), got, &got_len),
                         KMS_OK);
        assert_int_equal(got_len, want_len);
        assert_memory_equal(got, want, want_len);
        /* Not an HMAC under the AES key itself. */
        assert_non_null(HMAC(md, value, sizeof(value), msg, sizeof(msg), want, &want_len));
        assert_memory_not_equal(got, want, want_len);
    }
    key->kk_ops->ks_release(key);
    assert_int_equal(ks->ks_ops->ks_destroy(ks, &ref), KMS_OK);

    /* A key object that may not derive: refused (twice: the second answer comes from memory). */
    ref = make_ref(key_id, version_id, KMS_SPEC_AES_256);
    put_aes_key(p, version_id, value, false);
    assert_int_equal(ks->ks_ops->ks_load(ks, &ref, NULL, 0, &key), KMS_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            key->kk_ops->ks_mac(key, KMS_MAC_HMAC_SHA_256, msg, sizeof(msg), got, &got_len),
            KMS_E_UNSUPPORTED_PROTECTION);
    key->kk_ops->ks_release(key);
    assert_int_equal(ks->ks_ops->ks_destroy(ks, &ref), KMS_OK);
    assert_int_equal(count_by_type(p, CKO_SECRET_KEY, CKK_GENERIC_SECRET), secrets_before);
    EVP_CIPHER_CTX_free(ecb);
    kms_buf_free(&pub);
    ks->ks_ops->ks_close(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_startup_failures),
        cmocka_unit_test(test_aes_256),
        cmocka_unit_test(test_aes_128),
        cmocka_unit_test(test_gcm_same_as_software),
        cmocka_unit_test(test_rsa),
        cmocka_unit_test(test_rsa_padding_in_kmsd),
        cmocka_unit_test(test_rsa_padding_units),
        cmocka_unit_test(test_ec),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_destroy),
        cmocka_unit_test(test_supports),
        cmocka_unit_test(test_session_loss_recovery),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_sealing_mode),
        cmocka_unit_test(test_mac),
    };

    have_softhsm = access("/usr/lib/softhsm/libsofthsm2.so", R_OK) == 0 &&
                   system("command -v softhsm2-util >/dev/null 2>&1") == 0;
    if (!have_softhsm) {
        printf("test_pkcs11: SKIPPED: SoftHSM2 is not installed (apt-get install softhsm2)\n");
        return 77;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
