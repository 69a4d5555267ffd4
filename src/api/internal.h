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

/* access.c: what the access-control files share (spec/actions.md I). */
#define KMS_AAP_CLIENT_KEY "ClientKey" /* AuthenticationMethod values */
#define KMS_AAP_ACCESS_KEY "AccessKey"
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

/* dispatch.c: the action table, sorted by name. */
const struct kms_action *kms_action_find(const char *name);
/* The i-th row of the action table (test hooks excluded), NULL past the end: for tests. */
const struct kms_action *kms_action_at(size_t i);

#endif
