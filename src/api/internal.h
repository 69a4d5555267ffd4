/*
 * internal.h - what the files of src/api/ share and nothing else should see.
 */
#ifndef KMS_API_INTERNAL_H
#define KMS_API_INTERNAL_H

#include "kms/api.h"

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

/* dispatch.c: the action table, sorted by name. */
const struct kms_action *kms_action_find(const char *name);

#endif
