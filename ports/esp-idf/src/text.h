/* Text handling the ESP-IDF port needs around esp_http_client and the log:
 * header comparison, the Content-Range of a ranged GET, escaping for the
 * console, joining a URL.
 * Every output has a cap. No ESP-IDF dependency: the host tests build this
 * file as it is.
 */
#ifndef IOTD_ESP_TEXT_H
#define IOTD_ESP_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ASCII case-insensitive equality (header names). NULL equals nothing. */
bool iotd_esp__ieq(const char *a, const char *b);

/* True when the comma-separated header value holds `token` (ASCII case
 * insensitive), as "close" in "Connection: keep-alive, close". */
bool iotd_esp__has_token(const char *value, const char *token);

/* A byte range of a 206 response, from its Content-Range header. */
typedef struct iotd_esp_range {
    uint32_t start; /* first-pos */
    uint32_t len;   /* last-pos - first-pos + 1, at least 1 */
    uint32_t total; /* complete-length; 0 when the server sent "*" */
} iotd_esp_range;

/* Parses a Content-Range value (RFC 9110, 14.4) of the one form a 206
 * carries: "bytes first-last/total", with a star in place of total when
 * the server does not know it. The unit is matched without regard to
 * case, spaces and tabs around the value are allowed, nothing else is: no
 * sign, no space inside, no second range. Every number must fit 32 bits,
 * last >= first, and last < total when total is given. False for anything
 * else, the unsatisfied-range form (a star in place of the range)
 * included; *out is then zeroed. */
bool iotd_esp__content_range(const char *value, iotd_esp_range *out);

/* The value of a Range header asking for len bytes from start,
 * "bytes=first-last". False (and out empty, when cap > 0) when len is 0,
 * the range passes 2^32 - 1 or out is too small (IOTD_ESP_RANGE_MAX is
 * always enough). */
#define IOTD_ESP_RANGE_MAX sizeof("bytes=4294967295-4294967295")
bool iotd_esp__range_header(char *out, size_t cap, uint32_t start, uint32_t len);

/* Copies `in` into out (cap >= 1 bytes, always NUL-terminated), every byte
 * outside printable ASCII and every backslash as \xHH, so a gateway body
 * cannot corrupt the console. What does not fit is cut and marked "...". */
void iotd_esp__escape(const char *in, char *out, size_t cap);

/* out = a followed by b. False (and out empty) when it does not fit. */
bool iotd_esp__join(char *out, size_t cap, const char *a, const char *b);

/* Copies a response header's value (for parsing once the headers are in):
 * one copy per response, and only if it fits cap with its NUL. *seen is set;
 * *bad is set, and dst left alone, when the header came before in this
 * response (*seen already) or does not fit. */
void iotd_esp__keep_header(const char *value, char *dst, size_t cap, bool *seen, bool *bad);

#endif
