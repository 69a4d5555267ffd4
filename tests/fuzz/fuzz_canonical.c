/*
 * fuzz_canonical.c - the signature canonicalizers of include/kms/auth.h over fuzzed parameter
 * maps and headers: V1's StringToSign (kms_sig_v1_string_to_sign, kms_sig_v1_sign), V3's
 * Authorization parsing (kms_sig_v3_parse), request checks (kms_sig_v3_check) and CanonicalRequest
 * / StringToSign (kms_sig_v3_string_to_sign, kms_sig_v3_sign).
 *
 * Input, one item per line (the first letter says which; unknown lines are ignored):
 *   M<method>  P<path>  Q<query text>  F<form body text>  H<name>:<value>  A<Authorization>
 *   D<a line of raw body bytes>
 * Q and F lines are joined with "&" and parsed with the server's parser into one map.
 *
 * Asserts: V1's StringToSign is upper(method) "&%2F&" followed by exactly the percent-encoding of
 * the once-encoded canonical query, holds only unreserved bytes and %XY escapes, and the canonical
 * query parses back to the map (less Signature); the signature is deterministic Base64 of 20 bytes.
 * V3: a parsed Authorization is self-consistent (non-empty credential without blanks, unique
 * lower-case signed header names, 64 lower-case hex digits) and survives re-formatting; after
 * kms_sig_v3_check accepts a request, the StringToSign is built, is alg "\n" hex(hash of the
 * CanonicalRequest), and the CanonicalRequest has one line per signed header plus five; a
 * signature computed for it is accepted by a fresh parse and compares equal.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kms/auth.h"
#include "kms/http.h"
#include "support.h"

#define FUZZ_MAX_HEADERS 64

struct canon_input {
    struct kms_buf method, path, query, form, body, auth;
    struct kms_header headers[FUZZ_MAX_HEADERS];
    size_t header_count;
};

static void canon_append_joined(struct kms_buf *b, const char *s, size_t len)
{
    if (b->len > 0)
        kms_buf_append_char(b, '&');
    kms_buf_append(b, s, len);
}

static void canon_read(struct canon_input *in, const uint8_t *data, size_t size)
{
    struct fuzz_lines lines;
    const char *line;
    size_t len;

    fuzz_lines_init(&lines, data, size);
    while (fuzz_lines_next(&lines, &line, &len)) {
        if (len == 0)
            continue;
        switch (line[0]) {
        case 'M':
            kms_buf_reset(&in->method);
            kms_buf_append(&in->method, line + 1, len - 1);
            break;
        case 'P':
            kms_buf_reset(&in->path);
            kms_buf_append(&in->path, line + 1, len - 1);
            break;
        case 'Q':
            canon_append_joined(&in->query, line + 1, len - 1);
            break;
        case 'F':
            canon_append_joined(&in->form, line + 1, len - 1);
            break;
        case 'A':
            kms_buf_reset(&in->auth);
            kms_buf_append(&in->auth, line + 1, len - 1);
            break;
        case 'D':
            kms_buf_append(&in->body, line + 1, len - 1);
            break;
        case 'H': {
            const char *colon = memchr(line, ':', len);

            if (colon == NULL || in->header_count == FUZZ_MAX_HEADERS)
                break;
            /* Header names and values are C strings in struct kms_request (no NUL inside). */
            in->headers[in->header_count].name = kms_strndup(line + 1, (size_t)(colon - line - 1));
            in->headers[in->header_count].value =
                kms_strndup(colon + 1, len - (size_t)(colon - line) - 1);
            in->header_count++;
            break;
        }
        default:
            break;
        }
    }
    /* The front end never hands over a method or path with a NUL in it. */
    if (in->method.len == 0 || strlen(in->method.data) != in->method.len) {
        kms_buf_reset(&in->method);
        kms_buf_append_str(&in->method, "POST");
    }
    if (in->path.len == 0 || strlen(in->path.data) != in->path.len) {
        kms_buf_reset(&in->path);
        kms_buf_append_str(&in->path, "/");
    }
}

static void canon_free(struct canon_input *in)
{
    kms_buf_free(&in->method);
    kms_buf_free(&in->path);
    kms_buf_free(&in->query);
    kms_buf_free(&in->form);
    kms_buf_free(&in->body);
    kms_buf_free(&in->auth);
    for (size_t i = 0; i < in->header_count; i++) {
        free(in->headers[i].name);
        free(in->headers[i].value);
    }
}

static bool canon_unreserved(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

static void check_v1(const struct canon_input *in, const struct kms_params *p)
{
    struct kms_buf sts = {0}, once = {0}, twice = {0}, prefix = {0};
    struct kms_params back = {0};
    char sig1[KMS_SIG_V1_LEN + 1], sig2[KMS_SIG_V1_LEN + 1];
    size_t n_without_signature = 0;
    kms_err rc;

    FUZZ_CHECK(kms_sig_v1_string_to_sign(&sts, in->method.data, p) == KMS_OK, "v1 sts failed");
    for (const char *m = in->method.data; *m; m++)
        kms_buf_append_char(&prefix, (*m >= 'a' && *m <= 'z') ? (char)(*m - 32) : *m);
    kms_buf_append_str(&prefix, "&%2F&");
    FUZZ_CHECK(sts.len >= prefix.len && memcmp(sts.data, prefix.data, prefix.len) == 0,
               "v1 StringToSign does not start with the method");

    /* The one-pass double encoding equals encoding the canonical query once more. */
    FUZZ_CHECK(kms_sig_canonical_query(&once, p, KMS_PARAM_QUERY | KMS_PARAM_BODY, "Signature") ==
                   KMS_OK,
               "canonical query failed");
    FUZZ_CHECK(kms_percent_encode(&twice, once.data ? once.data : "", once.len) == KMS_OK,
               "percent-encode failed");
    FUZZ_CHECK(sts.len - prefix.len == twice.len &&
                   memcmp(sts.data + prefix.len, twice.data ? twice.data : "", twice.len) == 0,
               "v1 StringToSign differs from percentEncode(canonical query)");
    for (size_t i = prefix.len; i < sts.len; i++) {
        if (sts.data[i] == '%') {
            FUZZ_CHECK(i + 2 < sts.len && strchr("0123456789ABCDEF", sts.data[i + 1]) &&
                           strchr("0123456789ABCDEF", sts.data[i + 2]),
                       "bad escape in the StringToSign at %zu", i);
            i += 2;
        } else {
            FUZZ_CHECK(canon_unreserved(sts.data[i]), "reserved byte in the StringToSign");
        }
    }

    /* The canonical query is a faithful encoding of the map. */
    rc = kms_params_parse(&back, once.data ? once.data : "", once.len, KMS_PARAM_QUERY);
    FUZZ_CHECK(rc == KMS_OK, "the canonical query does not parse back");
    for (size_t i = 0; i < p->count; i++) {
        const struct kms_param *it = &p->items[i];

        if (strcmp(it->name, "Signature") == 0)
            continue;
        FUZZ_CHECK(n_without_signature < back.count, "canonical query lost parameters");
        FUZZ_CHECK(strcmp(back.items[n_without_signature].name, it->name) == 0 &&
                       strcmp(back.items[n_without_signature].value, it->value) == 0,
                   "canonical query changed parameter \"%s\"", it->name);
        n_without_signature++;
    }
    FUZZ_CHECK(back.count == n_without_signature, "canonical query has extra parameters");

    FUZZ_CHECK(kms_sig_v1_sign("secret", 6, sts.data, sts.len, sig1) == KMS_OK, "v1 sign failed");
    FUZZ_CHECK(kms_sig_v1_sign("secret", 6, sts.data, sts.len, sig2) == KMS_OK, "v1 sign failed");
    FUZZ_CHECK(strlen(sig1) == KMS_SIG_V1_LEN && strcmp(sig1, sig2) == 0,
               "v1 signature not deterministic");

    kms_params_free(&back);
    kms_buf_free(&sts);
    kms_buf_free(&once);
    kms_buf_free(&twice);
    kms_buf_free(&prefix);
}

static void check_v3_auth(const struct kms_sig_v3_auth *a)
{
    size_t cl = strlen(a->credential);

    FUZZ_CHECK(cl > 0 && cl <= KMS_SIG_V3_CREDENTIAL_MAX, "credential length %zu", cl);
    for (size_t i = 0; i < cl; i++)
        FUZZ_CHECK((unsigned char)a->credential[i] > 0x20 && a->credential[i] != 0x7f,
                   "blank or control in the credential");
    FUZZ_CHECK(strlen(a->signature) == KMS_SIG_V3_HEX_LEN, "signature length");
    for (size_t i = 0; i < KMS_SIG_V3_HEX_LEN; i++)
        FUZZ_CHECK(strchr("0123456789abcdef", a->signature[i]) != NULL, "signature not lower hex");
    FUZZ_CHECK(a->header_count >= 1 && a->header_count <= KMS_SIG_V3_HEADER_COUNT_MAX,
               "header count %zu", a->header_count);
    FUZZ_CHECK(strlen(a->signed_headers) == a->signed_headers_len, "signed headers length");
    for (size_t i = 0; i < a->header_count; i++) {
        const char *name = a->signed_headers + a->header_off[i];

        FUZZ_CHECK(a->header_len[i] > 0 &&
                       a->header_off[i] + a->header_len[i] <= a->signed_headers_len,
                   "header %zu out of range", i);
        for (size_t k = 0; k < a->header_len[i]; k++)
            FUZZ_CHECK(!(name[k] >= 'A' && name[k] <= 'Z') && name[k] != ';' &&
                           (unsigned char)name[k] > 0x20,
                       "bad signed header name");
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(!(a->header_len[j] == a->header_len[i] &&
                         memcmp(a->signed_headers + a->header_off[j], name, a->header_len[i]) == 0),
                       "repeated signed header");
    }
}

/* Formats auth as the SDKs do, with the given signature; the caller frees the text. */
static char *format_v3(const struct kms_sig_v3_auth *a, const char *signature)
{
    struct kms_buf b = {0};

    kms_buf_printf(&b, "%s Credential=%s,SignedHeaders=%s,Signature=%s",
                   kms_sig_v3_alg_name(a->alg), a->credential, a->signed_headers, signature);
    return b.data;
}

static void check_v3(const struct canon_input *in, const struct kms_params *p)
{
    struct kms_request req = {0};
    struct kms_sig_v3_auth auth, again;
    struct kms_buf sts = {0}, creq = {0};
    char sig[KMS_SIG_V3_HEX_LEN + 1];
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    size_t newlines = 0;
    char *text;
    kms_err rc;

    if (in->auth.len == 0 || strlen(in->auth.data) != in->auth.len)
        return;
    rc = kms_sig_v3_parse(in->auth.data, &auth);
    FUZZ_CHECK(rc == KMS_OK || rc == KMS_E_INCOMPLETE_SIGNATURE, "v3 parse error %d", (int)rc);
    if (rc != KMS_OK)
        return;
    check_v3_auth(&auth);
    text = format_v3(&auth, auth.signature);
    FUZZ_CHECK(kms_sig_v3_parse(text, &again) == KMS_OK, "re-formatted Authorization refused");
    FUZZ_CHECK(again.alg == auth.alg && strcmp(again.credential, auth.credential) == 0 &&
                   strcmp(again.signed_headers, auth.signed_headers) == 0 &&
                   again.header_count == auth.header_count &&
                   strcmp(again.signature, auth.signature) == 0,
               "re-formatted Authorization parses differently");
    free(text);

    req.method = in->method.data;
    req.path = in->path.data;
    req.query = in->query.data ? in->query.data : "";
    req.query_len = in->query.len;
    req.body = (const unsigned char *)in->body.data;
    req.body_len = in->body.len;
    req.headers = (struct kms_header *)in->headers;
    req.header_count = in->header_count;
    rc = kms_sig_v3_check(&req, &auth);
    FUZZ_CHECK(rc == KMS_OK || rc == KMS_E_INCOMPLETE_SIGNATURE || rc == KMS_E_SIGNATURE_MISMATCH,
               "v3 check error %d", (int)rc);
    if (rc != KMS_OK)
        return;
    rc = kms_sig_v3_string_to_sign(&sts, &creq, &req, p, &auth);
    FUZZ_CHECK(rc == KMS_OK, "v3 sts failed (%d) after the check passed", (int)rc);

    /* StringToSign = alg "\n" hex(hash(CanonicalRequest)). */
    EVP_Digest(creq.data, creq.len, digest, &digest_len,
               auth.alg == KMS_SIG_V3_HMAC_SM3 ? EVP_sm3() : EVP_sha256(), NULL);
    kms_hex_encode(digest, digest_len, hex);
    {
        struct kms_buf want = {0};

        kms_buf_printf(&want, "%s\n%s", kms_sig_v3_alg_name(auth.alg), hex);
        FUZZ_CHECK(want.len == sts.len && memcmp(want.data, sts.data, sts.len) == 0,
                   "v3 StringToSign is not alg + hash of the CanonicalRequest");
        kms_buf_free(&want);
    }
    for (size_t i = 0; i < creq.len; i++)
        newlines += creq.data[i] == '\n';
    FUZZ_CHECK(newlines == auth.header_count + 5, "CanonicalRequest has %zu lines for %zu headers",
               newlines, auth.header_count);

    /* What a client would send for this request is accepted and compares equal. */
    FUZZ_CHECK(kms_sig_v3_sign(auth.alg, "secret", 6, sts.data, sts.len, sig) == KMS_OK,
               "v3 sign failed");
    text = format_v3(&auth, sig);
    FUZZ_CHECK(kms_sig_v3_parse(text, &again) == KMS_OK, "signed Authorization refused");
    FUZZ_CHECK(kms_ct_equal(again.signature, strlen(again.signature), sig, strlen(sig)),
               "computed signature does not compare equal");
    free(text);
    kms_buf_free(&sts);
    kms_buf_free(&creq);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct canon_input in;
    struct kms_params p = {0};
    kms_err rc;

    memset(&in, 0, sizeof(in));
    canon_read(&in, data, size);
    rc = kms_params_parse(&p, in.query.data ? in.query.data : "", in.query.len, KMS_PARAM_QUERY);
    if (rc == KMS_OK)
        rc = kms_params_parse(&p, in.form.data ? in.form.data : "", in.form.len, KMS_PARAM_BODY);
    if (rc == KMS_OK)
        rc = kms_params_finish(&p, NULL);
    if (rc == KMS_OK) {
        check_v1(&in, &p);
        check_v3(&in, &p);
    }
    kms_params_free(&p);
    canon_free(&in);
    return 0;
}
