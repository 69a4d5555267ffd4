/*
 * util.c - growable buffers, wire time, durations, UUIDs, hex, constant-time compare, UTF-8 checks.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <uuid/uuid.h>

#include "kms/util.h"

kms_err kms_buf_reserve(struct kms_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (extra > SIZE_MAX - b->len - 1)
        return KMS_E_INTERNAL;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return KMS_OK;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->secret && b->data != NULL) {
        /* realloc would leave the old copy in freed memory: move it and wipe it instead. */
        p = malloc(cap);
        if (p == NULL)
            return KMS_E_INTERNAL;
        memcpy(p, b->data, b->len + 1);
        OPENSSL_cleanse(b->data, b->cap);
        free(b->data);
    } else {
        p = realloc(b->data, cap);
        if (p == NULL)
            return KMS_E_INTERNAL;
    }
    p[b->len] = '\0'; /* a fresh block too: data is a string from the first reserve on */
    b->data = p;
    b->cap = cap;
    return KMS_OK;
}

kms_err kms_buf_append(struct kms_buf *b, const void *data, size_t len)
{
    kms_err rc = kms_buf_reserve(b, len);

    if (rc != KMS_OK)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return KMS_OK;
}

kms_err kms_buf_append_str(struct kms_buf *b, const char *s)
{
    return kms_buf_append(b, s, strlen(s));
}

kms_err kms_buf_append_char(struct kms_buf *b, char c)
{
    return kms_buf_append(b, &c, 1);
}

kms_err kms_buf_printf(struct kms_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    kms_err rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return KMS_E_INTERNAL;
    rc = kms_buf_reserve(b, (size_t)n);
    if (rc != KMS_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return KMS_OK;
}

void kms_buf_reset(struct kms_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void kms_buf_free(struct kms_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void kms_buf_free_secret(struct kms_buf *b)
{
    if (b->data)
        OPENSSL_cleanse(b->data, b->cap);
    kms_buf_free(b);
}

void kms_time_format(time_t t, char out[KMS_TIME_LEN])
{
    struct tm tm;

    /* The wire format has four-digit years: clamp rather than overflow out. */
    if (t < 0)
        t = 0;
    if (t > 253402300799LL)
        t = 253402300799LL;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, KMS_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, KMS_TIME_LEN, "1970-01-01T00:00:00Z");
}

static int kms_digits(const char *s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static bool kms_leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

bool kms_time_parse(const char *s, time_t *out)
{
    static const int days_in_month[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int year, mon, day, hour, min, sec, mdays;
    struct tm tm;

    if (s == NULL || strlen(s) != KMS_TIME_LEN - 1)
        return false;
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
        return false;
    year = kms_digits(s, 4);
    mon = kms_digits(s + 5, 2);
    day = kms_digits(s + 8, 2);
    hour = kms_digits(s + 11, 2);
    min = kms_digits(s + 14, 2);
    sec = kms_digits(s + 17, 2);
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || hour < 0 || hour > 23 || min < 0 ||
        min > 59 || sec < 0 || sec > 59)
        return false;
    mdays = days_in_month[mon - 1] + (mon == 2 && kms_leap_year(year) ? 1 : 0);
    if (day > mdays)
        return false;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    *out = timegm(&tm);
    return true;
}

bool kms_duration_parse(const char *s, int64_t *out)
{
    int64_t n = 0, unit = 1;
    size_t len;

    if (s == NULL || s[0] == '\0')
        return false;
    len = strlen(s);
    switch (s[len - 1]) {
    case 'd':
        unit = 86400;
        len--;
        break;
    case 'h':
        unit = 3600;
        len--;
        break;
    case 'm':
        unit = 60;
        len--;
        break;
    case 's':
        len--;
        break;
    default:
        break;
    }
    if (len == 0)
        return false;
    /* Digits only: no sign, no spaces, no hex; overflow is an error, not a wrap. */
    for (size_t i = 0; i < len; i++) {
        int digit = s[i] - '0';

        if (s[i] < '0' || s[i] > '9' || n > (INT64_MAX - digit) / 10)
            return false;
        n = n * 10 + digit;
    }
    if (n > INT64_MAX / unit)
        return false;
    *out = n * unit;
    return true;
}
/*
 * Random bytes that are published (RequestIds, UUIDs, AES-GCM IVs). Fetching a few bytes from
 * OpenSSL's DRBG costs far more than the bytes (a DRBG lock, its fork check, a getpid() system
 * call: 1-2 us per IV), and libuuid made a getrandom() call per UUID. Each thread instead
 * draws 1 KiB from OpenSSL's CSPRNG at a time and hands it out in order; every byte is still
 * CSPRNG output, used once. The pool is never used for keys or other secrets. Should the
 * process ever fork, the child's copy of the forking thread's pool is emptied, so parent and
 * child never hand out the same bytes (an IV twice under one key would break AES-GCM).
 */
#define KMS_RAND_POOL_BYTES 1024

static _Thread_local uint8_t kms_rand_pool[KMS_RAND_POOL_BYTES];
static _Thread_local size_t kms_rand_pool_left;
static pthread_once_t kms_rand_once = PTHREAD_ONCE_INIT;

static void kms_rand_after_fork(void)
{
    kms_rand_pool_left = 0;
}

static void kms_rand_init(void)
{
    pthread_atfork(NULL, NULL, kms_rand_after_fork);
}

bool kms_rand_public(void *out, size_t len)
{
    uint8_t *o = out;

    if (len > KMS_RAND_POOL_BYTES)
        return RAND_bytes(o, (int)len) == 1;
    if (kms_rand_pool_left < len) {
        pthread_once(&kms_rand_once, kms_rand_init);
        if (RAND_bytes(kms_rand_pool, sizeof(kms_rand_pool)) != 1)
            return false;
        kms_rand_pool_left = sizeof(kms_rand_pool);
    }
    memcpy(o, kms_rand_pool + sizeof(kms_rand_pool) - kms_rand_pool_left, len);
    kms_rand_pool_left -= len;
    return true;
}

void kms_uuid_generate(char out[KMS_UUID_LEN])
{
    uuid_t u;

    if (!kms_rand_public(u, sizeof(u)))
        uuid_generate_random(u);            /* OpenSSL failed: libuuid's own source still works */
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* version 4 (random) */
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* variant RFC 4122 */
    uuid_unparse_lower(u, out);
}

static int kms_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* What libuuid's uuid_parse accepts (36 characters, hyphens at 8, 13, 18, 23), minus its strtoul
 * per byte. */
bool kms_uuid_parse(const char *s, uint8_t out[16])
{
    size_t o = 0;

    if (s == NULL || strlen(s) != KMS_UUID_LEN - 1)
        return false;
    for (size_t i = 0; i < KMS_UUID_LEN - 1;) {
        int hi, lo;

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            i++;
            continue;
        }
        hi = kms_hex_digit(s[i]);
        lo = kms_hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[o++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return true;
}

void kms_uuid_unparse(const uint8_t in[16], char out[KMS_UUID_LEN])
{
    uuid_unparse_lower(in, out);
}

void kms_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

bool kms_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen)
        return false;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

char *kms_strndup(const char *s, size_t len)
{
    char *p = malloc(len + 1);

    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

bool kms_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;

        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

size_t kms_utf8_length(const char *str, size_t len)
{
    size_t count = 0;

    for (size_t i = 0; i < len; i++)
        if (((unsigned char)str[i] & 0xc0) != 0x80)
            count++;
    return count;
}
