/*
 * api.h - the action layer: dispatch, the per-request call context handlers receive, parameter
 * validation helpers, and key resolution with state checks.
 *
 * A handler reads parameters through kms_arg_*(), does its work through store/ and keystore/,
 * and fills call->out (a cJSON object; RequestId is added by the dispatcher). It returns KMS_OK
 * or an error; kms_fail() records which parameter an error is about.
 */
#ifndef KMS_API_H
#define KMS_API_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "kms/config.h"
#include "kms/error.h"
#include "kms/http.h"
#include "kms/store.h"

/* Who signed the request. */
struct kms_principal {
    char access_key_id[KMS_ID_MAX];
    bool admin;
    char aap_name[KMS_ID_MAX]; /* access-point keys only */
};

struct kms_call {
    const struct kms_request *req;
    struct kms_params params;
    const struct kms_config *cfg;
    struct kms_db *db;
    const char *action;
    char request_id[KMS_UUID_LEN];
    struct kms_principal principal;
    time_t now;            /* kms_clock_now() when the request arrived: timed-work decisions */
    cJSON *out;            /* response members */
    struct kms_buf detail; /* error detail: a parameter name or the server's StringToSign */
    bool xml;              /* Format=XML */
    char resource[KMS_ID_MAX * 2]; /* for the audit record, e.g. "key/<KeyId>" */
    bool authenticated;            /* the signature verified: principal names the signer */
};

typedef kms_err (*kms_handler_fn)(struct kms_call *call);

struct kms_action {
    const char *name;
    kms_handler_fn handler;
    bool dry_run; /* the handler implements DryRun (spec/protocol.md §12) */
};

/* ---- dispatch.c ---- */

/* Prepares the action layer (caches, replay cache, credentials); call once before serving. */
kms_err kms_api_init(const struct kms_config *cfg);
void kms_api_shutdown(void);
/* Serves one request: always fills resp (status, body, RequestId), whatever happens. */
void kms_api_serve(const struct kms_request *req, struct kms_response *resp);
/* Test builds add actions here (src/api/test_hooks.c); release builds have none. */
const struct kms_action *kms_test_hook_action(const char *name);

/* ---- args.c: parameter helpers; each failure names the parameter ---- */

/* Records err with detail (a parameter name) on call and returns err. */
kms_err kms_fail(struct kms_call *call, kms_err err, const char *detail);
/* The value of name, or NULL when absent or empty (empty counts as not provided). */
const char *kms_arg(const struct kms_call *call, const char *name);
/* Like kms_arg, but MissingParameter when absent. */
kms_err kms_arg_required(struct kms_call *call, const char *name, const char **out);
/* Integer in [lo, hi]; *out = def when absent. */
kms_err kms_arg_int(struct kms_call *call, const char *name, int64_t lo, int64_t hi, int64_t def,
                    int64_t *out);
/* Boolean true/false (any case); *out = def when absent. */
kms_err kms_arg_bool(struct kms_call *call, const char *name, bool def, bool *out);
/* PageNumber (>= 1, default 1) and PageSize (1-100, default def_size). */
kms_err kms_arg_page(struct kms_call *call, int64_t def_size, int64_t *page, int64_t *size);
/* RotationInterval bounds (spec/key-states.md §6.1): 7-730 days, in seconds. */
#define KMS_ROTATION_INTERVAL_MIN (7LL * 86400)
#define KMS_ROTATION_INTERVAL_MAX (730LL * 86400)
/* Duration "<integer>[d|h|m|s]" within the rotation bounds, in seconds; MissingParameter when
 * absent, InvalidParameter when malformed or out of range. */
kms_err kms_arg_rotation_interval(struct kms_call *call, const char *name, int64_t *out);
/* Decodes a Base64 parameter into out (owned by the caller; wipe if secret). */
kms_err kms_arg_base64(struct kms_call *call, const char *name, bool required, struct kms_buf *out,
                       bool *present);
/* Length of s in Unicode characters must be within [lo, hi]. */
kms_err kms_check_length(struct kms_call *call, const char *name, const char *s, size_t lo,
                         size_t hi);
/*
 * DryRun (spec/protocol.md §12): *dry gets the flag; an action that supports it checks
 * everything, then answers KMS_E_DRY_RUN instead of acting.
 */
kms_err kms_arg_dry_run(struct kms_call *call, bool *dry);
/* Adds the paging members PageNumber, PageSize, TotalCount to call->out. */
void kms_out_page(struct kms_call *call, int64_t page, int64_t size, int64_t total);
/* Longest ARN: acs:kms:<region>:<account>:<type>/<name> (spec/actions.md §0.6). */
#define KMS_ARN_MAX (2 * KMS_CONFIG_STR + 2 * KMS_ID_MAX + 40)
/* Writes the ARN of resource type ("key", "alias", "secret", ...) called name into out. */
void kms_arn(const struct kms_call *call, const char *type, const char *name, char *out,
             size_t size);
/* cJSON helpers that treat allocation failure as KMS_E_INTERNAL. */
kms_err kms_out_str(cJSON *obj, const char *name, const char *value);
kms_err kms_out_time(cJSON *obj, const char *name, int64_t t); /* "" when t == 0 */
/* obj[outer] = {inner: []}; returns the array (NULL on allocation failure). */
cJSON *kms_out_list(cJSON *obj, const char *outer, const char *inner);
/* Appends a new empty object to array and returns it; NULL when out of memory. */
cJSON *kms_out_item(cJSON *array);

/* ---- keyref.c: resolving key references, state rules ---- */

/* A cached snapshot of a key's metadata: read-only, released with kms_key_put. */
struct kms_key {
    _Atomic int k_refs;
    struct kms_key_record k_rec;
};

/* How a handler accepts key references (spec/actions.md §0.2). */
enum kms_ref_mode {
    KMS_REF_ID_ONLY, /* key id or ARN; alias -> Unsupported.Alias */
    KMS_REF_ANY,     /* key id, ARN or alias */
};

/*
 * Resolves the key named by parameter param: KeyNotFound / AliasNotFound / Unsupported.Alias.
 * Keys whose DeleteDate has passed count as gone. *out must be released with kms_key_put.
 */
kms_err kms_key_resolve(struct kms_call *call, const char *param, enum kms_ref_mode mode,
                        struct kms_key **out);
/*
 * Names the key parameter param refers to without loading it (authorization needs only the
 * name): an id as given, an ARN's KeyId, or the key an alias is bound to. MissingParameter,
 * Unsupported.Alias (mode KMS_REF_ID_ONLY), AliasNotFound; KeyNotFound for an ARN of another
 * region or account, or an id longer than any key id.
 */
kms_err kms_key_name(struct kms_call *call, const char *param, enum kms_ref_mode mode,
                     char key_id[KMS_ID_MAX]);
/* The same for a value ref that is not the whole parameter (e.g. one of ResourceId.N); param
 * names it in errors. */
kms_err kms_key_name_value(struct kms_call *call, const char *param, const char *ref,
                           enum kms_ref_mode mode, char key_id[KMS_ID_MAX]);
/* Like kms_key_resolve for a value that is not a parameter (e.g. a blob's key). */
kms_err kms_key_lookup(struct kms_call *call, const char *key_id, struct kms_key **out);
void kms_key_put(struct kms_key *key);
/* Drops the cached snapshot after any change to the key (call after commit). */
void kms_key_invalidate(const char *key_id);
/* The state the rules see now: expired material reads as PendingImport. */
enum kms_key_state kms_key_effective_state(const struct kms_key_record *k, time_t now);
/* Using a key (crypto): Enabled, else Rejected.Disabled / PendingDeletion / PendingImport. */
kms_err kms_key_check_usable(struct kms_call *call, const struct kms_key_record *k);

struct evp_pkey_st; /* OpenSSL's EVP_PKEY (kms/crypto.h) */

/* A loaded key version, ready for keystore operations. Released with kms_version_put. */
struct kms_version {
    _Atomic int v_refs;
    char v_version_id[KMS_UUID_LEN];
    char v_key_id[KMS_ID_MAX];
    enum kms_key_spec v_spec;
    enum kms_protection v_protection;
    int64_t v_created_at;
    struct kms_ks_key *v_ks; /* NULL while the version has no material (BYOK pending) */
    uint8_t *v_public_der;
    size_t v_public_der_len;
    struct evp_pkey_st *v_public; /* v_public_der parsed once (asymmetric); else NULL */
};

/* Loads version_id (which must belong to key): KeyVersionNotFound otherwise. */
kms_err kms_version_get(struct kms_call *call, const struct kms_key_record *key,
                        const char *version_id, struct kms_version **out);
void kms_version_put(struct kms_version *v);
/* Drops a cached version (its material changed or was destroyed). */
void kms_version_invalidate(const char *version_id);
/* The key a version belongs to: KeyVersionNotFound when no such version exists. */
kms_err kms_version_owner(struct kms_call *call, const char *version_id, char key_id[KMS_ID_MAX]);

/* ---- symmetric.c: envelope encryption under a CMK ---- */

struct kms_context;
/* EncryptionContext (JSON, or flattened name.<k>=<v> params) from parameter name into ctx. */
kms_err kms_arg_context(struct kms_call *call, const char *name, struct kms_context *ctx);
/* Symmetric ENCRYPT/DECRYPT key, else Unsupported.KeySpec / Unsupported.KeyUsage. */
kms_err kms_key_check_symmetric(struct kms_call *call, const struct kms_key_record *k);
/*
 * The key a use-operation names in param (any reference form): symmetric ENCRYPT/DECRYPT
 * (Unsupported.KeySpec / Unsupported.KeyUsage) and Enabled (Rejected.*). Release: kms_key_put.
 */
kms_err kms_sym_usable_key(struct kms_call *call, const char *param, struct kms_key **out);
/* Seals pt under key's primary version bound to ctx; appends the blob; version_id gets the version.
 */
kms_err kms_sym_seal(struct kms_call *call, const struct kms_key_record *key,
                     const struct kms_context *ctx, const uint8_t *pt, size_t pt_len,
                     struct kms_buf *blob, char version_id[KMS_UUID_LEN]);
/*
 * Opens a blob (named param in errors) bound to ctx: finds its key and version, checks the key
 * is symmetric and usable, appends the plaintext to pt (caller wipes). *key_out (optional) gets
 * the key, released with kms_key_put. Service-managed keys only when allow_internal.
 */
kms_err kms_sym_open(struct kms_call *call, const char *param, const uint8_t *data, size_t len,
                     const struct kms_context *ctx, bool allow_internal, struct kms_buf *pt,
                     struct kms_key **key_out, char version_id[KMS_UUID_LEN]);
/* obj[name] = Base64(data). */
kms_err kms_out_b64(cJSON *obj, const char *name, const uint8_t *data, size_t len);

/* ---- crypto.c ---- */

/* Data-key length from KeySpec (AES_256/AES_128) and NumberOfBytes (1-1024, wins); default 32. */
kms_err kms_arg_data_key_length(struct kms_call *call, int64_t *len);

/* ---- handler groups (one file each) ---- */
/* service.c */
kms_err kms_api_describe_regions(struct kms_call *call);
kms_err kms_api_describe_service(struct kms_call *call);
kms_err kms_api_open_kms_service(struct kms_call *call);
kms_err kms_api_describe_account_kms_status(struct kms_call *call);
/* instances.c */
kms_err kms_api_connect_kms_instance(struct kms_call *call);
kms_err kms_api_get_kms_instance(struct kms_call *call);
kms_err kms_api_list_kms_instances(struct kms_call *call);
kms_err kms_api_update_kms_instance_bind_vpc(struct kms_call *call);
/* mac.c */
kms_err kms_api_generate_mac(struct kms_call *call);
kms_err kms_api_verify_mac(struct kms_call *call);
/* keys.c */
kms_err kms_api_create_key(struct kms_call *call);
kms_err kms_api_describe_key(struct kms_call *call);
kms_err kms_api_list_keys(struct kms_call *call);
kms_err kms_api_update_key_description(struct kms_call *call);
kms_err kms_api_enable_key(struct kms_call *call);
kms_err kms_api_disable_key(struct kms_call *call);
kms_err kms_api_schedule_key_deletion(struct kms_call *call);
kms_err kms_api_cancel_key_deletion(struct kms_call *call);
kms_err kms_api_set_deletion_protection(struct kms_call *call);
/* aliases.c */
kms_err kms_api_create_alias(struct kms_call *call);
kms_err kms_api_update_alias(struct kms_call *call);
kms_err kms_api_delete_alias(struct kms_call *call);
kms_err kms_api_list_aliases(struct kms_call *call);
kms_err kms_api_list_aliases_by_key_id(struct kms_call *call);
/* tags.c */
kms_err kms_api_tag_resource(struct kms_call *call);
kms_err kms_api_untag_resource(struct kms_call *call);
kms_err kms_api_list_resource_tags(struct kms_call *call);
/* tag_batch.c */
kms_err kms_api_tag_resources(struct kms_call *call);
kms_err kms_api_untag_resources(struct kms_call *call);
kms_err kms_api_list_tag_resources(struct kms_call *call);
/* crypto.c */
kms_err kms_api_encrypt(struct kms_call *call);
kms_err kms_api_decrypt(struct kms_call *call);
kms_err kms_api_generate_data_key(struct kms_call *call);
kms_err kms_api_generate_data_key_without_plaintext(struct kms_call *call);
/* reencrypt.c */
kms_err kms_api_re_encrypt(struct kms_call *call);
/* export.c */
kms_err kms_api_export_data_key(struct kms_call *call);
kms_err kms_api_generate_and_export_data_key(struct kms_call *call);
/* versions.c */
kms_err kms_api_create_key_version(struct kms_call *call);
kms_err kms_api_describe_key_version(struct kms_call *call);
kms_err kms_api_list_key_versions(struct kms_call *call);
kms_err kms_api_update_rotation_policy(struct kms_call *call);
/* asymmetric.c */
kms_err kms_api_get_public_key(struct kms_call *call);
kms_err kms_api_asymmetric_sign(struct kms_call *call);
kms_err kms_api_asymmetric_verify(struct kms_call *call);
kms_err kms_api_asymmetric_encrypt(struct kms_call *call);
kms_err kms_api_asymmetric_decrypt(struct kms_call *call);
/* import.c */
kms_err kms_api_get_parameters_for_import(struct kms_call *call);
kms_err kms_api_import_key_material(struct kms_call *call);
kms_err kms_api_delete_key_material(struct kms_call *call);
/* secrets.c */
kms_err kms_api_create_secret(struct kms_call *call);
kms_err kms_api_get_secret_value(struct kms_call *call);
kms_err kms_api_put_secret_value(struct kms_call *call);
kms_err kms_api_update_secret_version_stage(struct kms_call *call);
kms_err kms_api_list_secrets(struct kms_call *call);
kms_err kms_api_describe_secret(struct kms_call *call);
kms_err kms_api_update_secret(struct kms_call *call);
kms_err kms_api_list_secret_version_ids(struct kms_call *call);
kms_err kms_api_delete_secret(struct kms_call *call);
kms_err kms_api_restore_secret(struct kms_call *call);
kms_err kms_api_rotate_secret(struct kms_call *call);
kms_err kms_api_update_secret_rotation_policy(struct kms_call *call);
/* random.c */
kms_err kms_api_get_random_password(struct kms_call *call);
/* access.c */
kms_err kms_api_create_network_rule(struct kms_call *call);
kms_err kms_api_describe_network_rule(struct kms_call *call);
kms_err kms_api_list_network_rules(struct kms_call *call);
kms_err kms_api_update_network_rule(struct kms_call *call);
kms_err kms_api_delete_network_rule(struct kms_call *call);
kms_err kms_api_create_policy(struct kms_call *call);
kms_err kms_api_describe_policy(struct kms_call *call);
kms_err kms_api_list_policies(struct kms_call *call);
kms_err kms_api_update_policy(struct kms_call *call);
kms_err kms_api_delete_policy(struct kms_call *call);
kms_err kms_api_create_application_access_point(struct kms_call *call);
kms_err kms_api_describe_application_access_point(struct kms_call *call);
kms_err kms_api_list_application_access_points(struct kms_call *call);
kms_err kms_api_update_application_access_point(struct kms_call *call);
kms_err kms_api_delete_application_access_point(struct kms_call *call);
/* access_credentials.c */
kms_err kms_api_create_client_key(struct kms_call *call);
kms_err kms_api_get_client_key(struct kms_call *call);
kms_err kms_api_list_client_keys(struct kms_call *call);
kms_err kms_api_delete_client_key(struct kms_call *call);
kms_err kms_api_create_access_key(struct kms_call *call);
kms_err kms_api_list_access_keys(struct kms_call *call);
kms_err kms_api_update_access_key(struct kms_call *call);
kms_err kms_api_delete_access_key(struct kms_call *call);
kms_err kms_api_generate_random(struct kms_call *call);
/* certificates.c */
kms_err kms_api_create_certificate(struct kms_call *call);
kms_err kms_api_upload_certificate(struct kms_call *call);
kms_err kms_api_import_certificate(struct kms_call *call);
kms_err kms_api_list_certificates(struct kms_call *call);
kms_err kms_api_describe_certificate(struct kms_call *call);
kms_err kms_api_get_certificate(struct kms_call *call);
kms_err kms_api_export_certificate(struct kms_call *call);
kms_err kms_api_update_certificate_status(struct kms_call *call);
kms_err kms_api_delete_certificate(struct kms_call *call);
/* cert_crypto.c */
kms_err kms_api_certificate_private_key_sign(struct kms_call *call);
kms_err kms_api_certificate_public_key_verify(struct kms_call *call);
kms_err kms_api_certificate_public_key_encrypt(struct kms_call *call);
kms_err kms_api_certificate_private_key_decrypt(struct kms_call *call);

/* secrets.c, for kmsadm verify: opens one stored version and wipes the value. The CMK must be
 * usable (Rejected.* otherwise); KMS_E_INTERNAL when the stored data does not open. */
kms_err kms_secret_verify_version(struct kms_call *call, const char *name, const char *version_id);

/* ---- keys.c helpers shared with other groups ---- */

/* KeyMetadata object of k into obj[name]. */
kms_err kms_out_key_metadata(struct kms_call *call, cJSON *obj, const struct kms_key_record *k);

/* ---- tags.c helpers ---- */

/* Whether a tag key (1-128, tag alphabet, no reserved prefix) and value (0-256) are valid. */
bool kms_tag_valid(const char *key, const char *value);
/* Parses a Tags JSON parameter ([{"TagKey","TagValue"}, ...]) with the tag rules. */
kms_err kms_tags_parse(struct kms_call *call, const char *param, const char *json,
                       struct kms_tag **tags, size_t *count);

/* ---- seed.c: kmsd --seed FILE (docs/seeding.md) ---- */

/*
 * Creates what the seed file describes and does not exist yet (keys with fixed ids and optional
 * material, aliases, tags, secrets, admin access keys). The whole file is checked before
 * anything is written; a problem is logged with the file and its JSON location and
 * KMS_E_INVALID_PARAMETER returned. Call after kms_api_init, before serving.
 */
kms_err kms_seed_apply(const struct kms_config *cfg, const char *path);

/* ---- maintenance.c: timed work ---- */

/* Starts the background thread (timed work + replay-cache flush). */
kms_err kms_maintenance_start(const struct kms_config *cfg);
void kms_maintenance_stop(void);
/* Asks the background thread for a pass soon (a key became due, e.g. rotation resumed). */
void kms_maintenance_wake(void);
/* Runs one pass of timed work now on the calling thread (tests, and the thread itself). */
kms_err kms_maintenance_run(time_t now);

#endif
