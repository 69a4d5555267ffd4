"""Smoke test of the harness itself: kmsd starts, answers a signed V1 and a V3 call, stops with 0."""

import unittest

from kmsd import Server


class SmokeTest(unittest.TestCase):
    def test_start_call_stop(self):
        srv = Server().start()
        try:
            r = srv.call("DescribeRegions")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["Regions"]["Region"][0]["RegionId"], "cn-hangzhou")
            r = srv.call_v3("ListKeys", PageSize="5")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["PageSize"], 5)
        finally:
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
