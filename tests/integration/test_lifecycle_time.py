"""Timed work on the test clock (kmsd-test's KmsdTestAdvanceClock): keys destroyed after their
DeleteDate (key-states.md §2), keys not yet due left alone, automatic rotation, and the request
timestamp check staying on the real clock; keys past their DeleteDate hidden from every listing
before the pass that destroys them."""

import json
import os
import sqlite3

from common import DAY, KmsTestCase, parse_time, tags_json
from kmsd import b64, timestamp, unb64


class DeletionTest(KmsTestCase):

    def test_key_destroyed_after_delete_date(self):
        doomed = self.create_key(Description="doomed", Tags=tags_json([("t", "v")]))["KeyId"]
        kept = self.create_key(Description="kept")["KeyId"]
        later = self.create_key(Description="later")["KeyId"]
        self.ok("CreateAlias", AliasName="alias/doomed", KeyId=doomed)
        self.ok("CreateAlias", AliasName="alias/kept", KeyId=kept)
        blob = self.encrypt(doomed, b"old secret")["CiphertextBlob"]
        kept_blob = self.encrypt(kept, b"kept secret")["CiphertextBlob"]
        self.ok("ScheduleKeyDeletion", KeyId=doomed, PendingWindowInDays=7)
        self.ok("ScheduleKeyDeletion", KeyId=later, PendingWindowInDays=30)
        delete_at = parse_time(self.describe(doomed)["DeleteDate"])

        # A day before DeleteDate: nothing happens.
        now = parse_time(self.srv.advance_clock(6 * DAY)["Now"])
        self.assertLess(now, delete_at)
        self.assertEqual(self.describe(doomed)["KeyState"], "PendingDeletion")
        self.assertEqual(self.describe("alias/doomed")["KeyId"], doomed)

        # Past it: the key, its versions, aliases and tags are gone.
        now = parse_time(self.srv.advance_clock(DAY + 60)["Now"])
        self.assertGreater(now, delete_at)
        self.assertFails("DescribeKey", 404, "Forbidden.KeyNotFound", KeyId=doomed)
        self.assertFails("DescribeKey", 404, "Forbidden.AliasNotFound", KeyId="alias/doomed")
        listed = [k["KeyId"] for k in self.ok("ListKeys", PageSize=100)["Keys"]["Key"]]
        self.assertNotIn(doomed, listed)
        self.assertEqual(sorted(listed), sorted([kept, later]))
        aliases = [a["AliasName"] for a in self.ok("ListAliases", PageSize=100)["Aliases"]["Alias"]]
        self.assertEqual(aliases, ["alias/kept"])
        self.assertFails("Decrypt", 404, "Forbidden.KeyNotFound", CiphertextBlob=blob)
        for action in ("EnableKey", "CancelKeyDeletion", "ListResourceTags", "ListAliasesByKeyId"):
            self.assertFails(action, 404, "Forbidden.KeyNotFound", KeyId=doomed)
        self.assertFails("Encrypt", 404, "Forbidden.KeyNotFound", KeyId=doomed, Plaintext=b64(b"x"))
        self.assertFails("TagResource", 404, "Forbidden.KeyNotFound", KeyId=doomed,
                         Tags=tags_json([("a", "b")]))
        db = sqlite3.connect(os.path.join(self.srv.data_dir, "kmsd.db"))
        try:
            for table, column in (("keys", "key_id"), ("key_versions", "key_id"),
                                  ("aliases", "key_id"), ("tags", "resource_id")):
                n = db.execute("SELECT count(*) FROM %s WHERE %s = ?" % (table, column),
                               (doomed,)).fetchone()[0]
                self.assertEqual(n, 0, table)
        finally:
            db.close()

        # The alias name is free again; the other keys are untouched.
        self.ok("CreateAlias", AliasName="alias/doomed", KeyId=kept)
        self.assertEqual(unb64(self.ok("Decrypt", CiphertextBlob=kept_blob)["Plaintext"]), b"kept secret")
        md = self.describe(later)
        self.assertEqual(md["KeyState"], "PendingDeletion")
        self.ok("CancelKeyDeletion", KeyId=later)
        self.assertEqual(self.describe(later)["KeyState"], "Enabled")

        # The real clock, not the test clock, still decides the request timestamp window.
        offset = now - parse_time(timestamp())
        self.assertGreater(offset, 6 * DAY)
        self.assertFails("DescribeRegions", 400, "IllegalTimestamp", Timestamp=timestamp(offset))
        self.ok("DescribeRegions")


class PastDeleteDateTest(KmsTestCase):
    """Between a key's DeleteDate and the maintenance pass that destroys it (made rare here, so the
    test sees that window), the key is already gone to every request: DescribeKey, ListKeys with and
    without Filters (TotalCount too), ListAliases and ListAliasesByKeyId."""
    config = "[maintenance]\ninterval = 86400\n"

    def listed_keys(self, **params):
        r = self.ok("ListKeys", PageSize=100, **params)
        ids = [k["KeyId"] for k in r["Keys"]["Key"]]
        self.assertEqual(r["TotalCount"], len(ids))
        return ids

    def test_gone_before_the_sweep(self):
        doomed = self.create_key(Description="doomed")["KeyId"]
        kept = self.create_key(Description="kept")["KeyId"]
        later = self.create_key(Description="later")["KeyId"]
        self.ok("CreateAlias", AliasName="alias/past-doomed", KeyId=doomed)
        self.ok("CreateAlias", AliasName="alias/past-kept", KeyId=kept)
        self.ok("ScheduleKeyDeletion", KeyId=doomed, PendingWindowInDays=7)
        self.ok("ScheduleKeyDeletion", KeyId=later, PendingWindowInDays=30)
        pending = json.dumps([{"Key": "KeyState", "Values": ["PendingDeletion"]}])
        self.assertEqual(sorted(self.listed_keys(Filters=pending)), sorted([doomed, later]))

        self.srv.advance_clock(7 * DAY + 60, maintenance=False)
        self.assertFails("DescribeKey", 404, "Forbidden.KeyNotFound", KeyId=doomed)
        listed = self.listed_keys()
        self.assertIn(kept, listed)
        self.assertIn(later, listed)
        self.assertNotIn(doomed, listed)
        self.assertEqual(self.listed_keys(Filters=pending), [later])
        by_id = json.dumps([{"Key": "keyId", "Values": [doomed, kept]}])
        self.assertEqual(self.listed_keys(Filters=by_id), [kept])
        r = self.ok("ListAliases", PageSize=100)
        aliases = [a["AliasName"] for a in r["Aliases"]["Alias"]]
        self.assertIn("alias/past-kept", aliases)
        self.assertNotIn("alias/past-doomed", aliases)
        self.assertEqual(r["TotalCount"], len(aliases))
        self.assertFails("ListAliasesByKeyId", 404, "Forbidden.KeyNotFound", KeyId=doomed)
        # Still in the store until the sweep; the sweep then removes what the API already hid.
        db = sqlite3.connect(os.path.join(self.srv.data_dir, "kmsd.db"))
        try:
            self.assertEqual(db.execute("SELECT count(*) FROM keys WHERE key_id = ?",
                                        (doomed,)).fetchone()[0], 1)
        finally:
            db.close()
        self.srv.advance_clock(0)
        self.assertNotIn(doomed, self.listed_keys())


class RotationTest(KmsTestCase):

    def test_automatic_rotation(self):
        md = self.create_key(EnableAutomaticRotation="true", RotationInterval="7d")
        k, first = md["KeyId"], md["PrimaryKeyVersion"]
        blob = self.encrypt(k, b"before rotation")["CiphertextBlob"]
        self.srv.advance_clock(6 * DAY)
        self.assertEqual(self.describe(k)["PrimaryKeyVersion"], first)
        now = parse_time(self.srv.advance_clock(DAY + 60)["Now"])
        md = self.describe(k)
        self.assertNotEqual(md["PrimaryKeyVersion"], first)
        self.assertEqual(parse_time(md["LastRotationDate"]), now)
        self.assertEqual(parse_time(md["NextRotationDate"]), now + 7 * DAY)
        r = self.encrypt(k, b"after")
        self.assertEqual(r["KeyVersionId"], md["PrimaryKeyVersion"])
        # The old version still decrypts what it encrypted.
        d = self.ok("Decrypt", CiphertextBlob=blob)
        self.assertEqual((unb64(d["Plaintext"]), d["KeyVersionId"]), (b"before rotation", first))

    def test_rotation_suspended_while_disabled(self):
        md = self.create_key(EnableAutomaticRotation="true", RotationInterval="7d")
        k, first = md["KeyId"], md["PrimaryKeyVersion"]
        self.ok("DisableKey", KeyId=k)
        self.assertEqual(self.describe(k)["AutomaticRotation"], "Suspended")
        self.srv.advance_clock(8 * DAY)
        self.assertEqual(self.describe(k)["PrimaryKeyVersion"], first)
        self.ok("EnableKey", KeyId=k)
        self.assertEqual(self.describe(k)["AutomaticRotation"], "Enabled")


if __name__ == "__main__":
    import unittest
    unittest.main()
