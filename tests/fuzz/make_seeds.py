#!/usr/bin/env python3
"""make_seeds.py - writes the seed corpora (tests/fuzz/corpus/<target>/seed-*) and dictionaries
(tests/fuzz/dict/<target>.dict) of the fuzz targets. Run from anywhere; needs Python 3 and the
openssl command (for real SPKIs and SM2 ciphertexts). Seeds are small, real inputs: requests as the
official SDKs put them on the wire (shared/conformance/README.md), the spec's signature test
vectors (spec/protocol.md §6, §7.3), well-formed blobs, JSON and flattened EncryptionContexts,
SPKIs of every key spec kmsd accepts, SM2 ciphertexts in both layouts.

Only files named seed-* are rewritten; inputs kept from fuzzing (regress-*, found by libFuzzer and
fixed) are left alone. The key-dependent seeds (SPKIs, SM2) differ from run to run.
"""
import base64
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
DICTS = os.path.join(HERE, "dict")

ACTIONS = """AsymmetricDecrypt AsymmetricEncrypt AsymmetricSign AsymmetricVerify CancelKeyDeletion
CreateAlias CreateKey CreateKeyVersion CreateSecret Decrypt DeleteAlias DeleteKeyMaterial
DeleteSecret DescribeKey DescribeKeyVersion DescribeRegions DescribeSecret DescribeService
DisableKey EnableKey Encrypt ExportDataKey GenerateAndExportDataKey GenerateDataKey
GenerateDataKeyWithoutPlaintext GetParametersForImport GetPublicKey GetRandomPassword
GetSecretValue ImportKeyMaterial ListAliases ListAliasesByKeyId ListKeyVersions ListKeys
ListResourceTags ListSecretVersionIds ListSecrets ListTagResources PutSecretValue ReEncrypt
RestoreSecret RotateSecret ScheduleKeyDeletion SetDeletionProtection TagResource TagResources
UntagResource UntagResources UpdateAlias UpdateKeyDescription UpdateRotationPolicy UpdateSecret
UpdateSecretRotationPolicy UpdateSecretVersionStage""".split()

PARAMS = """Action Version Format Timestamp SignatureNonce SignatureMethod SignatureVersion AccessKeyId
Signature SecurityToken SignatureType RegionId Algorithm AliasName CertificateId Description
DeletionProtectionDescription DestinationEncryptionContext DestinationKeyId DryRun
EnableAutomaticRotation EnableDeletionProtection EncryptedKeyMaterial EncryptionContext
EncryptionKeyId ExcludeCharacters ExtendedConfig FetchExtendedConfig FetchTags Filters
ForceDeleteWithoutRecovery ImportToken IncludeDeprecated KeyId KeyMaterialExpireUnix KeySpec
KeyUsage KeyVersionId MoveToVersion NextToken NumberOfBytes Origin PageNumber PageSize
PasswordLength PendingWindowInDays Plaintext CiphertextBlob ProtectionLevel PublicKeyBlob
RecoveryWindowInDays RemoveFromVersion RequireEachIncludedType ResourceType RotationInterval
SecretData SecretDataType SecretName SecretType SourceEncryptionAlgorithm SourceEncryptionContext
SourceKeyId SourceKeyVersionId TagKeys Tags Value VersionId VersionStage VersionStages
WrappingAlgorithm WrappingKeySpec Digest ResourceId KeyIds SecretNames AutomaticRotation
WithPlaintextKey""".split()

VALUES = """Aliyun_AES_256 Aliyun_AES_128 Aliyun_SM4 RSA_2048 RSA_3072 EC_P256 EC_P256K EC_SM2
ENCRYPT/DECRYPT SIGN/VERIFY Aliyun_KMS EXTERNAL SOFTWARE HSM RSAES_OAEP_SHA_256 RSAES_OAEP_SHA_1
RSAES_PKCS1_V1_5 SM2PKE RSA_PSS_SHA_256 RSA_PKCS1_SHA_256 ECDSA_SHA_256 SM2DSA ACSCurrent
ACSPrevious ACSPending text binary Generic json JSON XML xml true false 2016-01-20 HMAC-SHA1 1.0
alias/ 7d 30d 365d 2048 4294967296 -1 0 1 32 64 1024 key secret""".split()

TV2_QUERY = ("AccessKeyId=testid&Action=Encrypt&EncryptionContext.Example=Example&"
             "EncryptionContext.a%20b=c%26d&Format=json&KeyId=alias%2FApollo%2FSalaryEncryptionKey&"
             "Plaintext=SGVsbG8gd29ybGQ%3D&SignatureMethod=HMAC-SHA1&"
             "SignatureNonce=5f1b0b1e8c1e4c3c9d2e7a6b4c3d2e1f&SignatureVersion=1.0&"
             "Timestamp=2024-01-01T00%3A00%3A00Z&Version=2016-01-20&"
             "Signature=MazhVt890dejurJ1cSpfV8ACwno%3D")
TV1_QUERY = ("AccessKeyId=testid&Action=CreateKey&Format=json&SignatureMethod=HMAC-SHA1&"
             "SignatureVersion=1.0&Timestamp=2016-03-28T03%3A13%3A08Z&Version=2016-01-20&"
             "Signature=41wk2SSX1GJh7fwnc5eqOfiJPFg%3D")
TV3_QUERY = ("AccessKeyId=testid&Action=CreateKey&Description=%E6%B5%8B%E8%AF%95%20key%20*~!&"
             "Format=JSON&KeySpec=Aliyun_SM4&SecurityToken=CAIS%2Btoken%2F%3D&"
             "SignatureMethod=HMAC-SHA1&SignatureNonce=nonce-0003&SignatureType=&"
             "SignatureVersion=1.0&Timestamp=2024-01-01T00%3A00%3A00Z&Version=2016-01-20&"
             "Signature=8qa3qSDzXmsukM4AWGTXW2JdYFo%3D")
# What @alicloud/kms20160120 1.2.0 sends: every parameter in the query, Node's querystring
# (! ' ( ) * left raw, spaces as %20), a flattened EncryptionContext.
NODE_QUERY = ("Action=Encrypt&Format=json&Version=2016-01-20&Timestamp=2024-05-01T10%3A00%3A00Z&"
              "SignatureNonce=0123456789abcdef0123456789abcdef&SignatureMethod=HMAC-SHA1&"
              "SignatureVersion=1.0&AccessKeyId=LTAI5tExample&KeyId=alias%2Fmy-key&"
              "Plaintext=aGVsbG8gKHdvcmxkKSEgJyo%3D&EncryptionContext.purpose=it's%20(a)%20test!*&"
              "Signature=abcdefghijklmnopqrstuvwxyz0%3D")
POPCORE_BODY = ("AccessKeyId=LTAI5tExample&Action=DescribeKey&Format=JSON&KeyId=key-123&"
                "SignatureMethod=HMAC-SHA1&SignatureNonce=a1b2c3&SignatureVersion=1.0&"
                "Timestamp=2024-05-01T10%3A00%3A00Z&Version=2016-01-20&Signature=x%2By%2Fz%3D")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def write_dict(target, tokens):
    os.makedirs(DICTS, exist_ok=True)
    with open(os.path.join(DICTS, target + ".dict"), "w") as f:
        f.write("# libFuzzer dictionary for %s, written by tests/fuzz/make_seeds.py\n" % target)
        for t in dict.fromkeys(tokens):
            esc = "".join(c if 0x20 <= ord(c) < 0x7f and c not in '"\\' else "\\x%02x" % ord(c)
                          for c in t)
            f.write('"%s"\n' % esc)


def clear_seeds():
    if not os.path.isdir(CORPUS):
        return
    for target in os.listdir(CORPUS):
        for f in os.listdir(os.path.join(CORPUS, target)):
            if f.startswith("seed-"):
                os.remove(os.path.join(CORPUS, target, f))


def openssl(*args, inp=None):
    return subprocess.run(["openssl", *args], input=inp, check=True, capture_output=True).stdout


def seeds_params():
    write("fuzz_params", "tv1-query", TV1_QUERY)
    write("fuzz_params", "tv2-node-sdk", TV2_QUERY)
    write("fuzz_params", "tv3-utf8-empty", TV3_QUERY)
    write("fuzz_params", "node-sdk-querystring", NODE_QUERY)
    write("fuzz_params", "popcore-form-body", "\n" + POPCORE_BODY)
    write("fuzz_params", "query-and-body", "Action=DescribeRegions&Format=XML\nKeyId=a+b%2Bc&x")
    write("fuzz_params", "bad-escapes", "a=%zz&b=%4&c=%E4%B8")
    write("fuzz_params", "duplicate", "KeyId=1&Action=ListKeys\nKeyId=2")
    write("fuzz_params", "empty-pairs", "&&=&a&=b&&c=")
    write("fuzz_params", "v3-json-context",
          "KeyId=alias%2FApollo%2FSalaryEncryptionKey&Plaintext=SGVsbG8gd29ybGQ%3D&"
          "EncryptionContext=%7B%22Example%22%3A%22Example%22%7D")
    write_dict("fuzz_params", ["&", "=", "+", "%", "%2B", "%20", "%00", "%C3%A9", "%E4%B8%AD",
                               "%F0%9F%98%80", "%ED%A0%80", "%C0%80", "%FF", "\n"] + PARAMS)


V3_HEADERS_TV4 = [
    ("host", "kms.cn-hangzhou.aliyuncs.com"), ("x-acs-action", "Encrypt"),
    ("x-acs-version", "2016-01-20"), ("x-acs-date", "2024-01-01T00:00:00Z"),
    ("x-acs-signature-nonce", "3e4f1c2b9a8d7e6f5a4b3c2d1e0f9a8b"),
    ("x-acs-content-sha256", hashlib.sha256(b"").hexdigest())]


def canonical_item(method, path, query, form, headers, auth, body=""):
    lines = ["M" + method, "P" + path]
    if query:
        lines.append("Q" + query)
    if form:
        lines.append("F" + form)
    lines += ["H%s:%s" % h for h in headers]
    if auth:
        lines.append("A" + auth)
    if body:
        lines.append("D" + body)
    return "\n".join(lines) + "\n"


def seeds_canonical():
    tv4_auth = ("ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;"
                "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
                "Signature=bef88d349603053a447f1093ba1ff5a8360010b002c6125359ac0048c7b7e1d8")
    write("fuzz_canonical", "tv1-get", canonical_item("GET", "/", TV1_QUERY, "", [], ""))
    write("fuzz_canonical", "tv2-post", canonical_item("POST", "/", TV2_QUERY, "", [], ""))
    write("fuzz_canonical", "tv3-utf8", canonical_item("get", "/", TV3_QUERY, "", [], ""))
    write("fuzz_canonical", "tv4-v3", canonical_item(
        "POST", "/", "KeyId=alias%2FApollo%2FSalaryEncryptionKey&Plaintext=SGVsbG8gd29ybGQ%3D&"
        "EncryptionContext=%7B%22Example%22%3A%22Example%22%7D", "", V3_HEADERS_TV4, tv4_auth))
    body = "KeyId=key-abc&Plaintext=SGk%3D"
    tv5 = [("content-type", "application/x-www-form-urlencoded"),
           ("host", "kms.cn-hangzhou.aliyuncs.com"), ("x-acs-accesskey-id", "STS.testid"),
           ("x-acs-action", "Encrypt"),
           ("x-acs-content-sha256", hashlib.sha256(body.encode()).hexdigest()),
           ("x-acs-date", "2024-01-01T00:00:00Z"), ("x-acs-security-token", "CAIS+token/="),
           ("x-acs-signature-nonce", "n5"), ("x-acs-version", "2016-01-20")]
    tv5_auth = ("ACS3-HMAC-SHA256 Credential=STS.testid,SignedHeaders=" +
                ";".join(h for h, _ in tv5) +
                ",Signature=8eeadbd9ff4c34e63d40b738491fa11a49772db80e8a77070f94604bf11c5be5")
    write("fuzz_canonical", "tv5-v3-form-sts", canonical_item("POST", "/", "", body, tv5,
                                                              tv5_auth, body))
    sm3 = [h if h[0] != "x-acs-content-sha256" else
           ("x-acs-content-sm3", "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b")
           for h in V3_HEADERS_TV4]
    write("fuzz_canonical", "v3-sm3", canonical_item(
        "POST", "/", "KeyId=k", "", sm3 + [("x-acs-action", "Decrypt")],
        "ACS3-HMAC-SM3 Credential=id,SignedHeaders=" + ";".join(sorted({h for h, _ in sm3})) +
        ",Signature=" + "AB" * 32))
    write("fuzz_canonical", "v3-openapi-client", canonical_item(
        "POST", "/", "KeyId=alias%2Fk&Plaintext=aGk%3D",
        "", V3_HEADERS_TV4 + [("x-acs-credentials-provider", "static_ak"),
                              ("user-agent", "AlibabaCloud (linux) Node.js/v20 Core/1.0.1 TeaDSL/1"),
                              ("accept", "application/json")],
        "ACS3-HMAC-SHA256 Credential=LTAI,SignedHeaders=host;x-acs-action;x-acs-content-sha256;"
        "x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=" + "0" * 64))
    write_dict("fuzz_canonical", ["\nM", "\nP", "\nQ", "\nF", "\nH", "\nA", "\nD",
                                  "ACS3-HMAC-SHA256", "ACS3-HMAC-SM3", " Credential=",
                                  ",SignedHeaders=", ",Signature=", "host", "x-acs-action",
                                  "x-acs-version", "x-acs-date", "x-acs-signature-nonce",
                                  "x-acs-content-sha256", "x-acs-content-sm3",
                                  "x-acs-security-token", "content-type",
                                  "application/x-www-form-urlencoded", "Signature", "%2F", "%3D",
                                  "%26", "%20"] + PARAMS[:12])


def blob_bytes(alg, ct_len, seed):
    h = hashlib.sha256(seed.encode()).digest() * (1 + ct_len // 32)
    return bytes([1, alg]) + h[:16] + h[16:28] + h[:ct_len] + hashlib.md5(seed.encode()).digest()


def blob_item(flags, context, blob):
    ctx = context.encode()
    return bytes([flags, len(ctx)]) + ctx + blob


def seeds_blob():
    for alg, name in ((1, "aes256"), (2, "aes128"), (3, "sm4")):
        b = blob_bytes(alg, 5, name)
        write("fuzz_blob", "raw-" + name, blob_item(0, "", b))
        write("fuzz_blob", "b64-" + name, blob_item(1, '{"a":"b"}', base64.b64encode(b)))
    write("fuzz_blob", "b64-unpadded", blob_item(1, "", base64.b64encode(
        blob_bytes(1, 32, "x")).rstrip(b"=")))
    write("fuzz_blob", "raw-empty-ciphertext", blob_item(0, '{"k":1,"t":true}',
                                                        blob_bytes(1, 0, "empty")))
    write("fuzz_blob", "bad-format", blob_item(0, "", b"\x02" + blob_bytes(1, 4, "f")[1:]))
    write("fuzz_blob", "short", blob_item(1, "", b"AQEAAA=="))
    write_dict("fuzz_blob", ["\x01\x01", "\x01\x02", "\x01\x03", "==", "=", "+", "/",
                             '{"a":"b"}'])


def seeds_context():
    items = {
        "simple": '{"Example":"Example"}',
        "types": '{"n":1,"f":-1.5e+3,"t":true,"x":false,"s":"v"}',
        "escapes": '{"a\\"b":"c\\\\d","u":"\\u4e2d\\u6587","p":"\\ud83d\\ude00","c":"\\n\\t\\/"}',
        "utf8": '{"键":"值","emoji":"😀"}',
        "empty-object": "{ }",
        "duplicate": '{"a":"1","a":"2"}',
        "nested": '{"a":{"b":"c"}}',
        "null": '{"a":null}',
        "nul-escape": '{"a":"\\u0000"}',
        "lone-surrogate": '{"a":"\\ud800"}',
        "flattened-only": '\nEncryptionContext.Example=Example&EncryptionContext.a%20b=c%26d',
        "both-forms": '{"a":"b"}\nEncryptionContext=%7B%22a%22%3A%22b%22%7D&EncryptionContext.c=d',
        "flattened-json-clash": '\nEncryptionContext=%7B%7D&EncryptionContext.x=y',
    }
    for k, v in items.items():
        write("fuzz_context", k, v)
    write_dict("fuzz_context", ['{"', '":"', '","', '"}', "\\u", "\\ud83d\\ude00", "true",
                                "false", "null", "1e9", "-0.5", "EncryptionContext.",
                                "EncryptionContext=", "%7B", "%22", "%3A", "\n"])


def seeds_render():
    bodies = {
        "describe-key": '{"RequestId":"r","KeyMetadata":{"KeyId":"k","KeySpec":"Aliyun_AES_256",'
                        '"DeletionProtection":"Disabled","CreationDate":"2024-01-01T00:00:00Z"}}',
        "list-keys": '{"RequestId":"r","PageNumber":1,"PageSize":10,"TotalCount":2,'
                     '"Keys":{"Key":[{"KeyId":"a","KeyArn":"acs:kms:cn:1:key/a"},{"KeyId":"b"}]}}',
        "empty-list": '{"RequestId":"r","Aliases":{"Alias":[]},"TotalCount":0}',
        "error": '{"RequestId":"r","HostId":"kms","Code":"InvalidParameter",'
                 '"Message":"The specified parameter \\"KeyId\\" is not valid.","HttpStatus":400}',
        "stages": '{"RequestId":"r","VersionStages":{"VersionStage":["ACSCurrent","ACSPrevious"]}}',
        "secret": '{"RequestId":"r","SecretData":"line1\\r\\nline2 <&> \\"q\\" \'a\' \\u0001",'
                  '"Value":true,"Number":1.5e-7,"Big":18014398509481985}',
        "scalar-root": '"just a string \\ud83d\\ude00"',
        "deep": "[" * 50 + "]" * 50,
    }
    for k, v in bodies.items():
        write("fuzz_render", "json-" + k, b"\x00" + v.encode())
    # Structured builder (odd first byte): op, name selector, operands.
    write("fuzz_render", "built-strings", b"\x01" + b"\x00\x00\x05hello" + b"\x00\x01\x03\xff\xfe\x01"
          + b"\x00\xf0\x03a<b\x02x")
    write("fuzz_render", "built-nested", b"\x03" + b"\x04\x03" + b"\x05\x04" + b"\x01\x0a" +
          struct.pack("<d", float("nan")) + b"\x01\x06" + struct.pack("<d", 1e308) +
          b"\x06\x00" + b"\x07\x06\x01\x02\x03" + b"\x03\x00" + b"\x0a\x02")
    write_dict("fuzz_render", ['{"', '":', '"', "[", "]", "{", "}", ",", "true", "false", "null",
                               "1e400", "-0", "\\u0000", "\\ud800", "\xed\xa0\x80", "\xef\xbf\xbe",
                               "\xc0\x80", "\r", "<", "&", "]]>"])


def der_to_raw(der):
    """GM/T 0009 SEQUENCE{INTEGER x, INTEGER y, OCTET STRING C3, OCTET STRING C2} -> raw."""
    def read(buf, pos):
        tag, n = buf[pos], buf[pos + 1]
        pos += 2
        if n & 0x80:
            k = n & 0x7f
            n = int.from_bytes(buf[pos:pos + k], "big")
            pos += k
        return tag, buf[pos:pos + n], pos + n
    _, seq, _ = read(der, 0)
    parts, p = [], 0
    while p < len(seq):
        _, v, p = read(seq, p)
        parts.append(v)
    x, y, c3, c2 = parts
    coord = lambda v: v.lstrip(b"\x00").rjust(32, b"\x00")
    return b"\x04" + coord(x) + coord(y) + c3 + c2


def seeds_pkey():
    tmp = tempfile.mkdtemp()
    try:
        specs = {"rsa2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                 "rsa3072": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
                 "p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                 "p256k": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
                 "sm2": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2"]}
        for name, args in specs.items():
            key = os.path.join(tmp, name + ".pem")
            openssl("genpkey", *args, "-out", key)
            der = openssl("pkey", "-in", key, "-pubout", "-outform", "DER")
            write("fuzz_pkey", "spki-" + name, b"\x00\x00" + der)
            if name == "p256":
                comp = openssl("pkey", "-in", key, "-pubout", "-outform", "DER",
                               "-ec_conv_form", "compressed")
                write("fuzz_pkey", "spki-p256-compressed", b"\x00\x01" + comp)
            if name == "sm2":
                msg = os.path.join(tmp, "msg")
                with open(msg, "wb") as f:
                    f.write(b"a data key of 32 bytes, or so...")
                ct = openssl("pkeyutl", "-encrypt", "-inkey", key, "-in", msg)
                write("fuzz_pkey", "sm2-der", b"\x02\x00" + ct)
                write("fuzz_pkey", "sm2-raw", b"\x01\x00" + der_to_raw(ct))
                write("fuzz_pkey", "decrypt-sm2-der", b"\x03\x03" + ct)
                write("fuzz_pkey", "decrypt-sm2-raw", b"\x03\x03" + der_to_raw(ct))
        write("fuzz_pkey", "spki-truncated", b"\x00\x00" + der[:40])
        write("fuzz_pkey", "decrypt-rsa", b"\x03\x00" + hashlib.sha256(b"x").digest() * 8)
        write("fuzz_pkey", "verify-ecdsa", b"\x04\x02" + hashlib.sha256(b"d").digest() +
              bytes.fromhex("3044022001" + "00" * 31 + "022001" + "00" * 31))
        write("fuzz_pkey", "roundtrip-short", b"\x05\x00hello")
        write("fuzz_pkey", "roundtrip-sm2", b"\x05\x80a data key")
        write_dict("fuzz_pkey", ["\x30\x82", "\x30\x81", "\x02\x20", "\x02\x21\x00", "\x04\x20",
                                 "\x04\x81", "\x04\x82", "\x06\x08\x2a\x81\x1c\xcf\x55\x01\x82\x2d",
                                 "\x06\x07\x2a\x86\x48\xce\x3d\x02\x01", "\x03\x42\x00\x04"])
    finally:
        shutil.rmtree(tmp)


def request(lines):
    return "\n".join(lines) + "\n"


def seeds_request():
    reqs = {
        "v1-encrypt": ["a Encrypt", "q KeyId=$K0&Plaintext=SGVsbG8%3D&Format=json"],
        "v1-node-flattened-context": ["a Encrypt", "q KeyId=$A0&Plaintext=aGk%3D&"
                                      "EncryptionContext.purpose=it's%20(a)%20test!*"],
        "v1-decrypt": ["a Decrypt", "q CiphertextBlob=$B0"],
        "v1-decrypt-context": ["a Decrypt", "q CiphertextBlob=$B1&EncryptionContext=%7B%22a%22%3A%22b%22%7D"],
        "v1-form-describe-key-xml": ["b Action=DescribeKey&KeyId=$K2&Format=XML"],
        "popcore-get": ["m GET", "q Action=ListKeys&Format=JSON&PageSize=2"],
        "v3-generate-data-key": ["s v3", "a GenerateDataKey", "q KeyId=$A0&NumberOfBytes=32"],
        "v3-sm3-describe": ["s sm3", "a DescribeKey", "q KeyId=$K1"],
        "v3-form-body": ["s v3", "a Encrypt", "b KeyId=$K1&Plaintext=SGk%3D"],
        "v3-openapi-headers": ["s v3", "a ListAliases", "h x-acs-credentials-provider:static_ak",
                               "h user-agent:AlibabaCloud (linux) Node.js/v20 Core/1.0.1 TeaDSL/1",
                               "h accept:application/json"],
        "unsigned-list-keys": ["s none", "q Action=ListKeys&Version=2016-01-20"],
        "bad-signature": ["s bad", "a DescribeRegions"],
        "stale": ["s old", "a DescribeService"],
        "replay-list-keys": ["s replay", "a ListKeys"],
        "too-large": ["t", "a ListKeys"],
        "wrong-path-method": ["m DELETE", "p /x", "a ListKeys"],
        "create-key-sm4": ["a CreateKey", "q KeySpec=Aliyun_SM4&Description=%E6%B5%8B%E8%AF%95"],
        "create-alias": ["a CreateAlias", "q AliasName=alias/$N&KeyId=$K0"],
        "asym-sign": ["a AsymmetricSign", "q KeyId=$K3&KeyVersionId=$V3&Algorithm=ECDSA_SHA_256&"
                      "Digest=47DEQpj8HBSa%2B%2FTImW%2B5JCeuQeRkm5NMpJWZG3hSuFU%3D"],
        "asym-verify": ["a AsymmetricVerify", "q KeyId=$K3&KeyVersionId=$V3&Algorithm=ECDSA_SHA_256&"
                        "Digest=47DEQpj8HBSa%2B%2FTImW%2B5JCeuQeRkm5NMpJWZG3hSuFU%3D&Value=MEQCIA%3D%3D"],
        "asym-encrypt-rsa": ["a AsymmetricEncrypt", "q KeyId=$K2&KeyVersionId=$V2&"
                             "Algorithm=RSAES_OAEP_SHA_256&Plaintext=aGk%3D"],
        "asym-decrypt-sm2": ["a AsymmetricDecrypt", "q KeyId=$K4&KeyVersionId=$V4&Algorithm=SM2PKE&"
                             "CiphertextBlob=BAAA"],
        "get-public-key": ["a GetPublicKey", "q KeyId=$K4&KeyVersionId=$V4"],
        "re-encrypt": ["a ReEncrypt", "q CiphertextBlob=$B0&DestinationKeyId=$K1"],
        "export-data-key": ["a GenerateAndExportDataKey", "q KeyId=$K0&PublicKeyBlob=AAAA&"
                            "WrappingKeySpec=RSA_2048&WrappingAlgorithm=RSAES_OAEP_SHA_256"],
        "import-params": ["a GetParametersForImport", "q KeyId=$K5&WrappingKeySpec=RSA_2048&"
                          "WrappingAlgorithm=RSAES_OAEP_SHA_256"],
        "import-material": ["a ImportKeyMaterial", "q KeyId=$K5&ImportToken=abc&"
                            "EncryptedKeyMaterial=AAAA"],
        "tag-resource": ["a TagResource", "q KeyId=$K0&Tags=%5B%7B%22TagKey%22%3A%22k%22%2C"
                         "%22TagValue%22%3A%22v%22%7D%5D"],
        "tag-resources": ["a TagResources", "q ResourceType=key&ResourceId=%5B%22$K0%22%5D&"
                          "Tag.1.Key=a&Tag.1.Value=b"],
        "untag-resources": ["a UntagResources", "q ResourceType=key&ResourceId=%5B%22$K0%22%5D&"
                            "TagKey=%5B%22a%22%5D"],
        "list-resource-tags": ["a ListResourceTags", "q KeyId=$K0"],
        "rotation-policy": ["a UpdateRotationPolicy", "q KeyId=$K0&EnableAutomaticRotation=true&"
                            "RotationInterval=30d"],
        "create-key-version": ["a CreateKeyVersion", "q KeyId=$K0"],
        "schedule-deletion": ["a ScheduleKeyDeletion", "q KeyId=$K1&PendingWindowInDays=7"],
        "get-secret-value": ["a GetSecretValue", "q SecretName=$S0&VersionStage=ACSCurrent"],
        "put-secret-value": ["a PutSecretValue", "q SecretName=$S0&VersionId=$N&SecretData=x&"
                             "VersionStages=%5B%22ACSPending%22%5D"],
        "list-secrets-filters": ["a ListSecrets", "q Filters=%5B%7B%22Key%22%3A%22SecretName%22%2C"
                                 "%22Values%22%3A%5B%22fuzz%22%5D%7D%5D&FetchTags=true"],
        "create-secret-json": ["a CreateSecret", "q SecretName=$N&SecretData=%7B%22a%22%3A1%7D&"
                               "VersionId=v1&SecretDataType=text&Tags=%5B%5D"],
        "random-password": ["a GetRandomPassword", "q PasswordLength=32&ExcludeCharacters=abc&"
                            "RequireEachIncludedType=true"],
        "dry-run": ["a GenerateDataKey", "q KeyId=$K0&DryRun=true"],
    }
    # Sequences: later requests use what earlier ones returned ($k $v $b $t $e).
    reqs.update({
        "seq-byok-rsa": ["a CreateKey", "q Origin=EXTERNAL&KeySpec=Aliyun_AES_256", "n",
                         "a GetParametersForImport", "q KeyId=$k&WrappingKeySpec=RSA_2048&"
                         "WrappingAlgorithm=RSAES_OAEP_SHA_256", "n",
                         "a ImportKeyMaterial", "q KeyId=$k&ImportToken=$t&EncryptedKeyMaterial=$e",
                         "n", "a Encrypt", "q KeyId=$k&Plaintext=aGk%3D"],
        "seq-byok-sm2": ["a GetParametersForImport", "q KeyId=$K5&WrappingKeySpec=EC_SM2&"
                         "WrappingAlgorithm=SM2PKE", "n", "s v3", "a ImportKeyMaterial",
                         "q KeyId=$K5&ImportToken=$t&EncryptedKeyMaterial=$e&"
                         "KeyMaterialExpireUnix=4102444800"],
        "seq-encrypt-decrypt": ["a Encrypt", "q KeyId=$K1&Plaintext=aGk%3D&EncryptionContext.x=y",
                                "n", "s v3", "a Decrypt", "q CiphertextBlob=$b&"
                                "EncryptionContext=%7B%22x%22%3A%22y%22%7D"],
        "seq-create-alias-rotate": ["a CreateKey", "q KeySpec=Aliyun_AES_128", "n", "a CreateAlias",
                                    "q AliasName=alias/$N&KeyId=$k", "n", "a CreateKeyVersion",
                                    "q KeyId=$k", "n", "a DescribeKeyVersion",
                                    "q KeyId=$k&KeyVersionId=$v"],
        "seq-data-key-reencrypt": ["a GenerateDataKeyWithoutPlaintext", "q KeyId=$A0", "n",
                                   "a ReEncrypt", "q CiphertextBlob=$b&DestinationKeyId=$K1"],
    })
    for k, v in reqs.items():
        write("fuzz_request", k, request(v))
    write_dict("fuzz_request", ["\nq ", "\nb ", "\nh ", "\na ", "\nm ", "\np ", "\ns ", "\nt",
                                "s v1", "s v3", "s sm3", "s none", "s bad", "s old", "s replay",
                                "$K0", "$K1", "$K2", "$K3", "$K4", "$K5", "$V0", "$V2", "$V3",
                                "$V4", "$A0", "$B0", "$B1", "$S0", "$N", "alias/$N", "\nn\n",
                                "$k", "$v", "$b", "$t", "$e",
                                "h content-type:application/x-www-form-urlencoded",
                                "h authorization:ACS3-HMAC-SHA256 ", "%5B%22", "%22%5D",
                                "%7B%22", "%22%3A%22", "%22%7D", "=", "&"] + ACTIONS +
               [p + "=" for p in PARAMS] + VALUES)


def main():
    clear_seeds()
    seeds_params()
    seeds_canonical()
    seeds_blob()
    seeds_context()
    seeds_render()
    seeds_pkey()
    seeds_request()
    print("seeds written to", CORPUS, file=sys.stderr)


if __name__ == "__main__":
    main()
