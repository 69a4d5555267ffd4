"""kmsadm (issue 7, docs/operations.md): init, admin access keys, the data directory's lock
(commands that change data refuse while kmsd runs), backup -> restore -> verify round trip with
everything usable afterwards, verify catching damage, master-key rotation (material, secrets,
access keys and BYOK fingerprints survive; the old key is kept; an interrupted rotation is
finished or undone), and what HSM keys and sealing mode mean for verify and rotation."""

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

import openssl_cli as ossl
from kmsd import DEFAULT_CONFIG, Server, b64, binary, unb64

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET_LINE = re.compile(r"AccessKeyId:\s+(\S+)\nAccessKeySecret:\s+(\S+)\n")


def kmsadm_bin():
    return os.environ.get("KMSADM_BIN", os.path.join(os.path.dirname(binary()), "kmsadm"))


def kmsadm(data_dir, *args, config=None, env=None):
    cmd = [kmsadm_bin(), "--data-dir", data_dir]
    if config:
        cmd += ["--config", config]
    full_env = dict(os.environ)
    full_env.pop("KMSD_ADMIN_ACCESS_KEY_ID", None)
    full_env.pop("KMSD_ADMIN_ACCESS_KEY_SECRET", None)
    full_env.update(env or {})
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120,
                          env=full_env)


def created_key(proc):
    m = SECRET_LINE.search(proc.stdout)
    assert m, proc.stdout + proc.stderr
    return m.group(1), m.group(2)


class KmsadmCase(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kmsadm-it-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def ok(self, proc):
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        return proc

    def refused(self, proc, text):
        self.assertNotEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn(text, proc.stderr)
        return proc

    def server(self, data_dir, admin, config=None):
        srv = Server(data_dir=data_dir, admin=admin, config=config)
        self.addCleanup(srv.stop)
        return srv


class InitAndAccessKeysTest(KmsadmCase):

    def test_init_then_kmsd_serves_with_the_printed_key(self):
        data = os.path.join(self.tmp, "data")
        proc = self.ok(kmsadm(data, "init"))
        key = created_key(proc)
        self.assertTrue(key[0].startswith("KMSD"))
        self.assertEqual(len(key[1]), 30)
        self.assertIn("shown only this once", proc.stdout)
        self.assertEqual(os.stat(data).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(os.path.join(data, "master.key")).st_mode & 0o777, 0o600)
        self.assertTrue(os.path.exists(os.path.join(data, "kmsd.db")))
        # The secret is sealed in the database, never stored in the clear.
        with open(os.path.join(data, "kmsd.db"), "rb") as f:
            self.assertNotIn(key[1].encode(), f.read())
        self.refused(kmsadm(data, "init"), "holds a database already")
        srv = self.server(data, key).start()
        self.assertEqual(srv.call("ListKeys").status, 200)
        self.assertEqual(srv.stop(), 0)
        listing = self.ok(kmsadm(data, "access-key", "list")).stdout
        self.assertEqual(len([l for l in listing.splitlines() if l.startswith("KMSD")]), 1)

    def test_init_from_the_environment(self):
        data = os.path.join(self.tmp, "data")
        proc = self.ok(kmsadm(data, "init", env={"KMSD_ADMIN_ACCESS_KEY_ID": "ChosenAdmin",
                                                 "KMSD_ADMIN_ACCESS_KEY_SECRET": "chosen-secret-1"}))
        self.assertEqual(created_key(proc), ("ChosenAdmin", "chosen-secret-1"))
        srv = self.server(data, ("ChosenAdmin", "chosen-secret-1")).start()
        self.assertEqual(srv.call("ListKeys").status, 200)
        self.assertEqual(srv.stop(), 0)

    def test_access_keys(self):
        data = os.path.join(self.tmp, "data")
        first = created_key(self.ok(kmsadm(data, "init")))
        second = created_key(self.ok(kmsadm(data, "access-key", "create", "--description",
                                            "ci runner")))
        self.assertNotEqual(first, second)
        fixed = created_key(self.ok(kmsadm(data, "access-key", "create", "--id", "FixedAdminId")))
        self.assertEqual(fixed[0], "FixedAdminId")
        self.refused(kmsadm(data, "access-key", "create", "--id", "FixedAdminId"), "exists already")
        self.refused(kmsadm(data, "access-key", "create", "--aap", "app1"),
                     "cannot add a key to access point app1")
        listing = self.ok(kmsadm(data, "access-key", "list")).stdout
        for key_id, _ in (first, second, fixed):
            self.assertIn(key_id, listing)
        self.assertIn("ci runner", listing)
        for _, secret in (first, second, fixed):
            self.assertNotIn(secret, listing)

        self.ok(kmsadm(data, "access-key", "disable", second[0]))
        self.assertRegex(self.ok(kmsadm(data, "access-key", "list")).stdout,
                         re.escape(second[0]) + r"\s+admin\s+Disabled")
        srv = self.server(data, first).start()
        self.assertEqual(srv.call("ListKeys").status, 200)
        r = srv.call("ListKeys", access_key=second)
        self.assertEqual((r.status, r.code), (403, "Forbidden.AccessKey"))
        self.assertEqual(srv.call("ListKeys", access_key=fixed).status, 200)
        # While kmsd runs: commands that change data refuse, listing works.
        self.refused(kmsadm(data, "access-key", "enable", second[0]), "is running on")
        self.refused(kmsadm(data, "access-key", "create"), "is running on")
        self.ok(kmsadm(data, "access-key", "list"))
        self.assertEqual(srv.stop(), 0)

        self.ok(kmsadm(data, "access-key", "enable", second[0]))
        self.ok(kmsadm(data, "access-key", "disable", fixed[0]))
        self.ok(kmsadm(data, "access-key", "disable", first[0]))
        # The last enabled admin key cannot be disabled.
        self.refused(kmsadm(data, "access-key", "disable", second[0]),
                     "last enabled admin access key")
        self.refused(kmsadm(data, "access-key", "disable", "NoSuchKey"), "no access key")
        srv.start()
        self.assertEqual(srv.call("ListKeys", access_key=second).status, 200)
        self.assertEqual(srv.call("ListKeys", access_key=first).code, "Forbidden.AccessKey")
        self.assertEqual(srv.stop(), 0)

    def test_usage_errors(self):
        self.assertEqual(kmsadm(self.tmp, "no-such-command").returncode, 2)
        proc = subprocess.run([kmsadm_bin(), "help"], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0)
        for command in ("init", "access-key", "backup", "restore", "verify", "rotate-master-key"):
            self.assertIn(command, proc.stdout)
        self.refused(kmsadm(os.path.join(self.tmp, "absent"), "verify"), "no database")
        self.refused(kmsadm(os.path.join(self.tmp, "absent"), "access-key", "create"),
                     "does not exist")


class AccessPointKeyTest(KmsadmCase):

    def test_create_for_an_access_point(self):
        """--aap NAME: a key of an AccessKey access point, authorized by its policies."""
        data = os.path.join(self.tmp, "data")
        with Server(data_dir=data) as srv:
            srv.ok("CreatePolicy", Name="users", Resources='["key/*"]',
                   Permissions='["RbacPermission/Template/CryptoServiceKeyUser"]')
            srv.ok("CreateApplicationAccessPoint", Name="app", Policies='["users"]',
                   AuthenticationMethod="AccessKey")
            key_id = srv.create_key()["KeyId"]
        app_key = created_key(self.ok(kmsadm(data, "access-key", "create", "--aap", "app")))
        listing = self.ok(kmsadm(data, "access-key", "list")).stdout
        self.assertRegex(listing, re.escape(app_key[0]) + r"\s+aap\s+Enabled")
        self.assertNotIn(app_key[1], listing)
        with Server(data_dir=data) as srv:
            r = srv.call("Encrypt", access_key=app_key, KeyId=key_id, Plaintext=b64(b"x"))
            self.assertEqual(r.status, 200, r)
            r = srv.call("CreateKey", access_key=app_key)
            self.assertEqual((r.status, r.code), (403, "Forbidden.NoPermission"))


class Fixture:
    """A data directory with something of every kind, and what proves it still works."""

    def __init__(self, srv, wd):
        self.srv = srv
        self.checks = 0
        self.sym = srv.create_key(Description="round trip")["KeyId"]
        srv.ok("CreateAlias", AliasName="alias/round-trip", KeyId=self.sym)
        srv.ok("TagResource", KeyId=self.sym, Tags=json.dumps([{"TagKey": "env",
                                                                "TagValue": "prod"}]))
        self.plaintext = os.urandom(40)
        self.blob = srv.ok("Encrypt", KeyId="alias/round-trip",
                           Plaintext=b64(self.plaintext))["CiphertextBlob"]
        srv.ok("CreateKeyVersion", KeyId=self.sym)
        self.blob2 = srv.ok("Encrypt", KeyId=self.sym, Plaintext=b64(b"after rotation"))[
            "CiphertextBlob"]
        self.signer = srv.create_key(KeySpec="EC_P256", KeyUsage="SIGN/VERIFY")["KeyId"]
        self.signer_version = srv.ok("ListKeyVersions", KeyId=self.signer)["KeyVersions"][
            "KeyVersion"][0]["KeyVersionId"]
        self.digest = b64(hashlib.sha256(b"message").digest())
        self.signature = srv.ok("AsymmetricSign", KeyId=self.signer,
                                KeyVersionId=self.signer_version, Algorithm="ECDSA_SHA_256",
                                Digest=self.digest)["Value"]
        srv.ok("CreateSecret", SecretName="db-password", VersionId="v1", SecretData="first")
        srv.ok("PutSecretValue", SecretName="db-password", VersionId="v2", SecretData="second")
        srv.ok("CreateSecret", SecretName="under-cmk", VersionId="v1", SecretData="cmk secret",
               EncryptionKeyId=self.sym)
        # BYOK: one key with material, one whose material was deleted (its fingerprint remains).
        self.wd = wd
        self.byok_material = os.urandom(32)
        self.byok = srv.create_key(Origin="EXTERNAL")["KeyId"]
        self.import_material(self.byok, self.byok_material)
        self.byok_blob = srv.ok("Encrypt", KeyId=self.byok, Plaintext=b64(b"byok"))[
            "CiphertextBlob"]
        self.byok_gone = srv.create_key(Origin="EXTERNAL")["KeyId"]
        self.import_material(self.byok_gone, self.byok_material)
        srv.ok("DeleteKeyMaterial", KeyId=self.byok_gone)

    def import_material(self, key_id, material):
        r = self.srv.ok("GetParametersForImport", KeyId=key_id,
                        WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
        wrapped = ossl.encrypt(self.wd, unb64(r["PublicKey"]), "RSAES_OAEP_SHA_256", material,
                               keyform="DER")
        return self.srv.call("ImportKeyMaterial", KeyId=key_id, ImportToken=r["ImportToken"],
                             EncryptedKeyMaterial=b64(wrapped))

    def check(self, case, srv):
        r = srv.ok("DescribeKey", KeyId="alias/round-trip")
        case.assertEqual(r["KeyMetadata"]["KeyId"], self.sym)
        tags = srv.ok("ListResourceTags", KeyId=self.sym)["Tags"]["Tag"]
        case.assertEqual([(t["TagKey"], t["TagValue"]) for t in tags], [("env", "prod")])
        case.assertEqual(unb64(srv.ok("Decrypt", CiphertextBlob=self.blob)["Plaintext"]),
                         self.plaintext)
        case.assertEqual(unb64(srv.ok("Decrypt", CiphertextBlob=self.blob2)["Plaintext"]),
                         b"after rotation")
        case.assertTrue(srv.ok("AsymmetricVerify", KeyId=self.signer,
                               KeyVersionId=self.signer_version, Algorithm="ECDSA_SHA_256",
                               Digest=self.digest, Value=self.signature)["Value"])
        srv.ok("AsymmetricSign", KeyId=self.signer, KeyVersionId=self.signer_version,
               Algorithm="ECDSA_SHA_256", Digest=self.digest)
        case.assertEqual(srv.ok("GetSecretValue", SecretName="db-password")["SecretData"],
                         "second")
        case.assertEqual(srv.ok("GetSecretValue", SecretName="db-password",
                                VersionStage="ACSPrevious")["SecretData"], "first")
        case.assertEqual(srv.ok("GetSecretValue", SecretName="under-cmk")["SecretData"],
                         "cmk secret")
        case.assertEqual(unb64(srv.ok("Decrypt", CiphertextBlob=self.byok_blob)["Plaintext"]),
                         b"byok")
        # The secret's CMK still seals new versions (a label that leaves ACSCurrent alone).
        self.checks += 1
        srv.ok("PutSecretValue", SecretName="db-password", VersionId="v-check-%d" % self.checks,
               SecretData="x", VersionStages=json.dumps(["check"]))


@unittest.skipIf(shutil.which("openssl") is None, "no openssl command")
class BackupRestoreTest(KmsadmCase):

    def test_round_trip(self):
        data = os.path.join(self.tmp, "data")
        admin = created_key(self.ok(kmsadm(data, "init")))
        extra = created_key(self.ok(kmsadm(data, "access-key", "create")))
        srv = self.server(data, admin).start()
        with ossl.Workdir() as wd:
            fx = Fixture(srv, wd)
        backup = os.path.join(self.tmp, "backup.db")
        # While kmsd runs: backup and verify read; restore refuses.
        self.ok(kmsadm(data, "backup", backup))
        self.assertEqual(os.stat(backup).st_mode & 0o777, 0o600)
        self.assertIn("master key is not in it", kmsadm(data, "backup", backup + ".2").stdout)
        self.refused(kmsadm(data, "backup", backup), "exists")
        self.ok(kmsadm(data, "verify"))
        self.refused(kmsadm(data, "restore", backup), "is running on")
        # Changes after the backup.
        later = srv.create_key()["KeyId"]
        srv.ok("DeleteAlias", AliasName="alias/round-trip")
        srv.ok("PutSecretValue", SecretName="db-password", VersionId="v3", SecretData="third")
        self.assertEqual(srv.stop(), 0)

        proc = self.ok(kmsadm(data, "restore", backup))
        self.assertIn("kmsd.db.before-restore", proc.stdout)
        self.assertTrue(os.path.exists(os.path.join(data, "kmsd.db.before-restore")))
        verify = self.ok(kmsadm(data, "verify")).stdout
        self.assertIn("verify: ok", verify)
        srv.start()
        self.assertEqual(srv.call("DescribeKey", KeyId=later).code, "Forbidden.KeyNotFound")
        fx.check(self, srv)
        self.assertEqual(srv.call("ListKeys", access_key=extra).status, 200)
        self.assertEqual(srv.stop(), 0)

        # The kept database is the one that was replaced (it has the later key).
        con = sqlite3.connect(os.path.join(data, "kmsd.db.before-restore"))
        self.assertEqual(con.execute("SELECT count(*) FROM keys WHERE key_id = ?",
                                     (later,)).fetchone()[0], 1)
        con.close()

    def test_restore_refuses_another_master_keys_backup(self):
        mine = os.path.join(self.tmp, "mine")
        other = os.path.join(self.tmp, "other")
        self.ok(kmsadm(mine, "init"))
        self.ok(kmsadm(other, "init"))
        backup = os.path.join(self.tmp, "other.db")
        self.ok(kmsadm(other, "backup", backup))
        self.refused(kmsadm(mine, "restore", backup), "made under another master key")
        garbage = os.path.join(self.tmp, "garbage.db")
        with open(garbage, "wb") as f:
            f.write(os.urandom(8192))
        self.assertNotEqual(kmsadm(mine, "restore", garbage).returncode, 0)
        self.refused(kmsadm(mine, "restore", os.path.join(self.tmp, "absent.db")), "cannot open")

    def test_verify_catches_damage(self):
        data = os.path.join(self.tmp, "data")
        admin = created_key(self.ok(kmsadm(data, "init")))
        srv = self.server(data, admin).start()
        key = srv.create_key()["KeyId"]
        srv.ok("CreateSecret", SecretName="s", VersionId="v1", SecretData="value")
        self.assertEqual(srv.stop(), 0)
        self.ok(kmsadm(data, "verify"))

        damaged = os.path.join(self.tmp, "damaged")
        shutil.copytree(data, damaged)
        con = sqlite3.connect(os.path.join(damaged, "kmsd.db"))
        (material,) = con.execute("SELECT v.material FROM key_versions v WHERE key_id = ?",
                                  (key,)).fetchone()
        flipped = bytearray(material)
        flipped[-1] ^= 1
        con.execute("UPDATE key_versions SET material = ? WHERE key_id = ?", (bytes(flipped), key))
        con.commit()
        con.close()
        proc = self.refused(kmsadm(damaged, "verify"), "does not open")
        self.assertIn(key, proc.stderr)
        self.assertIn("verify: FAILED", proc.stdout)

        damaged2 = os.path.join(self.tmp, "damaged2")
        shutil.copytree(data, damaged2)
        con = sqlite3.connect(os.path.join(damaged2, "kmsd.db"))
        con.execute("UPDATE access_keys SET secret_wrapped = x'0100'")
        con.execute("UPDATE secret_versions SET sealed_value = x'01000000000000000000000000"
                    "00000000000000000000000000000000'")
        con.commit()
        con.close()
        proc = self.refused(kmsadm(damaged2, "verify"), "does not unseal")
        self.assertIn("version v1 of secret s does not open", proc.stderr)

        # Another data directory's master key.
        other = os.path.join(self.tmp, "other")
        self.ok(kmsadm(other, "init"))
        shutil.copy(os.path.join(other, "master.key"), os.path.join(damaged2, "master.key"))
        self.refused(kmsadm(damaged2, "verify"), "not this database's master key")


@unittest.skipIf(shutil.which("openssl") is None, "no openssl command")
class RotateMasterKeyTest(KmsadmCase):

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def test_rotation(self):
        data = os.path.join(self.tmp, "data")
        admin = created_key(self.ok(kmsadm(data, "init")))
        extra = created_key(self.ok(kmsadm(data, "access-key", "create")))
        srv = self.server(data, admin).start()
        wd = ossl.Workdir()
        self.addCleanup(wd.__exit__, None, None, None)
        fx = Fixture(srv, wd)
        self.refused(kmsadm(data, "rotate-master-key"), "is running on")
        self.assertEqual(srv.stop(), 0)
        key_path = os.path.join(data, "master.key")
        old = self.read(key_path)

        proc = self.ok(kmsadm(data, "rotate-master-key"))
        self.assertIn("re-wrapped", proc.stdout)
        new = self.read(key_path)
        self.assertEqual(len(new), 64)
        self.assertNotEqual(new[:32], old)
        self.assertEqual(self.read(key_path + ".old"), old)
        self.assertFalse(os.path.exists(key_path + ".new"))
        self.assertEqual(os.stat(key_path).st_mode & 0o777, 0o600)
        self.assertIn("verify: ok", self.ok(kmsadm(data, "verify")).stdout)

        srv.start()
        fx.check(self, srv)
        self.assertEqual(srv.call("ListKeys", access_key=extra).status, 200)
        # The BYOK fingerprint survived: the same material goes back in, other material not.
        r = fx.import_material(fx.byok_gone, os.urandom(32))
        self.assertEqual(r.status, 400, r)
        r = fx.import_material(fx.byok_gone, fx.byok_material)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(unb64(srv.ok("Decrypt", CiphertextBlob=fx.byok_blob)["Plaintext"]),
                         b"byok")
        self.assertEqual(srv.stop(), 0)

        # The old key opens nothing any more.
        broken = os.path.join(self.tmp, "with-old-key")
        shutil.copytree(data, broken)
        shutil.copy(key_path + ".old", os.path.join(broken, "master.key"))
        self.refused(kmsadm(broken, "verify"), "not this database's master key")

        # A second rotation refuses while master.key.old is there, and works once it is gone.
        self.refused(kmsadm(data, "rotate-master-key"), "master.key.old exists")
        os.unlink(key_path + ".old")
        self.ok(kmsadm(data, "rotate-master-key"))
        self.assertEqual(self.read(key_path + ".old"), new)
        self.ok(kmsadm(data, "verify"))
        srv.start()
        fx.check(self, srv)
        self.assertEqual(srv.stop(), 0)

    def test_interrupted_rotation_is_finished_or_undone(self):
        data = os.path.join(self.tmp, "data")
        admin = created_key(self.ok(kmsadm(data, "init")))
        srv = self.server(data, admin).start()
        key = srv.create_key()["KeyId"]
        blob = srv.ok("Encrypt", KeyId=key, Plaintext=b64(b"durable"))["CiphertextBlob"]
        self.assertEqual(srv.stop(), 0)
        key_path = os.path.join(data, "master.key")

        def decrypts():
            srv.start()
            r = srv.call("Decrypt", CiphertextBlob=blob)
            self.assertEqual(srv.stop(), 0)
            self.assertEqual(unb64(r.json["Plaintext"]), b"durable")

        # 1. A crash before the commit: a stale master.key.new is discarded, then it rotates.
        with open(key_path + ".new", "wb") as f:
            f.write(os.urandom(32))
        os.chmod(key_path + ".new", 0o600)
        proc = self.ok(kmsadm(data, "rotate-master-key"))
        self.assertIn("did not commit; removed", proc.stdout)
        self.assertIn("re-wrapped", proc.stdout)
        decrypts()
        os.unlink(key_path + ".old")

        # 2. A crash after the commit, before the renames: the database is under .new.
        self.ok(kmsadm(data, "rotate-master-key"))
        os.rename(key_path, key_path + ".new")
        os.rename(key_path + ".old", key_path)
        with self.assertRaises(RuntimeError):
            srv.start()
        self.assertIn("does not open this database", srv.stderr_text())
        srv.stop()
        proc = self.ok(kmsadm(data, "rotate-master-key"))
        self.assertIn("finished an interrupted rotation", proc.stdout)
        self.assertFalse(os.path.exists(key_path + ".new"))
        self.assertTrue(os.path.exists(key_path + ".old"))
        decrypts()

        # 3. A crash between the two renames: master.key.old and .new, no master.key.
        os.unlink(key_path + ".old")
        self.ok(kmsadm(data, "rotate-master-key"))
        os.rename(key_path, key_path + ".new")
        proc = self.ok(kmsadm(data, "rotate-master-key"))
        self.assertIn("finished an interrupted rotation", proc.stdout)
        self.ok(kmsadm(data, "verify"))
        decrypts()

        # Neither key opens the database: nothing is touched.
        os.unlink(key_path + ".old")
        with open(key_path + ".new", "wb") as f:
            f.write(os.urandom(32))
        os.chmod(key_path + ".new", 0o600)
        shutil.copy(key_path, key_path + ".keep")
        with open(key_path, "wb") as f:
            f.write(os.urandom(32))
        self.refused(kmsadm(data, "rotate-master-key"), "neither")
        self.assertTrue(os.path.exists(key_path + ".new"))
        os.rename(key_path + ".keep", key_path)
        os.unlink(key_path + ".new")
        decrypts()


class HsmTest(KmsadmCase):
    """verify and rotate-master-key with a SoftHSM2 token: HSM keys live in the token."""

    def setUp(self):
        super().setUp()
        script = os.path.join(ROOT, "tests", "softhsm-token.sh")
        proc = subprocess.run([script, os.path.join(self.tmp, "hsm"), "kmsadm-token", "1234"],
                              capture_output=True, text=True)
        if proc.returncode == 77:
            self.skipTest("SoftHSM2 is not installed")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.tok = dict(line.split("=", 1) for line in proc.stdout.split())

    def adm(self, data, *args, config=None):
        return kmsadm(data, *args, config=config, env={"SOFTHSM2_CONF": self.tok["SOFTHSM2_CONF"]})

    def config(self, seal=False):
        path = os.path.join(self.tmp, "seal.conf" if seal else "hsm.conf")
        with open(path, "w") as f:
            f.write(DEFAULT_CONFIG + "[pkcs11]\nmodule = %s\ntoken_label = kmsadm-token\n"
                    "pin_file = %s\nseal_master_key = %s\n" %
                    (self.tok["MODULE"], self.tok["PIN_FILE"], "true" if seal else "false"))
        return path

    def test_verify_and_rotate_with_hsm_keys(self):
        data = os.path.join(self.tmp, "data")
        conf = self.config()
        admin = created_key(self.ok(self.adm(data, "init", config=conf)))
        with open(conf) as f:
            text = f.read()
        srv = Server(data_dir=data, admin=admin, config=text,
                     env={"SOFTHSM2_CONF": self.tok["SOFTHSM2_CONF"]})
        self.addCleanup(srv.stop)
        srv.start()
        hsm = srv.create_key(ProtectionLevel="HSM")["KeyId"]
        soft = srv.create_key()["KeyId"]
        hsm_blob = srv.ok("Encrypt", KeyId=hsm, Plaintext=b64(b"hsm"))["CiphertextBlob"]
        soft_blob = srv.ok("Encrypt", KeyId=soft, Plaintext=b64(b"soft"))["CiphertextBlob"]
        self.assertEqual(srv.stop(), 0)
        out = self.ok(self.adm(data, "verify", config=conf)).stdout
        self.assertRegex(out, r"1 HSM \(in the token\)")
        proc = self.ok(self.adm(data, "rotate-master-key", config=conf))
        self.assertIn("1 HSM versions are in the token", proc.stdout)
        self.ok(self.adm(data, "verify", config=conf))
        srv.start()
        self.assertEqual(unb64(srv.ok("Decrypt", CiphertextBlob=hsm_blob)["Plaintext"]), b"hsm")
        self.assertEqual(unb64(srv.ok("Decrypt", CiphertextBlob=soft_blob)["Plaintext"]), b"soft")
        self.assertEqual(srv.stop(), 0)
        # Without the [pkcs11] configuration the HSM version cannot be checked: a failure.
        self.refused(kmsadm(data, "verify"), "no such keystore is configured")

    def test_sealing_mode_refuses_rotation(self):
        data = os.path.join(self.tmp, "data")
        conf = self.config(seal=True)
        self.ok(self.adm(data, "init", config=conf))
        self.assertFalse(os.path.exists(os.path.join(data, "master.key")))
        self.ok(self.adm(data, "verify", config=conf))
        proc = self.refused(self.adm(data, "rotate-master-key", config=conf),
                            "sealed in the PKCS#11 token")
        self.assertIn("kmsadm does not rotate it", proc.stderr)


if __name__ == "__main__":
    unittest.main()
