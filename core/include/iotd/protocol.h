/* The device protocol (docs/protocol.md) in code: the constants and rules
 * that the device, which writes requests, and the gateway, which checks them,
 * must agree on. Both build this one file, so a rule cannot change on one
 * side only.
 *
 * C99, no allocation, no OS call, no stdio: the device core links it on a
 * microcontroller, the gateway and the admin tools on Linux. Every function
 * is pure (its result depends on its arguments only) and reads the strings
 * it is given without keeping them; none writes outside the outputs it
 * names.
 */
#ifndef IOTD_PROTOCOL_H
#define IOTD_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The one endpoint: POST of readings. */
#define IOTD_PROTOCOL_PATH "/v1/telemetry"
/* Health reports (gateway/lib/health.h, docs/protocol.md): JSON, 1 KiB at most. */
#define IOTD_HEALTH_PATH     "/v1/device/health"
#define IOTD_HEALTH_BODY_MAX 1024u

/* The two body formats, as Content-Type media types (lower case). */
#define IOTD_PROTOCOL_CT_SENML "application/senml+json"
#define IOTD_PROTOCOL_CT_JSON  "application/json"

/* Longest device ID, sensor name and unit, in bytes (no NUL). */
#define IOTD_PROTOCOL_DEVICE_ID_MAX   64
#define IOTD_PROTOCOL_SENSOR_NAME_MAX 32
#define IOTD_PROTOCOL_UNIT_MAX        16

/* The gateway's default limits per request. A device that stays within them
 * is accepted by a gateway with the default configuration. Plain integer
 * literals: the gateway also shows them as text (IOTD_PROTOCOL_STR). */
#define IOTD_PROTOCOL_BODY_MAX        16384  /* bytes */
#define IOTD_PROTOCOL_DEPTH_MAX       4      /* JSON nesting; the top level is 1 */
#define IOTD_PROTOCOL_RECORDS_MAX     256    /* SenML records, or plain JSON objects */
#define IOTD_PROTOCOL_READINGS_MAX    64     /* readings */
#define IOTD_PROTOCOL_PAST_WINDOW_S   604800 /* a reading may be 7 days old */
#define IOTD_PROTOCOL_FUTURE_WINDOW_S 300    /* and 5 minutes ahead */

/* SenML (RFC 8428): the base name is the device ID followed by this
 * character; bver, when present, must be this version; a resolved time below
 * the limit (2^28 s) is relative to the receiver's now (RFC 8428 4.5.3). */
#define IOTD_PROTOCOL_BN_SEPARATOR        ':'
#define IOTD_PROTOCOL_SENML_VERSION       10
#define IOTD_PROTOCOL_RELATIVE_TIME_LIMIT 268435456

/* A numeric constant above as a string literal ("256"). */
#define IOTD_PROTOCOL_STR(x)  IOTD_PROTOCOL__STR(x)
#define IOTD_PROTOCOL__STR(x) #x

/* What is wrong with a name; the checks below report the first fault found,
 * in this order: EMPTY, then the characters from the first on (BAD_FIRST or
 * BAD_CHAR at the first offending one), then TOO_LONG. So a name is never
 * read beyond its maximum length plus one byte. */
typedef enum iotd_protocol_fault {
    IOTD_PROTOCOL_OK = 0,
    IOTD_PROTOCOL_EMPTY,     /* NULL or "" */
    IOTD_PROTOCOL_BAD_FIRST, /* a character allowed in the name, but not as its first */
    IOTD_PROTOCOL_BAD_CHAR,  /* a character the name may not hold anywhere */
    IOTD_PROTOCOL_TOO_LONG,  /* valid characters, more of them than the maximum */
} iotd_protocol_fault;

/* Device ID: 1-64 characters of [A-Za-z0-9._-], not starting with '.'. It is
 * the CN of the device certificate, a file name in the gateway's registry
 * and a segment of MQTT topics, so it holds no separator, wildcard, space or
 * control character. IOTD_PROTOCOL_OK when `s` (NUL-terminated, may be
 * NULL) is one; otherwise the fault and, when `at` is not NULL, the 0-based
 * index of the offending byte in *at (for TOO_LONG, the maximum; for
 * EMPTY, 0). */
iotd_protocol_fault iotd_protocol_device_id_check(const char *s, size_t *at);

/* Sensor name (SenML n, a plain JSON member name): 1-32 characters of
 * [A-Za-z0-9_.-] starting with a letter or digit. Same results as
 * iotd_protocol_device_id_check. */
iotd_protocol_fault iotd_protocol_sensor_name_check(const char *s, size_t *at);

/* Unit (SenML u or bu): 1-16 printable ASCII characters (0x20-0x7e) other
 * than '"' and '\', so it needs no escaping in JSON. Same results as
 * iotd_protocol_device_id_check; a unit has no BAD_FIRST. */
iotd_protocol_fault iotd_protocol_unit_check(const char *s, size_t *at);

/* True when the check above returns IOTD_PROTOCOL_OK. */
bool iotd_protocol_device_id_valid(const char *s);
bool iotd_protocol_sensor_name_valid(const char *s);
bool iotd_protocol_unit_valid(const char *s);

/* True when the SenML base name `bn` (len bytes, need not be NUL-terminated)
 * is exactly `device_id` followed by IOTD_PROTOCOL_BN_SEPARATOR. False when
 * either is NULL. */
bool iotd_protocol_base_name_is(const char *bn, size_t len, const char *device_id);

/* A UTC time written "YYYY-MM-DDTHH:MM:SSZ" (RFC 3339, no fraction, no
 * offset; years 1970-9999, no leap second), as Unix seconds. `s` is len
 * bytes, nothing around it. False for anything else. */
bool iotd_protocol_utc_time(const char *s, size_t len, int64_t *unix_s);

/* A Retry-After header value (RFC 9110 10.2.3) as seconds from now.
 * `value` is len bytes (need not be NUL-terminated), spaces and tabs around
 * it are ignored. Understood are delta-seconds (any number of digits,
 * saturated to UINT32_MAX) and, when `clock_known`, an HTTP-date in any of
 * the three forms a recipient must accept (IMF-fixdate "Sun, 06 Nov 1994
 * 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" with a two-digit
 * year read as at most 50 years ahead of now_s, asctime "Sun Nov  6
 * 08:49:37 1994"), converted to seconds after now_s (Unix seconds), 0 for a
 * date not after it. Returns true and stores *seconds when understood;
 * false, with *seconds unchanged, otherwise, which a device treats as no
 * Retry-After at all (its own backoff applies). */
bool iotd_protocol_retry_after(const char *value, size_t len, bool clock_known, int64_t now_s,
                               uint32_t *seconds);

#endif
