/* The admin listener: plain HTTP, separate from the device listener.
 * GET /healthz (JSON: live, ready, broker connectivity, outbox depth) and
 * GET /metrics (Prometheus text).
 *
 * On loopback unless admin_remote = yes (config.c refuses otherwise). With
 * admin_token_file every request needs "Authorization: Bearer <token>"
 * (compared in constant time; 401 with WWW-Authenticate otherwise). At
 * most admin_max_connections connections are served at once: a request on
 * one more gets 503 and its connection is closed, counted as
 * admin_over_capacity. A connection takes its slot with its first request
 * and keeps it until it closes; a silent one is closed after 10 s. */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include <event2/event.h>

#include "app.h"
#include "iot/status.h"

typedef struct gw_admin gw_admin;

iot_status gw_admin_start(gw_app *app, struct event_base *base, gw_admin **out, iot_err *err);
void gw_admin_stop(gw_admin *admin);

#endif
