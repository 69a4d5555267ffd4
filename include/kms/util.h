/*
 * util.h - small shared helpers: growable buffers, time on the wire, UUIDs, hex, constant-time
 * comparison. Nothing here knows about requests, keys or the store.
 */
#ifndef KMS_UTIL_H
#define KMS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kms/error.h"

#define KMS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A growable byte buffer, always NUL-terminated after len. Zero-initialise before use. */
struct kms_buf {
    char *data;
    size_t len;
    size_t cap;
    /* Set for buffers that will hold secrets: growing then wipes the old block (no realloc). */
    bool secret;
};

/* Appending returns KMS_E_INTERNAL only when memory runs out. */
kms_err kms_buf_append(struct kms_buf *b, const void *data, size_t len);
kms_err kms_buf_append_str(struct kms_buf *b, const char *s);
kms_err kms_buf_append_char(struct kms_buf *b, char c);
kms_err kms_buf_printf(struct kms_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Room for extra more bytes and a NUL. A secret buffer grows by copy-and-wipe, never realloc. */
kms_err kms_buf_reserve(struct kms_buf *b, size_t extra);
void kms_buf_reset(struct kms_buf *b);
void kms_buf_free(struct kms_buf *b);
/* Wipes the contents (OPENSSL_cleanse) before freeing: for buffers that held secrets. */
void kms_buf_free_secret(struct kms_buf *b);

/* Wire time: "YYYY-MM-DDThh:mm:ssZ", UTC. */
#define KMS_TIME_LEN 21 /* including the NUL */
void kms_time_format(time_t t, char out[KMS_TIME_LEN]);
/* Strict parse of the wire format with range checks; false when malformed. */
bool kms_time_parse(const char *s, time_t *out);

/*
 * Duration input "<integer>[d|h|m|s]" (no unit = seconds; spec/actions.md §0.5) into seconds.
 * false when malformed (empty, no digits, sign, other unit) or when it overflows int64_t.
 */
bool kms_duration_parse(const char *s, int64_t *out);

/*
 * len random bytes for values that are made public (IVs, identifiers), from a per-thread pool of
 * CSPRNG output; false if the CSPRNG fails. Never for keys or other secrets: use RAND_bytes.
 */
bool kms_rand_public(void *out, size_t len);

/* Lower-case random (v4) UUID text. */
#define KMS_UUID_LEN 37 /* including the NUL */
void kms_uuid_generate(char out[KMS_UUID_LEN]);
/* Parses a UUID's text (either case) into 16 raw bytes; false if it is not one. */
bool kms_uuid_parse(const char *s, uint8_t out[16]);
/* Writes 16 raw bytes as lower-case UUID text. */
void kms_uuid_unparse(const uint8_t in[16], char out[KMS_UUID_LEN]);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void kms_hex_encode(const uint8_t *in, size_t len, char *out);

/* Constant-time equality of two byte strings (length is not secret). */
bool kms_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* strdup that aborts the process on allocation failure is NOT provided: callers handle NULL. */
char *kms_strndup(const char *s, size_t len);

/* True when s (len bytes) is well-formed UTF-8 without NUL bytes. */
bool kms_utf8_valid(const char *s, size_t len);

/* Number of Unicode code points in valid UTF-8 text s (len bytes). */
size_t kms_utf8_length(const char *s, size_t len);

#endif
