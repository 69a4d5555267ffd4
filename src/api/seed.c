/*
 * seed.c - kmsd --seed FILE (docs/seeding.md): keys with fixed KeyIds, specs and optionally given
 * material (several versions to model rotation), their aliases and tags, secrets and admin access
 * keys, created at start before kmsd serves.
 *
 * The file is read twice: a first pass checks all of it (shape, names, material, what the
 * keystores support) and writes nothing, so a bad file changes nothing and the error names the
 * file and the JSON location ("$.Keys[1].Versions[0].Material"); the second pass creates what
 * does not exist yet. Each object is one transaction: a key with its versions and tags, an alias,
 * a secret's first version (each further version is one more, as PutSecretValue makes it), an
 * access key. What exists already (a KeyId, an alias name, a SecretName, an AccessKeyId) is left
 * exactly as it is and logged, so starting again with the same file changes nothing.
 *
 * Aliases and secrets go through the API's own handlers (CreateAlias, CreateSecret,
 * PutSecretValue) on a request made here, so they obey the same rules as over the wire; keys are
 * built here because the API cannot choose a KeyId or its material.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "keystore/keystore.h"
#include "kms/auth.h"
#include "kms/clock.h"
#include "kms/log.h"

#define KMS_SEED_FILE_MAX      (16 * 1024 * 1024)
#define KMS_SEED_LOC_MAX       256
#define KMS_SEED_ID_MAX        128  /* KeyId, AccessKeyId */
#define KMS_SEED_DESCRIPTION   8192 /* as CreateKey */
#define KMS_SEED_AK_SECRET_MIN 8
#define KMS_SEED_AK_SECRET_MAX 128
#define KMS_SEED_VERSIONS_MAX  100
#define KMS_SEED_PEM_MAX       (64 * 1024)

struct kms_seed {
    const char *path;
    const struct kms_config *cfg;
    struct kms_db *db;
    time_t now;
    bool apply; /* false: the checking pass */
    struct kms_request req;
    unsigned created[4]; /* keys, aliases, secrets, access keys */
    unsigned existed[4];
};

enum { KMS_SEED_KEYS, KMS_SEED_ALIASES, KMS_SEED_SECRETS, KMS_SEED_ACCESS_KEYS };

/* ---- reporting ---- */

static kms_err kms_seed_bad(const struct kms_seed *s, const char *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static kms_err kms_seed_bad(const struct kms_seed *s, const char *loc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kms_log_error("seed: %s: %s: %s", s->path, loc, msg);
    return KMS_E_INVALID_PARAMETER;
}

/* A location too deep for the buffer is clipped, and ends in "..." to say so. */
static void kms_seed_clipped(char *out, int n)
{
    if (n < 0 || n >= KMS_SEED_LOC_MAX)
        memcpy(out + KMS_SEED_LOC_MAX - 4, "...", 4);
}

static void kms_seed_loc(char *out, const char *parent, const char *member)
{
    kms_seed_clipped(out, snprintf(out, KMS_SEED_LOC_MAX, "%s.%s", parent, member));
}

static void kms_seed_loc_index(char *out, const char *parent, const char *member, int i)
{
    kms_seed_clipped(out, snprintf(out, KMS_SEED_LOC_MAX, "%s.%s[%d]", parent, member, i));
}

/* ---- reading members ---- */

/* Every member of obj (an object) is one of allowed (NULL-terminated). */
static kms_err kms_seed_members(const struct kms_seed *s, const cJSON *obj, const char *loc,
                                const char *const *allowed)
{
    if (!cJSON_IsObject(obj))
        return kms_seed_bad(s, loc, "expected an object");
    for (const cJSON *m = obj->child; m != NULL; m = m->next) {
        bool known = false;

        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(m->string, allowed[i]) == 0;
        if (!known)
            return kms_seed_bad(s, loc, "unknown member \"%s\"", m->string);
    }
    return KMS_OK;
}

/* A string member (NULL when absent and optional). */
static kms_err kms_seed_str(const struct kms_seed *s, const cJSON *obj, const char *loc,
                            const char *name, bool required, const char **out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);
    char where[KMS_SEED_LOC_MAX];

    *out = NULL;
    kms_seed_loc(where, loc, name);
    if (m == NULL) {
        if (required)
            return kms_seed_bad(s, loc, "\"%s\" is required", name);
        return KMS_OK;
    }
    if (!cJSON_IsString(m))
        return kms_seed_bad(s, where, "expected a string");
    *out = m->valuestring;
    return KMS_OK;
}

/* An array member (NULL when absent). */
static kms_err kms_seed_array(const struct kms_seed *s, const cJSON *obj, const char *loc,
                              const char *name, const cJSON **out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);
    char where[KMS_SEED_LOC_MAX];

    *out = NULL;
    if (m == NULL)
        return KMS_OK;
    kms_seed_loc(where, loc, name);
    if (!cJSON_IsArray(m))
        return kms_seed_bad(s, where, "expected an array");
    *out = m;
    return KMS_OK;
}

/* 1-max characters of A-Z a-z 0-9 and extra. */
static bool kms_seed_id_valid(const char *id, size_t max, const char *extra)
{
    size_t len = strlen(id);

    if (len == 0 || len > max)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr(extra, *p) != NULL))
            return false;
    return true;
}

/* ---- requests through the API's handlers ---- */

/* Appends name=value (percent-encoded) to a form body. */
static kms_err kms_seed_form(struct kms_buf *form, const char *name, const char *value)
{
    kms_err rc = KMS_OK;

    if (value == NULL)
        return KMS_OK;
    if (form->len > 0)
        rc = kms_buf_append_char(form, '&');
    if (rc == KMS_OK)
        rc = kms_percent_encode(form, name, strlen(name));
    if (rc == KMS_OK)
        rc = kms_buf_append_char(form, '=');
    if (rc == KMS_OK)
        rc = kms_percent_encode(form, value, strlen(value));
    return rc;
}

/*
 * Runs handler as the admin with the parameters in form. KMS_OK; a tolerated error (tolerated:
 * a list ending in KMS_OK, or NULL) as the handler returned it; any other error is reported at
 * loc and KMS_E_INVALID_PARAMETER ("reported") returned.
 */
static kms_err kms_seed_call(struct kms_seed *s, kms_handler_fn handler, const struct kms_buf *form,
                             const char *loc, const kms_err *tolerated)
{
    struct kms_call call;
    const char *dup = NULL;
    char message[512];
    kms_err rc;

    memset(&call, 0, sizeof(call));
    call.req = &s->req;
    call.cfg = s->cfg;
    call.db = s->db;
    call.now = s->now;
    call.authenticated = true;
    call.principal.admin = true;
    snprintf(call.principal.access_key_id, sizeof(call.principal.access_key_id), "seed");
    kms_uuid_generate(call.request_id);
    call.out = cJSON_CreateObject();
    rc = call.out ? KMS_OK : KMS_E_INTERNAL;
    if (rc == KMS_OK)
        rc =
            kms_params_parse(&call.params, form->data ? form->data : "", form->len, KMS_PARAM_BODY);
    if (rc == KMS_OK)
        rc = kms_params_finish(&call.params, &dup);
    if (rc == KMS_OK)
        rc = handler(&call);
    kms_store_rollback(s->db);
    if (rc != KMS_OK) {
        bool quiet = false;

        for (size_t i = 0; tolerated != NULL && tolerated[i] != KMS_OK && !quiet; i++)
            quiet = tolerated[i] == rc;
        if (!quiet) {
            kms_err_message(rc, call.detail.data, message, sizeof(message));
            rc = kms_seed_bad(s, loc, "%s: %s", kms_err_info(rc)->code, message);
        }
    }
    cJSON_Delete(call.out);
    kms_params_free(&call.params);
    kms_buf_free(&call.detail);
    return rc;
}

/* A call context for helpers that take one (tag parsing), as the admin. */
static void kms_seed_plain_call(struct kms_seed *s, struct kms_call *call)
{
    memset(call, 0, sizeof(*call));
    call->req = &s->req;
    call->cfg = s->cfg;
    call->db = s->db;
    call->now = s->now;
    call->authenticated = true;
    call->principal.admin = true;
}

/*
 * Tags: the API's array [{"TagKey","TagValue"}] or an object {"key": "value"}; *json_out gets the
 * array form as text (owned, free()), checked with the API's tag rules.
 */
static kms_err kms_seed_tags(struct kms_seed *s, const cJSON *obj, const char *loc, char **json_out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "Tags");
    char where[KMS_SEED_LOC_MAX];
    struct kms_call call;
    struct kms_tag *tags = NULL;
    size_t count = 0;
    cJSON *array;
    kms_err rc;

    *json_out = NULL;
    if (m == NULL)
        return KMS_OK;
    kms_seed_loc(where, loc, "Tags");
    if (cJSON_IsArray(m)) {
        array = cJSON_Duplicate(m, true);
    } else if (cJSON_IsObject(m)) {
        array = cJSON_CreateArray();
        for (const cJSON *t = m->child; array != NULL && t != NULL; t = t->next) {
            cJSON *item = cJSON_CreateObject();

            if (!cJSON_IsString(t)) {
                cJSON_Delete(item);
                cJSON_Delete(array);
                return kms_seed_bad(s, where, "the value of tag \"%s\" is not a string", t->string);
            }
            if (item == NULL || !cJSON_AddStringToObject(item, "TagKey", t->string) ||
                !cJSON_AddStringToObject(item, "TagValue", t->valuestring)) {
                cJSON_Delete(item);
                cJSON_Delete(array);
                return KMS_E_INTERNAL;
            }
            cJSON_AddItemToArray(array, item);
        }
    } else {
        return kms_seed_bad(s, where, "expected an object or an array of {TagKey, TagValue}");
    }
    if (array == NULL)
        return KMS_E_INTERNAL;
    *json_out = cJSON_PrintUnformatted(array);
    cJSON_Delete(array);
    if (*json_out == NULL)
        return KMS_E_INTERNAL;
    if (strcmp(*json_out, "[]") == 0) {
        free(*json_out);
        *json_out = NULL;
        return KMS_OK;
    }
    kms_seed_plain_call(s, &call);
    rc = kms_tags_parse(&call, "Tags", *json_out, &tags, &count);
    kms_tags_free(tags, count);
    kms_buf_free(&call.detail);
    if (rc != KMS_OK) {
        free(*json_out);
        *json_out = NULL;
        return kms_seed_bad(s, where, "not valid tags (%s)", kms_err_info(rc)->code);
    }
    return KMS_OK;
}

/* ---- keys ---- */

struct kms_seed_version {
    char sv_id[KMS_UUID_LEN];
    bool sv_given;              /* material given in the file */
    struct kms_buf sv_material; /* symmetric bytes, or PKCS#8 DER: secret */
    struct kms_buf sv_public;   /* asymmetric given material: its SubjectPublicKeyInfo */
};

static void kms_seed_versions_free(struct kms_seed_version *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++) {
        kms_buf_free_secret(&v[i].sv_material);
        kms_buf_free(&v[i].sv_public);
    }
    free(v);
}

/* Base64 Material of a symmetric version: exactly the spec's key length. */
static kms_err kms_seed_material(struct kms_seed *s, const char *loc, const char *text,
                                 const struct kms_key_spec_info *info, struct kms_buf *out)
{
    size_t n = 0, len = strlen(text);
    kms_err rc = kms_buf_reserve(out, KMS_B64_DECODED_MAX(len) + 1);

    if (rc != KMS_OK)
        return rc;
    if (!kms_b64_decode(text, len, (uint8_t *)out->data, &n))
        return kms_seed_bad(s, loc, "not valid Base64");
    out->len = n;
    if (n != info->material_len)
        return kms_seed_bad(s, loc, "%s needs %zu bytes of material, not %zu", info->name,
                            info->material_len, n);
    return KMS_OK;
}

/* PrivateKeyPem of an asymmetric version: a private key of the key's spec, as PKCS#8 DER. */
static kms_err kms_seed_private_key(struct kms_seed *s, const char *loc, const char *pem,
                                    const struct kms_key_spec_info *info,
                                    struct kms_seed_version *v)
{
    struct evp_pkey_st *pkey = NULL;
    kms_err rc;

    if (strlen(pem) > KMS_SEED_PEM_MAX ||
        kms_pkey_from_private_pem(pem, strlen(pem), &pkey) != KMS_OK)
        return kms_seed_bad(s, loc, "not an unencrypted PEM private key of a supported kind");
    if (kms_pkey_spec(pkey) != info->spec) {
        kms_pkey_free(pkey);
        return kms_seed_bad(s, loc, "the private key is not a %s key", info->name);
    }
    rc = kms_pkey_private_der(pkey, &v->sv_material);
    if (rc == KMS_OK)
        rc = kms_pkey_public_der(pkey, &v->sv_public);
    kms_pkey_free(pkey);
    return rc;
}

static kms_err kms_seed_key_versions(struct kms_seed *s, const cJSON *key, const char *loc,
                                     const struct kms_key_record *k, struct kms_seed_version **out,
                                     size_t *count)
{
    static const char *const allowed[] = {"KeyVersionId", "Material", "PrivateKeyPem", NULL};
    const struct kms_key_spec_info *info = kms_key_spec_get(k->spec);
    const cJSON *list = NULL;
    struct kms_seed_version *v;
    size_t n = 1;
    int i = 0;
    kms_err rc = kms_seed_array(s, key, loc, "Versions", &list);

    *out = NULL;
    *count = 0;
    if (rc != KMS_OK)
        return rc;
    if (list != NULL && cJSON_GetArraySize(list) > 0)
        n = (size_t)cJSON_GetArraySize(list);
    if (n > KMS_SEED_VERSIONS_MAX)
        return kms_seed_bad(s, loc, "more than %d Versions", KMS_SEED_VERSIONS_MAX);
    v = calloc(n, sizeof(*v));
    if (v == NULL)
        return KMS_E_INTERNAL;
    for (const cJSON *item = list ? list->child : NULL; rc == KMS_OK && item != NULL;
         item = item->next, i++) {
        char where[KMS_SEED_LOC_MAX], member[KMS_SEED_LOC_MAX];
        const char *id = NULL, *material = NULL, *pem = NULL;
        uint8_t raw[16];

        kms_seed_loc_index(where, loc, "Versions", i);
        rc = kms_seed_members(s, item, where, allowed);
        if (rc == KMS_OK)
            rc = kms_seed_str(s, item, where, "KeyVersionId", false, &id);
        if (rc == KMS_OK)
            rc = kms_seed_str(s, item, where, "Material", false, &material);
        if (rc == KMS_OK)
            rc = kms_seed_str(s, item, where, "PrivateKeyPem", false, &pem);
        if (rc != KMS_OK)
            break;
        if (id != NULL) {
            kms_seed_loc(member, where, "KeyVersionId");
            if (!kms_uuid_parse(id, raw)) {
                rc = kms_seed_bad(s, member, "not a UUID (ciphertexts carry version ids as UUIDs)");
                break;
            }
            kms_uuid_unparse(raw, v[i].sv_id);
            for (int j = 0; j < i && rc == KMS_OK; j++)
                if (strcmp(v[j].sv_id, v[i].sv_id) == 0)
                    rc = kms_seed_bad(s, member, "the same id as Versions[%d]", j);
        }
        if (rc == KMS_OK && (material != NULL || pem != NULL) &&
            k->protection == KMS_PROTECTION_HSM)
            rc = kms_seed_bad(s, where,
                              "HSM keys are made inside the token: no material can be given");
        if (rc == KMS_OK && material != NULL) {
            kms_seed_loc(member, where, "Material");
            rc = info->symmetric
                     ? kms_seed_material(s, member, material, info, &v[i].sv_material)
                     : kms_seed_bad(s, member, "asymmetric keys take PrivateKeyPem, not Material");
            v[i].sv_given = true;
        }
        if (rc == KMS_OK && pem != NULL) {
            kms_seed_loc(member, where, "PrivateKeyPem");
            if (info->symmetric || material != NULL)
                rc = kms_seed_bad(s, member, "only for asymmetric keys, instead of Material");
            else
                rc = kms_seed_private_key(s, member, pem, info, &v[i]);
            v[i].sv_given = true;
        }
    }
    if (rc != KMS_OK) {
        kms_seed_versions_free(v, n);
        return rc;
    }
    for (size_t j = 0; j < n; j++)
        if (v[j].sv_id[0] == '\0')
            kms_uuid_generate(v[j].sv_id);
    *out = v;
    *count = n;
    return KMS_OK;
}

/* The key's own settings into k (description points into the JSON). */
static kms_err kms_seed_key_record(struct kms_seed *s, const cJSON *key, const char *loc,
                                   struct kms_key_record *k)
{
    const struct kms_key_spec_info *info;
    const char *id, *spec, *usage, *level, *description, *state, *interval;
    char where[KMS_SEED_LOC_MAX];
    struct kms_keystore *ks;
    kms_err rc;

    rc = kms_seed_str(s, key, loc, "KeyId", true, &id);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, key, loc, "KeySpec", false, &spec);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, key, loc, "KeyUsage", false, &usage);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, key, loc, "ProtectionLevel", false, &level);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, key, loc, "Description", false, &description);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, key, loc, "KeyState", false, &state);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, key, loc, "RotationInterval", false, &interval);
    if (rc != KMS_OK)
        return rc;
    kms_seed_loc(where, loc, "KeyId");
    if (!kms_seed_id_valid(id, KMS_SEED_ID_MAX, "-_"))
        return kms_seed_bad(s, where, "1-%d characters of A-Z a-z 0-9 - _", KMS_SEED_ID_MAX);
    snprintf(k->key_id, sizeof(k->key_id), "%s", id);
    info = kms_key_spec_by_name(spec ? spec : "Aliyun_AES_256");
    kms_seed_loc(where, loc, "KeySpec");
    if (info == NULL)
        return kms_seed_bad(s, where, "unknown KeySpec \"%s\"", spec);
    k->spec = info->spec;
    k->usage = info->default_usage;
    kms_seed_loc(where, loc, "KeyUsage");
    if (usage != NULL && !kms_key_usage_parse(usage, &k->usage))
        return kms_seed_bad(s, where, "unknown KeyUsage \"%s\"", usage);
    if ((info->usages & k->usage) == 0)
        return kms_seed_bad(s, where, "%s keys cannot be used for %s", info->name, usage);
    kms_seed_loc(where, loc, "ProtectionLevel");
    if (level != NULL && !kms_protection_parse(level, &k->protection))
        return kms_seed_bad(s, where, "unknown ProtectionLevel \"%s\"", level);
    ks = kms_keystore_for(k->protection);
    if (ks == NULL)
        return kms_seed_bad(s, where, "no keystore for %s is configured",
                            kms_protection_name(k->protection));
    if (!kms_keystore_supports(ks, info->spec, KMS_ORIGIN_KMS) ||
        (info->national && s->cfg->gm_requires_hsm && k->protection != KMS_PROTECTION_HSM))
        return kms_seed_bad(s, where, "%s keys are not available with %s", info->name,
                            kms_protection_name(k->protection));
    kms_seed_loc(where, loc, "Description");
    if (description != NULL &&
        kms_utf8_length(description, strlen(description)) > KMS_SEED_DESCRIPTION)
        return kms_seed_bad(s, where, "longer than %d characters", KMS_SEED_DESCRIPTION);
    k->description = (char *)(description ? description : "");
    k->deletion_protection_desc = "";
    kms_seed_loc(where, loc, "KeyState");
    if (state == NULL || strcmp(state, "Enabled") == 0)
        k->state = KMS_STATE_ENABLED;
    else if (strcmp(state, "Disabled") == 0)
        k->state = KMS_STATE_DISABLED;
    else
        return kms_seed_bad(s, where, "Enabled or Disabled, not \"%s\"", state);
    if (interval != NULL) {
        kms_seed_loc(where, loc, "RotationInterval");
        if (!info->symmetric)
            return kms_seed_bad(s, where, "only symmetric keys rotate automatically");
        if (!kms_duration_parse(interval, &k->rotation_interval) ||
            k->rotation_interval < KMS_ROTATION_INTERVAL_MIN ||
            k->rotation_interval > KMS_ROTATION_INTERVAL_MAX)
            return kms_seed_bad(s, where, "a duration from 7d to 730d, not \"%s\"", interval);
    }
    k->origin = KMS_ORIGIN_KMS;
    return KMS_OK;
}

/* Material of every version: given (imported into the keystore) or made by the keystore. */
static kms_err kms_seed_make_versions(struct kms_seed *s, const struct kms_key_record *k,
                                      struct kms_seed_version *sv, size_t n,
                                      struct kms_version_record *out)
{
    struct kms_keystore *ks = kms_keystore_for(k->protection);
    kms_err rc = KMS_OK;

    for (size_t i = 0; rc == KMS_OK && i < n; i++) {
        struct kms_ks_ref ref = {k->key_id, sv[i].sv_id, k->spec};
        struct kms_buf stored = {0}, public_der = {0};

        snprintf(out[i].version_id, sizeof(out[i].version_id), "%s", sv[i].sv_id);
        snprintf(out[i].key_id, sizeof(out[i].key_id), "%s", k->key_id);
        /* Oldest first, a second apart, so the order of the list is the order of rotation. */
        out[i].created_at = s->now - (int64_t)(n - 1 - i);
        if (sv[i].sv_given) {
            rc = ks->ks_ops->ks_import(ks, &ref, (const uint8_t *)sv[i].sv_material.data,
                                       sv[i].sv_material.len, &stored);
            if (rc == KMS_OK && sv[i].sv_public.len > 0)
                rc = kms_buf_append(&public_der, sv[i].sv_public.data, sv[i].sv_public.len);
        } else {
            rc = ks->ks_ops->ks_create(ks, &ref, &stored, &public_der);
        }
        out[i].material = (uint8_t *)stored.data;
        out[i].material_len = stored.len;
        out[i].public_der = (uint8_t *)public_der.data;
        out[i].public_der_len = public_der.len;
    }
    return rc;
}

/* Given version ids must be new: not another key's, not a destroyed key's (whose ciphertexts
 * would come back to life), and never twice in a token (CKA_ID). */
static kms_err kms_seed_versions_unused(struct kms_seed *s, const char *loc,
                                        const struct kms_seed_version *sv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct kms_version_record other;
        bool destroyed = false;
        kms_err rc = kms_store_version_get(s->db, sv[i].sv_id, &other);

        if (rc == KMS_OK) {
            kms_version_record_free(&other);
            return kms_seed_bad(s, loc, "KeyVersionId %s belongs to another key already",
                                sv[i].sv_id);
        }
        if (rc != KMS_E_KEY_VERSION_NOT_FOUND)
            return rc;
        rc = kms_store_version_destroyed(s->db, sv[i].sv_id, &destroyed);
        if (rc != KMS_OK)
            return rc;
        if (destroyed)
            return kms_seed_bad(s, loc, "KeyVersionId %s was a version of a deleted key",
                                sv[i].sv_id);
    }
    return KMS_OK;
}

static kms_err kms_seed_insert_key(struct kms_seed *s, const char *loc, struct kms_key_record *k,
                                   struct kms_version_record *v, size_t n, const char *tags_json)
{
    struct kms_tag *tags = NULL;
    size_t tag_count = 0;
    struct kms_call call;
    int64_t count = 0;
    kms_err rc = KMS_OK;

    kms_seed_plain_call(s, &call);
    if (tags_json != NULL)
        rc = kms_tags_parse(&call, "Tags", tags_json, &tags, &tag_count);
    if (rc == KMS_OK)
        rc = kms_store_begin(s->db);
    if (rc == KMS_OK)
        rc = kms_store_key_count(s->db, false, &count);
    if (rc == KMS_OK && count >= s->cfg->max_keys)
        rc = kms_seed_bad(s, loc, "the key quota ([keys] max_keys = %d) is reached",
                          s->cfg->max_keys);
    if (rc == KMS_OK)
        rc = kms_store_version_count_all(s->db, &count);
    if (rc == KMS_OK && count + (int64_t)n > s->cfg->max_key_versions)
        rc = kms_seed_bad(s, loc, "the version quota ([keys] max_key_versions = %d) is reached",
                          s->cfg->max_key_versions);
    if (rc == KMS_OK)
        rc = kms_store_key_insert(s->db, k);
    for (size_t i = 0; rc == KMS_OK && i < n; i++) {
        rc = kms_store_version_insert(s->db, &v[i]);
        if (rc == KMS_E_RESOURCE_EXISTS)
            rc = kms_seed_bad(s, loc, "KeyVersionId %s belongs to another key already",
                              v[i].version_id);
    }
    if (rc == KMS_OK && tag_count > 0)
        rc = kms_store_tags_put(s->db, "key", k->key_id, tags, tag_count);
    if (rc == KMS_OK)
        rc = kms_store_commit(s->db);
    kms_store_rollback(s->db);
    kms_tags_free(tags, tag_count);
    kms_buf_free(&call.detail);
    return rc;
}

static kms_err kms_seed_aliases(struct kms_seed *s, const cJSON *key, const char *loc,
                                const char *key_id)
{
    static const kms_err tolerated[] = {KMS_E_ALIAS_EXISTS, KMS_OK};
    const cJSON *list = NULL;
    int i = 0;
    kms_err rc = kms_seed_array(s, key, loc, "Aliases", &list);

    for (const cJSON *a = list ? list->child : NULL; rc == KMS_OK && a != NULL; a = a->next, i++) {
        char where[KMS_SEED_LOC_MAX];
        struct kms_buf form = {0};

        kms_seed_loc_index(where, loc, "Aliases", i);
        if (!cJSON_IsString(a) || strncmp(a->valuestring, "alias/", 6) != 0) {
            rc = kms_seed_bad(s, where, "expected a string \"alias/<name>\"");
            break;
        }
        if (!s->apply)
            continue;
        rc = kms_seed_form(&form, "AliasName", a->valuestring);
        if (rc == KMS_OK)
            rc = kms_seed_form(&form, "KeyId", key_id);
        if (rc == KMS_OK)
            rc = kms_seed_call(s, kms_api_create_alias, &form, where, tolerated);
        if (rc == KMS_E_ALIAS_EXISTS) {
            kms_log_info("seed: alias %s exists; left as it is", a->valuestring);
            s->existed[KMS_SEED_ALIASES]++;
            rc = KMS_OK;
        } else if (rc == KMS_OK) {
            s->created[KMS_SEED_ALIASES]++;
        }
        kms_buf_free(&form);
    }
    return rc;
}

static kms_err kms_seed_key(struct kms_seed *s, const cJSON *key, const char *loc)
{
    static const char *const allowed[] = {
        "KeyId",    "KeySpec",          "KeyUsage", "ProtectionLevel", "Description",
        "KeyState", "RotationInterval", "Versions", "Aliases",         "Tags",
        NULL};
    struct kms_key_record k, existing;
    struct kms_seed_version *sv = NULL;
    struct kms_version_record *v = NULL;
    char *tags_json = NULL;
    size_t n = 0;
    kms_err rc;

    memset(&k, 0, sizeof(k));
    rc = kms_seed_members(s, key, loc, allowed);
    if (rc == KMS_OK)
        rc = kms_seed_key_record(s, key, loc, &k);
    if (rc == KMS_OK)
        rc = kms_seed_tags(s, key, loc, &tags_json);
    if (rc == KMS_OK)
        rc = kms_seed_key_versions(s, key, loc, &k, &sv, &n);
    if (rc == KMS_OK && !s->apply)
        rc = kms_seed_aliases(s, key, loc, k.key_id);
    if (rc != KMS_OK || !s->apply)
        goto out;
    rc = kms_store_key_get(s->db, k.key_id, &existing);
    if (rc == KMS_OK) {
        kms_key_record_free(&existing);
        kms_log_info("seed: key %s exists; left as it is", k.key_id);
        s->existed[KMS_SEED_KEYS]++;
        rc = kms_seed_aliases(s, key, loc, k.key_id);
        goto out;
    }
    if (rc != KMS_E_KEY_NOT_FOUND)
        goto out;
    rc = kms_seed_versions_unused(s, loc, sv, n);
    if (rc != KMS_OK)
        goto out;
    v = calloc(n, sizeof(*v));
    rc = v ? KMS_OK : KMS_E_INTERNAL;
    /* Material before the write lock: key-pair generation can take a while. */
    if (rc == KMS_OK)
        rc = kms_seed_make_versions(s, &k, sv, n, v);
    if (rc != KMS_OK) {
        kms_seed_bad(s, loc, "the keystore could not make the material (%s)",
                     kms_err_info(rc)->code);
        goto discard;
    }
    k.created_at = s->now;
    k.last_rotation_at = s->now;
    if (k.rotation_interval > 0)
        k.next_rotation_at = s->now + k.rotation_interval;
    if (kms_key_spec_get(k.spec)->symmetric)
        snprintf(k.primary_version, sizeof(k.primary_version), "%s", v[n - 1].version_id);
    rc = kms_seed_insert_key(s, loc, &k, v, n, tags_json);
    if (rc != KMS_OK)
        goto discard;
    kms_key_invalidate(k.key_id);
    kms_log_info("seed: created key %s (%s, %zu version%s)", k.key_id,
                 kms_key_spec_get(k.spec)->name, n, n == 1 ? "" : "s");
    s->created[KMS_SEED_KEYS]++;
    rc = kms_seed_aliases(s, key, loc, k.key_id);
    goto out;
discard:
    /* Token objects of versions the store did not take. */
    for (size_t i = 0; v != NULL && i < n; i++)
        if (v[i].version_id[0] != '\0')
            kms_key_discard_version(&k, &v[i]);
out:
    for (size_t i = 0; v != NULL && i < n; i++)
        kms_version_record_free(&v[i]);
    free(v);
    kms_seed_versions_free(sv, n);
    free(tags_json);
    return rc;
}

/* ---- secrets ---- */

/* One version of a secret: the first through CreateSecret, later ones through PutSecretValue. */
static kms_err kms_seed_secret_version(struct kms_seed *s, const char *loc, bool first,
                                       const cJSON *secret, const char *version, const char *data,
                                       const char *tags_json)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(secret, "SecretDataType");
    struct kms_buf form = {0};
    kms_err rc;

    rc = kms_seed_form(&form, "SecretName",
                       cJSON_GetObjectItemCaseSensitive(secret, "SecretName")->valuestring);
    if (rc == KMS_OK)
        rc = kms_seed_form(&form, "VersionId", version);
    if (rc == KMS_OK)
        rc = kms_seed_form(&form, "SecretData", data);
    if (rc == KMS_OK)
        rc = kms_seed_form(&form, "SecretDataType", type ? type->valuestring : NULL);
    if (first) {
        const cJSON *description = cJSON_GetObjectItemCaseSensitive(secret, "Description");
        const cJSON *key_id = cJSON_GetObjectItemCaseSensitive(secret, "EncryptionKeyId");

        if (rc == KMS_OK)
            rc = kms_seed_form(&form, "Description", description ? description->valuestring : NULL);
        if (rc == KMS_OK)
            rc = kms_seed_form(&form, "EncryptionKeyId", key_id ? key_id->valuestring : NULL);
        if (rc == KMS_OK)
            rc = kms_seed_form(&form, "Tags", tags_json);
    }
    if (rc == KMS_OK)
        rc = kms_seed_call(s, first ? kms_api_create_secret : kms_api_put_secret_value, &form, loc,
                           NULL);
    kms_buf_free_secret(&form);
    return rc;
}

static kms_err kms_seed_secret(struct kms_seed *s, const cJSON *secret, const char *loc)
{
    static const char *const allowed[] = {"SecretName",     "Description", "EncryptionKeyId",
                                          "SecretDataType", "Tags",        "SecretData",
                                          "VersionId",      "Versions",    NULL};
    static const char *const version_allowed[] = {"VersionId", "SecretData", NULL};
    const char *name, *description, *key_id, *type, *data, *version;
    const cJSON *versions = NULL;
    struct kms_secret_record existing;
    char *tags_json = NULL;
    int i = 0;
    kms_err rc;

    rc = kms_seed_members(s, secret, loc, allowed);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, secret, loc, "SecretName", true, &name);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, secret, loc, "Description", false, &description);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, secret, loc, "EncryptionKeyId", false, &key_id);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, secret, loc, "SecretDataType", false, &type);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, secret, loc, "SecretData", false, &data);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, secret, loc, "VersionId", false, &version);
    if (rc == KMS_OK)
        rc = kms_seed_array(s, secret, loc, "Versions", &versions);
    if (rc == KMS_OK)
        rc = kms_seed_tags(s, secret, loc, &tags_json);
    if (rc != KMS_OK)
        goto out;
    if (versions != NULL && (data != NULL || version != NULL)) {
        rc = kms_seed_bad(s, loc, "give either SecretData and VersionId, or Versions");
        goto out;
    }
    if (versions == NULL && (data == NULL || version == NULL)) {
        rc = kms_seed_bad(s, loc, "SecretData and VersionId (or Versions) are required");
        goto out;
    }
    if (versions != NULL && cJSON_GetArraySize(versions) == 0) {
        rc = kms_seed_bad(s, loc, "Versions is empty");
        goto out;
    }
    for (const cJSON *item = versions ? versions->child : NULL; rc == KMS_OK && item != NULL;
         item = item->next, i++) {
        char where[KMS_SEED_LOC_MAX];
        const char *vid = NULL, *vdata = NULL;

        kms_seed_loc_index(where, loc, "Versions", i);
        rc = kms_seed_members(s, item, where, version_allowed);
        if (rc == KMS_OK)
            rc = kms_seed_str(s, item, where, "VersionId", true, &vid);
        if (rc == KMS_OK)
            rc = kms_seed_str(s, item, where, "SecretData", true, &vdata);
    }
    if (rc != KMS_OK || !s->apply)
        goto out;
    rc = kms_store_secret_get(s->db, name, &existing);
    if (rc == KMS_OK) {
        kms_secret_record_free(&existing);
        kms_log_info("seed: secret %s exists; left as it is", name);
        s->existed[KMS_SEED_SECRETS]++;
        goto out;
    }
    if (rc != KMS_E_RESOURCE_NOT_FOUND)
        goto out;
    rc = KMS_OK;
    if (versions == NULL) {
        rc = kms_seed_secret_version(s, loc, true, secret, version, data, tags_json);
    } else {
        i = 0;
        for (const cJSON *item = versions->child; rc == KMS_OK && item != NULL;
             item = item->next, i++) {
            char where[KMS_SEED_LOC_MAX];

            kms_seed_loc_index(where, loc, "Versions", i);
            rc = kms_seed_secret_version(
                s, where, i == 0, secret,
                cJSON_GetObjectItemCaseSensitive(item, "VersionId")->valuestring,
                cJSON_GetObjectItemCaseSensitive(item, "SecretData")->valuestring, tags_json);
        }
    }
    if (rc == KMS_OK) {
        kms_log_info("seed: created secret %s", name);
        s->created[KMS_SEED_SECRETS]++;
    }
out:
    free(tags_json);
    return rc;
}

/* ---- access keys ---- */

static kms_err kms_seed_access_key(struct kms_seed *s, const cJSON *ak, const char *loc)
{
    static const char *const allowed[] = {"AccessKeyId", "AccessKeySecret", "Admin",
                                          "AapName",     "Description",     NULL};
    const cJSON *admin = cJSON_GetObjectItemCaseSensitive(ak, "Admin");
    const char *id, *secret, *aap, *description;
    struct kms_access_key_record existing;
    char where[KMS_SEED_LOC_MAX];
    size_t secret_len;
    kms_err rc;

    rc = kms_seed_members(s, ak, loc, allowed);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, ak, loc, "AccessKeyId", true, &id);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, ak, loc, "AccessKeySecret", true, &secret);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, ak, loc, "AapName", false, &aap);
    if (rc == KMS_OK)
        rc = kms_seed_str(s, ak, loc, "Description", false, &description);
    if (rc != KMS_OK)
        return rc;
    kms_seed_loc(where, loc, "AccessKeyId");
    if (!kms_seed_id_valid(id, KMS_SEED_ID_MAX, "-_.") || strncmp(id, "STS.", 4) == 0)
        return kms_seed_bad(s, where, "1-%d characters of A-Z a-z 0-9 - _ ., not starting STS.",
                            KMS_SEED_ID_MAX);
    kms_seed_loc(where, loc, "AccessKeySecret");
    secret_len = strlen(secret);
    if (secret_len < KMS_SEED_AK_SECRET_MIN || secret_len > KMS_SEED_AK_SECRET_MAX ||
        !kms_seed_id_valid(secret, KMS_SEED_AK_SECRET_MAX, "!#$%&()*+,-./:;<=>?@[]^_{|}~"))
        return kms_seed_bad(s, where, "%d-%d printable ASCII characters without spaces or quotes",
                            KMS_SEED_AK_SECRET_MIN, KMS_SEED_AK_SECRET_MAX);
    kms_seed_loc(where, loc, "Admin");
    if (admin != NULL && !cJSON_IsBool(admin))
        return kms_seed_bad(s, where, "expected true or false");
    if ((aap != NULL) == cJSON_IsTrue(admin))
        return kms_seed_bad(s, loc, "give \"Admin\": true (an admin access key) or \"AapName\"");
    /* Checked before anything is written: an access point's key needs its access point, made
     * beforehand through the API, that authenticates with access keys. */
    if (aap != NULL) {
        struct kms_aap_record rec;
        bool usable = false;

        if (kms_store_aap_get(s->db, aap, &rec) == KMS_OK) {
            usable = strcmp(rec.auth_method, KMS_AAP_ACCESS_KEY) == 0;
            kms_aap_record_free(&rec);
        }
        kms_seed_loc(where, loc, "AapName");
        if (!usable)
            return kms_seed_bad(s, where, "no access point %s with AuthenticationMethod AccessKey",
                                aap);
    }
    if (!s->apply)
        return KMS_OK;
    rc = kms_store_access_key_get(s->db, id, &existing);
    if (rc == KMS_OK) {
        kms_access_key_record_free(&existing);
        kms_log_info("seed: access key %s exists; left as it is", id);
        s->existed[KMS_SEED_ACCESS_KEYS]++;
        return KMS_OK;
    }
    if (rc != KMS_E_ACCESS_KEY_NOT_FOUND)
        return rc;
    rc = kms_store_begin(s->db);
    if (rc == KMS_OK && aap != NULL)
        rc = kms_credentials_create_for_aap(s->db, aap, s->cfg->max_access_keys_per_aap, id, secret,
                                            description ? description : "seeded", s->now);
    else if (rc == KMS_OK)
        rc = kms_credentials_create(s->db, id, secret, true, "",
                                    description ? description : "seeded", s->now);
    if (rc == KMS_OK)
        rc = kms_store_commit(s->db);
    kms_store_rollback(s->db);
    if (rc != KMS_OK)
        return kms_seed_bad(s, loc, "cannot store the access key (%s)", kms_err_info(rc)->code);
    kms_credentials_invalidate(id);
    kms_log_info("seed: created %s access key %s", aap ? "an access point's" : "an admin", id);
    s->created[KMS_SEED_ACCESS_KEYS]++;
    return KMS_OK;
}

/* ---- the file ---- */

/* The parsed file holds material and secret values: overwrite every string before freeing. */
static void kms_seed_wipe(cJSON *node)
{
    for (; node != NULL; node = node->next) {
        if (node->valuestring != NULL)
            OPENSSL_cleanse(node->valuestring, strlen(node->valuestring));
        kms_seed_wipe(node->child);
    }
}

static kms_err kms_seed_pass(struct kms_seed *s, const cJSON *root)
{
    static const char *const allowed[] = {"Keys", "Secrets", "AccessKeys", NULL};
    static const char *const lists[] = {"Keys", "Secrets", "AccessKeys"};
    static kms_err (*const fns[])(struct kms_seed *, const cJSON *, const char *) = {
        kms_seed_key, kms_seed_secret, kms_seed_access_key};
    kms_err rc = kms_seed_members(s, root, "$", allowed);

    for (size_t l = 0; rc == KMS_OK && l < KMS_ARRAY_LEN(lists); l++) {
        const cJSON *list = NULL;
        int i = 0;

        rc = kms_seed_array(s, root, "$", lists[l], &list);
        for (const cJSON *item = list ? list->child : NULL; rc == KMS_OK && item != NULL;
             item = item->next, i++) {
            char where[KMS_SEED_LOC_MAX];

            kms_seed_loc_index(where, "$", lists[l], i);
            rc = fns[l](s, item, where);
            /* KMS_E_INVALID_PARAMETER: reported with its location already. */
            if (rc != KMS_OK && rc != KMS_E_INVALID_PARAMETER)
                rc = kms_seed_bad(s, where, "cannot be created (%s)", kms_err_info(rc)->code);
        }
    }
    return rc;
}

static kms_err kms_seed_read(const char *path, struct kms_buf *out)
{
    FILE *f = fopen(path, "rb");
    char chunk[8192];
    size_t n;
    kms_err rc = KMS_OK;

    if (f == NULL) {
        kms_log_error("seed: cannot read %s: %s", path, strerror(errno));
        return KMS_E_INVALID_PARAMETER;
    }
    while (rc == KMS_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (out->len + n > KMS_SEED_FILE_MAX) {
            kms_log_error("seed: %s is larger than %d bytes", path, KMS_SEED_FILE_MAX);
            rc = KMS_E_INVALID_PARAMETER;
        } else {
            rc = kms_buf_append(out, chunk, n);
        }
    }
    if (rc == KMS_OK && ferror(f)) {
        kms_log_error("seed: cannot read %s", path);
        rc = KMS_E_INVALID_PARAMETER;
    }
    OPENSSL_cleanse(chunk, sizeof(chunk));
    fclose(f);
    return rc;
}

/* line:column of a position in text, for JSON syntax errors. */
static void kms_seed_position(const char *text, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

kms_err kms_seed_apply(const struct kms_config *cfg, const char *path)
{
    struct kms_buf text = {0};
    struct kms_seed s;
    const char *end = NULL;
    cJSON *root;
    kms_err rc;

    memset(&s, 0, sizeof(s));
    s.path = path;
    s.cfg = cfg;
    s.db = kms_store_thread();
    s.now = kms_clock_now();
    s.req.method = "POST";
    s.req.path = "/";
    s.req.query = "";
    snprintf(s.req.peer_ip, sizeof(s.req.peer_ip), "seed");
    if (s.db == NULL)
        return KMS_E_INTERNAL;
    rc = kms_seed_read(path, &text);
    if (rc != KMS_OK)
        goto out;
    root = cJSON_ParseWithLengthOpts(text.data ? text.data : "", text.len, &end, false);
    /* Only white space may follow the value (cJSON stops at its end). */
    while (root != NULL && end != NULL && end < text.data + text.len &&
           (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (root != NULL && end != text.data + text.len) {
        cJSON_Delete(root);
        root = NULL;
    }
    if (root == NULL) {
        int line, col;

        kms_seed_position(text.data ? text.data : "", end ? end : cJSON_GetErrorPtr(), &line, &col);
        kms_log_error("seed: %s:%d:%d: not valid JSON", path, line, col);
        rc = KMS_E_INVALID_PARAMETER;
        goto out;
    }
    /* Check everything, then write. */
    rc = kms_seed_pass(&s, root);
    if (rc == KMS_OK) {
        s.apply = true;
        rc = kms_seed_pass(&s, root);
    }
    if (rc == KMS_OK)
        kms_log_info("seed: %s: created %u keys, %u aliases, %u secrets, %u access keys; "
                     "%u objects existed and were left as they are",
                     path, s.created[KMS_SEED_KEYS], s.created[KMS_SEED_ALIASES],
                     s.created[KMS_SEED_SECRETS], s.created[KMS_SEED_ACCESS_KEYS],
                     s.existed[0] + s.existed[1] + s.existed[2] + s.existed[3]);
    kms_seed_wipe(root);
    cJSON_Delete(root);
out:
    kms_buf_free_secret(&text);
    return rc;
}
