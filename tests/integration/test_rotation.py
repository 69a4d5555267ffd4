"""Automatic rotation (spec/key-states.md §6.1) driven by the test clock, no sleeps: due keys get a
new primary version, one rotation per due pass; Disabled and PendingDeletion keys are suspended and
rotate at once when Enabled again; ciphertexts of every version (manual and automatic rotations)
keep decrypting, also after a restart; EXTERNAL keys never rotate."""

import calendar
import time
import unittest

from kmsd import DEFAULT_CONFIG, Server, b64, unb64

DAY = 86400
WEEK = 7 * DAY
# The background thread would otherwise run passes of its own between the tests' clock moves.
QUIET_CONFIG = DEFAULT_CONFIG + "[maintenance]\ninterval = 86400\n"


def parse_time(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def interval_seconds(md):
    return int(md["RotationInterval"].rstrip("s"))


class RotationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(config=QUIET_CONFIG).start()

    @classmethod
    def tearDownClass(cls):
        # A clean exit matters: sanitizer builds report leaks and errors through the status.
        status = cls.srv.stop()
        log = cls.srv.stderr_text()
        cls.srv.__exit__(None, None, None)
        if status != 0:
            raise AssertionError("kmsd exited with status %s:\n%s" % (status, log[-4000:]))

    def describe(self, key_id):
        return self.srv.ok("DescribeKey", KeyId=key_id)["KeyMetadata"]

    def version_ids(self, key_id):
        r = self.srv.ok("ListKeyVersions", KeyId=key_id, PageSize=100)
        self.assertEqual(r["TotalCount"], len(r["KeyVersions"]["KeyVersion"]))
        return [v["KeyVersionId"] for v in r["KeyVersions"]["KeyVersion"]]

    def advance(self, seconds):
        return parse_time(self.srv.advance_clock(seconds)["Now"])

    def seal(self, key_id, data):
        r = self.srv.ok("Encrypt", KeyId=key_id, Plaintext=b64(data), EncryptionContext='{"app":"rot"}')
        self.assertEqual(r["KeyVersionId"], self.describe(key_id)["PrimaryKeyVersion"],
                         "Encrypt uses the primary version")
        return r["CiphertextBlob"], r["KeyVersionId"], data

    def assert_opens(self, sealed):
        for blob, version_id, data in sealed:
            r = self.srv.ok("Decrypt", CiphertextBlob=blob, EncryptionContext='{"app":"rot"}')
            self.assertEqual((unb64(r["Plaintext"]), r["KeyVersionId"]), (data, version_id))

    def assert_rotated_at(self, md, now):
        """md was rotated by the pass that ran at now (give or take the request's own second)."""
        last = parse_time(md["LastRotationDate"])
        self.assertLessEqual(abs(last - now), 5)
        self.assertEqual(parse_time(md["NextRotationDate"]), last + interval_seconds(md))

    def test_rotation_by_the_clock(self):
        md = self.srv.create_key()
        key_id, v1 = md["KeyId"], md["PrimaryKeyVersion"]
        sealed = [self.seal(key_id, b"before any rotation")]
        self.srv.ok("UpdateRotationPolicy", KeyId=key_id, EnableAutomaticRotation="true", RotationInterval="7d")
        created = parse_time(md["CreationDate"])
        # Not yet due: a minute short of the interval (the test takes far less than that).
        self.advance(WEEK - 60)
        self.assertEqual(self.version_ids(key_id), [v1])
        now = self.advance(61)
        ids = self.version_ids(key_id)
        self.assertEqual(len(ids), 2)
        after = self.describe(key_id)
        self.assertEqual(after["PrimaryKeyVersion"], ids[1])
        self.assertNotEqual(ids[1], v1)
        self.assertGreater(parse_time(after["LastRotationDate"]), created)
        self.assert_rotated_at(after, now)
        self.assertEqual(after["AutomaticRotation"], "Enabled")
        self.assertEqual(after["RotationInterval"], "604800s")
        kv = self.srv.ok("DescribeKeyVersion", KeyId=key_id, KeyVersionId=ids[1])["KeyVersion"]
        self.assertEqual(kv["CreationDate"], after["LastRotationDate"])
        sealed.append(self.seal(key_id, b"after the first rotation"))
        self.assertEqual(sealed[-1][1], ids[1])

        # Each pass that finds the key due rotates it once.
        for i in range(3):
            now = self.advance(WEEK + 1)
            self.assertEqual(len(self.version_ids(key_id)), 3 + i)
            self.assert_rotated_at(self.describe(key_id), now)
            sealed.append(self.seal(key_id, b"rotation %d" % i))
        # A pass long overdue still rotates only once, and schedules from now.
        now = self.advance(5 * WEEK)
        self.assertEqual(len(self.version_ids(key_id)), 6)
        self.assert_rotated_at(self.describe(key_id), now)
        self.advance(0)
        self.assertEqual(len(self.version_ids(key_id)), 6, "not due again on the next pass")
        # Manual rotation in between, and it restarts the schedule.
        self.advance(3 * DAY)
        kv = self.srv.ok("CreateKeyVersion", KeyId=key_id)["KeyVersion"]
        sealed.append(self.seal(key_id, b"manual rotation"))
        self.assertEqual(sealed[-1][1], kv["KeyVersionId"])
        self.advance(5 * DAY)
        self.assertEqual(len(self.version_ids(key_id)), 7, "manual rotation pushed the next date out")
        self.advance(2 * DAY + 1)
        self.assertEqual(len(self.version_ids(key_id)), 8)
        sealed.append(self.seal(key_id, b"last"))

        self.assertEqual(len({v for _, v, _ in sealed}), len(sealed), "every ciphertext has its own version")
        self.assert_opens(sealed)
        self.assertEqual(self.srv.stop(), 0)
        self.srv.start()
        self.assert_opens(sealed)
        self.assertEqual(self.describe(key_id)["PrimaryKeyVersion"], sealed[-1][1])

    def test_every_symmetric_spec_rotates(self):
        for spec in ("Aliyun_AES_256", "Aliyun_AES_128", "Aliyun_SM4"):
            with self.subTest(spec=spec):
                md = self.srv.create_key(KeySpec=spec, EnableAutomaticRotation="true", RotationInterval="7d")
                key_id = md["KeyId"]
                sealed = [self.seal(key_id, b"spec " + spec.encode())]
                self.advance(WEEK + 1)
                after = self.describe(key_id)
                self.assertNotEqual(after["PrimaryKeyVersion"], md["PrimaryKeyVersion"])
                self.assertEqual(after["KeySpec"], spec)
                sealed.append(self.seal(key_id, b"rotated " + spec.encode()))
                self.assert_opens(sealed)

    def test_suspended_while_disabled(self):
        md = self.srv.create_key(EnableAutomaticRotation="true", RotationInterval="7d")
        key_id = md["KeyId"]
        sealed = [self.seal(key_id, b"before disable")]
        self.srv.ok("DisableKey", KeyId=key_id)
        suspended = self.describe(key_id)
        self.assertEqual(suspended["AutomaticRotation"], "Suspended")
        self.assertEqual(suspended["RotationInterval"], "604800s")
        self.assertEqual(suspended["NextRotationDate"], md["NextRotationDate"])
        self.advance(WEEK + DAY)
        self.advance(WEEK)
        self.assertEqual(len(self.version_ids(key_id)), 1, "no rotation while Disabled")
        self.assertEqual(self.describe(key_id)["NextRotationDate"], md["NextRotationDate"])
        # Enabled again with the date long past: the next pass rotates, once.
        self.srv.ok("EnableKey", KeyId=key_id)
        now = self.advance(0)
        self.assertEqual(len(self.version_ids(key_id)), 2)
        after = self.describe(key_id)
        self.assertEqual(after["AutomaticRotation"], "Enabled")
        self.assert_rotated_at(after, now)
        self.advance(DAY)
        self.assertEqual(len(self.version_ids(key_id)), 2)
        sealed.append(self.seal(key_id, b"after enable"))
        self.assert_opens(sealed)

    def test_never_while_pending_deletion(self):
        md = self.srv.create_key(EnableAutomaticRotation="true", RotationInterval="7d")
        key_id = md["KeyId"]
        self.srv.ok("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=30)
        self.assertEqual(self.describe(key_id)["AutomaticRotation"], "Suspended")
        self.advance(WEEK + 1)
        self.advance(WEEK)
        self.assertEqual(len(self.version_ids(key_id)), 1, "no rotation while PendingDeletion")
        self.srv.ok("CancelKeyDeletion", KeyId=key_id)
        now = self.advance(0)
        self.assertEqual(len(self.version_ids(key_id)), 2)
        self.assert_rotated_at(self.describe(key_id), now)
        # A key that stays pending is destroyed at its DeleteDate, never rotated before.
        doomed = self.srv.create_key(EnableAutomaticRotation="true", RotationInterval="7d")["KeyId"]
        self.srv.ok("ScheduleKeyDeletion", KeyId=doomed, PendingWindowInDays=8)
        self.advance(WEEK + 1)
        self.assertEqual(len(self.version_ids(doomed)), 1)
        self.advance(DAY)
        r = self.srv.call("ListKeyVersions", KeyId=doomed)
        self.assertEqual((r.status, r.code), (404, "Forbidden.KeyNotFound"), r)

    def test_enabling_policy_on_an_old_key_rotates_promptly(self):
        md = self.srv.create_key()
        key_id = md["KeyId"]
        self.advance(10 * DAY)
        self.assertEqual(len(self.version_ids(key_id)), 1, "rotation is off by default")
        self.srv.ok("UpdateRotationPolicy", KeyId=key_id, EnableAutomaticRotation="true", RotationInterval="7d")
        # NextRotationDate = LastRotationDate + interval is already past: the next pass rotates
        # (the request also wakes the background thread, which may get there first).
        now = self.advance(0)
        self.assertEqual(len(self.version_ids(key_id)), 2)
        after = self.describe(key_id)
        self.assertLessEqual(parse_time(after["LastRotationDate"]), now)
        self.assertGreater(parse_time(after["LastRotationDate"]), parse_time(md["CreationDate"]) + WEEK)

    def test_disabling_policy_stops_rotation(self):
        key_id = self.srv.create_key(EnableAutomaticRotation="true", RotationInterval="7d")["KeyId"]
        self.srv.ok("UpdateRotationPolicy", KeyId=key_id, EnableAutomaticRotation="false")
        self.advance(WEEK + 1)
        self.advance(WEEK + 1)
        self.assertEqual(len(self.version_ids(key_id)), 1)
        self.assertEqual(self.describe(key_id)["AutomaticRotation"], "Disabled")

    def test_external_key_never_rotates(self):
        md = self.srv.create_key(Origin="EXTERNAL")
        r = self.srv.call("UpdateRotationPolicy", KeyId=md["KeyId"], EnableAutomaticRotation="true",
                          RotationInterval="7d")
        self.assertEqual((r.status, r.code), (400, "Unsupported.Origin"), r)
        r = self.srv.call("CreateKey", Origin="EXTERNAL", EnableAutomaticRotation="true", RotationInterval="7d")
        self.assertEqual((r.status, r.code), (400, "Unsupported.Origin"), r)
        self.advance(WEEK + 1)
        self.assertEqual(len(self.version_ids(md["KeyId"])), 1)
        self.assertEqual(self.describe(md["KeyId"])["AutomaticRotation"], "Disabled")


if __name__ == "__main__":
    unittest.main()
