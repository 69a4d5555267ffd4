"""Bring your own key (spec/actions.md C4, algorithms.md §5, key-states.md §2-§3, §7):
GetParametersForImport, material wrapped by the openssl command line with each wrapping algorithm,
ImportKeyMaterial for every symmetric spec, token and material failures, re-import of the same
material only, DeleteKeyMaterial, the state table, and — moving the test clock — token expiry
after 24 h and material expiry (lazy and by the maintenance pass).
"""

import base64
import os
import time
import unittest

import openssl_cli as ossl
from kmsd import DEFAULT_CONFIG, Server, b64, timeout_scale, unb64

DAY = 86400
MATERIAL_LEN = {"Aliyun_AES_256": 32, "Aliyun_AES_128": 16, "Aliyun_SM4": 16}


class ByokBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server().start()
        cls.wd = ossl.Workdir()
        cls.clock_offset = 0

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        stderr = cls.srv.stderr_text()
        cls.srv.__exit__(None)
        cls.wd.__exit__(None)
        # A clean exit: under ASan/UBSan a leak or undefined behaviour makes it non-zero.
        assert status == 0, "kmsd exited with %s:\n%s" % (status, stderr[-4000:])

    def now(self):
        """The server's timed-work clock (real time plus whatever the tests advanced)."""
        return int(time.time()) + type(self).clock_offset

    def advance(self, seconds):
        self.srv.advance_clock(seconds)
        type(self).clock_offset += seconds

    def ok(self, action, **params):
        return self.srv.ok(action, **params)

    def fails(self, status, code, action, **params):
        r = self.srv.call(action, **params)
        self.assertEqual((r.status, r.code), (status, code), "%s: %r" % (action, r))
        return r

    def external_key(self, spec="Aliyun_AES_256"):
        md = self.srv.create_key(KeySpec=spec, Origin="EXTERNAL")
        self.assertEqual((md["Origin"], md["KeyState"]), ("EXTERNAL", "PendingImport"))
        return md["KeyId"]

    def params(self, key_id, alg="RSAES_OAEP_SHA_256", spec="RSA_2048"):
        r = self.ok("GetParametersForImport", KeyId=key_id, WrappingAlgorithm=alg,
                    WrappingKeySpec=spec)
        self.assertEqual(r["KeyId"], key_id)
        return {"token": r["ImportToken"], "der": unb64(r["PublicKey"]), "alg": alg,
                "expire": r["TokenExpireTime"]}

    def wrap(self, p, material, alg=None):
        return b64(ossl.encrypt(self.wd, p["der"], alg or p["alg"], material, keyform="DER"))

    def import_(self, key_id, material, alg="RSAES_OAEP_SHA_256", spec="RSA_2048", **extra):
        p = self.params(key_id, alg, spec)
        return self.ok("ImportKeyMaterial", KeyId=key_id, ImportToken=p["token"],
                       EncryptedKeyMaterial=self.wrap(p, material), **extra)

    def state(self, key_id):
        return self.ok("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"]

    def metadata(self, key_id):
        return self.ok("DescribeKey", KeyId=key_id)["KeyMetadata"]

    def round_trip(self, key_id):
        pt = b64(os.urandom(33))
        blob = self.ok("Encrypt", KeyId=key_id, Plaintext=pt)["CiphertextBlob"]
        self.assertEqual(self.ok("Decrypt", CiphertextBlob=blob)["Plaintext"], pt)
        return blob, pt


class ImportTest(ByokBase):
    def test_every_spec_and_wrapping(self):
        for spec, n in MATERIAL_LEN.items():
            for alg in ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "RSAES_PKCS1_V1_5"):
                key_id = self.external_key(spec)
                self.import_(key_id, os.urandom(n), alg)
                self.assertEqual(self.state(key_id), "Enabled", (spec, alg))
                self.round_trip(key_id)
            key_id = self.external_key(spec)
            self.import_(key_id, os.urandom(n), "SM2PKE", "EC_SM2")
            self.assertEqual(self.state(key_id), "Enabled", (spec, "SM2PKE"))
            self.round_trip(key_id)

    def test_same_material_in_two_keys(self):
        # Two keys with the same material still cannot open each other's ciphertexts: a blob
        # pointed at the other key's version fails its tag (the version id is in the AAD).
        material = os.urandom(32)
        a, b = self.external_key(), self.external_key()
        self.import_(a, material)
        self.import_(b, material, "RSAES_OAEP_SHA_1")
        md = self.metadata(b)
        self.assertEqual((md["KeyState"], md["MaterialExpireTime"]), ("Enabled", ""))
        blob, pt = self.round_trip(a)
        self.assertEqual(self.ok("Decrypt", CiphertextBlob=blob)["KeyId"], a)
        version_b = self.ok("ListKeyVersions", KeyId=b)["KeyVersions"]["KeyVersion"][0]
        raw = bytearray(unb64(blob))
        raw[2:18] = bytes.fromhex(version_b["KeyVersionId"].replace("-", ""))
        self.fails(400, "InvalidParameter", "Decrypt", CiphertextBlob=b64(bytes(raw)))

    def test_get_parameters(self):
        key_id = self.external_key()
        a = self.params(key_id)
        b = self.params(key_id)
        self.assertNotEqual(a["token"], b["token"])
        self.assertNotEqual(a["der"], b["der"])
        text = ossl.openssl("pkey", "-pubin", "-inform", "DER", "-noout", "-text",
                            data=a["der"]).stdout.decode()
        self.assertIn("2048 bit", text)
        expires = time.mktime(time.strptime(a["expire"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        self.assertAlmostEqual(expires, self.now() + DAY, delta=120)
        sm2 = self.params(key_id, "SM2PKE", "EC_SM2")
        self.assertIn("SM2", ossl.openssl("pkey", "-pubin", "-inform", "DER", "-noout", "-text",
                                          data=sm2["der"]).stdout.decode())
        for alg, spec in (("RSAES_OAEP_SHA_256", "RSA_1024"), ("RSAES_OAEP_SHA_256", "RSA_3072"),
                          ("RSA_RAW", "RSA_2048"), ("SM2PKE", "RSA_2048"),
                          ("RSAES_OAEP_SHA_1", "EC_SM2"), ("rsaes_oaep_sha_256", "RSA_2048")):
            self.fails(400, "InvalidParameter", "GetParametersForImport", KeyId=key_id,
                       WrappingAlgorithm=alg, WrappingKeySpec=spec)
        self.fails(400, "MissingParameter", "GetParametersForImport", KeyId=key_id,
                   WrappingKeySpec="RSA_2048")
        self.fails(400, "MissingParameter", "GetParametersForImport", KeyId=key_id,
                   WrappingAlgorithm="RSAES_OAEP_SHA_256")
        normal = self.srv.create_key()["KeyId"]
        self.fails(400, "Unsupported.Origin", "GetParametersForImport", KeyId=normal,
                   WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
        self.ok("CreateAlias", KeyId=key_id, AliasName="alias/byok-params")
        self.fails(400, "Unsupported.Alias", "GetParametersForImport", KeyId="alias/byok-params",
                   WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
        self.fails(404, "Forbidden.KeyNotFound", "GetParametersForImport", KeyId="nope",
                   WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")

    def test_token_errors(self):
        key_id, other = self.external_key(), self.external_key()
        p, q = self.params(key_id), self.params(other)
        material = os.urandom(32)
        bad = (400, "InvalidImportToken", "ImportKeyMaterial")
        self.fails(*bad, KeyId=key_id, ImportToken="not-a-token",
                   EncryptedKeyMaterial=self.wrap(p, material))
        self.fails(*bad, KeyId=key_id, ImportToken=b64(os.urandom(300)),
                   EncryptedKeyMaterial=self.wrap(p, material))
        tampered = bytearray(base64.b64decode(p["token"]))
        tampered[40] ^= 1
        self.fails(*bad, KeyId=key_id, ImportToken=b64(bytes(tampered)),
                   EncryptedKeyMaterial=self.wrap(p, material))
        # A token of another key, even with material wrapped for that token.
        self.fails(*bad, KeyId=key_id, ImportToken=q["token"],
                   EncryptedKeyMaterial=self.wrap(q, material))
        # A KeyId of an Aliyun_KMS key: such a key takes no material, whatever the token.
        normal = self.srv.create_key()["KeyId"]
        self.fails(400, "Unsupported.Origin", "ImportKeyMaterial", KeyId=normal,
                   ImportToken=p["token"], EncryptedKeyMaterial=self.wrap(p, material))
        self.fails(400, "Unsupported.Alias", "ImportKeyMaterial", KeyId="alias/x",
                   ImportToken=p["token"], EncryptedKeyMaterial=self.wrap(p, material))
        self.assertEqual(self.state(key_id), "PendingImport")
        self.fails(400, "MissingParameter", "ImportKeyMaterial", KeyId=key_id,
                   EncryptedKeyMaterial=self.wrap(p, material))
        self.fails(400, "MissingParameter", "ImportKeyMaterial", KeyId=key_id,
                   ImportToken=p["token"])
        # KeyId may be left out: the token names the key.
        self.ok("ImportKeyMaterial", ImportToken=q["token"],
                EncryptedKeyMaterial=self.wrap(q, material))
        self.assertEqual(self.state(other), "Enabled")
        self.assertEqual(self.state(key_id), "PendingImport")

    def test_material_errors(self):
        key_id = self.external_key()
        p = self.params(key_id)
        other = self.params(key_id)
        invalid = (400, "InvalidKeyMaterial", "ImportKeyMaterial")
        for what, wrapped in (
            ("16 bytes for AES-256", self.wrap(p, os.urandom(16))),
            ("33 bytes", self.wrap(p, os.urandom(33))),
            ("wrapped with PKCS#1 v1.5, token says OAEP-SHA256",
             self.wrap(p, os.urandom(32), "RSAES_PKCS1_V1_5")),
            ("wrapped with OAEP-SHA1", self.wrap(p, os.urandom(32), "RSAES_OAEP_SHA_1")),
            ("wrapped under another token's public key", self.wrap(other, os.urandom(32))),
            ("random bytes", b64(os.urandom(256))),
            ("not Base64", "this is not base64 ***"),
            ("empty after decoding", "===="),
        ):
            r = self.srv.call("ImportKeyMaterial", KeyId=key_id, ImportToken=p["token"],
                              EncryptedKeyMaterial=wrapped)
            self.assertEqual((r.status, r.code), invalid[:2], "%s: %r" % (what, r))
        self.assertEqual(self.state(key_id), "PendingImport")
        # SM4 and AES-128 take 16 bytes, not 32.
        for spec in ("Aliyun_SM4", "Aliyun_AES_128"):
            k = self.external_key(spec)
            q = self.params(k)
            self.fails(*invalid, KeyId=k, ImportToken=q["token"],
                       EncryptedKeyMaterial=self.wrap(q, os.urandom(32)))
        # A token made for SM2PKE with RSA material is just as invalid.
        s = self.params(key_id, "SM2PKE", "EC_SM2")
        self.fails(*invalid, KeyId=key_id, ImportToken=s["token"],
                   EncryptedKeyMaterial=self.wrap(p, os.urandom(32)))

    def test_reimport_and_delete(self):
        key_id = self.external_key()
        material = os.urandom(32)
        self.import_(key_id, material)
        blob, pt = self.round_trip(key_id)
        # Different material, even on an Enabled key, is refused and changes nothing.
        p = self.params(key_id)
        self.fails(400, "InvalidKeyMaterial", "ImportKeyMaterial", KeyId=key_id,
                   ImportToken=p["token"], EncryptedKeyMaterial=self.wrap(p, os.urandom(32)))
        self.assertEqual(self.ok("Decrypt", CiphertextBlob=blob)["Plaintext"], pt)
        # Same material again on Enabled: keeps Enabled, takes the new expiry.
        expire = self.now() + 30 * DAY
        self.import_(key_id, material, "RSAES_OAEP_SHA_1", KeyMaterialExpireUnix=expire)
        md = self.metadata(key_id)
        self.assertEqual(md["KeyState"], "Enabled")
        self.assertEqual(md["MaterialExpireTime"],
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expire)))
        # On Disabled: stays Disabled, and 0 means "never".
        self.ok("DisableKey", KeyId=key_id)
        self.import_(key_id, material, KeyMaterialExpireUnix=0)
        md = self.metadata(key_id)
        self.assertEqual((md["KeyState"], md["MaterialExpireTime"]), ("Disabled", ""))
        self.ok("EnableKey", KeyId=key_id)
        # DeleteKeyMaterial -> PendingImport; the old ciphertext waits for the same material.
        self.assertIn("RequestId", self.ok("DeleteKeyMaterial", KeyId=key_id))
        self.assertEqual(self.state(key_id), "PendingImport")
        self.fails(409, "Rejected.PendingImport", "Decrypt", CiphertextBlob=blob)
        self.fails(409, "Rejected.PendingImport", "Encrypt", KeyId=key_id, Plaintext=pt)
        p = self.params(key_id)
        self.fails(400, "InvalidKeyMaterial", "ImportKeyMaterial", KeyId=key_id,
                   ImportToken=p["token"], EncryptedKeyMaterial=self.wrap(p, os.urandom(32)))
        self.assertEqual(self.state(key_id), "PendingImport")
        self.import_(key_id, material, "RSAES_PKCS1_V1_5")
        self.assertEqual(self.state(key_id), "Enabled")
        self.assertEqual(self.ok("Decrypt", CiphertextBlob=blob)["Plaintext"], pt)
        # Deleting from Disabled also goes to PendingImport, and re-import enables.
        self.ok("DisableKey", KeyId=key_id)
        self.ok("DeleteKeyMaterial", KeyId=key_id)
        self.assertEqual(self.state(key_id), "PendingImport")
        self.ok("DeleteKeyMaterial", KeyId=key_id)  # PendingImport: a no-op success
        self.assertEqual(self.state(key_id), "PendingImport")
        self.import_(key_id, material)
        self.assertEqual(self.state(key_id), "Enabled")
        # The material survives a restart (stored wrapped, reloaded).
        self.srv.restart()
        self.assertEqual(self.ok("Decrypt", CiphertextBlob=blob)["Plaintext"], pt)

    def test_expire_unix_parameter(self):
        key_id = self.external_key()
        p = self.params(key_id)
        for value in (str(self.now() - 3600), "abc", "-1", "1.5"):
            self.fails(400, "InvalidParameter", "ImportKeyMaterial", KeyId=key_id,
                       ImportToken=p["token"], EncryptedKeyMaterial=self.wrap(p, os.urandom(32)),
                       KeyMaterialExpireUnix=value)
        self.assertEqual(self.state(key_id), "PendingImport")

    def test_state_rules(self):
        key_id = self.external_key()
        smf = (409, "Rejected.StateModifiedFailed")
        self.fails(409, "Rejected.PendingImport", "Encrypt", KeyId=key_id, Plaintext=b64(b"x"))
        self.fails(409, "Rejected.PendingImport", "GenerateDataKey", KeyId=key_id)
        self.fails(*smf, "EnableKey", KeyId=key_id)
        self.fails(*smf, "DisableKey", KeyId=key_id)
        self.fails(*smf, "CancelKeyDeletion", KeyId=key_id)
        self.fails(400, "Unsupported.Origin", "CreateKeyVersion", KeyId=key_id)
        # PendingDeletion: parameters still come; import is refused; delete keeps the date.
        self.ok("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=7)
        p = self.params(key_id)
        self.fails(*smf, "ImportKeyMaterial", KeyId=key_id, ImportToken=p["token"],
                   EncryptedKeyMaterial=self.wrap(p, os.urandom(32)))
        self.ok("CancelKeyDeletion", KeyId=key_id)
        self.assertEqual(self.state(key_id), "PendingImport", "no material: back to PendingImport")

        imported = self.external_key()
        self.import_(imported, os.urandom(32))
        self.ok("ScheduleKeyDeletion", KeyId=imported, PendingWindowInDays=9)
        before = self.metadata(imported)["DeleteDate"]
        self.ok("DeleteKeyMaterial", KeyId=imported)
        md = self.metadata(imported)
        self.assertEqual((md["KeyState"], md["DeleteDate"]), ("PendingDeletion", before))
        self.ok("CancelKeyDeletion", KeyId=imported)
        self.assertEqual(self.state(imported), "PendingImport")

        # With material, CancelKeyDeletion returns to Enabled.
        kept = self.external_key()
        self.import_(kept, os.urandom(32))
        self.ok("ScheduleKeyDeletion", KeyId=kept, PendingWindowInDays=7)
        self.ok("CancelKeyDeletion", KeyId=kept)
        self.assertEqual(self.state(kept), "Enabled")

        normal = self.srv.create_key()["KeyId"]
        self.fails(400, "Unsupported.Origin", "DeleteKeyMaterial", KeyId=normal)
        self.fails(400, "Unsupported.Alias", "DeleteKeyMaterial", KeyId="alias/whatever")


class ByokClockTest(ByokBase):
    """Moves the server's timed-work clock: its own server, so other tests keep real time."""

    def test_token_expires_after_24_hours(self):
        key_id, key2 = self.external_key(), self.external_key()
        material = os.urandom(32)
        p = self.params(key_id)
        p2 = self.params(key2)
        self.advance(DAY - 60)
        self.ok("ImportKeyMaterial", KeyId=key_id, ImportToken=p["token"],
                EncryptedKeyMaterial=self.wrap(p, material))
        self.advance(61)
        self.fails(400, "ExpiredImportToken", "ImportKeyMaterial", KeyId=key2,
                   ImportToken=p2["token"], EncryptedKeyMaterial=self.wrap(p2, material))
        # Also for the re-import of the very same material, and before the material is looked at.
        self.fails(400, "ExpiredImportToken", "ImportKeyMaterial", KeyId=key_id,
                   ImportToken=p["token"], EncryptedKeyMaterial="garbage")
        self.assertEqual(self.state(key2), "PendingImport")
        fresh = self.params(key2)
        self.ok("ImportKeyMaterial", KeyId=key2, ImportToken=fresh["token"],
                EncryptedKeyMaterial=self.wrap(fresh, material))

    def test_material_expiry(self):
        key_id = self.external_key()
        material = os.urandom(32)
        expire = self.now() + 3600
        self.import_(key_id, material, KeyMaterialExpireUnix=expire)
        md = self.metadata(key_id)
        self.assertEqual(md["KeyState"], "Enabled")
        self.assertEqual(md["MaterialExpireTime"],
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expire)))
        blob, pt = self.round_trip(key_id)
        disabled = self.external_key()
        self.import_(disabled, os.urandom(32), KeyMaterialExpireUnix=expire)
        self.ok("DisableKey", KeyId=disabled)
        self.advance(3601)
        self.assertEqual(self.state(key_id), "PendingImport")
        self.assertEqual(self.state(disabled), "PendingImport")
        self.fails(409, "Rejected.PendingImport", "Encrypt", KeyId=key_id, Plaintext=pt)
        self.fails(409, "Rejected.PendingImport", "Decrypt", CiphertextBlob=blob)
        self.fails(409, "Rejected.StateModifiedFailed", "EnableKey", KeyId=key_id)
        # Re-import of the same material brings it back; the old ciphertext opens.
        self.import_(key_id, material)
        self.assertEqual(self.state(key_id), "Enabled")
        self.assertEqual(self.ok("Decrypt", CiphertextBlob=blob)["Plaintext"], pt)
        self.assertEqual(self.metadata(key_id)["MaterialExpireTime"], "")

    def test_expiry_in_the_past_relative_to_server_clock(self):
        key_id = self.external_key()
        p = self.params(key_id)
        self.advance(7200)
        # One hour from real time is an hour in the past for the server's clock now.
        self.fails(400, "InvalidParameter", "ImportKeyMaterial", KeyId=key_id,
                   ImportToken=p["token"], EncryptedKeyMaterial=self.wrap(p, os.urandom(32)),
                   KeyMaterialExpireUnix=int(time.time()) + 3600)


class ByokLazyExpiryTest(ByokBase):
    """Expiry seen before any maintenance pass: the key reads as PendingImport at once."""

    @classmethod
    def setUpClass(cls):
        # A maintenance interval of a day: only KmsdTestAdvanceClock runs a pass.
        cls.srv = Server(config=DEFAULT_CONFIG + "[maintenance]\ninterval = 86400\n").start()
        cls.wd = ossl.Workdir()
        cls.clock_offset = 0

    def test_lazy(self):
        key_id = self.external_key()
        # Expires two seconds from now on the real clock: no clock moves, no maintenance pass.
        # (Longer when kmsd runs under a slow wrapper such as valgrind: the import itself must
        # land before the expiry.)
        ahead = 2 * int(timeout_scale())
        self.import_(key_id, os.urandom(32), KeyMaterialExpireUnix=self.now() + ahead)
        blob, pt = self.round_trip(key_id)
        time.sleep(ahead + 1)
        self.assertEqual(self.state(key_id), "PendingImport")
        self.fails(409, "Rejected.PendingImport", "Decrypt", CiphertextBlob=blob)


if __name__ == "__main__":
    unittest.main()
