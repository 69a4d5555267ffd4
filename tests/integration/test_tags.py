"""Tag actions on keys (spec/actions.md G1-G3) and every tag rule of the G table."""

import json

from common import KmsTestCase, key_arn, tags_json


class TagTest(KmsTestCase):

    def tags(self, key_id):
        r = self.ok("ListResourceTags", KeyId=key_id)
        self.assertIsInstance(r["Tags"]["Tag"], list)
        for t in r["Tags"]["Tag"]:
            self.assertEqual(t["KeyId"], key_id)
        return {t["TagKey"]: t["TagValue"] for t in r["Tags"]["Tag"]}

    def test_tag_overwrite_untag(self):
        k = self.create_key()["KeyId"]
        self.assertEqual(self.ok("ListResourceTags", KeyId=k)["Tags"], {"Tag": []})
        self.ok("TagResource", KeyId=k, Tags=tags_json([("Project", "Test")]))
        r = self.ok("ListResourceTags", KeyId=k)
        self.assertEqual(r["Tags"]["Tag"], [{"KeyId": k, "TagKey": "Project", "TagValue": "Test"}])
        self.ok("TagResource", KeyId=key_arn(k), Tags=tags_json([("Project", "Prod"), ("Team", "a")]))
        self.assertEqual(self.tags(k), {"Project": "Prod", "Team": "a"})
        # TagValue may be absent (= "") or empty.
        self.ok("TagResource", KeyId=k, Tags='[{"TagKey":"NoValue"},{"TagKey":"Empty","TagValue":""}]')
        self.assertEqual(self.tags(k), {"Project": "Prod", "Team": "a", "NoValue": "", "Empty": ""})
        self.ok("UntagResource", KeyId=k, TagKeys='["Team","NoValue"]')
        self.assertEqual(self.tags(k), {"Project": "Prod", "Empty": ""})
        self.ok("UntagResource", KeyId=k, TagKeys="Project,Empty")  # the comma form
        self.assertEqual(self.tags(k), {})

    def test_untag_forms(self):
        k = self.create_key(Tags=tags_json([("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]))["KeyId"]
        self.ok("UntagResource", KeyId=k, TagKeys="a")
        self.ok("UntagResource", KeyId=k, TagKeys='["b"]')
        # Unknown tag keys are ignored.
        self.ok("UntagResource", KeyId=k, TagKeys='["nope","c"]')
        self.ok("UntagResource", KeyId=k, TagKeys="nope,other")
        self.assertEqual(self.tags(k), {"d": "4"})
        for bad in ("[]", "[1]", '["ok",null]', '[""]', "[not json", "a,,b", ",a", "a,",
                    '["%s"]' % ("x" * 129)):
            with self.subTest(tag_keys=bad):
                self.assertFails("UntagResource", 400, "InvalidParameter", "TagKeys", KeyId=k,
                                 TagKeys=bad)
        self.assertFails("UntagResource", 400, "MissingParameter", "TagKeys", KeyId=k)
        self.assertEqual(self.tags(k), {"d": "4"})

    def test_charset_and_lengths(self):
        k = self.create_key()["KeyId"]
        good_key = "aZ09/_-.+=@:\\"
        self.ok("TagResource", KeyId=k, Tags=tags_json([(good_key, good_key)]))
        self.ok("TagResource", KeyId=k, Tags=tags_json([("k" * 128, "v" * 256)]))
        self.assertEqual(self.tags(k), {good_key: good_key, "k" * 128: "v" * 256})
        bad = [("", "v"), ("k" * 129, "v"), ("k", "v" * 257), ("a b", "v"), ("k", "a b"),
               ("中文", "v"), ("k", "值"), ("a#b", "v"), ("a*b", "v"), ("a,b", "v"), ("k", "a;b"),
               ("a\tb", "v"), ("k", "a\nb")]
        for key, value in bad:
            with self.subTest(key=key, value=value):
                self.assertFails("TagResource", 400, "InvalidParameter", "Tags", KeyId=k,
                                 Tags=tags_json([(key, value)]))
        self.assertEqual(len(self.tags(k)), 2)

    def test_reserved_prefixes(self):
        k = self.create_key()["KeyId"]
        for key in ("aliyun", "aliyunKey", "aliyun:x", "acs:", "acs:foo"):
            with self.subTest(key=key):
                self.assertFails("TagResource", 400, "InvalidParameter", "Tags", KeyId=k,
                                 Tags=tags_json([(key, "v")]))
        # Only those exact (case-sensitive) prefixes are reserved.
        self.ok("TagResource", KeyId=k, Tags=tags_json([("acs", "v"), ("Aliyun", "v"), ("myaliyun", "v")]))

    def test_bad_tags_json(self):
        k = self.create_key()["KeyId"]
        for bad in ("", "[]", "{}", "not json", '"x"', "[1]", '[{"TagValue":"v"}]',
                    '[{"TagKey":null,"TagValue":"v"}]', '[{"TagKey":"k","TagValue":1}]',
                    '[{"TagKey":"k","TagValue":null}]', '[{"TagKey":["k"]}]', '[["k","v"]]',
                    '[{"TagKey":"k","TagValue":"v"},{"TagKey":"k","TagValue":"w"}]'):
            with self.subTest(tags=bad):
                code = "MissingParameter" if bad == "" else "InvalidParameter"
                self.assertFails("TagResource", 400, code, "Tags", KeyId=k, Tags=bad)
        self.assertEqual(self.tags(k), {})

    def test_count_limit_after_merge(self):
        k = self.create_key()["KeyId"]
        self.ok("TagResource", KeyId=k, Tags=tags_json([("t%d" % i, "v") for i in range(8)]))
        self.assertFails("TagResource", 400, "Rejected.LimitExceeded", KeyId=k,
                         Tags=tags_json([("n%d" % i, "v") for i in range(3)]))
        self.assertEqual(len(self.tags(k)), 8)  # nothing applied
        self.ok("TagResource", KeyId=k, Tags=tags_json([("n0", "v"), ("n1", "v")]))
        # At 10: overwriting existing keys adds nothing and is allowed.
        self.ok("TagResource", KeyId=k, Tags=tags_json([("t0", "new"), ("n1", "new")]))
        self.assertFails("TagResource", 400, "Rejected.LimitExceeded", KeyId=k,
                         Tags=tags_json([("t0", "x"), ("extra", "v")]))
        tags = self.tags(k)
        self.assertEqual((len(tags), tags["t0"], tags["n1"]), (10, "new", "new"))
        self.assertFails("TagResource", 400, "Rejected.LimitExceeded", KeyId=self.create_key()["KeyId"],
                         Tags=tags_json([("m%d" % i, "v") for i in range(11)]))
        # After untagging there is room again.
        self.ok("UntagResource", KeyId=k, TagKeys='["t1"]')
        self.ok("TagResource", KeyId=k, Tags=tags_json([("extra", "v")]))

    def test_target(self):
        k = self.create_key()["KeyId"]
        tags = tags_json([("a", "b")])
        self.assertFails("TagResource", 400, "MissingParameter", Tags=tags)
        self.assertFails("TagResource", 400, "InvalidParameter", KeyId=k, SecretName="s", Tags=tags)
        self.assertFails("TagResource", 400, "InvalidParameter", KeyId=k, CertificateId="c",
                         Tags=tags)
        self.assertFails("TagResource", 404, "Forbidden.KeyNotFound", KeyId="no-such", Tags=tags)
        self.assertFails("TagResource", 404, "Forbidden.ResourceNotFound", SecretName="no-such",
                         Tags=tags)
        self.assertFails("TagResource", 404, "Certificate.NotFound", CertificateId="no-such",
                         Tags=tags)
        self.assertFails("UntagResource", 400, "MissingParameter", TagKeys='["a"]')
        self.assertFails("UntagResource", 404, "Forbidden.KeyNotFound", KeyId="no-such",
                         TagKeys='["a"]')
        self.assertFails("UntagResource", 404, "Forbidden.ResourceNotFound", SecretName="no-such",
                         TagKeys='["a"]')
        self.assertFails("ListResourceTags", 400, "MissingParameter", "KeyId")
        # ListResourceTags is key-only: SecretName is an unknown (ignored) parameter.
        self.assertFails("ListResourceTags", 400, "MissingParameter", "KeyId", SecretName="s")
        self.assertFails("ListResourceTags", 404, "Forbidden.KeyNotFound", KeyId="no-such")

    def test_tags_are_per_key(self):
        k1, k2 = self.create_key()["KeyId"], self.create_key()["KeyId"]
        self.ok("TagResource", KeyId=k1, Tags=tags_json([("shared", "one")]))
        self.ok("TagResource", KeyId=k2, Tags=tags_json([("shared", "two")]))
        self.ok("UntagResource", KeyId=k1, TagKeys="shared")
        self.assertEqual((self.tags(k1), self.tags(k2)), ({}, {"shared": "two"}))

    def test_v3(self):
        k = self.create_key()["KeyId"]
        self.assertOk(self.srv.call_v3("TagResource", KeyId=k, Tags=tags_json([("v3", "yes")])))
        r = self.assertOk(self.srv.call_v3("ListResourceTags", KeyId=k))
        self.assertEqual(r["Tags"]["Tag"], [{"KeyId": k, "TagKey": "v3", "TagValue": "yes"}])
        self.assertOk(self.srv.call_v3("UntagResource", KeyId=k, TagKeys=json.dumps(["v3"])))
        self.assertEqual(self.tags(k), {})


class TwentyTagsTest(KmsTestCase):
    """max_tags_per_resource = 20 mirrors the current service (actions.md G table)."""

    config = "[keys]\nmax_tags_per_resource = 20\n"

    def test_twenty(self):
        k = self.create_key(Tags=tags_json([("t%d" % i, "v") for i in range(20)]))["KeyId"]
        self.assertEqual(len(self.ok("ListResourceTags", KeyId=k)["Tags"]["Tag"]), 20)
        self.assertFails("TagResource", 400, "Rejected.LimitExceeded", KeyId=k,
                         Tags=tags_json([("t20", "v")]))


if __name__ == "__main__":
    import unittest
    unittest.main()
