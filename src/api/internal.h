/*
 * internal.h - what the files of src/api/ share and nothing else should see.
 */
#ifndef KMS_API_INTERNAL_H
#define KMS_API_INTERNAL_H

#include <time.h>

#include "kms/api.h"
#include "kms/crypto.h"

/* keyref.c: the key and version caches. */
kms_err kms_keyref_init(size_t capacity);
void kms_keyref_shutdown(void);

/* keys.c: making a version's material (before the write transaction: key generation can be
 * slow), and undoing it in a token when the store did not take the version. */
kms_err kms_key_prepare_version(struct kms_call *call, const struct kms_key_record *key,
                                struct kms_version_record *out);
void kms_key_discard_version(const struct kms_key_record *key, const struct kms_version_record *v);

/*
 * secrets.c: the secret named by parameter param (a name or a secret ARN). Unknown, or past its
 * PlannedDeleteTime -> Forbidden.ResourceNotFound; scheduled for deletion ->
 * Rejected.ResourceInDeleteWindow unless allow_pending. *out is freed with kms_secret_record_free.
 */
kms_err kms_secret_resolve(struct kms_call *call, const char *param, bool allow_pending,
                           struct kms_secret_record *out);
/* secrets.c: deletes the secrets whose recovery window has ended (the maintenance pass). */
kms_err kms_secrets_sweep(struct kms_call *call);
/* asymmetric.c: the key version an asymmetric operation runs on, shared with ReEncrypt. */
struct kms_asym_target {
    struct kms_key *at_key;
    struct kms_version *at_version;
    enum kms_sign_alg at_sign_alg; /* when usage is SIGN/VERIFY */
    enum kms_pk_alg at_pk_alg;     /* when usage is ENCRYPT/DECRYPT */
};

/*
 * Resolves an asymmetric operation's key (key_param, alias allowed) and version
 * (version_param), and parses its algorithm (alg_param; NULL for none), in the order of
 * spec/key-states.md §4: parameters (MissingParameter, InvalidParameter), key
 * (KeyNotFound/AliasNotFound), Unsupported.KeySpec (symmetric) / Unsupported.KeyUsage (other
 * usage than usage; KMS_USAGE_NONE accepts both) / Unsupported.Algorithm (not for this spec),
 * state (Rejected.*), version (KeyVersionNotFound). Release with kms_asym_target_put.
 */
kms_err kms_asym_resolve(struct kms_call *call, const char *key_param, const char *version_param,
                         const char *alg_param, enum kms_key_usage usage,
                         struct kms_asym_target *out);
void kms_asym_target_put(struct kms_asym_target *t);
/* Private-key decryption with the target; a ciphertext that does not open -> InvalidParameter
 * naming param. Appends to pt (the caller wipes it). */
kms_err kms_asym_decrypt(struct kms_call *call, const struct kms_asym_target *t, const char *param,
                         const uint8_t *ct, size_t ct_len, struct kms_buf *pt);
/* access.c: what the access-control files share (spec/actions.md I). */
/* Names of access objects: 1-64 of A-Z a-z 0-9 _ - . */
bool kms_access_name_valid(const char *name);
/* Parameter param, required, a valid name (MissingParameter / InvalidParameter). */
kms_err kms_access_name_arg(struct kms_call *call, const char *param, const char **out);
/* Optional Description, 0-1024 characters; *out NULL when absent. */
kms_err kms_access_description_arg(struct kms_call *call, const char **out);
/* obj["Arn"] = acs:kms:<region>:<account>:<type>/<name>. */
kms_err kms_access_arn(struct kms_call *call, cJSON *obj, const char *type, const char *name);
/* After a committed change to access objects: authorization recompiles from the store. */
void kms_access_changed(void);

/* service.c: Forbidden.KmsServiceNotEnabled while the account is not opened ([server] auto_open =
 * false and no OpenKmsService yet), except for the actions that find out about and open it. */
kms_err kms_service_check_opened(struct kms_call *call);
/* instances.c: a DKMSInstanceId-like parameter, when present, must be the server's instance id
 * (InvalidParameter otherwise). */
kms_err kms_check_instance_id(struct kms_call *call, const char *param);

/* certificates.c: what the certificate actions share (cert_crypto.c, tags.c). */
struct kms_ks_key;
struct kms_ks_ref;
/* What a certificate is being used for, for its status rules (spec/actions.md H). */
enum kms_cert_use {
    KMS_CERT_USE_PRIVATE, /* sign, decrypt, encrypt, export, upload */
    KMS_CERT_USE_VERIFY,  /* verify: a revoked certificate still verifies */
};
/* PENDING, ACTIVE, INACTIVE, REVOKED. */
const char *kms_cert_status_name(enum kms_cert_status status);
/*
 * The certificate named by parameter param (a CertificateId or certificate ARN):
 * MissingParameter, Certificate.NotFound. *out is freed with kms_cert_record_free.
 */
kms_err kms_cert_resolve(struct kms_call *call, const char *param, struct kms_cert_record *out);
/* ACTIVE, else Rejected.PendingImport / Rejected.Disabled / Rejected.Revoked (verify: allowed). */
kms_err kms_cert_check_status(const struct kms_cert_record *c, enum kms_cert_use use);
/*
 * cert_keys.c: one half of a certificate's key pair, from its cache or made (and then cached):
 * the public key parsed from the certificate's record, or the private key loaded from its
 * keystore. Release with kms_cert_key_put. DeleteCertificate calls kms_cert_key_invalidate.
 */
enum kms_cert_half {
    KMS_CERT_PUBLIC,
    KMS_CERT_PRIVATE,
};
struct kms_cert_key {
    _Atomic int ck_refs;
    struct evp_pkey_st *ck_public; /* KMS_CERT_PUBLIC */
    struct kms_ks_key *ck_private; /* KMS_CERT_PRIVATE */
};
kms_err kms_cert_keys_init(size_t capacity);
void kms_cert_keys_shutdown(void);
kms_err kms_cert_key_get(const struct kms_cert_record *c, enum kms_cert_half half,
                         struct kms_cert_key **out);
void kms_cert_key_put(struct kms_cert_key *k);
void kms_cert_key_invalidate(const char *certificate_id);
/* The keystore reference of a certificate's key pair ("certificate/<id>", <id>). */
void kms_cert_ks_ref(const char *id, enum kms_key_spec spec, char key_ref[KMS_ID_MAX],
                     struct kms_ks_ref *ref);

/* dispatch.c: the action table, sorted by name. */
const struct kms_action *kms_action_find(const char *name);
/* The i-th row of the action table (test hooks excluded), NULL past the end: for tests. */
const struct kms_action *kms_action_at(size_t i);
/* dispatch.c: an action's position in the table (its metrics slot); -1 when it is not there. */
int kms_action_slot(const char *name);

/* observe.c: what every request leaves behind, its audit record and its metrics. */
struct kms_api_timing {
    struct timespec at_real; /* arrival, wall clock: the audit record's time */
    struct timespec at_mono; /* arrival, monotonic: the latency */
};
void kms_api_observe_begin(struct kms_api_timing *t);
void kms_api_observe_end(const struct kms_call *call, kms_err rc, const struct kms_response *resp,
                         const struct kms_api_timing *t);

#endif
