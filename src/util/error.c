/*
 * error.c - the error table: kms_err -> wire Code, HTTP status, message (spec/protocol.md §10).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "kms/error.h"

static const struct kms_err_info kms_err_table[KMS_E_COUNT] = {
    [KMS_OK] = {"", 200, ""},
    [KMS_E_INTERNAL] = {"InternalFailure", 500, "Internal Failure."},
    [KMS_E_UNAVAILABLE] = {"ServiceUnavailableTemporary", 503, "Service Unavailable Temporary."},
    [KMS_E_ACCESS_KEY_NOT_FOUND] = {"InvalidAccessKeyId.NotFound", 404,
                                    "The AccessKey ID provided does not exist in our records."},
    [KMS_E_ACCESS_KEY_DISABLED] = {"Forbidden.AccessKey", 403, "This AccessKey is not enabled."},
    [KMS_E_KEY_NOT_FOUND] = {"Forbidden.KeyNotFound", 404, "The specified Key is not found."},
    [KMS_E_KEY_VERSION_NOT_FOUND] = {"Forbidden.KeyVersionNotFound", 404,
                                     "The specified Key version is not found."},
    [KMS_E_ALIAS_NOT_FOUND] = {"Forbidden.AliasNotFound", 404, "The specified Alias is not found."},
    [KMS_E_NO_PERMISSION] = {"Forbidden.NoPermission", 403,
                             "This operation is forbidden by permission system."},
    [KMS_E_UNSUPPORTED_HTTP_METHOD] = {"UnsupportedHTTPMethod", 403,
                                       "This http method is not supported."},
    [KMS_E_PARSE_REQUEST] = {"ParseRequestParameterException", 400,
                             "Server parse parameters exception. Please check your input params."},
    [KMS_E_MISSING_PARAMETER] = {"MissingParameter", 400,
                                 "The parameter \"%s\" is needed but not provided."},
    [KMS_E_INVALID_PARAMETER] = {"InvalidParameter", 400,
                                 "The specified parameter \"%s\" is not valid."},
    [KMS_E_INCOMPLETE_SIGNATURE] = {"IncompleteSignature", 400,
                                    "The request signature does not conform to Alibaba Cloud "
                                    "standards."},
    [KMS_E_SIGNATURE_MISMATCH] = {"SignatureDoesNotMatch", 400,
                                  "Specified signature is not matched with our calculation. "
                                  "server string to sign is:%s"},
    [KMS_E_TIMESTAMP_MISSING] = {"IllegalTimestamp", 400,
                                 "The input parameter \"Timestamp\" that is mandatory for "
                                 "processing this request is not supplied."},
    [KMS_E_TIMESTAMP_MALFORMED] = {"IllegalTimestamp", 400,
                                   "The specified parameter \"Timestamp\" is not valid: expected "
                                   "YYYY-MM-DDThh:mm:ssZ."},
    [KMS_E_TIMESTAMP_EXPIRED] = {"IllegalTimestamp", 400,
                                 "Specified time stamp or date value is expired."},
    [KMS_E_NONCE_USED] = {"SignatureNonceUsed", 400, "Specified signature nonce was used already."},
    [KMS_E_INVALID_VERSION] = {"InvalidVersion", 400, "Specified parameter Version is not valid."},
    [KMS_E_ACTION_NOT_FOUND] = {"InvalidAction.NotFound", 404,
                                "Specified api is not found, please check your url and method."},
    [KMS_E_LIMIT_EXCEEDED] = {"Rejected.LimitExceeded", 400,
                              "The request was rejected because user create resource limit was "
                              "exceeded."},
    [KMS_E_ALIAS_EXISTS] = {"AliasAlreadyExists", 400, "AliasName Already Exists."},
    [KMS_E_INVALID_KEY_MATERIAL] = {"InvalidKeyMaterial", 400, "key material is invalid."},
    [KMS_E_INVALID_IMPORT_TOKEN] = {"InvalidImportToken", 400, "import token is invalid."},
    [KMS_E_EXPIRED_IMPORT_TOKEN] = {"ExpiredImportToken", 400, "import token is expired."},
    [KMS_E_UNSUPPORTED_ORIGIN] = {"Unsupported.Origin", 400,
                                  "This key origin is not valid for this api."},
    [KMS_E_UNSUPPORTED_ALIAS] = {"Unsupported.Alias", 400, "Alias is not valid for this api."},
    [KMS_E_UNSUPPORTED_PROTECTION] = {"Unsupported.ProtectionLevel", 400,
                                      "This protection level is not valid for this region"},
    [KMS_E_UNSUPPORTED_KEY_SPEC] = {"Unsupported.KeySpec", 400,
                                    "This key spec is not valid for this api."},
    [KMS_E_UNSUPPORTED_KEY_USAGE] = {"Unsupported.KeyUsage", 400,
                                     "This key usage is not valid for this api."},
    [KMS_E_UNSUPPORTED_ALGORITHM] = {"Unsupported.Algorithm", 400,
                                     "This algorithm is not valid for this key."},
    [KMS_E_STATE_MODIFIED_FAILED] = {"Rejected.StateModifiedFailed", 409,
                                     "Keystate modified failed."},
    [KMS_E_KEY_DISABLED] = {"Rejected.Disabled", 409,
                            "The request was rejected because the key state is Disabled."},
    [KMS_E_KEY_PENDING_DELETION] = {"Rejected.PendingDeletion", 409,
                                    "The request was rejected because the key state is "
                                    "PendingDeletion."},
    [KMS_E_KEY_PENDING_IMPORT] = {"Rejected.PendingImport", 409,
                                  "The request was rejected because the key state is "
                                  "PendingImport."},
    [KMS_E_DELETION_PROTECTION] = {"Rejected.DeletionProtection", 409,
                                   "The key is protected by deletion protection."},
    [KMS_E_THROTTLING] = {"Rejected.Throttling", 429, "QPS Limit Exceeded"},
    [KMS_E_RESOURCE_NOT_FOUND] = {"Forbidden.ResourceNotFound", 404, "The resource is not found."},
    [KMS_E_RESOURCE_EXISTS] = {"Rejected.ResourceExist", 409, "The resource already exists."},
    [KMS_E_RESOURCE_IN_DELETE] = {"Rejected.ResourceInDeleteWindow", 409,
                                  "The secret is planned to be deleted."},
    [KMS_E_RESOURCE_IN_USE] = {"Rejected.ResourceInUse", 409, "The resource is in use."},
    [KMS_E_CERTIFICATE_NOT_FOUND] = {"Certificate.NotFound", 404,
                                     "The specified certificate is not found."},
    [KMS_E_CERTIFICATE_REVOKED] = {"Rejected.Revoked", 409,
                                   "The request was rejected because the certificate is revoked."},
    [KMS_E_SERVICE_OPENED] = {"Forbidden.Opened", 400, "Your kms service has been opened."},
    [KMS_E_UNSUPPORTED] = {"Rejected.Unsupported", 400,
                           "This operation is not supported by this server."},
    [KMS_E_DRY_RUN] = {"DryRunOperationError", 400,
                       "The request would have succeeded, but the DryRun flag is set."},
    [KMS_E_SERVICE_NOT_ENABLED] = {"Forbidden.KmsServiceNotEnabled", 403,
                                   "Kms service is not Enabled for current user. Please get access "
                                   "permission first."},
};

const struct kms_err_info *kms_err_info(kms_err err)
{
    if ((int)err <= KMS_OK || err >= KMS_E_COUNT)
        return &kms_err_table[KMS_E_INTERNAL];
    return &kms_err_table[err];
}

void kms_err_message(kms_err err, const char *detail, char *buf, size_t size)
{
    const char *fmt = kms_err_info(err)->message;
    const char *hole = strstr(fmt, "%s");

    if (size == 0)
        return;
    if (hole == NULL) {
        snprintf(buf, size, "%s", fmt);
        return;
    }
    snprintf(buf, size, "%.*s%s%s", (int)(hole - fmt), fmt, detail ? detail : "", hole + 2);
}
