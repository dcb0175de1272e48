/* The read side of the API: JSON documents built from the registry, the
 * rollout file, the gateways' inventory, the live statistics and the
 * console's store. Each opens what it reads for the call (read-only), so
 * what iotctl just changed (a revocation, a pause) is what the next answer
 * shows. */
#ifndef IC_DATA_H
#define IC_DATA_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "app.h"
#include "iot/status.h"
#include "query.h"

/* The fleet table, filtered and sorted by the query (q, state, class,
 * sort, order). IOT_EINVAL with *why for a bad parameter. */
iot_status ic_data_devices(ic_app *app, const ic_target *t, cJSON **out, const char **why,
                           iot_err *err);

/* The fleet table as CSV (the same rows and columns), malloc'd. */
char *ic_data_devices_csv(const cJSON *doc, size_t *len);

/* One device: identity, certificate history, fleet entry, firmware
 * history from the rollouts, security events, latest readings.
 * IOT_ENOENT if the registry has no device of that name. */
iot_status ic_data_device(ic_app *app, const char *id, cJSON **out, iot_err *err);

/* Certificates (every kind) not revoked that expire within `days`. */
iot_status ic_data_certificates(ic_app *app, long days, cJSON **out, iot_err *err);

/* Every rollout, with per-wave progress and the pause reason. */
iot_status ic_data_rollouts(ic_app *app, cJSON **out, iot_err *err);

#endif
