/*
 * error.h - the one table of API error codes.
 *
 * Every failure a request can meet is a kms_err. The table in src/util/error.c maps each to the
 * wire Code, the HTTP status and a message; a message with "%s" takes the call's detail string
 * (a parameter name, or the server's StringToSign). Nothing else builds error bodies.
 */
#ifndef KMS_ERROR_H
#define KMS_ERROR_H

#include <stddef.h>

typedef enum kms_err {
    KMS_OK = 0,
    KMS_E_INTERNAL,                /* 500 InternalFailure */
    KMS_E_UNAVAILABLE,             /* 503 ServiceUnavailableTemporary */
    KMS_E_ACCESS_KEY_NOT_FOUND,    /* 404 InvalidAccessKeyId.NotFound */
    KMS_E_ACCESS_KEY_DISABLED,     /* 403 Forbidden.AccessKey */
    KMS_E_KEY_NOT_FOUND,           /* 404 Forbidden.KeyNotFound */
    KMS_E_KEY_VERSION_NOT_FOUND,   /* 404 Forbidden.KeyVersionNotFound */
    KMS_E_ALIAS_NOT_FOUND,         /* 404 Forbidden.AliasNotFound */
    KMS_E_NO_PERMISSION,           /* 403 Forbidden.NoPermission */
    KMS_E_UNSUPPORTED_HTTP_METHOD, /* 403 UnsupportedHTTPMethod */
    KMS_E_PARSE_REQUEST,           /* 400 ParseRequestParameterException */
    KMS_E_MISSING_PARAMETER,       /* 400 MissingParameter, detail = parameter name */
    KMS_E_INVALID_PARAMETER,       /* 400 InvalidParameter, detail = parameter name */
    KMS_E_INCOMPLETE_SIGNATURE,    /* 400 IncompleteSignature */
    KMS_E_SIGNATURE_MISMATCH,      /* 400 SignatureDoesNotMatch, detail = StringToSign */
    KMS_E_TIMESTAMP_MISSING,       /* 400 IllegalTimestamp (not supplied) */
    KMS_E_TIMESTAMP_MALFORMED,     /* 400 IllegalTimestamp (unparseable) */
    KMS_E_TIMESTAMP_EXPIRED,       /* 400 IllegalTimestamp (outside the window) */
    KMS_E_NONCE_USED,              /* 400 SignatureNonceUsed */
    KMS_E_INVALID_VERSION,         /* 400 InvalidVersion */
    KMS_E_ACTION_NOT_FOUND,        /* 404 InvalidAction.NotFound */
    KMS_E_LIMIT_EXCEEDED,          /* 400 Rejected.LimitExceeded */
    KMS_E_ALIAS_EXISTS,            /* 400 AliasAlreadyExists */
    KMS_E_INVALID_KEY_MATERIAL,    /* 400 InvalidKeyMaterial */
    KMS_E_INVALID_IMPORT_TOKEN,    /* 400 InvalidImportToken */
    KMS_E_EXPIRED_IMPORT_TOKEN,    /* 400 ExpiredImportToken */
    KMS_E_UNSUPPORTED_ORIGIN,      /* 400 Unsupported.Origin */
    KMS_E_UNSUPPORTED_ALIAS,       /* 400 Unsupported.Alias */
    KMS_E_UNSUPPORTED_PROTECTION,  /* 400 Unsupported.ProtectionLevel */
    KMS_E_UNSUPPORTED_KEY_SPEC,    /* 400 Unsupported.KeySpec */
    KMS_E_UNSUPPORTED_KEY_USAGE,   /* 400 Unsupported.KeyUsage */
    KMS_E_UNSUPPORTED_ALGORITHM,   /* 400 Unsupported.Algorithm */
    KMS_E_STATE_MODIFIED_FAILED,   /* 409 Rejected.StateModifiedFailed */
    KMS_E_KEY_DISABLED,            /* 409 Rejected.Disabled */
    KMS_E_KEY_PENDING_DELETION,    /* 409 Rejected.PendingDeletion */
    KMS_E_KEY_PENDING_IMPORT,      /* 409 Rejected.PendingImport */
    KMS_E_DELETION_PROTECTION,     /* 409 Rejected.DeletionProtection */
    KMS_E_THROTTLING,              /* 429 Rejected.Throttling */
    KMS_E_RESOURCE_NOT_FOUND,      /* 404 Forbidden.ResourceNotFound */
    KMS_E_RESOURCE_EXISTS,         /* 409 Rejected.ResourceExist */
    KMS_E_RESOURCE_IN_DELETE,      /* 409 Rejected.ResourceInDeleteWindow */
    KMS_E_RESOURCE_IN_USE,         /* 409 Rejected.ResourceInUse */
    KMS_E_CERTIFICATE_NOT_FOUND,   /* 404 Certificate.NotFound */
    KMS_E_CERTIFICATE_REVOKED,     /* 409 Rejected.Revoked */
    KMS_E_SERVICE_OPENED,          /* 400 Forbidden.Opened */
    KMS_E_UNSUPPORTED,             /* 400 Rejected.Unsupported */
    KMS_E_DRY_RUN,                 /* 400 DryRunOperationError */
    KMS_E_SERVICE_NOT_ENABLED,     /* 403 Forbidden.KmsServiceNotEnabled */
    KMS_E_COUNT
} kms_err;

struct kms_err_info {
    const char *code;    /* wire Code, e.g. "Forbidden.KeyNotFound" */
    int http_status;     /* HTTP status line */
    const char *message; /* message; at most one "%s", replaced by the detail */
};

/* The table row for err (KMS_E_INTERNAL's row for an out-of-range value). */
const struct kms_err_info *kms_err_info(kms_err err);

/*
 * Writes err's message with detail substituted into buf (always NUL-terminated, truncated to
 * size). A NULL or empty detail leaves "%s" messages with an empty quote.
 */
void kms_err_message(kms_err err, const char *detail, char *buf, size_t size);

#endif
