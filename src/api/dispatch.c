/*
 * dispatch.c - one request from parameters to response: the common checks in the order of
 * spec/protocol.md §3 (method, path, Action, Version, authentication, authorization), the
 * handler, and the envelope (RequestId; JSON or XML; error bodies from the error table).
 * Every request, whatever its outcome, ends in kms_api_observe_end (audit record, metrics).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "kms/auth.h"
#include "kms/clock.h"
#include "kms/log.h"
#include "kms/metrics.h"
#include "kms/render.h"

#define KMS_API_VERSION    "2016-01-20"
#define KMS_CACHE_CAPACITY 100000
#define KMS_BODY_INITIAL   1024

static const struct kms_config *kms_api_cfg;

/* Sorted by name (strcmp order): looked up with bsearch. */
static const struct kms_action kms_actions[] = {
    {"AsymmetricDecrypt", kms_api_asymmetric_decrypt, true},
    {"AsymmetricEncrypt", kms_api_asymmetric_encrypt, true},
    {"AsymmetricSign", kms_api_asymmetric_sign, true},
    {"AsymmetricVerify", kms_api_asymmetric_verify, true},
    {"CancelKeyDeletion", kms_api_cancel_key_deletion, false},
    {"CertificatePrivateKeyDecrypt", kms_api_certificate_private_key_decrypt, false},
    {"CertificatePrivateKeySign", kms_api_certificate_private_key_sign, false},
    {"CertificatePublicKeyEncrypt", kms_api_certificate_public_key_encrypt, false},
    {"CertificatePublicKeyVerify", kms_api_certificate_public_key_verify, false},
    {"ConnectKmsInstance", kms_api_connect_kms_instance, false},
    {"CreateAccessKey", kms_api_create_access_key, false},
    {"CreateAlias", kms_api_create_alias, false},
    {"CreateApplicationAccessPoint", kms_api_create_application_access_point, false},
    {"CreateCertificate", kms_api_create_certificate, false},
    {"CreateClientKey", kms_api_create_client_key, false},
    {"CreateKey", kms_api_create_key, false},
    {"CreateKeyVersion", kms_api_create_key_version, false},
    {"CreateNetworkRule", kms_api_create_network_rule, false},
    {"CreatePolicy", kms_api_create_policy, false},
    {"CreateSecret", kms_api_create_secret, false},
    {"Decrypt", kms_api_decrypt, true},
    {"DeleteAccessKey", kms_api_delete_access_key, false},
    {"DeleteAlias", kms_api_delete_alias, false},
    {"DeleteApplicationAccessPoint", kms_api_delete_application_access_point, false},
    {"DeleteCertificate", kms_api_delete_certificate, false},
    {"DeleteClientKey", kms_api_delete_client_key, false},
    {"DeleteKeyMaterial", kms_api_delete_key_material, false},
    {"DeleteNetworkRule", kms_api_delete_network_rule, false},
    {"DeletePolicy", kms_api_delete_policy, false},
    {"DeleteSecret", kms_api_delete_secret, false},
    {"DescribeAccountKmsStatus", kms_api_describe_account_kms_status, false},
    {"DescribeApplicationAccessPoint", kms_api_describe_application_access_point, false},
    {"DescribeCertificate", kms_api_describe_certificate, false},
    {"DescribeKey", kms_api_describe_key, false},
    {"DescribeKeyVersion", kms_api_describe_key_version, false},
    {"DescribeNetworkRule", kms_api_describe_network_rule, false},
    {"DescribePolicy", kms_api_describe_policy, false},
    {"DescribeRegions", kms_api_describe_regions, false},
    {"DescribeSecret", kms_api_describe_secret, false},
    {"DescribeService", kms_api_describe_service, false},
    {"DisableKey", kms_api_disable_key, false},
    {"EnableKey", kms_api_enable_key, false},
    {"Encrypt", kms_api_encrypt, true},
    {"ExportCertificate", kms_api_export_certificate, false},
    {"ExportDataKey", kms_api_export_data_key, true},
    {"GenerateAndExportDataKey", kms_api_generate_and_export_data_key, true},
    {"GenerateDataKey", kms_api_generate_data_key, true},
    {"GenerateDataKeyWithoutPlaintext", kms_api_generate_data_key_without_plaintext, true},
    {"GenerateMac", kms_api_generate_mac, true},
    {"GenerateRandom", kms_api_generate_random, false},
    {"GetCertificate", kms_api_get_certificate, false},
    {"GetClientKey", kms_api_get_client_key, false},
    {"GetKmsInstance", kms_api_get_kms_instance, false},
    {"GetParametersForImport", kms_api_get_parameters_for_import, false},
    {"GetPublicKey", kms_api_get_public_key, true},
    {"GetRandomPassword", kms_api_get_random_password, false},
    {"GetSecretValue", kms_api_get_secret_value, true},
    {"ImportCertificate", kms_api_import_certificate, false},
    {"ImportKeyMaterial", kms_api_import_key_material, false},
    {"ListAccessKeys", kms_api_list_access_keys, false},
    {"ListAliases", kms_api_list_aliases, false},
    {"ListAliasesByKeyId", kms_api_list_aliases_by_key_id, false},
    {"ListApplicationAccessPoints", kms_api_list_application_access_points, false},
    {"ListCertificates", kms_api_list_certificates, false},
    {"ListClientKeys", kms_api_list_client_keys, false},
    {"ListKeyVersions", kms_api_list_key_versions, false},
    {"ListKeys", kms_api_list_keys, false},
    {"ListKmsInstances", kms_api_list_kms_instances, false},
    {"ListNetworkRules", kms_api_list_network_rules, false},
    {"ListPolicies", kms_api_list_policies, false},
    {"ListResourceTags", kms_api_list_resource_tags, false},
    {"ListSecretVersionIds", kms_api_list_secret_version_ids, false},
    {"ListSecrets", kms_api_list_secrets, false},
    {"ListTagResources", kms_api_list_tag_resources, false},
    {"OpenKmsService", kms_api_open_kms_service, false},
    {"PutSecretValue", kms_api_put_secret_value, false},
    {"ReEncrypt", kms_api_re_encrypt, true},
    {"RestoreSecret", kms_api_restore_secret, false},
    {"RotateSecret", kms_api_rotate_secret, false},
    {"ScheduleKeyDeletion", kms_api_schedule_key_deletion, false},
    {"SetDeletionProtection", kms_api_set_deletion_protection, false},
    {"TagResource", kms_api_tag_resource, false},
    {"TagResources", kms_api_tag_resources, false},
    {"UntagResource", kms_api_untag_resource, false},
    {"UntagResources", kms_api_untag_resources, false},
    {"UpdateAccessKey", kms_api_update_access_key, false},
    {"UpdateAlias", kms_api_update_alias, false},
    {"UpdateApplicationAccessPoint", kms_api_update_application_access_point, false},
    {"UpdateCertificateStatus", kms_api_update_certificate_status, false},
    {"UpdateKeyDescription", kms_api_update_key_description, false},
    {"UpdateKmsInstanceBindVpc", kms_api_update_kms_instance_bind_vpc, false},
    {"UpdateNetworkRule", kms_api_update_network_rule, false},
    {"UpdatePolicy", kms_api_update_policy, false},
    {"UpdateRotationPolicy", kms_api_update_rotation_policy, false},
    {"UpdateSecret", kms_api_update_secret, false},
    {"UpdateSecretRotationPolicy", kms_api_update_secret_rotation_policy, false},
    {"UpdateSecretVersionStage", kms_api_update_secret_version_stage, false},
    {"UploadCertificate", kms_api_upload_certificate, false},
    {"VerifyMac", kms_api_verify_mac, true},
};

static int kms_action_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct kms_action *)elem)->name);
}

const struct kms_action *kms_action_find(const char *name)
{
    const struct kms_action *a = bsearch(name, kms_actions, KMS_ARRAY_LEN(kms_actions),
                                         sizeof(kms_actions[0]), kms_action_cmp);

    return a ? a : kms_test_hook_action(name);
}

const struct kms_action *kms_action_at(size_t i)
{
    return i < KMS_ARRAY_LEN(kms_actions) ? &kms_actions[i] : NULL;
}

int kms_action_slot(const char *name)
{
    const struct kms_action *a;

    if (name == NULL)
        return -1;
    a = bsearch(name, kms_actions, KMS_ARRAY_LEN(kms_actions), sizeof(kms_actions[0]),
                kms_action_cmp);
    return a ? (int)(a - kms_actions) : -1;
}

kms_err kms_api_init(const struct kms_config *cfg)
{
    kms_err rc;

    for (size_t i = 1; i < KMS_ARRAY_LEN(kms_actions); i++) {
        if (strcmp(kms_actions[i - 1].name, kms_actions[i].name) >= 0) {
            kms_log_error("dispatch: action table out of order at %s", kms_actions[i].name);
            return KMS_E_INTERNAL;
        }
    }
    kms_api_cfg = cfg;
    {
        static const char *names[KMS_ARRAY_LEN(kms_actions)];

        for (size_t i = 0; i < KMS_ARRAY_LEN(kms_actions); i++)
            names[i] = kms_actions[i].name;
        kms_metrics_init(names, KMS_ARRAY_LEN(kms_actions));
    }
    rc = kms_keyref_init(KMS_CACHE_CAPACITY);
    if (rc == KMS_OK)
        rc = kms_cert_keys_init(KMS_CACHE_CAPACITY);
    if (rc == KMS_OK)
        rc = kms_auth_init(cfg);
    return rc;
}

void kms_api_shutdown(void)
{
    kms_auth_shutdown();
    kms_cert_keys_shutdown();
    kms_keyref_shutdown();
    kms_metrics_shutdown();
}

static bool kms_is_form(const struct kms_request *req)
{
    const char *ct = kms_request_header(req, "content-type");

    return ct != NULL && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0;
}

/* Parameters, Format, method and path: everything decided before knowing the caller. */
static kms_err kms_api_read_request(struct kms_call *call)
{
    const struct kms_request *req = call->req;
    const char *dup = NULL;
    const char *format;
    kms_err rc;

    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0)
        return KMS_E_UNSUPPORTED_HTTP_METHOD;
    if (req->too_large)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "RequestSize");
    rc = kms_params_parse(&call->params, req->query, req->query_len, KMS_PARAM_QUERY);
    if (rc == KMS_OK && strcmp(req->method, "POST") == 0 && req->body_len > 0 && kms_is_form(req))
        rc =
            kms_params_parse(&call->params, (const char *)req->body, req->body_len, KMS_PARAM_BODY);
    if (rc != KMS_OK)
        return rc;
    rc = kms_params_finish(&call->params, &dup);
    if (rc != KMS_OK)
        return kms_fail(call, rc, dup);
    format = kms_arg(call, "Format");
    if (format != NULL) {
        if (strcasecmp(format, "XML") == 0)
            call->xml = true;
        else if (strcasecmp(format, "JSON") != 0)
            return kms_fail(call, KMS_E_INVALID_PARAMETER, "Format");
    }
    if (strcmp(req->path, "/") != 0)
        return KMS_E_ACTION_NOT_FOUND;
    return KMS_OK;
}

/* Action and Version from the parameters (V1) or the x-acs-* headers (V3). */
static kms_err kms_api_action(struct kms_call *call, bool v3, const struct kms_action **out)
{
    const char *param_action = kms_arg(call, "Action");
    const char *action = param_action;
    const char *version = kms_arg(call, "Version");

    if (v3) {
        action = kms_request_header(call->req, "x-acs-action");
        if (action == NULL || action[0] == '\0')
            return kms_fail(call, KMS_E_MISSING_PARAMETER, "x-acs-action");
        if (param_action != NULL && strcmp(param_action, action) != 0)
            return kms_fail(call, KMS_E_INVALID_PARAMETER, "Action");
        version = kms_request_header(call->req, "x-acs-version");
        if (version == NULL || version[0] == '\0')
            return kms_fail(call, KMS_E_MISSING_PARAMETER, "x-acs-version");
    }
    if (action == NULL)
        return kms_fail(call, KMS_E_MISSING_PARAMETER, "Action");
    *out = kms_action_find(action);
    if (*out == NULL)
        return KMS_E_ACTION_NOT_FOUND;
    call->action = (*out)->name;
    if (version == NULL)
        return kms_fail(call, KMS_E_MISSING_PARAMETER, "Version");
    if (strcmp(version, KMS_API_VERSION) != 0)
        return KMS_E_INVALID_VERSION;
    return KMS_OK;
}

static kms_err kms_api_process(struct kms_call *call)
{
    const struct kms_action *action = NULL;
    const char *authz;
    bool v3;
    kms_err rc;

    rc = kms_api_read_request(call);
    if (rc != KMS_OK)
        return rc;
    authz = kms_request_header(call->req, "authorization");
    v3 = authz != NULL && strncmp(authz, "ACS3-", 5) == 0;
    rc = kms_api_action(call, v3, &action);
    if (rc != KMS_OK)
        return rc;
    rc = kms_authenticate(call, v3);
    if (rc != KMS_OK)
        return rc;
    call->authenticated = true;
    call->db = kms_store_thread();
    if (call->db == NULL)
        return KMS_E_UNAVAILABLE;
    rc = kms_authorize(call);
    if (rc != KMS_OK)
        return rc;
    rc = kms_service_check_opened(call);
    if (rc != KMS_OK)
        return rc;
    if (!action->dry_run) {
        bool dry = false;

        /* spec/protocol.md §12: never perform for real what the caller asked only to try. */
        rc = kms_arg_dry_run(call, &dry);
        if (rc == KMS_OK && dry)
            rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "DryRun");
        if (rc != KMS_OK)
            return rc;
    }
    return action->handler(call);
}

/* Overwrites every string in the tree: responses may carry plaintext or secrets. */
static void kms_cjson_wipe(cJSON *node)
{
    for (; node != NULL; node = node->next) {
        if (node->valuestring != NULL)
            OPENSSL_cleanse(node->valuestring, strlen(node->valuestring));
        kms_cjson_wipe(node->child);
    }
}

static void kms_api_render_error(struct kms_call *call, kms_err err, struct kms_response *resp,
                                 struct kms_buf *body)
{
    const struct kms_err_info *info = kms_err_info(err);
    /* Sized for the detail: a SignatureDoesNotMatch message carries the whole StringToSign. */
    size_t message_size = strlen(info->message) + call->detail.len + 1;
    char *message = malloc(message_size);
    cJSON *root = cJSON_CreateObject();

    if (message != NULL)
        kms_err_message(err, call->detail.data, message, message_size);
    resp->status = info->http_status;
    if (root == NULL || message == NULL ||
        !cJSON_AddStringToObject(root, "RequestId", call->request_id) ||
        !cJSON_AddStringToObject(root, "HostId", kms_api_cfg->host_id) ||
        !cJSON_AddStringToObject(root, "Code", info->code) ||
        !cJSON_AddStringToObject(root, "Message", message) ||
        !cJSON_AddNumberToObject(root, "HttpStatus", info->http_status) ||
        (call->xml ? kms_render_xml(root, body) : kms_render_json(root, body)) != KMS_OK) {
        /* Out of memory while reporting an error: a fixed body still parses as JSON. */
        kms_buf_reset(body);
        kms_buf_printf(body,
                       "{\"RequestId\":\"%s\",\"Code\":\"InternalFailure\",\"Message\":\"Internal "
                       "Failure.\",\"HttpStatus\":500}",
                       call->request_id);
        resp->status = 500;
        call->xml = false;
    }
    /* A SignatureDoesNotMatch message quotes the StringToSign: every parameter of the request. */
    kms_cjson_wipe(root);
    cJSON_Delete(root);
    if (message != NULL)
        OPENSSL_cleanse(message, message_size);
    free(message);
}

void kms_api_serve(const struct kms_request *req, struct kms_response *resp)
{
    struct kms_call call;
    struct kms_buf body = {0};
    struct kms_api_timing timing;
    kms_err rc;

    kms_api_observe_begin(&timing);
    memset(&call, 0, sizeof(call));
    /* The body may carry plaintext: room for a usual one at once, and growing wipes. */
    body.secret = true;
    (void)kms_buf_reserve(&body, KMS_BODY_INITIAL - 1); /* out of memory: rendering says so */
    call.req = req;
    call.cfg = kms_api_cfg;
    call.now = kms_clock_now();
    kms_uuid_generate(call.request_id);
    memcpy(resp->request_id, call.request_id, sizeof(resp->request_id));
    call.out = cJSON_CreateObject();
    if (call.out == NULL || !cJSON_AddStringToObject(call.out, "RequestId", call.request_id))
        rc = KMS_E_INTERNAL;
    else
        rc = kms_api_process(&call);
    if (call.db != NULL)
        kms_store_rollback(call.db); /* a handler that failed mid-transaction */
    if (rc == KMS_OK) {
        resp->status = 200;
        rc = call.xml ? kms_render_xml(call.out, &body) : kms_render_json(call.out, &body);
        if (rc != KMS_OK)
            kms_buf_reset(&body);
    }
    if (rc != KMS_OK)
        kms_api_render_error(&call, rc, resp, &body);
    resp->content_type = call.xml ? "text/xml;charset=utf-8" : "application/json;charset=utf-8";
    resp->body = body.data;
    resp->body_len = body.len;
    kms_api_observe_end(&call, rc, resp, &timing);
    kms_cjson_wipe(call.out);
    cJSON_Delete(call.out);
    kms_params_free(&call.params);
    kms_buf_free_secret(&call.detail); /* may quote the StringToSign */
}
