"""Abuse and limits (issue 8): slow clients (slowloris), idle connections, connection floods,
oversized header sets and a full replay cache must not stop service to well-behaved clients.

Attackers connect from other loopback addresses (127.0.0.2, 127.0.0.3, ...: Linux routes all of
127/8 to lo), so kmsd's per-address limit ([server] max_connections_per_ip) tells them apart from
the well-behaved client on 127.0.0.1."""

import os
import socket
import ssl
import threading
import time
import unittest

from common import KmsTestCase
from kmsd import percent_encode, timeout_scale, timestamp


def attacker_socket(port, source, timeout=5):
    """A TCP connection to kmsd from the given loopback source address."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def closed_by_peer(s, wait):
    """True when kmsd closes (or resets) the connection within wait seconds. Whatever it sends
    first (a TLS alert, an HTTP error) is read and dropped."""
    deadline = time.time() + wait
    try:
        while True:
            s.settimeout(max(0.001, deadline - time.time()))
            if s.recv(4096) == b"":
                return True
    except socket.timeout:
        return False
    except (ConnectionResetError, ssl.SSLError, OSError):
        return True


class AbuseBase(KmsTestCase):
    def assertServedWithin(self, seconds, calls=5):
        """A well-behaved client (127.0.0.1) gets answers, each within `seconds`."""
        for _ in range(calls):
            started = time.time()
            r = self.srv.call("DescribeRegions")
            self.assertEqual(r.status, 200, r)
            self.assertLess(time.time() - started, seconds * timeout_scale())


class SlowClientTest(AbuseBase):
    """Slowloris: many connections from one address, each dribbling a request byte by byte."""

    config = "[server]\nmax_connections_per_ip = 8\nconnection_timeout = 4\n"

    def test_slow_clients_do_not_block_others(self):
        stop = threading.Event()
        conns, threads, refused = [], [], 0
        try:
            log_before = self.srv.stderr_text().count("connection limit")
            for i in range(60):
                s = attacker_socket(self.srv.port, "127.0.0.2")
                conns.append(s)
            # Beyond 8 connections from 127.0.0.2, kmsd closes each new one at once ...
            for s in conns[8:]:
                if closed_by_peer(s, 2):
                    refused += 1
            self.assertGreaterEqual(refused, 50, "the per-address limit did not hold")
            # ... and says so in its log, but not once per connection (at most 20 lines / 10 s).
            logged = self.srv.stderr_text().count("connection limit") - log_before
            self.assertGreater(logged, 0)
            self.assertLessEqual(logged, 20)
            slow = conns[:8]

            # The 8 admitted ones: a TLS handshake, then a request line a byte every 0.3 s.
            def dribble(raw):
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                try:
                    with ctx.wrap_socket(raw) as tls:
                        for b in b"POST /?Action=DescribeRegions HTTP/1.1\r\nHost: x\r\nX-Slow: ":
                            if stop.is_set():
                                break
                            tls.sendall(bytes([b]))
                            time.sleep(0.3)
                except OSError:
                    pass

            threads = [threading.Thread(target=dribble, args=(s,), daemon=True) for s in slow]
            for t in threads:
                t.start()
            time.sleep(1)
            # Meanwhile, 127.0.0.1 is served at once, again and again.
            self.assertServedWithin(3, calls=20)
        finally:
            stop.set()
            for t in threads:
                t.join(5)
            for s in conns:
                s.close()
        self.assertServedWithin(3)

    def test_idle_connections_are_closed(self):
        # A connection that sends nothing (no TLS handshake) and one that stops half-way
        # through its headers are both closed after connection_timeout (4 s here).
        idle = attacker_socket(self.srv.port, "127.0.0.3")
        raw = attacker_socket(self.srv.port, "127.0.0.3")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        half = ctx.wrap_socket(raw)
        half.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-")
        started = time.time()
        try:
            self.assertTrue(closed_by_peer(idle, 10 * timeout_scale()))
            self.assertTrue(closed_by_peer(half, 10 * timeout_scale()))
            self.assertLess(time.time() - started, 9 * timeout_scale())
        finally:
            idle.close()
            half.close()
        self.assertServedWithin(3)


class FloodTest(AbuseBase):
    """More connections than max_connections: no crash, no wedge, and service comes back."""

    config = "[server]\nmax_connections = 32\nmax_connections_per_ip = 0\n"

    def test_connection_flood(self):
        socks = []
        try:
            for i in range(300):
                try:
                    socks.append(attacker_socket(self.srv.port, "127.0.0.%d" % (4 + i % 50), timeout=2))
                except OSError:
                    pass  # the backlog is full: also a refusal
            time.sleep(1)
            self.assertIsNone(self.srv.proc.poll(), "kmsd died under the flood")
            # At most max_connections of them are held open; the others are closed or wait in
            # the listen backlog without costing kmsd anything.
            open_now = sum(1 for s in socks if not closed_by_peer(s, 0.01))
            self.assertGreater(open_now, 0)
        finally:
            for s in socks:
                s.close()
        # Once the flood is gone, kmsd serves again at once.
        deadline = time.time() + 10 * timeout_scale()
        while True:
            try:
                r = self.srv.call("DescribeRegions")
                if r.status == 200:
                    break
            except OSError:
                pass
            self.assertLess(time.time(), deadline, "kmsd did not recover from the flood")
            time.sleep(0.2)
        self.assertServedWithin(3)
        self.assertIsNone(self.srv.proc.poll())


class OversizeTest(AbuseBase):
    """Header sets beyond what kmsd keeps get clean errors; kmsd keeps serving."""

    def test_too_many_headers(self):
        # kmsd keeps 64 headers; a request with more is refused as a whole, never truncated.
        p = self.srv.signed_params("DescribeRegions", {})
        path = "/?" + "&".join(percent_encode(k) + "=" + percent_encode(v) for k, v in p.items())
        r = self.srv.raw("POST", path, headers={"X-Pad-%03d" % i: "v" for i in range(100)})
        self.assertEqual((r.status, r.code), (400, "InvalidParameter"), r)
        self.assertServedWithin(3)

    def test_huge_header(self):
        # One header far beyond the connection's memory: libmicrohttpd answers 431 (or closes).
        conn = self.srv.connection()
        try:
            r = self.srv.raw("POST", "/?Action=DescribeRegions", headers={"X-Big": "b" * (2 << 20)},
                             conn=conn)
            self.assertIn(r.status, (400, 413, 414, 431), r)
        except (ConnectionError, ssl.SSLError, OSError):
            pass  # closed before the answer could be read: a clean refusal too
        finally:
            conn.close()
        self.assertServedWithin(3)


class ReplayCacheExpiryTest(AbuseBase):
    """A full replay cache fails closed (503) until its entries expire, and still refuses
    replays meanwhile. Entries live until the request's Timestamp leaves the window: requests
    signed 40 s in the past under a 60 s window make room again about 20 s later, which leaves
    a slow (sanitizer) build ample time to fill the cache and probe it before any expires."""

    config = "[auth]\nreplay_cache_capacity = 1024\ntimestamp_window = 60\n"

    @unittest.skipIf(timeout_scale() > 1, "the cache must fill faster than its entries expire")
    def test_full_until_entries_expire(self):
        conn = self.srv.connection()
        first = self.srv.signed_params("DescribeRegions", {}, Timestamp=timestamp(-40))
        self.assertEqual(self.srv.send_signed(first, conn=conn).status, 200)
        started = time.time()
        try:
            for _ in range(20000):
                p = self.srv.signed_params("DescribeRegions", {}, Timestamp=timestamp(-40))
                r = self.srv.send_signed(p, conn=conn)
                if r.status != 200:
                    break
            self.assertEqual((r.status, r.code), (503, "ServiceUnavailableTemporary"), r)
            self.assertLess(time.time() - started, 15, "too slow to fill the cache in time")
            # Full: a replay is still a replay (nothing was evicted to make room) ...
            r = self.srv.send_signed(first, conn=conn)
            self.assertEqual((r.status, r.code), (400, "SignatureNonceUsed"), r)
            # ... and new nonces keep failing closed (many land in two full buckets).
            fails = sum(self.srv.call("DescribeRegions", conn=conn).status == 503 for _ in range(200))
            self.assertGreater(fails, 0)
            # Once the entries have expired, every request is served again.
            time.sleep(max(0, started + 22 - time.time()))
            for _ in range(200):
                r = self.srv.call("DescribeRegions", conn=conn)
                self.assertEqual(r.status, 200, r)
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()
