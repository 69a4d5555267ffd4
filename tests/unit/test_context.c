/*
 * test_context.c - EncryptionContext: the JSON value rule of protocol.md §2.2, the flattened form,
 * and the canonical bytes (sorted, length-prefixed) that feed the AAD.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kms/crypto.h"

/* Parses json (given with its exact length) and returns its canonical bytes in out. */
static kms_err canon_of(const char *json, size_t len, struct kms_buf *out)
{
    struct kms_context ctx = {0};
    kms_err rc = kms_context_parse_json(&ctx, json, len);

    kms_buf_reset(out);
    if (rc == KMS_OK)
        rc = kms_context_canonical(&ctx, out);
    kms_context_free(&ctx);
    return rc;
}

static kms_err parse_str(const char *json)
{
    struct kms_buf out = {0};
    kms_err rc = canon_of(json, strlen(json), &out);

    kms_buf_free(&out);
    return rc;
}

/* Asserts two JSON texts give the same canonical bytes (or different ones). */
static void assert_same(const char *a, const char *b, bool same)
{
    struct kms_buf ca = {0}, cb = {0};

    print_message("%s %s %s\n", a, same ? "==" : "!=", b);
    assert_int_equal(canon_of(a, strlen(a), &ca), KMS_OK);
    assert_int_equal(canon_of(b, strlen(b), &cb), KMS_OK);
    if (same) {
        assert_int_equal(ca.len, cb.len);
        assert_memory_equal(ca.data, cb.data, ca.len);
    } else {
        assert_false(ca.len == cb.len && memcmp(ca.data, cb.data, ca.len) == 0);
    }
    kms_buf_free(&ca);
    kms_buf_free(&cb);
}

/* The single value of a one-member object. */
static void assert_value(const char *json, const char *want, size_t want_len)
{
    struct kms_context ctx = {0};

    print_message("%s\n", json);
    assert_int_equal(kms_context_parse_json(&ctx, json, strlen(json)), KMS_OK);
    assert_int_equal(ctx.count, 1);
    assert_int_equal(ctx.pairs[0].value_len, want_len);
    assert_memory_equal(ctx.pairs[0].value, want, want_len);
    assert_int_equal(ctx.pairs[0].value[want_len], '\0');
    kms_context_free(&ctx);
}

static void test_canonical_bytes(void **state)
{
    static const uint8_t want[] = {0, 0, 0, 1, 'a', 0,   0, 0, 2, 'b', 'c',
                                   0, 0, 0, 2, 'x', 'y', 0, 0, 0, 0};
    struct kms_buf out = {0};
    const char *json = "{\"xy\":\"\",\"a\":\"bc\"}";

    (void)state;
    assert_int_equal(canon_of(json, strlen(json), &out), KMS_OK);
    assert_int_equal(out.len, sizeof(want));
    assert_memory_equal(out.data, want, sizeof(want));
    kms_buf_free(&out);
}

static void test_length_prefix_separates(void **state)
{
    (void)state;
    assert_same("{\"a\":\"bc\"}", "{\"ab\":\"c\"}", false);
    assert_same("{\"a\":\"b\",\"c\":\"d\"}", "{\"a\":\"bcd\"}", false);
    assert_same("{\"a\":\"\"}", "{}", false);
}

static void test_order_insensitive(void **state)
{
    struct kms_context a = {0}, b = {0};
    struct kms_buf ca = {0}, cb = {0};
    char key[16];

    (void)state;
    assert_same("{\"b\":\"2\",\"a\":\"1\",\"c\":\"3\"}", "{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}",
                true);
    assert_same("{\"c\":\"3\",\"b\":\"2\",\"a\":\"1\"}", "{\"a\":\"1\",\"c\":\"3\",\"b\":\"2\"}",
                true);
    /* Byte order: shorter prefix first, upper case before lower, UTF-8 after ASCII. */
    assert_int_equal(kms_context_parse_json(&a, "{\"b\":1,\"\xc3\xa9\":1,\"aa\":1,\"a\":1,\"B\":1}",
                                            strlen("{\"b\":1,\"\xc3\xa9\":1,\"aa\":1,\"a\":1,"
                                                   "\"B\":1}")),
                     KMS_OK);
    assert_int_equal(a.count, 5);
    assert_string_equal(a.pairs[0].key, "B");
    assert_string_equal(a.pairs[1].key, "a");
    assert_string_equal(a.pairs[2].key, "aa");
    assert_string_equal(a.pairs[3].key, "b");
    assert_string_equal(a.pairs[4].key, "\xc3\xa9");
    kms_context_free(&a);

    /* 300 keys added in two different orders (flattened form) give the same bytes. */
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "k%d", (i * 7) % 300);
        assert_int_equal(kms_context_add(&a, key, strlen(key), "v", 1), KMS_OK);
        snprintf(key, sizeof(key), "k%d", 299 - i);
        assert_int_equal(kms_context_add(&b, key, strlen(key), "v", 1), KMS_OK);
    }
    for (size_t i = 1; i < a.count; i++)
        assert_true(strcmp(a.pairs[i - 1].key, a.pairs[i].key) < 0);
    assert_int_equal(kms_context_canonical(&a, &ca), KMS_OK);
    assert_int_equal(kms_context_canonical(&b, &cb), KMS_OK);
    assert_int_equal(ca.len, cb.len);
    assert_int_equal(ca.len, a.ctx_canonical_len);
    assert_memory_equal(ca.data, cb.data, ca.len);
    kms_context_free(&a);
    kms_context_free(&b);
    kms_buf_free(&ca);
    kms_buf_free(&cb);
}

/* The flattened form (EncryptionContext.k=v) and the JSON form meet in the same bytes. */
static void test_flattened_equals_json(void **state)
{
    struct kms_context flat = {0};
    struct kms_buf cf = {0}, cj = {0};
    const char *json = "{\"Example\":\"Example\",\"a b\":\"c&d\"}";

    (void)state;
    assert_int_equal(kms_context_add(&flat, "a b", 3, "c&d", 3), KMS_OK);
    assert_int_equal(kms_context_add(&flat, "Example", 7, "Example", 7), KMS_OK);
    assert_int_equal(kms_context_canonical(&flat, &cf), KMS_OK);
    assert_int_equal(canon_of(json, strlen(json), &cj), KMS_OK);
    assert_int_equal(cf.len, cj.len);
    assert_memory_equal(cf.data, cj.data, cf.len);
    /* The flattened form's own errors: duplicate, empty key, bad UTF-8, NUL. */
    assert_int_equal(kms_context_add(&flat, "a b", 3, "x", 1), KMS_E_INVALID_PARAMETER);
    assert_int_equal(kms_context_add(&flat, "", 0, "x", 1), KMS_E_INVALID_PARAMETER);
    assert_int_equal(kms_context_add(&flat, "k\xff", 2, "x", 1), KMS_E_INVALID_PARAMETER);
    assert_int_equal(kms_context_add(&flat, "k", 1, "x\xc0\xaf", 3), KMS_E_INVALID_PARAMETER);
    assert_int_equal(kms_context_add(&flat, "k\0z", 3, "x", 1), KMS_E_INVALID_PARAMETER);
    assert_int_equal(kms_context_add(&flat, "k", 1, "x\0", 2), KMS_E_INVALID_PARAMETER);
    assert_int_equal(flat.count, 2);
    kms_context_free(&flat);
    assert_int_equal(flat.count, 0);
    assert_null(flat.pairs);
    /* Reusable after free. */
    assert_int_equal(kms_context_add(&flat, "k", 1, "", 0), KMS_OK);
    kms_context_free(&flat);
    kms_buf_free(&cf);
    kms_buf_free(&cj);
}

static void test_numbers_and_booleans(void **state)
{
    (void)state;
    assert_same("{\"n\":1}", "{\"n\":\"1\"}", true);
    assert_same("{\"t\":true}", "{\"t\":\"true\"}", true);
    assert_same("{\"f\":false}", "{\"f\":\"false\"}", true);
    /* The literal text is kept: 1.0 is not 1, 1e2 is not 100. */
    assert_same("{\"n\":1.0}", "{\"n\":\"1.0\"}", true);
    assert_same("{\"n\":1.0}", "{\"n\":1}", false);
    assert_same("{\"n\":1e2}", "{\"n\":100}", false);
    assert_value("{\"n\":-0}", "-0", 2);
    assert_value("{\"n\":-12.50e-3}", "-12.50e-3", 9);
    assert_value("{\"n\":1E+5}", "1E+5", 4);
    assert_value("{\"n\":123456789012345678901234567890}", "123456789012345678901234567890", 30);
    assert_value("{\"n\":0}", "0", 1);
}

static void test_invalid_values(void **state)
{
    static const char *const bad[] = {
        /* null, nested object, array members */
        "{\"a\":null}",
        "{\"a\":{}}",
        "{\"a\":{\"b\":\"c\"}}",
        "{\"a\":[]}",
        "{\"a\":[\"b\"]}",
        "{\"a\":\"b\",\"c\":null}",
        /* not an object */
        "[]",
        "[{\"a\":\"b\"}]",
        "\"a\"",
        "1",
        "true",
        "null",
        /* not JSON */
        "",
        " ",
        "{",
        "}",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":\"b\",}",
        "{,}",
        "{\"a\":\"b\"}x",
        "{\"a\":\"b\"}{}",
        "{'a':'b'}",
        "{a:\"b\"}",
        "{\"a\":\"b\"",
        "{\"a\":\"b}",
        "{\"a\" \"b\"}",
        "{\"a\":\"b\";\"c\":\"d\"}",
        "{\"a\":\"b\" \"c\":\"d\"}",
        "{\"a\":tru}",
        "{\"a\":True}",
        "{\"a\":truex}",
        "{\"a\":nul}",
        "\xef\xbb\xbf{}",
        "{\"a\":\"b\\x\"}",
        "{\"a\":\"\\\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"nl\nhere\"}",
        /* bad numbers */
        "{\"n\":01}",
        "{\"n\":+1}",
        "{\"n\":1.}",
        "{\"n\":.5}",
        "{\"n\":-}",
        "{\"n\":1e}",
        "{\"n\":1e+}",
        "{\"n\":NaN}",
        "{\"n\":Infinity}",
        "{\"n\":0x10}",
        "{\"n\":--1}",
        "{\"n\":1.2.3}",
        /* duplicate keys, also when spelled differently */
        "{\"a\":\"1\",\"a\":\"2\"}",
        "{\"a\":\"1\",\"a\":\"1\"}",
        "{\"a\":\"1\",\"\\u0061\":\"2\"}",
        /* empty key */
        "{\"\":\"x\"}",
        "{\"a\":\"1\",\"\":\"2\"}",
    };

    (void)state;
    for (size_t i = 0; i < KMS_ARRAY_LEN(bad); i++) {
        print_message("bad: %s\n", bad[i]);
        assert_int_equal(parse_str(bad[i]), KMS_E_INVALID_PARAMETER);
    }
    /* A NUL byte inside the given length, in and outside a string. */
    {
        struct kms_buf out = {0};

        assert_int_equal(canon_of("{\"a\":\"b\0\"}", 9, &out), KMS_E_INVALID_PARAMETER);
        assert_int_equal(canon_of("{\"a\":\"b\"}\0", 10, &out), KMS_E_INVALID_PARAMETER);
        assert_int_equal(canon_of("{\"a\":\"b\"}", 8, &out), KMS_E_INVALID_PARAMETER);
        kms_buf_free(&out);
    }
    assert_int_equal(kms_context_parse_json(&(struct kms_context){0}, NULL, 0),
                     KMS_E_INVALID_PARAMETER);
}

static void test_whitespace_and_empty(void **state)
{
    struct kms_buf out = {0};

    (void)state;
    assert_same(" {\n\t\"a\" : \"b\" ,\r\n \"c\":1 } \n", "{\"a\":\"b\",\"c\":\"1\"}", true);
    assert_int_equal(canon_of("{}", 2, &out), KMS_OK);
    assert_int_equal(out.len, 0);
    assert_int_equal(canon_of(" { \n } ", 7, &out), KMS_OK);
    assert_int_equal(out.len, 0);
    /* Values may be empty; keys may not. */
    assert_value("{\"a\":\"\"}", "", 0);
    kms_buf_free(&out);
}

static void test_escapes(void **state)
{
    (void)state;
    assert_value("{\"k\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "\"\\/\b\f\n\r\t", 8);
    assert_value("{\"k\":\"\\u00e9\"}", "\xc3\xa9", 2);
    assert_value("{\"k\":\"\\u00E9\"}", "\xc3\xa9", 2);
    assert_value("{\"k\":\"\\u4e2d\\u6587\"}", "\xe4\xb8\xad\xe6\x96\x87", 6);
    assert_value("{\"k\":\"\\u0041b\"}", "Ab", 2);
    assert_value("{\"k\":\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"}",
                 "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 11);
    /* Surrogate pairs: U+1F600 and U+10FFFF. */
    assert_value("{\"k\":\"\\ud83d\\ude00\"}", "\xf0\x9f\x98\x80", 4);
    assert_value("{\"k\":\"\\uDBFF\\uDFFF\"}", "\xf4\x8f\xbf\xbf", 4);
    /* Escaped and raw UTF-8 are the same context, in keys too. */
    assert_same("{\"\\u4e2d\":\"\\ud83d\\ude00\"}", "{\"\xe4\xb8\xad\":\"\xf0\x9f\x98\x80\"}",
                true);
    assert_same("{\"a\\/b\":\"x\"}", "{\"a/b\":\"x\"}", true);

    assert_int_equal(parse_str("{\"k\":\"\\ud83d\"}"), KMS_E_INVALID_PARAMETER); /* lone high */
    assert_int_equal(parse_str("{\"k\":\"\\ude00\"}"), KMS_E_INVALID_PARAMETER); /* lone low */
    assert_int_equal(parse_str("{\"k\":\"\\ud83dx\"}"), KMS_E_INVALID_PARAMETER);
    assert_int_equal(parse_str("{\"k\":\"\\ud83d\\u0041\"}"), KMS_E_INVALID_PARAMETER);
    assert_int_equal(parse_str("{\"k\":\"\\ud83d\\ud83d\"}"), KMS_E_INVALID_PARAMETER);
    assert_int_equal(parse_str("{\"k\":\"\\u12\"}"), KMS_E_INVALID_PARAMETER);
    assert_int_equal(parse_str("{\"k\":\"\\u12g4\"}"), KMS_E_INVALID_PARAMETER);
    assert_int_equal(parse_str("{\"k\":\"\\U0041\"}"), KMS_E_INVALID_PARAMETER);
    assert_int_equal(parse_str("{\"k\":\"\\u0000\"}"), KMS_E_INVALID_PARAMETER); /* NUL */
    assert_int_equal(parse_str("{\"\\u0000\":\"v\"}"), KMS_E_INVALID_PARAMETER);
}

static void test_invalid_utf8(void **state)
{
    static const char *const bad[] = {
        "{\"k\":\"\xff\"}",             /* never valid */
        "{\"k\":\"\xc0\xaf\"}",         /* overlong '/' */
        "{\"k\":\"\xe4\xb8\"}",         /* truncated sequence */
        "{\"k\":\"\xed\xa0\x80\"}",     /* encoded surrogate */
        "{\"k\":\"\xf4\x90\x80\x80\"}", /* past U+10FFFF */
        "{\"\x80\":\"v\"}",             /* stray continuation byte in a key */
    };

    (void)state;
    for (size_t i = 0; i < KMS_ARRAY_LEN(bad); i++)
        assert_int_equal(parse_str(bad[i]), KMS_E_INVALID_PARAMETER);
    assert_value("{\"k\":\"\xe4\xb8\xad\"}", "\xe4\xb8\xad", 3);
}

static void test_size_limit(void **state)
{
    /* One pair: 8 bytes of lengths + 1-byte key + value. */
    size_t fit = KMS_CONTEXT_MAX_LEN - 8 - 1;
    char *json = malloc(fit + 16);
    struct kms_context ctx = {0};
    struct kms_buf out = {0};
    size_t n;

    (void)state;
    assert_non_null(json);
    n = (size_t)sprintf(json, "{\"k\":\"");
    memset(json + n, 'x', fit);
    n += fit;
    n += (size_t)sprintf(json + n, "\"}");
    assert_int_equal(canon_of(json, n, &out), KMS_OK);
    assert_int_equal(out.len, KMS_CONTEXT_MAX_LEN);
    /* One byte more is over. */
    n = (size_t)sprintf(json, "{\"k\":\"");
    memset(json + n, 'x', fit + 1);
    n += fit + 1;
    n += (size_t)sprintf(json + n, "\"}");
    assert_int_equal(canon_of(json, n, &out), KMS_E_INVALID_PARAMETER);
    free(json);

    /* The limit is on the whole context, however it is split into pairs. */
    for (int i = 0; i < 1000; i++) {
        char key[8];
        kms_err rc;

        snprintf(key, sizeof(key), "%04d", i);
        rc = kms_context_add(&ctx, key, 4, "0123456789abcdef", 16); /* 28 bytes a pair */
        if ((size_t)(i + 1) * 28 <= KMS_CONTEXT_MAX_LEN) {
            assert_int_equal(rc, KMS_OK);
        } else {
            assert_int_equal(rc, KMS_E_INVALID_PARAMETER);
            break;
        }
    }
    assert_int_equal(ctx.count, KMS_CONTEXT_MAX_LEN / 28);
    kms_context_free(&ctx);
    kms_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_bytes),      cmocka_unit_test(test_length_prefix_separates),
        cmocka_unit_test(test_order_insensitive),    cmocka_unit_test(test_flattened_equals_json),
        cmocka_unit_test(test_numbers_and_booleans), cmocka_unit_test(test_invalid_values),
        cmocka_unit_test(test_whitespace_and_empty), cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_invalid_utf8),         cmocka_unit_test(test_size_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
