/*
 * tag_batch.c - the batch tag actions (spec/actions.md G4-G6): TagResources, UntagResources and
 * ListTagResources, for keys and secrets, with the flattened repeated parameters of the V2.0
 * SDKs (ResourceId.N, Tag.N.Key / Tag.N.Value, TagKey.N; 1-based and contiguous).
 *
 * Writes validate every resource and tag before changing anything, inside one write transaction:
 * a batch is applied whole or not at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kms/crypto.h"

#define KMS_BATCH_RESOURCES_MAX 50
#define KMS_BATCH_TAGS_MAX      20
#define KMS_BATCH_PAGE          200
#define KMS_BATCH_PARAM_MAX     32

/* What a batch request names: its resource type, resources and tags. */
struct kms_batch {
    const char *type; /* "key" or "secret" */
    char ids[KMS_BATCH_RESOURCES_MAX][KMS_ID_MAX * 2];
    size_t id_count;
    const char *tag_keys[KMS_BATCH_TAGS_MAX];
    const char *tag_values[KMS_BATCH_TAGS_MAX]; /* NULL when Tag.N.Value is absent */
    size_t tag_count;
};

/*
 * Collects <prefix>N<suffix> (N = 1..max) into values[N-1] (borrowed from the parameters) and
 * sets *count to the highest N. A parameter of that shape with an index out of range, a leading
 * zero or (unless allow_empty) an empty value is InvalidParameter; others merely sharing the
 * prefix are ignored, as unknown parameters are.
 */
static kms_err kms_batch_collect(struct kms_call *call, const char *prefix, const char *suffix,
                                 size_t max, bool allow_empty, const char **values, size_t *count)
{
    size_t prefix_len = strlen(prefix);

    *count = 0;
    for (size_t i = 0; i < max; i++)
        values[i] = NULL;
    for (size_t i = 0; i < call->params.count; i++) {
        const struct kms_param *p = &call->params.items[i];
        const char *s = p->name + prefix_len;
        size_t n = 0, digits = 0;

        if (strncmp(p->name, prefix, prefix_len) != 0)
            continue;
        while (s[digits] >= '0' && s[digits] <= '9') {
            if (n <= max) /* saturates: any larger index is out of range anyway */
                n = n * 10 + (size_t)(s[digits] - '0');
            digits++;
        }
        if (digits == 0 || strcmp(s + digits, suffix) != 0)
            continue;
        if (s[0] == '0' || n > max || (p->value_len == 0 && !allow_empty))
            return kms_fail(call, KMS_E_INVALID_PARAMETER, p->name);
        values[n - 1] = p->value;
        if (n > *count)
            *count = n;
    }
    return KMS_OK;
}

/* The values 1..count must all be present (no gaps). */
static kms_err kms_batch_contiguous(struct kms_call *call, const char *prefix, const char *suffix,
                                    const char **values, size_t count)
{
    char name[KMS_BATCH_PARAM_MAX];

    for (size_t i = 0; i < count; i++) {
        if (values[i] == NULL) {
            snprintf(name, sizeof(name), "%s%zu%s", prefix, i + 1, suffix);
            return kms_fail(call, KMS_E_MISSING_PARAMETER, name);
        }
    }
    return KMS_OK;
}

/* RegionId (this server's) and ResourceType (key / secret). */
static kms_err kms_batch_scope(struct kms_call *call, struct kms_batch *b)
{
    const char *region, *type;
    kms_err rc = kms_arg_required(call, "RegionId", &region);

    if (rc == KMS_OK && strcmp(region, call->cfg->region) != 0)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "RegionId");
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "ResourceType", &type);
    if (rc != KMS_OK)
        return rc;
    if (strcmp(type, "key") == 0)
        b->type = "key";
    else if (strcmp(type, "secret") == 0)
        b->type = "secret";
    else
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "ResourceType");
    return KMS_OK;
}

/* Resolves every ResourceId.N to its canonical id (key id / secret name); duplicates collapse. */
static kms_err kms_batch_resources(struct kms_call *call, struct kms_batch *b, bool required,
                                   bool allow_pending)
{
    const char *values[KMS_BATCH_RESOURCES_MAX];
    char param[KMS_BATCH_PARAM_MAX];
    size_t count = 0;
    kms_err rc;

    b->id_count = 0;
    rc = kms_batch_collect(call, "ResourceId.", "", KMS_BATCH_RESOURCES_MAX, false, values, &count);
    if (rc == KMS_OK && required && count == 0)
        rc = kms_fail(call, KMS_E_MISSING_PARAMETER, "ResourceId.1");
    if (rc == KMS_OK)
        rc = kms_batch_contiguous(call, "ResourceId.", "", values, count);
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        char id[KMS_ID_MAX * 2];
        bool seen = false;

        snprintf(param, sizeof(param), "ResourceId.%zu", i + 1);
        if (strcmp(b->type, "key") == 0) {
            struct kms_key *key;

            rc = kms_key_resolve(call, param, KMS_REF_ID_ONLY, &key);
            if (rc != KMS_OK)
                break;
            snprintf(id, sizeof(id), "%s", key->k_rec.key_id);
            kms_key_put(key);
        } else {
            struct kms_secret_record s;

            rc = kms_secret_resolve(call, param, allow_pending, &s);
            if (rc != KMS_OK)
                break;
            snprintf(id, sizeof(id), "%s", s.name);
            kms_secret_record_free(&s);
        }
        for (size_t j = 0; j < b->id_count && !seen; j++)
            seen = strcmp(b->ids[j], id) == 0;
        if (!seen)
            memcpy(b->ids[b->id_count++], id, sizeof(id));
    }
    return rc;
}

/* Tag.N.Key / Tag.N.Value. A value absent or empty means "" to TagResources and "any value" to
 * ListTagResources. */
static kms_err kms_batch_tags(struct kms_call *call, struct kms_batch *b, bool required)
{
    const char *values[KMS_BATCH_TAGS_MAX];
    size_t value_count = 0;
    char param[KMS_BATCH_PARAM_MAX];
    kms_err rc;

    rc = kms_batch_collect(call, "Tag.", ".Key", KMS_BATCH_TAGS_MAX, false, b->tag_keys,
                           &b->tag_count);
    if (rc == KMS_OK)
        rc = kms_batch_collect(call, "Tag.", ".Value", KMS_BATCH_TAGS_MAX, true, values,
                               &value_count);
    if (rc == KMS_OK && required && b->tag_count == 0)
        rc = kms_fail(call, KMS_E_MISSING_PARAMETER, "Tag.1.Key");
    if (rc == KMS_OK)
        rc = kms_batch_contiguous(call, "Tag.", ".Key", b->tag_keys, b->tag_count);
    if (rc == KMS_OK && value_count > b->tag_count) {
        snprintf(param, sizeof(param), "Tag.%zu.Key", value_count);
        rc = kms_fail(call, KMS_E_MISSING_PARAMETER, param);
    }
    for (size_t i = 0; rc == KMS_OK && i < b->tag_count; i++) {
        b->tag_values[i] = values[i];
        snprintf(param, sizeof(param), "Tag.%zu.Key", i + 1);
        if (!kms_tag_valid(b->tag_keys[i], values[i] ? values[i] : ""))
            rc = kms_fail(call, KMS_E_INVALID_PARAMETER, param);
        for (size_t j = 0; rc == KMS_OK && j < i; j++)
            if (strcmp(b->tag_keys[i], b->tag_keys[j]) == 0)
                rc = kms_fail(call, KMS_E_INVALID_PARAMETER, param);
    }
    return rc;
}

kms_err kms_api_tag_resources(struct kms_call *call)
{
    struct kms_batch b;
    struct kms_tag tags[KMS_BATCH_TAGS_MAX];
    kms_err rc;

    memset(&b, 0, sizeof(b));
    rc = kms_batch_scope(call, &b);
    if (rc == KMS_OK)
        rc = kms_batch_tags(call, &b, true);
    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    /* Resolved under the write lock, so nothing vanishes between the checks and the writes. */
    if (rc == KMS_OK)
        rc = kms_batch_resources(call, &b, true, false);
    for (size_t i = 0; i < b.tag_count; i++) {
        tags[i].key = (char *)b.tag_keys[i];
        tags[i].value = (char *)(b.tag_values[i] ? b.tag_values[i] : "");
    }
    /* The per-resource limit counts the tags after the merge; every resource is checked first. */
    for (size_t i = 0; rc == KMS_OK && i < b.id_count; i++) {
        struct kms_tag *existing = NULL;
        size_t existing_count = 0, added = 0;

        rc = kms_store_tags_get(call->db, b.type, b.ids[i], &existing, &existing_count);
        for (size_t t = 0; rc == KMS_OK && t < b.tag_count; t++) {
            bool known = false;
            for (size_t e = 0; e < existing_count && !known; e++)
                known = strcmp(existing[e].key, tags[t].key) == 0;
            added += !known;
        }
        if (rc == KMS_OK && (int64_t)(existing_count + added) > call->cfg->max_tags_per_resource)
            rc = kms_fail(call, KMS_E_LIMIT_EXCEEDED, "Tag.1.Key");
        kms_tags_free(existing, existing_count);
    }
    for (size_t i = 0; rc == KMS_OK && i < b.id_count; i++)
        rc = kms_store_tags_put(call->db, b.type, b.ids[i], tags, b.tag_count);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    kms_store_rollback(call->db);
    return rc;
}

kms_err kms_api_untag_resources(struct kms_call *call)
{
    struct kms_batch b;
    const char *keys[KMS_BATCH_TAGS_MAX];
    size_t key_count = 0;
    char param[KMS_BATCH_PARAM_MAX];
    bool all = false;
    kms_err rc;

    memset(&b, 0, sizeof(b));
    rc = kms_batch_scope(call, &b);
    if (rc == KMS_OK)
        rc = kms_batch_collect(call, "TagKey.", "", KMS_BATCH_TAGS_MAX, false, keys, &key_count);
    if (rc == KMS_OK)
        rc = kms_batch_contiguous(call, "TagKey.", "", keys, key_count);
    for (size_t i = 0; rc == KMS_OK && i < key_count; i++) {
        snprintf(param, sizeof(param), "TagKey.%zu", i + 1);
        if (strlen(keys[i]) > 128)
            rc = kms_fail(call, KMS_E_INVALID_PARAMETER, param);
    }
    if (rc == KMS_OK)
        rc = kms_arg_bool(call, "All", false, &all);
    /* All=true counts only when no TagKey.N is given. */
    if (rc == KMS_OK && key_count == 0 && !all)
        rc = kms_fail(call, KMS_E_MISSING_PARAMETER, "TagKey.1");
    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_batch_resources(call, &b, true, false);
    for (size_t i = 0; rc == KMS_OK && i < b.id_count; i++) {
        struct kms_tag *existing = NULL;
        size_t existing_count = 0;
        const char *names[64];

        if (key_count > 0) {
            rc = kms_store_tags_remove(call->db, b.type, b.ids[i], keys, key_count);
            continue;
        }
        rc = kms_store_tags_get(call->db, b.type, b.ids[i], &existing, &existing_count);
        /* Remove everything, a bounded bite at a time (max_tags_per_resource is at most 20). */
        for (size_t done = 0; rc == KMS_OK && done < existing_count;) {
            size_t n = 0;
            for (; n < KMS_ARRAY_LEN(names) && done + n < existing_count; n++)
                names[n] = existing[done + n].key;
            rc = kms_store_tags_remove(call->db, b.type, b.ids[i], names, n);
            done += n;
        }
        kms_tags_free(existing, existing_count);
    }
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    kms_store_rollback(call->db);
    return rc;
}

/* NextToken (already in out as ""): Base64 of "<resource id>\n<tag key>" of the page's last row. */
static kms_err kms_batch_token_out(cJSON *out, const struct kms_tag_row *last)
{
    struct kms_buf raw = {0}, b64 = {0};
    cJSON *token = NULL;
    kms_err rc = kms_buf_printf(&raw, "%s\n%s", last->resource_id, last->key);

    if (rc == KMS_OK)
        rc = kms_b64_append(&b64, (const uint8_t *)raw.data, raw.len);
    if (rc == KMS_OK)
        token = cJSON_CreateString(b64.data);
    if (rc == KMS_OK &&
        (token == NULL || !cJSON_ReplaceItemInObjectCaseSensitive(out, "NextToken", token))) {
        cJSON_Delete(token);
        rc = KMS_E_INTERNAL;
    }
    kms_buf_free(&raw);
    kms_buf_free(&b64);
    return rc;
}

/* Splits a NextToken into its resource id and tag key (pointers into token, owned by caller). */
static kms_err kms_batch_token_in(struct kms_call *call, struct kms_buf *token, const char **id,
                                  const char **key)
{
    const char *value = kms_arg(call, "NextToken");
    char *nl;
    kms_err rc;

    *id = *key = NULL;
    if (value == NULL)
        return KMS_OK;
    rc = kms_arg_base64(call, "NextToken", false, token, NULL);
    if (rc != KMS_OK)
        return rc;
    nl = token->data ? memrchr(token->data, '\n', token->len) : NULL;
    if (nl == NULL || nl == token->data || nl[1] == '\0' || strlen(token->data) != token->len)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "NextToken");
    *nl = '\0';
    *id = token->data;
    *key = nl + 1;
    return KMS_OK;
}

/* Whether the tags rows[first, end) of one resource carry every tag filter of b. */
static bool kms_batch_tags_match(const struct kms_batch *b, const struct kms_tag_row *rows,
                                 size_t first, size_t end)
{
    for (size_t t = 0; t < b->tag_count; t++) {
        bool found = false;
        for (size_t r = first; r < end && !found; r++)
            found = strcmp(rows[r].key, b->tag_keys[t]) == 0 &&
                    (b->tag_values[t] == NULL || b->tag_values[t][0] == '\0' ||
                     strcmp(rows[r].value, b->tag_values[t]) == 0);
        if (!found)
            return false;
    }
    return true;
}

kms_err kms_api_list_tag_resources(struct kms_call *call)
{
    struct kms_batch b;
    struct kms_tag_row *rows = NULL;
    struct kms_buf token = {0};
    const char *after_id = NULL, *after_key = NULL;
    const struct kms_tag_row *last = NULL;
    size_t count = 0, emitted = 0;
    bool more = false;
    cJSON *list;
    kms_err rc;

    memset(&b, 0, sizeof(b));
    rc = kms_batch_scope(call, &b);
    if (rc == KMS_OK)
        rc = kms_batch_tags(call, &b, false);
    /* Listing reads metadata: a secret in its recovery window still shows its tags. */
    if (rc == KMS_OK)
        rc = kms_batch_resources(call, &b, false, true);
    if (rc == KMS_OK && b.id_count == 0 && b.tag_count == 0)
        rc = kms_fail(call, KMS_E_MISSING_PARAMETER, "ResourceId.1");
    if (rc == KMS_OK)
        rc = kms_batch_token_in(call, &token, &after_id, &after_key);
    if (rc == KMS_OK)
        rc = kms_store_tag_rows(call->db, b.type, call->now, &rows, &count);
    if (rc != KMS_OK)
        goto out;
    /* NextToken first, as the service orders it; filled in below when a page follows. */
    rc = kms_out_str(call->out, "NextToken", "");
    list = kms_out_list(call->out, "TagResources", "TagResource");
    if (rc != KMS_OK || list == NULL) {
        rc = KMS_E_INTERNAL;
        goto out;
    }
    /* Rows come sorted by (resource id, tag key): walk them one resource at a time. */
    for (size_t first = 0, end; rc == KMS_OK && first < count && !more; first = end) {
        bool wanted = b.id_count == 0;

        for (end = first + 1;
             end < count && strcmp(rows[end].resource_id, rows[first].resource_id) == 0;)
            end++;
        for (size_t i = 0; i < b.id_count && !wanted; i++)
            wanted = strcmp(b.ids[i], rows[first].resource_id) == 0;
        if (!wanted || !kms_batch_tags_match(&b, rows, first, end))
            continue;
        for (size_t r = first; rc == KMS_OK && r < end; r++) {
            cJSON *item;
            int cmp = after_id ? strcmp(rows[r].resource_id, after_id) : 1;

            if (cmp < 0 || (cmp == 0 && strcmp(rows[r].key, after_key) <= 0))
                continue; /* on an earlier page */
            if (emitted == KMS_BATCH_PAGE) {
                more = true;
                break;
            }
            item = kms_out_item(list);
            if (item == NULL) {
                rc = KMS_E_INTERNAL;
                break;
            }
            rc |= kms_out_str(item, "ResourceId", rows[r].resource_id);
            rc |= kms_out_str(item, "ResourceType", b.type);
            rc |= kms_out_str(item, "TagKey", rows[r].key);
            rc |= kms_out_str(item, "TagValue", rows[r].value);
            if (rc != KMS_OK)
                rc = KMS_E_INTERNAL;
            last = &rows[r];
            emitted++;
        }
    }
    if (rc == KMS_OK && more)
        rc = kms_batch_token_out(call->out, last);
out:
    kms_tag_rows_free(rows, count);
    kms_buf_free(&token);
    return rc;
}
