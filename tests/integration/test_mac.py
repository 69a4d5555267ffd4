"""Integrity check (spec/actions.md D4, algorithms.md §8): GenerateMac and VerifyMac.

Aliyun_SM4 keys take HMAC_SM3 only, Aliyun_AES_256/128 keys the four SHA-2 HMACs; every other spec
is Unsupported.KeySpec. The MAC key is derived from the key version's material, never the material
itself: with imported (BYOK) material of known value the test recomputes the MAC from the
documented derivation HMAC-H(material, "kms-mac-v1" || Algorithm) (H = SM3 for SM4 keys, else
SHA-256) and checks it is not HMAC under the raw material. VerifyMac tries the primary version,
then every other version (a MAC made before a rotation still verifies), and answers a JSON boolean.
HSM keys: the MAC key is derived and used inside the SoftHSM2 token (skipped without SoftHSM2).
"""

import hashlib
import hmac
import os
import shutil
import tempfile
import unittest

import openssl_cli as ossl
from common import KmsTestCase
from kmsd import Server, b64, unb64
from test_hsm import make_token, pkcs11_config, token_labels

SHA_ALGS = ("HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512")
MAC_LEN = {"HMAC_SM3": 32, "HMAC_SHA_224": 28, "HMAC_SHA_256": 32, "HMAC_SHA_384": 48,
           "HMAC_SHA_512": 64}
HASH = {"HMAC_SM3": "sm3", "HMAC_SHA_224": "sha224", "HMAC_SHA_256": "sha256",
        "HMAC_SHA_384": "sha384", "HMAC_SHA_512": "sha512"}


def have_sm3():
    try:
        hashlib.new("sm3")
        return True
    except ValueError:
        return False


def expected_mac(spec, alg, material, message):
    """The documented software derivation, recomputed independently."""
    kdf = "sm3" if spec == "Aliyun_SM4" else "sha256"
    mac_key = hmac.new(material, b"kms-mac-v1" + alg.encode(), lambda: hashlib.new(kdf)).digest()
    return hmac.new(mac_key, message, lambda: hashlib.new(HASH[alg])).digest()


class MacTest(KmsTestCase):
    def mac(self, key_id, alg, message):
        r = self.ok("GenerateMac", KeyId=key_id, Algorithm=alg, Message=b64(message))
        self.assertEqual(set(r), {"RequestId", "KeyId", "Algorithm", "Mac"})
        self.assertEqual(r["Algorithm"], alg)
        self.assertEqual(len(unb64(r["Mac"])), MAC_LEN[alg])
        return r

    def verify(self, key_id, alg, message, mac):
        r = self.ok("VerifyMac", KeyId=key_id, Algorithm=alg, Message=b64(message),
                    Mac=mac if isinstance(mac, str) else b64(mac))
        self.assertEqual(set(r), {"RequestId", "KeyId", "Algorithm", "Value"})
        self.assertIs(type(r["Value"]), bool, r)
        return r["Value"]

    def test_every_spec_and_algorithm(self):
        for spec, algs in (("Aliyun_AES_256", SHA_ALGS), ("Aliyun_AES_128", SHA_ALGS),
                           ("Aliyun_SM4", ("HMAC_SM3",))):
            key_id = self.create_key(KeySpec=spec)["KeyId"]
            macs = set()
            for alg in algs:
                with self.subTest(spec=spec, alg=alg):
                    r = self.mac(key_id, alg, b"message")
                    self.assertEqual(r["KeyId"], key_id)
                    macs.add(r["Mac"])
                    # HMAC is deterministic; the same message gives the same MAC.
                    self.assertEqual(self.mac(key_id, alg, b"message")["Mac"], r["Mac"])
                    self.assertTrue(self.verify(key_id, alg, b"message", r["Mac"]))
                    self.assertFalse(self.verify(key_id, alg, b"messagf", r["Mac"]))
                    bad = bytearray(unb64(r["Mac"]))
                    bad[-1] ^= 1
                    self.assertFalse(self.verify(key_id, alg, b"message", bytes(bad)))
                    self.assertFalse(self.verify(key_id, alg, b"message", bytes(bad[:-1])))
                    self.assertFalse(self.verify(key_id, alg, b"message", bytes(bad) + b"\0"))
            # Each algorithm has its own key: no two MACs (of lengths that could) agree.
            self.assertEqual(len(macs), len(algs))

    def test_algorithm_must_fit_the_spec(self):
        aes = self.create_key(KeySpec="Aliyun_AES_256")["KeyId"]
        sm4 = self.create_key(KeySpec="Aliyun_SM4")["KeyId"]
        self.assertFails("GenerateMac", 400, "Unsupported.Algorithm", KeyId=aes,
                         Algorithm="HMAC_SM3", Message=b64(b"m"))
        for alg in SHA_ALGS:
            self.assertFails("GenerateMac", 400, "Unsupported.Algorithm", KeyId=sm4, Algorithm=alg,
                             Message=b64(b"m"))
        self.assertFails("VerifyMac", 400, "Unsupported.Algorithm", KeyId=sm4,
                         Algorithm="HMAC_SHA_256", Message=b64(b"m"), Mac=b64(b"x" * 32))

    def test_asymmetric_keys_are_unsupported_key_spec(self):
        for spec, usage in (("RSA_2048", "ENCRYPT/DECRYPT"), ("RSA_2048", "SIGN/VERIFY"),
                            ("EC_P256", "SIGN/VERIFY"), ("EC_SM2", "ENCRYPT/DECRYPT")):
            key_id = self.create_key(KeySpec=spec, KeyUsage=usage)["KeyId"]
            with self.subTest(spec=spec, usage=usage):
                self.assertFails("GenerateMac", 400, "Unsupported.KeySpec", KeyId=key_id,
                                 Algorithm="HMAC_SHA_256", Message=b64(b"m"))
                self.assertFails("VerifyMac", 400, "Unsupported.KeySpec", KeyId=key_id,
                                 Algorithm="HMAC_SM3", Message=b64(b"m"), Mac=b64(b"x" * 32))

    def test_parameters(self):
        key_id = self.create_key()["KeyId"]
        self.assertFails("GenerateMac", 400, "MissingParameter", "Algorithm", KeyId=key_id,
                         Message=b64(b"m"))
        self.assertFails("GenerateMac", 400, "MissingParameter", "Message", KeyId=key_id,
                         Algorithm="HMAC_SHA_256")
        self.assertFails("GenerateMac", 400, "MissingParameter", "KeyId",
                         Algorithm="HMAC_SHA_256", Message=b64(b"m"))
        self.assertFails("VerifyMac", 400, "MissingParameter", "Mac", KeyId=key_id,
                         Algorithm="HMAC_SHA_256", Message=b64(b"m"))
        for alg in ("hmac_sha_256", "HMAC_SHA256", "HMAC_SHA_1", "HMAC_MD5", "SHA_256"):
            self.assertFails("GenerateMac", 400, "InvalidParameter", "Algorithm", KeyId=key_id,
                             Algorithm=alg, Message=b64(b"m"))
        self.assertFails("GenerateMac", 400, "InvalidParameter", "Message", KeyId=key_id,
                         Algorithm="HMAC_SHA_256", Message="not base64!")
        self.assertFails("VerifyMac", 400, "InvalidParameter", "Mac", KeyId=key_id,
                         Algorithm="HMAC_SHA_256", Message=b64(b"m"), Mac="%%%")
        # 1-6144 bytes.
        self.mac(key_id, "HMAC_SHA_256", b"\0")
        self.mac(key_id, "HMAC_SHA_256", os.urandom(6144))
        self.assertFails("GenerateMac", 400, "InvalidParameter", "Message", KeyId=key_id,
                         Algorithm="HMAC_SHA_256", Message=b64(os.urandom(6145)))
        self.assertFails("VerifyMac", 400, "InvalidParameter", "Message", KeyId=key_id,
                         Algorithm="HMAC_SHA_256", Message=b64(os.urandom(6145)),
                         Mac=b64(b"x" * 32))

    def test_key_references_and_states(self):
        key_id = self.create_key()["KeyId"]
        self.ok("CreateAlias", KeyId=key_id, AliasName="alias/mac-test")
        mac = self.mac("alias/mac-test", "HMAC_SHA_256", b"m")
        self.assertEqual(mac["KeyId"], key_id)
        arn = "acs:kms:cn-hangzhou:1000000000000000:key/" + key_id
        self.assertTrue(self.verify(arn, "HMAC_SHA_256", b"m", mac["Mac"]))
        self.assertFails("GenerateMac", 404, "Forbidden.KeyNotFound", KeyId="no-such-key",
                         Algorithm="HMAC_SHA_256", Message=b64(b"m"))
        self.assertFails("GenerateMac", 404, "Forbidden.AliasNotFound", KeyId="alias/nothing",
                         Algorithm="HMAC_SHA_256", Message=b64(b"m"))
        for state, code in (("Disabled", "Rejected.Disabled"),
                            ("PendingDeletion", "Rejected.PendingDeletion"),
                            ("PendingImport", "Rejected.PendingImport")):
            other = self.key_in(state)
            with self.subTest(state=state):
                self.assertFails("GenerateMac", 409, code, KeyId=other, Algorithm="HMAC_SHA_256",
                                 Message=b64(b"m"))
                self.assertFails("VerifyMac", 409, code, KeyId=other, Algorithm="HMAC_SHA_256",
                                 Message=b64(b"m"), Mac=b64(b"x" * 32))
        # Re-enabled, the MAC of before verifies again.
        self.ok("DisableKey", KeyId=key_id)
        self.assertFails("VerifyMac", 409, "Rejected.Disabled", KeyId=key_id,
                         Algorithm="HMAC_SHA_256", Message=b64(b"m"), Mac=mac["Mac"])
        self.ok("EnableKey", KeyId=key_id)
        self.assertTrue(self.verify(key_id, "HMAC_SHA_256", b"m", mac["Mac"]))

    def test_mac_of_another_key_does_not_verify(self):
        a = self.create_key()["KeyId"]
        b = self.create_key()["KeyId"]
        mac = self.mac(a, "HMAC_SHA_512", b"shared message")["Mac"]
        self.assertTrue(self.verify(a, "HMAC_SHA_512", b"shared message", mac))
        self.assertFalse(self.verify(b, "HMAC_SHA_512", b"shared message", mac))
        # Nor under another algorithm of the same key.
        self.assertFalse(self.verify(a, "HMAC_SHA_384", b"shared message", unb64(mac)[:48]))

    def test_rotation_old_macs_still_verify(self):
        key_id = self.create_key()["KeyId"]
        macs = [self.mac(key_id, "HMAC_SHA_256", b"rotating")["Mac"]]
        for _ in range(2):
            self.ok("CreateKeyVersion", KeyId=key_id)
            macs.append(self.mac(key_id, "HMAC_SHA_256", b"rotating")["Mac"])
        # Each primary version gives its own MAC; all of them verify.
        self.assertEqual(len(set(macs)), 3)
        for mac in macs:
            self.assertTrue(self.verify(key_id, "HMAC_SHA_256", b"rotating", mac))
        self.assertFalse(self.verify(key_id, "HMAC_SHA_256", b"rotatinG", macs[0]))

    def test_survives_restart(self):
        key_id = self.create_key(KeySpec="Aliyun_SM4")["KeyId"]
        mac = self.mac(key_id, "HMAC_SM3", b"persist")["Mac"]
        self.srv.restart()
        self.assertTrue(self.verify(key_id, "HMAC_SM3", b"persist", mac))
        self.assertEqual(self.mac(key_id, "HMAC_SM3", b"persist")["Mac"], mac)


class MacDerivationTest(KmsTestCase):
    """With imported material of known value the MAC is recomputed from its definition."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.wd = ossl.Workdir()

    @classmethod
    def tearDownClass(cls):
        cls.wd.__exit__(None)
        super().tearDownClass()

    def imported_key(self, spec, material):
        key_id = self.create_key(KeySpec=spec, Origin="EXTERNAL")["KeyId"]
        p = self.ok("GetParametersForImport", KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                    WrappingKeySpec="RSA_2048")
        wrapped = ossl.encrypt(self.wd, unb64(p["PublicKey"]), "RSAES_OAEP_SHA_256", material,
                               keyform="DER")
        self.ok("ImportKeyMaterial", KeyId=key_id, ImportToken=p["ImportToken"],
                EncryptedKeyMaterial=b64(wrapped))
        return key_id

    def test_mac_is_the_documented_derivation(self):
        cases = [("Aliyun_AES_256", 32, alg) for alg in SHA_ALGS]
        cases += [("Aliyun_AES_128", 16, "HMAC_SHA_256")]
        if have_sm3():
            cases += [("Aliyun_SM4", 16, "HMAC_SM3")]
        for spec, length, alg in cases:
            with self.subTest(spec=spec, alg=alg):
                material = os.urandom(length)
                key_id = self.imported_key(spec, material)
                message = os.urandom(100)
                got = unb64(self.ok("GenerateMac", KeyId=key_id, Algorithm=alg,
                                    Message=b64(message))["Mac"])
                self.assertEqual(got, expected_mac(spec, alg, material, message))
                # Never the HMAC under the encryption key itself.
                raw = hmac.new(material, message, lambda: hashlib.new(HASH[alg])).digest()
                self.assertNotEqual(got, raw)
                self.assertTrue(self.ok("VerifyMac", KeyId=key_id, Algorithm=alg,
                                        Message=b64(message), Mac=b64(got))["Value"])

    def test_material_deleted_then_reimported(self):
        material = os.urandom(32)
        key_id = self.imported_key("Aliyun_AES_256", material)
        mac = self.ok("GenerateMac", KeyId=key_id, Algorithm="HMAC_SHA_256",
                      Message=b64(b"m"))["Mac"]
        self.ok("DeleteKeyMaterial", KeyId=key_id)
        self.assertFails("VerifyMac", 409, "Rejected.PendingImport", KeyId=key_id,
                         Algorithm="HMAC_SHA_256", Message=b64(b"m"), Mac=mac)
        p = self.ok("GetParametersForImport", KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                    WrappingKeySpec="RSA_2048")
        self.ok("ImportKeyMaterial", KeyId=key_id, ImportToken=p["ImportToken"],
                EncryptedKeyMaterial=b64(ossl.encrypt(self.wd, unb64(p["PublicKey"]),
                                                      "RSAES_OAEP_SHA_256", material,
                                                      keyform="DER")))
        self.assertTrue(self.ok("VerifyMac", KeyId=key_id, Algorithm="HMAC_SHA_256",
                                Message=b64(b"m"), Mac=mac)["Value"])


class HsmMacTest(unittest.TestCase):
    LABEL = "kmsd-mac"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kmsd-hsm-mac-")
        cls.tok = make_token(os.path.join(cls.tmp, "hsm"), cls.LABEL)
        cls.srv = Server(config=pkcs11_config(cls.tok, cls.LABEL),
                         env={"SOFTHSM2_CONF": cls.tok["SOFTHSM2_CONF"]}).start()

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        stderr = cls.srv.stderr_text()
        cls.srv.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert status == 0, "kmsd exited with %s:\n%s" % (status, stderr[-3000:])

    def call(self, action, **params):
        return self.srv.call(action, **params)

    def test_hsm_key_macs(self):
        key_id = self.srv.create_key(ProtectionLevel="HSM")["KeyId"]
        objects = len(token_labels(self.tok, self.LABEL))
        macs = {}
        for alg in SHA_ALGS:
            r = self.call("GenerateMac", KeyId=key_id, Algorithm=alg, Message=b64(b"in the token"))
            self.assertEqual(r.status, 200, r)
            macs[alg] = r.json["Mac"]
            self.assertEqual(len(unb64(macs[alg])), MAC_LEN[alg])
            r = self.call("VerifyMac", KeyId=key_id, Algorithm=alg, Message=b64(b"in the token"),
                          Mac=macs[alg])
            self.assertIs(r.json["Value"], True, r)
            r = self.call("VerifyMac", KeyId=key_id, Algorithm=alg, Message=b64(b"in the tokeN"),
                          Mac=macs[alg])
            self.assertIs(r.json["Value"], False, r)
        # The derived MAC keys were session objects: nothing new stays in the token.
        self.assertEqual(len(token_labels(self.tok, self.LABEL)), objects)
        r = self.call("GenerateMac", KeyId=key_id, Algorithm="HMAC_SM3", Message=b64(b"m"))
        self.assertEqual((r.status, r.code), (400, "Unsupported.Algorithm"), r)
        # A rotated HSM key: the MAC of the old primary still verifies; restart keeps all.
        self.assertEqual(self.call("CreateKeyVersion", KeyId=key_id).status, 200)
        new = self.call("GenerateMac", KeyId=key_id, Algorithm="HMAC_SHA_256",
                        Message=b64(b"in the token")).json["Mac"]
        self.assertNotEqual(new, macs["HMAC_SHA_256"])
        self.srv.restart()
        for mac in (new, macs["HMAC_SHA_256"]):
            r = self.call("VerifyMac", KeyId=key_id, Algorithm="HMAC_SHA_256",
                          Message=b64(b"in the token"), Mac=mac)
            self.assertIs(r.json["Value"], True, r)

    def test_software_and_hsm_keys_side_by_side(self):
        hsm = self.srv.create_key(ProtectionLevel="HSM", KeySpec="Aliyun_AES_128")["KeyId"]
        soft = self.srv.create_key(KeySpec="Aliyun_AES_128")["KeyId"]
        a = self.call("GenerateMac", KeyId=hsm, Algorithm="HMAC_SHA_384", Message=b64(b"x")).json
        b = self.call("GenerateMac", KeyId=soft, Algorithm="HMAC_SHA_384", Message=b64(b"x")).json
        self.assertNotEqual(a["Mac"], b["Mac"])
        r = self.call("VerifyMac", KeyId=soft, Algorithm="HMAC_SHA_384", Message=b64(b"x"),
                      Mac=a["Mac"])
        self.assertIs(r.json["Value"], False, r)


if __name__ == "__main__":
    unittest.main()
