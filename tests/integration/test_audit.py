"""The audit log (issue 7, docs/operations.md "The audit log"): one JSON line per request, for
successes and every kind of failure, with the right fields; nothing secret in it (plaintext,
data keys, secret values, signatures, StringToSign: the file is scanned for each); reopened on
SIGHUP after a rename (log rotation); off when [audit] enabled = false."""

import base64
import json
import os
import re
import shutil
import signal
import stat
import tempfile
import time
import unittest

from kmsd import DEFAULT_CONFIG, Server, b64

FIELDS = {"Time", "RequestId", "AccessKeyId", "Principal", "SourceIp", "Action", "Resource",
          "Code", "HttpStatus", "LatencyUs"}
TIME_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def read_records(path, want=None, timeout=5):
    """The records in path, waiting (the writer flushes at least every second) until a record
    with RequestId want is there."""
    deadline = time.time() + timeout
    while True:
        records = []
        if os.path.exists(path):
            with open(path, "rb") as f:
                for line in f.read().decode("utf-8").splitlines():
                    records.append(json.loads(line))
        if want is None or any(r["RequestId"] == want for r in records) or time.time() > deadline:
            return records
        time.sleep(0.1)


class AuditTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server().start()
        cls.path = os.path.join(cls.srv.data_dir, "audit.log")

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        cls.srv.__exit__(None, None, None)
        assert status == 0, status

    def record_of(self, r):
        rid = r.json["RequestId"]
        for rec in read_records(self.path, rid):
            if rec["RequestId"] == rid:
                return rec
        self.fail("no audit record for %s" % rid)

    def test_success_record(self):
        key = self.srv.create_key(Description="audited")
        r = self.srv.call("DescribeKey", KeyId=key["KeyId"])
        self.assertEqual(r.status, 200)
        rec = self.record_of(r)
        self.assertEqual(set(rec), FIELDS)
        self.assertTrue(TIME_MS.match(rec["Time"]), rec)
        self.assertLess(abs(time.mktime(time.strptime(rec["Time"][:19], "%Y-%m-%dT%H:%M:%S"))
                            - time.timezone - time.time()), 60)
        self.assertEqual(rec["AccessKeyId"], self.srv.access_key_id)
        self.assertEqual(rec["Principal"], "admin")
        self.assertEqual(rec["SourceIp"], "127.0.0.1")
        self.assertEqual(rec["Action"], "DescribeKey")
        self.assertEqual(rec["Resource"], "key/" + key["KeyId"])
        self.assertEqual(rec["Code"], "Success")
        self.assertEqual(rec["HttpStatus"], 200)
        self.assertIsInstance(rec["LatencyUs"], int)
        self.assertGreater(rec["LatencyUs"], 0)
        self.assertLess(rec["LatencyUs"], 10_000_000)

    def test_alias_is_resolved_in_the_resource(self):
        key = self.srv.create_key()
        self.srv.ok("CreateAlias", AliasName="alias/audited", KeyId=key["KeyId"])
        r = self.srv.call("Encrypt", KeyId="alias/audited", Plaintext=b64(b"x"))
        self.assertEqual(r.status, 200)
        self.assertEqual(self.record_of(r)["Resource"], "key/" + key["KeyId"])

    def test_error_records(self):
        r = self.srv.call("DescribeKey", KeyId="no-such-key")
        rec = self.record_of(r)
        self.assertEqual((rec["Code"], rec["HttpStatus"]), ("Forbidden.KeyNotFound", 404))
        self.assertEqual(rec["Principal"], "admin")

        r = self.srv.call("NoSuchAction")
        rec = self.record_of(r)
        self.assertEqual((rec["Code"], rec["Action"]), ("InvalidAction.NotFound", "NoSuchAction"))

        # A signature that does not verify: the claimed id is recorded, with no principal.
        r = self.srv.call("ListKeys", access_key=(self.srv.access_key_id, "wrong-secret"))
        self.assertEqual(r.code, "SignatureDoesNotMatch")
        rec = self.record_of(r)
        self.assertEqual(rec["Code"], "SignatureDoesNotMatch")
        self.assertEqual(rec["AccessKeyId"], self.srv.access_key_id)
        self.assertEqual(rec["Principal"], "")
        self.assertEqual(rec["HttpStatus"], 400)

        r = self.srv.call("ListKeys", access_key=("NoSuchAccessKey", "whatever"))
        rec = self.record_of(r)
        self.assertEqual((rec["Code"], rec["AccessKeyId"], rec["Principal"]),
                         ("InvalidAccessKeyId.NotFound", "NoSuchAccessKey", ""))

        # V3: the claimed id comes from the Authorization header.
        r = self.srv.call_v3_custom("ListKeys", access_key=("V3Claimed", "nope"))
        rec = self.record_of(r)
        self.assertEqual((rec["AccessKeyId"], rec["Action"]), ("V3Claimed", "ListKeys"))

        # Escaping: an Action with quotes and control characters stays one valid JSON line.
        r = self.srv.call('Bad"Action\\\n\x01')
        rec = self.record_of(r)
        self.assertEqual(rec["Action"], 'Bad"Action\\\n\x01')

    def test_no_secrets_in_the_file(self):
        plaintext = b"AUDIT-PLAINTEXT-3f9a1c"
        secret_value = "AUDIT-SECRET-VALUE-77e2"
        key = self.srv.create_key()
        enc = self.srv.ok("Encrypt", KeyId=key["KeyId"], Plaintext=b64(plaintext),
                          EncryptionContext=json.dumps({"ctx": "AUDIT-CONTEXT-VALUE"}))
        dec = self.srv.ok("Decrypt", CiphertextBlob=enc["CiphertextBlob"],
                          EncryptionContext=json.dumps({"ctx": "AUDIT-CONTEXT-VALUE"}))
        self.assertEqual(base64.b64decode(dec["Plaintext"]), plaintext)
        gdk = self.srv.ok("GenerateDataKey", KeyId=key["KeyId"])
        self.srv.ok("CreateSecret", SecretName="audited-secret", VersionId="v1",
                    SecretData=secret_value)
        got = self.srv.ok("GetSecretValue", SecretName="audited-secret")
        self.assertEqual(got["SecretData"], secret_value)
        # A failed signature: the server's StringToSign is in the response, never in the log.
        params = self.srv.signed_params("DescribeKey", {"KeyId": key["KeyId"]})
        signature = params["Signature"]
        params["Signature"] = "AAAA" + signature[4:]
        bad = self.srv.send_signed(params)
        self.assertEqual(bad.code, "SignatureDoesNotMatch")
        sts = bad.json["Message"].split("server string to sign is:")[1]
        good = self.srv.signed_params("ListKeys", {})
        ok = self.srv.send_signed(good)
        read_records(self.path, ok.json["RequestId"])
        read_records(self.path, bad.json["RequestId"])

        with open(self.path, "rb") as f:
            data = f.read()
        forbidden = {
            "plaintext": plaintext,
            "plaintext (Base64)": b64(plaintext).encode(),
            "ciphertext": enc["CiphertextBlob"].encode(),
            "data key (Base64)": gdk["Plaintext"].encode(),
            "data key": base64.b64decode(gdk["Plaintext"]),
            "secret value": secret_value.encode(),
            "encryption context value": b"AUDIT-CONTEXT-VALUE",
            "admin secret": self.srv.access_key_secret.encode(),
            "signature": signature.encode(),
            "good signature": good["Signature"].encode(),
            "StringToSign": sts.encode(),
            "nonce": good["SignatureNonce"].encode(),
        }
        for what, needle in forbidden.items():
            self.assertNotIn(needle, data, what)
        self.assertIn(b'"Action":"GetSecretValue"', data)
        self.assertIn(b'"Resource":"secret/audited-secret"', data)

    def test_file_mode(self):
        self.srv.call("ListKeys")
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_every_line_is_one_record(self):
        for _ in range(20):
            self.srv.call("ListKeys")
        r = self.srv.call("ListKeys")
        records = read_records(self.path, r.json["RequestId"])
        self.assertGreaterEqual(len(records), 21)
        for rec in records:
            self.assertEqual(set(rec), FIELDS)

    def test_sighup_reopens_after_rename(self):
        before = self.srv.call("ListKeys")
        read_records(self.path, before.json["RequestId"])
        rotated = self.path + ".1"
        os.rename(self.path, rotated)
        # Until the reopen, records go on into the renamed file: none is lost.
        between = self.srv.call("ListKeys")
        self.srv.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "audit: reopened" not in self.srv.stderr_text() and time.time() < deadline:
            time.sleep(0.05)
        after = self.srv.call("ListKeys")
        new_ids = [r["RequestId"] for r in read_records(self.path, after.json["RequestId"])]
        old_ids = [r["RequestId"] for r in read_records(rotated)]
        self.assertIn(after.json["RequestId"], new_ids)
        self.assertIn(before.json["RequestId"], old_ids)
        self.assertIn(between.json["RequestId"], old_ids + new_ids)
        self.assertNotIn(before.json["RequestId"], new_ids)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        self.assertEqual(self.srv.call("ListKeys").status, 200)


class AuditOffTest(unittest.TestCase):

    def test_disabled(self):
        with Server(config=DEFAULT_CONFIG + "[audit]\nenabled = false\n") as srv:
            self.assertEqual(srv.call("ListKeys").status, 200)
            time.sleep(1.2)
            self.assertFalse(os.path.exists(os.path.join(srv.data_dir, "audit.log")))
            self.assertEqual(srv.stop(), 0)

    def test_configured_path_and_unwritable_path(self):
        elsewhere = tempfile.mkdtemp(prefix="kmsd-audit-")
        self.addCleanup(shutil.rmtree, elsewhere, True)
        path = os.path.join(elsewhere, "elsewhere.log")
        with Server(config=DEFAULT_CONFIG + "[audit]\nfile = %s\n" % path) as srv:
            r = srv.call("ListKeys")
            self.assertIn(r.json["RequestId"], [x["RequestId"] for x in
                                                read_records(path, r.json["RequestId"])])
            self.assertEqual(srv.stop(), 0)
        # An audit file that cannot be opened stops kmsd from starting.
        srv = Server(config=DEFAULT_CONFIG + "[audit]\nfile = /nonexistent-dir/audit.log\n")
        with self.assertRaises(RuntimeError):
            srv.start()
        self.assertIn("audit: cannot open /nonexistent-dir/audit.log", srv.stderr_text())
        srv.stop()
        srv.__exit__(None, None, None)


if __name__ == "__main__":
    unittest.main()
