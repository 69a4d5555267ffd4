/*
 * support.h - what the fuzz harnesses of tests/fuzz/ share: an assertion that aborts (libFuzzer
 * and the replay driver both report an abort as a crash, with the input that caused it), a line
 * reader for the structured text inputs, and a small XML well-formedness checker for response
 * bodies. See docs/security.md "Fuzzing".
 */
#ifndef KMS_FUZZ_SUPPORT_H
#define KMS_FUZZ_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every harness defines this; libFuzzer (or tests/fuzz/replay_main.c) calls it once per input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints where and why an invariant broke, then aborts. */
_Noreturn void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Checks an invariant in every build (never compiled out, unlike assert). */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                     \
    } while (0)

/* A cursor over the input's lines ("\n"-terminated; the last one may lack the "\n"). */
struct fuzz_lines {
    const char *fl_p;
    const char *fl_end;
};

void fuzz_lines_init(struct fuzz_lines *l, const uint8_t *data, size_t size);
/* The next line without its "\n" (*line, *len); false at the end. */
bool fuzz_lines_next(struct fuzz_lines *l, const char **line, size_t *len);

/* Bytes of data up to the first sep (or all of it); *rest and *rest_len get what follows sep. */
size_t fuzz_split(const uint8_t *data, size_t size, char sep, const uint8_t **rest,
                  size_t *rest_len);

/*
 * True when s (len bytes) is a well-formed XML 1.0 document of the shape kmsd writes: an XML
 * declaration, then one element; elements without attributes (<a>, </a>, <a/>) with ASCII names
 * ([A-Za-z_][A-Za-z0-9._-]*), properly nested; text of valid UTF-8 XML characters in which "<"
 * never appears, "&" only starts &amp; &lt; &gt; &quot; &apos; or a character reference to an
 * XML character, and "]]>" never appears. *elements (optional) gets the number of elements.
 * On false, *why names the first problem.
 */
bool fuzz_xml_well_formed(const char *s, size_t len, size_t *elements, const char **why);

/* The text between the first <name> and its </name>, or NULL (for simple leaf elements). */
const char *fuzz_xml_leaf(const char *s, size_t len, const char *name, size_t *text_len);

#endif
