"""Authorization (spec/actions.md I0, protocol.md §13): every request signed by an access point's
access key is checked against its AAP's policies -- the five templates against actions inside and
outside them, every resource pattern form, alias and ARN resolution, ciphertexts, Create/List
needing the wildcard, requests naming two keys, resources that do not exist (a 403 that says
nothing about existence), network rules by TCP peer address, changes taking effect at once, and
admin keys untouched. The same holds for V3-signed requests."""

import base64
import json
import os
import unittest

from kmsd import DEFAULT_CONFIG, Server, b64

TEMPLATE = "RbacPermission/Template/"
REGION, ACCOUNT = "cn-hangzhou", "1000000000000000"
ALL_FOUR = ("KeyAdministrator", "CryptoServiceKeyUser", "SecretAdministrator", "CryptoServiceSecretUser")


def key_arn(key_id, region=REGION, account=ACCOUNT):
    return "acs:kms:%s:%s:key/%s" % (region, account, key_id)


class AuthzBase(unittest.TestCase):
    config = DEFAULT_CONFIG

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(config=cls.config).start()
        cls.counter = 0
        # Two keys with aliases, made by the admin, shared by the tests of a class.
        cls.k1 = cls.srv.create_key(Description="k1")["KeyId"]
        cls.k2 = cls.srv.create_key(Description="k2")["KeyId"]
        cls.srv.ok("CreateAlias", AliasName="alias/authz-k1", KeyId=cls.k1)
        cls.srv.ok("CreateAlias", AliasName="alias/authz-k2", KeyId=cls.k2)
        cls.blob1 = cls.srv.ok("Encrypt", KeyId=cls.k1, Plaintext=b64(b"one"))["CiphertextBlob"]
        cls.blob2 = cls.srv.ok("Encrypt", KeyId=cls.k2, Plaintext=b64(b"two"))["CiphertextBlob"]

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        log = cls.srv.stderr_text()
        cls.srv.__exit__(None, None, None)
        if status != 0:
            raise AssertionError("kmsd exited with status %s:\n%s" % (status, log[-4000:]))

    @classmethod
    def name(cls, prefix):
        cls.counter += 1
        return "%s_%d" % (prefix, cls.counter)

    def policy(self, perms, resources, rules=None):
        name = self.name("policy")
        params = {"Name": name, "Permissions": json.dumps([TEMPLATE + p for p in perms]),
                  "Resources": json.dumps(list(resources))}
        if rules is not None:
            params["AccessControlRules"] = json.dumps({"NetworkRules": list(rules)})
        self.srv.ok("CreatePolicy", **params)
        return name

    def rule(self, *ips):
        name = self.name("rule")
        self.srv.ok("CreateNetworkRule", Name=name, Type="Private", SourcePrivateIp=json.dumps(list(ips)))
        return name

    def principal_for(self, policies):
        """An AccessKey AAP with these policies, and an access key of it."""
        aap = self.name("aap")
        self.srv.ok("CreateApplicationAccessPoint", Name=aap, Policies=json.dumps(policies),
                    AuthenticationMethod="AccessKey")
        r = self.srv.ok("CreateAccessKey", AapName=aap)
        return (r["AccessKeyId"], r["AccessKeySecret"])

    def principal(self, perms, resources, rules=None):
        return self.principal_for([self.policy(perms, resources, rules)])

    def call(self, ak, action, **params):
        return self.srv.call(action, access_key=ak, **params)

    def allowed(self, ak, action, **params):
        r = self.call(ak, action, **params)
        self.assertEqual(r.status, 200, "%s should be allowed: %r" % (action, r))
        return r.json

    def denied(self, ak, action, **params):
        r = self.call(ak, action, **params)
        self.assertEqual((r.status, r.code), (403, "Forbidden.NoPermission"), "%s: %r" % (action, r))
        self.assertEqual(r.json["Message"], "This operation is forbidden by permission system.")
        return r

    def not_denied(self, ak, action, status, code, **params):
        """Authorized, then the action's own answer."""
        r = self.call(ak, action, **params)
        self.assertEqual((r.status, r.code), (status, code), "%s: %r" % (action, r))
        return r


def body_without_request_id(r):
    return {k: v for k, v in r.json.items() if k != "RequestId"}


def forged_blob(blob):
    """The blob with its KeyVersionId replaced by one kmsd never made."""
    raw = bytearray(base64.b64decode(blob))
    raw[2:18] = os.urandom(16)
    return base64.b64encode(bytes(raw)).decode()


class TemplateTest(AuthzBase):
    def test_crypto_service_key_user(self):
        ak = self.principal(["CryptoServiceKeyUser"], ["*"])
        version = self.srv.ok("DescribeKey", KeyId=self.k1)["KeyMetadata"]["PrimaryKeyVersion"]
        self.allowed(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.assertEqual(self.allowed(ak, "Decrypt", CiphertextBlob=self.blob1)["Plaintext"], b64(b"one"))
        self.allowed(ak, "GenerateDataKey", KeyId=self.k1)
        self.allowed(ak, "GenerateDataKeyWithoutPlaintext", KeyId=self.k1)
        self.allowed(ak, "DescribeKey", KeyId=self.k1)
        self.allowed(ak, "ListKeyVersions", KeyId=self.k1)
        self.allowed(ak, "DescribeKeyVersion", KeyId=self.k1, KeyVersionId=version)
        self.allowed(ak, "ListAliasesByKeyId", KeyId=self.k1)
        self.allowed(ak, "ListResourceTags", KeyId=self.k1)
        # Outside it: key administration, listing, tagging, the access objects.
        self.denied(ak, "CreateKey")
        self.denied(ak, "ListKeys")
        self.denied(ak, "ListAliases")
        self.denied(ak, "DisableKey", KeyId=self.k1)
        self.denied(ak, "UpdateKeyDescription", KeyId=self.k1, Description="x")
        self.denied(ak, "CreateAlias", KeyId=self.k1, AliasName="alias/nope")
        self.denied(ak, "TagResource", KeyId=self.k1, Tags='[{"TagKey":"a","TagValue":"b"}]')
        self.denied(ak, "CreateKeyVersion", KeyId=self.k1)
        self.denied(ak, "UpdateRotationPolicy", KeyId=self.k1, EnableAutomaticRotation="false")
        self.denied(ak, "ScheduleKeyDeletion", KeyId=self.k1)
        self.denied(ak, "ListNetworkRules")
        self.denied(ak, "TagResource", SecretName="s1", Tags='[{"TagKey":"a","TagValue":"b"}]')

    def test_key_administrator(self):
        ak = self.principal(["KeyAdministrator"], ["*"])
        key = self.allowed(ak, "CreateKey", Description="made by an AAP")["KeyMetadata"]["KeyId"]
        self.assertIn(key, [k["KeyId"] for k in self.allowed(ak, "ListKeys", PageSize=100)["Keys"]["Key"]])
        self.allowed(ak, "UpdateKeyDescription", KeyId=key, Description="renamed")
        self.allowed(ak, "DisableKey", KeyId=key)
        self.allowed(ak, "EnableKey", KeyId=key)
        self.allowed(ak, "CreateAlias", KeyId=key, AliasName="alias/" + self.name("ka"))
        self.allowed(ak, "ListAliases")
        self.allowed(ak, "TagResource", KeyId=key, Tags='[{"TagKey":"team","TagValue":"x"}]')
        self.allowed(ak, "UntagResource", KeyId=key, TagKeys='["team"]')
        self.allowed(ak, "CreateKeyVersion", KeyId=key)
        self.allowed(ak, "UpdateRotationPolicy", KeyId=key, EnableAutomaticRotation="false")
        self.allowed(ak, "SetDeletionProtection", ProtectedResourceArn=key_arn(key), EnableDeletionProtection="false")
        self.allowed(ak, "ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7)
        self.allowed(ak, "CancelKeyDeletion", KeyId=key)
        # Certificates belong to KeyAdministrator: authorized, then not found on this server.
        self.not_denied(ak, "TagResource", 404, "Certificate.NotFound", CertificateId="c1",
                        Tags='[{"TagKey":"a","TagValue":"b"}]')
        # Outside it: using keys, reading them as a user, secrets, the access objects.
        self.denied(ak, "Encrypt", KeyId=key, Plaintext=b64(b"x"))
        self.denied(ak, "Decrypt", CiphertextBlob=self.blob1)
        self.denied(ak, "GenerateDataKey", KeyId=key)
        self.denied(ak, "DescribeKey", KeyId=key)
        self.denied(ak, "ListKeyVersions", KeyId=key)
        self.denied(ak, "ListResourceTags", KeyId=key)
        self.denied(ak, "ListAliasesByKeyId", KeyId=key)
        self.denied(ak, "TagResource", SecretName="s1", Tags='[{"TagKey":"a","TagValue":"b"}]')
        self.denied(ak, "CreatePolicy", Name="x", Permissions='["%sKeyAdministrator"]' % TEMPLATE, Resources='["*"]')

    def test_secret_administrator(self):
        ak = self.principal(["SecretAdministrator"], ["*"])
        # Secret tags are SecretAdministrator's: authorized, then no such secret on this branch.
        self.not_denied(ak, "TagResource", 404, "Forbidden.ResourceNotFound", SecretName="s1",
                        Tags='[{"TagKey":"a","TagValue":"b"}]')
        self.not_denied(ak, "UntagResource", 404, "Forbidden.ResourceNotFound", SecretName="s1", TagKeys='["a"]')
        self.denied(ak, "TagResource", KeyId=self.k1, Tags='[{"TagKey":"a","TagValue":"b"}]')
        self.denied(ak, "TagResource", CertificateId="c1", Tags='[{"TagKey":"a","TagValue":"b"}]')
        self.denied(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.denied(ak, "CreateKey")
        self.denied(ak, "ListAccessKeys")

    def test_crypto_service_secret_user(self):
        ak = self.principal(["CryptoServiceSecretUser"], ["*"])
        # Reading secrets only: nothing with keys, tags or access objects.
        self.denied(ak, "TagResource", SecretName="s1", Tags='[{"TagKey":"a","TagValue":"b"}]')
        self.denied(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.denied(ak, "DescribeKey", KeyId=self.k1)
        self.denied(ak, "ListKeys")
        self.denied(ak, "ListPolicies")
        self.allowed(ak, "DescribeRegions")

    def test_access_administrator(self):
        ak = self.principal(["AccessAdministrator"], ["*"])
        rule = self.name("rule")
        self.allowed(ak, "CreateNetworkRule", Name=rule, Type="Private", SourcePrivateIp='["10.0.0.0/8"]')
        self.allowed(ak, "DescribeNetworkRule", Name=rule)
        self.allowed(ak, "ListNetworkRules")
        policy = self.name("policy")
        self.allowed(ak, "CreatePolicy", Name=policy, Permissions='["%sKeyAdministrator"]' % TEMPLATE,
                     Resources='["key/*"]')
        self.allowed(ak, "ListPolicies")
        aap = self.name("aap")
        self.allowed(ak, "CreateApplicationAccessPoint", Name=aap, Policies=json.dumps([policy]),
                     AuthenticationMethod="AccessKey")
        self.allowed(ak, "ListApplicationAccessPoints")
        created = self.allowed(ak, "CreateAccessKey", AapName=aap)
        self.allowed(ak, "ListAccessKeys")
        r = self.srv.call_v3("UpdateAccessKey", access_key=ak, AccessKeyId=created["AccessKeyId"], Status="Disabled")
        self.assertEqual(r.status, 200, r)
        self.allowed(ak, "ListClientKeys")
        # ... and nothing with keys.
        self.denied(ak, "CreateKey")
        self.denied(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.denied(ak, "DescribeKey", KeyId=self.k1)

    def test_access_administrator_needs_star(self):
        ak = self.principal(["AccessAdministrator"], ["key/*", "secret/*", "certificate/*"])
        self.denied(ak, "ListNetworkRules")
        self.denied(ak, "CreateNetworkRule", Name=self.name("r"), Type="Private", SourcePrivateIp='["10.0.0.1"]')
        self.denied(ak, "ListAccessKeys")

    def test_template_free_actions_need_no_policy_match(self):
        ak = self.principal(["CryptoServiceSecretUser"], ["secret/only-this"], rules=[self.rule("10.9.9.9")])
        self.allowed(ak, "DescribeRegions")
        self.allowed(ak, "DescribeService")
        self.denied(ak, "ListKeys")

    def test_default_deny(self):
        # Whatever the policies do not grant is denied, including actions with no row at all.
        ak = self.principal(["CryptoServiceKeyUser"], ["key/" + self.k1])
        self.denied(ak, "KmsdTestAdvanceClock", Seconds=1)
        self.denied(ak, "Encrypt", KeyId=self.k2, Plaintext=b64(b"x"))
        self.denied(ak, "CreateKey")
        # The admin key runs the same actions.
        self.assertEqual(self.srv.call("KmsdTestAdvanceClock", Seconds=1).status, 200)

    def test_the_four_templates_of_the_conformance_run_and_a_policy_lacking_them(self):
        full = self.principal(list(ALL_FOUR), ["*"])
        lacking = self.principal(["AccessAdministrator"], ["*"])
        key = self.allowed(full, "CreateKey")["KeyMetadata"]["KeyId"]
        blob = self.allowed(full, "Encrypt", KeyId=key, Plaintext=b64(b"p"))["CiphertextBlob"]
        alias = "alias/" + self.name("conf")
        calls = [
            ("CreateKey", {}),
            ("DescribeKey", {"KeyId": key}),
            ("ListKeys", {}),
            ("Encrypt", {"KeyId": key, "Plaintext": b64(b"p")}),
            ("Decrypt", {"CiphertextBlob": blob}),
            ("GenerateDataKey", {"KeyId": key}),
            ("CreateAlias", {"KeyId": key, "AliasName": alias}),
            ("ListAliases", {}),
            ("UpdateAlias", {"AliasName": alias, "KeyId": key}),
            ("TagResource", {"KeyId": key, "Tags": '[{"TagKey":"k","TagValue":"v"}]'}),
            ("ListResourceTags", {"KeyId": key}),
            ("CreateKeyVersion", {"KeyId": key}),
            ("ListKeyVersions", {"KeyId": key}),
            ("DeleteAlias", {"AliasName": alias}),
            ("DisableKey", {"KeyId": key}),
        ]
        for action, params in calls:
            with self.subTest(action=action):
                self.denied(lacking, action, **params)
                r = self.srv.call_v3(action, access_key=lacking, **params)
                self.assertEqual((r.status, r.code), (403, "Forbidden.NoPermission"), r)
                self.allowed(full, action, **params)


class PatternTest(AuthzBase):
    def test_exact_key_id(self):
        ak = self.principal(["CryptoServiceKeyUser"], ["key/" + self.k1])
        self.allowed(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.allowed(ak, "DescribeKey", KeyId=self.k1)
        self.denied(ak, "Encrypt", KeyId=self.k2, Plaintext=b64(b"x"))
        self.denied(ak, "DescribeKey", KeyId=self.k2)
        self.denied(ak, "DescribeKey", KeyId=self.k1.upper())  # ids compare exactly

    def test_key_wildcard(self):
        ak = self.principal(["CryptoServiceKeyUser"], ["key/*"])
        for key in (self.k1, self.k2):
            self.allowed(ak, "Encrypt", KeyId=key, Plaintext=b64(b"x"))
        # key/* is keys only.
        denied = self.principal(["KeyAdministrator"], ["key/*"])
        self.denied(denied, "TagResource", CertificateId="c1", Tags='[{"TagKey":"a","TagValue":"b"}]')

    def test_star(self):
        ak = self.principal(["CryptoServiceKeyUser", "KeyAdministrator"], ["*"])
        self.allowed(ak, "Encrypt", KeyId=self.k2, Plaintext=b64(b"x"))
        self.allowed(ak, "ListKeys")
        self.not_denied(ak, "TagResource", 404, "Certificate.NotFound", CertificateId="c9",
                        Tags='[{"TagKey":"a","TagValue":"b"}]')

    def test_secret_patterns(self):
        tags = '[{"TagKey":"a","TagValue":"b"}]'
        one = self.principal(["SecretAdministrator"], ["secret/db-prod"])
        self.not_denied(one, "TagResource", 404, "Forbidden.ResourceNotFound", SecretName="db-prod", Tags=tags)
        self.not_denied(one, "TagResource", 404, "Forbidden.ResourceNotFound",
                        SecretName="acs:kms:%s:%s:secret/db-prod" % (REGION, ACCOUNT), Tags=tags)
        self.denied(one, "TagResource", SecretName="db-test", Tags=tags)
        self.denied(one, "TagResource", SecretName="db-prod2", Tags=tags)
        self.denied(one, "TagResource", SecretName="acs:kms:cn-beijing:%s:secret/db-prod" % ACCOUNT, Tags=tags)
        self.denied(one, "TagResource", KeyId=self.k1, Tags=tags)
        every = self.principal(["SecretAdministrator"], ["secret/*"])
        self.not_denied(every, "TagResource", 404, "Forbidden.ResourceNotFound", SecretName="anything", Tags=tags)
        # A secret ARN of another region names no secret here: only a wildcard covers it.
        self.not_denied(every, "TagResource", 404, "Forbidden.ResourceNotFound",
                        SecretName="acs:kms:cn-beijing:%s:secret/db-prod" % ACCOUNT, Tags=tags)
        self.denied(every, "TagResource", KeyId=self.k1, Tags=tags)
        self.denied(every, "TagResource", CertificateId="c1", Tags=tags)

    def test_certificate_patterns(self):
        tags = '[{"TagKey":"a","TagValue":"b"}]'
        one = self.principal(["KeyAdministrator"], ["certificate/cert-1"])
        self.not_denied(one, "TagResource", 404, "Certificate.NotFound", CertificateId="cert-1", Tags=tags)
        self.denied(one, "TagResource", CertificateId="cert-2", Tags=tags)
        self.denied(one, "TagResource", KeyId=self.k1, Tags=tags)
        every = self.principal(["KeyAdministrator"], ["certificate/*"])
        self.not_denied(every, "UntagResource", 404, "Certificate.NotFound", CertificateId="cert-2", TagKeys='["a"]')
        self.denied(every, "TagResource", KeyId=self.k1, Tags=tags)

    def test_template_and_pattern_must_come_from_one_policy(self):
        # Policy A: the template on other keys; policy B: another template on k1. Neither grants
        # CryptoServiceKeyUser on k1.
        a = self.policy(["CryptoServiceKeyUser"], ["key/" + self.k2])
        b = self.policy(["KeyAdministrator"], ["key/" + self.k1])
        ak = self.principal_for([a, b])
        self.denied(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.allowed(ak, "Encrypt", KeyId=self.k2, Plaintext=b64(b"x"))
        self.allowed(ak, "UpdateKeyDescription", KeyId=self.k1, Description="k1")


class ResolutionTest(AuthzBase):
    def test_alias_resolved_to_its_key(self):
        ak = self.principal(["CryptoServiceKeyUser"], ["key/" + self.k1])
        r = self.allowed(ak, "Encrypt", KeyId="alias/authz-k1", Plaintext=b64(b"x"))
        self.assertEqual(r["KeyId"], self.k1)
        self.allowed(ak, "DescribeKey", KeyId="alias/authz-k1")
        self.denied(ak, "Encrypt", KeyId="alias/authz-k2", Plaintext=b64(b"x"))
        self.denied(ak, "DescribeKey", KeyId="alias/authz-k2")

    def test_unbound_alias_and_alias_where_none_is_accepted(self):
        ak = self.principal(["CryptoServiceKeyUser"], ["key/" + self.k1])
        # Resolution comes first (I0.3): an alias bound to no key is AliasNotFound.
        r = self.call(ak, "Encrypt", KeyId="alias/authz-none", Plaintext=b64(b"x"))
        self.assertEqual((r.status, r.code), (404, "Forbidden.AliasNotFound"), r)
        # Actions that take no alias refuse one before anything else.
        admin = self.principal(["KeyAdministrator"], ["key/" + self.k1])
        r = self.call(admin, "DisableKey", KeyId="alias/authz-k1")
        self.assertEqual((r.status, r.code), (400, "Unsupported.Alias"), r)
        r = self.call(ak, "ListResourceTags", KeyId="alias/authz-k2")
        self.assertEqual((r.status, r.code), (400, "Unsupported.Alias"), r)

    def test_alias_moved_to_another_key(self):
        alias = "alias/" + self.name("moving")
        self.srv.ok("CreateAlias", AliasName=alias, KeyId=self.k1)
        ak = self.principal(["CryptoServiceKeyUser"], ["key/" + self.k1])
        self.allowed(ak, "Encrypt", KeyId=alias, Plaintext=b64(b"x"))
        self.srv.ok("UpdateAlias", AliasName=alias, KeyId=self.k2)
        self.denied(ak, "Encrypt", KeyId=alias, Plaintext=b64(b"x"))

    def test_arn_forms(self):
        ak = self.principal(["CryptoServiceKeyUser"], ["key/" + self.k1])
        self.allowed(ak, "Encrypt", KeyId=key_arn(self.k1), Plaintext=b64(b"x"))
        self.denied(ak, "Encrypt", KeyId=key_arn(self.k2), Plaintext=b64(b"x"))
        # An ARN of another region or account names no key here: only wildcards reach the
        # handler's KeyNotFound.
        self.denied(ak, "Encrypt", KeyId=key_arn(self.k1, region="cn-beijing"), Plaintext=b64(b"x"))
        self.denied(ak, "Encrypt", KeyId=key_arn(self.k1, account="999"), Plaintext=b64(b"x"))
        every = self.principal(["CryptoServiceKeyUser"], ["key/*"])
        self.not_denied(every, "Encrypt", 404, "Forbidden.KeyNotFound", KeyId=key_arn(self.k1, region="cn-beijing"),
                        Plaintext=b64(b"x"))
        admin = self.principal(["KeyAdministrator"], ["key/" + self.k1])
        self.allowed(admin, "SetDeletionProtection", ProtectedResourceArn=key_arn(self.k1),
                     EnableDeletionProtection="false")
        self.denied(admin, "SetDeletionProtection", ProtectedResourceArn=key_arn(self.k2),
                    EnableDeletionProtection="false")
        self.denied(admin, "SetDeletionProtection", KeyId=self.k2, EnableDeletionProtection="false")

    def test_ciphertext_names_its_key(self):
        ak = self.principal(["CryptoServiceKeyUser"], ["key/" + self.k1])
        self.assertEqual(self.allowed(ak, "Decrypt", CiphertextBlob=self.blob1)["KeyId"], self.k1)
        self.denied(ak, "Decrypt", CiphertextBlob=self.blob2)
        for bad in ("bm90IGEgYmxvYg==", "!!!", "AAAA"):
            r = self.call(ak, "Decrypt", CiphertextBlob=bad)
            self.assertEqual((r.status, r.code), (400, "InvalidParameter"), r)
        r = self.call(ak, "Decrypt")
        self.assertEqual((r.status, r.code), (400, "MissingParameter"), r)
        # A blob of a version kmsd never made: only a wildcard can match, and the caller it
        # lets through learns the blob is not valid (a destroyed key's blob would be a 404).
        forged = forged_blob(self.blob1)
        self.denied(ak, "Decrypt", CiphertextBlob=forged)
        every = self.principal(["CryptoServiceKeyUser"], ["key/*"])
        self.not_denied(every, "Decrypt", 400, "InvalidParameter", CiphertextBlob=forged)

    def test_create_and_list_need_the_wildcard(self):
        one = self.principal(["KeyAdministrator"], ["key/" + self.k1])
        self.denied(one, "CreateKey")
        self.denied(one, "ListKeys")
        self.denied(one, "ListAliases")
        self.allowed(one, "UpdateKeyDescription", KeyId=self.k1, Description="k1")
        every = self.principal(["KeyAdministrator"], ["key/*"])
        self.allowed(every, "CreateKey")
        self.allowed(every, "ListKeys")
        self.allowed(every, "ListAliases")
        # Listing the parts of one key is authorized on that key.
        user = self.principal(["CryptoServiceKeyUser"], ["key/" + self.k1])
        self.allowed(user, "ListKeyVersions", KeyId=self.k1)
        self.allowed(user, "ListAliasesByKeyId", KeyId=self.k1)
        self.denied(user, "ListAliasesByKeyId", KeyId=self.k2)

    def test_two_keys_both_needed(self):
        alias = "alias/" + self.name("two")
        self.srv.ok("CreateAlias", AliasName=alias, KeyId=self.k1)
        only1 = self.principal(["KeyAdministrator"], ["key/" + self.k1])
        only2 = self.principal(["KeyAdministrator"], ["key/" + self.k2])
        self.denied(only1, "UpdateAlias", AliasName=alias, KeyId=self.k2)
        self.denied(only2, "UpdateAlias", AliasName=alias, KeyId=self.k2)
        one_policy = self.principal(["KeyAdministrator"], ["key/" + self.k1, "key/" + self.k2])
        self.allowed(one_policy, "UpdateAlias", AliasName=alias, KeyId=self.k2)
        two_policies = self.principal_for([self.policy(["KeyAdministrator"], ["key/" + self.k1]),
                                           self.policy(["KeyAdministrator"], ["key/" + self.k2])])
        self.allowed(two_policies, "UpdateAlias", AliasName=alias, KeyId=self.k1)
        # DeleteAlias needs the key the alias names now (k1).
        self.denied(only2, "DeleteAlias", AliasName=alias)
        self.allowed(only1, "DeleteAlias", AliasName=alias)
        r = self.call(only1, "DeleteAlias", AliasName=alias)
        self.assertEqual((r.status, r.code), (404, "Forbidden.AliasNotFound"), r)

    def test_nonexistent_key_says_nothing_to_others(self):
        missing = "00000000-0000-4000-8000-0000000ve7e1"
        other = self.principal(["CryptoServiceKeyUser"], ["key/" + self.k1])
        # The same 403 body for a key that exists and one that does not.
        exists = self.denied(other, "Encrypt", KeyId=self.k2, Plaintext=b64(b"x"))
        absent = self.denied(other, "Encrypt", KeyId=missing, Plaintext=b64(b"x"))
        self.assertEqual(body_without_request_id(exists), body_without_request_id(absent))
        self.assertEqual(exists.headers.get("Content-Length"), absent.headers.get("Content-Length"))
        self.assertNotEqual(exists.json["RequestId"], absent.json["RequestId"])
        exists_v3 = self.srv.call_v3("DescribeKey", access_key=other, KeyId=self.k2)
        absent_v3 = self.srv.call_v3("DescribeKey", access_key=other, KeyId=missing)
        self.assertEqual(body_without_request_id(exists_v3), body_without_request_id(absent_v3))
        # Callers whose patterns match the name learn it does not exist.
        every = self.principal(["CryptoServiceKeyUser"], ["key/*"])
        self.not_denied(every, "Encrypt", 404, "Forbidden.KeyNotFound", KeyId=missing, Plaintext=b64(b"x"))
        named = self.principal(["CryptoServiceKeyUser"], ["key/" + missing])
        self.not_denied(named, "DescribeKey", 404, "Forbidden.KeyNotFound", KeyId=missing)

    def test_missing_resource_parameter(self):
        ak = self.principal(["CryptoServiceKeyUser"], ["key/*"])
        r = self.call(ak, "Encrypt", Plaintext=b64(b"x"))
        self.assertEqual((r.status, r.code), (400, "MissingParameter"), r)
        self.assertIn("KeyId", r.json["Message"])


class NetworkRuleTest(AuthzBase):
    def test_rule_excluding_loopback_denies(self):
        ak = self.principal(["CryptoServiceKeyUser"], ["*"], rules=[self.rule("10.0.0.0/8", "192.168.1.1")])
        self.denied(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        r = self.srv.call_v3("DescribeKey", access_key=ak, KeyId=self.k1)
        self.assertEqual((r.status, r.code), (403, "Forbidden.NoPermission"), r)

    def test_rule_including_loopback_allows(self):
        for ips in (("127.0.0.0/8",), ("127.0.0.1",), ("127.0.0.1/32",), ("10.0.0.0/8", "127.0.0.0/24"),
                    ("0.0.0.0/0",)):
            with self.subTest(ips=ips):
                ak = self.principal(["CryptoServiceKeyUser"], ["*"], rules=[self.rule(*ips)])
                self.allowed(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))

    def test_any_rule_of_a_policy_suffices(self):
        ak = self.principal(["CryptoServiceKeyUser"], ["*"],
                            rules=[self.rule("10.0.0.0/8"), self.rule("127.0.0.1")])
        self.allowed(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))

    def test_policy_without_rules_applies_from_anywhere(self):
        ak = self.principal(["CryptoServiceKeyUser"], ["*"], rules=[])
        self.allowed(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))

    def test_rules_limit_only_their_policy(self):
        far = self.policy(["CryptoServiceKeyUser"], ["key/" + self.k2], rules=[self.rule("10.0.0.0/8")])
        near = self.policy(["CryptoServiceKeyUser"], ["key/" + self.k1], rules=[self.rule("127.0.0.1")])
        ak = self.principal_for([far, near])
        self.allowed(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.denied(ak, "Encrypt", KeyId=self.k2, Plaintext=b64(b"x"))

    def test_rule_changes_take_effect_at_once(self):
        rule = self.rule("127.0.0.1")
        ak = self.principal(["CryptoServiceKeyUser"], ["*"], rules=[rule])
        self.allowed(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.srv.ok("UpdateNetworkRule", Name=rule, SourcePrivateIp='["10.1.2.3"]')
        self.denied(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.srv.ok("UpdateNetworkRule", Name=rule, SourcePrivateIp="127.0.0.0/8")
        self.allowed(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))


class ChangeTest(AuthzBase):
    def test_policy_and_aap_changes_take_effect_at_once(self):
        policy = self.policy(["CryptoServiceKeyUser"], ["key/" + self.k1])
        ak = self.principal_for([policy])
        self.allowed(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.srv.ok("UpdatePolicy", Name=policy, Resources=json.dumps(["key/" + self.k2]))
        self.denied(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.allowed(ak, "Encrypt", KeyId=self.k2, Plaintext=b64(b"x"))
        self.srv.ok("UpdatePolicy", Name=policy, Permissions='["%sKeyAdministrator"]' % TEMPLATE)
        self.denied(ak, "Encrypt", KeyId=self.k2, Plaintext=b64(b"x"))
        # Swapping the AAP's policies.
        aap = self.srv.ok("ListAccessKeys", PageSize=100)["AccessKeys"]["AccessKey"]
        aap_name = [k["AapName"] for k in aap if k["AccessKeyId"] == ak[0]][0]
        other = self.policy(["CryptoServiceKeyUser"], ["*"])
        self.srv.ok("UpdateApplicationAccessPoint", Name=aap_name, Policies=json.dumps([other]))
        self.allowed(ak, "Encrypt", KeyId=self.k2, Plaintext=b64(b"x"))

    def test_disabled_and_deleted_access_keys(self):
        ak = self.principal(["CryptoServiceKeyUser"], ["*"])
        self.allowed(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.assertEqual(self.srv.call_v3("UpdateAccessKey", AccessKeyId=ak[0], Status="Disabled").status, 200)
        r = self.call(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.assertEqual((r.status, r.code), (403, "Forbidden.AccessKey"), r)
        self.assertEqual(self.srv.call_v3("UpdateAccessKey", AccessKeyId=ak[0], Status="Enabled").status, 200)
        self.allowed(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.assertEqual(self.srv.call_v3("DeleteAccessKey", AccessKeyId=ak[0]).status, 200)
        r = self.call(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.assertEqual((r.status, r.code), (404, "InvalidAccessKeyId.NotFound"), r)

    def test_admin_unaffected(self):
        # Rules, policies and AAPs that deny everything to access points change nothing for admin.
        self.principal(["CryptoServiceSecretUser"], ["secret/x"], rules=[self.rule("10.0.0.1")])
        self.srv.ok("Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.srv.ok("ListKeys")
        self.srv.ok("CreateNetworkRule", Name=self.name("r"), Type="Private", SourcePrivateIp="10.0.0.1")
        r = self.srv.call_v3("DescribeKey", KeyId=self.k2)
        self.assertEqual(r.status, 200, r)

    def test_survives_restart(self):
        ak = self.principal(["CryptoServiceKeyUser"], ["key/" + self.k1])
        self.srv.restart()
        self.allowed(ak, "Encrypt", KeyId=self.k1, Plaintext=b64(b"x"))
        self.denied(ak, "Encrypt", KeyId=self.k2, Plaintext=b64(b"x"))


if __name__ == "__main__":
    unittest.main()
