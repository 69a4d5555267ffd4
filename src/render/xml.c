/*
 * xml.c - the XML response body (spec/protocol.md §8.3), only for Format=XML: a handler's cJSON
 * tree as <KMS>…</KMS>, object members as elements, array members as repeated elements.
 *
 * Element names come from handlers (ASCII identifiers); text does not, so every string is escaped
 * and filtered to what XML 1.0 allows. Names are checked too (fuzz_render found that any other
 * name went out as markup): one that is not [A-Za-z_][A-Za-z0-9._-]* fails the render.
 */
#include <math.h>
#include <string.h>

#include "kms/render.h"

static const char kms_xml_fffd[] = "\xEF\xBF\xBD";

/*
 * Bytes element content cannot carry as they are: controls other than \t and \n (\r included, see
 * kms_xml_text), & < > " ', and every non-ASCII byte (UTF-8 must be checked). 32 entries per row.
 */
static const unsigned char kms_xml_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* kms_buf_append without the call when the bytes fit, which they nearly always do. */
static inline kms_err kms_xml_put(struct kms_buf *out, const char *p, size_t n)
{
    if (out->cap - out->len > n) {
        memcpy(out->data + out->len, p, n);
        out->len += n;
        out->data[out->len] = '\0';
        return KMS_OK;
    }
    return kms_buf_append(out, p, n);
}

/*
 * Appends s as element content. & < > " ' become entity references (" and ' need it only in
 * attributes, but escaping them everywhere is what the spec asks and costs nothing). \r becomes
 * &#13; because an XML parser turns a literal CR (or CRLF) into LF, which would alter PEM text and
 * secret values. Characters XML 1.0 forbids (controls other than \t \n \r, U+FFFE, U+FFFF) and
 * ill-formed UTF-8 bytes are REPLACED by U+FFFD rather than dropped, so the reader can see that
 * something was there, and no character reference can express them either.
 */
static kms_err kms_xml_text(struct kms_buf *out, const char *s, size_t len)
{
    size_t run = 0; /* start of the pending stretch of bytes copied unchanged */
    size_t i = 0;
    kms_err rc;

    rc = kms_buf_reserve(out, len);
    if (rc != KMS_OK)
        return rc;
    while (i < len) {
        unsigned char c;
        const char *rep;
        size_t replen;
        uint32_t cp;
        size_t n;

        while (i < len && !kms_xml_special[(unsigned char)s[i]])
            i++;
        if (i == len)
            break;
        c = (unsigned char)s[i];
        if (c >= 0x80) {
            n = kms_render_utf8_seq(s + i, len - i, &cp);
            if (n != 0 && cp != 0xfffe && cp != 0xffff) {
                i += n;
                continue;
            }
            /* One U+FFFD per offending byte, or per sequence for the two noncharacters. */
            if (n == 0)
                n = 1;
            rep = kms_xml_fffd;
            replen = 3;
        } else {
            n = 1;
            switch (c) {
            case '&':
                rep = "&amp;";
                break;
            case '<':
                rep = "&lt;";
                break;
            case '>':
                rep = "&gt;";
                break;
            case '"':
                rep = "&quot;";
                break;
            case '\'':
                rep = "&apos;";
                break;
            case '\r':
                rep = "&#13;";
                break;
            default:
                rep = kms_xml_fffd;
                break;
            }
            replen = strlen(rep);
        }
        rc = kms_xml_put(out, s + run, i - run);
        if (rc == KMS_OK)
            rc = kms_xml_put(out, rep, replen);
        if (rc != KMS_OK)
            return rc;
        i += n;
        run = i;
    }
    return kms_xml_put(out, s + run, i - run);
}

static kms_err kms_xml_tag(struct kms_buf *out, const char *name, bool close)
{
    kms_err rc = kms_xml_put(out, close ? "</" : "<", close ? 2 : 1);

    if (rc == KMS_OK)
        rc = kms_xml_put(out, name, strlen(name));
    if (rc == KMS_OK)
        rc = kms_xml_put(out, ">", 1);
    return rc;
}

static kms_err kms_xml_member(struct kms_buf *out, const char *name, const cJSON *item, int depth);

/*
 * An element name kmsd can write as is: the ASCII subset of XML's Name without ':' (no
 * namespaces). Anything else - markup characters, spaces, non-ASCII - would change the document.
 */
static bool kms_xml_name_valid(const char *name)
{
    const char *p = name;

    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_'))
        return false;
    for (p++; *p != '\0'; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            return false;
    return true;
}

/* What goes between an element's tags: child elements for an object, text for a scalar. */
static kms_err kms_xml_content(struct kms_buf *out, const cJSON *item, int depth)
{
    const cJSON *child;
    kms_err rc;

    /* The low byte is the type; the flags above it (IsReference, StringIsConst) do not matter. */
    switch (item->type & 0xff) {
    case cJSON_Object:
        for (child = item->child; child != NULL; child = child->next) {
            rc = kms_xml_member(out, child->string, child, depth + 1);
            if (rc != KMS_OK)
                return rc;
        }
        return KMS_OK;
    case cJSON_String: {
        const char *s = item->valuestring ? item->valuestring : "";

        return kms_xml_text(out, s, strlen(s));
    }
    case cJSON_Number:
        /* No text for NaN/infinity, as JSON's null: handlers never produce either. */
        if (!isfinite(item->valuedouble))
            return KMS_OK;
        return kms_render_number(out, item->valuedouble);
    case cJSON_True:
        return kms_xml_put(out, "true", 4);
    case cJSON_False:
        return kms_xml_put(out, "false", 5);
    case cJSON_NULL:
        /* Never produced by handlers; an empty element says the field is there with no value. */
        return KMS_OK;
    default:
        /* cJSON_Raw is JSON text with no XML meaning. */
        return KMS_E_INTERNAL;
    }
}

/*
 * One member named name. An array repeats the element once per item, so wrapped lists
 * ({"Keys":{"Key":[…]}}) and bare arrays ({"Permissions":[…]}) both come out as the spec shows,
 * and an empty array emits nothing. An array directly inside an array has no name of its own;
 * its items are repeated under the same name (flattened) - no action returns such a shape.
 */
static kms_err kms_xml_member(struct kms_buf *out, const char *name, const cJSON *item, int depth)
{
    int type = item->type & 0xff;
    kms_err rc;

    if (name == NULL || !kms_xml_name_valid(name))
        return KMS_E_INTERNAL;
    /* Depth counts containers as kms_render_json does: the root is 0, its members 1. */
    if ((type == cJSON_Array || type == cJSON_Object) && depth > KMS_RENDER_MAX_DEPTH)
        return KMS_E_INTERNAL;
    if (type == cJSON_Array) {
        const cJSON *child;

        for (child = item->child; child != NULL; child = child->next) {
            rc = kms_xml_member(out, name, child, depth + 1);
            if (rc != KMS_OK)
                return rc;
        }
        return KMS_OK;
    }
    rc = kms_xml_tag(out, name, false);
    if (rc == KMS_OK)
        rc = kms_xml_content(out, item, depth);
    if (rc == KMS_OK)
        rc = kms_xml_tag(out, name, true);
    return rc;
}

kms_err kms_render_xml(const cJSON *root, struct kms_buf *out)
{
    static const char decl[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    size_t start = out->len;
    kms_err rc;

    if (root == NULL || (root->type & 0xff) != cJSON_Object)
        return KMS_E_INTERNAL;
    rc = kms_buf_append(out, decl, sizeof(decl) - 1);
    /* <KMS> for success and error bodies alike (spec §8.3), not <ActionResponse> or <Error>. */
    if (rc == KMS_OK)
        rc = kms_xml_member(out, "KMS", root, 0);
    if (rc != KMS_OK && out->data != NULL) {
        /* Half a body must never reach the wire: give the caller back its buffer unchanged. */
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}
