/*
 * render.h - response bodies: the handler's cJSON tree -> JSON or XML text (spec/protocol.md §8).
 *
 * Handlers build the body as a cJSON object whose members are the top-level fields
 * ({"RequestId":…,"KeyMetadata":{…}}); dispatch picks the format and calls one of these. Both
 * renderers write straight into a kms_buf (no cJSON_Print*: this runs on every request), append
 * to what the buffer already holds, and on failure leave the buffer as it was before the call.
 *
 * Output is always well-formed even for careless input: ill-formed UTF-8 bytes become U+FFFD in
 * both formats, and characters XML 1.0 forbids become U+FFFD in XML.
 */
#ifndef KMS_RENDER_H
#define KMS_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "kms/error.h"
#include "kms/util.h"

/*
 * Deepest nesting of objects/arrays either renderer accepts (the same bound cJSON_Parse applies),
 * so a tree that embeds parsed client JSON cannot exhaust a worker thread's stack.
 */
#define KMS_RENDER_MAX_DEPTH 1000

/*
 * Appends the JSON text of root (an object) to out: compact, members in tree order. Integral
 * numbers print without a decimal point; JSON null prints as null. KMS_E_INTERNAL when root is
 * not an object, the tree holds cJSON_Raw/invalid items or nests too deep, or memory runs out.
 */
kms_err kms_render_json(const cJSON *root, struct kms_buf *out);

/*
 * Appends `<?xml version="1.0" encoding="UTF-8"?><KMS>…</KMS>` for root (an object): each member
 * becomes an element of its name, an array member named N becomes one <N> per item (none when
 * empty). Same failures as kms_render_json, and a member name that cannot be written as an element
 * name as is ([A-Za-z_][A-Za-z0-9._-]*): handlers use fixed ASCII names, so that is a bug too.
 */
kms_err kms_render_xml(const cJSON *root, struct kms_buf *out);

/*
 * Appends s (len bytes, may contain NUL) as a quoted JSON string: '"', '\\' and control
 * characters escaped, valid UTF-8 passed through, ill-formed UTF-8 bytes replaced by U+FFFD.
 * For writers of JSON outside a cJSON tree (e.g. the audit log).
 */
kms_err kms_render_json_string(struct kms_buf *out, const char *s, size_t len);

/*
 * Appends a number as both formats print it: an integral value with |v| < 2^53 as a plain integer,
 * anything else with %.17g (always with a '.' decimal point, whatever the locale). A non-finite v
 * has no representation; it appends nothing and returns KMS_E_INTERNAL.
 */
kms_err kms_render_number(struct kms_buf *out, double v);

/*
 * Length (1..4) of the well-formed UTF-8 sequence starting s (len > 0 bytes available), storing
 * its code point in *cp; 0 when s does not start one (stray continuation byte, overlong form,
 * surrogate, > U+10FFFF, truncated). Shared by the two renderers.
 */
size_t kms_render_utf8_seq(const char *s, size_t len, uint32_t *cp);

#endif
