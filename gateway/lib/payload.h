/* The error table below keeps one row per line. */
// clang-format off
/* Telemetry bodies (POST /v1/telemetry) to validated readings.
 *
 * docs/protocol.md is the contract; this header is the reference for what the
 * gateway refuses and why. Every body is hostile until proven otherwise: it is
 * size-capped, checked as strict UTF-8, depth-scanned without recursion before
 * any JSON parser sees it, and then validated field by field. The first
 * problem found is reported; nothing is silently dropped or repaired.
 *
 * Checks run in this order, so a body with several faults gets the first
 * applicable code: content type, size, UTF-8 and NUL, JSON lexical scan
 * (depth, control characters, number syntax), JSON parse, duplicate keys and
 * non-finite numbers anywhere in the tree, top-level shape and counts, then
 * the records (or objects) in order.
 *
 * Error codes (gw_payload_error.code, stable; S = security event class,
 * Q = quality event class). gw_payload_error.refusal names the row of the
 * gateway's refusal table (refusal.h) that answers it; HTTP below is that
 * row's status:
 *
 * | code | HTTP | class | when |
 * |---|---|---|---|
 * | unsupported_media_type | 415 | Q | ct is not a gw_content_type |
 * | empty_body | 400 | Q | zero bytes |
 * | payload_too_large | 413 | Q | more than max_body bytes |
 * | invalid_utf8 | 400 | Q | not strict UTF-8 (overlong, surrogate, > U+10FFFF, truncated, 0xC0/0xC1/0xF5-0xFF, stray continuation) or a raw NUL byte. The escape \u0000 is valid JSON; it is read as a control character (shown as <01>), so it gets the code and class of one wherever it is: invalid_name, invalid_unit or identity_mismatch (S) |
 * | too_deep | 400 | Q | arrays/objects nested deeper than max_depth (the top-level array or object is depth 1) |
 * | malformed_json | 400 | Q | not RFC 8259 JSON: syntax error, trailing data, a raw control character in a string or between tokens, a number such as 01, 1. or .5 |
 * | invalid_number | 400 | Q | a number that is not finite as a double (1e999), or longer than 64 characters |
 * | duplicate_key | 400 | Q, S for "bn" | a key twice in one object (at any depth) |
 * | invalid_structure | 422 | Q | SenML: not a non-empty array of objects; JSON: not an object or a non-empty array of objects |
 * | batch_too_large | 413 | Q | more than max_records records (objects) or max_readings readings |
 * | identity_mismatch | 403 | S | SenML bn is present and not exactly the string "<device_id>:" |
 * | invalid_name | 422 | S, Q | sensor name (SenML n, JSON member name) not 1-32 of [A-Za-z0-9_.-] starting with a letter or digit. S when it holds '/', '+', '#', '$', ':' (MQTT separators and wildcards, broker-reserved prefix, the SenML device separator) or a control character (< 0x20, 0x7f); Q otherwise (empty, too long, bad first character, space, non-ASCII, n missing or not a string) |
 * | invalid_unit | 422 | S, Q | u or bu not a string of 1-16 printable ASCII characters (0x20-0x7e) other than '"' and '\'. S when it holds a control character, Q otherwise |
 * | unsupported_value | 422 | Q | SenML vs, vb, vd or s |
 * | missing_value | 422 | Q | SenML record without v; JSON object without a sensor member |
 * | invalid_value | 422 | Q | v, or a JSON sensor member, not a number |
 * | unsupported_field | 422 | Q | SenML bv or bs (base value and base sum are not supported), or any field whose name ends in '_' (must-understand, RFC 8428 4.4) |
 * | unsupported_version | 422 | Q | SenML bver present and not the number 10 |
 * | invalid_time | 422 | Q | bt or t not a number |
 * | time_out_of_range | 422 | Q | resolved time outside [now - past_window_s, now + future_window_s] |
 * | inconsistent_time | 422 | Q | SenML records of one reading resolve to different times |
 * | invalid_seq | 422 | Q | seq not an integer in 1..4294967295, not strictly increasing within the request, or present on some readings and absent on others |
 * | invalid_dropped | 422 | Q | dropped not an integer in 0..4294967295, or on any record (object) but the first |
 * | duplicate_name | 422 | Q | the same sensor name twice in one reading |
 * | out_of_memory | 503 | Q | the gateway could not allocate; not the device's fault, retry later |
 *
 * SenML (application/senml+json, RFC 8428) as accepted here:
 * - Base fields bn, bt, bu and bver may appear on any record and apply to it
 *   and to the records after it, as in RFC 8428. bn, wherever it appears, must
 *   be "<device_id>:"; the sensor name is then n alone, so a ':' in n is
 *   refused rather than read as a second device prefix.
 * - Time: t + bt (each 0 when absent); a sum below 2^28 is relative to now
 *   (RFC 8428 4.5.3), so a record with neither means "now".
 * - A record with seq opens a reading; records without seq join the reading
 *   before them. Either every reading carries seq or the pack has none, in
 *   which case it is exactly one reading (not idempotent).
 * - Known fields ignored as harmless: ut and any unknown field not ending in
 *   '_'. Field names are case-sensitive ("BN" is an unknown field).
 *
 * Plain JSON (application/json): one object is one reading, an array of
 * objects is one reading per object. Members seq, t and dropped are reserved;
 * every other member is a sensor value with no unit. t is absolute Unix
 * seconds: no 2^28 relative rule applies (the format predates SenML and never
 * carried relative times), so a small t is simply time_out_of_range. As in
 * SenML, either every object carries seq or none does.
 *
 * Details (gw_payload_error.detail) are printable ASCII without '"' or '\'.
 * Input text is shown only after escaping: bytes outside that set and '<',
 * '>' and '\'' appear as <xx> in hex, and at most 20 input bytes are shown.
 */
// clang-format on
#ifndef IOTGW_PAYLOAD_H
#define IOTGW_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotd/protocol.h"
#include "refusal.h"

#define GW_SENSOR_NAME_MAX IOTD_PROTOCOL_SENSOR_NAME_MAX
#define GW_UNIT_MAX        IOTD_PROTOCOL_UNIT_MAX

typedef enum gw_content_type { GW_CT_SENML, GW_CT_JSON } gw_content_type;

typedef struct gw_payload_limits {
    size_t max_body;         /* bytes; default 16384 */
    int max_depth;           /* JSON nesting; default 4 */
    size_t max_records;      /* SenML records (or plain objects) per request; default 256 */
    size_t max_readings;     /* readings per request; default 64 */
    int64_t past_window_s;   /* oldest acceptable reading time = now - this; default 7 days */
    int64_t future_window_s; /* newest = now + this; default 300 */
} gw_payload_limits;
void gw_payload_limits_default(gw_payload_limits *l);

typedef struct gw_value {
    char name[GW_SENSOR_NAME_MAX + 1]; /* sensor name, validated */
    char unit[GW_UNIT_MAX + 1];        /* "" if none */
    double v;                          /* finite */
} gw_value;

typedef struct gw_reading {
    bool has_seq;
    uint32_t seq; /* 1..2^32-1 when has_seq */
    double t;     /* resolved absolute time, Unix seconds (may be fractional) */
    size_t first; /* index of its first value in gw_batch.values */
    size_t count; /* number of values, >= 1 */
} gw_reading;

typedef struct gw_batch {
    gw_reading *readings;
    size_t n_readings;
    gw_value *values;
    size_t n_values;
    bool has_dropped;
    uint32_t dropped; /* "dropped" field, see protocol.md */
} gw_batch;

typedef enum gw_payload_class {
    GW_PAYLOAD_QUALITY,  /* malformed or invalid data: a quality event */
    GW_PAYLOAD_SECURITY, /* naming another device, control characters, ...: a security event */
} gw_payload_class;

typedef struct gw_payload_error {
    gw_refusal refusal; /* the row of the refusal table (refusal.h): status, counter */
    const char *code;   /* stable machine code, e.g. "malformed_json" (static string) */
    char detail[160];   /* human text, safe to put in JSON and logs: printable ASCII only,
                           never echoes raw input bytes (hex-escape or omit them) */
    gw_payload_class cls;
} gw_payload_error;

/* Parses and validates body (len bytes, not necessarily NUL-terminated) sent by
 * device_id at gateway receive time now (Unix seconds). On success returns 0 and
 * fills *out (caller later calls gw_batch_free). On failure returns -1, fills *err,
 * leaves *out empty. Never reads beyond len; never allocates more than a bound
 * proportional to len. lim may be NULL for the defaults. */
int gw_payload_parse(const char *body, size_t len, gw_content_type ct, const char *device_id,
                     double now, const gw_payload_limits *lim, gw_batch *out,
                     gw_payload_error *err);
/* Frees what gw_payload_parse allocated and empties *b; safe on an empty batch. */
void gw_batch_free(gw_batch *b);

/* Maps a Content-Type header value (may carry parameters like "; charset=utf-8",
 * case-insensitive type) to a content type; returns -1 if unsupported.
 * A charset parameter other than utf-8 is unsupported; others are ignored. */
int gw_content_type_parse(const char *header, gw_content_type *out);

#endif
