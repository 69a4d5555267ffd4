/*
 * b64.c - standard Base64 (RFC 4648 §4): encoding, and strict decoding with optional padding.
 */
#include <string.h>

#include "kms/crypto.h"

static const char kms_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t kms_b64_encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0, i = 0;

    for (; i + 2 < len; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = kms_b64_alphabet[v >> 18];
        out[o++] = kms_b64_alphabet[(v >> 12) & 63];
        out[o++] = kms_b64_alphabet[(v >> 6) & 63];
        out[o++] = kms_b64_alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        out[o++] = kms_b64_alphabet[v >> 18];
        out[o++] = kms_b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? kms_b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

kms_err kms_b64_append(struct kms_buf *b, const uint8_t *in, size_t len)
{
    size_t n = KMS_B64_ENCODED_LEN(len);
    kms_err rc = kms_buf_reserve(b, n);

    if (rc != KMS_OK)
        return rc;
    b->len += kms_b64_encode(in, len, b->data + b->len);
    return KMS_OK;
}

static int kms_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

bool kms_b64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len)
{
    size_t o = 0, data_len = len;
    uint32_t acc = 0;
    int bits = 0;

    /* Up to two '=' at the end, and only where they make a whole quantum. */
    while (data_len > 0 && in[data_len - 1] == '=' && len - data_len < 2)
        data_len--;
    if (data_len < len && len % 4 != 0)
        return false;
    if (data_len % 4 == 1)
        return false;
    for (size_t i = 0; i < data_len; i++) {
        int v = kms_b64_value((unsigned char)in[i]);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *out_len = o;
    return true;
}
