"""Running as a service (issue 7): SIGHUP reloads the TLS certificate under a running listener
(a broken, mismatched or expired new certificate keeps the old one), SIGTERM stops gracefully
(requests under way are answered, every acknowledged request is durable, exit status 0), and the
data directory's lock keeps a second kmsd away."""

import base64
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from kmsd import DEFAULT_CONFIG, Server, b64, binary, percent_encode

OPENSSL = shutil.which("openssl")


def make_cert(directory, name, days=2, start=None, end=None):
    """A self-signed EC P-256 certificate and key in directory; (cert_path, key_path, der)."""
    cert, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    if start is None:
        subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", str(days), "-subj", "/CN=" + name],
                       check=True, capture_output=True)
    else:
        # A certificate with chosen dates (e.g. expired) through `openssl ca -selfsign`.
        ca = tempfile.mkdtemp(dir=directory)
        csr = os.path.join(ca, "r.csr")
        subprocess.run([OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
                        "-subj", "/CN=" + name], check=True, capture_output=True)
        open(os.path.join(ca, "index.txt"), "w").close()
        with open(os.path.join(ca, "serial"), "w") as f:
            f.write("01\n")
        with open(os.path.join(ca, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s\n"
                    "serial = %s/serial\ndefault_md = sha256\npolicy = p\n[p]\n"
                    "commonName = supplied\n" % (ca, ca, ca))
        subprocess.run([OPENSSL, "ca", "-batch", "-config", os.path.join(ca, "ca.cnf"),
                        "-selfsign", "-keyfile", key, "-in", csr, "-out", cert,
                        "-startdate", start, "-enddate", end], check=True, capture_output=True)
    os.chmod(key, 0o600)
    der = subprocess.run([OPENSSL, "x509", "-in", cert, "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return cert, key, der


def served_der(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as tls:
            return tls.getpeercert(binary_form=True)


def wait_for_log(srv, text, count=1, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if srv.stderr_text().count(text) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("no %d x %r in the log:\n%s" % (count, text, srv.stderr_text()[-2000:]))


@unittest.skipIf(OPENSSL is None, "no openssl command")
class TlsReloadTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kmsd-tls-")
        cls.cert = os.path.join(cls.tmp, "server.crt")
        cls.key = os.path.join(cls.tmp, "server.key")
        cert, key, cls.der_a = make_cert(cls.tmp, "first")
        shutil.copy(cert, cls.cert)
        shutil.copy(key, cls.key)
        config = DEFAULT_CONFIG + "[tls]\ncert_file = %s\nkey_file = %s\n" % (cls.cert, cls.key)
        cls.srv = Server(config=config).start()

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        cls.srv.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert status == 0, status

    def install(self, cert, key):
        shutil.copy(cert, self.cert)
        shutil.copy(key, self.key)

    def hup(self, expect):
        before = self.srv.stderr_text().count(expect)
        self.srv.proc.send_signal(signal.SIGHUP)
        wait_for_log(self.srv, expect, before + 1)

    def test_reload_sequence(self):
        self.assertEqual(served_der(self.srv.port), self.der_a)
        # A kept-alive connection made before the reload goes on working after it.
        conn = self.srv.connection()
        self.assertEqual(self.srv.call("ListKeys", conn=conn).status, 200)

        cert_b, key_b, der_b = make_cert(self.tmp, "second")
        self.install(cert_b, key_b)
        self.hup("tls: reloaded certificate")
        self.assertEqual(served_der(self.srv.port), der_b)
        self.assertEqual(self.srv.call("ListKeys", conn=conn).status, 200)
        self.assertEqual(self.srv.call("ListKeys").status, 200)
        conn.close()

        # Broken files, a key of another certificate, an expired certificate: all refused, and
        # the certificate in use stays.
        with open(self.cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        self.hup("tls: reload refused")
        self.assertIn("is not a PEM certificate chain", self.srv.stderr_text())
        self.assertEqual(served_der(self.srv.port), der_b)

        cert_c, _, _ = make_cert(self.tmp, "third")
        self.install(cert_c, key_b)
        self.hup("tls: reload refused")
        self.assertIn("does not belong to the certificate", self.srv.stderr_text())
        self.assertEqual(served_der(self.srv.port), der_b)

        cert_d, key_d, _ = make_cert(self.tmp, "expired", start="20200101000000Z",
                                     end="20200102000000Z")
        self.install(cert_d, key_d)
        self.hup("tls: reload refused")
        self.assertIn("is expired", self.srv.stderr_text())
        self.assertEqual(served_der(self.srv.port), der_b)

        os.unlink(self.key)
        self.hup("tls: reload refused")
        self.assertEqual(served_der(self.srv.port), der_b)
        self.assertEqual(self.srv.call("ListKeys").status, 200)

        # And a good one again is taken.
        cert_e, key_e, der_e = make_cert(self.tmp, "fifth")
        self.install(cert_e, key_e)
        self.hup("tls: reloaded certificate")
        self.assertEqual(served_der(self.srv.port), der_e)
        self.assertEqual(self.srv.call("ListKeys").status, 200)

    def test_bad_certificate_at_start(self):
        cert, _, _ = make_cert(self.tmp, "start-cert")
        _, other_key, _ = make_cert(self.tmp, "start-other")
        config = DEFAULT_CONFIG + "[tls]\ncert_file = %s\nkey_file = %s\n" % (cert, other_key)
        srv = Server(config=config)
        with self.assertRaises(RuntimeError):
            srv.start()
        self.assertIn("does not belong to the certificate", srv.stderr_text())
        srv.stop()
        srv.__exit__(None, None, None)


class GracefulStopTest(unittest.TestCase):

    def test_sigterm_under_load_keeps_every_acknowledged_request(self):
        with Server() as srv:
            key = srv.create_key()["KeyId"]
            acked_keys, acked_blobs, lock = [], [], threading.Lock()
            after_sigterm = {"acked": 0, "failed": 0}
            stopping = threading.Event()
            done = threading.Event()

            def worker(n):
                conn = None
                i = 0
                while not done.is_set():
                    i += 1
                    try:
                        conn = conn or srv.connection()
                        if i % 2:
                            r = srv.call("CreateKey", conn=conn, Description="load %d/%d" % (n, i))
                        else:
                            pt = ("plaintext %d/%d" % (n, i)).encode()
                            r = srv.call("Encrypt", conn=conn, KeyId=key, Plaintext=b64(pt))
                        if r.headers.get("Connection", "").lower() == "close":
                            conn.close()
                            conn = None
                        if r.status != 200:
                            continue
                        with lock:
                            if i % 2:
                                acked_keys.append(r.json["KeyMetadata"]["KeyId"])
                            else:
                                acked_blobs.append((r.json["CiphertextBlob"], pt))
                            if stopping.is_set():
                                after_sigterm["acked"] += 1
                    except (OSError, http.client.HTTPException):
                        if conn is not None:
                            conn.close()
                        conn = None
                        if stopping.is_set():
                            with lock:
                                after_sigterm["failed"] += 1
                            time.sleep(0.01)

            threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
            for t in threads:
                t.start()
            time.sleep(1.5)
            stopping.set()
            srv.proc.send_signal(signal.SIGTERM)
            status = srv.proc.wait(60)
            done.set()
            for t in threads:
                t.join(60)
            self.assertEqual(status, 0, srv.stderr_text()[-3000:])
            self.assertIn("stopping on signal 15", srv.stderr_text())
            self.assertGreater(len(acked_keys), 5)
            self.assertGreater(len(acked_blobs), 5)
            self.assertGreater(after_sigterm["failed"], 0)  # new connections were refused
            srv.stop()
            # The WAL was checkpointed into the database file on the way out.
            wal = os.path.join(srv.data_dir, "kmsd.db-wal")
            self.assertTrue(not os.path.exists(wal) or os.path.getsize(wal) == 0)

            srv.start()
            for key_id in acked_keys:
                r = srv.call("DescribeKey", KeyId=key_id)
                self.assertEqual(r.status, 200, (key_id, r))
            for blob, pt in acked_blobs:
                r = srv.call("Decrypt", CiphertextBlob=blob)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(base64.b64decode(r.json["Plaintext"]), pt)
            self.assertEqual(srv.stop(), 0)

    def test_request_under_way_is_answered(self):
        """A request whose body is still arriving when SIGTERM comes is served, then kmsd stops;
        a new connection meanwhile is refused."""
        with Server() as srv:
            params = srv.signed_params("CreateKey", {"Description": "in flight"})
            body = "&".join(percent_encode(k) + "=" + percent_encode(v)
                            for k, v in params.items()).encode()
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            raw = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            tls = ctx.wrap_socket(raw)
            head = ("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\n"
                    "Content-Length: %d\r\n\r\n" % len(body)).encode()
            tls.sendall(head + body[:10])
            time.sleep(0.3)
            srv.proc.send_signal(signal.SIGTERM)
            wait_for_log(srv, "stopping on signal 15")
            # The door is closed for new connections.
            with self.assertRaises(OSError):
                with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as late:
                    with ctx.wrap_socket(late) as late_tls:
                        late_tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                        if not late_tls.recv(100):
                            raise OSError("closed")
            self.assertIsNone(srv.proc.poll())  # still waiting for our request
            tls.sendall(body[10:])
            response = b""
            while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
                chunk = tls.recv(65536)
                if not chunk:
                    break
                response += chunk
            tls.close()
            self.assertTrue(response.startswith(b"HTTP/1.1 200"), response[:300])
            self.assertIn(b"connection: close", response.lower())
            key_id = response.split(b'"KeyId":"')[1].split(b'"')[0].decode()
            self.assertEqual(srv.proc.wait(30), 0)
            srv.stop()
            srv.start()
            self.assertEqual(srv.call("DescribeKey", KeyId=key_id).status, 200)
            self.assertEqual(srv.stop(), 0)

    def test_timeout_cuts_a_stalled_request(self):
        with Server(config=DEFAULT_CONFIG + "[server]\nshutdown_timeout = 1\n") as srv:
            raw = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            tls = ctx.wrap_socket(raw)
            tls.sendall(b"POST /?a=b HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            time.sleep(0.3)
            started = time.time()
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(30), 0)
            self.assertLess(time.time() - started, 15)
            self.assertIn("still under way", srv.stderr_text())
            tls.close()


class StopWhileConnectingTest(unittest.TestCase):
    """SIGTERM right after start and while clients keep opening connections, many times over:
    every stop ends with exit status 0. MHD_quiesce_daemon, used for this before, races
    libmicrohttpd 0.9.75's epoll workers (a worker in its first loop, or woken by a connection,
    removes the listen socket from its epoll set while the quiescing thread does the same) and
    aborted kmsd now and then with "Failed to remove listen FD from epoll set" - seen in CI on a
    loaded machine. The race is a matter of timing and did not reproduce on demand, so this test
    checks what it can: that stopping right after start and under connection churn ends cleanly."""

    ROUNDS = 20

    def test_repeated_stops_under_connection_churn(self):
        with Server(config=DEFAULT_CONFIG + "[server]\nthreads = 4\n") as srv:
            for round_no in range(self.ROUNDS):
                done = threading.Event()

                def churn():
                    while not done.is_set():
                        try:
                            with socket.create_connection(("127.0.0.1", srv.port), timeout=2):
                                pass
                        except OSError:
                            time.sleep(0.005)

                threads = [threading.Thread(target=churn) for _ in range(4)]
                for t in threads:
                    t.start()
                if round_no % 2:
                    time.sleep(0.05 + 0.03 * (round_no % 5))  # else: stop at once after start
                srv.proc.send_signal(signal.SIGTERM)
                try:
                    status = srv.proc.wait(60)
                finally:
                    done.set()
                    for t in threads:
                        t.join(10)
                self.assertEqual(status, 0, "round %d:\n%s" % (round_no, srv.stderr_text()[-2000:]))
                srv.stop()
                if round_no + 1 < self.ROUNDS:
                    srv.start()


class DataDirLockTest(unittest.TestCase):

    def test_second_kmsd_refuses(self):
        with Server() as srv:
            proc = subprocess.run([binary(), "--data-dir", srv.data_dir, "--listen",
                                   "127.0.0.1:0"], capture_output=True, text=True, timeout=30,
                                  env=srv.env)
            self.assertEqual(proc.returncode, 1)
            self.assertEqual(proc.stdout, "")
            lines = [l for l in proc.stderr.splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, proc.stderr)
            self.assertIn("is in use by another kmsd or a kmsadm command", lines[0])
            self.assertIn("kmsd.lock is locked", lines[0])
            # The first one is unharmed.
            self.assertEqual(srv.call("ListKeys").status, 200)
            with open(os.path.join(srv.data_dir, "kmsd.lock")) as f:
                self.assertEqual(int(f.read()), srv.proc.pid)
            self.assertEqual(srv.stop(), 0)
            # Once it stopped, the directory is free again (no stale lock).
            srv.start()
            self.assertEqual(srv.call("ListKeys").status, 200)
            self.assertEqual(srv.stop(), 0)

    def test_lock_released_by_a_crash(self):
        with Server() as srv:
            srv.stop(sig=signal.SIGKILL)
            srv.start()
            self.assertEqual(srv.call("ListKeys").status, 200)
            self.assertEqual(srv.stop(), 0)

    def test_missing_master_key_for_an_existing_database(self):
        with Server() as srv:
            srv.stop()
            os.rename(os.path.join(srv.data_dir, "master.key"),
                      os.path.join(srv.data_dir, "master.key.away"))
            with self.assertRaises(RuntimeError):
                srv.start()
            self.assertIn("exists but its master key", srv.stderr_text())
            self.assertFalse(os.path.exists(os.path.join(srv.data_dir, "master.key")))
            srv.stop()
            # Another data directory's master key: refused by the check value, not served.
            with Server() as other:
                other.stop()
                shutil.copy(os.path.join(other.data_dir, "master.key"),
                            os.path.join(srv.data_dir, "master.key"))
            with self.assertRaises(RuntimeError):
                srv.start()
            self.assertIn("does not open this database", srv.stderr_text())
            srv.stop()
            os.rename(os.path.join(srv.data_dir, "master.key.away"),
                      os.path.join(srv.data_dir, "master.key"))
            srv.start()
            self.assertEqual(srv.call("ListKeys").status, 200)
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()


class ServiceManagerNotifyTest(unittest.TestCase):
    """Type=notify: READY=1 once serving, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1."""

    def test_notifications(self):
        ldd = subprocess.run(["ldd", binary()], capture_output=True, text=True).stdout
        if "libsystemd" not in ldd:
            self.skipTest("kmsd was built without libsystemd: no sd_notify")
        tmp = tempfile.mkdtemp(prefix="kmsd-notify-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(20)
        self.addCleanup(sock.close)

        def next_message():
            return sock.recv(4096).decode()

        with Server(env={"NOTIFY_SOCKET": path}) as srv:
            self.assertIn("READY=1", next_message())
            srv.proc.send_signal(signal.SIGHUP)
            self.assertIn("RELOADING=1", next_message())
            self.assertIn("READY=1", next_message())
            self.assertEqual(srv.call("ListKeys").status, 200)
            srv.proc.send_signal(signal.SIGTERM)
            self.assertIn("STOPPING=1", next_message())
            self.assertEqual(srv.proc.wait(30), 0)
