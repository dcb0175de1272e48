/* Text handling the ESP-IDF port needs around esp_http_client and the log:
 * header comparison, Retry-After, escaping for the console, joining a URL.
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

/* A Retry-After value (RFC 9110 section 10.2.3): delta-seconds (saturated to
 * UINT32_MAX), or an HTTP-date in the IMF-fixdate form every sender must use
 * ("Sun, 06 Nov 1994 08:49:37 GMT"), converted to seconds from now_s (0 if
 * in the past). A date needs the clock: with clock_known false only
 * delta-seconds are understood. False when the value is not understood,
 * which the device treats as no Retry-After (ordinary backoff). */
bool iotd_esp__retry_after(const char *value, bool clock_known, int64_t now_s, uint32_t *seconds);

/* Copies `in` into out (cap >= 1 bytes, always NUL-terminated), every byte
 * outside printable ASCII and every backslash as \xHH, so a gateway body
 * cannot corrupt the console. What does not fit is cut and marked "...". */
void iotd_esp__escape(const char *in, char *out, size_t cap);

/* out = a followed by b. False (and out empty) when it does not fit. */
bool iotd_esp__join(char *out, size_t cap, const char *a, const char *b);

#endif
