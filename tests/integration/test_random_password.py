"""GetRandomPassword (spec/actions.md F1, algorithms.md §10): lengths, character classes,
exclusions, RequireEachIncludedType, and the errors for impossible requests."""

import collections
import string
import unittest

from kmsd import Server

PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
LOWER, UPPER, DIGITS = set(string.ascii_lowercase), set(string.ascii_uppercase), set(string.digits)
ALL = LOWER | UPPER | DIGITS | PUNCT


class RandomPasswordTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server().start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def pw(self, **params):
        r = self.srv.call("GetRandomPassword", **params)
        self.assertEqual(r.status, 200, r)
        p = r.json["RandomPassword"]
        self.assertTrue(set(p) <= ALL, p)
        return p

    def bad(self, **params):
        r = self.srv.call("GetRandomPassword", **params)
        self.assertEqual((r.status, r.code), (400, "InvalidParameter"), r)
        return r

    def test_lengths(self):
        self.assertEqual(len(self.pw()), 32)
        for n in (8, 9, 64, 127, 128):
            self.assertEqual(len(self.pw(PasswordLength=n)), n)
        for n in ("7", "129", "0", "-8", "abc", "32.5", " 32", "+32"):
            self.bad(PasswordLength=n)

    def test_random(self):
        seen = {self.pw() for _ in range(20)}
        self.assertEqual(len(seen), 20)

    def test_exclusions(self):
        for flag, cls in (("ExcludeLowercase", LOWER), ("ExcludeUppercase", UPPER), ("ExcludeNumbers", DIGITS),
                          ("ExcludePunctuation", PUNCT)):
            for _ in range(10):
                p = self.pw(PasswordLength=128, **{flag: "true"})
                self.assertFalse(set(p) & cls, (flag, p))
                # The classes that remain are all there (RequireEachIncludedType defaults to true).
                for other in (LOWER, UPPER, DIGITS, PUNCT):
                    if other is not cls:
                        self.assertTrue(set(p) & other, (flag, p))
        for _ in range(10):
            p = self.pw(PasswordLength=128, ExcludeCharacters="aeiouAEIOU01\"\\")
            self.assertFalse(set(p) & set("aeiouAEIOU01\"\\"), p)
        digits = self.pw(PasswordLength=20, ExcludeLowercase="true", ExcludeUppercase="true", ExcludePunctuation="true")
        self.assertRegex(digits, r"^[0-9]{20}$")
        # Non-ASCII characters in ExcludeCharacters exclude nothing and break nothing.
        self.assertEqual(len(self.pw(ExcludeCharacters="äö密")), 32)
        self.bad(ExcludeLowercase="yes")

    def test_require_each_included_type(self):
        for _ in range(40):
            p = self.pw(PasswordLength=8, RequireEachIncludedType="true")
            for cls in (LOWER, UPPER, DIGITS, PUNCT):
                self.assertTrue(set(p) & cls, p)
        for _ in range(40):
            p = self.pw(PasswordLength=8)
            for cls in (LOWER, UPPER, DIGITS, PUNCT):
                self.assertTrue(set(p) & cls, p)
        # Without the requirement, short passwords often miss a class (P(all four in 8) < 0.6).
        missing = 0
        for _ in range(150):
            p = self.pw(PasswordLength=8, RequireEachIncludedType="false")
            missing += any(not (set(p) & cls) for cls in (LOWER, UPPER, DIGITS, PUNCT))
        self.assertGreater(missing, 0)
        # A class wiped out by ExcludeCharacters is no longer "included": no error, and no digit.
        for _ in range(10):
            p = self.pw(PasswordLength=8, ExcludeCharacters=string.digits)
            self.assertFalse(set(p) & DIGITS)
            for cls in (LOWER, UPPER, PUNCT):
                self.assertTrue(set(p) & cls, p)
        self.bad(RequireEachIncludedType="1")

    def test_impossible_requests(self):
        self.bad(ExcludeLowercase="true", ExcludeUppercase="true", ExcludeNumbers="true", ExcludePunctuation="true")
        self.bad(ExcludeLowercase="true", ExcludeUppercase="true", ExcludePunctuation="true",
                 ExcludeCharacters=string.digits)
        self.bad(ExcludeCharacters="".join(sorted(ALL)))
        # A single character left: every position is that character.
        only = "".join(sorted(ALL - {"Q"}))
        self.assertEqual(self.pw(PasswordLength=16, ExcludeCharacters=only), "Q" * 16)

    def test_no_gross_bias(self):
        counts = collections.Counter()
        for _ in range(40):
            counts.update(self.pw(PasswordLength=128, ExcludeLowercase="true", ExcludeUppercase="true",
                                  ExcludePunctuation="true"))
        # 5120 digits, 512 expected each; a modulo bias or a broken shuffle shows far outside this.
        self.assertEqual(set(counts), DIGITS)
        for digit, n in counts.items():
            self.assertTrue(400 < n < 630, counts)


if __name__ == "__main__":
    unittest.main()
