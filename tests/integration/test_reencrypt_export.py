"""ReEncrypt (spec/actions.md D1.5) with symmetric and asymmetric sources, ExportDataKey and
GenerateAndExportDataKey (D2, algorithms.md §6), with the exported keys opened by the openssl
command line and the caller's own private key, and their errors.
"""

import json
import os
import unittest

import openssl_cli as ossl
from kmsd import Server, b64, unb64

SYMMETRIC = ("Aliyun_AES_256", "Aliyun_AES_128", "Aliyun_SM4")


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server().start()
        cls.wd = ossl.Workdir()
        cls.callers = {}

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        stderr = cls.srv.stderr_text()
        cls.srv.__exit__(None)
        cls.wd.__exit__(None)
        # A clean exit: under ASan/UBSan a leak or undefined behaviour makes it non-zero.
        assert status == 0, "kmsd exited with %s:\n%s" % (status, stderr[-4000:])

    def ok(self, action, **params):
        return self.srv.ok(action, **params)

    def fails(self, status, code, action, **params):
        r = self.srv.call(action, **params)
        self.assertEqual((r.status, r.code), (status, code), "%s: %r" % (action, r))
        return r

    def caller(self, spec):
        """A caller's key pair made by openssl (one per spec for the class)."""
        if spec not in self.callers:
            self.callers[spec] = ossl.generate_key(self.wd, spec, spec + ".pem")
        return self.callers[spec]

    def unwrap(self, spec, alg, exported_b64):
        path, _ = self.caller(spec)
        ct = unb64(exported_b64)
        if alg == "SM2PKE":
            self.assertEqual(ct[0], 4, "ExportedDataKey is raw C1 || C3 || C2")
            ct = ossl.sm2_raw_to_der(ct)
        return ossl.decrypt(self.wd, path, alg, ct)

    def asym_key(self, spec):
        md = self.srv.create_key(KeySpec=spec, KeyUsage="ENCRYPT/DECRYPT")
        v = self.ok("ListKeyVersions", KeyId=md["KeyId"])["KeyVersions"]["KeyVersion"][0]
        return md["KeyId"], v["KeyVersionId"]


class ReEncryptTest(Base):
    def test_symmetric_across_specs(self):
        keys = {spec: self.srv.create_key(KeySpec=spec)["KeyId"] for spec in SYMMETRIC}
        src_ctx = json.dumps({"stage": "source", "n": "1"})
        for src_spec, src in keys.items():
            pt = b64(os.urandom(48))
            enc = self.ok("Encrypt", KeyId=src, Plaintext=pt, EncryptionContext=src_ctx)
            for dst_spec, dst in keys.items():
                dst_ctx = json.dumps({"to": dst_spec})
                r = self.ok("ReEncrypt", CiphertextBlob=enc["CiphertextBlob"],
                            SourceEncryptionContext=src_ctx, DestinationKeyId=dst,
                            DestinationEncryptionContext=dst_ctx)
                self.assertNotIn("Plaintext", r)
                # KeyId/KeyVersionId name the source, the key that decrypted.
                self.assertEqual((r["KeyId"], r["KeyVersionId"]), (src, enc["KeyVersionId"]))
                dec = self.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"],
                              EncryptionContext=dst_ctx)
                self.assertEqual((dec["KeyId"], dec["Plaintext"]), (dst, pt),
                                 (src_spec, dst_spec))
                self.fails(400, "InvalidParameter", "Decrypt", CiphertextBlob=r["CiphertextBlob"],
                           EncryptionContext=src_ctx)
        # The flattened map form of both contexts works too.
        src, dst = keys["Aliyun_AES_256"], keys["Aliyun_SM4"]
        pt = b64(b"flattened")
        blob = self.ok("Encrypt", KeyId=src, Plaintext=pt, **{"EncryptionContext.a": "b"})
        r = self.ok("ReEncrypt", CiphertextBlob=blob["CiphertextBlob"], DestinationKeyId=dst,
                    **{"SourceEncryptionContext.a": "b", "DestinationEncryptionContext.c": "d"})
        self.assertEqual(self.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"],
                                 EncryptionContext='{"c":"d"}')["Plaintext"], pt)

    def test_symmetric_errors(self):
        src = self.srv.create_key()["KeyId"]
        dst = self.srv.create_key(KeySpec="Aliyun_SM4")["KeyId"]
        blob = self.ok("Encrypt", KeyId=src, Plaintext=b64(b"secret"),
                       EncryptionContext='{"k":"v"}')["CiphertextBlob"]
        self.fails(400, "InvalidParameter", "ReEncrypt", CiphertextBlob=blob,
                   DestinationKeyId=dst)  # no source context
        self.fails(400, "InvalidParameter", "ReEncrypt", CiphertextBlob=blob,
                   SourceEncryptionContext='{"k":"w"}', DestinationKeyId=dst)
        self.fails(400, "InvalidParameter", "ReEncrypt", CiphertextBlob=b64(os.urandom(60)),
                   DestinationKeyId=dst)
        self.fails(400, "InvalidParameter", "ReEncrypt", CiphertextBlob="not base64!",
                   DestinationKeyId=dst)
        self.fails(400, "InvalidParameter", "ReEncrypt", CiphertextBlob=blob,
                   SourceEncryptionContext='{"k":"v"}', DestinationKeyId=dst,
                   DestinationEncryptionContext="[1]")
        self.fails(400, "MissingParameter", "ReEncrypt", CiphertextBlob=blob,
                   SourceEncryptionContext='{"k":"v"}')
        self.fails(400, "MissingParameter", "ReEncrypt", DestinationKeyId=dst)
        self.fails(404, "Forbidden.KeyNotFound", "ReEncrypt", CiphertextBlob=blob,
                   SourceEncryptionContext='{"k":"v"}', DestinationKeyId="missing")
        signer = self.srv.create_key(KeySpec="EC_P256")["KeyId"]
        self.fails(400, "Unsupported.KeySpec", "ReEncrypt", CiphertextBlob=blob,
                   SourceEncryptionContext='{"k":"v"}', DestinationKeyId=signer)
        good = dict(CiphertextBlob=blob, SourceEncryptionContext='{"k":"v"}', DestinationKeyId=dst)
        # Both keys are state-checked.
        self.ok("DisableKey", KeyId=dst)
        self.fails(409, "Rejected.Disabled", "ReEncrypt", **good)
        self.ok("EnableKey", KeyId=dst)
        self.ok("DisableKey", KeyId=src)
        self.fails(409, "Rejected.Disabled", "ReEncrypt", **good)
        self.ok("EnableKey", KeyId=src)
        self.ok("ScheduleKeyDeletion", KeyId=dst, PendingWindowInDays=7)
        self.fails(409, "Rejected.PendingDeletion", "ReEncrypt", **good)
        self.ok("CancelKeyDeletion", KeyId=dst)
        # Aliases for the destination; DryRun checks everything and does nothing.
        self.ok("CreateAlias", KeyId=dst, AliasName="alias/reencrypt-dst")
        self.fails(400, "DryRunOperationError", "ReEncrypt", DryRun="true",
                   **dict(good, DestinationKeyId="alias/reencrypt-dst"))
        r = self.ok("ReEncrypt", **dict(good, DestinationKeyId="alias/reencrypt-dst"))
        self.assertEqual(self.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"])["KeyId"], dst)

    def test_asymmetric_source(self):
        dst = self.srv.create_key()["KeyId"]
        for spec, alg in (("RSA_2048", "RSAES_OAEP_SHA_256"), ("RSA_3072", "RSAES_OAEP_SHA_1"),
                          ("EC_SM2", "SM2PKE")):
            key_id, ver = self.asym_key(spec)
            pem = self.ok("GetPublicKey", KeyId=key_id, KeyVersionId=ver)["PublicKey"]
            data = os.urandom(64)
            ct = ossl.encrypt(self.wd, pem, alg, data)  # encrypted elsewhere, by openssl
            r = self.ok("ReEncrypt", CiphertextBlob=b64(ct), SourceKeyId=key_id,
                        SourceKeyVersionId=ver, SourceEncryptionAlgorithm=alg,
                        DestinationKeyId=dst, DestinationEncryptionContext='{"from":"asym"}')
            self.assertEqual((r["KeyId"], r["KeyVersionId"]), (key_id, ver), spec)
            self.assertNotIn("Plaintext", r)
            dec = self.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"],
                          EncryptionContext='{"from":"asym"}')
            self.assertEqual((dec["KeyId"], unb64(dec["Plaintext"])), (dst, data), spec)
        key_id, ver = self.asym_key("RSA_2048")
        pem = self.ok("GetPublicKey", KeyId=key_id, KeyVersionId=ver)["PublicKey"]
        ct = b64(ossl.encrypt(self.wd, pem, "RSAES_OAEP_SHA_256", b"abc"))
        base = dict(CiphertextBlob=ct, SourceKeyId=key_id, SourceKeyVersionId=ver,
                    SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256", DestinationKeyId=dst)
        self.fails(400, "MissingParameter", "ReEncrypt", **dict(base, SourceKeyVersionId=""))
        self.fails(400, "MissingParameter", "ReEncrypt",
                   **dict(base, SourceEncryptionAlgorithm=""))
        self.fails(400, "InvalidParameter", "ReEncrypt",
                   **dict(base, SourceEncryptionAlgorithm="RSAES_OAEP_SHA_1"))
        self.fails(400, "InvalidParameter", "ReEncrypt",
                   **dict(base, SourceEncryptionAlgorithm="RSA_OAEP"))
        self.fails(400, "Unsupported.Algorithm", "ReEncrypt",
                   **dict(base, SourceEncryptionAlgorithm="SM2PKE"))
        signer = self.srv.create_key(KeySpec="RSA_2048", KeyUsage="SIGN/VERIFY")["KeyId"]
        self.fails(400, "Unsupported.KeyUsage", "ReEncrypt", **dict(base, SourceKeyId=signer))
        self.fails(400, "Unsupported.KeySpec", "ReEncrypt", **dict(base, SourceKeyId=dst))
        self.fails(404, "Forbidden.KeyVersionNotFound", "ReEncrypt",
                   **dict(base, SourceKeyVersionId="00000000-0000-4000-8000-000000000000"))
        self.ok("CreateAlias", KeyId=key_id, AliasName="alias/reencrypt-rsa")
        r = self.ok("ReEncrypt", **dict(base, SourceKeyId="alias/reencrypt-rsa"))
        self.assertEqual(r["KeyId"], key_id)
        self.ok("DisableKey", KeyId=key_id)
        self.fails(409, "Rejected.Disabled", "ReEncrypt", **base)

    def test_exported_data_key_back_into_kms(self):
        # GenerateAndExportDataKey to a KMS key's own public key, then ReEncrypt it into a
        # symmetric key: the same data key as the CMK copy, never seen in plaintext.
        cmk = self.srv.create_key()["KeyId"]
        dst = self.srv.create_key(KeySpec="Aliyun_AES_128")["KeyId"]
        key_id, ver = self.asym_key("RSA_2048")
        pem = self.ok("GetPublicKey", KeyId=key_id, KeyVersionId=ver)["PublicKey"]
        r = self.ok("GenerateAndExportDataKey", KeyId=cmk, PublicKeyBlob=b64(ossl.pem_to_der(pem)),
                    WrappingKeySpec="RSA_2048", WrappingAlgorithm="RSAES_OAEP_SHA_256")
        re = self.ok("ReEncrypt", CiphertextBlob=r["ExportedDataKey"], SourceKeyId=key_id,
                     SourceKeyVersionId=ver, SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256",
                     DestinationKeyId=dst)
        a = self.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"])["Plaintext"]
        b = self.ok("Decrypt", CiphertextBlob=re["CiphertextBlob"])["Plaintext"]
        self.assertEqual(a, b)
        self.assertEqual(len(unb64(a)), 32)


class ExportTest(Base):
    def test_export_data_key(self):
        cmk = self.srv.create_key(KeySpec="Aliyun_SM4")["KeyId"]
        ctx = '{"purpose":"export"}'
        dk = self.ok("GenerateDataKey", KeyId=cmk, EncryptionContext=ctx)
        for spec, alg in (("RSA_2048", "RSAES_OAEP_SHA_256"), ("RSA_2048", "RSAES_OAEP_SHA_1"),
                          ("EC_SM2", "SM2PKE")):
            _, der = self.caller(spec)
            r = self.ok("ExportDataKey", CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=ctx,
                        PublicKeyBlob=b64(der), WrappingKeySpec=spec, WrappingAlgorithm=alg)
            self.assertEqual((r["KeyId"], r["KeyVersionId"]), (cmk, dk["KeyVersionId"]))
            self.assertNotIn("Plaintext", r)
            self.assertEqual(self.unwrap(spec, alg, r["ExportedDataKey"]), unb64(dk["Plaintext"]),
                             (spec, alg))
        _, der = self.caller("RSA_2048")
        good = dict(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=ctx,
                    PublicKeyBlob=b64(der), WrappingKeySpec="RSA_2048",
                    WrappingAlgorithm="RSAES_OAEP_SHA_256")
        self.fails(400, "InvalidParameter", "ExportDataKey", **dict(good, EncryptionContext=""))
        self.fails(400, "InvalidParameter", "ExportDataKey",
                   **dict(good, CiphertextBlob=b64(os.urandom(80))))
        self.ok("DisableKey", KeyId=cmk)
        self.fails(409, "Rejected.Disabled", "ExportDataKey", **good)
        self.ok("EnableKey", KeyId=cmk)
        self.fails(400, "DryRunOperationError", "ExportDataKey", DryRun="true", **good)
        # A data key longer than the wrapping allows: 200 bytes > 190 (OAEP-SHA256), <= 214.
        big = self.ok("GenerateDataKeyWithoutPlaintext", KeyId=cmk, NumberOfBytes=200)
        self.fails(400, "InvalidParameter", "ExportDataKey",
                   **dict(good, CiphertextBlob=big["CiphertextBlob"], EncryptionContext=""))
        r = self.ok("ExportDataKey", **dict(good, CiphertextBlob=big["CiphertextBlob"],
                                            EncryptionContext="",
                                            WrappingAlgorithm="RSAES_OAEP_SHA_1"))
        plain = self.ok("Decrypt", CiphertextBlob=big["CiphertextBlob"])["Plaintext"]
        self.assertEqual(self.unwrap("RSA_2048", "RSAES_OAEP_SHA_1", r["ExportedDataKey"]),
                         unb64(plain))

    def test_generate_and_export(self):
        cmk = self.srv.create_key()["KeyId"]
        self.ok("CreateAlias", KeyId=cmk, AliasName="alias/gen-export")
        for spec, alg, size_params, size in (
            ("RSA_2048", "RSAES_OAEP_SHA_256", {"KeySpec": "AES_128"}, 16),
            ("RSA_2048", "RSAES_OAEP_SHA_1", {}, 32),
            ("EC_SM2", "SM2PKE", {"NumberOfBytes": 1024}, 1024),
            ("RSA_2048", "RSAES_OAEP_SHA_256", {"NumberOfBytes": 190, "KeySpec": "AES_128"}, 190),
        ):
            _, der = self.caller(spec)
            r = self.ok("GenerateAndExportDataKey", KeyId="alias/gen-export",
                        EncryptionContext='{"g":"e"}', PublicKeyBlob=b64(der),
                        WrappingKeySpec=spec, WrappingAlgorithm=alg, **size_params)
            self.assertEqual(r["KeyId"], cmk)
            self.assertNotIn("Plaintext", r)
            local = self.unwrap(spec, alg, r["ExportedDataKey"])
            self.assertEqual(len(local), size)
            dec = self.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"], EncryptionContext='{"g":"e"}')
            self.assertEqual((unb64(dec["Plaintext"]), dec["KeyVersionId"]), (local, r["KeyVersionId"]))
        _, der = self.caller("RSA_2048")
        good = dict(KeyId=cmk, PublicKeyBlob=b64(der), WrappingKeySpec="RSA_2048",
                    WrappingAlgorithm="RSAES_OAEP_SHA_256")
        self.fails(400, "InvalidParameter", "GenerateAndExportDataKey",
                   **dict(good, NumberOfBytes=191))
        self.fails(400, "InvalidParameter", "GenerateAndExportDataKey",
                   **dict(good, NumberOfBytes=0))
        self.fails(400, "InvalidParameter", "GenerateAndExportDataKey",
                   **dict(good, KeySpec="AES_512"))
        self.fails(400, "DryRunOperationError", "GenerateAndExportDataKey", DryRun="true", **good)
        signer = self.srv.create_key(KeySpec="RSA_2048")["KeyId"]
        self.fails(400, "Unsupported.KeySpec", "GenerateAndExportDataKey",
                   **dict(good, KeyId=signer))
        ext = self.srv.create_key(Origin="EXTERNAL")["KeyId"]
        self.fails(409, "Rejected.PendingImport", "GenerateAndExportDataKey",
                   **dict(good, KeyId=ext))

    def test_wrapping_key_errors(self):
        cmk = self.srv.create_key()["KeyId"]
        _, rsa = self.caller("RSA_2048")
        _, rsa3072 = self.caller("RSA_3072")
        _, rsa1024 = self.caller("RSA_1024")
        _, sm2 = self.caller("EC_SM2")
        _, p256 = self.caller("EC_P256")
        good = dict(KeyId=cmk, PublicKeyBlob=b64(rsa), WrappingKeySpec="RSA_2048",
                    WrappingAlgorithm="RSAES_OAEP_SHA_256")
        self.ok("GenerateAndExportDataKey", **good)
        for what, change in (
            ("not Base64", {"PublicKeyBlob": "%%%"}),
            ("not a key", {"PublicKeyBlob": b64(b"0123456789")}),
            ("trailing byte", {"PublicKeyBlob": b64(rsa + b"\x00")}),
            ("PEM instead of DER", {"PublicKeyBlob": b64(b"-----BEGIN PUBLIC KEY-----")}),
            ("RSA-3072 key for RSA_2048", {"PublicKeyBlob": b64(rsa3072)}),
            ("RSA-1024 key", {"PublicKeyBlob": b64(rsa1024)}),
            ("SM2 key for RSA_2048", {"PublicKeyBlob": b64(sm2)}),
            ("P-256 key for EC_SM2", {"PublicKeyBlob": b64(p256), "WrappingKeySpec": "EC_SM2",
                                      "WrappingAlgorithm": "SM2PKE"}),
            ("RSA key for EC_SM2", {"WrappingKeySpec": "EC_SM2", "WrappingAlgorithm": "SM2PKE"}),
            ("SM2PKE with RSA_2048", {"WrappingAlgorithm": "SM2PKE"}),
            ("OAEP with EC_SM2", {"PublicKeyBlob": b64(sm2), "WrappingKeySpec": "EC_SM2"}),
            ("PKCS#1 v1.5", {"WrappingAlgorithm": "RSAES_PKCS1_V1_5"}),
            ("unknown algorithm", {"WrappingAlgorithm": "RSA_RAW"}),
            ("unknown spec", {"WrappingKeySpec": "RSA_3072"}),
        ):
            r = self.srv.call("GenerateAndExportDataKey", **dict(good, **change))
            self.assertEqual((r.status, r.code), (400, "InvalidParameter"), "%s: %r" % (what, r))
        for missing in ("PublicKeyBlob", "WrappingKeySpec", "WrappingAlgorithm"):
            self.fails(400, "MissingParameter", "GenerateAndExportDataKey",
                       **dict(good, **{missing: ""}))


if __name__ == "__main__":
    unittest.main()
