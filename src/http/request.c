/*
 * request.c - the parameter map: query string and form body decoded into one sorted array of
 * name/value pairs, and header lookup. Runs on every request, so each parameter costs one
 * allocation (name and value share it) and the array grows geometrically. Knows nothing of
 * libmicrohttpd.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kms/http.h"

#define KMS_PARAMS_INITIAL_CAP 16

static int kms_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes form-urlencoded src into dst (at least len bytes): "+" is a space, "%XY" a byte. One
 * pass, so "%2B" stays a "+" rather than becoming a space. False on a malformed escape.
 */
static bool kms_form_decode(const char *src, size_t len, char *dst, size_t *out_len)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        char c = src[i];

        if (c == '+') {
            dst[o++] = ' ';
        } else if (c == '%') {
            int hi, lo;

            if (len - i < 3)
                return false;
            hi = kms_hex_value((unsigned char)src[i + 1]);
            lo = kms_hex_value((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            dst[o++] = (char)((hi << 4) | lo);
            i += 2;
        } else {
            dst[o++] = c;
        }
    }
    *out_len = o;
    return true;
}

static kms_err kms_params_grow(struct kms_params *p)
{
    size_t cap;
    struct kms_param *items;

    if (p->count < p->cap)
        return KMS_OK;
    cap = p->cap ? p->cap * 2 : KMS_PARAMS_INITIAL_CAP;
    items = realloc(p->items, cap * sizeof(*items));
    if (items == NULL)
        return KMS_E_INTERNAL;
    p->items = items;
    p->cap = cap;
    return KMS_OK;
}

/* Decodes one "name=value" (or bare "name") segment and appends it. */
static kms_err kms_params_add(struct kms_params *p, const char *seg, size_t seg_len,
                              enum kms_param_source source)
{
    const char *eq = memchr(seg, '=', seg_len);
    size_t raw_name_len = eq ? (size_t)(eq - seg) : seg_len;
    const char *raw_value = eq ? eq + 1 : seg + seg_len;
    size_t raw_value_len = seg_len - raw_name_len - (eq ? 1 : 0);
    size_t block_len = raw_name_len + raw_value_len + 2;
    size_t name_len = 0, value_len = 0;
    struct kms_param *item;
    char *block;
    kms_err rc;

    rc = kms_params_grow(p);
    if (rc != KMS_OK)
        return rc;
    /* Decoding never lengthens text, so the raw lengths bound the block. */
    block = malloc(block_len);
    if (block == NULL)
        return KMS_E_INTERNAL;
    if (!kms_form_decode(seg, raw_name_len, block, &name_len)) {
        rc = KMS_E_PARSE_REQUEST;
        goto fail;
    }
    block[name_len] = '\0';
    if (!kms_form_decode(raw_value, raw_value_len, block + name_len + 1, &value_len)) {
        rc = KMS_E_PARSE_REQUEST;
        goto fail;
    }
    block[name_len + 1 + value_len] = '\0';
    /* kms_utf8_valid also refuses NUL bytes, which would truncate names and values. */
    if (!kms_utf8_valid(block, name_len) || !kms_utf8_valid(block + name_len + 1, value_len)) {
        rc = KMS_E_PARSE_REQUEST;
        goto fail;
    }
    item = &p->items[p->count++];
    item->name = block;
    item->name_len = name_len;
    item->value = block + name_len + 1;
    item->value_len = value_len;
    item->source = source;
    return KMS_OK;

fail:
    /* The value may already hold decoded plaintext. */
    OPENSSL_cleanse(block, block_len);
    free(block);
    return rc;
}

kms_err kms_params_parse(struct kms_params *p, const char *text, size_t len,
                         enum kms_param_source source)
{
    size_t start = 0;

    while (start < len) {
        const char *amp = memchr(text + start, '&', len - start);
        size_t end = amp ? (size_t)(amp - text) : len;

        if (end > start) {
            kms_err rc = kms_params_add(p, text + start, end - start, source);

            if (rc != KMS_OK)
                return rc;
        }
        start = end + 1;
    }
    return KMS_OK;
}

/* Bytewise name order, a shorter name before any longer one it prefixes (strcmp order). */
static int kms_name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0)
        return c;
    return (alen > blen) - (alen < blen);
}

static int kms_param_cmp(const void *a, const void *b)
{
    const struct kms_param *x = a, *y = b;

    return kms_name_cmp(x->name, x->name_len, y->name, y->name_len);
}

kms_err kms_params_finish(struct kms_params *p, const char **dup_name)
{
    if (p->count > 1)
        qsort(p->items, p->count, sizeof(*p->items), kms_param_cmp);
    /* Sorted, so a duplicate sits next to its twin, whichever sources they came from. */
    for (size_t i = 1; i < p->count; i++) {
        if (kms_param_cmp(&p->items[i - 1], &p->items[i]) == 0) {
            if (dup_name != NULL)
                *dup_name = p->items[i].name;
            return KMS_E_INVALID_PARAMETER;
        }
    }
    return KMS_OK;
}

const struct kms_param *kms_params_find(const struct kms_params *p, const char *name)
{
    size_t len = strlen(name);
    size_t lo = 0, hi = p->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct kms_param *it = &p->items[mid];
        int c = kms_name_cmp(name, len, it->name, it->name_len);

        if (c == 0)
            return it;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

void kms_params_free(struct kms_params *p)
{
    for (size_t i = 0; i < p->count; i++) {
        struct kms_param *it = &p->items[i];

        /* One block per parameter: name NUL value NUL. */
        OPENSSL_cleanse(it->name, it->name_len + it->value_len + 2);
        free(it->name);
    }
    free(p->items);
    p->items = NULL;
    p->count = p->cap = 0;
}

const char *kms_request_header(const struct kms_request *req, const char *name)
{
    for (size_t i = 0; i < req->header_count; i++)
        if (strcmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}
