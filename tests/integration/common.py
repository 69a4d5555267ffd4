"""Shared pieces of the integration tests: one kmsd per test class, error assertions by exact
Code and HTTP status (spec/protocol.md §10), and keys put into each state of
spec/key-states.md §1."""

import json
import re
import time
import unittest

from kmsd import DEFAULT_CONFIG, Server, b64

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ANY_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
JSON_TYPE = "application/json;charset=utf-8"
XML_TYPE = "text/xml;charset=utf-8"
REGION = "cn-hangzhou"
ACCOUNT = "1000000000000000"
DAY = 86400
STATES = ("Enabled", "Disabled", "PendingDeletion", "PendingImport")


def parse_time(text):
    return int(time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone)


def key_arn(key_id):
    return "acs:kms:%s:%s:key/%s" % (REGION, ACCOUNT, key_id)


class KmsTestCase(unittest.TestCase):
    """One kmsd for the whole class (starting one per test would make the suite slow)."""

    config = None  # extra config text appended to the harness default
    env = None

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(config=DEFAULT_CONFIG + (cls.config or ""), env=cls.env).start()

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        cls.srv.__exit__(None, None, None)
        if status != 0:
            raise AssertionError("kmsd exited with status %r" % status)

    # -- assertions ---------------------------------------------------------------------------
    def assertError(self, r, status, code, param=None):
        """r is an error with this HTTP status and Code, in the error body shape of §10.1."""
        self.assertEqual((r.status, r.code), (status, code), r)
        self.assertEqual(r.headers.get("Content-Type"), JSON_TYPE, r.headers)
        self.assertTrue(ANY_UUID_RE.match(r.json["RequestId"]), r)
        self.assertEqual(r.json["HttpStatus"], status)
        self.assertTrue(r.json["Message"], r)
        self.assertEqual(set(r.json), {"RequestId", "HostId", "Code", "Message", "HttpStatus"}, r)
        if param is not None:
            self.assertIn('"%s"' % param, r.json["Message"])
        return r

    def assertOk(self, r):
        self.assertEqual(r.status, 200, r)
        return r.json

    def assertFails(self, action, status, code, param=None, **params):
        return self.assertError(self.srv.call(action, **params), status, code, param)

    def ok(self, action, **params):
        return self.assertOk(self.srv.call(action, **params))

    # -- keys -------------------------------------------------------------------------------
    def create_key(self, **params):
        return self.ok("CreateKey", **params)["KeyMetadata"]

    def describe(self, key_id):
        return self.ok("DescribeKey", KeyId=key_id)["KeyMetadata"]

    def key_in(self, state, **params):
        """A new key in the given state (PendingImport: an EXTERNAL key without material)."""
        if state == "PendingImport":
            md = self.create_key(Origin="EXTERNAL", **params)
            self.assertEqual(md["KeyState"], "PendingImport")
            return md["KeyId"]
        key_id = self.create_key(**params)["KeyId"]
        if state == "Disabled":
            self.ok("DisableKey", KeyId=key_id)
        elif state == "PendingDeletion":
            self.ok("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=7)
        self.assertEqual(self.describe(key_id)["KeyState"], state)
        return key_id

    def encrypt(self, key_id, data=b"hello", **params):
        return self.ok("Encrypt", KeyId=key_id, Plaintext=b64(data), **params)


def tags_json(pairs):
    return json.dumps([{"TagKey": k, "TagValue": v} for k, v in pairs])
