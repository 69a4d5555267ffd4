"""Integration-test harness: start a real kmsd and talk to it over TLS like a client would.

Standard library only. A test does:

    from kmsd import Server
    with Server() as srv:                    # kmsd-test on 127.0.0.1:0, temp data dir
        r = srv.call("CreateKey", Description="x")
        assert r.status == 200, r.body
        key_id = r.json["KeyMetadata"]["KeyId"]

Environment:
    KMSD_BIN      path of the kmsd binary to run (default: build/kmsd-test)
    KMSD_KEEP     keep temp data directories after the test (debugging)
    KMSD_WRAPPER  a command kmsd is run under, split like a shell would (e.g.
                  "valgrind --leak-check=full --error-exitcode=99"); scripts/valgrind.sh sets it
    KMSD_TIMEOUT_SCALE  multiplies the harness's start/stop/request timeouts (default 1; a slow
                  wrapper such as valgrind needs 10 or more)
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ADMIN_ID = "KMSDtestadmin0001"
ADMIN_SECRET = "testsecret-integration-0001"
READY = re.compile(r"kmsd ready on (https?)://([^\s]+):(\d+)")
# Tests run many servers: a small replay cache keeps each one light (the default is ~200 MB).
DEFAULT_CONFIG = "[auth]\nreplay_cache_capacity = 200000\n"


def binary():
    return os.environ.get("KMSD_BIN", os.path.join(ROOT, "build", "kmsd-test"))


def wrapper():
    """The command kmsd runs under (KMSD_WRAPPER), as an argument list; [] for none."""
    return shlex.split(os.environ.get("KMSD_WRAPPER", ""))


def timeout_scale():
    """How much slower than normal kmsd is expected to be (KMSD_TIMEOUT_SCALE)."""
    try:
        return max(1.0, float(os.environ.get("KMSD_TIMEOUT_SCALE", "1")))
    except ValueError:
        return 1.0


def percent_encode(s):
    """RFC 3986 unreserved encoding, as both signature versions use it (spec/protocol.md §4)."""
    return urllib.parse.quote(s.encode("utf-8") if isinstance(s, str) else s, safe="-_.~")


def timestamp(offset=0):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


def sign_v1(method, params, secret):
    items = sorted((k, v) for k, v in params.items() if k != "Signature")
    cqs = "&".join(percent_encode(k) + "=" + percent_encode(v) for k, v in items)
    sts = method.upper() + "&" + percent_encode("/") + "&" + percent_encode(cqs)
    mac = hmac.new((secret + "&").encode(), sts.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def sign_v3(method, query, headers, body, secret):
    signed = sorted(h for h in headers if h == "host" or h == "content-type" or h.startswith("x-acs-"))
    cqs = "&".join(percent_encode(k) + "=" + percent_encode(v) for k, v in sorted(query.items()))
    ch = "".join(h + ":" + headers[h].strip() + "\n" for h in signed)
    # HashedPayload is what the client declares in x-acs-content-sha256 (the SDKs put the one
    # value in both places), else the body's hash.
    payload = headers.get("x-acs-content-sha256") or hashlib.sha256(body).hexdigest()
    creq = "\n".join([method, "/", cqs, ch, ";".join(signed), payload])
    sts = "ACS3-HMAC-SHA256\n" + hashlib.sha256(creq.encode()).hexdigest()
    sig = hmac.new(secret.encode(), sts.encode(), hashlib.sha256).hexdigest()
    return ";".join(signed), sig


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body)
        except ValueError:
            self.json = None

    @property
    def code(self):
        return (self.json or {}).get("Code")

    def __repr__(self):
        return "<Response %d %s>" % (self.status, self.body[:300])


class Server:
    """A kmsd process with its own data directory; a context manager."""

    def __init__(self, data_dir=None, config=None, env=None, admin=(ADMIN_ID, ADMIN_SECRET),
                 extra_args=(), binary_path=None, wrap=()):
        self.owns_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="kmsd-it-")
        self.config_text = DEFAULT_CONFIG if config is None else config
        self.env = dict(os.environ)
        self.env.pop("KMSD_ADMIN_ACCESS_KEY_ID", None)
        self.env.pop("KMSD_ADMIN_ACCESS_KEY_SECRET", None)
        if admin is not None:
            self.env["KMSD_ADMIN_ACCESS_KEY_ID"], self.env["KMSD_ADMIN_ACCESS_KEY_SECRET"] = admin
        self.env.update(env or {})
        self.access_key_id, self.access_key_secret = admin or (ADMIN_ID, ADMIN_SECRET)
        self.extra_args = list(extra_args)
        self.wrap = list(wrap)  # a command kmsd runs under in this test (e.g. setpriv), before KMSD_WRAPPER
        self.binary = binary_path or binary()
        self.proc = None
        self.drain = None
        self.port = None
        self.scheme = "https"
        self.data_dir = os.path.abspath(self.data_dir)
        self.stderr_path = os.path.join(os.path.dirname(self.data_dir),
                                        os.path.basename(self.data_dir) + ".stderr")
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    # -- process --------------------------------------------------------------------------
    def start(self, timeout=30):
        timeout *= timeout_scale()
        args = self.wrap + wrapper() + [self.binary, "--data-dir", self.data_dir, "--listen", "127.0.0.1:0"]
        if self.config_text is not None:
            path = os.path.join(os.path.dirname(self.data_dir), os.path.basename(self.data_dir) + ".conf")
            with open(path, "w") as f:
                f.write(self.config_text)
            args += ["--config", path]
        args += self.extra_args
        self.stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr,
                                     env=self.env, text=True)
        deadline = time.time() + timeout
        line = ""
        self.stdout_lines = []  # what kmsd printed up to its ready line (e.g. the admin line)
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.stdout_lines.append(line)
            m = READY.search(line)
            if m:
                self.scheme, self.port = m.group(1), int(m.group(3))
                # Keep draining stdout so kmsd never blocks on a full pipe.
                self.drain = threading.Thread(target=self.proc.stdout.read, daemon=True)
                self.drain.start()
                return self
        self.proc.kill()
        status = self.proc.wait()
        self.proc.stdout.close()
        self.proc = None
        self.stderr.close()
        raise RuntimeError("kmsd did not become ready (exit %s): %s\n%s" %
                           (status, line, self.stderr_text()))

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops kmsd and returns its exit status."""
        timeout *= timeout_scale()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            status = self.proc.wait()
        if self.drain is not None:
            self.drain.join(5)
            self.drain = None
        self.proc.stdout.close()
        self.proc = None
        self.stderr.close()
        return status

    def restart(self):
        self.stop()
        return self.start()

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self.owns_dir and not os.environ.get("KMSD_KEEP"):
            shutil.rmtree(self.data_dir, ignore_errors=True)
            for suffix in (".stderr", ".conf"):
                try:
                    os.unlink(os.path.join(os.path.dirname(self.data_dir), os.path.basename(self.data_dir) + suffix))
                except OSError:
                    pass

    # -- requests ---------------------------------------------------------------------------
    def connection(self):
        if self.scheme == "https":
            return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx,
                                               timeout=60 * timeout_scale())
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60 * timeout_scale())

    def raw(self, method, path, body=None, headers=None, conn=None):
        """Sends exactly what it is given; returns a Response."""
        own = conn is None
        conn = conn or self.connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace"))
        finally:
            if own:
                conn.close()

    def signed_params(self, action, params, method="POST", access_key=None, **overrides):
        key_id, secret = access_key or (self.access_key_id, self.access_key_secret)
        p = {
            "Action": action, "Format": "JSON", "Version": "2016-01-20", "AccessKeyId": key_id,
            "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "Timestamp": timestamp(),
            "SignatureNonce": secrets.token_hex(16),
        }
        # A None value leaves the parameter out (for tests of missing common parameters).
        for k, v in params.items():
            if v is None:
                p.pop(k, None)
            else:
                p[k] = str(v)
        for k, v in overrides.items():
            if v is None:
                p.pop(k, None)
            else:
                p[k] = v
        p["Signature"] = sign_v1(method, p, secret)
        return p

    def call(self, action, method="POST", transport="query", access_key=None, conn=None, **params):
        """A V1-signed call (what @alicloud/kms20160120 sends: everything in the query string)."""
        p = self.signed_params(action, params, method, access_key)
        return self.send_signed(p, method, transport, conn)

    def send_signed(self, p, method="POST", transport="query", conn=None):
        encoded = "&".join(percent_encode(k) + "=" + percent_encode(v) for k, v in p.items())
        if transport == "query":
            return self.raw(method, "/?" + encoded, conn=conn)
        return self.raw(method, "/", body=encoded.encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"}, conn=conn)

    def call_v3(self, action, access_key=None, **params):
        """A V3-signed call (ACS3-HMAC-SHA256, parameters in the query string, empty body)."""
        return self.call_v3_custom(action, query=params, access_key=access_key)

    def v3_headers(self, action, body=b"", content_type=None):
        """The headers a V2.0 SDK sends (before Authorization) for a V3 request."""
        headers = {
            "host": "127.0.0.1:%d" % self.port, "x-acs-action": action,
            "x-acs-version": "2016-01-20", "x-acs-date": timestamp(),
            "x-acs-signature-nonce": secrets.token_hex(16),
            "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        }
        if content_type:
            headers["content-type"] = content_type
        return headers

    def call_v3_custom(self, action, query=None, body=b"", content_type=None, headers=None,
                       signed_body=None, access_key=None, algorithm="ACS3-HMAC-SHA256",
                       drop_signed=(), authorization=None, method="POST", conn=None):
        """A V3 request with knobs for negative tests.

        headers: replace/add header values after signing defaults are made (None drops one);
        signed_body: the body the signature is computed over (default: body);
        drop_signed: header names left out of SignedHeaders (but still sent);
        authorization: send this Authorization header verbatim.
        """
        key_id, secret = access_key or (self.access_key_id, self.access_key_secret)
        query = {k: str(v) for k, v in (query or {}).items()}
        h = self.v3_headers(action, body, content_type)
        for k, v in (headers or {}).items():
            if v is None:
                h.pop(k, None)
            else:
                h[k] = v
        to_sign = {k: v for k, v in h.items() if k not in drop_signed}
        signed, sig = sign_v3(method, query, to_sign, body if signed_body is None else signed_body, secret)
        h["authorization"] = authorization or "%s Credential=%s,SignedHeaders=%s,Signature=%s" % (
            algorithm, key_id, signed, sig)
        qs = "&".join(percent_encode(k) + "=" + percent_encode(v) for k, v in query.items())
        return self.raw(method, "/" + ("?" + qs if qs else ""), body=body, headers=h, conn=conn)

    def ok(self, action, **params):
        """A call that must succeed; returns its JSON body."""
        r = self.call(action, **params)
        assert r.status == 200, "%s: %r" % (action, r)
        return r.json

    def advance_clock(self, seconds, maintenance=True):
        """Moves kmsd-test's timed-work clock forward and (unless told not to) runs one
        maintenance pass."""
        return self.ok("KmsdTestAdvanceClock", Seconds=int(seconds),
                       RunMaintenance="true" if maintenance else "false")

    def create_key(self, **params):
        return self.ok("CreateKey", **params)["KeyMetadata"]


def b64(data):
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text)


def new_uuid():
    return str(uuid.uuid4())
