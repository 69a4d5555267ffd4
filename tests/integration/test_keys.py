"""Key lifecycle actions (spec/actions.md C1) and the action x state table of
spec/key-states.md §3-§5, against the real kmsd over TLS."""

import time
import xml.etree.ElementTree as ET

from common import (ACCOUNT, DAY, REGION, STATES, TIME_RE, UUID_RE, KmsTestCase, key_arn,
                    parse_time, tags_json)
from kmsd import b64

METADATA_FIELDS = {"KeyId", "Arn", "Description", "CreationDate", "Creator", "KeySpec", "KeyUsage",
                   "KeyState", "Origin", "ProtectionLevel", "DeleteDate", "MaterialExpireTime",
                   "AutomaticRotation", "LastRotationDate", "DeletionProtection"}

ODD_KEY_IDS = ("00000000-0000-4000-8000-0000000ve7e1", "key-hzz630494463ejqjx1234", "x",
               "a" * 300, "../../etc/passwd", "中文密钥", "alias", "' OR 1=1 --",
               "acs:kms:%s:%s:key/nope" % (REGION, ACCOUNT), "acs:kms:", "acs:kms:x:y:z",
               "08C33A6F-4E0A-4A1B-A3FA-7DDFA1D40000", "%00", " ")


class CreateKeyTest(KmsTestCase):
    """C1.1 CreateKey: defaults and every parameter."""

    def test_defaults(self):
        before = int(time.time())
        r = self.srv.call("CreateKey")
        md = self.assertOk(r)["KeyMetadata"]
        self.assertTrue(METADATA_FIELDS <= set(md), md)
        for k, v in md.items():
            self.assertIsInstance(v, str, k)
        self.assertTrue(UUID_RE.match(md["KeyId"]), md["KeyId"])
        self.assertEqual(md["Arn"], key_arn(md["KeyId"]))
        self.assertEqual(md["Description"], "")
        self.assertTrue(TIME_RE.match(md["CreationDate"]))
        self.assertLessEqual(abs(parse_time(md["CreationDate"]) - before), 5)
        self.assertEqual(md["Creator"], ACCOUNT)
        self.assertEqual(md["KeySpec"], "Aliyun_AES_256")
        self.assertEqual(md["KeyUsage"], "ENCRYPT/DECRYPT")
        self.assertEqual(md["KeyState"], "Enabled")
        self.assertEqual(md["Origin"], "Aliyun_KMS")
        self.assertEqual(md["ProtectionLevel"], "SOFTWARE")
        self.assertEqual(md["DeleteDate"], "")
        self.assertEqual(md["MaterialExpireTime"], "")
        self.assertTrue(UUID_RE.match(md["PrimaryKeyVersion"]))
        self.assertEqual(md["AutomaticRotation"], "Disabled")
        self.assertNotIn("RotationInterval", md)
        self.assertNotIn("NextRotationDate", md)
        self.assertEqual(md["LastRotationDate"], md["CreationDate"])
        self.assertEqual(md["DeletionProtection"], "Disabled")
        # DescribeKey returns the same metadata.
        self.assertEqual(self.describe(md["KeyId"]), md)

    def test_key_ids_are_unique(self):
        ids = {self.create_key()["KeyId"] for _ in range(5)}
        self.assertEqual(len(ids), 5)

    def test_key_specs(self):
        cases = [("Aliyun_AES_256", "Aliyun_AES_256", "ENCRYPT/DECRYPT"),
                 ("Aliyun_AES_128", "Aliyun_AES_128", "ENCRYPT/DECRYPT"),
                 ("Aliyun_SM4", "Aliyun_SM4", "ENCRYPT/DECRYPT"),
                 # Tianyi spellings are accepted on input; the canonical name comes back.
                 ("AES_256", "Aliyun_AES_256", "ENCRYPT/DECRYPT"),
                 ("Ctyun_SM4", "Aliyun_SM4", "ENCRYPT/DECRYPT"),
                 ("SM4", "Aliyun_SM4", "ENCRYPT/DECRYPT"),
                 ("RSA_2048", "RSA_2048", "SIGN/VERIFY"),
                 ("EC_P256", "EC_P256", "SIGN/VERIFY"),
                 ("EC_P256K", "EC_P256K", "SIGN/VERIFY"),
                 ("EC_SM2", "EC_SM2", "SIGN/VERIFY"),
                 ("Ctyun_SM2", "EC_SM2", "SIGN/VERIFY"),
                 ("SM2", "EC_SM2", "SIGN/VERIFY")]
        for given, canonical, usage in cases:
            with self.subTest(spec=given):
                md = self.create_key(KeySpec=given)
                self.assertEqual(md["KeySpec"], canonical)
                self.assertEqual(md["KeyUsage"], usage)
                self.assertEqual(self.describe(md["KeyId"])["KeySpec"], canonical)
                if canonical.startswith("Aliyun_"):
                    self.assertTrue(UUID_RE.match(md["PrimaryKeyVersion"]))
                else:
                    # Asymmetric keys have no primary version (key-states.md §6.2).
                    self.assertIn(md.get("PrimaryKeyVersion", ""), ("",))

    def test_bad_key_specs(self):
        for spec in ("aliyun_aes_256", "AES_512", "Aliyun_AES_192", "RSA_1024", "HMAC", "AES-256",
                     "Aliyun_AES_256 "):
            with self.subTest(spec=spec):
                self.assertFails("CreateKey", 400, "InvalidParameter", "KeySpec", KeySpec=spec)

    def test_empty_key_spec_is_the_default(self):
        self.assertEqual(self.create_key(KeySpec="")["KeySpec"], "Aliyun_AES_256")

    def test_key_usage(self):
        ok = [("Aliyun_AES_256", "ENCRYPT/DECRYPT"), ("Aliyun_SM4", "ENCRYPT/DECRYPT"),
              ("Aliyun_AES_128", "Encrypt/Decrypt"), ("RSA_2048", "ENCRYPT/DECRYPT"),
              ("RSA_2048", "SIGN/VERIFY"), ("EC_P256", "SIGN/VERIFY"), ("EC_SM2", "ENCRYPT/DECRYPT"),
              ("EC_SM2", "Sign/Verify")]
        for spec, usage in ok:
            with self.subTest(spec=spec, usage=usage):
                md = self.create_key(KeySpec=spec, KeyUsage=usage)
                self.assertEqual(md["KeyUsage"], usage.upper())
        bad = [("Aliyun_AES_256", "SIGN/VERIFY"), ("Aliyun_SM4", "SIGN/VERIFY"),
               ("EC_P256", "ENCRYPT/DECRYPT"), ("EC_P256K", "ENCRYPT/DECRYPT"),
               ("Aliyun_AES_256", "ENCRYPT"), ("Aliyun_AES_256", "SIGN"),
               ("Aliyun_AES_256", "ENCRYPT/DECRYPT/SIGN")]
        for spec, usage in bad:
            with self.subTest(spec=spec, usage=usage):
                self.assertFails("CreateKey", 400, "InvalidParameter", "KeyUsage", KeySpec=spec,
                                 KeyUsage=usage)

    def test_origin(self):
        self.assertEqual(self.create_key(Origin="Aliyun_KMS")["Origin"], "Aliyun_KMS")
        for spec in ("Aliyun_AES_256", "Aliyun_AES_128", "Aliyun_SM4"):
            md = self.create_key(Origin="EXTERNAL", KeySpec=spec)
            self.assertEqual((md["Origin"], md["KeyState"]), ("EXTERNAL", "PendingImport"))
            self.assertTrue(UUID_RE.match(md["PrimaryKeyVersion"]))
        for spec in ("RSA_2048", "EC_P256", "EC_SM2"):
            self.assertFails("CreateKey", 400, "Unsupported.Origin", KeySpec=spec, Origin="EXTERNAL")
        for origin in ("external", "aliyun_kms", "KMS", "HSM"):
            self.assertFails("CreateKey", 400, "InvalidParameter", "Origin", Origin=origin)

    def test_protection_level(self):
        self.assertEqual(self.create_key(ProtectionLevel="SOFTWARE")["ProtectionLevel"], "SOFTWARE")
        # No HSM back end is configured.
        self.assertFails("CreateKey", 400, "Unsupported.ProtectionLevel", ProtectionLevel="HSM")
        self.assertFails("CreateKey", 400, "Unsupported.ProtectionLevel", ProtectionLevel="HSM",
                         KeySpec="Aliyun_SM4")
        for level in ("software", "Hsm", "HARDWARE"):
            self.assertFails("CreateKey", 400, "InvalidParameter", "ProtectionLevel",
                             ProtectionLevel=level)

    def test_description_length_in_characters(self):
        for ch in ("d", "中", "\U0001F511"):  # 1-, 3- and 4-byte UTF-8
            with self.subTest(char=ch):
                md = self.create_key(Description=ch * 8192)
                self.assertEqual(md["Description"], ch * 8192)
                self.assertEqual(self.describe(md["KeyId"])["Description"], ch * 8192)
                self.assertFails("CreateKey", 400, "InvalidParameter", "Description",
                                 Description=ch * 8193)

    def test_tags(self):
        md = self.create_key(Tags=tags_json([("Project", "Test"), ("env", "")]))
        tags = self.ok("ListResourceTags", KeyId=md["KeyId"])["Tags"]["Tag"]
        self.assertEqual(sorted((t["TagKey"], t["TagValue"]) for t in tags),
                         [("Project", "Test"), ("env", "")])
        before = self.ok("ListKeys", PageSize=100)["TotalCount"]
        for bad in ("not json", "{}", "[]", '[{"TagKey":""}]', '[{"TagKey":"a b"}]',
                    '[{"TagKey":"aliyun-x","TagValue":"v"}]', '[{"TagKey":"k"},{"TagKey":"k"}]',
                    '[{"TagKey":1,"TagValue":"v"}]'):
            with self.subTest(tags=bad):
                self.assertFails("CreateKey", 400, "InvalidParameter", "Tags", Tags=bad)
        self.assertFails("CreateKey", 400, "Rejected.LimitExceeded",
                         Tags=tags_json([("k%d" % i, "v") for i in range(11)]))
        # A refused CreateKey creates nothing (tags are applied atomically with the key).
        self.assertEqual(self.ok("ListKeys", PageSize=100)["TotalCount"], before)

    def test_automatic_rotation(self):
        for interval, seconds in (("7d", 7 * DAY), ("604800s", 7 * DAY), ("168h", 7 * DAY),
                                  ("10080m", 7 * DAY), ("604800", 7 * DAY), ("730d", 730 * DAY),
                                  ("365d", 365 * DAY)):
            with self.subTest(interval=interval):
                md = self.create_key(EnableAutomaticRotation="true", RotationInterval=interval)
                self.assertEqual(md["AutomaticRotation"], "Enabled")
                self.assertEqual(md["RotationInterval"], "%ds" % seconds)
                self.assertEqual(parse_time(md["NextRotationDate"]),
                                 parse_time(md["CreationDate"]) + seconds)
                self.assertEqual(md["LastRotationDate"], md["CreationDate"])

    def test_automatic_rotation_errors(self):
        self.assertFails("CreateKey", 400, "MissingParameter", "RotationInterval",
                         EnableAutomaticRotation="true")
        for interval in ("6d", "731d", "604799s", "abc", "7x", "d", "-7d", "7.5d", "0", "1e6",
                         "99999999999999999999d"):
            with self.subTest(interval=interval):
                self.assertFails("CreateKey", 400, "InvalidParameter", "RotationInterval",
                                 EnableAutomaticRotation="true", RotationInterval=interval)
        self.assertFails("CreateKey", 400, "InvalidParameter", "EnableAutomaticRotation",
                         EnableAutomaticRotation="yes")
        self.assertFails("CreateKey", 400, "Unsupported.KeySpec", KeySpec="RSA_2048",
                         EnableAutomaticRotation="true", RotationInterval="30d")
        self.assertFails("CreateKey", 400, "Unsupported.Origin", Origin="EXTERNAL",
                         EnableAutomaticRotation="true", RotationInterval="30d")
        # Without EnableAutomaticRotation=true the interval is ignored.
        md = self.create_key(EnableAutomaticRotation="false", RotationInterval="junk")
        self.assertEqual(md["AutomaticRotation"], "Disabled")
        md = self.create_key(RotationInterval="junk")
        self.assertEqual(md["AutomaticRotation"], "Disabled")

    def test_ignored_parameters(self):
        md = self.create_key(Policy='{"Statement":[]}', KeyStorageMechanism="x")
        self.assertEqual(md["KeyState"], "Enabled")

    def test_v3(self):
        r = self.srv.call_v3("CreateKey", KeySpec="Aliyun_SM4", Description="v3")
        md = self.assertOk(r)["KeyMetadata"]
        self.assertEqual((md["KeySpec"], md["Description"]), ("Aliyun_SM4", "v3"))


class DescribeKeyTest(KmsTestCase):
    """C1.2 DescribeKey: by id, alias and ARN; unknown keys of any shape are 404."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.srv.call("CreateKey", Description="described")
        cls.key_id = r.json["KeyMetadata"]["KeyId"]
        cls.srv.ok("CreateAlias", AliasName="alias/described", KeyId=cls.key_id)

    def test_by_id_alias_and_arn(self):
        for ref in (self.key_id, "alias/described", key_arn(self.key_id)):
            with self.subTest(ref=ref):
                md = self.describe(ref)
                self.assertEqual(md["KeyId"], self.key_id)  # always the id, never the alias
                self.assertEqual(md["Description"], "described")
        r = self.srv.call_v3("DescribeKey", KeyId="alias/described")
        self.assertEqual(self.assertOk(r)["KeyMetadata"]["KeyId"], self.key_id)

    def test_unknown_key_ids_of_any_shape(self):
        for ref in ODD_KEY_IDS:
            with self.subTest(ref=ref):
                self.assertFails("DescribeKey", 404, "Forbidden.KeyNotFound", KeyId=ref)

    def test_arn_of_other_region_or_account(self):
        for arn in ("acs:kms:cn-beijing:%s:key/%s" % (ACCOUNT, self.key_id),
                    "acs:kms:%s:999:key/%s" % (REGION, self.key_id),
                    "acs:kms:%s:%s:alias/described" % (REGION, ACCOUNT),
                    "acs:kms:%s:%s:key/" % (REGION, ACCOUNT)):
            with self.subTest(arn=arn):
                self.assertFails("DescribeKey", 404, "Forbidden.KeyNotFound", KeyId=arn)

    def test_unknown_alias(self):
        for alias in ("alias/nope", "alias/", "alias/DESCRIBED", "alias/described/x"):
            with self.subTest(alias=alias):
                self.assertFails("DescribeKey", 404, "Forbidden.AliasNotFound", KeyId=alias)

    def test_missing_key_id(self):
        self.assertFails("DescribeKey", 400, "MissingParameter", "KeyId")
        self.assertFails("DescribeKey", 400, "MissingParameter", "KeyId", KeyId="")

    def test_keyid_is_case_sensitive(self):
        self.assertFails("DescribeKey", 404, "Forbidden.KeyNotFound", KeyId=self.key_id.upper())


class ListKeysTest(KmsTestCase):
    """C1.3 ListKeys: paging, shapes and types (§0.4, protocol.md §8.2)."""

    def test_paging(self):
        r = self.ok("ListKeys")
        self.assertEqual((r["TotalCount"], r["PageNumber"], r["PageSize"]), (0, 1, 10))
        self.assertEqual(r["Keys"], {"Key": []})
        first = self.create_key()["KeyId"]
        r = self.ok("ListKeys")
        self.assertEqual(r["TotalCount"], 1)
        self.assertEqual(r["Keys"]["Key"], [{"KeyId": first, "KeyArn": key_arn(first)}])
        ids = [first] + [self.create_key()["KeyId"] for _ in range(4)]
        # Every state is listed.
        self.ok("DisableKey", KeyId=ids[1])
        self.ok("ScheduleKeyDeletion", KeyId=ids[2])
        ids.append(self.key_in("PendingImport"))
        seen = []
        for page in (1, 2, 3):
            r = self.ok("ListKeys", PageSize=2, PageNumber=page)
            self.assertEqual((r["TotalCount"], r["PageNumber"], r["PageSize"]), (6, page, 2))
            for k in (r["TotalCount"], r["PageNumber"], r["PageSize"]):
                self.assertIsInstance(k, int)
            self.assertIsInstance(r["Keys"]["Key"], list)
            self.assertEqual(len(r["Keys"]["Key"]), 2)
            seen += [k["KeyId"] for k in r["Keys"]["Key"]]
        self.assertEqual(sorted(seen), sorted(ids))
        self.assertEqual(seen[0], first)  # creation order
        r = self.ok("ListKeys", PageSize=4, PageNumber=2)
        self.assertEqual(len(r["Keys"]["Key"]), 2)
        r = self.ok("ListKeys", PageSize=2, PageNumber=4)
        self.assertEqual((r["TotalCount"], r["Keys"]["Key"]), (6, []))
        r = self.ok("ListKeys", PageSize=100, PageNumber=2147483647)
        self.assertEqual(r["Keys"]["Key"], [])
        r = self.ok("ListKeys", PageSize=100)
        self.assertEqual(len(r["Keys"]["Key"]), 6)
        r = self.ok("ListKeys", PageSize=1)
        self.assertEqual(len(r["Keys"]["Key"]), 1)

    def test_bad_paging(self):
        for size in ("0", "101", "-1", "abc", "1.5", "+5", " 5", "5 ", "0x10", "99999999999999999999"):
            with self.subTest(size=size):
                self.assertFails("ListKeys", 400, "InvalidParameter", "PageSize", PageSize=size)
        for page in ("0", "-1", "x", "2147483648"):
            with self.subTest(page=page):
                self.assertFails("ListKeys", 400, "InvalidParameter", "PageNumber", PageNumber=page)

    def test_xml_lists(self):
        r = self.srv.call("ListKeys", Format="XML", PageSize=100)
        root = ET.fromstring(r.body)
        self.assertEqual(root.tag, "KMS")
        self.assertEqual(len(root.findall("Keys/Key")), int(root.findtext("TotalCount")))


class UpdateKeyDescriptionTest(KmsTestCase):
    """C1.4 UpdateKeyDescription."""

    def test_update(self):
        key_id = self.create_key(Description="old")["KeyId"]
        self.ok("UpdateKeyDescription", KeyId=key_id, Description="new one")
        self.assertEqual(self.describe(key_id)["Description"], "new one")
        self.ok("UpdateKeyDescription", KeyId=key_arn(key_id), Description="by arn")
        self.assertEqual(self.describe(key_id)["Description"], "by arn")
        self.ok("UpdateKeyDescription", KeyId=key_id, Description="中" * 8192)
        self.assertEqual(self.describe(key_id)["Description"], "中" * 8192)
        self.assertFails("UpdateKeyDescription", 400, "InvalidParameter", "Description",
                         KeyId=key_id, Description="中" * 8193)
        self.assertFails("UpdateKeyDescription", 400, "MissingParameter", "Description", KeyId=key_id)
        self.assertFails("UpdateKeyDescription", 400, "MissingParameter", "Description",
                         KeyId=key_id, Description="")
        self.assertFails("UpdateKeyDescription", 400, "MissingParameter", "KeyId", Description="x")
        self.assertFails("UpdateKeyDescription", 404, "Forbidden.KeyNotFound", KeyId="nope",
                         Description="x")
        self.assertEqual(self.describe(key_id)["Description"], "中" * 8192)

    def test_every_state(self):
        for state in STATES:
            with self.subTest(state=state):
                key_id = self.key_in(state)
                self.ok("UpdateKeyDescription", KeyId=key_id, Description="in " + state)
                md = self.describe(key_id)
                self.assertEqual((md["Description"], md["KeyState"]), ("in " + state, state))


class KeyStateTableTest(KmsTestCase):
    """spec/key-states.md §3-§4: every row for the actions of this server, in every state."""

    def expect(self, result, r):
        if result == "OK":
            self.assertEqual(r.status, 200, r)
        elif result.startswith("Rejected."):
            self.assertError(r, 409, result)
        else:
            raise AssertionError(result)

    def table(self, action, row, make_params, fresh=True):
        shared = {}
        for state, result in zip(STATES, row):
            with self.subTest(action=action, state=state):
                if fresh or state not in shared:
                    shared[state] = self.key_in(state)
                r = self.srv.call(action, **make_params(shared[state]))
                self.expect(result, r)

    def test_enable_key(self):
        self.table("EnableKey", ("OK", "OK", "Rejected.StateModifiedFailed",
                                 "Rejected.StateModifiedFailed"), lambda k: {"KeyId": k})

    def test_disable_key(self):
        self.table("DisableKey", ("OK", "OK", "Rejected.StateModifiedFailed",
                                  "Rejected.StateModifiedFailed"), lambda k: {"KeyId": k})

    def test_enable_disable_results(self):
        k = self.key_in("Disabled")
        self.ok("EnableKey", KeyId=k)
        self.assertEqual(self.describe(k)["KeyState"], "Enabled")
        self.ok("EnableKey", KeyId=k)  # idempotent
        self.ok("DisableKey", KeyId=k)
        self.ok("DisableKey", KeyId=k)
        self.assertEqual(self.describe(k)["KeyState"], "Disabled")
        # A refused transition changes nothing.
        k = self.key_in("PendingDeletion")
        before = self.describe(k)
        self.assertFails("EnableKey", 409, "Rejected.StateModifiedFailed", KeyId=k)
        self.assertEqual(self.describe(k), before)

    def test_schedule_key_deletion(self):
        self.table("ScheduleKeyDeletion", ("OK", "OK", "Rejected.StateModifiedFailed", "OK"),
                   lambda k: {"KeyId": k, "PendingWindowInDays": 7})

    def test_cancel_key_deletion(self):
        self.table("CancelKeyDeletion", ("Rejected.StateModifiedFailed",
                                         "Rejected.StateModifiedFailed", "OK",
                                         "Rejected.StateModifiedFailed"), lambda k: {"KeyId": k})

    def test_cancel_returns_to_enabled(self):
        for start in ("Enabled", "Disabled"):
            k = self.key_in(start)
            self.ok("ScheduleKeyDeletion", KeyId=k, PendingWindowInDays=7)
            self.ok("CancelKeyDeletion", KeyId=k)
            md = self.describe(k)
            # The seed's rule: back to Enabled even from Disabled (key-states.md §2).
            self.assertEqual((md["KeyState"], md["DeleteDate"]), ("Enabled", ""))
        # An EXTERNAL key without material goes back to PendingImport.
        k = self.key_in("PendingImport")
        self.ok("ScheduleKeyDeletion", KeyId=k, PendingWindowInDays=7)
        self.assertEqual(self.describe(k)["KeyState"], "PendingDeletion")
        self.ok("CancelKeyDeletion", KeyId=k)
        self.assertEqual(self.describe(k)["KeyState"], "PendingImport")

    def test_create_alias(self):
        names = iter("alias/state-%d" % i for i in range(100))
        self.table("CreateAlias", ("OK", "OK", "Rejected.StateModifiedFailed", "OK"),
                   lambda k: {"KeyId": k, "AliasName": next(names)})

    def test_delete_alias(self):
        for state in STATES:
            with self.subTest(state=state):
                k = self.key_in("Enabled" if state == "PendingDeletion" else state)
                name = "alias/del-" + state
                self.ok("CreateAlias", AliasName=name, KeyId=k)
                if state == "PendingDeletion":
                    self.ok("ScheduleKeyDeletion", KeyId=k)
                self.ok("DeleteAlias", AliasName=name)

    def test_update_alias_target(self):
        k = self.key_in("Enabled")
        self.ok("CreateAlias", AliasName="alias/moving", KeyId=k)
        self.table("UpdateAlias", ("OK", "OK", "Rejected.PendingDeletion", "OK"),
                   lambda t: {"KeyId": t, "AliasName": "alias/moving"})
        # The state of the key the alias points at now does not matter.
        self.ok("UpdateAlias", AliasName="alias/moving", KeyId=k)
        self.ok("ScheduleKeyDeletion", KeyId=k)
        target = self.key_in("Enabled")
        self.ok("UpdateAlias", AliasName="alias/moving", KeyId=target)

    def test_read_and_metadata_actions_in_every_state(self):
        for state in STATES:
            with self.subTest(state=state):
                k = self.key_in(state)
                self.ok("DescribeKey", KeyId=k)
                self.assertIn(k, [x["KeyId"] for x in self.ok("ListKeys", PageSize=100)["Keys"]["Key"]])
                self.ok("UpdateKeyDescription", KeyId=k, Description="d")
                self.ok("TagResource", KeyId=k, Tags=tags_json([("a", "b")]))
                self.ok("ListResourceTags", KeyId=k)
                self.ok("UntagResource", KeyId=k, TagKeys='["a"]')
                self.ok("ListAliasesByKeyId", KeyId=k)
                self.ok("ListAliases")

    def test_set_deletion_protection(self):
        self.table("SetDeletionProtection", ("OK", "OK", "Rejected.PendingDeletion", "OK"),
                   lambda k: {"KeyId": k, "EnableDeletionProtection": "true"})

    def test_crypto_rows(self):
        blobs = {}
        for state in ("Enabled", "Disabled", "PendingDeletion"):
            k = self.key_in("Enabled")
            blobs[state] = (k, self.encrypt(k)["CiphertextBlob"])
            if state == "Disabled":
                self.ok("DisableKey", KeyId=k)
            elif state == "PendingDeletion":
                self.ok("ScheduleKeyDeletion", KeyId=k)
        k_import = self.key_in("PendingImport")
        expected = {"Enabled": "OK", "Disabled": "Rejected.Disabled",
                    "PendingDeletion": "Rejected.PendingDeletion", "PendingImport": "Rejected.PendingImport"}
        for state in STATES:
            k = blobs[state][0] if state in blobs else k_import
            with self.subTest(state=state):
                self.expect(expected[state], self.srv.call("Encrypt", KeyId=k, Plaintext=b64(b"x")))
                self.expect(expected[state], self.srv.call("GenerateDataKey", KeyId=k))
                self.expect(expected[state], self.srv.call("GenerateDataKeyWithoutPlaintext", KeyId=k))
                if state in blobs:
                    self.expect(expected[state],
                                self.srv.call("Decrypt", CiphertextBlob=blobs[state][1]))

    def test_describe_key_state_fields(self):
        k = self.key_in("Enabled")
        before = int(time.time())
        self.ok("ScheduleKeyDeletion", KeyId=k, PendingWindowInDays=9)
        md = self.describe(k)
        self.assertEqual(md["KeyState"], "PendingDeletion")
        self.assertLessEqual(abs(parse_time(md["DeleteDate"]) - (before + 9 * DAY)), 5)
        self.ok("CancelKeyDeletion", KeyId=k)
        self.assertEqual(self.describe(k)["DeleteDate"], "")


class ScheduleKeyDeletionTest(KmsTestCase):
    """C1.7 ScheduleKeyDeletion windows, C1.8 CancelKeyDeletion."""

    def test_windows(self):
        for days in (7, 8, 29, 30):
            with self.subTest(days=days):
                k = self.create_key()["KeyId"]
                before = int(time.time())
                self.ok("ScheduleKeyDeletion", KeyId=k, PendingWindowInDays=days)
                delete_at = parse_time(self.describe(k)["DeleteDate"])
                self.assertLessEqual(abs(delete_at - (before + days * DAY)), 5)

    def test_default_window_is_30_days(self):
        k = self.create_key()["KeyId"]
        before = int(time.time())
        self.ok("ScheduleKeyDeletion", KeyId=k)
        self.assertLessEqual(abs(parse_time(self.describe(k)["DeleteDate"]) - (before + 30 * DAY)), 5)
        k = self.create_key()["KeyId"]
        self.ok("ScheduleKeyDeletion", KeyId=k, PendingWindowInDays="")
        self.assertEqual(self.describe(k)["KeyState"], "PendingDeletion")

    def test_out_of_range(self):
        k = self.create_key()["KeyId"]
        for days in ("6", "31", "0", "-7", "366", "seven", "7.0", "7d"):
            with self.subTest(days=days):
                self.assertFails("ScheduleKeyDeletion", 400, "InvalidParameter",
                                 "PendingWindowInDays", KeyId=k, PendingWindowInDays=days)
        self.assertEqual(self.describe(k)["KeyState"], "Enabled")

    def test_errors(self):
        self.assertFails("ScheduleKeyDeletion", 400, "MissingParameter", "KeyId")
        self.assertFails("ScheduleKeyDeletion", 404, "Forbidden.KeyNotFound", KeyId="nope")
        self.assertFails("CancelKeyDeletion", 404, "Forbidden.KeyNotFound", KeyId="nope")
        self.assertFails("CancelKeyDeletion", 400, "MissingParameter", "KeyId")
        k = self.create_key()["KeyId"]
        self.ok("ScheduleKeyDeletion", KeyId=key_arn(k), PendingWindowInDays=7)
        self.ok("CancelKeyDeletion", KeyId=key_arn(k))


class DeletionProtectionTest(KmsTestCase):
    """C1.9 SetDeletionProtection and key-states.md §5."""

    def test_protect_by_key_id(self):
        k = self.create_key()["KeyId"]
        self.ok("SetDeletionProtection", KeyId=k, EnableDeletionProtection="true",
                DeletionProtectionDescription="keep me")
        md = self.describe(k)
        self.assertEqual((md["DeletionProtection"], md["DeletionProtectionDescription"]),
                         ("Enabled", "keep me"))
        self.assertFails("ScheduleKeyDeletion", 409, "Rejected.DeletionProtection", KeyId=k)
        self.assertEqual(self.describe(k)["KeyState"], "Enabled")
        # Protection does not block disabling (key-states.md §5).
        self.ok("DisableKey", KeyId=k)
        self.assertFails("ScheduleKeyDeletion", 409, "Rejected.DeletionProtection", KeyId=k,
                         PendingWindowInDays=7)
        self.ok("SetDeletionProtection", KeyId=k, EnableDeletionProtection="false")
        md = self.describe(k)
        self.assertEqual(md["DeletionProtection"], "Disabled")
        self.assertEqual(md.get("DeletionProtectionDescription", ""), "")
        self.ok("ScheduleKeyDeletion", KeyId=k, PendingWindowInDays=7)
        self.assertFails("SetDeletionProtection", 409, "Rejected.PendingDeletion", KeyId=k,
                         EnableDeletionProtection="true")
        self.assertFails("SetDeletionProtection", 409, "Rejected.PendingDeletion", KeyId=k,
                         EnableDeletionProtection="false")

    def test_protect_by_arn(self):
        k = self.create_key()["KeyId"]
        self.ok("SetDeletionProtection", ProtectedResourceArn=key_arn(k),
                EnableDeletionProtection="TRUE")
        self.assertEqual(self.describe(k)["DeletionProtection"], "Enabled")
        self.assertFails("ScheduleKeyDeletion", 409, "Rejected.DeletionProtection", KeyId=k)
        self.ok("SetDeletionProtection", ProtectedResourceArn=key_arn(k),
                EnableDeletionProtection="false")
        self.ok("SetDeletionProtection", ProtectedResourceArn=key_arn(k),
                EnableDeletionProtection="false")  # idempotent
        self.assertEqual(self.describe(k)["DeletionProtection"], "Disabled")

    def test_errors(self):
        k = self.create_key()["KeyId"]
        self.ok("CreateAlias", AliasName="alias/protected", KeyId=k)
        self.assertFails("SetDeletionProtection", 400, "MissingParameter",
                         EnableDeletionProtection="true")
        self.assertFails("SetDeletionProtection", 400, "InvalidParameter", KeyId=k,
                         ProtectedResourceArn=key_arn(k), EnableDeletionProtection="true")
        self.assertFails("SetDeletionProtection", 400, "MissingParameter",
                         "EnableDeletionProtection", KeyId=k)
        self.assertFails("SetDeletionProtection", 400, "InvalidParameter",
                         "EnableDeletionProtection", KeyId=k, EnableDeletionProtection="1")
        self.assertFails("SetDeletionProtection", 400, "InvalidParameter",
                         "DeletionProtectionDescription", KeyId=k, EnableDeletionProtection="true",
                         DeletionProtectionDescription="x" * 257)
        self.ok("SetDeletionProtection", KeyId=k, EnableDeletionProtection="true",
                DeletionProtectionDescription="中" * 256)
        self.assertFails("SetDeletionProtection", 400, "InvalidParameter", "KmsInstanceId",
                         KeyId=k, EnableDeletionProtection="true", KmsInstanceId="kst-1")
        self.assertFails("SetDeletionProtection", 400, "Unsupported.Alias", KeyId="alias/protected",
                         EnableDeletionProtection="true")
        self.assertFails("SetDeletionProtection", 404, "Forbidden.KeyNotFound", KeyId="nope",
                         EnableDeletionProtection="true")
        self.assertFails("SetDeletionProtection", 400, "InvalidParameter", "ProtectedResourceArn",
                         ProtectedResourceArn="not-an-arn", EnableDeletionProtection="true")
        for arn in ("acs:kms:cn-beijing:%s:key/%s" % (ACCOUNT, k),
                    "acs:kms:%s:42:key/%s" % (REGION, k),
                    "acs:kms:%s:%s:key/nope" % (REGION, ACCOUNT)):
            self.assertFails("SetDeletionProtection", 404, "Forbidden.KeyNotFound",
                             ProtectedResourceArn=arn, EnableDeletionProtection="true")


class AliasWhereIdOnlyTest(KmsTestCase):
    """actions.md §0.2: an alias where only a key id is allowed is 400 Unsupported.Alias."""

    def test_id_only_actions(self):
        k = self.create_key()["KeyId"]
        self.ok("CreateAlias", AliasName="alias/only-ids", KeyId=k)
        calls = [("EnableKey", {}), ("DisableKey", {}), ("ScheduleKeyDeletion", {}),
                 ("CancelKeyDeletion", {}), ("UpdateKeyDescription", {"Description": "x"}),
                 ("SetDeletionProtection", {"EnableDeletionProtection": "true"}),
                 ("CreateAlias", {"AliasName": "alias/other"}),
                 ("UpdateAlias", {"AliasName": "alias/only-ids"}),
                 ("ListAliasesByKeyId", {}), ("TagResource", {"Tags": tags_json([("a", "b")])}),
                 ("UntagResource", {"TagKeys": '["a"]'}), ("ListResourceTags", {})]
        for action, extra in calls:
            for alias in ("alias/only-ids", "alias/unbound"):
                with self.subTest(action=action, alias=alias):
                    self.assertFails(action, 400, "Unsupported.Alias", KeyId=alias, **extra)
        md = self.describe(k)
        self.assertEqual((md["KeyState"], md["Description"], md["DeletionProtection"]),
                         ("Enabled", "", "Disabled"))
        self.assertEqual(self.ok("ListResourceTags", KeyId=k)["Tags"]["Tag"], [])


class QuotaTest(KmsTestCase):
    """protocol.md §11: max_keys from the configuration; Rejected.LimitExceeded beyond it."""

    config = "[keys]\nmax_keys = 3\nmax_pending_window_days = 60\n"

    def test_max_keys(self):
        ids = [self.create_key()["KeyId"] for _ in range(3)]
        self.assertFails("CreateKey", 400, "Rejected.LimitExceeded")
        self.assertFails("CreateKey", 400, "Rejected.LimitExceeded", Origin="EXTERNAL")
        self.assertEqual(self.ok("ListKeys")["TotalCount"], 3)
        # A key pending deletion still counts; once destroyed, its place is free again.
        self.ok("ScheduleKeyDeletion", KeyId=ids[0], PendingWindowInDays=60)
        self.assertFails("CreateKey", 400, "Rejected.LimitExceeded")
        self.srv.advance_clock(61 * DAY)
        self.create_key()
        self.assertFails("CreateKey", 400, "Rejected.LimitExceeded")

    def test_window_above_configured_max(self):
        self.assertFails("ScheduleKeyDeletion", 400, "InvalidParameter", "PendingWindowInDays",
                         KeyId="whatever", PendingWindowInDays=61)


class ServiceTest(KmsTestCase):
    """A1 DescribeRegions, A4 DescribeService (generated from the configuration)."""

    def test_describe_regions(self):
        r = self.ok("DescribeRegions")
        self.assertEqual(r["Regions"], {"Region": [{"RegionId": REGION}]})

    def test_describe_service(self):
        r = self.ok("DescribeService")
        # No HSM back end is configured: SOFTWARE only.
        self.assertEqual(r["ProtectionLevels"], {"ProtectionLevel": [{"Type": "SOFTWARE"}]})
        specs = {s["Name"]: s for s in r["KeySpecs"]["KeySpec"]}
        self.assertEqual(set(specs), {"Aliyun_AES_256", "Aliyun_AES_128", "Aliyun_SM4", "RSA_2048",
                                      "RSA_3072", "EC_P256", "EC_P256K", "EC_SM2"})
        usages = {name: s["Usages"]["Usage"] for name, s in specs.items()}
        self.assertEqual(usages["Aliyun_AES_256"], ["ENCRYPT/DECRYPT"])
        self.assertEqual(usages["EC_P256"], ["SIGN/VERIFY"])
        self.assertEqual(sorted(usages["RSA_2048"]), ["ENCRYPT/DECRYPT", "SIGN/VERIFY"])
        self.assertEqual(sorted(usages["EC_SM2"]), ["ENCRYPT/DECRYPT", "SIGN/VERIFY"])
        for s in specs.values():
            self.assertEqual(s["SupportedProtectionLevels"], {"SupportedProtectionLevel": ["SOFTWARE"]})


class StrictNationalTest(KmsTestCase):
    """gm_requires_hsm: SM2/SM4 only with ProtectionLevel=HSM (algorithms.md §1.2)."""

    config = "[keys]\ngm_requires_hsm = true\n"

    def test_sm_keys_need_hsm(self):
        for spec in ("Aliyun_SM4", "EC_SM2"):
            self.assertFails("CreateKey", 400, "Unsupported.ProtectionLevel", KeySpec=spec)
        self.create_key(KeySpec="Aliyun_AES_256")
        specs = {s["Name"]: s for s in self.ok("DescribeService")["KeySpecs"]["KeySpec"]}
        self.assertEqual(specs["Aliyun_SM4"]["SupportedProtectionLevels"]["SupportedProtectionLevel"], [])


if __name__ == "__main__":
    import unittest
    unittest.main()
