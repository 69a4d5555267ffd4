"""Seeding (issue 7, docs/seeding.md): kmsd --seed FILE creates keys with fixed ids, specs and
given material (several versions), aliases, tags, secrets and admin access keys; the same
KeyVersionId and material seeded into two data directories make ciphertexts of one decrypt in the
other; a second start with the same file changes nothing; a bad file changes nothing and names
its JSON location; an access point's key is seeded only for an access point that exists."""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import openssl_cli as ossl
from kmsd import ROOT, Server, b64, binary, unb64

V1 = "0a1b2c3d-0000-4000-8000-000000000001"
V2 = "0a1b2c3d-0000-4000-8000-000000000002"
M1 = bytes(range(32))
M2 = bytes(range(32, 64))


def seed_doc(pem=None):
    doc = {
        "Keys": [
            {"KeyId": "fixture-key", "Description": "seeded",
             "Versions": [{"KeyVersionId": V1, "Material": b64(M1)},
                          {"KeyVersionId": V2, "Material": b64(M2)}],
             "Aliases": ["alias/fixture"], "Tags": {"env": "test", "team": "kms"}},
            {"KeyId": "fixture-aes128", "KeySpec": "Aliyun_AES_128", "KeyState": "Disabled",
             "Versions": [{"Material": b64(bytes(16))}]},
            {"KeyId": "fixture_generated-2", "RotationInterval": "30d",
             "Tags": [{"TagKey": "kind", "TagValue": "generated"}]},
        ],
        "Secrets": [
            {"SecretName": "fixture/db", "EncryptionKeyId": "alias/fixture",
             "Versions": [{"VersionId": "v1", "SecretData": "pw-one"},
                          {"VersionId": "v2", "SecretData": "pw-two"}],
             "Tags": {"env": "test"}},
            {"SecretName": "fixture/token", "VersionId": "t1", "SecretData": "tok"},
        ],
        "AccessKeys": [
            {"AccessKeyId": "FixtureAdmin01", "AccessKeySecret": "fixture-secret-01",
             "Admin": True, "Description": "seeded admin"},
        ],
    }
    if pem is not None:
        doc["Keys"].append({"KeyId": "fixture-signer", "KeySpec": "EC_P256",
                            "KeyUsage": "SIGN/VERIFY",
                            "Versions": [{"KeyVersionId": "0a1b2c3d-0000-4000-8000-0000000000e1",
                                          "PrivateKeyPem": pem}]})
    return doc


class SeedCase(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kmsd-seed-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, name, doc):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
        return path

    def seeded(self, path, data_dir=None):
        srv = Server(data_dir=data_dir, extra_args=["--seed", path])
        self.addCleanup(srv.__exit__, None, None, None)
        return srv.start()


class SeedTest(SeedCase):

    def test_everything_is_created_as_described(self):
        with ossl.Workdir() as wd:
            pem_path, public_der = ossl.generate_key(wd, "EC_P256")
            with open(pem_path) as f:
                pem = f.read()
        srv = self.seeded(self.write("seed.json", seed_doc(pem)))
        md = srv.ok("DescribeKey", KeyId="fixture-key")["KeyMetadata"]
        self.assertEqual((md["KeyId"], md["Description"], md["KeySpec"], md["KeyState"],
                          md["Origin"], md["PrimaryKeyVersion"]),
                         ("fixture-key", "seeded", "Aliyun_AES_256", "Enabled", "Aliyun_KMS", V2))
        versions = srv.ok("ListKeyVersions", KeyId="fixture-key")["KeyVersions"]["KeyVersion"]
        self.assertEqual([v["KeyVersionId"] for v in versions], [V1, V2])
        self.assertEqual(srv.ok("DescribeKey", KeyId="alias/fixture")["KeyMetadata"]["KeyId"],
                         "fixture-key")
        tags = srv.ok("ListResourceTags", KeyId="fixture-key")["Tags"]["Tag"]
        self.assertEqual(sorted((t["TagKey"], t["TagValue"]) for t in tags),
                         [("env", "test"), ("team", "kms")])
        md = srv.ok("DescribeKey", KeyId="fixture-aes128")["KeyMetadata"]
        self.assertEqual((md["KeySpec"], md["KeyState"]), ("Aliyun_AES_128", "Disabled"))
        md = srv.ok("DescribeKey", KeyId="fixture_generated-2")["KeyMetadata"]
        self.assertEqual((md["AutomaticRotation"], md["RotationInterval"]), ("Enabled", "2592000s"))
        # The seeded key works like any other: encrypt, rotate, decrypt.
        blob = srv.ok("Encrypt", KeyId="alias/fixture", Plaintext=b64(b"hello"))["CiphertextBlob"]
        self.assertEqual(unb64(srv.ok("Decrypt", CiphertextBlob=blob)["Plaintext"]), b"hello")
        srv.ok("CreateKeyVersion", KeyId="fixture-key")
        # Secrets: versions and stages as given, under the seeded alias's key.
        self.assertEqual(srv.ok("GetSecretValue", SecretName="fixture/db")["SecretData"], "pw-two")
        self.assertEqual(srv.ok("GetSecretValue", SecretName="fixture/db",
                                VersionStage="ACSPrevious")["SecretData"], "pw-one")
        self.assertEqual(srv.ok("DescribeSecret", SecretName="fixture/db")["EncryptionKeyId"],
                         "fixture-key")
        self.assertEqual(srv.ok("GetSecretValue", SecretName="fixture/token")["SecretData"], "tok")
        # The seeded admin access key signs requests.
        self.assertEqual(srv.call("ListKeys", access_key=("FixtureAdmin01",
                                                          "fixture-secret-01")).status, 200)
        # The asymmetric key holds the given private key: its public key is the PEM's.
        pub = srv.ok("GetPublicKey", KeyId="fixture-signer",
                     KeyVersionId="0a1b2c3d-0000-4000-8000-0000000000e1")["PublicKey"]
        self.assertEqual(ossl.pem_to_der(pub), public_der)
        digest = hashlib.sha256(b"m").digest()
        sig = srv.ok("AsymmetricSign", KeyId="fixture-signer",
                     KeyVersionId="0a1b2c3d-0000-4000-8000-0000000000e1",
                     Algorithm="ECDSA_SHA_256", Digest=b64(digest))["Value"]
        with ossl.Workdir() as wd:
            self.assertTrue(ossl.verify_digest(wd, pub, "ECDSA_SHA_256", digest, unb64(sig)))
        # Given material never reaches the database in the clear.
        srv.stop()
        for name in os.listdir(srv.data_dir):
            path = os.path.join(srv.data_dir, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    data = f.read()
                for secret in (M1, M2, b"pw-one", b"pw-two", b"fixture-secret-01"):
                    self.assertNotIn(secret, data, name)

    def test_same_material_decrypts_across_data_directories(self):
        path = self.write("seed.json", seed_doc())
        first = self.seeded(path)
        blobs = {}
        # Encrypt uses the primary version (V2); a V1 blob comes from a kmsd seeded with V1 only.
        blobs[V2] = first.ok("Encrypt", KeyId="fixture-key",
                             Plaintext=b64(b"made in the first"))["CiphertextBlob"]
        only_v1 = seed_doc()
        only_v1["Keys"][0]["Versions"] = only_v1["Keys"][0]["Versions"][:1]
        third = self.seeded(self.write("v1.json", only_v1))
        blobs[V1] = third.ok("Encrypt", KeyId="fixture-key",
                             Plaintext=b64(b"made under v1"))["CiphertextBlob"]

        second = self.seeded(path)
        self.assertNotEqual(first.data_dir, second.data_dir)
        self.assertEqual(unb64(second.ok("Decrypt", CiphertextBlob=blobs[V2])["Plaintext"]),
                         b"made in the first")
        r = second.ok("Decrypt", CiphertextBlob=blobs[V1])
        self.assertEqual((unb64(r["Plaintext"]), r["KeyVersionId"]), (b"made under v1", V1))
        # Other material under the same ids does not decrypt them.
        other = seed_doc()
        other["Keys"][0]["Versions"][1]["Material"] = b64(bytes(32))
        fourth = self.seeded(self.write("other.json", other))
        r = fourth.call("Decrypt", CiphertextBlob=blobs[V2])
        self.assertEqual((r.status, r.code), (400, "InvalidParameter"))

    def test_second_start_changes_nothing(self):
        path = self.write("seed.json", seed_doc())
        srv = self.seeded(path)
        srv.ok("UpdateKeyDescription", KeyId="fixture-key", Description="changed over the API")
        srv.ok("UpdateAlias", AliasName="alias/fixture", KeyId="fixture-aes128")
        srv.ok("PutSecretValue", SecretName="fixture/token", VersionId="t2", SecretData="new")
        srv.ok("DisableKey", KeyId="fixture_generated-2")
        keys = srv.ok("ListKeys", PageSize=100)["TotalCount"]
        versions = len(srv.ok("ListKeyVersions", KeyId="fixture-key")["KeyVersions"]["KeyVersion"])
        srv.stop()
        srv.start()
        self.assertEqual(srv.ok("DescribeKey", KeyId="fixture-key")["KeyMetadata"]["Description"],
                         "changed over the API")
        self.assertEqual(srv.ok("DescribeKey", KeyId="alias/fixture")["KeyMetadata"]["KeyId"],
                         "fixture-aes128")
        self.assertEqual(srv.ok("GetSecretValue", SecretName="fixture/token")["SecretData"], "new")
        self.assertEqual(srv.ok("DescribeKey", KeyId="fixture_generated-2")["KeyMetadata"][
            "KeyState"], "Disabled")
        self.assertEqual(srv.ok("ListKeys", PageSize=100)["TotalCount"], keys)
        self.assertEqual(len(srv.ok("ListKeyVersions", KeyId="fixture-key")["KeyVersions"][
            "KeyVersion"]), versions)
        log = srv.stderr_text()
        self.assertIn("seed: key fixture-key exists; left as it is", log)
        self.assertIn("seed: alias alias/fixture exists; left as it is", log)
        self.assertIn("seed: secret fixture/db exists; left as it is", log)
        self.assertIn("seed: access key FixtureAdmin01 exists; left as it is", log)
        self.assertIn("created 0 keys, 0 aliases, 0 secrets, 0 access keys", log)

    def test_new_alias_of_an_existing_key_is_added(self):
        path = self.write("seed.json", seed_doc())
        srv = self.seeded(path)
        srv.stop()
        doc = seed_doc()
        doc["Keys"][0]["Aliases"].append("alias/fixture-second")
        srv.extra_args = ["--seed", self.write("seed2.json", doc)]
        srv.start()
        self.assertEqual(srv.ok("DescribeKey", KeyId="alias/fixture-second")["KeyMetadata"][
            "KeyId"], "fixture-key")

    def test_example_file(self):
        srv = self.seeded(os.path.join(ROOT, "conf", "seed.example.json"))
        self.assertEqual(srv.ok("DescribeKey", KeyId="alias/test-app")["KeyMetadata"]["KeyId"],
                         "test-app-key")
        self.assertEqual(srv.ok("GetSecretValue", SecretName="test/db-password")["SecretData"],
                         "second-password")
        self.assertEqual(srv.call("ListKeys", access_key=("TestAdminKey0001",
                                                          "test-admin-secret-0001")).status, 200)


class AccessPointKeySeedTest(SeedCase):

    def test_key_of_an_existing_access_point(self):
        """Seeded for an access point made through the API, the key signs and is authorized by
        that access point's policies; an access point using client keys is refused."""
        data_dir = os.path.join(self.tmp, "data")
        with Server(data_dir=data_dir) as srv:
            srv.ok("CreatePolicy", Name="seed-users", Resources='["key/*"]',
                   Permissions='["RbacPermission/Template/CryptoServiceKeyUser"]')
            srv.ok("CreateApplicationAccessPoint", Name="seeded-app", Policies='["seed-users"]',
                   AuthenticationMethod="AccessKey")
            srv.ok("CreateApplicationAccessPoint", Name="client-key-app",
                   Policies='["seed-users"]')
            key_id = srv.create_key()["KeyId"]
        doc = {"AccessKeys": [{"AccessKeyId": "SeededAppKey01", "AccessKeySecret": "app-secret-001",
                               "AapName": "seeded-app", "Description": "fixture"}]}
        srv = self.seeded(self.write("aap.json", doc), data_dir=data_dir)
        app = ("SeededAppKey01", "app-secret-001")
        self.assertEqual(srv.call("Encrypt", access_key=app, KeyId=key_id,
                                  Plaintext=b64(b"x")).status, 200)
        denied = srv.call("CreateKey", access_key=app)
        self.assertEqual((denied.status, denied.code), (403, "Forbidden.NoPermission"))
        keys = srv.ok("ListAccessKeys", AapName="seeded-app")["AccessKeys"]["AccessKey"]
        self.assertEqual([(k["AccessKeyId"], k["Description"]) for k in keys],
                         [("SeededAppKey01", "fixture")])
        srv.stop()
        doc["AccessKeys"][0]["AapName"] = "client-key-app"
        doc["AccessKeys"][0]["AccessKeyId"] = "SeededAppKey02"
        proc = subprocess.run([binary(), "--data-dir", data_dir, "--listen", "127.0.0.1:0",
                               "--seed", self.write("client.json", doc)], capture_output=True,
                              text=True, timeout=60)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("$.AccessKeys[0].AapName", proc.stderr)


class BadSeedTest(SeedCase):

    def fails(self, doc, *expected):
        """kmsd refuses the file, names the location, and leaves the data directory empty."""
        path = self.write("bad.json", doc)
        data_dir = os.path.join(self.tmp, "data")
        proc = subprocess.run([binary(), "--data-dir", data_dir, "--listen", "127.0.0.1:0",
                               "--seed", path], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, KMSD_ADMIN_ACCESS_KEY_ID="SeedAdmin",
                                       KMSD_ADMIN_ACCESS_KEY_SECRET="seed-admin-secret"))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertNotIn("kmsd ready", proc.stdout)
        for text in expected:
            self.assertIn(text, proc.stderr)
        self.assertIn(path, proc.stderr)
        # Nothing of the file was written.
        srv = Server(data_dir=data_dir, admin=("SeedAdmin", "seed-admin-secret"))
        with srv:
            self.assertEqual(srv.ok("ListKeys")["TotalCount"], 0)
            self.assertEqual(srv.ok("ListSecrets")["TotalCount"], 0)
            self.assertEqual(srv.stop(), 0)
        shutil.rmtree(data_dir)
        return proc

    def test_locations(self):
        def bad(change):
            doc = seed_doc()
            change(doc)
            return doc

        self.fails('{"Keys": [\n  {"KeyId": "x",}\n]}', ":2:", "not valid JSON")
        self.fails(bad(lambda d: d["Keys"][0]["Versions"][1].update(Material=b64(bytes(16)))),
                   "$.Keys[0].Versions[1].Material", "needs 32 bytes")
        self.fails(bad(lambda d: d["Keys"][0]["Versions"][0].update(Material="***")),
                   "$.Keys[0].Versions[0].Material: not valid Base64")
        self.fails(bad(lambda d: d["Keys"][0]["Versions"][0].update(KeyVersionId="v1")),
                   "$.Keys[0].Versions[0].KeyVersionId: not a UUID")
        self.fails(bad(lambda d: d["Keys"][0]["Versions"][1].update(KeyVersionId=V1)),
                   "the same id as Versions[0]")
        self.fails(bad(lambda d: d["Keys"][1].update(KeySpec="AES_999")),
                   "$.Keys[1].KeySpec: unknown KeySpec")
        self.fails(bad(lambda d: d["Keys"][2].update(KeyId="has space")), "$.Keys[2].KeyId")
        self.fails(bad(lambda d: d["Keys"][2].update(Colour="red")), 'unknown member "Colour"')
        self.fails(bad(lambda d: d["Keys"][2].pop("KeyId")), '$.Keys[2]: "KeyId" is required')
        self.fails(bad(lambda d: d["Keys"][2].update(RotationInterval="1d")),
                   "$.Keys[2].RotationInterval")
        self.fails(bad(lambda d: d["Keys"][0].update(Tags={"acs:reserved": "x"})),
                   "$.Keys[0].Tags: not valid tags")
        self.fails(bad(lambda d: d["Keys"][0].update(Aliases=["no-prefix"])), "$.Keys[0].Aliases[0]")
        self.fails(bad(lambda d: d["Keys"][0].update(ProtectionLevel="HSM")),
                   "$.Keys[0].ProtectionLevel: no keystore for HSM")
        self.fails(bad(lambda d: d["Keys"][0]["Versions"][0].update(PrivateKeyPem="x")),
                   "only for asymmetric keys")
        self.fails(bad(lambda d: d["Secrets"][0].pop("Versions")),
                   "$.Secrets[0]: SecretData and VersionId (or Versions) are required")
        self.fails(bad(lambda d: d["Secrets"][1].update(SecretData=7)),
                   "$.Secrets[1].SecretData: expected a string")
        self.fails(bad(lambda d: d["AccessKeys"][0].update(AccessKeySecret="short")),
                   "$.AccessKeys[0].AccessKeySecret")
        self.fails(bad(lambda d: d.update(Certificates=[])), '$: unknown member "Certificates"')
        self.fails("[1, 2]", "$: expected an object")

    def test_access_point_key_needs_its_access_point(self):
        doc = seed_doc()
        doc["AccessKeys"].append({"AccessKeyId": "AppKey0001", "AccessKeySecret": "app-secret-01",
                                  "AapName": "my-app"})
        self.fails(doc, "$.AccessKeys[1].AapName",
                   "no access point my-app with AuthenticationMethod AccessKey")
        doc["AccessKeys"][1]["Admin"] = True
        self.fails(doc, "$.AccessKeys[1]", '"Admin": true (an admin access key) or "AapName"')

    def test_wrong_private_key_spec(self):
        with ossl.Workdir() as wd:
            with open(ossl.generate_key(wd, "RSA_2048")[0]) as f:
                pem = f.read()
        self.fails(seed_doc(pem), "$.Keys[3].Versions[0].PrivateKeyPem",
                   "is not a EC_P256 key")

    def test_version_id_of_another_key(self):
        doc = seed_doc()
        doc["Keys"][1]["Versions"][0]["KeyVersionId"] = V1
        path = self.write("dup.json", doc)
        srv = Server(extra_args=["--seed", path])
        self.addCleanup(srv.__exit__, None, None, None)
        with self.assertRaises(RuntimeError):
            srv.start()
        self.assertIn("KeyVersionId %s belongs to another key already" % V1, srv.stderr_text())
        self.assertIn("$.Keys[1]", srv.stderr_text())

    def test_missing_file(self):
        srv = Server(extra_args=["--seed", os.path.join(self.tmp, "absent.json")])
        self.addCleanup(srv.__exit__, None, None, None)
        with self.assertRaises(RuntimeError):
            srv.start()
        self.assertIn("cannot read", srv.stderr_text())


if __name__ == "__main__":
    unittest.main()
