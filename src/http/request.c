/*
 * request.c - the parameter map: query string and form body decoded into one sorted array of
 * name/value pairs, and header lookup. Runs on every request, so each parsed text is decoded
 * into one block of its own (not an allocation per parameter), the array is sized once per text,
 * and the usual dozen parameters are sorted in place. Knows nothing of libmicrohttpd.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kms/http.h"

#define KMS_PARAMS_INITIAL_CAP   16
#define KMS_PARAMS_INSERTION_MAX 32

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

/* Decoded text: name NUL value NUL for each parameter of one parsed text. */
struct kms_params_block {
    struct kms_params_block *pb_next;
    size_t pb_size;
    char pb_text[];
};

static kms_err kms_params_reserve(struct kms_params *p, size_t more)
{
    size_t cap;
    struct kms_param *items;

    if (more > SIZE_MAX / sizeof(*items) - p->count)
        return KMS_E_INTERNAL;
    if (p->count + more <= p->cap)
        return KMS_OK;
    cap = p->cap ? p->cap : KMS_PARAMS_INITIAL_CAP;
    while (cap < p->count + more)
        cap *= 2;
    items = realloc(p->items, cap * sizeof(*items));
    if (items == NULL)
        return KMS_E_INTERNAL;
    p->items = items;
    p->cap = cap;
    return KMS_OK;
}

/* Decodes one "name=value" (or bare "name") segment into dst and appends it; *used: bytes. */
static kms_err kms_params_add(struct kms_params *p, const char *seg, size_t seg_len,
                              enum kms_param_source source, char *dst, size_t *used)
{
    const char *eq = memchr(seg, '=', seg_len);
    size_t raw_name_len = eq ? (size_t)(eq - seg) : seg_len;
    const char *raw_value = eq ? eq + 1 : seg + seg_len;
    size_t raw_value_len = seg_len - raw_name_len - (eq ? 1 : 0);
    size_t name_len = 0, value_len = 0;
    struct kms_param *item;

    if (!kms_form_decode(seg, raw_name_len, dst, &name_len))
        return KMS_E_PARSE_REQUEST;
    dst[name_len] = '\0';
    if (!kms_form_decode(raw_value, raw_value_len, dst + name_len + 1, &value_len))
        return KMS_E_PARSE_REQUEST;
    dst[name_len + 1 + value_len] = '\0';
    /* kms_utf8_valid also refuses NUL bytes, which would truncate names and values. */
    if (!kms_utf8_valid(dst, name_len) || !kms_utf8_valid(dst + name_len + 1, value_len))
        return KMS_E_PARSE_REQUEST;
    item = &p->items[p->count++];
    item->name = dst;
    item->name_len = name_len;
    item->value = dst + name_len + 1;
    item->value_len = value_len;
    item->source = source;
    *used = name_len + value_len + 2;
    return KMS_OK;
}

kms_err kms_params_parse(struct kms_params *p, const char *text, size_t len,
                         enum kms_param_source source)
{
    struct kms_params_block *block;
    size_t segments = 1, start = 0, used = 0;
    kms_err rc = KMS_OK;

    if (len == 0)
        return KMS_OK;
    for (const char *amp = memchr(text, '&', len); amp != NULL;
         amp = memchr(amp + 1, '&', len - (size_t)(amp + 1 - text)))
        segments++;
    rc = kms_params_reserve(p, segments);
    if (rc != KMS_OK)
        return rc;
    /*
     * Decoding never lengthens text and a segment's decoded name and value need two NULs:
     * its "=" makes room for one, and a bare "name" has no "=", so len + 2 * segments bytes
     * always suffice (the "&" separators are spare room).
     */
    if (segments > (SIZE_MAX - sizeof(*block) - len) / 2)
        return KMS_E_INTERNAL;
    block = malloc(sizeof(*block) + len + 2 * segments);
    if (block == NULL)
        return KMS_E_INTERNAL;
    block->pb_size = len + 2 * segments;
    block->pb_next = p->blocks;
    p->blocks = block;
    while (start < len && rc == KMS_OK) {
        const char *amp = memchr(text + start, '&', len - start);
        size_t end = amp ? (size_t)(amp - text) : len;

        if (end > start) {
            size_t n = 0;

            rc = kms_params_add(p, text + start, end - start, source, block->pb_text + used, &n);
            used += n;
        }
        start = end + 1;
    }
    return rc;
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
    /* A request's dozen parameters sort faster in place than through qsort's merge sort. */
    if (p->count > KMS_PARAMS_INSERTION_MAX) {
        qsort(p->items, p->count, sizeof(*p->items), kms_param_cmp);
    } else {
        for (size_t i = 1; i < p->count; i++) {
            struct kms_param it = p->items[i];
            size_t j = i;

            while (j > 0 && kms_param_cmp(&p->items[j - 1], &it) > 0) {
                p->items[j] = p->items[j - 1];
                j--;
            }
            p->items[j] = it;
        }
    }
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
    while (p->blocks != NULL) {
        struct kms_params_block *b = p->blocks;

        p->blocks = b->pb_next;
        /* Values may carry plaintext. */
        OPENSSL_cleanse(b->pb_text, b->pb_size);
        free(b);
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
