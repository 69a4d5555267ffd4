"""Symmetric cryptographic actions (spec/actions.md D1.1-D1.4): Encrypt, Decrypt, GenerateDataKey,
GenerateDataKeyWithoutPlaintext, the EncryptionContext rules (protocol.md §2.2), the blob format
(DESIGN.md), key-state rules (key-states.md §3-§4) and DryRun (protocol.md §12)."""

import base64
import json
import uuid

from common import KmsTestCase
from kmsd import b64, unb64

SPECS = ("Aliyun_AES_256", "Aliyun_AES_128", "Aliyun_SM4")
ALG_BYTES = {"Aliyun_AES_256": 1, "Aliyun_AES_128": 2, "Aliyun_SM4": 3}
CRYPTO_ACTIONS = ("Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "Decrypt")


class EncryptDecryptTest(KmsTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.keys = {spec: cls.srv.create_key(KeySpec=spec) for spec in SPECS}
        cls.key_id = cls.keys["Aliyun_AES_256"]["KeyId"]

    def decrypt(self, blob, **params):
        return self.ok("Decrypt", CiphertextBlob=blob, **params)

    def test_round_trip_every_spec(self):
        for spec, md in self.keys.items():
            for data in (b"\x00", b"hello world", bytes(range(256)) * 24):  # 1, 11 and 6144 bytes
                with self.subTest(spec=spec, size=len(data)):
                    r = self.encrypt(md["KeyId"], data)
                    self.assertEqual(set(r), {"RequestId", "KeyId", "KeyVersionId", "CiphertextBlob"})
                    self.assertEqual(r["KeyId"], md["KeyId"])
                    self.assertEqual(r["KeyVersionId"], md["PrimaryKeyVersion"])
                    d = self.decrypt(r["CiphertextBlob"])
                    self.assertEqual(set(d), {"RequestId", "KeyId", "KeyVersionId", "Plaintext"})
                    self.assertEqual(unb64(d["Plaintext"]), data)
                    self.assertEqual((d["KeyId"], d["KeyVersionId"]), (md["KeyId"], r["KeyVersionId"]))

    def test_blob_format(self):
        for spec, md in self.keys.items():
            r = self.encrypt(md["KeyId"], b"x" * 100)
            raw = unb64(r["CiphertextBlob"])
            # format(1) | algorithm(1) | KeyVersionId(16) | iv(12) | ciphertext | tag(16)
            self.assertEqual(len(raw), 1 + 1 + 16 + 12 + 100 + 16)
            self.assertEqual(raw[0], 1)
            self.assertEqual(raw[1], ALG_BYTES[spec])
            self.assertEqual(str(uuid.UUID(bytes=raw[2:18])), r["KeyVersionId"])
            self.assertNotIn(b"x" * 16, raw)
            # A fresh IV every time.
            self.assertNotEqual(self.encrypt(md["KeyId"], b"x" * 100)["CiphertextBlob"],
                                r["CiphertextBlob"])

    def test_plaintext_limits(self):
        self.encrypt(self.key_id, b"p" * 6144)
        self.assertFails("Encrypt", 400, "InvalidParameter", "Plaintext", KeyId=self.key_id,
                         Plaintext=b64(b"p" * 6145))
        self.assertFails("Encrypt", 400, "MissingParameter", "Plaintext", KeyId=self.key_id)
        self.assertFails("Encrypt", 400, "MissingParameter", "Plaintext", KeyId=self.key_id,
                         Plaintext="")
        self.assertFails("Encrypt", 400, "MissingParameter", "KeyId", Plaintext=b64(b"x"))

    def test_bad_base64(self):
        for bad in ("not base64!", "@@@@", "Y", "YQ=x", "YQ==YQ==", "Y Q==", "YQ===", "=YQ=",
                    "YQ\n==", "YWJj-_8=", "\u00e9\u00e9\u00e9\u00e9"):
            with self.subTest(text=bad):
                self.assertFails("Encrypt", 400, "InvalidParameter", "Plaintext",
                                 KeyId=self.key_id, Plaintext=bad)
                self.assertFails("Decrypt", 400, "InvalidParameter", "CiphertextBlob",
                                 CiphertextBlob=bad)

    def test_base64_without_padding(self):
        r = self.ok("Encrypt", KeyId=self.key_id, Plaintext="YQ")  # "a" without "=="
        blob = r["CiphertextBlob"]
        self.assertEqual(unb64(self.decrypt(blob)["Plaintext"]), b"a")
        self.assertEqual(unb64(self.decrypt(blob.rstrip("="))["Plaintext"]), b"a")

    def test_tampered_blob_every_byte(self):
        r = self.encrypt(self.key_id, b"tamper me")
        raw = bytearray(unb64(r["CiphertextBlob"]))
        for i in range(len(raw)):
            for flip in (0x01, 0x80):
                with self.subTest(byte=i, flip=flip):
                    t = bytearray(raw)
                    t[i] ^= flip
                    self.assertFails("Decrypt", 400, "InvalidParameter", "CiphertextBlob",
                                     CiphertextBlob=b64(bytes(t)))
        self.assertEqual(unb64(self.decrypt(r["CiphertextBlob"])["Plaintext"]), b"tamper me")

    def test_malformed_blobs(self):
        r = self.encrypt(self.key_id, b"abc")
        raw = unb64(r["CiphertextBlob"])
        for bad in (raw[:-1], raw[:46], raw[:45], raw[:18], raw[:1], b"\x00", raw + b"\x00",
                    b"\x02" + raw[1:], raw[:1] + b"\x09" + raw[2:], bytes(64), b"\xff" * 200):
            with self.subTest(length=len(bad), head=bad[:2]):
                self.assertFails("Decrypt", 400, "InvalidParameter", "CiphertextBlob",
                                 CiphertextBlob=b64(bad))
        self.assertFails("Decrypt", 400, "MissingParameter", "CiphertextBlob")
        # The algorithm byte of another spec: the key says otherwise.
        sm4 = self.encrypt(self.keys["Aliyun_SM4"]["KeyId"], b"abc")["CiphertextBlob"]
        t = bytearray(unb64(sm4))
        t[1] = ALG_BYTES["Aliyun_AES_128"]
        self.assertFails("Decrypt", 400, "InvalidParameter", "CiphertextBlob", CiphertextBlob=b64(bytes(t)))

    def test_blob_under_another_version(self):
        # The blob's version id swapped for another key's: that key cannot open it.
        a = unb64(self.encrypt(self.key_id, b"abc")["CiphertextBlob"])
        other = self.create_key()
        t = a[:2] + uuid.UUID(other["PrimaryKeyVersion"]).bytes + a[18:]
        self.assertFails("Decrypt", 400, "InvalidParameter", "CiphertextBlob", CiphertextBlob=b64(t))

    def test_recipient_not_supported(self):
        blob = self.encrypt(self.key_id)["CiphertextBlob"]
        self.assertFails("Decrypt", 400, "InvalidParameter", "Recipient", CiphertextBlob=blob,
                         Recipient="{}")
        self.assertFails("GenerateDataKey", 400, "InvalidParameter", "Recipient", KeyId=self.key_id,
                         Recipient="{}")

    def test_unknown_keys(self):
        self.assertFails("Encrypt", 404, "Forbidden.KeyNotFound", KeyId="nope", Plaintext=b64(b"x"))
        self.assertFails("Encrypt", 404, "Forbidden.AliasNotFound", KeyId="alias/nope",
                         Plaintext=b64(b"x"))
        self.assertFails("GenerateDataKey", 404, "Forbidden.KeyNotFound", KeyId="nope")
        self.assertFails("GenerateDataKeyWithoutPlaintext", 404, "Forbidden.KeyNotFound", KeyId="nope")

    def test_asymmetric_key(self):
        rsa = self.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT/DECRYPT")["KeyId"]
        ec = self.create_key(KeySpec="EC_P256")["KeyId"]
        for k in (rsa, ec):
            self.assertFails("Encrypt", 400, "Unsupported.KeySpec", KeyId=k, Plaintext=b64(b"x"))
            self.assertFails("GenerateDataKey", 400, "Unsupported.KeySpec", KeyId=k)
            self.assertFails("GenerateDataKeyWithoutPlaintext", 400, "Unsupported.KeySpec", KeyId=k)

    def test_v3(self):
        r = self.assertOk(self.srv.call_v3("Encrypt", KeyId=self.key_id, Plaintext=b64(b"v3"),
                                           EncryptionContext='{"a":"b"}'))
        d = self.assertOk(self.srv.call_v3("Decrypt", CiphertextBlob=r["CiphertextBlob"],
                                           EncryptionContext='{"a":"b"}'))
        self.assertEqual(unb64(d["Plaintext"]), b"v3")


class EncryptionContextTest(KmsTestCase):
    """protocol.md §2.2: both encodings, the value rule, and matching at decryption."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.key_id = cls.srv.create_key()["KeyId"]

    def seal(self, **ctx):
        return self.encrypt(self.key_id, b"context", **ctx)["CiphertextBlob"]

    def opens(self, blob, **ctx):
        r = self.srv.call("Decrypt", CiphertextBlob=blob, **ctx)
        if r.status == 200:
            self.assertEqual(unb64(r.json["Plaintext"]), b"context")
            return True
        self.assertError(r, 400, "InvalidParameter", "CiphertextBlob")
        return False

    def test_json_and_flattened_are_the_same(self):
        ctx = {"Example": "Example", "a b": "c&d", "中": "文", "k=v": "x/y"}
        flat = {"EncryptionContext." + k: v for k, v in ctx.items()}
        blob_json = self.seal(EncryptionContext=json.dumps(ctx))
        blob_flat = self.seal(**flat)
        for blob in (blob_json, blob_flat):
            self.assertTrue(self.opens(blob, EncryptionContext=json.dumps(ctx)))
            self.assertTrue(self.opens(blob, **flat))
            # Member order does not matter.
            self.assertTrue(self.opens(blob, EncryptionContext=json.dumps(dict(reversed(list(ctx.items()))))))

    def test_numbers_and_booleans_are_their_json_text(self):
        blob = self.seal(EncryptionContext='{"n":1,"b":true,"f":false,"x":1.5}')
        self.assertTrue(self.opens(blob, EncryptionContext='{"n":"1","b":"true","f":"false","x":"1.5"}'))
        self.assertTrue(self.opens(blob, **{"EncryptionContext.n": "1", "EncryptionContext.b": "true",
                                            "EncryptionContext.f": "false", "EncryptionContext.x": "1.5"}))

    def test_mismatch(self):
        blob = self.seal(EncryptionContext='{"a":"b","c":"d"}')
        for ctx in ('{"a":"b"}', '{"a":"b","c":"D"}', '{"a":"b","c":"d","e":"f"}', '{"A":"b","c":"d"}',
                    '{"a":"b ","c":"d"}', '{"b":"a","d":"c"}'):
            with self.subTest(ctx=ctx):
                self.assertFalse(self.opens(blob, EncryptionContext=ctx))
        self.assertFalse(self.opens(blob))  # none at all
        plain = self.seal()
        self.assertFalse(self.opens(plain, EncryptionContext='{"a":"b"}'))
        self.assertTrue(self.opens(plain, EncryptionContext="{}"))  # {} is no context
        self.assertTrue(self.opens(self.seal(EncryptionContext="{}")))

    def test_both_forms_together(self):
        for action, extra in (("Encrypt", {"KeyId": self.key_id, "Plaintext": b64(b"x")}),
                              ("GenerateDataKey", {"KeyId": self.key_id}),
                              ("Decrypt", {"CiphertextBlob": self.seal()})):
            with self.subTest(action=action):
                self.assertFails(action, 400, "InvalidParameter", "EncryptionContext",
                                 EncryptionContext='{"a":"b"}', **{"EncryptionContext.a": "b"}, **extra)

    def test_invalid_values(self):
        for bad in ("not json", "[]", '"str"', "1", "null", '{"a":null}', '{"a":{"b":"c"}}',
                    '{"a":["b"]}', '{"":"v"}', '{"a":"b"', '{"a":"b"} x', '{"a":"\\ud800"}'):
            with self.subTest(ctx=bad):
                self.assertFails("Encrypt", 400, "InvalidParameter", "EncryptionContext",
                                 KeyId=self.key_id, Plaintext=b64(b"x"), EncryptionContext=bad)

    def test_size_limit(self):
        self.seal(EncryptionContext=json.dumps({"k": "v" * 4000}))
        self.assertFails("Encrypt", 400, "InvalidParameter", "EncryptionContext", KeyId=self.key_id,
                         Plaintext=b64(b"x"), EncryptionContext=json.dumps({"k": "v" * 9000}))


class DataKeyTest(KmsTestCase):
    """D1.3 GenerateDataKey and D1.4 GenerateDataKeyWithoutPlaintext."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.keys = {spec: cls.srv.create_key(KeySpec=spec)["KeyId"] for spec in SPECS}
        cls.key_id = cls.keys["Aliyun_AES_256"]

    def test_lengths(self):
        for params, n in (({}, 32), ({"KeySpec": "AES_256"}, 32), ({"KeySpec": "AES_128"}, 16),
                          ({"NumberOfBytes": 1}, 1), ({"NumberOfBytes": 1024}, 1024),
                          ({"NumberOfBytes": 64, "KeySpec": "AES_128"}, 64)):
            for spec, key_id in self.keys.items():
                with self.subTest(params=params, spec=spec):
                    r = self.ok("GenerateDataKey", KeyId=key_id, **params)
                    self.assertEqual(set(r), {"RequestId", "KeyId", "KeyVersionId", "Plaintext",
                                              "CiphertextBlob"})
                    self.assertEqual(r["KeyId"], key_id)
                    data_key = unb64(r["Plaintext"])
                    self.assertEqual(len(data_key), n)
                    d = self.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"])
                    self.assertEqual(unb64(d["Plaintext"]), data_key)
                    r = self.ok("GenerateDataKeyWithoutPlaintext", KeyId=key_id, **params)
                    self.assertEqual(set(r), {"RequestId", "KeyId", "KeyVersionId", "CiphertextBlob"})
                    d = self.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"])
                    self.assertEqual(len(unb64(d["Plaintext"])), n)

    def test_keys_are_random(self):
        keys = {self.ok("GenerateDataKey", KeyId=self.key_id)["Plaintext"] for _ in range(5)}
        self.assertEqual(len(keys), 5)

    def test_bad_parameters(self):
        for action in ("GenerateDataKey", "GenerateDataKeyWithoutPlaintext"):
            for n in ("0", "1025", "-1", "abc", "32.0"):
                with self.subTest(action=action, n=n):
                    self.assertFails(action, 400, "InvalidParameter", "NumberOfBytes",
                                     KeyId=self.key_id, NumberOfBytes=n)
            for spec in ("AES_512", "aes_256", "Aliyun_AES_256", "SM4"):
                with self.subTest(action=action, spec=spec):
                    self.assertFails(action, 400, "InvalidParameter", "KeySpec", KeyId=self.key_id,
                                     KeySpec=spec)
            self.assertFails(action, 400, "MissingParameter", "KeyId")

    def test_context(self):
        r = self.ok("GenerateDataKey", KeyId=self.key_id, EncryptionContext='{"file":"a.txt"}')
        self.assertFails("Decrypt", 400, "InvalidParameter", "CiphertextBlob",
                         CiphertextBlob=r["CiphertextBlob"])
        d = self.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"], **{"EncryptionContext.file": "a.txt"})
        self.assertEqual(d["Plaintext"], r["Plaintext"])
        r = self.ok("GenerateDataKeyWithoutPlaintext", KeyId=self.key_id,
                    **{"EncryptionContext.file": "b.txt"})
        self.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"], EncryptionContext='{"file":"b.txt"}')


class CryptoStateTest(KmsTestCase):
    """Every crypto action in Disabled and PendingDeletion (key-states.md §3-§4); DryRun."""

    def test_states(self):
        for state, code in (("Disabled", "Rejected.Disabled"),
                            ("PendingDeletion", "Rejected.PendingDeletion")):
            k = self.create_key()["KeyId"]
            self.ok("CreateAlias", AliasName="alias/state-" + state, KeyId=k)
            blob = self.encrypt(k)["CiphertextBlob"]
            if state == "Disabled":
                self.ok("DisableKey", KeyId=k)
            else:
                self.ok("ScheduleKeyDeletion", KeyId=k, PendingWindowInDays=7)
            for ref in (k, "alias/state-" + state):
                with self.subTest(state=state, ref=ref):
                    self.assertFails("Encrypt", 409, code, KeyId=ref, Plaintext=b64(b"x"))
                    self.assertFails("GenerateDataKey", 409, code, KeyId=ref)
                    self.assertFails("GenerateDataKeyWithoutPlaintext", 409, code, KeyId=ref)
            self.assertFails("Decrypt", 409, code, CiphertextBlob=blob)
            # Usable again once Enabled.
            self.ok("EnableKey" if state == "Disabled" else "CancelKeyDeletion", KeyId=k)
            self.assertEqual(unb64(self.ok("Decrypt", CiphertextBlob=blob)["Plaintext"]), b"hello")
        k = self.create_key(Origin="EXTERNAL")["KeyId"]
        self.assertFails("Encrypt", 409, "Rejected.PendingImport", KeyId=k, Plaintext=b64(b"x"))
        self.assertFails("GenerateDataKey", 409, "Rejected.PendingImport", KeyId=k)
        self.assertFails("GenerateDataKeyWithoutPlaintext", 409, "Rejected.PendingImport", KeyId=k)

    def test_dry_run(self):
        """DryRun=true checks everything, then answers DryRunOperationError (test_dry_run.py has
        the full matrix)."""
        k = self.create_key()["KeyId"]
        blob = self.encrypt(k)["CiphertextBlob"]
        calls = {"Encrypt": {"KeyId": k, "Plaintext": b64(b"x")}, "Decrypt": {"CiphertextBlob": blob},
                 "GenerateDataKey": {"KeyId": k}, "GenerateDataKeyWithoutPlaintext": {"KeyId": k}}
        for action, params in calls.items():
            with self.subTest(action=action):
                for value in ("true", "TRUE", "True"):
                    self.assertFails(action, 400, "DryRunOperationError", DryRun=value, **params)
                self.assertFails(action, 400, "InvalidParameter", "DryRun", DryRun="maybe", **params)
                self.ok(action, DryRun="false", **params)

if __name__ == "__main__":
    import unittest
    unittest.main()
