/*
 * test_policy.c - the pieces of authorization (spec/actions.md I0) that need no store: template
 * names, resource patterns and their matching, IPv4 CIDRs, the Action -> (template, resource)
 * table (sorted, and covering every action the dispatcher knows: an action without a row would
 * be denied to every access point), and the decisions kms_authorize takes before reading
 * policies (admin keys, template-free actions, missing rows, malformed resource parameters).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/internal.h"
#include "kms/auth.h"

static void test_templates(void **state)
{
    (void)state;
    assert_int_equal(kms_policy_template("RbacPermission/Template/CryptoServiceKeyUser"),
                     KMS_TPL_KEY_USER);
    assert_int_equal(kms_policy_template("RbacPermission/Template/CryptoServiceSecretUser"),
                     KMS_TPL_SECRET_USER);
    assert_int_equal(kms_policy_template("RbacPermission/Template/KeyAdministrator"),
                     KMS_TPL_KEY_ADMIN);
    assert_int_equal(kms_policy_template("RbacPermission/Template/SecretAdministrator"),
                     KMS_TPL_SECRET_ADMIN);
    assert_int_equal(kms_policy_template("RbacPermission/Template/AccessAdministrator"),
                     KMS_TPL_ACCESS_ADMIN);
    /* Exact, case-sensitive, with the prefix. */
    assert_int_equal(kms_policy_template("CryptoServiceKeyUser"), 0);
    assert_int_equal(kms_policy_template("RbacPermission/Template/cryptoservicekeyuser"), 0);
    assert_int_equal(kms_policy_template("RbacPermission/Template/CryptoServiceKeyUser "), 0);
    assert_int_equal(kms_policy_template("RbacPermission/Template/"), 0);
    assert_int_equal(kms_policy_template("RbacPermission/Template/Admin"), 0);
    assert_int_equal(kms_policy_template(""), 0);
    assert_int_equal(kms_policy_template(NULL), 0);
}

static void test_pattern_parse(void **state)
{
    struct kms_pattern p;
    char longer[KMS_ID_MAX + 8];

    (void)state;
    assert_true(kms_pattern_parse("*", &p));
    assert_int_equal(p.pt_kind, KMS_PAT_ALL);
    assert_true(kms_pattern_parse("key/*", &p));
    assert_int_equal(p.pt_kind, KMS_PAT_TYPE);
    assert_int_equal(p.pt_type, KMS_RES_KEY);
    assert_true(kms_pattern_parse("secret/*", &p));
    assert_int_equal(p.pt_type, KMS_RES_SECRET);
    assert_true(kms_pattern_parse("certificate/*", &p));
    assert_int_equal(p.pt_type, KMS_RES_CERT);
    assert_true(kms_pattern_parse("key/key-hzz63d9c8d3dfv8cv1234", &p));
    assert_int_equal(p.pt_kind, KMS_PAT_ONE);
    assert_string_equal(p.pt_name, "key-hzz63d9c8d3dfv8cv1234");
    assert_true(kms_pattern_parse("secret/db/prod+main=1@x.y-z_", &p));
    assert_string_equal(p.pt_name, "db/prod+main=1@x.y-z_");
    assert_true(kms_pattern_parse("certificate/9a28de48-8d8b-484d-a766-dec4", &p));
    assert_int_equal(p.pt_type, KMS_RES_CERT);

    /* No other forms: partial wildcards, empty names, aliases, ARNs, unknown types. */
    assert_false(kms_pattern_parse("key/abc*", &p));
    assert_false(kms_pattern_parse("key/*abc", &p));
    assert_false(kms_pattern_parse("key/**", &p));
    assert_false(kms_pattern_parse("**", &p));
    assert_false(kms_pattern_parse("key/", &p));
    assert_false(kms_pattern_parse("key", &p));
    assert_false(kms_pattern_parse("keys/*", &p));
    assert_false(kms_pattern_parse("Key/*", &p));
    assert_false(kms_pattern_parse("alias/*", &p));
    assert_false(kms_pattern_parse("alias/my-key", &p));
    assert_false(kms_pattern_parse("key/alias/my-key", &p));
    assert_false(kms_pattern_parse("key/acs:kms:cn-hangzhou:1:key/abc", &p));
    assert_false(kms_pattern_parse("acs:kms:cn-hangzhou:1:key/abc", &p));
    assert_false(kms_pattern_parse("key/a b", &p));
    assert_false(kms_pattern_parse("key/a\tb", &p));
    assert_false(kms_pattern_parse("secret/a:b", &p)); /* ':' is not a secret-name character */
    assert_false(kms_pattern_parse("secret/acs/x", &p));
    assert_false(kms_pattern_parse("network/*", &p));
    assert_false(kms_pattern_parse("", &p));
    assert_false(kms_pattern_parse(" *", &p));
    assert_false(kms_pattern_parse(NULL, &p));
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    memcpy(longer, "key/", 4);
    assert_false(kms_pattern_parse(longer, &p)); /* longer than any key id */
}

static void test_pattern_match(void **state)
{
    struct kms_pattern all, keys, key, secrets, secret, certs, cert;

    (void)state;
    assert_true(kms_pattern_parse("*", &all));
    assert_true(kms_pattern_parse("key/*", &keys));
    assert_true(kms_pattern_parse("key/k1", &key));
    assert_true(kms_pattern_parse("secret/*", &secrets));
    assert_true(kms_pattern_parse("secret/s1", &secret));
    assert_true(kms_pattern_parse("certificate/*", &certs));
    assert_true(kms_pattern_parse("certificate/c1", &cert));

    /* "*" is everything, access objects included. */
    assert_true(kms_pattern_match(&all, KMS_RES_KEY, "k1"));
    assert_true(kms_pattern_match(&all, KMS_RES_SECRET, NULL));
    assert_true(kms_pattern_match(&all, KMS_RES_ACCESS, NULL));
    /* A type wildcard is its type, known name or not, and never the access objects. */
    assert_true(kms_pattern_match(&keys, KMS_RES_KEY, "anything"));
    assert_true(kms_pattern_match(&keys, KMS_RES_KEY, NULL));
    assert_false(kms_pattern_match(&keys, KMS_RES_SECRET, "k1"));
    assert_false(kms_pattern_match(&keys, KMS_RES_ACCESS, NULL));
    assert_true(kms_pattern_match(&secrets, KMS_RES_SECRET, NULL));
    assert_false(kms_pattern_match(&secrets, KMS_RES_KEY, NULL));
    assert_true(kms_pattern_match(&certs, KMS_RES_CERT, "c9"));
    assert_false(kms_pattern_match(&certs, KMS_RES_KEY, "c9"));
    /* One name: exact, same type, and never an unknown name or the whole type. */
    assert_true(kms_pattern_match(&key, KMS_RES_KEY, "k1"));
    assert_false(kms_pattern_match(&key, KMS_RES_KEY, "k10"));
    assert_false(kms_pattern_match(&key, KMS_RES_KEY, "K1"));
    assert_false(kms_pattern_match(&key, KMS_RES_KEY, "k"));
    assert_false(kms_pattern_match(&key, KMS_RES_KEY, NULL));
    assert_false(kms_pattern_match(&key, KMS_RES_SECRET, "k1"));
    assert_true(kms_pattern_match(&secret, KMS_RES_SECRET, "s1"));
    assert_false(kms_pattern_match(&secret, KMS_RES_KEY, "s1"));
    assert_false(kms_pattern_match(&secret, KMS_RES_SECRET, NULL));
    assert_true(kms_pattern_match(&cert, KMS_RES_CERT, "c1"));
    assert_false(kms_pattern_match(&cert, KMS_RES_KEY, "c1"));
    assert_false(kms_pattern_match(&cert, KMS_RES_ACCESS, NULL));
}

static uint32_t ip(const char *s)
{
    uint32_t a = 0;

    assert_true(kms_ipv4_parse(s, &a));
    return a;
}

static void test_cidr_parse(void **state)
{
    struct kms_cidr c;

    (void)state;
    assert_true(kms_cidr_parse("192.168.1.7", &c)); /* a bare address is a /32 */
    assert_int_equal(c.cd_mask, 0xffffffffu);
    assert_int_equal(c.cd_addr, 0xc0a80107u);
    assert_true(kms_cidr_parse("192.168.1.7/32", &c));
    assert_int_equal(c.cd_mask, 0xffffffffu);
    assert_true(kms_cidr_parse("10.1.2.3/8", &c)); /* host bits are cleared */
    assert_int_equal(c.cd_addr, 0x0a000000u);
    assert_int_equal(c.cd_mask, 0xff000000u);
    assert_true(kms_cidr_parse("0.0.0.0/0", &c));
    assert_int_equal(c.cd_mask, 0);
    assert_int_equal(c.cd_addr, 0);
    assert_true(kms_cidr_parse("255.255.255.255/1", &c));
    assert_int_equal(c.cd_addr, 0x80000000u);
    assert_true(kms_cidr_parse("172.16.0.0/12", &c));
    assert_int_equal(c.cd_mask, 0xfff00000u);

    /* Refused: IPv6, partial or padded addresses, bad prefixes, stray characters. */
    assert_false(kms_cidr_parse("::1", &c));
    assert_false(kms_cidr_parse("::ffff:127.0.0.1", &c));
    assert_false(kms_cidr_parse("fe80::/10", &c));
    assert_false(kms_cidr_parse("10.0.0", &c));
    assert_false(kms_cidr_parse("10", &c));
    assert_false(kms_cidr_parse("256.0.0.1", &c));
    assert_false(kms_cidr_parse("010.0.0.1", &c));
    assert_false(kms_cidr_parse("10.0.0.1 ", &c));
    assert_false(kms_cidr_parse(" 10.0.0.1", &c));
    assert_false(kms_cidr_parse("10.0.0.1/", &c));
    assert_false(kms_cidr_parse("10.0.0.1/33", &c));
    assert_false(kms_cidr_parse("10.0.0.1/-1", &c));
    assert_false(kms_cidr_parse("10.0.0.1/+8", &c));
    assert_false(kms_cidr_parse("10.0.0.1/08", &c));
    assert_false(kms_cidr_parse("10.0.0.1/100", &c));
    assert_false(kms_cidr_parse("10.0.0.1/8/8", &c));
    assert_false(kms_cidr_parse("10.0.0.1/a", &c));
    assert_false(kms_cidr_parse("192.10.XX.XX", &c));
    assert_false(kms_cidr_parse("/8", &c));
    assert_false(kms_cidr_parse("", &c));
    assert_false(kms_cidr_parse(NULL, &c));
}

static void test_cidr_match(void **state)
{
    struct kms_cidr c;
    uint32_t a;

    (void)state;
    assert_true(kms_cidr_parse("127.0.0.0/8", &c));
    assert_true(kms_cidr_match(&c, ip("127.0.0.1")));
    assert_true(kms_cidr_match(&c, ip("127.255.255.255")));
    assert_false(kms_cidr_match(&c, ip("128.0.0.1")));
    assert_false(kms_cidr_match(&c, ip("126.255.255.255")));
    assert_true(kms_cidr_parse("127.0.0.1", &c));
    assert_true(kms_cidr_match(&c, ip("127.0.0.1")));
    assert_false(kms_cidr_match(&c, ip("127.0.0.2")));
    assert_true(kms_cidr_parse("0.0.0.0/0", &c));
    assert_true(kms_cidr_match(&c, ip("203.0.113.9")));
    assert_true(kms_cidr_match(&c, ip("0.0.0.0")));
    assert_true(kms_cidr_parse("10.0.0.0/31", &c));
    assert_true(kms_cidr_match(&c, ip("10.0.0.1")));
    assert_false(kms_cidr_match(&c, ip("10.0.0.2")));
    /* The peer address: IPv4 text only ("unknown" and IPv6 peers match no rule). */
    assert_false(kms_ipv4_parse("unknown", &a));
    assert_false(kms_ipv4_parse("::1", &a));
    assert_false(kms_ipv4_parse("", &a));
    assert_false(kms_ipv4_parse(NULL, &a));
}

static void test_rule_table_sorted(void **state)
{
    const struct kms_policy_rule *prev = kms_policy_rule_at(0), *r;
    size_t n = 1;

    (void)state;
    assert_non_null(prev);
    for (size_t i = 1; (r = kms_policy_rule_at(i)) != NULL; i++, n++) {
        assert_true(strcmp(prev->pr_action, r->pr_action) < 0);
        prev = r;
    }
    assert_int_equal(n, 99); /* every action of spec/actions.md I0.6 */
    assert_int_equal(kms_policy_init(), KMS_OK);
    kms_policy_shutdown();
}

static void test_rule_table_rows(void **state)
{
    (void)state;
    for (size_t i = 0; kms_policy_rule_at(i) != NULL; i++) {
        const struct kms_policy_rule *r = kms_policy_rule_at(i);
        bool needs_param = r->pr_kind == KMS_RULE_KEY || r->pr_kind == KMS_RULE_KEY_ALIAS ||
                           r->pr_kind == KMS_RULE_BLOB || r->pr_kind == KMS_RULE_SECRET ||
                           r->pr_kind == KMS_RULE_CERT || r->pr_kind == KMS_RULE_ALIAS_TARGET;

        assert_ptr_equal(kms_policy_rule_find(r->pr_action), r);
        /* "—" rows and only they have no template. */
        assert_int_equal(r->pr_template == 0, r->pr_kind == KMS_RULE_NONE);
        if (needs_param)
            assert_non_null(r->pr_param);
    }
    assert_null(kms_policy_rule_find("NoSuchAction"));
    assert_null(kms_policy_rule_find("encrypt"));
    assert_null(kms_policy_rule_find(""));
    assert_null(kms_policy_rule_find(NULL));
    assert_null(kms_policy_rule_find("KmsdTestAdvanceClock")); /* test hook: admin only */

    /* A few rows checked against the spec's table, one per kind of rule. */
    assert_int_equal(kms_policy_rule_find("Encrypt")->pr_template, KMS_TPL_KEY_USER);
    assert_int_equal(kms_policy_rule_find("Encrypt")->pr_kind, KMS_RULE_KEY_ALIAS);
    assert_int_equal(kms_policy_rule_find("Decrypt")->pr_kind, KMS_RULE_BLOB);
    assert_int_equal(kms_policy_rule_find("ReEncrypt")->pr_kind, KMS_RULE_REENCRYPT);
    assert_int_equal(kms_policy_rule_find("CreateKey")->pr_template, KMS_TPL_KEY_ADMIN);
    assert_int_equal(kms_policy_rule_find("CreateKey")->pr_kind, KMS_RULE_KEYS);
    assert_int_equal(kms_policy_rule_find("ListKeys")->pr_kind, KMS_RULE_KEYS);
    assert_int_equal(kms_policy_rule_find("ListAliasesByKeyId")->pr_kind, KMS_RULE_KEY);
    assert_int_equal(kms_policy_rule_find("ListAliasesByKeyId")->pr_template, KMS_TPL_KEY_USER);
    assert_int_equal(kms_policy_rule_find("UpdateRotationPolicy")->pr_kind, KMS_RULE_KEY);
    assert_int_equal(kms_policy_rule_find("DescribeKeyVersion")->pr_kind, KMS_RULE_KEY_ALIAS);
    assert_int_equal(kms_policy_rule_find("GetSecretValue")->pr_template, KMS_TPL_SECRET_USER);
    assert_int_equal(kms_policy_rule_find("CreateSecret")->pr_kind, KMS_RULE_SECRETS);
    assert_int_equal(kms_policy_rule_find("PutSecretValue")->pr_template, KMS_TPL_SECRET_ADMIN);
    assert_int_equal(kms_policy_rule_find("ListCertificates")->pr_kind, KMS_RULE_CERTS);
    assert_int_equal(kms_policy_rule_find("GetCertificate")->pr_kind, KMS_RULE_CERT);
    assert_int_equal(kms_policy_rule_find("CreatePolicy")->pr_template, KMS_TPL_ACCESS_ADMIN);
    assert_int_equal(kms_policy_rule_find("CreatePolicy")->pr_kind, KMS_RULE_ALL);
    assert_int_equal(kms_policy_rule_find("GetKmsInstance")->pr_kind, KMS_RULE_ALL);
    assert_int_equal(kms_policy_rule_find("DescribeRegions")->pr_kind, KMS_RULE_NONE);
    assert_int_equal(kms_policy_rule_find("GenerateRandom")->pr_kind, KMS_RULE_NONE);
    assert_int_equal(kms_policy_rule_find("TagResources")->pr_template, KMS_TPL_BY_TYPE);
    assert_int_equal(kms_policy_rule_find("UpdateAlias")->pr_kind, KMS_RULE_UPDATE_ALIAS);
    assert_int_equal(kms_policy_rule_find("ImportKeyMaterial")->pr_kind, KMS_RULE_IMPORT);
}

/* Every action the dispatcher serves has a row: a missing one would be denied to every access
 * point (default deny), which is a bug of the table, not a policy decision. */
static void test_dispatch_table_covered(void **state)
{
    const struct kms_action *a;
    size_t n = 0;

    (void)state;
    for (size_t i = 0; (a = kms_action_at(i)) != NULL; i++, n++) {
        if (kms_policy_rule_find(a->name) == NULL)
            fail_msg("action %s has no row in src/auth/policy.c's rule table", a->name);
    }
    assert_true(n >= 50);
}

/* A call as the dispatcher hands it to kms_authorize, with parameters from query text. */
struct fake_call {
    struct kms_call call;
    struct kms_request req;
    struct kms_config cfg;
};

static void fake_call_init(struct fake_call *f, const char *action, bool admin, const char *query)
{
    const char *dup = NULL;

    memset(f, 0, sizeof(*f));
    kms_config_defaults(&f->cfg);
    snprintf(f->req.peer_ip, sizeof(f->req.peer_ip), "127.0.0.1");
    f->call.req = &f->req;
    f->call.cfg = &f->cfg;
    f->call.action = action;
    f->call.principal.admin = admin;
    snprintf(f->call.principal.aap_name, sizeof(f->call.principal.aap_name), "%s",
             admin ? "" : "app");
    assert_int_equal(kms_params_parse(&f->call.params, query, strlen(query), KMS_PARAM_QUERY),
                     KMS_OK);
    assert_int_equal(kms_params_finish(&f->call.params, &dup), KMS_OK);
}

static void fake_call_free(struct fake_call *f)
{
    kms_params_free(&f->call.params);
    kms_buf_free(&f->call.detail);
}

/* kms_authorize's answer; *detail gets the parameter an error names ("" for none). */
static kms_err authorize(const char *action, bool admin, const char *query, char *detail,
                         size_t size)
{
    struct fake_call f;
    kms_err rc;

    fake_call_init(&f, action, admin, query);
    rc = kms_authorize(&f.call);
    snprintf(detail, size, "%s", f.call.detail.data ? f.call.detail.data : "");
    fake_call_free(&f);
    return rc;
}

static kms_err token_hook_invalid(struct kms_call *call, const char *token, char key_id[KMS_ID_MAX])
{
    (void)call;
    (void)key_id;
    assert_string_equal(token, "tok");
    return KMS_E_INVALID_IMPORT_TOKEN;
}

/* What is decided without reading any policy (no store is open in this test). */
static void test_authorize_without_store(void **state)
{
    char d[64];

    (void)state;
    assert_int_equal(kms_policy_init(), KMS_OK);
    /* Admin keys: everything, even actions without a row, with no parameter read. */
    assert_int_equal(authorize("Encrypt", true, "", d, sizeof(d)), KMS_OK);
    assert_int_equal(authorize("KmsdTestAdvanceClock", true, "", d, sizeof(d)), KMS_OK);
    assert_int_equal(authorize("NoSuchAction", true, "", d, sizeof(d)), KMS_OK);
    /* Access points: "—" actions pass, actions without a row are denied. */
    assert_int_equal(authorize("DescribeRegions", false, "", d, sizeof(d)), KMS_OK);
    assert_int_equal(authorize("GenerateRandom", false, "", d, sizeof(d)), KMS_OK);
    assert_int_equal(authorize("KmsdTestAdvanceClock", false, "", d, sizeof(d)),
                     KMS_E_NO_PERMISSION);
    assert_int_equal(authorize("NoSuchAction", false, "", d, sizeof(d)), KMS_E_NO_PERMISSION);
    assert_string_equal(d, "");
    /* The parameters that name resources are read first. */
    assert_int_equal(authorize("Encrypt", false, "Plaintext=aGk%3D", d, sizeof(d)),
                     KMS_E_MISSING_PARAMETER);
    assert_string_equal(d, "KeyId");
    assert_int_equal(authorize("DescribeSecret", false, "", d, sizeof(d)), KMS_E_MISSING_PARAMETER);
    assert_string_equal(d, "SecretName");
    assert_int_equal(authorize("GetCertificate", false, "", d, sizeof(d)), KMS_E_MISSING_PARAMETER);
    assert_string_equal(d, "CertificateId");
    assert_int_equal(authorize("DisableKey", false, "KeyId=alias/x", d, sizeof(d)),
                     KMS_E_UNSUPPORTED_ALIAS);
    assert_string_equal(d, "KeyId");
    assert_int_equal(authorize("Decrypt", false, "CiphertextBlob=%21%21", d, sizeof(d)),
                     KMS_E_INVALID_PARAMETER);
    assert_string_equal(d, "CiphertextBlob");
    assert_int_equal(authorize("Decrypt", false, "CiphertextBlob=AAAA", d, sizeof(d)),
                     KMS_E_INVALID_PARAMETER); /* Base64, but not a blob */
    assert_int_equal(authorize("ReEncrypt", false, "DestinationKeyId=k", d, sizeof(d)),
                     KMS_E_MISSING_PARAMETER);
    assert_string_equal(d, "CiphertextBlob");
    assert_int_equal(authorize("TagResource", false, "", d, sizeof(d)), KMS_E_MISSING_PARAMETER);
    assert_int_equal(authorize("TagResource", false, "KeyId=k&SecretName=s", d, sizeof(d)),
                     KMS_E_INVALID_PARAMETER);
    assert_int_equal(
        authorize("TagResources", false, "ResourceType=disk&ResourceId.1=k", d, sizeof(d)),
        KMS_E_INVALID_PARAMETER);
    assert_string_equal(d, "ResourceType");
    assert_int_equal(authorize("TagResources", false, "ResourceType=key", d, sizeof(d)),
                     KMS_E_MISSING_PARAMETER);
    assert_string_equal(d, "ResourceId.1");
    assert_int_equal(authorize("ListTagResources", false, "", d, sizeof(d)),
                     KMS_E_MISSING_PARAMETER);
    assert_int_equal(authorize("SetDeletionProtection", false, "", d, sizeof(d)),
                     KMS_E_MISSING_PARAMETER);
    assert_string_equal(d, "ProtectedResourceArn");
    assert_int_equal(
        authorize("SetDeletionProtection", false, "ProtectedResourceArn=k1", d, sizeof(d)),
        KMS_E_INVALID_PARAMETER);
    assert_int_equal(authorize("UpdateAlias", false, "KeyId=k", d, sizeof(d)),
                     KMS_E_MISSING_PARAMETER);
    assert_string_equal(d, "AliasName");
    /* ImportKeyMaterial without KeyId: only the token names the key. Nothing reads tokens
     * yet, so access points are denied; once BYOK installs a reader, its errors stand. */
    assert_int_equal(authorize("ImportKeyMaterial", false, "", d, sizeof(d)),
                     KMS_E_MISSING_PARAMETER);
    assert_string_equal(d, "ImportToken");
    assert_int_equal(authorize("ImportKeyMaterial", false, "ImportToken=tok", d, sizeof(d)),
                     KMS_E_NO_PERMISSION);
    kms_policy_set_import_token_hook(token_hook_invalid);
    assert_int_equal(authorize("ImportKeyMaterial", false, "ImportToken=tok", d, sizeof(d)),
                     KMS_E_INVALID_IMPORT_TOKEN);
    kms_policy_set_import_token_hook(NULL);
    kms_policy_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_pattern_parse),
        cmocka_unit_test(test_pattern_match),
        cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_cidr_match),
        cmocka_unit_test(test_rule_table_sorted),
        cmocka_unit_test(test_rule_table_rows),
        cmocka_unit_test(test_dispatch_table_covered),
        cmocka_unit_test(test_authorize_without_store),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
