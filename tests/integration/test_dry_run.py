"""DryRun (spec/protocol.md §12) on every action that accepts it: Encrypt, Decrypt, GenerateDataKey,
GenerateDataKeyWithoutPlaintext, ExportDataKey, GenerateAndExportDataKey, ReEncrypt (both source
kinds), AsymmetricEncrypt/Decrypt/Sign/Verify, GetPublicKey, GetSecretValue, GenerateMac, VerifyMac.

DryRun=true runs every check - parameters, key resolution, key state; for symmetric blobs their
opening, which is how key, version and EncryptionContext are checked - and then answers
400 DryRunOperationError with an error body only (no result leaks). A request that would fail
fails the same way with DryRun; DryRun=false runs normally; anything but true/false is
InvalidParameter.
"""

import hashlib
import unittest

import openssl_cli as ossl
from common import KmsTestCase
from kmsd import b64


class DryRunTest(KmsTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.wd = ossl.Workdir()
        srv = cls.srv
        cls.sym = srv.create_key()["KeyId"]
        cls.disabled = srv.create_key()["KeyId"]
        cls.rsa_enc = srv.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT/DECRYPT")["KeyId"]
        cls.rsa_sign = srv.create_key(KeySpec="RSA_2048", KeyUsage="SIGN/VERIFY")["KeyId"]
        cls.enc_version = srv.ok("ListKeyVersions", KeyId=cls.rsa_enc)["KeyVersions"][
            "KeyVersion"][0]["KeyVersionId"]
        cls.sign_version = srv.ok("ListKeyVersions", KeyId=cls.rsa_sign)["KeyVersions"][
            "KeyVersion"][0]["KeyVersionId"]
        cls.blob = srv.ok("Encrypt", KeyId=cls.sym, Plaintext=b64(b"secret"),
                          EncryptionContext='{"a":"b"}')["CiphertextBlob"]
        cls.data_key = srv.ok("GenerateDataKeyWithoutPlaintext", KeyId=cls.sym,
                              NumberOfBytes=32)["CiphertextBlob"]
        cls.disabled_blob = srv.ok("Encrypt", KeyId=cls.disabled,
                                   Plaintext=b64(b"x"))["CiphertextBlob"]
        cls.asym_ct = srv.ok("AsymmetricEncrypt", KeyId=cls.rsa_enc, KeyVersionId=cls.enc_version,
                             Algorithm="RSAES_OAEP_SHA_256",
                             Plaintext=b64(b"asym"))["CiphertextBlob"]
        cls.digest = b64(hashlib.sha256(b"signed").digest())
        cls.signature = srv.ok("AsymmetricSign", KeyId=cls.rsa_sign, KeyVersionId=cls.sign_version,
                               Algorithm="RSA_PSS_SHA_256", Digest=cls.digest)["Value"]
        cls.mac = srv.ok("GenerateMac", KeyId=cls.sym, Algorithm="HMAC_SHA_256",
                         Message=b64(b"mac me"))["Mac"]
        srv.ok("CreateSecret", SecretName="dry-run-secret", VersionId="v1", SecretData="s3cret",
               EncryptionKeyId=cls.sym)
        srv.ok("DisableKey", KeyId=cls.disabled)
        _, cls.caller_der = ossl.generate_key(cls.wd, "RSA_2048")

    @classmethod
    def tearDownClass(cls):
        cls.wd.__exit__(None)
        super().tearDownClass()

    def cases(self):
        """action -> (valid parameters, a variant that is invalid, its (status, code, param),
        a variant naming the Disabled key or None)."""
        export = dict(PublicKeyBlob=b64(self.caller_der), WrappingKeySpec="RSA_2048",
                      WrappingAlgorithm="RSAES_OAEP_SHA_256")
        return {
            "Encrypt": (dict(KeyId=self.sym, Plaintext=b64(b"p")),
                        dict(Plaintext="%%%"), (400, "InvalidParameter", "Plaintext"),
                        dict(KeyId=self.disabled)),
            "Decrypt": (dict(CiphertextBlob=self.blob, EncryptionContext='{"a":"b"}'),
                        dict(EncryptionContext='{"a":"c"}'),
                        (400, "InvalidParameter", "CiphertextBlob"),
                        dict(CiphertextBlob=self.disabled_blob, EncryptionContext=None)),
            "GenerateDataKey": (dict(KeyId=self.sym, NumberOfBytes=16),
                                dict(NumberOfBytes=1025),
                                (400, "InvalidParameter", "NumberOfBytes"),
                                dict(KeyId=self.disabled)),
            "GenerateDataKeyWithoutPlaintext": (dict(KeyId=self.sym, KeySpec="AES_128"),
                                                dict(KeySpec="AES_64"),
                                                (400, "InvalidParameter", "KeySpec"),
                                                dict(KeyId=self.disabled)),
            "ExportDataKey": (dict(CiphertextBlob=self.data_key, **export),
                              dict(WrappingAlgorithm="RSAES_X"),
                              (400, "InvalidParameter", "WrappingAlgorithm"), None),
            "GenerateAndExportDataKey": (dict(KeyId=self.sym, **export),
                                         dict(PublicKeyBlob=b64(b"not a key")),
                                         (400, "InvalidParameter", "PublicKeyBlob"),
                                         dict(KeyId=self.disabled)),
            "ReEncrypt": (dict(CiphertextBlob=self.blob, SourceEncryptionContext='{"a":"b"}',
                               DestinationKeyId=self.sym),
                          dict(SourceEncryptionContext='{"a":"x"}'),
                          (400, "InvalidParameter", "CiphertextBlob"),
                          dict(DestinationKeyId=self.disabled)),
            "AsymmetricEncrypt": (dict(KeyId=self.rsa_enc, KeyVersionId=self.enc_version,
                                       Algorithm="RSAES_OAEP_SHA_256", Plaintext=b64(b"p")),
                                  dict(Algorithm="RSAES_OAEP_SHA_512"),
                                  (400, "InvalidParameter", "Algorithm"), None),
            "AsymmetricDecrypt": (dict(KeyId=self.rsa_enc, KeyVersionId=self.enc_version,
                                       Algorithm="RSAES_OAEP_SHA_256",
                                       CiphertextBlob=self.asym_ct),
                                  dict(KeyVersionId="00000000-0000-4000-8000-000000000000"),
                                  (404, "Forbidden.KeyVersionNotFound", None), None),
            "AsymmetricSign": (dict(KeyId=self.rsa_sign, KeyVersionId=self.sign_version,
                                    Algorithm="RSA_PSS_SHA_256", Digest=self.digest),
                               dict(Digest=b64(b"short")), (400, "InvalidParameter", "Digest"),
                               None),
            "AsymmetricVerify": (dict(KeyId=self.rsa_sign, KeyVersionId=self.sign_version,
                                      Algorithm="RSA_PSS_SHA_256", Digest=self.digest,
                                      Value=self.signature),
                                 dict(Algorithm="ECDSA_SHA_256"),
                                 (400, "Unsupported.Algorithm", None), None),
            "GetPublicKey": (dict(KeyId=self.rsa_sign, KeyVersionId=self.sign_version),
                             dict(KeyId=self.sym), (400, "Unsupported.KeySpec", None), None),
            "GetSecretValue": (dict(SecretName="dry-run-secret"),
                               dict(SecretName="no-such-secret"),
                               (404, "Forbidden.ResourceNotFound", None), None),
            "GenerateMac": (dict(KeyId=self.sym, Algorithm="HMAC_SHA_256", Message=b64(b"m")),
                            dict(Algorithm="HMAC_SM3"), (400, "Unsupported.Algorithm", None),
                            dict(KeyId=self.disabled)),
            "VerifyMac": (dict(KeyId=self.sym, Algorithm="HMAC_SHA_256", Message=b64(b"mac me"),
                               Mac=self.mac),
                          dict(Message=""), (400, "MissingParameter", "Message"),
                          dict(KeyId=self.disabled)),
        }

    @staticmethod
    def merged(base, change):
        out = dict(base)
        for k, v in change.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        return out

    def test_dry_run_answers_dry_run_operation_error(self):
        for action, (good, _, _, _) in self.cases().items():
            with self.subTest(action=action):
                for flag in ("true", "True", "TRUE"):
                    self.assertFails(action, 400, "DryRunOperationError", DryRun=flag, **good)

    def test_without_dry_run_the_action_runs(self):
        for action, (good, _, _, _) in self.cases().items():
            with self.subTest(action=action):
                self.ok(action, **good)
                self.ok(action, DryRun="false", **good)

    def test_failures_come_first(self):
        for action, (good, bad, (status, code, param), _) in self.cases().items():
            with self.subTest(action=action):
                params = self.merged(good, bad)
                self.assertFails(action, status, code, param, DryRun="true", **params)
                self.assertFails(action, status, code, param, **params)

    def test_key_state_is_checked(self):
        for action, (good, _, _, disabled) in self.cases().items():
            if disabled is None:
                continue
            with self.subTest(action=action):
                self.assertFails(action, 409, "Rejected.Disabled", DryRun="true",
                                 **self.merged(good, disabled))

    def test_unknown_key_is_checked(self):
        for action in ("Encrypt", "GenerateDataKey", "GenerateMac", "AsymmetricSign"):
            good = self.cases()[action][0]
            with self.subTest(action=action):
                self.assertFails(action, 404, "Forbidden.KeyNotFound", DryRun="true",
                                 **self.merged(good, dict(KeyId="no-such-key")))

    def test_dry_run_must_be_a_boolean(self):
        for action, (good, _, _, _) in self.cases().items():
            with self.subTest(action=action):
                for flag in ("yes", "1", "tru"):
                    self.assertFails(action, 400, "InvalidParameter", "DryRun", DryRun=flag,
                                     **good)

    def test_v3_signature(self):
        r = self.srv.call_v3("Encrypt", KeyId=self.sym, Plaintext=b64(b"p"), DryRun="true")
        self.assertError(r, 400, "DryRunOperationError")

    def test_reencrypt_asymmetric_source(self):
        good = dict(CiphertextBlob=self.asym_ct, SourceKeyId=self.rsa_enc,
                    SourceKeyVersionId=self.enc_version,
                    SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256", DestinationKeyId=self.sym)
        self.assertFails("ReEncrypt", 400, "DryRunOperationError", DryRun="true", **good)
        self.assertFails("ReEncrypt", 400, "MissingParameter", "SourceKeyVersionId",
                         DryRun="true", **self.merged(good, dict(SourceKeyVersionId=None)))
        self.ok("ReEncrypt", **good)


class DryRunElsewhereTest(KmsTestCase):
    """Actions without DryRun support refuse DryRun=true rather than run for real (§12's MUST NOT
    silently ignore); DryRun=false is no request at all and changes nothing."""

    def test_refused_and_nothing_happens(self):
        before = self.srv.ok("ListKeys", PageSize=100)["TotalCount"]
        self.assertFails("CreateKey", 400, "InvalidParameter", "DryRun", DryRun="true")
        self.assertEqual(self.srv.ok("ListKeys", PageSize=100)["TotalCount"], before)
        key_id = self.srv.create_key()["KeyId"]
        self.assertFails("DisableKey", 400, "InvalidParameter", "DryRun", DryRun="true",
                         KeyId=key_id)
        self.assertFails("CreateAlias", 400, "InvalidParameter", "DryRun", DryRun="True",
                         AliasName="alias/dry-run-elsewhere", KeyId=key_id)
        meta = self.srv.ok("DescribeKey", KeyId=key_id)["KeyMetadata"]
        self.assertEqual(meta["KeyState"], "Enabled")
        self.assertFails("DescribeKey", 404, "Forbidden.AliasNotFound", KeyId="alias/dry-run-elsewhere")
        self.ok("DisableKey", DryRun="false", KeyId=key_id)
        self.assertEqual(self.srv.ok("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"],
                         "Disabled")


if __name__ == "__main__":
    unittest.main()
