/* The admin listener: plain HTTP, separate from the device listener.
 * GET /healthz (JSON: live, ready, broker connectivity, outbox depth),
 * GET /metrics (Prometheus text) and GET /fleet (the fleet inventory,
 * fleet.h); HEAD of each.
 *
 * Read by the same HTTP layer as the device listener (conn.h, http1.h,
 * router.h): the same strict framing rules, and every refusal a JSON
 * answer from the refusal table, logged as admin.refused and counted.
 * A framing error gets 400 (or 431, 505) with Connection: close.
 *
 * On loopback unless admin_remote = yes (config.c refuses otherwise). With
 * admin_token_file every request needs "Authorization: Bearer <token>"
 * (compared in constant time; 401 with WWW-Authenticate otherwise). At
 * most admin_max_connections connections are served at once: a request on
 * one more gets 503 and its connection is closed, counted as
 * admin_over_capacity. A connection takes its slot with its first request
 * and keeps it until it closes; one idle for 10 s is closed. */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "iot/status.h"

typedef struct gw_admin gw_admin;

/* What /healthz reports, asked for on each request. */
typedef struct gw_admin_status {
    bool draining; /* stopping: not ready */
    bool broker_connected;
    bool needs_broker; /* acknowledge = confirmed: no broker, no 200: not ready */
    int64_t outbox_depth;
    int64_t outbox_max;
} gw_admin_status;

typedef struct gw_admin_options {
    const char *listen;     /* "host:port" (admin_listen) */
    bool remote;            /* admin_remote: off loopback, said in a warning */
    const char *token_file; /* admin_token_file; NULL or "": no token required */
    int max_connections;    /* admin_max_connections */
    void (*status)(void *ctx, gw_admin_status *out);
    /* The fleet inventory as JSON, malloc'd (NULL: none, or no memory); may be NULL. */
    char *(*fleet)(void *ctx);
    void *status_ctx; /* passed to status and fleet */
} gw_admin_options;

/* Reads what it needs from opt during the call (nothing is kept but the
 * status callback). */
iot_status gw_admin_start(const gw_admin_options *opt, struct event_base *base, gw_admin **out,
                          iot_err *err);
void gw_admin_stop(gw_admin *admin);

#endif
