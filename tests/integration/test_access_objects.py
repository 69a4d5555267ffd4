"""The access objects of spec/actions.md I1-I5: network rules, permission policies, application
access points (AAPs), client keys and access keys -- every action, its exact response shape
(including the members that are JSON text inside a string), every error path, and the life of
an access key (shown once, stored sealed, disabled and deleted from the next request on).
Authorization itself is in test_access_control.py."""

import base64
import calendar
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from kmsd import ADMIN_ID, DEFAULT_CONFIG, Server, b64

TEMPLATE = "RbacPermission/Template/"
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def parse_time(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


class AccessBase(unittest.TestCase):
    config = DEFAULT_CONFIG

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(config=cls.config).start()
        cls.counter = 0

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        log = cls.srv.stderr_text()
        cls.srv.__exit__(None, None, None)
        if status != 0:
            raise AssertionError("kmsd exited with status %s:\n%s" % (status, log[-4000:]))

    def name(self, prefix):
        type(self).counter += 1
        return "%s_%d" % (prefix, type(self).counter)

    def err(self, r, status, code, message_part=None):
        self.assertEqual((r.status, r.code), (status, code), r)
        self.assertTrue(r.json.get("RequestId"), r)
        if message_part is not None:
            self.assertIn(message_part, r.json["Message"], r)

    def ok(self, action, **params):
        return self.srv.ok(action, **params)

    def rule(self, ips='["127.0.0.1"]', **params):
        name = self.name("rule")
        self.ok("CreateNetworkRule", Name=name, Type="Private", SourcePrivateIp=ips, **params)
        return name

    def policy(self, perms=("CryptoServiceKeyUser",), resources=("key/*",), rules=None, **params):
        name = self.name("policy")
        extra = {}
        if rules is not None:
            extra["AccessControlRules"] = json.dumps({"NetworkRules": list(rules)})
        self.ok("CreatePolicy", Name=name, Permissions=json.dumps([TEMPLATE + p for p in perms]),
                Resources=json.dumps(list(resources)), **extra, **params)
        return name

    def aap(self, policies=None, method=None, **params):
        name = self.name("aap")
        if policies is None:
            policies = [self.policy()]
        extra = {"AuthenticationMethod": method} if method else {}
        self.ok("CreateApplicationAccessPoint", Name=name, Policies=json.dumps(policies), **extra,
                **params)
        return name


class NetworkRuleTest(AccessBase):
    def test_create_shape(self):
        r = self.ok("CreateNetworkRule", Name="rule_shape", Type="Private",
                    SourcePrivateIp='["192.10.1.2","192.168.0.0/24"]', Description="office")
        self.assertEqual(set(r), {"RequestId", "Arn", "Name", "Type", "SourcePrivateIp",
                                  "Description"})
        self.assertEqual(r["Arn"], "acs:kms:cn-hangzhou:1000000000000000:network/rule_shape")
        self.assertEqual(r["Name"], "rule_shape")
        self.assertEqual(r["Type"], "Private")
        # Echoed as a string holding JSON, not as an array [go-sdk].
        self.assertIsInstance(r["SourcePrivateIp"], str)
        self.assertEqual(json.loads(r["SourcePrivateIp"]), ["192.10.1.2", "192.168.0.0/24"])
        self.assertEqual(r["Description"], "office")

    def test_describe_shape(self):
        name = self.rule('["10.0.0.0/8"]', Description="d1")
        r = self.ok("DescribeNetworkRule", Name=name)
        self.assertEqual(set(r), {"RequestId", "Arn", "Type", "SourcePrivateIp", "Description"})
        self.assertEqual(r["Arn"], "acs:kms:cn-hangzhou:1000000000000000:network/" + name)
        self.assertEqual(r["Type"], "Private")
        self.assertEqual(r["SourcePrivateIp"], '["10.0.0.0/8"]')
        self.assertEqual(r["Description"], "d1")

    def test_comma_separated_and_defaults(self):
        name = self.name("rule")
        r = self.ok("CreateNetworkRule", Name=name, Type="Private",
                    SourcePrivateIp="10.0.0.1, 172.16.0.0/12 ,192.168.1.0/24")
        self.assertEqual(json.loads(r["SourcePrivateIp"]),
                         ["10.0.0.1", "172.16.0.0/12", "192.168.1.0/24"])
        self.assertEqual(r["Description"], "")
        self.assertEqual(self.ok("DescribeNetworkRule", Name=name)["Description"], "")

    def test_required_parameters(self):
        self.err(self.srv.call("CreateNetworkRule", Type="Private", SourcePrivateIp='["10.0.0.1"]'),
                 400, "MissingParameter", "Name")
        self.err(self.srv.call("CreateNetworkRule", Name=self.name("r"), SourcePrivateIp='["10.0.0.1"]'),
                 400, "MissingParameter", "Type")
        self.err(self.srv.call("CreateNetworkRule", Name=self.name("r"), Type="Private"),
                 400, "MissingParameter", "SourcePrivateIp")

    def test_invalid_values(self):
        self.err(self.srv.call("CreateNetworkRule", Name=self.name("r"), Type="Public",
                               SourcePrivateIp='["10.0.0.1"]'), 400, "InvalidParameter", "Type")
        self.err(self.srv.call("CreateNetworkRule", Name=self.name("r"), Type="private",
                               SourcePrivateIp='["10.0.0.1"]'), 400, "InvalidParameter", "Type")
        for bad in ['[]', '["::1"]', '["fe80::/10"]', '["10.0.0.0/33"]', '["10.0.0"]',
                    '["192.10.XX.XX"]', '[1]', '["10.0.0.1", 5]', '{"a":1}', '["10.0.0.1"',
                    "10.0.0.1,,10.0.0.2", "10.0.0.1,", "300.1.1.1", "10.0.0.1/8/8",
                    '[' + ",".join('"10.0.0.%d"' % (i % 250) for i in range(101)) + ']']:
            with self.subTest(ips=bad):
                self.err(self.srv.call("CreateNetworkRule", Name=self.name("r"), Type="Private",
                                       SourcePrivateIp=bad), 400, "InvalidParameter", "SourcePrivateIp")

    def test_names(self):
        for bad in ["a" * 65, "has space", "semi;colon", "slash/no", "ünï", "star*"]:
            with self.subTest(name=bad):
                self.err(self.srv.call("CreateNetworkRule", Name=bad, Type="Private",
                                       SourcePrivateIp='["10.0.0.1"]'), 400, "InvalidParameter", "Name")
        for good in ["a", "A-b_c.9", "x" * 64]:
            with self.subTest(name=good):
                self.ok("CreateNetworkRule", Name=good, Type="Private", SourcePrivateIp='["10.0.0.1"]')
        self.err(self.srv.call("CreateNetworkRule", Name="a", Type="Private",
                               SourcePrivateIp='["10.0.0.2"]'), 409, "Rejected.ResourceExist")
        self.err(self.srv.call("CreateNetworkRule", Name="x", Type="Private", SourcePrivateIp='["10.0.0.1"]',
                               Description="d" * 1025), 400, "InvalidParameter", "Description")

    def test_unknown(self):
        self.err(self.srv.call("DescribeNetworkRule", Name="no_such_rule"), 404, "Forbidden.ResourceNotFound")
        self.err(self.srv.call("UpdateNetworkRule", Name="no_such_rule", Description="x"),
                 404, "Forbidden.ResourceNotFound")
        self.err(self.srv.call("DeleteNetworkRule", Name="no_such_rule"), 404, "Forbidden.ResourceNotFound")
        self.err(self.srv.call("DescribeNetworkRule"), 400, "MissingParameter", "Name")

    def test_update_changes_only_given_fields(self):
        name = self.rule('["10.0.0.1"]', Description="first")
        self.assertEqual(set(self.ok("UpdateNetworkRule", Name=name, Description="second")), {"RequestId"})
        r = self.ok("DescribeNetworkRule", Name=name)
        self.assertEqual((r["SourcePrivateIp"], r["Description"]), ('["10.0.0.1"]', "second"))
        self.ok("UpdateNetworkRule", Name=name, SourcePrivateIp="10.1.0.0/16")
        r = self.ok("DescribeNetworkRule", Name=name)
        self.assertEqual((r["SourcePrivateIp"], r["Description"]), ('["10.1.0.0/16"]', "second"))
        self.err(self.srv.call("UpdateNetworkRule", Name=name, SourcePrivateIp='["::1"]'),
                 400, "InvalidParameter", "SourcePrivateIp")
        self.assertEqual(self.ok("DescribeNetworkRule", Name=name)["SourcePrivateIp"], '["10.1.0.0/16"]')

    def test_delete_and_in_use(self):
        name = self.rule()
        policy = self.policy(rules=[name])
        self.err(self.srv.call("DeleteNetworkRule", Name=name), 409, "Rejected.ResourceInUse")
        self.ok("UpdatePolicy", Name=policy, AccessControlRules='{"NetworkRules":[]}')
        self.assertEqual(set(self.ok("DeleteNetworkRule", Name=name)), {"RequestId"})
        self.err(self.srv.call("DescribeNetworkRule", Name=name), 404, "Forbidden.ResourceNotFound")
        self.err(self.srv.call("DeleteNetworkRule", Name=name), 404, "Forbidden.ResourceNotFound")


class ListTest(AccessBase):
    """Paging of the three List actions, on a server of their own (counts are exact)."""

    def test_list_network_rules(self):
        names = [self.rule() for _ in range(23)]
        r = self.ok("ListNetworkRules")
        self.assertEqual((r["PageNumber"], r["PageSize"], r["TotalCount"]), (1, 20, 23))
        items = r["NetworkRules"]["NetworkRule"]
        self.assertEqual([i["Name"] for i in items], names[:20])
        self.assertEqual(items[0], {"Name": names[0], "Type": "Private"})
        r = self.ok("ListNetworkRules", PageNumber=2)
        self.assertEqual([i["Name"] for i in r["NetworkRules"]["NetworkRule"]], names[20:])
        r = self.ok("ListNetworkRules", PageNumber=9, PageSize=100)
        self.assertEqual(r["NetworkRules"]["NetworkRule"], [])
        self.assertEqual(r["TotalCount"], 23)
        for bad in ({"PageSize": 0}, {"PageSize": 101}, {"PageNumber": 0}, {"PageSize": "x"}):
            with self.subTest(**bad):
                self.err(self.srv.call("ListNetworkRules", **bad), 400, "InvalidParameter")

    def test_list_policies_and_aaps(self):
        policies = [self.policy() for _ in range(3)]
        r = self.ok("ListPolicies", PageSize=2)
        self.assertEqual((r["PageNumber"], r["PageSize"]), (1, 2))
        self.assertGreaterEqual(r["TotalCount"], 3)
        listed = [p["Name"] for p in self.ok("ListPolicies", PageSize=100)["Policies"]["Policy"]]
        for p in policies:
            self.assertIn(p, listed)
        self.assertEqual(set(self.ok("ListPolicies")["Policies"]["Policy"][0]), {"Name"})
        self.assertEqual(self.ok("ListPolicies")["PageSize"], 20)
        a1 = self.aap([policies[0]])
        a2 = self.aap([policies[1]], method="AccessKey")
        r = self.ok("ListApplicationAccessPoints")
        self.assertEqual(r["PageSize"], 20)
        items = {i["Name"]: i for i in r["ApplicationAccessPoints"]["ApplicationAccessPoint"]}
        self.assertEqual(items[a1], {"Name": a1, "AuthenticationMethod": "ClientKey"})
        self.assertEqual(items[a2], {"Name": a2, "AuthenticationMethod": "AccessKey"})
        self.assertEqual(r["TotalCount"], len(items))


class PolicyTest(AccessBase):
    def test_create_shape(self):
        rule = self.rule()
        r = self.ok("CreatePolicy", Name="policy_shape",
                    Permissions='["RbacPermission/Template/CryptoServiceKeyUser"]',
                    Resources='["key/key-hzz63d9c8d3dfv8cv1234", "secret/*"]',
                    AccessControlRules='{"NetworkRules": ["%s"]}' % rule, Description="p d",
                    KmsInstance="kst-hzz634e67d126u9p91234")
        self.assertEqual(set(r), {"RequestId", "Arn", "Name", "Description", "KmsInstance",
                                  "Permissions", "Resources", "AccessControlRules"})
        self.assertEqual(r["Arn"], "acs:kms:cn-hangzhou:1000000000000000:policy/policy_shape")
        self.assertEqual(r["Permissions"], '["RbacPermission/Template/CryptoServiceKeyUser"]')
        self.assertEqual(r["Resources"], '["key/key-hzz63d9c8d3dfv8cv1234","secret/*"]')
        self.assertEqual(r["AccessControlRules"], '{"NetworkRules":["%s"]}' % rule)
        self.assertEqual((r["Description"], r["KmsInstance"]), ("p d", "kst-hzz634e67d126u9p91234"))

    def test_describe_shape(self):
        name = self.policy(("KeyAdministrator", "CryptoServiceKeyUser"), ("key/*", "*"))
        r = self.ok("DescribePolicy", Name=name)
        self.assertEqual(set(r), {"RequestId", "Arn", "Name", "Description", "KmsInstance",
                                  "Permissions", "Resources", "AccessControlRules"})
        # Here Permissions and Resources are bare arrays; AccessControlRules stays a string.
        self.assertEqual(r["Permissions"], [TEMPLATE + "KeyAdministrator", TEMPLATE + "CryptoServiceKeyUser"])
        self.assertEqual(r["Resources"], ["key/*", "*"])
        self.assertEqual(r["AccessControlRules"], '{"NetworkRules":[]}')
        self.assertEqual(r["KmsInstance"], "kst-local0000000000000")
        self.assertEqual(r["Description"], "")
        self.assertEqual(r["Name"], name)

    def test_every_template_and_pattern_form(self):
        perms = [TEMPLATE + t for t in ("CryptoServiceKeyUser", "CryptoServiceSecretUser",
                                        "KeyAdministrator", "SecretAdministrator", "AccessAdministrator")]
        res = ["key/k-1", "key/*", "secret/db/prod@x", "secret/*", "certificate/c-1", "certificate/*", "*"]
        name = self.name("policy")
        self.ok("CreatePolicy", Name=name, Permissions=json.dumps(perms), Resources=json.dumps(res))
        r = self.ok("DescribePolicy", Name=name)
        self.assertEqual((r["Permissions"], r["Resources"]), (perms, res))

    def test_required_and_invalid(self):
        p, r = '["%sKeyAdministrator"]' % TEMPLATE, '["key/*"]'
        self.err(self.srv.call("CreatePolicy", Name=self.name("p"), Resources=r), 400, "MissingParameter", "Permissions")
        self.err(self.srv.call("CreatePolicy", Name=self.name("p"), Permissions=p), 400, "MissingParameter", "Resources")
        self.err(self.srv.call("CreatePolicy", Permissions=p, Resources=r), 400, "MissingParameter", "Name")
        for bad in ['[]', '["KeyAdministrator"]', '["RbacPermission/Template/Root"]', '"x"', 'nope',
                    '["%sKeyAdministrator", 1]' % TEMPLATE, '{}']:
            with self.subTest(permissions=bad):
                self.err(self.srv.call("CreatePolicy", Name=self.name("p"), Permissions=bad, Resources=r),
                         400, "InvalidParameter", "Permissions")
        for bad in ['[]', '["key/abc*"]', '["alias/x"]', '["key/alias/x"]', '["keys/*"]', '["key/"]',
                    '["acs:kms:cn-hangzhou:1:key/k"]', '["network/*"]', '["key/a b"]', '[""]', '[null]']:
            with self.subTest(resources=bad):
                self.err(self.srv.call("CreatePolicy", Name=self.name("p"), Permissions=p, Resources=bad),
                         400, "InvalidParameter", "Resources")
        for bad in ['[]', '{"NetworkRules":"r"}', '{"NetworkRule":["r"]}', '{"NetworkRules":["r"],"x":1}',
                    '{"NetworkRules":["bad name"]}', '{"NetworkRules":["r","r"]}', 'x', '{"NetworkRules":[1]}']:
            with self.subTest(rules=bad):
                self.err(self.srv.call("CreatePolicy", Name=self.name("p"), Permissions=p, Resources=r,
                                       AccessControlRules=bad), 400, "InvalidParameter", "AccessControlRules")
        self.err(self.srv.call("CreatePolicy", Name=self.name("p"), Permissions=p, Resources=r,
                               AccessControlRules='{"NetworkRules":["no_such_rule"]}'),
                 404, "Forbidden.ResourceNotFound")
        self.err(self.srv.call("CreatePolicy", Name=self.name("p"), Permissions=p, Resources=r,
                               KmsInstance="k" * 129), 400, "InvalidParameter", "KmsInstance")
        self.err(self.srv.call("CreatePolicy", Name="bad/name", Permissions=p, Resources=r),
                 400, "InvalidParameter", "Name")

    def test_duplicate_and_unknown(self):
        name = self.policy()
        self.err(self.srv.call("CreatePolicy", Name=name, Permissions='["%sKeyAdministrator"]' % TEMPLATE,
                               Resources='["*"]'), 409, "Rejected.ResourceExist")
        for action in ("DescribePolicy", "DeletePolicy"):
            self.err(self.srv.call(action, Name="no_such_policy"), 404, "Forbidden.ResourceNotFound")
        self.err(self.srv.call("UpdatePolicy", Name="no_such_policy", Description="x"),
                 404, "Forbidden.ResourceNotFound")

    def test_update_changes_only_given_fields(self):
        rule = self.rule()
        name = self.policy(("CryptoServiceKeyUser",), ("key/*",), rules=[rule], Description="one")
        self.assertEqual(set(self.ok("UpdatePolicy", Name=name, Description="two")), {"RequestId"})
        r = self.ok("DescribePolicy", Name=name)
        self.assertEqual((r["Permissions"], r["Resources"], r["AccessControlRules"], r["Description"]),
                         ([TEMPLATE + "CryptoServiceKeyUser"], ["key/*"], '{"NetworkRules":["%s"]}' % rule, "two"))
        self.ok("UpdatePolicy", Name=name, Permissions='["%sKeyAdministrator"]' % TEMPLATE,
                Resources='["*"]', AccessControlRules='{"NetworkRules":[]}', KmsInstance="kst-x")
        r = self.ok("DescribePolicy", Name=name)
        self.assertEqual((r["Permissions"], r["Resources"], r["AccessControlRules"], r["KmsInstance"]),
                         ([TEMPLATE + "KeyAdministrator"], ["*"], '{"NetworkRules":[]}', "kst-x"))
        self.err(self.srv.call("UpdatePolicy", Name=name, Resources='["key/x*"]'), 400, "InvalidParameter", "Resources")
        self.err(self.srv.call("UpdatePolicy", Name=name, AccessControlRules='{"NetworkRules":["gone"]}'),
                 404, "Forbidden.ResourceNotFound")
        # A refused update changes nothing.
        self.assertEqual(self.ok("DescribePolicy", Name=name)["Resources"], ["*"])

    def test_delete_and_in_use(self):
        name = self.policy()
        other = self.policy()
        aap = self.aap([name])
        self.err(self.srv.call("DeletePolicy", Name=name), 409, "Rejected.ResourceInUse")
        self.ok("UpdateApplicationAccessPoint", Name=aap, Policies=json.dumps([other]))
        self.assertEqual(set(self.ok("DeletePolicy", Name=name)), {"RequestId"})
        self.err(self.srv.call("DescribePolicy", Name=name), 404, "Forbidden.ResourceNotFound")


class ApplicationAccessPointTest(AccessBase):
    def test_create_shape_and_default_method(self):
        policy = self.policy()
        r = self.ok("CreateApplicationAccessPoint", Name="aap_shape", Policies=json.dumps([policy]),
                    Description="aap d")
        self.assertEqual(set(r), {"RequestId", "Arn", "Name", "AuthenticationMethod", "Description", "Policies"})
        self.assertEqual(r["Arn"], "acs:kms:cn-hangzhou:1000000000000000:applicationaccesspoint/aap_shape")
        self.assertEqual(r["AuthenticationMethod"], "ClientKey")
        self.assertEqual(r["Policies"], '["%s"]' % policy)
        self.assertEqual(r["Description"], "aap d")
        d = self.ok("DescribeApplicationAccessPoint", Name="aap_shape")
        self.assertEqual(set(d), {"RequestId", "Arn", "Name", "AuthenticationMethod", "Description", "Policies"})
        self.assertEqual({k: d[k] for k in d if k != "RequestId"}, {k: r[k] for k in r if k != "RequestId"})

    def test_access_key_method(self):
        name = self.aap(method="AccessKey")
        self.assertEqual(self.ok("DescribeApplicationAccessPoint", Name=name)["AuthenticationMethod"], "AccessKey")

    def test_invalid(self):
        p = [self.policy() for _ in range(4)]
        for bad in ("accesskey", "Password", "ClientKeys"):
            with self.subTest(method=bad):
                self.err(self.srv.call("CreateApplicationAccessPoint", Name=self.name("a"),
                                       Policies=json.dumps(p[:1]), AuthenticationMethod=bad),
                         400, "InvalidParameter", "AuthenticationMethod")
        for bad in ("[]", json.dumps(p), json.dumps([p[0], p[0]]), "x", '["bad name"]', json.dumps(p[0])):
            with self.subTest(policies=bad):
                self.err(self.srv.call("CreateApplicationAccessPoint", Name=self.name("a"), Policies=bad),
                         400, "InvalidParameter", "Policies")
        self.err(self.srv.call("CreateApplicationAccessPoint", Name=self.name("a")), 400, "MissingParameter", "Policies")
        self.err(self.srv.call("CreateApplicationAccessPoint", Name=self.name("a"),
                               Policies='["%s","no_such_policy"]' % p[0]), 404, "Forbidden.ResourceNotFound")
        self.ok("CreateApplicationAccessPoint", Name="aap_three", Policies=json.dumps(p[:3]))
        self.err(self.srv.call("CreateApplicationAccessPoint", Name="aap_three", Policies=json.dumps(p[:1])),
                 409, "Rejected.ResourceExist")
        for action in ("DescribeApplicationAccessPoint", "DeleteApplicationAccessPoint"):
            self.err(self.srv.call(action, Name="no_such_aap"), 404, "Forbidden.ResourceNotFound")

    def test_update(self):
        p1, p2, p3 = self.policy(), self.policy(), self.policy()
        name = self.aap([p1], Description="x")
        self.assertEqual(set(self.ok("UpdateApplicationAccessPoint", Name=name, Policies=json.dumps([p2, p3]))),
                         {"RequestId"})
        d = self.ok("DescribeApplicationAccessPoint", Name=name)
        self.assertEqual((d["Policies"], d["Description"]), ('["%s","%s"]' % (p2, p3), "x"))
        self.ok("UpdateApplicationAccessPoint", Name=name, Description="y")
        d = self.ok("DescribeApplicationAccessPoint", Name=name)
        self.assertEqual((d["Policies"], d["Description"]), ('["%s","%s"]' % (p2, p3), "y"))
        self.err(self.srv.call("UpdateApplicationAccessPoint", Name=name, Policies="[]"), 400, "InvalidParameter", "Policies")
        self.err(self.srv.call("UpdateApplicationAccessPoint", Name=name, Policies='["gone"]'),
                 404, "Forbidden.ResourceNotFound")
        self.err(self.srv.call("UpdateApplicationAccessPoint", Name="no_such_aap", Description="z"),
                 404, "Forbidden.ResourceNotFound")
        # AuthenticationMethod is not an UpdateApplicationAccessPoint parameter: ignored.
        self.ok("UpdateApplicationAccessPoint", Name=name, AuthenticationMethod="AccessKey")
        self.assertEqual(self.ok("DescribeApplicationAccessPoint", Name=name)["AuthenticationMethod"], "ClientKey")

    def test_delete_in_use_by_client_key_or_access_key(self):
        ck_aap = self.aap()
        ck = self.ok("CreateClientKey", AapName=ck_aap, Password="passw0rd!")["ClientKeyId"]
        self.err(self.srv.call("DeleteApplicationAccessPoint", Name=ck_aap), 409, "Rejected.ResourceInUse")
        self.ok("DeleteClientKey", ClientKeyId=ck)
        self.assertEqual(set(self.ok("DeleteApplicationAccessPoint", Name=ck_aap)), {"RequestId"})
        self.err(self.srv.call("DescribeApplicationAccessPoint", Name=ck_aap), 404, "Forbidden.ResourceNotFound")

        ak_aap = self.aap(method="AccessKey")
        ak = self.ok("CreateAccessKey", AapName=ak_aap)["AccessKeyId"]
        self.err(self.srv.call("DeleteApplicationAccessPoint", Name=ak_aap), 409, "Rejected.ResourceInUse")
        self.assertEqual(self.srv.call_v3("DeleteAccessKey", AccessKeyId=ak).status, 200)
        self.ok("DeleteApplicationAccessPoint", Name=ak_aap)


def openssl_available():
    return shutil.which("openssl") is not None


class ClientKeyTest(AccessBase):
    def test_create_shape(self):
        aap = self.aap()
        r = self.ok("CreateClientKey", AapName=aap, Password="kmsd-test-1")
        self.assertEqual(set(r), {"RequestId", "ClientKeyId", "KeyAlgorithm", "NotBefore", "NotAfter", "PrivateKeyData"})
        self.assertRegex(r["ClientKeyId"], r"^KAAP\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        self.assertEqual(r["KeyAlgorithm"], "RSA_2048")
        nb, na = parse_time(r["NotBefore"]), parse_time(r["NotAfter"])
        self.assertLess(abs(nb - time.time()), 120)
        # Five calendar years.
        self.assertIn(na - nb, (5 * 365 * 86400, (5 * 365 + 1) * 86400, (5 * 365 + 2) * 86400))
        base64.b64decode(r["PrivateKeyData"], validate=True)

        g = self.ok("GetClientKey", ClientKeyId=r["ClientKeyId"])
        self.assertEqual(set(g), {"RequestId", "ClientKeyId", "AapName", "KeyAlgorithm", "KeyOrigin",
                                  "NotBefore", "NotAfter", "CreateTime", "PublicKeyData"})
        self.assertEqual((g["ClientKeyId"], g["AapName"], g["KeyAlgorithm"], g["KeyOrigin"]),
                         (r["ClientKeyId"], aap, "RSA_2048", "KMS_PROVIDED"))
        self.assertEqual((g["NotBefore"], g["NotAfter"]), (r["NotBefore"], r["NotAfter"]))
        self.assertTrue(g["PublicKeyData"].startswith("-----BEGIN CERTIFICATE-----\n"), g)
        self.assertTrue(g["PublicKeyData"].rstrip().endswith("-----END CERTIFICATE-----"), g)
        self.assertNotIn("PRIVATE", json.dumps(g))

    @unittest.skipUnless(openssl_available(), "needs the openssl command")
    def test_pkcs12_opens_with_password_only_and_matches_certificate(self):
        aap = self.aap()
        r = self.ok("CreateClientKey", AapName=aap, Password="Secret_pass9", NotBefore="2030-01-02T03:04:05Z",
                    NotAfter="2031-01-02T03:04:05Z")
        self.assertEqual((r["NotBefore"], r["NotAfter"]), ("2030-01-02T03:04:05Z", "2031-01-02T03:04:05Z"))
        tmp = tempfile.mkdtemp(prefix="kmsd-ck-")
        try:
            p12 = os.path.join(tmp, "key.p12")
            with open(p12, "wb") as f:
                f.write(base64.b64decode(r["PrivateKeyData"]))
            good = subprocess.run(["openssl", "pkcs12", "-in", p12, "-passin", "pass:Secret_pass9",
                                   "-nodes"], capture_output=True, text=True)
            self.assertEqual(good.returncode, 0, good.stderr)
            self.assertIn("PRIVATE KEY", good.stdout)
            bad = subprocess.run(["openssl", "pkcs12", "-in", p12, "-passin", "pass:Secret_pass8",
                                  "-nodes"], capture_output=True, text=True)
            self.assertNotEqual(bad.returncode, 0)
            cert = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", good.stdout, re.S).group(0)
            stored = self.ok("GetClientKey", ClientKeyId=r["ClientKeyId"])["PublicKeyData"]
            self.assertEqual(cert.strip(), stored.strip())
            pem = os.path.join(tmp, "cert.pem")
            with open(pem, "w") as f:
                f.write(stored)
            text = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-text"], capture_output=True, text=True)
            self.assertEqual(text.returncode, 0, text.stderr)
            self.assertIn("Public-Key: (2048 bit)", text.stdout)
            self.assertIn("CN = " + r["ClientKeyId"], text.stdout)
            self.assertIn("Jan  2 03:04:05 2030 GMT", text.stdout)
            self.assertIn("Jan  2 03:04:05 2031 GMT", text.stdout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_password_rules(self):
        aap = self.aap()
        for bad in ("short1!", "a" * 65, "allletters", "12345678", "~!@#$%^&", "pass word1", "passwörd1",
                    "pass\"word1", "pass+word1"):
            with self.subTest(password=bad):
                self.err(self.srv.call("CreateClientKey", AapName=aap, Password=bad), 400, "InvalidParameter", "Password")
        for good in ("abcd1234", "abcd!@#$", "1234~!@#", "Ab1*Ab1*", "a1" * 32, "x-?_&^%$1"):
            with self.subTest(password=good):
                self.ok("CreateClientKey", AapName=aap, Password=good)
        self.err(self.srv.call("CreateClientKey", AapName=aap), 400, "MissingParameter", "Password")

    def test_validity_parameters(self):
        aap = self.aap()
        self.err(self.srv.call("CreateClientKey", AapName=aap, Password="abcd1234", NotAfter="2031-01-01T00:00:00Z"),
                 400, "MissingParameter", "NotBefore")
        self.err(self.srv.call("CreateClientKey", AapName=aap, Password="abcd1234", NotBefore="2030-01-01T00:00:00Z",
                               NotAfter="2030-01-01T00:00:00Z"), 400, "InvalidParameter", "NotAfter")
        self.err(self.srv.call("CreateClientKey", AapName=aap, Password="abcd1234", NotBefore="2030-01-01"),
                 400, "InvalidParameter", "NotBefore")
        self.err(self.srv.call("CreateClientKey", AapName=aap, Password="abcd1234", NotBefore="2030-01-01T00:00:00Z",
                               NotAfter="tomorrow"), 400, "InvalidParameter", "NotAfter")
        # Five years after a NotBefore in 9998 would be past what the wire format can say.
        self.err(self.srv.call("CreateClientKey", AapName=aap, Password="abcd1234", NotBefore="9998-01-01T00:00:00Z"),
                 400, "InvalidParameter", "NotBefore")
        r = self.ok("CreateClientKey", AapName=aap, Password="abcd1234", NotBefore="9990-01-01T00:00:00Z",
                    NotAfter="9999-12-31T23:59:59Z")
        self.assertEqual(r["NotAfter"], "9999-12-31T23:59:59Z")
        r = self.ok("CreateClientKey", AapName=aap, Password="abcd1234", NotBefore="2028-02-29T00:00:00Z")
        self.assertEqual(r["NotAfter"], "2033-03-01T00:00:00Z")  # five years on, no Feb 29th

    def test_aap_errors(self):
        self.err(self.srv.call("CreateClientKey", AapName="no_such_aap", Password="abcd1234"),
                 404, "Forbidden.ResourceNotFound")
        ak_aap = self.aap(method="AccessKey")
        self.err(self.srv.call("CreateClientKey", AapName=ak_aap, Password="abcd1234"), 400, "InvalidParameter", "AapName")
        self.err(self.srv.call("CreateClientKey", Password="abcd1234"), 400, "MissingParameter", "AapName")

    def test_list_get_delete(self):
        a1, a2 = self.aap(), self.aap()
        k1 = self.ok("CreateClientKey", AapName=a1, Password="abcd1234")["ClientKeyId"]
        k2 = self.ok("CreateClientKey", AapName=a1, Password="abcd1234")["ClientKeyId"]
        k3 = self.ok("CreateClientKey", AapName=a2, Password="abcd1234")["ClientKeyId"]
        r = self.ok("ListClientKeys", AapName=a1)
        self.assertEqual(set(r), {"RequestId", "ClientKeys"})
        self.assertIsInstance(r["ClientKeys"], list)  # a bare array, no paging
        self.assertEqual([k["ClientKeyId"] for k in r["ClientKeys"]], [k1, k2])
        self.assertEqual(set(r["ClientKeys"][0]), {"ClientKeyId", "AapName", "KeyAlgorithm", "KeyOrigin", "NotBefore",
                                                   "NotAfter", "CreateTime", "PublicKeyData"})
        everything = [k["ClientKeyId"] for k in self.ok("ListClientKeys")["ClientKeys"]]
        for k in (k1, k2, k3):
            self.assertIn(k, everything)
        self.err(self.srv.call("ListClientKeys", AapName="no_such_aap"), 404, "Forbidden.ResourceNotFound")
        self.assertEqual(set(self.ok("DeleteClientKey", ClientKeyId=k1)), {"RequestId"})
        self.err(self.srv.call("GetClientKey", ClientKeyId=k1), 404, "Forbidden.ResourceNotFound")
        self.err(self.srv.call("DeleteClientKey", ClientKeyId=k1), 404, "Forbidden.ResourceNotFound")
        self.err(self.srv.call("GetClientKey"), 400, "MissingParameter", "ClientKeyId")
        self.assertEqual([k["ClientKeyId"] for k in self.ok("ListClientKeys", AapName=a1)["ClientKeys"]], [k2])
        self.assertEqual(self.ok("ListClientKeys", AapName=self.aap())["ClientKeys"], [])

    def test_client_key_never_authenticates(self):
        aap = self.aap([self.policy(("KeyAdministrator",), ("*",))])
        ck = self.ok("CreateClientKey", AapName=aap, Password="abcd1234")["ClientKeyId"]
        for secret in ("abcd1234", ""):
            r = self.srv.call("DescribeRegions", access_key=(ck, secret))
            self.err(r, 404, "InvalidAccessKeyId.NotFound")


class AccessKeyTest(AccessBase):
    config = DEFAULT_CONFIG + "max_access_keys_per_aap = 3\n"

    def test_create_shape(self):
        aap = self.aap(method="AccessKey")
        r = self.ok("CreateAccessKey", AapName=aap, Description="ci runner")
        self.assertEqual(set(r), {"RequestId", "AccessKeyId", "AccessKeySecret", "AapName", "CreateTime"})
        self.assertRegex(r["AccessKeyId"], r"^[A-Za-z0-9]{16,32}$")
        self.assertFalse(r["AccessKeyId"].startswith("STS."))
        self.assertRegex(r["AccessKeySecret"], r"^[A-Za-z0-9]{30}$")
        self.assertEqual(r["AapName"], aap)
        self.assertLess(abs(parse_time(r["CreateTime"]) - time.time()), 120)
        # It signs requests at once (V1 and V3), as its AAP's policies allow.
        self.assertEqual(self.srv.call("DescribeRegions", access_key=(r["AccessKeyId"], r["AccessKeySecret"])).status, 200)
        self.assertEqual(self.srv.call_v3("DescribeRegions", access_key=(r["AccessKeyId"], r["AccessKeySecret"])).status, 200)
        other = self.ok("CreateAccessKey", AapName=aap)
        self.assertNotEqual(other["AccessKeyId"], r["AccessKeyId"])
        self.assertNotEqual(other["AccessKeySecret"], r["AccessKeySecret"])

    def test_errors(self):
        self.err(self.srv.call("CreateAccessKey", AapName="no_such_aap"), 404, "Forbidden.ResourceNotFound")
        ck_aap = self.aap()
        r = self.srv.call("CreateAccessKey", AapName=ck_aap)
        self.err(r, 400, "InvalidParameter")
        self.assertEqual(r.json["Message"], 'The specified parameter "AapName" is not valid.')
        self.err(self.srv.call("CreateAccessKey"), 400, "MissingParameter", "AapName")
        aap = self.aap(method="AccessKey")
        self.err(self.srv.call("CreateAccessKey", AapName=aap, Description="d" * 1025), 400, "InvalidParameter", "Description")
        self.ok("CreateAccessKey", AapName=aap, Description="d" * 1024)

    def test_limit_per_aap(self):
        aap = self.aap(method="AccessKey")
        keys = [self.ok("CreateAccessKey", AapName=aap)["AccessKeyId"] for _ in range(3)]
        self.err(self.srv.call("CreateAccessKey", AapName=aap), 400, "Rejected.LimitExceeded")
        # The limit is per AAP, and deleting a key makes room.
        self.ok("CreateAccessKey", AapName=self.aap(method="AccessKey"))
        self.assertEqual(self.srv.call_v3("DeleteAccessKey", AccessKeyId=keys[0]).status, 200)
        self.ok("CreateAccessKey", AapName=aap)

    def test_list(self):
        a1, a2 = self.aap(method="AccessKey"), self.aap(method="AccessKey")
        k1 = self.ok("CreateAccessKey", AapName=a1, Description="first")["AccessKeyId"]
        k2 = self.ok("CreateAccessKey", AapName=a1)["AccessKeyId"]
        k3 = self.ok("CreateAccessKey", AapName=a2)["AccessKeyId"]
        r = self.ok("ListAccessKeys", AapName=a1)
        self.assertEqual(set(r), {"RequestId", "AccessKeys", "TotalCount", "PageNumber", "PageSize"})
        self.assertEqual((r["TotalCount"], r["PageNumber"], r["PageSize"]), (2, 1, 20))
        items = r["AccessKeys"]["AccessKey"]
        self.assertEqual([i["AccessKeyId"] for i in items], [k1, k2])
        self.assertEqual(set(items[0]), {"AccessKeyId", "AapName", "Description", "Status", "CreateTime"})
        self.assertEqual((items[0]["AapName"], items[0]["Description"], items[0]["Status"]), (a1, "first", "Enabled"))
        self.assertEqual(items[1]["Description"], "")
        everything = self.ok("ListAccessKeys", PageSize=100)
        ids = [i["AccessKeyId"] for i in everything["AccessKeys"]["AccessKey"]]
        for k in (k1, k2, k3):
            self.assertIn(k, ids)
        self.assertNotIn(ADMIN_ID, ids)  # admin keys are not listed
        self.assertNotIn("Secret", json.dumps(everything))
        page = self.ok("ListAccessKeys", AapName=a1, PageSize=1, PageNumber=2)
        self.assertEqual([i["AccessKeyId"] for i in page["AccessKeys"]["AccessKey"]], [k2])
        self.err(self.srv.call("ListAccessKeys", AapName="no_such_aap"), 404, "Forbidden.ResourceNotFound")
        self.err(self.srv.call("ListAccessKeys", PageSize=101), 400, "InvalidParameter")

    def test_disable_enable(self):
        aap = self.aap([self.policy(("KeyAdministrator",), ("*",))], method="AccessKey")
        r = self.ok("CreateAccessKey", AapName=aap)
        ak = (r["AccessKeyId"], r["AccessKeySecret"])
        self.assertEqual(self.srv.call("ListKeys", access_key=ak).status, 200)
        self.assertEqual(set(self.srv.call_v3("UpdateAccessKey", AccessKeyId=ak[0], Status="Disabled").json),
                         {"RequestId"})
        self.err(self.srv.call("ListKeys", access_key=ak), 403, "Forbidden.AccessKey")
        self.err(self.srv.call_v3("ListKeys", access_key=ak), 403, "Forbidden.AccessKey")
        listed = self.ok("ListAccessKeys", AapName=aap)["AccessKeys"]["AccessKey"][0]
        self.assertEqual(listed["Status"], "Disabled")
        # Idempotent.
        self.assertEqual(self.srv.call_v3("UpdateAccessKey", AccessKeyId=ak[0], Status="Disabled").status, 200)
        self.assertEqual(self.srv.call_v3("UpdateAccessKey", AccessKeyId=ak[0], Status="Enabled").status, 200)
        self.assertEqual(self.srv.call("ListKeys", access_key=ak).status, 200)
        for bad in ("disabled", "Enable", "Inactive"):
            self.err(self.srv.call_v3("UpdateAccessKey", AccessKeyId=ak[0], Status=bad), 400, "InvalidParameter", "Status")
        self.err(self.srv.call_v3("UpdateAccessKey", AccessKeyId=ak[0]), 400, "MissingParameter", "Status")

    def test_admin_keys_are_not_managed_here(self):
        self.err(self.srv.call_v3("UpdateAccessKey", AccessKeyId=ADMIN_ID, Status="Disabled"), 404,
                 "Forbidden.ResourceNotFound")
        self.err(self.srv.call_v3("DeleteAccessKey", AccessKeyId=ADMIN_ID), 404, "Forbidden.ResourceNotFound")
        self.err(self.srv.call_v3("UpdateAccessKey", AccessKeyId="AKkmsdNoSuchKey000000000", Status="Enabled"),
                 404, "Forbidden.ResourceNotFound")
        self.err(self.srv.call_v3("DeleteAccessKey", AccessKeyId="AKkmsdNoSuchKey000000000"), 404,
                 "Forbidden.ResourceNotFound")
        self.err(self.srv.call_v3("DeleteAccessKey"), 400, "MissingParameter", "AccessKeyId")
        self.err(self.srv.call_v3("UpdateAccessKey", Status="Enabled"), 400, "MissingParameter", "AccessKeyId")
        # With signature V1 the AccessKeyId parameter is the signer's own key: the admin's.
        self.err(self.srv.call("UpdateAccessKey", Status="Disabled"), 404, "Forbidden.ResourceNotFound")
        self.assertEqual(self.srv.call("DescribeRegions").status, 200)

    def test_delete(self):
        aap = self.aap(method="AccessKey")
        r = self.ok("CreateAccessKey", AapName=aap)
        ak = (r["AccessKeyId"], r["AccessKeySecret"])
        self.assertEqual(self.srv.call("DescribeRegions", access_key=ak).status, 200)
        self.assertEqual(set(self.srv.call_v3("DeleteAccessKey", AccessKeyId=ak[0]).json), {"RequestId"})
        self.err(self.srv.call("DescribeRegions", access_key=ak), 404, "InvalidAccessKeyId.NotFound")
        self.err(self.srv.call_v3("DeleteAccessKey", AccessKeyId=ak[0]), 404, "Forbidden.ResourceNotFound")
        self.assertEqual(self.ok("ListAccessKeys", AapName=aap)["TotalCount"], 0)

    def test_an_access_key_can_disable_itself_over_v1(self):
        aap = self.aap([self.policy(("AccessAdministrator",), ("*",))], method="AccessKey")
        r = self.ok("CreateAccessKey", AapName=aap)
        ak = (r["AccessKeyId"], r["AccessKeySecret"])
        self.assertEqual(self.srv.call("UpdateAccessKey", Status="Disabled", access_key=ak).status, 200)
        self.err(self.srv.call("DescribeRegions", access_key=ak), 403, "Forbidden.AccessKey")


class AccessKeyStorageTest(AccessBase):
    def test_secret_is_never_stored_or_logged_in_plaintext_and_survives_restart(self):
        aap = self.aap([self.policy(("KeyAdministrator",), ("key/*",))], method="AccessKey")
        r = self.ok("CreateAccessKey", AapName=aap)
        ak = (r["AccessKeyId"], r["AccessKeySecret"])
        self.assertEqual(self.srv.call("ListKeys", access_key=ak).status, 200)
        self.srv.restart()
        # Unsealed again from the store after the restart: the same secret still signs.
        self.assertEqual(self.srv.call("ListKeys", access_key=ak).status, 200)
        self.assertEqual(self.ok("DescribeApplicationAccessPoint", Name=aap)["AuthenticationMethod"], "AccessKey")
        self.srv.stop()
        try:
            secret = ak[1].encode()
            for root, _, files in os.walk(self.srv.data_dir):
                for f in files:
                    with open(os.path.join(root, f), "rb") as fh:
                        self.assertNotIn(secret, fh.read(), f)
            self.assertNotIn(ak[1], self.srv.stderr_text())
        finally:
            self.srv.start()


if __name__ == "__main__":
    unittest.main()
