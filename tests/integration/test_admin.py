"""The admin listener (issue 7, docs/operations.md "Health and metrics"): off by default;
/healthz answers 200 "ok", and 503 once a keystore stops answering; /metrics parses as Prometheus text (format 0.0.4) and its counters
move with requests; a non-loopback address without TLS is refused; TLS works when asked for."""

import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from kmsd import DEFAULT_CONFIG, Server

ADMIN_LINE = re.compile(r"kmsd admin on (https?)://127\.0\.0\.1:(\d+) ")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """{(name, frozenset(labels)): value} and {name: type}; raises on anything malformed."""
    samples, types, helps = {}, {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, "TYPE twice: " + name
            types[name] = kind
            continue
        assert line and not line.startswith("#"), "unexpected line %r" % line
        m = SAMPLE.match(line)
        assert m, "not a sample: %r" % line
        name, labels = m.group(1), frozenset(LABEL.findall(m.group(3) or ""))
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or base in types, "no TYPE before " + line
        key = (name, labels)
        assert key not in samples, "sample twice: " + line
        samples[key] = float(m.group(4))
    assert set(types) <= helps, "a metric without HELP"
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


class AdminTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(config=DEFAULT_CONFIG + "[admin]\nlisten = 127.0.0.1:0\n").start()
        m = None
        for line in cls.srv.stdout_lines:
            m = m or ADMIN_LINE.search(line)
        assert m, cls.srv.stdout_lines
        cls.admin_port = int(m.group(2))

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        cls.srv.__exit__(None, None, None)
        assert status == 0, status

    def get(self, path, method="GET"):
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=30)
        try:
            conn.request(method, path)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read().decode()
        finally:
            conn.close()

    def metrics(self):
        status, headers, body = self.get("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers)
        return parse_prometheus(body)

    def test_healthz(self):
        status, headers, body = self.get("/healthz")
        self.assertEqual((status, body), (200, "ok\n"))
        self.assertEqual(headers["Cache-Control"], "no-store")

    def test_other_paths_and_methods(self):
        self.assertEqual(self.get("/")[0], 404)
        self.assertEqual(self.get("/?Action=ListKeys")[0], 404)
        self.assertEqual(self.get("/metrics", method="POST")[0], 405)
        self.assertEqual(self.get("/healthz", method="HEAD")[0], 200)
        # And the API listener does not serve the admin paths.
        r = self.srv.raw("GET", "/metrics")
        self.assertNotEqual(r.status, 200)

    def test_request_counters_move(self):
        samples, types = self.metrics()
        self.assertEqual(types["kmsd_requests_total"], "counter")
        self.assertEqual(types["kmsd_request_duration_seconds"], "histogram")
        ok_before = value(samples, "kmsd_requests_total", action="CreateKey", code="Success")
        nf_before = value(samples, "kmsd_requests_total", action="DescribeKey",
                          code="Forbidden.KeyNotFound")
        count_before = value(samples, "kmsd_request_duration_seconds_count", action="CreateKey")
        for _ in range(3):
            self.srv.create_key()
        self.srv.call("DescribeKey", KeyId="missing-key")
        self.srv.call("NoSuchAction")
        samples, _ = self.metrics()
        self.assertEqual(value(samples, "kmsd_requests_total", action="CreateKey", code="Success"),
                         ok_before + 3)
        self.assertEqual(value(samples, "kmsd_requests_total", action="DescribeKey",
                               code="Forbidden.KeyNotFound"), nf_before + 1)
        self.assertGreaterEqual(value(samples, "kmsd_requests_total", action="(none)",
                                      code="InvalidAction.NotFound"), 1)
        self.assertEqual(value(samples, "kmsd_request_duration_seconds_count", action="CreateKey"),
                         count_before + 3)

    def test_histograms_are_cumulative(self):
        self.srv.create_key()
        samples, _ = self.metrics()
        actions = {dict(labels)["action"] for (name, labels) in samples
                   if name == "kmsd_request_duration_seconds_bucket"}
        self.assertIn("CreateKey", actions)
        for action in actions:
            buckets = sorted(((float("inf") if dict(l)["le"] == "+Inf" else float(dict(l)["le"])), v)
                             for (n, l), v in samples.items()
                             if n == "kmsd_request_duration_seconds_bucket"
                             and dict(l)["action"] == action)
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts), action)
            self.assertEqual(buckets[-1][0], float("inf"))
            self.assertEqual(counts[-1], value(samples, "kmsd_request_duration_seconds_count",
                                               action=action))
            self.assertGreater(value(samples, "kmsd_request_duration_seconds_sum", action=action), 0)

    def test_gauges(self):
        samples, types = self.metrics()
        self.assertEqual(types["kmsd_keys"], "gauge")
        enabled = value(samples, "kmsd_keys", state="Enabled")
        disabled = value(samples, "kmsd_keys", state="Disabled")
        key = self.srv.create_key()
        self.srv.ok("DisableKey", KeyId=key["KeyId"])
        other = self.srv.create_key()
        self.srv.ok("ScheduleKeyDeletion", KeyId=other["KeyId"], PendingWindowInDays=7)
        samples, _ = self.metrics()
        self.assertEqual(value(samples, "kmsd_keys", state="Enabled"), enabled)
        self.assertEqual(value(samples, "kmsd_keys", state="Disabled"), disabled + 1)
        self.assertGreaterEqual(value(samples, "kmsd_keys", state="PendingDeletion"), 1)
        self.assertIn(("kmsd_keys", frozenset({("state", "PendingImport")})), samples)
        self.srv.ok("CreateSecret", SecretName="metrics-secret", VersionId="v1", SecretData="x")
        samples, _ = self.metrics()
        self.assertGreaterEqual(value(samples, "kmsd_secrets"), 1)
        # Every request here carries a nonce: the replay cache holds them.
        self.assertGreater(value(samples, "kmsd_replay_cache_entries"), 0)
        self.assertEqual(value(samples, "kmsd_replay_cache_capacity"), 200000)
        self.assertEqual(value(samples, "kmsd_audit_dropped_total"), 0)
        self.assertIn(("kmsd_build_info", frozenset({("version", "0.1.0")})), samples)
        for name in ("kmsd_maintenance_runs_total", "kmsd_maintenance_failures_total",
                     "kmsd_audit_records_total", "kmsd_audit_queue_bytes",
                     "kmsd_start_time_seconds", "kmsd_replay_cache_unpersisted_total"):
            self.assertIn(name, types)

    def test_maintenance_and_audit_counters(self):
        samples, _ = self.metrics()
        runs = value(samples, "kmsd_maintenance_runs_total")
        self.srv.advance_clock(1)
        samples, _ = self.metrics()
        self.assertGreaterEqual(value(samples, "kmsd_maintenance_runs_total"), runs + 1)
        self.assertEqual(value(samples, "kmsd_maintenance_failures_total"), 0)
        written = value(samples, "kmsd_audit_records_total")
        self.srv.call("ListKeys")
        deadline = time.time() + 5
        while time.time() < deadline:
            samples, _ = self.metrics()
            if value(samples, "kmsd_audit_records_total") > written:
                break
            time.sleep(0.2)
        self.assertGreater(value(samples, "kmsd_audit_records_total"), written)


class AdminConfigTest(unittest.TestCase):

    def test_off_by_default(self):
        with Server() as srv:
            self.assertFalse(any("admin" in line for line in srv.stdout_lines))
            self.assertEqual(srv.stop(), 0)

    def test_non_loopback_without_tls_is_refused(self):
        srv = Server(config=DEFAULT_CONFIG + "[admin]\nlisten = 0.0.0.0:0\n")
        with self.assertRaises(RuntimeError):
            srv.start()
        self.assertIn("is not a loopback address", srv.stderr_text())
        srv.stop()
        srv.__exit__(None, None, None)

    def test_bad_listen_value(self):
        srv = Server(config=DEFAULT_CONFIG + "[admin]\nlisten = nonsense\n")
        with self.assertRaises(RuntimeError):
            srv.start()
        self.assertIn("admin.listen: expected HOST:PORT", srv.stderr_text())
        srv.stop()
        srv.__exit__(None, None, None)

    def test_tls(self):
        config = DEFAULT_CONFIG + "[admin]\nlisten = 127.0.0.1:0\ntls = true\n"
        with Server(config=config) as srv:
            port = None
            for line in srv.stdout_lines:
                m = re.search(r"kmsd admin on https://127\.0\.0\.1:(\d+) ", line)
                port = port or (m and int(m.group(1)))
            self.assertIsNotNone(port, srv.stdout_lines)
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            self.assertEqual((r.status, r.read()), (200, b"ok\n"))
            conn.close()
            # Plain HTTP is not answered there.
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                s.settimeout(5)
                try:
                    data = s.recv(100)
                except (ConnectionResetError, socket.timeout):
                    data = b""
                self.assertFalse(data.startswith(b"HTTP/1.1 200"), data)
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()


class HealthFailureTest(unittest.TestCase):
    """/healthz says 503 when a keystore stops answering: in sealing mode the master key is a
    token object, and another process deletes it while kmsd runs."""

    def test_keystore_failure(self):
        if shutil.which("pkcs11-tool") is None:
            self.skipTest("pkcs11-tool (opensc) is not installed")
        tmp = tempfile.mkdtemp(prefix="kmsd-health-")
        self.addCleanup(shutil.rmtree, tmp, True)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        proc = subprocess.run([os.path.join(root, "tests", "softhsm-token.sh"),
                               os.path.join(tmp, "hsm"), "health-token", "1234"],
                              capture_output=True, text=True)
        if proc.returncode == 77:
            self.skipTest("SoftHSM2 is not installed")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        tok = dict(line.split("=", 1) for line in proc.stdout.split())
        config = (DEFAULT_CONFIG + "[admin]\nlisten = 127.0.0.1:0\n[pkcs11]\nmodule = %s\n"
                  "token_label = health-token\npin_file = %s\nseal_master_key = true\n"
                  "master_key_label = health-master\n" % (tok["MODULE"], tok["PIN_FILE"]))
        with Server(config=config, env={"SOFTHSM2_CONF": tok["SOFTHSM2_CONF"]}) as srv:
            port = int(next(ADMIN_LINE.search(l) for l in srv.stdout_lines
                            if ADMIN_LINE.search(l)).group(2))

            def healthz():
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                result = (r.status, r.read().decode())
                conn.close()
                return result

            self.assertEqual(healthz(), (200, "ok\n"))
            gone = subprocess.run(["pkcs11-tool", "--module", tok["MODULE"], "--token-label",
                                   "health-token", "--login", "--pin", "1234", "--delete-object",
                                   "--type", "secrkey", "--label", "health-master"],
                                  capture_output=True, text=True,
                                  env=dict(os.environ, SOFTHSM2_CONF=tok["SOFTHSM2_CONF"]))
            self.assertEqual(gone.returncode, 0, gone.stderr)
            status, body = healthz()
            self.assertEqual(status, 503, body)
            self.assertIn("keystore", body)
            srv.stop()
