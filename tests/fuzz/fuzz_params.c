/*
 * fuzz_params.c - the request parameter parser (src/http/request.c): kms_params_parse of a query
 * string and a form body, then kms_params_finish and kms_params_find.
 *
 * Input: the query string, "\n", the form body (everything after the first newline; no newline:
 * query only). The body is parsed only when the query parsed, as dispatch does.
 *
 * Asserts: parsing succeeds exactly when an independent reference decoder accepts every segment
 * (valid %XY escapes, UTF-8 without NUL after decoding), and then yields the same pairs in the
 * same order with the right sources, NUL-terminated at their lengths; re-encoding the pairs with
 * kms_percent_encode and parsing again gives them back; after finish the map is strictly sorted
 * and every name is found by kms_params_find, or finish reports a name that really is repeated.
 */
#include <stdlib.h>
#include <string.h>

#include "kms/auth.h"
#include "kms/http.h"
#include "support.h"

struct ref_pair {
    char *name, *value;
    size_t name_len, value_len;
    enum kms_param_source source;
};

static int ref_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reference form decoding: '+' is a space, %XY a byte; false on a bad escape or bad UTF-8. */
static bool ref_decode(const char *s, size_t len, char **out, size_t *out_len)
{
    char *d = malloc(len + 1);
    size_t o = 0;

    if (d == NULL)
        abort();
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            d[o++] = ' ';
        } else if (s[i] == '%') {
            if (len - i < 3) {
                free(d);
                return false;
            }
            if (ref_hex((unsigned char)s[i + 1]) < 0 || ref_hex((unsigned char)s[i + 2]) < 0) {
                free(d);
                return false;
            }
            d[o++] =
                (char)(ref_hex((unsigned char)s[i + 1]) * 16 + ref_hex((unsigned char)s[i + 2]));
            i += 2;
        } else {
            d[o++] = s[i];
        }
    }
    d[o] = '\0';
    if (!kms_utf8_valid(d, o)) {
        free(d);
        return false;
    }
    *out = d;
    *out_len = o;
    return true;
}

/* Splits text on '&' like the parser; appends the decoded pairs. False when one is refused. */
static bool ref_parse(const char *text, size_t len, enum kms_param_source source,
                      struct ref_pair **pairs, size_t *n)
{
    size_t start = 0;

    while (start < len) {
        const char *amp = memchr(text + start, '&', len - start);
        size_t end = amp ? (size_t)(amp - text) : len;

        if (end > start) {
            const char *seg = text + start, *eq = memchr(seg, '=', end - start);
            size_t name_raw = eq ? (size_t)(eq - seg) : end - start;
            struct ref_pair p = {.source = source};

            if (!ref_decode(seg, name_raw, &p.name, &p.name_len))
                return false;
            if (!ref_decode(eq ? eq + 1 : seg + name_raw, eq ? end - start - name_raw - 1 : 0,
                            &p.value, &p.value_len)) {
                free(p.name);
                return false;
            }
            *pairs = realloc(*pairs, (*n + 1) * sizeof(**pairs));
            if (*pairs == NULL)
                abort();
            (*pairs)[(*n)++] = p;
        }
        start = end + 1;
    }
    return true;
}

static void ref_free(struct ref_pair *pairs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(pairs[i].name);
        free(pairs[i].value);
    }
    free(pairs);
}

static void check_item(const struct kms_param *it)
{
    FUZZ_CHECK(it->name[it->name_len] == '\0' && strlen(it->name) == it->name_len,
               "name not NUL-terminated at its length");
    FUZZ_CHECK(it->value[it->value_len] == '\0' && strlen(it->value) == it->value_len,
               "value not NUL-terminated at its length");
    FUZZ_CHECK(kms_utf8_valid(it->name, it->name_len) && kms_utf8_valid(it->value, it->value_len),
               "a parameter that is not UTF-8 was accepted");
}

/* Re-encodes every pair (RFC 3986) and parses the text again: the same pairs must come back. */
static void check_reencode(const struct kms_params *p)
{
    struct kms_buf text = {0};
    struct kms_params again = {0};
    kms_err rc = KMS_OK;

    for (size_t i = 0; i < p->count && rc == KMS_OK; i++) {
        if (i > 0)
            rc = kms_buf_append_char(&text, '&');
        if (rc == KMS_OK)
            rc = kms_percent_encode(&text, p->items[i].name, p->items[i].name_len);
        if (rc == KMS_OK)
            rc = kms_buf_append_char(&text, '=');
        if (rc == KMS_OK)
            rc = kms_percent_encode(&text, p->items[i].value, p->items[i].value_len);
    }
    FUZZ_CHECK(rc == KMS_OK, "re-encoding failed");
    rc = kms_params_parse(&again, text.data ? text.data : "", text.len, KMS_PARAM_QUERY);
    FUZZ_CHECK(rc == KMS_OK, "the re-encoded parameters did not parse (rc %d)", (int)rc);
    /* Pairs with an empty name re-encode as "=v" and come back; none are lost. */
    FUZZ_CHECK(again.count == p->count, "re-encoded count %zu != %zu", again.count, p->count);
    for (size_t i = 0; i < p->count; i++) {
        FUZZ_CHECK(again.items[i].name_len == p->items[i].name_len &&
                       memcmp(again.items[i].name, p->items[i].name, p->items[i].name_len) == 0,
                   "name %zu changed after re-encoding", i);
        FUZZ_CHECK(again.items[i].value_len == p->items[i].value_len &&
                       memcmp(again.items[i].value, p->items[i].value, p->items[i].value_len) == 0,
                   "value %zu changed after re-encoding", i);
    }
    kms_params_free(&again);
    kms_buf_free(&text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *body;
    size_t body_len, query_len = fuzz_split(data, size, '\n', &body, &body_len);
    struct kms_params p = {0};
    struct ref_pair *ref = NULL;
    size_t ref_n = 0;
    const char *dup = NULL;
    bool ref_ok;
    kms_err rc;

    ref_ok = ref_parse((const char *)data, query_len, KMS_PARAM_QUERY, &ref, &ref_n);
    rc = kms_params_parse(&p, (const char *)data, query_len, KMS_PARAM_QUERY);
    FUZZ_CHECK((rc == KMS_OK) == ref_ok, "query: parser says %d, reference says %d", (int)rc,
               (int)ref_ok);
    FUZZ_CHECK(rc == KMS_OK || rc == KMS_E_PARSE_REQUEST, "unexpected error %d", (int)rc);
    if (rc == KMS_OK && body_len > 0) {
        ref_ok = ref_parse((const char *)body, body_len, KMS_PARAM_BODY, &ref, &ref_n);
        rc = kms_params_parse(&p, (const char *)body, body_len, KMS_PARAM_BODY);
        FUZZ_CHECK((rc == KMS_OK) == ref_ok, "body: parser says %d, reference says %d", (int)rc,
                   (int)ref_ok);
        FUZZ_CHECK(rc == KMS_OK || rc == KMS_E_PARSE_REQUEST, "unexpected error %d", (int)rc);
    }
    if (rc != KMS_OK)
        goto out;

    FUZZ_CHECK(p.count == ref_n, "count %zu, reference %zu", p.count, ref_n);
    for (size_t i = 0; i < p.count; i++) {
        check_item(&p.items[i]);
        FUZZ_CHECK(p.items[i].source == ref[i].source, "source of %zu", i);
        FUZZ_CHECK(p.items[i].name_len == ref[i].name_len &&
                       memcmp(p.items[i].name, ref[i].name, ref[i].name_len) == 0,
                   "name %zu differs from the reference decoding", i);
        FUZZ_CHECK(p.items[i].value_len == ref[i].value_len &&
                       memcmp(p.items[i].value, ref[i].value, ref[i].value_len) == 0,
                   "value %zu differs from the reference decoding", i);
    }
    check_reencode(&p);

    rc = kms_params_finish(&p, &dup);
    if (rc == KMS_OK) {
        for (size_t i = 0; i < p.count; i++) {
            check_item(&p.items[i]);
            if (i > 0)
                FUZZ_CHECK(strcmp(p.items[i - 1].name, p.items[i].name) < 0,
                           "not strictly sorted at %zu", i);
            FUZZ_CHECK(kms_params_find(&p, p.items[i].name) == &p.items[i],
                       "kms_params_find misses \"%s\"", p.items[i].name);
        }
    } else {
        size_t seen = 0;

        FUZZ_CHECK(rc == KMS_E_INVALID_PARAMETER && dup != NULL, "finish failed without a name");
        for (size_t i = 0; i < p.count; i++)
            seen += strcmp(p.items[i].name, dup) == 0;
        FUZZ_CHECK(seen >= 2, "\"%s\" reported as repeated but present %zu times", dup, seen);
    }
out:
    kms_params_free(&p);
    ref_free(ref, ref_n);
    return 0;
}
