/* The operators file: one line per operator, "NAME HASH" (HASH the stored
 * form of pwhash.h), kept mode 0600 by iotctl operator add/remove and read
 * by iotconsole at each login (so a removal takes effect at once). Names
 * follow the device ID rule. Functions over memory; the callers read and
 * replace the file (iot/fsutil.h). */
#ifndef IC_OPERATORS_H
#define IC_OPERATORS_H

#include <stdbool.h>
#include <stddef.h>

#include "iot/status.h"
#include "pwhash.h"

#define IC_OPERATORS_FILE_MAX (256 * 1024)

/* Calls fn(name, hash) for each line; IOT_ECORRUPT naming the line if one
 * is malformed (bad name, bad hash, a name twice). A non-zero return from
 * fn stops the walk. */
typedef int (*ic_operator_fn)(const char *name, const char *hash, void *ctx);
iot_status ic_operators_foreach(const char *text, size_t len, ic_operator_fn fn, void *ctx,
                                iot_err *err);

/* The stored hash of `name` into hash; IOT_ENOENT if absent. */
iot_status ic_operators_find(const char *text, size_t len, const char *name,
                             char hash[IC_PWHASH_MAX], iot_err *err);

/* The text with `name` set to `hash` (added, or replaced if replace),
 * malloc'd into *out. IOT_EEXIST if present and !replace. */
iot_status ic_operators_set(const char *text, size_t len, const char *name, const char *hash,
                            bool replace, char **out, size_t *out_len, iot_err *err);

/* The text without `name`, malloc'd; IOT_ENOENT if absent. */
iot_status ic_operators_remove(const char *text, size_t len, const char *name, char **out,
                               size_t *out_len, iot_err *err);

#endif
