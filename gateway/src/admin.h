/* The admin listener: plain HTTP, loopback-only by default, separate from
 * the device listener. GET /healthz (JSON: live, ready, broker
 * connectivity, outbox depth) and GET /metrics (Prometheus text). */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include <event2/event.h>

#include "app.h"
#include "iot/status.h"

typedef struct gw_admin gw_admin;

iot_status gw_admin_start(gw_app *app, struct event_base *base, gw_admin **out, iot_err *err);
void gw_admin_stop(gw_admin *admin);

#endif
