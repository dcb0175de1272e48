/* Live data from the broker: the console is an MQTT client (libmosquitto,
 * its own certificate, the read-only `console` role of deploy/broker/acl)
 * subscribed to readings (<topic_prefix>/+/telemetry) and the security
 * event stream (security/#). libmosquitto's thread receives; each message
 * is queued (bounded) and handed to the event loop, which keeps per-device
 * statistics and the last readings, stores security events (store.h) and
 * pushes both to the pages' streams (server.h). */
#ifndef IC_LIVE_H
#define IC_LIVE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "app.h"
#include "iot/status.h"

typedef struct ic_live ic_live;

#define IC_LIVE_READINGS 60    /* last messages kept per device */
#define IC_LIVE_DEVICES  10000 /* devices tracked at most */
#define IC_LIVE_QUEUE    4096  /* messages waiting for the event loop, at most */

iot_status ic_live_start(ic_app *app, ic_live **out, iot_err *err);
void ic_live_stop(ic_live *l);

/* Adds "readings_total", "readings_per_min", "dropped" and "last_reading"
 * for `device` to obj (nothing when none were seen). */
void ic_live_device_stats(const ic_live *l, const char *device, cJSON *obj);

/* The last messages of `device` (oldest first), as an array. */
cJSON *ic_live_device_readings(const ic_live *l, const char *device);

/* {"connected","received","queue_dropped"} */
cJSON *ic_live_status_json(const ic_live *l);

#endif
