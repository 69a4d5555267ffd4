"""Start-up and shutdown (issue 2 "What to build"): the first start lays out the data directory,
the ready line names the real port, TLS is 1.2+ with AEAD ciphers, configuration errors stop
kmsd with file:line, flags win over the file, and SIGTERM exits 0."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import unittest

from kmsd import ADMIN_ID, ADMIN_SECRET, DEFAULT_CONFIG, Server, binary

OPENSSL = shutil.which("openssl")


class FirstStartTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server().start()

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        cls.srv.__exit__(None, None, None)
        assert status == 0, status

    def path(self, *parts):
        return os.path.join(self.srv.data_dir, *parts)

    def mode(self, *parts):
        return os.stat(self.path(*parts)).st_mode & 0o777

    def test_layout(self):
        self.assertEqual(self.mode(), 0o700)
        for name in ("kmsd.db", "master.key", "tls/cert.pem", "tls/key.pem"):
            self.assertTrue(os.path.isfile(self.path(name)), name)
        self.assertEqual(self.mode("master.key"), 0o600)
        self.assertEqual(os.path.getsize(self.path("master.key")), 32)
        self.assertEqual(self.mode("tls", "key.pem"), 0o600)
        self.assertEqual(self.mode("kmsd.db") & 0o077, 0)
        with open(self.path("tls", "cert.pem")) as f:
            self.assertIn("BEGIN CERTIFICATE", f.read())
        with open(self.path("tls", "key.pem")) as f:
            self.assertIn("PRIVATE KEY", f.read())

    @unittest.skipIf(OPENSSL is None, "no openssl command")
    def test_certificate_is_ecdsa_p256(self):
        out = subprocess.run([OPENSSL, "x509", "-noout", "-text", "-in", self.path("tls", "cert.pem")],
                             capture_output=True, text=True, check=True).stdout
        self.assertIn("id-ecPublicKey", out)
        self.assertRegex(out, r"(prime256v1|P-256)")
        self.assertIn("ecdsa-with-SHA256", out)
        self.assertIn("DNS:localhost", out)
        self.assertIn("IP Address:127.0.0.1", out)
        # The server presents that certificate.
        with open(self.path("tls", "cert.pem")) as f:
            pem = f.read()
        served = ssl.get_server_certificate(("127.0.0.1", self.srv.port))
        self.assertEqual(ssl.PEM_cert_to_DER_cert(served), ssl.PEM_cert_to_DER_cert(pem))

    def test_ready_line_names_the_real_port(self):
        self.assertNotEqual(self.srv.port, 0)
        socket.create_connection(("127.0.0.1", self.srv.port), timeout=5).close()
        self.assertEqual(self.srv.call("DescribeRegions").status, 200)

    def handshake(self, version):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        # Let this client offer old versions, so that a refusal is the server's.
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        ctx.minimum_version = version
        ctx.maximum_version = version
        with socket.create_connection(("127.0.0.1", self.srv.port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as tls:
                return tls.version(), tls.cipher()

    def test_tls_versions(self):
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            with self.subTest(version=version):
                with self.assertRaises((ssl.SSLError, ConnectionError)):
                    self.handshake(version)
        for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            with self.subTest(version=version):
                got, cipher = self.handshake(version)
                self.assertEqual(got, name)
                self.assertRegex(cipher[0], r"(GCM|CHACHA20)")

    def test_no_cbc_ciphers_on_tls12(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE+AES+SHA:ECDHE+AES+SHA256:AES128-SHA")  # CBC suites only
        with socket.create_connection(("127.0.0.1", self.srv.port), timeout=5) as raw:
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                ctx.wrap_socket(raw)

    def offer_tls12(self, ciphers):
        """A TLS 1.2 handshake offering only these suites; the negotiated suite's name."""
        ctx = self.tls12_client(ciphers)
        with socket.create_connection(("127.0.0.1", self.srv.port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as tls:
                return tls.cipher()[0]

    @staticmethod
    def tls12_client(ciphers):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ciphers + ":@SECLEVEL=0")
        return ctx

    def test_only_aead_suites_on_tls12(self):
        # Each suite the ECDSA certificate could serve but that is not an AEAD with a full tag,
        # offered alone: CBC with SHA-1 / SHA-256 / SHA-384, Camellia, NULL encryption,
        # anonymous key exchange, CCM with an 8-byte tag. Every one is refused.
        refused = ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256",
                   "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-CAMELLIA128-SHA256",
                   "ECDHE-ECDSA-NULL-SHA", "AECDH-AES128-SHA", "ADH-AES128-GCM-SHA256",
                   "ECDHE-ECDSA-AES128-CCM8", "ECDHE-ECDSA-AES128-CCM"]
        tried = 0
        for suite in refused:
            with self.subTest(suite=suite):
                try:
                    self.tls12_client(suite)
                except ssl.SSLError:
                    continue  # this client's OpenSSL cannot offer it at all
                tried += 1
                with self.assertRaises((ssl.SSLError, ConnectionError)):
                    self.offer_tls12(suite)
        self.assertGreaterEqual(tried, 5)
        # The AEAD suites are accepted, and preferred even when the client puts CBC first.
        for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                      "ECDHE-ECDSA-CHACHA20-POLY1305"):
            with self.subTest(suite=suite):
                self.assertEqual(self.offer_tls12(suite), suite)
        got = self.offer_tls12("ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256:"
                               "ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertEqual(got, "ECDHE-ECDSA-AES128-GCM-SHA256")

    def test_restart_keeps_certificate_and_master_key(self):
        with open(self.path("tls", "cert.pem"), "rb") as f:
            cert = f.read()
        with open(self.path("master.key"), "rb") as f:
            master = f.read()
        self.assertEqual(self.srv.stop(), 0)
        self.srv.start()
        with open(self.path("tls", "cert.pem"), "rb") as f:
            self.assertEqual(f.read(), cert)
        with open(self.path("master.key"), "rb") as f:
            self.assertEqual(f.read(), master)


class ConfigTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kmsd-cfg-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_kmsd(self, config_text, *args):
        path = os.path.join(self.dir, "kmsd.conf")
        with open(path, "w") as f:
            f.write(config_text)
        env = dict(os.environ, KMSD_ADMIN_ACCESS_KEY_ID=ADMIN_ID,
                   KMSD_ADMIN_ACCESS_KEY_SECRET=ADMIN_SECRET)
        return subprocess.run([binary(), "--config", path, "--data-dir",
                               os.path.join(self.dir, "data"), "--listen", "127.0.0.1:0"] + list(args),
                              capture_output=True, text=True, timeout=30, env=env), path

    def test_bad_config_files(self):
        cases = [
            ("[server]\nno_such_key = 1\n", 2, "unknown setting server.no_such_key"),
            ("# comment\n[server]\nthreads = many\n", 3, "threads"),
            ("[server]\n\nmax_url_bytes = 10\n", 3, "max_url_bytes"),
            ("[auth]\nrequire_nonce = perhaps\n", 2, "require_nonce"),
            ("[nosuchsection]\nx = 1\n", 2, "unknown setting"),
            ("[server\n", 1, "section"),
            ("[server]\njust a line\n", 2, "key = value"),
            ("[keys]\nmax_tags_per_resource = 21\n", 2, "max_tags_per_resource"),
            ("[server]\nlisten = nohost\n", 2, "listen"),
        ]
        for text, line, words in cases:
            with self.subTest(config=text):
                p, path = self.run_kmsd(text)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn("%s:%d" % (path, line), p.stderr)
                self.assertIn(words, p.stderr)
                self.assertNotIn("kmsd ready", p.stdout)
        p = subprocess.run([binary(), "--config", os.path.join(self.dir, "missing.conf")],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("missing.conf", p.stderr)

    def test_bad_flags(self):
        for args in (["--no-such-flag"], ["--threads", "x"], ["--listen", "nonsense"], ["extra"]):
            with self.subTest(args=args):
                p = subprocess.run([binary(), "--data-dir", os.path.join(self.dir, "d")] + args,
                                   capture_output=True, text=True, timeout=30)
                self.assertNotEqual(p.returncode, 0)
                self.assertTrue(p.stderr)
        p = subprocess.run([binary(), "--version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^kmsd \d+\.\d+")

    def test_flags_override_the_file(self):
        config = DEFAULT_CONFIG + ("[server]\nlisten = 127.0.0.1:1\nregion = cn-beijing\n"
                                   "data_dir = /nonexistent/kmsd\naccount_id = 1234\n")
        srv = Server(config=config, extra_args=["--region", "cn-shanghai"]).start()
        try:
            r = srv.call("DescribeRegions")
            self.assertEqual(r.json["Regions"]["Region"], [{"RegionId": "cn-shanghai"}])
            md = srv.create_key()
            # The file's account_id applies (no flag for it); the flag's region wins.
            self.assertEqual(md["Arn"], "acs:kms:cn-shanghai:1234:key/" + md["KeyId"])
            self.assertTrue(os.path.isfile(os.path.join(srv.data_dir, "kmsd.db")))
        finally:
            self.assertEqual(srv.stop(), 0)
            srv.__exit__(None, None, None)

    def test_settings_from_the_file(self):
        config = DEFAULT_CONFIG + "[server]\nregion = cn-beijing\nhost_id = kms.example.test\n"
        srv = Server(config=config).start()
        try:
            self.assertEqual(srv.call("DescribeRegions").json["Regions"]["Region"],
                             [{"RegionId": "cn-beijing"}])
            self.assertEqual(srv.call("DescribeKey", KeyId="x").json["HostId"], "kms.example.test")
        finally:
            self.assertEqual(srv.stop(), 0)
            srv.__exit__(None, None, None)


class SignalTest(unittest.TestCase):

    def test_sigterm_and_sigint_exit_0(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig):
                with Server() as srv:
                    # An open keep-alive connection does not hold up the stop.
                    conn = srv.connection()
                    r = srv.call("DescribeRegions", conn=conn)
                    self.assertEqual(r.status, 200)
                    self.assertEqual(srv.stop(sig, timeout=15), 0)
                    self.assertIn("stopped", srv.stderr_text())
                    conn.close()

    def test_sighup_does_not_stop(self):
        with Server() as srv:
            srv.proc.send_signal(signal.SIGHUP)
            self.assertEqual(srv.call("DescribeRegions").status, 200)
            self.assertEqual(srv.stop(), 0)


class PlainHttpTest(unittest.TestCase):

    def test_plain_http_is_loudly_unsafe(self):
        with Server(extra_args=["--insecure-plain-http"]) as srv:
            self.assertEqual(srv.scheme, "http")
            self.assertEqual(srv.call("DescribeRegions").status, 200)
            self.assertIn("UNSAFE", srv.stderr_text())
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
