"""Batch tag actions (spec/actions.md G4-G6): TagResources, UntagResources, ListTagResources for
keys and secrets, with flattened ResourceId.N / Tag.N.Key / TagKey.N parameters, all-or-nothing
validation and NextToken paging."""

import base64
import json
import unittest

from kmsd import Server

REGION = "cn-hangzhou"
ACCOUNT = "1000000000000000"
DAY = 86400


def flat(ids=(), tags=(), keys=()):
    p = {}
    for i, rid in enumerate(ids, 1):
        p["ResourceId.%d" % i] = rid
    for i, tag in enumerate(tags, 1):
        p["Tag.%d.Key" % i] = tag[0]
        if len(tag) > 1 and tag[1] is not None:
            p["Tag.%d.Value" % i] = tag[1]
    for i, k in enumerate(keys, 1):
        p["TagKey.%d" % i] = k
    return p


class TagBatchTest(unittest.TestCase):
    counter = 0

    @classmethod
    def setUpClass(cls):
        cls.srv = Server().start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def secret(self):
        TagBatchTest.counter += 1
        name = "batch-%s-%d" % (self._testMethodName[-16:].strip("_"), TagBatchTest.counter)
        self.srv.ok("CreateSecret", SecretName=name, VersionId="v1", SecretData="x")
        return name

    def key(self):
        return self.srv.create_key()["KeyId"]

    def call(self, action, rtype, region=REGION, **params):
        if region is not None:
            params["RegionId"] = region
        if rtype is not None:
            params["ResourceType"] = rtype
        return self.srv.call(action, **params)

    def ok(self, action, rtype, **params):
        r = self.call(action, rtype, **params)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json) - {"RequestId", "NextToken", "TagResources"}, set())
        return r.json

    def fails(self, status, code, action, rtype, **params):
        r = self.call(action, rtype, **params)
        self.assertEqual((r.status, r.code), (status, code), "%s %r -> %r" % (action, params, r))
        return r

    def key_tags(self, key_id):
        r = self.srv.ok("ListResourceTags", KeyId=key_id)
        return {t["TagKey"]: t["TagValue"] for t in r["Tags"]["Tag"]}

    def secret_tags(self, name):
        r = self.srv.ok("DescribeSecret", SecretName=name, FetchTags="true")
        return {t["TagKey"]: t["TagValue"] for t in r["Tags"]["Tag"]}

    def listed(self, rtype, **params):
        rows = []
        token = None
        while True:
            extra = dict(params)
            if token:
                extra["NextToken"] = token
            r = self.ok("ListTagResources", rtype, **extra)
            page = r["TagResources"]["TagResource"]
            self.assertLessEqual(len(page), 200)
            rows += [(t["ResourceId"], t["ResourceType"], t["TagKey"], t["TagValue"]) for t in page]
            token = r["NextToken"]
            if token == "":
                return rows

    def test_tag_keys_and_secrets(self):
        k1, k2 = self.key(), self.key()
        self.ok("TagResources", "key", **flat([k1, "acs:kms:%s:%s:key/%s" % (REGION, ACCOUNT, k2)],
                                                [("env", "prod"), ("team", None)]))
        self.assertEqual(self.key_tags(k1), {"env": "prod", "team": ""})
        self.assertEqual(self.key_tags(k2), {"env": "prod", "team": ""})
        s1, s2 = self.secret(), self.secret()
        self.ok("TagResources", "secret", **flat([s1, "acs:kms:%s:%s:secret/%s" % (REGION, ACCOUNT, s2)],
                                                   [("app", "web")]))
        self.assertEqual(self.secret_tags(s1), {"app": "web"})
        self.assertEqual(self.secret_tags(s2), {"app": "web"})
        # An explicitly empty value is the empty value.
        self.ok("TagResources", "key", **{"ResourceId.1": k1, "Tag.1.Key": "blank", "Tag.1.Value": ""})
        self.assertEqual(self.key_tags(k1), {"env": "prod", "team": "", "blank": ""})
        # Overwrites, and duplicate resources collapse.
        self.ok("TagResources", "secret", **flat([s1, s1], [("app", "api")]))
        self.assertEqual(self.secret_tags(s1), {"app": "api"})

    def test_parameter_errors(self):
        k = self.key()
        self.fails(400, "MissingParameter", "TagResources", "key", region=None, **flat([k], [("a", "b")]))
        self.fails(400, "InvalidParameter", "TagResources", "key", region="cn-beijing", **flat([k], [("a", "b")]))
        self.fails(400, "MissingParameter", "TagResources", None, **flat([k], [("a", "b")]))
        self.fails(400, "InvalidParameter", "TagResources", "certificate", **flat([k], [("a", "b")]))
        self.fails(400, "InvalidParameter", "TagResources", "Key", **flat([k], [("a", "b")]))
        self.fails(400, "MissingParameter", "TagResources", "key", **flat([], [("a", "b")]))
        self.fails(400, "MissingParameter", "TagResources", "key", **flat([k]))
        self.fails(400, "InvalidParameter", "TagResources", "key", **flat([k] * 51, [("a", "b")]))
        self.fails(400, "InvalidParameter", "TagResources", "key", **flat([k], [("k%d" % i, "v") for i in range(21)]))
        self.fails(400, "MissingParameter", "TagResources", "key", **{"ResourceId.1": k, "ResourceId.3": k,
                                                                      "Tag.1.Key": "a"})
        self.fails(400, "InvalidParameter", "TagResources", "key", **{"ResourceId.01": k, "Tag.1.Key": "a"})
        self.fails(400, "MissingParameter", "TagResources", "key", **{"ResourceId.1": k, "Tag.1.Key": "a",
                                                                      "Tag.2.Value": "b"})
        self.fails(400, "InvalidParameter", "TagResources", "key", **flat([k], [("aliyun-x", "v")]))
        self.fails(400, "InvalidParameter", "TagResources", "key", **flat([k], [("bad key", "v")]))
        self.fails(400, "InvalidParameter", "TagResources", "key", **flat([k], [("a", "v" * 257)]))
        self.fails(400, "InvalidParameter", "TagResources", "key", **flat([k], [("a", "1"), ("a", "2")]))
        self.fails(400, "Unsupported.Alias", "TagResources", "key", **flat(["alias/x"], [("a", "b")]))
        self.assertEqual(self.key_tags(k), {})

    def test_all_or_nothing(self):
        k = self.key()
        self.fails(404, "Forbidden.KeyNotFound", "TagResources", "key",
                   **flat([k, "00000000-0000-4000-8000-000000000000"], [("a", "b")]))
        self.assertEqual(self.key_tags(k), {})
        s, pending = self.secret(), self.secret()
        self.srv.ok("DeleteSecret", SecretName=pending, RecoveryWindowInDays=7)
        self.fails(409, "Rejected.ResourceInDeleteWindow", "TagResources", "secret", **flat([s, pending], [("a", "b")]))
        self.fails(404, "Forbidden.ResourceNotFound", "TagResources", "secret", **flat([s, "no-such"], [("a", "b")]))
        self.assertEqual(self.secret_tags(s), {})
        # The limit is checked on every resource before anything is written.
        full = self.secret()
        self.srv.ok("TagResource", SecretName=full, Tags=json.dumps([{"TagKey": "t%d" % i, "TagValue": "v"} for i in range(9)]))
        self.fails(400, "Rejected.LimitExceeded", "TagResources", "secret", **flat([s, full], [("x", "1"), ("y", "2")]))
        self.assertEqual(self.secret_tags(s), {})
        self.assertEqual(len(self.secret_tags(full)), 9)
        # Overwriting an existing key does not count against the limit.
        self.ok("TagResources", "secret", **flat([full], [("t0", "new"), ("x", "1")]))
        self.assertEqual(len(self.secret_tags(full)), 10)

    def test_service_key_is_not_taggable(self):
        name = self.secret()
        service_key = self.srv.ok("DescribeSecret", SecretName=name)["EncryptionKeyId"]
        self.fails(404, "Forbidden.KeyNotFound", "TagResources", "key", **flat([service_key], [("a", "b")]))
        self.fails(404, "Forbidden.KeyNotFound", "UntagResources", "key", All="true", **flat([service_key]))
        self.fails(404, "Forbidden.KeyNotFound", "ListTagResources", "key", **flat([service_key]))

    def test_untag_resources(self):
        k1, k2 = self.key(), self.key()
        self.ok("TagResources", "key", **flat([k1, k2], [("a", "1"), ("b", "2"), ("c", "3")]))
        self.ok("UntagResources", "key", **flat([k1, k2], keys=["a", "missing"]))
        self.assertEqual(self.key_tags(k1), {"b": "2", "c": "3"})
        # All only counts without TagKey.N.
        self.ok("UntagResources", "key", All="true", **flat([k1], keys=["b"]))
        self.assertEqual(self.key_tags(k1), {"c": "3"})
        self.ok("UntagResources", "key", All="true", **flat([k1, k2]))
        self.assertEqual((self.key_tags(k1), self.key_tags(k2)), ({}, {}))
        self.fails(400, "MissingParameter", "UntagResources", "key", **flat([k1]))
        self.fails(400, "MissingParameter", "UntagResources", "key", All="false", **flat([k1]))
        self.fails(400, "InvalidParameter", "UntagResources", "key", All="maybe", **flat([k1]))
        self.fails(400, "MissingParameter", "UntagResources", "key", All="true")
        self.fails(400, "InvalidParameter", "UntagResources", "key", **flat([k1], keys=["k" * 129]))
        self.fails(400, "InvalidParameter", "UntagResources", "key", **flat([k1], keys=["k%d" % i for i in range(21)]))
        self.fails(400, "InvalidParameter", "UntagResources", "key", region="cn-beijing", **flat([k1], keys=["c"]))
        s = self.secret()
        self.ok("TagResources", "secret", **flat([s], [("a", "1"), ("b", "2")]))
        self.fails(404, "Forbidden.ResourceNotFound", "UntagResources", "secret", **flat([s, "no-such"], keys=["a"]))
        self.assertEqual(self.secret_tags(s), {"a": "1", "b": "2"})
        self.ok("UntagResources", "secret", **flat([s], keys=["a"]))
        self.assertEqual(self.secret_tags(s), {"b": "2"})

    def test_list_tag_resources(self):
        k1, k2, k3 = self.key(), self.key(), self.key()
        self.ok("TagResources", "key", **flat([k1, k2], [("env", "prod"), ("owner", "ann")]))
        self.ok("TagResources", "key", **flat([k3], [("env", "dev")]))
        rows = self.listed("key", **flat([k1]))
        self.assertEqual(rows, [(k1, "key", "env", "prod"), (k1, "key", "owner", "ann")])
        # A resource matches when it has every given tag (a value-less tag matches any value);
        # its rows are all its tags.
        got = self.listed("key", **flat(tags=[("env", "prod")]))
        self.assertEqual(sorted(r[0] for r in got if r[2] == "env"), sorted([k1, k2]))
        self.assertEqual({r[0] for r in self.listed("key", **flat(tags=[("env",)]))} >= {k1, k2, k3}, True)
        self.assertEqual({r[0] for r in self.listed("key", **flat([k1, k3], [("env",)]))}, {k1, k3})
        self.assertEqual({r[0] for r in self.listed("key", **{"ResourceId.1": k1, "ResourceId.2": k3,
                                                              "Tag.1.Key": "env", "Tag.1.Value": ""})}, {k1, k3})
        self.assertEqual(self.listed("key", **flat([k3], [("env", "prod")])), [])
        self.assertEqual(self.listed("key", **flat(tags=[("env", "prod"), ("owner", "bob")])), [])
        self.fails(400, "MissingParameter", "ListTagResources", "key")
        self.fails(404, "Forbidden.KeyNotFound", "ListTagResources", "key", **flat(["nope"]))
        self.fails(400, "InvalidParameter", "ListTagResources", "key", NextToken="!!", **flat([k1]))
        self.fails(400, "InvalidParameter", "ListTagResources", "key",
                   NextToken=base64.b64encode(b"no-separator").decode(), **flat([k1]))
        # Secrets are listed under their own type only; one in its window still shows its tags.
        s = self.secret()
        self.ok("TagResources", "secret", **flat([s], [("env", "prod")]))
        self.assertNotIn(s, {r[0] for r in self.listed("key", **flat(tags=[("env", "prod")]))})
        self.assertIn((s, "secret", "env", "prod"), self.listed("secret", **flat(tags=[("env", "prod")])))
        self.srv.ok("DeleteSecret", SecretName=s, RecoveryWindowInDays=7)
        self.assertEqual(self.listed("secret", **flat([s])), [(s, "secret", "env", "prod")])
        self.srv.ok("DeleteSecret", SecretName=s, ForceDeleteWithoutRecovery="true")
        self.assertNotIn(s, {r[0] for r in self.listed("secret", **flat(tags=[("env", "prod")]))})

    def test_paging(self):
        names = [self.secret() for _ in range(21)]
        tags = [("p%02d" % i, "v%d" % i) for i in range(10)]
        self.ok("TagResources", "secret", **flat(names, tags))
        first = self.ok("ListTagResources", "secret", **flat(tags=[("p00",)]))
        self.assertEqual(len(first["TagResources"]["TagResource"]), 200)
        self.assertTrue(first["NextToken"])
        self.assertEqual(list(first)[1], "NextToken")
        rows = self.listed("secret", **flat(tags=[("p00",)]))
        self.assertEqual(len(rows), 210)
        self.assertEqual(len(set(rows)), 210)
        self.assertEqual(rows, sorted(rows, key=lambda r: (r[0].encode(), r[2].encode())))
        self.assertEqual({r[0] for r in rows}, set(names))
        # The same by ResourceId.N (at most 50 of them).
        self.assertEqual(self.listed("secret", **flat(names)), rows)


class TagBatchDeletedKeyTest(unittest.TestCase):
    def test_deleted_key_drops_out(self):
        with Server() as srv:
            key = srv.create_key()["KeyId"]
            srv.ok("TagResources", RegionId=REGION, ResourceType="key", **flat([key], [("a", "b")]))
            srv.ok("ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7)
            r = srv.ok("ListTagResources", RegionId=REGION, ResourceType="key", **flat(tags=[("a",)]))
            self.assertEqual(len(r["TagResources"]["TagResource"]), 1)
            srv.advance_clock(8 * DAY)
            r = srv.ok("ListTagResources", RegionId=REGION, ResourceType="key", **flat(tags=[("a",)]))
            self.assertEqual(r["TagResources"]["TagResource"], [])


if __name__ == "__main__":
    unittest.main()
