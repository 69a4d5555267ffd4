"""The protocol around every action (spec/protocol.md §1-§10): transport, parameter decoding,
Format, RequestId, common-parameter checks, both signature versions, replay protection, size
limits and keep-alive. Every error is checked by its exact Code and HTTP status (§10)."""

import re
import secrets
import socket
import ssl
import unittest
import xml.etree.ElementTree as ET

from kmsd import (ADMIN_ID, DEFAULT_CONFIG, Server, percent_encode, sign_v1, sign_v3, timestamp)

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
JSON_TYPE = "application/json;charset=utf-8"
XML_TYPE = "text/xml;charset=utf-8"


def encode(params):
    return "&".join(percent_encode(k) + "=" + percent_encode(v) for k, v in params.items())


class ProtocolBase(unittest.TestCase):
    config = None

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(config=cls.config).start()

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        cls.srv.__exit__(None, None, None)
        if status != 0:
            raise AssertionError("kmsd exited with %r" % status)

    def assertError(self, r, status, code):
        self.assertEqual((r.status, r.code), (status, code), r)
        self.assertEqual(r.headers.get("Content-Type"), JSON_TYPE, r.headers)
        self.assertTrue(UUID_RE.match(r.json["RequestId"]), r)
        self.assertEqual(r.json["HttpStatus"], status)
        self.assertIsInstance(r.json["HttpStatus"], int)
        self.assertTrue(r.json["Message"], r)
        self.assertIn("HostId", r.json)
        # No success fields in an error body (§10.1).
        self.assertEqual(set(r.json), {"RequestId", "HostId", "Code", "Message", "HttpStatus"})
        return r

    def assertServing(self):
        r = self.srv.call("DescribeRegions")
        self.assertEqual(r.status, 200, r)


class TransportTest(ProtocolBase):
    """§1-§2: GET and POST, query and form body, and how parameters are decoded."""

    def test_get_with_query(self):
        r = self.srv.call("DescribeRegions", method="GET")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["Content-Type"], JSON_TYPE)
        self.assertEqual(r.json["Regions"]["Region"], [{"RegionId": "cn-hangzhou"}])

    def test_post_with_query(self):
        r = self.srv.call("ListKeys", PageSize=3)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["PageSize"], 3)

    def test_post_with_form_body(self):
        r = self.srv.call("ListKeys", transport="body", PageSize=4)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["PageSize"], 4)

    def test_get_with_form_body_is_not_read(self):
        # Only a POST body carries parameters (§2 step 2): on GET, PageSize in the body is ignored,
        # so the signature (computed over it) does not match.
        p = self.srv.signed_params("ListKeys", {"PageSize": "4"}, method="GET")
        r = self.srv.raw("GET", "/", body=encode(p).encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status // 100, 4, r)

    def test_form_content_type_with_charset(self):
        p = self.srv.signed_params("ListKeys", {"PageSize": "6"})
        r = self.srv.raw("POST", "/", body=encode(p).encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["PageSize"], 6)

    def test_other_body_type_is_ignored(self):
        # A JSON body is not a parameter source; the query alone is signed and read.
        p = self.srv.signed_params("ListKeys", {"PageSize": "7"})
        r = self.srv.raw("POST", "/?" + encode(p), body=b'{"PageSize": 99}',
                         headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["PageSize"], 7)

    def test_split_query_and_body(self):
        p = self.srv.signed_params("CreateKey", {"Description": "split & merged"})
        names = sorted(p)
        query = {k: p[k] for k in names[::2]}
        body = {k: p[k] for k in names[1::2]}
        r = self.srv.raw("POST", "/?" + encode(query), body=encode(body).encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["KeyMetadata"]["Description"], "split & merged")

    def test_chunked_body(self):
        p = self.srv.signed_params("CreateKey", {"Description": "chunked body " + "x" * 3000})
        data = encode(p).encode()
        chunks = [data[i:i + 700] for i in range(0, len(data), 700)]
        conn = self.srv.connection()
        try:
            conn.request("POST", "/", body=iter(chunks), encode_chunked=True,
                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                  "Transfer-Encoding": "chunked"})
            resp = conn.getresponse()
            body = resp.read().decode()
        finally:
            conn.close()
        self.assertEqual(resp.status, 200, body)
        self.assertIn("chunked body xxx", body)

    def test_plus_is_space(self):
        p = self.srv.signed_params("CreateKey", {"Description": "a b  c"})
        raw = encode(p).replace("%20", "+")
        self.assertIn("Description=a+b++c", raw)
        r = self.srv.raw("POST", "/?" + raw)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["KeyMetadata"]["Description"], "a b  c")
        # The same in a form body, and %2B stays a literal plus.
        p = self.srv.signed_params("CreateKey", {"Description": "x+y z"})
        raw = encode(p).replace("%20", "+")
        r = self.srv.raw("POST", "/", body=raw.encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["KeyMetadata"]["Description"], "x+y z")

    def test_lower_case_escapes_and_utf8(self):
        p = self.srv.signed_params("CreateKey", {"Description": "测试 key *~!'()"})
        raw = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encode(p))
        r = self.srv.raw("POST", "/?" + raw)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["KeyMetadata"]["Description"], "测试 key *~!'()")

    def test_empty_and_unknown_parameters_are_signed_and_ignored(self):
        r = self.srv.call("ListKeys", SignatureType="", RegionId="cn-hangzhou", Unknown="1",
                          PageSize="")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["PageSize"], 10)  # empty = not provided

    def test_names_are_case_sensitive(self):
        r = self.srv.call("ListKeys", pagesize="2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["PageSize"], 10)

    def test_duplicate_parameter_in_query(self):
        p = self.srv.signed_params("ListKeys", {"PageSize": "5"})
        r = self.srv.raw("POST", "/?" + encode(p) + "&PageSize=6")
        self.assertError(r, 400, "InvalidParameter")
        self.assertIn('"PageSize"', r.json["Message"])

    def test_duplicate_parameter_in_query_and_body(self):
        p = self.srv.signed_params("ListKeys", {"PageSize": "5"})
        r = self.srv.raw("POST", "/?" + encode(p), body=b"PageSize=5",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertError(r, 400, "InvalidParameter")
        self.assertIn('"PageSize"', r.json["Message"])

    def test_duplicate_parameter_twice_in_body(self):
        p = self.srv.signed_params("ListKeys", {})
        r = self.srv.raw("POST", "/", body=(encode(p) + "&A=1&A=2").encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertError(r, 400, "InvalidParameter")

    def test_invalid_utf8(self):
        p = self.srv.signed_params("ListKeys", {})
        base = encode(p)
        for bad in ("%C3%28", "%ED%A0%80", "%00", "%FF", "%C0%AF", "%E2%82", "%F4%90%80%80"):
            with self.subTest(bad=bad):
                r = self.srv.raw("POST", "/?" + base + "&Description=ab" + bad + "cd")
                self.assertError(r, 400, "ParseRequestParameterException")
                # ... in a name, and in a form body too.
                r = self.srv.raw("POST", "/?" + base + "&X" + bad + "=1")
                self.assertError(r, 400, "ParseRequestParameterException")
                r = self.srv.raw("POST", "/", body=(base + "&Description=" + bad).encode(),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
                self.assertError(r, 400, "ParseRequestParameterException")
        self.assertServing()

    def test_malformed_escapes(self):
        p = self.srv.signed_params("ListKeys", {})
        base = encode(p)
        for bad in ("%", "%4", "%G1", "%%41", "%-1", "%ZZ", "%+1"):
            with self.subTest(bad=bad):
                r = self.srv.raw("POST", "/?" + base + "&Description=a" + percent_encode("") + bad)
                self.assertError(r, 400, "ParseRequestParameterException")
        self.assertServing()

    def test_bare_names_and_stray_ampersands(self):
        # "&&" and a trailing "&" are empty segments; "Flag" without "=" is an empty value.
        p = self.srv.signed_params("ListKeys", {"Flag": ""})
        raw = "&&" + encode(p).replace("Flag=", "Flag") + "&"
        r = self.srv.raw("POST", "/?" + raw)
        self.assertEqual(r.status, 200, r)


class FormatTest(ProtocolBase):
    """§8: JSON (default) and XML envelopes, for success and errors; RequestId."""

    def test_default_is_json(self):
        r = self.srv.call("DescribeRegions", Format=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["Content-Type"], JSON_TYPE)
        self.assertEqual(r.json["Regions"]["Region"][0]["RegionId"], "cn-hangzhou")

    def test_format_json_any_case(self):
        for f in ("JSON", "json", "Json"):
            r = self.srv.call("DescribeRegions", Format=f)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.headers["Content-Type"], JSON_TYPE)

    def test_xml_success(self):
        self.srv.create_key(Description="for xml")
        for f in ("XML", "xml"):
            r = self.srv.call("ListKeys", Format=f, PageSize=1)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.headers["Content-Type"], XML_TYPE)
            self.assertTrue(r.body.startswith('<?xml version="1.0" encoding="UTF-8"?>'), r.body)
            root = ET.fromstring(r.body)
            self.assertEqual(root.tag, "KMS")
            self.assertTrue(UUID_RE.match(root.findtext("RequestId")))
            self.assertEqual(root.findtext("RequestId"), r.headers["x-acs-request-id"])
            self.assertEqual(root.findtext("PageSize"), "1")
            keys = root.findall("Keys/Key")
            self.assertEqual(len(keys), 1)
            self.assertTrue(keys[0].findtext("KeyId"))

    def test_xml_escaping(self):
        r = self.srv.call("CreateKey", Format="XML", Description="<a & 'b' \"c\">")
        self.assertEqual(r.status, 200, r)
        root = ET.fromstring(r.body)
        self.assertEqual(root.findtext("KeyMetadata/Description"), "<a & 'b' \"c\">")

    def test_xml_error(self):
        r = self.srv.call("DescribeKey", Format="XML", KeyId="no-such-key")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.headers["Content-Type"], XML_TYPE)
        root = ET.fromstring(r.body)
        self.assertEqual(root.tag, "KMS")
        self.assertEqual(root.findtext("Code"), "Forbidden.KeyNotFound")
        self.assertEqual(root.findtext("HttpStatus"), "404")
        self.assertTrue(root.findtext("Message"))
        self.assertEqual(root.findtext("RequestId"), r.headers["x-acs-request-id"])
        self.assertIsNotNone(root.find("HostId"))
        # An authentication error answers in XML too.
        p = self.srv.signed_params("ListKeys", {"Format": "XML"})
        p["Signature"] = "AAAA" + p["Signature"][4:]
        r = self.srv.raw("POST", "/?" + encode(p))
        self.assertEqual(r.status, 400)
        self.assertEqual(ET.fromstring(r.body).findtext("Code"), "SignatureDoesNotMatch")

    def test_bad_format(self):
        for f in ("YAML", "xml2", " "):
            with self.subTest(format=f):
                r = self.srv.call("DescribeRegions", Format=f)
                self.assertError(r, 400, "InvalidParameter")
                self.assertIn('"Format"', r.json["Message"])

    def test_request_id_unique_and_in_header(self):
        seen = set()
        for i in range(6):
            r = self.srv.call("DescribeRegions") if i % 2 else self.srv.call("DescribeKey", KeyId="x")
            rid = r.json["RequestId"]
            self.assertTrue(UUID_RE.match(rid), rid)
            self.assertEqual(r.headers.get("x-acs-request-id"), rid)
            seen.add(rid)
        # Even requests that fail before parsing get one.
        r = self.srv.raw("PUT", "/")
        self.assertEqual(r.headers.get("x-acs-request-id"), r.json["RequestId"])
        seen.add(r.json["RequestId"])
        self.assertEqual(len(seen), 7)

    def test_json_types(self):
        r = self.srv.call("ListKeys", PageSize=2, PageNumber=1)
        self.assertIsInstance(r.json["TotalCount"], int)
        self.assertIsInstance(r.json["PageNumber"], int)
        self.assertIsInstance(r.json["PageSize"], int)
        self.assertIsInstance(r.json["Keys"]["Key"], list)


class CommonParameterTest(ProtocolBase):
    """§1, §3: method, path, Action, Version, signature parameters, AccessKeyId, Timestamp."""

    def test_unsupported_methods(self):
        p = self.srv.signed_params("DescribeRegions", {}, method="PUT")
        for m in ("PUT", "DELETE", "PATCH", "OPTIONS"):
            with self.subTest(method=m):
                r = self.srv.raw(m, "/?" + encode(p))
                self.assertError(r, 403, "UnsupportedHTTPMethod")
        self.assertEqual(self.srv.raw("HEAD", "/?" + encode(p)).status, 403)

    def test_wrong_path(self):
        for path in ("/foo", "/index.html", "//", "/v1/cmkManage/createKey"):
            with self.subTest(path=path):
                p = self.srv.signed_params("DescribeRegions", {})
                r = self.srv.raw("POST", path + "?" + encode(p))
                self.assertError(r, 404, "InvalidAction.NotFound")

    def test_missing_action(self):
        # spec/protocol.md §3: a missing Action is 400 MissingParameter (an unknown one is 404).
        r = self.srv.call("DescribeRegions", Action=None)
        self.assertError(r, 400, "MissingParameter")
        self.assertIn('"Action"', r.json["Message"])
        r = self.srv.raw("GET", "/")
        self.assertError(r, 400, "MissingParameter")

    def test_unknown_action(self):
        for a in ("NoSuchAction", "describekey", "DescribeKeys", "KmsdTestAdvanceClockX"):
            with self.subTest(action=a):
                r = self.srv.call(a)
                self.assertError(r, 404, "InvalidAction.NotFound")

    def test_version(self):
        r = self.srv.call("DescribeRegions", Version=None)
        self.assertError(r, 400, "MissingParameter")
        self.assertIn('"Version"', r.json["Message"])
        for v in ("2016-01-21", "2014-05-26", "x"):
            r = self.srv.call("DescribeRegions", Version=v)
            self.assertError(r, 400, "InvalidVersion")

    def test_signature_method_and_version(self):
        r = self.srv.call("DescribeRegions", SignatureMethod="HMAC-SHA256")
        self.assertError(r, 400, "IncompleteSignature")
        r = self.srv.call("DescribeRegions", SignatureVersion="2.0")
        self.assertError(r, 400, "IncompleteSignature")
        r = self.srv.call("DescribeRegions", SignatureMethod=None)
        self.assertError(r, 400, "IncompleteSignature")
        r = self.srv.call("DescribeRegions", SignatureVersion=None)
        self.assertError(r, 400, "IncompleteSignature")
        p = self.srv.signed_params("DescribeRegions", {})
        del p["Signature"]
        self.assertError(self.srv.raw("POST", "/?" + encode(p)), 400, "IncompleteSignature")

    def test_wrong_signature(self):
        p = self.srv.signed_params("ListKeys", {"PageSize": "2"})
        p["Signature"] = sign_v1("POST", p, "not-the-secret")
        r = self.assertError(self.srv.raw("POST", "/?" + encode(p)), 400, "SignatureDoesNotMatch")
        items = sorted((k, v) for k, v in p.items() if k != "Signature")
        cqs = "&".join(percent_encode(k) + "=" + percent_encode(v) for k, v in items)
        sts = "POST&%2F&" + percent_encode(cqs)
        self.assertTrue(r.json["Message"].startswith("Specified signature is not matched with our "
                                                     "calculation. server string to sign is:"), r)
        self.assertTrue(r.json["Message"].endswith("is:" + sts), r.json["Message"])

    def test_wrong_signature_long_request(self):
        # The whole StringToSign, however long, is in the message (SDKs parse it).
        p = self.srv.signed_params("CreateKey", {"Description": "d" * 8000})
        p["Signature"] = sign_v1("POST", p, "not-the-secret")
        r = self.assertError(self.srv.raw("POST", "/?" + encode(p)), 400, "SignatureDoesNotMatch")
        message = r.json["Message"]
        self.assertTrue("d" * 8000 in message, "StringToSign cut short: %d chars" % len(message))
        self.assertTrue(message.endswith("Version%3D2016-01-20"), message[-80:])

    def test_signature_of_other_method(self):
        p = self.srv.signed_params("DescribeRegions", {}, method="GET")
        r = self.srv.raw("POST", "/?" + encode(p))
        self.assertError(r, 400, "SignatureDoesNotMatch")
        self.assertIn("server string to sign is:POST&%2F&", r.json["Message"])

    def test_tampered_parameter(self):
        p = self.srv.signed_params("ListKeys", {"PageSize": "2"})
        p["PageSize"] = "3"
        self.assertError(self.srv.raw("POST", "/?" + encode(p)), 400, "SignatureDoesNotMatch")

    def test_unknown_access_key(self):
        r = self.srv.call("DescribeRegions", access_key=("NoSuchKeyId", "whatever-secret"))
        self.assertError(r, 404, "InvalidAccessKeyId.NotFound")
        r = self.srv.call("DescribeRegions", access_key=("k" * 500, "whatever-secret"))
        self.assertError(r, 404, "InvalidAccessKeyId.NotFound")
        r = self.srv.call("DescribeRegions", AccessKeyId=None)
        self.assertError(r, 400, "MissingParameter")

    def test_timestamp_missing(self):
        r = self.assertError(self.srv.call("DescribeRegions", Timestamp=None), 400, "IllegalTimestamp")
        self.assertIn("Timestamp", r.json["Message"])

    def test_timestamp_malformed(self):
        for ts in ("2016-13-45T99:00:00Z", "yesterday", "2024-02-30T00:00:00Z",
                   timestamp()[:-1], timestamp().replace("T", " "), timestamp() + "Z",
                   timestamp().replace("Z", "+08:00"), "0", ""):
            with self.subTest(ts=ts):
                r = self.srv.call("DescribeRegions", Timestamp=ts)
                self.assertError(r, 400, "IllegalTimestamp")

    def test_timestamp_window(self):
        for offset in (-20 * 60, 20 * 60, -16 * 60, 16 * 60, -86400 * 365):
            with self.subTest(offset=offset):
                r = self.srv.call("DescribeRegions", Timestamp=timestamp(offset))
                self.assertError(r, 400, "IllegalTimestamp")
                self.assertIn("expired", r.json["Message"])
        for offset in (-14 * 60, 14 * 60):
            r = self.srv.call("DescribeRegions", Timestamp=timestamp(offset))
            self.assertEqual(r.status, 200, r)

    def test_replayed_nonce(self):
        p = self.srv.signed_params("CreateKey", {"Description": "replay"})
        r = self.srv.raw("POST", "/?" + encode(p))
        self.assertEqual(r.status, 200, r)
        r = self.srv.raw("POST", "/?" + encode(p))
        self.assertError(r, 400, "SignatureNonceUsed")
        # Re-signed with a new timestamp but the same nonce: still a replay.
        q = self.srv.signed_params("DescribeRegions", {}, SignatureNonce=p["SignatureNonce"])
        self.assertError(self.srv.raw("POST", "/?" + encode(q)), 400, "SignatureNonceUsed")
        # GET and form body share the one cache.
        q = self.srv.signed_params("DescribeRegions", {}, method="GET")
        self.assertEqual(self.srv.raw("GET", "/?" + encode(q)).status, 200)
        r = self.srv.raw("POST", "/", body=encode(self.srv.signed_params(
            "DescribeRegions", {}, SignatureNonce=q["SignatureNonce"])).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertError(r, 400, "SignatureNonceUsed")

    def test_nonce_recorded_only_after_signature(self):
        # A forged request cannot burn a nonce its owner is about to use.
        nonce = secrets.token_hex(16)
        p = self.srv.signed_params("DescribeRegions", {}, SignatureNonce=nonce)
        bad = dict(p, Signature=sign_v1("POST", p, "wrong"))
        self.assertError(self.srv.raw("POST", "/?" + encode(bad)), 400, "SignatureDoesNotMatch")
        self.assertEqual(self.srv.raw("POST", "/?" + encode(p)).status, 200)

    def test_no_nonce_is_accepted_by_default(self):
        r = self.srv.call("DescribeRegions", SignatureNonce=None)
        self.assertEqual(r.status, 200, r)

    def test_check_order(self):
        # method → path → Action → Version → signature params → AccessKeyId → Timestamp → signature
        p = self.srv.signed_params("NoSuchAction", {}, Version="1999-01-01", Timestamp="bad",
                                   AccessKeyId="nobody")
        self.assertError(self.srv.raw("PUT", "/?" + encode(p)), 403, "UnsupportedHTTPMethod")
        self.assertError(self.srv.raw("POST", "/x?" + encode(p)), 404, "InvalidAction.NotFound")
        self.assertError(self.srv.raw("POST", "/?" + encode(p)), 404, "InvalidAction.NotFound")
        p = self.srv.signed_params("DescribeRegions", {}, Version="1999-01-01", Timestamp="bad",
                                   AccessKeyId="nobody")
        self.assertError(self.srv.raw("POST", "/?" + encode(p)), 400, "InvalidVersion")
        p = self.srv.signed_params("DescribeRegions", {}, Timestamp="bad", AccessKeyId="nobody")
        self.assertError(self.srv.raw("POST", "/?" + encode(p)), 404, "InvalidAccessKeyId.NotFound")
        p = self.srv.signed_params("DescribeRegions", {}, Timestamp="bad")
        p["Signature"] = "bad"
        self.assertError(self.srv.raw("POST", "/?" + encode(p)), 400, "IllegalTimestamp")


class SignatureV3Test(ProtocolBase):
    """§7: ACS3-HMAC-SHA256 in the Authorization header."""

    def test_query_call(self):
        r = self.srv.call_v3("CreateKey", Description="v3 key")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["Content-Type"], JSON_TYPE)
        key_id = r.json["KeyMetadata"]["KeyId"]
        r = self.srv.call_v3("DescribeKey", KeyId=key_id)
        self.assertEqual(r.json["KeyMetadata"]["Description"], "v3 key")

    def test_form_body_call(self):
        body = encode({"Description": "v3 body key", "KeySpec": "Aliyun_AES_128"}).encode()
        r = self.srv.call_v3_custom("CreateKey", body=body,
                                    content_type="application/x-www-form-urlencoded")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["KeyMetadata"]["KeySpec"], "Aliyun_AES_128")

    def test_lower_and_upper_hex(self):
        h = self.srv.v3_headers("DescribeRegions")
        h["x-acs-content-sha256"] = h["x-acs-content-sha256"].upper()
        r = self.srv.call_v3_custom("DescribeRegions", headers=h)
        self.assertEqual(r.status, 200, r)

    def test_malformed_authorization(self):
        good = self.srv.call_v3_custom  # noqa
        for auth in ("ACS3-HMAC-SHA256", "ACS3-HMAC-SHA256 ", "ACS3-HMAC-SHA256 garbage",
                     "ACS3-HMAC-SHA256 Credential=%s" % ADMIN_ID,
                     "ACS3-HMAC-SHA256 Credential=%s,SignedHeaders=host,Signature=zz" % ADMIN_ID,
                     "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host;x-acs-date,Signature=" + "a" * 64,
                     "ACS3-HMAC-SHA256 Credential=%s,SignedHeaders=,Signature=%s" % (ADMIN_ID, "a" * 64),
                     "ACS3-HMAC-SHA256 Credential=%s,Credential=%s,SignedHeaders=host,Signature=%s"
                     % (ADMIN_ID, ADMIN_ID, "a" * 64),
                     "ACS3-RSA-SHA256 Credential=%s,SignedHeaders=host,Signature=%s" % (ADMIN_ID, "a" * 64)):
            with self.subTest(auth=auth):
                r = self.srv.call_v3_custom("DescribeRegions", authorization=auth)
                self.assertError(r, 400, "IncompleteSignature")

    def test_unsupported_algorithm(self):
        r = self.srv.call_v3_custom("DescribeRegions", algorithm="ACS3-HMAC-SHA1")
        self.assertError(r, 400, "IncompleteSignature")

    def test_missing_signed_headers(self):
        for h in ("host", "x-acs-date", "x-acs-action", "x-acs-version", "x-acs-content-sha256",
                  "x-acs-signature-nonce"):
            with self.subTest(header=h):
                r = self.srv.call_v3_custom("DescribeRegions", drop_signed=(h,))
                self.assertError(r, 400, "IncompleteSignature")

    def test_signed_header_not_sent(self):
        r = self.srv.call_v3_custom("DescribeRegions", headers={"x-acs-content-sha256": None})
        self.assertEqual(r.status, 400, r)
        self.assertIn(r.code, ("IncompleteSignature", "SignatureDoesNotMatch"))

    def test_missing_action_header(self):
        r = self.srv.call_v3_custom("DescribeRegions", headers={"x-acs-action": None})
        self.assertError(r, 400, "MissingParameter")
        r = self.srv.call_v3_custom("NoSuchAction")
        self.assertError(r, 404, "InvalidAction.NotFound")
        r = self.srv.call_v3_custom("DescribeRegions", headers={"x-acs-version": "2015-01-01"})
        self.assertError(r, 400, "InvalidVersion")

    def test_action_header_and_parameter_disagree(self):
        r = self.srv.call_v3_custom("DescribeRegions", query={"Action": "ListKeys"})
        self.assertError(r, 400, "InvalidParameter")

    def test_body_hash_mismatch(self):
        body = encode({"Description": "real"}).encode()
        other = encode({"Description": "other"}).encode()
        # The declared hash is of another body (and the signature covers that declaration).
        h = self.srv.v3_headers("CreateKey", other, "application/x-www-form-urlencoded")
        r = self.srv.call_v3_custom("CreateKey", body=body, signed_body=other,
                                    content_type="application/x-www-form-urlencoded",
                                    headers={"x-acs-content-sha256": h["x-acs-content-sha256"]})
        self.assertError(r, 400, "SignatureDoesNotMatch")

    def test_wrong_signature(self):
        r = self.srv.call_v3_custom("DescribeRegions", access_key=(ADMIN_ID, "wrong-secret"))
        self.assertError(r, 400, "SignatureDoesNotMatch")
        self.assertIn("server string to sign is:ACS3-HMAC-SHA256\n", r.json["Message"])
        # Query tampered after signing.
        h = self.srv.v3_headers("ListKeys")
        signed, sig = sign_v3("POST", {"PageSize": "2"}, h, b"", self.srv.access_key_secret)
        h["authorization"] = "ACS3-HMAC-SHA256 Credential=%s,SignedHeaders=%s,Signature=%s" % (
            ADMIN_ID, signed, sig)
        r = self.srv.raw("POST", "/?PageSize=3", headers=h)
        self.assertError(r, 400, "SignatureDoesNotMatch")

    def test_unknown_credential(self):
        r = self.srv.call_v3_custom("DescribeRegions", access_key=("NoSuchKeyId", "x" * 10))
        self.assertError(r, 404, "InvalidAccessKeyId.NotFound")

    def test_replayed_nonce(self):
        nonce = secrets.token_hex(16)
        r = self.srv.call_v3_custom("DescribeRegions", headers={"x-acs-signature-nonce": nonce})
        self.assertEqual(r.status, 200, r)
        r = self.srv.call_v3_custom("DescribeRegions", headers={"x-acs-signature-nonce": nonce})
        self.assertError(r, 400, "SignatureNonceUsed")

    def test_date_skew(self):
        for offset in (-20 * 60, 20 * 60):
            r = self.srv.call_v3_custom("DescribeRegions", headers={"x-acs-date": timestamp(offset)})
            self.assertError(r, 400, "IllegalTimestamp")
        r = self.srv.call_v3_custom("DescribeRegions", headers={"x-acs-date": "yesterday"})
        self.assertError(r, 400, "IllegalTimestamp")
        r = self.srv.call_v3_custom("DescribeRegions", headers={"x-acs-date": None},
                                    drop_signed=())
        self.assertEqual(r.status, 400, r)
        self.assertIn(r.code, ("IncompleteSignature", "IllegalTimestamp"))


class LimitsTest(ProtocolBase):
    """§1 request size: small configured limits; oversize gets a JSON 4xx, and kmsd keeps serving."""

    config = DEFAULT_CONFIG + "[server]\nmax_url_bytes = 16384\nmax_body_bytes = 16384\n"

    def test_url_just_under_the_limit(self):
        r = self.srv.call("DescribeRegions", Padding="p" * 14000)
        self.assertEqual(r.status, 200, r)

    def test_oversized_url(self):
        r = self.srv.call("DescribeRegions", Padding="p" * 20 * 1024)
        self.assertError(r, 400, "InvalidParameter")
        self.assertServing()

    def test_url_beyond_what_the_parser_holds(self):
        # Up to about max_url_bytes + 14 KiB (the connection memory kmsd gives libmicrohttpd is
        # max_url_bytes + 16 KiB, docs/architecture.md) a too-long request line still gets
        # kmsd's JSON 400. Beyond that the parser cannot hold it: libmicrohttpd answers its own
        # 414 and closes (spec/protocol.md §1 allows exactly this). No crash either way, and
        # kmsd keeps serving.
        r = self.srv.call("DescribeRegions", Padding="p" * 24 * 1024)
        self.assertError(r, 400, "InvalidParameter")
        for size in (60, 400, 2000):
            try:
                r = self.srv.call("DescribeRegions", Padding="p" * size * 1024)
                self.assertEqual(r.status, 414, r)
            except (ConnectionError, ssl.SSLError, OSError):
                pass  # closed before the answer could be read: also a clean refusal
            self.assertServing()

    def test_oversized_body(self):
        r = self.srv.call("CreateKey", transport="body", Padding="p" * 20 * 1024)
        self.assertError(r, 400, "InvalidParameter")
        self.assertServing()

    def test_oversized_chunked_body(self):
        p = self.srv.signed_params("DescribeRegions", {"Padding": "p" * 40 * 1024})
        data = encode(p).encode()
        conn = self.srv.connection()
        try:
            conn.request("POST", "/", body=iter([data[i:i + 4096] for i in range(0, len(data), 4096)]),
                         encode_chunked=True,
                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                  "Transfer-Encoding": "chunked"})
            resp = conn.getresponse()
            status, body = resp.status, resp.read()
        finally:
            conn.close()
        self.assertEqual(status, 400, body)
        self.assertIn(b'"InvalidParameter"', body)
        self.assertServing()

    def test_huge_body_declared(self):
        # A Content-Length beyond the limit is answered at once, before any body is read, and
        # the connection is closed (kmsd will not drain a body it would drop).
        conn = self.srv.connection()
        try:
            conn.putrequest("POST", "/?Action=DescribeRegions")
            conn.putheader("Content-Type", "application/x-www-form-urlencoded")
            conn.putheader("Content-Length", str(1 << 40))
            conn.endheaders()
            conn.sock.settimeout(5)
            resp = conn.getresponse()
            body = resp.read()
            self.assertEqual(resp.status, 400, body)
            self.assertEqual(resp.getheader("Content-Type"), JSON_TYPE)
            self.assertIn(b'"Code":"InvalidParameter"', body)
            self.assertTrue(resp.will_close or resp.getheader("Connection", "").lower() == "close")
        finally:
            conn.close()
        # The same with Expect: 100-continue: the client never has to send the body.
        conn = self.srv.connection()
        try:
            conn.putrequest("POST", "/")
            conn.putheader("Content-Length", str(50 * 1024))
            conn.putheader("Expect", "100-continue")
            conn.endheaders()
            conn.sock.settimeout(5)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 400)
            resp.read()
        finally:
            conn.close()
        self.assertServing()


class DefaultLimitsTest(ProtocolBase):
    """The default limits take what the SDKs send: request lines and bodies of 128 KiB."""

    def test_large_url_accepted(self):
        r = self.srv.call("DescribeRegions", Padding="p" * 120 * 1024)
        self.assertEqual(r.status, 200, r)

    def test_large_body_accepted(self):
        r = self.srv.call("DescribeRegions", transport="body", Padding="p" * 120 * 1024)
        self.assertEqual(r.status, 200, r)

    def test_beyond_default_limit(self):
        r = self.srv.call("DescribeRegions", transport="body", Padding="p" * 140 * 1024)
        self.assertError(r, 400, "InvalidParameter")
        r = self.srv.call("DescribeRegions", Padding="p" * 140 * 1024)
        self.assertError(r, 400, "InvalidParameter")
        self.assertServing()


class ConnectionTest(ProtocolBase):
    """Keep-alive, and garbage on the wire."""

    def test_keep_alive_reuses_one_connection(self):
        conn = self.srv.connection()
        try:
            first = None
            for i in range(6):
                r = self.srv.call("ListKeys" if i % 2 else "DescribeRegions", conn=conn)
                self.assertEqual(r.status, 200, r)
                if first is None:
                    first = conn.sock
                self.assertIs(conn.sock, first)  # http.client reconnects only after a close
            # An error response keeps the connection open too.
            r = self.srv.call("DescribeKey", conn=conn, KeyId="nope")
            self.assertEqual(r.status, 404)
            r = self.srv.call("DescribeRegions", conn=conn)
            self.assertEqual(r.status, 200)
            self.assertIs(conn.sock, first)
        finally:
            conn.close()

    def test_garbage_is_survived(self):
        def drain(sock):
            sock.settimeout(1)
            try:
                sock.recv(100)
            except OSError:
                pass
            sock.close()

        # Plain HTTP to the TLS port.
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        drain(s)
        # Garbage inside TLS.
        raw = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        tls = self.srv.ctx.wrap_socket(raw)
        tls.sendall(b"\x00\xff garbage \r\n\r\n" * 10)
        drain(tls)
        # A request that stops half-way.
        raw = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        tls = self.srv.ctx.wrap_socket(raw)
        tls.sendall(b"POST /?Action=DescribeRegions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        tls.close()
        self.assertServing()


class ReplayCacheFullTest(ProtocolBase):
    """DESIGN.md "Replay cache": when full, kmsd fails closed (503) rather than forget a nonce."""

    config = "[auth]\nreplay_cache_capacity = 1024\n"

    def test_full_cache_fails_closed(self):
        conn = self.srv.connection()
        first = self.srv.signed_params("DescribeRegions", {})
        self.assertEqual(self.srv.send_signed(first, conn=conn).status, 200)
        try:
            for _ in range(20000):
                r = self.srv.call("DescribeRegions", conn=conn)
                if r.status != 200:
                    break
        finally:
            conn.close()
        self.assertError(r, 503, "ServiceUnavailableTemporary")
        # Nothing was forgotten to make room: the first nonce is still a replay.
        self.assertError(self.srv.send_signed(first), 400, "SignatureNonceUsed")
        # Requests without a nonce have nothing to remember (require_nonce is off by default).
        self.assertEqual(self.srv.call("DescribeRegions", SignatureNonce=None).status, 200)


class RequireNonceTest(ProtocolBase):
    """protocol.md §9.2: with require_nonce = true a request without a nonce is refused."""

    config = DEFAULT_CONFIG + "require_nonce = true\n"

    def test_nonce_required(self):
        r = self.srv.call("DescribeRegions", SignatureNonce=None)
        self.assertError(r, 400, "MissingParameter")
        self.assertIn('"SignatureNonce"', r.json["Message"])
        r = self.srv.call_v3_custom("DescribeRegions", headers={"x-acs-signature-nonce": None})
        self.assertError(r, 400, "MissingParameter")
        self.assertEqual(self.srv.call("DescribeRegions").status, 200)


if __name__ == "__main__":
    unittest.main()
