/* A request's Range field (RFC 9110 14.1-14.2) judged against a
 * representation of a known size: the one byte range the gateway serves
 * from a firmware image, or why it answers 416. Pure: no I/O.
 *
 * One range per request: a device fetches its image chunk by chunk, and a
 * multipart/byteranges answer would be a second framing for no client of
 * ours. A set of more than one range is answered 416, as RFC 9110 15.5.17
 * allows for a set the server rejects. */
#ifndef GW_RANGE_H
#define GW_RANGE_H

#include <stdbool.h>
#include <stdint.h>

typedef enum gw_range_kind {
    GW_RANGE_NONE,          /* no Range, or a unit other than bytes: serve the whole (200) */
    GW_RANGE_OK,            /* one satisfiable range: 206 with [first, last] */
    GW_RANGE_UNSATISFIABLE, /* starts at or past the end, or a zero-length suffix: 416 */
    GW_RANGE_INVALID,       /* bytes, but not one well-formed range: 416 */
} gw_range_kind;

/* Judges `value` (the field's value, NULL: absent) against size bytes
 * (size > 0). On GW_RANGE_OK, [*first, *last] is within [0, size - 1]:
 * "a-b" with b past the end ends at the end, "a-" runs to the end, "-n"
 * is the last n bytes (all of them when n >= size). */
gw_range_kind gw_range_parse(const char *value, uint64_t size, uint64_t *first, uint64_t *last);

/* Whether an If-Range or If-None-Match value names the entity tag `etag`
 * (with its quotes): a strong comparison (RFC 9110 8.8.3.2), so a weak tag
 * W/"..." never matches; If-None-Match may list tags or be "*". */
bool gw_etag_matches(const char *field, const char *etag, bool star_ok);

#endif
