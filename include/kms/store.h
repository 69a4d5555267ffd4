/*
 * store.h - durable state behind a narrow interface (SQLite today; the same calls could sit on
 * PostgreSQL). Records carry wrapped material only: the store never sees plaintext keys.
 *
 * Each thread uses its own connection (kms_store_thread()). Writes that read-then-modify run
 * inside kms_store_begin()/kms_store_commit(), which takes the write lock up front, so one
 * request costs at most one commit.
 */
#ifndef KMS_STORE_H
#define KMS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/error.h"
#include "kms/keyspec.h"
#include "kms/util.h"

#define KMS_ID_MAX 129 /* longest KeyId / AccessKeyId / name handled, plus NUL */

struct kms_db;

/* ---- db.c: connections, transactions, schema ---- */

/* Opens (creating if needed) the database at path for this process; sets WAL, FULL sync. */
kms_err kms_store_init(const char *path);
/* Applies pending schema migrations; call once at start before serving. */
kms_err kms_store_migrate(void);
/* The schema version this build migrates to (PRAGMA user_version after kms_store_migrate). */
int kms_store_schema_latest(void);
/* The calling thread's connection, opened on first use; NULL only if opening failed. */
struct kms_db *kms_store_thread(void);
/* Closes the calling thread's connection (threads call this before they exit). */
void kms_store_thread_done(void);
/* Closes every connection and checkpoints the WAL (at shutdown, after the workers stopped). */
void kms_store_shutdown(void);

/* BEGIN IMMEDIATE: serialises writers so a read-check-write sequence is atomic. */
kms_err kms_store_begin(struct kms_db *db);
kms_err kms_store_commit(struct kms_db *db);
void kms_store_rollback(struct kms_db *db);

/* Small named values (schema version, hash keys, ...). *len gets the size; NOT_FOUND if absent. */
kms_err kms_store_meta_get(struct kms_db *db, const char *name, struct kms_buf *out);
kms_err kms_store_meta_set(struct kms_db *db, const char *name, const void *value, size_t len);

/* ---- keys.c: keys and their versions ---- */

struct kms_key_record {
    char key_id[KMS_ID_MAX];
    char *description; /* owned */
    enum kms_key_spec spec;
    enum kms_key_usage usage;
    enum kms_origin origin;
    enum kms_protection protection;
    enum kms_key_state state; /* as stored; see kms_key_effective_state() */
    int64_t created_at;
    int64_t delete_at;                  /* 0 unless PendingDeletion */
    int64_t material_expire_at;         /* 0 = never / not applicable */
    char primary_version[KMS_UUID_LEN]; /* "" for asymmetric keys */
    int64_t rotation_interval;          /* seconds; 0 = automatic rotation off */
    int64_t last_rotation_at;
    int64_t next_rotation_at; /* 0 when rotation is off */
    bool deletion_protection;
    char *deletion_protection_desc;   /* owned, "" when none */
    bool internal;                    /* service-managed (secrets' default key): not listed */
    uint8_t material_fingerprint[32]; /* BYOK: keyed hash of the first imported material */
    bool has_fingerprint;
};

struct kms_version_record {
    char version_id[KMS_UUID_LEN];
    char key_id[KMS_ID_MAX];
    int64_t created_at;
    uint8_t *material; /* owned: what the keystore asked the store to keep (wrapped); may be NULL */
    size_t material_len;
    uint8_t *public_der; /* owned: SubjectPublicKeyInfo DER of asymmetric versions; else NULL */
    size_t public_der_len;
};

void kms_key_record_free(struct kms_key_record *k);
void kms_version_record_free(struct kms_version_record *v);

/* Inserts a new key (KMS_E_RESOURCE_EXISTS if the id is taken). */
kms_err kms_store_key_insert(struct kms_db *db, const struct kms_key_record *k);
/* Loads a key by id: KMS_E_KEY_NOT_FOUND if absent. */
kms_err kms_store_key_get(struct kms_db *db, const char *key_id, struct kms_key_record *out);
/* Writes every mutable column of k (description, state, dates, rotation, protection, material). */
kms_err kms_store_key_update(struct kms_db *db, const struct kms_key_record *k);
/* Deletes a key with its versions, aliases and tags. */
kms_err kms_store_key_delete(struct kms_db *db, const char *key_id);
/* Number of keys (internal ones excluded when !with_internal). */
kms_err kms_store_key_count(struct kms_db *db, bool with_internal, int64_t *out);
void kms_store_free_list(char **ids, size_t count);
/* ListKeys filters (spec/actions.md C1.3): AND across filters, OR across one filter's values. */
enum kms_key_filter_kind {
    KMS_KEY_FILTER_STATE,      /* numbers: enum kms_key_state, as kms_key_effective_state sees it */
    KMS_KEY_FILTER_SPEC,       /* numbers: enum kms_key_spec */
    KMS_KEY_FILTER_USAGE,      /* numbers: enum kms_key_usage */
    KMS_KEY_FILTER_PROTECTION, /* numbers: enum kms_protection */
    KMS_KEY_FILTER_ALIAS,      /* texts: an alias bound to the key ("alias/" may be left out) */
    KMS_KEY_FILTER_TAG_KEY,    /* texts: the key has a tag with this key */
    KMS_KEY_FILTER_TAG_VALUE,  /* texts: the key has a tag with this value */
    KMS_KEY_FILTER_ID,         /* texts: the key id */
};

struct kms_key_filter {
    enum kms_key_filter_kind kind;
    const char *const *texts; /* the text kinds */
    const int64_t *numbers;   /* the number kinds */
    size_t count;             /* at least 1 */
};

/* One page of the (not internal) keys that match every filter (none: every key), in creation
 * order, and the number of all matches in *total. now decides which imported material has
 * expired, and which keys are past their DeleteDate: those are gone, as DescribeKey says, even
 * before the maintenance pass removes them. ids: owned array of owned strings. */
kms_err kms_store_key_list_filtered(struct kms_db *db, int64_t now,
                                    const struct kms_key_filter *filters, size_t filter_count,
                                    int64_t offset, int64_t limit, char ***ids, size_t *count,
                                    int64_t *total);
/* Ids of keys whose timed work is due at now: deletion, material expiry, rotation. */
kms_err kms_store_keys_due(struct kms_db *db, int64_t now, char ***ids, size_t *count);

kms_err kms_store_version_insert(struct kms_db *db, const struct kms_version_record *v);
/* KMS_E_KEY_VERSION_NOT_FOUND if absent. */
kms_err kms_store_version_get(struct kms_db *db, const char *version_id,
                              struct kms_version_record *out);
/* Replaces a version's stored material (BYOK import/delete; NULL clears it). */
kms_err kms_store_version_set_material(struct kms_db *db, const char *version_id,
                                       const uint8_t *material, size_t len);
/* A key's version ids in creation order, one page. */
kms_err kms_store_version_list(struct kms_db *db, const char *key_id, int64_t offset, int64_t limit,
                               char ***ids, size_t *count);
/* One page of a key's versions in creation order, without material or public key (ids and
 * creation times only). out: owned array, released with kms_store_free_versions. */
kms_err kms_store_version_list_records(struct kms_db *db, const char *key_id, int64_t offset,
                                       int64_t limit, struct kms_version_record **out,
                                       size_t *count);
void kms_store_free_versions(struct kms_version_record *v, size_t count);
kms_err kms_store_version_count(struct kms_db *db, const char *key_id, int64_t *out);
kms_err kms_store_version_count_all(struct kms_db *db, int64_t *out);
/* Number of keys in each state (index: enum kms_key_state), internal ones excluded (metrics). */
#define KMS_KEY_STATE_COUNT 4
kms_err kms_store_key_count_by_state(struct kms_db *db, int64_t counts[KMS_KEY_STATE_COUNT]);
/* Every key version's id, internal keys included, by key then age (kmsadm verify and rotation). */
kms_err kms_store_version_ids_all(struct kms_db *db, char ***ids, size_t *count);
/* Records the ids of key_id's versions as destroyed (call before kms_store_key_delete). */
kms_err kms_store_versions_mark_destroyed(struct kms_db *db, const char *key_id, int64_t now);
/* Whether version_id belonged to a key that has been destroyed. */
kms_err kms_store_version_destroyed(struct kms_db *db, const char *version_id, bool *destroyed);

/* ---- aliases.c ---- */

struct kms_alias_record {
    char alias_name[KMS_ID_MAX * 2];
    char key_id[KMS_ID_MAX];
};

/* KMS_E_ALIAS_EXISTS if the name is taken. */
kms_err kms_store_alias_insert(struct kms_db *db, const char *alias_name, const char *key_id,
                               int64_t now);
/* KMS_E_ALIAS_NOT_FOUND if absent. */
kms_err kms_store_alias_get(struct kms_db *db, const char *alias_name, char key_id[KMS_ID_MAX]);
kms_err kms_store_alias_update(struct kms_db *db, const char *alias_name, const char *key_id);
kms_err kms_store_alias_delete(struct kms_db *db, const char *alias_name);
/* One page of aliases (all when key_id is NULL), in creation order, without those of keys past
 * their DeleteDate at now (gone, as for ListKeys); out: owned array. */
kms_err kms_store_alias_list(struct kms_db *db, const char *key_id, int64_t now, int64_t offset,
                             int64_t limit, struct kms_alias_record **out, size_t *count,
                             int64_t *total);
kms_err kms_store_alias_count(struct kms_db *db, int64_t *out);

/* ---- tags.c: tags of keys and secrets ---- */

struct kms_tag {
    char *key;   /* owned */
    char *value; /* owned */
};

void kms_tags_free(struct kms_tag *tags, size_t count);
/* Adds or overwrites tags of one resource ("key"/"secret", id). */
kms_err kms_store_tags_put(struct kms_db *db, const char *type, const char *id,
                           const struct kms_tag *tags, size_t count);
kms_err kms_store_tags_remove(struct kms_db *db, const char *type, const char *id,
                              const char *const *keys, size_t count);
/* Removes every tag of one resource (when the resource itself is deleted). */
kms_err kms_store_tags_remove_all(struct kms_db *db, const char *type, const char *id);
/* Tags of one resource, ordered by tag key; out: owned. */
kms_err kms_store_tags_get(struct kms_db *db, const char *type, const char *id,
                           struct kms_tag **out, size_t *count);
kms_err kms_store_tags_count(struct kms_db *db, const char *type, const char *id, int64_t *out);

/* Every tag row of the live resources of one type ("key": not internal, not past DeleteDate;
 * "secret": not past PlannedDeleteTime), ordered by resource id, then tag key. */
struct kms_tag_row {
    char *resource_id; /* owned */
    char *key;         /* owned */
    char *value;       /* owned */
};

kms_err kms_store_tag_rows(struct kms_db *db, const char *type, int64_t now,
                           struct kms_tag_row **out, size_t *count);
void kms_tag_rows_free(struct kms_tag_row *rows, size_t count);

/* ---- secrets.c: secrets, their versions and stage labels ---- */

#define KMS_SECRET_NAME_MAX    192 /* SecretName: ASCII characters */
#define KMS_SECRET_VERSION_MAX 64  /* VersionId and stage labels: ASCII characters */

struct kms_secret_record {
    char name[KMS_SECRET_NAME_MAX + 1];
    char *description; /* owned */
    char key_id[KMS_ID_MAX];
    char secret_type[16];
    int64_t created_at;
    int64_t updated_at;
    int64_t delete_at; /* PlannedDeleteTime; 0 unless deletion is scheduled */
};

/* A version: its value only ever in sealed form (the store never sees a secret value). */
struct kms_secret_version_record {
    char version_id[KMS_SECRET_VERSION_MAX + 1];
    int64_t created_at;
    char data_type[8]; /* "text" / "binary" */
    uint8_t *data_key; /* owned: the version's data key sealed under the CMK */
    size_t data_key_len;
    uint8_t *sealed_value; /* owned: the value sealed under the data key */
    size_t sealed_value_len;
};

/* ListSecrets filters: AND across filters, OR across one filter's values. */
enum kms_secret_filter_kind {
    KMS_SECRET_FILTER_NAME,        /* substring of the name */
    KMS_SECRET_FILTER_DESCRIPTION, /* substring of the description */
    KMS_SECRET_FILTER_TAG_KEY,     /* has a tag with this key */
    KMS_SECRET_FILTER_TAG_VALUE,   /* has a tag with this value */
    KMS_SECRET_FILTER_TYPE,        /* SecretType equals */
};

struct kms_secret_filter {
    enum kms_secret_filter_kind kind;
    const char *const *values;
    size_t count;
};

void kms_secret_record_free(struct kms_secret_record *s);
void kms_secret_records_free(struct kms_secret_record *list, size_t count);
void kms_secret_version_record_free(struct kms_secret_version_record *v);
void kms_secret_version_records_free(struct kms_secret_version_record *list, size_t count);

/* KMS_E_RESOURCE_EXISTS if the name is taken. */
kms_err kms_store_secret_insert(struct kms_db *db, const struct kms_secret_record *s);
/* KMS_E_RESOURCE_NOT_FOUND if absent (whatever its delete time: callers judge). */
kms_err kms_store_secret_get(struct kms_db *db, const char *name, struct kms_secret_record *out);
/* Writes description, updated_at and delete_at. */
kms_err kms_store_secret_update(struct kms_db *db, const struct kms_secret_record *s);
/* Deletes a secret with its versions, stage labels and tags. */
kms_err kms_store_secret_delete(struct kms_db *db, const char *name);
/* Secrets not past their PlannedDeleteTime at now. */
kms_err kms_store_secret_count(struct kms_db *db, int64_t now, int64_t *out);
/* One page of the secrets not past their PlannedDeleteTime that match every filter, in creation
 * order; *total counts all matches. out: owned array. */
kms_err kms_store_secret_list(struct kms_db *db, int64_t now,
                              const struct kms_secret_filter *filters, size_t filter_count,
                              int64_t offset, int64_t limit, struct kms_secret_record **out,
                              size_t *count, int64_t *total);
/* Names of secrets whose PlannedDeleteTime has come. */
kms_err kms_store_secrets_due(struct kms_db *db, int64_t now, char ***names, size_t *count);

/* KMS_E_RESOURCE_EXISTS if the version id is taken in that secret. */
kms_err kms_store_secret_version_insert(struct kms_db *db, const char *name,
                                        const struct kms_secret_version_record *v);
/* KMS_E_RESOURCE_NOT_FOUND if absent. */
kms_err kms_store_secret_version_get(struct kms_db *db, const char *name, const char *version_id,
                                     struct kms_secret_version_record *out);
/* One page of a secret's versions in creation order (without their sealed data); deprecated
 * versions (no stage label) only when include_deprecated. out: owned array. */
kms_err kms_store_secret_version_list(struct kms_db *db, const char *name, bool include_deprecated,
                                      int64_t offset, int64_t limit,
                                      struct kms_secret_version_record **out, size_t *count,
                                      int64_t *total);
/* Deletes the oldest versions without a stage label until at most keep remain (or none without a
 * label is left); *remaining gets the number of versions afterwards. */
kms_err kms_store_secret_versions_prune(struct kms_db *db, const char *name, int64_t keep,
                                        int64_t *remaining);
/* The version holding a stage label: KMS_E_RESOURCE_NOT_FOUND if no version has it. */
kms_err kms_store_secret_stage_get(struct kms_db *db, const char *name, const char *stage,
                                   char version_id[KMS_SECRET_VERSION_MAX + 1]);
/* Puts a stage label on a version, taking it from whichever version had it. */
kms_err kms_store_secret_stage_set(struct kms_db *db, const char *name, const char *stage,
                                   const char *version_id);
kms_err kms_store_secret_stage_remove(struct kms_db *db, const char *name, const char *stage);
/* A version's stage labels, sorted; stages: owned array of owned strings. */
kms_err kms_store_secret_stages(struct kms_db *db, const char *name, const char *version_id,
                                char ***stages, size_t *count);

/* ---- certificates.c: the certificate manager (spec/actions.md H) ---- */

/* Stored as integers: never renumber. */
enum kms_cert_status {
    KMS_CERT_PENDING = 0, /* key pair and CSR made, no certificate yet */
    KMS_CERT_ACTIVE = 1,
    KMS_CERT_INACTIVE = 2,
    KMS_CERT_REVOKED = 3, /* terminal */
};

struct kms_cert_record {
    char certificate_id[KMS_UUID_LEN];
    char *subject; /* owned, RFC 2253 */
    char *sans;    /* owned, JSON array of DNS names */
    enum kms_key_spec spec;
    enum kms_protection protection;
    bool exportable;
    enum kms_cert_status status;
    char *csr;         /* owned, PEM or "" (imported) */
    char *certificate; /* owned, PEM or "" (PENDING) */
    char *chain;       /* owned, PEM or "" */
    char *issuer;      /* owned; "" while PENDING, like serial, sig. algorithm and SKI */
    char *serial;
    char *signature_algorithm;
    char *ski;
    int64_t not_before; /* 0 while PENDING */
    int64_t not_after;
    uint8_t *public_der; /* owned: SubjectPublicKeyInfo */
    size_t public_der_len;
    uint8_t *private_wrapped; /* owned: the wrapped private key; NULL when a token holds it */
    size_t private_wrapped_len;
    int64_t created_at;
    int64_t updated_at;
};

/* ListCertificates filters; NULL / negative = any. */
struct kms_cert_filter {
    const char *subject;
    const char *issuer;
    int status; /* an enum kms_cert_status, or -1 */
};

void kms_cert_record_free(struct kms_cert_record *c);
void kms_cert_records_free(struct kms_cert_record *list, size_t count);
/* KMS_E_RESOURCE_EXISTS if the id is taken. */
kms_err kms_store_cert_insert(struct kms_db *db, const struct kms_cert_record *c);
/* KMS_E_CERTIFICATE_NOT_FOUND if absent. */
kms_err kms_store_cert_get(struct kms_db *db, const char *id, struct kms_cert_record *out);
/* Writes the certificate part (subject, sans, certificate ... ski), status and updated_at. */
kms_err kms_store_cert_update(struct kms_db *db, const struct kms_cert_record *c);
/* Deletes a certificate with its tags (KMS_E_CERTIFICATE_NOT_FOUND if absent). */
kms_err kms_store_cert_delete(struct kms_db *db, const char *id);
kms_err kms_store_cert_count(struct kms_db *db, int64_t *out);
/* One page of the certificates matching filter, in creation order; *total counts all matches.
 * The records carry the list's columns only: id, subject, issuer, status, spec, protection,
 * validity and times (the texts not listed are NULL). out: owned array. */
kms_err kms_store_cert_list(struct kms_db *db, const struct kms_cert_filter *filter, int64_t offset,
                            int64_t limit, struct kms_cert_record **out, size_t *count,
                            int64_t *total);

/* ---- access_keys.c ---- */

struct kms_access_key_record {
    char access_key_id[KMS_ID_MAX];
    uint8_t *secret_wrapped; /* owned: the secret sealed by the keystore's master key */
    size_t secret_wrapped_len;
    bool admin;
    char aap_name[KMS_ID_MAX]; /* "" for admin keys */
    char *description;         /* owned */
    bool enabled;
    int64_t created_at;
};

void kms_access_key_record_free(struct kms_access_key_record *a);
kms_err kms_store_access_key_insert(struct kms_db *db, const struct kms_access_key_record *a);
/* KMS_E_ACCESS_KEY_NOT_FOUND if absent. */
kms_err kms_store_access_key_get(struct kms_db *db, const char *id,
                                 struct kms_access_key_record *out);
kms_err kms_store_access_key_count(struct kms_db *db, bool admin_only, int64_t *out);
kms_err kms_store_access_key_set_enabled(struct kms_db *db, const char *id, bool enabled);
kms_err kms_store_access_key_delete(struct kms_db *db, const char *id);
/* Every access key's id, admin and access-point keys, oldest first (kmsadm). */
kms_err kms_store_access_keys_all(struct kms_db *db, char ***ids, size_t *count);
/* Replaces a key's sealed secret (kmsadm rotate-master-key re-seals it under the new key). */
kms_err kms_store_access_key_set_secret(struct kms_db *db, const char *id, const uint8_t *wrapped,
                                        size_t len);

/* Access keys of application access points (never admin keys), one page in creation order, ties
 * by id, of one AAP (aap_name) or of all (NULL); secret_wrapped stays NULL. out: owned array,
 * released with kms_store_free_access_keys. */
kms_err kms_store_access_key_list(struct kms_db *db, const char *aap_name, int64_t offset,
                                  int64_t limit, struct kms_access_key_record **out, size_t *count,
                                  int64_t *total);
void kms_store_free_access_keys(struct kms_access_key_record *a, size_t count);
/* Number of access keys of one AAP. */
kms_err kms_store_access_key_count_aap(struct kms_db *db, const char *aap_name, int64_t *out);

/* ---- access.c: network rules, policies, application access points, client keys ---- */

/* Names of access objects: 1-64 characters (spec/actions.md I). */
#define KMS_ACCESS_NAME_MAX 64

struct kms_network_rule_record {
    char name[KMS_ID_MAX];
    char rule_type[16]; /* "Private" */
    char *source_ips;   /* owned: JSON array text, e.g. ["10.0.0.0/8"] */
    char *description;  /* owned */
    int64_t created_at;
};

struct kms_policy_record {
    char name[KMS_ID_MAX];
    char *permissions;  /* owned: JSON array text of templates */
    char *resources;    /* owned: JSON array text of patterns */
    char *kms_instance; /* owned */
    char *description;  /* owned */
    char **rules;       /* owned: network rule names, in the order given */
    size_t rule_count;
    int64_t created_at;
};

struct kms_aap_record {
    char name[KMS_ID_MAX];
    char auth_method[16]; /* "ClientKey" or "AccessKey" */
    char *description;    /* owned */
    char **policies;      /* owned: policy names, in the order given */
    size_t policy_count;
    int64_t created_at;
};
/* AuthenticationMethod values of an application access point. */
#define KMS_AAP_CLIENT_KEY "ClientKey"
#define KMS_AAP_ACCESS_KEY "AccessKey"

struct kms_client_key_record {
    char client_key_id[KMS_ID_MAX];
    char aap_name[KMS_ID_MAX];
    char key_algorithm[16];
    int64_t not_before;
    int64_t not_after;
    char *public_cert; /* owned: PEM certificate */
    int64_t created_at;
};

void kms_network_rule_record_free(struct kms_network_rule_record *r);
void kms_policy_record_free(struct kms_policy_record *p);
void kms_aap_record_free(struct kms_aap_record *a);
void kms_client_key_record_free(struct kms_client_key_record *c);
/* Frees an array of count records of each kind (from the list functions). */
void kms_store_free_network_rules(struct kms_network_rule_record *r, size_t count);
void kms_store_free_aaps(struct kms_aap_record *a, size_t count);
void kms_store_free_client_keys(struct kms_client_key_record *c, size_t count);

/* Inserts fail with KMS_E_RESOURCE_EXISTS when the name is taken; get, update and delete with
 * KMS_E_RESOURCE_NOT_FOUND when it is unknown; delete with KMS_E_RESOURCE_IN_USE while another
 * object refers to it. Names an object links to must exist (callers check, inside the
 * transaction, with the _exists functions). */
kms_err kms_store_network_rule_insert(struct kms_db *db, const struct kms_network_rule_record *r);
kms_err kms_store_network_rule_get(struct kms_db *db, const char *name,
                                   struct kms_network_rule_record *out);
kms_err kms_store_network_rule_exists(struct kms_db *db, const char *name);
/* Writes source_ips and description of r. */
kms_err kms_store_network_rule_update(struct kms_db *db, const struct kms_network_rule_record *r);
kms_err kms_store_network_rule_delete(struct kms_db *db, const char *name);
/* One page (name and type only), creation order. out: owned array. */
kms_err kms_store_network_rule_list(struct kms_db *db, int64_t offset, int64_t limit,
                                    struct kms_network_rule_record **out, size_t *count,
                                    int64_t *total);

kms_err kms_store_policy_insert(struct kms_db *db, const struct kms_policy_record *p);
kms_err kms_store_policy_get(struct kms_db *db, const char *name, struct kms_policy_record *out);
kms_err kms_store_policy_exists(struct kms_db *db, const char *name);
/* Writes every mutable column of p and replaces its network rule links. */
kms_err kms_store_policy_update(struct kms_db *db, const struct kms_policy_record *p);
kms_err kms_store_policy_delete(struct kms_db *db, const char *name);
/* One page of policy names, creation order. names: owned array of owned strings. */
kms_err kms_store_policy_list(struct kms_db *db, int64_t offset, int64_t limit, char ***names,
                              size_t *count, int64_t *total);

kms_err kms_store_aap_insert(struct kms_db *db, const struct kms_aap_record *a);
kms_err kms_store_aap_get(struct kms_db *db, const char *name, struct kms_aap_record *out);
/* Writes description and replaces the policy links. */
kms_err kms_store_aap_update(struct kms_db *db, const struct kms_aap_record *a);
/* KMS_E_RESOURCE_IN_USE while the AAP has client keys or access keys. */
kms_err kms_store_aap_delete(struct kms_db *db, const char *name);
/* One page (name and auth_method only), creation order. out: owned array. */
kms_err kms_store_aap_list(struct kms_db *db, int64_t offset, int64_t limit,
                           struct kms_aap_record **out, size_t *count, int64_t *total);

/*
 * What authorization needs about one AAP, read in one statement (one consistent snapshot): fn
 * is called once per (policy, network rule) pair of the AAP's policies, in order, with rule and
 * source_ips NULL for a policy that names no network rule. An unknown AAP calls fn never.
 */
typedef void (*kms_store_grant_fn)(const char *policy, const char *permissions,
                                   const char *resources, const char *rule, const char *source_ips,
                                   void *arg);
kms_err kms_store_aap_grants(struct kms_db *db, const char *aap_name, kms_store_grant_fn fn,
                             void *arg);

kms_err kms_store_client_key_insert(struct kms_db *db, const struct kms_client_key_record *c);
kms_err kms_store_client_key_get(struct kms_db *db, const char *id,
                                 struct kms_client_key_record *out);
kms_err kms_store_client_key_delete(struct kms_db *db, const char *id);
/* Client keys of one AAP (aap_name) or of all (NULL), creation order. out: owned array. */
kms_err kms_store_client_key_list(struct kms_db *db, const char *aap_name,
                                  struct kms_client_key_record **out, size_t *count);

/* ---- nonces.c: the replay cache's durable copy ---- */

/* Inserts (or keeps) entries {hash, expires_at}. */
kms_err kms_store_nonces_put(struct kms_db *db, const uint64_t *hashes, const int64_t *expires,
                             size_t count);
/* Calls fn for every entry not expired at now. */
kms_err kms_store_nonces_load(struct kms_db *db, int64_t now,
                              void (*fn)(uint64_t hash, int64_t expires_at, void *arg), void *arg);
kms_err kms_store_nonces_purge(struct kms_db *db, int64_t now);

#endif
