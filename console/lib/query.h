/* Request targets of the console: the path split from its query, the
 * query's parameters percent-decoded, and the path's segments. The path
 * itself is never decoded: a '%' in it is refused, so no encoding reaches
 * a route by another name (the gateway's router has the same rule). */
#ifndef IC_QUERY_H
#define IC_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#define IC_PATH_MAX      256
#define IC_PARAMS_MAX    12
#define IC_PARAM_KEY_MAX 24
#define IC_PARAM_VAL_MAX 128
#define IC_SEGMENTS_MAX  8

typedef struct ic_param {
    char key[IC_PARAM_KEY_MAX + 1];
    char value[IC_PARAM_VAL_MAX + 1];
} ic_param;

typedef struct ic_target {
    char path[IC_PATH_MAX + 1];
    ic_param params[IC_PARAMS_MAX];
    size_t n_params;
    /* the path's segments, pointing into seg_buf: "/api/v1/devices/x" is
     * "api", "v1", "devices", "x" */
    char seg_buf[IC_PATH_MAX + 1];
    const char *seg[IC_SEGMENTS_MAX];
    size_t n_seg;
} ic_target;

/* Parses an origin-form target. NULL on success, else a short reason for
 * the 400 answer: not origin-form, path too long, a '%' or control byte in
 * the path, an empty or dot segment, too many segments, a fragment, a
 * malformed percent-escape, a parameter too long, too many, a key given
 * twice, a decoded byte outside printable ASCII. */
const char *ic_target_parse(const char *target, size_t len, ic_target *out);

/* The value of parameter `key`, or NULL if absent. */
const char *ic_target_param(const ic_target *t, const char *key);

/* NULL when every parameter's key is in `allowed` (NULL-terminated), else
 * the first that is not. */
const char *ic_target_unknown_param(const ic_target *t, const char *const *allowed);

/* A non-negative decimal integer of at most 9 digits in [min, max]; false
 * for anything else (sign, space, empty, overflow). */
bool ic_parse_uint(const char *s, long min, long max, long *out);

#endif
