/*
 * tags.c - tag actions on one resource (spec/actions.md G1-G3): TagResource, UntagResource,
 * ListResourceTags; and the tag rules shared with CreateKey / CreateSecret.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define KMS_TAG_KEY_MAX   128
#define KMS_TAG_VALUE_MAX 256

/* Seed 003's tag alphabet plus '\' (the current service's): a-zA-Z0-9 / _ - . + = @ : \ */
static bool kms_tag_text_valid(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr("/_-.+=@:\\", c) != NULL))
            return false;
    }
    return true;
}

static bool kms_tag_key_valid(const char *k)
{
    size_t len = strlen(k);

    if (len == 0 || len > KMS_TAG_KEY_MAX || !kms_tag_text_valid(k))
        return false;
    /* Reserved for the provider's own tags. */
    return strncmp(k, "aliyun", 6) != 0 && strncmp(k, "acs:", 4) != 0;
}

bool kms_tag_valid(const char *key, const char *value)
{
    return kms_tag_key_valid(key) && strlen(value) <= KMS_TAG_VALUE_MAX &&
           kms_tag_text_valid(value);
}

kms_err kms_tags_parse(struct kms_call *call, const char *param, const char *json,
                       struct kms_tag **tags, size_t *count)
{
    cJSON *root = cJSON_Parse(json);
    struct kms_tag *list = NULL;
    size_t n = 0;
    int size;
    kms_err rc = KMS_OK;

    *tags = NULL;
    *count = 0;
    if (root == NULL || !cJSON_IsArray(root) || (size = cJSON_GetArraySize(root)) == 0)
        goto invalid;
    list = calloc((size_t)size, sizeof(*list));
    if (list == NULL) {
        rc = KMS_E_INTERNAL;
        goto out;
    }
    for (cJSON *item = root->child; item != NULL; item = item->next) {
        cJSON *k = cJSON_GetObjectItemCaseSensitive(item, "TagKey");
        cJSON *v = cJSON_GetObjectItemCaseSensitive(item, "TagValue");

        if (!cJSON_IsObject(item) || !cJSON_IsString(k) || (v != NULL && !cJSON_IsString(v)))
            goto invalid;
        if (!kms_tag_key_valid(k->valuestring))
            goto invalid;
        if (v != NULL &&
            (strlen(v->valuestring) > KMS_TAG_VALUE_MAX || !kms_tag_text_valid(v->valuestring)))
            goto invalid;
        for (size_t i = 0; i < n; i++)
            if (strcmp(list[i].key, k->valuestring) == 0)
                goto invalid;
        list[n].key = strdup(k->valuestring);
        list[n].value = strdup(v ? v->valuestring : "");
        n++;
        if (list[n - 1].key == NULL || list[n - 1].value == NULL) {
            rc = KMS_E_INTERNAL;
            goto out;
        }
    }
    if ((int64_t)n > call->cfg->max_tags_per_resource) {
        rc = kms_fail(call, KMS_E_LIMIT_EXCEEDED, param);
        goto out;
    }
    *tags = list;
    *count = n;
    list = NULL;
    n = 0;
    goto out;
invalid:
    rc = kms_fail(call, KMS_E_INVALID_PARAMETER, param);
out:
    kms_tags_free(list, n);
    cJSON_Delete(root);
    return rc;
}

/* TagKeys: a JSON array of strings, or (as one SDK documents it) a comma-separated list. */
static kms_err kms_tag_keys_parse(struct kms_call *call, const char *value, char ***keys,
                                  size_t *count)
{
    char **list = NULL;
    size_t n = 0, cap = 0;
    cJSON *root = NULL;
    kms_err rc = KMS_OK;

    if (value[0] == '[') {
        root = cJSON_Parse(value);
        if (root == NULL || !cJSON_IsArray(root) || cJSON_GetArraySize(root) == 0)
            goto invalid;
        cap = (size_t)cJSON_GetArraySize(root);
        list = calloc(cap, sizeof(*list));
        if (list == NULL)
            goto oom;
        for (cJSON *item = root->child; item != NULL; item = item->next) {
            if (!cJSON_IsString(item) || item->valuestring[0] == '\0' ||
                strlen(item->valuestring) > KMS_TAG_KEY_MAX)
                goto invalid;
            list[n] = strdup(item->valuestring);
            if (list[n++] == NULL)
                goto oom;
        }
    } else {
        const char *p = value;

        cap = 1;
        for (const char *q = value; *q; q++)
            cap += *q == ',';
        list = calloc(cap, sizeof(*list));
        if (list == NULL)
            goto oom;
        /* Every segment counts, the one after a trailing comma too: "a," is as wrong as ",a". */
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);

            if (len == 0 || len > KMS_TAG_KEY_MAX)
                goto invalid;
            list[n] = kms_strndup(p, len);
            if (list[n++] == NULL)
                goto oom;
            if (comma == NULL)
                break;
            p = comma + 1;
        }
    }
    *keys = list;
    *count = n;
    cJSON_Delete(root);
    return KMS_OK;
invalid:
    rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "TagKeys");
    goto fail;
oom:
    rc = KMS_E_INTERNAL;
fail:
    kms_store_free_list(list, n);
    cJSON_Delete(root);
    return rc;
}

/* The one resource a TagResource/UntagResource request names: exactly one of three params. */
struct kms_tag_target {
    const char *type; /* "key", "secret" or "certificate" */
    char id[KMS_ID_MAX * 2];
};

static kms_err kms_tag_target(struct kms_call *call, struct kms_tag_target *t)
{
    const char *key_id = kms_arg(call, "KeyId");
    const char *secret = kms_arg(call, "SecretName");
    const char *cert = kms_arg(call, "CertificateId");
    int given = (key_id != NULL) + (secret != NULL) + (cert != NULL);
    struct kms_secret_record secret_rec;
    struct kms_cert_record cert_rec;
    struct kms_key *key;
    kms_err rc;

    if (given == 0)
        return kms_fail(call, KMS_E_MISSING_PARAMETER, "KeyId");
    if (given > 1)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, key_id ? "KeyId" : "SecretName");
    if (secret != NULL) {
        /* Tags are metadata, but a secret pending deletion takes no writes (spec E). */
        rc = kms_secret_resolve(call, "SecretName", false, &secret_rec);
        if (rc != KMS_OK)
            return rc;
        t->type = "secret";
        snprintf(t->id, sizeof(t->id), "%s", secret_rec.name);
        kms_secret_record_free(&secret_rec);
        return KMS_OK;
    }
    if (cert != NULL) {
        /* Tags are metadata: a certificate takes them in every status. */
        rc = kms_cert_resolve(call, "CertificateId", &cert_rec);
        if (rc != KMS_OK)
            return rc;
        t->type = "certificate";
        snprintf(t->id, sizeof(t->id), "%s", cert_rec.certificate_id);
        kms_cert_record_free(&cert_rec);
        return KMS_OK;
    }
    rc = kms_key_resolve(call, "KeyId", KMS_REF_ID_ONLY, &key);
    if (rc != KMS_OK)
        return rc;
    t->type = "key";
    snprintf(t->id, sizeof(t->id), "%s", key->k_rec.key_id);
    kms_key_put(key);
    return KMS_OK;
}

kms_err kms_api_tag_resource(struct kms_call *call)
{
    struct kms_tag_target target;
    struct kms_tag *tags = NULL, *existing = NULL;
    size_t count = 0, existing_count = 0, added = 0;
    const char *json;
    kms_err rc;

    rc = kms_arg_required(call, "Tags", &json);
    if (rc == KMS_OK)
        rc = kms_tag_target(call, &target);
    if (rc == KMS_OK)
        rc = kms_tags_parse(call, "Tags", json, &tags, &count);
    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_store_tags_get(call->db, target.type, target.id, &existing, &existing_count);
    if (rc == KMS_OK) {
        /* The limit counts tags after the merge: overwriting an existing key adds nothing. */
        for (size_t i = 0; i < count; i++) {
            bool known = false;
            for (size_t j = 0; j < existing_count && !known; j++)
                known = strcmp(existing[j].key, tags[i].key) == 0;
            added += !known;
        }
        if ((int64_t)(existing_count + added) > call->cfg->max_tags_per_resource)
            rc = kms_fail(call, KMS_E_LIMIT_EXCEEDED, "Tags");
    }
    if (rc == KMS_OK)
        rc = kms_store_tags_put(call->db, target.type, target.id, tags, count);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    kms_tags_free(tags, count);
    kms_tags_free(existing, existing_count);
    return rc;
}

kms_err kms_api_untag_resource(struct kms_call *call)
{
    struct kms_tag_target target;
    char **keys = NULL;
    size_t count = 0;
    const char *value;
    kms_err rc;

    rc = kms_arg_required(call, "TagKeys", &value);
    if (rc == KMS_OK)
        rc = kms_tag_target(call, &target);
    if (rc == KMS_OK)
        rc = kms_tag_keys_parse(call, value, &keys, &count);
    if (rc == KMS_OK)
        rc = kms_store_tags_remove(call->db, target.type, target.id, (const char *const *)keys,
                                   count);
    kms_store_free_list(keys, count);
    return rc;
}

kms_err kms_api_list_resource_tags(struct kms_call *call)
{
    struct kms_tag *tags = NULL;
    size_t count = 0;
    struct kms_key *key;
    cJSON *list;
    kms_err rc;

    rc = kms_key_resolve(call, "KeyId", KMS_REF_ID_ONLY, &key);
    if (rc != KMS_OK)
        return rc;
    rc = kms_store_tags_get(call->db, "key", key->k_rec.key_id, &tags, &count);
    if (rc == KMS_OK) {
        list = kms_out_list(call->out, "Tags", "Tag");
        if (list == NULL)
            rc = KMS_E_INTERNAL;
        for (size_t i = 0; rc == KMS_OK && i < count; i++) {
            cJSON *item = kms_out_item(list);

            if (item == NULL) {
                rc = KMS_E_INTERNAL;
                break;
            }
            rc |= kms_out_str(item, "KeyId", key->k_rec.key_id);
            rc |= kms_out_str(item, "TagKey", tags[i].key);
            rc |= kms_out_str(item, "TagValue", tags[i].value);
        }
    }
    kms_tags_free(tags, count);
    kms_key_put(key);
    return rc;
}
