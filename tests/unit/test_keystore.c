/*
 * test_keystore.c - the software keystore (src/keystore/software.c): material for every key spec
 * is stored only wrapped, AES-256-GCM(master, material, AAD = KeyId ‖ KeyVersionId); the wrap is
 * bound to its key and version; a wrong master key opens nothing; the master key file must be
 * exactly 32 bytes (64 after a rotation) and private to its owner; small server secrets are
 * sealed with their AAD; a master-key rotation re-wraps under a successor that keeps the BYOK
 * fingerprints.
 *
 * The test unwraps the stored bytes itself, from the documented format (format 1 | iv(12) |
 * ciphertext | tag(16)) and its own copy of the master key, then checks that the driver's loaded
 * key really is that material: what the driver seals, the test opens with the material, and the
 * other way round.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "keystore/keystore.h"
#include "keystore/master.h"
#include "kms/config.h"
#include "kms/crypto.h"
#include "kms/log.h"

#define MASTER_LEN    32
#define WRAP_HEADER   (1 + KMS_AEAD_IV_LEN)
#define WRAP_OVERHEAD (WRAP_HEADER + KMS_AEAD_TAG_LEN)

struct fixture {
    char dir[64];
    char path[128];
    uint8_t master[MASTER_LEN];
    struct kms_config cfg;
    struct kms_keystore *ks;
};

static void write_file(const char *path, const uint8_t *data, size_t len, mode_t mode)
{
    FILE *f;

    unlink(path);
    f = fopen(path, "wb");
    assert_non_null(f);
    if (len > 0)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/kms-test-keystore-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/master.key", fx->dir);
    assert_int_equal(RAND_bytes(fx->master, MASTER_LEN), 1);
    write_file(fx->path, fx->master, MASTER_LEN, 0600);
    kms_config_defaults(&fx->cfg);
    snprintf(fx->cfg.master_key_file, sizeof(fx->cfg.master_key_file), "%s", fx->path);
    assert_int_equal(kms_aead_init(), KMS_OK);
    assert_int_equal(kms_software_keystore_open(&fx->cfg, &fx->ks), KMS_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[128];

    if (fx->ks != NULL)
        fx->ks->ks_ops->ks_close(fx->ks);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static bool contains(const uint8_t *hay, size_t hay_len, const uint8_t *needle, size_t n)
{
    return n > 0 && hay_len >= n && memmem(hay, hay_len, needle, n) != NULL;
}

/* Opens the driver's stored bytes with the test's own copy of the master key. */
static bool unwrap(const uint8_t master[MASTER_LEN], const struct kms_ks_ref *ref,
                   const struct kms_buf *stored, uint8_t *out, size_t *out_len)
{
    char aad[256];
    size_t n;

    if (stored->len < WRAP_OVERHEAD || (uint8_t)stored->data[0] != 1)
        return false;
    n = stored->len - WRAP_OVERHEAD;
    snprintf(aad, sizeof(aad), "%s%s", ref->key_id, ref->version_id);
    if (kms_aead_open(KMS_AEAD_AES_256_GCM, master, MASTER_LEN, (const uint8_t *)stored->data + 1,
                      (const uint8_t *)aad, strlen(aad),
                      (const uint8_t *)stored->data + WRAP_HEADER, n,
                      (const uint8_t *)stored->data + WRAP_HEADER + n, out) != KMS_OK)
        return false;
    *out_len = n;
    return true;
}

static enum kms_aead_alg alg_of(enum kms_key_spec spec)
{
    return spec == KMS_SPEC_AES_128 ? KMS_AEAD_AES_128_GCM
           : spec == KMS_SPEC_SM4   ? KMS_AEAD_SM4_GCM
                                    : KMS_AEAD_AES_256_GCM;
}

/* The loaded key and the unwrapped material are the same key, in both directions. */
static void check_same_symmetric_key(struct kms_ks_key *key, enum kms_key_spec spec,
                                     const uint8_t *material, size_t len)
{
    static const uint8_t aad[] = "header and context";
    uint8_t iv[KMS_AEAD_IV_LEN], pt[100], ct[100], back[100], tag[KMS_AEAD_TAG_LEN];

    assert_int_equal(RAND_bytes(iv, sizeof(iv)), 1);
    assert_int_equal(RAND_bytes(pt, sizeof(pt)), 1);
    assert_int_equal(key->kk_ops->ks_seal(key, iv, aad, sizeof(aad), pt, sizeof(pt), ct, tag),
                     KMS_OK);
    assert_int_equal(
        kms_aead_open(alg_of(spec), material, len, iv, aad, sizeof(aad), ct, sizeof(ct), tag, back),
        KMS_OK);
    assert_memory_equal(back, pt, sizeof(pt));
    memset(back, 0, sizeof(back));
    assert_int_equal(
        kms_aead_seal(alg_of(spec), material, len, iv, aad, sizeof(aad), pt, sizeof(pt), ct, tag),
        KMS_OK);
    assert_int_equal(key->kk_ops->ks_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), tag, back),
                     KMS_OK);
    assert_memory_equal(back, pt, sizeof(pt));
    /* A wrong tag is refused. */
    tag[0] ^= 1;
    assert_int_not_equal(key->kk_ops->ks_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), tag, back),
                         KMS_OK);
}

/* The unwrapped PKCS#8 private key matches the public key the driver returned. */
static void check_same_key_pair(const uint8_t *material, size_t len, const struct kms_buf *pub)
{
    const unsigned char *p = material, *q = (const unsigned char *)pub->data;
    EVP_PKEY *priv = d2i_AutoPrivateKey(NULL, &p, (long)len);
    EVP_PKEY *pubkey = d2i_PUBKEY(NULL, &q, (long)pub->len);

    assert_non_null(priv);
    assert_non_null(pubkey);
    assert_int_equal(EVP_PKEY_eq(priv, pubkey), 1);
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pubkey);
}

static void test_every_spec_is_stored_wrapped(void **state)
{
    struct fixture *fx = *state;

    for (int s = KMS_SPEC_NONE + 1; s < KMS_SPEC_COUNT; s++) {
        const struct kms_key_spec_info *info = kms_key_spec_get((enum kms_key_spec)s);
        struct kms_ks_ref ref = {"key-under-test", "0b6c1a52-3a66-4f4e-9b0b-6b2f1f5d9e01",
                                 (enum kms_key_spec)s};
        struct kms_buf stored = {0}, pub = {0};
        struct kms_ks_key *key = NULL;
        uint8_t *material = malloc(8192);
        size_t len = 0;

        assert_non_null(material);
        assert_int_equal(fx->ks->ks_ops->ks_create(fx->ks, &ref, &stored, &pub), KMS_OK);
        assert_true(unwrap(fx->master, &ref, &stored, material, &len));
        /* Neither the material, nor any 16-byte window of it, nor the master key is stored. */
        assert_false(contains((uint8_t *)stored.data, stored.len, material, len));
        for (size_t i = 0; i + 16 <= len; i += 8)
            assert_false(contains((uint8_t *)stored.data, stored.len, material + i, 16));
        assert_false(contains((uint8_t *)stored.data, stored.len, fx->master, 16));
        assert_int_equal(
            fx->ks->ks_ops->ks_load(fx->ks, &ref, (uint8_t *)stored.data, stored.len, &key),
            KMS_OK);
        if (info->symmetric) {
            assert_int_equal(len, info->material_len);
            assert_int_equal(pub.len, 0);
            check_same_symmetric_key(key, ref.spec, material, len);
        } else {
            check_same_key_pair(material, len, &pub);
            assert_false(contains((uint8_t *)pub.data, pub.len, material, len));
        }
        key->kk_ops->ks_release(key);
        /* Two creations never give the same material. */
        {
            struct kms_buf again = {0}, pub2 = {0};
            uint8_t *material2 = malloc(8192);
            size_t len2 = 0;

            assert_int_equal(fx->ks->ks_ops->ks_create(fx->ks, &ref, &again, &pub2), KMS_OK);
            assert_true(unwrap(fx->master, &ref, &again, material2, &len2));
            assert_false(len2 == len && memcmp(material, material2, len) == 0);
            kms_buf_free_secret(&again);
            kms_buf_free(&pub2);
            free(material2);
        }
        kms_buf_free_secret(&stored);
        kms_buf_free(&pub);
        free(material);
    }
}

static void test_imported_material_is_wrapped(void **state)
{
    struct fixture *fx = *state;
    struct kms_ks_ref ref = {"imported", "6f1c54a2-8d0e-4b39-a5cb-3a1b4b8f0c22", KMS_SPEC_AES_256};
    struct kms_buf stored = {0};
    struct kms_ks_key *key = NULL;
    uint8_t material[32], out[64];
    size_t len = 0;

    memset(material, 0xA5, sizeof(material));
    assert_int_equal(fx->ks->ks_ops->ks_import(fx->ks, &ref, material, 32, &stored), KMS_OK);
    assert_false(contains((uint8_t *)stored.data, stored.len, material, 32));
    assert_false(contains((uint8_t *)stored.data, stored.len, material, 8));
    assert_true(unwrap(fx->master, &ref, &stored, out, &len));
    assert_int_equal(len, 32);
    assert_memory_equal(out, material, 32);
    assert_int_equal(
        fx->ks->ks_ops->ks_load(fx->ks, &ref, (uint8_t *)stored.data, stored.len, &key), KMS_OK);
    check_same_symmetric_key(key, ref.spec, material, 32);
    key->kk_ops->ks_release(key);
    /* Wrong lengths for the spec are refused. */
    assert_int_equal(fx->ks->ks_ops->ks_import(fx->ks, &ref, material, 16, &stored),
                     KMS_E_INVALID_KEY_MATERIAL);
    ref.spec = KMS_SPEC_RSA_2048;
    assert_int_equal(fx->ks->ks_ops->ks_import(fx->ks, &ref, material, 32, &stored),
                     KMS_E_INVALID_KEY_MATERIAL);
    kms_buf_free_secret(&stored);
}

static void test_wrap_is_bound_to_key_and_version(void **state)
{
    struct fixture *fx = *state;
    const char *version = "2b2f0a8e-5a3d-4c6e-8f7a-1d2c3b4a5e6f";
    struct kms_ks_ref ref = {"key-a", version, KMS_SPEC_AES_256};
    struct kms_ks_ref other_key = {"key-b", version, KMS_SPEC_AES_256};
    struct kms_ks_ref other_version = {"key-a", "2b2f0a8e-5a3d-4c6e-8f7a-1d2c3b4a5e60",
                                       KMS_SPEC_AES_256};
    struct kms_ks_ref other_spec = {"key-a", version, KMS_SPEC_AES_128};
    struct kms_buf stored = {0};
    struct kms_ks_key *key = NULL;

    assert_int_equal(fx->ks->ks_ops->ks_create(fx->ks, &ref, &stored, NULL), KMS_OK);
    assert_int_equal(
        fx->ks->ks_ops->ks_load(fx->ks, &ref, (uint8_t *)stored.data, stored.len, &key), KMS_OK);
    key->kk_ops->ks_release(key);
    key = NULL;
    assert_int_not_equal(
        fx->ks->ks_ops->ks_load(fx->ks, &other_key, (uint8_t *)stored.data, stored.len, &key),
        KMS_OK);
    assert_null(key);
    assert_int_not_equal(
        fx->ks->ks_ops->ks_load(fx->ks, &other_version, (uint8_t *)stored.data, stored.len, &key),
        KMS_OK);
    /* A 32-byte material does not load as a 16-byte spec. */
    assert_int_not_equal(
        fx->ks->ks_ops->ks_load(fx->ks, &other_spec, (uint8_t *)stored.data, stored.len, &key),
        KMS_OK);
    /* Every flipped byte of the stored form is refused. */
    for (size_t i = 0; i < stored.len; i++) {
        stored.data[i] ^= 0x10;
        assert_int_not_equal(
            fx->ks->ks_ops->ks_load(fx->ks, &ref, (uint8_t *)stored.data, stored.len, &key),
            KMS_OK);
        stored.data[i] ^= 0x10;
    }
    /* Truncated forms too. */
    assert_int_not_equal(
        fx->ks->ks_ops->ks_load(fx->ks, &ref, (uint8_t *)stored.data, stored.len - 1, &key),
        KMS_OK);
    assert_int_not_equal(fx->ks->ks_ops->ks_load(fx->ks, &ref, (uint8_t *)stored.data, 5, &key),
                         KMS_OK);
    kms_buf_free_secret(&stored);
}

static void test_wrong_master_key(void **state)
{
    struct fixture *fx = *state;
    struct kms_ks_ref ref = {"key-m", "9d8c7b6a-5f4e-4d3c-8b2a-190817263544", KMS_SPEC_SM4};
    struct kms_buf stored = {0};
    struct kms_ks_key *key = NULL;
    struct kms_keystore *other = NULL;
    struct kms_config cfg = fx->cfg;
    uint8_t master2[MASTER_LEN];

    assert_int_equal(fx->ks->ks_ops->ks_create(fx->ks, &ref, &stored, NULL), KMS_OK);
    memcpy(master2, fx->master, MASTER_LEN);
    master2[31] ^= 1; /* one bit off */
    snprintf(cfg.master_key_file, sizeof(cfg.master_key_file), "%s/other.key", fx->dir);
    write_file(cfg.master_key_file, master2, MASTER_LEN, 0600);
    assert_int_equal(kms_software_keystore_open(&cfg, &other), KMS_OK);
    assert_int_not_equal(
        other->ks_ops->ks_load(other, &ref, (uint8_t *)stored.data, stored.len, &key), KMS_OK);
    assert_null(key);
    other->ks_ops->ks_close(other);
    kms_buf_free_secret(&stored);
    /* The process's keystore is the fixture's again for the tests that follow. */
    fx->ks->ks_ops->ks_close(fx->ks);
    assert_int_equal(kms_software_keystore_open(&fx->cfg, &fx->ks), KMS_OK);
}

static void test_master_key_file_rules(void **state)
{
    struct fixture *fx = *state;
    static const mode_t open_modes[] = {0640, 0604, 0660, 0644, 0606, 0610};
    static const size_t bad_lengths[] = {0, 1, 16, 31, 33, 63, 65};
    struct kms_config cfg = fx->cfg;
    struct kms_keystore *ks = NULL;
    uint8_t data[80];
    struct stat st;

    memset(data, 0x42, sizeof(data));
    snprintf(cfg.master_key_file, sizeof(cfg.master_key_file), "%s/rules.key", fx->dir);
    for (size_t i = 0; i < sizeof(open_modes) / sizeof(open_modes[0]); i++) {
        write_file(cfg.master_key_file, data, MASTER_LEN, open_modes[i]);
        assert_int_not_equal(kms_software_keystore_open(&cfg, &ks), KMS_OK);
    }
    for (size_t i = 0; i < sizeof(bad_lengths) / sizeof(bad_lengths[0]); i++) {
        write_file(cfg.master_key_file, data, bad_lengths[i], 0600);
        assert_int_not_equal(kms_software_keystore_open(&cfg, &ks), KMS_OK);
    }
    /* Owner read-only is fine. */
    write_file(cfg.master_key_file, data, MASTER_LEN, 0400);
    assert_int_equal(kms_software_keystore_open(&cfg, &ks), KMS_OK);
    ks->ks_ops->ks_close(ks);
    /* A directory is not a key. */
    snprintf(cfg.master_key_file, sizeof(cfg.master_key_file), "%s", fx->dir);
    assert_int_not_equal(kms_software_keystore_open(&cfg, &ks), KMS_OK);
    /* Absent: created, 32 random bytes, mode 0600. */
    snprintf(cfg.master_key_file, sizeof(cfg.master_key_file), "%s/new.key", fx->dir);
    assert_int_equal(kms_software_keystore_open(&cfg, &ks), KMS_OK);
    ks->ks_ops->ks_close(ks);
    assert_int_equal(stat(cfg.master_key_file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, MASTER_LEN);
    fx->ks->ks_ops->ks_close(fx->ks);
    assert_int_equal(kms_software_keystore_open(&fx->cfg, &fx->ks), KMS_OK);
}

static void test_sealed_secrets(void **state)
{
    static const char secret[] = "an-access-key-secret-0123456789";
    static const char aad[] = "kmsd access-key secret v1:AK1";
    struct kms_buf sealed = {0}, opened = {0};

    (void)state;
    assert_int_equal(kms_keystore_seal_secret(aad, strlen(aad), (const uint8_t *)secret,
                                              strlen(secret), &sealed),
                     KMS_OK);
    assert_false(contains((uint8_t *)sealed.data, sealed.len, (const uint8_t *)secret, 8));
    assert_int_equal(
        kms_keystore_open_secret(aad, strlen(aad), (uint8_t *)sealed.data, sealed.len, &opened),
        KMS_OK);
    assert_int_equal(opened.len, strlen(secret));
    assert_memory_equal(opened.data, secret, strlen(secret));
    kms_buf_free_secret(&opened);
    /* Bound to its AAD: another access key id cannot use it. */
    assert_int_not_equal(kms_keystore_open_secret("kmsd access-key secret v1:AK2", strlen(aad),
                                                  (uint8_t *)sealed.data, sealed.len, &opened),
                         KMS_OK);
    sealed.data[sealed.len - 1] ^= 1;
    assert_int_not_equal(
        kms_keystore_open_secret(aad, strlen(aad), (uint8_t *)sealed.data, sealed.len, &opened),
        KMS_OK);
    kms_buf_free_secret(&opened);
    kms_buf_free_secret(&sealed);
}

static void test_fingerprint(void **state)
{
    struct fixture *fx = *state;
    uint8_t material[32], a[32], b[32], c[32];

    memset(material, 7, sizeof(material));
    assert_int_equal(kms_keystore_fingerprint(material, 32, a), KMS_OK);
    assert_int_equal(kms_keystore_fingerprint(material, 32, b), KMS_OK);
    assert_memory_equal(a, b, 32);
    material[0] ^= 1;
    assert_int_equal(kms_keystore_fingerprint(material, 32, c), KMS_OK);
    assert_memory_not_equal(a, c, 32);
    /* Keyed: a bare hash of the material would let the store confirm guesses. */
    material[0] ^= 1;
    {
        uint8_t plain[32];
        unsigned int n = 0;

        assert_int_equal(EVP_Digest(material, 32, plain, &n, EVP_sha256(), NULL), 1);
        assert_memory_not_equal(a, plain, 32);
    }
    assert_false(contains(a, 32, fx->master, 8));
}

/*
 * A software version's MAC (ks_mac) is HMAC under a key derived from the material - HMAC-H
 * (material, "kms-mac-v1" ‖ Algorithm) - never under the material itself; algorithms that do
 * not fit the spec are refused.
 */
static void test_mac_key_is_derived(void **state)
{
    static const struct {
        enum kms_key_spec spec;
        size_t len;
        enum kms_mac_alg alg;
    } cases[] = {
        {KMS_SPEC_AES_256, 32, KMS_MAC_HMAC_SHA_224}, {KMS_SPEC_AES_256, 32, KMS_MAC_HMAC_SHA_256},
        {KMS_SPEC_AES_128, 16, KMS_MAC_HMAC_SHA_384}, {KMS_SPEC_AES_128, 16, KMS_MAC_HMAC_SHA_512},
        {KMS_SPEC_SM4, 16, KMS_MAC_HMAC_SM3},
    };
    struct fixture *fx = *state;
    static const uint8_t msg[] = "the message to authenticate";

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kms_ks_ref ref = {"mac-key", "0a1c54a2-8d0e-4b39-a5cb-3a1b4b8f0c22", cases[i].spec};
        const EVP_MD *kdf = cases[i].spec == KMS_SPEC_SM4 ? EVP_sm3() : EVP_sha256();
        const EVP_MD *md = cases[i].alg == KMS_MAC_HMAC_SM3       ? EVP_sm3()
                           : cases[i].alg == KMS_MAC_HMAC_SHA_224 ? EVP_sha224()
                           : cases[i].alg == KMS_MAC_HMAC_SHA_256 ? EVP_sha256()
                           : cases[i].alg == KMS_MAC_HMAC_SHA_384 ? EVP_sha384()
                                                                  : EVP_sha512();
        struct kms_buf stored = {0};
        struct kms_ks_key *key = NULL;
        uint8_t material[32], mac_key[EVP_MAX_MD_SIZE], want[EVP_MAX_MD_SIZE], raw[EVP_MAX_MD_SIZE];
        uint8_t got[KMS_MAC_MAX_LEN];
        unsigned int mac_key_len = 0, want_len = 0, raw_len = 0;
        char label[64];
        size_t got_len = 0;

        assert_int_equal(RAND_bytes(material, (int)cases[i].len), 1);
        assert_int_equal(fx->ks->ks_ops->ks_import(fx->ks, &ref, material, cases[i].len, &stored),
                         KMS_OK);
        assert_int_equal(
            fx->ks->ks_ops->ks_load(fx->ks, &ref, (uint8_t *)stored.data, stored.len, &key),
            KMS_OK);
        assert_int_equal(key->kk_ops->ks_mac(key, cases[i].alg, msg, sizeof(msg), got, &got_len),
                         KMS_OK);
        snprintf(label, sizeof(label), "kms-mac-v1%s", kms_mac_alg_name(cases[i].alg));
        assert_non_null(HMAC(kdf, material, (int)cases[i].len, (const uint8_t *)label,
                             strlen(label), mac_key, &mac_key_len));
        assert_non_null(HMAC(md, mac_key, (int)mac_key_len, msg, sizeof(msg), want, &want_len));
        assert_int_equal(got_len, want_len);
        assert_memory_equal(got, want, want_len);
        /* Not the HMAC under the raw material. */
        assert_non_null(HMAC(md, material, (int)cases[i].len, msg, sizeof(msg), raw, &raw_len));
        assert_memory_not_equal(got, raw, raw_len);
        /* An algorithm of the other family is refused by the driver too. */
        assert_int_not_equal(
            key->kk_ops->ks_mac(
                key, cases[i].alg == KMS_MAC_HMAC_SM3 ? KMS_MAC_HMAC_SHA_256 : KMS_MAC_HMAC_SM3,
                msg, sizeof(msg), got, &got_len),
            KMS_OK);
        key->kk_ops->ks_release(key);
        kms_buf_free_secret(&stored);
    }
}

/* kmsadm rotate-master-key's pieces: successor file, re-wrap, carried fingerprint key. */
static void test_master_rotation(void **state)
{
    struct fixture *fx = *state;
    struct kms_ks_ref ref = {"rotating", "0b7f9a3c-2d41-4e8a-9c55-6a1d2e3f4b5c", KMS_SPEC_AES_256};
    static const uint8_t byok[32] = "some imported key material 12345";
    struct kms_buf stored = {0}, rewrapped = {0}, aad = {0}, again = {0};
    struct kms_master *old_master = NULL, *new_master = NULL, *dup = NULL;
    struct kms_keystore *new_ks = NULL;
    struct kms_ks_key *key = NULL;
    uint8_t material[32], fp_old[32], fp_new[32];
    char new_path[160];
    struct stat st;

    assert_int_equal(RAND_bytes(material, sizeof(material)), 1);
    assert_int_equal(fx->ks->ks_ops->ks_import(fx->ks, &ref, material, 32, &stored), KMS_OK);
    assert_int_equal(kms_keystore_fingerprint(byok, sizeof(byok), fp_old), KMS_OK);
    old_master = kms_software_master();
    assert_true(kms_master_is_file(old_master));

    snprintf(new_path, sizeof(new_path), "%s/master.key.new", fx->dir);
    assert_int_equal(kms_master_file_create_successor(new_path, old_master, &new_master), KMS_OK);
    assert_int_equal(stat(new_path, &st), 0);
    assert_int_equal(st.st_size, 2 * MASTER_LEN);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* O_EXCL: an existing successor is never overwritten. */
    assert_int_not_equal(kms_master_file_create_successor(new_path, old_master, &dup), KMS_OK);
    assert_null(dup);

    assert_int_equal(kms_software_material_aad(&ref, &aad), KMS_OK);
    assert_int_equal(kms_software_rewrap(old_master, new_master, aad.data, aad.len,
                                         (uint8_t *)stored.data, stored.len, &rewrapped),
                     KMS_OK);
    assert_memory_not_equal(rewrapped.data, stored.data, stored.len);
    /* The old master no longer opens the re-wrapped material; the new one does not open the old. */
    assert_int_not_equal(
        fx->ks->ks_ops->ks_load(fx->ks, &ref, (uint8_t *)rewrapped.data, rewrapped.len, &key),
        KMS_OK);
    assert_int_not_equal(kms_software_rewrap(new_master, new_master, aad.data, aad.len,
                                             (uint8_t *)stored.data, stored.len, &again),
                         KMS_OK);
    /* Bound to its AAD still: another version's AAD does not open it. */
    ref.version_id = "0b7f9a3c-2d41-4e8a-9c55-6a1d2e3f4b5d";
    kms_buf_reset(&aad);
    assert_int_equal(kms_software_material_aad(&ref, &aad), KMS_OK);
    assert_int_not_equal(kms_software_rewrap(new_master, new_master, aad.data, aad.len,
                                             (uint8_t *)rewrapped.data, rewrapped.len, &again),
                         KMS_OK);
    ref.version_id = "0b7f9a3c-2d41-4e8a-9c55-6a1d2e3f4b5c";
    new_master->m_ops->mo_close(new_master);

    /* A keystore over the 64-byte successor file opens it, and fingerprints are unchanged. */
    fx->ks->ks_ops->ks_close(fx->ks);
    fx->ks = NULL;
    snprintf(fx->cfg.master_key_file, sizeof(fx->cfg.master_key_file), "%s", new_path);
    assert_int_equal(kms_software_keystore_open(&fx->cfg, &new_ks), KMS_OK);
    assert_int_equal(
        new_ks->ks_ops->ks_load(new_ks, &ref, (uint8_t *)rewrapped.data, rewrapped.len, &key),
        KMS_OK);
    check_same_symmetric_key(key, ref.spec, material, 32);
    key->kk_ops->ks_release(key);
    assert_int_equal(kms_keystore_fingerprint(byok, sizeof(byok), fp_new), KMS_OK);
    assert_memory_equal(fp_old, fp_new, sizeof(fp_old));
    fx->ks = new_ks;
    kms_buf_free_secret(&stored);
    kms_buf_free_secret(&rewrapped);
    kms_buf_free(&aad);
    kms_buf_free(&again);
    OPENSSL_cleanse(material, sizeof(material));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_spec_is_stored_wrapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imported_material_is_wrapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrap_is_bound_to_key_and_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_master_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_master_key_file_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mac_key_is_derived, setup, teardown),
        cmocka_unit_test_setup_teardown(test_master_rotation, setup, teardown),
    };

    kms_log_set_quiet(1); /* the refusals below are logged as errors: expected here */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
