"""The certificate manager (spec/actions.md H1-H13, algorithms.md §9) against the openssl command
line as the outside world: a test CA (cert_ca.py: root and issuing CA, RSA, EC P-256 or SM2)
signs kmsd's CSRs; kmsd checks the certificate and chain it gets back; openssl verifies kmsd's
signatures with the certificate, encrypts for it, and reads back what ExportCertificate gives;
PKCS#12 files made by openssl are imported. Plus every error path, the status rules, tags,
quotas, persistence across a restart and a scan for private keys at rest.
"""

import base64
import hashlib
import json
import os
import re
import sqlite3
import unittest

import cert_ca
import openssl_cli as ossl
from cert_ca import openssl
from common import DEFAULT_CONFIG, REGION, ACCOUNT, TIME_RE, UUID_RE, KmsTestCase, tags_json
from kmsd import Server, b64, unb64

SPECS = ("RSA_2048", "EC_P256", "EC_SM2")
SIGN_ALGS = {"RSA_2048": ["RSA_PKCS1_SHA_256", "RSA_PSS_SHA_256"], "EC_P256": ["ECDSA_SHA_256"],
             "EC_SM2": ["SM2DSA"]}
ENC_ALGS = {"RSA_2048": ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"], "EC_SM2": ["SM2PKE"]}
CSR_SIG = {"RSA_2048": "sha256WithRSAEncryption", "EC_P256": "ecdsa-with-SHA256",
           "EC_SM2": "SM2-with-SM3"}
SUBJECT = "CN=kmsd test,OU=kms,O=kmsd tests,C=CN"


def cert_arn(cid):
    return "acs:kms:%s:%s:certificate/%s" % (REGION, ACCOUNT, cid)


def ssl_digest(spec, pem, message):
    """What MessageType=DIGEST takes: SHA-256(M), or SM3(Z_A || M) for SM2."""
    if spec == "EC_SM2":
        return ossl.sm2_digest(ossl.pem_to_der(pem), message)
    return hashlib.sha256(message).digest()


class CertTestCase(KmsTestCase):
    """One kmsd and one directory of test PKI files per class."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.d = cert_ca.Dir()
        cls.wd = ossl.Workdir()
        cls.cas = {}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.d.cleanup()
            cls.wd.__exit__(None)

    def ca(self, kind="RSA", name=None):
        key = (kind, name)
        if key not in self.cas:
            self.cas[key] = cert_ca.CA(self.d, kind, name or kind)
        return self.cas[key]

    def create(self, spec="RSA_2048", subject=SUBJECT, **params):
        r = self.ok("CreateCertificate", Subject=subject, KeySpec=spec, **params)
        self.assertTrue(UUID_RE.match(r["CertificateId"]), r)
        self.assertEqual(r["Arn"], cert_arn(r["CertificateId"]))
        self.assertTrue(r["Csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----\n"), r)
        return r["CertificateId"], r["Csr"]

    def active(self, spec="RSA_2048", ca_kind="RSA", **params):
        """A certificate issued by the test CA and uploaded with its chain: (id, cert PEM)."""
        cid, csr = self.create(spec, **params)
        pem = self.ca(ca_kind).issue(csr)
        self.ok("UploadCertificate", CertificateId=cid, Certificate=pem,
                CertificateChain=self.ca(ca_kind).chain)
        return cid, pem

    def describe(self, cid):
        return self.ok("DescribeCertificate", CertificateId=cid)

    def status(self, cid):
        return self.describe(cid)["Status"]

    def set_status(self, cid, status):
        self.ok("UpdateCertificateStatus", CertificateId=cid, Status=status)
        self.assertEqual(self.status(cid), status)

    def export_pem_key(self, cid, passphrase="passphrase-1"):
        """The private key as ExportCertificate gives it, written to a file readable by openssl."""
        r = self.ok("ExportCertificate", CertificateId=cid, ExportFormat="PEM",
                    Passphrase=passphrase)
        self.assertTrue(r["PrivateKey"].startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"))
        enc = self.d.write("export.pem", r["PrivateKey"])
        plain = self.d.name("export-plain.pem")
        openssl("pkey", "-in", enc, "-passin", "pass:" + passphrase, "-out", plain)
        return plain, r

    def csr_text(self, csr):
        return openssl("req", "-noout", "-text", data=csr.encode()).stdout.decode()


class CreateCertificateTest(CertTestCase):

    def test_csr_per_key_spec_verifies_with_openssl(self):
        for spec in SPECS:
            with self.subTest(spec=spec):
                cid, csr = self.create(spec, SubjectAlternativeNames='["a.example.com","*.b.example.com"]')
                opts = ["-vfyopt", "distid:" + cert_ca.SM2_ID] if spec == "EC_SM2" else []
                r = openssl("req", "-verify", "-noout", *opts, data=csr.encode(), check=False)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(b"verify OK", r.stdout + r.stderr)
                text = self.csr_text(csr)
                self.assertIn("Signature Algorithm: " + CSR_SIG[spec], text)
                self.assertIn("Subject: C = CN, O = kmsd tests, OU = kms, CN = kmsd test", text)
                self.assertIn("DNS:a.example.com, DNS:*.b.example.com", text)
                # The CSR's key is the certificate's key.
                csr_pub = openssl("req", "-noout", "-pubkey", data=csr.encode()).stdout.decode()
                d = self.describe(cid)
                self.assertEqual(d["SubjectPublicKey"], csr_pub)
                self.assertEqual(d["KeySpec"], spec)
                self.assertEqual(d["Status"], "PENDING")
                self.assertEqual(d["ProtectionLevel"], "SOFTWARE")
                self.assertIs(d["ExportablePrivateKey"], True)
                self.assertEqual(d["SubjectAlternativeNames"], ["a.example.com", "*.b.example.com"])
                self.assertEqual(d["Subject"], SUBJECT)
                for f in ("Issuer", "Serial", "NotBefore", "NotAfter", "SignatureAlgorithm",
                          "SubjectKeyIdentifier"):
                    self.assertEqual(d[f], "", f)
                self.assertTrue(TIME_RE.match(d["CreatedAt"]) and TIME_RE.match(d["UpdatedAt"]))
                self.assertEqual(d["Tags"], {"Tag": []})
                g = self.ok("GetCertificate", CertificateId=cid)
                self.assertEqual((g["CertificateId"], g["Certificate"], g["CertificateChain"], g["Csr"]),
                                 (cid, "", "", csr))

    def test_sm2_csr_is_signed_over_the_default_id(self):
        cid, csr = self.create("EC_SM2")
        # Without the distinguishing ID (OpenSSL 3's empty default) the signature does not verify.
        r = openssl("req", "-verify", "-noout", data=csr.encode(), check=False)
        self.assertNotIn(b"verify OK", r.stdout + r.stderr)

    def test_no_sans_and_defaults(self):
        cid, csr = self.create("EC_P256")
        self.assertNotIn("Subject Alternative Name", self.csr_text(csr))
        d = self.describe(cid)
        self.assertEqual(d["SubjectAlternativeNames"], [])
        cid, _ = self.create("RSA_2048", ExportablePrivateKey="false")
        self.assertIs(self.describe(cid)["ExportablePrivateKey"], False)
        # Tianyi's "SM2" spelling of the key spec.
        cid, _ = self.create("SM2")
        self.assertEqual(self.describe(cid)["KeySpec"], "EC_SM2")

    def test_subject_is_written_in_one_canonical_form(self):
        cases = [
            (" cn = Alice Smith , o=Org\\, Inc. ,c=cn", "CN=Alice Smith,O=Org\\, Inc.,C=CN"),
            ('CN="quoted, name",O=x,C=DE', "CN=quoted\\, name,O=x,C=DE"),
            ("CN=a,OU=u1,OU=u2,OU=u3,OU=u4,OU=u5,O=o,L=Hangzhou,ST=Zhejiang,C=CN,E=ops@example.com",
             "CN=a,OU=u1,OU=u2,OU=u3,OU=u4,OU=u5,O=o,L=Hangzhou,ST=Zhejiang,C=CN,"
             "emailAddress=ops@example.com"),
            ("commonName=测试证书,organizationName=天翼,countryName=CN", "CN=测试证书,O=天翼,C=CN"),
            ("CN=\\41BC,O=x,C=CN", "CN=ABC,O=x,C=CN"),
        ]
        for given, want in cases:
            with self.subTest(given=given):
                cid, csr = self.create("EC_P256", subject=given)
                self.assertEqual(self.describe(cid)["Subject"], want)
                self.assertIn(want, [openssl("req", "-noout", "-subject", "-nameopt",
                                             "RFC2253,-esc_msb", data=csr.encode())
                                     .stdout.decode().strip()[len("subject="):]])

    def test_bad_subject(self):
        bad = [
            "O=o,C=CN",  # no CN
            "CN=a,C=CN",  # no O
            "CN=a,O=o",  # no C
            "CN=a,O=o,C=CHN",  # C is two letters
            "CN=a,O=o,C=C1",
            "CN=a,O=o,C=CN,X=1",  # unknown attribute
            "CN=a,O=o,C=CN,serialNumber=1",  # known to OpenSSL, not allowed here
            "CN=a,CN=b,O=o,C=CN",  # twice
            "CN=a,O=o,C=CN,OU=1,OU=2,OU=3,OU=4,OU=5,OU=6",  # more than 5 OUs
            "CN=a+UID=b,O=o,C=CN",  # multi-valued RDN
            "CN=#04024869,O=o,C=CN",  # BER value
            "CN=a,O=o,C=CN,E=not-an-email",
            "CN=a,O=o,C=CN,E=a@b@c",
            "CN=" + "x" * 65 + ",O=o,C=CN",  # over 64 characters
            "CN=a,O=o,C=CN,",  # trailing comma
            "CN=,O=o,C=CN",  # empty value
            "CN=a;O=o,C=CN",
            "CN=a\\00b,O=o,C=CN",  # NUL
            "CN=a\\zz,O=o,C=CN",  # bad escape
            'CN="open,O=o,C=CN',
            "just text",
            "=x,O=o,C=CN",
            "CN=a,O=o,C=CN" + ",OU=x" * 20,
        ]
        for subject in bad:
            with self.subTest(subject=subject):
                self.assertFails("CreateCertificate", 400, "InvalidParameter", "Subject",
                                 Subject=subject, KeySpec="EC_P256")
        # 64 characters is the limit, not beyond.
        self.create("EC_P256", subject="CN=" + "é" * 64 + ",O=o,C=CN")

    def test_bad_parameters(self):
        self.assertFails("CreateCertificate", 400, "MissingParameter", "Subject", KeySpec="EC_P256")
        self.assertFails("CreateCertificate", 400, "MissingParameter", "KeySpec", Subject=SUBJECT)
        for spec in ("Aliyun_AES_256", "RSA_3072", "EC_P256K", "RSA_4096", "rsa_2048"):
            self.assertFails("CreateCertificate", 400, "InvalidParameter", "KeySpec",
                             Subject=SUBJECT, KeySpec=spec)
        for sans in ('"a.example.com"', "a.example.com", "[1]", '["bad_name.example.com"]',
                     '["-a.example.com"]', '["a..example.com"]', '["a.example.com","A.example.com"]',
                     json.dumps(["h%d.example.com" % i for i in range(11)]), '["' + "a" * 64 + '.com"]',
                     '["a.*.example.com"]', '[""]', "{}", '["x.com",'):
            with self.subTest(sans=sans):
                self.assertFails("CreateCertificate", 400, "InvalidParameter",
                                 "SubjectAlternativeNames", Subject=SUBJECT, KeySpec="EC_P256",
                                 SubjectAlternativeNames=sans)
        self.create("EC_P256", SubjectAlternativeNames=json.dumps(["h%d.example.com" % i for i in range(10)]))
        self.assertFails("CreateCertificate", 400, "InvalidParameter", "ExportablePrivateKey",
                         Subject=SUBJECT, KeySpec="EC_P256", ExportablePrivateKey="maybe")
        self.assertFails("CreateCertificate", 400, "InvalidParameter", "ProtectionLevel",
                         Subject=SUBJECT, KeySpec="EC_P256", ProtectionLevel="TPM")
        # No HSM configured here.
        self.assertFails("CreateCertificate", 400, "Unsupported.ProtectionLevel",
                         Subject=SUBJECT, KeySpec="EC_P256", ProtectionLevel="HSM")

    def test_unknown_certificate(self):
        for action, extra in (("DescribeCertificate", {}), ("GetCertificate", {}),
                              ("DeleteCertificate", {}),
                              ("UpdateCertificateStatus", {"Status": "ACTIVE"}),
                              ("UploadCertificate", {"Certificate": "x"}),
                              ("ExportCertificate", {"ExportFormat": "PEM", "Passphrase": "12345678"}),
                              ("CertificatePrivateKeySign", {"Algorithm": "ECDSA_SHA_256",
                                                             "Message": b64(b"m")}),
                              ("CertificatePublicKeyVerify", {"Algorithm": "ECDSA_SHA_256",
                                                              "Message": b64(b"m"),
                                                              "SignatureValue": b64(b"s")}),
                              ("CertificatePublicKeyEncrypt", {"Algorithm": "SM2PKE",
                                                               "Plaintext": b64(b"p")}),
                              ("CertificatePrivateKeyDecrypt", {"Algorithm": "SM2PKE",
                                                                "CiphertextBlob": b64(b"c")})):
            for cid in ("00000000-0000-4000-8000-000000000000", "nope", "x" * 300,
                        cert_arn("00000000-0000-4000-8000-000000000000"),
                        "acs:kms:other-region:%s:certificate/x" % ACCOUNT):
                with self.subTest(action=action, cid=cid):
                    self.assertFails(action, 404, "Certificate.NotFound", CertificateId=cid, **extra)
            self.assertFails(action, 400, "MissingParameter", "CertificateId", **extra)

    def test_arn_names_a_certificate(self):
        cid, _ = self.create("EC_P256")
        self.assertEqual(self.ok("DescribeCertificate", CertificateId=cert_arn(cid))["CertificateId"], cid)

    def test_xml_format(self):
        cid, _ = self.create("EC_P256", SubjectAlternativeNames='["a.example.com","b.example.com"]')
        r = self.srv.call("DescribeCertificate", CertificateId=cid, Format="XML")
        self.assertEqual(r.status, 200, r)
        self.assertIn("<SubjectAlternativeNames>a.example.com</SubjectAlternativeNames>", r.body)
        self.assertIn("<ExportablePrivateKey>true</ExportablePrivateKey>", r.body)


class UploadCertificateTest(CertTestCase):

    def check_described(self, cid, pem, ca):
        d = self.describe(cid)
        self.assertEqual(d["Status"], "ACTIVE")
        issuer = cert_ca.cert_field(pem, "-issuer", "-nameopt", "RFC2253").strip()
        self.assertEqual("issuer=" + d["Issuer"], issuer)
        serial = cert_ca.cert_field(pem, "-serial").strip()
        self.assertEqual("serial=" + d["Serial"], serial)
        dates = cert_ca.cert_field(pem, "-dates", "-dateopt", "iso_8601")
        nb = re.search(r"notBefore=(\S+) (\S+)Z", dates)
        self.assertEqual(d["NotBefore"], "%sT%sZ" % nb.groups())
        na = re.search(r"notAfter=(\S+) (\S+)Z", dates)
        self.assertEqual(d["NotAfter"], "%sT%sZ" % na.groups())
        ski = cert_ca.cert_field(pem, "-ext", "subjectKeyIdentifier").splitlines()[1].strip()
        self.assertEqual(d["SubjectKeyIdentifier"], ski.replace(":", " "))
        self.assertEqual(d["SignatureAlgorithm"], {"RSA": "RSA2048-SHA256", "EC": "ECDSA-SHA256",
                                                   "SM2": "SM2-SM3"}[ca.kind])
        return d

    def test_issue_and_upload_every_spec_with_every_ca(self):
        for ca_kind in ("RSA", "EC", "SM2"):
            ca = self.ca(ca_kind)
            for spec in SPECS:
                with self.subTest(ca=ca_kind, spec=spec):
                    cid, csr = self.create(spec, SubjectAlternativeNames='["svc.example.com"]')
                    pem = ca.issue(csr)
                    r = self.ok("UploadCertificate", CertificateId=cid, Certificate=pem,
                                CertificateChain=ca.chain)
                    self.assertEqual(set(r), {"RequestId"})
                    d = self.check_described(cid, pem, ca)
                    self.assertEqual(d["SubjectAlternativeNames"], ["svc.example.com"])
                    g = self.ok("GetCertificate", CertificateId=cid)
                    self.assertEqual(g["Certificate"], pem)
                    self.assertEqual(g["CertificateChain"], ca.chain)
                    self.assertEqual(g["Csr"], csr)
                    # The chain kmsd keeps verifies the certificate for openssl too.
                    leaf = self.d.write("leaf.pem", pem)
                    if ca_kind == "SM2":
                        # `openssl verify -vfyopt` sets the ID on the target only: link by link.
                        vfy = ["-vfyopt", "distid:" + cert_ca.SM2_ID]
                        openssl("verify", "-partial_chain", "-CAfile",
                                self.d.write("inter.pem", ca.inter_pem), *vfy, leaf)
                        openssl("verify", "-CAfile", self.d.write("root.pem", ca.root_pem), *vfy,
                                self.d.write("inter.pem", ca.inter_pem))
                    else:
                        openssl("verify", "-CAfile", self.d.write("root.pem", ca.root_pem),
                                "-untrusted", self.d.write("chain.pem", g["CertificateChain"]), leaf)

    def test_subject_follows_the_issued_certificate(self):
        cid, csr = self.create("EC_P256", subject="CN=asked,OU=dropped,O=kmsd tests,C=CN")
        # A CA may rewrite the subject: kmsd describes the certificate it holds.
        forced = self.d.write("forced.csr", csr)
        out = self.d.name("forced.pem")
        ca = self.ca("RSA")
        openssl("x509", "-req", "-in", forced, "-CA", ca.inter, "-CAkey", ca.inter_key,
                "-set_serial", "77", "-days", 30, "-subj", "/CN=issued/O=kmsd tests/C=CN",
                "-out", out, check=False)
        if not os.path.exists(out):
            self.skipTest("openssl x509 -req cannot override the subject here")
        self.ok("UploadCertificate", CertificateId=cid, Certificate=cert_ca.read(out),
                CertificateChain=ca.chain)
        d = self.describe(cid)
        self.assertEqual(d["Subject"], "C=CN,O=kmsd tests,CN=issued")
        self.assertEqual(d["Serial"], "4D")

    def test_chain_forms_accepted(self):
        ca = self.ca("RSA")
        forms = {
            "root first": ca.root_pem + ca.inter_pem,
            "intermediate only (the anchor)": ca.inter_pem,
            "with a copy of the certificate": None,
            "text around the blocks": "bundle:\n" + ca.inter_pem + "\n\n" + ca.root_pem + "end\n",
        }
        for name, chain in forms.items():
            with self.subTest(form=name):
                cid, csr = self.create("EC_P256")
                pem = ca.issue(csr)
                self.ok("UploadCertificate", CertificateId=cid, Certificate=pem,
                        CertificateChain=chain if chain is not None else pem + ca.chain)
                want = ca.inter_pem if chain == ca.inter_pem else ca.chain
                self.assertEqual(self.ok("GetCertificate", CertificateId=cid)["CertificateChain"], want)

    def test_no_chain(self):
        # Without a chain only the key and the validity are checked (the caller vouches for the CA).
        cid, csr = self.create("RSA_2048")
        pem = self.ca("RSA").issue(csr)
        self.ok("UploadCertificate", CertificateId=cid, Certificate=pem)
        self.assertEqual(self.ok("GetCertificate", CertificateId=cid)["CertificateChain"], "")
        self.assertEqual(self.status(cid), "ACTIVE")

    def test_refused_certificates(self):
        ca = self.ca("RSA")
        other = self.ca("RSA", "Other")
        cid, csr = self.create("RSA_2048")
        pem = ca.issue(csr)
        _, other_csr = self.create("RSA_2048")
        wrong_key = ca.issue(other_csr)
        der = bytearray(ossl.pem_to_der(pem))
        der[-5] ^= 0x01  # inside the signature
        tampered = "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" % \
            base64.encodebytes(bytes(der)).decode().strip()
        cases = [
            ("Certificate", dict(Certificate=wrong_key, CertificateChain=ca.chain)),
            ("Certificate", dict(Certificate="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")),
            ("Certificate", dict(Certificate="not a certificate")),
            ("Certificate", dict(Certificate=pem + pem)),  # two certificates
            ("Certificate", dict(Certificate=ca.inter_pem, CertificateChain=ca.root_pem)),  # CA's key
            ("CertificateChain", dict(Certificate=pem, CertificateChain=other.chain)),
            ("CertificateChain", dict(Certificate=pem, CertificateChain=ca.root_pem)),  # gap
            ("CertificateChain", dict(Certificate=pem, CertificateChain=ca.chain + other.root_pem)),
            ("CertificateChain", dict(Certificate=pem, CertificateChain="garbage")),
            ("CertificateChain", dict(Certificate=pem, CertificateChain=ca.inter_pem[:-40])),
            ("CertificateChain", dict(Certificate=tampered, CertificateChain=ca.chain)),
            ("CertificateChain", dict(Certificate=pem, CertificateChain=ca.chain * 6)),  # > 10
        ]
        for param, params in cases:
            with self.subTest(param=param, params=str(params)[:120]):
                self.assertFails("UploadCertificate", 400, "InvalidParameter", param,
                                 CertificateId=cid, **params)
                self.assertEqual(self.status(cid), "PENDING")
        self.assertFails("UploadCertificate", 400, "MissingParameter", "Certificate",
                         CertificateId=cid)
        self.ok("UploadCertificate", CertificateId=cid, Certificate=pem, CertificateChain=ca.chain)

    def test_validity_period(self):
        ca = self.ca("RSA")
        for start, end in (("200101000000Z", "210101000000Z"), ("450101000000Z", "460101000000Z")):
            for spec in ("RSA_2048", "EC_SM2"):
                with self.subTest(start=start, spec=spec):
                    cid, csr = self.create(spec)
                    pem = ca.issue_dates(csr, start, end)
                    self.assertFails("UploadCertificate", 400, "InvalidParameter", "Certificate",
                                     CertificateId=cid, Certificate=pem, CertificateChain=ca.chain)
                    self.assertFails("UploadCertificate", 400, "InvalidParameter", "Certificate",
                                     CertificateId=cid, Certificate=pem)
        cid, csr = self.create("EC_P256")
        pem = ca.issue_dates(csr, "200101000000Z", "450101000000Z")
        self.ok("UploadCertificate", CertificateId=cid, Certificate=pem, CertificateChain=ca.chain)
        d = self.describe(cid)
        self.assertEqual((d["NotBefore"], d["NotAfter"]), ("2020-01-01T00:00:00Z", "2045-01-01T00:00:00Z"))

    def test_renewal_and_status(self):
        ca = self.ca("EC")
        cid, csr = self.create("EC_P256")
        first = ca.issue(csr, serial="0x1001")
        self.ok("UploadCertificate", CertificateId=cid, Certificate=first, CertificateChain=ca.chain)
        # A renewed certificate for the same key replaces the old one.
        second = ca.issue(csr, serial="0x1002")
        self.ok("UploadCertificate", CertificateId=cid, Certificate=second)
        d = self.describe(cid)
        self.assertEqual((d["Status"], d["Serial"]), ("ACTIVE", "1002"))
        g = self.ok("GetCertificate", CertificateId=cid)
        self.assertEqual((g["Certificate"], g["CertificateChain"]), (second, ""))
        # Another key's certificate never replaces it.
        _, other = self.create("EC_P256")
        self.assertFails("UploadCertificate", 400, "InvalidParameter", "Certificate",
                         CertificateId=cid, Certificate=ca.issue(other))
        self.set_status(cid, "INACTIVE")
        self.assertFails("UploadCertificate", 409, "Rejected.Disabled", CertificateId=cid,
                         Certificate=second)
        self.set_status(cid, "REVOKED")
        self.assertFails("UploadCertificate", 409, "Rejected.Revoked", CertificateId=cid,
                         Certificate=second)
        self.assertEqual(self.describe(cid)["Serial"], "1002")


class CertificateCryptoTest(CertTestCase):
    """Sign/verify/encrypt/decrypt against openssl, with the certificate as the public key."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = {}

    def cert(self, spec):
        if spec not in self.certs:
            cid, pem = self.active(spec)
            self.certs[spec] = (cid, pem, cert_ca.cert_public_pem(pem))
        return self.certs[spec]

    def sign(self, cid, alg, message, mtype="RAW"):
        params = {} if mtype is None else {"MessageType": mtype}
        r = self.ok("CertificatePrivateKeySign", CertificateId=cid, Algorithm=alg,
                    Message=b64(message), **params)
        self.assertEqual(r["CertificateId"], cid)
        return unb64(r["SignatureValue"])

    def verify(self, cid, alg, message, sig, mtype="RAW"):
        r = self.ok("CertificatePublicKeyVerify", CertificateId=cid, Algorithm=alg,
                    Message=b64(message), SignatureValue=b64(sig), MessageType=mtype)
        self.assertIs(type(r["SignatureValid"]), bool)
        self.assertEqual(r["CertificateId"], cid)
        return r["SignatureValid"]

    def test_signatures_verify_with_the_certificate(self):
        for spec in SPECS:
            cid, pem, pub = self.cert(spec)
            for alg in SIGN_ALGS[spec]:
                with self.subTest(spec=spec, alg=alg):
                    for message in (b"hello certificate", os.urandom(4096), b"\x00"):
                        raw_sig = self.sign(cid, alg, message)
                        self.assertTrue(ossl.verify_message(self.wd, pub, alg, message, raw_sig))
                        self.assertTrue(self.verify(cid, alg, message, raw_sig))
                        self.assertFalse(self.verify(cid, alg, bytes([message[0] ^ 1]) + message[1:], raw_sig))
                        digest = ssl_digest(spec, pub, message)
                        dsig = self.sign(cid, alg, digest, "DIGEST")
                        self.assertTrue(ossl.verify_message(self.wd, pub, alg, message, dsig))
                        self.assertTrue(self.verify(cid, alg, digest, dsig, "DIGEST"))
                        self.assertTrue(self.verify(cid, alg, message, dsig, "RAW"))
                    # MessageType defaults to RAW.
                    sig = self.sign(cid, alg, b"default", None)
                    self.assertTrue(ossl.verify_message(self.wd, pub, alg, b"default", sig))

    def test_openssl_signatures_verify_in_kmsd(self):
        for spec in SPECS:
            cid, pem, pub = self.cert(spec)
            key, _ = self.export_pem_key(cid)
            for alg in SIGN_ALGS[spec]:
                with self.subTest(spec=spec, alg=alg):
                    msg = self.d.write("m.bin", b"signed by openssl")
                    sig = self.d.name("s.bin")
                    if spec == "EC_SM2":
                        args = ["-sm3", "-sigopt", "distid:" + cert_ca.SM2_ID]
                    else:
                        args = ["-sha256"]
                        if alg == "RSA_PSS_SHA_256":
                            args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]
                    openssl("dgst", *args, "-sign", key, "-out", sig, msg)
                    sig_bytes = cert_ca.read(sig, "rb")
                    self.assertTrue(self.verify(cid, alg, b"signed by openssl", sig_bytes))
                    self.assertFalse(self.verify(cid, alg, b"signed by someone", sig_bytes))
                    self.assertFalse(self.verify(cid, alg, b"signed by openssl", b"\x30\x00"))

    def test_openssl_encrypts_kmsd_decrypts(self):
        for spec, algs in ENC_ALGS.items():
            cid, pem, pub = self.cert(spec)
            key, _ = self.export_pem_key(cid)
            for alg in algs:
                with self.subTest(spec=spec, alg=alg):
                    data = os.urandom(100)
                    ct = ossl.encrypt(self.wd, pub, alg, data)
                    cts = [ct, ossl.sm2_der_to_raw(ct)] if alg == "SM2PKE" else [ct]
                    for c in cts:
                        r = self.ok("CertificatePrivateKeyDecrypt", CertificateId=cid, Algorithm=alg,
                                    CiphertextBlob=b64(c))
                        self.assertEqual((r["CertificateId"], unb64(r["Plaintext"])), (cid, data))
                    # And the other way: kmsd encrypts, openssl decrypts with the exported key.
                    r = self.ok("CertificatePublicKeyEncrypt", CertificateId=cid, Algorithm=alg,
                                Plaintext=b64(data))
                    ct = unb64(r["CiphertextBlob"])
                    if alg == "SM2PKE":
                        self.assertEqual(ct[0], 4)  # raw C1 || C3 || C2
                        self.assertEqual(len(ct), 97 + len(data))
                        ct = ossl.sm2_raw_to_der(ct)
                    self.assertEqual(ossl.decrypt(self.wd, key, alg, ct), data)

    def test_encryption_limits_and_errors(self):
        rsa, _, _ = self.cert("RSA_2048")
        sm2, _, _ = self.cert("EC_SM2")
        ec, _, _ = self.cert("EC_P256")
        for cid, alg, limit in ((rsa, "RSAES_OAEP_SHA_1", 214), (rsa, "RSAES_OAEP_SHA_256", 190),
                                (sm2, "SM2PKE", 6047)):
            with self.subTest(alg=alg):
                ct = self.ok("CertificatePublicKeyEncrypt", CertificateId=cid, Algorithm=alg,
                             Plaintext=b64(b"x" * limit))["CiphertextBlob"]
                pt = self.ok("CertificatePrivateKeyDecrypt", CertificateId=cid, Algorithm=alg,
                             CiphertextBlob=ct)["Plaintext"]
                self.assertEqual(unb64(pt), b"x" * limit)
                self.assertFails("CertificatePublicKeyEncrypt", 400, "InvalidParameter", "Plaintext",
                                 CertificateId=cid, Algorithm=alg, Plaintext=b64(b"x" * (limit + 1)))
                bad = bytearray(unb64(ct))
                bad[-1] ^= 1
                self.assertFails("CertificatePrivateKeyDecrypt", 400, "InvalidParameter",
                                 "CiphertextBlob", CertificateId=cid, Algorithm=alg,
                                 CiphertextBlob=b64(bytes(bad)))
                self.assertFails("CertificatePrivateKeyDecrypt", 400, "InvalidParameter",
                                 "CiphertextBlob", CertificateId=cid, Algorithm=alg,
                                 CiphertextBlob=b64(b"short"))
        for cid, alg in ((rsa, "SM2PKE"), (sm2, "RSAES_OAEP_SHA_256"), (ec, "SM2PKE"),
                         (ec, "RSAES_OAEP_SHA_1"), (rsa, "RSAES_PKCS1_V1_5")):
            with self.subTest(cid=cid, alg=alg):
                self.assertFails("CertificatePublicKeyEncrypt", 400, "Unsupported.Algorithm", CertificateId=cid, Algorithm=alg, Plaintext=b64(b"x"))
                self.assertFails("CertificatePrivateKeyDecrypt", 400, "Unsupported.Algorithm", CertificateId=cid, Algorithm=alg,
                                 CiphertextBlob=b64(b"x" * 256))
        self.assertFails("CertificatePublicKeyEncrypt", 400, "InvalidParameter", "Algorithm",
                         CertificateId=rsa, Algorithm="RSA_OAEP", Plaintext=b64(b"x"))
        self.assertFails("CertificatePublicKeyEncrypt", 400, "MissingParameter", "Algorithm",
                         CertificateId=rsa, Plaintext=b64(b"x"))
        self.assertFails("CertificatePublicKeyEncrypt", 400, "MissingParameter", "Plaintext",
                         CertificateId=rsa, Algorithm="RSAES_OAEP_SHA_1")
        self.assertFails("CertificatePublicKeyEncrypt", 400, "InvalidParameter", "Plaintext",
                         CertificateId=rsa, Algorithm="RSAES_OAEP_SHA_1", Plaintext="not*base64")
        self.assertFails("CertificatePrivateKeyDecrypt", 400, "MissingParameter", "CiphertextBlob",
                         CertificateId=rsa, Algorithm="RSAES_OAEP_SHA_1")

    def test_sign_errors(self):
        rsa, _, _ = self.cert("RSA_2048")
        ec, _, _ = self.cert("EC_P256")
        sm2, _, _ = self.cert("EC_SM2")
        for cid, alg in ((rsa, "ECDSA_SHA_256"), (rsa, "SM2DSA"), (ec, "RSA_PSS_SHA_256"),
                         (ec, "SM2DSA"), (sm2, "ECDSA_SHA_256"), (sm2, "RSA_PKCS1_SHA_256")):
            with self.subTest(cid=cid, alg=alg):
                self.assertFails("CertificatePrivateKeySign", 400, "Unsupported.Algorithm", CertificateId=cid, Algorithm=alg, Message=b64(b"m"))
                self.assertFails("CertificatePublicKeyVerify", 400, "Unsupported.Algorithm", CertificateId=cid, Algorithm=alg, Message=b64(b"m"),
                                 SignatureValue=b64(b"s"))
        cases = [
            ("Algorithm", dict(Algorithm="ECDSA_SHA_384", Message=b64(b"m"))),
            ("MessageType", dict(Algorithm="ECDSA_SHA_256", Message=b64(b"m"), MessageType="HASH")),
            ("MessageType", dict(Algorithm="ECDSA_SHA_256", Message=b64(b"m"), MessageType="raw")),
            ("Message", dict(Algorithm="ECDSA_SHA_256", Message=b64(os.urandom(4097)))),
            ("Message", dict(Algorithm="ECDSA_SHA_256", Message=b64(b"x" * 31), MessageType="DIGEST")),
            ("Message", dict(Algorithm="ECDSA_SHA_256", Message=b64(b"x" * 33), MessageType="DIGEST")),
            ("Message", dict(Algorithm="ECDSA_SHA_256", Message="%%%")),
        ]
        for param, params in cases:
            with self.subTest(param=param, params=params.get("MessageType")):
                self.assertFails("CertificatePrivateKeySign", 400, "InvalidParameter", param,
                                 CertificateId=ec, **params)
                self.assertFails("CertificatePublicKeyVerify", 400, "InvalidParameter", param,
                                 CertificateId=ec, SignatureValue=b64(b"s"), **params)
        self.assertFails("CertificatePrivateKeySign", 400, "MissingParameter", "Message",
                         CertificateId=ec, Algorithm="ECDSA_SHA_256")
        self.assertFails("CertificatePrivateKeySign", 400, "MissingParameter", "Algorithm",
                         CertificateId=ec, Message=b64(b"m"))
        self.assertFails("CertificatePublicKeyVerify", 400, "MissingParameter", "SignatureValue",
                         CertificateId=ec, Algorithm="ECDSA_SHA_256", Message=b64(b"m"))

    def test_status_rules(self):
        """spec H status table: what PENDING, INACTIVE and REVOKED certificates refuse."""
        cid, csr = self.create("RSA_2048")
        msg = b64(b"status")
        sign = dict(Algorithm="RSA_PKCS1_SHA_256", Message=msg)
        enc = dict(Algorithm="RSAES_OAEP_SHA_256", Plaintext=msg)
        dec = dict(Algorithm="RSAES_OAEP_SHA_256", CiphertextBlob=b64(b"x" * 256))
        exp = dict(ExportFormat="PEM", Passphrase="12345678")

        def all_ops(code, verify_code):
            for action, params in (("CertificatePrivateKeySign", sign),
                                   ("CertificatePublicKeyEncrypt", enc),
                                   ("CertificatePrivateKeyDecrypt", dec),
                                   ("ExportCertificate", exp)):
                self.assertFails(action, 409, code, CertificateId=cid, **params)
            r = self.srv.call("CertificatePublicKeyVerify", CertificateId=cid,
                              SignatureValue=b64(good), **sign)
            if verify_code is None:
                self.assertEqual(r.status, 200, r)
                self.assertIs(r.json["SignatureValid"], True)
            else:
                self.assertError(r, 409, verify_code)

        good = b"\x00" * 256
        all_ops("Rejected.PendingImport", "Rejected.PendingImport")
        self.ok("UploadCertificate", CertificateId=cid, Certificate=self.ca("RSA").issue(csr))
        good = self.sign(cid, "RSA_PKCS1_SHA_256", b"status")
        self.set_status(cid, "INACTIVE")
        all_ops("Rejected.Disabled", "Rejected.Disabled")
        self.set_status(cid, "ACTIVE")
        self.assertTrue(self.verify(cid, "RSA_PKCS1_SHA_256", b"status", good))
        self.set_status(cid, "REVOKED")
        all_ops("Rejected.Revoked", None)
        # Describe, Get and List still show it.
        self.assertEqual(self.ok("GetCertificate", CertificateId=cid)["CertificateId"], cid)

    def test_deleted_after_use(self):
        """A certificate whose key kmsd has loaded (and keeps) is gone for every private-key
        operation once deleted, and a new certificate never gets another's key."""
        cid, _ = self.active("EC_P256")
        for _ in range(3):
            self.sign(cid, "ECDSA_SHA_256", b"before")
        self.ok("DeleteCertificate", CertificateId=cid)
        for action, params in (("CertificatePrivateKeySign",
                                dict(Algorithm="ECDSA_SHA_256", Message=b64(b"after"))),
                               ("ExportCertificate", dict(ExportFormat="PEM", Passphrase="12345678"))):
            self.assertFails(action, 404, "Certificate.NotFound", CertificateId=cid, **params)
        other, _ = self.active("EC_P256")
        sig = self.sign(other, "ECDSA_SHA_256", b"other")
        self.assertTrue(self.verify(other, "ECDSA_SHA_256", b"other", sig))


class ImportExportTest(CertTestCase):

    def test_import_pkcs12_made_by_openssl(self):
        ca = self.ca("RSA")
        for kind in ("RSA_2048", "EC_P256", "EC_SM2"):
            with self.subTest(kind=kind):
                key, pem = ca.key_and_cert(kind, subject="/CN=imported %s/O=kmsd tests/C=CN" % kind)
                p12 = ca.pkcs12(key, pem, "p12-passphrase")
                r = self.ok("ImportCertificate", PKCS12Blob=b64(p12), Passphrase="p12-passphrase")
                cid = r["CertificateId"]
                self.assertEqual(r["Arn"], cert_arn(cid))
                self.assertEqual(set(r), {"RequestId", "CertificateId", "Arn"})
                d = self.describe(cid)
                self.assertEqual((d["Status"], d["KeySpec"], d["ExportablePrivateKey"]),
                                 ("ACTIVE", kind, True))
                self.assertEqual(d["Subject"], "C=CN,O=kmsd tests,CN=imported %s" % kind)
                self.assertEqual(d["SubjectPublicKey"], cert_ca.cert_public_pem(pem))
                g = self.ok("GetCertificate", CertificateId=cid)
                self.assertEqual((g["Certificate"], g["CertificateChain"], g["Csr"]), (pem, ca.chain, ""))
                # The imported key signs, and openssl verifies with the certificate.
                alg = SIGN_ALGS[kind][0]
                sig = unb64(self.ok("CertificatePrivateKeySign", CertificateId=cid, Algorithm=alg,
                                    Message=b64(b"imported"))["SignatureValue"])
                self.assertTrue(ossl.verify_message(self.wd, cert_ca.cert_public_pem(pem), alg,
                                                    b"imported", sig))
                # What kmsd exports is the key that went in.
                exported, _ = self.export_pem_key(cid)
                self.assertEqual(openssl("pkey", "-in", exported, "-pubout").stdout,
                                 openssl("pkey", "-in", key, "-pubout").stdout)

    def test_import_older_encryption(self):
        # 3DES and a SHA-1 MAC, as older Windows and Java tools write PKCS#12.
        ca = self.ca("RSA")
        key, pem = ca.key_and_cert("RSA_2048")
        p12 = ca.pkcs12(key, pem, "old-style-1", extra=["-keypbe", "PBE-SHA1-3DES", "-certpbe",
                                                        "PBE-SHA1-3DES", "-macalg", "sha1"])
        cid = self.ok("ImportCertificate", PKCS12Blob=b64(p12), Passphrase="old-style-1")["CertificateId"]
        self.assertEqual(self.describe(cid)["SubjectPublicKey"], cert_ca.cert_public_pem(pem))

    def test_import_without_chain_and_self_signed(self):
        ca = self.ca("EC")
        key, pem = ca.key_and_cert("EC_P256")
        cid = self.ok("ImportCertificate", PKCS12Blob=b64(ca.pkcs12(key, pem, "pw-123456", chain=False)),
                      Passphrase="pw-123456")["CertificateId"]
        self.assertEqual(self.ok("GetCertificate", CertificateId=cid)["CertificateChain"], "")
        # A self-signed certificate stands alone.
        key = cert_ca.genkey(self.d.name("self.key"), "RSA")
        self_pem = self.d.name("self.pem")
        openssl("req", "-x509", "-new", "-key", key, "-subj", "/CN=self/O=kmsd tests/C=CN",
                "-days", 30, "-out", self_pem)
        p12 = ca.pkcs12(key, cert_ca.read(self_pem), "pw-123456", chain=False)
        cid = self.ok("ImportCertificate", PKCS12Blob=b64(p12), Passphrase="pw-123456")["CertificateId"]
        d = self.describe(cid)
        self.assertEqual((d["Issuer"], d["SignatureAlgorithm"]), ("C=CN,O=kmsd tests,CN=self", "RSA2048-SHA256"))

    def test_import_refused(self):
        before = self.ok("ListCertificates")["TotalSize"]
        ca = self.ca("RSA")
        key, pem = ca.key_and_cert("RSA_2048")
        good = ca.pkcs12(key, pem, "right-pass")
        no_key = ca.pkcs12(key, pem, "right-pass", extra=["-nokeys"])
        key3072, pem3072 = ca.key_and_cert("RSA3072")
        key384, pem384 = ca.key_and_cert("EC384")
        expired_key = cert_ca.genkey(self.d.name("exp.key"), "RSA")
        csr = self.d.name("exp.csr")
        openssl("req", "-new", "-key", expired_key, "-subj", "/CN=expired/O=o/C=CN", "-out", csr)
        expired = ca.issue_dates(cert_ca.read(csr), "200101000000Z", "210101000000Z")
        mismatched_chain = ca.pkcs12(key, pem, "right-pass", chain=False,
                                     extra=["-certfile", self.d.write("oc.pem", self.ca("RSA", "Other").root_pem)])
        cases = {
            "wrong passphrase": dict(PKCS12Blob=b64(good), Passphrase="wrong-pass"),
            "garbage": dict(PKCS12Blob=b64(b"\x30\x03\x02\x01\x03"), Passphrase="right-pass"),
            "truncated": dict(PKCS12Blob=b64(good[:-10]), Passphrase="right-pass"),
            "trailing bytes": dict(PKCS12Blob=b64(good + b"\x00"), Passphrase="right-pass"),
            "not base64": dict(PKCS12Blob="%%%%", Passphrase="right-pass"),
            "no private key": dict(PKCS12Blob=b64(no_key), Passphrase="right-pass"),
            "RSA 3072": dict(PKCS12Blob=b64(ca.pkcs12(key3072, pem3072, "right-pass")),
                             Passphrase="right-pass"),
            "EC P-384": dict(PKCS12Blob=b64(ca.pkcs12(key384, pem384, "right-pass")),
                             Passphrase="right-pass"),
            "expired certificate": dict(PKCS12Blob=b64(ca.pkcs12(expired_key, expired, "right-pass")),
                                        Passphrase="right-pass"),
            "unrelated chain": dict(PKCS12Blob=b64(mismatched_chain), Passphrase="right-pass"),
            # Without a MAC the file's integrity cannot be checked (OpenSSL's PKCS12_parse refuses).
            "no MAC": dict(PKCS12Blob=b64(ca.pkcs12(key, pem, "right-pass", extra=["-nomac"])),
                           Passphrase="right-pass"),
            # More key-derivation work than kmsd does for one request (cap: 1 000 000).
            "too many iterations": dict(PKCS12Blob=b64(ca.pkcs12(key, pem, "right-pass",
                                                                 extra=["-iter", "1500000"])),
                                        Passphrase="right-pass"),
            # RC2-40 needs OpenSSL's legacy provider, which kmsd does not load.
            "legacy RC2": dict(PKCS12Blob=b64(ca.pkcs12(key, pem, "right-pass", extra=["-legacy"])),
                               Passphrase="right-pass"),
        }
        for name, params in cases.items():
            with self.subTest(case=name):
                self.assertFails("ImportCertificate", 400, "InvalidParameter", "PKCS12Blob", **params)
        self.assertFails("ImportCertificate", 400, "MissingParameter", "PKCS12Blob", Passphrase="x")
        self.assertFails("ImportCertificate", 400, "MissingParameter", "Passphrase",
                         PKCS12Blob=b64(good))
        self.assertEqual(self.ok("ListCertificates")["TotalSize"], before)

    def test_export_pem_and_pkcs12(self):
        for spec in SPECS:
            with self.subTest(spec=spec):
                cid, pem = self.active(spec)
                key, r = self.export_pem_key(cid, "export-pass-1")
                self.assertEqual(set(r), {"RequestId", "CertificateId", "Certificate",
                                          "CertificateChain", "PrivateKey"})
                self.assertEqual((r["CertificateId"], r["Certificate"], r["CertificateChain"]),
                                 (cid, pem, self.ca("RSA").chain))
                self.assertEqual(openssl("pkey", "-in", key, "-pubout").stdout.decode(),
                                 cert_ca.cert_public_pem(pem))
                # PBES2 with AES-256-CBC; the wrong passphrase opens nothing.
                enc = self.d.write("enc.pem", r["PrivateKey"])
                self.assertIn(b"aes-256-cbc", openssl("asn1parse", "-in", enc).stdout)
                self.assertNotEqual(openssl("pkey", "-in", enc, "-passin", "pass:export-pass-2",
                                            check=False).returncode, 0)
                r = self.ok("ExportCertificate", CertificateId=cid, ExportFormat="PKCS12",
                            Passphrase="export-pass-1")
                self.assertEqual(set(r), {"RequestId", "CertificateId", "Certificate",
                                          "CertificateChain", "PKCS12Blob"})
                p12 = self.d.write("out.p12", unb64(r["PKCS12Blob"]))
                certs = openssl("pkcs12", "-in", p12, "-passin", "pass:export-pass-1", "-nokeys").stdout
                self.assertEqual(certs.count(b"BEGIN CERTIFICATE"), 3)
                p12_key = openssl("pkcs12", "-in", p12, "-passin", "pass:export-pass-1", "-nocerts",
                                  "-nodes").stdout
                self.assertEqual(openssl("pkey", "-pubout", data=p12_key).stdout.decode(),
                                 cert_ca.cert_public_pem(pem))
                self.assertIn(cid.encode(), openssl("pkcs12", "-in", p12, "-passin",
                                                    "pass:export-pass-1", "-nokeys").stdout)
                self.assertNotEqual(openssl("pkcs12", "-in", p12, "-passin", "pass:nope-nope",
                                            "-nokeys", check=False).returncode, 0)
                # An exported PKCS#12 imports again as a new certificate with the same key.
                again = self.ok("ImportCertificate", PKCS12Blob=r["PKCS12Blob"],
                                Passphrase="export-pass-1")["CertificateId"]
                self.assertEqual(self.describe(again)["SubjectPublicKey"],
                                 self.describe(cid)["SubjectPublicKey"])

    def test_export_refused(self):
        cid, _ = self.active("EC_P256")
        for passphrase in ("1234567", "x" * 65):
            self.assertFails("ExportCertificate", 400, "InvalidParameter", "Passphrase",
                             CertificateId=cid, ExportFormat="PEM", Passphrase=passphrase)
        self.ok("ExportCertificate", CertificateId=cid, ExportFormat="pem", Passphrase="密" * 8)
        self.ok("ExportCertificate", CertificateId=cid, ExportFormat="PEM", Passphrase="x" * 64)
        self.assertFails("ExportCertificate", 400, "InvalidParameter", "ExportFormat",
                         CertificateId=cid, ExportFormat="DER", Passphrase="12345678")
        self.assertFails("ExportCertificate", 400, "MissingParameter", "ExportFormat",
                         CertificateId=cid, Passphrase="12345678")
        self.assertFails("ExportCertificate", 400, "MissingParameter", "Passphrase",
                         CertificateId=cid, ExportFormat="PEM")
        locked, _ = self.active("EC_P256", ExportablePrivateKey="false")
        for fmt in ("PEM", "PKCS12"):
            self.assertFails("ExportCertificate", 403, "Forbidden.NoPermission", CertificateId=locked,
                             ExportFormat=fmt, Passphrase="12345678")
        # Non-exportable wins over the status (it never changes).
        pending, _ = self.create("EC_P256", ExportablePrivateKey="false")
        self.assertFails("ExportCertificate", 403, "Forbidden.NoPermission", CertificateId=pending,
                         ExportFormat="PEM", Passphrase="12345678")
        pending, _ = self.create("EC_P256")
        self.assertFails("ExportCertificate", 409, "Rejected.PendingImport", CertificateId=pending,
                         ExportFormat="PEM", Passphrase="12345678")


class StatusListTagsTest(CertTestCase):

    def test_status_transitions(self):
        pending, _ = self.create("EC_P256")
        for target in ("ACTIVE", "INACTIVE", "REVOKED", "PENDING"):
            self.assertFails("UpdateCertificateStatus", 409, "Rejected.StateModifiedFailed",
                             CertificateId=pending, Status=target)
        self.assertEqual(self.status(pending), "PENDING")
        cid, _ = self.active("EC_P256")
        before = self.describe(cid)["UpdatedAt"]
        self.set_status(cid, "ACTIVE")  # same status: a no-op
        self.assertEqual(self.describe(cid)["UpdatedAt"], before)
        self.set_status(cid, "INACTIVE")
        self.set_status(cid, "INACTIVE")
        self.set_status(cid, "ACTIVE")
        self.assertFails("UpdateCertificateStatus", 409, "Rejected.StateModifiedFailed",
                         CertificateId=cid, Status="PENDING")
        self.set_status(cid, "REVOKED")
        self.set_status(cid, "REVOKED")
        for target in ("ACTIVE", "INACTIVE", "PENDING"):
            self.assertFails("UpdateCertificateStatus", 409, "Rejected.StateModifiedFailed",
                             CertificateId=cid, Status=target)
        self.assertEqual(self.status(cid), "REVOKED")
        inactive, _ = self.active("EC_P256")
        self.set_status(inactive, "INACTIVE")
        self.set_status(inactive, "REVOKED")
        for bad in ("active", "DISABLED", "Enabled"):
            self.assertFails("UpdateCertificateStatus", 400, "InvalidParameter", "Status",
                             CertificateId=cid, Status=bad)
        self.assertFails("UpdateCertificateStatus", 400, "MissingParameter", "Status",
                         CertificateId=cid)

    def test_list_filters_and_paging(self):
        ca = self.ca("RSA")
        other = self.ca("EC", "Other")
        made = []
        for i in range(5):
            cid, csr = self.create("EC_P256", subject="CN=list-%d,O=Listing,C=CN" % (i % 2))
            made.append(cid)
            if i < 3:
                self.ok("UploadCertificate", CertificateId=cid,
                        Certificate=(ca if i < 2 else other).issue(csr))
        self.set_status(made[1], "INACTIVE")
        r = self.ok("ListCertificates", PageSize=100)
        self.assertEqual(set(r), {"RequestId", "PageNumber", "PageSize", "TotalSize",
                                  "CertificateSummaryList"})
        summaries = r["CertificateSummaryList"]["CertificateSummary"]
        mine = [s for s in summaries if s["CertificateId"] in made]
        self.assertEqual([s["CertificateId"] for s in mine], made)  # creation order
        first = mine[0]
        self.assertEqual(set(first), {"CertificateId", "Subject", "Issuer", "Status", "KeySpec",
                                      "ProtectionLevel", "NotBefore", "NotAfter"})
        self.assertEqual((first["Subject"], first["Status"], first["KeySpec"], first["ProtectionLevel"]),
                         ("CN=list-0,O=Listing,C=CN", "ACTIVE", "EC_P256", "SOFTWARE"))
        self.assertTrue(TIME_RE.match(first["NotBefore"]) and TIME_RE.match(first["NotAfter"]))
        self.assertEqual((mine[4]["Issuer"], mine[4]["NotBefore"]), ("", ""))

        def ids(**f):
            r = self.ok("ListCertificates", PageSize=100, **f)
            got = [s["CertificateId"] for s in r["CertificateSummaryList"]["CertificateSummary"]]
            self.assertEqual(r["TotalSize"], len(got))
            return [c for c in got if c in made]

        self.assertEqual(ids(Subject="CN=list-0,O=Listing,C=CN"), [made[0], made[2], made[4]])
        # The same name in other spellings.
        self.assertEqual(ids(Subject=" cn = list-1 , o=Listing, c=cn"), [made[1], made[3]])
        self.assertEqual(ids(Subject="CN=list-1"), [])
        self.assertEqual(ids(Issuer="C=CN,O=kmsd tests,CN=RSA Issuing CA"), made[:2])
        self.assertEqual(ids(Issuer="CN=RSA Issuing CA,O=kmsd tests,C=CN"), [])
        self.assertEqual(ids(Issuer="c=CN, o=kmsd tests, cn=Other Issuing CA"), [made[2]])
        self.assertEqual(ids(Status="PENDING"), made[3:])
        self.assertEqual(ids(Status="INACTIVE"), [made[1]])
        self.assertEqual(ids(Status="ACTIVE", Subject="CN=list-0,O=Listing,C=CN"), [made[0], made[2]])
        self.assertEqual(ids(Subject="not a dn at all"), [])
        # Paging (default size 10).
        total = self.ok("ListCertificates")["TotalSize"]
        self.assertGreaterEqual(total, 5)
        pages = []
        for n in range(1, total // 2 + 2):
            r = self.ok("ListCertificates", PageSize=2, PageNumber=n)
            self.assertEqual((r["PageNumber"], r["PageSize"], r["TotalSize"]), (n, 2, total))
            pages += [s["CertificateId"] for s in r["CertificateSummaryList"]["CertificateSummary"]]
        self.assertEqual(len(pages), total)
        self.assertEqual(len(set(pages)), total)
        self.assertEqual(self.ok("ListCertificates")["PageSize"], 10)
        for params in ({"Status": "Active"}, {"PageSize": 0}, {"PageSize": 101}, {"PageNumber": 0}):
            with self.subTest(params=params):
                self.assertFails("ListCertificates", 400, "InvalidParameter", list(params)[0], **params)

    def test_tags(self):
        cid, _ = self.create("EC_SM2")
        self.ok("TagResource", CertificateId=cid, Tags=tags_json([("env", "prod"), ("team", "pki")]))
        self.assertEqual(self.describe(cid)["Tags"],
                         {"Tag": [{"TagKey": "env", "TagValue": "prod"},
                                  {"TagKey": "team", "TagValue": "pki"}]})
        self.ok("TagResource", CertificateId=cert_arn(cid), Tags=tags_json([("env", "dev")]))
        self.ok("UntagResource", CertificateId=cid, TagKeys='["team","absent"]')
        self.assertEqual(self.describe(cid)["Tags"], {"Tag": [{"TagKey": "env", "TagValue": "dev"}]})
        # Tags do not depend on the status.
        self.ok("UntagResource", CertificateId=cid, TagKeys="env")
        self.assertEqual(self.describe(cid)["Tags"], {"Tag": []})
        self.assertFails("TagResource", 404, "Certificate.NotFound",
                         CertificateId="00000000-0000-4000-8000-000000000000", Tags=tags_json([("a", "b")]))
        self.assertFails("UntagResource", 404, "Certificate.NotFound",
                         CertificateId="00000000-0000-4000-8000-000000000000", TagKeys='["a"]')
        self.assertFails("TagResource", 400, "Rejected.LimitExceeded", CertificateId=cid,
                         Tags=tags_json([("k%d" % i, "v") for i in range(11)]))
        self.assertFails("TagResource", 400, "InvalidParameter", CertificateId=cid,
                         Tags=tags_json([("aliyun-x", "v")]))
        key_id = self.create_key()["KeyId"]
        self.assertFails("TagResource", 400, "InvalidParameter", CertificateId=cid, KeyId=key_id,
                         Tags=tags_json([("a", "b")]))
        # The key's tags and the certificate's are separate.
        self.ok("TagResource", CertificateId=cid, Tags=tags_json([("shared", "cert")]))
        self.ok("TagResource", KeyId=key_id, Tags=tags_json([("shared", "key")]))
        self.assertEqual(self.describe(cid)["Tags"]["Tag"], [{"TagKey": "shared", "TagValue": "cert"}])
        # Deleting the certificate removes its tags.
        self.ok("DeleteCertificate", CertificateId=cid)
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.srv.data_dir, "kmsd.db"), uri=True)
        try:
            rows = db.execute("SELECT count(*) FROM tags WHERE resource_type = 'certificate' AND "
                              "resource_id = ?", (cid,)).fetchone()[0]
        finally:
            db.close()
        self.assertEqual(rows, 0)

    def test_delete_in_every_status(self):
        pending, _ = self.create("RSA_2048")
        active, _ = self.active("EC_P256")
        inactive, _ = self.active("EC_P256")
        self.set_status(inactive, "INACTIVE")
        revoked, _ = self.active("EC_SM2")
        self.set_status(revoked, "REVOKED")
        for cid in (pending, active, inactive, revoked):
            r = self.ok("DeleteCertificate", CertificateId=cid)
            self.assertEqual(set(r), {"RequestId"})
            self.assertFails("DescribeCertificate", 404, "Certificate.NotFound", CertificateId=cid)
            self.assertFails("DeleteCertificate", 404, "Certificate.NotFound", CertificateId=cid)
            self.assertNotIn(cid, json.dumps(self.ok("ListCertificates", PageSize=100)))


class QuotaAndPolicyTest(CertTestCase):
    config = "[certificates]\nmax_certificates = 2\n[keys]\ngm_requires_hsm = true\n"

    def test_quota_counts_every_status(self):
        ca = self.ca("RSA")
        key, pem = ca.key_and_cert("EC_P256")
        p12 = b64(ca.pkcs12(key, pem, "quota-pass"))
        first, _ = self.create("EC_P256")
        second = self.ok("ImportCertificate", PKCS12Blob=p12, Passphrase="quota-pass")["CertificateId"]
        self.assertFails("CreateCertificate", 400, "Rejected.LimitExceeded", Subject=SUBJECT,
                         KeySpec="RSA_2048")
        self.assertFails("ImportCertificate", 400, "Rejected.LimitExceeded", PKCS12Blob=p12,
                         Passphrase="quota-pass")
        self.ok("UpdateCertificateStatus", CertificateId=second, Status="REVOKED")
        self.assertFails("CreateCertificate", 400, "Rejected.LimitExceeded", Subject=SUBJECT,
                         KeySpec="RSA_2048")
        self.ok("DeleteCertificate", CertificateId=first)
        self.create("RSA_2048")
        self.assertEqual(self.ok("ListCertificates")["TotalSize"], 2)
        for cid in [s["CertificateId"] for s in
                    self.ok("ListCertificates")["CertificateSummaryList"]["CertificateSummary"]]:
            self.ok("DeleteCertificate", CertificateId=cid)

    def test_sm2_needs_an_hsm_when_configured(self):
        self.assertFails("CreateCertificate", 400, "Unsupported.ProtectionLevel",
                         Subject=SUBJECT, KeySpec="EC_SM2")
        ca = self.ca("RSA")
        key, pem = ca.key_and_cert("EC_SM2")
        self.assertFails("ImportCertificate", 400, "Unsupported.ProtectionLevel",
                         PKCS12Blob=b64(ca.pkcs12(key, pem, "gm-pass-1")), Passphrase="gm-pass-1")

    def test_expiry_follows_the_server_clock(self):
        cid, csr = self.create("EC_P256")
        pem = self.ca("RSA").issue(csr, days=2)
        self.srv.advance_clock(3 * 86400)
        try:
            self.assertFails("UploadCertificate", 400, "InvalidParameter", "Certificate",
                             CertificateId=cid, Certificate=pem)
        finally:
            self.ok("DeleteCertificate", CertificateId=cid)


class PersistenceAndAtRestTest(CertTestCase):
    """Certificates survive a restart; their private keys are nowhere in plaintext."""

    def private_needles(self, label, key_path):
        """Byte strings that only the private key contains: PKCS#8 DER, its raw private parts."""
        der = openssl("pkey", "-in", key_path, "-outform", "DER").stdout
        text = openssl("pkey", "-in", key_path, "-noout", "-text").stdout.decode()
        needles = [(label + " PKCS#8", der), (label + " PKCS#8 base64", base64.b64encode(der)[20:80]),
                   (label + " PEM", cert_ca.read(key_path).splitlines()[3].encode())]
        for field in ("priv", "privateExponent", "prime1", "prime2"):
            m = re.search(r"^%s:\s*\n((?:\s+[0-9a-f:]+\n)+)" % field, text, re.M)
            if m:
                raw = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
                needles.append(("%s %s" % (label, field), raw.lstrip(b"\x00")[:32]))
        return der, needles

    def wrapped(self):
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.srv.data_dir, "kmsd.db"), uri=True)
        try:
            return dict(db.execute("SELECT certificate_id, private_wrapped FROM certificates"))
        finally:
            db.close()

    def scan(self, needles):
        found = []
        paths = [self.srv.stderr_path]
        for root, _, names in os.walk(self.srv.data_dir):
            paths += [os.path.join(root, n) for n in names]
        for path in paths:
            data = cert_ca.read(path, "rb")
            found += [(os.path.basename(path), label) for label, n in needles if n and n in data]
        self.assertEqual(found, [], "private key material found at rest")

    def test_restart_and_nothing_in_plaintext(self):
        ca = self.ca("SM2")
        made = {}
        for spec in SPECS:
            made[spec] = self.active(spec, ca_kind="SM2", ExportablePrivateKey="true")
        key, pem = ca.key_and_cert("EC_P256")
        imported = self.ok("ImportCertificate", PKCS12Blob=b64(ca.pkcs12(key, pem, "at-rest-pass")),
                           Passphrase="at-rest-pass")["CertificateId"]
        pending, pending_csr = self.create("RSA_2048", ExportablePrivateKey="false")
        self.ok("TagResource", CertificateId=imported, Tags=tags_json([("kept", "yes")]))
        self.ok("UpdateCertificateStatus", CertificateId=made["EC_P256"][0], Status="INACTIVE")
        before = {cid: self.describe(cid) for cid in [c for c, _ in made.values()] + [imported, pending]}
        for d in before.values():
            d.pop("RequestId")

        self.srv.restart()
        for cid, d in before.items():
            now = self.describe(cid)
            now.pop("RequestId")
            self.assertEqual(now, d)
        self.assertEqual(self.ok("GetCertificate", CertificateId=pending)["Csr"], pending_csr)
        self.ok("UpdateCertificateStatus", CertificateId=made["EC_P256"][0], Status="ACTIVE")
        for spec, (cid, pem) in made.items():
            alg = SIGN_ALGS[spec][0]
            sig = unb64(self.ok("CertificatePrivateKeySign", CertificateId=cid, Algorithm=alg,
                                Message=b64(b"after restart"))["SignatureValue"])
            self.assertTrue(ossl.verify_message(self.wd, cert_ca.cert_public_pem(pem), alg,
                                                b"after restart", sig))
        # The pending certificate's CSR still goes through, after the restart.
        self.ok("UploadCertificate", CertificateId=pending, Certificate=ca.issue(pending_csr),
                CertificateChain=ca.chain)

        needles = []
        keys = {}
        for spec, (cid, _) in made.items():
            path, _ = self.export_pem_key(cid, "scan-pass-1")
            keys[cid] = path
        keys[imported] = key
        for cid, path in keys.items():
            der, n = self.private_needles(cid, path)
            needles += n
            keys[cid] = der
        # What is stored is the key wrapped by master.key with AAD "certificate/<id>" || <id>.
        from test_secrets_at_rest import LIB, gcm_open
        master = cert_ca.read(os.path.join(self.srv.data_dir, "master.key"), "rb")
        wrapped = self.wrapped()
        self.assertEqual(set(wrapped), set(before))
        for cid, blob in wrapped.items():
            self.assertEqual(blob[0], 1)
            if LIB is None:
                continue
            plain = gcm_open(master, blob[1:13], ("certificate/%s%s" % (cid, cid)).encode(),
                             blob[13:-16], blob[-16:])
            self.assertIsNotNone(plain, cid)
            self.assertIsNone(gcm_open(master, blob[1:13], ("%s%s" % (cid, cid)).encode(),
                                       blob[13:-16], blob[-16:]))
            if cid in keys:
                pub = openssl("pkey", "-inform", "DER", "-pubout", data=plain).stdout
                self.assertEqual(pub, openssl("pkey", "-inform", "DER", "-pubout", data=keys[cid]).stdout)
            needles.append(("unwrapped " + cid, plain))
        self.scan(needles)
        self.assertEqual(self.srv.stop(), 0)
        self.scan(needles)
        self.srv.start()


class HsmCertificateTest(unittest.TestCase):
    """ProtectionLevel=HSM (a kmsd extension of CreateCertificate) against a SoftHSM2 token: the
    key pair is made in the token, signs the CSR there, never leaves it, and goes with the
    certificate."""

    LABEL = "kmsd-certs"

    @classmethod
    def setUpClass(cls):
        import shutil
        import tempfile
        from test_hsm import make_token, pkcs11_config
        cls.tmp = tempfile.mkdtemp(prefix="kmsd-hsm-cert-")
        cls.cleanup = lambda: shutil.rmtree(cls.tmp, ignore_errors=True)
        try:
            cls.tok = make_token(os.path.join(cls.tmp, "hsm"), cls.LABEL)
        except unittest.SkipTest:
            cls.cleanup()
            raise
        cls.srv = Server(config=pkcs11_config(cls.tok, cls.LABEL),
                         env={"SOFTHSM2_CONF": cls.tok["SOFTHSM2_CONF"]}).start()
        cls.d = cert_ca.Dir()
        cls.wd = ossl.Workdir()

    @classmethod
    def tearDownClass(cls):
        status = cls.srv.stop()
        stderr = cls.srv.stderr_text()
        cls.srv.__exit__(None, None, None)
        cls.d.cleanup()
        cls.wd.__exit__(None)
        cls.cleanup()
        assert status == 0, "kmsd exited with %s:\n%s" % (status, stderr[-3000:])

    def objects(self, cid):
        from test_hsm import token_labels
        return [l for l in token_labels(self.tok, self.LABEL)
                if l == "kmsd/certificate/%s/%s" % (cid, cid)]

    def test_hsm_certificate(self):
        ca = cert_ca.CA(self.d, "RSA", "HSM")
        for spec, alg in (("RSA_2048", "RSA_PSS_SHA_256"), ("EC_P256", "ECDSA_SHA_256")):
            with self.subTest(spec=spec):
                r = self.srv.ok("CreateCertificate", Subject=SUBJECT, KeySpec=spec,
                                ProtectionLevel="HSM")
                cid, csr = r["CertificateId"], r["Csr"]
                self.assertEqual(len(self.objects(cid)), 2)  # private and public key objects
                v = openssl("req", "-verify", "-noout", data=csr.encode())
                self.assertIn(b"verify OK", v.stdout + v.stderr)
                d = self.srv.ok("DescribeCertificate", CertificateId=cid)
                self.assertEqual((d["ProtectionLevel"], d["ExportablePrivateKey"]), ("HSM", False))
                db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.srv.data_dir, "kmsd.db"),
                                     uri=True)
                try:
                    wrapped = db.execute("SELECT private_wrapped FROM certificates WHERE "
                                         "certificate_id = ?", (cid,)).fetchone()[0]
                finally:
                    db.close()
                self.assertIsNone(wrapped)  # nothing of the private key in the store
                pem = ca.issue(csr)
                self.srv.ok("UploadCertificate", CertificateId=cid, Certificate=pem,
                            CertificateChain=ca.chain)
                sig = unb64(self.srv.ok("CertificatePrivateKeySign", CertificateId=cid, Algorithm=alg,
                                        Message=b64(b"in the token"))["SignatureValue"])
                self.assertTrue(ossl.verify_message(self.wd, cert_ca.cert_public_pem(pem), alg,
                                                    b"in the token", sig))
                if spec == "RSA_2048":
                    ct = ossl.encrypt(self.wd, cert_ca.cert_public_pem(pem), "RSAES_OAEP_SHA_256", b"secret")
                    r = self.srv.ok("CertificatePrivateKeyDecrypt", CertificateId=cid,
                                    Algorithm="RSAES_OAEP_SHA_256", CiphertextBlob=b64(ct))
                    self.assertEqual(unb64(r["Plaintext"]), b"secret")
                r = self.srv.call("ExportCertificate", CertificateId=cid, ExportFormat="PKCS12",
                                  Passphrase="12345678")
                self.assertEqual((r.status, r.code), (403, "Forbidden.NoPermission"), r)
                self.srv.ok("DeleteCertificate", CertificateId=cid)
                self.assertEqual(self.objects(cid), [])

    def test_hsm_refusals(self):
        r = self.srv.call("CreateCertificate", Subject=SUBJECT, KeySpec="EC_P256",
                          ProtectionLevel="HSM", ExportablePrivateKey="true")
        self.assertEqual((r.status, r.code), (400, "InvalidParameter"), r)
        self.assertIn('"ExportablePrivateKey"', r.json["Message"])
        # SoftHSM2 has no SM2 mechanisms.
        r = self.srv.call("CreateCertificate", Subject=SUBJECT, KeySpec="EC_SM2", ProtectionLevel="HSM")
        self.assertEqual((r.status, r.code), (400, "Unsupported.ProtectionLevel"), r)
        # Software certificates still work next to the token.
        r = self.srv.ok("CreateCertificate", Subject=SUBJECT, KeySpec="EC_SM2")
        self.assertEqual(self.srv.ok("DescribeCertificate", CertificateId=r["CertificateId"])
                         ["ProtectionLevel"], "SOFTWARE")


if __name__ == "__main__":
    unittest.main()
