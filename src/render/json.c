/*
 * json.c - the JSON response body (spec/protocol.md §8.2): a handler's cJSON tree written compactly
 * into a kms_buf, plus the string, number and UTF-8 helpers xml.c shares.
 *
 * cJSON_Print* is avoided on purpose: it allocates per item and again for the result, and this
 * runs for every response.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kms/render.h"

/* U+FFFD REPLACEMENT CHARACTER, what an ill-formed byte becomes. */
static const char kms_json_fffd[] = "\xEF\xBF\xBD";

/*
 * Bytes a JSON string cannot carry as they are: controls, '"', '\\', and every non-ASCII byte
 * (UTF-8 must be checked). The scan skips everything else a byte per table look-up.
 * 32 entries per row: 0x00-0x1f, 0x20-0x3f ('"' at 0x22), 0x40-0x5f ('\\' at 0x5c), …
 */
static const unsigned char kms_json_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* kms_buf_append without the call when the bytes fit, which they nearly always do. */
static inline kms_err kms_json_put(struct kms_buf *out, const char *p, size_t n)
{
    if (out->cap - out->len > n) {
        memcpy(out->data + out->len, p, n);
        out->len += n;
        out->data[out->len] = '\0';
        return KMS_OK;
    }
    return kms_buf_append(out, p, n);
}

size_t kms_render_utf8_seq(const char *str, size_t len, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[0];
    size_t n;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    /* C0/C1 could only start overlong 2-byte forms; F5..FF would exceed U+10FFFF. */
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        v = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[k] & 0x3f);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) ||
        (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

kms_err kms_render_number(struct kms_buf *out, double v)
{
    char tmp[32];
    size_t n = 0;

    if (!isfinite(v))
        return KMS_E_INTERNAL;
    /*
     * Integers (TotalCount, PageSize, HttpStatus…) must read as 3, never 3.0 or 3e0, for strictly
     * typed clients. Below 2^53 every integer is exact in a double, so the cast cannot round;
     * the range test comes first because casting an out-of-range double is undefined. (No trunc()
     * or fabs(): the library is not linked against libm.)
     */
    if (v > -9007199254740992.0 && v < 9007199254740992.0 && (double)(int64_t)v == v) {
        int64_t i = (int64_t)v;
        uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        char *p = tmp + sizeof(tmp);

        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u != 0);
        if (i < 0)
            *--p = '-';
        return kms_json_put(out, p, (size_t)(tmp + sizeof(tmp) - p));
    }
    n = (size_t)snprintf(tmp, sizeof(tmp), "%.17g", v);
    if (n >= sizeof(tmp))
        return KMS_E_INTERNAL;
    /* printf honours LC_NUMERIC; a decimal comma would make the body unparseable. */
    for (size_t k = 0; k < n; k++)
        if (tmp[k] == ',')
            tmp[k] = '.';
    return kms_buf_append(out, tmp, n);
}

kms_err kms_render_json_string(struct kms_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* start of the pending stretch of bytes copied unchanged */
    size_t i = 0;
    kms_err rc;

    /* Usually nothing needs escaping: one reservation then covers the whole string. */
    rc = kms_buf_reserve(out, len + 2);
    if (rc != KMS_OK)
        return rc;
    rc = kms_json_put(out, "\"", 1);
    if (rc != KMS_OK)
        return rc;
    while (i < len) {
        unsigned char c;
        char esc[6];
        const char *rep;
        size_t replen;
        uint32_t cp;
        size_t n;

        while (i < len && !kms_json_special[(unsigned char)s[i]])
            i++;
        if (i == len)
            break;
        c = (unsigned char)s[i];
        if (c >= 0x80) {
            n = kms_render_utf8_seq(s + i, len - i, &cp);
            if (n != 0) {
                i += n;
                continue;
            }
            rep = kms_json_fffd;
            replen = 3;
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            rep = esc;
            replen = 2;
        } else {
            /* RFC 8259 §7: the short forms where JSON has them, \u00XX for the rest. */
            esc[0] = '\\';
            replen = 2;
            switch (c) {
            case '\b':
                esc[1] = 'b';
                break;
            case '\f':
                esc[1] = 'f';
                break;
            case '\n':
                esc[1] = 'n';
                break;
            case '\r':
                esc[1] = 'r';
                break;
            case '\t':
                esc[1] = 't';
                break;
            default:
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0x0f];
                replen = 6;
                break;
            }
            rep = esc;
        }
        rc = kms_json_put(out, s + run, i - run);
        if (rc == KMS_OK)
            rc = kms_json_put(out, rep, replen);
        if (rc != KMS_OK)
            return rc;
        i++;
        run = i;
    }
    rc = kms_json_put(out, s + run, i - run);
    if (rc != KMS_OK)
        return rc;
    return kms_json_put(out, "\"", 1);
}

static kms_err kms_json_value(const cJSON *item, struct kms_buf *out, int depth);

/* Members of an object (with names) or items of an array (without), comma-separated. */
static kms_err kms_json_children(const cJSON *parent, bool named, struct kms_buf *out, int depth)
{
    const cJSON *child;
    kms_err rc;

    for (child = parent->child; child != NULL; child = child->next) {
        if (child != parent->child) {
            rc = kms_json_put(out, ",", 1);
            if (rc != KMS_OK)
                return rc;
        }
        if (named) {
            const char *name = child->string ? child->string : "";

            rc = kms_render_json_string(out, name, strlen(name));
            if (rc == KMS_OK)
                rc = kms_json_put(out, ":", 1);
            if (rc != KMS_OK)
                return rc;
        }
        rc = kms_json_value(child, out, depth + 1);
        if (rc != KMS_OK)
            return rc;
    }
    return KMS_OK;
}

static kms_err kms_json_value(const cJSON *item, struct kms_buf *out, int depth)
{
    /* The low byte is the type; the flags above it (IsReference, StringIsConst) do not matter. */
    int type = item->type & 0xff;
    kms_err rc;

    switch (type) {
    case cJSON_String: {
        const char *s = item->valuestring ? item->valuestring : "";

        return kms_render_json_string(out, s, strlen(s));
    }
    case cJSON_Number:
        /* JSON has no NaN or infinity; null is the least wrong stand-in (cJSON does the same). */
        if (!isfinite(item->valuedouble))
            return kms_json_put(out, "null", 4);
        return kms_render_number(out, item->valuedouble);
    case cJSON_True:
        return kms_json_put(out, "true", 4);
    case cJSON_False:
        return kms_json_put(out, "false", 5);
    case cJSON_NULL:
        return kms_json_put(out, "null", 4);
    case cJSON_Object:
    case cJSON_Array:
        if (depth > KMS_RENDER_MAX_DEPTH)
            return KMS_E_INTERNAL;
        rc = kms_json_put(out, type == cJSON_Object ? "{" : "[", 1);
        if (rc == KMS_OK)
            rc = kms_json_children(item, type == cJSON_Object, out, depth);
        if (rc == KMS_OK)
            rc = kms_json_put(out, type == cJSON_Object ? "}" : "]", 1);
        return rc;
    default:
        /* cJSON_Raw would splice unchecked text into the body; handlers have no use for it. */
        return KMS_E_INTERNAL;
    }
}

kms_err kms_render_json(const cJSON *root, struct kms_buf *out)
{
    size_t start = out->len;
    kms_err rc;

    if (root == NULL || (root->type & 0xff) != cJSON_Object)
        return KMS_E_INTERNAL;
    rc = kms_json_value(root, out, 0);
    if (rc != KMS_OK && out->data != NULL) {
        /* Half a body must never reach the wire: give the caller back its buffer unchanged. */
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}
