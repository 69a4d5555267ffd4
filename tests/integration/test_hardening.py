"""Process hardening and file modes (issue 8, docs/security.md §18-19): no core dumps, a
non-dumpable process (no ptrace, no /proc/<pid>/mem or environ for other processes of the same
user), the master key on locked pages excluded from core dumps, lock_memory, and the modes of
the data directory, the database files and the TLS key checked at start."""

import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from kmsd import ADMIN_ID, ADMIN_SECRET, DEFAULT_CONFIG, Server, binary

ROOT = os.geteuid() == 0
# Under a wrapper (scripts/valgrind.sh), /proc/<pid> shows the wrapper's environment block, and a
# kmsd run as nobody could not write the wrapper's logs.
WRAPPED = bool(os.environ.get("KMSD_WRAPPER"))
SETPRIV = shutil.which("setpriv")
NOBODY = 65534
AS_NOBODY = [SETPRIV or "setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "--"]


def asan_build():
    """AddressSanitizer turns mlock and mlockall into no-ops: locking cannot be seen there."""
    with open(binary(), "rb") as f:
        return b"__asan_init" in f.read()


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def nobody_can_run_kmsd():
    """kmsd-test and every directory above it are executable by others (needed as nobody)."""
    path = os.path.abspath(binary())
    while path != "/":
        if not os.stat(path).st_mode & 0o001:
            return False
        path = os.path.dirname(path)
    return True


class ProcessHardeningTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server().start()

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        cls.srv.__exit__(None, None, None)
        assert status == 0, status

    def test_no_core_dumps(self):
        with open("/proc/%d/limits" % self.srv.proc.pid) as f:
            line = next(l for l in f if l.startswith("Max core file size"))
        self.assertEqual(line.split()[4:6], ["0", "0"], line)

    def assertNotDumpable(self, pid, uid):
        """/proc/<pid>/ files of a non-dumpable process belong to root, not to its user."""
        self.assertEqual(int(proc_status(pid)["Uid"].split()[0]), uid)
        self.assertEqual(os.stat("/proc/%d/environ" % pid).st_uid, 0)
        self.assertEqual(os.stat("/proc/%d/mem" % pid).st_uid, 0)

    @unittest.skipIf(ROOT and (SETPRIV is None or not nobody_can_run_kmsd() or WRAPPED),
                     "needs setpriv and a kmsd-test that nobody may run, unwrapped, to test as root")
    def test_not_dumpable(self):
        if not ROOT:
            uid = os.geteuid()
            self.assertNotDumpable(self.srv.proc.pid, uid)
            with self.assertRaises(PermissionError):
                open("/proc/%d/environ" % self.srv.proc.pid).close()
            # Control: an ordinary process of the same user keeps its own /proc files.
            control = subprocess.Popen(["sleep", "30"])
            try:
                self.assertEqual(os.stat("/proc/%d/environ" % control.pid).st_uid, uid)
            finally:
                control.kill()
                control.wait()
            return
        # As root, every /proc file belongs to root anyway: run kmsd as nobody to tell.
        data = tempfile.mkdtemp(prefix="kmsd-it-nobody-")
        os.chown(data, NOBODY, NOBODY)
        srv = Server(data_dir=data, wrap=AS_NOBODY)
        try:
            srv.start()
            self.assertNotDumpable(srv.proc.pid, NOBODY)
            control = subprocess.Popen(AS_NOBODY + ["sleep", "30"])
            try:
                time.sleep(0.2)
                self.assertEqual(os.stat("/proc/%d/environ" % control.pid).st_uid, NOBODY)
            finally:
                control.kill()
                control.wait()
            self.assertEqual(srv.stop(), 0)
        finally:
            srv.stop()
            shutil.rmtree(data, ignore_errors=True)

    @unittest.skipUnless(ROOT, "reading environ of a non-dumpable process needs root")
    @unittest.skipIf(WRAPPED, "/proc/<pid>/environ is the wrapper's")
    def test_admin_secret_scrubbed_from_environment(self):
        # The admin secret arrives in KMSD_ADMIN_ACCESS_KEY_SECRET; once read it is overwritten
        # in the environment block, so not even root finds it in /proc/<pid>/environ.
        with open("/proc/%d/environ" % self.srv.proc.pid, "rb") as f:
            env = f.read()
        self.assertIn(ADMIN_ID.encode(), env)  # the block is readable: the check can fail
        self.assertFalse(ADMIN_SECRET.encode() in env, "the admin secret is in /proc/<pid>/environ")
        self.assertEqual(self.srv.call("DescribeRegions").status, 200)

    @unittest.skipUnless(ROOT, "reading smaps of a non-dumpable process needs root")
    @unittest.skipIf(asan_build(), "ASan ignores mlock")
    def test_master_key_on_locked_undumped_page(self):
        # VmFlags "dd": not in a core dump (MADV_DONTDUMP); "lo": locked (mlock).
        with open("/proc/%d/smaps" % self.srv.proc.pid) as f:
            text = f.read()
        secure = []
        for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", text):
            size = re.search(r"^Size:\s+(\d+) kB", block, re.M)
            flags = re.search(r"^VmFlags:(.*)$", block, re.M)
            if size and flags and " dd" in flags.group(1) + " ":
                secure.append((int(size.group(1)), flags.group(1).split()))
        self.assertTrue(any(size == 4 and "lo" in flags for size, flags in secure), secure)

    @unittest.skipIf(asan_build(), "ASan ignores mlockall")
    def test_lock_memory(self):
        with Server(config=DEFAULT_CONFIG + "[server]\nlock_memory = true\n") as srv:
            locked = int(proc_status(srv.proc.pid)["VmLck"].split()[0])
            self.assertGreater(locked, 1024, "kB locked")
            self.assertEqual(srv.call("DescribeRegions").status, 200)

    @unittest.skipIf(asan_build() or WRAPPED, "ASan ignores mlockall; a wrapper needs its own rights")
    def test_lock_memory_refused_without_the_right(self):
        # RLIMIT_MEMLOCK 0 and (when the test runs as root) no CAP_IPC_LOCK: kmsd must refuse
        # to start rather than run with memory that could be swapped out.
        data = tempfile.mkdtemp(prefix="kmsd-it-")
        conf = os.path.join(data, "kmsd.conf")
        with open(conf, "w") as f:
            f.write("[server]\nlock_memory = true\n")
        os.chmod(data, 0o755)
        os.chmod(conf, 0o644)
        sub = os.path.join(data, "d")

        def drop():
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
            if ROOT:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)

        if ROOT:
            os.mkdir(sub, 0o700)
            os.chown(sub, NOBODY, NOBODY)
        try:
            if ROOT and not nobody_can_run_kmsd():
                self.skipTest("nobody may not run kmsd-test")
            p = subprocess.run([binary(), "--data-dir", sub, "--listen", "127.0.0.1:0", "--config", conf],
                               preexec_fn=drop, capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("lock_memory = true but the memory cannot be locked", p.stderr)
            self.assertIn("RLIMIT_MEMLOCK", p.stderr)
            self.assertNotIn("kmsd ready", p.stdout)
        finally:
            shutil.rmtree(data, ignore_errors=True)


class FileModeTest(unittest.TestCase):
    """Modes checked at start: kmsd's own files are made private (with a warning); a TLS key
    that others can read, or the group write, refuses the start with one clear line."""

    def setUp(self):
        self.srv = Server().start()
        self.assertEqual(self.srv.stop(), 0)

    def tearDown(self):
        self.srv.stop()
        self.srv.__exit__(None, None, None)

    def path(self, *parts):
        return os.path.join(self.srv.data_dir, *parts)

    def mode(self, *parts):
        return os.stat(self.path(*parts)).st_mode & 0o7777

    def start_fails(self):
        before = len(self.srv.stderr_text())
        with self.assertRaises(RuntimeError) as cm:
            self.srv.start(timeout=15)
        self.assertIn("(exit 1)", str(cm.exception))
        return self.srv.stderr_text()[before:]

    def test_own_files_are_made_private(self):
        os.chmod(self.srv.data_dir, 0o755)
        os.chmod(self.path("tls"), 0o755)
        os.chmod(self.path("kmsd.db"), 0o644)
        with open(self.path("kmsd.db-wal"), "ab"):
            pass
        os.chmod(self.path("kmsd.db-wal"), 0o664)
        self.srv.start()
        self.assertEqual(self.mode(), 0o700)
        self.assertEqual(self.mode("tls"), 0o700)
        self.assertEqual(self.mode("kmsd.db"), 0o600)
        self.assertEqual(self.mode("kmsd.db-wal") & 0o077, 0)
        log = self.srv.stderr_text()
        self.assertRegex(log, r"directory %s was accessible by group or others \(mode 0755\); "
                              r"changed to 0700" % re.escape(self.srv.data_dir))
        self.assertIn("kmsd.db was accessible by group or others (mode 0644); changed to 0600", log)
        self.assertEqual(self.srv.call("DescribeRegions").status, 200)

    def test_tls_key_for_others_is_refused(self):
        for mode in (0o644, 0o604, 0o660, 0o620, 0o601):
            with self.subTest(mode=oct(mode)):
                os.chmod(self.path("tls", "key.pem"), mode)
                out = self.start_fails()
                errors = [l for l in out.splitlines() if "error" in l or "fatal" in l]
                self.assertIn("TLS key %s is accessible by others or writable by its group (mode %04o)"
                              % (self.path("tls", "key.pem"), mode), errors[0])
                self.assertIn("chmod 600", errors[0])
                self.assertNotIn("ready", out)

    def test_tls_key_shared_with_group(self):
        os.chmod(self.path("tls", "key.pem"), 0o640)
        self.srv.start()
        self.assertIn("is readable by its group (mode 0640)", self.srv.stderr_text())
        self.assertEqual(self.srv.call("DescribeRegions").status, 200)

    def test_master_key_for_others_is_refused(self):
        os.chmod(self.path("master.key"), 0o644)
        out = self.start_fails()
        self.assertIn("readable by group or others (mode 644): chmod 600 it", out)

    @unittest.skipUnless(ROOT, "chown needs root")
    def test_database_of_another_user_is_refused(self):
        os.chown(self.path("kmsd.db"), NOBODY, NOBODY)
        out = self.start_fails()
        self.assertIn("kmsd.db belongs to uid %d, not to kmsd's user" % NOBODY, out)


if __name__ == "__main__":
    unittest.main()
