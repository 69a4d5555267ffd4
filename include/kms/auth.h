/*
 * auth.h - request authentication: RFC 3986 percent-encoding and the canonical query (canonical.c),
 * signature V1 / HMAC-SHA1 (sig_v1.c), signature V3 / ACS3-HMAC-SHA256 (sig_v3.c) and the replay
 * cache for SignatureNonce / x-acs-signature-nonce (nonce.c). See spec/protocol.md §4-§7 and §9.
 *
 * These functions compute and check; they never look up access keys, read the clock or decide the
 * order of checks: src/api/dispatch.c does that, comparing signatures with kms_ct_equal().
 */
#ifndef KMS_AUTH_H
#define KMS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/error.h"
#include "kms/http.h"
#include "kms/store.h"
#include "kms/util.h"

/* ---- canonical.c: percent-encoding, canonical query, the digests both versions use ---- */

/*
 * Appends percentEncode(s) to out (spec §4): the RFC 3986 unreserved bytes A-Z a-z 0-9 - _ . ~
 * are copied, every other byte becomes %XY with upper-case hex (space -> %20, never "+").
 */
kms_err kms_percent_encode(struct kms_buf *out, const char *s, size_t len);

/*
 * Appends the canonical query of the finished (sorted) parameter map p to out: every parameter
 * whose source is in the mask sources (KMS_PARAM_QUERY | KMS_PARAM_BODY), except one called
 * exclude (NULL: none), as percentEncode(name) "=" percentEncode(value), joined by "&". Nothing
 * is appended when no parameter qualifies. V1 passes both sources and exclude "Signature"; V3
 * passes KMS_PARAM_QUERY only (the body is covered by x-acs-content-sha256 instead).
 */
kms_err kms_sig_canonical_query(struct kms_buf *out, const struct kms_params *p, unsigned sources,
                                const char *exclude);

/*
 * The same canonical query, percent-encoded once more ("=" -> %3D, "&" -> %26, "%" -> %25), as
 * V1's StringToSign embeds it; written in one pass, without building the inner string first.
 */
kms_err kms_sig_canonical_query_encoded(struct kms_buf *out, const struct kms_params *p,
                                        unsigned sources, const char *exclude);

enum kms_sig_hash {
    KMS_SIG_SHA1 = 0,
    KMS_SIG_SHA256 = 1,
    KMS_SIG_SM3 = 2,
};
#define KMS_SIG_DIGEST_MAX 32 /* bytes of the longest digest above */

/* False when the OpenSSL in use lacks the hash (SM3 can be compiled out). */
bool kms_sig_hash_available(enum kms_sig_hash h);

/* out gets the digest of data (*out_len bytes); KMS_E_INTERNAL if OpenSSL fails. */
kms_err kms_sig_digest(enum kms_sig_hash h, const void *data, size_t len,
                       uint8_t out[KMS_SIG_DIGEST_MAX], size_t *out_len);

/* out gets HMAC-h(key, data) (*out_len bytes); KMS_E_INTERNAL if OpenSSL fails. */
kms_err kms_sig_hmac(enum kms_sig_hash h, const void *key, size_t key_len, const void *data,
                     size_t len, uint8_t out[KMS_SIG_DIGEST_MAX], size_t *out_len);

/* ---- sig_v1.c: signature version 1.0, HMAC-SHA1 (spec §5) ---- */

#define KMS_SIG_V1_LEN 28 /* Base64 of a 20-byte HMAC-SHA1, padded */

/*
 * Replaces out's contents with the V1 StringToSign:
 *   upper(method) "&%2F&" percentEncode(canonical query of every parameter except Signature)
 * where the canonical query merges query and body parameters. p must be finished.
 */
kms_err kms_sig_v1_string_to_sign(struct kms_buf *out, const char *method,
                                  const struct kms_params *p);

/* out gets Base64(HMAC-SHA1(secret "&", sts)), NUL-terminated. */
kms_err kms_sig_v1_sign(const char *secret, size_t secret_len, const char *sts, size_t sts_len,
                        char out[KMS_SIG_V1_LEN + 1]);

/* ---- sig_v3.c: signature V3, ACS3-HMAC-SHA256 and ACS3-HMAC-SM3 (spec §7) ---- */

enum kms_sig_v3_alg {
    KMS_SIG_V3_HMAC_SHA256 = 1, /* ACS3-HMAC-SHA256: what every V2.0 SDK sends by default */
    KMS_SIG_V3_HMAC_SM3 = 2,    /* ACS3-HMAC-SM3: the same steps with SM3 */
};

#define KMS_SIG_V3_CREDENTIAL_MAX     255  /* bytes of Credential= (an AccessKeyId) */
#define KMS_SIG_V3_SIGNED_HEADERS_MAX 1023 /* bytes of the SignedHeaders= list */
#define KMS_SIG_V3_HEADER_COUNT_MAX   48   /* names in the SignedHeaders= list */
#define KMS_SIG_V3_HEX_LEN            64   /* lower-case hex of a 32-byte HMAC */

/* A parsed Authorization header; self-contained (copies, no pointers into the request). */
struct kms_sig_v3_auth {
    enum kms_sig_v3_alg alg;
    char credential[KMS_SIG_V3_CREDENTIAL_MAX + 1];         /* the AccessKeyId */
    char signed_headers[KMS_SIG_V3_SIGNED_HEADERS_MAX + 1]; /* "a;b;c" as received */
    size_t signed_headers_len;
    uint16_t header_off[KMS_SIG_V3_HEADER_COUNT_MAX]; /* each name inside signed_headers */
    uint16_t header_len[KMS_SIG_V3_HEADER_COUNT_MAX];
    size_t header_count;
    char signature[KMS_SIG_V3_HEX_LEN + 1]; /* lower-cased */
};

/* True when authorization (may be NULL) asks for a V3 signature: it starts with "ACS3-". */
bool kms_sig_v3_is_v3(const char *authorization);

/* "ACS3-HMAC-SHA256" or "ACS3-HMAC-SM3". */
const char *kms_sig_v3_alg_name(enum kms_sig_v3_alg alg);

/*
 * Parses "ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<a;b;c>,Signature=<64 hex>" (the three
 * fields in any order, each once, optional spaces around them). An unsupported algorithm, a
 * missing, repeated, unknown or empty field, a header name that is not lower-case, a repeated
 * name, or a Signature that is not 64 hex digits -> KMS_E_INCOMPLETE_SIGNATURE.
 */
kms_err kms_sig_v3_parse(const char *authorization, struct kms_sig_v3_auth *out);

/*
 * The checks that need the request, before any HMAC:
 *  - every name in SignedHeaders is a header of the request, and SignedHeaders covers host,
 *    x-acs-action, x-acs-version, x-acs-date, the content hash header (x-acs-content-sha256, or
 *    for SM3 x-acs-content-sm3 when sent) and, when sent, x-acs-signature-nonce and
 *    x-acs-security-token -> else KMS_E_INCOMPLETE_SIGNATURE;
 *  - the content hash header equals hex(hash(raw body)) -> else KMS_E_SIGNATURE_MISMATCH.
 */
kms_err kms_sig_v3_check(const struct kms_request *req, const struct kms_sig_v3_auth *auth);

/*
 * Replaces sts's contents with the V3 StringToSign, alg "\n" hex(hash(CanonicalRequest)), where
 * CanonicalRequest = upper(method) \n path \n canonical query (query-string parameters of the
 * finished map p only) \n canonical headers \n SignedHeaders \n content hash header value.
 * canonical, when not NULL, gets the CanonicalRequest (for tests and debugging). A signed header
 * missing from the request -> KMS_E_INCOMPLETE_SIGNATURE (kms_sig_v3_check catches it first).
 */
kms_err kms_sig_v3_string_to_sign(struct kms_buf *sts, struct kms_buf *canonical,
                                  const struct kms_request *req, const struct kms_params *p,
                                  const struct kms_sig_v3_auth *auth);

/* out gets lower-case hex(HMAC(secret, sts)) with alg's hash (the secret as is, no "&"). */
kms_err kms_sig_v3_sign(enum kms_sig_v3_alg alg, const char *secret, size_t secret_len,
                        const char *sts, size_t sts_len, char out[KMS_SIG_V3_HEX_LEN + 1]);

/* ---- nonce.c: the replay cache (DESIGN.md "Replay cache", spec §9.2) ---- */

/*
 * A fixed-size, sharded table of (keyed 64-bit hash of AccessKeyId 0x00 nonce, expiry) entries,
 * allocated once. Thread-safe. Entries whose expiry has passed free their slot. When no slot is
 * free the cache fails closed: it never forgets an unexpired nonce to make room.
 */
struct kms_nonce_cache;

/* One remembered nonce, as flushed to and reloaded from the store. */
struct kms_nonce_entry {
    uint64_t hash;      /* kms_nonce_key_hash() under the cache's hash key */
    int64_t expires_at; /* Unix seconds; the entry is forgotten once now >= expires_at */
};

/*
 * Creates a cache that holds at least capacity unexpired entries (it reserves about 24 bytes
 * per entry of capacity, resident as it fills). hash_key keys the SipHash; persist it with the
 * entries, or reloaded hashes will not match. *out is freed with kms_nonce_cache_free().
 */
kms_err kms_nonce_cache_create(size_t capacity, const uint8_t hash_key[16],
                               struct kms_nonce_cache **out);

/*
 * Records (access_key_id, nonce) until expires_at. KMS_OK: recorded (first use);
 * KMS_E_NONCE_USED: seen before and not yet expired at now; KMS_E_UNAVAILABLE: no room (fail
 * closed). With expires_at <= now nothing is recorded, but a live earlier use is still reported.
 */
kms_err kms_nonce_check_and_record(struct kms_nonce_cache *c, const char *access_key_id,
                                   const char *nonce, size_t nonce_len, int64_t now,
                                   int64_t expires_at);

/*
 * Copies up to max entries recorded since the last drain into out and forgets them from the
 * pending list; returns how many. For the background flush to the store (batched writes).
 */
size_t kms_nonce_drain(struct kms_nonce_cache *c, struct kms_nonce_entry *out, size_t max);

/* Entries that could not be queued for drain because the pending list was full (total so far). */
uint64_t kms_nonce_drain_dropped(struct kms_nonce_cache *c);

/*
 * Re-inserts persisted entries at start, skipping expired ones and ones already present; they are
 * not queued for drain again. KMS_E_UNAVAILABLE when they do not fit.
 */
kms_err kms_nonce_load(struct kms_nonce_cache *c, const struct kms_nonce_entry *e, size_t n,
                       int64_t now);

void kms_nonce_cache_free(struct kms_nonce_cache *c);

/* Entries not expired at now (a full scan, shard by shard: for metrics scrapes, not requests). */
size_t kms_nonce_cache_live(struct kms_nonce_cache *c, int64_t now);

/* SipHash-2-4 of data under key (the reference algorithm; exported for tests). */
uint64_t kms_nonce_siphash(const uint8_t key[16], const void *data, size_t len);

/* The cache's key: SipHash-2-4(key, access_key_id 0x00 nonce). */
uint64_t kms_nonce_key_hash(const uint8_t key[16], const char *access_key_id, const char *nonce,
                            size_t nonce_len);

/* ---- credentials.c: access keys and their secrets ---- */

/* An access key ready for signature checks; shared, released with kms_credential_put. */
struct kms_credential {
    _Atomic int cr_refs;
    char cr_id[KMS_ID_MAX];
    char cr_secret[KMS_ID_MAX]; /* plaintext, wiped when the last reference goes */
    size_t cr_secret_len;
    bool cr_admin;
    bool cr_enabled;
    char cr_aap_name[KMS_ID_MAX];
};

kms_err kms_credentials_init(void);
void kms_credentials_shutdown(void);
/* KMS_E_ACCESS_KEY_NOT_FOUND when id is unknown. Cached; the secret is unsealed once. */
kms_err kms_credentials_lookup(struct kms_db *db, const char *id, struct kms_credential **out);
void kms_credential_put(struct kms_credential *c);
/* Drops a cached credential after its row changed (disabled, deleted). */
void kms_credentials_invalidate(const char *id);
/* Stores a new access key with its secret sealed by the master key (inside a transaction). */
kms_err kms_credentials_create(struct kms_db *db, const char *id, const char *secret, bool admin,
                               const char *aap_name, const char *description, int64_t now);
/*
 * Stores an access key of the application access point aap_name (spec/actions.md I5) inside the
 * caller's transaction: the AAP must exist (Forbidden.ResourceNotFound) and authenticate with
 * access keys (InvalidParameter), and hold fewer than max_per_aap of them (LimitExceeded).
 */
kms_err kms_credentials_create_for_aap(struct kms_db *db, const char *aap_name, int max_per_aap,
                                       const char *id, const char *secret, const char *description,
                                       int64_t now);
/*
 * First start: makes the admin access key from KMSD_ADMIN_ACCESS_KEY_ID/SECRET, or a random
 * one whose secret is shown once on the terminal. Later starts only warn about a mismatch.
 */
kms_err kms_credentials_bootstrap(struct kms_db *db, int64_t now);
/* The AAD an access key's secret is sealed with (kmsadm verify and rotate-master-key). */
kms_err kms_credential_aad(const char *id, struct kms_buf *aad);
/* n random characters from [A-Za-z0-9] into out (n+1 bytes). */
kms_err kms_random_alnum(char *out, size_t n);

/* ---- policy.c: authorization (spec/actions.md I0) ---- */

struct kms_call;

/* Permission templates (I0.2), as the bits of what a policy grants. */
#define KMS_TPL_KEY_USER     0x01u /* CryptoServiceKeyUser */
#define KMS_TPL_SECRET_USER  0x02u /* CryptoServiceSecretUser */
#define KMS_TPL_KEY_ADMIN    0x04u /* KeyAdministrator */
#define KMS_TPL_SECRET_ADMIN 0x08u /* SecretAdministrator */
#define KMS_TPL_ACCESS_ADMIN 0x10u /* AccessAdministrator */
/* In a rule row only: the template follows the type of the resource named (the tag actions). */
#define KMS_TPL_BY_TYPE 0x80u

#define KMS_TEMPLATE_PREFIX "RbacPermission/Template/"

/* "RbacPermission/Template/<Name>" -> its KMS_TPL_* bit; 0 for any other text. */
unsigned kms_policy_template(const char *s);

/* The kinds of resource patterns can name. KMS_RES_ACCESS (access objects, the instance) has no
 * pattern of its own: only "*" matches it. */
enum kms_res_type {
    KMS_RES_KEY,
    KMS_RES_SECRET,
    KMS_RES_CERT,
    KMS_RES_ACCESS,
};

#define KMS_RES_NAME_MAX 255 /* longest name in a pattern (secret names are up to 192) */

/* A parsed Resources pattern (I0.3). */
struct kms_pattern {
    enum {
        KMS_PAT_ALL,  /* "*" */
        KMS_PAT_TYPE, /* a type's wildcard: key, secret or certificate, then slash-star */
        KMS_PAT_ONE,  /* "key/<KeyId>", "secret/<SecretName>", "certificate/<CertificateId>" */
    } pt_kind;
    enum kms_res_type pt_type;
    char pt_name[KMS_RES_NAME_MAX + 1];
};

/*
 * Parses one pattern; false when it is none of the forms of I0.3: an empty name, a '*' anywhere
 * but as a whole "*" or as the whole name after "<type>/" (no partial wildcards), a character
 * outside printable ASCII, a key "id" that is an alias or an ARN, or a secret name outside the
 * secret-name alphabet.
 */
bool kms_pattern_parse(const char *s, struct kms_pattern *out);

/* Whether p matches a resource of type t called name. name NULL stands for a resource whose name
 * cannot be known (a ciphertext of an unknown key) or for the whole type (Create and List
 * actions): then only "*" and the type's wildcard match. */
bool kms_pattern_match(const struct kms_pattern *p, enum kms_res_type t, const char *name);

/* An IPv4 network, host byte order. */
struct kms_cidr {
    uint32_t cd_addr; /* already masked */
    uint32_t cd_mask;
};

/* "a.b.c.d" (= /32) or "a.b.c.d/n" with n 0-32 in decimal; host bits are cleared. Anything else,
 * IPv6 text included, -> false. */
bool kms_cidr_parse(const char *s, struct kms_cidr *out);
/* A dotted-quad IPv4 address into host byte order; false for anything else. */
bool kms_ipv4_parse(const char *s, uint32_t *out);
bool kms_cidr_match(const struct kms_cidr *c, uint32_t addr);

/* How an action names the resources a pattern must match (the Resource column of I0.6). */
enum kms_rule_kind {
    KMS_RULE_NONE,          /* template "—": any authenticated caller */
    KMS_RULE_ALL,           /* "*" only (access objects, the instance) */
    KMS_RULE_KEYS,          /* the key wildcard (Create / List actions) */
    KMS_RULE_SECRETS,       /* the secret wildcard */
    KMS_RULE_CERTS,         /* the certificate wildcard */
    KMS_RULE_KEY,           /* the key of parameter pr_param: id or ARN */
    KMS_RULE_KEY_ALIAS,     /* the key of parameter pr_param: id, ARN or alias */
    KMS_RULE_KEY_PROTECTED, /* KeyId or ProtectedResourceArn (SetDeletionProtection) */
    KMS_RULE_BLOB,          /* the key of the ciphertext in pr_param */
    KMS_RULE_REENCRYPT,     /* SourceKeyId or the CiphertextBlob's key, and DestinationKeyId */
    KMS_RULE_IMPORT,        /* KeyId, or the key of the ImportToken */
    KMS_RULE_ALIAS_TARGET,  /* the key the alias in pr_param is bound to */
    KMS_RULE_UPDATE_ALIAS,  /* the alias's key now and the new KeyId */
    KMS_RULE_SECRET,        /* the secret of parameter pr_param: name or ARN */
    KMS_RULE_CERT,          /* the certificate of parameter pr_param */
    KMS_RULE_TAG_ONE,       /* exactly one of KeyId / SecretName / CertificateId */
    KMS_RULE_TAG_MANY,      /* every ResourceId.N of ResourceType */
    KMS_RULE_TAG_LIST,      /* the wildcard of ResourceType */
};

/* One row of the Action -> (template, resource) table. */
struct kms_policy_rule {
    const char *pr_action;
    unsigned pr_template; /* one KMS_TPL_* bit; 0 for "—"; KMS_TPL_BY_TYPE */
    enum kms_rule_kind pr_kind;
    const char *pr_param; /* the parameter naming the resource, where the kind has one */
};

/* The row of action, or NULL (an action without a row is denied to access points). */
const struct kms_policy_rule *kms_policy_rule_find(const char *action);
/* The rows in table order (for tests); NULL past the end. */
const struct kms_policy_rule *kms_policy_rule_at(size_t i);

/*
 * Reads the key an ImportToken was issued for (BYOK code installs it; until then
 * ImportKeyMaterial without KeyId is denied to access points). KMS_OK with key_id filled;
 * KMS_E_KEY_NOT_FOUND when the token is well-formed but its key is gone; any other error
 * (KMS_E_INVALID_IMPORT_TOKEN ...) is returned to the caller as is.
 */
typedef kms_err (*kms_import_token_key_fn)(struct kms_call *call, const char *token,
                                           char key_id[KMS_ID_MAX]);
/* Installs fn; call before serving. */
void kms_policy_set_import_token_hook(kms_import_token_key_fn fn);

/* The cache of compiled AAP policies; checks that the rule table is sorted. */
kms_err kms_policy_init(void);
void kms_policy_shutdown(void);
/* Forgets every compiled AAP: call after any change to network rules, policies, AAPs or access
 * keys (after the commit). */
void kms_policy_invalidate(void);

/*
 * May call->principal run call->action here? Admin keys: yes, at once. Access-point keys: the
 * evaluation of I0.5 against the policies of their AAP, from call->req->peer_ip. Reads only the
 * parameters that name resources (MissingParameter, InvalidParameter for a ciphertext that does
 * not parse, Unsupported.Alias, AliasNotFound); a denial is KMS_E_NO_PERMISSION with no detail.
 */
kms_err kms_authorize(struct kms_call *call);

/* ---- authenticate.c: the common checks, in the order of spec §3 ---- */

struct kms_call;
struct kms_config;

/* Credentials cache and replay cache (reloaded from the store). */
kms_err kms_auth_init(const struct kms_config *cfg);
void kms_auth_shutdown(void);
/* Verifies a V1 or V3 request and fills call->principal. */
kms_err kms_authenticate(struct kms_call *call, bool v3);
/* Writes replay-cache entries recorded since the last flush to the store (all: until empty). */
void kms_auth_flush(bool all);
/* The replay cache's fill for metrics: live entries, configured capacity, entries that could not
 * be queued for the store (all zero before kms_auth_init). */
void kms_auth_replay_stats(size_t *live, size_t *capacity, uint64_t *unpersisted);

#endif
