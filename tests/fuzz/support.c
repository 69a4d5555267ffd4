/*
 * support.c - helpers shared by the fuzz harnesses (support.h): the aborting assertion, the line
 * reader and an XML well-formedness checker written independently of src/render/, so that a bug
 * in the renderer's UTF-8 or escaping logic is not mirrored by the check.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "\nFUZZ CHECK FAILED %s:%d: %s\n  ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void fuzz_lines_init(struct fuzz_lines *l, const uint8_t *data, size_t size)
{
    l->fl_p = (const char *)data;
    l->fl_end = (const char *)data + size;
}

bool fuzz_lines_next(struct fuzz_lines *l, const char **line, size_t *len)
{
    const char *nl;

    if (l->fl_p >= l->fl_end)
        return false;
    nl = memchr(l->fl_p, '\n', (size_t)(l->fl_end - l->fl_p));
    *line = l->fl_p;
    *len = nl ? (size_t)(nl - l->fl_p) : (size_t)(l->fl_end - l->fl_p);
    l->fl_p = nl ? nl + 1 : l->fl_end;
    return true;
}

size_t fuzz_split(const uint8_t *data, size_t size, char sep, const uint8_t **rest,
                  size_t *rest_len)
{
    const uint8_t *s = size > 0 ? memchr(data, sep, size) : NULL;

    if (s == NULL) {
        *rest = data + size;
        *rest_len = 0;
        return size;
    }
    *rest = s + 1;
    *rest_len = size - (size_t)(s - data) - 1;
    return (size_t)(s - data);
}

/* ---- XML ---- */

/* Decodes one well-formed UTF-8 sequence (1..4 bytes) or returns 0. */
static size_t fuzz_utf8(const unsigned char *s, size_t len, uint32_t *cp)
{
    size_t n;
    uint32_t v;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2;
        v = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3;
        v = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4;
        v = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    /* The shortest form only; no surrogates, nothing past U+10FFFF. */
    if ((n == 2 && v < 0x80) || (n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10ffff ||
        (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* XML 1.0 §2.2 Char. */
static bool fuzz_xml_char(uint32_t cp)
{
    return cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
           (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

static bool fuzz_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool fuzz_name_char(char c)
{
    return fuzz_name_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

/* Reads a name at s[*i]; its length (0 if none). */
static size_t fuzz_xml_name(const char *s, size_t len, size_t *i)
{
    size_t start = *i;

    if (*i >= len || !fuzz_name_start(s[*i]))
        return 0;
    while (*i < len && fuzz_name_char(s[*i]))
        (*i)++;
    return *i - start;
}

/* An entity or character reference at s[*i] == '&'. */
static bool fuzz_xml_reference(const char *s, size_t len, size_t *i)
{
    static const char *const named[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    size_t j = *i + 1;
    uint32_t cp = 0;
    bool hex;

    for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++) {
        size_t n = strlen(named[k]);

        if (len - *i >= n && memcmp(s + *i, named[k], n) == 0) {
            *i += n;
            return true;
        }
    }
    if (j >= len || s[j] != '#')
        return false;
    j++;
    hex = j < len && s[j] == 'x';
    if (hex)
        j++;
    if (j >= len || s[j] == ';')
        return false;
    for (; j < len && s[j] != ';'; j++) {
        char c = s[j];
        uint32_t d;

        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (hex && c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (hex && c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return false;
        cp = cp * (hex ? 16 : 10) + d;
        if (cp > 0x10ffff)
            return false;
    }
    if (j >= len || !fuzz_xml_char(cp))
        return false;
    *i = j + 1;
    return true;
}

struct fuzz_xml_tag {
    const char *name;
    size_t len;
};

bool fuzz_xml_well_formed(const char *s, size_t len, size_t *elements, const char **why)
{
    static const char decl[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    struct fuzz_xml_tag *stack = NULL;
    size_t depth = 0, cap = 0, count = 0, i = sizeof(decl) - 1;
    bool root_done = false, ok = false;
    const char *reason = "missing XML declaration";

    if (len < i || memcmp(s, decl, i) != 0)
        goto out;
    while (i < len) {
        if (s[i] == '<') {
            bool close = i + 1 < len && s[i + 1] == '/';
            struct fuzz_xml_tag tag;

            i += close ? 2 : 1;
            tag.name = s + i;
            tag.len = fuzz_xml_name(s, len, &i);
            reason = "bad element name";
            if (tag.len == 0)
                goto out;
            while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
                i++;
            if (close) {
                reason = "end tag does not match";
                if (depth == 0 || stack[depth - 1].len != tag.len ||
                    memcmp(stack[depth - 1].name, tag.name, tag.len) != 0)
                    goto out;
                reason = "bad end tag";
                if (i >= len || s[i] != '>')
                    goto out;
                i++;
                if (--depth == 0)
                    root_done = true;
                continue;
            }
            reason = "second root element";
            if (root_done)
                goto out;
            count++;
            if (i + 1 < len && s[i] == '/' && s[i + 1] == '>') {
                i += 2;
                if (depth == 0)
                    root_done = true;
                continue;
            }
            reason = "bad start tag (attributes are not expected)";
            if (i >= len || s[i] != '>')
                goto out;
            i++;
            if (depth == cap) {
                struct fuzz_xml_tag *grown;

                cap = cap ? cap * 2 : 64;
                grown = realloc(stack, cap * sizeof(*stack));
                reason = "out of memory";
                if (grown == NULL)
                    goto out;
                stack = grown;
            }
            stack[depth++] = tag;
            continue;
        }
        if (depth == 0) {
            /* Only whitespace may stand outside the root element. */
            reason = "text outside the root element";
            if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
                goto out;
            i++;
            continue;
        }
        if (s[i] == '&') {
            reason = "bad reference";
            if (!fuzz_xml_reference(s, len, &i))
                goto out;
            continue;
        }
        reason = "]]> in text";
        if (s[i] == ']' && len - i >= 3 && memcmp(s + i, "]]>", 3) == 0)
            goto out;
        {
            uint32_t cp;
            size_t n = fuzz_utf8((const unsigned char *)s + i, len - i, &cp);

            reason = "ill-formed UTF-8 or a character XML does not allow";
            if (n == 0 || !fuzz_xml_char(cp))
                goto out;
            i += n;
        }
    }
    reason = root_done ? NULL : "unclosed or missing root element";
    ok = root_done;
out:
    free(stack);
    if (elements != NULL)
        *elements = count;
    if (why != NULL)
        *why = reason;
    return ok;
}

const char *fuzz_xml_leaf(const char *s, size_t len, const char *name, size_t *text_len)
{
    char open[128], close[130];
    const char *start, *end;
    int n = snprintf(open, sizeof(open), "<%s>", name);

    snprintf(close, sizeof(close), "</%s>", name);
    start = memmem(s, len, open, (size_t)n);
    if (start == NULL)
        return NULL;
    start += n;
    end = memmem(start, len - (size_t)(start - s), close, strlen(close));
    if (end == NULL)
        return NULL;
    *text_len = (size_t)(end - start);
    return start;
}
