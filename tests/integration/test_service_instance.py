"""Service management (spec/actions.md A2, A3) and the virtual KMS instance (B1-B4, with the
DKMSInstanceId parameters and filters of C1.1, C1.3, E1, E3).

* [server] auto_open = true (the default): the account is opened; OpenKmsService answers
  400 Forbidden.Opened, DescribeAccountKmsStatus "Enabled".
* auto_open = false: the account starts NotEnabled; every action but DescribeRegions,
  DescribeAccountKmsStatus and OpenKmsService answers 403 Forbidden.KmsServiceNotEnabled until
  OpenKmsService succeeds once, which survives restarts.
* One virtual instance, id [server] instance_id (default "kst-kmsd" + 17 hex digits derived from
  account and region): GetKmsInstance with the SDK's types, ListKmsInstances, ConnectKmsInstance
  and UpdateKmsInstanceBindVpc as stored metadata, CaCertificateChainPem = the TLS certificate.
"""

import json
import os
import re
import ssl
import threading
import unittest

from common import ACCOUNT, REGION, KmsTestCase
from kmsd import DEFAULT_CONFIG, Server

DEFAULT_ID_RE = re.compile(r"^kst-kmsd[0-9a-f]{17}$")


class AutoOpenTest(KmsTestCase):
    def test_account_is_opened(self):
        r = self.ok("DescribeAccountKmsStatus")
        self.assertEqual(r, {"RequestId": r["RequestId"], "AccountStatus": "Enabled"})
        r = self.assertFails("OpenKmsService", 400, "Forbidden.Opened")
        self.assertEqual(r.json["Message"], "Your kms service has been opened.")
        self.create_key()

    def test_v3(self):
        r = self.srv.call_v3("DescribeAccountKmsStatus")
        self.assertEqual((r.status, r.json["AccountStatus"]), (200, "Enabled"))


class NotOpenedTest(unittest.TestCase):
    """auto_open = false: closed until OpenKmsService."""

    def test_opening(self):
        with Server(config=DEFAULT_CONFIG + "[server]\nauto_open = false\n") as srv:
            r = srv.call("DescribeAccountKmsStatus")
            self.assertEqual((r.status, r.json["AccountStatus"]), (200, "NotEnabled"))
            self.assertEqual(srv.call("DescribeRegions").status, 200)
            for action, params in (("CreateKey", {}), ("ListKeys", {}), ("DescribeService", {}),
                                   ("ListSecrets", {}), ("GenerateRandom", {"Length": 8}),
                                   ("ListKmsInstances", {}), ("NoSuchAction", {})):
                r = srv.call(action, **params)
                if action == "NoSuchAction":
                    # An unknown action is unknown before anything else.
                    self.assertEqual((r.status, r.code), (404, "InvalidAction.NotFound"), r)
                    continue
                self.assertEqual((r.status, r.code), (403, "Forbidden.KmsServiceNotEnabled"), r)
                self.assertEqual(r.json["Message"], "Kms service is not Enabled for current user. "
                                 "Please get access permission first.")
            r = srv.call_v3("CreateKey")
            self.assertEqual((r.status, r.code), (403, "Forbidden.KmsServiceNotEnabled"), r)
            # Authentication still comes first: a bad signature is not told the account state.
            r = srv.call("CreateKey", access_key=(srv.access_key_id, "wrong-secret"))
            self.assertEqual((r.status, r.code), (400, "SignatureDoesNotMatch"), r)
            r = srv.call("OpenKmsService", access_key=("nobody", "x"))
            self.assertEqual((r.status, r.code), (404, "InvalidAccessKeyId.NotFound"), r)

            r = srv.call("OpenKmsService")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(set(r.json), {"RequestId"})
            self.assertEqual(srv.call("DescribeAccountKmsStatus").json["AccountStatus"], "Enabled")
            self.assertEqual(srv.call("CreateKey").status, 200)
            r = srv.call("OpenKmsService")
            self.assertEqual((r.status, r.code), (400, "Forbidden.Opened"), r)
            # Remembered in the store.
            srv.restart()
            self.assertEqual(srv.call("DescribeAccountKmsStatus").json["AccountStatus"], "Enabled")
            self.assertEqual(srv.call("ListKeys").json["TotalCount"], 1)
            r = srv.call("OpenKmsService")
            self.assertEqual((r.status, r.code), (400, "Forbidden.Opened"), r)
            self.assertEqual(srv.stop(), 0)

    def test_concurrent_open_opens_once(self):
        with Server(config=DEFAULT_CONFIG + "[server]\nauto_open = false\n") as srv:
            results = []

            def opener():
                results.append(srv.call("OpenKmsService"))

            threads = [threading.Thread(target=opener) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(sorted(r.status for r in results), [200] + [400] * 5, results)
            self.assertTrue(all(r.code == "Forbidden.Opened" for r in results if r.status == 400))
            self.assertEqual(srv.stop(), 0)


class InstanceTest(KmsTestCase):
    def instance_id(self):
        r = self.ok("ListKmsInstances")
        return r["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]

    def get(self):
        return self.ok("GetKmsInstance", KmsInstanceId=self.instance_id())["KmsInstance"]

    def test_list(self):
        r = self.ok("ListKmsInstances")
        self.assertEqual((r["TotalCount"], r["PageNumber"], r["PageSize"]), (1, 1, 20))
        for member in ("TotalCount", "PageNumber", "PageSize"):
            self.assertIs(type(r[member]), int)
        [inst] = r["KmsInstances"]["KmsInstance"]
        self.assertRegex(inst["KmsInstanceId"], DEFAULT_ID_RE)
        self.assertEqual(inst["KmsInstanceArn"],
                         "acs:kms:%s:%s:keystore/%s" % (REGION, ACCOUNT, inst["KmsInstanceId"]))
        r = self.ok("ListKmsInstances", PageNumber=2, PageSize=5)
        self.assertEqual((r["TotalCount"], r["KmsInstances"]["KmsInstance"]), (1, []))
        # Filters: the ListKeys syntax, checked; no key applies to instances.
        r = self.ok("ListKmsInstances", Filters='[{"Key":"Anything","Values":["x"]}]')
        self.assertEqual(len(r["KmsInstances"]["KmsInstance"]), 1)
        for bad in ("nope", "{}", '[{"Key":1}]', '[{"Key":"a","Values":[1]}]'):
            self.assertFails("ListKmsInstances", 400, "InvalidParameter", "Filters", Filters=bad)
        self.assertFails("ListKmsInstances", 400, "InvalidParameter", "PageSize", PageSize=101)
        self.assertFails("ListKmsInstances", 400, "InvalidParameter", "PageNumber", PageNumber=0)
        # Stable across restarts (derived from the configuration).
        before = inst["KmsInstanceId"]
        self.srv.restart()
        self.assertEqual(self.instance_id(), before)

    def test_get_types(self):
        inst = self.get()
        self.assertEqual(inst["InstanceId"], self.instance_id())
        self.assertEqual(inst["InstanceName"], inst["InstanceId"])
        for member in ("KeyNum", "Spec", "VpcNum", "Log", "LogStorage"):
            self.assertIs(type(inst[member]), int, member)
        self.assertIs(type(inst["SecretNum"]), str)
        self.assertIs(type(inst["DeletionProtection"]), bool)
        self.assertIsInstance(inst["VswitchIds"], list)
        self.assertIsInstance(inst["ZoneIds"], list)
        self.assertIsInstance(inst["BindVpcs"]["BindVpc"], list)
        self.assertEqual(inst["KeyNum"], 2000)
        self.assertEqual(inst["SecretNum"], "2000")
        self.assertIn(inst["Status"], ("Uninitialized", "Connected"))
        for member in ("CreateTime", "StartDate", "EndDate"):
            self.assertRegex(inst[member], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # The chain is the server's TLS certificate, and nothing but certificates.
        with open(os.path.join(self.srv.data_dir, "tls", "cert.pem")) as f:
            cert = f.read()
        pem = inst["CaCertificateChainPem"]
        self.assertEqual(pem.count("-----BEGIN CERTIFICATE-----"), 1)
        self.assertNotIn("PRIVATE KEY", pem)
        self.assertEqual(ssl.PEM_cert_to_DER_cert(pem), ssl.PEM_cert_to_DER_cert(cert))
        served = ssl.get_server_certificate(("127.0.0.1", self.srv.port))
        self.assertEqual(ssl.PEM_cert_to_DER_cert(served), ssl.PEM_cert_to_DER_cert(pem))
        # The same record twice (CreateTime is written once).
        self.assertEqual(self.get()["CreateTime"], inst["CreateTime"])
        r = self.srv.call("GetKmsInstance", KmsInstanceId=self.instance_id(), Format="XML")
        self.assertEqual(r.status, 200, r)
        self.assertIn("<InstanceId>%s</InstanceId>" % self.instance_id(), r.body)

    def test_unknown_or_missing_id(self):
        for action, extra in (("GetKmsInstance", {}),
                              ("ConnectKmsInstance", dict(KMProvider="Aliyun", VpcId="vpc-1",
                                                          ZoneIds="z-1,z-2", VSwitchIds="vsw-1")),
                              ("UpdateKmsInstanceBindVpc", dict(BindVpcs="[]"))):
            with self.subTest(action=action):
                self.assertFails(action, 400, "MissingParameter", "KmsInstanceId", **extra)
                self.assertFails(action, 404, "Forbidden.ResourceNotFound",
                                 KmsInstanceId="kst-nothere000000000000", **extra)

    def test_connect_and_bind(self):
        iid = self.instance_id()
        good = dict(KmsInstanceId=iid, KMProvider="Aliyun", VpcId="vpc-bp1abc",
                    ZoneIds="cn-hangzhou-k,cn-hangzhou-j", VSwitchIds="vsw-1,vsw-2")
        for missing in ("KMProvider", "VpcId", "ZoneIds", "VSwitchIds"):
            params = dict(good)
            del params[missing]
            self.assertFails("ConnectKmsInstance", 400, "MissingParameter", missing, **params)
        for name, value in (("KMProvider", "Tencent"), ("ZoneIds", "cn-hangzhou-k"),
                            ("ZoneIds", "a,b,c"), ("ZoneIds", "a,,b"), ("ZoneIds", "a,b,"),
                            ("VSwitchIds", "vsw 1"), ("VSwitchIds", ",vsw-1"),
                            ("VSwitchIds", ",".join("vsw-%d" % i for i in range(11))),
                            ("VpcId", "vpc/1"), ("VpcId", "v" * 129)):
            with self.subTest(param=name, value=value):
                self.assertFails("ConnectKmsInstance", 400, "InvalidParameter", name,
                                 **dict(good, **{name: value}))
        if self.get()["Status"] == "Uninitialized":
            self.assertEqual(self.get()["VpcId"], "")
            self.ok("ConnectKmsInstance", **good)
        inst = self.get()
        self.assertEqual(inst["Status"], "Connected")
        self.assertEqual(inst["VpcId"], "vpc-bp1abc")
        self.assertEqual(inst["ZoneIds"], ["cn-hangzhou-k", "cn-hangzhou-j"])
        self.assertEqual(inst["VswitchIds"], ["vsw-1", "vsw-2"])
        self.assertFails("ConnectKmsInstance", 409, "Rejected.ResourceExist", **good)

        vpcs = [{"VpcId": "vpc-a", "VSwitchId": "vsw-a", "RegionId": "cn-hangzhou",
                 "VpcOwnerId": 1192853035123},
                {"VpcId": "vpc-b", "VSwitchId": "vsw-b", "RegionId": "cn-shanghai",
                 "VpcOwnerId": "42"},
                {"VpcId": "vpc-c", "VSwitchId": "vsw-c", "RegionId": "cn-beijing"}]
        self.ok("UpdateKmsInstanceBindVpc", KmsInstanceId=iid, BindVpcs=json.dumps(vpcs))
        got = self.get()["BindVpcs"]["BindVpc"]
        self.assertEqual(got, [
            {"VpcId": "vpc-a", "VSwitchId": "vsw-a", "RegionId": "cn-hangzhou",
             "VpcOwnerId": "1192853035123"},
            {"VpcId": "vpc-b", "VSwitchId": "vsw-b", "RegionId": "cn-shanghai", "VpcOwnerId": "42"},
            {"VpcId": "vpc-c", "VSwitchId": "vsw-c", "RegionId": "cn-beijing",
             "VpcOwnerId": ACCOUNT}])
        one = dict(VpcId="vpc-a", VSwitchId="vsw-a", RegionId="cn-hangzhou", VpcOwnerId=1)
        for bad in ("not json", "{}", "[1]", json.dumps([dict(one, VpcId="")]),
                    json.dumps([{k: v for k, v in one.items() if k != "VSwitchId"}]),
                    json.dumps([dict(one, RegionId=7)]), json.dumps([dict(one, VpcOwnerId=-1)]),
                    json.dumps([dict(one, VpcOwnerId=1.5)]),
                    json.dumps([dict(one, VpcOwnerId="12x")]),
                    json.dumps([dict(one, VpcOwnerId=None)]), json.dumps([one] * 21)):
            with self.subTest(bind_vpcs=bad):
                self.assertFails("UpdateKmsInstanceBindVpc", 400, "InvalidParameter", "BindVpcs",
                                 KmsInstanceId=iid, BindVpcs=bad)
        self.assertFails("UpdateKmsInstanceBindVpc", 400, "MissingParameter", "BindVpcs",
                         KmsInstanceId=iid)
        # A failed update changed nothing; the stored list survives a restart.
        self.assertEqual(self.get()["BindVpcs"]["BindVpc"], got)
        self.srv.restart()
        self.assertEqual(self.get()["BindVpcs"]["BindVpc"], got)
        self.assertEqual(self.get()["Status"], "Connected")
        # An empty list clears it.
        self.ok("UpdateKmsInstanceBindVpc", KmsInstanceId=iid, BindVpcs="[]")
        self.assertEqual(self.get()["BindVpcs"]["BindVpc"], [])

    def test_keys_and_secrets_live_in_the_instance(self):
        iid = self.instance_id()
        md = self.create_key(DKMSInstanceId=iid)
        self.assertEqual(md["DKMSInstanceId"], iid)
        self.assertEqual(self.create_key()["DKMSInstanceId"], iid)
        self.assertEqual(self.describe(md["KeyId"])["DKMSInstanceId"], iid)
        self.assertFails("CreateKey", 400, "InvalidParameter", "DKMSInstanceId",
                         DKMSInstanceId="kst-other")
        self.ok("CreateSecret", SecretName="in-instance", VersionId="v1", SecretData="x",
                DKMSInstanceId=iid)
        self.assertFails("CreateSecret", 400, "InvalidParameter", "DKMSInstanceId",
                         SecretName="elsewhere", VersionId="v1", SecretData="x",
                         DKMSInstanceId="kst-other")
        self.assertFails("DescribeSecret", 404, "Forbidden.ResourceNotFound",
                         SecretName="elsewhere")
        f = lambda v: json.dumps([{"Key": "DKMSInstanceId", "Values": [v]}])
        names = [s["SecretName"] for s in
                 self.ok("ListSecrets", Filters=f(iid))["SecretList"]["Secret"]]
        self.assertIn("in-instance", names)
        self.assertEqual(self.ok("ListSecrets", Filters=f("kst-other"))["TotalCount"], 0)


class ConfiguredInstanceTest(KmsTestCase):
    config = "[server]\ninstance_id = kst-custom_Instance-1\n"

    def test_configured_id(self):
        r = self.ok("ListKmsInstances")
        self.assertEqual(r["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"],
                         "kst-custom_Instance-1")
        self.ok("GetKmsInstance", KmsInstanceId="kst-custom_Instance-1")
        self.assertEqual(self.create_key(DKMSInstanceId="kst-custom_Instance-1")["DKMSInstanceId"],
                         "kst-custom_Instance-1")
        # Ids compare exactly.
        self.assertFails("CreateKey", 400, "InvalidParameter", "DKMSInstanceId",
                         DKMSInstanceId="kst-custom_instance-1")

    def test_default_depends_on_account_and_region(self):
        ids = set()
        for extra in ("", "region = cn-shanghai\n", "account_id = 2000000000000000\n"):
            with Server(config=DEFAULT_CONFIG + "[server]\n" + extra) as srv:
                r = srv.call("ListKmsInstances")
                ids.add(r.json["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"])
                self.assertEqual(srv.stop(), 0)
        self.assertEqual(len(ids), 3)
        for i in ids:
            self.assertRegex(i, DEFAULT_ID_RE)

    def test_bad_configured_id_refuses_to_start(self):
        for bad in ("kst bad", "kst/1", "x" * 65):
            srv = Server(config=DEFAULT_CONFIG + "[server]\ninstance_id = %s\n" % bad)
            with self.assertRaises(RuntimeError):
                srv.start(timeout=15)
            self.assertIn("server.instance_id", srv.stderr_text())
            self.assertNotEqual(srv.stop(), 0)
            srv.__exit__(None, None, None)


if __name__ == "__main__":
    unittest.main()
