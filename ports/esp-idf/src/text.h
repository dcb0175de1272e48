/* Text handling the ESP-IDF port needs around esp_http_client and the log:
 * header comparison, escaping for the console, joining a URL.
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

/* Copies `in` into out (cap >= 1 bytes, always NUL-terminated), every byte
 * outside printable ASCII and every backslash as \xHH, so a gateway body
 * cannot corrupt the console. What does not fit is cut and marked "...". */
void iotd_esp__escape(const char *in, char *out, size_t cap);

/* out = a followed by b. False (and out empty) when it does not fit. */
bool iotd_esp__join(char *out, size_t cap, const char *a, const char *b);

#endif
