"""The outside world for interop tests: the `openssl` command line, and the little SM2 glue it lacks.

kmsd's public-key output must be usable by an independent implementation, and what that
implementation produces must be accepted by kmsd. Tests use the OpenSSL CLI (a separate program,
not kmsd's library calls) for signatures, RSA and SM2 encryption, and key generation; plus:

* the SM2 signing digest e = SM3(Z_A || M) with the default ID "1234567812345678" (GB/T 32918.2),
  which callers of AsymmetricSign/SM2DSA compute themselves (hashlib's SM3);
* conversion between the raw SM2 ciphertext kmsd speaks (C1 || C3 || C2, C1 = 04 || x || y) and
  the GM/T 0009 DER SEQUENCE {x, y, C3, C2} that `openssl pkeyutl` reads and writes.

Standard library only.
"""

import base64
import hashlib
import os
import subprocess
import tempfile

SM2_ID = b"1234567812345678"
_SM2_A = bytes.fromhex("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC")
_SM2_B = bytes.fromhex("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93")
_SM2_GX = bytes.fromhex("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7")
_SM2_GY = bytes.fromhex("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0")


class Workdir:
    """A temporary directory for key and data files; a context manager."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="kmsd-ossl-")

    def file(self, name, data):
        p = os.path.join(self.path, name)
        with open(p, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return p

    def read(self, name):
        with open(os.path.join(self.path, name), "rb") as f:
            return f.read()

    def name(self, name):
        return os.path.join(self.path, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for n in os.listdir(self.path):
            os.unlink(os.path.join(self.path, n))
        os.rmdir(self.path)


def openssl(*args, check=True, data=None):
    """Runs the openssl CLI; returns CompletedProcess (stdout bytes)."""
    r = subprocess.run(["openssl"] + list(args), input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if check and r.returncode != 0:
        raise AssertionError("openssl %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                             r.stderr.decode(errors="replace")))
    return r


def pem_to_der(pem):
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    return base64.b64decode(body)


# --- signatures ------------------------------------------------------------------------------

def verify_message(wd, pem, algorithm, message, signature):
    """True when `openssl dgst` verifies signature over message with the public key pem."""
    pub = wd.file("pub.pem", pem)
    msg = wd.file("msg.bin", message)
    sig = wd.file("sig.bin", signature)
    args = ["dgst", "-verify", pub, "-signature", sig]
    if algorithm == "SM2DSA":
        args = ["dgst", "-sm3", "-verify", pub, "-sigopt", "distid:" + SM2_ID.decode(),
                "-signature", sig]
    else:
        args.insert(1, "-sha256")
        if algorithm == "RSA_PSS_SHA_256":
            args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
                     "-sigopt", "rsa_mgf1_md:sha256"]
    r = openssl(*(args + [msg]), check=False)
    return r.returncode == 0 and b"Verified OK" in r.stdout


def verify_digest(wd, pem, algorithm, digest, signature):
    """True when `openssl pkeyutl -verify` accepts signature over the precomputed digest."""
    pub = wd.file("pub.pem", pem)
    dg = wd.file("digest.bin", digest)
    sig = wd.file("sig.bin", signature)
    args = ["pkeyutl", "-verify", "-pubin", "-inkey", pub, "-in", dg, "-sigfile", sig]
    if algorithm.startswith("RSA_"):
        args += ["-pkeyopt", "digest:sha256"]
        if algorithm == "RSA_PSS_SHA_256":
            args += ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32",
                     "-pkeyopt", "rsa_mgf1_md:sha256"]
        else:
            args += ["-pkeyopt", "rsa_padding_mode:pkcs1"]
    elif algorithm == "ECDSA_SHA_256":
        args += ["-pkeyopt", "digest:sha256"]
    r = openssl(*args, check=False)
    return r.returncode == 0 and b"Signature Verified Successfully" in r.stdout


def sm2_point(spki_der):
    """The 64 bytes x || y of an SM2 SubjectPublicKeyInfo (its BIT STRING ends in 00 04 x y)."""
    assert spki_der[-66] == 0 and spki_der[-65] == 4, "not an uncompressed point at the end"
    return spki_der[-64:]


def sm2_digest(spki_der, message, user_id=SM2_ID):
    """e = SM3(Z_A || M), Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA)."""
    entl = (len(user_id) * 8).to_bytes(2, "big")
    z = hashlib.new("sm3", entl + user_id + _SM2_A + _SM2_B + _SM2_GX + _SM2_GY +
                    sm2_point(spki_der)).digest()
    return hashlib.new("sm3", z + message).digest()


# --- public-key encryption -------------------------------------------------------------------

RSA_PKEYOPTS = {
    "RSAES_OAEP_SHA_256": ["rsa_padding_mode:oaep", "rsa_oaep_md:sha256", "rsa_mgf1_md:sha256"],
    "RSAES_OAEP_SHA_1": ["rsa_padding_mode:oaep", "rsa_oaep_md:sha1", "rsa_mgf1_md:sha1"],
    "RSAES_PKCS1_V1_5": ["rsa_padding_mode:pkcs1"],
    "SM2PKE": [],
}


def encrypt(wd, public_key, algorithm, plaintext, keyform="PEM"):
    """`openssl pkeyutl -encrypt` with a public key (PEM text or DER bytes); SM2 gives DER."""
    pub = wd.file("enc_pub." + keyform.lower(), public_key)
    inp = wd.file("enc_in.bin", plaintext)
    out = wd.name("enc_out.bin")
    args = ["pkeyutl", "-encrypt", "-pubin", "-keyform", keyform, "-inkey", pub, "-in", inp,
            "-out", out]
    for opt in RSA_PKEYOPTS[algorithm]:
        args += ["-pkeyopt", opt]
    openssl(*args)
    return wd.read("enc_out.bin")


def decrypt(wd, private_pem_path, algorithm, ciphertext):
    """`openssl pkeyutl -decrypt` with a private key file; SM2 takes DER ciphertext."""
    inp = wd.file("dec_in.bin", ciphertext)
    out = wd.name("dec_out.bin")
    args = ["pkeyutl", "-decrypt", "-inkey", private_pem_path, "-in", inp, "-out", out]
    for opt in RSA_PKEYOPTS[algorithm]:
        args += ["-pkeyopt", opt]
    openssl(*args)
    return wd.read("dec_out.bin")


def generate_key(wd, spec, name="caller.pem"):
    """A caller's key pair made by openssl: returns (private key path, SPKI DER bytes)."""
    path = wd.name(name)
    if spec == "RSA_2048":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    elif spec == "RSA_3072":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out", path)
    elif spec == "RSA_1024":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", path)
    elif spec == "EC_SM2":
        openssl("genpkey", "-algorithm", "SM2", "-out", path)
    elif spec == "EC_P256":
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    else:
        raise ValueError(spec)
    der = openssl("pkey", "-in", path, "-pubout", "-outform", "DER").stdout
    return path, der


# --- SM2 ciphertext layouts --------------------------------------------------------------------

def _der_len(n):
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82, n >> 8, n & 0xFF])


def _der_int(b):
    b = b.lstrip(b"\x00") or b"\x00"
    if b[0] & 0x80:
        b = b"\x00" + b
    return b"\x02" + _der_len(len(b)) + b


def sm2_raw_to_der(raw):
    assert raw[0] == 4 and len(raw) >= 97
    x, y, c3, c2 = raw[1:33], raw[33:65], raw[65:97], raw[97:]
    body = _der_int(x) + _der_int(y) + b"\x04" + _der_len(32) + c3 + b"\x04" + _der_len(len(c2)) + c2
    return b"\x30" + _der_len(len(body)) + body


def _der_read(buf, pos):
    tag, n = buf[pos], buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return tag, buf[pos:pos + n], pos + n


def sm2_der_to_raw(der):
    tag, body, end = _der_read(der, 0)
    assert tag == 0x30 and end == len(der)
    items, pos = [], 0
    while pos < len(body):
        t, v, pos = _der_read(body, pos)
        items.append((t, v))
    assert [t for t, _ in items] == [2, 2, 4, 4]
    x = items[0][1].lstrip(b"\x00").rjust(32, b"\x00")
    y = items[1][1].lstrip(b"\x00").rjust(32, b"\x00")
    return b"\x04" + x + y + items[2][1] + items[3][1]
