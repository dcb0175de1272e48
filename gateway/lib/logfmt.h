/* Reads one field back from the key=value part of a gateway log line, as
 * gw_log writes it (src/log.h): a value is either bare ([A-Za-z0-9._:/@+,?[]-]
 * and nothing else) or quoted, with '"' and '\' escaped by '\' and other
 * bytes outside printable ASCII as \xHH. Fields are separated by one space
 * outside quotes, so a key is found only at the start of a field, never
 * inside another field's value.
 *
 * Used by the security event stream (src/secevent.c), which is the
 * security-relevant subset of the log: the event and its log line are
 * made from the same call and cannot disagree. */
#ifndef GW_LOGFMT_H
#define GW_LOGFMT_H

#include <stdbool.h>
#include <stddef.h>

/* Copies the unescaped value of `key` in fields[0..len) into out (cap
 * bytes, always NUL-terminated, cut at cap - 1). False, with out = "", when
 * the key is absent; a value of "-" (the log's "none") also reads as
 * absent. */
bool gw_logfmt_get(const char *fields, size_t len, const char *key, char *out, size_t cap);

#endif
