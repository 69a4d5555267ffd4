/*
 * test_util.c - the shared helpers (src/util/util.c) and the error table (src/util/error.c):
 * wire time, UUIDs, hex, constant-time compare, UTF-8 checks, buffers, error messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kms/error.h"
#include "kms/util.h"

/* ---- wire time ---- */

static void test_time_format(void **state)
{
    char out[KMS_TIME_LEN];

    (void)state;
    kms_time_format(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    kms_time_format(1459134788, out);
    assert_string_equal(out, "2016-03-28T03:13:08Z");
    kms_time_format(1709164800, out); /* leap day */
    assert_string_equal(out, "2024-02-29T00:00:00Z");
    kms_time_format(4102444799, out); /* past 2038 */
    assert_string_equal(out, "2099-12-31T23:59:59Z");
}

static void test_time_parse_valid(void **state)
{
    time_t t = -1;

    (void)state;
    assert_true(kms_time_parse("2016-03-28T03:13:08Z", &t));
    assert_int_equal(t, 1459134788);
    assert_true(kms_time_parse("1970-01-01T00:00:00Z", &t));
    assert_int_equal(t, 0);
    assert_true(kms_time_parse("2024-02-29T23:59:59Z", &t));
    assert_int_equal(t, 1709251199);
    assert_true(kms_time_parse("2000-02-29T12:00:00Z", &t)); /* divisible by 400: leap */
    assert_int_equal(t, 951825600);
    assert_true(kms_time_parse("2038-01-19T03:14:08Z", &t)); /* one past INT32_MAX */
    assert_int_equal(t, 2147483648LL);
    assert_true(kms_time_parse("2023-12-31T23:59:59Z", &t));
    assert_int_equal(t, 1704067199);
}

static void test_time_round_trip(void **state)
{
    static const time_t samples[] = {
        0, 1, 59, 86399, 951782400, 1459134788, 1709164800, 2147483647, 2147483648LL, 4102444799LL};
    char text[KMS_TIME_LEN];

    (void)state;
    for (size_t i = 0; i < KMS_ARRAY_LEN(samples); i++) {
        time_t back = -1;

        kms_time_format(samples[i], text);
        assert_true(kms_time_parse(text, &back));
        assert_int_equal(back, samples[i]);
    }
    /* Every day of a leap year and a common year (noon), through both directions. */
    for (time_t t = 1704110400; t < 1704110400 + 2 * 366 * 86400; t += 86400) {
        time_t back = -1;

        kms_time_format(t, text);
        assert_true(kms_time_parse(text, &back));
        assert_int_equal(back, t);
    }
}

static void test_time_parse_rejects(void **state)
{
    static const char *const bad[] = {
        "2023-02-29T00:00:00Z", /* not a leap year */
        "2100-02-29T00:00:00Z", /* divisible by 100, not 400 */
        "2024-02-30T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-10T00:00:00Z",
        "2024-01-00T00:00:00Z",
        "2024-01-32T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T23:60:00Z",
        "2024-01-01T23:59:61Z",
        "1969-12-31T23:59:59Z", /* before the epoch */
        "2016-03-28 03:13:08",  /* seed's display form, not the wire form */
        "2016-03-28T03:13:08",  /* missing Z */
        "2016-03-28T03:13:08Z ",
        "2016-03-28T03:13:08ZZ",
        " 2016-03-28T03:13:08Z",
        "2016-03-28T03:13:08.000Z",
        "2016-03-28T03:13:08+00:00",
        /* The wire format is upper-case only: SDKs send 'T' and 'Z', and accepting more would be
         * a second spelling of the same signed Timestamp. */
        "2016-03-28t03:13:08Z",
        "2016-03-28T03:13:08z",
        "2016-3-28T03:13:08Z",
        "2016-03-28T3:13:08Z",
        "+016-03-28T03:13:08Z",
        "2016-0a-28T03:13:08Z",
        "2016/03/28T03:13:08Z",
        "2016-03-28T03-13-08Z",
        "2016-03-2-T03:13:08Z",
        "",
        "2016-03-28T03:13:0\0Z",
    };
    time_t t;

    (void)state;
    for (size_t i = 0; i < KMS_ARRAY_LEN(bad); i++) {
        t = 12345;
        if (kms_time_parse(bad[i], &t))
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(t, 12345); /* untouched on failure */
    }
    assert_false(kms_time_parse(NULL, &t));
}

/* ---- UUIDs ---- */

static void assert_uuid_v4_text(const char *s)
{
    assert_int_equal(strlen(s), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(s[i], '-');
        else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            fail_msg("not lower-case hex at %d: %s", i, s);
    }
    assert_int_equal(s[14], '4');           /* version 4 (random) */
    assert_non_null(strchr("89ab", s[19])); /* RFC 4122 variant */
}

static void test_uuid_generate(void **state)
{
    enum { N = 64 };
    char ids[N][KMS_UUID_LEN];

    (void)state;
    for (int i = 0; i < N; i++) {
        memset(ids[i], 'x', KMS_UUID_LEN);
        kms_uuid_generate(ids[i]);
        assert_uuid_v4_text(ids[i]);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
}

static void test_uuid_parse_unparse(void **state)
{
    static const uint8_t raw[16] = {0x34, 0x55, 0xb9, 0xb4, 0x95, 0xc1, 0x41, 0x9d,
                                    0xb3, 0x10, 0xdb, 0x6a, 0x53, 0xb0, 0x9a, 0x39};
    uint8_t bytes[16];
    char text[KMS_UUID_LEN];
    char gen[KMS_UUID_LEN];

    (void)state;
    assert_true(kms_uuid_parse("3455b9b4-95c1-419d-b310-db6a53b09a39", bytes));
    assert_memory_equal(bytes, raw, 16);
    /* Either case in, lower case out. */
    assert_true(kms_uuid_parse("3455B9B4-95C1-419D-B310-DB6A53B09A39", bytes));
    assert_memory_equal(bytes, raw, 16);
    kms_uuid_unparse(bytes, text);
    assert_string_equal(text, "3455b9b4-95c1-419d-b310-db6a53b09a39");

    kms_uuid_generate(gen);
    assert_true(kms_uuid_parse(gen, bytes));
    kms_uuid_unparse(bytes, text);
    assert_string_equal(text, gen);
}

static void test_uuid_parse_rejects(void **state)
{
    static const char *const bad[] = {
        "",
        "3455b9b4-95c1-419d-b310-db6a53b09a3",   /* 35 chars */
        "3455b9b4-95c1-419d-b310-db6a53b09a399", /* 37 chars */
        "3455b9b4-95c1-419d-b310-db6a53b09a3g",  /* not hex */
        "3455b9b4x95c1-419d-b310-db6a53b09a39",  /* separator */
        "3455b9b495c1-419d-b310-db6a53b09a39-",  /* hyphen moved */
        "3455b9b4-95c1-419d-b310-db6a53b09a39 ",
        "{3455b9b4-95c1-419d-b310-db6a53b09a39}",
        "3455b9b495c1419db310db6a53b09a39", /* no hyphens */
        "3455b9b4-95c1-419d-b310-db6a53b0 a39",
    };
    uint8_t bytes[16];

    (void)state;
    for (size_t i = 0; i < KMS_ARRAY_LEN(bad); i++)
        if (kms_uuid_parse(bad[i], bytes))
            fail_msg("accepted \"%s\"", bad[i]);
    assert_false(kms_uuid_parse(NULL, bytes));
}

/* ---- hex, constant-time compare ---- */

static void test_hex_encode(void **state)
{
    static const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
    char out[2 * sizeof(in) + 1];

    (void)state;
    memset(out, 'x', sizeof(out));
    kms_hex_encode(in, sizeof(in), out);
    assert_string_equal(out, "00017f80abcdefff");
    memset(out, 'x', sizeof(out));
    kms_hex_encode(in, 0, out);
    assert_string_equal(out, "");
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_true(kms_ct_equal("secret", 6, "secret", 6));
    assert_true(kms_ct_equal("", 0, "", 0));
    assert_false(kms_ct_equal("secret", 6, "secreT", 6));
    assert_false(kms_ct_equal("secret", 6, "Secret", 6));
    assert_false(kms_ct_equal("secret", 6, "secret!", 7)); /* prefix */
    assert_false(kms_ct_equal("secret!", 7, "secret", 6));
    /* Equal over the longer length (b's NUL follows): only the length check can tell. */
    assert_false(kms_ct_equal("ab\0", 3, "ab", 2));
    assert_false(kms_ct_equal("ab", 2, "ab\0", 3));
    assert_false(kms_ct_equal("a\0b", 3, "a\0c", 3)); /* bytes, not C strings */
    assert_true(kms_ct_equal("a\0b", 3, "a\0b", 3));
}

/* ---- UTF-8 ---- */

#define UTF8_OK(lit)  assert_true(kms_utf8_valid(lit, sizeof(lit) - 1))
#define UTF8_BAD(lit) assert_false(kms_utf8_valid(lit, sizeof(lit) - 1))

static void test_utf8_valid(void **state)
{
    (void)state;
    UTF8_OK("");
    UTF8_OK("plain ASCII ~\x7f");
    UTF8_OK("\xC2\x80\xC3\xA9\xDF\xBF");          /* 2-byte: U+0080, é, U+07FF */
    UTF8_OK("中文\xE0\xA0\x80\xEF\xBF\xBF");      /* 3-byte incl. U+0800, U+FFFF */
    UTF8_OK("\xED\x9F\xBF\xEE\x80\x80");          /* U+D7FF, U+E000 around the surrogates */
    UTF8_OK("😀\xF0\x90\x80\x80\xF4\x8F\xBF\xBF"); /* 4-byte incl. U+10000, U+10FFFF */

    UTF8_BAD("a\0b");             /* NUL */
    UTF8_BAD("\xC0\x80");         /* overlong NUL */
    UTF8_BAD("\xC1\xBF");         /* overlong 2-byte */
    UTF8_BAD("\xE0\x80\x80");     /* overlong 3-byte */
    UTF8_BAD("\xE0\x9F\xBF");     /* overlong U+07FF */
    UTF8_BAD("\xF0\x80\x80\x80"); /* overlong 4-byte */
    UTF8_BAD("\xF0\x8F\xBF\xBF"); /* overlong U+FFFF */
    UTF8_BAD("\xED\xA0\x80");     /* U+D800 */
    UTF8_BAD("\xED\xBF\xBF");     /* U+DFFF */
    UTF8_BAD("\xF4\x90\x80\x80"); /* U+110000 */
    UTF8_BAD("\xF5\x80\x80\x80");
    UTF8_BAD("\xF8\x88\x80\x80\x80"); /* old 5-byte form */
    UTF8_BAD("\xFE");
    UTF8_BAD("\xFF");
    UTF8_BAD("\x80"); /* lone continuation */
    UTF8_BAD("a\xBF"
             "b");
    UTF8_BAD("\xC3"); /* truncated at the end */
    UTF8_BAD("ok\xE4\xB8");
    UTF8_BAD("ok\xF0\x9F\x98");
    UTF8_BAD("\xE4\x41\xAD"); /* continuation missing mid-sequence */
    UTF8_BAD("\xC3\xA9\xA9"); /* one continuation too many */

    /* Truncation by len, not by the NUL: the sequence is cut where the caller says. */
    assert_false(kms_utf8_valid("中", 2));
    assert_true(kms_utf8_valid("中", 3));
}

static void test_utf8_length(void **state)
{
    (void)state;
    assert_int_equal(kms_utf8_length("", 0), 0);
    assert_int_equal(kms_utf8_length("abc", 3), 3);
    assert_int_equal(kms_utf8_length("中文", 6), 2);
    assert_int_equal(kms_utf8_length("😀", 4), 1);
    assert_int_equal(kms_utf8_length("a\xC3\xA9中😀z", 11), 5);
}

/* ---- buffers ---- */

static void test_buf_append_growth(void **state)
{
    struct kms_buf b = {0};
    char want[3001];

    (void)state;
    /* Zero-length append on a fresh buffer still yields a NUL-terminated string. */
    assert_int_equal(kms_buf_append(&b, "", 0), KMS_OK);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    assert_int_equal(b.len, 0);

    for (int i = 0; i < 3000; i++) {
        size_t old_cap = b.cap;

        want[i] = (char)('a' + i % 26);
        assert_int_equal(kms_buf_append_char(&b, want[i]), KMS_OK);
        assert_true(b.cap > b.len);
        assert_int_equal(b.data[b.len], '\0');
        /* Geometric growth, so appending n bytes one at a time costs O(n), not O(n^2). */
        if (b.cap != old_cap && b.cap < 2 * old_cap)
            fail_msg("capacity grew from %zu to only %zu", old_cap, b.cap);
    }
    want[3000] = '\0';
    assert_int_equal(b.len, 3000);
    assert_string_equal(b.data, want);

    assert_int_equal(kms_buf_append_str(&b, "XYZ"), KMS_OK);
    assert_int_equal(b.len, 3003);
    assert_string_equal(b.data + 3000, "XYZ");
    assert_int_equal(kms_buf_append(&b, "\0q", 2), KMS_OK); /* binary-safe */
    assert_int_equal(b.len, 3005);
    assert_memory_equal(b.data + 3003, "\0q\0", 3);
    kms_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_buf_reserve(void **state)
{
    struct kms_buf b = {0};
    char *before;

    (void)state;
    assert_int_equal(kms_buf_reserve(&b, 1000), KMS_OK);
    assert_true(b.cap >= 1001);
    assert_int_equal(b.len, 0);
    before = b.data;
    /* Appends within the reservation do not move the data. */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(kms_buf_append_char(&b, 'x'), KMS_OK);
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.len, 1000);
    kms_buf_free(&b);
}

/* A secret buffer grows by moving (and wiping) rather than realloc: same contents either way. */
static void test_buf_secret_growth(void **state)
{
    struct kms_buf b = {0};
    char want[5001];

    (void)state;
    b.secret = true;
    for (int i = 0; i < 5000; i++) {
        want[i] = (char)('A' + i % 26);
        assert_int_equal(kms_buf_append_char(&b, want[i]), KMS_OK);
        assert_int_equal(b.data[b.len], '\0');
    }
    want[5000] = '\0';
    assert_string_equal(b.data, want);
    assert_int_equal(kms_buf_append(&b, "\0z", 2), KMS_OK);
    assert_memory_equal(b.data + 5000, "\0z\0", 3);
    assert_true(b.secret); /* still set after the moves */
    kms_buf_free_secret(&b);
    assert_null(b.data);
}

static void test_buf_printf(void **state)
{
    struct kms_buf b = {0};
    char big[1000];

    (void)state;
    assert_int_equal(kms_buf_printf(&b, "%s=%d", "n", 42), KMS_OK);
    assert_string_equal(b.data, "n=42");
    assert_int_equal(b.len, 4);
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(kms_buf_printf(&b, "[%s]%05u", big, 7u), KMS_OK);
    assert_int_equal(b.len, 4 + 1 + 999 + 1 + 5);
    assert_int_equal(strlen(b.data), b.len);
    assert_memory_equal(b.data, "n=42[zzz", 8);
    assert_string_equal(b.data + b.len - 6, "]00007");
    assert_int_equal(kms_buf_printf(&b, "%s", ""), KMS_OK);
    assert_int_equal(b.len, 1010);
    kms_buf_free(&b);
}

static void test_buf_reset(void **state)
{
    struct kms_buf b = {0};
    size_t cap;

    (void)state;
    kms_buf_reset(&b); /* on a never-used buffer: nothing to touch */
    assert_null(b.data);
    assert_int_equal(kms_buf_append_str(&b, "hello, world"), KMS_OK);
    cap = b.cap;
    kms_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(b.cap, cap); /* keeps its memory for reuse */
    assert_int_equal(kms_buf_append_str(&b, "again"), KMS_OK);
    assert_string_equal(b.data, "again");
    kms_buf_free_secret(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    kms_buf_free_secret(&b); /* twice, and on an empty buffer: harmless */
    kms_buf_free(&b);
}

static void test_strndup(void **state)
{
    char *p;

    (void)state;
    p = kms_strndup("abcdef", 3);
    assert_non_null(p);
    assert_string_equal(p, "abc");
    free(p);
    p = kms_strndup("", 0);
    assert_non_null(p);
    assert_string_equal(p, "");
    free(p);
}

/* ---- error table ---- */

static void test_err_info_table(void **state)
{
    (void)state;
    for (int e = KMS_OK + 1; e < KMS_E_COUNT; e++) {
        const struct kms_err_info *info = kms_err_info((kms_err)e);
        const char *hole;

        assert_non_null(info);
        assert_non_null(info->code);
        assert_non_null(info->message);
        if (info->code[0] == '\0' || info->message[0] == '\0')
            fail_msg("error %d has an empty code or message", e);
        if (info->http_status < 400 || info->http_status > 599)
            fail_msg("error %d (%s) has status %d", e, info->code, info->http_status);
        /* Codes go on the wire verbatim and SDKs match them: no spaces or quotes. */
        if (strpbrk(info->code, " \t\"<>&") != NULL)
            fail_msg("error %d has a malformed code \"%s\"", e, info->code);
        /* At most one "%s" and no other '%': kms_err_message fills exactly one hole. */
        hole = strstr(info->message, "%s");
        if (hole != NULL && strchr(hole + 2, '%') != NULL)
            fail_msg("error %d (%s) has more than one %% in its message", e, info->code);
        if (strchr(info->message, '%') != hole)
            fail_msg("error %d (%s) has a stray %% in its message", e, info->code);
    }
}

static void test_err_info_rows(void **state)
{
    const struct kms_err_info *info;

    (void)state;
    info = kms_err_info(KMS_E_KEY_NOT_FOUND);
    assert_string_equal(info->code, "Forbidden.KeyNotFound");
    assert_int_equal(info->http_status, 404);
    info = kms_err_info(KMS_E_SIGNATURE_MISMATCH);
    assert_string_equal(info->code, "SignatureDoesNotMatch");
    assert_int_equal(info->http_status, 400);
    info = kms_err_info(KMS_E_THROTTLING);
    assert_string_equal(info->code, "Rejected.Throttling");
    assert_int_equal(info->http_status, 429);
    info = kms_err_info(KMS_E_DRY_RUN);
    assert_string_equal(info->code, "DryRunOperationError");

    /* Out of range, and KMS_OK (asking for success's error row is a bug): InternalFailure. */
    assert_ptr_equal(kms_err_info(KMS_E_COUNT), kms_err_info(KMS_E_INTERNAL));
    assert_ptr_equal(kms_err_info((kms_err)(KMS_E_COUNT + 100)), kms_err_info(KMS_E_INTERNAL));
    assert_ptr_equal(kms_err_info((kms_err)-1), kms_err_info(KMS_E_INTERNAL));
    assert_ptr_equal(kms_err_info(KMS_OK), kms_err_info(KMS_E_INTERNAL));
    assert_string_equal(kms_err_info(KMS_E_COUNT)->code, "InternalFailure");
    assert_int_equal(kms_err_info(KMS_E_COUNT)->http_status, 500);
}

static void test_err_message(void **state)
{
    char buf[256];

    (void)state;
    kms_err_message(KMS_E_MISSING_PARAMETER, "KeyId", buf, sizeof(buf));
    assert_string_equal(buf, "The parameter \"KeyId\" is needed but not provided.");
    kms_err_message(KMS_E_INVALID_PARAMETER, "PageSize", buf, sizeof(buf));
    assert_string_equal(buf, "The specified parameter \"PageSize\" is not valid.");
    kms_err_message(KMS_E_INVALID_PARAMETER, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "The specified parameter \"\" is not valid.");
    kms_err_message(KMS_E_INVALID_PARAMETER, "", buf, sizeof(buf));
    assert_string_equal(buf, "The specified parameter \"\" is not valid.");
    /* The hole at the very end. */
    kms_err_message(KMS_E_SIGNATURE_MISMATCH, "GET&%2F&x", buf, sizeof(buf));
    assert_string_equal(buf, "Specified signature is not matched with our calculation. "
                             "server string to sign is:GET&%2F&x");
    /* The detail is data, never a format: client-controlled text may hold '%'. */
    kms_err_message(KMS_E_MISSING_PARAMETER, "%s%n%x", buf, sizeof(buf));
    assert_string_equal(buf, "The parameter \"%s%n%x\" is needed but not provided.");
    /* No hole: the detail is ignored. */
    kms_err_message(KMS_E_KEY_NOT_FOUND, "ignored", buf, sizeof(buf));
    assert_string_equal(buf, "The specified Key is not found.");
    kms_err_message(KMS_E_TIMESTAMP_MISSING, "ignored", buf, sizeof(buf));
    assert_string_equal(buf, kms_err_info(KMS_E_TIMESTAMP_MISSING)->message);
    /* Out of range falls back to InternalFailure's text. */
    kms_err_message(KMS_E_COUNT, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "Internal Failure.");
}

static void test_err_message_truncation(void **state)
{
    char buf[32];
    char big[600];

    (void)state;
    memset(buf, '#', sizeof(buf));
    kms_err_message(KMS_E_MISSING_PARAMETER, "KeyId", buf, 10);
    assert_string_equal(buf, "The param");
    assert_int_equal(buf[10], '#'); /* nothing written past size */

    memset(buf, '#', sizeof(buf));
    kms_err_message(KMS_E_KEY_NOT_FOUND, NULL, buf, 5);
    assert_string_equal(buf, "The ");
    assert_int_equal(buf[5], '#');

    /* Cut inside the detail. */
    memset(buf, '#', sizeof(buf));
    kms_err_message(KMS_E_MISSING_PARAMETER, "AVeryLongParameterName", buf, 20);
    assert_string_equal(buf, "The parameter \"AVer");

    memset(buf, '#', sizeof(buf));
    kms_err_message(KMS_E_MISSING_PARAMETER, "KeyId", buf, 1);
    assert_string_equal(buf, "");
    assert_int_equal(buf[1], '#');

    memset(buf, '#', sizeof(buf));
    kms_err_message(KMS_E_MISSING_PARAMETER, "KeyId", buf, 0);
    assert_int_equal(buf[0], '#'); /* size 0: not even a NUL */

    memset(big, 'S', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    kms_err_message(KMS_E_SIGNATURE_MISMATCH, big, buf, sizeof(buf));
    assert_int_equal(strlen(buf), sizeof(buf) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_time_parse_valid),
        cmocka_unit_test(test_time_round_trip),
        cmocka_unit_test(test_time_parse_rejects),
        cmocka_unit_test(test_uuid_generate),
        cmocka_unit_test(test_uuid_parse_unparse),
        cmocka_unit_test(test_uuid_parse_rejects),
        cmocka_unit_test(test_hex_encode),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_length),
        cmocka_unit_test(test_buf_append_growth),
        cmocka_unit_test(test_buf_reserve),
        cmocka_unit_test(test_buf_secret_growth),
        cmocka_unit_test(test_buf_printf),
        cmocka_unit_test(test_buf_reset),
        cmocka_unit_test(test_strndup),
        cmocka_unit_test(test_err_info_table),
        cmocka_unit_test(test_err_info_rows),
        cmocka_unit_test(test_err_message),
        cmocka_unit_test(test_err_message_truncation),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
