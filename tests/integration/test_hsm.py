"""ProtectionLevel=HSM end to end: kmsd with a [pkcs11] section against a private SoftHSM2 token.

The token is made by tests/softhsm-token.sh in a temporary directory (its own SOFTHSM2_CONF);
nothing system-wide is touched. Token objects are listed with pkcs11-tool (opensc) to prove what
is in the token and what is gone. Skipped when SoftHSM2 is not installed.
"""

import base64
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import unittest

from kmsd import ROOT, Server, b64, binary, unb64

HELPER = os.path.join(ROOT, "tests", "softhsm-token.sh")
DAY = 86400


def make_token(directory, label, pin="1234", so_pin="12345678"):
    """Initialises a token; returns the helper's variables (SOFTHSM2_CONF, MODULE, SLOT, PIN_FILE)."""
    r = subprocess.run([HELPER, directory, label, pin, so_pin], capture_output=True, text=True)
    if r.returncode == 77:
        raise unittest.SkipTest("SoftHSM2 is not installed: " + r.stderr.strip())
    if r.returncode != 0:
        raise RuntimeError("softhsm-token.sh failed: " + r.stderr)
    return dict(line.split("=", 1) for line in r.stdout.split())


def pkcs11_config(tok, label, extra=""):
    return ("[auth]\nreplay_cache_capacity = 200000\n[pkcs11]\nmodule = %s\ntoken_label = %s\n"
            "pin_file = %s\n%s" % (tok["MODULE"], label, tok["PIN_FILE"], extra))


def token_labels(tok, label, pin="1234"):
    """The CKA_LABELs of every object in the token (one entry per object)."""
    if shutil.which("pkcs11-tool") is None:
        raise unittest.SkipTest("pkcs11-tool (opensc) is not installed")
    r = subprocess.run(["pkcs11-tool", "--module", tok["MODULE"], "--token-label", label,
                        "--login", "--pin", pin, "--list-objects"],
                       capture_output=True, text=True, env=dict(os.environ, SOFTHSM2_CONF=tok["SOFTHSM2_CONF"]))
    assert r.returncode == 0, r.stderr
    return [line.split(":", 1)[1].strip() for line in r.stdout.splitlines()
            if line.strip().startswith("label:")]


def objects_of(tok, label, key_id):
    return [l for l in token_labels(tok, label) if l.startswith("kmsd/%s/" % key_id)]


class HsmKeysTest(unittest.TestCase):
    LABEL = "kmsd-it"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kmsd-hsm-")
        cls.tok = make_token(os.path.join(cls.tmp, "hsm"), cls.LABEL)
        cls.srv = Server(config=pkcs11_config(cls.tok, cls.LABEL),
                         env={"SOFTHSM2_CONF": cls.tok["SOFTHSM2_CONF"]}).start()

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        stderr = cls.srv.stderr_text()
        cls.srv.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        # A clean stop (under the sanitizers: no leak, no error report).
        assert status == 0, "kmsd exited with %s:\n%s" % (status, stderr[-3000:])

    def hsm_key(self, **params):
        md = self.srv.create_key(ProtectionLevel="HSM", **params)
        self.assertEqual(md["ProtectionLevel"], "HSM")
        return md

    def db_versions(self, key_id):
        db = sqlite3.connect("file:%s/kmsd.db?mode=ro" % self.srv.data_dir, uri=True)
        try:
            return db.execute("SELECT version_id, material, public_der FROM key_versions WHERE key_id = ?",
                              (key_id,)).fetchall()
        finally:
            db.close()

    def test_describe_service_lists_hsm_only_for_token_specs(self):
        r = self.srv.ok("DescribeService")
        levels = [x["Type"] for x in r["ProtectionLevels"]["ProtectionLevel"]]
        self.assertEqual(levels, ["SOFTWARE", "HSM"])
        specs = {s["Name"]: s["SupportedProtectionLevels"]["SupportedProtectionLevel"]
                 for s in r["KeySpecs"]["KeySpec"]}
        for name in ("Aliyun_AES_256", "Aliyun_AES_128", "RSA_2048", "RSA_3072", "EC_P256", "EC_P256K"):
            self.assertEqual(specs[name], ["SOFTWARE", "HSM"], name)
        # SoftHSM2 has no SM2/SM4 mechanisms.
        self.assertEqual(specs["Aliyun_SM4"], ["SOFTWARE"])
        self.assertEqual(specs["EC_SM2"], ["SOFTWARE"])

    def test_keys_of_every_spec_are_made_in_the_token(self):
        for spec, usage, objects in (("Aliyun_AES_256", None, 1), ("Aliyun_AES_128", None, 1),
                                     ("RSA_2048", "SIGN/VERIFY", 2), ("RSA_3072", "ENCRYPT/DECRYPT", 2),
                                     ("EC_P256", "SIGN/VERIFY", 2), ("EC_P256K", "SIGN/VERIFY", 2)):
            params = {"KeySpec": spec}
            if usage:
                params["KeyUsage"] = usage
            md = self.hsm_key(**params)
            self.assertEqual(md["KeySpec"], spec)
            self.assertEqual(self.srv.ok("DescribeKey", KeyId=md["KeyId"])["KeyMetadata"]["ProtectionLevel"], "HSM")
            self.assertEqual(len(objects_of(self.tok, self.LABEL, md["KeyId"])), objects, spec)
            rows = self.db_versions(md["KeyId"])
            self.assertEqual(len(rows), 1)
            # The store holds no material for HSM keys; key pairs keep only their public key.
            self.assertIsNone(rows[0][1], spec)
            if objects == 2:
                self.assertTrue(rows[0][2] and rows[0][2][0] == 0x30, spec)
                self.assertIn(rows[0][0], objects_of(self.tok, self.LABEL, md["KeyId"])[0])

    def test_software_key_control(self):
        # The same server still makes software keys, whose wrapped material is in the store.
        md = self.srv.create_key()
        self.assertEqual(md["ProtectionLevel"], "SOFTWARE")
        rows = self.db_versions(md["KeyId"])
        self.assertTrue(rows[0][1])
        self.assertEqual(objects_of(self.tok, self.LABEL, md["KeyId"]), [])

    def test_specs_the_token_cannot_do_are_refused(self):
        for spec in ("Aliyun_SM4", "EC_SM2"):
            r = self.srv.call("CreateKey", KeySpec=spec, ProtectionLevel="HSM")
            self.assertEqual((r.status, r.code), (400, "Unsupported.ProtectionLevel"), r)
            # Still fine as software keys.
            self.assertEqual(self.srv.create_key(KeySpec=spec)["ProtectionLevel"], "SOFTWARE")

    def test_byok_into_the_token_is_refused(self):
        r = self.srv.call("CreateKey", Origin="EXTERNAL", ProtectionLevel="HSM")
        self.assertEqual((r.status, r.code), (400, "Unsupported.ProtectionLevel"), r)
        r = self.srv.call("CreateKey", Origin="EXTERNAL")
        self.assertEqual(r.status, 200, r)

    def test_encrypt_decrypt(self):
        for spec in ("Aliyun_AES_256", "Aliyun_AES_128"):
            key = self.hsm_key(KeySpec=spec)["KeyId"]
            for size in (1, 100, 6144):
                pt = os.urandom(size)
                ctx = '{"purpose":"hsm-test","n":"%d"}' % size
                r = self.srv.ok("Encrypt", KeyId=key, Plaintext=b64(pt), EncryptionContext=ctx)
                self.assertEqual(r["KeyId"], key)
                blob = r["CiphertextBlob"]
                d = self.srv.ok("Decrypt", CiphertextBlob=blob, EncryptionContext=ctx)
                self.assertEqual(unb64(d["Plaintext"]), pt)
                self.assertEqual(d["KeyVersionId"], r["KeyVersionId"])
                r = self.srv.call("Decrypt", CiphertextBlob=blob, EncryptionContext='{"purpose":"other"}')
                self.assertEqual((r.status, r.code), (400, "InvalidParameter"), r)
                raw = bytearray(unb64(blob))
                raw[-20] ^= 1
                r = self.srv.call("Decrypt", CiphertextBlob=b64(bytes(raw)), EncryptionContext=ctx)
                self.assertEqual((r.status, r.code), (400, "InvalidParameter"), r)

    def test_generate_data_key(self):
        key = self.hsm_key()["KeyId"]
        r = self.srv.ok("GenerateDataKey", KeyId=key, NumberOfBytes=48)
        plain = unb64(r["Plaintext"])
        self.assertEqual(len(plain), 48)
        self.assertEqual(unb64(self.srv.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"])["Plaintext"]), plain)
        r2 = self.srv.ok("GenerateDataKey", KeyId=key, KeySpec="AES_128")
        self.assertNotEqual(unb64(r2["Plaintext"]), plain[:16])
        r = self.srv.ok("GenerateDataKeyWithoutPlaintext", KeyId=key)
        self.assertNotIn("Plaintext", r)
        self.assertEqual(len(unb64(self.srv.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"])["Plaintext"])), 32)

    def test_rotation_then_scheduled_deletion_destroys_token_objects(self):
        md = self.hsm_key(EnableAutomaticRotation="true", RotationInterval="7d")
        key = md["KeyId"]
        first = md["PrimaryKeyVersion"]
        old = self.srv.ok("Encrypt", KeyId=key, Plaintext=b64(b"before rotation"))
        self.assertEqual(old["KeyVersionId"], first)
        self.srv.advance_clock(8 * DAY)
        md = self.srv.ok("DescribeKey", KeyId=key)["KeyMetadata"]
        self.assertNotEqual(md["PrimaryKeyVersion"], first)
        self.assertEqual(md["ProtectionLevel"], "HSM")
        new = self.srv.ok("Encrypt", KeyId=key, Plaintext=b64(b"after rotation"))
        self.assertEqual(new["KeyVersionId"], md["PrimaryKeyVersion"])
        # Both versions' keys are in the token, and both ciphertexts decrypt.
        labels = objects_of(self.tok, self.LABEL, key)
        self.assertEqual(sorted(labels), sorted("kmsd/%s/%s" % (key, v) for v in (first, md["PrimaryKeyVersion"])))
        self.assertEqual(unb64(self.srv.ok("Decrypt", CiphertextBlob=old["CiphertextBlob"])["Plaintext"]),
                         b"before rotation")
        self.assertEqual(unb64(self.srv.ok("Decrypt", CiphertextBlob=new["CiphertextBlob"])["Plaintext"]),
                         b"after rotation")
        self.assertTrue(all(row[1] is None for row in self.db_versions(key)))
        # A bystander key keeps its object.
        other = self.hsm_key()["KeyId"]
        self.srv.ok("ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7)
        self.srv.advance_clock(3 * DAY)
        self.assertEqual(len(objects_of(self.tok, self.LABEL, key)), 2, "destroyed before DeleteDate")
        self.srv.advance_clock(5 * DAY)
        r = self.srv.call("DescribeKey", KeyId=key)
        self.assertEqual(r.status, 404, r)
        self.assertEqual(objects_of(self.tok, self.LABEL, key), [])
        self.assertEqual(self.db_versions(key), [])
        self.assertEqual(len(objects_of(self.tok, self.LABEL, other)), 1)
        r = self.srv.call("Decrypt", CiphertextBlob=old["CiphertextBlob"])
        self.assertEqual(r.status, 404, r)

    def test_restart_keeps_hsm_keys(self):
        key = self.hsm_key(KeySpec="Aliyun_AES_128")["KeyId"]
        blob = self.srv.ok("Encrypt", KeyId=key, Plaintext=b64(b"survives"))["CiphertextBlob"]
        self.assertEqual(self.srv.stop(), 0, self.srv.stderr_text()[-3000:])
        self.srv.start()
        self.assertEqual(self.srv.ok("DescribeKey", KeyId=key)["KeyMetadata"]["ProtectionLevel"], "HSM")
        self.assertEqual(unb64(self.srv.ok("Decrypt", CiphertextBlob=blob)["Plaintext"]), b"survives")
        blob2 = self.srv.ok("Encrypt", KeyId=key, Plaintext=b64(b"again"))["CiphertextBlob"]
        self.assertEqual(unb64(self.srv.ok("Decrypt", CiphertextBlob=blob2)["Plaintext"]), b"again")


class HsmSealingModeTest(unittest.TestCase):
    """[pkcs11] seal_master_key = true: the master key is an AES key in the token, not a file."""

    LABEL = "kmsd-seal"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kmsd-hsm-seal-")
        cls.tok = make_token(os.path.join(cls.tmp, "hsm"), cls.LABEL, pin="sealpin-77")
        cls.config = pkcs11_config(cls.tok, cls.LABEL, "seal_master_key = true\nmaster_key_label = it-master\n")
        cls.srv = Server(config=cls.config, env={"SOFTHSM2_CONF": cls.tok["SOFTHSM2_CONF"]}).start()

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        stderr = cls.srv.stderr_text()
        cls.srv.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        # A clean stop (under the sanitizers: no leak, no error report).
        assert status == 0, "kmsd exited with %s:\n%s" % (status, stderr[-3000:])

    def test_no_master_key_file_and_everything_survives_restart(self):
        srv = self.srv
        self.assertFalse(os.path.exists(os.path.join(srv.data_dir, "master.key")))
        labels = token_labels(self.tok, self.LABEL, pin="sealpin-77")
        self.assertIn("it-master", labels)
        self.assertIn("it-master-fingerprint", labels)
        soft = srv.create_key()["KeyId"]
        hsm = srv.create_key(ProtectionLevel="HSM")["KeyId"]
        blobs = {k: srv.ok("Encrypt", KeyId=k, Plaintext=b64(k.encode()))["CiphertextBlob"] for k in (soft, hsm)}
        dk = srv.ok("GenerateDataKey", KeyId=soft)
        self.assertEqual(srv.stop(), 0, srv.stderr_text()[-3000:])
        srv.start()
        self.assertFalse(os.path.exists(os.path.join(srv.data_dir, "master.key")))
        # The admin secret (sealed by the token master) still authenticates; keys still open.
        for k, blob in blobs.items():
            self.assertEqual(unb64(srv.ok("Decrypt", CiphertextBlob=blob)["Plaintext"]), k.encode())
        self.assertEqual(srv.ok("Decrypt", CiphertextBlob=dk["CiphertextBlob"])["Plaintext"], dk["Plaintext"])
        self.assertEqual(token_labels(self.tok, self.LABEL, pin="sealpin-77").count("it-master"), 1)
        self.assertNotIn("created the master key", srv.stderr_text().split("stopping on signal")[-1])


class HsmStartupFailureTest(unittest.TestCase):
    """kmsd refuses to start, with one line saying which, when the token setup is wrong."""

    LABEL = "kmsd-fail"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kmsd-hsm-fail-")
        cls.tok = make_token(os.path.join(cls.tmp, "hsm"), cls.LABEL, pin="rightpin")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start_fails(self, config, expect):
        data = tempfile.mkdtemp(dir=self.tmp)
        conf = os.path.join(data, "kmsd.conf")
        with open(conf, "w") as f:
            f.write(config)
        env = dict(os.environ, SOFTHSM2_CONF=self.tok["SOFTHSM2_CONF"],
                   KMSD_ADMIN_ACCESS_KEY_ID="failadmin", KMSD_ADMIN_ACCESS_KEY_SECRET="failsecret12345")
        started = time.time()
        r = subprocess.run([binary(), "--config", conf, "--data-dir", os.path.join(data, "d"),
                            "--listen", "127.0.0.1:0"], capture_output=True, text=True, env=env, timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("kmsd ready", r.stdout)
        self.assertLess(time.time() - started, 30)
        lines = [l for l in r.stderr.splitlines() if expect in l]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("[error] pkcs11: ", lines[0])
        # Nothing was set up before the keystore failed.
        self.assertFalse(os.path.exists(os.path.join(data, "d", "kmsd.db")))
        return r.stderr

    def config(self, **overrides):
        values = {"module": self.tok["MODULE"], "token_label": self.LABEL, "pin_file": self.tok["PIN_FILE"]}
        values.update(overrides)
        return "[pkcs11]\n" + "".join("%s = %s\n" % kv for kv in values.items() if kv[1] is not None)

    def test_wrong_pin(self):
        pin = os.path.join(self.tmp, "wrong.pin")
        with open(pin, "w") as f:
            f.write("notthepin\n")
        os.chmod(pin, 0o600)
        self.start_fails(self.config(pin_file=pin), "wrong PIN for the token 'kmsd-fail' (CKR_PIN_INCORRECT)")

    def test_missing_module(self):
        self.start_fails(self.config(module="/nonexistent/libpkcs11.so"),
                         "cannot load the module /nonexistent/libpkcs11.so")

    def test_missing_token(self):
        self.start_fails(self.config(token_label="no-such-token"),
                         "no initialised token labelled 'no-such-token'")

    def test_missing_slot(self):
        self.start_fails(self.config(token_label=None, slot="4242"), "no token in slot 4242")

    def test_unreadable_pin_file(self):
        self.start_fails(self.config(pin_file=os.path.join(self.tmp, "absent.pin")),
                         "cannot read the PIN file")

    def test_pin_file_others_can_read(self):
        pin = os.path.join(self.tmp, "open.pin")
        with open(pin, "w") as f:
            f.write("rightpin\n")
        os.chmod(pin, 0o644)
        self.start_fails(self.config(pin_file=pin), "readable by group or others")

    def test_pin_from_systemd_credential(self):
        creds = tempfile.mkdtemp(dir=self.tmp)
        with open(os.path.join(creds, "pkcs11.pin"), "w") as f:
            f.write("rightpin")
        os.chmod(os.path.join(creds, "pkcs11.pin"), 0o600)
        config = "[auth]\nreplay_cache_capacity = 200000\n" + self.config(pin_file=None)
        srv = Server(config=config, env={"SOFTHSM2_CONF": self.tok["SOFTHSM2_CONF"],
                                          "CREDENTIALS_DIRECTORY": creds})
        with srv:
            self.assertEqual(srv.create_key(ProtectionLevel="HSM")["ProtectionLevel"], "HSM")
            self.assertEqual(srv.stop(), 0, srv.stderr_text()[-3000:])

    def test_sealing_without_module(self):
        self.start_fails("[pkcs11]\nseal_master_key = true\n", "seal_master_key = true needs [pkcs11] module")


if __name__ == "__main__":
    unittest.main()
