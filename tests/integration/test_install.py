"""Installing (issue 7): `cmake --install` into a temporary prefix puts kmsd, kmsadm, kms-sign,
the example configuration, the docs and the systemd unit in place; the unit names the installed
binary and passes `systemd-analyze verify`; the installed kmsd starts with the installed
configuration."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

from kmsd import binary

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


class InstallTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.build = os.path.dirname(os.path.abspath(binary()))
        if not os.path.exists(os.path.join(cls.build, "cmake_install.cmake")):
            raise unittest.SkipTest("%s is not a CMake build directory" % cls.build)
        cls.prefix = tempfile.mkdtemp(prefix="kmsd-install-")
        proc = subprocess.run(["cmake", "--install", cls.build, "--prefix", cls.prefix],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        cls.unit = os.path.join(cls.prefix, "lib", "systemd", "system", "kmsd.service")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.prefix, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.prefix, *parts)

    def test_files_in_place(self):
        for name in ("kmsd", "kmsadm", "kms-sign"):
            self.assertTrue(os.access(self.path("bin", name), os.X_OK), name)
        self.assertTrue(os.path.isfile(self.path("etc", "kmsd", "kmsd.conf")))
        for name in ("operations.md", "seeding.md", "seed.example.json"):
            self.assertTrue(os.path.isfile(self.path("share", "doc", "kmsd", name)), name)
        self.assertTrue(os.path.isfile(self.unit))
        out = subprocess.run([self.path("bin", "kmsd"), "--version"], capture_output=True,
                             text=True).stdout
        self.assertRegex(out, r"^kmsd \d+\.\d+\.\d+")

    def test_unit_contents(self):
        with open(self.unit) as f:
            text = f.read()
        self.assertNotIn("@", text.replace("@system-service", "").replace("@privileged", "")
                         .replace("@resources", ""))
        exec_start = re.search(r"^ExecStart=(\S+) --config (\S+) ", text, re.M)
        self.assertEqual(exec_start.group(1), self.path("bin", "kmsd"))
        self.assertEqual(exec_start.group(2), self.path("etc", "kmsd", "kmsd.conf"))
        for line in ("Type=notify", "DynamicUser=yes", "StateDirectory=kmsd",
                     "ConfigurationDirectory=kmsd", "ProtectSystem=strict", "ProtectHome=yes",
                     "PrivateTmp=yes", "PrivateDevices=yes", "NoNewPrivileges=yes",
                     "CapabilityBoundingSet=\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                     "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes",
                     "LockPersonality=yes", "UMask=0077", "LimitCORE=0",
                     "LoadCredential=master.key:" + self.path("etc", "kmsd", "master.key"),
                     "ExecReload=/bin/kill -HUP $MAINPID"):
            self.assertIn(line, text)

    @unittest.skipIf(SYSTEMD_ANALYZE is None,
                     "systemd-analyze is not installed: the unit is not verified")
    def test_systemd_analyze_verify(self):
        proc = subprocess.run([SYSTEMD_ANALYZE, "verify", self.unit], capture_output=True,
                              text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(proc.stderr.strip(), "", proc.stderr)
        # The check is real: a unit naming a missing binary fails it.
        broken = os.path.join(self.prefix, "broken.service")
        with open(self.unit) as f, open(broken, "w") as g:
            g.write(f.read().replace(self.path("bin", "kmsd"), self.path("bin", "absent")))
        self.assertNotEqual(subprocess.run([SYSTEMD_ANALYZE, "verify", broken],
                                           capture_output=True).returncode, 0)

    def test_installed_kmsd_runs_with_the_installed_config(self):
        data = tempfile.mkdtemp(prefix="kmsd-installed-")
        self.addCleanup(shutil.rmtree, data, True)
        proc = subprocess.Popen([self.path("bin", "kmsd"), "--config",
                                 self.path("etc", "kmsd", "kmsd.conf"), "--data-dir", data,
                                 "--listen", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, KMSD_ADMIN_ACCESS_KEY_ID="InstalledAdmin",
                                         KMSD_ADMIN_ACCESS_KEY_SECRET="installed-secret"))
        line = proc.stdout.readline()
        self.assertIn("kmsd ready on https://127.0.0.1:", line)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, err)
