/* The registry's enrollment tables, for enroll.c. Each call runs inside
 * the caller's transaction (except the public ones of iot/enroll.h). */
#ifndef IOT_ENROLL_STORE_H
#define IOT_ENROLL_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "iot/enroll.h"

/* The token whose SHA-256 (hex) is `hash`; IOT_ENOENT if none. */
iot_status iot__token_find(iot_registry *reg, const char *hash, iot_token_record *out,
                           iot_err *err);

/* Whether `device` has a token that is unused, unrevoked and unexpired. */
iot_status iot__token_live_for(iot_registry *reg, const char *device, int64_t now, bool *live,
                               iot_err *err);

iot_status iot__token_insert(iot_registry *reg, const iot_token_record *t, const char *hash,
                             iot_err *err);
iot_status iot__token_mark_used(iot_registry *reg, const char *id, int64_t now, iot_err *err);
iot_status iot__token_set_serial(iot_registry *reg, const char *id, const char *serial,
                                 iot_err *err);

/* The first enrollment of `device`; IOT_ENOENT if there is none. */
iot_status iot__enroll_get(iot_registry *reg, const char *device, iot_enroll_record *out,
                           iot_err *err);
/* Inserts or replaces the row of e->device. */
iot_status iot__enroll_put(iot_registry *reg, const iot_enroll_record *e, iot_err *err);

#endif
