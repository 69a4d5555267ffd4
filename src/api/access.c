/*
 * access.c - the objects access control is built from (spec/actions.md I1-I3): network rules,
 * permission policies and application access points (AAPs), and what the other access files
 * share (names, ARNs, JSON list parameters).
 *
 * Every change here takes effect from the next request: after the commit the compiled policies
 * authorization caches are dropped (kms_policy_invalidate).
 *
 * A few response members are JSON text inside a string (SourcePrivateIp, Permissions,
 * AccessControlRules, Policies): that is the wire contract of the official SDKs. kmsd stores
 * them normalized (compact JSON of what was accepted) and echoes that.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kms/auth.h"

#define KMS_ACCESS_LIST_MAX        100 /* entries of one JSON list parameter */
#define KMS_ACCESS_DESCRIPTION_MAX 1024
#define KMS_AAP_POLICIES_MAX       3
#define KMS_KMS_INSTANCE_MAX       128
/* The one (virtual) instance a self-hosted server is (spec/actions.md B). */
#define KMS_VIRTUAL_INSTANCE "kst-local0000000000000"
#define KMS_PAGE_SIZE_ACCESS 20 /* default PageSize of the access lists [go-sdk] */

bool kms_access_name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;

    if (len == 0 || len > KMS_ACCESS_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

kms_err kms_access_name_arg(struct kms_call *call, const char *param, const char **out)
{
    kms_err rc = kms_arg_required(call, param, out);

    if (rc == KMS_OK && !kms_access_name_valid(*out))
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, param);
    return rc;
}

kms_err kms_access_description_arg(struct kms_call *call, const char **out)
{
    *out = kms_arg(call, "Description");
    return kms_check_length(call, "Description", *out, 0, KMS_ACCESS_DESCRIPTION_MAX);
}

kms_err kms_access_arn(struct kms_call *call, cJSON *obj, const char *type, const char *name)
{
    struct kms_buf arn = {0};
    kms_err rc = kms_buf_printf(&arn, "acs:kms:%s:%s:%s/%s", call->cfg->region,
                                call->cfg->account_id, type, name);

    if (rc == KMS_OK)
        rc = kms_out_str(obj, "Arn", arn.data);
    kms_buf_free(&arn);
    return rc;
}

void kms_access_changed(void)
{
    kms_policy_invalidate();
}

/* The compact JSON text of an array of names; owned (free with cJSON_free). */
static char *kms_names_json(char *const *names, size_t count)
{
    cJSON *array = cJSON_CreateArray();
    char *text = NULL;

    for (size_t i = 0; array != NULL && i < count; i++) {
        cJSON *s = cJSON_CreateString(names[i]);

        if (s == NULL || !cJSON_AddItemToArray(array, s)) {
            cJSON_Delete(s);
            cJSON_Delete(array);
            return NULL;
        }
    }
    if (array != NULL)
        text = cJSON_PrintUnformatted(array);
    cJSON_Delete(array);
    return text;
}

/*
 * A JSON array of between min and max strings, each accepted by check; duplicates refused when
 * unique (links would collide). *out: the parsed array, owned by the caller.
 */
static kms_err kms_json_list(struct kms_call *call, const char *param, const char *text, size_t min,
                             size_t max, bool (*check)(const char *), bool unique, cJSON **out)
{
    cJSON *root = cJSON_Parse(text);
    size_t n = 0;
    cJSON *item;

    *out = NULL;
    /* The size first: the duplicate check below is quadratic. */
    if (root == NULL || !cJSON_IsArray(root) || (size_t)cJSON_GetArraySize(root) > max)
        goto invalid;
    cJSON_ArrayForEach(item, root)
    {
        if (!cJSON_IsString(item) || !check(item->valuestring))
            goto invalid;
        for (cJSON *prev = root->child; unique && prev != item; prev = prev->next)
            if (strcmp(prev->valuestring, item->valuestring) == 0)
                goto invalid;
        n++;
    }
    if (n < min || n > max)
        goto invalid;
    *out = root;
    return KMS_OK;
invalid:
    cJSON_Delete(root);
    return kms_fail(call, KMS_E_INVALID_PARAMETER, param);
}

/* The strings of a parsed array, as an owned array of owned strings. */
static kms_err kms_json_names(const cJSON *array, char ***out, size_t *count)
{
    size_t n = (size_t)cJSON_GetArraySize(array), i = 0;
    char **names = calloc(n ? n : 1, sizeof(*names));
    const cJSON *item;

    *out = NULL;
    *count = 0;
    if (names == NULL)
        return KMS_E_INTERNAL;
    cJSON_ArrayForEach(item, array)
    {
        names[i] = strdup(item->valuestring);
        if (names[i++] == NULL) {
            kms_store_free_list(names, i);
            return KMS_E_INTERNAL;
        }
    }
    *out = names;
    *count = n;
    return KMS_OK;
}

/* ---- network rules (I1) ---- */

static bool kms_cidr_text_valid(const char *s)
{
    struct kms_cidr c;

    return kms_cidr_parse(s, &c);
}

/*
 * SourcePrivateIp: a JSON array of IPv4 addresses / CIDRs, or (as one SDK documents it) a
 * comma-separated list; at least one entry. *json gets the normalized JSON text (cJSON_free).
 */
static kms_err kms_rule_ips_arg(struct kms_call *call, const char *value, char **json)
{
    cJSON *list = NULL;
    kms_err rc = KMS_OK;

    *json = NULL;
    if (value[0] == '[') {
        rc = kms_json_list(call, "SourcePrivateIp", value, 1, KMS_ACCESS_LIST_MAX,
                           kms_cidr_text_valid, false, &list);
    } else {
        const char *p = value;

        list = cJSON_CreateArray();
        if (list == NULL)
            return KMS_E_INTERNAL;
        while (rc == KMS_OK) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            char entry[64];
            cJSON *s;

            while (len > 0 && (*p == ' ' || *p == '\t')) {
                p++;
                len--;
            }
            while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
                len--;
            if (len == 0 || len >= sizeof(entry) ||
                cJSON_GetArraySize(list) >= KMS_ACCESS_LIST_MAX) {
                rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "SourcePrivateIp");
                break;
            }
            memcpy(entry, p, len);
            entry[len] = '\0';
            if (!kms_cidr_text_valid(entry)) {
                rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "SourcePrivateIp");
                break;
            }
            s = cJSON_CreateString(entry);
            if (s == NULL || !cJSON_AddItemToArray(list, s)) {
                cJSON_Delete(s);
                rc = KMS_E_INTERNAL;
            }
            if (comma == NULL)
                break;
            p = comma + 1;
        }
    }
    if (rc == KMS_OK) {
        *json = cJSON_PrintUnformatted(list);
        if (*json == NULL)
            rc = KMS_E_INTERNAL;
    }
    cJSON_Delete(list);
    return rc;
}

kms_err kms_api_create_network_rule(struct kms_call *call)
{
    struct kms_network_rule_record rec;
    const char *name, *type, *ips, *desc = NULL;
    char *ips_json = NULL;
    kms_err rc;

    memset(&rec, 0, sizeof(rec));
    rc = kms_access_name_arg(call, "Name", &name);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "Type", &type);
    if (rc == KMS_OK && strcmp(type, "Private") != 0)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Type");
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "SourcePrivateIp", &ips);
    if (rc == KMS_OK)
        rc = kms_rule_ips_arg(call, ips, &ips_json);
    if (rc == KMS_OK)
        rc = kms_access_description_arg(call, &desc);
    if (rc != KMS_OK)
        goto out;
    snprintf(rec.name, sizeof(rec.name), "%s", name);
    snprintf(rec.rule_type, sizeof(rec.rule_type), "%s", type);
    rec.source_ips = ips_json;
    rec.description = (char *)desc;
    rec.created_at = call->now;
    rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_store_network_rule_insert(call->db, &rec);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc != KMS_OK)
        goto out;
    kms_access_changed();
    rc = kms_access_arn(call, call->out, "network", name);
    rc |= kms_out_str(call->out, "Name", name);
    rc |= kms_out_str(call->out, "Type", type);
    rc |= kms_out_str(call->out, "SourcePrivateIp", ips_json);
    rc |= kms_out_str(call->out, "Description", desc);
    rc = rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
out:
    cJSON_free(ips_json);
    return rc;
}

kms_err kms_api_describe_network_rule(struct kms_call *call)
{
    struct kms_network_rule_record rec;
    const char *name;
    kms_err rc = kms_access_name_arg(call, "Name", &name);

    if (rc == KMS_OK)
        rc = kms_store_network_rule_get(call->db, name, &rec);
    if (rc != KMS_OK)
        return rc;
    rc = kms_access_arn(call, call->out, "network", rec.name);
    rc |= kms_out_str(call->out, "Type", rec.rule_type);
    rc |= kms_out_str(call->out, "SourcePrivateIp", rec.source_ips);
    rc |= kms_out_str(call->out, "Description", rec.description);
    kms_network_rule_record_free(&rec);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}

kms_err kms_api_update_network_rule(struct kms_call *call)
{
    struct kms_network_rule_record rec;
    const char *name, *ips = kms_arg(call, "SourcePrivateIp"), *desc = NULL;
    char *ips_json = NULL;
    kms_err rc;

    memset(&rec, 0, sizeof(rec));
    rc = kms_access_name_arg(call, "Name", &name);
    if (rc == KMS_OK && ips != NULL)
        rc = kms_rule_ips_arg(call, ips, &ips_json);
    if (rc == KMS_OK)
        rc = kms_access_description_arg(call, &desc);
    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_store_network_rule_get(call->db, name, &rec);
    if (rc != KMS_OK)
        goto out;
    /* Only the fields given change. */
    if (ips_json != NULL) {
        free(rec.source_ips);
        rec.source_ips = strdup(ips_json);
    }
    if (desc != NULL) {
        free(rec.description);
        rec.description = strdup(desc);
    }
    if (rec.source_ips == NULL || rec.description == NULL)
        rc = KMS_E_INTERNAL;
    if (rc == KMS_OK)
        rc = kms_store_network_rule_update(call->db, &rec);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK)
        kms_access_changed();
out:
    kms_network_rule_record_free(&rec);
    cJSON_free(ips_json);
    return rc;
}

kms_err kms_api_delete_network_rule(struct kms_call *call)
{
    const char *name;
    kms_err rc = kms_access_name_arg(call, "Name", &name);

    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_store_network_rule_delete(call->db, name);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK)
        kms_access_changed();
    return rc;
}

kms_err kms_api_list_network_rules(struct kms_call *call)
{
    struct kms_network_rule_record *rules = NULL;
    size_t count = 0;
    int64_t page, size, total = 0;
    cJSON *list;
    kms_err rc = kms_arg_page(call, KMS_PAGE_SIZE_ACCESS, &page, &size);

    if (rc == KMS_OK)
        rc = kms_store_network_rule_list(call->db, (page - 1) * size, size, &rules, &count, &total);
    if (rc != KMS_OK)
        return rc;
    kms_out_page(call, page, size, total);
    list = kms_out_list(call->out, "NetworkRules", "NetworkRule");
    rc = list ? KMS_OK : KMS_E_INTERNAL;
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        cJSON *item = kms_out_item(list);

        if (item == NULL) {
            rc = KMS_E_INTERNAL;
            break;
        }
        rc |= kms_out_str(item, "Name", rules[i].name);
        rc |= kms_out_str(item, "Type", rules[i].rule_type);
    }
    kms_store_free_network_rules(rules, count);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}

/* ---- permission policies (I2) ---- */

static bool kms_template_text_valid(const char *s)
{
    return kms_policy_template(s) != 0;
}

static bool kms_pattern_text_valid(const char *s)
{
    struct kms_pattern p;

    return kms_pattern_parse(s, &p);
}

/* The policy parameters of CreatePolicy / UpdatePolicy, parsed. */
struct kms_policy_args {
    cJSON *pa_permissions; /* NULL: not given */
    cJSON *pa_resources;
    cJSON *pa_rules; /* the NetworkRules array of AccessControlRules; NULL: not given */
    const char *pa_instance;
    const char *pa_description;
};

static void kms_policy_args_free(struct kms_policy_args *a)
{
    cJSON_Delete(a->pa_permissions);
    cJSON_Delete(a->pa_resources);
    cJSON_Delete(a->pa_rules);
}

/* AccessControlRules: exactly {"NetworkRules":[names...]}. Unknown members are refused rather
 * than ignored: a mistyped member would otherwise open the policy to every address. */
static kms_err kms_access_rules_arg(struct kms_call *call, const char *text, cJSON **rules)
{
    cJSON *root = cJSON_Parse(text);
    cJSON *list = root ? cJSON_GetObjectItemCaseSensitive(root, "NetworkRules") : NULL;
    char *inner = NULL;
    kms_err rc;

    *rules = NULL;
    if (root == NULL || !cJSON_IsObject(root) || cJSON_GetArraySize(root) != 1 ||
        !cJSON_IsArray(list)) {
        cJSON_Delete(root);
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "AccessControlRules");
    }
    inner = cJSON_PrintUnformatted(list);
    cJSON_Delete(root);
    if (inner == NULL)
        return KMS_E_INTERNAL;
    rc = kms_json_list(call, "AccessControlRules", inner, 0, KMS_ACCESS_LIST_MAX,
                       kms_access_name_valid, true, rules);
    cJSON_free(inner);
    return rc;
}

static kms_err kms_policy_args_read(struct kms_call *call, bool create, struct kms_policy_args *a)
{
    const char *perms = kms_arg(call, "Permissions");
    const char *res = kms_arg(call, "Resources");
    const char *rules = kms_arg(call, "AccessControlRules");
    kms_err rc = KMS_OK;

    memset(a, 0, sizeof(*a));
    if (create && perms == NULL)
        return kms_fail(call, KMS_E_MISSING_PARAMETER, "Permissions");
    if (perms != NULL)
        rc = kms_json_list(call, "Permissions", perms, 1, KMS_ACCESS_LIST_MAX,
                           kms_template_text_valid, false, &a->pa_permissions);
    if (rc == KMS_OK && create && res == NULL)
        rc = kms_fail(call, KMS_E_MISSING_PARAMETER, "Resources");
    if (rc == KMS_OK && res != NULL)
        rc = kms_json_list(call, "Resources", res, 1, KMS_ACCESS_LIST_MAX, kms_pattern_text_valid,
                           false, &a->pa_resources);
    if (rc == KMS_OK && rules != NULL)
        rc = kms_access_rules_arg(call, rules, &a->pa_rules);
    if (rc == KMS_OK) {
        a->pa_instance = kms_arg(call, "KmsInstance");
        rc = kms_check_length(call, "KmsInstance", a->pa_instance, 0, KMS_KMS_INSTANCE_MAX);
    }
    if (rc == KMS_OK)
        rc = kms_access_description_arg(call, &a->pa_description);
    return rc;
}

/* Replaces *field (owned) with the JSON text of value. */
static kms_err kms_set_json(char **field, const cJSON *value)
{
    char *text = cJSON_PrintUnformatted(value);
    char *copy = text ? strdup(text) : NULL;

    cJSON_free(text);
    if (copy == NULL)
        return KMS_E_INTERNAL;
    free(*field);
    *field = copy;
    return KMS_OK;
}

static kms_err kms_set_str(char **field, const char *value)
{
    char *copy = strdup(value);

    if (copy == NULL)
        return KMS_E_INTERNAL;
    free(*field);
    *field = copy;
    return KMS_OK;
}

/* Applies the given arguments to rec (a new or a stored policy). */
static kms_err kms_policy_apply(const struct kms_policy_args *a, struct kms_policy_record *rec)
{
    kms_err rc = KMS_OK;

    if (a->pa_permissions != NULL)
        rc = kms_set_json(&rec->permissions, a->pa_permissions);
    if (rc == KMS_OK && a->pa_resources != NULL)
        rc = kms_set_json(&rec->resources, a->pa_resources);
    if (rc == KMS_OK && a->pa_instance != NULL)
        rc = kms_set_str(&rec->kms_instance, a->pa_instance);
    if (rc == KMS_OK && rec->kms_instance == NULL)
        rc = kms_set_str(&rec->kms_instance, KMS_VIRTUAL_INSTANCE);
    if (rc == KMS_OK && a->pa_description != NULL)
        rc = kms_set_str(&rec->description, a->pa_description);
    if (rc == KMS_OK && rec->description == NULL)
        rc = kms_set_str(&rec->description, "");
    if (rc == KMS_OK && a->pa_rules != NULL) {
        kms_store_free_list(rec->rules, rec->rule_count);
        rc = kms_json_names(a->pa_rules, &rec->rules, &rec->rule_count);
    }
    return rc;
}

/* Inside the transaction: every network rule the policy names exists. */
static kms_err kms_policy_rules_exist(struct kms_call *call, const struct kms_policy_record *rec)
{
    for (size_t i = 0; i < rec->rule_count; i++) {
        kms_err rc = kms_store_network_rule_exists(call->db, rec->rules[i]);

        if (rc != KMS_OK)
            return rc;
    }
    return KMS_OK;
}

/* {"NetworkRules":[...]} of a policy, as its JSON text into obj[name]. */
static kms_err kms_out_access_rules(cJSON *obj, const struct kms_policy_record *rec)
{
    char *names = kms_names_json(rec->rules, rec->rule_count);
    struct kms_buf text = {0};
    kms_err rc = names ? kms_buf_printf(&text, "{\"NetworkRules\":%s}", names) : KMS_E_INTERNAL;

    if (rc == KMS_OK)
        rc = kms_out_str(obj, "AccessControlRules", text.data);
    cJSON_free(names);
    kms_buf_free(&text);
    return rc;
}

kms_err kms_api_create_policy(struct kms_call *call)
{
    struct kms_policy_record rec;
    struct kms_policy_args args;
    const char *name;
    kms_err rc;

    memset(&rec, 0, sizeof(rec));
    rc = kms_access_name_arg(call, "Name", &name);
    if (rc == KMS_OK)
        rc = kms_policy_args_read(call, true, &args);
    else
        memset(&args, 0, sizeof(args));
    if (rc == KMS_OK) {
        snprintf(rec.name, sizeof(rec.name), "%s", name);
        rec.created_at = call->now;
        rc = kms_policy_apply(&args, &rec);
    }
    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_policy_rules_exist(call, &rec);
    if (rc == KMS_OK)
        rc = kms_store_policy_insert(call->db, &rec);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK) {
        kms_access_changed();
        rc = kms_access_arn(call, call->out, "policy", name);
        rc |= kms_out_str(call->out, "Name", name);
        rc |= kms_out_str(call->out, "Description", rec.description);
        rc |= kms_out_str(call->out, "KmsInstance", rec.kms_instance);
        rc |= kms_out_str(call->out, "Permissions", rec.permissions);
        rc |= kms_out_str(call->out, "Resources", rec.resources);
        rc |= kms_out_access_rules(call->out, &rec);
        rc = rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
    }
    kms_policy_args_free(&args);
    kms_policy_record_free(&rec);
    return rc;
}

kms_err kms_api_describe_policy(struct kms_call *call)
{
    struct kms_policy_record rec;
    cJSON *perms = NULL, *res = NULL;
    const char *name;
    kms_err rc = kms_access_name_arg(call, "Name", &name);

    if (rc == KMS_OK)
        rc = kms_store_policy_get(call->db, name, &rec);
    if (rc != KMS_OK)
        return rc;
    /* Here Permissions and Resources are arrays, not JSON text [go-sdk]. */
    perms = cJSON_Parse(rec.permissions);
    res = cJSON_Parse(rec.resources);
    rc = kms_access_arn(call, call->out, "policy", rec.name);
    rc |= kms_out_str(call->out, "Name", rec.name);
    rc |= kms_out_str(call->out, "Description", rec.description);
    rc |= kms_out_str(call->out, "KmsInstance", rec.kms_instance);
    if (perms == NULL || res == NULL || !cJSON_AddItemToObject(call->out, "Permissions", perms)) {
        rc = KMS_E_INTERNAL;
    } else {
        perms = NULL;
        if (!cJSON_AddItemToObject(call->out, "Resources", res))
            rc = KMS_E_INTERNAL;
        else
            res = NULL;
    }
    rc |= kms_out_access_rules(call->out, &rec);
    cJSON_Delete(perms);
    cJSON_Delete(res);
    kms_policy_record_free(&rec);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}

kms_err kms_api_update_policy(struct kms_call *call)
{
    struct kms_policy_record rec;
    struct kms_policy_args args;
    const char *name;
    kms_err rc;

    memset(&rec, 0, sizeof(rec));
    memset(&args, 0, sizeof(args));
    rc = kms_access_name_arg(call, "Name", &name);
    if (rc == KMS_OK)
        rc = kms_policy_args_read(call, false, &args);
    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_store_policy_get(call->db, name, &rec);
    if (rc == KMS_OK)
        rc = kms_policy_apply(&args, &rec);
    if (rc == KMS_OK)
        rc = kms_policy_rules_exist(call, &rec);
    if (rc == KMS_OK)
        rc = kms_store_policy_update(call->db, &rec);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK)
        kms_access_changed();
    kms_policy_args_free(&args);
    kms_policy_record_free(&rec);
    return rc;
}

kms_err kms_api_delete_policy(struct kms_call *call)
{
    const char *name;
    kms_err rc = kms_access_name_arg(call, "Name", &name);

    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_store_policy_delete(call->db, name);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK)
        kms_access_changed();
    return rc;
}

kms_err kms_api_list_policies(struct kms_call *call)
{
    char **names = NULL;
    size_t count = 0;
    int64_t page, size, total = 0;
    cJSON *list;
    kms_err rc = kms_arg_page(call, KMS_PAGE_SIZE_ACCESS, &page, &size);

    if (rc == KMS_OK)
        rc = kms_store_policy_list(call->db, (page - 1) * size, size, &names, &count, &total);
    if (rc != KMS_OK)
        return rc;
    kms_out_page(call, page, size, total);
    list = kms_out_list(call->out, "Policies", "Policy");
    rc = list ? KMS_OK : KMS_E_INTERNAL;
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        cJSON *item = kms_out_item(list);

        if (item == NULL) {
            rc = KMS_E_INTERNAL;
            break;
        }
        rc = kms_out_str(item, "Name", names[i]);
    }
    kms_store_free_list(names, count);
    return rc;
}

/* ---- application access points (I3) ---- */

/* Policies: a JSON array of 1-3 distinct policy names. *out: owned array of owned strings. */
static kms_err kms_aap_policies_arg(struct kms_call *call, const char *text, char ***out,
                                    size_t *count)
{
    cJSON *list = NULL;
    kms_err rc = kms_json_list(call, "Policies", text, 1, KMS_AAP_POLICIES_MAX,
                               kms_access_name_valid, true, &list);

    if (rc == KMS_OK)
        rc = kms_json_names(list, out, count);
    cJSON_Delete(list);
    return rc;
}

/* Inside the transaction: every policy the AAP names exists. */
static kms_err kms_aap_policies_exist(struct kms_call *call, const struct kms_aap_record *rec)
{
    for (size_t i = 0; i < rec->policy_count; i++) {
        kms_err rc = kms_store_policy_exists(call->db, rec->policies[i]);

        if (rc != KMS_OK)
            return rc;
    }
    return KMS_OK;
}

static kms_err kms_out_aap(struct kms_call *call, const struct kms_aap_record *rec, bool name)
{
    char *policies = kms_names_json(rec->policies, rec->policy_count);
    kms_err rc = policies ? KMS_OK : KMS_E_INTERNAL;

    rc |= kms_access_arn(call, call->out, "applicationaccesspoint", rec->name);
    if (name)
        rc |= kms_out_str(call->out, "Name", rec->name);
    rc |= kms_out_str(call->out, "AuthenticationMethod", rec->auth_method);
    rc |= kms_out_str(call->out, "Description", rec->description);
    if (policies != NULL)
        rc |= kms_out_str(call->out, "Policies", policies);
    cJSON_free(policies);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}

kms_err kms_api_create_application_access_point(struct kms_call *call)
{
    struct kms_aap_record rec;
    const char *name, *policies, *method = kms_arg(call, "AuthenticationMethod"), *desc = NULL;
    kms_err rc;

    memset(&rec, 0, sizeof(rec));
    rc = kms_access_name_arg(call, "Name", &name);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "Policies", &policies);
    if (rc == KMS_OK)
        rc = kms_aap_policies_arg(call, policies, &rec.policies, &rec.policy_count);
    if (rc == KMS_OK && method != NULL && strcmp(method, KMS_AAP_CLIENT_KEY) != 0 &&
        strcmp(method, KMS_AAP_ACCESS_KEY) != 0)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "AuthenticationMethod");
    if (rc == KMS_OK)
        rc = kms_access_description_arg(call, &desc);
    if (rc != KMS_OK)
        goto out;
    snprintf(rec.name, sizeof(rec.name), "%s", name);
    snprintf(rec.auth_method, sizeof(rec.auth_method), "%s", method ? method : KMS_AAP_CLIENT_KEY);
    rec.description = strdup(desc ? desc : "");
    rec.created_at = call->now;
    rc = rec.description ? kms_store_begin(call->db) : KMS_E_INTERNAL;
    if (rc == KMS_OK)
        rc = kms_aap_policies_exist(call, &rec);
    if (rc == KMS_OK)
        rc = kms_store_aap_insert(call->db, &rec);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK) {
        kms_access_changed();
        rc = kms_out_aap(call, &rec, true);
    }
out:
    kms_aap_record_free(&rec);
    return rc;
}

kms_err kms_api_describe_application_access_point(struct kms_call *call)
{
    struct kms_aap_record rec;
    const char *name;
    kms_err rc = kms_access_name_arg(call, "Name", &name);

    if (rc == KMS_OK)
        rc = kms_store_aap_get(call->db, name, &rec);
    if (rc != KMS_OK)
        return rc;
    rc = kms_out_aap(call, &rec, true);
    kms_aap_record_free(&rec);
    return rc;
}

kms_err kms_api_update_application_access_point(struct kms_call *call)
{
    struct kms_aap_record rec;
    const char *name, *policies = kms_arg(call, "Policies"), *desc = NULL;
    char **names = NULL;
    size_t count = 0;
    kms_err rc;

    memset(&rec, 0, sizeof(rec));
    rc = kms_access_name_arg(call, "Name", &name);
    if (rc == KMS_OK && policies != NULL)
        rc = kms_aap_policies_arg(call, policies, &names, &count);
    if (rc == KMS_OK)
        rc = kms_access_description_arg(call, &desc);
    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_store_aap_get(call->db, name, &rec);
    if (rc != KMS_OK)
        goto out;
    /* Only the fields given change. */
    if (names != NULL) {
        kms_store_free_list(rec.policies, rec.policy_count);
        rec.policies = names;
        rec.policy_count = count;
        names = NULL;
        count = 0;
    }
    if (desc != NULL)
        rc = kms_set_str(&rec.description, desc);
    if (rc == KMS_OK)
        rc = kms_aap_policies_exist(call, &rec);
    if (rc == KMS_OK)
        rc = kms_store_aap_update(call->db, &rec);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK)
        kms_access_changed();
out:
    kms_store_free_list(names, count);
    kms_aap_record_free(&rec);
    return rc;
}

kms_err kms_api_delete_application_access_point(struct kms_call *call)
{
    const char *name;
    kms_err rc = kms_access_name_arg(call, "Name", &name);

    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_store_aap_delete(call->db, name);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc == KMS_OK)
        kms_access_changed();
    return rc;
}

kms_err kms_api_list_application_access_points(struct kms_call *call)
{
    struct kms_aap_record *aaps = NULL;
    size_t count = 0;
    int64_t page, size, total = 0;
    cJSON *list;
    kms_err rc = kms_arg_page(call, KMS_PAGE_SIZE_ACCESS, &page, &size);

    if (rc == KMS_OK)
        rc = kms_store_aap_list(call->db, (page - 1) * size, size, &aaps, &count, &total);
    if (rc != KMS_OK)
        return rc;
    kms_out_page(call, page, size, total);
    list = kms_out_list(call->out, "ApplicationAccessPoints", "ApplicationAccessPoint");
    rc = list ? KMS_OK : KMS_E_INTERNAL;
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        cJSON *item = kms_out_item(list);

        if (item == NULL) {
            rc = KMS_E_INTERNAL;
            break;
        }
        rc |= kms_out_str(item, "Name", aaps[i].name);
        rc |= kms_out_str(item, "AuthenticationMethod", aaps[i].auth_method);
    }
    kms_store_free_aaps(aaps, count);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}
