/*
 * test_rotation_interval.c - duration input "<integer>[d|h|m|s]" (src/util/util.c
 * kms_duration_parse) and the RotationInterval parameter built on it (src/api/args.c
 * kms_arg_rotation_interval): units, the 7-730 day bounds, malformed text and overflow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kms/api.h"
#include "kms/util.h"

#define DAY 86400LL

/* ---- kms_duration_parse ---- */

static void test_duration_units(void **state)
{
    int64_t n = -1;

    (void)state;
    assert_true(kms_duration_parse("7d", &n));
    assert_int_equal(n, 604800);
    assert_true(kms_duration_parse("604800s", &n));
    assert_int_equal(n, 604800);
    assert_true(kms_duration_parse("604800", &n)); /* no unit: seconds */
    assert_int_equal(n, 604800);
    assert_true(kms_duration_parse("168h", &n));
    assert_int_equal(n, 604800);
    assert_true(kms_duration_parse("10080m", &n));
    assert_int_equal(n, 604800);
    assert_true(kms_duration_parse("0s", &n));
    assert_int_equal(n, 0);
    assert_true(kms_duration_parse("0007d", &n)); /* leading zeros are still a number */
    assert_int_equal(n, 604800);
}

static void test_duration_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "d",
        "s",
        "7x",
        "-7d",
        "+7d",
        " 7d",
        "7d ",
        "7 d",
        "7dd",
        "7D",
        "7.5d",
        "1e6",
        "0x10s",
        "7sd",
        "d7",
        "ds",
        "h",
        "--1",
        "weekly",
        "\xef\xbc\x97"
        "d", /* full-width digit 7 */
    };
    int64_t n = 12345;

    (void)state;
    for (size_t i = 0; i < KMS_ARRAY_LEN(bad); i++) {
        if (kms_duration_parse(bad[i], &n))
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(n, 12345); /* untouched on failure */
    }
    assert_false(kms_duration_parse(NULL, &n));
}

static void test_duration_overflow(void **state)
{
    int64_t n = 0;

    (void)state;
    /* The largest value there is, exactly, and one past it. */
    assert_true(kms_duration_parse("9223372036854775807", &n));
    assert_int_equal(n, INT64_MAX);
    assert_false(kms_duration_parse("9223372036854775808", &n));
    assert_false(kms_duration_parse("99999999999999999999999999999999d", &n));
    /* Fits as a number, overflows once multiplied by the unit. */
    assert_true(kms_duration_parse("106751991167300d", &n));
    assert_int_equal(n, 106751991167300LL * DAY);
    assert_false(kms_duration_parse("106751991167301d", &n));
    assert_false(kms_duration_parse("9223372036854775807m", &n));
    assert_false(kms_duration_parse("153722867280912931m", &n));
}

/* ---- kms_arg_rotation_interval ---- */

struct arg_case {
    const char *query;
    kms_err want;
    int64_t seconds;
};

static kms_err run_arg(const char *query, int64_t *out, char *detail, size_t detail_size)
{
    struct kms_call call;
    const char *dup = NULL;
    kms_err rc;

    memset(&call, 0, sizeof(call));
    assert_int_equal(kms_params_parse(&call.params, query, strlen(query), KMS_PARAM_QUERY), KMS_OK);
    assert_int_equal(kms_params_finish(&call.params, &dup), KMS_OK);
    rc = kms_arg_rotation_interval(&call, "RotationInterval", out);
    snprintf(detail, detail_size, "%s", call.detail.data ? call.detail.data : "");
    kms_params_free(&call.params);
    kms_buf_free(&call.detail);
    return rc;
}

static void test_arg_rotation_interval(void **state)
{
    static const struct arg_case cases[] = {
        {"RotationInterval=7d", KMS_OK, 7 * DAY},
        {"RotationInterval=604800s", KMS_OK, 7 * DAY},
        {"RotationInterval=604800", KMS_OK, 7 * DAY},
        {"RotationInterval=168h", KMS_OK, 7 * DAY},
        {"RotationInterval=10080m", KMS_OK, 7 * DAY},
        {"RotationInterval=730d", KMS_OK, 730 * DAY},
        {"RotationInterval=63072000s", KMS_OK, 730 * DAY},
        {"RotationInterval=30d", KMS_OK, 30 * DAY},
        /* Bounds: one second either side of 7 and 730 days. */
        {"RotationInterval=604799s", KMS_E_INVALID_PARAMETER, 0},
        {"RotationInterval=63072001s", KMS_E_INVALID_PARAMETER, 0},
        {"RotationInterval=6d", KMS_E_INVALID_PARAMETER, 0},
        {"RotationInterval=731d", KMS_E_INVALID_PARAMETER, 0},
        {"RotationInterval=0", KMS_E_INVALID_PARAMETER, 0},
        {"RotationInterval=3600s", KMS_E_INVALID_PARAMETER, 0},
        {"RotationInterval=d", KMS_E_INVALID_PARAMETER, 0},
        {"RotationInterval=7x", KMS_E_INVALID_PARAMETER, 0},
        {"RotationInterval=-7d", KMS_E_INVALID_PARAMETER, 0},
        {"RotationInterval=weekly", KMS_E_INVALID_PARAMETER, 0},
        {"RotationInterval=99999999999999999999999d", KMS_E_INVALID_PARAMETER, 0},
        {"RotationInterval=9223372036854775807", KMS_E_INVALID_PARAMETER, 0},
        /* Absent or empty (empty counts as not provided, spec/protocol.md §2). */
        {"RotationInterval=", KMS_E_MISSING_PARAMETER, 0},
        {"Other=7d", KMS_E_MISSING_PARAMETER, 0},
    };
    char detail[64];

    (void)state;
    for (size_t i = 0; i < KMS_ARRAY_LEN(cases); i++) {
        int64_t n = -1;
        kms_err rc = run_arg(cases[i].query, &n, detail, sizeof(detail));

        if (rc != cases[i].want)
            fail_msg("%s: got %d, want %d", cases[i].query, (int)rc, (int)cases[i].want);
        if (rc == KMS_OK) {
            assert_int_equal(n, cases[i].seconds);
        } else {
            assert_int_equal(n, -1);
            assert_string_equal(detail, "RotationInterval"); /* the error names the parameter */
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_units),
        cmocka_unit_test(test_duration_malformed),
        cmocka_unit_test(test_duration_overflow),
        cmocka_unit_test(test_arg_rotation_interval),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
