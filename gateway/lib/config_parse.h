/* Internal interface of the configuration module: the value syntaxes
 * (numbers with units, addresses, topic names) shared by the parser and the
 * validator, and the documentation table writer used by the drift tests.
 *
 * The checks return NULL when the value is good, else a short reason
 * ("port must be 1-65535") that the caller puts into a message naming the
 * file, line and key.
 */
#ifndef GW_CONFIG_PARSE_H
#define GW_CONFIG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iot/status.h"

/* Decimal integer, optional leading '-', nothing else. */
const char *gw__parse_int(const char *s, int64_t *out);

/* Non-negative integer and a unit (ms, s, m, h, d); "0" needs no unit. */
const char *gw__parse_duration(const char *s, int64_t *ms);

/* Non-negative integer and a unit (B, KiB, MiB, GiB); "0" needs no unit. */
const char *gw__parse_size(const char *s, int64_t *bytes);

/* Finite decimal number (no hex, inf or nan). */
const char *gw__parse_double(const char *s, double *out);

/* yes/no, true/false, on/off. */
const char *gw__parse_bool(const char *s, bool *out);

/* "host:port" or "[IPv6]:port"; host an IP literal or a DNS name. */
const char *gw__check_listen(const char *s);

/* A TCP port, 1-65535, digits only. */
const char *gw__check_port(const char *s);

/* An IPv4 or IPv6 literal (without brackets) or a DNS name. */
const char *gw__check_host(const char *s);

/* Whether a valid listen address (gw__check_listen) is on loopback:
 * 127.0.0.0/8, [::1] or localhost. */
bool gw__listen_is_loopback(const char *s);

/* MQTT topic prefix: 1-127 chars, [A-Za-z0-9._-] segments joined by '/'. */
const char *gw__check_topic_prefix(const char *s);

/* MQTT client identifier: [A-Za-z0-9._-], at most 127 chars; may be empty. */
const char *gw__check_client_id(const char *s);

/* Shortest exact spelling: 604800000 -> "7d", 1500 -> "1500ms". */
void gw__format_duration(int64_t ms, char *buf, size_t size);

/* Shortest exact spelling: 16384 -> "16KiB". */
void gw__format_size(int64_t bytes, char *buf, size_t size);

/* Copies `in` into `out` for an error message: bytes outside printable
 * ASCII become '?'; what does not fit is cut and marked with "...". */
void gw__sanitize(const char *in, size_t len, char *out, size_t size);

/* Levenshtein distance, case-insensitive; SIZE_MAX for strings over 64. */
size_t gw__edit_distance(const char *a, const char *b);

/* The option reference of docs/configuration.md: one Markdown table per
 * section, from the same table as the parser. Same buffer contract as
 * gw_config_write_example. */
iot_status gw__config_write_markdown(char *buf, size_t size, size_t *written);

#endif
