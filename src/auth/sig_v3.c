/*
 * sig_v3.c - signature V3 (spec §7), the default of every Alibaba V2.0 SDK: the Authorization
 * header "ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..", the checks that the
 * signed headers cover what a replay could otherwise change, the body hash, the CanonicalRequest
 * and its StringToSign, and the hex HMAC keyed with the bare secret.
 */
#include <stdlib.h>
#include <string.h>

#include "kms/auth.h"

#define KMS_SIG_V3_PREFIX "ACS3-"

static const char kms_v3_content_sha256[] = "x-acs-content-sha256";
static const char kms_v3_content_sm3[] = "x-acs-content-sm3";

/* Headers a V3 signature must cover: without them a replayer could retarget or refresh it. */
static const char *const kms_v3_required[] = {"host", "x-acs-action", "x-acs-version",
                                              "x-acs-date"};
/* ...and these whenever the request carries them. */
static const char *const kms_v3_required_if_sent[] = {"x-acs-signature-nonce",
                                                      "x-acs-security-token"};

bool kms_sig_v3_is_v3(const char *authorization)
{
    return authorization != NULL &&
           strncmp(authorization, KMS_SIG_V3_PREFIX, sizeof(KMS_SIG_V3_PREFIX) - 1) == 0;
}

const char *kms_sig_v3_alg_name(enum kms_sig_v3_alg alg)
{
    return alg == KMS_SIG_V3_HMAC_SM3 ? "ACS3-HMAC-SM3" : "ACS3-HMAC-SHA256";
}

static enum kms_sig_hash kms_v3_hash(enum kms_sig_v3_alg alg)
{
    return alg == KMS_SIG_V3_HMAC_SM3 ? KMS_SIG_SM3 : KMS_SIG_SHA256;
}

static bool kms_v3_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Whitespace a header value may carry around it (JavaScript's trim() for the ASCII range). */
static bool kms_v3_trim_char(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void kms_v3_trim(const char **s, size_t *len)
{
    const char *p = *s;
    size_t n = *len;

    while (n > 0 && kms_v3_trim_char(p[0])) {
        p++;
        n--;
    }
    while (n > 0 && kms_v3_trim_char(p[n - 1]))
        n--;
    *s = p;
    *len = n;
}

static bool kms_v3_eq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);

    return len == n && memcmp(s, lit, n) == 0;
}

/* RFC 7230 token characters without upper case: the SDKs sign lower-cased header names. */
static bool kms_v3_header_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool kms_v3_is_signed(const struct kms_sig_v3_auth *auth, const char *name)
{
    for (size_t i = 0; i < auth->header_count; i++)
        if (kms_v3_eq(auth->signed_headers + auth->header_off[i], auth->header_len[i], name))
            return true;
    return false;
}

static kms_err kms_v3_parse_signed_headers(const char *v, size_t len, struct kms_sig_v3_auth *out)
{
    size_t start = 0;

    if (len == 0 || len > KMS_SIG_V3_SIGNED_HEADERS_MAX)
        return KMS_E_INCOMPLETE_SIGNATURE;
    memcpy(out->signed_headers, v, len);
    out->signed_headers[len] = '\0';
    out->signed_headers_len = len;
    out->header_count = 0;
    while (start <= len) {
        const char *semi = memchr(v + start, ';', len - start);
        size_t end = semi ? (size_t)(semi - v) : len;
        const char *name = out->signed_headers + start;
        size_t name_len = end - start;

        if (name_len == 0 || out->header_count == KMS_SIG_V3_HEADER_COUNT_MAX)
            return KMS_E_INCOMPLETE_SIGNATURE;
        for (size_t i = 0; i < name_len; i++)
            if (!kms_v3_header_char((unsigned char)name[i]))
                return KMS_E_INCOMPLETE_SIGNATURE;
        for (size_t i = 0; i < out->header_count; i++)
            if (out->header_len[i] == name_len &&
                memcmp(out->signed_headers + out->header_off[i], name, name_len) == 0)
                return KMS_E_INCOMPLETE_SIGNATURE;
        out->header_off[out->header_count] = (uint16_t)start;
        out->header_len[out->header_count] = (uint16_t)name_len;
        out->header_count++;
        start = end + 1;
    }
    return KMS_OK;
}

static kms_err kms_v3_parse_signature(const char *v, size_t len, struct kms_sig_v3_auth *out)
{
    if (len != KMS_SIG_V3_HEX_LEN)
        return KMS_E_INCOMPLETE_SIGNATURE;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];

        /* Lower-cased so that one constant-time comparison with our hex decides. */
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return KMS_E_INCOMPLETE_SIGNATURE;
        out->signature[i] = c;
    }
    out->signature[len] = '\0';
    return KMS_OK;
}

static kms_err kms_v3_parse_credential(const char *v, size_t len, struct kms_sig_v3_auth *out)
{
    if (len == 0 || len > KMS_SIG_V3_CREDENTIAL_MAX)
        return KMS_E_INCOMPLETE_SIGNATURE;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] == 0x7f)
            return KMS_E_INCOMPLETE_SIGNATURE;
    memcpy(out->credential, v, len);
    out->credential[len] = '\0';
    return KMS_OK;
}

kms_err kms_sig_v3_parse(const char *authorization, struct kms_sig_v3_auth *out)
{
    const char *a = authorization;
    bool have_cred = false, have_sh = false, have_sig = false;
    size_t alg_len, pos, len;

    if (a == NULL)
        return KMS_E_INCOMPLETE_SIGNATURE;
    len = strlen(a);
    alg_len = 0;
    while (alg_len < len && !kms_v3_space(a[alg_len]))
        alg_len++;
    if (kms_v3_eq(a, alg_len, "ACS3-HMAC-SHA256"))
        out->alg = KMS_SIG_V3_HMAC_SHA256;
    else if (kms_v3_eq(a, alg_len, "ACS3-HMAC-SM3") && kms_sig_hash_available(KMS_SIG_SM3))
        out->alg = KMS_SIG_V3_HMAC_SM3;
    else
        return KMS_E_INCOMPLETE_SIGNATURE;
    if (alg_len == len)
        return KMS_E_INCOMPLETE_SIGNATURE;

    pos = alg_len;
    while (pos <= len) {
        const char *comma = memchr(a + pos, ',', len - pos);
        size_t end = comma ? (size_t)(comma - a) : len;
        const char *el = a + pos;
        size_t el_len = end - pos;
        const char *eq;
        size_t key_len;
        kms_err rc;

        while (el_len > 0 && kms_v3_space(el[0])) {
            el++;
            el_len--;
        }
        while (el_len > 0 && kms_v3_space(el[el_len - 1]))
            el_len--;
        eq = memchr(el, '=', el_len);
        if (eq == NULL)
            return KMS_E_INCOMPLETE_SIGNATURE;
        key_len = (size_t)(eq - el);
        if (kms_v3_eq(el, key_len, "Credential") && !have_cred) {
            have_cred = true;
            rc = kms_v3_parse_credential(eq + 1, el_len - key_len - 1, out);
        } else if (kms_v3_eq(el, key_len, "SignedHeaders") && !have_sh) {
            have_sh = true;
            rc = kms_v3_parse_signed_headers(eq + 1, el_len - key_len - 1, out);
        } else if (kms_v3_eq(el, key_len, "Signature") && !have_sig) {
            have_sig = true;
            rc = kms_v3_parse_signature(eq + 1, el_len - key_len - 1, out);
        } else {
            /* Unknown or repeated: we would not know which one the client meant. */
            rc = KMS_E_INCOMPLETE_SIGNATURE;
        }
        if (rc != KMS_OK)
            return rc;
        pos = end + 1;
    }
    if (!have_cred || !have_sh || !have_sig)
        return KMS_E_INCOMPLETE_SIGNATURE;
    return KMS_OK;
}

/*
 * The header carrying the body hash. ACS3-HMAC-SHA256 uses x-acs-content-sha256; for SM3 the
 * Go core sends x-acs-content-sm3 and the other cores x-acs-content-sha256 (holding the SM3 hex).
 */
static const char *kms_v3_content_header(const struct kms_request *req,
                                         const struct kms_sig_v3_auth *auth)
{
    if (auth->alg == KMS_SIG_V3_HMAC_SM3 && kms_request_header(req, kms_v3_content_sm3) != NULL)
        return kms_v3_content_sm3;
    return kms_v3_content_sha256;
}

static bool kms_v3_hex_equal_nocase(const char *a, size_t alen, const char *lower_hex, size_t n)
{
    if (alen != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];

        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (c != lower_hex[i])
            return false;
    }
    return true;
}

kms_err kms_sig_v3_check(const struct kms_request *req, const struct kms_sig_v3_auth *auth)
{
    const char *content = kms_v3_content_header(req, auth);
    const char *claimed;
    size_t claimed_len, digest_len = 0;
    uint8_t digest[KMS_SIG_DIGEST_MAX];
    char hex[2 * KMS_SIG_DIGEST_MAX + 1];
    const void *body;
    kms_err rc;

    for (size_t i = 0; i < auth->header_count; i++) {
        char name[KMS_SIG_V3_SIGNED_HEADERS_MAX + 1];

        memcpy(name, auth->signed_headers + auth->header_off[i], auth->header_len[i]);
        name[auth->header_len[i]] = '\0';
        if (kms_request_header(req, name) == NULL)
            return KMS_E_INCOMPLETE_SIGNATURE;
    }
    for (size_t i = 0; i < KMS_ARRAY_LEN(kms_v3_required); i++)
        if (!kms_v3_is_signed(auth, kms_v3_required[i]))
            return KMS_E_INCOMPLETE_SIGNATURE;
    if (!kms_v3_is_signed(auth, content))
        return KMS_E_INCOMPLETE_SIGNATURE;
    for (size_t i = 0; i < KMS_ARRAY_LEN(kms_v3_required_if_sent); i++)
        if (kms_request_header(req, kms_v3_required_if_sent[i]) != NULL &&
            !kms_v3_is_signed(auth, kms_v3_required_if_sent[i]))
            return KMS_E_INCOMPLETE_SIGNATURE;

    /* Hash what arrived: a client-declared hash alone would let the body be swapped. */
    body = req->body != NULL ? (const void *)req->body : (const void *)"";
    rc = kms_sig_digest(kms_v3_hash(auth->alg), body, req->body_len, digest, &digest_len);
    if (rc != KMS_OK)
        return rc;
    kms_hex_encode(digest, digest_len, hex);
    claimed = kms_request_header(req, content);
    claimed_len = strlen(claimed);
    kms_v3_trim(&claimed, &claimed_len);
    if (!kms_v3_hex_equal_nocase(claimed, claimed_len, hex, 2 * digest_len))
        return KMS_E_SIGNATURE_MISMATCH;
    return KMS_OK;
}

struct kms_v3_value {
    const char *v;
    size_t len;
};

static int kms_v3_value_cmp(const void *a, const void *b)
{
    const struct kms_v3_value *x = a, *y = b;
    int c = memcmp(x->v, y->v, x->len < y->len ? x->len : y->len);

    if (c != 0)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Appends "name:value\n"; a header sent several times gives its trimmed values sorted, joined. */
static kms_err kms_v3_append_header(struct kms_buf *out, const struct kms_request *req,
                                    const char *name, size_t name_len)
{
    struct kms_v3_value one, *vals = &one;
    size_t n = 0, k = 0;
    kms_err rc;

    for (size_t i = 0; i < req->header_count; i++)
        if (kms_v3_eq(name, name_len, req->headers[i].name))
            n++;
    if (n == 0)
        return KMS_E_INCOMPLETE_SIGNATURE;
    if (n > 1) {
        vals = malloc(n * sizeof(*vals));
        if (vals == NULL)
            return KMS_E_INTERNAL;
    }
    for (size_t i = 0; i < req->header_count && k < n; i++) {
        if (!kms_v3_eq(name, name_len, req->headers[i].name))
            continue;
        vals[k].v = req->headers[i].value;
        vals[k].len = strlen(vals[k].v);
        kms_v3_trim(&vals[k].v, &vals[k].len);
        k++;
    }
    if (n > 1)
        qsort(vals, n, sizeof(*vals), kms_v3_value_cmp);
    rc = kms_buf_append(out, name, name_len);
    if (rc == KMS_OK)
        rc = kms_buf_append_char(out, ':');
    for (size_t i = 0; i < n && rc == KMS_OK; i++) {
        if (i > 0)
            rc = kms_buf_append_char(out, ',');
        if (rc == KMS_OK)
            rc = kms_buf_append(out, vals[i].v, vals[i].len);
    }
    if (rc == KMS_OK)
        rc = kms_buf_append_char(out, '\n');
    if (vals != &one)
        free(vals);
    return rc;
}

static kms_err kms_v3_canonical_request(struct kms_buf *out, const struct kms_request *req,
                                        const struct kms_params *p,
                                        const struct kms_sig_v3_auth *auth)
{
    const char *path = req->path != NULL && req->path[0] != '\0' ? req->path : "/";
    const char *payload;
    size_t payload_len;
    kms_err rc;

    kms_buf_reset(out);
    for (const char *m = req->method; *m != '\0'; m++) {
        char c = *m;

        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        rc = kms_buf_append_char(out, c);
        if (rc != KMS_OK)
            return rc;
    }
    rc = kms_buf_append_char(out, '\n');
    if (rc != KMS_OK)
        return rc;
    rc = kms_buf_append_str(out, path);
    if (rc != KMS_OK)
        return rc;
    rc = kms_buf_append_char(out, '\n');
    if (rc != KMS_OK)
        return rc;
    /* Query-string parameters only: a form body is covered by the content hash instead. */
    rc = kms_sig_canonical_query(out, p, KMS_PARAM_QUERY, NULL);
    if (rc != KMS_OK)
        return rc;
    rc = kms_buf_append_char(out, '\n');
    if (rc != KMS_OK)
        return rc;
    for (size_t i = 0; i < auth->header_count; i++) {
        rc = kms_v3_append_header(out, req, auth->signed_headers + auth->header_off[i],
                                  auth->header_len[i]);
        if (rc != KMS_OK)
            return rc;
    }
    rc = kms_buf_append_char(out, '\n');
    if (rc != KMS_OK)
        return rc;
    rc = kms_buf_append(out, auth->signed_headers, auth->signed_headers_len);
    if (rc != KMS_OK)
        return rc;
    rc = kms_buf_append_char(out, '\n');
    if (rc != KMS_OK)
        return rc;
    /* HashedPayload as the client declared it; kms_sig_v3_check compared it with the body. */
    payload = kms_request_header(req, kms_v3_content_header(req, auth));
    if (payload == NULL)
        return KMS_E_INCOMPLETE_SIGNATURE;
    payload_len = strlen(payload);
    kms_v3_trim(&payload, &payload_len);
    return kms_buf_append(out, payload, payload_len);
}

kms_err kms_sig_v3_string_to_sign(struct kms_buf *sts, struct kms_buf *canonical,
                                  const struct kms_request *req, const struct kms_params *p,
                                  const struct kms_sig_v3_auth *auth)
{
    /* Without a caller's buffer the CanonicalRequest is built in sts, hashed, then replaced. */
    struct kms_buf *creq = canonical != NULL ? canonical : sts;
    uint8_t digest[KMS_SIG_DIGEST_MAX];
    char hex[2 * KMS_SIG_DIGEST_MAX + 1];
    size_t digest_len = 0;
    kms_err rc;

    rc = kms_v3_canonical_request(creq, req, p, auth);
    if (rc != KMS_OK)
        return rc;
    rc = kms_sig_digest(kms_v3_hash(auth->alg), creq->data, creq->len, digest, &digest_len);
    if (rc != KMS_OK)
        return rc;
    kms_hex_encode(digest, digest_len, hex);
    kms_buf_reset(sts);
    return kms_buf_printf(sts, "%s\n%s", kms_sig_v3_alg_name(auth->alg), hex);
}

kms_err kms_sig_v3_sign(enum kms_sig_v3_alg alg, const char *secret, size_t secret_len,
                        const char *sts, size_t sts_len, char out[KMS_SIG_V3_HEX_LEN + 1])
{
    uint8_t mac[KMS_SIG_DIGEST_MAX];
    size_t mac_len = 0;
    kms_err rc;

    rc = kms_sig_hmac(kms_v3_hash(alg), secret, secret_len, sts, sts_len, mac, &mac_len);
    if (rc != KMS_OK)
        return rc;
    if (mac_len != KMS_SIG_V3_HEX_LEN / 2)
        return KMS_E_INTERNAL;
    kms_hex_encode(mac, mac_len, out);
    return KMS_OK;
}
