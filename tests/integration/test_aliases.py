"""Alias actions (spec/actions.md C2): name rules, binding, resolution, listing and the quota."""

import xml.etree.ElementTree as ET

from common import ACCOUNT, REGION, KmsTestCase, key_arn
from kmsd import b64, unb64


def alias_arn(name):
    return "acs:kms:%s:%s:%s" % (REGION, ACCOUNT, name)


class AliasNameTest(KmsTestCase):
    """The alias name rules: alias/ + 1-255 of [A-Za-z0-9_/-], not alias/acs..."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.key_id = cls.srv.create_key()["KeyId"]

    def test_valid_names(self):
        for name in ("alias/a", "alias/" + "x" * 255, "alias/A-Z_a-z/0-9", "alias/Apollo/Salary",
                     "alias/ACS", "alias/ac", "alias/my-acs", "alias/_", "alias/-"):
            with self.subTest(name=name):
                self.ok("CreateAlias", AliasName=name, KeyId=self.key_id)
                self.assertEqual(self.describe(name)["KeyId"], self.key_id)

    def test_invalid_names(self):
        for name in ("alias/", "alias/" + "x" * 256, "foo", "Alias/x", "ALIAS/x", "aliasx",
                     "/alias/x", " alias/x", "alias/x ", "alias/a.b", "alias/a b", "alias/中文",
                     "alias/a:b", "alias/a*b", "alias/a%b", "alias/a+b", "alias/a\\b",
                     "alias/acs", "alias/acs/x", "alias/acsfoo"):
            with self.subTest(name=name):
                self.assertFails("CreateAlias", 400, "InvalidParameter", "AliasName",
                                 AliasName=name, KeyId=self.key_id)
                self.assertFails("DescribeKey", 404, "Forbidden.AliasNotFound"
                                 if name.startswith("alias/") else "Forbidden.KeyNotFound",
                                 KeyId=name)

    def test_missing_parameters(self):
        self.assertFails("CreateAlias", 400, "MissingParameter", "AliasName", KeyId=self.key_id)
        self.assertFails("CreateAlias", 400, "MissingParameter", "KeyId", AliasName="alias/nokey")
        self.assertFails("UpdateAlias", 400, "MissingParameter", "AliasName", KeyId=self.key_id)
        self.assertFails("DeleteAlias", 400, "MissingParameter", "AliasName")
        self.ok("CreateAlias", AliasName="alias/upd-missing", KeyId=self.key_id)
        self.assertFails("UpdateAlias", 400, "MissingParameter", "KeyId", AliasName="alias/upd-missing")


class AliasTest(KmsTestCase):
    """CreateAlias, UpdateAlias, DeleteAlias and how aliases resolve."""

    def test_create_and_resolve(self):
        k = self.create_key()["KeyId"]
        self.ok("CreateAlias", AliasName="alias/app", KeyId=k)
        self.ok("CreateAlias", AliasName="alias/app2", KeyId=key_arn(k))  # an ARN names the key too
        for ref in ("alias/app", "alias/app2"):
            r = self.encrypt(ref, b"via alias")
            self.assertEqual(r["KeyId"], k)
            d = self.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"])
            self.assertEqual((d["KeyId"], unb64(d["Plaintext"])), (k, b"via alias"))
            self.assertEqual(self.ok("GenerateDataKey", KeyId=ref)["KeyId"], k)
            self.assertEqual(self.ok("GenerateDataKeyWithoutPlaintext", KeyId=ref)["KeyId"], k)
        # Names are case-sensitive.
        self.assertFails("DescribeKey", 404, "Forbidden.AliasNotFound", KeyId="alias/APP")

    def test_already_exists(self):
        k1, k2 = self.create_key()["KeyId"], self.create_key()["KeyId"]
        self.ok("CreateAlias", AliasName="alias/taken", KeyId=k1)
        self.assertFails("CreateAlias", 400, "AliasAlreadyExists", AliasName="alias/taken", KeyId=k1)
        self.assertFails("CreateAlias", 400, "AliasAlreadyExists", AliasName="alias/taken", KeyId=k2)
        self.assertEqual(self.describe("alias/taken")["KeyId"], k1)

    def test_create_for_unknown_key(self):
        self.assertFails("CreateAlias", 404, "Forbidden.KeyNotFound", AliasName="alias/orphan",
                         KeyId="no-such-key")
        self.assertFails("CreateAlias", 400, "Unsupported.Alias", AliasName="alias/orphan2",
                         KeyId="alias/app")
        self.assertFails("DescribeKey", 404, "Forbidden.AliasNotFound", KeyId="alias/orphan")

    def test_update(self):
        k1, k2 = self.create_key()["KeyId"], self.create_key()["KeyId"]
        self.ok("CreateAlias", AliasName="alias/moving", KeyId=k1)
        self.ok("UpdateAlias", AliasName="alias/moving", KeyId=k2)
        self.assertEqual(self.describe("alias/moving")["KeyId"], k2)
        self.assertEqual(self.encrypt("alias/moving")["KeyId"], k2)
        self.ok("UpdateAlias", AliasName="alias/moving", KeyId=key_arn(k1))
        self.assertEqual(self.describe("alias/moving")["KeyId"], k1)
        self.ok("UpdateAlias", AliasName="alias/moving", KeyId=k1)  # to the same key: fine
        self.assertFails("UpdateAlias", 404, "Forbidden.AliasNotFound", AliasName="alias/none",
                         KeyId=k1)
        self.assertFails("UpdateAlias", 404, "Forbidden.KeyNotFound", AliasName="alias/moving",
                         KeyId="no-such-key")
        self.assertFails("UpdateAlias", 400, "Unsupported.Alias", AliasName="alias/moving",
                         KeyId="alias/moving")
        self.assertEqual(self.describe("alias/moving")["KeyId"], k1)

    def test_update_to_pending_deletion(self):
        k1, k2 = self.create_key()["KeyId"], self.create_key()["KeyId"]
        self.ok("CreateAlias", AliasName="alias/pd", KeyId=k1)
        self.ok("ScheduleKeyDeletion", KeyId=k2, PendingWindowInDays=7)
        self.assertFails("UpdateAlias", 409, "Rejected.PendingDeletion", AliasName="alias/pd", KeyId=k2)
        self.assertEqual(self.describe("alias/pd")["KeyId"], k1)
        # Only the target matters: an alias of a pending key may move to a usable one.
        self.ok("ScheduleKeyDeletion", KeyId=k1, PendingWindowInDays=7)
        k3 = self.create_key()["KeyId"]
        self.ok("UpdateAlias", AliasName="alias/pd", KeyId=k3)
        self.assertEqual(self.describe("alias/pd")["KeyId"], k3)

    def test_create_on_pending_deletion(self):
        k = self.create_key()["KeyId"]
        self.ok("ScheduleKeyDeletion", KeyId=k, PendingWindowInDays=7)
        self.assertFails("CreateAlias", 409, "Rejected.StateModifiedFailed", AliasName="alias/late",
                         KeyId=k)

    def test_delete(self):
        k = self.create_key()["KeyId"]
        self.ok("CreateAlias", AliasName="alias/gone", KeyId=k)
        self.ok("DeleteAlias", AliasName="alias/gone")
        self.assertFails("DescribeKey", 404, "Forbidden.AliasNotFound", KeyId="alias/gone")
        self.assertFails("DeleteAlias", 404, "Forbidden.AliasNotFound", AliasName="alias/gone")
        self.assertFails("DeleteAlias", 404, "Forbidden.AliasNotFound", AliasName="alias/never")
        self.assertEqual(self.describe(k)["KeyState"], "Enabled")  # the key is untouched
        # The name can be used again.
        self.ok("CreateAlias", AliasName="alias/gone", KeyId=k)

    def test_many_aliases_per_key(self):
        k = self.create_key()["KeyId"]
        for i in range(5):
            self.ok("CreateAlias", AliasName="alias/many-%d" % i, KeyId=k)
        for i in range(5):
            self.assertEqual(self.describe("alias/many-%d" % i)["KeyId"], k)

    def test_v3(self):
        k = self.create_key()["KeyId"]
        self.assertOk(self.srv.call_v3("CreateAlias", AliasName="alias/v3", KeyId=k))
        self.assertEqual(self.assertOk(self.srv.call_v3("DescribeKey", KeyId="alias/v3"))
                         ["KeyMetadata"]["KeyId"], k)


class ListAliasesTest(KmsTestCase):
    """C2.4 ListAliases and C2.5 ListAliasesByKeyId: paging and shapes."""

    def test_list_aliases(self):
        r = self.ok("ListAliases")
        self.assertEqual((r["TotalCount"], r["PageNumber"], r["PageSize"], r["Aliases"]),
                         (0, 1, 10, {"Alias": []}))
        k1, k2 = self.create_key()["KeyId"], self.create_key()["KeyId"]
        self.ok("CreateAlias", AliasName="alias/first", KeyId=k1)
        r = self.ok("ListAliases")
        self.assertEqual(r["Aliases"]["Alias"], [{"AliasName": "alias/first", "KeyId": k1,
                                                  "AliasArn": alias_arn("alias/first")}])
        names = ["alias/first"]
        for i in range(6):
            name = "alias/n%d" % i
            self.ok("CreateAlias", AliasName=name, KeyId=k1 if i % 2 else k2)
            names.append(name)
        seen = []
        for page in (1, 2, 3):
            r = self.ok("ListAliases", PageSize=3, PageNumber=page)
            self.assertEqual((r["TotalCount"], r["PageNumber"], r["PageSize"]), (7, page, 3))
            self.assertIsInstance(r["Aliases"]["Alias"], list)
            seen += [a["AliasName"] for a in r["Aliases"]["Alias"]]
            for a in r["Aliases"]["Alias"]:
                self.assertEqual(a["AliasArn"], alias_arn(a["AliasName"]))
        self.assertEqual(sorted(seen), sorted(names))
        r = self.ok("ListAliases", PageSize=3, PageNumber=4)
        self.assertEqual((r["TotalCount"], r["Aliases"]["Alias"]), (7, []))
        for size in ("0", "101", "x"):
            self.assertFails("ListAliases", 400, "InvalidParameter", "PageSize", PageSize=size)
        self.assertFails("ListAliases", 400, "InvalidParameter", "PageNumber", PageNumber="0")

        # ListAliasesByKeyId: only that key's aliases.
        r = self.ok("ListAliasesByKeyId", KeyId=k1)
        self.assertEqual(r["TotalCount"], 4)
        self.assertEqual(sorted(a["AliasName"] for a in r["Aliases"]["Alias"]),
                         ["alias/first", "alias/n1", "alias/n3", "alias/n5"])
        for a in r["Aliases"]["Alias"]:
            self.assertEqual(a["KeyId"], k1)
        r = self.ok("ListAliasesByKeyId", KeyId=key_arn(k2), PageSize=2, PageNumber=2)
        self.assertEqual((r["TotalCount"], r["PageNumber"], r["PageSize"]), (3, 2, 2))
        self.assertEqual(len(r["Aliases"]["Alias"]), 1)
        k3 = self.create_key()["KeyId"]
        r = self.ok("ListAliasesByKeyId", KeyId=k3)
        self.assertEqual((r["TotalCount"], r["Aliases"]["Alias"]), (0, []))
        self.assertFails("ListAliasesByKeyId", 404, "Forbidden.KeyNotFound", KeyId="no-such")
        self.assertFails("ListAliasesByKeyId", 400, "MissingParameter", "KeyId")
        self.assertFails("ListAliasesByKeyId", 400, "InvalidParameter", "PageSize", KeyId=k1,
                         PageSize=101)
        # XML: the inner element repeats.
        root = ET.fromstring(self.srv.call("ListAliasesByKeyId", KeyId=k1, Format="XML").body)
        self.assertEqual(len(root.findall("Aliases/Alias")), 4)


class AliasQuotaTest(KmsTestCase):
    """The alias quota (max_aliases) → 400 Rejected.LimitExceeded."""

    config = "[keys]\nmax_aliases = 3\n"

    def test_quota(self):
        k = self.create_key()["KeyId"]
        for i in range(3):
            self.ok("CreateAlias", AliasName="alias/q%d" % i, KeyId=k)
        self.assertFails("CreateAlias", 400, "Rejected.LimitExceeded", AliasName="alias/q3", KeyId=k)
        self.assertFails("DescribeKey", 404, "Forbidden.AliasNotFound", KeyId="alias/q3")
        # UpdateAlias does not add one.
        k2 = self.create_key()["KeyId"]
        self.ok("UpdateAlias", AliasName="alias/q0", KeyId=k2)
        self.ok("DeleteAlias", AliasName="alias/q1")
        self.ok("CreateAlias", AliasName="alias/q3", KeyId=k)
        self.assertEqual(self.ok("ListAliases")["TotalCount"], 3)


if __name__ == "__main__":
    import unittest
    unittest.main()
