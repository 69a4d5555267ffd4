"""kms-sign (src/tools/kms_sign.c): the signed URL it prints works with curl (or, without curl,
with http.client), for GET and POST, and its usage errors exit with status 2."""

import http.client
import os
import shutil
import ssl
import subprocess
import urllib.parse
import json

from common import KmsTestCase
from kmsd import ADMIN_ID, ADMIN_SECRET, binary

CURL = shutil.which("curl")


def kms_sign_path():
    return os.environ.get("KMS_SIGN_BIN", os.path.join(os.path.dirname(binary()), "kms-sign"))


class KmsSignTest(KmsTestCase):

    def sign(self, *args, env=None, creds=True):
        e = {k: v for k, v in os.environ.items() if not k.startswith("KMS_ACCESS_KEY")}
        if creds:
            e.update(KMS_ACCESS_KEY_ID=ADMIN_ID, KMS_ACCESS_KEY_SECRET=ADMIN_SECRET)
        e.update(env or {})
        return subprocess.run([kms_sign_path()] + list(args), capture_output=True, text=True,
                              env=e, timeout=30)

    def endpoint(self):
        return "https://127.0.0.1:%d" % self.srv.port

    def fetch(self, url, method="GET"):
        """Sends the URL as curl would; returns (status, parsed JSON or text)."""
        if CURL:
            p = subprocess.run([CURL, "-sk", "-X", method, "-w", "\n%{http_code}", url],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            body, status = p.stdout.rsplit("\n", 1)
        else:
            u = urllib.parse.urlsplit(url)
            conn = http.client.HTTPSConnection(u.hostname, u.port, context=self.srv.ctx, timeout=30)
            conn.request(method, u.path + "?" + u.query)
            r = conn.getresponse()
            status, body = r.status, r.read().decode()
            conn.close()
        try:
            return int(status), json.loads(body)
        except ValueError:
            return int(status), body

    def test_get(self):
        p = self.sign("--endpoint", self.endpoint(), "Action=ListKeys", "PageSize=20")
        self.assertEqual(p.returncode, 0, p.stderr)
        url = p.stdout.strip()
        self.assertTrue(url.startswith(self.endpoint() + "/?"), url)
        self.assertNotIn(ADMIN_SECRET, p.stdout + p.stderr)
        status, body = self.fetch(url)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["PageSize"], 20)
        # The URL carries a nonce: used twice, it is a replay.
        status, body = self.fetch(url)
        self.assertEqual((status, body["Code"]), (400, "SignatureNonceUsed"))

    def test_post_and_special_characters(self):
        p = self.sign("--endpoint", self.endpoint(), "--method", "POST", "Action=CreateKey",
                      "Description=测试 key *~!'()&=+%", "KeySpec=Aliyun_SM4")
        self.assertEqual(p.returncode, 0, p.stderr)
        status, body = self.fetch(p.stdout.strip(), "POST")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["KeyMetadata"]["Description"], "测试 key *~!'()&=+%")
        self.assertEqual(body["KeyMetadata"]["KeySpec"], "Aliyun_SM4")
        # A GET-signed URL sent as POST does not verify.
        p = self.sign("--endpoint", self.endpoint(), "Action=DescribeRegions")
        status, body = self.fetch(p.stdout.strip(), "POST")
        self.assertEqual((status, body["Code"]), (400, "SignatureDoesNotMatch"))

    def test_flags_instead_of_environment(self):
        p = self.sign("--endpoint", "127.0.0.1:%d" % self.srv.port, "--access-key-id", ADMIN_ID,
                      "--access-key-secret", ADMIN_SECRET, "Action=DescribeRegions", "Format=XML",
                      creds=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        url = p.stdout.strip()
        self.assertTrue(url.startswith("https://127.0.0.1:%d/?" % self.srv.port))  # https assumed
        status, body = self.fetch(url)
        self.assertEqual(status, 200)
        self.assertIn("<KMS>", body)
        self.assertIn("<RegionId>cn-hangzhou</RegionId>", body)

    def test_usage_errors_exit_2(self):
        ep = ("--endpoint", self.endpoint())
        cases = [
            ((*ep, "Action=ListKeys"), {"creds": False}),                       # no credentials
            ((*ep, "Action=ListKeys"), {"creds": False, "env": {"KMS_ACCESS_KEY_ID": ADMIN_ID}}),
            ((*ep, "Action=ListKeys"), {"creds": False,
                                        "env": {"KMS_ACCESS_KEY_SECRET": ADMIN_SECRET}}),
            (("Action=ListKeys",), {}),                                          # no endpoint
            (ep, {}),                                                            # no parameters
            ((*ep, "ListKeys"), {}),                                             # not Name=Value
            ((*ep, "=x"), {}),
            ((*ep, "Action=ListKeys", "Signature=abc"), {}),
            ((*ep, "--method", "PUT", "Action=ListKeys"), {}),
            ((*ep, "Action=ListKeys", "PageSize=1", "PageSize=2"), {}),          # twice
            ((*ep, "--no-such-flag", "Action=ListKeys"), {}),
        ]
        for args, kw in cases:
            with self.subTest(args=args, **{k: str(v) for k, v in kw.items()}):
                p = self.sign(*args, **kw)
                self.assertEqual(p.returncode, 2, (p.stdout, p.stderr))
                self.assertEqual(p.stdout, "")
                self.assertIn("kms-sign", p.stderr)
                self.assertNotIn(ADMIN_SECRET, p.stderr)
        p = self.sign("--help", creds=False)
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage", p.stdout)


if __name__ == "__main__":
    import unittest
    unittest.main()
