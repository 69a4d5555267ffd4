/*
 * fuzz_request.c - the whole request path in process: kms_api_serve (parameters -> Action and
 * Version -> V1 or V3 authentication -> handler -> JSON or XML envelope) against a real store in
 * a temporary data directory (SQLite, the software keystore with its own master key, an admin
 * access key), with the handlers reached through properly signed requests.
 *
 * Input, one item per line (first word says which; unknown lines are ignored):
 *   m <method>      (default POST)          p <path>        (default /)
 *   q <query text>  raw, joined with "&"    b <body text>   raw form body, joined with "&"
 *   h <name>:<value>  a header (name lower-cased, as the front end does)
 *   a <Action>      added as Action= (V1) or x-acs-action (V3) unless already given
 *   s <mode>        v1 (default) | v3 | sm3 | none | bad | old | replay
 *   t               the front end flagged the request as too large
 * Placeholders in q and b lines are replaced, percent-encoded, by fixtures made at start:
 * $K0..$K5 key ids (AES_256, SM4, RSA_2048 encrypt, EC_P256 sign, EC_SM2 encrypt, EXTERNAL
 * AES_256 pending import), $V0..$V4 their versions, $A0 an alias of $K0, $B0 a CiphertextBlob of
 * $K0, $B1 one bound to EncryptionContext {"a":"b"}, $S0 a secret name, $N a fresh unique name.
 * An input may hold up to four requests separated by a line "n"; later ones may use what earlier
 * ones returned: $k the last KeyId, $v KeyVersionId, $b CiphertextBlob, $t ImportToken, and $e 32
 * bytes of key material wrapped (RSAES_OAEP_SHA_256, or SM2PKE) under the last PublicKey.
 *
 * Signing: the harness adds whatever common parameter (Version, Timestamp, SignatureNonce,
 * AccessKeyId, SignatureMethod, SignatureVersion) or V3 header (host, x-acs-version, x-acs-date,
 * x-acs-signature-nonce, x-acs-content-sha256/-sm3, content-type for a body) the input lacks, and
 * computes the real Signature / Authorization with the project's own signing code. "none" sends
 * the request as the input wrote it, "bad" corrupts the signature, "old" signs with a timestamp
 * two hours old, "replay" sends a signed request twice.
 *
 * Asserts, for every response: a body of the announced type that parses (JSON: cJSON; XML: the
 * checker of support.c), with RequestId equal to the response's; errors carry Code, Message and
 * (JSON) HttpStatus equal to the status, successes no Code (pop-core reads any Code as an error);
 * bodies are UTF-8; no status of 500 or above except 503 ServiceUnavailableTemporary. Security: a
 * request the harness did not sign correctly (modes none and bad, or a Signature / Authorization
 * the input brought itself) or signed with a stale timestamp never succeeds, and a replayed
 * request that succeeded once is refused with SignatureNonceUsed.
 */
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keystore/keystore.h"
#include "kms/api.h"
#include "kms/auth.h"
#include "kms/clock.h"
#include "kms/config.h"
#include "kms/crypto.h"
#include "kms/http.h"
#include "kms/log.h"
#include "kms/store.h"
#include "support.h"

#define FR_ADMIN_ID      "FuzzAdminAccessKey01"
#define FR_ADMIN_SECRET  "FuzzAdminSecret0123456789abcdef"
#define FR_MAX_HEADERS   64
#define FR_KEYS          6
#define FR_REFRESH_EVERY 256
#define FR_MAX_REQUESTS  4

enum fr_mode { FR_V1, FR_V3, FR_SM3, FR_NONE, FR_BAD, FR_OLD, FR_REPLAY };

struct fr_req {
    struct kms_buf method, path, query, body, action;
    struct kms_header headers[FR_MAX_HEADERS];
    size_t header_count;
    enum fr_mode mode;
    bool too_large;
    bool stale;     /* the harness put a two-hour-old Timestamp in */
    bool signed_ok; /* the harness attached a correct signature (none, bad: it did not) */
};

/* What a response said, for the security checks. */
struct fr_result {
    int status;
    char code[96];
};

static struct kms_config fr_cfg;
static char fr_dir[] = "/dev/shm/kmsd-fuzz-XXXXXX";
static char fr_nonce_prefix[17];
static uint64_t fr_counter;
/* What earlier requests of the same input returned ($k $v $b $t $e), reset for every input. */
static struct {
    char key[KMS_ID_MAX];
    char version[KMS_UUID_LEN];
    char blob[1024];
    char token[2048];
    char wrapped[2048]; /* 32 bytes of key material wrapped under the last PublicKey */
} fr_cap;
static struct {
    char key[FR_KEYS][KMS_ID_MAX];
    char version[FR_KEYS][KMS_UUID_LEN];
    char blob[2][256];
} fr_fx;

/* ---- building requests ---- */

static void fr_req_free(struct fr_req *r)
{
    kms_buf_free(&r->method);
    kms_buf_free(&r->path);
    kms_buf_free_secret(&r->query);
    kms_buf_free_secret(&r->body);
    kms_buf_free(&r->action);
    for (size_t i = 0; i < r->header_count; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    memset(r, 0, sizeof(*r));
}

static const char *fr_header(const struct fr_req *r, const char *name)
{
    for (size_t i = 0; i < r->header_count; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static void fr_add_header(struct fr_req *r, const char *name, size_t name_len, const char *value,
                          size_t value_len)
{
    char *n;

    if (r->header_count == FR_MAX_HEADERS)
        return;
    n = kms_strndup(name, name_len);
    FUZZ_CHECK(n != NULL, "out of memory");
    for (char *c = n; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    r->headers[r->header_count].name = n;
    r->headers[r->header_count].value = kms_strndup(value, value_len);
    FUZZ_CHECK(r->headers[r->header_count].value != NULL, "out of memory");
    r->header_count++;
}

static void fr_add_header_if_absent(struct fr_req *r, const char *name, const char *value)
{
    if (fr_header(r, name) == NULL)
        fr_add_header(r, name, strlen(name), value, strlen(value));
}

/* Appends raw text with the placeholders replaced by percent-encoded fixture values. */
static void fr_append_substituted(struct kms_buf *out, const char *s, size_t len)
{
    if (out->len > 0)
        kms_buf_append_char(out, '&');
    for (size_t i = 0; i < len; i++) {
        const char *value = NULL;
        char fresh[40];
        size_t skip = 0;

        if (s[i] == '$' && i + 1 < len) {
            char kind = s[i + 1];
            int n = i + 2 < len ? s[i + 2] - '0' : -1;

            skip = 3;
            if (kind == 'K' && n >= 0 && n < FR_KEYS)
                value = fr_fx.key[n];
            else if (kind == 'V' && n >= 0 && n < FR_KEYS)
                value = fr_fx.version[n];
            else if (kind == 'B' && (n == 0 || n == 1))
                value = fr_fx.blob[n];
            else if (kind == 'A' && n == 0)
                value = "alias/fuzz0";
            else if (kind == 'S' && n == 0)
                value = "fuzz-secret-0";
            else if (kind == 'k' || kind == 'v' || kind == 'b' || kind == 't' || kind == 'e') {
                value = kind == 'k'   ? fr_cap.key
                        : kind == 'v' ? fr_cap.version
                        : kind == 'b' ? fr_cap.blob
                        : kind == 't' ? fr_cap.token
                                      : fr_cap.wrapped;
                skip = 2;
            } else if (kind == 'N') {
                snprintf(fresh, sizeof(fresh), "fz%s%llu", fr_nonce_prefix,
                         (unsigned long long)++fr_counter);
                value = fresh;
                skip = 2;
            }
        }
        if (value != NULL) {
            kms_percent_encode(out, value, strlen(value));
            i += skip - 1;
        } else {
            kms_buf_append_char(out, s[i]);
        }
    }
}

static bool fr_word(const char *line, size_t len, const char *word, const char **rest,
                    size_t *rest_len)
{
    size_t n = strlen(word);

    if (len < n || memcmp(line, word, n) != 0 || (len > n && line[n] != ' '))
        return false;
    *rest = len > n ? line + n + 1 : line + len;
    *rest_len = len > n ? len - n - 1 : 0;
    return true;
}

/* Reads one request, up to a line "n" or the end; returns the bytes consumed. */
static size_t fr_read(struct fr_req *r, const uint8_t *data, size_t size)
{
    static const struct {
        const char *name;
        enum fr_mode mode;
    } modes[] = {{"v1", FR_V1},   {"v3", FR_V3},   {"sm3", FR_SM3},      {"none", FR_NONE},
                 {"bad", FR_BAD}, {"old", FR_OLD}, {"replay", FR_REPLAY}};
    struct fuzz_lines lines;
    const char *line, *v;
    size_t len, vlen;

    fuzz_lines_init(&lines, data, size);
    while (fuzz_lines_next(&lines, &line, &len)) {
        if (len == 1 && line[0] == 'n')
            break;
        if (fr_word(line, len, "m", &v, &vlen)) {
            kms_buf_reset(&r->method);
            kms_buf_append(&r->method, v, vlen);
        } else if (fr_word(line, len, "p", &v, &vlen)) {
            kms_buf_reset(&r->path);
            kms_buf_append(&r->path, v, vlen);
        } else if (fr_word(line, len, "q", &v, &vlen)) {
            fr_append_substituted(&r->query, v, vlen);
        } else if (fr_word(line, len, "b", &v, &vlen)) {
            fr_append_substituted(&r->body, v, vlen);
        } else if (fr_word(line, len, "a", &v, &vlen)) {
            kms_buf_reset(&r->action);
            kms_buf_append(&r->action, v, vlen);
        } else if (fr_word(line, len, "h", &v, &vlen)) {
            const char *colon = memchr(v, ':', vlen);

            if (colon != NULL && colon > v)
                fr_add_header(r, v, (size_t)(colon - v), colon + 1, vlen - (size_t)(colon - v) - 1);
        } else if (fr_word(line, len, "s", &v, &vlen)) {
            for (size_t i = 0; i < KMS_ARRAY_LEN(modes); i++)
                if (strlen(modes[i].name) == vlen && memcmp(modes[i].name, v, vlen) == 0)
                    r->mode = modes[i].mode;
        } else if (fr_word(line, len, "t", &v, &vlen)) {
            r->too_large = true;
        }
    }
    /* The front end hands over C strings: a NUL inside cannot arrive, nor an empty method. */
    if (r->method.len == 0 || strlen(r->method.data) != r->method.len) {
        kms_buf_reset(&r->method);
        kms_buf_append_str(&r->method, "POST");
    }
    if (r->path.len == 0 || strlen(r->path.data) != r->path.len) {
        kms_buf_reset(&r->path);
        kms_buf_append_str(&r->path, "/");
    }
    if (r->action.len > 0 && strlen(r->action.data) != r->action.len)
        kms_buf_reset(&r->action);
    return (size_t)(lines.fl_p - (const char *)data);
}

static bool fr_is_form(const struct fr_req *r)
{
    const char *ct = fr_header(r, "content-type");

    return ct != NULL && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0;
}

static void fr_view(const struct fr_req *r, struct kms_request *req)
{
    memset(req, 0, sizeof(*req));
    req->method = r->method.data;
    req->path = r->path.data;
    req->query = r->query.data ? r->query.data : "";
    req->query_len = r->query.len;
    req->body = (const unsigned char *)r->body.data;
    req->body_len = r->body.len;
    req->headers = (struct kms_header *)r->headers;
    req->header_count = r->header_count;
    req->too_large = r->too_large;
    snprintf(req->peer_ip, sizeof(req->peer_ip), "127.0.0.1");
}

/* The parameter map dispatch will build; false when it cannot be built (then sent unsigned). */
static bool fr_params(const struct fr_req *r, struct kms_params *p)
{
    kms_err rc =
        kms_params_parse(p, r->query.data ? r->query.data : "", r->query.len, KMS_PARAM_QUERY);

    if (rc == KMS_OK && strcmp(r->method.data, "POST") == 0 && r->body.len > 0 && fr_is_form(r))
        rc = kms_params_parse(p, r->body.data, r->body.len, KMS_PARAM_BODY);
    if (rc == KMS_OK)
        rc = kms_params_finish(p, NULL);
    return rc == KMS_OK;
}

static void fr_add_param(struct kms_buf *q, const struct kms_params *p, const char *name,
                         const char *value)
{
    if (kms_params_find(p, name) != NULL)
        return;
    if (q->len > 0)
        kms_buf_append_char(q, '&');
    kms_buf_append_str(q, name);
    kms_buf_append_char(q, '=');
    kms_percent_encode(q, value, strlen(value));
}

static void fr_nonce(char out[48])
{
    snprintf(out, 48, "%s%016llx", fr_nonce_prefix, (unsigned long long)++fr_counter);
}

static void fr_sign_v1(struct fr_req *r)
{
    struct kms_params p = {0};
    struct kms_buf sts = {0};
    char ts[KMS_TIME_LEN], nonce[48], sig[KMS_SIG_V1_LEN + 1];

    if (r->body.len > 0 && strcmp(r->method.data, "POST") == 0)
        fr_add_header_if_absent(r, "content-type", "application/x-www-form-urlencoded");
    if (!fr_params(r, &p))
        goto out;
    kms_time_format(time(NULL) - (r->mode == FR_OLD ? 7200 : 0), ts);
    fr_nonce(nonce);
    if (r->action.len > 0)
        fr_add_param(&r->query, &p, "Action", r->action.data);
    fr_add_param(&r->query, &p, "Version", "2016-01-20");
    r->stale = r->mode == FR_OLD && kms_params_find(&p, "Timestamp") == NULL;
    fr_add_param(&r->query, &p, "Timestamp", ts);
    fr_add_param(&r->query, &p, "SignatureNonce", nonce);
    fr_add_param(&r->query, &p, "AccessKeyId", FR_ADMIN_ID);
    fr_add_param(&r->query, &p, "SignatureMethod", "HMAC-SHA1");
    fr_add_param(&r->query, &p, "SignatureVersion", "1.0");
    kms_params_free(&p);
    if (!fr_params(r, &p) || kms_params_find(&p, "Signature") != NULL)
        goto out;
    FUZZ_CHECK(kms_sig_v1_string_to_sign(&sts, r->method.data, &p) == KMS_OK, "v1 sts");
    FUZZ_CHECK(kms_sig_v1_sign(FR_ADMIN_SECRET, strlen(FR_ADMIN_SECRET), sts.data, sts.len, sig) ==
                   KMS_OK,
               "v1 sign");
    if (r->mode == FR_BAD)
        sig[0] = sig[0] == 'A' ? 'B' : 'A';
    r->signed_ok = r->mode != FR_BAD;
    kms_buf_append_str(&r->query, r->query.len > 0 ? "&Signature=" : "Signature=");
    kms_percent_encode(&r->query, sig, strlen(sig));
out:
    kms_params_free(&p);
    kms_buf_free(&sts);
}

static int fr_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void fr_sign_v3(struct fr_req *r)
{
    bool sm3 = r->mode == FR_SM3;
    const char *alg = sm3 ? "ACS3-HMAC-SM3" : "ACS3-HMAC-SHA256";
    struct kms_params p = {0};
    struct kms_buf auth_text = {0}, sts = {0};
    struct kms_sig_v3_auth auth;
    struct kms_request req;
    char ts[KMS_TIME_LEN], nonce[48], hex[2 * EVP_MAX_MD_SIZE + 1], sig[KMS_SIG_V3_HEX_LEN + 1];
    const char *names[FR_MAX_HEADERS];
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    size_t n = 0;
    char *sig_at;

    kms_time_format(time(NULL), ts);
    fr_nonce(nonce);
    if (r->body.len > 0 && strcmp(r->method.data, "POST") == 0)
        fr_add_header_if_absent(r, "content-type", "application/x-www-form-urlencoded");
    fr_add_header_if_absent(r, "host", "kms.fuzz.local");
    fr_add_header_if_absent(r, "x-acs-version", "2016-01-20");
    fr_add_header_if_absent(r, "x-acs-action", r->action.len > 0 ? r->action.data : "ListKeys");
    fr_add_header_if_absent(r, "x-acs-date", ts);
    fr_add_header_if_absent(r, "x-acs-signature-nonce", nonce);
    EVP_Digest(r->body.data ? r->body.data : "", r->body.len, digest, &digest_len,
               sm3 ? EVP_sm3() : EVP_sha256(), NULL);
    kms_hex_encode(digest, digest_len, hex);
    fr_add_header_if_absent(r, sm3 ? "x-acs-content-sm3" : "x-acs-content-sha256", hex);

    /* Every header but authorization is signed, each name once, in order. */
    for (size_t i = 0; i < r->header_count; i++) {
        bool seen = strcmp(r->headers[i].name, "authorization") == 0;

        for (size_t k = 0; k < n && !seen; k++)
            seen = strcmp(names[k], r->headers[i].name) == 0;
        if (!seen)
            names[n++] = r->headers[i].name;
    }
    qsort(names, n, sizeof(names[0]), fr_name_cmp);
    kms_buf_printf(&auth_text, "%s Credential=%s,SignedHeaders=", alg, FR_ADMIN_ID);
    for (size_t k = 0; k < n; k++) {
        if (k > 0)
            kms_buf_append_char(&auth_text, ';');
        kms_buf_append_str(&auth_text, names[k]);
    }
    kms_buf_append_str(&auth_text, ",Signature=");
    kms_buf_printf(&auth_text, "%064d", 0);
    /* Computed over what will be sent; a request the signer cannot sign goes out as it is. */
    if (fr_params(r, &p) && kms_sig_v3_parse(auth_text.data, &auth) == KMS_OK) {
        fr_view(r, &req);
        if (kms_sig_v3_string_to_sign(&sts, NULL, &req, &p, &auth) == KMS_OK &&
            kms_sig_v3_sign(auth.alg, FR_ADMIN_SECRET, strlen(FR_ADMIN_SECRET), sts.data, sts.len,
                            sig) == KMS_OK) {
            if (r->mode == FR_BAD)
                sig[0] = sig[0] == '0' ? '1' : '0';
            sig_at = auth_text.data + auth_text.len - KMS_SIG_V3_HEX_LEN;
            memcpy(sig_at, sig, KMS_SIG_V3_HEX_LEN);
            r->signed_ok = r->mode != FR_BAD && fr_header(r, "authorization") == NULL;
        }
    }
    fr_add_header_if_absent(r, "authorization", auth_text.data);
    kms_params_free(&p);
    kms_buf_free(&auth_text);
    kms_buf_free(&sts);
}

/* ---- responses ---- */

static void fr_check_json(const struct kms_response *resp, struct fr_result *res)
{
    cJSON *root = cJSON_ParseWithLengthOpts(resp->body, resp->body_len + 1, NULL, true);
    const cJSON *id, *code, *msg, *status;

    FUZZ_CHECK(cJSON_IsObject(root), "status %d: body is not a JSON object: %.300s", resp->status,
               resp->body);
    id = cJSON_GetObjectItemCaseSensitive(root, "RequestId");
    code = cJSON_GetObjectItemCaseSensitive(root, "Code");
    FUZZ_CHECK(cJSON_IsString(id) && strcmp(id->valuestring, resp->request_id) == 0,
               "RequestId missing or not the response's: %.300s", resp->body);
    if (resp->status == 200) {
        FUZZ_CHECK(code == NULL, "a success body carries Code: %.300s", resp->body);
    } else {
        msg = cJSON_GetObjectItemCaseSensitive(root, "Message");
        status = cJSON_GetObjectItemCaseSensitive(root, "HttpStatus");
        FUZZ_CHECK(cJSON_IsString(code) && code->valuestring[0] != '\0' && cJSON_IsString(msg) &&
                       msg->valuestring[0] != '\0',
                   "error without Code/Message: %.300s", resp->body);
        FUZZ_CHECK(cJSON_IsNumber(status) && status->valueint == resp->status,
                   "HttpStatus does not match %d: %.300s", resp->status, resp->body);
        snprintf(res->code, sizeof(res->code), "%s", code->valuestring);
    }
    cJSON_Delete(root);
}

static void fr_check_xml(const struct kms_response *resp, struct fr_result *res)
{
    const char *why = NULL, *v;
    size_t n = 0;

    FUZZ_CHECK(fuzz_xml_well_formed(resp->body, resp->body_len, NULL, &why),
               "status %d: XML body not well-formed (%s): %.300s", resp->status, why, resp->body);
    v = fuzz_xml_leaf(resp->body, resp->body_len, "RequestId", &n);
    FUZZ_CHECK(v != NULL && n == strlen(resp->request_id) && memcmp(v, resp->request_id, n) == 0,
               "XML RequestId missing or wrong: %.300s", resp->body);
    v = fuzz_xml_leaf(resp->body, resp->body_len, "Code", &n);
    if (resp->status == 200) {
        FUZZ_CHECK(v == NULL, "a success body carries Code: %.300s", resp->body);
    } else {
        FUZZ_CHECK(v != NULL && n > 0 && fuzz_xml_leaf(resp->body, resp->body_len, "Message", &n),
                   "XML error without Code/Message: %.300s", resp->body);
        v = fuzz_xml_leaf(resp->body, resp->body_len, "Code", &n);
        snprintf(res->code, sizeof(res->code), "%.*s", (int)(n < 95 ? n : 95), v);
    }
}

static struct fr_result fr_serve(const struct fr_req *r, cJSON **json_out)
{
    struct kms_request req;
    struct kms_response resp;
    struct fr_result res = {0};

    fr_view(r, &req);
    memset(&resp, 0, sizeof(resp));
    kms_api_serve(&req, &resp);
    res.status = resp.status;
    FUZZ_CHECK(resp.body != NULL && resp.body_len == strlen(resp.body) &&
                   kms_utf8_valid(resp.body, resp.body_len),
               "body missing, with a NUL inside or not UTF-8");
    FUZZ_CHECK(resp.content_type != NULL, "no content type");
    if (strncmp(resp.content_type, "text/xml", 8) == 0)
        fr_check_xml(&resp, &res);
    else
        fr_check_json(&resp, &res);
    FUZZ_CHECK(resp.status < 500 ||
                   (resp.status == 503 && strcmp(res.code, "ServiceUnavailableTemporary") == 0),
               "status %d for client input: %.300s", resp.status, resp.body);
    FUZZ_CHECK(resp.status == 200 || resp.status == 400 || resp.status == 403 ||
                   resp.status == 404 || resp.status == 409 || resp.status == 429 ||
                   resp.status == 503,
               "unexpected status %d", resp.status);
    /* KMSD_FUZZ_VERBOSE=1 shows what each input got, to check that seeds reach the handlers. */
    if (getenv("KMSD_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "fuzz_request: %d %s %.160s\n", resp.status, res.code, resp.body);
    if (json_out != NULL)
        *json_out = cJSON_Parse(resp.body);
    OPENSSL_cleanse(resp.body, resp.body_len);
    free(resp.body);
    return res;
}

/* ---- fixtures ---- */

/* A signed V1 call with plain name/value pairs (NULL-terminated); returns the parsed body. */
static cJSON *fr_call(int want_status, const char *action, ...)
{
    struct fr_req r;
    struct fr_result res;
    cJSON *body = NULL;
    const char *name;
    va_list ap;

    memset(&r, 0, sizeof(r));
    kms_buf_append_str(&r.method, "POST");
    kms_buf_append_str(&r.path, "/");
    kms_buf_append_str(&r.action, action);
    va_start(ap, action);
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);

        if (r.query.len > 0)
            kms_buf_append_char(&r.query, '&');
        kms_buf_append_str(&r.query, name);
        kms_buf_append_char(&r.query, '=');
        kms_percent_encode(&r.query, value, strlen(value));
    }
    va_end(ap);
    fr_sign_v1(&r);
    res = fr_serve(&r, &body);
    FUZZ_CHECK(want_status == 0 || res.status == want_status, "fixture %s: status %d (%s)", action,
               res.status, res.code);
    fr_req_free(&r);
    return body;
}

static const char *fr_str(const cJSON *root, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, a);

    if (b != NULL)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    FUZZ_CHECK(cJSON_IsString(x), "fixture: no %s%s%s", a, b ? "." : "", b ? b : "");
    return x->valuestring;
}

static void fr_make_fixtures(void)
{
    static const char *const specs[FR_KEYS][3] = {
        {"Aliyun_AES_256", "ENCRYPT/DECRYPT", "Aliyun_KMS"},
        {"Aliyun_SM4", "ENCRYPT/DECRYPT", "Aliyun_KMS"},
        {"RSA_2048", "ENCRYPT/DECRYPT", "Aliyun_KMS"},
        {"EC_P256", "SIGN/VERIFY", "Aliyun_KMS"},
        {"EC_SM2", "ENCRYPT/DECRYPT", "Aliyun_KMS"},
        {"Aliyun_AES_256", "ENCRYPT/DECRYPT", "EXTERNAL"},
    };
    cJSON *b;

    for (int i = 0; i < FR_KEYS; i++) {
        const cJSON *versions;

        b = fr_call(200, "CreateKey", "KeySpec", specs[i][0], "KeyUsage", specs[i][1], "Origin",
                    specs[i][2], "Description", "fuzz fixture", NULL);
        snprintf(fr_fx.key[i], sizeof(fr_fx.key[i]), "%s", fr_str(b, "KeyMetadata", "KeyId"));
        cJSON_Delete(b);
        b = fr_call(200, "ListKeyVersions", "KeyId", fr_fx.key[i], NULL);
        versions = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(b, "KeyVersions"), "KeyVersion");
        if (cJSON_GetArraySize(versions) > 0)
            snprintf(fr_fx.version[i], sizeof(fr_fx.version[i]), "%s",
                     fr_str(cJSON_GetArrayItem(versions, 0), "KeyVersionId", NULL));
        cJSON_Delete(b);
    }
    cJSON_Delete(
        fr_call(200, "CreateAlias", "AliasName", "alias/fuzz0", "KeyId", fr_fx.key[0], NULL));
    b = fr_call(200, "Encrypt", "KeyId", fr_fx.key[0], "Plaintext", "aGVsbG8gZnV6eg==", NULL);
    snprintf(fr_fx.blob[0], sizeof(fr_fx.blob[0]), "%s", fr_str(b, "CiphertextBlob", NULL));
    cJSON_Delete(b);
    b = fr_call(200, "Encrypt", "KeyId", fr_fx.key[0], "Plaintext",
                "aGVsbG8gZnV6eg==", "EncryptionContext", "{\"a\":\"b\"}", NULL);
    snprintf(fr_fx.blob[1], sizeof(fr_fx.blob[1]), "%s", fr_str(b, "CiphertextBlob", NULL));
    cJSON_Delete(b);
    cJSON_Delete(fr_call(200, "CreateSecret", "SecretName", "fuzz-secret-0", "SecretData", "s3cr3t",
                         "VersionId", "v1", NULL));
}

/* Puts the fixtures back in shape after the fuzzer disabled, scheduled or deleted them. */
static void fr_refresh_fixtures(void)
{
    for (int i = 0; i < FR_KEYS - 1; i++) {
        cJSON_Delete(fr_call(0, "CancelKeyDeletion", "KeyId", fr_fx.key[i], NULL));
        cJSON_Delete(fr_call(0, "EnableKey", "KeyId", fr_fx.key[i], NULL));
    }
    cJSON_Delete(
        fr_call(0, "CreateAlias", "AliasName", "alias/fuzz0", "KeyId", fr_fx.key[0], NULL));
    cJSON_Delete(
        fr_call(0, "UpdateAlias", "AliasName", "alias/fuzz0", "KeyId", fr_fx.key[0], NULL));
    cJSON_Delete(fr_call(0, "RestoreSecret", "SecretName", "fuzz-secret-0", NULL));
}

static int fr_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void fr_cleanup(void)
{
    kms_api_shutdown();
    kms_store_shutdown();
    kms_keystores_close();
    nftw(fr_dir, fr_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void fr_init(void)
{
    char err[256], db[PATH_MAX + 16];
    uint8_t rnd[8];

    if (mkdtemp(fr_dir) == NULL) {
        /* No /dev/shm: the system temporary directory does too (slower commits). */
        snprintf(fr_dir, sizeof(fr_dir), "/tmp/kmsd-fuzz-XXXXXX");
        FUZZ_CHECK(mkdtemp(fr_dir) != NULL, "cannot make a temporary data directory");
    }
    kms_log_set_quiet(1);
    setenv("KMSD_ADMIN_ACCESS_KEY_ID", FR_ADMIN_ID, 1);
    setenv("KMSD_ADMIN_ACCESS_KEY_SECRET", FR_ADMIN_SECRET, 1);
    kms_config_defaults(&fr_cfg);
    FUZZ_CHECK(kms_config_set(&fr_cfg, "server", "data_dir", fr_dir, err, sizeof(err)), "%s", err);
    /* The replay cache is allocated up front: a smaller one keeps the harness light. */
    FUZZ_CHECK(
        kms_config_set(&fr_cfg, "auth", "replay_cache_capacity", "1000000", err, sizeof(err)), "%s",
        err);
    FUZZ_CHECK(kms_config_finish(&fr_cfg, err, sizeof(err)), "%s", err);
    FUZZ_CHECK(kms_aead_init() == KMS_OK, "aead init");
    FUZZ_CHECK(kms_keystores_open(&fr_cfg) == KMS_OK, "keystore");
    snprintf(db, sizeof(db), "%s/kmsd.db", fr_dir);
    FUZZ_CHECK(kms_store_init(db) == KMS_OK && kms_store_migrate() == KMS_OK, "store");
    FUZZ_CHECK(kms_credentials_bootstrap(kms_store_thread(), kms_clock_now()) == KMS_OK, "admin");
    FUZZ_CHECK(kms_api_init(&fr_cfg) == KMS_OK, "api init");
    atexit(fr_cleanup);
    FUZZ_CHECK(RAND_bytes(rnd, sizeof(rnd)) == 1, "random");
    kms_hex_encode(rnd, sizeof(rnd), fr_nonce_prefix);
    fr_make_fixtures();
}

static void fr_capture_str(const cJSON *v, char *out, size_t size)
{
    if (cJSON_IsString(v) && strlen(v->valuestring) < size)
        snprintf(out, size, "%s", v->valuestring);
}

/* Remembers ids, blobs and import parameters a successful response returned. */
static void fr_capture(const cJSON *body)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(body, "KeyMetadata");
    const cJSON *pub = cJSON_GetObjectItemCaseSensitive(body, "PublicKey");

    fr_capture_str(cJSON_GetObjectItemCaseSensitive(body, "KeyId"), fr_cap.key, sizeof(fr_cap.key));
    fr_capture_str(cJSON_GetObjectItemCaseSensitive(meta, "KeyId"), fr_cap.key, sizeof(fr_cap.key));
    fr_capture_str(cJSON_GetObjectItemCaseSensitive(body, "KeyVersionId"), fr_cap.version,
                   sizeof(fr_cap.version));
    fr_capture_str(cJSON_GetObjectItemCaseSensitive(
                       cJSON_GetObjectItemCaseSensitive(body, "KeyVersion"), "KeyVersionId"),
                   fr_cap.version, sizeof(fr_cap.version));
    fr_capture_str(cJSON_GetObjectItemCaseSensitive(body, "CiphertextBlob"), fr_cap.blob,
                   sizeof(fr_cap.blob));
    fr_capture_str(cJSON_GetObjectItemCaseSensitive(body, "ImportToken"), fr_cap.token,
                   sizeof(fr_cap.token));
    /* GetParametersForImport: wrap 32 bytes of material as a BYOK client would. */
    if (cJSON_IsString(pub) && strlen(pub->valuestring) < 2048) {
        size_t len = strlen(pub->valuestring), der_len = 0;
        uint8_t der[2048], material[32];
        struct evp_pkey_st *pkey = NULL;
        enum kms_key_spec spec = KMS_SPEC_NONE;
        struct kms_buf ct = {0};

        memset(material, 0x5a, sizeof(material));
        if (kms_b64_decode(pub->valuestring, len, der, &der_len) &&
            kms_pkey_parse_public(der, der_len, &pkey, &spec) == KMS_OK &&
            kms_pkey_encrypt(pkey,
                             spec == KMS_SPEC_EC_SM2 ? KMS_PK_SM2PKE : KMS_PK_RSAES_OAEP_SHA_256,
                             material, sizeof(material), &ct) == KMS_OK &&
            KMS_B64_ENCODED_LEN(ct.len) < sizeof(fr_cap.wrapped))
            kms_b64_encode((uint8_t *)ct.data, ct.len, fr_cap.wrapped);
        kms_pkey_free(pkey);
        kms_buf_free(&ct);
    }
}

/* Signs (or not) and serves one request of the input, with the security checks. */
static void fr_one(struct fr_req *r)
{
    struct fr_result res, again;
    cJSON *body = NULL;

    switch (r->mode) {
    case FR_V3:
    case FR_SM3:
        fr_sign_v3(r);
        break;
    case FR_NONE:
        break;
    default:
        fr_sign_v1(r);
        break;
    }
    res = fr_serve(r, &body);
    /* Without a correct signature from the harness (none, bad, or one the input supplied
     * itself), or with a stale timestamp, nothing may succeed. */
    if (!r->signed_ok || r->stale)
        FUZZ_CHECK(res.status != 200, "an unsigned, badly signed or stale request succeeded");
    if (r->mode == FR_REPLAY && res.status == 200) {
        again = fr_serve(r, NULL);
        FUZZ_CHECK(again.status == 400 && strcmp(again.code, "SignatureNonceUsed") == 0,
                   "a replayed request was not refused: %d %s", again.status, again.code);
    }
    if (res.status == 200 && body != NULL)
        fr_capture(body);
    cJSON_Delete(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    static unsigned runs;
    size_t off = 0;

    if (!ready) {
        fr_init();
        ready = true;
    }
    if (++runs % FR_REFRESH_EVERY == 0)
        fr_refresh_fixtures();
    memset(&fr_cap, 0, sizeof(fr_cap));
    /* Up to FR_MAX_REQUESTS requests separated by lines "n", later ones using what earlier
     * ones returned. */
    for (int i = 0; i < FR_MAX_REQUESTS && (i == 0 || off < size); i++) {
        struct fr_req r;

        memset(&r, 0, sizeof(r));
        off += fr_read(&r, data + off, size - off);
        fr_one(&r);
        fr_req_free(&r);
    }
    return 0;
}
