/* Strict UTF-8 validation for bytes received from the network.
 *
 * Well-formed means Unicode's table 3-7: no overlong forms, no surrogates
 * (U+D800-U+DFFF), nothing above U+10FFFF, no truncated sequence, no stray
 * continuation byte. NUL is refused as well: the bytes end up in C strings,
 * where a NUL would silently cut a value short.
 */
#ifndef IOTGW_UTF8_H
#define IOTGW_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True if the len bytes at s are well-formed UTF-8 without a NUL byte.
 * Otherwise false, and *bad (if bad is non-NULL) is the offset of the first
 * byte of the first offending sequence. Reads no byte at or beyond s + len. */
bool gw_utf8_valid(const char *s, size_t len, size_t *bad);

#endif
