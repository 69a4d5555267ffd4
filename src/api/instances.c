/*
 * instances.c - instance management (spec/actions.md B): ConnectKmsInstance, GetKmsInstance,
 * ListKmsInstances, UpdateKmsInstanceBindVpc.
 *
 * Alibaba sells KMS "instances" (dedicated gateways in a customer's VPC); a self-hosted kmsd is
 * one. It shows exactly one virtual instance whose id is [server] instance_id. Connecting it and
 * binding VPCs are stored metadata without networking effects: kmsd serves its clients the
 * same whatever the instance's Status says. The record lives in the store's meta table as a
 * small JSON object, written the first time anyone looks at the instance (its CreateTime).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "internal.h"
#include "kms/log.h"

#define KMS_INSTANCE_META     "kms_instance"
#define KMS_INSTANCE_MAX_VPCS 20 /* BindVpcs entries; reported as VpcNum */
#define KMS_INSTANCE_MAX_IDS  10 /* VSwitchIds entries */
#define KMS_INSTANCE_ID_MAX   128
#define KMS_INSTANCE_END_DATE "2099-12-31T00:00:00Z"

/* A VPC, vSwitch, zone or region id: 1-128 of [A-Za-z0-9-_.:]. */
static bool kms_instance_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > KMS_INSTANCE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

/* The record kms_instance_load returns when none is stored yet. */
static cJSON *kms_instance_new(int64_t now)
{
    cJSON *root = cJSON_CreateObject();

    if (root == NULL || !cJSON_AddNumberToObject(root, "CreateTime", (double)now) ||
        !cJSON_AddStringToObject(root, "Status", "Uninitialized") ||
        !cJSON_AddStringToObject(root, "VpcId", "") ||
        !cJSON_AddArrayToObject(root, "VswitchIds") || !cJSON_AddArrayToObject(root, "ZoneIds") ||
        !cJSON_AddArrayToObject(root, "BindVpcs")) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static kms_err kms_instance_store(struct kms_call *call, const cJSON *root)
{
    char *text = cJSON_PrintUnformatted(root);
    kms_err rc;

    if (text == NULL)
        return KMS_E_INTERNAL;
    rc = kms_store_meta_set(call->db, KMS_INSTANCE_META, text, strlen(text));
    free(text);
    return rc;
}

/* The stored record, or NULL in *out when there is none (KMS_OK). */
static kms_err kms_instance_read(struct kms_call *call, cJSON **out)
{
    struct kms_buf value = {0};
    kms_err rc = kms_store_meta_get(call->db, KMS_INSTANCE_META, &value);

    *out = NULL;
    if (rc == KMS_E_RESOURCE_NOT_FOUND)
        return KMS_OK;
    if (rc == KMS_OK) {
        *out = cJSON_ParseWithLength(value.data, value.len);
        if (!cJSON_IsObject(*out)) {
            kms_log_error("instances: the stored instance record does not parse");
            cJSON_Delete(*out);
            *out = NULL;
            rc = KMS_E_INTERNAL;
        }
    }
    kms_buf_free(&value);
    return rc;
}

/*
 * The instance record (owned by the caller): read, or created and stored on first use. In a
 * transaction (in_tx) the new record is written there; otherwise in one of its own.
 */
static kms_err kms_instance_load(struct kms_call *call, bool in_tx, cJSON **out)
{
    kms_err rc = kms_instance_read(call, out);

    if (rc != KMS_OK || *out != NULL)
        return rc;
    if (!in_tx) {
        rc = kms_store_begin(call->db);
        if (rc != KMS_OK)
            return rc;
        /* Another request may have written it meanwhile. */
        rc = kms_instance_read(call, out);
        if (rc != KMS_OK || *out != NULL) {
            kms_store_rollback(call->db);
            return rc;
        }
    }
    *out = kms_instance_new(call->now);
    rc = *out ? kms_instance_store(call, *out) : KMS_E_INTERNAL;
    if (rc == KMS_OK && !in_tx)
        rc = kms_store_commit(call->db);
    if (rc != KMS_OK) {
        if (!in_tx)
            kms_store_rollback(call->db);
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

/* KmsInstanceId must name this server's instance: Forbidden.ResourceNotFound otherwise. */
static kms_err kms_instance_check_id(struct kms_call *call)
{
    const char *id;
    kms_err rc = kms_arg_required(call, "KmsInstanceId", &id);

    if (rc == KMS_OK && strcmp(id, call->cfg->instance_id) != 0)
        rc = kms_fail(call, KMS_E_RESOURCE_NOT_FOUND, "KmsInstanceId");
    if (rc == KMS_OK)
        snprintf(call->resource, sizeof(call->resource), "keystore/%.64s", call->cfg->instance_id);
    return rc;
}

/* A comma-separated list parameter as a JSON array of ids: min..max entries, each valid. */
static kms_err kms_arg_id_list(struct kms_call *call, const char *name, size_t min, size_t max,
                               cJSON **out)
{
    const char *v;
    char *copy, *save = NULL;
    size_t n = 0;
    kms_err rc = kms_arg_required(call, name, &v);

    *out = NULL;
    if (rc != KMS_OK)
        return rc;
    copy = strdup(v);
    *out = cJSON_CreateArray();
    if (copy == NULL || *out == NULL) {
        free(copy);
        cJSON_Delete(*out);
        *out = NULL;
        return KMS_E_INTERNAL;
    }
    /* Empty items ("a,,b", a trailing comma) are malformed, not skipped. */
    if (v[0] == ',' || v[strlen(v) - 1] == ',' || strstr(v, ",,") != NULL)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, name);
    for (char *item = strtok_r(copy, ",", &save); rc == KMS_OK && item != NULL;
         item = strtok_r(NULL, ",", &save)) {
        cJSON *s;

        if (!kms_instance_name_ok(item) || ++n > max) {
            rc = kms_fail(call, KMS_E_INVALID_PARAMETER, name);
            break;
        }
        s = cJSON_CreateString(item);
        if (s == NULL || !cJSON_AddItemToArray(*out, s)) {
            cJSON_Delete(s);
            rc = KMS_E_INTERNAL;
        }
    }
    if (rc == KMS_OK && n < min)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, name);
    free(copy);
    if (rc != KMS_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

/* Replaces member name of obj by item (taking it). */
static kms_err kms_instance_set(cJSON *obj, const char *name, cJSON *item)
{
    if (item == NULL)
        return KMS_E_INTERNAL;
    if (cJSON_GetObjectItemCaseSensitive(obj, name) != NULL)
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, name, item) ? KMS_OK : KMS_E_INTERNAL;
    if (!cJSON_AddItemToObject(obj, name, item)) {
        cJSON_Delete(item);
        return KMS_E_INTERNAL;
    }
    return KMS_OK;
}

kms_err kms_api_connect_kms_instance(struct kms_call *call)
{
    cJSON *zones = NULL, *vswitches = NULL, *inst = NULL, *status;
    const char *unused, *provider, *vpc;
    kms_err rc;

    rc = kms_arg_required(call, "KmsInstanceId", &unused);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "KMProvider", &provider);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "VpcId", &vpc);
    if (rc == KMS_OK)
        rc = kms_arg_id_list(call, "ZoneIds", 2, 2, &zones);
    if (rc == KMS_OK)
        rc = kms_arg_id_list(call, "VSwitchIds", 1, KMS_INSTANCE_MAX_IDS, &vswitches);
    if (rc == KMS_OK && strcmp(provider, "Aliyun") != 0)
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "KMProvider");
    if (rc == KMS_OK && !kms_instance_name_ok(vpc))
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "VpcId");
    if (rc == KMS_OK)
        rc = kms_instance_check_id(call);
    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc != KMS_OK)
        goto out;
    rc = kms_instance_load(call, true, &inst);
    status = inst ? cJSON_GetObjectItemCaseSensitive(inst, "Status") : NULL;
    if (rc == KMS_OK && cJSON_IsString(status) && strcmp(status->valuestring, "Connected") == 0)
        rc = kms_fail(call, KMS_E_RESOURCE_EXISTS, "KmsInstanceId");
    if (rc == KMS_OK)
        rc = kms_instance_set(inst, "Status", cJSON_CreateString("Connected"));
    if (rc == KMS_OK)
        rc = kms_instance_set(inst, "VpcId", cJSON_CreateString(vpc));
    if (rc == KMS_OK) {
        rc = kms_instance_set(inst, "ZoneIds", zones);
        zones = NULL;
    }
    if (rc == KMS_OK) {
        rc = kms_instance_set(inst, "VswitchIds", vswitches);
        vswitches = NULL;
    }
    if (rc == KMS_OK)
        rc = kms_instance_store(call, inst);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    else
        kms_store_rollback(call->db);
out:
    cJSON_Delete(zones);
    cJSON_Delete(vswitches);
    cJSON_Delete(inst);
    return rc;
}

/* Parses BindVpcs: [{"VpcId","VSwitchId","RegionId","VpcOwnerId"}, ...] into a stored array. */
static kms_err kms_arg_bind_vpcs(struct kms_call *call, cJSON **out)
{
    static const char *const names[] = {"VpcId", "VSwitchId", "RegionId"};
    const char *json;
    cJSON *in, *item;
    kms_err rc = kms_arg_required(call, "BindVpcs", &json);

    *out = NULL;
    if (rc != KMS_OK)
        return rc;
    in = cJSON_Parse(json);
    if (!cJSON_IsArray(in) || cJSON_GetArraySize(in) > KMS_INSTANCE_MAX_VPCS) {
        cJSON_Delete(in);
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "BindVpcs");
    }
    *out = cJSON_CreateArray();
    if (*out == NULL)
        rc = KMS_E_INTERNAL;
    cJSON_ArrayForEach(item, in)
    {
        cJSON *owner = cJSON_GetObjectItemCaseSensitive(item, "VpcOwnerId");
        cJSON *vpc = NULL;
        char owner_text[KMS_CONFIG_STR];

        if (rc != KMS_OK)
            break;
        if (!cJSON_IsObject(item)) {
            rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "BindVpcs");
            break;
        }
        vpc = cJSON_CreateObject();
        if (vpc == NULL || !cJSON_AddItemToArray(*out, vpc)) {
            cJSON_Delete(vpc);
            rc = KMS_E_INTERNAL;
            break;
        }
        for (size_t i = 0; rc == KMS_OK && i < KMS_ARRAY_LEN(names); i++) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(item, names[i]);

            if (!cJSON_IsString(v) || !kms_instance_name_ok(v->valuestring))
                rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "BindVpcs");
            else if (!cJSON_AddStringToObject(vpc, names[i], v->valuestring))
                rc = KMS_E_INTERNAL;
        }
        if (rc != KMS_OK)
            break;
        /* The SDK sends the owner as a JSON number; a digit string is taken too. Absent: us. */
        if (owner == NULL) {
            snprintf(owner_text, sizeof(owner_text), "%s", call->cfg->account_id);
        } else if (cJSON_IsNumber(owner) && owner->valuedouble >= 0 &&
                   owner->valuedouble < 9007199254740992.0 &&
                   owner->valuedouble == (double)(long long)owner->valuedouble) {
            snprintf(owner_text, sizeof(owner_text), "%lld", (long long)owner->valuedouble);
        } else if (cJSON_IsString(owner) && owner->valuestring[0] != '\0' &&
                   strlen(owner->valuestring) <= 32 &&
                   strspn(owner->valuestring, "0123456789") == strlen(owner->valuestring)) {
            snprintf(owner_text, sizeof(owner_text), "%s", owner->valuestring);
        } else {
            rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "BindVpcs");
            break;
        }
        if (!cJSON_AddStringToObject(vpc, "VpcOwnerId", owner_text))
            rc = KMS_E_INTERNAL;
    }
    cJSON_Delete(in);
    if (rc != KMS_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

kms_err kms_api_update_kms_instance_bind_vpc(struct kms_call *call)
{
    cJSON *vpcs = NULL, *inst = NULL;
    const char *unused;
    kms_err rc;

    rc = kms_arg_required(call, "KmsInstanceId", &unused);
    if (rc == KMS_OK)
        rc = kms_arg_bind_vpcs(call, &vpcs);
    if (rc == KMS_OK)
        rc = kms_instance_check_id(call);
    if (rc == KMS_OK)
        rc = kms_store_begin(call->db);
    if (rc != KMS_OK)
        goto out;
    rc = kms_instance_load(call, true, &inst);
    if (rc == KMS_OK) {
        rc = kms_instance_set(inst, "BindVpcs", vpcs);
        vpcs = NULL;
    }
    if (rc == KMS_OK)
        rc = kms_instance_store(call, inst);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    else
        kms_store_rollback(call->db);
out:
    cJSON_Delete(vpcs);
    cJSON_Delete(inst);
    return rc;
}

/*
 * The certificates of the server's TLS chain as PEM (only certificates: a cert_file that also
 * holds the private key never gives it away). "" without TLS or when the file does not read.
 */
static kms_err kms_instance_ca_chain(struct kms_call *call, struct kms_buf *out)
{
    BIO *in, *mem;
    X509 *cert;
    char *data = NULL;
    long len;
    int count = 0;
    kms_err rc = KMS_OK;

    if (call->cfg->insecure_plain_http)
        return KMS_OK;
    in = BIO_new_file(call->cfg->tls_cert_file, "r");
    mem = BIO_new(BIO_s_mem());
    if (in == NULL || mem == NULL) {
        if (in == NULL)
            kms_log_warn("instances: cannot read %s for CaCertificateChainPem",
                         call->cfg->tls_cert_file);
        BIO_free(in);
        BIO_free(mem);
        return mem == NULL ? KMS_E_INTERNAL : KMS_OK;
    }
    while ((cert = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        if (PEM_write_bio_X509(mem, cert) != 1)
            rc = KMS_E_INTERNAL;
        X509_free(cert);
        count++;
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    len = BIO_get_mem_data(mem, &data);
    if (rc == KMS_OK && count > 0 && len > 0)
        rc = kms_buf_append(out, data, (size_t)len);
    BIO_free(in);
    BIO_free(mem);
    return rc;
}

/* obj[name] = a copy of the array member name of inst (an empty array if absent). */
static kms_err kms_instance_out_array(cJSON *obj, const char *name, const cJSON *inst,
                                      const char *member)
{
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(inst, member);
    cJSON *copy = cJSON_IsArray(src) ? cJSON_Duplicate(src, true) : cJSON_CreateArray();

    if (copy == NULL || !cJSON_AddItemToObject(obj, name, copy)) {
        cJSON_Delete(copy);
        return KMS_E_INTERNAL;
    }
    return KMS_OK;
}

static const char *kms_instance_str(const cJSON *inst, const char *member)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(inst, member);

    return cJSON_IsString(v) ? v->valuestring : "";
}

kms_err kms_api_get_kms_instance(struct kms_call *call)
{
    struct kms_buf chain = {0};
    cJSON *inst = NULL, *out, *created, *bind;
    char secret_num[32];
    int64_t create_time;
    kms_err rc;

    rc = kms_instance_check_id(call);
    if (rc == KMS_OK)
        rc = kms_instance_load(call, false, &inst);
    if (rc == KMS_OK)
        rc = kms_instance_ca_chain(call, &chain);
    if (rc != KMS_OK)
        goto out;
    created = cJSON_GetObjectItemCaseSensitive(inst, "CreateTime");
    create_time = cJSON_IsNumber(created) ? (int64_t)created->valuedouble : 0;
    out = cJSON_AddObjectToObject(call->out, "KmsInstance");
    if (out == NULL) {
        rc = KMS_E_INTERNAL;
        goto out;
    }
    /* Types as the SDK's model has them: numbers, a string SecretNum, a boolean, bare arrays. */
    snprintf(secret_num, sizeof(secret_num), "%d", call->cfg->max_secrets);
    rc |= kms_out_str(out, "InstanceId", call->cfg->instance_id);
    rc |= kms_out_str(out, "InstanceName", call->cfg->instance_id);
    rc |= kms_out_str(out, "Status", kms_instance_str(inst, "Status"));
    rc |= kms_out_str(out, "VpcId", kms_instance_str(inst, "VpcId"));
    rc |= kms_instance_out_array(out, "VswitchIds", inst, "VswitchIds");
    rc |= kms_instance_out_array(out, "ZoneIds", inst, "ZoneIds");
    rc |= kms_out_str(out, "CaCertificateChainPem", chain.data ? chain.data : "");
    rc |= kms_out_str(out, "ChargeType", "POSTPAY");
    rc |= kms_out_time(out, "CreateTime", create_time);
    rc |= kms_out_time(out, "StartDate", create_time);
    rc |= kms_out_str(out, "EndDate", KMS_INSTANCE_END_DATE);
    rc |= cJSON_AddNumberToObject(out, "KeyNum", call->cfg->max_keys) ? KMS_OK : KMS_E_INTERNAL;
    rc |= kms_out_str(out, "SecretNum", secret_num);
    /* Spec is the purchased QPS: kmsd sets no request-rate limit, so 0 (none). */
    rc |= cJSON_AddNumberToObject(out, "Spec", 0) ? KMS_OK : KMS_E_INTERNAL;
    rc |= cJSON_AddNumberToObject(out, "VpcNum", KMS_INSTANCE_MAX_VPCS) ? KMS_OK : KMS_E_INTERNAL;
    rc |= cJSON_AddNumberToObject(out, "Log", 0) ? KMS_OK : KMS_E_INTERNAL;
    rc |= cJSON_AddNumberToObject(out, "LogStorage", 0) ? KMS_OK : KMS_E_INTERNAL;
    rc |= kms_out_str(out, "ProductType", "kmsd");
    rc |= kms_out_str(out, "ProductVersion", "3");
    rc |= kms_out_str(out, "SaleStatus", "Normal");
    rc |= cJSON_AddBoolToObject(out, "DeletionProtection", false) ? KMS_OK : KMS_E_INTERNAL;
    rc |= kms_out_str(out, "DeletionProtectionDescription", "");
    bind = cJSON_AddObjectToObject(out, "BindVpcs");
    rc |= bind ? kms_instance_out_array(bind, "BindVpc", inst, "BindVpcs") : KMS_E_INTERNAL;
    if (rc != KMS_OK)
        rc = KMS_E_INTERNAL;
out:
    kms_buf_free(&chain);
    cJSON_Delete(inst);
    return rc;
}

/* Filters of ListKmsInstances: the ListKeys syntax, checked; no key applies to instances. */
static kms_err kms_instance_filters_check(struct kms_call *call)
{
    const char *json = kms_arg(call, "Filters");
    cJSON *root, *item;
    kms_err rc = KMS_OK;

    if (json == NULL)
        return KMS_OK;
    root = cJSON_Parse(json);
    if (!cJSON_IsArray(root) || cJSON_GetArraySize(root) > 10) {
        cJSON_Delete(root);
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "Filters");
    }
    cJSON_ArrayForEach(item, root)
    {
        cJSON *key = cJSON_GetObjectItemCaseSensitive(item, "Key");
        cJSON *values = cJSON_GetObjectItemCaseSensitive(item, "Values");
        cJSON *v;

        if (!cJSON_IsString(key) || !cJSON_IsArray(values) || cJSON_GetArraySize(values) > 10) {
            rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Filters");
            break;
        }
        cJSON_ArrayForEach(v, values)
        {
            if (!cJSON_IsString(v))
                rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Filters");
        }
    }
    cJSON_Delete(root);
    return rc;
}

kms_err kms_api_list_kms_instances(struct kms_call *call)
{
    char arn[KMS_ARN_MAX];
    int64_t page, size;
    cJSON *list, *item;
    kms_err rc;

    rc = kms_arg_page(call, 20, &page, &size);
    if (rc == KMS_OK)
        rc = kms_instance_filters_check(call);
    if (rc != KMS_OK)
        return rc;
    kms_out_page(call, page, size, 1);
    list = kms_out_list(call->out, "KmsInstances", "KmsInstance");
    if (list == NULL)
        return KMS_E_INTERNAL;
    if (page > 1)
        return KMS_OK; /* the one instance is on page 1 */
    item = kms_out_item(list);
    if (item == NULL)
        return KMS_E_INTERNAL;
    kms_arn(call, "keystore", call->cfg->instance_id, arn, sizeof(arn));
    rc |= kms_out_str(item, "KmsInstanceId", call->cfg->instance_id);
    rc |= kms_out_str(item, "KmsInstanceArn", arn);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}

kms_err kms_check_instance_id(struct kms_call *call, const char *param)
{
    const char *id = kms_arg(call, param);

    if (id != NULL && strcmp(id, call->cfg->instance_id) != 0)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, param);
    return KMS_OK;
}
