"""GenerateRandom (extension, spec/actions.md F2): Length 1-1024 bytes of Base64 random data from
the key store's generator (the HSM's when one is configured); Length out of range, malformed or
missing is refused. The HSM class runs against a SoftHSM2 token (skipped without SoftHSM2).
"""

import collections
import os
import shutil
import tempfile
import unittest

from common import KmsTestCase
from kmsd import Server, unb64
from test_hsm import make_token, pkcs11_config


class GenerateRandomTest(KmsTestCase):
    def random(self, length):
        r = self.ok("GenerateRandom", Length=length)
        self.assertEqual(set(r), {"RequestId", "Random"})
        data = unb64(r["Random"])
        self.assertEqual(len(data), int(length))
        return data

    def test_lengths(self):
        for length in (1, 2, 3, 16, 32, 255, 1000, 1024):
            with self.subTest(length=length):
                self.random(length)

    def test_output_looks_random(self):
        seen = {self.random(32) for _ in range(20)}
        self.assertEqual(len(seen), 20)
        # 64 KiB of output: every byte value shows up, none wildly more often than expected (256).
        counts = collections.Counter(b"".join(self.random(1024) for _ in range(64)))
        self.assertEqual(len(counts), 256)
        self.assertLess(max(counts.values()), 400)
        self.assertGreater(min(counts.values()), 140)

    def test_bad_length(self):
        self.assertFails("GenerateRandom", 400, "MissingParameter", "Length")
        for length in ("0", "1025", "-1", "abc", "1.5", " 8", "+8", "0x10", "99999999999999999999"):
            with self.subTest(length=length):
                self.assertFails("GenerateRandom", 400, "InvalidParameter", "Length",
                                 Length=length)

    def test_v3_signature(self):
        r = self.srv.call_v3("GenerateRandom", Length=48)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(unb64(r.json["Random"])), 48)


class HsmGenerateRandomTest(unittest.TestCase):
    LABEL = "kmsd-rand"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kmsd-hsm-rand-")
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

    def test_random_from_the_token(self):
        outputs = set()
        for length in (1, 64, 1024):
            r = self.srv.call("GenerateRandom", Length=length)
            self.assertEqual(r.status, 200, r)
            data = unb64(r.json["Random"])
            self.assertEqual(len(data), length)
            outputs.add(data)
        self.assertEqual(len(outputs), 3)
        r = self.srv.call("GenerateRandom", Length=1025)
        self.assertEqual((r.status, r.code), (400, "InvalidParameter"), r)


if __name__ == "__main__":
    unittest.main()
