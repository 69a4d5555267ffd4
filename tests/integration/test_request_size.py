"""Request-line size limits (spec/protocol.md §1 "Request size"): the SDKs put every parameter in
the URL, so a request line up to max_url_bytes (128 KiB by default) is served, and one somewhat
past it gets kmsd's own JSON error, not libmicrohttpd's HTML page. The per-connection memory
pool is sized for exactly that (src/http/server.c), and libmicrohttpd zeroes the whole pool after
every request, so these tests guard the limit when the pool is kept small for speed."""

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

    def padded(self, target):
        """A signed ListKeys whose request line is about target bytes (Padding is ignored)."""
        p = self.srv.signed_params("ListKeys", {"Padding": ""})
        p = self.srv.signed_params("ListKeys", {"Padding": "a" * (target - self.url_length(p))})
        return p

    def test_request_line_at_the_limit_is_served(self):
        p = self.padded(128 * 1024 - 512)
        self.assertLessEqual(self.url_length(p), 128 * 1024)
        r = self.srv.send_signed(p)
        self.assertEqual(r.status, 200, r)
        self.assertIn("Keys", r.json)

    def test_request_line_past_the_limit_gets_a_json_error(self):
        for size in (128 * 1024 + 1024, 160 * 1024):
            r = self.srv.send_signed(self.padded(size))
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json["Code"], "InvalidParameter", r)
            self.assertIn("RequestSize", r.json["Message"])

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


if __name__ == "__main__":
    unittest.main()
