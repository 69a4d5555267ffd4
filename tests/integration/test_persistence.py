"""Restart persistence: everything survives a clean stop (SIGTERM, exit 0) and a start on the same
data directory without the admin environment variables; the replay cache survives it too
(DESIGN.md "Replay cache"); the environment cannot replace the admin key later."""

import os
import secrets
import shutil
import signal
import tempfile
import unittest

from common import tags_json
from kmsd import ADMIN_ID, ADMIN_SECRET, Server, b64, unb64


class PersistenceTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kmsd-persist-")
        self.data = os.path.join(self.dir, "data")
        self.servers = []

    def tearDown(self):
        for srv in self.servers:
            srv.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def server(self, **kw):
        srv = Server(data_dir=self.data, **kw)
        self.servers.append(srv)
        return srv.start()

    def ok(self, srv, action, **params):
        r = srv.call(action, **params)
        self.assertEqual(r.status, 200, r)
        return r.json

    def stop_cleanly(self, srv, sig=signal.SIGTERM):
        self.assertEqual(srv.stop(sig), 0, srv.stderr_text()[-2000:])

    def test_restart_keeps_everything(self):
        srv = self.server()
        keys = {}
        keys["enabled"] = self.ok(srv, "CreateKey", Description="enabled 中文",
                                  Tags=tags_json([("Project", "P"), ("env", "")]))["KeyMetadata"]["KeyId"]
        keys["disabled"] = self.ok(srv, "CreateKey", Description="disabled", KeySpec="Aliyun_SM4")["KeyMetadata"]["KeyId"]
        keys["pending"] = self.ok(srv, "CreateKey", KeySpec="Aliyun_AES_128")["KeyMetadata"]["KeyId"]
        keys["import"] = self.ok(srv, "CreateKey", Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
        keys["rotating"] = self.ok(srv, "CreateKey", EnableAutomaticRotation="true",
                                   RotationInterval="30d")["KeyMetadata"]["KeyId"]
        keys["protected"] = self.ok(srv, "CreateKey")["KeyMetadata"]["KeyId"]
        keys["asym"] = self.ok(srv, "CreateKey", KeySpec="EC_P256")["KeyMetadata"]["KeyId"]
        blobs = {name: self.ok(srv, "Encrypt", KeyId=keys[name], Plaintext=b64(name.encode()),
                               EncryptionContext='{"who":"%s"}' % name)["CiphertextBlob"]
                 for name in ("enabled", "disabled", "pending", "rotating", "protected")}
        data_key = self.ok(srv, "GenerateDataKey", KeyId=keys["enabled"], NumberOfBytes=48)
        self.ok(srv, "CreateAlias", AliasName="alias/pending", KeyId=keys["disabled"])
        self.ok(srv, "UpdateAlias", AliasName="alias/pending", KeyId=keys["pending"])
        self.ok(srv, "DisableKey", KeyId=keys["disabled"])
        self.ok(srv, "ScheduleKeyDeletion", KeyId=keys["pending"], PendingWindowInDays=9)
        self.ok(srv, "SetDeletionProtection", KeyId=keys["protected"], EnableDeletionProtection="true",
                DeletionProtectionDescription="keep")
        self.ok(srv, "CreateAlias", AliasName="alias/one", KeyId=keys["enabled"])
        self.ok(srv, "CreateAlias", AliasName="alias/two", KeyId=keys["enabled"])
        self.ok(srv, "TagResource", KeyId=keys["disabled"], Tags=tags_json([("a", "1")]))
        before = {name: self.ok(srv, "DescribeKey", KeyId=k)["KeyMetadata"] for name, k in keys.items()}
        aliases = self.ok(srv, "ListAliases", PageSize=100)["Aliases"]["Alias"]
        listed = self.ok(srv, "ListKeys", PageSize=100)["Keys"]["Key"]
        tags = {name: self.ok(srv, "ListResourceTags", KeyId=k)["Tags"]["Tag"] for name, k in keys.items()}
        # A V1 and a V3 request whose nonces are used just before the stop: the final flush
        # must carry them to the store.
        v1 = srv.signed_params("DescribeRegions", {})
        self.assertEqual(srv.send_signed(v1).status, 200)
        v3_nonce = secrets.token_hex(16)
        self.assertEqual(srv.call_v3_custom("DescribeRegions",
                                            headers={"x-acs-signature-nonce": v3_nonce}).status, 200)
        self.stop_cleanly(srv)

        srv = self.server(admin=None)  # no KMSD_ADMIN_* in the environment
        self.assertNotIn("KMSD_ADMIN_ACCESS_KEY_ID", srv.env)
        after = {name: self.ok(srv, "DescribeKey", KeyId=k)["KeyMetadata"] for name, k in keys.items()}
        self.assertEqual(after, before)
        self.assertEqual(after["pending"]["KeyState"], "PendingDeletion")
        self.assertTrue(after["pending"]["DeleteDate"])
        self.assertEqual(after["disabled"]["KeyState"], "Disabled")
        self.assertEqual(after["import"]["KeyState"], "PendingImport")
        self.assertEqual(after["protected"]["DeletionProtectionDescription"], "keep")
        self.assertEqual(after["rotating"]["RotationInterval"], "2592000s")
        self.assertEqual(after["enabled"]["Description"], "enabled 中文")
        self.assertEqual(self.ok(srv, "ListAliases", PageSize=100)["Aliases"]["Alias"], aliases)
        self.assertEqual(self.ok(srv, "ListKeys", PageSize=100)["Keys"]["Key"], listed)
        self.assertEqual({name: self.ok(srv, "ListResourceTags", KeyId=k)["Tags"]["Tag"]
                          for name, k in keys.items()}, tags)
        self.assertEqual(self.ok(srv, "DescribeKey", KeyId="alias/pending")["KeyMetadata"]["KeyId"],
                         keys["pending"])
        # Ciphertexts made before the restart decrypt (once their keys are usable).
        self.ok(srv, "EnableKey", KeyId=keys["disabled"])
        self.ok(srv, "CancelKeyDeletion", KeyId=keys["pending"])
        for name, blob in blobs.items():
            r = self.ok(srv, "Decrypt", CiphertextBlob=blob, EncryptionContext='{"who":"%s"}' % name)
            self.assertEqual(unb64(r["Plaintext"]), name.encode())
        r = self.ok(srv, "Decrypt", CiphertextBlob=data_key["CiphertextBlob"])
        self.assertEqual(r["Plaintext"], data_key["Plaintext"])
        # Deletion protection still holds.
        r = srv.call("ScheduleKeyDeletion", KeyId=keys["protected"])
        self.assertEqual((r.status, r.code), (409, "Rejected.DeletionProtection"))
        # Nonces used before the restart are still rejected.
        r = srv.send_signed(v1)
        self.assertEqual((r.status, r.code), (400, "SignatureNonceUsed"), r)
        r = srv.call_v3_custom("DescribeRegions", headers={"x-acs-signature-nonce": v3_nonce})
        self.assertEqual((r.status, r.code), (400, "SignatureNonceUsed"), r)
        # New work goes on, and a third start (SIGINT this time) still has it all.
        k = self.ok(srv, "CreateKey", Description="after restart")["KeyMetadata"]["KeyId"]
        self.stop_cleanly(srv, signal.SIGINT)
        srv = self.server(admin=None)
        self.assertEqual(self.ok(srv, "DescribeKey", KeyId=k)["KeyMetadata"]["Description"],
                         "after restart")
        self.assertEqual(self.ok(srv, "ListKeys", PageSize=100)["TotalCount"], len(keys) + 1)
        self.stop_cleanly(srv)

    def test_environment_cannot_replace_the_admin_key(self):
        srv = self.server()
        self.ok(srv, "DescribeRegions")
        self.stop_cleanly(srv)

        # Another key id in the environment: a warning, and the old key keeps working.
        srv = self.server(admin=("OtherAdmin0001", "other-secret-0001"),
                          env={})
        srv.access_key_id, srv.access_key_secret = ADMIN_ID, ADMIN_SECRET
        self.ok(srv, "DescribeRegions")
        r = srv.call("DescribeRegions", access_key=("OtherAdmin0001", "other-secret-0001"))
        self.assertEqual((r.status, r.code), (404, "InvalidAccessKeyId.NotFound"), r)
        log = srv.stderr_text()
        self.assertIn("OtherAdmin0001", log)
        self.assertRegex(log, r"(?i)warn")
        self.assertNotIn("other-secret-0001", log)
        self.stop_cleanly(srv)

        # The same key id with another secret: the stored secret stays.
        srv = self.server(admin=(ADMIN_ID, "changed-secret-0001"))
        srv.access_key_secret = ADMIN_SECRET
        self.ok(srv, "DescribeRegions")
        r = srv.call("DescribeRegions", access_key=(ADMIN_ID, "changed-secret-0001"))
        self.assertEqual((r.status, r.code), (400, "SignatureDoesNotMatch"), r)
        self.stop_cleanly(srv)

    def test_generated_admin_key(self):
        # Without the environment on first start, kmsd makes a random admin key and shows the
        # secret only on a terminal: never in the log or on stdout.
        srv = Server(data_dir=self.data, admin=None)
        self.servers.append(srv)
        srv.start()
        log = srv.stderr_text()
        self.assertRegex(log, r"admin access key KMSD[A-Za-z0-9]{16}")
        self.assertNotIn("AccessKeySecret", log)
        r = srv.call("DescribeRegions")  # the harness's default key does not exist here
        self.assertEqual((r.status, r.code), (404, "InvalidAccessKeyId.NotFound"))
        self.stop_cleanly(srv)


if __name__ == "__main__":
    unittest.main()
