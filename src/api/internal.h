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

/* dispatch.c: the action table, sorted by name. */
const struct kms_action *kms_action_find(const char *name);

#endif
