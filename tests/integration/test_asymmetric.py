"""Asymmetric keys (spec/actions.md D3, algorithms.md §1.2, §7): CreateKey spec/usage rules,
GetPublicKey, AsymmetricSign/Verify/Encrypt/Decrypt per KeySpec and algorithm, checked against the
openssl command line in both directions, and the common errors and state rules.
"""

import hashlib
import os
import unittest

import openssl_cli as ossl
from kmsd import DEFAULT_CONFIG, Server, b64, unb64

SIGN_ALGS = {
    "RSA_2048": ["RSA_PSS_SHA_256", "RSA_PKCS1_SHA_256"],
    "RSA_3072": ["RSA_PSS_SHA_256", "RSA_PKCS1_SHA_256"],
    "EC_P256": ["ECDSA_SHA_256"],
    "EC_P256K": ["ECDSA_SHA_256"],
    "EC_SM2": ["SM2DSA"],
}


def make_key(srv, spec, usage=None):
    """A new asymmetric key: (KeyId, the KeyVersionId of its only version)."""
    params = {"KeySpec": spec}
    if usage:
        params["KeyUsage"] = usage
    md = srv.create_key(**params)
    versions = srv.ok("ListKeyVersions", KeyId=md["KeyId"])["KeyVersions"]["KeyVersion"]
    assert len(versions) == 1, versions
    return md["KeyId"], versions[0]["KeyVersionId"]


class AsymmetricBase(unittest.TestCase):
    config = None

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(config=cls.config).start()
        cls.wd = ossl.Workdir()

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        stderr = cls.srv.stderr_text()
        cls.srv.__exit__(None)
        cls.wd.__exit__(None)
        # A clean exit: under ASan/UBSan a leak or undefined behaviour makes it non-zero.
        assert status == 0, "kmsd exited with %s:\n%s" % (status, stderr[-4000:])

    def call(self, action, **params):
        return self.srv.call(action, **params)

    def ok(self, action, **params):
        return self.srv.ok(action, **params)

    def fails(self, status, code, action, **params):
        r = self.call(action, **params)
        self.assertEqual((r.status, r.code), (status, code), "%s %s: %r" % (action, params, r))
        return r

    def key(self, spec, usage=None):
        return make_key(self.srv, spec, usage)

    def pem(self, key_id, version_id):
        r = self.ok("GetPublicKey", KeyId=key_id, KeyVersionId=version_id)
        self.assertEqual((r["KeyId"], r["KeyVersionId"]), (key_id, version_id))
        return r["PublicKey"]

    def sign(self, key_id, version_id, alg, digest):
        r = self.ok("AsymmetricSign", KeyId=key_id, KeyVersionId=version_id, Algorithm=alg,
                    Digest=b64(digest))
        self.assertEqual((r["KeyId"], r["KeyVersionId"]), (key_id, version_id))
        return unb64(r["Value"])

    def verify(self, key_id, version_id, alg, digest, sig):
        r = self.ok("AsymmetricVerify", KeyId=key_id, KeyVersionId=version_id, Algorithm=alg,
                    Digest=b64(digest), Value=b64(sig))
        self.assertIsInstance(r["Value"], bool)
        return r["Value"]

    def decrypt(self, key_id, version_id, alg, ct):
        r = self.ok("AsymmetricDecrypt", KeyId=key_id, KeyVersionId=version_id, Algorithm=alg,
                    CiphertextBlob=b64(ct))
        self.assertEqual((r["KeyId"], r["KeyVersionId"]), (key_id, version_id))
        return unb64(r["Plaintext"])

    def encrypt(self, key_id, version_id, alg, pt):
        r = self.ok("AsymmetricEncrypt", KeyId=key_id, KeyVersionId=version_id, Algorithm=alg,
                    Plaintext=b64(pt))
        self.assertEqual((r["KeyId"], r["KeyVersionId"]), (key_id, version_id))
        return unb64(r["CiphertextBlob"])


class CreateKeyTest(AsymmetricBase):
    def test_usage_matrix(self):
        allowed = {
            "RSA_2048": ["ENCRYPT/DECRYPT", "SIGN/VERIFY"],
            "RSA_3072": ["ENCRYPT/DECRYPT", "SIGN/VERIFY"],
            "EC_P256": ["SIGN/VERIFY"],
            "EC_P256K": ["SIGN/VERIFY"],
            "EC_SM2": ["ENCRYPT/DECRYPT", "SIGN/VERIFY"],
        }
        for spec, usages in allowed.items():
            md = self.srv.create_key(KeySpec=spec)
            self.assertEqual(md["KeyUsage"], "SIGN/VERIFY", spec + ": default usage")
            self.assertEqual(md["KeySpec"], spec)
            self.assertNotIn("PrimaryKeyVersion", md, spec)
            desc = self.ok("DescribeKey", KeyId=md["KeyId"])["KeyMetadata"]
            self.assertNotIn("PrimaryKeyVersion", desc, spec + ": DescribeKey")
            for usage in ("ENCRYPT/DECRYPT", "SIGN/VERIFY"):
                if usage in usages:
                    self.assertEqual(self.srv.create_key(KeySpec=spec, KeyUsage=usage)["KeyUsage"],
                                     usage)
                else:
                    self.fails(400, "InvalidParameter", "CreateKey", KeySpec=spec, KeyUsage=usage)
        for spec in ("Aliyun_AES_256", "Aliyun_AES_128", "Aliyun_SM4"):
            self.fails(400, "InvalidParameter", "CreateKey", KeySpec=spec, KeyUsage="SIGN/VERIFY")
            self.assertTrue(self.srv.create_key(KeySpec=spec)["PrimaryKeyVersion"])
        self.fails(400, "InvalidParameter", "CreateKey", KeySpec="RSA_1024")
        self.fails(400, "InvalidParameter", "CreateKey", KeySpec="EC_P384")
        self.fails(400, "Unsupported.Origin", "CreateKey", KeySpec="RSA_2048", Origin="EXTERNAL")
        self.fails(400, "Unsupported.KeySpec", "CreateKey", KeySpec="EC_P256",
                   EnableAutomaticRotation="true", RotationInterval="30d")
        # Tianyi spellings are input aliases; the response says the canonical name.
        self.assertEqual(self.srv.create_key(KeySpec="SM2")["KeySpec"], "EC_SM2")

    def test_create_key_version_makes_new_pair(self):
        key_id, v1 = self.key("RSA_2048", "SIGN/VERIFY")
        r = self.ok("CreateKeyVersion", KeyId=key_id)["KeyVersion"]
        v2 = r["KeyVersionId"]
        self.assertEqual(r["KeyId"], key_id)
        self.assertNotEqual(v1, v2)
        self.assertNotEqual(self.pem(key_id, v1), self.pem(key_id, v2))
        self.assertEqual(self.ok("DescribeKeyVersion", KeyId=key_id, KeyVersionId=v2)["KeyVersion"]
                         ["KeyVersionId"], v2)
        listed = self.ok("ListKeyVersions", KeyId=key_id)
        self.assertEqual(listed["TotalCount"], 2)
        self.assertEqual([v["KeyVersionId"] for v in listed["KeyVersions"]["KeyVersion"]], [v1, v2])
        self.assertNotIn("PrimaryKeyVersion", self.ok("DescribeKey", KeyId=key_id)["KeyMetadata"])
        # A signature by one version does not verify under the other.
        digest = hashlib.sha256(b"versions").digest()
        sig2 = self.sign(key_id, v2, "RSA_PSS_SHA_256", digest)
        self.assertTrue(self.verify(key_id, v2, "RSA_PSS_SHA_256", digest, sig2))
        self.assertFalse(self.verify(key_id, v1, "RSA_PSS_SHA_256", digest, sig2))
        self.assertTrue(ossl.verify_digest(self.wd, self.pem(key_id, v2), "RSA_PSS_SHA_256",
                                           digest, sig2))
        self.assertFalse(ossl.verify_digest(self.wd, self.pem(key_id, v1), "RSA_PSS_SHA_256",
                                            digest, sig2))


class SignatureTest(AsymmetricBase):
    def check_spec(self, spec):
        key_id, ver = self.key(spec, "SIGN/VERIFY")
        pem = self.pem(key_id, ver)
        self.assertTrue(pem.startswith("-----BEGIN PUBLIC KEY-----\n"))
        self.assertTrue(pem.endswith("-----END PUBLIC KEY-----\n"))
        text = ossl.openssl("pkey", "-pubin", "-noout", "-text", data=pem.encode()).stdout.decode()
        der = ossl.pem_to_der(pem)
        message = os.urandom(200)
        for alg in SIGN_ALGS[spec]:
            if alg == "SM2DSA":
                digest = ossl.sm2_digest(der, message)
            else:
                digest = hashlib.sha256(message).digest()
            sig = self.sign(key_id, ver, alg, digest)
            if spec.startswith("RSA"):
                self.assertEqual(len(sig), int(spec[4:]) // 8)
            else:
                self.assertEqual(sig[0], 0x30, "DER SEQUENCE {r, s}")
            # Verified by the openssl CLI over the message it hashes itself, and over the digest.
            self.assertTrue(ossl.verify_message(self.wd, pem, alg, message, sig), (spec, alg))
            if alg != "SM2DSA":
                self.assertTrue(ossl.verify_digest(self.wd, pem, alg, digest, sig), (spec, alg))
            self.assertFalse(ossl.verify_message(self.wd, pem, alg, message + b"x", sig))
            # And by kmsd.
            self.assertTrue(self.verify(key_id, ver, alg, digest, sig))
            bad = bytearray(sig)
            bad[-1] ^= 1
            self.assertFalse(self.verify(key_id, ver, alg, digest, bytes(bad)), "tampered")
            other = bytearray(digest)
            other[0] ^= 0x80
            self.assertFalse(self.verify(key_id, ver, alg, bytes(other), sig), "other digest")
            self.assertFalse(self.verify(key_id, ver, alg, digest, sig[:-3]), "truncated")
            self.assertFalse(self.verify(key_id, ver, alg, digest, b"\x30\x00"), "garbage")
        return text

    def test_rsa_2048(self):
        self.assertIn("2048 bit", self.check_spec("RSA_2048"))

    def test_rsa_3072(self):
        self.assertIn("3072 bit", self.check_spec("RSA_3072"))

    def test_ec_p256(self):
        self.assertIn("prime256v1", self.check_spec("EC_P256"))

    def test_ec_p256k(self):
        self.assertIn("secp256k1", self.check_spec("EC_P256K"))

    def test_ec_sm2(self):
        text = self.check_spec("EC_SM2")
        self.assertIn("SM2", text)

    def test_sm2_digest_is_over_z_and_message(self):
        # SM3(M) alone is a different digest: a signature over it does not verify as the message.
        key_id, ver = self.key("EC_SM2", "SIGN/VERIFY")
        pem = self.pem(key_id, ver)
        sig = self.sign(key_id, ver, "SM2DSA", hashlib.new("sm3", b"msg").digest())
        self.assertFalse(ossl.verify_message(self.wd, pem, "SM2DSA", b"msg", sig))
        sig = self.sign(key_id, ver, "SM2DSA", ossl.sm2_digest(ossl.pem_to_der(pem), b"msg"))
        self.assertTrue(ossl.verify_message(self.wd, pem, "SM2DSA", b"msg", sig))

    def test_signatures_survive_restart(self):
        key_id, ver = self.key("EC_P256", "SIGN/VERIFY")
        pem = self.pem(key_id, ver)
        self.srv.restart()
        digest = hashlib.sha256(b"after restart").digest()
        sig = self.sign(key_id, ver, "ECDSA_SHA_256", digest)
        self.assertEqual(self.pem(key_id, ver), pem)
        self.assertTrue(ossl.verify_message(self.wd, pem, "ECDSA_SHA_256", b"after restart", sig))


class EncryptionTest(AsymmetricBase):
    def test_rsa_openssl_ciphertexts(self):
        for spec, limits in (("RSA_2048", {"RSAES_OAEP_SHA_256": 190, "RSAES_OAEP_SHA_1": 214}),
                             ("RSA_3072", {"RSAES_OAEP_SHA_256": 318, "RSAES_OAEP_SHA_1": 342})):
            key_id, ver = self.key(spec, "ENCRYPT/DECRYPT")
            pem = self.pem(key_id, ver)
            k = int(spec[4:]) // 8
            for alg, limit in limits.items():
                data = os.urandom(limit)
                ct = ossl.encrypt(self.wd, pem, alg, data)
                self.assertEqual(self.decrypt(key_id, ver, alg, ct), data, (spec, alg))
                other = "RSAES_OAEP_SHA_1" if alg == "RSAES_OAEP_SHA_256" else "RSAES_OAEP_SHA_256"
                self.fails(400, "InvalidParameter", "AsymmetricDecrypt", KeyId=key_id,
                           KeyVersionId=ver, Algorithm=other, CiphertextBlob=b64(ct))
                bad = bytearray(ct)
                bad[5] ^= 1
                self.fails(400, "InvalidParameter", "AsymmetricDecrypt", KeyId=key_id,
                           KeyVersionId=ver, Algorithm=alg, CiphertextBlob=b64(bytes(bad)))
                self.fails(400, "InvalidParameter", "AsymmetricDecrypt", KeyId=key_id,
                           KeyVersionId=ver, Algorithm=alg, CiphertextBlob=b64(ct[1:]))
                # Server round trip at the limit, one byte over is refused.
                ct2 = self.encrypt(key_id, ver, alg, data)
                self.assertEqual(len(ct2), k)
                self.assertEqual(self.decrypt(key_id, ver, alg, ct2), data)
                self.fails(400, "InvalidParameter", "AsymmetricEncrypt", KeyId=key_id,
                           KeyVersionId=ver, Algorithm=alg, Plaintext=b64(os.urandom(limit + 1)))
            # PKCS#1 v1.5 encryption is off unless configured.
            self.fails(400, "Unsupported.Algorithm", "AsymmetricEncrypt", KeyId=key_id,
                       KeyVersionId=ver, Algorithm="RSAES_PKCS1_V1_5", Plaintext=b64(b"x"))
            ct = ossl.encrypt(self.wd, pem, "RSAES_PKCS1_V1_5", b"abc")
            self.fails(400, "Unsupported.Algorithm", "AsymmetricDecrypt", KeyId=key_id,
                       KeyVersionId=ver, Algorithm="RSAES_PKCS1_V1_5", CiphertextBlob=b64(ct))

    def test_sm2_both_layouts(self):
        key_id, ver = self.key("EC_SM2", "ENCRYPT/DECRYPT")
        pem = self.pem(key_id, ver)
        data = os.urandom(100)
        der_ct = ossl.encrypt(self.wd, pem, "SM2PKE", data)
        self.assertEqual(der_ct[0], 0x30, "openssl writes GM/T 0009 DER")
        self.assertEqual(self.decrypt(key_id, ver, "SM2PKE", der_ct), data)
        raw_ct = ossl.sm2_der_to_raw(der_ct)
        self.assertEqual(self.decrypt(key_id, ver, "SM2PKE", raw_ct), data)
        # kmsd's own output is raw C1 || C3 || C2.
        ct = self.encrypt(key_id, ver, "SM2PKE", data)
        self.assertEqual(ct[0], 4)
        self.assertEqual(len(ct), 97 + len(data))
        self.assertEqual(self.decrypt(key_id, ver, "SM2PKE", ct), data)
        self.assertEqual(self.decrypt(key_id, ver, "SM2PKE", ossl.sm2_raw_to_der(ct)), data)
        for pos in (3, 70, len(ct) - 1):
            bad = bytearray(ct)
            bad[pos] ^= 1
            self.fails(400, "InvalidParameter", "AsymmetricDecrypt", KeyId=key_id,
                       KeyVersionId=ver, Algorithm="SM2PKE", CiphertextBlob=b64(bytes(bad)))
        self.fails(400, "InvalidParameter", "AsymmetricDecrypt", KeyId=key_id, KeyVersionId=ver,
                   Algorithm="SM2PKE", CiphertextBlob=b64(der_ct + b"\x00"))
        # 6047 bytes fit (6144-byte ciphertext), 6048 do not.
        big = os.urandom(6047)
        ct = self.encrypt(key_id, ver, "SM2PKE", big)
        self.assertEqual(len(ct), 6144)
        self.assertEqual(self.decrypt(key_id, ver, "SM2PKE", ct), big)
        self.fails(400, "InvalidParameter", "AsymmetricEncrypt", KeyId=key_id, KeyVersionId=ver,
                   Algorithm="SM2PKE", Plaintext=b64(os.urandom(6048)))


class ErrorTest(AsymmetricBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.signer = make_key(cls.srv, "RSA_2048", "SIGN/VERIFY")
        cls.decrypter = make_key(cls.srv, "RSA_2048", "ENCRYPT/DECRYPT")
        cls.digest = b64(hashlib.sha256(b"x").digest())

    def test_parameters(self):
        k, v = self.signer
        self.fails(400, "MissingParameter", "AsymmetricSign", KeyId=k, Algorithm="RSA_PSS_SHA_256",
                   Digest=self.digest)
        self.fails(400, "MissingParameter", "AsymmetricSign", KeyId=k, KeyVersionId=v,
                   Digest=self.digest)
        self.fails(400, "MissingParameter", "AsymmetricSign", KeyVersionId=v,
                   Algorithm="RSA_PSS_SHA_256", Digest=self.digest)
        self.fails(400, "MissingParameter", "GetPublicKey", KeyId=k)
        self.fails(400, "InvalidParameter", "AsymmetricSign", KeyId=k, KeyVersionId=v,
                   Algorithm="RSA_PSS_SHA_512", Digest=self.digest)
        for n in (20, 31, 33, 64):
            self.fails(400, "InvalidParameter", "AsymmetricSign", KeyId=k, KeyVersionId=v,
                       Algorithm="RSA_PSS_SHA_256", Digest=b64(os.urandom(n)))
            self.fails(400, "InvalidParameter", "AsymmetricVerify", KeyId=k, KeyVersionId=v,
                       Algorithm="RSA_PSS_SHA_256", Digest=b64(os.urandom(n)), Value=b64(b"s"))
        self.fails(400, "InvalidParameter", "AsymmetricSign", KeyId=k, KeyVersionId=v,
                   Algorithm="RSA_PSS_SHA_256", Digest="not base64!")
        self.fails(400, "InvalidParameter", "AsymmetricVerify", KeyId=k, KeyVersionId=v,
                   Algorithm="RSA_PSS_SHA_256", Digest=self.digest, Value="***")
        self.fails(400, "MissingParameter", "AsymmetricVerify", KeyId=k, KeyVersionId=v,
                   Algorithm="RSA_PSS_SHA_256", Digest=self.digest)

    def test_key_type_usage_algorithm(self):
        sk, sv = self.signer
        dk, dv = self.decrypter
        sym = self.srv.create_key()
        self.fails(400, "Unsupported.KeySpec", "GetPublicKey", KeyId=sym["KeyId"],
                   KeyVersionId=sym["PrimaryKeyVersion"])
        self.fails(400, "Unsupported.KeySpec", "AsymmetricSign", KeyId=sym["KeyId"],
                   KeyVersionId=sym["PrimaryKeyVersion"], Algorithm="RSA_PSS_SHA_256",
                   Digest=self.digest)
        self.fails(400, "Unsupported.KeySpec", "AsymmetricEncrypt", KeyId=sym["KeyId"],
                   KeyVersionId=sym["PrimaryKeyVersion"], Algorithm="RSAES_OAEP_SHA_256",
                   Plaintext=b64(b"x"))
        self.fails(400, "Unsupported.KeyUsage", "AsymmetricSign", KeyId=dk, KeyVersionId=dv,
                   Algorithm="RSA_PSS_SHA_256", Digest=self.digest)
        self.fails(400, "Unsupported.KeyUsage", "AsymmetricVerify", KeyId=dk, KeyVersionId=dv,
                   Algorithm="RSA_PSS_SHA_256", Digest=self.digest, Value=b64(b"s"))
        self.fails(400, "Unsupported.KeyUsage", "AsymmetricEncrypt", KeyId=sk, KeyVersionId=sv,
                   Algorithm="RSAES_OAEP_SHA_256", Plaintext=b64(b"x"))
        self.fails(400, "Unsupported.KeyUsage", "AsymmetricDecrypt", KeyId=sk, KeyVersionId=sv,
                   Algorithm="RSAES_OAEP_SHA_256", CiphertextBlob=b64(os.urandom(256)))
        self.fails(400, "Unsupported.KeySpec", "Encrypt", KeyId=dk, Plaintext=b64(b"x"))
        self.fails(400, "Unsupported.Algorithm", "AsymmetricSign", KeyId=sk, KeyVersionId=sv,
                   Algorithm="ECDSA_SHA_256", Digest=self.digest)
        self.fails(400, "Unsupported.Algorithm", "AsymmetricSign", KeyId=sk, KeyVersionId=sv,
                   Algorithm="SM2DSA", Digest=self.digest)
        self.fails(400, "Unsupported.Algorithm", "AsymmetricEncrypt", KeyId=dk, KeyVersionId=dv,
                   Algorithm="SM2PKE", Plaintext=b64(b"x"))
        ek, ev = self.key("EC_P256", "SIGN/VERIFY")
        self.fails(400, "Unsupported.Algorithm", "AsymmetricSign", KeyId=ek, KeyVersionId=ev,
                   Algorithm="SM2DSA", Digest=self.digest)
        self.fails(400, "Unsupported.Algorithm", "AsymmetricSign", KeyId=ek, KeyVersionId=ev,
                   Algorithm="RSA_PKCS1_SHA_256", Digest=self.digest)
        mk, mv = self.key("EC_SM2", "ENCRYPT/DECRYPT")
        self.fails(400, "Unsupported.Algorithm", "AsymmetricEncrypt", KeyId=mk, KeyVersionId=mv,
                   Algorithm="RSAES_OAEP_SHA_1", Plaintext=b64(b"x"))
        # Unknown algorithm names are parameter errors, whatever the key.
        self.fails(400, "InvalidParameter", "AsymmetricEncrypt", KeyId=mk, KeyVersionId=mv,
                   Algorithm="SM2", Plaintext=b64(b"x"))

    def test_versions_and_keys(self):
        sk, sv = self.signer
        dk, dv = self.decrypter
        self.fails(404, "Forbidden.KeyVersionNotFound", "GetPublicKey", KeyId=sk, KeyVersionId=dv)
        self.fails(404, "Forbidden.KeyVersionNotFound", "AsymmetricSign", KeyId=sk,
                   KeyVersionId=dv, Algorithm="RSA_PSS_SHA_256", Digest=self.digest)
        self.fails(404, "Forbidden.KeyVersionNotFound", "GetPublicKey", KeyId=sk,
                   KeyVersionId="00000000-0000-4000-8000-000000000bad")
        self.fails(404, "Forbidden.KeyNotFound", "GetPublicKey", KeyId="no-such-key",
                   KeyVersionId=sv)
        self.fails(404, "Forbidden.AliasNotFound", "GetPublicKey", KeyId="alias/none",
                   KeyVersionId=sv)

    def test_alias_and_arn(self):
        sk, sv = self.signer
        self.ok("CreateAlias", KeyId=sk, AliasName="alias/asym-signer")
        digest = hashlib.sha256(b"alias").digest()
        r = self.ok("AsymmetricSign", KeyId="alias/asym-signer", KeyVersionId=sv,
                    Algorithm="RSA_PKCS1_SHA_256", Digest=b64(digest))
        self.assertEqual(r["KeyId"], sk, "responses name the key id, never the alias")
        self.assertTrue(self.verify("alias/asym-signer", sv, "RSA_PKCS1_SHA_256", digest,
                                    unb64(r["Value"])))
        arn = "acs:kms:cn-hangzhou:1000000000000000:key/" + sk
        self.assertEqual(self.ok("GetPublicKey", KeyId=arn, KeyVersionId=sv)["KeyId"], sk)

    def test_dry_run(self):
        sk, sv = self.signer
        self.fails(400, "DryRunOperationError", "AsymmetricSign", KeyId=sk, KeyVersionId=sv,
                   Algorithm="RSA_PSS_SHA_256", Digest=self.digest, DryRun="true")
        self.fails(400, "InvalidParameter", "AsymmetricSign", KeyId=sk, KeyVersionId=sv,
                   Algorithm="RSA_PSS_SHA_256", Digest=b64(b"short"), DryRun="true")
        r = self.call("AsymmetricSign", KeyId=sk, KeyVersionId=sv, Algorithm="RSA_PSS_SHA_256",
                      Digest=self.digest, DryRun="false")
        self.assertEqual(r.status, 200, r)

    def test_key_states(self):
        k, v = self.key("EC_SM2", "ENCRYPT/DECRYPT")
        s, sv = self.key("EC_P256", "SIGN/VERIFY")
        digest = hashlib.sha256(b"s").digest()
        sig = self.sign(s, sv, "ECDSA_SHA_256", digest)
        ct = self.encrypt(k, v, "SM2PKE", b"state")

        def all_refused(code):
            self.fails(409, code, "GetPublicKey", KeyId=k, KeyVersionId=v)
            self.fails(409, code, "AsymmetricEncrypt", KeyId=k, KeyVersionId=v,
                       Algorithm="SM2PKE", Plaintext=b64(b"x"))
            self.fails(409, code, "AsymmetricDecrypt", KeyId=k, KeyVersionId=v,
                       Algorithm="SM2PKE", CiphertextBlob=b64(ct))
            self.fails(409, code, "AsymmetricSign", KeyId=s, KeyVersionId=sv,
                       Algorithm="ECDSA_SHA_256", Digest=b64(digest))
            self.fails(409, code, "AsymmetricVerify", KeyId=s, KeyVersionId=sv,
                       Algorithm="ECDSA_SHA_256", Digest=b64(digest), Value=b64(sig))
            self.fails(409, code, "CreateKeyVersion", KeyId=s)

        for key in (k, s):
            self.ok("DisableKey", KeyId=key)
        all_refused("Rejected.Disabled")
        for key in (k, s):
            self.ok("EnableKey", KeyId=key)
        self.assertEqual(self.decrypt(k, v, "SM2PKE", ct), b"state")
        self.assertTrue(self.verify(s, sv, "ECDSA_SHA_256", digest, sig))
        for key in (k, s):
            self.ok("ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7)
        all_refused("Rejected.PendingDeletion")
        # Metadata reads still work in every state.
        self.assertEqual(len(self.ok("ListKeyVersions", KeyId=k)["KeyVersions"]["KeyVersion"]), 1)
        for key in (k, s):
            self.ok("CancelKeyDeletion", KeyId=key)
        self.assertEqual(self.decrypt(k, v, "SM2PKE", ct), b"state")


class Pkcs1ConfiguredTest(AsymmetricBase):
    config = DEFAULT_CONFIG + "[keys]\nrsa_pkcs1_encryption = true\n"

    def test_pkcs1_when_enabled(self):
        key_id, ver = self.key("RSA_2048", "ENCRYPT/DECRYPT")
        pem = self.pem(key_id, ver)
        data = os.urandom(245)
        ct = ossl.encrypt(self.wd, pem, "RSAES_PKCS1_V1_5", data)
        self.assertEqual(self.decrypt(key_id, ver, "RSAES_PKCS1_V1_5", ct), data)
        ct = self.encrypt(key_id, ver, "RSAES_PKCS1_V1_5", data)
        self.assertEqual(self.decrypt(key_id, ver, "RSAES_PKCS1_V1_5", ct), data)
        self.fails(400, "InvalidParameter", "AsymmetricEncrypt", KeyId=key_id, KeyVersionId=ver,
                   Algorithm="RSAES_PKCS1_V1_5", Plaintext=b64(os.urandom(246)))
        self.fails(400, "InvalidParameter", "AsymmetricDecrypt", KeyId=key_id, KeyVersionId=ver,
                   Algorithm="RSAES_OAEP_SHA_256", CiphertextBlob=b64(ct))


if __name__ == "__main__":
    unittest.main()
