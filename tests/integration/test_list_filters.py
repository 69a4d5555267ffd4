"""ListKeys Filters (spec/actions.md C1.3): [{"Key":"KeyState","Values":["Enabled"]}, ...], at most 10
entries of at most 10 values; keys KeyState, KeySpec, KeyUsage, ProtectionLevel, CreatorType,
AliasName, Creator, TagKey, TagValue, keyId, DKMSInstanceId. Different keys AND, values of one key
OR (also across repeated entries); an unknown key or malformed JSON is 400 InvalidParameter;
TotalCount counts the matches, paging pages through them.

One kmsd with a fixed set of keys, so every expected result is exact. KeyState is the state the
API shows: imported material past its expiry reads as PendingImport before the maintenance pass
writes it down (the pass is made rare here so the test sees that window).
"""

import json
import os
import time
import unittest

import openssl_cli as ossl
from common import ACCOUNT, KmsTestCase, tags_json
from kmsd import b64, unb64


def filters(*entries):
    return json.dumps([{"Key": k, "Values": list(v)} for k, v in entries])


class ListKeysFiltersTest(KmsTestCase):
    config = "[maintenance]\ninterval = 86400\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.wd = ossl.Workdir()
        ok = lambda action, **p: cls.srv.ok(action, **p)
        create = lambda **p: cls.srv.create_key(**p)["KeyId"]
        k = cls.k = {}
        k["aes256"] = create(KeySpec="Aliyun_AES_256",
                             Tags=tags_json([("env", "prod"), ("team", "blue")]))
        ok("CreateAlias", KeyId=k["aes256"], AliasName="alias/filters-one")
        k["aes128"] = create(KeySpec="Aliyun_AES_128", Tags=tags_json([("env", "dev")]))
        ok("DisableKey", KeyId=k["aes128"])
        k["sm4"] = create(KeySpec="Aliyun_SM4", Tags=tags_json([("team", "prod")]))
        ok("ScheduleKeyDeletion", KeyId=k["sm4"], PendingWindowInDays=7)
        k["rsa_sign"] = create(KeySpec="RSA_2048", KeyUsage="SIGN/VERIFY")
        ok("CreateAlias", KeyId=k["rsa_sign"], AliasName="alias/filters-two")
        ok("CreateAlias", KeyId=k["rsa_sign"], AliasName="alias/filters-three")
        k["rsa_enc"] = create(KeySpec="RSA_2048", KeyUsage="ENCRYPT/DECRYPT")
        k["external"] = create(KeySpec="Aliyun_AES_256", Origin="EXTERNAL")
        # Imported material that expires once kmsd's clock moves on; no maintenance pass runs.
        k["expiring"] = create(KeySpec="Aliyun_AES_256", Origin="EXTERNAL")
        p = ok("GetParametersForImport", KeyId=k["expiring"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
               WrappingKeySpec="RSA_2048")
        wrapped = ossl.encrypt(cls.wd, unb64(p["PublicKey"]), "RSAES_OAEP_SHA_256", os.urandom(32),
                               keyform="DER")
        ok("ImportKeyMaterial", KeyId=k["expiring"], ImportToken=p["ImportToken"],
           EncryptedKeyMaterial=b64(wrapped), KeyMaterialExpireUnix=int(time.time()) + 600)
        cls.all = list(k.values())  # creation order
        cls.instance = cls.srv.ok("ListKmsInstances")["KmsInstances"]["KmsInstance"][0][
            "KmsInstanceId"]
        cls.srv.advance_clock(1200, maintenance=False)

    @classmethod
    def tearDownClass(cls):
        cls.wd.__exit__(None)
        super().tearDownClass()

    def ids(self, f, **params):
        """The key ids ListKeys returns for Filters f (all pages), checking TotalCount."""
        out, page, total = [], 1, None
        while True:
            r = self.ok("ListKeys", Filters=f, PageNumber=page, PageSize=2, **params)
            if total is None:
                total = r["TotalCount"]
            self.assertEqual(r["TotalCount"], total)
            got = [item["KeyId"] for item in r["Keys"]["Key"]]
            out += got
            if len(got) < 2:
                break
            page += 1
        self.assertEqual(len(out), total, "TotalCount counts the matches")
        return out

    def expect(self, f, *names):
        self.assertEqual(self.ids(f), [self.k[n] for n in names], f)

    def test_no_filters(self):
        self.assertEqual(self.ids("[]"), self.all)
        r = self.ok("ListKeys")
        self.assertEqual(r["TotalCount"], len(self.all))

    def test_key_state(self):
        self.expect(filters(("KeyState", ["Enabled"])), "aes256", "rsa_sign", "rsa_enc")
        self.expect(filters(("KeyState", ["Disabled"])), "aes128")
        self.expect(filters(("KeyState", ["PendingDeletion"])), "sm4")
        # Expired material reads as PendingImport, as DescribeKey shows it.
        self.assertEqual(self.describe(self.k["expiring"])["KeyState"], "PendingImport")
        self.expect(filters(("KeyState", ["PendingImport"])), "external", "expiring")
        self.expect(filters(("KeyState", ["Disabled", "PendingDeletion"])), "aes128", "sm4")

    def test_spec_usage_protection(self):
        self.expect(filters(("KeySpec", ["RSA_2048"])), "rsa_sign", "rsa_enc")
        self.expect(filters(("KeySpec", ["Aliyun_SM4"])), "sm4")
        # Input aliases of key specs name the same spec.
        self.expect(filters(("KeySpec", ["SM4", "Aliyun_AES_128"])), "aes128", "sm4")
        self.expect(filters(("KeyUsage", ["SIGN/VERIFY"])), "rsa_sign")
        self.expect(filters(("KeyUsage", ["ENCRYPT/DECRYPT"])), "aes256", "aes128", "sm4",
                    "rsa_enc", "external", "expiring")
        self.expect(filters(("ProtectionLevel", ["SOFTWARE"])), *self.k.keys())
        self.expect(filters(("ProtectionLevel", ["HSM"])))

    def test_aliases_tags_ids(self):
        self.expect(filters(("AliasName", ["alias/filters-one"])), "aes256")
        self.expect(filters(("AliasName", ["filters-three"])), "rsa_sign")
        self.expect(filters(("AliasName", ["alias/filters-two", "alias/filters-three"])),
                    "rsa_sign")
        self.expect(filters(("AliasName", ["alias/nothing"])))
        self.expect(filters(("TagKey", ["team"])), "aes256", "sm4")
        self.expect(filters(("TagValue", ["prod"])), "aes256", "sm4")
        self.expect(filters(("TagKey", ["env"]), ("TagValue", ["prod"])), "aes256")
        self.expect(filters(("keyId", [self.k["rsa_enc"], self.k["sm4"], "no-such-key"])), "sm4",
                    "rsa_enc")

    def test_and_across_keys_or_within_and_across_entries(self):
        self.expect(filters(("KeyState", ["Enabled"]), ("KeySpec", ["RSA_2048"]),
                            ("KeyUsage", ["ENCRYPT/DECRYPT"])), "rsa_enc")
        # The same key twice: its values OR, as if in one entry.
        self.expect(filters(("KeySpec", ["Aliyun_SM4"]), ("KeySpec", ["Aliyun_AES_128"])),
                    "aes128", "sm4")
        self.expect(filters(("KeySpec", ["Aliyun_SM4"]), ("KeyState", ["Enabled"]),
                            ("KeySpec", ["Aliyun_AES_256"])), "aes256")

    def test_constant_keys(self):
        self.expect(filters(("CreatorType", ["User"])), *self.k.keys())
        self.expect(filters(("CreatorType", ["Service"])))
        self.expect(filters(("Creator", [ACCOUNT])), *self.k.keys())
        self.expect(filters(("Creator", ["123"])))
        self.expect(filters(("DKMSInstanceId", [self.instance])), *self.k.keys())
        self.expect(filters(("DKMSInstanceId", ["kst-other"])))
        self.expect(filters(("DKMSInstanceId", ["kst-other", self.instance]),
                            ("KeySpec", ["Aliyun_SM4"])), "sm4")

    def test_values_that_name_nothing_match_nothing(self):
        self.expect(filters(("KeyState", ["Enabeld"])))
        self.expect(filters(("KeyState", ["Enabeld", "Disabled"])), "aes128")
        self.expect(filters(("KeySpec", ["AES_512"])))
        # An entry without values constrains nothing.
        self.expect(filters(("KeyState", []), ("KeySpec", ["Aliyun_SM4"])), "sm4")

    def test_paging_counts_matches(self):
        f = filters(("KeyUsage", ["ENCRYPT/DECRYPT"]))
        r = self.ok("ListKeys", Filters=f, PageNumber=2, PageSize=4)
        self.assertEqual(r["TotalCount"], 6)
        self.assertEqual([i["KeyId"] for i in r["Keys"]["Key"]],
                         [self.k["external"], self.k["expiring"]])
        r = self.ok("ListKeys", Filters=f, PageNumber=3, PageSize=4)
        self.assertEqual((r["TotalCount"], r["Keys"]["Key"]), (6, []))
        r = self.ok("ListKeys", Filters=filters(("Creator", ["someone else"])))
        self.assertEqual((r["TotalCount"], r["Keys"]["Key"]), (0, []))

    def test_malformed_filters(self):
        bad = [
            "not json", "{}", '{"Key":"KeyState","Values":["Enabled"]}', "[1]", '["KeyState"]',
            '[{"Key":"KeyState"}]', '[{"Values":["Enabled"]}]', '[{"Key":"KeyState","Values":"Enabled"}]',
            '[{"Key":"KeyState","Values":[1]}]', '[{"Key":"KeyState","Values":[null]}]',
            '[{"Key":1,"Values":["x"]}]', filters(("Unknown", ["x"])),
            filters(("keystate", ["Enabled"])), filters(("KeyId", ["x"])),
            filters(*[("KeyState", ["Enabled"])] * 11),
            filters(("KeyState", ["Enabled"] * 11)),
            '[{"Key":"KeyState","Values":["Enabled"]}',
        ]
        for f in bad:
            with self.subTest(filters=f):
                self.assertFails("ListKeys", 400, "InvalidParameter", "Filters", Filters=f)
        # At the limits: 10 entries of 10 values.
        ten = filters(*[("KeyState", ["Enabled"] * 10)] * 10)
        self.assertEqual(self.ids(ten), [self.k[n] for n in ("aes256", "rsa_sign", "rsa_enc")])

    def test_injection_is_just_a_value(self):
        for value in ("' OR 1=1 --", "\") OR 1=1 --", "%", "_"):
            self.expect(filters(("TagKey", [value])))
            self.expect(filters(("keyId", [value])))
            self.expect(filters(("AliasName", [value])))
        self.assertEqual(self.ok("ListKeys")["TotalCount"], len(self.all))


if __name__ == "__main__":
    unittest.main()
