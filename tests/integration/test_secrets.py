"""Secrets manager (spec/actions.md E1-E12): every action and its error paths, stage transitions,
version limits, deletion windows and the maintenance sweep, restart persistence, the binding of
stored values to their secret and version, and a scan of the data directory and the log for
plaintext secret values."""

import base64
import json
import os
import sqlite3
import time
import unittest

from kmsd import Server, b64

DAY = 86400
ACCOUNT = "1000000000000000"
REGION = "cn-hangzhou"


def arn(name):
    return "acs:kms:%s:%s:secret/%s" % (REGION, ACCOUNT, name)


def parse_time(text):
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone


class SecretsBase(unittest.TestCase):
    counter = 0

    @classmethod
    def setUpClass(cls):
        cls.srv = Server().start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def name(self, prefix="sec"):
        SecretsBase.counter += 1
        return "%s-%s-%d" % (prefix, self._testMethodName[-20:].strip("_"), SecretsBase.counter)

    def call(self, action, **params):
        return self.srv.call(action, **params)

    def ok(self, action, **params):
        return self.srv.ok(action, **params)

    def fails(self, status, code, action, **params):
        r = self.call(action, **params)
        self.assertEqual((r.status, r.code), (status, code), "%s %r -> %r" % (action, params, r))
        self.assertTrue(r.json.get("RequestId"))
        return r

    def create(self, name=None, data="s3cret-value", **params):
        name = name or self.name()
        params.setdefault("VersionId", "v1")
        r = self.ok("CreateSecret", SecretName=name, SecretData=data, **params)
        self.assertEqual(r["SecretName"], name)
        return name

    def value(self, name, **params):
        return self.ok("GetSecretValue", SecretName=name, **params)

    def versions(self, name, deprecated=False):
        params = {"IncludeDeprecated": "true"} if deprecated else {}
        r = self.ok("ListSecretVersionIds", SecretName=name, PageSize=100, **params)
        self.assertEqual(r["TotalCount"], len(r["VersionIds"]["VersionId"]))
        return {v["VersionId"]: sorted(v["VersionStages"]["VersionStage"]) for v in r["VersionIds"]["VersionId"]}


class CreateAndReadTest(SecretsBase):
    def test_create_and_get_text(self):
        name = self.name()
        r = self.ok("CreateSecret", SecretName=name, VersionId="v1", SecretData="hunter2",
                    Description="my secret")
        self.assertEqual(r["Arn"], arn(name))
        self.assertEqual((r["VersionId"], r["SecretType"], r["AutomaticRotation"]), ("v1", "Generic", "Disabled"))
        v = self.value(name)
        self.assertEqual((v["SecretData"], v["SecretDataType"], v["VersionId"]), ("hunter2", "text", "v1"))
        self.assertEqual(v["VersionStages"]["VersionStage"], ["ACSCurrent"])
        self.assertEqual((v["SecretType"], v["AutomaticRotation"], v["SecretName"]), ("Generic", "Disabled", name))
        self.assertLess(abs(parse_time(v["CreateTime"]) - time.time()), 600)

    def test_binary_is_returned_as_given(self):
        data = b64(bytes([0, 1, 2, 0xfa, 0xfb, 0xff]) * 7)
        name = self.create(data=data, SecretDataType="binary")
        v = self.value(name)
        self.assertEqual((v["SecretData"], v["SecretDataType"]), (data, "binary"))
        # Padding-free Base64 is accepted too, and still returned exactly as given.
        name2 = self.create(data="AAEC+v8", SecretDataType="binary")
        self.assertEqual(self.value(name2)["SecretData"], "AAEC+v8")

    def test_utf8_and_v3_signature(self):
        data = "päss wörd & co = 100% \"quoted\" <tag> 密码"
        name = self.create(data=data)
        r = self.srv.call_v3("GetSecretValue", SecretName=name)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["SecretData"], data)

    def test_form_body_transport(self):
        name = self.name()
        r = self.srv.call("CreateSecret", transport="body", SecretName=name, VersionId="v1", SecretData="in a body")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.value(name)["SecretData"], "in a body")

    def test_30kb_values_in_the_query_string(self):
        unit = 'päss wörd & co = 100% "quoted" <tag> '
        data = ""
        while len((data + unit).encode()) <= 30720:
            data += unit
        name = self.create(data=data)
        self.assertEqual(self.value(name)["SecretData"], data)
        exact = "x" * 30720
        self.ok("PutSecretValue", SecretName=name, VersionId="v2", SecretData=exact)
        self.assertEqual(self.value(name)["SecretData"], exact)
        binary = b64(os.urandom(23040))  # 30720 Base64 characters
        self.assertEqual(len(binary), 30720)
        self.ok("PutSecretValue", SecretName=name, VersionId="v3", SecretData=binary, SecretDataType="binary")
        self.assertEqual(self.value(name)["SecretData"], binary)
        self.fails(400, "InvalidParameter", "PutSecretValue", SecretName=name, VersionId="v4", SecretData="y" * 30721)
        self.fails(400, "InvalidParameter", "CreateSecret", SecretName=self.name(), VersionId="v1", SecretData="y" * 30721)

    def test_name_rules(self):
        ok_name = "Aa0_/+=.@-" + "n" * 182
        self.assertEqual(len(ok_name), 192)
        self.create(name=ok_name)
        self.assertEqual(self.value(ok_name)["SecretName"], ok_name)
        for bad in ["n" * 193, "has space", "semi;colon", "acs/reserved", "ünicode", "colon:name"]:
            self.fails(400, "InvalidParameter", "CreateSecret", SecretName=bad, VersionId="v1", SecretData="x")
        self.create(name="xacs/not-a-prefix")

    def test_required_and_invalid_parameters(self):
        n = self.name()
        self.fails(400, "MissingParameter", "CreateSecret", VersionId="v1", SecretData="x")
        self.fails(400, "MissingParameter", "CreateSecret", SecretName=n, SecretData="x")
        self.fails(400, "MissingParameter", "CreateSecret", SecretName=n, VersionId="v1")
        self.fails(400, "InvalidParameter", "CreateSecret", SecretName=n, VersionId="v" * 65, SecretData="x")
        self.fails(400, "InvalidParameter", "CreateSecret", SecretName=n, VersionId="has space", SecretData="x")
        self.fails(400, "InvalidParameter", "CreateSecret", SecretName=n, VersionId="v1", SecretData="x",
                   SecretDataType="Text")
        self.fails(400, "InvalidParameter", "CreateSecret", SecretName=n, VersionId="v1", SecretData="not base64!",
                   SecretDataType="binary")
        self.fails(400, "InvalidParameter", "CreateSecret", SecretName=n, VersionId="v1", SecretData="x",
                   SecretType="Rds")
        self.fails(400, "InvalidParameter", "CreateSecret", SecretName=n, VersionId="v1", SecretData="x",
                   EnableAutomaticRotation="true")
        self.fails(400, "InvalidParameter", "CreateSecret", SecretName=n, VersionId="v1", SecretData="x",
                   EnableAutomaticRotation="maybe")
        self.fails(400, "InvalidParameter", "CreateSecret", SecretName=n, VersionId="v1", SecretData="x",
                   RotationInterval="7d")
        self.fails(400, "InvalidParameter", "CreateSecret", SecretName=n, VersionId="v1", SecretData="x",
                   ExtendedConfig="{}")
        self.fails(400, "InvalidParameter", "CreateSecret", SecretName=n, VersionId="v1", SecretData="x",
                   Description="d" * 1025)
        self.fails(400, "InvalidParameter", "CreateSecret", SecretName=n, VersionId="v1", SecretData="x",
                   Tags="not json")
        self.fails(400, "InvalidParameter", "CreateSecret", SecretName=n, VersionId="v1", SecretData="x",
                   Tags=json.dumps([{"TagKey": "aliyun-x", "TagValue": "v"}]))
        too_many = [{"TagKey": "k%d" % i, "TagValue": "v"} for i in range(11)]
        self.fails(400, "Rejected.LimitExceeded", "CreateSecret", SecretName=n, VersionId="v1", SecretData="x",
                   Tags=json.dumps(too_many))
        # None of the failures created anything.
        self.fails(404, "Forbidden.ResourceNotFound", "DescribeSecret", SecretName=n)
        # Explicit default values of the managed-type settings are fine.
        self.create(name=n, SecretType="Generic", EnableAutomaticRotation="false", Description="d" * 1024)

    def test_duplicate_name(self):
        name = self.create()
        self.fails(409, "Rejected.ResourceExist", "CreateSecret", SecretName=name, VersionId="v9", SecretData="x")
        self.assertEqual(self.value(name)["SecretData"], "s3cret-value")

    def test_unknown_secret(self):
        for action, extra in [("GetSecretValue", {}), ("DescribeSecret", {}), ("UpdateSecret", {"Description": "x"}),
                              ("PutSecretValue", {"VersionId": "v2", "SecretData": "x"}),
                              ("ListSecretVersionIds", {}), ("DeleteSecret", {}), ("RestoreSecret", {}),
                              ("UpdateSecretVersionStage", {"VersionStage": "ACSCurrent", "MoveToVersion": "v1"}),
                              ("RotateSecret", {"VersionId": "v2"}),
                              ("UpdateSecretRotationPolicy", {"EnableAutomaticRotation": "false"})]:
            self.fails(404, "Forbidden.ResourceNotFound", action, SecretName="no-such-secret", **extra)
            self.fails(400, "MissingParameter", action, **extra)
        # A name of impossible shape is just unknown, not malformed.
        self.fails(404, "Forbidden.ResourceNotFound", "GetSecretValue", SecretName="bad name!" * 40)

    def test_secret_arn_everywhere(self):
        name = self.create()
        self.assertEqual(self.value(arn(name))["SecretName"], name)
        self.assertEqual(self.ok("DescribeSecret", SecretName=arn(name))["SecretName"], name)
        self.ok("PutSecretValue", SecretName=arn(name), VersionId="v2", SecretData="by arn")
        self.assertEqual(self.value(name)["SecretData"], "by arn")
        self.ok("UpdateSecret", SecretName=arn(name), Description="arn")
        self.ok("TagResource", SecretName=arn(name), Tags=json.dumps([{"TagKey": "k", "TagValue": "v"}]))
        self.assertEqual(self.ok("ListSecretVersionIds", SecretName=arn(name))["SecretName"], name)
        # Another account's or region's ARN names nothing here.
        self.fails(404, "Forbidden.ResourceNotFound", "GetSecretValue",
                   SecretName="acs:kms:%s:999:secret/%s" % (REGION, name))
        self.fails(404, "Forbidden.ResourceNotFound", "GetSecretValue",
                   SecretName="acs:kms:cn-beijing:%s:secret/%s" % (ACCOUNT, name))
        self.fails(404, "Forbidden.ResourceNotFound", "GetSecretValue",
                   SecretName="acs:kms:%s:%s:key/%s" % (REGION, ACCOUNT, name))

    def test_dry_run(self):
        name = self.create()
        self.fails(400, "DryRunOperationError", "GetSecretValue", SecretName=name, DryRun="true")
        self.fails(404, "Forbidden.ResourceNotFound", "GetSecretValue", SecretName="nope", DryRun="true")
        self.fails(400, "InvalidParameter", "GetSecretValue", SecretName=name, DryRun="yes")
        self.assertEqual(self.value(name, DryRun="false", FetchExtendedConfig="true")["SecretData"], "s3cret-value")


class EncryptionKeyTest(SecretsBase):
    def test_customer_key_by_id_alias_and_arn(self):
        key = self.srv.create_key()["KeyId"]
        self.ok("CreateAlias", KeyId=key, AliasName="alias/secrets-cmk")
        for ref in [key, "alias/secrets-cmk", "acs:kms:%s:%s:key/%s" % (REGION, ACCOUNT, key)]:
            name = self.create(EncryptionKeyId=ref)
            d = self.ok("DescribeSecret", SecretName=name)
            self.assertEqual(d["EncryptionKeyId"], key)
            self.assertEqual(self.value(name)["SecretData"], "s3cret-value")

    def test_key_errors(self):
        n = self.name()
        self.fails(404, "Forbidden.KeyNotFound", "CreateSecret", SecretName=n, VersionId="v1", SecretData="x",
                   EncryptionKeyId="00000000-0000-4000-8000-000000000000")
        self.fails(404, "Forbidden.AliasNotFound", "CreateSecret", SecretName=n, VersionId="v1", SecretData="x",
                   EncryptionKeyId="alias/none-such")
        rsa = self.srv.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT/DECRYPT")["KeyId"]
        self.fails(400, "Unsupported.KeySpec", "CreateSecret", SecretName=n, VersionId="v1", SecretData="x",
                   EncryptionKeyId=rsa)
        disabled = self.srv.create_key()["KeyId"]
        self.ok("DisableKey", KeyId=disabled)
        self.fails(409, "Rejected.Disabled", "CreateSecret", SecretName=n, VersionId="v1", SecretData="x",
                   EncryptionKeyId=disabled)
        self.fails(404, "Forbidden.ResourceNotFound", "DescribeSecret", SecretName=n)

    def test_disabled_cmk_blocks_reads_and_writes(self):
        key = self.srv.create_key()["KeyId"]
        name = self.create(EncryptionKeyId=key)
        self.ok("DisableKey", KeyId=key)
        self.fails(409, "Rejected.Disabled", "GetSecretValue", SecretName=name)
        self.fails(409, "Rejected.Disabled", "PutSecretValue", SecretName=name, VersionId="v2", SecretData="x")
        self.fails(409, "Rejected.Disabled", "GetSecretValue", SecretName=name, DryRun="true")
        # Metadata stays readable.
        self.assertEqual(self.ok("DescribeSecret", SecretName=name)["EncryptionKeyId"], key)
        self.ok("EnableKey", KeyId=key)
        self.assertEqual(self.value(name)["SecretData"], "s3cret-value")
        self.assertNotIn("v2", self.versions(name, True))
        self.ok("ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7)
        self.fails(409, "Rejected.PendingDeletion", "GetSecretValue", SecretName=name)
        self.ok("CancelKeyDeletion", KeyId=key)
        self.assertEqual(self.value(name)["SecretData"], "s3cret-value")

    def test_zz_values_survive_cmk_rotation(self):
        # Last in this class: it moves the clock.
        key = self.srv.create_key(EnableAutomaticRotation="true", RotationInterval="7d")
        name = self.create(EncryptionKeyId=key["KeyId"])
        self.srv.advance_clock(8 * DAY)
        rotated = self.ok("DescribeKey", KeyId=key["KeyId"])["KeyMetadata"]["PrimaryKeyVersion"]
        self.assertNotEqual(rotated, key["PrimaryKeyVersion"])
        self.ok("PutSecretValue", SecretName=name, VersionId="v2", SecretData="after")
        self.assertEqual(self.value(name, VersionId="v1")["SecretData"], "s3cret-value")
        self.assertEqual(self.value(name)["SecretData"], "after")

    def test_service_managed_key_is_hidden(self):
        name = self.create()
        key = self.ok("DescribeSecret", SecretName=name)["EncryptionKeyId"]
        self.assertTrue(key)
        # The same service key for every secret without EncryptionKeyId.
        self.assertEqual(self.ok("DescribeSecret", SecretName=self.create())["EncryptionKeyId"], key)
        listed = []
        page = 1
        while True:
            r = self.ok("ListKeys", PageNumber=page, PageSize=100)
            listed += [k["KeyId"] for k in r["Keys"]["Key"]]
            if page * 100 >= r["TotalCount"]:
                break
            page += 1
        self.assertNotIn(key, listed)
        for action, params in [("DescribeKey", {"KeyId": key}), ("DisableKey", {"KeyId": key}),
                               ("Encrypt", {"KeyId": key, "Plaintext": b64(b"x")}),
                               ("ScheduleKeyDeletion", {"KeyId": key}),
                               ("TagResource", {"KeyId": key, "Tags": json.dumps([{"TagKey": "a", "TagValue": "b"}])}),
                               ("CreateSecret", {"SecretName": self.name(), "VersionId": "v1", "SecretData": "x",
                                                 "EncryptionKeyId": key})]:
            self.fails(404, "Forbidden.KeyNotFound", action, **params)
        self.assertEqual(self.value(name)["SecretData"], "s3cret-value")


class VersionsAndStagesTest(SecretsBase):
    def test_stage_transitions_over_several_puts(self):
        name = self.create(data="one")
        r = self.ok("PutSecretValue", SecretName=name, VersionId="v2", SecretData="two")
        self.assertEqual((r["SecretName"], r["VersionId"], r["VersionStages"]["VersionStage"]), (name, "v2", ["ACSCurrent"]))
        self.assertEqual(self.versions(name), {"v1": ["ACSPrevious"], "v2": ["ACSCurrent"]})
        self.ok("PutSecretValue", SecretName=name, VersionId="v3", SecretData="three")
        self.assertEqual(self.versions(name), {"v2": ["ACSPrevious"], "v3": ["ACSCurrent"]})
        self.assertEqual(self.versions(name, True), {"v1": [], "v2": ["ACSPrevious"], "v3": ["ACSCurrent"]})
        self.assertEqual(self.value(name)["SecretData"], "three")
        prev = self.value(name, VersionStage="ACSPrevious")
        self.assertEqual((prev["SecretData"], prev["VersionId"], prev["VersionStages"]["VersionStage"]),
                         ("two", "v2", ["ACSPrevious"]))
        old = self.value(name, VersionId="v1")
        self.assertEqual((old["SecretData"], old["VersionStages"]["VersionStage"]), ("one", []))
        r = self.ok("ListSecretVersionIds", SecretName=name)
        self.assertEqual((r["PageNumber"], r["PageSize"], r["TotalCount"]), (1, 20, 2))
        r = self.ok("ListSecretVersionIds", SecretName=name, IncludeDeprecated="true", PageSize=1, PageNumber=2)
        self.assertEqual(r["TotalCount"], 3)
        self.assertEqual([v["VersionId"] for v in r["VersionIds"]["VersionId"]], ["v2"])
        self.fails(400, "InvalidParameter", "ListSecretVersionIds", SecretName=name, PageSize=101)
        self.fails(400, "InvalidParameter", "ListSecretVersionIds", SecretName=name, IncludeDeprecated="sure")

    def test_get_by_version_and_stage(self):
        name = self.create(data="one")
        self.ok("PutSecretValue", SecretName=name, VersionId="v2", SecretData="two")
        self.assertEqual(self.value(name, VersionId="v2", VersionStage="ACSCurrent")["SecretData"], "two")
        self.fails(400, "InvalidParameter", "GetSecretValue", SecretName=name, VersionId="v1", VersionStage="ACSCurrent")
        self.fails(400, "InvalidParameter", "GetSecretValue", SecretName=name, VersionId="v1", VersionStage="Nobody")
        self.fails(404, "Forbidden.ResourceNotFound", "GetSecretValue", SecretName=name, VersionId="v9")
        self.fails(404, "Forbidden.ResourceNotFound", "GetSecretValue", SecretName=name, VersionStage="Nobody")

    def test_put_idempotency(self):
        name = self.create(data="one")
        self.ok("PutSecretValue", SecretName=name, VersionId="v2", SecretData="two")
        # Same VersionId, same data: success, nothing moves (v2 keeps ACSCurrent even though the
        # retry asks for a custom stage).
        r = self.ok("PutSecretValue", SecretName=name, VersionId="v1", SecretData="one",
                    VersionStages=json.dumps(["ACSCurrent"]))
        self.assertEqual(r["VersionStages"]["VersionStage"], ["ACSPrevious"])
        self.assertEqual(self.versions(name), {"v1": ["ACSPrevious"], "v2": ["ACSCurrent"]})
        self.fails(409, "Rejected.ResourceExist", "PutSecretValue", SecretName=name, VersionId="v1", SecretData="ONE")
        self.fails(409, "Rejected.ResourceExist", "PutSecretValue", SecretName=name, VersionId="v2",
                   SecretData=b64(b"two"), SecretDataType="binary")
        self.assertEqual(self.value(name)["SecretData"], "two")
        self.assertEqual(self.value(name, VersionId="v1")["SecretData"], "one")

    def test_version_stages_formats(self):
        name = self.create(data="one")
        self.ok("PutSecretValue", SecretName=name, VersionId="v2", SecretData="two",
                VersionStages=json.dumps({"VersionStage": ["ACSCurrent", "Blue"]}))
        self.assertEqual(self.versions(name), {"v1": ["ACSPrevious"], "v2": ["ACSCurrent", "Blue"]})
        r = self.ok("PutSecretValue", SecretName=name, VersionId="v3", SecretData="three",
                    VersionStages=json.dumps(["Blue", "Green"]))
        self.assertEqual(sorted(r["VersionStages"]["VersionStage"]), ["Blue", "Green"])
        self.assertEqual(self.versions(name), {"v1": ["ACSPrevious"], "v2": ["ACSCurrent"], "v3": ["Blue", "Green"]})
        self.assertEqual(self.value(name)["SecretData"], "two")
        self.assertEqual(self.value(name, VersionStage="Green")["SecretData"], "three")
        for bad in ["ACSCurrent", "[]", "[\"ACSPrevious\"]", "[1]", "[\"a\", \"a\"]", "[\"ACSOther\"]",
                    "{\"VersionStage\": \"ACSCurrent\"}", "{\"Stages\": [\"x\"]}", "[\"has space\"]",
                    json.dumps(["s%d" % i for i in range(11)]), json.dumps(["x" * 65])]:
            self.fails(400, "InvalidParameter", "PutSecretValue", SecretName=name, VersionId="v9", SecretData="x",
                       VersionStages=bad)
        self.assertNotIn("v9", self.versions(name, True))

    def test_update_secret_version_stage(self):
        name = self.create(data="one")
        self.ok("PutSecretValue", SecretName=name, VersionId="v2", SecretData="two")
        self.ok("PutSecretValue", SecretName=name, VersionId="v3", SecretData="three", VersionStages='["Custom"]')
        r = self.ok("UpdateSecretVersionStage", SecretName=name, VersionStage="ACSCurrent", RemoveFromVersion="v2",
                    MoveToVersion="v3")
        self.assertEqual(r["SecretName"], name)
        self.assertEqual(self.versions(name), {"v2": ["ACSPrevious"], "v3": ["ACSCurrent", "Custom"]})
        # Moving ACSCurrent without naming its holder; the old current becomes ACSPrevious.
        self.ok("UpdateSecretVersionStage", SecretName=name, VersionStage="ACSCurrent", MoveToVersion="v1")
        self.assertEqual(self.versions(name), {"v1": ["ACSCurrent"], "v3": ["ACSPrevious", "Custom"]})
        # Moving it where it already is changes nothing.
        self.ok("UpdateSecretVersionStage", SecretName=name, VersionStage="ACSCurrent", MoveToVersion="v1")
        self.assertEqual(self.versions(name), {"v1": ["ACSCurrent"], "v3": ["ACSPrevious", "Custom"]})
        self.ok("UpdateSecretVersionStage", SecretName=name, VersionStage="ACSPrevious", MoveToVersion="v2")
        self.assertEqual(self.versions(name), {"v1": ["ACSCurrent"], "v2": ["ACSPrevious"], "v3": ["Custom"]})
        # Custom labels move and can be removed.
        self.ok("UpdateSecretVersionStage", SecretName=name, VersionStage="Custom", MoveToVersion="v2")
        self.assertEqual(self.versions(name), {"v1": ["ACSCurrent"], "v2": ["ACSPrevious", "Custom"]})
        self.ok("UpdateSecretVersionStage", SecretName=name, VersionStage="New", MoveToVersion="v3")
        self.ok("UpdateSecretVersionStage", SecretName=name, VersionStage="Custom", RemoveFromVersion="v2")
        self.assertEqual(self.versions(name), {"v1": ["ACSCurrent"], "v2": ["ACSPrevious"], "v3": ["New"]})
        self.fails(404, "Forbidden.ResourceNotFound", "GetSecretValue", SecretName=name, VersionStage="Custom")
        # Errors, none of which changes anything.
        before = self.versions(name, True)
        self.fails(400, "MissingParameter", "UpdateSecretVersionStage", SecretName=name, VersionStage="New")
        self.fails(400, "MissingParameter", "UpdateSecretVersionStage", SecretName=name, MoveToVersion="v1")
        self.fails(400, "InvalidParameter", "UpdateSecretVersionStage", SecretName=name, VersionStage="ACSCurrent",
                   RemoveFromVersion="v1")
        self.fails(400, "InvalidParameter", "UpdateSecretVersionStage", SecretName=name, VersionStage="ACSPrevious",
                   RemoveFromVersion="v2")
        self.fails(400, "InvalidParameter", "UpdateSecretVersionStage", SecretName=name, VersionStage="New",
                   RemoveFromVersion="v1")
        self.fails(400, "InvalidParameter", "UpdateSecretVersionStage", SecretName=name, VersionStage="ACSCurrent",
                   RemoveFromVersion="v3", MoveToVersion="v2")
        self.fails(400, "InvalidParameter", "UpdateSecretVersionStage", SecretName=name, VersionStage="ACSBogus",
                   MoveToVersion="v2")
        self.fails(404, "Forbidden.ResourceNotFound", "UpdateSecretVersionStage", SecretName=name,
                   VersionStage="ACSCurrent", MoveToVersion="v9")
        self.fails(404, "Forbidden.ResourceNotFound", "UpdateSecretVersionStage", SecretName=name,
                   VersionStage="New", RemoveFromVersion="v9")
        self.assertEqual(self.versions(name, True), before)

    def test_version_limit_rolls_off_deprecated_versions(self):
        name = self.create(data="value-1")
        for i in range(2, 13):
            self.ok("PutSecretValue", SecretName=name, VersionId="v%d" % i, SecretData="value-%d" % i)
        all_versions = self.versions(name, True)
        self.assertEqual(len(all_versions), 10)
        self.assertNotIn("v1", all_versions)
        self.assertNotIn("v2", all_versions)
        self.assertEqual(all_versions["v12"], ["ACSCurrent"])
        self.assertEqual(all_versions["v11"], ["ACSPrevious"])
        self.fails(404, "Forbidden.ResourceNotFound", "GetSecretValue", SecretName=name, VersionId="v1")
        self.assertEqual(self.value(name, VersionId="v3")["SecretData"], "value-3")

    def test_version_limit_when_every_version_has_a_label(self):
        name = self.create(data="value-1")
        for i in range(2, 11):
            self.ok("PutSecretValue", SecretName=name, VersionId="v%d" % i, SecretData="x",
                    VersionStages=json.dumps(["Label%d" % i]))
        self.assertEqual(len(self.versions(name)), 10)
        self.fails(400, "Rejected.LimitExceeded", "PutSecretValue", SecretName=name, VersionId="v11", SecretData="y")
        self.assertNotIn("v11", self.versions(name, True))
        self.assertEqual(self.value(name)["VersionId"], "v1")
        # Freeing a label makes room again: the unlabelled version rolls off.
        self.ok("UpdateSecretVersionStage", SecretName=name, VersionStage="Label2", RemoveFromVersion="v2")
        self.ok("PutSecretValue", SecretName=name, VersionId="v11", SecretData="y")
        versions = self.versions(name, True)
        self.assertNotIn("v2", versions)
        self.assertEqual(versions["v11"], ["ACSCurrent"])
        self.assertEqual(versions["v1"], ["ACSPrevious"])


class MetadataTest(SecretsBase):
    def test_describe_and_update(self):
        key = self.srv.create_key()["KeyId"]
        name = self.create(EncryptionKeyId=key, Description="first",
                           Tags=json.dumps([{"TagKey": "team", "TagValue": "sec"}, {"TagKey": "env", "TagValue": "prod"}]))
        d = self.ok("DescribeSecret", SecretName=name)
        self.assertEqual((d["Arn"], d["SecretName"], d["SecretType"], d["EncryptionKeyId"], d["Description"],
                          d["PlannedDeleteTime"], d["AutomaticRotation"]),
                         (arn(name), name, "Generic", key, "first", "", "Disabled"))
        self.assertNotIn("Tags", d)
        self.assertNotIn("SecretData", d)
        d = self.ok("DescribeSecret", SecretName=name, FetchTags="true")
        self.assertEqual([(t["TagKey"], t["TagValue"]) for t in d["Tags"]["Tag"]], [("env", "prod"), ("team", "sec")])
        self.fails(400, "InvalidParameter", "DescribeSecret", SecretName=name, FetchTags="1")
        self.srv.advance_clock(5)
        r = self.ok("UpdateSecret", SecretName=name, Description="second")
        self.assertEqual(r["SecretName"], name)
        d2 = self.ok("DescribeSecret", SecretName=name)
        self.assertEqual(d2["Description"], "second")
        self.assertGreater(parse_time(d2["UpdateTime"]), parse_time(d2["CreateTime"]))
        self.ok("UpdateSecret", SecretName=name, Description="")
        self.assertEqual(self.ok("DescribeSecret", SecretName=name)["Description"], "")
        self.fails(400, "InvalidParameter", "UpdateSecret", SecretName=name, Description="d" * 1025)
        self.fails(400, "InvalidParameter", "UpdateSecret", SecretName=name, **{"ExtendedConfig.CustomData.k": "v"})

    def test_list_secrets_paging_and_tags(self):
        names = [self.create(name="list-page-%d" % i, Tags=json.dumps([{"TagKey": "n", "TagValue": str(i)}]))
                 for i in range(3)]
        total = self.ok("ListSecrets")["TotalCount"]
        self.assertGreaterEqual(total, 3)
        seen = []
        for page in range(1, total + 1):
            r = self.ok("ListSecrets", PageNumber=page, PageSize=1, FetchTags="true")
            self.assertEqual((r["PageNumber"], r["PageSize"], r["TotalCount"]), (page, 1, total))
            seen += r["SecretList"]["Secret"]
        self.assertEqual(len(seen), total)
        mine = [s for s in seen if s["SecretName"] in names]
        self.assertEqual([s["SecretName"] for s in mine], names, "creation order")
        self.assertEqual(mine[1]["Tags"]["Tag"], [{"TagKey": "n", "TagValue": "1"}])
        for field in ("SecretType", "CreateTime", "UpdateTime", "PlannedDeleteTime"):
            self.assertIn(field, mine[0])
        self.assertNotIn("Tags", self.ok("ListSecrets", PageSize=100)["SecretList"]["Secret"][0])
        self.assertEqual(self.ok("ListSecrets", PageNumber=1000)["SecretList"]["Secret"], [])
        self.fails(400, "InvalidParameter", "ListSecrets", PageSize=0)
        self.fails(400, "InvalidParameter", "ListSecrets", PageNumber=0)

    def test_list_secrets_filters(self):
        a = self.create(name="flt-alpha-db", Description="database password",
                        Tags=json.dumps([{"TagKey": "env", "TagValue": "prod"}, {"TagKey": "team", "TagValue": "a"}]))
        b = self.create(name="flt-beta-api", Description="api token",
                        Tags=json.dumps([{"TagKey": "env", "TagValue": "dev"}]))
        c = self.create(name="flt-gamma-db", Description="other")

        def names(filters):
            r = self.ok("ListSecrets", PageSize=100, Filters=json.dumps(filters))
            self.assertEqual(r["TotalCount"], len(r["SecretList"]["Secret"]))
            return sorted(s["SecretName"] for s in r["SecretList"]["Secret"] if s["SecretName"].startswith("flt-"))

        self.assertEqual(names([{"Key": "SecretName", "Values": ["-db"]}]), [a, c])
        self.assertEqual(names([{"Key": "SecretName", "Values": ["alpha", "beta"]}]), [a, b])
        self.assertEqual(names([{"Key": "Description", "Values": ["token"]}]), [b])
        self.assertEqual(names([{"Key": "TagKey", "Values": ["env"]}]), [a, b])
        self.assertEqual(names([{"Key": "TagValue", "Values": ["prod", "dev"]}]), [a, b])
        self.assertEqual(names([{"Key": "TagKey", "Values": ["env"]}, {"Key": "SecretName", "Values": ["-db"]}]), [a])
        self.assertEqual(names([{"Key": "TagKey", "Values": ["team"]}, {"Key": "TagValue", "Values": ["dev"]}]), [])
        self.assertEqual(names([{"Key": "SecretType", "Values": ["Generic"]}, {"Key": "SecretName", "Values": ["flt-"]}]),
                         [a, b, c])
        self.assertEqual(names([{"Key": "SecretType", "Values": ["Rds"]}]), [])
        self.assertEqual(names([{"Key": "Creator", "Values": [ACCOUNT]}, {"Key": "SecretName", "Values": ["gamma"]}]), [c])
        self.assertEqual(names([{"Key": "Creator", "Values": ["42"]}]), [])
        self.assertEqual(names([{"Key": "DKMSInstanceId", "Values": ["kst-1"]}]), [])
        # Values are literal text, not patterns.
        self.assertEqual(names([{"Key": "SecretName", "Values": ["%"]}, {"Key": "SecretName", "Values": ["_"]}]), [])
        for bad in ["nope", "{}", json.dumps([{"Key": "Colour", "Values": ["x"]}]),
                    json.dumps([{"Key": "SecretName", "Values": []}]), json.dumps([{"Key": "SecretName", "Values": [1]}]),
                    json.dumps([{"Key": "SecretName", "Values": [""]}]), json.dumps([{"Key": "SecretName"}]),
                    json.dumps([{"Key": "SecretName", "Values": ["v"] * 11}]),
                    json.dumps([{"Key": "SecretName", "Values": ["v"]}] * 11)]:
            self.fails(400, "InvalidParameter", "ListSecrets", Filters=bad)

    def test_tags_on_secrets(self):
        name = self.create()
        self.ok("TagResource", SecretName=name, Tags=json.dumps([{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}]))
        self.ok("TagResource", SecretName=name, Tags=json.dumps([{"TagKey": "a", "TagValue": "3"}]))
        self.ok("UntagResource", SecretName=name, TagKeys=json.dumps(["b", "unknown"]))
        d = self.ok("DescribeSecret", SecretName=name, FetchTags="true")
        self.assertEqual(d["Tags"]["Tag"], [{"TagKey": "a", "TagValue": "3"}])
        self.fails(404, "Forbidden.ResourceNotFound", "TagResource", SecretName="no-such",
                   Tags=json.dumps([{"TagKey": "a", "TagValue": "1"}]))
        self.fails(404, "Forbidden.ResourceNotFound", "UntagResource", SecretName="no-such", TagKeys='["a"]')
        key = self.srv.create_key()["KeyId"]
        self.fails(400, "InvalidParameter", "TagResource", SecretName=name, KeyId=key,
                   Tags=json.dumps([{"TagKey": "a", "TagValue": "1"}]))
        many = [{"TagKey": "k%d" % i, "TagValue": "v"} for i in range(10)]
        self.fails(400, "Rejected.LimitExceeded", "TagResource", SecretName=name, Tags=json.dumps(many))
        # ListResourceTags stays key-only: a SecretName is an unknown parameter there.
        self.fails(400, "MissingParameter", "ListResourceTags", SecretName=name)

    def test_rotation_is_unsupported_for_generic_secrets(self):
        name = self.create()
        self.fails(400, "Rejected.Unsupported", "RotateSecret", SecretName=name, VersionId="v2")
        self.fails(400, "MissingParameter", "RotateSecret", SecretName=name)
        for enable, extra in [("true", {"RotationInterval": "7d"}), ("false", {})]:
            self.fails(400, "Rejected.Unsupported", "UpdateSecretRotationPolicy", SecretName=name,
                       EnableAutomaticRotation=enable, **extra)
        self.fails(400, "MissingParameter", "UpdateSecretRotationPolicy", SecretName=name)
        self.fails(400, "MissingParameter", "UpdateSecretRotationPolicy", SecretName=name, EnableAutomaticRotation="true")
        for bad in ["5h", "366d", "x", "7w", "d"]:
            self.fails(400, "InvalidParameter", "UpdateSecretRotationPolicy", SecretName=name,
                       EnableAutomaticRotation="true", RotationInterval=bad)
        # Nothing changed.
        self.assertEqual(self.versions(name, True), {"v1": ["ACSCurrent"]})
        self.assertEqual(self.ok("DescribeSecret", SecretName=name)["AutomaticRotation"], "Disabled")
        self.assertEqual(self.value(name)["AutomaticRotation"], "Disabled")


class DeletionTest(SecretsBase):
    """Own server: it moves the clock."""

    def test_recovery_window_rules(self):
        name = self.create(Tags=json.dumps([{"TagKey": "k", "TagValue": "v"}]))
        self.ok("PutSecretValue", SecretName=name, VersionId="v2", SecretData="two", VersionStages='["ACSCurrent","Keep"]')
        self.fails(400, "InvalidParameter", "DeleteSecret", SecretName=name, RecoveryWindowInDays=6)
        self.fails(400, "InvalidParameter", "DeleteSecret", SecretName=name, RecoveryWindowInDays=31)
        self.fails(400, "InvalidParameter", "DeleteSecret", SecretName=name, ForceDeleteWithoutRecovery="yes")
        self.fails(400, "InvalidParameter", "RestoreSecret", SecretName=name)
        r = self.ok("DeleteSecret", SecretName=name)
        self.assertEqual(r["SecretName"], name)
        planned = parse_time(r["PlannedDeleteTime"])
        self.assertLess(abs(planned - (time.time() + 30 * DAY)), 3 * DAY)
        d = self.ok("DescribeSecret", SecretName=name)
        self.assertEqual(d["PlannedDeleteTime"], r["PlannedDeleteTime"])
        listed = [s for s in self.ok("ListSecrets", PageSize=100)["SecretList"]["Secret"] if s["SecretName"] == name]
        self.assertEqual(listed[0]["PlannedDeleteTime"], r["PlannedDeleteTime"])
        for action, extra in [("GetSecretValue", {}), ("PutSecretValue", {"VersionId": "v3", "SecretData": "x"}),
                              ("UpdateSecret", {"Description": "x"}), ("ListSecretVersionIds", {}),
                              ("UpdateSecretVersionStage", {"VersionStage": "ACSCurrent", "MoveToVersion": "v1"}),
                              ("TagResource", {"Tags": json.dumps([{"TagKey": "a", "TagValue": "b"}])}),
                              ("UntagResource", {"TagKeys": '["k"]'}), ("RotateSecret", {"VersionId": "v3"}),
                              ("UpdateSecretRotationPolicy", {"EnableAutomaticRotation": "false"}),
                              ("DeleteSecret", {}), ("DeleteSecret", {"RecoveryWindowInDays": 7})]:
            self.fails(409, "Rejected.ResourceInDeleteWindow", action, SecretName=name, **extra)
        self.fails(409, "Rejected.ResourceInDeleteWindow", "CreateSecret", SecretName=name, VersionId="v1", SecretData="x")
        # Restored intact: values, versions, stages, tags.
        self.assertEqual(self.ok("RestoreSecret", SecretName=name)["SecretName"], name)
        self.assertEqual(self.ok("DescribeSecret", SecretName=name, FetchTags="true")["PlannedDeleteTime"], "")
        self.assertEqual(self.versions(name, True), {"v1": ["ACSPrevious"], "v2": ["ACSCurrent", "Keep"]})
        self.assertEqual(self.value(name)["SecretData"], "two")
        self.assertEqual(self.value(name, VersionId="v1")["SecretData"], "s3cret-value")
        self.assertEqual(self.ok("DescribeSecret", SecretName=name, FetchTags="true")["Tags"]["Tag"],
                         [{"TagKey": "k", "TagValue": "v"}])

    def test_force_delete(self):
        name = self.create(Tags=json.dumps([{"TagKey": "k", "TagValue": "v"}]))
        r = self.ok("DeleteSecret", SecretName=name, ForceDeleteWithoutRecovery="true", RecoveryWindowInDays=99)
        self.assertEqual((r["SecretName"], r["PlannedDeleteTime"]), (name, ""))
        for action in ("DescribeSecret", "GetSecretValue", "RestoreSecret", "DeleteSecret"):
            self.fails(404, "Forbidden.ResourceNotFound", action, SecretName=name)
        # The name is free again, and nothing of the old secret comes back with it.
        self.create(name=name, data="new")
        self.assertEqual(self.versions(name, True), {"v1": ["ACSCurrent"]})
        self.assertEqual(self.value(name)["SecretData"], "new")
        self.assertEqual(self.ok("DescribeSecret", SecretName=name, FetchTags="true")["Tags"]["Tag"], [])
        # Forcing also works on a secret already in its window.
        self.ok("DeleteSecret", SecretName=name, RecoveryWindowInDays=7)
        self.ok("DeleteSecret", SecretName=name, ForceDeleteWithoutRecovery="true")
        self.fails(404, "Forbidden.ResourceNotFound", "DescribeSecret", SecretName=name)

    def test_sweep_after_the_window(self):
        keep = self.create(Tags=json.dumps([{"TagKey": "k", "TagValue": "v"}]))
        gone = self.create(Tags=json.dumps([{"TagKey": "k", "TagValue": "v"}]))
        self.ok("DeleteSecret", SecretName=gone, RecoveryWindowInDays=7)
        self.ok("DeleteSecret", SecretName=keep, RecoveryWindowInDays=8)
        self.srv.advance_clock(7 * DAY - 120)
        self.assertTrue(self.ok("DescribeSecret", SecretName=gone)["PlannedDeleteTime"])
        self.srv.advance_clock(240)
        for action in ("DescribeSecret", "GetSecretValue", "RestoreSecret"):
            self.fails(404, "Forbidden.ResourceNotFound", action, SecretName=gone)
        self.assertNotIn(gone, [s["SecretName"] for s in self.ok("ListSecrets", PageSize=100)["SecretList"]["Secret"]])
        self.assertIn("maintenance: deleted secret %s" % gone, self.srv.stderr_text())
        # The other one, still inside its window, comes back intact.
        self.ok("RestoreSecret", SecretName=keep)
        self.assertEqual(self.value(keep)["SecretData"], "s3cret-value")
        self.srv.advance_clock(30 * DAY)
        self.assertEqual(self.value(keep)["SecretData"], "s3cret-value")
        # The swept name is reusable and starts clean.
        self.create(name=gone, data="fresh")
        self.assertEqual(self.ok("DescribeSecret", SecretName=gone, FetchTags="true")["Tags"]["Tag"], [])


class QuotaTest(unittest.TestCase):
    def test_max_secrets(self):
        with Server(config="[auth]\nreplay_cache_capacity = 200000\n[secrets]\nmax_secrets = 3\n") as srv:
            for i in range(3):
                srv.ok("CreateSecret", SecretName="q%d" % i, VersionId="v1", SecretData="x")
            r = srv.call("CreateSecret", SecretName="q3", VersionId="v1", SecretData="x")
            self.assertEqual((r.status, r.code), (400, "Rejected.LimitExceeded"), r)
            # A secret in its recovery window still counts; a deleted one does not.
            srv.ok("DeleteSecret", SecretName="q0", RecoveryWindowInDays=7)
            r = srv.call("CreateSecret", SecretName="q3", VersionId="v1", SecretData="x")
            self.assertEqual(r.code, "Rejected.LimitExceeded", r)
            srv.ok("DeleteSecret", SecretName="q0", ForceDeleteWithoutRecovery="true")
            srv.ok("CreateSecret", SecretName="q3", VersionId="v1", SecretData="x")
            self.assertEqual(srv.ok("ListSecrets")["TotalCount"], 3)


class PersistenceAndPlaintextTest(unittest.TestCase):
    TEXT = "PLAINTEXT-CANARY-7f3a9c-text-value"
    BINARY = b"\x00BINARY-CANARY-51d2e8\xff\xfe" * 4

    def test_restart_and_no_plaintext_at_rest(self):
        with Server() as srv:
            key = srv.create_key()["KeyId"]
            srv.ok("CreateSecret", SecretName="persist-text", VersionId="v1", SecretData=self.TEXT + "-1",
                   Description="kept", Tags=json.dumps([{"TagKey": "t", "TagValue": "1"}]))
            srv.ok("PutSecretValue", SecretName="persist-text", VersionId="v2", SecretData=self.TEXT + "-2")
            srv.ok("PutSecretValue", SecretName="persist-text", VersionId="v3", SecretData=self.TEXT + "-3",
                   VersionStages='["Blue"]')
            srv.ok("CreateSecret", SecretName="persist-binary", VersionId="b1", SecretData=b64(self.BINARY),
                   SecretDataType="binary", EncryptionKeyId=key)
            srv.ok("DeleteSecret", SecretName="persist-binary", RecoveryWindowInDays=7)
            srv.ok("RestoreSecret", SecretName="persist-binary")
            srv.ok("TagResources", RegionId=REGION, ResourceType="secret",
                   **{"ResourceId.1": "persist-binary", "Tag.1.Key": "bt", "Tag.1.Value": "2"})
            before = self.snapshot(srv)
            # While running (WAL not checkpointed), then after a restart (checkpointed).
            self.assert_no_plaintext(srv)
            srv.restart()
            self.assertEqual(self.snapshot(srv), before)
            self.assert_no_plaintext(srv)
            # Still writable after the restart, under the same service key.
            srv.ok("PutSecretValue", SecretName="persist-text", VersionId="v4", SecretData=self.TEXT + "-4")
            self.assertEqual(srv.ok("GetSecretValue", SecretName="persist-text")["SecretData"], self.TEXT + "-4")
            srv.stop()
            self.assert_no_plaintext(srv)

    def snapshot(self, srv):
        out = {}
        for name in ("persist-text", "persist-binary"):
            d = srv.ok("DescribeSecret", SecretName=name, FetchTags="true")
            d.pop("RequestId")
            vs = srv.ok("ListSecretVersionIds", SecretName=name, IncludeDeprecated="true")["VersionIds"]["VersionId"]
            values = {}
            for v in vs:
                g = srv.ok("GetSecretValue", SecretName=name, VersionId=v["VersionId"])
                values[v["VersionId"]] = (g["SecretData"], g["SecretDataType"], g["VersionStages"]["VersionStage"])
            out[name] = (d, values)
        self.assertEqual(out["persist-text"][1]["v3"], (self.TEXT + "-3", "text", ["Blue"]))
        self.assertEqual(out["persist-text"][1]["v2"][0], self.TEXT + "-2")
        self.assertEqual(out["persist-binary"][1]["b1"], (b64(self.BINARY), "binary", ["ACSCurrent"]))
        self.assertEqual(out["persist-binary"][0]["Tags"]["Tag"], [{"TagKey": "bt", "TagValue": "2"}])
        return out

    def assert_no_plaintext(self, srv):
        needles = [self.TEXT.encode(), b"CANARY-7f3a9c", b"BINARY-CANARY-51d2e8", self.BINARY,
                   b64(self.BINARY).encode(), b64(self.BINARY)[8:40].encode()]
        files = [os.path.join(srv.data_dir, f) for f in ("kmsd.db", "kmsd.db-wal", "kmsd.db-shm")]
        files.append(srv.stderr_path)
        seen_names = False
        for path in files:
            if not os.path.exists(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            for needle in needles:
                self.assertNotIn(needle, data, "%s holds %r" % (path, needle[:20]))
            seen_names = seen_names or b"persist-text" in data
        # The scan read the real store: the (public) secret names are in it.
        self.assertTrue(seen_names)


class BindingTest(unittest.TestCase):
    """A stored value only opens for the secret and version it was written for."""

    def test_swapped_values_do_not_open(self):
        with Server() as srv:
            srv.ok("CreateSecret", SecretName="alice", VersionId="v1", SecretData="alice-secret")
            srv.ok("CreateSecret", SecretName="bob", VersionId="v1", SecretData="bob-secret")
            srv.ok("PutSecretValue", SecretName="bob", VersionId="v2", SecretData="bob-2")
            srv.stop()
            db = sqlite3.connect(os.path.join(srv.data_dir, "kmsd.db"))
            row = db.execute("SELECT data_key, sealed_value FROM secret_versions WHERE secret_name='alice'").fetchone()
            db.execute("UPDATE secret_versions SET data_key=?, sealed_value=? WHERE secret_name='bob' AND version_id='v1'", row)
            # bob v2's own value and data key, but relabelled binary: the data type is bound too.
            db.execute("UPDATE secret_versions SET data_type='binary' WHERE secret_name='bob' AND version_id='v2'")
            db.commit()
            db.close()
            srv.start()
            r = srv.call("GetSecretValue", SecretName="bob", VersionId="v1")
            self.assertEqual(r.status, 500, r)
            self.assertNotIn("alice-secret", r.body)
            r = srv.call("GetSecretValue", SecretName="bob", VersionId="v2")
            self.assertEqual(r.status, 500, r)
            self.assertNotIn("bob-2", r.body)
            self.assertEqual(srv.ok("GetSecretValue", SecretName="alice")["SecretData"], "alice-secret")
            self.assertIn("does not open", srv.stderr_text())


if __name__ == "__main__":
    unittest.main()
