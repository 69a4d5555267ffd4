/*
 * fuzz_context.c - EncryptionContext parsing (src/crypto/context.c) in both forms a request
 * carries it - JSON (kms_context_parse_json) and flattened EncryptionContext.<k>=<v> parameters
 * (kms_arg_context over the server's parameter parser) - and its canonical form.
 *
 * Input: a JSON text, "\n", a query string (everything after the first newline) that is parsed as
 * request parameters and read with kms_arg_context(call, "EncryptionContext").
 *
 * Asserts, for every context accepted: pairs strictly sorted by key bytes, keys non-empty, keys
 * and values UTF-8 without NUL, ctx_canonical_len equal to the canonical form's length and within
 * KMS_CONTEXT_MAX_LEN; the canonical form decodes back to exactly the pairs (injective); it is
 * stable: re-serialising the pairs as JSON - in key order, in reverse order - or as flattened
 * parameters and parsing again gives the same canonical bytes; cJSON reads an accepted JSON text
 * as an object with the same keys. Refusals are InvalidParameter, never anything else.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kms/api.h"
#include "kms/auth.h"
#include "kms/crypto.h"
#include "kms/render.h"
#include "support.h"

static uint32_t get_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;

    return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) | ((uint32_t)u[2] << 8) | u[3];
}

/* Checks ctx's own invariants; returns its canonical form (caller frees). */
static struct kms_buf check_ctx(const struct kms_context *ctx)
{
    struct kms_buf canon = {0};
    size_t off = 0;

    FUZZ_CHECK(kms_context_canonical(ctx, &canon) == KMS_OK, "canonical failed");
    FUZZ_CHECK(canon.len == ctx->ctx_canonical_len, "canonical length %zu, recorded %zu", canon.len,
               ctx->ctx_canonical_len);
    FUZZ_CHECK(canon.len <= KMS_CONTEXT_MAX_LEN, "canonical form too long: %zu", canon.len);
    for (size_t i = 0; i < ctx->count; i++) {
        const struct kms_context_pair *p = &ctx->pairs[i];

        FUZZ_CHECK(p->key_len > 0 && kms_utf8_valid(p->key, p->key_len) &&
                       kms_utf8_valid(p->value, p->value_len),
                   "pair %zu: empty key, or not UTF-8 / NUL inside", i);
        FUZZ_CHECK(p->key[p->key_len] == '\0' && p->value[p->value_len] == '\0',
                   "pair %zu not NUL-terminated", i);
        if (i > 0) {
            const struct kms_context_pair *q = &ctx->pairs[i - 1];
            size_t n = q->key_len < p->key_len ? q->key_len : p->key_len;
            int c = memcmp(q->key, p->key, n);

            FUZZ_CHECK(c < 0 || (c == 0 && q->key_len < p->key_len), "pairs not sorted at %zu", i);
        }
        /* Injective: the length prefixes give back exactly the pairs. */
        FUZZ_CHECK(canon.len - off >= 4 && get_u32(canon.data + off) == p->key_len,
                   "key length prefix of pair %zu", i);
        off += 4;
        FUZZ_CHECK(memcmp(canon.data + off, p->key, p->key_len) == 0, "key bytes of pair %zu", i);
        off += p->key_len;
        FUZZ_CHECK(canon.len - off >= 4 && get_u32(canon.data + off) == p->value_len,
                   "value length prefix of pair %zu", i);
        off += 4;
        FUZZ_CHECK(memcmp(canon.data + off, p->value, p->value_len) == 0, "value bytes of pair %zu",
                   i);
        off += p->value_len;
    }
    FUZZ_CHECK(off == canon.len, "canonical form has %zu trailing bytes", canon.len - off);
    return canon;
}

static void same_canonical(const struct kms_buf *a, const struct kms_context *ctx, const char *how)
{
    struct kms_buf b = check_ctx(ctx);

    FUZZ_CHECK(a->len == b.len && (a->len == 0 || memcmp(a->data, b.data, a->len) == 0),
               "canonical form changed after %s", how);
    kms_buf_free(&b);
}

/* {"k":"v",...} from the pairs, in key order or reversed. */
static void to_json(const struct kms_context *ctx, bool reverse, struct kms_buf *out)
{
    kms_buf_append_char(out, '{');
    for (size_t k = 0; k < ctx->count; k++) {
        const struct kms_context_pair *p = &ctx->pairs[reverse ? ctx->count - 1 - k : k];

        if (k > 0)
            kms_buf_append_char(out, ',');
        kms_render_json_string(out, p->key, p->key_len);
        kms_buf_append_char(out, ':');
        kms_render_json_string(out, p->value, p->value_len);
    }
    kms_buf_append_char(out, '}');
}

/* Reads EncryptionContext from request parameters text the way the handlers do. */
static kms_err from_params(const char *text, size_t len, struct kms_context *ctx)
{
    struct kms_call call;
    kms_err rc;

    memset(&call, 0, sizeof(call));
    rc = kms_params_parse(&call.params, text, len, KMS_PARAM_QUERY);
    if (rc == KMS_OK)
        rc = kms_params_finish(&call.params, NULL);
    if (rc == KMS_OK) {
        rc = kms_arg_context(&call, "EncryptionContext", ctx);
        FUZZ_CHECK(rc == KMS_OK || rc == KMS_E_INVALID_PARAMETER, "kms_arg_context returned %d",
                   (int)rc);
        FUZZ_CHECK(rc == KMS_OK ||
                       strcmp(call.detail.data ? call.detail.data : "", "EncryptionContext") == 0,
                   "the error does not name EncryptionContext");
    } else {
        rc = KMS_E_PARSE_REQUEST;
    }
    kms_params_free(&call.params);
    kms_buf_free(&call.detail);
    return rc;
}

static void check_forms(const struct kms_context *ctx)
{
    struct kms_buf canon = check_ctx(ctx), json = {0}, flat = {0};
    struct kms_context again = {0};

    to_json(ctx, false, &json);
    FUZZ_CHECK(kms_context_parse_json(&again, json.data, json.len) == KMS_OK,
               "re-serialised JSON refused: %s", json.data);
    same_canonical(&canon, &again, "a JSON round trip");
    kms_context_free(&again);

    kms_buf_reset(&json);
    to_json(ctx, true, &json);
    FUZZ_CHECK(kms_context_parse_json(&again, json.data, json.len) == KMS_OK,
               "reversed JSON refused");
    same_canonical(&canon, &again, "reversing the members");
    kms_context_free(&again);

    for (size_t i = 0; i < ctx->count; i++) {
        if (i > 0)
            kms_buf_append_char(&flat, '&');
        kms_buf_append_str(&flat, "EncryptionContext.");
        kms_percent_encode(&flat, ctx->pairs[i].key, ctx->pairs[i].key_len);
        kms_buf_append_char(&flat, '=');
        kms_percent_encode(&flat, ctx->pairs[i].value, ctx->pairs[i].value_len);
    }
    FUZZ_CHECK(from_params(flat.data ? flat.data : "", flat.len, &again) == KMS_OK,
               "the flattened form was refused");
    same_canonical(&canon, &again, "flattening");
    kms_context_free(&again);

    kms_buf_free(&canon);
    kms_buf_free(&json);
    kms_buf_free(&flat);
}

/* cJSON must read what we accepted as one object with the same keys. */
static void check_cjson(const char *json, size_t len, const struct kms_context *ctx)
{
    cJSON *root = cJSON_ParseWithLength(json, len);

    FUZZ_CHECK(cJSON_IsObject(root), "accepted JSON that cJSON does not read as an object");
    FUZZ_CHECK((size_t)cJSON_GetArraySize(root) == ctx->count, "cJSON sees %d members, we %zu",
               cJSON_GetArraySize(root), ctx->count);
    for (size_t i = 0; i < ctx->count; i++)
        FUZZ_CHECK(cJSON_GetObjectItemCaseSensitive(root, ctx->pairs[i].key) != NULL,
                   "cJSON lacks key %zu", i);
    cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *query;
    size_t query_len, json_len = fuzz_split(data, size, '\n', &query, &query_len);
    struct kms_context ctx = {0};
    kms_err rc;

    rc = kms_context_parse_json(&ctx, (const char *)data, json_len);
    FUZZ_CHECK(rc == KMS_OK || rc == KMS_E_INVALID_PARAMETER, "parse_json returned %d", (int)rc);
    if (rc == KMS_OK) {
        check_forms(&ctx);
        check_cjson((const char *)data, json_len, &ctx);
    }
    kms_context_free(&ctx);

    if (from_params((const char *)query, query_len, &ctx) == KMS_OK)
        check_forms(&ctx);
    kms_context_free(&ctx);
    return 0;
}
