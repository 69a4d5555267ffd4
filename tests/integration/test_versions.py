"""Key versions (spec/actions.md C3, spec/key-states.md §4, §6): CreateKeyVersion,
DescribeKeyVersion, ListKeyVersions and UpdateRotationPolicy, their response shapes, every
parameter and state rule with its exact code, the version quota and the manual-rotation switch.
Timed (automatic) rotation is in test_rotation.py."""

import calendar
import json
import time
import unittest

from kmsd import DEFAULT_CONFIG, Server, b64, new_uuid, unb64

DAY = 86400
# Background passes would race the tests' own clock moves: keep the thread to its first pass.
QUIET_CONFIG = DEFAULT_CONFIG + "[maintenance]\ninterval = 86400\n"


def parse_time(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


class VersionsBase(unittest.TestCase):
    config = QUIET_CONFIG

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(config=cls.config).start()

    @classmethod
    def tearDownClass(cls):
        # A clean exit matters: sanitizer builds report leaks and errors through the status.
        status = cls.srv.stop()
        log = cls.srv.stderr_text()
        cls.srv.__exit__(None, None, None)
        if status != 0:
            raise AssertionError("kmsd exited with status %s:\n%s" % (status, log[-4000:]))

    def err(self, r, status, code):
        self.assertEqual((r.status, r.code), (status, code), r)
        self.assertTrue(r.json.get("RequestId"), r)

    def describe(self, key_id):
        return self.srv.ok("DescribeKey", KeyId=key_id)["KeyMetadata"]

    def versions(self, key_id, **params):
        return self.srv.ok("ListKeyVersions", KeyId=key_id, **params)

    def version_ids(self, key_id):
        r = self.versions(key_id, PageSize=100)
        return [v["KeyVersionId"] for v in r["KeyVersions"]["KeyVersion"]]

    def encrypt(self, key_id, data, **ctx):
        params = {"KeyId": key_id, "Plaintext": b64(data)}
        if ctx:
            params["EncryptionContext"] = json.dumps(ctx)
        return self.srv.ok("Encrypt", **params)

    def decrypt(self, blob, **ctx):
        params = {"CiphertextBlob": blob}
        if ctx:
            params["EncryptionContext"] = json.dumps(ctx)
        return self.srv.ok("Decrypt", **params)

    def external_key(self):
        return self.srv.create_key(Origin="EXTERNAL")["KeyId"]

    def disabled_key(self, **params):
        key_id = self.srv.create_key(**params)["KeyId"]
        self.srv.ok("DisableKey", KeyId=key_id)
        return key_id

    def pending_deletion_key(self, **params):
        key_id = self.srv.create_key(**params)["KeyId"]
        self.srv.ok("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=30)
        return key_id


class CreateKeyVersionTest(VersionsBase):
    def test_new_key_has_one_version_which_is_primary(self):
        md = self.srv.create_key()
        r = self.versions(md["KeyId"])
        self.assertEqual((r["TotalCount"], r["PageNumber"], r["PageSize"]), (1, 1, 10))
        [v] = r["KeyVersions"]["KeyVersion"]
        self.assertEqual(v, {"KeyId": md["KeyId"], "KeyVersionId": md["PrimaryKeyVersion"],
                             "CreationDate": md["CreationDate"]})
        self.assertEqual(md["LastRotationDate"], md["CreationDate"])

    def test_symmetric_new_version_becomes_primary(self):
        for spec in ("Aliyun_AES_256", "Aliyun_AES_128", "Aliyun_SM4"):
            with self.subTest(spec=spec):
                md = self.srv.create_key(KeySpec=spec)
                key_id, v1 = md["KeyId"], md["PrimaryKeyVersion"]
                c1 = self.encrypt(key_id, b"first", purpose="test")
                self.assertEqual(c1["KeyVersionId"], v1)
                # A later clock makes the new LastRotationDate distinguishable.
                now = parse_time(self.srv.advance_clock(DAY)["Now"])
                r = self.srv.ok("CreateKeyVersion", KeyId=key_id)
                kv = r["KeyVersion"]
                self.assertEqual(sorted(r), ["KeyVersion", "RequestId"])
                self.assertEqual(sorted(kv), ["CreationDate", "KeyId", "KeyVersionId"])
                self.assertEqual(kv["KeyId"], key_id)
                self.assertNotEqual(kv["KeyVersionId"], v1)
                self.assertLessEqual(abs(parse_time(kv["CreationDate"]) - now), 5)
                after = self.describe(key_id)
                self.assertEqual(after["PrimaryKeyVersion"], kv["KeyVersionId"])
                self.assertEqual(after["LastRotationDate"], kv["CreationDate"])
                self.assertEqual(after["AutomaticRotation"], "Disabled")
                self.assertNotIn("NextRotationDate", after)
                self.assertEqual(self.version_ids(key_id), [v1, kv["KeyVersionId"]])
                # Encrypt and GenerateDataKey use the new primary; old ciphertexts still open.
                c2 = self.encrypt(key_id, b"second")
                self.assertEqual(c2["KeyVersionId"], kv["KeyVersionId"])
                dk = self.srv.ok("GenerateDataKey", KeyId=key_id)
                self.assertEqual(dk["KeyVersionId"], kv["KeyVersionId"])
                d1 = self.decrypt(c1["CiphertextBlob"], purpose="test")
                self.assertEqual((unb64(d1["Plaintext"]), d1["KeyVersionId"]), (b"first", v1))
                d2 = self.decrypt(c2["CiphertextBlob"])
                self.assertEqual((unb64(d2["Plaintext"]), d2["KeyVersionId"]),
                                 (b"second", kv["KeyVersionId"]))

    def test_recomputes_next_rotation_date(self):
        md = self.srv.create_key(EnableAutomaticRotation="true", RotationInterval="10d")
        self.assertEqual(parse_time(md["NextRotationDate"]), parse_time(md["CreationDate"]) + 10 * DAY)
        self.srv.advance_clock(3 * DAY)
        kv = self.srv.ok("CreateKeyVersion", KeyId=md["KeyId"])["KeyVersion"]
        after = self.describe(md["KeyId"])
        self.assertEqual(after["LastRotationDate"], kv["CreationDate"])
        self.assertEqual(parse_time(after["NextRotationDate"]), parse_time(kv["CreationDate"]) + 10 * DAY)
        self.assertEqual(after["RotationInterval"], "864000s")
        self.assertEqual(after["AutomaticRotation"], "Enabled")

    def test_alias_and_arn_accepted(self):
        md = self.srv.create_key()
        alias = "alias/versions-" + new_uuid()[:8]
        self.srv.ok("CreateAlias", AliasName=alias, KeyId=md["KeyId"])
        kv = self.srv.ok("CreateKeyVersion", KeyId=alias)["KeyVersion"]
        self.assertEqual(kv["KeyId"], md["KeyId"])  # the resolved id, never the alias
        kv2 = self.srv.ok("CreateKeyVersion", KeyId=md["Arn"])["KeyVersion"]
        self.assertEqual(kv2["KeyId"], md["KeyId"])
        self.assertEqual(self.describe(md["KeyId"])["PrimaryKeyVersion"], kv2["KeyVersionId"])
        r = self.versions(alias)
        self.assertEqual(r["TotalCount"], 3)
        self.assertEqual({v["KeyId"] for v in r["KeyVersions"]["KeyVersion"]}, {md["KeyId"]})
        d = self.srv.ok("DescribeKeyVersion", KeyId=alias, KeyVersionId=kv["KeyVersionId"])
        self.assertEqual(d["KeyVersion"], kv)

    def test_v3_signature(self):
        md = self.srv.create_key()
        r = self.srv.call_v3("CreateKeyVersion", KeyId=md["KeyId"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.describe(md["KeyId"])["PrimaryKeyVersion"],
                         r.json["KeyVersion"]["KeyVersionId"])

    def test_reference_errors(self):
        self.err(self.srv.call("CreateKeyVersion"), 400, "MissingParameter")
        self.err(self.srv.call("CreateKeyVersion", KeyId=""), 400, "MissingParameter")
        self.err(self.srv.call("CreateKeyVersion", KeyId=new_uuid()), 404, "Forbidden.KeyNotFound")
        self.err(self.srv.call("CreateKeyVersion", KeyId="00000000-0000-4000-8000-0000000ve7e1"),
                 404, "Forbidden.KeyNotFound")
        self.err(self.srv.call("CreateKeyVersion", KeyId="alias/none-" + new_uuid()[:8]),
                 404, "Forbidden.AliasNotFound")

    def test_external_key_refused(self):
        key_id = self.external_key()
        self.err(self.srv.call("CreateKeyVersion", KeyId=key_id), 400, "Unsupported.Origin")
        self.assertEqual(len(self.version_ids(key_id)), 1)

    def test_state_rules(self):
        cases = [(self.disabled_key(), 409, "Rejected.Disabled"),
                 (self.pending_deletion_key(), 409, "Rejected.PendingDeletion")]
        for key_id, status, code in cases:
            with self.subTest(code=code):
                before = self.describe(key_id)
                self.err(self.srv.call("CreateKeyVersion", KeyId=key_id), status, code)
                self.assertEqual(len(self.version_ids(key_id)), 1, "no version was added")
                self.assertEqual(self.describe(key_id)["PrimaryKeyVersion"], before["PrimaryKeyVersion"])
        # Origin is checked before state: an EXTERNAL key pending deletion is still Unsupported.Origin.
        ext = self.external_key()
        self.srv.ok("ScheduleKeyDeletion", KeyId=ext, PendingWindowInDays=7)
        self.err(self.srv.call("CreateKeyVersion", KeyId=ext), 400, "Unsupported.Origin")

    def test_reenabled_key_accepts_versions_again(self):
        key_id = self.disabled_key()
        self.srv.ok("EnableKey", KeyId=key_id)
        self.srv.ok("CreateKeyVersion", KeyId=key_id)
        self.assertEqual(len(self.version_ids(key_id)), 2)

    def test_asymmetric_key_gets_a_version_without_primary(self):
        for spec, usage in (("RSA_2048", "SIGN/VERIFY"), ("EC_P256", "SIGN/VERIFY")):
            with self.subTest(spec=spec):
                md = self.srv.create_key(KeySpec=spec, KeyUsage=usage)
                self.assertNotIn("PrimaryKeyVersion", md)
                kv = self.srv.ok("CreateKeyVersion", KeyId=md["KeyId"])["KeyVersion"]
                after = self.describe(md["KeyId"])
                self.assertNotIn("PrimaryKeyVersion", after)
                self.assertEqual(after["LastRotationDate"], md["LastRotationDate"])
                ids = self.version_ids(md["KeyId"])
                self.assertEqual(len(ids), 2)
                self.assertEqual(ids[1], kv["KeyVersionId"])


class QuotaTest(VersionsBase):
    config = QUIET_CONFIG + "[keys]\nmax_key_versions = 4\n"

    def test_version_quota_counts_all_keys(self):
        a = self.srv.create_key()["KeyId"]
        b = self.srv.create_key()["KeyId"]
        self.srv.ok("CreateKeyVersion", KeyId=a)
        self.srv.ok("CreateKeyVersion", KeyId=b)  # 4 versions over two keys: the quota
        self.err(self.srv.call("CreateKeyVersion", KeyId=a), 400, "Rejected.LimitExceeded")
        self.err(self.srv.call("CreateKeyVersion", KeyId=b), 400, "Rejected.LimitExceeded")
        self.assertEqual(len(self.version_ids(a)) + len(self.version_ids(b)), 4)
        # Automatic rotation respects the quota too: due, but nothing is created.
        self.srv.ok("UpdateRotationPolicy", KeyId=a, EnableAutomaticRotation="true", RotationInterval="7d")
        primary = self.describe(a)["PrimaryKeyVersion"]
        self.srv.advance_clock(8 * DAY)
        self.assertEqual(self.describe(a)["PrimaryKeyVersion"], primary)
        self.assertEqual(len(self.version_ids(a)), 2)
        self.assertIn("key version quota", self.srv.stderr_text())
        # Making room lets the overdue rotation happen on the next pass.
        self.srv.ok("ScheduleKeyDeletion", KeyId=b, PendingWindowInDays=7)
        self.srv.advance_clock(7 * DAY + 1)
        self.srv.advance_clock(0)  # the pass may have reached a before it deleted b
        self.assertEqual(len(self.version_ids(a)), 3)
        self.assertNotEqual(self.describe(a)["PrimaryKeyVersion"], primary)


class ManualRotationOffTest(VersionsBase):
    config = QUIET_CONFIG + "[keys]\nsymmetric_manual_rotation = false\n"

    def test_symmetric_refused_asymmetric_allowed(self):
        for spec in ("Aliyun_AES_256", "Aliyun_AES_128", "Aliyun_SM4"):
            key_id = self.srv.create_key(KeySpec=spec)["KeyId"]
            self.err(self.srv.call("CreateKeyVersion", KeyId=key_id), 400, "Unsupported.KeySpec")
            self.assertEqual(len(self.version_ids(key_id)), 1)
        self.err(self.srv.call("CreateKeyVersion", KeyId=self.external_key()), 400, "Unsupported.Origin")
        rsa = self.srv.create_key(KeySpec="RSA_2048", KeyUsage="SIGN/VERIFY")["KeyId"]
        self.srv.ok("CreateKeyVersion", KeyId=rsa)
        self.assertEqual(len(self.version_ids(rsa)), 2)
        # Automatic rotation is not manual rotation: it still works.
        key_id = self.srv.create_key(EnableAutomaticRotation="true", RotationInterval="7d")["KeyId"]
        self.srv.advance_clock(7 * DAY + 1)
        self.assertEqual(len(self.version_ids(key_id)), 2)


class DescribeAndListTest(VersionsBase):
    def test_describe_each_version(self):
        md = self.srv.create_key()
        made = [self.srv.ok("CreateKeyVersion", KeyId=md["KeyId"])["KeyVersion"] for _ in range(2)]
        listed = self.versions(md["KeyId"])["KeyVersions"]["KeyVersion"]
        self.assertEqual(listed[1:], made)
        for v in listed:
            r = self.srv.ok("DescribeKeyVersion", KeyId=md["KeyId"], KeyVersionId=v["KeyVersionId"])
            self.assertEqual(sorted(r), ["KeyVersion", "RequestId"])
            self.assertEqual(r["KeyVersion"], v)

    def test_describe_errors(self):
        md = self.srv.create_key()
        other = self.srv.create_key()
        self.err(self.srv.call("DescribeKeyVersion", KeyId=md["KeyId"]), 400, "MissingParameter")
        self.err(self.srv.call("DescribeKeyVersion", KeyVersionId=md["PrimaryKeyVersion"]),
                 400, "MissingParameter")
        for bad in (new_uuid(), "not-a-uuid", other["PrimaryKeyVersion"], "x" * 300):
            with self.subTest(version=bad[:40]):
                self.err(self.srv.call("DescribeKeyVersion", KeyId=md["KeyId"], KeyVersionId=bad),
                         404, "Forbidden.KeyVersionNotFound")
        # Parameters come before the key is looked up; the message names the parameter.
        r = self.srv.call("DescribeKeyVersion", KeyId=new_uuid())
        self.err(r, 400, "MissingParameter")
        self.assertIn("KeyVersionId", r.json["Message"])
        # The key is resolved before the version.
        self.err(self.srv.call("DescribeKeyVersion", KeyId=new_uuid(), KeyVersionId=md["PrimaryKeyVersion"]),
                 404, "Forbidden.KeyNotFound")
        self.err(self.srv.call("DescribeKeyVersion", KeyId="alias/none-" + new_uuid()[:8],
                               KeyVersionId=md["PrimaryKeyVersion"]), 404, "Forbidden.AliasNotFound")

    def test_any_state_can_be_read(self):
        keys = [self.disabled_key(), self.pending_deletion_key(), self.external_key()]
        for key_id in keys:
            with self.subTest(key=key_id):
                r = self.versions(key_id)
                self.assertEqual(r["TotalCount"], 1)
                [v] = r["KeyVersions"]["KeyVersion"]
                d = self.srv.ok("DescribeKeyVersion", KeyId=key_id, KeyVersionId=v["KeyVersionId"])
                self.assertEqual(d["KeyVersion"], v)
        # PendingImport: the EXTERNAL key's single version exists before any material.
        self.assertEqual(self.describe(keys[2])["KeyState"], "PendingImport")

    def test_paging_and_order(self):
        md = self.srv.create_key()
        made = [md["PrimaryKeyVersion"]]
        for i in range(11):
            if i % 4 == 0:
                self.srv.advance_clock(60)  # some versions share a second, some do not
            made.append(self.srv.ok("CreateKeyVersion", KeyId=md["KeyId"])["KeyVersion"]["KeyVersionId"])
        r = self.versions(md["KeyId"])
        self.assertEqual((r["TotalCount"], r["PageNumber"], r["PageSize"]), (12, 1, 10))
        page1 = [v["KeyVersionId"] for v in r["KeyVersions"]["KeyVersion"]]
        r2 = self.versions(md["KeyId"], PageNumber=2)
        page2 = [v["KeyVersionId"] for v in r2["KeyVersions"]["KeyVersion"]]
        self.assertEqual(page1 + page2, made, "creation order, every version once")
        r3 = self.versions(md["KeyId"], PageNumber=3)
        self.assertEqual((r3["TotalCount"], r3["KeyVersions"]["KeyVersion"]), (12, []))
        ones = [self.versions(md["KeyId"], PageNumber=n, PageSize=1)["KeyVersions"]["KeyVersion"][0]["KeyVersionId"]
                for n in range(1, 13)]
        self.assertEqual(ones, made)
        dates = [parse_time(v["CreationDate"]) for v in self.versions(md["KeyId"], PageSize=100)["KeyVersions"]["KeyVersion"]]
        self.assertEqual(dates, sorted(dates))

    def test_list_errors(self):
        md = self.srv.create_key()
        self.err(self.srv.call("ListKeyVersions"), 400, "MissingParameter")
        for params in ({"PageSize": "0"}, {"PageSize": "101"}, {"PageNumber": "0"}, {"PageSize": "x"}):
            with self.subTest(params=params):
                self.err(self.srv.call("ListKeyVersions", KeyId=md["KeyId"], **params), 400, "InvalidParameter")
        self.err(self.srv.call("ListKeyVersions", KeyId=new_uuid()), 404, "Forbidden.KeyNotFound")
        self.assertEqual(self.versions(md["KeyId"], PageSize=100)["PageSize"], 100)

    def test_xml_shape(self):
        md = self.srv.create_key()
        r = self.srv.call("ListKeyVersions", KeyId=md["KeyId"], Format="XML")
        self.assertEqual(r.status, 200, r)
        self.assertIn("<KeyVersionId>%s</KeyVersionId>" % md["PrimaryKeyVersion"], r.body)


class UpdateRotationPolicyTest(VersionsBase):
    def policy(self, key_id, enable, interval=None):
        params = {"KeyId": key_id, "EnableAutomaticRotation": enable}
        if interval is not None:
            params["RotationInterval"] = interval
        return self.srv.call("UpdateRotationPolicy", **params)

    def test_enable_and_disable(self):
        md = self.srv.create_key()
        r = self.policy(md["KeyId"], "true", "7d")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(r.json), ["RequestId"])
        after = self.describe(md["KeyId"])
        self.assertEqual(after["AutomaticRotation"], "Enabled")
        self.assertEqual(after["RotationInterval"], "604800s")
        self.assertEqual(parse_time(after["NextRotationDate"]), parse_time(after["LastRotationDate"]) + 7 * DAY)
        self.assertEqual(after["LastRotationDate"], md["LastRotationDate"])
        self.assertEqual(after["PrimaryKeyVersion"], md["PrimaryKeyVersion"], "no rotation yet")
        # A new interval reschedules from the last rotation, not from now.
        self.srv.advance_clock(DAY)
        self.assertEqual(self.policy(md["KeyId"], "True", "30d").status, 200)
        after = self.describe(md["KeyId"])
        self.assertEqual(after["RotationInterval"], "2592000s")
        self.assertEqual(parse_time(after["NextRotationDate"]), parse_time(md["LastRotationDate"]) + 30 * DAY)
        # Disabling drops the interval and the next date; a stray interval is ignored.
        self.assertEqual(self.policy(md["KeyId"], "false", "garbage").status, 200)
        after = self.describe(md["KeyId"])
        self.assertEqual(after["AutomaticRotation"], "Disabled")
        self.assertNotIn("RotationInterval", after)
        self.assertNotIn("NextRotationDate", after)
        self.assertEqual(after["LastRotationDate"], md["LastRotationDate"])
        # Disabling twice is fine.
        self.assertEqual(self.policy(md["KeyId"], "false").status, 200)

    def test_interval_units(self):
        key_id = self.srv.create_key()["KeyId"]
        for text, seconds in (("604800s", 604800), ("604800", 604800), ("168h", 604800),
                              ("10080m", 604800), ("730d", 63072000), ("63072000s", 63072000),
                              ("8d", 691200)):
            with self.subTest(interval=text):
                self.assertEqual(self.policy(key_id, "true", text).status, 200)
                self.assertEqual(self.describe(key_id)["RotationInterval"], "%ds" % seconds)

    def test_interval_rejected(self):
        key_id = self.srv.create_key()["KeyId"]
        self.policy(key_id, "true", "10d")
        for text in ("6d", "731d", "604799s", "63072001", "3600s", "d", "7x", "-7d", "7 d", "weekly",
                     "99999999999999999999999d", "9223372036854775807s", "1.5d"):
            with self.subTest(interval=text):
                r = self.policy(key_id, "true", text)
                self.err(r, 400, "InvalidParameter")
                self.assertIn('"RotationInterval"', r.json["Message"])
        self.err(self.policy(key_id, "true"), 400, "MissingParameter")
        self.err(self.policy(key_id, "true", ""), 400, "MissingParameter")
        self.assertEqual(self.describe(key_id)["RotationInterval"], "864000s", "policy unchanged")

    def test_parameter_errors(self):
        key_id = self.srv.create_key()["KeyId"]
        self.err(self.srv.call("UpdateRotationPolicy", KeyId=key_id), 400, "MissingParameter")
        self.err(self.policy(key_id, "yes", "7d"), 400, "InvalidParameter")
        self.err(self.srv.call("UpdateRotationPolicy", EnableAutomaticRotation="true", RotationInterval="7d"),
                 400, "MissingParameter")
        # Parameters are checked before the key is looked up.
        self.err(self.policy(new_uuid(), "true", "1d"), 400, "InvalidParameter")
        self.err(self.policy(new_uuid(), "true", "7d"), 404, "Forbidden.KeyNotFound")

    def test_alias_refused_arn_accepted(self):
        md = self.srv.create_key()
        alias = "alias/rot-" + new_uuid()[:8]
        self.srv.ok("CreateAlias", AliasName=alias, KeyId=md["KeyId"])
        self.err(self.policy(alias, "true", "7d"), 400, "Unsupported.Alias")
        self.assertEqual(self.policy(md["Arn"], "true", "7d").status, 200)
        self.assertEqual(self.describe(md["KeyId"])["AutomaticRotation"], "Enabled")

    def test_key_kind_and_state_rules(self):
        rsa = self.srv.create_key(KeySpec="RSA_2048", KeyUsage="SIGN/VERIFY")["KeyId"]
        ec = self.srv.create_key(KeySpec="EC_P256", KeyUsage="SIGN/VERIFY")["KeyId"]
        cases = [
            (rsa, 400, "Unsupported.KeySpec"),
            (ec, 400, "Unsupported.KeySpec"),
            (self.external_key(), 400, "Unsupported.Origin"),
            (self.disabled_key(), 409, "Rejected.Disabled"),
            (self.pending_deletion_key(), 409, "Rejected.PendingDeletion"),
        ]
        for key_id, status, code in cases:
            for enable in ("true", "false"):
                with self.subTest(code=code, enable=enable):
                    self.err(self.policy(key_id, enable, "7d"), status, code)
                    self.assertEqual(self.describe(key_id)["AutomaticRotation"], "Disabled")
        # A suspended policy cannot be changed either, and stays as it was.
        key_id = self.srv.create_key(EnableAutomaticRotation="true", RotationInterval="9d")["KeyId"]
        self.srv.ok("DisableKey", KeyId=key_id)
        self.err(self.policy(key_id, "false"), 409, "Rejected.Disabled")
        md = self.describe(key_id)
        self.assertEqual((md["AutomaticRotation"], md["RotationInterval"]), ("Suspended", "777600s"))
        self.assertIn("NextRotationDate", md)
        self.srv.ok("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=30)
        self.err(self.policy(key_id, "true", "7d"), 409, "Rejected.PendingDeletion")
        md = self.describe(key_id)
        self.assertEqual((md["AutomaticRotation"], md["RotationInterval"]), ("Suspended", "777600s"))

    def test_create_key_rotation_rules(self):
        md = self.srv.create_key(EnableAutomaticRotation="true", RotationInterval="8d")
        self.assertEqual((md["AutomaticRotation"], md["RotationInterval"]), ("Enabled", "691200s"))
        self.assertEqual(parse_time(md["NextRotationDate"]), parse_time(md["CreationDate"]) + 8 * DAY)
        self.err(self.srv.call("CreateKey", Origin="EXTERNAL", EnableAutomaticRotation="true",
                               RotationInterval="7d"), 400, "Unsupported.Origin")
        self.err(self.srv.call("CreateKey", KeySpec="RSA_2048", KeyUsage="SIGN/VERIFY",
                               EnableAutomaticRotation="true", RotationInterval="7d"), 400, "Unsupported.KeySpec")
        self.err(self.srv.call("CreateKey", EnableAutomaticRotation="true"), 400, "MissingParameter")
        self.err(self.srv.call("CreateKey", EnableAutomaticRotation="true", RotationInterval="6d"),
                 400, "InvalidParameter")


if __name__ == "__main__":
    unittest.main()
