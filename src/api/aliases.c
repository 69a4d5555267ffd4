/*
 * aliases.c - alias actions (spec/actions.md C2): CreateAlias, UpdateAlias, DeleteAlias,
 * ListAliases, ListAliasesByKeyId.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define KMS_ALIAS_PREFIX "alias/"
#define KMS_ALIAS_MAX    255 /* characters after the prefix */

/* alias/ + 1-255 of [A-Za-z0-9_/-], not in the reserved alias/acs namespace. */
static bool kms_alias_name_valid(const char *name)
{
    size_t len = strlen(name);
    const char *p;

    if (strncmp(name, KMS_ALIAS_PREFIX, 6) != 0 || len <= 6 || len - 6 > KMS_ALIAS_MAX)
        return false;
    if (strncmp(name, "alias/acs", 9) == 0)
        return false;
    for (p = name + 6; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '/'))
            return false;
    }
    return true;
}

/*
 * Inside the alias write's transaction: the target key as stored now, not as resolved before it,
 * so a ScheduleKeyDeletion that commits in between cannot leave a new alias on a key pending
 * deletion. pending_err: the action's code for that case.
 */
static kms_err kms_alias_target_usable(struct kms_db *db, const char *key_id, kms_err pending_err)
{
    struct kms_key_record rec;
    kms_err rc = kms_store_key_get(db, key_id, &rec);

    if (rc != KMS_OK)
        return rc;
    if (rec.state == KMS_STATE_PENDING_DELETION)
        rc = pending_err;
    kms_key_record_free(&rec);
    return rc;
}

kms_err kms_api_create_alias(struct kms_call *call)
{
    struct kms_key *key = NULL;
    const char *name;
    int64_t count = 0;
    kms_err rc;

    rc = kms_arg_required(call, "AliasName", &name);
    if (rc != KMS_OK)
        return rc;
    if (!kms_alias_name_valid(name))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "AliasName");
    rc = kms_key_resolve(call, "KeyId", KMS_REF_ID_ONLY, &key);
    if (rc != KMS_OK)
        return rc;
    rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_alias_target_usable(call->db, key->k_rec.key_id, KMS_E_STATE_MODIFIED_FAILED);
    if (rc == KMS_OK)
        rc = kms_store_alias_count(call->db, &count);
    if (rc == KMS_OK && count >= call->cfg->max_aliases)
        rc = KMS_E_LIMIT_EXCEEDED;
    if (rc == KMS_OK)
        rc = kms_store_alias_insert(call->db, name, key->k_rec.key_id, call->now);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    kms_key_put(key);
    return rc;
}

kms_err kms_api_update_alias(struct kms_call *call)
{
    char current[KMS_ID_MAX];
    struct kms_key *key = NULL;
    const char *name;
    kms_err rc;

    rc = kms_arg_required(call, "AliasName", &name);
    if (rc != KMS_OK)
        return rc;
    rc = kms_store_alias_get(call->db, name, current);
    if (rc != KMS_OK)
        return rc;
    rc = kms_key_resolve(call, "KeyId", KMS_REF_ID_ONLY, &key);
    if (rc != KMS_OK)
        return rc;
    /* Only the new target's state matters (spec/key-states.md §3, UpdateAlias rule). */
    rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_alias_target_usable(call->db, key->k_rec.key_id, KMS_E_KEY_PENDING_DELETION);
    if (rc == KMS_OK)
        rc = kms_store_alias_update(call->db, name, key->k_rec.key_id);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    kms_key_put(key);
    return rc;
}

kms_err kms_api_delete_alias(struct kms_call *call)
{
    const char *name;
    kms_err rc = kms_arg_required(call, "AliasName", &name);

    if (rc != KMS_OK)
        return rc;
    return kms_store_alias_delete(call->db, name);
}

static kms_err kms_alias_list(struct kms_call *call, const char *key_id)
{
    struct kms_alias_record *aliases = NULL;
    size_t count = 0;
    int64_t page, size, total = 0;
    char arn[KMS_ARN_MAX];
    cJSON *list;
    kms_err rc;

    rc = kms_arg_page(call, 10, &page, &size);
    if (rc == KMS_OK)
        rc = kms_store_alias_list(call->db, key_id, call->now, (page - 1) * size, size, &aliases,
                                  &count, &total);
    if (rc != KMS_OK)
        return rc;
    kms_out_page(call, page, size, total);
    list = kms_out_list(call->out, "Aliases", "Alias");
    for (size_t i = 0; list != NULL && rc == KMS_OK && i < count; i++) {
        cJSON *item = kms_out_item(list);

        if (item == NULL) {
            rc = KMS_E_INTERNAL;
            break;
        }
        kms_arn(call, "alias", aliases[i].alias_name + strlen("alias/"), arn, sizeof(arn));
        rc |= kms_out_str(item, "AliasName", aliases[i].alias_name);
        rc |= kms_out_str(item, "KeyId", aliases[i].key_id);
        rc |= kms_out_str(item, "AliasArn", arn);
    }
    free(aliases);
    return list == NULL || rc != KMS_OK ? KMS_E_INTERNAL : KMS_OK;
}

kms_err kms_api_list_aliases(struct kms_call *call)
{
    return kms_alias_list(call, NULL);
}

kms_err kms_api_list_aliases_by_key_id(struct kms_call *call)
{
    struct kms_key *key;
    kms_err rc = kms_key_resolve(call, "KeyId", KMS_REF_ID_ONLY, &key);

    if (rc != KMS_OK)
        return rc;
    rc = kms_alias_list(call, key->k_rec.key_id);
    kms_key_put(key);
    return rc;
}
