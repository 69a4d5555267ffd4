/*
 * test_b64.c - standard Base64 (RFC 4648 §4): the RFC's vectors, optional padding on input, and
 * rejection of bad characters, impossible lengths and misplaced '='.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kms/crypto.h"

/* RFC 4648 §10. */
static const struct {
    const char *plain, *b64;
} rfc_vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static bool decode(const char *in, size_t len, uint8_t *out, size_t *out_len)
{
    return kms_b64_decode(in, len, out, out_len);
}

static void test_rfc4648_encode(void **state)
{
    char out[16];
    struct kms_buf b = {0};

    (void)state;
    for (size_t i = 0; i < KMS_ARRAY_LEN(rfc_vectors); i++) {
        size_t n = strlen(rfc_vectors[i].plain);

        assert_int_equal(KMS_B64_ENCODED_LEN(n), strlen(rfc_vectors[i].b64));
        assert_int_equal(kms_b64_encode((const uint8_t *)rfc_vectors[i].plain, n, out),
                         strlen(rfc_vectors[i].b64));
        assert_string_equal(out, rfc_vectors[i].b64);
        /* Appending keeps what is already in the buffer. */
        kms_buf_reset(&b);
        assert_int_equal(kms_buf_append_str(&b, "x:"), KMS_OK);
        assert_int_equal(kms_b64_append(&b, (const uint8_t *)rfc_vectors[i].plain, n), KMS_OK);
        assert_int_equal(b.len, 2 + strlen(rfc_vectors[i].b64));
        assert_memory_equal(b.data, "x:", 2);
        assert_string_equal(b.data + 2, rfc_vectors[i].b64);
    }
    kms_buf_free(&b);
}

static void test_rfc4648_decode(void **state)
{
    uint8_t out[16];
    size_t out_len;

    (void)state;
    for (size_t i = 0; i < KMS_ARRAY_LEN(rfc_vectors); i++) {
        const char *in = rfc_vectors[i].b64;
        size_t len = strlen(in), plain_len = strlen(rfc_vectors[i].plain);

        out_len = 99;
        assert_true(decode(in, len, out, &out_len));
        assert_int_equal(out_len, plain_len);
        assert_memory_equal(out, rfc_vectors[i].plain, plain_len);
        assert_true(KMS_B64_DECODED_MAX(len) >= plain_len);
        /* Without its padding it decodes the same. */
        while (len > 0 && in[len - 1] == '=')
            len--;
        out_len = 99;
        assert_true(decode(in, len, out, &out_len));
        assert_int_equal(out_len, plain_len);
        assert_memory_equal(out, rfc_vectors[i].plain, plain_len);
    }
}

static void test_round_trip_all_bytes(void **state)
{
    uint8_t in[256], out[KMS_B64_DECODED_MAX(KMS_B64_ENCODED_LEN(256))];
    char text[KMS_B64_ENCODED_LEN(256) + 1];
    size_t out_len;

    (void)state;
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(255 - i);
    for (size_t n = 0; n <= sizeof(in); n++) {
        size_t len = kms_b64_encode(in, n, text);

        assert_int_equal(len, KMS_B64_ENCODED_LEN(n));
        assert_true(decode(text, len, out, &out_len));
        assert_int_equal(out_len, n);
        assert_memory_equal(out, in, n);
    }
    /* Every alphabet character decodes to its value ('+' 62, '/' 63). */
    assert_true(decode("+/+/", 4, out, &out_len));
    assert_int_equal(out_len, 3);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(out[2], 0xbf);
}

static void test_rejects(void **state)
{
    static const char *const bad[] = {
        /* characters outside the standard alphabet (URL-safe, whitespace, punctuation) */
        "Zm9v!",
        "Zm 9v",
        "Zm9v\n",
        "Zm-_",
        "Zm9v Yg==",
        "\tZm9v",
        "Zm9v*A==",
        "Zm9\xc3\xa9",
        /* impossible lengths: one character left over */
        "Z",
        "Zm9vY",
        "Zm9vYmFyZ",
        "Z===",
        /* misplaced or excess '=' */
        "=",
        "==",
        "===",
        "====",
        "=Zg=",
        "Z=g=",
        "Zg=a",
        "Zm8=Zm8=",
        "Zg===",
        "Zm9v=",
        "Zm9v==",
        "Zm8==",
        "Zg=",
        "Zm9vYg=",
        "Zm9vY===",
    };
    uint8_t out[32];
    size_t out_len;

    (void)state;
    for (size_t i = 0; i < KMS_ARRAY_LEN(bad); i++) {
        print_message("bad: \"%s\"\n", bad[i]);
        assert_false(decode(bad[i], strlen(bad[i]), out, &out_len));
    }
    /* A NUL inside the given length is a bad character too. */
    assert_false(decode("Zm\0v", 4, out, &out_len));
}

/* Documented in crypto.h: non-zero bits after the last whole byte are tolerated. */
static void test_trailing_bits_tolerated(void **state)
{
    uint8_t out[4];
    size_t out_len;

    (void)state;
    assert_true(decode("Zh==", 4, out, &out_len));
    assert_int_equal(out_len, 1);
    assert_int_equal(out[0], 'f');
    assert_true(decode("Zm9=", 4, out, &out_len));
    assert_int_equal(out_len, 2);
    assert_memory_equal(out, "fo", 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_encode),          cmocka_unit_test(test_rfc4648_decode),
        cmocka_unit_test(test_round_trip_all_bytes),    cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_trailing_bits_tolerated),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
