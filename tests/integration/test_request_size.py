"""Request-line size limits (spec/protocol.md §1 "Request size"): the SDKs put every parameter in
the URL, so a request line up to max_url_bytes (128 KiB by default) is served, one a little past
it gets kmsd's own JSON error, and a far longer one libmicrohttpd's 414. The per-connection
memory pool is sized for exactly that (src/http/server.c), and libmicrohttpd zeroes the whole
pool after every request, so these tests guard the limit while the pool is kept small for speed
(docs/architecture.md, "The HTTP front end's memory pool")."""

import unittest

from kmsd import Server, percent_encode


class RequestSizeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server().start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def url_length(self, p):
        return len("/?" + "&".join(percent_encode(k) + "=" + percent_encode(v) for k, v in p.items()))

    def padded(self, target, extra=0):
        """A signed ListKeys whose URL is exactly target bytes (Padding and the extra TagN
        parameters are ignored by ListKeys)."""
        params = {"Tag%d" % i: "v" for i in range(extra)}
        params["Padding"] = ""
        for _ in range(50):  # each signature's encoded length differs by a few bytes
            p = self.srv.signed_params("ListKeys", params)
            diff = target - self.url_length(p)
            if diff == 0:
                return p
            params["Padding"] = "a" * max(0, len(params["Padding"]) + diff)
        self.fail("no signed request of exactly %d bytes" % target)

    def test_request_line_at_the_limit_is_served(self):
        r = self.srv.send_signed(self.padded(128 * 1024))
        self.assertEqual(r.status, 200, r)
        self.assertIn("Keys", r.json)

    def test_request_line_at_the_limit_with_many_parameters_is_served(self):
        # The pool also holds one record per parameter; SDK requests have far fewer than this.
        r = self.srv.send_signed(self.padded(128 * 1024, extra=150))
        self.assertEqual(r.status, 200, r)

    def test_request_line_past_the_limit_gets_a_json_error(self):
        r = self.srv.send_signed(self.padded(128 * 1024 + 1))
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["Code"], "InvalidParameter", r)
        self.assertIn("RequestSize", r.json["Message"])
        r = self.srv.send_signed(self.padded(128 * 1024 + 4096))
        self.assertEqual(r.status, 400, r)
        self.assertIn("RequestSize", r.json["Message"])

    def test_request_line_far_past_the_limit_is_refused(self):
        # Past what the pool holds, libmicrohttpd answers 414 itself and closes (protocol.md §1
        # allows that when the parser cannot continue); never a 200, never a hang.
        for size in (160 * 1024, 512 * 1024):
            r = self.srv.send_signed(self.padded(size))
            self.assertIn(r.status, (400, 414), r)

    def test_connection_serves_small_requests_after_a_large_one(self):
        conn = self.srv.connection()
        try:
            r = self.srv.send_signed(self.padded(120 * 1024), conn=conn)
            self.assertEqual(r.status, 200, r)
            for _ in range(3):
                r = self.srv.call("ListKeys", conn=conn)
                self.assertEqual(r.status, 200, r)
        finally:
            conn.close()

    def test_long_headers_are_read_whole(self):
        # Past the front end's 1 KiB of inline header room: a V3 signature over 4 KiB of
        # signed x-acs-* headers verifies only if every name and value arrived intact.
        pads = {"x-acs-pad-%02d" % i: ("%02d" % i) * 80 for i in range(24)}
        r = self.srv.call_v3_custom("DescribeRegions", headers=pads)
        self.assertEqual(r.status, 200, r)

    def test_too_many_headers_get_a_json_error(self):
        p = self.srv.signed_params("ListKeys", {})
        encoded = "&".join(percent_encode(k) + "=" + percent_encode(v) for k, v in p.items())
        headers = {"x-extra-%02d" % i: "v" for i in range(70)}
        r = self.srv.raw("POST", "/?" + encoded, headers=headers)
        self.assertEqual(r.status, 400, r)
        self.assertIn("RequestSize", r.json["Message"])


if __name__ == "__main__":
    unittest.main()
