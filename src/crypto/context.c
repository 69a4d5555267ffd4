/*
 * context.c - the EncryptionContext: parsing its JSON form, collecting its flattened form, and
 * the canonical bytes that go into the AEAD's AAD (after the blob header).
 *
 * The value rule is protocol.md §2.2: a JSON object whose member values are strings, numbers or
 * booleans; numbers and booleans count as their JSON text ({"n":1} is {"n":"1"}). A dedicated
 * parser rather than cJSON, because cJSON turns numbers into doubles (losing "1.0" vs "1") and
 * silently keeps duplicate keys, and the grammar needed here is one flat object.
 *
 * Canonical form: pairs in key byte order, each u32be(len) ‖ key ‖ u32be(len) ‖ value. The length
 * prefixes make the encoding injective ({"a":"bc"} and {"ab":"c"} differ), and sorting makes it
 * independent of the order the client sent. Pairs are kept sorted on insertion, which also finds
 * duplicate keys (after unescaping) without a separate pass.
 */
#include <stdlib.h>
#include <string.h>

#include "kms/crypto.h"

/* Per-pair overhead of the canonical form: two u32 lengths. */
#define KMS_CONTEXT_PAIR_OVERHEAD 8

/* ---- the pair set ---- */

static int kms_context_keycmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

kms_err kms_context_add(struct kms_context *ctx, const char *key, size_t key_len, const char *value,
                        size_t value_len)
{
    size_t lo = 0, hi = ctx->count, need;
    struct kms_context_pair *pair;
    char *mem;

    if (key_len == 0 || key_len > KMS_CONTEXT_MAX_LEN || value_len > KMS_CONTEXT_MAX_LEN)
        return KMS_E_INVALID_PARAMETER;
    need = KMS_CONTEXT_PAIR_OVERHEAD + key_len + value_len;
    if (ctx->ctx_canonical_len + need > KMS_CONTEXT_MAX_LEN)
        return KMS_E_INVALID_PARAMETER;
    /* kms_utf8_valid also refuses NUL, so every key and value is a clean C string. */
    if (!kms_utf8_valid(key, key_len) || !kms_utf8_valid(value, value_len))
        return KMS_E_INVALID_PARAMETER;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = kms_context_keycmp(key, key_len, ctx->pairs[mid].key, ctx->pairs[mid].key_len);

        if (c == 0)
            return KMS_E_INVALID_PARAMETER;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (ctx->count == ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap * 2 : 8;
        struct kms_context_pair *p = realloc(ctx->pairs, cap * sizeof(*p));

        if (p == NULL)
            return KMS_E_INTERNAL;
        ctx->pairs = p;
        ctx->cap = cap;
    }
    /* Key and value share one allocation: key\0value\0. */
    mem = malloc(key_len + value_len + 2);
    if (mem == NULL)
        return KMS_E_INTERNAL;
    memcpy(mem, key, key_len);
    mem[key_len] = '\0';
    if (value_len > 0)
        memcpy(mem + key_len + 1, value, value_len);
    mem[key_len + 1 + value_len] = '\0';
    memmove(ctx->pairs + lo + 1, ctx->pairs + lo, (ctx->count - lo) * sizeof(*ctx->pairs));
    pair = &ctx->pairs[lo];
    pair->key = mem;
    pair->key_len = key_len;
    pair->value = mem + key_len + 1;
    pair->value_len = value_len;
    ctx->count++;
    ctx->ctx_canonical_len += need;
    return KMS_OK;
}

static char *kms_put_u32_be(char *out, size_t v)
{
    out[0] = (char)(uint8_t)(v >> 24);
    out[1] = (char)(uint8_t)(v >> 16);
    out[2] = (char)(uint8_t)(v >> 8);
    out[3] = (char)(uint8_t)v;
    return out + 4;
}

kms_err kms_context_canonical(const struct kms_context *ctx, struct kms_buf *out)
{
    size_t total = 0;
    char *w;
    kms_err rc;

    /* Recounted rather than trusting ctx_canonical_len, in case a caller filled pairs by hand. */
    for (size_t i = 0; i < ctx->count; i++)
        total += KMS_CONTEXT_PAIR_OVERHEAD + ctx->pairs[i].key_len + ctx->pairs[i].value_len;
    if (total > KMS_CONTEXT_MAX_LEN)
        return KMS_E_INVALID_PARAMETER;
    rc = kms_buf_reserve(out, total);
    if (rc != KMS_OK)
        return rc;
    w = out->data + out->len;
    for (size_t i = 0; i < ctx->count; i++) {
        const struct kms_context_pair *p = &ctx->pairs[i];

        w = kms_put_u32_be(w, p->key_len);
        memcpy(w, p->key, p->key_len);
        w += p->key_len;
        w = kms_put_u32_be(w, p->value_len);
        memcpy(w, p->value, p->value_len);
        w += p->value_len;
    }
    out->len += total;
    out->data[out->len] = '\0';
    return KMS_OK;
}

void kms_context_free(struct kms_context *ctx)
{
    for (size_t i = 0; i < ctx->count; i++)
        free(ctx->pairs[i].key);
    free(ctx->pairs);
    memset(ctx, 0, sizeof(*ctx));
}

/* ---- the JSON form ---- */

struct kms_json {
    const char *js_p;
    const char *js_end;
};

static void kms_json_skip_ws(struct kms_json *j)
{
    while (j->js_p < j->js_end &&
           (*j->js_p == ' ' || *j->js_p == '\t' || *j->js_p == '\n' || *j->js_p == '\r'))
        j->js_p++;
}

static int kms_json_hex4(const char *p)
{
    int v = 0;

    for (int i = 0; i < 4; i++) {
        char c = p[i];

        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* Reads \uXXXX (the backslash already consumed up to 'u'), joining a surrogate pair. */
static kms_err kms_json_unicode(struct kms_json *j, uint32_t *cp)
{
    int hi, lo;

    if (j->js_end - j->js_p < 5 || j->js_p[0] != 'u')
        return KMS_E_INVALID_PARAMETER;
    hi = kms_json_hex4(j->js_p + 1);
    if (hi < 0)
        return KMS_E_INVALID_PARAMETER;
    j->js_p += 5;
    if (hi >= 0xdc00 && hi <= 0xdfff)
        return KMS_E_INVALID_PARAMETER; /* a low surrogate alone */
    if (hi < 0xd800 || hi > 0xdbff) {
        *cp = (uint32_t)hi;
        return KMS_OK;
    }
    if (j->js_end - j->js_p < 6 || j->js_p[0] != '\\' || j->js_p[1] != 'u')
        return KMS_E_INVALID_PARAMETER; /* a high surrogate alone */
    lo = kms_json_hex4(j->js_p + 2);
    if (lo < 0xdc00 || lo > 0xdfff)
        return KMS_E_INVALID_PARAMETER;
    j->js_p += 6;
    *cp = 0x10000 + (((uint32_t)hi - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
    return KMS_OK;
}

static kms_err kms_json_put_utf8(struct kms_buf *out, uint32_t cp)
{
    char b[4];
    size_t n;

    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return kms_buf_append(out, b, n);
}

/*
 * Decodes a JSON string starting at its opening quote into out (reset first). Raw bytes are copied
 * as they are; kms_context_add checks the result is UTF-8.
 */
static kms_err kms_json_string(struct kms_json *j, struct kms_buf *out)
{
    kms_err rc = KMS_OK;

    kms_buf_reset(out);
    if (j->js_p >= j->js_end || *j->js_p != '"')
        return KMS_E_INVALID_PARAMETER;
    j->js_p++;
    while (rc == KMS_OK) {
        const char *run = j->js_p;
        unsigned char c;
        uint32_t cp;

        /* Copy the longest run of plain characters at once. */
        while (j->js_p < j->js_end && *j->js_p != '"' && *j->js_p != '\\' &&
               (unsigned char)*j->js_p >= 0x20)
            j->js_p++;
        if (j->js_p > run) {
            rc = kms_buf_append(out, run, (size_t)(j->js_p - run));
            if (rc != KMS_OK)
                return rc;
        }
        if (j->js_p >= j->js_end)
            return KMS_E_INVALID_PARAMETER; /* unterminated */
        c = (unsigned char)*j->js_p;
        if (c == '"') {
            j->js_p++;
            return KMS_OK;
        }
        if (c < 0x20)
            return KMS_E_INVALID_PARAMETER; /* control characters must be escaped */
        j->js_p++;                          /* the backslash */
        if (j->js_p >= j->js_end)
            return KMS_E_INVALID_PARAMETER;
        switch (*j->js_p) {
        case '"':
        case '\\':
        case '/':
            rc = kms_buf_append_char(out, *j->js_p++);
            break;
        case 'b':
            j->js_p++;
            rc = kms_buf_append_char(out, '\b');
            break;
        case 'f':
            j->js_p++;
            rc = kms_buf_append_char(out, '\f');
            break;
        case 'n':
            j->js_p++;
            rc = kms_buf_append_char(out, '\n');
            break;
        case 'r':
            j->js_p++;
            rc = kms_buf_append_char(out, '\r');
            break;
        case 't':
            j->js_p++;
            rc = kms_buf_append_char(out, '\t');
            break;
        case 'u':
            rc = kms_json_unicode(j, &cp);
            if (rc == KMS_OK)
                rc = kms_json_put_utf8(out, cp);
            break;
        default:
            return KMS_E_INVALID_PARAMETER;
        }
    }
    return rc;
}

static bool kms_json_digit(const struct kms_json *j)
{
    return j->js_p < j->js_end && *j->js_p >= '0' && *j->js_p <= '9';
}

/* Checks a JSON number (RFC 8259 §6) and copies its literal text into out. */
static kms_err kms_json_number(struct kms_json *j, struct kms_buf *out)
{
    const char *start = j->js_p;

    kms_buf_reset(out);
    if (j->js_p < j->js_end && *j->js_p == '-')
        j->js_p++;
    if (!kms_json_digit(j))
        return KMS_E_INVALID_PARAMETER;
    if (*j->js_p == '0') {
        j->js_p++; /* no leading zeros: "01" is not JSON */
    } else {
        while (kms_json_digit(j))
            j->js_p++;
    }
    if (j->js_p < j->js_end && *j->js_p == '.') {
        j->js_p++;
        if (!kms_json_digit(j))
            return KMS_E_INVALID_PARAMETER;
        while (kms_json_digit(j))
            j->js_p++;
    }
    if (j->js_p < j->js_end && (*j->js_p == 'e' || *j->js_p == 'E')) {
        j->js_p++;
        if (j->js_p < j->js_end && (*j->js_p == '+' || *j->js_p == '-'))
            j->js_p++;
        if (!kms_json_digit(j))
            return KMS_E_INVALID_PARAMETER;
        while (kms_json_digit(j))
            j->js_p++;
    }
    return kms_buf_append(out, start, (size_t)(j->js_p - start));
}

static bool kms_json_literal(struct kms_json *j, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(j->js_end - j->js_p) < n || memcmp(j->js_p, lit, n) != 0)
        return false;
    j->js_p += n;
    return true;
}

/* A member value: string, number, true or false. null, objects and arrays are refused. */
static kms_err kms_json_value(struct kms_json *j, struct kms_buf *out)
{
    if (j->js_p >= j->js_end)
        return KMS_E_INVALID_PARAMETER;
    if (*j->js_p == '"')
        return kms_json_string(j, out);
    if (*j->js_p == '-' || (*j->js_p >= '0' && *j->js_p <= '9'))
        return kms_json_number(j, out);
    kms_buf_reset(out);
    if (kms_json_literal(j, "true"))
        return kms_buf_append_str(out, "true");
    if (kms_json_literal(j, "false"))
        return kms_buf_append_str(out, "false");
    return KMS_E_INVALID_PARAMETER;
}

kms_err kms_context_parse_json(struct kms_context *ctx, const char *json, size_t len)
{
    struct kms_json j = {json, json + len};
    struct kms_buf key = {0}, value = {0};
    kms_err rc = KMS_E_INVALID_PARAMETER;

    if (json == NULL)
        return KMS_E_INVALID_PARAMETER;
    kms_json_skip_ws(&j);
    if (j.js_p >= j.js_end || *j.js_p != '{')
        goto out;
    j.js_p++;
    kms_json_skip_ws(&j);
    if (j.js_p < j.js_end && *j.js_p == '}') {
        j.js_p++;
    } else {
        for (;;) {
            rc = kms_json_string(&j, &key);
            if (rc != KMS_OK)
                goto out;
            rc = KMS_E_INVALID_PARAMETER;
            kms_json_skip_ws(&j);
            if (j.js_p >= j.js_end || *j.js_p != ':')
                goto out;
            j.js_p++;
            kms_json_skip_ws(&j);
            rc = kms_json_value(&j, &value);
            if (rc != KMS_OK)
                goto out;
            rc = kms_context_add(ctx, key.data, key.len, value.data ? value.data : "", value.len);
            if (rc != KMS_OK)
                goto out;
            rc = KMS_E_INVALID_PARAMETER;
            kms_json_skip_ws(&j);
            if (j.js_p >= j.js_end)
                goto out;
            if (*j.js_p == '}') {
                j.js_p++;
                break;
            }
            if (*j.js_p != ',')
                goto out;
            j.js_p++;
            kms_json_skip_ws(&j);
        }
    }
    kms_json_skip_ws(&j);
    rc = j.js_p == j.js_end ? KMS_OK : KMS_E_INVALID_PARAMETER;
out:
    kms_buf_free(&key);
    kms_buf_free(&value);
    return rc;
}
