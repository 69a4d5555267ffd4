"""A test PKI made with the `openssl` command line: the outside world of the certificate tests.

CA(kind) is a root and an intermediate CA (RSA 2048, EC P-256 or SM2). It issues certificates
for kmsd's CSRs with `openssl x509 -req` (or `openssl ca` when explicit validity dates are
needed), makes key pairs and PKCS#12 files of its own, and reads back what kmsd exports. SM2
signatures use the default distinguishing ID 1234567812345678 on both sides, as kmsd does.

Standard library only.
"""

import os
import secrets
import subprocess
import tempfile

SM2_ID = "1234567812345678"


def openssl(*args, data=None, check=True):
    r = subprocess.run(["openssl"] + [str(a) for a in args], input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if check and r.returncode != 0:
        raise AssertionError("openssl %s failed (%d): %s" % (
            " ".join(str(a) for a in args), r.returncode, r.stderr.decode(errors="replace")))
    return r


def genkey(path, kind):
    """A private key file: RSA (2048 unless 'RSA3072'), EC (P-256), EC384, SM2."""
    if kind in ("RSA", "RSA_2048"):
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    elif kind == "RSA3072":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out", path)
    elif kind in ("EC", "EC_P256"):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    elif kind == "EC384":
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", path)
    elif kind in ("SM2", "EC_SM2"):
        openssl("genpkey", "-algorithm", "SM2", "-out", path)
    else:
        raise ValueError(kind)
    return path


def sign_opts(kind):
    """The digest/signature options of a signer of this kind."""
    if kind in ("SM2", "EC_SM2"):
        return ["-sm3", "-sigopt", "distid:" + SM2_ID]
    return ["-sha256"]


def csr_verify_opts(csr_path):
    """x509 -req / ca check the CSR's self-signature: SM2 ones with the default ID."""
    text = openssl("req", "-in", csr_path, "-noout", "-text").stdout.decode()
    if "SM2-with-SM3" in text:
        return ["-vfyopt", "distid:" + SM2_ID]
    return []


class Dir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="kmsd-ca-")
        self.n = 0

    def name(self, base):
        self.n += 1
        return os.path.join(self.path, "%03d-%s" % (self.n, base))

    def write(self, base, data):
        p = self.name(base)
        with open(p, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return p

    def cleanup(self):
        for root, dirs, files in os.walk(self.path, topdown=False):
            for f in files:
                os.unlink(os.path.join(root, f))
            for d in dirs:
                os.rmdir(os.path.join(root, d))
        os.rmdir(self.path)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


class CA:
    """Root -> intermediate, both of one key kind."""

    def __init__(self, d, kind="RSA", name="Test"):
        self.d = d
        self.kind = kind
        self.root_key = genkey(d.name("root.key"), kind)
        self.root_subject = "/CN=%s Root CA/O=kmsd tests/C=CN" % name
        self.root = d.name("root.pem")
        openssl("req", "-x509", "-new", "-key", self.root_key, *sign_opts(kind), "-subj",
                self.root_subject, "-days", 3650, "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", self.root)
        self.inter_key = genkey(d.name("inter.key"), kind)
        csr = d.name("inter.csr")
        openssl("req", "-new", "-key", self.inter_key, *sign_opts(kind), "-subj",
                "/CN=%s Issuing CA/O=kmsd tests/C=CN" % name, "-out", csr)
        ext = d.write("inter.ext", "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                                   "keyUsage=critical,keyCertSign,cRLSign\n"
                                   "subjectKeyIdentifier=hash\n"
                                   "authorityKeyIdentifier=keyid\n")
        self.inter = d.name("inter.pem")
        openssl("x509", "-req", "-in", csr, "-CA", self.root, "-CAkey", self.root_key,
                *sign_opts(kind), *csr_verify_opts(csr), "-set_serial", self.serial(),
                "-days", 1825, "-extfile", ext, "-out", self.inter)
        self.root_pem = read(self.root)
        self.inter_pem = read(self.inter)
        self.chain = self.inter_pem + self.root_pem

    @staticmethod
    def serial():
        return "0x" + secrets.token_hex(8)

    def leaf_ext(self):
        return self.d.write("leaf.ext", "basicConstraints=critical,CA:FALSE\n"
                                        "keyUsage=critical,digitalSignature,keyEncipherment\n"
                                        "subjectKeyIdentifier=hash\n"
                                        "authorityKeyIdentifier=keyid\n")

    def issue(self, csr_pem, days=365, serial=None):
        """A certificate (PEM) for a CSR, issued by the intermediate; SANs copied from the CSR."""
        csr = self.d.write("leaf.csr", csr_pem)
        out = self.d.name("leaf.pem")
        openssl("x509", "-req", "-in", csr, "-CA", self.inter, "-CAkey", self.inter_key,
                *sign_opts(self.kind), *csr_verify_opts(csr), "-set_serial",
                serial or self.serial(), "-days", days, "-copy_extensions", "copy",
                "-extfile", self.leaf_ext(), "-out", out)
        return read(out)

    def issue_dates(self, csr_pem, start, end):
        """A certificate valid from start to end (YYYYMMDDHHMMSSZ), via `openssl ca`."""
        base = self.d.name("ca")
        os.mkdir(base)
        open(os.path.join(base, "index.txt"), "w").close()
        with open(os.path.join(base, "serial"), "w") as f:
            f.write(secrets.token_hex(8).upper() + "\n")
        conf = self.d.write("ca.cnf", """[ca]
default_ca = ca_default
[ca_default]
dir = %s
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
default_md = default
policy = policy_any
copy_extensions = copy
unique_subject = no
[policy_any]
commonName = supplied
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
""" % base)
        csr = self.d.write("leaf.csr", csr_pem)
        out = self.d.name("leaf.pem")
        args = ["ca", "-batch", "-config", conf, "-in", csr, "-cert", self.inter, "-keyfile",
                self.inter_key, "-startdate", start, "-enddate", end, "-preserveDN", "-notext",
                "-extensions", "leaf", "-out", out] + csr_verify_opts(csr)
        if self.kind in ("SM2", "EC_SM2"):
            args += ["-md", "sm3", "-sigopt", "distid:" + SM2_ID]
        openssl(*args)
        return read(out)

    def key_and_cert(self, kind, subject="/CN=imported/O=kmsd tests/C=CN", days=365):
        """A key pair made outside kmsd with its certificate: (key path, cert PEM)."""
        key = genkey(self.d.name("own.key"), kind)
        csr = self.d.name("own.csr")
        openssl("req", "-new", "-key", key, *sign_opts(kind), "-subj", subject, "-out", csr)
        return key, self.issue(read(csr), days=days)

    def pkcs12(self, key, cert_pem, passphrase, chain=True, extra=()):
        """A PKCS#12 file (DER bytes) as `openssl pkcs12 -export` makes it."""
        cert = self.d.write("p12.pem", cert_pem)
        out = self.d.name("bundle.p12")
        args = ["pkcs12", "-export", "-inkey", key, "-in", cert, "-passout",
                "pass:" + passphrase, "-out", out] + list(extra)
        if chain:
            args += ["-certfile", self.d.write("p12chain.pem", self.chain)]
        openssl(*args)
        return read(out, "rb")


def cert_field(pem, *opts):
    """`openssl x509 -noout <opts>` of a PEM certificate, as text."""
    r = openssl("x509", "-noout", *opts, data=pem.encode())
    return r.stdout.decode()


def cert_public_pem(pem):
    return openssl("x509", "-noout", "-pubkey", data=pem.encode()).stdout.decode()
