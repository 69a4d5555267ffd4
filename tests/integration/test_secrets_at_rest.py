"""Nothing secret at rest or in the log (DESIGN.md "Ciphertext and key material"): after real
activity, every file of the data directory (kmsd.db, -wal, -shm, ...) and kmsd's stderr are
scanned for the admin secret, Encrypt plaintexts, data keys and the key material itself.

The key material is recovered the way an attacker holding master.key could: the test unwraps
key_versions.material with AES-256-GCM(master, AAD = KeyId ‖ KeyVersionId) through OpenSSL's
libcrypto (ctypes), proves that it is the real key by opening kmsd's own CiphertextBlobs with it
(AAD = blob header ‖ canonical EncryptionContext), and then looks for those bytes everywhere."""

import base64
import ctypes
import ctypes.util
import os
import secrets
import sqlite3
import struct
import unittest

from common import KmsTestCase
from kmsd import ADMIN_SECRET, b64, sign_v1, unb64


def _libcrypto():
    for name in (ctypes.util.find_library("crypto"), "libcrypto.so.3"):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                pass
    return None


LIB = _libcrypto()
if LIB is not None:
    for fn in ("EVP_CIPHER_CTX_new", "EVP_aes_256_gcm", "EVP_aes_128_gcm"):
        getattr(LIB, fn).restype = ctypes.c_void_p
    LIB.EVP_CIPHER_CTX_free.argtypes = [ctypes.c_void_p]
    LIB.EVP_DecryptInit_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                       ctypes.c_char_p, ctypes.c_char_p]
    LIB.EVP_DecryptUpdate.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                      ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, ctypes.c_int]
    LIB.EVP_DecryptFinal_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                        ctypes.POINTER(ctypes.c_int)]
    LIB.EVP_CIPHER_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_char_p]


def gcm_open(key, iv, aad, ct, tag):
    """AES-GCM decryption with OpenSSL; None when the tag does not verify."""
    cipher = LIB.EVP_aes_256_gcm() if len(key) == 32 else LIB.EVP_aes_128_gcm()
    ctx = LIB.EVP_CIPHER_CTX_new()
    try:
        out = ctypes.create_string_buffer(len(ct) + 16)
        n = ctypes.c_int(0)
        assert LIB.EVP_DecryptInit_ex(ctx, cipher, None, key, iv) == 1
        assert LIB.EVP_DecryptUpdate(ctx, None, ctypes.byref(n), aad, len(aad)) == 1
        assert LIB.EVP_DecryptUpdate(ctx, out, ctypes.byref(n), ct, len(ct)) == 1
        got = out.raw[:n.value]
        assert LIB.EVP_CIPHER_CTX_ctrl(ctx, 0x11, 16, tag) == 1  # EVP_CTRL_GCM_SET_TAG
        return got if LIB.EVP_DecryptFinal_ex(ctx, out, ctypes.byref(n)) == 1 else None
    finally:
        LIB.EVP_CIPHER_CTX_free(ctx)


def canonical_context(ctx):
    out = b""
    for k, v in sorted((k.encode(), v.encode()) for k, v in ctx.items()):
        out += struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v
    return out


class SecretsAtRestTest(KmsTestCase):

    def files(self):
        """Every file kmsd wrote: the data directory and its stderr."""
        paths = [self.srv.stderr_path]
        for root, _, names in os.walk(self.srv.data_dir):
            paths += [os.path.join(root, n) for n in names]
        return paths

    def scan(self, needles, skip=()):
        found = []
        for path in self.files():
            if os.path.basename(path) in skip:
                continue
            with open(path, "rb") as f:
                data = f.read()
            for label, needle in needles:
                if needle and needle in data:
                    found.append((os.path.relpath(path, os.path.dirname(self.srv.data_dir)), label))
        self.assertEqual(found, [], "secrets found at rest")

    def material(self):
        """Every key version's material, unwrapped with master.key (as only kmsd should)."""
        with open(os.path.join(self.srv.data_dir, "master.key"), "rb") as f:
            master = f.read()
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.srv.data_dir, "kmsd.db"), uri=True)
        try:
            rows = db.execute("SELECT key_id, version_id, material FROM key_versions "
                              "WHERE material IS NOT NULL").fetchall()
        finally:
            db.close()
        out = {}
        for key_id, version_id, wrapped in rows:
            self.assertEqual(wrapped[0], 1)  # format 1 | iv(12) | ciphertext | tag(16)
            plain = gcm_open(master, wrapped[1:13], (key_id + version_id).encode(), wrapped[13:-16],
                             wrapped[-16:])
            self.assertIsNotNone(plain, "material of %s does not unwrap" % version_id)
            self.assertNotIn(plain, wrapped)
            out[version_id] = plain
        return master, out

    @unittest.skipIf(LIB is None, "libcrypto not loadable through ctypes")
    def test_nothing_secret_at_rest(self):
        needles = [("admin secret", ADMIN_SECRET.encode())]
        keys = {spec: self.create_key(KeySpec=spec) for spec in ("Aliyun_AES_256", "Aliyun_AES_128",
                                                                 "Aliyun_SM4")}
        k256 = keys["Aliyun_AES_256"]["KeyId"]
        blobs = []
        for i in range(6):
            data = secrets.token_bytes(40) + b"PLAINTEXT-NEEDLE-%d" % i
            spec = list(keys)[i % 3]
            ctx = {"who": "test-%d" % i} if i % 2 else {}
            params = {"EncryptionContext." + k: v for k, v in ctx.items()}
            r = self.encrypt(keys[spec]["KeyId"], data, **params)
            blobs.append((spec, r["CiphertextBlob"], ctx, data))
            d = self.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"], **params)
            self.assertEqual(unb64(d["Plaintext"]), data)
            needles += [("plaintext %d" % i, data), ("plaintext %d (base64)" % i, b64(data).encode())]
        for i in range(4):
            r = self.ok("GenerateDataKey", KeyId=list(keys.values())[i % 3]["KeyId"],
                        NumberOfBytes=32 + i)
            dk = unb64(r["Plaintext"])
            needles += [("data key %d" % i, dk), ("data key %d (base64)" % i, r["Plaintext"].encode())]
            d = self.ok("Decrypt", CiphertextBlob=r["CiphertextBlob"])
            self.assertEqual(unb64(d["Plaintext"]), dk)
        # Plaintexts in requests that fail: a wrong signature, a disabled key, a bad context.
        failing = secrets.token_bytes(40)
        needles += [("failed plaintext", failing), ("failed plaintext (base64)", b64(failing).encode())]
        p = self.srv.signed_params("Encrypt", {"KeyId": k256, "Plaintext": b64(failing)})
        p["Signature"] = sign_v1("POST", p, "wrong")
        self.assertEqual(self.srv.send_signed(p).status, 400)
        off = self.create_key()["KeyId"]
        self.ok("DisableKey", KeyId=off)
        self.assertFails("Encrypt", 409, "Rejected.Disabled", KeyId=off, Plaintext=b64(failing))
        self.assertFails("Encrypt", 400, "InvalidParameter", KeyId=k256, Plaintext=b64(failing),
                         EncryptionContext="{bad")

        master, material = self.material()
        self.assertGreaterEqual(len(material), 4)
        # The unwrapped material is the real key: it opens kmsd's AES blobs.
        for spec, blob, ctx, data in blobs:
            if spec == "Aliyun_SM4":
                continue
            raw = unb64(blob)
            version = keys[spec]["PrimaryKeyVersion"]
            got = gcm_open(material[version], raw[18:30], raw[:18] + canonical_context(ctx),
                           raw[30:-16], raw[-16:])
            self.assertEqual(got, data)
        for version_id, m in material.items():
            needles += [("material of %s" % version_id, m),
                        ("material of %s (base64)" % version_id, base64.b64encode(m))]
        needles.append(("master key", master))

        # While kmsd runs (WAL and shm in use)...
        self.scan(needles, skip=("master.key",))
        # ...and after a clean stop (the WAL checkpointed into kmsd.db).
        self.assertEqual(self.srv.stop(), 0)
        self.scan(needles, skip=("master.key",))
        self.srv.start()

    def test_file_modes(self):
        for name in ("master.key", "kmsd.db", os.path.join("tls", "key.pem")):
            mode = os.stat(os.path.join(self.srv.data_dir, name)).st_mode & 0o777
            self.assertEqual(mode & 0o077, 0, "%s is mode %o" % (name, mode))
        self.assertEqual(os.stat(self.srv.data_dir).st_mode & 0o077, 0)


if __name__ == "__main__":
    unittest.main()
