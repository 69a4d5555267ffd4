/*
 * fuzz_render.c - the response renderers (src/render/json.c, xml.c) on cJSON trees built from
 * the input, plus kms_render_json_string and kms_render_number on raw bytes.
 *
 * Input: byte 0 picks the tree: even -> cJSON_Parse of the rest (a non-object root is wrapped as
 * {"Data": root}); odd -> a structured builder reads the rest as opcodes (strings with any bytes,
 * numbers from 8 raw bytes including NaN and infinities, booleans, null, nested objects and
 * arrays, member names from handler-like names or raw bytes).
 *
 * Asserts: both renderers append to what the buffer held and, on failure, leave it exactly as it
 * was; they fail only for a reason the header gives (nesting past KMS_RENDER_MAX_DEPTH, or for
 * XML a name that cannot be an element name). JSON output parses back with cJSON (when the tree
 * is not deeper than cJSON's own limit) to the same tree: same types, names and order, numbers
 * equal bit for bit (non-finite ones as null), strings equal after ill-formed UTF-8 bytes become
 * U+FFFD. XML output is well-formed (tests/fuzz/support.c) with exactly one element per object
 * member, array item and scalar. A lone JSON string or number renders to text cJSON/strtod read
 * back unchanged.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kms/render.h"
#include "support.h"

#define FUZZ_PREFIX "prefix:"

/* ---- the structured builder ---- */

struct builder {
    const uint8_t *p;
    size_t left;
};

static uint8_t b_u8(struct builder *b)
{
    if (b->left == 0)
        return 0;
    b->left--;
    return *b->p++;
}

/* A NUL-terminated string of up to 255 bytes from the input (stops at a NUL byte). */
static char *b_str(struct builder *b)
{
    size_t n = b_u8(b), k = 0;
    char *s;

    if (n > b->left)
        n = b->left;
    s = malloc(n + 1);
    FUZZ_CHECK(s != NULL, "out of memory");
    while (k < n && b->p[k] != 0) {
        s[k] = (char)b->p[k];
        k++;
    }
    s[k] = '\0';
    b->p += n;
    b->left -= n;
    return s;
}

static char *b_name(struct builder *b)
{
    static const char *const names[] = {"RequestId", "KeyId",     "KeyMetadata", "Keys",
                                        "Key",       "Plaintext", "TotalCount",  "Tags",
                                        "Tag",       "TagKey",    "Value",       "a.b-c_d"};
    uint8_t sel = b_u8(b);

    if (sel < 0xf0)
        return strdup(names[sel % (sizeof(names) / sizeof(names[0]))]);
    return b_str(b);
}

static void b_add(cJSON *parent, char *name, cJSON *item)
{
    if (item == NULL)
        return;
    if (cJSON_IsArray(parent))
        cJSON_AddItemToArray(parent, item);
    else
        cJSON_AddItemToObject(parent, name, item);
}

static cJSON *build_tree(struct builder *b)
{
    cJSON *root = cJSON_CreateObject();
    cJSON **stack = malloc(2048 * sizeof(*stack));
    size_t depth = 0;

    FUZZ_CHECK(root != NULL && stack != NULL, "out of memory");
    stack[0] = root;
    while (b->left > 0) {
        uint8_t op = b_u8(b);
        cJSON *parent = stack[depth], *item = NULL;
        char *name = b_name(b), *s;
        double d;

        switch (op % 8) {
        case 0:
            s = b_str(b);
            item = cJSON_CreateString(s);
            free(s);
            break;
        case 1:
            memset(&d, 0, sizeof(d));
            for (size_t i = 0; i < sizeof(d); i++)
                ((uint8_t *)&d)[i] = b_u8(b);
            item = cJSON_CreateNumber(d);
            break;
        case 2:
            item = cJSON_CreateBool(op & 8);
            break;
        case 3:
            item = cJSON_CreateNull();
            break;
        case 4:
        case 5:
            if (depth + 1 >= 2048)
                break;
            item = op % 8 == 4 ? cJSON_CreateObject() : cJSON_CreateArray();
            b_add(parent, name, item);
            stack[++depth] = item;
            item = NULL;
            break;
        case 6:
            if (depth > 0)
                depth--;
            break;
        default: {
            /* An integer, as most numbers in responses are. */
            int64_t v = (int64_t)((uint64_t)b_u8(b) << 40 | (uint64_t)b_u8(b) << 8 | b_u8(b));

            item = cJSON_CreateNumber((double)(op & 16 ? -v : v));
            break;
        }
        }
        b_add(parent, name, item);
        free(name);
    }
    free(stack);
    return root;
}

/* ---- expectations ---- */

static int tree_depth(const cJSON *item)
{
    int best = 0;

    for (const cJSON *c = item->child; c != NULL; c = c->next) {
        int d = tree_depth(c);

        if (d > best)
            best = d;
    }
    return (cJSON_IsObject(item) || cJSON_IsArray(item)) ? best + 1 : 0;
}

/* Bytes of a well-formed UTF-8 sequence at s, or 0 (own decoder, independent of render/). */
static size_t utf8_len(const unsigned char *s, size_t len, uint32_t *cp)
{
    size_t n = s[0] < 0x80                    ? 1
               : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
               : (s[0] & 0xf0) == 0xe0        ? 3
               : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                              : 0;
    uint32_t v;

    if (n == 0 || len < n)
        return 0;
    v = n == 1 ? s[0] : (uint32_t)(s[0] & (0x7f >> n));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) ||
        (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* s with every byte that does not start a well-formed sequence replaced by U+FFFD. */
static char *sanitized(const char *s)
{
    size_t len = strlen(s), o = 0;
    char *out = malloc(3 * len + 1);

    FUZZ_CHECK(out != NULL, "out of memory");
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_len((const unsigned char *)s + i, len - i, &cp);

        if (n == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        }
    }
    out[o] = '\0';
    return out;
}

static void same_string(const char *original, const char *rendered, const char *what)
{
    char *want = sanitized(original ? original : "");

    FUZZ_CHECK(strcmp(want, rendered ? rendered : "") == 0, "%s changed: \"%s\" -> \"%s\"", what,
               want, rendered ? rendered : "(null)");
    free(want);
}

static void same_tree(const cJSON *a, const cJSON *b, bool named)
{
    int ta = a->type & 0xff, tb = b->type & 0xff;

    if (named)
        same_string(a->string, b->string, "a member name");
    if (ta == cJSON_Number && !isfinite(a->valuedouble)) {
        FUZZ_CHECK(tb == cJSON_NULL, "a non-finite number did not become null");
        return;
    }
    FUZZ_CHECK(ta == tb, "type %d became %d", ta, tb);
    switch (ta) {
    case cJSON_String:
        same_string(a->valuestring, b->valuestring, "a string");
        break;
    case cJSON_Number:
        FUZZ_CHECK(a->valuedouble == b->valuedouble, "number %.17g became %.17g", a->valuedouble,
                   b->valuedouble);
        break;
    case cJSON_Object:
    case cJSON_Array: {
        const cJSON *x = a->child, *y = b->child;

        for (; x != NULL && y != NULL; x = x->next, y = y->next)
            same_tree(x, y, ta == cJSON_Object);
        FUZZ_CHECK(x == NULL && y == NULL, "member count changed");
        break;
    }
    default:
        break;
    }
}

static bool xml_name_ok(const char *n)
{
    if (n == NULL || !((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') || *n == '_'))
        return false;
    for (n++; *n; n++)
        if (!((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9') ||
              *n == '_' || *n == '.' || *n == '-'))
            return false;
    return true;
}

/* Elements the XML of member item named name should have; false if a name is unusable. */
static bool xml_expect(const cJSON *item, const char *name, size_t *count)
{
    if (!xml_name_ok(name))
        return false;
    if (cJSON_IsArray(item)) {
        for (const cJSON *c = item->child; c != NULL; c = c->next)
            if (!xml_expect(c, name, count))
                return false;
        return true;
    }
    (*count)++;
    if (cJSON_IsObject(item))
        for (const cJSON *c = item->child; c != NULL; c = c->next)
            if (!xml_expect(c, c->string, count))
                return false;
    return true;
}

/* ---- checks ---- */

static void check_unchanged(const struct kms_buf *out)
{
    FUZZ_CHECK(out->len == strlen(FUZZ_PREFIX) && memcmp(out->data, FUZZ_PREFIX, out->len) == 0 &&
                   out->data[out->len] == '\0',
               "a failed render changed the buffer");
}

static void check_json(const cJSON *root, int depth)
{
    struct kms_buf out = {0};
    kms_err rc;

    kms_buf_append_str(&out, FUZZ_PREFIX);
    rc = kms_render_json(root, &out);
    if (rc != KMS_OK) {
        FUZZ_CHECK(rc == KMS_E_INTERNAL && depth > KMS_RENDER_MAX_DEPTH,
                   "JSON render failed (%d) for a tree of depth %d", (int)rc, depth);
        check_unchanged(&out);
    } else {
        const char *text = out.data + strlen(FUZZ_PREFIX);
        size_t len = out.len - strlen(FUZZ_PREFIX);
        cJSON *back;

        FUZZ_CHECK(depth <= KMS_RENDER_MAX_DEPTH, "rendered a tree of depth %d", depth);
        FUZZ_CHECK(strlen(text) == len && kms_utf8_valid(text, len), "JSON output not UTF-8");
        /* cJSON refuses nesting at its own limit (1000): compare what it can read. */
        if (depth < 1000) {
            back = cJSON_ParseWithLengthOpts(text, len + 1, NULL, true);
            FUZZ_CHECK(back != NULL, "JSON output does not parse: %.200s", text);
            same_tree(root, back, false);
            cJSON_Delete(back);
        }
    }
    kms_buf_free(&out);
}

static void check_xml(const cJSON *root, int depth)
{
    struct kms_buf out = {0};
    size_t want = 0, got = 0;
    bool names_ok = xml_expect(root, "KMS", &want);
    const char *why = NULL;
    kms_err rc;

    kms_buf_append_str(&out, FUZZ_PREFIX);
    rc = kms_render_xml(root, &out);
    if (rc != KMS_OK) {
        FUZZ_CHECK(rc == KMS_E_INTERNAL && (depth > KMS_RENDER_MAX_DEPTH || !names_ok),
                   "XML render failed (%d) for a tree of depth %d with usable names", (int)rc,
                   depth);
        check_unchanged(&out);
    } else {
        const char *text = out.data + strlen(FUZZ_PREFIX);
        size_t len = out.len - strlen(FUZZ_PREFIX);

        FUZZ_CHECK(fuzz_xml_well_formed(text, len, &got, &why),
                   "XML output not well-formed (%s): %.300s", why, text);
        FUZZ_CHECK(names_ok, "rendered XML for a tree with unusable element names");
        FUZZ_CHECK(got == want, "XML has %zu elements, expected %zu", got, want);
    }
    kms_buf_free(&out);
}

/* A lone string and a lone number, straight from the input bytes. */
static void check_scalars(const uint8_t *data, size_t size)
{
    struct kms_buf out = {0};
    cJSON *back;
    char *copy;
    double d;

    FUZZ_CHECK(kms_render_json_string(&out, (const char *)data, size) == KMS_OK, "string failed");
    back = cJSON_ParseWithLengthOpts(out.data, out.len + 1, NULL, true);
    FUZZ_CHECK(cJSON_IsString(back), "a rendered JSON string does not parse: %s", out.data);
    copy = malloc(size + 1);
    FUZZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, data, size);
    copy[size] = '\0'; /* cJSON's strings end at the first NUL (\u0000) as C strings do */
    same_string(copy, back->valuestring, "a lone string");
    cJSON_Delete(back);
    free(copy);

    if (size >= sizeof(d)) {
        memcpy(&d, data, sizeof(d));
        kms_buf_reset(&out);
        if (kms_render_number(&out, d) == KMS_OK) {
            char *end;

            FUZZ_CHECK(isfinite(d), "a non-finite number was rendered");
            FUZZ_CHECK(strtod(out.data, &end) == d && *end == '\0' && !strchr(out.data, ','),
                       "number %.17g rendered as %s", d, out.data);
        } else {
            FUZZ_CHECK(!isfinite(d) && out.len == 0, "finite number %.17g refused", d);
        }
    }
    kms_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *root;
    int depth;

    if (size == 0)
        return 0;
    if (data[0] & 1) {
        struct builder b = {data + 1, size - 1};

        root = build_tree(&b);
    } else {
        cJSON *parsed = cJSON_ParseWithLength((const char *)data + 1, size - 1);

        if (parsed == NULL || cJSON_IsObject(parsed)) {
            root = parsed;
        } else {
            root = cJSON_CreateObject();
            cJSON_AddItemToObject(root, "Data", parsed);
        }
        check_scalars(data + 1, size - 1);
    }
    if (root == NULL)
        return 0;
    depth = tree_depth(root) - 1; /* the renderers count the root as depth 0 */
    check_json(root, depth);
    check_xml(root, depth);
    cJSON_Delete(root);
    return 0;
}
