/*
 * test_params.c - the parameter map (src/http/request.c): form decoding ("+" and %20 are spaces,
 * %2B is a "+"), refusal of malformed escapes, of bytes that are not UTF-8 and of NUL, duplicate
 * names across query and body, empty values, case-sensitive names, bytewise order, lookups, and
 * request header lookup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kms/http.h"

static kms_err parse(struct kms_params *p, const char *text, enum kms_param_source source)
{
    return kms_params_parse(p, text, strlen(text), source);
}

/* Parses query (and body, may be NULL) and finishes the map; the map is left for the caller. */
static void parse_ok(struct kms_params *p, const char *query, const char *body)
{
    const char *dup = NULL;

    memset(p, 0, sizeof(*p));
    assert_int_equal(parse(p, query, KMS_PARAM_QUERY), KMS_OK);
    if (body != NULL)
        assert_int_equal(parse(p, body, KMS_PARAM_BODY), KMS_OK);
    assert_int_equal(kms_params_finish(p, &dup), KMS_OK);
    assert_null(dup);
}

static const char *value_of(const struct kms_params *p, const char *name)
{
    const struct kms_param *it = kms_params_find(p, name);

    return it != NULL ? it->value : NULL;
}

static void test_spaces_and_plus(void **state)
{
    struct kms_params p;

    (void)state;
    parse_ok(&p, "a=x+y&b=x%20y&c=x%2By&d=%2B+%2b&e=++", NULL);
    assert_string_equal(value_of(&p, "a"), "x y");
    assert_string_equal(value_of(&p, "b"), "x y");
    assert_string_equal(value_of(&p, "c"), "x+y");
    assert_string_equal(value_of(&p, "d"), "+ +");
    assert_string_equal(value_of(&p, "e"), "  ");
    kms_params_free(&p);
    /* Names decode too, and keep their lengths. */
    parse_ok(&p, "EncryptionContext.a%20b=c%26d&x+y=1", NULL);
    assert_string_equal(value_of(&p, "EncryptionContext.a b"), "c&d");
    assert_string_equal(value_of(&p, "x y"), "1");
    assert_int_equal(kms_params_find(&p, "x y")->name_len, 3);
    assert_int_equal(kms_params_find(&p, "EncryptionContext.a b")->value_len, 3);
    kms_params_free(&p);
}

static void test_escapes_and_utf8(void **state)
{
    struct kms_params p;

    (void)state;
    /* Upper- and lower-case hex, multi-byte UTF-8, raw UTF-8, characters Node leaves raw. */
    parse_ok(&p,
             "a=%e6%b5%8b%E8%AF%95&b=%F0%9F%98%80&c=\xc3\xa9&d=*~!'()&e=%7e&f=a=b=c&g=%25&h=%3D",
             NULL);
    assert_string_equal(value_of(&p, "a"), "测试");
    assert_string_equal(value_of(&p, "b"), "\xf0\x9f\x98\x80");
    assert_string_equal(value_of(&p, "c"), "é");
    assert_string_equal(value_of(&p, "d"), "*~!'()");
    assert_string_equal(value_of(&p, "e"), "~");
    assert_string_equal(value_of(&p, "f"), "a=b=c"); /* split at the first "=" */
    assert_string_equal(value_of(&p, "g"), "%");
    assert_string_equal(value_of(&p, "h"), "=");
    kms_params_free(&p);
}

static void test_malformed_rejected(void **state)
{
    static const char *const bad[] = {
        "a=%G1",          "a=%1G",       "a=%4",           "a=%",        "a=x%",
        "a=%%41",         "%zz=1",       "a=%4&b=1",       "ok=1&a=%x1", /* malformed escapes */
        "a=%00",          "a%00b=1",     "a=x%00",                       /* NUL */
        "a=%C0%AF",       "a=%E0%80%AF", "a=%F0%80%80%AF",               /* overlong */
        "a=%80",          "a=x%BFy",                                     /* lone continuation */
        "a=%ED%A0%80",    "a=%ED%BF%BF",                                 /* UTF-16 surrogates */
        "a=%C3",          "a=%E6%B5",                                    /* truncated sequences */
        "a=%F4%90%80%80", "a=%FF",       "a=%FE", /* beyond U+10FFFF, never UTF-8 */
        "a=\xc3(",        "\xff=1",               /* raw invalid bytes */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct kms_params p = {0};
        kms_err rc = parse(&p, bad[i], KMS_PARAM_QUERY);

        if (rc != KMS_E_PARSE_REQUEST)
            fail_msg("accepted (%d): %s", (int)rc, bad[i]);
        kms_params_free(&p);
    }
    /* The same refusals from a body. */
    {
        struct kms_params p = {0};

        assert_int_equal(parse(&p, "a=%ED%A0%80", KMS_PARAM_BODY), KMS_E_PARSE_REQUEST);
        kms_params_free(&p);
    }
}

static void test_empty_values_and_segments(void **state)
{
    struct kms_params p;
    const struct kms_param *it;

    (void)state;
    parse_ok(&p, "&SignatureType=&Flag&&=v&Last=x&", NULL);
    assert_int_equal(p.count, 4);
    it = kms_params_find(&p, "SignatureType");
    assert_non_null(it);
    assert_string_equal(it->value, "");
    assert_int_equal(it->value_len, 0);
    it = kms_params_find(&p, "Flag");
    assert_non_null(it);
    assert_string_equal(it->value, "");
    /* "=v" is a parameter with an empty name: signed as sent, unknown to every handler. */
    it = kms_params_find(&p, "");
    assert_non_null(it);
    assert_string_equal(it->value, "v");
    assert_string_equal(value_of(&p, "Last"), "x");
    kms_params_free(&p);
    /* Nothing at all. */
    parse_ok(&p, "", "");
    assert_int_equal(p.count, 0);
    assert_null(kms_params_find(&p, "a"));
    kms_params_free(&p);
    memset(&p, 0, sizeof(p));
    assert_int_equal(kms_params_parse(&p, NULL, 0, KMS_PARAM_BODY), KMS_OK);
    assert_int_equal(p.count, 0);
    kms_params_free(&p);
}

/* Bare names need two NULs each and have no "=" to give one up: the tightest decoding space. */
static void test_bare_names_only(void **state)
{
    static const struct {
        const char *text, *last;
        size_t count;
    } cases[] = {{"a", "a", 1}, {"a&b", "b", 2}, {"ab&c&d", "d", 3}, {"Flag&&x&yz", "yz", 3}};
    struct kms_params p;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_ok(&p, cases[i].text, NULL);
        assert_int_equal(p.count, cases[i].count);
        assert_string_equal(value_of(&p, cases[i].last), "");
        for (size_t j = 0; j < p.count; j++)
            assert_int_equal(p.items[j].value[p.items[j].value_len], '\0');
        kms_params_free(&p);
    }
}

static void test_duplicates(void **state)
{
    struct kms_params p;
    const char *dup;

    (void)state;
    /* Twice in the query. */
    memset(&p, 0, sizeof(p));
    dup = NULL;
    assert_int_equal(parse(&p, "a=1&KeyId=x&b=2&KeyId=x", KMS_PARAM_QUERY), KMS_OK);
    assert_int_equal(kms_params_finish(&p, &dup), KMS_E_INVALID_PARAMETER);
    assert_non_null(dup);
    assert_string_equal(dup, "KeyId");
    kms_params_free(&p);
    /* Once in the query, once in the body. */
    memset(&p, 0, sizeof(p));
    dup = NULL;
    assert_int_equal(parse(&p, "Action=ListKeys&PageSize=2", KMS_PARAM_QUERY), KMS_OK);
    assert_int_equal(parse(&p, "PageSize=3", KMS_PARAM_BODY), KMS_OK);
    assert_int_equal(kms_params_finish(&p, &dup), KMS_E_INVALID_PARAMETER);
    assert_string_equal(dup, "PageSize");
    kms_params_free(&p);
    /* Twice in the body, spelled differently on the wire but the same once decoded. */
    memset(&p, 0, sizeof(p));
    dup = NULL;
    assert_int_equal(parse(&p, "a+b=1&a%20b=2", KMS_PARAM_BODY), KMS_OK);
    assert_int_equal(kms_params_finish(&p, &dup), KMS_E_INVALID_PARAMETER);
    assert_string_equal(dup, "a b");
    kms_params_free(&p);
    /* Names differing only in case are different names. */
    parse_ok(&p, "KeyId=1&keyid=2&KEYID=3", NULL);
    assert_int_equal(p.count, 3);
    assert_string_equal(value_of(&p, "KeyId"), "1");
    assert_string_equal(value_of(&p, "keyid"), "2");
    assert_string_equal(value_of(&p, "KEYID"), "3");
    assert_null(kms_params_find(&p, "Keyid"));
    kms_params_free(&p);
}

static void test_order_and_sources(void **state)
{
    static const char *const want[] = {
        "",       "A", "AccessKeyId", "Action", "EncryptionContext.Example",
        "Format", "Z", "a",           "ab",     "\xc3\xa9",
    };
    struct kms_params p;

    (void)state;
    parse_ok(&p, "Format=json&ab=1&EncryptionContext.Example=Example&a=2&Action=Encrypt",
             "%C3%A9=3&Z=4&AccessKeyId=testid&A=5&=6");
    assert_int_equal(p.count, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < p.count; i++)
        assert_string_equal(p.items[i].name, want[i]);
    assert_int_equal(kms_params_find(&p, "Format")->source, KMS_PARAM_QUERY);
    assert_int_equal(kms_params_find(&p, "AccessKeyId")->source, KMS_PARAM_BODY);
    kms_params_free(&p);
}

static void test_find(void **state)
{
    struct kms_params p;
    char name[16];

    (void)state;
    /* Every one of many names is found; neighbours and prefixes are not. */
    memset(&p, 0, sizeof(p));
    for (int i = 0; i < 200; i++) {
        char pair[32];
        int n = snprintf(pair, sizeof(pair), "P%03d=v%d", i * 3, i);

        assert_int_equal(kms_params_parse(&p, pair, (size_t)n, KMS_PARAM_QUERY), KMS_OK);
    }
    assert_int_equal(kms_params_finish(&p, NULL), KMS_OK);
    for (int i = 0; i < 600; i++) {
        const struct kms_param *it;

        snprintf(name, sizeof(name), "P%03d", i);
        it = kms_params_find(&p, name);
        if (i % 3 == 0) {
            char want[16];

            assert_non_null(it);
            snprintf(want, sizeof(want), "v%d", i / 3);
            assert_string_equal(it->value, want);
        } else {
            assert_null(it);
        }
    }
    assert_null(kms_params_find(&p, "P"));
    assert_null(kms_params_find(&p, "P0000"));
    assert_null(kms_params_find(&p, ""));
    assert_null(kms_params_find(&p, "Q"));
    kms_params_free(&p);
    assert_null(p.items);
    assert_int_equal(p.count, 0);
    /* An empty map. */
    memset(&p, 0, sizeof(p));
    assert_null(kms_params_find(&p, "a"));
}

static void test_long_values(void **state)
{
    /* A 30 KB secret in the query, as the Node SDK sends SecretData. */
    enum { N = 30720 };
    static char text[3 * N + 32];
    struct kms_params p;
    size_t o;

    (void)state;
    memcpy(text, "SecretData=", 11);
    o = 11;
    for (size_t i = 0; i < N; i++) {
        memcpy(text + o, "%41", 3);
        o += 3;
    }
    text[o] = '\0';
    parse_ok(&p, text, NULL);
    assert_int_equal(kms_params_find(&p, "SecretData")->value_len, N);
    assert_int_equal(kms_params_find(&p, "SecretData")->value[N - 1], 'A');
    kms_params_free(&p);
}

static void test_request_header(void **state)
{
    struct kms_header headers[] = {
        {(char *)"host", (char *)"kms.example"},
        {(char *)"x-acs-action", (char *)"Encrypt"},
        {(char *)"x-acs-action", (char *)"Second"},
    };
    struct kms_request req;

    (void)state;
    memset(&req, 0, sizeof(req));
    assert_null(kms_request_header(&req, "host"));
    req.headers = headers;
    req.header_count = 3;
    assert_string_equal(kms_request_header(&req, "host"), "kms.example");
    assert_string_equal(kms_request_header(&req, "x-acs-action"), "Encrypt");
    assert_null(kms_request_header(&req, "Host"));
    assert_null(kms_request_header(&req, "x-acs-date"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spaces_and_plus),    cmocka_unit_test(test_escapes_and_utf8),
        cmocka_unit_test(test_malformed_rejected), cmocka_unit_test(test_empty_values_and_segments),
        cmocka_unit_test(test_bare_names_only),    cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_order_and_sources),  cmocka_unit_test(test_find),
        cmocka_unit_test(test_long_values),        cmocka_unit_test(test_request_header),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
