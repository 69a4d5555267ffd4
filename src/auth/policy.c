/*
 * policy.c - authorization (spec/actions.md I0): may this principal run this Action on these
 * resources from this address?
 *
 * Admin access keys pass at once, without a lookup. An access-point key is checked against the
 * policies attached to its AAP: a policy grants some templates (I0.2) on some resource patterns
 * (I0.3), from the addresses of its network rules (I0.4). Every resource the request names must
 * be granted by some policy (I0.5); anything else is denied.
 *
 * What the hot path needs -- an AAP's policies with their templates as bits, patterns and CIDRs
 * parsed -- is compiled once and cached by AAP name; every change to network rules, policies,
 * AAPs or access keys drops the whole cache (kms_policy_invalidate), so a change takes effect
 * from the next request.
 *
 * Which resources an action names is the Action -> (template, resource rule) table below, one row
 * per action of the spec (I0.6), including actions that other parts of kmsd provide: an action
 * without a row is denied to access points.
 */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "kms/api.h"
#include "kms/auth.h"
#include "kms/cache.h"
#include "kms/crypto.h"
#include "kms/log.h"
#include "kms/store.h"

#define KMS_AUTHZ_CACHE 10000 /* compiled AAPs kept at once */

/* ---- templates ---- */

static const struct {
    const char *name;
    unsigned bit;
} kms_templates[] = {
    {"CryptoServiceKeyUser", KMS_TPL_KEY_USER},    {"CryptoServiceSecretUser", KMS_TPL_SECRET_USER},
    {"KeyAdministrator", KMS_TPL_KEY_ADMIN},       {"SecretAdministrator", KMS_TPL_SECRET_ADMIN},
    {"AccessAdministrator", KMS_TPL_ACCESS_ADMIN},
};

unsigned kms_policy_template(const char *s)
{
    size_t prefix = strlen(KMS_TEMPLATE_PREFIX);

    if (s == NULL || strncmp(s, KMS_TEMPLATE_PREFIX, prefix) != 0)
        return 0;
    for (size_t i = 0; i < KMS_ARRAY_LEN(kms_templates); i++)
        if (strcmp(s + prefix, kms_templates[i].name) == 0)
            return kms_templates[i].bit;
    return 0;
}

/* ---- patterns ---- */

static const struct {
    const char *prefix;
    enum kms_res_type type;
} kms_pattern_types[] = {
    {"key/", KMS_RES_KEY},
    {"secret/", KMS_RES_SECRET},
    {"certificate/", KMS_RES_CERT},
};

/* The alphabet of secret names (spec/actions.md E): A-Z a-z 0-9 _ / + = . - @ */
static bool kms_secret_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("_/+=.-@", c) != NULL;
}

static bool kms_pattern_name_valid(enum kms_res_type type, const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > KMS_RES_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++) {
        /* Printable ASCII; '*' only as a whole wildcard, which the caller handled. */
        if (*p <= ' ' || *p >= 0x7f || *p == '*')
            return false;
        if (type == KMS_RES_SECRET && !kms_secret_char(*p))
            return false;
    }
    switch (type) {
    case KMS_RES_KEY:
        /* Key patterns compare ids: an alias or an ARN here would never match anything. */
        return len < KMS_ID_MAX && strncmp(name, "alias/", 6) != 0 && strncmp(name, "acs:", 4) != 0;
    case KMS_RES_SECRET:
        return len <= 192 && strncmp(name, "acs/", 4) != 0;
    default:
        return true;
    }
}

bool kms_pattern_parse(const char *s, struct kms_pattern *out)
{
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return false;
    if (strcmp(s, "*") == 0) {
        out->pt_kind = KMS_PAT_ALL;
        return true;
    }
    for (size_t i = 0; i < KMS_ARRAY_LEN(kms_pattern_types); i++) {
        size_t plen = strlen(kms_pattern_types[i].prefix);
        const char *name = s + plen;

        if (strncmp(s, kms_pattern_types[i].prefix, plen) != 0)
            continue;
        out->pt_type = kms_pattern_types[i].type;
        if (strcmp(name, "*") == 0) {
            out->pt_kind = KMS_PAT_TYPE;
            return true;
        }
        if (!kms_pattern_name_valid(out->pt_type, name))
            return false;
        out->pt_kind = KMS_PAT_ONE;
        memcpy(out->pt_name, name, strlen(name) + 1);
        return true;
    }
    return false;
}

bool kms_pattern_match(const struct kms_pattern *p, enum kms_res_type t, const char *name)
{
    switch (p->pt_kind) {
    case KMS_PAT_ALL:
        return true;
    case KMS_PAT_TYPE:
        return p->pt_type == t;
    case KMS_PAT_ONE:
        return p->pt_type == t && name != NULL && strcmp(p->pt_name, name) == 0;
    }
    return false;
}

/* ---- network ---- */

bool kms_ipv4_parse(const char *s, uint32_t *out)
{
    struct in_addr a;

    /* inet_pton takes exactly four decimal parts, no leading zeros, nothing after them. */
    if (s == NULL || inet_pton(AF_INET, s, &a) != 1)
        return false;
    *out = ntohl(a.s_addr);
    return true;
}

bool kms_cidr_parse(const char *s, struct kms_cidr *out)
{
    char addr[INET_ADDRSTRLEN];
    const char *slash = s ? strchr(s, '/') : NULL;
    size_t addr_len = slash ? (size_t)(slash - s) : (s ? strlen(s) : 0);
    unsigned bits = 32;
    uint32_t a;

    if (s == NULL || addr_len == 0 || addr_len >= sizeof(addr))
        return false;
    memcpy(addr, s, addr_len);
    addr[addr_len] = '\0';
    if (!kms_ipv4_parse(addr, &a))
        return false;
    if (slash != NULL) {
        const char *p = slash + 1;

        /* 1-2 decimal digits, 0-32: no sign, no spaces, no "/", no "/033". */
        if (p[0] < '0' || p[0] > '9' || (p[1] != '\0' && (p[1] < '0' || p[1] > '9')) ||
            (p[1] != '\0' && p[2] != '\0') || (p[0] == '0' && p[1] != '\0'))
            return false;
        bits = (unsigned)(p[0] - '0');
        if (p[1] != '\0')
            bits = bits * 10 + (unsigned)(p[1] - '0');
        if (bits > 32)
            return false;
    }
    out->cd_mask = bits == 0 ? 0 : (uint32_t)(0xffffffffu << (32 - bits));
    out->cd_addr = a & out->cd_mask;
    return true;
}

bool kms_cidr_match(const struct kms_cidr *c, uint32_t addr)
{
    return (addr & c->cd_mask) == c->cd_addr;
}

/* ---- the Action -> (template, resource) table (spec/actions.md I0.6) ---- */

#define KU KMS_TPL_KEY_USER
#define SU KMS_TPL_SECRET_USER
#define KA KMS_TPL_KEY_ADMIN
#define SA KMS_TPL_SECRET_ADMIN
#define AA KMS_TPL_ACCESS_ADMIN
#define BY KMS_TPL_BY_TYPE

/* Sorted by action (strcmp order): looked up with bsearch; kms_policy_init checks the order. */
static const struct kms_policy_rule kms_rules[] = {
    {"AsymmetricDecrypt", KU, KMS_RULE_KEY_ALIAS, "KeyId"},
    {"AsymmetricEncrypt", KU, KMS_RULE_KEY_ALIAS, "KeyId"},
    {"AsymmetricSign", KU, KMS_RULE_KEY_ALIAS, "KeyId"},
    {"AsymmetricVerify", KU, KMS_RULE_KEY_ALIAS, "KeyId"},
    {"CancelKeyDeletion", KA, KMS_RULE_KEY, "KeyId"},
    {"CertificatePrivateKeyDecrypt", KA, KMS_RULE_CERT, "CertificateId"},
    {"CertificatePrivateKeySign", KA, KMS_RULE_CERT, "CertificateId"},
    {"CertificatePublicKeyEncrypt", KA, KMS_RULE_CERT, "CertificateId"},
    {"CertificatePublicKeyVerify", KA, KMS_RULE_CERT, "CertificateId"},
    {"ConnectKmsInstance", AA, KMS_RULE_ALL, NULL},
    {"CreateAccessKey", AA, KMS_RULE_ALL, NULL},
    {"CreateAlias", KA, KMS_RULE_KEY, "KeyId"},
    {"CreateApplicationAccessPoint", AA, KMS_RULE_ALL, NULL},
    {"CreateCertificate", KA, KMS_RULE_CERTS, NULL},
    {"CreateClientKey", AA, KMS_RULE_ALL, NULL},
    {"CreateKey", KA, KMS_RULE_KEYS, NULL},
    {"CreateKeyVersion", KA, KMS_RULE_KEY_ALIAS, "KeyId"},
    {"CreateNetworkRule", AA, KMS_RULE_ALL, NULL},
    {"CreatePolicy", AA, KMS_RULE_ALL, NULL},
    {"CreateSecret", SA, KMS_RULE_SECRETS, NULL},
    {"Decrypt", KU, KMS_RULE_BLOB, "CiphertextBlob"},
    {"DeleteAccessKey", AA, KMS_RULE_ALL, NULL},
    {"DeleteAlias", KA, KMS_RULE_ALIAS_TARGET, "AliasName"},
    {"DeleteApplicationAccessPoint", AA, KMS_RULE_ALL, NULL},
    {"DeleteCertificate", KA, KMS_RULE_CERT, "CertificateId"},
    {"DeleteClientKey", AA, KMS_RULE_ALL, NULL},
    {"DeleteKeyMaterial", KA, KMS_RULE_KEY, "KeyId"},
    {"DeleteNetworkRule", AA, KMS_RULE_ALL, NULL},
    {"DeletePolicy", AA, KMS_RULE_ALL, NULL},
    {"DeleteSecret", SA, KMS_RULE_SECRET, "SecretName"},
    {"DescribeAccountKmsStatus", 0, KMS_RULE_NONE, NULL},
    {"DescribeApplicationAccessPoint", AA, KMS_RULE_ALL, NULL},
    {"DescribeCertificate", KA, KMS_RULE_CERT, "CertificateId"},
    {"DescribeKey", KU, KMS_RULE_KEY_ALIAS, "KeyId"},
    {"DescribeKeyVersion", KU, KMS_RULE_KEY_ALIAS, "KeyId"},
    {"DescribeNetworkRule", AA, KMS_RULE_ALL, NULL},
    {"DescribePolicy", AA, KMS_RULE_ALL, NULL},
    {"DescribeRegions", 0, KMS_RULE_NONE, NULL},
    {"DescribeSecret", SU, KMS_RULE_SECRET, "SecretName"},
    {"DescribeService", 0, KMS_RULE_NONE, NULL},
    {"DisableKey", KA, KMS_RULE_KEY, "KeyId"},
    {"EnableKey", KA, KMS_RULE_KEY, "KeyId"},
    {"Encrypt", KU, KMS_RULE_KEY_ALIAS, "KeyId"},
    {"ExportCertificate", KA, KMS_RULE_CERT, "CertificateId"},
    {"ExportDataKey", KU, KMS_RULE_BLOB, "CiphertextBlob"},
    {"GenerateAndExportDataKey", KU, KMS_RULE_KEY_ALIAS, "KeyId"},
    {"GenerateDataKey", KU, KMS_RULE_KEY_ALIAS, "KeyId"},
    {"GenerateDataKeyWithoutPlaintext", KU, KMS_RULE_KEY_ALIAS, "KeyId"},
    {"GenerateMac", KU, KMS_RULE_KEY_ALIAS, "KeyId"},
    {"GenerateRandom", 0, KMS_RULE_NONE, NULL},
    {"GetCertificate", KA, KMS_RULE_CERT, "CertificateId"},
    {"GetClientKey", AA, KMS_RULE_ALL, NULL},
    {"GetKmsInstance", AA, KMS_RULE_ALL, NULL},
    {"GetParametersForImport", KA, KMS_RULE_KEY, "KeyId"},
    {"GetPublicKey", KU, KMS_RULE_KEY_ALIAS, "KeyId"},
    {"GetRandomPassword", 0, KMS_RULE_NONE, NULL},
    {"GetSecretValue", SU, KMS_RULE_SECRET, "SecretName"},
    {"ImportCertificate", KA, KMS_RULE_CERTS, NULL},
    {"ImportKeyMaterial", KA, KMS_RULE_IMPORT, "KeyId"},
    {"ListAccessKeys", AA, KMS_RULE_ALL, NULL},
    {"ListAliases", KA, KMS_RULE_KEYS, NULL},
    {"ListAliasesByKeyId", KU, KMS_RULE_KEY, "KeyId"},
    {"ListApplicationAccessPoints", AA, KMS_RULE_ALL, NULL},
    {"ListCertificates", KA, KMS_RULE_CERTS, NULL},
    {"ListClientKeys", AA, KMS_RULE_ALL, NULL},
    {"ListKeyVersions", KU, KMS_RULE_KEY_ALIAS, "KeyId"},
    {"ListKeys", KA, KMS_RULE_KEYS, NULL},
    {"ListKmsInstances", AA, KMS_RULE_ALL, NULL},
    {"ListNetworkRules", AA, KMS_RULE_ALL, NULL},
    {"ListPolicies", AA, KMS_RULE_ALL, NULL},
    {"ListResourceTags", KU, KMS_RULE_KEY, "KeyId"},
    {"ListSecretVersionIds", SU, KMS_RULE_SECRET, "SecretName"},
    {"ListSecrets", SA, KMS_RULE_SECRETS, NULL},
    {"ListTagResources", BY, KMS_RULE_TAG_LIST, NULL},
    {"OpenKmsService", 0, KMS_RULE_NONE, NULL},
    {"PutSecretValue", SA, KMS_RULE_SECRET, "SecretName"},
    {"ReEncrypt", KU, KMS_RULE_REENCRYPT, NULL},
    {"RestoreSecret", SA, KMS_RULE_SECRET, "SecretName"},
    {"RotateSecret", SA, KMS_RULE_SECRET, "SecretName"},
    {"ScheduleKeyDeletion", KA, KMS_RULE_KEY, "KeyId"},
    {"SetDeletionProtection", KA, KMS_RULE_KEY_PROTECTED, NULL},
    {"TagResource", BY, KMS_RULE_TAG_ONE, NULL},
    {"TagResources", BY, KMS_RULE_TAG_MANY, NULL},
    {"UntagResource", BY, KMS_RULE_TAG_ONE, NULL},
    {"UntagResources", BY, KMS_RULE_TAG_MANY, NULL},
    {"UpdateAccessKey", AA, KMS_RULE_ALL, NULL},
    {"UpdateAlias", KA, KMS_RULE_UPDATE_ALIAS, NULL},
    {"UpdateApplicationAccessPoint", AA, KMS_RULE_ALL, NULL},
    {"UpdateCertificateStatus", KA, KMS_RULE_CERT, "CertificateId"},
    {"UpdateKeyDescription", KA, KMS_RULE_KEY, "KeyId"},
    {"UpdateKmsInstanceBindVpc", AA, KMS_RULE_ALL, NULL},
    {"UpdateNetworkRule", AA, KMS_RULE_ALL, NULL},
    {"UpdatePolicy", AA, KMS_RULE_ALL, NULL},
    {"UpdateRotationPolicy", KA, KMS_RULE_KEY, "KeyId"},
    {"UpdateSecret", SA, KMS_RULE_SECRET, "SecretName"},
    {"UpdateSecretRotationPolicy", SA, KMS_RULE_SECRET, "SecretName"},
    {"UpdateSecretVersionStage", SA, KMS_RULE_SECRET, "SecretName"},
    {"UploadCertificate", KA, KMS_RULE_CERT, "CertificateId"},
    {"VerifyMac", KU, KMS_RULE_KEY_ALIAS, "KeyId"},
};

#undef KU
#undef SU
#undef KA
#undef SA
#undef AA
#undef BY

static int kms_rule_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct kms_policy_rule *)elem)->pr_action);
}

const struct kms_policy_rule *kms_policy_rule_find(const char *action)
{
    if (action == NULL)
        return NULL;
    return bsearch(action, kms_rules, KMS_ARRAY_LEN(kms_rules), sizeof(kms_rules[0]), kms_rule_cmp);
}

const struct kms_policy_rule *kms_policy_rule_at(size_t i)
{
    return i < KMS_ARRAY_LEN(kms_rules) ? &kms_rules[i] : NULL;
}

static kms_import_token_key_fn kms_import_token_hook;

void kms_policy_set_import_token_hook(kms_import_token_key_fn fn)
{
    kms_import_token_hook = fn;
}

/* ---- compiled AAPs and their cache ---- */

struct kms_authz_policy {
    char ap_name[KMS_ID_MAX];
    unsigned ap_templates;
    bool ap_anywhere; /* names no network rule: takes effect from any address */
    struct kms_pattern *ap_patterns;
    size_t ap_pattern_count;
    struct kms_cidr *ap_cidrs;
    size_t ap_cidr_count;
};

struct kms_authz_aap {
    _Atomic int aa_refs;
    struct kms_authz_policy *aa_policies;
    size_t aa_count;
    bool aa_failed; /* out of memory while compiling: not cached, denies */
};

static struct kms_cache *kms_authz_cache;

static void kms_authz_ref(void *obj)
{
    atomic_fetch_add(&((struct kms_authz_aap *)obj)->aa_refs, 1);
}

static void kms_authz_unref(void *obj)
{
    struct kms_authz_aap *a = obj;

    if (atomic_fetch_sub(&a->aa_refs, 1) != 1)
        return;
    for (size_t i = 0; i < a->aa_count; i++) {
        free(a->aa_policies[i].ap_patterns);
        free(a->aa_policies[i].ap_cidrs);
    }
    free(a->aa_policies);
    free(a);
}

kms_err kms_policy_init(void)
{
    for (size_t i = 1; i < KMS_ARRAY_LEN(kms_rules); i++) {
        if (strcmp(kms_rules[i - 1].pr_action, kms_rules[i].pr_action) >= 0) {
            kms_log_error("policy: rule table out of order at %s", kms_rules[i].pr_action);
            return KMS_E_INTERNAL;
        }
    }
    kms_authz_cache = kms_cache_create(KMS_AUTHZ_CACHE, kms_authz_ref, kms_authz_unref);
    return kms_authz_cache ? KMS_OK : KMS_E_INTERNAL;
}

void kms_policy_shutdown(void)
{
    kms_cache_free(kms_authz_cache);
    kms_authz_cache = NULL;
}

void kms_policy_invalidate(void)
{
    if (kms_authz_cache != NULL)
        kms_cache_clear(kms_authz_cache);
}

/* The items of a stored JSON array of strings; a stored value that does not parse grants
 * nothing (logged: it cannot happen through the API). */
static cJSON *kms_authz_json_array(const char *policy, const char *what, const char *text)
{
    cJSON *root = text ? cJSON_Parse(text) : NULL;

    if (root == NULL || !cJSON_IsArray(root)) {
        kms_log_error("policy: stored %s of policy %s is not a JSON array; ignored", what, policy);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static bool kms_authz_compile_policy(struct kms_authz_policy *p, const char *name,
                                     const char *permissions, const char *resources)
{
    cJSON *perms = kms_authz_json_array(name, "Permissions", permissions);
    cJSON *res = kms_authz_json_array(name, "Resources", resources);
    int n = res ? cJSON_GetArraySize(res) : 0;
    bool ok = true;
    cJSON *item;

    snprintf(p->ap_name, sizeof(p->ap_name), "%s", name);
    cJSON_ArrayForEach(item, perms)
    {
        p->ap_templates |= cJSON_IsString(item) ? kms_policy_template(item->valuestring) : 0;
    }
    if (n > 0) {
        p->ap_patterns = calloc((size_t)n, sizeof(*p->ap_patterns));
        ok = p->ap_patterns != NULL;
    }
    cJSON_ArrayForEach(item, res)
    {
        if (!ok)
            break;
        if (cJSON_IsString(item) &&
            kms_pattern_parse(item->valuestring, &p->ap_patterns[p->ap_pattern_count]))
            p->ap_pattern_count++;
        else
            kms_log_error("policy: a stored pattern of policy %s does not parse; ignored", name);
    }
    cJSON_Delete(perms);
    cJSON_Delete(res);
    return ok;
}

static bool kms_authz_add_cidrs(struct kms_authz_policy *p, const char *source_ips)
{
    cJSON *ips = kms_authz_json_array(p->ap_name, "network rule", source_ips);
    int n = ips ? cJSON_GetArraySize(ips) : 0;
    struct kms_cidr *grown;
    cJSON *item;

    if (n == 0) {
        cJSON_Delete(ips);
        return true;
    }
    grown = realloc(p->ap_cidrs, (p->ap_cidr_count + (size_t)n) * sizeof(*grown));
    if (grown == NULL) {
        cJSON_Delete(ips);
        return false;
    }
    p->ap_cidrs = grown;
    cJSON_ArrayForEach(item, ips)
    {
        if (cJSON_IsString(item) &&
            kms_cidr_parse(item->valuestring, &p->ap_cidrs[p->ap_cidr_count]))
            p->ap_cidr_count++;
        else
            kms_log_error("policy: a stored address of a rule of %s does not parse; ignored",
                          p->ap_name);
    }
    cJSON_Delete(ips);
    return true;
}

/* kms_store_grant_fn: rows arrive grouped by policy, in the AAP's order. */
static void kms_authz_grant_row(const char *policy, const char *permissions, const char *resources,
                                const char *rule, const char *source_ips, void *arg)
{
    struct kms_authz_aap *a = arg;
    struct kms_authz_policy *p;

    if (a->aa_failed || policy == NULL)
        return;
    p = a->aa_count > 0 ? &a->aa_policies[a->aa_count - 1] : NULL;
    if (p == NULL || strcmp(p->ap_name, policy) != 0) {
        struct kms_authz_policy *grown =
            realloc(a->aa_policies, (a->aa_count + 1) * sizeof(*grown));

        if (grown == NULL) {
            a->aa_failed = true;
            return;
        }
        a->aa_policies = grown;
        p = &a->aa_policies[a->aa_count++];
        memset(p, 0, sizeof(*p));
        if (!kms_authz_compile_policy(p, policy, permissions, resources)) {
            a->aa_failed = true;
            return;
        }
    }
    /* A policy without rules comes as one row with rule NULL; a rule that vanished (the schema
     * forbids it) brings no addresses, so it opens nothing. */
    if (rule == NULL)
        p->ap_anywhere = true;
    else if (source_ips != NULL && !kms_authz_add_cidrs(p, source_ips))
        a->aa_failed = true;
}

/* The compiled policies of AAP name, from the cache or the store. Release with kms_authz_unref. */
static kms_err kms_authz_aap_get(struct kms_db *db, const char *name, struct kms_authz_aap **out)
{
    struct kms_authz_aap *a = kms_cache_get(kms_authz_cache, name);
    uint64_t gen;
    kms_err rc;

    if (a != NULL) {
        *out = a;
        return KMS_OK;
    }
    gen = kms_cache_generation(kms_authz_cache);
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return KMS_E_INTERNAL;
    atomic_store(&a->aa_refs, 1);
    rc = kms_store_aap_grants(db, name, kms_authz_grant_row, a);
    if (rc == KMS_OK && a->aa_failed)
        rc = KMS_E_INTERNAL;
    if (rc != KMS_OK) {
        kms_authz_unref(a);
        return rc;
    }
    kms_cache_insert(kms_authz_cache, name, a, gen);
    *out = a;
    return KMS_OK;
}

/* ---- naming what a request touches ---- */

/* One resource a request names. */
struct kms_authz_res {
    unsigned ar_template;
    enum kms_res_type ar_type;
    bool ar_known; /* false: an unknown name, or the whole type: only wildcards match */
    char ar_name[KMS_RES_NAME_MAX + 1];
};

#define KMS_AUTHZ_INLINE 2

struct kms_authz_req {
    struct kms_authz_res ar_inline[KMS_AUTHZ_INLINE];
    struct kms_authz_res *ar_items;
    size_t ar_count;
    size_t ar_cap;
};

/* A new, zeroed resource slot (NULL when memory runs out). */
static struct kms_authz_res *kms_authz_add(struct kms_authz_req *r, unsigned tpl,
                                           enum kms_res_type type)
{
    struct kms_authz_res *res;

    if (r->ar_items == NULL) {
        r->ar_items = r->ar_inline;
        r->ar_cap = KMS_AUTHZ_INLINE;
    }
    if (r->ar_count == r->ar_cap) {
        size_t cap = r->ar_cap * 2;
        struct kms_authz_res *grown = malloc(cap * sizeof(*grown));

        if (grown == NULL)
            return NULL;
        memcpy(grown, r->ar_items, r->ar_count * sizeof(*grown));
        if (r->ar_items != r->ar_inline)
            free(r->ar_items);
        r->ar_items = grown;
        r->ar_cap = cap;
    }
    res = &r->ar_items[r->ar_count++];
    memset(res, 0, sizeof(*res));
    res->ar_template = tpl;
    res->ar_type = type;
    return res;
}

static void kms_authz_req_free(struct kms_authz_req *r)
{
    if (r->ar_items != r->ar_inline)
        free(r->ar_items);
}

static kms_err kms_authz_named(struct kms_authz_req *r, unsigned tpl, enum kms_res_type type,
                               const char *name)
{
    struct kms_authz_res *res = kms_authz_add(r, tpl, type);

    if (res == NULL)
        return KMS_E_INTERNAL;
    if (name != NULL && strlen(name) <= KMS_RES_NAME_MAX) {
        memcpy(res->ar_name, name, strlen(name) + 1);
        res->ar_known = true;
    }
    return KMS_OK;
}

/* A key named by value ref (parameter param): an id, an ARN, an alias (mode). A key that cannot
 * exist here (an ARN of another region) is an unknown name; other resolution errors stand. */
static kms_err kms_authz_key_value(struct kms_call *call, struct kms_authz_req *r, unsigned tpl,
                                   const char *param, const char *ref, enum kms_ref_mode mode)
{
    char key_id[KMS_ID_MAX];
    kms_err rc = kms_key_name_value(call, param, ref, mode, key_id);

    if (rc == KMS_E_KEY_NOT_FOUND)
        return kms_authz_named(r, tpl, KMS_RES_KEY, NULL);
    if (rc != KMS_OK)
        return rc;
    return kms_authz_named(r, tpl, KMS_RES_KEY, key_id);
}

static kms_err kms_authz_key(struct kms_call *call, struct kms_authz_req *r, unsigned tpl,
                             const char *param, enum kms_ref_mode mode)
{
    const char *ref;
    kms_err rc = kms_arg_required(call, param, &ref);

    if (rc != KMS_OK)
        return rc;
    return kms_authz_key_value(call, r, tpl, param, ref, mode);
}

/* The key of a symmetric ciphertext: its version's owner. A blob that does not parse is the
 * caller's error; a version kmsd does not know leaves the name unknown. */
static kms_err kms_authz_blob(struct kms_call *call, struct kms_authz_req *r, unsigned tpl,
                              const char *param)
{
    struct kms_buf data = {0};
    struct kms_blob blob;
    char version_id[KMS_UUID_LEN], key_id[KMS_ID_MAX];
    kms_err rc = kms_arg_base64(call, param, true, &data, NULL);

    if (rc != KMS_OK)
        goto out;
    if (kms_blob_parse((const uint8_t *)data.data, data.len, &blob) != KMS_OK) {
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, param);
        goto out;
    }
    kms_uuid_unparse(blob.version_id, version_id);
    rc = kms_version_owner(call, version_id, key_id);
    if (rc == KMS_E_KEY_VERSION_NOT_FOUND)
        rc = kms_authz_named(r, tpl, KMS_RES_KEY, NULL);
    else if (rc == KMS_OK)
        rc = kms_authz_named(r, tpl, KMS_RES_KEY, key_id);
out:
    kms_buf_free(&data);
    return rc;
}

/* A secret name, or its ARN acs:kms:<region>:<account>:secret/<name>. */
static kms_err kms_authz_secret_value(struct kms_call *call, struct kms_authz_req *r, unsigned tpl,
                                      const char *ref)
{
    const char *region = call->cfg->region, *account = call->cfg->account_id;
    const char *p = ref + 8;

    if (strncmp(ref, "acs:kms:", 8) != 0)
        return kms_authz_named(r, tpl, KMS_RES_SECRET, ref);
    /* An ARN of another region or account names no secret of this server. */
    if (strncmp(p, region, strlen(region)) != 0 || p[strlen(region)] != ':')
        return kms_authz_named(r, tpl, KMS_RES_SECRET, NULL);
    p += strlen(region) + 1;
    if (strncmp(p, account, strlen(account)) != 0 || p[strlen(account)] != ':')
        return kms_authz_named(r, tpl, KMS_RES_SECRET, NULL);
    p += strlen(account) + 1;
    if (strncmp(p, "secret/", 7) != 0 || p[7] == '\0')
        return kms_authz_named(r, tpl, KMS_RES_SECRET, NULL);
    return kms_authz_named(r, tpl, KMS_RES_SECRET, p + 7);
}

static kms_err kms_authz_param(struct kms_call *call, const char *param, const char **out)
{
    return kms_arg_required(call, param, out);
}

static kms_err kms_authz_alias_target(struct kms_call *call, struct kms_authz_req *r,
                                      const char *param)
{
    char key_id[KMS_ID_MAX];
    const char *alias;
    kms_err rc = kms_authz_param(call, param, &alias);

    if (rc == KMS_OK)
        rc = kms_store_alias_get(call->db, alias, key_id);
    if (rc == KMS_OK)
        rc = kms_authz_named(r, KMS_TPL_KEY_ADMIN, KMS_RES_KEY, key_id);
    return rc;
}

/* SetDeletionProtection: KeyId or ProtectedResourceArn, as its handler reads them. */
static kms_err kms_authz_protected(struct kms_call *call, struct kms_authz_req *r)
{
    const char *key_id = kms_arg(call, "KeyId");
    const char *arn = kms_arg(call, "ProtectedResourceArn");

    if (key_id == NULL && arn == NULL)
        return kms_fail(call, KMS_E_MISSING_PARAMETER, "ProtectedResourceArn");
    if (key_id != NULL && arn != NULL)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "KeyId");
    if (arn != NULL && strncmp(arn, "acs:kms:", 8) != 0)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "ProtectedResourceArn");
    return kms_authz_key(call, r, KMS_TPL_KEY_ADMIN, key_id ? "KeyId" : "ProtectedResourceArn",
                         KMS_REF_ID_ONLY);
}

static kms_err kms_authz_import(struct kms_call *call, struct kms_authz_req *r)
{
    char key_id[KMS_ID_MAX];
    const char *token;
    kms_err rc;

    if (kms_arg(call, "KeyId") != NULL)
        return kms_authz_key(call, r, KMS_TPL_KEY_ADMIN, "KeyId", KMS_REF_ID_ONLY);
    rc = kms_authz_param(call, "ImportToken", &token);
    if (rc != KMS_OK)
        return rc;
    if (kms_import_token_hook == NULL)
        return KMS_E_NO_PERMISSION; /* nothing can read the token: deny rather than guess */
    rc = kms_import_token_hook(call, token, key_id);
    if (rc == KMS_E_KEY_NOT_FOUND)
        return kms_authz_named(r, KMS_TPL_KEY_ADMIN, KMS_RES_KEY, NULL);
    if (rc != KMS_OK)
        return rc;
    return kms_authz_named(r, KMS_TPL_KEY_ADMIN, KMS_RES_KEY, key_id);
}

/* TagResource / UntagResource: exactly one of KeyId, SecretName, CertificateId. */
static kms_err kms_authz_tag_one(struct kms_call *call, struct kms_authz_req *r)
{
    const char *key_id = kms_arg(call, "KeyId");
    const char *secret = kms_arg(call, "SecretName");
    const char *cert = kms_arg(call, "CertificateId");
    int given = (key_id != NULL) + (secret != NULL) + (cert != NULL);

    if (given == 0)
        return kms_fail(call, KMS_E_MISSING_PARAMETER, "KeyId");
    if (given > 1)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, key_id ? "KeyId" : "SecretName");
    if (secret != NULL)
        return kms_authz_secret_value(call, r, KMS_TPL_SECRET_ADMIN, secret);
    if (cert != NULL)
        return kms_authz_named(r, KMS_TPL_KEY_ADMIN, KMS_RES_CERT, cert);
    return kms_authz_key_value(call, r, KMS_TPL_KEY_ADMIN, "KeyId", key_id, KMS_REF_ID_ONLY);
}

/* ResourceType of the batch tag actions: key -> KeyAdministrator, secret -> SecretAdministrator. */
static kms_err kms_authz_tag_type(struct kms_call *call, enum kms_res_type *type, unsigned *tpl)
{
    const char *value;
    kms_err rc = kms_authz_param(call, "ResourceType", &value);

    if (rc != KMS_OK)
        return rc;
    if (strcasecmp(value, "key") == 0) {
        *type = KMS_RES_KEY;
        *tpl = KMS_TPL_KEY_ADMIN;
    } else if (strcasecmp(value, "secret") == 0) {
        *type = KMS_RES_SECRET;
        *tpl = KMS_TPL_SECRET_ADMIN;
    } else {
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "ResourceType");
    }
    return KMS_OK;
}

/* TagResources / UntagResources: every ResourceId.N. */
static kms_err kms_authz_tag_many(struct kms_call *call, struct kms_authz_req *r)
{
    /* Set by kms_authz_tag_type on success; initialised for -O3's uninitialised-use check. */
    enum kms_res_type type = KMS_RES_KEY;
    unsigned tpl = 0;
    size_t found = 0;
    kms_err rc = kms_authz_tag_type(call, &type, &tpl);

    for (size_t i = 0; rc == KMS_OK && i < call->params.count; i++) {
        const struct kms_param *p = &call->params.items[i];

        if (strncmp(p->name, "ResourceId.", 11) != 0 || p->value_len == 0)
            continue;
        found++;
        if (type == KMS_RES_KEY)
            rc = kms_authz_key_value(call, r, tpl, p->name, p->value, KMS_REF_ID_ONLY);
        else
            rc = kms_authz_secret_value(call, r, tpl, p->value);
    }
    if (rc == KMS_OK && found == 0)
        rc = kms_fail(call, KMS_E_MISSING_PARAMETER, "ResourceId.1");
    return rc;
}

static kms_err kms_authz_name(struct kms_call *call, const struct kms_policy_rule *rule,
                              struct kms_authz_req *r)
{
    enum kms_res_type type = KMS_RES_KEY; /* see kms_authz_tag_many */
    unsigned tpl = rule->pr_template;
    const char *value;
    kms_err rc;

    switch (rule->pr_kind) {
    case KMS_RULE_NONE:
        return KMS_OK;
    case KMS_RULE_ALL:
        return kms_authz_named(r, tpl, KMS_RES_ACCESS, NULL);
    case KMS_RULE_KEYS:
        return kms_authz_named(r, tpl, KMS_RES_KEY, NULL);
    case KMS_RULE_SECRETS:
        return kms_authz_named(r, tpl, KMS_RES_SECRET, NULL);
    case KMS_RULE_CERTS:
        return kms_authz_named(r, tpl, KMS_RES_CERT, NULL);
    case KMS_RULE_KEY:
        return kms_authz_key(call, r, tpl, rule->pr_param, KMS_REF_ID_ONLY);
    case KMS_RULE_KEY_ALIAS:
        return kms_authz_key(call, r, tpl, rule->pr_param, KMS_REF_ANY);
    case KMS_RULE_KEY_PROTECTED:
        return kms_authz_protected(call, r);
    case KMS_RULE_BLOB:
        return kms_authz_blob(call, r, tpl, rule->pr_param);
    case KMS_RULE_REENCRYPT:
        /* A SourceKeyId means a public-key ciphertext, which names no key itself. */
        if (kms_arg(call, "SourceKeyId") != NULL)
            rc = kms_authz_key(call, r, tpl, "SourceKeyId", KMS_REF_ANY);
        else
            rc = kms_authz_blob(call, r, tpl, "CiphertextBlob");
        if (rc == KMS_OK)
            rc = kms_authz_key(call, r, tpl, "DestinationKeyId", KMS_REF_ANY);
        return rc;
    case KMS_RULE_IMPORT:
        return kms_authz_import(call, r);
    case KMS_RULE_ALIAS_TARGET:
        return kms_authz_alias_target(call, r, rule->pr_param);
    case KMS_RULE_UPDATE_ALIAS:
        rc = kms_authz_alias_target(call, r, "AliasName");
        if (rc == KMS_OK)
            rc = kms_authz_key(call, r, tpl, "KeyId", KMS_REF_ID_ONLY);
        return rc;
    case KMS_RULE_SECRET:
        rc = kms_authz_param(call, rule->pr_param, &value);
        return rc == KMS_OK ? kms_authz_secret_value(call, r, tpl, value) : rc;
    case KMS_RULE_CERT:
        rc = kms_authz_param(call, rule->pr_param, &value);
        return rc == KMS_OK ? kms_authz_named(r, tpl, KMS_RES_CERT, value) : rc;
    case KMS_RULE_TAG_ONE:
        return kms_authz_tag_one(call, r);
    case KMS_RULE_TAG_MANY:
        return kms_authz_tag_many(call, r);
    case KMS_RULE_TAG_LIST:
        rc = kms_authz_tag_type(call, &type, &tpl);
        return rc == KMS_OK ? kms_authz_named(r, tpl, type, NULL) : rc;
    }
    return KMS_E_NO_PERMISSION;
}

/* ---- evaluation ---- */

static bool kms_authz_in_network(const struct kms_authz_policy *p, bool have_ip, uint32_t ip)
{
    if (p->ap_anywhere)
        return true;
    for (size_t i = 0; have_ip && i < p->ap_cidr_count; i++)
        if (kms_cidr_match(&p->ap_cidrs[i], ip))
            return true;
    return false;
}

/* Some policy in effect from this address grants the template on a pattern matching res. */
static bool kms_authz_allows(const struct kms_authz_aap *a, const bool *in_effect,
                             const struct kms_authz_res *res)
{
    for (size_t i = 0; i < a->aa_count; i++) {
        const struct kms_authz_policy *p = &a->aa_policies[i];

        if (!in_effect[i] || (p->ap_templates & res->ar_template) == 0)
            continue;
        for (size_t k = 0; k < p->ap_pattern_count; k++)
            if (kms_pattern_match(&p->ap_patterns[k], res->ar_type,
                                  res->ar_known ? res->ar_name : NULL))
                return true;
    }
    return false;
}

static const char *kms_res_type_name(enum kms_res_type t)
{
    switch (t) {
    case KMS_RES_KEY:
        return "key";
    case KMS_RES_SECRET:
        return "secret";
    case KMS_RES_CERT:
        return "certificate";
    case KMS_RES_ACCESS:
        break;
    }
    return "";
}

/* "<type>/<name>" of the first resource into call->resource, for the audit record. */
static void kms_authz_note_resource(struct kms_call *call, const struct kms_authz_res *res)
{
    const char *type = kms_res_type_name(res->ar_type);
    size_t type_len = strlen(type), name_len = strlen(res->ar_name);

    if (call->resource[0] != '\0' || !res->ar_known ||
        type_len + 1 + name_len >= sizeof(call->resource))
        return;
    memcpy(call->resource, type, type_len);
    call->resource[type_len] = '/';
    memcpy(call->resource + type_len + 1, res->ar_name, name_len + 1);
}

kms_err kms_authorize(struct kms_call *call)
{
    const struct kms_policy_rule *rule;
    struct kms_authz_req req = {0};
    struct kms_authz_aap *aap = NULL;
    bool stack_effect[4], *in_effect = stack_effect;
    bool have_ip;
    uint32_t ip = 0;
    kms_err rc;

    /* I0.5 (1): the admin key may do everything, and costs nothing here. */
    if (call->principal.admin)
        return KMS_OK;
    rule = kms_policy_rule_find(call->action);
    if (rule == NULL)
        return KMS_E_NO_PERMISSION; /* default deny: an action without a row */
    if (rule->pr_kind == KMS_RULE_NONE)
        return KMS_OK; /* I0.5 (2) */
    rc = kms_authz_name(call, rule, &req);
    if (rc != KMS_OK)
        goto out;
    if (req.ar_count > 0)
        kms_authz_note_resource(call, &req.ar_items[0]);
    rc = kms_authz_aap_get(call->db, call->principal.aap_name, &aap);
    if (rc != KMS_OK)
        goto out;
    if (aap->aa_count > KMS_ARRAY_LEN(stack_effect)) {
        in_effect = calloc(aap->aa_count, sizeof(*in_effect));
        if (in_effect == NULL) {
            rc = KMS_E_INTERNAL;
            goto out;
        }
    }
    have_ip = kms_ipv4_parse(call->req->peer_ip, &ip);
    for (size_t i = 0; i < aap->aa_count; i++)
        in_effect[i] = kms_authz_in_network(&aap->aa_policies[i], have_ip, ip);
    /* I0.5 (3): every resource named must be granted, by one policy or several. */
    for (size_t i = 0; i < req.ar_count && rc == KMS_OK; i++)
        if (!kms_authz_allows(aap, in_effect, &req.ar_items[i]))
            rc = KMS_E_NO_PERMISSION;
out:
    if (in_effect != stack_effect)
        free(in_effect);
    if (aap != NULL)
        kms_authz_unref(aap);
    kms_authz_req_free(&req);
    if (rc == KMS_E_NO_PERMISSION)
        kms_buf_reset(&call->detail); /* the same body whether or not the resource exists */
    return rc;
}
