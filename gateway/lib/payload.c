/* Telemetry bodies to validated readings; the rules are listed in payload.h. */
#include "payload.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "iotd/protocol.h"

#include "utf8.h"

#define RELATIVE_TIME_LIMIT ((double)IOTD_PROTOCOL_RELATIVE_TIME_LIMIT)
#define U32_MAX_AS_DOUBLE   4294967295.0
#define SENML_VERSION       ((double)IOTD_PROTOCOL_SENML_VERSION)
#define NUMBER_TOKEN_MAX    64
#define ECHO_MAX            20                 /* input bytes shown in a detail */
#define ECHO_BUF            (ECHO_MAX * 4 + 4) /* every byte as <xx>, "...", NUL */

void gw_payload_limits_default(gw_payload_limits *l)
{
    l->max_body = IOTD_PROTOCOL_BODY_MAX;
    l->max_depth = IOTD_PROTOCOL_DEPTH_MAX;
    l->max_records = IOTD_PROTOCOL_RECORDS_MAX;
    l->max_readings = IOTD_PROTOCOL_READINGS_MAX;
    l->past_window_s = IOTD_PROTOCOL_PAST_WINDOW_S;
    l->future_window_s = IOTD_PROTOCOL_FUTURE_WINDOW_S;
}

void gw_batch_free(gw_batch *b)
{
    if (b == NULL)
        return;
    free(b->readings);
    free(b->values);
    memset(b, 0, sizeof(*b));
}

/* ---- error reporting ---- */

static int set_error(gw_payload_error *err, gw_refusal refusal, const char *code,
                     gw_payload_class cls)
{
    err->refusal = refusal;
    err->code = code;
    err->cls = cls;
    return -1;
}

static int fail(gw_payload_error *err, gw_refusal refusal, const char *code, gw_payload_class cls,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail(gw_payload_error *err, gw_refusal refusal, const char *code, gw_payload_class cls,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(err->detail, sizeof(err->detail), fmt, ap) < 0)
        err->detail[0] = '\0';
    va_end(ap);
    return set_error(err, refusal, code, cls);
}

/* Input text for a detail: the bytes a log or JSON string could misread are
 * shown as <xx>, so a detail never carries raw input. */
static bool echo_plain(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' && c != '<' && c != '>' && c != '\'';
}

static const char *echo(char buf[ECHO_BUF], const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i = 0;

    for (; s[i] != '\0' && i < ECHO_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (echo_plain(c)) {
            buf[o++] = (char)c;
            continue;
        }
        buf[o++] = '<';
        buf[o++] = hex[c >> 4];
        buf[o++] = hex[c & 0xf];
        buf[o++] = '>';
    }
    if (s[i] != '\0') {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* ---- checks on the raw bytes ---- */

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool in_number_token(unsigned char c)
{
    return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

static size_t skip_digits(const char *p, size_t i, size_t n)
{
    while (i < n && is_digit((unsigned char)p[i]))
        i++;
    return i;
}

/* Past the fraction at p[i] if there is one ('.' and at least one digit);
 * n + 1, beyond any length, when it is malformed. */
static size_t skip_fraction(const char *p, size_t i, size_t n)
{
    if (i >= n || p[i] != '.')
        return i;
    size_t end = skip_digits(p, i + 1, n);
    return end == i + 1 ? n + 1 : end;
}

/* Past the exponent at p[i] if there is one ('e', a sign, at least one
 * digit); n + 1 when it is malformed. */
static size_t skip_exponent(const char *p, size_t i, size_t n)
{
    if (i >= n || (p[i] != 'e' && p[i] != 'E'))
        return i;
    i++;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        i++;
    size_t end = skip_digits(p, i, n);
    return end == i ? n + 1 : end;
}

/* RFC 8259 number grammar: cJSON (through strtod) also takes 01, 1. and -.5,
 * which another parser downstream might read differently. */
static bool number_syntax_ok(const char *p, size_t n)
{
    size_t i = (n > 0 && p[0] == '-') ? 1 : 0;

    if (i >= n || !is_digit((unsigned char)p[i]))
        return false;
    i = (p[i] == '0') ? i + 1 : skip_digits(p, i, n);
    i = skip_fraction(p, i, n);
    if (i > n)
        return false;
    return skip_exponent(p, i, n) == n;
}

static int scan_number(const char *s, size_t len, size_t *pos, gw_payload_error *err)
{
    size_t start = *pos, end = start;

    while (end < len && in_number_token((unsigned char)s[end]))
        end++;
    if (end - start > NUMBER_TOKEN_MAX)
        return fail(err, GW_REF_INVALID_NUMBER, "invalid_number", GW_PAYLOAD_QUALITY,
                    "number at offset %zu is longer than %d characters", start, NUMBER_TOKEN_MAX);
    if (!number_syntax_ok(s + start, end - start))
        return fail(err, GW_REF_MALFORMED_JSON, "malformed_json", GW_PAYLOAD_QUALITY,
                    "number at offset %zu is not valid JSON (RFC 8259 6)", start);
    *pos = end;
    return 0;
}

static bool is_escaped_nul(const char *s, size_t len, size_t i)
{
    return i + 5 < len && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0;
}

/* *pos is at the opening quote; leaves it after the closing one. */
static int scan_string(const char *s, size_t len, size_t *pos, gw_payload_error *err)
{
    size_t i = *pos + 1;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            *pos = i + 1;
            return 0;
        }
        if (c < 0x20)
            return fail(err, GW_REF_MALFORMED_JSON, "malformed_json", GW_PAYLOAD_QUALITY,
                        "control character 0x%02x in a string at offset %zu (must be escaped)", c,
                        i);
        i += (c == '\\') ? 2 : 1;
    }
    return fail(err, GW_REF_MALFORMED_JSON, "malformed_json", GW_PAYLOAD_QUALITY,
                "string starting at offset %zu is not terminated", *pos);
}

static bool is_json_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* One linear pass over the bytes before any recursive parser sees them:
 * depth (outside strings), control characters (cJSON would skip them as
 * whitespace), escaped NULs and number syntax. */
static int json_prescan(const char *s, size_t len, int max_depth, gw_payload_error *err)
{
    int depth = 0;
    size_t i = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            if (scan_string(s, len, &i, err) != 0)
                return -1;
            continue;
        }
        if (c == '-' || is_digit(c)) {
            if (scan_number(s, len, &i, err) != 0)
                return -1;
            continue;
        }
        if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return fail(err, GW_REF_TOO_DEEP, "too_deep", GW_PAYLOAD_QUALITY,
                            "nesting deeper than %d at offset %zu", max_depth, i);
        } else if (c == ']' || c == '}') {
            if (depth > 0)
                depth--;
        } else if (c < 0x20 && !is_json_space(c)) {
            return fail(err, GW_REF_MALFORMED_JSON, "malformed_json", GW_PAYLOAD_QUALITY,
                        "control character 0x%02x at offset %zu", c, i);
        }
        i++;
    }
    return 0;
}

static int check_bytes(const char *body, size_t len, const gw_payload_limits *lim,
                       gw_payload_error *err)
{
    size_t bad = 0;

    if (body == NULL || len == 0)
        return fail(err, GW_REF_EMPTY_BODY, "empty_body", GW_PAYLOAD_QUALITY, "the body is empty");
    if (len > lim->max_body)
        return fail(err, GW_REF_PAYLOAD_TOO_LARGE, "payload_too_large", GW_PAYLOAD_QUALITY,
                    "body of %zu bytes is over the limit of %zu", len, lim->max_body);
    if (!gw_utf8_valid(body, len, &bad))
        return fail(err, GW_REF_INVALID_UTF8, "invalid_utf8", GW_PAYLOAD_QUALITY,
                    "byte 0x%02x at offset %zu starts no valid UTF-8 character (or is NUL)",
                    (unsigned char)body[bad], bad);
    return json_prescan(body, len, lim->max_depth, err);
}

/* ---- checks on the parsed tree ---- */

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorting makes the check O(n log n) even for an object with thousands of
 * members. */
static int check_keys(const cJSON *obj, gw_payload_error *err)
{
    size_t n = 0, i = 0;
    const char **keys = NULL;
    const cJSON *c;
    int rc = 0;

    for (c = obj->child; c != NULL; c = c->next)
        n++;
    if (n < 2)
        return 0;
    keys = malloc(n * sizeof(*keys));
    if (keys == NULL)
        return fail(err, GW_REF_OUT_OF_MEMORY, "out_of_memory", GW_PAYLOAD_QUALITY,
                    "no memory to check keys");
    for (c = obj->child; c != NULL; c = c->next)
        keys[i++] = c->string;
    qsort(keys, n, sizeof(*keys), key_cmp);
    for (i = 1; i < n && rc == 0; i++) {
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            char shown[ECHO_BUF];
            gw_payload_class cls =
                strcmp(keys[i], "bn") == 0 ? GW_PAYLOAD_SECURITY : GW_PAYLOAD_QUALITY;
            rc = fail(
                err,
                cls == GW_PAYLOAD_SECURITY ? GW_REF_DUPLICATE_KEY_HOSTILE : GW_REF_DUPLICATE_KEY,
                "duplicate_key", cls, "key '%s' appears twice in one object", echo(shown, keys[i]));
        }
    }
    free(keys);
    return rc;
}

/* Recursion is bounded: json_prescan has already capped the depth. */
static int check_tree(const cJSON *node, gw_payload_error *err)
{
    if (cJSON_IsNumber(node) && !isfinite(node->valuedouble))
        return fail(err, GW_REF_INVALID_NUMBER, "invalid_number", GW_PAYLOAD_QUALITY,
                    "a number is out of the range of a double");
    for (const cJSON *c = node->child; c != NULL; c = c->next) {
        if (check_tree(c, err) != 0)
            return -1;
    }
    return cJSON_IsObject(node) ? check_keys(node, err) : 0;
}

/* ---- building the batch ---- */

typedef struct builder {
    const gw_payload_limits *lim;
    const char *device_id;
    double now;
    gw_batch *out;
    gw_payload_error *err;
    const char **names; /* scratch for the duplicate-name check, cap_values long */
    size_t cap_readings, cap_values;
    const char *label; /* "record" (SenML) or "object" (plain JSON) */
    size_t at;         /* 1-based index of the record being read */
} builder;

static int fail_at(const builder *b, gw_refusal refusal, const char *code, gw_payload_class cls,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail_at(const builder *b, gw_refusal refusal, const char *code, gw_payload_class cls,
                   const char *fmt, ...)
{
    gw_payload_error *err = b->err;
    int n = snprintf(err->detail, sizeof(err->detail), "%s %zu: ", b->label, b->at);
    size_t off = (n > 0 && (size_t)n < sizeof(err->detail)) ? (size_t)n : 0;
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(err->detail + off, sizeof(err->detail) - off, fmt, ap) < 0)
        err->detail[off] = '\0';
    va_end(ap);
    return set_error(err, refusal, code, cls);
}

static int builder_alloc(builder *b, size_t readings, size_t values)
{
    gw_batch *out = b->out;

    b->cap_readings = readings;
    b->cap_values = values;
    out->readings = calloc(readings > 0 ? readings : 1, sizeof(*out->readings));
    out->values = calloc(values > 0 ? values : 1, sizeof(*out->values));
    b->names = calloc(values > 0 ? values : 1, sizeof(*b->names));
    if (out->readings == NULL || out->values == NULL || b->names == NULL)
        return fail(b->err, GW_REF_OUT_OF_MEMORY, "out_of_memory", GW_PAYLOAD_QUALITY,
                    "no memory for %zu values", values);
    return 0;
}

static gw_reading *last_reading(const builder *b)
{
    return &b->out->readings[b->out->n_readings - 1];
}

static int close_reading(builder *b)
{
    const gw_reading *r = last_reading(b);

    for (size_t i = 0; i < r->count; i++)
        b->names[i] = b->out->values[r->first + i].name;
    qsort(b->names, r->count, sizeof(*b->names), key_cmp);
    for (size_t i = 1; i < r->count; i++) {
        if (strcmp(b->names[i - 1], b->names[i]) == 0)
            /* Validated names are safe to show as they are. */
            return fail(b->err, GW_REF_DUPLICATE_NAME, "duplicate_name", GW_PAYLOAD_QUALITY,
                        "reading %zu: sensor name '%s' appears twice", b->out->n_readings,
                        b->names[i]);
    }
    return 0;
}

static int check_time(const builder *b, double t)
{
    double lo = b->now - (double)b->lim->past_window_s;
    double hi = b->now + (double)b->lim->future_window_s;

    if (t >= lo && t <= hi)
        return 0;
    if (t < lo)
        return fail_at(b, GW_REF_TIME_OUT_OF_RANGE, "time_out_of_range", GW_PAYLOAD_QUALITY,
                       "time is %.6g s in the past; at most %lld s accepted", b->now - t,
                       (long long)b->lim->past_window_s);
    return fail_at(b, GW_REF_TIME_OUT_OF_RANGE, "time_out_of_range", GW_PAYLOAD_QUALITY,
                   "time is %.6g s in the future; at most %lld s accepted", t - b->now,
                   (long long)b->lim->future_window_s);
}

static int check_seq_order(const builder *b, bool has_seq, uint32_t seq)
{
    const gw_reading *prev = last_reading(b);

    if (prev->has_seq != has_seq)
        return fail_at(b, GW_REF_INVALID_SEQ, "invalid_seq", GW_PAYLOAD_QUALITY,
                       "seq is on some readings and not on others; use it on every reading");
    if (has_seq && seq <= prev->seq)
        return fail_at(b, GW_REF_INVALID_SEQ, "invalid_seq", GW_PAYLOAD_QUALITY,
                       "seq %lu does not increase (previous %lu)", (unsigned long)seq,
                       (unsigned long)prev->seq);
    return 0;
}

static int open_reading(builder *b, bool has_seq, uint32_t seq, double t)
{
    gw_batch *out = b->out;

    if (out->n_readings > 0) {
        if (close_reading(b) != 0 || check_seq_order(b, has_seq, seq) != 0)
            return -1;
    }
    if (out->n_readings >= b->cap_readings)
        return fail_at(b, GW_REF_BATCH_TOO_LARGE, "batch_too_large", GW_PAYLOAD_QUALITY,
                       "more than %zu readings in one request", b->lim->max_readings);
    if (check_time(b, t) != 0)
        return -1;
    out->readings[out->n_readings++] =
        (gw_reading){.has_seq = has_seq, .seq = seq, .t = t, .first = out->n_values, .count = 0};
    return 0;
}

/* name and unit are validated, so they fit. */
static int add_value(builder *b, const char *name, const char *unit, double v)
{
    gw_batch *out = b->out;
    gw_value *val;

    if (out->n_values >= b->cap_values)
        return fail_at(b, GW_REF_BATCH_TOO_LARGE, "batch_too_large", GW_PAYLOAD_QUALITY,
                       "too many values");
    val = &out->values[out->n_values++];
    memcpy(val->name, name, strlen(name) + 1);
    memcpy(val->unit, unit, strlen(unit) + 1);
    val->v = v;
    last_reading(b)->count++;
    return 0;
}

/* ---- field rules shared by both formats ---- */

static bool is_alnum(unsigned char c)
{
    return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Bytes that would steer an MQTT topic, name another device or hide in logs. */
static bool name_byte_hostile(unsigned char c)
{
    return is_control(c) || c == '/' || c == '+' || c == '#' || c == '$' || c == ':';
}

static int check_name(const builder *b, const char *s)
{
    char shown[ECHO_BUF];
    size_t len = strlen(s), at = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (name_byte_hostile(c))
            return fail_at(b, GW_REF_INVALID_NAME_HOSTILE, "invalid_name", GW_PAYLOAD_SECURITY,
                           "sensor name '%s' has byte 0x%02x at position %zu (topic or control "
                           "character)",
                           echo(shown, s), c, i + 1);
    }
    switch (iotd_protocol_sensor_name_check(s, &at)) {
    case IOTD_PROTOCOL_OK:
        return 0;
    case IOTD_PROTOCOL_EMPTY:
    case IOTD_PROTOCOL_TOO_LONG:
        return fail_at(b, GW_REF_INVALID_NAME, "invalid_name", GW_PAYLOAD_QUALITY,
                       "sensor name '%s' has %zu bytes; use 1-%d", echo(shown, s), len,
                       GW_SENSOR_NAME_MAX);
    case IOTD_PROTOCOL_BAD_FIRST:
    case IOTD_PROTOCOL_BAD_CHAR:
        break;
    }
    return fail_at(b, GW_REF_INVALID_NAME, "invalid_name", GW_PAYLOAD_QUALITY,
                   "sensor name '%s' has byte 0x%02x at position %zu; use [A-Za-z0-9_.-] "
                   "starting with a letter or digit",
                   echo(shown, s), (unsigned char)s[at], at + 1);
}

static int check_unit(const builder *b, const char *field, const cJSON *u)
{
    char shown[ECHO_BUF];
    const char *s = cJSON_IsString(u) ? u->valuestring : NULL;
    size_t len = s != NULL ? strlen(s) : 0, at = 0;

    if (s == NULL)
        return fail_at(b, GW_REF_INVALID_UNIT, "invalid_unit", GW_PAYLOAD_QUALITY,
                       "%s is not a string", field);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_control(c))
            return fail_at(b, GW_REF_INVALID_UNIT_HOSTILE, "invalid_unit", GW_PAYLOAD_SECURITY,
                           "%s '%s' has control character 0x%02x", field, echo(shown, s), c);
    }
    switch (iotd_protocol_unit_check(s, &at)) {
    case IOTD_PROTOCOL_OK:
        return 0;
    case IOTD_PROTOCOL_EMPTY:
    case IOTD_PROTOCOL_TOO_LONG:
        return fail_at(b, GW_REF_INVALID_UNIT, "invalid_unit", GW_PAYLOAD_QUALITY,
                       "%s has %zu bytes; use 1-%d", field, len, GW_UNIT_MAX);
    case IOTD_PROTOCOL_BAD_FIRST:
    case IOTD_PROTOCOL_BAD_CHAR:
        break;
    }
    return fail_at(b, GW_REF_INVALID_UNIT, "invalid_unit", GW_PAYLOAD_QUALITY,
                   "%s '%s' has byte 0x%02x; use printable ASCII without quote or backslash", field,
                   echo(shown, s), (unsigned char)s[at]);
}

/* An integral number in min..2^32-1 (1.0 and 1e2 are integers in JSON). */
static bool as_u32(const cJSON *j, double min, uint32_t *out)
{
    double d;

    if (!cJSON_IsNumber(j))
        return false;
    d = j->valuedouble;
    if (!(d >= min && d <= U32_MAX_AS_DOUBLE) || d != (double)(uint32_t)d)
        return false;
    *out = (uint32_t)d;
    return true;
}

static int read_seq(const builder *b, const cJSON *j, uint32_t *seq)
{
    if (!as_u32(j, 1.0, seq))
        return fail_at(b, GW_REF_INVALID_SEQ, "invalid_seq", GW_PAYLOAD_QUALITY,
                       "seq must be an integer in 1..4294967295");
    return 0;
}

static int read_dropped(builder *b, const cJSON *j)
{
    uint32_t n = 0;

    if (b->at != 1)
        return fail_at(b, GW_REF_INVALID_DROPPED, "invalid_dropped", GW_PAYLOAD_QUALITY,
                       "dropped is allowed on the first %s only", b->label);
    if (!as_u32(j, 0.0, &n))
        return fail_at(b, GW_REF_INVALID_DROPPED, "invalid_dropped", GW_PAYLOAD_QUALITY,
                       "dropped must be an integer in 0..4294967295");
    b->out->has_dropped = true;
    b->out->dropped = n;
    return 0;
}

static int read_time(const builder *b, const char *field, const cJSON *j, double *t)
{
    if (!cJSON_IsNumber(j))
        return fail_at(b, GW_REF_INVALID_TIME, "invalid_time", GW_PAYLOAD_QUALITY,
                       "%s is not a number", field);
    *t = j->valuedouble;
    return 0;
}

static size_t count_children(const cJSON *node)
{
    size_t n = 0;

    for (const cJSON *c = node->child; c != NULL; c = c->next)
        n++;
    return n;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Counts the records of a non-empty array of objects; 0 if root is not one. */
static size_t count_objects(const cJSON *root)
{
    if (!cJSON_IsArray(root) || root->child == NULL)
        return 0;
    for (const cJSON *c = root->child; c != NULL; c = c->next) {
        if (!cJSON_IsObject(c))
            return 0;
    }
    return count_children(root);
}

static int check_record_count(builder *b, size_t n)
{
    if (n > b->lim->max_records)
        return fail(b->err, GW_REF_BATCH_TOO_LARGE, "batch_too_large", GW_PAYLOAD_QUALITY,
                    "%zu %ss in one request; at most %zu", n, b->label, b->lim->max_records);
    return 0;
}

/* ---- SenML (RFC 8428) ---- */

enum senml_field { F_BN, F_BT, F_BU, F_BVER, F_N, F_U, F_V, F_T, F_SEQ, F_DROPPED, F_COUNT };

static const char *const senml_names[F_COUNT] = {
    [F_BN] = "bn", [F_BT] = "bt", [F_BU] = "bu", [F_BVER] = "bver", [F_N] = "n",
    [F_U] = "u",   [F_V] = "v",   [F_T] = "t",   [F_SEQ] = "seq",   [F_DROPPED] = "dropped",
};

typedef struct senml_base {
    double bt;
    const char *bu; /* NULL: no default unit */
} senml_base;

static bool key_in(const char *key, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(key, set[i]) == 0)
            return true;
    }
    return false;
}

static int senml_refused_key(const builder *b, const char *key)
{
    static const char *const values[] = {"vs", "vb", "vd", "s"};
    static const char *const bases[] = {"bv", "bs"};
    char shown[ECHO_BUF];
    size_t len = strlen(key);

    if (key_in(key, values, sizeof(values) / sizeof(values[0])))
        return fail_at(b, GW_REF_UNSUPPORTED_VALUE, "unsupported_value", GW_PAYLOAD_QUALITY,
                       "field %s: only numeric values (v) are accepted", key);
    if (key_in(key, bases, sizeof(bases) / sizeof(bases[0])))
        return fail_at(b, GW_REF_UNSUPPORTED_FIELD, "unsupported_field", GW_PAYLOAD_QUALITY,
                       "base field %s is not supported", key);
    if (len > 0 && key[len - 1] == '_')
        return fail_at(b, GW_REF_UNSUPPORTED_FIELD, "unsupported_field", GW_PAYLOAD_QUALITY,
                       "must-understand field '%s' is not supported", echo(shown, key));
    return 0;
}

static int senml_collect(const builder *b, const cJSON *rec, const cJSON *f[F_COUNT])
{
    for (const cJSON *c = rec->child; c != NULL; c = c->next) {
        bool known = false;
        for (int i = 0; i < F_COUNT && !known; i++) {
            if (strcmp(c->string, senml_names[i]) == 0) {
                f[i] = c;
                known = true;
            }
        }
        if (!known && senml_refused_key(b, c->string) != 0)
            return -1;
    }
    return 0;
}

static bool bn_names_device(const cJSON *bn, const char *device_id)
{
    return cJSON_IsString(bn) &&
           iotd_protocol_base_name_is(bn->valuestring, strlen(bn->valuestring), device_id);
}

static int senml_read_base(const builder *b, const cJSON *const f[F_COUNT], senml_base *base)
{
    char shown[ECHO_BUF];

    if (f[F_BVER] != NULL &&
        !(cJSON_IsNumber(f[F_BVER]) && f[F_BVER]->valuedouble == SENML_VERSION))
        return fail_at(b, GW_REF_UNSUPPORTED_VERSION, "unsupported_version", GW_PAYLOAD_QUALITY,
                       "bver must be 10 (RFC 8428)");
    if (f[F_BN] != NULL && !bn_names_device(f[F_BN], b->device_id))
        return fail_at(b, GW_REF_IDENTITY_MISMATCH, "identity_mismatch", GW_PAYLOAD_SECURITY,
                       "bn must be exactly the certificate's device ID followed by ':' (%s:)",
                       echo(shown, b->device_id != NULL ? b->device_id : ""));
    if (f[F_BT] != NULL && read_time(b, "bt", f[F_BT], &base->bt) != 0)
        return -1;
    if (f[F_BU] != NULL) {
        if (check_unit(b, "bu", f[F_BU]) != 0)
            return -1;
        base->bu = f[F_BU]->valuestring;
    }
    return 0;
}

static int senml_read_name(const builder *b, const cJSON *n)
{
    if (n == NULL)
        return fail_at(b, GW_REF_INVALID_NAME, "invalid_name", GW_PAYLOAD_QUALITY,
                       "no sensor name (n)");
    if (!cJSON_IsString(n))
        return fail_at(b, GW_REF_INVALID_NAME, "invalid_name", GW_PAYLOAD_QUALITY,
                       "n is not a string");
    return check_name(b, n->valuestring);
}

static int senml_read_value(const builder *b, const cJSON *v)
{
    if (v == NULL)
        return fail_at(b, GW_REF_MISSING_VALUE, "missing_value", GW_PAYLOAD_QUALITY,
                       "no value (v)");
    if (!cJSON_IsNumber(v))
        return fail_at(b, GW_REF_INVALID_VALUE, "invalid_value", GW_PAYLOAD_QUALITY,
                       "v is not a number");
    return 0;
}

static int senml_place(builder *b, const cJSON *const f[F_COUNT], double t)
{
    uint32_t seq = 0;

    if (f[F_SEQ] != NULL && read_seq(b, f[F_SEQ], &seq) != 0)
        return -1;
    if (f[F_SEQ] != NULL || b->out->n_readings == 0)
        return open_reading(b, f[F_SEQ] != NULL, seq, t);
    if (t != last_reading(b)->t)
        return fail_at(b, GW_REF_INCONSISTENT_TIME, "inconsistent_time", GW_PAYLOAD_QUALITY,
                       "time differs from the reading's first record by %.6g s",
                       t - last_reading(b)->t);
    return 0;
}

static int senml_record(builder *b, senml_base *base, const cJSON *rec)
{
    const cJSON *f[F_COUNT] = {0};
    const char *unit;
    double t = 0;

    if (senml_collect(b, rec, f) != 0 || senml_read_base(b, f, base) != 0)
        return -1;
    if (f[F_DROPPED] != NULL && read_dropped(b, f[F_DROPPED]) != 0)
        return -1;
    if (senml_read_name(b, f[F_N]) != 0)
        return -1;
    if (f[F_U] != NULL && check_unit(b, "u", f[F_U]) != 0)
        return -1;
    unit = f[F_U] != NULL ? f[F_U]->valuestring : (base->bu != NULL ? base->bu : "");
    if (senml_read_value(b, f[F_V]) != 0)
        return -1;
    if (f[F_T] != NULL && read_time(b, "t", f[F_T], &t) != 0)
        return -1;
    t += base->bt;
    if (t < RELATIVE_TIME_LIMIT)
        t += b->now;
    if (senml_place(b, f, t) != 0)
        return -1;
    return add_value(b, f[F_N]->valuestring, unit, f[F_V]->valuedouble);
}

static int senml_parse(builder *b, const cJSON *root)
{
    size_t n = count_objects(root);
    senml_base base = {0.0, NULL};

    b->label = "record";
    if (n == 0)
        return fail(b->err, GW_REF_INVALID_STRUCTURE, "invalid_structure", GW_PAYLOAD_QUALITY,
                    "a SenML body is a non-empty array of record objects");
    if (check_record_count(b, n) != 0 ||
        builder_alloc(b, min_size(n, b->lim->max_readings), n) != 0)
        return -1;
    for (const cJSON *rec = root->child; rec != NULL; rec = rec->next) {
        b->at++;
        if (senml_record(b, &base, rec) != 0)
            return -1;
    }
    return close_reading(b);
}

/* ---- plain JSON (the original ESP32 format) ---- */

static bool is_reserved(const char *key)
{
    return strcmp(key, "seq") == 0 || strcmp(key, "t") == 0 || strcmp(key, "dropped") == 0;
}

static int plain_open(builder *b, const cJSON *obj)
{
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(obj, "seq");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "t");
    const cJSON *dropped = cJSON_GetObjectItemCaseSensitive(obj, "dropped");
    uint32_t seq_v = 0;
    double t_v = b->now;

    if (seq != NULL && read_seq(b, seq, &seq_v) != 0)
        return -1;
    if (t != NULL && read_time(b, "t", t, &t_v) != 0)
        return -1;
    if (dropped != NULL && read_dropped(b, dropped) != 0)
        return -1;
    return open_reading(b, seq != NULL, seq_v, t_v);
}

static int plain_object(builder *b, const cJSON *obj)
{
    if (plain_open(b, obj) != 0)
        return -1;
    for (const cJSON *c = obj->child; c != NULL; c = c->next) {
        if (is_reserved(c->string))
            continue;
        if (check_name(b, c->string) != 0)
            return -1;
        if (!cJSON_IsNumber(c)) /* the name is validated: safe to show */
            return fail_at(b, GW_REF_INVALID_VALUE, "invalid_value", GW_PAYLOAD_QUALITY,
                           "sensor %s is not a number", c->string);
        if (add_value(b, c->string, "", c->valuedouble) != 0)
            return -1;
    }
    if (last_reading(b)->count == 0)
        return fail_at(b, GW_REF_MISSING_VALUE, "missing_value", GW_PAYLOAD_QUALITY,
                       "no sensor values");
    return 0;
}

static int plain_parse(builder *b, const cJSON *root)
{
    size_t n = cJSON_IsObject(root) ? 1 : count_objects(root);
    size_t values = 0;

    b->label = "object";
    if (n == 0)
        return fail(b->err, GW_REF_INVALID_STRUCTURE, "invalid_structure", GW_PAYLOAD_QUALITY,
                    "a JSON body is an object or a non-empty array of objects");
    if (check_record_count(b, n) != 0)
        return -1;
    if (cJSON_IsObject(root)) {
        values = count_children(root);
    } else {
        for (const cJSON *c = root->child; c != NULL; c = c->next)
            values += count_children(c);
    }
    if (builder_alloc(b, min_size(n, b->lim->max_readings), values) != 0)
        return -1;
    if (cJSON_IsObject(root)) {
        b->at = 1;
        return plain_object(b, root) != 0 ? -1 : close_reading(b);
    }
    for (const cJSON *c = root->child; c != NULL; c = c->next) {
        b->at++;
        if (plain_object(b, c) != 0)
            return -1;
    }
    return close_reading(b);
}

/* ---- entry points ---- */

/* The escape \u0000 is valid JSON, but cJSON would end the C string there
 * and hand on a shortened name. It is read as U+0001 instead: a control
 * character like any other, refused with the same code and class wherever
 * it lands (a name, a unit, bn), and harmless in the fields that are
 * ignored. `s` was scanned by json_prescan: its strings are terminated. */
static void neutralize_nul_escapes(char *s, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"') {
            in_string = !in_string;
        } else if (in_string && s[i] == '\\') {
            if (is_escaped_nul(s, len, i))
                s[i + 5] = '1';
            i++; /* the escaped character, whatever it is */
        }
    }
}

static cJSON *parse_json(const char *body, size_t len, gw_payload_error *err)
{
    /* cJSON's "require null terminated" wants the NUL inside the length it
     * is given; the body has none (check_bytes refused NULs). */
    char *copy = malloc(len + 1);
    const char *end = NULL;
    cJSON *root;

    if (copy == NULL) {
        fail(err, GW_REF_OUT_OF_MEMORY, "out_of_memory", GW_PAYLOAD_QUALITY,
             "no memory for %zu bytes", len);
        return NULL;
    }
    memcpy(copy, body, len);
    copy[len] = '\0';
    neutralize_nul_escapes(copy, len);
    root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
    if (root == NULL) {
        size_t off = (end != NULL && end >= copy) ? (size_t)(end - copy) : 0;
        fail(err, GW_REF_MALFORMED_JSON, "malformed_json", GW_PAYLOAD_QUALITY,
             "not valid JSON at offset %zu", off);
    }
    free(copy);
    return root;
}

int gw_payload_parse(const char *body, size_t len, gw_content_type ct, const char *device_id,
                     double now, const gw_payload_limits *lim, gw_batch *out, gw_payload_error *err)
{
    gw_payload_limits defaults;
    gw_payload_error unused;
    builder b = {0};
    cJSON *root = NULL;
    int rc = -1;

    if (err == NULL)
        err = &unused;
    if (lim == NULL) {
        gw_payload_limits_default(&defaults);
        lim = &defaults;
    }
    memset(out, 0, sizeof(*out));
    if (ct != GW_CT_SENML && ct != GW_CT_JSON) {
        fail(err, GW_REF_PAYLOAD_MEDIA_TYPE, "unsupported_media_type", GW_PAYLOAD_QUALITY,
             "unknown content type");
        goto out;
    }
    if (check_bytes(body, len, lim, err) != 0)
        goto out;
    root = parse_json(body, len, err);
    if (root == NULL || check_tree(root, err) != 0)
        goto out;
    b = (builder){.lim = lim, .device_id = device_id, .now = now, .out = out, .err = err};
    rc = ct == GW_CT_SENML ? senml_parse(&b, root) : plain_parse(&b, root);
out:
    free(b.names);
    cJSON_Delete(root);
    if (rc != 0)
        gw_batch_free(out);
    return rc;
}

/* ---- Content-Type ---- */

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ieq(const char *s, size_t n, const char *lit)
{
    size_t i = 0;

    for (; i < n && lit[i] != '\0'; i++) {
        if (ascii_lower(s[i]) != lit[i])
            return false;
    }
    return i == n && lit[i] == '\0';
}

/* RFC 9110 5.6.2 token characters. */
static bool is_tchar(char c)
{
    return is_alnum((unsigned char)c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static size_t token_len(const char *p)
{
    size_t n = 0;

    while (is_tchar(p[n]))
        n++;
    return n;
}

/* "type/subtype"; 0 if p does not start with one. */
static size_t media_type_len(const char *p)
{
    size_t type = token_len(p), sub;

    if (type == 0 || p[type] != '/')
        return 0;
    sub = token_len(p + type + 1);
    return sub == 0 ? 0 : type + 1 + sub;
}

/* One "name=value" parameter at *p; 0 when well-formed and acceptable. */
static int content_param(const char **p)
{
    const char *name = *p, *value;
    size_t name_len = token_len(name), value_len;

    if (name_len == 0 || name[name_len] != '=')
        return -1;
    value = name + name_len + 1;
    if (*value == '"') {
        value++;
        value_len = strcspn(value, "\"\\");
        if (value[value_len] != '"')
            return -1;
        *p = value + value_len + 1;
    } else {
        value_len = token_len(value);
        if (value_len == 0)
            return -1;
        *p = value + value_len;
    }
    if (ieq(name, name_len, "charset") && !ieq(value, value_len, "utf-8"))
        return -1;
    return 0;
}

int gw_content_type_parse(const char *header, gw_content_type *out)
{
    const char *p;
    size_t n;
    gw_content_type ct;

    if (header == NULL || out == NULL)
        return -1;
    p = skip_ows(header);
    n = media_type_len(p);
    if (ieq(p, n, IOTD_PROTOCOL_CT_SENML))
        ct = GW_CT_SENML;
    else if (ieq(p, n, IOTD_PROTOCOL_CT_JSON))
        ct = GW_CT_JSON;
    else
        return -1;
    p = skip_ows(p + n);
    while (*p == ';') {
        p = skip_ows(p + 1);
        if (*p != ';' && *p != '\0' && content_param(&p) != 0)
            return -1;
        p = skip_ows(p);
    }
    if (*p != '\0')
        return -1;
    *out = ct;
    return 0;
}
